/* Depthwise convolution (one input channel per output channel) on
 * channel-blocked planes.
 *
 * A depthwise layer does few multiply-adds per value it reads (one per tap),
 * so on the planes as stored (N, C, D, H, W) its loops run along short rows
 * and spend their time on loop overhead and edges. These kernels copy a
 * block of PCN_DW_LANES channels of one image into a zero-padded buffer laid
 * out (PD, PH, PW, lanes): every pixel is one 64-byte vector of channels, so
 * each tap of each output is one vector multiply-add, whatever the map size,
 * stride or dilation. Outputs are written straight into the (N, C, ...)
 * array. Each loop is compiled for the baseline and for AVX2/FMA
 * (pcn_simd.h).
 *
 * Geometry: the buffer covers padded rows [r0, r0 + PH) of the padded input
 * (PD slices, PW columns); output row oh of the band [oh0, oh1) reads padded
 * row oh*sh + b*dh, so the band's buffer starts at r0 = oh0*sh.
 */
#ifndef PCN_DEPTHWISE_H
#define PCN_DEPTHWISE_H

#include <Python.h>     /* Py_ssize_t */
#include <string.h>

#include "pcn_simd.h"

#define PCN_DW_LANES_F 16
#define PCN_DW_LANES_D 8

typedef struct {
    Py_ssize_t D, H, W;          /* input plane */
    Py_ssize_t OD, OH, OW;       /* output plane */
    Py_ssize_t FD, FH, FW;       /* kernel */
    Py_ssize_t sd, sh, sw;
    Py_ssize_t dd, dh, dw;
    Py_ssize_t pd, ph, pw;
    Py_ssize_t PD, PH, PW;       /* padded extent the windows read */
} pcn_window_geom;

/* Copy channels [0, nc) of the planes at x (``plane`` values apart) into
   the lane-blocked buffer xp, padded rows [r0, r0 + rows) only; everything
   else of the buffer (padding, lanes >= nc) is zero. */
#define PCN_DW_PACK(NAME, T, LANES)                                          \
static void NAME(T *PCN_R xp, const T *PCN_R x, Py_ssize_t plane, Py_ssize_t nc, \
                 const pcn_window_geom *g, Py_ssize_t r0, Py_ssize_t rows) {     \
    Py_ssize_t c, z, r, q;                                                   \
    Py_ssize_t z1 = g->PD - g->pd < g->D ? g->PD - g->pd : g->D;             \
    Py_ssize_t h0 = r0 - g->ph > 0 ? r0 - g->ph : 0;                         \
    Py_ssize_t h1 = r0 + rows - g->ph < g->H ? r0 + rows - g->ph : g->H;     \
    Py_ssize_t w1 = g->PW - g->pw < g->W ? g->PW - g->pw : g->W;             \
    memset(xp, 0, (size_t)(g->PD * rows * g->PW * LANES) * sizeof(T));       \
    /* pixel by pixel, each a whole 64-byte line of the buffer */            \
    for (z = 0; z < z1; z++)                                                 \
        for (r = h0; r < h1; r++) {                                          \
            const T *src = x + (z * g->H + r) * g->W;                        \
            T *dst = xp + (((z + g->pd) * rows + r + g->ph - r0) * g->PW     \
                           + g->pw) * LANES;                                 \
            if (nc == LANES)                                                 \
                for (q = 0; q < w1; q++)                                     \
                    for (c = 0; c < LANES; c++)                              \
                        dst[q * LANES + c] = src[c * plane + q];             \
            else                                                             \
                for (q = 0; q < w1; q++)                                     \
                    for (c = 0; c < nc; c++)                                 \
                        dst[q * LANES + c] = src[c * plane + q];             \
        }                                                                    \
}

/* Half a pixel (32 bytes: one AVX register, two SSE ones) as one value of
   GCC's vector extensions, so that the compiler multiplies lane by lane in
   registers whatever it makes of the loops around it. The buffers need not
   be aligned (aligned(sizeof(T)) types). A pixel is two halves, H apart. */
typedef float pcn_dw_vf __attribute__((vector_size(32), aligned(4)));
typedef double pcn_dw_vd __attribute__((vector_size(32), aligned(8)));
#define PCN_DW_LD(V, p) (*(const V *)(p))

