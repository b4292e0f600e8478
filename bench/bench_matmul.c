/* The arithmetic yardsticks and the matrix-product kernels, measured in one run:
 * - the peak probe (independent 512-bit FMAs for fp32, vdpbf16ps for bf16) for 1..max threads;
 * - one product at the three orientations of a training step (forward out = x·wᵀ, backward dx = dy·w and
 *   dw = dyᵀ·x; GPT-2's qkv projection over 1024 tokens: 1024×768×2304) through each kernel:
 *   cblas_sgemm (OpenBLAS, core type printed), oneDNN fp32, oneDNN bf16 (the kernels jl_matmul_* use), and
 *   OpenBLAS cblas_sbgemm where the installed OpenBLAS was built with it.
 * - the fp32 linear of batched decoding (jl_matmat_own, src/infer/batch_linear.c) at 1, 4 and 16 rows on the
 *   stories110M decode shapes (qkv 768→2304, o 768→768, gate|up 768→4096, down 2048→768), the weights streamed
 *   from memory as in a decode step (copies rotated, 64 MB or more), beside cblas_sgemm and oneDNN fp32 at the
 *   same shape, and beside the outer-product form the batch does not use yet (issue 13's open idea, measured here
 *   only: packed panels of 16 outputs × k, x[r][k] broadcast, 2 panels × up to 12 rows of accumulators; each output
 *   a sequential sum over k, so row-independent but in another order than jl_matvec_own) (BM_ONLY=decode runs the
 *   probe and this part only).
 * GFLOP/s best of 10 after a warm-up, with the fraction of the probe's peak for the product's precision. */
#include "core/kernels.h"
#include "core/perf.h"
#include "core/half.h"
#include "core/timer.h"
#include "infer/batch.h"
#include <cblas.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <dlfcn.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { M = 1024, K = 768, N = 2304, REPS = 10 };

typedef void (*sbgemm_fn)(int, int, int, int, int, int, float, const uint16_t *, int, const uint16_t *, int, float,
                          float *, int);

typedef struct {
    float *x, *w, *y, *dx, *dw, *dy;
    uint16_t *xb, *wb;
    sbgemm_fn sbgemm;
} bufs;

/* kind 0: forward, 1: dx, 2: dw. kernel 0: cblas_sgemm, 1: jl_matmul (current precision), 2: cblas_sbgemm. */
static void once(bufs *b, int kind, int kernel) {
    if (kernel == 1) {
        if (kind == 0) jl_matmul_forward(b->y, b->x, b->w, NULL, M, K, N);
        else if (kind == 1) jl_matmul_backward(b->dx, NULL, NULL, b->dy, b->x, b->w, M, K, N);
        else jl_matmul_backward(NULL, b->dw, NULL, b->dy, b->x, b->w, M, K, N);
    } else if (kernel == 0) {
        if (kind == 0) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, b->x, K, b->w, K, 0, b->y, N);
        else if (kind == 1)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, K, N, 1, b->dy, N, b->w, K, 1, b->dx, K);
        else cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, K, M, 1, b->dy, N, b->x, K, 1, b->dw, K);
    } else { /* forward only, inputs already bf16 (the conversion is not timed) */
        b->sbgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, b->xb, K, b->wb, K, 0, b->y, N);
    }
}

static double gflops(bufs *b, int kind, int kernel) {
    once(b, kind, kernel);
    double best = 1e30;
    for (int r = 0; r < REPS; r++) {
        double t = jl_now();
        once(b, kind, kernel);
        t = jl_now() - t;
        best = t < best ? t : best;
    }
    return 2.0 * M * N * K / best / 1e9;
}

static float *filled(size_t n, float step) {
    float *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "bench_matmul: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) p[i] = (float)((int)(i % 13) - 6) * step;
    return p;
}


#if defined(__AVX512F__)
/* w (n, k) into panels of 16 outputs: p[(o0 + j)·k ... ] holds, for each column i, w[o0 + j][i] at p[o0·k + 16·i + j]
 * (n a multiple of 16). */
static void pack_panels(const float *w, int k, int n, float *p) {
    for (int o0 = 0; o0 < n; o0 += 16)
        for (int i = 0; i < k; i++)
            for (int j = 0; j < 16; j++) p[(size_t)o0 * k + (size_t)i * 16 + j] = w[(size_t)(o0 + j) * k + i];
}

