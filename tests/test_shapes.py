"""Tests for pyconvnet.shapes: single-layer calculators, specs, summaries, receptive fields."""
import csv
import io
import json
import math

import numpy as np
import pytest
from conftest import import_oracle
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pyconvnet import shapes
from pyconvnet.functional import max_pool1d
from pyconvnet.shapes import (
    InputTooSmallError, Layer, activation, activation_memory, as_layer, batch_norm,
    compare_bottleneck, compare_depthwise_separable, compare_grouped,
    compare_stacked, concat, conv, conv_flops, conv_macs, conv_output_size,
    conv_params, conv_transpose, conv_transpose_output_size, dense_block, dropout,
    dtype_size, flatten, linear, linear_macs, linear_params, max_pool,
    parse_shape, pool_output_size, receptive_field, relu, residual,
    same_padding, summary)


# ---------------------------------------------------------------------------
# independent oracles
# ---------------------------------------------------------------------------

def brute_force_windows(n, k, s, p, d, ceil_mode=False, pool=False):
    """Count window positions by walking them over the padded input."""
    length, extent = n + 2 * p, d * (k - 1) + 1
    count, start = 0, 0
    while start + extent <= length:          # windows fully inside
        count += 1
        start += s
    covered_to = (start - s) + extent         # one past the last covered position
    if ceil_mode and covered_to < length:     # positions left: one partial window
        if not pool or start < n + p:         # pools drop one starting in the right padding
            count += 1
    return count


def brute_force_field(windows):
    """Receptive field of output unit 0 by mapping index intervals back to the input.

    ``windows`` are (kernel, stride, padding, dilation); returns (size, centre).
    """
    lo, hi = 0, 0
    for k, s, p, d in reversed(windows):
        lo, hi = lo * s - p, hi * s - p + d * (k - 1)
    return hi - lo + 1, (lo + hi) / 2


# ---------------------------------------------------------------------------
# output sizes: known answers from the notes
# ---------------------------------------------------------------------------

def test_cs231n_ten_5x5_filters_example():
    # 32x32x3 input, ten 5x5 filters, stride 1, pad 2 -> 32x32x10 and 760 params
    assert conv_output_size(32, 5, stride=1, padding=2) == 32
    assert conv_params(3, 10, 5) == 760
    s = summary([conv(10, 5, 1, 2)], (3, 32, 32))
    assert s.output_shape == (10, 32, 32)
    assert s.total_params == 760


@pytest.mark.parametrize("stride, expected", [(1, 5), (2, 3)])
def test_5x5_input_3x3_kernel_padding_1(stride, expected):
    # the notes give 3x3 for stride 1 in one place and 2x2 for stride 2: both wrong
    assert conv_output_size(5, 3, stride=stride, padding=1) == expected
    assert conv_output_size((5, 5), 3, stride, 1) == (expected, expected)


@pytest.mark.parametrize("w, f, p, s, expected", [
    (7, 3, 0, 1, 5),          # cs231n: 7x7 input, 3x3 filter
    (7, 3, 0, 2, 3),
    (32, 5, 0, 1, 28),        # LeNet C1
    (227, 11, 0, 4, 55),      # AlexNet as in the paper's arithmetic
    (224, 11, 2, 4, 55),      # AlexNet in torchvision
    (224, 7, 3, 2, 112),      # ResNet stem
    (28, 2, 0, 2, 14),        # 2x2 pooling
    (10, 3, 1, 1, 10),        # 'same' 3x3
])
def test_w_minus_f_plus_2p_over_s_plus_1(w, f, p, s, expected):
    assert conv_output_size(w, f, stride=s, padding=p) == expected
    assert conv_output_size(w, f, stride=s, padding=p) == (w - f + 2 * p) // s + 1


def test_explain_gives_the_worked_arithmetic():
    res = conv_output_size(32, 5, padding=2, explain=True)
    assert res.output == 32 and res.fits
    assert str(res) == "(32 + 2*2 - 5)/1 + 1 = 32"


def test_explain_with_dilation_shows_the_effective_kernel():
    res = conv_output_size(32, 3, dilation=2, explain=True)
    assert res.steps[0] == "effective kernel = 2*(3 - 1) + 1 = 5"
    assert res.output == 28


def test_stride_that_does_not_fit_is_reported_with_paddings_that_would():
    # cs231n: 7x7 input, 3x3 filter, stride 3 doesn't fit
    res = conv_output_size(7, 3, stride=3, explain=True)
    assert res.output == 2 and not res.fits
    text = str(res)
    assert "does not fit" in text
    assert "padding that fits: 1 (output 3)" in text
    assert conv_output_size(7, 3, stride=3, padding=1) == 3
    with pytest.raises(ValueError, match="strict=True.*does not tile"):
        conv_output_size(7, 3, stride=3, strict=True)
    assert conv_output_size(7, 3, stride=2, strict=True) == 3


def test_no_symmetric_padding_case_suggests_total_padding():
    res = conv_output_size(8, 3, stride=2, explain=True)
    assert "no symmetric padding fits" in str(res)
    assert "total padding of 1" in str(res)


def test_tuple_inputs_2d_and_3d():
    assert conv_output_size((224, 200), 7, 2, 3) == (112, 100)
    assert conv_output_size((16, 32, 32), (3, 5, 5), 1, (1, 2, 2)) == (16, 32, 32)
    res = conv_output_size((224, 200), 7, 2, 3, explain=True)
    assert res.output == (112, 100)
    assert any(line.startswith("H: ") for line in res.steps)
    assert any(line.startswith("W: ") for line in res.steps)


def test_ceil_mode_rounds_up():
    assert conv_output_size(8, 3, stride=2) == 3
    assert conv_output_size(8, 3, stride=2, ceil_mode=True) == 4


def test_same_and_valid_padding_strings():
    assert conv_output_size(17, 4, padding="same") == 17
    assert conv_output_size(17, 4, padding="valid") == 14
    assert conv_output_size((9, 9), (3, 5), padding="same", dilation=2) == (9, 9)


