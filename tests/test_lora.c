/* Adapters inside the model: a fresh LoRA (B = 0) changes nothing, merged and unmerged LoRA agree, LoRA and
 * soft-prompt gradients match finite differences (dropout included), training an adapter leaves the base
 * weights bit-identical, and adapter files refuse another base model or a rank that does not fit. */
#include "testutil.h"
#include "core/rng.h"
#include "jielong/adapter.h"
#include "jielong/safetensors.h"
#include "model/lora.h"
#include "model/model.h"
#include "train/trainer.h"
#include <math.h>

static jl_model *tiny_model(jl_arch arch, int n_kv_head, uint64_t seed) {
    jl_config c;
    jl_config_from_depth(&c, arch, 1, 37, 8);
    c.n_layer = 2;
    c.dim = 16;
    c.n_head = 4;
    c.n_kv_head = n_kv_head;
    c.hidden_dim = 24;
    jl_model *m;
    assert_int_equal(jl_model_new(&c, &m), JL_OK);
    jl_model_init(m, seed);
    jl_rng r; /* larger weights than the training init so gradients stand well above round-off */
    jl_rng_seed(&r, seed + 1);
    for (int i = 0; i < m->n_tensors; i++) {
        jl_tensor_info *t = &m->tensors[i];
        size_t n = (size_t)t->rows_saved * (size_t)(t->ndim == 2 ? t->shape[1] : 1);
        for (size_t j = 0; j < n; j++) m->params[t->offset + j] += 0.3f * jl_rng_normal(&r);
    }
    return m;
}

static void fill_batch(int32_t *tok, int32_t *tgt, int n, int vocab, uint64_t seed) {
    jl_rng r;
    jl_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        tok[i] = (int32_t)jl_rng_below(&r, (uint64_t)vocab);
        tgt[i] = (int32_t)jl_rng_below(&r, (uint64_t)vocab);
    }
    tgt[1] = -1;
}

static void randomize(float *p, size_t n, float scale, uint64_t seed) {
    jl_rng r;
    jl_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) p[i] = scale * jl_rng_normal(&r);
}

static float *logits_copy(jl_model *m, jl_acts *a, const int32_t *tok, int B, int T) {
    jl_model_forward(m, a, tok, NULL, B, T, 0, NULL);
    size_t n = (size_t)B * T * m->cfg.padded_vocab;
    float *out = malloc(n * sizeof(float));
    memcpy(out, a->logits, n * sizeof(float));
    return out;
}

static void check_zero_b_identity(jl_arch arch) {
    jl_model *m = tiny_model(arch, arch == JL_ARCH_LLAMA ? 2 : 4, 7);
    const int B = 2, T = 6, N = B * T;
    jl_acts a;
    assert_int_equal(jl_acts_new(&m->cfg, B, T, &a), JL_OK);
    int32_t tok[12], tgt[12];
    fill_batch(tok, tgt, N, m->cfg.vocab_size, 3);
    float *base = logits_copy(m, &a, tok, B, T);
    jl_lora *lr;
    jl_lora_opts o = {.rank = 4, .alpha = 8, .dropout = 0, .targets = "all"};
    assert_int_equal(jl_lora_new(m, &o, 5, &lr), JL_OK);
    assert_int_equal(jl_model_attach_lora(m, lr, N), JL_OK);
    float *with = logits_copy(m, &a, tok, B, T);
    assert_memory_equal(base, with, sizeof(float) * (size_t)N * m->cfg.padded_vocab); /* B = 0: bit-identical */
    free(with);
    free(base);
    jl_model_attach_lora(m, NULL, 0);
    jl_lora_free(lr);
    jl_acts_free(&a);
    jl_model_free(m);
}

static void test_zero_b_is_identity(void **s) {
    (void)s;
    check_zero_b_identity(JL_ARCH_LLAMA);
    check_zero_b_identity(JL_ARCH_GPT2);
}

