/* Pointwise convolution (1x1 kernel, unit stride, no padding) on the planes
 * as stored.
 *
 * Such a layer is one matrix product per image and group, y (Kg, P) =
 * w (Kg, Cg) x (Cg, P), whose columns are the input planes' positions:
 * contiguous in every channel. The loops below compute a strip of S
 * positions (NV vectors) for a block of KB output channels with the
 * KB x NV accumulators in registers: each input channel adds one row of
 * the strip (NV vector loads) times KB weights, each broadcast to every
 * lane. Positions are counted over the images' planes side by side, so
 * that small maps (7x7) fill whole strips. One task runs a range of
 * positions over a range of channel blocks, in chunks of strips: each
 * chunk's rows are copied once into an aligned buffer that stays in the
 * second-level cache (the copy reads long runs of each row, which the
 * hardware prefetchers follow), then every block runs over the chunk's
 * strips with its KB rows of weights (read in place) in the first-level
 * cache. Each loop is compiled for the baseline, AVX2 and AVX-512
 * (pcn_simd.h).
 */
#ifndef PCN_POINTWISE_H
#define PCN_POINTWISE_H

#include <Python.h>     /* Py_ssize_t */
#include <string.h>

#include "pcn_depthwise.h"   /* pcn_window_geom */
#include "pcn_simd.h"

/* Between a strip's n values o and the outputs y of one channel (P values
   per image, images ``yn`` bytes apart) from position p of image img on,
   image by image: into y where ``store``, else out of it. */
static void pcn_pw_segments(void *o, void *y, Py_ssize_t yn, Py_ssize_t P, Py_ssize_t img,
                            Py_ssize_t p, Py_ssize_t n, size_t size, int store) {
    char *s = (char *)o, *row = (char *)y + img * yn;
    Py_ssize_t j = 0, q = p;
    while (j < n) {
        Py_ssize_t len = P - q < n - j ? P - q : n - j;
        char *at = row + q * size;
        if (store)
            memcpy(at, s + j * size, (size_t)len * size);
        else
            memcpy(s + j * size, at, (size_t)len * size);
        j += len;
        row += yn;
        q = 0;
    }
}

/* One strip of up to NV * VL positions of output channel blocks [kb0, kb1)
   of one group, from ``rows`` rows of the strip's columns x (rows x S,
   S >= NV * VL, aligned to the vector size) and the same rows of the
   weights w (Kg rows, ``ws`` values apart; rows past Kg read ``zero``, at
   least ``rows`` zeros): the outputs of flattened positions [t, t + n)
   (n <= NV * VL; position t is (t / P, t % P): image, position in the
   plane) in y (Kg rows of P values per image, images yn values apart) are
   set to the sums plus bias (Kg, or NULL), or, where ``accumulate``, the
   sums are added to them (a later pass over further rows). */