def test_same_padding_split_like_pytorch():
    assert same_padding(3) == (1, 1)
    assert same_padding(4) == (1, 2)
    assert same_padding(5, dilation=2) == (4, 4)
    assert same_padding((2, 3)) == ((0, 1), (1, 1))


def test_pool_output_sizes():
    assert pool_output_size(112, 3, 2, ceil_mode=True) == 56       # GoogLeNet
    assert pool_output_size(112, 3, 2, padding=1) == 56            # ResNet
    assert pool_output_size(14, 2, ceil_mode=True) == 7
    assert pool_output_size(28, 2) == 14                           # stride = kernel
    # ceil_mode would add a window starting in the right padding: dropped
    assert conv_output_size(5, 2, 3, 1, ceil_mode=True) == 3
    assert pool_output_size(5, 2, 3, 1, ceil_mode=True) == 2
    res = pool_output_size(5, 2, 3, 1, ceil_mode=True, explain=True)
    assert "dropped" in str(res)


def test_transposed_convolution_sizes():
    assert conv_transpose_output_size(16, 4, stride=2, padding=1) == 32
    assert conv_transpose_output_size(4, 3, 2, 1, output_padding=1) == 8
    assert conv_transpose_output_size(4, 3, 2, 1) == 7
    assert conv_transpose_output_size((4, 5), 3, dilation=2) == (8, 9)
    res = conv_transpose_output_size(4, 3, 2, 1, 1, explain=True)
    assert str(res) == "(4 - 1)*2 - 2*1 + 1*(3 - 1) + 1 + 1 = 8"


# ---------------------------------------------------------------------------
# output sizes: properties
# ---------------------------------------------------------------------------

window = dict(n=st.integers(1, 40), k=st.integers(1, 7), s=st.integers(1, 5),
              p=st.integers(0, 4), d=st.integers(1, 3))


@given(**window, ceil_mode=st.booleans())
def test_conv_output_size_matches_brute_force(n, k, s, p, d, ceil_mode):
    if n + 2 * p < d * (k - 1) + 1:
        with pytest.raises(ValueError, match="larger than the padded input"):
            conv_output_size(n, k, s, p, d, ceil_mode)
        return
    assert conv_output_size(n, k, s, p, d, ceil_mode) == \
        brute_force_windows(n, k, s, p, d, ceil_mode)


@given(**window, ceil_mode=st.booleans())
def test_pool_output_size_matches_brute_force(n, k, s, p, d, ceil_mode):
    assume(p <= k // 2 and n + 2 * p >= d * (k - 1) + 1)
    assert pool_output_size(n, k, s, p, d, ceil_mode) == \
        brute_force_windows(n, k, s, p, d, ceil_mode, pool=True)


@given(**window)
def test_explain_and_fits_agree_with_the_size(n, k, s, p, d):
    assume(n + 2 * p >= d * (k - 1) + 1)
    res = conv_output_size(n, k, s, p, d, explain=True)
    assert res.output == conv_output_size(n, k, s, p, d)
    assert res.fits == ((n + 2 * p - d * (k - 1) - 1) % s == 0)
    assert res.steps[-1 if res.fits else (1 if d != 1 else 0)].endswith(
        f"= {res.output}")


@given(n=st.integers(1, 40), k=st.integers(1, 7), d=st.integers(1, 3))
def test_same_padding_keeps_the_size(n, k, d):
    left, right = same_padding(k, d)
    assert left + right == d * (k - 1)
    assert conv_output_size(n, k, padding="same", dilation=d) == n


@given(n=st.integers(1, 30), k=st.integers(1, 6), s=st.integers(1, 4),
       p=st.integers(0, 3))
def test_transposed_convolution_inverts_a_fitting_convolution(n, k, s, p):
    assume(n + 2 * p >= k and (n + 2 * p - k) % s == 0)
    out = conv_output_size(n, k, s, p)
    assume(out > 0 and (out - 1) * s + k - 2 * p > 0)
    assert conv_transpose_output_size(out, k, s, p) == n


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 20), w=st.integers(1, 20), kh=st.integers(1, 5),
       kw=st.integers(1, 5), s=st.integers(1, 4), p=st.integers(0, 3),
       d=st.integers(1, 3))
def test_conv_output_size_agrees_with_torch_conv2d(h, w, kh, kw, s, p, d):
    torch = import_oracle("torch")
    import torch.nn.functional as F
    x = torch.zeros(1, 1, h, w)
    weight = torch.zeros(1, 1, kh, kw)
    fits = all(n + 2 * p >= d * (k - 1) + 1 for n, k in ((h, kh), (w, kw)))
    if not fits:
        with pytest.raises(ValueError):
            conv_output_size((h, w), (kh, kw), s, p, d)
        return
    expected = tuple(F.conv2d(x, weight, stride=s, padding=p, dilation=d).shape[2:])
    assert conv_output_size((h, w), (kh, kw), s, p, d) == expected


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 20), k=st.integers(1, 5), s=st.integers(1, 4),
       p=st.integers(0, 2), d=st.integers(1, 2), ceil_mode=st.booleans())
def test_pool_output_size_agrees_with_torch_max_pool(n, k, s, p, d, ceil_mode):
    # Windows longer than the input included: in ceil mode PyTorch keeps one.
    torch = import_oracle("torch")
    import torch.nn.functional as F
    assume(p <= k // 2)
    try:
        y = F.max_pool1d(torch.zeros(1, 1, n), k, s, p, d, ceil_mode=ceil_mode)
    except RuntimeError:
        with pytest.raises(ValueError):
            pool_output_size(n, k, s, p, d, ceil_mode)
        return
    assert pool_output_size(n, k, s, p, d, ceil_mode) == y.shape[-1]
    ours = max_pool1d(np.zeros((1, 1, n)), k, s, p, d, ceil_mode=ceil_mode)
    assert ours.shape[-1] == y.shape[-1]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 12), k=st.integers(1, 5), s=st.integers(1, 4),
       p=st.integers(0, 3), op=st.integers(0, 3), d=st.integers(1, 3))
