r"""Max, average, adaptive and LeNet sub-sampling pooling of NCHW arrays.

The functions follow :mod:`torch.nn.functional`: the same arguments, the same
output shapes and values, and the same flat indices of the maxima. Inputs are
``(N, C, *spatial)`` arrays with 1, 2 or 3 spatial axes, or ``(C, *spatial)``
without the batch axis.

Along each spatial axis of length :math:`n`, a pooling with kernel size
:math:`k`, stride :math:`s`, padding :math:`p` and dilation :math:`d` has

.. math::

    n_{out} = \left\lfloor \frac{n + 2p - d(k - 1) - 1 + c\,(s - 1)}{s}
              \right\rfloor + 1,

where :math:`c = 1` with ``ceil_mode=True`` (and 0 otherwise); in ceil mode
the last window is dropped when it would start at or beyond :math:`n + p`,
so that every window starts inside the input or its left padding. Output
:math:`o` pools the input positions :math:`o s - p + j d`, :math:`0 \le j < k`,
that fall inside the input: positions in the padding are never selected by
max pooling (as if they held :math:`-\infty`) and count as zeros for average
pooling. The padding may be at most half the kernel size, :math:`p \le
\lfloor k / 2 \rfloor`, and every axis needs :math:`n_{out} \ge 1`.

Adaptive pooling to :math:`m` outputs uses the bins
:math:`[\lfloor i n / m \rfloor, \lceil (i + 1) n / m \rceil)`, which tile the
axis and overlap by at most one position when :math:`m` does not divide
:math:`n`.

The kernels (:mod:`pyconvnet._ext._pool`) stream through memory, reading
each input element once from main memory: threads split the ``N * C``
planes (each plane is written by one thread, so no gradient accumulation
ever races), and within a plane every output row is made by first
combining the window's input rows element-wise into a row buffer
(contiguous, vectorised), then reducing that buffer along the row. Disjoint
2x2 windows and stride-1 "same" windows have whole-plane kernels, and max
pooling without ``return_indices`` never computes indices.
"""
import math

import numpy as np

from ._docstrings import docfiller, docformat
from ._ext import _pool
from ._geometry import check_pool_padding, pool_window_count
from ._validation import (
    as_float_array,
    check_bool,
    check_int,
    check_n_threads,
    ntuple,
    result_dtype,
)

__all__ = [
    "max_pool1d", "max_pool2d", "max_pool3d",
    "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "max_pool1d_backward", "max_pool2d_backward", "max_pool3d_backward",
    "avg_pool1d_backward", "avg_pool2d_backward", "avg_pool3d_backward",
    "adaptive_avg_pool2d", "adaptive_max_pool2d",
    "adaptive_avg_pool2d_backward", "adaptive_max_pool2d_backward",
    "global_avg_pool2d",
    "subsample2d", "subsample2d_backward",
]


# --- geometry ----------------------------------------------------------------

