r"""Weight initialisers with explicit seeds.

Every initialiser takes a shape and a seed (an int, a
:class:`numpy.random.Generator` or None) and returns a new array, so that a
model built with the same seeds has the same weights.

For a weight of shape ``(out, in, *kernel)`` (convolution) or ``(out, in)``
(linear), ``fan_in = in * prod(kernel)`` and ``fan_out = out * prod(kernel)``.

=================  ==========================================  ==============================
name               distribution                                keeps the variance of
=================  ==========================================  ==============================
``he_uniform``     :math:`U(-a, a),\ a = \sqrt{6 / fan_{in}}`  ReLU forward pass (He 2015)
``he_normal``      :math:`N(0, 2 / fan_{in})`                  ReLU forward pass
``xavier_uniform`` :math:`U(-a, a),\ a = \sqrt{6/(fan_{in} + fan_{out})}`  tanh/linear, both passes
``xavier_normal``  :math:`N(0, 2 / (fan_{in} + fan_{out}))`    (Glorot 2010)
``lecun_uniform``  :math:`U(-a, a),\ a = \sqrt{3 / fan_{in}}`  LeCun 1998 (unit-variance inputs)
=================  ==========================================  ==============================
"""
import math

import numpy as np

__all__ = ["as_generator", "fans", "he_uniform", "he_normal", "xavier_uniform",
           "xavier_normal", "lecun_uniform", "initialize", "INITIALIZERS"]


def as_generator(rng):
    """Return a :class:`numpy.random.Generator` for an int seed, None or a Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be an int seed, a numpy Generator or None, got "
                    f"{type(rng).__name__}")


def fans(shape):
    """(fan_in, fan_out) of a weight of shape ``(out, in, *kernel)``.

    Examples
    --------
    >>> fans((16, 6, 5, 5))
    (150, 400)
    """
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"a weight needs at least 2 dimensions, got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _draw(shape, rng, dtype, kind, scale):
    rng = as_generator(rng)
    if kind == "uniform":
        w = rng.uniform(-scale, scale, size=shape)
    else:
        w = rng.normal(0.0, scale, size=shape)
    return w.astype(dtype)


def he_uniform(shape, rng=None, dtype=np.float32, fan_in=None):
    """He (Kaiming) uniform: :math:`U(-\\sqrt{6/fan_{in}}, \\sqrt{6/fan_{in}})`.

    Examples
    --------
    >>> w = he_uniform((120, 400), rng=0)
    >>> w.dtype, bool(abs(w).max() <= (6 / 400) ** 0.5)
    (dtype('float32'), True)
    """
    fan_in = fans(shape)[0] if fan_in is None else fan_in
    return _draw(shape, rng, dtype, "uniform", math.sqrt(6.0 / fan_in))


def he_normal(shape, rng=None, dtype=np.float32, fan_in=None):
    """He (Kaiming) normal: :math:`N(0, 2/fan_{in})`."""
    fan_in = fans(shape)[0] if fan_in is None else fan_in
    return _draw(shape, rng, dtype, "normal", math.sqrt(2.0 / fan_in))


def xavier_uniform(shape, rng=None, dtype=np.float32, fan_in=None):
    """Glorot (Xavier) uniform: :math:`U(-a, a)`, :math:`a = \\sqrt{6/(fan_{in}+fan_{out})}`."""
    fi, fo = fans(shape)
    fi = fi if fan_in is None else fan_in
    return _draw(shape, rng, dtype, "uniform", math.sqrt(6.0 / (fi + fo)))


def xavier_normal(shape, rng=None, dtype=np.float32, fan_in=None):
    """Glorot (Xavier) normal: :math:`N(0, 2/(fan_{in}+fan_{out}))`."""
    fi, fo = fans(shape)
    fi = fi if fan_in is None else fan_in
    return _draw(shape, rng, dtype, "normal", math.sqrt(2.0 / (fi + fo)))


def lecun_uniform(shape, rng=None, dtype=np.float32, fan_in=None):
    """LeCun uniform: :math:`U(-\\sqrt{3/fan_{in}}, \\sqrt{3/fan_{in}})`."""
    fan_in = fans(shape)[0] if fan_in is None else fan_in
    return _draw(shape, rng, dtype, "uniform", math.sqrt(3.0 / fan_in))


INITIALIZERS = {"he_uniform": he_uniform, "he_normal": he_normal,
                "xavier_uniform": xavier_uniform, "xavier_normal": xavier_normal,
                "lecun_uniform": lecun_uniform}


def initialize(init, shape, rng=None, dtype=np.float32, fan_in=None):
    """Draw a weight with the initialiser named ``init`` (or a callable).

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if callable(init):
        return np.asarray(init(shape, rng), dtype=dtype)
    if init not in INITIALIZERS:
        raise ValueError(f"init must be one of {', '.join(INITIALIZERS)} or a callable, "
                         f"got {init!r}")
    return INITIALIZERS[init](shape, rng, dtype, fan_in)
