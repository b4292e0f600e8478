/* GGUF export: metadata + tokenizer + tensors in llama.cpp's names and layouts. */
#include "core/half.h"
#include "infer/quant.h"
#include "io/fileio.h"
#include "format/gguf_names.h"
#include "jielong/dataset.h"
#include "jielong/gguf.h"
#include "jielong/tokenizer.h"
#include "model/model.h"
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GGUF_ALIGN 32

jl_status jl_ggml_type_parse(const char *name, jl_ggml_type *out) {
    if (strcmp(name, "f32") == 0) *out = JL_GGML_F32;
    else if (strcmp(name, "f16") == 0) *out = JL_GGML_F16;
    else if (strcmp(name, "q8_0") == 0) *out = JL_GGML_Q8_0;
    else if (strcmp(name, "q4_0") == 0) *out = JL_GGML_Q4_0;
    else return jl_fail(JL_ERR_ARG, "unknown tensor type '%s' (f32, f16, q8_0, q4_0)", name);
    return JL_OK;
}

const char *jl_ggml_type_name(jl_ggml_type t) {
    switch (t) {
    case JL_GGML_F32: return "f32";
    case JL_GGML_F16: return "f16";
    case JL_GGML_Q8_0: return "q8_0";
    case JL_GGML_Q4_0: return "q4_0";
    case JL_GGML_BF16: return "bf16";
    }
    return "?";
}

static size_t ggml_row_bytes(jl_ggml_type t, int64_t cols) {
    if (t == JL_GGML_F16) return (size_t)cols * 2;
    if (t == JL_GGML_Q8_0) return jl_qtype_row_bytes(JL_QTYPE_Q8_0, cols);
    if (t == JL_GGML_Q4_0) return jl_qtype_row_bytes(JL_QTYPE_Q4_0, cols);
    return (size_t)cols * 4;
}

/* ---------------------------------------------------------------- growable byte buffer */

typedef struct {
    unsigned char *p;
    size_t n, cap;
    int oom;
} buf;

static void put(buf *b, const void *src, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(buf *b, const char *s, size_t n) {
    put_u64(b, n);
    put(b, s, n);
}

typedef struct {
    buf b;
    uint64_t n_kv;
} kv_writer;

static void kv_key(kv_writer *w, const char *key, jl_gguf_vtype t) {
    put_str(&w->b, key, strlen(key));
    put_u32(&w->b, (uint32_t)t);
    w->n_kv++;
}
static void kv_u32(kv_writer *w, const char *key, uint32_t v) { kv_key(w, key, JL_GGUF_U32); put_u32(&w->b, v); }
static void kv_f32(kv_writer *w, const char *key, float v) { kv_key(w, key, JL_GGUF_F32); put(&w->b, &v, 4); }
static void kv_bool(kv_writer *w, const char *key, int v) {
    unsigned char c = v ? 1 : 0;
    kv_key(w, key, JL_GGUF_BOOL);
    put(&w->b, &c, 1);
}
static void kv_str(kv_writer *w, const char *key, const char *s) { kv_key(w, key, JL_GGUF_STRING); put_str(&w->b, s, strlen(s)); }
static void kv_arr_head(kv_writer *w, const char *key, jl_gguf_vtype elem, uint64_t n) {
    kv_key(w, key, JL_GGUF_ARRAY);
    put_u32(&w->b, (uint32_t)elem);
    put_u64(&w->b, n);
}

/* ---------------------------------------------------------------- tokenizer */

/* GPT-2's byte → unicode code point map: printable bytes keep their value, the others go to 256, 257, ... */
static void byte_unicode_table(uint32_t cp[256]) {
    int next = 256;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        cp[b] = printable ? (uint32_t)b : (uint32_t)next++;
    }
}

static void put_utf8(buf *b, uint32_t cp) {
    unsigned char u[3];
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        put(b, u, 1);
    } else { /* the table only reaches U+0143 */
        u[0] = (unsigned char)(0xC0 | (cp >> 6));
        u[1] = (unsigned char)(0x80 | (cp & 0x3F));
        put(b, u, 2);
    }
}

/* The pre-tokenizer name llama.cpp knows for our regex. */
static const char *pre_name(const jl_tokenizer *t) {
    const char *p = jl_tokenizer_pattern(t);
    if (strcmp(p, jl_tokenizer_pattern_text(JL_PATTERN_GPT2)) == 0) return "gpt-2";
    if (strcmp(p, jl_tokenizer_pattern_text(JL_PATTERN_CL100K)) == 0) return "llama-bpe";
    if (strcmp(p, jl_tokenizer_pattern_text(JL_PATTERN_O200K)) == 0) return "gpt-4o";
    return "default";
}

