r"""Convolution layers (NCHW, as in PyTorch): forward pass and gradients.

A convolution layer with ``G`` groups maps an input ``x`` of shape
``(N, C, *spatial)`` and a weight ``w`` of shape ``(K, C/G, *kernel)`` to

.. math::

    y[n, k, o] = b[k] + \sum_{c=0}^{C/G-1} \sum_{f} w[k, c, f]\,
                 x[n, g(k) C/G + c,\; o s + f d - p],
    \qquad g(k) = \lfloor k / (K/G) \rfloor,

a cross-correlation (no kernel flip), with ``o``, ``f``, the stride ``s``,
dilation ``d`` and padding ``p`` taken per spatial axis and ``x`` zero outside
its bounds. Along an axis of length ``n`` with total padding ``P`` (``2p``
for symmetric padding) the output has

.. math::

    \left\lfloor \frac{n + P - d (k - 1) - 1}{s} \right\rfloor + 1

positions (``_geometry.window_count``, the one place the formula lives).

The gradients of a loss with respect to the inputs, given the upstream
gradient ``dy``, follow from the sum term by term:

.. math::

    \frac{\partial L}{\partial x[n, c, i]} &= \sum_{k \in G(c)} \sum_{o, f:\,
        o s + f d - p = i} dy[n, k, o]\, w[k, c, f], \\
    \frac{\partial L}{\partial w[k, c, f]} &= \sum_{n, o} dy[n, k, o]\,
        x[n, g(k) C/G + c, o s + f d - p], \\
    \frac{\partial L}{\partial b[k]} &= \sum_{n, o} dy[n, k, o].

With unit stride the input gradient is itself a convolution: the 'full'
correlation of ``dy`` with the kernel rotated by 180 degrees and its channel
axes swapped within each group (padding ``d (k - 1) - p`` before each axis),
and that is how it is mostly computed. When the output is much smaller than
the input (a 'valid' layer whose kernel covers most of its input), that
correlation would mostly multiply padding; the products ``W^T dy`` are then
added back onto the input positions they came from instead (col2im), as for
strided layers (:func:`_input_grad_algorithm`). The weight gradient is the
'valid' correlation of ``x`` with ``dy``.

Kernels (:mod:`pyconvnet._ext._conv`), chosen per layer and thread count by
:func:`_algorithm` with the least time predicted by a cost model fitted on
every layer of the built-in networks (:func:`_predicted_time`):

* Winograd F(4x4, 3x3) or F(2x2, 3x3) for 3x3 kernels with unit stride
  (any dilation): each block of m x m outputs costs (m + 2)^2 multiplies
  per channel pair instead of 9 m^2, as (m + 2)^2 matrix products over all
  blocks. The weight gradient uses the same transforms: the forward pass is
  bilinear, y = AT[(G w) * (BT d)], so dL/dw = G^T[(AT^T dy) * (BT d)].
* im2col + GEMM: tiles of input windows unrolled into a column matrix and
  multiplied by the weights with BLAS (``sgemm``/``dgemm``); a 1x1 kernel
  with unit stride and no padding needs no unrolling.
* A layer whose kernel covers its whole (unpadded, undilated) input, with
  one output position, is a fully connected layer: each pass is one matrix
  product over the batch (BLAS on one thread), or, for a small forward
  pass (a squeeze-and-excitation gate), dot products on the calling
  thread.
* Register-blocked direct loops: strips of six output positions for a
  block of 64 bytes of output channels, their sums held in registers over
  every input channel and tap, each step one tap's weights for the block
  times six input values (compiled for AVX2 and FMA too, picked at run
  time). No column matrix and no BLAS call: small layers (small maps, few
  channels, batch 1) and kernels other than 3x3, any stride and dilation.
* Pointwise loops for a 1x1 kernel with unit stride and no padding: the
  input planes are the rows of the product's right-hand matrix, read in
  strips of positions (the images' planes side by side, so that 7x7 maps
  fill whole strips) copied a chunk at a time into an aligned buffer; a
  block of output channels times a strip, its sums in registers (8 x 48
  float32 with AVX-512, 4 x 24 with AVX2), each input channel one row of
  vector loads times broadcast weights. No BLAS call, no repacked weights.
* An implicit GEMM with the same register blocks for any other layer: the
  column matrix of im2col, but only a chunk of strips of it at a time (a
  block of rows per pass, copied by runs along the output rows and clipped
  at the padding), so that it stays in the second-level cache and never
  exists whole.
* Depthwise kernels (one input channel per output channel): a block of 64
  bytes of channels of one image copied into a zero-padded buffer with the
  channels innermost, where every tap of every output is one vector
  multiply-add, whatever the map size, stride or dilation; forward in bands
  of rows, the input gradient scattered back for any stride, the weight
  gradient summed over chunks of images.
* Direct loops over zero-padded copies of the input, split by stride
  phase, where every kernel tap is one long multiply-add: few-channel
  layers.
* Plain direct loops, where nothing else applies.

Work is split over OpenMP threads by image, group and tile, and by blocks of
output channels (forward) or input channels (weight gradient) where images
alone would leave threads idle; BLAS runs on one thread inside each task, so
that the two never compete for the cores. An inf or NaN in the input keeps
to the outputs whose windows read it (:func:`_window_local`).
Winograd's float32 results differ from the direct sum by rounding of order
1e-6 (F(2, 3)) to 1e-5 (F(4, 3)) relative to the largest output.
"""
import collections
import contextlib
import functools
import math
import os
import threading

import numpy as np
import threadpoolctl
from scipy.linalg import blas as _blas

from . import _workspace
from ._docstrings import docformat
from ._ext import _conv
from ._geometry import kernel_extent, same_pair, window_count
from ._validation import (
    as_float_array,
    check_bool,
    check_int,
    check_n_threads,
    check_padding,
    ntuple,
    result_dtype,
)

__all__ = [
    "conv1d",
    "conv2d",
    "conv3d",
    "conv1d_backward",
    "conv2d_backward",
    "conv3d_backward",
]

_INT_MAX = 2 ** 31 - 1

# Column-matrix budget per thread (bytes): a tile of the unrolled input this
# large stays in the L2 cache while BLAS multiplies it; tiles never get
# narrower than _MIN_TILE output positions, so that each product is large
# enough for BLAS to run near full speed.
_TILE_BYTES = 1 << 20
_MIN_TILE = 256
_TILE_LIMIT = 64 << 20
# Largest per-thread copy of a group's padded input for the padded loops.
_PADDED_BYTES = 32 << 20
# Winograd tasks: budget for their transformed input and output (bytes per
# thread), and the most output blocks per task.
_WINOGRAD_BYTES = 16 << 20
_WINOGRAD_TILES = 2048
# ... and the part of it a task keeps to where its weights' packing allows
# (measured at batch 8: 64x56x56 -> 64 in 4.5 ms with 4 MiB tasks, 6.0 ms
# with 16 MiB; 128x28x28 -> 128, which needs larger tasks to amortise the
# packing, 4.0 ms with 16 MiB, 4.4 ms with 4 MiB).
_WINOGRAD_CACHE = 4 << 20
# Narrowest block of output channels (forward) or rows of the weight
# gradient (32 taps' worth of input channels) handed to one task's GEMM.
_MIN_BLOCK = 16
# The depthwise kernels' forward pass reads its padded planes in bands of
# rows of at most this many bytes (a block of channels each), so that a
# band stays in the per-core cache while its outputs are computed.
_DEPTHWISE_BAND_BYTES = 256 << 10
# The register-blocked kernel's tasks take at most this many output
# positions (their partial sums, 64 bytes a position, stay in cache), and
# each pass over them at most this many bytes of weights (the first-level
# cache's share).
_BLOCKED_BAND = 4096
# A band's input, where several blocks of output channels read it in turn,
# is at most this many bytes (the per-core cache's share).
_BLOCKED_INPUT_BYTES = 512 << 10
# Its per-tap offsets live on the stack: kernels of at most this many taps.
_BLOCKED_TAPS = 4096
_BLOCKED_WEIGHT_BYTES = 16 << 10
# Fully connected layers of at most this many multiply-adds (a
# squeeze-and-excitation gate's, up to batch 32) are vector dot products,
# which take less time than a BLAS call's fixed cost: on the calling thread
# up to _DENSE_TASK_MACS, else split over threads by block of outputs.
_DENSE_LOOP_MACS = 1 << 23
_DENSE_TASK_MACS = 1 << 18
# Rows of the inner dimension OpenBLAS's sgemm takes per panel (about).
_BLAS_PANEL = 384
# Bytes of input rows the pointwise kernel copies at a time (per thread),
# for every block of output channels to read from the second-level cache.
_POINTWISE_CHUNK_BYTES = 256 << 10
# The implicit GEMM's passes take at most this many bytes of a block's
# weights (the first-level cache's share) and build at most this many bytes
# of columns at a time (the second-level cache's share).
_IMPLICIT_WEIGHT_BYTES = 16 << 10
_IMPLICIT_CHUNK_BYTES = 512 << 10