def test_conv_transpose_output_size_agrees_with_torch(n, k, s, p, op, d):
    torch = import_oracle("torch")
    import torch.nn.functional as F
    assume(op < max(s, d))
    assume((n - 1) * s - 2 * p + d * (k - 1) + op + 1 >= 1)
    y = F.conv_transpose1d(torch.zeros(1, 1, n), torch.zeros(1, 1, k), stride=s,
                           padding=p, output_padding=op, dilation=d)
    assert conv_transpose_output_size(n, k, s, p, op, d) == y.shape[-1]


@settings(max_examples=40, deadline=None)
@given(cin=st.integers(1, 8), cout_per_group=st.integers(1, 4),
       groups=st.integers(1, 4), k=st.integers(1, 5), bias=st.booleans())
def test_conv_params_agree_with_torch(cin, cout_per_group, groups, k, bias):
    torch = import_oracle("torch")
    cin, cout = cin * groups, cout_per_group * groups
    with torch.device("meta"):
        layer = torch.nn.Conv2d(cin, cout, k, groups=groups, bias=bias)
    assert conv_params(cin, cout, k, groups, bias) == \
        sum(p.numel() for p in layer.parameters())


# ---------------------------------------------------------------------------
# parameters, MACs, memory, comparisons
# ---------------------------------------------------------------------------

def test_param_and_mac_counts():
    assert conv_params(256, 256, 3, bias=False) == 589_824
    assert conv_params(3, 64, (7, 7), bias=False) == 9408
    assert conv_params(16, 8, (3,)) == 8 * 16 * 3 + 8
    assert conv_params(32, 32, 3, groups=32, bias=False) == 288
    assert conv_macs(3, 64, 7, 112) == 9408 * 112 * 112
    assert conv_macs(64, 64, (3, 3), (56, 56), groups=2) == 18432 * 56 * 56
    assert conv_flops(3, 10, 5, 32) == 2 * 750 * 1024
    assert linear_params(9216, 4096) == 37_752_832
    assert linear_params(84, 10, bias=False) == linear_macs(84, 10) == 840


def test_activation_memory_and_dtypes():
    assert activation_memory((10, 32, 32)) == 40960
    assert activation_memory("10x32x32", dtype="float16") == 20480
    assert activation_memory((10,), dtype="float64", batch_size=8) == 640
    assert dtype_size("torch.bfloat16") == 2
    assert dtype_size(1) == 1
    import numpy as np
    assert dtype_size(np.float64) == 8
    assert dtype_size(np.dtype("int8")) == 1


def test_bottleneck_comparison_from_the_notes():
    c = compare_bottleneck(256, 64, 3)
    assert c.baseline_params == 589_824 != 524_288     # the notes print 524,288
    assert c.alternative_params == 69_632
    assert [n for _, n in c.parts] == [16_384, 36_864, 16_384]
    assert c.saving == 589_824 - 69_632
    assert c.ratio == pytest.approx(589_824 / 69_632)
    text = str(c)
    assert "589,824" in text and "69,632" in text and "88.2%" in text
    assert c.baseline_macs is None
    with_macs = compare_bottleneck(256, 64, 3, output_size=14)
    assert with_macs.baseline_macs == 589_824 * 196
    assert with_macs.alternative_macs == 69_632 * 196
    assert "MACs" in str(with_macs)


def test_other_comparisons():
    dw = compare_depthwise_separable(32, 64, 3)
    assert dw.baseline_params == 32 * 64 * 9
    assert dw.alternative_params == 32 * 9 + 32 * 64
    assert dw.alternative_params / dw.baseline_params == pytest.approx(1 / 64 + 1 / 9)
    g = compare_grouped(128, 256, 3, groups=4)
    assert g.ratio == 4
    st5 = compare_stacked(64, 5, 3)
    assert (st5.baseline_params, st5.alternative_params) == (64 * 64 * 25, 2 * 64 * 64 * 9)
    st7 = compare_stacked(64, 7, 3, bias=True)
    assert len(st7.parts) == 3
    assert st7.baseline_params == 64 * 64 * 49 + 64


# ---------------------------------------------------------------------------
# specs and summaries
# ---------------------------------------------------------------------------

def test_spec_forms_are_equivalent():
    built = [conv(6, 5), relu(), max_pool(2), flatten(), linear(10)]
    tuples = [("conv", 6, 5), "relu", ("max_pool", 2), "flatten", ("linear", 10)]
    dicts = [{"kind": "Conv2d", "out_channels": 6, "kernel_size": 5},
             {"kind": "ReLU"}, {"kind": "maxpool", "kernel_size": 2},
             {"kind": "flatten"}, {"type": "fc", "out_features": 10}]
    results = [summary(spec, (1, 12, 12)) for spec in (built, tuples, dicts)]
    for s in results:
        assert s.output_shape == (10,)
        assert s.total_params == 156 + (6 * 4 * 4) * 10 + 10
    assert len({r.total_macs for r in results}) == 1


def test_layer_specs_hook():
    class TinyNet:
        def layer_specs(self):
            return [("conv", 4, 3, {"padding": 1}), "relu", ("max_pool", 2)]

    s = summary(TinyNet(), "1x8x8")
    assert s.name == "TinyNet"
    assert s.output_shape == (4, 4, 4)
    assert s.total_params == 40


def test_residual_concat_and_dense_blocks():
    spec = [
        conv(8, 3, padding=1, bias=False), batch_norm(),
        residual([conv(8, 3, padding=1), relu(), conv(8, 3, padding=1)],
                 activation="relu", name="block"),
        residual([conv(16, 3, 2, 1)], [conv(16, 1, 2)], name="down"),
        concat([conv(4, 1)], [conv(2, 1), conv(6, 3, padding=1)],
               [max_pool(3, 1, 1)], name="inception"),
        dense_block(*[[batch_norm(), relu(), conv(4, 3, padding=1)]] * 3,
                    name="dense"),
    ]
    s = summary(spec, (3, 16, 16))
    names = [r.name for r in s.rows]
    assert "block.add" in names and "block.relu" in names
    assert "down.shortcut.0" in names
    assert "inception.cat" in names
    assert s.rows[names.index("inception.cat")].output_shape == (4 + 6 + 16, 8, 8)
    assert s.output_shape == (26 + 3 * 4, 8, 8)
    assert sum(r.params for r in s.rows) == s.total_params


