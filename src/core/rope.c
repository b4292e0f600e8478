/* Rotary position embedding, Hugging Face "rotate_half" layout: in each head, element i and element
 * i + hs/2 form one 2-D pair rotated by pos · theta^(-2i/hs). */
#include "core/kernels.h"
#include "core/parallel.h"
#include <math.h>

void jl_rope_table(float *table, int max_T, int hs, float theta) {
    const int half = hs / 2;
    for (int pos = 0; pos < max_T; pos++) {
        float *row = table + (size_t)pos * hs;
        for (int i = 0; i < half; i++) {
            /* double: at pos ~ 10⁴ a float angle would already be off by ~1e-3 rad */
            double angle = (double)pos * pow((double)theta, -2.0 * i / hs);
            row[i] = (float)cos(angle);
            row[half + i] = (float)sin(angle);
        }
    }
}

/* Rotates every head of every token by +angle (sign = 1) or -angle (sign = -1). Token t of row b is at
 * position pos0 + t, or t − start[b·T + t] when start is given (packed rows). */
static void rope_rotate(float *x, const float *table, int B, int T, int nheads, int hs, int stride, int pos0,
                        const int32_t *start, float sign) {
    const int half = hs / 2;
#pragma omp parallel for collapse(2) schedule(static) if (JL_WORTH_THREADS((size_t)B * T * nheads * hs))
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const int pos = start ? t - start[(size_t)b * T + t] : pos0 + t;
            const float *cosv = table + (size_t)pos * hs, *sinv = cosv + half;
            float *tok = x + ((size_t)b * T + t) * stride;
            for (int h = 0; h < nheads; h++) {
                float *lo = tok + (size_t)h * hs, *hi = lo + half;
#pragma omp simd
                for (int i = 0; i < half; i++) {
                    float x1 = lo[i], x2 = hi[i], s = sign * sinv[i];
                    lo[i] = x1 * cosv[i] - x2 * s;
                    hi[i] = x2 * cosv[i] + x1 * s;
                }
            }
        }
}

void jl_rope_forward(float *x, const float *table, int B, int T, int nheads, int hs, int stride, int pos0) {
    rope_rotate(x, table, B, T, nheads, hs, stride, pos0, NULL, 1.0f);
}

/* A rotation's transpose is the rotation by the opposite angle. */
void jl_rope_backward(float *dx, const float *table, int B, int T, int nheads, int hs, int stride, int pos0) {
    rope_rotate(dx, table, B, T, nheads, hs, stride, pos0, NULL, -1.0f);
}

void jl_rope_forward_seg(float *x, const float *table, int B, int T, int nheads, int hs, int stride,
                         const int32_t *seg_start) {
    rope_rotate(x, table, B, T, nheads, hs, stride, 0, seg_start, 1.0f);
}

void jl_rope_backward_seg(float *dx, const float *table, int B, int T, int nheads, int hs, int stride,
                          const int32_t *seg_start) {
    rope_rotate(dx, table, B, T, nheads, hs, stride, 0, seg_start, -1.0f);
}
