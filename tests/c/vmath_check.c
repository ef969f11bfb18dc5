/*
 * vmath_check.c - accuracy check of templates/c/vmath.c against double
 * precision references.
 *
 * usage: vmath_check [STRIDE [PART NPARTS]]
 *
 * Checks special values, then every STRIDE-th float bit pattern of all 2^32
 * (STRIDE = 1 is the exhaustive check; PART/NPARTS splits that sweep into
 * NPARTS contiguous pieces so it can run in parallel processes).  Inputs are
 * evaluated in chunks by plain loops y[i] = f(x[i]), i.e. the vectorized code
 * path when compiled with -O3.
 *
 * Error rule for the accurate functions: the reference is computed in double
 * (exp, tanh, and for sigmoid 1/(1+exp(-x)) for x >= 0, exp(x)/(1+exp(x))
 * below), the error is |y - ref| in units of ulp(ref), where ulp(ref) is the
 * spacing of floats in the binade of |ref| (2^(e-23) for 2^e <= |ref| <
 * 2^(e+1)) and 2^-149 for |ref| below FLT_MIN, so in the subnormal range the
 * error is an absolute error in units of the smallest subnormal.  Beyond the
 * float range, +-Inf results and finite references above 2^128 both count as
 * +-2^128 (so overflowing one ulp early or late costs about 1 ulp).  NaN must
 * map to NaN, an infinite reference (x = +-Inf) must be matched exactly.
 * The fast approximations are measured by absolute error |y - ref|.
 *
 * Prints the maximum error per function (and, for comparison, that of the
 * C library's expf/tanhf/1/(1+expf(-x))) and exits 1 if a limit is exceeded.
 */
#include <math.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <float.h>

#include "../../templates/c/vmath.c"

/*
 * Limits: the exhaustive (stride 1) maxima plus a small margin.  Measured
 * with gcc 12 -O3 (SSE2, vectorized) / -O3 -march=native -ffp-contract=fast
 * (AVX-512 + FMA):
 *   o2s_expf           0.989 / 1.019 ulp  (subnormal results 0.749 ulp)
 *   o2s_sigmoidf       2.402 / 2.402 ulp  (x = -4.1572938)
 *   o2s_tanhf          1.519 / 1.509 ulp
 *   o2s_fast_tanhf     1.36e-6 abs
 *   o2s_fast_sigmoidf  6.84e-7 abs
 * (glibc 2.36 for comparison: expf 0.502 ulp, tanhf 2.189 ulp.)
 */
#define LIMIT_EXP_ULP 1.25
#define LIMIT_SIGMOID_ULP 2.75
#define LIMIT_TANH_ULP 1.75
#define LIMIT_FAST_TANH_ABS 1.5e-6
#define LIMIT_FAST_SIGMOID_ABS 7.5e-7

#define CHUNK 4096
#define FLT_DENORM_MIN_ 1.40129846e-45f /* FLT_TRUE_MIN is C11 */

enum { F_EXP, F_SIGMOID, F_TANH, F_FAST_TANH, F_FAST_SIGMOID,
       F_LIBM_EXP, F_LIBM_SIGMOID, F_LIBM_TANH, NFUNC };

static const char *const fname[NFUNC] = {
    "o2s_expf", "o2s_sigmoidf", "o2s_tanhf", "o2s_fast_tanhf",
    "o2s_fast_sigmoidf", "(libm expf)", "(libm 1/(1+expf(-x)))",
    "(libm tanhf)"
};
/* 1: error in ulp, 0: absolute error */
static const int is_ulp[NFUNC] = { 1, 1, 1, 0, 0, 1, 1, 1 };
/* negative: informational only */
static const double limit[NFUNC] = {
    LIMIT_EXP_ULP, LIMIT_SIGMOID_ULP, LIMIT_TANH_ULP,
    LIMIT_FAST_TANH_ABS, LIMIT_FAST_SIGMOID_ABS, -1, -1, -1
};

