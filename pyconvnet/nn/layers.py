r"""Layers with a forward and a backward pass.

Every layer maps a batch ``x`` to ``y = forward(x)`` and, given the gradient
``dE/dy`` of a scalar loss ``E``, returns ``dE/dx = backward(dE/dy)`` and
stores ``dE/dθ`` for each of its parameters θ (see :meth:`Module.grads`).
Arrays are NCHW (batch, channels, height, width). Parameters are float32
unless a ``dtype`` is given; convert a model with ``model.astype(np.float64)``
for gradient checks.
"""

import numpy as np

from .. import _convolution as _conv
from .. import _pooling as _pool
from .. import shapes as _shapes
from .._docstrings import docformat
from ._module import Module
from .init import as_generator, initialize

__all__ = [
    "Conv1d", "Conv2d", "Conv3d", "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d",
    "AvgPool2d", "AvgPool3d", "AdaptiveAvgPool2d",
    "Subsampling", "MapCombination", "Linear", "ReLU", "Sigmoid", "Tanh",
    "Flatten", "Dropout", "BatchNorm2d",
]


def _float_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def _layout_text(nd):
    """The batched layout of an ``nd``-D layer's input, e.g. ``(N, C, H, W)``."""
    return "(N, C, " + ", ".join("DHW"[3 - nd:] if nd > 1 else "L") + ")"


def _check_input(x, ndim, layer, what):
    """``x`` as an ndarray of the layer's dtype with ``ndim`` dimensions.

    Layers whose ``what`` starts with ``(N, C`` also take an input without
    the batch dimension (see :class:`Module`), which the message says."""
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{layer}: the input must be real numbers, got dtype {x.dtype}")
    if x.ndim != ndim:
        alt = ""
        if what.startswith("(N, C"):
            alt = f" (or {ndim - 1}-dimensional (C{what[5:]} without the batch dimension)"
        raise ValueError(f"{layer} expects a {ndim}-dimensional input {what}{alt}, got "
                         f"shape {x.shape}")
    return x


# -- convolution -------------------------------------------------------------

class _ConvNd(Module):
    _nd = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, *, mask=None, init="he_uniform",
                 rng=None, dtype=np.float32, n_threads=None):
        super().__init__()
        from .._validation import check_int, check_padding, ntuple
        nd = self._nd
        self.in_channels = check_int(in_channels, "in_channels", 1)
        self.out_channels = check_int(out_channels, "out_channels", 1)
        self.kernel_size = ntuple(kernel_size, nd, "kernel_size", 1)
        self.stride = ntuple(stride, nd, "stride", 1)
        self.dilation = ntuple(dilation, nd, "dilation", 1)
        self.padding = check_padding(padding, "padding", nd)
        if self.padding == "same" and any(s != 1 for s in self.stride):
            raise ValueError("padding='same' requires stride 1")
        self.groups = check_int(groups, "groups", 1)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"in_channels ({self.in_channels}) and out_channels "
                             f"({self.out_channels}) must both be divisible by "
                             f"groups ({self.groups})")
        self.n_threads = n_threads
        dtype = _float_dtype(dtype)
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        fan_in = None
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape == shape[:2]:
                mask = np.broadcast_to(mask.reshape(shape[:2] + (1,) * nd), shape)
            if mask.shape != shape:
                raise ValueError(f"mask must have shape {shape[:2]} or {shape}, got "
                                 f"{mask.shape}")
            mask = (mask != 0).astype(dtype)
            # the effective fan-in is the number of connected inputs per output
            fan_in = max(1, int(mask.reshape(shape[0], -1).sum(axis=1).mean()))
        rng = as_generator(rng)
        w = initialize(init, shape, rng, dtype, fan_in)
        if mask is not None:
            w *= mask
            self._buffers["mask"] = mask
        self._params["weight"] = w
        if bias:
            self._params["bias"] = np.zeros(self.out_channels, dtype)
        self.init = init

    @property
    def mask(self):
        """The 0/1 connection mask, shaped like the weight, that holds cut
        weights at zero; None when every output map sees every input map."""
        return self._buffers.get("mask")

    def _effective_weight(self):
        w = self._params["weight"]
        m = self._buffers.get("mask")
        return w if m is None else w * m

    def _geometry(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups)

    def forward(self, x):
        name = f"Conv{self._nd}d"
        x = _check_input(x, self._nd + 2, name, _layout_text(self._nd))
        if x.shape[1] != self.in_channels:
            raise ValueError(f"{name} expects {self.in_channels} input channels, got "
                             f"{x.shape[1]} (input shape {x.shape})")
        w = self._effective_weight()
        f = (_conv.conv1d, _conv.conv2d, _conv.conv3d)[self._nd - 1]
        y = f(x, w, self._params.get("bias"), n_threads=self.n_threads,
              **self._geometry())
        self._cache = (x, w)
        return y

    def backward(self, grad):
        return self._backward(grad, True)

    def _backward(self, grad, input_grad):
        x, w = self._cached()
        f = (_conv.conv1d_backward, _conv.conv2d_backward,
             _conv.conv3d_backward)[self._nd - 1]
        dx, dw, db = f(grad, x, w, n_threads=self.n_threads,
                       compute_input_grad=bool(input_grad), **self._geometry())
        m = self._buffers.get("mask")
        if m is not None:
            dw *= m
        self._grads["weight"] = dw
        if "bias" in self._params:
            self._grads["bias"] = db
        return dx

    def extra_repr(self):
        k = self.kernel_size if self._nd > 1 else self.kernel_size[0]
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={k}"
        if any(v != 1 for v in self.stride):
            s += f", stride={self.stride}"
        if self.padding not in ("valid",) and self.padding != (0,) * self._nd:
            s += f", padding={self.padding!r}"
        if any(v != 1 for v in self.dilation):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if "bias" not in self._params:
            s += ", bias=False"
        if self.mask is not None:
            pairs = sum(len(row) for row in self.connection_table())
            s += f", connections={pairs}/{self.out_channels * self.mask.shape[1]}"
        return s

    def connection_table(self):
        """For each output map, the input maps it reads (None when fully connected)."""
        m = self.mask
        if m is None:
            return None
        pairs = (m.reshape(m.shape[:2] + (-1,)) != 0).any(axis=2)
        return tuple(tuple(int(i) for i in np.flatnonzero(row)) for row in pairs)

    def layer_specs(self):
        pad = self.padding
        spec = dict(out_channels=self.out_channels,
                    kernel_size=self.kernel_size, stride=self.stride,
                    padding=pad if isinstance(pad, str) else tuple(pad),
                    dilation=self.dilation, groups=self.groups,
                    bias="bias" in self._params, in_channels=self.in_channels)
        table = self.connection_table()
        if table is not None and self.groups == 1:
            spec["connections"] = table
        return _shapes.conv(**spec)


