/* The fp32 linear of batched decoding: several activation rows against each group of four weight rows, the
 * group read from memory once and kept in registers/L1 for all rows. Each output is summed exactly as
 * jl_matvec_own's dot4 sums it (16-lane partial sums over the columns, one reduction, then the scalar tail),
 * so a row's result never depends on the other rows of the batch. */
#include "infer/batch.h"
#include "infer/linear.h"
#include "core/half.h"
#include "core/kernels.h"
#include <omp.h>
#if defined(__x86_64__)
#include <immintrin.h>
/* The bf16 kernels are compiled for AVX512-BF16 whatever the build targets and run only where the CPU has it
 * (jl_matmat_bf16_supported). */
#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))
#endif

/* The columns past the vector loop, as dot4 adds them. */
static float tail_dot(const float *w, const float *x, int from, int in, float s) {
    for (int i = from; i < in; i++) s += w[i] * x[i];
    return s;
}

#if defined(__AVX512F__)
/* Four weight rows × four activation rows: 16 accumulators. */
/* pf: when not NULL, the next group's four weight rows, one line per row prefetched per 16 columns, so they stream
 * in from memory while this group computes (the batched products are otherwise stalled on memory). */
static void tile4x4(const float *w, int in, const float *x, float out[4][4], const float *pf) {
    const float *r0 = w, *r1 = w + in, *r2 = w + 2 * (size_t)in, *r3 = w + 3 * (size_t)in;
    const float *x0 = x, *x1 = x + in, *x2 = x + 2 * (size_t)in, *x3 = x + 3 * (size_t)in;
    __m512 a[4][4];
    for (int r = 0; r < 4; r++)
        for (int j = 0; j < 4; j++) a[r][j] = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= in; i += 16) {
        if (pf)
            for (int j = 0; j < 4; j++) __builtin_prefetch(pf + (size_t)j * in + i);
        __m512 w0 = _mm512_loadu_ps(r0 + i), w1 = _mm512_loadu_ps(r1 + i);
        __m512 w2 = _mm512_loadu_ps(r2 + i), w3 = _mm512_loadu_ps(r3 + i);
        /* keep the four weight vectors in registers (else the compiler folds them into the FMAs as memory operands:
         * 20 loads per 16 FMAs instead of 8) */
        __asm__("" : "+v"(w0), "+v"(w1), "+v"(w2), "+v"(w3));
        const float *xs[4] = {x0, x1, x2, x3};
        for (int r = 0; r < 4; r++) {
            __m512 xv = _mm512_loadu_ps(xs[r] + i);
            __asm__("" : "+v"(xv));
            a[r][0] = _mm512_fmadd_ps(w0, xv, a[r][0]);
            a[r][1] = _mm512_fmadd_ps(w1, xv, a[r][1]);
            a[r][2] = _mm512_fmadd_ps(w2, xv, a[r][2]);
            a[r][3] = _mm512_fmadd_ps(w3, xv, a[r][3]);
        }
    }
    const float *rows[4] = {r0, r1, r2, r3}, *xs[4] = {x0, x1, x2, x3};
    for (int r = 0; r < 4; r++)
        for (int j = 0; j < 4; j++) out[r][j] = tail_dot(rows[j], xs[r], i, in, _mm512_reduce_add_ps(a[r][j]));
}

/* Four weight rows × one activation row (dot4's own loop). */
static void tile4x1(const float *w, int in, const float *x, float out[4]) {
    const float *r0 = w, *r1 = w + in, *r2 = w + 2 * (size_t)in, *r3 = w + 3 * (size_t)in;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 16 <= in; i += 16) {
        __m512 xv = _mm512_loadu_ps(x + i);
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(r0 + i), xv, a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(r1 + i), xv, a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(r2 + i), xv, a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(r3 + i), xv, a3);
    }
    out[0] = tail_dot(r0, x, i, in, _mm512_reduce_add_ps(a0));
    out[1] = tail_dot(r1, x, i, in, _mm512_reduce_add_ps(a1));
    out[2] = tail_dot(r2, x, i, in, _mm512_reduce_add_ps(a2));
    out[3] = tail_dot(r3, x, i, in, _mm512_reduce_add_ps(a3));
}
#else
/* Portable: one weight row group at a time, each output summed on its own (row-independent as well). */
static void tile4x1(const float *w, int in, const float *x, float out[4]) {
    for (int j = 0; j < 4; j++) out[j] = tail_dot(w + (size_t)j * in, x, 0, in, 0.0f);
}
#endif

