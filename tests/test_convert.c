/* Open weights: HF folders (GPT-2, Llama GQA untied, Qwen2-style biases, SmolLM-style tied) and llm.c files
 * round trip bit for bit; hand-written HF folders (prefixes, buffers, BF16) import; every bad input is a clear
 * error; GGUF export is checked by the separate reader (metadata, tokenizer, RoPE permutation, quantised data). */
#include "testutil.h"
#include "fixtures.h"
#include "core/half.h"
#include "core/rng.h"
#include "io/fileio.h"
#include "jielong/convert.h"
#include "jielong/dataset.h"
#include "jielong/gguf.h"
#include "jielong/tokenizer.h"
#include "model/model.h"
#include <json.h>
#include <math.h>
#include <sys/stat.h>

static void assert_same_model(const jl_model *a, const jl_model *b) {
    assert_true(jl_config_equal(&a->cfg, &b->cfg));
    assert_int_equal(a->n_params, b->n_params);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
}

static void roundtrip(const jl_config *c, const char *dirname) {
    jl_checkpoint ck = {.model = fixture_random_model(c, 7), .tokenizer_json = fixture_tokenizer_json(),
                        .chat_template = strdup("{{ messages }}")};
    const char *dir = tmp_path(dirname);
    assert_int_equal(jl_export_hf(&ck, dir, JL_DT_F32), JL_OK);
    jl_checkpoint back;
    assert_int_equal(jl_import_hf(dir, &back), JL_OK);
    assert_same_model(ck.model, back.model);
    assert_string_equal(ck.tokenizer_json, back.tokenizer_json);
    assert_string_equal(ck.chat_template, back.chat_template);
    jl_checkpoint_free(&back);
    /* BF16 export: every value rounds to its bf16 neighbour */
    assert_int_equal(jl_export_hf(&ck, dir, JL_DT_BF16), JL_OK);
    assert_int_equal(jl_import_hf(dir, &back), JL_OK);
    for (size_t i = 0; i < ck.model->n_params; i++)
        assert_true(back.model->params[i] == jl_bf16_to_f32(jl_f32_to_bf16(ck.model->params[i])));
    jl_checkpoint_free(&back);
    jl_checkpoint_free(&ck);
}

/* Our own model exported for HF: the chat template is ours as Jinja and generation stops at <|end|> (the token
 * that ends an answer) as well as <|eos|>, so HF tools stop where jielong stops. */
static void test_hf_export_template_and_stops(void **s) {
    (void)s;
    jl_config c = fixture_tiny_config(JL_ARCH_LLAMA, 2, 0, 0);
    jl_checkpoint ck = {.model = fixture_random_model(&c, 7), .tokenizer_json = fixture_tokenizer_json()};
    const char *dir = tmp_path("hf_ours");
    assert_int_equal(jl_export_hf(&ck, dir, JL_DT_F32), JL_OK);
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    json_object *tc = json_object_from_file(path), *v;
    assert_non_null(tc);
    assert_true(json_object_object_get_ex(tc, "eos_token", &v));
    assert_string_equal(json_object_get_string(v), "<|end|>");
    assert_true(json_object_object_get_ex(tc, "chat_template", &v));
    assert_string_equal(json_object_get_string(v), jl_chat_template_jinja());
    json_object_put(tc);
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    json_object *gc = json_object_from_file(path);
    assert_non_null(gc);
    assert_true(json_object_object_get_ex(gc, "eos_token_id", &v));
    assert_int_equal(json_object_array_length(v), 2);
    jl_tokenizer *t;
    assert_int_equal(jl_tokenizer_from_json(ck.tokenizer_json, strlen(ck.tokenizer_json), &t), JL_OK);
    assert_int_equal(json_object_get_int(json_object_array_get_idx(v, 0)), jl_tokenizer_special(t, "<|end|>"));
    assert_int_equal(json_object_get_int(json_object_array_get_idx(v, 1)), jl_tokenizer_special(t, "<|eos|>"));
    jl_tokenizer_free(t);
    json_object_put(gc);
    jl_checkpoint_free(&ck);
}

static void test_roundtrip_llama_gqa_untied(void **s) {
    (void)s;
    jl_config c = fixture_tiny_config(JL_ARCH_LLAMA, 2, 0, 0);
    roundtrip(&c, "hf_llama");
}

