r"""Loss functions: value and gradient with respect to the network's output.

The losses that PyTorch also has (:class:`CrossEntropyLoss`,
:class:`MSELoss`) mean what PyTorch's mean, with its ``reduction``
argument; the notes' half sum of squares is :class:`EuclideanLoss`. The
default reductions average over the batch, so that the learning rate does
not depend on the batch size.
"""
import numpy as np

__all__ = ["CrossEntropyLoss", "MSELoss", "EuclideanLoss", "softmax_cross_entropy",
           "mse_loss", "euclidean_loss", "mean_squared_error", "softmax", "log_softmax"]


def log_softmax(z):
    r"""Row-wise :math:`\log \mathrm{softmax}(z)`, stable for any magnitude.

    .. math:: \log p_k = z_k - m - \log \sum_j e^{z_j - m}, \quad m = \max_j z_j

    Notes
    -----
    Derived in :ref:`theory-losses`.

    Examples
    --------
    >>> import numpy as np
    >>> np.exp(log_softmax(np.array([[1000.0, 1000.0]])))
    array([[0.5, 0.5]])
    """
    z = np.asarray(z)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(z):
    """Row-wise softmax (see :func:`log_softmax`).

    Notes
    -----
    Derived in :ref:`theory-losses`.

    Examples
    --------
    >>> import numpy as np
    >>> softmax(np.array([[0.0, 0.0], [0.0, np.log(3.0)]])).round(2)
    array([[0.5 , 0.5 ],
           [0.25, 0.75]])
    """
    return np.exp(log_softmax(z))


_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(map(repr, _REDUCTIONS))}, "
                         f"got {reduction!r}")
    return reduction


def _check_labels(labels, n, k):
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) to match the logits, got "
                         f"{labels.shape}")
    if n and (labels.min() < 0 or labels.max() >= k):
        bad = labels[(labels < 0) | (labels >= k)][0]
        raise ValueError(f"labels must lie in [0, {k - 1}] for {k} classes, got {int(bad)}")
    return labels


