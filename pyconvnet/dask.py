"""Correlation, convolution and similarity maps of Dask arrays, chunk by chunk.

For arrays larger than memory, or work spread over a cluster: the large
input is a :class:`dask.array.Array`, the kernel or template an in-memory
array. Every output chunk is computed by the same compiled kernels as the
in-memory functions in :mod:`pyconvnet.signal`, from its input chunk
extended by the halo the kernel needs (``dask.array.map_overlap``), with the
GIL released so that Dask's threads run in parallel.

Dask parallelises over chunks, so each chunk's kernel runs on ``n_threads=1``
by default: the total number of threads is then the number Dask runs (a
worker's ``nthreads``), never that times the number of cores. Pass
``n_threads`` to change it.

Layers (:func:`conv2d`, :func:`conv2d_backward` and the pooling functions)
take a Dask array of shape ``(N, C, *spatial)`` chunked along the batch
axis; :func:`conv2d` may also chunk H and W, each output tile reading its
input tile plus the rows and columns its windows reach into.

Requires the optional dependency ``dask[array]`` (``pip install
"pyconvnet[dask]"``).
"""
import inspect

import numpy as np

from . import signal as _signal
from ._docstrings import docfiller, docformat
from ._geometry import kernel_extent, same_pair, window_count
from ._validation import check_choice, check_n_threads, check_padding, ntuple, result_dtype

try:
    import dask
    import dask.array as da
    from dask.array.overlap import ensure_minimum_chunksize
except ImportError as exc:  # pragma: no cover - exercised without dask only
    raise ImportError("pyconvnet.dask needs dask: pip install 'dask[array]'") from exc

__all__ = [
    "correlate",
    "convolve",
    "similarity_map",
    "squared_difference_map",
    "find_peaks",
    "conv2d",
    "conv2d_backward",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "global_avg_pool2d",
]


def _check_inputs(a, kernel, a_name, kernel_name):
    """A Dask array and an in-memory kernel of the same rank and dtype."""
    if not isinstance(a, da.Array):
        raise TypeError(f"{a_name} must be a dask.array.Array (use pyconvnet.signal "
                        f"for in-memory arrays), got {type(a).__name__}")
    if isinstance(kernel, da.Array):
        raise TypeError(f"{kernel_name} must be an in-memory array: every chunk needs "
                        f"all of it; call {kernel_name}.compute() first")
    # Validate exactly as the in-memory functions do, on a stand-in of a's
    # dtype and rank (the data stays lazy).
    stand_in = np.zeros((1,) * a.ndim, dtype=a.dtype)
    _, kernel = _signal._check_pair(stand_in, kernel, a_name, kernel_name)
    if any(n == 0 for n in a.shape):
        raise ValueError(f"{a_name} must not be empty, got shape {a.shape}")
    return a.astype(kernel.dtype), kernel


def _valid_blocks(a, kernel_shape, block_function, dtype, count=None):
    """Apply ``block_function`` (a 'valid'-mode operation with a kernel of
    ``kernel_shape``) chunk by chunk: each chunk is extended on its far side
    by ``K - 1`` elements of its neighbour along each axis, so the outputs
    of the chunks tile the whole 'valid' output with no seam. With a
    ``count``, each block's result has a new first axis of that length (one
    map per template of a stack)."""
    # Every chunk must hold a whole kernel, so that the halo comes from one
    # neighbour and the last chunk still yields an output: merge small ones.
    chunks = tuple(ensure_minimum_chunksize(k, c) for k, c in zip(kernel_shape, a.chunks))
    a = a.rechunk(chunks)
    out_chunks = tuple(c[:-1] + (c[-1] - (k - 1),) for c, k in zip(a.chunks, kernel_shape))
    depth = {axis: (0, k - 1) for axis, k in enumerate(kernel_shape)}
    if count is not None:
        extended = da.overlap.overlap(a, depth=depth, boundary="none")
        return extended.map_blocks(block_function, new_axis=0,
                                   chunks=((count,),) + out_chunks, dtype=dtype,
                                   meta=np.empty((0,) * (a.ndim + 1), dtype=dtype))
    return da.map_overlap(block_function, a, depth=depth, boundary="none", trim=False,
                          chunks=out_chunks, dtype=dtype,
                          meta=np.empty((0,) * a.ndim, dtype=dtype))


