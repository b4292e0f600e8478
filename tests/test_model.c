/* The whole transformer: gradients of every tensor against finite differences (llama and gpt2, with
 * grouped-query attention and ignored targets), causality, packed rows (several sequences per row) against
 * one per row, determinism, config validation. */
#include "testutil.h"
#include "core/rng.h"
#include "core/kernels.h"
#include "model/model.h"
#include <math.h>

static jl_model *tiny_model_ctx(jl_arch arch, int n_kv_head, int tied, int context) {
    jl_config c;
    jl_config_from_depth(&c, arch, 1, 37, context);
    c.n_layer = 2;
    c.dim = 16;
    c.n_head = 4;
    c.n_kv_head = n_kv_head;
    c.hidden_dim = 24;
    c.tie_embeddings = tied;
    jl_model *m;
    assert_int_equal(jl_model_new(&c, &m), JL_OK);
    jl_model_init(m, 7);
    /* Larger weights than the training init so gradients stand well above float round-off. */
    jl_rng r;
    jl_rng_seed(&r, 99);
    for (int i = 0; i < m->n_tensors; i++) {
        jl_tensor_info *t = &m->tensors[i];
        size_t n = (size_t)t->rows_saved * (size_t)(t->ndim == 2 ? t->shape[1] : 1);
        for (size_t j = 0; j < n; j++) m->params[t->offset + j] += 0.3f * jl_rng_normal(&r);
    }
    return m;
}

static jl_model *tiny_model(jl_arch arch, int n_kv_head, int tied) { return tiny_model_ctx(arch, n_kv_head, tied, 8); }

static void random_batch(int32_t *tok, int32_t *tgt, int n, int vocab, uint64_t seed) {
    jl_rng r;
    jl_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        tok[i] = (int32_t)jl_rng_below(&r, (uint64_t)vocab);
        tgt[i] = (int32_t)jl_rng_below(&r, (uint64_t)vocab);
    }
    tgt[1] = -1; /* an ignored target */
}

static double mean_loss(jl_model *m, jl_acts *a, const int32_t *tok, const int32_t *tgt, int B, int T) {
    long counted;
    double sum = jl_model_forward(m, a, tok, tgt, B, T, 0.0f, &counted);
    return sum / (double)counted;
}

static void check_gradients(jl_arch arch, int n_kv_head, int tied) {
    jl_model *m = tiny_model(arch, n_kv_head, tied);
    const int B = 2, T = 5, N = B * T;
    jl_acts a;
    assert_int_equal(jl_acts_new(&m->cfg, B, T, &a), JL_OK);
    int32_t tok[10], tgt[10];
    random_batch(tok, tgt, N, m->cfg.vocab_size, 3);
    float *grads = calloc(m->n_params, sizeof(float));
    jl_params g;
    jl_layer_params gl[2];
    jl_params_at(m, grads, &g, gl);
    long counted = 0;
    for (int i = 0; i < N; i++) counted += tgt[i] >= 0;
    jl_model_forward(m, &a, tok, tgt, B, T, 1.0f / (float)counted, NULL);
    jl_model_backward(m, &a, tok, &g, B, T);

    jl_rng r;
    jl_rng_seed(&r, 5);
    int checked = 0, bad = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const jl_tensor_info *t = &m->tensors[i];
        size_t n = (size_t)t->rows_saved * (size_t)(t->ndim == 2 ? t->shape[1] : 1);
        for (int k = 0; k < 6; k++) {
            size_t j = t->offset + (size_t)jl_rng_below(&r, n);
            float saved = m->params[j];
            const float eps = 1e-2f;
            m->params[j] = saved + eps;
            double lp = mean_loss(m, &a, tok, tgt, B, T);
            m->params[j] = saved - eps;
            double lm = mean_loss(m, &a, tok, tgt, B, T);
            m->params[j] = saved;
            double numeric = (lp - lm) / (2.0 * eps), analytic = grads[j];
            double err = fabs(numeric - analytic), scale = fmax(fabs(numeric), fabs(analytic));
            checked++;
            if (err > 2e-2 * scale + 2e-4) {
                bad++;
                print_message("%s %s[%zu]: analytic %.6f numeric %.6f\n", jl_arch_name(arch), t->name,
                              j - t->offset, analytic, numeric);
            }
        }
    }
    assert_true(checked > 50);
    assert_int_equal(bad, 0);
    free(grads);
    jl_acts_free(&a);
    jl_model_free(m);
}

static void test_gradients_llama_gqa(void **s) { (void)s; check_gradients(JL_ARCH_LLAMA, 2, 1); }
static void test_gradients_llama_mha_untied(void **s) { (void)s; check_gradients(JL_ARCH_LLAMA, 4, 0); }
static void test_gradients_gpt2(void **s) { (void)s; check_gradients(JL_ARCH_GPT2, 4, 1); }

