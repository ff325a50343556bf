"""Tests for pyconvnet.architectures against torchvision's published figures."""
import math

import pytest
from conftest import import_oracle
from hypothesis import given, settings
from hypothesis import strategies as st

from pyconvnet.architectures import (
    LENET5_C3_TABLE, canonical_name, default_input_shape, get_architecture,
    lenet5, list_architectures, resnet)
from pyconvnet.shapes import (
    activation, as_layer, batch_norm, concat, conv, dense_block, flatten, global_avg_pool, linear,
    max_pool, receptive_field, relu, residual, summary)

# torchvision's published num_params and GFLOPS (multiply-adds) at 3x224x224
PUBLISHED = {
    "alexnet": (61_100_840, 0.71),
    "vgg11": (132_863_336, 7.61),
    "vgg13": (133_047_848, 11.31),
    "vgg16": (138_357_544, 15.47),
    "vgg19": (143_667_240, 19.63),
    "googlenet": (6_624_904, 1.50),
    "resnet18": (11_689_512, 1.81),
    "resnet34": (21_797_672, 3.66),
    "resnet50": (25_557_032, 4.09),
    "resnet101": (44_549_160, 7.80),
    "resnet152": (60_192_808, 11.51),
    "resnext50_32x4d": (25_028_904, 4.23),
    "wide_resnet50_2": (68_883_240, 11.40),
    "densenet121": (7_978_856, 2.83),
    "mobilenet_v2": (3_504_872, 0.30),
}

# further torchvision models that the same builders produce
PUBLISHED_EXTRA = {
    "vgg11_bn": (132_868_840, 7.61),
    "vgg13_bn": (133_053_736, 11.31),
    "vgg16_bn": (138_365_992, 15.47),
    "vgg19_bn": (143_678_248, 19.63),
    "resnext101_32x8d": (88_791_336, 16.41),
    "resnext101_64x4d": (83_455_272, 15.46),
    "wide_resnet101_2": (126_886_696, 22.75),
    "densenet161": (28_681_000, 7.73),
    "densenet169": (14_149_480, 3.36),
    "densenet201": (20_013_928, 4.29),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED) + sorted(PUBLISHED_EXTRA))
def test_published_params_and_gflops(name):
    params, gmacs = {**PUBLISHED, **PUBLISHED_EXTRA}[name]
    s = summary(name, (3, 224, 224))
    assert s.total_params == params
    assert s.trainable_params == params
    assert s.total_macs == pytest.approx(gmacs * 1e9, rel=0.01)
    assert s.total_flops == 2 * s.total_macs
    assert s.output_shape == (1000,)
    assert sum(r.params for r in s.rows) == s.total_params


def test_receptive_fields_of_alexnet_and_vgg16():
    assert summary("alexnet").receptive_field == 195
    assert summary("vgg16").receptive_field == 212
    assert receptive_field("alexnet").size == 195
    assert receptive_field("vgg16").jump == 32


def test_resnet_receptive_field_is_that_of_the_last_stage():
    s = summary("resnet50")
    layer4 = [r for r in s.rows if r.name.startswith("layer4")][-1]
    assert s.receptive_field == layer4.receptive_field == 427


def test_lenet5_default_is_the_full_connection_version():
    s = summary("lenet5")
    assert s.input_shape == (1, 32, 32)
    assert s.total_params == 61_706
    shapes = {r.name: r.output_shape for r in s.rows}
    assert shapes["C1"] == (6, 28, 28)
    assert shapes["S2"] == (6, 14, 14)
    assert shapes["C3"] == (16, 10, 10)
    assert shapes["S4"] == (16, 5, 5)
    assert shapes["C5"] == (120, 1, 1)
    assert shapes["F6"] == (84,)
    params = {r.name: r.params for r in s.rows}
    assert (params["C1"], params["C3"], params["C5"], params["F6"], params["output"]) \
        == (156, 2416, 48_120, 10_164, 850)
    assert s.receptive_field == 32


def test_lenet5_as_published_in_1998():
    s = summary("lenet5_1998")
    params = {r.name: r.params for r in s.rows}
    assert (params["C1"], params["S2"], params["C3"], params["S4"], params["C5"],
            params["F6"]) == (156, 12, 1516, 32, 48_120, 10_164)
    assert s.trainable_params == 60_000
    assert s.total_params == 60_840          # the RBF output's 84 x 10 are fixed
    assert sum(len(row) for row in LENET5_C3_TABLE) == 60
    variant = summary(lenet5(pooling="trainable"), (1, 32, 32))
    assert variant.total_params == 61_706 + 12 + 32


