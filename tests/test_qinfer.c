/* Quantised inference: q8_0/q4_0 sessions against fp32, a trained model's greedy text, the GGUF load round trip
 * (quantize → load → the same blocks, Q/K rows back in jielong's order), the CLI on a .gguf and bad files. */
#include "testutil.h"
#include "infer/qweights.h"
#include "infer/session.h"
#include "io/fileio.h"
#include "jielong/checkpoint.h"
#include "jielong/eval.h"
#include "jielong/generate.h"
#include "jielong/gguf.h"
#include "model/model.h"
#include "train/trainer.h"
#include <math.h>
#include <omp.h>

static jl_config small_config(jl_arch arch, int tied, int qkv_bias) {
    jl_config c;
    jl_config_from_depth(&c, arch, 1, 262, 64);
    c.dim = 64;
    c.n_layer = 2;
    c.n_head = 2;
    c.n_kv_head = arch == JL_ARCH_LLAMA ? 1 : 2; /* grouped-query attention for llama */
    c.hidden_dim = 128;
    c.tie_embeddings = arch == JL_ARCH_GPT2 || tied;
    c.qkv_bias = qkv_bias;
    assert_int_equal(jl_config_finish(&c), JL_OK);
    return c;
}

static jl_model *random_model(const jl_config *c, uint64_t seed) {
    jl_model *m;
    assert_int_equal(jl_model_new(c, &m), JL_OK);
    jl_model_init(m, seed);
    for (int i = 0; i < m->n_tensors; i++) /* non-trivial norms and biases, so that their loading shows */
        if (m->tensors[i].ndim == 1)
            for (int64_t j = 0; j < m->tensors[i].shape[0]; j++) m->params[m->tensors[i].offset + j] += 0.05f * (float)((j * 7 + i) % 5);
    return m;
}

/* rms(a - b) / rms(b) over n values */
static double rel_err(const float *a, const float *b, size_t n) {
    double d = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        r += (double)b[i] * b[i];
    }
    return sqrt(d / (r > 0 ? r : 1));
}

/* Logits of T tokens: prefilled in blocks of 5, then each of the last 4 decoded one by one. */
static float *session_logits(const jl_model *m, const jl_qweights *qw, const int32_t *tokens, int T) {
    const int V = m->cfg.vocab_size;
    jl_session *s;
    assert_int_equal(jl_session_new_quant(m, qw, 0, &s), JL_OK);
    jl_session_set_prefill_block(s, 5);
    float *logits = malloc(sizeof(float) * (size_t)T * V);
    assert_int_equal(jl_session_forward(s, tokens, T - 4, logits, NULL), JL_OK);
    for (int t = T - 4; t < T; t++) assert_int_equal(jl_session_forward(s, tokens + t, 1, logits + (size_t)t * V, NULL), JL_OK);
    jl_session_free(s);
    return logits;
}

/* Relative RMS error of the quantised linear weights against the model's: the error being introduced. */
static double weight_err(const jl_model *m, jl_qweights *qw) {
    const int n = jl_qweights_n_slots(m);
    jl_lin_slot *sl = malloc(sizeof *sl * (size_t)n);
    jl_qweights_slots(m, qw, sl);
    double d = 0, r = 0;
    for (int i = 0; i < n; i++) {
        const size_t k = (size_t)sl[i].rows * sl[i].cols;
        float *back = malloc(sizeof(float) * k);
        jl_qmatrix_to_f32(sl[i].q, back);
        for (size_t j = 0; j < k; j++) {
            d += ((double)back[j] - sl[i].w[j]) * ((double)back[j] - sl[i].w[j]);
            r += (double)sl[i].w[j] * sl[i].w[j];
        }
        free(back);
    }
    free(sl);
    return sqrt(d / r);
}

