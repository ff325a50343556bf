r"""Correlation, convolution and sliding cosine similarity of 1-D, 2-D and 3-D arrays.

Everything here is one operation, the correlation of an array ``a`` with a
smaller ``kernel`` over some window of the *full* output:

.. math::

    z[m] = \sum_{k} a[m + k - (K - 1)] \, \mathrm{kernel}[k],
    \qquad 0 \le m < N + K - 1,

with ``a`` taken as zero outside its bounds (one such sum per axis). The
modes choose the window of ``z``: 'full' keeps all of it, 'valid' the part
where the kernel lies wholly inside ``a``, and 'same' a centred window of
``a``'s size. Convolution is correlation with the kernel reversed along every
axis (rotated by 180 degrees in 2-D), and the cosine similarity map divides the
correlation by the norms of the template and of each window.

The correlation runs either directly (typed Cython loops over OpenMP threads)
or through real FFTs on the same number of threads: one transform of
everything (:mod:`scipy.fft`), or overlap-save blocks in parallel; with
``method='auto'`` a cost model picks the fastest. The 2-D similarity maps
have paths of their own: direct loops that keep a block of outputs in
registers, and tiles of the image transformed, multiplied by every
template's spectrum and transformed back by a pool of threads, each tile
on one thread; a cost model fitted on measured times picks the path and
the tiles.
"""
import functools
import itertools
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.fft
import scipy.ndimage
import scipy.spatial

from ._docstrings import docfiller
from ._ext import _correlate
from ._validation import (
    as_float_array,
    check_bool,
    check_choice,
    check_int,
    check_n_threads,
    check_ndim,
    result_dtype,
)
from ._workspace import arrays as _workspace

__all__ = ["correlate", "convolve", "similarity_map", "squared_difference_map", "find_peaks",
           "choose_method", "output_shape"]

MODES = ("full", "valid", "same")
METHODS = ("auto", "direct", "fft")
NAN_POLICIES = ("propagate", "omit")

# Cost model of method='auto', in seconds per unit of work on one thread,
# fitted on a 2-core AVX2 machine: one multiply-add of the direct loops, and
# one N*log2(N) of a real FFT of N points.
_DIRECT_COST = 0.12e-9
_FFT_COST = 0.6e-9
_FFT_OVERHEAD = 30e-6
# Large 1-D and 2-D outputs are transformed in overlapping blocks
# (overlap-save): small transforms stay in cache and rows of them run in
# parallel. Per rank, a block is this many times the kernel length along
# each axis, within (shortest, longest); threads take tasks of about
# _TASK_POINTS points. 3-D blocks measured slower than one whole transform.
# Each task costs about _TASK_OVERHEAD seconds besides its FFTs, and starting
# the threads of a call _POOL_OVERHEAD.
_BLOCK_RULES = {1: (4096, 8, 1 << 16), 2: (128, 5, 256)}
_TASK_POINTS = 1 << 17
_TASK_OVERHEAD = 0.3e-3
_POOL_OVERHEAD = 0.5e-3
_WHOLE_PENALTY = 1.5
# Tiles per task of the tiled 2-D transforms: about this many points. Each
# task holds the GIL for some 0.1 ms of Python between its transforms;
# measured on one thread, tasks of 2**18 to 2**20 points cost the same, and
# the larger leave the GIL free for more threads.
_TILE_TASK_POINTS = 1 << 19
# The tiled 2-D transforms' cost model (see _tile_cost), seconds per unit on
# one thread: per P log2 P of a tile, per point, per P log2 P and log2 P
# beyond 17, per P log2 P of a single tile of everything; and the speed-up
# of the threads on a single tile (they share the lines of each axis).
_TILE_COSTS = (11.3e-11, 5.36e-9, 0.98e-11, 3.2e-10)
# The register-blocked direct 2-D loops' cost model: seconds on one thread
# per multiply-add and per output and column of taps (the loads of the
# input rows), float32, by the vector loops the CPU runs (bench_signal.py
# --fit on the same machine, its loops limited to each level); float64
# counts _DIRECT_DOUBLE times as much (half the lanes).
_DIRECT_COSTS = {"avx512": (1.2e-11, 9.75e-11), "avx2": (2.76e-11, 5.97e-11),
                 "baseline": (1.04e-10, 1.54e-10)}
_DIRECT_DOUBLE = 1.9
_WHOLE_SPEEDUP = 1.3


def output_shape(shape1, shape2, mode="full"):
    """Shape of ``correlate(in1, in2, mode)`` for inputs of these shapes.

    Parameters
    ----------
    shape1, shape2 : tuple of int
        Shapes of the two inputs (same length).
    mode : {'full', 'valid', 'same'}
        The output window (see :func:`correlate`).

    Returns
    -------
    tuple of int

    Examples
    --------
    >>> output_shape((5,), (3,), "full"), output_shape((5,), (3,), "valid")
    ((7,), (3,))
    >>> output_shape((5,), (3,), "same"), output_shape((3,), (5,), "valid")
    ((5,), (3,))
    """
    return _full_window(tuple(shape1), tuple(shape2), mode)[1]


