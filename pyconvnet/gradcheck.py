r"""Gradient checking: back-propagation against central finite differences.

For every checked element :math:`w` of a parameter (or of the input) the
numerical derivative of a scalar :math:`E` is

.. math:: \hat g = \frac{E(w + \epsilon) - E(w - \epsilon)}{2 \epsilon},

whose error is :math:`O(\epsilon^2)` (plus rounding :math:`O(u E / \epsilon)`),
and it is compared with the gradient :math:`g` that ``backward`` returns by
the relative error

.. math:: r = \frac{|g - \hat g|}{\max(|g|, |\hat g|, \tau)},

where the floor :math:`\tau` keeps derivatives that are zero on both sides
(a dead ReLU, a masked weight) from dividing by zero. Everything runs in
float64 on a copy of the model.
"""
import copy
from dataclasses import dataclass, field

import numpy as np

__all__ = ["gradcheck", "GradcheckResult"]


@dataclass
class GradcheckResult:
    """The outcome of :func:`gradcheck`.

    Attributes
    ----------
    max_rel_error : float
        The worst relative error over every checked element.
    where : tuple
        ``(name, index)`` of that element: a parameter name (``"c1.weight"``)
        or ``"input"``, and the index into that array.
    errors : dict
        Worst relative error per checked array.
    max_abs_error : float
        The worst absolute difference.
    checked : int
        Number of elements checked.
    tol : float
        The tolerance :attr:`passed` compares against.
    """

    max_rel_error: float
    where: tuple
    errors: dict = field(default_factory=dict)
    max_abs_error: float = 0.0
    checked: int = 0
    tol: float = 1e-5

    @property
    def passed(self):
        """True when :attr:`max_rel_error` is at most :attr:`tol`."""
        return self.max_rel_error <= self.tol

    def __bool__(self):
        return self.passed

    def __str__(self):
        lines = [f"gradcheck {'passed' if self.passed else 'FAILED'}: max relative error "
                 f"{self.max_rel_error:.3g} at {self.where[0]}{list(self.where[1])} "
                 f"(tolerance {self.tol:g}, {self.checked} elements)"]
        lines += [f"  {name}: {err:.3g}" for name, err in self.errors.items()]
        return "\n".join(lines)


def _rng_snapshot(model):
    """Bit-generator states of every random layer (dropout), to replay them."""
    states = []
    for m in model._modules():
        rng = getattr(m, "rng", None)
        if isinstance(rng, np.random.Generator):
            states.append((rng, copy.deepcopy(rng.bit_generator.state)))
    return states


def _restore(states):
    for rng, state in states:
        rng.bit_generator.state = copy.deepcopy(state)


def gradcheck(model, x, target=None, loss=None, *, eps=1e-5, tol=1e-5, floor=1e-7,
              params=True, check_input=True, max_per_array=None, rng=0):
    r"""Compare a model's back-propagated gradients with finite differences.

    Parameters
    ----------
    model : pyconvnet.nn.Module
        A layer or a whole network. It is copied and converted to float64;
        the original is left untouched. Random layers (dropout) replay the
        same masks at every evaluation.
    x : array_like
        The input batch.
    target : array_like, optional
        Labels or targets for ``loss``.
    loss : loss object, optional
        E.g. :class:`pyconvnet.nn.CrossEntropyLoss`; its value plus the
        model's :meth:`~pyconvnet.nn.Module.penalty` is :math:`E`. Without
        a loss, :math:`E = \sum y \odot R` for a fixed random ``R`` of the
        output's shape, so that every output element matters.
    eps : float
        The finite-difference step.
    tol : float
        Tolerance for :attr:`GradcheckResult.passed`.
    floor : float
        :math:`\tau` in the relative error.
    params : bool or sequence of str
        Check every parameter (True), none (False) or the named ones.
    check_input : bool
        Also check the gradient with respect to ``x``.
    max_per_array : int, optional
        Check at most this many elements of each array, drawn at random
        (all of them by default; large networks want a sample).
    rng : int or Generator
        Seed of ``R`` and of the sampled elements.

    Returns
    -------
    GradcheckResult

    Raises
    ------
    ValueError
        When there is nothing to check, or ``eps`` is not positive.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconvnet.nn import Conv2d, CrossEntropyLoss, Linear, Sequential, Flatten
    >>> res = gradcheck(Conv2d(2, 3, 3, padding=1, rng=0), np.random.default_rng(0).
    ...                 standard_normal((2, 2, 5, 5)))
    >>> res.passed, res.max_rel_error < 1e-6
    (True, True)
    >>> model = Sequential(Flatten(), Linear(8, 3, rng=0))
    >>> r = gradcheck(model, np.ones((2, 2, 2, 2)), [0, 2], CrossEntropyLoss())
    >>> sorted(r.errors)
    ['1.bias', '1.weight', 'input']
    """
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps!r}")
    model = copy.deepcopy(model).astype(np.float64).train(model.training)
    gen = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    x = np.array(x, dtype=np.float64)
    states = _rng_snapshot(model)

    _restore(states)
    y = model.forward(x)
    if loss is None:
        proj = gen.standard_normal(y.shape)

        def objective(out):
            return float(np.vdot(out, proj)), proj
    else:
        def objective(out):
            return loss.forward(out, target), loss.backward()

    value, dy = objective(y)
    dx = model.backward(dy)
    analytic = {}
    arrays = {}
    if params:
        named = model.params()
        wanted = list(named) if params is True else list(params)
        for name in wanted:
            if name not in named:
                raise ValueError(f"no parameter {name!r}; the model has {', '.join(named)}")
            arrays[name] = named[name]
            analytic[name] = np.array(model.grads()[name], dtype=np.float64)
    if check_input:
        arrays["input"] = x
        analytic["input"] = np.array(dx, dtype=np.float64)
    if not arrays:
        raise ValueError("nothing to check: the model has no parameters and "
                         "check_input is False")

    def energy():
        _restore(states)
        out = model.forward(x)
        return objective(out)[0] + model.penalty()

    worst, where, worst_abs, checked, errors = -1.0, None, 0.0, 0, {}
    for name, arr in arrays.items():
        flat = arr.reshape(-1)
        idx = np.arange(flat.size)
        if max_per_array is not None and flat.size > max_per_array:
            idx = np.sort(gen.choice(flat.size, max_per_array, replace=False))
        num = np.empty(idx.size)
        for j, i in enumerate(idx):
            old = flat[i]
            flat[i] = old + eps
            e_plus = energy()
            flat[i] = old - eps
            e_minus = energy()
            flat[i] = old
            num[j] = (e_plus - e_minus) / (2 * eps)
        ana = analytic[name].reshape(-1)[idx]
        diff = np.abs(ana - num)
        rel = diff / np.maximum(np.maximum(np.abs(ana), np.abs(num)), floor)
        k = int(np.argmax(rel))
        errors[name] = float(rel[k])
        worst_abs = max(worst_abs, float(diff.max()))
        checked += idx.size
        if rel[k] > worst:
            worst = float(rel[k])
            where = (name, np.unravel_index(int(idx[k]), arr.shape))
    where = (where[0], tuple(int(i) for i in where[1]))
    return GradcheckResult(worst, where, errors, worst_abs, checked, tol)
