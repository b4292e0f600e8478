/* Inference: the KV-cache session reproduces the full forward pass at every position (llama with grouped-query
 * attention, gpt2), the sampler's steps, streaming text (UTF-8 hold-back, stop strings across tokens), the
 * generation loop and chat on a hand-built model, and the generate/chat CLI end to end with bad inputs. */
#include "testutil.h"
#include "jielong.h"
#include "infer/linear.h"
#include "infer/sampler.h"
#include "infer/session.h"
#include "jielong/checkpoint.h"
#include "jielong/generate.h"
#include "io/fileio.h"
#include "model/model.h"
#include <math.h>

/* ---------------------------------------------------------------- KV cache vs full forward */

static jl_model *tiny_model(jl_arch arch, int n_kv_head, int context, uint64_t seed) {
    jl_config c;
    jl_config_from_depth(&c, arch, 2, 300, context);
    c.dim = 64;
    c.n_head = 4;
    c.n_kv_head = arch == JL_ARCH_LLAMA ? n_kv_head : 4;
    c.hidden_dim = arch == JL_ARCH_GPT2 ? 256 : 192;
    c.tie_embeddings = arch == JL_ARCH_GPT2;
    assert_int_equal(jl_config_finish(&c), JL_OK);
    jl_model *m;
    assert_int_equal(jl_model_new(&c, &m), JL_OK);
    jl_model_init(m, seed);
    /* larger weights than the init so that attention is far from uniform and errors would show */
    for (size_t i = 0; i < m->n_params; i++) m->params[i] *= 4.0f;
    return m;
}

static float max_abs_diff(const float *a, const float *b, size_t n) {
    float d = 0.0f;
    for (size_t i = 0; i < n; i++) d = fmaxf(d, fabsf(a[i] - b[i]));
    return d;
}

/* Prefill the first n_prefill tokens in blocks of `block` (all logits), then decode the rest one by one;
 * every position must match jl_model_forward over the whole sequence. */
static void check_kv_matches_full(jl_model *m, int T, int n_prefill, int block, int kernel) {
    const jl_config *c = &m->cfg;
    const int V = c->vocab_size, Vp = c->padded_vocab;
    int32_t *tokens = malloc(sizeof *tokens * (size_t)T);
    jl_rng r;
    jl_rng_seed(&r, (uint64_t)T * 31 + (uint64_t)n_prefill);
    for (int t = 0; t < T; t++) tokens[t] = (int32_t)jl_rng_below(&r, (uint64_t)V);
    jl_acts a;
    assert_int_equal(jl_acts_new(c, 1, T, &a), JL_OK);
    jl_model_forward(m, &a, tokens, NULL, 1, T, 0.0f, NULL);

    jl_set_matvec_kernel(kernel);
    jl_session *s;
    assert_int_equal(jl_session_new(m, T, &s), JL_OK);
    jl_session_set_prefill_block(s, block);
    float *logits = malloc(sizeof(float) * (size_t)T * V);
    const float *last;
    assert_int_equal(jl_session_forward(s, tokens, n_prefill, logits, &last), JL_OK);
    assert_true(max_abs_diff(last, logits + (size_t)(n_prefill - 1) * V, (size_t)V) == 0.0f);
    for (int t = n_prefill; t < T; t++) {
        assert_int_equal(jl_session_forward(s, &tokens[t], 1, NULL, &last), JL_OK);
        memcpy(logits + (size_t)t * V, last, sizeof(float) * (size_t)V);
    }
    assert_int_equal(jl_session_pos(s), T);
    float worst = 0.0f;
    for (int t = 0; t < T; t++) {
        float d = max_abs_diff(logits + (size_t)t * V, a.logits + (size_t)t * Vp, (size_t)V);
        if (d > 1e-4f) print_message("%s position %d: max |Δ| %g\n", jl_arch_name(c->arch), t, d);
        assert_true(d <= 1e-4f);
        worst = fmaxf(worst, d);
    }
    /* a full cache refuses one more token with a message */
    int32_t one = 1;
    assert_int_equal(jl_session_forward(s, &one, 1, NULL, NULL), JL_ERR_ARG);
    assert_non_null(strstr(jl_last_error(), "context"));
    jl_set_matvec_kernel(0);
    jl_session_free(s);
    free(logits);
    jl_acts_free(&a);
    free(tokens);
}

static void test_kv_llama_gqa(void **state) {
    (void)state;
    jl_model *m = tiny_model(JL_ARCH_LLAMA, 2, 96, 7);
    check_kv_matches_full(m, 96, 9, 4, 0);   /* prefill in blocks of 4, then 87 decode steps */
    check_kv_matches_full(m, 40, 1, 128, 1); /* decode only, cblas_sgemv kernel */
    check_kv_matches_full(m, 50, 50, 16, 0); /* prefill only */
    jl_model_free(m);
    m = tiny_model(JL_ARCH_LLAMA, 1, 48, 8); /* multi-query: one kv head for all four query heads */
    check_kv_matches_full(m, 48, 20, 7, 0);
    jl_model_free(m);
}

static void test_kv_gpt2(void **state) {
    (void)state;
    jl_model *m = tiny_model(JL_ARCH_GPT2, 4, 80, 9);
    check_kv_matches_full(m, 80, 13, 5, 0);
    check_kv_matches_full(m, 30, 1, 128, 1);
    jl_model_free(m);
}

