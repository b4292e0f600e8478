/* Decode-step weight traffic at the 110M llama shape (llama2.c's stories110M: dim 768, 12 layers, MLP 2048,
 * vocab 32000): one token's matrix-vector products over every linear weight (qkv, o, gate+up, down × 12, lm head),
 * fp32 (OpenBLAS sgemv) against q8_0 and q4_0 (our kernels, each path the CPU has). Each layer has its own
 * matrices, so the weights stream from memory as in real decoding. Prints bytes, ms/token, tok/s, GB/s. */
#include "core/rng.h"
#include "core/timer.h"
#include "infer/quant.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

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
        for (jl_qpath p = JL_QPATH_SCALAR; p <= JL_QPATH_AVX512; p++) {
            if (jl_quant_set_path(p) != JL_OK) continue;
            best = 1e9;
            for (int rep = 0; rep < (p == JL_QPATH_SCALAR ? 3 : reps); rep++) {
                double t0 = jl_now();
                for (int i = 0; i < n_mat; i++) jl_qmatmul(y, x, &q[i], NULL, 1, xq);
                double el = jl_now() - t0;
                best = el < best ? el : best;
            }
            printf("%-6s %-7s %9.1f %9.2f %9.1f %8.1f   %.2fx f32\n", jl_qtype_name(types[t]), jl_quant_path_name(p),
                   bytes / 1e6, best * 1e3, 1 / best, bytes / 1e9 / best, f32_best / best);
        }
        for (int i = 0; i < n_mat; i++) jl_qmatrix_free(&q[i]);
    }
    for (int i = 0; i < n_mat; i++) free(w[i]);
    free(x), free(y), free(xq);
    return 0;
}
