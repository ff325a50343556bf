"""Convolution layer kernels: forward pass and gradients, NCDHW (rank 1 to 3).

Every array arrives as a C-contiguous 5-D view: input ``x (N, C, D, H, W)``,
weight ``w (K, C/G, FD, FH, FW)``, output ``y (N, K, OD, OH, OW)``; 1-D and
2-D layers use leading spatial axes of length one. With ``G`` groups, output
channel ``k`` of group ``g = k // (K/G)`` reads input channels
``g*C/G ... (g+1)*C/G - 1``. Along each spatial axis output index ``o`` and
kernel tap ``f`` read input index

    i = o * stride + f * dilation - pad                                  (1)

and an ``i`` outside ``[0, n)`` contributes zero. ``pad`` is the padding
before the axis (it may be negative when a kernel crops its input); the
output sizes come from the arrays' shapes, so the wrapper alone owns the
output-size formula.

Kernels (the wrapper picks one per convolution):

* GEMM: the output positions are split into tiles; a tile's input windows are
  unrolled into a column matrix (im2col, one row per (channel, tap), one
  column per output position), and one matrix product per (image, group,
  tile) multiplies it by the weights. A 1x1 kernel with unit stride and no
  padding needs no unrolling. The input gradient of strided layers adds
  ``W^T dy`` back onto the input (col2im); the weight gradient sums
  ``dy cols^T`` over tiles.
* Winograd F(m x m, 3 x 3), m = 2 or 4: 3x3 kernels with unit stride (any
  dilation), forward pass and weight gradient.
* Padded: unit-stride direct loops over zero-padded copies of the input, one
  long multiply-add per kernel tap (depthwise and few-channel layers).
* Direct: loops for what remains (strided depthwise and few-channel layers).

The unit-stride input gradient is itself a forward convolution (of ``dy``
with the rotated kernel), run by whichever forward kernel suits it. Tasks run
in OpenMP loops; BLAS is called inside them on one thread (the wrapper holds
BLAS to one thread), so the two never compete for the cores. Per-thread
buffers come from a cache of scratch memory.

The wrapper validates everything first; the loops here do no bounds checks.
"""
import numpy as np

from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport dgemm, sgemm

from ._common cimport _ceil_div, _max, _min
from ._convloops cimport (pcn_dots_d, pcn_dots_f, pcn_lincomb_d, pcn_lincomb_f, pcn_taps_d,
                          pcn_taps_f)
from ._depthwise cimport (PCN_DW_LANES_D, PCN_DW_LANES_F, pcn_dw_forward_d, pcn_dw_forward_f,
                          pcn_window_geom, pcn_dw_input_grad_d, pcn_dw_input_grad_f, pcn_dw_pack_d,
                          pcn_dw_pack_f, pcn_dw_pack_out_d, pcn_dw_pack_out_f, pcn_dw_unpack_d,
                          pcn_dw_unpack_f, pcn_dw_weight_grad_d, pcn_dw_weight_grad_f,
                          pcn_blk_forward_d, pcn_blk_forward_f, pcn_blk_forward_narrow_d,
                          pcn_blk_forward_narrow_f, pcn_blk_lanes_d, pcn_blk_lanes_f,
                          PCN_BLK_STRIP, pcn_avx2, pcn_avx512, pcn_pw_range_d, pcn_pw_range_f, pcn_im_range_d, pcn_im_range_f,
                          pcn_pw_block, pcn_pw_strip)
from ._openmp cimport omp_get_thread_num
from ._simd cimport pcn_simd_init

from .. import _workspace
from .._workspace import Scratch as _Scratch


# --- scratch memory ------------------------------------------------------------
#
# The kernels' per-thread buffers (column tiles, Winograd matrices, padded
# planes) run to tens of megabytes; freshly allocated, every page of them
# faults on first touch. They are drawn from pyconvnet's workspace cache
# instead (pyconvnet._workspace: bounded, thread- and fork-safe), shared by
# all calls; each call owns what it took until it returns it.


def clear_cache():
    """Free the cached scratch buffers (:func:`pyconvnet._workspace.clear`)."""
    _workspace.clear()


# --- vector loops -------------------------------------------------------------
#
# The loops that carry most of the direct and Winograd arithmetic
# (multiply-adds over padded planes, the transforms' linear combinations,
# and the weight gradient's dot products) are C in include/pcn_convloops.h,
# compiled twice on x86 with GCC or Clang: for the baseline instruction set
# and for AVX2 with FMA, picked at import by what the CPU supports
# (include/pcn_simd.h).


pcn_simd_init()
include "_simd_levels.pxi"


cdef struct Geom:
    # Sizes: input channels and spatial extent of one image, channels per
    # group, kernel and output extent, and the per-axis index map (1).
    Py_ssize_t C, D, H, W
    Py_ssize_t K, G, Cg, Kg
    Py_ssize_t FD, FH, FW
    Py_ssize_t OD, OH, OW
    Py_ssize_t sd, sh, sw
    Py_ssize_t pd, ph, pw
    Py_ssize_t dd, dh, dw
    # Output columns [wlo[e], whi[e]) read inside the input row for kernel
    # column e (from _valid_range; filled by _column_ranges).
    Py_ssize_t *wlo
    Py_ssize_t *whi


cdef inline void _valid_range(Py_ssize_t n, Py_ssize_t n_out, Py_ssize_t stride,
                              Py_ssize_t shift, Py_ssize_t *lo,
                              Py_ssize_t *hi) noexcept nogil:
    # Output indices o in [lo, hi) read an input index o*stride + shift
    # inside [0, n).
    lo[0] = _min(n_out, _max(0, _ceil_div(-shift, stride)))
    hi[0] = _max(lo[0], _min(n_out, _ceil_div(n - shift, stride)))


cdef Geom _geometry(const Py_ssize_t *xshape, const Py_ssize_t *wshape,
                    const Py_ssize_t *yshape, tuple stride, tuple pad,
                    tuple dilation, Py_ssize_t groups) except *:
    # Sizes from the 5-D shapes of input, weight and output.
    cdef Geom g
    g.C, g.D, g.H, g.W = xshape[1], xshape[2], xshape[3], xshape[4]
    g.K = wshape[0]
    g.G = groups
    g.Cg = wshape[1]
    g.Kg = g.K // groups
    g.FD, g.FH, g.FW = wshape[2], wshape[3], wshape[4]
    g.OD, g.OH, g.OW = yshape[2], yshape[3], yshape[4]
    g.sd, g.sh, g.sw = stride
    g.pd, g.ph, g.pw = pad
    g.dd, g.dh, g.dw = dilation
    g.wlo = g.whi = NULL
    return g


cdef Py_ssize_t[:, ::1] _column_ranges(Geom *g):
    # Fill g.wlo / g.whi; the caller keeps the returned array alive.
    cdef:
        Py_ssize_t[:, ::1] ranges = np.empty((2, g.FW), dtype=np.intp)
        Py_ssize_t e
    for e in range(g.FW):
        _valid_range(g.W, g.OW, g.sw, e * g.dw - g.pw, &ranges[0, e], &ranges[1, e])
    g.wlo = &ranges[0, 0]
    g.whi = &ranges[1, 0]
    return ranges


cdef inline void _gemm(char ta, char tb, int m, int n, int k, floating alpha,
                       const floating *a, int lda, const floating *b, int ldb,
                       floating beta, floating *c, int ldc) noexcept nogil:
    # Column-major C = alpha op(A) op(B) + beta C (BLAS conventions). A
    # row-major matrix is the column-major transpose, so a row-major
    # Y = Wt @ X is requested as Y^T = X^T Wt^T.
    if floating is float:
        sgemm(&ta, &tb, &m, &n, &k, &alpha, <float *>a, &lda, <float *>b, &ldb,
              &beta, c, &ldc)
    else:
        dgemm(&ta, &tb, &m, &n, &k, &alpha, <double *>a, &lda, <double *>b, &ldb,
              &beta, c, &ldc)


# --- im2col / col2im ---------------------------------------------------------

cdef inline bint _is_pointwise(const Geom *g) noexcept nogil:
    # A 1x1 kernel with unit stride and no padding reads the input plane as
    # it lies: it already is the column matrix.
    return (g.FD == 1 and g.FH == 1 and g.FW == 1 and g.sd == 1 and g.sh == 1
            and g.sw == 1 and g.pd == 0 and g.ph == 0 and g.pw == 0)


cdef void _im2col(const floating *x, floating *cols, const Geom *g,
                  Py_ssize_t p0, Py_ssize_t nb, Py_ssize_t ld) noexcept nogil:
    """Unroll the windows of output positions [p0, p0 + nb) of one group.

    ``x`` points at the group's first channel (Cg, D, H, W); ``cols`` gets
    Cg*FD*FH*FW rows of ``nb`` values, ``ld`` apart: row (c, a, b, e),
    column j holds the input value that tap (a, b, e) of channel c
    multiplies at output position p0 + j (flattened over OD, OH, OW), or 0
    in the padding.
    """
    cdef:
        Py_ssize_t OHW = g.OH * g.OW
        Py_ssize_t od0 = p0 // OHW
        Py_ssize_t oh0 = (p0 - od0 * OHW) // g.OW
        Py_ssize_t ow0 = p0 - od0 * OHW - oh0 * g.OW
        Py_ssize_t c, a, b, e, j, q, q0, q1, seg, od, oh, ow, i_d, i_h
        Py_ssize_t shift_d, shift_h, shift_w, lo, hi, sw = g.sw
        const floating *row
        floating *dst = cols
    if _is_pointwise(g):
        # each row a stretch of one input plane
        for c in range(g.Cg):
            memcpy(cols + c * ld, x + c * g.D * g.H * g.W + p0, nb * sizeof(floating))
        return
    for c in range(g.Cg):
        for a in range(g.FD):
            shift_d = a * g.dd - g.pd
            for b in range(g.FH):
                shift_h = b * g.dh - g.ph
                for e in range(g.FW):
                    shift_w = e * g.dw - g.pw
                    lo = g.wlo[e]
                    hi = g.whi[e]
                    od = od0
                    oh = oh0
                    ow = ow0
                    j = 0
                    while j < nb:
                        seg = _min(g.OW - ow, nb - j)
                        i_d = od * g.sd + shift_d
                        i_h = oh * g.sh + shift_h
                        if 0 <= i_d < g.D and 0 <= i_h < g.H:
                            row = x + ((c * g.D + i_d) * g.H + i_h) * g.W
                            q0 = _min(_max(ow, lo), ow + seg)
                            q1 = _max(q0, _min(ow + seg, hi))
                            for q in range(ow, q0):
                                dst[j + q - ow] = 0
                            if sw == 1:
                                for q in range(q0, q1):
                                    dst[j + q - ow] = row[q + shift_w]
                            else:
                                for q in range(q0, q1):
                                    dst[j + q - ow] = row[q * sw + shift_w]
                            for q in range(q1, ow + seg):
                                dst[j + q - ow] = 0
                        else:
                            for q in range(seg):
                                dst[j + q] = 0
                        j += seg
                        ow = 0
                        oh += 1
                        if oh == g.OH:
                            oh = 0
                            od += 1
                    dst += ld


cdef void _col2im(const floating *cols, floating *x, const Geom *g,
                  Py_ssize_t p0, Py_ssize_t nb, Py_ssize_t c0,
                  Py_ssize_t c1) noexcept nogil:
    """Add a column matrix back onto the input positions it was read from.

    The adjoint of :func:`_im2col` for channels [c0, c1) of one group:
    ``cols`` holds the rows of those channels only, and ``x`` points at the
    group's first channel.
    """
    cdef:
        Py_ssize_t OHW = g.OH * g.OW
        Py_ssize_t od0 = p0 // OHW
        Py_ssize_t oh0 = (p0 - od0 * OHW) // g.OW
        Py_ssize_t ow0 = p0 - od0 * OHW - oh0 * g.OW
        Py_ssize_t c, a, b, e, j, q, q0, q1, seg, od, oh, ow, i_d, i_h
        Py_ssize_t shift_d, shift_h, shift_w, lo, hi, sw = g.sw
        floating *row
        const floating *src = cols
    for c in range(c0, c1):
        for a in range(g.FD):
            shift_d = a * g.dd - g.pd
            for b in range(g.FH):
                shift_h = b * g.dh - g.ph
                for e in range(g.FW):
                    shift_w = e * g.dw - g.pw
                    lo = g.wlo[e]
                    hi = g.whi[e]
                    od = od0
                    oh = oh0
                    ow = ow0
                    j = 0
                    while j < nb:
                        seg = _min(g.OW - ow, nb - j)
                        i_d = od * g.sd + shift_d
                        i_h = oh * g.sh + shift_h
                        if 0 <= i_d < g.D and 0 <= i_h < g.H:
                            row = x + ((c * g.D + i_d) * g.H + i_h) * g.W
                            q0 = _min(_max(ow, lo), ow + seg)
                            q1 = _max(q0, _min(ow + seg, hi))
                            if sw == 1:
                                for q in range(q0, q1):
                                    row[q + shift_w] += src[j + q - ow]
                            else:
                                for q in range(q0, q1):
                                    row[q * sw + shift_w] += src[j + q - ow]
                        j += seg
                        ow = 0
                        oh += 1
                        if oh == g.OH:
                            oh = 0
                            od += 1
                    src += nb


# --- GEMM kernels ------------------------------------------------------------