typedef struct {
    double max_err;      /* over all inputs */
    float max_x;
    double max_err_sub;  /* inputs whose reference is below FLT_MIN (nonzero) */
    float max_x_sub;
    unsigned long long n, n_over_half, n_bad_special;
} stats_t;

static stats_t st[NFUNC];

/* The array loops, as the generated code writes them: y[i] = F(x[i]). */
#define ARRAY_LOOP(name, F)                                   \
    static void name(float *y, const float *x, size_t n)      \
    {                                                         \
        size_t i;                                             \
        for (i = 0; i < n; ++i) y[i] = F(x[i]);               \
    }
static float libm_sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }
ARRAY_LOOP(run_exp, o2s_expf)
ARRAY_LOOP(run_sigmoid, o2s_sigmoidf)
ARRAY_LOOP(run_tanh, o2s_tanhf)
ARRAY_LOOP(run_fast_tanh, o2s_fast_tanhf)
ARRAY_LOOP(run_fast_sigmoid, o2s_fast_sigmoidf)
ARRAY_LOOP(run_libm_exp, expf)
ARRAY_LOOP(run_libm_sigmoid, libm_sigmoidf)
ARRAY_LOOP(run_libm_tanh, tanhf)

typedef void (*runner_t)(float *, const float *, size_t);
static const runner_t runner[NFUNC] = {
    run_exp, run_sigmoid, run_tanh, run_fast_tanh, run_fast_sigmoid,
    run_libm_exp, run_libm_sigmoid, run_libm_tanh
};

static double ref_exp(float x) { return exp((double)x); }
static double ref_tanh(float x) { return tanh((double)x); }
static double ref_sigmoid(float x)
{
    double d = (double)x;
    if (d >= 0) return 1.0 / (1.0 + exp(-d));
    return exp(d) / (1.0 + exp(d));
}
static double ref_of(int f, float x)
{
    switch (f) {
    case F_EXP: case F_LIBM_EXP: return ref_exp(x);
    case F_TANH: case F_FAST_TANH: case F_LIBM_TANH: return ref_tanh(x);
    default: return ref_sigmoid(x);
    }
}

static float bits2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static uint32_t f2bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* error of y against ref (see the rule at the top); INFINITY = wrong class */
static double error_of(int f, float y, double ref)
{
    double yv;
    if (isnan(ref)) return isnan(y) ? 0.0 : INFINITY;
    if (isnan(y)) return INFINITY;
    if (isinf(ref)) return (double)y == ref ? 0.0 : INFINITY;
    yv = isinf(y) ? copysign(ldexp(1.0, 128), (double)y) : (double)y;
    if (fabs(ref) > ldexp(1.0, 128)) ref = copysign(ldexp(1.0, 128), ref);
    if (is_ulp[f]) {
        double a = fabs(ref), ulp;
        int e;
        if (a < (double)FLT_MIN) {
            ulp = ldexp(1.0, -149);
        } else {
            (void)frexp(a, &e);          /* a in [2^(e-1), 2^e) */
            ulp = ldexp(1.0, e - 24);
        }
        return fabs(yv - ref) / ulp;
    }
    return fabs(yv - ref);
}

static void account(int f, float x, float y)
{
    double ref = ref_of(f, x);
    double err = error_of(f, y, ref);
    stats_t *s = &st[f];
    s->n++;
    if (is_ulp[f] && err > 0.5) s->n_over_half++;
    if (err > s->max_err || (isinf(err) && !isinf(s->max_err))) {
        s->max_err = err;
        s->max_x = x;
    }
    if (ref != 0.0 && fabs(ref) < (double)FLT_MIN && err > s->max_err_sub) {
        s->max_err_sub = err;
        s->max_x_sub = x;
    }
}

/* exact expectations for special inputs (value and sign of zero) */
static int expect_exact(int f, float x, float y, float want)
{
    int ok;
    if (isnan(want)) ok = isnan(y);
    else ok = y == want && (signbit(y) != 0) == (signbit(want) != 0);
    if (!ok) {
        printf("FAIL special: %s(%a) = %a, expected %a\n", fname[f],
               (double)x, (double)y, (double)want);
        st[f].n_bad_special++;
    }
    return ok;
}

