"""The workspace cache shared by the kernels' wrappers: reuse, the bound,
threads, and children made by fork."""
import multiprocessing
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyconvnet import _workspace as ws
from pyconvnet._ext import _conv
from pyconvnet.functional import conv2d
from pyconvnet.signal import correlate


@pytest.fixture(autouse=True)
def empty_cache():
    ws.clear()
    yield
    ws.clear()


def test_a_given_back_buffer_is_reused_by_the_smallest_fit():
    small, large = ws.take(1000), ws.take(5000)
    ws.give(large)
    ws.give(small)
    assert ws.cached_bytes() == small.nbytes + large.nbytes
    assert ws.take(800) is small
    assert ws.take(4000) is large
    assert ws.cached_bytes() == 0
    fresh = ws.take(100)
    assert fresh is not small and fresh is not large and fresh.nbytes == 100


@settings(max_examples=50, deadline=None)
@given(sizes=st.lists(st.integers(1, 5000), max_size=16), bound=st.integers(0, 12000))
def test_the_cache_keeps_at_most_its_bound_dropping_the_largest(sizes, bound):
    ws.clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ws, "MAX_BYTES", bound)
        for n in sizes:
            ws.give(np.empty(n, dtype=np.uint8))
            assert ws.cached_bytes() <= bound
    kept = [b.nbytes for b in ws._free]
    assert sum(kept) == ws.cached_bytes()
    assert len(sizes) <= ws.MAX_BUFFERS
    # the largest go first, so what is kept are the smallest given
    assert kept == sorted(sizes)[:len(kept)]
    if len(kept) < len(sizes):
        assert sum(kept) + sorted(sizes)[len(kept)] > bound


def test_the_cache_keeps_at_most_its_number_of_buffers_dropping_the_smallest():
    sizes = list(range(1, ws.MAX_BUFFERS + 6))
    for n in sizes[::-1]:
        ws.give(np.empty(n, dtype=np.uint8))
        assert len(ws._free) <= ws.MAX_BUFFERS
    assert [b.nbytes for b in ws._free] == sizes[-ws.MAX_BUFFERS:]
    assert ws.cached_bytes() == sum(sizes[-ws.MAX_BUFFERS:])


def test_clear_frees_the_cache_and_conv_clear_cache_is_the_same():
    ws.give(ws.take(1 << 16))
    assert ws.cached_bytes() == 1 << 16
    ws.clear()
    assert ws.cached_bytes() == 0
    ws.give(ws.take(1 << 16))
    _conv.clear_cache()
    assert ws.cached_bytes() == 0


def test_scratch_arrays_are_separate_and_given_back():
    with ws.Scratch() as scratch:
        a = scratch.array((3, 5), np.float32)
        b = scratch.array((7,), np.float64)
        assert a.shape == (3, 5) and a.dtype == np.float32 and a.flags.c_contiguous
        assert b.shape == (7,) and b.dtype == np.float64
        assert not np.shares_memory(a, b)
        assert ws.cached_bytes() == 0
    assert ws.cached_bytes() >= a.nbytes + b.nbytes


def test_arrays_carves_aligned_parts_of_one_buffer():
    layout = [("a", np.float32, 3), ("b", np.complex128, 5), ("c", np.float64, 1)]
    with ws.arrays(layout) as parts:
        assert [parts[name].dtype for name, _, _ in layout] == [np.dtype(t) for _, t, _ in layout]
        assert [parts[name].size for name, _, _ in layout] == [3, 5, 1]
        base = parts["a"].__array_interface__["data"][0]
        for name, _, _ in layout:
            assert (parts[name].__array_interface__["data"][0] - base) % 64 == 0
        assert not np.shares_memory(parts["a"], parts["b"])
        assert not np.shares_memory(parts["b"], parts["c"])
    assert ws.cached_bytes() == 64 + 128 + 64     # 12, 80 and 8 bytes, each rounded up


def test_threads_never_share_a_buffer():
    n_threads, rounds = 8, 200
    errors = []
    start = threading.Barrier(n_threads)

    def work(tid):
        start.wait()
        for i in range(rounds):
            with ws.Scratch() as scratch:
                mine = scratch.array((64 + (i * 37 + tid) % 512,), np.int64)
                mine[...] = tid
                again = scratch.array((16,), np.int64)
                again[...] = -tid
                if (mine != tid).any() or (again != -tid).any():
                    errors.append(tid)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert ws.cached_bytes() <= ws.MAX_BYTES
    assert len(ws._free) <= ws.MAX_BUFFERS


def _use_after_fork(queue):
    cached = ws.cached_bytes()
    a = np.random.default_rng(0).standard_normal((300, 280))
    k = np.random.default_rng(1).standard_normal((9, 9))
    got = correlate(a, k, method="fft", n_threads=2)      # overlap-save, two Python threads
    want = correlate(a, k, method="direct", n_threads=1)
    x = np.ones((1, 2, 6, 6))
    y = conv2d(x, np.ones((3, 2, 3, 3)), padding=1, n_threads=1)
    queue.put((cached, float(np.abs(got - want).max()), float(y[0, 0, 2, 2]),
               ws.cached_bytes() > 0))


def test_a_child_forked_while_the_cache_is_locked_starts_empty_and_works():
    ws.give(ws.take(1 << 20))
    fork = multiprocessing.get_context("fork")
    queue = fork.Queue()
    with ws._lock:          # as if another thread were taking a buffer
        child = fork.Process(target=_use_after_fork, args=(queue,))
        child.start()
    cached, error, centre, reused = queue.get(timeout=120)
    child.join(60)
    assert child.exitcode == 0
    assert cached == 0, "the parent's buffers are not the child's"
    assert error < 1e-9 and centre == 18.0 and reused
    assert ws.cached_bytes() == 1 << 20, "the parent keeps its own"


def test_the_bounds_are_those_the_threading_page_states():
    page = (Path(__file__).parents[1] / "docs" / "threading.rst").read_text()
    assert ws.MAX_BYTES == 64 << 20 and "at most 64 MiB" in page
    assert ws.MAX_BUFFERS == max(16, 2 * os.cpu_count())
    assert "``max(16, 2 * cores)`` buffers" in page
