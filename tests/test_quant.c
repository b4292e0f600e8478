/* q8_0 / q4_0: exact ggml byte layouts, error bounds, every kernel path against the scalar one and against fp32. */
#include "testutil.h"
#include "core/half.h"
#include "core/rng.h"
#include "infer/quant.h"
#include <math.h>

static float *randn(size_t n, uint64_t seed, float scale) {
    float *x = malloc(n * sizeof(float));
    jl_rng r;
    jl_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = scale * jl_rng_normal(&r);
    return x;
}

static void test_block_layouts(void **s) {
    (void)s;
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16);
    jl_block_q8_0 b8;
    jl_quantize_row_q8_0(x, &b8, 32);
    assert_int_equal(sizeof b8, 34);
    assert_int_equal(b8.d, jl_f32_to_f16(16.0f / 127.0f));
    assert_int_equal(b8.qs[0], -127);
    assert_int_equal(b8.qs[16], 0);
    assert_int_equal(b8.qs[24], (int)roundf(8 * 127.0f / 16));
    jl_block_q4_0 b4;
    jl_quantize_row_q4_0(x, &b4, 32);
    assert_int_equal(sizeof b4, 18);
    assert_true(jl_f16_to_f32(b4.d) == 2.0f); /* largest magnitude -16 → d = -16 / -8 */
    assert_int_equal(b4.qs[0], 0x80);          /* x0 = -16 → 0 (low nibble), x16 = 0 → 8 (high nibble) */
    assert_int_equal(b4.qs[15], 0xF8); /* x15 = -1 → -0.5+8.5 = 8; x31 = 15 → 16, clamped to 15 */
    float y[32];
    jl_dequantize_row_q4_0(&b4, y, 32);
    assert_true(y[0] == -16.0f && y[16] == 0.0f && y[31] == 14.0f); /* 15/2+8.5 = 16 clamps to 15 → 7·2 */
}

static void test_roundtrip_error_bounds(void **s) {
    (void)s;
    const int n = 32 * 64;
    float *x = randn(n, 1, 1.0f), *y = malloc(n * sizeof(float));
    x[5] = 0; /* zeros and an all-zero block */
    for (int j = 64; j < 96; j++) x[j] = 0;
    jl_block_q8_0 *q8 = malloc(n / 32 * sizeof *q8);
    jl_block_q4_0 *q4 = malloc(n / 32 * sizeof *q4);
    jl_quantize_row_q8_0(x, q8, n);
    jl_dequantize_row_q8_0(q8, y, n);
    /* half a step, plus the fp16 rounding of d over up to 127 steps (2^-11 · 127 ≈ 0.062) */
    for (int i = 0; i < n; i++) assert_true(fabsf(x[i] - y[i]) <= 0.57f * jl_f16_to_f32(q8[i / 32].d) + 1e-7f);
    jl_quantize_row_q4_0(x, q4, n);
    jl_dequantize_row_q4_0(q4, y, n);
    for (int i = 0; i < n; i++) assert_true(fabsf(x[i] - y[i]) <= fabsf(jl_f16_to_f32(q4[i / 32].d)) * 1.01f + 1e-7f);
    for (int j = 64; j < 96; j++) assert_true(y[j] == 0.0f);
    free(x), free(y), free(q8), free(q4);
}

/* The reference dot products are the dequantised dot products (exact integer sums, scaled per block). */
static void test_reference_dots(void **s) {
    (void)s;
    const int nbs[] = {1, 3, 24};
    for (size_t k = 0; k < sizeof nbs / sizeof nbs[0]; k++) {
        const int n = 32 * nbs[k];
        float *w = randn(n, 10 + k, 0.05f), *x = randn(n, 20 + k, 1.0f);
        jl_block_q8_0 *w8 = malloc(n / 32 * sizeof *w8), *x8 = malloc(n / 32 * sizeof *x8);
        jl_block_q4_0 *w4 = malloc(n / 32 * sizeof *w4);
        jl_quantize_row_q8_0(w, w8, n);
        jl_quantize_row_q4_0(w, w4, n);
        jl_quantize_row_q8_0(x, x8, n);
        float ref8 = jl_vec_dot_q8_0_q8_0(n, w8, x8), ref4 = jl_vec_dot_q4_0_q8_0(n, w4, x8);
        float *dw = malloc(n * sizeof(float)), *dx = malloc(n * sizeof(float));
        jl_dequantize_row_q8_0(x8, dx, n);
        jl_dequantize_row_q8_0(w8, dw, n);
        double d8 = 0, d4 = 0, mag = 0;
        for (int i = 0; i < n; i++) d8 += (double)dw[i] * dx[i], mag += fabs((double)dw[i] * dx[i]);
        jl_dequantize_row_q4_0(w4, dw, n);
        for (int i = 0; i < n; i++) d4 += (double)dw[i] * dx[i];
        assert_true(fabs(ref8 - d8) <= 1e-5 * mag + 1e-6);
        assert_true(fabs(ref4 - d4) <= 1e-5 * mag + 1e-6);
        free(w), free(x), free(w8), free(x8), free(w4), free(dw), free(dx);
    }
}

