# Depthwise convolution loops on channel-blocked planes
# (include/pcn_depthwise.h), each compiled for the baseline and for AVX2/FMA.
cdef extern from "pcn_depthwise.h":
    enum:
        PCN_DW_LANES_F
        PCN_DW_LANES_D
    ctypedef struct pcn_window_geom:
        Py_ssize_t D, H, W
        Py_ssize_t OD, OH, OW
        Py_ssize_t FD, FH, FW
        Py_ssize_t sd, sh, sw
        Py_ssize_t dd, dh, dw
        Py_ssize_t pd, ph, pw
        Py_ssize_t PD, PH, PW
    # xp (PD, rows, PW, lanes) = channels [0, nc) of x, padded rows [r0, r0 + rows)
    void pcn_dw_pack_f(float *xp, const float *x, Py_ssize_t plane, Py_ssize_t nc,
                       const pcn_window_geom *g, Py_ssize_t r0, Py_ssize_t rows) noexcept nogil
    void pcn_dw_pack_d(double *xp, const double *x, Py_ssize_t plane, Py_ssize_t nc,
                       const pcn_window_geom *g, Py_ssize_t r0, Py_ssize_t rows) noexcept nogil
    # dyp (P, lanes) = channels [0, nc) of dy
    void pcn_dw_pack_out_f(float *dyp, const float *dy, Py_ssize_t plane, Py_ssize_t nc,
                           Py_ssize_t P) noexcept nogil
    void pcn_dw_pack_out_d(double *dyp, const double *dy, Py_ssize_t plane, Py_ssize_t nc,
                           Py_ssize_t P) noexcept nogil
    # dx (channels [0, nc)) = the interior of the padded buffer dxp
    void pcn_dw_unpack_f(float *dx, const float *dxp, Py_ssize_t plane, Py_ssize_t nc,
                         const pcn_window_geom *g) noexcept nogil
    void pcn_dw_unpack_d(double *dx, const double *dxp, Py_ssize_t plane, Py_ssize_t nc,
                         const pcn_window_geom *g) noexcept nogil
    # output rows [oh0, oh1) of one channel block
    void pcn_dw_forward_f(float *y, Py_ssize_t plane, Py_ssize_t nc, const float *xp,
                          const float *wb, const float *bias, const pcn_window_geom *g,
                          Py_ssize_t oh0, Py_ssize_t oh1) noexcept nogil
    void pcn_dw_forward_d(double *y, Py_ssize_t plane, Py_ssize_t nc, const double *xp,
                          const double *wb, const double *bias, const pcn_window_geom *g,
                          Py_ssize_t oh0, Py_ssize_t oh1) noexcept nogil
    # acc (taps, lanes) += the weight gradient of one image's block
    void pcn_dw_weight_grad_f(float *acc, const float *xp, const float *dyp,
                              const pcn_window_geom *g) noexcept nogil
    void pcn_dw_weight_grad_d(double *acc, const double *xp, const double *dyp,
                              const pcn_window_geom *g) noexcept nogil
    # dxp (PD, PH, PW, lanes) += the windows' gradients, scattered
    void pcn_dw_input_grad_f(float *dxp, const float *dyp, const float *wb,
                             const pcn_window_geom *g) noexcept nogil
    void pcn_dw_input_grad_d(double *dxp, const double *dyp, const double *wb,
                             const pcn_window_geom *g) noexcept nogil


