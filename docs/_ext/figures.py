"""Figures of the theory pages, drawn at build time.

Each function draws one figure with matplotlib; the pages call them through
matplotlib's ``.. plot::`` directive (``plot_pre_code = "import figures"`` in
``conf.py``). Wherever a figure shows numbers, they are computed by
pyconvnet itself, so a figure cannot disagree with the code.
"""
import numpy as np
from matplotlib import patches
from matplotlib import pyplot as plt

# colours shared by all figures (colour-blind safe pairs)
INPUT = "#d9e6f2"
PAD = "#c9c9c9"
KERNEL = "#e69f00"
OUTPUT = "#56b4e9"
ACCENT = "#d55e00"
GREEN = "#009e73"
GRID = "#555555"


# ---------------------------------------------------------------------------
# drawing helpers
# ---------------------------------------------------------------------------

def _grid(ax, x0, y0, rows, cols, size=1.0, face=INPUT, edge=GRID, values=None,
          fmt="{:g}", fontsize=8, alpha=1.0, lw=0.6):
    """A rows x cols grid of cells whose top-left corner is (x0, y0)."""
    for i in range(rows):
        for j in range(cols):
            f = face[i][j] if isinstance(face, (list, np.ndarray)) else face
            ax.add_patch(patches.Rectangle((x0 + j * size, y0 - (i + 1) * size), size, size,
                                           facecolor=f, edgecolor=edge, lw=lw, alpha=alpha))
            if values is not None:
                ax.text(x0 + (j + 0.5) * size, y0 - (i + 0.5) * size, fmt.format(values[i][j]),
                        ha="center", va="center", fontsize=fontsize)


def _frame(ax, x0, y0, rows, cols, size=1.0, color=KERNEL, lw=2.5, ls="-"):
    ax.add_patch(patches.Rectangle((x0, y0 - rows * size), cols * size, rows * size,
                                   fill=False, edgecolor=color, lw=lw, ls=ls))


def _clean(ax, title=None):
    ax.set_aspect("equal")
    ax.axis("off")
    ax.autoscale_view()
    if title:
        ax.set_title(title, fontsize=10)


def _arrow(ax, x0, y0, x1, y1, text=None, color=GRID):
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                arrowprops=dict(arrowstyle="->", color=color, lw=1.3))
    if text:
        ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.3, text, ha="center", va="bottom",
                fontsize=9)


# ---------------------------------------------------------------------------
# correlation.rst
# ---------------------------------------------------------------------------

def sliding_correlation():
    """A template slides along a signal; dot product and cosine per position."""
    from pyconvnet.signal import correlate, similarity_map

    rng = np.random.default_rng(3)
    a = np.cumsum(rng.normal(size=40))
    a = a - a.mean()
    at, K = 22, 7
    k = a[at:at + K].copy()
    dot = correlate(a, k, mode="valid")
    cos = similarity_map(a, k)
    m = np.arange(len(dot))

    fig, (ax0, ax1, ax2) = plt.subplots(3, 1, figsize=(8, 6.2), sharex=True,
                                        gridspec_kw={"height_ratios": [1.3, 1, 1]})
    ax0.plot(np.arange(len(a)), a, "o-", color=GRID, ms=3, lw=1, label="signal $a$")
    for start, colour, label in ((6, ACCENT, "window $m = 6$"),
                                 (at, GREEN, f"window $m = {at}$ (where $k$ was cut)")):
        ax0.axvspan(start - 0.4, start + K - 0.6, color=colour, alpha=0.15)
        ax0.plot(np.arange(start, start + K), k, "s-", color=colour, ms=4, lw=1.5,
                 label=f"template $k$ over {label}")
    ax0.legend(loc="upper left", fontsize=8, ncol=1, framealpha=0.9)
    ax0.set_ylabel("value")
    ax0.set_title("the template $k$ (length 7) slides along $a$; one output per position $m$",
                  fontsize=10)
    ax1.bar(m, dot, color=OUTPUT, width=0.8)
    ax1.set_ylabel(r"$(a \star k)[m]$")
    ax1.set_title("dot product: large where $a$ is large, not only where it matches",
                  fontsize=10)
    ax2.bar(m, cos, color=[GREEN if i == at else OUTPUT for i in m], width=0.8)
    ax2.axhline(1, color=GREEN, lw=0.8, ls="--")
    ax2.set_ylim(-1.1, 1.15)
    ax2.set_ylabel("cosine")
    ax2.set_xlabel("position $m$ (first element of the window)")
    ax2.set_title(f"cosine similarity: exactly 1 at $m = {int(np.argmax(cos))}$, the cut",
                  fontsize=10)
    fig.tight_layout()