/* Output rows [oh0, oh1) of one block: y[c][od][oh][ow] (``plane`` values
   apart per channel, c < nc) = bias[c] + sum over taps of wb[tap][c] times
   the buffer's pixel; the buffer holds padded rows from oh0*sh on. Four
   outputs of a row at a time. */
#define PCN_DW_FORWARD(NAME, T, V, LANES, ATTR)                              \
ATTR static void NAME(T *PCN_R y, Py_ssize_t plane, Py_ssize_t nc,           \
                      const T *PCN_R xp, const T *PCN_R wb, const T *bias,   \
                      const pcn_window_geom *g, Py_ssize_t oh0, Py_ssize_t oh1) { \
    enum { H = LANES / 2 };                                                  \
    Py_ssize_t rows = (oh1 - oh0 - 1) * g->sh + (g->FH - 1) * g->dh + 1;     \
    Py_ssize_t od, oh, ow, a, b, e, c;                                       \
    Py_ssize_t step = g->sw * LANES;                                         \
    const V b0 = PCN_DW_LD(V, bias), b1 = PCN_DW_LD(V, bias + H);            \
    for (od = 0; od < g->OD; od++)                                           \
        for (oh = oh0; oh < oh1; oh++) {                                     \
            T *yrow = y + (od * g->OH + oh) * g->OW;                         \
            for (ow = 0; ow + 4 <= g->OW; ow += 4) {                         \
                V a0 = b0, a1 = b0, a2 = b0, a3 = b0;                        \
                V c0 = b1, c1 = b1, c2 = b1, c3 = b1;                        \
                T o[4][LANES];                                               \
                for (a = 0; a < g->FD; a++)                                  \
                    for (b = 0; b < g->FH; b++) {                            \
                        const T *src = xp + (((od * g->sd + a * g->dd) * rows \
                                              + (oh - oh0) * g->sh + b * g->dh) \
                                             * g->PW + ow * g->sw) * LANES;  \
                        const T *wt = wb + (a * g->FH + b) * g->FW * LANES;  \
                        for (e = 0; e < g->FW; e++) {                        \
                            const T *s0 = src + e * g->dw * LANES;           \
                            const V w0 = PCN_DW_LD(V, wt + e * LANES);       \
                            const V w1 = PCN_DW_LD(V, wt + e * LANES + H);   \
                            a0 += PCN_DW_LD(V, s0) * w0;                     \
                            c0 += PCN_DW_LD(V, s0 + H) * w1;                 \
                            a1 += PCN_DW_LD(V, s0 + step) * w0;              \
                            c1 += PCN_DW_LD(V, s0 + step + H) * w1;          \
                            a2 += PCN_DW_LD(V, s0 + 2 * step) * w0;          \
                            c2 += PCN_DW_LD(V, s0 + 2 * step + H) * w1;      \
                            a3 += PCN_DW_LD(V, s0 + 3 * step) * w0;          \
                            c3 += PCN_DW_LD(V, s0 + 3 * step + H) * w1;      \
                        }                                                    \
                    }                                                        \
                *(V *)o[0] = a0; *(V *)(o[0] + H) = c0;                      \
                *(V *)o[1] = a1; *(V *)(o[1] + H) = c1;                      \
                *(V *)o[2] = a2; *(V *)(o[2] + H) = c2;                      \
                *(V *)o[3] = a3; *(V *)(o[3] + H) = c3;                      \
                for (c = 0; c < nc; c++) {                                   \
                    T *q = yrow + c * plane + ow;                            \
                    q[0] = o[0][c]; q[1] = o[1][c]; q[2] = o[2][c]; q[3] = o[3][c]; \
                }                                                            \
            }                                                                \
            for (; ow < g->OW; ow++) {                                       \
                V a0 = b0, c0 = b1;                                          \
                T o[LANES];                                                  \
                for (a = 0; a < g->FD; a++)                                  \
                    for (b = 0; b < g->FH; b++) {                            \
                        const T *src = xp + (((od * g->sd + a * g->dd) * rows \
                                              + (oh - oh0) * g->sh + b * g->dh) \
                                             * g->PW + ow * g->sw) * LANES;  \
                        const T *wt = wb + (a * g->FH + b) * g->FW * LANES;  \
                        for (e = 0; e < g->FW; e++) {                        \
                            const T *s0 = src + e * g->dw * LANES;           \
                            a0 += PCN_DW_LD(V, s0) * PCN_DW_LD(V, wt + e * LANES); \
                            c0 += PCN_DW_LD(V, s0 + H) * PCN_DW_LD(V, wt + e * LANES + H); \
                        }                                                    \
                    }                                                        \
                *(V *)o = a0; *(V *)(o + H) = c0;                            \
                for (c = 0; c < nc; c++)                                     \
                    yrow[c * plane + ow] = o[c];                             \
            }                                                                \
        }                                                                    \
}