def _full_window(shape1, shape2, mode):
    """Start and shape of a mode's window within the full correlation.

    'full' is the whole of it (``N1 + N2 - 1`` per axis); 'same' has ``N1``
    elements starting at ``(N2 - 1) // 2``, as scipy centres it; 'valid'
    keeps the ``|N1 - N2| + 1`` positions where the smaller input lies wholly
    inside the larger, which requires one input to be at least as large as
    the other along every axis.
    """
    check_choice(mode, "mode", MODES)
    if mode == "full":
        return (0,) * len(shape1), tuple(n1 + n2 - 1 for n1, n2 in zip(shape1, shape2))
    if mode == "same":
        return tuple((n2 - 1) // 2 for n2 in shape2), tuple(shape1)
    if not (all(n1 >= n2 for n1, n2 in zip(shape1, shape2))
            or all(n2 >= n1 for n1, n2 in zip(shape1, shape2))):
        raise ValueError(
            "mode='valid' needs one input at least as large as the other along "
            f"every axis, got shapes {shape1} and {shape2}")
    return (tuple(min(n1, n2) - 1 for n1, n2 in zip(shape1, shape2)),
            tuple(abs(n1 - n2) + 1 for n1, n2 in zip(shape1, shape2)))


def _check_pair(in1, in2, name1, name2, dtype=None):
    """Validate two real arrays of equal rank 1 to 3 and convert them to one
    floating dtype."""
    raw1, raw2 = np.asarray(in1), np.asarray(in2)
    try:
        common = result_dtype(raw1.dtype, raw2.dtype) if dtype is None else dtype
    except TypeError:
        # name the offending argument
        as_float_array(raw1, name1)
        as_float_array(raw2, name2)
        raise
    a = as_float_array(raw1, name1, dtype=common)
    b = as_float_array(raw2, name2, dtype=common)
    check_ndim(a, name1, (1, 2, 3))
    if b.ndim != a.ndim:
        raise ValueError(f"{name1} and {name2} must have the same number of "
                         f"dimensions, got {a.ndim} and {b.ndim}")
    for arr, name in ((a, name1), (b, name2)):
        if arr.size == 0:
            raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    return a, b


def _as3d(arr):
    return arr.reshape((1,) * (3 - arr.ndim) + arr.shape)


def _fft_lengths(full_shape, start, shape):
    """Smallest fast FFT lengths whose circular wrap-around leaves the
    window ``[start, start + shape)`` of the full correlation untouched."""
    return tuple(
        scipy.fft.next_fast_len(max(s + n, f - s), real=True)
        for f, s, n in zip(full_shape, start, shape))


def choose_method(in1, in2, mode="full", *, n_threads=None):
    """Predict whether direct or FFT correlation is faster for these inputs.

    Parameters
    ----------
    in1, in2 : array_like or tuple of int
        The inputs of :func:`correlate` or :func:`convolve`, or their shapes.
    mode : {'full', 'valid', 'same'}
    n_threads : int, optional
        Threads available to either method (see :func:`correlate`).

    Returns
    -------
    {'direct', 'fft'}

    Notes
    -----
    Derived in :ref:`theory-correlation` and :ref:`theory-overlap-save`.

    The direct loops cost about one multiply-add per output element and
    kernel element, spread over the threads. The FFT method runs one of two
    ways, whichever the model predicts faster: three real transforms of the
    whole padded size :math:`L` (about :math:`L \\log_2 L` each), or
    overlap-save, which cuts the output into blocks a few kernel lengths
    wide (1-D and 2-D), transforms each block forward and back, and hands
    rows of blocks to the threads. The constants were fitted on a 2-core
    x86-64 machine; with float32, the direct loops do twice as many
    operations per vector instruction and the FFTs about 1.5 times as many.

    Examples
    --------
    >>> choose_method((512, 512), (3, 3))
    'direct'
    >>> choose_method((2048, 2048), (63, 63))
    'fft'
    """
    shape1 = tuple(in1) if _is_shape(in1) else np.shape(in1)
    shape2 = tuple(in2) if _is_shape(in2) else np.shape(in2)
    dtype = np.float64
    if not _is_shape(in1) and not _is_shape(in2):
        dtype = result_dtype(np.asarray(in1).dtype, np.asarray(in2).dtype)
    start, shape = _full_window(shape1, shape2, mode)
    return _choose(shape1, shape2, start, shape, dtype, check_n_threads(n_threads))


def _is_shape(value):
    return isinstance(value, tuple) and all(isinstance(v, (int, np.integer)) for v in value)


def _choose(shape1, shape2, start, shape, dtype, n_threads, count=1):
    """Cost model of method='auto' for the window ``[start, start + shape)``
    (of ``count`` kernels of ``shape2``, whose FFTs share the forward
    transform of the first input: each costs about half of one)."""
    kernel_size = min(math.prod(shape1), math.prod(shape2))
    direct = count * math.prod(shape) * kernel_size * _DIRECT_COST / n_threads
    fft = (count + 1) / 2 * _fft_plan(shape1, shape2, start, shape, n_threads)[0]
    if np.dtype(dtype) == np.float32:
        # Twice the lanes per vector instruction; the FFTs gain less.
        direct, fft = direct / 2, fft / 1.5
    return "direct" if direct <= fft + _FFT_OVERHEAD else "fft"


def _choose_tiled(shape, kernel_shape, count, dtype, n_threads):
    """method='auto' for the 'valid' correlations of a 2-D array with
    ``count`` kernels: the direct loops or the tiled transforms."""
    itemsize = np.dtype(dtype).itemsize
    outputs = math.prod(n - k + 1 for n, k in zip(shape, kernel_shape))
    per_tap, per_column = _DIRECT_COSTS[_correlate.simd()]
    direct = (count * outputs * (math.prod(kernel_shape) * per_tap + kernel_shape[-1] * per_column)
              * (_DIRECT_DOUBLE if itemsize == 8 else 1.0) / n_threads)
    fft = _tile_plan(tuple(shape), tuple(kernel_shape), count, n_threads, itemsize)[0]
    return "direct" if direct <= fft else "fft"


def _fft_plan(shape1, shape2, start, shape, n_threads):
    """Predicted time of the FFT method and how to run it: block lengths
    for overlap-save, or None for one transform of everything."""
    full = tuple(n1 + n2 - 1 for n1, n2 in zip(shape1, shape2))
    n_fft = math.prod(_fft_lengths(full, start, shape))
    # One large transform splits its lines among the threads: less than linear.
    whole = 3 * n_fft * math.log2(max(n_fft, 2)) * _FFT_COST / min(n_threads, 1.6)
    if len(shape) not in _BLOCK_RULES:
        return whole, None
    lengths = _block_lengths(shape2, shape)
    counts = _block_counts(shape, shape2, lengths)
    n_blocks, volume = math.prod(counts), math.prod(lengths)
    if n_blocks == 1:
        return whole, None
    # Tasks of blocks go to the threads whole, with a fixed cost per task and
    # one for starting the threads.
    n_tasks = len(_block_tasks(counts, lengths, n_threads, _TASK_POINTS))
    n_workers = min(n_threads, n_tasks)
    blocked = ((2 * n_blocks * volume * math.log2(volume) * _FFT_COST + n_tasks * _TASK_OVERHEAD)
               / n_workers + (_POOL_OVERHEAD if n_workers > 1 else 0))
    # One transform of everything takes fresh memory for each of its arrays,
    # whose first touch costs page faults that the model does not count
    # (blocks reuse their workspaces): measured, blocks win until about 1.5
    # times the predicted cost of the whole transform.
    return (blocked, lengths) if blocked < _WHOLE_PENALTY * whole else (whole, None)


def _block_counts(shape, kernel_shape, lengths):
    """Blocks per axis: each block of ``L`` inputs gives ``L - K + 1`` outputs."""
    return [-(-n // (length - k + 1)) for n, k, length in zip(shape, kernel_shape, lengths)]


def _block_tasks(counts, lengths, n_threads, task_points):
    """Share the blocks out in tasks of about ``task_points`` points: runs of
    whole rows of blocks (along the first axis), as many as a multiple of
    the thread count where there are enough rows, or parts of single rows
    when one row alone is larger. A task is a slice of block numbers per
    axis."""
    ndim = len(counts)
    row_points = math.prod(counts[1:]) * math.prod(lengths)
    if ndim > 1 and counts[1] > 1 and row_points > task_points:
        parts = min(counts[1], -(-row_points // task_points))
        width = -(-counts[1] // parts)
        rest = (slice(None),) * (ndim - 2)
        return [(slice(r, r + 1), slice(c, c + width)) + rest
                for r in range(counts[0]) for c in range(0, counts[1], width)]
    n_tasks = min(counts[0], -(-counts[0] * row_points // task_points))
    n_tasks = min(counts[0], -(-n_tasks // n_threads) * n_threads)
    per_task = -(-counts[0] // n_tasks)
    rest = (slice(None),) * (ndim - 1)
    return [(slice(r, r + per_task),) + rest for r in range(0, counts[0], per_task)]


def _block_lengths(kernel_shape, shape):
    """Overlap-save block lengths for an output window of ``shape``: a few
    kernel lengths per axis within the bounds of ``_BLOCK_RULES``, or the
    whole axis when that is shorter."""
    shortest, factor, longest = _BLOCK_RULES[len(shape)]
    lengths = []
    for k, n in zip(kernel_shape, shape):
        length = max(min(max(shortest, factor * k), longest), 2 * k)
        lengths.append(scipy.fft.next_fast_len(min(length, n + k - 1), real=True))
    return tuple(lengths)


def _correlate_window(a, kernel, start, shape, method, n_threads):
    """Window ``[start, start + shape)`` of the full correlation of ``a`` with
    ``kernel`` (both validated, same dtype and rank)."""
    if method == "auto":
        method = _choose(a.shape, kernel.shape, start, shape, a.dtype, n_threads)
    if method == "fft":
        return _fft_window(a, kernel, start, shape, n_threads)
    if kernel.size > a.size:
        # Correlation with the roles swapped is the full output reversed: loop
        # over the smaller array, then read the mirrored window backwards.
        full = [n1 + n2 - 1 for n1, n2 in zip(a.shape, kernel.shape)]
        mirrored = tuple(f - s - n for f, s, n in zip(full, start, shape))
        flipped = _direct_window(kernel, a, mirrored, shape, n_threads)
        return np.ascontiguousarray(flipped[(slice(None, None, -1),) * a.ndim])
    return _direct_window(a, kernel, start, shape, n_threads)


def _direct_window(a, kernel, start, shape, n_threads, out=None):
    if out is None:
        out = np.empty(shape, dtype=a.dtype)
    offsets = [s - (k - 1) for s, k in zip(start, kernel.shape)]
    offsets = [0] * (3 - a.ndim) + offsets
    _correlate.correlate3d(_as3d(a), _as3d(kernel), _as3d(out), *offsets, n_threads)
    return out


def _fft_window(a, kernel, start, shape, n_threads):
    blocks = _fft_plan(a.shape, kernel.shape, start, shape, n_threads)[1]
    if blocks is not None:
        return _overlap_save(a, kernel, start, shape, blocks, n_threads)
    full = tuple(n1 + n2 - 1 for n1, n2 in zip(a.shape, kernel.shape))
    lengths = _fft_lengths(full, start, shape)
    axes = tuple(range(a.ndim))
    spectrum = _rfftn(_zero_padded(a, lengths), axes, n_threads)
    spectrum *= _rfftn(_zero_padded(_reversed(kernel), lengths), axes, n_threads)
    z = _irfftn(spectrum, lengths, axes, n_threads)
    window = tuple(slice(s, s + n) for s, n in zip(start, shape))
    return np.ascontiguousarray(z[window], dtype=a.dtype)


def _rfftn(x, axes, workers=1):
    """Real FFT over ``axes``, one axis at a time and in place after the
    first, which allocates one array where :func:`scipy.fft.rfftn` may
    allocate several (fresh memory costs page faults on every call)."""
    spectrum = scipy.fft.rfft(x, axis=axes[-1], workers=workers)
    if len(axes) > 1:
        spectrum = scipy.fft.fftn(spectrum, axes=axes[:-1], workers=workers, overwrite_x=True)
    return spectrum


def _irfftn(spectrum, lengths, axes, workers=1):
    """Inverse of :func:`_rfftn`, overwriting ``spectrum``."""
    if len(axes) > 1:
        spectrum = scipy.fft.ifftn(spectrum, axes=axes[:-1], workers=workers, overwrite_x=True)
    return scipy.fft.irfft(spectrum, lengths[-1], axis=axes[-1], workers=workers,
                           overwrite_x=True)


def _zero_padded(arr, lengths):
    """``arr`` cut or zero-padded to ``lengths`` along each axis, as
    :func:`scipy.fft.rfftn` takes its shape argument."""
    if arr.shape == tuple(lengths):
        return arr
    padded = np.zeros(lengths, dtype=arr.dtype)
    kept = tuple(slice(0, min(n, length)) for n, length in zip(arr.shape, lengths))
    padded[kept] = arr[kept]
    return padded


def _reversed(arr):
    return arr[(slice(None, None, -1),) * arr.ndim]


def _overlap_save(a, kernel, start, shape, lengths, n_threads, task_points=None,
                  stack=False):
    """Window ``[start, start + shape)`` of the full correlation by
    overlap-save: the output window is cut into blocks of ``L - K + 1``
    points per axis, and each block is the exact part of the circular
    correlation of the ``L`` input points under it, so every block is one
    small real FFT, its product with the kernel's spectrum and one inverse
    FFT. Rows of blocks (or parts of rows) go to the threads as tasks small
    enough for the cache, and every step writes into a workspace reused
    from task to task and call to call: no array of the whole padded size
    is made, and no fresh memory (whose first touch costs a page fault) is
    taken per task.

    With ``stack=True``, ``kernel`` is a stack ``(T, *kernel_shape)`` and the
    result ``(T, *shape)``: each block is transformed forward once and
    multiplied by every kernel's spectrum in turn.
    """
    ndim = a.ndim
    kernels = kernel if stack else kernel[np.newaxis]
    kernel = kernels[0]
    lengths = list(lengths)
    steps = [n - k + 1 for n, k in zip(lengths, kernel.shape)]
    counts = _block_counts(shape, kernel.shape, lengths)
    spectrum_dtype = np.complex64 if a.dtype == np.float32 else np.complex128
    kernel_spectra = np.fft.rfftn(kernels[(slice(None),) + (slice(None, None, -1),) * ndim],
                                  lengths, axes=range(1, ndim + 1)).astype(
        spectrum_dtype, copy=False)
    half = lengths[:-1] + [lengths[-1] // 2 + 1]
    block_axes = tuple(range(ndim, 2 * ndim - 1))   # the axes of a block but the last
    exact = (Ellipsis,) + tuple(slice(k - 1, None) for k in kernel.shape)
    # (block, block, ..., point, point, ...) -> (block, point, block, point, ...)
    interleave = [i for pair in zip(range(ndim), range(ndim, 2 * ndim)) for i in pair]
    outs = np.empty((len(kernels),) + tuple(shape), dtype=a.dtype)
    tasks = _block_tasks(counts, lengths, n_threads, task_points or _TASK_POINTS)
    most = max(math.prod(len(range(c)[part]) for c, part in zip(counts, task))
               for task in tasks)
    layout = [("padded", a.dtype, most * math.prod(lengths)),
              ("blocks", a.dtype, most * math.prod(lengths)),
              ("edge", a.dtype, most * math.prod(steps))]
    if len(kernels) > 1:
        layout.append(("product", spectrum_dtype, most * math.prod(half)))

    def transform(task, work):
        first = [range(c)[part].start for c, part in zip(counts, task)]
        number = [len(range(c)[part]) for c, part in zip(counts, task)]
        # The task's part of the full correlation, and the input under it.
        inside, pads = _region_under_windows(
            a.shape, kernel.shape, [s + f * t for s, f, t in zip(start, first, steps)],
            [m * t for m, t in zip(number, steps)])
        extent = [m * t + k - 1 for m, t, k in zip(number, steps, kernel.shape)]
        padded = work["padded"][:math.prod(extent)].reshape(extent)
        padded.fill(0)
        padded[tuple(slice(p, p + r.stop - r.start) for (p, _), r in zip(pads, inside))] = a[inside]
        blocks = work["blocks"][:math.prod(number + lengths)].reshape(number + lengths)
        blocks[...] = np.lib.stride_tricks.as_strided(
            padded, number + lengths,
            [s * st for s, st in zip(steps, padded.strides)] + list(padded.strides),
            writeable=False)
        # scipy.fft: its transforms along the leading axes run several lines
        # at once in vector registers, and it computes float32 in float32;
        # numpy.fft (which can write into the workspaces) measured 2 to 4
        # times slower on these shapes, float32 most.
        spectrum = scipy.fft.rfft(blocks, axis=-1)
        if block_axes:
            spectrum = scipy.fft.fftn(spectrum, axes=block_axes, overwrite_x=True)
        if len(kernels) > 1:
            product = work["product"][:spectrum.size].reshape(spectrum.shape)
        target = tuple(slice(f * s, min((f + m) * s, n))
                       for f, m, s, n in zip(first, number, steps, shape))
        covered = [m * s for m, s in zip(number, steps)]
        for kernel_spectrum, out in zip(kernel_spectra, outs):
            if len(kernels) > 1:
                np.multiply(spectrum, kernel_spectrum, out=product)
            else:
                product = spectrum
                product *= kernel_spectrum
            if block_axes:
                product = scipy.fft.ifftn(product, axes=block_axes, overwrite_x=True)
            result = scipy.fft.irfft(product, lengths[-1], axis=-1, overwrite_x=True)
            exact_part = result[exact].transpose(interleave)
            if all(t.stop - t.start == c for t, c in zip(target, covered)):
                out[target].reshape(exact_part.shape)[...] = exact_part
            else:   # the last blocks reach past the window: cut them to it
                edge = work["edge"][:math.prod(covered)].reshape(covered)
                edge.reshape(exact_part.shape)[...] = exact_part
                out[target] = edge[tuple(slice(0, t.stop - t.start) for t in target)]

    def worker(first_task):
        with _workspace(layout) as work:
            for task in tasks[first_task::n_workers]:
                transform(task, work)

    n_workers = min(n_threads, len(tasks))
    if n_workers == 1:
        worker(0)
    else:
        with ThreadPoolExecutor(n_workers - 1) as pool:
            helpers = [pool.submit(worker, i) for i in range(1, n_workers)]
            worker(0)
            for helper in helpers:
                helper.result()
    return outs if stack else outs[0]


# Threads for the tiled transforms, kept between calls (starting a pool
# costs about 0.3 ms, more than a 512x512 match). A child made by fork()
# starts without it: the parent's threads do not exist there.
_pool = None
_pool_size = 0
_pool_lock = threading.Lock()


def _reset_pool_after_fork():
    global _pool, _pool_size, _pool_lock
    _pool, _pool_size, _pool_lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_pool_after_fork)


def _run_tasks(run, n_tasks, n_threads):
    """``run(i)`` for every ``i < n_tasks`` on up to ``n_threads`` threads,
    the calling one among them: each thread takes the next task number
    from a shared counter until none is left, so a slow thread (or a pool
    busy with another call's tasks) delays nobody."""
    global _pool, _pool_size
    n_workers = min(n_threads, n_tasks)
    counter = itertools.count()

    def drain():
        for i in iter(counter.__next__, None):
            if i >= n_tasks:
                return
            run(i)

    if n_workers <= 1:
        drain()
        return
    with _pool_lock:
        if _pool_size < n_workers - 1:
            if _pool is not None:
                _pool.shutdown(wait=False)   # its queued tasks still run
            _pool_size = n_workers - 1
            _pool = ThreadPoolExecutor(_pool_size, thread_name_prefix="pyconvnet")
        pool = _pool
    helpers = [pool.submit(drain) for _ in range(n_workers - 1)]
    try:
        drain()
    finally:
        for helper in helpers:
            if not helper.cancel():
                helper.result()


# Tile lengths the 2-D tiled transforms consider: fast FFT sizes (factors
# 2, 3 and 5) from 64 to 1536, and each axis whole.
_TILE_LENGTHS = (64, 80, 96, 120, 128, 144, 160, 192, 200, 240, 256, 288, 320, 360, 384, 400,
                 432, 480, 512, 576, 640, 720, 768, 864, 960, 1024, 1152, 1280, 1536)


@functools.lru_cache(maxsize=256)
def _tile_plan(shape, kernel_shape, count, n_threads, itemsize):
    """Predicted time and tile lengths ``(Lh, Lw)`` of :func:`_tiled_correlate`
    for ``count`` kernels: the fastest of every pair of candidate lengths
    under the cost model of ``_TILE_COSTS``."""
    best = None
    options = [[length for length in _TILE_LENGTHS if k <= length - k + 1 and length < n]
               + [scipy.fft.next_fast_len(n, real=True)] for n, k in zip(shape, kernel_shape)]
    for Lh in options[0]:
        for Lw in options[1]:
            time = _tile_cost(shape, kernel_shape, (Lh, Lw), count, n_threads, itemsize)
            if best is None or time < best[0]:
                best = (time, (Lh, Lw))
    return best


def _tile_cost(shape, kernel_shape, lengths, count, n_threads, itemsize):
    r"""The cost model of the tiled transforms, in seconds: per tile of
    :math:`P = L_h L_w` points, a multiple of :math:`P \log_2 P` (a larger
    one past :math:`2^{17}` points, out of the cache, and for one tile of
    everything), and one of :math:`P` (gathering, multiplying, writing);
    each kernel beyond the first adds what the products and inverse
    transforms take, about half of it. Fitted on measured times of float32
    on one thread of a 2-core AVX-512 machine (benchmarks/bench_signal.py
    ``--fit``); float64 counts 1.7 times as much."""
    (H, W), (kh, kw), (Lh, Lw) = shape, kernel_shape, lengths
    rows = -(-(H - kh + 1) // (Lh - kh + 1))
    cols = -(-(W - kw + 1) // (Lw - kw + 1))
    tiles = rows * cols
    points = Lh * Lw
    log = math.log2(points)
    per_log, per_point, past_cache, whole = _TILE_COSTS
    tile = points * (log * (per_log + past_cache * max(0.0, log - 17)
                            + (whole if tiles == 1 else 0.0)) + per_point)
    tile *= (1 + 0.55 * (count - 1)) * (1.7 if itemsize == 8 else 1.0)
    if tiles == 1:
        return tile / min(n_threads, _WHOLE_SPEEDUP)
    # whole tasks go to the threads: the busiest thread's share
    return -(-tiles // n_threads) * tile


def _kernel_spectra(kernels, lengths, spectra, n_threads):
    """Conjugate spectra of the kernels ``(T, kh, kw)`` zero-padded to
    ``lengths``, written into ``spectra`` ``(T, Lh, Lw // 2 + 1)`` (complex,
    the kernels' precision): the rows transformed only where the kernel has
    any (a third to a half of the time of transforming the padded array),
    then the columns in place; the kernels shared among the threads."""
    kh = kernels.shape[1]
    Lw = lengths[1]

    def run(t):
        np.fft.rfft(kernels[t], Lw, axis=-1, out=spectra[t, :kh])
        spectra[t, kh:] = 0
        columns = scipy.fft.fft(spectra[t], axis=0, overwrite_x=True)
        np.conjugate(columns, out=spectra[t])

    _run_tasks(run, len(kernels), n_threads)


def _tiled_correlate(x, kernels, lengths, n_threads, offset=0.0, finish=None):
    """'valid' correlation of a 2-D ``x - offset`` with every kernel of the
    stack ``(T, kh, kw)``, ``(T, *out_shape)``, by overlap-save over tiles
    of ``lengths`` points.

    A tile of ``L`` input points per axis gives ``L - K + 1`` exact outputs:
    the first ones of the circular correlation of the tile with the kernel,
    whose spectrum is the conjugate of the zero-padded kernel's, computed
    once per call. Runs of tiles along a row go to the threads as tasks;
    each one transforms its tiles forward in one batch (read where they lie
    in ``x`` when they lie wholly inside it and no offset is subtracted;
    otherwise copied minus the offset, zero beyond ``x``), multiplies by
    every kernel's spectrum, transforms back and writes its outputs. With a
    single task (one tile for all of ``x``) the transforms use the threads
    instead. ``finish(out, rows, cols)``, if given, runs in each task on the
    block of outputs it wrote (two slices), while they are in the cache.
    """
    (H, W), (T, kh, kw) = x.shape, kernels.shape
    Lh, Lw = lengths
    sh, sw = Lh - kh + 1, Lw - kw + 1
    oh, ow = H - kh + 1, W - kw + 1
    rows, cols = -(-oh // sh), -(-ow // sw)
    out = np.empty((T, oh, ow), dtype=x.dtype)
    per_task = max(1, min(cols, _TILE_TASK_POINTS // (Lh * Lw)))
    # enough tasks for every thread where there are tiles enough
    per_task = max(1, min(per_task, rows * cols // (2 * n_threads)))
    row_tasks = -(-cols // per_task)
    n_tasks = rows * row_tasks
    workers = n_threads if n_tasks == 1 else 1
    item = x.itemsize
    shift = x.dtype.type(offset)
    spectrum_dtype = np.complex64 if x.dtype == np.float32 else np.complex128
    # Every array of a size that recurs call after call comes from the
    # workspace cache: fresh, each of their pages would fault on first
    # touch (measured: as much as a third of a call's time).
    layout = [("tiles", x.dtype, per_task * Lh * Lw), ("result", x.dtype, per_task * sh * Lw)]

    ready = threading.Event()
    spectrum_failed = []

    def spectrum_first(task, spectra):
        if task > 0:
            run(task - 1)
            return
        try:
            _kernel_spectra(kernels, lengths, spectra, 1)
        except BaseException:
            spectrum_failed.append(True)
            raise
        finally:
            ready.set()

    def run(task):
        # (NaN or infinity in x make NaN here quietly, as one transform does)
        with np.errstate(invalid="ignore", over="ignore"):
            transform(task)

    def transform(task):
        r, first = divmod(task, row_tasks)
        first *= per_task
        m = min(per_task, cols - first)
        top, height = r * sh, min(Lh, H - r * sh)
        n_rows = min(sh, oh - top)
        # tiles that lie wholly inside x along the columns
        whole = max(0, min(m, (W - Lw) // sw + 1 - first))
        with _workspace(layout) as work:
            if whole == m and height == Lh and shift == 0:
                # transformed where they lie: the transforms gather their
                # lines themselves, a copy would add a pass over the tiles
                source = x[top:top + height, first * sw:]
                spectrum = scipy.fft.rfft2(np.lib.stride_tricks.as_strided(
                    source, (m, Lh, Lw), (sw * item, source.strides[0], item),
                    writeable=False), workers=workers)
            else:
                tiles = work["tiles"][:m * Lh * Lw].reshape(m, Lh, Lw)
                spectrum = gathered(tiles, first, m, top, height, whole)
            result = work["result"][:m * n_rows * Lw].reshape(m, n_rows, Lw)
            multiply_back(spectrum, result, first, m, top, n_rows)
        if finish is not None:
            finish(out, slice(top, top + n_rows), slice(first * sw, min(ow, (first + m) * sw)))

    def gathered(tiles, first, m, top, height, whole):
        """The spectra of ``m`` tiles copied minus the offset, zero beyond x."""
        # tiles wholly inside x along the columns: one strided copy
        if whole:
            source = x[top:top + height, first * sw:]
            np.subtract(np.lib.stride_tricks.as_strided(
                source, (whole, height, Lw), (sw * item, source.strides[0], item),
                writeable=False), shift, out=tiles[:whole, :height])
            if height < Lh:
                tiles[:whole, height:] = 0
        for j in range(whole, m):
            left = (first + j) * sw
            width = min(Lw, W - left)
            np.subtract(x[top:top + height, left:left + width], shift,
                        out=tiles[j, :height, :width])
            tiles[j, height:] = 0
            tiles[j, :height, width:] = 0
        return scipy.fft.rfft2(tiles, workers=workers)

    def multiply_back(spectrum, result, first, m, top, n_rows):
        """Every kernel's outputs of the tiles from their spectrum."""
        ready.wait()
        if spectrum_failed:
            raise RuntimeError("the kernel's spectrum could not be computed")
        for t in range(T):
            product = spectrum if T == 1 else spectrum * spectra[t]
            if T == 1:
                product *= spectra[t]
            # back along the columns, then along the rows that hold exact
            # outputs only (measured: a third less than the whole inverse),
            # into a buffer of the cache (numpy's transforms take one)
            product = scipy.fft.ifft(product, axis=1, workers=workers, overwrite_x=True)
            if workers == 1:
                np.fft.irfft(product[:, :n_rows], Lw, axis=-1, out=result)
            else:
                result = scipy.fft.irfft(product[:, :n_rows], Lw, axis=-1, workers=workers)
            # tiles whose outputs lie wholly inside the output: one strided copy
            inner = max(0, min(m, ow // sw - first))
            if inner:
                target = out[t, top:top + n_rows, first * sw:(first + inner) * sw]
                target.reshape(n_rows, inner, sw)[...] = \
                    result[:inner, :n_rows, :sw].transpose(1, 0, 2)
            for j in range(inner, m):
                left = (first + j) * sw
                width = min(sw, ow - left)
                out[t, top:top + n_rows, left:left + width] = result[j, :n_rows, :width]

    with _workspace([("spectra", spectrum_dtype, T * Lh * (Lw // 2 + 1))]) as work:
        spectra = work["spectra"].reshape(T, Lh, Lw // 2 + 1)
        if T > 1 or n_tasks == 1:
            _kernel_spectra(kernels, lengths, spectra, n_threads)
            ready.set()
            _run_tasks(run, n_tasks, n_threads)
        else:
            # One kernel: its spectrum is the first task, and the other
            # threads transform tiles meanwhile, waiting for it only to
            # multiply (task 0 goes to the first thread to ask, which never
            # waits for it).
            _run_tasks(lambda task: spectrum_first(task, spectra), n_tasks + 1, n_threads)
    return out


def correlate(in1, in2, mode="full", method="auto", *, n_threads=None):
    r"""Cross-correlate two arrays of rank 1, 2 or 3.

    .. math::

        z[m] = \sum_k \mathrm{in1}[m + k - (K - 1)] \, \mathrm{in2}[k]

    over the window of the full output that ``mode`` selects, with ``in1``
    zero outside its bounds. The result equals :func:`scipy.signal.correlate`
    for real inputs.

    Parameters
    ----------
    in1 : (N,) or (M, N) or (L, M, N) array_like
        First input.
    in2 : array_like
        Second input, of the same rank as ``in1``.
    mode : {'full', 'valid', 'same'}, default 'full'
        'full': every overlap, ``N1 + N2 - 1`` per axis. 'valid': only the
        positions where one input lies wholly inside the other,
        ``|N1 - N2| + 1`` per axis (one input must be at least as large as
        the other along every axis). 'same': ``in1``'s shape, centred on the
        full output as scipy centres it (starting at ``(N2 - 1) // 2``).
    method : {'auto', 'direct', 'fft'}, default 'auto'
        'direct' sums the products in parallel compiled loops; 'fft'
        multiplies real FFTs (:mod:`scipy.fft`); 'auto' predicts the faster
        one with :func:`choose_method`.
    n_threads : int, optional
        Number of threads. None uses every core OpenMP offers (or
        ``OMP_NUM_THREADS``, or a threadpoolctl limit); negative values count
        down from that number (-1 is the same as None); 0 is an error.

    Returns
    -------
    ndarray
        float32 when both inputs are float32 (or float16), float64 otherwise.

    Raises
    ------
    ValueError
        For an unknown ``mode`` or ``method``, inputs of different ranks or of
        a rank other than 1 to 3, empty inputs, or a 'valid' mode in which
        neither input is at least as large as the other.
    TypeError
        For complex, object or other non-real dtypes.

    See Also
    --------
    convolve : Correlation with ``in2`` reversed.
    similarity_map : Correlation normalised into a cosine similarity.
    scipy.signal.correlate : The reference this function agrees with.

    Notes
    -----
    Derived in :ref:`theory-correlation`.

    NaN and infinity propagate: with the direct method into the outputs
    whose windows contain them, with the FFT method into every output of
    the transform that holds them (the whole output, or the overlap-save
    blocks around them), since every frequency mixes every sample. Pass
    ``method='direct'`` to keep them local.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconvnet.signal import correlate
    >>> correlate([1.0, 2.0, 3.0], [0.0, 1.0, 0.5])
    array([0.5, 2. , 3.5, 3. , 0. ])
    >>> correlate([1.0, 2.0, 3.0], [0.0, 1.0, 0.5], mode="valid")
    array([3.5])
    """
    check_choice(method, "method", METHODS)
    n_threads = check_n_threads(n_threads)
    a, kernel = _check_pair(in1, in2, "in1", "in2")
    start, shape = _full_window(a.shape, kernel.shape, mode)
    return _correlate_window(a, kernel, start, shape, method, n_threads)


def convolve(in1, in2, mode="full", method="auto", *, n_threads=None):
    r"""Convolve two arrays of rank 1, 2 or 3.

    .. math::

        z[m] = \sum_k \mathrm{in1}[m - k] \, \mathrm{in2}[k]

    Convolution is correlation with ``in2`` reversed along every axis (a
    180-degree rotation of a 2-D kernel), which is exactly how it is computed.
    The result equals :func:`scipy.signal.convolve` for real inputs.

    Parameters
    ----------
    in1, in2 : array_like
        Inputs of the same rank, 1 to 3.
    mode : {'full', 'valid', 'same'}, default 'full'
        Output window, as in :func:`correlate`.
    method : {'auto', 'direct', 'fft'}, default 'auto'
        As in :func:`correlate`.
    n_threads : int, optional
        As in :func:`correlate`.

    Returns
    -------
    ndarray
        float32 when both inputs are float32, float64 otherwise.

    Raises
    ------
    ValueError, TypeError
        As :func:`correlate`.

    See Also
    --------
    correlate, scipy.signal.convolve

    Examples
    --------
    >>> from pyconvnet.signal import convolve
    >>> convolve([1.0, 2.0, 3.0], [0.0, 1.0, 0.5])
    array([0. , 1. , 2.5, 4. , 1.5])
    """
    a, kernel = _check_pair(in1, in2, "in1", "in2")
    rotated = kernel[(slice(None, None, -1),) * kernel.ndim]
    return correlate(a, rotated, mode, method, n_threads=n_threads)


@docfiller
def similarity_map(a, template, *, centered=False, mode="valid", mask=None,
                   nan_policy="propagate", method="auto", n_threads=None):
    r"""Cosine similarity between a template and every window of an array.

    Slides ``template`` over ``a`` and, at each position, compares it with the
    window of ``a`` beneath it by the cosine of the angle between them (both
    flattened to vectors):

    .. math::

        S[m] = \frac{\sum_k w_m[k] \, t[k]}{\lVert w_m \rVert \, \lVert t \rVert},

    where :math:`w_m` is the window at position :math:`m`. With
    ``centered=True`` both are first shifted to zero mean, which gives the
    zero-mean normalised cross-correlation (Pearson's correlation
    coefficient) of :func:`skimage.feature.match_template`. With a ``mask``
    of weights :math:`M`, every sum runs over the template's elements
    weighted by :math:`M` (the masked normalised cross-correlation):

    .. math::

        S[m] = \frac{\sum_k M[k] \, w_m[k] \, t[k]}
                    {\sqrt{\sum_k M[k] \, w_m[k]^2 \, \sum_k M[k] \, t[k]^2}},

    and, centred, the means and norms are the weighted ones.

    Parameters
    ----------
    a : (N,) or (M, N) or (L, M, N) array_like
        The array to search.
    template : array_like
        The pattern, of the same rank as ``a`` and no larger along any axis;
        or a stack of ``T`` patterns of one shape, ``(T, *template_shape)``,
        all scored against ``a``, which is transformed only once.
    centered : bool, default False
        Subtract the mean of the template and of each window first (the
        weighted means, with a ``mask``).
    mode : {'valid', 'same', 'full'}, default 'valid'
        Which positions to score, as in :func:`correlate`: 'valid' only
        windows wholly inside ``a`` (the shape ``N - K + 1`` per axis); 'same'
        and 'full' also windows that hang over the edge, with ``a`` taken as
        zero outside (the padded zeros count in the window's mean and norm).
    %(match_mask)s
    nan_policy : {'propagate', 'omit'}, default 'propagate'
        'propagate': a window holding NaN or infinity (under a non-zero
        weight, with a ``mask``) scores NaN. 'omit': NaN (and infinite)
        elements of ``a`` are missing data, and each window is scored over
        its other elements (as if the mask were zero there); a window with
        no element left scores 0.
    method : {'auto', 'direct', 'fft'}, default 'auto'
        How the correlations are computed (see :func:`correlate`).
    n_threads : int, optional
        As in :func:`correlate`.

    Returns
    -------
    ndarray
        Similarities in [-1, 1], of shape ``out_shape`` (``(T, *out_shape)``
        for a stack of templates); float32 for float32 inputs, else float64.
        Windows whose norm (or, centred, whose spread) vanishes to within
        rounding error score 0, as does every window when the template
        itself is zero (or constant, centred) over its mask: never infinity,
        and NaN only where ``nan_policy='propagate'`` says so.

    Raises
    ------
    ValueError
        For a template larger than ``a`` along some axis, ranks that differ
        or are not 1 to 3, empty inputs, a stack of templates of different
        shapes, a ``mask`` of the wrong shape, with negative or non-finite
        weights or no non-zero one, or an unknown ``mode``, ``method`` or
        ``nan_policy``.
    TypeError
        For non-real dtypes.

    See Also
    --------
    correlate : The numerator.
    squared_difference_map : Sums of squared differences.
    find_peaks : The best matches in a similarity map.
    skimage.feature.match_template : The centred 2-D case (``pad_input=False``).

    Notes
    -----
    Derived in :ref:`theory-cosine-similarity` and :ref:`theory-masked-ncc`.

    The window norms come from sliding sums of :math:`a` and :math:`a^2`
    (each one addition and one subtraction per step, separably along each
    axis, in double precision for either dtype), never from a loop over
    windows, so the cost is that of one correlation plus a few passes over
    ``a``. In 2-D, ``method='fft'`` correlates by overlap-save over tiles
    of the image, on all threads, and ``method='direct'`` by loops that
    keep blocks of outputs in vector registers; ``'auto'`` predicts the
    faster from a cost model fitted on measured times. With
    :math:`s_1 = \sum_k w_m[k]`, :math:`s_2 = \sum_k w_m[k]^2` and
    :math:`n` elements per window, the centred numerator is
    :math:`\sum_k w_m[k] (t[k] - \bar t)` and the centred window norm is
    :math:`\sqrt{s_2 - s_1^2 / n}`. With a mask or missing data the sums
    are correlations with the mask (Padfield's masked normalised
    cross-correlation), also in double precision. Before any product, ``a``
    is shifted by its mean (and the shift's share added back where the
    score depends on it), so that an image far from zero (``a + 1000``)
    loses no precision in float32.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconvnet.signal import similarity_map
    >>> a = np.array([0.0, 1.0, 2.0, 1.0, 0.0, 2.0, 4.0, 2.0])
    >>> similarity_map(a, [1.0, 2.0, 1.0]).round(3)
    array([0.73 , 1.   , 0.73 , 0.548, 0.73 , 1.   ])
    >>> similarity_map(a, [1.0, 2.0, 1.0], centered=True).round(3)
    array([ 0.   ,  1.   ,  0.   , -0.866,  0.   ,  1.   ])

    A mask leaves the template's last element out of every score:

    >>> similarity_map(a, [1.0, 2.0, 5.0], mask=[True, True, False]).round(3)
    array([0.894, 1.   , 0.8  , 0.447, 0.894, 1.   ])
    """
    check_choice(method, "method", METHODS)
    check_choice(nan_policy, "nan_policy", NAN_POLICIES)
    n_threads = check_n_threads(n_threads)
    a, templates, stacked = _check_search(a, template)
    centered = check_bool(centered, "centered")
    kernel_shape = templates.shape[1:]
    weights = _check_mask(mask, kernel_shape)
    start, shape = _full_window(a.shape, kernel_shape, mode)
    region = _padded_region(a, kernel_shape, start, shape)
    missing = None
    if weights is not None or nan_policy == "omit":
        missing = _missing(region)
    if weights is None and (missing is None or nan_policy == "propagate"):
        scores = _box_similarity(region, templates, centered, method, n_threads)
    else:
        scores = _weighted_similarity(region, templates, weights, missing, nan_policy,
                                      centered, method, n_threads)
    return scores if stacked else scores[0]


def _check_search(a, template):
    """Validate the array searched and one template or a stack of them
    (rank ``a.ndim + 1``) of the same dtype; the templates come back as a
    stack ``(T, *template_shape)``."""
    raw_a = np.asarray(a)
    raw_t, stacked = _template_stack(template, raw_a.ndim)
    a, first = _check_pair(raw_a, raw_t[0], "a", "template")
    templates = as_float_array(raw_t, "template", dtype=a.dtype)
    _check_fits(first.shape, a.shape)
    return a, templates, stacked


def _template_stack(template, ndim):
    """``template`` as an array with a first axis of templates (a new one of
    length 1 unless its rank is ``ndim + 1``), and whether it was a stack."""
    if (isinstance(template, (list, tuple)) and template
            and all(isinstance(t, np.ndarray) for t in template)):
        shapes = {t.shape for t in template}
        if len(shapes) > 1:
            raise ValueError("template: a stack of templates must share one shape, got "
                             f"shapes {sorted(shapes)}")
    try:
        raw = np.asarray(template)
    except ValueError as exc:   # ragged nested lists
        raise ValueError(f"template: a stack of templates must share one shape ({exc})") \
            from None
    stacked = ndim in (1, 2, 3) and raw.ndim == ndim + 1
    if stacked and raw.shape[0] == 0:
        raise ValueError(f"template: the stack holds no template, shape {raw.shape}")
    return (raw if stacked else raw[np.newaxis]), stacked


def _check_fits(template_shape, a_shape):
    if any(k > n for k, n in zip(template_shape, a_shape)):
        raise ValueError(f"template must be no larger than a along every axis, got "
                         f"template shape {tuple(template_shape)} and a shape {tuple(a_shape)}")


def _check_mask(mask, kernel_shape):
    """Weights of a mask as float64, or None for no mask (or one of ones)."""
    if mask is None:
        return None
    raw = np.asarray(mask)
    if raw.dtype.kind not in "biuf":
        raise TypeError(f"mask must hold booleans or real weights, got dtype {raw.dtype}")
    if raw.shape != tuple(kernel_shape):
        raise ValueError(f"mask must have the template's shape {tuple(kernel_shape)}, "
                         f"got shape {raw.shape}")
    weights = np.array(raw, dtype=np.float64)
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError("mask weights must be finite and non-negative")
    if not np.any(weights > 0):
        raise ValueError("mask must have at least one non-zero weight, got all zeros")
    return None if np.all(weights == 1) else weights


def _flat_tolerance(dtype, n):
    """A window (or the template) is flat when its spread is within rounding
    error of its energy: of the double-precision sums, or of the input's
    own precision."""
    return n * max(np.finfo(dtype).eps ** 2, 16 * np.finfo(np.float64).eps)


def _missing(x):
    """Where ``x`` is not finite, or None where it is finite throughout (one
    sum tells, without a mask)."""
    if np.isfinite(np.sum(x)):
        return None
    missing = ~np.isfinite(x)
    return missing if missing.any() else None


def _offset(x, where=None):
    """The mean of ``x`` (over ``where``) when it carries most of its energy
    (``mean**2 > 4 * variance``: an image far from zero), else 0, rounded to
    ``x``'s dtype. Sums of products of ``x - offset`` then round relative to
    the spread of ``x``, not to its distance from zero; and the subtraction
    itself is exact where ``x`` lies within a factor 2 of the offset."""
    if where is None and x.size > 1 << 14:
        # a sample decides, and any offset keeps the scores exact: about
        # 2**14 elements spread over the rows, copied once (small enough
        # to come from memory already mapped: a larger copy's fresh pages
        # cost more than the sums)
        rows = x.reshape(-1, x.shape[-1])
        values = np.ascontiguousarray(
            rows[::-(-rows.shape[0] // 128), ::-(-rows.shape[1] // 128)]).ravel()
    else:
        values = (x if where is None else x[where]).ravel()
    if values.size == 0:
        return 0.0
    if values.size > 1 << 16:
        values = np.ascontiguousarray(values[::max(1, values.size // (1 << 20)) * 7])
    mean = float(np.sum(values, dtype=np.float64)) / values.size
    # (not np.dot: BLAS threads left spinning after it slow the kernels'
    # OpenMP threads that follow, measured 1.5x on 2 cores)
    mean_square = float(np.sum(values * values, dtype=np.float64)) / values.size
    if not mean * mean > 0.8 * mean_square:     # mean**2 > 4 * (mean_square - mean**2)
        return 0.0
    return float(x.dtype.type(mean))


def _box_similarity(region, templates, centered, method, n_threads):
    """Scores of every template over the windows of ``region`` ('valid'),
    with the window sums from the compiled running sums."""
    dtype = region.dtype
    kernel_shape = templates.shape[1:]
    axes = tuple(range(1, templates.ndim))
    n = math.prod(kernel_shape)
    shape = tuple(r - k + 1 for r, k in zip(region.shape, kernel_shape))
    t64 = templates.astype(np.float64)
    if centered:
        t64 = t64 - t64.mean(axis=axes, keepdims=True)
    energy = np.sum(t64 * t64, axis=axes)
    tolerance = _flat_tolerance(dtype, n)
    flat = energy <= tolerance * np.sum(templates.astype(np.float64) ** 2, axis=axes)
    scores = np.zeros((len(templates),) + shape, dtype=dtype)
    if flat.all():
        return scores
    live = np.flatnonzero(~flat)
    numerators, finite = _box_scores(region, t64[live], energy[live], centered, tolerance,
                                     method, n_threads)
    nonfinite = None
    if not finite:
        # Running sums carry a NaN or infinity along the whole row: score
        # with them zeroed, then mark the windows that hold them.
        nonfinite = ~np.isfinite(region)
        numerators = _box_scores(np.where(nonfinite, 0, region), t64[live], energy[live],
                                 centered, tolerance, method, n_threads)[0]
    if len(live) == len(templates):
        scores = numerators
    else:
        scores[live] = numerators
    if nonfinite is not None:
        counts = _correlate_window(nonfinite.astype(dtype), np.ones(kernel_shape, dtype),
                                   tuple(k - 1 for k in kernel_shape), shape,
                                   "direct", n_threads)
        scores[:, counts > 0.5] = np.nan
    return scores


def _box_scores(windows, templates, energy, centered, tolerance, method, n_threads):
    """The scores of every template (float64, centred if ``centered``, of
    squared norm ``energy``) over the windows of ``windows`` ('valid'), and
    whether every window sum was finite (if not, the scores are not right)."""
    dtype = windows.dtype
    axes = tuple(range(1, templates.ndim))
    # Correlate a shifted to zero mean (in double precision, before rounding
    # to the input's dtype), so that an offset costs no precision; the
    # cosine adds the shift's share back exactly, the centred score does
    # not depend on it (the template sums to zero).
    offset = _offset(windows)
    shares = None
    if not centered and offset != 0:
        shares = (offset * np.sum(templates, axis=axes)).astype(dtype)
    kernel_shape3 = (1,) * (4 - templates.ndim) + templates.shape[1:]
    scales = 1 / np.sqrt(energy)

    def normalize(numerators, values, threads, rows_per_band=0):
        # one pass of window sums for every template (centred: of
        # a - offset, which leaves the spread alone)
        if shares is not None:
            numerators += shares.reshape((-1,) + (1,) * (numerators.ndim - 1))
        work = np.empty((threads, 5 * values.shape[-1]))
        return _correlate.normalize_by_window_norms(
            _as3d(values), *kernel_shape3,
            numerators.reshape((len(templates),) + _as3d(numerators[0]).shape),
            scales, centered, offset if centered else 0.0, tolerance, work, threads,
            rows_per_band)

    finished = []

    def finish(out, rows, cols):
        # the 2-D tiled transforms: each task's block of scores scaled
        # while it is in the cache, on the task's thread
        values = windows[rows.start:rows.stop + templates.shape[1] - 1,
                         cols.start:cols.stop + templates.shape[2] - 1]
        finished.append(normalize(out[:, np.newaxis, rows, cols], values, 1,
                                  rows.stop - rows.start))

    numerators = _correlate_stack(windows, templates.astype(dtype), method, n_threads, offset,
                                  finish if windows.ndim == 2 else None)
    if finished:
        return numerators, all(finished)
    return numerators, normalize(numerators, windows, n_threads)


def _weighted_similarity(region, templates, weights, missing, nan_policy, centered, method,
                         n_threads):
    """Scores of every template over the windows of ``region`` ('valid')
    with element weights (a mask, missing data or both): each sum over a
    window is a correlation with the weights, taken in double precision."""
    dtype = region.dtype
    kernel_shape = templates.shape[1:]
    axes = tuple(range(1, templates.ndim))
    count = len(templates)
    shape = tuple(r - k + 1 for r, k in zip(region.shape, kernel_shape))
    weights = np.ones(kernel_shape) if weights is None else weights
    tolerance = _flat_tolerance(dtype, math.prod(kernel_shape))
    scores = np.zeros((count,) + shape, dtype=dtype)
    t = templates.astype(np.float64)
    raw_energy = np.sum(weights * t * t, axis=axes)
    if centered:
        t = t - (np.sum(weights * t, axis=axes) / weights.sum()).reshape(
            (-1,) + (1,) * len(kernel_shape))
    flat = np.sum(weights * t * t, axis=axes) <= tolerance * raw_energy
    if flat.all():
        return scores
    x = region.astype(np.float64)       # a copy
    if missing is not None:
        x[missing] = 0
        present = (~missing).astype(np.float64)
    weighted = weights * t
    column = (-1,) + (1,) * len(shape)
    if missing is None:
        n = weights.sum()
        b1 = weighted.sum(axis=axes).reshape(column)
        b2 = (weighted * t).sum(axis=axes).reshape(column)
    else:
        sums = _correlate_stack(present, np.concatenate(
            [weights[np.newaxis], weighted, weighted * t]), method, n_threads)
        n, b1, b2 = sums[0], sums[1:count + 1], sums[count + 1:]
    # Everything in double precision (a window with little energy, such as
    # one hanging over the edge in 'full' mode, is a small difference of
    # large sums): the numerator from a shifted to zero mean, transformed
    # once with the mask for s1 when centred (s1 and s2 only enter through
    # the spread, which the shift leaves alone); the cosine's s2 of a itself.
    offset = _offset(x, None if missing is None else ~missing)
    shifted = x - offset
    if missing is not None:
        shifted[missing] = 0
    if centered:
        sums = _correlate_stack(shifted, np.concatenate([weights[np.newaxis], weighted]),
                                method, n_threads)
        s1, numerator = sums[0], sums[1:]
        s2 = _correlate_stack(shifted * shifted, weights[np.newaxis], method, n_threads)[0]
    else:
        numerator = _correlate_stack(shifted, weighted, method, n_threads)
        s2 = _correlate_stack(x * x, weights[np.newaxis], method, n_threads)[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        if centered:
            numerator -= s1 * b1 / n
            spread_a = s2 - s1 * s1 / n
            spread_t = b2 - b1 * b1 / n
        else:
            numerator += offset * b1
            spread_a = s2
            spread_t = b2
        # Flat within rounding of the window's energy, or of the largest
        # one (the transforms' rounding is relative to it).
        floor = 64 * np.finfo(np.float64).eps
        dead = ((spread_a <= tolerance * s2 + floor * np.max(s2))
                | (spread_t <= tolerance * b2 + floor * np.max(b2))
                | (n <= floor * weights.sum()) | flat.reshape(column))
        value = numerator / np.sqrt(np.maximum(spread_a, 0) * np.maximum(spread_t, 0))
    value = np.clip(value, -1.0, 1.0)
    value[np.broadcast_to(dead, value.shape)] = 0
    if missing is not None and nan_policy == "propagate":
        hit = _correlate_stack(missing.astype(np.float64), (weights > 0)[np.newaxis].astype(
            np.float64), "direct", n_threads)[0]
        value[:, hit > 0.5] = np.nan
    scores[...] = value
    return scores


def _shifted(x, offset, n_threads):
    """``x - offset`` in ``x``'s dtype, the rows shared among the threads."""
    out = np.empty_like(x)
    value = x.dtype.type(offset)
    parts = np.array_split(np.arange(len(x)), min(len(x), 4 * n_threads))

    def run(i):
        rows = slice(parts[i][0], parts[i][-1] + 1) if len(parts[i]) else slice(0, 0)
        np.subtract(x[rows], value, out=out[rows])

    _run_tasks(run, len(parts), n_threads)
    return out


def _correlate_stack(x, kernels, method, n_threads, offset=0.0, finish=None):
    """'valid' correlation of ``x - offset`` (rounded to ``x``'s dtype) with
    every kernel of the stack ``(T, *kernel_shape)``, ``(T, *out_shape)``:
    with FFTs, ``x`` is transformed once for all of them. ``finish`` goes to
    the 2-D tiled transforms (see :func:`_tiled_correlate`), the only path
    that calls it."""
    kernel_shape = kernels.shape[1:]
    start, shape = _full_window(x.shape, kernel_shape, "valid")
    kernels = np.ascontiguousarray(kernels, dtype=x.dtype)
    if method == "auto" and x.ndim == 2:
        method = _choose_tiled(x.shape, kernel_shape, len(kernels), x.dtype, n_threads)
    elif method == "auto":
        method = _choose(x.shape, kernel_shape, start, shape, x.dtype, n_threads,
                         count=len(kernels))
    if x.ndim == 2 and method == "fft":
        # the tiles subtract the offset as they gather x
        lengths = _tile_plan(x.shape, kernel_shape, len(kernels), n_threads, x.itemsize)[1]
        return _tiled_correlate(x, kernels, lengths, n_threads, offset, finish)
    if offset != 0:
        x = _shifted(x, offset, n_threads)
    if method == "direct":
        out = np.empty((len(kernels),) + shape, dtype=x.dtype)
        for kernel, o in zip(kernels, out):
            if x.ndim == 2:
                _correlate.correlate2d_valid(np.ascontiguousarray(x), kernel, o, n_threads)
            else:
                _direct_window(x, kernel, start, shape, n_threads, out=o)
        return out
    blocks = _fft_plan(x.shape, kernel_shape, start, shape, n_threads)[1]
    if blocks is None and len(kernels) > 1 and len(shape) in _BLOCK_RULES:
        # One transform of everything would transform each kernel at the
        # whole size too; blocks need only small kernel spectra.
        lengths = _block_lengths(kernel_shape, shape)
        if math.prod(_block_counts(shape, kernel_shape, lengths)) > 1:
            blocks = lengths
    if blocks is not None:
        return _overlap_save(x, kernels, start, shape, blocks, n_threads, stack=True)
    full = tuple(n1 + n2 - 1 for n1, n2 in zip(x.shape, kernel_shape))
    lengths = _fft_lengths(full, start, shape)
    axes = tuple(range(x.ndim))
    spectrum = _rfftn(_zero_padded(x, lengths), axes, n_threads)
    window = tuple(slice(s, s + n) for s, n in zip(start, shape))
    out = np.empty((len(kernels),) + shape, dtype=x.dtype)
    for kernel, o in zip(kernels, out):
        product = _rfftn(_zero_padded(_reversed(kernel), lengths), axes, n_threads)
        product *= spectrum
        o[...] = _irfftn(product, lengths, axes, n_threads)[window]
    return out


@docfiller
def squared_difference_map(a, template, *, normalized=False, mask=None, mode="valid",
                           method="auto", n_threads=None):
    r"""Sum of squared differences between a template and every window.

    .. math::

        D[m] = \sum_k M[k] \, (w_m[k] - t[k])^2,

    with :math:`w_m` the window at position :math:`m` and :math:`M` the
    mask's weights (1 without a mask); 0 is a perfect match. Normalised,

    .. math::

        D_n[m] = \min\left(1, \frac{D[m]}{\sqrt{\sum_k M[k] \, w_m[k]^2 \,
                 \sum_k M[k] \, t[k]^2}}\right),

    which is 1 where the denominator vanishes. These are OpenCV's
    ``TM_SQDIFF`` and ``TM_SQDIFF_NORMED`` (a boolean mask is OpenCV's mask;
    OpenCV squares weights, so its weights :math:`M` are weights
    :math:`M^2` here).

    Parameters
    ----------
    a : (N,) or (M, N) or (L, M, N) array_like
        The array to search.
    template : array_like
        The pattern, of the same rank as ``a`` and no larger along any axis,
        or a stack of them, ``(T, *template_shape)``.
    normalized : bool, default False
        Divide by the norms of the window and the template (``D_n``).
    %(match_mask)s
    mode : {'valid', 'same', 'full'}, default 'valid'
        As in :func:`similarity_map`.
    method : {'auto', 'direct', 'fft'}, default 'auto'
        As in :func:`correlate`.
    n_threads : int, optional
        As in :func:`correlate`.

    Returns
    -------
    ndarray
        Non-negative sums (in [0, 1] normalised); float32 for float32
        inputs, else float64; ``(T, *out_shape)`` for a stack. Windows
        holding NaN or infinity (under a non-zero weight) give NaN.

    Raises
    ------
    ValueError, TypeError
        As :func:`similarity_map`.

    See Also
    --------
    similarity_map, find_peaks

    Notes
    -----
    Derived in :ref:`theory-masked-ncc`.

    :math:`D = \sum M w^2 - 2 \sum M w t + \sum M t^2`: two correlations
    with the mask and one with :math:`M t`. Both ``a`` and the template are
    first shifted by the mean of ``a`` (which leaves :math:`D` unchanged),
    the window sums are taken in double precision, and rounding below zero
    is clipped, so that a perfect match gives 0 to within rounding even far
    from zero.

    Examples
    --------
    >>> from pyconvnet.signal import squared_difference_map
    >>> squared_difference_map([0.0, 1.0, 2.0, 1.0, 0.0], [1.0, 2.0])
    array([2., 0., 2., 4.])
    """
    check_choice(method, "method", METHODS)
    n_threads = check_n_threads(n_threads)
    a, templates, stacked = _check_search(a, template)
    normalized = check_bool(normalized, "normalized")
    kernel_shape = templates.shape[1:]
    weights = _check_mask(mask, kernel_shape)
    weights = np.ones(kernel_shape) if weights is None else weights
    start, shape = _full_window(a.shape, kernel_shape, mode)
    region = _padded_region(a, kernel_shape, start, shape)
    axes = tuple(range(1, templates.ndim))
    column = (-1,) + (1,) * len(shape)
    missing = _missing(region)
    x = region.astype(np.float64)
    if missing is not None:
        x[missing] = 0
    offset = _offset(x, None if missing is None else ~missing)
    shifted = x - offset
    t = templates.astype(np.float64)
    t_shifted = t - offset
    ones = weights[np.newaxis]
    cross = _correlate_stack(shifted.astype(a.dtype), (weights * t_shifted).astype(a.dtype),
                             method, n_threads).astype(np.float64)
    s2 = _correlate_stack(shifted * shifted, ones, method, n_threads)[0]
    b2 = np.sum(weights * t_shifted ** 2, axis=axes).reshape(column)
    value = np.maximum(s2 - 2 * cross + b2, 0)
    if normalized:
        energy = _correlate_stack(x * x, ones, method, n_threads)[0]
        denominator = np.sqrt(energy * np.sum(weights * t * t, axis=axes).reshape(column))
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(value < denominator, value / denominator, 1.0)
    if missing is not None:
        hit = _correlate_stack(missing.astype(np.float64), (weights > 0)[np.newaxis].astype(
            np.float64), "direct", n_threads)[0]
        value[:, hit > 0.5] = np.nan
    value = value.astype(a.dtype)
    return value if stacked else value[0]


def find_peaks(score, *, min_distance=1, threshold=None, num_peaks=None, exclude_border=True,
               subpixel=False):
    r"""Positions and values of the local maxima of a score map, best first.

    A local maximum is an element equal to the largest value within
    ``min_distance`` of it along every axis (a cube of side
    ``2 * min_distance + 1``, the edges extended by their nearest values),
    above ``threshold``. Of two maxima closer than ``min_distance``
    (Chebyshev distance) only the higher is kept (non-maximum suppression),
    ties going to the first in C order. The result equals
    :func:`skimage.feature.peak_local_max` with the same arguments
    (``threshold`` is its ``threshold_abs``).

    Parameters
    ----------
    score : (N,) or (M, N) or (L, M, N) array_like
        A score map, such as :func:`similarity_map`'s (for
        :func:`squared_difference_map`, search its negative).
    min_distance : int, default 1
        Smallest distance between two peaks, in elements (>= 1).
    threshold : float, optional
        Peaks must score strictly above it; None is the map's minimum.
        NaN scores never make peaks.
    num_peaks : int, optional
        Return at most this many, the highest.
    exclude_border : bool or int, default True
        Leave out peaks within this many elements of the edge: True is
        ``min_distance``, False is 0.
    subpixel : bool, default False
        Refine each position by fitting a parabola through the peak and its
        two neighbours along each axis: the vertex lies
        :math:`\delta = \frac{f_{-1} - f_{+1}}{2 (f_{-1} - 2 f_0 + f_{+1})}`
        from the peak, within half an element. Peaks on an edge are not
        refined along that axis.

    Returns
    -------
    positions : (P, ndim) ndarray
        Coordinates of the peaks, highest first: int64, or float64 with
        ``subpixel=True``.
    values : (P,) ndarray
        The score at each peak (at the element, not the refined position).

    Raises
    ------
    ValueError
        For ``min_distance < 1``, a negative ``exclude_border`` or
        ``num_peaks``, or a map of rank other than 1 to 3 or empty.
    TypeError
        For non-integer ``min_distance``, ``num_peaks`` or ``exclude_border``,
        or a non-real map.

    See Also
    --------
    similarity_map : The maps searched.
    skimage.feature.peak_local_max : The reference for integer positions.

    Notes
    -----
    Derived in :ref:`theory-subpixel-peaks`.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconvnet.signal import find_peaks
    >>> score = np.array([0.0, 0.2, 1.0, 0.4, 0.0, 0.0, 0.6, 0.0])
    >>> find_peaks(score)
    (array([[2],
           [6]]), array([1. , 0.6]))
    >>> positions, _ = find_peaks(score, subpixel=True, num_peaks=1)
    >>> positions.round(3)
    array([[2.071]])
    """
    values, min_distance, threshold, num_peaks, border = _check_peak_args(
        score, min_distance, threshold, num_peaks, exclude_border)
    candidates = _peak_candidates(values, min_distance)
    if candidates.all() and values.size > 1:
        candidates[...] = False     # a flat map has no peak (one element is one)
    coords = np.argwhere(candidates)
    return _select_peaks(values, coords, values[tuple(coords.T)], min_distance, threshold,
                         num_peaks, border, subpixel)


def _check_peak_args(score, min_distance, threshold, num_peaks, exclude_border):
    values = as_float_array(score, "score")
    check_ndim(values, "score", (1, 2, 3))
    if values.size == 0:
        raise ValueError(f"score must not be empty, got shape {values.shape}")
    min_distance = check_int(min_distance, "min_distance", minimum=1)
    if num_peaks is not None:
        num_peaks = check_int(num_peaks, "num_peaks", minimum=0)
    if isinstance(exclude_border, (bool, np.bool_)):
        border = min_distance if exclude_border else 0
    else:
        border = check_int(exclude_border, "exclude_border", minimum=0)
    if threshold is not None:
        threshold = float(threshold)
    return values, min_distance, threshold, num_peaks, border


def _peak_candidates(values, min_distance):
    """Elements equal to the largest value within ``min_distance`` (edges
    extended by their nearest values), NaN never."""
    filled = np.where(np.isnan(values), -np.inf, values)
    return filled == scipy.ndimage.maximum_filter(filled, size=2 * min_distance + 1,
                                                  mode="nearest")


def _select_peaks(values, coords, found, min_distance, threshold, num_peaks, border,
                  subpixel):
    """Threshold, border, order and spacing of candidate peaks ``coords``
    (their values ``found``) of the map ``values``, which may be a Dask
    array: only the neighbours of the peaks are read."""
    shape = values.shape
    if threshold is None:
        threshold = float(np.nanmin(values)) if isinstance(values, np.ndarray) else None
    if threshold is not None:
        keep = found > threshold
        coords, found = coords[keep], found[keep]
    if border:
        inside = np.all((coords >= border) & (coords < np.array(shape) - border), axis=1)
        coords, found = coords[inside], found[inside]
    # C order, then the highest first (stable, as peak_local_max sorts)
    order = np.lexsort(coords.T[::-1]) if len(coords) else np.arange(0)
    coords, found = coords[order], found[order]
    order = np.argsort(-found, kind="stable")
    coords, found = coords[order], found[order]
    limit = len(coords) if num_peaks is None else num_peaks
    if min_distance > 1 and len(coords):
        keep = _spaced(coords, min_distance, limit)
        coords, found = coords[keep], found[keep]
    coords, found = coords[:limit], found[:limit]
    if subpixel:
        coords = _refine(values, coords)
    return coords.astype(np.float64 if subpixel else np.int64), found


def _spaced(coords, min_distance, limit):
    """Greedy non-maximum suppression: walking from the highest, keep a
    peak unless a kept one lies closer than ``min_distance`` (Chebyshev)."""
    tree = scipy.spatial.cKDTree(coords)
    # Chebyshev distances are integers: closer than d means within d - 0.5.
    neighbours = tree.query_ball_point(coords, r=min_distance - 0.5, p=np.inf)
    rejected = np.zeros(len(coords), dtype=bool)
    kept = []
    for index, near in enumerate(neighbours):
        if rejected[index]:
            continue
        kept.append(index)
        if len(kept) >= limit:
            break
        rejected[near] = True
    return np.array(kept, dtype=np.intp)


def _refine(values, coords):
    """Vertex of the parabola through each peak and its neighbours, per
    axis (within half an element; none at an edge or a NaN neighbour)."""
    refined = coords.astype(np.float64)
    if not len(coords):
        return refined
    for axis, n in enumerate(values.shape):
        inner = (coords[:, axis] > 0) & (coords[:, axis] < n - 1)
        before, after = coords[inner].copy(), coords[inner].copy()
        before[:, axis] -= 1
        after[:, axis] += 1
        lo, mid, hi = (np.asarray(_gather(values, c), dtype=np.float64)
                       for c in (before, coords[inner], after))
        curvature = lo - 2 * mid + hi
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = np.where(curvature < 0, (lo - hi) / (2 * curvature), 0.0)
        delta = np.clip(np.nan_to_num(delta), -0.5, 0.5)
        refined[inner, axis] += delta
    return refined


def _gather(values, coords):
    """``values`` at integer ``coords`` (P, ndim), in memory or from Dask."""
    if isinstance(values, np.ndarray):
        return values[tuple(coords.T)]
    return values.vindex[tuple(coords.T)].compute() if len(coords) else np.zeros(0)


def _region_under_windows(a_shape, window, start, shape):
    """Where the windows giving the ``[start, start + shape)`` part of the
    full correlation with a kernel of shape ``window`` lie: the slices of
    ``a`` they cover, and the zero padding (before, after) each axis needs."""
    # Full-output position m covers a[m - (K - 1) : m + 1] along each axis.
    lo = [s - (k - 1) for s, k in zip(start, window)]
    hi = [s + n for s, n in zip(start, shape)]
    inside = tuple(slice(max(first, 0), min(end, n)) for first, end, n in zip(lo, hi, a_shape))
    pads = [(max(-first, 0), max(end - n, 0)) for first, end, n in zip(lo, hi, a_shape)]
    return inside, pads


def _padded_region(a, window, start, shape):
    """The part of ``a`` (zero-padded where needed) under those windows."""
    inside, pads = _region_under_windows(a.shape, window, start, shape)
    if any(p != (0, 0) for p in pads):
        return np.pad(a[inside], pads)
    return np.ascontiguousarray(a[inside])
