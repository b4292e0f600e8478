/* AdamW and the two reductions the optimizer needs around it (gradient norm, clipping). */
#include "core/kernels.h"
#include "core/parallel.h"
#include <math.h>
#include <omp.h>

void jl_adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2,
                     float eps, float weight_decay, int t) {
    jl_adamw_update_scaled(p, g, 1.0f, m, v, n, lr, beta1, beta2, eps, weight_decay, t);
}

void jl_adamw_update_scaled(float *p, const float *g, float gscale, float *m, float *v, size_t n, float lr,
                            float beta1, float beta2, float eps, float weight_decay, int t) {
    /* 1/(1-β^t) in double: for β2 = 0.999 and small t the float power would lose digits */
    const float m_corr = (float)(1.0 / (1.0 - pow((double)beta1, t)));
    const float v_corr = (float)(1.0 / (1.0 - pow((double)beta2, t)));
#pragma omp parallel for simd schedule(static) if (JL_WORTH_THREADS(n))
    for (size_t i = 0; i < n; i++) {
        const float gi = g[i] * gscale;
        float mi = beta1 * m[i] + (1.0f - beta1) * gi;
        float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float mhat = mi * m_corr, vhat = vi * v_corr;
        p[i] -= lr * (mhat / (sqrtf(vhat) + eps) + weight_decay * p[i]);
    }
}

/* Each thread sums one contiguous share; the partials are added in thread order, so the result is
 * deterministic for a given thread count (an OpenMP reduction clause leaves the combining order open). */
double jl_sumsq(const float *x, size_t n) {
    double partial[omp_get_max_threads()];
    int nthreads = 1;
#pragma omp parallel if (JL_WORTH_THREADS(n))
    {
        int tid = omp_get_thread_num(), nt = omp_get_num_threads();
        size_t lo = n / nt * tid + (size_t)(tid < (int)(n % nt) ? tid : (int)(n % nt));
        size_t hi = lo + n / nt + (tid < (int)(n % nt) ? 1 : 0);
        double acc = 0.0;
#pragma omp simd reduction(+ : acc)
        for (size_t i = lo; i < hi; i++) acc += (double)x[i] * x[i];
        partial[tid] = acc;
        if (tid == 0) nthreads = nt;
    }
    double total = 0.0;
    for (int t = 0; t < nthreads; t++) total += partial[t];
    return total;
}

void jl_scale_inplace(float *x, float s, size_t n) {
#pragma omp parallel for simd schedule(static) if (JL_WORTH_THREADS(n))
    for (size_t i = 0; i < n; i++) x[i] *= s;
}