static void test_roundtrip_smollm_tied(void **s) {
    (void)s;
    jl_config c = fixture_tiny_config(JL_ARCH_LLAMA, 1, 1, 0);
    roundtrip(&c, "hf_smollm");
}

static void test_roundtrip_qwen2_biases(void **s) {
    (void)s;
    jl_config c = fixture_tiny_config(JL_ARCH_LLAMA, 2, 0, 1);
    roundtrip(&c, "hf_qwen2");
    char *text;
    size_t len;
    assert_int_equal(jl_read_file(tmp_path("hf_qwen2/config.json"), &text, &len), JL_OK);
    assert_non_null(strstr(text, "\"qwen2\""));
    free(text);
}

static void test_roundtrip_gpt2(void **s) {
    (void)s;
    jl_config c = fixture_tiny_config(JL_ARCH_GPT2, 4, 1, 0);
    roundtrip(&c, "hf_gpt2");
}

/* The Qwen2 biases reach the computation: the forward changes when they do. */
static void test_qkv_bias_used_in_forward(void **s) {
    (void)s;
    jl_config c = fixture_tiny_config(JL_ARCH_LLAMA, 2, 0, 1);
    jl_model *m = fixture_random_model(&c, 3);
    jl_acts a;
    assert_int_equal(jl_acts_new(&m->cfg, 1, 4, &a), JL_OK);
    int32_t tok[4] = {1, 2, 3, 4};
    jl_model_forward(m, &a, tok, NULL, 1, 4, 0, NULL);
    float before = a.logits[(size_t)3 * c.padded_vocab + 5];
    for (int i = 0; i < c.dim; i++) m->w.layers[0].qkv_b[i] += 1.0f;
    jl_model_forward(m, &a, tok, NULL, 1, 4, 0, NULL);
    assert_true(fabsf(a.logits[(size_t)3 * c.padded_vocab + 5] - before) > 1e-6f);
    jl_acts_free(&a);
    jl_model_free(m);
}

/* ---------------------------------------------------------------- hand-written HF folders */

static void write_text(const char *path, const char *text) { assert_int_equal(jl_write_file_atomic(path, text, strlen(text)), JL_OK); }

static const char *gpt2_config_json =
    "{\"architectures\": [\"GPT2LMHeadModel\"], \"model_type\": \"gpt2\", \"vocab_size\": 300, \"n_positions\": 32,"
    " \"n_ctx\": 32, \"n_embd\": 64, \"n_layer\": 1, \"n_head\": 4, \"n_inner\": null, \"layer_norm_epsilon\": 1e-05,"
    " \"activation_function\": \"gelu_new\", \"bos_token_id\": 50256, \"torch_dtype\": \"bfloat16\"}";

/* A GPT-2 folder the way transformers saves GPT2LMHeadModel: "transformer." prefix, causal-mask buffers,
 * Conv1D weights (in, out), BF16, and a tied lm_head copy. Returns the expected (bf16-rounded) model. */
static jl_model *write_gpt2_folder(const char *dir, const char *skip, const char *reshape, const char *extra) {
    assert_int_equal(jl_mkdir_p(dir), JL_OK);
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_text(path, gpt2_config_json);
    jl_config c = fixture_tiny_config(JL_ARCH_GPT2, 4, 1, 0);
    c.n_layer = 1;
    c.hidden_dim = 256;
    jl_model *m = fixture_random_model(&c, 11);
    jl_st_writer *w = jl_st_writer_new();
    uint16_t *bufs[64];
    int nb = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        jl_tensor_info *t = &m->tensors[i];
        if (skip && strcmp(t->name, skip) == 0) continue;
        int64_t rows = t->rows_saved, cols = t->ndim == 2 ? t->shape[1] : 1, n = rows * cols;
        uint16_t *b = bufs[nb++] = malloc((size_t)n * 2);
        float *p = m->params + t->offset;
        for (int64_t j = 0; j < n; j++) { /* round the model itself to bf16 so the import must match exactly */
            p[j] = jl_bf16_to_f32(jl_f32_to_bf16(p[j]));
            int64_t r = j / cols, col = j % cols;
            if (t->hf_transposed) b[col * rows + r] = jl_f32_to_bf16(p[j]);
            else b[j] = jl_f32_to_bf16(p[j]);
        }
        int64_t shape[2] = {t->hf_transposed ? cols : rows, t->hf_transposed ? rows : cols};
        if (reshape && strcmp(t->name, reshape) == 0) shape[0] -= 1, shape[1] = t->ndim == 2 ? shape[1] : 0;
        char name[160];
        snprintf(name, sizeof name, "transformer.%s", t->name);
        int64_t sh[2] = {shape[0], shape[1]};
        if (reshape && strcmp(t->name, reshape) == 0 && t->ndim == 1) sh[0] = shape[0];
        assert_int_equal(jl_st_add(w, name, JL_DT_BF16, t->ndim, sh, b), JL_OK);
    }
    static uint16_t mask[32 * 32];
    int64_t mshape[4] = {1, 1, 32, 32};
    assert_int_equal(jl_st_add(w, "transformer.h.0.attn.bias", JL_DT_BF16, 4, mshape, mask), JL_OK);
    int64_t lm_shape[2] = {300, 64};
    assert_int_equal(jl_st_add(w, "lm_head.weight", JL_DT_BF16, 2, lm_shape, bufs[0]), JL_OK);
    if (extra) assert_int_equal(jl_st_add(w, extra, JL_DT_BF16, 1, lm_shape + 1, bufs[0]), JL_OK);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_int_equal(jl_st_write(w, path), JL_OK);
    jl_st_writer_free(w);
    for (int i = 0; i < nb; i++) free(bufs[i]);
    return m;
}

