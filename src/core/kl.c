/* Distillation loss and its gradient (src/core/kl.h). Each row is a few sweeps over V while it is in cache:
 * maxima, the three normalisers (student at τ, teacher at τ, student at 1), then the KL sum and the gradient
 * together. Sums are in double: the KL of close distributions is a small difference of large terms. */
#include "core/kl.h"
#include <math.h>
#include <omp.h>
#include <string.h>

static float max_scaled(const float *x, int n) {
    float m = -INFINITY;
    for (int j = 0; j < n; j++) m = x[j] > m ? x[j] : m;
    return m;
}

/* log Σ exp(x_j·inv_tau) given max_j x_j. */
static double log_sum_exp(const float *x, int n, float maxv, double inv_tau) {
    double sum = 0.0;
    for (int j = 0; j < n; j++) sum += exp(((double)x[j] - maxv) * inv_tau);
    return log(sum) + (double)maxv * inv_tau;
}

typedef struct {
    int V, Vp;
    double tau, alpha;
    float dscale;
} row_params;

/* One counted row: returns its loss (KL part in *kl); writes the gradient when drow is not NULL. */
static double distill_row(float *drow, const float *s, const float *t, int target, const row_params *p, double *kl) {
    const int V = p->V;
    const double inv_tau = 1.0 / p->tau, a = p->alpha;
    double s_max = max_scaled(s, V);
    double lz_s1 = log_sum_exp(s, V, (float)s_max, 1.0); /* student at temperature 1 (hard labels) */
    double ce = lz_s1 - (double)s[target];
    double lz_st = 0, lz_tt = 0, kl_row = 0;
    if (a > 0) {
        lz_st = log_sum_exp(s, V, (float)s_max, inv_tau);
        lz_tt = log_sum_exp(t, V, max_scaled(t, V), inv_tau);
    }
    for (int j = 0; j < V; j++) {
        double sj = s[j]; /* read before drow (maybe the same memory) is written */
        double g = (1.0 - a) * exp(sj - lz_s1);
        if (a > 0) {
            double log_ps = sj * inv_tau - lz_st, log_pt = (double)t[j] * inv_tau - lz_tt;
            double pt = exp(log_pt);
            kl_row += pt * (log_pt - log_ps);
            g += a * p->tau * (exp(log_ps) - pt);
        }
        if (drow) drow[j] = (float)(g * p->dscale);
    }
    if (drow) {
        drow[target] -= (float)((1.0 - a) * p->dscale);
        memset(drow + V, 0, (size_t)(p->Vp - V) * sizeof *drow);
    }
    *kl = kl_row;
    return a * p->tau * p->tau * kl_row + (1.0 - a) * ce;
}

double jl_distill_loss_forward_backward(float *losses, float *dlogits, const float *student, const float *teacher,
                                        const int32_t *targets, int N, int V, int Vp, float temperature, float alpha,
                                        float dscale, double *kl_sum) {
    const row_params p = {.V = V, .Vp = Vp, .tau = temperature, .alpha = alpha, .dscale = dscale};
    /* Per-thread partial sums over a static row split, added in thread order: deterministic for a thread count. */
    double partial[omp_get_max_threads()], partial_kl[omp_get_max_threads()];
    int nthreads = 1;
#pragma omp parallel
    {
        int tid = omp_get_thread_num();
#pragma omp single
        nthreads = omp_get_num_threads();
        double acc = 0.0, acc_kl = 0.0;
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            float *drow = dlogits ? dlogits + (size_t)n * Vp : NULL;
            double loss = 0.0, kl = 0.0;
            if (targets[n] >= 0 && targets[n] < V)
                loss = distill_row(drow, student + (size_t)n * Vp, teacher ? teacher + (size_t)n * Vp : NULL,
                                   targets[n], &p, &kl);
            else if (drow)
                memset(drow, 0, (size_t)Vp * sizeof *drow);
            if (losses) losses[n] = (float)loss;
            acc += loss;
            acc_kl += kl;
        }
        partial[tid] = acc;
        partial_kl[tid] = acc_kl;
    }
    double total = 0.0, total_kl = 0.0;
    for (int t = 0; t < nthreads; t++) {
        total += partial[t];
        total_kl += partial_kl[t];
    }
    if (kl_sum) *kl_sum = total_kl;
    return total;
}
