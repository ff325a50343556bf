"""Receptive fields unit by unit, against the gradient reach of torch models:
the input pixels with a nonzero gradient of one output unit."""
import numpy as np
import pytest
from _torch_graphs import torch_module
from conftest import import_oracle
from hypothesis import given, settings
from hypothesis import strategies as st

from pyconvnet.shapes import (add, as_layer, avg_pool, concat, conv, conv_transpose, crop,
                              graph, node, pad, pixel_shuffle, pixel_unshuffle,
                              receptive_field, summary, upsample)


def gradient_reach(spec, shape, torch):
    """Per spatial dimension, (first, last) input pixel that the gradient of
    each output position reaches (None where it reaches none), as arrays
    indexed by the output position."""
    torch.manual_seed(0)
    layer = as_layer(spec)
    model = torch_module(layer, len(shape) - 1, torch).double()
    x = torch.rand(1, *shape, dtype=torch.float64)
    model(x)                                   # builds the lazy modules
    with torch.no_grad():
        for p in model.parameters():           # no weight may vanish
            p.copy_(torch.rand_like(p) + 0.5)
    jac = torch.autograd.functional.jacobian(lambda v: model(v), x, vectorize=True)
    # (1, C_out, *out, 1, C_in, *in) -> reach[out position, in position]
    nd = len(shape) - 1
    j = jac.abs().sum(dim=(0, 1, 2 + nd, 3 + nd)).numpy() > 0
    return j, nd


def boxes(reach, nd):
    """Bounding box of the reached pixels of every output position."""
    out_shape = reach.shape[:nd]
    result = {}
    for pos in np.ndindex(*out_shape):
        hit = np.argwhere(reach[pos])
        result[pos] = None if len(hit) == 0 else tuple(
            (int(hit[:, d].min()), int(hit[:, d].max())) for d in range(nd))
    return result


def check(spec, shape, torch, inside=True):
    """Compare the pixels seen with the gradient reach of every output unit,
    and, with ``inside``, the field with the reach too: it holds the reach,
    and equals it where it lies inside the image (no padding cut it)."""
    rf = receptive_field(spec, shape)
    s = summary(spec, shape)
    reach, nd = gradient_reach(spec, shape, torch)
    measured = boxes(reach, nd)
    assert reach.shape[:nd] == s.output_shape[1:]
    sizes = []
    for pos, box in measured.items():
        seen = rf.seen(pos)
        assert seen == (box if box is not None else (None,) * nd) or (
            box is None and all(v is None for v in seen)), (pos, seen, box)
        # where no padding cuts the field, the field is what the gradient reaches
        field = tuple((int(lo[p]), int(hi[p])) for p, (lo, hi, _, _) in
                      zip(pos, rf.unit_fields))
        if inside and box is not None:
            assert all(f[0] <= b[0] and b[1] <= f[1] for f, b in zip(field, box))
        if inside and box is not None and all(0 <= lo and hi < n for (lo, hi), n in
                                              zip(field, shape[1:])):
            assert field == box, (pos, field, box)
            sizes.append(tuple(hi - lo + 1 for lo, hi in box))
    return rf, sizes


def unet_like(mode="bilinear"):
    """A same-padded U-Net of two levels with a transposed convolution, a
    bilinear resize and concatenated skips (average pooling, no ReLU: the
    gradient then reaches every pixel a unit depends on)."""
    return graph(
        node("enc1", [conv(2, 3, padding=1), conv(2, 3, padding=1)], "x"),
        node("enc2", [avg_pool(2), conv(3, 3, padding=1), conv(3, 3, padding=1)], "enc1"),
        node("mid", [avg_pool(2), conv(4, 3, padding=1)], "enc2"),
        node("up2", conv_transpose(3, 3, stride=2, padding=1, output_padding=1), "mid"),
        node("cat2", concat(), ["enc2", "up2"]),
        node("dec2", conv(3, 3, padding=1), "cat2"),
        node("up1", [upsample(2, mode=mode), conv(2, 1)], "dec2"),
        node("cat1", concat(), ["up1", "enc1"]),
        node("out", conv(1, 3, padding=1), "cat1"),
        inputs="x")


def test_unet_fields_match_gradient_reach(torch):
    rf, _ = check(unet_like(), (1, 36, 36), torch)
    assert rf.size_range == (32, 36)
    # in 1-D, long enough for units of every phase to have their whole
    # field inside the input: the range is the one measured
    rf, sizes = check(unet_like("linear"), (1, 96), torch)
    assert rf.size_range == (32, 36)
    assert {s[0] for s in sizes} == {32, 36}


