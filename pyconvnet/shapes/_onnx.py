"""ONNX models as layer specs, read without running them (:ref:`onnx-models`).

The graph's nodes are mapped onto the layers of :mod:`pyconvnet._specs`:
weights are read from the initializers only for their shapes (the output
channels, kernel and whether there is a bias), attributes give strides,
padding and dilation. A chain of nodes becomes a sequence; where a tensor
forks and its branches meet again at an ``Add`` (or ``Sum``) the block
becomes a :func:`residual`, at a channel ``Concat`` a :func:`concat`. Some
patterns become one layer: ``x * Sigmoid(x)`` is SiLU and ``x *
HardSigmoid(x)`` hard swish; ``MatMul`` followed by the ``Add`` of a
constant vector is a linear layer with a bias, as PyTorch exports
``nn.Linear`` on inputs of more than two dimensions; reshapes around a
``Transpose`` or an ``InstanceNormalization`` are a channel shuffle or a
group norm. Any other model is read as a :func:`graph`.

Parameters are counted as PyTorch counts them: a ``BatchNormalization``'s
scale and bias are parameters, its running mean and variance are not.

Needs the optional ``onnx`` package (``pip install pyconvnet[onnx]``).
"""
import math
from collections import defaultdict

from .._specs import (Layer, activation, adaptive_max_pool, add, avg_pool, batch_norm,
                      channel_shuffle, concat, conv, conv_transpose, dropout, flatten,
                      global_avg_pool, graph, group_norm, identity, instance_norm,
                      layer_norm, linear, lrn, max_pool, mul, pad, pixel_shuffle,
                      pixel_unshuffle, reshape, residual, sequential, slice_channels, split,
                      upsample)
from .._specs import node as graph_node

__all__ = ["onnx_to_layer", "parse_model"]

SUPPORTED = (
    "Add", "AveragePool", "BatchNormalization", "Clip", "Concat", "Constant", "Conv",
    "ConvTranspose", "DepthToSpace", "Dropout", "Elu", "Flatten", "Gelu", "Gemm",
    "GlobalAveragePool", "GlobalMaxPool", "GroupNormalization", "HardSigmoid",
    "HardSwish", "Identity", "InstanceNormalization", "LRN", "LayerNormalization",
    "LeakyRelu", "LogSoftmax", "MatMul", "MaxPool", "Mul", "Pad", "Relu", "Reshape",
    "Resize", "Sigmoid", "Slice", "Softmax", "SpaceToDepth", "Split", "Squeeze", "Sum",
    "Tanh", "Unsqueeze", "Upsample",
)
_ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Elu": "elu",
                "LeakyRelu": "leaky_relu", "Gelu": "gelu", "HardSwish": "hardswish",
                "HardSigmoid": "hardsigmoid", "Softmax": "softmax",
                "LogSoftmax": "log_softmax"}
_JOINS = ("Add", "Sum", "Mul", "Concat")
_META = ("Shape", "Size")       # outputs describe a tensor, they are not data


class OnnxError(ValueError):
    """An ONNX model that cannot be read as a layer spec."""


class _NeedsGraph(Exception):
    """The model is not a tree of sequences, residual blocks and
    concatenations: it is read as a :func:`graph` instead."""


def _onnx():
    try:
        import onnx
    except ImportError:
        raise OnnxError("reading ONNX models needs the onnx package: pip install "
                        "onnx (or pyconvnet[onnx])") from None
    return onnx


def parse_model(data):
    """An ``onnx.ModelProto`` from the bytes of a file; ValueError if they
    are not an ONNX model."""
    onnx = _onnx()
    try:
        model = onnx.load_from_string(data)
    except Exception as exc:        # noqa: BLE001 - protobuf's DecodeError and others
        raise OnnxError(f"not an ONNX model ({exc})") from None
    if not model.ir_version or not model.HasField("graph") or not model.graph.node:
        raise OnnxError("not an ONNX model (no graph)")
    return model


def _node_label(node, index):
    return f"{node.op_type} node {node.name or index!r}"