def test_summary_outputs():
    s = summary("lenet5")
    text = str(s)
    assert "Total params:" in text and "61,706" in text and "C3" in text
    md = s.to_markdown()
    assert md.count("\n|") == len(s.rows) + 2
    rows = list(csv.DictReader(io.StringIO(s.to_csv())))
    assert len(rows) == len(s.rows)
    assert sum(int(r["params"]) for r in rows) == s.total_params
    data = json.loads(s.to_json())
    assert data == s.to_dict()
    assert data["total_params"] == 61_706
    assert data["total_flops"] == 2 * data["total_macs"]
    assert data["layers"][0]["output_shape"] == [6, 28, 28]
    assert "Summary('lenet5'" in repr(s)


def test_summary_memory_dtype_and_batch():
    s = summary([conv(10, 5, padding=2)], (3, 32, 32), dtype="float16",
                batch_size=4)
    assert s.rows[0].activation_memory == 10 * 32 * 32 * 2 * 4
    assert s.parameter_memory == 760 * 2


def test_conventions():
    tv = summary("resnet18")
    full = summary("resnet18", convention="full")
    assert tv.total_params == full.total_params
    assert tv.total_macs < full.total_macs < 1.05 * tv.total_macs
    bn = next(r for r in full.rows if r.kind == "batch_norm")
    assert bn.macs == math.prod(bn.output_shape)
    assert next(r for r in tv.rows if r.kind == "batch_norm").macs == 0


def test_frozen_layers_count_as_non_trainable():
    s = summary([conv(4, 3, trainable=False), batch_norm(), flatten(),
                 linear(2)], (1, 5, 5))
    assert s.total_params == 40 + 8 + 4 * 9 * 2 + 2
    assert s.trainable_params == s.total_params - 40
    assert s.non_trainable_params == 40


def test_one_and_three_dimensional_specs():
    s1 = summary([("conv", 4, 3), ("max_pool", 2)], (2, 10))
    assert s1.output_shape == (4, 4)
    assert s1.total_params == 4 * 2 * 3 + 4
    s3 = summary([conv(4, 3, padding=1), max_pool(2)], (1, 8, 8, 8))
    assert s3.output_shape == (4, 4, 4, 4)
    assert s3.total_params == 4 * 27 + 4


def test_transposed_convolution_in_a_spec():
    s = summary([conv(4, 3, 2, 1), conv_transpose(2, 4, 2, 1)], (1, 16, 16))
    assert s.output_shape == (2, 16, 16)
    assert s.rows[1].params == 4 * 2 * 16 + 2
    assert s.rows[1].macs == 4 * 2 * 16 * 8 * 8


@st.composite
def conv_stacks(draw):
    layers = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["conv", "pool", "bn", "relu", "res"]))
        if kind == "conv":
            k = draw(st.integers(1, 3))
            layers.append(conv(draw(st.integers(1, 6)), k, draw(st.integers(1, 2)),
                               draw(st.integers(0, k)), bias=draw(st.booleans())))
        elif kind == "pool":
            layers.append(max_pool(2, ceil_mode=draw(st.booleans())))
        elif kind == "bn":
            layers.append(batch_norm())
        elif kind == "res":
            layers.append(residual([conv(3, 3, padding=1), relu(), conv(3, 1)],
                                   [conv(3, 1)]))
        else:
            layers.append(relu())
    if draw(st.booleans()):
        layers += [flatten(), linear(draw(st.integers(1, 5)))]
    return layers


@settings(max_examples=60, deadline=None)
@given(spec=conv_stacks(), channels=st.integers(1, 4), size=st.integers(1, 24))
def test_row_params_and_macs_add_up_to_the_totals(spec, channels, size):
    try:
        s = summary(spec, (channels, size, size))
    except InputTooSmallError as exc:
        assert "vanishes at layer" in str(exc)
        return
    assert sum(r.params for r in s.rows) == s.total_params
    assert sum(r.trainable_params for r in s.rows) == s.trainable_params
    assert sum(r.macs for r in s.rows) == s.total_macs
    assert s.total_flops == 2 * s.total_macs
    assert s.output_shape == s.rows[-1].output_shape


# ---------------------------------------------------------------------------
# receptive fields
# ---------------------------------------------------------------------------

def test_receptive_field_of_stacked_3x3():
    assert receptive_field([(3, 1)] * 2).size == 5
    assert receptive_field([(3, 1)] * 3).size == 7


def test_receptive_field_jump_start_and_dilation():
    rf = receptive_field([(3, 1, 1), (2, 2), (3, 1, 1), (3, 1, 2, 2)])
    assert [s.size for s in rf.steps] == [3, 4, 8, 16]
    assert [s.jump for s in rf.steps] == [1, 2, 2, 2]
    assert [s.start for s in rf.steps] == [0, 0.5, 0.5, 0.5]
    assert "receptive field 16" in str(rf)


def test_receptive_field_of_branches_is_the_largest():
    spec = [concat([conv(2, 1)], [conv(2, 5, padding=2)], [conv(2, 3, padding=1)])]
    assert receptive_field(spec).size == 5
    res = [residual([conv(2, 3, padding=1), conv(2, 3, padding=1)])]
    assert receptive_field(res).size == 5


def test_receptive_field_per_dimension_and_with_shapes():
    rf = receptive_field([conv(4, (3, 5)), max_pool(2)])
    assert rf.size == (4, 6)
    spec = [conv(4, 3), shapes.adaptive_avg_pool(2)]
    with pytest.raises(ValueError, match="input_shape"):
        receptive_field(spec)
    assert receptive_field(spec, (1, 10, 10)).size == 3 + 4 - 1


@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(0, 2),
                          st.integers(1, 3)), min_size=1, max_size=6))