def _padded_for_window(a, kernel_shape, mode):
    """The part of ``a`` (zero-padded, lazily) whose 'valid' correlation with
    a kernel of ``kernel_shape`` is the ``mode`` output of the full one."""
    start, shape = _signal._full_window(a.shape, kernel_shape, mode)
    inside, pads = _signal._region_under_windows(a.shape, kernel_shape, start, shape)
    part = a[inside]
    if any(p != (0, 0) for p in pads):
        part = da.pad(part, pads, mode="constant")
    return part


def correlate(in1, in2, mode="full", method="auto", *, n_threads=1):
    """Cross-correlate a Dask array with an in-memory kernel, lazily.

    The result equals :func:`pyconvnet.signal.correlate` on the same data,
    whatever the chunking, within floating-point rounding: the sums are the
    same but may be grouped differently near the chunk edges (bit for bit in
    'valid' mode with ``method='direct'``); the FFT sizes depend on the
    chunks.

    Parameters
    ----------
    in1 : dask.array.Array
        The large input, of rank 1 to 3.
    in2 : array_like
        The kernel, in memory, of the same rank.
    mode : {'full', 'valid', 'same'}, default 'full'
        As in :func:`pyconvnet.signal.correlate`.
    method : {'auto', 'direct', 'fft'}, default 'auto'
        Chosen per chunk with ``'auto'``.
    n_threads : int, default 1
        Threads of each chunk's kernel (see the module notes).

    Returns
    -------
    dask.array.Array
        Lazy result; call ``.compute()``.

    Raises
    ------
    TypeError
        If ``in1`` is not a Dask array, or ``in2`` is one (it must be in
        memory: every chunk needs all of it), or a dtype is not real.
    ValueError
        As :func:`pyconvnet.signal.correlate`.

    Notes
    -----
    Chunks smaller than the kernel are merged with their neighbours first
    (``dask.array.overlap.ensure_minimum_chunksize``), so that each chunk's
    halo comes from a single neighbour.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from pyconvnet import dask as pdask, signal
    >>> x = np.arange(20.0)
    >>> lazy = pdask.correlate(da.from_array(x, chunks=6), [1.0, -1.0, 2.0], "same")
    >>> bool(np.array_equal(lazy.compute(), signal.correlate(x, [1.0, -1.0, 2.0], "same",
    ...                                                      method="direct")))
    True
    """
    check_choice(method, "method", _signal.METHODS)
    n_threads = check_n_threads(n_threads)
    a, kernel = _check_inputs(in1, in2, "in1", "in2")
    check_choice(mode, "mode", _signal.MODES)
    part = _padded_for_window(a, kernel.shape, mode)

    def block(chunk):
        return _signal.correlate(chunk, kernel, "valid", method, n_threads=n_threads)

    return _valid_blocks(part, kernel.shape, block, kernel.dtype)


def convolve(in1, in2, mode="full", method="auto", *, n_threads=1):
    """Convolve a Dask array with an in-memory kernel, lazily.

    Correlation with the kernel reversed along every axis; see
    :func:`correlate` for the parameters and :func:`pyconvnet.signal.convolve`
    for the in-memory result it equals.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from pyconvnet import dask as pdask
    >>> pdask.convolve(da.ones(5, chunks=2), np.array([1.0, 2.0])).compute()
    array([1., 3., 3., 3., 3., 2.])
    """
    if isinstance(in2, da.Array):
        _check_inputs(in1, in2, "in1", "in2")
    kernel = np.asarray(in2)
    return correlate(in1, kernel[(slice(None, None, -1),) * kernel.ndim], mode, method,
                     n_threads=n_threads)


