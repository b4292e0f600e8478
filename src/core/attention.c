/* Causal self-attention with grouped-query heads, on a packed qkv buffer.
 * Each (batch, head) is a handful of sgemm calls that read q, k and v in place (leading dimension = the
 * qkv row stride), so nothing is copied. OpenMP runs the heads in parallel; the OpenMP flavour of OpenBLAS
 * runs single-threaded inside a parallel region, which is what we want here.
 * Only the causal (lower-triangular) part of the T×T scores is computed: query rows go in blocks of
 * JL_ATT_BLOCK, and a block of rows [i0, i1) only needs keys [0, i1). At T = 256 that is 10/16 of the
 * full products; blocks of 32..128 measured alike, and all beat one full sgemm + mask.
 * Packed rows (several sequences per row, jl_attention_forward_seg): token t sees keys [start[t], t] only
 * (block-diagonal causal), and a query block needs keys [start[i0], i1) only, so packing short sequences
 * also skips the products between them. */
#include "core/kernels.h"
#include "core/parallel.h"
#include "core/vexp.h"
#include <cblas.h>
#include <math.h>
#include <string.h>

#ifndef JL_ATT_BLOCK
#define JL_ATT_BLOCK 64
#endif

static inline int min_int(int a, int b) { return a < b ? a : b; }

/* First key of token t's segment: 0 for a plain causal row (start == NULL). */
static inline int seg_first(const int32_t *start, int t) { return start ? start[t] : 0; }

/* Rows [i0, i1) of the T×T scores hold raw scores in columns [k0, i1) (k0 = the first key of row i0);
 * row t keeps columns [s, t] (s = its segment's first key) and becomes probabilities; every other column of
 * the row becomes 0 (the stored att is zero outside each row's window).
 * Rows are short (1..T), so instead of a scalar tail the sweeps run to t+1 rounded up to whole vectors
 * and mask the extra columns (scores the sgemm computed anyway): they take no part in the max and get
 * probability 0. */
JL_WIDE_VECTORS static void causal_softmax_rows(float *att, const int32_t *start, int i0, int i1, int T) {
    enum { VEC = 16 };
    const int k0 = seg_first(start, i0);
    for (int t = i0; t < i1; t++) {
        float *row = att + (size_t)t * T;
        const int s = seg_first(start, t);
        int len = (t + VEC) / VEC * VEC;
        if (len > i1) len = i1;
        float maxv = -INFINITY;
#pragma omp simd reduction(max : maxv)
        for (int j = k0; j < len; j++) maxv = j >= s && j <= t && row[j] > maxv ? row[j] : maxv;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int j = k0; j < len; j++) {
            float e = j >= s && j <= t ? jl_vexpf(row[j] - maxv) : 0.0f;
            row[j] = e;
            sum += e;
        }
        float inv = 1.0f / sum;
#pragma omp simd
        for (int j = k0; j < len; j++) row[j] *= inv;
        memset(row, 0, (size_t)k0 * sizeof *row);
        memset(row + len, 0, (size_t)(T - len) * sizeof *row);
    }
}

/* One (batch, head): q, k, v point at position 0 of their head inside qkv (row stride S); out has row
 * stride ldo; att is this head's T×T block; start is this row's segment starts or NULL. */
