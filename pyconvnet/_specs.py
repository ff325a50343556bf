"""Layer specifications: the :class:`Layer` tree that describes a network,
its builders (:func:`conv`, :func:`max_pool`, :func:`residual`, ...) and
:func:`as_layer`, which reads specs written as plain data.

The specs are data only: the arithmetic on them is in :mod:`pyconvnet.shapes`,
and the built-in networks of :mod:`pyconvnet.architectures` are written with
these builders. This module imports neither, so that both can import it.
All names are public as :mod:`pyconvnet.shapes` names.
"""
from __future__ import annotations

import difflib
import numbers
import re
from dataclasses import dataclass, field
from typing import Any

from ._validation import check_bool, check_groups, check_int, check_padding, check_sizes

__all__ = [
    "ACTIVATIONS",
    "PAD_MODES",
    "UPSAMPLE_MODES",
    "Layer",
    "activation",
    "adaptive_avg_pool",
    "adaptive_max_pool",
    "add",
    "as_layer",
    "avg_pool",
    "batch_norm",
    "channel_shuffle",
    "concat",
    "conv",
    "conv_transpose",
    "crop",
    "dense_block",
    "dropout",
    "flatten",
    "global_avg_pool",
    "graph",
    "group_norm",
    "identity",
    "instance_norm",
    "layer_norm",
    "linear",
    "lrn",
    "max_pool",
    "mul",
    "node",
    "pad",
    "pixel_shuffle",
    "pixel_unshuffle",
    "rbf",
    "relu",
    "reshape",
    "residual",
    "sequential",
    "slice_channels",
    "split",
    "squeeze_excitation",
    "subsampling",
    "upsample",
]

# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One node of a network spec.

    Build them with the constructors of this module (:func:`conv`,
    :func:`max_pool`, :func:`residual`, ...), or write plain data that
    :func:`as_layer` understands. A ``pyconvnet.nn`` model (or any object)
    can take part in :func:`summary` by providing a method ``layer_specs()``
    that returns such a spec.

    Attributes
    ----------
    kind : str
        ``"conv"``, ``"linear"``, ``"max_pool"``, ..., or one of the
        composites ``"sequential"``, ``"residual"``, ``"concat"``,
        ``"dense_block"``.
    config : dict
        The constructor's arguments.
    children : tuple of Layer
        Sub-layers of a composite.
    name : str or None
        Used to build the dotted row names of a summary.

    Notes
    -----
    Derived in :ref:`theory-output-size` and :ref:`theory-parameter-count`.

    Examples
    --------
    >>> layer = conv(10, 5)
    >>> layer.kind, layer.config["out_channels"]
    ('conv', 10)
    """

    kind: str
    config: dict = field(default_factory=dict)
    children: tuple = ()
    name: Any = None

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        extra = f", {len(self.children)} children" if self.children else ""
        name = f", name={self.name!r}" if self.name else ""
        return f"Layer({self.kind!r}{', ' + args if args else ''}{extra}{name})"

    def to_dict(self):
        """The layer tree as plain data: dicts, lists, strings and numbers.

        The form network files are written in (:ref:`network-files`);
        :meth:`from_dict` reads it back to an equal :class:`Layer`.

        Returns
        -------
        dict
            ``{"kind": ..., "name": ..., <arguments>, <children>}``: tuples
            of the arguments become lists, children are nested dicts under
            ``layers``, ``branches`` or ``body``/``shortcut``.

        Examples
        --------
        >>> conv(8, (3, 5), padding=1, name="c1").to_dict()["kernel_size"]
        [3, 5]
        >>> layer = residual([conv(8, 3, padding=1), relu()], activation="relu")
        >>> Layer.from_dict(layer.to_dict()) == layer
        True
        """
        from ._specio import layer_to_dict
        return layer_to_dict(self)

    @classmethod
    def from_dict(cls, data):
        """The :class:`Layer` tree of a dict written by :meth:`to_dict` (or by
        hand, see :ref:`network-files`).

        Parameters
        ----------
        data : dict or list
            A layer object with its ``kind``; a list is a sequence of them.

        Returns
        -------
        Layer

        Raises
        ------
        ValueError, TypeError
            For an unknown kind or field, or a bad value, naming the layer's
            path in ``data``.

        Examples
        --------
        >>> layer = Layer.from_dict({"kind": "conv", "out_channels": 8,
        ...                          "kernel_size": [3, 3], "name": "c1"})
        >>> layer.config["kernel_size"], layer.name
        ((3, 3), 'c1')
        """
        import sys

        from ._specio import layer_from_dict
        return layer_from_dict(sys.modules[__name__], data)


def _name(name):
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str or None, got {type(name).__name__}")
    return name


def conv(out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
         bias=True, *, in_channels=None, connections=None, trainable=True,
         name=None):
    """A convolution; ``in_channels`` is taken from the incoming shape.

    Parameters
    ----------
    out_channels : int
    kernel_size, stride, dilation : int or tuple of int
    padding : int, tuple of int, 'same' or 'valid'
        ``'same'`` requires stride 1, as in PyTorch; the strings are read in
        any case and stored in lower case.
    groups : int
    bias : bool
    in_channels : int, optional
        Checked against the incoming shape when given.
    connections : sequence of sequences of int, optional
        A connection table: for each output map, the input maps it reads
        (LeNet-5's sparse C3). Replaces full connection; ``groups`` must be 1.
    trainable : bool
        False counts the parameters as non-trainable (frozen).
    name : str, optional

    Returns
    -------
    Layer

    Notes
    -----
    Derived in :ref:`theory-output-size` and :ref:`theory-parameter-count`.

    Examples
    --------
    >>> summary([conv(10, 5, padding=2)], (3, 32, 32)).rows[0].output_shape
    (10, 32, 32)
    """
    cfg = dict(out_channels=check_int(out_channels, "out_channels", 1),
               kernel_size=check_sizes(kernel_size, "kernel_size", 1),
               stride=check_sizes(stride, "stride", 1),
               padding=check_padding(padding),
               dilation=check_sizes(dilation, "dilation", 1),
               groups=check_int(groups, "groups", 1),
               bias=check_bool(bias, "bias"))
    if cfg["padding"] == "same" and any(
            v != 1 for v in _iter(cfg["stride"])):
        raise ValueError("padding='same' needs stride 1: a strided convolution "
                         "cannot keep the size (use an explicit padding)")
    if cfg["out_channels"] % cfg["groups"]:
        raise ValueError(f"out_channels={cfg['out_channels']} is not divisible "
                         f"by groups={cfg['groups']}")
    if in_channels is not None:
        cfg["in_channels"] = check_int(in_channels, "in_channels", 1)
        check_groups(cfg["in_channels"], cfg["out_channels"], cfg["groups"])
    if connections is not None:
        table = tuple(tuple(check_int(c, "connections entry", 0) for c in row)
                      for row in connections)
        if len(table) != cfg["out_channels"]:
            raise ValueError(f"connections has {len(table)} rows but "
                             f"out_channels={cfg['out_channels']}")
        if cfg["groups"] != 1:
            raise ValueError("connections and groups cannot be combined")
        if any(not row for row in table):
            raise ValueError("every output map needs at least one connection")
        cfg["connections"] = table
    cfg["trainable"] = check_bool(trainable, "trainable")
    return Layer("conv", cfg, name=_name(name))


def _iter(value):
    return value if isinstance(value, tuple) else (value,)


def conv_transpose(out_channels, kernel_size, stride=1, padding=0,
                   output_padding=0, dilation=1, groups=1, bias=True, *,
                   in_channels=None, trainable=True, name=None):
    """A transposed convolution (see :func:`conv_transpose_output_size`).

    Notes
    -----
    Derived in :ref:`theory-output-size`.

    Examples
    --------
    >>> s = summary([conv_transpose(8, 2, stride=2)], (16, 8, 8))
    >>> s.output_shape, s.total_params
    ((8, 16, 16), 520)
    """
    cfg = dict(out_channels=check_int(out_channels, "out_channels", 1),
               kernel_size=check_sizes(kernel_size, "kernel_size", 1),
               stride=check_sizes(stride, "stride", 1),
               padding=check_sizes(padding, "padding", 0),
               output_padding=check_sizes(output_padding, "output_padding", 0),
               dilation=check_sizes(dilation, "dilation", 1),
               groups=check_int(groups, "groups", 1),
               bias=check_bool(bias, "bias"),
               trainable=check_bool(trainable, "trainable"))
    if cfg["out_channels"] % cfg["groups"]:
        raise ValueError(f"out_channels={cfg['out_channels']} is not divisible "
                         f"by groups={cfg['groups']}")
    if in_channels is not None:
        cfg["in_channels"] = check_int(in_channels, "in_channels", 1)
    return Layer("conv_transpose", cfg, name=_name(name))


def linear(out_features, bias=True, *, in_features=None, trainable=True,
           name=None):
    """A fully connected layer acting on the last dimension, as in PyTorch.

    Put :func:`flatten` before it to connect every element of a feature map.

    Notes
    -----
    Derived in :ref:`theory-parameter-count`.

    A linear layer is a convolution whose kernel covers the whole input.

    Examples
    --------
    >>> summary([flatten(), linear(10)], (1, 4, 4)).total_params
    170
    """
    cfg = dict(out_features=check_int(out_features, "out_features", 1),
               bias=check_bool(bias, "bias"),
               trainable=check_bool(trainable, "trainable"))
    if in_features is not None:
        cfg["in_features"] = check_int(in_features, "in_features", 1)
    return Layer("linear", cfg, name=_name(name))


def rbf(out_features, *, trainable=True, name=None):
    """Euclidean radial basis units (LeNet-5's output layer).

    Output ``i`` is :math:`\\sum_j (x_j - w_{ij})^2`: ``in * out`` parameters
    and as many MACs, no bias.

    Notes
    -----
    See :ref:`theory-lenet5`.

    Examples
    --------
    >>> summary([rbf(10)], (84,)).total_params
    840
    """
    return Layer("rbf", dict(out_features=check_int(out_features, "out_features", 1),
                             trainable=check_bool(trainable, "trainable")),
                 name=_name(name))


def _pool(kind, kernel_size, stride, padding, dilation, ceil_mode, name):
    cfg = dict(kernel_size=check_sizes(kernel_size, "kernel_size", 1),
               stride=None if stride is None else check_sizes(stride, "stride", 1),
               padding=check_sizes(padding, "padding", 0),
               dilation=check_sizes(dilation, "dilation", 1),
               ceil_mode=check_bool(ceil_mode, "ceil_mode"))
    return Layer(kind, cfg, name=_name(name))


def max_pool(kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
             *, name=None):
    """Max pooling; ``stride`` defaults to ``kernel_size``.

    Notes
    -----
    Derived in :ref:`theory-pooling`.

    Examples
    --------
    >>> summary([max_pool(2)], (6, 28, 28)).output_shape
    (6, 14, 14)
    """
    return _pool("max_pool", kernel_size, stride, padding, dilation, ceil_mode,
                 name)


def avg_pool(kernel_size, stride=None, padding=0, ceil_mode=False, *, name=None):
    """Average pooling; ``stride`` defaults to ``kernel_size``.

    Notes
    -----
    Derived in :ref:`theory-pooling`.

    Examples
    --------
    >>> summary([avg_pool(2)], (3, 32, 32)).output_shape
    (3, 16, 16)
    """
    return _pool("avg_pool", kernel_size, stride, padding, 1, ceil_mode, name)


def subsampling(kernel_size=2, stride=None, *, trainable=True, name=None):
    """LeNet-5's trainable subsampling: window sum times a coefficient plus a bias.

    Two parameters per feature map; the output size is that of average
    pooling with the same window.

    Notes
    -----
    Derived in :ref:`theory-subsampling`.

    Examples
    --------
    >>> s = summary([subsampling(2)], (6, 28, 28))
    >>> s.output_shape, s.total_params
    ((6, 14, 14), 12)
    """
    layer = _pool("subsampling", kernel_size, stride, 0, 1, False, name)
    layer.config["trainable"] = check_bool(trainable, "trainable")
    return layer


def _adaptive(kind, output_size, name):
    if isinstance(output_size, (tuple, list)):
        size = tuple(None if v is None else check_int(v, f"output_size[{i}]", 1)
                     for i, v in enumerate(output_size))
    else:
        size = check_int(output_size, "output_size", 1)
    return Layer(kind, dict(output_size=size), name=_name(name))


def adaptive_avg_pool(output_size, *, name=None):
    """Adaptive average pooling to a fixed ``output_size`` (None keeps a dim).

    Notes
    -----
    Derived in :ref:`theory-pooling`.

    Examples
    --------
    >>> summary([adaptive_avg_pool(4)], (3, 32, 32)).output_shape
    (3, 4, 4)
    """
    return _adaptive("adaptive_avg_pool", output_size, name)


def adaptive_max_pool(output_size, *, name=None):
    """Adaptive max pooling to a fixed ``output_size``.

    Notes
    -----
    Derived in :ref:`theory-pooling`.

    Examples
    --------
    >>> summary([adaptive_max_pool((2, None))], (3, 32, 32)).output_shape
    (3, 2, 32)
    """
    return _adaptive("adaptive_max_pool", output_size, name)


def global_avg_pool(*, name=None):
    """Global average pooling: ``adaptive_avg_pool(1)``.

    Notes
    -----
    See :ref:`theory-pooling`.

    Examples
    --------
    >>> summary([global_avg_pool()], (64, 7, 7)).output_shape
    (64, 1, 1)
    """
    return adaptive_avg_pool(1, name=name)


def batch_norm(affine=True, *, trainable=True, name=None):
    """Batch normalisation over the channel dimension.

    ``2 * C`` parameters when affine; the running mean and variance are
    buffers, not parameters, and are not counted.

    Notes
    -----
    See :ref:`theory-resnet`.

    Examples
    --------
    >>> summary([batch_norm()], (16, 8, 8)).total_params
    32
    """
    return Layer("batch_norm", dict(affine=check_bool(affine, "affine"),
                                    trainable=check_bool(trainable, "trainable")),
                 name=_name(name))


def lrn(size=5, *, name=None):
    """Local response normalisation across ``size`` channels (no parameters).

    Notes
    -----
    See :ref:`theory-alexnet`.

    Examples
    --------
    >>> s = summary([lrn(5)], (96, 55, 55))
    >>> s.output_shape, s.total_params
    ((96, 55, 55), 0)
    """
    return Layer("lrn", dict(size=check_int(size, "size", 1)), name=_name(name))


ACTIVATIONS = ("relu", "relu6", "leaky_relu", "elu", "gelu", "silu", "sigmoid",
               "tanh", "hardswish", "hardsigmoid", "softmax", "log_softmax")


def activation(kind="relu", *, name=None):
    """An element-wise activation (no parameters).

    Parameters
    ----------
    kind : str
        One of ``ACTIVATIONS``.

    Notes
    -----
    See :ref:`theory-activations`.

    Examples
    --------
    >>> summary([activation("tanh")], (3, 32, 32)).output_shape
    (3, 32, 32)
    """
    if not isinstance(kind, str) or kind.lower() not in ACTIVATIONS:
        raise ValueError(f"unknown activation {kind!r}; known: "
                         + ", ".join(ACTIVATIONS))
    return Layer(kind.lower(), {}, name=_name(name))


def relu(*, name=None):
    """ReLU, ``activation("relu")``.

    Notes
    -----
    See :ref:`theory-activations`.

    Examples
    --------
    >>> summary([relu()], (3, 32, 32)).total_params
    0
    """
    return activation("relu", name=name)


def dropout(p=0.5, *, name=None):
    """Dropout (no parameters, shape unchanged).

    Notes
    -----
    See :ref:`theory-alexnet`.

    Examples
    --------
    >>> summary([dropout(0.5)], (3, 32, 32)).output_shape
    (3, 32, 32)
    """
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
    return Layer("dropout", dict(p=float(p)), name=_name(name))


def flatten(*, name=None):
    """Flatten every non-batch dimension into one.

    Notes
    -----
    See :ref:`theory-architectures`.

    Examples
    --------
    >>> summary([flatten()], (3, 32, 32)).output_shape
    (3072,)
    """
    return Layer("flatten", {}, name=_name(name))


def identity(*, name=None):
    """A layer that passes its input through.

    Notes
    -----
    See :ref:`theory-resnet`.

    Examples
    --------
    >>> summary([identity()], (3, 32, 32)).output_shape
    (3, 32, 32)
    """
    return Layer("identity", {}, name=_name(name))


def sequential(*layers, name=None):
    """Layers applied one after the other (a plain list means the same).

    Notes
    -----
    See :ref:`theory-architectures`.

    Examples
    --------
    >>> summary(sequential(conv(6, 5), max_pool(2)), (3, 32, 32)).output_shape
    (6, 14, 14)
    """
    if len(layers) == 1 and isinstance(layers[0], list):
        layers = layers[0]
    return Layer("sequential", {}, tuple(as_layer(x) for x in layers),
                 name=_name(name))


def residual(body, shortcut=None, *, activation=None, name=None):
    """``body(x) + shortcut(x)``, then an optional activation.

    Parameters
    ----------
    body : spec
    shortcut : spec or None
        None is the identity shortcut; shapes of both branches must match.
    activation : str, spec or None
        Applied after the addition (ResNet's final ReLU).

    Notes
    -----
    See :ref:`theory-resnet`.

    Examples
    --------
    >>> body = [conv(3, 3, padding=1), relu(), conv(3, 3, padding=1)]
    >>> s = summary(residual(body, activation="relu"), (3, 32, 32))
    >>> s.output_shape, s.total_params
    ((3, 32, 32), 168)
    """
    children = [as_layer(body), as_layer(shortcut) if shortcut is not None
                else None]
    cfg = {}
    if activation is not None:
        cfg["activation"] = as_layer(activation)
    return Layer("residual", cfg, tuple(children), name=_name(name))


def concat(*branches, axis=0, name=None):
    """Concatenation along channels (or another axis).

    With branches: parallel branches on the same input, their outputs
    concatenated (Inception); a branch that is an empty list is the
    identity. Without branches: a node of a :func:`graph` that
    concatenates the node's inputs.

    Parameters
    ----------
    *branches : spec
    axis : int
        Axis of the sample shape, without the batch: 0 (the default) is
        the channels, -1 the last axis. The inputs agree in every other
        dimension.
    name : str, optional

    Notes
    -----
    See :ref:`theory-googlenet` and :ref:`theory-graphs`.

    Examples
    --------
    >>> spec = concat([conv(8, 1)], [conv(4, 3, padding=1)])
    >>> summary(spec, (3, 32, 32)).output_shape
    (12, 32, 32)
    """
    cfg = {} if check_int(axis, "axis") == 0 else {"axis": int(axis)}
    return Layer("concat", cfg, tuple(as_layer(b) for b in branches),
                 name=_name(name))


def dense_block(*layers, name=None):
    """A DenseNet block: each layer sees the concatenation of all before it.

    ``x_i = concat(x_{i-1}, layer_i(x_{i-1}))``; the block outputs the last
    ``x``, so the channels grow by each layer's output channels.

    Notes
    -----
    See :ref:`theory-resnet`.

    Examples
    --------
    >>> block = dense_block(conv(4, 3, padding=1), conv(4, 3, padding=1))
    >>> summary([block], (8, 16, 16)).output_shape
    (16, 16, 16)
    """
    if len(layers) == 1 and isinstance(layers[0], list):
        layers = layers[0]
    return Layer("dense_block", {}, tuple(as_layer(x) for x in layers),
                 name=_name(name))


# --------------------------------------------------------------------------
# graphs: named nodes with explicit inputs, and the layers that join,
# split, resize and normalise feature maps
# --------------------------------------------------------------------------

def _axis(axis, name="axis"):
    return check_int(axis, name)


def add(*, name=None):
    """The element-wise sum of two or more inputs: a node of a :func:`graph`.

    The shapes broadcast as NumPy's do (aligned on the right, a dimension of
    size 1 stretches); there are no parameters.

    Notes
    -----
    Derived in :ref:`theory-graphs`.

    Examples
    --------
    >>> g = graph(node("a", conv(8, 3, padding=1), "x"),
    ...           node("sum", add(), ["x", "a"]), inputs="x")
    >>> summary(g, (8, 16, 16)).output_shape
    (8, 16, 16)
    """
    return Layer("add", {}, name=_name(name))


def mul(*, name=None):
    """The element-wise product of two or more inputs, broadcast as NumPy's
    (a gate of shape ``(C, 1, 1)`` scales each channel of ``(C, H, W)``).

    Notes
    -----
    Derived in :ref:`theory-graphs`.

    Examples
    --------
    >>> g = graph(node("gate", [global_avg_pool(), activation("sigmoid")], "x"),
    ...           node("scaled", mul(), ["x", "gate"]), inputs="x")
    >>> summary(g, (8, 16, 16)).output_shape
    (8, 16, 16)
    """
    return Layer("mul", {}, name=_name(name))


def split(sizes, axis=0, *, name=None):
    """Split along an axis (the channels by default), as :func:`torch.split`.

    A node of a :func:`graph` only: other nodes read its pieces as
    ``"name:0"``, ``"name:1"``, ...

    Parameters
    ----------
    sizes : int or sequence of int
        An int is the size of every piece (the last may be smaller); a
        sequence gives each piece's size and must add up to the axis.
    axis : int
        Axis of the sample shape, without the batch: 0 is the channels,
        -1 the last axis.
    name : str, optional

    Notes
    -----
    Derived in :ref:`theory-graphs`.

    Examples
    --------
    >>> g = graph(node("halves", split(4), "x"),
    ...           node("branch", conv(4, 3, padding=1), "halves:1"),
    ...           node("out", concat(), ["halves:0", "branch"]), inputs="x")
    >>> summary(g, (8, 16, 16)).total_params
    148
    """
    if isinstance(sizes, (tuple, list)):
        if not sizes:
            raise ValueError("sizes must not be empty")
        sizes = tuple(check_int(v, f"sizes[{i}]", 1) for i, v in enumerate(sizes))
    else:
        sizes = check_int(sizes, "sizes", 1)
    return Layer("split", dict(sizes=sizes, axis=_axis(axis)), name=_name(name))


def slice_channels(start, stop=None, step=1, *, axis=0, name=None):
    """The channels ``start:stop:step`` (or a slice of another axis).

    Python's slice rules apply: negative indices count from the end, and
    ``stop`` None means the end. The slice must not be empty.

    Notes
    -----
    Derived in :ref:`theory-graphs`.

    Examples
    --------
    >>> summary([slice_channels(0, 16)], (64, 8, 8)).output_shape
    (16, 8, 8)
    """
    cfg = dict(start=check_int(start, "start"),
               stop=None if stop is None else check_int(stop, "stop"),
               step=check_int(step, "step", 1), axis=_axis(axis))
    return Layer("slice", cfg, name=_name(name))


def _pairs(value, name):
    """An int, a tuple of ints, or a tuple of (before, after) pairs."""
    if isinstance(value, (tuple, list)):
        if not value:
            raise ValueError(f"{name} must not be empty")
        if all(isinstance(v, (tuple, list)) for v in value):
            out = []
            for i, v in enumerate(value):
                if len(v) != 2:
                    raise ValueError(f"{name}[{i}] must be a (before, after) pair, "
                                     f"got {tuple(v)}")
                out.append((check_int(v[0], f"{name}[{i}][0]", 0),
                            check_int(v[1], f"{name}[{i}][1]", 0)))
            return tuple(out)
        return tuple(check_int(v, f"{name}[{i}]", 0) for i, v in enumerate(value))
    return check_int(value, name, 0)


PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(padding, mode="constant", value=0.0, *, name=None):
    """Pad the spatial dimensions, as :func:`torch.nn.functional.pad`.

    Parameters
    ----------
    padding : int or tuple
        An int for both sides of every spatial dimension, one int per
        dimension (both sides), or one ``(before, after)`` pair per
        dimension, in the order of the shape (height before width), not in
        :func:`torch.nn.functional.pad`'s last-dimension-first order.
    mode : {'constant', 'reflect', 'replicate', 'circular'}
    value : float
        The fill value of ``'constant'`` padding.
    name : str, optional

    Notes
    -----
    Derived in :ref:`theory-graphs`.

    Examples
    --------
    >>> summary([pad(((0, 1), (2, 3)))], (3, 8, 8)).output_shape
    (3, 9, 13)
    """
    if not isinstance(mode, str) or mode.lower() not in PAD_MODES:
        raise ValueError(f"mode must be one of {', '.join(PAD_MODES)}, got {mode!r}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"value must be a number, got {type(value).__name__}")
    return Layer("pad", dict(padding=_pairs(padding, "padding"), mode=mode.lower(),
                             value=float(value)), name=_name(name))


def crop(size=None, offset=None, *, name=None):
    """Cut a window out of the spatial dimensions.

    Parameters
    ----------
    size : int, tuple of int or None
        Size of the window per spatial dimension. None takes the size from
        a second input: in a :func:`graph`, ``crop()`` on the inputs
        ``[a, b]`` crops ``a`` to the spatial size of ``b`` (as the 2015
        U-Net crops the encoder's map to the decoder's).
    offset : int, tuple of int or None
        Where the window starts; None centres it, starting at
        ``(n - size) // 2``.
    name : str, optional

    Notes
    -----
    Derived in :ref:`theory-graphs`.

    Examples
    --------
    >>> summary([crop(56)], (64, 64, 64)).output_shape
    (64, 56, 56)
    """
    return Layer("crop", dict(
        size=None if size is None else check_sizes(size, "size", 1),
        offset=None if offset is None else check_sizes(offset, "offset", 0)),
        name=_name(name))


UPSAMPLE_MODES = ("nearest", "linear", "bilinear", "trilinear")


def upsample(scale_factor=None, size=None, mode="nearest", align_corners=None, *,
             name=None):
    """Resize by interpolation, as :class:`torch.nn.Upsample`.

    Parameters
    ----------
    scale_factor : number or tuple of numbers, optional
        The output size is ``floor(n * scale_factor)`` per spatial dimension.
    size : int or tuple of int, optional
        The output size; give exactly one of ``size`` and ``scale_factor``.
    mode : {'nearest', 'linear', 'bilinear', 'trilinear'}
        ``'linear'``, ``'bilinear'`` and ``'trilinear'`` are for 1-, 2- and
        3-D maps, as in PyTorch.
    align_corners : bool or None
        For the linear modes only (None is False).
    name : str, optional

    Notes
    -----
    Derived in :ref:`theory-graphs`.

    Examples
    --------
    >>> summary([upsample(2, mode="bilinear")], (16, 8, 8)).output_shape
    (16, 16, 16)
    """
    if (scale_factor is None) == (size is None):
        raise ValueError("give exactly one of scale_factor and size")
    cfg = {}
    if size is not None:
        cfg["size"] = check_sizes(size, "size", 1)
    else:
        factors = scale_factor if isinstance(scale_factor, (tuple, list)) \
            else (scale_factor,)
        if not factors:
            raise ValueError("scale_factor must not be empty")
        for f in factors:
            if isinstance(f, bool) or not isinstance(f, numbers.Real) or not f > 0:
                raise ValueError(f"scale_factor must be a positive number or a "
                                 f"tuple of them, got {scale_factor!r}")
        factors = tuple(int(f) if float(f).is_integer() else float(f)
                        for f in factors)
        cfg["scale_factor"] = factors if isinstance(scale_factor, (tuple, list)) \
            else factors[0]
    if not isinstance(mode, str) or mode.lower() not in UPSAMPLE_MODES:
        raise ValueError(f"mode must be one of {', '.join(UPSAMPLE_MODES)}, "
                         f"got {mode!r}")
    cfg["mode"] = mode.lower()
    if align_corners is not None:
        check_bool(align_corners, "align_corners")
        if cfg["mode"] == "nearest":
            raise ValueError("align_corners is for the linear modes only, "
                             "not for mode='nearest'")
    cfg["align_corners"] = bool(align_corners)
    return Layer("upsample", cfg, name=_name(name))


def pixel_shuffle(upscale_factor, *, name=None):
    """Rearrange ``(C r^2, H, W)`` into ``(C, H r, W r)`` (sub-pixel convolution).

    Notes
    -----
    Derived in :ref:`theory-graphs`.

    Examples
    --------
    >>> summary([pixel_shuffle(2)], (64, 8, 8)).output_shape
    (16, 16, 16)
    """
    return Layer("pixel_shuffle",
                 dict(factor=check_int(upscale_factor, "upscale_factor", 1)),
                 name=_name(name))


def pixel_unshuffle(downscale_factor, *, name=None):
    """Rearrange ``(C, H r, W r)`` into ``(C r^2, H, W)``, the inverse of
    :func:`pixel_shuffle`.

    Notes
    -----
    Derived in :ref:`theory-graphs`.

    Examples
    --------
    >>> summary([pixel_unshuffle(2)], (16, 16, 16)).output_shape
    (64, 8, 8)
    """
    return Layer("pixel_unshuffle",
                 dict(factor=check_int(downscale_factor, "downscale_factor", 1)),
                 name=_name(name))


def group_norm(num_groups, affine=True, *, trainable=True, name=None):
    """Group normalisation: statistics per sample over groups of channels.

    ``2 * C`` parameters when affine (a scale and a shift per channel, as
    :class:`torch.nn.GroupNorm`); ``C`` must divide by ``num_groups``.

    Notes
    -----
    Derived in :ref:`theory-graphs`.

    Examples
    --------
    >>> summary([group_norm(8)], (32, 16, 16)).total_params
    64
    """
    return Layer("group_norm", dict(num_groups=check_int(num_groups, "num_groups", 1),
                                    affine=check_bool(affine, "affine"),
                                    trainable=check_bool(trainable, "trainable")),
                 name=_name(name))


def instance_norm(affine=False, *, trainable=True, name=None):
    """Instance normalisation: statistics per sample and channel.

    ``affine`` is False by default, as in :class:`torch.nn.InstanceNorm2d`;
    with it, ``2 * C`` parameters.

    Notes
    -----
    Derived in :ref:`theory-graphs`.

    Examples
    --------
    >>> summary([instance_norm(affine=True)], (32, 16, 16)).total_params
    64
    """
    return Layer("instance_norm", dict(affine=check_bool(affine, "affine"),
                                       trainable=check_bool(trainable, "trainable")),
                 name=_name(name))


def layer_norm(normalized_shape=None, affine=True, bias=True, *, trainable=True,
               name=None):
    """Layer normalisation.

    Parameters
    ----------
    normalized_shape : int, tuple of int or None
        None normalises each position over the channels (the channels-first
        ``LayerNorm2d`` of ConvNeXt): ``C`` scales and ``C`` shifts. An int
        or tuple names the trailing dimensions of the sample shape, as
        :class:`torch.nn.LayerNorm` does (checked against the input):
        ``prod(normalized_shape)`` scales and as many shifts.
    affine : bool
        Learn a scale (``elementwise_affine`` in PyTorch).
    bias : bool
        Learn a shift too (when ``affine``).
    trainable : bool
    name : str, optional

    Notes
    -----
    Derived in :ref:`theory-graphs`.

    Examples
    --------
    >>> summary([layer_norm()], (96, 56, 56)).total_params
    192
    >>> summary([flatten(), layer_norm(768)], (768,)).total_params
    1536
    """
    return Layer("layer_norm", dict(
        normalized_shape=None if normalized_shape is None
        else check_sizes(normalized_shape, "normalized_shape", 1),
        affine=check_bool(affine, "affine"), bias=check_bool(bias, "bias"),
        trainable=check_bool(trainable, "trainable")), name=_name(name))


def channel_shuffle(groups, *, name=None):
    """Interleave the channels of ``groups`` groups (ShuffleNet).

    Channel ``g * (C / groups) + i`` moves to ``i * groups + g``, as
    :class:`torch.nn.ChannelShuffle` does: a permutation, with no parameters,
    the shape and the receptive field unchanged.

    Notes
    -----
    Derived in :ref:`theory-graphs`.

    Examples
    --------
    >>> summary([channel_shuffle(2)], (116, 28, 28)).output_shape
    (116, 28, 28)
    """
    return Layer("channel_shuffle", dict(groups=check_int(groups, "groups", 1)),
                 name=_name(name))


def reshape(shape, *, name=None):
    """Give the sample (without the batch) a new shape of as many elements.

    Parameters
    ----------
    shape : tuple of int
        The new shape without the batch dimension; one entry may be -1, to
        be inferred. ``reshape((-1,))`` is :func:`flatten`, ``reshape((C, 1,
        1))`` turns a vector into a gate for :func:`mul`.
    name : str, optional

    Notes
    -----
    Derived in :ref:`theory-graphs`.

    Examples
    --------
    >>> summary([reshape((4, -1, 8))], (16, 8, 8)).output_shape
    (4, 32, 8)
    """
    if not isinstance(shape, (tuple, list)) or not shape:
        raise TypeError(f"shape must be a non-empty tuple of ints, got {shape!r}")
    dims = tuple(check_int(v, f"shape[{i}]") for i, v in enumerate(shape))
    if sum(v == -1 for v in dims) > 1 or any(v == 0 or v < -1 for v in dims):
        raise ValueError(f"shape must have positive sizes and at most one -1, "
                         f"got {dims}")
    return Layer("reshape", dict(shape=dims), name=_name(name))


def node(name, layer, inputs):
    """One named node of a :func:`graph`: a layer and the names it reads.

    Parameters
    ----------
    name : str
        The node's name: other nodes read its output by it, and it names the
        node's rows in a summary. It may not contain ``':'``.
    layer : spec
        Any spec (:func:`as_layer`), including a whole sub-network. The
        joins :func:`add`, :func:`mul`, ``concat()`` (without branches) and
        ``crop()`` (without a size) read several inputs; every other layer
        reads one.
    inputs : str or sequence of str
        Names of the graph's input or of other nodes; ``"name:k"`` is the
        ``k``-th piece of a :func:`split` node.

    Returns
    -------
    Layer

    Notes
    -----
    Derived in :ref:`theory-graphs`.

    Examples
    --------
    >>> node("c1", conv(8, 3), "input").config["inputs"]
    ('input',)
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"a node's name must be a non-empty str, got {name!r}")
    if ":" in name or "." in name:
        raise ValueError(f"a node's name may not contain ':' or '.', got {name!r}")
    if isinstance(inputs, str):
        inputs = (inputs,)
    if not isinstance(inputs, (tuple, list)) or not inputs or not all(
            isinstance(i, str) and i for i in inputs):
        raise TypeError(f"node {name!r}: inputs must be a name or a non-empty "
                        f"sequence of names, got {inputs!r}")
    return Layer("node", dict(inputs=tuple(inputs)), (as_layer(layer),), name=name)


# the layers that read several inputs in a graph
_JOINS = ("add", "mul")


def _arity(layer):
    """(fewest, most) inputs a node's layer reads."""
    if layer.kind in _JOINS or (layer.kind == "concat" and not layer.children):
        return 2, None
    if layer.kind == "crop" and layer.config["size"] is None:
        return 2, 2
    return 1, 1


def _as_node(spec, i):
    if isinstance(spec, Layer):
        if spec.kind != "node":
            raise TypeError(f"graph entry {i} is a {spec.kind!r} layer, not a "
                            "node: wrap it as node(name, layer, inputs)")
        return spec
    if isinstance(spec, tuple) and len(spec) == 3:
        return node(*spec)
    if isinstance(spec, dict):
        kw = {k: v for k, v in spec.items() if k != "kind"}
        if spec.get("kind", "node") != "node" or set(kw) != {"name", "layer", "inputs"}:
            raise ValueError(f"graph entry {i}: a node dict has the keys 'name', "
                             f"'layer' and 'inputs', got {sorted(spec)}")
        return node(**kw)
    raise TypeError(f"graph entry {i}: expected node(name, layer, inputs), a "
                    f"(name, layer, inputs) tuple or a dict, got "
                    f"{type(spec).__name__}")


def _one_name(value, what):
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"a graph has exactly one {what}, got {len(value)}: "
                             f"{tuple(value)}")
        value = value[0]
    if not isinstance(value, str) or not value:
        raise TypeError(f"the graph's {what} must be a name, got {value!r}")
    return value