@docfiller
def similarity_map(a, template, *, centered=False, mode="valid", mask=None,
                   nan_policy="propagate", method="auto", n_threads=1):
    """Cosine similarity of a template with every window of a Dask array.

    The lazy, chunked form of :func:`pyconvnet.signal.similarity_map`, equal
    to it on the same data up to floating-point rounding (the window norms'
    running sums restart at each chunk).

    Parameters
    ----------
    a : dask.array.Array
        The array to search, rank 1 to 3.
    template : array_like
        In memory, no larger than ``a`` along any axis; or a stack of
        templates ``(T, *template_shape)``, each chunk transformed once for
        all of them.
    centered, mode, mask, nan_policy, method
        As in :func:`pyconvnet.signal.similarity_map`.
    %(dask_n_threads)s

    Returns
    -------
    dask.array.Array
        ``(T, *out_shape)`` for a stack of templates.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from pyconvnet import dask as pdask
    >>> image = np.random.default_rng(0).random((64, 64))
    >>> lazy = pdask.similarity_map(da.from_array(image, chunks=20), image[30:40, 5:12],
    ...                             centered=True)
    >>> peak = np.unravel_index(int(lazy.argmax().compute()), lazy.shape)
    >>> tuple(int(p) for p in peak)
    (30, 5)
    """
    check_choice(method, "method", _signal.METHODS)
    check_choice(nan_policy, "nan_policy", _signal.NAN_POLICIES)
    n_threads = check_n_threads(n_threads)
    a, templates, stacked = _check_search(a, template)
    kernel_shape = templates.shape[1:]
    _signal._check_mask(mask, kernel_shape)
    check_choice(mode, "mode", _signal.MODES)
    part = _padded_for_window(a, kernel_shape, mode)

    def block(chunk):
        return _signal.similarity_map(chunk, templates if stacked else templates[0],
                                      centered=centered, mode="valid", mask=mask,
                                      nan_policy=nan_policy, method=method,
                                      n_threads=n_threads)

    return _valid_blocks(part, kernel_shape, block, templates.dtype,
                         len(templates) if stacked else None)


@docfiller
def squared_difference_map(a, template, *, normalized=False, mask=None, mode="valid",
                           method="auto", n_threads=1):
    """Sums of squared differences of a template with every window of a Dask array.

    The lazy, chunked form of :func:`pyconvnet.signal.squared_difference_map`,
    equal to it on the same data up to floating-point rounding.

    Parameters
    ----------
    a : dask.array.Array
        The array to search, rank 1 to 3.
    template : array_like
        In memory, or a stack of templates, as in :func:`similarity_map`.
    normalized, mask, mode, method
        As in :func:`pyconvnet.signal.squared_difference_map`.
    %(dask_n_threads)s

    Returns
    -------
    dask.array.Array

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from pyconvnet import dask as pdask
    >>> pdask.squared_difference_map(da.arange(6.0, chunks=3), [2.0, 3.0]).compute()
    array([8., 2., 0., 2., 8.])
    """
    check_choice(method, "method", _signal.METHODS)
    n_threads = check_n_threads(n_threads)
    a, templates, stacked = _check_search(a, template)
    kernel_shape = templates.shape[1:]
    _signal._check_mask(mask, kernel_shape)
    check_choice(mode, "mode", _signal.MODES)
    part = _padded_for_window(a, kernel_shape, mode)

    def block(chunk):
        return _signal.squared_difference_map(
            chunk, templates if stacked else templates[0], normalized=normalized, mask=mask,
            mode="valid", method=method, n_threads=n_threads)

    return _valid_blocks(part, kernel_shape, block, templates.dtype,
                         len(templates) if stacked else None)


