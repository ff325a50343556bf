"""Graphs and the layers they brought: shapes, parameters and MACs against
PyTorch, graphs against the same networks written as sequences, and the
errors of bad graphs."""
import pytest
from _torch_graphs import torch_backward_flops, torch_counts, torch_saved_bytes
from conftest import import_oracle
from hypothesis import given, settings
from hypothesis import strategies as st

from pyconvnet.shapes import (activation, add, as_layer, avg_pool, batch_norm, channel_shuffle,
                              concat, conv, conv_transpose, crop, dense_block, global_avg_pool,
                              graph, group_norm, instance_norm, layer_norm, linear, max_pool, mul,
                              node, pad, pixel_shuffle, pixel_unshuffle, relu, reshape, residual,
                              sequential, slice_channels, split, squeeze_excitation, summary,
                              upsample)


def check_against_torch(spec, shape, torch):
    params, flops, out = torch_counts(spec, shape, torch)
    s = summary(spec, shape)
    assert s.output_shape == out
    assert s.total_params == params
    # FlopCounterMode counts two FLOPs per multiply-add of convolutions and
    # matrix products, the "torchvision" convention; it counts nothing for
    # the joins, resizes and normalisations
    assert s.total_flops == flops
    return s


# --------------------------------------------------------------------------
# every new kind against torch
# --------------------------------------------------------------------------

KINDS = [
    ([upsample(2)], (4, 5, 7)),
    ([upsample(3, mode="bilinear")], (4, 5, 7)),
    ([upsample(1.5, mode="bilinear", align_corners=True)], (4, 5, 7)),
    ([upsample(size=(9, 4), mode="bilinear")], (4, 5, 7)),
    ([upsample((2, 0.5))], (4, 6, 6)),
    ([upsample(2, mode="linear")], (4, 11)),
    ([upsample(size=5, mode="trilinear")], (2, 3, 4, 5)),
    ([pixel_shuffle(2)], (12, 5, 3)),
    ([pixel_unshuffle(3)], (2, 9, 6)),
    ([conv(8, 3), group_norm(4)], (3, 9, 9)),
    ([conv(8, 3), group_norm(2, affine=False)], (3, 9, 9)),
    ([conv(6, 3), instance_norm()], (3, 9, 9)),
    ([conv(6, 3), instance_norm(affine=True)], (3, 9, 9)),
    ([conv(6, 1), instance_norm(affine=True)], (3, 9)),
    ([conv(6, 3), layer_norm()], (3, 9, 9)),
    ([conv(6, 3), layer_norm(bias=False)], (3, 9, 9)),
    ([conv(6, 3), layer_norm(affine=False)], (3, 9, 9)),
    ([conv(6, 3), layer_norm((7, 7))], (3, 9, 9)),
    ([layer_norm(16)], (10, 16)),
    ([pad(2)], (3, 5, 5)),
    ([pad(((1, 2), (0, 3)))], (3, 5, 5)),
    ([pad((1, 2), mode="reflect")], (3, 5, 5)),
    ([pad(1, mode="replicate")], (3, 5, 5, 5)),
    ([pad(2, mode="circular")], (3, 5)),
    ([crop(3)], (3, 7, 8)),
    ([crop((3, 4), offset=(1, 0))], (3, 7, 8)),
    ([slice_channels(2, 7)], (9, 4, 4)),
    ([slice_channels(-4, None, 2)], (9, 4, 4)),
    ([slice_channels(1, 5, axis=-1)], (9, 4, 6)),
    ([conv(4, 3), concat([conv(4, 1)], [], axis=1)], (3, 8, 8)),
    ([conv(6, 3), channel_shuffle(3)], (3, 8, 8)),
    ([conv(6, 3), reshape((3, -1, 12))], (3, 8, 8)),
    ([conv(6, 3), global_avg_pool(), reshape((-1,)), linear(4), reshape((4, 1, 1))],
     (3, 8, 8)),
    (squeeze_excitation(16, 4), (16, 7, 7)),
    (squeeze_excitation(24, 8, "silu", "hardsigmoid"), (24, 5, 5)),
]


@pytest.mark.parametrize("spec, shape", KINDS, ids=lambda v: None)
def test_every_kind_matches_torch(spec, shape, torch):
    check_against_torch(spec, shape, torch)