def _ref(reference):
    """('name', piece index or None) of an input reference."""
    base, sep, piece = reference.partition(":")
    if not sep:
        return base, None
    if not piece.isdigit():
        raise ValueError(f"bad input reference {reference!r}: a piece of a split "
                         "is written 'name:k' with k an index")
    return base, int(piece)


def graph(*nodes, inputs="input", outputs=None, name=None):
    """A network written as named nodes with explicit inputs.

    The form of torch.fx and ONNX graphs: every node names the layer it
    applies and the tensors it reads, so any skip connection can be written
    (U-Net's long skips, gates, channel splits). The graph reads one input
    tensor, named ``inputs``, and returns the output of the node named
    ``outputs``. Nodes may be listed in any order; the graph walks them in
    a topological order (the given one where it is one).

    Parameters
    ----------
    *nodes : node, tuple or dict
        :func:`node` results, ``(name, layer, inputs)`` tuples or dicts with
        the keys ``name``, ``layer`` and ``inputs``.
    inputs : str
        Name of the graph's input tensor (a sequence of one name is
        accepted too).
    outputs : str or None
        Name of the node whose output the graph returns; None is the last
        node listed.
    name : str, optional

    Returns
    -------
    Layer
        Of kind ``"graph"``: its children are the nodes in walking order.

    Raises
    ------
    ValueError
        On duplicate or unknown names, a cycle, a node the output does not
        depend on, or a node given the wrong number of inputs.
    TypeError
        On entries that are not nodes.

    Notes
    -----
    Derived in :ref:`theory-graphs`.

    Examples
    --------
    A residual block as a graph, equal to ``residual(body)``:

    >>> body = [conv(8, 3, padding=1), relu(), conv(8, 3, padding=1)]
    >>> g = graph(node("body", body, "x"), node("out", add(), ["body", "x"]),
    ...           inputs="x")
    >>> summary(g, (8, 16, 16)).total_params == summary(residual(body), (8, 16, 16)).total_params
    True
    """
    if len(nodes) == 1 and isinstance(nodes[0], list):
        nodes = nodes[0]
    if not nodes:
        raise ValueError("a graph needs at least one node")
    source = _one_name(inputs, "input")
    items = [_as_node(n, i) for i, n in enumerate(nodes)]
    order = {}
    for i, nd in enumerate(items):
        if nd.name == source:
            raise ValueError(f"node {nd.name!r} has the name of the graph's input")
        if nd.name in order:
            raise ValueError(f"two nodes are named {nd.name!r}")
        order[nd.name] = i
    target = items[-1].name if outputs is None else _one_name(outputs, "output")
    if target not in order:
        raise ValueError(f"the output {target!r} is not a node"
                         + _hint(target, order))
    if items[order[target]].children[0].kind == "split":
        raise ValueError(f"the output {target!r} is a split node with several "
                         f"pieces: end the graph with a node that reads them")
    deps = {}
    for nd in items:
        layer = nd.children[0]
        low, high = _arity(layer)
        refs = nd.config["inputs"]
        if len(refs) < low or (high is not None and len(refs) > high):
            want = f"{low}" if low == high else f"at least {low}" if high is None \
                else f"{low} to {high}"
            raise ValueError(f"node {nd.name!r} ({layer.kind}) reads {want} "
                             f"input{'s' if want != '1' else ''}, got {len(refs)}: "
                             f"{list(refs)}")
        deps[nd.name] = []
        for ref in refs:
            base, piece = _ref(ref)
            if base != source and base not in order:
                raise ValueError(f"node {nd.name!r} reads {ref!r}, which is neither "
                                 f"a node nor the graph's input {source!r}"
                                 + _hint(base, list(order) + [source]))
            if base == source:
                if piece is not None:
                    raise ValueError(f"node {nd.name!r} reads {ref!r}, but the "
                                     f"graph's input is one tensor")
                continue
            producer = items[order[base]].children[0]
            if producer.kind == "split":
                if piece is None:
                    raise ValueError(f"node {nd.name!r} reads the split node "
                                     f"{base!r} whole: name a piece, '{base}:0', "
                                     f"'{base}:1', ...")
                sizes = producer.config["sizes"]
                if isinstance(sizes, tuple) and piece >= len(sizes):
                    raise ValueError(f"node {nd.name!r} reads {ref!r}, but split "
                                     f"node {base!r} has {len(sizes)} pieces")
            elif piece is not None:
                raise ValueError(f"node {nd.name!r} reads {ref!r}, but node "
                                 f"{base!r} ({producer.kind}) has one output")
            deps[nd.name].append(base)
    walk = _topological(items, deps)
    needed = {target}
    for nd in reversed(walk):
        if nd.name in needed:
            needed.update(deps[nd.name])
    unused = [nd.name for nd in items if nd.name not in needed]
    if unused:
        raise ValueError(f"the output {target!r} does not depend on the node"
                         f"{'s' if len(unused) > 1 else ''} "
                         + ", ".join(repr(u) for u in unused))
    if not any(source in (_ref(r)[0] for r in nd.config["inputs"]) for nd in items):
        raise ValueError(f"no node reads the graph's input {source!r}")
    cfg = dict(inputs=(source,), outputs=(target,))
    return Layer("graph", cfg, tuple(walk), name=_name(name))


