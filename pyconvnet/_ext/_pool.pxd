# What the pooling kernels (_pool.pyx) take besides arrays: the plane
# layout and the geometry of the windows, passed from Python as a dict with
# these keys (Cython converts it; a missing key is a ValueError).

cpdef enum Layout:
    GENERIC = 0         # anything: window tables and row buffers
    DISJOINT_2X2 = 1    # 2-D, every window a complete 2x2 block of its own
    SAME_STRIDE_1 = 2   # 2-D, stride 1, odd kernel, padding (k - 1) / 2, no dilation


cdef struct PoolGeometry:
    # Plane extent (2-D pooling has D = 1, 1-D pooling D = H = 1).
    Py_ssize_t D, H, W
    # Distance between the positions of a window along each axis (dilation).
    Py_ssize_t step_d, step_h, step_w
    # Along W, outputs w_lo <= ow < w_hi have complete regular windows:
    # w_kernel positions one apart from ow * w_stride - w_pad (the interior).
    Py_ssize_t w_lo, w_hi, w_kernel, w_stride, w_pad
    # Kernel size and padding along H (read by the SAME_STRIDE_1 layout).
    Py_ssize_t h_kernel, h_pad
    Layout layout
