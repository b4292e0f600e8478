/* Batched decoding (src/infer/batch.c): the fp32 batch kernel equals jl_matvec_own row for row; a slot's logits
 * follow the single-sequence session; and a sequence's logits are bit-identical whether it runs alone or beside
 * other sequences, with its prompt in one piece or in chunks — fp32, bf16 products, q8_0/q4_0, llama (GQA), gpt2. */
#include "testutil.h"
#include "infer/batch.h"
#include "core/half.h"
#include "infer/attend.h"
#include "infer/linear.h"
#include "jielong/generate.h"
#include "model/model.h"
#include <math.h>

static jl_model *tiny_model(jl_arch arch, int context, uint64_t seed) {
    jl_config c;
    jl_config_from_depth(&c, arch, 2, 300, context);
    c.dim = 64;
    c.n_head = 4;
    c.n_kv_head = arch == JL_ARCH_LLAMA ? 2 : 4;
    c.hidden_dim = 192;
    c.tie_embeddings = arch == JL_ARCH_GPT2;
    assert_int_equal(jl_config_finish(&c), JL_OK);
    jl_model *m;
    assert_int_equal(jl_model_new(&c, &m), JL_OK);
    jl_model_init(m, seed);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] *= 4.0f;
    return m;
}

/* Every row count 1..17 (whole 4×4 tiles, 1-3 leftover rows, the matrix-vector path below 4 rows), at two widths:
 * 77 = 4·16 + 13 columns (a tail) and 64 (none); 38 = 9·4 + 2 outputs. */
static void test_matmat_equals_matvec(void **state) {
    (void)state;
    const int out = 38, RMAX = 17;
    float *w = malloc(sizeof(float) * 77 * out), *x = malloc(sizeof(float) * 77 * RMAX), b[38];
    float *y = malloc(sizeof(float) * out * RMAX), want[38];
    jl_rng rng;
    jl_rng_seed(&rng, 3);
    for (int i = 0; i < 77 * out; i++) w[i] = jl_rng_uniform(&rng) - 0.5f;
    for (int i = 0; i < 77 * RMAX; i++) x[i] = jl_rng_uniform(&rng) - 0.5f;
    for (int i = 0; i < out; i++) b[i] = jl_rng_uniform(&rng);
    for (int in = 64; in <= 77; in += 13)
        for (int R = 1; R <= RMAX; R++) {
            jl_matmat_own(y, w, x, b, in, out, R);
            for (int r = 0; r < R; r++) {
                jl_matvec_own(want, w, x + (size_t)r * in, b, in, out);
                for (int o = 0; o < out - 2; o++) assert_true(y[(size_t)r * out + o] == want[o]); /* bit for bit */
                for (int o = out - 2; o < out; o++) assert_true(fabsf(y[(size_t)r * out + o] - want[o]) < 1e-5f);
            }
        }
    free(w);
    free(x);
    free(y);
}

/* The bf16 kernel: each row of an R-row product equals the same row run alone, bit for bit (whatever R and the
 * row's place), and the fp32 product of the bf16-rounded inputs to summation rounding. */
static void test_matmat_bf16_rows_alone(void **state) {
    (void)state;
    if (!jl_matmat_bf16_supported()) {
        print_message("no AVX512-BF16 on this CPU/build: the bf16 products are refused there\n");
        skip();
    }
    const int in = 77, out = 38, R = 7; /* 77 = 2·32 + 13 columns, 38 = 9·4 + 2 rows */
    float *w = malloc(sizeof(float) * in * out), *x = malloc(sizeof(float) * in * R), b[38];
    float *y = malloc(sizeof(float) * out * R), one[38];
    uint16_t *w16 = malloc(2 * (size_t)in * out), *x16 = malloc(2 * (size_t)in * R);
    jl_rng rng;
    jl_rng_seed(&rng, 4);
    for (int i = 0; i < in * out; i++) w[i] = jl_rng_uniform(&rng) - 0.5f;
    for (int i = 0; i < in * R; i++) x[i] = jl_rng_uniform(&rng) - 0.5f;
    for (int i = 0; i < out; i++) b[i] = jl_rng_uniform(&rng);
    jl_f32_to_bf16_array(w, w16, (size_t)in * out);
    jl_f32_to_bf16_array(x, x16, (size_t)in * R);
    const int ns[3] = {2, 5, R}; /* rows: one partial tile; a whole one and one row; a whole one and three */
    for (int t = 0; t < 3; t++) {
        const int n = ns[t];
        jl_matmat_bf16(y, w16, x16, b, in, out, n);
        for (int r = 0; r < n; r++) {
            jl_matmat_bf16(one, w16, x16 + (size_t)r * in, b, in, out, 1);
            assert_memory_equal(y + (size_t)r * out, one, sizeof one); /* bit for bit */
            for (int o = 0; o < out; o++) {
                double want = b[o];
                for (int i = 0; i < in; i++)
                    want += (double)jl_bf16_to_f32(w16[(size_t)o * in + i]) * jl_bf16_to_f32(x16[(size_t)r * in + i]);
                assert_true(fabs(y[(size_t)r * out + o] - want) < 1e-4);
            }
        }
    }
    free(w);
    free(x);
    free(y);
    free(w16);
    free(x16);
}

