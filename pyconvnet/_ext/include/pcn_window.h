/* Window norms of the similarity maps (pyconvnet._ext._correlate), one row
 * of windows at a time, every sum in double precision:
 *
 *   column sums   c1[k] = sum of v, c2[k] = sum of v*v down the window's
 *                 rows, v = x - offset (slid one row at a time: add the new
 *                 row, subtract the old one);
 *   window sums   s1[k] = sum_{c < kw} c1[k + c], s2 likewise, as running
 *                 sums along the row that restart from a direct sum every
 *                 PCN_REFRESH positions (rounding cannot build up), four
 *                 independent runs interleaved so that the additions do not
 *                 wait on one another;
 *   scores        score[k] *= scale / sqrt(spread), spread = s2 (cosine) or
 *                 s2 - s1*s1/n (centred); 0 where the spread is within
 *                 rounding of s2 (a flat window); clipped to [-1, 1].
 *
 * The column and score loops are compiled for the baseline and for
 * AVX2/FMA, picked at run time (pcn_simd.h).
 */
#ifndef PCN_WINDOW_H
#define PCN_WINDOW_H

#include <math.h>
#include <stddef.h>

#include "pcn_simd.h"

#define PCN_REFRESH 256


#define PCN_COLUMN_LOOPS(ADD, SLIDE, T, ATTR)                                  \
    ATTR static void ADD(double *PCN_R c1, double *PCN_R c2,                   \
                         const T *PCN_R x, double offset, ptrdiff_t n)         \
    {                                                                          \
        for (ptrdiff_t k = 0; k < n; k++) {                                    \
            const double v = x[k] - offset;                                    \
            c1[k] += v;                                                        \
            c2[k] += v * v;                                                    \
        }                                                                      \
    }                                                                          \
    ATTR static void SLIDE(double *PCN_R c1, double *PCN_R c2,                 \
                           const T *PCN_R add, const T *PCN_R sub,             \
                           double offset, ptrdiff_t n)                         \
    {                                                                          \
        for (ptrdiff_t k = 0; k < n; k++) {                                    \
            const double v = add[k] - offset, u = sub[k] - offset;             \
            c1[k] += v - u;                                                    \
            c2[k] += v * v - u * u;                                            \
        }                                                                      \
    }

PCN_COLUMN_LOOPS(pcn_column_add_f0, pcn_column_slide_f0, float, )
PCN_COLUMN_LOOPS(pcn_column_add_d0, pcn_column_slide_d0, double, )
#if PCN_DISPATCH
PCN_COLUMN_LOOPS(pcn_column_add_f1, pcn_column_slide_f1, float, PCN_AVX2)
PCN_COLUMN_LOOPS(pcn_column_add_d1, pcn_column_slide_d1, double, PCN_AVX2)
#endif

static void pcn_column_add_f(double *c1, double *c2, const float *x, double offset,
                             ptrdiff_t n) {
    PCN_PICK(pcn_column_add_f0, pcn_column_add_f1)(c1, c2, x, offset, n); }
static void pcn_column_add_d(double *c1, double *c2, const double *x, double offset,
                             ptrdiff_t n) {
    PCN_PICK(pcn_column_add_d0, pcn_column_add_d1)(c1, c2, x, offset, n); }
static void pcn_column_slide_f(double *c1, double *c2, const float *add, const float *sub,
                               double offset, ptrdiff_t n) {
    PCN_PICK(pcn_column_slide_f0, pcn_column_slide_f1)(c1, c2, add, sub, offset, n); }
static void pcn_column_slide_d(double *c1, double *c2, const double *add, const double *sub,
                               double offset, ptrdiff_t n) {
    PCN_PICK(pcn_column_slide_d0, pcn_column_slide_d1)(c1, c2, add, sub, offset, n); }


