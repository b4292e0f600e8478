/* Linear layer: out = inp · wᵀ + bias, with the weight stored (OC, C) as in PyTorch / llm.c. The products
 * go to OpenBLAS; only the bias add and its gradient are our own loops. */
#include "core/kernels.h"
#include "core/parallel.h"
#include <cblas.h>
#include <string.h>

void jl_matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC) {
    if (N <= 0 || OC <= 0) return;
    if (C > 0) /* BLAS would reject (and print about) a leading dimension of 0 */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, w, C, 0.0f, out, OC);
    else
        memset(out, 0, (size_t)N * OC * sizeof *out);
    if (!bias) return;
#pragma omp parallel for schedule(static) if (JL_WORTH_THREADS((size_t)N * OC))
    for (int n = 0; n < N; n++) {
        float *row = out + (size_t)n * OC;
#pragma omp simd
        for (int o = 0; o < OC; o++) row[o] += bias[o];
    }
}

/* dbias(OC) += Σₙ dout(n, ·). Threads own disjoint column blocks and sum rows in order, so the result
 * does not depend on the thread count. */
static void bias_backward(float *dbias, const float *dout, int N, int OC) {
    enum { COLS = 64 };
    int nblocks = (OC + COLS - 1) / COLS;
#pragma omp parallel for schedule(static) if (JL_WORTH_THREADS((size_t)N * OC))
    for (int blk = 0; blk < nblocks; blk++) {
        int o0 = blk * COLS, o1 = o0 + COLS < OC ? o0 + COLS : OC;
        float acc[COLS];
        for (int o = o0; o < o1; o++) acc[o - o0] = 0.0f;
        for (int n = 0; n < N; n++) {
            const float *row = dout + (size_t)n * OC;
#pragma omp simd
            for (int o = o0; o < o1; o++) acc[o - o0] += row[o];
        }
        for (int o = o0; o < o1; o++) dbias[o] += acc[o - o0];
    }
}

void jl_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                        const float *w, int N, int C, int OC) {
    if (N <= 0 || OC <= 0 || C <= 0) return;
    if (dinp) /* dinp(N,C) += dout(N,OC) · w(OC,C) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, w, C, 1.0f, dinp, C);
    if (dw) /* dw(OC,C) += doutᵀ(OC,N) · inp(N,C) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
    if (dbias) bias_backward(dbias, dout, N, OC);
}
