# Window norms of the similarity maps (include/pcn_window.h): column sums,
# window sums and the scaling of the scores, one row of windows at a time.
cdef extern from "pcn_window.h":
    void pcn_column_add_f(double *c1, double *c2, const float *x, double offset,
                          Py_ssize_t n) noexcept nogil
    void pcn_column_add_d(double *c1, double *c2, const double *x, double offset,
                          Py_ssize_t n) noexcept nogil
    void pcn_column_slide_f(double *c1, double *c2, const float *add, const float *sub,
                            double offset, Py_ssize_t n) noexcept nogil
    void pcn_column_slide_d(double *c1, double *c2, const double *add, const double *sub,
                            double offset, Py_ssize_t n) noexcept nogil
    Py_ssize_t pcn_count_nonfinite(const double *s, Py_ssize_t n) noexcept nogil
    void pcn_window_sums(const double *c1, const double *c2, Py_ssize_t kw, Py_ssize_t n,
                         double *s1, double *s2) noexcept nogil
    void pcn_inverse_norms_f(const double *s1, const double *s2, Py_ssize_t n,
                             double inv_count, int centered, double tolerance,
                             float *inv) noexcept nogil
    void pcn_inverse_norms_d(const double *s1, const double *s2, Py_ssize_t n,
                             double inv_count, int centered, double tolerance,
                             double *inv) noexcept nogil
    void pcn_scale_scores_f(float *score, const float *inv, float scale,
                            Py_ssize_t n) noexcept nogil
    void pcn_scale_scores_d(double *score, const double *inv, double scale,
                            Py_ssize_t n) noexcept nogil
