#include "core/perf.h"
#include "core/timer.h"
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define JL_X86 1
#endif

enum { PROBE_ITERS = 2048, PROBE_RUNS = 24 }; /* ~0.2–0.4 ms a run */

#ifdef JL_X86
/* CHAINS independent accumulators: enough to cover latency × issue width of the multiply-add units (Zen 5's
 * vdpbf16ps needs more than ten in flight). The empty asm keeps the compiler from merging the chains. */
#define CHAINS 20
#define PROBE_BODY(T, ZERO, OP, FLOP_PER_INSN)                                                                       \
    T a0 = ZERO, a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0;             \
    T b0 = a0, b1 = a0, b2 = a0, b3 = a0, b4 = a0, b5 = a0, b6 = a0, b7 = a0, b8 = a0, b9 = a0;               \
    double t = jl_now();                                                                                          \
    for (int i = 0; i < PROBE_ITERS; i++) {                                                                       \
        a0 = OP(a0); a1 = OP(a1); a2 = OP(a2); a3 = OP(a3); a4 = OP(a4);                                          \
        a5 = OP(a5); a6 = OP(a6); a7 = OP(a7); a8 = OP(a8); a9 = OP(a9);                                          \
        b0 = OP(b0); b1 = OP(b1); b2 = OP(b2); b3 = OP(b3); b4 = OP(b4);                                          \
        b5 = OP(b5); b6 = OP(b6); b7 = OP(b7); b8 = OP(b8); b9 = OP(b9);                                          \
        __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7),  \
                         "+v"(a8), "+v"(a9));                                                                     \
        __asm__ volatile("" : "+v"(b0), "+v"(b1), "+v"(b2), "+v"(b3), "+v"(b4), "+v"(b5), "+v"(b6), "+v"(b7),  \
                         "+v"(b8), "+v"(b9));                                                                     \
    }                                                                                                             \
    t = jl_now() - t;                                                                                             \
    *sink = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + b0 + b1 + b2 + b3 + b4 + b5 + b6 + b7 + b8 + b9;  \
    return (double)PROBE_ITERS * CHAINS * FLOP_PER_INSN / t / 1e9;

__attribute__((target("avx512f"))) static double run_fp32_512(__m512 *sink) {
    const __m512 x = _mm512_set1_ps(1.0f), y = _mm512_set1_ps(0.5f);
#define FMA512(a) _mm512_fmadd_ps(x, y, a)
    PROBE_BODY(__m512, _mm512_setzero_ps(), FMA512, 32)
}

__attribute__((target("avx2,fma"))) static double run_fp32_256(__m256 *sink) {
    const __m256 x = _mm256_set1_ps(1.0f), y = _mm256_set1_ps(0.5f);
#define FMA256(a) _mm256_fmadd_ps(x, y, a)
    PROBE_BODY(__m256, _mm256_setzero_ps(), FMA256, 16)
}

__attribute__((target("avx512f,avx512bf16"))) static double run_bf16_512(__m512 *sink) {
    const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3f00);
#define DPBF16(a) _mm512_dpbf16_ps(a, x, y)
    PROBE_BODY(__m512, _mm512_setzero_ps(), DPBF16, 64)
}

/* Best of PROBE_RUNS runs of one kind on the calling thread (kind 0: fp32, 1: bf16). */
static double best_run(int kind, int avx512) {
    double best = 0;
    for (int r = 0; r < PROBE_RUNS; r++) {
        double g;
        if (kind == 1) {
            __m512 s;
            g = run_bf16_512(&s);
        } else if (avx512) {
            __m512 s;
            g = run_fp32_512(&s);
        } else {
            __m256 s;
            g = run_fp32_256(&s);
        }
        best = g > best ? g : best;
    }
    return best;
}
#endif

jl_peak jl_peak_probe(void) {
    jl_peak p = {0, 0, omp_get_max_threads()};
#ifdef JL_X86
    __builtin_cpu_init();
    const int avx512 = __builtin_cpu_supports("avx512f"), fma = __builtin_cpu_supports("fma");
    const int bf16 = jl_cpu_has_bf16();
    double f = 0, b = 0;
#pragma omp parallel reduction(+ : f, b)
    {
        if (avx512 || fma) f += best_run(0, avx512);
        if (bf16) b += best_run(1, 1);
    }
    p.fp32 = f;
    p.bf16 = b;
#endif
    return p;
}

double jl_peak_for(const jl_peak *p, jl_precision prec) { return prec == JL_PREC_BF16 ? p->bf16 : p->fp32; }

double jl_mfu(double flops_per_s, double peak_gflops) {
    if (!(peak_gflops > 0) || !(flops_per_s > 0)) return 0.0;
    double m = flops_per_s / (peak_gflops * 1e9);
    return m > 1.0 ? 1.0 : m;
}

double jl_matmul_gflops(jl_precision prec, int blas, int repeats) {
    const int M = 1024, K = 768, N = 2304;
    float *a = malloc(sizeof(float) * (size_t)M * K), *b = malloc(sizeof(float) * (size_t)K * N);
    float *c = malloc(sizeof(float) * (size_t)M * N);
    if (!a || !b || !c) {
        free(a); free(b); free(c);
        return -1.0;
    }
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)(i % 7) * 0.01f;
    for (size_t i = 0; i < (size_t)K * N; i++) b[i] = (float)(i % 5) * 0.01f;
    jl_precision was = jl_matmul_set_precision(prec);
    double best = 1e30;
    for (int r = 0; r < (repeats > 0 ? repeats : 1) + 1; r++) { /* the first run warms up */
        double t = jl_now();
        if (blas) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
        else jl_matmul_forward(c, a, b, NULL, M, K, N);
        t = jl_now() - t;
        if (r > 0 && t < best) best = t;
    }
    jl_matmul_set_precision(was);
    free(a); free(b); free(c);
    return 2.0 * M * N * K / best / 1e9;
}

double jl_sgemm_gflops(int repeats) { return jl_matmul_gflops(JL_PREC_FP32, 1, repeats); }

const char *jl_blas_core(void) { return openblas_get_corename(); }
