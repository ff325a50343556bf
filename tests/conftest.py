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
