"""Build and run-time configuration: what :func:`pyconvnet.show_config` prints."""
import os
import platform

import numpy as np
import scipy

from ._ext._openmp_helpers import openmp_enabled
from ._validation import check_n_threads
from ._version import __version__


def _blas_info():
    """Name and version of the BLAS that scipy's kernels (and ours) call."""
    try:
        deps = scipy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{deps.get('name', 'unknown')} {deps.get('version', '')}".strip()
    except Exception:  # older scipy without the dict mode
        return "unknown"


def _blas_threads():
    """The BLAS libraries the convolution kernels hold at one thread while
    they run, each with its thread count outside them."""
    from ._convolution import _blas_controllers
    libraries = [f"{lib.internal_api} {lib.version or ''} "
                 f"({os.path.basename(lib.filepath)}): {lib.num_threads}"
                 for lib, _ in _blas_controllers()]
    return "; ".join(libraries) or "none"


def config_dict():
    """The configuration as a dict (see :func:`show_config`)."""
    from ._ext import _conv
    return {
        "version": __version__,
        "openmp": openmp_enabled(),
        "default_n_threads": check_n_threads(None),
        "cpu_count": os.cpu_count(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "GOMP_SPINCOUNT": os.environ.get("GOMP_SPINCOUNT"),
        "blas": _blas_info(),
        "blas_threads": _blas_threads(),
        "simd": _conv.simd(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def show_config(mode="stdout"):
    """Print (or return) how pyconvnet was built and how it will run.

    Parameters
    ----------
    mode : {'stdout', 'dicts'}, default 'stdout'
        Print a readable report, or return it as a dict.

    Returns
    -------
    dict or None
        The configuration when ``mode='dicts'``: the version, whether OpenMP
        was compiled in, the default thread count (which honours
        ``OMP_NUM_THREADS`` and threadpoolctl), the number of cores, the BLAS
        in use and the thread counts of the BLAS libraries that the
        convolution kernels hold at one thread while they run, the
        instruction set of the vector loops ('avx2' or 'baseline'), and the
        versions of numpy, scipy and Python.

    Examples
    --------
    >>> import pyconvnet
    >>> cfg = pyconvnet.show_config(mode="dicts")
    >>> cfg["default_n_threads"] >= 1
    True
    """
    info = config_dict()
    if mode == "dicts":
        return info
    if mode != "stdout":
        raise ValueError(f"mode must be 'stdout' or 'dicts', got {mode!r}")
    width = max(len(k) for k in info)
    for key, value in info.items():
        print(f"{key:<{width}} : {value}")
    return None
