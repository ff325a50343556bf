r"""Loss functions: value and gradient with respect to the network's output.

Both losses average over the batch, so that the learning rate does not
depend on the batch size.
"""
import numpy as np

__all__ = ["CrossEntropyLoss", "MSELoss", "softmax_cross_entropy", "mean_squared_error",
           "softmax", "log_softmax"]


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


def softmax_cross_entropy(logits, labels):
    r"""Mean softmax cross-entropy of integer labels, and its gradient.

    .. math::

        E = -\frac{1}{N} \sum_n \log \mathrm{softmax}(z_n)_{y_n}, \qquad
        \frac{\partial E}{\partial z_{nk}} = \frac{1}{N}
            \left(\mathrm{softmax}(z_n)_k - [k = y_n]\right)

    Parameters
    ----------
    logits : (N, K) array_like
    labels : (N,) array_like of int in [0, K)

    Returns
    -------
    loss : float
    grad : (N, K) ndarray
        In the logits' dtype.

    Raises
    ------
    ValueError
        For labels out of range or of the wrong shape, or a non-finite loss.
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
    """
    z = np.asarray(logits)
    if z.ndim != 2:
        raise ValueError(f"logits must be 2-dimensional (N, classes), got shape {z.shape}")
    n, k = z.shape
    labels = _check_labels(labels, n, k)
    logp = log_softmax(z)
    rows = np.arange(n)
    loss = float(-logp[rows, labels].sum() / max(n, 1))
    grad = np.exp(logp)
    grad[rows, labels] -= 1
    grad /= max(n, 1)
    return loss, grad.astype(z.dtype if z.dtype.kind == "f" else np.float64, copy=False)


def mean_squared_error(output, target):
    r"""Half the squared Euclidean error summed over outputs, averaged over the batch.

    .. math::

        E = \frac{1}{N} \sum_n \frac{1}{2} \lVert o_n - t_n \rVert^2, \qquad
        \frac{\partial E}{\partial o_n} = \frac{1}{N} (o_n - t_n)

    (Bouvrie's :math:`E^n = \frac12 \sum_k (t_k^n - y_k^n)^2`, averaged over
    the ``N`` examples.) ``target`` may also be a 1-D array of integer labels,
    which are one-hot encoded.

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
    >>> mean_squared_error(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]]))
    (2.5, array([[1., 2.]]))
    >>> mean_squared_error(np.zeros((1, 3)), [2])[0]
    0.5
    """
    o = np.asarray(output)
    t = np.asarray(target)
    if t.ndim == 1 and o.ndim == 2 and t.dtype.kind in "iu":
        labels = _check_labels(t, o.shape[0], o.shape[1])
        t = np.zeros(o.shape, o.dtype if o.dtype.kind == "f" else np.float64)
        t[np.arange(o.shape[0]), labels] = 1
    if t.shape != o.shape:
        raise ValueError(f"target shape {t.shape} does not match the output shape {o.shape}")
    n = max(o.shape[0], 1) if o.ndim else 1
    diff = o - t
    loss = float(0.5 * np.vdot(diff, diff) / n)
    return loss, diff / n


class _Loss:
    """Holds the gradient of the last :meth:`forward` for :meth:`backward`."""

    _fn = None

    def __init__(self):
        self._grad = None

    def forward(self, output, target):
        """Loss value; keeps the gradient for :meth:`backward`."""
        loss, self._grad = type(self)._fn(output, target)
        return loss

    __call__ = forward

    def backward(self):
        """Gradient of the last loss with respect to the output."""
        if self._grad is None:
            raise RuntimeError(f"{type(self).__name__}.backward() was called before forward()")
        return self._grad

    def __repr__(self):
        return f"{type(self).__name__}()"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy with integer labels (:func:`softmax_cross_entropy`).

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
    """

    _fn = staticmethod(softmax_cross_entropy)


class MSELoss(_Loss):
    """Half squared error summed over outputs, averaged over the batch
    (:func:`mean_squared_error`).

    Notes
    -----
    Derived in :ref:`theory-losses`.

    Examples
    --------
    >>> import numpy as np
    >>> MSELoss()(np.array([[1.0, 1.0]]), np.array([[0.0, 1.0]]))
    0.5
    """

    _fn = staticmethod(mean_squared_error)
