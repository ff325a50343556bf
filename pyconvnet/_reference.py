"""Naive reference implementations, written straight from the formulas.

Slow, obvious loops over NumPy arrays, with no shared code with the compiled
kernels: the test suite's independent oracles. Not part of the public API.
"""
import itertools
import math

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


# --- pooling ----------------------------------------------------------------

def pool_out_len(n, k, s, p, d=1, ceil_mode=False):
    """Output length from the documented formula
    floor-or-ceil((n + 2p - d(k-1) - 1) / s) + 1, minus the ceil-mode window
    that would start beyond the input and its left padding."""
    span = (n + 2 * p - d * (k - 1) - 1) / s
    out = (math.ceil(span) if ceil_mode else math.floor(span)) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _window_positions(o, n, k, s, p, d):
    """Input positions of window o along one axis, in order, inside [0, n)."""
    return [o * s - p + j * d for j in range(k) if 0 <= o * s - p + j * d < n]


def max_pool(x, kernel, stride, padding, dilation, ceil_mode=False):
    """Max pooling of (N, C, *spatial) by a scan of each window in row-major
    order with the rule `val > best or isnan(val)` (the first valid position
    starts the scan); returns float64 values and the flat index of each pick
    within its plane, -1 for a window holding padding only."""
    x = np.asarray(x, dtype=np.float64)
    spatial = x.shape[2:]
    out_shape = tuple(pool_out_len(n, k, s, p, d, ceil_mode)
                      for n, k, s, p, d in zip(spatial, kernel, stride, padding, dilation))
    values = np.empty(x.shape[:2] + out_shape)
    indices = np.empty(x.shape[:2] + out_shape, dtype=np.int64)
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        plane = x[n, c]
        for o in itertools.product(*(range(m) for m in out_shape)):
            axes = [_window_positions(oi, ni, k, s, p, d) for oi, ni, k, s, p, d
                    in zip(o, spatial, kernel, stride, padding, dilation)]
            best, where = -np.inf, None
            for pos in itertools.product(*axes):
                val = plane[pos]
                if where is None or val > best or np.isnan(val):
                    best, where = val, pos
            values[(n, c) + o] = best
            indices[(n, c) + o] = -1 if where is None else np.ravel_multi_index(where, spatial)
    return values, indices


def avg_pool(x, kernel, stride, padding, ceil_mode=False, count_include_pad=True,
             divisor_override=None):
    """Average pooling of (N, C, *spatial): the sum over the window's positions
    inside the input, divided by divisor_override, or by the window's size
    clipped to the padded input (count_include_pad), or by the number of
    positions inside the input."""
    x = np.asarray(x, dtype=np.float64)
    spatial = x.shape[2:]
    out_shape = tuple(pool_out_len(n, k, s, p, 1, ceil_mode)
                      for n, k, s, p in zip(spatial, kernel, stride, padding))
    out = np.empty(x.shape[:2] + out_shape)
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for o in itertools.product(*(range(m) for m in out_shape)):
            total, inside, padded = 0.0, 1, 1
            axes = []
            for oi, ni, k, s, p in zip(o, spatial, kernel, stride, padding):
                start = oi * s - p
                end = min(start + k, ni + p)
                padded *= end - start
                axes.append(range(max(start, 0), min(end, ni)))
                inside *= len(axes[-1])
            for pos in itertools.product(*axes):
                total += x[(n, c) + pos]
            if divisor_override is not None:
                divisor = divisor_override
            else:
                divisor = padded if count_include_pad else inside
            out[(n, c) + o] = total / divisor
    return out


def max_pool_backward(grad, indices, input_shape):
    """Add each gradient at its index within its plane."""
    grad = np.asarray(grad, dtype=np.float64)
    out = np.zeros(input_shape)
    spatial = input_shape[2:]
    for n, c in itertools.product(range(grad.shape[0]), range(grad.shape[1])):
        for o in itertools.product(*(range(m) for m in grad.shape[2:])):
            i = indices[(n, c) + o]
            if i >= 0:
                out[(n, c) + np.unravel_index(i, spatial)] += grad[(n, c) + o]
    return out


