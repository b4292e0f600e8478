/* A vectorisable expf for the hot loops (softmax, cross-entropy, SiLU, GELU).
 * glibc declares its SIMD expf only under -ffast-math, which we do not use globally, so a plain
 * expf() call keeps GCC from vectorising those loops. This version is branch-free arithmetic that
 * GCC turns into AVX2/AVX-512 code inside `#pragma omp simd` loops.
 * Method: x = n·ln2 + r with |r| ≤ ln2/2 (Cody–Waite split of ln2 so r is exact to ~1 ulp),
 * e^r by its degree-7 Taylor polynomial (truncation < 6e-9 relative), 2^n built in the exponent bits.
 * Accuracy: within 2 ulp of expf over the whole range; inputs below -87.3 give 0 (not denormals),
 * inputs above 88.3 saturate at e^88.3 ≈ 2e38 instead of overflowing. */
#ifndef JL_CORE_VEXP_H
#define JL_CORE_VEXP_H
#include <math.h>
#include <stdint.h>
#include <string.h>

/* a·b + c. With -std=c11 GCC does not contract a*b+c into an FMA by itself, so ask for it explicitly
 * where the CPU has one (one rounding instead of two, and twice the throughput). */
#ifdef __FMA__
#define JL_FMA(a, b, c) fmaf((a), (b), (c))
#else
#define JL_FMA(a, b, c) ((a) * (b) + (c))
#endif

/* GCC's -march=native on AVX-512 CPUs still prefers 256-bit vectors; the exp-heavy loops run about
 * twice as fast with 512-bit ones, so those functions ask for them. */
#if defined(__GNUC__) && defined(__AVX512F__)
#define JL_WIDE_VECTORS __attribute__((target("prefer-vector-width=512")))
#else
#define JL_WIDE_VECTORS
#endif

#define JL_VEXP_MIN (-87.3f)
#define JL_VEXP_MAX 88.3f

static inline float jl_vexpf(float x) {
    const float round_magic = 12582912.0f; /* 1.5·2^23: adding it rounds a float to an integer */
    const float log2e = 1.44269504088896341f;
    const float ln2_hi = 0.693145751953125f; /* ln2 with the low 12 bits cleared: n·ln2_hi is exact */
    const float ln2_lo = 1.42860682030941723e-6f;
    /* written so that NaN clamps to the minimum too: the integer conversion below then stays defined */
    float xc = x > JL_VEXP_MIN ? (x < JL_VEXP_MAX ? x : JL_VEXP_MAX) : JL_VEXP_MIN;
    float n = JL_FMA(xc, log2e, round_magic) - round_magic;
    float r = JL_FMA(-n, ln2_lo, JL_FMA(-n, ln2_hi, xc));
    float p = 1.0f / 5040.0f;
    p = JL_FMA(p, r, 1.0f / 720.0f);
    p = JL_FMA(p, r, 1.0f / 120.0f);
    p = JL_FMA(p, r, 1.0f / 24.0f);
    p = JL_FMA(p, r, 1.0f / 6.0f);
    p = JL_FMA(p, r, 0.5f);
    p = JL_FMA(p, r, 1.0f);
    p = JL_FMA(p, r, 1.0f);
    int32_t bits = ((int32_t)n + 127) << 23; /* 2^n; n is in [-126, 128) after the clamp */
    float two_n;
    memcpy(&two_n, &bits, sizeof two_n);
    return x < JL_VEXP_MIN ? 0.0f : (x == x ? p * two_n : x); /* NaN in, NaN out */
}


#if defined(__AVX512F__)
#include <immintrin.h>
/* jl_vexpf of 16 lanes with AVX-512 intrinsics: the same operations in the same order (so bit-identical to it,
 * lane for lane), for the loops GCC would not vectorise (tests/test_kernels.c checks the equality). */
static inline __m512 jl_vexp16(__m512 x) {
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    const __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(JL_VEXP_MIN)), _mm512_set1_ps(JL_VEXP_MAX));
    const __m512 n = _mm512_sub_ps(_mm512_fmadd_ps(xc, _mm512_set1_ps(1.44269504088896341f), magic), magic);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860682030941723e-6f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    const float c[7] = {1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f, 0.5f, 1.0f, 1.0f};
    for (int i = 0; i < 7; i++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c[i]));
    const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127)), 23);
    __m512 y = _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
    y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);                        /* NaN in, NaN out */
    return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, _mm512_set1_ps(JL_VEXP_MIN), _CMP_LT_OQ), _mm512_setzero_ps());
}
#endif

#endif