def _output_size(n, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Number of outputs of a pooling along one axis of length ``n``, exactly
    as PyTorch computes it (in ceil mode a window longer than the input still
    gives one output when it starts inside the input).

    Parameters
    ----------
    n : int
        Input length.
    kernel_size, stride, padding, dilation : int
        The pooling's parameters along this axis (``stride`` defaults to
        ``kernel_size``).
    ceil_mode : bool, default False
        Round the number of window positions up instead of down (keeping
        only windows that start inside the input or its left padding).

    Returns
    -------
    int
        May be zero or negative when the window does not fit; the pooling
        functions refuse such arguments.

    Examples
    --------
    >>> _output_size(112, 3, 2, 1)
    56
    >>> _output_size(5, 2, 2), _output_size(5, 2, 2, ceil_mode=True)
    (2, 3)
    >>> _output_size(3, 4, 2, ceil_mode=True)
    1
    """
    stride = kernel_size if stride is None else stride
    return pool_window_count(n, kernel_size, stride, padding, dilation, ceil_mode)


class _Axis:
    """The windows of one axis as the kernels read them.

    ``table[0, o]`` is the first input position of output ``o``'s window that
    lies inside the input, ``table[1, o]`` how many positions do, ``step``
    apart. Outputs ``lo <= o < hi`` have complete regular windows starting at
    ``o * s - p`` with ``k`` positions (the fast interior).
    """

    def __init__(self, first, count, step=1, lo=0, hi=0, k=1, s=1, p=0):
        self.table = np.ascontiguousarray(np.stack([first, count]), dtype=np.intp)
        self.step = step
        self.lo, self.hi, self.k, self.s, self.p = lo, hi, k, s, p

    @property
    def size(self):
        return self.table.shape[1]

    @classmethod
    def trivial(cls):
        return cls(np.zeros(1), np.ones(1))

    @classmethod
    def pooling(cls, n, n_out, k, s, p, d):
        start = np.arange(n_out, dtype=np.int64) * s - p
        j0 = np.maximum(0, -(start // d))            # ceil(-start / d) where start < 0
        j1 = np.minimum(k - 1, (n - 1 - start) // d)
        count = np.maximum(0, j1 - j0 + 1)
        first = np.where(count > 0, start + j0 * d, 0)
        lo = min(n_out, -(-p // s))                  # first o with o*s - p >= 0
        hi = max(0, min(n_out, (n - 1 - (k - 1) * d + p) // s + 1))
        if hi <= lo:
            lo = hi = 0
        return cls(first, count, d, lo, hi, k, s, p)

    @classmethod
    def adaptive(cls, n, n_out):
        if n_out == 0:
            return cls(np.zeros(0), np.zeros(0))
        i = np.arange(n_out, dtype=np.int64)
        start = (i * n) // n_out
        end = -((-(i + 1) * n) // n_out)
        if n % n_out == 0:
            k = n // n_out
            return cls(start, end - start, 1, 0, n_out, k, k, 0)
        return cls(start, end - start, k=0)     # irregular bins: no interior


def _mean_divisors(n, n_out, k, s, p, count_include_pad):
    """Per-axis factor of avg pooling's divisor (PyTorch's rule): the window
    clipped to the padded input when padding counts, to the input otherwise."""
    start = np.arange(n_out, dtype=np.int64) * s - p
    if count_include_pad:
        return np.minimum(start + k, n + p) - start
    return np.minimum(start + k, n) - np.maximum(start, 0)


# Plane layouts with whole-plane kernels (declared in pyconvnet/_ext/_pool.pxd).
_Layout = _pool.Layout


def _layout(spatial, axes):
    if len(axes) != 2:
        return _Layout.GENERIC
    if all(a.k == 2 and a.s == 2 and a.p == 0 and a.step == 1 and a.lo == 0
           and a.hi == a.size for a in axes):
        return _Layout.DISJOINT_2X2
    if all(a.s == 1 and a.step == 1 and a.k % 2 == 1 and a.p == (a.k - 1) // 2
           and a.size == n for a, n in zip(axes, spatial)):
        return _Layout.SAME_STRIDE_1
    return _Layout.GENERIC


def _plan(spatial, axes, dtype, n_threads, with_indices=False):
    """Geometry (the kernels' ``PoolGeometry``), window tables and per-thread
    scratch for a kernel."""
    layout = _layout(spatial, axes)
    axes = [_Axis.trivial()] * (3 - len(axes)) + list(axes)
    shape = (1,) * (3 - len(spatial)) + tuple(spatial)
    ad, ah, aw = axes
    geometry = dict(D=shape[0], H=shape[1], W=shape[2],
                    step_d=ad.step, step_h=ah.step, step_w=aw.step,
                    w_lo=aw.lo, w_hi=aw.hi, w_kernel=aw.k, w_stride=aw.s, w_pad=aw.p,
                    h_kernel=ah.k, h_pad=ah.p, layout=layout)
    max_rows = max(1, int(ad.table[1].max(initial=0)) * int(ah.table[1].max(initial=0)))
    # the stride-1 layout needs two planes (the backward pass sweeps both)
    width = shape[2] * (2 * shape[1] if layout == _Layout.SAME_STRIDE_1 else 1)
    if with_indices:
        width = max(width, 2 * (shape[2] + aw.size))
    scratch = {
        "buf": np.empty((n_threads, width), dtype=dtype),
        "rows": np.empty((n_threads, max_rows), dtype=np.intp),
    }
    return geometry, [a.table for a in axes], scratch


# A thread team costs microseconds to start (far more on a busy machine):
# work is shared only in shares of at least this many elements read plus
# written, and never over more threads than there are planes.
_MIN_WORK_PER_THREAD = 1 << 15


def _team(n_threads, planes, work):
    return max(1, min(n_threads, planes, work // max(1, _MIN_WORK_PER_THREAD)))


# --- argument checks ---------------------------------------------------------

def _check_input(x, nd, name="x", allow_empty_channels=False):
    """``x`` as a float array of shape (N, C, *spatial) and whether it had a
    batch axis."""
    arr = as_float_array(x, name)
    if arr.ndim not in (nd + 1, nd + 2):
        raise ValueError(
            f"{name} must be {nd + 2}-dimensional (N, C, {_axes(nd)}) or "
            f"{nd + 1}-dimensional (C, {_axes(nd)}), got {arr.ndim} dimension(s) "
            f"with shape {arr.shape}")
    batched = arr.ndim == nd + 2
    if not batched:
        arr = arr[np.newaxis]
    _check_sizes(arr.shape, nd, name, allow_empty_channels)
    return arr, batched


def _axes(nd):
    return ", ".join(("D", "H", "W")[3 - nd:]) if nd > 1 else "L"


def _check_sizes(shape, nd, name, allow_empty_channels=False):
    fixed = shape[2:] if allow_empty_channels else shape[1:]
    if any(n == 0 for n in fixed):
        what = "spatial" if allow_empty_channels else "channel and spatial"
        raise ValueError(f"{name} must have non-zero {what} sizes (only the batch "
                         f"axis may be empty), got shape {tuple(shape)}")


def _check_input_shape(input_shape, grad, nd):
    """``input_shape`` as a batched tuple, consistent with ``grad``'s rank and
    leading (N, C) axes."""
    if isinstance(input_shape, np.ndarray):
        input_shape = input_shape.tolist()
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(f"input_shape must be a tuple of ints, got "
                        f"{type(input_shape).__name__}")
    shape = tuple(check_int(n, "input_shape", 0) for n in input_shape)
    if len(shape) != grad.ndim:
        raise ValueError(f"input_shape must have as many dimensions as grad_output, got "
                         f"input_shape {shape} and grad_output shape {grad.shape}")
    if shape[:-nd] != grad.shape[:-nd]:
        raise ValueError(f"input_shape and grad_output must agree on the leading "
                         f"(batch, channel) axes, got input_shape {shape} and "
                         f"grad_output shape {grad.shape}")
    return shape


def _pool_args(spatial, nd, kernel_size, stride, padding, dilation, ceil_mode):
    """Check pooling arguments against torch's rules; return (k, s, p, d, out)
    per axis."""
    k = ntuple(kernel_size, nd, "kernel_size", 1)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
        else ntuple(stride, nd, "stride", 1)
    p = ntuple(padding, nd, "padding", 0)
    d = ntuple(dilation, nd, "dilation", 1)
    ceil_mode = check_bool(ceil_mode, "ceil_mode")
    check_pool_padding(p, k)
    out = tuple(_output_size(n, *args, ceil_mode=ceil_mode)
                for n, *args in zip(spatial, k, s, p, d))
    if any(o < 1 for o in out):
        raise ValueError(
            f"the pooling window is larger than the padded input: input size "
            f"{tuple(spatial)} with kernel_size={k}, stride={s}, padding={p}, "
            f"dilation={d} and ceil_mode={ceil_mode} gives output size {out}; "
            "every output size must be >= 1")
    return k, s, p, d, out


def _adaptive_size(output_size, spatial):
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != len(spatial):
            raise ValueError(f"output_size must be an int or a sequence of "
                             f"{len(spatial)} ints or None, got {output_size!r}")
        return tuple(n if o is None else check_int(o, "output_size", 0)
                     for o, n in zip(output_size, spatial))
    if output_size is None:
        return tuple(spatial)
    return (check_int(output_size, "output_size", 0),) * len(spatial)


def _check_indices(indices, grad):
    arr = np.asarray(indices)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"indices must be an integer array (int64, as the forward "
                        f"pass returns), got dtype {arr.dtype}")
    if arr.shape != grad.shape:
        raise ValueError(f"indices must have the shape of grad_output, got "
                         f"{arr.shape} and {grad.shape}")
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.size \
            and arr.max() > np.iinfo(np.int64).max:
        raise ValueError("indices hold values beyond the input planes")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _finish(arr, batched):
    return arr if batched else arr[0]


# --- max pooling -------------------------------------------------------------

def _max_pool(x, nd, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
              n_threads):
    n_threads = check_n_threads(n_threads)
    arr, batched = _check_input(x, nd)
    spatial = arr.shape[2:]
    k, s, p, d, out_size = _pool_args(spatial, nd, kernel_size, stride, padding, dilation,
                                      ceil_mode)
    return_indices = check_bool(return_indices, "return_indices")
    axes = [_Axis.pooling(*args) for args in zip(spatial, out_size, k, s, p, d)]
    out = np.empty(arr.shape[:2] + out_size, dtype=arr.dtype)
    indices = np.empty(out.shape, dtype=np.int64) if return_indices else None
    _run_max(arr, out, indices, spatial, axes, n_threads)
    if return_indices:
        return _finish(out, batched), _finish(indices, batched)
    return _finish(out, batched)


# Integers up to this are exact in float32 (the argmax kernel's row codes).
_FLOAT32_EXACT = 2 ** 24


def _run_max(arr, out, indices, spatial, axes, n_threads):
    planes = arr.shape[0] * arr.shape[1]
    if not (planes and out.size):
        return
    n_threads = _team(n_threads, planes, arr.size + out.size)
    geometry, tables, scratch = _plan(spatial, axes, arr.dtype, n_threads,
                                      indices is not None)
    longest = max(scratch["rows"].shape[1], int(axes[-1].table[1].max(initial=0)))
    if indices is not None and arr.dtype == np.float32 and longest >= _FLOAT32_EXACT:
        # The kernel carries window row numbers and positions in the value
        # dtype: beyond float32's exact integers, work in float64 (the maxima
        # are exact either way).
        wide = np.empty(out.shape, dtype=np.float64)
        _run_max(arr.astype(np.float64), wide, indices, spatial, axes, n_threads)
        out[...] = wide
        return
    _pool.max_forward(arr.reshape(planes, -1), out.reshape(planes, -1),
                      None if indices is None else indices.reshape(planes, -1),
                      geometry, *tables, scratch["buf"], scratch["rows"], n_threads)


def _max_backward(grad_output, indices, input_shape, nd, n_threads):
    n_threads = check_n_threads(n_threads)
    grad = as_float_array(grad_output, "grad_output")
    if grad.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"grad_output must be {nd + 1}- or {nd + 2}-dimensional, "
                         f"got shape {grad.shape}")
    idx = _check_indices(indices, grad)
    shape = _check_input_shape(input_shape, grad, nd)
    _check_sizes((1,) * (nd + 2 - len(shape)) + shape, nd, "input_shape")
    # zeros: large ones are fresh pages the kernel clears when the threads
    # first touch them, so the scatter needs no clearing sweep of its own
    out = np.zeros(shape, dtype=grad.dtype)
    plane = math.prod(shape[-nd:])
    planes = out.size // plane
    if planes:
        m = grad.size // planes
        bad = _pool.scatter_add(grad.reshape(planes, m), idx.reshape(planes, m),
                                out.reshape(planes, plane),
                                _team(n_threads, planes, grad.size + out.size))
        if bad:
            raise ValueError(
                f"indices must be flat positions within each input plane, in "
                f"[0, {plane}) (or -1 for a window of padding only); {bad} are not")
    return out


_MAX_DOC = r"""%(nd)s-D max pooling, as :func:`torch.nn.functional.max_pool%(nd)sd`.

    Each output is the largest input in its window; with
    ``return_indices``, also where that input lies.

    Parameters
    ----------
    %(pool_x)s
    %(pool_kernel_size)s
    %(pool_stride)s
    padding : int or tuple of %(nd)s ints, default 0
        Implicit :math:`-\infty` padding on both sides, at most
        ``kernel_size // 2``.
    dilation : int or tuple of %(nd)s ints, default 1
        Spacing between the positions of a window, >= 1.
    ceil_mode : bool, default False
        Round the output size up: an extra window may hang over the end,
        provided it starts inside the input or its left padding.
    return_indices : bool, default False
        Also return where each maximum was found.
    n_threads : int, optional
        Threads to split the ``N * C`` planes over; None uses every core
        (see :func:`pyconvnet.signal.correlate`).

    Returns
    -------
    y : ndarray
        ``(N, C, *out)`` (or ``(C, *out)``), float32 for float32 input,
        float64 otherwise.
    indices : ndarray of int64
        Only with ``return_indices``: the flat position of each maximum
        within its %(plane)s, as PyTorch returns it. Ties go to the first
        maximum in row-major order; a NaN in the window wins (the last NaN
        if several), so NaN propagates.

    Raises
    ------
    ValueError
        For a kernel size, stride or dilation below 1, negative padding or
        padding above half the kernel, an input of the wrong rank or with an
        empty channel or spatial axis, or a window that does not fit the
        padded input (an output size below 1).
    TypeError
        For non-real input, non-integer sizes or non-bool flags.

    See Also
    --------
    max_pool%(nd)sd_backward : The gradient.
    avg_pool%(nd)sd : Average pooling.

    Notes
    -----
    Derived in :ref:`theory-pooling`.

    Along each axis of length :math:`n`, output :math:`o` reads the input
    positions :math:`o s - p + j d`, :math:`0 \le j < k`, that lie in
    :math:`[0, n)` (padding is never selected), and in %(nd)s-D the window is
    the product of the axes' positions:

    .. math::

        y[n, c, o] = \max_{j} \, x[n, c, o s - p + j d],
        \qquad
        n_{out} = \left\lfloor \frac{n + 2p - d(k - 1) - 1}{s}
                   \right\rfloor + 1

    (in ceil mode the floor becomes a ceiling, and a last window that would
    start at or beyond :math:`n + p` is dropped). The padding may be at most
    :math:`\lfloor k / 2 \rfloor` and :math:`n_{out}` at least 1. The
    window is scanned in row-major order with PyTorch's rule, keep ``v``
    if ``v > max or isnan(v)``, which gives the tie and NaN behaviour above.

    A window can lie wholly in the padding only with a dilation above one;
    its maximum is :math:`-\infty` and its index is -1 (PyTorch returns a
    position outside the window there). The backward pass skips index -1.
"""


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, n_threads=None):
    return _max_pool(x, 1, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices, n_threads)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, n_threads=None):
    return _max_pool(x, 2, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices, n_threads)


def max_pool3d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, n_threads=None):
    return _max_pool(x, 3, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices, n_threads)


max_pool1d.__doc__ = docformat(_MAX_DOC, nd=1, axes="L", plane="row") + """
    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0, 3.0, 2.0, 5.0, 4.0]]])
    >>> max_pool1d(x, 2)
    array([[[3., 5.]]])
    >>> max_pool1d(x, 3, stride=2, padding=1, return_indices=True)
    (array([[[3., 5., 5.]]]), array([[[1, 3, 3]]]))
