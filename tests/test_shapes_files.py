"""Tests for network files and the dict forms of layers and summaries:
``Layer.to_dict``/``from_dict``, ``Summary.to_dict``/``from_dict``,
``load_network``/``save_network`` (JSON and TOML), ``summary(depth=...)`` and
the stage subtotals of the tables."""
import dataclasses
import json
import pathlib
import tomllib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyconvnet import architectures
from pyconvnet.shapes import (ACTIVATIONS, Layer, LayerRow, Machine, Summary, activation,
                              adaptive_avg_pool, adaptive_max_pool, add, as_layer, avg_pool,
                              batch_norm, channel_shuffle, concat, conv, conv_transpose,
                              crop, dense_block,
                              dropout, flatten, global_avg_pool, graph, group_norm, identity,
                              instance_norm, layer_norm, linear, load_network, lrn,
                              max_pool, mul, node, pad, pixel_shuffle, pixel_unshuffle, rbf,
                              relu, reshape, residual, save_network, sequential,
                              slice_channels,
                              split, squeeze_excitation, subsampling, summary, upsample)
from pyconvnet.shapes._files import dumps_toml, network_from_dict, network_to_dict

BUILTINS = architectures.list_architectures()


# --------------------------------------------------------------------------
# generated specs
# --------------------------------------------------------------------------

names = st.none() | st.text(min_size=1, max_size=6)
sizes = st.integers(1, 5) | st.tuples(st.integers(1, 5), st.integers(1, 5))
zero_sizes = st.integers(0, 3) | st.tuples(st.integers(0, 3), st.integers(0, 3))


@st.composite
def convs(draw):
    groups = draw(st.sampled_from([1, 1, 2]))
    out = groups * draw(st.integers(1, 8))
    stride = draw(sizes)
    padding = draw(zero_sizes | st.just("valid")
                   | (st.just("same") if stride == 1 else st.just(0)))
    connections = None
    if groups == 1 and draw(st.booleans()):
        connections = [sorted(draw(st.sets(st.integers(0, 3), min_size=1, max_size=3)))
                       for _ in range(out)]
    return conv(out, draw(sizes), stride, padding, draw(sizes), groups,
                draw(st.booleans()), trainable=draw(st.booleans()),
                in_channels=draw(st.none() | st.just(groups)),
                connections=connections, name=draw(names))


leaves = st.one_of(
    convs(),
    st.builds(conv_transpose, st.integers(1, 8), sizes, sizes, zero_sizes, st.just(0),
              sizes, bias=st.booleans(), trainable=st.booleans(), name=names),
    st.builds(linear, st.integers(1, 10), st.booleans(), trainable=st.booleans(),
              in_features=st.none() | st.integers(1, 9), name=names),
    st.builds(rbf, st.integers(1, 10), trainable=st.booleans(), name=names),
    st.builds(max_pool, sizes, st.none() | sizes, st.just(0), sizes, st.booleans(),
              name=names),
    st.builds(avg_pool, sizes, st.none() | sizes, st.just(0), st.booleans(), name=names),
    st.builds(subsampling, sizes, st.none() | sizes, trainable=st.booleans(), name=names),
    st.builds(adaptive_avg_pool, st.integers(1, 7) | st.tuples(
        st.none() | st.integers(1, 7), st.none() | st.integers(1, 7)), name=names),
    st.builds(adaptive_max_pool, st.integers(1, 7), name=names),
    st.builds(global_avg_pool, name=names),
    st.builds(batch_norm, st.booleans(), trainable=st.booleans(), name=names),
    st.builds(lrn, st.integers(1, 7), name=names),
    st.builds(activation, st.sampled_from(ACTIVATIONS), name=names),
    st.builds(dropout, st.floats(0, 1), name=names),
    st.builds(flatten, name=names),
    st.builds(identity, name=names),
    st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(0, 2)).map(as_layer),
    st.builds(pad, zero_sizes | st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                                          st.tuples(st.integers(0, 2), st.integers(0, 2))),
              st.sampled_from(["constant", "reflect", "replicate", "circular"]),
              st.floats(-2, 2), name=names),
    st.builds(crop, sizes, st.none() | zero_sizes, name=names),
    st.builds(upsample, st.integers(1, 3) | st.floats(0.5, 3), mode=st.just("nearest"),
              name=names),
    st.builds(upsample, size=sizes, mode=st.just("bilinear"),
              align_corners=st.none() | st.booleans(), name=names),
    st.builds(pixel_shuffle, st.integers(1, 3), name=names),
    st.builds(pixel_unshuffle, st.integers(1, 3), name=names),
    st.builds(group_norm, st.integers(1, 4), st.booleans(), name=names),
    st.builds(instance_norm, st.booleans(), name=names),
    st.builds(layer_norm, st.none() | sizes, st.booleans(), st.booleans(), name=names),
    st.builds(slice_channels, st.integers(-3, 3), st.none() | st.integers(-2, 6),
              st.integers(1, 2), name=names),
    st.builds(channel_shuffle, st.integers(1, 4), name=names),
    st.builds(reshape, st.tuples(st.integers(1, 4), st.sampled_from([-1, 1, 2])),
              name=names),
)


