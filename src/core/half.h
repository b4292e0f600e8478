/* fp32 <-> fp16 (IEEE binary16) and fp32 <-> bf16 conversions, round-to-nearest-even, with infinities, NaNs
 * (kept NaN, made quiet) and fp16 subnormals. Scalar versions are inline bit manipulation; the array versions
 * (half.c) use the F16C instructions when the build targets them and give identical results. */
#ifndef JL_CORE_HALF_H
#define JL_CORE_HALF_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t jl_f32_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    return x;
}

static inline float jl_bits_f32(uint32_t x) {
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

/* Magnitudes below 2^-14 become fp16 subnormals: units of 2^-24, rounded to nearest even. */
static inline uint16_t jl_f16_subnormal(uint32_t abs_bits) {
    if (abs_bits < 0x33000000u) return 0; /* below 2^-25 (2^-25 itself is a tie that rounds to even 0) */
    uint32_t exp = abs_bits >> 23, mant = (abs_bits & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - exp; /* value = mant * 2^(exp-150) = (mant >> shift) * 2^-24; shift in 14..24 */
    uint32_t h = mant >> shift, rest = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rest > half || (rest == half && (h & 1))) h++; /* may carry into the smallest normal: still right */
    return (uint16_t)h;
}

static inline uint16_t jl_f32_to_f16(float f) {
    uint32_t x = jl_f32_bits(f), sign = (x >> 16) & 0x8000u, abs_bits = x & 0x7fffffffu;
    if (abs_bits > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((abs_bits >> 13) & 0x3ffu)); /* quiet NaN */
    if (abs_bits >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 (and inf) round to inf */
    if (abs_bits < 0x38800000u) return (uint16_t)(sign | jl_f16_subnormal(abs_bits));
    uint32_t r = abs_bits - 0x38000000u;  /* rebias the exponent from 127 to 15 */
    r += 0xfffu + ((r >> 13) & 1);        /* round to nearest, ties to even; a carry bumps the exponent */
    return (uint16_t)(sign | (r >> 13));
}

static inline float jl_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    if (exp == 0x1f) return jl_bits_f32(sign | 0x7f800000u | (mant << 13));
    if (exp != 0) return jl_bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
    if (mant == 0) return jl_bits_f32(sign);
    uint32_t e = 113; /* subnormal: normalise so the leading 1 becomes implicit */
    while (!(mant & 0x400u)) {
        mant <<= 1;
        e--;
    }
    return jl_bits_f32(sign | (e << 23) | ((mant & 0x3ffu) << 13));
}

static inline uint16_t jl_f32_to_bf16(float f) {
    uint32_t x = jl_f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1); /* round to nearest even; the largest floats round to inf */
    return (uint16_t)(x >> 16);
}

static inline float jl_bf16_to_f32(uint16_t b) { return jl_bits_f32((uint32_t)b << 16); }

void jl_f32_to_f16_array(const float *src, uint16_t *dst, size_t n);
void jl_f16_to_f32_array(const uint16_t *src, float *dst, size_t n);
void jl_f32_to_bf16_array(const float *src, uint16_t *dst, size_t n);
void jl_bf16_to_f32_array(const uint16_t *src, float *dst, size_t n);

#endif
