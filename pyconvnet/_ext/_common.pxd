# Integer helpers shared by the kernel modules.

cdef inline Py_ssize_t _min(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return a if a < b else b


cdef inline Py_ssize_t _max(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return a if a > b else b


cdef inline Py_ssize_t _ceil_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    # Ceiling of a / b for b > 0 and a of either sign (C division truncates).
    if a >= 0:
        return (a + b - 1) // b
    return -((-a) // b)
