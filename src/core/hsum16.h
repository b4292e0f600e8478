/* Sixteen horizontal sums at once (AVX-512): the fp32 batch product's 4×4 tiles (src/infer/batch_linear.c) and
 * the decode attention's scores of 16 keys (src/infer/attend.c). */
#ifndef JL_CORE_HSUM16_H
#define JL_CORE_HSUM16_H
#if defined(__x86_64__)
#include <immintrin.h>

/* Lane k of the result is a[k]'s 16 lanes summed by the tree of _mm512_reduce_add_ps (lane j + lane j+8, then + j+4,
 * then + j+2, then + j+1), each step adding pairs of vectors after a shuffle, so 15 adds and 30 shuffles instead of
 * 16 × (4 adds + shuffles). The shuffles leave the sum of a[i] in lane (i % 4)·4 + i / 4, so the callers pass the
 * vector meant for lane k as a[jl_hsum16_slot(k)]. Each lane's sum depends on its own vector only. */
__attribute__((target("avx512f"), always_inline)) static inline __m512 jl_hsum16(const __m512 a[16]) {
    __m512 s1[8], s2[4], s3[2];
    for (int k = 0; k < 8; k++) /* lanes j + j+8 of a[2k] | of a[2k+1] */
        s1[k] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1], 0x44),
                              _mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1], 0xEE));
    for (int k = 0; k < 4; k++) /* + j+4: four outputs, four lanes each */
        s2[k] = _mm512_add_ps(_mm512_shuffle_f32x4(s1[2 * k], s1[2 * k + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                              _mm512_shuffle_f32x4(s1[2 * k], s1[2 * k + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    for (int k = 0; k < 2; k++) { /* + j+2: per 128 bits two outputs, two lanes each */
        const __m512d p = _mm512_castps_pd(s2[2 * k]), q = _mm512_castps_pd(s2[2 * k + 1]);
        s3[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(p, q)), _mm512_castpd_ps(_mm512_unpackhi_pd(p, q)));
    }
    return _mm512_add_ps(_mm512_shuffle_ps(s3[0], s3[1], _MM_SHUFFLE(2, 0, 2, 0)), /* + j+1 */
                         _mm512_shuffle_ps(s3[0], s3[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

/* Where jl_hsum16 wants the vector whose sum should land in lane k. */
static inline int jl_hsum16_slot(int k) { return (k % 4) * 4 + k / 4; }
#endif
#endif