def _class_last(z, labels):
    """Logits ``(N, C, d1, ...)``, ``(N, C)`` or ``(C,)`` and their labels as rows
    ``(M, C)`` and ``(M,)``, with a function that puts per-row values back
    into the labels' shape and one that puts row gradients back into the
    logits' layout."""
    labels = np.asarray(labels)
    if z.ndim == 0:
        raise ValueError("logits must have a class dimension: (C,), (N, C) or "
                         f"(N, C, d1, ...), got shape {z.shape}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    if z.ndim == 1:
        expected = ()
    else:
        expected = (z.shape[0],) + z.shape[2:]
    if labels.shape != expected:
        if labels.ndim == 1 and z.ndim != 2:
            raise ValueError(f"logits must be 2-dimensional (N, classes) for labels of shape "
                             f"{labels.shape}, got shape {z.shape}")
        raise ValueError(f"labels must have shape {expected} to match the logits of shape "
                         f"{z.shape}, got {labels.shape}")
    k = z.shape[0] if z.ndim == 1 else z.shape[1]
    rows = np.moveaxis(z, 1, -1).reshape(-1, k) if z.ndim > 2 else z.reshape(-1, k)
    flat = labels.reshape(-1)

    def values(v):
        return v.reshape(labels.shape)

    def grads(g):
        if z.ndim <= 2:
            return g.reshape(z.shape)
        moved = (z.shape[0],) + z.shape[2:] + (k,)
        return np.moveaxis(g.reshape(moved), -1, 1)

    return rows, flat, k, values, grads


def softmax_cross_entropy(logits, labels, *, weight=None, ignore_index=-100,
                          label_smoothing=0.0, reduction="mean"):
    r"""Softmax cross-entropy of integer labels and its gradient, as PyTorch's
    ``cross_entropy``.

    For one example with logits :math:`z`, label :math:`y`, class weights
    :math:`w` (all 1 by default), :math:`K` classes, smoothing
    :math:`\varepsilon` and :math:`\log p = \log\mathrm{softmax}(z)`:

    .. math::

        \ell = -(1 - \varepsilon)\, w_y \log p_y
               - \frac{\varepsilon}{K} \sum_k w_k \log p_k, \qquad
        \frac{\partial \ell}{\partial z_j} = (1 - \varepsilon)\, w_y (p_j - [j = y])
               + \frac{\varepsilon}{K} \Bigl(p_j \sum_k w_k - w_j\Bigr).

    ``reduction='mean'`` divides the sum of :math:`\ell` over the examples by
    the sum of their :math:`w_y` (the number of examples without weights);
    examples whose label is ``ignore_index`` count nowhere. Without weights,
    smoothing or ignored labels this is the plain mean
    :math:`E = -\frac1N \sum_n \log \mathrm{softmax}(z_n)_{y_n}`.

    Parameters
    ----------
    logits : (N, C) array_like
        Also ``(C,)`` for one example, or ``(N, C, d1, ...)`` with one label
        per position (as PyTorch).
    labels : (N,) array_like of int in [0, C)
        ``()`` or ``(N, d1, ...)`` to match the logits; ``ignore_index``
        marks examples to leave out.
    weight : (C,) array_like, optional
        Weight of each class.
    ignore_index : int, default -100
    label_smoothing : float in [0, 1], default 0
    reduction : {'mean', 'sum', 'none'}
        'none' returns the loss of every example (an array of the labels'
        shape).

    Returns
    -------
    loss : float or ndarray
    grad : ndarray
        Of the logits' shape and dtype: the gradient of the reduced loss
        (for 'none', of the sum of the losses).

    Raises
    ------
    ValueError
        For labels out of range or of the wrong shape, NaN or infinite logits
        (the message gives the first position), a weight of the wrong shape,
        a smoothing outside [0, 1] or an unknown reduction.
    TypeError
        For non-integer labels.

    Notes
    -----
    Derived in :ref:`theory-losses` and :ref:`theory-backprop-cost`.

    Examples
    --------
    >>> import numpy as np
    >>> loss, grad = softmax_cross_entropy(np.zeros((2, 4)), [0, 3])
    >>> round(loss, 6), grad[0]
    (1.386294, array([-0.375,  0.125,  0.125,  0.125]))
    >>> softmax_cross_entropy(np.zeros((2, 4)), [0, -100])[1][1]
    array([0., 0., 0., 0.])
    """
    z = np.asarray(logits)
    reduction = _check_reduction(reduction)
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) \
            or not 0 <= label_smoothing <= 1:
        raise ValueError(f"label_smoothing must be a number in [0, 1], got "
                         f"{label_smoothing!r}")
    rows, flat, k, values, grads = _class_last(z, labels)
    if not np.isfinite(rows).all():
        bad = np.argwhere(~np.isfinite(z))[0]
        raise ValueError(f"the logits must be finite, got {z[tuple(bad)]} at position "
                         f"{tuple(int(i) for i in bad)}")
    valid = flat != ignore_index
    if valid.any():
        bad = flat[valid & ((flat < 0) | (flat >= k))]
        if bad.size:
            raise ValueError(f"labels must lie in [0, {k - 1}] for {k} classes, got "
                             f"{int(bad[0])} (ignore_index is {ignore_index})")
    out_dtype = z.dtype if z.dtype.kind == "f" else np.float64
    if weight is None:
        w = np.ones(k)
    else:
        w = np.asarray(weight, dtype=np.float64)
        if w.shape != (k,):
            raise ValueError(f"weight must have shape ({k},), one per class, got {w.shape}")
    y = np.where(valid, flat, 0)
    n = len(flat)
    idx = np.arange(n)
    logp = log_softmax(rows.astype(np.float64, copy=False))
    wy = np.where(valid, w[y], 0.0)
    eps = float(label_smoothing)
    per = -(1 - eps) * wy * logp[idx, y]
    p = np.exp(logp)
    g = p * ((1 - eps) * wy)[:, None]
    g[idx, y] -= (1 - eps) * wy
    if eps:
        per = per - valid * (eps / k) * (logp @ w)
        g += (eps / k) * valid[:, None] * (p * w.sum() - w)
    if reduction == "none":
        return values(per.astype(out_dtype)), grads(g).astype(out_dtype, copy=False)
    total = float(per.sum())
    if reduction == "mean":
        denom = float(wy.sum())
        if denom == 0:   # every label ignored: 0/0, as PyTorch
            return float("nan"), np.zeros(z.shape, out_dtype)
        total /= denom
        g /= denom
    return total, grads(g).astype(out_dtype, copy=False)