/* np panels from o0 × nr rows: y[r][o0 + 16q + j] = Σ_i x[r][i]·w[o0 + 16q + j][i], the FMAs in column order. np, nr
 * are constants where outer_tile inlines it. */
__attribute__((always_inline)) static inline void outer_body(const float *p, int k, const float *x, float *y, int n,
                                                             int o0, const int np, const int nr) {
    __m512 a[8][12];
    for (int q = 0; q < np; q++)
        for (int r = 0; r < nr; r++) a[q][r] = _mm512_setzero_ps();
    const float *pp = p + (size_t)o0 * k;
    for (int i = 0; i < k; i++) {
        __m512 w[8];
        for (int q = 0; q < np; q++) w[q] = _mm512_loadu_ps(pp + (size_t)q * 16 * k + (size_t)i * 16);
        for (int r = 0; r < nr; r++) {
            const __m512 xb = _mm512_set1_ps(x[(size_t)r * k + i]);
            for (int q = 0; q < np; q++) a[q][r] = _mm512_fmadd_ps(w[q], xb, a[q][r]);
        }
    }
    for (int q = 0; q < np; q++)
        for (int r = 0; r < nr; r++) _mm512_storeu_ps(y + (size_t)r * n + o0 + 16 * q, a[q][r]);
}

/* y(rows, n) = x·wᵀ from the packed panels, panel pairs shared between the threads: 12, 8 or 4 rows at a time with
 * two panels, a single row with eight (n a multiple of 128 there, 32 else; rows a multiple of 4 or 1). */
static void outer_product(const float *p, int k, int n, const float *x, float *y, int rows) {
    if (rows == 1) {
#pragma omp parallel for schedule(static)
        for (int o0 = 0; o0 < n; o0 += 128) outer_body(p, k, x, y, n, o0, 8, 1);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int o0 = 0; o0 < n; o0 += 32) {
        int r = 0;
        for (; r + 12 <= rows; r += 12) outer_body(p, k, x + (size_t)r * k, y + (size_t)r * n, n, o0, 2, 12);
        for (; r + 8 <= rows; r += 8) outer_body(p, k, x + (size_t)r * k, y + (size_t)r * n, n, o0, 2, 8);
        for (; r + 4 <= rows; r += 4) outer_body(p, k, x + (size_t)r * k, y + (size_t)r * n, n, o0, 2, 4);
    }
}
#endif

/* The batched-decode linear: y(rows, n) = x(rows, k)·wᵀ through kernel 0 (jl_matmat_own), 1 (cblas_sgemm), 2
 * (oneDNN fp32, jl_matmul_forward) or 3 (outer_product over packed copies of the weights), each call on the next of `copies` weight matrices (so the weights come from
 * memory). GFLOP/s of the best call over 10 passes (best of single calls: the shared machine interrupts long runs). */
static double decode_gflops(int kernel, int rows, int k, int n) {
    const size_t wn = (size_t)k * n;
    const int copies = (int)((64u << 20) / (wn * sizeof(float))) + 1;
    float *w = filled(wn * copies, 0.001f), *x = filled((size_t)rows * k, 0.01f), *y = filled((size_t)rows * n, 0);
#if defined(__AVX512F__)
    if (kernel == 3) { /* the packed copies in place of the plain ones */
        float *packed = filled(wn * copies, 0);
        for (int c = 0; c < copies; c++) pack_panels(w + (size_t)c * wn, k, n, packed + (size_t)c * wn);
        free(w);
        w = packed;
    }
#endif
    double best = 1e30;
    for (int rep = 0; rep <= REPS; rep++)
        for (int c = 0; c < copies; c++) {
            const float *wc = w + (size_t)c * wn;
            double t = jl_now();
            if (kernel == 0) jl_matmat_own(y, wc, x, NULL, k, n, rows);
            else if (kernel == 1) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, k, 1, x, k, wc, k, 0, y, n);
            else if (kernel == 2) jl_matmul_forward(y, x, wc, NULL, rows, k, n);
#if defined(__AVX512F__)
            else outer_product(wc, k, n, x, y, rows);
#endif
            t = jl_now() - t;
            if (rep > 0 && t < best) best = t; /* pass 0 warms up */
        }
    free(w);
    free(x);
    free(y);
    return 2.0 * rows * k * n / best / 1e9;
}

