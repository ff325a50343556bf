"""Scratch memory kept between calls, shared by every kernel wrapper.

The convolution kernels' per-thread buffers (column tiles, Winograd
matrices, padded planes) and the overlap-save FFT tasks' workspaces run to
megabytes. Freshly allocated, every 4 KiB page of them faults on first
touch, which at 512x512 made the blocked FFTs twice as slow; so they are
taken from a cache of byte buffers and given back after the call.

* Bounded: at most :data:`MAX_BYTES` (64 MiB) in at most
  :data:`MAX_BUFFERS` free buffers are kept between calls; beyond the bytes
  the largest are dropped, beyond the count the smallest. Buffers in use
  are not counted (a call owns what it took until it gives it back).
* Thread-safe: a lock guards the free list; each buffer is used by one call
  at a time.
* Fork-safe: in a child made by :func:`os.fork` (multiprocessing's 'fork'
  start method) the cache starts empty with a fresh lock, so a lock held by
  another thread of the parent at the fork cannot block the child.
* :func:`clear` frees the cached buffers (the memory goes back to the
  allocator; :func:`cached_bytes` tells how much is kept).
"""
import contextlib
import math
import os
import threading

import numpy as np

__all__ = ["MAX_BYTES", "MAX_BUFFERS", "take", "give", "clear", "cached_bytes", "Scratch", "arrays",
           "empty_aligned"]

#: Most bytes of free buffers kept between calls.
MAX_BYTES = 64 << 20
#: Most free buffers kept: enough for one workspace per core (the FFT
#: tasks) or a few per running convolution, few enough that looking for a
#: fit stays short.
MAX_BUFFERS = max(16, 2 * (os.cpu_count() or 1))

# Every part of a buffer carved by :func:`arrays` starts on this boundary.
_ALIGN = 64

_lock = threading.Lock()
_free = []          # free byte buffers, smallest first
_free_bytes = 0     # their total size


def _reset_after_fork():
    # A child forked while another thread held the lock must not inherit
    # it; the buffers of the parent's calls in flight are not the child's.
    global _lock, _free_bytes
    _lock = threading.Lock()
    _free.clear()
    _free_bytes = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def take(nbytes):
    """A 1-D uint8 array of at least ``nbytes`` bytes: the smallest free
    buffer that fits, or a new one."""
    global _free_bytes
    with _lock:
        for i, buf in enumerate(_free):
            if buf.nbytes >= nbytes:
                _free_bytes -= buf.nbytes
                return _free.pop(i)
    return np.empty(max(1, nbytes), dtype=np.uint8)


def give(buf):
    """Return a buffer from :func:`take` to the cache (kept while the free
    buffers stay within :data:`MAX_BYTES` and :data:`MAX_BUFFERS`)."""
    global _free_bytes
    with _lock:
        _free.append(buf)
        _free.sort(key=lambda b: b.nbytes)
        _free_bytes += buf.nbytes
        while _free_bytes > MAX_BYTES:
            _free_bytes -= _free.pop().nbytes      # the largest
        while len(_free) > MAX_BUFFERS:
            _free_bytes -= _free.pop(0).nbytes     # the smallest


def clear():
    """Free every cached buffer."""
    global _free_bytes
    with _lock:
        _free.clear()
        _free_bytes = 0


def cached_bytes():
    """Bytes of free buffers kept for later calls."""
    return _free_bytes


class Scratch:
    """Arrays for one call, given back to the cache on exit::

        with Scratch() as scratch:
            buf = scratch.array((n_threads, size), np.float32)
    """

    __slots__ = ("_held",)

    def __init__(self):
        self._held = []

    def array(self, shape, dtype):
        """An uninitialised C-contiguous array of this shape and dtype."""
        dtype = np.dtype(dtype)
        nbytes = max(1, math.prod(shape) * dtype.itemsize)
        buf = take(nbytes)
        self._held.append(buf)
        return buf[:nbytes].view(dtype).reshape(shape)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        held, self._held = self._held, []
        for buf in held:
            give(buf)


@contextlib.contextmanager
def arrays(layout):
    """1-D arrays named and sized by ``layout`` (name, dtype, length
    triples), carved from one buffer (each part aligned to 64 bytes) and
    given back on exit."""
    sizes = [-(-count * np.dtype(dtype).itemsize // _ALIGN) * _ALIGN
             for _, dtype, count in layout]
    buffer = take(sum(sizes))
    parts, offset = {}, 0
    for (name, dtype, count), size in zip(layout, sizes):
        parts[name] = buffer[offset:offset + count * np.dtype(dtype).itemsize].view(dtype)
        offset += size
    try:
        yield parts
    finally:
        give(buffer)


def empty_aligned(shape, dtype):
    """An uninitialised C-contiguous array (not from the cache: the caller
    keeps it) whose data starts on a 64-byte boundary, so that vector
    loops storing whole cache lines never split one (numpy's own
    allocations are 16-byte aligned)."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    buf = np.empty(nbytes + _ALIGN, dtype=np.uint8)
    start = (-buf.ctypes.data) % _ALIGN
    return buf[start:start + nbytes].view(dtype).reshape(shape)
