"""The package itself: version, configuration, thread counts, docstring examples."""
import doctest
import importlib
import os
import pkgutil
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import import_oracle, run_python

import pyconvnet
from pyconvnet._validation import as_float_array, check_n_threads, ntuple, result_dtype


def test_version_and_config():
    assert isinstance(pyconvnet.__version__, str) and pyconvnet.__version__.count(".") >= 2
    cfg = pyconvnet.show_config(mode="dicts")
    assert cfg["version"] == pyconvnet.__version__
    assert cfg["openmp"] is True, "the default build compiles OpenMP in"
    assert cfg["default_n_threads"] >= 1
    assert cfg["blas"]


def test_show_config_prints(capsys):
    assert pyconvnet.show_config() is None
    out = capsys.readouterr().out
    assert "openmp" in out and "default_n_threads" in out and "blas" in out
    with pytest.raises(ValueError, match="mode"):
        pyconvnet.show_config(mode="yaml")


def test_config_reports_the_vector_loops_and_the_blas_threads():
    from pyconvnet._ext import _conv
    threadpoolctl = import_oracle("threadpoolctl")
    assert pyconvnet.show_config(mode="dicts")["simd"] == _conv.simd()
    assert _conv.simd() in ("avx512", "avx2", "baseline")
    for n in (1, 2):
        with threadpoolctl.threadpool_limits(limits=n, user_api="blas"):
            held = pyconvnet.show_config(mode="dicts")["blas_threads"].split("; ")
        assert held and all(entry.endswith(f"): {n}") for entry in held), held


def test_the_vector_loops_use_avx2_and_avx512_where_the_cpu_has_them():
    from pyconvnet._ext import _conv
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split()
    except (OSError, StopIteration):
        pytest.skip("the CPU's instruction sets are read from /proc/cpuinfo (Linux)")
    expected = "avx2" if {"avx2", "fma"} <= set(flags) else "baseline"
    if expected == "avx2" and "avx512f" in flags:
        expected = "avx512"
    assert _conv.simd() == expected


def test_thread_count_rules():
    cores = os.cpu_count()
    assert check_n_threads(1) == 1
    assert check_n_threads(3) == 3
    assert check_n_threads(-1) == check_n_threads(None)   # counted from what None gives
    assert check_n_threads(-cores - 5) == 1
    with pytest.raises(ValueError, match="must not be 0"):
        check_n_threads(0)
    with pytest.raises(TypeError, match="n_threads"):
        check_n_threads(True)
    with pytest.raises(TypeError, match="n_threads"):
        check_n_threads("2")


