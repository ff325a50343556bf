"""pyconvnet.dask: chunked results equal the in-memory ones, seams included."""
import numpy as np
import pytest

from conftest import import_oracle, tolerance
from pyconvnet import signal

da = import_oracle("dask.array")
pdask = pytest.importorskip("pyconvnet.dask", reason="needs dask, checked just above")

RNG = np.random.default_rng(7)
CHUNKINGS = [
    ((5, 10, 3, 19), (8, 8, 25)),      # uneven, some smaller than the kernel
    ((37,), (41,)),                    # one chunk
    ((2,) * 18 + (1,), (1,) * 41),      # every chunk smaller than the kernel
    ((20, 17), (13, 14, 14)),
]


@pytest.mark.parametrize("chunks", CHUNKINGS, ids=range(len(CHUNKINGS)))
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("method", ["direct", "fft"])
def test_correlate_convolve_similarity_equal_in_memory(chunks, mode, method, dtype):
    x = RNG.standard_normal((37, 41)).astype(dtype)
    k = RNG.standard_normal((7, 4)).astype(dtype)
    lazy = da.from_array(x, chunks=chunks)
    tol = tolerance(dtype)
    for ours, reference in ((pdask.correlate, signal.correlate),
                            (pdask.convolve, signal.convolve)):
        got = ours(lazy, k, mode, method).compute(scheduler="threads")
        expected = reference(x, k, mode, method)
        assert got.shape == expected.shape and got.dtype == expected.dtype
        np.testing.assert_allclose(got, expected, **tol)
    for centered in (False, True):
        got = pdask.similarity_map(lazy, k, centered=centered, mode=mode,
                                   method=method).compute(scheduler="threads")
        expected = signal.similarity_map(x, k, centered=centered, mode=mode, method=method)
        np.testing.assert_allclose(got, expected, **tol)


def test_valid_direct_is_bit_for_bit():
    x = RNG.standard_normal((60, 50))
    k = RNG.standard_normal((9, 9))
    got = pdask.correlate(da.from_array(x, chunks=(16, 13)), k, "valid", "direct").compute()
    np.testing.assert_array_equal(got, signal.correlate(x, k, "valid", "direct"))


@pytest.mark.parametrize("shape, kshape, chunks", [
    ((1000,), (31,), 97), ((12, 9, 10), (3, 2, 4), (5, 4, 3)),
])
def test_other_ranks(shape, kshape, chunks):
    x, k = RNG.standard_normal(shape), RNG.standard_normal(kshape)
    lazy = da.from_array(x, chunks=chunks)
    for mode in ("full", "same", "valid"):
        np.testing.assert_allclose(pdask.correlate(lazy, k, mode).compute(),
                                   signal.correlate(x, k, mode), atol=1e-10)
        np.testing.assert_allclose(pdask.similarity_map(lazy, k, centered=True, mode=mode).compute(),
                                   signal.similarity_map(x, k, centered=True, mode=mode), atol=1e-10)


def test_template_spanning_several_chunks_is_found():
    image = RNG.random((120, 130))
    template = image[40:90, 50:110]
    lazy = pdask.similarity_map(da.from_array(image, chunks=(16, 16)), template, centered=True)
    peak = np.unravel_index(int(lazy.argmax().compute()), lazy.shape)
    assert peak == (40, 50)


def test_on_a_local_cluster_of_processes():
    distributed = import_oracle("distributed")
    x = RNG.standard_normal((200, 180))
    k = RNG.standard_normal((11, 11))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        lazy = pdask.similarity_map(da.from_array(x, chunks=(64, 64)), k, centered=True)
        got = client.compute(lazy).result()
    np.testing.assert_allclose(got, signal.similarity_map(x, k, centered=True), atol=1e-12)


