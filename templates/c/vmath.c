/*
 * vmath.c - float32 activation kernels for onnx2src-generated C code.
 *
 * This file is pasted verbatim into every generated .c file (which has already
 * included <math.h>, <stdint.h>, <stddef.h> and <string.h>), so it has no
 * includes of its own and defines only static inline functions (and the two
 * macros they use: for bit casts, and to inline them at -Os too).  It is plain C99 and also compiles as C++11.
 *
 * Why not libm: a loop such as
 *
 *     for (i = 0; i < n; ++i) y[i] = tanhf(x[i]);
 *
 * is not vectorized by gcc or clang without -ffast-math, because expf/tanhf
 * are opaque scalar library calls.  The functions below are branch-free (the
 * only data-dependent choices are bit-mask selects, o2s_vm_sel, which become
 * compare+blend in vector code, and one integer min), use no lookup tables
 * and no library calls (float<->uint32 bit casts go through the compiler's
 * built-in memcpy, plain register moves even at -O0 or with -fno-builtin),
 * and no double precision, so the same loop written with
 * o2s_tanhf() is vectorized by gcc -O3 and clang -O2/-O3, already for
 * baseline SSE2 x86-64.  gcc -O2 (version 12 and later) vectorizes only loops
 * that need neither a scalar epilogue nor a runtime alias check, e.g. an
 * in-place loop over a constant count that is a multiple of 4; other loops
 * stay scalar at gcc -O2 (they still work, just slower).
 *
 * Accurate functions (whole float range, including +-0, +-Inf, NaN; NaN in
 * gives NaN out; see tests/c/vmath_check.c for the measured maximum errors,
 * all a few ulp; inside the subnormal range an ulp is 2^-149):
 *   o2s_expf(x)      e^x.  Overflows to +Inf above ln(FLT_MAX), underflows
 *                    gradually through the subnormals to +0.
 *   o2s_sigmoidf(x)  1/(1+e^-x), computed as e/(1+e) with e = e^x for x < 0,
 *                    so tiny results (down to subnormals) keep relative
 *                    accuracy.  sigmoid(-Inf) = 0, sigmoid(+Inf) = 1.
 *   o2s_tanhf(x)     odd polynomial for |x| < 0.5625 (keeps relative
 *                    accuracy near 0, tanh(-0) = -0), (1-t)/(1+t) with
 *                    t = e^(-2|x|) above; tanh(+-Inf) = +-1.
 *
 * Fast approximations (opt-in; absolute error, not ulp):
 *   o2s_fast_tanhf(x)    rational x*P(x^2)/Q(x^2) for |x| <= 7.1, +-1
 *                        beyond; result within [-1, 1]; max abs error 1.4e-6.
 *   o2s_fast_sigmoidf(x) 0.5 + 0.5*o2s_fast_tanhf(x/2); max abs error 7e-7.
 *   Both are odd/symmetric as the exact functions, map +-Inf to the exact
 *   limits, -0 to -0 (tanh) and NaN to NaN.
 *
 * A compiler may contract a*b+c into fused multiply-adds (e.g. gcc's default
 * -ffp-contract=fast in GNU mode with -march=native); results then differ in
 * the last bit for some inputs but stay within the same error bounds (the
 * tests check both builds).  The routines assume round-to-nearest and no
 * -ffast-math (which could reassociate the Cody-Waite reduction and drop the
 * Inf/NaN handling).
 *
 * The methods are textbook (Cody-Waite reduction plus a minimax polynomial
 * for exp, as in Cephes/SLEEF-style vector libraries); the coefficients were
 * fitted for this file.
 */

/*
 * Bit casts.  memcpy is well defined in C and C++; gcc's and clang's built-in
 * one is a register move even at -O0, -ffreestanding or -fno-builtin, where
 * plain memcpy is a library call.
 */
#if defined(__GNUC__)
#define O2S_VM_MEMCPY __builtin_memcpy
#else
#define O2S_VM_MEMCPY memcpy
#endif
/* Inlined wherever called, also at -Os, whose size heuristics would otherwise call each
 * activation once an element (kws_lstm_ts on a Cortex-M4: 1.21x the -O2 instructions). */
