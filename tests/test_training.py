"""Training: the loss goes down on real digits, bad runs stop clearly, the CLI runs."""
import argparse
import os
import runpy

import numpy as np
import pytest

from conftest import import_oracle
from pyconvnet import nn
from pyconvnet.nn.train import evaluate, fit, predict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def digits():
    import_oracle("sklearn")
    from pyconvnet.datasets import load_digits
    return load_digits()


def test_lenet5_learns_a_small_subset(digits):
    X, y = digits
    Xs, ys = X[:240], y[:240]
    model = nn.lenet5(activation="relu", pooling="max", rng=0, n_threads=1)
    loss0, acc0 = evaluate(model, Xs, ys)
    history = fit(model, Xs, ys, epochs=4, batch_size=16, lr=0.05, momentum=0.9, rng=0)
    loss1, acc1 = evaluate(model, Xs, ys)
    assert history["loss"][-1] < history["loss"][0] < 2.5
    assert loss1 < 0.5 * loss0
    assert acc1 > 0.6 > 0.1 + acc0 / 2     # chance is 0.1
    held_out = evaluate(model, X[1500:1700], y[1500:1700])[1]
    assert held_out > 0.4


def test_training_is_reproducible(digits):
    # one thread: the order of floating-point sums is then fixed
    X, y = digits
    runs = []
    for _ in range(2):
        model = nn.lenet5(pooling="subsampling", rng=4, n_threads=1)
        fit(model, X[:64], y[:64], epochs=1, batch_size=16, lr=0.02, rng=5)
        runs.append(model.params()["c1.weight"])
    np.testing.assert_array_equal(*runs)


def test_online_learning_batch_size_one():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 2)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    model = nn.Sequential(nn.Linear(2, 2, rng=0))
    opt = nn.SGD(model, lr=0.1)
    h = fit(model, X, y, epochs=3, batch_size=1, optimizer=opt)
    assert opt.steps == 120
    assert h["accuracy"][-1] > 0.85


def test_nan_loss_stops_naming_the_step():
    X = np.ones((8, 3), np.float32)
    X[5] = np.nan
    model = nn.Sequential(nn.Linear(3, 2, rng=0))
    with pytest.raises(FloatingPointError, match=r"the loss became nan at step \d+ "
                                                 r"\(epoch 1, batch \d+\)"):
        fit(model, X, np.zeros(8, np.int64), epochs=1, batch_size=2, lr=0.1)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning",
                            "ignore:invalid value:RuntimeWarning")
def test_divergence_is_reported():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((64, 4)).astype(np.float32) * 100
    model = nn.Sequential(nn.Linear(4, 32, rng=0), nn.ReLU(), nn.Linear(32, 3, rng=0))
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        fit(model, X, rng.integers(0, 3, 64), epochs=50, batch_size=8, lr=1e6)


def test_fit_argument_errors():
    model = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(ValueError, match="X has 4 examples but y has 3 labels"):
        fit(model, np.zeros((4, 3)), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\]"):
        fit(model, np.zeros((4, 3), np.float32), np.array([0, 1, 2, 0]), batch_size=4)


def test_predict_keeps_the_mode():
    model = nn.Sequential(nn.Dropout(0.5, rng=0))
    x = np.ones((4, 3))
    np.testing.assert_array_equal(predict(model, x), x)
    assert model.training