/* Prefill after decode steps (a chat's second turn) and truncation then re-run give the same logits. */
static void test_kv_prefill_after_decode_and_truncate(void **state) {
    (void)state;
    jl_model *m = tiny_model(JL_ARCH_LLAMA, 2, 64, 10);
    const int T = 40, V = m->cfg.vocab_size;
    int32_t tokens[40];
    for (int t = 0; t < T; t++) tokens[t] = (t * 37 + 5) % V;
    jl_acts a;
    assert_int_equal(jl_acts_new(&m->cfg, 1, T, &a), JL_OK);
    jl_model_forward(m, &a, tokens, NULL, 1, T, 0.0f, NULL);
    jl_session *s;
    assert_int_equal(jl_session_new(m, 0, &s), JL_OK);
    assert_int_equal(jl_session_capacity(s), 64);
    const float *last;
    assert_int_equal(jl_session_forward(s, tokens, 10, NULL, &last), JL_OK);
    for (int t = 10; t < 15; t++) assert_int_equal(jl_session_forward(s, &tokens[t], 1, NULL, &last), JL_OK);
    assert_int_equal(jl_session_forward(s, tokens + 15, T - 15, NULL, &last), JL_OK);
    assert_true(max_abs_diff(last, a.logits + (size_t)(T - 1) * m->cfg.padded_vocab, (size_t)V) <= 1e-4f);
    jl_session_truncate(s, 20);
    assert_int_equal(jl_session_pos(s), 20);
    assert_memory_equal(jl_session_tokens(s), tokens, 20 * sizeof(int32_t));
    assert_int_equal(jl_session_forward(s, tokens + 20, T - 20, NULL, &last), JL_OK);
    assert_true(max_abs_diff(last, a.logits + (size_t)(T - 1) * m->cfg.padded_vocab, (size_t)V) <= 1e-4f);
    /* bad token ids and an over-long prompt are refused */
    int32_t bad = V;
    jl_session_truncate(s, 0);
    assert_int_equal(jl_session_forward(s, &bad, 1, NULL, NULL), JL_ERR_ARG);
    jl_session *small;
    assert_int_equal(jl_session_new(m, 65, &small), JL_ERR_ARG);
    assert_int_equal(jl_session_new(m, 8, &small), JL_OK);
    assert_int_equal(jl_session_forward(small, tokens, 9, NULL, NULL), JL_ERR_ARG);
    assert_non_null(strstr(jl_last_error(), "do not fit"));
    jl_session_free(small);
    jl_session_free(s);
    jl_acts_free(&a);
    jl_model_free(m);
}

/* Both matvec kernels agree with a double-precision reference, odd sizes included. */
static void test_matvec_kernels(void **state) {
    (void)state;
    const int in = 77, out = 53;
    float *w = malloc(sizeof(float) * in * out), x[77], b[53], y1[53], y2[53];
    jl_rng r;
    jl_rng_seed(&r, 3);
    for (int i = 0; i < in * out; i++) w[i] = jl_rng_normal(&r);
    for (int i = 0; i < in; i++) x[i] = jl_rng_normal(&r);
    for (int o = 0; o < out; o++) b[o] = jl_rng_normal(&r);
    jl_matvec_own(y1, w, x, b, in, out);
    jl_matvec_blas(y2, w, x, b, in, out);
    for (int o = 0; o < out; o++) {
        double ref = b[o];
        for (int i = 0; i < in; i++) ref += (double)w[o * in + i] * x[i];
        assert_true(fabs(y1[o] - ref) < 1e-4);
        assert_true(fabs(y2[o] - ref) < 1e-4);
    }
    free(w);
}

/* ---------------------------------------------------------------- sampler */

static void fill_cands(jl_cand *c, const float *logits, int n) {
    for (int i = 0; i < n; i++) c[i] = (jl_cand){i, logits[i], 0.0f};
}

static void test_sampler_steps(void **state) {
    (void)state;
    const float logits[6] = {1.0f, 3.0f, -2.0f, 2.0f, 0.5f, 3.0f};
    jl_cand c[6];
    /* top-k: the k largest, sorted, ties by id */
    fill_cands(c, logits, 6);
    jl_cand_top(c, 6, 3);
    assert_int_equal(c[0].id, 1);
    assert_int_equal(c[1].id, 5);
    assert_int_equal(c[2].id, 3);
    /* quickselect + sort agree with a full sort on random data */
    jl_rng r;
    jl_rng_seed(&r, 5);
    jl_cand big[500], full[500];
    for (int i = 0; i < 500; i++) big[i] = (jl_cand){i, (float)jl_rng_below(&r, 50), 0.0f};
    memcpy(full, big, sizeof big);
    jl_cand_top(full, 500, 500);
    for (int k = 1; k <= 500; k += 37) {
        jl_cand part[500];
        memcpy(part, big, sizeof big);
        jl_cand_top(part, 500, k);
        for (int i = 0; i < k; i++) assert_int_equal(part[i].id, full[i].id);
    }
    /* softmax + top-p: p = softmax(1,2,3) = .090 .245 .665; top-p 0.8 keeps two, 0.6 keeps one */
    const float three[3] = {1.0f, 2.0f, 3.0f};
    fill_cands(c, three, 3);
    jl_cand_softmax(c, 3);
    assert_true(fabsf(c[2].p - 0.6652f) < 1e-3f);
    assert_int_equal(jl_cand_top_p(c, 3, 0.8f), 2);
    assert_int_equal(c[0].id, 2);
    assert_int_equal(c[1].id, 1);
    assert_int_equal(jl_cand_top_p(c, 3, 0.6f), 1);
    assert_int_equal(jl_cand_top_p(c, 3, 1.0f), 3);
    /* min-p 0.3: keeps p ≥ 0.3·0.665 = 0.2 → tokens 2 and 1 */
    fill_cands(c, three, 3);
    jl_cand_softmax(c, 3);
    int n = jl_cand_min_p(c, 3, 0.3f);
    assert_int_equal(n, 2);
    jl_cand_normalize(c, n);
    assert_true(fabsf(c[0].p + c[1].p - 1.0f) < 1e-6f);
    /* draw: the cumulative distribution */
    jl_cand d[3] = {{0, 0, 0.25f}, {1, 0, 0.5f}, {2, 0, 0.25f}};
    assert_int_equal(jl_cand_draw(d, 3, 0.0f), 0);
    assert_int_equal(jl_cand_draw(d, 3, 0.3f), 1);
    assert_int_equal(jl_cand_draw(d, 3, 0.74f), 1);
    assert_int_equal(jl_cand_draw(d, 3, 0.76f), 2);
    assert_int_equal(jl_cand_draw(d, 3, 0.9999f), 2);
}