def test_squeeze_excitation_counts_as_torchvision():
    # torchvision's SqueezeExcitation(input, squeeze): two 1x1 convolutions
    # with biases, input*squeeze + squeeze + squeeze*input + input
    for cin, sq in ((16, 4), (96, 24), (960, 240)):
        s = summary(squeeze_excitation(cin, sq), (cin, 7, 7))
        assert s.total_params == 2 * cin * sq + sq + cin
        assert s.total_macs == 2 * cin * sq


def test_graph_joins_match_torch(torch):
    g = graph(
        node("stem", conv(8, 3, padding=1), "x"),
        node("halves", split((3, 5)), "stem"),
        node("right", [conv(5, 3, padding=1), relu()], "halves:1"),
        node("cat", concat(), ["halves:0", "right"]),
        node("gate", [global_avg_pool(), conv(8, 1), activation("hardsigmoid")], "cat"),
        node("gated", mul(), ["cat", "gate"]),
        node("down", [max_pool(2), conv(8, 3, padding=1)], "gated"),
        node("up", [upsample(2, mode="bilinear"), conv(8, 1)], "down"),
        node("sum", add(), ["up", "gated", "stem"]),
        node("wide", concat(axis=-1), ["sum", "stem"]),
        inputs="x")
    s = check_against_torch(g, (3, 16, 16), torch)
    assert s.output_shape == (8, 16, 32)


def test_unet_crop_matches_torch(torch):
    # the 2015 U-Net's valid convolutions and crops, one level deep
    g = graph(
        node("enc", [conv(8, 3), relu(), conv(8, 3), relu()], "image"),
        node("down", [max_pool(2), conv(16, 3), relu(), conv(16, 3), relu()], "enc"),
        node("up", conv_transpose(8, 2, stride=2), "down"),
        node("skip", crop(), ["enc", "up"]),
        node("cat", concat(), ["skip", "up"]),
        node("dec", [conv(8, 3), relu(), conv(8, 3), relu(), conv(2, 1)], "cat"),
        inputs="image")
    s = check_against_torch(g, (1, 60, 60), torch)
    assert s.output_shape == (2, 44, 44)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 9), factor=st.sampled_from([0.5, 1, 1.5, 2, 2.5, 3]),
       mode=st.sampled_from(["nearest", "bilinear"]),
       by_size=st.booleans(), out=st.integers(1, 12))
def test_upsample_output_size_matches_torch(n, factor, mode, by_size, out):
    torch = import_oracle("torch")
    spec = [upsample(size=out, mode=mode) if by_size else upsample(factor, mode=mode)]
    if not by_size and int(n * factor) < 1:
        with pytest.raises(ValueError, match="vanish"):
            summary(spec, (2, n, n + 1))
        return
    check_against_torch(spec, (2, n, n + 1), torch)


@settings(max_examples=25, deadline=None)
@given(c=st.integers(1, 12), data=st.data())
def test_split_pieces_match_torch(c, data):
    torch = import_oracle("torch")
    if data.draw(st.booleans()):
        sizes = data.draw(st.integers(1, c))
    else:
        cuts = sorted(data.draw(st.sets(st.integers(1, c - 1), max_size=4))) if c > 1 else []
        sizes = tuple(b - a for a, b in zip([0] + cuts, cuts + [c]))
    x = torch.zeros(1, c, 3, 3)
    want = [tuple(t.shape[1:]) for t in torch.split(
        x, sizes if isinstance(sizes, int) else list(sizes), 1)]
    g = graph(node("s", split(sizes), "x"),
              node("cat", concat(), [f"s:{k}" for k in range(len(want))])
              if len(want) > 1 else node("one", conv(1, 1), "s:0"), inputs="x")
    rows = [r for r in summary(g, (c, 3, 3)).rows if r.kind == "split"]
    assert [r.output_shape for r in rows] == want
    assert [r.name for r in rows] == [f"s:{k}" for k in range(len(want))]


# --------------------------------------------------------------------------
# MACs of the new kinds under the conventions
# --------------------------------------------------------------------------