static void head_forward(float *out, float *att, const float *q, const float *k, const float *v,
                         const int32_t *start, int T, int hs, int S, int ldo, float scale) {
    for (int i0 = 0; i0 < T; i0 += JL_ATT_BLOCK) {
        int i1 = min_int(i0 + JL_ATT_BLOCK, T), m = i1 - i0, k0 = seg_first(start, i0), n = i1 - k0;
        float *att_rows = att + (size_t)i0 * T + k0;
        /* scores[i0:i1, k0:i1] = scale · Q[i0:i1] · K[k0:i1]ᵀ */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, hs, scale, q + (size_t)i0 * S, S,
                    k + (size_t)k0 * S, S, 0.0f, att_rows, T);
        causal_softmax_rows(att, start, i0, i1, T);
        /* out[i0:i1] = att[i0:i1, k0:i1] · V[k0:i1] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hs, n, 1.0f, att_rows, T, v + (size_t)k0 * S, S,
                    0.0f, out + (size_t)i0 * ldo, ldo);
    }
}

void jl_attention_forward_seg(float *out, float *att, const float *qkv, int B, int T, int nh, int nkv, int hs,
                              const int32_t *seg_start) {
    if (B <= 0 || T <= 0 || nh <= 0 || nkv <= 0 || hs <= 0) return;
    const int S = (nh + 2 * nkv) * hs, ldo = nh * hs, group = nh / nkv;
    const float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (JL_WORTH_THREADS((double)B * nh * T * T))
    for (int b = 0; b < B; b++)
        for (int h = 0; h < nh; h++) {
            const float *base = qkv + (size_t)b * T * S;
            int kvh = h / group;
            head_forward(out + (size_t)b * T * ldo + (size_t)h * hs, att + ((size_t)b * nh + h) * T * T,
                         base + (size_t)h * hs, base + (size_t)(nh + kvh) * hs, base + (size_t)(nh + nkv + kvh) * hs,
                         seg_start ? seg_start + (size_t)b * T : NULL, T, hs, S, ldo, scale);
        }
}

void jl_attention_forward(float *out, float *att, const float *qkv, int B, int T, int nh, int nkv, int hs) {
    jl_attention_forward_seg(out, att, qkv, B, T, nh, nkv, hs, NULL);
}

/* Softmax backward on rows [i0, i1): datt := scale · att ⊙ (datt − Σⱼ att·datt), the gradient of the
 * scaled scores, on each row's window [s, t]. Columns [lo, s) and (t, i1) become 0, lo = the first key of
 * row i0 rounded down to a whole block, so the block [lo, i1) can feed the sgemms below. */
static void causal_softmax_backward_rows(float *datt, const float *att, const int32_t *start, int i0, int i1, int T,
                                         float scale) {
    const int lo = seg_first(start, i0) / JL_ATT_BLOCK * JL_ATT_BLOCK;
    for (int t = i0; t < i1; t++) {
        float *drow = datt + (size_t)t * T;
        const float *prow = att + (size_t)t * T;
        const int s = seg_first(start, t);
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int j = s; j <= t; j++) dot += prow[j] * drow[j];
#pragma omp simd
        for (int j = s; j <= t; j++) drow[j] = scale * prow[j] * (drow[j] - dot);
        memset(drow + lo, 0, (size_t)(s - lo) * sizeof *drow);
        if (t + 1 < i1) memset(drow + t + 1, 0, (size_t)(i1 - 1 - t) * sizeof *drow);
    }
}

typedef struct {
    const float *q, *k, *v, *dout, *att;
    float *dq, *dk, *dv, *datt;
    const int32_t *start; /* this row's segment starts, or NULL */
} head_ptrs;

/* End (exclusive) of the segment that holds token t: the first later token that starts a segment, or T. */
static int seg_end(const int32_t *start, int t, int T) {
    if (!start) return T;
    int e = t + 1;
    while (e < T && start[e] != e) e++;
    return e;
}