/* Copy channels [0, nc) of the output-shaped planes at dy into the
   lane-blocked buffer dyp (OD, OH, OW, lanes); lanes >= nc are zero. */
#define PCN_DW_PACK_OUT(NAME, T, LANES)                                      \
static void NAME(T *PCN_R dyp, const T *PCN_R dy, Py_ssize_t plane, Py_ssize_t nc, \
                 Py_ssize_t P) {                                             \
    Py_ssize_t c, q;                                                         \
    if (nc == LANES) {                                                       \
        for (q = 0; q < P; q++)                                              \
            for (c = 0; c < LANES; c++)                                      \
                dyp[q * LANES + c] = dy[c * plane + q];                      \
        return;                                                              \
    }                                                                        \
    memset(dyp, 0, (size_t)(P * LANES) * sizeof(T));                         \
    for (q = 0; q < P; q++)                                                  \
        for (c = 0; c < nc; c++)                                             \
            dyp[q * LANES + c] = dy[c * plane + q];                          \
}

/* acc[tap][c] += sum over outputs of dyp[out][c] times the buffer's pixel
   that the tap multiplies (the whole padded plane is in the buffer). Row by
   row of outputs, so that the rows read stay in cache. */
#define PCN_DW_WEIGHT_GRAD(NAME, T, V, LANES, ATTR)                          \
ATTR static void NAME(T *PCN_R acc, const T *PCN_R xp, const T *PCN_R dyp,   \
                      const pcn_window_geom *g) {                                \
    enum { H = LANES / 2 };                                                  \
    Py_ssize_t od, oh, ow, a, b, e;                                          \
    Py_ssize_t step = g->sw * LANES;                                         \
    for (od = 0; od < g->OD; od++)                                           \
        for (oh = 0; oh < g->OH; oh++) {                                     \
            const T *d = dyp + (od * g->OH + oh) * g->OW * LANES;            \
            for (a = 0; a < g->FD; a++)                                      \
                for (b = 0; b < g->FH; b++) {                                \
                    const T *row = xp + ((od * g->sd + a * g->dd) * g->PH    \
                                         + oh * g->sh + b * g->dh) * g->PW * LANES; \
                    for (e = 0; e < g->FW; e++) {                            \
                        const T *src = row + e * g->dw * LANES;              \
                        T *t = acc + ((a * g->FH + b) * g->FW + e) * LANES;  \
                        V s0 = {0}, s1 = {0}, u0 = {0}, u1 = {0};            \
                        for (ow = 0; ow + 2 <= g->OW; ow += 2) {             \
                            const T *p0 = src + ow * step;                   \
                            const T *d0 = d + ow * LANES;                    \
                            s0 += PCN_DW_LD(V, d0) * PCN_DW_LD(V, p0);       \
                            u0 += PCN_DW_LD(V, d0 + H) * PCN_DW_LD(V, p0 + H); \
                            s1 += PCN_DW_LD(V, d0 + LANES) * PCN_DW_LD(V, p0 + step); \
                            u1 += PCN_DW_LD(V, d0 + LANES + H)               \
                                  * PCN_DW_LD(V, p0 + step + H);             \
                        }                                                    \
                        if (ow < g->OW) {                                    \
                            const T *p0 = src + ow * step;                   \
                            const T *d0 = d + ow * LANES;                    \
                            s0 += PCN_DW_LD(V, d0) * PCN_DW_LD(V, p0);       \
                            u0 += PCN_DW_LD(V, d0 + H) * PCN_DW_LD(V, p0 + H); \
                        }                                                    \
                        *(V *)t += s0 + s1;                                  \
                        *(V *)(t + H) += u0 + u1;                            \
                    }                                                        \
                }                                                            \
        }                                                                    \
}

