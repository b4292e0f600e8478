/* Causal self-attention with grouped-query heads, on a packed qkv buffer.
 * Each (batch, head) is a handful of sgemm calls that read q, k and v in place (leading dimension = the
 * qkv row stride), so nothing is copied. OpenMP runs the heads in parallel; the OpenMP flavour of OpenBLAS
 * runs single-threaded inside a parallel region, which is what we want here.
 * Only the causal (lower-triangular) part of the T×T scores is computed: query rows go in blocks of
 * JL_ATT_BLOCK, and a block of rows [i0, i1) only needs keys [0, i1). At T = 256 that is 10/16 of the
 * full products; blocks of 32..128 measured alike, and all beat one full sgemm + mask.
 * Packed rows (several sequences per row, jl_attention_forward_seg): token t sees keys [start[t], t] only
 * (block-diagonal causal). Each segment runs as a causal sequence of its own (blocks counted from its first
 * token), so no product between two segments is computed, forward or backward: a row of two halves costs
 * about half of one causal row, and a value of one segment (even NaN) cannot reach another. */
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

/* End (exclusive) of the segment that opens at token t: the next token that opens one, or T. */
static int seg_end(const int32_t *start, int t, int T) {
    if (!start) return T;
    int e = t + 1;
    while (e < T && start[e] != e) e++;
    return e;
}

/* Rows [i0, i1) of one causal sequence's scores (row stride ld) hold raw scores in columns [0, i1); row t
 * keeps columns [0, t] and becomes probabilities; columns (t, n) become 0 (n = the sequence's length).
 * Rows are short (1..n), so instead of a scalar tail the sweeps run to t+1 rounded up to whole vectors
 * and mask the extra columns (scores the sgemm computed anyway): they take no part in the max and get
 * probability 0. */
JL_WIDE_VECTORS static void causal_softmax_rows(float *att, int ld, int i0, int i1, int n) {
    enum { VEC = 16 };
    for (int t = i0; t < i1; t++) {
        float *row = att + (size_t)t * ld;
        int len = (t + VEC) / VEC * VEC;
        if (len > i1) len = i1;
        float maxv = -INFINITY;
#pragma omp simd reduction(max : maxv)
        for (int j = 0; j < len; j++) maxv = j <= t && row[j] > maxv ? row[j] : maxv;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < len; j++) {
            float e = j <= t ? jl_vexpf(row[j] - maxv) : 0.0f;
            row[j] = e;
            sum += e;
        }
        float inv = 1.0f / sum;
#pragma omp simd
        for (int j = 0; j < len; j++) row[j] *= inv;
        memset(row + len, 0, (size_t)(n - len) * sizeof *row);
    }
}

/* One causal sequence of n tokens of one (batch, head): q, k, v point at its first token inside qkv (row
 * stride S); out has row stride ldo; att is its n×n block of scores, row stride ld. */