# Direct convolution, register-blocked over output channels and positions
# (include/pcn_blocked.h).
cdef extern from "pcn_blocked.h":
    enum:
        PCN_BLK_STRIP
    # output channels per block on this CPU (64 bytes of them, 128 with AVX-512)
    Py_ssize_t pcn_blk_lanes_f() noexcept nogil
    Py_ssize_t pcn_blk_lanes_d() noexcept nogil
    # output positions [p0, p1) of nk <= lanes output channels of one image-group
    void pcn_blk_forward_f(float *y, Py_ssize_t plane, Py_ssize_t nk, const float *xp,
                           Py_ssize_t cs, Py_ssize_t ss, Py_ssize_t rs, Py_ssize_t Cg,
                           const float *wb, const float *bias, const pcn_window_geom *g,
                           Py_ssize_t p0, Py_ssize_t p1, float *acc,
                           Py_ssize_t cb) noexcept nogil
    void pcn_blk_forward_d(double *y, Py_ssize_t plane, Py_ssize_t nk, const double *xp,
                           Py_ssize_t cs, Py_ssize_t ss, Py_ssize_t rs, Py_ssize_t Cg,
                           const double *wb, const double *bias, const pcn_window_geom *g,
                           Py_ssize_t p0, Py_ssize_t p1, double *acc,
                           Py_ssize_t cb) noexcept nogil
    # the same with blocks of 64 bytes of output channels on any CPU
    void pcn_blk_forward_narrow_f(float *y, Py_ssize_t plane, Py_ssize_t nk, const float *xp,
                                  Py_ssize_t cs, Py_ssize_t ss, Py_ssize_t rs, Py_ssize_t Cg,
                                  const float *wb, const float *bias, const pcn_window_geom *g,
                                  Py_ssize_t p0, Py_ssize_t p1, float *acc,
                                  Py_ssize_t cb) noexcept nogil
    void pcn_blk_forward_narrow_d(double *y, Py_ssize_t plane, Py_ssize_t nk,
                                  const double *xp, Py_ssize_t cs, Py_ssize_t ss,
                                  Py_ssize_t rs, Py_ssize_t Cg, const double *wb,
                                  const double *bias, const pcn_window_geom *g,
                                  Py_ssize_t p0, Py_ssize_t p1, double *acc,
                                  Py_ssize_t cb) noexcept nogil


# Pointwise convolution (1x1, unit stride, unpadded) on the planes as stored
# (include/pcn_pointwise.h).
cdef extern from "pcn_pointwise.h":
    int pcn_avx2
    int pcn_avx512
    # output channels per block, positions per strip (float32: double_ = 0)
    Py_ssize_t pcn_pw_block() noexcept nogil
    Py_ssize_t pcn_pw_strip(int double_) noexcept nogil
    # flattened positions [t0, t1) (images side by side) of channel blocks
    # [kb0, kb1) of one group, in chunks of strips; buf: room for chunk x Cg
    # x strip + Cg + 64 values
    void pcn_pw_range_f(float *y, Py_ssize_t yn, const float *x, Py_ssize_t xn,
                        Py_ssize_t P, Py_ssize_t Cg, const float *w, const float *bias,
                        Py_ssize_t Kg, Py_ssize_t kb0, Py_ssize_t kb1, Py_ssize_t t0,
                        Py_ssize_t t1, Py_ssize_t chunk, float *buf) noexcept nogil
    void pcn_pw_range_d(double *y, Py_ssize_t yn, const double *x, Py_ssize_t xn,
                        Py_ssize_t P, Py_ssize_t Cg, const double *w, const double *bias,
                        Py_ssize_t Kg, Py_ssize_t kb0, Py_ssize_t kb1, Py_ssize_t t0,
                        Py_ssize_t t1, Py_ssize_t chunk, double *buf) noexcept nogil
    # output positions [t0, t1) (images side by side) of channel blocks
    # [kb0, kb1) of one group of any layer, by an implicit GEMM; buf: room
    # for chunk x rb x strip + rb + 64 values, idx: 6 x chunk x strip
    void pcn_im_range_f(float *y, Py_ssize_t yn, const float *x, Py_ssize_t xn,
                        Py_ssize_t Cg, const pcn_window_geom *g, const float *w,
                        const float *bias, Py_ssize_t Kg, Py_ssize_t kb0, Py_ssize_t kb1,
                        Py_ssize_t t0, Py_ssize_t t1, Py_ssize_t chunk, Py_ssize_t rb,
                        float *buf, Py_ssize_t *idx) noexcept nogil
    void pcn_im_range_d(double *y, Py_ssize_t yn, const double *x, Py_ssize_t xn,
                        Py_ssize_t Cg, const pcn_window_geom *g, const double *w,
                        const double *bias, Py_ssize_t Kg, Py_ssize_t kb0, Py_ssize_t kb1,
                        Py_ssize_t t0, Py_ssize_t t1, Py_ssize_t chunk, Py_ssize_t rb,
                        double *buf, Py_ssize_t *idx) noexcept nogil
