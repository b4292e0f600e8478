/* Softmax and the fused softmax + cross-entropy of the LM head. At GPT-2 sizes the logits are
 * 2048 × 50304 floats, so each row is three vectorised sweeps (max, Σexp, gradient) while it is in cache. */
#include "core/kernels.h"
#include "core/parallel.h"
#include "core/vexp.h"
#include <math.h>
#include <omp.h>
#include <string.h>

JL_WIDE_VECTORS static float row_max(const float *x, int n) {
    float maxv = -INFINITY;
#pragma omp simd reduction(max : maxv)
    for (int j = 0; j < n; j++) maxv = x[j] > maxv ? x[j] : maxv;
    return maxv;
}

JL_WIDE_VECTORS static float row_sum_exp(const float *x, int n, float maxv) {
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; j++) sum += jl_vexpf(x[j] - maxv);
    return sum;
}

JL_WIDE_VECTORS void jl_softmax_inplace(float *x, int n) {
    if (n <= 0) return;
    float maxv = row_max(x, n), sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; j++) {
        x[j] = jl_vexpf(x[j] - maxv);
        sum += x[j];
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j < n; j++) x[j] *= inv;
}

/* One row: returns -log p(target); writes the row's gradient when drow is not NULL (drow may be logits).
 * With a gradient the exponentials are stored by the Σexp sweep and rescaled by the third sweep, so each
 * is computed once; the row (≤ 2 × 200 KB at GPT-2 sizes) stays in L2 between sweeps. */
JL_WIDE_VECTORS static double crossentropy_row(float *drow, const float *logits, int target, int V, int Vp,
                                               float dscale) {
    float maxv = row_max(logits, V);
    float target_logit = logits[target]; /* read before drow (maybe the same memory) is overwritten */
    float sum;
    if (!drow) {
        sum = row_sum_exp(logits, V, maxv);
    } else {
        sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < V; j++) {
            drow[j] = jl_vexpf(logits[j] - maxv);
            sum += drow[j];
        }
        float inv = dscale / sum;
#pragma omp simd
        for (int j = 0; j < V; j++) drow[j] *= inv;
        drow[target] -= dscale;
        memset(drow + V, 0, (size_t)(Vp - V) * sizeof *drow); /* padding columns are not in the softmax */
    }
    return log((double)sum) + (double)maxv - (double)target_logit;
}

JL_WIDE_VECTORS double jl_crossentropy_forward_backward(float *losses, float *dlogits, const float *logits,
                                        const int32_t *targets, int N, int V, int Vp, float dscale) {
    /* Per-thread partial sums over a static row split, added in thread order: deterministic for a given
     * thread count (an OpenMP reduction clause leaves the combining order open). */
    double partial[omp_get_max_threads()];
    int nthreads = 1;
#pragma omp parallel if (JL_WORTH_THREADS((size_t)N * V))
    {
        int tid = omp_get_thread_num();
#pragma omp single
        nthreads = omp_get_num_threads();
        double acc = 0.0;
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            int target = targets[n];
            float *drow = dlogits ? dlogits + (size_t)n * Vp : NULL;
            double loss = 0.0;
            /* Ignored rows (target < 0) count for nothing. Ids ≥ V are a caller bug (the data loader
             * validates them); they are treated as ignored rather than read out of bounds. */
            if (target >= 0 && target < V)
                loss = crossentropy_row(drow, logits + (size_t)n * Vp, target, V, Vp, dscale);
            else if (drow)
                memset(drow, 0, (size_t)Vp * sizeof *drow);
            if (losses) losses[n] = (float)loss;
            acc += loss;
        }
        partial[tid] = acc;
    }
    double total = 0.0;
    for (int t = 0; t < nthreads; t++) total += partial[t];
    return total;
}
