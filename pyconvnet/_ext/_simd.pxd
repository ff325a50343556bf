# Run-time choice of the vector loops' instruction set (include/pcn_simd.h).
# Every module that uses the loops calls pcn_simd_init() once, at import.
cdef extern from "pcn_simd.h":
    int pcn_simd_init() noexcept nogil
