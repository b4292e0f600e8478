/* The linear products of batched decoding (fp32 and bf16): several activation rows against each group of four
 * weight rows, the group read from memory once and kept in registers/L1 for all rows. One tile driver
 * (tile_rows) runs both precisions; only the tile's dot products differ. fp32: each output is summed exactly as
 * jl_matvec_own's dot4 sums it (16-lane partial sums over the columns, one reduction, then the scalar tail);
 * bf16: vdpbf16ps over 32-column chunks, the same reduction, the scalar tail. So a row's result never depends
 * on the other rows of the batch. The 16 reductions of a 4×4 tile run as one transposed reduction (hsum16). */
#include "infer/batch.h"
#include "infer/linear.h"
#include "core/half.h"
#include "core/hsum16.h"
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

/* The columns past the vector loop of a bf16 product, in order. */
static float tail_dot16(const uint16_t *w, const uint16_t *x, int from, int in, float s) {
    for (int i = from; i < in; i++) s += jl_bf16_to_f32(w[i]) * jl_bf16_to_f32(x[i]);
    return s;
}


#if defined(__AVX512F__)
/* Four weight rows × nx ≤ 4 activation rows: 16 accumulators; out[r·4 + j] = row r · weight row j, the tail included.
 * pf: when not NULL, the next group's four weight rows, one line per row prefetched per 16 columns, so they stream
 * in from memory while this group computes. nx is a constant where tile_f32 inlines it. */
__attribute__((always_inline)) static inline void tile_f32_body(const float *w, int in, const float *x, const int nx,
                                                               float out[16], const float *pf) {
    const float *r0 = w, *r1 = w + in, *r2 = w + 2 * (size_t)in, *r3 = w + 3 * (size_t)in;
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
        for (int r = 0; r < nx; r++) {
            __m512 xv = _mm512_loadu_ps(x + (size_t)r * in + i);
            __asm__("" : "+v"(xv));
            a[r][0] = _mm512_fmadd_ps(w0, xv, a[r][0]);
            a[r][1] = _mm512_fmadd_ps(w1, xv, a[r][1]);
            a[r][2] = _mm512_fmadd_ps(w2, xv, a[r][2]);
            a[r][3] = _mm512_fmadd_ps(w3, xv, a[r][3]);
        }
    }
    __m512 t[16];
    for (int k = 0; k < 16; k++) t[jl_hsum16_slot(k)] = a[k / 4][k % 4];
    _mm512_storeu_ps(out, jl_hsum16(t));
    const float *rows[4] = {r0, r1, r2, r3};
    if (i < in)
        for (int k = 0; k < 4 * nx; k++) out[k] = tail_dot(rows[k % 4], x + (size_t)(k / 4) * in, i, in, out[k]);
}
#endif

static void tile_f32(const void *w, int in, const void *x, int nx, float out[16], const void *pf) {
#if defined(__AVX512F__)
    switch (nx) {
    case 4: tile_f32_body(w, in, x, 4, out, pf); break;
    case 3: tile_f32_body(w, in, x, 3, out, pf); break;
    case 2: tile_f32_body(w, in, x, 2, out, pf); break;
    default: tile_f32_body(w, in, x, 1, out, pf); break;
    }
#else /* portable: each output summed on its own, in column order (row-independent as well) */
    (void)pf;
    for (int k = 0; k < 4 * nx; k++)
        out[k] = tail_dot((const float *)w + (size_t)(k % 4) * in, (const float *)x + (size_t)(k / 4) * in, 0, in, 0.0f);
#endif
}

static float dot_f32(const void *wv, int in, const void *xv) {
    const float *w = wv, *x = xv;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < in; i++) s += w[i] * x[i];
    return s;
}

#if defined(__x86_64__)
/* The bf16 tile: as tile_f32_body with vdpbf16ps over 32-column chunks. */
__attribute__((target("avx512f,avx512bw,avx512bf16"), always_inline)) static inline void
tile_bf16_body(const uint16_t *w, int in, const uint16_t *x, const int nx, float out[16], const uint16_t *pf) {
    __m512 a[4][4];
    for (int r = 0; r < 4; r++)
        for (int j = 0; j < 4; j++) a[r][j] = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= in; i += 32) {
        if (pf)
            for (int j = 0; j < 4; j++) __builtin_prefetch(pf + (size_t)j * in + i);
        __m512i w0 = _mm512_loadu_si512(w + i), w1 = _mm512_loadu_si512(w + in + i);
        __m512i w2 = _mm512_loadu_si512(w + 2 * (size_t)in + i), w3 = _mm512_loadu_si512(w + 3 * (size_t)in + i);
        __asm__("" : "+v"(w0), "+v"(w1), "+v"(w2), "+v"(w3)); /* in registers, as in tile_f32_body */
        for (int r = 0; r < nx; r++) {
            __m512i xv = _mm512_loadu_si512(x + (size_t)r * in + i);
            __asm__("" : "+v"(xv));
            a[r][0] = _mm512_dpbf16_ps(a[r][0], (__m512bh)xv, (__m512bh)w0);
            a[r][1] = _mm512_dpbf16_ps(a[r][1], (__m512bh)xv, (__m512bh)w1);
            a[r][2] = _mm512_dpbf16_ps(a[r][2], (__m512bh)xv, (__m512bh)w2);
            a[r][3] = _mm512_dpbf16_ps(a[r][3], (__m512bh)xv, (__m512bh)w3);
        }
    }
    __m512 t[16];
    for (int k = 0; k < 16; k++) t[jl_hsum16_slot(k)] = a[k / 4][k % 4];
    _mm512_storeu_ps(out, jl_hsum16(t));
    if (i < in)
        for (int k = 0; k < 4 * nx; k++)
            out[k] = tail_dot16(w + (size_t)(k % 4) * in, x + (size_t)(k / 4) * in, i, in, out[k]);
}

