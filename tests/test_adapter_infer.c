/* Adapters in the KV-cache engine, unmerged: a random non-zero LoRA gives the session the logits of
 * jl_model_forward with the LoRA attached and of a session on the merged model (llama with grouped-query
 * attention, gpt2; prefill blocks and decode); a soft prompt's virtual tokens fill the first cache positions as in
 * jl_model_forward; `jielong generate --adapter` prints the greedy text of the merged model (`jielong export
 * --merge`); an adapter of another base or a path that is not a file exits 2. */
#include "testutil.h"
#include "core/rng.h"
#include "infer/session.h"
#include "io/fileio.h"
#include "jielong/adapter.h"
#include "jielong/checkpoint.h"
#include "jielong/generate.h"
#include "model/model.h"
#include <math.h>

static jl_model *tiny_model(jl_arch arch, int context, uint64_t seed) {
    jl_config c;
    jl_config_from_depth(&c, arch, 2, 300, context);
    c.dim = 64;
    c.n_head = 4;
    c.n_kv_head = arch == JL_ARCH_LLAMA ? 2 : 4;
    c.hidden_dim = arch == JL_ARCH_GPT2 ? 256 : 192;
    c.tie_embeddings = arch == JL_ARCH_GPT2;
    assert_int_equal(jl_config_finish(&c), JL_OK);
    jl_model *m;
    assert_int_equal(jl_model_new(&c, &m), JL_OK);
    jl_model_init(m, seed);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] *= 4.0f; /* attention far from uniform */
    return m;
}

/* A LoRA on every projection with random A and B: B = 0 would hide a missing or misplaced term. */
static jl_lora *random_lora(const jl_model *m, uint64_t seed) {
    jl_lora_opts o = {.rank = 3, .alpha = 6.0f, .targets = "all"};
    jl_lora *lr;
    assert_int_equal(jl_lora_new(m, &o, seed, &lr), JL_OK);
    jl_rng r;
    jl_rng_seed(&r, seed + 5);
    float *p = jl_lora_params(lr);
    for (size_t i = 0; i < jl_lora_num_params(lr); i++) p[i] = 0.1f * jl_rng_normal(&r);
    return lr;
}

static void random_tokens(int32_t *tokens, int T, int vocab, uint64_t seed) {
    jl_rng r;
    jl_rng_seed(&r, seed);
    for (int t = 0; t < T; t++) tokens[t] = (int32_t)jl_rng_below(&r, (uint64_t)vocab);
}

/* Logits (T × vocab_size) of a session: n_prefill tokens in blocks of 3, then one token at a time. */
static float *session_logits(const jl_model *m, const int32_t *tokens, int T, int n_prefill) {
    const int V = m->cfg.vocab_size;
    jl_session *s;
    assert_int_equal(jl_session_new(m, T, &s), JL_OK);
    jl_session_set_prefill_block(s, 3);
    float *logits = malloc(sizeof(float) * (size_t)T * V);
    assert_int_equal(jl_session_forward(s, tokens, n_prefill, logits, NULL), JL_OK);
    for (int t = n_prefill; t < T; t++) {
        const float *last;
        assert_int_equal(jl_session_forward(s, &tokens[t], 1, NULL, &last), JL_OK);
        memcpy(logits + (size_t)t * V, last, sizeof(float) * (size_t)V);
    }
    jl_session_free(s);
    return logits;
}

static float *forward_logits(jl_model *m, const int32_t *tokens, int T) {
    const int V = m->cfg.vocab_size, Vp = m->cfg.padded_vocab;
    jl_acts a;
    assert_int_equal(jl_acts_new(&m->cfg, 1, T, &a), JL_OK);
    jl_model_forward(m, &a, tokens, NULL, 1, T, 0.0f, NULL);
    float *logits = malloc(sizeof(float) * (size_t)T * V);
    for (int t = 0; t < T; t++) memcpy(logits + (size_t)t * V, a.logits + (size_t)t * Vp, sizeof(float) * (size_t)V);
    jl_acts_free(&a);
    return logits;
}

static void expect_close(const float *got, const float *want, size_t n, const char *what) {
    float worst = 0.0f, scale = 0.0f;
    for (size_t i = 0; i < n; i++) {
        worst = fmaxf(worst, fabsf(got[i] - want[i]));
        scale = fmaxf(scale, fabsf(want[i]));
    }
    if (worst > 1e-4f) print_message("%s: max |Δ| %g (logits up to %g)\n", what, worst, scale);
    assert_true(worst <= 1e-4f);
}