static void check_session_vs_f32(jl_arch arch, int tied) {
    jl_config c = small_config(arch, tied, 0);
    jl_model *m = random_model(&c, 3);
    enum { T = 24 };
    int32_t tokens[T];
    for (int t = 0; t < T; t++) tokens[t] = (t * 37 + 11) % c.vocab_size;
    const size_t n = (size_t)T * c.vocab_size;
    float *ref = session_logits(m, NULL, tokens, T);
    double err[2], werr[2];
    const char *types[2] = {"q8_0", "q4_0"};
    for (int k = 0; k < 2; k++) {
        jl_qweights *qw;
        assert_int_equal(jl_qweights_quantize(m, types[k], &qw), JL_OK);
        assert_string_equal(jl_qweights_type(qw), types[k]);
        float *q = session_logits(m, qw, tokens, T);
        err[k] = rel_err(q, ref, n);
        werr[k] = weight_err(m, qw);
        /* the same session with every path forced: the integer sums are exact, only float order differs */
        for (jl_qpath p = JL_QPATH_SCALAR; p <= JL_QPATH_AVX512; p++) {
            if (jl_quant_set_path(p) != JL_OK) continue;
            float *qp = session_logits(m, qw, tokens, T);
            assert_true(rel_err(qp, q, n) < 1e-5);
            free(qp);
        }
        assert_int_equal(jl_quant_set_path(JL_QPATH_AUTO), JL_OK);
        free(q);
        jl_qweights_free(qw);
    }
    /* The logits move by about the weights' own relative error (two layers, activations rounded to q8_0 too):
     * a few times it at most, and q8_0 (~0.5%) an order of magnitude less than q4_0 (~10%). */
    if (err[0] >= 3 * werr[0] || err[1] >= 3 * werr[1] || err[1] <= 5 * err[0])
        print_message("%s tied=%d: logits error q8_0 %.5f (weights %.5f), q4_0 %.5f (weights %.5f)\n",
                      jl_arch_name(arch), tied, err[0], werr[0], err[1], werr[1]);
    assert_true(err[0] > 0 && err[0] < 3 * werr[0] && werr[0] < 0.01);
    assert_true(err[1] > 5 * err[0] && err[1] < 3 * werr[1]);
    free(ref);
    jl_model_free(m);
}

static void test_session_llama_untied(void **s) { (void)s; check_session_vs_f32(JL_ARCH_LLAMA, 0); }
static void test_session_llama_tied(void **s) { (void)s; check_session_vs_f32(JL_ARCH_LLAMA, 1); }
static void test_session_gpt2(void **s) { (void)s; check_session_vs_f32(JL_ARCH_GPT2, 1); }

/* Logits of n decode steps (one token at a time from position 0) of a quantised session, on `threads` threads;
 * kernel 1 (cblas_sgemv) turns the one-region decode off, so the products run one parallel loop each. */
static float *decode_logits(const jl_model *m, const jl_qweights *qw, const int32_t *tokens, int n, int threads,
                            int kernel) {
    const int V = m->cfg.vocab_size, was = omp_get_max_threads();
    omp_set_num_threads(threads);
    jl_set_matvec_kernel(kernel);
    jl_session *s;
    assert_int_equal(jl_session_new_quant(m, qw, 0, &s), JL_OK);
    float *logits = malloc(sizeof(float) * (size_t)n * V);
    for (int t = 0; t < n; t++) assert_int_equal(jl_session_forward(s, tokens + t, 1, logits + (size_t)t * V, NULL), JL_OK);
    jl_session_free(s);
    jl_set_matvec_kernel(0);
    omp_set_num_threads(was);
    return logits;
}

/* Quantised decode gives the same bits on 1 and 2 threads and through the per-product path: each thread's q/k/v
 * and gate/up ranges share one quantised input, and prefetching the next product changes nothing. */
static void test_decode_same_bits_any_threads(void **st) {
    (void)st;
    const char *types[2] = {"q8_0", "q4_0"};
    for (int a = 0; a < 2; a++)
        for (int k = 0; k < 2; k++) {
            jl_config c = small_config(a ? JL_ARCH_GPT2 : JL_ARCH_LLAMA, 0, 0);
            c.n_head = 4;
            c.n_kv_head = a ? 4 : 2; /* two kv heads at least: the one-region decode on two threads */
            assert_int_equal(jl_config_finish(&c), JL_OK);
            jl_model *m = random_model(&c, 11 + (uint64_t)a);
            jl_qweights *qw;
            assert_int_equal(jl_qweights_quantize(m, types[k], &qw), JL_OK);
            int32_t tokens[24];
            for (int t = 0; t < 24; t++) tokens[t] = (int32_t)((t * 37 + 5) % c.vocab_size);
            const size_t n = (size_t)24 * c.vocab_size;
            float *one = decode_logits(m, qw, tokens, 24, 1, 0), *two = decode_logits(m, qw, tokens, 24, 2, 0);
            float *loop = decode_logits(m, qw, tokens, 24, 2, 1);
            assert_memory_equal(one, two, n * sizeof(float));
            assert_memory_equal(one, loop, n * sizeof(float));
            free(one), free(two), free(loop);
            jl_qweights_free(qw);
            jl_model_free(m);
        }
}

