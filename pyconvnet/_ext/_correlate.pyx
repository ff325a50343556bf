"""Direct N-d correlation and sliding window sums (rank 1 to 3, as 3-D views).

Correlation of ``x`` with a kernel ``w`` over a window of the full output::

    out[i, j, k] = sum_{a, b, c} x[i + a + o0, j + b + o1, k + c + o2] * w[a, b, c]

where ``x`` is taken as zero outside its bounds and ``(o0, o1, o2)`` places
the window (``o = -(kernel size - 1)`` gives the 'full' output's origin).
Lower-rank inputs are passed as 3-D views with leading axes of length one.
"""
from cython cimport floating
from cython.parallel cimport prange


# Output elements per task along the last axis: a chunk of this many
# accumulators stays in the L1 cache while the kernel sweeps over it.
cdef enum:
    CHUNK = 2048


cdef inline Py_ssize_t _max(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return a if a > b else b


cdef inline Py_ssize_t _min(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return a if a < b else b


def correlate3d(const floating[:, :, ::1] x,      # IN
                const floating[:, :, ::1] w,      # IN
                floating[:, :, ::1] out,          # OUT, zero-filled
                Py_ssize_t o0, Py_ssize_t o1, Py_ssize_t o2,
                int n_threads):
    cdef:
        Py_ssize_t X0 = x.shape[0], X1 = x.shape[1], X2 = x.shape[2]
        Py_ssize_t K0 = w.shape[0], K1 = w.shape[1], K2 = w.shape[2]
        Py_ssize_t O0 = out.shape[0], O1 = out.shape[1], O2 = out.shape[2]
        Py_ssize_t n_chunks = (O2 + CHUNK - 1) // CHUNK
        Py_ssize_t n_tasks = O0 * O1 * n_chunks
        Py_ssize_t task, row, i, j, a, b, c, k, k0, k1, lo, hi, xi, xj, shift
        floating weight
        const floating *xrow
        floating *orow

    with nogil:
        for task in prange(n_tasks, num_threads=n_threads, schedule="static"):
            row = task // n_chunks
            k0 = (task % n_chunks) * CHUNK
            k1 = _min(k0 + CHUNK, O2)
            i = row // O1
            j = row % O1
            orow = &out[i, j, 0]
            for a in range(K0):
                xi = i + a + o0
                if xi < 0 or xi >= X0:
                    continue
                for b in range(K1):
                    xj = j + b + o1
                    if xj < 0 or xj >= X1:
                        continue
                    xrow = &x[xi, xj, 0]
                    for c in range(K2):
                        weight = w[a, b, c]
                        shift = c + o2
                        # out[k] reads x[k + shift]: keep 0 <= k + shift < X2
                        lo = _max(k0, -shift)
                        hi = _min(k1, X2 - shift)
                        for k in range(lo, hi):
                            orow[k] += weight * xrow[k + shift]


def sliding_sum(const double[:, :, ::1] x,   # IN  (outer, length, inner)
                Py_ssize_t width,
                double[:, :, ::1] out,       # OUT (outer, length - width + 1, inner)
                int n_threads):
    """Sum over windows of ``width`` consecutive elements along axis 1.

    A running sum updated by one addition and one subtraction per step,
    recomputed from scratch every ``REFRESH`` steps so that rounding errors
    cannot build up along long axes.
    """
    cdef:
        Py_ssize_t n_outer = x.shape[0], n_inner = x.shape[2]
        Py_ssize_t n_out = out.shape[1]
        Py_ssize_t block = 256
        Py_ssize_t n_blocks = (n_inner + block - 1) // block
        Py_ssize_t REFRESH = 512
        Py_ssize_t task, o, m0, m1, m, t, a
        double s

    with nogil:
        for task in prange(n_outer * n_blocks, num_threads=n_threads,
                           schedule="static"):
            o = task // n_blocks
            m0 = (task % n_blocks) * block
            m1 = _min(m0 + block, n_inner)
            for t in range(n_out):
                if t % REFRESH == 0:
                    for m in range(m0, m1):
                        out[o, t, m] = 0
                    for a in range(width):
                        for m in range(m0, m1):
                            out[o, t, m] += x[o, t + a, m]
                else:
                    for m in range(m0, m1):
                        out[o, t, m] = (out[o, t - 1, m] + x[o, t + width - 1, m]
                                        - x[o, t - 1, m])