/* One (batch, query head). dk and dv belong to its kv head and are accumulated into. */
static void head_backward(const head_ptrs *p, int T, int hs, int S, int ldo, float scale) {
    /* Per query block: scores gradient, then dQ[i0:i1] += dS[i0:i1, k0:i1] · K[k0:i1]. */
    for (int i0 = 0; i0 < T; i0 += JL_ATT_BLOCK) {
        int i1 = min_int(i0 + JL_ATT_BLOCK, T), m = i1 - i0, k0 = seg_first(p->start, i0), n = i1 - k0;
        float *drows = p->datt + (size_t)i0 * T + k0;
        /* datt[i0:i1, k0:i1] = dout[i0:i1] · V[k0:i1]ᵀ */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, hs, 1.0f, p->dout + (size_t)i0 * ldo, ldo,
                    p->v + (size_t)k0 * S, S, 0.0f, drows, T);
        causal_softmax_backward_rows(p->datt, p->att, p->start, i0, i1, T, scale);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hs, n, 1.0f, drows, T, p->k + (size_t)k0 * S, S,
                    1.0f, p->dq + (size_t)i0 * S, S);
    }
    /* Per key block [j0, j1): only query rows t in [j0, e) see these keys, e = the end of the segment of key
     * j1 − 1. Such a row lies in a query block that ends at or after j1 and whose first key, rounded down to a
     * block, is at most j0 (its segment began at or before j1 − 1), so columns [j0, j1) of it were written
     * above; att is zero outside each row's window. */
    for (int j0 = 0; j0 < T; j0 += JL_ATT_BLOCK) {
        int j1 = min_int(j0 + JL_ATT_BLOCK, T), w = j1 - j0, rows = seg_end(p->start, j1 - 1, T) - j0;
        size_t corner = (size_t)j0 * T + j0;
        /* dV[j0:j1] += att[j0:e, j0:j1]ᵀ · dout[j0:e] */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, w, hs, rows, 1.0f, p->att + corner, T,
                    p->dout + (size_t)j0 * ldo, ldo, 1.0f, p->dv + (size_t)j0 * S, S);
        /* dK[j0:j1] += dS[j0:e, j0:j1]ᵀ · Q[j0:e] */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, w, hs, rows, 1.0f, p->datt + corner, T,
                    p->q + (size_t)j0 * S, S, 1.0f, p->dk + (size_t)j0 * S, S);
    }
}

void jl_attention_backward_seg(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att,
                               int B, int T, int nh, int nkv, int hs, const int32_t *seg_start) {
    if (B <= 0 || T <= 0 || nh <= 0 || nkv <= 0 || hs <= 0) return;
    const int S = (nh + 2 * nkv) * hs, ldo = nh * hs, group = nh / nkv;
    const float scale = 1.0f / sqrtf((float)hs);
    /* The query heads of one group all add into the same dk/dv, so a thread owns a whole (b, kv head). */
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (JL_WORTH_THREADS((double)B * nh * T * T))
    for (int b = 0; b < B; b++)
        for (int kvh = 0; kvh < nkv; kvh++) {
            size_t tok0 = (size_t)b * T * S;
            for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                size_t att_off = ((size_t)b * nh + h) * T * T;
                head_ptrs p = {
                    .q = qkv + tok0 + (size_t)h * hs,
                    .k = qkv + tok0 + (size_t)(nh + kvh) * hs,
                    .v = qkv + tok0 + (size_t)(nh + nkv + kvh) * hs,
                    .dout = dout + (size_t)b * T * ldo + (size_t)h * hs,
                    .att = att + att_off,
                    .dq = dqkv + tok0 + (size_t)h * hs,
                    .dk = dqkv + tok0 + (size_t)(nh + kvh) * hs,
                    .dv = dqkv + tok0 + (size_t)(nh + nkv + kvh) * hs,
                    .datt = datt + att_off,
                    .start = seg_start ? seg_start + (size_t)b * T : NULL,
                };
                head_backward(&p, T, hs, S, ldo, scale);
            }
        }
}

void jl_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att,
                           int B, int T, int nh, int nkv, int hs) {
    jl_attention_backward_seg(dqkv, datt, dout, qkv, att, B, T, nh, nkv, hs, NULL);
}

int jl_segments_valid(const int32_t *seg_start, int B, int T, long *bad) {
    for (long n = 0; n < (long)B * T; n++) {
        const long t = n % T;
        const int32_t s = seg_start[n];
        if (s == t || (t > 0 && s == seg_start[n - 1])) continue;
        if (bad) *bad = n;
        return 0;
    }
    return 1;
}
