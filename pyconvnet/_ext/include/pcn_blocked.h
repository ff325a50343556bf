/* Direct convolution, register-blocked over output channels and positions.
 *
 * For layers too small for im2col + GEMM to pay for its copies and its
 * calls (small maps, few channels, batch 1), and for kernels other than
 * 3x3: the outputs are computed in strips of PCN_BLK_STRIP positions for
 * a block of output channels (64 bytes of them; 128 with AVX-512), the
 * strip's accumulators (2 x PCN_BLK_STRIP vectors of 32 bytes, or 64 with
 * AVX-512) held in registers
 * over every input channel and tap: each step loads one tap's weights for
 * the block (two vectors) and multiplies them by PCN_BLK_STRIP input values,
 * each broadcast to every lane, tap by tap over the input channels (fixed
 * strides, whatever the kernel). The weights are repacked per block as
 * (taps, Cg, lanes); the input is read in place or from a zero-padded copy,
 * with any stride and dilation (the geometry of pcn_depthwise.h, with the
 * strides of the planes given apart).
 */
#ifndef PCN_BLOCKED_H
#define PCN_BLOCKED_H

#include "pcn_depthwise.h"

#define PCN_BLK_STRIP 6

/* Output positions [p0, p1) (flattened over OD, OH, OW) of the block's
   nk <= lanes output channels, y[k][p] with ``plane`` values per channel,
   from Cg input channels at xp (``cs`` values apart; slices ``ss`` and rows
   ``rs`` apart within a channel), weights wb (taps, Cg, lanes) and biases
   bias (lanes). The input channels are taken ``cb`` at a time, so that
   their weights stay in the first-level cache while every strip passes
   over them; the sums in between wait in acc ((p1 - p0 + PCN_BLK_STRIP) x
   lanes: a last, short strip reads a whole strip's worth). A strip
   may run over the end of a row: each position keeps its own offset into
   the input. */
