"""Timing helpers shared by the benchmark scripts."""
import statistics
import time

import numpy as np


def median_time(func, repeat=7, warmup=1, min_time=0.0):
    """Median wall time of ``func()`` in seconds over ``repeat`` runs."""
    for _ in range(warmup):
        func()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved(funcs, rounds, warmup=1):
    """Median wall time of each function in seconds, running them in turn
    ``rounds`` times, so that a change in the machine's load during the run
    affects every one of them alike."""
    for _ in range(warmup):
        for func in funcs:
            func()
    samples = [[] for _ in funcs]
    for _ in range(rounds):
        for func, times in zip(funcs, samples):
            start = time.perf_counter()
            func()
            times.append(time.perf_counter() - start)
    return [statistics.median(times) for times in samples]


def sgemm_gflops(n=2048, repeat=5):
    """Measured float32 matrix-multiply speed of numpy's BLAS (GFLOP/s)."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    return 2 * n ** 3 / median_time(lambda: a @ b, repeat) / 1e9


def copy_bandwidth(nbytes=200_000_000, repeat=5):
    """Measured copy bandwidth in GB/s (bytes read plus bytes written)."""
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    return 2 * nbytes / median_time(lambda: np.copyto(dst, src), repeat) / 1e9


def markdown_table(header, rows):
    """Format rows of strings as a Markdown table."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