def test_receptive_field_matches_interval_mapping(windows):
    rf = receptive_field(windows)
    size, centre = brute_force_field(windows)
    assert rf.size == size
    assert rf.start == centre
    assert rf.jump == math.prod(s for _, s, _, _ in windows)


def test_summary_receptive_field_stops_before_global_pooling():
    s = summary([conv(4, 3), conv(4, 3), shapes.global_avg_pool(), flatten(),
                 linear(2)], (1, 9, 9))
    assert s.receptive_field == 5
    assert s.rows[-1].receptive_field is None


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("call, exc, message", [
    (lambda: conv_output_size(3, 5), ValueError,
     r"kernel_size 5 .* larger than the padded input"),
    (lambda: conv_output_size(5, 3, stride=0), ValueError,
     "stride must be >= 1, got 0"),
    (lambda: conv_output_size(-5, 3), ValueError, "n must be >= 1, got -5"),
    (lambda: conv_output_size(0, 3), ValueError, "n must be >= 1, got 0"),
    (lambda: conv_output_size(5, 3, padding=-1), ValueError,
     "padding must be >= 0"),
    (lambda: conv_output_size(5, 3, dilation=0), ValueError,
     "dilation must be >= 1"),
    (lambda: conv_output_size(5.0, 3), TypeError, "n must be an int, got float"),
    (lambda: conv_output_size(5, True), TypeError,
     "kernel_size must be an int, got bool"),
    (lambda: conv_output_size(5, 3, stride=1.5), TypeError, "stride must be an int"),
    (lambda: conv_output_size(5, 3, ceil_mode=1), TypeError, "ceil_mode must be"),
    (lambda: conv_output_size((5, 5), (3, 3, 3)), ValueError, "same length"),
    (lambda: conv_output_size(5, 3, padding="full"), ValueError, "'same' or 'valid'"),
    (lambda: conv_output_size((2, 9), 3), ValueError, "along H"),
    (lambda: conv_params(3, 10, 5, groups=2), ValueError,
     "in_channels=3 is not divisible by groups=2"),
    (lambda: conv_params(4, 6, 3, groups=4), ValueError,
     "out_channels=6 is not divisible by groups=4"),
    (lambda: conv_params(3, 10, 5, bias=1), TypeError, "bias must be True or False"),
    (lambda: pool_output_size(5, 3, padding=2), ValueError,
     "padding must be at most half the kernel size"),
    (lambda: conv_transpose_output_size(4, 3, 2, output_padding=2), ValueError,
     "output_padding must be smaller than the stride or the dilation"),
    (lambda: conv_transpose_output_size(1, 1, padding=1), ValueError,
     "output size would be"),
    (lambda: compare_stacked(64, 6, 3), ValueError, "multiple of small_kernel - 1"),
    (lambda: activation_memory((3, 4), dtype="float128"), ValueError, "unknown dtype"),
    (lambda: parse_shape("3x224xa"), ValueError, "must look like '3x224x224'"),
    (lambda: conv(0, 3), ValueError, "out_channels must be >= 1"),
    (lambda: conv(4, 3, stride=2, padding="same"), ValueError,
     "padding='same' needs stride 1"),
    (lambda: conv(6, 5, groups=4), ValueError,
     "out_channels=6 is not divisible by groups=4"),
    (lambda: as_layer(("blah", 1)), ValueError, "unknown layer kind 'blah'"),
    (lambda: as_layer(("convv", 1)), ValueError, "did you mean 'conv'"),
    (lambda: as_layer(3.5), TypeError, "cannot read a layer spec from float"),
    (lambda: as_layer({"out_channels": 3}), ValueError, "needs a 'kind' entry"),
    (lambda: summary("resnet5"), ValueError,
     r"unknown architecture 'resnet5'.*known architectures: .*resnet50"),
    (lambda: summary(42), TypeError, "cannot read a layer spec"),
    (lambda: summary("alexnet", (3, 32, 32)), ValueError,
     r"too small.*vanishes at layer 'features.12' \(max_pool\)"),
    (lambda: summary([conv(8, 3, groups=2)], (3, 8, 8)), ValueError,
     r"layer '0' \(conv\).*in_channels=3 is not divisible by groups=2"),
    (lambda: summary([conv(4, 3, in_channels=2)], (3, 8, 8)), ValueError,
     "in_channels=2 does not match the 3 channels"),
    (lambda: summary([residual([conv(8, 3)])], (3, 8, 8)), ValueError,
     "same shape to be added"),
    (lambda: summary([concat([conv(2, 3)], [conv(2, 1)])], (3, 8, 8)), ValueError,
     "must agree in every other dimension"),
    (lambda: summary([flatten(), conv(2, 3)], (3, 8, 8)), ValueError,
     r"needs a \(channels, \*spatial\) input"),
    (lambda: summary([conv(2, 3)], "3x0x5"), ValueError,
     r"input_shape\[1\] must be >= 1"),
    (lambda: summary([conv(2, 3)], (3, 8.0, 8)), TypeError,
     r"input_shape\[1\] must be an int"),
    (lambda: summary([conv(2, 3)]), ValueError, "input_shape is required"),
    (lambda: summary([conv(2, 3)], (1, 8, 8), convention="ptflops"), ValueError,
     "convention must be one of torchvision, full"),
    (lambda: summary([conv(2, 3)], (1, 8, 8), batch_size=0), ValueError,
     "batch_size must be >= 1"),
])
def test_bad_input_is_explained(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


def test_too_small_error_is_a_value_error_subclass():
    with pytest.raises(InputTooSmallError):
        conv_output_size(2, 3)
    assert issubclass(InputTooSmallError, ValueError)


def test_layer_repr_and_immutability():
    layer = conv(4, 3, name="c")
    assert isinstance(layer, Layer)
    assert "conv" in repr(layer) and "name='c'" in repr(layer)
    with pytest.raises(AttributeError):
        layer.kind = "linear"


# The public names of pyconvnet.shapes as they were when it was one module:
# the package must keep every one of them, and add none but the graph
# builders and the layers they brought (GRAPH_NAMES).
PUBLIC_NAMES = [
    "ACTIVATIONS", "CONVENTIONS", "Comparison", "InputTooSmallError", "Layer", "LayerRow",
    "Machine", "PRESETS", "RFStep", "ReceptiveField", "ShapeExplanation", "Summary", "activation",
    "activation_memory", "adaptive_avg_pool", "adaptive_max_pool", "as_layer", "avg_pool",
    "batch_norm", "compare_bottleneck", "compare_depthwise_separable", "compare_grouped",
    "compare_stacked", "concat", "conv", "conv_flops", "conv_macs", "conv_output_size",
    "conv_params", "conv_transpose", "conv_transpose_output_size", "dense_block", "dropout",
    "dtype_size", "flatten", "global_avg_pool", "identity", "linear", "linear_macs",
    "linear_params", "lrn", "max_pool", "measure_machine", "parse_shape",
    "pool_output_size", "rbf",
    "receptive_field", "relu", "residual", "same_padding", "sequential", "subsampling",
    "summary",
]
GRAPH_NAMES = [
    "add", "channel_shuffle", "crop", "graph", "group_norm", "instance_norm", "layer_norm",
    "mul", "node", "pad", "pixel_shuffle", "pixel_unshuffle", "reshape", "slice_channels", "split",
    "squeeze_excitation", "upsample",
]
FILE_NAMES = ["load_network", "save_network"]


def test_public_names_are_unchanged():
    import pyconvnet.shapes as module

    assert module.__all__ == sorted(n for n in PUBLIC_NAMES + GRAPH_NAMES + FILE_NAMES
                                    if n not in ("ACTIVATIONS", "CONVENTIONS", "PRESETS"))
    assert sorted(n for n in dir(module) if not n.startswith("_")) == sorted(
        PUBLIC_NAMES + GRAPH_NAMES + FILE_NAMES)
    assert module.CONVENTIONS == ("torchvision", "full")
    assert "tanh" in module.ACTIVATIONS


def test_rows_carry_the_input_shape_and_the_layer_spec():
    from pyconvnet.shapes import conv, max_pool, residual, summary
    net = [conv(8, 3, padding=1, name="c1"), max_pool(2, name="p1"),
           residual([conv(8, 3, padding=1, name="c2")], name="r")]
    rows = {row.name: row for row in summary(net, (3, 16, 16)).rows}
    assert rows["c1"].input_shape == (3, 16, 16)
    assert rows["c1"].layer.config["out_channels"] == 8
    assert rows["p1"].input_shape == (8, 16, 16)
    assert rows["r.c2"].input_shape == (8, 8, 8)
    assert rows["r.add"].layer is None


# ---------------------------------------------------------------------------
# training: backward MACs, memory kept for the backward pass, optimizer state
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("stride, dilation, groups, padding", [
    (1, 1, 1, 0), (2, 1, 1, 1), (1, 2, 1, 2), (2, 1, 4, 1), (1, 1, 8, 1)])
def test_conv_backward_macs_equal_the_forward_product(stride, dilation, groups, padding):
    net = [conv(8, 3, padding=1), conv(8, 3, stride, padding, dilation, groups)]
    first, second = summary(net, (4, 12, 12)).rows
    # the input needs no gradient: the first layer computes only its weights'
    assert (first.input_grad_macs, first.weight_grad_macs) == (0, first.macs)
    assert second.input_grad_macs == second.weight_grad_macs == second.macs
    assert second.backward_macs == 2 * second.macs
    out = second.output_shape
    assert second.macs == 8 * (8 // groups) * 9 * out[1] * out[2]


def test_frozen_layers_compute_no_weight_gradient_and_keep_less():
    net = [conv(8, 3, trainable=False), relu(), conv(8, 3), relu(),
           conv(8, 3, trainable=False), flatten(), linear(4)]
    rows = summary(net, (3, 16, 16)).rows
    # nothing before the frozen first layer and its ReLU needs a gradient
    assert [(r.input_grad_macs, r.weight_grad_macs, r.saved_memory) for r in rows[:2]] \
        == [(0, 0, 0), (0, 0, 0)]
    assert rows[2].input_grad_macs == 0 and rows[2].weight_grad_macs == rows[2].macs
    # a frozen layer after a trainable one passes the gradient on, keeps nothing
    assert (rows[4].input_grad_macs, rows[4].weight_grad_macs) == (rows[4].macs, 0)
    assert rows[4].saved_memory == 0
    assert rows[6].saved_memory == 4 * 8 * 10 * 10      # its own input: a new tensor


def test_linear_and_transposed_backward():
    s = summary([conv(4, 1), flatten(), linear(10, bias=False)], (2, 3, 3))
    fc = s.rows[-1]
    assert fc.input_grad_macs == fc.weight_grad_macs == 36 * 10
    t = summary([conv(4, 1), conv_transpose(2, 3, stride=2, groups=2)], (2, 5, 5)).rows[1]
    assert t.macs == 4 * 1 * 9 * 25
    assert t.input_grad_macs == t.weight_grad_macs == t.macs


def test_full_convention_adds_bias_and_elementwise_gradients():
    net = [conv(4, 3, padding=1), batch_norm(), relu(), conv(4, 3, padding=1)]
    tv = summary(net, (2, 8, 8))
    full = summary(net, (2, 8, 8), convention="full")
    n = 4 * 8 * 8
    # bias gradients (one add per output element of each conv) and batch
    # norm's scale and shift (two per element)
    assert full.total_weight_grad_macs == tv.total_weight_grad_macs + 2 * n + 2 * n
    # the batch norm's and ReLU's input gradients cost their forward work
    assert full.total_input_grad_macs == tv.total_input_grad_macs + n + n


def test_what_each_layer_keeps():
    b = 2
    net = [conv(4, 3, padding=1, name="c1"), batch_norm(name="bn"), relu(name="r"),
           max_pool(2, name="mp"), conv(4, 3, padding=1, name="c2"),
           activation("gelu", name="g"), dropout(0.5, name="d"), flatten(name="f"),
           linear(3, name="fc")]
    rows = {r.name: r for r in summary(net, (3, 8, 8), batch_size=b).rows}
    assert rows["c1"].saved_memory == b * 3 * 64 * 4         # its input
    assert rows["bn"].saved_memory == b * 4 * 64 * 4 + 2 * 4 * 4   # input, mean, 1/std
    assert rows["r"].saved_memory == b * 4 * 64 * 4          # its output
    assert rows["mp"].saved_memory == b * 4 * 16 * 8         # int64 indices
    assert rows["c2"].saved_memory == b * 4 * 16 * 4         # the pool's output
    assert rows["g"].saved_memory == b * 4 * 16 * 4          # GELU keeps its input
    assert rows["d"].saved_memory == b * 4 * 16 * 1          # a bool mask
    assert rows["f"].saved_memory == 0
    assert rows["fc"].saved_memory == b * 64 * 4             # the dropout's output


def test_shared_tensors_are_counted_once():
    # the ReLU's output is the next conv's input; a residual block's input
    # is kept by the body's first conv and by the projection shortcut
    body = [conv(8, 3, padding=1, name="a"), relu(name="ra"), conv(8, 3, padding=1, name="b")]
    net = [conv(4, 1, name="stem"), relu(name="r0"),
           residual(body, [conv(8, 1, name="proj")], name="res")]
    rows = {r.name: r for r in summary(net, (3, 8, 8)).rows}
    assert rows["r0"].saved_memory == 4 * 64 * 4
    assert rows["res.a"].saved_memory == 0
    assert rows["res.shortcut.proj"].saved_memory == 0
    assert rows["res.b"].saved_memory == 0 and rows["res.ra"].saved_memory == 8 * 64 * 4
    s = summary(net, (3, 8, 8))
    assert s.saved_memory == 3 * 64 * 4 + 4 * 64 * 4 + 8 * 64 * 4
    assert sum(r.saved_memory for r in s.rows) == s.saved_memory


@pytest.mark.parametrize("dtype, size", [("float16", 2), ("bfloat16", 2), ("float32", 4),
                                         ("float64", 8)])
def test_saved_and_training_memory_follow_the_dtype(dtype, size):
    net = [conv(4, 3, padding=1), relu(), max_pool(2), dropout(), flatten(), linear(3)]
    s = summary(net, (3, 8, 8), dtype=dtype, batch_size=4)
    # activations scale with the dtype; indices (int64) and masks (bool) do not
    indices, mask = 4 * 4 * 16 * 8, 4 * 4 * 16 * 1
    assert s.saved_memory == (4 * 3 * 64 + 4 * 4 * 64 + 4 * 64) * size + indices + mask
    parts = s.training_memory("momentum", breakdown=True)
    assert parts["parameters"] == parts["gradients"] == parts["optimizer_state"] \
        == s.total_params * size
    assert parts["total"] == s.training_memory("momentum")


def test_training_memory_counts_optimizer_copies_and_trainable_gradients():
    net = [conv(8, 3, trainable=False), relu(), conv(8, 3), flatten(), linear(2)]
    s = summary(net, (3, 16, 16), batch_size=2)
    sgd, mom, adam = (s.training_memory(o, breakdown=True) for o in ("sgd", "momentum", "adam"))
    assert sgd["gradients"] == s.trainable_params * 4 < s.parameter_memory
    assert (sgd["optimizer_state"], mom["optimizer_state"], adam["optimizer_state"]) \
        == (0, sgd["gradients"], 2 * sgd["gradients"])
    assert adam["total"] - sgd["total"] == 2 * sgd["gradients"]
    assert s.training_memory("Adam") == adam["total"]
    with pytest.raises(ValueError, match="optimizer must be one of sgd, momentum, adam"):
        s.training_memory("rmsprop")


def test_training_tables_and_dict():
    s = summary("lenet5", batch_size=8)
    assert str(s) == s.to_text()
    text = s.to_text(training=True, optimizer="momentum")
    assert text.startswith(str(s))
    assert "Optimizer state (momentum)" in text and "Saved memory" in text
    assert "1.72x the forward pass" in text
    md = s.to_markdown(training=True)
    assert md.startswith(s.to_markdown().rstrip("\n"))
    assert md.count("\n|") == 2 * (len(s.rows) + 2)
    data = s.to_dict()
    assert data["total_backward_macs"] == s.total_backward_macs == 715_440
    assert data["saved_memory"] == s.saved_memory
    assert data["training_memory"]["adam"] == s.training_memory("adam")
    assert data["layers"][0]["backward_macs"] == s.rows[0].backward_macs
    assert json.loads(s.to_json()) == data


@settings(max_examples=40, deadline=None)
@given(spec=conv_stacks(), channels=st.integers(1, 4), size=st.integers(1, 24),
       batch=st.integers(1, 4))
def test_backward_rows_add_up_and_stay_within_two_forward_passes(spec, channels, size,
                                                                 batch):
    try:
        s = summary(spec, (channels, size, size), batch_size=batch)
    except InputTooSmallError:
        return
    assert sum(r.input_grad_macs for r in s.rows) == s.total_input_grad_macs
    assert sum(r.weight_grad_macs for r in s.rows) == s.total_weight_grad_macs
    assert sum(r.saved_memory for r in s.rows) == s.saved_memory
    assert s.total_backward_macs <= 2 * s.total_macs
    # nothing is kept that a forward pass does not produce (plus the input,
    # the batch norm statistics and int64 indices at most twice a float's size)
    bound = 2 * (s.activation_memory + batch * math.prod(s.input_shape) * 4) \
        + sum(2 * r.output_shape[0] * 4 for r in s.rows if r.kind == "batch_norm")
    assert s.saved_memory <= bound
    one = summary(spec, (channels, size, size))
    assert s.total_backward_macs == one.total_backward_macs


# a pyconvnet.nn training step measured with tracemalloc. pyconvnet.nn keeps
# other tensors than PyTorch (a ReLU keeps a one-byte mask, tanh and sigmoid
# their derivative), so its forward pass keeps 0.6 to 1.2 times the count;
# the step's peak adds the backward pass's workspace (im2col columns) and
# lands at 1.0 to 1.9 times training_memory. The bounds leave room for both.
NN_KEPT_RATIO = (0.5, 1.5)
NN_PEAK_RATIO = (0.75, 2.5)


def _nn_small_cnn(nn):
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 8 * 8, 10))


