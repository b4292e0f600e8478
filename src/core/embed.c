/* Token embedding lookup and learned (GPT-2) positional embedding. */
#include "core/kernels.h"
#include "core/parallel.h"
#include <string.h>

enum { CHANNEL_BLOCK = 64 };

void jl_embedding_forward(float *out, const int32_t *tokens, const float *wte, int N, int C) {
#pragma omp parallel for schedule(static) if (JL_WORTH_THREADS((size_t)N * C))
    for (int n = 0; n < N; n++) memcpy(out + (size_t)n * C, wte + (size_t)tokens[n] * C, (size_t)C * sizeof *out);
}

/* Several rows may carry the same token, so rows cannot be split across threads. Threads own blocks of
 * channels instead and walk the rows in order: race-free, and independent of the thread count. */
void jl_embedding_backward(float *dwte, const float *dout, const int32_t *tokens, int N, int C) {
    int nblocks = (C + CHANNEL_BLOCK - 1) / CHANNEL_BLOCK;
#pragma omp parallel for schedule(static) if (JL_WORTH_THREADS((size_t)N * C))
    for (int blk = 0; blk < nblocks; blk++) {
        int c0 = blk * CHANNEL_BLOCK, c1 = c0 + CHANNEL_BLOCK < C ? c0 + CHANNEL_BLOCK : C;
        for (int n = 0; n < N; n++) {
            float *drow = dwte + (size_t)tokens[n] * C;
            const float *g = dout + (size_t)n * C;
#pragma omp simd
            for (int c = c0; c < c1; c++) drow[c] += g[c];
        }
    }
}

void jl_posemb_forward(float *x, const float *wpe, int B, int T, int C, int pos0) {
#pragma omp parallel for collapse(2) schedule(static) if (JL_WORTH_THREADS((size_t)B * T * C))
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *row = x + ((size_t)b * T + t) * C;
            const float *p = wpe + (size_t)(pos0 + t) * C;
#pragma omp simd
            for (int c = 0; c < C; c++) row[c] += p[c];
        }
}

/* dwpe[pos0 + t] += Σ_b dx[b, t]: each thread owns positions, and sums the batch in order. */
void jl_posemb_backward(float *dwpe, const float *dx, int B, int T, int C, int pos0) {
#pragma omp parallel for schedule(static) if (JL_WORTH_THREADS((size_t)B * T * C))
    for (int t = 0; t < T; t++) {
        float *drow = dwpe + (size_t)(pos0 + t) * C;
        for (int b = 0; b < B; b++) {
            const float *g = dx + ((size_t)b * T + t) * C;
#pragma omp simd
            for (int c = 0; c < C; c++) drow[c] += g[c];
        }
    }
}

void jl_posemb_forward_seg(float *x, const float *wpe, int B, int T, int C, const int32_t *seg_start) {
    if (!seg_start) {
        jl_posemb_forward(x, wpe, B, T, C, 0);
        return;
    }
#pragma omp parallel for schedule(static) if (JL_WORTH_THREADS((size_t)B * T * C))
    for (int n = 0; n < B * T; n++) {
        float *row = x + (size_t)n * C;
        const float *p = wpe + (size_t)(n % T - seg_start[n]) * C;
#pragma omp simd
        for (int c = 0; c < C; c++) row[c] += p[c];
    }
}

/* Several tokens share a position, so, as for the token embedding, threads own blocks of channels and walk
 * the tokens in order. */
void jl_posemb_backward_seg(float *dwpe, const float *dx, int B, int T, int C, const int32_t *seg_start) {
    if (!seg_start) {
        jl_posemb_backward(dwpe, dx, B, T, C, 0);
        return;
    }
    int nblocks = (C + CHANNEL_BLOCK - 1) / CHANNEL_BLOCK;
#pragma omp parallel for schedule(static) if (JL_WORTH_THREADS((size_t)B * T * C))
    for (int blk = 0; blk < nblocks; blk++) {
        int c0 = blk * CHANNEL_BLOCK, c1 = c0 + CHANNEL_BLOCK < C ? c0 + CHANNEL_BLOCK : C;
        for (int n = 0; n < B * T; n++) {
            float *drow = dwpe + (size_t)(n % T - seg_start[n]) * C;
            const float *g = dx + (size_t)n * C;
#pragma omp simd
            for (int c = c0; c < c1; c++) drow[c] += g[c];
        }
    }
}