static float eval1(int f, float x)
{
    float y;
    runner[f](&y, &x, 1);
    return y;
}

static void check_specials(void)
{
    const float inf = INFINITY;
    const float qnan = bits2f(0x7fc00000u);
    const float nans[4] = {
        bits2f(0x7fc00000u), bits2f(0xffc00000u), bits2f(0x7f800001u),
        bits2f(0xffbfffffu)
    };
    float xs[128];
    float ys[128];
    int nx = 0, f, i;
    /* an assortment of edge inputs, both signs, through the error rule */
    const float edge[] = {
        0.0f, FLT_MIN, FLT_MAX, FLT_DENORM_MIN_, 1e-30f, 1e-7f, 0.5f,
        0.5625f, 0.56249994f, 0.5493061f, 1.0f, 9.0f, 9.5f, 10.0f, 15.0f,
        16.6f, 17.0f, 20.0f, 44.0f, 87.33654f, 88.0f, 88.72283f,
        88.722839f, 88.7229f, 89.0f, 100.0f, 103.27893f, 103.972076f,
        104.0f, 200.0f, 1e10f, 7.5f, 15.0f
    };
    for (i = 0; i < (int)(sizeof edge / sizeof edge[0]); ++i) {
        xs[nx++] = edge[i];
        xs[nx++] = -edge[i];
    }
    for (f = 0; f < NFUNC; ++f) {
        runner[f](ys, xs, (size_t)nx);
        for (i = 0; i < nx; ++i) account(f, xs[i], ys[i]);
    }

    /* exact values required of the o2s functions */
    for (i = 0; i < 4; ++i) {
        for (f = F_EXP; f <= F_FAST_SIGMOID; ++f)
            expect_exact(f, nans[i], eval1(f, nans[i]), qnan);
    }
    expect_exact(F_EXP, 0.0f, eval1(F_EXP, 0.0f), 1.0f);
    expect_exact(F_EXP, -0.0f, eval1(F_EXP, -0.0f), 1.0f);
    expect_exact(F_EXP, inf, eval1(F_EXP, inf), inf);
    expect_exact(F_EXP, -inf, eval1(F_EXP, -inf), 0.0f);
    expect_exact(F_EXP, 100.0f, eval1(F_EXP, 100.0f), inf);
    expect_exact(F_EXP, 88.7229f, eval1(F_EXP, 88.7229f), inf);
    expect_exact(F_EXP, -200.0f, eval1(F_EXP, -200.0f), 0.0f);
    expect_exact(F_EXP, -104.0f, eval1(F_EXP, -104.0f), 0.0f);
    expect_exact(F_EXP, FLT_MAX, eval1(F_EXP, FLT_MAX), inf);
    expect_exact(F_EXP, -FLT_MAX, eval1(F_EXP, -FLT_MAX), 0.0f);
    for (f = F_SIGMOID; f <= F_FAST_SIGMOID; f += F_FAST_SIGMOID - F_SIGMOID) {
        expect_exact(f, 0.0f, eval1(f, 0.0f), 0.5f);
        expect_exact(f, -0.0f, eval1(f, -0.0f), 0.5f);
        expect_exact(f, inf, eval1(f, inf), 1.0f);
        expect_exact(f, -inf, eval1(f, -inf), 0.0f);
        expect_exact(f, FLT_MAX, eval1(f, FLT_MAX), 1.0f);
        expect_exact(f, -FLT_MAX, eval1(f, -FLT_MAX), 0.0f);
        expect_exact(f, 100.0f, eval1(f, 100.0f), 1.0f);
    }
    expect_exact(F_SIGMOID, -200.0f, eval1(F_SIGMOID, -200.0f), 0.0f);
    for (f = F_TANH; f <= F_FAST_TANH; ++f) {
        expect_exact(f, 0.0f, eval1(f, 0.0f), 0.0f);
        expect_exact(f, -0.0f, eval1(f, -0.0f), -0.0f);
        expect_exact(f, inf, eval1(f, inf), 1.0f);
        expect_exact(f, -inf, eval1(f, -inf), -1.0f);
        expect_exact(f, FLT_MAX, eval1(f, FLT_MAX), 1.0f);
        expect_exact(f, -FLT_MAX, eval1(f, -FLT_MAX), -1.0f);
        expect_exact(f, 20.0f, eval1(f, 20.0f), 1.0f);
        expect_exact(f, -20.0f, eval1(f, -20.0f), -1.0f);
    }
    /* tanh of tiny (incl. subnormal) x is x itself */
    expect_exact(F_TANH, FLT_DENORM_MIN_, eval1(F_TANH, FLT_DENORM_MIN_), FLT_DENORM_MIN_);
    expect_exact(F_TANH, -FLT_MIN, eval1(F_TANH, -FLT_MIN), -FLT_MIN);
    expect_exact(F_TANH, 1e-30f, eval1(F_TANH, 1e-30f), 1e-30f);
}