def test_norm_and_upsample_macs_follow_the_presets():
    shape = (8, 6, 6)
    n = 8 * 6 * 6
    for spec, full, fvcore, ptflops in (
            ([group_norm(4)], n, 5 * n, 2 * n),
            ([group_norm(4, affine=False)], n, 4 * n, n),
            ([instance_norm()], n, 4 * n, n),
            ([layer_norm()], n, 5 * n, 2 * n),
            ([upsample(2)], 4 * n, 4 * n, 4 * n),
            ([upsample(2, mode="bilinear")], 16 * n, 16 * n, 4 * n)):
        assert summary(spec, shape).total_macs == 0
        assert summary(spec, shape, convention="full").total_macs == full
        assert summary(spec, shape, preset="fvcore").total_macs == fvcore
        assert summary(spec, shape, preset="ptflops").total_macs == ptflops
    assert summary([group_norm(4)], shape, count={"norms": 0},
                   convention="full").total_macs == 0


def test_add_and_mul_count_under_the_residual_switch():
    g = graph(node("a", conv(4, 1), "x"), node("b", conv(4, 1), "x"),
              node("s", add(), ["a", "b", "x"]), node("m", mul(), ["s", "a"]), inputs="x")
    rows = {r.name: r for r in summary(g, (4, 5, 5), convention="full").rows}
    assert rows["s"].macs == 2 * 100 and rows["m"].macs == 100
    rows = {r.name: r for r in summary(g, (4, 5, 5)).rows}
    assert rows["s"].macs == rows["m"].macs == 0


# --------------------------------------------------------------------------
# graphs are the networks the other builders write
# --------------------------------------------------------------------------

def _same(a, b, shape):
    for kw in ({}, {"convention": "full"}, {"preset": "fvcore"}):
        sa, sb = summary(a, shape, batch_size=2, **kw), summary(b, shape, batch_size=2, **kw)
        assert sa.output_shape == sb.output_shape
        assert sa.total_params == sb.total_params
        assert sa.trainable_params == sb.trainable_params
        assert sa.total_macs == sb.total_macs
        assert sa.total_backward_macs == sb.total_backward_macs
        assert sa.saved_memory == sb.saved_memory
        assert sa.receptive_field == sb.receptive_field
        assert sorted(r.macs for r in sa.rows) == sorted(r.macs for r in sb.rows)


def test_graph_equals_residual():
    body = [conv(8, 3, padding=1), batch_norm(), relu(), conv(8, 3, padding=1)]
    short = [conv(8, 1, stride=1), batch_norm()]
    g = graph(node("body", body, "x"), node("shortcut", short, "x"),
              node("add", add(), ["body", "shortcut"]), node("relu", relu(), "add"),
              inputs="x")
    _same(g, residual(body, short, activation="relu"), (4, 9, 9))


def test_graph_equals_concat_and_dense_block():
    a, b = [conv(4, 1)], [conv(2, 3, padding=1), relu()]
    g = graph(node("a", a, "x"), node("b", b, "x"), node("cat", concat(), ["a", "b"]),
              inputs="x")
    _same(g, concat(a, b), (3, 8, 8))
    l1, l2 = conv(4, 3, padding=1), conv(4, 3, padding=1)
    g = graph(node("l1", l1, "x"), node("c1", concat(), ["x", "l1"]),
              node("l2", l2, "c1"), node("c2", concat(), ["c1", "l2"]), inputs="x")
    _same(g, dense_block(l1, l2), (3, 8, 8))


def test_graph_equals_sequence_and_nests():
    seq = [conv(8, 3, stride=2), relu(), max_pool(2), conv(4, 1)]
    g = graph(*(node(f"n{i}", layer, "x" if i == 0 else f"n{i - 1}")
                for i, layer in enumerate(seq)), inputs="x")
    _same(g, sequential(*seq), (3, 32, 32))
    _same([g, g], [sequential(*seq), sequential(*seq)], (3, 64, 64))