/* Decode attention (jl_attend_head, shared by the session and the batch) against a double-precision softmax for
 * head sizes 16, 64, 128 (the AVX-512 path: key blocks of 16 and a tail) and 24 (the portable loops), 1..40 keys
 * and 200, the cache rows at an unaligned offset. */
static void test_attend_head(void **state) {
    (void)state;
    const int sizes[4] = {16, 64, 128, 24}, kvd = 2 * 128 + 8;
    const int n_max = 200;
    float *k = malloc(sizeof(float) * n_max * kvd), *v = malloc(sizeof(float) * n_max * kvd), q[128], out[128];
    float *att = malloc(sizeof(float) * n_max);
    double *w = malloc(sizeof(double) * n_max);
    jl_rng rng;
    jl_rng_seed(&rng, 11);
    for (int i = 0; i < n_max * kvd; i++) k[i] = 2.0f * jl_rng_uniform(&rng) - 1.0f, v[i] = 2.0f * jl_rng_uniform(&rng) - 1.0f;
    for (int i = 0; i < 128; i++) q[i] = 6.0f * jl_rng_uniform(&rng) - 3.0f;
    for (int si = 0; si < 4; si++) {
        const int hs = sizes[si];
        for (int n = 1; n <= 41; n++) {
            const int keys = n == 41 ? n_max : n;
            jl_attend_head(q, k + 8, v + 8, kvd, hs, keys, att, out);
            double mx = -1e30, sum = 0.0;
            for (int t = 0; t < keys; t++) {
                double d = 0.0;
                for (int i = 0; i < hs; i++) d += (double)q[i] * k[(size_t)t * kvd + 8 + i];
                w[t] = d / sqrt((double)hs);
                mx = fmax(mx, w[t]);
            }
            for (int t = 0; t < keys; t++) sum += w[t] = exp(w[t] - mx);
            for (int i = 0; i < hs; i++) {
                double want = 0.0;
                for (int t = 0; t < keys; t++) want += w[t] / sum * v[(size_t)t * kvd + 8 + i];
                assert_true(fabs(out[i] - want) < 2e-6);
            }
            /* the unnormalised exponentials are left in att, the largest equal to 1 */
            float amax = 0.0f;
            for (int t = 0; t < keys; t++) amax = fmaxf(amax, att[t]);
            assert_true(amax == 1.0f);
        }
    }
    free(k);
    free(v);
    free(att);
    free(w);
}

#define T 40
static int32_t toks[3][T];

static void fill_tokens(void) {
    jl_rng rng;
    jl_rng_seed(&rng, 5);
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < T; i++) toks[s][i] = (int32_t)jl_rng_below(&rng, 300);
}

/* Logits of every position of sequence 0, run in `chunk`-token pieces, with sequences 1 and 2 beside it
 * (others = 1) in their own slots and chunking (c1 tokens a step for sequence 1, 1 for sequence 2), or alone;
 * rev puts sequence 0's item last in the step instead of first. */
static void run_seq0(jl_batch *b, int chunk, int others, float *out /* (T, V) */, int V, int c1, int rev) {
    for (int s = 0; s < 3; s++) jl_batch_reset(b, s);
    int done[3] = {0, 0, 0};
    const int chunks[3] = {chunk, c1, 1};
    while (done[0] < T) {
        jl_batch_item items[3];
        int n = 0, mine = 0; /* sequence 0's item; each item before it returns one logits row */
        for (int k = 0; k < (others ? 3 : 1); k++) {
            const int s = rev ? (others ? 2 - k : 0) : k;
            if (done[s] >= T) continue;
            int len = T - done[s] < chunks[s] ? T - done[s] : chunks[s];
            if (s == 0) mine = n;
            items[n++] = (jl_batch_item){s, toks[s] + done[s], len, s == 0 ? JL_BATCH_LOGITS_ALL : JL_BATCH_LOGITS_LAST};
        }
        const float *lg;
        int ld;
        assert_int_equal(jl_batch_forward(b, items, n, &lg, &ld), JL_OK);
        for (int i = 0; i < items[mine].n; i++)
            memcpy(out + (size_t)(done[0] + i) * V, lg + (size_t)(mine + i) * ld, sizeof(float) * V);
        for (int i = 0; i < n; i++) done[items[i].slot] += items[i].n;
    }
    assert_int_equal(jl_batch_pos(b, 0), T);
    assert_memory_equal(jl_batch_tokens(b, 0), toks[0], sizeof toks[0]);
}