def mse_loss(output, target, *, reduction="mean"):
    r"""Mean squared error over all elements and its gradient, as PyTorch's
    ``mse_loss``.

    .. math::

        E = \frac{1}{M} \sum_m (o_m - t_m)^2, \qquad
        \frac{\partial E}{\partial o_m} = \frac{2}{M} (o_m - t_m)

    over the :math:`M` elements of ``output`` (``reduction='sum'`` leaves
    out the :math:`1/M`; ``'none'`` returns the squared errors). For the
    notes' :math:`\frac12 \sum` see :func:`euclidean_loss`. ``target`` may
    also be a 1-D array of integer labels, which are one-hot encoded.

    Parameters
    ----------
    output, target : array_like
        Of the same shape.
    reduction : {'mean', 'sum', 'none'}

    Returns
    -------
    loss : float or ndarray
    grad : ndarray
        Of ``output``'s shape (for 'none', the gradient of the sum).

    Notes
    -----
    Derived in :ref:`theory-losses`.

    Examples
    --------
    >>> import numpy as np
    >>> mse_loss(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]]))
    (2.5, array([[1., 2.]]))
    >>> mse_loss(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]]), reduction="sum")[0]
    5.0
    """
    reduction = _check_reduction(reduction)
    o, t = _targets(output, target)
    diff = o - t
    if reduction == "none":
        return diff * diff, 2 * diff
    scale = 1.0 / max(diff.size, 1) if reduction == "mean" else 1.0
    return float(np.vdot(diff, diff) * scale), diff * (2 * scale)


def _targets(output, target):
    o = np.asarray(output)
    t = np.asarray(target)
    if t.ndim == 1 and o.ndim == 2 and t.dtype.kind in "iu":
        labels = _check_labels(t, o.shape[0], o.shape[1])
        t = np.zeros(o.shape, o.dtype if o.dtype.kind == "f" else np.float64)
        t[np.arange(o.shape[0]), labels] = 1
    if t.shape != o.shape:
        raise ValueError(f"target shape {t.shape} does not match the output shape {o.shape}")
    return o, t


def euclidean_loss(output, target):
    r"""Half the squared Euclidean error summed over outputs, averaged over the
    batch: the notes' :math:`E` (Caffe's ``EuclideanLoss``).

    .. math::

        E = \frac{1}{N} \sum_n \frac{1}{2} \lVert o_n - t_n \rVert^2, \qquad
        \frac{\partial E}{\partial o_n} = \frac{1}{N} (o_n - t_n)

    (Bouvrie's :math:`E^n = \frac12 \sum_k (t_k^n - y_k^n)^2`, averaged over
    the ``N`` examples.) ``target`` may also be a 1-D array of integer labels,
    which are one-hot encoded. It is :func:`mse_loss` times ``K / 2`` for
    ``K`` outputs per example.

    Parameters
    ----------
    output : (N, ...) array_like
    target : array_like
        Of ``output``'s shape, or ``(N,)`` integer labels for a 2-D output.

    Returns
    -------
    loss : float
    grad : ndarray
        Of ``output``'s shape.

    Notes
    -----
    Derived in :ref:`theory-losses` and :ref:`theory-backprop-cost`.

    Examples
    --------
    >>> import numpy as np
    >>> euclidean_loss(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]]))
    (2.5, array([[1., 2.]]))
    >>> euclidean_loss(np.zeros((1, 3)), [2])[0]
    0.5
    """
    o, t = _targets(output, target)
    n = max(o.shape[0], 1) if o.ndim else 1
    diff = o - t
    loss = float(0.5 * np.vdot(diff, diff) / n)
    return loss, diff / n


def mean_squared_error(output, target):
    r"""The notes' half sum of squares averaged over the batch: the same as
    :func:`euclidean_loss`, under its older name.

    Not the mean over all elements (that is :func:`mse_loss` and
    :class:`MSELoss`).

    Parameters
    ----------
    output, target : array_like
        As :func:`euclidean_loss`.

    Returns
    -------
    loss : float
    grad : ndarray

    Notes
    -----
    Derived in :ref:`theory-losses` and :ref:`theory-backprop-cost`.

    Examples
    --------
    >>> import numpy as np
    >>> mean_squared_error(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]]))
    (2.5, array([[1., 2.]]))
    >>> mean_squared_error(np.zeros((1, 3)), [2])[0]
    0.5
    """
    return euclidean_loss(output, target)