/* dxp[pixel][c] += dyp[out][c] wb[tap][c] for every output and tap (the
   windows scattered back onto the padded plane, zeroed by the caller). */
#define PCN_DW_INPUT_GRAD(NAME, T, V, LANES, ATTR)                           \
ATTR static void NAME(T *PCN_R dxp, const T *PCN_R dyp, const T *PCN_R wb,   \
                      const pcn_window_geom *g) {                                \
    enum { H = LANES / 2 };                                                  \
    Py_ssize_t od, oh, ow, a, b, e;                                          \
    Py_ssize_t step = g->sw * LANES;                                         \
    for (od = 0; od < g->OD; od++)                                           \
        for (oh = 0; oh < g->OH; oh++)                                       \
            for (a = 0; a < g->FD; a++)                                      \
                for (b = 0; b < g->FH; b++) {                                \
                    T *dst = dxp + (((od * g->sd + a * g->dd) * g->PH        \
                                     + oh * g->sh + b * g->dh) * g->PW) * LANES; \
                    const T *d = dyp + (od * g->OH + oh) * g->OW * LANES;    \
                    const T *wt = wb + (a * g->FH + b) * g->FW * LANES;      \
                    for (e = 0; e < g->FW; e++) {                            \
                        const V w0 = PCN_DW_LD(V, wt + e * LANES);           \
                        const V w1 = PCN_DW_LD(V, wt + e * LANES + H);       \
                        T *q = dst + e * g->dw * LANES;                      \
                        for (ow = 0; ow < g->OW; ow++) {                     \
                            *(V *)(q + ow * step) += PCN_DW_LD(V, d + ow * LANES) * w0; \
                            *(V *)(q + ow * step + H) +=                     \
                                PCN_DW_LD(V, d + ow * LANES + H) * w1;       \
                        }                                                    \
                    }                                                        \
                }                                                            \
}

/* dx[c][z][r][q] (channels c < nc, ``plane`` apart) = the buffer's pixel
   (z + pd, r + ph, q + pw); input pixels outside the padded extent get 0. */
#define PCN_DW_UNPACK(NAME, T, LANES)                                        \
static void NAME(T *PCN_R dx, const T *PCN_R dxp, Py_ssize_t plane, Py_ssize_t nc, \
                 const pcn_window_geom *g) {                                     \
    Py_ssize_t c, z, r, q;                                                   \
    Py_ssize_t w1 = g->PW - g->pw < g->W ? g->PW - g->pw : g->W;             \
    for (z = 0; z < g->D; z++)                                               \
        for (r = 0; r < g->H; r++) {                                         \
            T *dst = dx + (z * g->H + r) * g->W;                             \
            Py_ssize_t pz = z + g->pd, pr = r + g->ph;                       \
            const T *src = dxp + ((pz * g->PH + pr) * g->PW + g->pw) * LANES; \
            if (pz >= g->PD || pr >= g->PH) {                                \
                for (c = 0; c < nc; c++)                                     \
                    memset(dst + c * plane, 0, (size_t)g->W * sizeof(T));    \
                continue;                                                    \
            }                                                                \
            for (q = 0; q < w1; q++)                                         \
                for (c = 0; c < nc; c++)                                     \
                    dst[c * plane + q] = src[q * LANES + c];                 \
            for (c = 0; c < nc; c++)                                         \
                for (q = w1; q < g->W; q++)                                  \
                    dst[c * plane + q] = 0;                                  \
        }                                                                    \
}

PCN_DW_PACK(pcn_dw_pack_f, float, PCN_DW_LANES_F)
PCN_DW_PACK(pcn_dw_pack_d, double, PCN_DW_LANES_D)
PCN_DW_PACK_OUT(pcn_dw_pack_out_f, float, PCN_DW_LANES_F)
PCN_DW_PACK_OUT(pcn_dw_pack_out_d, double, PCN_DW_LANES_D)
PCN_DW_UNPACK(pcn_dw_unpack_f, float, PCN_DW_LANES_F)
PCN_DW_UNPACK(pcn_dw_unpack_d, double, PCN_DW_LANES_D)