#if defined(__GNUC__)
#define O2S_VM_INLINE __attribute__((always_inline)) static inline
#else
#define O2S_VM_INLINE static inline
#endif

O2S_VM_INLINE uint32_t o2s_vm_f2u(float f)
{
    uint32_t u;
    O2S_VM_MEMCPY(&u, &f, sizeof u);
    return u;
}

O2S_VM_INLINE float o2s_vm_u2f(uint32_t u)
{
    float f;
    O2S_VM_MEMCPY(&f, &u, sizeof f);
    return f;
}

/*
 * cond ? a : b, as a bit blend.  A plain ?: is not used on purpose: gcc turns
 * it into a branch, sinks the work of the unused arm into it or
 * constant-folds the code after a clamp separately for each arm, and then
 * (under the default -ftrapping-math) refuses to if-convert the loop, so it
 * is not vectorized.  Both arms here are always evaluated and combined with
 * and/andnot/or, which vectorizes as compare + blend.
 */
O2S_VM_INLINE float o2s_vm_sel(int cond, float a, float b)
{
    uint32_t m = 0u - (uint32_t)cond;
    return o2s_vm_u2f((o2s_vm_f2u(a) & m) | (o2s_vm_f2u(b) & ~m));
}

/*
 * Core of exp: for x in [-104, 104] (or NaN) returns p and *n with
 * e^x = p * 2^n, p in [0.70, 1.42] (NaN for NaN x).  For other x the
 * results are meaningless but harmless (callers select them away).
 * n = round(x/ln2) is formed with the 1.5*2^23 shifter and read back from the
 * low mantissa bits (no float->int conversion, so no undefined behaviour for
 * any x); r = x - n*ln2 uses a two-part ln2 (Cody-Waite, the high part has 15
 * significant bits so n*ln2_hi is exact); e^r uses a degree-6 polynomial
 * (minimax, relative error 3e-9 on |r| <= ln2/2).
 */
O2S_VM_INLINE float o2s_vm_exp_core(float x, int32_t *n)
{
    const float shifter = 12582912.0f;          /* 0x1.8p23 */
    float t = x * 1.44269502f + shifter;
    int32_t k = (int32_t)(o2s_vm_f2u(t) & 0x7fffffu) - 0x400000;
    float kf = (float)k;
    float r = x - kf * 0.693145752f;            /* ln2_hi = 0x1.62e4p-1 */
    float r2, q;
    r = r - kf * 1.42860677e-6f;                /* ln2_lo = ln2 - ln2_hi */
    r2 = r * r;
    q = 1.38144672e-3f;
    q = q * r + 8.36878084e-3f;
    q = q * r + 4.16683927e-2f;
    q = q * r + 1.66665196e-1f;
    q = q * r + 4.99999940e-1f;
    *n = k;
    return 1.0f + (r + r2 * q);
}

/*
 * e^x.  The core result p*2^n is scaled in two exact power-of-two steps
 * 2^n1 * 2^n2 (n1, n2 in [-75, 75] for |x| <= 104), so results that are
 * subnormal are rounded only once and results above FLT_MAX become +Inf.
 * For |x| > 104 (beyond both the overflow and the underflow threshold) the
 * result is +Inf or +0 by the sign of x.  NaN fails the compare and
 * propagates through the core.
 */
O2S_VM_INLINE float o2s_expf(float x)
{
    uint32_t ux = o2s_vm_f2u(x);
    float a = o2s_vm_u2f(ux & 0x7fffffffu);
    float big = o2s_vm_u2f(((ux >> 31) - 1u) & 0x7f800000u);  /* x<0: 0, else Inf */
    int32_t n;
    float p = o2s_vm_exp_core(x, &n);
    uint32_t m = (uint32_t)(n + 150);           /* 0 .. 300 for |x| <= 104 */
    uint32_t m1 = m >> 1;
    /* 2^n1 with n1 = m1 - 75, 2^n2 with n2 = n - n1 = m - m1 - 75 */
    float res = (p * o2s_vm_u2f((m1 + 52u) << 23)) * o2s_vm_u2f((m - m1 + 52u) << 23);
    return o2s_vm_sel(a > 104.0f, big, res);
}

