/* Window norms of the similarity maps (pyconvnet._ext._correlate), one row
 * of windows at a time, every sum in double precision:
 *
 *   column sums   c1[k] = sum of v, c2[k] = sum of v*v down the window's
 *                 rows, v = x - offset (slid one row at a time: add the new
 *                 row, subtract the old one); c2 alone for the cosine;
 *   window sums   s1[k] = sum_{c < kw} c1[k + c], s2 likewise, as running
 *                 sums along the row that restart from a direct sum every
 *                 PCN_REFRESH positions (rounding cannot build up), four
 *                 independent runs interleaved so that the additions do not
 *                 wait on one another;
 *   scores        score[k] *= scale / sqrt(spread), spread = s2 (cosine) or
 *                 s2 - s1*s1/n (centred); 0 where the spread is within
 *                 rounding of s2 (a flat window); clipped to [-1, 1].
 *
 * The column, window-sum and score loops are compiled for the baseline and
 * for AVX2/FMA, picked at run time (pcn_simd.h).
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
    }                                                                          \
    ATTR static void ADD##_squares(double *PCN_R c2, const T *PCN_R x,         \
                                   double offset, ptrdiff_t n)                 \
    {                                                                          \
        for (ptrdiff_t k = 0; k < n; k++) {                                    \
            const double v = x[k] - offset;                                    \
            c2[k] += v * v;                                                    \
        }                                                                      \
    }                                                                          \
    ATTR static void SLIDE##_squares(double *PCN_R c2, const T *PCN_R add,     \
                                     const T *PCN_R sub, double offset,        \
                                     ptrdiff_t n)                              \
    {                                                                          \
        for (ptrdiff_t k = 0; k < n; k++) {                                    \
            const double v = add[k] - offset, u = sub[k] - offset;             \
            c2[k] += v * v - u * u;                                            \
        }                                                                      \
    }

PCN_COLUMN_LOOPS(pcn_column_add_f0, pcn_column_slide_f0, float, )
PCN_COLUMN_LOOPS(pcn_column_add_d0, pcn_column_slide_d0, double, )
#if PCN_DISPATCH
PCN_COLUMN_LOOPS(pcn_column_add_f1, pcn_column_slide_f1, float, PCN_AVX2)
PCN_COLUMN_LOOPS(pcn_column_add_d1, pcn_column_slide_d1, double, PCN_AVX2)
#endif

/* The public column loops; c1 == NULL: the sums of squares alone (the
   cosine score needs no plain sums). */
static void pcn_column_add_f(double *c1, double *c2, const float *x, double offset,
                             ptrdiff_t n) {
    if (c1 == NULL)
        PCN_PICK(pcn_column_add_f0_squares, pcn_column_add_f1_squares)(c2, x, offset, n);
    else
        PCN_PICK(pcn_column_add_f0, pcn_column_add_f1)(c1, c2, x, offset, n);
}
static void pcn_column_add_d(double *c1, double *c2, const double *x, double offset,
                             ptrdiff_t n) {
    if (c1 == NULL)
        PCN_PICK(pcn_column_add_d0_squares, pcn_column_add_d1_squares)(c2, x, offset, n);
    else
        PCN_PICK(pcn_column_add_d0, pcn_column_add_d1)(c1, c2, x, offset, n);
}
static void pcn_column_slide_f(double *c1, double *c2, const float *add, const float *sub,
                               double offset, ptrdiff_t n) {
    if (c1 == NULL)
        PCN_PICK(pcn_column_slide_f0_squares, pcn_column_slide_f1_squares)(c2, add, sub,
                                                                           offset, n);
    else
        PCN_PICK(pcn_column_slide_f0, pcn_column_slide_f1)(c1, c2, add, sub, offset, n);
}
static void pcn_column_slide_d(double *c1, double *c2, const double *add, const double *sub,
                               double offset, ptrdiff_t n) {
    if (c1 == NULL)
        PCN_PICK(pcn_column_slide_d0_squares, pcn_column_slide_d1_squares)(c2, add, sub,
                                                                           offset, n);
    else
        PCN_PICK(pcn_column_slide_d0, pcn_column_slide_d1)(c1, c2, add, sub, offset, n);
}


/* Split positions [k0, k0 + len) into `runs` consecutive runs of about
   equal length, [start[r], stop[r]); returns the length of the shortest. */
static ptrdiff_t pcn_split_runs(ptrdiff_t k0, ptrdiff_t len, int runs, ptrdiff_t *start,
                                ptrdiff_t *stop)
{
    const ptrdiff_t q = (len + runs - 1) / runs;
    ptrdiff_t shortest = q;
    for (int r = 0; r < runs; r++) {
        start[r] = k0 + (r * q < len ? r * q : len);
        stop[r] = k0 + ((r + 1) * q < len ? (r + 1) * q : len);
        if (stop[r] - start[r] < shortest)
            shortest = stop[r] - start[r];
    }
    return shortest;
}

/* s[k] = sum_{c < kw} col[k + c], 0 <= k < n: four runs of up to
   PCN_REFRESH positions side by side, each started from a direct sum. */