static jl_status put_merges(kv_writer *w, const char *tokenizer_json) {
    json_object *root = json_tokener_parse(tokenizer_json), *model, *merges;
    if (!root || !json_object_object_get_ex(root, "model", &model) ||
        !json_object_object_get_ex(model, "merges", &merges) || !json_object_is_type(merges, json_type_array)) {
        json_object_put(root);
        return jl_fail(JL_ERR_FORMAT, "tokenizer: model.merges missing in the checkpoint's tokenizer.json");
    }
    size_t n = json_object_array_length(merges);
    kv_arr_head(w, "tokenizer.ggml.merges", JL_GGUF_STRING, n);
    jl_status st = JL_OK;
    for (size_t i = 0; i < n && st == JL_OK; i++) {
        json_object *m = json_object_array_get_idx(merges, i);
        if (json_object_is_type(m, json_type_string)) {
            put_str(&w->b, json_object_get_string(m), (size_t)json_object_get_string_len(m));
        } else if (json_object_is_type(m, json_type_array) && json_object_array_length(m) == 2) {
            const char *a = json_object_get_string(json_object_array_get_idx(m, 0));
            const char *b = json_object_get_string(json_object_array_get_idx(m, 1));
            size_t la = strlen(a), lb = strlen(b);
            put_u64(&w->b, la + 1 + lb);
            put(&w->b, a, la);
            put(&w->b, " ", 1);
            put(&w->b, b, lb);
        } else {
            st = jl_fail(JL_ERR_FORMAT, "tokenizer: model.merges[%zu] is neither \"a b\" nor [a, b]", i);
        }
    }
    json_object_put(root);
    return st;
}

static jl_status put_tokenizer(kv_writer *w, const jl_checkpoint *ck) {
    const int V = ck->model->cfg.vocab_size;
    jl_tokenizer *t;
    jl_status st = jl_tokenizer_from_json(ck->tokenizer_json, strlen(ck->tokenizer_json), &t);
    if (st != JL_OK) return jl_fail_context(st, "checkpoint tokenizer");
    if (jl_tokenizer_vocab_size(t) > V) {
        int tv = jl_tokenizer_vocab_size(t);
        jl_tokenizer_free(t);
        return jl_fail(JL_ERR_FORMAT, "tokenizer has %d tokens but the model only %d", tv, V);
    }
    uint32_t cp[256];
    byte_unicode_table(cp);
    kv_str(w, "tokenizer.ggml.model", "gpt2");
    kv_str(w, "tokenizer.ggml.pre", pre_name(t));
    kv_arr_head(w, "tokenizer.ggml.tokens", JL_GGUF_STRING, (uint64_t)V);
    for (int id = 0; id < V; id++) {
        size_t len = 0;
        const char *bytes = id < jl_tokenizer_vocab_size(t) ? jl_tokenizer_token(t, id, &len) : NULL;
        int special = 0;
        for (int k = 0; k < JL_TOKENIZER_N_SPECIAL; k++) special |= jl_tokenizer_special(t, jl_tokenizer_special_names[k]) == id;
        if (!bytes || special) { /* specials are spelled literally; ids past the tokenizer get a placeholder */
            char pad[64];
            const char *s = bytes ? bytes : pad;
            size_t n = bytes ? len : (size_t)snprintf(pad, sizeof pad, "[PAD%d]", id);
            put_str(&w->b, s, n);
            continue;
        }
        buf tok = {0};
        for (size_t i = 0; i < len; i++) put_utf8(&tok, cp[(unsigned char)bytes[i]]);
        put_str(&w->b, (const char *)tok.p, tok.n);
        w->b.oom |= tok.oom;
        free(tok.p);
    }
    kv_arr_head(w, "tokenizer.ggml.token_type", JL_GGUF_I32, (uint64_t)V);
    for (int id = 0; id < V; id++) {
        int32_t type = id < jl_tokenizer_vocab_size(t) ? 1 : 5; /* normal, unused */
        for (int k = 0; k < JL_TOKENIZER_N_SPECIAL; k++)
            if (jl_tokenizer_special(t, jl_tokenizer_special_names[k]) == id) type = 3; /* control */
        put(&w->b, &type, 4);
    }
    st = put_merges(w, ck->tokenizer_json);
    int32_t bos = jl_tokenizer_special(t, "<|bos|>"), eos = jl_tokenizer_special(t, "<|eos|>");
    int32_t end = jl_tokenizer_special(t, "<|end|>");
    if (bos >= 0) kv_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    if (eos >= 0) kv_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    if (end >= 0) kv_u32(w, "tokenizer.ggml.eot_token_id", (uint32_t)end);
    kv_bool(w, "tokenizer.ggml.add_bos_token", 0);
    kv_bool(w, "tokenizer.ggml.add_eos_token", 0);
    jl_tokenizer_free(t);
    return st;
}