static void test_import_handwritten_gpt2_folder(void **s) {
    (void)s;
    const char *dir = tmp_path("hw_gpt2");
    jl_model *expect = write_gpt2_folder(dir, NULL, NULL, NULL);
    char *tok = fixture_tokenizer_json();
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    write_text(path, tok);
    jl_checkpoint ck;
    assert_int_equal(jl_import_hf(dir, &ck), JL_OK);
    assert_same_model(expect, ck.model);
    assert_string_equal(ck.tokenizer_json, tok);
    assert_null(ck.chat_template);
    jl_checkpoint_free(&ck);
    jl_model_free(expect);
    free(tok);
}

static void expect_import_error(const char *dir, const char *needle) {
    jl_checkpoint ck;
    jl_status st = jl_import_hf(dir, &ck);
    assert_int_equal(st, JL_ERR_FORMAT);
    if (!strstr(jl_last_error(), needle)) fail_msg("error '%s' lacks '%s'", jl_last_error(), needle);
}

static void test_import_bad_tensors(void **s) {
    (void)s;
    jl_model_free(write_gpt2_folder(tmp_path("bad_missing"), "h.0.ln_2.bias", NULL, NULL));
    expect_import_error(tmp_path("bad_missing"), "missing tensor 'h.0.ln_2.bias'");
    jl_model_free(write_gpt2_folder(tmp_path("bad_shape"), NULL, "h.0.mlp.c_fc.weight", NULL));
    expect_import_error(tmp_path("bad_shape"), "h.0.mlp.c_fc.weight' has shape");
    jl_model_free(write_gpt2_folder(tmp_path("bad_extra"), NULL, NULL, "h.0.attn.q_norm.weight"));
    expect_import_error(tmp_path("bad_extra"), "unexpected tensor 'h.0.attn.q_norm.weight'");
}