def _parse(argv):
    from pyconvnet._cli_train import add_subcommands
    parser = argparse.ArgumentParser()
    add_subcommands(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_train_lenet5_writes_weights_plots_and_accuracy(tmp_path, capsys, digits):
    import_oracle("matplotlib")
    args = _parse(["train-lenet5", "--output-dir", str(tmp_path), "--epochs", "1",
                   "--limit", "96", "--no-progress", "--seed", "3"])
    assert args.func(args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("test accuracy: ")
    acc = float(out[-1].split(": ")[1])
    assert 0.0 <= acc <= 1.0 and len(out[-1].split(": ")[1]) == 5
    names = sorted(os.listdir(tmp_path))
    assert names == ["lenet5_c1_feature_maps.png", "lenet5_digits.npz",
                     "lenet5_learning_curves.png"]
    assert (tmp_path / "lenet5_learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    model = nn.lenet5(activation="relu", pooling="max").load(tmp_path / "lenet5_digits.npz")
    assert model.n_params() == 61706


def test_example_script_is_a_thin_wrapper(tmp_path, capsys, digits):
    script = runpy.run_path(os.path.join(ROOT, "examples", "train_lenet5.py"))
    status = script["main"](["--output-dir", str(tmp_path), "--epochs", "1", "--limit", "32",
                             "--no-plots", "--no-progress", "--pooling", "subsampling",
                             "--activation", "tanh", "--sparse-c3"])
    assert status == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("test accuracy: ")
    assert os.listdir(tmp_path) == ["lenet5_digits.npz"]


def test_cli_rejects_bad_values(capsys):
    with pytest.raises(SystemExit):
        _parse(["train-lenet5", "--epochs", "0"])
    assert "must be a positive integer" in capsys.readouterr().err


def test_warmup_ramps_the_learning_rate():
    seen = []

    class Recording(nn.SGD):
        def step(self):
            seen.append(self.lr_scale)
            super().step()

    model = nn.Sequential(nn.Linear(2, 2, rng=0))
    X = np.zeros((8, 2), np.float32)
    fit(model, X, np.zeros(8, np.int64), epochs=2, batch_size=2,
        optimizer=Recording(model, lr=0.1), warmup=4)
    assert seen == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0]


def test_sgd_lr_scale_multiplies_every_rate():
    fc = nn.Linear(1, 1, bias=False, dtype=np.float64)
    fc.params()["weight"][...] = 1.0
    fc._grads["weight"] = np.array([[1.0]])
    opt = nn.SGD(fc, lr=0.1)
    opt.lr_scale = 0.5
    opt.step()
    assert fc.params()["weight"][0, 0] == pytest.approx(0.95)


# --- the train-lenet5 command line ------------------------------------------------

def _main(argv, capsys):
    from pyconvnet.__main__ import main
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_trains_without_matplotlib_and_says_how_to_get_the_plots(tmp_path):
    import_oracle("sklearn")
    from conftest import run_python
    code = ("import sys; sys.modules['matplotlib'] = None; "
            "from pyconvnet.__main__ import main; "
            f"sys.exit(main(['train-lenet5', '--epochs', '1', '--limit', '32', "
            f"'--no-progress', '--output-dir', {str(tmp_path)!r}]))")
    done = run_python(["-c", code], cwd=str(tmp_path), timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1].startswith("test accuracy: ")
    assert lines[-2] == ("skipped the plots: matplotlib is not installed (pip install "
                         "matplotlib to get them)")
    assert "trained 1 epoch in" in done.stdout and "1 epochs" not in done.stdout
    assert os.listdir(tmp_path) == ["lenet5_digits.npz"]
    assert "Traceback" not in done.stderr


def test_cli_default_output_dir_is_one_folder_in_the_current_directory(
        tmp_path, monkeypatch, capsys, digits):
    from pyconvnet.nn.train import DEFAULT_OUTPUT_DIR
    monkeypatch.chdir(tmp_path)
    status, out, _ = _main(["train-lenet5", "--epochs", "1", "--limit", "16",
                            "--no-progress", "--no-plots"], capsys)
    assert status == 0
    folder = tmp_path / DEFAULT_OUTPUT_DIR
    assert sorted(os.listdir(tmp_path)) == [DEFAULT_OUTPUT_DIR]
    assert os.listdir(folder) == ["lenet5_digits.npz"]
    assert f"wrote {folder / 'lenet5_digits.npz'}" in out   # the full path


def test_cli_help_gives_every_option_its_text_and_default(capsys):
    status, out, _ = _main(["train-lenet5", "--help"], capsys)
    assert status == 0
    assert out.startswith("usage: pyconvnet train-lenet5")
    from pyconvnet.__main__ import build_parser
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    train = sub.choices["train-lenet5"]
    formatter = train._get_formatter()
    options = [a for a in train._actions if a.option_strings and a.dest != "help"]
    assert len(options) == 18
    for action in options:
        text = formatter._get_help_string(action)
        assert action.help and "(default" in text, action.option_strings
    from pyconvnet.nn.train import DEFAULT_OUTPUT_DIR
    assert DEFAULT_OUTPUT_DIR == "pyconvnet-lenet5"      # as the help says
    flat = " ".join(out.split())
    for snippet in ("--epochs EPOCHS passes over the training digits (default: 15)",
                    "(default: pyconvnet-lenet5 in the current directory)",
                    "(default: all cores)",
                    "(default: 0.2)", "(default: max)"):
        assert snippet in flat, snippet


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "abc"], "argument --epochs: must be a positive integer, got 'abc'"),
    (["--epochs", "0"], "argument --epochs: must be a positive integer, got '0'"),
    (["--lr", "fast"], "argument --lr: must be a positive number, got 'fast'"),
    (["--test-size", "1.5"], "argument --test-size: must be a number between 0 and 1"),
    (["--warmup", "-1"], "argument --warmup: must be a non-negative integer, got '-1'"),
])
def test_cli_bad_values_name_the_option_and_the_rule(argv, message, capsys):
    status, _, err = _main(["train-lenet5", *argv], capsys)
    assert status == 2
    assert "usage: pyconvnet train-lenet5" in err
    assert f"pyconvnet train-lenet5: error: {message}" in err


def test_cli_output_into_a_closed_pipe_ends_quietly(tmp_path):
    import_oracle("sklearn")
    import subprocess
    import sys

    import pyconvnet
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(pyconvnet.__file__)))
    code = ("import sys; from pyconvnet.__main__ import main; "
            f"sys.exit(main(['train-lenet5', '--epochs', '1', '--limit', '16', "
            f"'--no-progress', '--no-plots', '--output-dir', {str(tmp_path)!r}]))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=str(tmp_path), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()            # the reader is gone before anything is written
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=300) == 1
    assert err == ""