@st.composite
def graphs(draw, children):
    """A graph of a few nodes, each reading the input or earlier nodes."""
    nodes, names_so_far = [], ["x"]
    for i in range(draw(st.integers(1, 4))):
        if len(names_so_far) > 1 and draw(st.booleans()):
            join = draw(st.sampled_from([add(), mul(), concat(), concat(axis=-1)]))
            inputs = draw(st.lists(st.sampled_from(names_so_far), min_size=2, max_size=3))
            nodes.append(node(f"n{i}", join, inputs))
        else:
            nodes.append(node(f"n{i}", draw(children), draw(st.sampled_from(names_so_far))))
        names_so_far.append(f"n{i}")
    # every node feeds the output
    nodes.append(node("out", concat(), names_so_far[1:] * (2 if len(nodes) == 1 else 1)))
    return graph(*nodes, inputs="x", name=draw(names))


def _composites(children):
    return st.one_of(
        st.builds(lambda xs, n: sequential(*xs, name=n), st.lists(children, max_size=3),
                  names),
        st.builds(lambda b, s, a, n: residual(b, s, activation=a, name=n), children,
                  st.none() | children, st.none() | st.sampled_from(["relu", "gelu"]),
                  names),
        st.builds(lambda xs, n: concat(*xs, name=n), st.lists(children, min_size=1,
                                                               max_size=3), names),
        st.builds(lambda xs, n: dense_block(*xs, name=n), st.lists(children, max_size=3),
                  names),
        graphs(children),
    )


specs = st.recursive(leaves, _composites, max_leaves=8)


def _has_null_in_array(data):
    if isinstance(data, dict):
        return any(_has_null_in_array(v) for v in data.values())
    if isinstance(data, list):
        return any(v is None or _has_null_in_array(v) for v in data)
    return False


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=specs)
def test_a_layer_round_trips_through_its_dict_json_and_toml(layer):
    data = layer.to_dict()
    assert Layer.from_dict(data) == layer
    assert Layer.from_dict(json.loads(json.dumps(data))) == layer
    doc = network_to_dict(layer, (3, 16, 16))
    if _has_null_in_array(doc):
        with pytest.raises(ValueError, match="TOML cannot write"):
            dumps_toml(doc)
    else:
        assert network_from_dict(tomllib.loads(dumps_toml(doc))) == (layer, (3, 16, 16))
    assert network_from_dict(json.loads(json.dumps(doc))) == (layer, (3, 16, 16))


