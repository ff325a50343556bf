"""Output shapes, parameters, MACs, memory and receptive fields from layer specs.

Everything here is arithmetic on layer descriptions: no framework, no tensors
and no forward pass. The single-layer calculators answer the questions the
lecture notes on CNNs ask (how large is the output of this convolution, how
many weights does it have, how much does a 1x1 bottleneck save), and
:func:`summary` applies the same arithmetic to whole networks, either one of
the built-in architectures of :mod:`pyconvnet.architectures` or a spec of your
own.

Conventions
-----------
Shapes exclude the batch dimension and put channels first: ``(C, H, W)`` for
images, ``(C, L)`` for sequences, ``(C, D, H, W)`` for volumes and
``(features,)`` after flattening.

A MAC is one multiply-accumulate ``acc += w * x``; FLOPs are always
``2 * MACs`` (one multiply and one add). Two conventions decide which layers
are counted:

``"torchvision"`` (the default)
    Convolutions (plain and transposed), linear layers and LeNet's RBF units,
    one MAC per weight use, bias additions excluded; normalisation, pooling,
    activations, residual additions and concatenations count zero. This is
    what torchvision publishes as "GFLOPS" for its pretrained models (the
    column holds multiply-adds despite its name): with it every built-in
    ImageNet model lands within 1% of the published figure, most within
    0.1% (AlexNet's 0.714 G is printed as 0.71). It is also fvcore's "flops"
    (one per multiply-add) and half of what
    ``torch.utils.flop_counter.FlopCounterMode`` reports.
``"full"``
    Adds one MAC per output element for bias additions, batch normalisation,
    activations and residual additions, one per window element for pooling,
    and one per input element for adaptive pooling. This overshoots
    torchvision's figures by up to 5% (MobileNet v2), which is how the
    default was settled, and is closer to tools that count every layer, such
    as ptflops.

Receptive fields follow the recurrence, per spatial dimension and starting
from ``r = 1, j = 1, start = 0`` on the input::

    k_eff = d * (k - 1) + 1
    r_out = r_in + (k_eff - 1) * j_in
    start_out = start_in + ((k_eff - 1) / 2 - p_left) * j_in
    j_out = j_in * s

``r`` is the size of the receptive field in input pixels, ``j`` (the jump) is
the distance in input pixels between neighbouring output units and ``start``
is the input coordinate of the centre of the first output unit's field.
"""
from __future__ import annotations

import csv
import difflib
import io
import json
import math
import numbers
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

__all__ = [
    "Comparison",
    "InputTooSmallError",
    "Layer",
    "LayerRow",
    "RFStep",
    "ReceptiveField",
    "ShapeExplanation",
    "Summary",
    "activation",
    "activation_memory",
    "adaptive_avg_pool",
    "adaptive_max_pool",
    "as_layer",
    "avg_pool",
    "batch_norm",
    "compare_bottleneck",
    "compare_depthwise_separable",
    "compare_grouped",
    "compare_stacked",
    "concat",
    "conv",
    "conv_flops",
    "conv_macs",
    "conv_output_size",
    "conv_params",
    "conv_transpose",
    "conv_transpose_output_size",
    "dense_block",
    "dropout",
    "dtype_size",
    "flatten",
    "global_avg_pool",
    "identity",
    "linear",
    "linear_macs",
    "linear_params",
    "lrn",
    "max_pool",
    "parse_shape",
    "pool_output_size",
    "rbf",
    "receptive_field",
    "relu",
    "residual",
    "same_padding",
    "sequential",
    "subsampling",
    "summary",
]

CONVENTIONS = ("torchvision", "full")

# --------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------