def unet_2015(channels=64, pool=None, act=True, nd=2):
    """The 2015 U-Net: valid convolutions, four levels, crops of the skips."""
    from pyconvnet.shapes import max_pool, relu

    def twice(c):
        return [conv(c, 3), relu(), conv(c, 3), relu()] if act else [conv(c, 3), conv(c, 3)]
    pool = pool or max_pool
    nodes = [node("enc0", twice(channels), "x")]
    for i in range(1, 5):
        nodes.append(node(f"enc{i}", [pool(2)] + twice(channels * 2 ** i), f"enc{i - 1}"))
    last = "enc4"
    for i in range(3, -1, -1):
        nodes += [node(f"up{i}", conv_transpose(channels * 2 ** i, 2, stride=2), last),
                  node(f"crop{i}", crop(), [f"enc{i}", f"up{i}"]),
                  node(f"cat{i}", concat(), [f"crop{i}", f"up{i}"]),
                  node(f"dec{i}", twice(channels * 2 ** i), f"cat{i}")]
        last = f"dec{i}"
    nodes.append(node("head", conv(2, 1), last))
    return graph(*nodes, inputs="x")


def test_unet_2015():
    s = summary(unet_2015(), (1, 572, 572))
    assert s.total_params == 31_030_658
    assert s.output_shape == (2, 388, 388)
    rf = receptive_field(unet_2015(), (1, 572, 572))
    # the first unit sees 188 pixels, the units of other phases up to 204
    assert rf.size == 204 and rf.size_range == (188, 204)
    assert rf.range_units == ((0, 0), (4, 4))
    assert rf.seen((0, 0)) == ((0, 187), (0, 187))


def test_unet_2015_fields_match_gradient_reach(torch):
    # the same geometry in 1-D, one channel, average pooling and no ReLU so
    # that the gradient reaches every pixel a unit depends on
    rf, sizes = check(unet_2015(1, avg_pool, act=False), (1, 572), torch)
    assert rf.size_range == (188, 204)
    assert min(s[0] for s in sizes) == 188 and max(s[0] for s in sizes) == 204


@pytest.mark.parametrize("spec, shape", [
    ([conv(2, 3, stride=2), conv_transpose(1, 3, stride=2)], (1, 17)),
    ([conv(2, 3, stride=2), conv_transpose(1, 4, stride=2, padding=1)], (1, 18)),
    ([conv(2, 3, stride=2, dilation=2), conv_transpose(1, 2, stride=3, dilation=2)],
     (1, 25)),
    ([conv(2, 3, stride=2), upsample(2)], (1, 15)),
    ([conv(2, 3, stride=2), upsample(3, mode="linear")], (1, 15)),
    ([conv(2, 3, stride=2), upsample(size=19, mode="linear", align_corners=True)], (1, 15)),
    ([conv(2, 3, stride=2), upsample(1.5, mode="linear")], (1, 15)),
    ([conv(2, 3), pad(((2, 1),)), conv(1, 3)], (1, 9)),
    ([conv(2, 3), pad(((2, 1),), mode="reflect"), conv(1, 3)], (1, 9)),
    ([conv(2, 3), pad(2, mode="replicate"), conv(1, 3)], (1, 9)),
    ([conv(2, 3), pad(2, mode="circular"), conv(1, 3)], (1, 9)),
    ([conv(4, 3, padding=1), pixel_shuffle(2), conv(1, 3)], (1, 6, 6)),
    ([conv(1, 3, padding=1), pixel_unshuffle(2), conv(1, 3, padding=1)], (1, 8, 8)),
    ([conv(2, 3, padding=1), crop(5, offset=1), conv(1, 3, padding=2)], (1, 9)),
    ([conv(2, 3, padding=1), upsample((2, 3), mode="bilinear"), conv(1, 3, padding=1)],
     (1, 5, 4)),
], ids=lambda v: None)
def test_layers_match_gradient_reach(spec, shape, torch):
    # a crop and the padding modes that copy pixels read pixels that the
    # field, which counts padding as pixels, places elsewhere
    check(spec, shape, torch, inside=not any(
        layer.kind == "crop" or layer.config.get("mode") in ("reflect", "replicate",
                                                             "circular")
        for layer in spec))


