"""Shared fixtures: thread counts, dtypes and optional oracles."""
import importlib
import os

import numpy as np
import pytest


def import_oracle(name):
    """Import an optional peer library used as a test oracle.

    Skips the test, saying why, when the library is missing; in CI
    (``PYCONVNET_REQUIRE_ORACLES=1``) a missing oracle is a failure instead,
    so that an oracle test can never pass by skipping.
    """
    try:
        return importlib.import_module(name)
    except ImportError:
        message = f"{name} is not installed, so the comparison against it cannot run"
        if os.environ.get("PYCONVNET_REQUIRE_ORACLES"):
            pytest.fail(message + " (PYCONVNET_REQUIRE_ORACLES is set)")
        pytest.skip(message)


@pytest.fixture
def torch():
    torch = import_oracle("torch")
    torch.set_num_threads(2)
    return torch


@pytest.fixture(params=[1, 2], ids=lambda n: f"threads{n}")
def n_threads(request):
    return request.param


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return np.dtype(request.param)


def tolerance(dtype):
    """Comparison tolerances for results computed in ``dtype``."""
    return {"rtol": 2e-4, "atol": 2e-4} if np.dtype(dtype) == np.float32 \
        else {"rtol": 1e-9, "atol": 1e-9}


def run_python(args, cwd, env=None, timeout=300):
    """Run ``python *args`` in a subprocess that imports the same pyconvnet
    as the tests (the installed one, or the in-place build under test),
    from ``cwd``: never a directory where a source tree would shadow it."""
    import subprocess
    import sys
    from pathlib import Path

    import pyconvnet

    package_parent = str(Path(pyconvnet.__file__).resolve().parent.parent)
    full_env = dict(os.environ, **(env or {}))
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in [package_parent, full_env.get("PYTHONPATH", "")] if p)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