/* s1[k] = sum_{c < kw} c1[k + c] and s2 likewise, 0 <= k < n. */
static void pcn_window_sums(const double *PCN_R c1, const double *PCN_R c2, ptrdiff_t kw,
                            ptrdiff_t n, double *PCN_R s1, double *PCN_R s2)
{
    for (ptrdiff_t k0 = 0; k0 < n; k0 += 4 * PCN_REFRESH) {
        const ptrdiff_t len = n - k0 < 4 * PCN_REFRESH ? n - k0 : 4 * PCN_REFRESH;
        const ptrdiff_t q = (len + 3) / 4;
        ptrdiff_t start[4], stop[4], shortest = q;
        double a[4], b[4];
        for (int r = 0; r < 4; r++) {
            start[r] = k0 + (r * q < len ? r * q : len);
            stop[r] = k0 + ((r + 1) * q < len ? (r + 1) * q : len);
            if (stop[r] - start[r] < shortest)
                shortest = stop[r] - start[r];
            a[r] = 0;
            b[r] = 0;
            if (start[r] < stop[r])
                for (ptrdiff_t c = 0; c < kw; c++) {
                    a[r] += c1[start[r] + c];
                    b[r] += c2[start[r] + c];
                }
        }
        /* four runs side by side, then what is left of each (the last
           position of a run reads nothing past it) */
        for (ptrdiff_t i = 0; i + 1 < shortest; i++)
            for (int r = 0; r < 4; r++) {
                const ptrdiff_t k = start[r] + i;
                s1[k] = a[r];
                s2[k] = b[r];
                a[r] += c1[k + kw] - c1[k];
                b[r] += c2[k + kw] - c2[k];
            }
        for (int r = 0; r < 4; r++)
            for (ptrdiff_t k = start[r] + (shortest > 1 ? shortest - 1 : 0); k < stop[r]; k++) {
                s1[k] = a[r];
                s2[k] = b[r];
                if (k + 1 < stop[r]) {
                    a[r] += c1[k + kw] - c1[k];
                    b[r] += c2[k + kw] - c2[k];
                }
            }
    }
}

/* How many of s[0..n) are NaN or infinite (s - s is 0 for the others). */
static ptrdiff_t pcn_count_nonfinite(const double *PCN_R s, ptrdiff_t n)
{
    ptrdiff_t count = 0;
    for (ptrdiff_t k = 0; k < n; k++)
        count += !(s[k] - s[k] == 0);
    return count;
}

/* inv[k] = 1 / sqrt(spread), or 0 for a flat window (its spread taken as
   infinite). Returns how many live spreads lie beyond float's comfortable
   range, which the float version then takes again in double. */
#define PCN_INVERSE_NORMS(NAME, T)                                             \
    static ptrdiff_t NAME(const double *PCN_R s1, const double *PCN_R s2,      \
                          ptrdiff_t k, ptrdiff_t n, double inv_count,          \
                          int centered, double tolerance, T *PCN_R inv)        \
    {                                                                          \
        ptrdiff_t wide = 0;                                                    \
        for (; k < n; k++) {                                                   \
            const double spread = centered ? s2[k] - s1[k] * s1[k] * inv_count \
                                           : s2[k];                            \
            const int live = spread > tolerance * s2[k];                       \
            wide += live && (spread < 1e-30 || spread > 1e30);                 \
            inv[k] = live ? (T)1 / (T)sqrt((T)spread) : (T)0;                  \
        }                                                                      \
        return wide;                                                           \
    }

PCN_INVERSE_NORMS(pcn_inverse_norms_f0, float)
PCN_INVERSE_NORMS(pcn_inverse_norms_d0, double)

#if PCN_DISPATCH
#include <immintrin.h>

/* The same, eight (float) or four (double) windows at a time: the square
   root is written as an intrinsic because the compiler keeps sqrt() a
   scalar call (it may set errno). */
PCN_AVX2 static inline __m256d pcn_spreads(const double *s1, const double *s2,
                                           __m256d inv_count, __m256d tolerance,
                                           int centered, __m256d *out_of_range)
{
    const __m256d a = _mm256_loadu_pd(s1), b = _mm256_loadu_pd(s2);
    const __m256d spread = centered ? _mm256_fnmadd_pd(_mm256_mul_pd(a, a), inv_count, b) : b;
    const __m256d live = _mm256_cmp_pd(spread, _mm256_mul_pd(tolerance, b), _CMP_GT_OQ);
    const __m256d wide = _mm256_or_pd(
        _mm256_cmp_pd(spread, _mm256_set1_pd(1e-30), _CMP_LT_OQ),
        _mm256_cmp_pd(spread, _mm256_set1_pd(1e30), _CMP_GT_OQ));
    *out_of_range = _mm256_or_pd(*out_of_range, _mm256_and_pd(live, wide));
    /* flat windows: an infinite spread, whose inverse root is 0 */
    return _mm256_blendv_pd(_mm256_set1_pd(HUGE_VAL), spread, live);
}