@pytest.mark.parametrize("model", ["lenet5", "lenet5_relu_max", "small_cnn"])
def test_training_memory_against_a_pyconvnet_nn_training_step(model):
    import tracemalloc

    from pyconvnet import nn
    batch = 32
    tracemalloc.start()
    try:
        if model == "small_cnn":
            net, shape = _nn_small_cnn(nn), (1, 32, 32)
        elif model == "lenet5":
            net, shape = nn.lenet5(rng=0), (1, 32, 32)
        else:
            net, shape = nn.lenet5(activation="relu", pooling="max", rng=0), (1, 32, 32)
        x = np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32)
        labels = np.arange(batch) % 10
        loss = nn.CrossEntropyLoss()
        optimizer = nn.SGD(net, lr=0.01, momentum=0.9)
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        loss(net.forward(x), labels)
        kept = tracemalloc.get_traced_memory()[0] - before
        net.backward(loss.backward())
        optimizer.step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    s = summary(net, shape, batch_size=batch)
    # the input was allocated before the forward pass
    low, high = NN_KEPT_RATIO
    assert low <= kept / (s.saved_memory - x.nbytes) <= high
    low, high = NN_PEAK_RATIO
    assert low <= peak / s.training_memory("momentum") <= high


# ---------------------------------------------------------------------------
# the roofline
# ---------------------------------------------------------------------------