class _Loss:
    """Holds the gradient of the last :meth:`forward` for :meth:`backward`."""

    def __init__(self):
        self._grad = None
        self._reduced = True

    def _compute(self, output, target):  # pragma: no cover - every loss overrides it
        raise NotImplementedError

    def forward(self, output, target):
        """Loss value; keeps the gradient for :meth:`backward`."""
        loss, self._grad = self._compute(output, target)
        self._reduced = np.ndim(loss) == 0
        return loss

    __call__ = forward

    def backward(self, grad=None):
        """Gradient of the last loss with respect to the output.

        Parameters
        ----------
        grad : array_like, optional
            Only with ``reduction='none'``: the gradient of the scalar being
            minimised with respect to each example's loss (ones, that is the
            sum, by default).
        """
        if self._grad is None:
            raise RuntimeError(f"{type(self).__name__}.backward() was called before forward()")
        if grad is None:
            return self._grad
        if self._reduced:
            raise ValueError("backward(grad) takes a gradient only with reduction='none'")
        grad = np.asarray(grad)
        lead = grad.shape + (1,) * (self._grad.ndim - grad.ndim)
        if getattr(self, "_class_axis", False) and self._grad.ndim > 1 and grad.ndim:
            # per-example losses of (N, C, d1, ...) logits have shape (N, d1, ...)
            return self._grad * np.expand_dims(grad, 1)
        return self._grad * grad.reshape(lead) if grad.ndim < self._grad.ndim \
            else self._grad * grad

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"

    def extra_repr(self):
        """The arguments shown between the parentheses of ``repr(loss)``."""
        return ""


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy with integer labels, as PyTorch's
    (:func:`softmax_cross_entropy`).

    Parameters
    ----------
    weight : (C,) array_like, optional
        Weight of each class.
    ignore_index : int, default -100
        Labels equal to it are left out of the loss and its gradient.
    reduction : {'mean', 'sum', 'none'}
    label_smoothing : float in [0, 1], default 0

    Notes
    -----
    Derived in :ref:`theory-losses`.

    Examples
    --------
    >>> import numpy as np
    >>> loss = CrossEntropyLoss()
    >>> round(loss(np.array([[2.0, 0.0]]), [0]), 4)
    0.1269
    >>> loss.backward().round(4)
    array([[-0.1192,  0.1192]])
    >>> CrossEntropyLoss(reduction="none")(np.zeros((2, 2)), [0, -100])
    array([0.69314718, 0.        ])
    """

    _class_axis = True

    def __init__(self, weight=None, ignore_index=-100, reduction="mean",
                 label_smoothing=0.0):
        super().__init__()
        self.weight = None if weight is None else np.asarray(weight, dtype=np.float64)
        self.ignore_index = int(ignore_index)
        self.reduction = _check_reduction(reduction)
        self.label_smoothing = label_smoothing

    def _compute(self, output, target):
        return softmax_cross_entropy(output, target, weight=self.weight,
                                     ignore_index=self.ignore_index,
                                     label_smoothing=self.label_smoothing,
                                     reduction=self.reduction)

    def extra_repr(self):
        parts = []
        if self.weight is not None:
            parts.append(f"weight={self.weight.tolist()}")
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        if self.reduction != "mean":
            parts.append(f"reduction={self.reduction!r}")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(parts)


class MSELoss(_Loss):
    """Mean squared error over all elements, as PyTorch's MSELoss
    (:func:`mse_loss`).

    For the notes' half sum of squares per example, averaged over the
    batch, use :class:`EuclideanLoss`.

    Parameters
    ----------
    reduction : {'mean', 'sum', 'none'}

    Notes
    -----
    Derived in :ref:`theory-losses`.

    Examples
    --------
    >>> import numpy as np
    >>> MSELoss()(np.array([[1.0, 1.0]]), np.array([[0.0, 1.0]]))
    0.5
    >>> MSELoss(reduction="sum")(np.array([[1.0, 3.0]]), np.array([[0.0, 1.0]]))
    5.0
    """

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = _check_reduction(reduction)

    def _compute(self, output, target):
        return mse_loss(output, target, reduction=self.reduction)

    def extra_repr(self):
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class EuclideanLoss(_Loss):
    r"""The notes' squared error :math:`E = \frac1N \sum_n \frac12 \lVert o_n - t_n
    \rVert^2` (Bouvrie's :math:`E`, Caffe's EuclideanLoss;
    :func:`euclidean_loss`).

    Notes
    -----
    Derived in :ref:`theory-losses`.

    Examples
    --------
    >>> import numpy as np
    >>> EuclideanLoss()(np.array([[1.0, 1.0]]), np.array([[0.0, 1.0]]))
    0.5
    >>> EuclideanLoss()(np.array([[1.0, 3.0]]), np.array([[0.0, 1.0]]))
    2.5
    """

    def _compute(self, output, target):
        return euclidean_loss(output, target)
