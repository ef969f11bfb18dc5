/* ---- portability: the C and C++ dialects, compilers and targets this file builds for -------- */
#ifndef O2S_RESTRICT /* C99's restrict, under the name C++ compilers know it by */
#if defined(__cplusplus)
#define O2S_RESTRICT __restrict
#else
#define O2S_RESTRICT restrict
#endif
#endif
/* O2S_BUILTIN(f): the compiler's built-in f where it has one (gcc, clang), else the library's.
 * A bit cast (memcpy of 4 bytes) or a fused multiply-add is then one instruction at -O0 too, and
 * with -ffreestanding or -fno-builtin, where the plain names become calls (a Cortex-M4 would run
 * newlib's fmaf, software double precision). */
#if defined(__GNUC__)
#define O2S_BUILTIN(f) __builtin_##f
#else
#define O2S_BUILTIN(f) f
#endif
/* O2S_UNROLL(n): unroll the next loop n times (fully, for a loop of n steps) where the compiler
 * takes the hint, so that arrays indexed by its counter can live in registers even at -O2/-Os. */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 8)
#define O2S_PRAGMA(text) _Pragma(#text)
#define O2S_UNROLL(n) O2S_PRAGMA(GCC unroll n)
#else
#define O2S_UNROLL(n)
#endif
/* O2S_UNROLL_CLANG(n): O2S_UNROLL(n) for clang only. Clang keeps a matrix kernel's partial sums in
 * registers (rather than storing them every step) once the loop over a panel's columns is
 * unrolled; gcc keeps them there anyway, and its code is slower unrolled. */
#if defined(__clang__)
#define O2S_UNROLL_CLANG(n) O2S_UNROLL(n)
#else
#define O2S_UNROLL_CLANG(n)
#endif
/* O2S_UNROLL_GCC(n): O2S_UNROLL(n) for gcc only. Before the loop over a panel's columns in the
 * kernels' blocks, with n less than their count: gcc then vectorizes that loop (rather than
 * unrolling it first, which it can't vectorize as well) and unrolls the vector loop where its
 * vectors are narrower than a panel (AVX2's, SSE's), so that the sums stay in registers instead of
 * being stored and loaded every step (LSTM h64, AVX2 variant of gcc -O2: about 80 -> 54 us). */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8
#define O2S_UNROLL_GCC(n) O2S_UNROLL(n)
#else
#define O2S_UNROLL_GCC(n)
#endif
/* O2S_CACHE_ALIGNED: start a static array on a 64-byte line (gcc, clang), as the arena's buffers
 * start on multiples of 64 bytes within it: vector loads and stores then never straddle two lines */
#if defined(__GNUC__)
#define O2S_CACHE_ALIGNED __attribute__((aligned(64)))
#else
#define O2S_CACHE_ALIGNED
#endif
#define O2S_MIN(a, b) ((a) < (b) ? (a) : (b))
#define O2S_MAX(a, b) ((a) > (b) ? (a) : (b))
/* ---- run-time dispatch: the hot code compiled for several x86-64 instruction sets ----------
 * A generic x86-64 build (plain -O2, no -m flags) targets SSE2, while almost every x86-64 CPU in
 * use has AVX2 and FMA, many AVX-512. So o2s_forward, the model's code with every kernel and
 * activation inlined into it, is compiled once per level below (gcc/clang `target` attributes)
 * and each call runs the best one the CPU has. The CPU is asked once (__builtin_cpu_supports);
 * the answer is cached in one static int, written with the same value by whichever calls get
 * there first and read with __atomic builtins (C99 has no atomics; gcc and clang have these in
 * every mode), so there is no data race, and a call costs one load and a direct call more.
 * Not an ifunc: clang 14 exports a static ifunc's symbol (two models would clash at link time)
 * and resolvers run before ThreadSanitizer's runtime is up (an instrumented one crashes).
 * Dispatch needs gcc >= 6 or clang >= 7 on x86-64, compiling C with optimization (at -O0 the
 * variants are not inlined) for a hosted target (the CPU test is in libgcc / compiler-rt); it is
 * off where the build already targets AVX-512F, and with -DO2S_NO_DISPATCH.
 * -DO2S_DISPATCH_PIN=O2S_ISA_AVX2 (or another level) runs that level whatever the CPU (for tests:
 * it must be one the CPU has). */