/* 1/(1+e^-x) = e/(1+e) with e = e^-|x|, taking numerator 1 for x >= 0. */
O2S_VM_INLINE float o2s_sigmoidf(float x)
{
    float e = o2s_expf(o2s_vm_u2f(o2s_vm_f2u(x) | 0x80000000u));   /* e^-|x| */
    float num = o2s_vm_sel(x >= 0.0f, 1.0f, e);
    return num / (1.0f + e);
}

/*
 * tanh.  a = |x|; for a < 0.5625: a + a^3*P(a^2) (minimax, relative error
 * 1.4e-9); otherwise (1-t)/(1+t) with t = e^(-2a), a clamped to 9.5 (where
 * tanh rounds to 1) by an integer min on the bit pattern (so the exp core
 * sees a small argument; NaN takes the polynomial branch instead).  The sign
 * of x is copied back last, which gives tanh(-0) = -0 and an exactly odd
 * function.
 */
O2S_VM_INLINE float o2s_tanhf(float x)
{
    uint32_t ux = o2s_vm_f2u(x);
    uint32_t sign = ux & 0x80000000u;
    int32_t ai = (int32_t)(ux & 0x7fffffffu);
    float a = o2s_vm_u2f((uint32_t)ai);
    float a2 = a * a;
    float q, small, ac, t, large, res;
    int32_t n;
    q = -6.17768848e-3f;
    q = q * a2 + 2.10059825e-2f;
    q = q * a2 - 5.38370796e-2f;
    q = q * a2 + 1.33324489e-1f;
    q = q * a2 - 3.33333135e-1f;
    small = a + (a * a2) * q;
    ai = ai < 0x41180000 ? ai : 0x41180000;     /* min(a, 9.5), as integers */
    ac = o2s_vm_u2f((uint32_t)ai);
    t = o2s_vm_exp_core(-2.0f * ac, &n);
    /* -2ac >= -19, so n >= -28 and a single scaling step is exact */
    t = t * o2s_vm_u2f((uint32_t)(n + 127) << 23);
    large = (1.0f - t) / (1.0f + t);
    res = o2s_vm_sel(a >= 0.5625f, large, small);
    return o2s_vm_u2f(o2s_vm_f2u(res) | sign);
}

/*
 * Fast tanh: a*P(a^2)/Q(a^2) for a = |x| <= 7.1, degrees 3/3 in a^2, fitted
 * for minimum absolute error with the constraint that it stays <= 1; 1 for
 * a > 7.1 (and +Inf); the sign of x is copied back.  NaN fails the compare
 * and propagates through the rational.
 */
O2S_VM_INLINE float o2s_fast_tanhf(float x)
{
    uint32_t ux = o2s_vm_f2u(x);
    float a = o2s_vm_u2f(ux & 0x7fffffffu);
    float u = a * a;
    float p, q, r;
    p = 3.87388718e-6f;
    p = p * u + 2.26501282e-3f;
    p = p * u + 1.22886896e-1f;
    p = p * u + 9.99995232e-1f;
    q = 1.41054450e-4f;
    q = q * u + 2.10161619e-2f;
    q = q * u + 4.56203789e-1f;
    q = q * u + 1.0f;
    r = (a * p) / q;
    r = o2s_vm_sel(a > 7.1f, 1.0f, r);
    return o2s_vm_u2f(o2s_vm_f2u(r) | (ux & 0x80000000u));
}

/* Fast sigmoid: 0.5 + 0.5*fast_tanh(x/2); exactly 0 and 1 at -Inf/+Inf. */
O2S_VM_INLINE float o2s_fast_sigmoidf(float x)
{
    return 0.5f + 0.5f * o2s_fast_tanhf(0.5f * x);
}