class _Graph:
    """The data-flow part of an ONNX graph: which node makes and which nodes
    read each tensor that depends on the input."""

    def __init__(self, model, where):
        onnx = _onnx()
        from onnx import numpy_helper
        self.where = where
        graph = model.graph
        self.consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.learned = set(self.consts)     # initializers: what PyTorch calls parameters
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          None)
        self.nodes = list(graph.node)
        self.index = {id(n): i for i, n in enumerate(self.nodes)}
        for node in self.nodes:
            if node.op_type == "Constant":
                for attr in node.attribute:
                    if attr.name == "value":
                        self.consts[node.output[0]] = numpy_helper.to_array(attr.t)
                    elif attr.name in ("value_float", "value_int"):
                        self.consts[node.output[0]] = onnx.helper.get_attribute_value(attr)
                    elif attr.name in ("value_floats", "value_ints"):
                        self.consts[node.output[0]] = list(
                            onnx.helper.get_attribute_value(attr))
        inputs = [i for i in graph.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise OnnxError(f"{where}: the graph has {len(inputs)} inputs ("
                            + ", ".join(i.name for i in inputs)
                            + "); a network for summary() has one")
        self.input = inputs[0].name
        self.input_shape = _static_shape(inputs[0])
        self.outputs = [o.name for o in graph.output]
        # the tensors that depend on the input, and their readers
        data, self.producer, self.readers = {self.input}, {}, defaultdict(list)
        for node in self.nodes:     # ONNX keeps nodes in topological order
            if node.op_type in _META or not any(x in data for x in node.input):
                continue
            for x in node.input:
                if x in data:
                    self.readers[x].append(node)
            for y in node.output:
                if y:
                    data.add(y)
                    self.producer[y] = node
        self.data = data
        self.shapes = _inferred_shapes(model)
        if self.input_shape is not None:
            self.shapes[self.input] = (1,) + self.input_shape
        self.made_by = {y: n for n in self.nodes for y in n.output if y}
        self.refine_shapes(model)

    def refine_shapes(self, model):
        """Shapes ONNX's inference could not tell because they depend on
        computed constants (a padding worked out from ``Shape``): fold what
        :meth:`value` can work out into initializers and infer again."""
        import numpy as np
        onnx = _onnx()
        from onnx import numpy_helper
        for _ in range(6):
            done = {t.name for t in model.graph.initializer}
            new = {}
            for nd in self.nodes:
                if nd.op_type in _META or not any(x in self.data for x in nd.input):
                    for y in nd.output:
                        if y and y not in done:
                            v = self.value(y)
                            if v is not None:
                                new[y] = np.asarray(v)
            if not new:
                return
            folded = onnx.ModelProto()
            folded.CopyFrom(model)
            keep = [n for n in folded.graph.node
                    if not all(y in new for y in n.output if y)]
            del folded.graph.node[:]
            folded.graph.node.extend(keep)
            folded.graph.initializer.extend(numpy_helper.from_array(v, y)
                                            for y, v in new.items())
            shapes = _inferred_shapes(folded)
            if self.input_shape is not None:
                shapes[self.input] = (1,) + self.input_shape
            if shapes == self.shapes:
                return
            self.shapes, model = shapes, folded

    def label(self, node):
        return _node_label(node, self.index[id(node)])

    def fail(self, node, why):
        raise OnnxError(f"{self.where}: {self.label(node)}: {why}")

    def attrs(self, node):
        from onnx import helper
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def const(self, node, i, what):
        if i >= len(node.input) or not node.input[i]:
            return None
        name = node.input[i]
        value = self.value(name)
        if value is None:
            self.fail(node, f"its {what} ({name!r}) is not a constant of the graph "
                            "(nor computed from constants and static shapes)")
        return value

    def is_learned(self, name):
        """Whether a tensor is an initializer, or one reshaped (PyTorch's
        exporter unsqueezes a group norm's weight)."""
        while name not in self.learned:
            made_by = self.made_by.get(name)
            if made_by is None or made_by.op_type not in (
                    "Unsqueeze", "Reshape", "Identity", "Cast", "Squeeze"):
                return False
            name = made_by.input[0]
        return True

    def value(self, name, depth=0):
        """The value of a tensor that does not depend on the input's data:
        a constant, or shape arithmetic on static shapes (what PyTorch's
        exporter writes for ``x.view(x.size(0), -1)`` or a padding), worked
        out with ONNX's reference implementation of those nodes."""
        if name in self.consts:
            return self.consts[name]
        made_by = self.made_by.get(name)
        if made_by is None or depth > 50:
            return None
        if made_by.op_type == "Shape" and made_by.input[0] in self.data:
            shape = self.shapes.get(made_by.input[0])
            if shape is None or any(v is None for v in shape[1:]):
                return None
            import numpy as np
            value = np.array((1,) + tuple(shape[1:]), dtype=np.int64)
            attrs = self.attrs(made_by)
            value = value[attrs.get("start", 0):attrs.get("end", len(value))]
        elif any(x in self.data for x in made_by.input):
            return None
        else:
            inputs = [self.value(x, depth + 1) if x else None for x in made_by.input]
            if any(v is None for x, v in zip(made_by.input, inputs) if x):
                return None
            try:
                from onnx import helper
                from onnx.reference import ReferenceEvaluator
                graph = helper.make_graph(
                    [made_by], "constant",
                    [helper.make_tensor_value_info(x, 1, None) for x in made_by.input if x],
                    [helper.make_tensor_value_info(y, 1, None) for y in made_by.output if y])
                model = helper.make_model(graph, opset_imports=[
                    helper.make_opsetid("", self.opset or 17)])
                feeds = {x: v for x, v in zip(made_by.input, inputs) if x}
                outs = ReferenceEvaluator(model).run(None, feeds)
            except Exception:       # noqa: BLE001 - then it is not a constant here
                return None
            for y, v in zip([y for y in made_by.output if y], outs):
                self.consts[y] = v
            return self.consts.get(name)
        self.consts[name] = value
        return value

    def data_inputs(self, node):
        return [x for x in node.input if x in self.data]


def _static_shape(value_info):
    """The input's shape without the batch dimension, or None if not static."""
    dims = value_info.type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if len(shape) < 2 or any(v is None or v < 1 for v in shape[1:]):
        return None
    return tuple(shape[1:])


def _inferred_shapes(model):
    """Shapes ONNX's own inference gives the intermediate tensors (dims it
    cannot tell are None); empty when inference fails."""
    onnx = _onnx()
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:       # noqa: BLE001 - the reading does not depend on it
        return {}
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else None
                                    for d in t.shape.dim)
    return shapes


# --------------------------------------------------------------------------
# one node -> one layer
# --------------------------------------------------------------------------

def _same(values):
    values = tuple(int(v) for v in values)
    return values[0] if len(set(values)) == 1 else values


