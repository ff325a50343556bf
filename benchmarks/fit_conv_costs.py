"""Fit the convolution cost model on every conv layer of the built-in
networks.

Times every kernel that applies to each distinct convolution layer of the
networks (forward pass and weight gradient) at the given batch sizes and
thread counts, then fits the cost per unit of each amount of work in
``pyconvnet._convolution._cost_terms`` by nonnegative least squares on the
relative errors, and prints the ``_COSTS`` table to paste into
``pyconvnet/_convolution.py``, with how often the fitted model picks the
fastest kernel and how much slower its picks are when it does not.

Run ``python benchmarks/fit_conv_costs.py --json costs.json`` to measure and
fit; ``--load costs.json`` refits saved measurements without timing again
(``--recompute`` takes their amounts of work from the current cost terms).
``--kernel pointwise --merge costs.json`` times again only the cases where
one kernel applies and fits them with the saved others.
"""
import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
try:
    import pyconvnet  # noqa: F401
except ImportError:  # run from a source tree with an in-place build
    sys.path.insert(0, str(HERE.parent))

from bench_networks import DEFAULT_NETS, interleaved_repeats, network_layers  # noqa: E402

from pyconvnet import _convolution as conv  # noqa: E402

OPS = ("forward", "weight_grad")
# The direct loops are the fallback of last resort: they are not timed on
# layers larger than this (multiply-adds), where they never win.
DIRECT_LIMIT = 3e7


def candidates(geom, op):
    kernels = conv._applicable(geom, op)
    if "dense" in kernels:   # a fully connected layer: always one product
        return []
    if conv._cost_terms(geom, "direct", op, 1)[1]["macs"] > DIRECT_LIMIT:
        kernels.discard("direct")
    return sorted(kernels)


def run(op, geom, arrays, algorithm, n_threads):
    """A callable that runs ``op`` with ``algorithm`` forced."""
    x5, w5, dy5, y5, dw5 = arrays

    def forced(g, o="forward", *args, **kwargs):
        return algorithm

    def call():
        saved = conv._algorithm
        conv._algorithm = forced
        try:
            if op == "forward":
                conv._run_forward(geom, x5, w5, None, y5, n_threads)
            else:
                conv._run_weight_grad(geom, x5, dy5, dw5, n_threads)
        finally:
            conv._algorithm = saved
    return call


