#include "core/seqloss.h"
#include "core/vexp.h"
#include <math.h>
#include <string.h>

static float row_max(const float *x, int n) {
    float m = -INFINITY;
    for (int j = 0; j < n; j++) m = x[j] > m ? x[j] : m;
    return m;
}

void jl_token_logprobs(float *logp, float *entropy, const float *logits, const int32_t *targets, int N, int V,
                       int Vp) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *row = logits + (size_t)n * Vp;
        int target = targets[n];
        if (target < 0 || target >= V) {
            logp[n] = 0.0f;
            if (entropy) entropy[n] = 0.0f;
            continue;
        }
        float maxv = row_max(row, V);
        double sum = 0.0, weighted = 0.0; /* Σ e^(x−max), Σ e^(x−max)·(x−max) */
        for (int j = 0; j < V; j++) {
            double z = (double)row[j] - maxv, e = exp(z);
            sum += e;
            weighted += e * z;
        }
        double log_sum = log(sum);
        logp[n] = (float)((double)row[target] - maxv - log_sum);
        /* H = −Σ p (z − log Σ) = log Σ − Σ p z */
        if (entropy) entropy[n] = (float)(log_sum - weighted / sum);
    }
}

void jl_token_logprobs_backward(float *dlogits, const float *logits, const int32_t *targets, const float *dlogp,
                                int N, int V, int Vp) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *row = logits + (size_t)n * Vp;
        float *drow = dlogits + (size_t)n * Vp;
        int target = targets[n];
        if (target < 0 || target >= V || dlogp[n] == 0.0f) {
            memset(drow, 0, (size_t)Vp * sizeof *drow);
            continue;
        }
        float maxv = row_max(row, V), sum = 0.0f;
        for (int j = 0; j < V; j++) {
            drow[j] = jl_vexpf(row[j] - maxv); /* may overwrite row[j] when aliased: it is read first */
            sum += drow[j];
        }
        float scale = -dlogp[n] / sum;
        for (int j = 0; j < V; j++) drow[j] *= scale;
        drow[target] += dlogp[n];
        memset(drow + V, 0, (size_t)(Vp - V) * sizeof *drow);
    }
}
