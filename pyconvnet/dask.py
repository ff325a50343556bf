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

Requires the optional dependency ``dask[array]`` (``pip install
"pyconvnet[dask]"``).
"""
import numpy as np

from . import signal as _signal
from ._validation import check_choice, check_n_threads

try:
    import dask.array as da
    from dask.array.overlap import ensure_minimum_chunksize
except ImportError as exc:  # pragma: no cover - exercised without dask only
    raise ImportError("pyconvnet.dask needs dask: pip install 'dask[array]'") from exc

__all__ = ["correlate", "convolve", "similarity_map"]


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


def _valid_blocks(a, kernel_shape, block_function, dtype):
    """Apply ``block_function`` (a 'valid'-mode operation with a kernel of
    ``kernel_shape``) chunk by chunk: each chunk is extended on its far side
    by ``K - 1`` elements of its neighbour along each axis, so the outputs
    of the chunks tile the whole 'valid' output with no seam."""
    # Every chunk must hold a whole kernel, so that the halo comes from one
    # neighbour and the last chunk still yields an output: merge small ones.
    chunks = tuple(ensure_minimum_chunksize(k, c) for k, c in zip(kernel_shape, a.chunks))
    a = a.rechunk(chunks)
    out_chunks = tuple(c[:-1] + (c[-1] - (k - 1),) for c, k in zip(a.chunks, kernel_shape))
    depth = {axis: (0, k - 1) for axis, k in enumerate(kernel_shape)}
    return da.map_overlap(block_function, a, depth=depth, boundary="none", trim=False,
                          chunks=out_chunks, dtype=dtype,
                          meta=np.empty((0,) * a.ndim, dtype=dtype))


def _padded_for_window(a, kernel_shape, mode):
    """The part of ``a`` (zero-padded, lazily) whose 'valid' correlation with
    a kernel of ``kernel_shape`` is the ``mode`` output of the full one."""
    start, shape = _signal._full_window(a.shape, kernel_shape, mode)
    # Output m of the window reads a[start + m - (K - 1) + k], 0 <= k < K.
    lo = [s - (k - 1) for s, k in zip(start, kernel_shape)]
    hi = [s + n for s, n in zip(start, shape)]
    pads = [(max(-l, 0), max(h - n, 0)) for l, h, n in zip(lo, hi, a.shape)]
    inside = tuple(slice(max(l, 0), min(h, n)) for l, h, n in zip(lo, hi, a.shape))
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


def similarity_map(a, template, *, centered=False, mode="valid", method="auto",
                   n_threads=1):
    """Cosine similarity of a template with every window of a Dask array.

    The lazy, chunked form of :func:`pyconvnet.signal.similarity_map`, equal
    to it on the same data up to floating-point rounding (the window norms'
    running sums restart at each chunk).

    Parameters
    ----------
    a : dask.array.Array
        The array to search, rank 1 to 3.
    template : array_like
        In memory, no larger than ``a`` along any axis.
    centered, mode, method
        As in :func:`pyconvnet.signal.similarity_map`.
    n_threads : int, default 1
        Threads of each chunk's kernel.

    Returns
    -------
    dask.array.Array

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
    n_threads = check_n_threads(n_threads)
    a, template = _check_inputs(a, template, "a", "template")
    if any(k > n for k, n in zip(template.shape, a.shape)):
        raise ValueError(f"template must be no larger than a along every axis, got "
                         f"template shape {template.shape} and a shape {a.shape}")
    check_choice(mode, "mode", _signal.MODES)
    part = _padded_for_window(a, template.shape, mode)

    def block(chunk):
        return _signal.similarity_map(chunk, template, centered=centered, mode="valid",
                                      method=method, n_threads=n_threads)

    return _valid_blocks(part, template.shape, block, template.dtype)
