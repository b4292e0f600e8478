/* GGUF files as llama.cpp's tools write them — no jielong.* keys — load: the config from the architecture's keys
 * (llama with GGML's Q/K row order, qwen2 with HF's order and q/k/v biases), the tokenizer from tokenizer.ggml.*
 * (gpt2 = byte-level BPE, llama = SentencePiece from tokens + scores + types), f32, bf16, q8_0 and q4_0 tensors; another tensor
 * type is an error naming it. The files are written here by a small GGUF writer of the test's own, from the
 * tensors and keys of a GGUF that jl_export_gguf wrote (llama.cpp's names and layout), minus jielong's keys.
 * Through the CLI, generate / chat / eval / serve / import give on such a file (llama f32, f16, q8_0; qwen2; gpt2
 * bf16) what they give on jielong's own, and a q4_K tensor is a one-line error naming the type from each of them.
 * Both files, ours and the rewritten one, are also read by @huggingface/gguf 0.4.6 (npm, build/npm-gguf from
 * scripts/fetch_gguf_js.sh, run by scripts/gguf_ref.mjs): its metadata and tensor infos equal what was written. */
#include "testutil.h"
#include "fixtures.h"
#include "core/rng.h"
#include "io/fileio.h"
#include "format/gguf_foreign.h"
#include "jielong/generate.h"
#include "jielong/gguf.h"
#include "jielong/tokenizer.h"
#include "model/model.h"
#include "tokenizer/synth.h"
#include <json-c/json.h>
#include <math.h>
#include <signal.h>
#include <sys/wait.h>

/* ---- a minimal GGUF v3 writer ---- */
typedef struct {
    FILE *f;
} gw;

static void w_u32(gw *w, uint32_t v) { fwrite(&v, 4, 1, w->f); }
static void w_u64(gw *w, uint64_t v) { fwrite(&v, 8, 1, w->f); }
static void w_str(gw *w, const char *s, size_t n) {
    w_u64(w, n);
    fwrite(s, 1, n, w->f);
}

typedef struct {
    const char *arch_from, *arch_to; /* rename "<from>.*" keys and general.architecture */
    int bf16;                         /* 2-D f32 tensors become bf16 */
    int bad_type;                     /* > 0: the first 2-D tensor gets this type number */
    int to_hf_order;                  /* undo the Q/K permutation (qwen2 files keep HF's order) */
    int keep_blocks;                  /* q8_0 / q4_0 / f16 tensors are copied as they are (llama-quantize's output) */
    int n_head, n_kv_head;
} rewrite_opts;

static void copy_kv(gw *w, const jl_gguf *g, int i, const rewrite_opts *o) {
    const char *key = jl_gguf_kv_key(g, i);
    char name[256];
    size_t fl = o->arch_from ? strlen(o->arch_from) : 0;
    if (fl && !strncmp(key, o->arch_from, fl) && key[fl] == '.') snprintf(name, sizeof name, "%s%s", o->arch_to, key + fl);
    else snprintf(name, sizeof name, "%s", key);
    jl_gguf_vtype t = jl_gguf_kv_type(g, i);
    w_str(w, name, strlen(name));
    w_u32(w, (uint32_t)t);
    uint32_t u;
    float f;
    int b;
    const char *s;
    size_t len;
    jl_gguf_vtype elem;
    uint64_t n;
    switch (t) {
    case JL_GGUF_U32: jl_gguf_get_u32(g, key, &u); w_u32(w, u); break;
    case JL_GGUF_F32: jl_gguf_get_f32(g, key, &f); fwrite(&f, 4, 1, w->f); break;
    case JL_GGUF_BOOL: jl_gguf_get_bool(g, key, &b); fputc(b, w->f); break;
    case JL_GGUF_STRING:
        jl_gguf_get_str(g, key, &s, &len);
        if (!strcmp(key, "general.architecture") && o->arch_to) w_str(w, o->arch_to, strlen(o->arch_to));
        else w_str(w, s, len);
        break;
    case JL_GGUF_ARRAY:
        jl_gguf_get_arr(g, key, &elem, &n);
        w_u32(w, (uint32_t)elem);
        w_u64(w, n);
        for (uint64_t k = 0; k < n; k++) {
            if (elem == JL_GGUF_STRING) {
                s = jl_gguf_arr_str(g, key, k, &len);
                w_str(w, s, len);
            } else if (elem == JL_GGUF_I32) {
                int32_t v = jl_gguf_arr_i32(g, key, k);
                fwrite(&v, 4, 1, w->f);
            } else fail_msg("array %s of type %d", key, elem);
        }
        break;
    default: fail_msg("key %s of type %d", key, t);
    }
}

static int is_jielong_key(const char *k) { return !strncmp(k, "jielong.", 8); }

/* Rows of GGML's interleaved pairs back to HF's halves, per head of hs rows. */
static void to_hf_rows(float *dst, const float *src, int heads, int64_t rows, int64_t cols) {
    const int64_t hs = rows / heads;
    for (int64_t r = 0; r < rows; r++) {
        int64_t h = r / hs, k = r % hs, ours = h * hs + (k % 2) * (hs / 2) + k / 2;
        memcpy(dst + ours * cols, src + r * cols, (size_t)cols * sizeof *dst);
    }
}