static void test_session_rejects_other_shapes(void **s) {
    (void)s;
    jl_config a = small_config(JL_ARCH_LLAMA, 0, 0), b = a;
    b.hidden_dim = 192;
    assert_int_equal(jl_config_finish(&b), JL_OK);
    jl_model *ma = random_model(&a, 1), *mb = random_model(&b, 1);
    jl_qweights *qw;
    jl_session *sess = NULL;
    assert_int_equal(jl_qweights_quantize(mb, "q8_0", &qw), JL_OK);
    assert_int_equal(jl_session_new_quant(ma, qw, 0, &sess), JL_ERR_ARG);
    assert_null(sess);
    jl_qweights_free(qw);
    assert_int_equal(jl_qweights_quantize(ma, "q5_1", &qw), JL_ERR_ARG);
    assert_null(qw);
    jl_model_free(ma);
    jl_model_free(mb);
}

/* ---------------------------------------------------------------- a small trained model */

static const char *corpus =
    "the cat sat on the mat. the dog ran to the park. a bird sang in the tree. "
    "the cat saw the bird. the dog saw the cat. a bird flew over the park. ";

typedef struct {
    const char *text;
    size_t len;
    uint64_t state;
} text_batches;

static jl_status next_batch(void *ctx, int32_t *tokens, int32_t *targets, int B, int T) {
    text_batches *tb = ctx;
    for (int b = 0; b < B; b++) {
        tb->state = tb->state * 6364136223846793005ull + 1442695040888963407ull;
        size_t start = (size_t)(tb->state >> 33) % (tb->len - (size_t)T - 1);
        for (int t = 0; t < T; t++) {
            tokens[b * T + t] = (unsigned char)tb->text[start + t];
            targets[b * T + t] = (unsigned char)tb->text[start + t + 1];
        }
    }
    return JL_OK;
}

/* Trained once per binary and saved with the byte tokenizer: a llama that has learnt the corpus. */
static jl_checkpoint *trained(void) {
    static jl_checkpoint ck;
    if (ck.model) return &ck;
    jl_config c = small_config(JL_ARCH_LLAMA, 0, 0);
    jl_model *m = random_model(&c, 7);
    char text[4096] = "";
    for (int i = 0; i < 8; i++) strcat(text, corpus);
    text_batches tb = {text, strlen(text), 1};
    jl_trainer_opts o = {.B = 8, .T = 32, .accum = 1};
    jl_optim_defaults(&o.opt, 1e-2f, 150);
    jl_trainer *t;
    assert_int_equal(jl_trainer_new(m, &o, &t), JL_OK);
    jl_step_stats st;
    for (int i = 0; i < 150; i++) assert_int_equal(jl_trainer_step(t, next_batch, &tb, &st), JL_OK);
    jl_trainer_free(t);
    assert_true(st.loss < 1.0); /* it has learnt the text */
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_bytes(&tok), JL_OK);
    ck.model = m;
    assert_int_equal(jl_tokenizer_to_json(tok, &ck.tokenizer_json), JL_OK);
    jl_tokenizer_free(tok);
    assert_int_equal(jl_checkpoint_save(tmp_path("trained.safetensors"), &ck), JL_OK);
    return &ck;
}