/* Logits at position t must not depend on tokens after t. */
static void test_causality(void **state) {
    (void)state;
    jl_model *m = tiny_model(JL_ARCH_LLAMA, 2, 1);
    const int T = 6, Vp = m->cfg.padded_vocab;
    jl_acts a;
    assert_int_equal(jl_acts_new(&m->cfg, 1, T, &a), JL_OK);
    int32_t tok[6] = {1, 5, 9, 2, 7, 3};
    jl_model_forward(m, &a, tok, NULL, 1, T, 0, NULL);
    float *before = malloc(sizeof(float) * (size_t)T * Vp);
    memcpy(before, a.logits, sizeof(float) * (size_t)T * Vp);
    tok[4] = 30;
    jl_model_forward(m, &a, tok, NULL, 1, T, 0, NULL);
    assert_memory_equal(before, a.logits, sizeof(float) * 4 * (size_t)Vp);   /* positions 0..3 unchanged */
    assert_memory_not_equal(before + 4 * Vp, a.logits + 4 * Vp, sizeof(float) * (size_t)Vp);
    free(before);
    jl_acts_free(&a);
    jl_model_free(m);
}

/* ---------- packed rows ---------- */

/* Five sequences, one per row of 16 (unpacked), or packed into two rows: 3+7+5 (+1 padding) and 9+4 (+3). */
enum { PK_T = 16, PK_SEQS = 5, PK_ROWS = 2, PK_PROMPT = 2 };
static const int pk_len[PK_SEQS] = {3, 7, 5, 9, 4}, pk_row[PK_SEQS] = {0, 0, 0, 1, 1};

typedef struct {
    double loss;
    long counted;
    float *grads, *prompt_grads, *losses; /* losses: per sequence token, sequences back to back */
} pass_result;

/* One forward + backward over the sequences laid out unpacked (a row each) or packed (segments). With a soft
 * prompt the first PK_PROMPT tokens of every sequence are its placeholders. */
static void run_pass(jl_model *m, jl_prompt *p, int packed, const int32_t *seq_tok, const int32_t *seq_tgt,
                     pass_result *res) {
    const int B = packed ? PK_ROWS : PK_SEQS, N = B * PK_T;
    int32_t tok[PK_SEQS * PK_T] = {0}, tgt[PK_SEQS * PK_T], start[PK_SEQS * PK_T];
    int where[PK_SEQS], fill[PK_SEQS] = {0};
    for (int n = 0; n < N; n++) tgt[n] = -1;
    for (int i = 0, off = 0; i < PK_SEQS; off += pk_len[i++]) {
        const int b = packed ? pk_row[i] : i;
        where[i] = b * PK_T + fill[b];
        for (int j = 0; j < pk_len[i]; j++) {
            tok[where[i] + j] = seq_tok[off + j];
            tgt[where[i] + j] = p && j < PK_PROMPT ? -1 : seq_tgt[off + j];
            start[where[i] + j] = fill[b];
        }
        fill[b] += pk_len[i];
    }
    for (int b = 0; b < B; b++)
        for (int t = fill[b]; t < PK_T; t++) start[b * PK_T + t] = fill[b]; /* padding: a segment of its own */
    jl_acts a;
    assert_int_equal(jl_acts_new(&m->cfg, B, PK_T, &a), JL_OK);
    if (packed) {
        assert_true(jl_segments_valid(start, B, PK_T, NULL));
        a.seg_start = start;
    }
    res->grads = calloc(m->n_params, sizeof(float));
    assert_non_null(res->grads);
    jl_params g;
    jl_layer_params gl[2];
    jl_params_at(m, res->grads, &g, gl);
    if (p) memset(jl_prompt_grads(p), 0, jl_prompt_num_params(p) * sizeof(float));
    res->counted = 0;
    for (int n = 0; n < N; n++) res->counted += tgt[n] >= 0;
    res->loss = jl_model_forward(m, &a, tok, tgt, B, PK_T, 1.0f / (float)res->counted, NULL);
    res->losses = malloc(sizeof(float) * PK_SEQS * PK_T);
    assert_non_null(res->losses);
    for (int i = 0, off = 0; i < PK_SEQS; off += pk_len[i++])
        memcpy(res->losses + off, a.losses + where[i], sizeof(float) * (size_t)pk_len[i]);
    jl_model_backward(m, &a, tok, &g, B, PK_T);
    res->prompt_grads = NULL;
    if (p) {
        res->prompt_grads = malloc(jl_prompt_num_params(p) * sizeof(float));
        assert_non_null(res->prompt_grads);
        memcpy(res->prompt_grads, jl_prompt_grads(p), jl_prompt_num_params(p) * sizeof(float));
    }
    jl_acts_free(&a);
}