static void test_sampler_penalties(void **state) {
    (void)state;
    float l[5] = {2.0f, -2.0f, 1.0f, 0.0f, 4.0f};
    int counts[5] = {0};
    const int32_t hist[4] = {0, 1, 0, 7 /* out of range: ignored */};
    jl_penalize(l, 5, hist, 4, 2.0f, 0.0f, 0.0f, counts);
    assert_true(l[0] == 1.0f && l[1] == -4.0f && l[2] == 1.0f && l[4] == 4.0f); /* ÷ or × once, not per count */
    for (int i = 0; i < 5; i++) assert_int_equal(counts[i], 0);
    float m[3] = {1.0f, 1.0f, 1.0f};
    const int32_t h2[3] = {0, 0, 1};
    jl_penalize(m, 3, h2, 3, 1.0f, 0.5f, 0.25f, counts);
    assert_true(fabsf(m[0] - (1.0f - 0.5f - 0.5f)) < 1e-6f); /* presence once + frequency × 2 */
    assert_true(fabsf(m[1] - (1.0f - 0.5f - 0.25f)) < 1e-6f);
    assert_true(m[2] == 1.0f);
}

/* Empirical frequencies over many draws follow the truncated, tempered distribution. */
static void frequencies(const jl_sampler_params *p, const float *logits, int V, int draws, double *freq) {
    jl_sampler *s;
    assert_int_equal(jl_sampler_new(p, V, &s), JL_OK);
    for (int i = 0; i < V; i++) freq[i] = 0;
    for (int i = 0; i < draws; i++) freq[jl_sampler_sample(s, logits, NULL, 0, NULL, 0)] += 1.0 / draws;
    jl_sampler_free(s);
}

static void test_sampler_distribution(void **state) {
    (void)state;
    const float logits[4] = {2.0f, 1.0f, 0.0f, -1.0f};
    double f[4], expect[4], sum = 0;
    jl_sampler_params p;
    jl_sampler_defaults(&p);
    p.top_p = 1.0f;
    p.temperature = 1.0f;
    for (int i = 0; i < 4; i++) sum += expect[i] = exp(logits[i]);
    frequencies(&p, logits, 4, 40000, f);
    for (int i = 0; i < 4; i++) assert_true(fabs(f[i] - expect[i] / sum) < 0.01);
    /* temperature 0.5 sharpens: p ∝ e^(2·logit) */
    p.temperature = 0.5f;
    sum = 0;
    for (int i = 0; i < 4; i++) sum += expect[i] = exp(2 * logits[i]);
    frequencies(&p, logits, 4, 40000, f);
    for (int i = 0; i < 4; i++) assert_true(fabs(f[i] - expect[i] / sum) < 0.01);
    /* temperature 0 = greedy */
    p.temperature = 0.0f;
    frequencies(&p, logits, 4, 100, f);
    assert_true(fabs(f[0] - 1.0) < 1e-9);
    /* top-k 2: only the two best, renormalised */
    p.temperature = 1.0f;
    p.top_k = 2;
    frequencies(&p, logits, 4, 40000, f);
    assert_true(f[2] == 0 && f[3] == 0);
    assert_true(fabs(f[0] - exp(2.0) / (exp(2.0) + exp(1.0))) < 0.01);
    /* top-p 0.7: softmax = .644 .237 .087 .032 → the two best */
    p.top_k = 0;
    p.top_p = 0.7f;
    frequencies(&p, logits, 4, 20000, f);
    assert_true(f[0] > 0.6 && f[1] > 0.2 && f[2] == 0 && f[3] == 0);
    /* min-p 0.1: drops .032 (< .0644) only */
    p.top_p = 1.0f;
    p.min_p = 0.1f;
    frequencies(&p, logits, 4, 20000, f);
    assert_true(f[2] > 0.05 && f[3] == 0);
}

