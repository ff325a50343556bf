"""pyconvnet.signal against naive loops, scipy and scikit-image."""
import concurrent.futures

import numpy as np
import pytest
import scipy.ndimage
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
    # scikit-image's scores leave [-1, 1] by rounding on nearly flat
    # windows (-1.00000009 seen), where both sides round at about 1e-8
    expected = np.clip(skimage_feature.match_template(a, t), -1, 1)
    got = similarity_map(a, t, centered=True, method=method)
    np.testing.assert_allclose(got, expected, atol=1e-7)


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


@given(data=st.data(), precision=st.sampled_from([np.float32, np.float64]),
       threads=st.sampled_from([1, 2, 3]), count=st.integers(1, 3),
       offset=st.sampled_from([0.0, 3.5]))
@settings(deadline=None)
def test_tiled_correlation_with_any_tiles_matches_naive_loops(data, precision, threads, count,
                                                             offset):
    # Tiles from the kernel's own size upwards: one exact output per tile,
    # tiles that reach past the array on the right and at the bottom, a
    # single tile of everything, and more tasks than threads.
    shape = data.draw(st.tuples(st.integers(1, 40), st.integers(1, 40)), label="shape")
    kernel_shape = data.draw(st.tuples(st.integers(1, shape[0]), st.integers(1, shape[1])),
                             label="kernel_shape")
    lengths = tuple(data.draw(st.integers(k, max(k, n) + 8), label="length")
                    for k, n in zip(kernel_shape, shape))
    a = random(shape, precision)
    kernels = random((count,) + kernel_shape, precision)
    got = signal._tiled_correlate(a, kernels, lengths, threads, offset)
    assert got.dtype == precision and got.flags.c_contiguous
    shifted = (a - precision(offset)).astype(np.float64)
    for g, k in zip(got, kernels):
        expected = scipy.signal.correlate(shifted, k.astype(np.float64), "valid", "direct")
        np.testing.assert_allclose(g, expected, **tolerance(precision))


SIMD = ("baseline", "avx2", "avx512")[:("baseline", "avx2", "avx512").index(
    signal._correlate.simd()) + 1]


@given(data=st.data(), precision=st.sampled_from([np.float32, np.float64]),
       threads=st.sampled_from([1, 2, 5]), simd=st.sampled_from(SIMD),
       bad=st.sampled_from([None, np.nan, np.inf]))
@settings(deadline=None)
def test_register_blocked_direct_correlation_matches_naive_loops(data, precision, threads, simd,
                                                                 bad):
    # Every version of the vector loops this CPU runs. Output widths below,
    # at and past one and three blocks of registers, row counts that leave
    # partial blocks of rows; a NaN or infinity reaches only the outputs
    # whose windows hold it.
    shape = data.draw(st.tuples(st.integers(1, 30), st.integers(1, 120)), label="shape")
    kernel_shape = data.draw(st.tuples(st.integers(1, min(shape[0], 20)),
                                       st.integers(1, min(shape[1], 20))), label="kernel_shape")
    a, k = random(shape, precision), random(kernel_shape, precision)
    out_shape = [n - m + 1 for n, m in zip(shape, kernel_shape)]
    hit = np.zeros(out_shape, dtype=bool)
    if bad is not None:
        i, j = data.draw(st.integers(0, shape[0] - 1)), data.draw(st.integers(0, shape[1] - 1))
        a[i, j] = bad
        hit[max(0, i - kernel_shape[0] + 1):i + 1, max(0, j - kernel_shape[1] + 1):j + 1] = True
    out = np.full(out_shape, -7.0, dtype=precision)
    previous = signal._correlate._limit_simd(simd)
    try:
        signal._correlate.correlate2d_valid(a, k, out, threads)
    finally:
        signal._correlate._limit_simd(previous)
    clean = np.where(np.isfinite(a), a, 0).astype(np.float64)
    expected = scipy.signal.correlate(clean, k.astype(np.float64), "valid", "direct")
    np.testing.assert_allclose(out[~hit], expected[~hit], **tolerance(precision))
    assert not np.isfinite(out[hit]).any()