static void seq_forward(float *out, float *att, int ld, const float *q, const float *k, const float *v, int n,
                        int hs, int S, int ldo, float scale) {
    for (int i0 = 0; i0 < n; i0 += JL_ATT_BLOCK) {
        int i1 = min_int(i0 + JL_ATT_BLOCK, n), m = i1 - i0;
        float *att_rows = att + (size_t)i0 * ld;
        /* scores[i0:i1, 0:i1] = scale · Q[i0:i1] · K[0:i1]ᵀ */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, i1, hs, scale, q + (size_t)i0 * S, S, k, S, 0.0f,
                    att_rows, ld);
        causal_softmax_rows(att, ld, i0, i1, n);
        /* out[i0:i1] = att[i0:i1, 0:i1] · V[0:i1] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hs, i1, 1.0f, att_rows, ld, v, S, 0.0f,
                    out + (size_t)i0 * ldo, ldo);
    }
}

/* One (batch, head): q, k, v point at position 0 of their head inside qkv (row stride S); out has row
 * stride ldo; att is this head's T×T block, zero outside each token's window; start: the row's segments. */
static void head_forward(float *out, float *att, const float *q, const float *k, const float *v,
                         const int32_t *start, int T, int hs, int S, int ldo, float scale) {
    for (int s0 = 0, s1; s0 < T; s0 = s1) {
        s1 = seg_end(start, s0, T);
        const size_t o = (size_t)s0 * S;
        seq_forward(out + (size_t)s0 * ldo, att + (size_t)s0 * T + s0, T, q + o, k + o, v + o, s1 - s0, hs, S, ldo,
                    scale);
        for (int t = s0; t < s1 && start; t++) { /* the other segments' columns */
            memset(att + (size_t)t * T, 0, (size_t)s0 * sizeof *att);
            memset(att + (size_t)t * T + s1, 0, (size_t)(T - s1) * sizeof *att);
        }
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

/* Softmax backward on rows [i0, i1) of one causal sequence (row stride ld): datt := scale · att ⊙ (datt −
 * Σⱼ att·datt), the gradient of the scaled scores, on each row's window [0, t]; columns (t, i1) become 0, so
 * the block [0, i1) can feed the sgemms below. */
static void causal_softmax_backward_rows(float *datt, const float *att, int ld, int i0, int i1, float scale) {
    for (int t = i0; t < i1; t++) {
        float *drow = datt + (size_t)t * ld;
        const float *prow = att + (size_t)t * ld;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j <= t; j++) dot += prow[j] * drow[j];
#pragma omp simd
        for (int j = 0; j <= t; j++) drow[j] = scale * prow[j] * (drow[j] - dot);
        if (t + 1 < i1) memset(drow + t + 1, 0, (size_t)(i1 - 1 - t) * sizeof *drow);
    }
}

typedef struct {
    const float *q, *k, *v, *dout, *att;
    float *dq, *dk, *dv, *datt;
    int ld; /* row stride of att and datt */
} seq_ptrs;

/* One causal sequence of n tokens of one (batch, query head), every pointer at its first token. dk and dv
 * belong to its kv head and are accumulated into. */
static void seq_backward(const seq_ptrs *p, int n, int hs, int S, int ldo, float scale) {
    /* Per query block: scores gradient, then dQ[i0:i1] += dS[i0:i1, 0:i1] · K[0:i1]. */
    for (int i0 = 0; i0 < n; i0 += JL_ATT_BLOCK) {
        int i1 = min_int(i0 + JL_ATT_BLOCK, n), m = i1 - i0;
        float *drows = p->datt + (size_t)i0 * p->ld;
        /* datt[i0:i1, 0:i1] = dout[i0:i1] · V[0:i1]ᵀ */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, i1, hs, 1.0f, p->dout + (size_t)i0 * ldo, ldo, p->v,
                    S, 0.0f, drows, p->ld);
        causal_softmax_backward_rows(p->datt, p->att, p->ld, i0, i1, scale);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hs, i1, 1.0f, drows, p->ld, p->k, S, 1.0f,
                    p->dq + (size_t)i0 * S, S);
    }
    /* Per key block [j0, j1): query rows [j0, n) see these keys; their columns [j0, j1) were written above
     * (a row's query block ends at or after j1), and att is zero right of each row's diagonal. */
    for (int j0 = 0; j0 < n; j0 += JL_ATT_BLOCK) {
        int j1 = min_int(j0 + JL_ATT_BLOCK, n), w = j1 - j0, rows = n - j0;
        size_t corner = (size_t)j0 * p->ld + j0;
        /* dV[j0:j1] += att[j0:n, j0:j1]ᵀ · dout[j0:n] */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, w, hs, rows, 1.0f, p->att + corner, p->ld,
                    p->dout + (size_t)j0 * ldo, ldo, 1.0f, p->dv + (size_t)j0 * S, S);
        /* dK[j0:j1] += dS[j0:n, j0:j1]ᵀ · Q[j0:n] */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, w, hs, rows, 1.0f, p->datt + corner, p->ld,
                    p->q + (size_t)j0 * S, S, 1.0f, p->dk + (size_t)j0 * S, S);
    }
}

/* One (batch, query head) over the row's segments; p holds its pointers at position 0 (ld = T). */
static void head_backward(const seq_ptrs *p, const int32_t *start, int T, int hs, int S, int ldo, float scale) {
    for (int s0 = 0, s1; s0 < T; s0 = s1) {
        s1 = seg_end(start, s0, T);
        const size_t o = (size_t)s0 * S, od = (size_t)s0 * ldo, oa = (size_t)s0 * T + s0;
        const seq_ptrs q = {.q = p->q + o, .k = p->k + o, .v = p->v + o, .dout = p->dout + od, .att = p->att + oa,
                            .dq = p->dq + o, .dk = p->dk + o, .dv = p->dv + o, .datt = p->datt + oa, .ld = T};
        seq_backward(&q, s1 - s0, hs, S, ldo, scale);
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
                seq_ptrs p = {
                    .q = qkv + tok0 + (size_t)h * hs,
                    .k = qkv + tok0 + (size_t)(nh + kvh) * hs,
                    .v = qkv + tok0 + (size_t)(nh + nkv + kvh) * hs,
                    .dout = dout + (size_t)b * T * ldo + (size_t)h * hs,
                    .att = att + att_off,
                    .dq = dqkv + tok0 + (size_t)h * hs,
                    .dk = dqkv + tok0 + (size_t)(nh + kvh) * hs,
                    .dv = dqkv + tok0 + (size_t)(nh + nkv + kvh) * hs,
                    .datt = datt + att_off,
                    .ld = T,
                };
                head_backward(&p, seg_start ? seg_start + (size_t)b * T : NULL, T, hs, S, ldo, scale);
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