/* Repacking keeps ggml's bytes: set_row then get_row gives them back, and the row dequantises as ggml's. */
static void test_repack_roundtrip(void **s) {
    (void)s;
    const int rows = 19, cols = 96; /* one full group of 16 and a partial one */
    float *w = randn((size_t)rows * cols, 7, 0.05f), *back = malloc(sizeof(float) * rows * cols), row[96];
    const jl_qtype types[] = {JL_QTYPE_Q8_0, JL_QTYPE_Q4_0};
    for (int t = 0; t < 2; t++) {
        const size_t rb = jl_qtype_row_bytes(types[t], cols);
        char *ggml = malloc((size_t)rows * rb), *got = malloc(rb);
        jl_quantize_matrix(types[t], w, ggml, rows, cols);
        jl_qmatrix q, z;
        assert_int_equal(jl_qmatrix_from_f32(&q, types[t], w, rows, cols), JL_OK);
        assert_int_equal(jl_qmatrix_alloc(&z, types[t], rows, cols), JL_OK);
        jl_qmatrix_to_f32(&q, back);
        for (int r = 0; r < rows; r++) {
            jl_qmatrix_get_row(&q, r, got);
            assert_memory_equal(got, ggml + r * rb, rb);
            jl_qmatrix_set_row(&z, rows - 1 - r, ggml + r * rb); /* rows in any order */
            if (types[t] == JL_QTYPE_Q8_0) jl_dequantize_row_q8_0((const jl_block_q8_0 *)(ggml + r * rb), row, cols);
            else jl_dequantize_row_q4_0((const jl_block_q4_0 *)(ggml + r * rb), row, cols);
            assert_memory_equal(back + r * cols, row, sizeof row);
            jl_qmatrix_row_f32(&q, r, row);
            assert_memory_equal(back + r * cols, row, sizeof row);
        }
        for (int r = 0; r < rows; r++) {
            jl_qmatrix_get_row(&z, rows - 1 - r, got);
            assert_memory_equal(got, ggml + r * rb, rb);
        }
        jl_qmatrix_free(&q);
        jl_qmatrix_free(&z);
        free(ggml), free(got);
    }
    free(w), free(back);
}

/* Every path's jl_qmatmul against the reference dot product of the ggml rows, row by row: row counts that are not
 * a multiple of 16 and 1..5 blocks of columns. The integer sums are exact; only float rounding may differ. */