static void test_sampler_seed_and_report(void **state) {
    (void)state;
    float logits[300];
    for (int i = 0; i < 300; i++) logits[i] = sinf((float)i) * 3.0f;
    jl_sampler_params p;
    jl_sampler_defaults(&p);
    p.temperature = 1.0f;
    p.seed = 42;
    jl_sampler *a, *b, *c;
    assert_int_equal(jl_sampler_new(&p, 300, &a), JL_OK);
    assert_int_equal(jl_sampler_new(&p, 300, &b), JL_OK);
    p.seed = 43;
    assert_int_equal(jl_sampler_new(&p, 300, &c), JL_OK);
    int differ = 0;
    for (int i = 0; i < 200; i++) {
        int32_t x = jl_sampler_sample(a, logits, NULL, 0, NULL, 0), y = jl_sampler_sample(b, logits, NULL, 0, NULL, 0);
        assert_int_equal(x, y);
        differ += x != jl_sampler_sample(c, logits, NULL, 0, NULL, 0);
    }
    assert_true(differ > 50);
    /* the report: top tokens by model probability, sampling probabilities after truncation, the choice */
    p.temperature = 0.5f;
    p.top_k = 3;
    assert_int_equal(jl_sampler_set_params(a, &p), JL_OK);
    jl_sample_report rep;
    int32_t t = jl_sampler_sample(a, logits, NULL, 0, &rep, 5);
    assert_int_equal(rep.n_top, 5);
    assert_int_equal(rep.n_kept, 3);
    double kept = 0;
    for (int i = 0; i < 5; i++) {
        if (i) assert_true(rep.top[i].p_model <= rep.top[i - 1].p_model);
        if (i >= 3) assert_true(rep.top[i].p_sample == 0.0f);
        kept += rep.top[i].p_sample;
    }
    assert_true(fabs(kept - 1.0) < 1e-5);
    assert_true(rep.top[0].p_sample > rep.top[0].p_model); /* temperature 0.5 sharpens */
    assert_int_equal(rep.chosen.id, t);
    assert_true(rep.chosen.p_sample > 0);
    /* bad parameters are refused with the field named */
    jl_sampler_params bad = p;
    bad.top_p = 0.0f;
    assert_int_equal(jl_sampler_params_check(&bad), JL_ERR_ARG);
    assert_non_null(strstr(jl_last_error(), "top-p"));
    bad.top_p = 1.5f;
    assert_int_equal(jl_sampler_set_params(a, &bad), JL_ERR_ARG);
    bad = p;
    bad.temperature = -1.0f;
    assert_int_equal(jl_sampler_params_check(&bad), JL_ERR_ARG);
    assert_non_null(strstr(jl_last_error(), "temperature"));
    bad = p;
    bad.min_p = 1.0f;
    assert_int_equal(jl_sampler_params_check(&bad), JL_ERR_ARG);
    jl_sampler_free(a);
    jl_sampler_free(b);
    jl_sampler_free(c);
}

/* ---------------------------------------------------------------- streaming text */

/* Pushes pieces, concatenating what the stream lets out; returns 1 if a stop string completed. */
static int stream_pieces(jl_textstream *ts, const char *const *pieces, int n, char *out, const char *expect_after) {
    out[0] = '\0';
    int stopped = 0;
    for (int i = 0; i < n && !stopped; i++) {
        const char *txt;
        size_t len;
        stopped = jl_textstream_push(ts, pieces[i], strlen(pieces[i]), &txt, &len);
        strncat(out, txt, len);
        if (expect_after && i == 0) assert_string_equal(out, expect_after);
    }
    const char *txt;
    size_t len;
    jl_textstream_flush(ts, &txt, &len);
    strncat(out, txt, len);
    return stopped;
}

static void test_textstream(void **state) {
    (void)state;
    jl_textstream *ts;
    char out[256];
    assert_int_equal(jl_textstream_new(NULL, 0, &ts), JL_OK);
    /* 很 = E5 BE 88 split over three tokens: nothing is printed until the character is whole */
    const char *utf[] = {"a\xE5", "\xBE", "\x88" "b"};
    const char *txt;
    size_t len;
    assert_int_equal(jl_textstream_push(ts, utf[0], strlen(utf[0]), &txt, &len), 0);
    assert_int_equal((int)len, 1);
    assert_int_equal(jl_textstream_push(ts, utf[1], 1, &txt, &len), 0);
    assert_int_equal((int)len, 0);
    assert_int_equal(jl_textstream_push(ts, utf[2], strlen(utf[2]), &txt, &len), 0);
    assert_int_equal((int)len, 4);
    assert_memory_equal(txt, "\xE5\xBE\x88" "b", 4);
    /* a character cut off at the end is flushed as U+FFFD */
    jl_textstream_reset(ts);
    const char *cut[] = {"x\xE5\xBE"};
    assert_int_equal(stream_pieces(ts, cut, 1, out, NULL), 0);
    assert_string_equal(out, "x\xEF\xBF\xBD");
    /* a broken sequence in the middle (a model may sample any bytes) comes out as U+FFFD: valid UTF-8 */
    jl_textstream_reset(ts);
    const char *broken[] = {"\xE2\x80", "\xE7\x9A\x84", "\xFF!"};
    assert_int_equal(stream_pieces(ts, broken, 3, out, NULL), 0);
    assert_string_equal(out, "\xEF\xBF\xBD\xEF\xBF\xBD\xE7\x9A\x84\xEF\xBF\xBD!");
    jl_textstream_free(ts);

    const char *stops[] = {"END", "很好"};
    assert_int_equal(jl_textstream_new(stops, 2, &ts), JL_OK);
    /* a stop string across tokens is not printed; text before it is */
    const char *p1[] = {"the E", "N", "D of it"};
    assert_int_equal(stream_pieces(ts, p1, 3, out, "the "), 1);
    assert_string_equal(out, "the ");
    /* a partial match that breaks off is released */
    jl_textstream_reset(ts);
    const char *p2[] = {"EN", "X", " done"};
    assert_int_equal(stream_pieces(ts, p2, 3, out, ""), 0);
    assert_string_equal(out, "ENX done");
    /* multi-byte stop string split inside a character */
    jl_textstream_reset(ts);
    const char *p3[] = {"真的\xE5\xBE", "\x88\xE5\xA5", "\xBD!"};
    assert_int_equal(stream_pieces(ts, p3, 3, out, "真的"), 1);
    assert_string_equal(out, "真的");
    /* a held-back prefix is released at the end */
    jl_textstream_reset(ts);
    const char *p4[] = {"so EN"};
    assert_int_equal(stream_pieces(ts, p4, 1, out, NULL), 0);
    assert_string_equal(out, "so EN");
    jl_textstream_free(ts);
    const char *empty[] = {""};
    assert_int_equal(jl_textstream_new(empty, 1, &ts), JL_ERR_ARG);
}

