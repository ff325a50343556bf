"""pyconvnet.signal against naive loops, scipy and scikit-image."""
import concurrent.futures

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import import_oracle, tolerance
from pyconvnet import _reference as ref
from pyconvnet import signal
from pyconvnet.signal import choose_method, convolve, correlate, output_shape, similarity_map

MODES = ["full", "valid", "same"]
METHODS = ["direct", "fft", "auto"]
RNG = np.random.default_rng(12345)


def random(shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


# Shapes covering odd and even sizes, ranks 1 to 3, and the second input
# larger than the first (valid and full modes swap roles internally).
SHAPE_PAIRS = [
    ((7,), (3,)), ((8,), (4,)), ((5,), (5,)), ((3,), (8,)), ((1,), (1,)),
    ((9, 8), (3, 2)), ((6, 7), (4, 4)), ((4, 5), (6, 7)), ((10, 3), (1, 3)),
    ((5, 6, 4), (2, 3, 3)), ((3, 4, 5), (4, 4, 6)),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shapes", SHAPE_PAIRS, ids=str)
def test_correlate_matches_naive_loops(shapes, mode, method, dtype, n_threads):
    a, k = random(shapes[0], dtype), random(shapes[1], dtype)
    if mode == "valid" and not (all(x >= y for x, y in zip(*shapes))
                                or all(y >= x for x, y in zip(*shapes))):
        pytest.fail("shape pair must be valid-compatible")
    got = correlate(a, k, mode, method, n_threads=n_threads)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, ref.correlate(a, k, mode), **tolerance(dtype))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shapes", SHAPE_PAIRS, ids=str)
def test_convolve_matches_naive_loops(shapes, mode, method, dtype, n_threads):
    a, k = random(shapes[0], dtype), random(shapes[1], dtype)
    got = convolve(a, k, mode, method, n_threads=n_threads)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, ref.convolve(a, k, mode), **tolerance(dtype))


@settings(max_examples=60, deadline=None)
@given(ndim=st.integers(1, 3), data=st.data(),
       mode=st.sampled_from(MODES), method=st.sampled_from(METHODS))
def test_correlate_and_convolve_equal_scipy(ndim, data, mode, method):
    shape1 = data.draw(st.tuples(*[st.integers(1, 9)] * ndim), label="shape1")
    shape2 = data.draw(st.tuples(*[st.integers(1, 9)] * ndim), label="shape2")
    a, k = random(shape1), random(shape2)
    if mode == "valid" and not (all(x >= y for x, y in zip(shape1, shape2))
                                or all(y >= x for x, y in zip(shape1, shape2))):
        with pytest.raises(ValueError, match="valid"):
            correlate(a, k, mode, method)
        with pytest.raises(ValueError):
            scipy.signal.correlate(a, k, mode)
        return
    for ours, theirs in ((correlate, scipy.signal.correlate),
                         (convolve, scipy.signal.convolve)):
        for scipy_method in ("direct", "fft"):
            expected = theirs(a, k, mode, method=scipy_method)
            got = ours(a, k, mode, method)
            assert got.shape == expected.shape == output_shape(shape1, shape2, mode)
            np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_convolution_is_correlation_with_the_rotated_kernel():
    a, k = random((12, 10)), random((3, 4))
    np.testing.assert_allclose(convolve(a, k), correlate(a, np.rot90(k, 2)))


def test_large_1d_signal_every_method_agrees(n_threads):
    a, k = random(100_003), random(37)
    direct = correlate(a, k, "same", "direct", n_threads=n_threads)
    np.testing.assert_allclose(direct, correlate(a, k, "same", "fft"), atol=1e-9)
    np.testing.assert_allclose(direct, scipy.signal.correlate(a, k, "same"), atol=1e-9)


# --- FFTs in overlap-save blocks ------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(ndim=st.integers(1, 3), data=st.data(), mode=st.sampled_from(MODES),
       precision=st.sampled_from([np.float32, np.float64]), threads=st.sampled_from([1, 2]))
