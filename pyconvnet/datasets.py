r"""Real handwritten digits for training, and a reader for MNIST's IDX files.

:func:`load_digits` needs no download: it converts the 1,797 8x8 digits that
scikit-learn ships (the UCI "optical recognition of handwritten digits" test
set: 43 writers, 4x4 blocks of 32x32 bitmaps counted into 0..16) to
LeNet-5's 1x32x32 input. :func:`load_idx` reads MNIST's files for those who
have them.
"""
import gzip
import io
import os

import numpy as np

__all__ = ["load_digits", "load_idx", "bilinear_resize", "random_shift", "stratified_split"]


def _interp_matrix(n_in, n_out):
    """(n_out, n_in) matrix of 1-D linear interpolation with pixel centres aligned.

    Output pixel ``o`` samples the input at ``(o + 0.5) n_in / n_out - 0.5``,
    clamped to the edge pixels (``align_corners=False`` in PyTorch terms).
    """
    pos = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    pos = np.clip(pos, 0, n_in - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = pos - lo
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), lo), 1 - frac)
    np.add.at(m, (np.arange(n_out), hi), frac)
    return m


def bilinear_resize(images, size):
    """Resize a stack of images ``(..., H, W)`` to ``(..., size, size)`` bilinearly.

    Separable linear interpolation along rows and columns with pixel centres
    aligned (PyTorch's ``interpolate(mode="bilinear", align_corners=False)``
    for upsampling).

    Notes
    -----
    See :ref:`theory-output-size` and :ref:`theory-lenet5`.

    Examples
    --------
    >>> import numpy as np
    >>> bilinear_resize(np.array([[0.0, 1.0]]), 4)
    array([[0.  , 0.25, 0.75, 1.  ],
           [0.  , 0.25, 0.75, 1.  ],
           [0.  , 0.25, 0.75, 1.  ],
           [0.  , 0.25, 0.75, 1.  ]])
    """
    images = np.asarray(images, dtype=np.float64)
    rows = _interp_matrix(images.shape[-2], size)
    cols = _interp_matrix(images.shape[-1], size)
    return np.einsum("ph,...hw,qw->...pq", rows, images, cols, optimize=True)