#define PCN_BLK_FORWARD(NAME, T, V, LANES, ATTR)                             \
ATTR static void NAME(T *PCN_R y, Py_ssize_t plane, Py_ssize_t nk,           \
                      const T *PCN_R xp, Py_ssize_t cs, Py_ssize_t ss,       \
                      Py_ssize_t rs, Py_ssize_t Cg, const T *PCN_R wb,       \
                      const T *bias, const pcn_window_geom *g,               \
                      Py_ssize_t p0, Py_ssize_t p1, T *PCN_R acc,            \
                      Py_ssize_t cb) {                                       \
    enum { H = LANES / 2, S = PCN_BLK_STRIP };                               \
    Py_ssize_t taps = g->FD * g->FH * g->FW;                                 \
    Py_ssize_t OHW = g->OH * g->OW;                                          \
    Py_ssize_t p, c, c0, c1, a, b, e, j, k, t;                               \
    Py_ssize_t off[S], toff[taps];                                           \
    for (a = 0, t = 0; a < g->FD; a++)       /* each tap's input offset */   \
        for (b = 0; b < g->FH; b++)                                          \
            for (e = 0; e < g->FW; e++, t++)                                 \
                toff[t] = a * g->dd * ss + b * g->dh * rs + e * g->dw;       \
    const V b0 = PCN_DW_LD(V, bias), b1 = PCN_DW_LD(V, bias + H);            \
    for (c0 = 0; c0 < Cg; c0 = c1) {                                         \
      /* the position of the strip's first output, stepped along */          \
      Py_ssize_t od = p0 / OHW, oh = (p0 % OHW) / g->OW, ow = p0 % g->OW;    \
      c1 = Cg - c0 < cb ? Cg : c0 + cb;                                      \
      for (p = p0; p < p1; p += S) {                                         \
        Py_ssize_t n = p1 - p < S ? p1 - p : S;                              \
        T o[S][LANES];                                                       \
        V a0, a1, a2, a3, a4, a5, d0, d1, d2, d3, d4, d5;                    \
        if (c0 == 0) {                                                       \
            a0 = a1 = a2 = a3 = a4 = a5 = b0;                                \
            d0 = d1 = d2 = d3 = d4 = d5 = b1;                                \
        } else {                                                             \
            const T *s0 = acc + (p - p0) * LANES;                            \
            a0 = PCN_DW_LD(V, s0); d0 = PCN_DW_LD(V, s0 + H);                \
            a1 = PCN_DW_LD(V, s0 + LANES); d1 = PCN_DW_LD(V, s0 + LANES + H); \
            a2 = PCN_DW_LD(V, s0 + 2 * LANES); d2 = PCN_DW_LD(V, s0 + 2 * LANES + H); \
            a3 = PCN_DW_LD(V, s0 + 3 * LANES); d3 = PCN_DW_LD(V, s0 + 3 * LANES + H); \
            a4 = PCN_DW_LD(V, s0 + 4 * LANES); d4 = PCN_DW_LD(V, s0 + 4 * LANES + H); \
            a5 = PCN_DW_LD(V, s0 + 5 * LANES); d5 = PCN_DW_LD(V, s0 + 5 * LANES + H); \
        }                                                                    \
        for (j = 0; j < S; j++) {                                            \
            /* positions past the end repeat the last one */                 \
            off[j] = j < n ? od * g->sd * ss + oh * g->sh * rs + ow * g->sw  \
                           : off[j - 1];                                     \
            if (j < n && ++ow == g->OW) {                                    \
                ow = 0;                                                      \
                if (++oh == g->OH) {                                         \
                    oh = 0;                                                  \
                    od++;                                                    \
                }                                                            \
            }                                                                \
        }                                                                    \
        for (t = 0; t < taps; t++) {                                         \
            /* every input channel of the pass at one tap: fixed strides */  \
            const T *x0 = xp + toff[t] + c0 * cs;                            \
            const T *x1 = x0 + off[1], *x2 = x0 + off[2], *x3 = x0 + off[3]; \
            const T *x4 = x0 + off[4], *x5 = x0 + off[5];                    \
            const T *wt = wb + (t * Cg + c0) * LANES;                        \
            x0 += off[0];                                                    \
            for (c = c0; c < c1; c++, x0 += cs, x1 += cs, x2 += cs, x3 += cs, \
                 x4 += cs, x5 += cs, wt += LANES) {                          \
                const V w0 = PCN_DW_LD(V, wt), w1 = PCN_DW_LD(V, wt + H);    \
                T v0 = *x0, v1 = *x1, v2 = *x2, v3 = *x3, v4 = *x4, v5 = *x5; \
                a0 += v0 * w0; d0 += v0 * w1;                                \
                a1 += v1 * w0; d1 += v1 * w1;                                \
                a2 += v2 * w0; d2 += v2 * w1;                                \
                a3 += v3 * w0; d3 += v3 * w1;                                \
                a4 += v4 * w0; d4 += v4 * w1;                                \
                a5 += v5 * w0; d5 += v5 * w1;                                \
            }                                                                \
        }                                                                    \
        if (c1 < Cg) {                                                       \
            /* partial sums, the strip's padding positions included */       \
            T *s0 = acc + (p - p0) * LANES;                                  \
            if (n == S) {                                                    \
                *(V *)s0 = a0; *(V *)(s0 + H) = d0;                          \
                *(V *)(s0 + LANES) = a1; *(V *)(s0 + LANES + H) = d1;        \
                *(V *)(s0 + 2 * LANES) = a2; *(V *)(s0 + 2 * LANES + H) = d2; \
                *(V *)(s0 + 3 * LANES) = a3; *(V *)(s0 + 3 * LANES + H) = d3; \
                *(V *)(s0 + 4 * LANES) = a4; *(V *)(s0 + 4 * LANES + H) = d4; \
                *(V *)(s0 + 5 * LANES) = a5; *(V *)(s0 + 5 * LANES + H) = d5; \
                continue;                                                    \
            }                                                                \
        }                                                                    \
        *(V *)o[0] = a0; *(V *)(o[0] + H) = d0;                              \
        *(V *)o[1] = a1; *(V *)(o[1] + H) = d1;                              \
        *(V *)o[2] = a2; *(V *)(o[2] + H) = d2;                              \
        *(V *)o[3] = a3; *(V *)(o[3] + H) = d3;                              \
        *(V *)o[4] = a4; *(V *)(o[4] + H) = d4;                              \
        *(V *)o[5] = a5; *(V *)(o[5] + H) = d5;                              \
        if (c1 < Cg) {                                                       \
            /* a short strip: only its positions have room in acc */         \
            memcpy(acc + (p - p0) * LANES, o, (size_t)(n * LANES) * sizeof(T)); \
            continue;                                                        \
        }                                                                    \
        for (k = 0; k < nk; k++) {                                           \
            T *q = y + k * plane + p;                                        \
            for (j = 0; j < n; j++)                                          \
                q[j] = o[j][k];                                              \
        }                                                                    \
      }                                                                      \
    }                                                                        \
}

/* With AVX-512 each half is one 64-byte register: blocks of 128 bytes of
   output channels (32 float32, 16 float64), twice the work per step. */
typedef float pcn_blk_vf512 __attribute__((vector_size(64), aligned(4)));
typedef double pcn_blk_vd512 __attribute__((vector_size(64), aligned(8)));

