/* Register-blocked direct 2-D correlation (pyconvnet._ext._correlate), the
 * 'valid' part:
 *
 *     out[r, k] = sum_{a < kh, b < kw} w[a, b] * x[r + a, k + b]
 *
 * for 0 <= r < rows and 0 <= k < n, every x[r + a, k + b] in bounds (x and
 * out with row strides xs and os, in elements). The row loops of
 * pcn_rowtaps.h load and store every output once per four taps; here a
 * block of PCN_BLOCK_ROWS rows by two vectors of outputs stays in
 * registers for all kh * kw taps, so each tap costs one broadcast weight,
 * two loads of x and two fused multiply-adds per row of the block. The
 * vector version needs AVX2/FMA (picked at run time, pcn_simd.h); the
 * baseline is the plain loops, which the compiler vectorises as it can.
 */
#ifndef PCN_BLOCKTAPS_H
#define PCN_BLOCKTAPS_H

#include <stddef.h>

#include "pcn_simd.h"

#define PCN_BLOCK_ROWS 4

#define PCN_BLOCK_TAPS_PLAIN(NAME, T)                                          \
    static void NAME(const T *x, ptrdiff_t xs, const T *w, ptrdiff_t kh,       \
                     ptrdiff_t kw, T *out, ptrdiff_t os, ptrdiff_t rows,       \
                     ptrdiff_t k0, ptrdiff_t n)                                \
    {                                                                          \
        for (ptrdiff_t r = 0; r < rows; r++) {                                 \
            T *o = out + r * os;                                               \
            for (ptrdiff_t k = k0; k < n; k++)                                 \
                o[k] = 0;                                                      \
            for (ptrdiff_t a = 0; a < kh; a++)                                 \
                for (ptrdiff_t b = 0; b < kw; b++) {                           \
                    const T wb = w[a * kw + b];                                \
                    const T *xr = x + (r + a) * xs + b;                        \
                    for (ptrdiff_t k = k0; k < n; k++)                         \
                        o[k] += wb * xr[k];                                    \
                }                                                              \
        }                                                                      \
    }

PCN_BLOCK_TAPS_PLAIN(pcn_block_taps_f0, float)
PCN_BLOCK_TAPS_PLAIN(pcn_block_taps_d0, double)

#if PCN_DISPATCH
#include <immintrin.h>

/* R rows by two vectors (VEC = 8 floats or 4 doubles) of outputs. */
#define PCN_BLOCK_TAPS_AVX2(NAME, T, R, VEC, VT, ZERO, BCAST, LOAD, FMA, STORE)  \
    PCN_AVX2 static void NAME(const T *x, ptrdiff_t xs, const T *w,            \
                              ptrdiff_t kh, ptrdiff_t kw, T *out,              \
                              ptrdiff_t os, ptrdiff_t n)                       \
    {                                                                          \
        for (ptrdiff_t k = 0; k + 2 * VEC <= n; k += 2 * VEC) {                \
            VT acc0[R], acc1[R];                                               \
            for (int r = 0; r < R; r++) {                                      \
                acc0[r] = ZERO();                                              \
                acc1[r] = ZERO();                                              \
            }                                                                  \
            for (ptrdiff_t a = 0; a < kh; a++) {                               \
                const T *wr = w + a * kw;                                      \
                for (ptrdiff_t b = 0; b < kw; b++) {                           \
                    const VT wb = BCAST(wr + b);                               \
                    for (int r = 0; r < R; r++) {                              \
                        const T *xr = x + (r + a) * xs + k + b;                \
                        acc0[r] = FMA(LOAD(xr), wb, acc0[r]);                  \
                        acc1[r] = FMA(LOAD(xr + VEC), wb, acc1[r]);            \
                    }                                                          \
                }                                                              \
            }                                                                  \
            for (int r = 0; r < R; r++) {                                      \
                STORE(out + r * os + k, acc0[r]);                              \
                STORE(out + r * os + k + VEC, acc1[r]);                        \
            }                                                                  \
        }                                                                      \
    }

PCN_BLOCK_TAPS_AVX2(pcn_block_taps_f4, float, PCN_BLOCK_ROWS, 8, __m256, _mm256_setzero_ps,
                    _mm256_broadcast_ss, _mm256_loadu_ps, _mm256_fmadd_ps, _mm256_storeu_ps)
PCN_BLOCK_TAPS_AVX2(pcn_block_taps_f1, float, 1, 8, __m256, _mm256_setzero_ps,
                    _mm256_broadcast_ss, _mm256_loadu_ps, _mm256_fmadd_ps, _mm256_storeu_ps)
PCN_BLOCK_TAPS_AVX2(pcn_block_taps_d4, double, PCN_BLOCK_ROWS, 4, __m256d, _mm256_setzero_pd,
                    _mm256_broadcast_sd, _mm256_loadu_pd, _mm256_fmadd_pd, _mm256_storeu_pd)
PCN_BLOCK_TAPS_AVX2(pcn_block_taps_d1, double, 1, 4, __m256d, _mm256_setzero_pd,
                    _mm256_broadcast_sd, _mm256_loadu_pd, _mm256_fmadd_pd, _mm256_storeu_pd)
#endif

/* Output rows [0, rows) of the correlation, rows <= PCN_BLOCK_ROWS: whole
   blocks of columns in registers, the last columns by the plain loops. */
static void pcn_block_taps_f(const float *x, ptrdiff_t xs, const float *w, ptrdiff_t kh,
                             ptrdiff_t kw, float *out, ptrdiff_t os, ptrdiff_t rows,
                             ptrdiff_t n)
{
    ptrdiff_t done = 0;
#if PCN_DISPATCH
    if (pcn_avx2) {
        done = n - n % 16;
        if (rows == PCN_BLOCK_ROWS)
            pcn_block_taps_f4(x, xs, w, kh, kw, out, os, done);
        else
            for (ptrdiff_t r = 0; r < rows; r++)
                pcn_block_taps_f1(x + r * xs, xs, w, kh, kw, out + r * os, os, done);
    }
#endif
    pcn_block_taps_f0(x, xs, w, kh, kw, out, os, rows, done, n);
}

static void pcn_block_taps_d(const double *x, ptrdiff_t xs, const double *w, ptrdiff_t kh,
                             ptrdiff_t kw, double *out, ptrdiff_t os, ptrdiff_t rows,
                             ptrdiff_t n)
{
    ptrdiff_t done = 0;
#if PCN_DISPATCH
    if (pcn_avx2) {
        done = n - n % 8;
        if (rows == PCN_BLOCK_ROWS)
            pcn_block_taps_d4(x, xs, w, kh, kw, out, os, done);
        else
            for (ptrdiff_t r = 0; r < rows; r++)
                pcn_block_taps_d1(x + r * xs, xs, w, kh, kw, out + r * os, os, done);
    }
#endif
    pcn_block_taps_d0(x, xs, w, kh, kw, out, os, rows, done, n);
}

#endif