static void rewrite(const char *src_path, const char *dst_path, const rewrite_opts *o) {
    jl_gguf *g;
    assert_int_equal(jl_gguf_open(src_path, &g), JL_OK);
    gw w = {fopen(dst_path, "wb")};
    assert_non_null(w.f);
    int n_kv = 0, nt = jl_gguf_tensor_count(g);
    for (int i = 0; i < jl_gguf_kv_count(g); i++) n_kv += !is_jielong_key(jl_gguf_kv_key(g, i));
    fwrite("GGUF", 1, 4, w.f);
    w_u32(&w, 3);
    w_u64(&w, (uint64_t)nt);
    w_u64(&w, (uint64_t)n_kv);
    for (int i = 0; i < jl_gguf_kv_count(g); i++)
        if (!is_jielong_key(jl_gguf_kv_key(g, i))) copy_kv(&w, g, i, o);
    /* tensor data: f32 (converted from whatever the source holds), or bf16 */
    float **data = calloc((size_t)nt, sizeof *data);
    size_t *bytes = calloc((size_t)nt, sizeof *bytes);
    uint32_t *types = calloc((size_t)nt, sizeof *types);
    const void **raw = calloc((size_t)nt, sizeof *raw);
    uint64_t off = 0;
    int bad_done = 0;
    for (int i = 0; i < nt; i++) {
        const jl_gguf_tensor *t = jl_gguf_tensor_at(g, i);
        size_t n = (size_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
        if (o->keep_blocks && (t->type == JL_GGML_Q8_0 || t->type == JL_GGML_Q4_0 || t->type == JL_GGML_F16)) {
            assert_false(o->to_hf_order);
            raw[i] = t->data;
            types[i] = t->type;
            bytes[i] = t->nbytes;
            goto header;
        }
        data[i] = malloc(n * sizeof(float));
        jl_gguf_tensor_f32(t, data[i]);
        int q = strstr(t->name, "attn_q.") != NULL, k = strstr(t->name, "attn_k.") != NULL;
        if (o->to_hf_order && (q || k)) {
            float *tmp = malloc(n * sizeof(float));
            int rows = t->n_dims == 2 ? (int)t->ne[1] : (int)t->ne[0];
            to_hf_rows(tmp, data[i], q ? o->n_head : o->n_kv_head, rows, t->n_dims == 2 ? t->ne[0] : 1);
            free(data[i]);
            data[i] = tmp;
        }
        types[i] = JL_GGML_F32;
        bytes[i] = n * 4;
        if (o->bf16 && t->n_dims == 2) {
            types[i] = JL_GGML_BF16;
            bytes[i] = n * 2;
        }
        if (o->bad_type && t->n_dims == 2 && !bad_done) {
            types[i] = (uint32_t)o->bad_type;
            bad_done = 1;
        }
    header:
        w_str(&w, t->name, strlen(t->name));
        w_u32(&w, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) w_u64(&w, (uint64_t)t->ne[d]);
        w_u32(&w, types[i]);
        w_u64(&w, off);
        off += (bytes[i] + 31) / 32 * 32;
    }
    while (ftell(w.f) % 32) fputc(0, w.f);
    for (int i = 0; i < nt; i++) {
        size_t n = bytes[i] / (types[i] == JL_GGML_BF16 ? 2 : 4);
        if (raw[i])
            fwrite(raw[i], 1, bytes[i], w.f);
        else if (types[i] == JL_GGML_BF16)
            for (size_t j = 0; j < n; j++) {
                uint32_t u;
                memcpy(&u, &data[i][j], 4);
                uint16_t h = (uint16_t)(u >> 16);
                fwrite(&h, 2, 1, w.f);
            }
        else fwrite(data[i], 4, n, w.f);
        for (size_t p = bytes[i]; p % 32; p++) fputc(0, w.f);
        free(data[i]);
    }
    free(data);
    free(bytes);
    free(types);
    free(raw);
    fclose(w.f);
    jl_gguf_close(g);
}

/* ---- models ---- */
static jl_model *random_model(jl_arch arch, int qkv_bias, uint64_t seed) {
    const int gpt2 = arch == JL_ARCH_GPT2;
    jl_config c = fixture_tiny_config(arch, gpt2 ? 4 : 2, gpt2, qkv_bias);
    return fixture_random_model(&c, seed);
}

static void same_encoding(const char *json_a, const char *json_b, const char *text) {
    jl_tokenizer *a, *b;
    assert_int_equal(jl_tokenizer_from_json(json_a, strlen(json_a), &a), JL_OK);
    if (jl_tokenizer_from_json(json_b, strlen(json_b), &b) != JL_OK) fail_msg("%s", jl_last_error());
    int32_t *ia, *ib;
    size_t na, nb;
    assert_int_equal(jl_tokenizer_encode(a, text, strlen(text), 1, &ia, &na), JL_OK);
    assert_int_equal(jl_tokenizer_encode(b, text, strlen(text), 1, &ib, &nb), JL_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(ia, ib, na * sizeof *ia);
    free(ia);
    free(ib);
    jl_tokenizer_free(a);
    jl_tokenizer_free(b);
}

/* Exports a model, rewrites the file as llama.cpp would have it, loads it back. */

/* @huggingface/gguf 0.4.6 reads a file in 2 MB chunks and its readString slices the buffer it has: a string that
 * runs past the chunk read so far comes back cut (ArrayBuffer.slice clamps, no RangeError to fetch more). Set
 * while a file has such a string (a 1.7 MB tokenizer.json): its reading may then be a prefix of ours. */
static int hf_gguf_cuts_long_strings;

/* One metadata value of g (key) against the package's reading of it. */
static void same_value(const jl_gguf *g, const char *key, json_object *v) {
    jl_gguf_vtype t = jl_gguf_kv_type(g, jl_gguf_find(g, key));
    uint32_t u;
    float f;
    int b;
    const char *str;
    size_t len;
    int ok = 1;
    switch (t) {
    case JL_GGUF_U32: jl_gguf_get_u32(g, key, &u); ok = json_object_get_int64(v) == (int64_t)u; break;
    case JL_GGUF_F32: jl_gguf_get_f32(g, key, &f); ok = json_object_get_double(v) == (double)f; break;
    case JL_GGUF_BOOL: jl_gguf_get_bool(g, key, &b); ok = json_object_get_boolean(v) == (b != 0); break;
    case JL_GGUF_STRING:
        jl_gguf_get_str(g, key, &str, &len);
        ok = json_object_is_type(v, json_type_string) && (size_t)json_object_get_string_len(v) == len &&
             !memcmp(json_object_get_string(v), str, len);
        if (!ok && hf_gguf_cuts_long_strings && len > (1u << 20) && json_object_is_type(v, json_type_string) &&
            (size_t)json_object_get_string_len(v) < len && json_object_get_string_len(v) > (1 << 19) &&
            !memcmp(json_object_get_string(v), str, (size_t)json_object_get_string_len(v)))
            ok = 1;
        break;
    case JL_GGUF_ARRAY: {
        jl_gguf_vtype elem;
        uint64_t n;
        jl_gguf_get_arr(g, key, &elem, &n);
        ok = json_object_is_type(v, json_type_array) && json_object_array_length(v) == n;
        for (uint64_t k = 0; ok && k < n; k++) {
            json_object *x = json_object_array_get_idx(v, k);
            if (elem == JL_GGUF_STRING) {
                str = jl_gguf_arr_str(g, key, k, &len);
                if (len >= 3 && !memcmp(str, "\xEF\xBB\xBF", 3)) { /* its TextDecoder drops a leading U+FEFF (a BOM) */
                    str += 3;
                    len -= 3;
                }
                ok = (size_t)json_object_get_string_len(x) == len && !memcmp(json_object_get_string(x), str, len);
            } else if (elem == JL_GGUF_I32) ok = json_object_get_int64(x) == jl_gguf_arr_i32(g, key, k);
            else if (elem == JL_GGUF_F32) ok = json_object_get_double(x) == (double)jl_gguf_arr_f32(g, key, k);
            else fail_msg("%s: array of type %d not compared", key, (int)elem);
        }
        break;
    }
    default: fail_msg("%s: type %d not compared", key, (int)t);
    }
    if (!ok) fail_msg("%s: @huggingface/gguf reads %.80s", key, json_object_to_json_string(v));
}

/* The file as @huggingface/gguf reads it equals what jl_gguf reads: version, every key and value, every tensor's
 * name, shape, type and offset (relative to the first tensor's). */
static void same_as_hf_gguf(const char *path) {
    char out[512], cmd[2048];
    snprintf(out, sizeof out, "%s", tmp_path("hf_gguf.json"));
    snprintf(cmd, sizeof cmd, "node '%s' '%s' '%s' '%s'", root_path("scripts/gguf_ref.mjs"),
             root_path("build/npm-gguf/node_modules/@huggingface/gguf/dist/index.mjs"), path, out);
    if (system(cmd) != 0) fail_msg("@huggingface/gguf failed on %s (node, scripts/fetch_gguf_js.sh?)", path);
    json_object *root = json_object_from_file(out), *kv, *tensors, *x;
    assert_non_null(root);
    assert_true(json_object_object_get_ex(root, "kv", &kv) && json_object_object_get_ex(root, "tensors", &tensors));
    jl_gguf *g;
    assert_int_equal(jl_gguf_open(path, &g), JL_OK);
    assert_true(json_object_object_get_ex(kv, "version", &x) && json_object_get_int64(x) == jl_gguf_version(g));
    assert_true(json_object_object_get_ex(kv, "kv_count", &x) && json_object_get_int64(x) == jl_gguf_kv_count(g));
    assert_true(json_object_object_get_ex(kv, "tensor_count", &x) &&
                json_object_get_int64(x) == jl_gguf_tensor_count(g));
    assert_int_equal(json_object_object_length(kv), jl_gguf_kv_count(g) + 3);
    for (int i = 0; i < jl_gguf_kv_count(g); i++) {
        const char *key = jl_gguf_kv_key(g, i);
        if (!json_object_object_get_ex(kv, key, &x)) fail_msg("%s: missing in @huggingface/gguf's reading", key);
        same_value(g, key, x);
    }
    assert_int_equal(json_object_array_length(tensors), jl_gguf_tensor_count(g));
    const char *base = jl_gguf_tensor_at(g, 0)->data;
    int64_t base_off = json_object_get_int64(json_object_object_get(json_object_array_get_idx(tensors, 0), "offset"));
    for (int i = 0; i < jl_gguf_tensor_count(g); i++) {
        const jl_gguf_tensor *t = jl_gguf_tensor_at(g, i);
        json_object *ti = json_object_array_get_idx(tensors, i), *shape = json_object_object_get(ti, "shape");
        assert_string_equal(json_object_get_string(json_object_object_get(ti, "name")), t->name);
        assert_int_equal(json_object_get_int(json_object_object_get(ti, "dtype")), (int)t->type);
        assert_int_equal(json_object_array_length(shape), t->n_dims);
        for (int d = 0; d < t->n_dims; d++)
            assert_int_equal(json_object_get_int64(json_object_array_get_idx(shape, d)), t->ne[d]);
        assert_int_equal(json_object_get_int64(json_object_object_get(ti, "offset")) - base_off,
                         (const char *)t->data - base);
    }
    jl_gguf_close(g);
    json_object_put(root);
}

static void round_trip(jl_arch arch, int qkv_bias, const rewrite_opts *o, float tol) {
    jl_checkpoint ck = {.model = random_model(arch, qkv_bias, 5), .tokenizer_json = fixture_tokenizer_json()};
    const char *ours = tmp_path("ours.gguf");
    char foreign[512];
    snprintf(foreign, sizeof foreign, "%s", tmp_path("foreign.gguf"));
    assert_int_equal(jl_export_gguf(&ck, ours, JL_GGML_F32), JL_OK);
    rewrite(ours, foreign, o);
    same_as_hf_gguf(ours);
    same_as_hf_gguf(foreign);
    jl_checkpoint back;
    jl_qweights *qw;
    if (jl_gguf_load_model(foreign, 1, &back, &qw) != JL_OK) fail_msg("%s", jl_last_error());
    assert_null(qw);
    if (!jl_config_equal(&ck.model->cfg, &back.model->cfg)) {
        char *a, *b;
        jl_config_to_json(&ck.model->cfg, &a);
        jl_config_to_json(&back.model->cfg, &b);
        fail_msg("config %s, file gives %s", a, b);
    }
    for (size_t j = 0; j < ck.model->n_params; j++)
        if (fabsf(ck.model->params[j] - back.model->params[j]) > tol * (fabsf(ck.model->params[j]) + 1e-3f))
            fail_msg("parameter %zu: %g, file gives %g", j, ck.model->params[j], back.model->params[j]);
    assert_non_null(back.tokenizer_json);
    same_encoding(ck.tokenizer_json, back.tokenizer_json, "the cat sat on the log.\n 床前明月光 12345 <|end|>");
    assert_non_null(back.chat_template); /* tokenizer.chat_template, the model's own */
    jl_checkpoint_free(&back);
    jl_checkpoint_free(&ck);
}

static void test_llama_file(void **s) {
    (void)s;
    rewrite_opts o = {0};
    round_trip(JL_ARCH_LLAMA, 0, &o, 0);
}

static void test_qwen2_file(void **s) {
    (void)s;
    rewrite_opts o = {.arch_from = "llama", .arch_to = "qwen2", .to_hf_order = 1, .n_head = 4, .n_kv_head = 2};
    round_trip(JL_ARCH_LLAMA, 1, &o, 0);
}

static void test_gpt2_bf16_file(void **s) {
    (void)s;
    rewrite_opts o = {.bf16 = 1};
    round_trip(JL_ARCH_GPT2, 0, &o, 1.0f / 128);
}

/* q8_0 and q4_0 files as llama-quantize writes them (blocks, no jielong keys) load to the same blocks as the file
 * jielong wrote: the dequantised weights are equal bit for bit, and the linears stay blocks for inference. */
static void test_quantised_files(void **s) {
    (void)s;
    const jl_ggml_type types[] = {JL_GGML_Q8_0, JL_GGML_Q4_0};
    for (int k = 0; k < 2; k++) {
        jl_checkpoint ck = {.model = random_model(JL_ARCH_LLAMA, 0, 5), .tokenizer_json = fixture_tokenizer_json()};
        char ours[512], foreign[512];
        snprintf(ours, sizeof ours, "%s", tmp_path("ours_q.gguf"));
        snprintf(foreign, sizeof foreign, "%s", tmp_path("foreign_q.gguf"));
        assert_int_equal(jl_export_gguf(&ck, ours, types[k]), JL_OK);
        rewrite_opts o = {.keep_blocks = 1};
        rewrite(ours, foreign, &o);
        jl_checkpoint a, b;
        jl_qweights *qa, *qb;
        if (jl_gguf_load_model(ours, 1, &a, &qa) != JL_OK) fail_msg("%s", jl_last_error());
        if (jl_gguf_load_model(foreign, 1, &b, &qb) != JL_OK) fail_msg("%s: %s", jl_ggml_type_name(types[k]), jl_last_error());
        assert_non_null(qb); /* the linears as blocks */
        assert_true(jl_config_equal(&a.model->cfg, &b.model->cfg));
        assert_int_equal(a.model->n_params, b.model->n_params);
        assert_memory_equal(a.model->params, b.model->params, a.model->n_params * sizeof(float));
        same_encoding(a.tokenizer_json, b.tokenizer_json, "the cat sat on the log.\n 床前明月光 12345 <|end|>");
        print_message("%s file without jielong keys: the same %zu dequantised weights as jielong's own\n",
                      jl_ggml_type_name(types[k]), b.model->n_params);
        jl_qweights_free(qa);
        jl_qweights_free(qb);
        jl_checkpoint_free(&a);
        jl_checkpoint_free(&b);
        jl_checkpoint_free(&ck);
    }
}

static void test_other_types_are_named(void **s) {
    (void)s;
    jl_checkpoint ck = {.model = random_model(JL_ARCH_LLAMA, 0, 5), .tokenizer_json = fixture_tokenizer_json()};
    char foreign[512];
    assert_int_equal(jl_export_gguf(&ck, tmp_path("ours.gguf"), JL_GGML_F32), JL_OK);
    snprintf(foreign, sizeof foreign, "%s", tmp_path("q4k.gguf"));
    rewrite_opts o = {.bad_type = 12};
    rewrite(tmp_path("ours.gguf"), foreign, &o);
    jl_checkpoint back;
    jl_qweights *qw;
    assert_int_equal(jl_gguf_load_model(foreign, 0, &back, &qw), JL_ERR_FORMAT);
    if (!strstr(jl_last_error(), "q4_K")) fail_msg("'%s' does not name q4_K", jl_last_error());
    jl_checkpoint_free(&ck);
}

/* A SentencePiece (tokenizer.ggml.model "llama") tokenizer as llama.cpp's converter lays it out for Llama 2 —
 * tokens, scores (here: the rank of the merge that makes each token, negated), token types — encodes like Llama
 * 2's own tokenizer.json. */
static void test_sentencepiece_tokenizer(void **s) {
    (void)s;
    char tj[1024];
    snprintf(tj, sizeof tj, "%s", root_path("build/vocab/hf/llama2/tokenizer.json"));
    json_object *root = json_object_from_file(tj), *model, *vocab, *merges, *added;
    if (!root) fail_msg("%s is missing: run scripts/fetch_vocab.sh — not skipping", tj);
    assert_true(json_object_object_get_ex(root, "model", &model));
    assert_true(json_object_object_get_ex(model, "vocab", &vocab));
    assert_true(json_object_object_get_ex(model, "merges", &merges));
    assert_true(json_object_object_get_ex(root, "added_tokens", &added));
    int n = json_object_object_length(vocab);
    const char **tok = calloc((size_t)n, sizeof *tok);
    float *score = calloc((size_t)n, sizeof *score);
    int32_t *type = calloc((size_t)n, sizeof *type);
    json_object_object_foreach(vocab, key, val) {
        int id = json_object_get_int(val);
        tok[id] = key;
        type[id] = strlen(key) == 6 && !strncmp(key, "<0x", 3) ? 6 : 1;
        score[id] = -1e9f;
    }
    for (size_t m = 0; m < json_object_array_length(merges); m++) { /* "a b" → the token ab gets -rank */
        const char *ms = json_object_get_string(json_object_array_get_idx(merges, m)), *sp = strchr(ms, ' ');
        char buf[256];
        snprintf(buf, sizeof buf, "%.*s%s", (int)(sp - ms), ms, sp + 1);
        json_object *id;
        if (json_object_object_get_ex(vocab, buf, &id) && score[json_object_get_int(id)] < -1e8f)
            score[json_object_get_int(id)] = -(float)m;
    }
    for (size_t k = 0; k < json_object_array_length(added); k++) {
        json_object *a = json_object_array_get_idx(added, k), *id;
        json_object_object_get_ex(a, "id", &id);
        type[json_object_get_int(id)] = json_object_get_int(id) == 0 ? 2 : 3;
    }
    gw w = {fopen(tmp_path("spm.gguf"), "wb")};
    fwrite("GGUF", 1, 4, w.f);
    w_u32(&w, 3);
    w_u64(&w, 0);
    w_u64(&w, 6);
    w_str(&w, "general.architecture", 20); w_u32(&w, JL_GGUF_STRING); w_str(&w, "llama", 5);
    w_str(&w, "tokenizer.ggml.model", 20); w_u32(&w, JL_GGUF_STRING); w_str(&w, "llama", 5);
    w_str(&w, "tokenizer.ggml.tokens", 21); w_u32(&w, JL_GGUF_ARRAY); w_u32(&w, JL_GGUF_STRING); w_u64(&w, (uint64_t)n);
    for (int i = 0; i < n; i++) w_str(&w, tok[i], strlen(tok[i]));
    w_str(&w, "tokenizer.ggml.scores", 21); w_u32(&w, JL_GGUF_ARRAY); w_u32(&w, JL_GGUF_F32); w_u64(&w, (uint64_t)n);
    fwrite(score, 4, (size_t)n, w.f);
    w_str(&w, "tokenizer.ggml.token_type", 25); w_u32(&w, JL_GGUF_ARRAY); w_u32(&w, JL_GGUF_I32); w_u64(&w, (uint64_t)n);
    fwrite(type, 4, (size_t)n, w.f);
    w_str(&w, "tokenizer.ggml.bos_token_id", 27); w_u32(&w, JL_GGUF_U32); w_u32(&w, 1);
    while (ftell(w.f) % 32) fputc(0, w.f);
    fclose(w.f);
    jl_gguf *g;
    assert_int_equal(jl_gguf_open(tmp_path("spm.gguf"), &g), JL_OK);
    char *json;
    if (jl_gguf_foreign_tokenizer(g, "spm.gguf", &json) != JL_OK) fail_msg("%s", jl_last_error());
    jl_gguf_close(g);
    char *text, *orig;
    size_t len, olen;
    assert_int_equal(jl_read_file(tj, &orig, &olen), JL_OK);
    assert_int_equal(jl_synth_mixed(9, 60000, 0, &text, &len), JL_OK);
    same_encoding(orig, json, text);
    jl_tokenizer *t;
    assert_int_equal(jl_tokenizer_from_json(json, strlen(json), &t), JL_OK);
    const int32_t *pre, *post;
    size_t np, nq;
    jl_tokenizer_template(t, &pre, &np, &post, &nq);
    assert_int_equal(np, 1);
    assert_int_equal(pre[0], 1); /* <s> before the text, as llama.cpp adds it */
    jl_tokenizer_free(t);
    free(text);
    free(orig);
    free(json);
    free(tok);
    free(score);
    free(type);
    json_object_put(root);
}

/* Our export of a model with Llama 2's tokenizer.json (a SentencePiece-style vocabulary): tokenizer.ggml.model
 * llama with tokens, scores and types (what llama.cpp runs: tests/test_gguf_llamacpp.c); @huggingface/gguf reads
 * the file as jl_gguf does, and the tokenizer read back from tokenizer.ggml.* alone (as for a file of llama.cpp's)
 * encodes mixed text as the original. */
static void test_sentencepiece_export(void **s) {
    (void)s;
    char *orig, *json, *text;
    size_t olen, len;
    if (jl_read_file(root_path("build/vocab/hf/llama2/tokenizer.json"), &orig, &olen) != JL_OK)
        fail_msg("build/vocab/hf/llama2/tokenizer.json is missing: run scripts/fetch_vocab.sh — not skipping");
    jl_tokenizer *t;
    assert_int_equal(jl_tokenizer_from_json(orig, olen, &t), JL_OK);
    jl_config c = fixture_tiny_config(JL_ARCH_LLAMA, 2, 1, 0);
    jl_config_from_depth(&c, JL_ARCH_LLAMA, 1, jl_tokenizer_vocab_size(t), 32);
    c.dim = 32;
    c.n_head = c.n_kv_head = 2;
    c.hidden_dim = 64;
    c.tie_embeddings = 1;
    assert_int_equal(jl_config_finish(&c), JL_OK);
    jl_tokenizer_free(t);
    jl_checkpoint ck = {.model = fixture_random_model(&c, 3), .tokenizer_json = orig};
    const char *path = tmp_path("spm_export.gguf");
    assert_int_equal(jl_export_gguf(&ck, path, JL_GGML_F32), JL_OK);
    hf_gguf_cuts_long_strings = 1; /* jielong.tokenizer: Llama 2's tokenizer.json */
    same_as_hf_gguf(path);
    hf_gguf_cuts_long_strings = 0;
    jl_gguf *g;
    assert_int_equal(jl_gguf_open(path, &g), JL_OK);
    const char *model;
    assert_int_equal(jl_gguf_get_str(g, "tokenizer.ggml.model", &model, &len), JL_OK);
    assert_true(len == 5 && !memcmp(model, "llama", 5));
    if (jl_gguf_foreign_tokenizer(g, path, &json) != JL_OK) fail_msg("%s", jl_last_error());
    jl_gguf_close(g);
    assert_int_equal(jl_synth_mixed(11, 40000, 0, &text, &len), JL_OK);
    same_encoding(orig, json, text);
    free(text);
    free(json);
    jl_checkpoint_free(&ck);
}

/* ---- every command through the CLI on a file without jielong keys ---- */

/* `jielong ARGS` (with "%s" for the model, given twice where needed) → its stdout+stderr, malloc'd; fails on a
 * non-zero exit. */
static char *cli_output(const char *args, const char *what) {
    char log[600];
    snprintf(log, sizeof log, "%s", tmp_path("cli.out"));
    int rc = run_cli(args, log);
    char *out;
    size_t len;
    assert_int_equal(jl_read_file(log, &out, &len), JL_OK);
    if (rc != 0) fail_msg("%s: jielong %s: exit %d: %s", what, args, rc, out);
    return out;
}

/* The outputs of generate (ids and text), chat (two turns on stdin, a system prompt), eval (perplexity), serve
 * (one /v1/chat/completions) and, for a GGUF, import (then generate on the imported checkpoint) for one model. */
typedef struct {
    char *ids, *text, *chat, *ppl, *served, *imported;
} cli_outputs;

static char *perplexity_of(char *eval_out) {
    const char *p = strstr(eval_out, "perplexity");
    if (!p) fail_msg("eval printed no perplexity: %s", eval_out);
    char *v = strndup(p, strcspn(p, ",\n"));
    free(eval_out);
    return v;
}

static char *served_answer(const char *model) {
    pid_t pid;
    int port = start_serve_cli(model, "--threads 1", 60, &pid);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "curl -s --max-time 60 http://127.0.0.1:%d/v1/chat/completions -d '{\"messages\":"
             "[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"the cat\"}],"
             "\"temperature\":0,\"max_tokens\":10}' > '%s'", port, tmp_path("served.json"));
    int rc = system(cmd);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    assert_int_equal(rc, 0);
    json_object *r = json_object_from_file(tmp_path("served.json")), *choices, *msg, *content;
    if (!r || !json_object_object_get_ex(r, "choices", &choices) ||
        !json_object_object_get_ex(json_object_array_get_idx(choices, 0), "message", &msg) ||
        !json_object_object_get_ex(msg, "content", &content))
        fail_msg("serve answered %s", r ? json_object_to_json_string(r) : "(not JSON)");
    char *answer = strdup(json_object_get_string(content));
    json_object_put(r);
    return answer;
}

static void run_commands(const char *model, const char *what, cli_outputs *o) {
    char args[4096], imported[600];
    FILE *f = fopen(tmp_path("prompt.txt"), "w");
    assert_non_null(f);
    fputs("the cat sat on the log. 床前明月光", f);
    fclose(f);
    f = fopen(tmp_path("turns.jsonl"), "w");
    assert_non_null(f);
    fputs("{\"content\":\"the cat\"}\n{\"content\":\"床前明月光\"}\n", f);
    fclose(f);
    f = fopen(tmp_path("heldout.txt"), "w");
    assert_non_null(f);
    for (int i = 0; i < 20; i++) fprintf(f, "the cat sat on the log %d times. 床前明月光，疑是地上霜。\n", i);
    fclose(f);
    snprintf(args, sizeof args, "generate --model '%s' --prompt - --ids --temperature 0 --max-tokens 12 --threads 1 < '%s'",
             model, tmp_path("prompt.txt"));
    o->ids = cli_output(args, what);
    snprintf(args, sizeof args, "generate --model '%s' --prompt - --temperature 0 --max-tokens 12 --threads 1 < '%s'",
             model, tmp_path("prompt.txt"));
    o->text = cli_output(args, what);
    snprintf(args, sizeof args, "chat --model '%s' --jsonl --system 'be brief' --temperature 0 --max-tokens 10 "
             "--threads 1 < '%s'", model, tmp_path("turns.jsonl"));
    o->chat = cli_output(args, what);
    snprintf(args, sizeof args, "eval --model '%s' --data '%s'", model, tmp_path("heldout.txt"));
    o->ppl = perplexity_of(cli_output(args, what));
    o->served = served_answer(model);
    o->imported = NULL;
    if (!strstr(model, ".gguf")) return; /* a checkpoint needs no import */
    snprintf(imported, sizeof imported, "%s", tmp_path("imported.safetensors"));
    snprintf(args, sizeof args, "import --from '%s' --out '%s' --quiet", model, imported);
    free(cli_output(args, what));
    snprintf(args, sizeof args, "generate --model '%s' --prompt - --ids --temperature 0 --max-tokens 12 --threads 1 < '%s'",
             imported, tmp_path("prompt.txt"));
    o->imported = cli_output(args, what);
}

static void cli_outputs_free(cli_outputs *o) {
    free(o->ids);
    free(o->text);
    free(o->chat);
    free(o->ppl);
    free(o->served);
    free(o->imported);
}

static void same_output(const char *type, const char *cmd, const char *ours, const char *foreign) {
    if (strcmp(ours, foreign)) fail_msg("%s %s: jielong's own file gives\n%s\nthe file without jielong keys\n%s", type, cmd,
                                        ours, foreign);
}

/* One file of the CLI test: the model, the type jielong exports it as, and how the file is rewritten. */
typedef struct {
    const char *name;
    jl_arch arch;
    int qkv_bias, bf16_weights; /* bf16_weights: 2-D weights rounded to bf16 first, so a bf16 file holds them exactly */
    jl_ggml_type type;
    rewrite_opts o;
} cli_case;

static const cli_case CLI_CASES[] = {
    {"llama f32", JL_ARCH_LLAMA, 0, 0, JL_GGML_F32, {.keep_blocks = 1}},
    {"llama f16", JL_ARCH_LLAMA, 0, 0, JL_GGML_F16, {.keep_blocks = 1}},
    {"llama q8_0", JL_ARCH_LLAMA, 0, 0, JL_GGML_Q8_0, {.keep_blocks = 1}},
    {"qwen2 f32", JL_ARCH_LLAMA, 1, 0, JL_GGML_F32,
     {.arch_from = "llama", .arch_to = "qwen2", .to_hf_order = 1, .n_head = 4, .n_kv_head = 2}},
    {"gpt2 bf16", JL_ARCH_GPT2, 0, 1, JL_GGML_F32, {.bf16 = 1}},
};

static void round_to_bf16(jl_model *m) {
    for (int i = 0; i < m->n_tensors; i++) {
        const jl_tensor_info *t = &m->tensors[i];
        if (t->ndim != 2) continue;
        float *p = m->params + t->offset;
        for (size_t j = 0; j < (size_t)t->rows_saved * (size_t)t->shape[1]; j++) {
            uint32_t u;
            memcpy(&u, &p[j], 4);
            u &= 0xFFFF0000u; /* the test's writer truncates */
            memcpy(&p[j], &u, 4);
        }
    }
}

/* A model exported by jielong and the same file rewritten as llama.cpp's tools write it (no jielong.* keys: config
 * from llama.* / qwen2.* / gpt2.*, tokenizer from tokenizer.ggml.*, chat format from tokenizer.chat_template):
 * llama f32, f16 and q8_0 files, a qwen2 one (q/k/v biases, HF's Q/K order) and a gpt2 one with bf16 weights.
 * generate's greedy ids and text, chat's answers, eval's perplexity, serve's answer and the imported checkpoint's
 * generation are the same for both, through the CLI; the f32 files (and the bf16 one, of rounded weights) give
 * what the safetensors checkpoint gives too. */
static void test_cli_commands(void **s) {
    (void)s;
    const char *dir = getenv("JL_TMP") ? getenv("JL_TMP") : "/tmp";
    for (size_t k = 0; k < sizeof CLI_CASES / sizeof CLI_CASES[0]; k++) {
        const cli_case *cc = &CLI_CASES[k];
        jl_checkpoint ck = {.model = random_model(cc->arch, cc->qkv_bias, 5), .tokenizer_json = fixture_tokenizer_json()};
        if (cc->bf16_weights) round_to_bf16(ck.model);
        char st[600], ours[600], foreign[600];
        snprintf(st, sizeof st, "%s/cli_own_%zu.safetensors", dir, k);
        snprintf(ours, sizeof ours, "%s/cli_ours_%zu.gguf", dir, k);
        snprintf(foreign, sizeof foreign, "%s/cli_foreign_%zu.gguf", dir, k);
        assert_int_equal(jl_checkpoint_save(st, &ck), JL_OK);
        assert_int_equal(jl_export_gguf(&ck, ours, cc->type), JL_OK);
        rewrite(ours, foreign, &cc->o);
        cli_outputs a, b;
        run_commands(ours, "jielong's own GGUF", &a);
        run_commands(foreign, "GGUF without jielong keys", &b);
        same_output(cc->name, "generate --ids", a.ids, b.ids);
        same_output(cc->name, "generate", a.text, b.text);
        same_output(cc->name, "chat", a.chat, b.chat);
        same_output(cc->name, "eval", a.ppl, b.ppl);
        same_output(cc->name, "serve", a.served, b.served);
        same_output(cc->name, "import + generate --ids", a.imported, b.imported);
        if (cc->type == JL_GGML_F32) {
            cli_outputs c;
            run_commands(st, "safetensors", &c);
            same_output(cc->name, "generate --ids (safetensors)", c.ids, b.ids);
            same_output(cc->name, "chat (safetensors)", c.chat, b.chat);
            same_output(cc->name, "eval (safetensors)", c.ppl, b.ppl);
            same_output(cc->name, "serve (safetensors)", c.served, b.served);
            cli_outputs_free(&c);
        }
        const char *gen = strchr(b.ids, '\n') ? strchr(b.ids, '\n') + 1 : b.ids;
        print_message("%s: generate, chat, eval (%s), serve, import agree; greedy ids %.*s\n", cc->name, b.ppl,
                      (int)strcspn(gen, "\n"), gen);
        cli_outputs_free(&a);
        cli_outputs_free(&b);
        jl_checkpoint_free(&ck);
    }
}

/* A tensor type jielong does not read (q4_K) is a one-line error naming it from every command, exit non-zero. */
static void test_cli_names_other_types(void **s) {
    (void)s;
    jl_checkpoint ck = {.model = random_model(JL_ARCH_LLAMA, 0, 5), .tokenizer_json = fixture_tokenizer_json()};
    char foreign[600], args[2048], log[600];
    assert_int_equal(jl_export_gguf(&ck, tmp_path("ours_k.gguf"), JL_GGML_F32), JL_OK);
    snprintf(foreign, sizeof foreign, "%s", tmp_path("q4k_cli.gguf"));
    snprintf(log, sizeof log, "%s", tmp_path("q4k.log"));
    rewrite_opts o = {.bad_type = 12};
    rewrite(tmp_path("ours_k.gguf"), foreign, &o);
    static const char *const cmds[] = {"generate --model '%s' --prompt hi", "chat --model '%s' --jsonl < /dev/null",
                                       "eval --model '%s' --data /dev/null", "serve --model '%s' --port 0",
                                       "import --from '%s' --out /dev/null/x.safetensors"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        snprintf(args, sizeof args, cmds[i], foreign);
        int rc = run_cli(args, log);
        char *out;
        size_t len;
        assert_int_equal(jl_read_file(log, &out, &len), JL_OK);
        if (rc == 0 || !strstr(out, "q4_K") || strchr(out, '\n') != out + len - 1)
            fail_msg("jielong %s: exit %d, wanted one line naming q4_K: %s", args, rc, out);
        print_message("%.*s: %s", (int)strcspn(cmds[i], " "), cmds[i], out);
        free(out);
    }
    jl_checkpoint_free(&ck);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_file), cmocka_unit_test(test_qwen2_file), cmocka_unit_test(test_gpt2_bf16_file),
        cmocka_unit_test(test_quantised_files),
        cmocka_unit_test(test_other_types_are_named), cmocka_unit_test(test_sentencepiece_tokenizer),
        cmocka_unit_test(test_sentencepiece_export), cmocka_unit_test(test_cli_commands),
        cmocka_unit_test(test_cli_names_other_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
