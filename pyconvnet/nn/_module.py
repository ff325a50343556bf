"""The layer base class, :class:`Sequential` and saving/loading weights."""
import copy
import functools
import os
from collections import OrderedDict
from dataclasses import replace

import numpy as np

__all__ = ["Module", "Sequential", "save_weights", "load_weights"]


def _checked_forward(forward):
    """``forward`` that records the output's shape for :func:`_checked_backward`
    and, for layers with ``_batched_ndim``, also takes an input without the
    batch dimension (PyTorch's unbatched input)."""
    @functools.wraps(forward)
    def wrapper(self, x):
        batched = type(self)._batched_ndim
        unbatched = (batched is not None and getattr(x, "ndim", np.ndim(x)) == batched - 1)
        if unbatched:
            x = np.asarray(x)[None]
        y = forward(self, x)
        if unbatched:
            y = tuple(v[0] for v in y) if isinstance(y, tuple) else y[0]
        self._unbatched = unbatched
        out = y[0] if isinstance(y, tuple) else y
        self._out_shape = getattr(out, "shape", None)
        return y
    wrapper._shape_checked = True
    return wrapper


def _checked_backward(backward):
    """``backward`` (or ``_backward``) that refuses a gradient whose shape
    differs from the last output's, with one message for every layer."""
    @functools.wraps(backward)
    def wrapper(self, grad, *args, **kwargs):
        if getattr(self, "_in_backward", False):   # backward() calling _backward()
            return backward(self, grad, *args, **kwargs)
        expected = getattr(self, "_out_shape", None)
        if expected is not None:
            if not isinstance(grad, np.ndarray):
                grad = np.asarray(grad)
            if grad.shape != expected:
                raise ValueError(
                    f"{type(self).__name__}.backward() needs the gradient of the loss with "
                    f"respect to the last output of forward(), of shape {expected}; got "
                    f"shape {grad.shape}")
        unbatched = getattr(self, "_unbatched", False)
        self._in_backward = True
        try:
            dx = backward(self, grad[None] if unbatched else grad, *args, **kwargs)
        finally:
            self._in_backward = False
        return dx[0] if unbatched and dx is not None else dx
    wrapper._shape_checked = True
    return wrapper


