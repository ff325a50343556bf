"""Time pyconvnet.signal against scipy.signal, scikit-image and OpenCV, in one run.

Prints Markdown tables of median times and speed-up ratios (peer time /
pyconvnet time; above 1 means pyconvnet is faster). The first table is
float64, both libraries at the same thread count for the parts that can use
threads (scipy's correlate and scikit-image's match_template run on one
thread: that is how users call them). The second is template matching in
float32 against OpenCV's ``matchTemplate`` at the same thread count
(``cv2.setNumThreads``): centred similarity against ``TM_CCOEFF_NORMED``,
cosine against ``TM_CCORR_NORMED``, and the centred one against
scikit-image's ``match_template`` on the float64 image; its rows are sorted
slowest first (by the ratio to OpenCV). Then a stack of 16 templates
against 16 single calls.

    python benchmarks/bench_signal.py [--threads 2] [--quick] [--only match]
        [--matching-only] [--no-skimage] [--json FILE] [--markdown FILE] [--fit]

``--matching-only`` (the same as ``--only match``) runs the matching table
alone: images of 512^2 to 4096^2 and templates of 8^2 to 128^2 (with
``--quick``, three small cases). ``--json`` and ``--markdown`` write that
table to files as well. ``--fit`` measures the two 2-D paths of
``similarity_map`` on one thread over a grid of sizes and prints the
least-squares constants of their cost model (pyconvnet/signal.py:
``_TILE_COSTS``, ``_DIRECT_COSTS``).
"""
import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy.fft
import scipy.optimize
import scipy.signal

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved, markdown_table  # noqa: E402

from pyconvnet import signal as _signal  # noqa: E402  (the fit and the choice of path)
from pyconvnet.signal import choose_method, correlate, similarity_map  # noqa: E402

try:
    from skimage.feature import match_template
except ImportError:  # reported as missing, not faked
    match_template = None
try:
    import cv2
except ImportError:  # reported as missing, not faked
    cv2 = None