"""
max_pool2d.__doc__ = docformat(_MAX_DOC, nd=2, axes="H, W", plane="(H, W) plane") + """
    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> max_pool2d(x, 2)
    array([[[[ 5.,  7.],
             [13., 15.]]]])
    >>> y, idx = max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
    >>> idx
    array([[[[ 5,  7],
             [13, 15]]]])
"""
max_pool3d.__doc__ = docformat(_MAX_DOC, nd=3, axes="D, H, W", plane="(D, H, W) volume") + """
    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(8.0).reshape(1, 1, 2, 2, 2)
    >>> max_pool3d(x, 2, return_indices=True)
    (array([[[[[7.]]]]]), array([[[[[7]]]]]))
"""


_MAX_BACKWARD_DOC = r"""Gradient of :func:`max_pool%(nd)sd` with respect to its input.

    Each upstream gradient goes to the position of its window's maximum;
    where windows overlap, a position collects the sum.

    Parameters
    ----------
    grad_output : array_like
        Gradient of the loss with respect to the pooled output.
    indices : array_like of int
        The indices :func:`max_pool%(nd)sd` returned, of ``grad_output``'s
        shape: flat positions within each input %(plane)s. -1 (a window of
        padding only) contributes nothing.
    %(pool_input_shape)s
    n_threads : int, optional
        Threads to split the ``N * C`` planes over (each plane is
        accumulated by one thread, so overlapping windows never race).

    Returns
    -------
    ndarray
        Of ``input_shape``, in ``grad_output``'s float dtype.

    Raises
    ------
    ValueError
        When ``indices`` and ``grad_output`` differ in shape, ``input_shape``
        disagrees with ``grad_output`` on the rank or the (N, C) axes, or an
        index lies outside its plane.
    TypeError
        For non-integer ``indices`` or a non-real ``grad_output``.

    See Also
    --------
    max_pool%(nd)sd

    Notes
    -----
    Derived in :ref:`theory-backprop-maxpool`.

    The maximum is piecewise the identity on the selected input, so

    .. math::

        \frac{\partial L}{\partial x[n, c, i]} =
        \sum_{o \,:\, \mathrm{indices}[n, c, o] = i}
        \frac{\partial L}{\partial y[n, c, o]},

    which is what PyTorch's autograd computes. Threads split the
    ``N * C`` planes and each plane is accumulated by a single thread, so
    the additions of overlapping windows never race.
