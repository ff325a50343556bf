"""Tests for pyconvnet._validation: one answer to each argument question,
the same in every public function."""
import inspect
import os
import tempfile

import numpy as np
import pytest
from conftest import import_oracle, run_python
from hypothesis import given
from hypothesis import strategies as st

from pyconvnet import functional, nn, shapes, signal
from pyconvnet._validation import check_bool, check_int, check_padding, ntuple

X = np.random.default_rng(0).standard_normal((1, 2, 7, 7))
W = np.random.default_rng(1).standard_normal((3, 2, 3, 3))


# --- integers and bools ---------------------------------------------------------

@given(st.integers(-5, 5), st.sampled_from([int, np.int8, np.int64, np.uint16]))
def test_check_int_takes_python_and_numpy_integers(value, kind):
    if kind is np.uint16 and value < 0:
        return
    assert check_int(kind(value), "n") == value
    assert type(check_int(kind(value), "n")) is int


@pytest.mark.parametrize("value", [True, np.bool_(False), 2.0, "2", None])
def test_check_int_refuses_bools_floats_and_strings(value):
    with pytest.raises(TypeError, match="n must be an int, got"):
        check_int(value, "n")


def test_one_wording_for_a_value_below_the_minimum():
    with pytest.raises(ValueError, match="^stride must be >= 1, got 0$"):
        check_int(0, "stride", 1)
    with pytest.raises(ValueError, match="^stride must be >= 1, got 0$"):
        shapes.conv_output_size(5, 3, stride=0)
    with pytest.raises(ValueError, match="^stride must be >= 1, got 0$"):
        functional.conv2d(X, W, stride=0)


@pytest.mark.parametrize("value", [True, False, np.bool_(True), np.bool_(False)])
def test_check_bool_takes_python_and_numpy_bools(value):
    assert check_bool(value, "flag") is bool(value)


@pytest.mark.parametrize("value", [0, 1, np.int64(1), "yes", None, 1.0])
def test_check_bool_refuses_everything_else(value):
    with pytest.raises(TypeError, match="flag must be True or False"):
        check_bool(value, "flag")


def _bool_calls(flag):
    """Every public function with a bool argument, called with ``flag``."""
    return {
        "conv_output_size": lambda: shapes.conv_output_size(7, 3, explain=flag),
        "pool_output_size": lambda: shapes.pool_output_size(7, 3, ceil_mode=flag),
        "conv_params": lambda: shapes.conv_params(3, 4, 3, bias=flag),
        "linear_params": lambda: shapes.linear_params(3, 4, bias=flag),
        "shapes.conv": lambda: shapes.conv(4, 3, bias=flag),
        "shapes.max_pool": lambda: shapes.max_pool(2, ceil_mode=flag),
        "shapes.batch_norm": lambda: shapes.batch_norm(affine=flag),
        "max_pool2d": lambda: functional.max_pool2d(X, 2, ceil_mode=flag),
        "max_pool2d return_indices": lambda: functional.max_pool2d(X, 2, return_indices=flag),
        "avg_pool2d": lambda: functional.avg_pool2d(X, 2, count_include_pad=flag),
        "conv2d_backward": lambda: functional.conv2d_backward(
            np.ones((1, 3, 5, 5)), X, W, compute_input_grad=flag),
        "similarity_map": lambda: signal.similarity_map(X[0, 0], W[0, 0], centered=flag),
        "summary of nn.MaxPool2d": lambda: shapes.summary(
            nn.Sequential(nn.MaxPool2d(2, ceil_mode=flag)), (2, 7, 7)),
    }


@pytest.mark.parametrize("name", sorted(_bool_calls(True)))
def test_numpy_bools_are_bools_everywhere(name):
    with_numpy, with_python = _bool_calls(np.bool_(True))[name](), _bool_calls(True)[name]()
    if isinstance(with_python, np.ndarray):
        np.testing.assert_array_equal(with_numpy, with_python)
    elif isinstance(with_python, tuple) and isinstance(with_python[0], np.ndarray):
        for a, b in zip(with_numpy, with_python):
            if b is not None:
                np.testing.assert_array_equal(a, b)
    else:
        assert with_numpy == with_python


@pytest.mark.parametrize("name", sorted(_bool_calls(True)))
def test_ints_are_not_bools_anywhere(name):
    with pytest.raises(TypeError, match="must be True or False"):
        _bool_calls(1)[name]()


# --- per-axis sizes and padding ----------------------------------------------------

def test_ntuple_expands_and_checks():
    assert ntuple(3, 2, "k") == (3, 3)
    assert ntuple([3], 3, "k") == (3, 3, 3)
    assert ntuple(np.array([1, 2]).tolist(), 2, "k") == (1, 2)
    with pytest.raises(ValueError, match=r"k must be an int or a sequence of 2 ints, got 3"):
        ntuple((1, 2, 3), 2, "k")


@pytest.mark.parametrize("text", ["same", "SAME", "Same", "valid", "VALID"])
def test_check_padding_reads_the_modes_in_any_case(text):
    assert check_padding(text) == text.lower()


def test_check_padding_refuses_other_strings_and_negative_sizes():
    with pytest.raises(ValueError, match="padding must be one of 'valid', 'same', got 'full'"):
        check_padding("full")
    with pytest.raises(ValueError, match=r"padding\[1\] must be >= 0, got -1"):
        check_padding((1, -1))
    with pytest.raises(ValueError, match="padding must be >= 0, got -1"):
        check_padding((1, -1), n=2)


