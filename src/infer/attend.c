/* One query head against the cache: scores, a max-shifted softmax, the weighted sum of values (see attend.h).
 * AVX-512 (hs a multiple of 16): the scores of 16 keys at once (16 dot products as FMAs, one transposed reduction,
 * jl_hsum16), the exponentials 16 at a time (jl_vexp16), and the values summed with the accumulators in registers
 * (two sets, even and odd keys) and normalised once at the end. Each score, hence each output, depends only on q
 * and the keys/values 0..n_keys-1 (never on what else runs), and the session's decode and the batch's rows both
 * call this function, so they stay bit-identical. Elsewhere: the portable loops below. */
#include "infer/attend.h"
#include "core/hsum16.h"
#include "core/vexp.h"
#include <math.h>
#include <string.h>

static void attend_portable(const float *q, const float *kc, const float *vc, int kvd, int hs, int n_keys,
                            float *att, float *out) {
    const float scale = 1.0f / sqrtf((float)hs);
    float maxv = -INFINITY, sum = 0.0f;
    for (int t = 0; t < n_keys; t++) {
        const float *k = kc + (size_t)t * kvd;
        float d = 0.0f;
#pragma omp simd reduction(+ : d)
        for (int i = 0; i < hs; i++) d += q[i] * k[i];
        att[t] = d * scale;
        maxv = att[t] > maxv ? att[t] : maxv;
    }
    for (int t = 0; t < n_keys; t++) {
        att[t] = jl_vexpf(att[t] - maxv);
        sum += att[t];
    }
    const float inv = 1.0f / sum;
    memset(out, 0, (size_t)hs * sizeof *out);
    for (int t = 0; t < n_keys; t++) {
        const float *v = vc + (size_t)t * kvd;
        const float a = att[t] * inv;
#pragma omp simd
        for (int i = 0; i < hs; i++) out[i] += a * v[i];
    }
}

#if defined(__AVX512F__)
/* Lane j: q · key t0+j (hs/16 chunks in order, then jl_hsum16's tree), scaled; lanes past nk read key t0 again
 * (a valid row) and are masked by the caller. */
static inline __m512 scores16(const float *q, const float *k0, int kvd, int hs, int nk, __m512 scale) {
    __m512 acc[16];
    const float *key[16];
    for (int j = 0; j < 16; j++) {
        acc[j] = _mm512_setzero_ps();
        key[j] = k0 + (size_t)(j < nk ? j : 0) * kvd;
    }
    for (int c = 0; c < hs; c += 16) {
        const __m512 qv = _mm512_loadu_ps(q + c);
        for (int j = 0; j < 16; j++)
            acc[jl_hsum16_slot(j)] = _mm512_fmadd_ps(qv, _mm512_loadu_ps(key[j] + c), acc[jl_hsum16_slot(j)]);
    }
    return _mm512_mul_ps(jl_hsum16(acc), scale);
}

/* att[t] = scaled score of key t; returns the largest. */
static float all_scores(const float *q, const float *kc, int kvd, int hs, int n_keys, float *att) {
    const __m512 scale = _mm512_set1_ps(1.0f / sqrtf((float)hs));
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (int t0 = 0; t0 < n_keys; t0 += 16) {
        const int nk = n_keys - t0 < 16 ? n_keys - t0 : 16;
        const __mmask16 m = (__mmask16)((1u << nk) - 1u);
        const __m512 s = scores16(q, kc + (size_t)t0 * kvd, kvd, hs, nk, scale);
        _mm512_mask_storeu_ps(att + t0, m, s);
        vmax = _mm512_mask_max_ps(vmax, m, vmax, s);
    }
    return _mm512_reduce_max_ps(vmax);
}

/* att[t] = exp(att[t] - maxv); returns their sum (16 lane sums, then one reduction). */
static float exponentials(float *att, int n_keys, float maxv) {
    const __m512 mv = _mm512_set1_ps(maxv);
    __m512 vsum = _mm512_setzero_ps();
    for (int t0 = 0; t0 < n_keys; t0 += 16) {
        const int nk = n_keys - t0 < 16 ? n_keys - t0 : 16;
        const __mmask16 m = (__mmask16)((1u << nk) - 1u);
        const __m512 e = jl_vexp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, att + t0), mv));
        _mm512_mask_storeu_ps(att + t0, m, e);
        vsum = _mm512_mask_add_ps(vsum, m, vsum, e);
    }
    return _mm512_reduce_add_ps(vsum);
}

/* out[c0 .. c0+16·nv) = inv · Σ_t att[t] · v_t, nv ≤ 4 vectors; even and odd keys in two sets of accumulators. */
static void weighted_values(const float *vc, int kvd, int n_keys, const float *att, float inv, int c0, int nv,
                            float *out) {
    __m512 e[4], o[4];
    for (int i = 0; i < 4; i++) e[i] = o[i] = _mm512_setzero_ps();
    int t = 0;
    for (; t + 2 <= n_keys; t += 2) {
        const float *v0 = vc + (size_t)t * kvd + c0, *v1 = v0 + kvd;
        const __m512 a0 = _mm512_set1_ps(att[t]), a1 = _mm512_set1_ps(att[t + 1]);
        for (int i = 0; i < nv; i++) {
            e[i] = _mm512_fmadd_ps(a0, _mm512_loadu_ps(v0 + 16 * i), e[i]);
            o[i] = _mm512_fmadd_ps(a1, _mm512_loadu_ps(v1 + 16 * i), o[i]);
        }
    }
    if (t < n_keys) {
        const float *v0 = vc + (size_t)t * kvd + c0;
        const __m512 a0 = _mm512_set1_ps(att[t]);
        for (int i = 0; i < nv; i++) e[i] = _mm512_fmadd_ps(a0, _mm512_loadu_ps(v0 + 16 * i), e[i]);
    }
    const __m512 vi = _mm512_set1_ps(inv);
    for (int i = 0; i < nv; i++) _mm512_storeu_ps(out + c0 + 16 * i, _mm512_mul_ps(_mm512_add_ps(e[i], o[i]), vi));
}
#endif

void jl_attend_head(const float *q, const float *kc, const float *vc, int kvd, int hs, int n_keys, float *att,
                    float *out) {
#if defined(__AVX512F__)
    if (hs % 16 == 0) {
        const float maxv = all_scores(q, kc, kvd, hs, n_keys, att);
        const float inv = 1.0f / exponentials(att, n_keys, maxv);
        for (int c0 = 0; c0 < hs; c0 += 64) {
            const int nv = (hs - c0) / 16 < 4 ? (hs - c0) / 16 : 4;
            switch (nv) { /* constant trip counts keep the accumulators in registers */
            case 4: weighted_values(vc, kvd, n_keys, att, inv, c0, 4, out); break;
            case 3: weighted_values(vc, kvd, n_keys, att, inv, c0, 3, out); break;
            case 2: weighted_values(vc, kvd, n_keys, att, inv, c0, 2, out); break;
            default: weighted_values(vc, kvd, n_keys, att, inv, c0, 1, out); break;
            }
        }
        return;
    }
#endif
    attend_portable(q, kc, vc, kvd, hs, n_keys, att, out);
}
