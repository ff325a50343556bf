"""Convolution layers: pyconvnet against PyTorch (CPU), forward and backward.

Run ``python benchmarks/bench_conv.py`` (``--quick`` for a fast smoke run
with smaller batches and fewer repeats). Both sides get the same number of
threads (``--threads``, default 2). Each time is the median of several runs,
with the two libraries' runs interleaved so that a change in the machine's
load affects both alike. Prints a Markdown table: times, speed-ups (the peer's
time over ours, above 1 when we are faster), their geometric means, and the
GFLOP/s achieved next to the machine's measured sgemm speed.
"""
import argparse
import importlib
import math
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
try:
    import pyconvnet  # noqa: F401
except ImportError:  # run from a source tree with an in-place build
    sys.path.insert(0, str(HERE.parent))

from _common import interleaved, markdown_table, sgemm_gflops  # noqa: E402

from pyconvnet import _convolution as conv  # noqa: E402

# name, (N, C, H, W), K, kernel, stride, padding, dilation, groups
SHAPES = [
    ("LeNet C1", (256, 1, 32, 32), 6, 5, 1, 0, 1, 1),
    ("VGG 3x3", (16, 64, 112, 112), 64, 3, 1, 1, 1, 1),
    ("ResNet stem 7x7/2", (16, 3, 224, 224), 64, 7, 2, 3, 1, 1),
    ("ResNet 3x3", (32, 256, 14, 14), 256, 3, 1, 1, 1, 1),
    ("1x1 bottleneck", (32, 512, 14, 14), 128, 1, 1, 0, 1, 1),
    ("MobileNet depthwise", (32, 256, 28, 28), 256, 3, 1, 1, 1, 256),
    ("ResNeXt grouped", (16, 128, 56, 56), 128, 3, 1, 1, 1, 32),
    ("dilated 3x3 d2", (16, 64, 64, 64), 64, 3, 1, 2, 2, 1),
]


def load_peer(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def path_name(geom, n_threads):
    """Kernels for the forward pass, the input gradient, the weight gradient
    on ``n_threads`` threads."""
    dx = conv._algorithm(geom.transposed(), "forward", n_threads) \
        if geom.stride == (1, 1, 1) else conv._algorithm(geom, "input_grad", n_threads)
    forward = conv._algorithm(geom, "forward", n_threads)
    return f"{forward} / {dx} / {conv._algorithm(geom, 'weight_grad', n_threads)}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smaller batches and fewer repeats (a smoke run)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=None,
                        help="timed runs per measurement (default 7, quick 2)")
    parser.add_argument("--only", default=None,
                        help="comma-separated substrings of the shape names to run")
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 7)
    nt = args.threads

    torch = load_peer("torch")
    if torch is not None:
        torch.set_num_threads(nt)
    gemm_peak = sgemm_gflops(n=1024 if args.quick else 2048)
    print(f"threads: {nt}; measured sgemm (numpy's BLAS): {gemm_peak:.1f} GFLOP/s; "
          f"peer: {'torch ' + torch.__version__ if torch else 'torch (missing)'}")
    print()

    header = ["layer (N,C,H,W -> K, kernel)", "kernels (fwd / dx / dW)", "fwd ours ms", "fwd torch ms",
              "fwd speed-up", "fwd GFLOP/s", "f+b ours ms", "f+b torch ms",
              "f+b speed-up", "f+b GFLOP/s"]
    rows, fwd_ratios, fb_ratios = [], [], []
    rng = np.random.default_rng(0)
    for name, xs, K, F, s, p, d, g in SHAPES:
        if args.only and not any(part.strip().lower() in name.lower()
                                 for part in args.only.split(",")):
            continue
        if args.quick:
            xs = (max(1, xs[0] // 8),) + xs[1:]
        x = rng.standard_normal(xs, dtype=np.float32)
        w = rng.standard_normal((K, xs[1] // g, F, F), dtype=np.float32)
        b = rng.standard_normal(K, dtype=np.float32)
        y = conv.conv2d(x, w, b, s, p, d, g, n_threads=nt)
        dy = rng.standard_normal(y.shape, dtype=np.float32)
        geom = conv._validate(2, x, w, b, s, p, d, g)[3]
        flops = 2.0 * y.size * (xs[1] // g) * F * F

        def ours_fwd():
            conv.conv2d(x, w, b, s, p, d, g, n_threads=nt)

        def ours_fb():
            conv.conv2d(x, w, b, s, p, d, g, n_threads=nt)
            conv.conv2d_backward(dy, x, w, s, p, d, g, n_threads=nt)

        funcs_f, funcs_fb = [ours_fwd], [ours_fb]
        if torch is not None:
            F_ = torch.nn.functional
            xt, wt, bt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
            xg = xt.clone().requires_grad_()
            wg = wt.clone().requires_grad_()
            bg = bt.clone().requires_grad_()
            dyt = torch.from_numpy(dy)

            def torch_fwd():
                with torch.no_grad():
                    F_.conv2d(xt, wt, bt, s, p, d, g)

            def torch_fb():
                xg.grad = wg.grad = bg.grad = None
                F_.conv2d(xg, wg, bg, s, p, d, g).backward(dyt)

            funcs_f.append(torch_fwd)
            funcs_fb.append(torch_fb)
        tf = interleaved(funcs_f, rounds)
        tfb = interleaved(funcs_fb, rounds)
        label = f"{name} ({','.join(map(str, xs))} -> {K}, {F}x{F}" + \
            (f"/{s}" if s != 1 else "") + (f", g{g}" if g != 1 else "") + \
            (f", d{d}" if d != 1 else "") + ")"
        row = [label, path_name(geom, nt), f"{tf[0] * 1e3:.2f}"]
        if torch is not None:
            fwd_ratios.append(tf[1] / tf[0])
            fb_ratios.append(tfb[1] / tfb[0])
            row += [f"{tf[1] * 1e3:.2f}", f"{fwd_ratios[-1]:.2f}"]
        else:
            row += ["missing", "-"]
        row += [f"{flops / tf[0] / 1e9:.1f}", f"{tfb[0] * 1e3:.2f}"]
        if torch is not None:
            row += [f"{tfb[1] * 1e3:.2f}", f"{fb_ratios[-1]:.2f}"]
        else:
            row += ["missing", "-"]
        row.append(f"{3 * flops / tfb[0] / 1e9:.1f}")
        rows.append(row)
        print(" | ".join(row), file=sys.stderr, flush=True)

    print(markdown_table(header, rows))
    print()
    if fwd_ratios:
        gm_f = math.exp(statistics.fmean(math.log(r) for r in fwd_ratios))
        gm_fb = math.exp(statistics.fmean(math.log(r) for r in fb_ratios))
        print(f"geometric-mean speed-up over torch: forward {gm_f:.2f}, "
              f"forward+backward {gm_fb:.2f} (min {min(fwd_ratios):.2f} / "
              f"{min(fb_ratios):.2f})")
    else:
        print("torch is missing: no speed-ups to report")
    print(f"sgemm reference: {gemm_peak:.1f} GFLOP/s "
          "(GFLOP/s columns count 2*N*K*C/G*kernel*positions per pass, x3 for f+b)")


if __name__ == "__main__":
    main()