def test_names_defaults_and_options():
    names = list_architectures()
    for name in PUBLISHED:
        assert name in names
    assert names == sorted(names)
    assert canonical_name("ResNet-50") == "resnet50"
    assert canonical_name("LeNet-5") == "lenet5"
    assert canonical_name("MobileNet v2") == "mobilenet_v2"
    assert canonical_name("ResNeXt-50 32x4d") == "resnext50_32x4d"
    assert canonical_name("Inception v1") == "googlenet"
    assert default_input_shape("alexnet") == (3, 224, 224)
    s = summary(get_architecture("resnet18", num_classes=10), (3, 32, 32))
    assert s.output_shape == (10,)
    assert s.total_params == 11_689_512 - 513 * 990
    assert get_architecture("vgg16").name == "vgg16"


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(ValueError, match="did you mean 'resnet50'") as info:
        canonical_name("resnet5")
    for name in list_architectures():
        assert name in str(info.value)
    with pytest.raises(TypeError, match="must be a str"):
        canonical_name(50)
    with pytest.raises(ValueError, match="depth must be one of"):
        resnet(42)
    with pytest.raises(ValueError, match="c3 must be one of full, sparse"):
        lenet5(c3="dense")


def test_small_inputs():
    # ResNet adapts to 32x32 through its adaptive pooling
    assert summary("resnet18", (3, 32, 32)).output_shape == (1000,)
    with pytest.raises(ValueError, match="vanishes at layer 'features.12'"):
        summary("alexnet", (3, 32, 32))
    with pytest.raises(ValueError, match="vanishes at layer 'C5'"):
        summary("lenet5", (1, 28, 28))


# ---------------------------------------------------------------------------
# PyTorch (on the meta device, no weights allocated) as an independent oracle
# ---------------------------------------------------------------------------

def torch_model(layer, nd, torch, inplace=False):
    """The PyTorch module a spec describes, with lazy input sizes.

    ``nd`` is the number of spatial dimensions; channel counts are inferred
    by PyTorch's lazy modules on the first forward pass. ``inplace`` makes
    the ReLUs in place.
    """
    nn = torch.nn

    class Residual(nn.Module):
        def __init__(self, body, shortcut, act):
            super().__init__()
            self.body, self.shortcut, self.act = body, shortcut, act

        def forward(self, x):
            y = self.body(x) + (x if self.shortcut is None else self.shortcut(x))
            return y if self.act is None else self.act(y)

    class Concat(nn.Module):
        def __init__(self, branches):
            super().__init__()
            self.branches = nn.ModuleList(branches)

        def forward(self, x):
            return torch.cat([b(x) for b in self.branches], 1)

    class Dense(nn.Module):
        def __init__(self, layers):
            super().__init__()
            self.layers = nn.ModuleList(layers)

        def forward(self, x):
            for layer in self.layers:
                x = torch.cat([x, layer(x)], 1)
            return x

    def build(layer):
        kind, cfg = layer.kind, layer.config
        children = [None if c is None else build(c) for c in layer.children]
        if kind == "sequential":
            return nn.Sequential(*children)
        if kind == "residual":
            act = cfg.get("activation")
            return Residual(children[0], children[1],
                            None if act is None else build(act))
        if kind == "concat":
            return Concat(children)
        if kind == "dense_block":
            return Dense(children)
        if kind == "conv":
            return getattr(nn, f"LazyConv{nd}d")(
                cfg["out_channels"], cfg["kernel_size"], cfg["stride"],
                cfg["padding"], cfg["dilation"], cfg["groups"], cfg["bias"])
        if kind == "conv_transpose":
            return getattr(nn, f"LazyConvTranspose{nd}d")(
                cfg["out_channels"], cfg["kernel_size"], cfg["stride"],
                cfg["padding"], cfg["output_padding"], cfg["groups"], cfg["bias"],
                cfg["dilation"])
        if kind == "linear":
            return nn.LazyLinear(cfg["out_features"], cfg["bias"])
        if kind == "batch_norm":
            return getattr(nn, f"LazyBatchNorm{nd}d")(affine=cfg["affine"])
        if kind == "max_pool":
            return getattr(nn, f"MaxPool{nd}d")(
                cfg["kernel_size"], cfg["stride"], cfg["padding"], cfg["dilation"],
                ceil_mode=cfg["ceil_mode"])
        if kind == "avg_pool":
            return getattr(nn, f"AvgPool{nd}d")(
                cfg["kernel_size"], cfg["stride"], cfg["padding"],
                ceil_mode=cfg["ceil_mode"])
        if kind == "adaptive_avg_pool":
            return getattr(nn, f"AdaptiveAvgPool{nd}d")(cfg["output_size"])
        if kind in ("relu", "relu6", "leaky_relu"):
            return {"relu": nn.ReLU, "relu6": nn.ReLU6,
                    "leaky_relu": nn.LeakyReLU}[kind](inplace=inplace)
        return {"relu": nn.ReLU, "relu6": nn.ReLU6, "tanh": nn.Tanh,
                "dropout": nn.Dropout, "flatten": nn.Flatten,
                "identity": nn.Identity}[kind]()

    with torch.device("meta"):
        return build(layer)