PCN_DW_FORWARD(pcn_dw_forward_f0, float, pcn_dw_vf, PCN_DW_LANES_F, )
PCN_DW_FORWARD(pcn_dw_forward_d0, double, pcn_dw_vd, PCN_DW_LANES_D, )
PCN_DW_WEIGHT_GRAD(pcn_dw_weight_grad_f0, float, pcn_dw_vf, PCN_DW_LANES_F, )
PCN_DW_WEIGHT_GRAD(pcn_dw_weight_grad_d0, double, pcn_dw_vd, PCN_DW_LANES_D, )
PCN_DW_INPUT_GRAD(pcn_dw_input_grad_f0, float, pcn_dw_vf, PCN_DW_LANES_F, )
PCN_DW_INPUT_GRAD(pcn_dw_input_grad_d0, double, pcn_dw_vd, PCN_DW_LANES_D, )
#if PCN_DISPATCH
PCN_DW_FORWARD(pcn_dw_forward_f1, float, pcn_dw_vf, PCN_DW_LANES_F, PCN_AVX2)
PCN_DW_FORWARD(pcn_dw_forward_d1, double, pcn_dw_vd, PCN_DW_LANES_D, PCN_AVX2)
PCN_DW_WEIGHT_GRAD(pcn_dw_weight_grad_f1, float, pcn_dw_vf, PCN_DW_LANES_F, PCN_AVX2)
PCN_DW_WEIGHT_GRAD(pcn_dw_weight_grad_d1, double, pcn_dw_vd, PCN_DW_LANES_D, PCN_AVX2)
PCN_DW_INPUT_GRAD(pcn_dw_input_grad_f1, float, pcn_dw_vf, PCN_DW_LANES_F, PCN_AVX2)
PCN_DW_INPUT_GRAD(pcn_dw_input_grad_d1, double, pcn_dw_vd, PCN_DW_LANES_D, PCN_AVX2)
#endif

static void pcn_dw_forward_f(float *y, Py_ssize_t plane, Py_ssize_t nc, const float *xp,
                             const float *wb, const float *bias, const pcn_window_geom *g,
                             Py_ssize_t oh0, Py_ssize_t oh1) {
    PCN_PICK(pcn_dw_forward_f0, pcn_dw_forward_f1)(y, plane, nc, xp, wb, bias, g, oh0, oh1);
}
static void pcn_dw_forward_d(double *y, Py_ssize_t plane, Py_ssize_t nc, const double *xp,
                             const double *wb, const double *bias, const pcn_window_geom *g,
                             Py_ssize_t oh0, Py_ssize_t oh1) {
    PCN_PICK(pcn_dw_forward_d0, pcn_dw_forward_d1)(y, plane, nc, xp, wb, bias, g, oh0, oh1);
}
static void pcn_dw_weight_grad_f(float *acc, const float *xp, const float *dyp,
                                 const pcn_window_geom *g) {
    PCN_PICK(pcn_dw_weight_grad_f0, pcn_dw_weight_grad_f1)(acc, xp, dyp, g);
}
static void pcn_dw_weight_grad_d(double *acc, const double *xp, const double *dyp,
                                 const pcn_window_geom *g) {
    PCN_PICK(pcn_dw_weight_grad_d0, pcn_dw_weight_grad_d1)(acc, xp, dyp, g);
}
static void pcn_dw_input_grad_f(float *dxp, const float *dyp, const float *wb,
                                const pcn_window_geom *g) {
    PCN_PICK(pcn_dw_input_grad_f0, pcn_dw_input_grad_f1)(dxp, dyp, wb, g);
}
static void pcn_dw_input_grad_d(double *dxp, const double *dyp, const double *wb,
                                const pcn_window_geom *g) {
    PCN_PICK(pcn_dw_input_grad_d0, pcn_dw_input_grad_d1)(dxp, dyp, wb, g);
}

#endif
