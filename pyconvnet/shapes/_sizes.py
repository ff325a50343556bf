"""Output sizes of sliding windows: convolution, pooling, transposed
convolution and 'same' padding, with the worked arithmetic on request.

The formulas themselves live in :mod:`pyconvnet._geometry`; this module
checks the calculators' arguments, applies the formulas per dimension and
explains the result.
"""
from dataclasses import dataclass
from typing import Any

from .._geometry import (
    InputTooSmallError,
    check_pool_padding,
    pool_window_count,
    same_pair,
    window_length,
)
from .._validation import check_bool, check_padding, ntuple

__all__ = [
    "ShapeExplanation",
    "conv_output_size",
    "conv_transpose_output_size",
    "pool_output_size",
    "same_padding",
]


def _ndim(*values):
    """Number of spatial dimensions implied by tuple arguments (None if all ints)."""
    lengths = {len(v) for v in values if isinstance(v, (tuple, list))}
    if len(lengths) > 1:
        raise ValueError(
            "tuple arguments must all have the same length, got lengths "
            f"{sorted(lengths)}")
    return lengths.pop() if lengths else None


def _padding_pairs(padding, kernel, dilation, ndim, name="padding"):
    """(left, right) padding per dimension; 'same' split as PyTorch does."""
    padding = check_padding(padding, name)
    if padding == "valid":
        return ((0, 0),) * ndim
    if padding == "same":
        return tuple(same_pair(k, d) for k, d in zip(kernel, dilation))
    return tuple((p, p) for p in ntuple(padding, ndim, name, 0))

# --------------------------------------------------------------------------

_DIM_LABELS = {1: ("",), 2: ("H", "W"), 3: ("D", "H", "W")}


@dataclass(frozen=True)
class ShapeExplanation:
    """An output size together with the arithmetic that produced it.

    Attributes
    ----------
    output : int or tuple of int
        The output size (a tuple for 2-D and 3-D inputs).
    steps : tuple of str
        The worked arithmetic, one line per step.
    fits : bool
        True when the windows tile the padded input exactly in every
        dimension (no rows or columns left over).

    Notes
    -----
    Derived in :ref:`theory-output-size`.

    Examples
    --------
    >>> e = conv_output_size(32, 5, explain=True)
    >>> e.output, e.fits
    (28, True)
    """

    output: Any
    steps: tuple
    fits: bool

    def __str__(self):
        return "\n".join(self.steps)


def _dim_labels(ndim):
    return _DIM_LABELS.get(ndim, tuple(f"dim {i}" for i in range(ndim)))


def _labelled(lines, label):
    return [f"{label}: {line}" if label else line for line in lines]


