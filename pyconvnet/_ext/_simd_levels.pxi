# The instruction-set level of a module's vector loops, included in each
# module that uses them: pcn_avx2 and pcn_avx512 are that module's own copy
# of the flags of include/pcn_simd.h, set by its pcn_simd_init() at import.

_SUPPORTED = ("baseline", "avx2", "avx512")[pcn_avx2 + pcn_avx512]


def simd():
    """The instruction set of the vector loops: 'avx512' (AVX2 loops, and
    AVX-512 ones where there are), 'avx2' or 'baseline'."""
    return ("baseline", "avx2", "avx512")[pcn_avx2 + pcn_avx512]


def _limit_simd(level=None):
    """Run this module's vector loops with at most the instruction set
    ``level`` ('baseline', 'avx2', 'avx512'; None: all the CPU supports),
    for tests of every version on one machine. Returns the previous level.
    Not thread-safe: no kernel may be running."""
    global pcn_avx2, pcn_avx512
    levels = ("baseline", "avx2", "avx512")
    previous = simd()
    top = levels.index(_SUPPORTED)
    wanted = top if level is None else min(top, levels.index(level))
    pcn_avx2 = wanted >= 1
    pcn_avx512 = wanted >= 2
    return previous
