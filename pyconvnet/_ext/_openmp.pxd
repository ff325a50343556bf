# OpenMP functions that also compile without OpenMP (include/pcn_openmp.h):
# a build with PYCONVNET_NO_OPENMP=1 sees one thread everywhere. Every
# kernel module takes its thread numbers from here.
cdef extern from "pcn_openmp.h":
    bint PYCONVNET_OPENMP_ENABLED
    int omp_get_max_threads() noexcept nogil
    int omp_get_thread_num() noexcept nogil
    int omp_get_num_threads() noexcept nogil