"""


def max_pool1d_backward(grad_output, indices, input_shape, *, n_threads=None):
    return _max_backward(grad_output, indices, input_shape, 1, n_threads)


def max_pool2d_backward(grad_output, indices, input_shape, *, n_threads=None):
    return _max_backward(grad_output, indices, input_shape, 2, n_threads)


def max_pool3d_backward(grad_output, indices, input_shape, *, n_threads=None):
    return _max_backward(grad_output, indices, input_shape, 3, n_threads)


max_pool1d_backward.__doc__ = docformat(_MAX_BACKWARD_DOC, nd=1, plane="row") + """
    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0, 3.0, 2.0, 5.0]]])
    >>> y, idx = max_pool1d(x, 3, stride=1, return_indices=True)
    >>> max_pool1d_backward(np.ones_like(y), idx, x.shape)
    array([[[0., 1., 0., 1.]]])
"""
max_pool2d_backward.__doc__ = docformat(_MAX_BACKWARD_DOC, nd=2, plane="(H, W) plane") + """
    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[[1.0, 2.0], [4.0, 3.0]]]])
    >>> y, idx = max_pool2d(x, 2, return_indices=True)
    >>> max_pool2d_backward(np.full_like(y, 5.0), idx, x.shape)
    array([[[[0., 0.],
             [5., 0.]]]])
"""
max_pool3d_backward.__doc__ = docformat(_MAX_BACKWARD_DOC, nd=3, plane="(D, H, W) volume") + """
    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(8.0).reshape(1, 1, 2, 2, 2)
    >>> y, idx = max_pool3d(x, 2, return_indices=True)
    >>> max_pool3d_backward(np.ones_like(y), idx, x.shape).ravel()
    array([0., 0., 0., 0., 0., 0., 0., 1.])
"""


# --- average pooling ---------------------------------------------------------

def _mean_setup(spatial, nd, kernel_size, stride, padding, ceil_mode, count_include_pad,
                divisor_override, needs_kernel_fit):
    """Check avg pooling's arguments; return the output size, the window
    tables and each axis's factor of the divisors (float64)."""
    k, s, p, d, out_size = _pool_args(spatial, nd, kernel_size, stride, padding, 1,
                                      ceil_mode)
    count_include_pad = check_bool(count_include_pad, "count_include_pad")
    if needs_kernel_fit and any(n < ki for n, ki in zip(spatial, k)):
        raise ValueError(f"avg_pool3d needs an input at least as large as kernel_size "
                         f"along every axis (as torch requires), got input size "
                         f"{tuple(spatial)} and kernel_size {k}")
    if divisor_override is not None:
        divisor_override = check_int(divisor_override, "divisor_override")
        if divisor_override == 0:
            raise ValueError("divisor_override must not be zero")
    axes = [_Axis.pooling(n, o, ki, si, pi, 1)
            for n, o, ki, si, pi in zip(spatial, out_size, k, s, p)]
    if divisor_override is None:
        divs = [_mean_divisors(n, o, ki, si, pi, count_include_pad)
                for n, o, ki, si, pi in zip(spatial, out_size, k, s, p)]
    else:
        divs = [np.full(out_size[0], divisor_override)] + [np.ones(o) for o in out_size[1:]]
    divs = [np.ones(1)] * (3 - nd) + divs
    return out_size, axes, [np.asarray(v, dtype=np.float64) for v in divs]


def _avg_pool(x, nd, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override, n_threads):
    n_threads = check_n_threads(n_threads)
    arr, batched = _check_input(x, nd)
    spatial = arr.shape[2:]
    out_size, axes, divs = _mean_setup(spatial, nd, kernel_size, stride, padding, ceil_mode,
                                       count_include_pad, divisor_override, nd == 3)
    out = np.empty(arr.shape[:2] + out_size, dtype=arr.dtype)
    _run_mean(_pool.mean_forward, arr, out, spatial, axes, divs, n_threads)
    return _finish(out, batched)


def _run_mean(kernel, src, dst, spatial, axes, divs, n_threads):
    planes = src.shape[0] * src.shape[1]
    if planes and dst.size:
        n_threads = _team(n_threads, planes, src.size + dst.size)
        geometry, tables, scratch = _plan(spatial, axes, src.dtype, n_threads)
        # the kernels multiply by inverse divisors (computed here in float64)
        scales = [np.ascontiguousarray(1.0 / d, dtype=src.dtype) for d in divs]
        plane = scales[0][:1]
        if geometry["layout"] == _Layout.SAME_STRIDE_1:
            plane = np.ascontiguousarray(
                1.0 / (divs[1][:, None] * divs[2][None, :] * divs[0][0]), dtype=src.dtype)
        kernel(src.reshape(planes, -1), dst.reshape(planes, -1), geometry, *tables, *scales,
               plane.ravel(), scratch["buf"], scratch["rows"], n_threads)


def _avg_backward(grad_output, input_shape, nd, kernel_size, stride, padding, ceil_mode,
                  count_include_pad, divisor_override, n_threads):
    n_threads = check_n_threads(n_threads)
    grad = as_float_array(grad_output, "grad_output")
    if grad.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"grad_output must be {nd + 1}- or {nd + 2}-dimensional, "
                         f"got shape {grad.shape}")
    shape = _check_input_shape(input_shape, grad, nd)
    batched = grad.ndim == nd + 2
    full = shape if batched else (1,) + shape
    _check_sizes(full, nd, "input_shape")
    spatial = full[2:]
    out_size, axes, divs = _mean_setup(spatial, nd, kernel_size, stride, padding, ceil_mode,
                                       count_include_pad, divisor_override, nd == 3)
    if grad.shape[-nd:] != out_size:
        raise ValueError(f"grad_output has spatial shape {grad.shape[-nd:]}, but pooling "
                         f"an input of shape {shape} with these arguments gives "
                         f"{out_size}")
    out = np.empty(full, dtype=grad.dtype)
    _run_mean(_pool.mean_backward, grad.reshape(full[:2] + out_size), out, spatial, axes,
              divs, n_threads)
    return _finish(out, batched)