_CONV_DOC = r"""%(nd)s-D convolution layer (cross-correlation, as PyTorch's Conv%(nd)sd).

    .. math:: y[n, k] = b[k] + \sum_c (w[k, c] \star x[n, g(k) C/G + c])

    Forward and backward run :func:`pyconvnet.functional.conv%(nd)sd` and
    :func:`pyconvnet.functional.conv%(nd)sd_backward`. Takes a batch
    ``(N, C, ...)`` or, as PyTorch, one input without the batch dimension.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, dilation : int or tuple of int
    padding : int, tuple of int, 'same' or 'valid'
        The strings in any case (``"SAME"`` is ``'same'``).
    groups : int
    bias : bool
    mask : array_like, optional
        A connection mask of shape ``(out_channels, in_channels / groups)``
        (or the weight's shape): zero entries cut the connection. The
        weight is multiplied by the mask in the forward pass and its
        gradient by the mask in the backward pass, so masked weights stay
        zero through training (LeNet-5's sparse C3 table).
    init : str or callable
        Weight initialiser (see :mod:`pyconvnet.nn.init`); biases start at 0.
        With a mask, the fan-in counts only connected inputs.
    rng : int, Generator or None
        Seed of the initialiser.
    dtype : float32 or float64
    n_threads : int, optional
        Threads of the kernels (None: all).

    Notes
    -----
    Derived in :ref:`theory-conv-layer` and :ref:`theory-backprop-conv`.

    Examples
    --------
    %(example)s
"""

_CONV_EXAMPLES = {
    1: """    >>> import numpy as np
    >>> from pyconvnet.nn import Conv1d
    >>> conv = Conv1d(2, 4, 3, padding="same", rng=0)
    >>> conv.forward(np.ones((8, 2, 10), np.float32)).shape
    (8, 4, 10)""",
    2: """    >>> import numpy as np
    >>> from pyconvnet.nn import Conv2d
    >>> conv = Conv2d(1, 6, 5, rng=0)
    >>> conv
    Conv2d(1, 6, kernel_size=(5, 5))
    >>> y = conv.forward(np.zeros((2, 1, 32, 32), np.float32))
    >>> y.shape
    (2, 6, 28, 28)
    >>> conv.backward(np.ones_like(y)).shape, conv.grads()["bias"]
    ((2, 1, 32, 32), array([1568., 1568., 1568., 1568., 1568., 1568.], dtype=float32))""",
    3: """    >>> import numpy as np
    >>> from pyconvnet.nn import Conv3d
    >>> Conv3d(1, 2, 3, stride=2, rng=0).forward(np.ones((1, 1, 5, 5, 5))).shape
    (1, 2, 2, 2, 2)""",
}


class Conv1d(_ConvNd):
    __doc__ = docformat(_CONV_DOC, nd=1, example=_CONV_EXAMPLES[1])
    _nd = 1
    _batched_ndim = 3


class Conv2d(_ConvNd):
    __doc__ = docformat(_CONV_DOC, nd=2, example=_CONV_EXAMPLES[2])
    _nd = 2
    _batched_ndim = 4


class Conv3d(_ConvNd):
    __doc__ = docformat(_CONV_DOC, nd=3, example=_CONV_EXAMPLES[3])
    _nd = 3
    _batched_ndim = 5


# -- pooling ---------------------------------------------------------------

def _pool_repr(layer):
    """The arguments a pooling layer shows in its repr: the kernel size,
    and the stride and padding where they are set."""
    s = f"kernel_size={layer.kernel_size}"
    if layer.stride is not None:
        s += f", stride={layer.stride}"
    if layer.padding:
        s += f", padding={layer.padding}"
    return s


_MAXPOOL_DOC = """%(nd)s-D max pooling (as PyTorch's MaxPool%(nd)sd).

    The backward pass sends each upstream gradient to its window's maximum.
    Takes ``(N, C, %(dims)s)`` or, without the batch dimension,
    ``(C, %(dims)s)``.

    Parameters
    ----------
    kernel_size : int or tuple of int
    %(layer_pool_stride)s
    padding, dilation : int or tuple of int
    ceil_mode : bool
    return_indices : bool
        Return ``(output, indices)`` from :meth:`forward`, the indices as
        :func:`pyconvnet.functional.max_pool%(nd)sd` gives them (the flat
        position of each maximum in its input plane, as PyTorch's);
        :meth:`backward` still takes the gradient of the output only.
    n_threads : int, optional

    Notes
    -----
    Derived in :ref:`theory-backprop-maxpool`.

    Examples
    --------
    %(example)s
"""