static void pcn_window_sum0(const double *PCN_R col, ptrdiff_t kw, ptrdiff_t n,
                            double *PCN_R s)
{
    for (ptrdiff_t k0 = 0; k0 < n; k0 += 4 * PCN_REFRESH) {
        const ptrdiff_t len = n - k0 < 4 * PCN_REFRESH ? n - k0 : 4 * PCN_REFRESH;
        ptrdiff_t start[4], stop[4];
        const ptrdiff_t shortest = pcn_split_runs(k0, len, 4, start, stop);
        double a[4];
        for (int r = 0; r < 4; r++) {
            a[r] = 0;
            if (start[r] < stop[r])
                for (ptrdiff_t c = 0; c < kw; c++)
                    a[r] += col[start[r] + c];
        }
        /* the runs side by side, then what is left of each (the last
           position of a run reads nothing past it) */
        for (ptrdiff_t i = 0; i + 1 < shortest; i++)
            for (int r = 0; r < 4; r++) {
                const ptrdiff_t k = start[r] + i;
                s[k] = a[r];
                a[r] += col[k + kw] - col[k];
            }
        for (int r = 0; r < 4; r++)
            for (ptrdiff_t k = start[r] + (shortest > 1 ? shortest - 1 : 0); k < stop[r]; k++) {
                s[k] = a[r];
                if (k + 1 < stop[r])
                    a[r] += col[k + kw] - col[k];
            }
    }
}

#if PCN_DISPATCH
#include <immintrin.h>

/* The same, four positions at a time: with d[k] = col[k + kw] - col[k],
   s[k + i] = s[k] + d[k] + ... + d[k + i - 1], the partial sums of four d
   taken within a register (two shifted additions). Four runs of up to
   PCN_REFRESH positions side by side, so that none waits on its own
   additions. */
#define PCN_RUNS 4
PCN_AVX2 static void pcn_window_sum1(const double *PCN_R col, ptrdiff_t kw, ptrdiff_t n,
                                     double *PCN_R s)
{
    const __m256d zero = _mm256_setzero_pd();
    for (ptrdiff_t k0 = 0; k0 < n; k0 += PCN_RUNS * PCN_REFRESH) {
        const ptrdiff_t len = n - k0 < PCN_RUNS * PCN_REFRESH ? n - k0 : PCN_RUNS * PCN_REFRESH;
        ptrdiff_t start[PCN_RUNS], stop[PCN_RUNS];
        const ptrdiff_t shortest = pcn_split_runs(k0, len, PCN_RUNS, start, stop);
        double base[PCN_RUNS];
        __m256d b[PCN_RUNS];
        for (int r = 0; r < PCN_RUNS; r++) {
            base[r] = 0;
            if (start[r] < stop[r])
                for (ptrdiff_t c = 0; c < kw; c++)
                    base[r] += col[start[r] + c];
            b[r] = _mm256_set1_pd(base[r]);
        }
        /* whole groups of four that read nothing past their run's last
           position (whose d is never needed) */
        const ptrdiff_t steps = shortest > 0 ? (shortest - 1) / 4 : 0;
        ptrdiff_t i = 0;
        for (; i < 4 * steps; i += 4)
            for (int r = 0; r < PCN_RUNS; r++) {
                const double *p = col + start[r] + i;
                const __m256d d = _mm256_sub_pd(_mm256_loadu_pd(p + kw), _mm256_loadu_pd(p));
                __m256d x = _mm256_add_pd(d, _mm256_blend_pd(
                    _mm256_permute4x64_pd(d, _MM_SHUFFLE(2, 1, 0, 0)), zero, 1));
                x = _mm256_add_pd(x, _mm256_permute2f128_pd(x, x, 0x08));
                _mm256_storeu_pd(s + start[r] + i, _mm256_add_pd(b[r], _mm256_sub_pd(x, d)));
                b[r] = _mm256_add_pd(b[r], _mm256_permute4x64_pd(x, _MM_SHUFFLE(3, 3, 3, 3)));
            }
        /* what is left of each run, one position at a time */
        for (int r = 0; r < PCN_RUNS; r++) {
            base[r] = _mm256_cvtsd_f64(b[r]);
            for (ptrdiff_t k = start[r] + i; k < stop[r]; k++) {
                s[k] = base[r];
                if (k + 1 < stop[r])
                    base[r] += col[k + kw] - col[k];
            }
        }
    }
}
#undef PCN_RUNS
#endif

static void pcn_window_sum(const double *col, ptrdiff_t kw, ptrdiff_t n, double *s) {
    PCN_PICK(pcn_window_sum0, pcn_window_sum1)(col, kw, n, s); }

/* The window sums of both column sums; c1 == NULL: of c2 alone. */
static void pcn_window_sums(const double *c1, const double *c2, ptrdiff_t kw, ptrdiff_t n,
                            double *s1, double *s2)
{
    if (c1 != NULL)
        pcn_window_sum(c1, kw, n, s1);
    pcn_window_sum(c2, kw, n, s2);
}

/* How many of s[0..n) are NaN or infinite (s - s is 0 for the others). */
#define PCN_COUNT_NONFINITE(NAME, ATTR)                                        \
    ATTR static ptrdiff_t NAME(const double *PCN_R s, ptrdiff_t n)             \
    {                                                                          \
        ptrdiff_t count = 0;                                                   \
        for (ptrdiff_t k = 0; k < n; k++)                                      \
            count += !(s[k] - s[k] == 0);                                      \
        return count;                                                          \
    }

PCN_COUNT_NONFINITE(pcn_count_nonfinite0, )
#if PCN_DISPATCH
PCN_COUNT_NONFINITE(pcn_count_nonfinite1, PCN_AVX2)
#endif
static ptrdiff_t pcn_count_nonfinite(const double *s, ptrdiff_t n) {
    return PCN_PICK(pcn_count_nonfinite0, pcn_count_nonfinite1)(s, n); }

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