static void check_lora_session(jl_arch arch) {
    const int T = 11, n_prefill = 5;
    jl_model *m = tiny_model(arch, T, 3);
    jl_lora *lr = random_lora(m, 9);
    int32_t tokens[11];
    random_tokens(tokens, T, m->cfg.vocab_size, 17);
    const size_t n = (size_t)T * m->cfg.vocab_size;
    float *base = session_logits(m, tokens, T, n_prefill);

    assert_int_equal(jl_model_attach_lora(m, lr, T), JL_OK);
    float *unmerged = session_logits(m, tokens, T, n_prefill), *full = forward_logits(m, tokens, T);
    expect_close(unmerged, full, n, "session vs forward, LoRA attached");
    float moved = 0.0f; /* the adapter really changes the outputs */
    for (size_t i = 0; i < n; i++) moved = fmaxf(moved, fabsf(unmerged[i] - base[i]));
    assert_true(moved > 1e-2f);

    jl_model *merged;
    assert_int_equal(jl_model_new(&m->cfg, &merged), JL_OK);
    memcpy(merged->params, m->params, sizeof(float) * m->n_params);
    assert_int_equal(jl_lora_merge(merged, lr), JL_OK);
    float *folded = session_logits(merged, tokens, T, n_prefill);
    expect_close(unmerged, folded, n, "unmerged vs merged session");

    jl_model_attach_lora(m, NULL, 0);
    free(base), free(unmerged), free(full), free(folded);
    jl_model_free(merged);
    jl_lora_free(lr);
    jl_model_free(m);
}

static void test_lora_session_llama_gqa(void **state) {
    (void)state;
    check_lora_session(JL_ARCH_LLAMA);
}

static void test_lora_session_gpt2(void **state) {
    (void)state;
    check_lora_session(JL_ARCH_GPT2);
}

/* Soft prompt: n placeholders first; the session's cache holds the virtual tokens there, like the forward pass. */
static void check_prompt_session(jl_arch arch) {
    const int T = 10;
    jl_model *m = tiny_model(arch, T, 4);
    jl_prompt *p;
    assert_int_equal(jl_prompt_new(m, 4, 21, &p), JL_OK);
    int32_t tokens[10];
    random_tokens(tokens, T, m->cfg.vocab_size, 23);
    assert_int_equal(jl_model_attach_prompt(m, p), JL_OK);
    float *full = forward_logits(m, tokens, T);
    float *cached = session_logits(m, tokens, T, 2); /* the prompt spans a prefill block and decode steps */
    expect_close(cached, full, (size_t)T * m->cfg.vocab_size, "session vs forward, soft prompt");
    jl_session *s;
    assert_int_equal(jl_session_new(m, 0, &s), JL_OK);
    assert_int_equal(jl_session_virtual_tokens(s), 4);
    jl_session_free(s);
    jl_model_attach_prompt(m, NULL);
    free(full), free(cached);
    jl_prompt_free(p);
    jl_model_free(m);
}

static void test_prompt_session(void **state) {
    (void)state;
    check_prompt_session(JL_ARCH_LLAMA);
    check_prompt_session(JL_ARCH_GPT2);
}

/* Chat with a soft prompt: every rendered conversation starts with its placeholders, then <|bos|>. */
static void test_prompt_chat(void **state) {
    (void)state;
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_bytes(&tok), JL_OK);
    jl_model *m = tiny_model(JL_ARCH_LLAMA, 64, 5);
    jl_prompt *p;
    assert_int_equal(jl_prompt_new(m, 3, 8, &p), JL_OK);
    assert_int_equal(jl_model_attach_prompt(m, p), JL_OK);
    jl_session *s;
    assert_int_equal(jl_session_new(m, 0, &s), JL_OK);
    jl_sampler_params sp;
    jl_sampler_defaults(&sp);
    sp.temperature = 0;
    jl_sampler *smp;
    assert_int_equal(jl_sampler_new(&sp, m->cfg.vocab_size, &smp), JL_OK);
    jl_chat *chat;
    assert_int_equal(jl_chat_new(s, smp, tok, &chat), JL_OK);
    jl_gen_opts o = {.max_tokens = 4};
    jl_gen_result res;
    for (int turn = 0; turn < 2; turn++) {
        assert_int_equal(jl_chat_turn(chat, "hi", &o, NULL, NULL, NULL, &res), JL_OK);
        const int32_t *cached = jl_session_tokens(s);
        for (int i = 0; i < 3; i++) assert_int_equal(cached[i], 0);
        assert_int_equal(cached[3], jl_tokenizer_special(tok, "<|bos|>"));
    }
    jl_chat_free(chat);
    jl_sampler_free(smp);
    jl_session_free(s);
    jl_model_attach_prompt(m, NULL);
    jl_prompt_free(p);
    jl_model_free(m);
    jl_tokenizer_free(tok);
}

