/* GGUF export: metadata + tokenizer + tensors in llama.cpp's names and layouts. */
#include "core/half.h"
#include "infer/quant.h"
#include "io/fileio.h"
#include "format/gguf_names.h"
#include "jielong/dataset.h"
#include "jielong/gguf.h"
#include "jielong/tokenizer.h"
#include "model/model.h"
#include <errno.h>
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

/* tokenizer.ggml.pre for a tokenizer.json's pre_tokenizer: the Split regexes before ByteLevel (or ByteLevel's own
 * regex) named as llama.cpp names them (gguf_pre.c); "default" where llama.cpp has no name for them (then *what, if
 * not NULL, says what it could not name: the first regex, or the construct). */
static const char *pre_name_what(json_object *root, const char **what) {
    static const char no_pre[] = "no pre_tokenizer", other[] = "a pre_tokenizer other than ByteLevel and Isolated Splits";
    if (what) *what = other;
    json_object *pt, *type, *norm, *list = NULL;
    const char *regex[4];
    int n = 0, nfc = json_object_object_get_ex(root, "normalizer", &norm) && norm &&
                     json_object_object_get_ex(norm, "type", &type) && !strcmp(json_object_get_string(type), "NFC");
    if (!json_object_object_get_ex(root, "pre_tokenizer", &pt) || !pt || !json_object_object_get_ex(pt, "type", &type)) {
        if (what) *what = no_pre;
        return "default";
    }
    if (!strcmp(json_object_get_string(type), "Sequence")) json_object_object_get_ex(pt, "pretokenizers", &list);
    size_t len = list ? json_object_array_length(list) : 1;
    for (size_t i = 0; i < len; i++) {
        json_object *p = list ? json_object_array_get_idx(list, i) : pt, *t, *v, *pat, *re, *inv;
        if (!json_object_object_get_ex(p, "type", &t)) return "default";
        const char *ty = json_object_get_string(t);
        if (!strcmp(ty, "ByteLevel")) {
            int use_regex = !json_object_object_get_ex(p, "use_regex", &v) || json_object_get_boolean(v);
            if (use_regex && n < 4) regex[n++] = jl_tokenizer_pattern_text(JL_PATTERN_GPT2);
            continue;
        }
        const char *behavior = json_object_object_get_ex(p, "behavior", &v) ? json_object_get_string(v) : "";
        int invert = json_object_object_get_ex(p, "invert", &inv) && json_object_get_boolean(inv);
        int isolated = (!strcmp(behavior, "Isolated") && !invert) || (!strcmp(behavior, "Removed") && invert);
        if (strcmp(ty, "Split") || !isolated || n == 4 || !json_object_object_get_ex(p, "pattern", &pat) ||
            !json_object_object_get_ex(pat, "Regex", &re))
            return "default";
        regex[n++] = json_object_get_string(re);
    }
    const char *name = jl_gguf_pre_name(regex, n, nfc);
    if (!name && what) *what = n ? regex[0] : no_pre;
    return name ? name : "default";
}

static const char *pre_name(json_object *root) { return pre_name_what(root, NULL); }

static int has_merges(json_object *root) {
    json_object *model, *merges;
    return json_object_object_get_ex(root, "model", &model) && json_object_object_get_ex(model, "merges", &merges) &&
           json_object_is_type(merges, json_type_array) && json_object_array_length(merges) > 0;
}

static jl_status put_merges(kv_writer *w, json_object *root) {
    json_object *model, *merges;
    if (!json_object_object_get_ex(root, "model", &model) || !json_object_object_get_ex(model, "merges", &merges) ||
        !json_object_is_type(merges, json_type_array))
        return jl_fail(JL_ERR_FORMAT, "tokenizer: model.merges missing in the checkpoint's tokenizer.json");
    size_t n = json_object_array_length(merges);
    kv_arr_head(w, "tokenizer.ggml.merges", JL_GGUF_STRING, n);
    for (size_t i = 0; i < n; i++) {
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
            return jl_fail(JL_ERR_FORMAT, "tokenizer: model.merges[%zu] is neither \"a b\" nor [a, b]", i);
        }
    }
    return JL_OK;
}

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