#define PCN_PW_STRIP(NAME, T, V, VL, KB, NV, ATTR)                           \
ATTR static void NAME(T *PCN_R y, Py_ssize_t yn, Py_ssize_t P, Py_ssize_t t,  \
                      Py_ssize_t n, const T *PCN_R x, Py_ssize_t S,          \
                      Py_ssize_t rows, const T *w, Py_ssize_t ws,            \
                      const T *zero, const T *bias, Py_ssize_t Kg,           \
                      Py_ssize_t kb0, Py_ssize_t kb1, int accumulate) {      \
    Py_ssize_t kb, c, i, v, l;                                               \
    Py_ssize_t img = t / P, p = t % P;                                       \
    int whole = n == NV * VL && p + n <= P;   /* within one image */         \
    for (kb = kb0; kb < kb1; kb++) {                                         \
        V acc[KB][NV];                                                       \
        const T *wr[KB];                                                     \
        const T *xc = x;                                                     \
        for (i = 0; i < KB; i++) {                                           \
            Py_ssize_t k = kb * KB + i;                                      \
            wr[i] = k < Kg ? w + k * ws : zero;                              \
            if (accumulate && k < Kg) {                                      \
                T *yk = y + k * P;                                           \
                if (whole) {                                                 \
                    for (v = 0; v < NV; v++)                                 \
                        memcpy(&acc[i][v], yk + img * yn + p + v * VL, sizeof(V)); \
                } else {                                                     \
                    T o[NV * VL];                                            \
                    pcn_pw_segments(o, yk, yn * sizeof(T), P, img, p, n,     \
                                    sizeof(T), 0);                           \
                    for (v = 0; v < NV; v++)                                 \
                        memcpy(&acc[i][v], o + v * VL, sizeof(V));           \
                }                                                            \
            } else {                                                         \
                T b0 = bias != NULL && k < Kg && !accumulate ? bias[k] : (T)0; \
                V b;                                                         \
                for (l = 0; l < VL; l++)                                     \
                    b[l] = b0;                                               \
                for (v = 0; v < NV; v++)                                     \
                    acc[i][v] = b;                                           \
            }                                                                \
        }                                                                    \
        for (c = 0; c < rows; c++, xc += S) {                                \
            V xv[NV];                                                        \
            for (v = 0; v < NV; v++)                                         \
                xv[v] = *(const V *)(xc + v * VL);                           \
            for (i = 0; i < KB; i++) {                                       \
                const T s = wr[i][c];                                        \
                for (v = 0; v < NV; v++)                                     \
                    acc[i][v] += xv[v] * s;                                  \
            }                                                                \
        }                                                                    \
        for (i = 0; i < KB && kb * KB + i < Kg; i++) {                       \
            T *yk = y + (kb * KB + i) * P;                                   \
            if (whole) {                                                     \
                for (v = 0; v < NV; v++)                                     \
                    memcpy(yk + img * yn + p + v * VL, &acc[i][v], sizeof(V)); \
            } else {                                                         \
                /* the strip's positions, image by image */                  \
                T o[NV * VL];                                                \
                for (v = 0; v < NV; v++)                                     \
                    memcpy(o + v * VL, &acc[i][v], sizeof(V));               \
                pcn_pw_segments(o, yk, yn * sizeof(T), P, img, p, n,         \
                                sizeof(T), 1);                               \
            }                                                                \
        }                                                                    \
    }                                                                        \
}

/* Flattened positions [t0, t1) of one group (images' planes side by side:
   small maps fill whole strips), channel blocks [kb0, kb1); x and y as in
   PCN_PW_STRIP (images xn and yn values apart). The positions go in chunks
   of ``chunk`` strips: the chunk's rows are copied into buf (chunk x Cg x
   S values, aligned to 64 bytes, then Cg zeros: room for Cg + 64 /
   sizeof(T) more), whatever
   the planes' alignment, then each block of output channels runs over
   every strip of the chunk, its weights in the first-level cache, the
   strips' rows in the second. A last, short strip runs on as few vectors
   as hold it, zeros after. */
