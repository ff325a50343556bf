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
 *
 * With AVX-512, a block of PCN_WIDE_ROWS rows by three vectors of outputs
 * runs over the input rows instead: each vector of an input row is loaded
 * once and multiplied into every output row of the block whose window
 * holds it (with that row's tap), so a load feeds up to PCN_WIDE_ROWS
 * fused multiply-adds instead of one. Masked loads and stores take the
 * last columns (no plain loops) and read nothing past a row's end.
 */
#ifndef PCN_BLOCKTAPS_H
#define PCN_BLOCKTAPS_H

#include <stddef.h>

#include "pcn_simd.h"

#define PCN_BLOCK_ROWS 4
#define PCN_WIDE_ROWS 8

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

/* R rows by NV vectors of VEC lanes; rows <= R, any n. Input row i of the
   block meets output rows r = i - a for the taps' rows 0 <= a < kh. */
#define PCN_WIDE_TAPS(NAME, T, R, NV, VEC, VT, MT, ZERO, BCAST, MLOAD, FMA, MSTORE) \
    PCN_AVX512 static void NAME(const T *x, ptrdiff_t xs, const T *w,          \
                                ptrdiff_t kh, ptrdiff_t kw, T *out,            \
                                ptrdiff_t os, ptrdiff_t rows, ptrdiff_t n)     \
    {                                                                          \
        for (ptrdiff_t k = 0; k < n; k += NV * VEC) {                          \
            MT m[NV];                                                          \
            VT acc[R][NV];                                                     \
            for (int j = 0; j < NV; j++) {                                     \
                const ptrdiff_t left = n - k - j * VEC;                        \
                m[j] = (MT)(left >= VEC ? (MT)~(MT)0                           \
                            : left <= 0 ? (MT)0 : (MT)(((MT)1 << left) - 1));  \
                for (int r = 0; r < R; r++)                                    \
                    acc[r][j] = ZERO();                                        \
            }                                                                  \
            for (ptrdiff_t i = 0; i < rows + kh - 1; i++) {                    \
                const ptrdiff_t lo = i - kh + 1 > 0 ? i - kh + 1 : 0;          \
                const ptrdiff_t hi = i < rows - 1 ? i : rows - 1;              \
                const T *xi = x + i * xs + k;                                  \
                for (ptrdiff_t b = 0; b < kw; b++) {                           \
                    VT v[NV];                                                  \
                    for (int j = 0; j < NV; j++)                               \
                        v[j] = MLOAD(m[j], xi + b + j * VEC);                  \
                    for (int r = 0; r < R; r++)                                \
                        if (r >= lo && r <= hi) {                              \
                            const VT wb = BCAST(w[(i - r) * kw + b]);          \
                            for (int j = 0; j < NV; j++)                       \
                                acc[r][j] = FMA(v[j], wb, acc[r][j]);          \
                        }                                                      \
                }                                                              \
            }                                                                  \
            for (int r = 0; r < R; r++)                                        \
                if (r < rows)                                                  \
                    for (int j = 0; j < NV; j++)                               \
                        MSTORE(out + r * os + k + j * VEC, m[j], acc[r][j]);   \
        }                                                                      \
    }

PCN_WIDE_TAPS(pcn_wide_taps_f, float, PCN_WIDE_ROWS, 3, 16, __m512, __mmask16,
              _mm512_setzero_ps, _mm512_set1_ps, _mm512_maskz_loadu_ps, _mm512_fmadd_ps,
              _mm512_mask_storeu_ps)
PCN_WIDE_TAPS(pcn_wide_taps_d, double, PCN_WIDE_ROWS, 3, 8, __m512d, __mmask8,
              _mm512_setzero_pd, _mm512_set1_pd, _mm512_maskz_loadu_pd, _mm512_fmadd_pd,
              _mm512_mask_storeu_pd)
#endif

/* Output rows per block of the callers: PCN_WIDE_ROWS with AVX-512. */
static ptrdiff_t pcn_block_rows(void)
{
#if PCN_DISPATCH
    if (pcn_avx512)
        return PCN_WIDE_ROWS;
#endif
    return PCN_BLOCK_ROWS;
}

/* Output rows [0, rows) of the correlation, rows <= pcn_block_rows(): whole
   blocks of columns in registers, the last columns by the plain loops. */
static void pcn_block_taps_f(const float *x, ptrdiff_t xs, const float *w, ptrdiff_t kh,
                             ptrdiff_t kw, float *out, ptrdiff_t os, ptrdiff_t rows,
                             ptrdiff_t n)
{
    ptrdiff_t done = 0;
#if PCN_DISPATCH
    if (pcn_avx512) {
        pcn_wide_taps_f(x, xs, w, kh, kw, out, os, rows, n);
        return;
    }
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
    if (pcn_avx512) {
        pcn_wide_taps_d(x, xs, w, kh, kw, out, os, rows, n);
        return;
    }
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
