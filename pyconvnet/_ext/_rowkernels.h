/* Inner loops of the direct correlation, one output row segment at a time:
 *
 *     out[k] += sum_{c < ntaps} w[c] * x[k + c],   0 <= k < n
 *
 * with every x[k + c] in bounds. Four taps are summed per pass so that each
 * output element is loaded and stored once per four multiply-adds. On x86-64
 * with GCC or Clang the loops are also compiled for AVX2/FMA and the CPU picks
 * the version at load time; the default build targets baseline x86-64.
 */
#ifndef PYCONVNET_ROWKERNELS_H
#define PYCONVNET_ROWKERNELS_H

#include <stddef.h>

#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__) && !defined(PYCONVNET_NO_CLONES)
#define PYCONVNET_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define PYCONVNET_CLONES
#endif

#define PYCONVNET_ROW_KERNEL(NAME, T)                                          \
    PYCONVNET_CLONES static void NAME(T *out, const T *x, const T *w,          \
                                      ptrdiff_t ntaps, ptrdiff_t n)            \
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

PYCONVNET_ROW_KERNEL(pyconvnet_row_taps_f, float)
PYCONVNET_ROW_KERNEL(pyconvnet_row_taps_d, double)

#endif
