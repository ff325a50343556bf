"""Naive reference implementations, written straight from the formulas.

Slow, obvious loops over NumPy arrays, with no shared code with the compiled
kernels: the test suite's independent oracles. Not part of the public API.
"""
import itertools

import numpy as np


# --- signal -----------------------------------------------------------------

def correlate_full(a, kernel):
    """Full correlation: z[m] = sum_k a[m + k - (K - 1)] * kernel[k], with a
    zero outside its bounds, for arrays of any rank (float64)."""
    a = np.asarray(a, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    out_shape = tuple(n + k - 1 for n, k in zip(a.shape, kernel.shape))
    out = np.zeros(out_shape)
    for m in itertools.product(*(range(n) for n in out_shape)):
        total = 0.0
        for k in itertools.product(*(range(n) for n in kernel.shape)):
            idx = tuple(mi + ki - (kn - 1) for mi, ki, kn in zip(m, k, kernel.shape))
            if all(0 <= i < n for i, n in zip(idx, a.shape)):
                total += a[idx] * kernel[k]
        out[m] = total
    return out


def mode_window(shape1, shape2, mode):
    """Slices of the full output that a mode keeps (scipy's conventions)."""
    if mode == "full":
        return tuple(slice(None) for _ in shape1)
    if mode == "same":
        return tuple(slice((k - 1) // 2, (k - 1) // 2 + n) for n, k in zip(shape1, shape2))
    return tuple(slice(min(n, k) - 1, max(n, k)) for n, k in zip(shape1, shape2))


def correlate(a, kernel, mode="full"):
    full = correlate_full(a, kernel)
    return full[mode_window(np.shape(a), np.shape(kernel), mode)]


def convolve(a, kernel, mode="full"):
    """z[m] = sum_k a[m - k] * kernel[k], written as its own loop."""
    a = np.asarray(a, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    out_shape = tuple(n + k - 1 for n, k in zip(a.shape, kernel.shape))
    full = np.zeros(out_shape)
    for m in itertools.product(*(range(n) for n in out_shape)):
        total = 0.0
        for k in itertools.product(*(range(n) for n in kernel.shape)):
            idx = tuple(mi - ki for mi, ki in zip(m, k))
            if all(0 <= i < n for i, n in zip(idx, a.shape)):
                total += a[idx] * kernel[k]
        full[m] = total
    return full[mode_window(a.shape, kernel.shape, mode)]


def similarity_map(a, template, centered=False, mode="valid"):
    """Cosine similarity of the template with every window, one window at a
    time; flat windows (zero norm) give 0."""
    a = np.asarray(a, dtype=np.float64)
    t = np.asarray(template, dtype=np.float64)
    pad = [(k - 1, k - 1) for k in t.shape]
    padded = np.pad(a, pad)
    full_shape = tuple(n + k - 1 for n, k in zip(a.shape, t.shape))
    out = np.zeros(full_shape)
    tc = t - t.mean() if centered else t
    for m in itertools.product(*(range(n) for n in full_shape)):
        window = padded[tuple(slice(mi, mi + k) for mi, k in zip(m, t.shape))]
        if centered:
            window = window - window.mean()
        norm = np.sqrt(np.sum(window ** 2)) * np.sqrt(np.sum(tc ** 2))
        out[m] = np.sum(window * tc) / norm if norm > 1e-12 else 0.0
    return out[mode_window(a.shape, t.shape, mode)]
