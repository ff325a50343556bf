"""Receptive fields: size, jump and start after every layer of a network."""
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ._costs import parse_shape
from ._formats import _cell
from ._summary import _resolve
from ._walker import _final_field, _Walker

__all__ = ["RFStep", "ReceptiveField", "receptive_field"]

@dataclass(frozen=True)
class RFStep:
    """Receptive field after one layer: ``size``, ``jump`` and ``start``.

    Notes
    -----
    Derived in :ref:`theory-receptive-field`.

    Examples
    --------
    >>> step = receptive_field([(3, 1), (3, 1)]).steps[-1]
    >>> step.size, step.jump
    (5, 1)
    """

    name: str
    kind: str
    size: Any
    jump: Any
    start: Any


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of a stack, with the value after every layer.

    Attributes
    ----------
    size : int or tuple
        Input pixels seen by one unit of the last feature map.
    jump : number or tuple
        Input pixels between neighbouring units (the product of strides).
    start : number or tuple
        Input coordinate of the centre of the first unit's field (negative
        when the field reaches into the padding).
    steps : tuple of RFStep

    Notes
    -----
    Derived in :ref:`theory-receptive-field`.

    Examples
    --------
    >>> rf = receptive_field([(3, 1), (3, 1)])
    >>> rf.size, rf.jump, len(rf.steps)
    (5, 1, 2)
    """

    size: Any
    jump: Any
    start: Any
    steps: tuple

    def __str__(self):
        head = ("Layer", "Kind", "Size", "Jump", "Start")
        cells = [(s.name, s.kind, _cell(s.size), _cell(s.jump), _cell(s.start))
                 for s in self.steps]
        w = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(head)]
        lines = ["  ".join(v.ljust(wi) if i < 2 else v.rjust(wi)
                           for i, (v, wi) in enumerate(zip(row, w))).rstrip()
                 for row in [head] + cells]
        return "\n".join(lines + [f"receptive field {_cell(self.size)}, jump "
                                  f"{_cell(self.jump)}, start {_cell(self.start)}"])


def receptive_field(layers, input_shape=None):
    """Receptive field size, jump and start after each layer of a network.

    Parameters
    ----------
    layers : spec, str or sequence of window tuples
        Anything :func:`summary` accepts, or a list of bare windows
        ``(kernel_size, stride)``, ``(kernel_size, stride, padding)`` or
        ``(kernel_size, stride, padding, dilation)``.
    input_shape : tuple of int, str or None
        Needed only for adaptive pooling (and used for built-in names).

    Returns
    -------
    ReceptiveField

    Raises
    ------
    ValueError, TypeError
        On bad specs.

    See Also
    --------
    summary

    Notes
    -----
    Derived in :ref:`theory-receptive-field`.

    Per dimension, starting from :math:`r_0 = 1, j_0 = 1, s_0 = 0`, a window
    of kernel :math:`k`, dilation :math:`d`, stride :math:`s` and left
    padding :math:`p` gives, with :math:`k' = d(k-1) + 1`,

    .. math::
        r_{l} = r_{l-1} + (k' - 1) j_{l-1}, \\quad
        j_{l} = j_{l-1} s, \\quad
        \\text{start}_{l} = \\text{start}_{l-1}
            + \\left(\\frac{k'-1}{2} - p\\right) j_{l-1}

    Where branches merge (residual additions, concatenations) the largest
    field over the branches is kept. A transposed convolution divides the
    jump by its stride and widens the field by
    :math:`\\lfloor (k'-1)/s \\rfloor` input units.

    Examples
    --------
    Two stacked 3x3 convolutions see 5x5, three see 7x7:

    >>> receptive_field([(3, 1), (3, 1), (3, 1)]).size
    7
    >>> rf = receptive_field([(3, 1, 1), (2, 2), (3, 1, 1), (3, 1, 2, 2)])
    >>> [s.size for s in rf.steps], rf.jump
    ([3, 4, 8, 16], 2)
    >>> receptive_field("vgg16").size
    212
    """
    layer, default, _ = _resolve(layers)
    shape = None
    if input_shape is not None or default is not None:
        shape = parse_shape(input_shape if input_shape is not None else default)
    walker = _Walker(shapes=shape is not None)
    rf0 = tuple((Fraction(1), Fraction(1), Fraction(0))
                for _ in (shape[1:] if shape else (0,))) or None
    walker.run(layer, (shape, rf0), "")
    steps = tuple(RFStep(r.name, r.kind, r.receptive_field, r.rf_jump, r.rf_start)
                  for r in walker.rows if r.receptive_field is not None)
    if not steps:
        raise ValueError("the network has no layer with a spatial extent")
    return ReceptiveField(*_final_field(walker.rows), steps)