_AVG_DOC = r"""%(nd)s-D average pooling, as :func:`torch.nn.functional.avg_pool%(nd)sd`.

    Each output is the sum of the inputs in its window divided by the
    window's divisor (see Notes).

    Parameters
    ----------
    %(pool_x)s
    %(pool_kernel_size)s
    %(pool_stride)s
    padding : int or tuple of %(nd)s ints, default 0
        Implicit zero padding on both sides, at most ``kernel_size // 2``.
    ceil_mode : bool, default False
        Round the output size up (see :func:`max_pool%(nd)sd`).
    count_include_pad : bool, default True
        Count the padding in the divisor.
    divisor_override : int, optional
        A fixed non-zero divisor for every window.
    %(pool_n_threads)s

    Returns
    -------
    ndarray
        ``(N, C, *out)`` (or ``(C, *out)``), float32 for float32 input,
        float64 otherwise.

    Raises
    ------
    ValueError
        As :func:`max_pool%(nd)sd`, and for ``divisor_override=0``.%(extra)s
    TypeError
        For non-real input, non-integer sizes or non-bool flags.

    See Also
    --------
    avg_pool%(nd)sd_backward : The gradient.
    max_pool%(nd)sd : Max pooling.

    Notes
    -----
    Derived in :ref:`theory-pooling`.

    With the window of output :math:`o` starting at :math:`a = o s - p`
    along an axis of length :math:`n`,

    .. math::

        y[n, c, o] = \frac{1}{\mathrm{div}(o)}
                     \sum_{\max(a, 0) \le i < \min(a + k, n)} x[n, c, i],

    and the divisor is ``divisor_override`` when given, else the product
    over the axes of :math:`\min(a + k, n + p) - a` (the window clipped to
    the padded input) with ``count_include_pad``, or of
    :math:`\min(a + k, n) - \max(a, 0)` (the inputs actually summed)
    without it. The output size is that of :func:`max_pool%(nd)sd` with
    dilation 1. The kernels multiply the sums by the inverse of the divisor
    (a division would stall the vector loops); results may differ from a
    true division in the last bit or two.
"""
_AVG3_EXTRA = """
    Like PyTorch, avg_pool3d also needs an input at least as large as
    the kernel along every axis, whatever the padding."""


def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None, *, n_threads=None):
    return _avg_pool(x, 1, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, n_threads)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None, *, n_threads=None):
    return _avg_pool(x, 2, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, n_threads)


def avg_pool3d(x, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None, *, n_threads=None):
    return _avg_pool(x, 3, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, n_threads)


avg_pool1d.__doc__ = docformat(_AVG_DOC, nd=1, axes="L", extra="") + """
    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0, 3.0, 2.0, 6.0]]])
    >>> avg_pool1d(x, 2)
    array([[[2., 4.]]])
    >>> avg_pool1d(x, 3, stride=2, padding=1, count_include_pad=False)
    array([[[2.        , 3.66666667]]])
"""
avg_pool2d.__doc__ = docformat(_AVG_DOC, nd=2, axes="H, W", extra="") + """
    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> avg_pool2d(x, 2)
    array([[[[ 2.5,  4.5],
             [10.5, 12.5]]]])
"""
avg_pool3d.__doc__ = docformat(_AVG_DOC, nd=3, axes="D, H, W", extra=_AVG3_EXTRA) + """
    Examples
    --------
    >>> import numpy as np
    >>> avg_pool3d(np.arange(8.0).reshape(1, 1, 2, 2, 2), 2)
    array([[[[[3.5]]]]])
"""


_AVG_BACKWARD_DOC = r"""Gradient of :func:`avg_pool%(nd)sd` with respect to its input.

    Each upstream gradient is spread evenly over the input positions of its
    window.

    Parameters
    ----------
    %(pool_grad_output)s
    %(pool_input_shape)s
    kernel_size, stride, padding : int or tuple of %(nd)s ints
        The window of the forward pass.
    ceil_mode, count_include_pad : bool
        As in the forward pass.
    divisor_override : int, optional
        As in the forward pass.
    %(pool_n_threads)s

    Returns
    -------
    ndarray
        Of ``input_shape``, in ``grad_output``'s float dtype.

    Raises
    ------
    ValueError
        For arguments the forward pass refuses, or a ``grad_output`` whose
        shape is not the one the forward pass gives for ``input_shape``.
    TypeError
        For non-real ``grad_output`` or non-integer sizes.

    See Also
    --------
    avg_pool%(nd)sd

    Notes
    -----
    Derived in :ref:`theory-backprop-avgpool`.

    Average pooling is linear, and its adjoint sends each gradient back
    over the window it came from:

    .. math::

        \frac{\partial L}{\partial x[n, c, i]} =
        \sum_{o \,:\, i \in \mathrm{window}(o)}
        \frac{1}{\mathrm{div}(o)} \frac{\partial L}{\partial y[n, c, o]}.

    For disjoint windows of size :math:`k` that tile the input this is the
    Kronecker product :math:`g \otimes \mathbf{1}_k / |k|` of the gradient
    with a block of ones divided by the block's size (rows and columns no
    window covers get zero).
"""


def avg_pool1d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None, *,
                        n_threads=None):
    return _avg_backward(grad_output, input_shape, 1, kernel_size, stride, padding,
                         ceil_mode, count_include_pad, divisor_override, n_threads)


def avg_pool2d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None, *,
                        n_threads=None):
    return _avg_backward(grad_output, input_shape, 2, kernel_size, stride, padding,
                         ceil_mode, count_include_pad, divisor_override, n_threads)


def avg_pool3d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None, *,
                        n_threads=None):
    return _avg_backward(grad_output, input_shape, 3, kernel_size, stride, padding,
                         ceil_mode, count_include_pad, divisor_override, n_threads)


avg_pool1d_backward.__doc__ = docformat(_AVG_BACKWARD_DOC, nd=1) + """
    Examples
    --------
    >>> import numpy as np
    >>> avg_pool1d_backward(np.array([[[2.0, 4.0]]]), (1, 1, 4), 2)
    array([[[1., 1., 2., 2.]]])
"""
avg_pool2d_backward.__doc__ = docformat(_AVG_BACKWARD_DOC, nd=2) + """
    Examples
    --------
    >>> import numpy as np
    >>> g = np.array([[[[4.0, 8.0]]]])
    >>> avg_pool2d_backward(g, (1, 1, 2, 4), 2)
    array([[[[1., 1., 2., 2.],
             [1., 1., 2., 2.]]]])
"""
avg_pool3d_backward.__doc__ = docformat(_AVG_BACKWARD_DOC, nd=3) + """
    Examples
    --------
    >>> import numpy as np
    >>> avg_pool3d_backward(np.full((1, 1, 1, 1, 1), 8.0), (1, 1, 2, 2, 2), 2).ravel()
    array([1., 1., 1., 1., 1., 1., 1., 1.])
"""