@st.composite
def random_graphs(draw):
    """A random graph and the same network written with sequential,
    residual and concat."""
    nodes, seq = [], []
    last, c, k = "x", 3, 0
    for _ in range(draw(st.integers(1, 5))):
        k += 1
        kind = draw(st.sampled_from(["conv", "res", "cat", "pool"]))
        if kind == "conv":
            layer = conv(draw(st.integers(1, 5)), 3, padding=1)
            nodes.append(node(f"n{k}", layer, last))
            seq.append(layer)
            c = layer.config["out_channels"]
        elif kind == "pool":
            layer = avg_pool(2, 1)
            nodes.append(node(f"n{k}", layer, last))
            seq.append(layer)
        elif kind == "res":
            body = [conv(c, 3, padding=1), relu()]
            nodes += [node(f"n{k}b", body, last), node(f"n{k}", add(), [last, f"n{k}b"])]
            seq.append(residual(body))
        else:
            a, b = conv(2, 1), conv(3, 1)
            nodes += [node(f"n{k}a", a, last), node(f"n{k}b", b, last),
                      node(f"n{k}", concat(), [f"n{k}a", f"n{k}b"])]
            seq.append(concat([a], [b]))
            c = 5
        last = f"n{k}"
    order = draw(st.permutations(nodes))
    return graph(*order, inputs="x", outputs=last), seq


@settings(max_examples=30, deadline=None)
@given(random_graphs())
def test_random_graphs_equal_their_sequences(pair):
    g, seq = pair
    _same(g, seq, (3, 12, 12))


def test_graph_reads_plain_data():
    spec = {"kind": "graph", "inputs": "x", "outputs": "out", "nodes": [
        {"name": "c", "layer": ("conv", 4, 3, {"padding": 1}), "inputs": "x"},
        ("out", "add", ["x", "c"])]}
    g = as_layer(spec)
    assert g.kind == "graph" and [n.name for n in g.children] == ["c", "out"]
    assert summary(g, (4, 6, 6)).total_params == 148
    assert as_layer(("upsample", 2, {"mode": "Bilinear"})).config["mode"] == "bilinear"
    assert as_layer(("GroupNorm", 2)).kind == "group_norm"
    assert as_layer("swish").kind == "silu"


# --------------------------------------------------------------------------
# bad graphs and bad arguments
# --------------------------------------------------------------------------

BAD_GRAPHS = [
    (lambda: graph(node("a", conv(4, 1), "y")), ValueError, "reads 'y'.*neither"),
    (lambda: graph(node("a", conv(4, 1), "x"), node("b", relu(), "aa"), inputs="x"),
     ValueError, "did you mean 'a'"),
    (lambda: graph(node("a", add(), ["x", "c"]), node("b", relu(), "a"),
                   node("c", relu(), "b"), inputs="x"),
     ValueError, "cycle: 'a' -> 'c' -> 'b' -> 'a'$"),
    (lambda: graph(node("a", relu(), "a"), inputs="x"), ValueError, "cycle: 'a' -> 'a'$"),
    (lambda: graph(node("a", relu(), "x"), node("a", relu(), "x"), inputs="x"),
     ValueError, "two nodes are named 'a'"),
    (lambda: graph(node("x", relu(), "x"), inputs="x"), ValueError, "name of the graph"),
    (lambda: graph(node("a", relu(), "x"), node("b", relu(), "x"), inputs="x",
                   outputs="b"), ValueError, "does not depend on the node 'a'"),
    (lambda: graph(node("a", relu(), "x"), inputs="x", outputs="z"), ValueError,
     "output 'z' is not a node"),
    (lambda: graph(node("a", add(), "x"), inputs="x"), ValueError,
     r"reads at least 2 inputs, got 1"),
    (lambda: graph(node("a", relu(), ["x", "x"]), inputs="x"), ValueError,
     r"reads 1 input, got 2"),
    (lambda: graph(node("a", crop(), ["x", "x", "x"]), inputs="x"), ValueError,
     "reads 2 inputs, got 3"),
    (lambda: graph(node("s", split(2), "x"), node("b", relu(), "s"), inputs="x"),
     ValueError, "name a piece, 's:0'"),
    (lambda: graph(node("s", split((1, 2)), "x"), node("b", relu(), "s:2"), inputs="x"),
     ValueError, "has 2 pieces"),
    (lambda: graph(node("a", relu(), "x"), node("b", relu(), "a:0"), inputs="x"),
     ValueError, "has one output"),
    (lambda: graph(node("a", relu(), "x"), node("b", relu(), "a:one"), inputs="x"),
     ValueError, "bad input reference"),
    (lambda: graph(relu()), TypeError, "not a node"),
    (lambda: graph(node("s", split(2), "x"), inputs="x"), ValueError,
     "is a split node with several pieces"),
    (lambda: graph(), ValueError, "at least one node"),
    (lambda: graph(node("a", relu(), "x"), inputs=["x", "y"]), ValueError,
     "exactly one input"),
    (lambda: node("a.b", relu(), "x"), ValueError, "may not contain"),
    (lambda: node("a", relu(), []), TypeError, "inputs must be"),
    (lambda: node(3, relu(), "x"), TypeError, "name must be"),
    (lambda: graph({"name": "a", "layer": "relu"}), ValueError, "keys 'name'"),
]