static void check_merge(jl_arch arch, const char *targets) {
    jl_model *m = tiny_model(arch, arch == JL_ARCH_LLAMA ? 2 : 4, 11);
    const int B = 2, T = 6, N = B * T;
    jl_acts a;
    assert_int_equal(jl_acts_new(&m->cfg, B, T, &a), JL_OK);
    int32_t tok[12], tgt[12];
    fill_batch(tok, tgt, N, m->cfg.vocab_size, 4);
    jl_lora *lr;
    jl_lora_opts o = {.rank = 3, .alpha = 6, .dropout = 0.2f, .targets = targets};
    assert_int_equal(jl_lora_new(m, &o, 5, &lr), JL_OK);
    randomize(jl_lora_params(lr), jl_lora_num_params(lr), 0.3f, 9); /* B ≠ 0 */
    assert_int_equal(jl_model_attach_lora(m, lr, N), JL_OK);
    float *unmerged = logits_copy(m, &a, tok, B, T); /* no dropout outside training */
    jl_model_attach_lora(m, NULL, 0);
    float *base = logits_copy(m, &a, tok, B, T);
    assert_int_equal(jl_lora_merge(m, lr), JL_OK);
    float *merged = logits_copy(m, &a, tok, B, T);
    double max_diff = 0, max_effect = 0;
    for (size_t i = 0; i < (size_t)N * m->cfg.vocab_size; i++) {
        size_t row = i / (size_t)m->cfg.vocab_size, col = i % (size_t)m->cfg.vocab_size;
        size_t j = row * (size_t)m->cfg.padded_vocab + col;
        max_diff = fmax(max_diff, fabs(merged[j] - unmerged[j]));
        max_effect = fmax(max_effect, fabs(merged[j] - base[j]));
    }
    print_message("%s %s: merged vs unmerged max |Δlogit| %.2e (adapter effect %.2f)\n", jl_arch_name(arch), targets,
                  max_diff, max_effect);
    assert_true(max_diff < 1e-4);
    assert_true(max_effect > 0.1); /* the adapter does something */
    /* the merged model is another base: the adapter no longer attaches to it */
    assert_int_equal(jl_model_attach_lora(m, lr, N), JL_ERR_ARG);
    free(unmerged), free(base), free(merged);
    jl_lora_free(lr);
    jl_acts_free(&a);
    jl_model_free(m);
}

static void test_merged_equals_unmerged(void **s) {
    (void)s;
    check_merge(JL_ARCH_LLAMA, "all");
    check_merge(JL_ARCH_LLAMA, "k,up");
    check_merge(JL_ARCH_GPT2, "all");
}

/* Mean loss with the current adapter values and the dropout mask of `seed` (the same mask every call). */
static double loss_at(jl_model *m, jl_acts *a, const int32_t *tok, const int32_t *tgt, int B, int T, uint64_t seed) {
    long counted;
    if (m->lora) jl_lora_dropout_begin(m->lora, seed);
    double sum = jl_model_forward(m, a, tok, tgt, B, T, 0.0f, &counted);
    if (m->lora) jl_lora_dropout_end(m->lora);
    return sum / (double)counted;
}

/* Finite differences on random entries of an adapter block against the analytic gradient. */
static int check_block(jl_model *m, jl_acts *a, const int32_t *tok, const int32_t *tgt, int B, int T, float *p,
                       const float *g, size_t n, uint64_t seed, const char *what) {
    jl_rng r;
    jl_rng_seed(&r, 17);
    int bad = 0;
    for (int k = 0; k < 40; k++) {
        size_t j = (size_t)jl_rng_below(&r, n);
        float saved = p[j];
        const float eps = 3e-3f;
        p[j] = saved + eps;
        double lp = loss_at(m, a, tok, tgt, B, T, seed);
        p[j] = saved - eps;
        double lm = loss_at(m, a, tok, tgt, B, T, seed);
        p[j] = saved;
        double numeric = (lp - lm) / (2.0 * eps), analytic = g[j];
        if (fabs(numeric - analytic) > 2e-2 * fmax(fabs(numeric), fabs(analytic)) + 2e-4) {
            bad++;
            print_message("%s[%zu]: analytic %.6f numeric %.6f\n", what, j, analytic, numeric);
        }
    }
    return bad;
}