PCN_BLK_FORWARD(pcn_blk_forward_f0, float, pcn_dw_vf, PCN_DW_LANES_F, )
PCN_BLK_FORWARD(pcn_blk_forward_d0, double, pcn_dw_vd, PCN_DW_LANES_D, )
#if PCN_DISPATCH
PCN_BLK_FORWARD(pcn_blk_forward_f1, float, pcn_dw_vf, PCN_DW_LANES_F, PCN_AVX2)
PCN_BLK_FORWARD(pcn_blk_forward_d1, double, pcn_dw_vd, PCN_DW_LANES_D, PCN_AVX2)
PCN_BLK_FORWARD(pcn_blk_forward_f2, float, pcn_blk_vf512, 2 * PCN_DW_LANES_F, PCN_AVX512)
PCN_BLK_FORWARD(pcn_blk_forward_d2, double, pcn_blk_vd512, 2 * PCN_DW_LANES_D, PCN_AVX512)
#define PCN_BLK_PICK(f0, f1, f2) (pcn_avx512 ? f2 : pcn_avx2 ? f1 : f0)
#else
#define PCN_BLK_PICK(f0, f1, f2) f0
#endif

/* Output channels per block of pcn_blk_forward_f/_d on this CPU. */
static Py_ssize_t pcn_blk_lanes_f(void) {
#if PCN_DISPATCH
    if (pcn_avx512)
        return 2 * PCN_DW_LANES_F;
#endif
    return PCN_DW_LANES_F;
}
static Py_ssize_t pcn_blk_lanes_d(void) {
#if PCN_DISPATCH
    if (pcn_avx512)
        return 2 * PCN_DW_LANES_D;
#endif
    return PCN_DW_LANES_D;
}

/* The 64-byte blocks (AVX2 or baseline loops) whatever the CPU: for
   layers of few output channels per group, where 128-byte blocks would
   mostly compute padding lanes. */
static void pcn_blk_forward_narrow_f(float *y, Py_ssize_t plane, Py_ssize_t nk,
                                     const float *xp, Py_ssize_t cs, Py_ssize_t ss,
                                     Py_ssize_t rs, Py_ssize_t Cg, const float *wb,
                                     const float *bias, const pcn_window_geom *g,
                                     Py_ssize_t p0, Py_ssize_t p1, float *acc, Py_ssize_t cb) {
    PCN_PICK(pcn_blk_forward_f0, pcn_blk_forward_f1)(y, plane, nk, xp, cs, ss, rs, Cg, wb,
                                                     bias, g, p0, p1, acc, cb);
}
static void pcn_blk_forward_narrow_d(double *y, Py_ssize_t plane, Py_ssize_t nk,
                                     const double *xp, Py_ssize_t cs, Py_ssize_t ss,
                                     Py_ssize_t rs, Py_ssize_t Cg, const double *wb,
                                     const double *bias, const pcn_window_geom *g,
                                     Py_ssize_t p0, Py_ssize_t p1, double *acc, Py_ssize_t cb) {
    PCN_PICK(pcn_blk_forward_d0, pcn_blk_forward_d1)(y, plane, nk, xp, cs, ss, rs, Cg, wb,
                                                     bias, g, p0, p1, acc, cb);
}

static void pcn_blk_forward_f(float *y, Py_ssize_t plane, Py_ssize_t nk, const float *xp,
                              Py_ssize_t cs, Py_ssize_t ss, Py_ssize_t rs, Py_ssize_t Cg,
                              const float *wb, const float *bias, const pcn_window_geom *g,
                              Py_ssize_t p0, Py_ssize_t p1, float *acc, Py_ssize_t cb) {
    PCN_BLK_PICK(pcn_blk_forward_f0, pcn_blk_forward_f1, pcn_blk_forward_f2)(y, plane, nk, xp, cs, ss, rs, Cg, wb,
                                                     bias, g, p0, p1, acc, cb);
}
static void pcn_blk_forward_d(double *y, Py_ssize_t plane, Py_ssize_t nk, const double *xp,
                              Py_ssize_t cs, Py_ssize_t ss, Py_ssize_t rs, Py_ssize_t Cg,
                              const double *wb, const double *bias, const pcn_window_geom *g,
                              Py_ssize_t p0, Py_ssize_t p1, double *acc, Py_ssize_t cb) {
    PCN_BLK_PICK(pcn_blk_forward_d0, pcn_blk_forward_d1, pcn_blk_forward_d2)(y, plane, nk, xp, cs, ss, rs, Cg, wb,
                                                     bias, g, p0, p1, acc, cb);
}

#endif