def torch_counts(spec, shape, torch):
    """(parameters, FLOPs, output shape) that PyTorch finds for a spec."""
    from torch.utils.flop_counter import FlopCounterMode
    with torch.device("meta"):
        # eval mode: batch norm on a 1x1 map of one sample is legal there
        model = torch_model(spec, len(shape) - 1, torch).eval()
        x = torch.zeros(1, *shape)
        with FlopCounterMode(display=False) as counter:
            y = model(x)
    params = sum(p.numel() for p in model.parameters())
    return params, counter.get_total_flops(), tuple(y.shape[1:])


# one model per builder and block type (meta-device forwards are slow, and
# the other models share these builders)
ORACLE_MODELS = ["lenet5", "alexnet", "vgg11_bn", "googlenet", "resnet18",
                 "resnext50_32x4d", "densenet121", "mobilenet_v2"]


@pytest.mark.parametrize("name", ORACLE_MODELS)
def test_architectures_agree_with_pytorch(name):
    torch = import_oracle("torch")
    spec = get_architecture(name)
    shape = default_input_shape(name)
    params, flops, out = torch_counts(spec, shape, torch)
    s = summary(spec, shape)
    assert s.total_params == params
    assert s.output_shape == out
    # FlopCounterMode counts 2 FLOPs per multiply-add of convolutions and
    # matrix products, exactly the "torchvision" MAC convention
    assert s.total_flops == flops