def _padding(g, node, attrs, nd, kernel, stride, dilation):
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto == "VALID":
        return 0
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        if any(s != 1 for s in stride):
            g.fail(node, f"auto_pad={auto} with a stride other than 1 pads by an "
                         "amount that depends on the input size; export with "
                         "explicit pads")
        if auto == "SAME_LOWER" and any((d * (k - 1)) % 2 for k, d in zip(kernel, dilation)):
            g.fail(node, "auto_pad=SAME_LOWER with an even kernel pads more before "
                         "than after, which the layers here do not describe")
        return "same"
    pads = list(attrs.get("pads", [0] * (2 * nd)))
    begin, end = pads[:nd], pads[nd:]
    if begin != end:
        total = [b + e for b, e in zip(begin, end)]
        same = [d * (k - 1) for k, d in zip(kernel, dilation)]
        if all(s == 1 for s in stride) and total == same and \
                all(b == t // 2 for b, t in zip(begin, total)):
            return "same"
        g.fail(node, f"pads {pads} differ before and after; only symmetric padding "
                     "(or 'same' at stride 1) is described")
    return _same(begin) if begin else 0


def _window(g, node, attrs, nd):
    kernel = [int(k) for k in attrs["kernel_shape"]]
    stride = [int(s) for s in attrs.get("strides", [1] * nd)]
    dilation = [int(d) for d in attrs.get("dilations", [1] * nd)]
    padding = _padding(g, node, attrs, nd, kernel, stride, dilation)
    return _same(kernel), _same(stride), padding, _same(dilation)


def _conv(g, node, name):
    attrs = g.attrs(node)
    weight = g.const(node, 1, "weight")
    nd = weight.ndim - 2
    attrs.setdefault("kernel_shape", weight.shape[2:])
    k, s, p, d = _window(g, node, attrs, nd)
    groups = int(attrs.get("group", 1))
    bias = g.const(node, 2, "bias") is not None
    if node.op_type == "Conv":
        if p == "same" and s != 1:
            g.fail(node, "'same' padding with a stride")
        return conv(int(weight.shape[0]), k, s, p, d, groups, bias, name=name)
    if p == "same":
        g.fail(node, "'same' padding of a transposed convolution")
    if "output_shape" in attrs:
        g.fail(node, "the output_shape attribute (give output_padding instead)")
    out_pad = _same(attrs.get("output_padding", [0] * nd))
    return conv_transpose(int(weight.shape[1]) * groups, k, s, p, out_pad, d, groups,
                          bias, name=name)


def _pool(g, node, name):
    attrs = g.attrs(node)
    nd = len(attrs["kernel_shape"])
    k, s, p, d = _window(g, node, attrs, nd)
    ceil = bool(attrs.get("ceil_mode", 0))
    if p == "same":
        g.fail(node, "'same' padding of a pooling layer")
    if node.op_type == "MaxPool":
        if len(node.output) > 1 and node.output[1]:
            g.fail(node, "the indices output of MaxPool")
        return max_pool(k, s, p, d, ceil, name=name)
    if d != 1:
        g.fail(node, "a dilated average pooling")
    return avg_pool(k, s, p, ceil, name=name)


def _gemm(g, node, name):
    attrs = g.attrs(node)
    if attrs.get("transA", 0):
        g.fail(node, "transA=1 (the data input transposed)")
    if g.data_inputs(node) != [node.input[0]]:
        g.fail(node, "its weight is not a constant of the graph")
    weight = g.const(node, 1, "weight")
    out = weight.shape[0] if attrs.get("transB", 0) else weight.shape[1]
    return linear(int(out), g.const(node, 2, "bias") is not None, name=name)


def _clip(g, node, name):
    attrs = g.attrs(node)
    low = attrs.get("min", g.const(node, 1, "min"))
    high = attrs.get("max", g.const(node, 2, "max"))
    low = None if low is None else float(low)
    high = None if high is None else float(high)
    if low == 0 and high == 6:
        return activation("relu6", name=name)
    if low == 0 and high is None:
        return activation("relu", name=name)
    g.fail(node, f"Clip to [{low}, {high}] (only ReLU6's [0, 6] has a layer)")


def _flattens(g, node):
    """Whether a Reshape, Squeeze or Flatten keeps the batch axis and puts
    everything else in one."""
    if node.op_type == "Flatten":
        axis = g.attrs(node).get("axis", 1)
        return axis == 1
    out = g.shapes.get(node.output[0])
    if out is not None:
        return len(out) == 2
    if node.op_type == "Reshape":
        shape = g.const(node, 1, "shape")
        return shape is not None and len(shape) == 2 and int(shape[1]) == -1
    return False


def _new_shape(g, node):
    """The sample shape (without the batch) a Reshape, Squeeze or Unsqueeze
    gives, which must keep the batch axis alone."""
    if node.op_type in ("Squeeze", "Unsqueeze"):
        axes = g.attrs(node).get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = g.const(node, 1, "axes")
        rank = _rank(g, node.output[0] if node.op_type == "Unsqueeze" else node.input[0])
        if axes is None or rank is None or any(int(a) % rank == 0 for a in axes):
            g.fail(node, f"a {node.op_type} of the batch axis (or of axes not given)")
    else:
        target = g.value(node.input[1])
        source = g.shapes.get(node.input[0])
        batch_inferred = target is not None and int(target[0]) == -1 and source \
            and all(v is not None for v in source[1:]) \
            and all(int(v) > 0 for v in target[1:]) \
            and math.prod(int(v) for v in target[1:]) == math.prod(source[1:])
        if target is not None and int(target[0]) not in (0, 1) and not batch_inferred:
            g.fail(node, f"a reshape to {[int(v) for v in target]}, which does not keep "
                         "the batch axis alone")
    out = g.shapes.get(node.output[0])
    if out is None or any(v is None for v in out[1:]) or out[0] not in (1, None):
        g.fail(node, "a reshape to a shape that is not static")
    return tuple(int(v) for v in out[1:])


def _sample_axis(g, node, axis, rank=None):
    """An ONNX axis (batch first) as an axis of the sample shape."""
    axis = int(axis)
    if axis == 0 or (rank is not None and axis == -rank):
        g.fail(node, "an operation along the batch axis")
    return axis - 1 if axis > 0 else axis


def _rank(g, tensor):
    shape = g.shapes.get(tensor)
    return None if shape is None else len(shape)


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate",
              "wrap": "circular"}


