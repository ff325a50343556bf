"""What the OpenMP runtime reports, for the thread-count resolution in Python."""
from ._openmp cimport PYCONVNET_OPENMP_ENABLED, omp_get_max_threads


def openmp_enabled():
    """Whether the kernels were compiled with OpenMP."""
    return bool(PYCONVNET_OPENMP_ENABLED)


def openmp_max_threads():
    """``omp_get_max_threads()``: honours OMP_NUM_THREADS and threadpoolctl."""
    return omp_get_max_threads()
