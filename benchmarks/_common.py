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