/* ---------------------------------------------------------------- a hand-built model with known output */

/* A one-layer llama over the byte tokenizer whose weights make it a bigram table: attention and MLP are zero,
 * the embedding of token t is the unit vector e_t, and the lm head row of next(t) has 0.25 at column t, so the
 * next-token logits are 4.47 for next(t) and 0 elsewhere (p ≈ 0.25 at temperature 1, argmax = next(t)).
 * It writes CHAIN (a 很 in the middle, three byte tokens), then <|end|>; after <|assistant|> it starts CHAIN;
 * every other token is followed by <|eos|>. A literal "<|end|>" taken as the special token would give "Z". */
#define CHAIN "abcdefg很hijkl"

static int32_t special_id(const jl_tokenizer *tok, const char *name) {
    int32_t id = jl_tokenizer_special(tok, name);
    assert_true(id >= 0);
    return id;
}

static jl_model *bigram_model(const jl_tokenizer *tok, int context) {
    jl_config c;
    const int V = jl_tokenizer_vocab_size(tok);
    jl_config_from_depth(&c, JL_ARCH_LLAMA, 1, V, context);
    c.dim = 320;
    c.n_head = 5;
    c.n_kv_head = 5;
    c.hidden_dim = 64;
    c.tie_embeddings = 0;
    assert_int_equal(jl_config_finish(&c), JL_OK);
    jl_model *m;
    assert_int_equal(jl_model_new(&c, &m), JL_OK);
    const int C = c.dim;
    for (int i = 0; i < C; i++) m->w.layers[0].ln1_w[i] = m->w.layers[0].ln2_w[i] = m->w.lnf_w[i] = 1.0f;
    for (int t = 0; t < V; t++) m->w.wte[(size_t)t * C + t] = 1.0f;
    int32_t next[512];
    for (int t = 0; t < V; t++) next[t] = special_id(tok, "<|eos|>");
    const char *chain = CHAIN;
    size_t n = strlen(chain);
    next[special_id(tok, "<|assistant|>")] = (unsigned char)chain[0];
    for (size_t i = 0; i + 1 < n; i++) next[(unsigned char)chain[i]] = (unsigned char)chain[i + 1];
    next[(unsigned char)chain[n - 1]] = special_id(tok, "<|end|>");
    next[special_id(tok, "<|end|>")] = 'Z';
    for (int t = 0; t < V; t++) m->w.lm_head[(size_t)next[t] * C + t] = 0.25f;
    return m;
}

typedef struct {
    char text[1024];
    size_t len;
    int events;
} sink;

static int to_sink(void *user, const jl_gen_event *ev) {
    sink *s = user;
    memcpy(s->text + s->len, ev->text, ev->text_len);
    s->len += ev->text_len;
    s->text[s->len] = '\0';
    s->events++;
    return 0;
}

static jl_gen_result run_generate(jl_model *m, const jl_tokenizer *tok, int capacity, const char *prompt,
                                  const jl_gen_opts *o, float temperature, uint64_t seed, sink *out) {
    jl_session *s;
    assert_int_equal(jl_session_new(m, capacity, &s), JL_OK);
    jl_sampler_params p;
    jl_sampler_defaults(&p);
    p.temperature = temperature;
    p.seed = seed;
    jl_sampler *smp;
    assert_int_equal(jl_sampler_new(&p, m->cfg.vocab_size, &smp), JL_OK);
    int32_t *ids;
    int n;
    assert_int_equal(jl_encode_prompt(tok, prompt, &ids, &n), JL_OK);
    memset(out, 0, sizeof *out);
    jl_gen_result res;
    assert_int_equal(jl_generate(s, smp, tok, ids, n, o, to_sink, out, &res), JL_OK);
    free(ids);
    jl_sampler_free(smp);
    jl_session_free(s);
    return res;
}

