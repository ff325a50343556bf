"""Time pyconvnet's pooling kernels against PyTorch on the CPU, in one run.

float32 NCHW inputs, both libraries on the same number of threads (default
2). Prints a Markdown table of median times, the speed-up (PyTorch time /
pyconvnet time; above 1 means pyconvnet is faster) and the bandwidth
pyconvnet achieves, counting every byte a call must read or write (inputs,
outputs, and indices where produced) beside the machine's measured copy
bandwidth.

Each row times the two libraries in alternation (median of ``--repeat``
calls each), so that other work on the machine weighs on both alike.
Forward rows time what a user calls: ``torch.nn.functional.max_pool2d(x)``
and so on. The max-pooling backward rows time the training path, the
forward with indices and then the gradient (PyTorch: the forward on a tensor
that requires grad, then autograd's backward of a fixed upstream gradient;
pyconvnet: ``max_pool2d(return_indices=True)`` then ``max_pool2d_backward``).
The average and adaptive backward rows time the gradient kernels alone
(PyTorch's ``aten`` backward operators).

    python benchmarks/bench_pool.py [--threads 2] [--quick]
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import copy_bandwidth, interleaved, markdown_table  # noqa: E402

from pyconvnet import functional as P  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # reported, not faked
    torch = None


def _nbytes(*arrays):
    return sum(a.nbytes for a in arrays)


def cases(quick):
    """(name, input shape, pooling arguments) of every benchmark row."""
    scale = 8 if quick else 1
    return [
        ("max k3 s2 p1", (32 // scale, 64, 112, 112), dict(kind="max", k=3, s=2, p=1)),
        ("max k2 s2", (64 // scale, 64, 56, 56), dict(kind="max", k=2, s=2, p=0)),
        ("avg k2 s2", (64 // scale, 256, 28, 28), dict(kind="avg", k=2, s=2, p=0)),
        ("avg k3 s1 p1", (32 // scale, 512, 14, 14), dict(kind="avg", k=3, s=1, p=1)),
        ("adaptive avg 1x1", (32 // scale, 512, 14, 14), dict(kind="adaptive", out=1)),
        ("adaptive avg 7x7", (32 // scale, 512, 14, 14), dict(kind="adaptive", out=7)),
    ]


def forward_pair(x, tx, a, n_threads):
    """Our call, PyTorch's call, and the bytes our call moves."""
    if a["kind"] == "max":
        ours = lambda: P.max_pool2d(x, a["k"], a["s"], a["p"], n_threads=n_threads)  # noqa: E731
        theirs = lambda: F.max_pool2d(tx, a["k"], a["s"], a["p"])  # noqa: E731
    elif a["kind"] == "avg":
        ours = lambda: P.avg_pool2d(x, a["k"], a["s"], a["p"], n_threads=n_threads)  # noqa: E731
        theirs = lambda: F.avg_pool2d(tx, a["k"], a["s"], a["p"])  # noqa: E731
    else:
        ours = lambda: P.adaptive_avg_pool2d(x, a["out"], n_threads=n_threads)  # noqa: E731
        theirs = lambda: F.adaptive_avg_pool2d(tx, a["out"])  # noqa: E731
    return ours, theirs, _nbytes(x, ours())


def backward_pair(x, tx, a, n_threads, rng):
    """As forward_pair, for the gradient (see the module docstring)."""
    if a["kind"] == "max":
        y, idx = P.max_pool2d(x, a["k"], a["s"], a["p"], return_indices=True)
        g = rng.standard_normal(y.shape, dtype=np.float32)
        tg = torch.from_numpy(g)
        txg = tx.clone().requires_grad_(True)

        def ours():
            _, i = P.max_pool2d(x, a["k"], a["s"], a["p"], return_indices=True,
                                n_threads=n_threads)
            return P.max_pool2d_backward(g, i, x.shape, n_threads=n_threads)

        def theirs():
            txg.grad = None
            ty, _ = F.max_pool2d(txg, a["k"], a["s"], a["p"], return_indices=True)
            ty.backward(tg)

        # forward: x in, y and indices out; backward: g and indices in, grad out
        return ours, theirs, _nbytes(x, y, idx, g, idx, x)
    if a["kind"] == "avg":
        y = P.avg_pool2d(x, a["k"], a["s"], a["p"])
        g = rng.standard_normal(y.shape, dtype=np.float32)
        tg = torch.from_numpy(g)
        ours = lambda: P.avg_pool2d_backward(g, x.shape, a["k"], a["s"], a["p"],  # noqa: E731
                                             n_threads=n_threads)
        theirs = lambda: torch.ops.aten.avg_pool2d_backward(  # noqa: E731
            tg, tx, [a["k"]] * 2, [a["s"]] * 2, [a["p"]] * 2, False, True, None)
        return ours, theirs, _nbytes(g, x)
    y = P.adaptive_avg_pool2d(x, a["out"])
    g = rng.standard_normal(y.shape, dtype=np.float32)
    tg = torch.from_numpy(g)
    ours = lambda: P.adaptive_avg_pool2d_backward(g, x.shape, n_threads=n_threads)  # noqa: E731
    theirs = lambda: torch.ops.aten._adaptive_avg_pool2d_backward(tg, tx)  # noqa: E731
    return ours, theirs, _nbytes(g, x)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--repeat", type=int, default=None,
                        help="timed calls of each function per row (default 15; 3 quick)")
    args = parser.parse_args(argv)
    if torch is None:
        print("PyTorch is not installed: there is nothing to compare against.")
        return 1
    rng = np.random.default_rng(0)
    repeat = args.repeat or (3 if args.quick else 15)
    torch.set_num_threads(args.threads)
    bandwidth = copy_bandwidth(50_000_000 if args.quick else 200_000_000,
                               repeat=3 if args.quick else 5)

    rows = []
    for name, shape, a in cases(args.quick):
        x = rng.standard_normal(shape, dtype=np.float32)
        tx = torch.from_numpy(x)
        for direction in ("forward", "backward"):
            if direction == "forward":
                ours, theirs, nbytes = forward_pair(x, tx, a, args.threads)
                label = name
            else:
                ours, theirs, nbytes = backward_pair(x, tx, a, args.threads, rng)
                label = name + (" fwd+bwd" if a["kind"] == "max" else " bwd")
            t_ours, t_theirs = interleaved((ours, theirs), repeat)
            gbs = nbytes / t_ours / 1e9
            rows.append([label, "x".join(map(str, shape)), f"{t_ours * 1e3:.2f}",
                         f"{t_theirs * 1e3:.2f}", f"{t_theirs / t_ours:.1f}x",
                         f"{gbs:.1f}", f"{100 * gbs / bandwidth:.0f}%"])
    print(f"float32, {args.threads} threads (torch.set_num_threads({args.threads}), "
          f"n_threads={args.threads}); measured copy bandwidth {bandwidth:.1f} GB/s "
          "(bytes read + written by numpy.copyto)\n")
    print(markdown_table(["case", "input", "pyconvnet ms", "torch ms", "speed-up",
                          "pyconvnet GB/s", "of copy bw"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
