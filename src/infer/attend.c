/* One query head against the cache: scores, a max-shifted softmax, the weighted sum of values (see attend.h). */
#include "infer/attend.h"
#include "core/vexp.h"
#include <math.h>
#include <string.h>

void jl_attend_head(const float *q, const float *kc, const float *vc, int kvd, int hs, int n_keys, float *att,
                    float *out) {
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
