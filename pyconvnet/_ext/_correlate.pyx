"""Direct correlation and window normalisation (rank 1 to 3, as 3-D views).

Correlation of ``x`` with a kernel ``w`` over a window of the full output::

    out[i, j, k] = sum_{a, b, c} x[i + a + o0, j + b + o1, k + c + o2] * w[a, b, c]

where ``x`` is taken as zero outside its bounds and ``(o0, o1, o2)`` places
the window (``o = -(kernel size - 1)`` gives the 'full' output's origin).
Lower-rank inputs are passed as 3-D views with leading axes of length one.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from ._common cimport _max, _min
from ._openmp cimport omp_get_thread_num
from ._rowtaps cimport (
    pcn_avx2,
    pcn_avx512,
    pcn_block_rows,
    pcn_block_taps_d,
    pcn_block_taps_f,
    pcn_row_taps_d,
    pcn_row_taps_f,
)
from ._simd cimport pcn_simd_init
from ._window cimport (
    pcn_column_add_d,
    pcn_column_add_f,
    pcn_column_slide_d,
    pcn_column_slide_f,
    pcn_count_nonfinite,
    pcn_inverse_norms_d,
    pcn_inverse_norms_f,
    pcn_scale_scores_d,
    pcn_scale_scores_f,
    pcn_window_sums,
)


# Output elements per task along the last axis: a chunk of this many
# accumulators stays in the L1 cache while the kernel sweeps over it.
cdef enum:
    CHUNK = 2048


# The row loops (include/pcn_rowtaps.h) come in baseline and AVX2/FMA
# versions, the register-blocked ones in AVX-512 too; pick the CPU's once.
pcn_simd_init()
include "_simd_levels.pxi"


cdef inline void row_taps(floating *out, const floating *x, const floating *w,
                          Py_ssize_t ntaps, Py_ssize_t n) noexcept nogil:
    if floating is float:
        pcn_row_taps_f(out, x, w, ntaps, n)
    else:
        pcn_row_taps_d(out, x, w, ntaps, n)


def correlate3d(const floating[:, :, ::1] x,      # IN
                const floating[:, :, ::1] w,      # IN
                floating[:, :, ::1] out,          # OUT
                Py_ssize_t o0, Py_ssize_t o1, Py_ssize_t o2,
                int n_threads):
    cdef:
        Py_ssize_t X0 = x.shape[0], X1 = x.shape[1], X2 = x.shape[2]
        Py_ssize_t K0 = w.shape[0], K1 = w.shape[1], K2 = w.shape[2]
        Py_ssize_t O0 = out.shape[0], O1 = out.shape[1], O2 = out.shape[2]
        Py_ssize_t n_chunks = (O2 + CHUNK - 1) // CHUNK
        Py_ssize_t n_tasks = O0 * O1 * n_chunks
        Py_ssize_t task, row, i, j, a, b, c, k, k0, k1, lo, hi, xi, xj
        const floating *xrow
        const floating *wrow
        floating *orow

    with nogil:
        for task in prange(n_tasks, num_threads=n_threads, schedule="static"):
            row = task // n_chunks
            k0 = (task % n_chunks) * CHUNK
            k1 = _min(k0 + CHUNK, O2)
            i = row // O1
            j = row % O1
            orow = &out[i, j, 0]
            for k in range(k0, k1):
                orow[k] = 0
            # out[k] reads x[k + c + o2]: every tap is in bounds for lo <= k < hi
            lo = _min(_max(k0, -o2), k1)
            hi = _max(_min(k1, X2 - (K2 - 1) - o2), lo)
            for a in range(K0):
                xi = i + a + o0
                if xi < 0 or xi >= X0:
                    continue
                for b in range(K1):
                    xj = j + b + o1
                    if xj < 0 or xj >= X1:
                        continue
                    xrow = &x[xi, xj, 0]
                    wrow = &w[a, b, 0]
                    if hi > lo:
                        row_taps(orow + lo, xrow + lo + o2, wrow, K2, hi - lo)
                    # the edges, where some taps fall outside x
                    for k in range(k0, lo):
                        for c in range(_max(0, -(k + o2)), _min(K2, X2 - k - o2)):
                            orow[k] += wrow[c] * xrow[k + c + o2]
                    for k in range(hi, k1):
                        for c in range(_max(0, -(k + o2)), _min(K2, X2 - k - o2)):
                            orow[k] += wrow[c] * xrow[k + c + o2]


def correlate2d_valid(const floating[:, ::1] x,     # IN  (H, W)
                      const floating[:, ::1] w,     # IN  (kh, kw), kh <= H, kw <= W
                      floating[:, ::1] out,         # OUT (H - kh + 1, W - kw + 1)
                      int n_threads):
    """The 'valid' correlation of a 2-D array, a few output rows at a time
    with their outputs in registers (include/pcn_blocktaps.h); blocks of
    rows go to the threads."""
    cdef:
        Py_ssize_t O0 = out.shape[0], O1 = out.shape[1]
        Py_ssize_t rows = pcn_block_rows()
        Py_ssize_t n_blocks = (O0 + rows - 1) // rows
        Py_ssize_t blk, r
    # Blocks go to whichever thread is free: a thread slowed by another
    # program on its core holds up none of the others.
    with nogil:
        for blk in prange(n_blocks, num_threads=n_threads, schedule="dynamic"):
            r = blk * rows
            if floating is float:
                pcn_block_taps_f(&x[r, 0], x.shape[1], &w[0, 0], w.shape[0], w.shape[1],
                                 &out[r, 0], O1, _min(rows, O0 - r), O1)
            else:
                pcn_block_taps_d(&x[r, 0], x.shape[1], &w[0, 0], w.shape[0], w.shape[1],
                                 &out[r, 0], O1, _min(rows, O0 - r), O1)


def normalize_by_window_norms(
        const floating[:, :, :] x,        # IN  (D, H, W) values under the windows
        Py_ssize_t kd, Py_ssize_t kh, Py_ssize_t kw,
        floating[:, :, :, :] score,       # IN/OUT (T, ...) correlations -> similarities
                                          # (both: the last axis contiguous)
        const double[::1] template_scale, # IN  (T,) 1 / norm of each template
        bint centered, double offset, double flat_tolerance,
        double[:, ::1] work,              # scratch, (n_threads, 5 * W of x)
        int n_threads,
        Py_ssize_t rows_per_band=0):      # 0: chosen here
    """Divide each correlation by the norm of its window and the template's.

    ``score[t, i, j, k]`` belongs to the window ``x[i:i+kd, j:j+kh, k:k+kw]``
    and template ``t``: the window sums are taken once for every template,
    over ``x - offset`` (in double precision, so that an array far from zero
    keeps the precision of its spread). The window's sum s1 and sum of
    squares s2 come from running sums, kept in double precision
    (include/pcn_window.h): down the rows in a buffer of column sums, then
    along each row. Both are recomputed from scratch at the start of every
    band of rows and every ``PCN_REFRESH`` columns, so rounding cannot build
    up. The window's spread is s2 (or s2 - s1**2 / n when centred); windows
    whose spread is at most ``flat_tolerance * s2`` score 0.

    ``rows_per_band`` sets the bands (each band restarts its column sums,
    so a caller normalising one block of rows on one thread passes the
    block's height).

    Returns whether every window sum was finite: where ``x`` holds NaN or
    infinity, or squares beyond double's range, the scores are not right
    (the running sums carry them along) and the caller takes another way.
    """
    if x.strides[2] != sizeof(floating) or score.strides[3] != sizeof(floating):
        raise ValueError("x and score must be contiguous along their last axis")
    cdef:
        Py_ssize_t T = score.shape[0]
        Py_ssize_t D = score.shape[1], H = score.shape[2], W = score.shape[3]
        Py_ssize_t XW = x.shape[2]
        # Bands of rows start their column sums from kd * kh rows: four
        # times kh rows each (measured: 64-row bands cost 1.4x at kh = 128),
        # few enough that every thread has eight.
        Py_ssize_t band = rows_per_band if rows_per_band > 0 else _max(
            32, _min(_max(4 * kh, 64), (D * H + 8 * n_threads - 1) // (8 * n_threads)))
        Py_ssize_t n_bands = (H + band - 1) // band
        # Few bands (1-D input, short images): split the rows into column
        # ranges too, so that every thread has work.
        Py_ssize_t n_parts = 1 if D * n_bands >= 4 * n_threads else (W + CHUNK - 1) // CHUNK
        Py_ssize_t part = (W + n_parts - 1) // n_parts
        Py_ssize_t task, i, j, j0, j1, c0, c1, width, a, b, k, t
        Py_ssize_t nonfinite = 0
        double inv_count = 1.0 / <double>(kd * kh * kw)
        double *col1
        double *col2
        double *s1
        double *s2
        floating *inv

    with nogil, parallel(num_threads=n_threads):
        col2 = &work[omp_get_thread_num(), 0]
        s2 = col2 + XW
        inv = <floating *> (s2 + XW)
        # the cosine needs the sums of squares alone (NULL: none of the
        # plain sums; the spreads then read s2 in place of s1)
        col1 = s2 + 2 * XW if centered else NULL
        s1 = col1 + XW if centered else s2
        # bands to whichever thread is free (see correlate2d_valid)
        for task in prange(D * n_bands * n_parts, schedule="dynamic"):
            c0 = (task % n_parts) * part
            c1 = _min(c0 + part, W)
            width = c1 - c0 + kw - 1
            i = task // n_parts // n_bands
            j0 = (task // n_parts % n_bands) * band
            j1 = _min(j0 + band, H)
            for j in range(j0, j1):
                if j == j0:
                    for k in range(width):
                        col2[k] = 0
                    if centered:
                        for k in range(width):
                            col1[k] = 0
                    for a in range(kd):
                        for b in range(kh):
                            if floating is float:
                                pcn_column_add_f(col1, col2, &x[i + a, j + b, c0], offset, width)
                            else:
                                pcn_column_add_d(col1, col2, &x[i + a, j + b, c0], offset, width)
                else:
                    # slide the column sums down one row
                    for a in range(kd):
                        if floating is float:
                            pcn_column_slide_f(col1, col2, &x[i + a, j + kh - 1, c0],
                                               &x[i + a, j - 1, c0], offset, width)
                        else:
                            pcn_column_slide_d(col1, col2, &x[i + a, j + kh - 1, c0],
                                               &x[i + a, j - 1, c0], offset, width)
                pcn_window_sums(col1, col2, kw, c1 - c0, s1 if centered else NULL, s2)
                nonfinite += pcn_count_nonfinite(s2, c1 - c0)
                if floating is float:
                    pcn_inverse_norms_f(s1, s2, c1 - c0, inv_count, centered,
                                        flat_tolerance, inv)
                    for t in range(T):
                        pcn_scale_scores_f(&score[t, i, j, c0], inv,
                                           <float> template_scale[t], c1 - c0)
                else:
                    pcn_inverse_norms_d(s1, s2, c1 - c0, inv_count, centered,
                                        flat_tolerance, inv)
                    for t in range(T):
                        pcn_scale_scores_d(&score[t, i, j, c0], inv, template_scale[t],
                                           c1 - c0)
    return nonfinite == 0