static void check_lora_gradients(jl_arch arch, float dropout) {
    jl_model *m = tiny_model(arch, arch == JL_ARCH_LLAMA ? 2 : 4, 21);
    const int B = 2, T = 5, N = B * T;
    jl_acts a;
    assert_int_equal(jl_acts_new(&m->cfg, B, T, &a), JL_OK);
    int32_t tok[10], tgt[10];
    fill_batch(tok, tgt, N, m->cfg.vocab_size, 8);
    jl_lora *lr;
    jl_lora_opts o = {.rank = 3, .alpha = 6, .dropout = dropout, .targets = "all"};
    assert_int_equal(jl_lora_new(m, &o, 5, &lr), JL_OK);
    randomize(jl_lora_params(lr), jl_lora_num_params(lr), 0.2f, 10);
    float *g = jl_lora_grads(lr);
    assert_int_equal(jl_model_attach_lora(m, lr, N), JL_OK);
    long counted = 0;
    for (int i = 0; i < N; i++) counted += tgt[i] >= 0;
    /* frozen base: every model gradient slot NULL, only the adapter's gradient is accumulated */
    jl_params none;
    memset(&none, 0, sizeof none);
    jl_layer_params nl[2];
    memset(nl, 0, sizeof nl);
    none.layers = nl;
    jl_lora_dropout_begin(lr, 1234);
    jl_model_forward(m, &a, tok, tgt, B, T, 1.0f / (float)counted, NULL);
    jl_model_backward(m, &a, tok, &none, B, T);
    jl_lora_dropout_end(lr);
    int bad = check_block(m, &a, tok, tgt, B, T, jl_lora_params(lr), g, jl_lora_num_params(lr), 1234, "lora");
    assert_int_equal(bad, 0);
    jl_model_attach_lora(m, NULL, 0);
    jl_lora_free(lr);
    jl_acts_free(&a);
    jl_model_free(m);
}

static void test_lora_gradients(void **s) {
    (void)s;
    check_lora_gradients(JL_ARCH_LLAMA, 0.0f);
    check_lora_gradients(JL_ARCH_LLAMA, 0.3f); /* through the dropout masks regenerated in backward */
    check_lora_gradients(JL_ARCH_GPT2, 0.3f);
}

static void check_prompt_gradients(jl_arch arch) {
    jl_model *m = tiny_model(arch, 4, 31);
    const int B = 2, T = 6, N = B * T, P = 3;
    jl_acts a;
    assert_int_equal(jl_acts_new(&m->cfg, B, T, &a), JL_OK);
    int32_t tok[12], tgt[12];
    fill_batch(tok, tgt, N, m->cfg.vocab_size, 12);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < P; t++) tgt[b * T + t] = -1; /* virtual positions have no target */
    jl_prompt *p;
    assert_int_equal(jl_prompt_new(m, P, 3, &p), JL_OK);
    float *g = jl_prompt_grads(p);
    assert_int_equal(jl_model_attach_prompt(m, p), JL_OK);
    long counted = 0;
    for (int i = 0; i < N; i++) counted += tgt[i] >= 0;
    float *grads = calloc(m->n_params, sizeof(float));
    jl_params gv;
    jl_layer_params gl[2];
    jl_params_at(m, grads, &gv, gl);
    jl_model_forward(m, &a, tok, tgt, B, T, 1.0f / (float)counted, NULL);
    jl_model_backward(m, &a, tok, &gv, B, T);
    assert_int_equal(check_block(m, &a, tok, tgt, B, T, jl_prompt_params(p), g, jl_prompt_num_params(p), 0, "prompt"), 0);
    /* the placeholder tokens' embeddings get no gradient: their rows were replaced */
    int32_t placeholder = tok[0];
    int used_elsewhere = 0;
    for (int i = 0; i < N; i++) used_elsewhere |= (i % T >= P) && tok[i] == placeholder;
    if (!used_elsewhere)
        for (int c = 0; c < m->cfg.dim; c++) {
            float gw = grads[m->tensors[0].offset + (size_t)placeholder * m->cfg.dim + c];
            if (m->cfg.tie_embeddings) break; /* tied: the lm head's gradient lands there too */
            assert_true(gw == 0.0f);
        }
    free(grads);
    jl_model_attach_prompt(m, NULL);
    jl_prompt_free(p);
    jl_acts_free(&a);
    jl_model_free(m);
}

