"""Every convolution layer of the built-in networks: pyconvnet against PyTorch
(CPU) and ONNX Runtime, forward and forward+backward, at the same thread
count.

The layers come from the specs in :mod:`pyconvnet.architectures` (through
:func:`pyconvnet.shapes.summary`, which knows each layer's input shape), not
from a hand-written list. Layers that occur several times (in one network or
in several) are timed once and counted as often as they occur. The first
convolution of a network gets no input gradient, as in PyTorch when the
input needs none.

Each time is the median over interleaved rounds (pyconvnet and PyTorch in
turn); within a round each library runs a layer back to back for a few
milliseconds and the time per call is taken, so that a library's threads
are as warm as when it runs a network alone. ONNX Runtime is timed in a
pass of its own, in its default configuration, whose idle threads spin and
would slow anything running beside them.

Run ``python benchmarks/bench_networks.py`` (``--batch 1,8,32``,
``--threads 2``, ``--nets resnet50,mobilenet_v2`` or ``--nets all``,
``--quick`` for a smoke run). PyTorch and ONNX Runtime are optional peers
(``pip install ".[bench]" torch``). Prints, per batch size:

* per-network totals: time summed over every conv layer, for pyconvnet and
  each peer, and the speed-ups (the peer's time over ours: above 1 when
  pyconvnet is faster); "best" is the faster of PyTorch and ONNX Runtime,
  layer by layer;
* the slowest layers against the best peer, with their shapes, the kernel
  pyconvnet chose, achieved GFLOP/s and the fraction of the best GFLOP/s
  measured on the machine in this run (numpy's sgemm or the fastest layer
  of any library).

``--json FILE`` also writes every measurement, for fitting the cost model.
"""
import argparse
import gc
import importlib
import json
import math
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
try:
    import pyconvnet  # noqa: F401
except ImportError:  # run from a source tree with an in-place build
    sys.path.insert(0, str(HERE.parent))

from _common import markdown_table, sgemm_gflops  # noqa: E402

from pyconvnet import _convolution as conv  # noqa: E402
from pyconvnet import architectures, shapes  # noqa: E402
from pyconvnet.functional import conv2d, conv2d_backward  # noqa: E402

# One network of each family (the others repeat its layers at other
# depths); U-Net is left to --nets: 150 GMACs an image at 572x572.
DEFAULT_NETS = ("lenet5", "alexnet", "vgg16", "googlenet", "resnet50",
                "resnext50_32x4d", "densenet121", "mobilenet_v2", "mobilenet_v3_large",
                "efficientnet_b0", "shufflenet_v2_x1_0", "squeezenet1_1",
                "regnet_y_400mf", "convnext_tiny")


@dataclass(frozen=True)
class ConvLayer:
    """One 2-D convolution layer without its batch size."""

    in_channels: int
    height: int
    width: int
    out_channels: int
    kernel: tuple
    stride: tuple
    padding: tuple  # ((top, bottom), (left, right))
    dilation: tuple
    groups: int
    bias: bool
    first: bool  # the network's input layer: no input gradient

    def label(self):
        k = "x".join(map(str, self.kernel))
        parts = [f"{self.in_channels}x{self.height}x{self.width} -> "
                 f"{self.out_channels}, {k}"]
        if self.stride != (1, 1):
            parts.append("/" + "x".join(map(str, self.stride)))
        if self.groups == self.in_channels == self.out_channels and self.groups > 1:
            parts.append(", dw")
        elif self.groups != 1:
            parts.append(f", g{self.groups}")
        if self.dilation != (1, 1):
            parts.append(", d" + "x".join(map(str, self.dilation)))
        return "".join(parts)

    def symmetric_padding(self):
        return all(a == b for a, b in self.padding)

    def macs(self, batch):
        oh, ow = self.output_size()
        return (batch * self.out_channels * oh * ow * self.in_channels // self.groups
                * math.prod(self.kernel))

    def output_size(self):
        return tuple(
            (n + p0 + p1 - d * (k - 1) - 1) // s + 1
            for n, (p0, p1), k, s, d in zip((self.height, self.width), self.padding,
                                            self.kernel, self.stride, self.dilation))


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def network_layers(name):
    """(row name, ConvLayer) of every 2-D convolution of a built-in network."""
    spec = architectures.get_architecture(name)
    table = shapes.summary(spec, architectures.default_input_shape(name))
    layers, seen_first = [], False
    for row in table.rows:
        if row.kind != "conv":
            continue
        cfg = row.layer.config
        c, h, w = row.input_shape
        if cfg.get("connections") is not None or len(row.input_shape) != 3:
            print(f"  {name}: {row.name} skipped (connection table or not 2-D)",
                  file=sys.stderr)
            seen_first = True
            continue
        kernel, dilation = _pair(cfg["kernel_size"]), _pair(cfg["dilation"])
        padding = cfg["padding"]
        if isinstance(padding, str):
            padding = (((0, 0),) * 2 if padding.lower() == "valid"
                       else shapes.same_padding(kernel, dilation))
        else:
            padding = tuple((p, p) for p in _pair(padding))
        layers.append((row.name, ConvLayer(
            c, h, w, cfg["out_channels"], kernel, _pair(cfg["stride"]), padding,
            dilation, cfg["groups"], bool(cfg["bias"]), not seen_first)))
        seen_first = True
    return layers


