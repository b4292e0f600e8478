/* Linear layers for inference. Decode is a matrix-vector product per weight, bound by memory bandwidth:
 * each weight is read once per token, so the kernel streams rows with wide loads, keeps several rows in
 * flight (independent accumulators hide the FMA latency) and splits rows across threads. */
#include "infer/linear.h"
#include "core/kernels.h"
#include "jielong/generate.h"
#include <cblas.h>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

static int matvec_kernel = 0; /* 0 = own, 1 = cblas_sgemv */

void jl_set_matvec_kernel(int kernel) { matvec_kernel = kernel == 1; }
int jl_get_matvec_kernel(void) { return matvec_kernel; }

/* Four rows at a time: x is loaded once per chunk and used by four dot products. */
static void dot4(const float *w, int in, const float *x, float out4[4]) {
    const float *r0 = w, *r1 = w + in, *r2 = w + 2 * (size_t)in, *r3 = w + 3 * (size_t)in;
    int i = 0;
#if defined(__AVX512F__)
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (; i + 16 <= in; i += 16) {
        __m512 xv = _mm512_loadu_ps(x + i);
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(r0 + i), xv, a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(r1 + i), xv, a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(r2 + i), xv, a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(r3 + i), xv, a3);
    }
    float s0 = _mm512_reduce_add_ps(a0), s1 = _mm512_reduce_add_ps(a1);
    float s2 = _mm512_reduce_add_ps(a2), s3 = _mm512_reduce_add_ps(a3);
#elif defined(__AVX2__)
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (; i + 8 <= in; i += 8) {
        __m256 xv = _mm256_loadu_ps(x + i);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0 + i), xv, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(r1 + i), xv, a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(r2 + i), xv, a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(r3 + i), xv, a3);
    }
    float t[8], s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    _mm256_storeu_ps(t, a0); for (int j = 0; j < 8; j++) s0 += t[j];
    _mm256_storeu_ps(t, a1); for (int j = 0; j < 8; j++) s1 += t[j];
    _mm256_storeu_ps(t, a2); for (int j = 0; j < 8; j++) s2 += t[j];
    _mm256_storeu_ps(t, a3); for (int j = 0; j < 8; j++) s3 += t[j];
#else
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#endif
    for (; i < in; i++) {
        s0 += r0[i] * x[i];
        s1 += r1[i] * x[i];
        s2 += r2[i] * x[i];
        s3 += r3[i] * x[i];
    }
    out4[0] = s0;
    out4[1] = s1;
    out4[2] = s2;
    out4[3] = s3;
}

static float dot1(const float *w, int in, const float *x) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < in; i++) s += w[i] * x[i];
    return s;
}

void jl_matvec_own(float *y, const float *w, const float *x, const float *b, int in, int out) {
    const int groups = out / 4;
    /* static schedule: each thread streams one contiguous block of rows */
#pragma omp parallel for schedule(static) if ((size_t)in * out > 32768)
    for (int g = 0; g < groups; g++) {
        float s[4];
        dot4(w + (size_t)4 * g * in, in, x, s);
        for (int j = 0; j < 4; j++) y[4 * g + j] = s[j] + (b ? b[4 * g + j] : 0.0f);
    }
    for (int o = 4 * groups; o < out; o++) y[o] = dot1(w + (size_t)o * in, in, x) + (b ? b[o] : 0.0f);
}

void jl_matvec_rows(float *y, const float *w, const float *x, const float *b, int in, int out, int r0, int r1,
                    int accumulate) {
    const int groups_end = out / 4 * 4;
    int r = r0;
    for (; r + 4 <= r1 && r + 4 <= groups_end; r += 4) {
        if (r + 8 <= r1) /* the next group's rows, one line each, on their way while this group streams */
            for (int j = 0; j < 4; j++) __builtin_prefetch(w + (size_t)(r + 4 + j) * in);
        float s[4];
        dot4(w + (size_t)r * in, in, x, s);
        for (int j = 0; j < 4; j++) y[r + j] = (accumulate ? y[r + j] : 0.0f) + s[j] + (b ? b[r + j] : 0.0f);
    }
    for (; r < r1; r++) y[r] = (accumulate ? y[r] : 0.0f) + dot1(w + (size_t)r * in, in, x) + (b ? b[r] : 0.0f);
}

void jl_matvec_blas(float *y, const float *w, const float *x, const float *b, int in, int out) {
    if (b)
        for (int o = 0; o < out; o++) y[o] = b[o];
    cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, w, in, x, 1, b ? 1.0f : 0.0f, y, 1);
}

void jl_linear_vec(const jl_linear *L, const float *x, float *y) {
    if (L->q) jl_qmatmul(y, x, L->q, L->b, 1, L->xq);
    else if (matvec_kernel == 1) jl_matvec_blas(y, L->w, x, L->b, L->in, L->out);
    else jl_matvec_own(y, L->w, x, L->b, L->in, L->out);
}

void jl_linear_vec_rows(const jl_linear *L, const float *x, float *y, void *xq, int r0, int r1, int accumulate) {
    if (r0 >= r1) return;
    if (L->q) jl_qmatvec_rows(y, x, L->q, L->b, xq, r0, r1, accumulate);
    else jl_matvec_rows(y, L->w, x, L->b, L->in, L->out, r0, r1, accumulate);
}

void jl_linear_mat(const jl_linear *L, const float *x, float *y, int n) {
    if (L->q) jl_qmatmul(y, x, L->q, L->b, n, L->xq);
    else jl_matmul_forward(y, x, L->w, L->b, n, L->in, L->out);
}