# one layer of every kind, with its tuples, None and nested layers
EVERY_KIND = [
    conv(4, (3, 1), (1, 2), (1, 0), 2, in_channels=2, name="c"),
    conv(3, 3, padding="same", connections=[[0], [0, 1], [1]], trainable=False),
    conv_transpose(4, (2, 3), 2, 1, 1, groups=2, bias=False),
    linear(10, False, in_features=3), rbf(4, trainable=False),
    max_pool(3, 2, 1, 2, True), avg_pool((2, 1)), subsampling(2, 1),
    adaptive_avg_pool((None, 3)), adaptive_max_pool(2), global_avg_pool(name="gap"),
    batch_norm(False), lrn(3), dropout(0.25), flatten(), identity(),
    as_layer((3, 2, 1, 2)),
    sequential(relu(), name="s"), residual([relu()], [conv(2, 1)], activation="relu"),
    residual(relu()), concat([], [relu()], name="cat"), dense_block(conv(2, 1)),
    concat([], [relu()], axis=-1),
    graph(node("a", [conv(4, 1), relu()], "x"), node("halves", split((2, 2)), "a"),
          node("b", slice_channels(0, None, 2), "halves:1"),
          node("c", concat(axis=1), ["halves:0", "b"]), node("d", add(), ["c", "c"]),
          node("e", mul(), ["d", "c"]), node("f", crop(), ["e", "d"]),
          inputs="x", outputs="f", name="g"),
    squeeze_excitation(8, 2, scale_activation="hardsigmoid"),
    pad(((0, 1), (2, 3)), "reflect"), pad(1, value=-1.5), crop(3, (0, 1)),
    upsample(2), upsample((1.5, 2), mode="bilinear", align_corners=True),
    upsample(size=(4, 5), mode="bilinear"), pixel_shuffle(2), pixel_unshuffle(3),
    group_norm(4, False), instance_norm(True, trainable=False), layer_norm(),
    layer_norm((4, 4), bias=False), channel_shuffle(2), reshape((4, -1, 2)),
] + [activation(kind) for kind in ACTIVATIONS]


def test_every_kind_round_trips():
    from pyconvnet._specs import _CONSTRUCTORS
    kinds = set()
    stack = list(EVERY_KIND)
    while stack:
        x = stack.pop()
        kinds.add(x.kind)
        stack += [c for c in x.children if c is not None]
    assert kinds == (set(_CONSTRUCTORS) - {"global_avg_pool", "squeeze_excitation"}) \
        | set(ACTIVATIONS), "a new layer kind needs an example here"
    for layer in EVERY_KIND:
        data = json.loads(json.dumps(layer.to_dict()))
        assert Layer.from_dict(data) == layer
    doc = network_to_dict(sequential(*EVERY_KIND), (2, 8, 8))
    assert network_from_dict(json.loads(json.dumps(doc)))[0] == sequential(*EVERY_KIND)


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_network_round_trips(name, tmp_path):
    layer = architectures.get_architecture(name)
    shape = architectures.default_input_shape(name)
    assert Layer.from_dict(json.loads(json.dumps(layer.to_dict()))) == layer
    for suffix in (".json", ".toml"):
        path = tmp_path / f"net{suffix}"
        save_network(layer, path, shape)
        assert load_network(path) == (layer, shape)
        assert load_network(str(path)) == (layer, shape)
    assert summary(path) == summary(name)


def _assert_identical(a, b):
    """``a``, read back, equals ``b`` in every field, the ones left out of ==
    included (but a row's unit-by-unit fields, which the JSON leaves out)."""
    assert type(a) is type(b)
    for f in dataclasses.fields(a):
        if f.name == "unit_fields":
            assert getattr(a, f.name) is None
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "rows":
            assert len(x) == len(y)
            for r, q in zip(x, y):
                _assert_identical(r, q)
        else:
            assert x == y, (getattr(a, "name", ""), f.name, x, y)


def test_receptive_field_ranges_round_trip():
    # after a transposed convolution the units see fields of different sizes
    s = summary([conv(4, 3), conv_transpose(4, 3, 2), conv(4, (3, 1))], (1, 16, 16))
    rows = s.to_dict()["layers"]
    assert rows[0]["rf_range"] == [] == rows[0]["rf_units"]
    assert rows[1]["rf_range"] == [[3, 3], [4, 4]] and rows[1]["rf_units"] == [[1, 1], [0, 0]]
    assert rows[2]["rf_range"] == [[4, 3], [5, 4]]
    back = Summary.from_dict(json.loads(s.to_json()))
    assert [r.rf_range for r in back.rows] == [r.rf_range for r in s.rows]
    assert [r.rf_units for r in back.rows] == [r.rf_units for r in s.rows]


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_summary_round_trips(name):
    for s in (summary(name), summary(name, depth=1, batch_size=3, convention="full")):
        _assert_identical(Summary.from_dict(json.loads(s.to_json())), s)


def test_a_summary_with_a_machine_and_options_round_trips():
    machine = Machine(peak_flops=50e9, bandwidth=10e9, n_threads=2)
    s = summary("resnet18", (3, 64, 48), machine=machine, inplace=True, dtype="float16",
                preset="fvcore", batch_size=2, depth=2)
    back = Summary.from_dict(json.loads(s.to_json()))
    _assert_identical(back, s)
    assert back.to_dict() == s.to_dict()
    assert back.predicted_time == pytest.approx(s.predicted_time)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=specs, size=st.integers(4, 20), channels=st.integers(1, 4))
