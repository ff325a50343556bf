"""Build the compiled kernels of pyconvnet.

Environment switches
--------------------
PYCONVNET_NO_OPENMP=1
    Build without OpenMP: every kernel runs on one thread.
PYCONVNET_BOUNDSCHECK=1
    Build with Cython's bounds, wraparound and initialisation checks on, for
    debugging a kernel (slow).
PYCONVNET_ONLY=_conv,_pool
    Development convenience: compile only the named kernel modules (for
    ``python setup.py build_ext --inplace`` while editing one of them).
"""
import os
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


USE_OPENMP = not _env_flag("PYCONVNET_NO_OPENMP")
CHECKS = _env_flag("PYCONVNET_BOUNDSCHECK")

compile_args = ["-O3"]
link_args = []
if USE_OPENMP:
    compile_args.append("-fopenmp")
    link_args.append("-fopenmp")

directives = {
    "language_level": 3,
    "boundscheck": CHECKS,
    "wraparound": CHECKS,
    "initializedcheck": CHECKS,
    "cdivision": True,
    "embedsignature": True,
}

# C headers of the kernels (the vector loops and their run-time dispatch,
# the OpenMP guard), declared to Cython in the .pxd files beside the .pyx.
INCLUDE = Path("pyconvnet", "_ext", "include")
HEADERS = sorted(str(path) for path in INCLUDE.glob("*.h"))

ONLY = {name.strip() for name in os.environ.get("PYCONVNET_ONLY", "").split(",") if name.strip()}

extensions = [
    Extension(
        f"pyconvnet._ext.{path.stem}",
        [str(path)],
        include_dirs=[str(INCLUDE), numpy.get_include()],
        depends=HEADERS,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    for path in sorted(Path("pyconvnet", "_ext").glob("*.pyx"))
    if not ONLY or path.stem in ONLY
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
    ),
)
