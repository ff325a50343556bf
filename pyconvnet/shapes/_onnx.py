"""ONNX models as layer specs, read without running them (:ref:`onnx-models`).

The graph's nodes are mapped onto the layers of :mod:`pyconvnet._specs`:
weights are read from the initializers only for their shapes (the output
channels, kernel and whether there is a bias), attributes give strides,
padding and dilation. A chain of nodes becomes a sequence; where a tensor
forks and its branches meet again at an ``Add`` (or ``Sum``) the block
becomes a :func:`residual`, at a channel ``Concat`` a :func:`concat`. Two
patterns become one layer: ``x * Sigmoid(x)`` is SiLU and ``x *
HardSigmoid(x)`` hard swish; ``MatMul`` followed by the ``Add`` of a
constant vector is a linear layer with a bias, as PyTorch exports
``nn.Linear`` on inputs of more than two dimensions.

Parameters are counted as PyTorch counts them: a ``BatchNormalization``'s
scale and bias are parameters, its running mean and variance are not.

Needs the optional ``onnx`` package (``pip install pyconvnet[onnx]``).
"""
from collections import defaultdict

from .._specs import (Layer, activation, adaptive_max_pool, avg_pool, batch_norm, concat,
                      conv, conv_transpose, dropout, flatten, global_avg_pool, identity,
                      linear, lrn, max_pool, residual)

__all__ = ["onnx_to_layer", "parse_model"]

SUPPORTED = (
    "Add", "AveragePool", "BatchNormalization", "Clip", "Concat", "Constant", "Conv",
    "ConvTranspose", "Dropout", "Elu", "Flatten", "Gelu", "Gemm", "GlobalAveragePool",
    "GlobalMaxPool", "HardSigmoid", "HardSwish", "Identity", "LRN", "LeakyRelu",
    "LogSoftmax", "MatMul", "MaxPool", "Mul", "Relu", "Reshape", "Sigmoid", "Softmax",
    "Squeeze", "Sum", "Tanh",
)
_ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Elu": "elu",
                "LeakyRelu": "leaky_relu", "Gelu": "gelu", "HardSwish": "hardswish",
                "HardSigmoid": "hardsigmoid", "Softmax": "softmax",
                "LogSoftmax": "log_softmax"}
_JOINS = ("Add", "Sum", "Mul", "Concat")
_META = ("Shape", "Size")       # outputs describe a tensor, they are not data


class OnnxError(ValueError):
    """An ONNX model that cannot be read as a layer spec."""


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
        if name not in self.consts:
            self.fail(node, f"its {what} ({name!r}) is not a constant of the graph")
        return self.consts[name]

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
    if op in ("Flatten", "Reshape", "Squeeze"):
        if _flattens(g, node):
            return flatten(name=name)
        g.fail(node, "a reshape other than flattening all but the batch axis")
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
            if node.op_type == "MatMul":
                layer, node = self.matmul(node)
                outs = [o for o in node.output if o]
            elif node.op_type in ("Add", "Mul", "Sum"):
                g.fail(node, f"{node.op_type} of a tensor computed from the input "
                             "and a constant has no layer")
            else:
                layer = self.leaf(_leaf(g, node, None), node)
            if len(outs) != 1 and node.op_type != "Dropout":
                g.fail(node, f"{len(outs)} outputs (a Split needs the graph form)")
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
            raise OnnxError(
                f"{g.where}: the branches from the tensor {tensor!r} do not all meet at "
                "one Add, Mul or Concat node; describing such a graph needs the graph "
                "form")
        ends = [end for _, end, _ in branches]
        inputs = g.data_inputs(join)
        if sorted(ends) != sorted(inputs):
            g.fail(join, f"its inputs {inputs} are not the ends of the branches from "
                         f"{tensor!r} alone; describing such a graph needs the graph form")
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
                g.fail(join, f"a sum of {len(parts)} branches (a residual block adds two)")
            body, shortcut = sorted(parts, key=len, reverse=True)
            layers.append(self.composite(residual(body if len(body) != 1 else body[0],
                                                  shortcut or None), join))
        elif join.op_type == "Concat":
            axis = g.attrs(join).get("axis")
            rank = len(g.shapes.get(out, ())) or None
            if not (axis == 1 or (rank and axis == 1 - rank)):
                g.fail(join, f"a concatenation along axis {axis} (only the channel "
                             "axis, 1, is described without the graph form)")
            layers.append(self.composite(
                concat(*[p if len(p) != 1 else p[0] for p in parts]), join))
        else:   # Mul: x * sigmoid(x) and x * hardsigmoid(x)
            gate = [p for p in parts if p]
            kinds = [x.kind for x in gate[0]] if len(gate) == 1 else []
            if len(parts) == 2 and kinds in (["sigmoid"], ["hardsigmoid"]):
                layers.append(self.leaf(activation(
                    "silu" if kinds == ["sigmoid"] else "hardswish"), join))
            else:
                g.fail(join, "a product of branches other than x * Sigmoid(x) (SiLU) "
                             "or x * HardSigmoid(x) (hard swish): gates need the graph "
                             "form")
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
        if not layer.children:
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
    builder = _Builder(g)
    layers = []
    tensor, join = builder.walk(g.input, layers)
    if join is not None:
        g.fail(join, f"its inputs {g.data_inputs(join)} do not all come from one "
                     "fork; describing such a graph needs the graph form")
    if tensor != g.outputs[0]:
        raise OnnxError(f"{where}: the walk from the input ended at {tensor!r}, not "
                        f"at the graph's output {g.outputs[0]!r}")
    root = Layer("sequential", {}, tuple(layers))
    return builder.named(root, [], builder.unique_scopes(root)), g.input_shape