@st.composite
def stacks_1d(draw):
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "pool", "tconv", "up", "pad", "res"]))
        if kind == "conv":
            k = draw(st.integers(1, 4))
            layers.append(conv(2, k, stride=draw(st.integers(1, 2)),
                               padding=draw(st.integers(0, k - 1)),
                               dilation=draw(st.integers(1, 2))))
        elif kind == "pool":
            layers.append(avg_pool(2))
        elif kind == "tconv":
            k, s = draw(st.integers(1, 4)), draw(st.integers(1, 3))
            layers.append(conv_transpose(2, k, stride=s, padding=draw(
                st.integers(0, (k - 1) // 2)), dilation=draw(st.integers(1, 2))))
        elif kind == "up":
            layers.append(upsample(draw(st.sampled_from([2, 3])),
                                   mode=draw(st.sampled_from(["nearest", "linear"]))))
        elif kind == "pad":
            layers.append(pad(((draw(st.integers(0, 2)), draw(st.integers(0, 2))),)))
        else:
            layers.append(graph(node("a", conv(2, 3, padding=1), "x"),
                                node("b", conv(2, 1), "x"),
                                node("s", add(), ["a", "b"]), inputs="x"))
    return layers


@settings(max_examples=40, deadline=None)
@given(stacks_1d(), st.integers(6, 20))
def test_random_stacks_match_gradient_reach(layers, n):
    torch = import_oracle("torch")
    spec = [conv(2, 1)] + layers
    try:
        summary(spec, (1, n))
    except ValueError:
        return                                  # the input is too small
    check(spec, (1, n), torch)


def test_conv_nets_keep_one_field():
    # without resizes every unit sees the field of the recurrence
    rf = receptive_field("vgg11", (3, 224, 224))
    assert rf.size_range is None and rf.size == receptive_field("vgg11").size
    lo, hi, _, _ = rf.unit_fields[0]
    assert set(hi - lo + 1) == {rf.size}


def test_rows_report_the_range():
    s = summary([conv(1, 3, stride=2), conv_transpose(1, 3, stride=2)], (1, 33, 33))
    row = s.rows[-1]
    assert row.receptive_field == 5
    assert row.rf_range == (3, 5)
    assert row.rf_units == ((1, 1), (0, 0))
    assert s.rows[0].rf_range is None
    text = str(receptive_field([conv(1, 3, stride=2), conv_transpose(1, 3, stride=2)],
                               (1, 33, 33)))
    assert "varies by unit: smallest 3 at unit (1, 1), largest 5 at unit (0, 0)" in text


def test_seen_needs_an_input_shape():
    rf = receptive_field([(3, 1), (3, 1)])
    with pytest.raises(ValueError, match="input shape"):
        rf.seen(0)
    rf = receptive_field([conv(1, 3)], (1, 8))
    with pytest.raises(ValueError, match="outside"):
        rf.seen(6)
    with pytest.raises(ValueError, match="1 indices"):
        rf.seen((0, 0))


def test_graphs_page_states_computed_numbers():
    from pathlib import Path
    page = Path(__file__).resolve().parent.parent / "docs" / "theory" / "graphs.rst"
    if not page.is_file():
        pytest.skip("no docs/ folder in this tree")
    text = page.read_text(encoding="utf-8")
    rf = receptive_field(unet_2015(), (1, 572, 572))
    lo, hi, _, _ = rf.unit_fields[0]
    size = hi - lo + 1
    # the fields repeat every 16 units: four of 188, twelve of 204
    assert list(size[:16]) == [188] * 4 + [204] * 12
    assert all(size[u] == size[u % 16] for u in range(len(size)))
    assert "repeat every 16 output units: the first four units" in text
    assert "see 188 pixels, the other twelve 204" in text
    # without an input shape the recurrence says 200
    assert receptive_field(unet_2015()).size == 200
    s = summary(squeeze_excitation_page(), (96, 14, 14))
    assert (s.total_params, s.total_macs) == (4728, 4608)
    assert "4,728 parameters and 4,608\nmultiply-adds" in text


def squeeze_excitation_page():
    from pyconvnet.shapes import squeeze_excitation
    return squeeze_excitation(96, 24)


def test_unet_2015_counts_match_torch(torch):
    from _torch_graphs import torch_counts
    params, flops, out = torch_counts(unet_2015(), (1, 572, 572), torch)
    s = summary(unet_2015(), (1, 572, 572))
    assert (s.total_params, s.total_flops, s.output_shape) == (params, flops, out)
