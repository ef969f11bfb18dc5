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
#define O2S_MIN(a, b) ((a) < (b) ? (a) : (b))
#define O2S_MAX(a, b) ((a) > (b) ? (a) : (b))
