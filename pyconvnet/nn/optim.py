r"""Stochastic gradient descent with momentum, weight decay and per-layer rates."""
import numpy as np

__all__ = ["SGD"]


class SGD:
    r"""Stochastic gradient descent with momentum and weight decay.

    For each parameter :math:`w` with gradient :math:`g` (the mean over the
    mini-batch; a batch of one gives online learning), learning rate
    :math:`\eta`, momentum :math:`\mu` and weight decay :math:`\lambda`:

    .. math::

        g' = g + \lambda w, \qquad v \leftarrow \mu v + g', \qquad
        w \leftarrow w - \eta v

    (PyTorch's convention; ``v`` starts at zero, so the first step is plain
    gradient descent). With ``nesterov=True`` the update uses
    :math:`g' + \mu v` instead of :math:`v`.

    Parameters
    ----------
    model : Module
        Its parameters are updated in place, from the gradients the last
        ``backward`` left.
    lr : float
        Learning rate :math:`\eta > 0`.
    momentum : float
        :math:`\mu` in [0, 1).
    weight_decay : float
        :math:`\lambda \ge 0` (an L2 penalty :math:`\frac{\lambda}{2}\lVert w \rVert^2`).
    nesterov : bool
    layer_lr : dict, optional
        Per-layer (or per-parameter) learning rates: keys are dotted
        parameter names or their prefixes (``"c1"`` for ``"c1.weight"`` and
        ``"c1.bias"``); the longest matching key wins, other parameters use
        ``lr``.
    decay_bias : bool
        Whether biases (and other 1-D parameters) are decayed too.

    Raises
    ------
    ValueError
        For out-of-range hyper-parameters, or a ``layer_lr`` key that
        matches no parameter.

    Notes
    -----
    Derived in :ref:`theory-sgd`.

    Examples
    --------
    One step by hand: :math:`w = 1, g = 0.5, \lambda = 0.1, \eta = 0.1` gives
    :math:`v = 0.6` and :math:`w = 0.94`.

    >>> import numpy as np
    >>> from pyconvnet.nn import Linear, SGD
    >>> fc = Linear(1, 1, bias=False, dtype=np.float64)
    >>> fc.params()["weight"][...] = 1.0
    >>> fc._grads["weight"] = np.array([[0.5]])
    >>> opt = SGD(fc, lr=0.1, momentum=0.9, weight_decay=0.1)
    >>> opt.step(); fc.params()["weight"]
    array([[0.94]])
    """

    def __init__(self, model, lr=0.01, momentum=0.0, weight_decay=0.0, nesterov=False,
                 layer_lr=None, decay_bias=True):
        for name, value, low in (("lr", lr, 0.0), ("weight_decay", weight_decay, 0.0),
                                 ("momentum", momentum, 0.0)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
                    or not np.isfinite(value) or value < low:
                raise ValueError(f"{name} must be a finite number >= {low}, got {value!r}")
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if momentum >= 1:
            raise ValueError(f"momentum must be below 1, got {momentum}")
        if nesterov and momentum == 0:
            raise ValueError("nesterov=True needs a positive momentum")
        self.model = model
        self.lr, self.momentum, self.weight_decay = float(lr), float(momentum), float(weight_decay)
        self.nesterov, self.decay_bias = bool(nesterov), bool(decay_bias)
        self.layer_lr = dict(layer_lr or {})
        self._slots = model._slots()
        names = [n for n, _, _ in self._slots]
        for key, value in self.layer_lr.items():
            if not any(n == key or n.startswith(key + ".") for n in names):
                raise ValueError(f"layer_lr key {key!r} matches no parameter; the "
                                 f"parameters are {', '.join(names)}")
            if not (isinstance(value, (int, float)) and value >= 0):
                raise ValueError(f"layer_lr[{key!r}] must be a non-negative number, got {value!r}")
        self._velocity = {}
        self.steps = 0
        #: a global factor on every learning rate (warm-up schedules set it)
        self.lr_scale = 1.0

    def lr_of(self, name):
        """The learning rate of the parameter ``name``."""
        best, lr = -1, self.lr
        for key, value in self.layer_lr.items():
            if (name == key or name.startswith(key + ".")) and len(key) > best:
                best, lr = len(key), float(value)
        return lr

    def step(self):
        """Update every parameter in place from its current gradient."""
        mu, wd = self.momentum, self.weight_decay
        for name, module, key in self._slots:
            w = module._params[key]
            g = module._grads.get(key)
            if g is None:
                continue
            lr = self.lr_of(name) * self.lr_scale
            decay = wd and (self.decay_bias or w.ndim > 1)
            if mu:
                v = self._velocity.get(name)
                if v is None:
                    v = self._velocity[name] = np.zeros_like(w)
                v *= mu
                v += g
                if decay:
                    v += wd * w
                if self.nesterov:
                    upd = g + mu * v
                    if decay:
                        upd += wd * w
                    w -= lr * upd
                else:
                    w -= lr * v
            else:
                if decay:
                    w *= 1 - lr * wd
                w -= lr * g
        self.steps += 1

    def zero_grad(self):
        """Set the model's gradients to zero."""
        self.model.zero_grad()

    def __repr__(self):
        return (f"SGD(lr={self.lr}, momentum={self.momentum}, weight_decay="
                f"{self.weight_decay}, nesterov={self.nesterov})")
