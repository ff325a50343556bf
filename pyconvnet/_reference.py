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


# --- convolution ------------------------------------------------------------

def _conv_padding(padding, kernel, dilation):
    """(before, after) padding per spatial axis, as PyTorch reads ``padding``."""
    nd = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * nd
        # 'same': total d*(k-1), the odd one out goes after
        return [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                for k, d in zip(kernel, dilation)]
    padding = (padding,) * nd if np.isscalar(padding) else tuple(padding)
    return [(p, p) for p in padding]


def _conv_setup(x, weight, stride, padding, dilation):
    x = np.asarray(x, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    nd = weight.ndim - 2
    kernel = weight.shape[2:]
    stride = (stride,) * nd if np.isscalar(stride) else tuple(stride)
    dilation = (dilation,) * nd if np.isscalar(dilation) else tuple(dilation)
    pads = _conv_padding(padding, kernel, dilation)
    out = tuple((n + lo + hi - d * (k - 1) - 1) // s + 1
                for n, k, s, d, (lo, hi) in zip(x.shape[2:], kernel, stride, dilation, pads))
    return x, weight, kernel, stride, dilation, [lo for lo, _ in pads], out


def _conv_pairs(x_spatial, kernel, stride, dilation, before, out):
    """Every (output position, kernel tap, input position) with the input
    position i = o*s + f*d - pad inside the input."""
    for o in itertools.product(*(range(n) for n in out)):
        for f in itertools.product(*(range(k) for k in kernel)):
            i = tuple(oi * s + fi * d - p
                      for oi, fi, s, d, p in zip(o, f, stride, dilation, before))
            if all(0 <= ii < n for ii, n in zip(i, x_spatial)):
                yield o, f, i


def conv_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """y[n, k, o] = bias[k] + sum_{c in group(k), f} w[k, c, f] x[n, c, o*s + f*d - p]
    for batched NC(D)(H)W input (float64), straight from the definition."""
    x, weight, kernel, stride, dilation, before, out = _conv_setup(
        x, weight, stride, padding, dilation)
    N, C = x.shape[:2]
    K, Cg = weight.shape[:2]
    Kg = K // groups
    y = np.zeros((N, K) + out)
    for n in range(N):
        for k in range(K):
            g = k // Kg
            for o, f, i in _conv_pairs(x.shape[2:], kernel, stride, dilation, before, out):
                for c in range(Cg):
                    y[(n, k) + o] += weight[(k, c) + f] * x[(n, g * Cg + c) + i]
            if bias is not None:
                y[n, k] += bias[k]
    return y


def conv_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1):
    """(grad_input, grad_weight, grad_bias) of :func:`conv_forward`, by
    differentiating each term of the sum: the term w[k, c, f] x[n, c, i]
    of y[n, k, o] sends dy[n, k, o] w[k, c, f] to dx[n, c, i] and
    dy[n, k, o] x[n, c, i] to dw[k, c, f]."""
    x, weight, kernel, stride, dilation, before, out = _conv_setup(
        x, weight, stride, padding, dilation)
    dy = np.asarray(grad_output, dtype=np.float64)
    N, C = x.shape[:2]
    K, Cg = weight.shape[:2]
    Kg = K // groups
    dx = np.zeros_like(x)
    dw = np.zeros_like(weight)
    for n in range(N):
        for k in range(K):
            g = k // Kg
            for o, f, i in _conv_pairs(x.shape[2:], kernel, stride, dilation, before, out):
                for c in range(Cg):
                    dx[(n, g * Cg + c) + i] += dy[(n, k) + o] * weight[(k, c) + f]
                    dw[(k, c) + f] += dy[(n, k) + o] * x[(n, g * Cg + c) + i]
    db = dy.sum(axis=tuple(a for a in range(dy.ndim) if a != 1))
    return dx, dw, db