def test_overlap_save_with_any_block_length_matches_naive_loops(ndim, data, mode, precision,
                                                                 threads):
    # Block lengths from the kernel's own upwards, so that blocks of one
    # output point, partial last blocks, padding on both sides and more
    # tasks than threads all occur.
    shape1 = data.draw(st.tuples(*[st.integers(1, 14)] * ndim), label="shape1")
    shape2 = data.draw(st.tuples(*[st.integers(1, 6)] * ndim), label="shape2")
    lengths = tuple(data.draw(st.integers(k, k + 7), label="length") for k in shape2)
    task_points = data.draw(st.sampled_from([1, 50, 1 << 16]), label="task_points")
    a, k = random(shape1, precision), random(shape2, precision)
    if mode == "valid" and not all(x >= y for x, y in zip(shape1, shape2)):
        mode = "full"
    start, shape = signal._full_window(shape1, shape2, mode)
    got = signal._overlap_save(a, k, start, shape, lengths, threads, task_points)
    assert got.dtype == precision and got.shape == shape and got.flags.c_contiguous
    np.testing.assert_allclose(got, ref.correlate(a, k, mode), **tolerance(precision))


@pytest.mark.parametrize("layout", ["contiguous", "strided", "readonly"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shapes", [((1000, 900), (21, 17)), ((200_001,), (301,))], ids=str)
def test_fft_in_blocks_on_large_outputs_agrees_with_direct_and_scipy(shapes, mode, layout,
                                                                     dtype, n_threads):
    a, k = random(shapes[0], dtype), random(shapes[1], dtype)
    start, shape = signal._full_window(a.shape, k.shape, mode)
    assert signal._fft_plan(a.shape, k.shape, start, shape, 2)[1] is not None, \
        "the shapes must be large enough for the FFT to run in blocks"
    if layout == "strided":
        a = np.repeat(a, 2, axis=-1)[..., ::2]
    elif layout == "readonly":
        a.flags.writeable = False
    before = a.copy()
    fft = correlate(a, k, mode, "fft", n_threads=n_threads)
    assert fft.dtype == dtype and fft.flags.c_contiguous
    # Sums of k.size products of unit normals: errors grow with their size.
    tol = {key: value * np.sqrt(k.size) for key, value in tolerance(dtype).items()}
    np.testing.assert_allclose(fft, correlate(a, k, mode, "direct", n_threads=n_threads), **tol)
    if dtype == np.float64:
        np.testing.assert_allclose(convolve(a, k, mode, "fft", n_threads=n_threads),
                                   scipy.signal.convolve(a, k, mode), rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(a, before)


@pytest.mark.parametrize("layout", ["fortran", "strided", "readonly"])
def test_any_memory_layout_and_inputs_untouched(layout, dtype):
    base = random((20, 30), dtype)
    kernel = random((5, 4), dtype)
    if layout == "fortran":
        a = np.asfortranarray(base)
    elif layout == "strided":
        a = random((40, 60), dtype)[::2, ::2]
    else:
        a = base.copy()
        a.flags.writeable = False
    a_before, k_before = a.copy(), kernel.copy()
    for method in ("direct", "fft"):
        got = correlate(a, kernel, "same", method)
        np.testing.assert_allclose(got, ref.correlate(a, kernel, "same"), **tolerance(dtype))
        sim = similarity_map(a, kernel, centered=True, method=method)
        np.testing.assert_allclose(sim, ref.similarity_map(a, kernel, True), **tolerance(dtype))
    np.testing.assert_array_equal(a, a_before)
    np.testing.assert_array_equal(kernel, k_before)


@pytest.mark.parametrize("in_dtype, out_dtype", [
    (np.float32, np.float32), (np.float64, np.float64), (np.float16, np.float32),
    (np.int32, np.float64), (np.uint8, np.float64), (np.bool_, np.float64),
])
def test_dtype_rules(in_dtype, out_dtype):
    a = (RNG.random((6, 7)) * 3).astype(in_dtype)
    k = np.ones((2, 3), dtype=in_dtype)
    assert correlate(a, k).dtype == out_dtype
    assert convolve(a, k).dtype == out_dtype
    assert similarity_map(a, k).dtype == out_dtype
    np.testing.assert_allclose(correlate(a, k), ref.correlate(a, k), rtol=1e-3)


def test_mixed_precision_computes_in_float64():
    a = random((6, 7), np.float32)
    k = random((2, 2), np.float64)
    assert correlate(a, k).dtype == np.float64


# --- similarity_map -----------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("shapes", [((11,), (4,)), ((12,), (5,)), ((9, 8), (3, 4)),
                                    ((10, 10), (5, 5)), ((6, 5, 7), (2, 3, 2))], ids=str)
def test_similarity_map_matches_naive(shapes, centered, mode, method, dtype, n_threads):
    a, t = random(shapes[0], dtype), random(shapes[1], dtype)
    got = similarity_map(a, t, centered=centered, mode=mode, method=method,
                         n_threads=n_threads)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, ref.similarity_map(a, t, centered, mode),
                               **tolerance(dtype))


