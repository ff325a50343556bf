"""pyconvnet.datasets: the scikit-learn digits as 32x32 inputs, IDX files."""
import gzip
import struct

import numpy as np
import pytest

from conftest import import_oracle
from pyconvnet.datasets import bilinear_resize, load_digits, load_idx, stratified_split


@pytest.fixture(scope="module")
def digits():
    import_oracle("sklearn")
    return load_digits()


def test_digits_shape_dtype_range(digits):
    X, y = digits
    assert X.shape == (1797, 1, 32, 32) and X.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and 0.9 < X.max() <= 1.0
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    # the 4-pixel border is zero padding, the digit is inside
    assert not X[:, :, :4].any() and not X[:, :, -4:].any()
    assert not X[:, :, :, :4].any() and not X[:, :, :, -4:].any()
    assert X[:, :, 4:28, 4:28].any(axis=(1, 2, 3)).all()


def test_digits_conversion_is_the_documented_one(digits):
    sklearn = import_oracle("sklearn")
    images = sklearn.datasets.load_digits().images
    X, _ = digits
    # bilinear upsampling by 3 keeps block means close to the original pixels
    inner = X[:, 0, 4:28, 4:28].reshape(-1, 8, 3, 8, 3)
    centres = inner[:, :, 1, :, 1]
    np.testing.assert_allclose(centres, images / 16.0, atol=1e-6)
    Xk, _ = load_digits(method="kron", size=16, padding=2)
    assert Xk.shape == (1797, 1, 20, 20)
    np.testing.assert_allclose(Xk[:, 0, 2:18, 2:18],
                               np.kron(images / 16.0, np.ones((1, 2, 2))), rtol=1e-6)


def test_bilinear_resize_matches_torch(torch):
    img = np.random.default_rng(0).random((3, 8, 8))
    got = bilinear_resize(img, 24)
    want = torch.nn.functional.interpolate(torch.tensor(img)[None], size=(24, 24),
                                           mode="bilinear", align_corners=False)[0]
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-12)


def test_load_digits_bad_arguments():
    with pytest.raises(ValueError, match="size must be >= 8"):
        load_digits(size=4)
    with pytest.raises(ValueError, match="method must be one of"):
        load_digits(method="cubic")
    with pytest.raises(ValueError, match="needs size divisible by 8"):
        load_digits(method="kron", size=20)


def test_stratified_split():
    y = np.repeat(np.arange(5), [10, 20, 30, 40, 50])
    tr, te = stratified_split(y, 0.2, rng=1)
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == len(y)
    assert np.bincount(y[te]).tolist() == [2, 4, 6, 8, 10]
    tr2, te2 = stratified_split(y, 0.2, rng=1)
    np.testing.assert_array_equal(te, te2)
    assert not np.array_equal(te, stratified_split(y, 0.2, rng=2)[1])
    with pytest.raises(ValueError, match="test_size"):
        stratified_split(y, 1.5)


# -- IDX ---------------------------------------------------------------------

_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
          np.float32: 0x0D, np.float64: 0x0E}


def write_idx(path, array, compress=False, code=None):
    array = np.asarray(array)
    code = _CODES[array.dtype.type] if code is None else code
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(payload)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("dtype", list(_CODES), ids=lambda t: t.__name__)
def test_idx_round_trip(tmp_path, dtype, compress):
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((3, 4, 5)) * 50).astype(dtype)
    path = tmp_path / ("x.idx.gz" if compress else "x.idx")
    write_idx(path, data, compress)
    got = load_idx(path)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, data)


def test_idx_mnist_like_labels_and_images(tmp_path):
    labels = np.array([5, 0, 4, 1, 9], np.uint8)
    images = np.arange(5 * 28 * 28, dtype=np.uint32).reshape(5, 28, 28).astype(np.uint8)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images, compress=True)
    np.testing.assert_array_equal(load_idx(tmp_path / "t10k-labels-idx1-ubyte"), labels)
    assert load_idx(str(tmp_path / "t10k-images-idx3-ubyte.gz")).shape == (5, 28, 28)


def test_idx_bad_files(tmp_path):
    p = tmp_path / "bad"
    p.write_bytes(b"\x00\x01\x08\x01\x00\x00\x00\x01\x07")
    with pytest.raises(ValueError, match="magic number must start with two zero bytes"):
        load_idx(p)
    p.write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01\x07")
    with pytest.raises(ValueError, match="unknown IDX type code 0x07"):
        load_idx(p)
    p.write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match="too short for an IDX header"):
        load_idx(p)
    p.write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x02")
    with pytest.raises(ValueError, match="truncated header: 3 dimensions need 16 bytes"):
        load_idx(p)
    write_idx(p, np.arange(6, dtype=np.uint8))
    p.write_bytes(p.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"shape \(6,\) of uint8 \(6 bytes of data\) "
                                         r"but the file holds 5"):
        load_idx(p)
    write_idx(p, np.arange(6, dtype=np.int16))
    p.write_bytes(p.read_bytes() + b"\x00")
    with pytest.raises(ValueError, match="but the file holds 13"):
        load_idx(p)
    p.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(OSError, match="corrupt gzip"):
        load_idx(p)
    with pytest.raises(FileNotFoundError):
        load_idx(tmp_path / "missing")


def test_random_shift_moves_each_image_within_the_bound():
    from pyconvnet.datasets import random_shift
    x = np.zeros((50, 1, 9, 9), np.float32)
    x[:, 0, 4, 4] = 1.0
    y = random_shift(x, 2, rng=0)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert (y.sum(axis=(1, 2, 3)) == 1).all()          # nothing falls off
    pos = np.array([np.unravel_index(np.argmax(im), (9, 9)) for im in y[:, 0]])
    assert np.abs(pos - 4).max() == 2
    assert len({tuple(p) for p in pos}) > 10
    assert x[:, 0, 4, 4].all()                           # input untouched
    np.testing.assert_array_equal(random_shift(x, 0), x)
    np.testing.assert_array_equal(random_shift(x, 2, rng=3), random_shift(x, 2, rng=3))
    with pytest.raises(ValueError, match="max_shift must be >= 0"):
        random_shift(x, -1)