static void test_generate_loop(void **state) {
    (void)state;
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_bytes(&tok), JL_OK);
    jl_model *m = bigram_model(tok, 64);
    sink out;
    jl_gen_opts o = {.max_tokens = 100};
    jl_gen_result r = run_generate(m, tok, 0, "a", &o, 0.0f, 1, &out);
    assert_string_equal(out.text, "bcdefg很hijkl");
    assert_int_equal(r.reason, JL_STOP_EOS);
    assert_int_equal(r.n_prompt, 2); /* <|bos|> a */
    assert_int_equal(r.n_generated, 14);
    /* stop string across token boundaries (很 is three tokens, then h) */
    const char *stops[] = {"很h"};
    o.stops = stops;
    o.n_stops = 1;
    r = run_generate(m, tok, 0, "a", &o, 0.0f, 1, &out);
    assert_string_equal(out.text, "bcdefg");
    assert_int_equal(r.reason, JL_STOP_STRING);
    /* max tokens; then the context limit */
    o = (jl_gen_opts){.max_tokens = 3};
    r = run_generate(m, tok, 0, "a", &o, 0.0f, 1, &out);
    assert_string_equal(out.text, "bcd");
    assert_int_equal(r.reason, JL_STOP_MAX_TOKENS);
    o.max_tokens = 100;
    r = run_generate(m, tok, 6, "a", &o, 0.0f, 1, &out);
    assert_string_equal(out.text, "bcdef");
    assert_int_equal(r.reason, JL_STOP_CONTEXT_FULL);
    /* special-token names in the prompt are text: "<|end|>" ends in '>', followed by <|eos|> */
    r = run_generate(m, tok, 0, "<|end|>", &o, 0.0f, 1, &out);
    assert_string_equal(out.text, "");
    assert_int_equal(r.n_prompt, 8);
    /* sampling: same seed, same text; other seeds differ; the report marks the choice */
    sink a, b;
    run_generate(m, tok, 0, "a", &o, 1.0f, 7, &a);
    run_generate(m, tok, 0, "a", &o, 1.0f, 7, &b);
    assert_string_equal(a.text, b.text);
    int differ = 0;
    for (uint64_t seed = 8; seed < 12; seed++) {
        run_generate(m, tok, 0, "a", &o, 1.0f, seed, &b);
        differ += strcmp(a.text, b.text) != 0;
    }
    assert_true(differ >= 3);
    /* a prompt longer than the context is refused */
    jl_session *s;
    jl_sampler *smp;
    jl_sampler_params p;
    jl_sampler_defaults(&p);
    assert_int_equal(jl_session_new(m, 4, &s), JL_OK);
    assert_int_equal(jl_sampler_new(&p, m->cfg.vocab_size, &smp), JL_OK);
    int32_t *ids;
    int n;
    assert_int_equal(jl_encode_prompt(tok, "abcdef", &ids, &n), JL_OK);
    jl_gen_result res;
    assert_int_equal(jl_generate(s, smp, tok, ids, n, &o, NULL, NULL, &res), JL_ERR_ARG);
    assert_non_null(strstr(jl_last_error(), "context"));
    free(ids);
    jl_sampler_free(smp);
    jl_session_free(s);
    jl_model_free(m);
    jl_tokenizer_free(tok);
}

static void test_chat_keeps_cache(void **state) {
    (void)state;
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_bytes(&tok), JL_OK);
    jl_model *m = bigram_model(tok, 64);
    jl_session *s;
    jl_sampler *smp;
    jl_sampler_params p;
    jl_sampler_defaults(&p);
    p.temperature = 0.0f;
    assert_int_equal(jl_session_new(m, 40, &s), JL_OK);
    assert_int_equal(jl_sampler_new(&p, m->cfg.vocab_size, &smp), JL_OK);
    jl_chat *chat;
    assert_int_equal(jl_chat_new(s, smp, tok, &chat), JL_OK);
    jl_gen_opts o = {.max_tokens = 100};
    sink out = {0};
    char *answer;
    jl_gen_result r;
    assert_int_equal(jl_chat_turn(chat, "hi", &o, to_sink, &out, &answer, &r), JL_OK);
    assert_string_equal(answer, CHAIN);
    assert_string_equal(out.text, CHAIN);
    assert_int_equal(r.n_prompt, 6); /* <|bos|><|user|>hi<|end|><|assistant|> */
    assert_int_equal(r.reason, JL_STOP_EOS);
    free(answer);
    /* second turn: only <|end|><|user|>hello<|end|><|assistant|> is prefilled; it runs into the context limit */
    assert_int_equal(jl_chat_turn(chat, "hello", &o, NULL, NULL, &answer, &r), JL_OK);
    assert_int_equal(r.n_prompt, 9);
    assert_int_equal(r.reason, JL_STOP_CONTEXT_FULL);
    assert_string_equal(answer, "abcdefg很h");
    free(answer);
    assert_int_equal(jl_chat_turns(chat), 2);
    /* a third turn no longer fits: refused, conversation unchanged */
    assert_int_equal(jl_chat_turn(chat, "more", &o, NULL, NULL, &answer, &r), JL_ERR_ARG);
    assert_non_null(strstr(jl_last_error(), "no longer fits"));
    assert_int_equal(jl_chat_turns(chat), 2);
    /* reset, then a system prompt: everything after <|bos|> is prefilled again */
    jl_chat_reset(chat);
    assert_int_equal(jl_chat_turns(chat), 0);
    assert_int_equal(jl_chat_set_system(chat, "sys"), JL_OK);
    assert_int_equal(jl_chat_turn(chat, "hi", &o, NULL, NULL, &answer, &r), JL_OK);
    assert_string_equal(answer, CHAIN);
    free(answer);
    assert_int_equal(jl_chat_set_system(chat, "other"), JL_OK);
    assert_int_equal(jl_chat_turn(chat, "x", &o, NULL, NULL, NULL, &r), JL_OK);
    /* <|bos|><|system|> are kept: other<|end|><|user|>hi<|end|><|assistant|>CHAIN<|end|><|user|>x<|end|><|assistant|> */
    assert_int_equal(r.n_prompt, 5 + 1 + 1 + 2 + 1 + 1 + 15 + 1 + 1 + 1 + 1 + 1);
    jl_chat_free(chat);
    jl_sampler_free(smp);
    jl_session_free(s);
    jl_model_free(m);
    jl_tokenizer_free(tok);
}

