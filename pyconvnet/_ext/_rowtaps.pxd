# Row loops of the direct correlation (include/pcn_rowtaps.h), each compiled
# for the baseline and for AVX2/FMA (include/pcn_simd.h):
# out[k] += sum_{c < ntaps} w[c] * x[k + c], 0 <= k < n.
cdef extern from "pcn_rowtaps.h":
    void pcn_row_taps_f(float *out, const float *x, const float *w,
                        Py_ssize_t ntaps, Py_ssize_t n) noexcept nogil
    void pcn_row_taps_d(double *out, const double *x, const double *w,
                        Py_ssize_t ntaps, Py_ssize_t n) noexcept nogil