class Module:
    """Base class of every layer and container.

    A layer keeps its parameters in ``self._params`` (name -> ndarray,
    updated in place by the optimisers), their gradients in ``self._grads``
    (replaced by every :meth:`backward`) and non-trainable state such as
    batch-norm statistics or connection masks in ``self._buffers``.
    :meth:`forward` caches what :meth:`backward` needs.

    Every subclass's ``forward`` and ``backward`` are wrapped once, here:
    ``backward`` refuses a gradient whose shape differs from the last
    output's, and a layer that sets ``_batched_ndim`` (the rank of its
    batched input, e.g. 4 for NCHW) also takes an input without the batch
    dimension, as PyTorch's layers do, and returns its output without it.

    No layer returns an array that it keeps for :meth:`backward` (it keeps
    a mask, a derivative or a copy instead), so an in-place layer
    (``ReLU(inplace=True)``, ``Tanh(inplace=True)``) is safe after any layer.

    Attributes
    ----------
    training : bool
        True in training mode (the default), False after :meth:`eval`.

    Notes
    -----
    Derived in :ref:`theory-training`.

    Examples
    --------
    >>> from pyconvnet.nn import Linear
    >>> layer = Linear(3, 2, rng=0)
    >>> isinstance(layer, Module), sorted(layer.params())
    (True, ['bias', 'weight'])
    """

    _batched_ndim = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name, wrap in (("forward", _checked_forward), ("backward", _checked_backward),
                           ("_backward", _checked_backward)):
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "_shape_checked", False):
                setattr(cls, name, wrap(method))

    def __init__(self):
        self.training = True
        self._params = OrderedDict()
        self._grads = OrderedDict()
        self._buffers = OrderedDict()
        self._cache = None

    # -- computation -------------------------------------------------------
    def forward(self, x):  # pragma: no cover - every layer overrides it
        """Compute the layer's output for the batch ``x``.

        The layer caches what :meth:`backward` needs (inputs, pooling
        arg-maxes, masks); calling the module, ``layer(x)``, is the same as
        ``layer.forward(x)``.

        Parameters
        ----------
        x : ndarray
            A batch, examples along the first axis (``(N, C, H, W)`` for the
            2-D layers).

        Returns
        -------
        ndarray
            The output batch, in the dtype of the layer's parameters.
        """
        raise NotImplementedError

    def backward(self, grad):  # pragma: no cover - every layer overrides it
        """Back-propagate ``grad`` through the last :meth:`forward`.

        Stores the gradients of the parameters (read them with
        :meth:`grads`) and returns the gradient with respect to the input.
        See :ref:`theory-backprop-conv` and :ref:`theory-backprop-pool`.

        Parameters
        ----------
        grad : ndarray
            :math:`\\partial E / \\partial y`, the gradient of the loss with
            respect to the output of the last forward pass (same shape).

        Returns
        -------
        ndarray
            :math:`\\partial E / \\partial x`, shaped like the input.

        Raises
        ------
        RuntimeError
            When called before any forward pass.
        """
        raise NotImplementedError

    def _backward(self, grad, input_grad):
        """:meth:`backward`, told whether the caller needs the input
        gradient; layers that can skip computing it override this and
        return None when ``input_grad`` is False."""
        return self.backward(grad)

    def __call__(self, x):
        """``layer(x)`` is ``layer.forward(x)``."""
        return self.forward(x)

    def _cached(self):
        """The forward cache, or a RuntimeError when there is none."""
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward() was called before "
                               "forward(): run a forward pass first")
        return self._cache

    def penalty(self):
        """Value of the regularisation terms this module adds to the loss.

        Layers without one return 0.0; their gradients are part of
        :meth:`grads` after :meth:`backward`.
        """
        return 0.0

    # -- parameters ----------------------------------------------------------
    def _slots(self, prefix=""):
        """(full name, owning module, key) for every parameter."""
        return [(prefix + k, self, k) for k in self._params]

    def params(self):
        """Parameters by dotted name (the arrays themselves, not copies)."""
        return OrderedDict((n, m._params[k]) for n, m, k in self._slots())

    def grads(self):
        """Gradients by dotted name, as left by the last :meth:`backward`.

        A parameter whose layer has not run backward yet has a zero gradient.
        """
        out = OrderedDict()
        for n, m, k in self._slots():
            g = m._grads.get(k)
            out[n] = np.zeros_like(m._params[k]) if g is None else g
        return out

    def buffers(self):
        """Non-trainable state by dotted name (running statistics, masks)."""
        return OrderedDict((k, v) for k, v in self._buffers.items())

    def zero_grad(self):
        """Set every gradient to zero."""
        for _, m, k in self._slots():
            m._grads[k] = np.zeros_like(m._params[k])

    def n_params(self):
        """Number of trainable parameters.

        Weights cut by a connection mask are held at zero and are not
        counted (LeNet-5's sparse C3 has 1,516 parameters, not 2,416).
        """
        total = 0
        for _, m, k in self._slots():
            mask = m._buffers.get("mask") if k == "weight" else None
            total += int(np.count_nonzero(mask)) if mask is not None else m._params[k].size
        return total

    @property
    def dtype(self):
        """dtype of the parameters (float32 by default; None without any)."""
        for p in self.params().values():
            return p.dtype
        return None

    def _modules(self):
        return [self]

    def astype(self, dtype):
        """Convert every parameter, gradient and float buffer in place; returns self.

        Use ``model.astype(np.float64)`` for gradient checks.
        """
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        for m in self._modules():
            for store in (m._params, m._grads):
                for k, v in store.items():
                    store[k] = v.astype(dtype)
            for k, v in m._buffers.items():
                if v.dtype.kind == "f":
                    m._buffers[k] = v.astype(dtype)
            m._cache = None
        return self

    def copy(self):
        """A deep copy (parameters, buffers and all)."""
        return copy.deepcopy(self)

    # -- modes ---------------------------------------------------------------
    def train(self, mode=True):
        """Switch to training mode (dropout active, batch statistics); returns self."""
        for m in self._modules():
            m.training = bool(mode)
        return self

    def eval(self):
        """Switch to evaluation mode; returns self."""
        return self.train(False)

    # -- saving --------------------------------------------------------------
    def state_dict(self):
        """Parameters and buffers by dotted name (copies)."""
        state = OrderedDict((n, p.copy()) for n, p in self.params().items())
        state.update((n, b.copy()) for n, b in self.buffers().items())
        return state

    def load_state_dict(self, state):
        """Copy arrays from ``state`` into the parameters and buffers.

        Raises
        ------
        ValueError
            When a name is missing or unexpected, or a shape differs (the
            message names the entry and both shapes), or a connection mask
            differs.
        """
        own = self.params()
        bufs = self.buffers()
        names = list(own) + list(bufs)
        missing = [n for n in names if n not in state]
        unexpected = [n for n in state if n not in own and n not in bufs]
        if missing or unexpected:
            parts = []
            if missing:
                parts.append("missing " + ", ".join(missing))
            if unexpected:
                parts.append("unexpected " + ", ".join(unexpected))
            raise ValueError("the weights do not fit this model's architecture: "
                             + "; ".join(parts))
        for n in names:
            target = own[n] if n in own else bufs[n]
            value = np.asarray(state[n])
            if value.shape != target.shape:
                raise ValueError(f"parameter {n!r} has shape {target.shape} in the "
                                 f"model but {value.shape} in the weights")
            if n.endswith("mask") and not np.array_equal(value != 0, target != 0):
                raise ValueError(f"buffer {n!r}: the connection mask in the weights "
                                 "differs from the model's")
        for n in names:
            target = own[n] if n in own else bufs[n]
            target[...] = np.asarray(state[n], dtype=target.dtype)
        return self

    def save(self, path):
        """Save parameters and buffers to an ``.npz`` file (see :func:`save_weights`)."""
        save_weights(self, path)

    def load(self, path):
        """Load weights saved by :meth:`save`; returns self."""
        return load_weights(self, path)

    # -- description -----------------------------------------------------------
    def extra_repr(self):
        """The arguments shown between the parentheses of ``repr(layer)``."""
        return ""

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"

    def layer_specs(self):  # pragma: no cover - every layer overrides it
        """The :mod:`pyconvnet.shapes` spec of this layer."""
        raise NotImplementedError(f"{type(self).__name__} has no layer spec")