def test_rows_report_bytes_moved_and_intensity():
    s = summary([conv(16, 3, padding=1), relu(), flatten()], (8, 32, 32), batch_size=2)
    c, r, f = s.rows
    assert c.bytes_moved == (2 * 8 * 1024 + 2 * 16 * 1024 + 16 * 8 * 9 + 16) * 4
    assert c.arithmetic_intensity == pytest.approx(2 * c.macs * 2 / c.bytes_moved)
    assert r.bytes_moved == 2 * 2 * 16 * 1024 * 4 and r.arithmetic_intensity == 0
    assert f.bytes_moved == 0                      # a view moves nothing
    assert c.predicted_time is None and c.bound is None and s.predicted_time is None


def test_machine_predicts_the_larger_of_the_two_times():
    from pyconvnet.shapes import Machine
    m = Machine(peak_flops=1e11, bandwidth=1e10)
    assert m.ridge == 10
    s = summary([conv(16, 3, padding=1), relu()], (8, 32, 32), batch_size=2, machine=m)
    c, r = s.rows
    assert c.arithmetic_intensity > m.ridge and c.bound == "compute"
    assert c.predicted_time == pytest.approx(2 * c.macs * 2 / 1e11)
    assert r.bound == "memory" and r.predicted_time == pytest.approx(r.bytes_moved / 1e10)
    assert s.predicted_time == pytest.approx(c.predicted_time + r.predicted_time)
    assert "Roofline" in str(s) and "compute" in s.to_markdown()
    with pytest.raises(ValueError, match="peak_flops must be a positive number"):
        Machine(peak_flops=0, bandwidth=1)