@pytest.mark.parametrize("make, exc, match", BAD_GRAPHS, ids=lambda v: None)
def test_bad_graphs_are_refused(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


BAD_SHAPES = [
    (graph(node("a", conv(4, 1), "x"), node("s", add(), ["x", "a"]), inputs="x"),
     (3, 8, 8), r"node 's': add of 'x' 3x8x8 and 'a' 4x8x8"),
    (graph(node("a", conv(4, 1), "x"), node("m", mul(), ["a", "x"]), inputs="x"),
     (3, 8, 8), r"mul of 'a' 4x8x8 and 'x' 3x8x8"),
    (graph(node("a", max_pool(2), "x"), node("c", concat(), ["x", "a"]), inputs="x"),
     (3, 8, 8), r"concat along axis 0 of 'x' 3x8x8 and 'a' 3x4x4"),
    (graph(node("a", max_pool(2), "x"), node("c", crop(), ["a", "x"]), inputs="x"),
     (3, 8, 8), r"crop of 'a' 3x4x4 to the size of 'x' 3x8x8"),
    (graph(node("s", split(4), "x"), node("b", relu(), "s:1"), inputs="x"),
     (4, 8, 8), "has 1 pieces"),
    (graph(node("s", split((2, 3)), "x"), node("b", relu(), "s:1"), inputs="x"),
     (4, 8, 8), r"add up to 5, but axis 0 has 4"),
    ([add()], (3, 4, 4), "joins two or more inputs"),
    ([split(2)], (3, 4, 4), "several outputs"),
    ([crop()], (3, 4, 4), "with two inputs"),
    ([crop(5)], (3, 4, 4), "does not fit"),
    ([slice_channels(3, 5)], (3, 4, 4), "is empty"),
    ([slice_channels(0, 1, axis=3)], (3, 4, 4), "out of range"),
    ([pixel_shuffle(2)], (3, 4, 4), "divisible by 4"),
    ([pixel_unshuffle(3)], (3, 4, 4), "divisible by 3"),
    ([pixel_shuffle(2)], (4, 4), r"\(channels, height, width\)"),
    ([group_norm(4)], (6, 4, 4), "divisible by 4"),
    ([channel_shuffle(4)], (6, 4, 4), "divisible by 4"),
    ([reshape((5, -1))], (6, 4, 4), r"cannot reshape 6x4x4 \(96 elements\) to \(5, -1\)"),
    ([reshape((5, 4))], (6, 4, 4), r"to 5x4 \(20 elements\)"),
    ([layer_norm(5)], (6, 4, 4), "does not match"),
    ([upsample(2, mode="bilinear")], (3, 4), "takes a 2-D"),
    ([upsample(size=(2, 3))], (3, 4), "takes a 2-D"),
    ([pad(3, mode="reflect")], (3, 3, 3), "at most 2"),
    ([pad(((1, 1),) * 3)], (3, 3, 3), "takes a 3-D"),
]


@pytest.mark.parametrize("spec, shape, match", BAD_SHAPES, ids=lambda v: None)
def test_bad_shapes_name_the_nodes(spec, shape, match):
    with pytest.raises(ValueError, match=match):
        summary(spec, shape)


BAD_ARGS = [
    (lambda: upsample(), ValueError, "exactly one"),
    (lambda: upsample(2, size=3), ValueError, "exactly one"),
    (lambda: upsample(-1), ValueError, "positive"),
    (lambda: upsample(True), ValueError, "positive"),
    (lambda: upsample(2, mode="cubic"), ValueError, "mode must be one of"),
    (lambda: upsample(2, align_corners=True), ValueError, "linear modes only"),
    (lambda: upsample(2, mode="bilinear", align_corners=1), TypeError, "align_corners"),
    (lambda: upsample(size=0), ValueError, "size must be >= 1"),
    (lambda: pad(-1), ValueError, "padding must be >= 0"),
    (lambda: pad(((1, 2, 3),)), ValueError, "pair"),
    (lambda: pad(1, mode="wrap"), ValueError, "mode must be one of"),
    (lambda: pad(1, value="0"), TypeError, "value"),
    (lambda: crop(0), ValueError, "size must be >= 1"),
    (lambda: crop(2, offset=-1), ValueError, "offset must be >= 0"),
    (lambda: split(0), ValueError, "sizes must be >= 1"),
    (lambda: split([]), ValueError, "must not be empty"),
    (lambda: split(2.0), TypeError, "sizes must be an int"),
    (lambda: slice_channels(0, 2, 0), ValueError, "step must be >= 1"),
    (lambda: slice_channels(0.5), TypeError, "start must be an int"),
    (lambda: pixel_shuffle(0), ValueError, "upscale_factor must be >= 1"),
    (lambda: pixel_unshuffle(1.5), TypeError, "downscale_factor"),
    (lambda: group_norm(0), ValueError, "num_groups must be >= 1"),
    (lambda: instance_norm(1), TypeError, "affine"),
    (lambda: layer_norm(0), ValueError, "normalized_shape"),
    (lambda: layer_norm(bias="yes"), TypeError, "bias"),
    (lambda: concat(axis=0.5), TypeError, "axis must be an int"),
    (lambda: squeeze_excitation(0, 4), ValueError, "input_channels must be >= 1"),
    (lambda: channel_shuffle(0), ValueError, "groups must be >= 1"),
    (lambda: reshape(4), TypeError, "shape must be a non-empty tuple"),
    (lambda: reshape((-1, -1)), ValueError, "at most one -1"),
    (lambda: reshape((0, 4)), ValueError, "positive sizes"),
    (lambda: squeeze_excitation(8, 4, "nope"), ValueError, "unknown layer kind"),
]


@pytest.mark.parametrize("make, exc, match", BAD_ARGS, ids=lambda v: None)
def test_bad_arguments_are_refused(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


TRAINING = [
    ([conv(8, 3, padding=1), group_norm(4)], (3, 8, 8)),
    ([conv(8, 3, padding=1), instance_norm(affine=True)], (3, 8, 8)),
    ([conv(8, 3, padding=1), instance_norm(), conv(2, 1)], (3, 8, 8)),
    ([conv(8, 3, padding=1), layer_norm()], (3, 8, 8)),
    ([conv(8, 3, padding=1), upsample(2, mode="bilinear"), conv(4, 3)], (3, 8, 8)),
    ([conv(8, 3, padding=1), upsample(2), conv(4, 3)], (3, 8, 8)),
    ([conv(8, 3, padding=1), pad(1), crop(6), conv(4, 3)], (3, 8, 8)),
    ([conv(8, 3, padding=1), pixel_shuffle(2), conv(4, 3)], (3, 8, 8)),
    ([conv(8, 3, padding=1), squeeze_excitation(8, 2)], (3, 8, 8)),
    ([conv(8, 3, padding=1), slice_channels(0, 4), conv(4, 3)], (3, 8, 8)),
    ([conv(8, 3, padding=1),
      graph(node("s", split(4), "x"), node("a", conv(4, 3, padding=1), "s:0"),
            node("m", mul(), ["a", "s:1"]), node("c", concat(), ["m", "s:1"]), inputs="x")],
     (3, 8, 8)),
]


@pytest.mark.parametrize("spec, shape", TRAINING, ids=lambda v: None)
def test_training_costs_match_autograd(spec, shape, torch):
    s = summary(spec, shape, batch_size=8)
    # what autograd keeps: views (crops, slices, split pieces) keep the
    # storage they view
    assert s.saved_memory == torch_saved_bytes(spec, shape, torch)
    assert 2 * s.total_backward_macs == torch_backward_flops(spec, shape, torch)


def test_training_costs_of_a_graph():
    g = squeeze_excitation(8, 2)
    s = summary([conv(8, 3, padding=1), g], (3, 6, 6), batch_size=4, convention="full")
    rows = {r.name: r for r in s.rows}
    # the gate's product keeps both of its inputs for the backward pass
    assert rows["1.scale"].saved_memory > 0
    assert rows["1.scale"].input_grad_macs == 2 * 8 * 36
    assert s.training_memory("adam") > 0


# --------------------------------------------------------------------------
# the input rank a network takes
# --------------------------------------------------------------------------

@pytest.mark.parametrize("spec, shape, match", [
    ([conv(8, (3, 3))], (224, 224),
     r"takes a 2-D \(channels, height, width\) input \(its first 2-D layer is '0', "
     r"a conv with kernel_size \(3, 3\)\), got \(224, 224\); the channel axis is "
     r"missing: try \(C, 224, 224\)"),
    ([conv(8, 3), max_pool((2, 2))], (3, 32), r"its first 2-D layer is '1', a max_pool"),
    ([conv(8, (3, 3, 3))], (16, 112, 112), r"takes a 3-D \(channels, depth, height, "
     r"width\) input .* channel axis is missing: try \(C, 16, 112, 112\)"),
    ([conv(8, 3, padding=(1,)), avg_pool((1, 2))], (3, 8, 8, 8), "takes a 2-D"),
    ([conv(8, 3), upsample(2, mode="bilinear")], (3, 16), "an upsample with mode"),
    ([pixel_shuffle(2)], (4, 8, 8, 8), "a pixel_shuffle"),
    (graph(node("a", conv(4, (3, 3)), "x"), node("b", conv(4, 1), "a"), inputs="x"),
     (224, 224), r"its first 2-D layer is 'a'"),
    (graph(node("g", [global_avg_pool(), reshape((-1,)), linear(4), reshape((4, 1, 1))],
                "x"), node("c", conv(4, (3, 3)), "x"), node("m", mul(), ["c", "g"]),
           inputs="x"), (4, 9), r"its first 2-D layer is 'c'"),
    (sequential(residual([conv(4, (1, 5))]), name="net"), (4, 9),
     r"net takes a 2-D .* layer is '0.0'"),
], ids=lambda v: None)
def test_user_networks_refuse_inputs_of_another_rank(spec, shape, match):
    with pytest.raises(ValueError, match=match):
        summary(spec, shape)


def test_networks_without_a_fixed_rank_take_any():
    from pyconvnet.shapes import flatten, linear, receptive_field
    spec = [conv(8, 3), max_pool(2), flatten(), linear(10)]
    assert summary(spec, (3, 32)).output_shape == (10,)
    assert summary(spec, (3, 32, 32)).output_shape == (10,)
    # a tuple after the layout ends fixes nothing
    assert summary([conv(8, 3), flatten(), linear(4), ], (3, 9)).output_shape == (4,)
    with pytest.raises(ValueError, match="channel axis is missing"):
        receptive_field([conv(8, (3, 3))], (32, 32))
    with pytest.raises(ValueError, match=r"the first axis of a shape is the channels"):
        summary([conv(8, 3, in_channels=3)], (224, 224))


def test_cli_reads_a_graph(tmp_path, capsys):
    import argparse
    import json

    from pyconvnet._cli_shapes import add_subcommands
    spec = {"kind": "graph", "inputs": "x", "outputs": "out", "nodes": [
        {"name": "c", "layer": {"kind": "conv", "out_channels": 4, "kernel_size": 3,
                                "padding": 1}, "inputs": "x"},
        {"name": "up", "layer": {"kind": "upsample", "scale_factor": 2,
                                 "mode": "bilinear"}, "inputs": "c"},
        {"name": "out", "layer": {"kind": "conv", "out_channels": 2, "kernel_size": 1},
         "inputs": "up"}]}
    path = tmp_path / "net.json"
    path.write_text(json.dumps(spec))
    parser = argparse.ArgumentParser(prog="python -m pyconvnet")
    sub = parser.add_subparsers(dest="command")
    add_subcommands(sub)
    args = parser.parse_args(["summary", str(path), "--input", "3x8x8", "-f", "json"])
    assert args.func(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["output_shape"] == [2, 16, 16]
    assert data["total_params"] == 4 * 27 + 4 + 2 * 4 + 2
    args = parser.parse_args(["summary", str(path), "--input", "8x8"])
    with pytest.raises(SystemExit) as exc:
        args.func(args)
    assert exc.value.code == 2
    assert "channel axis is missing" in capsys.readouterr().err