PCN_AVX2 static ptrdiff_t pcn_inverse_norms_f1(const double *s1, const double *s2,
                                               ptrdiff_t n, double inv_count, int centered,
                                               double tolerance, float *inv)
{
    const __m256d ic = _mm256_set1_pd(inv_count), tol = _mm256_set1_pd(tolerance);
    __m256d range = _mm256_setzero_pd();
    ptrdiff_t k = 0;
    for (; k + 8 <= n; k += 8) {
        const __m128 lo = _mm256_cvtpd_ps(pcn_spreads(s1 + k, s2 + k, ic, tol, centered, &range));
        const __m128 hi = _mm256_cvtpd_ps(pcn_spreads(s1 + k + 4, s2 + k + 4, ic, tol, centered,
                                                      &range));
        const __m256 spread = _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
        _mm256_storeu_ps(inv + k, _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_sqrt_ps(spread)));
    }
    return _mm256_movemask_pd(range) != 0
           || pcn_inverse_norms_f0(s1, s2, k, n, inv_count, centered, tolerance, inv);
}

PCN_AVX2 static ptrdiff_t pcn_inverse_norms_d1(const double *s1, const double *s2,
                                               ptrdiff_t n, double inv_count, int centered,
                                               double tolerance, double *inv)
{
    const __m256d ic = _mm256_set1_pd(inv_count), tol = _mm256_set1_pd(tolerance);
    __m256d range = _mm256_setzero_pd();
    ptrdiff_t k = 0;
    for (; k + 4 <= n; k += 4) {
        const __m256d spread = pcn_spreads(s1 + k, s2 + k, ic, tol, centered, &range);
        _mm256_storeu_pd(inv + k, _mm256_div_pd(_mm256_set1_pd(1.0), _mm256_sqrt_pd(spread)));
    }
    pcn_inverse_norms_d0(s1, s2, k, n, inv_count, centered, tolerance, inv);
    return 0;
}
#endif

/* score[k] = clip(score[k] * inv[k] * scale, -1, 1); NaN stays NaN. */
#define PCN_SCALE_SCORES(NAME, T, ATTR)                                        \
    ATTR static void NAME(T *PCN_R score, const T *PCN_R inv, T scale,         \
                          ptrdiff_t n)                                         \
    {                                                                          \
        for (ptrdiff_t k = 0; k < n; k++) {                                    \
            const T v = score[k] * (inv[k] * scale);                           \
            score[k] = v > (T)1 ? (T)1 : (v < (T)-1 ? (T)-1 : v);              \
        }                                                                      \
    }

PCN_SCALE_SCORES(pcn_scale_scores_f0, float, )
PCN_SCALE_SCORES(pcn_scale_scores_d0, double, )
#if PCN_DISPATCH
PCN_SCALE_SCORES(pcn_scale_scores_f1, float, PCN_AVX2)
PCN_SCALE_SCORES(pcn_scale_scores_d1, double, PCN_AVX2)
#endif

static void pcn_inverse_norms_f(const double *s1, const double *s2, ptrdiff_t n,
                                double inv_count, int centered, double tolerance,
                                float *inv) {
#if PCN_DISPATCH
    const ptrdiff_t wide = pcn_avx2
        ? pcn_inverse_norms_f1(s1, s2, n, inv_count, centered, tolerance, inv)
        : pcn_inverse_norms_f0(s1, s2, 0, n, inv_count, centered, tolerance, inv);
#else
    const ptrdiff_t wide = pcn_inverse_norms_f0(s1, s2, 0, n, inv_count, centered,
                                                tolerance, inv);
#endif
    if (wide == 0)
        return;
    /* spreads that float's square root would lose: in double */
    for (ptrdiff_t k = 0; k < n; k++) {
        const double spread = centered ? s2[k] - s1[k] * s1[k] * inv_count : s2[k];
        inv[k] = spread > tolerance * s2[k] ? (float)(1.0 / sqrt(spread)) : 0.0f;
    }
}
static void pcn_inverse_norms_d(const double *s1, const double *s2, ptrdiff_t n,
                                double inv_count, int centered, double tolerance,
                                double *inv) {
#if PCN_DISPATCH
    if (pcn_avx2) {
        pcn_inverse_norms_d1(s1, s2, n, inv_count, centered, tolerance, inv);
        return;
    }
#endif
    pcn_inverse_norms_d0(s1, s2, 0, n, inv_count, centered, tolerance, inv);
}
static void pcn_scale_scores_f(float *score, const float *inv, float scale, ptrdiff_t n) {
    PCN_PICK(pcn_scale_scores_f0, pcn_scale_scores_f1)(score, inv, scale, n); }
static void pcn_scale_scores_d(double *score, const double *inv, double scale, ptrdiff_t n) {
    PCN_PICK(pcn_scale_scores_d0, pcn_scale_scores_d1)(score, inv, scale, n); }

#endif