/* Per id: normal, control (jielong's special tokens and the tokenizer.json's special added tokens: matched in text
 * only when specials are parsed), user-defined (its other added tokens: always matched), unused past the
 * tokenizer. types has V entries. */
static void token_types(const jl_tokenizer *t, json_object *root, int V, int32_t *types) {
    const int tv = jl_tokenizer_vocab_size(t);
    for (int id = 0; id < V; id++) types[id] = id < tv ? TT_NORMAL : TT_UNUSED;
    json_object *added, *a, *v;
    if (json_object_object_get_ex(root, "added_tokens", &added) && json_object_is_type(added, json_type_array))
        for (size_t i = 0; i < json_object_array_length(added); i++) {
            a = json_object_array_get_idx(added, i);
            int id = json_object_object_get_ex(a, "id", &v) ? json_object_get_int(v) : -1;
            int special = json_object_object_get_ex(a, "special", &v) && json_object_get_boolean(v);
            if (id >= 0 && id < tv) types[id] = special ? TT_CONTROL : TT_USER;
        }
    for (int k = 0; k < JL_TOKENIZER_N_SPECIAL; k++) {
        int32_t id = jl_tokenizer_special(t, jl_tokenizer_special_names[k]);
        if (id >= 0 && id < V) types[id] = TT_CONTROL;
    }
}

/* Id of the token spelled `name` (the chat template's eos_token), -1 if none. */
static int32_t token_id(const jl_tokenizer *t, const char *name) {
    size_t n = name ? strlen(name) : 0, len;
    for (int32_t id = 0; n && id < jl_tokenizer_vocab_size(t); id++) {
        const char *s = jl_tokenizer_token(t, id, &len);
        if (len == n && !memcmp(s, name, n)) return id;
    }
    return -1;
}