static void test_qmatmul_paths_vs_reference(void **s) {
    (void)s;
    const int shapes[][2] = {{1, 32}, {7, 64}, {17, 96}, {33, 128}, {50, 160}};
    const jl_qtype types[] = {JL_QTYPE_Q8_0, JL_QTYPE_Q4_0};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const int rows = shapes[k][0], cols = shapes[k][1];
        float *w = randn((size_t)rows * cols, 30 + k, 0.05f), *x = randn(cols, 40 + k, 1.0f), y[51];
        jl_block_q8_0 *x8 = malloc(cols / 32 * sizeof *x8);
        jl_quantize_row_q8_0(x, x8, cols);
        void *xq = malloc(jl_qmatmul_scratch_bytes(1, cols));
        for (int t = 0; t < 2; t++) {
            const size_t rb = jl_qtype_row_bytes(types[t], cols);
            char *ggml = malloc((size_t)rows * rb);
            jl_quantize_matrix(types[t], w, ggml, rows, cols);
            jl_qmatrix q;
            assert_int_equal(jl_qmatrix_from_f32(&q, types[t], w, rows, cols), JL_OK);
            for (jl_qpath p = JL_QPATH_SCALAR; p <= JL_QPATH_AVX512; p++) {
                if (!jl_quant_path_supported(p)) {
                    assert_int_equal(jl_quant_set_path(p), JL_ERR_ARG);
                    continue;
                }
                assert_int_equal(jl_quant_set_path(p), JL_OK);
                assert_int_equal(jl_quant_path(), p);
                y[rows] = 12345.0f; /* nothing written past the rows (the padding rows of the last group) */
                jl_qmatmul(y, x, &q, NULL, 1, xq);
                assert_true(y[rows] == 12345.0f);
                for (int r = 0; r < rows; r++) {
                    const char *row = ggml + r * rb;
                    float ref = types[t] == JL_QTYPE_Q8_0 ? jl_vec_dot_q8_0_q8_0(cols, (const jl_block_q8_0 *)row, x8)
                                                          : jl_vec_dot_q4_0_q8_0(cols, (const jl_block_q4_0 *)row, x8);
                    assert_true(fabsf(y[r] - ref) <= 1e-5f * (fabsf(ref) + 0.1f));
                }
            }
            jl_qmatrix_free(&q);
            free(ggml);
        }
        free(w), free(x), free(x8), free(xq);
    }
    assert_int_equal(jl_quant_set_path(JL_QPATH_AUTO), JL_OK);
}

/* y = x·Wᵀ + b on the quantised weights is close to fp32; batched rows equal one-at-a-time rows. */
static void test_qmatmul_against_fp32(void **s) {
    (void)s;
    /* rows not a multiple of 16 and an odd number of blocks */
    const int rows = 98, cols = 224, N = 5; /* 7 groups: pairs and a last single group; 4 inputs + 1 */
    float *w = randn((size_t)rows * cols, 3, 0.05f), *x = randn((size_t)N * cols, 4, 1.0f), *b = randn(rows, 5, 0.1f);
    double ref[5 * 98], norm = 0;
    for (int i = 0; i < N; i++)
        for (int r = 0; r < rows; r++) {
            double acc = b[r];
            for (int c = 0; c < cols; c++) acc += (double)w[r * cols + c] * x[i * cols + c];
            ref[i * rows + r] = acc;
            norm += acc * acc;
        }
    const jl_qtype types[] = {JL_QTYPE_Q8_0, JL_QTYPE_Q4_0};
    const double tol[] = {0.01, 0.12};
    void *xq = malloc(jl_qmatmul_scratch_bytes(N, cols));
    float y[5 * 98], y1[98], y_scalar[5 * 98];
    for (int t = 0; t < 2; t++) {
        jl_qmatrix q;
        assert_int_equal(jl_qmatrix_from_f32(&q, types[t], w, rows, cols), JL_OK);
        for (jl_qpath p = JL_QPATH_SCALAR; p <= JL_QPATH_AVX512; p++) {
            if (jl_quant_set_path(p) != JL_OK) continue;
            jl_qmatmul(y, x, &q, b, N, xq);
            double err = 0;
            for (int i = 0; i < N * rows; i++) err += (y[i] - ref[i]) * (y[i] - ref[i]);
            assert_true(sqrt(err / norm) < tol[t]);
            if (p == JL_QPATH_SCALAR) memcpy(y_scalar, y, sizeof y);
            for (int i = 0; i < N * rows; i++) /* exact integer sums: only the float order differs */
                assert_true(fabsf(y[i] - y_scalar[i]) <= 1e-4f * (fabsf(y_scalar[i]) + 1.0f));
            for (int i = 0; i < N; i++) {
                jl_qmatmul(y1, x + i * cols, &q, b, 1, xq);
                assert_memory_equal(y1, y + i * rows, sizeof y1);
            }
        }
        jl_qmatrix_free(&q);
    }
    jl_qmatrix q;
    assert_int_equal(jl_qmatrix_from_f32(&q, JL_QTYPE_Q8_0, w, rows, 48), JL_ERR_ARG); /* not whole blocks */
    assert_int_equal(jl_quant_set_path(JL_QPATH_AUTO), JL_OK);
    free(w), free(x), free(b), free(xq);
}