# --- holding BLAS to one thread ---------------------------------------------
#
# threadpoolctl finds every BLAS loaded in the process (OpenBLAS, BLIS,
# FlexiBLAS, MKL; scipy's among them) and reads and sets its thread count.
# Finding them scans the loaded libraries (about 10 ms), so it is done once,
# at the first convolution, and the controllers are kept. Holding BLAS then
# reads each library's thread count when the first of the running
# convolutions starts, sets the ones not already at one thread, and sets
# them back when the last one ends: 5 microseconds per call with two
# OpenBLAS libraries loaded (numpy's and scipy's), 3 when BLAS already runs
# on one thread, measured, against 11 for a
# ``threadpoolctl.ThreadpoolController.limit`` block per call (which also
# cannot tell when another Python thread still runs a convolution).

_blas_lock = threading.Lock()
_blas_libraries = None      # (controller, setter) of each BLAS to hold
_blas_users = 0             # convolutions running, from any Python thread
_blas_saved = []            # (setter, thread count) to restore


def _process_wide(lib):
    # MKL's thread count, and that of OpenBLAS built on OpenMP, belongs to the
    # calling thread: it would not reach the kernels' OpenMP threads, inside
    # which both libraries already run on one thread (as threadpoolctl's
    # 'sequential_blas_under_openmp' limit assumes).
    if lib.internal_api == "mkl":
        return False
    return not (lib.internal_api == "openblas"
                and getattr(lib, "threading_layer", None) == "openmp")


def _blas_controllers():
    """The BLAS libraries whose process-wide thread count the convolutions
    hold at one, each with the function that sets it (found on the first
    call).

    threadpoolctl (3.8) lets only one Python thread change OpenBLAS's
    process-wide setting and drops the others' changes; the count of running
    convolutions already serialises the changes, and the last convolution
    to finish may run in another thread than the first, so the setting goes
    to the library directly where threadpoolctl has that function."""
    global _blas_libraries
    if _blas_libraries is None:
        found = threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers
        _blas_libraries = [(lib, getattr(lib, "_real_set_num_threads", lib.set_num_threads))
                           for lib in found if _process_wide(lib)]
    return _blas_libraries


@contextlib.contextmanager
def _single_threaded_blas():
    """Hold BLAS to one thread while any convolution kernel runs.

    The kernels call BLAS from inside their own OpenMP threads; a BLAS that
    also started threads of its own would oversubscribe the cores. A count
    of the kernels running (from any Python thread) restores the previous
    setting when the last one finishes.
    """
    global _blas_users, _blas_saved
    with _blas_lock:
        if _blas_users == 0:
            _blas_saved = [(set_, n) for lib, set_ in _blas_controllers()
                           if (n := lib.num_threads) not in (1, None)]
            for set_, _ in _blas_saved:
                set_(1)
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                for set_, n in _blas_saved:
                    set_(n)
                _blas_saved = []


def _reset_blas_after_fork():
    # A child forked while a convolution ran in another thread of the parent
    # gets BLAS's setting back and a lock nobody holds.
    global _blas_lock, _blas_users, _blas_saved
    for set_, n in _blas_saved if _blas_users else ():
        set_(n)
    _blas_lock = threading.Lock()
    _blas_users = 0
    _blas_saved = []


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_blas_after_fork)


# --- validation ---------------------------------------------------------------