/* ---------------------------------------------------------------- tensors */

typedef struct {
    char name[96];
    const jl_tensor_info *src;
    int permute_heads;  /* > 0: Q or K rows (weight or bias) of this many heads, rotate_half → interleaved */
    jl_ggml_type type;
    int64_t rows, cols; /* cols = ne[0]; 1-D tensors have rows = 1 */
    uint64_t offset;
} out_tensor;

int jl_gguf_tensor_name(const jl_config *c, const char *hf, char *out, size_t size, int *permute_heads) {
    static const char *const llama_map[][2] = {
        {"input_layernorm.weight", "attn_norm.weight"}, {"self_attn.q_proj.weight", "attn_q.weight"},
        {"self_attn.k_proj.weight", "attn_k.weight"}, {"self_attn.v_proj.weight", "attn_v.weight"},
        {"self_attn.q_proj.bias", "attn_q.bias"}, {"self_attn.k_proj.bias", "attn_k.bias"},
        {"self_attn.v_proj.bias", "attn_v.bias"}, {"self_attn.o_proj.weight", "attn_output.weight"},
        {"post_attention_layernorm.weight", "ffn_norm.weight"}, {"mlp.gate_proj.weight", "ffn_gate.weight"},
        {"mlp.up_proj.weight", "ffn_up.weight"}, {"mlp.down_proj.weight", "ffn_down.weight"}};
    static const char *const gpt2_map[][2] = {
        {"ln_1.weight", "attn_norm.weight"}, {"ln_1.bias", "attn_norm.bias"}, {"attn.c_attn.weight", "attn_qkv.weight"},
        {"attn.c_attn.bias", "attn_qkv.bias"}, {"attn.c_proj.weight", "attn_output.weight"},
        {"attn.c_proj.bias", "attn_output.bias"}, {"ln_2.weight", "ffn_norm.weight"}, {"ln_2.bias", "ffn_norm.bias"},
        {"mlp.c_fc.weight", "ffn_up.weight"}, {"mlp.c_fc.bias", "ffn_up.bias"}, {"mlp.c_proj.weight", "ffn_down.weight"},
        {"mlp.c_proj.bias", "ffn_down.bias"}};
    static const char *const top[][2] = {
        {"model.embed_tokens.weight", "token_embd.weight"}, {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"}, {"wte.weight", "token_embd.weight"}, {"wpe.weight", "position_embd.weight"},
        {"ln_f.weight", "output_norm.weight"}, {"ln_f.bias", "output_norm.bias"}};
    *permute_heads = 0;
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        if (strcmp(hf, top[i][0]) == 0) return snprintf(out, size, "%s", top[i][1]) > 0;
    int layer, used = 0;
    const int gpt2 = c->arch == JL_ARCH_GPT2;
    if (sscanf(hf, gpt2 ? "h.%d.%n" : "model.layers.%d.%n", &layer, &used) != 1 || used == 0) return 0;
    const char *rest = hf + used;
    const char *const(*map)[2] = gpt2 ? gpt2_map : llama_map;
    for (size_t i = 0; i < 12; i++)
        if (strcmp(rest, map[i][0]) == 0) {
            if (!gpt2 && strncmp(rest, "self_attn.q_proj", 16) == 0) *permute_heads = c->n_head;
            if (!gpt2 && strncmp(rest, "self_attn.k_proj", 16) == 0) *permute_heads = c->n_kv_head;
            return snprintf(out, size, "blk.%d.%s", layer, map[i][1]) > 0;
        }
    return 0;
}

/* Rows of one head reordered from HF's halves (i, i + hs/2) to GGML's adjacent pairs (2i, 2i+1). */
static void permute_rows(float *dst, const float *src, int heads, int64_t rows, int64_t cols) {
    const int64_t hs = rows / heads, half = hs / 2;
    for (int h = 0; h < heads; h++)
        for (int64_t i = 0; i < half; i++)
            for (int j = 0; j < 2; j++)
                memcpy(dst + (h * hs + 2 * i + j) * cols, src + (h * hs + j * half + i) * cols, (size_t)cols * 4);
}

static jl_status plan_tensors(const jl_model *m, jl_ggml_type type, out_tensor *ot, int *n_out) {
    int n = 0;
    uint64_t offset = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const jl_tensor_info *t = &m->tensors[i];
        out_tensor *o = &ot[n];
        memset(o, 0, sizeof *o);
        if (!jl_gguf_tensor_name(&m->cfg, t->name, o->name, sizeof o->name, &o->permute_heads))
            return jl_fail(JL_ERR_ARG, "gguf: no llama.cpp name for tensor '%s'", t->name);
        o->src = t;
        o->rows = t->ndim == 2 ? t->rows_saved : 1;
        o->cols = t->ndim == 2 ? t->shape[1] : t->shape[0];
        o->type = JL_GGML_F32;
        if (t->ndim == 2 && strcmp(t->name, "wpe.weight") != 0) { /* positions stay f32 */
            int block = type == JL_GGML_Q8_0 || type == JL_GGML_Q4_0;
            o->type = block && o->cols % JL_QK != 0 ? JL_GGML_F16 : type; /* ggml's fallback for odd widths */
        }
        o->offset = offset;
        offset += ((uint64_t)o->rows * ggml_row_bytes(o->type, o->cols) + GGUF_ALIGN - 1) / GGUF_ALIGN * GGUF_ALIGN;
        n++;
    }
    *n_out = n;
    return JL_OK;
}