def _hint(name, known):
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _topological(items, deps):
    """The nodes in an order where each follows the nodes it reads, keeping
    the given order where possible; a cycle is a ValueError that names it."""
    index = {nd.name: i for i, nd in enumerate(items)}
    state = {}
    out = []

    def visit(name, trail):
        if state.get(name) == "done":
            return
        if state.get(name) == "open":
            cycle = trail[trail.index(name):]
            raise ValueError("the graph has a cycle: " + " -> ".join(
                repr(c) for c in cycle))
        state[name] = "open"
        for dep in sorted(set(deps[name]), key=index.get):
            visit(dep, trail + [dep])
        state[name] = "done"
        out.append(items[index[name]])

    for nd in items:
        visit(nd.name, [nd.name])
    return out


def squeeze_excitation(input_channels, squeeze_channels, activation="relu",
                       scale_activation="sigmoid", *, name=None):
    """A squeeze-and-excitation block, as torchvision's ``SqueezeExcitation``.

    Global average pooling, a 1x1 convolution to ``squeeze_channels``, an
    activation, a 1x1 convolution back to ``input_channels``, a gate
    activation, and the product of the gate and the input: a :func:`graph`
    with the nodes ``avgpool``, ``fc1``, ``activation``, ``fc2``,
    ``scale_activation`` and ``scale``. Its parameters are
    ``2 * input_channels * squeeze_channels + squeeze_channels +
    input_channels``.

    Parameters
    ----------
    input_channels, squeeze_channels : int
    activation, scale_activation : str or spec
        ``"relu"`` and ``"sigmoid"`` by default; MobileNet v3 uses
        ``"hardsigmoid"`` for the gate.
    name : str, optional

    Notes
    -----
    Derived in :ref:`theory-graphs`.

    Examples
    --------
    >>> s = summary(squeeze_excitation(96, 24), (96, 14, 14))
    >>> s.output_shape, s.total_params
    ((96, 14, 14), 4728)
    """
    cin = check_int(input_channels, "input_channels", 1)
    sq = check_int(squeeze_channels, "squeeze_channels", 1)
    return graph(
        node("avgpool", global_avg_pool(), "input"),
        node("fc1", conv(sq, 1, in_channels=cin), "avgpool"),
        node("activation", as_layer(activation), "fc1"),
        node("fc2", conv(cin, 1, in_channels=sq), "activation"),
        node("scale_activation", as_layer(scale_activation), "fc2"),
        node("scale", mul(), ["scale_activation", "input"]),
        name=name)