/* ---------------------------------------------------------------- the CLI end to end */

static const char *bigram_checkpoint(void) {
    static char path[1024];
    if (path[0]) return path;
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_bytes(&tok), JL_OK);
    jl_model *m = bigram_model(tok, 64);
    jl_checkpoint ck = {.model = m};
    assert_int_equal(jl_tokenizer_to_json(tok, &ck.tokenizer_json), JL_OK);
    snprintf(path, sizeof path, "%s", tmp_path("bigram.safetensors"));
    assert_int_equal(jl_checkpoint_save(path, &ck), JL_OK);
    jl_checkpoint_free(&ck);
    jl_tokenizer_free(tok);
    return path;
}

/* Runs the CLI and returns its combined output (malloc'd) and exit code. */
static char *cli_output(const char *args, int *rc) {
    const char *log = tmp_path("cli.log");
    *rc = run_cli(args, log);
    char *text;
    size_t len;
    assert_int_equal(jl_read_file(log, &text, &len), JL_OK);
    return text;
}

static void expect_cli(const char *args, int want_rc, const char *want_output, const char *want_substring) {
    int rc;
    char *out = cli_output(args, &rc);
    if (rc != want_rc) print_message("%s → rc %d:\n%s\n", args, rc, out);
    assert_int_equal(rc, want_rc);
    if (want_output) assert_string_equal(out, want_output);
    if (want_substring && !strstr(out, want_substring)) {
        print_message("%s: no '%s' in:\n%s\n", args, want_substring, out);
        fail();
    }
    free(out);
}

static void test_cli_generate(void **state) {
    (void)state;
    const char *m = bigram_checkpoint();
    char args[2048];
    snprintf(args, sizeof args, "generate --model %s --prompt a --temperature 0", m);
    expect_cli(args, 0, "bcdefg很hijkl\n", NULL); /* the continuation after "a" */
    snprintf(args, sizeof args, "generate --model %s --prompt a --temperature 0 --echo --matvec blas", m);
    expect_cli(args, 0, CHAIN "\n", NULL);
    snprintf(args, sizeof args, "generate --model %s --prompt a --temperature 0 --stop 很h xyz", m);
    expect_cli(args, 0, "bcdefg\n", NULL);
    snprintf(args, sizeof args, "generate --model %s --prompt c --temperature 0 --max-tokens 2", m);
    expect_cli(args, 0, "de\n", NULL);
    /* --prompt - reads the prompt from standard input */
    snprintf(args, sizeof args, "generate --model %s --prompt - --temperature 0 --max-tokens 2 < %s", m,
             tmp_path("prompt_in.txt"));
    FILE *pf = fopen(tmp_path("prompt_in.txt"), "w");
    fputs("c", pf);
    fclose(pf);
    expect_cli(args, 0, "de\n", NULL);
    expect_cli("--version", 0, "jielong " JL_VERSION "\n", NULL);
    snprintf(args, sizeof args, "generate --model %s --prompt a --temperature 0 --context 6", m);
    expect_cli(args, 0, NULL, "context full");
    /* the same seed gives the same sample */
    int rc1, rc2;
    snprintf(args, sizeof args, "generate --model %s --prompt a --temperature 1 --top-p 1 --seed 5", m);
    char *a = cli_output(args, &rc1), *b = cli_output(args, &rc2);
    assert_int_equal(rc1, 0);
    assert_string_equal(a, b);
    free(a);
    free(b);
    /* --show-probs: p ≈ 0.25 at temperature 1; temperature 0.5 makes the top token q ≈ 0.97, so top-p 0.95 keeps
     * only it (q = 1) */
    snprintf(args, sizeof args, "generate --model %s --prompt a --temperature 0.5 --show-probs 3 --max-tokens 2", m);
    int rc;
    char *out = cli_output(args, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "step 1 (1 candidates kept)"));
    assert_non_null(strstr(out, "* 'b'              p=0.25"));
    assert_non_null(strstr(out, "q=1.0000"));
    assert_non_null(strstr(out, "text: bc\n"));
    free(out);
    snprintf(args, sizeof args, "generate --model %s --prompt a --temperature 1 --top-p 1 --show-probs 2 --max-tokens 1", m);
    out = cli_output(args, &rc);
    assert_non_null(strstr(out, "(262 candidates kept)"));
    assert_non_null(strstr(out, "p=0.25"));
    free(out);
    /* special-token names typed in the prompt are text: "<|end|>" is followed by <|eos|>, not by 'Z' */
    snprintf(args, sizeof args, "generate --model %s --prompt '<|end|>' --temperature 0", m);
    expect_cli(args, 0, "\n", NULL);
}