def _pad(g, node, name):
    attrs = g.attrs(node)
    mode = attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode not in _PAD_MODES:
        g.fail(node, f"padding mode {mode!r}")
    pads = attrs.get("pads")
    if pads is None:
        pads = g.const(node, 1, "pads")
    pads = [int(v) for v in pads]
    rank = len(pads) // 2
    axes = g.const(node, 3, "axes") if len(node.input) > 3 and node.input[3] else None
    full = [0] * (2 * (_rank(g, node.input[0]) or rank))
    if axes is not None:
        r = len(full) // 2
        for i, a in enumerate(int(a) % r for a in axes):
            full[a], full[r + a] = pads[i], pads[len(axes) + i]
        pads, rank = full, r
    begin, end = pads[:rank], pads[rank:]
    if any(v < 0 for v in pads):
        g.fail(node, f"negative pads {pads} (a crop)")
    if begin[:2] != [0, 0] or end[:2] != [0, 0]:
        g.fail(node, f"pads {pads} pad the batch or channel axis")
    value = attrs.get("value")
    if value is None and len(node.input) > 2 and node.input[2]:
        value = g.const(node, 2, "constant value")
    value = 0.0 if value is None else float(value)
    return pad(tuple(zip(begin[2:], end[2:])), _PAD_MODES[mode], value, name=name)


def _resize(g, node, name):
    attrs = g.attrs(node)
    mode = attrs.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if node.op_type == "Upsample":
        scales, sizes = attrs.get("scales") or g.const(node, 1, "scales"), None
    else:
        scales = g.const(node, 2, "scales") if len(node.input) > 2 and node.input[2] \
            else None
        sizes = g.const(node, 3, "sizes") if len(node.input) > 3 and node.input[3] \
            else None
        if scales is not None and len(scales) == 0:
            scales = None
    if scales is None and sizes is None:
        g.fail(node, "neither scales nor sizes")
    values = list(scales if scales is not None else sizes)
    if sizes is not None and len(values) != (_rank(g, node.input[0]) or len(values)):
        g.fail(node, "sizes of only some axes")
    if scales is not None and [float(v) for v in values[:2]] != [1.0, 1.0]:
        g.fail(node, f"scales {[float(v) for v in values]} resize the batch or channels")
    nd = len(values) - 2
    if mode == "linear":
        mode = {1: "linear", 2: "bilinear", 3: "trilinear"}.get(nd)
    if mode not in ("nearest", "linear", "bilinear", "trilinear"):
        g.fail(node, f"mode {attrs.get('mode')!r} (nearest and linear are described)")
    align = attrs.get("coordinate_transformation_mode", b"")
    align = (align.decode() if isinstance(align, bytes) else align) == "align_corners"
    kw = dict(mode=mode, align_corners=align if mode != "nearest" else None, name=name)
    if sizes is not None:
        return upsample(size=_same(values[2:]), **kw)
    factors = [float(v) for v in values[2:]]
    factors = [int(f) if f.is_integer() else f for f in factors]
    return upsample(factors[0] if len(set(factors)) == 1 else tuple(factors), **kw)


def _slice(g, node, name):
    attrs = g.attrs(node)
    if "starts" in attrs:       # opset < 10
        starts, ends, axes, steps = attrs["starts"], attrs["ends"], attrs.get("axes"), None
    else:
        starts, ends = g.const(node, 1, "starts"), g.const(node, 2, "ends")
        axes = g.const(node, 3, "axes") if len(node.input) > 3 and node.input[3] else None
        steps = g.const(node, 4, "steps") if len(node.input) > 4 and node.input[4] \
            else None
    starts = [int(v) for v in starts]
    axes = list(range(len(starts))) if axes is None else [int(a) for a in axes]
    steps = [1] * len(starts) if steps is None else [int(v) for v in steps]
    rank = _rank(g, node.input[0])
    layers = []
    for start, end, axis, step in zip(starts, [int(v) for v in ends], axes, steps):
        if step < 1:
            g.fail(node, f"a slice with step {step}")
        stop = None if end >= 2 ** 31 - 1 else end
        if start == 0 and stop is None and step == 1:
            continue
        layers.append(slice_channels(start, stop, step,
                                     axis=_sample_axis(g, node, axis, rank)))
    if not layers:
        return identity(name=name)
    if len(layers) == 1:
        return Layer(layers[0].kind, layers[0].config, name=name)
    return sequential(*layers, name=name)