static void test_import_bad_config(void **s) {
    (void)s;
    const char *dir = tmp_path("bad_cfg");
    jl_model_free(write_gpt2_folder(dir, NULL, NULL, NULL));
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    struct { const char *json, *needle; } cases[] = {
        {"{\"model_type\": \"mamba\"}", "field 'model_type': 'mamba' is not supported"},
        {"{\"vocab_size\": 3}", "field 'model_type'"},
        {"{\"model_type\": \"llama\", \"hidden_size\": 64, \"rope_scaling\": {\"type\": \"linear\"}}", "rope_scaling"},
        {"{\"model_type\": \"llama\", \"attention_bias\": true}", "attention_bias"},
        {"{\"model_type\": \"llama\", \"hidden_act\": \"gelu\"}", "hidden_act"},
        {"{\"model_type\": \"llama\", \"vocab_size\": 300}", "field 'hidden_size': missing"},
        {"{\"model_type\": \"gpt2\", \"vocab_size\": \"many\"}", "field 'vocab_size': not an integer"},
        {"{\"model_type\": \"gpt2\", \"activation_function\": \"relu\"}", "activation_function"},
        {"{\"model_type\": \"gpt2\", \"vocab_size\": 300, \"n_positions\": 32, \"n_embd\": 64, \"n_layer\": 1,"
         " \"n_head\": 5}", "n_head"},
        {"{\"model_type\": \"gpt2\"", "invalid JSON"},
        {"{\"model_type\": \"gp\xff\"}", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text(path, cases[i].json);
        expect_import_error(dir, cases[i].needle);
        assert_non_null(strstr(jl_last_error(), "config.json"));
    }
}

static void write_bytes(const char *path, const void *data, size_t n) { assert_int_equal(jl_write_file_atomic(path, data, n), JL_OK); }

static void test_import_bad_safetensors(void **s) {
    (void)s;
    const char *dir = tmp_path("bad_st");
    jl_model_free(write_gpt2_folder(dir, NULL, NULL, NULL));
    char path[1024], *data;
    size_t len;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_int_equal(jl_read_file(path, &data, &len), JL_OK);
    write_bytes(path, data, len - 100); /* truncated */
    expect_import_error(dir, "model.safetensors");
    unsigned char huge[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'}; /* header length overflow */
    write_bytes(path, huge, sizeof huge);
    expect_import_error(dir, "model.safetensors");
    unsigned char big[16] = {0x00, 0xe1, 0xf5, 0x05, 0, 0, 0, 0, '{', '}'}; /* 100 MB header, 16-byte file */
    write_bytes(path, big, sizeof big);
    expect_import_error(dir, "model.safetensors");
    unsigned char bad_utf8[24] = {16, 0, 0, 0, 0, 0, 0, 0, '{', '"', 0xc3, 0x28, '"', ':', '{', '}', '}', ' ', ' ', ' ',
                                  ' ', ' ', ' ', ' '};
    write_bytes(path, bad_utf8, sizeof bad_utf8);
    expect_import_error(dir, "UTF-8");
    free(data);
}

/* ---------------------------------------------------------------- llm.c */

static void test_llmc_roundtrip_and_truncation(void **s) {
    (void)s;
    jl_config c = fixture_tiny_config(JL_ARCH_GPT2, 4, 1, 0);
    c.hidden_dim = 4 * c.dim;
    jl_model *m = fixture_random_model(&c, 5);
    const char *path = tmp_path("gpt2.bin");
    assert_int_equal(jl_export_llmc(m, path), JL_OK);
    assert_true(jl_is_llmc_file(path));
    jl_checkpoint ck;
    assert_int_equal(jl_import_llmc(path, &ck), JL_OK);
    assert_same_model(m, ck.model);
    jl_checkpoint_free(&ck);
    char *data;
    size_t len;
    assert_int_equal(jl_read_file(path, &data, &len), JL_OK);
    write_bytes(path, data, len - 4);
    assert_int_equal(jl_import_llmc(path, &ck), JL_ERR_FORMAT);
    assert_non_null(strstr(jl_last_error(), "expected"));
    write_bytes(path, data, 100);
    assert_int_equal(jl_import_llmc(path, &ck), JL_ERR_FORMAT);
    ((int32_t *)data)[1] = 4; /* unknown version */
    write_bytes(path, data, len);
    assert_int_equal(jl_import_llmc(path, &ck), JL_ERR_FORMAT);
    assert_non_null(strstr(jl_last_error(), "version 4"));
    free(data);
    jl_config l = fixture_tiny_config(JL_ARCH_LLAMA, 2, 1, 0);
    jl_model *lm = fixture_random_model(&l, 1);
    assert_int_equal(jl_export_llmc(lm, path), JL_ERR_ARG);
    jl_model_free(lm);
    jl_model_free(m);
}

/* ---------------------------------------------------------------- GGUF */

static jl_checkpoint gguf_checkpoint(int qkv_bias) {
    jl_config c = fixture_tiny_config(JL_ARCH_LLAMA, 2, 0, qkv_bias);
    jl_checkpoint ck = {.model = fixture_random_model(&c, 9), .tokenizer_json = fixture_tokenizer_json()};
    return ck;
}

static void test_gguf_metadata_and_tokenizer(void **s) {
    (void)s;
    jl_checkpoint ck = gguf_checkpoint(0);
    const char *path = tmp_path("m.gguf");
    assert_int_equal(jl_export_gguf(&ck, path, JL_GGML_F32), JL_OK);
    jl_gguf *g;
    assert_int_equal(jl_gguf_open(path, &g), JL_OK);
    assert_int_equal(jl_gguf_version(g), 3);
    const char *str;
    size_t len;
    uint32_t u;
    float f;
    assert_int_equal(jl_gguf_get_str(g, "general.architecture", &str, &len), JL_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(str, "llama", 5);
    assert_int_equal(jl_gguf_get_u32(g, "llama.block_count", &u), JL_OK);
    assert_int_equal(u, 2);
    assert_int_equal(jl_gguf_get_u32(g, "llama.attention.head_count_kv", &u), JL_OK);
    assert_int_equal(u, 2);
    assert_int_equal(jl_gguf_get_u32(g, "llama.rope.dimension_count", &u), JL_OK);
    assert_int_equal(u, 16);
    assert_int_equal(jl_gguf_get_f32(g, "llama.rope.freq_base", &f), JL_OK);
    assert_true(f == 10000.0f);
    assert_int_equal(jl_gguf_get_str(g, "tokenizer.ggml.model", &str, &len), JL_OK);
    assert_memory_equal(str, "gpt2", 4);
    assert_int_equal(jl_gguf_get_str(g, "tokenizer.chat_template", &str, &len), JL_OK);
    assert_true(len > 10);
    jl_gguf_vtype et;
    uint64_t n;
    assert_int_equal(jl_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n), JL_OK);
    assert_int_equal(et, JL_GGUF_STRING);
    assert_int_equal(n, 300);
    /* byte tokens in GPT-2's unicode spelling: 'a' is itself, space is U+0120 'Ġ', newline U+010A */
    const char *t = jl_gguf_arr_str(g, "tokenizer.ggml.tokens", 'a', &len);
    assert_int_equal(len, 1);
    assert_int_equal(t[0], 'a');
    t = jl_gguf_arr_str(g, "tokenizer.ggml.tokens", ' ', &len);
    assert_int_equal(len, 2);
    assert_memory_equal(t, "\xc4\xa0", 2);
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_from_json(ck.tokenizer_json, strlen(ck.tokenizer_json), &tok), JL_OK);
    int32_t end = jl_tokenizer_special(tok, "<|end|>");
    t = jl_gguf_arr_str(g, "tokenizer.ggml.tokens", (uint64_t)end, &len);
    assert_int_equal(len, 7);
    assert_memory_equal(t, "<|end|>", 7);
    assert_int_equal(jl_gguf_arr_i32(g, "tokenizer.ggml.token_type", (uint64_t)end), 3);
    assert_int_equal(jl_gguf_arr_i32(g, "tokenizer.ggml.token_type", 'a'), 1);
    assert_int_equal(jl_gguf_arr_i32(g, "tokenizer.ggml.token_type", 299), 5); /* past the tokenizer */
    assert_int_equal(jl_gguf_get_u32(g, "tokenizer.ggml.eot_token_id", &u), JL_OK);
    assert_int_equal((int32_t)u, end);
    assert_int_equal(jl_gguf_get_arr(g, "tokenizer.ggml.merges", &et, &n), JL_OK);
    assert_int_equal(n, (uint64_t)(jl_tokenizer_vocab_size(tok) - 262));
    jl_tokenizer_free(tok);
    jl_gguf_close(g);
    jl_checkpoint_free(&ck);
}

/* A byte-level BPE pre-tokenizer llama.cpp has no tokenizer.ggml.pre name for: written as "default" (llama.cpp
 * loads the file) with a note the CLI prints as a warning; a named one and a tokenizer without merges get none. */
static void test_gguf_unnamed_pre_tokenizer_warns(void **s) {
    (void)s;
    jl_checkpoint ck = gguf_checkpoint(0);
    char note[512];
    assert_int_equal(jl_gguf_export_note(&ck, note, sizeof note), 0); /* jielong's own pattern: named */
    json_object *root = json_tokener_parse(ck.tokenizer_json), *pre = json_object_new_object(),
                *list = json_object_new_array(), *split = json_object_new_object(), *pat = json_object_new_object(),
                *bl = json_object_new_object();
    json_object_object_add(pat, "Regex", json_object_new_string("\\p{L}+| ?\\p{N}|\\s+|[^\\s\\p{L}\\p{N}]+"));
    json_object_object_add(split, "type", json_object_new_string("Split"));
    json_object_object_add(split, "pattern", pat);
    json_object_object_add(split, "behavior", json_object_new_string("Isolated"));
    json_object_object_add(split, "invert", json_object_new_boolean(0));
    json_object_object_add(bl, "type", json_object_new_string("ByteLevel"));
    json_object_object_add(bl, "add_prefix_space", json_object_new_boolean(0));
    json_object_object_add(bl, "trim_offsets", json_object_new_boolean(0));
    json_object_object_add(bl, "use_regex", json_object_new_boolean(0));
    json_object_array_add(list, split);
    json_object_array_add(list, bl);
    json_object_object_add(pre, "type", json_object_new_string("Sequence"));
    json_object_object_add(pre, "pretokenizers", list);
    json_object_object_add(root, "pre_tokenizer", pre);
    free(ck.tokenizer_json);
    ck.tokenizer_json = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
    json_object_put(root);
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_from_json(ck.tokenizer_json, strlen(ck.tokenizer_json), &tok), JL_OK);
    jl_tokenizer_free(tok);
    assert_int_equal(jl_gguf_export_note(&ck, note, sizeof note), 1);
    assert_non_null(strstr(note, "\"default\""));
    assert_non_null(strstr(note, "\\p{L}+| ?\\p{N}"));
    const char *model = tmp_path("unnamed.safetensors"), *gguf = tmp_path("unnamed.gguf"), *log = tmp_path("un.log");
    char model_buf[1024], gguf_buf[1024], log_buf[1024], args[4096];
    snprintf(model_buf, sizeof model_buf, "%s", model);
    snprintf(gguf_buf, sizeof gguf_buf, "%s", gguf);
    snprintf(log_buf, sizeof log_buf, "%s", log);
    assert_int_equal(jl_checkpoint_save(model_buf, &ck), JL_OK);
    snprintf(args, sizeof args, "export --model %s --format gguf --out %s", model_buf, gguf_buf);
    assert_int_equal(run_cli(args, log_buf), 0); /* written: llama.cpp loads it */
    char *text;
    size_t len;
    assert_int_equal(jl_read_file(log_buf, &text, &len), JL_OK);
    if (!strstr(text, "jielong export: warning: tokenizer.ggml.pre is \"default\"")) fail_msg("no warning in:\n%s", text);
    free(text);
    jl_gguf *g;
    const char *str;
    assert_int_equal(jl_gguf_open(gguf_buf, &g), JL_OK);
    assert_int_equal(jl_gguf_get_str(g, "tokenizer.ggml.pre", &str, &len), JL_OK);
    assert_int_equal(len, 7);
    assert_memory_equal(str, "default", 7);
    jl_gguf_close(g);
    jl_checkpoint_free(&ck);
    /* without merges the split cannot change an id: no note */
    jl_tokenizer *bytes;
    assert_int_equal(jl_tokenizer_bytes(&bytes), JL_OK);
    jl_checkpoint bc = {0};
    assert_int_equal(jl_tokenizer_to_json(bytes, &bc.tokenizer_json), JL_OK);
    assert_int_equal(jl_gguf_export_note(&bc, note, sizeof note), 0);
    free(bc.tokenizer_json);
    jl_tokenizer_free(bytes);
}