def load_digits(size=24, padding=4, method="bilinear", dtype=np.float32):
    """The 1,797 8x8 handwritten digits of scikit-learn as LeNet-5 inputs.

    Conversion: the 0..16 counts are scaled to 0..1, each 8x8 image is
    upsampled to ``size x size`` (bilinear interpolation, or ``"kron"``:
    each pixel repeated as a block, which needs ``size`` divisible by 8)
    and zero-padded by ``padding`` on every side, so that by default the
    24x24 digit sits in the middle of a 32x32 input as MNIST's 20x20 digits
    sit in a 28x28 box (LeNet-5 saw MNIST padded to 32x32).

    Parameters
    ----------
    size : int
        Side of the upsampled digit (>= 8).
    padding : int
        Zeros added on each side (>= 0).
    method : {'bilinear', 'kron'}
    dtype : float32 or float64

    Returns
    -------
    X : (1797, 1, size + 2 padding, size + 2 padding) ndarray
    y : (1797,) int64 ndarray
        The digit, 0..9 (about 180 of each).

    Raises
    ------
    ImportError
        When scikit-learn is not installed (it ships the data).
    ValueError
        For a bad size, padding or method.

    Notes
    -----
    See :ref:`theory-lenet5` and :ref:`theory-training`.

    Examples
    --------
    >>> X, y = load_digits()
    >>> X.shape, X.dtype, y.shape, y.dtype
    ((1797, 1, 32, 32), dtype('float32'), (1797,), dtype('int64'))
    >>> float(X.min()), float(X.max()) <= 1.0, float(X[:, :, :4].max())
    (0.0, True, 0.0)
    """
    from ._validation import check_choice, check_int
    size = check_int(size, "size", 8)
    padding = check_int(padding, "padding", 0)
    check_choice(method, "method", ("bilinear", "kron"))
    if method == "kron" and size % 8:
        raise ValueError(f"method='kron' needs size divisible by 8, got {size}")
    try:
        from sklearn.datasets import load_digits as _sk_digits
    except ImportError:  # pragma: no cover - sklearn is a test dependency
        raise ImportError("load_digits needs scikit-learn, which ships the digits: "
                          "pip install scikit-learn") from None
    bunch = _sk_digits()
    images = bunch.images / 16.0
    if method == "kron":
        up = np.kron(images, np.ones((1, size // 8, size // 8)))
    else:
        up = bilinear_resize(images, size)
    side = size + 2 * padding
    X = np.zeros((len(images), 1, side, side), dtype=dtype)
    X[:, 0, padding:padding + size, padding:padding + size] = up
    return X, bunch.target.astype(np.int64)


def stratified_split(y, test_size=0.2, rng=0):
    """Indices of a train/test split with the same class proportions in both.

    Each class is shuffled with the seed and its first
    ``round(test_size * count)`` members go to the test set.

    Returns
    -------
    train_idx, test_idx : ndarray of int
        Disjoint, sorted, covering every index.

    Notes
    -----
    See :ref:`theory-training`.

    Examples
    --------
    >>> import numpy as np
    >>> tr, te = stratified_split(np.repeat([0, 1], 10), 0.2, rng=0)
    >>> len(tr), len(te), np.bincount(np.repeat([0, 1], 10)[te]).tolist()
    (16, 4, [2, 2])
    """
    y = np.asarray(y)
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must lie in (0, 1), got {test_size!r}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    test = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        gen.shuffle(members)
        test.append(members[:int(round(test_size * members.size))])
    test = np.sort(np.concatenate(test))
    train = np.setdiff1d(np.arange(y.size), test)
    return train, test


def random_shift(images, max_shift, rng=None):
    """Translate each image by a random whole number of pixels, filling with zeros.

    Each image of ``(N, C, H, W)`` moves by its own ``(dy, dx)``, each drawn
    uniformly from ``-max_shift .. max_shift`` (data augmentation: a digit
    moved by a pixel or two is still the same digit).

    Notes
    -----
    See :ref:`theory-alexnet` and :ref:`theory-pooling`.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((1, 1, 5, 5)); x[0, 0, 2, 2] = 1
    >>> y = random_shift(x, 1, rng=0)
    >>> int(y.sum()), y.shape
    (1, (1, 1, 5, 5))
    """
    images = np.asarray(images)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    s = int(max_shift)
    if s < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    if s == 0:
        return images.copy()
    n, h, w = images.shape[0], images.shape[-2], images.shape[-1]
    padded = np.zeros(images.shape[:-2] + (h + 2 * s, w + 2 * s), images.dtype)
    padded[..., s:s + h, s:s + w] = images
    offsets = gen.integers(0, 2 * s + 1, size=(n, 2))
    out = np.empty_like(images)
    for i, (dy, dx) in enumerate(offsets):
        out[i] = padded[i, ..., dy:dy + h, dx:dx + w]
    return out


# IDX type codes (third byte of the magic number) and their big-endian dtypes.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_idx(path):
    """Read an IDX file (MNIST's format), gzip-compressed or plain.

    The format: a 4-byte magic number ``0x00 0x00 <type> <ndim>``, then
    ``ndim`` big-endian unsigned 32-bit sizes, then the data in row-major
    order, big-endian, of type 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C
    int32, 0x0D float32 or 0x0E float64. Gzip is recognised by its own
    magic bytes, whatever the file is called.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    ndarray
        Of the file's shape, in native byte order (uint8 for MNIST).

    Raises
    ------
    ValueError
        For a bad magic number, an unknown type code, a truncated header,
        or data that is shorter or longer than the header says.
    OSError
        When the file cannot be read (or is not valid gzip).

    Notes
    -----
    See :ref:`theory-lenet5`.

    Examples
    --------
    >>> import os, struct, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny-idx1-ubyte")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(struct.pack(">BBBBI", 0, 0, 0x08, 1, 3) + bytes([7, 2, 1]))
    >>> load_idx(path)
    array([7, 2, 1], dtype=uint8)
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.GzipFile(fileobj=io.BytesIO(raw)).read()
        except (OSError, EOFError) as exc:
            raise OSError(f"{path}: corrupt gzip data: {exc}") from None
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file: the magic number must start with "
                         f"two zero bytes, got {raw[:4].hex()}")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x}; known: "
                         + ", ".join(f"0x{c:02x}" for c in _IDX_TYPES))
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated header: {ndim} dimensions need {header} "
                         f"bytes, the file has {len(raw)}")
    shape = tuple(int(v) for v in np.frombuffer(raw, ">u4", ndim, 4))
    dtype = np.dtype(_IDX_TYPES[code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        raise ValueError(f"{path}: the header gives shape {shape} of {dtype.name} "
                         f"({expected} bytes of data) but the file holds {got}")
    data = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))