#define PCN_PW_RANGE(NAME, T, VL, NV, S1, S2, S3)                            \
static void NAME(T *PCN_R y, Py_ssize_t yn, const T *PCN_R x, Py_ssize_t xn, \
                 Py_ssize_t P, Py_ssize_t Cg, const T *w, const T *bias,     \
                 Py_ssize_t Kg, Py_ssize_t kb0, Py_ssize_t kb1, Py_ssize_t t0, \
                 Py_ssize_t t1, Py_ssize_t chunk, T *buf_) {                 \
    enum { S = VL * NV };                                                    \
    T *PCN_R buf = (T *)(((size_t)buf_ + 63) & ~(size_t)63);                 \
    T *zero = buf + chunk * Cg * S;   /* the rows of channels past Kg */     \
    Py_ssize_t t, u, c, kb;                                                  \
    memset(zero, 0, (size_t)Cg * sizeof(T));                                 \
    for (t = t0; t < t1; t += chunk * S) {                                   \
        Py_ssize_t end = t1 - t < chunk * S ? t1 : t + chunk * S;            \
        for (c = 0; c < Cg; c++) {                                           \
            /* row c of every strip of the chunk, image by image */          \
            Py_ssize_t j = 0, m = t / P, q = t % P, n = end - t;             \
            T *dst = buf + c * S;                                            \
            while (j < n) {                                                  \
                Py_ssize_t len = P - q < n - j ? P - q : n - j;              \
                const T *src = x + m * xn + c * P + q;                       \
                Py_ssize_t a = j, e = j + len;                               \
                while (a < e) {     /* pieces within a strip */              \
                    Py_ssize_t stop = (a / S + 1) * S < e ? (a / S + 1) * S : e; \
                    memcpy(dst + (a / S) * Cg * S + a % S, src + (a - j),    \
                           (size_t)(stop - a) * sizeof(T));                  \
                    a = stop;                                                \
                }                                                            \
                j = e;                                                       \
                m++;                                                         \
                q = 0;                                                       \
            }                                                                \
            if (n % S)                                                       \
                memset(dst + (n / S) * Cg * S + n % S, 0,                    \
                       (size_t)(S - n % S) * sizeof(T));                     \
        }                                                                    \
        for (kb = kb0; kb < kb1; kb++)                                       \
            for (u = t; u < end; u += S) {                                   \
                Py_ssize_t n = end - u < S ? end - u : S;                    \
                Py_ssize_t nv = (n + VL - 1) / VL;                           \
                const T *xs = buf + ((u - t) / S) * Cg * S;                  \
                if (nv == NV)                                                \
                    S3(y, yn, P, u, n, xs, S, Cg, w, Cg, zero, bias, Kg, kb, kb + 1, 0); \
                else if (nv == 2)                                            \
                    S2(y, yn, P, u, n, xs, S, Cg, w, Cg, zero, bias, Kg, kb, kb + 1, 0); \
                else                                                         \
                    S1(y, yn, P, u, n, xs, S, Cg, w, Cg, zero, bias, Kg, kb, kb + 1, 0); \
            }                                                                \
    }                                                                        \
}

/* Output positions [t0, t1) (counted over the images side by side, P =
   OD x OH x OW a plane) of one group of a layer of any kernel, stride,
   dilation and padding (g; negative padding crops), channel blocks [kb0,
   kb1): an implicit GEMM, whose columns (rows r = c x taps + tap, the
   weights' order) are built a chunk of strips at a time, ``rb`` rows per
   pass, into buf (chunk x rb x S values, aligned to 64 bytes, then rb
   zeros: room for rb + 64 / sizeof(T) more); every block then runs over
   the chunk's strips with its rows of weights (KB x rb) in the first-level
   cache, the first pass setting the outputs, the others adding to them.
   The columns are copied by runs: outputs along a row of the output
   (within one strip) read, at each tap, one row of the input at a fixed
   step, clipped at its ends (the zeros of the padding). x: the group's
   input (Cg planes of D x H x W values, images xn values apart); y, w (Kg
   rows of Cg x taps), bias as in PCN_PW_STRIP; idx: room for 6 x chunk x S
   indices. */
