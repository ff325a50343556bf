# Row loops of the direct correlation (include/pcn_rowtaps.h), each compiled
# for the baseline and for AVX2/FMA (include/pcn_simd.h):
# out[k] += sum_{c < ntaps} w[c] * x[k + c], 0 <= k < n.
cdef extern from "pcn_rowtaps.h":
    void pcn_row_taps_f(float *out, const float *x, const float *w,
                        Py_ssize_t ntaps, Py_ssize_t n) noexcept nogil
    void pcn_row_taps_d(double *out, const double *x, const double *w,
                        Py_ssize_t ntaps, Py_ssize_t n) noexcept nogil
# Register-blocked 'valid' 2-D correlation of up to pcn_block_rows() output
# rows (include/pcn_blocktaps.h): out[r, k] = sum_{a, b} w[a, b] x[r + a, k + b].
cdef extern from "pcn_blocktaps.h":
    int pcn_avx2
    int pcn_avx512
    Py_ssize_t pcn_block_rows() noexcept nogil
    void pcn_block_taps_f(const float *x, Py_ssize_t xs, const float *w, Py_ssize_t kh,
                          Py_ssize_t kw, float *out, Py_ssize_t os, Py_ssize_t rows,
                          Py_ssize_t n) noexcept nogil
    void pcn_block_taps_d(const double *x, Py_ssize_t xs, const double *w, Py_ssize_t kh,
                          Py_ssize_t kw, double *out, Py_ssize_t os, Py_ssize_t rows,
                          Py_ssize_t n) noexcept nogil
