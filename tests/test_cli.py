"""Tests for the summary, shape and list subcommands of ``python -m pyconvnet``."""
import argparse
import csv
import io
import json
import pathlib
import tempfile

import pytest
from conftest import run_python

from pyconvnet._cli_shapes import add_subcommands

ROOT = pathlib.Path(__file__).resolve().parents[1]


def cli(argv, capsys):
    """Run a subcommand in-process; returns (exit status, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="python -m pyconvnet")
    sub = parser.add_subparsers(dest="command", metavar="command")
    sub.required = True
    add_subcommands(sub)
    try:
        args = parser.parse_args(argv)
        status = args.func(args)
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def run_module(*argv):
    return run_python(["-m", "pyconvnet", *argv], cwd=tempfile.gettempdir(), timeout=120)


# --- summary ------------------------------------------------------------------

def test_summary_table(capsys):
    status, out, _ = cli(["summary", "resnet50", "--input", "3x224x224"], capsys)
    assert status == 0
    assert "Total params:         25,557,032" in out
    assert "(4.09 G)" in out
    assert "layer4.2.conv3" in out
    assert "Receptive field:      427" in out


@pytest.mark.parametrize("fmt", ["markdown", "csv", "json"])
def test_summary_formats(fmt, capsys):
    status, out, _ = cli(["summary", "lenet5", "--format", fmt], capsys)
    assert status == 0
    if fmt == "json":
        data = json.loads(out)
        assert data["total_params"] == 61_706
        assert data["input_shape"] == [1, 32, 32]
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert sum(int(r["params"]) for r in rows) == 61_706
    else:
        assert out.startswith("**lenet5")
        assert "| C1 | conv | 6x28x28 | 156 |" in out


def test_summary_options(capsys):
    status, out, _ = cli(["summary", "vgg16", "-f", "json", "--convention", "full",
                          "--dtype", "float16", "--batch-size", "2"], capsys)
    assert status == 0
    data = json.loads(out)
    assert (data["convention"], data["dtype"], data["batch_size"]) == \
        ("full", "float16", 2)
    assert data["receptive_field"] == [212, 212]     # one entry per spatial axis


def test_summary_of_a_json_spec_file(tmp_path, capsys):
    spec = [{"kind": "conv", "out_channels": 10, "kernel_size": 5, "padding": 2},
            {"kind": "relu"},
            {"kind": "residual", "body": [{"kind": "conv", "out_channels": 10,
                                           "kernel_size": 3, "padding": 1}]},
            {"kind": "concat", "branches": [[], [{"kind": "max_pool",
                                                  "kernel_size": 3, "stride": 1,
                                                  "padding": 1}]]}]
    path = tmp_path / "net.json"
    path.write_text(json.dumps(spec))
    status, out, _ = cli(["summary", str(path), "--input", "3x32x32", "-f", "json"],
                         capsys)
    assert status == 0
    data = json.loads(out)
    assert data["output_shape"] == [20, 32, 32]
    assert data["total_params"] == 760 + 910


@pytest.mark.parametrize("argv, message", [
    (["summary", "resnet5"], "unknown architecture 'resnet5'"),
    (["summary", "alexnet", "--input", "3x32x32"], "vanishes at layer 'features.12'"),
    (["summary", "alexnet", "--input", "3xax2"], "must look like '3x224x224'"),
    (["summary", "alexnet", "--format", "yaml"], "invalid choice: 'yaml'"),
    (["summary", "alexnet", "--batch-size", "0"], "expected a positive integer"),
    (["summary", "alexnet", "--dtype", "float128"], "unknown dtype"),
    (["summary", "missing.json", "--input", "3x8x8"], "cannot read the spec file"),
    (["shape", "32"], "the following arguments are required: --kernel"),
    (["shape", "3", "--kernel", "5"], "larger than the padded input"),
    (["shape", "3.5", "--kernel", "3"], "expected a positive integer"),
    (["shape", "32", "--kernel", "3", "--stride", "0"], "argument --stride/-s"),
    (["shape", "32", "-k", "3", "-p", "-1"], "argument --padding/-p"),
    (["shape", "7", "-k", "3", "-s", "3", "--strict"], "does not tile"),
    (["shape", "8", "-k", "3", "-p", "2", "--pool"], "at most half the kernel"),
    (["shape", "4", "-k", "3", "-s", "2", "--transposed", "--output-padding", "2"],
     "output_padding must be smaller"),
    (["shape", "32", "-k", "3", "--in-channels", "3"], "go together"),
    (["shape", "32", "-k", "3", "--in-channels", "3", "--out-channels", "4",
      "--groups", "2"], "not divisible by groups=2"),
    (["nonsense"], "invalid choice: 'nonsense'"),
])
def test_bad_arguments_exit_with_status_2(argv, message, capsys):
    status, out, err = cli(argv, capsys)
    assert status == 2
    assert message in err
    assert "usage:" in err


def test_unknown_architecture_lists_the_known_ones(capsys):
    _, _, err = cli(["summary", "resnet5"], capsys)
    assert "known architectures:" in err
    assert "mobilenet_v2" in err and "densenet121" in err


# --- training, roofline and machine -------------------------------------------

def test_summary_training_table(capsys):
    status, out, _ = cli(["summary", "lenet5", "--training", "--optimizer", "adam",
                          "--batch-size", "8"], capsys)
    assert status == 0
    assert "Input grad MACs" in out and "Weight grad MACs" in out
    assert "Backward MACs:          715,440" in out
    assert "Optimizer state (adam)" in out and "Training memory:" in out
    status, plain, _ = cli(["summary", "lenet5", "--batch-size", "8"], capsys)
    assert out.startswith(plain.rstrip("\n"))
    status, md, _ = cli(["summary", "lenet5", "--training", "--format", "markdown"],
                        capsys)
    assert "**Training**" in md and "| C3 | conv | 240,000 | 240,000 |" in md


def test_summary_training_json_and_inplace(capsys):
    status, out, _ = cli(["summary", "mobilenet_v2", "--format", "json",
                          "--batch-size", "8"], capsys)
    data = json.loads(out)
    assert data["total_backward_macs"] == sum(r["backward_macs"] for r in data["layers"])
    status, out, _ = cli(["summary", "resnet18", "--format", "json", "--inplace"], capsys)
    assert json.loads(out)["inplace"] is True


def test_bad_optimizer_is_a_usage_error(capsys):
    status, _, err = cli(["summary", "lenet5", "--optimizer", "rmsprop"], capsys)
    assert status == 2 and "invalid choice: 'rmsprop'" in err


def test_machine_and_roofline(capsys):
    status, out, _ = cli(["machine", "--json", "--threads", "1"], capsys)
    assert status == 0
    data = json.loads(out)
    assert data["peak_gflops"] > 0.1 and data["bandwidth_gbs"] > 0.1
    assert data["n_threads"] == 1
    status, out, _ = cli(["summary", "lenet5", "--roofline"], capsys)
    assert status == 0
    assert "Roofline (forward pass, batch 1)" in out and "Predicted time:" in out


def test_summary_preset(capsys):
    status, out, _ = cli(["summary", "resnet50", "--preset", "ptflops"], capsys)
    assert status == 0
    assert "(4.12 G)" in out and "ptflops MAC convention" in out
    status, _, err = cli(["summary", "resnet50", "--preset", "thop"], capsys)
    assert status == 2 and "invalid choice: 'thop'" in err


# --- shape --------------------------------------------------------------------

def test_shape_prints_the_worked_arithmetic(capsys):
    status, out, _ = cli(["shape", "32", "--kernel", "5", "--stride", "1",
                          "--padding", "2"], capsys)
    assert status == 0
    assert out == "(32 + 2*2 - 5)/1 + 1 = 32\n"


def test_shape_with_channels_gives_parameters(capsys):
    status, out, _ = cli(["shape", "32", "-k", "5", "-p", "2", "--in-channels", "3",
                          "--out-channels", "10"], capsys)
    assert status == 0
    assert "output shape: 10x32x32" in out
    assert "parameters: 760" in out
    assert "MACs: 768,000" in out


def test_shape_reports_a_stride_that_does_not_fit(capsys):
    status, out, _ = cli(["shape", "7", "-k", "3", "-s", "3"], capsys)
    assert status == 0
    assert "stride 3 does not fit" in out
    assert "padding that fits: 1 (output 3)" in out


def test_shape_variants(capsys):
    _, out, _ = cli(["shape", "224x224", "-k", "7", "-s", "2", "-p", "3"], capsys)
    assert out.rstrip().endswith("output: 112x112")
    _, out, _ = cli(["shape", "5", "-k", "2", "-s", "3", "-p", "1", "--pool",
                     "--ceil-mode"], capsys)
    assert "dropped: 2" in out
    _, out, _ = cli(["shape", "16", "-k", "4", "-s", "2", "-p", "1", "--transposed"],
                    capsys)
    assert out.strip().endswith("= 32")
    _, out, _ = cli(["shape", "32", "-k", "3", "-d", "2", "-p", "same"], capsys)
    assert out.strip().endswith("= 32")
    _, out, _ = cli(["shape", "28", "-k", "2", "--pool"], capsys)
    assert out.strip() == "(28 + 2*0 - 2)/2 + 1 = 14"


# --- list ---------------------------------------------------------------------

def test_list(capsys):
    status, out, _ = cli(["list"], capsys)
    assert status == 0
    assert "resnet50" in out and "3x224x224" in out
    assert "lenet5" in out and "1x32x32" in out
    _, names, _ = cli(["list", "--names"], capsys)
    assert "alexnet\n" in names and "vgg16\n" in names


# --- through python -m pyconvnet ------------------------------------------------

def test_module_entry_point():
    done = run_module("summary", "resnet50", "--input", "3x224x224")
    assert done.returncode == 0, done.stderr
    assert "25,557,032" in done.stdout
    done = run_module("shape", "32", "--kernel", "5", "--stride", "1", "--padding", "2")
    assert done.returncode == 0 and "= 32" in done.stdout
    done = run_module("summary", "nope")
    assert done.returncode == 2
    assert "python -m pyconvnet summary: error: unknown architecture" in done.stderr


@pytest.mark.parametrize("argv", [
    ["shape", "32", "--kernel", "5", "--padding", "2"],
    ["summary", "resnet50", "--format", "json"],
    ["list"],
])
def test_calculator_commands_load_no_kernel(argv):
    # what the `pyconvnet` script runs (pyconvnet.__main__:main), in a fresh process
    code = (f"import sys; from pyconvnet.__main__ import main; status = main({argv!r}); "
            f"print(status, sorted(m for m in sys.modules if m.startswith('pyconvnet._ext.')))")
    done = run_python(["-c", code], cwd=tempfile.gettempdir(), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 []"


@pytest.mark.parametrize("argv", [["list"], ["summary", "resnet50"], ["--help"],
                                  ["train-lenet5", "--help"]])
def test_output_into_a_closed_pipe_ends_quietly(argv):
    # what `pyconvnet ... | head -0` does: the reader goes away first
    import os
    import subprocess
    import sys

    import pyconvnet
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(pyconvnet.__file__)))
    code = f"import sys; from pyconvnet.__main__ import main; sys.exit(main({argv!r}))"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tempfile.gettempdir(), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) in (0, 1)
    assert err == ""


def test_usage_names_the_pyconvnet_command():
    from pyconvnet.__main__ import build_parser
    assert build_parser().format_usage().startswith("usage: pyconvnet ")
    done = run_module("train-lenet5", "--epochs", "abc")
    assert done.returncode == 2
    # run as a module, the usage says so
    assert ("python -m pyconvnet train-lenet5: error: argument --epochs: must be a "
            "positive integer, got 'abc'") in done.stderr


# --- network files, depth and subtotals ------------------------------------------

def test_summary_of_a_toml_file_that_carries_its_input_shape(tmp_path, capsys):
    from pyconvnet.shapes import conv, max_pool, relu, save_network
    path = tmp_path / "tiny.toml"
    save_network([conv(6, 5, name="c1"), relu(), max_pool(2)], path, (1, 32, 32))
    status, out, _ = cli(["summary", str(path), "-f", "json"], capsys)
    assert status == 0
    data = json.loads(out)
    assert data["name"] == "tiny" and data["input_shape"] == [1, 32, 32]
    assert data["output_shape"] == [6, 14, 14]
    status, out, _ = cli(["summary", str(path), "--input", "1x16x16"], capsys)
    assert status == 0 and "tiny: input 1x16x16, output 6x6x6" in out


def test_summary_depth_and_subtotals(capsys):
    status, out, _ = cli(["summary", "resnet50", "--depth", "1"], capsys)
    assert status == 0
    assert "layer1.0" not in out and "215,808" in out and "25,557,032" in out
    status, out, _ = cli(["summary", "resnet50"], capsys)
    assert "layer1 (total)" in out
    status, out, _ = cli(["summary", "resnet50", "--no-subtotals", "-f", "markdown"],
                         capsys)
    assert status == 0 and "(total)" not in out


@pytest.mark.parametrize("content, message", [
    ("{", "is not valid JSON"),
    ('{"layers": [{"kind": "conv", "out_channels": 4, "kernel": 3}]}',
     "unknown field 'kernel'"),
    ('{"layers": [{"kind": "relu"}]}', "carries no input shape: give one with --input"),
])
def test_bad_network_files_exit_with_status_2(tmp_path, capsys, content, message):
    path = tmp_path / "net.json"
    path.write_text(content)
    status, _, err = cli(["summary", str(path)], capsys)
    assert status == 2 and message in err and "usage:" in err


def test_a_file_of_no_known_format_exits_with_status_2(tmp_path, capsys):
    path = tmp_path / "model.bin"
    path.write_bytes(b"\x00\x01 not a network")
    status, _, err = cli(["summary", str(path), "--input", "3x8x8"], capsys)
    assert status == 2
    assert "is neither a JSON, a TOML nor an ONNX file" in err


def test_output_piped_into_head_ends_quietly(tmp_path):
    # `pyconvnet summary densenet201 | head -n 5`: the reader takes a few lines
    # and goes away while the table is still being written
    import os
    import subprocess
    import sys

    import pyconvnet
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(pyconvnet.__file__)))
    for argv in (["summary", "densenet201"], ["summary", "densenet201", "-f", "csv"]):
        code = f"import sys; from pyconvnet.__main__ import main; sys.exit(main({argv!r}))"
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        lines = [proc.stdout.readline() for _ in range(5)]
        proc.stdout.close()
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert proc.wait(timeout=120) in (0, 1)
        assert lines[0].startswith(b"densenet201") or lines[0].startswith(b"name,")
        assert "Traceback" not in err and "BrokenPipeError" not in err
        assert err == ""