def _check_int(value, name, minimum=None):
    """Return ``value`` as an int, refusing bools, floats and small values."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        rule = {0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}")
        raise ValueError(f"{name} must be {rule}, got {value}")
    return value


def _check_bool(value, name):
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def _check_size(value, name, minimum):
    """Validate an int or a tuple of ints, keeping its form."""
    if isinstance(value, (tuple, list)):
        if not value:
            raise ValueError(f"{name} must not be empty")
        return tuple(_check_int(v, f"{name}[{i}]", minimum)
                     for i, v in enumerate(value))
    return _check_int(value, name, minimum)


def _check_padding(padding, name="padding"):
    if isinstance(padding, str):
        mode = padding.lower()
        if mode not in ("same", "valid"):
            raise ValueError(
                f"{name} must be an int, a tuple of ints, 'same' or 'valid', "
                f"got {padding!r}")
        return mode
    return _check_size(padding, name, 0)


def _ndim(*values):
    """Number of spatial dimensions implied by tuple arguments (None if all ints)."""
    lengths = {len(v) for v in values if isinstance(v, (tuple, list))}
    if len(lengths) > 1:
        raise ValueError(
            "tuple arguments must all have the same length, got lengths "
            f"{sorted(lengths)}")
    return lengths.pop() if lengths else None


def _per_dim(value, name, ndim, minimum):
    """Broadcast an int to ``ndim`` entries or check a tuple has ``ndim``."""
    value = _check_size(value, name, minimum)
    if isinstance(value, tuple):
        if len(value) != ndim:
            raise ValueError(
                f"{name} has {len(value)} entries but the input has {ndim} "
                f"spatial dimension{'s' if ndim != 1 else ''}")
        return value
    return (value,) * ndim


def _padding_pairs(padding, kernel, dilation, ndim, name="padding"):
    """(left, right) padding per dimension; 'same' split as PyTorch does."""
    padding = _check_padding(padding, name)
    if padding == "valid":
        return ((0, 0),) * ndim
    if padding == "same":
        return tuple(_same_pair(k, d) for k, d in zip(kernel, dilation))
    return tuple((p, p) for p in _per_dim(padding, name, ndim, 0))


def _same_pair(k, d):
    total = d * (k - 1)
    return (total // 2, total - total // 2)


class InputTooSmallError(ValueError):
    """A window is larger than the padded input, so no output remains.

    A subclass of ValueError; :func:`summary` uses it to name the layer where
    a network's feature map vanishes.

    Notes
    -----
    See :ref:`theory-output-size`.

    Examples
    --------
    >>> try:
    ...     conv_output_size(3, 5)
    ... except InputTooSmallError:
    ...     print("no output left")
    no output left
    """


def _window_count(n, k, s, padding, d, ceil_mode=False):
    """Positions of a window of extent ``d(k-1)+1`` sliding by ``s`` over an
    input of ``n`` with ``padding`` (total of both sides) added.

    This is the one place the output-size formula lives::

        out = floor((n + padding - d(k-1) - 1) / s) + 1     (ceil with ceil_mode)

    The result is zero or negative when the window does not fit.
    """
    span = n + padding - d * (k - 1) - 1
    return (-(-span // s) if ceil_mode else span // s) + 1


def _pool_window_count(n, k, s, p, d, ceil_mode):
    """:func:`_window_count` with padding ``p`` on each side, as pooling
    counts it: in ceil mode a last window that would start past the input
    and its left padding is dropped (PyTorch's rule)."""
    out = _window_count(n, k, s, 2 * p, d, ceil_mode)
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _out_len(n, k, s, pl, pr, d, ceil_mode, overhang=False):
    """:func:`_window_count`, refusing a kernel larger than the padded input
    (unless ``overhang``: pooling in ceil mode keeps one such window)."""
    count = _window_count(n, k, s, pl + pr, d, ceil_mode)
    if d * (k - 1) + 1 > n + pl + pr and not (overhang and ceil_mode and count >= 1):
        dil = f" with dilation {d}" if d != 1 else ""
        raise InputTooSmallError(
            f"kernel_size {k}{dil} spans {d * (k - 1) + 1} positions but the "
            f"padded input has only {n} + {pl} + {pr} = {n + pl + pr}: the "
            "kernel is larger than the padded input")
    return count


# --------------------------------------------------------------------------
# single-layer output sizes
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
    _check_bool(explain, "explain")
    _check_bool(strict, "strict")
    scalar, outs, lines, fits = _conv_dims(n, kernel_size, stride, padding,
                                           dilation, ceil_mode)
    return _finish(outs, lines, fits, scalar, explain, strict, "convolution")


def _conv_dims(n, kernel_size, stride, padding, dilation, ceil_mode,
               pad_limits=None, overhang=False):
    """Per-dimension sizes, worked lines and fit flags of a sliding window."""
    scalar, ndim = _layout(n, kernel_size, stride, dilation,
                           padding if not isinstance(padding, str) else 0)
    sizes = _per_dim(n, "n", ndim, 1)
    k = _per_dim(kernel_size, "kernel_size", ndim, 1)
    s = _per_dim(stride, "stride", ndim, 1)
    d = _per_dim(dilation, "dilation", ndim, 1)
    pads = _padding_pairs(padding, k, d, ndim)
    _check_bool(ceil_mode, "ceil_mode")
    outs, lines, fits = [], [], []
    for i in range(ndim):
        try:
            out = _out_len(sizes[i], k[i], s[i], *pads[i], d[i], ceil_mode, overhang)
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
    k = _per_dim(kernel_size, "kernel_size", ndim, 1)
    p = _per_dim(padding, "padding", ndim, 0)
    for ki, pi in zip(k, p):
        if pi > ki // 2:
            raise ValueError(
                f"padding must be at most half the kernel size (kernel_size // 2"
                f" = {ki // 2}), got padding={pi}")
    _check_bool(explain, "explain")
    _check_bool(strict, "strict")
    scalar, outs, lines, fits = _conv_dims(n, kernel_size, stride, padding,
                                           dilation, ceil_mode,
                                           [ki // 2 for ki in k], overhang=True)
    if ceil_mode:
        sizes = _per_dim(n, "n", ndim, 1)
        s = _per_dim(stride, "stride", ndim, 1)
        d = _per_dim(dilation, "dilation", ndim, 1)
        for i in range(ndim):
            last = (outs[i] - 1) * s[i]
            kept = _pool_window_count(sizes[i], k[i], s[i], p[i], d[i], ceil_mode)
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
    sizes = _per_dim(n, "n", ndim, 1)
    k = _per_dim(kernel_size, "kernel_size", ndim, 1)
    s = _per_dim(stride, "stride", ndim, 1)
    p = _per_dim(padding, "padding", ndim, 0)
    op = _per_dim(output_padding, "output_padding", ndim, 0)
    d = _per_dim(dilation, "dilation", ndim, 1)
    _check_bool(explain, "explain")
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
    k = _per_dim(kernel_size, "kernel_size", ndim, 1)
    d = _per_dim(dilation, "dilation", ndim, 1)
    pairs = tuple(_same_pair(ki, di) for ki, di in zip(k, d))
    return pairs[0] if scalar else pairs


# --------------------------------------------------------------------------
# parameters, MACs, memory
# --------------------------------------------------------------------------


def _groups_check(in_channels, out_channels, groups):
    if in_channels % groups:
        raise ValueError(f"in_channels={in_channels} is not divisible by "
                         f"groups={groups}")
    if out_channels % groups:
        raise ValueError(f"out_channels={out_channels} is not divisible by "
                         f"groups={groups}")


def conv_params(in_channels, out_channels, kernel_size, groups=1, bias=True):
    """Number of learnable parameters of a convolution.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts, both divisible by ``groups``.
    kernel_size : int or tuple of int
        An int ``k`` means a ``k x k`` kernel (2-D); pass a tuple for other
        ranks, e.g. ``(k,)`` for 1-D or ``(k, k, k)`` for 3-D.
    groups : int
        Each group maps ``in_channels/groups`` inputs to
        ``out_channels/groups`` outputs.
    bias : bool

    Returns
    -------
    int

    Raises
    ------
    TypeError, ValueError
        On non-int or non-positive arguments, or channels not divisible by
        ``groups``.

    See Also
    --------
    conv_macs

    Notes
    -----
    Derived in :ref:`theory-parameter-count`.

    .. math:: C_{out} \\cdot \\frac{C_{in}}{g} \\cdot \\prod k + C_{out}
              [\\text{bias}]

    Examples
    --------
    The cs231n example, ten 5x5 filters over a 3-channel input:

    >>> conv_params(3, 10, 5)
    760
    >>> conv_params(256, 256, 3, bias=False)
    589824
    >>> conv_params(32, 32, 3, groups=32, bias=False)    # depthwise
    288
    """
    cin = _check_int(in_channels, "in_channels", 1)
    cout = _check_int(out_channels, "out_channels", 1)
    g = _check_int(groups, "groups", 1)
    _check_bool(bias, "bias")
    _groups_check(cin, cout, g)
    k = _check_size(kernel_size, "kernel_size", 1)
    kvol = math.prod(k) if isinstance(k, tuple) else k * k
    return cout * (cin // g) * kvol + (cout if bias else 0)


def conv_macs(in_channels, out_channels, kernel_size, output_size, groups=1):
    """Multiply-accumulates of a convolution producing ``output_size``.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, groups
        As in :func:`conv_params`.
    output_size : int or tuple of int
        Spatial size of the output: an int ``n`` means ``n x n``; pass a
        tuple for other ranks.

    Returns
    -------
    int

    Raises
    ------
    TypeError, ValueError
        As :func:`conv_params`.

    See Also
    --------
    conv_params, conv_flops

    Notes
    -----
    Derived in :ref:`theory-parameter-count`.

    Each output element is a dot product of length :math:`C_{in}/g \\cdot
    \\prod k`, so

    .. math:: \\text{MACs} = C_{out} \\prod n_{out} \\cdot \\frac{C_{in}}{g}
              \\prod k

    Bias additions are not counted (the torchvision/fvcore convention).

    Examples
    --------
    >>> conv_macs(3, 64, 7, 112)     # ResNet's first convolution
    118013952
    """
    weights = conv_params(in_channels, out_channels, kernel_size, groups,
                          bias=False)
    out = _check_size(output_size, "output_size", 1)
    positions = math.prod(out) if isinstance(out, tuple) else out * out
    return weights * positions


def conv_flops(in_channels, out_channels, kernel_size, output_size, groups=1):
    """Floating-point operations of a convolution: ``2 * conv_macs(...)``.

    Notes
    -----
    Derived in :ref:`theory-parameter-count`.

    Examples
    --------
    >>> conv_flops(3, 10, 5, 32)      # 750 weights at 32*32 positions, x2
    1536000
    """
    return 2 * conv_macs(in_channels, out_channels, kernel_size, output_size,
                         groups)


def linear_params(in_features, out_features, bias=True):
    """Parameters of a fully connected layer: ``in * out (+ out)``.

    Notes
    -----
    Derived in :ref:`theory-parameter-count`.

    A linear layer is a convolution whose kernel covers the whole input.

    Examples
    --------
    >>> linear_params(9216, 4096)
    37752832
    """
    fin = _check_int(in_features, "in_features", 1)
    fout = _check_int(out_features, "out_features", 1)
    _check_bool(bias, "bias")
    return fin * fout + (fout if bias else 0)


def linear_macs(in_features, out_features):
    """Multiply-accumulates of a fully connected layer on one vector.

    Notes
    -----
    Derived in :ref:`theory-parameter-count`.

    A linear layer is a convolution whose kernel covers the whole input.

    Examples
    --------
    >>> linear_macs(512, 1000)
    512000
    """
    return linear_params(in_features, out_features, bias=False)


_DTYPE_SIZES = {
    "bool": 1, "int8": 1, "uint8": 1, "float8": 1,
    "int16": 2, "uint16": 2, "float16": 2, "half": 2, "bfloat16": 2,
    "int32": 4, "uint32": 4, "float32": 4, "float": 4, "single": 4,
    "int64": 8, "uint64": 8, "float64": 8, "double": 8, "long": 8,
}


def dtype_size(dtype):
    """Bytes per element of ``dtype``.

    Parameters
    ----------
    dtype : str, int or dtype-like
        A name such as ``"float32"``, ``"float16"`` or ``"bfloat16"``
        (a ``"torch."`` prefix is ignored), a byte count, or any object with
        an integer ``itemsize`` (NumPy and PyTorch dtypes).

    Returns
    -------
    int

    Raises
    ------
    TypeError, ValueError
        For anything else, listing the known names.

    Notes
    -----
    See :ref:`theory-parameter-count`.

    Examples
    --------
    >>> dtype_size("float32"), dtype_size("bfloat16"), dtype_size(8)
    (4, 2, 8)
    """
    if isinstance(dtype, numbers.Integral) and not isinstance(dtype, bool):
        return _check_int(dtype, "dtype (bytes per element)", 1)
    itemsize = getattr(dtype, "itemsize", None)
    if isinstance(itemsize, numbers.Integral) and not isinstance(itemsize, bool):
        return int(itemsize)
    name = dtype if isinstance(dtype, str) else getattr(dtype, "__name__", None)
    if isinstance(name, str):
        key = name.lower().strip()
        key = key[len("torch."):] if key.startswith("torch.") else key
        if key in _DTYPE_SIZES:
            return _DTYPE_SIZES[key]
        raise ValueError(f"unknown dtype {dtype!r}; known names: "
                         + ", ".join(sorted(_DTYPE_SIZES)))
    raise TypeError(f"dtype must be a name, a byte count or have an itemsize, "
                    f"got {type(dtype).__name__}")


def _dtype_name(dtype):
    if isinstance(dtype, str):
        return dtype
    if isinstance(dtype, numbers.Integral):
        return f"{int(dtype)}-byte"
    name = getattr(dtype, "name", None) or getattr(dtype, "__name__", None)
    return name if isinstance(name, str) else str(dtype)


def activation_memory(shape, dtype="float32", batch_size=1):
    """Bytes needed to store a tensor of ``shape`` (per batch of ``batch_size``).

    Parameters
    ----------
    shape : int, tuple of int or str
        Shape without the batch dimension, e.g. ``(64, 112, 112)`` or
        ``"64x112x112"``.
    dtype : str, int or dtype-like
        See :func:`dtype_size`.
    batch_size : int

    Returns
    -------
    int

    Notes
    -----
    Derived in :ref:`theory-output-size`.

    Examples
    --------
    >>> activation_memory((64, 112, 112))
    3211264
    >>> activation_memory("3x224x224", dtype="float16", batch_size=32)
    9633792
    """
    shape = parse_shape(shape)
    batch = _check_int(batch_size, "batch_size", 1)
    return math.prod(shape) * dtype_size(dtype) * batch


def parse_shape(shape, name="input_shape"):
    """Normalise a shape given as ``"3x224x224"``, an int or a sequence of ints.

    Notes
    -----
    See :ref:`theory-output-size`.

    Examples
    --------
    >>> parse_shape("3x224x224")
    (3, 224, 224)
    >>> parse_shape(784)
    (784,)
    """
    if isinstance(shape, str):
        parts = [p for p in re.split(r"[x×,*\s]+", shape.strip().lower()) if p]
        if not parts or not all(p.isdigit() for p in parts):
            raise ValueError(
                f"{name} must look like '3x224x224' (positive integers joined by"
                f" 'x'), got {shape!r}")
        shape = tuple(int(p) for p in parts)
    if isinstance(shape, (tuple, list)):
        if not shape:
            raise ValueError(f"{name} must have at least one dimension")
        return tuple(_check_int(v, f"{name}[{i}]", 1) for i, v in enumerate(shape))
    return (_check_int(shape, name, 1),)


# --------------------------------------------------------------------------
# comparisons
# --------------------------------------------------------------------------


def _fmt(n):
    return f"{n:,}"


@dataclass(frozen=True)
class Comparison:
    """Two ways of building a layer, side by side.

    Attributes
    ----------
    title : str
    baseline, alternative : str
        Descriptions of the two designs.
    baseline_params, alternative_params : int
    baseline_macs, alternative_macs : int or None
        Filled in when an output size was given.
    parts : tuple of (str, int)
        The alternative's layers and their parameter counts.

    Notes
    -----
    Derived in :ref:`theory-parameter-count`.

    Examples
    --------
    >>> c = compare_depthwise_separable(32, 64, 3)
    >>> c.baseline_params, c.alternative_params
    (18432, 2336)
    """

    title: str
    baseline: str
    alternative: str
    baseline_params: int
    alternative_params: int
    baseline_macs: Any = None
    alternative_macs: Any = None
    parts: tuple = ()

    @property
    def saving(self):
        """Parameters saved by the alternative (negative if it costs more)."""
        return self.baseline_params - self.alternative_params

    @property
    def ratio(self):
        """``baseline_params / alternative_params``."""
        return self.baseline_params / self.alternative_params

    @property
    def saving_fraction(self):
        """Fraction of the baseline's parameters saved."""
        return self.saving / self.baseline_params

    @property
    def macs_saving(self):
        if self.baseline_macs is None:
            return None
        return self.baseline_macs - self.alternative_macs

    def __str__(self):
        nums = [_fmt(self.baseline_params), _fmt(self.alternative_params),
                _fmt(self.saving)]
        w = max(map(len, nums))
        parts = ""
        if len(self.parts) > 1:
            parts = " (" + " + ".join(_fmt(n) for _, n in self.parts) + ")"
        lines = [
            self.title,
            f"  baseline:    {nums[0]:>{w}} params  {self.baseline}",
            f"  alternative: {nums[1]:>{w}} params  {self.alternative}{parts}",
            f"  saving:      {nums[2]:>{w}} params  "
            f"({100 * self.saving_fraction:.1f}%, {self.ratio:.2f}x fewer)",
        ]
        if self.baseline_macs is not None:
            lines.append(
                f"  MACs:        {_fmt(self.baseline_macs)} against "
                f"{_fmt(self.alternative_macs)} ({_fmt(self.macs_saving)} saved)")
        return "\n".join(lines)


def _k_str(kernel_size):
    k = _check_size(kernel_size, "kernel_size", 1)
    return "x".join(map(str, k)) if isinstance(k, tuple) else f"{k}x{k}"


def _compare(title, baseline, alternative, output_size):
    """Build a Comparison from (label, conv_params args) lists."""
    def total(layers, fn):
        return sum(fn(*args) for _, args in layers)

    base_p = total(baseline, conv_params)
    parts = tuple((label, conv_params(*args)) for label, args in alternative)
    macs = (None, None)
    if output_size is not None:
        def m(args):
            cin, cout, k, g, _ = args
            return conv_macs(cin, cout, k, output_size, g)
        macs = (sum(m(a) for _, a in baseline), sum(m(a) for _, a in alternative))
    return Comparison(title, ", ".join(lbl for lbl, _ in baseline),
                      ", ".join(lbl for lbl, _ in alternative), base_p,
                      sum(p for _, p in parts), macs[0], macs[1], parts)


def compare_bottleneck(channels=256, bottleneck_channels=64, kernel_size=3, *,
                       bias=False, output_size=None):
    """A KxK convolution against the 1x1 -> KxK -> 1x1 bottleneck around it.

    Parameters
    ----------
    channels : int
        Input and output channels of both designs.
    bottleneck_channels : int
        Channels inside the bottleneck.
    kernel_size : int or tuple of int
    bias : bool
        Whether every convolution has a bias.
    output_size : int, tuple of int or None
        Spatial output size (padding keeps it equal for every layer); when
        given, MACs are compared as well.

    Returns
    -------
    Comparison

    See Also
    --------
    conv_params, compare_depthwise_separable

    Notes
    -----
    Derived in :ref:`theory-bottleneck`.

    Standard: :math:`C \\cdot C \\cdot k^2`. Bottleneck with :math:`B`
    channels: :math:`C B + B B k^2 + B C`. For :math:`C = 256, B = 64, k = 3`
    that is 589,824 against 16,384 + 36,864 + 16,384 = 69,632.

    Examples
    --------
    >>> c = compare_bottleneck(256, 64, 3)
    >>> c.baseline_params, c.alternative_params, c.saving
    (589824, 69632, 520192)
    >>> print(c)
    3x3 convolution against a 1x1 bottleneck
      baseline:    589,824 params  3x3 conv 256->256
      alternative:  69,632 params  1x1 conv 256->64, 3x3 conv 64->64, 1x1 conv 64->256 (16,384 + 36,864 + 16,384)
      saving:      520,192 params  (88.2%, 8.47x fewer)
    """
    c = _check_int(channels, "channels", 1)
    b = _check_int(bottleneck_channels, "bottleneck_channels", 1)
    ks = _k_str(kernel_size)
    return _compare(
        f"{ks} convolution against a 1x1 bottleneck",
        [(f"{ks} conv {c}->{c}", (c, c, kernel_size, 1, bias))],
        [(f"1x1 conv {c}->{b}", (c, b, _ones_like(kernel_size), 1, bias)),
         (f"{ks} conv {b}->{b}", (b, b, kernel_size, 1, bias)),
         (f"1x1 conv {b}->{c}", (b, c, _ones_like(kernel_size), 1, bias))],
        output_size)


def _ones_like(kernel_size):
    return (1,) * len(kernel_size) if isinstance(kernel_size, (tuple, list)) else 1


def compare_depthwise_separable(in_channels, out_channels, kernel_size=3, *,
                                bias=False, output_size=None):
    """A standard convolution against a depthwise one followed by a 1x1.

    Returns
    -------
    Comparison

    Notes
    -----
    Derived in :ref:`theory-grouped`.

    Standard: :math:`C_{out} C_{in} k^2`. Depthwise-separable:
    :math:`C_{in} k^2 + C_{in} C_{out}`, a ratio of
    :math:`1/C_{out} + 1/k^2`.

    Examples
    --------
    >>> c = compare_depthwise_separable(32, 64, 3)
    >>> c.baseline_params, c.alternative_params
    (18432, 2336)
    """
    cin = _check_int(in_channels, "in_channels", 1)
    cout = _check_int(out_channels, "out_channels", 1)
    ks = _k_str(kernel_size)
    return _compare(
        f"{ks} convolution against a depthwise-separable one",
        [(f"{ks} conv {cin}->{cout}", (cin, cout, kernel_size, 1, bias))],
        [(f"{ks} depthwise {cin}->{cin}", (cin, cin, kernel_size, cin, bias)),
         (f"1x1 conv {cin}->{cout}", (cin, cout, _ones_like(kernel_size), 1, bias))],
        output_size)


def compare_grouped(in_channels, out_channels, kernel_size=3, groups=2, *,
                    bias=False, output_size=None):
    """A standard convolution against the same one split into ``groups``.

    Returns
    -------
    Comparison

    Notes
    -----
    Derived in :ref:`theory-grouped`.

    Grouping divides the weights (and MACs) by :math:`g`:
    :math:`C_{out} \\cdot (C_{in}/g) \\cdot k^2`.

    Examples
    --------
    >>> c = compare_grouped(128, 128, 3, groups=32)
    >>> c.baseline_params, c.alternative_params, c.ratio
    (147456, 4608, 32.0)
    """
    cin = _check_int(in_channels, "in_channels", 1)
    cout = _check_int(out_channels, "out_channels", 1)
    g = _check_int(groups, "groups", 1)
    ks = _k_str(kernel_size)
    return _compare(
        f"{ks} convolution against a grouped one",
        [(f"{ks} conv {cin}->{cout}", (cin, cout, kernel_size, 1, bias))],
        [(f"{ks} conv {cin}->{cout}, {g} groups", (cin, cout, kernel_size, g, bias))],
        output_size)


def compare_stacked(channels, kernel_size=5, small_kernel=3, *, bias=False,
                    output_size=None):
    """One large convolution against a stack of small ones with the same field.

    ``(kernel_size - 1) / (small_kernel - 1)`` stride-1 layers of
    ``small_kernel`` see the same ``kernel_size`` window: two 3x3 for a 5x5,
    three for a 7x7.

    Returns
    -------
    Comparison

    Raises
    ------
    ValueError
        If ``kernel_size - 1`` is not a multiple of ``small_kernel - 1``.

    Notes
    -----
    Derived in :ref:`theory-receptive-field` and :ref:`theory-parameter-count`.

    :math:`C^2 K^2` against :math:`n C^2 k^2` with :math:`n = (K-1)/(k-1)`;
    for 5x5 against two 3x3 that is 25 against 18 weights per channel pair.

    Examples
    --------
    >>> c = compare_stacked(64, 5, 3)
    >>> c.baseline_params, c.alternative_params
    (102400, 73728)
    """
    c = _check_int(channels, "channels", 1)
    big = _check_int(kernel_size, "kernel_size", 1)
    small = _check_int(small_kernel, "small_kernel", 2)
    if (big - 1) % (small - 1):
        raise ValueError(
            f"kernel_size - 1 = {big - 1} must be a multiple of small_kernel - 1"
            f" = {small - 1} for a stack to cover the same window")
    n = (big - 1) // (small - 1)
    return _compare(
        f"{big}x{big} convolution against {n} stacked {small}x{small}",
        [(f"{big}x{big} conv {c}->{c}", (c, c, big, 1, bias))],
        [(f"{small}x{small} conv {c}->{c}", (c, c, small, 1, bias))] * n,
        output_size)


# --------------------------------------------------------------------------
# layer specs
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
        ``'same'`` requires stride 1, as in PyTorch.
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
    cfg = dict(out_channels=_check_int(out_channels, "out_channels", 1),
               kernel_size=_check_size(kernel_size, "kernel_size", 1),
               stride=_check_size(stride, "stride", 1),
               padding=_check_padding(padding),
               dilation=_check_size(dilation, "dilation", 1),
               groups=_check_int(groups, "groups", 1),
               bias=_check_bool(bias, "bias"))
    if cfg["padding"] == "same" and any(
            v != 1 for v in _iter(cfg["stride"])):
        raise ValueError("padding='same' needs stride 1: a strided convolution "
                         "cannot keep the size (use an explicit padding)")
    if cfg["out_channels"] % cfg["groups"]:
        raise ValueError(f"out_channels={cfg['out_channels']} is not divisible "
                         f"by groups={cfg['groups']}")
    if in_channels is not None:
        cfg["in_channels"] = _check_int(in_channels, "in_channels", 1)
        _groups_check(cfg["in_channels"], cfg["out_channels"], cfg["groups"])
    if connections is not None:
        table = tuple(tuple(_check_int(c, "connections entry", 0) for c in row)
                      for row in connections)
        if len(table) != cfg["out_channels"]:
            raise ValueError(f"connections has {len(table)} rows but "
                             f"out_channels={cfg['out_channels']}")
        if cfg["groups"] != 1:
            raise ValueError("connections and groups cannot be combined")
        if any(not row for row in table):
            raise ValueError("every output map needs at least one connection")
        cfg["connections"] = table
    cfg["trainable"] = _check_bool(trainable, "trainable")
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
    cfg = dict(out_channels=_check_int(out_channels, "out_channels", 1),
               kernel_size=_check_size(kernel_size, "kernel_size", 1),
               stride=_check_size(stride, "stride", 1),
               padding=_check_size(padding, "padding", 0),
               output_padding=_check_size(output_padding, "output_padding", 0),
               dilation=_check_size(dilation, "dilation", 1),
               groups=_check_int(groups, "groups", 1),
               bias=_check_bool(bias, "bias"),
               trainable=_check_bool(trainable, "trainable"))
    if cfg["out_channels"] % cfg["groups"]:
        raise ValueError(f"out_channels={cfg['out_channels']} is not divisible "
                         f"by groups={cfg['groups']}")
    if in_channels is not None:
        cfg["in_channels"] = _check_int(in_channels, "in_channels", 1)
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
    cfg = dict(out_features=_check_int(out_features, "out_features", 1),
               bias=_check_bool(bias, "bias"),
               trainable=_check_bool(trainable, "trainable"))
    if in_features is not None:
        cfg["in_features"] = _check_int(in_features, "in_features", 1)
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
    return Layer("rbf", dict(out_features=_check_int(out_features, "out_features", 1),
                             trainable=_check_bool(trainable, "trainable")),
                 name=_name(name))


def _pool(kind, kernel_size, stride, padding, dilation, ceil_mode, name):
    cfg = dict(kernel_size=_check_size(kernel_size, "kernel_size", 1),
               stride=None if stride is None else _check_size(stride, "stride", 1),
               padding=_check_size(padding, "padding", 0),
               dilation=_check_size(dilation, "dilation", 1),
               ceil_mode=_check_bool(ceil_mode, "ceil_mode"))
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
    layer.config["trainable"] = _check_bool(trainable, "trainable")
    return layer


def _adaptive(kind, output_size, name):
    if isinstance(output_size, (tuple, list)):
        size = tuple(None if v is None else _check_int(v, f"output_size[{i}]", 1)
                     for i, v in enumerate(output_size))
    else:
        size = _check_int(output_size, "output_size", 1)
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
    return Layer("batch_norm", dict(affine=_check_bool(affine, "affine"),
                                    trainable=_check_bool(trainable, "trainable")),
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
    return Layer("lrn", dict(size=_check_int(size, "size", 1)), name=_name(name))


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


# --------------------------------------------------------------------------
# the walker shared by summary() and receptive_field()
# --------------------------------------------------------------------------

_POOLS = ("max_pool", "avg_pool", "subsampling", "window")
_ADAPTIVE = ("adaptive_avg_pool", "adaptive_max_pool")
_DROP = "drop"   # the layer leaves no spatial extent to speak of


@dataclass(frozen=True)
class _Win:
    extent: int       # d(k-1)+1
    stride: Any
    pad_left: int
    transposed: bool = False


def _rf_step(rf, win):
    """Apply the receptive-field recurrence for one window (one dimension)."""
    size, jump, start = rf
    e = win.extent
    if win.transposed:
        size = size + ((e - 1) // win.stride) * jump
        start = start + Fraction(win.pad_left - Fraction(e - 1, 2), win.stride) * jump
        return (size, jump / win.stride, start)
    return (size + (e - 1) * jump,
            jump * win.stride,
            start + (Fraction(e - 1, 2) - win.pad_left) * jump)


def _rf_apply(rf, windows):
    if rf is None or windows is None:
        return rf
    if windows == _DROP:
        return None
    if len(rf) == 1 and len(windows) > 1:
        rf = rf * len(windows)
    if len(windows) == 1 and len(rf) > 1:
        windows = windows * len(rf)
    if len(rf) != len(windows):
        raise ValueError(f"a {len(windows)}-D window cannot follow a "
                         f"{len(rf)}-D feature map")
    return tuple(_rf_step(r, w) for r, w in zip(rf, windows))


def _rf_merge(rfs):
    """Largest field over all branches, per dimension."""
    rfs = [r for r in rfs if r is not None]
    if not rfs:
        return None
    ndim = max(len(r) for r in rfs)
    rfs = [r * ndim if len(r) == 1 else r for r in rfs]
    return tuple(max((r[i] for r in rfs), key=lambda t: (t[0], t[1]))
                 for i in range(ndim))


def _plain(x):
    x = Fraction(x)
    return int(x) if x.denominator == 1 else float(x)


def _collapse(values):
    values = tuple(_plain(v) for v in values)
    return values[0] if len(set(values)) == 1 else values


def _cfg_ndim(cfg):
    n = _ndim(*(v for v in cfg.values() if isinstance(v, tuple)
                and all(isinstance(x, int) for x in v)))
    return n or 1


def _windows(layer, spatial):
    """Sliding-window geometry of a leaf: a tuple of _Win, None or _DROP."""
    kind, cfg = layer.kind, layer.config
    if kind in ("conv",) + _POOLS:
        nd = len(spatial) if spatial is not None else _cfg_ndim(cfg)
        k = _per_dim(cfg["kernel_size"], "kernel_size", nd, 1)
        stride = cfg["stride"] if cfg.get("stride") is not None else cfg["kernel_size"]
        s = _per_dim(stride, "stride", nd, 1)
        d = _per_dim(cfg.get("dilation", 1), "dilation", nd, 1)
        pads = _padding_pairs(cfg.get("padding", 0), k, d, nd)
        return tuple(_Win(di * (ki - 1) + 1, si, pl)
                     for ki, si, di, (pl, _) in zip(k, s, d, pads))
    if kind == "conv_transpose":
        nd = len(spatial) if spatial is not None else _cfg_ndim(cfg)
        k = _per_dim(cfg["kernel_size"], "kernel_size", nd, 1)
        s = _per_dim(cfg["stride"], "stride", nd, 1)
        d = _per_dim(cfg["dilation"], "dilation", nd, 1)
        p = _per_dim(cfg["padding"], "padding", nd, 0)
        return tuple(_Win(di * (ki - 1) + 1, si, pi, True)
                     for ki, si, di, pi in zip(k, s, d, p))
    if kind in _ADAPTIVE:
        if spatial is None:
            raise ValueError("the receptive field of adaptive pooling depends on "
                             "the input size: pass input_shape")
        out = _adaptive_out(cfg["output_size"], spatial)
        wins = []
        for n, o in zip(spatial, out):
            # window i covers [floor(i n / o), ceil((i + 1) n / o))
            longest = max(-(-(i + 1) * n // o) - (i * n // o) for i in range(o))
            wins.append(_Win(longest, Fraction(n, o), 0))
        return tuple(wins)
    if kind in ("flatten", "linear", "rbf"):
        return _DROP
    return None


def _adaptive_out(output_size, spatial):
    nd = len(spatial)
    if isinstance(output_size, tuple):
        if len(output_size) != nd:
            raise ValueError(f"output_size has {len(output_size)} entries but the"
                             f" input has {nd} spatial dimensions")
        return tuple(n if o is None else o for n, o in zip(spatial, output_size))
    return (output_size,) * nd


@dataclass(frozen=True)
class LayerRow:
    """One row of a :class:`Summary`.

    Attributes
    ----------
    name : str
        Dotted path of the layer in the spec.
    kind : str
    output_shape : tuple of int
        Without the batch dimension.
    params, trainable_params : int
    macs : int
        Under the summary's convention.
    receptive_field : int, tuple or None
        Size in input pixels (a tuple when it differs per dimension; None
        once the spatial layout is gone).
    rf_jump, rf_start : number, tuple or None
        Effective stride and centre of the first unit's field.
    activation_memory : int
        Bytes of this layer's output for the summary's dtype and batch size.

    Notes
    -----
    Derived in :ref:`theory-output-size` and :ref:`theory-parameter-count`.

    Examples
    --------
    >>> row = summary([conv(8, 3, name="c1")], (3, 32, 32)).rows[0]
    >>> row.name, row.output_shape, row.params
    ('c1', (8, 30, 30), 224)
    """

    name: str
    kind: str
    output_shape: tuple
    params: int
    trainable_params: int
    macs: int
    receptive_field: Any
    rf_jump: Any
    rf_start: Any
    activation_memory: int

    def to_dict(self):
        return {"name": self.name, "kind": self.kind,
                "output_shape": None if self.output_shape is None
                else list(self.output_shape),
                "params": self.params, "trainable_params": self.trainable_params,
                "macs": self.macs,
                "receptive_field": _jsonable(self.receptive_field),
                "rf_jump": _jsonable(self.rf_jump),
                "rf_start": _jsonable(self.rf_start),
                "activation_memory": self.activation_memory}


def _jsonable(v):
    return list(v) if isinstance(v, tuple) else v


class _Walker:
    """Propagates shapes and receptive fields through a Layer tree.

    With ``shapes=False`` only receptive fields are tracked (no input shape
    needed, except for adaptive pooling).
    """

    def __init__(self, convention="torchvision", itemsize=4, batch_size=1,
                 shapes=True):
        self.full = convention == "full"
        self.itemsize = itemsize
        self.batch = batch_size
        self.shapes = shapes
        self.rows = []

    # composites ---------------------------------------------------------
    def run(self, layer, state, path):
        kind = layer.kind
        if kind == "sequential":
            for i, child in enumerate(layer.children):
                state = self.run(child, state, _join(path, child.name or str(i)))
            return state
        if kind == "residual":
            body, shortcut = layer.children
            a = self.run(body, state, _join(path, body.name))
            b = state if shortcut is None else self.run(
                shortcut, state, _join(path, shortcut.name or "shortcut"))
            state = self.merge("add", [a, b], _join(path, "add"))
            act = layer.config.get("activation")
            if act is not None:
                state = self.run(act, state, _join(path, act.name or act.kind))
            return state
        if kind == "concat":
            outs = [self.run(br, state, _join(path, br.name or f"branch{i + 1}"))
                    for i, br in enumerate(layer.children)]
            return self.merge("concat", outs, _join(path, "cat"))
        if kind == "dense_block":
            for i, child in enumerate(layer.children):
                child_path = _join(path, child.name or f"layer{i + 1}")
                new = self.run(child, state, child_path)
                state = self.merge("concat", [state, new], _join(child_path, "cat"))
            return state
        return self.leaf(layer, state, path)

    def merge(self, op, states, path):
        shapes = [s[0] for s in states]
        shape = None
        if self.shapes:
            if op == "add":
                if len(set(shapes)) != 1:
                    raise ValueError(
                        f"layer '{path}': the branches of a residual block must "
                        f"have the same shape to be added, got "
                        + " and ".join(_shape_str(s) for s in shapes)
                        + " (use a projection shortcut)")
                shape = shapes[0]
            else:
                spatial = {s[1:] for s in shapes}
                if len(spatial) != 1 or any(len(s) < 1 for s in shapes):
                    raise ValueError(
                        f"layer '{path}': branches concatenated along channels "
                        "must agree in every other dimension, got "
                        + ", ".join(_shape_str(s) for s in shapes))
                shape = (sum(s[0] for s in shapes),) + shapes[0][1:]
        rf = _rf_merge([s[1] for s in states])
        ops = math.prod(shape) * (len(states) - 1) if (
            self.full and op == "add" and shape) else 0
        self.add_row(path, op, shape, 0, 0, ops, rf)
        return (shape, rf)

    # leaves -------------------------------------------------------------
    def leaf(self, layer, state, path):
        shape, rf = state
        try:
            spatial = shape[1:] if shape is not None and len(shape) > 1 else None
            if self.shapes and shape is not None:
                out, params, macs = self.leaf_shape(layer, shape)
            else:
                out, params, macs = None, 0, 0
            wins = _windows(layer, spatial if self.shapes else None)
        except InputTooSmallError as exc:
            raise InputTooSmallError(
                f"the input is too small for the network: the feature map "
                f"vanishes at layer '{path}' ({layer.kind}) whose input is "
                f"{_shape_str(shape)}: {exc}") from None
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"layer '{path}' ({layer.kind}) on input "
                            f"{_shape_str(shape)}: {exc}") from None
        trainable = params if layer.config.get("trainable", True) else 0
        rf = _rf_apply(rf, wins)
        if out is not None and len(out) < 2:
            rf = None
        self.add_row(path, layer.kind, out, params, trainable, macs, rf)
        return (out, rf)

    def add_row(self, path, kind, shape, params, trainable, macs, rf):
        mem = 0 if shape is None else math.prod(shape) * self.itemsize * self.batch
        if rf is None:
            size = jump = start = None
        else:
            # a transposed convolution can make sizes fractional: round up
            size = _collapse(math.ceil(r[0]) for r in rf)
            jump = _collapse(r[1] for r in rf)
            start = _collapse(r[2] for r in rf)
        self.rows.append(LayerRow(path or kind, kind, shape, params, trainable,
                                  macs, size, jump, start, mem))

    def leaf_shape(self, layer, shape):
        """(output shape, params, MACs) of a leaf for an input shape."""
        kind, cfg = layer.kind, layer.config
        full = self.full
        numel_in = math.prod(shape)
        if kind == "conv":
            c, spatial = _need_spatial(shape, kind)
            nd = len(spatial)
            if cfg.get("in_channels", c) != c:
                raise ValueError(f"in_channels={cfg['in_channels']} does not match"
                                 f" the {c} channels of the input")
            k = _per_dim(cfg["kernel_size"], "kernel_size", nd, 1)
            s = _per_dim(cfg["stride"], "stride", nd, 1)
            d = _per_dim(cfg["dilation"], "dilation", nd, 1)
            pads = _padding_pairs(cfg["padding"], k, d, nd)
            out_sp = tuple(_out_len(n, ki, si, pl, pr, di, False)
                           for n, ki, si, (pl, pr), di in zip(spatial, k, s, pads, d))
            cout = cfg["out_channels"]
            positions = math.prod(out_sp)
            bias = cout if cfg["bias"] else 0
            table = cfg.get("connections")
            if table is not None:
                bad = [i for row in table for i in row if i >= c]
                if bad:
                    raise ValueError(f"connections refer to input map {bad[0]} but"
                                     f" the input has {c} channels")
                weights = sum(len(row) for row in table) * math.prod(k)
                params = weights + bias
            else:
                params = conv_params(c, cout, k, cfg["groups"], cfg["bias"])
                weights = params - bias
            macs = weights * positions
            if full and cfg["bias"]:
                macs += cout * positions
            return (cout,) + out_sp, params, macs
        if kind == "conv_transpose":
            c, spatial = _need_spatial(shape, kind)
            nd = len(spatial)
            if cfg.get("in_channels", c) != c:
                raise ValueError(f"in_channels={cfg['in_channels']} does not match"
                                 f" the {c} channels of the input")
            g, cout = cfg["groups"], cfg["out_channels"]
            _groups_check(c, cout, g)
            out_sp = conv_transpose_output_size(
                spatial, *(_per_dim(cfg[a], a, nd, 0) for a in (
                    "kernel_size", "stride", "padding", "output_padding",
                    "dilation")))
            k = _per_dim(cfg["kernel_size"], "kernel_size", nd, 1)
            weights = c * (cout // g) * math.prod(k)
            params = weights + (cout if cfg["bias"] else 0)
            macs = weights * math.prod(spatial)
            if full and cfg["bias"]:
                macs += cout * math.prod(out_sp)
            return (cout,) + tuple(out_sp), params, macs
        if kind in ("linear", "rbf"):
            fin = shape[-1]
            if cfg.get("in_features", fin) != fin:
                raise ValueError(f"in_features={cfg['in_features']} does not match"
                                 f" the last dimension ({fin}) of the input")
            fout = cfg["out_features"]
            bias = cfg.get("bias", False)
            rows = numel_in // fin
            macs = rows * fin * fout + (rows * fout if full and bias else 0)
            return shape[:-1] + (fout,), fin * fout + (fout if bias else 0), macs
        if kind in _POOLS:
            c, spatial = _need_spatial(shape, kind)
            nd = len(spatial)
            stride = cfg["stride"] if cfg["stride"] is not None else cfg["kernel_size"]
            if kind == "window":
                out_sp = conv_output_size(spatial, *(
                    _per_dim(v, a, nd, 0) for v, a in (
                        (cfg["kernel_size"], "kernel_size"), (stride, "stride"),
                        (cfg["padding"], "padding"), (cfg["dilation"], "dilation"))))
            else:
                out_sp = pool_output_size(spatial, *(
                    _per_dim(v, a, nd, 0) for v, a in (
                        (cfg["kernel_size"], "kernel_size"), (stride, "stride"),
                        (cfg["padding"], "padding"), (cfg["dilation"], "dilation"))),
                    ceil_mode=cfg["ceil_mode"])
            out = (c,) + tuple(out_sp)
            params = 2 * c if kind == "subsampling" else 0
            kvol = math.prod(_per_dim(cfg["kernel_size"], "kernel_size", nd, 1))
            macs = math.prod(out) * (kvol + (kind == "subsampling")) if full else 0
            return out, params, macs
        if kind in _ADAPTIVE:
            c, spatial = _need_spatial(shape, kind)
            out = (c,) + _adaptive_out(cfg["output_size"], spatial)
            return out, 0, numel_in if full else 0
        if kind == "batch_norm":
            params = 2 * shape[0] if cfg["affine"] else 0
            return shape, params, numel_in if full else 0
        if kind == "lrn":
            return shape, 0, numel_in * cfg["size"] if full else 0
        if kind == "flatten":
            return (numel_in,), 0, 0
        if kind in ("dropout", "identity"):
            return shape, 0, 0
        if kind in ACTIVATIONS:
            return shape, 0, numel_in if full else 0
        raise ValueError(f"unknown layer kind {kind!r}")


def _need_spatial(shape, kind):
    if len(shape) < 2:
        raise ValueError(
            f"a {kind} layer needs a (channels, *spatial) input, got "
            f"{_shape_str(shape)}; is a flatten or linear layer in the wrong place?")
    return shape[0], shape[1:]


def _join(path, name):
    if not name:
        return path
    return f"{path}.{name}" if path else name


def _shape_str(shape):
    return "?" if shape is None else "x".join(map(str, shape))


def _final_field(rows):
    """(size, jump, start) of the last feature map with spatial extent.

    That is the last row with a receptive field before the first global
    pooling (adaptive pooling to size 1), which collapses the map into a
    feature vector: for ResNet-50 the field of ``layer4``, not of ``avgpool``.
    """
    last = (None, None, None)
    for r in rows:
        if r.kind in _ADAPTIVE and r.output_shape is not None and all(
                n == 1 for n in r.output_shape[1:]):
            break
        if r.receptive_field is not None:
            last = (r.receptive_field, r.rf_jump, r.rf_start)
    return last


# --------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------


def _human(n, unit=""):
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {prefix}{unit}"
    return f"{n} {unit}".rstrip()


def _bytes(n):
    for factor, prefix in ((2 ** 30, "GiB"), (2 ** 20, "MiB"), (2 ** 10, "KiB")):
        if n >= factor:
            return f"{n / factor:.2f} {prefix}"
    return f"{n} B"


def _cell(v):
    if v is None:
        return "-"
    if isinstance(v, tuple):
        return "x".join(_cell(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


@dataclass(frozen=True)
class Summary:
    """Shapes and costs of every layer of a network.

    Attributes
    ----------
    name : str
    input_shape, output_shape : tuple of int
    rows : tuple of LayerRow
        One row per leaf layer and per merge (``add``/``cat``), in execution
        order; their ``params`` add up to ``total_params``.
    total_params, trainable_params : int
    total_macs, total_flops : int
        ``total_flops == 2 * total_macs``.
    receptive_field : int, tuple or None
        Of the last feature map with spatial dimensions (before flattening).
    convention : str
    dtype : str
    batch_size : int
    activation_memory : int
        Bytes of all layer outputs together (an upper bound on what a
        forward pass keeps for the backward pass; in-place layers share).
    parameter_memory : int
        Bytes of the parameters.

    Notes
    -----
    See :ref:`theory-parameter-count` and :ref:`theory-architectures`.

    Examples
    --------
    >>> s = summary([conv(6, 5), flatten(), linear(10)], (3, 32, 32))
    >>> s.output_shape, s.total_params
    ((10,), 47506)
    """

    name: str
    input_shape: tuple
    output_shape: tuple
    rows: tuple
    total_params: int
    trainable_params: int
    total_macs: int
    total_flops: int
    receptive_field: Any
    convention: str
    dtype: str
    batch_size: int
    activation_memory: int
    parameter_memory: int

    @property
    def non_trainable_params(self):
        return self.total_params - self.trainable_params

    def _header(self):
        return (f"{self.name}: input {_shape_str(self.input_shape)}, output "
                f"{_shape_str(self.output_shape)} ({self.dtype}, batch "
                f"{self.batch_size}, {self.convention} MAC convention)")

    def _totals(self):
        return [
            ("Total params", _fmt(self.total_params)),
            ("Trainable params", _fmt(self.trainable_params)),
            ("Non-trainable params", _fmt(self.non_trainable_params)),
            ("Total MACs", f"{_fmt(self.total_macs)} ({_human(self.total_macs)})"),
            ("Total FLOPs", f"{_fmt(self.total_flops)} ({_human(self.total_flops)})"),
            ("Receptive field", _cell(self.receptive_field)),
            ("Activation memory", _bytes(self.activation_memory)),
            ("Parameter memory", _bytes(self.parameter_memory)),
        ]

    _COLUMNS = ("Layer", "Kind", "Output shape", "Params", "MACs", "RF", "Memory")

    def _cells(self):
        return [(r.name, r.kind, _cell(r.output_shape), _fmt(r.params),
                 _fmt(r.macs), _cell(r.receptive_field), _bytes(r.activation_memory))
                for r in self.rows]

    def __str__(self):
        cells = self._cells()
        widths = [max([len(h)] + [len(row[i]) for row in cells])
                  for i, h in enumerate(self._COLUMNS)]
        right = {3, 4, 5, 6}

        def line(values):
            return "  ".join(v.rjust(w) if i in right else v.ljust(w)
                             for i, (v, w) in enumerate(zip(values, widths))).rstrip()

        rule = "-" * len(line(self._COLUMNS))
        out = [self._header(), rule, line(self._COLUMNS), rule]
        out += [line(c) for c in cells]
        out.append(rule)
        label_w = max(len(k) for k, _ in self._totals())
        out += [f"{k + ':':<{label_w + 1}} {v}" for k, v in self._totals()]
        return "\n".join(out)

    def __repr__(self):
        return (f"Summary({self.name!r}, params={self.total_params:,}, "
                f"macs={self.total_macs:,}, rows={len(self.rows)})")

    def to_markdown(self):
        """The table and totals as GitHub-flavoured Markdown."""
        out = [f"**{self._header()}**", "",
               "| " + " | ".join(self._COLUMNS) + " |",
               "|" + "|".join(["---"] * 2 + ["---"] + ["---:"] * 4) + "|"]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
                for row in self._cells()]
        out += [""] + [f"- {k}: {v}" for k, v in self._totals()]
        return "\n".join(out) + "\n"

    def to_csv(self):
        """One CSV line per row, raw numbers, shapes written as ``64x56x56``."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["name", "kind", "output_shape", "params",
                         "trainable_params", "macs", "receptive_field",
                         "rf_jump", "rf_start", "activation_memory"])
        for r in self.rows:
            writer.writerow([r.name, r.kind, _cell(r.output_shape), r.params,
                             r.trainable_params, r.macs, _cell(r.receptive_field),
                             _cell(r.rf_jump), _cell(r.rf_start),
                             r.activation_memory])
        return buf.getvalue()

    def to_dict(self):
        """Everything as plain lists, dicts and numbers."""
        return {
            "name": self.name, "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "convention": self.convention, "dtype": self.dtype,
            "batch_size": self.batch_size, "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "total_macs": self.total_macs, "total_flops": self.total_flops,
            "receptive_field": _jsonable(self.receptive_field),
            "activation_memory": self.activation_memory,
            "parameter_memory": self.parameter_memory,
            "layers": [r.to_dict() for r in self.rows],
        }

    def to_json(self, indent=2):
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)


def _resolve(model):
    """(Layer, default input shape or None, display name) for any model form."""
    if isinstance(model, str):
        from . import architectures
        name = architectures.canonical_name(model)
        return (architectures.get_architecture(name),
                architectures.default_input_shape(name), name)
    hook = getattr(model, "layer_specs", None)
    if callable(hook) and not isinstance(model, (Layer, list, tuple, dict)):
        return as_layer(hook()), None, type(model).__name__
    layer = as_layer(model)
    return layer, None, layer.name or "model"


def summary(model, input_shape=None, *, convention="torchvision",
            dtype="float32", batch_size=1):
    """Shapes, parameters, MACs, receptive fields and memory of a network.

    Parameters
    ----------
    model : str, spec or object with ``layer_specs()``
        A built-in architecture name (see
        :func:`pyconvnet.architectures.list_architectures`), a spec as
        accepted by :func:`as_layer`, or a model object whose
        ``layer_specs()`` method returns one.
    input_shape : tuple of int, str or None
        Shape of one input without the batch dimension, e.g.
        ``(3, 224, 224)`` or ``"3x224x224"``. None uses the architecture's
        default (only for built-in names).
    convention : {'torchvision', 'full'}
        Which operations count as MACs (see the module notes).
    dtype : str or dtype-like
        Element type for the memory columns.
    batch_size : int
        Multiplies the activation memory (not the MACs).

    Returns
    -------
    Summary

    Raises
    ------
    ValueError
        For an unknown architecture (listing the known ones), an unknown
        convention, mismatched shapes, or an input too small for the network
        (naming the layer where the feature map vanishes).
    TypeError
        For specs that cannot be read.

    See Also
    --------
    receptive_field, pyconvnet.architectures

    Notes
    -----
    Derived in :ref:`theory-output-size` and :ref:`theory-parameter-count`.

    Parameter counts include every learnable tensor (weights, biases,
    batch-norm scale and shift) and exclude buffers such as batch-norm
    running statistics, matching ``sum(p.numel() for p in
    model.parameters())`` in PyTorch. Under the default convention the MACs
    match torchvision's published GFLOPS for its classification models.

    Examples
    --------
    >>> s = summary("resnet50")
    >>> s.total_params
    25557032
    >>> round(s.total_macs / 1e9, 2)
    4.09
    >>> s = summary([conv(10, 5, padding=2)], "3x32x32")
    >>> s.output_shape, s.total_params
    ((10, 32, 32), 760)
    >>> summary("alexnet").receptive_field
    195
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {', '.join(CONVENTIONS)}, "
                         f"got {convention!r}")
    layer, default, name = _resolve(model)
    if input_shape is None:
        if default is None:
            raise ValueError("input_shape is required for a spec (built-in "
                             "architectures have a default)")
        input_shape = default
    shape = parse_shape(input_shape)
    itemsize = dtype_size(dtype)
    batch = _check_int(batch_size, "batch_size", 1)
    walker = _Walker(convention, itemsize, batch)
    rf0 = tuple((Fraction(1), Fraction(1), Fraction(0))
                for _ in shape[1:]) or None
    try:
        out, _ = walker.run(layer, (shape, rf0), "")
    except ValueError as exc:
        raise type(exc)(f"{name} on input {_shape_str(shape)}: {exc}") from None
    rows = tuple(walker.rows)
    total = sum(r.params for r in rows)
    macs = sum(r.macs for r in rows)
    return Summary(
        name=name, input_shape=shape, output_shape=out, rows=rows,
        total_params=total, trainable_params=sum(r.trainable_params for r in rows),
        total_macs=macs, total_flops=2 * macs,
        receptive_field=_final_field(rows)[0],
        convention=convention, dtype=_dtype_name(dtype),
        batch_size=batch, activation_memory=sum(r.activation_memory for r in rows),
        parameter_memory=total * itemsize)


# --------------------------------------------------------------------------
# receptive fields
# --------------------------------------------------------------------------


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