@st.composite
def random_specs(draw):
    """Small networks with every kind of block."""
    def block():
        kind = draw(st.sampled_from(["conv", "pool", "bn", "res", "cat", "dense"]))
        c = draw(st.integers(1, 4))
        if kind == "conv":
            k = draw(st.integers(1, 4))
            return [conv(draw(st.integers(1, 4)) * 2, k, draw(st.integers(1, 2)),
                         draw(st.integers(0, k // 2 + 1)), draw(st.integers(1, 2)),
                         bias=draw(st.booleans())), relu()]
        if kind == "pool":
            k = draw(st.integers(1, 3))
            return [max_pool(k, draw(st.integers(1, 2)), draw(st.integers(0, k // 2)),
                             ceil_mode=draw(st.booleans()))]
        if kind == "bn":
            return [batch_norm()]
        if kind == "res":
            return [conv(c, 1), residual([conv(c, 3, padding=1), relu(),
                                          conv(c, 3, padding=1)], activation="relu")]
        if kind == "cat":
            return [concat([conv(c, 1)], [conv(c, 3, padding=1)],
                           [max_pool(3, 1, 1)])]
        return [dense_block(*[[batch_norm(), relu(), conv(c, 3, padding=1)]]
                            * draw(st.integers(1, 3)))]

    spec = [x for _ in range(draw(st.integers(1, 5))) for x in block()]
    if draw(st.booleans()):
        spec += [global_avg_pool(), flatten(), linear(draw(st.integers(1, 5)))]
    return spec


@settings(max_examples=25, deadline=None)
@given(spec=random_specs(), channels=st.integers(1, 3), size=st.integers(4, 20))
def test_random_specs_agree_with_pytorch(spec, channels, size):
    torch = import_oracle("torch")
    shape = (channels, size, size)
    try:
        s = summary(spec, shape)
    except ValueError as exc:
        assert "vanishes at layer" in str(exc)
        return
    params, flops, out = torch_counts(as_layer(spec), shape, torch)
    assert (s.total_params, s.total_flops, s.output_shape) == (params, flops, out)


# ---------------------------------------------------------------------------
# the backward pass: FlopCounterMode and autograd's saved tensors
# ---------------------------------------------------------------------------

def corrected_conv_backward_flop(torch):
    """FlopCounterMode's formula for ``convolution_backward`` with the weight
    gradient of a grouped convolution divided by the number of groups.

    PyTorch's own formula (``conv_backward_flop`` in
    ``torch/utils/flop_counter.py``) counts the weight gradient as if every
    input channel met every output channel, which overstates a depthwise
    layer by its channel count; upstream has since fixed it the same way.
    """
    from torch.utils.flop_counter import conv_flop_count

    def t(shape):
        return [shape[1], shape[0]] + list(shape[2:])

    def formula(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding,
                _dilation, transposed, _output_padding, groups, output_mask,
                out_shape, **kwargs):
        count = 0
        if output_mask[0]:
            count += conv_flop_count(grad_out_shape, w_shape, list(out_shape[0]),
                                     not transposed)
        if output_mask[1]:
            grad_w = t(list(out_shape[1]))
            if transposed:
                weights = conv_flop_count(t(grad_out_shape), t(x_shape), grad_w)
            else:
                weights = conv_flop_count(t(x_shape), t(grad_out_shape), grad_w)
            count += weights // groups
        return count

    return formula


def torch_backward_flops(spec, shape, torch):
    """FLOPs FlopCounterMode counts in the backward pass of one sample."""
    from torch.utils.flop_counter import FlopCounterMode
    mapping = {torch.ops.aten.convolution_backward: corrected_conv_backward_flop(torch)}
    with torch.device("meta"):
        model = torch_model(spec, len(shape) - 1, torch).eval()
        y = model(torch.zeros(1, *shape))
        if not y.requires_grad:             # nothing trainable: no backward pass
            return 0
        with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
            y.sum().backward()
    return counter.get_total_flops()


def torch_saved_bytes(spec, shape, torch, batch=8, inplace=False):
    """Bytes of the distinct storages autograd keeps in a training-mode
    forward pass, parameters and buffers excluded (meta tensors: no data)."""
    with torch.device("meta"):
        model = torch_model(spec, len(shape) - 1, torch, inplace=inplace).train()
        x = torch.zeros(batch, *shape)
        model(x[:2])                       # materialise the lazy modules
        state = {t.untyped_storage()._cdata
                 for t in list(model.parameters()) + list(model.buffers())}
        kept = {}

        def pack(tensor):
            storage = tensor.untyped_storage()
            if storage._cdata not in state:
                kept[storage._cdata] = storage.nbytes()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            model(x)
    return sum(kept.values())


@pytest.mark.parametrize("name", ORACLE_MODELS)
def test_backward_macs_agree_with_flop_counter(name):
    torch = import_oracle("torch")
    spec, shape = get_architecture(name), default_input_shape(name)
    s = summary(spec, shape)
    flops = torch_backward_flops(spec, shape, torch)
    # exact in fact; the checked bound is the 1% the calculators promise
    assert 2 * s.total_backward_macs == pytest.approx(flops, rel=0.01)
    assert 2 * s.total_backward_macs == flops
    # the network's input needs no gradient: the first layer computes only
    # its weight gradient
    first = s.rows[0]
    assert first.input_grad_macs == 0 and first.weight_grad_macs == first.macs


def test_grouped_weight_gradient_formula_of_flop_counter_overcounts():
    """The reason for the correction above: PyTorch's own formula."""
    torch = import_oracle("torch")
    from torch.utils.flop_counter import FlopCounterMode
    spec = [conv(32, 3, padding=1, groups=32, bias=False)]
    s = summary(spec, (32, 8, 8))
    with torch.device("meta"):
        model = torch_model(as_layer(spec), 2, torch)
        x = torch.zeros(1, 32, 8, 8, requires_grad=True)
        y = model(x)
        with FlopCounterMode(display=False) as counter:
            y.sum().backward()
    raw = counter.get_total_flops()
    # the input requires a gradient here: its gradient plus 32x the weights'
    assert raw == 2 * s.total_macs + 32 * 2 * s.total_weight_grad_macs
    assert torch_backward_flops(as_layer(spec), (32, 8, 8), torch) == \
        2 * s.total_weight_grad_macs


@settings(max_examples=25, deadline=None)
@given(spec=random_specs(), channels=st.integers(1, 3), size=st.integers(4, 20))
def test_random_specs_backward_macs_agree_with_pytorch(spec, channels, size):
    torch = import_oracle("torch")
    shape = (channels, size, size)
    try:
        s = summary(spec, shape)
    except ValueError as exc:
        assert "vanishes at layer" in str(exc)
        return
    assert 2 * s.total_backward_macs == torch_backward_flops(as_layer(spec), shape, torch)


@pytest.mark.parametrize("groups, stride, dilation, padding, output_padding", [
    (1, 1, 1, 0, 0), (1, 2, 1, 1, 1), (2, 3, 2, 2, 0), (4, 2, 1, 0, 1)])
def test_transposed_convolution_backward_agrees_with_pytorch(
        groups, stride, dilation, padding, output_padding):
    torch = import_oracle("torch")
    from pyconvnet.shapes import conv_transpose
    spec = as_layer([conv(8, 3, padding=1), relu(),
                     conv_transpose(4, 3, stride, padding, output_padding, dilation,
                                    groups)])
    s = summary(spec, (4, 7, 7))
    assert 2 * s.total_backward_macs == torch_backward_flops(spec, (4, 7, 7), torch)
    row = s.rows[-1]
    assert row.input_grad_macs == row.weight_grad_macs == row.macs


# PyTorch keeps a few tensors that the backward pass needs only the shape of
# (the input of a pooling layer that no other layer keeps); the calculators
# count what the derivation needs, hence the tolerance
SAVED_TOLERANCE = 0.15


@pytest.mark.parametrize("name", ORACLE_MODELS)
def test_saved_memory_agrees_with_autograd(name):
    torch = import_oracle("torch")
    spec, shape = get_architecture(name), default_input_shape(name)
    s = summary(spec, shape, batch_size=8)
    kept = torch_saved_bytes(spec, shape, torch, batch=8)
    assert s.saved_memory == pytest.approx(kept, rel=SAVED_TOLERANCE)
    assert s.saved_memory <= kept       # nothing beyond what PyTorch keeps
    assert sum(r.saved_memory for r in s.rows) == s.saved_memory


LEAKY_NET = [conv(8, 3, padding=1), batch_norm(), activation("leaky_relu"),
             conv(8, 3, padding=1), activation("leaky_relu"), max_pool(2),
             flatten(), linear(10)]


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "leaky"])
def test_saved_memory_with_inplace_activations_agrees_with_autograd(name):
    torch = import_oracle("torch")
    if name == "leaky":
        spec, shape = as_layer(LEAKY_NET), (3, 16, 16)
    else:
        spec, shape = get_architecture(name), default_input_shape(name)
    s = summary(spec, shape, batch_size=8, inplace=True)
    kept = torch_saved_bytes(spec, shape, torch, batch=8, inplace=True)
    assert s.saved_memory == pytest.approx(kept, rel=SAVED_TOLERANCE)
    plain = summary(spec, shape, batch_size=8)
    if name == "leaky":
        # in place, a leaky ReLU keeps its output, which is its input's storage
        assert s.saved_memory == kept
        # out of place, PyTorch also keeps the max pool's input, which only
        # that pool reads (8 x 8x16x16 floats)
        assert plain.saved_memory + 8 * 8 * 16 * 16 * 4 == torch_saved_bytes(
            spec, shape, torch, batch=8)
        assert s.saved_memory < plain.saved_memory
    else:
        # a ReLU keeps its output either way, and PyTorch's in-place ReLU6
        # keeps a copy of its input
        assert s.saved_memory == plain.saved_memory


def test_training_memory_agrees_with_autograd_and_optimizer_state():
    torch = import_oracle("torch")
    spec, shape = get_architecture("resnet18"), (3, 64, 64)
    s = summary(spec, shape, batch_size=8)
    kept = torch_saved_bytes(spec, shape, torch, batch=8)
    with torch.device("meta"):
        model = torch_model(spec, 2, torch)
        model(torch.zeros(2, *shape))
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    for optimizer, copies in (("sgd", 0), ("momentum", 1), ("adam", 2)):
        expected = params * (2 + copies) + kept
        assert s.training_memory(optimizer) == pytest.approx(expected, rel=0.15)


# ---------------------------------------------------------------------------
# counting presets: the figures other tools publish
# ---------------------------------------------------------------------------

# ptflops' README (pytorch backend), GMac at 3x224x224, two decimals
PTFLOPS = {
    "alexnet": 0.72, "vgg11": 7.63, "vgg13": 11.34, "vgg16": 15.5, "vgg19": 19.67,
    "vgg11_bn": 7.64, "vgg13_bn": 11.36, "vgg16_bn": 15.53, "vgg19_bn": 19.7,
    "resnet18": 1.82, "resnet34": 3.68, "resnet50": 4.12, "resnet101": 7.85,
    "resnet152": 11.58, "densenet121": 2.88, "densenet169": 3.42,
    "densenet201": 4.37, "densenet161": 7.82,
}


@pytest.mark.parametrize("name", sorted(PTFLOPS))
def test_ptflops_preset_reproduces_its_table(name):
    s = summary(name, preset="ptflops")
    assert round(s.total_macs / 1e9, 2) == PTFLOPS[name]
    assert s.convention == "ptflops"


def test_fvcore_and_torchvision_presets():
    # fvcore: batch norm 2 per element (affine), adaptive pooling 1 per input
    # element, no biases: ResNet-50's 4.11 G
    fv = summary("resnet50", preset="fvcore")
    assert fv.total_macs == 4_111_512_576
    tv = summary("resnet50", preset="torchvision")
    assert tv.total_macs == summary("resnet50").total_macs
    bn = sum(math.prod(r.output_shape) for r in tv.rows if r.kind == "batch_norm")
    assert fv.total_macs - tv.total_macs == 2 * bn + 2048 * 7 * 7
    assert summary("resnet50", preset="full").total_macs == \
        summary("resnet50", convention="full").total_macs


def test_count_switches_override_a_preset():
    base = summary("vgg16")
    with_bias = summary("vgg16", count={"bias": True})
    biases = sum(math.prod(r.output_shape) for r in base.rows
                 if r.kind in ("conv", "linear"))
    assert with_bias.total_macs == base.total_macs + biases
    assert with_bias.convention == "torchvision (bias=True)"
    with pytest.raises(ValueError, match="unknown counting switch 'biases'"):
        summary("vgg16", count={"biases": True})
    with pytest.raises(ValueError, match="preset must be one of torchvision, full, "
                                         "fvcore, ptflops"):
        summary("vgg16", preset="thop")


def resnet_v1(layer):
    """ResNet v1 as published: a bottleneck strides in its first 1x1
    convolution (torchvision's v1.5 strides in the 3x3)."""
    import dataclasses
    kids = tuple(None if c is None else resnet_v1(c) for c in layer.children)
    names = {c.name: c for c in kids if c is not None}
    if {"conv1", "conv2", "conv3"} <= set(names):
        stride = names["conv2"].config["stride"]
        kids = tuple(
            dataclasses.replace(c, config={**c.config, "stride": stride if
                                           c.name == "conv1" else 1})
            if c is not None and c.name in ("conv1", "conv2") else c for c in kids)
    return dataclasses.replace(layer, children=kids)


def test_resnet_paper_figure_is_resnet_v1():
    s = summary(resnet_v1(get_architecture("resnet50")), (3, 224, 224))
    assert s.total_params == 25_557_032
    # 3.86 G multiply-adds, which the paper states as "3.8 x 10^9 FLOPs"
    assert s.total_macs == 3_857_973_248
    assert math.floor(s.total_macs / 1e8) == 38


@settings(max_examples=25, deadline=None)
@given(spec=random_specs(), channels=st.integers(1, 3), size=st.integers(4, 12),
       batch=st.integers(2, 3))
def test_random_specs_saved_memory_agrees_with_autograd(spec, channels, size, batch):
    """Never more than autograd keeps, and less only by the inputs of pooling
    layers, which PyTorch keeps for their shape."""
    torch = import_oracle("torch")
    shape = (channels, size, size)
    try:
        s = summary(spec, shape, batch_size=batch)
    except ValueError as exc:
        assert "vanishes at layer" in str(exc)
        return
    kept = torch_saved_bytes(as_layer(spec), shape, torch, batch=batch)
    pool_inputs = sum(batch * math.prod(r.input_shape) * 4 for r in s.rows
                      if r.kind in ("max_pool", "avg_pool", "adaptive_avg_pool"))
    assert s.saved_memory <= kept <= s.saved_memory + pool_inputs


# ---------------------------------------------------------------------------
# networks of 2016-2022: torchvision's definitions as the oracle
# ---------------------------------------------------------------------------

# torchvision's published num_params and GFLOPS (multiply-adds, "_ops"),
# and the MACs that fvcore 0.1.5's FlopCountAnalysis counts on the modules
# of torchvision_models.py at the default input (3x224x224; 1x572x572 for
# U-Net, whose count is the paper's: torchvision has no U-Net)
MODERN = {
    "squeezenet1_0": (1_248_424, 0.819, 819_093_576),
    "squeezenet1_1": (1_235_496, 0.349, 349_320_936),
    "regnet_x_400mf": (5_495_976, 0.414, 420_179_472),
    "regnet_y_400mf": (4_344_144, 0.402, 410_406_088),
    "mobilenet_v3_large": (5_483_032, 0.217, 226_033_824),
    "mobilenet_v3_small": (2_542_856, 0.057, 59_649_536),
    "efficientnet_b0": (5_288_548, 0.386, 401_659_392),
    "shufflenet_v2_x1_0": (2_278_604, 0.145, 148_808_392),
    "convnext_tiny": (28_589_128, 4.456, 4_470_437_376),
    "unet": (31_030_658, None, 150_428_424_448),
}


def layer_scale_rows(s):
    """ConvNeXt's layer scales: depthwise 1x1 convolutions in the specs, a
    product with a parameter in torchvision, which PyTorch's FlopCounterMode
    (and fvcore) do not count."""
    return [r for r in s.rows if r.name.endswith(".layer_scale")]


def torchvision_counts(name, torch):
    """(parameters per module, parameters, FLOPs, output shape) of the
    torchvision module of a built-in network, on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode
    from torchvision_models import torchvision_models
    with torch.device("meta"):
        model = torchvision_models(torch)[name]().eval()
        x = torch.zeros(1, *default_input_shape(name))
        with FlopCounterMode(display=False) as counter:
            y = model(x)
    own = sorted(n for n in (sum(p.numel() for p in m.parameters(recurse=False))
                             for m in model.modules()) if n)
    return own, sum(own), counter.get_total_flops(), tuple(y.shape[1:])


@pytest.mark.parametrize("name", sorted(MODERN))
def test_modern_networks_have_torchvision_params_and_fvcore_macs(name):
    params, gmacs, fvcore = MODERN[name]
    s = summary(name)
    assert s.total_params == s.trainable_params == params
    assert sum(r.params for r in s.rows) == params
    if gmacs is not None:
        assert s.total_macs == pytest.approx(gmacs * 1e9, rel=0.01)
    assert summary(name, preset="fvcore").total_macs == pytest.approx(fvcore, rel=0.01)


@pytest.mark.parametrize("name", sorted(MODERN))
def test_modern_networks_agree_with_torchvision_modules(name):
    torch = import_oracle("torch")
    own, params, flops, out = torchvision_counts(name, torch)
    assert params == MODERN[name][0]
    s = summary(name)
    # layer for layer: the parameters of each row are those of one module
    assert sorted(r.params for r in s.rows if r.params) == own
    assert s.total_flops == flops + 2 * sum(r.macs for r in layer_scale_rows(s))
    assert s.output_shape == out


def test_regnet_stages_follow_torchvision():
    torch = import_oracle("torch")
    from torchvision_models import regnet_stages as reference
    from pyconvnet.architectures import regnet_stages
    for args in [(22, 24, 24.48, 2.54, 16), (16, 48, 27.89, 2.09, 8),
                 (16, 56, 35.73, 2.28, 16), (14, 56, 38.84, 2.4, 16),
                 (21, 80, 42.63, 2.66, 24), (20, 232, 115.89, 2.53, 232)]:
        assert regnet_stages(*args) == reference(torch, *args)
    with pytest.raises(ValueError, match="w_m > 1"):
        regnet_stages(16, 48, 27.89, 1.0, 8)


def test_squeezenet_versions_and_names():
    from pyconvnet.architectures import squeezenet
    assert canonical_name("SqueezeNet 1.1") == "squeezenet1_1"
    assert canonical_name("RegNetX-400MF") == "regnet_x_400mf"
    with pytest.raises(ValueError, match="version must be one of 1_0, 1_1"):
        squeezenet("1_2")
    s = summary("squeezenet1_1")
    names = [r.name for r in s.rows]
    assert "features.3.squeeze" in names and "features.3.expand.3x3.conv" in names
    shapes = {r.name: r.output_shape for r in s.rows}
    assert shapes["features.3.expand.cat"] == (128, 55, 55)


@pytest.mark.parametrize("name", sorted(MODERN))
def test_modern_networks_backward_macs_agree_with_flop_counter(name):
    torch = import_oracle("torch")
    from torch.utils.flop_counter import FlopCounterMode
    from torchvision_models import torchvision_models
    mapping = {torch.ops.aten.convolution_backward: corrected_conv_backward_flop(torch)}
    with torch.device("meta"):
        model = torchvision_models(torch)[name]().eval()
        y = model(torch.zeros(1, *default_input_shape(name)))
        with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
            y.sum().backward()
    s = summary(name)
    scale = sum(r.input_grad_macs + r.weight_grad_macs for r in layer_scale_rows(s))
    assert 2 * (s.total_backward_macs - scale) == counter.get_total_flops()


@pytest.mark.parametrize("name", sorted(MODERN))
def test_modern_networks_saved_memory_agrees_with_autograd(name):
    torch = import_oracle("torch")
    from torchvision_models import torchvision_models
    shape = default_input_shape(name)
    with torch.device("meta"):
        model = torchvision_models(torch)[name]().train()
        state = {t.untyped_storage()._cdata
                 for t in list(model.parameters()) + list(model.buffers())}
        kept = {}

        def pack(tensor):
            storage = tensor.untyped_storage()
            if storage._cdata not in state:
                kept[storage._cdata] = storage.nbytes()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            model(torch.zeros(8, *shape))
    s = summary(name, batch_size=8)
    assert s.saved_memory == pytest.approx(sum(kept.values()), rel=SAVED_TOLERANCE)
    assert s.saved_memory <= sum(kept.values())


def test_unet_is_the_paper_network():
    from pyconvnet.architectures import unet
    s = summary("unet")
    assert s.input_shape == (1, 572, 572) and s.output_shape == (2, 388, 388)
    shapes = {r.name: r.output_shape for r in s.rows}
    # figure 1 of the paper: each encoder map is cropped to its decoder's size
    assert [shapes[f"down{k}.relu2"][1:] for k in (1, 2, 3, 4, 5)] == \
        [(568, 568), (280, 280), (136, 136), (64, 64), (28, 28)]
    assert [shapes[f"crop{k}"] for k in (1, 2, 3, 4)] == \
        [(64, 392, 392), (128, 200, 200), (256, 104, 104), (512, 56, 56)]
    assert shapes["cat1"] == (128, 392, 392)
    assert sum(r.params for r in s.rows if r.kind == "conv_transpose") == \
        sum(4 * c * c // 2 + c // 2 for c in (1024, 512, 256, 128))
    small = summary(unet(3, 10, widths=(8, 16, 32)), (3, 188, 188))
    assert small.output_shape == (10, 148, 148)
    with pytest.raises(ValueError, match="in_channels=1 does not match the 3"):
        summary("unet", (3, 572, 572))
    with pytest.raises(ValueError, match="at least two levels"):
        unet(widths=(64,))


def test_command_line_lists_and_summarises_the_new_networks(capsys):
    from pyconvnet.__main__ import main
    assert main(["list"]) in (0, None)
    out = capsys.readouterr().out
    for name in MODERN:
        assert name in out
    assert "1x572x572" in out
    assert main(["summary", "unet"]) in (0, None)
    out = capsys.readouterr().out
    assert "crop1" in out and "2x388x388" in out and "31,030,658" in out
    assert main(["summary", "convnext_tiny", "--preset", "fvcore"]) in (0, None)
    assert "28,589,128" in capsys.readouterr().out