BF16_TARGET static void tile_bf16(const void *w, int in, const void *x, int nx, float out[16], const void *pf) {
    switch (nx) {
    case 4: tile_bf16_body(w, in, x, 4, out, pf); break;
    case 3: tile_bf16_body(w, in, x, 3, out, pf); break;
    case 2: tile_bf16_body(w, in, x, 2, out, pf); break;
    default: tile_bf16_body(w, in, x, 1, out, pf); break;
    }
}

/* One weight row × one activation row (the rows past the last group of four): vdpbf16ps chunks, one reduction. */
BF16_TARGET static float dot_bf16(const void *wv, int in, const void *xv) {
    const uint16_t *w = wv, *x = xv;
    __m512 a = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= in; i += 32)
        a = _mm512_dpbf16_ps(a, (__m512bh)_mm512_loadu_si512(x + i), (__m512bh)_mm512_loadu_si512(w + i));
    return tail_dot16(w, x, i, in, _mm512_reduce_add_ps(a));
}
#else
/* Without bf16 dot products (jl_batch_set_precision refuses bf16 there): one sum per output, in column order. */
static void tile_bf16(const void *w, int in, const void *x, int nx, float out[16], const void *pf) {
    (void)pf;
    for (int k = 0; k < 4 * nx; k++)
        out[k] = tail_dot16((const uint16_t *)w + (size_t)(k % 4) * in, (const uint16_t *)x + (size_t)(k / 4) * in, 0, in, 0.0f);
}
static float dot_bf16(const void *w, int in, const void *x) { return tail_dot16(w, x, 0, in, 0.0f); }
#endif

/* A precision's kernels for tile_rows: the 4 × nx tile and the lone dot product of the rows past the last four. */
typedef struct {
    size_t elem; /* bytes per weight / activation */
    void (*tile)(const void *w, int in, const void *x, int nx, float out[16], const void *pf);
    float (*dot)(const void *w, int in, const void *x);
} tile_kernel;

static const tile_kernel kernel_f32 = {sizeof(float), tile_f32, dot_f32};
static const tile_kernel kernel_bf16 = {sizeof(uint16_t), tile_bf16, dot_bf16};

/* y[r·out + o] for one output o: the accumulate and bias order of jl_matvec_rows, (y + sum) + b. */
static void put(float *y, float s, const float *b, int o, int accumulate) {
    *y = (accumulate ? *y : 0.0f) + s + (b ? b[o] : 0.0f);
}

/* Outputs [o0, o1) (o0 a multiple of 4) of all R rows: each group of four weight rows against the rows four at
 * a time (the group after next prefetched during the first tile), then the outputs past the last whole group. */
static void tile_rows(const tile_kernel *k, float *y, const void *wv, const void *xv, const float *b, int in, int out,
                      int R, int o0, int o1, int accumulate) {
    const char *w = wv, *x = xv;
    const size_t row = (size_t)in * k->elem;
    const int g_end = out / 4 < (o1 + 3) / 4 ? out / 4 : (o1 + 3) / 4;
    for (int g = o0 / 4; g < g_end; g++) {
        const char *wg = w + (size_t)4 * g * row;
        for (int r = 0; r < R; r += 4) {
            const int nx = R - r < 4 ? R - r : 4;
            float s[16];
            k->tile(wg, in, x + (size_t)r * row, nx, s, r == 0 && g + 2 < g_end ? wg + 8 * row : NULL);
            for (int q = 0; q < 4 * nx; q++)
                put(y + (size_t)(r + q / 4) * out + 4 * g + q % 4, s[q], b, 4 * g + q % 4, accumulate);
        }
    }
    for (int o = 4 * (out / 4) > o0 ? 4 * (out / 4) : o0; o < o1; o++)
        for (int r = 0; r < R; r++) put(y + (size_t)r * out + o, k->dot(w + (size_t)o * row, in, x + (size_t)r * row), b, o, accumulate);
}

void jl_matmat_rows(float *y, const float *w, const float *x, const float *b, int in, int out, int R, int o0, int o1,
                    int accumulate) {
    if (R < 4) { /* decode of a few rows: the matrix-vector kernel (it prefetches the next rows itself) */
        for (int r = 0; r < R; r++)
            jl_matvec_rows(y + (size_t)r * out, w, x + (size_t)r * in, b, in, out, o0, o1, accumulate);
        return;
    }
    tile_rows(&kernel_f32, y, w, x, b, in, out, R, o0, o1, accumulate);
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

int jl_matmat_bf16_supported(void) {
#if defined(__x86_64__)
    return jl_cpu_has_bf16();
#else
    return 0;
#endif
}

void jl_matmat_bf16_rows(float *y, const uint16_t *w, const uint16_t *x, const float *b, int in, int out, int R,
                         int o0, int o1, int accumulate) {
    tile_rows(&kernel_bf16, y, w, x, b, in, out, R, o0, o1, accumulate);
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