@settings(max_examples=40, deadline=None)
@given(data=st.data(), method=st.sampled_from(METHODS))
def test_centered_similarity_equals_match_template(data, method):
    skimage_feature = import_oracle("skimage.feature")
    h, w = data.draw(st.integers(3, 40)), data.draw(st.integers(3, 40))
    th, tw = data.draw(st.integers(1, h)), data.draw(st.integers(1, w))
    a, t = random((h, w)), random((th, tw))
    if th * tw == 1:
        return  # a single-pixel template has no spread: both sides are degenerate
    expected = skimage_feature.match_template(a, t)
    got = similarity_map(a, t, centered=True, method=method)
    np.testing.assert_allclose(got, expected, atol=1e-8)


def test_match_template_on_a_real_photograph():
    skimage = import_oracle("skimage")
    from skimage.feature import match_template
    image = skimage.data.camera().astype(np.float64)[::2, ::2]
    template = image[100:131, 60:91].copy()
    got = similarity_map(image, template, centered=True)
    np.testing.assert_allclose(got, match_template(image, template), atol=1e-8)
    assert np.unravel_index(np.argmax(got), got.shape) == (100, 60)
    assert got.max() == pytest.approx(1.0)


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("shapes", [((9000,), (25,)), ((3, 6000), (2, 30))], ids=str)
def test_similarity_of_long_rows_split_among_threads_matches_naive(shapes, centered, dtype,
                                                                   n_threads):
    # Few rows of many windows: the window norms run over column ranges
    # in parallel, which must join seamlessly.
    a, t = random(shapes[0], dtype), random(shapes[1], dtype)
    expected = ref.similarity_map(a, t, centered, "full")
    for mode in MODES:
        start, shape = signal._full_window(a.shape, t.shape, mode)
        window = tuple(slice(s, s + n) for s, n in zip(start, shape))
        got = similarity_map(a, t, centered=centered, mode=mode, n_threads=n_threads)
        np.testing.assert_allclose(got, expected[window], **tolerance(dtype))


def test_similarity_finds_scaled_copy_and_stays_in_range():
    a = RNG.random((40, 50))
    t = a[10:17, 20:25] * 3.0
    s = similarity_map(a, t)
    assert np.unravel_index(np.argmax(s), s.shape) == (10, 20)
    assert s.max() == pytest.approx(1.0)
    assert np.all(np.abs(s) <= 1.0)


@pytest.mark.parametrize("centered", [False, True])
def test_flat_windows_and_flat_templates_give_zero(centered, dtype):
    a = np.zeros((12, 12), dtype)
    a[6:, 6:] = 5.0           # flat when centred; zero windows in the top-left
    a[0, 11] = 1.0
    t = random((3, 3), dtype)
    s = similarity_map(a, t, centered=centered, mode="full")
    assert np.all(np.isfinite(s))
    assert np.all(s[:4, :4] == 0)     # windows of zeros
    if centered:
        assert np.all(s[8:12, 8:12] == 0)     # constant windows
    flat_template = np.full((3, 3), 2.0, dtype)
    s = similarity_map(RNG.random((8, 8)).astype(dtype), flat_template, centered=centered)
    assert np.all(np.isfinite(s))
    if centered:
        assert np.all(s == 0)
    zero = similarity_map(RNG.random((8, 8)), np.zeros((2, 2)), centered=centered)
    assert np.all(zero == 0)