def load_peer(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _explicit_input(x, layer):
    """x zero-padded by the layer's (possibly uneven) padding, for peers that
    take one number per side pair."""
    return np.pad(x, ((0, 0), (0, 0)) + layer.padding)


class Case:
    """The arrays and the timed callables of one layer at one batch size."""

    def __init__(self, layer, batch, n_threads, torch, ort, rng):
        self.layer, self.batch = layer, batch
        x = rng.standard_normal((batch, layer.in_channels, layer.height, layer.width),
                                dtype=np.float32)
        w = rng.standard_normal((layer.out_channels, layer.in_channels // layer.groups)
                                + layer.kernel, dtype=np.float32)
        w *= 1 / math.sqrt(w[0].size)
        b = rng.standard_normal(layer.out_channels, dtype=np.float32) if layer.bias else None
        self.args = (layer.stride, layer.padding if not layer.symmetric_padding()
                     else tuple(p for p, _ in layer.padding), layer.dilation, layer.groups)
        if not layer.symmetric_padding():
            # pyconvnet takes 'same' for the uneven split of even kernels
            self.args = (layer.stride, "same", layer.dilation, layer.groups)
        self.x, self.w, self.b = x, w, b
        y = conv2d(x, w, b, *self.args, n_threads=n_threads)
        self.dy = rng.standard_normal(y.shape, dtype=np.float32)
        self.n_threads = n_threads
        geom = conv._validate(2, x, w, b, *self.args)[3]
        self.kernels = conv._algorithm(geom, "forward", n_threads)
        self.fwd = {"pyconvnet": self.ours_fwd}
        self.fb = {"pyconvnet": self.ours_fb}
        if torch is not None:
            self._torch(torch)
        if ort is not None:
            self._ort(ort)

    def ours_fwd(self):
        conv2d(self.x, self.w, self.b, *self.args, n_threads=self.n_threads)

    def ours_fb(self):
        conv2d(self.x, self.w, self.b, *self.args, n_threads=self.n_threads)
        conv2d_backward(self.dy, self.x, self.w, *self.args, n_threads=self.n_threads,
                        compute_input_grad=not self.layer.first)

    def _torch(self, torch):
        F = torch.nn.functional
        layer = self.layer
        x = self.x if layer.symmetric_padding() else _explicit_input(self.x, layer)
        pad = tuple(p for p, _ in layer.padding) if layer.symmetric_padding() else 0
        xt, wt = torch.from_numpy(x), torch.from_numpy(self.w)
        bt = None if self.b is None else torch.from_numpy(self.b)
        xg = xt.clone().requires_grad_(not layer.first)
        wg = wt.clone().requires_grad_()
        bg = None if bt is None else bt.clone().requires_grad_()
        dyt = torch.from_numpy(self.dy)
        s, d, g = layer.stride, layer.dilation, layer.groups

        def fwd():
            with torch.no_grad():
                F.conv2d(xt, wt, bt, s, pad, d, g)

        def fb():
            xg.grad = wg.grad = None
            if bg is not None:
                bg.grad = None
            F.conv2d(xg, wg, bg, s, pad, d, g).backward(dyt)

        self.fwd["torch"], self.fb["torch"] = fwd, fb

    def _ort(self, ort):
        import onnx
        from onnx import TensorProto, helper

        layer = self.layer
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, self.x.shape)]
        weights = [onnx.numpy_helper.from_array(self.w, "w")]
        names = ["x", "w"]
        if self.b is not None:
            weights.append(onnx.numpy_helper.from_array(self.b, "b"))
            names.append("b")
        (t, b_), (l_, r) = layer.padding
        node = helper.make_node("Conv", names, ["y"], kernel_shape=list(layer.kernel),
                                strides=list(layer.stride), dilations=list(layer.dilation),
                                pads=[t, l_, b_, r], group=layer.groups)
        out = [helper.make_tensor_value_info("y", TensorProto.FLOAT, self.dy.shape)]
        graph = helper.make_graph([node], "conv", inputs, out, initializer=weights)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.n_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        session = ort.InferenceSession(model.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        feed = {"x": self.x}
        self.fwd["onnxruntime"] = lambda: session.run(None, feed)


def interleaved_repeats(funcs, rounds, sample=3e-3):
    """Median time per call of each function, in turns as
    :func:`_common.interleaved` does, but each sample running its function
    back to back until it lasts about ``sample`` seconds: a library's
    threads then wake once per sample, and one library's threads still
    spinning after its turn (ONNX Runtime's do, by default) cost the next
    one at most its first call, as when a user runs one library alone."""
    repeats = []
    for func in funcs:
        func()
        func()
        # the calls per sample from the fastest of a few calls: one slow
        # call (a first touch, another library's threads still awake) must
        # not leave a small layer to one call per sample
        once = []
        for _ in range(5):
            start = time.perf_counter()
            func()
            once.append(time.perf_counter() - start)
        repeats.append(max(1, min(1000, round(sample / max(min(once), 1e-7)))))
    samples = [[] for _ in funcs]
    for _ in range(rounds):
        for func, k, times in zip(funcs, repeats, samples):
            start = time.perf_counter()
            for _ in range(k):
                func()
            times.append((time.perf_counter() - start) / k)
    return [statistics.median(times) for times in samples]


def geometric_mean(values):
    values = [v for v in values if v > 0]
    return math.exp(statistics.fmean(math.log(v) for v in values)) if values else float("nan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", default="1,8,32",
                        help="comma-separated batch sizes (default 1,8,32)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--nets", default=",".join(DEFAULT_NETS),
                        help="comma-separated architecture names, or 'all'")
    parser.add_argument("--rounds", type=int, default=None,
                        help="timed runs of each callable (default 5, quick 2)")
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--no-backward", action="store_true",
                        help="time the forward pass only")
    parser.add_argument("--slowest", type=int, default=15,
                        help="how many of the slowest layers to list")
    parser.add_argument("--json", default=None, help="write the measurements here")
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 5)
    nt = args.threads
    batches = [int(b) for b in args.batch.split(",")]
    nets = (architectures.list_architectures() if args.nets == "all"
            else [architectures.canonical_name(n) for n in args.nets.split(",")])

    torch = load_peer("torch")
    if torch is not None:
        torch.set_num_threads(nt)
    ort = load_peer("onnxruntime")
    if ort is not None and load_peer("onnx") is None:
        ort = None
    gemm_peak = sgemm_gflops(n=1024 if args.quick else 2048)
    peers = [p for p, m in (("torch", torch), ("onnxruntime", ort)) if m is not None]
    print(f"threads: {nt}; measured sgemm (numpy's BLAS): {gemm_peak:.1f} GFLOP/s; "
          f"peers: {', '.join(peers) or 'none installed'}"
          + (f" (torch {torch.__version__})" if torch else "")
          + (f" (onnxruntime {ort.__version__})" if ort else ""))

    occurrences = defaultdict(lambda: defaultdict(int))  # layer -> net -> count
    for net in nets:
        for _, layer in network_layers(net):
            occurrences[layer][net] += 1
    print(f"{len(occurrences)} distinct conv layers in {len(nets)} networks")

    rng = np.random.default_rng(0)
    records = []
    # Thread pools and lazy set-up (BLAS controllers, first allocations) on
    # an untimed layer first, or the first layer timed would carry them.
    warm = Case(next(iter(occurrences)), batches[0], nt, torch, None, rng)
    for func in list(warm.fwd.values()) + list(warm.fb.values()):
        end = time.perf_counter() + 0.2
        while time.perf_counter() < end:
            func()
    for batch in batches:
        times = {}
        for i, layer in enumerate(occurrences):
            case = Case(layer, batch, nt, torch, None, rng)
            tf = dict(zip(case.fwd, interleaved_repeats(list(case.fwd.values()), rounds)))
            tfb = {}
            if not args.no_backward:
                tfb = dict(zip(case.fb, interleaved_repeats(list(case.fb.values()), rounds)))
            times[layer] = (tf, tfb, case.kernels)
            print(f"  [{i + 1}/{len(occurrences)}] batch {batch} {layer.label()}: "
                  + ", ".join(f"{k} {v * 1e3:.3f}" for k, v in tf.items()),
                  file=sys.stderr, flush=True)
        if ort is not None:
            # ONNX Runtime's idle threads spin while they wait for work (its
            # default), which would slow whatever runs beside them: it is
            # timed in a pass of its own, one session at a time, each closed
            # before the next is made.
            for layer in occurrences:
                case = Case(layer, batch, nt, None, ort, rng)
                times[layer][0]["onnxruntime"] = interleaved_repeats(
                    [case.fwd["onnxruntime"]], rounds)[0]
                case.fwd.clear()   # the callables refer to the case
                del case
                gc.collect()
        for layer, (tf, tfb, kernels) in times.items():
            records.append({"batch": batch, "threads": nt, "layer": asdict(layer),
                            "kernels": kernels, "forward": tf,
                            "forward_backward": tfb, "macs": layer.macs(batch)})
        report(batch, nt, nets, occurrences, times, peers, gemm_peak, args)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"threads": nt, "sgemm_gflops": gemm_peak, "peers": peers,
             "records": records}, indent=1))