def test_measure_machine_is_quick_and_plausible():
    import time

    from pyconvnet.shapes import measure_machine
    t0 = time.perf_counter()
    m = measure_machine(repeats=1, budget=0.5)
    assert time.perf_counter() - t0 < 10
    assert 1e8 < m.peak_flops < 1e14 and 1e8 < m.bandwidth < 1e13
    assert m.n_threads >= 1 and m.dtype == "float32"
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        measure_machine(dtype="float16")


def test_csv_has_the_training_columns_last():
    s = summary("lenet5", batch_size=2)
    rows = list(csv.DictReader(io.StringIO(s.to_csv())))
    assert list(rows[0])[:10] == ["name", "kind", "output_shape", "params",
                                  "trainable_params", "macs", "receptive_field",
                                  "rf_jump", "rf_start", "activation_memory"]
    assert sum(int(r["input_grad_macs"]) + int(r["weight_grad_macs"]) for r in rows) \
        == s.total_backward_macs
    assert sum(int(r["saved_memory"]) for r in rows) == s.saved_memory
    assert all(int(r["flops"]) == 2 * int(r["macs"]) for r in rows)
    with pytest.raises(TypeError, match="machine must be a Machine"):
        summary("lenet5", machine={"peak_flops": 1e9})


def test_roofline_gallery_example_runs(tmp_path):
    import_oracle("matplotlib")
    import pathlib

    from conftest import run_python
    script = pathlib.Path(__file__).resolve().parents[1] / "examples" / "plot_roofline.py"
    done = run_python([str(script)], cwd=tmp_path, env={"MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr
    assert "measured / predicted median" in done.stdout
    assert (tmp_path / "output" / "roofline.png").is_file()


def test_batch_norm_after_a_relu_shares_its_input():
    net = [conv(4, 3, padding=1), relu(), batch_norm(), conv(4, 1)]
    rows = summary(net, (3, 8, 8)).rows
    assert rows[1].saved_memory == 4 * 64 * 4              # the ReLU's output ...
    assert rows[2].saved_memory == 2 * 4 * 4               # ... is the batch norm's input
    assert rows[3].saved_memory == 4 * 64 * 4              # the batch norm's output


def test_importing_the_calculators_measures_nothing(tmp_path):
    from conftest import run_python
    done = run_python(["-c", "import sys, pyconvnet.shapes; print(sorted(m for m in "
                       "sys.modules if m.startswith(('pyconvnet._ext.', "
                       "'pyconvnet.functional'))))"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("name,shape", [("resnet50", (224, 224)), ("lenet5", (32, 32)),
                                        ("vgg16", (1, 3, 224, 224))])
def test_named_networks_refuse_inputs_of_another_rank(name, shape):
    with pytest.raises(ValueError, match=r"takes a 2-D \(channels, height, width\) input"):
        summary(name, shape)