/* ---------------------------------------------------------------- the CLI */

static char *cli_output(const char *args, int *rc) {
    const char *log = tmp_path("adapter_cli.log");
    *rc = run_cli(args, log);
    char *text;
    size_t len;
    assert_int_equal(jl_read_file(log, &text, &len), JL_OK);
    return text;
}

static char *expect_rc(const char *args, int want_rc) {
    int rc;
    char *out = cli_output(args, &rc);
    if (rc != want_rc) print_message("%s → rc %d:\n%s\n", args, rc, out);
    assert_int_equal(rc, want_rc);
    return out;
}

/* A checkpoint of a tiny random llama with the byte tokenizer, and a LoRA adapter for it as loaded back. */
static void write_base_and_adapter(const char *ck_path, const char *adapter_path, uint64_t seed) {
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_bytes(&tok), JL_OK);
    jl_checkpoint ck = {.model = tiny_model(JL_ARCH_LLAMA, 64, seed)};
    assert_int_equal(jl_tokenizer_to_json(tok, &ck.tokenizer_json), JL_OK);
    assert_int_equal(jl_checkpoint_save(ck_path, &ck), JL_OK);
    jl_checkpoint_free(&ck);
    jl_tokenizer_free(tok);
    assert_int_equal(jl_checkpoint_load(ck_path, &ck), JL_OK);
    jl_lora *lr = random_lora(ck.model, seed + 1);
    assert_int_equal(jl_lora_save(lr, adapter_path, NULL), JL_OK);
    jl_lora_free(lr);
    jl_checkpoint_free(&ck);
}

static void test_cli_generate_adapter(void **state) {
    (void)state;
    char base[512], adapter[512], merged[512], other[512], other_adapter[512], args[4096];
    snprintf(base, sizeof base, "%s", tmp_path("ai_base.safetensors"));
    snprintf(adapter, sizeof adapter, "%s", tmp_path("ai_adapter.safetensors"));
    snprintf(merged, sizeof merged, "%s", tmp_path("ai_merged.safetensors"));
    snprintf(other, sizeof other, "%s", tmp_path("ai_other.safetensors"));
    snprintf(other_adapter, sizeof other_adapter, "%s", tmp_path("ai_other_adapter.safetensors"));
    write_base_and_adapter(base, adapter, 31);
    write_base_and_adapter(other, other_adapter, 77);

    snprintf(args, sizeof args, "export --model %s --merge %s --out %s --quiet", base, adapter, merged);
    free(expect_rc(args, 0));
    const char *gen = "generate --prompt 'spring rain' --temperature 0 --max-tokens 24";
    snprintf(args, sizeof args, "%s --model %s --adapter %s", gen, base, adapter);
    char *unmerged = expect_rc(args, 0);
    snprintf(args, sizeof args, "%s --model %s", gen, merged);
    char *folded = expect_rc(args, 0);
    snprintf(args, sizeof args, "%s --model %s", gen, base);
    char *plain = expect_rc(args, 0);
    assert_string_equal(unmerged, folded);
    assert_true(strcmp(unmerged, plain) != 0); /* the adapter changes the greedy text */
    free(unmerged), free(folded), free(plain);

    /* chat takes the same flag */
    snprintf(args, sizeof args, "chat --model %s --adapter %s --temperature 0 --max-tokens 8 < /dev/null", base,
             adapter);
    free(expect_rc(args, 0));

    snprintf(args, sizeof args, "%s --model %s --adapter %s", gen, base, other_adapter);
    char *out = expect_rc(args, 2);
    assert_non_null(strstr(out, "other base weights"));
    free(out);
    snprintf(args, sizeof args, "%s --model %s --adapter %s", gen, base, tmp_path("no_such_adapter.safetensors"));
    out = expect_rc(args, 2);
    assert_non_null(strstr(out, "no_such_adapter"));
    free(out);
    snprintf(args, sizeof args, "chat --model %s --adapter %s < /dev/null", base, base); /* a checkpoint, not an adapter */
    out = expect_rc(args, 2);
    assert_non_null(strstr(out, "adapter"));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lora_session_llama_gqa),
        cmocka_unit_test(test_lora_session_gpt2),
        cmocka_unit_test(test_prompt_session),
        cmocka_unit_test(test_prompt_chat),
        cmocka_unit_test(test_cli_generate_adapter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