class Sequential(Module):
    """Layers applied one after the other.

    Parameters
    ----------
    *layers : Module or (str, Module) pairs
        Layers in order, optionally named; unnamed layers are called
        ``"0"``, ``"1"``, ... Parameter names are ``"<layer>.<param>"``.

    Raises
    ------
    ValueError
        From :meth:`forward`, when a layer refuses its input: the message
        names that layer and the one before it, with the shapes.

    Notes
    -----
    Derived in :ref:`theory-training`.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconvnet.nn import Sequential, Linear, ReLU
    >>> model = Sequential(("fc1", Linear(4, 3, rng=0)), ("act", ReLU()),
    ...                    ("fc2", Linear(3, 2, rng=0)))
    >>> list(model.params())
    ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']
    >>> model.forward(np.ones((5, 4), dtype=np.float32)).shape
    (5, 2)
    >>> model.n_params()
    23
    """

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, dict)):
            layers = tuple(layers[0].items()) if isinstance(layers[0], dict) else tuple(layers[0])
        self.layers = OrderedDict()
        for i, item in enumerate(layers):
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                name, layer = item
            else:
                name, layer = str(i), item
            if not isinstance(layer, Module):
                raise TypeError(f"layer {name!r} must be a pyconvnet.nn Module, got "
                                f"{type(layer).__name__}")
            if "." in name or not name:
                raise ValueError(f"layer names must be non-empty and without dots, got {name!r}")
            if name in self.layers:
                raise ValueError(f"duplicate layer name {name!r}")
            self.layers[name] = layer

    def __getitem__(self, key):
        if isinstance(key, int):
            return list(self.layers.values())[key]
        return self.layers[key]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers.values())

    def _modules(self):
        out = [self]
        for layer in self.layers.values():
            out.extend(layer._modules())
        return out

    def _slots(self, prefix=""):
        out = []
        for name, layer in self.layers.items():
            out.extend(layer._slots(f"{prefix}{name}."))
        return out

    def buffers(self):
        out = OrderedDict()
        for name, layer in self.layers.items():
            out.update((f"{name}.{k}", v) for k, v in layer.buffers().items())
        return out

    def load_state_dict(self, state):
        Module.load_state_dict(self, state)
        return self

    def forward(self, x):
        names = list(self.layers)
        prev_name, prev_shape = "input", getattr(x, "shape", None)
        for name in names:
            layer = self.layers[name]
            try:
                y = layer.forward(x)
            except (ValueError, TypeError) as exc:
                raise type(exc)(
                    f"layer {name!r} ({type(layer).__name__}) cannot take the output of "
                    f"{prev_name!r} with shape {prev_shape}: {exc}") from exc
            prev_name, prev_shape = name, y.shape
            x = y
        return x

    def backward(self, grad, *, input_grad=True):
        """Gradients of every layer, last to first.

        Parameters
        ----------
        grad : ndarray
            Gradient of the loss with respect to the output.
        input_grad : bool, default True
            False when the gradient with respect to the input is not
            needed (training): the first layer then skips it where it can
            (convolutions do), and None is returned.

        Returns
        -------
        ndarray or None
            Gradient with respect to the input, or None.
        """
        layers = list(self.layers.values())
        for i in range(len(layers) - 1, -1, -1):
            grad = layers[i]._backward(grad, input_grad or i > 0)
        return grad if input_grad else None

    def _backward(self, grad, input_grad):
        if type(self).backward is not Sequential.backward:  # a subclass's own
            return self.backward(grad)
        return self.backward(grad, input_grad=input_grad)

    def penalty(self):
        return float(sum(layer.penalty() for layer in self.layers.values()))

    def layer_specs(self):
        from .. import shapes
        children = [replace(shapes.as_layer(layer.layer_specs()), name=name)
                    for name, layer in self.layers.items()]
        return shapes.sequential(*children)

    def __repr__(self):
        lines = [f"  ({name}): " + repr(layer).replace("\n", "\n  ")
                 for name, layer in self.layers.items()]
        return "Sequential(\n" + "\n".join(lines) + "\n)"