/* Q/K rows come back in HF order after undoing the interleave; f32 tensors are bit-exact. */
static void test_gguf_tensors_and_rope_permutation(void **s) {
    (void)s;
    jl_checkpoint ck = gguf_checkpoint(1);
    const jl_model *m = ck.model;
    const char *path = tmp_path("p.gguf");
    assert_int_equal(jl_export_gguf(&ck, path, JL_GGML_F32), JL_OK);
    jl_gguf *g;
    assert_int_equal(jl_gguf_open(path, &g), JL_OK);
    assert_int_equal(jl_gguf_tensor_count(g), m->n_tensors);
    const int hs = 16, C = 64;
    const jl_gguf_tensor *q = jl_gguf_find_tensor(g, "blk.1.attn_q.weight"), *k = jl_gguf_find_tensor(g, "blk.1.attn_k.weight");
    const jl_gguf_tensor *kb = jl_gguf_find_tensor(g, "blk.1.attn_k.bias");
    assert_non_null(q);
    assert_non_null(k);
    assert_non_null(kb);
    assert_int_equal(q->ne[0], C);
    assert_int_equal(q->ne[1], 4 * hs);
    const float *qd = q->data, *kd = k->data, *kbd = kb->data, *qkv = m->w.layers[1].qkv_w, *bias = m->w.layers[1].qkv_b;
    for (int h = 0; h < 2; h++)
        for (int i = 0; i < hs / 2; i++)
            for (int j = 0; j < 2; j++) {
                int gg = h * hs + 2 * i + j, hf = h * hs + j * hs / 2 + i;
                assert_memory_equal(qd + gg * C, qkv + hf * C, C * sizeof(float));
                assert_memory_equal(kd + gg * C, qkv + (4 * hs + hf) * C, C * sizeof(float));
                assert_true(kbd[gg] == bias[4 * hs + hf]);
            }
    const jl_gguf_tensor *v = jl_gguf_find_tensor(g, "blk.1.attn_v.weight");
    assert_memory_equal(v->data, qkv + 6 * hs * C, (size_t)2 * hs * C * sizeof(float));
    const jl_gguf_tensor *out = jl_gguf_find_tensor(g, "output.weight");
    assert_int_equal(out->ne[1], 300);
    assert_memory_equal(out->data, m->w.lm_head, (size_t)300 * C * sizeof(float));
    jl_gguf_close(g);
    jl_checkpoint_free(&ck);
}