def test_summaries_of_generated_specs_round_trip(layer, size, channels):
    try:
        s = summary(layer, (channels, size, size))
    except (ValueError, TypeError):
        return          # a spec that does not fit this input
    _assert_identical(Summary.from_dict(json.loads(s.to_json())), s)
    for row in s.rows:
        _assert_identical(LayerRow.from_dict(row.to_dict(), row.batch_size), row)


# --------------------------------------------------------------------------
# the schema: one type per field
# --------------------------------------------------------------------------

ROW_TYPES = {
    "name": str, "kind": str, "input_shape": list, "output_shape": list, "params": int,
    "trainable_params": int, "macs": int, "flops": int, "receptive_field": list,
    "rf_jump": list, "rf_start": list, "rf_range": list, "rf_units": list,
    "activation_memory": int, "input_grad_macs": int,
    "weight_grad_macs": int, "backward_macs": int, "saved_memory": int,
    "bytes_moved": int, "arithmetic_intensity": float, "predicted_time": (float, type(None)),
    "bound": (str, type(None)), "layer": dict,
}


def _check_types(name, rows, spatial):
    for row in rows:
        assert set(row) == set(ROW_TYPES)
        for key, kind in ROW_TYPES.items():
            value = row[key]
            assert isinstance(value, kind) and not (kind is int and isinstance(value, bool)), \
                (name, row["name"], key, value)
        # per-axis lists: one entry per spatial axis of the output, or none
        n = len(row["output_shape"]) - 1
        for key in ("receptive_field", "rf_jump", "rf_start"):
            assert len(row[key]) in ((0, n) if n else (0,)), (name, row["name"], key)
            assert all(isinstance(v, (int, float)) for v in row[key])
    # no field changes its type from row to row (null only in all rows)
    for key in ("predicted_time", "bound"):
        assert len({type(r[key]) for r in rows}) == 1


@pytest.mark.parametrize("name", BUILTINS)
def test_the_json_schema_gives_every_field_one_type(name):
    data = json.loads(summary(name).to_json())
    assert data["format"] == "pyconvnet.summary" and data["version"] == 1
    spatial = len(data["input_shape"]) - 1
    assert isinstance(data["receptive_field"], list) and len(data["receptive_field"]) == spatial
    _check_types(name, data["layers"], spatial)


def test_receptive_fields_are_lists_per_axis():
    s = summary([conv(4, (3, 5)), max_pool(2), flatten(), linear(3)], (1, 16, 16))
    rows = s.to_dict()["layers"]
    assert rows[0]["receptive_field"] == [3, 5]
    assert rows[1]["receptive_field"] == [4, 6] and rows[1]["rf_jump"] == [2, 2]
    assert rows[2]["receptive_field"] == [] == rows[3]["rf_start"]
    assert s.to_dict()["receptive_field"] == [4, 6]
    one_d = summary([conv(4, 3), conv(4, 3)], (1, 16)).to_dict()
    assert one_d["receptive_field"] == [5] and one_d["layers"][0]["rf_jump"] == [1]


def test_summary_from_dict_refuses_bad_data():
    data = summary("lenet5").to_dict()
    with pytest.raises(ValueError, match="format is 'other'"):
        Summary.from_dict(dict(data, format="other"))
    with pytest.raises(ValueError, match="version 99"):
        Summary.from_dict(dict(data, version=99))
    with pytest.raises(ValueError, match="'total_macs' is missing"):
        Summary.from_dict({k: v for k, v in data.items() if k != "total_macs"})
    bad = dict(data, layers=[dict(data["layers"][0], params="156")])
    with pytest.raises(TypeError, match=r"layers\[0\].params must be int, got '156'"):
        Summary.from_dict(bad)
    bad = dict(data, layers=[dict(data["layers"][0], receptive_field=5)])
    with pytest.raises(TypeError, match="receptive_field must be a list"):
        Summary.from_dict(bad)


# --------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------

TOML_NET = """\
name = "tiny"
input_shape = [3, 32, 32]

[[layers]]
kind = "conv"
out_channels = 8
kernel_size = [3, 5]
padding = [1, 2]

[[layers]]
kind = "relu"

[[layers]]
kind = "residual"
activation = "relu"

[layers.body]
kind = "conv"
out_channels = 8
kernel_size = 3
padding = 1

[[layers]]
kind = "max_pool"
kernel_size = 2
"""