static float dot1(const float *w, int in, const float *x) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < in; i++) s += w[i] * x[i];
    return s;
}

/* y[r·out + o] for one output o: the accumulate and bias order of jl_matvec_rows, (y + sum) + b. */
static void put(float *y, float s, const float *b, int o, int accumulate) {
    *y = (accumulate ? *y : 0.0f) + s + (b ? b[o] : 0.0f);
}

void jl_matmat_rows(float *y, const float *w, const float *x, const float *b, int in, int out, int R, int o0, int o1,
                    int accumulate) {
    if (R < 4) { /* decode of a few rows: the matrix-vector kernel (it prefetches the next rows itself) */
        for (int r = 0; r < R; r++)
            jl_matvec_rows(y + (size_t)r * out, w, x + (size_t)r * in, b, in, out, o0, o1, accumulate);
        return;
    }
    const int g_end = out / 4 < (o1 + 3) / 4 ? out / 4 : (o1 + 3) / 4;
    for (int g = o0 / 4; g < g_end; g++) {
        const float *wg = w + (size_t)4 * g * in;
        int r = 0;
#if defined(__AVX512F__)
        for (; r + 4 <= R; r += 4) {
            float s[4][4];
            tile4x4(wg, in, x + (size_t)r * in, s, r == 0 && g + 2 < g_end ? wg + (size_t)8 * in : NULL);
            for (int k = 0; k < 4; k++)
                for (int j = 0; j < 4; j++) put(y + (size_t)(r + k) * out + 4 * g + j, s[k][j], b, 4 * g + j, accumulate);
        }
#endif
        for (; r < R; r++) {
            float s[4];
            tile4x1(wg, in, x + (size_t)r * in, s);
            for (int j = 0; j < 4; j++) put(y + (size_t)r * out + 4 * g + j, s[j], b, 4 * g + j, accumulate);
        }
    }
    for (int o = 4 * (out / 4) > o0 ? 4 * (out / 4) : o0; o < o1; o++)
        for (int r = 0; r < R; r++) put(y + (size_t)r * out + o, dot1(w + (size_t)o * in, in, x + (size_t)r * in), b, o, accumulate);
}

void jl_matmat_own(float *y, const float *w, const float *x, const float *b, int in, int out, int R) {
    const int units = (out + 15) / 16;
#pragma omp parallel if ((size_t)in * out * (size_t)R > 32768)
    {
        const int t = omp_get_thread_num(), n = omp_get_num_threads();
        const int lo = (int)((long)units * t / n) * 16, hi = (int)((long)units * (t + 1) / n) * 16;
        jl_matmat_rows(y, w, x, b, in, out, R, lo, hi < out ? hi : out, 0);
    }
}

/* ---------------------------------------------------------------- bf16 products (jl_batch_set_precision) */

/* The columns past the vector loop of a bf16 product, in order. */
static float tail_dot16(const uint16_t *w, const uint16_t *x, int from, int in, float s) {
    for (int i = from; i < in; i++) s += jl_bf16_to_f32(w[i]) * jl_bf16_to_f32(x[i]);
    return s;
}

#if defined(__x86_64__)
/* Four weight rows × four activation rows: 16 accumulators of vdpbf16ps over 32-column chunks. pf as tile4x4's. */
BF16_TARGET static void tile16_4x4(const uint16_t *w, int in, const uint16_t *x, float out[4][4], const uint16_t *pf) {
    __m512 a[4][4];
    for (int r = 0; r < 4; r++)
        for (int j = 0; j < 4; j++) a[r][j] = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= in; i += 32) {
        if (pf)
            for (int j = 0; j < 4; j++) __builtin_prefetch(pf + (size_t)j * in + i);
        __m512i w0 = _mm512_loadu_si512(w + i), w1 = _mm512_loadu_si512(w + in + i);
        __m512i w2 = _mm512_loadu_si512(w + 2 * (size_t)in + i), w3 = _mm512_loadu_si512(w + 3 * (size_t)in + i);
        __asm__("" : "+v"(w0), "+v"(w1), "+v"(w2), "+v"(w3)); /* in registers, as in tile4x4 */
        for (int r = 0; r < 4; r++) {
            __m512i xv = _mm512_loadu_si512(x + (size_t)r * in + i);
            __asm__("" : "+v"(xv));
            a[r][0] = _mm512_dpbf16_ps(a[r][0], (__m512bh)xv, (__m512bh)w0);
            a[r][1] = _mm512_dpbf16_ps(a[r][1], (__m512bh)xv, (__m512bh)w1);
            a[r][2] = _mm512_dpbf16_ps(a[r][2], (__m512bh)xv, (__m512bh)w2);
            a[r][3] = _mm512_dpbf16_ps(a[r][3], (__m512bh)xv, (__m512bh)w3);
        }
    }
    for (int r = 0; r < 4; r++)
        for (int j = 0; j < 4; j++)
            out[r][j] = tail_dot16(w + (size_t)j * in, x + (size_t)r * in, i, in, _mm512_reduce_add_ps(a[r][j]));
}