@pytest.mark.parametrize("mode", ["SAME", "Valid"])
def test_padding_modes_in_any_case_everywhere(mode):
    lower = mode.lower()
    np.testing.assert_array_equal(functional.conv2d(X, W, padding=mode),
                                  functional.conv2d(X, W, padding=lower))
    assert functional.conv2d_backward(np.ones((1, 3, 7, 7) if lower == "same" else (1, 3, 5, 5)),
                                      X, W, padding=mode)[1].shape == W.shape
    assert shapes.conv_output_size(7, 3, padding=mode) == \
        shapes.conv_output_size(7, 3, padding=lower)
    assert shapes.conv(4, 3, padding=mode).config["padding"] == lower
    layer = nn.Conv2d(2, 3, 3, padding=mode, rng=0)
    assert layer.padding == lower
    assert layer.forward(X.astype(np.float32)).shape == \
        nn.Conv2d(2, 3, 3, padding=lower, rng=0).forward(X.astype(np.float32)).shape
    assert shapes.summary(nn.Sequential(layer), (2, 7, 7)).output_shape == \
        ((3, 7, 7) if lower == "same" else (3, 5, 5))


def test_padding_modes_in_any_case_on_dask_arrays():
    da = import_oracle("dask.array")
    from pyconvnet import dask as pdask

    lazy = pdask.conv2d(da.from_array(X, chunks=(1, 2, 4, 4)), W, padding="SAME")
    np.testing.assert_allclose(lazy.compute(), functional.conv2d(X, W, padding="same"))


# --- errors name the argument as the signature does --------------------------------

def _array_functions():
    names = []
    for name in functional.__all__:
        function = getattr(functional, name)
        params = list(inspect.signature(function).parameters)
        if "x" in params:
            names.append(name)
    return names


@pytest.mark.parametrize("name", _array_functions())
def test_errors_name_x_as_the_signature_does(name):
    function = getattr(functional, name)
    params = list(inspect.signature(function).parameters)
    args = {}
    nd = 1 if "1d" in name else 3 if "3d" in name else 2
    shape = (1, 2) + (6,) * nd
    args["x"] = np.zeros(shape, complex)
    if "weight" in params:
        args["weight"] = np.zeros((2, 2) + (3,) * nd)
    if "grad_output" in params:
        args["grad_output"] = np.zeros((1, 2) + (4,) * nd)
    for p in ("kernel_size", "output_size", "factor"):
        if p in params and inspect.signature(function).parameters[p].default is \
                inspect.Parameter.empty:
            args[p] = 2
    for p in ("beta", "bias"):
        if p in params and p not in args:
            args[p] = np.ones(2)
    with pytest.raises(TypeError, match=r"^x: dtype complex128 is not supported"):
        function(**args)


# --- thread counts ------------------------------------------------------------------

_THREADS = ("from pyconvnet._validation import check_n_threads as c; "
            "from pyconvnet._ext._openmp_helpers import openmp_enabled; "
            "print(openmp_enabled(), c(None), c(-1), c(-2), c(-100), c(3))")


@pytest.mark.parametrize("omp", ["1", "2", "3"])
def test_negative_n_threads_count_down_from_what_none_gives(omp):
    done = run_python(["-c", _THREADS], cwd=tempfile.gettempdir(),
                      env={"OMP_NUM_THREADS": omp})
    assert done.returncode == 0, done.stderr
    enabled, none, minus1, minus2, minus100, three = done.stdout.split()
    if enabled == "False":
        assert (none, minus1, minus2, minus100, three) == ("1",) * 5
        return
    top = int(omp)
    assert int(none) == int(minus1) == top
    assert int(minus2) == max(1, top - 1)
    assert int(minus100) == 1
    assert int(three) == 3


def test_negative_n_threads_follow_a_threadpoolctl_limit():
    threadpoolctl = import_oracle("threadpoolctl")
    from pyconvnet._ext._openmp_helpers import openmp_enabled
    from pyconvnet._validation import check_n_threads

    if not openmp_enabled():
        pytest.fail("the default build compiles OpenMP in")
    with threadpoolctl.threadpool_limits(2, user_api="openmp"):
        assert check_n_threads(None) == check_n_threads(-1) == 2
        assert check_n_threads(-2) == 1


# --- nothing compiled at import time ---------------------------------------------------

_PURE = r"""
import importlib.abc, sys, types, pathlib
root = pathlib.Path(sys.argv[1])

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.startswith("pyconvnet._ext"):
            raise ImportError(f"{name} must not be imported")
        return None

sys.meta_path.insert(0, Refuse())
# a bare parent package, so that only the modules under test run
package = types.ModuleType("pyconvnet")
package.__path__ = [str(root)]
sys.modules["pyconvnet"] = package
import pyconvnet._validation, pyconvnet._geometry, pyconvnet.shapes, pyconvnet.architectures
s = pyconvnet.shapes.summary("lenet5")
print(s.total_params, pyconvnet.shapes.conv_output_size(7, 3, padding="SAME"))
print(sorted(m for m in sys.modules if m.startswith("pyconvnet._ext")))
"""


def test_shapes_and_validation_load_no_compiled_module():
    import pyconvnet

    root = os.path.dirname(pyconvnet.__file__)
    done = run_python(["-c", _PURE, root], cwd=tempfile.gettempdir())
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["61706 7", "[]"]