int main(void) {
    const int threads = omp_get_max_threads();
    jl_peak peak = {0};
    for (int t = 1; t <= threads; t++) {
        omp_set_num_threads(t);
        peak = jl_peak_probe();
        printf("peak probe, %d thread%s: fp32 %.1f GFLOP/s (FMA), bf16 %.1f GFLOP/s (vdpbf16ps)%s\n", t,
               t > 1 ? "s" : " ", peak.fp32, peak.bf16, jl_cpu_has_bf16() ? "" : " (no bf16 dot products)");
    }
    printf("batched-decode fp32 linear (weights streamed from memory), %d threads, GFLOP/s (fraction of fp32 peak):\n",
           threads);
    const int shapes[4][2] = {{768, 2304}, {768, 768}, {768, 4096}, {2048, 768}}, rowss[3] = {1, 4, 16};
    for (int s = 0; s < 4; s++)
        for (int r = 0; r < 3; r++) {
            const int k = shapes[s][0], n = shapes[s][1], rows = rowss[r];
            jl_matmul_set_precision(JL_PREC_FP32);
            const double own = decode_gflops(0, rows, k, n), blas = decode_gflops(1, rows, k, n),
                         dnnl = decode_gflops(2, rows, k, n);
            printf("  M=%-2d K=%-4d N=%-4d  jl_matmat_own %6.1f (%.2f) | cblas_sgemm %6.1f (%.2f) | oneDNN fp32 %6.1f (%.2f)",
                   rows, k, n, own, own / peak.fp32, blas, blas / peak.fp32, dnnl, dnnl / peak.fp32);
#if defined(__AVX512F__)
            const double outer = decode_gflops(3, rows, k, n);
            printf(" | outer-product panels %6.1f (%.2f)", outer, outer / peak.fp32);
#endif
            printf("\n");
        }
    const char *only = getenv("BM_ONLY");
    if (only && !strcmp(only, "decode")) return 0;
    bufs b = {filled((size_t)M * K, 0.01f), filled((size_t)N * K, 0.02f), filled((size_t)M * N, 0),
              filled((size_t)M * K, 0), filled((size_t)N * K, 0), filled((size_t)M * N, 0.03f), NULL, NULL, NULL};
    b.sbgemm = (sbgemm_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "cblas_sbgemm");
    printf("products %dx%dx%d, %d threads; OpenBLAS core %s; oneDNN fp32 %s, bf16 %s\n", M, K, N, threads,
           jl_blas_core(), jl_matmul_impl(JL_PREC_FP32), jl_matmul_impl(JL_PREC_BF16));
    const char *kinds[3] = {"forward y=x·wᵀ", "backward dx=dy·w", "backward dw=dyᵀ·x"};
    for (int kind = 0; kind < 3; kind++) {
        double s = gflops(&b, kind, 0);
        jl_matmul_set_precision(JL_PREC_FP32);
        double f = gflops(&b, kind, 1);
        jl_matmul_set_precision(JL_PREC_BF16);
        double h = gflops(&b, kind, 1);
        jl_matmul_set_precision(JL_PREC_FP32);
        printf("  %-18s cblas_sgemm %6.1f (%.2f of fp32 peak) | oneDNN fp32 %6.1f (%.2f) | oneDNN bf16 %6.1f "
               "(%.2f of bf16 peak, conversion included) GFLOP/s\n", kinds[kind], s, s / peak.fp32, f,
               f / peak.fp32, h, peak.bf16 > 0 ? h / peak.bf16 : 0);
    }
    if (b.sbgemm) {
        b.xb = malloc((size_t)M * K * 2);
        b.wb = malloc((size_t)N * K * 2);
        if (!b.xb || !b.wb) return 1;
        jl_f32_to_bf16_array(b.x, b.xb, (size_t)M * K);
        jl_f32_to_bf16_array(b.w, b.wb, (size_t)N * K);
        double g = gflops(&b, 0, 2);
        printf("  forward, cblas_sbgemm (bf16 inputs given): %.1f GFLOP/s (%.2f of bf16 peak)\n", g,
               peak.bf16 > 0 ? g / peak.bf16 : 0);
    } else {
        printf("  cblas_sbgemm: not in this OpenBLAS build (Debian's is built without BUILD_BFLOAT16)\n");
    }
    free(b.x); free(b.w); free(b.y); free(b.dx); free(b.dw); free(b.dy); free(b.xb); free(b.wb);
    return 0;
}