static void test_gguf_quantised_types(void **s) {
    (void)s;
    jl_checkpoint ck = gguf_checkpoint(0);
    const jl_ggml_type types[] = {JL_GGML_F16, JL_GGML_Q8_0, JL_GGML_Q4_0};
    const double tol[] = {1e-3, 1e-2, 0.15}; /* relative RMS error of the down projection */
    for (int ti = 0; ti < 3; ti++) {
        const char *path = tmp_path("q.gguf");
        assert_int_equal(jl_export_gguf(&ck, path, types[ti]), JL_OK);
        jl_gguf *g;
        assert_int_equal(jl_gguf_open(path, &g), JL_OK);
        const jl_gguf_tensor *t = jl_gguf_find_tensor(g, "blk.0.ffn_down.weight");
        assert_int_equal(t->type, types[ti]);
        assert_int_equal(jl_gguf_find_tensor(g, "blk.0.ffn_norm.weight")->type, JL_GGML_F32);
        size_t n = (size_t)t->ne[0] * (size_t)t->ne[1];
        float *w = malloc(n * sizeof(float));
        jl_gguf_tensor_f32(t, w);
        double err = 0, ref = 0;
        for (size_t i = 0; i < n; i++) {
            double d = w[i] - ck.model->w.layers[0].down_w[i];
            err += d * d;
            ref += (double)w[i] * w[i];
        }
        assert_true(sqrt(err / ref) < tol[ti]);
        assert_true(sqrt(err / ref) > 0);
        free(w);
        jl_gguf_close(g);
    }
    jl_checkpoint_free(&ck);
}