_MAXPOOL_EXAMPLES = {
    1: """    >>> import numpy as np
    >>> from pyconvnet.nn import MaxPool1d
    >>> MaxPool1d(2).forward(np.array([[[1.0, 3.0, 2.0, 0.0]]]))
    array([[[3., 2.]]])""",
    2: """    >>> import numpy as np
    >>> from pyconvnet.nn import MaxPool2d
    >>> pool = MaxPool2d(2)
    >>> y = pool.forward(np.arange(16.0).reshape(1, 1, 4, 4))
    >>> y[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    >>> pool.backward(np.ones_like(y))[0, 0]
    array([[0., 0., 0., 0.],
           [0., 1., 0., 1.],
           [0., 0., 0., 0.],
           [0., 1., 0., 1.]])
    >>> MaxPool2d(2, return_indices=True).forward(np.arange(16.0).reshape(1, 4, 4))[1]
    array([[[ 5,  7],
            [13, 15]]])""",
    3: """    >>> import numpy as np
    >>> from pyconvnet.nn import MaxPool3d
    >>> MaxPool3d(2).forward(np.ones((1, 2, 4, 4, 4))).shape
    (1, 2, 2, 2, 2)""",
}

_AVGPOOL_DOC = """%(nd)s-D average pooling (as PyTorch's AvgPool%(nd)sd).

    The backward pass spreads each upstream gradient evenly over its window
    (divided by the window's divisor). Takes ``(N, C, %(dims)s)`` or,
    without the batch dimension, ``(C, %(dims)s)``.

    Parameters
    ----------
    kernel_size : int or tuple of int
    %(layer_pool_stride)s
    padding : int or tuple of int
    ceil_mode, count_include_pad : bool
    divisor_override : int, optional
        A fixed non-zero divisor for every window (PyTorch's
        ``divisor_override``, which PyTorch's AvgPool1d lacks).
    n_threads : int, optional

    Notes
    -----
    Derived in :ref:`theory-backprop-avgpool`.

    Examples
    --------
    %(example)s
"""

_AVGPOOL_EXAMPLES = {
    1: """    >>> import numpy as np
    >>> from pyconvnet.nn import AvgPool1d
    >>> AvgPool1d(2).forward(np.array([[[1.0, 3.0, 2.0, 0.0]]]))
    array([[[2., 1.]]])""",
    2: """    >>> import numpy as np
    >>> from pyconvnet.nn import AvgPool2d
    >>> pool = AvgPool2d(2)
    >>> y = pool.forward(np.arange(16.0).reshape(1, 1, 4, 4))
    >>> y[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    >>> pool.backward(np.ones_like(y))[0, 0, 0]
    array([0.25, 0.25, 0.25, 0.25])
    >>> AvgPool2d(2, divisor_override=1).forward(np.ones((1, 2, 2)))
    array([[[4.]]])""",
    3: """    >>> import numpy as np
    >>> from pyconvnet.nn import AvgPool3d
    >>> AvgPool3d(2).forward(np.ones((1, 2, 4, 4, 4))).shape
    (1, 2, 2, 2, 2)""",
}


def _pool_doc(template, examples, nd):
    return docformat(template, nd=nd, dims=", ".join("DHW"[3 - nd:]) if nd > 1 else "L",
                     example=examples[nd])


class _MaxPoolNd(Module):
    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 ceil_mode=False, return_indices=False, *, n_threads=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride
        self.padding, self.dilation, self.ceil_mode = padding, dilation, ceil_mode
        self.return_indices = bool(return_indices)
        self.n_threads = n_threads

    def forward(self, x):
        nd = self._nd
        x = _check_input(x, nd + 2, f"MaxPool{nd}d", _layout_text(nd))
        f = (_pool.max_pool1d, _pool.max_pool2d, _pool.max_pool3d)[nd - 1]
        y, idx = f(x, self.kernel_size, self.stride, self.padding, self.dilation,
                   self.ceil_mode, True, n_threads=self.n_threads)
        self._cache = (idx, x.shape)
        return (y, idx.copy()) if self.return_indices else y

    def backward(self, grad):
        idx, shape = self._cached()
        f = (_pool.max_pool1d_backward, _pool.max_pool2d_backward,
             _pool.max_pool3d_backward)[self._nd - 1]
        return f(grad, idx, shape, n_threads=self.n_threads)

    def extra_repr(self):
        s = _pool_repr(self)
        return s + (", return_indices=True" if self.return_indices else "")

    def layer_specs(self):
        return _shapes.max_pool(self.kernel_size, self.stride, self.padding,
                                self.dilation, self.ceil_mode)


class _AvgPoolNd(Module):
    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None, *, n_threads=None):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override
        self.n_threads = n_threads

    def _args(self):
        return (self.kernel_size, self.stride, self.padding, self.ceil_mode,
                self.count_include_pad, self.divisor_override)

    def forward(self, x):
        nd = self._nd
        x = _check_input(x, nd + 2, f"AvgPool{nd}d", _layout_text(nd))
        f = (_pool.avg_pool1d, _pool.avg_pool2d, _pool.avg_pool3d)[nd - 1]
        y = f(x, *self._args(), n_threads=self.n_threads)
        self._cache = x.shape
        return y

    def backward(self, grad):
        shape = self._cached()
        f = (_pool.avg_pool1d_backward, _pool.avg_pool2d_backward,
             _pool.avg_pool3d_backward)[self._nd - 1]
        return f(grad, shape, *self._args(), n_threads=self.n_threads)

    def extra_repr(self):
        s = _pool_repr(self)
        if self.divisor_override is not None:
            s += f", divisor_override={self.divisor_override}"
        return s

    def layer_specs(self):
        return _shapes.avg_pool(self.kernel_size, self.stride, self.padding,
                                self.ceil_mode)


class MaxPool1d(_MaxPoolNd):
    __doc__ = _pool_doc(_MAXPOOL_DOC, _MAXPOOL_EXAMPLES, 1)
    _nd = 1
    _batched_ndim = 3


