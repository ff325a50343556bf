"""Pooling kernels over a stack of planes.

Every kernel works on a C-contiguous stack of P = N*C planes, each a volume
of shape (D, H, W) stored as one row of ``x[p, (z*H + y)*W + w]`` (2-D
pooling has D = 1, 1-D pooling D = H = 1). Windows are described along each
axis by a table of two rows: ``win[0, o]`` is the first input position of
output ``o``'s window that lies inside the input and ``win[1, o]`` the number
of such positions, taken ``step`` apart (the dilation). The wrapper clips the
padding away when it builds the tables, so padding never enters a kernel and
the same code serves padding, dilation, ceil mode and adaptive bins.

A plane is reduced one output row (od, oh) at a time, in two passes that run
over contiguous memory:

1. the input rows of the window are combined element-wise into a row buffer
   of width W (vectorised loops);
2. the buffer is reduced along W, one window per output column. The columns
   whose window is complete and regular (it starts at ``ow*s - p`` and holds
   ``k`` positions one apart) form the interior ``[lo, hi)`` and are reduced
   by loops specialised for the usual kernel/stride pairs; the edge columns
   go through the tables.

Threads split the planes (static schedule). A thread owns its scratch rows
(``scratch[t]``, picked by thread number) and writes only its own planes, so
no two threads ever touch the same memory, backward scatters included.

``geometry`` holds the integers that describe the geometry (a
``PoolGeometry``, declared with the plane layouts in ``_pool.pxd``).

Small planes (rows of 14 to 56 values, typical deep in a network) would
spend most of their time starting short loops, so two common 2-D layouts
have whole-plane kernels: disjoint 2x2 windows (one fused loop per output
row, no buffer), and stride-1 "same" pooling (k odd, padding (k - 1) / 2),
where the output rows are as wide as the input rows and both passes run as
single flat loops over the plane, the few edge values redone afterwards.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport INFINITY, NAN
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset

from ._openmp cimport omp_get_thread_num


cdef struct Geom:
    Py_ssize_t D, H, W, OD, OH, OW
    Py_ssize_t step_d, step_h, step_w
    Py_ssize_t lo, hi, k, s, p
    Py_ssize_t layout, kh, ph
    const Py_ssize_t *wd     # first[OD] then count[OD]
    const Py_ssize_t *wh
    const Py_ssize_t *ww


cdef Geom _geom(const PoolGeometry *geo, const Py_ssize_t[:, ::1] wd,
                const Py_ssize_t[:, ::1] wh, const Py_ssize_t[:, ::1] ww):
    cdef Geom g
    g.D, g.H, g.W = geo.D, geo.H, geo.W
    g.step_d, g.step_h, g.step_w = geo.step_d, geo.step_h, geo.step_w
    g.lo, g.hi, g.k, g.s, g.p = geo.w_lo, geo.w_hi, geo.w_kernel, geo.w_stride, geo.w_pad
    g.layout, g.kh, g.ph = geo.layout, geo.h_kernel, geo.h_pad
    g.OD, g.OH, g.OW = wd.shape[1], wh.shape[1], ww.shape[1]
    g.wd, g.wh, g.ww = &wd[0, 0], &wh[0, 0], &ww[0, 0]
    return g


cdef inline Py_ssize_t _window_rows(const Geom *g, Py_ssize_t od, Py_ssize_t oh,
                                    Py_ssize_t *rows) noexcept nogil:
    """Offsets of the input rows in the window of output row (od, oh), in
    increasing order; returns how many there are (0 if all padding)."""
    cdef Py_ssize_t a, b, n = 0
    cdef Py_ssize_t fd = g.wd[od], cd = g.wd[g.OD + od]
    cdef Py_ssize_t fh = g.wh[oh], ch = g.wh[g.OH + oh]
    for a in range(cd):
        for b in range(ch):
            rows[n] = ((fd + a * g.step_d) * g.H + fh + b * g.step_h) * g.W
            n += 1
    return n


# --- maximum -----------------------------------------------------------------

cdef inline floating _vmax(floating a, floating b) noexcept nogil:
    # b replaces a when larger or NaN, so a NaN in either operand propagates
    return b if (b > a) | (b != b) else a


cdef inline const floating *_rows_max(const floating *xp, const Py_ssize_t *rows,
                                      Py_ssize_t n, Py_ssize_t W,
                                      floating *buf) noexcept nogil:
    cdef Py_ssize_t i, w
    cdef const floating *r0
    cdef const floating *r1
    cdef const floating *r2
    if n == 1:
        return xp + rows[0]
    r0 = xp + rows[0]
    r1 = xp + rows[1]
    if n == 3:                          # the common 3-row window in one sweep
        r2 = xp + rows[2]
        for w in range(W):
            buf[w] = _vmax(_vmax(r0[w], r1[w]), r2[w])
        return buf
    for w in range(W):
        buf[w] = _vmax(r0[w], r1[w])
    for i in range(2, n):
        r0 = xp + rows[i]
        for w in range(W):
            buf[w] = _vmax(buf[w], r0[w])
    return buf


cdef inline floating _win_max(const floating *src, Py_ssize_t first, Py_ssize_t count,
                              Py_ssize_t step) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating m
    if count == 0:
        return -INFINITY
    m = src[first]
    for j in range(1, count):
        m = _vmax(m, src[first + j * step])
    return m


cdef inline void _cols_max(const floating *src, floating *orow, const Geom *g) noexcept nogil:
    cdef Py_ssize_t ow, i, j, n = g.hi - g.lo, s = g.s, k = g.k, step = g.step_w
    cdef const floating *b = src + g.lo * s - g.p
    cdef floating *o = orow + g.lo
    cdef floating m
    for ow in range(g.lo):
        orow[ow] = _win_max(src, g.ww[ow], g.ww[g.OW + ow], step)
    for ow in range(g.hi, g.OW):
        orow[ow] = _win_max(src, g.ww[ow], g.ww[g.OW + ow], step)
    if step == 1 and k == 2 and s == 2:
        for i in range(n):
            o[i] = _vmax(b[2 * i], b[2 * i + 1])
    elif step == 1 and k == 3 and s == 2:
        for i in range(n):
            o[i] = _vmax(_vmax(b[2 * i], b[2 * i + 1]), b[2 * i + 2])
    elif step == 1 and k == 3 and s == 1:
        for i in range(n):
            o[i] = _vmax(_vmax(b[i], b[i + 1]), b[i + 2])
    elif step == 1 and k == 2 and s == 1:
        for i in range(n):
            o[i] = _vmax(b[i], b[i + 1])
    else:
        for i in range(n):
            m = b[i * s]
            for j in range(1, k):
                m = _vmax(m, b[i * s + j * step])
            o[i] = m


cdef void _max_plane(const floating *xp, floating *op, const Geom *g,
                     floating *buf, Py_ssize_t *rows) noexcept nogil:
    cdef Py_ssize_t od, oh, ow, n
    cdef floating *orow
    cdef const floating *src
    for od in range(g.OD):
        for oh in range(g.OH):
            orow = op + (od * g.OH + oh) * g.OW
            n = _window_rows(g, od, oh, rows)
            if n == 0:
                for ow in range(g.OW):
                    orow[ow] = -INFINITY
                continue
            src = _rows_max(xp, rows, n, g.W, buf)
            _cols_max(src, orow, g)


# With indices, the window maximum must be the first one in row-major order,
# except that NaN beats everything and the last NaN wins (PyTorch's scan
# ``val > max || isnan(val)``). Down a column (rows in increasing order) that
# is a simple scan. Across the columns of a window the row each column's
# candidate came from decides ties, and the comparison must stay free of
# branches and of NaN so that it vectorises: the row buffer holds +inf in
# place of NaN, and a code per column, ``i`` for a number from window row
# ``i`` and ``-1 - i`` for a NaN from it. A candidate from a later column then
# replaces the current best (value ``best``, code ``c``) when
#
#     v > best  or  (v == best and r < c + (c < 0)),
#
# which lets an equal number through only from an earlier row, a NaN through
# over any number (+inf included), and a NaN over a NaN from the same or an
# earlier row (a later flat position). Row codes are small integers held in
# the floating type, so every loop has one element width.

cdef inline floating _sel(bint take, floating a, floating b) noexcept nogil:
    # a select between computed values: a vector blend, never a branch
    return a if take else b


cdef inline bint _later_wins(floating v, floating r, floating best, floating c) noexcept nogil:
    return (v > best) | ((v == best) & (r < c + <floating>(c < 0)))


cdef inline void _rows_argmax(const floating *xp, const Py_ssize_t *rows, Py_ssize_t n,
                              Py_ssize_t W, floating *buf, floating *code) noexcept nogil:
    """Column maxima of the window rows (NaN as +inf) and their row codes."""
    cdef Py_ssize_t i, w
    cdef const floating *r
    cdef floating a, v, ca, cv, c_num, c_nan
    cdef floating inf = INFINITY
    cdef bint take, isnan
    cdef const floating *r1
    cdef const floating *r2
    # Both selects read loaded values only: no branch, so the loops vectorise.
    r = xp + rows[0]
    if n == 3:                      # the common 3-row window in one sweep
        r1 = xp + rows[1]
        r2 = xp + rows[2]
        for w in range(W):
            v = r[w]
            isnan = v != v
            a = _sel(isnan, inf, v)
            ca = _sel(isnan, <floating>-1, <floating>0)
            v = r1[w]
            take = not (v <= a)
            isnan = v != v
            a = _sel(take, _sel(isnan, inf, v), a)
            ca = _sel(take, _sel(isnan, <floating>-2, <floating>1), ca)
            v = r2[w]
            take = not (v <= a)
            isnan = v != v
            buf[w] = _sel(take, _sel(isnan, inf, v), a)
            code[w] = _sel(take, _sel(isnan, <floating>-3, <floating>2), ca)
        return
    for w in range(W):
        v = r[w]
        isnan = v != v
        buf[w] = _sel(isnan, inf, v)
        code[w] = _sel(isnan, <floating>-1, <floating>0)
    for i in range(1, n):
        r = xp + rows[i]
        c_num = <floating>i
        c_nan = <floating>(-1 - i)
        for w in range(W):
            a = buf[w]
            ca = code[w]
            v = r[w]
            take = not (v <= a)         # v > a, or v is NaN (a never is)
            isnan = v != v
            v = _sel(isnan, inf, v)
            cv = _sel(isnan, c_nan, c_num)
            buf[w] = _sel(take, v, a)
            code[w] = _sel(take, cv, ca)


cdef inline void _window_argmax(const floating *buf, const floating *code, floating *orow,
                                floating *oc, floating *oj, const Geom *g,
                                Py_ssize_t ow) noexcept nogil:
    """One window along the row buffer, through the tables."""
    cdef Py_ssize_t j, c, first = g.ww[ow], count = g.ww[g.OW + ow]
    cdef floating best, bc, bj, v, r
    cdef bint take
    if count == 0:
        orow[ow] = -INFINITY
        oj[ow] = -1
        return
    best = buf[first]
    bc = code[first]
    bj = 0
    for j in range(1, count):
        c = first + j * g.step_w
        v = buf[c]
        r = code[c]
        take = _later_wins(v, r, best, bc)
        best = _sel(take, v, best)
        bc = _sel(take, r, bc)
        bj = _sel(take, <floating>j, bj)
    orow[ow] = best
    oc[ow] = bc
    oj[ow] = bj


cdef inline void _cols_argmax(const floating *buf, const floating *code, floating *orow,
                              floating *oc, floating *oj, const Geom *g) noexcept nogil:
    """Window maxima along the row buffer into orow, with the code (oc) and
    the window position (oj; -1 for an empty window) of each."""
    cdef Py_ssize_t ow, i, j
    cdef Py_ssize_t n = g.hi - g.lo, s = g.s, k = g.k, step = g.step_w
    cdef const floating *b = buf + g.lo * s - g.p
    cdef const floating *rb = code + g.lo * s - g.p
    cdef floating *o = orow + g.lo
    cdef floating *tc = oc + g.lo
    cdef floating *tj = oj + g.lo
    cdef floating best, bc, bj, v, r
    cdef bint take
    for ow in range(g.lo):
        _window_argmax(buf, code, orow, oc, oj, g, ow)
    for ow in range(g.hi, g.OW):
        _window_argmax(buf, code, orow, oc, oj, g, ow)
    if step == 1 and k == 2 and s == 2:
        for i in range(n):
            best = b[2 * i]
            bc = rb[2 * i]
            v = b[2 * i + 1]
            r = rb[2 * i + 1]
            take = _later_wins(v, r, best, bc)
            o[i] = _sel(take, v, best)
            tc[i] = _sel(take, r, bc)
            tj[i] = _sel(take, <floating>1, <floating>0)
    elif step == 1 and k == 3 and s == 2:
        for i in range(n):
            best = b[2 * i]
            bc = rb[2 * i]
            v = b[2 * i + 1]
            r = rb[2 * i + 1]
            take = _later_wins(v, r, best, bc)
            best = _sel(take, v, best)
            bc = _sel(take, r, bc)
            bj = _sel(take, <floating>1, <floating>0)
            v = b[2 * i + 2]
            r = rb[2 * i + 2]
            take = _later_wins(v, r, best, bc)
            o[i] = _sel(take, v, best)
            tc[i] = _sel(take, r, bc)
            tj[i] = _sel(take, <floating>2, bj)
    elif step == 1 and k == 3 and s == 1:
        for i in range(n):
            best = b[i]
            bc = rb[i]
            v = b[i + 1]
            r = rb[i + 1]
            take = _later_wins(v, r, best, bc)
            best = _sel(take, v, best)
            bc = _sel(take, r, bc)
            bj = _sel(take, <floating>1, <floating>0)
            v = b[i + 2]
            r = rb[i + 2]
            take = _later_wins(v, r, best, bc)
            o[i] = _sel(take, v, best)
            tc[i] = _sel(take, r, bc)
            tj[i] = _sel(take, <floating>2, bj)
    else:
        for i in range(n):
            best = b[i * s]
            bc = rb[i * s]
            bj = 0
            for j in range(1, k):
                v = b[i * s + j * step]
                r = rb[i * s + j * step]
                take = _later_wins(v, r, best, bc)
                best = _sel(take, v, best)
                bc = _sel(take, r, bc)
                bj = _sel(take, <floating>j, bj)
            o[i] = best
            tc[i] = bc
            tj[i] = bj


cdef void _argmax_plane(const floating *xp, floating *op, int64_t *ip, const Geom *g,
                        floating *buf, floating *code, floating *oc, floating *oj,
                        Py_ssize_t *rows) noexcept nogil:
    cdef Py_ssize_t od, oh, ow, n, row
    cdef floating *orow
    cdef int64_t *irow
    for od in range(g.OD):
        for oh in range(g.OH):
            orow = op + (od * g.OH + oh) * g.OW
            irow = ip + (od * g.OH + oh) * g.OW
            n = _window_rows(g, od, oh, rows)
            if n == 0:
                for ow in range(g.OW):
                    orow[ow] = -INFINITY
                    irow[ow] = -1
                continue
            _rows_argmax(xp, rows, n, g.W, buf, code)
            _cols_argmax(buf, code, orow, oc, oj, g)
            # decode: NaN back in place of +inf, flat index = row offset + column
            for ow in range(g.OW):
                if oj[ow] < 0:
                    irow[ow] = -1
                    continue
                row = <Py_ssize_t>oc[ow]
                if row < 0:
                    row = -1 - row
                    orow[ow] = NAN
                irow[ow] = rows[row] + g.ww[ow] + <Py_ssize_t>oj[ow] * g.step_w


cdef void _max_plane_2x2(const floating *xp, floating *op, const Geom *g) noexcept nogil:
    cdef Py_ssize_t i, j, W = g.W, OW = g.OW
    cdef const floating *r0
    cdef const floating *r1
    cdef floating *o
    for i in range(g.OH):
        r0 = xp + 2 * i * W
        r1 = r0 + W
        o = op + i * OW
        for j in range(OW):     # a chain (a tree of maxima does not vectorise)
            o[j] = _vmax(_vmax(_vmax(r0[2 * j], r0[2 * j + 1]), r1[2 * j]), r1[2 * j + 1])


cdef void _max_plane_same(const floating *xp, floating *op, const Geom *g,
                          floating *v) noexcept nogil:
    """Stride-1 same-size maxima of a plane; ``v`` is a plane of scratch."""
    cdef Py_ssize_t H = g.H, W = g.W, kh = g.kh, ph = g.ph, kw = g.k, pw = g.p
    cdef Py_ssize_t q, a, b, i, oh, n, w, e1, e2, off
    cdef Py_ssize_t lo = ph * W, hi = (H - ph) * W, HW = H * W
    cdef floating *vr
    cdef const floating *r
    # down: interior rows in flat sweeps, the ph edge rows at each end apart
    if hi > lo:
        if kh == 3:
            for q in range(lo, hi):
                v[q] = _vmax(_vmax(xp[q - W], xp[q]), xp[q + W])
        else:
            for q in range(lo, hi):
                v[q] = xp[q - lo]
            for a in range(1, kh):
                off = (a - ph) * W
                for q in range(lo, hi):
                    v[q] = _vmax(v[q], xp[q + off])
    for oh in range(H):
        if lo < hi and ph <= oh < H - ph:
            continue
        # an edge row's window is a run of consecutive rows, usually two
        n = g.wh[H + oh]
        vr = v + oh * W
        r = xp + g.wh[oh] * W
        if n == 2:
            for w in range(W):
                vr[w] = _vmax(r[w], r[w + W])
            continue
        for w in range(W):
            vr[w] = r[w]
        for i in range(1, n):
            for w in range(W):
                vr[w] = _vmax(vr[w], r[i * W + w])
    # across: one flat sweep (its values at the row ends are redone below)
    if HW - pw > pw:
        if kw == 3:
            for q in range(1, HW - 1):
                op[q] = _vmax(_vmax(v[q - 1], v[q]), v[q + 1])
        else:
            for q in range(pw, HW - pw):
                op[q] = v[q - pw]
            for b in range(1, kw):
                for q in range(pw, HW - pw):
                    op[q] = _vmax(op[q], v[q - pw + b])
    # columns [0, e1) and [e2, W) have windows clipped by the padding
    e1 = pw if pw < W else W
    e2 = W - pw if W - pw > e1 else e1
    for w in range(W):
        if e1 <= w < e2:
            continue
        a = g.ww[w]
        n = g.ww[W + w]
        if n == 2:
            for oh in range(H):
                op[oh * W + w] = _vmax(v[oh * W + a], v[oh * W + a + 1])
        else:
            for oh in range(H):
                op[oh * W + w] = _win_max(v + oh * W, a, n, 1)


cdef void _argmax_plane_2x2(const floating *xp, floating *op, int64_t *ip, const Geom *g,
                            floating *oj) noexcept nogil:
    """Disjoint 2x2 windows with indices. The four values of a window, in
    row-major order, are scanned with PyTorch's rule ``v > best or isnan(v)``,
    keeping ``best`` as +inf after a NaN so that it never is NaN itself; the
    position of the winner (0 to 3) is decoded into the flat index, and the
    value reread from the input, after the vectorised sweep."""
    cdef Py_ssize_t i, j, k, idx, W = g.W, OW = g.OW
    cdef const floating *r0
    cdef const floating *r1
    cdef floating *orow
    cdef int64_t *irow
    cdef floating v, best, bj
    cdef floating inf = INFINITY
    cdef bint take
    for i in range(g.OH):
        r0 = xp + 2 * i * W
        r1 = r0 + W
        for j in range(OW):
            v = r0[2 * j]
            best = _sel(v != v, inf, v)
            v = r0[2 * j + 1]
            take = not (v <= best)
            best = _sel(take, _sel(v != v, inf, v), best)
            bj = _sel(take, <floating>1, <floating>0)
            v = r1[2 * j]
            take = not (v <= best)
            best = _sel(take, _sel(v != v, inf, v), best)
            bj = _sel(take, <floating>2, bj)
            v = r1[2 * j + 1]
            take = not (v <= best)
            oj[j] = _sel(take, <floating>3, bj)
        orow = op + i * OW
        irow = ip + i * OW
        for j in range(OW):
            k = <Py_ssize_t>oj[j]
            idx = (2 * i + (k >> 1)) * W + 2 * j + (k & 1)
            irow[j] = idx
            orow[j] = xp[idx]


def max_forward(const floating[:, ::1] x, floating[:, ::1] out, int64_t[:, ::1] indices,
                PoolGeometry geometry, const Py_ssize_t[:, ::1] wd,
                const Py_ssize_t[:, ::1] wh, const Py_ssize_t[:, ::1] ww,
                floating[:, ::1] buf, Py_ssize_t[:, ::1] rows, int n_threads):
    """Window maxima of every plane (and their flat indices when ``indices``
    is not None; -1 where a window holds only padding).

    ``buf`` is per-thread scratch: W values (H*W for the stride-1 layout),
    2*W + 2*OW with indices. Window row numbers must be exact in the
    floating type (below 2**24 rows for float32)."""
    cdef Geom g = _geom(&geometry, wd, wh, ww)
    cdef Py_ssize_t p, t, P = x.shape[0]
    cdef bint with_indices = indices is not None
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            t = omp_get_thread_num()
            if with_indices and g.layout == DISJOINT_2X2:
                _argmax_plane_2x2(&x[p, 0], &out[p, 0], &indices[p, 0], &g, &buf[t, 0])
            elif with_indices:
                _argmax_plane(&x[p, 0], &out[p, 0], &indices[p, 0], &g,
                              &buf[t, 0], &buf[t, g.W], &buf[t, 2 * g.W],
                              &buf[t, 2 * g.W + g.OW], &rows[t, 0])
            elif g.layout == DISJOINT_2X2:
                _max_plane_2x2(&x[p, 0], &out[p, 0], &g)
            elif g.layout == SAME_STRIDE_1:
                _max_plane_same(&x[p, 0], &out[p, 0], &g, &buf[t, 0])
            else:
                _max_plane(&x[p, 0], &out[p, 0], &g, &buf[t, 0], &rows[t, 0])


def scatter_add(const floating[:, ::1] grad, const int64_t[:, ::1] indices,
                floating[:, ::1] out, int n_threads):
    """out[p, indices[p, m]] += grad[p, m] into ``out``, which must be zero
    (fresh zero pages: no sweep to clear it); index -1 is skipped (a window
    of padding only). Returns the number of indices outside [-1, plane
    size), which are skipped too."""
    cdef Py_ssize_t p, m, P = grad.shape[0], M = grad.shape[1], S = out.shape[1]
    cdef Py_ssize_t bad = 0
    cdef int64_t i
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            for m in range(M):
                i = indices[p, m]
                if i < 0 or i >= S:
                    if i != -1:
                        bad += 1
                else:
                    out[p, i] += grad[p, m]
    return bad


# --- average -----------------------------------------------------------------

cdef inline const floating *_rows_sum(const floating *xp, const Py_ssize_t *rows,
                                      Py_ssize_t n, Py_ssize_t W,
                                      floating *buf) noexcept nogil:
    cdef Py_ssize_t i, w
    cdef const floating *r0
    cdef const floating *r1
    cdef const floating *r2
    if n == 1:
        return xp + rows[0]
    r0 = xp + rows[0]
    r1 = xp + rows[1]
    if n == 3:
        r2 = xp + rows[2]
        for w in range(W):
            buf[w] = (r0[w] + r1[w]) + r2[w]
        return buf
    for w in range(W):
        buf[w] = r0[w] + r1[w]
    for i in range(2, n):
        r0 = xp + rows[i]
        for w in range(W):
            buf[w] += r0[w]
    return buf


cdef inline floating _win_sum(const floating *src, Py_ssize_t first, Py_ssize_t count,
                              Py_ssize_t step) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating total = 0
    for j in range(count):
        total = total + src[first + j * step]
    return total


cdef inline void _cols_mean(const floating *src, floating *orow, const Geom *g,
                            floating rowscale, const floating *scalew) noexcept nogil:
    """orow[ow] = (window sum of src) * (rowscale * scalew[ow])."""
    cdef Py_ssize_t ow, i, j, n = g.hi - g.lo, s = g.s, k = g.k, step = g.step_w
    cdef const floating *b = src + g.lo * s - g.p
    cdef const floating *sw = scalew + g.lo
    cdef floating *o = orow + g.lo
    cdef floating total
    for ow in range(g.lo):
        orow[ow] = _win_sum(src, g.ww[ow], g.ww[g.OW + ow], step) * (rowscale * scalew[ow])
    for ow in range(g.hi, g.OW):
        orow[ow] = _win_sum(src, g.ww[ow], g.ww[g.OW + ow], step) * (rowscale * scalew[ow])
    if step == 1 and k == 2 and s == 2:
        for i in range(n):
            o[i] = (b[2 * i] + b[2 * i + 1]) * (rowscale * sw[i])
    elif step == 1 and k == 3 and s == 2:
        for i in range(n):
            o[i] = (b[2 * i] + b[2 * i + 1] + b[2 * i + 2]) * (rowscale * sw[i])
    elif step == 1 and k == 3 and s == 1:
        for i in range(n):
            o[i] = (b[i] + b[i + 1] + b[i + 2]) * (rowscale * sw[i])
    elif step == 1 and k == 2 and s == 1:
        for i in range(n):
            o[i] = (b[i] + b[i + 1]) * (rowscale * sw[i])
    else:
        for i in range(n):
            total = b[i * s]
            for j in range(1, k):
                total = total + b[i * s + j * step]
            o[i] = total * (rowscale * sw[i])


cdef void _mean_plane(const floating *xp, floating *op, const Geom *g,
                      const floating *scaled, const floating *scaleh, const floating *scalew,
                      floating *buf, Py_ssize_t *rows) noexcept nogil:
    cdef Py_ssize_t od, oh, ow, n
    cdef floating *orow
    cdef const floating *src
    for od in range(g.OD):
        for oh in range(g.OH):
            orow = op + (od * g.OH + oh) * g.OW
            n = _window_rows(g, od, oh, rows)
            if n == 0:      # cannot happen with valid tables; stay defined
                for ow in range(g.OW):
                    orow[ow] = 0
                continue
            src = _rows_sum(xp, rows, n, g.W, buf)
            _cols_mean(src, orow, g, scaled[od] * scaleh[oh], scalew)


cdef void _mean_plane_2x2(const floating *xp, floating *op, const Geom *g,
                          floating scaled, const floating *scaleh,
                          const floating *scalew) noexcept nogil:
    cdef Py_ssize_t i, j, W = g.W, OW = g.OW
    cdef const floating *r0
    cdef const floating *r1
    cdef floating *o
    cdef floating rowscale
    for i in range(g.OH):
        r0 = xp + 2 * i * W
        r1 = r0 + W
        o = op + i * OW
        rowscale = scaled * scaleh[i]
        for j in range(OW):
            o[j] = ((r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1])) * (rowscale * scalew[j])


cdef void _mean_plane_same(const floating *xp, floating *op, const Geom *g,
                           const floating *sp, bint scale, floating *v) noexcept nogil:
    """As _max_plane_same with sums, each multiplied by sp[q] (the inverse of
    its divisor) when ``scale`` (the plain window sums otherwise)."""
    cdef Py_ssize_t H = g.H, W = g.W, kh = g.kh, ph = g.ph, kw = g.k, pw = g.p
    cdef Py_ssize_t q, a, b, i, oh, n, w, e1, e2, off
    cdef Py_ssize_t lo = ph * W, hi = (H - ph) * W, HW = H * W
    cdef floating *vr
    cdef const floating *r
    if hi > lo:
        if kh == 3:
            for q in range(lo, hi):
                v[q] = (xp[q - W] + xp[q]) + xp[q + W]
        else:
            for q in range(lo, hi):
                v[q] = xp[q - lo]
            for a in range(1, kh):
                off = (a - ph) * W
                for q in range(lo, hi):
                    v[q] = v[q] + xp[q + off]
    for oh in range(H):
        if lo < hi and ph <= oh < H - ph:
            continue
        n = g.wh[H + oh]
        vr = v + oh * W
        r = xp + g.wh[oh] * W
        if n == 2:
            for w in range(W):
                vr[w] = r[w] + r[w + W]
            continue
        for w in range(W):
            vr[w] = r[w]
        for i in range(1, n):
            for w in range(W):
                vr[w] = vr[w] + r[i * W + w]
    if HW - pw > pw:
        if kw == 3 and scale:
            for q in range(1, HW - 1):
                op[q] = ((v[q - 1] + v[q]) + v[q + 1]) * sp[q]
        elif kw == 3:
            for q in range(1, HW - 1):
                op[q] = (v[q - 1] + v[q]) + v[q + 1]
        else:
            for q in range(pw, HW - pw):
                op[q] = v[q - pw]
            for b in range(1, kw):
                for q in range(pw, HW - pw):
                    op[q] = op[q] + v[q - pw + b]
            if scale:
                for q in range(pw, HW - pw):
                    op[q] = op[q] * sp[q]
    # columns [0, e1) and [e2, W) have windows clipped by the padding
    e1 = pw if pw < W else W
    e2 = W - pw if W - pw > e1 else e1
    for w in range(W):
        if e1 <= w < e2:
            continue
        a = g.ww[w]
        n = g.ww[W + w]
        if n == 2 and scale:
            for oh in range(H):
                q = oh * W + w
                op[q] = (v[oh * W + a] + v[oh * W + a + 1]) * sp[q]
        elif n == 2:
            for oh in range(H):
                op[oh * W + w] = v[oh * W + a] + v[oh * W + a + 1]
        else:
            for oh in range(H):
                q = oh * W + w
                op[q] = _win_sum(v + oh * W, a, n, 1)
                if scale:
                    op[q] = op[q] * sp[q]


def mean_forward(const floating[:, ::1] x, floating[:, ::1] out,
                 PoolGeometry geometry, const Py_ssize_t[:, ::1] wd,
                 const Py_ssize_t[:, ::1] wh, const Py_ssize_t[:, ::1] ww,
                 const floating[::1] scaled, const floating[::1] scaleh,
                 const floating[::1] scalew, const floating[::1] scaleplane,
                 floating[:, ::1] buf, Py_ssize_t[:, ::1] rows, int n_threads):
    """Window sums of every plane times scaled[od] * scaleh[oh] * scalew[ow],
    the inverses of the divisor's factors (``scaleplane`` holds the
    products, for the stride-1 layout). Multiplying by an inverse instead of
    dividing keeps the loops from waiting on the divider, at the cost of an
    extra rounding or two (a few units in the last place)."""
    cdef Geom g = _geom(&geometry, wd, wh, ww)
    cdef Py_ssize_t p, t, P = x.shape[0]
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            t = omp_get_thread_num()
            if g.layout == DISJOINT_2X2:
                _mean_plane_2x2(&x[p, 0], &out[p, 0], &g, scaled[0], &scaleh[0],
                                &scalew[0])
            elif g.layout == SAME_STRIDE_1:
                _mean_plane_same(&x[p, 0], &out[p, 0], &g, &scaleplane[0], True,
                                 &buf[t, 0])
            else:
                _mean_plane(&x[p, 0], &out[p, 0], &g, &scaled[0], &scaleh[0], &scalew[0],
                            &buf[t, 0], &rows[t, 0])


cdef void _mean_backward_plane(const floating *gp, floating *xp, const Geom *g,
                               const floating *scaled, const floating *scaleh,
                               const floating *scalew,
                               floating *buf, Py_ssize_t *rows) noexcept nogil:
    cdef Py_ssize_t od, oh, ow, n, i, j, w, first, count
    cdef const floating *grow
    cdef floating *r
    cdef floating rowscale, v
    memset(xp, 0, g.D * g.H * g.W * sizeof(floating))
    for od in range(g.OD):
        for oh in range(g.OH):
            n = _window_rows(g, od, oh, rows)
            if n == 0:
                continue
            grow = gp + (od * g.OH + oh) * g.OW
            rowscale = scaled[od] * scaleh[oh]
            # Spread the row of gradients along W, then add it to each row.
            memset(buf, 0, g.W * sizeof(floating))
            for ow in range(g.OW):
                v = grow[ow] * (rowscale * scalew[ow])
                first = g.ww[ow]
                count = g.ww[g.OW + ow]
                for j in range(count):
                    buf[first + j * g.step_w] += v
            for i in range(n):
                r = xp + rows[i]
                for w in range(g.W):
                    r[w] += buf[w]


cdef void _mean_backward_plane_2x2(const floating *gp, floating *xp, const Geom *g,
                                   floating scaled, const floating *scaleh,
                                   const floating *scalew) noexcept nogil:
    """Each share written to its 2x2 block (no block overlaps another);
    rows and columns no block covers are zeroed."""
    cdef Py_ssize_t i, j, W = g.W, OW = g.OW, OH = g.OH
    cdef const floating *grow
    cdef floating *r0
    cdef floating *r1
    cdef floating rowscale, v
    for i in range(OH):
        grow = gp + i * OW
        r0 = xp + 2 * i * W
        r1 = r0 + W
        rowscale = scaled * scaleh[i]
        for j in range(OW):
            v = grow[j] * (rowscale * scalew[j])
            r0[2 * j] = v
            r0[2 * j + 1] = v
            r1[2 * j] = v
            r1[2 * j + 1] = v
        if 2 * OW < W:
            memset(r0 + 2 * OW, 0, (W - 2 * OW) * sizeof(floating))
            memset(r1 + 2 * OW, 0, (W - 2 * OW) * sizeof(floating))
    if 2 * OH < g.H:
        memset(xp + 2 * OH * W, 0, (g.H - 2 * OH) * W * sizeof(floating))


cdef void _mean_backward_plane_same(const floating *gp, floating *xp, const Geom *g,
                                    const floating *sp, floating *share,
                                    floating *v) noexcept nogil:
    """With stride 1 and a window centred on its output, position i lies in
    the window of output o exactly when o lies in the window centred on i:
    the gradient is the same clipped window sum, taken over the shares."""
    cdef Py_ssize_t q
    for q in range(g.H * g.W):
        share[q] = gp[q] * sp[q]
    _mean_plane_same(share, xp, g, sp, False, v)


def mean_backward(const floating[:, ::1] grad, floating[:, ::1] out,
                  PoolGeometry geometry, const Py_ssize_t[:, ::1] wd,
                  const Py_ssize_t[:, ::1] wh, const Py_ssize_t[:, ::1] ww,
                  const floating[::1] scaled, const floating[::1] scaleh,
                  const floating[::1] scalew, const floating[::1] scaleplane,
                  floating[:, ::1] buf, Py_ssize_t[:, ::1] rows, int n_threads):
    """Adjoint of mean_forward: each gradient, times its window's scale, is
    added to every input position of the window."""
    cdef Geom g = _geom(&geometry, wd, wh, ww)
    cdef Py_ssize_t p, t, P = grad.shape[0]
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            t = omp_get_thread_num()
            if g.layout == DISJOINT_2X2:
                _mean_backward_plane_2x2(&grad[p, 0], &out[p, 0], &g, scaled[0], &scaleh[0],
                                         &scalew[0])
            elif g.layout == SAME_STRIDE_1:
                _mean_backward_plane_same(&grad[p, 0], &out[p, 0], &g, &scaleplane[0],
                                          &buf[t, 0], &buf[t, g.H * g.W])
            else:
                _mean_backward_plane(&grad[p, 0], &out[p, 0], &g, &scaled[0], &scaleh[0],
                                     &scalew[0], &buf[t, 0], &rows[t, 0])


cdef inline floating _sum(const floating *xp, Py_ssize_t S) noexcept nogil:
    """Sum of S contiguous values in sixteen interleaved partial sums, so
    that the loop vectorises and several vector additions run at once."""
    cdef Py_ssize_t i, l, S16 = S - S % 16
    cdef floating acc[16]
    cdef floating total
    for l in range(16):
        acc[l] = 0
    for i in range(0, S16, 16):
        for l in range(16):
            acc[l] = acc[l] + xp[i + l]
    for l in range(8):                  # fold the partial sums in vector steps
        acc[l] = acc[l] + acc[l + 8]
    for l in range(4):
        acc[l] = acc[l] + acc[l + 4]
    total = (acc[0] + acc[2]) + (acc[1] + acc[3])
    for i in range(S16, S):
        total = total + xp[i]
    return total


def plane_mean(const floating[:, ::1] x, floating[::1] out, int n_threads):
    """out[p] = mean of x[p, :] (global average pooling)."""
    cdef Py_ssize_t p, P = x.shape[0], S = x.shape[1]
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            out[p] = _sum(&x[p, 0], S) / S


def plane_fill(const floating[::1] grad, floating[:, ::1] out, int n_threads):
    """out[p, :] = grad[p] / S: the gradient of plane_mean."""
    cdef Py_ssize_t p, i, P = out.shape[0], S = out.shape[1]
    cdef floating v
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            v = grad[p] / S
            for i in range(S):
                out[p, i] = v


# --- LeNet sub-sampling ------------------------------------------------------

cdef inline void _block_sums(const floating *xp, Py_ssize_t i, Py_ssize_t W,
                             Py_ssize_t fh, Py_ssize_t fw, Py_ssize_t OW,
                             floating *buf, floating *sums, Py_ssize_t *rows) noexcept nogil:
    """sums[j] = sum of the fh x fw block (i, j) of a plane of width W."""
    cdef Py_ssize_t a, j, b
    cdef const floating *src
    cdef floating total
    for a in range(fh):
        rows[a] = (i * fh + a) * W
    src = _rows_sum(xp, rows, fh, W, buf)
    if fw == 2:
        for j in range(OW):
            sums[j] = src[2 * j] + src[2 * j + 1]
    else:
        for j in range(OW):
            total = src[j * fw]
            for b in range(1, fw):
                total = total + src[j * fw + b]
            sums[j] = total


def subsample_forward(const floating[:, ::1] x, floating[:, ::1] out,
                      const floating[::1] beta, const floating[::1] bias,
                      Py_ssize_t W, Py_ssize_t fh, Py_ssize_t fw,
                      floating[:, ::1] buf, Py_ssize_t[:, ::1] rows, int n_threads):
    """out[p, i, j] = beta[c] * (sum of block (i, j) of plane p) + bias[c],
    c = p % C; blocks fh x fw, the planes W wide; ``buf`` (threads, W)."""
    cdef Py_ssize_t p, t, i, j, c, C = beta.shape[0], P = x.shape[0]
    cdef Py_ssize_t OW = W // fw, OH = out.shape[1] // OW
    cdef floating *orow
    cdef floating bt, bs
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            t = omp_get_thread_num()
            c = p % C
            bt = beta[c]
            bs = bias[c]
            for i in range(OH):
                orow = &out[p, i * OW]
                _block_sums(&x[p, 0], i, W, fh, fw, OW, &buf[t, 0], orow, &rows[t, 0])
                for j in range(OW):
                    orow[j] = bt * orow[j] + bs


def subsample_backward(const floating[:, ::1] grad, const floating[:, ::1] x,
                       floating[:, ::1] grad_x, const floating[::1] beta,
                       double[::1] grad_beta, double[::1] grad_bias,
                       Py_ssize_t W, Py_ssize_t fh, Py_ssize_t fw,
                       floating[:, ::1] buf, Py_ssize_t[:, ::1] rows, int n_threads):
    """Gradients of subsample_forward, per plane p (c = p % C):
    grad_x = beta[c] * (grad spread over each block; 0 outside the blocks),
    grad_beta[p] = sum(grad * block sums of x), grad_bias[p] = sum(grad).
    ``buf`` is (threads, 2*W + OW) scratch."""
    cdef Py_ssize_t p, t, i, j, a, b, c, C = beta.shape[0], P = x.shape[0]
    cdef Py_ssize_t S = x.shape[1], H = S // W
    cdef Py_ssize_t OW = W // fw, OH = grad.shape[1] // OW
    cdef const floating *grow
    cdef floating *wide
    cdef floating *sums
    cdef floating *gp
    cdef floating bt, g
    cdef double dot, gsum
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            t = omp_get_thread_num()
            c = p % C
            bt = beta[c]
            wide = &buf[t, W]
            sums = &buf[t, 2 * W]
            gp = &grad_x[p, 0]
            dot = 0
            gsum = 0
            for b in range(OW * fw, W):        # columns no block covers
                wide[b] = 0
            for i in range(OH):
                grow = &grad[p, i * OW]
                _block_sums(&x[p, 0], i, W, fh, fw, OW, &buf[t, 0], sums, &rows[t, 0])
                for j in range(OW):
                    g = grow[j]
                    dot = dot + <double>g * <double>sums[j]
                    gsum = gsum + g
                    for b in range(fw):
                        wide[j * fw + b] = bt * g
                for a in range(fh):
                    memcpy(gp + (i * fh + a) * W, wide, W * sizeof(floating))
            if OH * fh < H:                    # rows no block covers
                memset(gp + OH * fh * W, 0, (H - OH * fh) * W * sizeof(floating))
            grad_beta[p] = dot
            grad_bias[p] = gsum