static void test_prompt_gradients(void **s) {
    (void)s;
    check_prompt_gradients(JL_ARCH_LLAMA);
    check_prompt_gradients(JL_ARCH_GPT2);
}

typedef struct {
    int vocab;
    uint64_t seed;
    int prefix;
} batch_ctx;

static jl_status random_rows(void *ctx, int32_t *tok, int32_t *tgt, int B, int T) {
    batch_ctx *c = ctx;
    fill_batch(tok, tgt, B * T, c->vocab, c->seed++);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < c->prefix; t++) tgt[b * T + t] = -1;
    return JL_OK;
}

static void test_base_bit_identical_after_adapter_training(void **s) {
    (void)s;
    for (int kind = 0; kind < 2; kind++) {
        jl_model *m = tiny_model(JL_ARCH_LLAMA, 2, 41);
        float *before = malloc(m->n_params * sizeof(float));
        memcpy(before, m->params, m->n_params * sizeof(float));
        for (int i = 0; i < m->n_tensors; i++) m->tensors[i].frozen = 1;
        jl_lora *lr = NULL;
        jl_prompt *p = NULL;
        jl_param_group g;
        jl_lora_opts lo = {.rank = 2, .alpha = 4, .dropout = 0.1f, .targets = "all"};
        if (kind == 0) {
            assert_int_equal(jl_lora_new(m, &lo, 1, &lr), JL_OK);
            assert_int_equal(jl_model_attach_lora(m, lr, 2 * 8), JL_OK);
            g = (jl_param_group){jl_lora_params(lr), jl_lora_grads(lr), jl_lora_num_params(lr), 0};
        } else {
            assert_int_equal(jl_prompt_new(m, 2, 1, &p), JL_OK);
            assert_int_equal(jl_model_attach_prompt(m, p), JL_OK);
            g = (jl_param_group){jl_prompt_params(p), jl_prompt_grads(p), jl_prompt_num_params(p), 0};
        }
        float *adapter_before = malloc(g.n * sizeof(float));
        memcpy(adapter_before, g.param, g.n * sizeof(float));
        jl_trainer_opts to = {.B = 2, .T = 8, .accum = 1, .extra = &g, .n_extra = 1, .seed = 3};
        jl_optim_defaults(&to.opt, 1e-2f, 20);
        to.opt.weight_decay = 0.1f; /* must not touch the frozen base either */
        jl_trainer *t;
        assert_int_equal(jl_trainer_new(m, &to, &t), JL_OK);
        assert_null(t->grads);                /* no gradient block for the frozen model */
        assert_int_equal(t->n_state, g.n);    /* moments: adapter-sized */
        batch_ctx bc = {m->cfg.vocab_size, 100, kind == 1 ? 2 : 0};
        for (int step = 0; step < 10; step++) {
            jl_step_stats st;
            assert_int_equal(jl_trainer_step(t, random_rows, &bc, &st), JL_OK);
            assert_false(st.skipped);
        }
        assert_memory_equal(before, m->params, m->n_params * sizeof(float));
        assert_memory_not_equal(adapter_before, g.param, g.n * sizeof(float));
        jl_trainer_free(t);
        m->lora = NULL;
        m->prompt = NULL;
        jl_lora_free(lr);
        jl_prompt_free(p);
        free(adapter_before);
        free(before);
        jl_model_free(m);
    }
}