# --- adaptive and global pooling ---------------------------------------------

@docfiller
def adaptive_avg_pool2d(x, output_size, *, n_threads=None):
    r"""Average over ``output_size`` bins, as :func:`torch.nn.functional.adaptive_avg_pool2d`.

    The plane is cut into :math:`H_o \times W_o` bins of nearly equal size
    and each output is the mean of its bin.

    Parameters
    ----------
    x : array_like
        ``(N, C, H, W)`` or ``(C, H, W)``.
    output_size : int or tuple of two (int or None)
        :math:`(H_o, W_o)`; None keeps that axis's input size. Sizes may
        exceed the input's (bins then repeat positions) and may be 0.
    %(pool_n_threads)s

    Returns
    -------
    ndarray
        ``(N, C, H_o, W_o)`` (or ``(C, H_o, W_o)``).

    Raises
    ------
    ValueError
        For a negative output size, the wrong rank or empty spatial axes.
    TypeError
        For non-real input or a non-integer size.

    See Also
    --------
    adaptive_avg_pool2d_backward, global_avg_pool2d, adaptive_max_pool2d

    Notes
    -----
    Derived in :ref:`theory-pooling`.

    Output :math:`(i, j)` averages rows
    :math:`[\lfloor i H / H_o \rfloor, \lceil (i + 1) H / H_o \rceil)` and
    columns :math:`[\lfloor j W / W_o \rfloor, \lceil (j + 1) W / W_o \rceil)`:

    .. math::

        y[n, c, i, j] = \frac{1}{|R_i| \, |C_j|}
                        \sum_{h \in R_i} \sum_{w \in C_j} x[n, c, h, w].

    The bins tile each axis, overlapping by one position where the output
    size does not divide the input size. When it does, this is
    :func:`avg_pool2d` with ``kernel_size = stride = H / H_o``; a single
    bin is :func:`global_avg_pool2d`.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(20.0).reshape(1, 1, 4, 5)
    >>> adaptive_avg_pool2d(x, (2, None))
    array([[[[ 2.5,  3.5,  4.5,  5.5,  6.5],
             [12.5, 13.5, 14.5, 15.5, 16.5]]]])
    >>> adaptive_avg_pool2d(x, 1)
    array([[[[9.5]]]])
    """
    n_threads = check_n_threads(n_threads)
    arr, batched = _check_input(x, 2, allow_empty_channels=True)
    spatial = arr.shape[2:]
    out_size = _adaptive_size(output_size, spatial)
    out = np.empty(arr.shape[:2] + out_size, dtype=arr.dtype)
    planes = arr.shape[0] * arr.shape[1]
    if out_size == (1, 1):
        # one bin: the mean of each contiguous plane
        if planes:
            _pool.plane_mean(arr.reshape(planes, -1), out.reshape(planes),
                             _team(n_threads, planes, arr.size))
        return _finish(out, batched)
    axes, divs = _adaptive_axes(spatial, out_size)
    _run_mean(_pool.mean_forward, arr, out, spatial, axes, divs, n_threads)
    return _finish(out, batched)


def _adaptive_axes(spatial, out_size):
    axes = [_Axis.adaptive(n, o) for n, o in zip(spatial, out_size)]
    divs = [np.ones(1)] + [a.table[1].astype(np.float64) for a in axes]
    return axes, divs


@docfiller
def adaptive_avg_pool2d_backward(grad_output, input_shape, *, n_threads=None):
    r"""Gradient of :func:`adaptive_avg_pool2d` with respect to its input.

    Each upstream gradient is spread evenly over its bin (a position in two
    overlapping bins collects both shares).

    Parameters
    ----------
    grad_output : array_like
        ``(N, C, H_o, W_o)`` or ``(C, H_o, W_o)``; its last two sizes are the
        forward pass's ``output_size``.
    %(pool_input_shape)s
    %(pool_n_threads)s

    Returns
    -------
    ndarray
        Of ``input_shape``, in ``grad_output``'s float dtype.

    Raises
    ------
    ValueError
        When ``input_shape`` disagrees with ``grad_output`` on the rank or the
        leading axes, or has an empty spatial axis.
    TypeError
        For non-real ``grad_output``.

    See Also
    --------
    adaptive_avg_pool2d

    Notes
    -----
    Derived in :ref:`theory-backprop-avgpool`.

    .. math::

        \frac{\partial L}{\partial x[n, c, h, w]} =
        \sum_{i \,:\, h \in R_i} \sum_{j \,:\, w \in C_j}
        \frac{1}{|R_i| \, |C_j|} \frac{\partial L}{\partial y[n, c, i, j]}

    with the bins :math:`R_i, C_j` of :func:`adaptive_avg_pool2d`.

    Examples
    --------
    >>> import numpy as np
    >>> adaptive_avg_pool2d_backward(np.array([[[[4.0]]]]), (1, 1, 2, 2))
    array([[[[1., 1.],
             [1., 1.]]]])
    """
    n_threads = check_n_threads(n_threads)
    grad = as_float_array(grad_output, "grad_output")
    if grad.ndim not in (3, 4):
        raise ValueError(f"grad_output must be 3- or 4-dimensional, got shape {grad.shape}")
    shape = _check_input_shape(input_shape, grad, 2)
    batched = grad.ndim == 4
    full = shape if batched else (1,) + shape
    _check_sizes(full, 2, "input_shape", allow_empty_channels=True)
    spatial = full[2:]
    out = np.empty(full, dtype=grad.dtype)
    planes = full[0] * full[1]
    if grad.shape[-2:] == (1, 1):
        if planes:
            _pool.plane_fill(grad.reshape(planes), out.reshape(planes, -1),
                             _team(n_threads, planes, out.size))
        return _finish(out, batched)
    axes, divs = _adaptive_axes(spatial, grad.shape[-2:])
    _run_mean(_pool.mean_backward, grad.reshape(full[:2] + grad.shape[-2:]), out, spatial,
              axes, divs, n_threads)
    return _finish(out, batched)


