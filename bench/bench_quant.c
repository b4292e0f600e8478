/* Decode-step weight traffic at the 110M llama shape (llama2.c's stories110M: dim 768, 12 layers, MLP 2048,
 * vocab 32000): one token's matrix-vector products over every linear weight (qkv, o, gate+up, down × 12, lm head),
 * fp32 (OpenBLAS sgemv) against q8_0 and q4_0 (our kernels, each path the CPU has). Each layer has its own
 * matrices, so the weights stream from memory as in real decoding. Prints bytes, ms/token, tok/s, GB/s; the
 * AVX-512 path with 1 and 4 groups of 16 rows a step (jl_quant_set_groups); and, on the calling thread in CPU
 * time (what a loaded machine still measures), the one-input kernel with its weights in L1 (32 × 768), L2
 * (768 × 768) and streamed (the 49 matrices), per groups setting. */
#include "core/rng.h"
#include "core/timer.h"
#include "infer/quant.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define L 12
#define C 768
#define H 2048
#define V 32000

typedef struct { int rows, cols; } shape;
static const shape layer_shapes[4] = {{3 * C, C}, {C, C}, {2 * H, C}, {C, H}};

static float *randn(size_t n, jl_rng *r) {
    float *x = malloc(n * sizeof(float));
    if (!x) {
        fprintf(stderr, "bench_quant: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) x[i] = 0.02f * jl_rng_normal(r);
    return x;
}

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* GB/s (CPU time, best of 9) of `reps` one-input products over matrices q[0..n) on this thread; x pre-quantised
 * for C columns (xc) and for H (xh). */
static double kernel_gbs(const jl_qmatrix *q, int n, int reps, const void *xc, const void *xh, float *y) {
    double best = 1e30, bytes = 0;
    for (int i = 0; i < n; i++) bytes += (double)q[i].rows * (double)q[i].row_bytes;
    for (int t = 0; t < 9; t++) {
        const double c0 = thread_cpu_s();
        for (int r = 0; r < reps; r++)
            for (int i = 0; i < n; i++) jl_qmatmul_rows(y, q[i].cols == C ? xc : xh, &q[i], NULL, 1, 0, q[i].rows, 0);
        const double c = thread_cpu_s() - c0;
        best = c < best ? c : best;
    }
    return reps * bytes / 1e9 / best;
}

int main(void) {
    jl_rng r;
    jl_rng_seed(&r, 1);
    const int n_mat = 4 * L + 1;
    float *w[4 * L + 1];
    shape sh[4 * L + 1];
    size_t params = 0;
    for (int i = 0; i < n_mat; i++) {
        sh[i] = i < 4 * L ? layer_shapes[i % 4] : (shape){V, C};
        w[i] = randn((size_t)sh[i].rows * sh[i].cols, &r);
        params += (size_t)sh[i].rows * sh[i].cols;
    }
    float *x = randn(H, &r), *y = malloc(sizeof(float) * V);
    void *xq = malloc(jl_qmatmul_scratch_bytes(1, H));
    const int reps = 20;
    /* fp32 */
    double best = 1e9;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = jl_now();
        for (int i = 0; i < n_mat; i++)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, sh[i].rows, sh[i].cols, 1.0f, w[i], sh[i].cols, x, 1, 0.0f, y, 1);
        double t = jl_now() - t0;
        best = t < best ? t : best;
    }
    printf("110M decode weights: %.1fM params\n", params / 1e6);
    printf("%-6s %-7s %9s %9s %9s %8s\n", "type", "path", "MB", "ms/token", "tok/s", "GB/s");
    printf("%-6s %-7s %9.1f %9.2f %9.1f %8.1f\n", "f32", "sgemv", params * 4 / 1e6, best * 1e3, 1 / best,
           params * 4 / 1e9 / best);
    const double f32_best = best;
    const jl_qtype types[] = {JL_QTYPE_Q8_0, JL_QTYPE_Q4_0};
    for (int t = 0; t < 2; t++) {
        jl_qmatrix q[4 * L + 1];
        size_t bytes = 0;
        for (int i = 0; i < n_mat; i++) {
            if (jl_qmatrix_from_f32(&q[i], types[t], w[i], sh[i].rows, sh[i].cols) != JL_OK) return 1;
            bytes += (size_t)q[i].rows * q[i].row_bytes;
        }
        for (jl_qpath p = JL_QPATH_SCALAR; p <= JL_QPATH_AVX512; p++)
            for (int groups = 4; groups >= (p == JL_QPATH_AVX512 ? 1 : 4); groups -= 3) {
                if (jl_quant_set_path(p) != JL_OK || jl_quant_set_groups(groups) != JL_OK) continue;
                best = 1e9;
                for (int rep = 0; rep < (p == JL_QPATH_SCALAR ? 3 : reps); rep++) {
                    double t0 = jl_now();
                    for (int i = 0; i < n_mat; i++) jl_qmatmul(y, x, &q[i], NULL, 1, xq);
                    double el = jl_now() - t0;
                    best = el < best ? el : best;
                }
                printf("%-6s %-7s %9.1f %9.2f %9.1f %8.1f   %.2fx f32%s\n", jl_qtype_name(types[t]),
                       jl_quant_path_name(p), bytes / 1e6, best * 1e3, 1 / best, bytes / 1e9 / best, f32_best / best,
                       p == JL_QPATH_AVX512 ? (groups == 4 ? "  (4 groups a step)" : "  (1 group a step)") : "");
            }
        if (jl_quant_set_path(JL_QPATH_AVX512) == JL_OK) { /* the one-input kernel alone, this thread, CPU time */
            jl_qmatrix l1, l2;
            if (jl_qmatrix_from_f32(&l1, types[t], w[1], 32, C) != JL_OK ||
                jl_qmatrix_from_f32(&l2, types[t], w[1], C, C) != JL_OK)
                return 1;
            void *xc = malloc(jl_qmatmul_scratch_bytes(1, C));
            if (!xc) return 1;
            jl_qmatmul_quantize(x, 1, C, xc);
            jl_qmatmul_quantize(x, 1, H, xq);
            for (int groups = 1; groups <= 4; groups += 3) {
                jl_quant_set_groups(groups);
                printf("%-6s avx512 %d group%s a step, 1 thread, CPU time: L1 %.1f GB/s, L2 %.1f GB/s, streamed %.1f "
                       "GB/s\n", jl_qtype_name(types[t]), groups, groups > 1 ? "s" : "", kernel_gbs(&l1, 1, 20000, xc, xq, y),
                       kernel_gbs(&l2, 1, 100, xc, xq, y), kernel_gbs(q, n_mat, 1, xc, xq, y));
            }
            jl_quant_set_groups(4);
            free(xc);
            jl_qmatrix_free(&l1);
            jl_qmatrix_free(&l2);
        }
        jl_quant_set_path(JL_QPATH_AUTO);
        for (int i = 0; i < n_mat; i++) jl_qmatrix_free(&q[i]);
    }
    for (int i = 0; i < n_mat; i++) free(w[i]);
    free(x), free(y), free(xq);
    return 0;
}
