/* Inner loops of the direct correlation (pyconvnet._ext._correlate), one
 * output row segment at a time:
 *
 *     out[k] += sum_{c < ntaps} w[c] * x[k + c],   0 <= k < n
 *
 * with every x[k + c] in bounds. Four taps are summed per pass so that each
 * output element is loaded and stored once per four multiply-adds. Compiled
 * for the baseline and for AVX2/FMA, picked at run time (pcn_simd.h).
 */
#ifndef PCN_ROWTAPS_H
#define PCN_ROWTAPS_H

#include <stddef.h>

#include "pcn_simd.h"

#define PCN_ROW_TAPS(NAME, T, ATTR)                                            \
    ATTR static void NAME(T *out, const T *x, const T *w,                      \
                          ptrdiff_t ntaps, ptrdiff_t n)                        \
    {                                                                          \
        ptrdiff_t c = 0, k;                                                    \
        for (; c + 4 <= ntaps; c += 4) {                                       \
            const T w0 = w[c], w1 = w[c + 1], w2 = w[c + 2], w3 = w[c + 3];    \
            const T *xc = x + c;                                               \
            for (k = 0; k < n; k++)                                            \
                out[k] += w0 * xc[k] + w1 * xc[k + 1] + w2 * xc[k + 2]         \
                          + w3 * xc[k + 3];                                    \
        }                                                                      \
        if (ntaps - c == 3) {                                                  \
            const T w0 = w[c], w1 = w[c + 1], w2 = w[c + 2];                   \
            const T *xc = x + c;                                               \
            for (k = 0; k < n; k++)                                            \
                out[k] += w0 * xc[k] + w1 * xc[k + 1] + w2 * xc[k + 2];        \
        } else if (ntaps - c == 2) {                                           \
            const T w0 = w[c], w1 = w[c + 1];                                  \
            const T *xc = x + c;                                               \
            for (k = 0; k < n; k++)                                            \
                out[k] += w0 * xc[k] + w1 * xc[k + 1];                         \
        } else if (ntaps - c == 1) {                                           \
            const T w0 = w[c];                                                 \
            const T *xc = x + c;                                               \
            for (k = 0; k < n; k++)                                            \
                out[k] += w0 * xc[k];                                          \
        }                                                                      \
    }

PCN_ROW_TAPS(pcn_row_taps_f0, float, )
PCN_ROW_TAPS(pcn_row_taps_d0, double, )
#if PCN_DISPATCH
PCN_ROW_TAPS(pcn_row_taps_f1, float, PCN_AVX2)
PCN_ROW_TAPS(pcn_row_taps_d1, double, PCN_AVX2)
#endif

static void pcn_row_taps_f(float *out, const float *x, const float *w, ptrdiff_t ntaps,
                           ptrdiff_t n) {
    PCN_PICK(pcn_row_taps_f0, pcn_row_taps_f1)(out, x, w, ntaps, n); }
static void pcn_row_taps_d(double *out, const double *x, const double *w, ptrdiff_t ntaps,
                           ptrdiff_t n) {
    PCN_PICK(pcn_row_taps_d0, pcn_row_taps_d1)(out, x, w, ntaps, n); }

#endif