@docfiller
def adaptive_max_pool2d(x, output_size, return_indices=False, *, n_threads=None):
    r"""Maximum over ``output_size`` bins, as :func:`torch.nn.functional.adaptive_max_pool2d`.

    The bins are those of :func:`adaptive_avg_pool2d`; indices, ties and NaN
    follow :func:`max_pool2d`.

    Parameters
    ----------
    x : array_like
        ``(N, C, H, W)`` or ``(C, H, W)``.
    output_size : int or tuple of two (int or None)
        :math:`(H_o, W_o)`; None keeps that axis's input size.
    return_indices : bool, default False
        Also return the flat position of each maximum in its (H, W) plane.
    %(pool_n_threads)s

    Returns
    -------
    y : ndarray
        ``(N, C, H_o, W_o)`` (or ``(C, H_o, W_o)``).
    indices : ndarray of int64
        Only with ``return_indices``.

    Raises
    ------
    ValueError, TypeError
        As :func:`adaptive_avg_pool2d`.

    See Also
    --------
    adaptive_max_pool2d_backward, max_pool2d

    Notes
    -----
    Derived in :ref:`theory-pooling`.

    .. math::

        y[n, c, i, j] = \max_{h \in R_i, \, w \in C_j} x[n, c, h, w]

    with the bins :math:`R_i, C_j` of :func:`adaptive_avg_pool2d`, each
    scanned in row-major order with the rule of :func:`max_pool2d`.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[[1.0, 5.0, 2.0], [3.0, 0.0, 4.0]]]])
    >>> adaptive_max_pool2d(x, (1, 2), return_indices=True)
    (array([[[[5., 5.]]]]), array([[[[1, 1]]]]))
    """
    n_threads = check_n_threads(n_threads)
    arr, batched = _check_input(x, 2, allow_empty_channels=True)
    spatial = arr.shape[2:]
    out_size = _adaptive_size(output_size, spatial)
    return_indices = check_bool(return_indices, "return_indices")
    axes = [_Axis.adaptive(n, o) for n, o in zip(spatial, out_size)]
    out = np.empty(arr.shape[:2] + out_size, dtype=arr.dtype)
    indices = np.empty(out.shape, dtype=np.int64) if return_indices else None
    _run_max(arr, out, indices, spatial, axes, n_threads)
    if return_indices:
        return _finish(out, batched), _finish(indices, batched)
    return _finish(out, batched)


@docfiller
def adaptive_max_pool2d_backward(grad_output, indices, input_shape, *, n_threads=None):
    r"""Gradient of :func:`adaptive_max_pool2d` with respect to its input.

    Each upstream gradient goes to its bin's maximum; positions that are the
    maximum of several (overlapping) bins collect the sum.

    Parameters
    ----------
    %(pool_grad_output)s
    indices : array_like of int
        The indices :func:`adaptive_max_pool2d` returned.
    %(pool_input_shape)s
    %(pool_n_threads)s

    Returns
    -------
    ndarray
        Of ``input_shape``, in ``grad_output``'s float dtype.

    Raises
    ------
    ValueError, TypeError
        As :func:`max_pool2d_backward`.

    See Also
    --------
    adaptive_max_pool2d

    Notes
    -----
    Derived in :ref:`theory-backprop-maxpool`.

    .. math::

        \frac{\partial L}{\partial x[n, c, h, w]} =
        \sum_{(i, j) \,:\, \mathrm{indices}[n, c, i, j] = h W + w}
        \frac{\partial L}{\partial y[n, c, i, j]}

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[[1.0, 5.0, 2.0], [3.0, 0.0, 4.0]]]])
    >>> y, idx = adaptive_max_pool2d(x, (1, 2), return_indices=True)
    >>> adaptive_max_pool2d_backward(np.ones_like(y), idx, x.shape)
    array([[[[0., 2., 0.],
             [0., 0., 0.]]]])
    """
    return _max_backward(grad_output, indices, input_shape, 2, n_threads)


@docfiller
def global_avg_pool2d(x, keepdims=True, *, n_threads=None):
    r"""Mean of every feature map over its height and width.

    Global average pooling replaces the large fully connected layers at the
    end of many modern networks: GoogLeNet (Inception) and ResNet end with
    it, feeding the per-channel means to one linear classifier.

    Parameters
    ----------
    x : array_like
        ``(N, C, H, W)`` or ``(C, H, W)``.
    keepdims : bool, default True
        Keep the spatial axes as size 1: ``(N, C, 1, 1)`` rather than
        ``(N, C)``.
    %(pool_n_threads)s

    Returns
    -------
    ndarray
        ``(N, C, 1, 1)`` (or ``(C, 1, 1)``), or ``(N, C)`` (or ``(C,)``)
        without ``keepdims``.

    Raises
    ------
    ValueError, TypeError
        As :func:`adaptive_avg_pool2d`.

    See Also
    --------
    adaptive_avg_pool2d : The same with ``output_size=1``.
    adaptive_avg_pool2d_backward : Its gradient, with ``grad_output`` of
        shape ``(N, C, 1, 1)``: every position gets :math:`g / (HW)`.

    Notes
    -----
    Derived in :ref:`theory-pooling`.

    .. math::

        y[n, c] = \frac{1}{HW} \sum_{i, j} x[n, c, i, j]

    Each plane is contiguous, so its sum is one sweep over memory (in
    sixteen interleaved partial sums, which vectorise).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(8.0).reshape(1, 2, 2, 2)
    >>> global_avg_pool2d(x, keepdims=False)
    array([[1.5, 5.5]])
    """
    keepdims = check_bool(keepdims, "keepdims")
    out = adaptive_avg_pool2d(x, 1, n_threads=n_threads)
    return out if keepdims else out[..., 0, 0]


# --- LeNet sub-sampling ------------------------------------------------------