def _npz_path(path):
    """``path`` with ``.npz`` added when missing, as :func:`numpy.savez` adds
    it, so that saving and loading take the same path."""
    path = os.fspath(path)
    return path if path.endswith(".npz") else path + ".npz"


def save_weights(model, path):
    """Save a model's parameters and buffers to an ``.npz`` file.

    Parameters
    ----------
    model : Module
    path : str or path-like
        The file; ``.npz`` is added when missing (:func:`load_weights`
        adds it too, so both take the same path).

    Notes
    -----
    See :ref:`theory-parameter-count` and :ref:`theory-sgd`.

    Examples
    --------
    >>> import os, tempfile
    >>> from pyconvnet.nn import Linear, save_weights, load_weights
    >>> a, b = Linear(3, 2, rng=0), Linear(3, 2, rng=1)
    >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
    >>> save_weights(a, path)
    >>> bool((load_weights(b, path).params()["weight"] == a.params()["weight"]).all())
    True
    """
    np.savez(_npz_path(path), **model.state_dict())


def load_weights(model, path):
    """Load weights saved by :func:`save_weights` into ``model``; returns it.

    Parameters
    ----------
    model : Module
    path : str or path-like
        The path given to :func:`save_weights` (``.npz`` is added when
        missing).

    Raises
    ------
    ValueError
        When the file's names or shapes do not match the model (the message
        names the parameter and both shapes).

    Notes
    -----
    See :ref:`theory-parameter-count` and :ref:`theory-sgd`.

    Examples
    --------
    >>> import os, tempfile
    >>> from pyconvnet.nn import Linear
    >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
    >>> save_weights(Linear(3, 2, rng=0), path)
    >>> load_weights(Linear(3, 2, rng=1), path).params()["weight"].shape
    (2, 3)
    """
    with np.load(_npz_path(path), allow_pickle=False) as data:
        state = {k: data[k] for k in data.files}
    return model.load_state_dict(state)