static void greedy(const jl_model *m, const jl_qweights *qw, const char *prompt, int n, int32_t *out) {
    jl_session *s;
    assert_int_equal(jl_session_new_quant(m, qw, 0, &s), JL_OK);
    int32_t ids[64];
    int len = (int)strlen(prompt);
    for (int i = 0; i < len; i++) ids[i] = (unsigned char)prompt[i];
    const float *logits;
    assert_int_equal(jl_session_forward(s, ids, len, NULL, &logits), JL_OK);
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int v = 1; v < m->cfg.vocab_size; v++) best = logits[v] > logits[best] ? v : best;
        out[i] = best;
        assert_int_equal(jl_session_forward(s, &out[i], 1, NULL, &logits), JL_OK);
    }
    jl_session_free(s);
}

static void test_trained_greedy_q8_0(void **s) {
    (void)s;
    const jl_model *m = trained()->model;
    const char *prompts[] = {"the cat ", "a bird ", "the dog ran"};
    enum { N = 24 };
    int same_q8 = 0, same_q4 = 0;
    jl_qweights *q8, *q4;
    assert_int_equal(jl_qweights_quantize(m, "q8_0", &q8), JL_OK);
    assert_int_equal(jl_qweights_quantize(m, "q4_0", &q4), JL_OK);
    for (int p = 0; p < 3; p++) {
        int32_t f[N], a[N], b[N];
        greedy(m, NULL, prompts[p], N, f);
        greedy(m, q8, prompts[p], N, a);
        greedy(m, q4, prompts[p], N, b);
        for (int i = 0; i < N; i++) {
            same_q8 += a[i] == f[i];
            same_q4 += b[i] == f[i];
        }
    }
    print_message("greedy tokens equal to fp32: q8_0 %d/%d, q4_0 %d/%d\n", same_q8, 3 * N, same_q4, 3 * N);
    assert_true(same_q8 >= 3 * N - 2);
    assert_true(same_q4 >= 3 * N / 2);
    jl_qweights_free(q8);
    jl_qweights_free(q4);
}

/* Loaded for inference (no dequantise), a quantised GGUF holds no fp32 copy of its blocks: the linears and the
 * token embedding (kept in blocks, the same as quantising our own table) have no storage, a session runs on
 * the blocks alone, and what needs every fp32 parameter refuses the model with a message. */
static void check_quantised_only(const jl_model *m, jl_checkpoint *back, jl_qweights *qw, jl_qtype qt, int dequantise) {
    const jl_model *b = back->model;
    if (dequantise) {
        assert_true(b->n_backed == b->n_params);
        return;
    }
    size_t backed = 0;
    for (int i = 0; i < b->n_tensors; i++) {
        const jl_tensor_info *t = &b->tensors[i];
        assert_int_equal(t->unbacked, t->ndim == 2 && strcmp(t->name, "wpe.weight") != 0);
        backed += t->unbacked ? 0 : (size_t)t->shape[0] * (size_t)(t->ndim == 2 ? t->shape[1] : 1);
    }
    assert_true(b->n_backed == backed && b->n_backed < b->n_params / 10);
    assert_null(b->w.wte);
    assert_null(b->w.layers[0].qkv_w);
    const jl_qmatrix *e = jl_qweights_embedding(b, qw);
    assert_non_null(e);
    jl_qmatrix want;
    assert_int_equal(jl_qmatrix_from_f32(&want, qt, m->w.wte, m->cfg.padded_vocab, m->cfg.dim), JL_OK);
    float *row = malloc(sizeof(float) * (size_t)m->cfg.dim), *want_row = malloc(sizeof(float) * (size_t)m->cfg.dim);
    for (int tok = 0; tok < m->cfg.vocab_size; tok += 37) {
        jl_qmatrix_row_f32(e, tok, row);
        jl_qmatrix_row_f32(&want, tok, want_row);
        assert_memory_equal(row, want_row, sizeof(float) * (size_t)m->cfg.dim);
    }
    free(row), free(want_row);
    /* the session on blocks only gives the logits of a session on the fp32 model with that embedding, quantised */
    jl_model *ref_m;
    assert_int_equal(jl_model_new(&m->cfg, &ref_m), JL_OK);
    memcpy(ref_m->params, m->params, sizeof(float) * m->n_params);
    jl_qmatrix_to_f32(&want, ref_m->w.wte);
    jl_qmatrix_free(&want);
    jl_qweights *ref_qw;
    assert_int_equal(jl_qweights_quantize(ref_m, jl_qtype_name(qt), &ref_qw), JL_OK);
    int32_t tokens[6] = {1, 50, 7, 200, 3, 9};
    float *got = session_logits(b, qw, tokens, 6), *ref = session_logits(ref_m, ref_qw, tokens, 6);
    assert_true(rel_err(got, ref, (size_t)6 * m->cfg.vocab_size) < 1e-6);
    free(got), free(ref);
    jl_qweights_free(ref_qw);
    jl_model_free(ref_m);
    /* refused, with a message, by everything that needs the fp32 parameters */
    jl_session *s;
    assert_int_equal(jl_session_new(b, 8, &s), JL_ERR_ARG);
    assert_non_null(strstr(jl_last_error(), "quantised only"));
    assert_int_equal(jl_checkpoint_save(tmp_path("partial.safetensors"), back), JL_ERR_ARG);
    assert_non_null(strstr(jl_last_error(), "partial.safetensors"));
    assert_int_equal(jl_export_gguf(back, tmp_path("partial.gguf"), JL_GGML_Q8_0), JL_ERR_ARG);
    jl_qweights *again;
    assert_int_equal(jl_qweights_quantize(b, "q8_0", &again), JL_ERR_ARG);
    jl_trainer_opts o = {.B = 1, .T = 8, .accum = 1};
    jl_optim_defaults(&o.opt, 1e-3f, 10);
    jl_trainer *t;
    assert_int_equal(jl_trainer_new((jl_model *)b, &o, &t), JL_ERR_ARG);
    assert_non_null(strstr(jl_last_error(), "training"));
    jl_tokenizer *bytes_tok;
    assert_int_equal(jl_tokenizer_bytes(&bytes_tok), JL_OK);
    jl_ppl_result ppl;
    assert_int_equal(jl_eval_perplexity((jl_model *)b, bytes_tok, "abc", 3, 8, &ppl), JL_ERR_ARG);
    assert_non_null(strstr(jl_last_error(), "perplexity"));
    jl_tokenizer_free(bytes_tok);
}

