/* Vector loops of the convolution kernels (pyconvnet._ext._conv): the
 * multiply-adds over padded planes, the Winograd transforms' linear
 * combinations, and the weight gradient's dot products. Written with
 * restrict pointers, so that they vectorise whatever the number of streams,
 * and compiled for the baseline and for AVX2/FMA, picked at run time
 * (pcn_simd.h).
 */
#ifndef PCN_CONVLOOPS_H
#define PCN_CONVLOOPS_H

#include <Python.h>     /* Py_ssize_t */
#include <string.h>

#include "pcn_simd.h"

/* ext[q] += sum_t w[t] src[q + off[t]], q < L, up to nine taps a pass */
#define PCN_TAPS(NAME, T, ATTR)                                             \
ATTR static void NAME(T *PCN_R ext, const T *PCN_R src, const Py_ssize_t *off, \
                      const T *w, Py_ssize_t n, Py_ssize_t L) {             \
    Py_ssize_t t = 0, q;                                                    \
    for (; n - t >= 9; t += 9) {                                            \
        const T *a0 = src + off[t], *a1 = src + off[t + 1],                 \
                *a2 = src + off[t + 2], *a3 = src + off[t + 3],             \
                *a4 = src + off[t + 4], *a5 = src + off[t + 5],             \
                *a6 = src + off[t + 6], *a7 = src + off[t + 7],             \
                *a8 = src + off[t + 8];                                     \
        const T w0 = w[t], w1 = w[t + 1], w2 = w[t + 2], w3 = w[t + 3],     \
                w4 = w[t + 4], w5 = w[t + 5], w6 = w[t + 6], w7 = w[t + 7], \
                w8 = w[t + 8];                                              \
        for (q = 0; q < L; q++)                                             \
            ext[q] += w0 * a0[q] + w1 * a1[q] + w2 * a2[q] + w3 * a3[q]     \
                      + w4 * a4[q] + w5 * a5[q] + w6 * a6[q] + w7 * a7[q]   \
                      + w8 * a8[q];                                         \
    }                                                                       \
    for (; n - t >= 4; t += 4) {                                            \
        const T *a0 = src + off[t], *a1 = src + off[t + 1],                 \
                *a2 = src + off[t + 2], *a3 = src + off[t + 3];             \
        const T w0 = w[t], w1 = w[t + 1], w2 = w[t + 2], w3 = w[t + 3];     \
        for (q = 0; q < L; q++)                                             \
            ext[q] += w0 * a0[q] + w1 * a1[q] + w2 * a2[q] + w3 * a3[q];    \
    }                                                                       \
    /* one to three taps left, each stream a tap of its own (a stream of   \
       weight 0 would turn an inf of its tap into NaN) */                   \
    if (n - t == 3) {                                                       \
        const T *a0 = src + off[t], *a1 = src + off[t + 1],                 \
                *a2 = src + off[t + 2];                                     \
        const T w0 = w[t], w1 = w[t + 1], w2 = w[t + 2];                    \
        for (q = 0; q < L; q++)                                             \
            ext[q] += w0 * a0[q] + w1 * a1[q] + w2 * a2[q];                 \
    } else if (n - t == 2) {                                                \
        const T *a0 = src + off[t], *a1 = src + off[t + 1];                 \
        const T w0 = w[t], w1 = w[t + 1];                                   \
        for (q = 0; q < L; q++)                                             \
            ext[q] += w0 * a0[q] + w1 * a1[q];                              \
    } else if (n - t == 1) {                                                \
        const T *a0 = src + off[t];                                         \
        const T w0 = w[t];                                                  \
        for (q = 0; q < L; q++)                                             \
            ext[q] += w0 * a0[q];                                           \
    }                                                                       \
}

/* out[j] = add + sum_v coef[v] src[v*stride + j], j < L, n <= 6 */
#define PCN_LINCOMB(NAME, T, ATTR)                                          \
ATTR static void NAME(T *PCN_R out, const T *PCN_R src, Py_ssize_t stride,  \
                      const double *coef, Py_ssize_t n, Py_ssize_t L, T add) { \
    const T *s[6] = {src, src, src, src, src, src};                         \
    T c[6] = {0, 0, 0, 0, 0, 0};                                            \
    Py_ssize_t v, j, k = 0;                                                 \
    for (v = 0; v < n && v < 6; v++)                                        \
        if (coef[v] != 0) { s[k] = src + v * stride; c[k] = (T)coef[v]; k++; } \
    {                                                                       \
        const T *s0 = s[0], *s1 = s[1], *s2 = s[2], *s3 = s[3], *s4 = s[4], \
                *s5 = s[5];                                                 \
        const T c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3], c4 = c[4],      \
                c5 = c[5];                                                  \
        if (k <= 2)                                                         \
            for (j = 0; j < L; j++)                                         \
                out[j] = add + c0 * s0[j] + c1 * s1[j];                     \
        else if (k <= 4)                                                    \
            for (j = 0; j < L; j++)                                         \
                out[j] = add + c0 * s0[j] + c1 * s1[j] + c2 * s2[j]         \
                         + c3 * s3[j];                                      \
        else                                                                \
            for (j = 0; j < L; j++)                                         \
                out[j] = add + c0 * s0[j] + c1 * s1[j] + c2 * s2[j]         \
                         + c3 * s3[j] + c4 * s4[j] + c5 * s5[j];            \
    }                                                                       \
}