def measure(args):
    layers = {}
    for net in args.nets.split(","):
        for _, layer in network_layers(net):
            layers[layer] = True
    print(f"{len(layers)} distinct layers", file=sys.stderr)
    rng = np.random.default_rng(0)
    records = []
    for n_threads in [int(t) for t in args.threads.split(",")]:
        for batch in [int(b) for b in args.batch.split(",")]:
            for i, layer in enumerate(layers):
                x = rng.standard_normal((batch, layer.in_channels, layer.height, layer.width),
                                        dtype=np.float32)
                w = rng.standard_normal((layer.out_channels, layer.in_channels // layer.groups)
                                        + layer.kernel, dtype=np.float32)
                padding = ("same" if not layer.symmetric_padding()
                           else tuple(p for p, _ in layer.padding))
                x, w, _, geom, out_shape, _ = conv._validate(
                    2, x, w, None, layer.stride, padding, layer.dilation, layer.groups)
                y = np.empty(out_shape, np.float32)
                dy = rng.standard_normal(out_shape, dtype=np.float32)
                dw = np.empty_like(w)
                arrays = (x.reshape(geom.x5), w.reshape(geom.w5), dy.reshape(geom.y5),
                          y.reshape(geom.y5), dw.reshape(geom.w5))
                for op in OPS:
                    kernels = candidates(geom, op)
                    if len(kernels) < 2 and not args.all:
                        continue
                    if args.kernel and args.kernel not in kernels:
                        continue
                    calls = [run(op, geom, arrays, k, n_threads) for k in kernels]
                    # one untimed run each; drop kernels far slower than the best
                    first = []
                    for call in calls:
                        start = time.perf_counter()
                        call()
                        first.append(time.perf_counter() - start)
                    keep = [j for j, t in enumerate(first)
                            if t <= 4 * min(first) or t < 2e-3]
                    # in turns, each sample a few milliseconds of calls
                    times = interleaved_repeats([calls[j] for j in keep], args.rounds)
                    for j, t in zip(keep, times):
                        tasks, work, serial = conv._cost_terms(geom, kernels[j], op, n_threads)
                        records.append(dict(layer=layer.label(), batch=batch,
                                            threads=n_threads, op=op, algorithm=kernels[j],
                                            time=t, tasks=tasks, work=work, serial=serial))
                    print(f"  [{i + 1}/{len(layers)}] t{n_threads} b{batch} {op} "
                          f"{layer.label()}: "
                          + ", ".join(f"{kernels[j]} {t * 1e3:.3f}" for j, t in zip(keep, times)),
                          file=sys.stderr, flush=True)
    return records


def layer_geometry(layer, batch):
    """The checked geometry of a benchmark layer at this batch size."""
    x = np.empty((batch, layer.in_channels, layer.height, layer.width), np.float32)
    w = np.empty((layer.out_channels, layer.in_channels // layer.groups) + layer.kernel,
                 np.float32)
    padding = "same" if not layer.symmetric_padding() else tuple(p for p, _ in layer.padding)
    return conv._validate(2, x, w, None, layer.stride, padding, layer.dilation,
                          layer.groups)[3]


def recompute(records, nets):
    """Records with the amounts of work the current cost terms give (for a
    refit after the terms changed, on measurements kept with --json)."""
    labels = {}
    for net in nets:
        for _, layer in network_layers(net):
            labels.setdefault(layer.label(), layer)
    kept = []
    for r in records:
        layer = labels.get(r["layer"])
        if layer is None:
            continue
        geom = layer_geometry(layer, r["batch"])
        kernels = conv._applicable(geom, r["op"])
        if r["algorithm"] not in kernels or "dense" in kernels:
            continue
        r["tasks"], r["work"], r["serial"] = conv._cost_terms(
            geom, r["algorithm"], r["op"], r["threads"])
        kept.append(r)
    print(f"{len(kept)} of {len(records)} measurements recomputed", file=sys.stderr)
    return kept


def features(record, names):
    """The record's amounts (``conv._cost_features``) in the order of names."""
    amounts = conv._cost_features(record["tasks"], record["work"], record["serial"],
                                  record["threads"])
    return [amounts.get(name, 0.0) for name in names]


def fit(records):
    groups = defaultdict(list)
    for r in records:
        groups[r["algorithm"], r["op"]].append(r)
    costs = {}
    for key, rows in sorted(groups.items()):
        names = ["call"] + sorted({k for r in rows for k in r["work"]}
                                  | {k for r in rows for k in r["serial"]})
        a = np.array([features(r, names) for r in rows], float)
        t = np.array([r["time"] for r in rows])
        # relative errors: divide each row by its measured time
        scale = a.max(axis=0)
        scale[scale == 0] = 1
        coef, _ = nnls(a / t[:, None] / scale, np.ones(len(t)))
        coef = coef / scale
        pred = a @ coef
        err = np.abs(pred / t - 1)
        costs[key] = {n: float(f"{c:.4g}") for n, c in zip(names, coef) if c > 0}
        print(f"{key}: {len(rows)} timings, median |error| {100 * np.median(err):.0f}%, "
              f"90th percentile {100 * np.percentile(err, 90):.0f}%", file=sys.stderr)
    return costs


def evaluate(records, costs):
    cases = defaultdict(list)
    for r in records:
        cases[r["layer"], r["batch"], r["threads"], r["op"]].append(r)
    hits, regrets, worst = 0, [], []
    for case, rows in cases.items():
        if len(rows) < 2:
            continue

        def predicted(r):
            c = costs[r["algorithm"], r["op"]]
            names = list(c)
            return sum(c[n] * f for n, f in zip(names, features(r, names)))
        # as pyconvnet chooses: the direct loops only where nothing else applies
        choices = [r for r in rows if r["algorithm"] != "direct"] or rows
        chosen = min(choices, key=predicted)
        best = min(rows, key=lambda r: r["time"])
        hits += chosen is best
        regrets.append(chosen["time"] / best["time"])
        worst.append((regrets[-1], case, chosen["algorithm"], best["algorithm"]))
    n = len(regrets)
    print(f"model picks the fastest kernel in {hits} of {n} cases; its picks take "
          f"{statistics.fmean(regrets):.3f}x the fastest on average, "
          f"{max(regrets):.2f}x at worst", file=sys.stderr)
    for regret, case, chosen, best in sorted(worst, reverse=True)[:8]:
        print(f"  {regret:.2f}x  {case}: picks {chosen}, fastest {best}", file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default=",".join(DEFAULT_NETS))
    parser.add_argument("--batch", default="1,8,32")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--all", action="store_true",
                        help="also time layers where only one kernel applies")
    parser.add_argument("--json", default=None, help="save the measurements here")
    parser.add_argument("--load", default=None, help="fit saved measurements")
    parser.add_argument("--kernel", default=None,
                        help="time only the cases where this kernel applies (all their "
                             "kernels)")
    parser.add_argument("--merge", default=None,
                        help="fit these measurements with saved ones (--merge FILE), "
                             "whose cases measured again are dropped")
    parser.add_argument("--recompute", action="store_true",
                        help="with --load: the amounts of work from the current cost terms "
                             "(layers of --nets)")
    args = parser.parse_args(argv)
    if args.load:
        records = json.loads(Path(args.load).read_text())
        if args.recompute:
            records = recompute(records, args.nets.split(","))
    else:
        records = measure(args)
        if args.json:
            Path(args.json).write_text(json.dumps(records))
    if args.merge:
        def case(r):
            return r["layer"], r["batch"], r["threads"], r["op"]
        measured = {case(r) for r in records}
        saved = recompute(json.loads(Path(args.merge).read_text()), args.nets.split(","))
        records = records + [r for r in saved if case(r) not in measured]
    costs = fit(records)
    evaluate(records, costs)
    print("_COSTS = {")
    for (algorithm, op), c in sorted(costs.items()):
        print(f"    ({algorithm!r}, {op!r}): {c!r},")
    print("}")


if __name__ == "__main__":
    main()