/* The batched step's halves: jl_qmatmul_quantize writes the same bytes on every path (the AVX-512 rounding is
 * ggml's round-half-away, ties included), and rows [r0, r1) of jl_qmatmul_rows, accumulated or not, equal
 * jl_qmatvec_rows row for row, bit for bit, for 1..9 inputs (the two-group and one-group four-input kernels and
 * the one-input tail) and row ranges that start and end inside groups, take pairs of groups and a last single
 * (partial) group. */
static void test_qmatmul_rows_equal_matvec(void **s) {
    (void)s;
    const int rows = 70, cols = 96, N = 9; /* 5 groups, the last one 6 rows */
    const int ranges[][2] = {{19, 61}, {0, 70}, {33, 70}, {48, 64}, {5, 6}, {16, 48}}; /* 1..4 groups a step */
    float *w = randn((size_t)rows * cols, 7, 0.05f), *x = randn((size_t)N * cols, 8, 1.0f), *b = randn(rows, 9, 0.1f);
    x[0] = 127.0f; /* first block: scale exactly 1, so every other value is a tie k + 0.5 (rounded away from 0) */
    for (int i = 1; i < 32; i++) x[i] = (float)(i - 16) + 0.5f;
    const size_t bytes = jl_qmatmul_scratch_bytes(N, cols);
    unsigned char *xa = malloc(bytes), *xs = malloc(bytes), *x1 = malloc(bytes);
    float y[9 * 70], want[70];
    for (int t = 0; t < 2; t++) {
        jl_qmatrix q;
        assert_int_equal(jl_qmatrix_from_f32(&q, t ? JL_QTYPE_Q4_0 : JL_QTYPE_Q8_0, w, rows, cols), JL_OK);
        for (jl_qpath p = JL_QPATH_SCALAR; p <= JL_QPATH_AVX512; p++) {
            if (jl_quant_set_path(p) != JL_OK) continue;
            jl_qmatmul_quantize(x, N, cols, p == JL_QPATH_SCALAR ? xs : xa);
            if (p != JL_QPATH_SCALAR) { /* the quantised inputs: the same quants, scales and sums (aligned views) */
                const unsigned char *a = xa + (64 - (uintptr_t)xa % 64) % 64, *c = xs + (64 - (uintptr_t)xs % 64) % 64;
                const size_t stride = (bytes - 64) / N;
                for (int i = 0; i < N; i++) assert_memory_equal(a + i * stride, c + i * stride, cols + cols / 32 * 8);
            }
            for (size_t k = 0; k < sizeof ranges / sizeof ranges[0]; k++)
                for (int n = 1; n <= N; n++)
                    for (int acc = 0; acc < 2; acc++) {
                        const int r0 = ranges[k][0], r1 = ranges[k][1];
                        for (int i = 0; i < n * rows; i++) y[i] = acc ? 0.25f * (float)i : -1.0f;
                        jl_qmatmul_rows(y, p == JL_QPATH_SCALAR ? xs : xa, &q, b, n, r0, r1, acc);
                        for (int i = 0; i < n; i++)
                            for (int groups = 1; groups <= 4; groups++) { /* 1..4 groups a step: the same bits */
                                assert_int_equal(jl_quant_set_groups(groups), JL_OK);
                                for (int r = 0; r < rows; r++) want[r] = acc ? 0.25f * (float)(i * rows + r) : -1.0f;
                                jl_qmatvec_rows(want, x + i * cols, &q, b, x1, r0, r1, acc);
                                assert_memory_equal(want, y + i * rows, sizeof want);
                            }
                    }
        }
        jl_qmatrix_free(&q);
    }
    assert_int_equal(jl_quant_set_path(JL_QPATH_AUTO), JL_OK);
    assert_int_equal(jl_quant_set_groups(0), JL_ERR_ARG);
    assert_int_equal(jl_quant_set_groups(5), JL_ERR_ARG);
    free(w), free(x), free(b), free(xa), free(xs), free(x1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_layouts),
        cmocka_unit_test(test_roundtrip_error_bounds),
        cmocka_unit_test(test_reference_dots),
        cmocka_unit_test(test_repack_roundtrip),
        cmocka_unit_test(test_qmatmul_paths_vs_reference),
        cmocka_unit_test(test_qmatmul_against_fp32),
        cmocka_unit_test(test_qmatmul_rows_equal_matvec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