def _run(code, **env):
    done = run_python(["-c", code], cwd=tempfile.gettempdir(), env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_omp_num_threads_sets_the_default():
    code = "from pyconvnet._validation import check_n_threads; print(check_n_threads(None))"
    assert _run(code, OMP_NUM_THREADS="1") == "1"
    assert _run(code, OMP_NUM_THREADS="3") == "3"


def test_threadpoolctl_sees_and_limits_the_openmp_pool():
    threadpoolctl = import_oracle("threadpoolctl")
    from pyconvnet._validation import check_n_threads as resolve
    pools = threadpoolctl.threadpool_info()
    assert any(p["user_api"] == "openmp" for p in pools), pools
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert resolve(None) == 1


@pytest.mark.parametrize("dtypes, expected", [
    ((np.float32,), np.float32), ((np.float64,), np.float64), ((np.float16,), np.float32),
    ((np.int8,), np.float64), ((np.uint64,), np.float64), ((np.bool_,), np.float64),
    ((np.float32, np.float64), np.float64), ((np.float32, np.int16), np.float64),
    ((">f8",), np.float64), ((">f4",), np.float32), ((">f2",), np.float32),
    ((">i4",), np.float64), ((">f4", "<f4"), np.float32),
])
def test_result_dtype(dtypes, expected):
    assert result_dtype(*dtypes) == expected


@pytest.mark.parametrize("order", [">", "<"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_either_byte_order_gives_the_native_result(order, dtype):
    # Data read from files (FITS, IDX) often comes big-endian.
    from pyconvnet.functional import avg_pool2d, conv2d, max_pool2d
    from pyconvnet.signal import correlate, similarity_map
    rng = np.random.default_rng(0)
    x, w = rng.random((2, 3, 9, 8)).astype(dtype), rng.random((4, 3, 3, 3)).astype(dtype)
    swapped = [a.astype(a.dtype.newbyteorder(order)) for a in (x, w)]
    calls = [lambda x, w: conv2d(x, w), lambda x, w: max_pool2d(x, 2),
             lambda x, w: avg_pool2d(x, 2), lambda x, w: correlate(x[0, 0], w[0, 0]),
             lambda x, w: similarity_map(x[0, 0], w[0, 0])]
    for call in calls:
        native, other = call(x, w), call(*swapped)
        assert other.dtype == np.dtype(dtype) and other.dtype.isnative
        np.testing.assert_array_equal(other, native)


@pytest.mark.parametrize("bad", [np.complex64, np.complex128, object, "U3", np.longdouble])
def test_non_real_dtypes_are_refused(bad):
    if np.dtype(bad) == np.float64:
        pytest.fail("longdouble is float64 on this platform; the case tests nothing")
    with pytest.raises(TypeError, match="x"):
        as_float_array(np.zeros(3, dtype=bad), "x")


def test_as_float_array_never_aliases_a_converted_input():
    x = np.arange(6).reshape(2, 3)[:, ::2]
    y = as_float_array(x, "x")
    assert y.flags.c_contiguous and y.dtype == np.float64
    assert not np.shares_memory(x, y)


def test_ntuple():
    assert ntuple(2, 3, "stride") == (2, 2, 2)
    assert ntuple((1, 2), 2, "stride") == (1, 2)
    with pytest.raises(ValueError, match="stride must be an int or a sequence of 2"):
        ntuple((1, 2, 3), 2, "stride")
    with pytest.raises(TypeError, match="stride must be an int, got float"):
        ntuple(1.5, 2, "stride")
    with pytest.raises(ValueError, match="stride must be >= 1"):
        ntuple(0, 2, "stride", minimum=1)


def _public_modules():
    names = []
    for info in pkgutil.walk_packages(pyconvnet.__path__, "pyconvnet."):
        if "._ext" not in info.name and info.name != "pyconvnet.__main__":
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", _public_modules())
def test_docstring_examples(name):
    if name == "pyconvnet.dask":
        import_oracle("dask")
    module = importlib.import_module(name)
    extra = None
    if name == "pyconvnet._specs" or name.startswith("pyconvnet.shapes."):
        # documented as pyconvnet.shapes names: their examples run with that
        # namespace, as a reader of the shapes page sees them
        shapes = importlib.import_module("pyconvnet.shapes")
        extra = {n: getattr(shapes, n) for n in shapes.__all__}
    result = doctest.testmod(module, extraglobs=extra,
                             optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0


# --- the package's surface: lazy loading, unbuilt trees -------------------------

_LOADED_KERNELS = ("; import sys; "
                   "print(sorted(m for m in sys.modules if m.startswith('pyconvnet._ext.')))")


@pytest.mark.parametrize("code", [
    "import pyconvnet",
    "import pyconvnet.shapes",
    "import pyconvnet.architectures",
    "from pyconvnet import summary, conv_output_size, gradcheck, GradcheckResult, __version__",
    "import pyconvnet; pyconvnet.shapes.summary('resnet50'); dir(pyconvnet)",
])
def test_calculators_load_no_kernel(code):
    assert _run(code + _LOADED_KERNELS) == "[]"


def test_kernels_load_on_first_use():
    # the control of the test above: the same probe sees the kernels once they load
    loaded = _run("import pyconvnet; pyconvnet.signal" + _LOADED_KERNELS)
    assert "pyconvnet._ext._correlate" in loaded


def test_public_names():
    assert set(pyconvnet.__all__) <= set(dir(pyconvnet))
    for name in pyconvnet.__all__:
        assert getattr(pyconvnet, name) is not None, name
    assert pyconvnet.summary is pyconvnet.shapes.summary
    assert pyconvnet.conv_output_size is pyconvnet.shapes.conv_output_size
    assert type(pyconvnet.signal).__name__ == "module"
    assert callable(pyconvnet.gradcheck) and callable(pyconvnet.show_config)
    with pytest.raises(AttributeError, match="has no attribute 'nonexistent'"):
        pyconvnet.nonexistent


def test_gradcheck_stays_the_function_after_importing_its_module():
    out = _run("import pyconvnet.gradcheck, pyconvnet; print(callable(pyconvnet.gradcheck))")
    assert out == "True"


def _unbuilt_copy(destination):
    """The package's tree as a fresh clone has it: Cython sources, no compiled
    modules (an installed wheel may ship no .pyx: they are put back empty)."""
    from importlib.machinery import EXTENSION_SUFFIXES

    source = Path(pyconvnet.__file__).resolve().parent
    compiled = [p for p in (source / "_ext").iterdir()
                if any(p.name.endswith(suffix) for suffix in EXTENSION_SUFFIXES)]
    assert compiled
    shutil.copytree(source, destination / "pyconvnet",
                    ignore=lambda d, names: [n for n in names if n == "__pycache__" or any(
                        n.endswith(suffix) for suffix in EXTENSION_SUFFIXES)])
    for path in compiled:
        (destination / "pyconvnet" / "_ext" / (path.name.split(".")[0] + ".pyx")).touch()
    assert not list((destination / "pyconvnet").rglob("*.so"))
    return destination


@pytest.mark.parametrize("code", ["import pyconvnet", "import pyconvnet.shapes",
                                  "from pyconvnet.functional import conv2d"])
def test_an_unbuilt_source_tree_says_how_to_build(code, tmp_path):
    tree = _unbuilt_copy(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: pyconvnet is being imported from a source tree "
                           "whose compiled kernels are not built"), done.stderr
    for advice in ("pip install -e .", "build_ext --inplace", "from another directory"):
        assert advice in last, advice
    assert "_conv" in last and "_pool" in last


def test_a_built_tree_passes_the_build_check():
    from pyconvnet._ext import check_build
    assert check_build() is None