def _layer_norm(g, node, name):
    shape = g.shapes.get(node.input[0])
    axis = int(g.attrs(node).get("axis", -1))
    if shape is None or any(v is None for v in shape[1:]):
        g.fail(node, "a layer normalisation of an input whose shape is not static")
    if axis == 0 or axis == -len(shape):
        g.fail(node, "a layer normalisation over the batch axis")
    normalized = tuple(shape[axis:])
    bias = len(node.input) > 2 and bool(node.input[2])
    return layer_norm(normalized[0] if len(normalized) == 1 else normalized, True, bias,
                      name=name)


def _sole_reader(g, tensor, op):
    readers = g.readers.get(tensor, [])
    if len(readers) == 1 and readers[0].op_type == op and tensor not in g.outputs:
        return readers[0]
    return None


def _reshaped_back(g, back, x):
    """Whether the Reshape ``back`` restores the shape of ``x``."""
    shape = g.shapes.get(x)
    if shape is None or any(v is None for v in shape[1:]):
        return False
    out = g.shapes.get(back.output[0])
    if out is not None and tuple(out[1:]) == tuple(shape[1:]):
        return True
    target = g.value(back.input[1])
    return target is not None and [int(v) for v in target[1:]] == list(shape[1:])


def _reshape_pattern(g, node):
    """(layer, the pattern's nodes) for what PyTorch writes with reshapes:
    a channel shuffle (Reshape, Transpose, Reshape back to the input's
    shape) and a group normalisation (Reshape to groups,
    InstanceNormalization, Reshape back, then the Mul and Add of its scale
    and shift); None for anything else."""
    x = node.input[0]
    inner = _sole_reader(g, node.output[0], "Transpose") or \
        _sole_reader(g, node.output[0], "InstanceNormalization")
    if inner is None:
        return None
    back = _sole_reader(g, inner.output[0], "Reshape")
    if back is None or not _reshaped_back(g, back, x):
        return None
    target = g.value(node.input[1])
    if inner.op_type == "Transpose":
        perm = list(g.attrs(inner).get("perm", []))
        if target is None or len(target) < 3 or perm[:3] != [0, 2, 1] \
                or perm[3:] != list(range(3, len(perm))):
            return None
        return channel_shuffle(int(target[1])), [node, inner, back]
    if target is None or len(target) < 3:
        return None
    nodes, affine = [node, inner, back], False
    scale = _sole_reader(g, back.output[0], "Mul")
    if scale is not None and len(g.data_inputs(scale)) == 1:
        shift = _sole_reader(g, scale.output[0], "Add")
        learned = [t for t in list(scale.input) + list(shift.input if shift else [])
                   if g.is_learned(t)]
        if shift is not None and len(g.data_inputs(shift)) == 1 and len(learned) == 2:
            nodes, affine = nodes + [scale, shift], True
    return group_norm(int(target[1]), affine), nodes


def _leaf(g, node, name):
    """The layer of a node with one data input."""
    op = node.op_type
    if op in ("Conv", "ConvTranspose"):
        return _conv(g, node, name)
    if op in ("MaxPool", "AveragePool"):
        return _pool(g, node, name)
    if op == "GlobalAveragePool":
        return global_avg_pool(name=name)
    if op == "GlobalMaxPool":
        return adaptive_max_pool(1, name=name)
    if op == "Gemm":
        return _gemm(g, node, name)
    if op == "BatchNormalization":
        if len([o for o in node.output if o]) > 1:
            g.fail(node, "a BatchNormalization in training mode (export the model "
                         "in eval mode)")
        return batch_norm(name=name)
    if op == "LRN":
        return lrn(int(g.attrs(node)["size"]), name=name)
    if op in _ACTIVATIONS:
        return activation(_ACTIVATIONS[op], name=name)
    if op == "Clip":
        return _clip(g, node, name)
    if op == "Dropout":
        ratio = g.attrs(node).get("ratio")
        if ratio is None and len(node.input) > 1 and node.input[1]:
            ratio = g.const(node, 1, "ratio")
        return dropout(0.5 if ratio is None else float(ratio), name=name)
    if op == "Identity":
        return identity(name=name)
    if op == "Pad":
        return _pad(g, node, name)
    if op in ("Resize", "Upsample"):
        return _resize(g, node, name)
    if op == "Slice":
        return _slice(g, node, name)
    if op == "InstanceNormalization":
        return instance_norm(g.is_learned(node.input[1]), name=name)
    if op == "LayerNormalization":
        return _layer_norm(g, node, name)
    if op == "GroupNormalization":
        return group_norm(int(g.attrs(node)["num_groups"]), name=name)
    if op in ("DepthToSpace", "SpaceToDepth"):
        factor = int(g.attrs(node)["blocksize"])
        return (pixel_shuffle if op == "DepthToSpace" else pixel_unshuffle)(factor,
                                                                            name=name)
    if op in ("Flatten", "Reshape", "Squeeze", "Unsqueeze"):
        if _flattens(g, node):
            return flatten(name=name)
        return reshape(_new_shape(g, node), name=name)
    if op in SUPPORTED:
        g.fail(node, f"{op} here (with {len(g.data_inputs(node))} input(s) computed "
                     f"from the network's input) has no layer")
    g.fail(node, f"the operator {op} is not supported; supported: "
                 + ", ".join(SUPPORTED))


# --------------------------------------------------------------------------
# the graph -> a tree of sequences, residual blocks and concatenations
# --------------------------------------------------------------------------

