/* LayerNorm (GPT-2) and RMSNorm (Llama). Rows are independent, so forward and the input gradient run in
 * parallel over rows; the weight/bias gradients sum over rows, so they run in parallel over blocks of
 * channels instead (each thread sums its channels over all rows in order: no races, and a result that
 * does not depend on the thread count). */
#include "core/kernels.h"
#include "core/parallel.h"
#include <math.h>

enum { CHANNEL_BLOCK = 64 };

void jl_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N, int C, float eps) {
#pragma omp parallel for schedule(static) if (JL_WORTH_THREADS((size_t)N * C))
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * C;
        float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
        for (int c = 0; c < C; c++) ss += x[c] * x[c];
        float r = 1.0f / sqrtf(ss / (float)C + eps);
#pragma omp simd
        for (int c = 0; c < C; c++) y[c] = x[c] * r * weight[c];
        rstd[n] = r;
    }
}

void jl_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                         const float *rstd, int N, int C) {
    if (dinp) {
        /* dx = rstd · (dnorm − norm · mean(dnorm · norm)), dnorm = dout ⊙ weight, norm = x · rstd */
#pragma omp parallel for schedule(static) if (JL_WORTH_THREADS((size_t)N * C))
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
            float *dx = dinp + (size_t)n * C;
            float r = rstd[n], dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int c = 0; c < C; c++) dot += dy[c] * weight[c] * x[c] * r;
            float mean_dot = dot / (float)C;
#pragma omp simd
            for (int c = 0; c < C; c++) dx[c] += r * (dy[c] * weight[c] - x[c] * r * mean_dot);
        }
    }
    if (dweight) {
        int nblocks = (C + CHANNEL_BLOCK - 1) / CHANNEL_BLOCK;
#pragma omp parallel for schedule(static) if (JL_WORTH_THREADS((size_t)N * C))
        for (int blk = 0; blk < nblocks; blk++) {
            int c0 = blk * CHANNEL_BLOCK, c1 = c0 + CHANNEL_BLOCK < C ? c0 + CHANNEL_BLOCK : C;
            float acc[CHANNEL_BLOCK] = {0};
            for (int n = 0; n < N; n++) {
                const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
                float r = rstd[n];
#pragma omp simd
                for (int c = c0; c < c1; c++) acc[c - c0] += dy[c] * x[c] * r;
            }
            for (int c = c0; c < c1; c++) dweight[c] += acc[c - c0];
        }
    }
}

void jl_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                          const float *bias, int N, int C, float eps) {
#pragma omp parallel for schedule(static) if (JL_WORTH_THREADS((size_t)N * C))
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * C;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int c = 0; c < C; c++) sum += x[c];
        float mu = sum / (float)C, var = 0.0f;
#pragma omp simd reduction(+ : var) /* two passes: no cancellation for rows with a large mean */
        for (int c = 0; c < C; c++) var += (x[c] - mu) * (x[c] - mu);
        float r = 1.0f / sqrtf(var / (float)C + eps);
#pragma omp simd
        for (int c = 0; c < C; c++) y[c] = (x[c] - mu) * r * weight[c] + bias[c];
        mean[n] = mu;
        rstd[n] = r;
    }
}

void jl_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                           const float *weight, const float *mean, const float *rstd, int N, int C) {
    if (dinp) {
        /* dx = rstd · (dnorm − mean(dnorm) − norm · mean(dnorm · norm)) */
#pragma omp parallel for schedule(static) if (JL_WORTH_THREADS((size_t)N * C))
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
            float *dx = dinp + (size_t)n * C;
            float mu = mean[n], r = rstd[n], sum_dnorm = 0.0f, sum_dnorm_norm = 0.0f;
#pragma omp simd reduction(+ : sum_dnorm, sum_dnorm_norm)
            for (int c = 0; c < C; c++) {
                float dnorm = dy[c] * weight[c];
                sum_dnorm += dnorm;
                sum_dnorm_norm += dnorm * (x[c] - mu) * r;
            }
            float mean_dnorm = sum_dnorm / (float)C, mean_dnorm_norm = sum_dnorm_norm / (float)C;
#pragma omp simd
            for (int c = 0; c < C; c++)
                dx[c] += r * (dy[c] * weight[c] - mean_dnorm - (x[c] - mu) * r * mean_dnorm_norm);
        }
    }
    if (!dweight && !dbias) return;
    int nblocks = (C + CHANNEL_BLOCK - 1) / CHANNEL_BLOCK;
#pragma omp parallel for schedule(static) if (JL_WORTH_THREADS((size_t)N * C))
    for (int blk = 0; blk < nblocks; blk++) {
        int c0 = blk * CHANNEL_BLOCK, c1 = c0 + CHANNEL_BLOCK < C ? c0 + CHANNEL_BLOCK : C;
        float accw[CHANNEL_BLOCK] = {0}, accb[CHANNEL_BLOCK] = {0};
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
            float mu = mean[n], r = rstd[n];
#pragma omp simd
            for (int c = c0; c < c1; c++) {
                accw[c - c0] += dy[c] * (x[c] - mu) * r;
                accb[c - c0] += dy[c];
            }
        }
        for (int c = c0; c < c1; c++) {
            if (dweight) dweight[c] += accw[c - c0];
            if (dbias) dbias[c] += accb[c - c0];
        }
    }
}