def test_a_hand_written_toml_file(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TOML_NET)
    layer, shape = load_network(path)
    assert shape == (3, 32, 32) and layer.name == "tiny"
    assert layer.children[0].config["kernel_size"] == (3, 5)      # an array is a tuple
    s = summary(path)
    assert s.name == "tiny" and s.input_shape == (3, 32, 32)
    assert s.output_shape == (8, 16, 16)
    assert s.total_params == 8 * 3 * 15 + 8 + 8 * 8 * 9 + 8
    assert summary(str(path), (3, 8, 8)).output_shape == (8, 4, 4)   # the argument wins


def test_a_json_file_with_a_single_network_layer(tmp_path):
    path = tmp_path / "block.json"
    block = residual([conv(4, 3, padding=1), relu()], conv(4, 1), name="block")
    save_network(block, path, (2, 8, 8))
    doc = json.loads(path.read_text())
    assert doc["network"]["kind"] == "residual" and doc["input_shape"] == [2, 8, 8]
    assert load_network(path) == (block, (2, 8, 8))
    assert summary(path).name == "block"


def test_older_spec_files_still_read(tmp_path):
    # a bare array of layers, as the command line has always read
    path = tmp_path / "old.json"
    path.write_text(json.dumps([{"kind": "conv", "out_channels": 4, "kernel_size": 3},
                                "relu", [{"kind": "max_pool", "kernel_size": 2}]]))
    layer, shape = load_network(path)
    assert shape is None and summary(path, (1, 10, 10)).output_shape == (4, 4, 4)
    with pytest.raises(ValueError, match="input_shape is required"):
        summary(path)


def test_files_without_a_known_suffix_are_sniffed(tmp_path):
    save_network([conv(4, 3)], tmp_path / "a.toml", (1, 8, 8))
    (tmp_path / "net").write_bytes((tmp_path / "a.toml").read_bytes())
    assert summary(str(tmp_path / "net")).output_shape == (4, 6, 6)


@pytest.mark.parametrize("content, message", [
    (b"\x00\x01\x02\xff garbage", "neither a JSON, a TOML nor an ONNX file"),
    (b"kind = \n", "neither a JSON, a TOML nor an ONNX file"),
])
def test_a_file_of_no_known_format(tmp_path, content, message):
    path = tmp_path / "model.bin"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        summary(path, (3, 8, 8))


@pytest.mark.parametrize("suffix, text, error, message", [
    (".json", "{", ValueError, "is not valid JSON"),
    (".toml", "layers = [", ValueError, "is not valid TOML"),
    (".json", '{"layer": []}', ValueError, "unknown field 'layer'; a network file has"),
    (".json", '{"layers": [], "network": {}}', ValueError, "exactly one of"),
    (".json", '{"version": 2, "layers": []}', ValueError, "version 2"),
    (".json", '{"input_shape": "3x8x8", "layers": []}', ValueError,
     "input_shape must be an array"),
    (".json", '{"layers": [{"kind": "conv", "out_channels": 4}]}', TypeError,
     r"layers\[0\] \(conv\): .*kernel_size"),
    (".json", '{"layers": [{"kind": "conv", "out_channels": 4, "kernel_size": 3, '
              '"kernel": 3}]}', ValueError, r"layers\[0\] \(conv\): unknown field 'kernel'"),
    (".json", '{"layers": [{"kind": "convv"}]}', ValueError,
     r"layers\[0\] \(convv\): unknown layer kind 'convv' \(did you mean 'conv'\?\)"),
    (".json", '{"layers": [{"kind": "max_pool", "kernel_size": "2"}]}', TypeError,
     r"layers\[0\] \(max_pool\): kernel_size"),
    (".toml", '[[layers]]\nkind = "residual"\n[layers.body]\nkind = "conv"\n'
              'out_channels = 0\nkernel_size = 1\n', ValueError,
     r"layers\[0\].body \(conv\): out_channels"),
    (".json", '{"layers": [{"out_channels": 4}]}', ValueError, "needs a 'kind' string"),
    (".json", '{"layers": [3]}', TypeError, "must be an object with a 'kind'"),
])
def test_bad_files_name_the_field(tmp_path, suffix, text, error, message):
    path = tmp_path / f"bad{suffix}"
    path.write_text(text)
    with pytest.raises(error, match=message) as info:
        load_network(path)
    assert str(path) in str(info.value)


