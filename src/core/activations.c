/* Elementwise pieces: SwiGLU (Llama MLP), GELU with the tanh approximation (GPT-2), residual add.
 * They use jl_vexpf so the loops vectorise. */
#include "core/kernels.h"
#include "core/parallel.h"
#include "core/vexp.h"
#include <math.h>

static inline float sigmoidf(float x) { return 1.0f / (1.0f + jl_vexpf(-x)); }

void jl_swiglu_forward(float *out, const float *gate_up, int N, int H) {
#pragma omp parallel for schedule(static) if (JL_WORTH_THREADS((size_t)N * H))
    for (int n = 0; n < N; n++) {
        const float *gate = gate_up + (size_t)n * 2 * H, *up = gate + H;
        float *y = out + (size_t)n * H;
#pragma omp simd
        for (int i = 0; i < H; i++) y[i] = gate[i] * sigmoidf(gate[i]) * up[i];
    }
}

/* silu(g) = g·σ(g);  silu'(g) = σ(g)·(1 + g·(1 − σ(g))) */
void jl_swiglu_backward(float *dgate_up, const float *dout, const float *gate_up, int N, int H) {
#pragma omp parallel for schedule(static) if (JL_WORTH_THREADS((size_t)N * H))
    for (int n = 0; n < N; n++) {
        const float *gate = gate_up + (size_t)n * 2 * H, *up = gate + H, *dy = dout + (size_t)n * H;
        float *dgate = dgate_up + (size_t)n * 2 * H, *dup = dgate + H;
#pragma omp simd
        for (int i = 0; i < H; i++) {
            float g = gate[i], s = sigmoidf(g);
            dgate[i] += dy[i] * up[i] * s * (1.0f + g * (1.0f - s));
            dup[i] += dy[i] * g * s;
        }
    }
}

#define GELU_K 0.7978845608028654f /* sqrt(2/π) */
#define GELU_A 0.044715f

/* tanh(u) = 1 − 2 / (e^{2u} + 1): exact at both saturations (jl_vexpf gives 0 and ~2e38 there). */
static inline float tanh_via_exp(float u) { return 1.0f - 2.0f / (jl_vexpf(2.0f * u) + 1.0f); }

void jl_gelu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for simd schedule(static) if (JL_WORTH_THREADS(n))
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanh_via_exp(GELU_K * (x + GELU_A * x * x * x)));
    }
}

void jl_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
#pragma omp parallel for simd schedule(static) if (JL_WORTH_THREADS(n))
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float th = tanh_via_exp(GELU_K * (x + GELU_A * x * x * x));
        float dth = (1.0f - th * th) * GELU_K * (1.0f + 3.0f * GELU_A * x * x);
        dinp[i] += dout[i] * (0.5f * (1.0f + th) + 0.5f * x * dth);
    }
}

void jl_residual_forward(float *out, const float *a, const float *b, size_t n) {
#pragma omp parallel for simd schedule(static) if (JL_WORTH_THREADS(n))
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}
