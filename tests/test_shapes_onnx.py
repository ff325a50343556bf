"""Tests for reading ONNX models: graphs built here with ``onnx.helper`` (no
downloads) and, where torch is installed, torch models exported to ONNX,
each equal to the same network described with the spec builders."""
import argparse
import io
import warnings

import numpy as np
import pytest
from conftest import import_oracle

from pyconvnet._cli_shapes import add_subcommands
from pyconvnet.shapes import (activation, adaptive_max_pool, add, avg_pool, batch_norm,
                              channel_shuffle, concat, conv, conv_transpose, dropout, flatten,
                              global_avg_pool, graph, group_norm, identity, instance_norm,
                              layer_norm, linear, load_network, lrn, max_pool, mul, node, pad,
                              pixel_shuffle, pixel_unshuffle, relu, reshape, residual,
                              slice_channels, split, squeeze_excitation, summary, upsample)


@pytest.fixture(scope="module")
def onnx():
    return import_oracle("onnx")


class Graph:
    """A small ONNX graph builder: ``g.node(op, inputs, **attrs)`` returns the
    output's name; ``g.weight(shape)`` an initializer's."""

    def __init__(self, onnx, input_shape, dynamic_batch=True):
        self.onnx = onnx
        self.nodes, self.inits, self.n, self.check = [], [], 0, True
        batch = "N" if dynamic_batch else 1
        self.inputs = [onnx.helper.make_tensor_value_info(
            "x", onnx.TensorProto.FLOAT, [batch, *input_shape])]

    def weight(self, shape, values=None):
        self.n += 1
        name = f"w{self.n}"
        array = np.zeros(shape, np.float32) if values is None else \
            np.asarray(values, dtype=np.float32 if values is None or np.asarray(
                values).dtype.kind == "f" else np.int64)
        self.inits.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op, inputs, name=None, outputs=1, **attrs):
        self.n += 1
        outs = [f"t{self.n}_{i}" for i in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(
            op, inputs, outs, name=name if name is not None else f"{op.lower()}{self.n}",
            **attrs))
        return outs[0] if outputs == 1 else outs

    def model(self, output, opset=17):
        h = self.onnx.helper
        graph = h.make_graph(self.nodes, "net", self.inputs,
                             [h.make_tensor_value_info(output, self.onnx.TensorProto.FLOAT,
                                                       None)],
                             initializer=self.inits)
        model = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])
        if self.check:      # a well-formed model: ONNX's own inference accepts it
            self.onnx.shape_inference.infer_shapes(model, strict_mode=True)
        return model

    def conv(self, x, cin, cout, k, bias=True, group=1, **attrs):
        k = (k, k) if isinstance(k, int) else k
        inputs = [x, self.weight((cout, cin // group, *k))]
        if bias:
            inputs.append(self.weight((cout,)))
        return self.node("Conv", inputs, group=group, **attrs)

    def bn(self, x, c):
        return self.node("BatchNormalization",
                         [x] + [self.weight((c,)) for _ in range(4)])


def _same_rows(a, b):
    """Equal shapes, counts and receptive fields row by row, and totals."""
    assert [(r.kind, r.output_shape, r.params, r.macs, r.receptive_field)
            for r in a.rows] == \
        [(r.kind, r.output_shape, r.params, r.macs, r.receptive_field) for r in b.rows]
    for key in ("input_shape", "output_shape", "total_params", "trainable_params",
                "total_macs", "receptive_field", "activation_memory",
                "total_backward_macs", "saved_memory"):
        assert getattr(a, key) == getattr(b, key), key


# --------------------------------------------------------------------------
# graphs built with onnx.helper
# --------------------------------------------------------------------------

def test_a_chain_of_the_common_operators(onnx):
    g = Graph(onnx, (3, 32, 32))
    t = g.conv("x", 3, 16, 5, pads=[2, 2, 2, 2], strides=[1, 1])
    t = g.bn(t, 16)
    t = g.node("Relu", [t])
    t = g.node("MaxPool", [t], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    t = g.conv(t, 16, 32, (3, 1), bias=False, group=4, strides=[2, 1], dilations=[1, 2],
               pads=[1, 0, 1, 0])
    t = g.node("LeakyRelu", [t], alpha=0.1)
    t = g.conv(t, 32, 32, 3, auto_pad="SAME_UPPER")
    t = g.node("Clip", [t, g.weight((), 0.0), g.weight((), 6.0)])
    t = g.node("AveragePool", [t], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    t = g.node("LRN", [t], size=5)
    t = g.node("ConvTranspose", [t, g.weight((32, 8, 4, 4)), g.weight((8,))],
               strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])
    t = g.node("HardSwish", [t])
    t = g.node("GlobalAveragePool", [t])
    t = g.node("Flatten", [t], axis=1)
    t = g.node("Dropout", [t])
    t = g.node("Gemm", [t, g.weight((10, 8)), g.weight((10,))], transB=1)
    t = g.node("Identity", [t])
    t = g.node("Softmax", [t], axis=1)
    s = summary(g.model(t))
    spec = [conv(16, 5, padding=2), batch_norm(), relu(), max_pool(3, 2, 1),
            conv(32, (3, 1), (2, 1), (1, 0), (1, 2), groups=4, bias=False),
            activation("leaky_relu"), conv(32, 3, padding="same"), activation("relu6"),
            avg_pool(2, ceil_mode=True), lrn(5),
            conv_transpose(8, 4, 2, 1, output_padding=1), activation("hardswish"),
            global_avg_pool(), flatten(), dropout(), linear(10), identity(),
            activation("softmax")]
    _same_rows(s, summary(spec, (3, 32, 32)))
    assert s.input_shape == (3, 32, 32)         # from the graph, batch left out
    assert s.name == "net"
    assert s.rows[0].name == g.nodes[0].name     # the node's name


def test_batch_norm_counts_as_pytorch_does(onnx):
    # scale and bias are parameters; the running mean and variance are not
    g = Graph(onnx, (16, 8, 8))
    s = summary(g.model(g.bn("x", 16)))
    assert s.total_params == 32


def test_matmul_and_its_bias_add_are_one_linear_layer(onnx):
    g = Graph(onnx, (1, 28, 28))
    t = g.node("Reshape", ["x", g.weight((2,), np.array([0, -1]))])
    t = g.node("MatMul", [t, g.weight((784, 100))])
    t = g.node("Add", [t, g.weight((100,))])
    t = g.node("Tanh", [t])
    t = g.node("MatMul", [t, g.weight((100, 10))])      # no bias
    t = g.node("LogSoftmax", [t])
    s = summary(g.model(t))
    _same_rows(s, summary([flatten(), linear(100), activation("tanh"),
                           linear(10, bias=False), activation("log_softmax")], (1, 28, 28)))
    assert s.total_params == 784 * 100 + 100 + 1000


def test_residual_blocks(onnx):
    g = Graph(onnx, (8, 16, 16))
    # identity shortcut
    b = g.node("Relu", [g.bn(g.conv("x", 8, 8, 3, pads=[1] * 4, bias=False), 8)])
    b = g.conv(b, 8, 8, 3, pads=[1] * 4)
    x = g.node("Relu", [g.node("Add", ["x", b])])
    # projection shortcut, the sum written the other way round
    b = g.conv(x, 8, 16, 3, pads=[1] * 4, strides=[2, 2])
    p = g.bn(g.conv(x, 8, 16, 1, strides=[2, 2], bias=False), 16)
    x = g.node("Sum", [p, b])
    s = summary(g.model(x))
    spec = [residual([conv(8, 3, padding=1, bias=False), batch_norm(), relu(),
                      conv(8, 3, padding=1)]), relu(),
            # the longer branch is taken as the body
            residual([conv(16, 1, 2, bias=False), batch_norm()], conv(16, 3, 2, 1))]
    _same_rows(s, summary(spec, (8, 16, 16)))
    assert [r.kind for r in s.rows].count("add") == 2


def test_concatenations_and_dense_connections(onnx):
    g = Graph(onnx, (4, 8, 8))
    a = g.conv("x", 4, 2, 1)
    b = g.node("Relu", [g.conv(g.conv("x", 4, 3, 1), 3, 5, 3, pads=[1] * 4)])
    c = g.conv(g.node("MaxPool", ["x"], kernel_shape=[3, 3], pads=[1] * 4), 4, 1, 1)
    x = g.node("Concat", [a, b, "x", c], axis=1)               # with an identity branch
    y = g.node("Concat", [x, g.conv(x, 12, 6, 3, pads=[1] * 4)], axis=-3)   # dense
    s = summary(g.model(y))
    spec = [concat(conv(2, 1), [conv(3, 1), conv(5, 3, padding=1), relu()], [],
                   [max_pool(3, 1, 1), conv(1, 1)]),
            concat([], conv(6, 3, padding=1))]
    _same_rows(s, summary(spec, (4, 8, 8)))
    assert s.output_shape == (18, 8, 8)


def test_silu_written_as_a_product(onnx):
    g = Graph(onnx, (4, 8, 8))
    t = g.conv("x", 4, 4, 1)
    t = g.node("Mul", [t, g.node("Sigmoid", [t])])
    t = g.node("Mul", [g.node("HardSigmoid", [t]), t])
    s = summary(g.model(t))
    assert [r.kind for r in s.rows] == ["conv", "silu", "hardswish"]


def test_the_layers_that_resize_pad_and_normalise(onnx):
    g = Graph(onnx, (8, 16, 16))
    t = g.node("Pad", ["x", g.weight((8,), np.array([0, 0, 1, 2, 0, 0, 3, 4])),
                       g.weight((), -1.0)])
    t = g.node("Pad", [t, g.weight((8,), np.array([0, 0, 1, 1, 0, 0, 1, 1]))],
               mode="reflect")
    t = g.node("Slice", [t, g.weight((2,), np.array([2, 1])),
                         g.weight((2,), np.array([2 ** 63 - 1, -1])),
                         g.weight((2,), np.array([1, 3])), g.weight((2,), np.array([2, 1]))])
    t = g.node("InstanceNormalization", [t, g.weight((3,)), g.weight((3,))])
    t = g.node("Resize", [t, "", g.weight((4,), [1.0, 1.0, 2.0, 2.0])])
    t = g.node("Resize", [t, "", "", g.weight((4,), np.array([1, 3, 20, 30]))],
               mode="linear", coordinate_transformation_mode="align_corners")
    t = g.node("LayerNormalization", [t, g.weight((3, 20, 30)), g.weight((3, 20, 30))],
               axis=-3)
    t = g.conv(t, 3, 8, 1)
    t = g.node("DepthToSpace", [t], blocksize=2, mode="CRD")
    t = g.node("SpaceToDepth", [t], blocksize=2)
    t = g.node("LayerNormalization", [t, g.weight((30,))])      # the last axis, no bias
    s = summary(g.model(t))
    spec = [pad(((1, 3), (2, 4)), value=-1.0), pad(1, "reflect"),
            [slice_channels(2, None, 2), slice_channels(1, -1, axis=-1)],
            instance_norm(affine=True), upsample(2),
            upsample(size=(20, 30), mode="bilinear", align_corners=True),
            layer_norm((3, 20, 30)), conv(8, 1), pixel_shuffle(2), pixel_unshuffle(2),
            layer_norm(30, bias=False)]
    _same_rows(s, summary(spec, (8, 16, 16)))


def test_group_normalization(onnx):
    g = Graph(onnx, (8, 4, 4))
    t = g.node("GroupNormalization", ["x", g.weight((8,)), g.weight((8,))], num_groups=2)
    s = summary(g.model(t, opset=21))
    _same_rows(s, summary([group_norm(2)], (8, 4, 4)))
    assert s.total_params == 16


def test_a_squeeze_excitation_gate_is_read_as_a_graph(onnx):
    g = Graph(onnx, (3, 16, 16))
    x = g.node("Relu", [g.conv("x", 3, 16, 3, pads=[1] * 4)])
    t = g.node("GlobalAveragePool", [x])
    t = g.node("Relu", [g.conv(t, 16, 4, 1)])
    t = g.node("HardSigmoid", [g.conv(t, 4, 16, 1)])
    t = g.node("Mul", [t, x])
    s = summary(g.model(t))
    spec = [conv(16, 3, padding=1), relu(),
            squeeze_excitation(16, 4, scale_activation="hardsigmoid")]
    _same_rows(s, summary(spec, (3, 16, 16)))
    assert s.rows[-1].kind == "mul"


def test_branches_that_do_not_nest_are_read_as_a_graph(onnx):
    g = Graph(onnx, (3, 8, 8))
    a = g.node("Relu", ["x"], name="a")
    b = g.node("Relu", [a], name="b")
    c = g.node("Add", ["x", a], name="c")
    d = g.node("Add", [c, b], name="d")
    s = summary(g.model(d))
    spec = graph(node("a", relu(), "x"), node("b", relu(), "a"),
                 node("c", add(), ["x", "a"]), node("d", add(), ["c", "b"]), inputs="x")
    _same_rows(s, summary(spec, (3, 8, 8)))
    assert [r.name for r in s.rows] == ["a", "b", "c", "d"]


def test_a_channel_split_and_shuffle(onnx):
    # ShuffleNet v2's unit: half the channels pass, the other half is
    # convolved, the halves are joined and the channels shuffled
    g = Graph(onnx, (8, 8, 8), dynamic_batch=False)
    left, right = g.node("Split", ["x", g.weight((2,), np.array([4, 4]))], outputs=2,
                         axis=1)
    right = g.node("Relu", [g.conv(right, 4, 4, 3, pads=[1] * 4)])
    t = g.node("Concat", [left, right], axis=1)
    t = g.node("Reshape", [t, g.weight((5,), np.array([1, 2, 4, 8, 8]))])
    t = g.node("Transpose", [t], perm=[0, 2, 1, 3, 4])
    t = g.node("Reshape", [t, g.weight((4,), np.array([1, 8, 8, 8]))])
    t = g.node("Mul", [t, g.node("Sigmoid", [t])])
    s = summary(g.model(t))
    spec = graph(node("halves", split((4, 4)), "x"),
                 node("conv", conv(4, 3, padding=1), "halves:1"),
                 node("relu", relu(), "conv"),
                 node("cat", concat(), ["halves:0", "relu"]),
                 node("shuffle", channel_shuffle(2), "cat"),
                 node("silu", activation("silu"), "shuffle"), inputs="x")
    _same_rows(s, summary(spec, (8, 8, 8)))
    assert [r.kind for r in s.rows] == ["split", "split", "conv", "relu", "concat",
                                        "channel_shuffle", "silu"]


def test_a_gate_made_by_linear_layers_and_a_reshape(onnx):
    # SENet's block as first written: a vector through linear layers, reshaped
    # into a gate
    g = Graph(onnx, (16, 8, 8))
    t = g.node("Flatten", [g.node("GlobalAveragePool", ["x"])])
    t = g.node("Relu", [g.node("Gemm", [t, g.weight((4, 16)), g.weight((4,))], transB=1)])
    t = g.node("Sigmoid", [g.node("Gemm", [t, g.weight((16, 4)), g.weight((16,))],
                                  transB=1)])
    t = g.node("Reshape", [t, g.weight((4,), np.array([-1, 16, 1, 1]))])
    t = g.node("Unsqueeze", [g.node("Squeeze", [t, g.weight((1,), np.array([3]))]),
                             g.weight((1,), np.array([3]))])
    s = summary(g.model(g.node("Mul", ["x", t])))
    spec = graph(node("gap", [global_avg_pool(), flatten(), linear(4), relu(), linear(16),
                              activation("sigmoid"), reshape((16, 1, 1)), reshape((16, 1)),
                              reshape((16, 1, 1))], "x"),
                 node("gate", mul(), ["x", "gap"]), inputs="x")
    _same_rows(s, summary(spec, (16, 8, 8)))
    assert s.total_params == 2 * 16 * 4 + 4 + 16


def test_concatenation_along_another_axis(onnx):
    g = Graph(onnx, (3, 8, 8))
    s = summary(g.model(g.node("Concat", ["x", g.node("Relu", ["x"])], axis=-1)))
    _same_rows(s, summary(concat([], relu(), axis=-1), (3, 8, 8)))
    assert s.output_shape == (3, 8, 16)


def test_a_dynamic_input_shape_must_be_given(onnx, tmp_path):
    g = Graph(onnx, ("H", 3, 8))
    g.inputs[0].type.tensor_type.shape.dim[1].dim_param = "C"
    model = g.model(g.conv("x", 3, 4, 3))
    with pytest.raises(ValueError, match="input_shape is required"):
        summary(model)
    assert summary(model, (3, 8, 8)).output_shape == (4, 6, 6)
    path = tmp_path / "dyn.onnx"
    onnx.save(model, path)
    assert load_network(path)[1] is None


def test_onnx_files_and_the_command_line(onnx, tmp_path, capsys):
    g = Graph(onnx, (1, 28, 28), dynamic_batch=False)
    t = g.node("Relu", [g.conv("x", 1, 6, 5, pads=[2] * 4)])
    t = g.node("GlobalMaxPool", [t])
    model = g.model(t)
    path = tmp_path / "tiny.onnx"
    onnx.save(model, path)
    s = summary(path)
    assert s.name == "tiny" and s.input_shape == (1, 28, 28) and s.total_params == 156
    assert s.rows[-1].kind == "adaptive_max_pool"
    _same_rows(s, summary([conv(6, 5, padding=2), relu(), adaptive_max_pool(1)],
                          (1, 28, 28)))
    # a file with another suffix is recognised as ONNX
    other = tmp_path / "tiny.model"
    other.write_bytes(path.read_bytes())
    assert summary(str(other)).total_params == 156

    parser = argparse.ArgumentParser(prog="pyconvnet")
    sub = parser.add_subparsers()
    add_subcommands(sub)
    args = parser.parse_args(["summary", str(path)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("tiny: input 1x28x28, output 6x1x1") and "156" in out


@pytest.mark.parametrize("build, message", [
    (lambda g: g.node("Einsum", ["x"], name="e", equation="nchw->nchw"),
     "Einsum node 'e': the operator Einsum is not supported"),
    (lambda g: g.node("Transpose", ["x"], name="t", perm=[0, 1, 3, 2]),
     "Transpose node 't': the operator Transpose is not supported; supported: Add, "),
    (lambda g: g.node("Resize", ["x", "", g.weight((4,), [1.0, 1.0, 2.0, 2.0])],
                      name="up1", mode="cubic"),
     "Resize node 'up1': mode b'cubic'"),
    (lambda g: g.conv("x", 3, 4, 3, pads=[0, 0, 1, 1]),
     r"pads \[0, 0, 1, 1\] differ before and after"),
    (lambda g: g.node("Add", ["x", g.weight((3, 1, 1))], name="shift"),
     "Add node 'shift': Add of a tensor computed from the input and a constant"),
    (lambda g: g.node("Mul", [g.node("Relu", ["x"]), g.weight((3, 1, 1))], name="m"),
     "Mul node 'm': Mul of a tensor computed from the input and a constant"),
    (lambda g: g.node("Reshape", ["x", g.weight((3,), np.array([3, 8, -1]))], name="r"),
     r"Reshape node 'r': a reshape to \[3, 8, -1\], which does not keep the batch"),
    (lambda g: g.node("Unsqueeze", ["x", g.weight((1,), np.array([0]))], name="u"),
     "Unsqueeze node 'u': a Unsqueeze of the batch axis"),
    (lambda g: g.node("Clip", ["x", g.weight((), -1.0), g.weight((), 1.0)]),
     r"Clip to \[-1.0, 1.0\]"),
    (lambda g: g.node("Slice", ["x", g.weight((1,), np.array([0])),
                                g.weight((1,), np.array([1])),
                                g.weight((1,), np.array([0]))], name="s"),
     "Slice node 's': an operation along the batch axis"),
])
def test_what_cannot_be_read_is_named(onnx, build, message):
    g = Graph(onnx, (3, 8, 8))
    g.check = False
    with pytest.raises(ValueError, match=message):
        summary(g.model(build(g)))


def test_a_graph_with_two_inputs(onnx):
    g = Graph(onnx, (3, 8, 8))
    g.inputs.append(onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT,
                                                       [1, 3, 8, 8]))
    with pytest.raises(ValueError, match="the graph has 2 inputs"):
        summary(g.model(g.node("Add", ["x", "y"])))


def test_a_corrupt_onnx_file(tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\x08\x07garbage that protobuf refuses \xff\xff\xff")
    with pytest.raises(ValueError, match="bad.onnx is not an ONNX model"):
        summary(path)


# --------------------------------------------------------------------------
# torch models exported to ONNX
# --------------------------------------------------------------------------

def _export(torch, model, shape, keep_batch_norm=True):
    """ONNX of a torch model in eval mode, with its batch normalisations
    kept (by default the exporter folds them into the convolutions)."""
    import_oracle("onnx")
    import onnx
    buf = io.BytesIO()
    options = dict(training=torch.onnx.TrainingMode.PRESERVE,
                   do_constant_folding=False) if keep_batch_norm else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(1, *shape),), buf, dynamo=False,
                          **options)
    return onnx.load_from_string(buf.getvalue())


def _torch_params(model):
    return sum(p.numel() for p in model.parameters())


def test_a_torch_resnet_like_network(torch):
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None if stride == 1 and cin == cout else nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(y + (x if self.downsample is None else self.downsample(x)))

    model = nn.Sequential(nn.Conv2d(3, 16, 7, 2, 3, bias=False), nn.BatchNorm2d(16),
                          nn.ReLU(), nn.MaxPool2d(3, 2, 1), Block(16, 16, 1),
                          Block(16, 32, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(32, 10))
    s = summary(_export(torch, model, (3, 64, 64)))

    def block(cin, cout, stride):
        body = [conv(cout, 3, stride, 1, bias=False), batch_norm(), relu(),
                conv(cout, 3, 1, 1, bias=False), batch_norm()]
        short = None if stride == 1 and cin == cout else \
            [conv(cout, 1, stride, bias=False), batch_norm()]
        return [residual(body, short), relu()]

    spec = [conv(16, 7, 2, 3, bias=False), batch_norm(), relu(), max_pool(3, 2, 1),
            *block(16, 16, 1), *block(16, 32, 2), global_avg_pool(), flatten(),
            linear(10)]
    _same_rows(s, summary(spec, (3, 64, 64)))
    assert s.total_params == _torch_params(model)
    # the rows are named after the modules
    names = [r.name for r in s.rows]
    assert names[:4] == ["0", "1", "2", "3"]
    assert "5.downsample.0" in names and "5.conv1" in names and "4.add" in names
    assert [r.name for r in summary(_export(torch, model, (3, 64, 64)), depth=1).rows][
        4:6] == ["4", "5"]


def test_a_torch_network_with_concatenations_and_transposed_convolutions(torch):
    nn = torch.nn

    class Net(nn.Module):      # a small U-Net level: concat of the skip and the way up
        def __init__(self):
            super().__init__()
            self.enc = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU())
            self.down = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
                                      nn.ReLU())
            self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
            self.branch = nn.Conv2d(16, 4, 1)
            self.head = nn.Conv2d(16, 2, 1)

        def forward(self, x):
            e = self.enc(x)
            d = torch.cat([e, self.up(self.down(e))], dim=1)
            return self.head(d)

    model = Net()
    s = summary(_export(torch, model, (1, 32, 32)))
    spec = [conv(8, 3, padding=1), relu(),
            concat([], [max_pool(2), conv(16, 3, padding=1), relu(),
                        conv_transpose(8, 2, 2)]),
            conv(2, 1)]
    _same_rows(s, summary(spec, (1, 32, 32)))
    assert s.total_params == _torch_params(model) - (16 * 4 + 4)   # branch is unused


@pytest.mark.parametrize("dims", [1, 3])
def test_torch_networks_of_one_and_three_dimensions(torch, dims):
    nn = torch.nn
    conv_cls = {1: nn.Conv1d, 3: nn.Conv3d}[dims]
    pool_cls = {1: nn.AvgPool1d, 3: nn.AvgPool3d}[dims]
    bn_cls = {1: nn.BatchNorm1d, 3: nn.BatchNorm3d}[dims]
    model = nn.Sequential(conv_cls(2, 8, 3, stride=2, padding=1), bn_cls(8), nn.GELU(),
                          pool_cls(2), conv_cls(8, 4, 1, groups=4), nn.Hardsigmoid(),
                          nn.Flatten())
    shape = (2,) + (16,) * dims
    s = summary(_export(torch, model, shape))
    spec = [conv(8, 3, 2, 1), batch_norm(), activation("gelu"), avg_pool(2),
            conv(4, 1, groups=4), activation("hardsigmoid"), flatten()]
    _same_rows(s, summary(spec, shape))
    assert s.total_params == _torch_params(model)


def test_a_torch_export_with_folded_batch_norms(torch):
    # the exporter's default folds each batch norm into the convolution
    # before it: the file holds a convolution with a bias, and so does the
    # summary
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
                          nn.Conv2d(8, 8, 3, groups=8), nn.SiLU(), nn.Flatten(),
                          nn.Linear(8 * 12 * 12, 3))
    s = summary(_export(torch, model, (3, 16, 16), keep_batch_norm=False))
    spec = [conv(8, 3), activation("relu6"), conv(8, 3, groups=8), activation("silu"),
            flatten(), linear(3)]
    _same_rows(s, summary(spec, (3, 16, 16)))


def test_torch_networks_that_need_the_graph_form(torch):
    nn = torch.nn

    class SE(nn.Module):            # MobileNet v3's squeeze-and-excitation
        def __init__(self, c, s):
            super().__init__()
            self.fc1, self.fc2 = nn.Conv2d(c, s, 1), nn.Conv2d(s, c, 1)

        def forward(self, x):
            g = nn.functional.adaptive_avg_pool2d(x, 1)
            return x * nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(g))))

    class Shuffle(nn.Module):       # ShuffleNet v2's unit, stride 1
        def __init__(self, c):
            super().__init__()
            self.branch = nn.Sequential(nn.Conv2d(c // 2, c // 2, 1), nn.ReLU(),
                                        nn.Conv2d(c // 2, c // 2, 3, padding=1,
                                                  groups=c // 2))

        def forward(self, x):
            a, b = x.chunk(2, dim=1)
            y = torch.cat([a, self.branch(b)], dim=1)
            n, c, h, w = y.shape
            return y.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)

    model = nn.Sequential(nn.ZeroPad2d((1, 2, 0, 1)), nn.Conv2d(3, 16, 3), SE(16, 4),
                          nn.GroupNorm(4, 16), nn.InstanceNorm2d(16), Shuffle(16),
                          nn.Upsample(scale_factor=2, mode="bilinear"),
                          nn.Conv2d(16, 12, 3, padding=1), nn.PixelShuffle(2),
                          nn.LayerNorm([3, 60, 68]))
    s = summary(_export(torch, model, (3, 16, 16)))
    assert s.total_params == _torch_params(model)
    spec = [pad(((0, 1), (1, 2))), conv(16, 3),
            squeeze_excitation(16, 4, scale_activation="hardsigmoid"), group_norm(4),
            instance_norm(),
            # x.chunk(2, dim=1) is exported as two slices
            graph(node("a", slice_channels(0, 8), "x"), node("b", slice_channels(8, 16), "x"),
                  node("b1", conv(8, 1), "b"), node("b2", relu(), "b1"),
                  node("b3", conv(8, 3, padding=1, groups=8), "b2"),
                  node("cat", concat(), ["a", "b3"]),
                  node("shuffle", channel_shuffle(2), "cat"), inputs="x"),
            upsample(2, mode="bilinear"), conv(12, 3, padding=1),
            pixel_shuffle(2), layer_norm((3, 60, 68))]
    expected = summary(spec, (3, 16, 16))
    _same_rows(s, expected)
    assert s.output_shape == (3, 60, 68)


# built-in networks and graphs, through torch modules built from their specs
# (tests/_torch_graphs.py), exported to ONNX and read back
ROUND_TRIPS = {
    "lenet5": ("lenet5", (1, 32, 32)),
    "resnet18": ("resnet18", (3, 64, 64)),
    "mobilenet_v2": ("mobilenet_v2", (3, 64, 64)),
    "googlenet": ("googlenet", (3, 64, 64)),
    "se_unet": ([conv(8, 3, padding=1), relu(),
                 squeeze_excitation(8, 2, scale_activation="hardsigmoid"),
                 graph(node("down", [max_pool(2), conv(16, 3, padding=1), group_norm(4)],
                            "x"),
                       node("up", upsample(2, mode="bilinear"), "down"),
                       node("cat", concat(), ["x", "up"]),
                       node("halves", split(12), "cat"),
                       node("out", add(), ["halves:0", "halves:1"]), inputs="x")],
                (3, 32, 32)),
}


@pytest.mark.parametrize("key", sorted(ROUND_TRIPS))
def test_specs_through_torch_and_onnx_read_back_the_same(torch, key):
    from _torch_graphs import torch_module

    from pyconvnet import architectures
    from pyconvnet.shapes import as_layer
    spec, shape = ROUND_TRIPS[key]
    layer = architectures.get_architecture(spec) if isinstance(spec, str) else as_layer(spec)
    model = torch_module(layer, len(shape) - 1, torch).eval()
    with torch.no_grad():
        model(torch.zeros(1, *shape))           # the lazy modules find their channels
    s = summary(_export(torch, model, shape))
    expected = summary(layer, shape)
    assert s.total_params == expected.total_params == _torch_params(model)
    for key in ("output_shape", "total_macs", "receptive_field"):
        assert getattr(s, key) == getattr(expected, key), key
    assert sorted((r.kind, r.output_shape, r.params, r.macs) for r in s.rows
                  if r.kind not in ("identity", "dropout")) == \
        sorted((r.kind, r.output_shape, r.params, r.macs) for r in expected.rows
               if r.kind not in ("identity", "dropout"))


def test_without_the_onnx_package(tmp_path, monkeypatch, capsys):
    import sys
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07")
    monkeypatch.setitem(sys.modules, "onnx", None)      # import onnx fails
    with pytest.raises(ValueError, match=r"needs the onnx package: pip install onnx"):
        summary(path)
    parser = argparse.ArgumentParser(prog="pyconvnet")
    add_subcommands(parser.add_subparsers())
    with pytest.raises(SystemExit) as info:
        args = parser.parse_args(["summary", str(path)])
        args.func(args)
    assert info.value.code == 2
    assert "needs the onnx package" in capsys.readouterr().err