/* One tensor's bytes in its GGUF type (malloc'd). */
static void *tensor_data(const jl_model *m, const out_tensor *o, size_t *nbytes) {
    const size_t n = (size_t)o->rows * (size_t)o->cols, rb = ggml_row_bytes(o->type, o->cols);
    const float *src = m->params + o->src->offset;
    float *tmp = NULL;
    if (o->permute_heads) {
        tmp = malloc(n * sizeof(float));
        if (!tmp) return NULL;
        /* a bias is a (rows, 1) column here: permute its entries the same way as weight rows */
        int64_t rows = o->src->ndim == 2 ? o->rows : o->cols, cols = o->src->ndim == 2 ? o->cols : 1;
        permute_rows(tmp, src, o->permute_heads, rows, cols);
        src = tmp;
    }
    *nbytes = (size_t)o->rows * rb;
    void *out = malloc(*nbytes + 1);
    if (out) {
        if (o->type == JL_GGML_F16) jl_f32_to_f16_array(src, out, n);
        else if (o->type == JL_GGML_F32) memcpy(out, src, n * 4);
        else jl_quantize_matrix(o->type == JL_GGML_Q8_0 ? JL_QTYPE_Q8_0 : JL_QTYPE_Q4_0, src, out, o->rows, o->cols);
    }
    free(tmp);
    return out;
}

/* ---------------------------------------------------------------- metadata */

static void put_arch(kv_writer *w, const jl_checkpoint *ck, jl_ggml_type type) {
    const jl_config *c = &ck->model->cfg;
    const char *arch = c->arch == JL_ARCH_GPT2 ? "gpt2" : "llama";
    char key[128];
#define ARCH_KEY(suffix) (snprintf(key, sizeof key, "%s.%s", arch, suffix), key)
    kv_str(w, "general.architecture", arch);
    kv_str(w, "general.name", "jielong");
    kv_u32(w, "general.alignment", GGUF_ALIGN);
    const uint32_t file_type[] = {[JL_GGML_F32] = 0, [JL_GGML_F16] = 1, [JL_GGML_Q4_0] = 2, [JL_GGML_Q8_0] = 7};
    kv_u32(w, "general.file_type", file_type[type]);
    kv_u32(w, ARCH_KEY("context_length"), (uint32_t)c->max_seq_len);
    kv_u32(w, ARCH_KEY("embedding_length"), (uint32_t)c->dim);
    kv_u32(w, ARCH_KEY("block_count"), (uint32_t)c->n_layer);
    kv_u32(w, ARCH_KEY("feed_forward_length"), (uint32_t)c->hidden_dim);
    kv_u32(w, ARCH_KEY("attention.head_count"), (uint32_t)c->n_head);
    kv_u32(w, ARCH_KEY("vocab_size"), (uint32_t)c->vocab_size);
    if (c->arch == JL_ARCH_GPT2) {
        kv_f32(w, ARCH_KEY("attention.layer_norm_epsilon"), c->norm_eps);
    } else {
        kv_u32(w, ARCH_KEY("attention.head_count_kv"), (uint32_t)c->n_kv_head);
        kv_u32(w, ARCH_KEY("rope.dimension_count"), (uint32_t)(c->dim / c->n_head));
        kv_f32(w, ARCH_KEY("attention.layer_norm_rms_epsilon"), c->norm_eps);
        kv_f32(w, ARCH_KEY("rope.freq_base"), c->rope_theta);
    }
#undef ARCH_KEY
}