def _fitting_paddings(n, eff, s, start, limit=None, count=2):
    """Symmetric paddings ``p >= 0`` for which ``n + 2p - eff`` divides by ``s``."""
    found = []
    top = start + 2 * s if limit is None else limit
    for p in range(0, top + 1):
        num = n + 2 * p - eff
        if num >= 0 and num % s == 0:
            found.append((p, num // s + 1))
            if len(found) == count:
                break
    return found


def _conv_steps(n, k, s, pl, pr, d, ceil_mode, out, pad_limit=None):
    """Lines of worked arithmetic for one dimension, and whether it fits."""
    eff = d * (k - 1) + 1
    lines = []
    if d != 1:
        lines.append(f"effective kernel = {d}*({k} - 1) + 1 = {eff}")
    pad = f"2*{pl}" if pl == pr else f"{pl} + {pr}"
    num = n + pl + pr - eff
    expr = f"({n} + {pad} - {eff})"
    if num % s == 0:
        lines.append(f"{expr}/{s} + 1 = {out}")
        return lines, True
    fn = "ceil" if ceil_mode else "floor"
    lines.append(f"{fn}({expr}/{s}) + 1 = {fn}({num}/{s}) + 1 = {out}")
    left = num % s
    if ceil_mode:
        lines.append(
            f"stride {s} does not fit: {num} is not a multiple of {s}, so the "
            f"last window runs {s - left} position(s) past the padded input")
    else:
        lines.append(
            f"stride {s} does not fit: {num} is not a multiple of {s}, so the "
            f"last {left} position(s) of the padded input are never covered")
    good = _fitting_paddings(n, eff, s, max(pl, pr), pad_limit)
    if good:
        lines.append("padding that fits: " + ", ".join(
            f"{p} (output {o})" for p, o in good))
    elif pad_limit is not None:
        lines.append(f"no padding up to kernel_size // 2 = {pad_limit} fits")
    else:
        total = (eff - n) % s
        lines.append(
            f"no symmetric padding fits (n - kernel extent is odd and the "
            f"stride even); a total padding of {total} or {total + s} would, "
            f"e.g. {total // 2} before and {total - total // 2} after")
    return lines, False


def _layout(n, *others):
    """Decide scalar or tuple mode and the number of spatial dimensions."""
    ndim = _ndim(n, *others)
    return (ndim is None), (ndim or 1)


def _finish(outs, lines_per_dim, fits, scalar, explain, strict, what):
    labels = ("",) if scalar else _dim_labels(len(outs))
    if all(dim == lines_per_dim[0] for dim in lines_per_dim):
        labels, lines_per_dim = ("",), lines_per_dim[:1]    # same in every dim
    lines = []
    for label, dim_lines in zip(labels, lines_per_dim):
        lines.extend(_labelled(dim_lines, label))
    if strict and not all(fits):
        raise ValueError(
            f"strict=True: the {what} does not tile the input exactly\n"
            + "\n".join(lines))
    output = outs[0] if scalar else tuple(outs)
    if explain:
        return ShapeExplanation(output, tuple(lines), all(fits))
    return output


def conv_output_size(n, kernel_size, stride=1, padding=0, dilation=1,
                     ceil_mode=False, *, explain=False, strict=False):
    """Output size of a convolution along each spatial dimension.

    Parameters
    ----------
    n : int or tuple of int
        Input size (a tuple for 2-D/3-D inputs, e.g. ``(H, W)``).
    kernel_size, stride, dilation : int or tuple of int
        Window size, step and spacing between kernel taps; an int applies to
        every dimension.
    padding : int, tuple of int, 'same' or 'valid'
        Zeros added on each side. ``'same'`` pads a total of ``d(k-1)``,
        ``total // 2`` before and the rest after (see :func:`same_padding`).
        The strings are read in any case (``"SAME"`` is ``'same'``).
    ceil_mode : bool
        Round the division up instead of down, so that a partial last window
        is kept. Pooling layers use :func:`pool_output_size`, which also
        applies PyTorch's rule for dropping a last window that starts in the
        right padding.
    explain : bool
        Return a :class:`ShapeExplanation` with the worked arithmetic instead
        of the bare size.
    strict : bool
        Raise ValueError when the stride does not tile the padded input
        exactly (cs231n's "doesn't fit").

    Returns
    -------
    int, tuple of int or ShapeExplanation

    Raises
    ------
    TypeError
        If a size is not an int (bools and floats are refused).
    ValueError
        If a size is out of range (``n``, ``kernel_size``, ``stride``,
        ``dilation`` must be positive, ``padding`` non-negative), if the
        kernel is larger than the padded input, or, with ``strict=True``, if
        the stride does not fit.

    See Also
    --------
    pool_output_size, conv_transpose_output_size, same_padding

    Notes
    -----
    Derived in :ref:`theory-output-size`.

    With input size :math:`n`, kernel :math:`k`, stride :math:`s`, padding
    :math:`p` on each side and dilation :math:`d`, the window covers
    :math:`d(k-1)+1` input positions and

    .. math:: n_{out} = \\left\\lfloor \\frac{n + 2p - d(k-1) - 1}{s}
              \\right\\rfloor + 1

    which for :math:`d = 1` is the familiar :math:`(W - F + 2P)/S + 1`. The
    stride "fits" when the division is exact; otherwise the last
    :math:`(n + 2p - d(k-1) - 1) \\bmod s` positions are never visited.

    Examples
    --------
    >>> conv_output_size(32, 5, padding=2)
    32
    >>> conv_output_size(5, 3, stride=2, padding=1)
    3
    >>> conv_output_size((224, 224), 7, stride=2, padding=3)
    (112, 112)
    >>> print(conv_output_size(32, 5, padding=2, explain=True))
    (32 + 2*2 - 5)/1 + 1 = 32
    >>> print(conv_output_size(7, 3, stride=3, explain=True))
    floor((7 + 2*0 - 3)/3) + 1 = floor(4/3) + 1 = 2
    stride 3 does not fit: 4 is not a multiple of 3, so the last 1 position(s) of the padded input are never covered
    padding that fits: 1 (output 3), 4 (output 5)
    """
    check_bool(explain, "explain")
    check_bool(strict, "strict")
    scalar, outs, lines, fits = _conv_dims(n, kernel_size, stride, padding,
                                           dilation, ceil_mode)
    return _finish(outs, lines, fits, scalar, explain, strict, "convolution")


def _conv_dims(n, kernel_size, stride, padding, dilation, ceil_mode,
               pad_limits=None, overhang=False):
    """Per-dimension sizes, worked lines and fit flags of a sliding window."""
    scalar, ndim = _layout(n, kernel_size, stride, dilation,
                           padding if not isinstance(padding, str) else 0)
    sizes = ntuple(n, ndim, "n", 1)
    k = ntuple(kernel_size, ndim, "kernel_size", 1)
    s = ntuple(stride, ndim, "stride", 1)
    d = ntuple(dilation, ndim, "dilation", 1)
    pads = _padding_pairs(padding, k, d, ndim)
    check_bool(ceil_mode, "ceil_mode")
    outs, lines, fits = [], [], []
    for i in range(ndim):
        try:
            out = window_length(sizes[i], k[i], s[i], *pads[i], d[i], ceil_mode, overhang)
        except InputTooSmallError as exc:
            label = _dim_labels(ndim)[i]
            where = "" if scalar or not label else f"along {label}: "
            raise InputTooSmallError(where + str(exc)) from None
        dim_lines, ok = _conv_steps(sizes[i], k[i], s[i], *pads[i], d[i],
                                    ceil_mode, out,
                                    pad_limits[i] if pad_limits else None)
        outs.append(out)
        lines.append(dim_lines)
        fits.append(ok)
    return scalar, outs, lines, fits


def pool_output_size(n, kernel_size, stride=None, padding=0, dilation=1,
                     ceil_mode=False, *, explain=False, strict=False):
    """Output size of a max or average pooling layer, following PyTorch.

    Parameters
    ----------
    n : int or tuple of int
        Input size.
    kernel_size : int or tuple of int
        Pooling window.
    stride : int, tuple of int or None
        Step between windows; None (the default) means ``kernel_size``.
    padding : int or tuple of int
        Implicit padding on each side, at most ``kernel_size // 2``.
    dilation : int or tuple of int
        Spacing between window taps (max pooling only, in PyTorch).
    ceil_mode : bool
        Round up, keeping a partial last window, unless that window would
        start in the right padding (then it is dropped). A window longer
        than the padded input then still gives one output, as in PyTorch.
    explain, strict : bool
        As in :func:`conv_output_size`.

    Returns
    -------
    int, tuple of int or ShapeExplanation

    Raises
    ------
    TypeError, ValueError
        As :func:`conv_output_size`; also if ``padding`` exceeds half the
        kernel.

    See Also
    --------
    conv_output_size

    Notes
    -----
    Derived in :ref:`theory-output-size` and :ref:`theory-pooling`.

    The size is :func:`conv_output_size` of the same window. With
    ``ceil_mode=True`` PyTorch keeps the extra window only if it starts
    inside the input or its left padding, that is if
    :math:`(n_{out} - 1) s < n + p`; otherwise :math:`n_{out}` drops by one.

    Examples
    --------
    >>> pool_output_size(112, 3, stride=2, ceil_mode=True)
    56
    >>> pool_output_size(112, 3, stride=2, padding=1)
    56
    >>> pool_output_size(5, 2, stride=3, padding=1, ceil_mode=True)
    2
    """
    if stride is None:
        stride = kernel_size
    scalar, ndim = _layout(n, kernel_size, stride, padding, dilation)
    k = ntuple(kernel_size, ndim, "kernel_size", 1)
    p = ntuple(padding, ndim, "padding", 0)
    check_pool_padding(p, k)
    check_bool(explain, "explain")
    check_bool(strict, "strict")
    scalar, outs, lines, fits = _conv_dims(n, kernel_size, stride, padding,
                                           dilation, ceil_mode,
                                           [ki // 2 for ki in k], overhang=True)
    if ceil_mode:
        sizes = ntuple(n, ndim, "n", 1)
        s = ntuple(stride, ndim, "stride", 1)
        d = ntuple(dilation, ndim, "dilation", 1)
        for i in range(ndim):
            last = (outs[i] - 1) * s[i]
            kept = pool_window_count(sizes[i], k[i], s[i], p[i], d[i], ceil_mode)
            if kept < outs[i]:
                outs[i] = kept
                lines[i].append(
                    f"the last window would start at {last}, past the input "
                    f"and its left padding ({sizes[i]} + {p[i]}), so it is "
                    f"dropped: {outs[i]}")
    return _finish(outs, lines, fits, scalar, explain, strict, "pooling window")


def conv_transpose_output_size(n, kernel_size, stride=1, padding=0,
                               output_padding=0, dilation=1, *, explain=False):
    """Output size of a transposed convolution.

    Parameters
    ----------
    n : int or tuple of int
        Input size.
    kernel_size, stride, dilation : int or tuple of int
        As for the convolution being transposed.
    padding : int or tuple of int
        The padding of that convolution: removed from each side of the output.
    output_padding : int or tuple of int
        Extra size added on one side to pick among the input sizes a strided
        convolution maps to the same output; must be smaller than the stride
        or the dilation.
    explain : bool
        Return a :class:`ShapeExplanation` with the worked arithmetic.

    Returns
    -------
    int, tuple of int or ShapeExplanation

    Raises
    ------
    TypeError, ValueError
        On bad sizes, ``output_padding >= max(stride, dilation)`` or a
        non-positive result.

    See Also
    --------
    conv_output_size

    Notes
    -----
    Derived in :ref:`theory-output-size`.

    .. math:: n_{out} = (n - 1)s - 2p + d(k - 1) + \\text{output_padding} + 1

    For ``output_padding = 0`` and a stride that fits, this inverts
    :func:`conv_output_size`.

    Examples
    --------
    >>> conv_transpose_output_size(16, 4, stride=2, padding=1)
    32
    >>> print(conv_transpose_output_size(4, 3, stride=2, padding=1,
    ...                                  output_padding=1, explain=True))
    (4 - 1)*2 - 2*1 + 1*(3 - 1) + 1 + 1 = 8
    """
    scalar, ndim = _layout(n, kernel_size, stride, padding, output_padding,
                           dilation)
    sizes = ntuple(n, ndim, "n", 1)
    k = ntuple(kernel_size, ndim, "kernel_size", 1)
    s = ntuple(stride, ndim, "stride", 1)
    p = ntuple(padding, ndim, "padding", 0)
    op = ntuple(output_padding, ndim, "output_padding", 0)
    d = ntuple(dilation, ndim, "dilation", 1)
    check_bool(explain, "explain")
    outs, lines = [], []
    for i in range(ndim):
        if op[i] >= max(s[i], d[i]):
            raise ValueError(
                f"output_padding must be smaller than the stride or the dilation,"
                f" got output_padding={op[i]}, stride={s[i]}, dilation={d[i]}")
        out = (sizes[i] - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1
        if out < 1:
            raise ValueError(
                f"padding={p[i]} removes more than the transposed convolution "
                f"produces: the output size would be {out}")
        outs.append(out)
        lines.append([f"({sizes[i]} - 1)*{s[i]} - 2*{p[i]} + {d[i]}*({k[i]} - 1)"
                      f" + {op[i]} + 1 = {out}"])
    return _finish(outs, lines, [True] * ndim, scalar, explain, False,
                   "transposed convolution")


def same_padding(kernel_size, dilation=1):
    """Padding that keeps the size unchanged at stride 1, split as PyTorch does.

    Parameters
    ----------
    kernel_size, dilation : int or tuple of int

    Returns
    -------
    tuple
        ``(left, right)`` for int arguments, or one such pair per dimension.

    Raises
    ------
    TypeError, ValueError
        On non-int or non-positive arguments.

    See Also
    --------
    conv_output_size

    Notes
    -----
    Derived in :ref:`theory-output-size`.

    The total padding is :math:`d(k-1)`; PyTorch puts ``total // 2`` before
    and the rest after, so an even kernel pads one more on the right.

    Examples
    --------
    >>> same_padding(3)
    (1, 1)
    >>> same_padding(4)
    (1, 2)
    >>> same_padding((3, 5), dilation=2)
    ((2, 2), (4, 4))
    """
    scalar, ndim = _layout(kernel_size, dilation)
    k = ntuple(kernel_size, ndim, "kernel_size", 1)
    d = ntuple(dilation, ndim, "dilation", 1)
    pairs = tuple(same_pair(ki, di) for ki, di in zip(k, d))
    return pairs[0] if scalar else pairs


# --------------------------------------------------------------------------
# parameters, MACs, memory
# --------------------------------------------------------------------------
