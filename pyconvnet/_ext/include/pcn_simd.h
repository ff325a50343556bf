/* Run-time choice of the instruction set of the vector loops.
 *
 * The loops in pcn_*.h are written once as macros and compiled twice on x86
 * with GCC or Clang: for the build's baseline instruction set (x86-64: SSE2)
 * and, with the PCN_AVX2 attribute, for AVX2 with FMA. pcn_simd_init() asks
 * the CPU once (__builtin_cpu_supports) and sets pcn_avx2; every public loop
 * is a small function that calls PCN_PICK(baseline, avx2). With other
 * compilers or CPUs only the baseline exists.
 *
 * One flag per module, read by every call: the choice is explicit, the same
 * for all loops, and reported by pyconvnet._ext._conv.simd(). It needs no
 * support from the loader (target_clones resolves through ELF ifuncs, which
 * only glibc provides).
 */
#ifndef PCN_SIMD_H
#define PCN_SIMD_H

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PCN_DISPATCH 1
#define PCN_AVX2 __attribute__((target("avx2,fma")))
#define PCN_AVX512 __attribute__((target("avx512f,avx2,fma")))
#else
#define PCN_DISPATCH 0
#endif
#define PCN_R __restrict

static int pcn_avx2 = 0;
/* AVX-512F as well: only the loops that need 64-byte registers to reach
   the arithmetic peak (the register-blocked convolution) have a version. */
static int pcn_avx512 = 0;

/* Pick the loops for this CPU (call once, at import); returns whether the
   AVX2/FMA versions were picked. */
static int pcn_simd_init(void) {
#if PCN_DISPATCH
    __builtin_cpu_init();
    pcn_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    pcn_avx512 = pcn_avx2 && __builtin_cpu_supports("avx512f");
#endif
    return pcn_avx2;
}

#if PCN_DISPATCH
#define PCN_PICK(f0, f1) (pcn_avx2 ? f1 : f0)
#else
#define PCN_PICK(f0, f1) f0
#endif

#endif