def _window(kernel_size, stride=None, padding=0, dilation=1, *, name=None):
    """A bare sliding window (receptive-field shorthand); keeps the channels."""
    layer = _pool("window", kernel_size, stride, padding, dilation, False, name)
    return layer


_CONSTRUCTORS = {
    "conv": conv, "conv_transpose": conv_transpose, "linear": linear,
    "rbf": rbf, "max_pool": max_pool, "avg_pool": avg_pool,
    "subsampling": subsampling, "adaptive_avg_pool": adaptive_avg_pool,
    "adaptive_max_pool": adaptive_max_pool, "global_avg_pool": global_avg_pool,
    "batch_norm": batch_norm, "lrn": lrn, "dropout": dropout, "flatten": flatten,
    "identity": identity, "sequential": sequential, "residual": residual,
    "concat": concat, "dense_block": dense_block, "window": _window,
    "add": add, "mul": mul, "split": split, "slice": slice_channels, "pad": pad,
    "crop": crop, "upsample": upsample, "pixel_shuffle": pixel_shuffle,
    "pixel_unshuffle": pixel_unshuffle, "group_norm": group_norm,
    "instance_norm": instance_norm, "layer_norm": layer_norm, "node": node,
    "graph": graph, "squeeze_excitation": squeeze_excitation,
    "channel_shuffle": channel_shuffle, "reshape": reshape,
}
_ALIASES = {
    "convolution": "conv", "convtranspose": "conv_transpose",
    "deconv": "conv_transpose", "fc": "linear", "maxpool": "max_pool",
    "pool": "max_pool", "avgpool": "avg_pool", "subsample": "subsampling",
    "adaptiveavgpool": "adaptive_avg_pool", "adaptivemaxpool": "adaptive_max_pool",
    "globalavgpool": "global_avg_pool", "gap": "global_avg_pool",
    "batchnorm": "batch_norm", "bn": "batch_norm", "localresponsenorm": "lrn",
    "seq": "sequential", "cat": "concat", "denseblock": "dense_block",
    "leakyrelu": "leaky_relu", "logsoftmax": "log_softmax",
    "sum": "add", "multiply": "mul", "slicechannels": "slice", "narrow": "slice",
    "zeropad": "pad", "interpolate": "upsample", "resize": "upsample",
    "upsampling": "upsample", "groupnorm": "group_norm", "gn": "group_norm",
    "instancenorm": "instance_norm", "layernorm": "layer_norm", "ln": "layer_norm",
    "squeezeexcitation": "squeeze_excitation", "se": "squeeze_excitation",
    "swish": "silu", "view": "reshape", "shuffle": "channel_shuffle",
}