class MaxPool2d(_MaxPoolNd):
    __doc__ = _pool_doc(_MAXPOOL_DOC, _MAXPOOL_EXAMPLES, 2)
    _nd = 2
    _batched_ndim = 4


class MaxPool3d(_MaxPoolNd):
    __doc__ = _pool_doc(_MAXPOOL_DOC, _MAXPOOL_EXAMPLES, 3)
    _nd = 3
    _batched_ndim = 5


class AvgPool1d(_AvgPoolNd):
    __doc__ = _pool_doc(_AVGPOOL_DOC, _AVGPOOL_EXAMPLES, 1)
    _nd = 1
    _batched_ndim = 3


class AvgPool2d(_AvgPoolNd):
    __doc__ = _pool_doc(_AVGPOOL_DOC, _AVGPOOL_EXAMPLES, 2)
    _nd = 2
    _batched_ndim = 4


class AvgPool3d(_AvgPoolNd):
    __doc__ = _pool_doc(_AVGPOOL_DOC, _AVGPOOL_EXAMPLES, 3)
    _nd = 3
    _batched_ndim = 5


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size (as PyTorch's AdaptiveAvgPool2d).

    Parameters
    ----------
    output_size : int or tuple of (int or None)

    Notes
    -----
    Derived in :ref:`theory-pooling` and :ref:`theory-backprop-avgpool`.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconvnet.nn import AdaptiveAvgPool2d
    >>> AdaptiveAvgPool2d(1).forward(np.arange(8.0).reshape(1, 2, 2, 2))[:, :, 0, 0]
    array([[1.5, 5.5]])
    """

    _batched_ndim = 4

    def __init__(self, output_size, *, n_threads=None):
        super().__init__()
        self.output_size = output_size
        self.n_threads = n_threads

    def forward(self, x):
        x = _check_input(x, 4, "AdaptiveAvgPool2d", "(N, C, H, W)")
        y = _pool.adaptive_avg_pool2d(x, self.output_size, n_threads=self.n_threads)
        self._cache = x.shape
        return y

    def backward(self, grad):
        shape = self._cached()
        return _pool.adaptive_avg_pool2d_backward(grad, shape, n_threads=self.n_threads)

    def extra_repr(self):
        return f"output_size={self.output_size}"

    def layer_specs(self):
        size = self.output_size
        return _shapes.adaptive_avg_pool(tuple(size) if isinstance(size, list) else size)


class Subsampling(Module):
    r"""LeNet's trainable subsampling: a window sum times a coefficient plus a bias.

    .. math:: y[n, c, i, j] = \beta_c \sum_{(u, v) \in W(i, j)} x[n, c, u, v] + b_c

    over non-overlapping ``k x k`` windows (stride ``k``; rows and columns
    left over at the bottom and right are ignored), one trainable
    coefficient :math:`\beta_c` and bias :math:`b_c` per map (LeCun 1998;
    Bouvrie's notes write it ``down(x)`` times :math:`\beta`). The squashing
    function that LeNet applies afterwards is a separate layer. Forward and
    backward run :func:`pyconvnet.functional.subsample2d` and
    :func:`pyconvnet.functional.subsample2d_backward`. Gradients:

    .. math::

        \frac{\partial E}{\partial x[n,c,u,v]} = \beta_c\,
            \frac{\partial E}{\partial y[n,c,i(u),j(v)]}, \quad
        \frac{\partial E}{\partial \beta_c} = \sum_{n,i,j}
            \frac{\partial E}{\partial y[n,c,i,j]}\, \mathrm{down}(x)[n,c,i,j], \quad
        \frac{\partial E}{\partial b_c} = \sum_{n,i,j}
            \frac{\partial E}{\partial y[n,c,i,j]}

    Parameters
    ----------
    channels : int
        Number of feature maps.
    kernel_size : int
        Window size (and stride).
    beta : float
        Initial coefficient; the default ``1 / k**2`` starts as average pooling.
    dtype : float32 or float64
    n_threads : int, optional

    Notes
    -----
    Derived in :ref:`theory-subsampling` and :ref:`theory-backprop-subsampling`.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconvnet.nn import Subsampling
    >>> s = Subsampling(1, 2, beta=1.0, dtype=np.float64)
    >>> y = s.forward(np.arange(16.0).reshape(1, 1, 4, 4))
    >>> y[0, 0]
    array([[10., 18.],
           [42., 50.]])
    >>> s.backward(np.ones_like(y)).shape, s.grads()["beta"]
    ((1, 1, 4, 4), array([120.]))
    """

    _batched_ndim = 4

    def __init__(self, channels, kernel_size=2, *, beta=None, dtype=np.float32,
                 n_threads=None):
        super().__init__()
        from .._validation import check_int
        self.channels = check_int(channels, "channels", 1)
        self.kernel_size = check_int(kernel_size, "kernel_size", 1)
        dtype = _float_dtype(dtype)
        beta = 1.0 / self.kernel_size ** 2 if beta is None else float(beta)
        self._params["beta"] = np.full(self.channels, beta, dtype)
        self._params["bias"] = np.zeros(self.channels, dtype)
        self.n_threads = n_threads

    def forward(self, x):
        x = _check_input(x, 4, "Subsampling", "(N, C, H, W)")
        if x.shape[1] != self.channels:
            raise ValueError(f"Subsampling expects {self.channels} maps, got "
                             f"{x.shape[1]} (input shape {x.shape})")
        beta, b = self._params["beta"], self._params["bias"]
        y = _pool.subsample2d(x, self.kernel_size, beta, b, n_threads=self.n_threads)
        self._cache = (x, beta)
        return y

    def backward(self, grad):
        x, beta = self._cached()
        dx, dbeta, db = _pool.subsample2d_backward(grad, x, self.kernel_size, beta,
                                                   n_threads=self.n_threads)
        self._grads["beta"] = dbeta.astype(beta.dtype, copy=False)
        self._grads["bias"] = db.astype(beta.dtype, copy=False)
        return dx

    def extra_repr(self):
        return f"{self.channels}, kernel_size={self.kernel_size}"

    def layer_specs(self):
        return _shapes.subsampling(self.kernel_size)


class MapCombination(Module):
    r"""A learned convex combination of input maps (Bouvrie's notes, section 3.3).

    .. math::

        y[n, j] = \sum_i \alpha_{ij}\, x[n, i] + b_j, \qquad
        \alpha_{ij} = \frac{\exp c_{ij}}{\sum_k \exp c_{kj}}

    Each output map ``j`` mixes the input maps with weights that are a
    softmax over the inputs of the trainable column ``c[:, j]``, plus the
    trainable bias :math:`b_j` of Bouvrie's
    :math:`x_j = f(\sum_i \alpha_{ij} (x_i \star k_i) + b_j)` (the squashing
    :math:`f` and the kernels :math:`k_i` are separate layers). The
    gradient goes through the softmax:

    .. math::

        \frac{\partial E}{\partial \alpha_{ij}} = \sum_{n,u,v}
            \frac{\partial E}{\partial y[n,j,u,v]}\, x[n,i,u,v], \qquad
        \frac{\partial E}{\partial c_{kj}} = \sum_i
            \frac{\partial E}{\partial \alpha_{ij}}\, \alpha_{ij}
            (\delta_{ik} - \alpha_{kj}), \qquad
        \frac{\partial E}{\partial b_j} = \sum_{n,u,v}
            \frac{\partial E}{\partial y[n,j,u,v]}.

    Two penalties can be added to the loss; :meth:`penalty` returns their
    value and :meth:`backward` adds their gradient to that of ``c``:

    * ``sparsity=lambda``: Bouvrie's L1 penalty
      :math:`\lambda \sum_{ij} |\alpha_{ij}|`, as written in the notes. On
      softmax weights it is the constant :math:`\lambda J` and its gradient
      is zero (see Notes): it does **not** make the weights sparser.
    * ``entropy=mu``: :math:`\mu \sum_j H(\alpha_{:,j})` with
      :math:`H(\alpha) = -\sum_i \alpha_i \log \alpha_i`, smallest when a
      column has a single non-zero weight; its gradient
      :math:`-\mu\, \alpha_{kj} (\log \alpha_{kj} + H(\alpha_{:,j}))` drives
      each output towards reading one input. This is the penalty that
      sparsifies.

    Parameters
    ----------
    in_maps, out_maps : int
    bias : bool
        Learn :math:`b_j` (starts at 0).
    sparsity : float
        :math:`\lambda \ge 0` of the L1 penalty (a constant; see above).
    entropy : float
        :math:`\mu \ge 0` of the entropy penalty.
    rng : int, Generator or None
        Seed of the initial ``c`` (small normal values, so that every
        combination starts near the plain average).
    dtype : float32 or float64

    Notes
    -----
    Derived in :ref:`theory-map-combinations`.

    Softmax weights are positive and each column sums to one, so
    :math:`\sum_{ij} |\alpha_{ij}| = J` (the number of output maps) for every
    ``c``, and the gradient of the L1 penalty through the softmax is zero up
    to rounding: :math:`\sum_i \lambda\,\alpha_i (\delta_{ik} - \alpha_k) =
    \lambda \alpha_k (1 - \sum_i \alpha_i) = 0`. The term is implemented as
    written (value and gradient) and gradient-checked, but on its own it
    does not make the combination sparser; ``entropy`` does.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconvnet.nn import MapCombination
    >>> mc = MapCombination(3, 2, rng=0)
    >>> mc.alpha().sum(axis=0)
    array([1., 1.], dtype=float32)
    >>> mc.forward(np.ones((4, 3, 5, 5), np.float32)).shape
    (4, 2, 5, 5)
    >>> sorted(mc.params())
    ['bias', 'c']
    """

    _batched_ndim = 4

    def __init__(self, in_maps, out_maps, bias=True, *, sparsity=0.0, entropy=0.0,
                 rng=None, dtype=np.float32):
        super().__init__()
        from .._validation import check_int
        self.in_maps = check_int(in_maps, "in_maps", 1)
        self.out_maps = check_int(out_maps, "out_maps", 1)
        for name, value in (("sparsity", sparsity), ("entropy", entropy)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not value >= 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        self.sparsity, self.entropy = float(sparsity), float(entropy)
        dtype = _float_dtype(dtype)
        rng = as_generator(rng)
        self._params["c"] = (0.1 * rng.standard_normal((self.in_maps, self.out_maps))
                             ).astype(dtype)
        if bias:
            self._params["bias"] = np.zeros(self.out_maps, dtype)

    def _log_alpha(self):
        c = self._params["c"]
        shifted = c - c.max(axis=0, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))

    def alpha(self):
        """The combination weights, ``softmax(c)`` over the input maps (axis 0)."""
        c = self._params["c"]
        e = np.exp(c - c.max(axis=0, keepdims=True))
        return e / e.sum(axis=0, keepdims=True)

    def column_entropy(self):
        r""":math:`H(\alpha_{:,j}) = -\sum_i \alpha_{ij} \log \alpha_{ij}` of each
        output map ``j`` (0 when it reads one input, :math:`\log I` when it
        averages all ``I``)."""
        log_a = self._log_alpha()
        return -(np.exp(log_a) * log_a).sum(axis=0)

    def penalty(self):
        value = 0.0
        if self.sparsity:
            value += self.sparsity * float(np.abs(self.alpha()).sum())
        if self.entropy:
            value += self.entropy * float(self.column_entropy().sum())
        return value

    def forward(self, x):
        x = _check_input(x, 4, "MapCombination", "(N, C, H, W)")
        if x.shape[1] != self.in_maps:
            raise ValueError(f"MapCombination expects {self.in_maps} maps, got "
                             f"{x.shape[1]} (input shape {x.shape})")
        a = self.alpha()
        y = np.einsum("nihw,ij->njhw", x, a.astype(np.result_type(x, a), copy=False),
                      optimize=True)
        b = self._params.get("bias")
        if b is not None:
            y += b[:, None, None]
        self._cache = (x, a)
        return y

    def backward(self, grad):
        x, a = self._cached()
        grad = np.asarray(grad)
        dalpha = np.einsum("njhw,nihw->ij", grad, x, optimize=True)
        if self.sparsity:
            dalpha = dalpha + self.sparsity * np.sign(a)
        if self.entropy:
            # dH/dalpha = -(log alpha + 1); the +1 cancels through the softmax
            dalpha = dalpha - self.entropy * self._log_alpha()
        # through the softmax, column by column: a * (dalpha - sum_i dalpha_i a_i)
        dc = a * (dalpha - (dalpha * a).sum(axis=0, keepdims=True))
        self._grads["c"] = dc.astype(self._params["c"].dtype, copy=False)
        if "bias" in self._params:
            self._grads["bias"] = grad.sum(axis=(0, 2, 3)).astype(
                self._params["bias"].dtype, copy=False)
        return np.einsum("njhw,ij->nihw", grad, a.astype(grad.dtype, copy=False),
                         optimize=True)

    def extra_repr(self):
        s = f"{self.in_maps}, {self.out_maps}"
        s += "" if "bias" in self._params else ", bias=False"
        s += f", sparsity={self.sparsity}" if self.sparsity else ""
        return s + (f", entropy={self.entropy}" if self.entropy else "")

    def layer_specs(self):
        # a 1x1 mixing of maps: in_maps * out_maps weights and out_maps biases
        return _shapes.conv(self.out_maps, 1, bias="bias" in self._params,
                            in_channels=self.in_maps)


# -- fully connected and element-wise ------------------------------------------

class Linear(Module):
    r"""Fully connected layer: :math:`y = x W^T + b`.

    Gradients: :math:`\partial E/\partial x = g W`, :math:`\partial E/\partial W
    = g^T x`, :math:`\partial E/\partial b = \sum_n g_n` for the upstream
    gradient :math:`g`.

    Takes an input of shape ``(*, in_features)``, any number of leading
    dimensions (one example ``(in_features,)`` too), as PyTorch's Linear,
    and returns ``(*, out_features)``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    init : str or callable
    rng : int, Generator or None
    dtype : float32 or float64

    Notes
    -----
    Derived in :ref:`theory-backprop-conv` and :ref:`theory-parameter-count`.

    A linear layer is a convolution whose kernel covers the whole input.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconvnet.nn import Linear
    >>> fc = Linear(3, 2, rng=0)
    >>> fc.forward(np.ones((4, 3), np.float32)).shape
    (4, 2)
    >>> fc
    Linear(3, 2)
    """

    def __init__(self, in_features, out_features, bias=True, *, init="he_uniform",
                 rng=None, dtype=np.float32):
        super().__init__()
        from .._validation import check_int
        self.in_features = check_int(in_features, "in_features", 1)
        self.out_features = check_int(out_features, "out_features", 1)
        dtype = _float_dtype(dtype)
        self._params["weight"] = initialize(init, (self.out_features, self.in_features),
                                            as_generator(rng), dtype)
        if bias:
            self._params["bias"] = np.zeros(self.out_features, dtype)

    def forward(self, x):
        if not isinstance(x, np.ndarray):
            x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"Linear: the input must be real numbers, got dtype {x.dtype}")
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            got = x.shape[-1] if x.ndim else "none"
            raise ValueError(f"Linear expects {self.in_features} input features, got {got} "
                             f"(input shape {x.shape}; it takes (*, {self.in_features}))")
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        w = self._params["weight"]
        y = x2 @ w.T
        b = self._params.get("bias")
        if b is not None:
            y += b
        self._cache = (x2, lead)
        return y.reshape(lead + (self.out_features,))

    def backward(self, grad):
        x2, lead = self._cached()
        w = self._params["weight"]
        g2 = np.asarray(grad).reshape(-1, self.out_features)
        self._grads["weight"] = (g2.T @ x2).astype(w.dtype, copy=False)
        if "bias" in self._params:
            self._grads["bias"] = g2.sum(axis=0).astype(w.dtype, copy=False)
        return (g2 @ w).reshape(lead + (self.in_features,))

    def extra_repr(self):
        s = f"{self.in_features}, {self.out_features}"
        return s + ("" if "bias" in self._params else ", bias=False")

    def layer_specs(self):
        return _shapes.linear(self.out_features, "bias" in self._params,
                              in_features=self.in_features)


class ReLU(Module):
    """Rectified linear unit, ``max(x, 0)``; the gradient passes where ``x > 0``.

    Parameters
    ----------
    inplace : bool
        Overwrite the input with the output in :meth:`forward`, and the
        upstream gradient with the result in :meth:`backward` (saves an
        allocation per call). Only safe when nothing else keeps those
        arrays: no layer keeps the array it returns, so in-place is safe
        after any layer (the input of the first layer of a model is the
        caller's array, which it overwrites, as PyTorch's does).

    Notes
    -----
    See :ref:`theory-activations`.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconvnet.nn import ReLU
    >>> r = ReLU()
    >>> r.forward(np.array([-1.0, 0.5]))
    array([0. , 0.5])
    >>> r.backward(np.array([3.0, 3.0]))
    array([0., 3.])
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, x):
        x = np.asarray(x)
        if self.inplace and x.dtype.kind == "f" and x.flags.writeable:
            y = np.maximum(x, 0, out=x)
        else:
            y = np.maximum(x, 0)
        # the mask, not y: a later in-place layer may overwrite y
        self._cache = (y > 0, y.dtype)
        return y

    def backward(self, grad):
        mask, dtype = self._cached()
        if self.inplace and isinstance(grad, np.ndarray) and grad.dtype == dtype \
                and grad.flags.writeable:
            return np.multiply(grad, mask, out=grad)
        return np.multiply(grad, mask)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""

    def layer_specs(self):
        return _shapes.activation("relu")


class Sigmoid(Module):
    r"""Logistic function :math:`\sigma(x) = 1/(1+e^{-x})`, derivative :math:`\sigma(1-\sigma)`.

    Notes
    -----
    See :ref:`theory-activations`.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconvnet.nn import Sigmoid
    >>> Sigmoid().forward(np.array([0.0]))
    array([0.5])
    """

    def forward(self, x):
        x = np.asarray(x)
        # exp of a non-positive number only: no overflow for large |x|
        e = np.exp(-np.abs(x))
        y = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype if x.dtype.kind == "f"
                                                               else np.float64)
        # the derivative, not y: a later in-place layer may overwrite y
        self._cache = y * (1 - y)
        return y

    def backward(self, grad):
        return grad * self._cached()

    def layer_specs(self):
        return _shapes.activation("sigmoid")


class Tanh(Module):
    r"""Scaled hyperbolic tangent :math:`A \tanh(S x)`, derivative :math:`A S (1 - \tanh^2)`.

    Parameters
    ----------
    scale_out, scale_in : float
        :math:`A` and :math:`S`; the defaults give the plain tanh. LeCun
        (1998) used :math:`A = 1.7159`, :math:`S = 2/3`.
    inplace : bool
        Compute the tanh in the input's memory (see :class:`ReLU`).

    Notes
    -----
    See :ref:`theory-activations`.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconvnet.nn import Tanh
    >>> t = Tanh()
    >>> t.forward(np.array([0.0, 100.0]))
    array([0., 1.])
    >>> t.backward(np.array([2.0, 2.0]))
    array([2., 0.])
    """

    def __init__(self, scale_out=1.0, scale_in=1.0, inplace=False):
        super().__init__()
        self.scale_out, self.scale_in = float(scale_out), float(scale_in)
        self.inplace = bool(inplace)

    def forward(self, x):
        x = np.asarray(x)
        if self.inplace and x.dtype.kind == "f" and x.flags.writeable:
            if self.scale_in != 1:
                x *= self.scale_in
            t = np.tanh(x, out=x)
        else:
            t = np.tanh(x * self.scale_in if self.scale_in != 1 else x)
        # the derivative, not t: a later in-place layer may overwrite t
        d = 1 - t * t
        k = self.scale_out * self.scale_in
        if k != 1:
            d *= k
        self._cache = d
        return t * self.scale_out if self.scale_out != 1 else t

    def backward(self, grad):
        return grad * self._cached()

    def extra_repr(self):
        parts = [] if self.scale_out == 1 and self.scale_in == 1 else [
            f"scale_out={self.scale_out:.6g}", f"scale_in={self.scale_in:.6g}"]
        return ", ".join(parts + (["inplace=True"] if self.inplace else []))

    def layer_specs(self):
        return _shapes.activation("tanh")


class Flatten(Module):
    """Flatten every dimension but the first (batch) one.

    Notes
    -----
    See :ref:`theory-architectures`.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconvnet.nn import Flatten
    >>> f = Flatten()
    >>> f.forward(np.zeros((2, 3, 4, 5))).shape, f.backward(np.zeros((2, 60))).shape
    ((2, 60), (2, 3, 4, 5))
    """

    def forward(self, x):
        x = np.asarray(x)
        if x.ndim < 1:
            raise ValueError("Flatten needs at least a batch dimension")
        self._cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad):
        return np.asarray(grad).reshape(self._cached())

    def layer_specs(self):
        return _shapes.flatten()


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability ``p``
    and scale the others by ``1 / (1 - p)``; the identity in evaluation mode.

    Parameters
    ----------
    p : float
        Drop probability in [0, 1).
    rng : int, Generator or None
        Seed of the masks.

    Notes
    -----
    See :ref:`theory-alexnet`.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconvnet.nn import Dropout
    >>> d = Dropout(0.5, rng=0)
    >>> y = d.forward(np.ones((1000,)))
    >>> sorted(set(y.tolist()))
    [0.0, 2.0]
    >>> d.eval().forward(np.ones(3))
    array([1., 1., 1.])
    """

    def __init__(self, p=0.5, *, rng=None):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"p must be a probability in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = as_generator(rng)

    def forward(self, x):
        x = np.asarray(x)
        if not self.training or self.p == 0:
            self._cache = None
            self._identity = True
            return x
        self._identity = False
        keep = self.rng.random(x.shape) >= self.p
        scale = np.asarray(1.0 / (1.0 - self.p), dtype=x.dtype if x.dtype.kind == "f"
                           else np.float64)
        mask = keep * scale
        self._cache = mask
        return x * mask

    def backward(self, grad):
        if getattr(self, "_identity", None) is True:
            return grad
        return grad * self._cached()

    def extra_repr(self):
        return f"p={self.p}"

    def layer_specs(self):
        return _shapes.dropout(self.p)


class BatchNorm2d(Module):
    r"""Batch normalisation over the channels of NCHW arrays.

    .. math:: y = \gamma \frac{x - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}} + \beta

    with the mean and (biased) variance over batch, height and width in
    training mode, and the running averages (the running variance unbiased,
    as in PyTorch) in evaluation mode. Backward, with :math:`\hat x` the
    normalised input and :math:`m` the count per channel:

    .. math::

        \frac{\partial E}{\partial x} = \frac{\gamma}{m \sqrt{\sigma_B^2+\epsilon}}
            \left(m g - \sum g - \hat x \sum g \hat x\right)

    Parameters
    ----------
    num_features : int
        Number of channels ``C``.
    eps : float
    momentum : float or None
        Weight of the new batch in the running averages,
        :math:`r \leftarrow (1 - \text{momentum})\, r + \text{momentum}\, b`;
        None gives the cumulative average of all batches so far
        (``1 / num_batches_tracked``), as in PyTorch.
    affine : bool
        Learn :math:`\gamma` (``weight``) and :math:`\beta` (``bias``).
    track_running_stats : bool
        Keep the running averages (buffers ``running_mean``,
        ``running_var`` and ``num_batches_tracked``, as PyTorch's) and use
        them in evaluation mode; False normalises with the batch statistics
        in both modes and keeps no buffers.
    channels : int, optional
        The older name of ``num_features``.
    dtype : float32 or float64

    Notes
    -----
    See :ref:`theory-resnet`.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconvnet.nn import BatchNorm2d
    >>> bn = BatchNorm2d(2)
    >>> y = bn.forward(np.random.default_rng(0).normal(3, 2, (8, 2, 4, 4)))
    >>> bool(abs(y.mean()) < 1e-6), bool(abs(y.std() - 1) < 1e-3)
    (True, True)
    >>> int(bn.buffers()["num_batches_tracked"])
    1
    """

    def __init__(self, num_features=None, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, *, channels=None, dtype=np.float32):
        super().__init__()
        from .._validation import check_int
        if channels is not None:
            if num_features is not None and num_features != channels:
                raise ValueError(f"num_features ({num_features}) and its older name "
                                 f"channels ({channels}) disagree; give one of them")
            num_features = channels
        if num_features is None:
            raise TypeError("BatchNorm2d() needs num_features, the number of channels")
        self.num_features = check_int(num_features, "num_features", 1)
        if momentum is not None:
            if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) \
                    or not 0 <= momentum <= 1:
                raise ValueError(f"momentum must be a number in [0, 1] or None, got "
                                 f"{momentum!r}")
            momentum = float(momentum)
        self.eps, self.momentum, self.affine = float(eps), momentum, bool(affine)
        self.track_running_stats = bool(track_running_stats)
        dtype = _float_dtype(dtype)
        if affine:
            self._params["weight"] = np.ones(self.num_features, dtype)
            self._params["bias"] = np.zeros(self.num_features, dtype)
        if self.track_running_stats:
            self._buffers["running_mean"] = np.zeros(self.num_features, dtype)
            self._buffers["running_var"] = np.ones(self.num_features, dtype)
            self._buffers["num_batches_tracked"] = np.zeros((), np.int64)
        self._dtype = dtype

    @property
    def channels(self):
        """The older name of :attr:`num_features`."""
        return self.num_features

    def forward(self, x):
        x = _check_input(x, 4, "BatchNorm2d", "(N, C, H, W)")
        if x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm2d expects {self.num_features} channels, got "
                             f"{x.shape[1]} (input shape {x.shape})")
        params = self._params if self.affine else self._buffers
        ref = next(iter(params.values()), None)
        dtype = np.result_type(x.dtype, ref.dtype if ref is not None else self._dtype)
        x = x.astype(dtype, copy=False)
        batch_stats = self.training or not self.track_running_stats
        if batch_stats:
            m = x.shape[0] * x.shape[2] * x.shape[3]
            if m < 2 and self.training:
                raise ValueError("BatchNorm2d needs more than one value per channel "
                                 f"in training mode, got input shape {x.shape}")
            mean = x.mean(axis=(0, 2, 3))
            var = x.var(axis=(0, 2, 3))
            if self.training and self.track_running_stats:
                count = self._buffers["num_batches_tracked"]
                count += 1
                f = 1.0 / int(count) if self.momentum is None else self.momentum
                rm, rv = self._buffers["running_mean"], self._buffers["running_var"]
                rm *= 1 - f
                rm += f * mean
                rv *= 1 - f
                rv += f * var * (m / max(m - 1, 1))
        else:
            mean, var = self._buffers["running_mean"], self._buffers["running_var"]
        inv = 1.0 / np.sqrt(var + self.eps)
        xhat = (x - mean[:, None, None]) * inv[:, None, None]
        # x-hat is needed by the gradients of x (batch statistics) and gamma
        keep = batch_stats or self.affine
        self._cache = (xhat if keep else None, inv, batch_stats)
        if not self.affine:
            # a copy of what it keeps: a later in-place layer may overwrite the output
            return xhat.copy() if keep else xhat
        return xhat * self._params["weight"][:, None, None] + self._params["bias"][:, None, None]

    def backward(self, grad):
        xhat, inv, batch_stats = self._cached()
        grad = np.asarray(grad)
        gamma = self._params["weight"] if self.affine else np.ones(self.num_features,
                                                                    inv.dtype)
        if self.affine:
            self._grads["weight"] = (grad * xhat).sum(axis=(0, 2, 3)).astype(gamma.dtype)
            self._grads["bias"] = grad.sum(axis=(0, 2, 3)).astype(gamma.dtype)
        scale = (gamma * inv)[:, None, None]
        if not batch_stats:
            return grad * scale
        m = xhat.shape[0] * xhat.shape[2] * xhat.shape[3]
        gsum = grad.sum(axis=(0, 2, 3))[:, None, None]
        gxsum = (grad * xhat).sum(axis=(0, 2, 3))[:, None, None]
        return scale / m * (m * grad - gsum - xhat * gxsum)

    def extra_repr(self):
        s = f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
        s += "" if self.affine else ", affine=False"
        return s + ("" if self.track_running_stats else ", track_running_stats=False")

    def layer_specs(self):
        return _shapes.batch_norm(self.affine)