/* tokenizer.ggml.model "gpt2": byte-level tokens in GPT-2's unicode spelling, merges, the pre-tokenizer's name. */
static jl_status put_bpe_vocab(kv_writer *w, const jl_tokenizer *t, json_object *root, int V, const int32_t *types) {
    uint32_t cp[256];
    byte_unicode_table(cp);
    kv_str(w, "tokenizer.ggml.model", "gpt2");
    kv_str(w, "tokenizer.ggml.pre", pre_name(root));
    kv_arr_head(w, "tokenizer.ggml.tokens", JL_GGUF_STRING, (uint64_t)V);
    for (int id = 0; id < V; id++) {
        size_t len = 0;
        const char *bytes = id < jl_tokenizer_vocab_size(t) ? jl_tokenizer_token(t, id, &len) : NULL;
        if (!bytes || types[id] != TT_NORMAL) { /* added tokens are spelled literally; ids past the tokenizer get a placeholder */
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
    put(&w->b, types, sizeof *types * (size_t)V);
    return put_merges(w, root);
}

/* A SentencePiece-style vocabulary ("▁" for spaces, <0xXX> byte fallback: Llama 2, Gemma): a BPE model with
 * byte_fallback. */
static int is_spm(json_object *root) {
    json_object *model, *v;
    return json_object_object_get_ex(root, "model", &model) && json_object_object_get_ex(model, "byte_fallback", &v) &&
           json_object_get_boolean(v);
}

/* Whether the normalizer (or one of a Sequence's) prepends "▁": SentencePiece's add_dummy_prefix. */
static int prepends_space(json_object *norm) {
    json_object *type, *list, *v;
    if (!norm || !json_object_object_get_ex(norm, "type", &type)) return 0;
    if (!strcmp(json_object_get_string(type), "Prepend"))
        return json_object_object_get_ex(norm, "prepend", &v) && !strcmp(json_object_get_string(v), "\xE2\x96\x81");
    if (strcmp(json_object_get_string(type), "Sequence") || !json_object_object_get_ex(norm, "normalizers", &list)) return 0;
    for (size_t i = 0; i < json_object_array_length(list); i++)
        if (prepends_space(json_object_array_get_idx(list, i))) return 1;
    return 0;
}

/* tokenizer.ggml.model "llama" (SentencePiece): tokens as the vocabulary spells them, <0xXX> typed byte, the unk
 * token typed unknown, and scores that make llama.cpp merge in the order of the merges: llama.cpp merges the
 * adjacent pair whose concatenation scores highest, so the token that merge k makes first scores -k; a token no
 * merge makes scores below all of them (it is reached last, if at all). */
static jl_status put_spm_vocab(kv_writer *w, const jl_tokenizer *t, json_object *root, int V, int32_t *types) {
    json_object *model, *vocab, *merges, *unk, *norm = NULL;
    if (!json_object_object_get_ex(root, "model", &model) || !json_object_object_get_ex(model, "vocab", &vocab) ||
        !json_object_object_get_ex(model, "merges", &merges) || !json_object_is_type(merges, json_type_array))
        return jl_fail(JL_ERR_FORMAT, "tokenizer: model.vocab / model.merges missing in the checkpoint's tokenizer.json");
    const char **spell = calloc((size_t)V, sizeof *spell);
    float *score = malloc(sizeof *score * (size_t)V);
    if (!spell || !score) {
        free(spell);
        free(score);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    for (int id = 0; id < V; id++) score[id] = -1e9f;
    json_object_object_foreach(vocab, key, val) {
        int id = json_object_get_int(val);
        if (id >= 0 && id < V) spell[id] = key;
    }
    const char *unk_name = json_object_object_get_ex(model, "unk_token", &unk) && unk ? json_object_get_string(unk) : NULL;
    size_t nm = json_object_array_length(merges);
    char pair[1024];
    for (size_t k = 0; k < nm; k++) {
        json_object *m = json_object_array_get_idx(merges, k), *id;
        if (json_object_is_type(m, json_type_array) && json_object_array_length(m) == 2)
            snprintf(pair, sizeof pair, "%s%s", json_object_get_string(json_object_array_get_idx(m, 0)),
                     json_object_get_string(json_object_array_get_idx(m, 1)));
        else if (json_object_is_type(m, json_type_string)) { /* "a b": the pair joined */
            const char *s = json_object_get_string(m), *sp = strchr(s, ' ');
            snprintf(pair, sizeof pair, "%.*s%s", sp ? (int)(sp - s) : 0, s, sp ? sp + 1 : "");
        } else continue;
        if (json_object_object_get_ex(vocab, pair, &id) && json_object_get_int(id) >= 0 && json_object_get_int(id) < V &&
            score[json_object_get_int(id)] == -1e9f)
            score[json_object_get_int(id)] = -(float)k;
    }
    kv_str(w, "tokenizer.ggml.model", "llama");
    kv_arr_head(w, "tokenizer.ggml.tokens", JL_GGUF_STRING, (uint64_t)V);
    int unk_id = -1;
    for (int id = 0; id < V; id++) {
        size_t len = 0;
        const char *s = spell[id];
        char pad[64];
        if (s) len = strlen(s);
        else if (id < jl_tokenizer_vocab_size(t)) s = jl_tokenizer_token(t, id, &len); /* added, e.g. <|bos|> */
        else len = (size_t)snprintf(pad, sizeof pad, "[PAD%d]", id), s = pad;
        put_str(&w->b, s, len);
        unsigned hex;
        char end;
        if (types[id] == TT_NORMAL && len == 6 && sscanf(s, "<0x%2X%c", &hex, &end) == 2 && end == '>') types[id] = TT_BYTE;
        if (types[id] != TT_UNUSED && unk_name && unk_id < 0 && len == strlen(unk_name) && !memcmp(s, unk_name, len)) {
            types[id] = TT_UNKNOWN;
            unk_id = id;
        }
        if (types[id] != TT_NORMAL) score[id] = 0;
    }
    kv_arr_head(w, "tokenizer.ggml.scores", JL_GGUF_F32, (uint64_t)V);
    put(&w->b, score, sizeof *score * (size_t)V);
    kv_arr_head(w, "tokenizer.ggml.token_type", JL_GGUF_I32, (uint64_t)V);
    put(&w->b, types, sizeof *types * (size_t)V);
    json_object_object_get_ex(root, "normalizer", &norm);
    kv_bool(w, "tokenizer.ggml.add_space_prefix", prepends_space(norm));
    if (unk_id >= 0) kv_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)unk_id);
    free(spell);
    free(score);
    return JL_OK;
}

static jl_status put_tokenizer(kv_writer *w, const jl_checkpoint *ck) {
    const int V = ck->model->cfg.vocab_size;
    jl_tokenizer *t;
    jl_status st = jl_tokenizer_from_json(ck->tokenizer_json, strlen(ck->tokenizer_json), &t);
    if (st != JL_OK) return jl_fail_context(st, "checkpoint tokenizer");
    json_object *root = json_tokener_parse(ck->tokenizer_json);
    int32_t *types = malloc(sizeof *types * (size_t)V);
    if (jl_tokenizer_vocab_size(t) > V)
        st = jl_fail(JL_ERR_FORMAT, "tokenizer has %d tokens but the model only %d", jl_tokenizer_vocab_size(t), V);
    else if (!root || !types)
        st = jl_fail(root ? JL_ERR_NOMEM : JL_ERR_FORMAT, root ? "out of memory" : "checkpoint tokenizer: not JSON");
    if (st != JL_OK) {
        json_object_put(root);
        free(types);
        jl_tokenizer_free(t);
        return st;
    }
    token_types(t, root, V, types);
    st = is_spm(root) ? put_spm_vocab(w, t, root, V, types) : put_bpe_vocab(w, t, root, V, types);
    /* the end of a turn: the chat template's eos_token where the checkpoint has one, else jielong's <|end|> */
    int32_t bos = jl_tokenizer_bos(t), eos = jl_tokenizer_eos(t);
    int32_t end = ck->chat_template && ck->eos_token ? token_id(t, ck->eos_token) : jl_tokenizer_special(t, "<|end|>");
    const int32_t *prefix, *suffix;
    size_t n_prefix, n_suffix;
    jl_tokenizer_template(t, &prefix, &n_prefix, &suffix, &n_suffix);
    if (bos >= 0) kv_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    if (eos >= 0) kv_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    if (end >= 0) kv_u32(w, "tokenizer.ggml.eot_token_id", (uint32_t)end);
    /* the post-processor's BOS rule (Llama's <|begin_of_text|>); jielong's own tokenizers have none */
    kv_bool(w, "tokenizer.ggml.add_bos_token", n_prefix == 1 && prefix[0] == bos);
    kv_bool(w, "tokenizer.ggml.add_eos_token", n_suffix == 1 && suffix[0] == eos);
    json_object_put(root);
    free(types);
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
    int err = ok ? 0 : errno; /* of the failed write */
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
        if (!ok && !err) err = errno ? errno : EIO;
        written += nbytes + pad;
        free(data);
    }
    if (!ok) return jl_atomic_fail(&af, err);
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

int jl_gguf_export_note(const jl_checkpoint *ck, char *note, size_t size) {
    json_object *root = ck->tokenizer_json ? json_tokener_parse(ck->tokenizer_json) : NULL;
    const char *what = NULL;
    /* without merges every split gives the same ids (one token per byte); SentencePiece-style files carry no
     * pre-tokenizer name */
    int unnamed = root && !is_spm(root) && has_merges(root) && strcmp(pre_name_what(root, &what), "default") == 0;
    if (unnamed)
        snprintf(note, size, "tokenizer.ggml.pre is \"default\": llama.cpp has no name for this tokenizer's "
                 "pre-tokenizer (%.60s%s), so llama.cpp splits text with its default regex and may give other ids "
                 "than jielong on some text; compare `jielong tokenizer encode` with llama.cpp's llama-tokenize",
                 what, strlen(what) > 60 ? "…" : "");
    json_object_put(root);
    return unnamed;
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
        if (st == JL_OK) st = put_jielong_meta(&kv, ck);
    }
    if (st == JL_OK && kv.b.oom) st = jl_fail(JL_ERR_NOMEM, "out of memory");
    if (st == JL_OK) st = write_file(path, &kv, ot, n, m);
    free(kv.b.p);
    free(ot);
    return st;
}