def test_save_network_refuses_what_it_cannot_write(tmp_path):
    with pytest.raises(ValueError, match="ends in .json or .toml"):
        save_network([relu()], tmp_path / "net.yaml")
    with pytest.raises(ValueError, match="TOML cannot write"):
        save_network([adaptive_avg_pool((2, None))], tmp_path / "net.toml")
    save_network([adaptive_avg_pool((2, None))], tmp_path / "net.json")
    assert load_network(tmp_path / "net.json")[0].children[0].config["output_size"] \
        == (2, None)


def test_toml_strings_are_escaped(tmp_path):
    layer = sequential(relu(name='a "b" \\ c\n\t\x7f é \U0001F600'), name="x.y")
    save_network(layer, tmp_path / "n.toml")
    assert load_network(tmp_path / "n.toml")[0] == layer


def test_a_missing_file(tmp_path):
    with pytest.raises(ValueError, match="cannot read the spec file"):
        summary(str(tmp_path / "nope.toml"))


def test_a_file_named_like_a_builtin_network_does_not_shadow_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pathlib.Path("resnet18").write_text("[]")
    assert summary("resnet18").total_params == 11_689_512


# --------------------------------------------------------------------------
# depth and subtotals
# --------------------------------------------------------------------------

def test_depth_folds_rows_into_blocks():
    full = summary("resnet50")
    one = summary("resnet50", depth=1)
    assert [r.name for r in one.rows] == ["conv1", "bn1", "relu", "maxpool", "layer1",
                                          "layer2", "layer3", "layer4", "avgpool",
                                          "flatten", "fc"]
    layer1 = one.rows[4]
    inside = [r for r in full.rows if r.name.startswith("layer1.")]
    assert layer1.kind == "sequential" and layer1.layer.name == "layer1"
    assert layer1.params == sum(r.params for r in inside) == 215_808
    assert layer1.macs == sum(r.macs for r in inside)
    assert layer1.input_shape == (64, 56, 56) and layer1.output_shape == (256, 56, 56)
    assert layer1.receptive_field == inside[-1].receptive_field
    for key in ("total_params", "total_macs", "activation_memory", "saved_memory",
                "receptive_field", "total_backward_macs"):
        assert getattr(one, key) == getattr(full, key)
    two = summary("resnet50", depth=2)
    assert "layer1.0" in [r.name for r in two.rows]
    assert two.rows[[r.name for r in two.rows].index("layer1.0")].kind == "residual"
    assert summary("resnet50", depth=9).rows == full.rows


def test_depth_with_a_machine_sums_the_times():
    m = Machine(peak_flops=20e9, bandwidth=5e9)
    full, one = summary("resnet18", machine=m), summary("resnet18", machine=m, depth=1)
    assert one.predicted_time == pytest.approx(full.predicted_time)
    assert {r.bound for r in one.rows} <= {"compute", "memory"}


@pytest.mark.parametrize("depth", [0, -1, 1.5, "1"])
def test_a_bad_depth(depth):
    with pytest.raises((ValueError, TypeError), match="depth"):
        summary("lenet5", depth=depth)


def test_stage_subtotals_in_the_tables():
    s = summary("resnet18")
    text = s.to_text()
    lines = [line for line in text.splitlines() if "(total)" in line]
    assert [line.split()[0] for line in lines] == ["layer1", "layer2", "layer3", "layer4"]
    layer2 = sum(r.params for r in s.rows if r.name.startswith("layer2."))
    assert f"{layer2:,}" in lines[1] and "subtotal" in lines[1]
    md = s.to_markdown()
    assert "| **layer3 (total)** | **subtotal** |" in md
    assert "(total)" not in s.to_text(subtotals=False)
    assert "(total)" not in s.to_markdown(subtotals=False)
    assert s.to_markdown(subtotals=False).count("\n|") == len(s.rows) + 2
    # a network without blocks has none
    assert "(total)" not in summary("lenet5").to_text()
    assert "(total)" not in summary("resnet18", depth=1).to_text()
    assert [name for name, _ in s.stages()][4:8] == ["layer1", "layer2", "layer3", "layer4"]