static void test_cli_chat(void **state) {
    (void)state;
    const char *m = bigram_checkpoint();
    char args[2048];
    snprintf(args, sizeof args, "chat --model %s --temperature 0 --system 'be brief' < %s", m,
             tmp_path("chat_in.txt"));
    FILE *f = fopen(tmp_path("chat_in.txt"), "w");
    fputs("hi\n\n/temp 0\nhello there\n/system other\n/reset\nagain\n", f);
    fclose(f);
    expect_cli(args, 0, CHAIN "\n(temperature 0)\n" CHAIN "\n(system prompt set)\n(conversation reset)\n" CHAIN "\n",
               NULL);
    /* turns past the context are refused with a message; bad commands are reported; exit code says so */
    f = fopen(tmp_path("chat_in.txt"), "w");
    fputs("hi\nhello\n/temp -1\n", f);
    fclose(f);
    snprintf(args, sizeof args, "chat --model %s --temperature 0 --context 24 --context-policy refuse < %s", m,
             tmp_path("chat_in.txt"));
    expect_cli(args, 2, NULL, "no longer fits");
    expect_cli(args, 2, NULL, "/temp needs a number");
    /* the default policy drops the oldest exchange instead, and says so */
    snprintf(args, sizeof args, "chat --model %s --temperature 0 --context 24 < %s", m,
             tmp_path("chat_in.txt"));
    expect_cli(args, 2, NULL, "exchange was dropped to fit the context");
}

/* chat --jsonl: one JSON object per turn in and out; an answer with newlines stays on one line; bad lines get an
 * error object naming the line, the others are still answered; the oldest turns are dropped when the context
 * fills. */
static void test_cli_chat_jsonl(void **state) {
    (void)state;
    const char *m = bigram_checkpoint();
    char args[2048];
    FILE *f = fopen(tmp_path("chat_jsonl.txt"), "w");
    fputs("{\"content\":\"hi\"}\n"
          "not json\n"
          "{\"role\":\"robot\",\"content\":\"x\"}\n"
          "{\"role\":\"system\",\"content\":\"be brief\"}\n"
          "{\"reset\":true}\n"
          "{\"role\":\"user\",\"content\":\"again\"}\n", f);
    fclose(f);
    snprintf(args, sizeof args, "chat --model %s --temperature 0 --jsonl < %s", m, tmp_path("chat_jsonl.txt"));
    int rc;
    char *out = cli_output(args, &rc);
    assert_int_equal(rc, 2);
    int lines = 0;
    for (char *p = out; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, 6); /* one line out per line in */
    assert_non_null(strstr(out, "{\"role\":\"assistant\",\"content\":\"" CHAIN "\",\"finish_reason\":\"stop\""));
    assert_non_null(strstr(out, "{\"error\":{\"message\":\"not a JSON object\",\"line\":2}}"));
    assert_non_null(strstr(out, "role 'robot': expected user or system"));
    assert_non_null(strstr(out, "{\"system\":true}"));
    assert_non_null(strstr(out, "{\"reset\":true}"));
    free(out);
    /* a small context: the third turn drops the first exchange */
    f = fopen(tmp_path("chat_jsonl.txt"), "w");
    fputs("{\"content\":\"hi\"}\n{\"content\":\"hello\"}\n{\"content\":\"hey\"}\n", f);
    fclose(f);
    snprintf(args, sizeof args, "chat --model %s --temperature 0 --jsonl --context 32 --max-tokens 6 < %s", m,
             tmp_path("chat_jsonl.txt"));
    out = cli_output(args, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "\"dropped_turns\":1"));
    free(out);
}

static void test_cli_bad_input(void **state) {
    (void)state;
    const char *m = bigram_checkpoint();
    char args[2048];
    snprintf(args, sizeof args, "generate --model %s --prompt a --top-p 0", m);
    expect_cli(args, 2, NULL, "top-p 0: must be in (0, 1]");
    snprintf(args, sizeof args, "generate --model %s --prompt a --top-p 1.5", m);
    expect_cli(args, 2, NULL, "top-p");
    snprintf(args, sizeof args, "generate --model %s --prompt a --temperature -1", m);
    expect_cli(args, 2, NULL, "--temperature -1: out of range");
    snprintf(args, sizeof args, "generate --model %s --prompt abcdefghijklmnop --context 8", m);
    expect_cli(args, 2, NULL, "the prompt has 17 tokens but the context holds 8");
    snprintf(args, sizeof args, "generate --model %s --prompt a --context 65", m);
    expect_cli(args, 2, NULL, "context 65");
    snprintf(args, sizeof args, "chat --model %s --min-p 1 < /dev/null", m);
    expect_cli(args, 2, NULL, "min-p");
    expect_cli("generate --prompt a", 2, NULL, "--model");
    FILE *f = fopen(tmp_path("junk.safetensors"), "w");
    fputs("this is not a checkpoint at all, just text", f);
    fclose(f);
    snprintf(args, sizeof args, "generate --model %s --prompt a", tmp_path("junk.safetensors"));
    expect_cli(args, 2, NULL, "junk.safetensors");
    snprintf(args, sizeof args, "chat --model %s < /dev/null", tmp_path("missing.safetensors"));
    expect_cli(args, 2, NULL, "missing.safetensors");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv_llama_gqa),
        cmocka_unit_test(test_kv_gpt2),
        cmocka_unit_test(test_kv_prefill_after_decode_and_truncate),
        cmocka_unit_test(test_matvec_kernels),
        cmocka_unit_test(test_sampler_steps),
        cmocka_unit_test(test_sampler_penalties),
        cmocka_unit_test(test_sampler_distribution),
        cmocka_unit_test(test_sampler_seed_and_report),
        cmocka_unit_test(test_textstream),
        cmocka_unit_test(test_generate_loop),
        cmocka_unit_test(test_chat_keeps_cache),
        cmocka_unit_test(test_cli_generate),
        cmocka_unit_test(test_cli_chat),
        cmocka_unit_test(test_cli_chat_jsonl),
        cmocka_unit_test(test_cli_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