def test_limit_simd_levels():
    top = signal._correlate.simd()
    try:
        for level in SIMD:
            signal._correlate._limit_simd(level)
            assert signal._correlate.simd() == level
    finally:
        signal._correlate._limit_simd(None)
    assert signal._correlate.simd() == top


@pytest.mark.parametrize("method", ["direct", "fft"])
def test_tile_plans_and_paths_agree_on_large_images(method, dtype):
    # Sizes where the cost model picks tiles smaller than the image, both
    # paths, a stack of templates, and the thread pool grown between calls.
    a = random((120, 150), dtype)
    t = random((4, 11, 13), dtype)
    lengths = signal._tile_plan(a.shape, t.shape[1:], 4, 4, a.itemsize)[1]
    assert lengths[0] < 120 or lengths[1] < 150
    expected = np.stack([ref.similarity_map(a.astype(np.float64), k.astype(np.float64),
                                            centered=True) for k in t])
    for threads in (1, 2, 4):
        got = similarity_map(a, t, centered=True, method=method, n_threads=threads)
        np.testing.assert_allclose(got, expected, **tolerance(dtype))


def test_tasks_run_once_each_and_errors_reach_the_caller():
    seen = []
    signal._run_tasks(seen.append, 50, 4)
    assert sorted(seen) == list(range(50))

    def fail(i):
        if i == 7:
            raise RuntimeError("task 7")

    with pytest.raises(RuntimeError, match="task 7"):
        signal._run_tasks(fail, 20, 3)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_failed_template_spectrum_reaches_the_caller(monkeypatch, threads):
    # With one template its spectrum is a task beside the tiles' transforms,
    # which wait for it: its failure must raise, not leave them waiting.
    a, t = random((300, 280), np.float32), random((40, 30), np.float32)

    def broken(*args):
        raise MemoryError("no room for the spectrum")

    monkeypatch.setattr(signal, "_kernel_spectra", broken)
    with pytest.raises((MemoryError, RuntimeError)):
        similarity_map(a, t, method="fft", n_threads=threads)
    monkeypatch.undo()
    expected = similarity_map(a, t, method="direct", n_threads=threads)
    np.testing.assert_allclose(similarity_map(a, t, method="fft", n_threads=threads), expected,
                               **tolerance(np.float32))


