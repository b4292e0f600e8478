/* fp16 / bf16 conversions: exhaustive round trips, ties-to-even at every midpoint, specials, array = scalar. */
#include "testutil.h"
#include "core/half.h"
#include "core/rng.h"
#include <math.h>

static int f16_is_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }
static int bf16_is_nan(uint16_t b) { return (b & 0x7f80) == 0x7f80 && (b & 0x7f); }

static void test_f16_exhaustive_round_trip(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = jl_f16_to_f32((uint16_t)h);
        uint16_t back = jl_f32_to_f16(f);
        if (f16_is_nan((uint16_t)h)) {
            assert_true(isnan(f));
            assert_true(f16_is_nan(back));
        } else if (back != h) {
            fail_msg("half 0x%04x -> %g -> 0x%04x", h, (double)f, back);
        }
    }
}

static void test_f16_known_values(void **state) {
    (void)state;
    assert_true(jl_f16_to_f32(0x3c00) == 1.0f);
    assert_true(jl_f16_to_f32(0xc000) == -2.0f);
    assert_true(jl_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(jl_f16_to_f32(0x0400) == ldexpf(1, -14));
    assert_true(jl_f16_to_f32(0x0001) == ldexpf(1, -24));
    assert_true(jl_f16_to_f32(0x03ff) == ldexpf(1023, -24));
    assert_true(isinf(jl_f16_to_f32(0x7c00)) && jl_f16_to_f32(0xfc00) < 0);
    assert_true(signbit(jl_f16_to_f32(0x8000)) && jl_f16_to_f32(0x8000) == 0.0f);
    assert_int_equal(jl_f32_to_f16(1e9f), 0x7c00);
    assert_int_equal(jl_f32_to_f16(-INFINITY), 0xfc00);
    assert_int_equal(jl_f32_to_f16(65519.99f), 0x7bff);
    assert_int_equal(jl_f32_to_f16(65520.0f), 0x7c00); /* the tie above 65504 rounds to even: inf */
    assert_int_equal(jl_f32_to_f16(1e-10f), 0x0000);
    assert_int_equal(jl_f32_to_f16(-1e-10f), 0x8000);
    assert_int_equal(jl_f32_to_f16(ldexpf(1, -25)), 0x0000); /* tie between 0 and 2^-24: even is 0 */
    assert_int_equal(jl_f32_to_f16(ldexpf(1.5f, -25)), 0x0001);
    assert_int_equal(jl_f32_to_f16(ldexpf(3, -25)), 0x0002); /* tie between 1 and 2 units: even is 2 */
    assert_true(f16_is_nan(jl_f32_to_f16(NAN)));
    assert_true(f16_is_nan(jl_f32_to_f16(jl_bits_f32(0x7f800001u)))); /* payload only in low bits: still NaN */
}

/* Between every pair of adjacent finite halves the exact midpoint must go to the even one, and one float ulp
 * either side to the nearer one. Covers subnormals, every exponent and the overflow edge. */
static void test_f16_rounds_to_nearest_even_everywhere(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 0x7c00; h++) {
        float lo = jl_f16_to_f32((uint16_t)h);
        double hi = h == 0x7bff ? 65536.0 : (double)jl_f16_to_f32((uint16_t)(h + 1));
        float mid = (float)((lo + hi) / 2); /* exact: 12 significant bits */
        uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        for (int s = 0; s < 2; s++) {
            uint16_t sign = s ? 0x8000 : 0;
            float m = s ? -mid : mid;
            assert_int_equal(jl_f32_to_f16(m), even | sign);
            assert_int_equal(jl_f32_to_f16(nextafterf(m, 0)), h | sign);
            assert_int_equal(jl_f32_to_f16(nextafterf(m, s ? -INFINITY : INFINITY)), (h + 1) | sign);
        }
    }
}

static void test_bf16_round_trip_and_rounding(void **state) {
    (void)state;
    for (uint32_t b = 0; b < 65536; b++) {
        float f = jl_bf16_to_f32((uint16_t)b);
        uint16_t back = jl_f32_to_bf16(f);
        if (bf16_is_nan((uint16_t)b)) assert_true(bf16_is_nan(back));
        else assert_int_equal(back, b);
        if ((b & 0x7fff) >= 0x7f7f) continue; /* last finite and beyond */
        uint32_t mid_bits = (b << 16) | 0x8000u; /* exact midpoint to the next bf16 of the same sign */
        uint16_t even = (b & 1) ? (uint16_t)(b + 1) : (uint16_t)b;
        assert_int_equal(jl_f32_to_bf16(jl_bits_f32(mid_bits)), even);
        assert_int_equal(jl_f32_to_bf16(jl_bits_f32(mid_bits - 1)), b);
        assert_int_equal(jl_f32_to_bf16(jl_bits_f32(mid_bits + 1)), b + 1);
    }
    assert_int_equal(jl_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(jl_f32_to_bf16(3.4028235e38f), 0x7f80); /* FLT_MAX rounds to inf */
    assert_true(bf16_is_nan(jl_f32_to_bf16(jl_bits_f32(0x7f800001u))));
    assert_true(bf16_is_nan(jl_f32_to_bf16(-NAN)));
}

static void test_arrays_match_scalar(void **state) {
    (void)state;
    enum { N = 4099 }; /* not a multiple of the vector width */
    float *src = malloc(N * sizeof(float)), *back = malloc(N * sizeof(float));
    uint16_t *h = malloc(N * sizeof(uint16_t));
    jl_rng r;
    jl_rng_seed(&r, 7);
    for (int i = 0; i < N; i++) {
        uint32_t bits = (uint32_t)jl_rng_u64(&r);
        /* mostly values in fp16 range, some arbitrary bit patterns (NaN, inf, tiny, huge) */
        src[i] = i % 4 ? jl_rng_normal(&r) * ldexpf(1, (int)jl_rng_below(&r, 40) - 25) : jl_bits_f32(bits);
    }
    jl_f32_to_f16_array(src, h, N);
    for (int i = 0; i < N; i++) {
        uint16_t want = jl_f32_to_f16(src[i]);
        if (f16_is_nan(want)) assert_true(f16_is_nan(h[i]));
        else if (h[i] != want) fail_msg("f16 array[%d] of %g: 0x%04x != 0x%04x", i, (double)src[i], h[i], want);
    }
    jl_f16_to_f32_array(h, back, N);
    for (int i = 0; i < N; i++) {
        float want = jl_f16_to_f32(h[i]);
        assert_true(isnan(want) ? isnan(back[i]) : jl_f32_bits(want) == jl_f32_bits(back[i]));
    }
    jl_f32_to_bf16_array(src, h, N);
    for (int i = 0; i < N; i++) assert_int_equal(h[i], jl_f32_to_bf16(src[i]));
    jl_bf16_to_f32_array(h, back, N);
    for (int i = 0; i < N; i++) assert_int_equal(jl_f32_bits(back[i]), (uint32_t)h[i] << 16);
    free(src);
    free(back);
    free(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_exhaustive_round_trip),
        cmocka_unit_test(test_f16_known_values),
        cmocka_unit_test(test_f16_rounds_to_nearest_even_everywhere),
        cmocka_unit_test(test_bf16_round_trip_and_rounding),
        cmocka_unit_test(test_arrays_match_scalar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