/* ---------------------------------------------------------------- GGUF load round trip */

static void roundtrip_gguf(const jl_config *c, const char *type) {
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_bytes(&tok), JL_OK);
    jl_checkpoint ck = {.model = random_model(c, 5), .chat_template = strdup("{{ messages }}")};
    assert_int_equal(jl_tokenizer_to_json(tok, &ck.tokenizer_json), JL_OK);
    jl_tokenizer_free(tok);
    jl_ggml_type gt;
    assert_int_equal(jl_ggml_type_parse(type, &gt), JL_OK);
    const char *path = tmp_path("rt.gguf");
    assert_int_equal(jl_export_gguf(&ck, path, gt), JL_OK);
    const jl_model *m = ck.model;
    for (int dequantise = 0; dequantise < 2; dequantise++) {
        jl_checkpoint back;
        jl_qweights *qw;
        assert_int_equal(jl_gguf_load_model(path, dequantise, &back, &qw), JL_OK);
        assert_true(jl_config_equal(&m->cfg, &back.model->cfg));
        assert_string_equal(back.tokenizer_json, ck.tokenizer_json);
        assert_string_equal(back.chat_template, ck.chat_template);
        const int n = jl_qweights_n_slots(m);
        jl_lin_slot *orig = malloc(sizeof *orig * (size_t)n), *got = malloc(sizeof *got * (size_t)n);
        jl_qweights_slots(m, NULL, orig);
        jl_qweights_slots(back.model, qw, got);
        if (gt == JL_GGML_F32) {
            assert_null(qw); /* everything fp32, exactly */
            assert_memory_equal(back.model->params, m->params, m->n_params * sizeof(float));
        } else {
            jl_qtype qt = gt == JL_GGML_Q8_0 ? JL_QTYPE_Q8_0 : JL_QTYPE_Q4_0;
            assert_non_null(qw);
            for (int i = 0; i < n; i++) { /* the same blocks as quantising our own rows: Q/K order restored */
                jl_qmatrix want;
                const int64_t rows = i == n - 1 ? c->vocab_size : orig[i].rows; /* padded head rows: zero */
                assert_int_equal(jl_qmatrix_from_f32(&want, qt, orig[i].w, orig[i].rows, orig[i].cols), JL_OK);
                assert_int_equal(got[i].q->type, qt);
                assert_int_equal(got[i].q->rows, orig[i].rows);
                char *a = malloc(want.row_bytes), *b = malloc(want.row_bytes);
                for (int64_t r = 0; r < rows; r++) { /* ggml's bytes back from the repacked rows */
                    jl_qmatrix_get_row(got[i].q, r, a);
                    jl_qmatrix_get_row(&want, r, b);
                    assert_memory_equal(a, b, want.row_bytes);
                }
                free(a);
                free(b);
                float *deq = malloc(sizeof(float) * (size_t)orig[i].rows * orig[i].cols);
                jl_qmatrix_to_f32(&want, deq);
                if (dequantise) assert_memory_equal(got[i].w, deq, sizeof(float) * (size_t)rows * orig[i].cols);
                free(deq);
                jl_qmatrix_free(&want);
            }
            for (int i = 0; i < m->n_tensors; i++) /* norms and biases exact */
                if (m->tensors[i].ndim == 1)
                    assert_memory_equal(back.model->params + back.model->tensors[i].offset,
                                        m->params + m->tensors[i].offset, sizeof(float) * (size_t)m->tensors[i].shape[0]);
            check_quantised_only(m, &back, qw, qt, dequantise);
        }
        free(orig);
        free(got);
        jl_qweights_free(qw);
        jl_checkpoint_free(&back);
    }
    jl_checkpoint_free(&ck);
}