class _Builder:
    def __init__(self, g):
        self.g = g
        self.counts = defaultdict(int)
        self.scopes = {}    # id(layer) -> (module scope, the node's own part)
        self.made = []      # every layer noted, kept alive so that ids stay unique

    @staticmethod
    def _parts(node):
        """The scope of a node's name: ``/layer1/layer1.0/conv1/Conv`` (as
        PyTorch's exporter writes them) is ``layer1``, ``0``, ``conv1``,
        ``Conv``."""
        parts = []
        for p in node.name.split("/"):
            if not p:
                continue
            if parts and p.startswith(parts[-1] + "."):
                p = p[len(parts[-1]) + 1:]
            parts.append(p.replace(".", "_"))
        return parts

    def leaf(self, layer, node):
        """Note where ``layer`` (made from ``node``) sits in the exporter's
        module scopes, for :meth:`named`."""
        parts = self._parts(node)
        if not parts:
            parts = [f"{node.op_type}_{self.g.index[id(node)]}"]
        self.scopes[id(layer)] = (parts[:-1], parts[-1])
        self.made.append(layer)
        return layer

    def composite(self, layer, join):
        parts = self._parts(join)
        self.scopes[id(layer)] = (parts[:-1], None)
        self.made.append(layer)
        return layer

    def readers(self, tensor):
        return self.g.readers.get(tensor, [])

    def walk(self, tensor, layers, first=None):
        """Follow the data from ``tensor`` (through ``first`` when given),
        appending layers, until the graph's output or a node that joins
        branches; returns (tensor, join node)."""
        g = self.g
        while True:
            readers = [first] if first is not None else self.readers(tensor)
            first = None
            if not readers:
                if tensor not in g.outputs:
                    raise OnnxError(f"{g.where}: the tensor {tensor!r} is read by "
                                    "nothing and is not an output of the graph")
                return tensor, None
            if tensor in g.outputs:
                raise OnnxError(f"{g.where}: the tensor {tensor!r} is an output of "
                                "the graph and read by other nodes: a network for "
                                "summary() has one output")
            if len(readers) == 1 and len(g.data_inputs(readers[0])) > 1 \
                    and readers[0].op_type in _JOINS:
                return tensor, readers[0]
            if len(readers) > 1:
                tensor = self.fork(tensor, readers, layers)
                continue
            node = readers[0]
            if len(g.data_inputs(node)) > 1:
                g.fail(node, f"{node.op_type} of {len(g.data_inputs(node))} tensors "
                             "computed from the input is not supported")
            outs = [o for o in node.output if o]
            if len(outs) != 1 and node.op_type not in ("Dropout", "BatchNormalization"):
                raise _NeedsGraph(f"{g.label(node)} has {len(outs)} outputs")
            pattern = _reshape_pattern(g, node) if node.op_type == "Reshape" \
                and not _flattens(g, node) else None
            if pattern is not None:
                layer, nodes = pattern
                layer = self.leaf(layer, nodes[-1] if layer.kind == "group_norm"
                                  else nodes[0])
                node = nodes[-1]
                outs = [node.output[0]]
            elif node.op_type == "MatMul":
                layer, node = self.matmul(node)
                outs = [o for o in node.output if o]
            elif node.op_type in ("Add", "Mul", "Sum"):
                g.fail(node, f"{node.op_type} of a tensor computed from the input "
                             "and a constant has no layer")
            else:
                layer = self.leaf(_leaf(g, node, None), node)
            if len(outs) != 1 and node.op_type != "Dropout":
                raise _NeedsGraph(f"{g.label(node)} has {len(outs)} outputs")
            layers.append(layer)
            tensor = outs[0]

    def matmul(self, node):
        g = self.g
        weight = g.const(node, 1, "weight")
        if weight.ndim != 2:
            g.fail(node, f"a MatMul by a {weight.ndim}-D constant")
        out = node.output[0]
        readers = self.readers(out)
        if len(readers) == 1 and readers[0].op_type == "Add" \
                and len(g.data_inputs(readers[0])) == 1:
            add = readers[0]
            other = [x for x in add.input if x != out]
            bias = g.consts.get(other[0]) if len(other) == 1 else None
            if bias is not None and getattr(bias, "shape", None) == (weight.shape[1],):
                return self.leaf(linear(int(weight.shape[1]), True), node), add
        return self.leaf(linear(int(weight.shape[1]), False), node), node

    def branch(self, tensor, reader):
        """The layers from ``tensor`` through ``reader`` up to the next join:
        (layers, the tensor that reaches the join, the join node)."""
        if reader.op_type in _JOINS and len(self.g.data_inputs(reader)) > 1:
            return [], tensor, reader
        layers = []
        end, join = self.walk(tensor, layers, reader)
        return layers, end, join

    def fork(self, tensor, readers, layers):
        """Branches from ``tensor`` that meet again at one node: a residual
        block or a concatenation, appended to ``layers``; returns the tensor
        after the join."""
        g = self.g
        seen, branches = set(), []
        for reader in readers:
            if id(reader) in seen:      # x + x, x * x: both inputs are the fork
                continue
            seen.add(id(reader))
            for _ in range(sum(1 for x in reader.input if x == tensor)):
                branches.append(self.branch(tensor, reader))
        joins = {id(j) for _, _, j in branches}
        join = branches[0][2]
        if any(j is None for _, _, j in branches) or len(joins) != 1:
            raise _NeedsGraph(f"the branches from the tensor {tensor!r} do not all "
                              "meet at one node")
        ends = [end for _, end, _ in branches]
        inputs = g.data_inputs(join)
        if sorted(ends) != sorted(inputs):
            raise _NeedsGraph(f"the inputs of {g.label(join)} are not the ends of the "
                              f"branches from {tensor!r} alone")
        # in the order of the join's inputs
        order = []
        for x in inputs:
            i = next(i for i, (_, end, _) in enumerate(branches)
                     if end == x and i not in order)
            order.append(i)
        parts = [branches[i][0] for i in order]
        out = join.output[0]
        if join.op_type in ("Add", "Sum"):
            if len(parts) != 2:
                raise _NeedsGraph(f"{g.label(join)} adds {len(parts)} branches")
            body, shortcut = sorted(parts, key=len, reverse=True)
            layers.append(self.composite(residual(body if len(body) != 1 else body[0],
                                                  shortcut or None), join))
        elif join.op_type == "Concat":
            rank = _rank(g, out)
            axis = _sample_axis(g, join, g.attrs(join)["axis"], rank)
            if rank is not None and axis == 1 - rank:
                axis = 0
            layers.append(self.composite(
                concat(*[p if len(p) != 1 else p[0] for p in parts], axis=axis), join))
        else:   # Mul: x * sigmoid(x) and x * hardsigmoid(x)
            gate = [p for p in parts if p]
            kinds = [x.kind for x in gate[0]] if len(gate) == 1 else []
            if len(parts) == 2 and kinds in (["sigmoid"], ["hardsigmoid"]):
                layers.append(self.leaf(activation(
                    "silu" if kinds == ["sigmoid"] else "hardswish"), join))
            else:
                raise _NeedsGraph(f"{g.label(join)} multiplies branches")
        return out


    # names ----------------------------------------------------------------
    def _scopes_under(self, layer, out):
        if id(layer) in self.scopes:
            out.append(self.scopes[id(layer)][0])
        for child in layer.children:
            if child is not None:
                self._scopes_under(child, out)
        return out

    @staticmethod
    def _common(scopes):
        common = list(scopes[0]) if scopes else []
        for s in scopes[1:]:
            n = 0
            while n < min(len(common), len(s)) and common[n] == s[n]:
                n += 1
            del common[n:]
        return common

    def named(self, layer, prefix, unique):
        """``layer`` with the row names the exporter's scopes suggest: a
        node alone in its module is named after the module (``features.0``),
        others after the module and the node (``features.Relu_1``); a block
        after the scope its nodes share."""
        if layer.kind in ("sequential",) and id(layer) not in self.scopes:
            children = tuple(self.named(c, prefix, unique) for c in layer.children)
            return Layer(layer.kind, layer.config, children, name=layer.name)
        scope, own = self.scopes.get(id(layer), (None, None))
        if scope is None and not layer.children:
            return layer
        if own is not None:     # a layer made from nodes (some of several layers)
            parts = list(scope) if unique[tuple(scope)] == 1 and scope else scope + [own]
            if len(parts) <= len(prefix):
                parts = scope + [own]
            if parts[:len(prefix)] == prefix and len(parts) > len(prefix):
                parts = parts[len(prefix):]
            return Layer(layer.kind, layer.config, layer.children, name=".".join(parts))
        inner = self._common(self._scopes_under(layer, []))
        if len(inner) > len(prefix) and inner[:len(prefix)] == prefix:
            name, sub = ".".join(inner[len(prefix):]), inner
        else:
            self.counts[layer.kind] += 1
            name, sub = f"{layer.kind}{self.counts[layer.kind]}", prefix
        children = []
        for i, child in enumerate(layer.children):
            if child is None:
                children.append(None)
                continue
            own = self._common(self._scopes_under(child, []))
            if layer.kind == "residual" and i == 1 and child.kind == "sequential" \
                    and len(own) > len(sub) and own[:len(sub)] == sub:
                # a shortcut of its own module (ResNet's downsample)
                child = self.named(child, own, unique)
                child = Layer(child.kind, child.config, child.children,
                              name=".".join(own[len(sub):]))
            else:
                child = self.named(child, sub, unique)
            children.append(child)
        return Layer(layer.kind, layer.config, tuple(children), name=name)

    def unique_scopes(self, layer):
        """How many leaves of the tree each module scope holds, the leaves of
        the modules inside it included."""
        counts = defaultdict(int)
        stack = [layer]
        while stack:
            x = stack.pop()
            scope, own = self.scopes.get(id(x), (None, None))
            if own is not None:
                for n in range(len(scope) + 1):
                    counts[tuple(scope[:n])] += 1
            stack += [c for c in x.children if c is not None]
        return counts


