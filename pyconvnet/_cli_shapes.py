"""The ``summary``, ``shape`` and ``list`` subcommands of ``python -m pyconvnet``.

:func:`add_subcommands` registers them on an argparse subparsers object; each
sets ``func`` to its handler, which takes the parsed namespace and returns an
exit code. Bad arguments end with argparse's usage message and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import math
import os

from . import architectures
from .shapes import (CONVENTIONS, PRESETS, Layer, conv_output_size, conv_params,
                     conv_transpose_output_size, load_network, measure_machine,
                     parse_shape, pool_output_size, summary)
from .shapes._files import is_network_path

__all__ = ["add_subcommands", "run_list", "run_machine", "run_shape", "run_summary"]

_OPTIMIZERS = ("sgd", "momentum", "adam")

_FORMATS = ("table", "markdown", "csv", "json")


def _size(text):
    """'32', '32x32' or '3,3' -> int or tuple of int."""
    try:
        value = parse_shape(text, "size")
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or one per dimension like 3x3, got "
            f"{text!r}") from None
    return value[0] if len(value) == 1 else value


def _padding(text):
    if text.strip().lower() in ("same", "valid"):
        return text.strip().lower()
    try:
        value = parse_shape(text, "padding") if text.strip() != "0" else (0,)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"padding must be a non-negative integer, a tuple like 1x2, 'same' "
            f"or 'valid', got {text!r}") from None
    return value[0] if len(value) == 1 else value


def _nonnegative_size(text):
    """Like _size but allowing zeros (padding, output padding)."""
    parts = text.lower().replace(",", "x").split("x")
    if not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(
            f"expected a non-negative integer or a tuple like 1x2, got {text!r}")
    values = tuple(int(p) for p in parts)
    return values[0] if len(values) == 1 else values


def _input_shape(text):
    try:
        return parse_shape(text, "--input")
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_subcommands(subparsers):
    """Add ``summary``, ``shape`` and ``list`` to an argparse subparsers object.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The object returned by ``parser.add_subparsers()``.

    Returns
    -------
    dict
        The new parsers by name (also ``machine``).
    """
    fmt = argparse.RawDescriptionHelpFormatter
    p_sum = subparsers.add_parser(
        "summary", formatter_class=fmt,
        help="layer-by-layer shapes, parameters, MACs and receptive fields",
        description="Shapes, parameters, MACs, receptive fields and memory of a "
                    "built-in architecture or of a network file (JSON, TOML or "
                    "ONNX).",
        epilog="examples:\n"
               "  python -m pyconvnet summary resnet50 --input 3x224x224\n"
               "  python -m pyconvnet summary vgg16 --format markdown --depth 1\n"
               "  python -m pyconvnet summary my_net.toml --format json\n"
               "  python -m pyconvnet summary my_net.json --input 1x28x28\n"
               "  python -m pyconvnet summary model.onnx")
    p_sum.add_argument("model", help="architecture name (see 'list') or the path "
                                     "of a network file: .json, .toml or .onnx")
    p_sum.add_argument("--input", "-i", type=_input_shape, default=None,
                       metavar="CxHxW",
                       help="input shape without the batch dimension "
                            "(default: the architecture's own, or the one the "
                            "file carries)")
    p_sum.add_argument("--depth", "-d", type=_positive_int, default=None,
                       help="fold the rows deeper than this many name "
                            "components into one row per block")
    p_sum.add_argument("--no-subtotals", action="store_true",
                       help="leave out the subtotal row after each stage of "
                            "the table")
    p_sum.add_argument("--format", "-f", choices=_FORMATS, default="table")
    p_sum.add_argument("--convention", choices=CONVENTIONS, default="torchvision",
                       help="which operations count as MACs (default: "
                            "torchvision, convolutions and linear layers)")
    p_sum.add_argument("--preset", choices=tuple(PRESETS), default=None,
                       help="count as another tool counts (fvcore, ptflops); "
                            "replaces --convention")
    p_sum.add_argument("--dtype", default="float32",
                       help="element type for the memory columns")
    p_sum.add_argument("--batch-size", type=_positive_int, default=1)
    p_sum.add_argument("--training", action="store_true",
                       help="add the backward pass: gradient MACs, memory kept "
                            "for it and the memory of a training step")
    p_sum.add_argument("--optimizer", choices=_OPTIMIZERS, default="sgd",
                       help="optimizer state for --training (sgd: none, "
                            "momentum: one copy of the parameters, adam: two)")
    p_sum.add_argument("--inplace", action="store_true",
                       help="take the activations as in place (ReLU(inplace=True))")
    p_sum.add_argument("--roofline", action="store_true",
                       help="measure this machine (about a second) and predict "
                            "each layer's time and whether it is compute- or "
                            "memory-bound")
    p_sum.set_defaults(func=run_summary, parser=p_sum)

    p_machine = subparsers.add_parser(
        "machine", help="this machine's peak GFLOP/s and memory bandwidth",
        description="Measure the peak rate of pyconvnet's convolution and the "
                    "memory bandwidth (about a second): the roofline that "
                    "'summary --roofline' predicts layer times from.")
    p_machine.add_argument("--threads", type=_positive_int, default=None,
                           help="threads for the convolution (default: all)")
    p_machine.add_argument("--dtype", choices=("float32", "float64"),
                           default="float32")
    p_machine.add_argument("--json", action="store_true", help="print JSON")
    p_machine.set_defaults(func=run_machine, parser=p_machine)

    p_shape = subparsers.add_parser(
        "shape", formatter_class=fmt,
        help="output size of a convolution or pooling layer, worked out",
        description="Output size of one layer with the arithmetic spelled out, "
                    "and a note when the stride does not fit.",
        epilog="examples:\n"
               "  python -m pyconvnet shape 32 --kernel 5 --stride 1 --padding 2\n"
               "  python -m pyconvnet shape 224x224 -k 7 -s 2 -p 3 "
               "--in-channels 3 --out-channels 64\n"
               "  python -m pyconvnet shape 112 -k 3 -s 2 --pool --ceil-mode\n"
               "  python -m pyconvnet shape 16 -k 4 -s 2 -p 1 --transposed")
    p_shape.add_argument("size", type=_size, help="input size, e.g. 32 or 32x32")
    p_shape.add_argument("--kernel", "-k", type=_size, required=True)
    p_shape.add_argument("--stride", "-s", type=_size, default=None,
                         help="default 1 (the kernel size with --pool)")
    p_shape.add_argument("--padding", "-p", type=_padding, default=0,
                         help="an integer, a tuple like 1x2, 'same' or 'valid'")
    p_shape.add_argument("--dilation", "-d", type=_size, default=1)
    p_shape.add_argument("--ceil-mode", action="store_true",
                         help="round up (keep a partial last window)")
    kind = p_shape.add_mutually_exclusive_group()
    kind.add_argument("--pool", action="store_true",
                      help="pooling layer (PyTorch's rules)")
    kind.add_argument("--transposed", action="store_true",
                      help="transposed convolution")
    p_shape.add_argument("--output-padding", type=_nonnegative_size, default=0,
                         help="with --transposed")
    p_shape.add_argument("--strict", action="store_true",
                         help="fail when the stride does not fit")
    p_shape.add_argument("--in-channels", type=_positive_int, default=None,
                         help="with --out-channels: also print parameters and MACs")
    p_shape.add_argument("--out-channels", type=_positive_int, default=None)
    p_shape.add_argument("--groups", type=_positive_int, default=1)
    p_shape.add_argument("--no-bias", action="store_true")
    p_shape.set_defaults(func=run_shape, parser=p_shape)

    p_list = subparsers.add_parser(
        "list", help="the built-in architectures",
        description="List the built-in architectures with their default input "
                    "shapes.")
    p_list.add_argument("--names", action="store_true",
                        help="print only the names, one per line")
    p_list.set_defaults(func=run_list, parser=p_list)
    return {"summary": p_sum, "shape": p_shape, "list": p_list, "machine": p_machine}


def _fail(args, exc):
    args.parser.error(str(exc))     # prints usage and exits with status 2


def _named(layer, path):
    """The layer of a file, named after the file when it has no name."""
    if layer.name is not None:
        return layer
    stem = os.path.splitext(os.path.basename(path))[0]
    return Layer(layer.kind, layer.config, layer.children, name=stem)


def _is_architecture(name):
    try:
        architectures.canonical_name(name)
    except ValueError:
        return False
    return True


def run_summary(args):
    """Handler of ``summary``: print the table in the chosen format."""
    try:
        model = args.model
        if is_network_path(model) and not _is_architecture(model):
            model, shape = load_network(model)
            if args.input is None and shape is None:
                raise ValueError(f"{args.model} carries no input shape: give one "
                                 f"with --input")
            model = _named(model, args.model)
            args.input = args.input or shape
        machine = measure_machine() if args.roofline else None
        result = summary(model, args.input, convention=args.convention,
                         dtype=args.dtype, batch_size=args.batch_size,
                         inplace=args.inplace, machine=machine, preset=args.preset,
                         depth=args.depth)
    except (ValueError, TypeError) as exc:
        _fail(args, exc)
    train = dict(training=args.training, optimizer=args.optimizer,
                 subtotals=not args.no_subtotals)
    text = {"table": lambda s: s.to_text(**train),
            "markdown": lambda s: s.to_markdown(**train).rstrip("\n"),
            "csv": lambda s: s.to_csv().rstrip("\n"),
            "json": lambda s: s.to_json()}[args.format](result)
    print(text)
    return 0


def _dims(value):
    return value if isinstance(value, tuple) else (value,)


def run_shape(args):
    """Handler of ``shape``: print the worked arithmetic of one layer."""
    try:
        if args.transposed:
            if args.padding in ("same", "valid"):
                raise ValueError("--padding same/valid is not available with "
                                 "--transposed")
            res = conv_transpose_output_size(
                args.size, args.kernel, 1 if args.stride is None else args.stride,
                args.padding, args.output_padding, args.dilation, explain=True)
        elif args.pool:
            if args.padding in ("same", "valid"):
                raise ValueError("--padding same/valid is not available with --pool")
            res = pool_output_size(args.size, args.kernel, args.stride, args.padding,
                                   args.dilation, args.ceil_mode, explain=True,
                                   strict=args.strict)
        else:
            stride = 1 if args.stride is None else args.stride
            if args.padding == "same" and any(s != 1 for s in _dims(stride)):
                raise ValueError("--padding same needs stride 1")
            res = conv_output_size(args.size, args.kernel, stride, args.padding,
                                   args.dilation, args.ceil_mode, explain=True,
                                   strict=args.strict)
        lines = list(res.steps)
        if isinstance(res.output, tuple):
            lines.append("output: " + "x".join(map(str, res.output)))
        if (args.in_channels is None) != (args.out_channels is None):
            raise ValueError("--in-channels and --out-channels go together")
        if args.in_channels is not None:
            if args.pool:
                raise ValueError("--in-channels/--out-channels describe a "
                                 "convolution, not a pooling layer")
            # a single size means a square input, as in the lecture notes
            spatial = _dims(res.output)
            inputs = _dims(args.size)
            if len(spatial) == 1:
                spatial, inputs = spatial * 2, inputs * 2
            kernel = args.kernel
            if not isinstance(kernel, tuple):
                kernel = (kernel,) * len(spatial)
            params = conv_params(args.in_channels, args.out_channels, kernel,
                                 args.groups, not args.no_bias)
            weights = conv_params(args.in_channels, args.out_channels, kernel,
                                  args.groups, False)
            # a transposed convolution multiplies every input element instead
            macs = weights * math.prod(inputs if args.transposed else spatial)
            lines.append("output shape: " + "x".join(
                map(str, (args.out_channels,) + spatial)))
            lines.append(f"parameters: {params:,}")
            lines.append(f"MACs: {macs:,} (FLOPs: {2 * macs:,})")
    except (ValueError, TypeError) as exc:
        _fail(args, exc)
    print("\n".join(lines))
    return 0


def run_machine(args):
    """Handler of ``machine``: measure and print the roofline's two limits."""
    m = measure_machine(n_threads=args.threads, dtype=args.dtype)
    if args.json:
        print(json.dumps({"peak_gflops": m.peak_flops / 1e9,
                          "bandwidth_gbs": m.bandwidth / 1e9,
                          "ridge_flop_per_byte": m.ridge,
                          "n_threads": m.n_threads, "dtype": m.dtype,
                          "method": m.description}, indent=2))
        return 0
    print(f"peak:      {m.peak_flops / 1e9:.1f} GFLOP/s ({m.dtype}, "
          f"{m.n_threads} threads, pyconvnet's conv2d)")
    print(f"bandwidth: {m.bandwidth / 1e9:.1f} GB/s (copy of 64 MiB)")
    print(f"ridge:     {m.ridge:.1f} FLOP/byte (layers below it are "
          f"memory-bound)")
    return 0


def run_list(args):
    """Handler of ``list``: the built-in architectures."""
    names = architectures.list_architectures()
    if args.names:
        print("\n".join(names))
        return 0
    infos = [architectures.architecture_info(n) for n in names]
    width = max(len(n) for n in names)
    for info in infos:
        shape = "x".join(map(str, info.input_shape))
        print(f"{info.name:<{width}}  {shape:<9}  {info.description}")
    return 0