def _kind_key(kind):
    """Canonical kind for a user spelling ('Conv2d', 'max-pool', 'BN', ...)."""
    key = re.sub(r"[\s_\-]", "", kind.lower())
    key = re.sub(r"(?<=[a-z])[123]d$", "", key)
    for canon in list(_CONSTRUCTORS) + list(ACTIVATIONS):
        if canon.replace("_", "") == key:
            return canon
    if key in _ALIASES:
        return _ALIASES[key]
    known = sorted(set(_CONSTRUCTORS) | set(ACTIVATIONS))
    hint = difflib.get_close_matches(kind.lower(), known, n=1)
    raise ValueError(f"unknown layer kind {kind!r}"
                     + (f" (did you mean {hint[0]!r}?)" if hint else "")
                     + "; known kinds: " + ", ".join(known))


def _construct(kind, args, kwargs):
    canon = _kind_key(kind)
    if canon in ACTIVATIONS:
        return activation(canon, **kwargs)
    try:
        return _CONSTRUCTORS[canon](*args, **kwargs)
    except TypeError as exc:
        if "argument" in str(exc):
            raise TypeError(f"bad arguments for a {canon!r} layer: {exc}") from None
        raise


_VARARGS = {"sequential": "layers", "dense_block": "layers", "concat": "branches",
            "graph": "nodes"}