static void sweep(uint64_t stride, uint64_t lo, uint64_t hi)
{
    static float xs[CHUNK], ys[CHUNK];
    uint64_t b = (lo + stride - 1) / stride * stride;
    while (b < hi) {
        size_t n = 0;
        int f;
        size_t i;
        while (n < CHUNK && b < hi) {
            xs[n++] = bits2f((uint32_t)b);
            b += stride;
        }
        for (f = 0; f < NFUNC; ++f) {
            runner[f](ys, xs, n);
            for (i = 0; i < n; ++i) account(f, xs[i], ys[i]);
        }
    }
}

int main(int argc, char **argv)
{
    uint64_t stride = 997, part = 0, nparts = 1, lo, hi;
    int f, fail = 0;
    if (argc > 1) stride = strtoull(argv[1], NULL, 10);
    if (argc > 3) {
        part = strtoull(argv[2], NULL, 10);
        nparts = strtoull(argv[3], NULL, 10);
    }
    if (stride == 0 || nparts == 0 || part >= nparts) {
        fprintf(stderr, "usage: %s [STRIDE [PART NPARTS]]\n", argv[0]);
        return 2;
    }
    lo = (UINT64_C(1) << 32) / nparts * part;
    hi = part + 1 == nparts ? (UINT64_C(1) << 32)
                            : (UINT64_C(1) << 32) / nparts * (part + 1);
    check_specials();
    sweep(stride, lo, hi);

    printf("vmath_check: stride %llu, part %llu/%llu, %llu inputs per function\n",
           (unsigned long long)stride, (unsigned long long)part,
           (unsigned long long)nparts, st[0].n);
    for (f = 0; f < NFUNC; ++f) {
        const stats_t *s = &st[f];
        int bad = limit[f] >= 0 && (!(s->max_err <= limit[f]) || s->n_bad_special);
        if (is_ulp[f])
            printf("%-24s max %.4f ulp at x=%a (%.9g, 0x%08lx); subnormal results: "
                   "max %.4f ulp; >0.5ulp: %llu",
                   fname[f], s->max_err, (double)s->max_x, (double)s->max_x,
                   (unsigned long)f2bits(s->max_x), s->max_err_sub, s->n_over_half);
        else
            printf("%-24s max abs err %.3g at x=%a (%.9g)", fname[f], s->max_err,
                   (double)s->max_x, (double)s->max_x);
        if (limit[f] >= 0)
            printf("; limit %g%s%s\n", limit[f], s->n_bad_special ? "; BAD SPECIALS" : "",
                   bad ? "  FAIL" : "  ok");
        else
            printf("\n");
        fail |= bad;
    }
    printf("vmath_check: %s\n", fail ? "FAIL" : "PASS");
    return fail ? 1 : 0;
}
