"""Receptive fields: size, jump and start after every layer of a network."""
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ._costs import parse_shape
from ._formats import _cell
from ._ranks import check_input_rank
from ._summary import _resolve
from ._walker import _final_field, _final_row, _Walker

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
    size_range: Any = None
    range_units: Any = None


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
    size_range : tuple or None
        ``(smallest, largest)`` field over the units of the last feature map
        when they differ (after transposed convolutions and resizes: the
        units of one phase read more input units than those of another);
        None when every unit's field has the same size. ``size`` is the
        largest. Needs an input shape.
    range_units : tuple or None
        ``(unit of the smallest, unit of the largest)``: indices into the
        spatial dimensions of the last feature map.
    unit_fields : tuple or None
        Per spatial dimension, ``(lo, hi, seen_lo, seen_hi)``: arrays with
        the first and last input pixel of every unit's field (padding
        counted as pixels) and of the pixels of the actual input it depends
        on, which is what the unit's gradient reaches. Needs an input shape.

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
    size_range: Any = None
    range_units: Any = None
    unit_fields: Any = field(default=None, repr=False, compare=False)

    def seen(self, unit):
        """(first, last) input pixel per dimension that ``unit`` of the last
        feature map depends on: the pixels its gradient reaches.

        Examples
        --------
        >>> rf = receptive_field([conv(1, 3, padding=1)] * 2, (1, 8, 8))
        >>> rf.seen((0, 4))
        ((0, 2), (2, 6))
        """
        if self.unit_fields is None:
            raise ValueError("the pixels seen need an input shape: pass input_shape "
                             "to receptive_field")
        unit = (unit,) if isinstance(unit, int) else tuple(unit)
        if len(unit) != len(self.unit_fields):
            raise ValueError(f"unit must have {len(self.unit_fields)} indices, got "
                             f"{unit}")
        out = []
        for u, (_, _, lo, hi) in zip(unit, self.unit_fields):
            if not 0 <= u < len(lo):
                raise ValueError(f"unit {unit} is outside the last feature map")
            out.append((int(lo[u]), int(hi[u])) if lo[u] <= hi[u] else None)
        return tuple(out)

    def __str__(self):
        head = ("Layer", "Kind", "Size", "Jump", "Start")
        cells = [(s.name, s.kind, _cell(s.size), _cell(s.jump), _cell(s.start))
                 for s in self.steps]
        w = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(head)]
        lines = ["  ".join(v.ljust(wi) if i < 2 else v.rjust(wi)
                           for i, (v, wi) in enumerate(zip(row, w))).rstrip()
                 for row in [head] + cells]
        tail = [f"receptive field {_cell(self.size)}, jump {_cell(self.jump)}, "
                f"start {_cell(self.start)}"]
        if self.size_range is not None:
            (small, big), (at_small, at_big) = self.size_range, self.range_units
            tail.append(f"varies by unit: smallest {_cell(small)} at unit {at_small}, "
                        f"largest {_cell(big)} at unit {at_big}")
        return "\n".join(lines + tail)


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

    Where branches merge (residual additions, concatenations) the field of
    a unit is the hull of its fields in the branches. With an input shape
    the fields are followed unit by unit (see :ref:`theory-unit-fields`):
    after a transposed convolution or a resize they differ between units,
    and ``size_range`` and ``range_units`` say which units see the least
    and the most. Without one, a transposed convolution divides the jump by
    its stride and widens the field by
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

    Through a transposed convolution the units of even and odd phases see
    different fields:

    >>> rf = receptive_field([conv(1, 3, stride=2), conv_transpose(1, 3, stride=2)],
    ...                      (1, 33))
    >>> rf.size, rf.size_range, rf.range_units
    (5, (3, 5), ((1,), (0,)))
    """
    layer, default, _ = _resolve(layers)
    shape = None
    if input_shape is not None or default is not None:
        shape = parse_shape(input_shape if input_shape is not None else default)
    if shape is not None:
        check_input_rank(layer, shape, "the network", default)
    walker = _Walker(shapes=shape is not None)
    rf0 = tuple((Fraction(1), Fraction(1), Fraction(0))
                for _ in (shape[1:] if shape else (0,))) or None
    walker.run(layer, (shape, rf0), "")
    steps = tuple(RFStep(r.name, r.kind, r.receptive_field, r.rf_jump, r.rf_start,
                         r.rf_range, r.rf_units)
                  for r in walker.rows if r.receptive_field is not None)
    if not steps:
        raise ValueError("the network has no layer with a spatial extent")
    size, jump, start = _final_field(walker.rows)
    last = _final_row(walker.rows)
    return ReceptiveField(size, jump, start, steps, last.rf_range, last.rf_units,
                          last.unit_fields)