def find_peaks(score, *, min_distance=1, threshold=None, num_peaks=None, exclude_border=True,
               subpixel=False):
    """Local maxima of a Dask score map, highest first.

    Equal to :func:`pyconvnet.signal.find_peaks` on the same data, across
    chunk borders: each chunk finds its candidates with a halo of
    ``min_distance`` elements from its neighbours (the map's own edges
    extended by their nearest values), and only the candidates, few next to
    the map, are brought into memory to be thresholded, ordered and spaced.

    Parameters
    ----------
    score : dask.array.Array
        A score map of rank 1 to 3.
    min_distance, threshold, num_peaks, exclude_border, subpixel
        As in :func:`pyconvnet.signal.find_peaks`.

    Returns
    -------
    positions : (P, ndim) ndarray
    values : (P,) ndarray
        Computed, in memory.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from pyconvnet import dask as pdask
    >>> score = np.zeros((12, 12))
    >>> score[5, 6], score[9, 2] = 1.0, 0.5
    >>> pdask.find_peaks(da.from_array(score, chunks=6))
    (array([[5, 6],
           [9, 2]]), array([1. , 0.5]))
    """
    if not isinstance(score, da.Array):
        raise TypeError(f"score must be a dask.array.Array (use pyconvnet.signal for "
                        f"in-memory arrays), got {type(score).__name__}")
    stand_in = np.zeros((1,) * score.ndim, dtype=score.dtype)
    _, min_distance, threshold, num_peaks, border = _signal._check_peak_args(
        stand_in, min_distance, threshold, num_peaks, exclude_border)
    if any(n == 0 for n in score.shape):
        raise ValueError(f"score must not be empty, got shape {score.shape}")
    values = score.astype(_signal.result_dtype(score.dtype))
    if any(n <= 2 * min_distance + 1 for n in values.shape):
        # too thin for halos: a thin map fits in memory
        in_memory = values.compute()
        return _signal.find_peaks(in_memory, min_distance=min_distance, threshold=threshold,
                                  num_peaks=num_peaks, exclude_border=exclude_border,
                                  subpixel=subpixel)
    values = values.rechunk(tuple(ensure_minimum_chunksize(min_distance + 1, c)
                                  for c in values.chunks))
    candidates = da.map_overlap(
        lambda chunk: _signal._peak_candidates(chunk, min_distance), values,
        depth=min_distance, boundary="nearest", dtype=bool)
    lowest = da.nanmin(values) if threshold is None else threshold
    coords, trivial, lowest = dask.compute(da.argwhere(candidates), candidates.all(), lowest)
    if trivial and values.size > 1:
        coords = coords[:0]     # a flat map has no peak
    coords = np.asarray(coords, dtype=np.intp).reshape(-1, values.ndim)
    found = np.asarray(_signal._gather(values, coords), dtype=values.dtype)
    return _signal._select_peaks(values, coords, found, min_distance, float(lowest), num_peaks,
                                 border, subpixel)


def _check_search(a, template):
    """A Dask array and an in-memory template or stack of them, validated
    as the in-memory functions do, on a stand-in of ``a``'s dtype and rank."""
    if not isinstance(a, da.Array):
        raise TypeError(f"a must be a dask.array.Array (use pyconvnet.signal for in-memory "
                        f"arrays), got {type(a).__name__}")
    if isinstance(template, da.Array):
        raise TypeError("template must be an in-memory array: every chunk needs all of it; "
                        "call template.compute() first")
    if any(n == 0 for n in a.shape):
        raise ValueError(f"a must not be empty, got shape {a.shape}")
    raw, stacked = _signal._template_stack(template, a.ndim)
    # validate dtype and rank on a stand-in of a's (the data stays lazy)
    stand_in = np.zeros((1,) * a.ndim, dtype=a.dtype)
    _, first = _signal._check_pair(stand_in, raw[0], "a", "template")
    templates = _signal.as_float_array(raw, "template", dtype=first.dtype)
    _signal._check_fits(first.shape, a.shape)
    return a.astype(templates.dtype), templates, stacked


# --- layers, chunked along the batch (and, for conv2d, the image) ------------

