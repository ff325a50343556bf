"""Time pyconvnet.signal against scipy.signal and scikit-image, in one run.

Prints a Markdown table of median times and speed-up ratios (peer time /
pyconvnet time; above 1 means pyconvnet is faster). float64, both libraries
at the same thread count for the parts that can use threads (scipy's
correlate and scikit-image's match_template run on one thread: that is how
users call them).

    python benchmarks/bench_signal.py [--threads 2] [--quick]
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import scipy.signal

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved, markdown_table  # noqa: E402

from pyconvnet.signal import choose_method, correlate, similarity_map  # noqa: E402

try:
    from skimage.feature import match_template
except ImportError:  # reported as missing, not faked
    match_template = None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    images = [512, 1024] if args.quick else [512, 1024, 2048]
    kernels = [3, 15] if args.quick else [3, 7, 15, 31, 63]
    repeat = 3 if args.quick else 7

    rows = []
    ratios = {"scipy": [], "skimage": []}
    for n in images:
        image = rng.random((n, n))
        for k in kernels:
            kernel = rng.random((k, k))
            funcs = [lambda: correlate(image, kernel, "same", n_threads=args.threads),
                     lambda: scipy.signal.correlate(image, kernel, "same"),
                     lambda: similarity_map(image, kernel, centered=True, n_threads=args.threads)]
            if match_template is not None:
                funcs.append(lambda: match_template(image, kernel))
            ours, theirs, sim, *sk = interleaved(funcs, repeat)
            if sk:
                sk_cell, sk_ratio = f"{sk[0] * 1e3:.1f}", f"{sk[0] / sim:.1f}x"
                ratios["skimage"].append(sk[0] / sim)
            else:
                sk_cell = sk_ratio = "missing"
            ratios["scipy"].append(theirs / ours)
            method = choose_method(image, kernel, "same", n_threads=args.threads)
            rows.append([f"{n}x{n}", f"{k}x{k}", method, f"{ours * 1e3:.1f}",
                         f"{theirs * 1e3:.1f}", f"{theirs / ours:.1f}x",
                         f"{sim * 1e3:.1f}", sk_cell, sk_ratio])
    n = 10 ** 5 if args.quick else 10 ** 6
    signal = rng.random(n)
    for k in ([3, 63] if args.quick else [3, 15, 63, 255, 1023]):
        kernel = rng.random(k)
        ours, theirs, sim = interleaved(
            [lambda: correlate(signal, kernel, "same", n_threads=args.threads),
             lambda: scipy.signal.correlate(signal, kernel, "same"),
             lambda: similarity_map(signal, kernel, centered=True, n_threads=args.threads)],
            repeat)
        ratios["scipy"].append(theirs / ours)
        method = choose_method(signal, kernel, "same", n_threads=args.threads)
        rows.append([f"{n}", f"{k}", method, f"{ours * 1e3:.2f}", f"{theirs * 1e3:.2f}",
                     f"{theirs / ours:.1f}x", f"{sim * 1e3:.2f}", "n/a (2-D only)", ""])

    print(f"float64, pyconvnet at {args.threads} threads; times in ms (median of {repeat})\n")
    print(markdown_table(
        ["input", "kernel", "method", "correlate", "scipy.signal", "speed-up",
         "similarity_map", "skimage match_template", "speed-up"], rows))
    for peer, values in ratios.items():
        if values:
            print(f"\n{peer}: slowest speed-up {min(values):.2f}x, "
                  f"geometric mean {np.exp(np.mean(np.log(values))):.2f}x")


if __name__ == "__main__":
    main()
