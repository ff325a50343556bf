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

#include "pcn_simd.h"

/* One strip of up to NV * VL positions of output channel blocks [kb0, kb1)
   of one group, from the strip's rows x (Cg x S, S >= NV * VL, aligned to
   the vector size), weights w (Kg rows of Cg; rows past Kg read ``zero``,
   Cg zeros), bias (Kg) or NULL: the
   outputs of flattened positions [t, t + n) (n <= NV * VL; position t is
   (t / P, t % P): image, position in the plane) are stored into y (Kg rows
   of P values per image, images yn values apart). */
#define PCN_PW_STRIP(NAME, T, V, VL, KB, NV, ATTR)                           \
ATTR static void NAME(T *PCN_R y, Py_ssize_t yn, Py_ssize_t P, Py_ssize_t t,  \
                      Py_ssize_t n, const T *PCN_R x, Py_ssize_t S,          \
                      Py_ssize_t Cg, const T *w, const T *zero,              \
                      const T *bias, Py_ssize_t Kg, Py_ssize_t kb0,          \
                      Py_ssize_t kb1) {                                      \
    Py_ssize_t kb, c, i, v, l;                                               \
    Py_ssize_t img = t / P, p = t % P;                                       \
    int whole = n == NV * VL && p + n <= P;   /* within one image */         \
    for (kb = kb0; kb < kb1; kb++) {                                         \
        V acc[KB][NV];                                                       \
        const T *wr[KB];                                                     \
        const T *xc = x;                                                     \
        for (i = 0; i < KB; i++) {                                           \
            Py_ssize_t k = kb * KB + i;                                      \
            T b0 = bias != NULL && k < Kg ? bias[k] : (T)0;                  \
            wr[i] = k < Kg ? w + k * Cg : zero;                              \
            V b;                                                             \
            for (l = 0; l < VL; l++)                                         \
                b[l] = b0;                                                   \
            for (v = 0; v < NV; v++)                                         \
                acc[i][v] = b;                                               \
        }                                                                    \
        for (c = 0; c < Cg; c++, xc += S) {                                  \
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
                Py_ssize_t j = 0, m = img, q = p;                            \
                for (v = 0; v < NV; v++)                                     \
                    memcpy(o + v * VL, &acc[i][v], sizeof(V));               \
                while (j < n) {                                              \
                    Py_ssize_t len = P - q < n - j ? P - q : n - j;          \
                    memcpy(yk + m * yn + q, o + j, (size_t)len * sizeof(T)); \
                    j += len;                                                \
                    m++;                                                     \
                    q = 0;                                                   \
                }                                                            \
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
                    S3(y, yn, P, u, n, xs, S, Cg, w, zero, bias, Kg, kb, kb + 1); \
                else if (nv == 2)                                            \
                    S2(y, yn, P, u, n, xs, S, Cg, w, zero, bias, Kg, kb, kb + 1); \
                else                                                         \
                    S1(y, yn, P, u, n, xs, S, Cg, w, zero, bias, Kg, kb, kb + 1); \
            }                                                                \
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

#endif
