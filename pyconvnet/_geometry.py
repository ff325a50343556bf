"""The geometry of sliding windows: output sizes, 'same' padding, pooling rules.

Every module that slides a window over an input (the convolution and pooling
wrappers, their Dask versions, the layers and the shape calculators) takes
its arithmetic from here, so that each rule is written once:

- the window count (the output-size formula of :ref:`theory-output-size`)::

      out = floor((n + P - d(k-1) - 1) / s) + 1      (ceil in ceil mode)

  for an input of ``n`` with a total padding ``P``, kernel ``k``, stride
  ``s`` and dilation ``d``;
- pooling's count in ceil mode, where a last window that would start past the
  input and its left padding is dropped (PyTorch's rule);
- the 'same' padding: a total of ``d(k-1)``, ``total // 2`` before and the
  rest after (PyTorch's split: an even kernel pads one more on the right);
- pooling's padding limit, at most ``kernel_size // 2`` on each side;
- :class:`InputTooSmallError`, raised when a window does not fit the padded
  input.

Nothing here validates types: the callers check their arguments with
:mod:`pyconvnet._validation` first and pass plain ints.
"""

__all__ = [
    "InputTooSmallError",
    "check_pool_padding",
    "kernel_extent",
    "pool_window_count",
    "same_pair",
    "window_count",
    "window_length",
]


class InputTooSmallError(ValueError):
    """A window is larger than the padded input, so no output remains.

    A subclass of ValueError; :func:`~pyconvnet.shapes.summary` uses it to
    name the layer where a network's feature map vanishes.

    Notes
    -----
    See :ref:`theory-output-size`.

    Examples
    --------
    >>> from pyconvnet.shapes import conv_output_size
    >>> try:
    ...     conv_output_size(3, 5)
    ... except InputTooSmallError:
    ...     print("no output left")
    no output left
    """

    __module__ = "pyconvnet.shapes"


def kernel_extent(k, d=1):
    """Input positions a kernel of ``k`` taps spaced ``d`` apart covers:
    ``d(k-1) + 1``."""
    return d * (k - 1) + 1


def window_count(n, k, s, padding, d=1, ceil_mode=False):
    """Positions of a window of extent ``d(k-1)+1`` sliding by ``s`` over an
    input of ``n`` with ``padding`` (total of both sides) added.

    This is the one place the output-size formula lives::

        out = floor((n + padding - d(k-1) - 1) / s) + 1     (ceil with ceil_mode)

    The result is zero or negative when the window does not fit.

    Examples
    --------
    >>> window_count(32, 5, 1, 4), window_count(5, 2, 2, 0, ceil_mode=True)
    (32, 3)
    """
    span = n + padding - d * (k - 1) - 1
    return (-(-span // s) if ceil_mode else span // s) + 1


def pool_window_count(n, k, s, p, d=1, ceil_mode=False):
    """:func:`window_count` with padding ``p`` on each side, as pooling
    counts it: in ceil mode a last window that would start past the input
    and its left padding is dropped (PyTorch's rule), so a window longer than
    the input still gives one output when it starts inside the input.

    Examples
    --------
    >>> pool_window_count(112, 3, 2, 1)
    56
    >>> pool_window_count(5, 2, 3, 1, ceil_mode=True), pool_window_count(3, 4, 2, 0, 1, True)
    (2, 1)
    """
    out = window_count(n, k, s, 2 * p, d, ceil_mode)
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def window_length(n, k, s, pl, pr, d=1, ceil_mode=False, overhang=False):
    """:func:`window_count` with ``pl`` and ``pr`` padding, refusing a kernel
    larger than the padded input with :class:`InputTooSmallError` (unless
    ``overhang``: pooling in ceil mode keeps one such window)."""
    count = window_count(n, k, s, pl + pr, d, ceil_mode)
    extent = kernel_extent(k, d)
    if extent > n + pl + pr and not (overhang and ceil_mode and count >= 1):
        dil = f" with dilation {d}" if d != 1 else ""
        raise InputTooSmallError(
            f"kernel_size {k}{dil} spans {extent} positions but the "
            f"padded input has only {n} + {pl} + {pr} = {n + pl + pr}: the "
            "kernel is larger than the padded input")
    return count


def same_pair(k, d=1):
    """``(before, after)`` padding that keeps the size at stride 1: a total of
    ``d(k-1)`` split as PyTorch does, the extra one after.

    Examples
    --------
    >>> same_pair(3), same_pair(4), same_pair(3, 2)
    ((1, 1), (1, 2), (2, 2))
    """
    total = d * (k - 1)
    return (total // 2, total - total // 2)


def check_pool_padding(padding, kernel_size):
    """Refuse pooling padding above half the window on any axis (PyTorch's
    rule: a window must always overlap the input).

    Parameters
    ----------
    padding, kernel_size : tuple of int
        One entry per spatial axis.
    """
    for p, k in zip(padding, kernel_size):
        if p > k // 2:
            shown_p = padding if len(padding) > 1 else p
            shown_k = kernel_size if len(kernel_size) > 1 else k
            raise ValueError(
                f"padding must be at most half the kernel size (padding <= "
                f"kernel_size // 2 = {k // 2}), got padding={shown_p} and "
                f"kernel_size={shown_k}")
