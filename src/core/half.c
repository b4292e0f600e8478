/* Array conversions between fp32 and fp16/bf16 (see half.h). */
#include "core/half.h"
#if defined(__F16C__) && defined(__AVX__)
#include <immintrin.h>
#define JL_HAVE_F16C 1
#endif

void jl_f32_to_f16_array(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
#ifdef JL_HAVE_F16C
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(dst + i), h);
    }
#endif
    for (; i < n; i++) dst[i] = jl_f32_to_f16(src[i]);
}

void jl_f16_to_f32_array(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
#ifdef JL_HAVE_F16C
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
#endif
    for (; i < n; i++) dst[i] = jl_f16_to_f32(src[i]);
}

void jl_f32_to_bf16_array(const float *src, uint16_t *dst, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) dst[i] = jl_f32_to_bf16(src[i]);
}

void jl_bf16_to_f32_array(const uint16_t *src, float *dst, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) dst[i] = jl_bf16_to_f32(src[i]);
}