def _as_real(value, name):
    """``value`` as an ndarray of a real dtype (not yet converted)."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be array_like of real numbers: {exc}") from None
    try:
        result_dtype(arr.dtype)
    except TypeError as exc:
        raise TypeError(f"{name}: {exc}") from None
    return arr


def _subsample_args(x, factor, per_channel, n_threads, extra=()):
    """Validate sub-sampling inputs: x and the per-channel vectors (and the
    ``extra`` arrays) in their common float dtype, the factor, the output's
    spatial size and whether x had a batch axis."""
    n_threads = check_n_threads(n_threads)
    raw_x = _as_real(x, "x")
    raw = {name: _as_real(value, name) for name, value in per_channel.items()}
    dtype = result_dtype(raw_x.dtype, *(a.dtype for a in raw.values()),
                         *(np.asarray(a).dtype for a in extra))
    arr, batched = _check_input(raw_x.astype(dtype, copy=False), 2)
    channels = arr.shape[1]
    vectors = {}
    for name, value in raw.items():
        if value.shape != (channels,):
            raise ValueError(f"{name} must have shape (C,) = ({channels},), one value "
                             f"per feature map, got shape {value.shape}")
        vectors[name] = np.ascontiguousarray(value, dtype=dtype)
    fh, fw = ntuple(factor, 2, "factor", 1)
    H, W = arr.shape[2:]
    if H < fh or W < fw:
        raise ValueError(f"factor {(fh, fw)} is larger than the maps ({H}, {W}): "
                         "every output size H // fh, W // fw must be >= 1")
    return arr, batched, vectors, (fh, fw), (H // fh, W // fw), n_threads


def _subsample_scratch(n_threads, W, fh, dtype, width_factor):
    return (np.empty((n_threads, width_factor * W), dtype=dtype),
            np.empty((n_threads, fh), dtype=np.intp))


def subsample2d(x, factor, beta, bias, *, n_threads=None):
    r"""LeNet sub-sampling layer: a trainable scaled sum over disjoint blocks.

    Each feature map has one multiplicative coefficient :math:`\beta_c` and
    one additive bias :math:`b_c`, as in the sub-sampling layers of LeNet-5
    (LeCun et al., 1998; the derivation of its gradients follows Bouvrie,
    2006). The squashing function is applied outside, to the result.

    Parameters
    ----------
    x : array_like
        ``(N, C, H, W)`` or ``(C, H, W)``.
    factor : int or (int, int)
        Block size :math:`(f_h, f_w)`, >= 1.
    beta, bias : array_like, shape (C,)
        The coefficient and the bias of each feature map.
    n_threads : int, optional
        Threads to split the ``N * C`` maps over.

    Returns
    -------
    ndarray
        ``(N, C, H // f_h, W // f_w)`` (or without N); float32 when every
        input is float32, float64 otherwise.

    Raises
    ------
    ValueError
        For a factor below 1 or larger than the maps, ``beta`` or ``bias``
        not of shape (C,), or an input of the wrong rank or with empty axes.
    TypeError
        For non-real inputs or a non-integer factor.

    See Also
    --------
    subsample2d_backward : Its gradients.
    avg_pool2d : The same blocks averaged, without trainable parameters.

    Notes
    -----
    Derived in :ref:`theory-subsampling`.

    .. math::

        y[n, c, i, j] = \beta_c \sum_{a < f_h} \sum_{b < f_w}
                        x[n, c, i f_h + a, j f_w + b] + b_c

    When :math:`H` or :math:`W` is not a multiple of the factor, the rows
    and columns left over at the bottom and right belong to no block: they
    are ignored (as ``avg_pool2d`` does with ``ceil_mode=False``) and their
    gradient is zero.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> subsample2d(x, 2, beta=[0.5], bias=[1.0])
    array([[[[ 6., 10.],
             [22., 26.]]]])
    """
    arr, batched, vec, (fh, fw), (oh, ow), n_threads = _subsample_args(
        x, factor, {"beta": beta, "bias": bias}, n_threads)
    N, C, H, W = arr.shape
    out = np.empty((N, C, oh, ow), dtype=arr.dtype)
    if N:
        n_threads = _team(n_threads, N * C, arr.size + out.size)
        buf, rows = _subsample_scratch(n_threads, W, fh, arr.dtype, 1)
        _pool.subsample_forward(arr.reshape(N * C, -1), out.reshape(N * C, -1),
                                vec["beta"], vec["bias"], W, fh, fw, buf, rows, n_threads)
    return _finish(out, batched)


def subsample2d_backward(grad_output, x, factor, beta, *, n_threads=None):
    r"""Compute the gradients of :func:`subsample2d` for ``x``, ``beta`` and ``bias``.

    Every element of a block receives its output's gradient times the map's
    coefficient; the coefficient's gradient correlates the upstream
    gradient with the block sums, and the bias's gradient sums it.

    Parameters
    ----------
    grad_output : array_like
        ``(N, C, H // f_h, W // f_w)`` (or without N).
    x : array_like
        The forward pass's input.
    factor : int or (int, int)
        The forward pass's block size.
    beta : array_like, shape (C,)
        The forward pass's coefficients.
    n_threads : int, optional
        Threads to split the ``N * C`` maps over.

    Returns
    -------
    grad_x : ndarray
        Of ``x``'s shape; zero on the rows and columns no block covers.
    grad_beta, grad_bias : ndarray, shape (C,)
        Summed over the batch in float64, returned in the result dtype.

    Raises
    ------
    ValueError
        For a ``grad_output`` whose shape does not match ``x`` and
        ``factor``, and for the arguments :func:`subsample2d` refuses.
    TypeError
        For non-real inputs.

    See Also
    --------
    subsample2d

    Notes
    -----
    Derived in :ref:`theory-backprop-subsampling`.

    With :math:`g = \partial L / \partial y` and :math:`S` the block sums of
    the forward pass,

    .. math::

        \frac{\partial L}{\partial x[n, c]} = \beta_c \,
            (g[n, c] \otimes \mathbf{1}_{f_h \times f_w}), \qquad
        \frac{\partial L}{\partial \beta_c} = \sum_{n, i, j} g[n, c, i, j]\,
            S[n, c, i, j], \qquad
        \frac{\partial L}{\partial b_c} = \sum_{n, i, j} g[n, c, i, j],

    where :math:`\otimes` is the Kronecker product. The block sums are
    recomputed from ``x`` in the same sweep that writes ``grad_x``, and the
    per-map sums are accumulated in float64, one plane per thread, then
    added over the batch.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> gx, gbeta, gbias = subsample2d_backward(np.ones((1, 1, 2, 2)), x, 2, [0.5])
    >>> gx[0, 0]
    array([[0.5, 0.5, 0.5, 0.5],
           [0.5, 0.5, 0.5, 0.5],
           [0.5, 0.5, 0.5, 0.5],
           [0.5, 0.5, 0.5, 0.5]])
    >>> gbeta, gbias
    (array([120.]), array([4.]))
    """
    grad = _as_real(grad_output, "grad_output")
    arr, batched, vec, (fh, fw), (oh, ow), n_threads = _subsample_args(
        x, factor, {"beta": beta}, n_threads, extra=(grad,))
    dtype = arr.dtype
    N, C, H, W = arr.shape
    expected = (N, C, oh, ow) if batched else (C, oh, ow)
    if grad.shape != expected:
        raise ValueError(f"grad_output must have shape {expected} for x of shape "
                         f"{np.shape(x)} and factor {(fh, fw)}, got {grad.shape}")
    g = np.ascontiguousarray(grad, dtype=dtype).reshape(N * C, oh * ow)
    grad_x = np.empty(arr.shape, dtype=dtype)
    grad_beta = np.zeros(N * C)
    grad_bias = np.zeros(N * C)
    if N:
        n_threads = _team(n_threads, N * C, 2 * arr.size + g.size)
        buf, rows = _subsample_scratch(n_threads, W, fh, dtype, 3)
        _pool.subsample_backward(g, arr.reshape(N * C, -1), grad_x.reshape(N * C, -1),
                                 vec["beta"], grad_beta, grad_bias, W, fh, fw, buf, rows,
                                 n_threads)
    grad_beta = grad_beta.reshape(N, C).sum(axis=0).astype(dtype)
    grad_bias = grad_bias.reshape(N, C).sum(axis=0).astype(dtype)
    return _finish(grad_x, batched), grad_beta, grad_bias