static void test_adapter_files(void **s) {
    (void)s;
    jl_model *m = tiny_model(JL_ARCH_LLAMA, 2, 51);
    jl_lora *lr, *back;
    jl_lora_opts o = {.rank = 2, .alpha = 4, .dropout = 0.1f, .targets = "q,v,down"};
    assert_int_equal(jl_lora_new(m, &o, 1, &lr), JL_OK);
    randomize(jl_lora_params(lr), jl_lora_num_params(lr), 0.1f, 2);
    const char *path = tmp_path("adapter.safetensors");
    assert_int_equal(jl_lora_save(lr, path, NULL), JL_OK);
    assert_int_equal(jl_lora_load(path, m, &back, NULL), JL_OK);
    assert_int_equal(jl_lora_num_params(back), jl_lora_num_params(lr));
    assert_memory_equal(jl_lora_params(back), jl_lora_params(lr), jl_lora_num_params(lr) * sizeof(float));
    assert_string_equal(jl_lora_options(back)->targets, "q,v,down");
    jl_lora_free(back);
    /* PEFT names */
    jl_st_file *f;
    assert_int_equal(jl_st_open(path, &f), JL_OK);
    assert_non_null(jl_st_find(f, "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"));
    assert_non_null(jl_st_find(f, "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight"));
    assert_string_equal(jl_st_meta(f, "r"), "2");
    jl_st_close(f);

    /* another base: same config, other weights; and another config */
    jl_model *other = tiny_model(JL_ARCH_LLAMA, 2, 52);
    assert_int_equal(jl_lora_load(path, other, &back, NULL), JL_ERR_ARG);
    assert_non_null(strstr(jl_last_error(), "other base weights"));
    jl_model *gpt = tiny_model(JL_ARCH_GPT2, 4, 51);
    assert_int_equal(jl_lora_load(path, gpt, &back, NULL), JL_ERR_ARG);
    assert_non_null(strstr(jl_last_error(), "another config"));

    /* a file whose tensors do not fit its rank: metadata r = 3, tensors of rank 2 */
    assert_int_equal(jl_st_open(path, &f), JL_OK);
    jl_st_writer *w = jl_st_writer_new();
    const char *keys[] = {"format", "jielong.adapter", "jielong.base_config", "jielong.base_hash", "lora_alpha",
                          "lora_dropout", "target_modules"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        assert_int_equal(jl_st_add_meta(w, keys[k], jl_st_meta(f, keys[k])), JL_OK);
    assert_int_equal(jl_st_add_meta(w, "r", "3"), JL_OK);
    for (int i = 0; i < jl_st_count(f); i++) {
        const jl_st_tensor *t = jl_st_at(f, i);
        assert_int_equal(jl_st_add(w, t->name, t->dtype, t->ndim, t->shape, t->data), JL_OK);
    }
    const char *bad = tmp_path("bad_rank.safetensors");
    assert_int_equal(jl_st_write(w, bad), JL_OK);
    jl_st_writer_free(w);
    jl_st_close(f);
    assert_int_equal(jl_lora_load(bad, m, &back, NULL), JL_ERR_FORMAT);
    assert_non_null(strstr(jl_last_error(), "rank"));
    print_message("%s\n", jl_last_error());

    /* a LoRA file is not a soft prompt */
    jl_prompt *p;
    assert_int_equal(jl_prompt_load(path, m, &p, NULL), JL_ERR_FORMAT);
    /* bad options */
    jl_lora_opts bad_o = {.rank = 2, .alpha = 4, .targets = "q,gate_proj"};
    assert_int_equal(jl_lora_new(m, &bad_o, 1, &back), JL_ERR_ARG);
    assert_non_null(strstr(jl_last_error(), "gate_proj"));
    jl_lora_free(lr);
    jl_model_free(gpt);
    jl_model_free(other);
    jl_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_b_is_identity),
        cmocka_unit_test(test_merged_equals_unmerged),
        cmocka_unit_test(test_lora_gradients),
        cmocka_unit_test(test_prompt_gradients),
        cmocka_unit_test(test_base_bit_identical_after_adapter_training),
        cmocka_unit_test(test_adapter_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