cdef void _forward_task(const floating *x, const floating *w, const floating *bias,
                        floating *y, const Geom *g, Py_ssize_t task,
                        Py_ssize_t n_tiles, Py_ssize_t tile, Py_ssize_t n_kblocks,
                        Py_ssize_t kblock, floating *buf) noexcept nogil:
    # One (image, group, tile, output-channel block) block of
    # y = W_g @ cols (+ bias). Blocks of one tile each unroll it: the copy
    # is cheap next to the product, and the tasks stay independent.
    cdef:
        Py_ssize_t kb = task % n_kblocks
        Py_ssize_t t = (task // n_kblocks) % n_tiles
        Py_ssize_t ng = task // (n_kblocks * n_tiles)
        Py_ssize_t gi = ng % g.G
        Py_ssize_t n = ng // g.G
        Py_ssize_t P = g.OD * g.OH * g.OW
        Py_ssize_t R = g.Cg * g.FD * g.FH * g.FW
        Py_ssize_t p0 = t * tile
        Py_ssize_t cnt = _min(tile, P - p0)
        Py_ssize_t k0 = kb * kblock
        Py_ssize_t nk = _min(kblock, g.Kg - k0)
        Py_ssize_t k, j
        const floating *xg = x + (n * g.C + gi * g.Cg) * g.D * g.H * g.W
        const floating *cols
        floating *yt = y + (n * g.K + gi * g.Kg + k0) * P + p0
        floating bk
        int ld
    if _is_pointwise(g):
        cols = xg + p0
        ld = <int>P
    else:
        _im2col(xg, buf, g, p0, cnt, cnt)
        cols = buf
        ld = <int>cnt
    # Row-major y_t (nk x cnt, row stride P) = W_g[k0:k0+nk] (nk x R) @ cols (R x cnt).
    _gemm(c'N', c'N', <int>cnt, <int>nk, <int>R, 1, cols, ld,
          w + (gi * g.Kg + k0) * R, <int>R, 0, yt, <int>P)
    if bias != NULL:
        for k in range(nk):
            bk = bias[gi * g.Kg + k0 + k]
            for j in range(cnt):
                yt[k * P + j] += bk


def gemm_forward(const floating[:, :, :, :, ::1] x,    # IN  (N, C, D, H, W)
                 const floating[:, :, :, :, ::1] w,    # IN  (K, C/G, FD, FH, FW)
                 const floating[::1] bias,             # IN  (K,) or None
                 floating[:, :, :, :, ::1] y,          # OUT (N, K, OD, OH, OW)
                 tuple stride, tuple pad, tuple dilation, Py_ssize_t groups,
                 Py_ssize_t tile, Py_ssize_t kblock, int n_threads):
    """Forward pass by tiled im2col and one GEMM per (image, group, tile,
    block of ``kblock`` output channels)."""
    cdef:
        Geom g = _geometry(x.shape, w.shape, y.shape, stride, pad,
                           dilation, groups)
        Py_ssize_t[:, ::1] ranges = _column_ranges(&g)
        Py_ssize_t N = x.shape[0]
        Py_ssize_t P = g.OD * g.OH * g.OW
        Py_ssize_t R = g.Cg * g.FD * g.FH * g.FW
        Py_ssize_t n_tiles, n_kblocks, task, n_tasks
        const floating *bptr = NULL
        floating[:, ::1] buf
    tile = _min(tile, P)
    n_tiles = _ceil_div(P, tile)
    kblock = _max(1, _min(kblock, g.Kg))
    n_kblocks = _ceil_div(g.Kg, kblock)
    n_tasks = N * g.G * n_tiles * n_kblocks
    n_threads = <int>_max(1, _min(n_threads, n_tasks))   # no idle buffers
    with _Scratch() as scratch:
        buf = scratch.array((n_threads, 1 if _is_pointwise(&g) else R * tile),
                            np.float32 if floating is float else np.float64)
        if bias is not None:
            bptr = &bias[0]
        with nogil:
            for task in prange(n_tasks, num_threads=n_threads, schedule="dynamic"):
                _forward_task(&x[0, 0, 0, 0, 0], &w[0, 0, 0, 0, 0], bptr,
                              &y[0, 0, 0, 0, 0], &g, task, n_tiles, tile, n_kblocks,
                              kblock, &buf[omp_get_thread_num(), 0])


def gemm_forward_shared(const floating[:, :, :, :, ::1] x,    # IN  (N, C, D, H, W)
                        const floating[:, :, :, :, ::1] w,    # IN  (K, C/G, FD, FH, FW)
                        const floating[::1] bias,             # IN  (K,) or None
                        floating[:, :, :, :, ::1] y,          # OUT (N, K, OD, OH, OW)
                        tuple stride, tuple pad, tuple dilation, Py_ssize_t groups,
                        Py_ssize_t tile, Py_ssize_t kblock, int n_threads):
    """Forward pass for few (image, group, tile) units, each shared by all
    threads: its column matrix unrolled once, the threads taking blocks of
    input channels, then the product split into blocks of ``kblock`` output
    channels (where one task per unit would leave threads idle, and one
    task per unit and channel block would unroll each unit once per
    block)."""
    cdef:
        Geom g = _geometry(x.shape, w.shape, y.shape, stride, pad,
                           dilation, groups)
        Geom sub
        Py_ssize_t[:, ::1] ranges = _column_ranges(&g)
        Py_ssize_t N = x.shape[0]
        Py_ssize_t P = g.OD * g.OH * g.OW
        Py_ssize_t FF = g.FD * g.FH * g.FW
        Py_ssize_t R = g.Cg * FF
        Py_ssize_t plane = g.D * g.H * g.W
        Py_ssize_t n_tiles, n_kblocks, n_cblocks, cblock, unit, t, n, gi, p0, cnt
        Py_ssize_t task, c0, k0, nk, k, j
        const floating *xg
        floating *cols
        floating *yt
        floating bk
        const floating *bptr = NULL
        floating[::1] buf
    if bias is not None:
        bptr = &bias[0]
    tile = _min(tile, P)
    n_tiles = _ceil_div(P, tile)
    kblock = _max(1, _min(kblock, g.Kg))
    n_kblocks = _ceil_div(g.Kg, kblock)
    cblock = _max(1, _ceil_div(g.Cg, 2 * n_threads))
    n_cblocks = _ceil_div(g.Cg, cblock)
    with _Scratch() as scratch:
        buf = scratch.array((R * tile,), np.float32 if floating is float else np.float64)
        cols = &buf[0]
        for unit in range(N * g.G * n_tiles):
            t = unit % n_tiles
            gi = (unit // n_tiles) % g.G
            n = unit // (n_tiles * g.G)
            p0 = t * tile
            cnt = _min(tile, P - p0)
            xg = &x[0, 0, 0, 0, 0] + (n * g.C + gi * g.Cg) * plane
            yt = &y[0, 0, 0, 0, 0] + (n * g.K + gi * g.Kg) * P + p0
            with nogil:
                for task in prange(n_cblocks, num_threads=n_threads, schedule="static"):
                    sub = g
                    c0 = task * cblock
                    sub.Cg = _min(cblock, g.Cg - c0)
                    _im2col(xg + c0 * plane, cols + c0 * FF * cnt, &sub, p0, cnt, cnt)
                for task in prange(n_kblocks, num_threads=n_threads, schedule="static"):
                    k0 = task * kblock
                    nk = _min(kblock, g.Kg - k0)
                    _gemm(c'N', c'N', <int>cnt, <int>nk, <int>R, 1, cols, <int>cnt,
                          &w[0, 0, 0, 0, 0] + (gi * g.Kg + k0) * R, <int>R, 0,
                          yt + k0 * P, <int>P)
                    if bptr != NULL:
                        for k in range(k0, k0 + nk):
                            bk = bptr[gi * g.Kg + k]
                            for j in range(cnt):
                                yt[k * P + j] += bk


cdef void _forward_images_task(const floating *x, const floating *w,
                               const floating *bias, floating *y, const Geom *g,
                               Py_ssize_t task, Py_ssize_t N, Py_ssize_t images,
                               Py_ssize_t n_kblocks, Py_ssize_t kblock,
                               floating *cols, floating *out) noexcept nogil:
    # Outputs of `images` images together, one group, one block of output
    # channels: the images' windows side by side in one column matrix
    # (R x images*P), one product, and the result scattered to the images.
    # For small maps, where one image's product would be too narrow for
    # BLAS to run near its peak, and the weights would be read per image.
    cdef:
        Py_ssize_t kb = task % n_kblocks
        Py_ssize_t gi = (task // n_kblocks) % g.G
        Py_ssize_t n0 = (task // (n_kblocks * g.G)) * images
        Py_ssize_t ni = _min(images, N - n0)
        Py_ssize_t P = g.OD * g.OH * g.OW
        Py_ssize_t R = g.Cg * g.FD * g.FH * g.FW
        Py_ssize_t T = ni * P
        Py_ssize_t k0 = kb * kblock
        Py_ssize_t nk = _min(kblock, g.Kg - k0)
        Py_ssize_t j, k, q
        floating bk
        const floating *o
        floating *yk
    for j in range(ni):
        _im2col(x + ((n0 + j) * g.C + gi * g.Cg) * g.D * g.H * g.W, cols + j * P, g, 0, P, T)
    # Row-major out (nk x T) = W_g[k0:k0+nk] (nk x R) @ cols (R x T).
    _gemm(c'N', c'N', <int>T, <int>nk, <int>R, 1, cols, <int>T,
          w + (gi * g.Kg + k0) * R, <int>R, 0, out, <int>T)
    for j in range(ni):
        for k in range(nk):
            bk = bias[gi * g.Kg + k0 + k] if bias != NULL else 0
            o = out + k * T + j * P
            yk = y + ((n0 + j) * g.K + gi * g.Kg + k0 + k) * P
            for q in range(P):
                yk[q] = o[q] + bk


def gemm_forward_images(const floating[:, :, :, :, ::1] x,    # IN  (N, C, D, H, W)
                        const floating[:, :, :, :, ::1] w,    # IN  (K, C/G, FD, FH, FW)
                        const floating[::1] bias,             # IN  (K,) or None
                        floating[:, :, :, :, ::1] y,          # OUT (N, K, OD, OH, OW)
                        tuple stride, tuple pad, tuple dilation, Py_ssize_t groups,
                        Py_ssize_t images, Py_ssize_t kblock, int n_threads):
    """Forward pass by im2col of ``images`` images at a time and one GEMM
    per (image block, group, block of ``kblock`` output channels)."""
    cdef:
        Geom g = _geometry(x.shape, w.shape, y.shape, stride, pad,
                           dilation, groups)
        Py_ssize_t[:, ::1] ranges = _column_ranges(&g)
        Py_ssize_t N = x.shape[0]
        Py_ssize_t P = g.OD * g.OH * g.OW
        Py_ssize_t R = g.Cg * g.FD * g.FH * g.FW
        Py_ssize_t n_kblocks, task, n_tasks, tid
        const floating *bptr = NULL
        floating[:, ::1] cols, out
    images = _max(1, _min(images, N))
    kblock = _max(1, _min(kblock, g.Kg))
    n_kblocks = _ceil_div(g.Kg, kblock)
    n_tasks = _ceil_div(N, images) * g.G * n_kblocks
    n_threads = <int>_max(1, _min(n_threads, n_tasks))   # no idle buffers
    dtype = np.float32 if floating is float else np.float64
    with _Scratch() as scratch:
        cols = scratch.array((n_threads, R * images * P), dtype)
        out = scratch.array((n_threads, kblock * images * P), dtype)
        if bias is not None:
            bptr = &bias[0]
        with nogil:
            for task in prange(n_tasks, num_threads=n_threads, schedule="dynamic"):
                tid = omp_get_thread_num()
                _forward_images_task(&x[0, 0, 0, 0, 0], &w[0, 0, 0, 0, 0], bptr,
                                     &y[0, 0, 0, 0, 0], &g, task, N, images, n_kblocks,
                                     kblock, &cols[tid, 0], &out[tid, 0])


cdef void _weight_grad_task(const floating *x, const floating *dy, floating *dw,
                            const Geom *g, Py_ssize_t task, Py_ssize_t n_tiles,
                            Py_ssize_t tile, floating *buf) noexcept nogil:
    # dW_g (Kg x R) += dy_t (Kg x cnt) @ cols^T (cnt x R) for one tile.
    cdef:
        Py_ssize_t t = task % n_tiles
        Py_ssize_t ng = task // n_tiles
        Py_ssize_t gi = ng % g.G
        Py_ssize_t n = ng // g.G
        Py_ssize_t P = g.OD * g.OH * g.OW
        Py_ssize_t R = g.Cg * g.FD * g.FH * g.FW
        Py_ssize_t p0 = t * tile
        Py_ssize_t cnt = _min(tile, P - p0)
        const floating *xg = x + (n * g.C + gi * g.Cg) * g.D * g.H * g.W
        const floating *cols
        int ld
    if _is_pointwise(g):
        cols = xg + p0
        ld = <int>P
    else:
        _im2col(xg, buf, g, p0, cnt, cnt)
        cols = buf
        ld = <int>cnt
    _gemm(c'T', c'N', <int>R, <int>g.Kg, <int>cnt, 1, cols, ld,
          dy + (n * g.K + gi * g.Kg) * P + p0, <int>P, 1, dw + gi * g.Kg * R, <int>R)


def gemm_weight_grad(const floating[:, :, :, :, ::1] x,    # IN  (N, C, D, H, W)
                     const floating[:, :, :, :, ::1] dy,   # IN  (N, K, OD, OH, OW)
                     floating[:, :, :, :, ::1] dw,         # OUT (K, C/G, FD, FH, FW)
                     tuple stride, tuple pad, tuple dilation, Py_ssize_t groups,
                     Py_ssize_t tile, int n_threads):
    """Weight gradient: sum over images and tiles of dy_t @ cols_t^T.

    Each thread accumulates into a private copy of the gradient (BLAS with
    beta = 1); the copies are summed at the end. Tasks are split statically,
    so that a given thread count always sums in the same order.
    """
    cdef:
        Geom g = _geometry(x.shape, dw.shape, dy.shape, stride, pad,
                           dilation, groups)
        Py_ssize_t[:, ::1] ranges = _column_ranges(&g)
        Py_ssize_t N = x.shape[0]
        Py_ssize_t P = g.OD * g.OH * g.OW
        Py_ssize_t R = g.Cg * g.FD * g.FH * g.FW
        Py_ssize_t n_tiles, task, n_tasks, i, t, size = g.K * R
        floating[:, ::1] buf, acc
        floating *out = &dw[0, 0, 0, 0, 0]
    tile = _min(tile, P)
    n_tiles = _ceil_div(P, tile)
    n_tasks = N * g.G * n_tiles
    dtype = np.float32 if floating is float else np.float64
    n_threads = <int>_max(1, _min(n_threads, n_tasks))   # no idle buffers
    with _Scratch() as scratch:
        buf = scratch.array((n_threads, 1 if _is_pointwise(&g) else R * tile), dtype=dtype)
        acc = scratch.array((n_threads, size), dtype)
        acc[:, :] = 0
        with nogil:
            for task in prange(n_tasks, num_threads=n_threads, schedule="static"):
                _weight_grad_task(&x[0, 0, 0, 0, 0], &dy[0, 0, 0, 0, 0], &acc[omp_get_thread_num(), 0],
                                  &g, task, n_tiles, tile, &buf[omp_get_thread_num(), 0])
            for i in prange(size, num_threads=n_threads, schedule="static"):
                out[i] = 0
                for t in range(n_threads):
                    out[i] += acc[t, i]


cdef void _weight_grad_cblock_task(const floating *x, const floating *dy,
                                   floating *dw, const Geom *g, Py_ssize_t task,
                                   Py_ssize_t n_cblocks, Py_ssize_t cblock,
                                   Py_ssize_t N, Py_ssize_t tile, Py_ssize_t images,
                                   floating *buf, floating *dybuf) noexcept nogil:
    # The columns of dW_g that belong to input channels [c0, c1) of one
    # group, summed over every image and tile: dW_g[:, c0 FF:c1 FF] =
    # sum dy_t @ cols_t^T, with cols_t unrolled for those channels only.
    # Each task owns its part of dW: no private copies, no reduction. With
    # images > 1 (small maps, tile = P), the columns and gradients of that
    # many images go side by side, so that each product sums over
    # images * P positions instead of P.
    cdef:
        Py_ssize_t cb = task % n_cblocks
        Py_ssize_t gi = task // n_cblocks
        Py_ssize_t P = g.OD * g.OH * g.OW
        Py_ssize_t FF = g.FD * g.FH * g.FW
        Py_ssize_t R = g.Cg * FF
        Py_ssize_t c0 = cb * cblock
        Py_ssize_t plane = g.D * g.H * g.W
        Py_ssize_t n, p0, cnt, j, k, q, ni, T
        Geom sub = g[0]
        const floating *xg
        const floating *cols
        const floating *src
        floating beta = 0
        int ld
    sub.Cg = _min(cblock, g.Cg - c0)
    if images > 1:
        n = 0
        while n < N:
            ni = _min(images, N - n)
            T = ni * P
            for j in range(ni):
                _im2col(x + ((n + j) * g.C + gi * g.Cg + c0) * plane, buf + j * P, &sub,
                        0, P, T)
                for k in range(g.Kg):
                    src = dy + ((n + j) * g.K + gi * g.Kg + k) * P
                    for q in range(P):
                        dybuf[k * T + j * P + q] = src[q]
            _gemm(c'T', c'N', <int>(sub.Cg * FF), <int>g.Kg, <int>T, 1, buf, <int>T,
                  dybuf, <int>T, beta, dw + gi * g.Kg * R + c0 * FF, <int>R)
            beta = 1
            n += ni
        return
    for n in range(N):
        xg = x + (n * g.C + gi * g.Cg + c0) * plane
        p0 = 0
        while p0 < P:
            cnt = _min(tile, P - p0)
            if _is_pointwise(g):
                cols = xg + p0
                ld = <int>P
            else:
                _im2col(xg, buf, &sub, p0, cnt, cnt)
                cols = buf
                ld = <int>cnt
            _gemm(c'T', c'N', <int>(sub.Cg * FF), <int>g.Kg, <int>cnt, 1, cols, ld,
                  dy + (n * g.K + gi * g.Kg) * P + p0, <int>P, beta,
                  dw + gi * g.Kg * R + c0 * FF, <int>R)
            beta = 1
            p0 += cnt


def gemm_weight_grad_cblocks(const floating[:, :, :, :, ::1] x,    # IN  (N, C, D, H, W)
                             const floating[:, :, :, :, ::1] dy,   # IN  (N, K, OD, OH, OW)
                             floating[:, :, :, :, ::1] dw,         # OUT (K, C/G, FD, FH, FW)
                             tuple stride, tuple pad, tuple dilation,
                             Py_ssize_t groups, Py_ssize_t cblock, Py_ssize_t tile,
                             Py_ssize_t images, int n_threads):
    """Weight gradient with tasks over (group, block of ``cblock`` input
    channels), each summing over every image (``images`` at a time when
    more than one): the split for few images, where one task per image
    would leave threads idle, and for small maps. Every value of dW is
    summed in one order whatever the thread count."""
    cdef:
        Geom g = _geometry(x.shape, dw.shape, dy.shape, stride, pad,
                           dilation, groups)
        Py_ssize_t[:, ::1] ranges = _column_ranges(&g)
        Py_ssize_t N = x.shape[0]
        Py_ssize_t P = g.OD * g.OH * g.OW
        Py_ssize_t FF = g.FD * g.FH * g.FW
        Py_ssize_t n_cblocks, task, n_tasks, tid, width
        floating[:, ::1] buf, dybuf
    cblock = _max(1, _min(cblock, g.Cg))
    tile = _min(tile, P)
    images = _max(1, _min(images, N))
    n_cblocks = _ceil_div(g.Cg, cblock)
    n_tasks = g.G * n_cblocks
    n_threads = <int>_max(1, _min(n_threads, n_tasks))   # no idle buffers
    dtype = np.float32 if floating is float else np.float64
    width = images * P if images > 1 else (1 if _is_pointwise(&g) else tile)
    with _Scratch() as scratch:
        buf = scratch.array((n_threads, cblock * FF * width), dtype)
        dybuf = scratch.array((n_threads, g.Kg * images * P if images > 1 else 1), dtype)
        with nogil:
            for task in prange(n_tasks, num_threads=n_threads, schedule="dynamic"):
                tid = omp_get_thread_num()
                _weight_grad_cblock_task(&x[0, 0, 0, 0, 0], &dy[0, 0, 0, 0, 0],
                                         &dw[0, 0, 0, 0, 0], &g, task, n_cblocks, cblock,
                                         N, tile, images, &buf[tid, 0], &dybuf[tid, 0])


cdef void _input_grad_task(const floating *dy, const floating *w, floating *dx,
                           const Geom *g, Py_ssize_t task, Py_ssize_t n_cblocks,
                           Py_ssize_t cblock, Py_ssize_t tile,
                           floating *buf) noexcept nogil:
    # dx of channels [c0, c1) of one (image, group): for every tile,
    # cols = W_g[:, c0:c1]^T @ dy_t, added back by col2im. Channel blocks
    # write disjoint parts of dx, so tasks never race.
    cdef:
        Py_ssize_t cb = task % n_cblocks
        Py_ssize_t ng = task // n_cblocks
        Py_ssize_t gi = ng % g.G
        Py_ssize_t n = ng // g.G
        Py_ssize_t P = g.OD * g.OH * g.OW
        Py_ssize_t FF = g.FD * g.FH * g.FW
        Py_ssize_t R = g.Cg * FF
        Py_ssize_t c0 = cb * cblock
        Py_ssize_t c1 = _min(c0 + cblock, g.Cg)
        Py_ssize_t plane = g.D * g.H * g.W
        Py_ssize_t p0, cnt
        floating *dxg = dx + (n * g.C + gi * g.Cg) * plane
        const floating *dyg = dy + (n * g.K + gi * g.Kg) * P
    memset(dxg + c0 * plane, 0, (c1 - c0) * plane * sizeof(floating))
    p0 = 0
    while p0 < P:
        cnt = _min(tile, P - p0)
        # Row-major cols ((c1-c0)*FF x cnt) = W_g[:, c0:c1]^T @ dy_t.
        _gemm(c'N', c'T', <int>cnt, <int>((c1 - c0) * FF), <int>g.Kg, 1,
              dyg + p0, <int>P, w + gi * g.Kg * R + c0 * FF, <int>R, 0, buf, <int>cnt)
        _col2im(buf, dxg, g, p0, cnt, c0, c1)
        p0 += cnt


def gemm_input_grad(const floating[:, :, :, :, ::1] dy,   # IN  (N, K, OD, OH, OW)
                    const floating[:, :, :, :, ::1] w,    # IN  (K, C/G, FD, FH, FW)
                    floating[:, :, :, :, ::1] dx,         # OUT (N, C, D, H, W)
                    tuple stride, tuple pad, tuple dilation, Py_ssize_t groups,
                    Py_ssize_t cblock, Py_ssize_t tile, int n_threads):
    """Input gradient by GEMM and col2im (any stride), tasks over (image,
    group, block of ``cblock`` input channels)."""
    cdef:
        Geom g = _geometry(dx.shape, w.shape, dy.shape, stride, pad,
                           dilation, groups)
        Py_ssize_t[:, ::1] ranges = _column_ranges(&g)
        Py_ssize_t N = dx.shape[0]
        Py_ssize_t P = g.OD * g.OH * g.OW
        Py_ssize_t FF = g.FD * g.FH * g.FW
        Py_ssize_t n_cblocks, task, n_tasks
        floating[:, ::1] buf
    cblock = _max(1, _min(cblock, g.Cg))
    tile = _min(tile, P)
    n_cblocks = _ceil_div(g.Cg, cblock)
    n_tasks = N * g.G * n_cblocks
    n_threads = <int>_max(1, _min(n_threads, n_tasks))   # no idle buffers
    with _Scratch() as scratch:
        buf = scratch.array((n_threads, cblock * FF * tile),
                            np.float32 if floating is float else np.float64)
        with nogil:
            for task in prange(n_tasks, num_threads=n_threads, schedule="dynamic"):
                _input_grad_task(&dy[0, 0, 0, 0, 0], &w[0, 0, 0, 0, 0], &dx[0, 0, 0, 0, 0],
                                 &g, task, n_cblocks, cblock, tile, &buf[omp_get_thread_num(), 0])


# --- direct kernels ----------------------------------------------------------

cdef void _direct_forward_plane(const floating *x, const floating *w, floating bias,
                                floating *y, const Geom *g) noexcept nogil:
    # One output plane: x at the group's first channel, w at the output
    # channel's filter (Cg, FD, FH, FW), y at the plane (OD, OH, OW).
    cdef:
        Py_ssize_t c, a, b, e, od, oh, ow, i_d, i_h, lo, hi, shift
        Py_ssize_t sw = g.sw
        const floating *row
        floating *out
        floating wv
    for od in range(g.OD):
        for oh in range(g.OH):
            out = y + (od * g.OH + oh) * g.OW
            for ow in range(g.OW):
                out[ow] = bias
            for c in range(g.Cg):
                for a in range(g.FD):
                    i_d = od * g.sd + a * g.dd - g.pd
                    if i_d < 0 or i_d >= g.D:
                        continue
                    for b in range(g.FH):
                        i_h = oh * g.sh + b * g.dh - g.ph
                        if i_h < 0 or i_h >= g.H:
                            continue
                        row = x + ((c * g.D + i_d) * g.H + i_h) * g.W
                        for e in range(g.FW):
                            wv = w[((c * g.FD + a) * g.FH + b) * g.FW + e]
                            shift = e * g.dw - g.pw
                            lo = g.wlo[e]
                            hi = g.whi[e]
                            if sw == 1:
                                for ow in range(lo, hi):
                                    out[ow] += wv * row[ow + shift]
                            else:
                                for ow in range(lo, hi):
                                    out[ow] += wv * row[ow * sw + shift]


def direct_forward(const floating[:, :, :, :, ::1] x,    # IN  (N, C, D, H, W)
                   const floating[:, :, :, :, ::1] w,    # IN  (K, C/G, FD, FH, FW)
                   const floating[::1] bias,             # IN  (K,) or None
                   floating[:, :, :, :, ::1] y,          # OUT (N, K, OD, OH, OW)
                   tuple stride, tuple pad, tuple dilation, Py_ssize_t groups,
                   int n_threads):
    """Forward pass by direct loops, one task per output plane (n, k)."""
    cdef:
        Geom g = _geometry(x.shape, w.shape, y.shape, stride, pad,
                           dilation, groups)
        Py_ssize_t[:, ::1] ranges = _column_ranges(&g)
        Py_ssize_t N = x.shape[0]
        Py_ssize_t task, n, k
        bint has_bias = bias is not None
    with nogil:
        for task in prange(N * g.K, num_threads=n_threads, schedule="dynamic"):
            n = task // g.K
            k = task % g.K
            _direct_forward_plane(&x[n, (k // g.Kg) * g.Cg, 0, 0, 0], &w[k, 0, 0, 0, 0],
                                  bias[k] if has_bias else 0, &y[n, k, 0, 0, 0], &g)


cdef void _direct_input_grad_plane(const floating *dy, const floating *w,
                                   floating *dx, Py_ssize_t cl,
                                   const Geom *g) noexcept nogil:
    # dx plane of input channel cl of a group: scatter every output gradient
    # of the group's Kg channels back through the taps that read it. dy and w
    # point at the group's first output channel.
    cdef:
        Py_ssize_t kk, a, b, e, od, oh, ow, i_d, i_h, lo, hi, shift
        Py_ssize_t sw = g.sw, P = g.OD * g.OH * g.OW
        Py_ssize_t R = g.Cg * g.FD * g.FH * g.FW
        const floating *grow
        floating *row
        floating wv
    memset(dx, 0, g.D * g.H * g.W * sizeof(floating))
    for kk in range(g.Kg):
        for od in range(g.OD):
            for oh in range(g.OH):
                grow = dy + kk * P + (od * g.OH + oh) * g.OW
                for a in range(g.FD):
                    i_d = od * g.sd + a * g.dd - g.pd
                    if i_d < 0 or i_d >= g.D:
                        continue
                    for b in range(g.FH):
                        i_h = oh * g.sh + b * g.dh - g.ph
                        if i_h < 0 or i_h >= g.H:
                            continue
                        row = dx + (i_d * g.H + i_h) * g.W
                        for e in range(g.FW):
                            wv = w[kk * R + ((cl * g.FD + a) * g.FH + b) * g.FW + e]
                            shift = e * g.dw - g.pw
                            lo = g.wlo[e]
                            hi = g.whi[e]
                            if sw == 1:
                                for ow in range(lo, hi):
                                    row[ow + shift] += wv * grow[ow]
                            else:
                                for ow in range(lo, hi):
                                    row[ow * sw + shift] += wv * grow[ow]


def direct_input_grad(const floating[:, :, :, :, ::1] dy,   # IN  (N, K, OD, OH, OW)
                      const floating[:, :, :, :, ::1] w,    # IN  (K, C/G, FD, FH, FW)
                      floating[:, :, :, :, ::1] dx,         # OUT (N, C, D, H, W)
                      tuple stride, tuple pad, tuple dilation, Py_ssize_t groups,
                      int n_threads):
    """Input gradient by direct loops, one task per input plane (n, c)."""
    cdef:
        Geom g = _geometry(dx.shape, w.shape, dy.shape, stride, pad,
                           dilation, groups)
        Py_ssize_t[:, ::1] ranges = _column_ranges(&g)
        Py_ssize_t N = dx.shape[0]
        Py_ssize_t task, n, c, gi
    with nogil:
        for task in prange(N * g.C, num_threads=n_threads, schedule="dynamic"):
            n = task // g.C
            c = task % g.C
            gi = c // g.Cg
            _direct_input_grad_plane(&dy[n, gi * g.Kg, 0, 0, 0], &w[gi * g.Kg, 0, 0, 0, 0],
                                     &dx[n, c, 0, 0, 0], c - gi * g.Cg, &g)


cdef void _direct_weight_grad_filter(const floating *x, const floating *dy,
                                     floating *dw, Py_ssize_t N, const Geom *g,
                                     floating *tmp, double *acc) noexcept nogil:
    # Gradient of one filter slice w[k, c] (FD*FH*FW taps): x points at input
    # channel c of image 0, dy at output channel k of image 0. Products are
    # gathered per tap and output column in tmp (an elementwise update that
    # vectorises), and each image's sums are added into acc in double.
    cdef:
        Py_ssize_t n, a, b, e, od, oh, ow, i_d, i_h, lo, hi, shift, tap
        Py_ssize_t sw = g.sw, P = g.OD * g.OH * g.OW
        Py_ssize_t FF = g.FD * g.FH * g.FW
        Py_ssize_t x_image = g.C * g.D * g.H * g.W, y_image = g.K * P
        const floating *grow
        const floating *row
        floating *t
        double s
    for tap in range(FF):
        acc[tap] = 0
    for n in range(N):
        memset(tmp, 0, FF * g.OW * sizeof(floating))
        for od in range(g.OD):
            for oh in range(g.OH):
                grow = dy + n * y_image + (od * g.OH + oh) * g.OW
                for a in range(g.FD):
                    i_d = od * g.sd + a * g.dd - g.pd
                    if i_d < 0 or i_d >= g.D:
                        continue
                    for b in range(g.FH):
                        i_h = oh * g.sh + b * g.dh - g.ph
                        if i_h < 0 or i_h >= g.H:
                            continue
                        row = x + n * x_image + (i_d * g.H + i_h) * g.W
                        for e in range(g.FW):
                            t = tmp + ((a * g.FH + b) * g.FW + e) * g.OW
                            shift = e * g.dw - g.pw
                            lo = g.wlo[e]
                            hi = g.whi[e]
                            if sw == 1:
                                for ow in range(lo, hi):
                                    t[ow] += grow[ow] * row[ow + shift]
                            else:
                                for ow in range(lo, hi):
                                    t[ow] += grow[ow] * row[ow * sw + shift]
        for tap in range(FF):
            s = 0
            for ow in range(g.OW):
                s += tmp[tap * g.OW + ow]
            acc[tap] += s
    for tap in range(FF):
        dw[tap] = <floating>acc[tap]


def direct_weight_grad(const floating[:, :, :, :, ::1] x,    # IN  (N, C, D, H, W)
                       const floating[:, :, :, :, ::1] dy,   # IN  (N, K, OD, OH, OW)
                       floating[:, :, :, :, ::1] dw,         # OUT (K, C/G, FD, FH, FW)
                       tuple stride, tuple pad, tuple dilation, Py_ssize_t groups,
                       int n_threads):
    """Weight gradient by direct loops, one task per filter slice (k, c)."""
    cdef:
        Geom g = _geometry(x.shape, dw.shape, dy.shape, stride, pad,
                           dilation, groups)
        Py_ssize_t[:, ::1] ranges = _column_ranges(&g)
        Py_ssize_t N = x.shape[0]
        Py_ssize_t FF = g.FD * g.FH * g.FW
        Py_ssize_t task, k, cl, tid
        floating[:, ::1] tmp
        double[:, ::1] acc
    n_threads = <int>_max(1, _min(n_threads, g.K * g.Cg))   # no idle buffers
    with _Scratch() as scratch:
        tmp = scratch.array((n_threads, FF * g.OW),
                            np.float32 if floating is float else np.float64)
        acc = scratch.array((n_threads, FF), dtype=np.float64)
        with nogil:
            for task in prange(g.K * g.Cg, num_threads=n_threads, schedule="dynamic"):
                k = task // g.Cg
                cl = task % g.Cg
                tid = omp_get_thread_num()
                _direct_weight_grad_filter(&x[0, (k // g.Kg) * g.Cg + cl, 0, 0, 0],
                                           &dy[0, k, 0, 0, 0], &dw[k, cl, 0, 0, 0],
                                           N, &g, &tmp[tid, 0], &acc[tid, 0])


# --- bias --------------------------------------------------------------------

cdef double _sum(const floating *v, Py_ssize_t n) noexcept nogil:
    # Sum in double with eight partial sums (independent adds pipeline).
    cdef:
        double part[8]
        Py_ssize_t i, l, n8 = n - n % 8
    for l in range(8):
        part[l] = 0
    for i in range(0, n8, 8):
        for l in range(8):
            part[l] += v[i + l]
    for i in range(n8, n):
        part[0] += v[i]
    return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]))


def bias_grad(const floating[:, :, ::1] dy,    # IN  (N, K, P)
              floating[::1] db,                # OUT (K,)
              int n_threads):
    """db[k] = sum over images and positions of dy[n, k, p] (in double)."""
    cdef:
        Py_ssize_t N = dy.shape[0], K = dy.shape[1], P = dy.shape[2]
        Py_ssize_t k, n
        double s
    with nogil:
        for k in prange(K, num_threads=n_threads, schedule="static"):
            s = 0
            for n in range(N):
                s = s + _sum(&dy[n, k, 0], P)
            db[k] = <floating>s


# --- the input gradient's weight ----------------------------------------------

cdef enum:
    TRANSPOSE_BLOCK = 32    # channels a side of the blocks of the transpose


def rotated_transpose(const floating[:, :, :, ::1] w,    # IN  (G, Kg, Cg, FF)
                      floating[:, :, :, ::1] out,        # OUT (G, Cg, Kg, FF)
                      int n_threads):
    """out[g, c, k, FF - 1 - t] = w[g, k, c, t]: per group, the kernel
    rotated by 180 degrees with its channel axes swapped. Blocks of
    TRANSPOSE_BLOCK x TRANSPOSE_BLOCK channel pairs keep both sides in
    cache (a plain strided copy of a large weight runs far below memory
    speed)."""
    cdef:
        Py_ssize_t G = w.shape[0], Kg = w.shape[1], Cg = w.shape[2], FF = w.shape[3]
        Py_ssize_t nk = (Kg + TRANSPOSE_BLOCK - 1) // TRANSPOSE_BLOCK
        Py_ssize_t nc = (Cg + TRANSPOSE_BLOCK - 1) // TRANSPOSE_BLOCK
        Py_ssize_t block, g, k0, c0, k, c, t
    n_threads = <int>_max(1, _min(n_threads, G * nk * nc))
    with nogil:
        for block in prange(G * nk * nc, num_threads=n_threads, schedule="static"):
            g = block // (nk * nc)
            k0 = (block // nc) % nk * TRANSPOSE_BLOCK
            c0 = block % nc * TRANSPOSE_BLOCK
            for c in range(c0, _min(Cg, c0 + TRANSPOSE_BLOCK)):
                for k in range(k0, _min(Kg, k0 + TRANSPOSE_BLOCK)):
                    for t in range(FF):
                        out[g, c, k, FF - 1 - t] = w[g, k, c, t]


# --- non-finite values ---------------------------------------------------------

ctypedef fused float_bits:
    uint32_t
    uint64_t


cdef enum:
    FINITE_CHUNK = 4096    # values per task of the non-finite scan


def count_nonfinite_chunks(const float_bits[::1] bits,    # IN  float32/64 bits
                           int n_threads):
    """Number of chunks of FINITE_CHUNK values that hold an inf or a NaN,
    given the values' bit patterns (an inf or NaN has every exponent bit
    set). The masks, compares and ORs vectorise: the scan runs at memory
    speed."""
    cdef:
        Py_ssize_t n = bits.shape[0], n_chunks = (n + FINITE_CHUNK - 1) // FINITE_CHUNK
        Py_ssize_t chunk, i, lo, hi, found = 0
        float_bits mask
        int hit
    if float_bits is uint32_t:
        mask = 0x7f800000u
    else:
        mask = 0x7ff0000000000000u
    with nogil:
        for chunk in prange(n_chunks, num_threads=n_threads, schedule="static"):
            lo = chunk * FINITE_CHUNK
            hi = _min(n, lo + FINITE_CHUNK)
            hit = 0
            for i in range(lo, hi):
                hit = hit | ((bits[i] & mask) == mask)
            found += hit
    return found


# --- direct kernels over padded planes ---------------------------------------
#
# Output (od, oh, ow) and tap (a, b, e) read the padded input at
# (od sd + a dd, oh sh + b dh, ow sw + e dw). The padded volume is stored
# split by stride phase: padded index z along an axis with stride s goes to
# phase z % s at position z // s, each phase a block of Dq x Hq x Wq
# (Dq = ceil(Dp / sd), ...). Tap (a, b, e) then reads phase
# (a dd % sd, b dh % sh, e dw % sw) at (od + a dd // sd, oh + b dh // sh,
# ow + e dw // sw): for every stride, each tap is one contiguous
# multiply-add over the whole "extended" output, whose rows also hold
# Wq - OW junk columns that are dropped at the end:
#
#     ext[q] += w[a, b, e] * xp[off(a, b, e) + q],   q = (od Hq + oh) Wq + ow.
#
# Long unit-stride loops instead of one short loop per output row and tap;
# with unit stride there is one phase and no copy beyond the padding.

cdef struct Ext:
    Py_ssize_t Dq, Hq, Wq    # extent of one stride phase of the padded volume
    Py_ssize_t Pq            # volume of one phase
    Py_ssize_t Pp            # all phases, plus slack for the last taps
    Py_ssize_t L             # extended output length


cdef Ext _ext_layout(const Geom *g) noexcept nogil:
    cdef Ext s
    s.Dq = _ceil_div((g.OD - 1) * g.sd + (g.FD - 1) * g.dd + 1, g.sd)
    s.Hq = _ceil_div((g.OH - 1) * g.sh + (g.FH - 1) * g.dh + 1, g.sh)
    s.Wq = _ceil_div((g.OW - 1) * g.sw + (g.FW - 1) * g.dw + 1, g.sw)
    s.Pq = s.Dq * s.Hq * s.Wq
    s.Pp = g.sd * g.sh * g.sw * s.Pq + ((g.FW - 1) * g.dw) // g.sw
    s.L = ((g.OD - 1) * s.Hq + g.OH) * s.Wq
    return s


cdef void _pad_volume(const floating *x, floating *xp, const Geom *g,
                      const Ext *s) noexcept nogil:
    # Phase (rd, rh, rw), position (zd, zh, zw) of xp holds
    # x[zd sd + rd - pd, zh sh + rh - ph, zw sw + rw - pw], zero outside x.
    cdef:
        Py_ssize_t rd, rh, rw, zd, zh, j, j_lo, j_hi, i_d, i_h, shift
        const floating *src
        floating *dst
    memset(xp, 0, s.Pp * sizeof(floating))
    for rd in range(g.sd):
        for zd in range(s.Dq):
            i_d = zd * g.sd + rd - g.pd
            if i_d < 0 or i_d >= g.D:
                continue
            for rh in range(g.sh):
                for zh in range(s.Hq):
                    i_h = zh * g.sh + rh - g.ph
                    if i_h < 0 or i_h >= g.H:
                        continue
                    src = x + (i_d * g.H + i_h) * g.W
                    for rw in range(g.sw):
                        # positions j read column j sw + shift inside [0, W)
                        shift = rw - g.pw
                        _valid_range(g.W, s.Wq, g.sw, shift, &j_lo, &j_hi)
                        dst = xp + ((rd * g.sh + rh) * g.sw + rw) * s.Pq \
                            + (zd * s.Hq + zh) * s.Wq
                        if g.sw == 1:
                            for j in range(j_lo, j_hi):
                                dst[j] = src[j + shift]
                        else:
                            for j in range(j_lo, j_hi):
                                dst[j] = src[j * g.sw + shift]


cdef inline void _taps(floating *ext, const floating *src, const Py_ssize_t *off,
                       const floating *w, Py_ssize_t n, Py_ssize_t L) noexcept nogil:
    # ext[q] += sum_t w[t] src[q + off[t]] over n taps (see pcn_taps).
    if floating is float:
        pcn_taps_f(ext, src, off, w, n, L)
    else:
        pcn_taps_d(ext, src, off, w, n, L)


cdef void _padded_forward_task(const floating *x, const floating *w,
                               const floating *bias, floating *y, const Geom *g,
                               const Ext *s, const Py_ssize_t *off, Py_ssize_t n,
                               Py_ssize_t gi, floating *xp, floating *ext) noexcept nogil:
    # All output planes of one (image, group); off[t] is the offset of tap t
    # in the padded volume.
    cdef:
        Py_ssize_t c, kk, k, od, oh, ow, q
        Py_ssize_t FF = g.FD * g.FH * g.FW
        Py_ssize_t plane = g.D * g.H * g.W, P = g.OD * g.OH * g.OW
        floating bk
        floating *yk
    for c in range(g.Cg):
        _pad_volume(x + (n * g.C + gi * g.Cg + c) * plane, xp + c * s.Pp, g, s)
    for kk in range(g.Kg):
        k = gi * g.Kg + kk
        bk = bias[k] if bias != NULL else 0
        for q in range(s.L):
            ext[q] = bk
        for c in range(g.Cg):
            _taps(ext, xp + c * s.Pp, off, w + (k * g.Cg + c) * FF, FF, s.L)
        yk = y + (n * g.K + k) * P
        for od in range(g.OD):
            for oh in range(g.OH):
                for ow in range(g.OW):
                    yk[(od * g.OH + oh) * g.OW + ow] = ext[(od * s.Hq + oh) * s.Wq + ow]


cdef Py_ssize_t[::1] _tap_offsets(const Geom *g, const Ext *s):
    # Offset of tap (a, b, e) in the phase-split padded volume, in filter
    # order: its phase's block, then its shift within the phase.
    cdef:
        Py_ssize_t[::1] off = np.empty(g.FD * g.FH * g.FW, dtype=np.intp)
        Py_ssize_t a, b, e, t = 0, phase
    for a in range(g.FD):
        for b in range(g.FH):
            for e in range(g.FW):
                phase = (((a * g.dd) % g.sd * g.sh + (b * g.dh) % g.sh) * g.sw
                         + (e * g.dw) % g.sw)
                off[t] = (phase * s.Pq + ((a * g.dd) // g.sd * s.Hq
                                          + (b * g.dh) // g.sh) * s.Wq
                          + (e * g.dw) // g.sw)
                t += 1
    return off


def padded_forward(const floating[:, :, :, :, ::1] x,    # IN  (N, C, D, H, W)
                   const floating[:, :, :, :, ::1] w,    # IN  (K, C/G, FD, FH, FW)
                   const floating[::1] bias,             # IN  (K,) or None
                   floating[:, :, :, :, ::1] y,          # OUT (N, K, OD, OH, OW)
                   tuple stride, tuple pad, tuple dilation, Py_ssize_t groups,
                   int n_threads):
    """Forward pass over padded, phase-split planes, one task per (image,
    group)."""
    cdef:
        Geom g = _geometry(x.shape, w.shape, y.shape, stride, pad,
                           dilation, groups)
        Ext s = _ext_layout(&g)
        Py_ssize_t N = x.shape[0]
        Py_ssize_t task
        const floating *bptr = NULL
        floating[:, ::1] xp, ext
        Py_ssize_t[::1] off = _tap_offsets(&g, &s)
    dtype = np.float32 if floating is float else np.float64
    n_threads = <int>_max(1, _min(n_threads, N * g.G))   # no idle buffers
    with _Scratch() as scratch:
        xp = scratch.array((n_threads, g.Cg * s.Pp), dtype=dtype)
        ext = scratch.array((n_threads, s.L), dtype=dtype)
        if bias is not None:
            bptr = &bias[0]
        with nogil:
            for task in prange(N * g.G, num_threads=n_threads, schedule="dynamic"):
                _padded_forward_task(&x[0, 0, 0, 0, 0], &w[0, 0, 0, 0, 0], bptr,
                                     &y[0, 0, 0, 0, 0], &g, &s, &off[0], task // g.G, task % g.G,
                                     &xp[omp_get_thread_num(), 0], &ext[omp_get_thread_num(), 0])


cdef void _padded_weight_grad_task(const floating *x, const floating *dy,
                                   floating *dw, const Geom *g, const Ext *s,
                                   const Py_ssize_t *off, Py_ssize_t N, Py_ssize_t k,
                                   Py_ssize_t cl, floating *xp, floating *ext,
                                   double *acc) noexcept nogil:
    # dw[k, cl, tap] = sum_n dot(dy_ext[n, k], xp[n, c] shifted by the tap),
    # with dy_ext zero in the junk columns; image sums in double.
    cdef:
        Py_ssize_t c = (k // g.Kg) * g.Cg + cl
        Py_ssize_t n, od, oh, ow, tap
        Py_ssize_t FF = g.FD * g.FH * g.FW
        Py_ssize_t plane = g.D * g.H * g.W, P = g.OD * g.OH * g.OW
        const floating *dyk
    for tap in range(FF):
        acc[tap] = 0
    memset(ext, 0, s.L * sizeof(floating))
    for n in range(N):
        _pad_volume(x + (n * g.C + c) * plane, xp, g, s)
        dyk = dy + (n * g.K + k) * P
        for od in range(g.OD):
            for oh in range(g.OH):
                for ow in range(g.OW):
                    ext[(od * s.Hq + oh) * s.Wq + ow] = dyk[(od * g.OH + oh) * g.OW + ow]
        if floating is float:
            pcn_dots_f(ext, xp, off, FF, s.L, acc)
        else:
            pcn_dots_d(ext, xp, off, FF, s.L, acc)
    for tap in range(FF):
        dw[(k * g.Cg + cl) * FF + tap] = <floating>acc[tap]


def padded_weight_grad(const floating[:, :, :, :, ::1] x,    # IN  (N, C, D, H, W)
                       const floating[:, :, :, :, ::1] dy,   # IN  (N, K, OD, OH, OW)
                       floating[:, :, :, :, ::1] dw,         # OUT (K, C/G, FD, FH, FW)
                       tuple stride, tuple pad, tuple dilation, Py_ssize_t groups,
                       int n_threads):
    """Weight gradient over padded, phase-split planes, one task per filter
    slice (k, c)."""
    cdef:
        Geom g = _geometry(x.shape, dw.shape, dy.shape, stride, pad,
                           dilation, groups)
        Ext s = _ext_layout(&g)
        Py_ssize_t N = x.shape[0]
        Py_ssize_t task, tid
        floating[:, ::1] xp, ext
        double[:, ::1] acc
        Py_ssize_t[::1] off = _tap_offsets(&g, &s)
    dtype = np.float32 if floating is float else np.float64
    n_threads = <int>_max(1, _min(n_threads, g.K * g.Cg))   # no idle buffers
    with _Scratch() as scratch:
        xp = scratch.array((n_threads, s.Pp), dtype=dtype)
        ext = scratch.array((n_threads, s.L), dtype=dtype)
        acc = scratch.array((n_threads, g.FD * g.FH * g.FW), dtype=np.float64)
        with nogil:
            for task in prange(g.K * g.Cg, num_threads=n_threads, schedule="dynamic"):
                tid = omp_get_thread_num()
                _padded_weight_grad_task(&x[0, 0, 0, 0, 0], &dy[0, 0, 0, 0, 0],
                                         &dw[0, 0, 0, 0, 0], &g, &s, &off[0], N, task // g.Cg,
                                         task % g.Cg, &xp[tid, 0], &ext[tid, 0], &acc[tid, 0])


# --- Winograd F(m x m, 3 x 3) -------------------------------------------------
#
# For a 3x3 kernel with unit stride, each m x m block of outputs (m = 2 or
# 4) is
#
#     Y = AT [ (G w G^T) * (BT d BT^T) ] AT^T
#
# (``*`` elementwise) with d the a x a input tile under the block
# (a = m + 2) and the transform matrices BT (a x a), G (a x 3) and AT
# (m x a) of Lavin and Gray's F(m, 3), passed in as tables. Summed over
# channels the elementwise products become a*a matrix products
# M[xi] = U[xi] @ V[xi] (xi = one of the a x a positions) with U = G w G^T
# (K x C per group, computed once) and V = BT d BT^T (C x tiles): a*a
# multiplies per m*m outputs instead of 9 m*m (F(4, 3): 36 for 16 outputs
# instead of 144). With dilation d a block covers outputs o, o + d, ...,
# o + (m-1) d (one dilation phase) and its tile reads inputs
# o - p + d*{0, ..., a-1}, along each axis.
#
# A task takes whole rows of blocks (across images): it gathers their
# tiles, transforms them with loops over all its tiles at once, runs the
# a*a products with BLAS, and transforms the results back.

cdef struct Blocks:
    # Blocks of m outputs along one axis, grouped by dilation phase r < d:
    # phase r holds outputs r, r + d, r + 2d, ..., m to a block; its blocks
    # are numbered start[r] ... start[r] + count[r] - 1 (start[d] = total).
    Py_ssize_t d
    Py_ssize_t *start
    Py_ssize_t *count


cdef struct Wino:
    Py_ssize_t m, a                 # output block, input tile
    const double *BT                # a x a
    const double *AT                # m x a


cdef inline void _lincomb(floating *out, const floating *src, Py_ssize_t stride,
                          const double *coef, Py_ssize_t n, Py_ssize_t L,
                          floating add) noexcept nogil:
    # out[j] = add + sum_v coef[v] src[v * stride + j], j < L, over the
    # nonzero coefficients (n <= 6; see pcn_lincomb).
    if floating is float:
        pcn_lincomb_f(out, src, stride, coef, n, L, add)
    else:
        pcn_lincomb_d(out, src, stride, coef, n, L, add)


cdef inline Py_ssize_t _block_row_start(const Blocks *b, Py_ssize_t u,
                                        Py_ssize_t m, Py_ssize_t d) noexcept nogil:
    # First output index of block u along an axis (blocks of m per phase).
    cdef Py_ssize_t r = 0
    while b.start[r + 1] <= u:
        r += 1
    return r + m * (u - b.start[r]) * d


cdef void _wino_input(const floating *x, floating *V, const Geom *g, const Wino *f,
                      const Blocks *bh, const Blocks *bw, Py_ssize_t UH,
                      Py_ssize_t TW, Py_ssize_t u0, Py_ssize_t nu,
                      floating *work) noexcept nogil:
    # V[i*a + l, c, t] = (BT d BT^T)[i, l] for the T = nu * TW tiles of
    # block-rows [u0, u0 + nu) (global over images), t = block-row * TW +
    # block. First every tile's a x a inputs are gathered into G[v, k, t];
    # the transforms then run as loops over all T tiles.
    cdef:
        Py_ssize_t m = f.m, a = f.a
        Py_ssize_t T = nu * TW, CT = g.C * T
        Py_ssize_t Wp = g.OW + (a - 1) * g.dw
        Py_ssize_t j_lo = _min(_max(g.pw, 0), Wp)
        Py_ssize_t j_hi = _min(_max(g.W + g.pw, j_lo), Wp)
        Py_ssize_t c, ub, n, hb, i, v, j, r, t, nt, k, l, base, dw = g.dw
        const floating *src
        floating *row = work                  # Wp: one padded input row
        floating *G = row + Wp                # a*a x T: gathered tiles
        floating *H = G + a * a * T           # a*a x T: BT applied down
        floating *o
    for c in range(g.C):
        for ub in range(nu):
            n = (u0 + ub) // UH
            hb = _block_row_start(bh, (u0 + ub) % UH, m, g.dh)
            for v in range(a):
                i = hb + v * g.dh - g.ph
                if 0 <= i < g.H:
                    src = x + ((n * g.C + c) * g.H + i) * g.W - g.pw
                    for j in range(j_lo):
                        row[j] = 0
                    for j in range(j_lo, j_hi):
                        row[j] = src[j]
                    for j in range(j_hi, Wp):
                        row[j] = 0
                else:
                    for j in range(Wp):
                        row[j] = 0
                # block t of phase r reads columns r + (m t + k) d, k < a
                o = G + v * a * T + ub * TW
                if dw == 1 and m == 4:
                    _gather6(o, row, T, bw.count[0])
                elif dw == 1 and m == 2:
                    _gather4(o, row, T, bw.count[0])
                else:
                    for r in range(bw.d):
                        nt = bw.count[r]
                        base = bw.start[r]
                        for k in range(a):
                            for t in range(nt):
                                o[k * T + base + t] = row[r + (m * t + k) * dw]
        # H[i, k] = sum_v BT[i, v] G[v, k]; V[i*a + l] = sum_k BT[l, k] H[i, k]
        for i in range(a):
            for k in range(a):
                _lincomb(H + (i * a + k) * T, G + k * T, a * T, f.BT + i * a, a, T, 0)
        for i in range(a):
            for l in range(a):
                _lincomb(V + (i * a + l) * CT + c * T, H + i * a * T, T, f.BT + l * a,
                         a, T, 0)


cdef void _wino_output(const floating *M, const floating *bias, floating *y,
                       const Geom *g, const Wino *f, const Blocks *bh,
                       const Blocks *bw, Py_ssize_t UH, Py_ssize_t TW,
                       Py_ssize_t u0, Py_ssize_t nu, floating *work) noexcept nogil:
    # y block = AT M AT^T (+ bias) for every output channel and tile: the
    # transforms as loops over the task's T tiles, then each block's m x m
    # outputs placed into y.
    cdef:
        Py_ssize_t m = f.m, a = f.a
        Py_ssize_t T = nu * TW, KT = g.K * T
        Py_ssize_t k, ub, n, oh, r, t, nt, i, j, b, col, base, P = g.OH * g.OW
        Py_ssize_t dw = g.dw
        floating bk
        floating *S = work                     # a*m x T: AT applied along
        floating *Z = S + a * m * T            # m*m x T: the outputs
        floating *yrow
        const floating *z
    for k in range(g.K):
        bk = bias[k] if bias != NULL else 0
        for b in range(a):
            for j in range(m):
                _lincomb(S + (b * m + j) * T, M + b * a * KT + k * T, KT, f.AT + j * a,
                         a, T, 0)
        for i in range(m):
            for j in range(m):
                _lincomb(Z + (i * m + j) * T, S + j * T, m * T, f.AT + i * a, a, T, bk)
        for ub in range(nu):
            n = (u0 + ub) // UH
            oh = _block_row_start(bh, (u0 + ub) % UH, m, g.dh)
            for i in range(m):
                if oh + i * g.dh >= g.OH:
                    break
                yrow = y + (n * g.K + k) * P + (oh + i * g.dh) * g.OW
                # block t of phase r, column j: r + (m t + j) d, inside OW
                # for t < ceil((OW - r - j d) / (m d))
                z = Z + i * m * T + ub * TW
                if dw == 1 and m == 4:
                    _scatter4(yrow, z, T, bw.count[0], g.OW)
                    continue
                for r in range(bw.d):
                    base = bw.start[r]
                    for j in range(m):
                        col = r + j * dw
                        nt = _min(bw.count[r], _max(0, _ceil_div(g.OW - col, m * dw)))
                        for t in range(nt):
                            yrow[col + m * dw * t] = z[j * T + base + t]


cdef inline void _gather6(floating *o, const floating *row, Py_ssize_t T,
                          Py_ssize_t nt) noexcept nogil:
    # o[k*T + t] = row[4t + k], k < 6: the 6 columns of F(4, 3) tiles.
    cdef:
        Py_ssize_t t
        floating *o0 = o
        floating *o1 = o + T
        floating *o2 = o + 2 * T
        floating *o3 = o + 3 * T
        floating *o4 = o + 4 * T
        floating *o5 = o + 5 * T
    for t in range(nt):
        o0[t] = row[4 * t]
        o1[t] = row[4 * t + 1]
        o2[t] = row[4 * t + 2]
        o3[t] = row[4 * t + 3]
        o4[t] = row[4 * t + 4]
        o5[t] = row[4 * t + 5]


cdef inline void _gather4(floating *o, const floating *row, Py_ssize_t T,
                          Py_ssize_t nt) noexcept nogil:
    # o[k*T + t] = row[2t + k], k < 4: the 4 columns of F(2, 3) tiles.
    cdef:
        Py_ssize_t t
        floating *o0 = o
        floating *o1 = o + T
        floating *o2 = o + 2 * T
        floating *o3 = o + 3 * T
    for t in range(nt):
        o0[t] = row[2 * t]
        o1[t] = row[2 * t + 1]
        o2[t] = row[2 * t + 2]
        o3[t] = row[2 * t + 3]


cdef inline void _scatter4(floating *yrow, const floating *z, Py_ssize_t T,
                           Py_ssize_t nt, Py_ssize_t OW) noexcept nogil:
    # yrow[4t + j] = z[j*T + t] for the columns inside the row (OW).
    cdef:
        Py_ssize_t t, j, full = OW // 4
        const floating *z0 = z
        const floating *z1 = z + T
        const floating *z2 = z + 2 * T
        const floating *z3 = z + 3 * T
    full = _min(full, nt)
    for t in range(full):
        yrow[4 * t] = z0[t]
        yrow[4 * t + 1] = z1[t]
        yrow[4 * t + 2] = z2[t]
        yrow[4 * t + 3] = z3[t]
    for j in range(4 * full, OW):
        yrow[j] = z[(j % 4) * T + j // 4]


cdef (Py_ssize_t, Py_ssize_t) _split(Py_ssize_t total, Py_ssize_t most,
                                    Py_ssize_t n_threads):
    # Items per task and tasks: at most `most` items a task, and a number
    # of tasks that is a multiple of the thread count where there are
    # enough items, so that the threads finish together.
    cdef Py_ssize_t n_tasks = _ceil_div(total, most)
    n_tasks = _min(total, _ceil_div(n_tasks, n_threads) * n_threads)
    most = _ceil_div(total, n_tasks)
    return most, _ceil_div(total, most)


cdef Py_ssize_t[::1] _blocks_of(Py_ssize_t n_out, Py_ssize_t d, Py_ssize_t m,
                                Blocks *b):
    # Fill b for blocks of m outputs per dilation phase; the caller keeps
    # the array alive.
    cdef:
        Py_ssize_t[::1] table = np.zeros(2 * d + 1, dtype=np.intp)
        Py_ssize_t r, total = 0
    for r in range(d):
        table[r] = total
        table[d + 1 + r] = (_max(0, n_out - r + d - 1) // d + m - 1) // m
        total += table[d + 1 + r]
    table[d] = total
    b.d = d
    b.start = &table[0]
    b.count = &table[d + 1]
    return table


cdef enum:
    FILTER_CHUNK = 128    # filters per block of the filter transforms


cdef void _filter_chunk(const floating *wf, floating *uf, const double *G,
                        Py_ssize_t a, Py_ssize_t KC, Py_ssize_t f0,
                        Py_ssize_t nf) noexcept nogil:
    # u[:, f0:f0+nf] for filters f0 ... f0 + nf - 1 (see winograd_filter).
    cdef:
        Py_ssize_t j, i, l, q
        double wt[9][FILTER_CHUNK]
        double t[8][3][FILTER_CHUNK]
        double acc
    # the chunk's filters tap by tap, so that every loop below runs along
    # memory (and vectorises)
    for j in range(nf):
        for q in range(9):
            wt[q][j] = wf[(f0 + j) * 9 + q]
    # t[i][q] = sum_p G[i, p] w[p, q]
    for i in range(a):
        for q in range(3):
            for j in range(nf):
                t[i][q][j] = (G[i * 3] * wt[q][j] + G[i * 3 + 1] * wt[3 + q][j]
                              + G[i * 3 + 2] * wt[6 + q][j])
    # u[i, l] = sum_q t[i][q] G[l, q]
    for i in range(a):
        for l in range(a):
            for j in range(nf):
                acc = (t[i][0][j] * G[l * 3] + t[i][1][j] * G[l * 3 + 1]
                       + t[i][2][j] * G[l * 3 + 2])
                uf[(i * a + l) * KC + f0 + j] = <floating>acc


def winograd_filter(const floating[:, :, :, ::1] w,    # IN  (K, Cg, 3, 3)
                    const double[:, ::1] G,            # IN  (a, 3)
                    floating[:, :, ::1] u,             # OUT (a*a, K, Cg)
                    int n_threads):
    """u[i*a + l, k, c] = (G w[k, c] G^T)[i, l], in double before rounding.

    Filters go in blocks (one task each), so that reads of w and writes of
    u both run along memory.
    """
    cdef:
        Py_ssize_t KC = w.shape[0] * w.shape[1], a = G.shape[0]
        Py_ssize_t chunk, n_chunks = (KC + FILTER_CHUNK - 1) // FILTER_CHUNK
    n_threads = <int>_max(1, _min(n_threads, n_chunks))
    with nogil:
        for chunk in prange(n_chunks, num_threads=n_threads, schedule="static"):
            _filter_chunk(&w[0, 0, 0, 0], &u[0, 0, 0], &G[0, 0], a, KC,
                          chunk * FILTER_CHUNK,
                          _min(FILTER_CHUNK, KC - chunk * FILTER_CHUNK))


cdef void _filter_grad_chunk(const floating *uf, floating *df, const double *G,
                             Py_ssize_t a, Py_ssize_t KC, Py_ssize_t f0,
                             Py_ssize_t nf) noexcept nogil:
    # dw of filters f0 ... f0 + nf - 1 (see winograd_filter_grad).
    cdef:
        Py_ssize_t j, i, l, p, q
        double t[3][8][FILTER_CHUNK]
        double acc
    # t[p][l] = sum_i G[i, p] u[i, l]
    for p in range(3):
        for l in range(a):
            for j in range(nf):
                t[p][l][j] = 0
            for i in range(a):
                for j in range(nf):
                    t[p][l][j] += G[i * 3 + p] * uf[(i * a + l) * KC + f0 + j]
    # dw[p, q] = sum_l t[p][l] G[l, q]
    for p in range(3):
        for q in range(3):
            for j in range(nf):
                acc = 0
                for l in range(a):
                    acc = acc + t[p][l][j] * G[l * 3 + q]
                df[(f0 + j) * 9 + p * 3 + q] = <floating>acc


def winograd_filter_grad(const floating[:, :, ::1] u,     # IN  (a*a, K, Cg)
                         const double[:, ::1] G,          # IN  (a, 3)
                         floating[:, :, :, ::1] dw,       # OUT (K, Cg, 3, 3)
                         int n_threads):
    """dw[k, c] = G^T u[:, k, c] G (u as a x a), in double before rounding,
    filters in blocks as in :func:`winograd_filter`."""
    cdef:
        Py_ssize_t KC = dw.shape[0] * dw.shape[1], a = G.shape[0]
        Py_ssize_t chunk, n_chunks = (KC + FILTER_CHUNK - 1) // FILTER_CHUNK
    n_threads = <int>_max(1, _min(n_threads, n_chunks))
    with nogil:
        for chunk in prange(n_chunks, num_threads=n_threads, schedule="static"):
            _filter_grad_chunk(&u[0, 0, 0], &dw[0, 0, 0, 0], &G[0, 0], a, KC,
                               chunk * FILTER_CHUNK,
                               _min(FILTER_CHUNK, KC - chunk * FILTER_CHUNK))


def winograd_forward(const floating[:, :, :, :, ::1] x,    # IN  (N, C, 1, H, W)
                     const floating[:, :, ::1] u,          # IN  (a*a, K, C/G): G w G^T
                     const floating[::1] bias,             # IN  (K,) or None
                     floating[:, :, :, :, ::1] y,          # OUT (N, K, 1, OH, OW)
                     const double[:, ::1] BT,              # IN  (a, a)
                     const double[:, ::1] AT,              # IN  (m, a)
                     tuple pad, tuple dilation, Py_ssize_t groups,
                     Py_ssize_t tiles, int n_threads):
    """Unit-stride 3x3 forward pass by Winograd F(m x m, 3 x 3); ``tiles``
    blocks per task, about."""
    cdef:
        Py_ssize_t ws[5]
        Geom g
        Wino f
        Blocks bh, bw
        Py_ssize_t N = x.shape[0]
        Py_ssize_t UH, TW, per_task, n_tasks, task, u0, nu, tid, T, xi, gi, aa
        const floating *bptr = NULL
        floating[:, ::1] V, M, work
    f.m = AT.shape[0]
    f.a = AT.shape[1]
    f.BT = &BT[0, 0]
    f.AT = &AT[0, 0]
    aa = f.a * f.a
    ws[0] = u.shape[1]
    ws[1] = u.shape[2]
    ws[2] = 1
    ws[3] = ws[4] = 3
    g = _geometry(x.shape, ws, y.shape, (1, 1, 1), pad, dilation, groups)
    htable = _blocks_of(g.OH, g.dh, f.m, &bh)
    wtable = _blocks_of(g.OW, g.dw, f.m, &bw)
    UH = bh.start[g.dh]
    TW = bw.start[g.dw]
    per_task, n_tasks = _split(N * UH, _max(1, tiles // TW), n_threads)
    dtype = np.float32 if floating is float else np.float64
    if bias is not None:
        bptr = &bias[0]
    n_threads = <int>_max(1, _min(n_threads, n_tasks))   # no idle buffers
    with _Scratch() as scratch:
        V = scratch.array((n_threads, aa * g.C * per_task * TW), dtype)
        M = scratch.array((n_threads, aa * g.K * per_task * TW), dtype)
        work = scratch.array((n_threads, _max(
            g.OW + (f.a - 1) * g.dw + 2 * aa * per_task * TW,
            (f.a * f.m + f.m * f.m) * per_task * TW)), dtype)
        with nogil:
            for task in prange(n_tasks, num_threads=n_threads, schedule="dynamic"):
                tid = omp_get_thread_num()
                u0 = task * per_task
                nu = _min(per_task, N * UH - u0)
                T = nu * TW
                _wino_input(&x[0, 0, 0, 0, 0], &V[tid, 0], &g, &f, &bh, &bw, UH, TW,
                            u0, nu, &work[tid, 0])
                for xi in range(aa):
                    for gi in range(g.G):
                        _gemm(c'N', c'N', <int>T, <int>g.Kg, <int>g.Cg, 1,
                              &V[tid, (xi * g.C + gi * g.Cg) * T], <int>T,
                              &u[xi, gi * g.Kg, 0], <int>g.Cg, 0,
                              &M[tid, (xi * g.K + gi * g.Kg) * T], <int>T)
                _wino_output(&M[tid, 0], bptr, &y[0, 0, 0, 0, 0], &g, &f, &bh, &bw,
                             UH, TW, u0, nu, &work[tid, 0])


# Weight gradient by Winograd. The forward pass is bilinear in the filter
# w and the tile d: per axis y = AT [(G w) * (BT d)], so for a loss L with
# dL/dy = dy,
#
#     dL/dw = G^T [ (AT^T dy) * (BT d) ],
#
# and in 2-D, summed over blocks and images, per position xi of the a x a
# grid:  dW[xi] (K x C) = sum_tiles E[xi] V[xi]^T  with V = BT d BT^T (the
# forward input transform) and E = AT^T dY AT (each m x m block of dy spread
# to a x a). Then dw[k, c] = G^T dW[:, k, c] G (winograd_filter_grad).

cdef void _wino_grad_output(const floating *dy, floating *E, const Geom *g,
                            const Wino *f, const double *A, const Blocks *bh,
                            const Blocks *bw, Py_ssize_t UH, Py_ssize_t TW,
                            Py_ssize_t u0, Py_ssize_t nu,
                            floating *work) noexcept nogil:
    # E[i*a + l, k, t] = (AT^T dY AT)[i, l] for every output channel k and
    # tile t of the task; dY is the m x m block of dy, zero past the edges.
    # A = AT^T (a x m).
    cdef:
        Py_ssize_t m = f.m, a = f.a
        Py_ssize_t T = nu * TW, KT = g.K * T
        Py_ssize_t k, ub, n, oh, r, t, nt, i, j, l, col, base, P = g.OH * g.OW
        Py_ssize_t dw = g.dw
        floating *B = work                      # m*m x T: gathered blocks
        floating *H = B + m * m * T             # a*m x T: A applied down
        floating *o
        const floating *yrow
    for k in range(g.K):
        for ub in range(nu):
            n = (u0 + ub) // UH
            oh = _block_row_start(bh, (u0 + ub) % UH, m, g.dh)
            for i in range(m):
                o = B + i * m * T + ub * TW
                if oh + i * g.dh >= g.OH:
                    for j in range(m):
                        for t in range(TW):
                            o[j * T + t] = 0
                    continue
                yrow = dy + (n * g.K + k) * P + (oh + i * g.dh) * g.OW
                for r in range(bw.d):
                    base = bw.start[r]
                    for j in range(m):
                        col = r + j * dw
                        nt = _min(bw.count[r], _max(0, _ceil_div(g.OW - col, m * dw)))
                        for t in range(nt):
                            o[j * T + base + t] = yrow[col + m * dw * t]
                        for t in range(nt, bw.count[r]):
                            o[j * T + base + t] = 0
        # H[i, j] = sum_r A[i, r] B[r, j]; E[i*a + l] = sum_j A[l, j] H[i, j]
        for i in range(a):
            for j in range(m):
                _lincomb(H + (i * m + j) * T, B + j * T, m * T, A + i * m, m, T, 0)
        for i in range(a):
            for l in range(a):
                _lincomb(E + (i * a + l) * KT + k * T, H + i * m * T, T, A + l * m,
                         m, T, 0)


def winograd_weight_grad(const floating[:, :, :, :, ::1] x,    # IN  (N, C, 1, H, W)
                         const floating[:, :, :, :, ::1] dy,   # IN  (N, K, 1, OH, OW)
                         floating[:, :, ::1] out,              # OUT (a*a, K, C/G)
                         const double[:, ::1] BT,              # IN  (a, a)
                         const double[:, ::1] AT,              # IN  (m, a)
                         tuple pad, tuple dilation, Py_ssize_t groups,
                         Py_ssize_t tiles, int n_threads):
    """sum over tiles of E[xi] V[xi]^T per group: the weight gradient in the
    Winograd domain. Private sums per thread, tasks split statically."""
    cdef:
        Py_ssize_t ws[5]
        Geom g
        Wino f
        Blocks bh, bw
        Py_ssize_t N = x.shape[0]
        Py_ssize_t UH, TW, per_task, n_tasks, task, u0, nu, tid, T, xi, gi, aa, i, t
        Py_ssize_t size
        floating[:, ::1] V, E, work, acc
        double[:, ::1] A = np.ascontiguousarray(np.asarray(AT).T)
        floating *res = &out[0, 0, 0]
    f.m = AT.shape[0]
    f.a = AT.shape[1]
    f.BT = &BT[0, 0]
    f.AT = &AT[0, 0]
    aa = f.a * f.a
    ws[0] = out.shape[1]
    ws[1] = out.shape[2]
    ws[2] = 1
    ws[3] = ws[4] = 3
    size = aa * ws[0] * ws[1]
    g = _geometry(x.shape, ws, dy.shape, (1, 1, 1), pad, dilation, groups)
    htable = _blocks_of(g.OH, g.dh, f.m, &bh)
    wtable = _blocks_of(g.OW, g.dw, f.m, &bw)
    UH = bh.start[g.dh]
    TW = bw.start[g.dw]
    per_task, n_tasks = _split(N * UH, _max(1, tiles // TW), n_threads)
    dtype = np.float32 if floating is float else np.float64
    n_threads = <int>_max(1, _min(n_threads, n_tasks))   # no idle buffers
    with _Scratch() as scratch:
        V = scratch.array((n_threads, aa * g.C * per_task * TW), dtype)
        E = scratch.array((n_threads, aa * g.K * per_task * TW), dtype)
        work = scratch.array((n_threads, _max(
            g.OW + (f.a - 1) * g.dw + 2 * aa * per_task * TW,
            (f.m * f.m + f.a * f.m) * per_task * TW)), dtype)
        acc = scratch.array((n_threads, size), dtype)
        acc[:, :] = 0
        with nogil:
            for task in prange(n_tasks, num_threads=n_threads, schedule="static"):
                tid = omp_get_thread_num()
                u0 = task * per_task
                nu = _min(per_task, N * UH - u0)
                T = nu * TW
                _wino_input(&x[0, 0, 0, 0, 0], &V[tid, 0], &g, &f, &bh, &bw, UH, TW,
                            u0, nu, &work[tid, 0])
                _wino_grad_output(&dy[0, 0, 0, 0, 0], &E[tid, 0], &g, &f, &A[0, 0],
                                  &bh, &bw, UH, TW, u0, nu, &work[tid, 0])
                for xi in range(aa):
                    for gi in range(g.G):
                        # Row-major acc[xi] (Kg x Cg) += E (Kg x T) @ V (Cg x T)^T
                        _gemm(c'T', c'N', <int>g.Cg, <int>g.Kg, <int>T, 1,
                              &V[tid, (xi * g.C + gi * g.Cg) * T], <int>T,
                              &E[tid, (xi * g.K + gi * g.Kg) * T], <int>T, 1,
                              &acc[tid, (xi * g.K + gi * g.Kg) * g.Cg], <int>g.Cg)
            for i in prange(size, num_threads=n_threads, schedule="static"):
                res[i] = 0
                for t in range(n_threads):
                    res[i] += acc[t, i]


# --- depthwise kernels on channel-blocked planes -------------------------------
#
# A depthwise layer (groups = C = K: one input channel per output channel)
# does one multiply-add per tap and value read. Its loops run over blocks of
# `lanes` channels (64 bytes) of one image, copied into a zero-padded buffer
# laid out (PD, PH, PW, lanes), where every tap of every output is one vector
# multiply-add (include/pcn_depthwise.h).

cdef pcn_window_geom _dw_geometry(const Geom *g) noexcept nogil:
    # The padded extent the windows read along each axis.
    cdef pcn_window_geom d
    d.D, d.H, d.W = g.D, g.H, g.W
    d.OD, d.OH, d.OW = g.OD, g.OH, g.OW
    d.FD, d.FH, d.FW = g.FD, g.FH, g.FW
    d.sd, d.sh, d.sw = g.sd, g.sh, g.sw
    d.dd, d.dh, d.dw = g.dd, g.dh, g.dw
    d.pd, d.ph, d.pw = g.pd, g.ph, g.pw
    d.PD = (g.OD - 1) * g.sd + (g.FD - 1) * g.dd + 1
    d.PH = (g.OH - 1) * g.sh + (g.FH - 1) * g.dh + 1
    d.PW = (g.OW - 1) * g.sw + (g.FW - 1) * g.dw + 1
    return d


BLOCKED_STRIP = PCN_BLK_STRIP


def blocked_lanes(dtype, bint wide=True):
    """Output channels per block of the register-blocked kernel for
    ``dtype`` on this CPU (64 bytes of them, 128 with AVX-512 unless not
    ``wide``)."""
    if np.dtype(dtype) == np.float32:
        return pcn_blk_lanes_f() if wide else PCN_DW_LANES_F
    return pcn_blk_lanes_d() if wide else PCN_DW_LANES_D


# The header's loops for either dtype, behind one name.

cdef inline void _dw_pack(floating *xp, const floating *x, Py_ssize_t plane, Py_ssize_t nc,
                          const pcn_window_geom *g, Py_ssize_t r0,
                          Py_ssize_t rows) noexcept nogil:
    if floating is float:
        pcn_dw_pack_f(xp, x, plane, nc, g, r0, rows)
    else:
        pcn_dw_pack_d(xp, x, plane, nc, g, r0, rows)


cdef inline void _dw_pack_out(floating *dyp, const floating *dy, Py_ssize_t plane,
                              Py_ssize_t nc, Py_ssize_t P) noexcept nogil:
    if floating is float:
        pcn_dw_pack_out_f(dyp, dy, plane, nc, P)
    else:
        pcn_dw_pack_out_d(dyp, dy, plane, nc, P)


cdef inline void _dw_unpack(floating *dx, const floating *dxp, Py_ssize_t plane,
                            Py_ssize_t nc, const pcn_window_geom *g) noexcept nogil:
    if floating is float:
        pcn_dw_unpack_f(dx, dxp, plane, nc, g)
    else:
        pcn_dw_unpack_d(dx, dxp, plane, nc, g)


cdef inline void _dw_forward(floating *y, Py_ssize_t plane, Py_ssize_t nc,
                             const floating *xp, const floating *wb, const floating *bias,
                             const pcn_window_geom *g, Py_ssize_t oh0,
                             Py_ssize_t oh1) noexcept nogil:
    if floating is float:
        pcn_dw_forward_f(y, plane, nc, xp, wb, bias, g, oh0, oh1)
    else:
        pcn_dw_forward_d(y, plane, nc, xp, wb, bias, g, oh0, oh1)


cdef inline void _dw_weight_grad(floating *acc, const floating *xp, const floating *dyp,
                                 const pcn_window_geom *g) noexcept nogil:
    if floating is float:
        pcn_dw_weight_grad_f(acc, xp, dyp, g)
    else:
        pcn_dw_weight_grad_d(acc, xp, dyp, g)


cdef inline void _dw_input_grad(floating *dxp, const floating *dyp, const floating *wb,
                                const pcn_window_geom *g) noexcept nogil:
    if floating is float:
        pcn_dw_input_grad_f(dxp, dyp, wb, g)
    else:
        pcn_dw_input_grad_d(dxp, dyp, wb, g)


def depthwise_lanes(dtype):
    """Channels per block of the depthwise and register-blocked kernels for
    ``dtype`` (64 bytes of them)."""
    return PCN_DW_LANES_F if np.dtype(dtype) == np.float32 else PCN_DW_LANES_D


cdef void _dw_block_weights(const floating *w, const floating *bias, floating *wb,
                            Py_ssize_t k0, Py_ssize_t nc, Py_ssize_t taps,
                            Py_ssize_t lanes) noexcept nogil:
    # wb (taps + 1, lanes): the block's weights tap by tap, then its biases;
    # lanes past the last channel are zero.
    cdef Py_ssize_t c, t
    memset(wb, 0, (taps + 1) * lanes * sizeof(floating))
    for c in range(nc):
        for t in range(taps):
            wb[t * lanes + c] = w[(k0 + c) * taps + t]
        if bias != NULL:
            wb[taps * lanes + c] = bias[k0 + c]


cdef floating[:, ::1] _dw_weights(const floating[:, :, :, :, ::1] w,
                                  const floating[::1] bias, Py_ssize_t lanes, scratch):
    # The weights (and biases) of every block, (blocks, (taps + 1) * lanes).
    cdef:
        Py_ssize_t K = w.shape[0]
        Py_ssize_t taps = w.shape[2] * w.shape[3] * w.shape[4]
        Py_ssize_t blocks = _ceil_div(K, lanes), b
        const floating *bptr = &bias[0] if bias is not None else NULL
        floating[:, ::1] wb
    dtype = np.float32 if floating is float else np.float64
    wb = scratch.array((blocks, (taps + 1) * lanes), dtype)
    for b in range(blocks):
        _dw_block_weights(&w[0, 0, 0, 0, 0], bptr, &wb[b, 0], b * lanes,
                          _min(lanes, K - b * lanes), taps, lanes)
    return wb


def depthwise_forward(const floating[:, :, :, :, ::1] x,    # IN  (N, C, D, H, W)
                      const floating[:, :, :, :, ::1] w,    # IN  (C, 1, FD, FH, FW)
                      const floating[::1] bias,             # IN  (C,) or None
                      floating[:, :, :, :, ::1] y,          # OUT (N, C, OD, OH, OW)
                      tuple stride, tuple pad, tuple dilation, Py_ssize_t bands,
                      int n_threads):
    """Forward pass of a depthwise layer, one task per (image, block of
    channels, band of output rows); each task copies only the padded rows
    its band reads."""
    cdef:
        Geom g = _geometry(x.shape, w.shape, y.shape, stride, pad, dilation, x.shape[1])
        pcn_window_geom d = _dw_geometry(&g)
        Py_ssize_t N = x.shape[0]
        Py_ssize_t lanes = PCN_DW_LANES_F if floating is float else PCN_DW_LANES_D
        Py_ssize_t blocks = _ceil_div(g.C, lanes)
        Py_ssize_t taps = g.FD * g.FH * g.FW
        Py_ssize_t plane = g.D * g.H * g.W, P = g.OD * g.OH * g.OW
        Py_ssize_t band, rows, n_tasks, task, b, blk, n, oh0, oh1, nc, tid
        floating[:, ::1] xp, wb
    band = _ceil_div(g.OH, _max(1, _min(bands, g.OH)))
    bands = _ceil_div(g.OH, band)
    rows = (band - 1) * g.sh + (g.FH - 1) * g.dh + 1
    n_tasks = N * blocks * bands
    n_threads = <int>_max(1, _min(n_threads, n_tasks))   # no idle buffers
    dtype = np.float32 if floating is float else np.float64
    with _Scratch() as scratch:
        wb = _dw_weights(w, bias, lanes, scratch)
        xp = scratch.array((n_threads, d.PD * rows * d.PW * lanes), dtype)
        with nogil:
            for task in prange(n_tasks, num_threads=n_threads, schedule="dynamic"):
                tid = omp_get_thread_num()
                b = task % bands
                blk = (task // bands) % blocks
                n = task // (bands * blocks)
                oh0 = b * band
                oh1 = _min(g.OH, oh0 + band)
                nc = _min(lanes, g.C - blk * lanes)
                _dw_pack(&xp[tid, 0], &x[n, blk * lanes, 0, 0, 0], plane, nc, &d, oh0 * g.sh,
                         (oh1 - oh0 - 1) * g.sh + (g.FH - 1) * g.dh + 1)
                _dw_forward(&y[n, blk * lanes, 0, 0, 0], P, nc, &xp[tid, 0], &wb[blk, 0],
                            &wb[blk, taps * lanes], &d, oh0, oh1)


def depthwise_weight_grad(const floating[:, :, :, :, ::1] x,    # IN  (N, C, D, H, W)
                          const floating[:, :, :, :, ::1] dy,   # IN  (N, C, OD, OH, OW)
                          floating[:, :, :, :, ::1] dw,         # OUT (C, 1, FD, FH, FW)
                          tuple stride, tuple pad, tuple dilation, Py_ssize_t chunks,
                          int n_threads):
    """Weight gradient of a depthwise layer, one task per (block of
    channels, chunk of images); each task sums its images into a partial
    gradient of its own, and the partials are added in a fixed order, so a
    given thread count always sums in the same order."""
    cdef:
        Geom g = _geometry(x.shape, dw.shape, dy.shape, stride, pad, dilation, x.shape[1])
        pcn_window_geom d = _dw_geometry(&g)
        Py_ssize_t N = x.shape[0]
        Py_ssize_t lanes = PCN_DW_LANES_F if floating is float else PCN_DW_LANES_D
        Py_ssize_t blocks = _ceil_div(g.C, lanes)
        Py_ssize_t taps = g.FD * g.FH * g.FW
        Py_ssize_t plane = g.D * g.H * g.W, P = g.OD * g.OH * g.OW
        Py_ssize_t per, n_tasks, task, blk, n, nc, tid, c, t, ch
        floating[:, ::1] xp, dyp, part
        floating *out = &dw[0, 0, 0, 0, 0]
        floating total
    chunks = _max(1, _min(chunks, N))
    per = _ceil_div(N, chunks)
    chunks = _ceil_div(N, per)
    n_tasks = blocks * chunks
    n_threads = <int>_max(1, _min(n_threads, n_tasks))   # no idle buffers
    dtype = np.float32 if floating is float else np.float64
    with _Scratch() as scratch:
        xp = scratch.array((n_threads, d.PD * d.PH * d.PW * lanes), dtype)
        dyp = scratch.array((n_threads, P * lanes), dtype)
        part = scratch.array((n_tasks, taps * lanes), dtype)
        with nogil:
            for task in prange(n_tasks, num_threads=n_threads, schedule="dynamic"):
                tid = omp_get_thread_num()
                blk = task % blocks
                ch = task // blocks
                nc = _min(lanes, g.C - blk * lanes)
                memset(&part[task, 0], 0, taps * lanes * sizeof(floating))
                for n in range(ch * per, _min(N, (ch + 1) * per)):
                    _dw_pack(&xp[tid, 0], &x[n, blk * lanes, 0, 0, 0], plane, nc, &d, 0, d.PH)
                    _dw_pack_out(&dyp[tid, 0], &dy[n, blk * lanes, 0, 0, 0], P, nc, P)
                    _dw_weight_grad(&part[task, 0], &xp[tid, 0], &dyp[tid, 0], &d)
            for c in range(g.C):
                blk = c // lanes
                for t in range(taps):
                    total = 0
                    for ch in range(chunks):
                        total = total + part[ch * blocks + blk, t * lanes + c - blk * lanes]
                    out[c * taps + t] = total


def depthwise_input_grad(const floating[:, :, :, :, ::1] dy,   # IN  (N, C, OD, OH, OW)
                         const floating[:, :, :, :, ::1] w,    # IN  (C, 1, FD, FH, FW)
                         floating[:, :, :, :, ::1] dx,         # OUT (N, C, D, H, W)
                         tuple stride, tuple pad, tuple dilation, int n_threads):
    """Input gradient of a depthwise layer, one task per (image, block of
    channels): every window's gradient scattered onto the block's padded
    planes, whose interior is then copied out."""
    cdef:
        Geom g = _geometry(dx.shape, w.shape, dy.shape, stride, pad, dilation, dx.shape[1])
        pcn_window_geom d = _dw_geometry(&g)
        Py_ssize_t N = dx.shape[0]
        Py_ssize_t lanes = PCN_DW_LANES_F if floating is float else PCN_DW_LANES_D
        Py_ssize_t blocks = _ceil_div(g.C, lanes)
        Py_ssize_t plane = g.D * g.H * g.W, P = g.OD * g.OH * g.OW
        Py_ssize_t size = d.PD * d.PH * d.PW * lanes
        Py_ssize_t n_tasks = N * blocks, task, blk, n, nc, tid
        floating[:, ::1] dxp, dyp, wb
        const floating[::1] no_bias = None
    n_threads = <int>_max(1, _min(n_threads, n_tasks))   # no idle buffers
    dtype = np.float32 if floating is float else np.float64
    with _Scratch() as scratch:
        wb = _dw_weights(w, no_bias, lanes, scratch)
        dxp = scratch.array((n_threads, size), dtype)
        dyp = scratch.array((n_threads, P * lanes), dtype)
        with nogil:
            for task in prange(n_tasks, num_threads=n_threads, schedule="dynamic"):
                tid = omp_get_thread_num()
                blk = task % blocks
                n = task // blocks
                nc = _min(lanes, g.C - blk * lanes)
                memset(&dxp[tid, 0], 0, size * sizeof(floating))
                _dw_pack_out(&dyp[tid, 0], &dy[n, blk * lanes, 0, 0, 0], P, nc, P)
                _dw_input_grad(&dxp[tid, 0], &dyp[tid, 0], &wb[blk, 0], &d)
                _dw_unpack(&dx[n, blk * lanes, 0, 0, 0], &dxp[tid, 0], plane, nc, &d)


# --- direct kernels, register-blocked -----------------------------------------
#
# Output rows in strips of positions for a block of `lanes` output channels
# (include/pcn_blocked.h): every multiply-add of a strip's accumulators runs
# in registers, over every input channel of the group and every tap. No
# column matrix, no BLAS call: the kernel of small layers, where those cost
# more than the multiply-adds.

cdef void _pad_plane(const floating *x, floating *xp, const Geom *g,
                     const pcn_window_geom *d) noexcept nogil:
    # One channel's padded extent (PD, PH, PW): the input where the windows
    # read it, zero in the padding.
    cdef Py_ssize_t z, r, zi, ri, w1 = _min(g.W, d.PW - g.pw)
    memset(xp, 0, d.PD * d.PH * d.PW * sizeof(floating))
    for z in range(_min(g.D, d.PD - g.pd)):
        for r in range(_min(g.H, d.PH - g.ph)):
            if w1 > 0:
                memcpy(xp + ((z + g.pd) * d.PH + r + g.ph) * d.PW + g.pw,
                       x + (z * g.H + r) * g.W, w1 * sizeof(floating))


cdef void _blocked_task(floating *y, const floating *src, const floating *wb,
                        floating *acc, const Geom *g, const pcn_window_geom *d,
                        Py_ssize_t n, Py_ssize_t gi, Py_ssize_t kb, Py_ssize_t kblocks,
                        Py_ssize_t lanes, Py_ssize_t width, Py_ssize_t cs, Py_ssize_t ss,
                        Py_ssize_t rs, Py_ssize_t P, Py_ssize_t p0, Py_ssize_t p1,
                        Py_ssize_t cblock, bint wide, int tid,
                        Py_ssize_t acc_stride) noexcept nogil:
    # Positions [p0, p1) of block kb of group gi's output channels, image n.
    cdef:
        Py_ssize_t k0 = kb * lanes
        Py_ssize_t taps = g.FD * g.FH * g.FW
        floating *yk = y + (n * g.K + gi * g.Kg + k0) * P
        const floating *xg = src + (n * g.C + gi * g.Cg) * cs
        const floating *wk = wb + (gi * kblocks + kb) * width
        floating *at = acc + tid * acc_stride
        Py_ssize_t nk = _min(lanes, g.Kg - k0)
    if floating is float:
        if wide:
            pcn_blk_forward_f(yk, P, nk, xg, cs, ss, rs, g.Cg, wk, wk + g.Cg * taps * lanes,
                              d, p0, p1, at, cblock)
        else:
            pcn_blk_forward_narrow_f(yk, P, nk, xg, cs, ss, rs, g.Cg, wk,
                                     wk + g.Cg * taps * lanes, d, p0, p1, at, cblock)
    else:
        if wide:
            pcn_blk_forward_d(yk, P, nk, xg, cs, ss, rs, g.Cg, wk, wk + g.Cg * taps * lanes,
                              d, p0, p1, at, cblock)
        else:
            pcn_blk_forward_narrow_d(yk, P, nk, xg, cs, ss, rs, g.Cg, wk,
                                     wk + g.Cg * taps * lanes, d, p0, p1, at, cblock)


def blocked_forward(const floating[:, :, :, :, ::1] x,    # IN  (N, C, D, H, W)
                    const floating[:, :, :, :, ::1] w,    # IN  (K, C/G, FD, FH, FW)
                    const floating[::1] bias,             # IN  (K,) or None
                    floating[:, :, :, :, ::1] y,          # OUT (N, K, OD, OH, OW)
                    tuple stride, tuple pad, tuple dilation, Py_ssize_t groups,
                    Py_ssize_t bands, Py_ssize_t cblock, Py_ssize_t kgroup, bint wide,
                    int n_threads):
    """Forward pass by the register-blocked direct loops, one task per
    (image, group, block of output channels, band of output positions); a
    padded layer's input is first copied with its padding (one task per
    plane). A task runs ``kgroup`` blocks of output channels one after the
    other over its band, which the first brings into cache for the others;
    each pass over a band takes ``cblock`` input channels; blocks of output
    channels are 128 bytes with AVX-512 where ``wide``, else 64."""
    cdef:
        Geom g = _geometry(x.shape, w.shape, y.shape, stride, pad, dilation, groups)
        pcn_window_geom d = _dw_geometry(&g)
        Py_ssize_t N = x.shape[0]
        Py_ssize_t lanes = blocked_lanes(np.float32 if floating is float else np.float64, wide)
        Py_ssize_t kblocks = _ceil_div(g.Kg, lanes)
        Py_ssize_t taps = g.FD * g.FH * g.FW
        Py_ssize_t P = g.OD * g.OH * g.OW
        Py_ssize_t width = (g.Cg * taps + 1) * lanes
        Py_ssize_t band, n_tasks, task, b, kb, gi, n, k0, nk, c, t, k, u, c0, c1, kg, kgroups
        Py_ssize_t cchunks = _ceil_div(g.Cg, 16)
        Py_ssize_t cs, ss, rs
        # a copy where the windows reach outside the input (padding before,
        # or after: 'same' with an even kernel)
        bint padded = (g.pd > 0 or g.ph > 0 or g.pw > 0 or d.PD > g.D or d.PH > g.H
                       or d.PW > g.W)
        floating[:, ::1] wb, acc
        floating[::1] xpad
        const floating *src
        const floating *wsrc = &w[0, 0, 0, 0, 0]
        floating *dst
    band = _ceil_div(P, _max(1, _min(bands, P)))
    bands = _ceil_div(P, band)
    kgroup = _max(1, _min(kgroup, kblocks))
    kgroups = _ceil_div(kblocks, kgroup)
    n_tasks = N * g.G * kgroups * bands
    n_threads = <int>_max(1, _min(n_threads, n_tasks))   # no idle buffers
    cblock = _max(1, cblock)
    dtype = np.float32 if floating is float else np.float64
    with _Scratch() as scratch:
        # weights per (group, block): (taps, Cg, lanes), then the biases
        wb = scratch.array((g.G * kblocks, width), dtype)
        acc = scratch.array((n_threads, (band + PCN_BLK_STRIP) * lanes), dtype)
        with nogil:
            # one task per (group, block, 16 input channels) of the weights:
            # rows of the weights read in order, written within a few KiB
            for task in prange(g.G * kblocks * cchunks, num_threads=n_threads,
                               schedule="static"):
                u = task // cchunks
                c0 = (task % cchunks) * 16
                c1 = _min(g.Cg, c0 + 16)
                gi = u // kblocks
                k0 = (u % kblocks) * lanes
                nk = _min(lanes, g.Kg - k0)
                dst = &wb[u, 0]
                for t in range(taps):
                    memset(dst + (t * g.Cg + c0) * lanes, 0, (c1 - c0) * lanes * sizeof(floating))
                for k in range(nk):
                    for c in range(c0, c1):
                        for t in range(taps):
                            dst[(t * g.Cg + c) * lanes + k] = \
                                wsrc[((gi * g.Kg + k0 + k) * g.Cg + c) * taps + t]
            for u in range(g.G * kblocks):
                gi = u // kblocks
                k0 = (u % kblocks) * lanes
                dst = &wb[u, g.Cg * taps * lanes]
                memset(dst, 0, lanes * sizeof(floating))
                if bias is not None:
                    for k in range(_min(lanes, g.Kg - k0)):
                        dst[k] = bias[gi * g.Kg + k0 + k]
        if padded:
            xpad = scratch.array((N * g.C * d.PD * d.PH * d.PW,), dtype)
            cs, ss, rs = d.PD * d.PH * d.PW, d.PH * d.PW, d.PW
            with nogil:
                for task in prange(N * g.C, num_threads=n_threads, schedule="static"):
                    _pad_plane(&x[0, 0, 0, 0, 0] + task * g.D * g.H * g.W, &xpad[task * cs],
                               &g, &d)
            src = &xpad[0]
        else:
            cs, ss, rs = g.D * g.H * g.W, g.H * g.W, g.W
            src = &x[0, 0, 0, 0, 0]
        with nogil:
            for task in prange(n_tasks, num_threads=n_threads, schedule="dynamic"):
                b = task % bands
                kg = (task // bands) % kgroups
                gi = (task // (bands * kgroups)) % g.G
                n = task // (bands * kgroups * g.G)
                for kb in range(kg * kgroup, _min(kblocks, kg * kgroup + kgroup)):
                    _blocked_task(&y[0, 0, 0, 0, 0], src, &wb[0, 0], &acc[0, 0], &g, &d,
                                  n, gi, kb, kblocks, lanes, width, cs, ss, rs, P,
                                  b * band, _min(P, b * band + band), cblock, wide,
                                  omp_get_thread_num(), acc.shape[1])


# --- pointwise convolution --------------------------------------------------
# A 1x1 kernel with unit stride and no padding reads each input plane as a
# row of the product's right-hand matrix (include/pcn_pointwise.h): no copy
# of the input, strips of positions times blocks of output channels.


def pointwise_shape(dtype):
    """(output channels per block, positions per strip) of the pointwise
    kernel for ``dtype`` on this CPU."""
    return pcn_pw_block(), pcn_pw_strip(np.dtype(dtype) != np.float32)


def pointwise_forward(const floating[:, :, :, :, ::1] x,    # IN  (N, C, D, H, W)
                      const floating[:, :, :, :, ::1] w,    # IN  (K, C/G, 1, 1, 1)
                      const floating[::1] bias,             # IN  (K,) or None
                      floating[:, :, :, :, ::1] y,          # OUT (N, K, D, H, W)
                      Py_ssize_t groups, Py_ssize_t band, Py_ssize_t kgroup,
                      Py_ssize_t chunk, int n_threads):
    """Forward pass of a pointwise layer, one task per (group, band of
    ``band`` strips of positions, counted over the images side by side,
    ``kgroup`` blocks of output channels); a task copies ``chunk`` strips'
    rows at a time."""
    cdef:
        Py_ssize_t N = x.shape[0], C = x.shape[1], K = w.shape[0]
        Py_ssize_t Cg = C // groups, Kg = K // groups
        Py_ssize_t P = x.shape[2] * x.shape[3] * x.shape[4]
        Py_ssize_t KB = pcn_pw_block()
        Py_ssize_t S = pcn_pw_strip(floating is double)
        Py_ssize_t kblocks = _ceil_div(Kg, KB)
        Py_ssize_t strips = _ceil_div(N * P, S)
        Py_ssize_t bands, kgroups, n_tasks, task, b, kg, gi
        floating[:, ::1] buf
    band = _max(1, _min(band, strips))
    bands = _ceil_div(strips, band)
    kgroup = _max(1, _min(kgroup, kblocks))
    kgroups = _ceil_div(kblocks, kgroup)
    n_tasks = groups * bands * kgroups
    n_threads = <int>_max(1, _min(n_threads, n_tasks))
    dtype = np.float32 if floating is float else np.float64
    with _Scratch() as scratch:
        # each thread's copy of a chunk's rows, aligned to 64 bytes, and a
        # row of zeros
        chunk = _max(1, _min(chunk, band))
        buf = scratch.array((n_threads, chunk * Cg * S + Cg + 64), dtype)
        with nogil:
            for task in prange(n_tasks, num_threads=n_threads, schedule="dynamic"):
                kg = task % kgroups
                b = (task // kgroups) % bands
                gi = task // (kgroups * bands)
                _pw_range(&y[0, gi * Kg, 0, 0, 0], K * P, &x[0, gi * Cg, 0, 0, 0], C * P, P,
                          Cg, &w[gi * Kg, 0, 0, 0, 0], NULL if bias is None else &bias[gi * Kg], Kg,
                          kg * kgroup, _min(kblocks, kg * kgroup + kgroup),
                          b * band * S, _min(N * P, (b + 1) * band * S), chunk,
                          &buf[omp_get_thread_num(), 0])


cdef inline void _pw_range(floating *y, Py_ssize_t yn, const floating *x, Py_ssize_t xn,
                           Py_ssize_t P, Py_ssize_t Cg, const floating *w,
                           const floating *bias, Py_ssize_t Kg, Py_ssize_t kb0,
                           Py_ssize_t kb1, Py_ssize_t t0, Py_ssize_t t1, Py_ssize_t chunk,
                           floating *buf) noexcept nogil:
    if floating is float:
        pcn_pw_range_f(y, yn, x, xn, P, Cg, w, bias, Kg, kb0, kb1, t0, t1, chunk, buf)
    else:
        pcn_pw_range_d(y, yn, x, xn, P, Cg, w, bias, Kg, kb0, kb1, t0, t1, chunk, buf)


def implicit_forward(const floating[:, :, :, :, ::1] x,    # IN  (N, C, D, H, W)
                     const floating[:, :, :, :, ::1] w,    # IN  (K, C/G, FD, FH, FW)
                     const floating[::1] bias,             # IN  (K,) or None
                     floating[:, :, :, :, ::1] y,          # OUT (N, K, OD, OH, OW)
                     tuple stride, tuple pad, tuple dilation, Py_ssize_t groups,
                     Py_ssize_t band, Py_ssize_t kgroup, Py_ssize_t chunk, Py_ssize_t rb,
                     int n_threads):
    """Forward pass by the implicit GEMM of include/pcn_pointwise.h, one
    task per (group, band of ``band`` strips of output positions, counted
    over the images side by side, ``kgroup`` blocks of output channels); a
    task builds the columns of ``chunk`` strips at a time, ``rb`` rows per
    pass."""
    cdef:
        Geom g = _geometry(x.shape, w.shape, y.shape, stride, pad, dilation, groups)
        pcn_window_geom d = _dw_geometry(&g)
        Py_ssize_t N = x.shape[0]
        Py_ssize_t P = g.OD * g.OH * g.OW
        Py_ssize_t R = g.Cg * g.FD * g.FH * g.FW
        Py_ssize_t KB = pcn_pw_block()
        Py_ssize_t S = pcn_pw_strip(floating is double)
        Py_ssize_t kblocks = _ceil_div(g.Kg, KB)
        Py_ssize_t strips = _ceil_div(N * P, S)
        Py_ssize_t bands, kgroups, n_tasks, task, b, kg, gi, th
        floating[:, ::1] buf
        Py_ssize_t[:, ::1] idx
    band = _max(1, _min(band, strips))
    bands = _ceil_div(strips, band)
    kgroup = _max(1, _min(kgroup, kblocks))
    kgroups = _ceil_div(kblocks, kgroup)
    chunk = _max(1, _min(chunk, band))
    rb = _max(1, _min(rb, R))
    n_tasks = g.G * bands * kgroups
    n_threads = <int>_max(1, _min(n_threads, n_tasks))
    dtype = np.float32 if floating is float else np.float64
    with _Scratch() as scratch:
        # each thread's columns of a chunk, aligned to 64 bytes, then rb zeros
        buf = scratch.array((n_threads, chunk * rb * S + rb + 64), dtype)
        idx = scratch.array((n_threads, 6 * chunk * S), np.intp)
        with nogil:
            for task in prange(n_tasks, num_threads=n_threads, schedule="dynamic"):
                kg = task % kgroups
                b = (task // kgroups) % bands
                gi = task // (kgroups * bands)
                th = omp_get_thread_num()
                _im_range(&y[0, gi * g.Kg, 0, 0, 0], g.K * P, &x[0, gi * g.Cg, 0, 0, 0],
                          g.C * g.D * g.H * g.W, g.Cg, &d, &w[gi * g.Kg, 0, 0, 0, 0],
                          NULL if bias is None else &bias[gi * g.Kg], g.Kg,
                          kg * kgroup, _min(kblocks, kg * kgroup + kgroup),
                          b * band * S, _min(N * P, (b + 1) * band * S), chunk, rb,
                          &buf[th, 0], &idx[th, 0])


cdef inline void _im_range(floating *y, Py_ssize_t yn, const floating *x, Py_ssize_t xn,
                           Py_ssize_t Cg, const pcn_window_geom *g, const floating *w,
                           const floating *bias, Py_ssize_t Kg, Py_ssize_t kb0,
                           Py_ssize_t kb1, Py_ssize_t t0, Py_ssize_t t1, Py_ssize_t chunk,
                           Py_ssize_t rb, floating *buf, Py_ssize_t *idx) noexcept nogil:
    if floating is float:
        pcn_im_range_f(y, yn, x, xn, Cg, g, w, bias, Kg, kb0, kb1, t0, t1, chunk, rb, buf, idx)
    else:
        pcn_im_range_d(y, yn, x, xn, Cg, g, w, bias, Kg, kb0, kb1, t0, t1, chunk, rb, buf, idx)


def dense_forward(const floating[:, ::1] x,       # IN  (N, R)
                  const floating[:, ::1] w,       # IN  (K, R)
                  const floating[::1] bias,       # IN  (K,) or None
                  floating[:, ::1] y,             # OUT (N, K)
                  Py_ssize_t kblock, int n_threads):
    """y = x w^T + bias for a small fully connected layer, by vector dot
    products, one task per block of ``kblock`` outputs over every image
    (its rows of weights read from cache by all but the first): the
    microseconds of a squeeze-and-excitation gate's work, without a BLAS
    call around them."""
    cdef:
        Py_ssize_t N = x.shape[0], R = x.shape[1], K = w.shape[0], task, kblocks
        Py_ssize_t[::1] off = np.arange(K, dtype=np.intp) * R
        double[::1] acc = np.empty(max(N * K, 1), dtype=np.float64)
    kblock = _max(1, _min(kblock, K))
    kblocks = _ceil_div(K, kblock)
    cdef const floating *bptr = NULL if bias is None else &bias[0]
    n_threads = <int>_max(1, _min(n_threads, kblocks))
    with nogil:
        if n_threads == 1:      # (no parallel region for a gate's microseconds)
            _dense_block(&x[0, 0], &w[0, 0], bptr, &y[0, 0], &acc[0], &off[0], N, R, K,
                         0, K)
        else:
            for task in prange(kblocks, num_threads=n_threads, schedule="static"):
                _dense_block(&x[0, 0], &w[0, 0], bptr, &y[0, 0], &acc[0], &off[0], N, R,
                             K, task * kblock, _min(K, task * kblock + kblock))


cdef void _dense_block(const floating *x, const floating *w, const floating *bias,
                       floating *y, double *acc, const Py_ssize_t *off, Py_ssize_t N,
                       Py_ssize_t R, Py_ssize_t K, Py_ssize_t k0,
                       Py_ssize_t k1) noexcept nogil:
    # outputs [k0, k1) of every image, the block's rows of weights read
    # from cache after the first image
    cdef Py_ssize_t n, k
    for n in range(N):
        for k in range(k0, k1):
            acc[n * K + k] = 0 if bias == NULL else bias[k]
        if R:
            _dots(x + n * R, w, off + k0, k1 - k0, R, acc + n * K + k0)
        for k in range(k0, k1):
            y[n * K + k] = <floating>acc[n * K + k]


cdef inline void _dots(const floating *e, const floating *src, const Py_ssize_t *off,
                       Py_ssize_t n, Py_ssize_t L, double *acc) noexcept nogil:
    if floating is float:
        pcn_dots_f(e, src, off, n, L, acc)
    else:
        pcn_dots_d(e, src, off, n, L, acc)