MATCH_IMAGES = (512, 1024, 2048, 4096)
MATCH_TEMPLATES = (8, 16, 32, 64, 128)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--only", choices=["signal", "match"], help="one of the tables")
    parser.add_argument("--matching-only", action="store_true",
                        help="the template matching table alone (--only match)")
    parser.add_argument("--json", type=Path, help="write the matching table as JSON")
    parser.add_argument("--markdown", type=Path, help="write the matching table as Markdown")
    parser.add_argument("--no-skimage", action="store_true",
                        help="leave scikit-image out of the matching table")
    parser.add_argument("--fit", action="store_true",
                        help="fit the cost model of the 2-D paths and stop")
    args = parser.parse_args(argv)
    if args.fit:
        fit_cost_model()
        return
    if args.matching_only:
        args.only = "match"
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
    """float32 template matching against OpenCV and scikit-image, and a
    stack of templates."""
    if cv2 is None:
        print("\nOpenCV (opencv-python-headless) is missing: no matching table")
        return
    cv2.setNumThreads(args.threads)
    rng = np.random.default_rng(1)
    cases = ([(512, 8), (1024, 16), (1024, 48)] if args.quick else
             [(n, k) for n in MATCH_IMAGES for k in MATCH_TEMPLATES])
    repeat = 3 if args.quick else 5
    records = []
    # (4096^2 cases: 3 rounds, so that one thread count takes about a minute)
    started = time.perf_counter()
    for n, k in cases:
        image = rng.random((n, n), dtype=np.float32)
        image64 = image.astype(np.float64)
        template = image[n // 3:n // 3 + k, n // 2:n // 2 + k].copy()
        template64 = template.astype(np.float64)
        ours_c, cv_c, ours_s, cv_s = interleaved(
            [lambda: similarity_map(image, template, centered=True, n_threads=args.threads),
             lambda: cv2.matchTemplate(image, template, cv2.TM_CCOEFF_NORMED),
             lambda: similarity_map(image, template, n_threads=args.threads),
             lambda: cv2.matchTemplate(image, template, cv2.TM_CCORR_NORMED)],
            repeat if n < 4096 else 3)
        sk = None
        if match_template is not None and not args.no_skimage:
            # single-threaded and slow at the large sizes: fewer rounds
            sk = interleaved([lambda: match_template(image64, template64)], 1 if n >= 2048 else 3,
                             warmup=0 if n >= 2048 else 1)[0]
        # the path similarity_map takes for this case (its private choice;
        # "n/a" for versions without it)
        choose = getattr(_signal, "_choose_tiled", None)
        method = choose((n, n), (k, k), 1, np.float32, args.threads) if choose else "n/a"
        for score, ours, peer, flag in (("centred", ours_c, cv_c, "TM_CCOEFF_NORMED"),
                                        ("cosine", ours_s, cv_s, "TM_CCORR_NORMED")):
            records.append({
                "image": n, "template": k, "score": score, "method": method,
                "pyconvnet_ms": ours * 1e3, "opencv": flag, "opencv_ms": peer * 1e3,
                "speedup_opencv": peer / ours,
                "skimage_ms": sk * 1e3 if sk is not None and score == "centred" else None,
                "speedup_skimage": sk / ours if sk is not None and score == "centred" else None,
            })
    records.sort(key=lambda r: r["speedup_opencv"])
    rows = [[f"{r['image']}^2", f"{r['template']}^2", r["score"], r["method"],
             f"{r['pyconvnet_ms']:.2f}", f"{r['opencv_ms']:.2f} ({r['opencv']})",
             f"{r['speedup_opencv']:.2f}x",
             "" if r["skimage_ms"] is None else f"{r['skimage_ms']:.1f}",
             "" if r["speedup_skimage"] is None else f"{r['speedup_skimage']:.1f}x"]
            for r in records]
    title = (f"float32, pyconvnet and OpenCV {cv2.__version__} at {args.threads} threads, "
             f"scikit-image on the float64 image (one thread); times in ms, median of "
             f"{repeat} (4096^2: of 3; scikit-image from 2048^2: one run); slowest "
             f"speed-up first")
    table = markdown_table(["image", "template", "score", "path", "pyconvnet", "OpenCV",
                            "vs OpenCV", "scikit-image", "vs scikit-image"], rows)
    summary = []
    for score in ("centred", "cosine"):
        values = [r["speedup_opencv"] for r in records if r["score"] == score]
        summary.append(f"{score} vs OpenCV: slowest {min(values):.2f}x, "
                       f"geometric mean {math.exp(np.mean(np.log(values))):.2f}x")
    values = [r["speedup_skimage"] for r in records if r["speedup_skimage"] is not None]
    if values:
        summary.append(f"centred vs scikit-image: slowest {min(values):.1f}x, "
                       f"geometric mean {math.exp(np.mean(np.log(values))):.1f}x")
    print(f"\n{title}\n\n{table}\n")
    print("\n".join(summary))

    n, k, count = (1024, 16, 16) if args.quick else (2048, 32, 16)
    image = rng.random((n, n), dtype=np.float32)
    stack = rng.random((count, k, k), dtype=np.float32)
    together, apart = interleaved(
        [lambda: similarity_map(image, stack, centered=True, n_threads=args.threads),
         lambda: [similarity_map(image, t, centered=True, n_threads=args.threads)
                  for t in stack]], 3)
    stack_line = (f"{count} templates of {k}x{k} against {n}x{n}: one stacked call "
                  f"{together * 1e3:.0f} ms, {count} single calls {apart * 1e3:.0f} ms "
                  f"({apart / together:.2f}x)")
    print(f"\n{stack_line}")
    elapsed = time.perf_counter() - started
    print(f"\n(matching table in {elapsed:.0f} s)")
    machine = {"cpu_count": os.cpu_count(), "machine": platform.machine(),
               "processor": platform.processor(), "python": platform.python_version(),
               "numpy": np.__version__, "opencv": cv2.__version__}
    if args.json:
        args.json.write_text(json.dumps(
            {"threads": args.threads, "repeat": repeat, "machine": machine, "cases": records,
             "summary": summary, "stack": stack_line, "seconds": elapsed}, indent=1) + "\n")
    if args.markdown:
        args.markdown.write_text(f"{title}\n\n{table}\n\n" + "\n".join(
            f"- {line}" for line in summary + [stack_line]) + "\n")


def _correlate():
    from pyconvnet._ext import _correlate as module
    return module


def fit_cost_model():
    """Measure the tiled transforms and the register-blocked direct loops on
    one thread (float32, the least of five runs of process time, which other
    programs on the machine disturb least) and fit the constants of
    ``_tile_cost`` and ``_DIRECT_COSTS`` (for the vector loops this CPU
    runs)."""
    def least(func, runs=5):
        func()
        times = []
        for _ in range(runs):
            start = time.process_time()
            func()
            times.append(time.process_time() - start)
        return min(times)

    rng = np.random.default_rng(0)
    features, measured, direct_features, direct = [], [], [], []
    for n in (512, 1024, 2048):
        image = rng.random((n, n), dtype=np.float32)
        for k in (4, 8, 12, 16, 24, 32, 128):
            kernel = rng.random((1, k, k), dtype=np.float32)
            if k <= 32:
                outputs = (n - k + 1) ** 2
                out = np.empty((n - k + 1,) * 2, dtype=np.float32)
                direct.append(least(lambda: _correlate().correlate2d_valid(
                    image, kernel[0], out, 1)))
                direct_features.append([outputs * k * k, outputs * k])
            if k not in (8, 32, 128):
                continue
            for length in (64, 96, 128, 192, 256, 384, 512, 768, 1024, 2048):
                length = min(length, scipy.fft.next_fast_len(n, real=True))
                if length - k + 1 < k:
                    continue
                tiles = math.ceil((n - k + 1) / (length - k + 1)) ** 2
                points = length * length
                log = math.log2(points)
                features.append([tiles * points * log, tiles * points,
                                 tiles * points * log * max(0.0, log - 17),
                                 (tiles == 1) * points * log])
                measured.append(least(lambda: _signal._tiled_correlate(
                    image, kernel, (length, length), 1)))
    a, y = np.array(features), np.array(measured)
    # relative errors count alike for small and large cases
    coef = scipy.optimize.nnls(a / y[:, None], np.ones_like(y))[0]
    error = np.sqrt(np.mean(np.log(a @ coef / y) ** 2))
    print("_TILE_COSTS = (" + ", ".join(f"{c:.3g}" for c in coef) + ")"
          f"  # rms log error {error:.2f}")
    a, y = np.array(direct_features), np.array(direct)
    coef = scipy.optimize.nnls(a / y[:, None], np.ones_like(y))[0]
    error = np.sqrt(np.mean(np.log(a @ coef / y) ** 2))
    print(f"_DIRECT_COSTS[{_correlate().simd()!r}][4] = (" + ", ".join(f"{c:.3g}" for c in coef)
          + f")  # rms log error {error:.2f}")


if __name__ == "__main__":
    main()