def modes():
    """'full', 'same' and 'valid' outputs placed under the input."""
    from pyconvnet.signal import correlate

    N, K = 7, 3
    fig, ax = plt.subplots(figsize=(8, 3.4))
    _grid(ax, 0, 4, 1, N, values=[list(range(N))], fmt="a[{}]")
    ax.text(-0.4, 3.5, f"input, N = {N}", ha="right", va="center", fontsize=9)
    rows = (("full", -(K - 1), ACCENT), ("same", -((K - 1) // 2), GREEN), ("valid", 0, OUTPUT))
    for r, (mode, first, colour) in enumerate(rows):
        n = len(correlate(np.ones(N), np.ones(K), mode=mode))
        y = 2.6 - 1.3 * r
        # output m is the window that starts at input position first + m
        _grid(ax, first, y, 1, n, face=colour, alpha=0.55)
        for j in range(n):
            if first + j < 0 or first + j + K > N:
                ax.text(first + j + 0.5, y - 0.5, "0-pad", ha="center", va="center",
                        fontsize=6.5)
        ax.text(-2.6, y - 0.5, f"'{mode}': {n}", ha="right", va="center", fontsize=9)
    ax.text(N + 0.3, 2.1, "each output cell sits under the first input element\n"
            f"of its window (kernel length K = {K});\n'full' N + K - 1, 'same' N, "
            "'valid' N - K + 1", ha="left", va="center", fontsize=8.5)
    ax.set_xlim(-6.5, N + 6.5)
    ax.set_ylim(-1.3, 4.3)
    _clean(ax)
    fig.tight_layout()


def flip():
    """Convolution is correlation with the kernel rotated by 180 degrees."""
    k = np.arange(1, 10).reshape(3, 3)
    fig, axes = plt.subplots(1, 2, figsize=(5.5, 2.5))
    for ax, kk, title in ((axes[0], k, "kernel $k$ (correlation)"),
                          (axes[1], np.rot90(k, 2), r"$\operatorname{rot180}(k)$ (convolution)")):
        _grid(ax, 0, 3, 3, 3, face=KERNEL, values=kk, alpha=0.6, fontsize=11)
        ax.set_xlim(-0.2, 3.2)
        ax.set_ylim(-0.2, 3.2)
        _clean(ax, title)
    fig.tight_layout()


# ---------------------------------------------------------------------------
# conv_layer.rst
# ---------------------------------------------------------------------------

def _windows(ax, n, k, s, p, d, title):
    """Input of size n padded by p, and the taps of the first two windows."""
    from pyconvnet.shapes import conv_output_size

    total = n + 2 * p
    face = [[PAD if (i < p or j < p or i >= n + p or j >= n + p) else INPUT
             for j in range(total)] for i in range(total)]
    _grid(ax, 0, total, total, total, face=face)
    out = conv_output_size(n, k, stride=s, padding=p, dilation=d)
    for a in range(k):
        for b in range(k):
            y, x = a * d, b * d
            ax.add_patch(patches.Rectangle((x, total - y - 1), 1, 1, color=KERNEL, alpha=0.8))
            ax.add_patch(patches.Circle((x + s + 0.5, total - y - 0.5), 0.22, color=GREEN))
    ax.set_xlim(-0.3, total + 0.3)
    ax.set_ylim(-1.6, total + 0.3)
    ax.text(total / 2, -0.8, f"output {out}x{out}", ha="center", fontsize=9)
    _clean(ax, title)


def padding_stride_dilation():
    """Padding, stride and dilation on small grids, with the first windows."""
    fig, axes = plt.subplots(1, 3, figsize=(9.5, 3.8))
    _windows(axes[0], 5, 3, 1, 1, 1, "padding 1, stride 1\n5x5 input, 3x3 kernel")
    _windows(axes[1], 5, 3, 2, 1, 1, "padding 1, stride 2\n5x5 input, 3x3 kernel")
    _windows(axes[2], 7, 3, 1, 0, 2, "dilation 2, stride 1\n7x7 input, 3x3 kernel")
    fig.text(0.5, 0.01, "grey: zero padding; orange squares: the taps of the first window; "
             "green dots: the taps of the next window along the row", ha="center", fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))


def _connections(ax, c_in, c_out, groups, title):
    yi = np.linspace(0, 1, c_in)[::-1]
    yo = np.linspace(0, 1, c_out)[::-1]
    per_in, per_out = c_in // groups, c_out // groups
    colours = plt.get_cmap("tab10")
    for o in range(c_out):
        g = o // per_out
        for i in range(g * per_in, (g + 1) * per_in):
            ax.plot([0, 1], [yi[i], yo[o]], color=colours(g), lw=1.2, alpha=0.8)
    ax.scatter(np.zeros(c_in), yi, s=140, color=INPUT, edgecolor=GRID, zorder=3)
    ax.scatter(np.ones(c_out), yo, s=140, color=OUTPUT, edgecolor=GRID, zorder=3)
    ax.text(0, -0.14, "input\nchannels", ha="center", va="top", fontsize=8)
    ax.text(1, -0.14, "output\nchannels", ha="center", va="top", fontsize=8)
    weights = c_out * (c_in // groups) * 9
    ax.text(0.5, 1.1, f"{weights} weights (3x3 kernels)", ha="center", fontsize=8.5)
    ax.set_xlim(-0.25, 1.25)
    ax.set_ylim(-0.45, 1.25)
    ax.axis("off")
    ax.set_title(title, fontsize=10)


def channels_and_groups():
    """Which input channels each output channel sees: dense, grouped, depthwise."""
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.8))
    _connections(axes[0], 4, 4, 1, "ordinary: groups = 1")
    _connections(axes[1], 4, 4, 2, "grouped: groups = 2")
    _connections(axes[2], 4, 4, 4, "depthwise: groups = C")
    fig.tight_layout()


def multichannel():
    """A 3-channel input, two 3-channel kernels, two output maps."""
    fig, ax = plt.subplots(figsize=(9, 3.6))

    def stack(x, y, n, rows, cols, face, label, size=0.5):
        for c in range(n - 1, -1, -1):
            _grid(ax, x + 0.35 * c, y + 0.35 * c, rows, cols, size=size, face=face,
                  alpha=0.9)
        ax.text(x + cols * size / 2 + 0.35 * (n - 1) / 2, y - rows * size - 0.4, label,
                ha="center", va="top", fontsize=9)

    stack(0, 4, 3, 6, 6, INPUT, "input $C_{in} = 3$, 6x6")
    _frame(ax, 0, 4, 3, 3, size=0.5, color=KERNEL)
    stack(5.2, 4, 3, 3, 3, KERNEL, "kernel 0: $3 \\times 3 \\times 3$")
    stack(5.2, 0.9, 3, 3, 3, GREEN, "kernel 1: $3 \\times 3 \\times 3$")
    _grid(ax, 9.4, 4, 4, 4, size=0.5, face=[[OUTPUT] * 4] * 4)
    ax.add_patch(patches.Rectangle((9.4, 3.5), 0.5, 0.5, color=KERNEL, alpha=0.9))
    _grid(ax, 9.4, 1.4, 4, 4, size=0.5, face=[[GREEN] * 4] * 4, alpha=0.6)
    ax.text(10.4, -0.9, "output $C_{out} = 2$, 4x4", ha="center", fontsize=9)
    _arrow(ax, 3.9, 3.0, 5.0, 3.0)
    _arrow(ax, 7.6, 3.0, 9.2, 3.0, r"$\sum_{c}\,$ + bias")
    ax.text(0.1, 4.9, "one output value = the 27 products of a 3x3x3 window\n"
            "with one kernel, summed over the channels, plus a bias", fontsize=8.5)
    ax.set_xlim(-0.3, 12.5)
    ax.set_ylim(-1.3, 5.6)
    _clean(ax)
    fig.tight_layout()


def im2col():
    """Matrix shapes of the convolution as one matrix product."""
    c_in, k, c_out, hw = 3, 3, 8, 6
    rows = c_in * k * k
    cols = hw * hw
    s = 0.11
    fig, ax = plt.subplots(figsize=(9.5, 3.8))

    def block(x, y, h, w, face, label, sub):
        ax.add_patch(patches.Rectangle((x, y - h * s), w * s, h * s, facecolor=face,
                                       edgecolor=GRID, lw=1))
        ax.text(x + w * s / 2, y + 0.12, label, ha="center", va="bottom", fontsize=10)
        ax.text(x + w * s / 2, y - h * s - 0.12, sub, ha="center", va="top", fontsize=8.5)

    block(0, 3, c_out, rows, KERNEL, "$W_{mat}$",
          f"$C_{{out}} \\times C_{{in}} k_h k_w$\n= {c_out} x {rows}")
    ax.text(rows * s + 0.25, 3 - rows * s / 2, r"$\cdot$", fontsize=20, ha="center",
            va="center")
    x1 = rows * s + 0.5
    block(x1, 3, rows, cols, INPUT, "",
          f"$C_{{in}} k_h k_w \\times H_{{out}} W_{{out}}$\n= {rows} x {cols}")
    # one column: one window of the input, all channels
    ax.text(x1 + cols * s / 2 + 0.6, 3 + 0.12, "$X_{col}$", ha="center", va="bottom",
            fontsize=10)
    ax.add_patch(patches.Rectangle((x1 + 7 * s, 3 - rows * s), s, rows * s, color=ACCENT,
                                   alpha=0.8))
    _arrow(ax, x1 + 7.5 * s, 3 + 0.75, x1 + 7.5 * s, 3 + 0.05, color=ACCENT)
    ax.text(x1 + 7.5 * s, 3 + 0.8, "one column = one 3x3x3 input window",
            ha="center", va="bottom", fontsize=8, color=ACCENT)
    x2 = x1 + cols * s + 0.4
    ax.text(x2, 3 - rows * s / 2, "=", fontsize=16, ha="center", va="center")
    block(x2 + 0.35, 3, c_out, cols, OUTPUT, "$Y$",
          f"$C_{{out}} \\times H_{{out}} W_{{out}}$\n= {c_out} x {cols}")
    ax.text(0, 3 - rows * s - 1.1,
            f"$C_{{in}} = {c_in}$, $k = {k}$, $C_{{out}} = {c_out}$ kernels, "
            f"{hw}x{hw} output: each row of $Y$ is one output channel, reshaped to "
            f"{hw}x{hw}", fontsize=9)
    ax.set_xlim(-0.2, x2 + 0.35 + cols * s + 0.2)
    ax.set_ylim(3 - rows * s - 1.5, 4.2)
    _clean(ax)
    fig.tight_layout()


def winograd_tiles():
    """Winograd F(4x4, 3x3): 6x6 input tiles that overlap by 2 give 4x4 outputs."""
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 4.3),
                                   gridspec_kw={"width_ratios": [10, 8]})
    _grid(ax0, 0, 10, 10, 10)
    _frame(ax0, 0, 10, 6, 6, color=KERNEL, lw=3)
    _frame(ax0, 4, 10, 6, 6, color=GREEN, lw=3, ls="--")
    ax0.add_patch(patches.Rectangle((4, 4), 2, 6, color=ACCENT, alpha=0.25))
    ax0.text(5, 3.5, "overlap\n2 = k - 1", ha="center", va="top", fontsize=8, color=ACCENT)
    ax0.set_xlim(-0.3, 10.3)
    ax0.set_ylim(-0.3, 10.3)
    _clean(ax0, "input 10x10: two 6x6 tiles")
    _grid(ax1, 0, 8, 8, 8, face=OUTPUT, alpha=0.35)
    _frame(ax1, 0, 8, 4, 4, color=KERNEL, lw=3)
    _frame(ax1, 4, 8, 4, 4, color=GREEN, lw=3, ls="--")
    ax1.text(4, -0.5, "per 4x4 tile and channel pair: 36 multiplications\ninstead of 16 x 9 = 144 "
             "(4 times fewer)", ha="center", va="top", fontsize=8.5)
    ax1.set_xlim(-0.3, 8.3)
    ax1.set_ylim(-2.2, 8.3)
    _clean(ax1, "output 8x8 (3x3 kernel): 4x4 tiles")
    fig.tight_layout()


