"""Compiled kernels. Private: call them through the public wrappers.

Before the first kernel loads the OpenMP runtime, idle OpenMP threads are
told to stop busy-waiting soon (``GOMP_SPINCOUNT=10000``, a few
microseconds) instead of GNU OpenMP's default of spinning much longer: the
kernels alternate with FFT and BLAS threads, which otherwise find both cores
taken by idle spinners (measured: a 512x512 similarity map took 20 ms
instead of 6 ms). Setting ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` yourself
overrides this.
"""
import os

if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "10000"


def check_build():
    """Raise ImportError, saying how to build, if a kernel here is not compiled.

    Looks for the files only (every ``.pyx`` beside this file needs its
    compiled module, as setup.py builds them all) and loads nothing, so that
    ``import pyconvnet`` stays free of the kernels until one is used. An
    installed package ships no ``.pyx`` sources and passes at once.
    """
    from importlib.machinery import EXTENSION_SUFFIXES

    here = os.path.dirname(os.path.abspath(__file__))
    names = os.listdir(here)
    missing = sorted(
        name[:-4] for name in names if name.endswith(".pyx")
        and not any(name[:-4] + suffix in names for suffix in EXTENSION_SUFFIXES))
    if missing:
        package = os.path.dirname(here)
        raise ImportError(
            f"pyconvnet is being imported from a source tree whose compiled kernels "
            f"are not built ({', '.join(missing)} missing in {here}): build them in "
            f"place with `pip install -e .` (or `python setup.py build_ext --inplace`) "
            f"in {os.path.dirname(package)}, or run Python from another directory to "
            f"use an installed pyconvnet.")