def test_nan_stays_local_with_direct_method():
    a = RNG.random((10, 10))
    a[2, 2] = np.nan
    t = RNG.random((3, 3))
    c = correlate(a, t, "valid", "direct")
    assert np.isnan(c[0:3, 0:3]).all()
    assert np.isfinite(c[4:, 4:]).all()
    s = similarity_map(a, t, method="direct")
    assert np.isnan(s[0:3, 0:3]).all() and np.isfinite(s[4:, 4:]).all()


# --- methods, threads -----------------------------------------------------------

def test_choose_method_prefers_fft_only_for_large_kernels():
    assert choose_method((512, 512), (3, 3)) == "direct"
    assert choose_method((2048, 2048), (63, 63)) == "fft"
    assert choose_method(random((100,)), random((3,))) == "direct"


def test_concurrent_calls_from_python_threads():
    a, t = random((300, 300)), random((9, 9))
    expected = correlate(a, t, "same", "direct", n_threads=1)
    expected_sim = similarity_map(a, t, centered=True, n_threads=1)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: (correlate(a, t, "same", "direct", n_threads=2),
                                           similarity_map(a, t, centered=True, n_threads=2)),
                                range(8)))
    for c, s in results:
        np.testing.assert_array_equal(c, expected)
        np.testing.assert_allclose(s, expected_sim, atol=1e-12)


def test_concurrent_fft_in_blocks_from_python_threads():
    # Each call runs its own pool of block tasks inside the caller's thread.
    a, t = random((700, 650)), random((31, 29))
    start, shape = signal._full_window(a.shape, t.shape, "same")
    assert signal._fft_plan(a.shape, t.shape, start, shape, 2)[1] is not None
    expected = scipy.signal.correlate(a, t, "same")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda n: correlate(a, t, "same", "fft", n_threads=1 + n % 2),
                                range(8)))
    for c in results:
        np.testing.assert_allclose(c, expected, rtol=1e-10, atol=1e-10)


# --- bad input ------------------------------------------------------------------

@pytest.mark.parametrize("call, error, match", [
    (lambda: correlate([1.0, 2.0], [1.0], mode="middle"), ValueError, "mode must be one of"),
    (lambda: correlate([1.0, 2.0], [1.0], method="fast"), ValueError, "method must be one of"),
    (lambda: correlate(np.ones((3, 3)), np.ones(3)), ValueError, "same number of dimensions"),
    (lambda: correlate(np.ones((2, 2, 2, 2)), np.ones((1, 1, 1, 1))), ValueError, "in1 must be 1 or 2 or 3"),
    (lambda: correlate(np.ones(0), np.ones(2)), ValueError, "in1 must not be empty"),
    (lambda: convolve(np.ones(3), np.ones(0)), ValueError, "in2 must not be empty"),
    (lambda: correlate(np.ones((3, 5)), np.ones((5, 3)), "valid"), ValueError, "at least as large"),
    (lambda: correlate(np.ones(3, complex), np.ones(2)), TypeError, "in1"),
    (lambda: correlate(np.ones(3), np.array(["a", "b"])), TypeError, "in2"),
    (lambda: correlate(np.ones(3, object), np.ones(2)), TypeError, "in1"),
    (lambda: correlate(np.ones(3), np.ones(2), n_threads=0), ValueError, "n_threads"),
    (lambda: correlate(np.ones(3), np.ones(2), n_threads=1.5), TypeError, "n_threads"),
    (lambda: similarity_map(np.ones((3, 3)), np.ones((4, 2))), ValueError, "template must be no larger"),
    (lambda: similarity_map(np.ones(5), np.ones(2), centered="yes"), TypeError, "centered"),
    (lambda: similarity_map(np.ones(5), np.ones(2), mode="middle"), ValueError, "mode"),
    (lambda: similarity_map(np.ones((5, 5)), np.ones(2)), ValueError, "same number of dimensions"),
])
def test_bad_input_raises_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_negative_thread_counts_count_from_the_top():
    a, k = random(50), random(5)
    np.testing.assert_array_equal(correlate(a, k, method="direct", n_threads=-1),
                                  correlate(a, k, method="direct", n_threads=1))