@pytest.mark.parametrize("call, error, match", [
    (lambda: pdask.correlate(np.ones(5), np.ones(2)), TypeError, "in1 must be a dask"),
    (lambda: pdask.correlate(da.ones(5, chunks=2), da.ones(2, chunks=1)), TypeError,
     "in2 must be an in-memory array"),
    (lambda: pdask.convolve(da.ones(5, chunks=2), da.ones(2, chunks=1)), TypeError, "in-memory"),
    (lambda: pdask.correlate(da.ones(5, chunks=2), np.ones(2, complex)), TypeError, "in2"),
    (lambda: pdask.correlate(da.ones((5, 5), chunks=2), np.ones(2)), ValueError, "same number"),
    (lambda: pdask.correlate(da.ones(5, chunks=2), np.ones(2), mode="middle"), ValueError, "mode"),
    (lambda: pdask.similarity_map(da.ones(5, chunks=2), np.ones(6)), ValueError, "no larger"),
    (lambda: pdask.correlate(da.ones(5, chunks=2), np.ones(2), n_threads=0), ValueError, "n_threads"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_dtypes_follow_the_in_memory_rules():
    x = da.from_array(np.arange(30, dtype=np.int32), chunks=7)
    assert pdask.correlate(x, np.ones(3, np.int32)).dtype == np.float64
    x32 = da.from_array(np.ones(30, np.float32), chunks=7)
    assert pdask.correlate(x32, np.ones(3, np.float32)).compute().dtype == np.float32


@pytest.mark.parametrize("chunks", CHUNKINGS, ids=range(len(CHUNKINGS)))
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("stacked", [False, True])
def test_masked_missing_and_stacked_matching_equal_in_memory(chunks, mode, stacked, dtype):
    x = RNG.standard_normal((37, 41)).astype(dtype)
    x[RNG.random(x.shape) < 0.1] = np.nan
    t = RNG.standard_normal((3, 7, 4) if stacked else (7, 4)).astype(dtype)
    mask = RNG.random((7, 4)) > 0.3
    lazy = da.from_array(x, chunks=chunks)
    for centered in (False, True):
        for policy in ("omit", "propagate"):
            got = pdask.similarity_map(lazy, t, centered=centered, mode=mode, mask=mask,
                                       nan_policy=policy).compute(scheduler="threads")
            expected = signal.similarity_map(x, t, centered=centered, mode=mode, mask=mask,
                                             nan_policy=policy)
            assert got.shape == expected.shape and got.dtype == dtype
            np.testing.assert_allclose(got, expected, **tolerance(dtype))
    for normalized in (False, True):
        got = pdask.squared_difference_map(lazy, t, normalized=normalized, mask=mask,
                                           mode=mode).compute(scheduler="threads")
        expected = signal.squared_difference_map(x, t, normalized=normalized, mask=mask,
                                                 mode=mode)
        np.testing.assert_allclose(got, expected, rtol=tolerance(dtype)["rtol"],
                                   atol=tolerance(dtype)["atol"] * np.nanmax(expected))


@pytest.mark.parametrize("shape, chunks", [((60, 70), (13, 17)), ((300,), (7,)),
                                           ((20, 21, 22), (6, 8, 5)), ((4, 90), (4, 9))],
                         ids=str)
@pytest.mark.parametrize("min_distance", [1, 3, 6])
@pytest.mark.parametrize("subpixel", [False, True])
def test_find_peaks_across_chunk_borders_equals_in_memory(shape, chunks, min_distance,
                                                          subpixel):
    rng = np.random.default_rng(min_distance)
    score = rng.integers(0, 8, shape).astype(np.float64)   # ties and plateaus
    score += rng.random(shape) * 0.5 * (rng.random(shape) < 0.5)
    lazy = da.from_array(score, chunks=chunks)
    found = 0
    for kwargs in ({}, {"threshold": 4.0}, {"num_peaks": 5}, {"exclude_border": False}):
        got = pdask.find_peaks(lazy, min_distance=min_distance, subpixel=subpixel, **kwargs)
        expected = signal.find_peaks(score, min_distance=min_distance, subpixel=subpixel,
                                     **kwargs)
        found += len(expected[0])
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
    assert found > 0


def test_find_peaks_of_a_flat_map_and_bad_input():
    assert len(pdask.find_peaks(da.zeros((20, 20), chunks=5))[0]) == 0
    with pytest.raises(TypeError, match="score must be a dask.array.Array"):
        pdask.find_peaks(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="min_distance"):
        pdask.find_peaks(da.zeros((9, 9), chunks=3), min_distance=0)
    with pytest.raises(ValueError, match="mask must have the template's shape"):
        pdask.similarity_map(da.zeros((9, 9), chunks=3), np.ones((3, 3)), mask=np.ones(3))
    with pytest.raises(ValueError, match="nan_policy"):
        pdask.similarity_map(da.zeros((9, 9), chunks=3), np.ones((3, 3)), nan_policy="x")



# --- layers ---------------------------------------------------------------------

@pytest.mark.parametrize("stride, padding, dilation, groups, chunks", [
    (1, 0, 1, 1, (2, 3, 7, 6)),
    (2, 1, 1, 1, (3, 3, 5, 9)),
    (3, 2, 2, 3, (1, 3, 8, 8)),
    (1, "same", 2, 1, (4, 3, 6, 4)),
    (2, (2, 0), (1, 3), 3, (2, 3, 11, 5)),
    (4, 0, 1, 1, (2, 3, 3, 3)),       # stride beyond the window: no halo
])
def test_conv2d_tiled_over_batch_and_image_equals_in_memory(stride, padding, dilation,
                                                            groups, chunks, dtype):
    from pyconvnet import functional
    x = RNG.standard_normal((5, 3, 29, 23)).astype(dtype)
    w = RNG.standard_normal((6, 3 // groups, 3, 4)).astype(dtype)
    b = RNG.standard_normal(6).astype(dtype)
    lazy = pdask.conv2d(da.from_array(x, chunks=chunks), w, b, stride, padding, dilation, groups)
    got = lazy.compute(scheduler="threads")
    expected = functional.conv2d(x, w, b, stride, padding, dilation, groups)
    assert got.shape == expected.shape == lazy.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, **tolerance(dtype))


def test_conv2d_backward_sums_weight_gradients_over_chunks():
    from pyconvnet import functional
    x = RNG.standard_normal((7, 4, 12, 10))
    w = RNG.standard_normal((6, 2, 3, 3))
    dy = RNG.standard_normal((7, 6, 6, 5))
    lazy = pdask.conv2d_backward(da.from_array(dy, chunks=(3, 6, 6, 5)),
                                 da.from_array(x, chunks=(2, 4, 12, 10)),
                                 w, stride=2, padding=1, groups=2)
    eager = functional.conv2d_backward(dy, x, w, stride=2, padding=1, groups=2)
    for got, expected in zip(dask_compute(*lazy), eager):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def dask_compute(*arrays):
    import dask
    return dask.compute(*arrays, scheduler="threads")


@pytest.mark.parametrize("name, args, kwargs, shape", [
    ("max_pool2d", (3,), {"stride": 2, "padding": 1}, (5, 2, 11, 9)),
    ("avg_pool2d", (2,), {"ceil_mode": True}, (5, 2, 11, 9)),
    ("max_pool1d", (2,), {}, (5, 2, 11)),
    ("avg_pool3d", (2,), {}, (5, 2, 4, 6, 6)),
    ("adaptive_avg_pool2d", ((3, 2),), {}, (5, 2, 11, 9)),
    ("adaptive_max_pool2d", (4,), {}, (5, 2, 11, 9)),
    ("global_avg_pool2d", (), {}, (5, 2, 11, 9)),
])
def test_pooling_over_batch_chunks_equals_in_memory(name, args, kwargs, shape):
    from pyconvnet import functional
    x = RNG.standard_normal(shape)
    lazy = getattr(pdask, name)(da.from_array(x, chunks=(2,) + shape[1:]), *args, **kwargs)
    np.testing.assert_array_equal(lazy.compute(), getattr(functional, name)(x, *args, **kwargs))


def test_layer_bad_input():
    with pytest.raises(TypeError, match="x must be a dask"):
        pdask.max_pool2d(np.ones((1, 1, 4, 4)), 2)
    with pytest.raises(ValueError, match="return_indices"):
        pdask.max_pool2d(da.ones((1, 1, 4, 4)), 2, return_indices=True)
    with pytest.raises(TypeError, match="in-memory"):
        pdask.conv2d(da.ones((1, 1, 4, 4)), da.ones((1, 1, 2, 2)))
    with pytest.raises(ValueError, match="batched"):
        pdask.conv2d(da.ones((1, 4, 4)), np.ones((1, 1, 2, 2)))
    with pytest.raises(ValueError, match="batch size"):
        pdask.conv2d_backward(da.ones((2, 1, 3, 3)), da.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 2)))