/* Four weight rows × one activation row: the same operations per output as tile16_4x4. */
BF16_TARGET static void tile16_4x1(const uint16_t *w, int in, const uint16_t *x, float out[4]) {
    __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int i = 0;
    for (; i + 32 <= in; i += 32) {
        const __m512bh xv = (__m512bh)_mm512_loadu_si512(x + i);
        for (int j = 0; j < 4; j++) a[j] = _mm512_dpbf16_ps(a[j], xv, (__m512bh)_mm512_loadu_si512(w + (size_t)j * in + i));
    }
    for (int j = 0; j < 4; j++) out[j] = tail_dot16(w + (size_t)j * in, x, i, in, _mm512_reduce_add_ps(a[j]));
}

/* One weight row × one activation row (the rows past the last group of four): the same operations again. */
BF16_TARGET static float dot16(const uint16_t *w, int in, const uint16_t *x) {
    __m512 a = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= in; i += 32)
        a = _mm512_dpbf16_ps(a, (__m512bh)_mm512_loadu_si512(x + i), (__m512bh)_mm512_loadu_si512(w + i));
    return tail_dot16(w, x, i, in, _mm512_reduce_add_ps(a));
}
#else
/* Without bf16 dot products (jl_batch_set_precision refuses bf16 there): one sum per output, in column order. */
static void tile16_4x1(const uint16_t *w, int in, const uint16_t *x, float out[4]) {
    for (int j = 0; j < 4; j++) out[j] = tail_dot16(w + (size_t)j * in, x, 0, in, 0.0f);
}
static float dot16(const uint16_t *w, int in, const uint16_t *x) { return tail_dot16(w, x, 0, in, 0.0f); }
#endif

int jl_matmat_bf16_supported(void) {
#if defined(__x86_64__)
    return jl_cpu_has_bf16();
#else
    return 0;
#endif
}

void jl_matmat_bf16_rows(float *y, const uint16_t *w, const uint16_t *x, const float *b, int in, int out, int R,
                         int o0, int o1, int accumulate) {
    const int g_end = out / 4 < (o1 + 3) / 4 ? out / 4 : (o1 + 3) / 4;
    for (int g = o0 / 4; g < g_end; g++) {
        const uint16_t *wg = w + (size_t)4 * g * in;
        int r = 0;
#if defined(__x86_64__)
        for (; r + 4 <= R; r += 4) {
            float s[4][4];
            tile16_4x4(wg, in, x + (size_t)r * in, s, r == 0 && g + 2 < g_end ? wg + (size_t)8 * in : NULL);
            for (int k = 0; k < 4; k++)
                for (int j = 0; j < 4; j++) put(y + (size_t)(r + k) * out + 4 * g + j, s[k][j], b, 4 * g + j, accumulate);
        }
#endif
        for (; r < R; r++) {
            float s[4];
            tile16_4x1(wg, in, x + (size_t)r * in, s);
            for (int j = 0; j < 4; j++) put(y + (size_t)r * out + 4 * g + j, s[j], b, 4 * g + j, accumulate);
        }
    }
    for (int o = 4 * (out / 4) > o0 ? 4 * (out / 4) : o0; o < o1; o++)
        for (int r = 0; r < R; r++) put(y + (size_t)r * out + o, dot16(w + (size_t)o * in, in, x + (size_t)r * in), b, o, accumulate);
}

void jl_matmat_bf16(float *y, const uint16_t *w, const uint16_t *x, const float *b, int in, int out, int R) {
    const int units = (out + 15) / 16;
#pragma omp parallel if ((size_t)in * out * (size_t)R > 32768)
    {
        const int t = omp_get_thread_num(), n = omp_get_num_threads();
        const int lo = (int)((long)units * t / n) * 16, hi = (int)((long)units * (t + 1) / n) * 16;
        jl_matmat_bf16_rows(y, w, x, b, in, out, R, lo, hi < out ? hi : out, 0);
    }
}
