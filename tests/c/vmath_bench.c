/*
 * vmath_bench.c - speed of templates/c/vmath.c against the C library.
 * Not run by the tests.  Build and run e.g.
 *
 *   gcc -std=c99 -O2 tests/c/vmath_bench.c -o /tmp/vb -lm && /tmp/vb
 *   gcc -std=c99 -O3 -march=native tests/c/vmath_bench.c -o /tmp/vb -lm && /tmp/vb
 *
 * Each kernel is a plain loop y[i] = f(x[i]) over 4096 pseudo-random floats
 * in [-8, 8] (random order, so data-dependent branches, as a compiler may
 * emit for libm or for scalar code, are not predictable); the best of
 * several timed runs is reported in ns per element.
 *
 * Measured (best of 4 runs, shared 2-core AMD EPYC with AVX-512, gcc 12.2,
 * clang 14, glibc 2.36; +-20% run-to-run noise), ns/element:
 *
 *                      expf        sigmoid           tanh        fast
 *                    libm  o2s   libm  o2s       libm  o2s    sigm  tanh
 *   gcc -O2 (scalar)  3.4  4.5    3.3  7.1       11.9  6.9     3.4   3.4
 *   gcc -O3 (SSE2)    3.0  1.3    3.6  1.9       11.7  2.0     1.0   0.6
 *   gcc -O3 native    3.0  0.40   3.4  0.46      12.7  0.57    0.30  0.24
 *   clang -O2         3.0  1.2    4.0  1.7       15.4  2.5     0.83  0.78
 *   clang -O3 native  3.0  0.27   3.0  0.33      11.6  0.41    0.23  0.19
 *
 * (libm sigmoid = 1/(1+expf(-x)).  gcc -O2 does not vectorize this loop,
 * whose count is a run-time value, so it shows the scalar cost.)
 */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <stdio.h>
#include <time.h>

#include "../../templates/c/vmath.c"

#define N 4096

#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

static float xs[N], ys[N];

NOINLINE static void k_libm_exp(float *y, const float *x, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) y[i] = expf(x[i]);
}
NOINLINE static void k_o2s_exp(float *y, const float *x, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) y[i] = o2s_expf(x[i]);
}
NOINLINE static void k_libm_sigmoid(float *y, const float *x, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + expf(-x[i]));
}
NOINLINE static void k_o2s_sigmoid(float *y, const float *x, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) y[i] = o2s_sigmoidf(x[i]);
}
NOINLINE static void k_o2s_fast_sigmoid(float *y, const float *x, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) y[i] = o2s_fast_sigmoidf(x[i]);
}
NOINLINE static void k_libm_tanh(float *y, const float *x, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) y[i] = tanhf(x[i]);
}
NOINLINE static void k_o2s_tanh(float *y, const float *x, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) y[i] = o2s_tanhf(x[i]);
}
NOINLINE static void k_o2s_fast_tanh(float *y, const float *x, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) y[i] = o2s_fast_tanhf(x[i]);
}

typedef void (*kernel_t)(float *, const float *, size_t);
static struct { const char *name; kernel_t k; } kernels[] = {
    { "libm expf", k_libm_exp },
    { "o2s_expf", k_o2s_exp },
    { "libm 1/(1+expf(-x))", k_libm_sigmoid },
    { "o2s_sigmoidf", k_o2s_sigmoid },
    { "o2s_fast_sigmoidf", k_o2s_fast_sigmoid },
    { "libm tanhf", k_libm_tanh },
    { "o2s_tanhf", k_o2s_tanh },
    { "o2s_fast_tanhf", k_o2s_fast_tanh },
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(void)
{
    size_t i, k;
    int rep, trial;
    const int reps = 2000, trials = 7;
    double checksum = 0.0;
    uint32_t seed = 12345u;
    for (i = 0; i < N; ++i) {
        seed = seed * 1664525u + 1013904223u;
        xs[i] = -8.0f + 16.0f * (float)(seed >> 8) * (1.0f / 16777216.0f);
    }
    for (k = 0; k < sizeof kernels / sizeof kernels[0]; ++k) {
        double best = 1e30;
        for (trial = 0; trial < trials; ++trial) {
            double t0 = now(), t;
            for (rep = 0; rep < reps; ++rep) kernels[k].k(ys, xs, N);
            t = (now() - t0) / ((double)reps * N) * 1e9;
            if (t < best) best = t;
            checksum += (double)ys[N / 3];
        }
        printf("%-22s %7.3f ns/element\n", kernels[k].name, best);
    }
    printf("(checksum %g)\n", checksum);
    return 0;
}