def avg_pool_backward(grad, input_shape, kernel, stride, padding, ceil_mode=False,
                      count_include_pad=True, divisor_override=None):
    """Spread each gradient over its window's positions inside the input,
    divided by the forward divisor (found by pooling the window's own
    indicator: the forward is linear, so its adjoint is read off columns)."""
    grad = np.asarray(grad, dtype=np.float64)
    out = np.zeros(input_shape)
    spatial = input_shape[2:]
    for pos in itertools.product(*(range(m) for m in spatial)):
        basis = np.zeros((1, 1) + tuple(spatial))
        basis[(0, 0) + pos] = 1.0
        column = avg_pool(basis, kernel, stride, padding, ceil_mode, count_include_pad,
                          divisor_override)[0, 0]
        out[(slice(None), slice(None)) + pos] = np.tensordot(
            grad, column, axes=(list(range(2, grad.ndim)), list(range(column.ndim))))
    return out


def adaptive_bins(n, m):
    """Bins [floor(i n / m), ceil((i + 1) n / m)) of an axis of n cut into m."""
    return [(math.floor(i * n / m), math.ceil((i + 1) * n / m)) for i in range(m)]


def adaptive_avg_pool2d(x, out_hw):
    x = np.asarray(x, dtype=np.float64)
    H, W = x.shape[2:]
    out = np.empty(x.shape[:2] + tuple(out_hw))
    for i, (h0, h1) in enumerate(adaptive_bins(H, out_hw[0])):
        for j, (w0, w1) in enumerate(adaptive_bins(W, out_hw[1])):
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / ((h1 - h0) * (w1 - w0))
    return out


def adaptive_max_pool2d(x, out_hw):
    """Values and flat indices, scanning each bin with `val > best or isnan`."""
    x = np.asarray(x, dtype=np.float64)
    N, C, H, W = x.shape
    values = np.empty((N, C) + tuple(out_hw))
    indices = np.empty((N, C) + tuple(out_hw), dtype=np.int64)
    for n, c in itertools.product(range(N), range(C)):
        for i, (h0, h1) in enumerate(adaptive_bins(H, out_hw[0])):
            for j, (w0, w1) in enumerate(adaptive_bins(W, out_hw[1])):
                best, where = None, None
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        val = x[n, c, h, w]
                        if where is None or val > best or np.isnan(val):
                            best, where = val, h * W + w
                values[n, c, i, j] = best
                indices[n, c, i, j] = where
    return values, indices


def adaptive_avg_pool2d_backward(grad, input_shape):
    grad = np.asarray(grad, dtype=np.float64)
    H, W = input_shape[2:]
    out = np.zeros(input_shape)
    for i, (h0, h1) in enumerate(adaptive_bins(H, grad.shape[2])):
        for j, (w0, w1) in enumerate(adaptive_bins(W, grad.shape[3])):
            share = grad[:, :, i, j] / ((h1 - h0) * (w1 - w0))
            out[:, :, h0:h1, w0:w1] += share[:, :, None, None]
    return out


def subsample2d(x, factor, beta, bias):
    """y[n, c, i, j] = beta[c] * sum of block (i, j) + bias[c], blocks of
    fh x fw, leftover rows and columns ignored."""
    x = np.asarray(x, dtype=np.float64)
    fh, fw = factor
    N, C, H, W = x.shape
    out = np.empty((N, C, H // fh, W // fw))
    for n, c, i, j in itertools.product(range(N), range(C), range(H // fh), range(W // fw)):
        total = 0.0
        for a in range(fh):
            for b in range(fw):
                total += x[n, c, i * fh + a, j * fw + b]
        out[n, c, i, j] = beta[c] * total + bias[c]
    return out


def subsample2d_backward(grad, x, factor, beta):
    """(grad_x, grad_beta, grad_bias) of subsample2d, term by term."""
    grad = np.asarray(grad, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    fh, fw = factor
    N, C, H, W = x.shape
    grad_x = np.zeros(x.shape)
    grad_beta = np.zeros(C)
    grad_bias = np.zeros(C)
    for n, c, i, j in itertools.product(range(N), range(C), range(H // fh), range(W // fw)):
        g = grad[n, c, i, j]
        block = x[n, c, i * fh:(i + 1) * fh, j * fw:(j + 1) * fw]
        grad_x[n, c, i * fh:(i + 1) * fh, j * fw:(j + 1) * fw] += beta[c] * g
        grad_beta[c] += g * block.sum()
        grad_bias[c] += g
    return grad_x, grad_beta, grad_bias


