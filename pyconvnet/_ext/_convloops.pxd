# Vector loops of the convolution kernels (include/pcn_convloops.h), each
# compiled for the baseline and for AVX2/FMA (include/pcn_simd.h).
cdef extern from "pcn_convloops.h":
    # ext[q] += sum_t w[t] src[q + off[t]], q < L, t < n
    void pcn_taps_f(float *ext, const float *src, const Py_ssize_t *off, const float *w,
                    Py_ssize_t n, Py_ssize_t L) noexcept nogil
    void pcn_taps_d(double *ext, const double *src, const Py_ssize_t *off,
                    const double *w, Py_ssize_t n, Py_ssize_t L) noexcept nogil
    # out[j] = add + sum_v coef[v] src[v*stride + j], j < L, n <= 6
    void pcn_lincomb_f(float *out, const float *src, Py_ssize_t stride, const double *coef,
                       Py_ssize_t n, Py_ssize_t L, float add) noexcept nogil
    void pcn_lincomb_d(double *out, const double *src, Py_ssize_t stride,
                       const double *coef, Py_ssize_t n, Py_ssize_t L,
                       double add) noexcept nogil
    # acc[t] += sum_q e[q] src[q + off[t]], q < L, t < n
    void pcn_dots_f(const float *e, const float *src, const Py_ssize_t *off,
                    Py_ssize_t n, Py_ssize_t L, double *acc) noexcept nogil
    void pcn_dots_d(const double *e, const double *src, const Py_ssize_t *off,
                    Py_ssize_t n, Py_ssize_t L, double *acc) noexcept nogil