PCN_TAPS(pcn_taps_f0, float, )
PCN_TAPS(pcn_taps_d0, double, )
PCN_LINCOMB(pcn_lincomb_f0, float, )
PCN_LINCOMB(pcn_lincomb_d0, double, )
#if PCN_DISPATCH
PCN_TAPS(pcn_taps_f1, float, PCN_AVX2)
PCN_TAPS(pcn_taps_d1, double, PCN_AVX2)
PCN_LINCOMB(pcn_lincomb_f1, float, PCN_AVX2)
PCN_LINCOMB(pcn_lincomb_d1, double, PCN_AVX2)
#endif

/* acc[t] += sum_q e[q] src[q + off[t]], q < L, t < n: nine taps a pass,
   each summed in vector registers (GCC/Clang vector extensions) */
#if PCN_DISPATCH
typedef float pcn_vf __attribute__((vector_size(32)));
typedef double pcn_vd __attribute__((vector_size(32)));
#define PCN_DOTS(NAME, T, V, ATTR)                                          \
ATTR static void NAME(const T *PCN_R e, const T *PCN_R src, const Py_ssize_t *off, \
                      Py_ssize_t n, Py_ssize_t L, double *acc) {            \
    enum { NV = sizeof(V) / sizeof(T) };                                    \
    Py_ssize_t t0, t, q, l;                                                 \
    for (t0 = 0; t0 < n; t0 += 9) {                                         \
        Py_ssize_t nt = n - t0 < 9 ? n - t0 : 9;                            \
        const T *p[9];                                                      \
        T r[9];                                                             \
        V a[9], ev, v;                                                      \
        for (t = 0; t < 9; t++) {                                           \
            p[t] = src + off[t0 + (t < nt ? t : 0)];                        \
            a[t] = (V){0};                                                  \
            r[t] = 0;                                                       \
        }                                                                   \
        for (q = 0; q + NV <= L; q += NV) {                                 \
            memcpy(&ev, e + q, sizeof ev);                                  \
            for (t = 0; t < 9; t++) {                                       \
                memcpy(&v, p[t] + q, sizeof v);                             \
                a[t] += ev * v;                                             \
            }                                                               \
        }                                                                   \
        for (t = 0; t < 9; t++)                                             \
            for (l = 0; l < NV; l++)                                        \
                r[t] += a[t][l];                                            \
        for (; q < L; q++)                                                  \
            for (t = 0; t < 9; t++)                                         \
                r[t] += e[q] * p[t][q];                                     \
        for (t = 0; t < nt; t++)                                            \
            acc[t0 + t] += r[t];                                            \
    }                                                                       \
}
PCN_DOTS(pcn_dots_f0, float, pcn_vf, )
PCN_DOTS(pcn_dots_d0, double, pcn_vd, )
PCN_DOTS(pcn_dots_f1, float, pcn_vf, PCN_AVX2)
PCN_DOTS(pcn_dots_d1, double, pcn_vd, PCN_AVX2)
#else
#define PCN_DOTS(NAME, T)                                                   \
static void NAME(const T *e, const T *src, const Py_ssize_t *off,           \
                 Py_ssize_t n, Py_ssize_t L, double *acc) {                 \
    Py_ssize_t t, q;                                                        \
    for (t = 0; t < n; t++) {                                               \
        T r = 0;                                                            \
        for (q = 0; q < L; q++) r += e[q] * src[off[t] + q];                \
        acc[t] += r;                                                        \
    }                                                                       \
}
PCN_DOTS(pcn_dots_f0, float)
PCN_DOTS(pcn_dots_d0, double)
#endif

static void pcn_taps_f(float *e, const float *s, const Py_ssize_t *o, const float *w,
                       Py_ssize_t n, Py_ssize_t L) {
    PCN_PICK(pcn_taps_f0, pcn_taps_f1)(e, s, o, w, n, L); }
static void pcn_taps_d(double *e, const double *s, const Py_ssize_t *o,
                       const double *w, Py_ssize_t n, Py_ssize_t L) {
    PCN_PICK(pcn_taps_d0, pcn_taps_d1)(e, s, o, w, n, L); }
static void pcn_lincomb_f(float *o, const float *s, Py_ssize_t st, const double *c,
                          Py_ssize_t n, Py_ssize_t L, float add) {
    PCN_PICK(pcn_lincomb_f0, pcn_lincomb_f1)(o, s, st, c, n, L, add); }
static void pcn_lincomb_d(double *o, const double *s, Py_ssize_t st, const double *c,
                          Py_ssize_t n, Py_ssize_t L, double add) {
    PCN_PICK(pcn_lincomb_d0, pcn_lincomb_d1)(o, s, st, c, n, L, add); }
static void pcn_dots_f(const float *e, const float *s, const Py_ssize_t *o,
                       Py_ssize_t n, Py_ssize_t L, double *acc) {
    PCN_PICK(pcn_dots_f0, pcn_dots_f1)(e, s, o, n, L, acc); }
static void pcn_dots_d(const double *e, const double *s, const Py_ssize_t *o,
                       Py_ssize_t n, Py_ssize_t L, double *acc) {
    PCN_PICK(pcn_dots_d0, pcn_dots_d1)(e, s, o, n, L, acc); }

#endif