static void assert_near(const char *what, const float *got, const float *want, size_t n, double tol) {
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - want[i]) <= tol * fmax(1.0, fabs((double)want[i])))) {
            if (bad++ < 5) print_message("%s[%zu]: packed %.8g, unpacked %.8g\n", what, i, got[i], want[i]);
        }
    assert_int_equal(bad, 0);
}

/* A packed batch gives each sequence exactly the losses it gets alone in its row, and the same gradients. */
static void check_packed_equals_unpacked(jl_arch arch, int with_prompt) {
    jl_model *m = tiny_model_ctx(arch, arch == JL_ARCH_LLAMA ? 2 : 4, 1, PK_T);
    jl_prompt *p = NULL;
    if (with_prompt) {
        assert_int_equal(jl_prompt_new(m, PK_PROMPT, 3, &p), JL_OK);
        assert_non_null(jl_prompt_grads(p));
        assert_int_equal(jl_model_attach_prompt(m, p), JL_OK);
    }
    int32_t seq_tok[28], seq_tgt[28];
    random_batch(seq_tok, seq_tgt, 28, m->cfg.vocab_size, 17);
    pass_result up, pk;
    run_pass(m, p, 0, seq_tok, seq_tgt, &up);
    run_pass(m, p, 1, seq_tok, seq_tgt, &pk);
    assert_int_equal(pk.counted, up.counted);
    assert_true(fabs(pk.loss - up.loss) <= 1e-5 * fabs(up.loss));
    assert_near("per-token loss", pk.losses, up.losses, 28, 1e-5);
    assert_near("gradient", pk.grads, up.grads, m->n_params, 1e-4);
    if (p) assert_near("soft prompt gradient", pk.prompt_grads, up.prompt_grads, jl_prompt_num_params(p), 1e-4);
    double norm = 0;
    for (size_t i = 0; i < m->n_params; i++) norm += (double)up.grads[i] * up.grads[i];
    assert_true(norm > 1e-6); /* the comparison is of real gradients */
    free(up.grads), free(up.losses), free(up.prompt_grads), free(pk.grads), free(pk.losses), free(pk.prompt_grads);
    m->prompt = NULL;
    jl_prompt_free(p);
    jl_model_free(m);
}

static void test_packed_equals_unpacked_llama(void **s) { (void)s; check_packed_equals_unpacked(JL_ARCH_LLAMA, 0); }
static void test_packed_equals_unpacked_gpt2(void **s) { (void)s; check_packed_equals_unpacked(JL_ARCH_GPT2, 0); }
static void test_packed_equals_unpacked_prompt(void **s) { (void)s; check_packed_equals_unpacked(JL_ARCH_LLAMA, 1); }

static void test_init_deterministic(void **state) {
    (void)state;
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, 2, 300, 32);
    jl_model *a, *b;
    assert_int_equal(jl_model_new(&c, &a), JL_OK);
    assert_int_equal(jl_model_new(&c, &b), JL_OK);
    jl_model_init(a, 1234);
    jl_model_init(b, 1234);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    jl_model_init(b, 1235);
    assert_memory_not_equal(a->params, b->params, a->n_params * sizeof(float));
    /* padded vocabulary rows stay zero */
    assert_int_equal(a->cfg.padded_vocab, 320);
    for (size_t i = 300 * (size_t)c.dim; i < 320 * (size_t)c.dim; i++) assert_true(a->w.wte[i] == 0.0f);
    jl_model_free(a);
    jl_model_free(b);
}

static void test_config_validation_names_field(void **state) {
    (void)state;
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, 2, 300, 32);
    c.n_kv_head = 3;
    assert_int_equal(jl_config_finish(&c), JL_ERR_ARG);
    assert_non_null(strstr(jl_last_error(), "n_kv_head"));
    jl_config_from_depth(&c, JL_ARCH_GPT2, 2, 300, 32);
    char *json;
    assert_int_equal(jl_config_finish(&c), JL_OK);
    assert_int_equal(jl_config_to_json(&c, &json), JL_OK);
    jl_config back;
    assert_int_equal(jl_config_from_json(json, &back), JL_OK);
    assert_true(jl_config_equal(&c, &back));
    free(json);
    assert_int_equal(jl_config_from_json("{\"arch\":\"mamba\"}", &back), JL_ERR_FORMAT);
    assert_non_null(strstr(jl_last_error(), "arch"));
    jl_arch arch;
    assert_int_equal(jl_arch_parse("rwkv", &arch), JL_ERR_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients_llama_gqa),
        cmocka_unit_test(test_gradients_llama_mha_untied),
        cmocka_unit_test(test_gradients_gpt2),
        cmocka_unit_test(test_causality),
        cmocka_unit_test(test_packed_equals_unpacked_llama),
        cmocka_unit_test(test_packed_equals_unpacked_gpt2),
        cmocka_unit_test(test_packed_equals_unpacked_prompt),
        cmocka_unit_test(test_init_deterministic),
        cmocka_unit_test(test_config_validation_names_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