def _check_batch_array(x, name, min_ndim):
    if not isinstance(x, da.Array):
        raise TypeError(f"{name} must be a dask.array.Array (use pyconvnet.functional "
                        f"for in-memory arrays), got {type(x).__name__}")
    if x.ndim < min_ndim:
        raise ValueError(f"{name} must be batched, (N, C, *spatial), got shape {x.shape}")
    return x


def _in_memory_dtype(x, name):
    """The dtype the in-memory functions compute in for ``x``'s dtype."""
    try:
        return result_dtype(x.dtype)
    except TypeError as exc:
        raise TypeError(f"{name}: {exc}") from None


def _batchwise(function, x, name, n_spatial, kwargs):
    """Apply an in-memory layer function to each batch chunk of ``x``."""
    x = _check_batch_array(x, name, 2 + n_spatial)
    dtype = _in_memory_dtype(x, name)
    x = x.rechunk({axis: -1 for axis in range(1, x.ndim)})
    # One in-memory call on a single sample checks every argument now and
    # gives the shape of each output sample.
    probe = function(np.zeros((1,) + x.shape[1:], dtype=dtype), **kwargs)
    sample_shape = probe.shape[1:]
    return da.map_blocks(lambda block: function(block, **kwargs), x, dtype=probe.dtype,
                         chunks=(x.chunks[0],) + tuple((n,) for n in sample_shape),
                         meta=np.empty((0,) * x.ndim, dtype=probe.dtype))


def _pooling_function(name, n_spatial):
    def pool(x, *args, n_threads=1, **kwargs):
        from . import functional

        in_memory = getattr(functional, name)
        signature = inspect.signature(in_memory)
        bound = signature.bind(np.empty(0), *args, **kwargs)
        options = dict(bound.arguments)
        options.pop("x")
        options["n_threads"] = check_n_threads(n_threads)
        if options.get("return_indices"):
            raise ValueError("return_indices=True is not supported on Dask arrays: "
                             "compute the indices chunk by chunk with "
                             f"dask.array.map_blocks(pyconvnet.functional.{name}, ...)")
        return _batchwise(in_memory, x, "x", n_spatial, options)

    pool.__name__ = pool.__qualname__ = name
    example_shape = (6, 2) + (8,) * n_spatial
    example_args = "" if name.startswith("global") else (
        ", 1" if name.startswith("adaptive") else ", 2")
    pool.__doc__ = docformat("""Lazy :func:`pyconvnet.functional.%(name)s` of a Dask array chunked
    along the batch axis.

    Takes the same arguments, with ``x`` a :class:`dask.array.Array` of
    shape ``(N, C, *spatial)``; the other axes are merged into one chunk.
    Each chunk runs on ``n_threads`` threads (default 1, see the module
    notes). ``return_indices=True`` is refused.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from pyconvnet import dask as pdask, functional
    >>> x = np.random.default_rng(0).random(%(example_shape)s)
    >>> lazy = pdask.%(name)s(da.from_array(x, chunks=4)%(example_args)s)
    >>> bool(np.array_equal(lazy.compute(), functional.%(name)s(x%(example_args)s)))
    True
    """, name=name, example_shape=example_shape, example_args=example_args)
    return pool


max_pool1d = _pooling_function("max_pool1d", 1)
max_pool2d = _pooling_function("max_pool2d", 2)
max_pool3d = _pooling_function("max_pool3d", 3)
avg_pool1d = _pooling_function("avg_pool1d", 1)
avg_pool2d = _pooling_function("avg_pool2d", 2)
avg_pool3d = _pooling_function("avg_pool3d", 3)
adaptive_avg_pool2d = _pooling_function("adaptive_avg_pool2d", 2)
adaptive_max_pool2d = _pooling_function("adaptive_max_pool2d", 2)
global_avg_pool2d = _pooling_function("global_avg_pool2d", 2)