static void test_gguf_roundtrip_llama(void **s) {
    (void)s;
    jl_config c = small_config(JL_ARCH_LLAMA, 0, 1); /* GQA, untied, q/k/v biases (permuted entries) */
    roundtrip_gguf(&c, "q8_0");
    roundtrip_gguf(&c, "q4_0");
    roundtrip_gguf(&c, "f32");
}

static void test_gguf_roundtrip_tied_and_gpt2(void **s) {
    (void)s;
    jl_config c = small_config(JL_ARCH_LLAMA, 1, 0);
    roundtrip_gguf(&c, "q8_0");
    c = small_config(JL_ARCH_GPT2, 1, 0);
    roundtrip_gguf(&c, "q4_0");
}

/* ---------------------------------------------------------------- the CLI */

static char *cli_output(const char *args, int *rc) {
    const char *log = tmp_path("cli.log");
    *rc = run_cli(args, log);
    char *text;
    size_t len;
    assert_int_equal(jl_read_file(log, &text, &len), JL_OK);
    return text;
}

static void expect_cli(const char *args, int want_rc, const char *want_substring) {
    int rc;
    char *out = cli_output(args, &rc);
    if (rc != want_rc || (want_substring && !strstr(out, want_substring))) {
        print_message("%s → rc %d (want %d, '%s'):\n%s\n", args, rc, want_rc, want_substring ? want_substring : "", out);
        fail();
    }
    free(out);
}

static const char *quantised_gguf(void) {
    static char path[1024];
    if (path[0]) return path;
    trained();
    snprintf(path, sizeof path, "%s", tmp_path("trained_q8.gguf"));
    char args[4096];
    snprintf(args, sizeof args, "quantize --model %s --type q8_0 --out %s --quiet", tmp_path("trained.safetensors"), path);
    expect_cli(args, 0, NULL);
    return path;
}