#define PCN_IM_RANGE(NAME, T, VL, NV, S1, S2, S3)                            \
static void NAME(T *PCN_R y, Py_ssize_t yn, const T *PCN_R x, Py_ssize_t xn, \
                 Py_ssize_t Cg, const pcn_window_geom *g, const T *w,        \
                 const T *bias, Py_ssize_t Kg, Py_ssize_t kb0, Py_ssize_t kb1, \
                 Py_ssize_t t0, Py_ssize_t t1, Py_ssize_t chunk, Py_ssize_t rb, \
                 T *buf_, Py_ssize_t *idx) {                                 \
    enum { S = VL * NV };                                                    \
    T *PCN_R buf = (T *)(((size_t)buf_ + 63) & ~(size_t)63);                 \
    T *zero = buf + chunk * rb * S;                                          \
    Py_ssize_t taps = g->FD * g->FH * g->FW, R = Cg * taps;                  \
    Py_ssize_t P = g->OD * g->OH * g->OW, HW = g->H * g->W;                  \
    Py_ssize_t plane = g->D * HW, sw = g->sw;                                \
    /* per run: first position (in the chunk), length, image offset and  \
       the input coordinates its first window starts at */                 \
    Py_ssize_t *rj = idx, *rl = idx + chunk * S, *ri = rl + chunk * S;       \
    Py_ssize_t *rz = ri + chunk * S, *rh = rz + chunk * S, *rw = rh + chunk * S; \
    Py_ssize_t t, j, r, r0, r1, u, kb, k, runs, i;                           \
    memset(zero, 0, (size_t)rb * sizeof(T));                                 \
    for (t = t0; t < t1; t += chunk * S) {                                   \
        Py_ssize_t n = t1 - t < chunk * S ? t1 - t : chunk * S;              \
        for (j = 0, runs = 0; j < n; runs++) {                               \
            Py_ssize_t q = t + j, img = q / P, p = q % P;                    \
            Py_ssize_t od = p / (g->OH * g->OW), oh = (p / g->OW) % g->OH;   \
            Py_ssize_t ow = p % g->OW, len = g->OW - ow;                     \
            if (len > n - j)                                                 \
                len = n - j;                                                 \
            if (len > S - j % S)        /* runs stay within a strip */       \
                len = S - j % S;                                             \
            rj[runs] = j;                                                    \
            rl[runs] = len;                                                  \
            ri[runs] = img * xn;                                             \
            rz[runs] = od * g->sd - g->pd;                                   \
            rh[runs] = oh * g->sh - g->ph;                                   \
            rw[runs] = ow * sw - g->pw;                                      \
            j += len;                                                        \
        }                                                                    \
        for (r0 = 0; r0 < R; r0 = r1) {                                      \
            r1 = R - r0 < rb ? R : r0 + rb;                                  \
            for (r = r0; r < r1; r++) {                                      \
                Py_ssize_t c = r / taps, tap = r % taps;                     \
                Py_ssize_t da = (tap / (g->FH * g->FW)) * g->dd;             \
                Py_ssize_t db = ((tap / g->FW) % g->FH) * g->dh;             \
                Py_ssize_t de = (tap % g->FW) * g->dw;                       \
                const T *src = x + c * plane;                                \
                T *row = buf + (r - r0) * S;                                 \
                for (k = 0; k < runs; k++) {                                 \
                    Py_ssize_t jj = rj[k], len = rl[k];                      \
                    Py_ssize_t z = rz[k] + da, h = rh[k] + db, e0 = rw[k] + de; \
                    Py_ssize_t lo = 0, hi = 0;                               \
                    T *dst = row + (jj / S) * rb * S + jj % S;               \
                    if ((size_t)z < (size_t)g->D && (size_t)h < (size_t)g->H) { \
                        /* the run's columns inside the row: [lo, hi) */     \
                        lo = e0 >= 0 ? 0 : (-e0 + sw - 1) / sw;              \
                        hi = e0 < g->W ? (g->W - 1 - e0) / sw + 1 : 0;       \
                        if (hi > len)                                        \
                            hi = len;                                        \
                        if (lo > hi)                                         \
                            lo = hi;                                         \
                    }                                                        \
                    for (i = 0; i < lo; i++)                                 \
                        dst[i] = 0;                                          \
                    if (hi > lo) {                                           \
                        const T *s0 = src + ri[k] + z * HW + h * g->W + e0;  \
                        if (sw == 1)                                         \
                            memcpy(dst + lo, s0 + lo, (size_t)(hi - lo) * sizeof(T)); \
                        else                                                 \
                            for (i = lo; i < hi; i++)                        \
                                dst[i] = s0[i * sw];                         \
                    }                                                        \
                    for (i = hi; i < len; i++)                               \
                        dst[i] = 0;                                          \
                }                                                            \
                if (n % S) {            /* the last strip's vector's tail */ \
                    Py_ssize_t end = (n % S + VL - 1) / VL * VL;             \
                    for (i = n % S; i < end; i++)                            \
                        row[(n / S) * rb * S + i] = 0;                       \
                }                                                            \
            }                                                                \
            for (kb = kb0; kb < kb1; kb++)                                   \
                for (u = 0; u < n; u += S) {                                 \
                    Py_ssize_t m = n - u < S ? n - u : S;                    \
                    Py_ssize_t nv = (m + VL - 1) / VL;                       \
                    const T *xs = buf + (u / S) * rb * S;                    \
                    if (nv == NV)                                            \
                        S3(y, yn, P, t + u, m, xs, S, r1 - r0, w + r0, R, zero, \
                           bias, Kg, kb, kb + 1, r0 > 0);                    \
                    else if (nv == 2)                                        \
                        S2(y, yn, P, t + u, m, xs, S, r1 - r0, w + r0, R, zero, \
                           bias, Kg, kb, kb + 1, r0 > 0);                    \
                    else                                                     \
                        S1(y, yn, P, t + u, m, xs, S, r1 - r0, w + r0, R, zero, \
                           bias, Kg, kb, kb + 1, r0 > 0);                    \
                }                                                            \
        }                                                                    \
    }                                                                        \
}