def _conv_geometry(weight_shape, stride, padding, dilation, spatial):
    """Per spatial axis: (left pad, right pad, stride, extent d(k-1)+1)."""
    n = len(spatial)
    stride = ntuple(stride, n, "stride", minimum=1)
    dilation = ntuple(dilation, n, "dilation", minimum=1)
    kernel = weight_shape[2:]
    extents = [kernel_extent(k, d) for k, d in zip(kernel, dilation)]
    padding = check_padding(padding, "padding", n)
    if padding == "valid":
        pads = [(0, 0)] * n
    elif padding == "same":
        pads = [same_pair(k, d) for k, d in zip(kernel, dilation)]
    else:
        pads = [(p, p) for p in padding]
    return pads, stride, extents


def _spatial_chunks(chunks, length, stride, extent):
    """Chunks along one padded spatial axis for a strided convolution: every
    chunk but the last a multiple of the stride and at least as long as the
    halo, the last long enough to hold a whole window."""
    halo = max(0, extent - stride)
    size = max(max(chunks), halo, stride)
    size = -(-size // stride) * stride
    bounds = list(range(0, length, size))
    sizes = [min(size, length - b) for b in bounds]
    while len(sizes) > 1 and sizes[-1] < max(halo, extent):
        last = sizes.pop()
        sizes[-1] += last
    return tuple(sizes)


@docfiller
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           n_threads=1):
    """Lazy :func:`pyconvnet.functional.conv2d` of a Dask array.

    ``x`` is a :class:`dask.array.Array` of shape ``(N, C, H, W)``, chunked
    along the batch axis and, for large images, along H and W; ``weight``
    and ``bias`` are in memory. Each output tile is computed from its input
    tile extended by the ``d (k - 1) + 1 - s`` rows and columns its last
    windows reach into (taken from the neighbouring chunks), after the
    padding has been added lazily, so the result equals the in-memory one
    whatever the chunks (H and W are rechunked to multiples of the stride).

    Parameters
    ----------
    x : dask.array.Array
    weight, bias, stride, padding, dilation, groups
        As in :func:`pyconvnet.functional.conv2d`.
    %(dask_n_threads)s

    Returns
    -------
    dask.array.Array

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from pyconvnet import dask as pdask, functional
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.random((4, 3, 40, 30)), rng.random((5, 3, 3, 3))
    >>> lazy = pdask.conv2d(da.from_array(x, chunks=(2, 3, 16, 16)), w, stride=2, padding=1)
    >>> bool(np.allclose(lazy.compute(), functional.conv2d(x, w, stride=2, padding=1)))
    True
    """
    from . import functional

    x = _check_batch_array(x, "x", 4)
    if isinstance(weight, da.Array) or isinstance(bias, da.Array):
        raise TypeError("weight and bias must be in-memory arrays: every chunk needs "
                        "all of them; call .compute() first")
    n_threads = check_n_threads(n_threads)
    dtype = _in_memory_dtype(x, "x")
    # Validate every argument exactly as the in-memory function does.
    probe = functional.conv2d(np.zeros((1,) + x.shape[1:], dtype=dtype), weight, bias,
                              stride, padding, dilation, groups, n_threads=1)
    weight = np.asarray(weight)
    pads, strides, extents = _conv_geometry(weight.shape, stride, padding, dilation,
                                            x.shape[2:])
    if any(p != (0, 0) for p in pads):
        x = da.pad(x, [(0, 0), (0, 0)] + pads, mode="constant")
    chunks = [x.chunks[0], (x.shape[1],)]
    for axis, (s, e) in enumerate(zip(strides, extents)):
        chunks.append(_spatial_chunks(x.chunks[2 + axis], x.shape[2 + axis], s, e))
    x = x.rechunk(tuple(chunks))
    out_chunks = [x.chunks[0], (probe.shape[1],)]
    for axis, (s, e) in enumerate(zip(strides, extents)):
        sizes = x.chunks[2 + axis]
        # a chunk of c rows (a multiple of s) yields c / s outputs; the last
        # one, without a halo, as many as a window of extent e fits in it
        out_chunks.append(tuple(c // s for c in sizes[:-1]) + (window_count(sizes[-1], e, s, 0),))
    depth = {0: 0, 1: 0}
    depth.update({2 + axis: (0, max(0, e - s)) for axis, (s, e) in
                  enumerate(zip(strides, extents))})

    def block(chunk):
        return functional.conv2d(chunk, weight, bias, stride=strides, padding=0,
                                 dilation=dilation, groups=groups, n_threads=n_threads)

    return da.map_overlap(block, x, depth=depth, boundary="none", trim=False,
                          chunks=tuple(out_chunks), dtype=probe.dtype,
                          meta=np.empty((0,) * 4, dtype=probe.dtype))


def conv2d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1,
                    *, n_threads=1):
    """Lazy :func:`pyconvnet.functional.conv2d_backward` over batch chunks.

    ``grad_output`` and ``x`` are Dask arrays chunked along the batch axis
    (the other axes are merged into one chunk, and ``grad_output`` takes
    ``x``'s batch chunks). The input gradient is computed chunk by chunk;
    the weight and bias gradients are the sums of the chunks' gradients.

    Returns
    -------
    grad_input : dask.array.Array
    grad_weight, grad_bias : dask.array.Array
        Lazy sums over the batch chunks.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from pyconvnet import dask as pdask, functional
    >>> rng = np.random.default_rng(0)
    >>> x, w, dy = rng.random((6, 2, 9, 9)), rng.random((3, 2, 3, 3)), rng.random((6, 3, 7, 7))
    >>> lazy = pdask.conv2d_backward(da.from_array(dy, chunks=2), da.from_array(x, chunks=4), w)
    >>> eager = functional.conv2d_backward(dy, x, w)
    >>> all(bool(np.allclose(a.compute(), b)) for a, b in zip(lazy, eager))
    True
    """
    from . import functional

    x = _check_batch_array(x, "x", 4)
    grad_output = _check_batch_array(grad_output, "grad_output", 4)
    if isinstance(weight, da.Array):
        raise TypeError("weight must be an in-memory array; call .compute() first")
    if grad_output.shape[0] != x.shape[0]:
        raise ValueError(f"grad_output and x must have the same batch size, got "
                         f"{grad_output.shape[0]} and {x.shape[0]}")
    n_threads = check_n_threads(n_threads)
    dtype = np.result_type(_in_memory_dtype(x, "x"), _in_memory_dtype(grad_output, "grad_output"))
    # Validate shapes and arguments with a one-sample in-memory call.
    probe = functional.conv2d_backward(np.zeros((1,) + grad_output.shape[1:], dtype),
                                       np.zeros((1,) + x.shape[1:], dtype), weight, stride,
                                       padding, dilation, groups, n_threads=1)
    x = x.rechunk({1: -1, 2: -1, 3: -1})
    grad_output = grad_output.rechunk((x.chunks[0],) + tuple((n,) for n in grad_output.shape[1:]))

    def grads(dy, xb):
        return functional.conv2d_backward(dy, xb, weight, stride, padding, dilation, groups,
                                          n_threads=n_threads)

    # One task per batch chunk computes all three gradients once.
    tasks = [dask.delayed(grads, nout=3)(dy, xb) for dy, xb in
             zip(grad_output.to_delayed().ravel(), x.to_delayed().ravel())]
    grad_input = da.concatenate(
        [da.from_delayed(task[0], shape=(n,) + x.shape[1:], dtype=probe[0].dtype)
         for task, n in zip(tasks, x.chunks[0])], axis=0)
    grad_weight, grad_bias = (
        da.stack([da.from_delayed(task[index], shape=probe[index].shape,
                                  dtype=probe[index].dtype) for task in tasks]).sum(axis=0)
        for index in (1, 2))
    return grad_input, grad_weight, grad_bias