class _Geometry:
    """One convolution as the kernels see it: 5-D shapes (1-D and 2-D layers
    get leading spatial axes of length one) and per-axis stride, padding
    before the axis (negative: cropped), and dilation."""

    def __init__(self, x5, w5, out, stride, pad, dilation, groups, dtype):
        self.x5 = tuple(x5)
        self.w5 = tuple(w5)
        self.y5 = (x5[0], w5[0]) + tuple(out)
        self.stride = tuple(stride)
        self.pad = tuple(pad)
        self.dilation = tuple(dilation)
        self.groups = groups
        self.dtype = np.dtype(dtype)

    def key(self):
        return (self.x5, self.w5, self.stride, self.pad, self.dilation, self.groups,
                self.dtype.char)

    def __eq__(self, other):
        return isinstance(other, _Geometry) and self.key() == other.key()

    def __hash__(self):
        return hash(self.key())

    N = property(lambda self: self.x5[0])
    C = property(lambda self: self.x5[1])
    K = property(lambda self: self.w5[0])
    Cg = property(lambda self: self.w5[1])
    Kg = property(lambda self: self.w5[0] // self.groups)
    spatial = property(lambda self: self.x5[2:])
    kernel = property(lambda self: self.w5[2:])
    out = property(lambda self: self.y5[2:])
    rows = property(lambda self: self.w5[1] * math.prod(self.w5[2:]))

    def transposed(self):
        """The unit-stride input gradient as a forward convolution of ``dy``
        (see :func:`_transposed_weight`): ``dy`` is its input, ``dx`` its
        output, and the padding before each axis is ``d (k - 1) - p``."""
        pad = tuple(d * (k - 1) - p for k, d, p in zip(self.kernel, self.dilation, self.pad))
        return _Geometry(self.y5, (self.C, self.Kg) + self.kernel, self.spatial,
                         self.stride, pad, self.dilation, self.groups, self.dtype)


def _as_array(a, name):
    if isinstance(a, np.ndarray):
        return a
    try:
        return np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be array_like of real numbers: {exc}") from None


def _common_dtype(arrays):
    """The dtype the kernels compute in, naming any argument refused, and
    the arguments as ndarrays (None stays None)."""
    raws = [None if a is None else _as_array(a, name) for a, name in arrays]
    for raw, (_, name) in zip(raws, arrays):
        if raw is not None:
            try:
                result_dtype(raw.dtype)
            except TypeError as exc:
                raise TypeError(f"{name}: {exc}") from None
    return result_dtype(*(raw.dtype for raw in raws if raw is not None)), raws


def _kernel_names(nd):
    return ("kW",) if nd == 1 else ("kH", "kW") if nd == 2 else ("kD", "kH", "kW")


def _validate(nd, x, weight, bias, stride, padding, dilation, groups, dtype=None):
    """Check every argument of a ``conv{nd}d`` call (PyTorch's rules).

    Returns the arrays as C-contiguous arrays of one float dtype (``x``
    batched; ``dtype`` when given, else the one the arrays call for), the
    bias or None, the :class:`_Geometry`, the output shape (batched) and
    whether ``x`` was unbatched.
    """
    natural, (x, weight, bias) = _common_dtype([(x, "x"), (weight, "weight"),
                                                (bias, "bias")])
    dtype = natural if dtype is None else np.dtype(dtype)
    x = as_float_array(x, "x", dtype)
    weight = as_float_array(weight, "weight", dtype)
    if bias is not None:
        bias = as_float_array(bias, "bias", dtype)
    args = (nd, x.shape, weight.shape, None if bias is None else bias.shape,
            stride, padding, dilation, groups, dtype)
    try:
        # Calls with the same shapes and arguments (a layer called again)
        # reuse the checked geometry. The key holds the arguments' types
        # beside their values, so that True never passes for 1 nor 1.0 for 1.
        key = args + (_types(stride), _types(padding), _types(dilation), type(groups))
        geom, out = _cached_layer_geometry(key, args)
    except TypeError as exc:
        if "unhashable" not in str(exc):
            raise
        # lists and other unhashable arguments: check afresh
        geom, out = _layer_geometry(*args)
    if x.ndim == nd + 1:
        return x[np.newaxis], weight, bias, geom, out, True
    return x, weight, bias, geom, out, False


def _types(value):
    """The type of ``value``, or of each item of a tuple."""
    return tuple(map(type, value)) if isinstance(value, tuple) else type(value)


@functools.lru_cache(maxsize=1024)
def _cached_layer_geometry(key, args):
    return _layer_geometry(*args)


def _layer_geometry(nd, x_shape, w_shape, b_shape, stride, padding, dilation, groups,
                    dtype):
    """The argument checks of :func:`_validate` that depend only on shapes
    and scalars, and the :class:`_Geometry` and batched output shape."""
    if len(w_shape) != nd + 2:
        raise ValueError(
            f"weight must be {nd + 2}-dimensional (out_channels, in_channels/groups, "
            f"{', '.join(_kernel_names(nd))}), got shape {w_shape}")
    if len(x_shape) not in (nd + 1, nd + 2):
        raise ValueError(
            f"x must be {nd + 2}-dimensional (N, C, *spatial) or {nd + 1}-"
            f"dimensional (C, *spatial) for a {nd}-D convolution, got shape {x_shape}")
    if len(x_shape) == nd + 1:
        x_shape = (1,) + x_shape
    groups = check_int(groups, "groups", 1)
    K, Cg = w_shape[:2]
    if K == 0 or Cg == 0 or 0 in w_shape[2:]:
        raise ValueError(f"weight must not have a zero-length axis, got shape {w_shape}")
    if K % groups:
        raise ValueError(f"out_channels (weight.shape[0] = {K}) must be divisible "
                         f"by groups ({groups})")
    if x_shape[1] != Cg * groups:
        raise ValueError(
            f"x has {x_shape[1]} channels but weight expects in_channels = "
            f"weight.shape[1] * groups = {Cg} * {groups} = {Cg * groups}")
    if 0 in x_shape[2:]:
        raise ValueError(f"x must have non-zero spatial sizes, got shape {x_shape}")
    stride = ntuple(stride, nd, "stride", 1)
    dilation = ntuple(dilation, nd, "dilation", 1)
    kernel = w_shape[2:]
    padding = check_padding(padding, "padding", nd)
    if padding == "same":
        if any(s != 1 for s in stride):
            raise ValueError(f"padding='same' requires stride 1 on every axis, "
                             f"got stride={stride}")
        pairs = tuple(same_pair(k, d) for k, d in zip(kernel, dilation))
    elif padding == "valid":
        pairs = ((0, 0),) * nd
    else:
        pairs = tuple((p, p) for p in padding)
    before = tuple(pl for pl, _ in pairs)
    total = tuple(pl + pr for pl, pr in pairs)
    for axis, (n, k, d, t) in enumerate(zip(x_shape[2:], kernel, dilation, total)):
        if kernel_extent(k, d) > n + t:
            raise ValueError(
                f"kernel size {k} (dilated to {kernel_extent(k, d)}) along spatial axis "
                f"{axis} is larger than the padded input size {n} + {t} = {n + t}: "
                "the output would be empty")
    if b_shape is not None and b_shape != (K,):
        raise ValueError(f"bias must have shape (out_channels,) = ({K},), "
                         f"got {b_shape}")
    out = tuple(window_count(n, k, s, t, d) for n, k, s, t, d in
                zip(x_shape[2:], kernel, stride, total, dilation))
    if min(out) < 1:  # pragma: no cover - excluded by the check above
        raise ValueError(f"the output size would be zero: {out}")
    lead = 3 - nd
    geom = _Geometry(x_shape[:2] + (1,) * lead + x_shape[2:],
                     w_shape[:2] + (1,) * lead + kernel, (1,) * lead + out,
                     (1,) * lead + stride, (0,) * lead + before,
                     (1,) * lead + dilation, groups, dtype)
    return geom, x_shape[:1] + w_shape[:1] + out


# --- algorithm choice -------------------------------------------------------

def _fits_blas(geom):
    """Whether every size handed to BLAS (matrix sizes and leading
    dimensions: positions per image, unrolled rows, channels) fits its
    32-bit integers."""
    return max(math.prod(geom.out), math.prod(geom.spatial), geom.rows,
               geom.C, geom.K) <= _INT_MAX


def _applicable(geom, op):
    """The kernels that can run ``op`` for this convolution.

    ``op`` is 'forward' (also the unit-stride input gradient, as the forward
    pass of :meth:`_Geometry.transposed`), 'input_grad' (strided layers)
    or 'weight_grad'. 'direct' always applies; 'gemm' needs sizes that fit
    BLAS's 32-bit integers; 'depthwise' a depthwise layer (one input
    channel per output channel) whose padded planes, a block of channels of
    them, fit a modest buffer; 'blocked' (forward only) a modest padded copy
    of the input and at most _BLOCKED_TAPS kernel taps; 'padded' a modest copy of a group's padded
    input (split by stride phase) per thread; 'winograd' a 2-D 3x3 kernel
    with unit stride.
    """
    kernels = {"direct"}
    if _fits_blas(geom):
        kernels.add("gemm")
        if (geom.groups == 1 and geom.spatial == geom.kernel and geom.out == (1, 1, 1)
                and geom.pad == (0, 0, 0) and geom.dilation == (1, 1, 1)):
            kernels.add("dense")
    # (the transposed geometry of the unit-stride input gradient may crop
    # instead of padding: negative padding)
    cropped = min(geom.pad) < 0
    if (op == "forward" and not cropped and _blocked_bytes(geom) <= _PADDED_BYTES
            and math.prod(geom.kernel) <= _BLOCKED_TAPS):
        kernels.add("blocked")
    if geom.Cg == 1 and geom.Kg == 1 and not cropped:
        # a block of channels of one image padded per thread (a band of
        # rows of it in the forward pass)
        rows = geom.kernel[1] if op == "forward" else None
        if _depthwise_buffer(geom, rows) <= _PADDED_BYTES:
            kernels.add("depthwise")
    if (op == "forward" and _pointwise(geom) and geom.Cg * geom.Kg > 1
            and geom.Cg * _conv.pointwise_shape(geom.dtype)[1] * geom.dtype.itemsize
            <= _PADDED_BYTES):
        kernels.add("pointwise")
    if (op == "forward" and not _pointwise(geom) and geom.Cg * geom.Kg > 1
            and geom.rows * _conv.pointwise_shape(geom.dtype)[1] * geom.dtype.itemsize
            <= _PADDED_BYTES):
        kernels.add("implicit")
    unit_stride = geom.stride == (1, 1, 1)
    if op != "input_grad":
        # the padded volume the outputs read, each stride phase rounded up
        padded = math.prod(-(-((o - 1) * s + (k - 1) * d + 1) // s) * s for o, k, s, d in
                           zip(geom.out, geom.kernel, geom.stride, geom.dilation))
        if geom.Cg * padded * geom.dtype.itemsize <= _PADDED_BYTES:
            kernels.add("padded")
    # Winograd tasks take whole rows of blocks: about 9 values per output
    # column and channel (F(4, 3): 36 per 4 columns), in and out.
    row_bytes = 9 * geom.out[2] * (geom.C + geom.K) * geom.dtype.itemsize
    if (op != "input_grad" and unit_stride and geom.kernel == (1, 3, 3)
            and geom.x5[2] == 1 and "gemm" in kernels and row_bytes <= 4 * _WINOGRAD_BYTES):
        kernels.add("winograd")
    return kernels


@functools.lru_cache(maxsize=1024)
def _algorithm(geom, op="forward", n_threads=1):
    """The kernel that runs ``op`` on ``n_threads`` threads (see
    :func:`_applicable`).

    A fully connected layer ('dense') is always one matrix product. The
    forward pass and the weight gradient take the kernel with the least
    predicted time (:func:`_predicted_time`); the direct loops, the slowest
    wherever another kernel applies, only where none does. The strided
    input gradient (col2im) takes GEMM unless the layer is depthwise (one or
    two channel pairs), where the direct loops win, and depthwise layers
    take the depthwise kernels.
    """
    kernels = _applicable(geom, op)
    if "dense" in kernels:
        return "dense"
    if op == "input_grad":
        if "depthwise" in kernels:
            return "depthwise"
        return "gemm" if "gemm" in kernels and geom.Cg * geom.Kg > 2 else "direct"
    candidates = sorted(kernels - {"direct"})
    if not candidates:
        return "direct"
    return min(candidates, key=lambda k: _predicted_time(geom, k, op, n_threads))


# --- cost model ---------------------------------------------------------------
#
# Each kernel's time is predicted from the work its plan gives every task:
# a fixed cost per call, plus, for the busiest thread, its share of the
# tasks (ceil(tasks / threads) of them) times the work of one task, a sum
# of amounts (multiply-adds, values copied, values BLAS packs, ...) each
# with a cost per unit. The costs per unit are fitted by
# ``benchmarks/fit_conv_costs.py`` on every convolution layer of the
# built-in networks at several batch sizes and thread counts (nonnegative
# least squares on relative errors), and written into _COSTS.


def _split_tasks(total, most, n_threads):
    """(items per task, tasks) of the Winograd kernels' split of ``total``
    block rows, at most ``most`` a task, the tasks a multiple of the thread
    count where there are enough items (as ``_conv._split``)."""
    tasks = -(-total // most)
    tasks = min(total, -(-tasks // n_threads) * n_threads)
    most = -(-total // tasks)
    return most, -(-total // most)


def _ext_length(geom):
    """Length of the extended output of the padded loops (rows of the
    phase-split padded width) and the padded volume of one channel."""
    q = [-(-((o - 1) * s + (k - 1) * d + 1) // s) for o, k, s, d in
         zip(geom.out, geom.kernel, geom.stride, geom.dilation)]
    od, oh, _ = geom.out
    return ((od - 1) * q[1] + oh) * q[2], math.prod(q) * math.prod(geom.stride)


def _padded_extent(geom):
    """Extent of the padded input the windows read, per axis."""
    return tuple((o - 1) * s + (k - 1) * d + 1 for o, k, s, d in
                 zip(geom.out, geom.kernel, geom.stride, geom.dilation))


def _depthwise_buffer(geom, rows=None):
    """Bytes of one block of padded planes of the depthwise kernels (a
    band of ``rows`` padded rows of them when given)."""
    pd, ph, pw = _padded_extent(geom)
    return _conv.depthwise_lanes(geom.dtype) * pd * (rows or ph) * pw * geom.dtype.itemsize


def _blocked_bytes(geom):
    """Bytes of the register-blocked kernel's padded copy of the input
    (none where the windows stay inside the input)."""
    extent = _padded_extent(geom)
    if geom.pad == (0, 0, 0) and all(e <= n for e, n in zip(extent, geom.spatial)):
        return 0
    return geom.N * geom.C * math.prod(_padded_extent(geom)) * geom.dtype.itemsize


def _blocked_wide(geom):
    """Whether the register-blocked kernel takes its widest blocks of output
    channels (128 bytes with AVX-512): only where a group has more output
    channels than a 64-byte block holds, so that few lanes are padding."""
    return geom.Kg > _conv.blocked_lanes(geom.dtype, False)


def _blocked_plan(geom, n_threads):
    """(bands of output positions per plane, input channels per pass, blocks
    of output channels per task) of the register-blocked kernel.

    A task runs its blocks of output channels one after the other over its
    band, so that the band's input, read from memory by the first, is in
    cache for the others: bands of at most _BLOCKED_BAND positions (their
    partial sums stay in cache) whose input fits _BLOCKED_INPUT_BYTES where
    there are several blocks. Blocks are shared out over tasks, and bands
    cut further, only where images x groups x bands leave a thread without
    two tasks. Each pass over a band takes as many input channels as keep
    their weights within _BLOCKED_WEIGHT_BYTES."""
    lanes = _conv.blocked_lanes(geom.dtype, _blocked_wide(geom))
    positions = math.prod(geom.out)
    kblocks = -(-geom.Kg // lanes)
    units = geom.N * geom.groups
    bands = -(-positions // _BLOCKED_BAND)
    if kblocks > 1:
        per_position = geom.Cg * math.prod(geom.stride) * geom.dtype.itemsize
        bands = max(bands, -(-positions * per_position // _BLOCKED_INPUT_BYTES))
    bands = min(positions, max(bands, -(-2 * n_threads // (units * kblocks))))
    kgroups = min(kblocks, -(-2 * n_threads // (units * bands)))
    taps = math.prod(geom.kernel)
    cblock = max(4, _BLOCKED_WEIGHT_BYTES // (taps * lanes * geom.dtype.itemsize))
    return bands, cblock, -(-kblocks // kgroups)


@functools.lru_cache(maxsize=1024)
def _pointwise_plan(geom, n_threads):
    """(strips of positions per band, blocks of output channels per task,
    strips per chunk) of the pointwise kernel.

    Positions are counted over the images side by side and cut into bands
    of whole strips, about four tasks per thread (the tasks are taken
    dynamically). A task runs every block of output channels over its
    strips, each strip copied once and read from cache by every block,
    unless groups x bands leave threads fewer than four tasks: then the
    blocks are shared out too, at least four to a task. A task copies the
    input rows of as many strips at a time as fill _POINTWISE_CHUNK_BYTES,
    which every block then reads from cache."""
    block, strip = _conv.pointwise_shape(geom.dtype)
    strips = -(-geom.N * math.prod(geom.out) // strip)
    kblocks = -(-geom.Kg // block)
    bands = min(strips, max(1, -(-4 * n_threads // geom.groups)))
    band = -(-strips // bands)
    bands = -(-strips // band)
    kgroups = max(1, min(-(-kblocks // 4), -(-4 * n_threads // (geom.groups * bands))))
    chunk = max(1, _POINTWISE_CHUNK_BYTES // (geom.Cg * strip * geom.dtype.itemsize))
    return band, -(-kblocks // kgroups), min(chunk, band)


@functools.lru_cache(maxsize=1024)
def _implicit_plan(geom, n_threads):
    """(strips per band, blocks of output channels per task, strips per
    chunk, rows per pass) of the implicit GEMM: the split of
    :func:`_pointwise_plan`, each pass over as many rows of the columns as
    keep a block's weights within _IMPLICIT_WEIGHT_BYTES, and as many
    strips' columns built at a time as fill _IMPLICIT_CHUNK_BYTES."""
    block, strip = _conv.pointwise_shape(geom.dtype)
    rows = min(geom.rows, max(16, _IMPLICIT_WEIGHT_BYTES // (block * geom.dtype.itemsize)))
    chunk = max(1, _IMPLICIT_CHUNK_BYTES // (rows * strip * geom.dtype.itemsize))
    strips = -(-geom.N * math.prod(geom.out) // strip)
    kblocks = -(-geom.Kg // block)
    # Each band reads every weight of its blocks once per chunk, each group
    # of blocks builds its band's columns: of the splits that give every
    # thread about two tasks, the one that moves the fewest values.
    best = None
    for bands in range(1, min(strips, 8 * n_threads) + 1):
        band = -(-strips // bands)
        kgroups = min(kblocks, max(1, -(-2 * n_threads // (geom.groups * -(-strips // band)))))
        chunks = -(-strips // band) * -(-band // min(chunk, band))
        moved = chunks * kblocks * block + kgroups * strips * strip
        idle = -(-geom.groups * -(-strips // band) * kgroups // n_threads) * n_threads
        key = (moved * idle, bands)
        if best is None or key < best[0]:
            best = key, band, -(-kblocks // kgroups)
    _, band, kgroup = best
    return band, kgroup, min(chunk, band), rows


def _depthwise_plan(geom, n_threads):
    """(bands of output rows per plane in the forward pass, chunks of
    images in the weight gradient) of the depthwise kernels.

    The forward pass cuts each plane into bands small enough that a band's
    padded rows stay in the per-core cache (_DEPTHWISE_BAND_BYTES), and
    into more where images x blocks of channels leave threads without
    work; the weight gradient sums its images in as many chunks as give
    every thread two tasks."""
    blocks = -(-geom.C // _conv.depthwise_lanes(geom.dtype))
    oh = geom.out[1]
    sh, dh, fh = geom.stride[1], geom.dilation[1], geom.kernel[1]
    rows = max(1, _DEPTHWISE_BAND_BYTES // _depthwise_buffer(geom, 1))
    band = max(1, (rows - (fh - 1) * dh - 1) // sh + 1)
    bands = min(oh, max(-(-oh // band), -(-2 * n_threads // (geom.N * blocks))))
    bands = -(-oh // -(-oh // bands))
    chunks = min(geom.N, -(-2 * n_threads // blocks))
    return bands, chunks


def _cost_terms(geom, algorithm, op, n_threads):
    """(tasks, {amount: total over the call}, {amount: total outside the
    tasks}) of ``algorithm`` running ``op`` ('forward' or 'weight_grad')."""
    N, G, C, K, Cg, Kg = geom.N, geom.groups, geom.C, geom.K, geom.Cg, geom.Kg
    taps = math.prod(geom.kernel)
    R = Cg * taps
    P = math.prod(geom.out)
    macs = N * K * R * P
    pointwise = _pointwise(geom)
    serial = {}
    if algorithm == "gemm":
        if op == "forward":
            tile, kblock, images, shared = _gemm_forward_plan(geom, n_threads)
            kblocks = -(-Kg // kblock)
            if images > 1:
                tasks = -(-N // images) * G * kblocks
                packed = tasks * (min(kblock, Kg) * R + R * images * P)
                copied = N * G * R * P * kblocks + N * K * P
            else:
                tiles = -(-P // tile)
                tasks = N * G * tiles * kblocks
                packed = tasks * (min(kblock, Kg) * R + R * min(tile, P))
                copied = 0 if pointwise else N * G * R * P * (1 if shared else kblocks)
        else:
            tile, cblock, images = _gemm_weight_grad_plan(geom, n_threads)
            tiles = -(-P // tile)
            if cblock:
                cblocks = -(-Cg // cblock)
                tasks = G * cblocks
                products = tasks * -(-N // images) * (tiles if images == 1 else 1)
                width = images * P if images > 1 else min(tile, P)
                packed = products * (Kg + cblock * taps) * width
                copied = (0 if pointwise and images == 1 else N * G * R * P) + (
                    tasks * N * Kg * P if images > 1 else 0)
            else:
                tasks = N * G * tiles
                packed = tasks * (Kg * min(tile, P) + R * min(tile, P))
                serial["reduced"] = min(n_threads, tasks) * K * R
                copied = 0 if pointwise else N * G * R * P
        work = {"macs": macs, "packed": packed, "copied": copied,
                # a strided column copy reads one element of every
                # stride[-1]: as many more cache lines for the same values
                "strided": copied * (geom.stride[2] - 1)}
        if op == "forward":
            # BLAS clears its output block, then adds each panel's product
            # to it: passes over the outputs that a short inner dimension
            # (few input channels) does not amortise
            work["written"] = N * K * P * -(-R // _BLAS_PANEL)
    elif algorithm == "winograd":
        m = _winograd_m(geom)
        a = m + 2
        (_, _, _), tiles = _winograd_plan(geom)
        blocks_w = _winograd_axis_blocks(geom.out[2], geom.dilation[2], m)
        blocks = _winograd_blocks(geom, m)
        rows = blocks // blocks_w
        per_task, tasks = _split_tasks(N * rows, max(1, tiles // blocks_w), n_threads)
        work = {"macs": a * a * N * blocks * K * Cg,
                "transformed": a * a * N * blocks * (C + K),
                "packed": tasks * a * a * K * Cg}
        serial["filters"] = K * Cg * a * a
    elif algorithm == "padded":
        L, volume = _ext_length(geom)
        if op == "forward":
            tasks = N * G
            copied = N * C * volume + N * K * L
        else:
            tasks = K * Cg
            copied = N * K * Cg * (volume + L)
        work = {"macs": N * K * Cg * taps * L, "copied": copied}
    elif algorithm == "blocked":
        lanes = _conv.blocked_lanes(geom.dtype, _blocked_wide(geom))
        kblocks = -(-Kg // lanes)
        bands, _, kgroup = _blocked_plan(geom, n_threads)
        band = -(-P // bands)
        strips = -(-band // _conv.BLOCKED_STRIP) * _conv.BLOCKED_STRIP * bands
        kgroups = -(-kblocks // kgroup)
        tasks = N * G * kgroups * bands
        work = {"macs": N * G * kblocks * lanes * Cg * taps * strips,
                "copied": _blocked_bytes(geom) // geom.dtype.itemsize + N * K * P,
                "packed": G * kblocks * lanes * Cg * taps,
                # the input, read from memory once per group of output blocks
                "reread": kgroups * N * C * math.prod(geom.spatial)}
    elif algorithm == "pointwise":
        block, strip = _conv.pointwise_shape(geom.dtype)
        band, kgroup, _ = _pointwise_plan(geom, n_threads)
        strips = -(-N * P // strip)
        kblocks = -(-Kg // block)
        kgroups = -(-kblocks // kgroup)
        tasks = G * -(-strips // band) * kgroups
        work = {"macs": G * kblocks * block * Cg * strips * strip,
                # each strip's rows copied once per group of blocks
                "copied": kgroups * N * C * P + N * K * P}
    elif algorithm == "implicit":
        block, strip = _conv.pointwise_shape(geom.dtype)
        band, kgroup, _, _ = _implicit_plan(geom, n_threads)
        strips = -(-N * P // strip)
        kblocks = -(-Kg // block)
        kgroups = -(-kblocks // kgroup)
        tasks = G * -(-strips // band) * kgroups
        gathered = kgroups * G * R * strips * strip
        work = {"macs": G * kblocks * block * R * strips * strip,
                # the columns built once per group of blocks (strided: as
                # for GEMM's copy)
                "gathered": gathered,
                "strided": gathered * (geom.stride[2] - 1),
                "copied": N * K * P}
    elif algorithm == "depthwise":
        lanes = _conv.depthwise_lanes(geom.dtype)
        blocks = -(-C // lanes)
        pd, ph, pw = _padded_extent(geom)
        bands, chunks = _depthwise_plan(geom, n_threads)
        if op == "forward":
            band = -(-geom.out[1] // bands)
            rows = (band - 1) * geom.stride[1] + (geom.kernel[1] - 1) * geom.dilation[1] + 1
            tasks = N * blocks * bands
            copied = N * blocks * lanes * pd * rows * bands * pw + N * K * P
        else:
            tasks = blocks * chunks
            copied = N * blocks * lanes * (pd * ph * pw + P)
        work = {"macs": N * blocks * lanes * P * taps, "copied": copied}
    else:  # direct
        tasks = N * G if op == "forward" else K * Cg
        work = {"macs": macs}
    work["tasks"] = tasks
    return tasks, work, serial


def _cost_features(tasks, work, serial, n_threads):
    """The amounts the costs per unit multiply: 1 for the call, the busiest
    thread's share of the work (ceil(tasks / threads) of the tasks), and the
    work outside the tasks, shared by as many threads as there are tasks."""
    busiest = -(-tasks // n_threads) / tasks
    features = {"call": 1.0}
    features.update((k, v * busiest) for k, v in work.items())
    features.update((k, v / min(n_threads, max(1, tasks))) for k, v in serial.items())
    return features


def _predicted_time(geom, algorithm, op, n_threads):
    """Seconds ``algorithm`` is expected to take for ``op`` (see _COSTS)."""
    costs = _COSTS[algorithm, op]
    tasks, work, serial = _cost_terms(geom, algorithm, op, n_threads)
    features = _cost_features(tasks, work, serial, n_threads)
    return sum(costs.get(k, 0.0) * v for k, v in features.items())


# Fitted by benchmarks/fit_conv_costs.py on every conv layer of the
# benchmark's fourteen built-in networks at batch 1 and 8 (the 1x1 layers
# also at batch 32) on 2 threads of an AVX-512 Xeon with 2 cores, fully
# connected layers aside, each kernel timed in turn with the others that
# apply (samples of a few milliseconds of calls; the layers where Winograd
# applies timed again at batch 1 and 8 with the current kernels, ``--kernel
# winograd --merge``): the model picks the fastest kernel in 857 of 999
# cases, and its picks take 1.02x the time of the fastest on average (the
# vector loops in their AVX-512 versions: the
# costs belong to the machine they were fitted on). Units: seconds per
# call, per task, and per unit of each amount of work.
_COSTS = {
    ("gemm", "forward"): {"call": 3.997e-05, "macs": 1.621e-11, "packed": 3.811e-10,
                          "strided": 3.378e-10, "tasks": 3.127e-07, "written": 2.973e-10},
    ("gemm", "weight_grad"): {"call": 6.22e-05, "copied": 1.699e-10, "macs": 1.759e-11,
                              "packed": 1.802e-10, "reduced": 1.259e-09, "strided": 3.87e-10,
                              "tasks": 3.075e-08},
    ("winograd", "forward"): {"call": 0.0001338, "filters": 6.446e-10, "macs": 1.709e-11,
                              "packed": 7.644e-10, "transformed": 1.186e-09},
    ("winograd", "weight_grad"): {"call": 0.0001686, "filters": 4.683e-09, "macs": 2.071e-11,
                                  "packed": 1.235e-10, "transformed": 1.287e-09},
    ("blocked", "forward"): {"call": 2.256e-05, "copied": 5.243e-10, "macs": 1.641e-11,
                             "packed": 1.329e-09, "reread": 1.646e-10, "tasks": 3.757e-07},
    ("pointwise", "forward"): {"call": 1.837e-05, "copied": 3.233e-10, "macs": 1.29e-11},
    ("implicit", "forward"): {"call": 1.977e-05, "copied": 2.456e-10, "gathered": 5.045e-10,
                              "macs": 1.384e-11, "strided": 2.506e-10, "tasks": 2.306e-06},
    ("padded", "forward"): {"call": 2.223e-05, "copied": 4.92e-10, "macs": 4.85e-11,
                            "tasks": 2.908e-07},
    ("padded", "weight_grad"): {"call": 4.055e-05, "copied": 3.964e-10, "macs": 3.988e-11,
                                "tasks": 4.432e-07},
    ("depthwise", "forward"): {"call": 2.381e-05, "copied": 4.055e-10, "macs": 2.573e-11,
                               "tasks": 4.62e-07},
    ("depthwise", "weight_grad"): {"call": 1.739e-05, "copied": 4.351e-10, "macs": 5.086e-11,
                                   "tasks": 1.493e-06},
    ("direct", "forward"): {"call": 1.78e-05, "macs": 1.908e-10, "tasks": 6.267e-07},
    ("direct", "weight_grad"): {"call": 2.912e-05, "macs": 4.373e-10, "tasks": 9.984e-07},
}


# The unit-stride input gradient as a full correlation costs about
# prod(spatial) / prod(out) times the multiplies of col2im; col2im pays for
# its scatter and its GEMM's short inner dimension (K/G), so it wins, as
# measured, from about this ratio on.
_COL2IM_RATIO = 1.5


def _input_grad_algorithm(geom, n_threads=1):
    """'transposed' (the forward kernels on :meth:`_Geometry.transposed`),
    'dense', 'depthwise' (the windows' gradients of a depthwise layer
    scattered onto channel-blocked padded planes, any stride), 'gemm' (GEMM
    and col2im) or 'direct' for the input gradient."""
    algorithm = _algorithm(geom, "input_grad", n_threads)
    if algorithm in ("dense", "depthwise"):
        return algorithm
    if geom.stride == (1, 1, 1):
        if ("gemm" in _applicable(geom, "input_grad") and geom.Cg * geom.Kg > 2
                and math.prod(geom.spatial) >= _COL2IM_RATIO * math.prod(geom.out)):
            return "gemm"
        return "transposed"
    return "gemm" if _algorithm(geom, "input_grad", n_threads) == "gemm" else "direct"


def _dense(geom, a, b, trans_a=0, trans_b=0):
    """``op(a) @ op(b)`` for Fortran-ordered ``a`` and ``b`` (``op``
    transposes when asked), by BLAS ``gemm`` on one thread: the products of
    a layer whose kernel covers its input (:func:`_applicable`). Callers
    pass transposed views of C-ordered matrices, so nothing is copied."""
    gemm = _blas.sgemm if geom.dtype == np.float32 else _blas.dgemm
    with _single_threaded_blas():
        return gemm(1.0, a, b, trans_a=trans_a, trans_b=trans_b)


def _tile(geom, rows, positions):
    """Output positions per GEMM tile for a column matrix of ``rows`` rows
    (out of ``positions`` per image): the cache budget's worth, at least
    _MIN_TILE unless that would take more than _TILE_LIMIT bytes."""
    column = rows * geom.dtype.itemsize
    floor = max(1, min(_MIN_TILE, _TILE_LIMIT // column))
    return min(max(floor, _TILE_BYTES // column), positions)


def _channel_block(count, tasks, n_threads, minimum=None, per_thread=2):
    """Channels per block when each of ``tasks`` independent tasks is cut
    into blocks of ``count`` channels: as few blocks as give every thread
    ``per_thread`` tasks, no block narrower than ``minimum`` channels
    (default _MIN_BLOCK: narrower GEMMs run far below BLAS's peak)."""
    minimum = _MIN_BLOCK if minimum is None else min(minimum, _MIN_BLOCK)
    if n_threads == 1 or tasks >= per_thread * n_threads:
        return count
    blocks = min(-(-per_thread * n_threads // tasks), max(1, count // minimum))
    return -(-count // blocks)


def _pointwise(geom):
    """Whether the layer reads its input as the column matrix (a 1x1
    kernel, unit stride, no padding): nothing is unrolled, so one product
    per image (or channel block) runs fastest, without tiles."""
    return (math.prod(geom.kernel) == 1 and geom.stride == (1, 1, 1)
            and geom.pad == (0, 0, 0))


_GemmPlan = collections.namedtuple("_GemmPlan", "tile kblock images shared")


def _gemm_forward_plan(geom, n_threads):
    """How the GEMM forward pass splits its work (a :class:`_GemmPlan`):
    output positions per tile, output channels per block, images per
    product, and whether the threads share each unit's column matrix.

    Where a group's weights outweigh one image's columns (more output
    channels than positions) on maps of fewer than _MIN_TILE / 2
    positions, several images go side by side in one product, about
    _MIN_TILE columns of them, but no more than leave every thread an
    image block: the product is then wide enough for BLAS, and the weights
    are read once for all of them (measured on 7x7 layers at batch 8: up to
    2.3x faster than one product per image, slower where the weights are
    small). Other layers take tiles within an image. Output channels are
    cut into blocks only where images x groups x tiles leave threads
    without work (one task per thread: each block re-unrolls its columns,
    and narrower products run slower); when there are fewer such units than
    threads, all threads unroll each unit together and then share its
    product, instead of each unrolling it for its own block of channels."""
    positions = math.prod(geom.out)
    if 2 * positions <= _MIN_TILE and geom.N > 1 and geom.Kg > positions:
        images = min(-(-geom.N // n_threads), -(-_MIN_TILE // positions),
                     _tile(geom, geom.rows, geom.N * positions) // positions)
        if images > 1:
            return _GemmPlan(positions, _channel_block(
                geom.Kg, -(-geom.N // images) * geom.groups, n_threads, per_thread=1),
                images, False)
    tile = positions if _pointwise(geom) else _tile(geom, geom.rows, positions)
    units = geom.N * geom.groups * -(-positions // tile)
    kblock = _channel_block(geom.Kg, units, n_threads, per_thread=1)
    shared = not _pointwise(geom) and units < n_threads and kblock < geom.Kg
    return _GemmPlan(tile, kblock, 1, shared)


def _gemm_weight_grad_plan(geom, n_threads):
    """(positions per tile, input channels per block or 0, images per
    product) of the GEMM weight gradient. With few images, tasks go over
    blocks of input channels, each summing over every image (cblock > 0),
    instead of one task per image and tile, which would leave threads idle
    and need a private copy of dW per thread (cblock = 0). So do small maps
    whose weights outweigh one image's columns, with several images side by
    side in each product (as in :func:`_gemm_forward_plan`), so that its
    sum runs over more than one image's positions."""
    positions = math.prod(geom.out)
    taps = math.prod(geom.kernel)
    tile = positions if _pointwise(geom) else _tile(geom, geom.rows, positions)
    tasks = geom.N * -(-positions // tile)
    cblock = _channel_block(geom.Cg, geom.groups, n_threads, -(-2 * _MIN_BLOCK // taps))
    blocks = geom.groups * -(-geom.Cg // cblock)
    if positions < _MIN_TILE and geom.N > 1 and geom.Kg > positions and blocks >= n_threads:
        width = _tile(geom, cblock * taps + geom.Kg, geom.N * positions)
        images = max(1, min(geom.N, width // positions))
        return positions, cblock, images
    if tasks < 2 * n_threads and blocks > tasks:
        return tile if _pointwise(geom) else _tile(geom, cblock * taps, positions), cblock, 1
    return tile, 0, 1


def _transposed_weight(geom, weight, n_threads=1):
    """Weight of :meth:`_Geometry.transposed`: per group, the kernel rotated
    by 180 degrees with its two channel axes swapped, (C, K/G, *kernel)."""
    G, Kg, Cg = geom.groups, geom.Kg, geom.Cg
    taps = math.prod(geom.kernel)
    out = np.empty((G, Cg, Kg, taps), dtype=weight.dtype)
    _conv.rotated_transpose(weight.reshape(G, Kg, Cg, taps), out, n_threads)
    return out.reshape((G * Cg, Kg) + geom.kernel)


# --- drivers ----------------------------------------------------------------

def _forward(nd, x, weight, bias, stride, padding, dilation, groups, n_threads):
    n_threads = check_n_threads(n_threads)
    x, weight, bias, geom, out_shape, unbatched = _validate(
        nd, x, weight, bias, stride, padding, dilation, groups)
    y = _workspace.empty_aligned(out_shape, geom.dtype)
    if geom.N:
        _run_forward(geom, x.reshape(geom.x5), weight.reshape(geom.w5), bias,
                     y.reshape(geom.y5), n_threads)
    return y[0] if unbatched else y


def _all_finite(a, n_threads):
    """Whether every value of the C-contiguous float array ``a`` is finite
    (one vectorised pass over its bits)."""
    bits = a.reshape(-1).view(np.uint32 if a.dtype.itemsize == 4 else np.uint64)
    return _conv.count_nonfinite_chunks(bits, n_threads) == 0


def _window_local(geom, algorithm, op, arrays, n_threads):
    """``algorithm``, or 'gemm' where it would let an inf or NaN of
    ``arrays`` reach outputs outside its windows.

    Winograd mixes every value of a tile into every output of its block
    (and turns inf into NaN: inf - inf); the padded loops' weight gradient
    multiplies the junk columns of its extended rows (zero gradients) by
    input values no window reads. Both are exact for finite values, so a
    non-finite input takes im2col + GEMM (or the direct loops), whose every
    product is one of the definition's.
    """
    if algorithm == "winograd" or (algorithm == "padded" and op == "weight_grad"):
        if not all(_all_finite(a, n_threads) for a in arrays):
            return "gemm" if "gemm" in _applicable(geom, op) else "direct"
    return algorithm


def _run_forward(geom, x5, w5, bias, y5, n_threads):
    """y5 = conv(x5, w5) + bias with the kernel :func:`_algorithm` picks."""
    algorithm = _window_local(geom, _algorithm(geom, "forward", n_threads), "forward",
                              (x5, w5), n_threads)
    if algorithm == "dense" and geom.N * geom.K * geom.rows <= _DENSE_LOOP_MACS:
        # one thread for a gate's few microseconds, blocks of outputs beyond
        tasks = min(n_threads, geom.K, -(-geom.N * geom.K * geom.rows // _DENSE_TASK_MACS))
        _conv.dense_forward(x5.reshape(geom.N, -1), w5.reshape(geom.K, -1), bias,
                            y5.reshape(geom.N, geom.K), -(-geom.K // tasks), tasks)
    elif algorithm == "dense":
        # y (N, K) = X (N, R) @ W^T, computed as y^T = W @ X^T
        y = _dense(geom, w5.reshape(geom.K, -1).T, x5.reshape(geom.N, -1).T, trans_a=1).T
        if bias is not None:
            y += bias
        y5.reshape(geom.N, geom.K)[...] = y
    elif algorithm == "winograd":
        _run_winograd(geom, x5, w5, bias, y5, n_threads)
    elif algorithm == "gemm":
        tile, kblock, images, shared = _gemm_forward_plan(geom, n_threads)
        with _single_threaded_blas():
            if images > 1:
                _conv.gemm_forward_images(x5, w5, bias, y5, geom.stride, geom.pad,
                                          geom.dilation, geom.groups, images, kblock,
                                          n_threads)
            elif shared:
                _conv.gemm_forward_shared(x5, w5, bias, y5, geom.stride, geom.pad,
                                          geom.dilation, geom.groups, tile, kblock,
                                          n_threads)
            else:
                _conv.gemm_forward(x5, w5, bias, y5, geom.stride, geom.pad, geom.dilation,
                                   geom.groups, tile, kblock, n_threads)
    elif algorithm == "blocked":
        bands, cblock, kgroup = _blocked_plan(geom, n_threads)
        _conv.blocked_forward(x5, w5, bias, y5, geom.stride, geom.pad, geom.dilation,
                              geom.groups, bands, cblock, kgroup, _blocked_wide(geom),
                              n_threads)
    elif algorithm == "pointwise":
        _conv.pointwise_forward(x5, w5, bias, y5, geom.groups,
                                *_pointwise_plan(geom, n_threads), n_threads)
    elif algorithm == "implicit":
        _conv.implicit_forward(x5, w5, bias, y5, geom.stride, geom.pad, geom.dilation,
                               geom.groups, *_implicit_plan(geom, n_threads), n_threads)
    elif algorithm == "depthwise":
        _conv.depthwise_forward(x5, w5, bias, y5, geom.stride, geom.pad, geom.dilation,
                                _depthwise_plan(geom, n_threads)[0], n_threads)
    elif algorithm == "padded":
        _conv.padded_forward(x5, w5, bias, y5, geom.stride, geom.pad, geom.dilation,
                             geom.groups, n_threads)
    else:
        _conv.direct_forward(x5, w5, bias, y5, geom.stride, geom.pad, geom.dilation,
                             geom.groups, n_threads)


# Winograd F(m x m, 3 x 3) transforms (Lavin and Gray): input BT (a x a),
# filter G (a x 3), output AT (m x a), a = m + 2.
_WINOGRAD = {
    2: (np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], float),
        np.array([[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]]),
        np.array([[1, 1, 1, 0], [0, 1, -1, -1]], float)),
    4: (np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                  [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], float),
        np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                  [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]),
        np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
                  [0, 1, -1, 8, -8, 1]], float)),
}


def _winograd_axis_blocks(n, d, m):
    """Blocks of m outputs along an axis of n outputs with dilation d (the
    blocks of each dilation phase)."""
    return sum(-(-len(range(r, n, d)) // m) for r in range(min(d, n)))


def _winograd_blocks(geom, m):
    """Number of m x m output blocks (per image) of a Winograd layer."""
    return math.prod(_winograd_axis_blocks(n, d, m)
                     for n, d in zip(geom.out[1:], geom.dilation[1:]))


def _winograd_m(geom):
    """F(4, 3) or F(2, 3): the one with fewer multiplies, (m + 2)^2 per
    block (F(4, 3) wastes more on the edges of small images), F(4, 3)
    preferred by 10% for its cheaper transforms per output."""
    def cost(m):
        return (m + 2) ** 2 * _winograd_blocks(geom, m) * (1.0 if m == 4 else 1.1)
    return min((2, 4), key=cost)


def _winograd_plan(geom):
    """Transform tables and blocks per task for a Winograd layer."""
    m = _winograd_m(geom)
    a = m + 2
    # A task's a*a input and output matrices (C and K rows a tile): as many
    # tiles as stay in the cache (_WINOGRAD_CACHE), or, where that is few,
    # enough that BLAS packing the weights (a*a*K*Cg values a task) moves at
    # most a quarter of what the transforms do; within _WINOGRAD_BYTES.
    per_tile = a * a * (geom.C + geom.K) * geom.dtype.itemsize
    amortised = 4 * geom.K * geom.Cg // (geom.C + geom.K)
    tiles = min(max(_WINOGRAD_CACHE // per_tile, amortised), _WINOGRAD_BYTES // per_tile)
    return _WINOGRAD[m], min(max(tiles, 64), _WINOGRAD_TILES)


def _run_winograd(geom, x5, w5, bias, y5, n_threads):
    (BT, G, AT), tiles = _winograd_plan(geom)
    u = np.empty((len(BT) ** 2, geom.K, geom.Cg), dtype=geom.dtype)
    _conv.winograd_filter(w5.reshape(geom.K, geom.Cg, 3, 3), G, u, n_threads)
    with _single_threaded_blas():
        _conv.winograd_forward(x5, u, bias, y5, BT, AT, geom.pad, geom.dilation,
                               geom.groups, tiles, n_threads)


def _run_winograd_weight_grad(geom, x5, dy5, dw5, n_threads):
    (BT, G, AT), tiles = _winograd_plan(geom)
    u = np.empty((len(BT) ** 2, geom.K, geom.Cg), dtype=geom.dtype)
    with _single_threaded_blas():
        _conv.winograd_weight_grad(x5, dy5, u, BT, AT, geom.pad, geom.dilation,
                                   geom.groups, tiles, n_threads)
    _conv.winograd_filter_grad(u, G, dw5.reshape(geom.K, geom.Cg, 3, 3), n_threads)


def _backward(nd, grad_output, x, weight, stride, padding, dilation, groups, n_threads,
              compute_input_grad=True):
    n_threads = check_n_threads(n_threads)
    check_bool(compute_input_grad, "compute_input_grad")
    dtype, (grad_output, x, weight) = _common_dtype(
        [(grad_output, "grad_output"), (x, "x"), (weight, "weight")])
    x, weight, _, geom, out_shape, unbatched = _validate(
        nd, x, weight, None, stride, padding, dilation, groups, dtype)
    dy = as_float_array(grad_output, "grad_output", dtype)
    expected = out_shape[1:] if unbatched else out_shape
    if dy.shape != expected:
        raise ValueError(f"grad_output must have the shape of the forward output, "
                         f"{expected}, got {dy.shape}")
    dx = _workspace.empty_aligned(x.shape, dtype) if compute_input_grad else None
    dw = np.empty(weight.shape, dtype=dtype)
    db = np.empty(geom.K, dtype=dtype)
    if geom.N == 0:
        if dx is not None:
            dx[...] = 0
        dw[...] = 0
        db[...] = 0
    else:
        x5 = x.reshape(geom.x5)
        w5 = weight.reshape(geom.w5)
        dy5 = dy.reshape(geom.y5)
        if dx is not None:
            _run_input_grad(geom, dy5, w5, dx.reshape(geom.x5), n_threads)
        _run_weight_grad(geom, x5, dy5, dw.reshape(geom.w5), n_threads)
        _conv.bias_grad(dy.reshape(geom.N, geom.K, -1), db, n_threads)
    return (dx[0] if unbatched and dx is not None else dx), dw, db


def _run_input_grad(geom, dy5, w5, dx5, n_threads):
    algorithm = _input_grad_algorithm(geom, n_threads)
    if algorithm == "dense":
        # dX (N, R) = dY (N, K) @ W, computed as dX^T = W^T @ dY^T
        dx5.reshape(geom.N, -1)[...] = _dense(geom, w5.reshape(geom.K, -1).T,
                                              dy5.reshape(geom.N, geom.K).T).T
    elif algorithm == "depthwise":
        _conv.depthwise_input_grad(dy5, w5, dx5, geom.stride, geom.pad, geom.dilation,
                                   n_threads)
    elif algorithm == "transposed":
        _run_forward(geom.transposed(), dy5, _transposed_weight(geom, w5, n_threads), None,
                     dx5, n_threads)
    elif algorithm == "gemm":
        # Channel blocks: enough tasks for the threads, as few blocks as possible.
        blocks = min(geom.Cg, max(1, -(-4 * n_threads // (geom.N * geom.groups))))
        cblock = -(-geom.Cg // blocks)
        rows = cblock * math.prod(geom.kernel)
        with _single_threaded_blas():
            _conv.gemm_input_grad(dy5, w5, dx5, geom.stride, geom.pad, geom.dilation,
                                  geom.groups, cblock, _tile(geom, rows, math.prod(geom.out)),
                                  n_threads)
    else:
        _conv.direct_input_grad(dy5, w5, dx5, geom.stride, geom.pad, geom.dilation,
                                geom.groups, n_threads)


def _run_weight_grad(geom, x5, dy5, dw5, n_threads):
    algorithm = _window_local(geom, _algorithm(geom, "weight_grad", n_threads), "weight_grad",
                              (x5, dy5), n_threads)
    if algorithm == "dense":
        # dW (K, R) = dY^T @ X, computed as dW^T = X^T @ dY
        dw5.reshape(geom.K, -1)[...] = _dense(geom, x5.reshape(geom.N, -1).T,
                                              dy5.reshape(geom.N, geom.K).T, trans_b=1).T
    elif algorithm == "winograd":
        _run_winograd_weight_grad(geom, x5, dy5, dw5, n_threads)
    elif algorithm == "gemm":
        tile, cblock, images = _gemm_weight_grad_plan(geom, n_threads)
        with _single_threaded_blas():
            if cblock:
                _conv.gemm_weight_grad_cblocks(
                    x5, dy5, dw5, geom.stride, geom.pad, geom.dilation, geom.groups,
                    cblock, tile, images, n_threads)
            else:
                _conv.gemm_weight_grad(x5, dy5, dw5, geom.stride, geom.pad, geom.dilation,
                                       geom.groups, tile, n_threads)
    elif algorithm == "depthwise":
        _conv.depthwise_weight_grad(x5, dy5, dw5, geom.stride, geom.pad, geom.dilation,
                                    _depthwise_plan(geom, n_threads)[1], n_threads)
    elif algorithm == "padded":
        _conv.padded_weight_grad(x5, dy5, dw5, geom.stride, geom.pad, geom.dilation,
                                 geom.groups, n_threads)
    else:
        _conv.direct_weight_grad(x5, dy5, dw5, geom.stride, geom.pad, geom.dilation,
                                 geom.groups, n_threads)


# --- public API ----------------------------------------------------------------

_FORWARD_DOC = r"""%(nd)s-D convolution layer (cross-correlation), as
    :func:`torch.nn.functional.conv%(nd)sd`.

    .. math::

        y[n, k, o] = b[k] + \sum_{c < C/G} \sum_{f} w[k, c, f]\,
                     x[n, g(k) C/G + c,\; o s + f d - p]

    with ``x`` zero outside its bounds, over every output position ``o``
    (a %(nd)s-tuple) and kernel tap ``f``.

    Parameters
    ----------
    x : (N, C_in, %(spatial)s) or (C_in, %(spatial)s) array_like
        Input. An unbatched input gives an unbatched output.
    weight : (C_out, C_in / groups, %(kernel)s) array_like
        Filters.
    bias : (C_out,) array_like, optional
        Added to every output position of each channel.
    %(conv_stride)s
    %(conv_padding)s
    %(conv_dilation)s
    %(conv_groups)s
    %(conv_n_threads)s

    Returns
    -------
    y : (N, C_out, %(out)s) ndarray
        float32 when every input is float32, float64 otherwise (integers
        are promoted to float64). Each output size is
        ``(n + 2 p - d (k - 1) - 1) // s + 1``.

    Raises
    ------
    ValueError
        For a wrong rank, channels that do not match ``weight`` and
        ``groups``, ``out_channels`` not divisible by ``groups``, a kernel
        larger than the padded input (an empty output), a stride or dilation
        below 1, a negative padding, ``padding='same'`` with a stride above
        1, or a bias of the wrong length.
    TypeError
        For complex, object or other non-real dtypes, and non-integer
        parameters.

    See Also
    --------
    conv%(nd)sd_backward : The gradients of this layer.
    pyconvnet.signal.correlate : Correlation of two plain arrays.

    Notes
    -----
    Derived in :ref:`theory-conv-layer`.

    The kernel depends on the layer and the thread count, chosen by a
    fitted cost model (see the module notes): Winograd F(4x4, 3x3) or
    F(2x2, 3x3) for 3x3 kernels with unit stride (float32 results then
    differ from the direct sum by rounding of up to about 1e-5 of the
    largest output), im2col + BLAS for large layers, register-blocked
    direct loops for small ones, channel-blocked loops for depthwise layers.
    The inputs are never modified.

    Examples
    --------
    %(examples)s
    """

_BACKWARD_DOC = r"""Gradients of a %(nd)s-D convolution layer.

    Given the gradient ``grad_output`` of a loss with respect to the output
    of ``conv%(nd)sd(x, weight, bias, stride, padding, dilation, groups)``,
    return its gradients with respect to ``x``, ``weight`` and the bias, as
    PyTorch's autograd computes them:

    .. math::

        \frac{\partial L}{\partial x[n, c, i]} &= \sum_{k \in G(c)}
            \sum_{o s + f d - p = i} dy[n, k, o]\, w[k, c, f] \\
        \frac{\partial L}{\partial w[k, c, f]} &= \sum_{n, o} dy[n, k, o]\,
            x[n, g(k) C/G + c,\; o s + f d - p] \\
        \frac{\partial L}{\partial b[k]} &= \sum_{n, o} dy[n, k, o]

    The input gradient is the 'full' correlation of ``dy`` with the
    rotated kernel (input positions that no output reads, when the stride
    skips them, get 0); the weight gradient is the 'valid' correlation of
    ``x`` with ``dy``.

    Parameters
    ----------
    grad_output : (N, C_out, %(out)s) array_like
        Upstream gradient, of the forward output's shape (unbatched when
        ``x`` is).
    x : (N, C_in, %(spatial)s) or (C_in, %(spatial)s) array_like
        The forward input.
    weight : (C_out, C_in / groups, %(kernel)s) array_like
        The forward filters.
    %(conv_stride)s
    %(conv_padding)s
    %(conv_dilation)s
    %(conv_groups)s
    %(conv_n_threads)s
    compute_input_grad : bool, default True
        False skips the input gradient (``grad_input`` is then None), for
        a layer whose input needs none, such as a network's first layer.

    Returns
    -------
    grad_input : ndarray or None
        Of ``x``'s shape; None when ``compute_input_grad`` is False.
    grad_weight : ndarray
        Of ``weight``'s shape.
    grad_bias : (C_out,) ndarray
        The sum of ``grad_output`` over images and positions.

    Raises
    ------
    ValueError
        As :func:`conv%(nd)sd`, and for a ``grad_output`` whose shape is not the
        forward output's.
    TypeError
        As :func:`conv%(nd)sd`, and for a ``compute_input_grad`` that is not
        a bool.

    See Also
    --------
    conv%(nd)sd : The forward pass.

    Notes
    -----
    Derived in :ref:`theory-backprop-conv`.

    With unit stride the input gradient runs as a forward convolution of
    ``dy`` with the rotated, channel-swapped kernel and padding
    ``d (k - 1) - p``, unless the output is much smaller than the input;
    then, and with a larger stride, the products ``W^T dy`` are added back
    onto the input positions they came from (col2im). The weight
    gradient sums ``dy @ cols^T`` over images and tiles, or runs in the
    Winograd domain for 3x3 layers, or as direct loops. For a given thread
    count the results are the same from call to call.

    Examples
    --------
    %(examples)s
    """


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           n_threads=None):
    return _forward(1, x, weight, bias, stride, padding, dilation, groups, n_threads)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           n_threads=None):
    return _forward(2, x, weight, bias, stride, padding, dilation, groups, n_threads)


def conv3d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           n_threads=None):
    return _forward(3, x, weight, bias, stride, padding, dilation, groups, n_threads)


def conv1d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1,
                    *, n_threads=None, compute_input_grad=True):
    return _backward(1, grad_output, x, weight, stride, padding, dilation, groups,
                     n_threads, compute_input_grad)


def conv2d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1,
                    *, n_threads=None, compute_input_grad=True):
    return _backward(2, grad_output, x, weight, stride, padding, dilation, groups,
                     n_threads, compute_input_grad)


def conv3d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1,
                    *, n_threads=None, compute_input_grad=True):
    return _backward(3, grad_output, x, weight, stride, padding, dilation, groups,
                     n_threads, compute_input_grad)


_SHAPES = {1: ("L", "kL", "L_out"), 2: ("H, W", "kH, kW", "H_out, W_out"),
           3: ("D, H, W", "kD, kH, kW", "D_out, H_out, W_out")}

_EXAMPLES = {
    "conv1d": """\
    >>> import numpy as np
    >>> from pyconvnet.functional import conv1d
    >>> x = np.array([[[1.0, 2.0, 3.0, 4.0]]])        # N=1, C=1, L=4
    >>> w = np.array([[[1.0, 0.0, -1.0]]])            # K=1, C=1, k=3
    >>> conv1d(x, w)
    array([[[-2., -2.]]])
    >>> conv1d(x, w, padding="same")
    array([[[-2., -2., -2.,  3.]]])""",
    "conv2d": """\
    >>> import numpy as np
    >>> from pyconvnet.functional import conv2d
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> w = np.ones((2, 1, 2, 2))
    >>> y = conv2d(x, w, bias=[0.0, 100.0], stride=2)
    >>> y.shape
    (1, 2, 2, 2)
    >>> y[0, 0]
    array([[10., 18.],
           [42., 50.]])""",
    "conv3d": """\
    >>> import numpy as np
    >>> from pyconvnet.functional import conv3d
    >>> x = np.ones((1, 2, 3, 4, 5), dtype=np.float32)
    >>> conv3d(x, np.ones((4, 2, 3, 3, 3), dtype=np.float32), padding=1).shape
    (1, 4, 3, 4, 5)""",
    "conv1d_backward": """\
    >>> import numpy as np
    >>> from pyconvnet.functional import conv1d_backward
    >>> x = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    >>> w = np.array([[[1.0, 0.0, -1.0]]])
    >>> dx, dw, db = conv1d_backward(np.ones((1, 1, 2)), x, w)
    >>> dx
    array([[[ 1.,  1., -1., -1.]]])
    >>> dw, db
    (array([[[3., 5., 7.]]]), array([2.]))""",
    "conv2d_backward": """\
    >>> import numpy as np
    >>> from pyconvnet.functional import conv2d_backward
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> w = np.ones((1, 1, 2, 2))
    >>> dx, dw, db = conv2d_backward(np.ones((1, 1, 2, 2)), x, w, stride=2)
    >>> dx[0, 0]
    array([[1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.]])
    >>> dw[0, 0], db
    (array([[20., 24.],
           [36., 40.]]), array([4.]))""",
    "conv3d_backward": """\
    >>> import numpy as np
    >>> from pyconvnet.functional import conv3d_backward
    >>> x = np.ones((2, 1, 3, 3, 3))
    >>> dx, dw, db = conv3d_backward(np.ones((2, 1, 1, 1, 1)), x, np.ones((1, 1, 3, 3, 3)))
    >>> dx.shape, float(dw.sum()), db
    ((2, 1, 3, 3, 3), 54.0, array([2.]))""",
}

for _func in (conv1d, conv2d, conv3d):
    _nd = int(_func.__name__[4])
    _spatial, _kernel, _out = _SHAPES[_nd]
    _func.__doc__ = docformat(_FORWARD_DOC, nd=_nd, spatial=_spatial, kernel=_kernel,
                              out=_out, examples=_EXAMPLES[_func.__name__])
for _func in (conv1d_backward, conv2d_backward, conv3d_backward):
    _nd = int(_func.__name__[4])
    _spatial, _kernel, _out = _SHAPES[_nd]
    _func.__doc__ = docformat(_BACKWARD_DOC, nd=_nd, spatial=_spatial, kernel=_kernel,
                              out=_out, examples=_EXAMPLES[_func.__name__])
del _func, _nd, _spatial, _kernel, _out