def report(batch, nt, nets, occurrences, times, peers, gemm_peak, args):
    # the best GFLOP/s of any library on any layer in this run, and sgemm's
    best = gemm_peak
    for layer, (tf, tfb, _) in times.items():
        for t in tf.values():
            best = max(best, 2 * layer.macs(batch) / t / 1e9)
    print()
    print(f"## batch {batch}, {nt} threads (ms; speed-up = peer time / ours; "
          f"best GFLOP/s measured: {best:.0f})")
    print()
    header = ["network", "layers", "fwd ours"]
    header += [f"fwd {p}" for p in peers]
    header += ["fwd vs torch", "fwd vs best"] if peers else []
    if not args.no_backward:
        header += ["f+b ours"] + (["f+b torch", "f+b vs torch"] if "torch" in peers else [])
    header += ["fwd GFLOP/s", "% of best"]
    rows = []
    for net in nets:
        layers = [(layer, counts[net]) for layer, counts in occurrences.items()
                  if net in counts]
        total = defaultdict(float)
        macs = 0
        for layer, count in layers:
            tf, tfb, _ = times[layer]
            for k, v in tf.items():
                total["f " + k] += count * v
            total["f best"] += count * min(
                [tf[p] for p in peers if p in tf] or [float("nan")])
            for k, v in tfb.items():
                total["fb " + k] += count * v
            macs += count * layer.macs(batch)
        ours = total["f pyconvnet"]
        row = [net, str(sum(c for _, c in layers)), f"{ours * 1e3:.1f}"]
        row += [f"{total['f ' + p] * 1e3:.1f}" for p in peers]
        if peers:
            row += [f"{total['f torch'] / ours:.2f}" if "torch" in peers else "-",
                    f"{total['f best'] / ours:.2f}"]
        if not args.no_backward:
            row.append(f"{total['fb pyconvnet'] * 1e3:.1f}")
            if "torch" in peers:
                row += [f"{total['fb torch'] * 1e3:.1f}",
                        f"{total['fb torch'] / total['fb pyconvnet']:.2f}"]
        gflops = 2 * macs / ours / 1e9
        row += [f"{gflops:.0f}", f"{100 * gflops / best:.0f}%"]
        rows.append(row)
    print(markdown_table(header, rows))
    if not peers:
        return
    print()
    print(f"Slowest layers against the faster peer (batch {batch}):")
    print()
    ranked = []
    for layer, (tf, tfb, kernels) in times.items():
        best_peer = min(tf[p] for p in peers if p in tf)
        fb_ratio = tfb["torch"] / tfb["pyconvnet"] if "torch" in tfb else float("nan")
        ranked.append((best_peer / tf["pyconvnet"], fb_ratio, layer, tf, tfb, kernels))
    ranked.sort(key=lambda r: min(r[0], r[1]) if not math.isnan(r[1]) else r[0])
    header = ["layer (C x H x W -> K, kernel)", "in", "kernel", "fwd ours"]
    header += [f"fwd {p}" for p in peers] + ["fwd vs best"]
    if not args.no_backward and "torch" in peers:
        header += ["f+b ours", "f+b torch", "f+b vs torch"]
    header += ["GFLOP/s", "% of best"]
    rows = []
    for ratio, fb_ratio, layer, tf, tfb, kernels in ranked[:args.slowest]:
        nets_in = ",".join(sorted(occurrences[layer]))
        gflops = 2 * layer.macs(batch) / tf["pyconvnet"] / 1e9
        row = [layer.label(), nets_in, kernels, f"{tf['pyconvnet'] * 1e3:.3f}"]
        row += [f"{tf[p] * 1e3:.3f}" for p in peers] + [f"{ratio:.2f}"]
        if not args.no_backward and "torch" in peers:
            row += [f"{tfb['pyconvnet'] * 1e3:.3f}", f"{tfb['torch'] * 1e3:.3f}",
                    f"{fb_ratio:.2f}"]
        row += [f"{gflops:.0f}", f"{100 * gflops / best:.0f}%"]
        rows.append(row)
    print(markdown_table(header, rows))
    ratios = [r[0] for r in ranked]
    print()
    print(f"layers: {len(ranked)}; forward vs best peer: min {min(ratios):.2f}, "
          f"geometric mean {geometric_mean(ratios):.2f}")


if __name__ == "__main__":
    main()