def onnx_to_layer(model, where="the ONNX model"):
    """(Layer, input shape or None) of an ONNX model: a ModelProto or the
    bytes of a file."""
    if isinstance(model, (bytes, bytearray)):
        try:
            model = parse_model(bytes(model))
        except OnnxError as exc:
            raise OnnxError(f"{where} is {exc}") from None
    g = _Graph(model, where)
    if len(g.outputs) != 1:
        raise OnnxError(f"{where}: the graph has {len(g.outputs)} outputs; a network "
                        "for summary() has one")
    try:
        return _tree(g)
    except _NeedsGraph:
        return _GraphForm(g).build(), g.input_shape


def _tree(g):
    """The model as sequences, residual blocks and concatenations."""
    where = g.where
    builder = _Builder(g)
    layers = []
    tensor, join = builder.walk(g.input, layers)
    if join is not None:
        raise _NeedsGraph(f"the inputs of {g.label(join)} do not all come from one fork")
    if tensor != g.outputs[0]:
        raise OnnxError(f"{where}: the walk from the input ended at {tensor!r}, not "
                        f"at the graph's output {g.outputs[0]!r}")
    root = Layer("sequential", {}, tuple(layers))
    return builder.named(root, [], builder.unique_scopes(root)), g.input_shape


class _GraphForm:
    """The model as a :func:`graph`: a node per ONNX node that depends on the
    input (the fused patterns of :class:`_Builder` aside)."""

    def __init__(self, g):
        self.g = g
        self.refs = {g.input: "input"}
        self.used = {"input"}

    def name(self, onnx_node, unique):
        parts = _Builder._parts(onnx_node)
        if not parts:
            parts = [f"{onnx_node.op_type}_{self.g.index[id(onnx_node)]}"]
        scope = tuple(parts[:-1])
        if unique[scope] != 1 or not scope:
            scope = scope + (parts[-1],)
        base = "/".join(scope).replace(":", "_")
        name, k = base, 1
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name

    def needed(self):
        """The data nodes the output depends on."""
        g = self.g
        wanted, keep = {g.outputs[0]}, set()
        for nd in reversed(g.nodes):
            if any(y in wanted for y in nd.output) and any(x in g.data for x in nd.input) \
                    and nd.op_type not in _META:
                keep.add(id(nd))
                wanted.update(x for x in nd.input if x in g.data)
        return keep

    def build(self):
        g = self.g
        keep = self.needed()
        order = [nd for nd in g.nodes if id(nd) in keep]
        unique = defaultdict(int)
        for nd in order:
            parts = _Builder._parts(nd)
            unique[tuple(parts[:-1])] += 1
        skip, entries = set(), []
        for nd in order:
            if id(nd) in skip:
                continue
            op, ins = nd.op_type, g.data_inputs(nd)
            out = nd.output[0]
            readers = [r for r in g.readers.get(out, []) if id(r) in keep]
            if op in ("Sigmoid", "HardSigmoid") and len(readers) == 1 \
                    and readers[0].op_type == "Mul" and sorted(readers[0].input) == sorted(
                        [nd.input[0], out]):
                # x * sigmoid(x): one SiLU (hard swish) node
                gate = readers[0]
                skip.add(id(gate))
                layer = activation("silu" if op == "Sigmoid" else "hardswish")
                self.emit(entries, gate, layer, [nd.input[0]], unique)
                continue
            pattern = _reshape_pattern(g, nd) if op == "Reshape" \
                and not _flattens(g, nd) else None
            if pattern is not None:
                layer, nodes = pattern
                skip.update(id(n) for n in nodes)
                self.emit(entries, nd, layer, ins, unique, nodes[-1].output[0])
                continue
            if op == "MatMul" and len(ins) == 1:
                layer, last = _Builder(g).matmul(nd)
                skip.add(id(last))
                self.emit(entries, nd, layer, ins, unique, last.output[0])
                continue
            if len(ins) > 1:
                if op in ("Add", "Sum", "Mul"):
                    layer = add() if op != "Mul" else mul()
                elif op == "Concat":
                    layer = concat(axis=_sample_axis(g, nd, g.attrs(nd)["axis"],
                                                     _rank(g, out)))
                else:
                    g.fail(nd, f"{op} of {len(ins)} tensors computed from the input is "
                               "not supported")
                if len(ins) != len([x for x in nd.input if x]):
                    g.fail(nd, f"{op} of tensors computed from the input and constants")
                self.emit(entries, nd, layer, ins, unique)
                continue
            if op in ("Add", "Sum", "Mul", "Concat"):
                g.fail(nd, f"{op} of a tensor computed from the input and a constant "
                           "has no layer")
            if op == "Split":
                self.emit(entries, nd, self.split(nd), ins, unique)
                continue
            self.emit(entries, nd, _leaf(g, nd, None), ins, unique)
        output = self.refs[g.outputs[0]]
        if ":" in output:       # the graph returns a piece of a split
            name = self.name(g.made_by[g.outputs[0]], unique) + "_piece"
            entries.append(graph_node(name, identity(), output))
            output = name
        return graph(*entries, inputs="input", outputs=output)

    def emit(self, entries, nd, layer, inputs, unique, output=None):
        name = self.name(nd, unique)
        entries.append(graph_node(name, layer, [self.refs[x] for x in inputs]))
        outs = [y for y in nd.output if y]
        if layer.kind == "split":
            for k, y in enumerate(outs):
                self.refs[y] = f"{name}:{k}"
        else:
            self.refs[output or outs[0]] = name

    def split(self, nd):
        g = self.g
        attrs = g.attrs(nd)
        rank = _rank(g, nd.input[0])
        axis = _sample_axis(g, nd, attrs.get("axis", 0), rank)
        sizes = attrs.get("split")
        if sizes is None and len(nd.input) > 1 and nd.input[1]:
            sizes = g.const(nd, 1, "split sizes")
        pieces = len([y for y in nd.output if y])
        if sizes is None:
            shape = g.shapes.get(nd.input[0])
            n = None if shape is None else shape[axis + 1 if axis >= 0 else axis]
            if n is None:
                g.fail(nd, "a split into equal pieces of an axis whose size is not static")
            each = -(-n // pieces)
            sizes = [each] * (n // each) + ([n % each] if n % each else [])
        return split(tuple(int(v) for v in sizes), axis)