static jl_status write_file(const char *path, const kv_writer *kv, const out_tensor *ot, int n, const jl_model *m) {
    buf head = {0};
    put(&head, "GGUF", 4);
    put_u32(&head, 3);
    put_u64(&head, (uint64_t)n);
    put_u64(&head, kv->n_kv);
    put(&head, kv->b.p, kv->b.n);
    for (int i = 0; i < n; i++) {
        put_str(&head, ot[i].name, strlen(ot[i].name));
        const int two = ot[i].src->ndim == 2;
        put_u32(&head, two ? 2 : 1);
        put_u64(&head, (uint64_t)ot[i].cols);
        if (two) put_u64(&head, (uint64_t)ot[i].rows);
        put_u32(&head, (uint32_t)ot[i].type);
        put_u64(&head, ot[i].offset);
    }
    static const unsigned char zeros[GGUF_ALIGN];
    put(&head, zeros, (GGUF_ALIGN - head.n % GGUF_ALIGN) % GGUF_ALIGN);
    if (head.oom) {
        free(head.p);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    jl_atomic_file af;
    jl_status st = jl_atomic_open(&af, path);
    if (st != JL_OK) {
        free(head.p);
        return st;
    }
    int ok = fwrite(head.p, 1, head.n, af.f) == head.n;
    free(head.p);
    uint64_t written = 0;
    for (int i = 0; ok && i < n; i++) {
        size_t nbytes;
        void *data = tensor_data(m, &ot[i], &nbytes);
        if (!data) {
            jl_atomic_abort(&af);
            return jl_fail(JL_ERR_NOMEM, "out of memory");
        }
        ok = written == ot[i].offset && fwrite(data, 1, nbytes, af.f) == nbytes;
        size_t pad = (GGUF_ALIGN - nbytes % GGUF_ALIGN) % GGUF_ALIGN;
        ok = ok && fwrite(zeros, 1, pad, af.f) == pad;
        written += nbytes + pad;
        free(data);
    }
    if (!ok) {
        jl_atomic_abort(&af);
        return jl_fail(JL_ERR_IO, "%s: write failed", path);
    }
    return jl_atomic_commit(&af);
}

/* What jielong needs to load the file back exactly: the config, tokenizer.json and the chat template as stored
 * in the checkpoint (llama.cpp ignores keys it does not know). */
static jl_status put_jielong_meta(kv_writer *w, const jl_checkpoint *ck) {
    char *config_json;
    jl_status st = jl_config_to_json(&ck->model->cfg, &config_json);
    if (st != JL_OK) return st;
    kv_str(w, JL_GGUF_KEY_CONFIG, config_json);
    kv_str(w, JL_GGUF_KEY_TOKENIZER, ck->tokenizer_json);
    if (ck->chat_template) kv_str(w, JL_GGUF_KEY_CHAT_TEMPLATE, ck->chat_template);
    if (ck->chat_template && ck->bos_token) kv_str(w, JL_GGUF_KEY_BOS_TOKEN, ck->bos_token);
    if (ck->chat_template && ck->eos_token) kv_str(w, JL_GGUF_KEY_EOS_TOKEN, ck->eos_token);
    free(config_json);
    return JL_OK;
}

jl_status jl_export_gguf(const jl_checkpoint *ck, const char *path, jl_ggml_type type) {
    const jl_model *m = ck->model;
    if (jl_model_require_params(m, "gguf export") != JL_OK) return JL_ERR_ARG;
    if (!ck->tokenizer_json)
        return jl_fail(JL_ERR_ARG, "gguf: the checkpoint has no tokenizer (llama.cpp needs one in the file)");
    out_tensor *ot = calloc((size_t)m->n_tensors, sizeof *ot);
    kv_writer kv = {0};
    int n = 0;
    jl_status st = ot ? plan_tensors(m, type, ot, &n) : jl_fail(JL_ERR_NOMEM, "out of memory");
    if (st == JL_OK) {
        put_arch(&kv, ck, type);
        st = put_tokenizer(&kv, ck);
        kv_str(&kv, "tokenizer.chat_template", ck->chat_template ? ck->chat_template : jl_chat_template_jinja());
        st = put_jielong_meta(&kv, ck);
    }
    if (st == JL_OK && kv.b.oom) st = jl_fail(JL_ERR_NOMEM, "out of memory");
    if (st == JL_OK) st = write_file(path, &kv, ot, n, m);
    free(kv.b.p);
    free(ot);
    return st;
}