static void test_gguf_reader_rejects_bad_files(void **s) {
    (void)s;
    jl_checkpoint ck = gguf_checkpoint(0);
    const char *path = tmp_path("b.gguf");
    assert_int_equal(jl_export_gguf(&ck, path, JL_GGML_Q8_0), JL_OK);
    char *data;
    size_t len;
    assert_int_equal(jl_read_file(path, &data, &len), JL_OK);
    jl_gguf *g;
    for (size_t cut = 10; cut < len; cut = cut * 3 + 7) { /* truncated anywhere: header, metadata, tensors, data */
        write_bytes(path, data, cut);
        assert_int_equal(jl_gguf_open(path, &g), JL_ERR_FORMAT);
    }
    char *bad = malloc(len);
    memcpy(bad, data, len);
    bad[0] = 'X';
    write_bytes(path, bad, len);
    assert_int_equal(jl_gguf_open(path, &g), JL_ERR_FORMAT);
    assert_non_null(strstr(jl_last_error(), "magic"));
    memcpy(bad, data, len);
    memset(bad + 16, 0xff, 8); /* kv count */
    write_bytes(path, bad, len);
    assert_int_equal(jl_gguf_open(path, &g), JL_ERR_FORMAT);
    memcpy(bad, data, len);
    memset(bad + 24, 0x7f, 8); /* first key's length */
    write_bytes(path, bad, len);
    assert_int_equal(jl_gguf_open(path, &g), JL_ERR_FORMAT);
    free(bad);
    free(data);
    jl_checkpoint_free(&ck);
    jl_checkpoint none = gguf_checkpoint(0);
    free(none.tokenizer_json);
    none.tokenizer_json = NULL;
    assert_int_equal(jl_export_gguf(&none, path, JL_GGML_F32), JL_ERR_ARG);
    jl_checkpoint_free(&none);
}