def as_layer(spec):
    """Turn any accepted spec form into a :class:`Layer` tree.

    Accepted forms:

    - a :class:`Layer`;
    - a list: a sequential stack of specs;
    - a string naming a layer without required arguments, e.g. ``"relu"``,
      ``"flatten"``;
    - a tuple ``(kind, *args)`` or ``(kind, *args, {keyword: value})``, e.g.
      ``("conv", 64, 3, {"padding": 1})`` or ``("residual", body, shortcut)``;
    - a dict ``{"kind": ..., **keywords}``; composites take their children
      from ``"layers"`` (sequential, dense_block), ``"branches"`` (concat) or
      ``"body"``/``"shortcut"`` (residual), which makes specs JSON-friendly;
    - an object with a ``layer_specs()`` method returning one of the above;
    - a tuple of ints ``(kernel_size, stride[, padding[, dilation]])``: a
      bare sliding window that keeps the channels (receptive-field sketches).

    Kind names are case-insensitive and forgiving: ``"Conv2d"``,
    ``"maxpool"``, ``"BN"`` and ``"fc"`` all work.

    Notes
    -----
    See :ref:`theory-architectures`.

    Examples
    --------
    >>> as_layer(("conv", 16, 3, {"padding": 1})).config["padding"]
    1
    >>> as_layer([("conv", 6, 5), "tanh", {"kind": "avg_pool", "kernel_size": 2}]).kind
    'sequential'
    """
    if isinstance(spec, Layer):
        return spec
    if isinstance(spec, list):
        return sequential(*spec)
    if isinstance(spec, str):
        return _construct(spec, (), {})
    if isinstance(spec, tuple):
        if not spec or not isinstance(spec[0], str):
            if spec and all(isinstance(v, (numbers.Integral, tuple)) for v in spec):
                return _window(*spec)
            raise TypeError(f"a tuple spec must start with the layer kind, got "
                            f"{spec!r}")
        args, kwargs = list(spec[1:]), {}
        if args and isinstance(args[-1], dict):
            kwargs = dict(args.pop())
        return _construct(spec[0], args, kwargs)
    if isinstance(spec, dict):
        kw = dict(spec)
        kind = kw.pop("kind", None) or kw.pop("type", None)
        if not isinstance(kind, str):
            raise ValueError(f"a dict spec needs a 'kind' entry, got {spec!r}")
        args = ()
        var = _VARARGS.get(_kind_key(kind))
        if var and var in kw:
            args = tuple(kw.pop(var))
        return _construct(kind, args, kw)
    hook = getattr(spec, "layer_specs", None)
    if callable(hook):
        return as_layer(hook())
    raise TypeError(
        f"cannot read a layer spec from {type(spec).__name__}: expected a Layer,"
        " a list, a kind string, a (kind, *args) tuple, a dict with 'kind', or "
        "an object with a layer_specs() method")