/* Vectors of any size, stored unaligned (through memcpy). */
typedef float pcn_pw_vf16 __attribute__((vector_size(16)));
typedef double pcn_pw_vd16 __attribute__((vector_size(16)));
typedef float pcn_pw_vf32 __attribute__((vector_size(32)));
typedef double pcn_pw_vd32 __attribute__((vector_size(32)));
typedef float pcn_pw_vf64 __attribute__((vector_size(64)));
typedef double pcn_pw_vd64 __attribute__((vector_size(64)));

/* Blocks of KB output channels and strips of NV vectors: 8 accumulators
   (16 registers of 16 bytes), 12 (16 of 32 bytes), 24 (32 of 64 bytes). */
#define PCN_PW_KB0 4
#define PCN_PW_KB1 4
#define PCN_PW_KB2 8
#define PCN_PW_S0F 8
#define PCN_PW_S0D 4
#define PCN_PW_S1F 24
#define PCN_PW_S1D 12
#define PCN_PW_S2F 48
#define PCN_PW_S2D 24

#define PCN_PW_ISA(SUFFIX, VF, VD, LF, LD, KB, NV, ATTR)                    \
PCN_PW_STRIP(pcn_pw_strip1_f##SUFFIX, float, VF, LF, KB, 1, ATTR)            \
PCN_PW_STRIP(pcn_pw_strip2_f##SUFFIX, float, VF, LF, KB, 2, ATTR)            \
PCN_PW_STRIP(pcn_pw_strip_f##SUFFIX, float, VF, LF, KB, NV, ATTR)            \
PCN_PW_STRIP(pcn_pw_strip1_d##SUFFIX, double, VD, LD, KB, 1, ATTR)           \
PCN_PW_STRIP(pcn_pw_strip2_d##SUFFIX, double, VD, LD, KB, 2, ATTR)           \
PCN_PW_STRIP(pcn_pw_strip_d##SUFFIX, double, VD, LD, KB, NV, ATTR)           \
PCN_PW_RANGE(pcn_pw_range_f##SUFFIX, float, LF, NV, pcn_pw_strip1_f##SUFFIX, \
             pcn_pw_strip2_f##SUFFIX, pcn_pw_strip_f##SUFFIX)                \
PCN_PW_RANGE(pcn_pw_range_d##SUFFIX, double, LD, NV, pcn_pw_strip1_d##SUFFIX, \
             pcn_pw_strip2_d##SUFFIX, pcn_pw_strip_d##SUFFIX)                \
PCN_IM_RANGE(pcn_im_range_f##SUFFIX, float, LF, NV, pcn_pw_strip1_f##SUFFIX, \
             pcn_pw_strip2_f##SUFFIX, pcn_pw_strip_f##SUFFIX)                \
PCN_IM_RANGE(pcn_im_range_d##SUFFIX, double, LD, NV, pcn_pw_strip1_d##SUFFIX, \
             pcn_pw_strip2_d##SUFFIX, pcn_pw_strip_d##SUFFIX)

PCN_PW_ISA(0, pcn_pw_vf16, pcn_pw_vd16, 4, 2, PCN_PW_KB0, 2, )
#if PCN_DISPATCH
PCN_PW_ISA(1, pcn_pw_vf32, pcn_pw_vd32, 8, 4, PCN_PW_KB1, 3, PCN_AVX2)
PCN_PW_ISA(2, pcn_pw_vf64, pcn_pw_vd64, 16, 8, PCN_PW_KB2, 3, PCN_AVX512)
#define PCN_PW_LEVEL (pcn_avx512 ? 2 : pcn_avx2 ? 1 : 0)
#else
#define PCN_PW_LEVEL 0
#endif

/* Output channels per block and positions per strip of the loops this CPU
   runs, for float32 (double_ = 0) or float64. */
static Py_ssize_t pcn_pw_block(void) {
    static const Py_ssize_t kb[3] = {PCN_PW_KB0, PCN_PW_KB1, PCN_PW_KB2};
    return kb[PCN_PW_LEVEL];
}
static Py_ssize_t pcn_pw_strip(int double_) {
    static const Py_ssize_t s[2][3] = {{PCN_PW_S0F, PCN_PW_S1F, PCN_PW_S2F},
                                       {PCN_PW_S0D, PCN_PW_S1D, PCN_PW_S2D}};
    return s[double_ != 0][PCN_PW_LEVEL];
}

#if PCN_DISPATCH
#define PCN_PW_CALL(F, ...)                                                  \
    do {                                                                     \
        if (pcn_avx512) F##2(__VA_ARGS__);                                   \
        else if (pcn_avx2) F##1(__VA_ARGS__);                                \
        else F##0(__VA_ARGS__);                                              \
    } while (0)
#else
#define PCN_PW_CALL(F, ...) F##0(__VA_ARGS__)
#endif

static void pcn_pw_range_f(float *y, Py_ssize_t yn, const float *x, Py_ssize_t xn,
                           Py_ssize_t P, Py_ssize_t Cg, const float *w, const float *bias,
                           Py_ssize_t Kg, Py_ssize_t kb0, Py_ssize_t kb1, Py_ssize_t t0,
                           Py_ssize_t t1, Py_ssize_t chunk, float *buf) {
    PCN_PW_CALL(pcn_pw_range_f, y, yn, x, xn, P, Cg, w, bias, Kg, kb0, kb1, t0, t1, chunk,
                buf);
}
static void pcn_pw_range_d(double *y, Py_ssize_t yn, const double *x, Py_ssize_t xn,
                           Py_ssize_t P, Py_ssize_t Cg, const double *w, const double *bias,
                           Py_ssize_t Kg, Py_ssize_t kb0, Py_ssize_t kb1, Py_ssize_t t0,
                           Py_ssize_t t1, Py_ssize_t chunk, double *buf) {
    PCN_PW_CALL(pcn_pw_range_d, y, yn, x, xn, P, Cg, w, bias, Kg, kb0, kb1, t0, t1, chunk,
                buf);
}

static void pcn_im_range_f(float *y, Py_ssize_t yn, const float *x, Py_ssize_t xn,
                           Py_ssize_t Cg, const pcn_window_geom *g, const float *w,
                           const float *bias, Py_ssize_t Kg, Py_ssize_t kb0, Py_ssize_t kb1,
                           Py_ssize_t t0, Py_ssize_t t1, Py_ssize_t chunk, Py_ssize_t rb,
                           float *buf, Py_ssize_t *idx) {
    PCN_PW_CALL(pcn_im_range_f, y, yn, x, xn, Cg, g, w, bias, Kg, kb0, kb1, t0, t1, chunk, rb,
                buf, idx);
}
static void pcn_im_range_d(double *y, Py_ssize_t yn, const double *x, Py_ssize_t xn,
                           Py_ssize_t Cg, const pcn_window_geom *g, const double *w,
                           const double *bias, Py_ssize_t Kg, Py_ssize_t kb0, Py_ssize_t kb1,
                           Py_ssize_t t0, Py_ssize_t t1, Py_ssize_t chunk, Py_ssize_t rb,
                           double *buf, Py_ssize_t *idx) {
    PCN_PW_CALL(pcn_im_range_d, y, yn, x, xn, Cg, g, w, bias, Kg, kb0, kb1, t0, t1, chunk, rb,
                buf, idx);
}

#endif