static void test_cli_on_gguf(void **s) {
    (void)s;
    const char *gguf = quantised_gguf(), *st = tmp_path("trained.safetensors");
    char args[4096];
    int rc;
    const char *gen = "generate --prompt 'the cat ' --temperature 0 --max-tokens 20 --threads 2";
    snprintf(args, sizeof args, "%s --model %s", gen, st);
    char *f32 = cli_output(args, &rc);
    assert_int_equal(rc, 0);
    snprintf(args, sizeof args, "%s --model %s", gen, gguf);
    char *q8 = cli_output(args, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(q8, f32); /* a confident trained model: the same greedy text */
    snprintf(args, sizeof args, "%s --model %s --quantize q8_0", gen, st);
    char *at_load = cli_output(args, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(at_load, f32);
    free(f32), free(q8), free(at_load);
    const char *turns = tmp_path("turns.txt");
    assert_int_equal(jl_write_file_atomic(turns, "the dog\nthe cat\n", 16), JL_OK);
    snprintf(args, sizeof args, "chat --model %s --max-tokens 8 --threads 2 --stats < %s", gguf, turns);
    expect_cli(args, 0, "generated");
    /* eval: the q8_0 perplexity is within 1% of fp32's */
    const char *data = tmp_path("heldout.txt");
    assert_int_equal(jl_write_file_atomic(data, corpus, strlen(corpus)), JL_OK);
    double ppl[2];
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "eval --model %s --data %s --json", k ? gguf : st, data);
        char *out = cli_output(args, &rc);
        assert_int_equal(rc, 0);
        const char *p = strstr(out, "\"ppl\":");
        assert_non_null(p);
        ppl[k] = atof(p + 6);
        free(out);
    }
    assert_true(ppl[0] > 1.0 && fabs(ppl[1] / ppl[0] - 1) < 0.01);
}

static void write_bytes(const char *path, const void *data, size_t n) { assert_int_equal(jl_write_file_atomic(path, data, n), JL_OK); }

/* The first occurrence of a byte string in buf, or NULL. */
static char *find_bytes(char *buf, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(buf + i, needle, k) == 0) return buf + i;
    return NULL;
}

static void test_cli_bad_gguf(void **s) {
    (void)s;
    const char *gguf = quantised_gguf();
    char *bytes, args[4096];
    size_t n;
    assert_int_equal(jl_read_file(gguf, &bytes, &n), JL_OK);
    const char *bad = tmp_path("bad.gguf");
    /* truncated */
    write_bytes(bad, bytes, n - 100);
    snprintf(args, sizeof args, "generate --model %s --prompt x", bad);
    expect_cli(args, 2, "past the end");
    write_bytes(bad, bytes, 200);
    expect_cli(args, 2, bad);
    /* another architecture: the value after "general.architecture" (type, length) is "llama" */
    char *copy = malloc(n);
    memcpy(copy, bytes, n);
    char *arch = find_bytes(copy, n, "general.architecture");
    assert_non_null(arch);
    assert_memory_equal(arch + 20 + 12, "llama", 5);
    memcpy(arch + 20 + 12, "mamba", 5);
    write_bytes(bad, copy, n);
    expect_cli(args, 2, "architecture 'mamba' is not supported");
    snprintf(args, sizeof args, "eval --model %s --data %s", bad, bad);
    expect_cli(args, 2, "not supported");
    /* a tensor of a type we do not run (ggml q4_1 = 3): after its name come n_dims, ne[0], ne[1], type */
    memcpy(copy, bytes, n);
    char *name = find_bytes(copy, n, "blk.0.attn_q.weight");
    assert_non_null(name);
    uint32_t q4_1 = 3;
    memcpy(name + strlen("blk.0.attn_q.weight") + 4 + 16, &q4_1, 4);
    write_bytes(bad, copy, n);
    snprintf(args, sizeof args, "generate --model %s --prompt x", bad);
    expect_cli(args, 2, "type q4_1 (3) is not supported");
    free(copy);
    free(bytes);
    /* flags */
    snprintf(args, sizeof args, "generate --model %s --prompt x --quantize q8_0", gguf);
    expect_cli(args, 2, "already quantised");
    snprintf(args, sizeof args, "generate --model %s --prompt x --quantize q5_1", tmp_path("trained.safetensors"));
    expect_cli(args, 2, "q8_0 or q4_0");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_llama_untied),
        cmocka_unit_test(test_session_llama_tied),
        cmocka_unit_test(test_session_gpt2),
        cmocka_unit_test(test_session_rejects_other_shapes),
        cmocka_unit_test(test_decode_same_bits_any_threads),
        cmocka_unit_test(test_trained_greedy_q8_0),
        cmocka_unit_test(test_gguf_roundtrip_llama),
        cmocka_unit_test(test_gguf_roundtrip_tied_and_gpt2),
        cmocka_unit_test(test_cli_on_gguf),
        cmocka_unit_test(test_cli_bad_gguf),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (trained()->model) jl_checkpoint_free(trained());
    return rc;
}