/* bf16: the batch's fp32 products in bf16 (then the session agrees to bf16 rounding only). */
static void check_model(jl_model *m, const char *qtype, int bf16) {
    const int V = m->cfg.vocab_size;
    jl_qweights *qw = NULL;
    if (qtype) assert_int_equal(jl_qweights_quantize(m, qtype, &qw), JL_OK);
    jl_batch *b;
    assert_int_equal(jl_batch_new(m, qw, 3, 64, 48, &b), JL_OK);
    if (bf16) assert_int_equal(jl_batch_set_precision(b, JL_PREC_BF16), JL_OK);
    float *alone = malloc(sizeof(float) * T * V), *beside = malloc(sizeof(float) * T * V);
    float *chunked = malloc(sizeof(float) * T * V), *ref = malloc(sizeof(float) * T * V);
    run_seq0(b, T, 0, alone, V, 3, 0);
    run_seq0(b, 1, 1, beside, V, 3, 0);
    run_seq0(b, 7, 1, chunked, V, 3, 0);
    assert_memory_equal(alone, beside, sizeof(float) * T * V);
    assert_memory_equal(alone, chunked, sizeof(float) * T * V);
    /* decode-only steps of three rows: split by rows (every thread the whole model for its rows, sequence 0 first
     * or last, so on the first or the last thread) or by outputs — the same logits */
    for (int split = 0; split <= 1; split++)
        for (int rev = 0; rev <= 1; rev++) {
            jl_batch_set_split(b, split);
            run_seq0(b, 1, 1, beside, V, 1, rev);
            assert_memory_equal(alone, beside, sizeof(float) * T * V);
        }
    jl_batch_set_split(b, JL_BATCH_SPLIT_DEFAULT);
    { /* a prompt prefilled once, copied to another slot: its last token there gives the same logits */
        const float *lg;
        int ld;
        assert_int_equal(jl_batch_copy_prefix(b, 0, 2, T - 1), JL_OK);
        assert_int_equal(jl_batch_pos(b, 2), T - 1);
        jl_batch_item last = {2, toks[0] + T - 1, 1, JL_BATCH_LOGITS_LAST};
        assert_int_equal(jl_batch_forward(b, &last, 1, &lg, &ld), JL_OK);
        assert_memory_equal(lg, alone + (size_t)(T - 1) * V, sizeof(float) * V);
        assert_memory_equal(jl_batch_tokens(b, 2), toks[0], sizeof toks[0]);
        assert_int_equal(jl_batch_copy_prefix(b, 0, 0, 1), JL_ERR_ARG);
        assert_int_equal(jl_batch_copy_prefix(b, 1, 2, T + 1), JL_ERR_ARG);
    }
    /* the single-sequence session (its own kernels) agrees to rounding */
    jl_session *s;
    assert_int_equal(jl_session_new_quant(m, qw, 64, &s), JL_OK);
    assert_int_equal(jl_session_forward(s, toks[0], T, ref, NULL), JL_OK);
    float d = 0.0f, scale = 0.0f;
    for (int i = 0; i < T * V; i++) {
        d = fmaxf(d, fabsf(ref[i] - alone[i]));
        scale = fmaxf(scale, fabsf(ref[i]));
    }
    if (bf16) print_message("bf16 products: max logit difference to the session %g (largest logit %g)\n", d, scale);
    assert_true(d <= (bf16 ? 6e-2f : 1e-4f) * scale + 1e-4f); /* bf16: rounding of every input, through the layers */
    /* bad items are refused with a message, nothing run */
    jl_batch_item bad[2] = {{0, toks[0], 1, 1}, {0, toks[1], 1, 1}};
    const float *lg;
    int ld;
    assert_int_equal(jl_batch_forward(b, bad, 2, &lg, &ld), JL_ERR_ARG); /* slot twice */
    bad[0] = (jl_batch_item){1, toks[0], 60, 1};
    assert_int_equal(jl_batch_forward(b, bad, 1, &lg, &ld), JL_ERR_ARG); /* more rows than a step holds */
    jl_session_free(s);
    free(alone);
    free(beside);
    free(chunked);
    free(ref);
    jl_batch_free(b);
    jl_qweights_free(qw);
}

static void test_batch_llama_f32(void **state) {
    (void)state;
    jl_model *m = tiny_model(JL_ARCH_LLAMA, 64, 7);
    check_model(m, NULL, 0);
    if (jl_matmat_bf16_supported()) check_model(m, NULL, 1);
    jl_model_free(m);
}

static void test_batch_llama_quant(void **state) {
    (void)state;
    jl_model *m = tiny_model(JL_ARCH_LLAMA, 64, 8);
    check_model(m, "q8_0", 0);
    check_model(m, "q4_0", 0);
    jl_model_free(m);
}

static void test_batch_gpt2(void **state) {
    (void)state;
    jl_model *m = tiny_model(JL_ARCH_GPT2, 64, 9);
    check_model(m, NULL, 0);
    if (jl_matmat_bf16_supported()) check_model(m, NULL, 1);
    jl_model_free(m);
}

int main(void) {
    fill_tokens();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmat_equals_matvec),
        cmocka_unit_test(test_matmat_bf16_rows_alone),
        cmocka_unit_test(test_attend_head),
        cmocka_unit_test(test_batch_llama_f32),
        cmocka_unit_test(test_batch_llama_quant),
        cmocka_unit_test(test_batch_gpt2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