def test_concurrent_tiled_similarity_from_python_threads():
    # Calls from several threads share the kept pool of tile workers.
    a, t = random((400, 380), np.float32), random((33, 30), np.float32)
    expected = similarity_map(a, t, method="fft", n_threads=1)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(
            lambda n: similarity_map(a, t, method="fft", n_threads=1 + n % 3), range(8)))
    for got in results:
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("method", ["direct", "fft"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values_found_by_the_window_sums(bad, method):
    # No separate pass looks for NaN or infinity: the window sums tell.
    a = random((90, 100), np.float32) + 5
    a[40, 50] = bad
    t = random((9, 7), np.float32)
    got = similarity_map(a, t, centered=True, method=method)
    hit = np.zeros(got.shape, dtype=bool)
    hit[32:41, 44:51] = True
    assert np.isnan(got[hit]).all()
    clean = a.copy()
    clean[40, 50] = 0
    expected = similarity_map(clean, t, centered=True, method="direct")
    np.testing.assert_allclose(got[~hit], expected[~hit], **tolerance(np.float32))


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


# --- template matching: masks, missing data, stacks, squared differences, peaks ---

def naive_match(a, t, weights=None, centered=False, mode="valid", omit=False,
                spreads=None):
    """Masked (and missing-data) similarity from the formulas, window by
    window in float64: weights M times the window's presence, weighted
    means and norms, 0 for flat windows or windows with nothing left.
    ``spreads``, an array of the output's shape, receives each window's
    weighted sum of squares about its mean (centred) or zero."""
    a = np.asarray(a, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    weights = np.ones(t.shape) if weights is None else np.asarray(weights, dtype=np.float64)
    start, shape = signal._full_window(a.shape, t.shape, mode)
    padded = np.pad(a, [(k - 1, k - 1) for k in t.shape])
    out = np.zeros(shape)
    flat_t = t - (weights * t).sum() / weights.sum() if centered else t
    if (weights * flat_t ** 2).sum() <= 1e-12 * (weights * t * t).sum():
        return out      # a flat template scores 0 everywhere
    for m in np.ndindex(*shape):
        window = padded[tuple(slice(s + i, s + i + k)
                              for s, i, k in zip(start, m, t.shape))]
        w = weights.copy()
        if omit:
            w[np.isnan(window)] = 0
        elif np.any(~np.isfinite(window) & (w > 0)):
            out[m] = np.nan
            continue
        x = raw = np.where(w > 0, window, 0.0)
        n = w.sum()
        if n <= 1e-12:
            continue
        tt = t.copy()
        if centered:
            x = x - (w * x).sum() / n
            tt = tt - (w * tt).sum() / n
        if spreads is not None:
            spreads[m] = (w * x * x).sum()
        den = np.sqrt((w * x * x).sum() * (w * tt * tt).sum())
        if den > 1e-9 * np.sqrt((w * raw ** 2).sum() * (w * t * t).sum()) and den > 0:
            out[m] = (w * x * tt).sum() / den
    return out


def naive_sqdiff(a, t, weights=None, normalized=False):
    a = np.asarray(a, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    weights = np.ones(t.shape) if weights is None else np.asarray(weights, dtype=np.float64)
    shape = tuple(n - k + 1 for n, k in zip(a.shape, t.shape))
    out = np.zeros(shape)
    for m in np.ndindex(*shape):
        window = a[tuple(slice(i, i + k) for i, k in zip(m, t.shape))]
        d = (weights * (window - t) ** 2).sum()
        if normalized:
            den = np.sqrt((weights * window ** 2).sum() * (weights * t * t).sum())
            d = d / den if d < den else 1.0
        out[m] = d
    return out


MATCH_SHAPES = [((13,), (4,)), ((12, 11), (4, 3)), ((7, 6, 8), (3, 2, 3))]


def _mask(shape, kind):
    if kind == "bool":
        mask = RNG.random(shape) > 0.4
        mask.flat[0] = True
        return mask
    return RNG.random(shape) * (RNG.random(shape) > 0.3) + 0.01


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("kind", ["bool", "weights"])
@pytest.mark.parametrize("shapes", MATCH_SHAPES, ids=str)
def test_masked_similarity_matches_naive(shapes, kind, centered, mode, method, dtype,
                                         n_threads):
    a, t = random(shapes[0], dtype), random(shapes[1], dtype)
    mask = _mask(shapes[1], kind)
    got = similarity_map(a, t, centered=centered, mode=mode, mask=mask, method=method,
                         n_threads=n_threads)
    assert got.dtype == dtype
    spreads = np.zeros(got.shape)
    expected = naive_match(a, t, mask, centered, mode, spreads=spreads)
    if np.dtype(dtype) == np.float32:
        np.testing.assert_allclose(got, expected, **tolerance(dtype))
        return
    # float64: a transform rounds every window's sums to about eps times
    # the energy of the whole array, so a score's error grows as that over
    # the window's own spread (windows at the edge of a 'full' map hold a
    # few masked pixels); elsewhere the scores agree to 1e-7
    # (a window of no spread at all scores 0 on both sides)
    rounding = 64 * np.finfo(np.float64).eps * np.sum(np.asarray(a, np.float64) ** 2)
    live = spreads > 0
    atol = 1e-7 + np.where(live, np.minimum(1.0, rounding / np.where(live, spreads, 1.0)), 0.0)
    # (the window by window bound: assert_allclose takes one atol)
    np.testing.assert_array_less(np.abs(got - expected) - 1e-7 * np.abs(expected),
                                 atol * (1 + 1e-9))


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("shapes", MATCH_SHAPES, ids=str)
def test_missing_data_omitted(shapes, centered, mode, masked, dtype, n_threads):
    a, t = random(shapes[0], dtype), random(shapes[1], dtype)
    a[RNG.random(a.shape) < 0.15] = np.nan
    mask = _mask(shapes[1], "bool") if masked else None
    got = similarity_map(a, t, centered=centered, mode=mode, mask=mask, nan_policy="omit",
                         n_threads=n_threads)
    expected = naive_match(a, t, mask, centered, mode, omit=True)
    assert not np.isnan(got).any()
    np.testing.assert_allclose(got, expected, **tolerance(dtype))
    # propagate (the default) marks the windows that hold a NaN under the mask
    got = similarity_map(a, t, centered=centered, mode=mode, mask=mask, method="direct",
                         n_threads=n_threads)
    np.testing.assert_allclose(got, naive_match(a, t, mask, centered, mode),
                               **tolerance(dtype))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("shapes", MATCH_SHAPES + [((300, 280), (21, 17))], ids=str)
def test_stack_of_templates_equals_single_calls(shapes, centered, masked, method, dtype,
                                                n_threads):
    a = random(shapes[0], dtype)
    stack = random((5,) + shapes[1], dtype)
    mask = _mask(shapes[1], "bool") if masked else None
    got = similarity_map(a, stack, centered=centered, mask=mask, method=method,
                         n_threads=n_threads)
    assert got.shape == (5,) + output_shape(shapes[0], shapes[1], "valid")
    assert got.dtype == dtype
    for template, one in zip(stack, got):
        np.testing.assert_allclose(
            one, similarity_map(a, template, centered=centered, mask=mask, method=method,
                                n_threads=n_threads), **tolerance(dtype))
    # a list of templates is a stack too
    listed = similarity_map(a, list(stack), centered=centered, mask=mask, method=method,
                            n_threads=n_threads)
    np.testing.assert_array_equal(listed, got)


def test_overlap_save_stack_matches_single_kernels(dtype):
    a = random((700, 650), dtype)
    kernels = random((3, 19, 23), dtype)
    start, shape = signal._full_window(a.shape, kernels.shape[1:], "valid")
    lengths = signal._block_lengths(kernels.shape[1:], shape)
    got = signal._overlap_save(a, kernels, start, shape, lengths, 2, stack=True)
    for kernel, one in zip(kernels, got):
        np.testing.assert_allclose(one, correlate(a, kernel, "valid", "direct"),
                                   **tolerance(dtype))


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("method", ["direct", "fft"])
def test_float32_far_from_zero_keeps_float64_accuracy(method, centered, masked):
    a64 = RNG.random((300, 310)) + 1000
    a = a64.astype(np.float32)
    t = a[100:116, 40:60].copy()
    t += RNG.standard_normal(t.shape).astype(np.float32) * 0.1
    mask = _mask(t.shape, "bool") if masked else None
    got = similarity_map(a, t, centered=centered, mask=mask, method=method)
    exact = similarity_map(a.astype(np.float64), t.astype(np.float64), centered=centered,
                           mask=mask, method="direct")
    assert got.dtype == np.float32
    assert np.max(np.abs(got - exact)) < 1e-5


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("centered", [False, True])
def test_scores_stay_within_one_on_flat_regions(centered, masked, dtype):
    # large flat areas with a little rounding noise: the worst case of
    # cancellation in the window sums
    a = np.full((120, 130), 0.7, dtype=dtype)
    a[40:80, 50:90] = RNG.random((40, 40)).astype(dtype)
    a[:, :20] += (RNG.standard_normal((120, 20)) * 1e-7).astype(dtype)
    t = a[45:60, 55:66].copy()
    mask = _mask(t.shape, "weights") if masked else None
    for method in METHODS:
        got = similarity_map(a, t, centered=centered, mask=mask, method=method)
        assert np.all(np.abs(got) <= 1)
        assert got[45, 55] == pytest.approx(1, abs=1e-5)


def test_all_true_mask_equals_no_mask():
    a, t = random((40, 50)), random((7, 6))
    np.testing.assert_array_equal(similarity_map(a, t, mask=np.ones(t.shape, bool)),
                                  similarity_map(a, t))


@pytest.mark.parametrize("centered", [False, True])
def test_masked_similarity_finds_a_non_rectangular_object(centered):
    # a disc on a textured background: the disc's corners in the template
    # come from elsewhere, the mask leaves them out
    a = RNG.random((80, 90))
    yy, xx = np.mgrid[:15, :15]
    disc = (yy - 7) ** 2 + (xx - 7) ** 2 <= 49
    a[30:45, 50:65][disc] = 2 + np.sin(yy[disc])
    t = RNG.random((15, 15))
    t[disc] = 2 + np.sin(yy[disc])
    got = similarity_map(a, t, centered=centered, mask=disc)
    assert np.unravel_index(np.argmax(got), got.shape) == (30, 50)
    assert got[30, 50] == pytest.approx(1)


@pytest.mark.parametrize("centered", [False, True])
def test_masked_similarity_equals_opencv_ccorr_normed(centered):
    cv2 = import_oracle("cv2")
    a = RNG.random((60, 70)).astype(np.float32)
    t = RNG.random((9, 12)).astype(np.float32)
    mask = _mask(t.shape, "bool")
    if centered:    # OpenCV has no masked centred score that matches Padfield's
        return
    theirs = cv2.matchTemplate(a, t, cv2.TM_CCORR_NORMED, mask=mask.astype(np.float32))
    np.testing.assert_allclose(similarity_map(a, t, mask=mask), theirs, atol=2e-5)


@pytest.mark.parametrize("centered, flag", [(False, "TM_CCORR_NORMED"),
                                             (True, "TM_CCOEFF_NORMED")])
def test_similarity_equals_opencv(centered, flag):
    cv2 = import_oracle("cv2")
    a = RNG.random((200, 210)).astype(np.float32)
    t = RNG.random((17, 12)).astype(np.float32)
    theirs = cv2.matchTemplate(a, t, getattr(cv2, flag))
    np.testing.assert_allclose(similarity_map(a, t, centered=centered), theirs, atol=2e-5)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("normalized", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("shapes", MATCH_SHAPES, ids=str)
def test_squared_difference_matches_naive(shapes, masked, normalized, method, dtype,
                                          n_threads):
    a, t = random(shapes[0], dtype), random(shapes[1], dtype)
    mask = _mask(shapes[1], "weights") if masked else None
    got = signal.squared_difference_map(a, t, normalized=normalized, mask=mask,
                                        method=method, n_threads=n_threads)
    assert got.dtype == dtype
    expected = naive_sqdiff(a, t, mask, normalized)
    np.testing.assert_allclose(got, expected, rtol=tolerance(dtype)["rtol"],
                               atol=tolerance(dtype)["atol"] * np.max(expected))


@pytest.mark.parametrize("normalized, flag", [(False, "TM_SQDIFF"),
                                               (True, "TM_SQDIFF_NORMED")])
@pytest.mark.parametrize("masked", [False, True])
def test_squared_difference_equals_opencv(normalized, flag, masked):
    cv2 = import_oracle("cv2")
    a = RNG.random((90, 100)).astype(np.float32) * 3
    t = a[20:35, 40:52] + RNG.standard_normal((15, 12)).astype(np.float32) * 0.05
    mask = _mask(t.shape, "bool") if masked else None
    extra = {} if mask is None else {"mask": mask.astype(np.float32)}
    theirs = cv2.matchTemplate(a, t, getattr(cv2, flag), **extra)
    ours = signal.squared_difference_map(a, t, normalized=normalized, mask=mask)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-3 if not normalized else 1e-5)


def test_squared_difference_of_a_perfect_match_far_from_zero_is_zero():
    a = (RNG.random((50, 60)) + 1000).astype(np.float32)
    got = signal.squared_difference_map(a, a[10:20, 5:17])
    assert got[10, 5] < 1e-4 * np.median(got)


@pytest.mark.parametrize("layout", ["fortran", "strided", "readonly"])
def test_matching_any_layout_and_inputs_untouched(layout, dtype):
    a0 = random((40, 44), dtype)
    a0[3, 4] = np.nan
    t0 = random((2, 6, 5), dtype)
    m0 = _mask((6, 5), "bool")
    a, t, m = a0.copy(), t0.copy(), m0.copy()
    if layout == "fortran":
        a, t, m = np.asfortranarray(a), np.asfortranarray(t), np.asfortranarray(m)
    elif layout == "strided":
        a = np.repeat(a, 2, axis=1)[:, ::2]
        t = np.repeat(t, 2, axis=2)[:, :, ::2]
    else:
        for x in (a, t, m):
            x.flags.writeable = False
    for centered in (False, True):
        got = similarity_map(a, t, centered=centered, mask=m, nan_policy="omit")
        np.testing.assert_allclose(got[1], naive_match(a0, t0[1], m0, centered, omit=True),
                                   **tolerance(dtype))
    signal.squared_difference_map(a, t, mask=m, normalized=True)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(t, t0)
    np.testing.assert_array_equal(m, m0)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), ndim=st.integers(1, 3), min_distance=st.integers(1, 4),
       exclude_border=st.sampled_from([True, False, 0, 2]),
       num_peaks=st.sampled_from([None, 1, 3, 10]), use_threshold=st.booleans())
def test_find_peaks_equals_peak_local_max(data, ndim, min_distance, exclude_border,
                                          num_peaks, use_threshold):
    feature = import_oracle("skimage.feature")
    shape = data.draw(st.tuples(*[st.integers(1, 30 if ndim < 3 else 9)] * ndim))
    seed = data.draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    score = rng.integers(0, 6, shape).astype(np.float64)    # plateaus and ties
    threshold = 2.5 if use_threshold else None
    positions, values = signal.find_peaks(score, min_distance=min_distance,
                                          threshold=threshold, num_peaks=num_peaks,
                                          exclude_border=exclude_border)
    theirs = feature.peak_local_max(score, min_distance=min_distance, threshold_abs=threshold,
                                    num_peaks=np.inf if num_peaks is None else num_peaks,
                                    exclude_border=exclude_border)
    np.testing.assert_array_equal(positions, theirs.reshape(-1, ndim))
    np.testing.assert_array_equal(values, score[tuple(theirs.T)])
    assert positions.dtype == np.int64


def test_find_peaks_equals_peak_local_max_on_a_similarity_map():
    feature = import_oracle("skimage.feature")
    data = import_oracle("skimage.data")
    image = data.coins().astype(np.float32)
    score = similarity_map(image, image[170:215, 45:90], centered=True)
    for min_distance in (1, 5, 20):
        positions, _ = signal.find_peaks(score, min_distance=min_distance, threshold=0.3)
        theirs = feature.peak_local_max(score, min_distance=min_distance, threshold_abs=0.3)
        np.testing.assert_array_equal(positions, theirs)


def _shifted_image(shift, size=96):
    """A smooth random image and the same image moved by ``shift`` (sub-pixel,
    by Fourier interpolation)."""
    rng = np.random.default_rng(7)
    base = scipy.ndimage.gaussian_filter(rng.standard_normal((size,) * len(shift)), 2.5)
    moved = scipy.ndimage.fourier_shift(np.fft.fftn(base), shift)
    return base, np.fft.ifftn(moved).real


@pytest.mark.parametrize("shift", [(0.3,), (0.25, -0.4), (-0.35, 0.15, 0.45)], ids=str)
def test_subpixel_peak_finds_a_known_shift(shift):
    ndim = len(shift)
    base, moved = _shifted_image(shift, 96 if ndim < 3 else 40)
    cut = tuple(slice(12, 12 + (16 if ndim < 3 else 10)) for _ in shift)
    template = moved[cut]
    score = similarity_map(base, template, centered=True)
    positions, values = signal.find_peaks(score, num_peaks=1, subpixel=True)
    expected = np.array([12 - s for s in shift])
    assert positions.dtype == np.float64
    assert np.max(np.abs(positions[0] - expected)) < 0.1
    whole, _ = signal.find_peaks(score, num_peaks=1)
    assert np.array_equal(np.round(positions[0]), whole[0]) or \
        np.max(np.abs(positions[0] - whole[0])) <= 0.5


def test_find_peaks_edges_and_empty_results():
    positions, values = signal.find_peaks(np.zeros((5, 5)))
    assert positions.shape == (0, 2) and values.shape == (0,)
    score = np.zeros(9)
    score[0] = 1
    assert signal.find_peaks(score)[0].shape == (0, 1)       # border excluded
    positions, _ = signal.find_peaks(score, exclude_border=False, subpixel=True)
    np.testing.assert_array_equal(positions, [[0.0]])       # not refined at the edge
    nan_map = np.array([0.0, np.nan, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(signal.find_peaks(nan_map)[0], [[3]])


@pytest.mark.parametrize("call, error, match", [
    (lambda: similarity_map(np.ones((9, 9)), np.ones((3, 3)), mask=np.ones((3, 4))),
     ValueError, "mask must have the template's shape"),
    (lambda: similarity_map(np.ones((9, 9)), np.ones((3, 3)), mask=np.zeros((3, 3))),
     ValueError, "mask must have at least one non-zero"),
    (lambda: similarity_map(np.ones((9, 9)), np.ones((3, 3)), mask=-np.ones((3, 3))),
     ValueError, "mask weights must be finite and non-negative"),
    (lambda: similarity_map(np.ones((9, 9)), [np.ones((3, 3)), np.ones((3, 4))]),
     ValueError, "template: a stack of templates must share one shape"),
    (lambda: similarity_map(np.ones((9, 9)), np.ones((0, 3, 3))),
     ValueError, "template: the stack holds no template"),
    (lambda: similarity_map(np.ones((9, 9)), np.ones((3, 3)), nan_policy="raise"),
     ValueError, "nan_policy must be one of"),
    (lambda: signal.squared_difference_map(np.ones(9), np.ones(3), mask=np.ones(4)),
     ValueError, "mask must have the template's shape"),
    (lambda: signal.find_peaks(np.ones((4, 4)), min_distance=0),
     ValueError, "min_distance"),
    (lambda: signal.find_peaks(np.ones((4, 4)), min_distance=1.5),
     TypeError, "min_distance"),
    (lambda: signal.find_peaks(np.ones((4, 4)), num_peaks=-1), ValueError, "num_peaks"),
    (lambda: signal.find_peaks(np.ones((2, 2, 2, 2))), ValueError, "score must be"),
])
def test_matching_bad_input_raises_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_coin_gallery_example_finds_every_coin(tmp_path):
    import_oracle("matplotlib")
    import_oracle("skimage")
    from pathlib import Path

    from conftest import run_python
    script = Path(__file__).resolve().parent.parent / "examples" / "plot_find_coins.py"
    done = run_python([str(script)], cwd=tmp_path, env={"MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr
    assert "24 coins found" in done.stdout
    assert "masked: 24 coins found" in done.stdout
    assert (tmp_path / "output" / "find_coins_masked.png").is_file()