#define O2S_ISA_BASE 0   /* what the build's flags target (plain x86-64: SSE2) */
#define O2S_ISA_AVX2 1   /* AVX2 and FMA: Haswell (2013) and later, AMD Zen */
#define O2S_ISA_AVX512 2 /* AVX-512F (with FMA): Skylake-SP and later, AMD Zen 4 */
/* the level of the build itself: 0 elsewhere than x86-64 */
#if defined(__AVX512F__)
#define O2S_ISA_BUILD O2S_ISA_AVX512
#elif defined(__AVX2__) && defined(__FMA__)
#define O2S_ISA_BUILD O2S_ISA_AVX2
#else
#define O2S_ISA_BUILD O2S_ISA_BASE
#endif
#if !defined(O2S_NO_DISPATCH) && defined(__x86_64__) && defined(__OPTIMIZE__) && !defined(__cplusplus) \
    && !defined(__AVX512F__) && __STDC_HOSTED__ && !defined(_MSC_VER) && !defined(__INTEL_COMPILER) \
    && ((defined(__clang__) && __clang_major__ >= 7) || (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 6))
#define O2S_DISPATCH 1
/* the best level this CPU has (or the pinned one), asked once */
static int o2s_cpu_isa(void)
{
#if defined(O2S_DISPATCH_PIN)
    return O2S_DISPATCH_PIN;
#else
    static int known; /* 0: not asked yet, else the level + 1 */
    int isa = __atomic_load_n(&known, __ATOMIC_RELAXED) - 1;
    if (isa < 0) {
        __builtin_cpu_init(); /* in case this runs before the constructors (it is idempotent) */
        isa = __builtin_cpu_supports("avx512f") ? O2S_ISA_AVX512
            : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? O2S_ISA_AVX2
            : O2S_ISA_BASE;
        __atomic_store_n(&known, isa + 1, __ATOMIC_RELAXED);
    }
    return isa;
#endif
}
/* O2S_INLINED: a function inlined into each variant, where it is compiled for the variant's level
 * (gcc's flatten would inline it anyway; clang's inlines only the calls the variant itself makes) */
#define O2S_INLINED __attribute__((always_inline)) inline
#else
#define O2S_DISPATCH 0
#define O2S_INLINED
#endif
/* A build that targets AVX-512 itself (-march=native on such a CPU) is tuned by gcc for 256-bit
 * vectors on Intel's server cores; the matrix kernels' 16-wide panels then take two registers
 * each and run at half the rate they have in the AVX-512 variant of a dispatching build
 * (LSTM h64, -O3 -march=native: 44 -> 35 us). Their vectors are 512 bits wide, as there. */
#if O2S_ISA_BUILD == O2S_ISA_AVX512 && !O2S_DISPATCH && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8
#pragma GCC target("prefer-vector-width=512")
#endif
/* O2S_IVDEP: the next loop's iterations are independent (its pointers are restrict already, but
 * gcc and clang do not trust restrict locals: gcc would add a run-time overlap test, which its -O2
 * cost model refuses to vectorize, clang gives up on loops needing more than a few such tests).
 * Clang's hint also asks for vectorization, and warns (-Wpass-failed) where it cannot vectorize
 * (-Oz, some sanitizers): a hint that does not apply is no news, so that warning is off. */
#if defined(__clang__)
#define O2S_IVDEP O2S_PRAGMA(clang loop vectorize(assume_safety))
#pragma clang diagnostic ignored "-Wpass-failed"
#elif defined(__GNUC__) && __GNUC__ >= 8
#define O2S_IVDEP O2S_PRAGMA(GCC ivdep)
#else
#define O2S_IVDEP
#endif
