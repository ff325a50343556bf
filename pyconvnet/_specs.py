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
    "Layer",
    "activation",
    "adaptive_avg_pool",
    "adaptive_max_pool",
    "as_layer",
    "avg_pool",
    "batch_norm",
    "concat",
    "conv",
    "conv_transpose",
    "dense_block",
    "dropout",
    "flatten",
    "global_avg_pool",
    "identity",
    "linear",
    "lrn",
    "max_pool",
    "rbf",
    "relu",
    "residual",
    "sequential",
    "subsampling",
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
        from ._specio import layer_from_dict
        return layer_from_dict(data)


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


def concat(*branches, name=None):
    """Parallel branches on the same input, concatenated along channels (Inception).

    A branch that is an empty list is the identity.

    Notes
    -----
    See :ref:`theory-googlenet`.

    Examples
    --------
    >>> spec = concat([conv(8, 1)], [conv(4, 3, padding=1)])
    >>> summary(spec, (3, 32, 32)).output_shape
    (12, 32, 32)
    """
    if len(branches) < 1:
        raise ValueError("concat needs at least one branch")
    return Layer("concat", {}, tuple(as_layer(b) for b in branches),
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


_VARARGS = {"sequential": "layers", "dense_block": "layers", "concat": "branches"}


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