# ---------------------------------------------------------------------------
# pooling.rst and backprop_pool.rst
# ---------------------------------------------------------------------------

X4 = np.array([[1., 3., 2., 1.], [4., 2., 0., 8.], [5., 1., 3., 3.], [0., 6., 3., 3.]])


def pooling():
    """Max and average pooling of a 4x4 map with 2x2 windows, stride 2."""
    from pyconvnet.functional import avg_pool2d, max_pool2d

    x = X4[None, None]
    mx = max_pool2d(x, 2)[0, 0]
    av = avg_pool2d(x, 2)[0, 0]
    block = [[[INPUT, "#f3dcc0"][(i // 2 + j // 2) % 2] for j in range(4)] for i in range(4)]
    fig, axes = plt.subplots(1, 3, figsize=(8, 2.9), gridspec_kw={"width_ratios": [4, 2.6, 2.6]})
    _grid(axes[0], 0, 4, 4, 4, face=block, values=X4, fontsize=10)
    _clean(axes[0], "input, 2x2 windows")
    _grid(axes[1], 0.3, 3, 2, 2, face=OUTPUT, alpha=0.6, values=mx, fontsize=10)
    axes[1].set_ylim(0, 4)
    _clean(axes[1], "max pooling")
    _grid(axes[2], 0.3, 3, 2, 2, face=GREEN, alpha=0.5, values=av, fontsize=10)
    axes[2].set_ylim(0, 4)
    _clean(axes[2], "average pooling")
    for ax in axes[1:]:
        ax.set_xlim(0, 2.6)
    fig.tight_layout()


def subsampling():
    """LeNet-5's sub-sampling: block sums, times beta plus b, then tanh."""
    from pyconvnet.functional import subsample2d

    x = X4[None, None]
    down = subsample2d(x, 2, beta=[1.0], bias=[0.0])[0, 0]
    beta, b = 0.25, -1.0
    u = subsample2d(x, 2, beta=[beta], bias=[b])[0, 0]
    y = np.tanh(u)
    block = [[[INPUT, "#f3dcc0"][(i // 2 + j // 2) % 2] for j in range(4)] for i in range(4)]
    fig, axes = plt.subplots(1, 4, figsize=(9.5, 2.9),
                             gridspec_kw={"width_ratios": [4, 2.4, 2.4, 2.4]})
    _grid(axes[0], 0, 4, 4, 4, face=block, values=X4, fontsize=10)
    _clean(axes[0], "input $x$")
    for ax, vals, title, face in ((axes[1], down, r"$\mathrm{down}(x)$: block sums", OUTPUT),
                                  (axes[2], u, rf"$u = {beta}\,\mathrm{{down}}(x) {b:+g}$",
                                   GREEN),
                                  (axes[3], y, r"$\tanh(u)$", KERNEL)):
        _grid(ax, 0.2, 3, 2, 2, face=face, alpha=0.55, values=vals, fmt="{:.3g}", fontsize=9)
        ax.set_xlim(0, 2.4)
        ax.set_ylim(0, 4)
        _clean(ax, title)
    fig.text(0.5, 0.02, r"two trainable numbers per map: the multiplicative $\beta$ and the "
             "additive $b$", ha="center", fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 1))


def pooling_gradients():
    """Sensitivities routed back through max and average pooling."""
    from pyconvnet.functional import (
        avg_pool2d_backward,
        max_pool2d,
        max_pool2d_backward,
    )

    x = X4[None, None]
    _, idx = max_pool2d(x, 2, return_indices=True)
    delta = np.array([[[[1., 2.], [3., 4.]]]])
    gmax = max_pool2d_backward(delta, idx, x.shape)[0, 0]
    gavg = avg_pool2d_backward(delta, x.shape, 2)[0, 0]
    win = np.zeros((4, 4), bool)
    win.flat[idx[0, 0].ravel()] = True
    fig, axes = plt.subplots(1, 4, figsize=(10, 3.1),
                             gridspec_kw={"width_ratios": [4, 2.6, 4, 4]})
    _grid(axes[0], 0, 4, 4, 4, face=[[KERNEL if w else INPUT for w in r] for r in win],
          values=X4, fontsize=10)
    _clean(axes[0], "input: the maxima")
    _grid(axes[1], 0.3, 3, 2, 2, face=OUTPUT, alpha=0.6, values=delta[0, 0], fontsize=10)
    axes[1].set_xlim(0, 2.6)
    axes[1].set_ylim(0, 4)
    _clean(axes[1], r"sensitivity $\delta$")
    _grid(axes[2], 0, 4, 4, 4, face=[[KERNEL if w else "white" for w in r] for r in win],
          values=gmax, fontsize=10)
    _clean(axes[2], "max: all to the winner")
    _grid(axes[3], 0, 4, 4, 4, face=GREEN, alpha=0.35, values=gavg, fontsize=10)
    _clean(axes[3], r"average: $\delta \otimes \frac{1}{4}\mathbf{1}_{2\times 2}$")
    fig.tight_layout()


# ---------------------------------------------------------------------------
# backprop_conv.rst
# ---------------------------------------------------------------------------

def rotated_kernel():
    """The input gradient: 'full' correlation of delta with rot180(w)."""
    from pyconvnet.functional import conv2d_backward

    w = np.arange(1., 10.).reshape(3, 3)
    delta = np.array([[1., 0., 0.], [0., 0., 0.], [0., 0., 2.]])
    x = np.zeros((1, 1, 5, 5))
    gx, _, _ = conv2d_backward(delta[None, None], x, w[None, None])
    gx = gx[0, 0]
    padded = np.zeros((7, 7))
    padded[2:5, 2:5] = delta
    fig, axes = plt.subplots(1, 4, figsize=(10.5, 3.3),
                             gridspec_kw={"width_ratios": [3, 3, 7, 5]})
    _grid(axes[0], 0, 3, 3, 3, face=KERNEL, alpha=0.5, values=w, fontsize=10)
    _clean(axes[0], "kernel $w$")
    _grid(axes[1], 0, 3, 3, 3, face=KERNEL, alpha=0.8, values=np.rot90(w, 2), fontsize=10)
    _clean(axes[1], r"$\operatorname{rot180}(w)$")
    face = [[PAD if not (2 <= i < 5 and 2 <= j < 5) else OUTPUT for j in range(7)]
            for i in range(7)]
    _grid(axes[2], 0, 7, 7, 7, face=face, values=padded, fontsize=8)
    _frame(axes[2], 0, 7, 3, 3, color=ACCENT)
    _clean(axes[2], r"$\delta$ (3x3) padded by $k - 1 = 2$")
    _grid(axes[3], 0, 5, 5, 5, face=INPUT, values=gx, fontsize=9)
    _frame(axes[3], 0, 5, 1, 1, color=ACCENT)
    _clean(axes[3], r"$\partial E / \partial x$ (5x5)")
    fig.text(0.5, 0.02, r"the red window, $\operatorname{rot180}(w)$ placed over the padded "
             r"$\delta$, gives the red input gradient: each $\delta$ sends back a copy of $w$"
             " scaled by it", ha="center", fontsize=8.5)
    fig.tight_layout(rect=(0, 0.07, 1, 1))


def gradient_routes_1d():
    """Which outputs an input feeds in 1-D, and the weights that carry it back."""
    fig, ax = plt.subplots(figsize=(8, 2.8))
    n = 7
    xs = np.arange(n)
    for i in xs:
        ax.add_patch(patches.Circle((i, 1), 0.22, facecolor=INPUT, edgecolor=GRID))
        ax.text(i, 1, f"$x_{i}$", ha="center", va="center", fontsize=8)
    for m in range(n - 2):
        ax.add_patch(patches.Circle((m + 1, 0), 0.22, facecolor=OUTPUT, edgecolor=GRID))
        ax.text(m + 1, 0, f"$z_{m}$", ha="center", va="center", fontsize=8)
    i = 3
    for j, colour in zip(range(3), (KERNEL, GREEN, ACCENT)):
        m = i - j
        ax.plot([i, m + 1], [0.78, 0.22], color=colour, lw=2.2)
        ax.text((i + m + 1) / 2 + 0.08, 0.5, f"$w_{j}$", color=colour, fontsize=10)
    ax.text(n - 0.3, 0.5, r"$\partial E/\partial x_3 = w_0\delta_3 + w_1\delta_2 + "
            r"w_2\delta_1$", fontsize=10, va="center")
    ax.set_xlim(-0.5, n + 4.2)
    ax.set_ylim(-0.4, 1.4)
    _clean(ax, r"$z_m = w_0 x_m + w_1 x_{m+1} + w_2 x_{m+2}$: $x_3$ feeds $z_3, z_2, z_1$")
    fig.tight_layout()


# ---------------------------------------------------------------------------
# map_combinations.rst
# ---------------------------------------------------------------------------

def map_combinations():
    """LeNet-5's C3 connection table and learned softmax combination weights."""
    from pyconvnet.nn import MapCombination, c3_connection_mask

    mask = c3_connection_mask()
    alpha = MapCombination(6, 4, rng=1).alpha()
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9.5, 3.4),
                                   gridspec_kw={"width_ratios": [16, 5.5]})
    ax0.imshow(mask.T, cmap="Oranges", vmin=0, vmax=1.6, aspect="equal")
    ax0.set_xticks(range(16))
    ax0.set_yticks(range(6))
    ax0.set_xlabel("C3 map")
    ax0.set_ylabel("S2 map")
    ax0.set_title("LeNet-5's C3: which S2 maps each C3 map reads (60 of 96)", fontsize=10)
    ax0.set_xticks(np.arange(-0.5, 16), minor=True)
    ax0.set_yticks(np.arange(-0.5, 6), minor=True)
    ax0.grid(which="minor", color="white", lw=1.5)
    ax0.tick_params(which="minor", length=0)
    a = np.asarray(alpha)
    a = a if a.shape[0] == 6 else a.T
    im = ax1.imshow(a, cmap="Blues", vmin=0, vmax=max(0.5, float(a.max())))
    for (i, j), v in np.ndenumerate(a):
        ax1.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
    ax1.set_xticks(range(a.shape[1]))
    ax1.set_yticks(range(a.shape[0]))
    ax1.set_xlabel("output map $j$")
    ax1.set_ylabel("input map $i$")
    ax1.set_title(r"softmax weights $\alpha_{ij}$" "\n(each column sums to 1)", fontsize=10)
    fig.colorbar(im, ax=ax1, fraction=0.08)
    fig.tight_layout()


# ---------------------------------------------------------------------------
# training.rst
# ---------------------------------------------------------------------------

def activations():
    """ReLU, sigmoid, tanh and LeCun's scaled tanh with their derivatives."""
    from pyconvnet.nn import ReLU, Sigmoid, Tanh

    z = np.linspace(-4, 4, 401).astype(np.float64)
    layers = (("ReLU", ReLU()), ("sigmoid", Sigmoid()), ("tanh", Tanh()),
              ("1.7159 tanh(2z/3)", Tanh(scale_out=1.7159, scale_in=2 / 3)))
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.4))
    for (name, layer), colour in zip(layers, (KERNEL, GREEN, OUTPUT, ACCENT)):
        layer = layer.astype(np.float64) if layer.params() else layer
        y = layer.forward(z[None].copy())[0]
        g = layer.backward(np.ones((1, z.size)))[0]
        ax0.plot(z, y, color=colour, label=name)
        ax1.plot(z, g, color=colour, label=name)
    ax0.set_title("activation $f(z)$", fontsize=10)
    ax1.set_title("derivative $f'(z)$: what back-propagation multiplies by", fontsize=10)
    for ax in (ax0, ax1):
        ax.axhline(0, color=GRID, lw=0.5)
        ax.axvline(0, color=GRID, lw=0.5)
        ax.set_xlabel("$z$")
    ax0.set_ylim(-2, 3)
    ax0.legend(fontsize=8)
    fig.tight_layout()


# ---------------------------------------------------------------------------
# gradient_checking.rst
# ---------------------------------------------------------------------------

def finite_difference_error():
    """Error of one-sided and central differences against the step size."""
    steps = np.logspace(-13, -1, 97)
    w = 0.7
    exact = np.cos(w)
    one = np.abs((np.sin(w + steps) - np.sin(w)) / steps - exact)
    central = np.abs((np.sin(w + steps) - np.sin(w - steps)) / (2 * steps) - exact)
    u = np.finfo(np.float64).eps / 2
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.loglog(steps, np.maximum(one, 1e-17), ".-", color=KERNEL, lw=1, ms=3,
              label=r"one-sided $(E(w+\epsilon)-E(w))/\epsilon$")
    ax.loglog(steps, np.maximum(central, 1e-17), ".-", color=OUTPUT, lw=1, ms=3,
              label=r"central $(E(w+\epsilon)-E(w-\epsilon))/2\epsilon$")
    ax.loglog(steps, steps ** 2 / 6 + u / steps, color=GRID, ls="--", lw=1,
              label=r"bound $\epsilon^2/6 + u/\epsilon$")
    best = (3 * u) ** (1 / 3)
    ax.axvline(best, color=GREEN, lw=1)
    ax.text(best * 1.3, 1e-14, rf"$\epsilon^* \approx$ {best:.1e}", color=GREEN, fontsize=9)
    ax.axvline(1e-8, color=ACCENT, lw=1, ls=":")
    ax.text(1.3e-8, 1e-3, r"$\epsilon = 10^{-8}$", color=ACCENT, fontsize=9)
    ax.set_ylim(1e-17, 1)
    ax.set_xlabel(r"step $\epsilon$")
    ax.set_ylabel("absolute error of the derivative")
    ax.set_title(r"$E = \sin w$ at $w = 0.7$ in float64: truncation falls to the left, "
                 "rounding grows", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()


# ---------------------------------------------------------------------------
# receptive_field.rst
# ---------------------------------------------------------------------------

def receptive_field_growth():
    """A unit's field through 3-tap convolutions and a 2x pooling (1-D), and
    LeNet-5's fields on its 32x32 input."""
    from pyconvnet.shapes import receptive_field

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4.2),
                                   gridspec_kw={"width_ratios": [1.5, 1]})
    # 1-D: conv3 -> conv3 -> pool2 -> conv3 ; walk back from one top unit
    layers = [("conv 3", 3, 1), ("conv 3", 3, 1), ("pool 2", 2, 2), ("conv 3", 3, 1)]
    n = [20]
    for _, k, s in layers:
        n.append((n[-1] - k) // s + 1)
    pos = [np.arange(n[0], dtype=float)]
    for (_, k, s), m in zip(layers, n[1:]):
        pos.append(pos[-1][0] + (k - 1) / 2 * (pos[-1][1] - pos[-1][0])
                   + np.arange(m) * s * (pos[-1][1] - pos[-1][0]))
    active = {len(layers): {n[-1] // 2}}
    for level in range(len(layers), 0, -1):
        _, k, s = layers[level - 1]
        active[level - 1] = {u * s + t for u in active[level] for t in range(k)}
    for level, xs in enumerate(pos):
        for u, x in enumerate(xs):
            on = u in active[level]
            ax0.add_patch(patches.Circle((x, level), 0.28,
                                         facecolor=KERNEL if on else INPUT, edgecolor=GRID,
                                         lw=0.6))
        if level:
            _, k, s = layers[level - 1]
            for u in active[level]:
                for t in range(k):
                    ax0.plot([xs[u], pos[level - 1][u * s + t]], [level - 0.28, level - 0.72],
                             color=KERNEL, lw=0.9)
        label = "input" if level == 0 else layers[level - 1][0]
        size = receptive_field([(k, s) for _, k, s in layers[:level]]).size if level else 1
        ax0.text(-1.2, level, f"{label}", ha="right", va="center", fontsize=8.5)
        ax0.text(n[0] + 0.4, level, f"field {size}", ha="left", va="center", fontsize=8.5)
    ax0.set_xlim(-4.2, n[0] + 3.2)
    ax0.set_ylim(-0.6, len(layers) + 0.6)
    _clean(ax0, "one unit (top) and the inputs it can see (1-D)")

    steps = [s for s in receptive_field("lenet5").steps if s.kind != "tanh"]
    _grid(ax1, 0, 32, 1, 1, size=32, face="white")
    colours = (KERNEL, GREEN, OUTPUT, ACCENT, GRID)
    for st, colour in zip(steps, colours):
        r = st.size if np.isscalar(st.size) else st.size[0]
        c = 16 - r / 2
        ax1.add_patch(patches.Rectangle((c, c), r, r, fill=False, edgecolor=colour, lw=2))
        ax1.text(c + 0.3, c + r - 0.3, f"{st.name}: {r}", color=colour, fontsize=8,
                 va="top")
    ax1.set_xlim(-0.5, 32.5)
    ax1.set_ylim(-0.5, 32.5)
    _clean(ax1, "LeNet-5: one unit's field on the 32x32 input")
    fig.tight_layout()


# ---------------------------------------------------------------------------
# architectures.rst
# ---------------------------------------------------------------------------

def alexnet_costs():
    """Where AlexNet's parameters and multiply-adds are, layer by layer."""
    from pyconvnet.shapes import summary

    rows = [r for r in summary("alexnet").rows if r.kind in ("conv", "linear")]
    names = [r.name for r in rows]
    params = np.array([r.params for r in rows]) / 1e6
    macs = np.array([r.macs for r in rows]) / 1e6
    colours = [OUTPUT if r.kind == "conv" else KERNEL for r in rows]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax0.bar(names, params, color=colours)
    ax0.set_ylabel("millions of parameters")
    ax1.bar(names, macs, color=colours)
    ax1.set_ylabel("millions of multiply-adds")
    for ax, title in ((ax0, "parameters: mostly in the linear layers"),
                      (ax1, "multiply-adds: mostly in the convolutions")):
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", rotation=45, labelsize=8)
    ax0.legend(handles=[patches.Patch(color=OUTPUT, label="convolution"),
                        patches.Patch(color=KERNEL, label="linear")], fontsize=8)
    fig.tight_layout()


def training_costs():
    """ResNet-18 at batch 8: forward and backward multiply-adds of each
    convolution, and what training keeps in memory with each optimizer."""
    from pyconvnet.shapes import summary

    table = summary("resnet18", batch_size=8)
    rows = [r for r in table.rows if r.kind in ("conv", "linear")]
    x = np.arange(len(rows))
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.6),
                                   gridspec_kw={"width_ratios": [2.2, 1]})
    ax0.bar(x - 0.2, [r.macs / 1e6 for r in rows], 0.4, color=OUTPUT, label="forward")
    ax0.bar(x + 0.2, [r.backward_macs / 1e6 for r in rows], 0.4, color=KERNEL,
            label="backward (input + weight gradient)")
    ax0.set_xticks(x, [r.name for r in rows], rotation=90, fontsize=6)
    ax0.set_ylabel("millions of multiply-adds (one image)")
    ax0.set_title("the backward pass costs twice the forward, but not for the first layer",
                  fontsize=9)
    ax0.legend(fontsize=8)
    parts = ("parameters", "gradients", "optimizer_state", "saved_activations")
    colours = (OUTPUT, KERNEL, GREEN, ACCENT)
    optimizers = ("sgd", "momentum", "adam")
    bottom = np.zeros(len(optimizers))
    for part, colour in zip(parts, colours):
        sizes = np.array([table.training_memory(o, breakdown=True)[part]
                          for o in optimizers]) / 2 ** 20
        ax1.bar(optimizers, sizes, bottom=bottom, color=colour,
                label=part.replace("_", " "))
        bottom += sizes
    ax1.set_ylabel("MiB at batch 8, float32")
    ax1.set_title("training memory", fontsize=9)
    ax1.legend(fontsize=7)
    fig.tight_layout()


# ---------------------------------------------------------------------------
# graphs.rst
# ---------------------------------------------------------------------------

def _unet_graph():
    """The 2015 U-Net written as a graph (four levels, valid convolutions,
    crops of the skips), for the figure and the page's examples."""
    from pyconvnet.shapes import (concat, conv, conv_transpose, crop, graph, max_pool,
                                  node, relu)

    def twice(c):
        return [conv(c, 3), relu(), conv(c, 3), relu()]
    nodes = [node("enc0", twice(64), "image")]
    for i in range(1, 5):
        nodes.append(node(f"enc{i}", [max_pool(2)] + twice(64 * 2 ** i), f"enc{i - 1}"))
    last = "enc4"
    for i in range(3, -1, -1):
        nodes += [node(f"up{i}", conv_transpose(64 * 2 ** i, 2, stride=2), last),
                  node(f"crop{i}", crop(), [f"enc{i}", f"up{i}"]),
                  node(f"cat{i}", concat(), [f"crop{i}", f"up{i}"]),
                  node(f"dec{i}", twice(64 * 2 ** i), f"cat{i}")]
        last = f"dec{i}"
    nodes.append(node("head", conv(2, 1), last))
    return graph(*nodes, inputs="image")


def transposed_fields():
    """Left: the units a stride-2 transposed convolution of 3 taps reads, by
    phase (1-D). Right: the receptive field of every output unit of the 2015
    U-Net along one axis, computed by ``receptive_field``."""
    from pyconvnet.shapes import receptive_field

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.8),
                                   gridspec_kw={"width_ratios": [1.2, 1]})
    n_in, k, s = 5, 3, 2
    n_out = (n_in - 1) * s + k
    for i in range(n_in):
        ax0.add_patch(patches.Circle((i * s + 1, 0), 0.3, facecolor=INPUT,
                                     edgecolor=GRID, lw=0.6))
    for o in range(n_out):
        reads = [(o - t) // s for t in range(k) if (o - t) % s == 0
                 and 0 <= (o - t) // s < n_in]
        colour = KERNEL if len(reads) == 2 else OUTPUT
        ax0.add_patch(patches.Circle((o, 1.6), 0.3, facecolor=colour, edgecolor=GRID,
                                     lw=0.6))
        for i in reads:
            ax0.plot([o, i * s + 1], [1.3, 0.3], color=colour, lw=1)
    ax0.text(-0.8, 0, "input", ha="right", va="center", fontsize=8.5)
    ax0.text(-0.8, 1.6, "output", ha="right", va="center", fontsize=8.5)
    ax0.set_xlim(-3.2, n_out + 0.2)
    ax0.set_ylim(-0.8, 2.4)
    _clean(ax0, "k = 3, s = 2: even units read two inputs, odd units one")

    rf = receptive_field(_unet_graph(), (1, 572, 572))
    lo, hi, _, _ = rf.unit_fields[0]
    size = hi - lo + 1
    units = np.arange(40)
    ax1.step(units, size[:40], where="mid", color=OUTPUT)
    ax1.plot(units, size[:40], "o", color=OUTPUT, ms=3)
    small, big = rf.size_range
    ax1.axhline(big, color=KERNEL, lw=0.8, ls="--")
    ax1.axhline(small, color=ACCENT, lw=0.8, ls="--")
    ax1.text(39, big + 0.6, f"largest {big}", ha="right", fontsize=8, color=KERNEL)
    ax1.text(39, small + 0.6, f"smallest {small}", ha="right", fontsize=8, color=ACCENT)
    ax1.set_ylim(small - 4, big + 4)
    ax1.set_xlabel("output unit (one axis)")
    ax1.set_ylabel("receptive field (pixels)")
    ax1.set_title("2015 U-Net: the field depends on the unit's phase", fontsize=9)
    fig.tight_layout()
