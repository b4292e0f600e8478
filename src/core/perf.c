#include "core/perf.h"
#include "core/timer.h"
#include <cblas.h>
#include <stdlib.h>

double jl_sgemm_gflops(int repeats) {
    const int M = 1024, K = 768, N = 2304;
    float *a = malloc(sizeof(float) * (size_t)M * K), *b = malloc(sizeof(float) * (size_t)K * N);
    float *c = malloc(sizeof(float) * (size_t)M * N);
    if (!a || !b || !c) {
        free(a); free(b); free(c);
        return -1.0;
    }
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)(i % 7) * 0.01f;
    for (size_t i = 0; i < (size_t)K * N; i++) b[i] = (float)(i % 5) * 0.01f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N); /* warm up */
    double best = 1e30;
    for (int r = 0; r < (repeats > 0 ? repeats : 1); r++) {
        double t = jl_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
        t = jl_now() - t;
        if (t < best) best = t;
    }
    free(a); free(b); free(c);
    return 2.0 * M * N * K / best / 1e9;
}

const char *jl_blas_core(void) { return openblas_get_corename(); }
