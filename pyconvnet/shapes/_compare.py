"""Design comparisons: bottlenecks, depthwise-separable, grouped and
stacked convolutions against the plain layer they replace."""
from dataclasses import dataclass
from typing import Any

from .._validation import check_int, check_sizes
from ._costs import conv_macs, conv_params
from ._formats import _fmt

__all__ = [
    "Comparison",
    "compare_bottleneck",
    "compare_depthwise_separable",
    "compare_grouped",
    "compare_stacked",
]

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
    k = check_sizes(kernel_size, "kernel_size", 1)
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
    c = check_int(channels, "channels", 1)
    b = check_int(bottleneck_channels, "bottleneck_channels", 1)
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
    cin = check_int(in_channels, "in_channels", 1)
    cout = check_int(out_channels, "out_channels", 1)
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
    cin = check_int(in_channels, "in_channels", 1)
    cout = check_int(out_channels, "out_channels", 1)
    g = check_int(groups, "groups", 1)
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
    c = check_int(channels, "channels", 1)
    big = check_int(kernel_size, "kernel_size", 1)
    small = check_int(small_kernel, "small_kernel", 2)
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
