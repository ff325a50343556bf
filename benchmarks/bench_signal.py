"""Time pyconvnet.signal against scipy.signal, scikit-image and OpenCV, in one run.

Prints Markdown tables of median times and speed-up ratios (peer time /
pyconvnet time; above 1 means pyconvnet is faster). The first table is
float64, both libraries at the same thread count for the parts that can use
threads (scipy's correlate and scikit-image's match_template run on one
thread: that is how users call them). The second is template matching in
float32 against OpenCV's ``matchTemplate`` at the same thread count
(``cv2.setNumThreads``): centred similarity against ``TM_CCOEFF_NORMED``,
cosine against ``TM_CCORR_NORMED``; and a stack of 16 templates against 16
single calls.

    python benchmarks/bench_signal.py [--threads 2] [--quick] [--only match]
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
try:
    import cv2
except ImportError:  # reported as missing, not faked
    cv2 = None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--only", choices=["signal", "match"], help="one of the tables")
    args = parser.parse_args(argv)
    if args.only != "match":
        signal_table(args)
    if args.only != "signal":
        match_table(args)


def signal_table(args):
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


def match_table(args):
    """float32 template matching against OpenCV, and a stack of templates."""
    if cv2 is None:
        print("\nOpenCV (opencv-python-headless) is missing: no matching table")
        return
    cv2.setNumThreads(args.threads)
    rng = np.random.default_rng(1)
    cases = ([(512, 8), (1024, 16), (1024, 48)] if args.quick else
             [(512, 8), (512, 32), (1024, 16), (1024, 48), (1500, 101), (2048, 8), (2048, 48),
              (2048, 128), (4096, 16), (4096, 128)])
    repeat = 3 if args.quick else 5
    rows, ratios = [], {"centred": [], "cosine": []}
    for n, k in cases:
        image = rng.random((n, n), dtype=np.float32)
        template = image[n // 3:n // 3 + k, n // 2:n // 2 + k].copy()
        ours_c, cv_c, ours_s, cv_s = interleaved(
            [lambda: similarity_map(image, template, centered=True, n_threads=args.threads),
             lambda: cv2.matchTemplate(image, template, cv2.TM_CCOEFF_NORMED),
             lambda: similarity_map(image, template, n_threads=args.threads),
             lambda: cv2.matchTemplate(image, template, cv2.TM_CCORR_NORMED)], repeat)
        ratios["centred"].append(cv_c / ours_c)
        ratios["cosine"].append(cv_s / ours_s)
        rows.append([f"{n}x{n}", f"{k}x{k}", f"{ours_c * 1e3:.1f}", f"{cv_c * 1e3:.1f}",
                     f"{cv_c / ours_c:.2f}x", f"{ours_s * 1e3:.1f}", f"{cv_s * 1e3:.1f}",
                     f"{cv_s / ours_s:.2f}x"])
    print(f"\nfloat32, pyconvnet and OpenCV at {args.threads} threads; "
          f"times in ms (median of {repeat})\n")
    print(markdown_table(["image", "template", "centred", "TM_CCOEFF_NORMED", "speed-up",
                          "cosine", "TM_CCORR_NORMED", "speed-up"], rows))
    for name, values in ratios.items():
        print(f"\n{name} vs OpenCV: slowest speed-up {min(values):.2f}x, "
              f"geometric mean {np.exp(np.mean(np.log(values))):.2f}x")

    n, k, count = (1024, 16, 16) if args.quick else (2048, 32, 16)
    image = rng.random((n, n), dtype=np.float32)
    stack = rng.random((count, k, k), dtype=np.float32)
    together, apart = interleaved(
        [lambda: similarity_map(image, stack, centered=True, n_threads=args.threads),
         lambda: [similarity_map(image, t, centered=True, n_threads=args.threads)
                  for t in stack]], repeat)
    print(f"\n{count} templates of {k}x{k} against {n}x{n}: one stacked call "
          f"{together * 1e3:.0f} ms, {count} single calls {apart * 1e3:.0f} ms "
          f"({apart / together:.2f}x)")


if __name__ == "__main__":
    main()