/* ---------------------------------------------------------------- CLI */

static void test_cli_import_export(void **s) {
    (void)s;
    jl_checkpoint ck = gguf_checkpoint(0);
    const char *ckpt = tmp_path("cli.safetensors"), *hf = tmp_path("cli_hf"), *back = tmp_path("cli_back.safetensors");
    assert_int_equal(jl_checkpoint_save(ckpt, &ck), JL_OK);
    char args[4096];
    snprintf(args, sizeof args, "export --model %s --format safetensors --out %s --quiet", ckpt, hf);
    assert_int_equal(run_cli(args, NULL), 0);
    snprintf(args, sizeof args, "import --from %s --out %s --quiet", hf, back);
    assert_int_equal(run_cli(args, NULL), 0);
    jl_checkpoint b;
    assert_int_equal(jl_checkpoint_load(back, &b), JL_OK);
    assert_same_model(ck.model, b.model);
    assert_string_equal(ck.tokenizer_json, b.tokenizer_json);
    jl_checkpoint_free(&b);
    snprintf(args, sizeof args, "export --model %s --format gguf --type q4_0 --out %s --quiet", ckpt, tmp_path("c.gguf"));
    assert_int_equal(run_cli(args, NULL), 0);
    snprintf(args, sizeof args, "export --model %s --format gguf --type q5_k --out %s", ckpt, tmp_path("c.gguf"));
    assert_int_equal(run_cli(args, NULL), 2);
    snprintf(args, sizeof args, "quantize --model %s --type q4_0 --out %s --quiet", ckpt, tmp_path("q4.gguf"));
    assert_int_equal(run_cli(args, NULL), 0);
    jl_gguf *g;
    assert_int_equal(jl_gguf_open(tmp_path("q4.gguf"), &g), JL_OK);
    assert_int_equal(jl_gguf_find_tensor(g, "blk.0.ffn_down.weight")->type, JL_GGML_Q4_0);
    jl_gguf_close(g);
    snprintf(args, sizeof args, "quantize --model %s --type f16 --out %s", ckpt, tmp_path("q4.gguf"));
    assert_int_equal(run_cli(args, NULL), 2);
    snprintf(args, sizeof args, "import --from %s/nothing --out %s", hf, back);
    assert_int_equal(run_cli(args, NULL), 2);
    snprintf(args, sizeof args, "%s/config.json", hf);
    write_text(args, "{\"model_type\": \"t5\"}");
    snprintf(args, sizeof args, "import --from %s --out %s", hf, back);
    const char *log = tmp_path("cli.log");
    assert_int_equal(run_cli(args, log), 2);
    char *text;
    size_t len;
    assert_int_equal(jl_read_file(log, &text, &len), JL_OK);
    assert_non_null(strstr(text, "model_type"));
    free(text);
    jl_checkpoint_free(&ck);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_llama_gqa_untied),
        cmocka_unit_test(test_hf_export_template_and_stops),
        cmocka_unit_test(test_roundtrip_smollm_tied),
        cmocka_unit_test(test_roundtrip_qwen2_biases),
        cmocka_unit_test(test_roundtrip_gpt2),
        cmocka_unit_test(test_qkv_bias_used_in_forward),
        cmocka_unit_test(test_import_handwritten_gpt2_folder),
        cmocka_unit_test(test_import_bad_tensors),
        cmocka_unit_test(test_import_bad_config),
        cmocka_unit_test(test_import_bad_safetensors),
        cmocka_unit_test(test_llmc_roundtrip_and_truncation),
        cmocka_unit_test(test_gguf_metadata_and_tokenizer),
        cmocka_unit_test(test_gguf_unnamed_pre_tokenizer_warns),
        cmocka_unit_test(test_gguf_tensors_and_rope_permutation),
        cmocka_unit_test(test_gguf_quantised_types),
        cmocka_unit_test(test_gguf_reader_rejects_bad_files),
        cmocka_unit_test(test_cli_import_export),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
