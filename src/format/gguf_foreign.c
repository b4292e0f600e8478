/* GGUF files written by llama.cpp's tools: config from the architecture keys, tokenizer.json from tokenizer.ggml.*
 * (see gguf_foreign.h). */
#include "format/gguf_foreign.h"
#include "format/gguf_names.h"
#include "jielong/tokenizer.h"
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- config */
static jl_status arch_u32(const jl_gguf *g, const char *path, const char *arch, const char *suffix, int required,
                          uint32_t dflt, int *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    uint32_t v = dflt;
    if (jl_gguf_find(g, key) >= 0) {
        if (jl_gguf_get_u32(g, key, &v) != JL_OK) return jl_fail(JL_ERR_FORMAT, "%s: %s is not a u32", path, key);
    } else if (required) {
        return jl_fail(JL_ERR_FORMAT, "%s: no %s (needed without jielong.config)", path, key);
    }
    if (v > (1u << 30)) return jl_fail(JL_ERR_FORMAT, "%s: %s = %u is out of range", path, key, v);
    *out = (int)v;
    return JL_OK;
}

static jl_status arch_f32(const jl_gguf *g, const char *path, const char *arch, const char *suffix, float dflt,
                          float *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    *out = dflt;
    if (jl_gguf_find(g, key) >= 0 && jl_gguf_get_f32(g, key, out) != JL_OK)
        return jl_fail(JL_ERR_FORMAT, "%s: %s is not an f32", path, key);
    return JL_OK;
}

jl_status jl_gguf_foreign_config(const jl_gguf *g, const char *path, jl_config *cfg, int *unpermute) {
    const char *s;
    size_t len;
    if (jl_gguf_get_str(g, "general.architecture", &s, &len) != JL_OK)
        return jl_fail(JL_ERR_FORMAT, "%s: no general.architecture string", path);
    char arch[32];
    snprintf(arch, sizeof arch, "%.*s", (int)(len < 31 ? len : 31), s);
    const int gpt2 = !strcmp(arch, "gpt2"), qwen2 = !strcmp(arch, "qwen2");
    if (!gpt2 && !qwen2 && strcmp(arch, "llama"))
        return jl_fail(JL_ERR_FORMAT, "%s: general.architecture '%s' is not supported (llama, qwen2, gpt2)", path, arch);
    memset(cfg, 0, sizeof *cfg);
    cfg->arch = gpt2 ? JL_ARCH_GPT2 : JL_ARCH_LLAMA;
    *unpermute = !gpt2 && !qwen2;
    jl_status st = arch_u32(g, path, arch, "context_length", 1, 0, &cfg->max_seq_len);
    if (st == JL_OK) st = arch_u32(g, path, arch, "embedding_length", 1, 0, &cfg->dim);
    if (st == JL_OK) st = arch_u32(g, path, arch, "block_count", 1, 0, &cfg->n_layer);
    if (st == JL_OK) st = arch_u32(g, path, arch, "feed_forward_length", 1, 0, &cfg->hidden_dim);
    if (st == JL_OK) st = arch_u32(g, path, arch, "attention.head_count", 1, 0, &cfg->n_head);
    if (st == JL_OK) st = arch_u32(g, path, arch, "attention.head_count_kv", 0, (uint32_t)cfg->n_head, &cfg->n_kv_head);
    if (st == JL_OK && gpt2) st = arch_f32(g, path, arch, "attention.layer_norm_epsilon", 1e-5f, &cfg->norm_eps);
    if (st == JL_OK && !gpt2) st = arch_f32(g, path, arch, "attention.layer_norm_rms_epsilon", 1e-5f, &cfg->norm_eps);
    cfg->rope_theta = 10000.0f; /* unused by gpt2 */
    if (st == JL_OK && !gpt2) st = arch_f32(g, path, arch, "rope.freq_base", 10000.0f, &cfg->rope_theta);
    int rope_dim = 0;
    if (st == JL_OK && !gpt2) st = arch_u32(g, path, arch, "rope.dimension_count", 0, 0, &rope_dim);
    if (st != JL_OK) return st;
    if (rope_dim && cfg->n_head && rope_dim != cfg->dim / cfg->n_head)
        return jl_fail(JL_ERR_FORMAT, "%s: %s.rope.dimension_count %d: only RoPE over the whole head (%d) is supported",
                       path, arch, rope_dim, cfg->dim / cfg->n_head);
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    const char *scaling = NULL;
    size_t sl = 0;
    if (jl_gguf_find(g, key) >= 0 && jl_gguf_get_str(g, key, &scaling, &sl) == JL_OK && sl && strncmp(scaling, "none", sl))
        return jl_fail(JL_ERR_FORMAT, "%s: %s '%.*s' is not supported", path, key, (int)sl, scaling);
    if (jl_gguf_find_tensor(g, "rope_freqs.weight")) /* Llama 3.1's frequency factors: not implemented */
        return jl_fail(JL_ERR_FORMAT, "%s: tensor 'rope_freqs.weight' (RoPE frequency scaling) is not supported", path);
    const jl_gguf_tensor *embd = jl_gguf_find_tensor(g, "token_embd.weight");
    if (!embd || embd->n_dims != 2) return jl_fail(JL_ERR_FORMAT, "%s: tensor 'token_embd.weight' missing", path);
    jl_gguf_vtype elem;
    uint64_t n_tokens = 0;
    if (jl_gguf_find(g, "tokenizer.ggml.tokens") < 0 || jl_gguf_get_arr(g, "tokenizer.ggml.tokens", &elem, &n_tokens) != JL_OK)
        n_tokens = (uint64_t)embd->ne[1];
    if (n_tokens == 0 || n_tokens > (uint64_t)embd->ne[1])
        return jl_fail(JL_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %llu tokens, token_embd.weight %lld rows", path,
                       (unsigned long long)n_tokens, (long long)embd->ne[1]);
    cfg->vocab_size = (int)n_tokens;
    cfg->tie_embeddings = gpt2 || !jl_gguf_find_tensor(g, "output.weight");
    cfg->qkv_bias = !gpt2 && jl_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL;
    st = jl_config_finish(cfg);
    if (st != JL_OK) return jl_fail_context(st, "%s: config from the %s.* keys", path, arch);
    if (cfg->padded_vocab != embd->ne[1] && cfg->vocab_size != embd->ne[1])
        return jl_fail(JL_ERR_FORMAT, "%s: token_embd.weight has %lld rows for %d tokens", path, (long long)embd->ne[1],
                       cfg->vocab_size);
    return JL_OK;
}

/* ---------------------------------------------------------------- tokenizer */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

static json_object *jstr(const char *s, size_t n) { return json_object_new_string_len(s, (int)n); }

static json_object *obj_type(const char *type) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string(type));
    return o;
}

static json_object *added_token(int id, const char *s, size_t n, int special) {
    json_object *a = json_object_new_object();
    json_object_object_add(a, "id", json_object_new_int(id));
    json_object_object_add(a, "content", jstr(s, n));
    json_object_object_add(a, "single_word", json_object_new_boolean(0));
    json_object_object_add(a, "lstrip", json_object_new_boolean(0));
    json_object_object_add(a, "rstrip", json_object_new_boolean(0));
    json_object_object_add(a, "normalized", json_object_new_boolean(0));
    json_object_object_add(a, "special", json_object_new_boolean(special));
    return a;
}

static json_object *split_regex(const char *regex) {
    json_object *split = obj_type("Split"), *pat = json_object_new_object();
    json_object_object_add(pat, "Regex", json_object_new_string(regex));
    json_object_object_add(split, "pattern", pat);
    json_object_object_add(split, "behavior", json_object_new_string("Isolated"));
    json_object_object_add(split, "invert", json_object_new_boolean(0));
    return split;
}

static json_object *byte_level(int use_regex) {
    json_object *o = obj_type("ByteLevel");
    json_object_object_add(o, "add_prefix_space", json_object_new_boolean(0));
    json_object_object_add(o, "trim_offsets", json_object_new_boolean(0));
    json_object_object_add(o, "use_regex", json_object_new_boolean(use_regex));
    return o;
}

static int get_bool_or(const jl_gguf *g, const char *key, int dflt) {
    int v = dflt;
    if (jl_gguf_find(g, key) >= 0 && jl_gguf_get_bool(g, key, &v) != JL_OK) v = dflt;
    return v;
}

/* TemplateProcessing that puts the BOS token before one text when the file asks for it. */
static json_object *bos_template(const jl_gguf *g, int n_tokens, int dflt_add_bos) {
    uint32_t bos;
    if (!get_bool_or(g, "tokenizer.ggml.add_bos_token", dflt_add_bos) ||
        jl_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &bos) != JL_OK || (int)bos >= n_tokens)
        return NULL;
    size_t len;
    const char *s = jl_gguf_arr_str(g, "tokenizer.ggml.tokens", bos, &len);
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(len < 255 ? len : 255), s);
    json_object *tp = obj_type("TemplateProcessing"), *single = json_object_new_array();
    json_object *st = json_object_new_object(), *stv = json_object_new_object();
    json_object_object_add(stv, "id", json_object_new_string(name));
    json_object_object_add(stv, "type_id", json_object_new_int(0));
    json_object_object_add(st, "SpecialToken", stv);
    json_object_array_add(single, st);
    json_object *seq = json_object_new_object(), *seqv = json_object_new_object();
    json_object_object_add(seqv, "id", json_object_new_string("A"));
    json_object_object_add(seqv, "type_id", json_object_new_int(0));
    json_object_object_add(seq, "Sequence", seqv);
    json_object_array_add(single, seq);
    json_object_object_add(tp, "single", single);
    json_object *specials = json_object_new_object(), *entry = json_object_new_object(), *ids = json_object_new_array();
    json_object_array_add(ids, json_object_new_int((int)bos));
    json_object_object_add(entry, "id", json_object_new_string(name));
    json_object_object_add(entry, "ids", ids);
    json_object_object_add(specials, name, entry);
    json_object_object_add(tp, "special_tokens", specials);
    return tp;
}

/* tokens (+ types) → model.vocab and added_tokens (control ones special, user-defined ones not). Unused tokens at
 * the end (the rows that pad the embedding, "[PAD<id>]") stay out of the vocabulary: decoded they give nothing,
 * as in llama.cpp and as ids past the vocabulary of jielong's own tokenizer do. */
static jl_status vocab_and_added(const jl_gguf *g, const char *path, uint64_t n, json_object *vocab, json_object *added,
                                 int *unk) {
    *unk = -1;
    jl_gguf_vtype elem;
    uint64_t nt = 0;
    int have_types = jl_gguf_find(g, "tokenizer.ggml.token_type") >= 0 &&
                     jl_gguf_get_arr(g, "tokenizer.ggml.token_type", &elem, &nt) == JL_OK && elem == JL_GGUF_I32 && nt == n;
    while (have_types && n > 1 && jl_gguf_arr_i32(g, "tokenizer.ggml.token_type", n - 1) == TT_UNUSED) n--;
    for (uint64_t i = 0; i < n; i++) {
        size_t len;
        const char *s = jl_gguf_arr_str(g, "tokenizer.ggml.tokens", i, &len);
        if (!s) return jl_fail(JL_ERR_FORMAT, "%s: tokenizer.ggml.tokens[%llu] is not a string", path, (unsigned long long)i);
        char *key = strndup(s, len);
        if (!key) return jl_fail(JL_ERR_NOMEM, "out of memory");
        if (strlen(key) != len) { /* a NUL inside: json-c keys are C strings */
            free(key);
            return jl_fail(JL_ERR_FORMAT, "%s: tokenizer.ggml.tokens[%llu] holds a NUL byte", path, (unsigned long long)i);
        }
        int type = have_types ? jl_gguf_arr_i32(g, "tokenizer.ggml.token_type", i) : TT_NORMAL;
        json_object_object_add(vocab, key, json_object_new_int((int)i));
        if (type == TT_CONTROL || type == TT_USER) json_object_array_add(added, added_token((int)i, s, len, type == TT_CONTROL));
        if (type == TT_UNKNOWN && *unk < 0) *unk = (int)i;
        free(key);
    }
    return JL_OK;
}

static jl_status bpe_tokenizer(const jl_gguf *g, const char *path, uint64_t n, json_object *root, json_object *model) {
    const char *pre = "";
    size_t pre_len = 0;
    if (jl_gguf_find(g, "tokenizer.ggml.pre") >= 0) jl_gguf_get_str(g, "tokenizer.ggml.pre", &pre, &pre_len);
    const char *regex[4];
    int nfc = 0, n_regex = pre_len ? jl_gguf_pre_regexes(pre, pre_len, regex, 4, &nfc) : 0;
    if (n_regex < 0)
        return jl_fail(JL_ERR_FORMAT, "%s: tokenizer.ggml.pre '%.*s' is not supported (llama-bpe, qwen2, gpt-4o, "
                       "deepseek-v3, gpt-2)", path, (int)(pre_len > 64 ? 64 : pre_len), pre);
    /* gpt-2 / default / none: ByteLevel's own regex */
    const int bl_regex = n_regex == 0 || !strcmp(regex[0], jl_tokenizer_pattern_text(JL_PATTERN_GPT2));
    json_object *vocab = json_object_new_object(), *added = json_object_new_array(), *merges = json_object_new_array();
    json_object_object_add(model, "vocab", vocab);
    json_object_object_add(model, "merges", merges);
    json_object_object_add(root, "added_tokens", added);
    int unk;
    jl_status st = vocab_and_added(g, path, n, vocab, added, &unk);
    jl_gguf_vtype elem;
    uint64_t nm = 0;
    if (st == JL_OK && (jl_gguf_find(g, "tokenizer.ggml.merges") < 0 ||
                        jl_gguf_get_arr(g, "tokenizer.ggml.merges", &elem, &nm) != JL_OK || elem != JL_GGUF_STRING))
        st = jl_fail(JL_ERR_FORMAT, "%s: tokenizer.ggml.merges: missing (a BPE tokenizer needs them)", path);
    for (uint64_t i = 0; st == JL_OK && i < nm; i++) {
        size_t len;
        const char *s = jl_gguf_arr_str(g, "tokenizer.ggml.merges", i, &len);
        json_object_array_add(merges, jstr(s, len));
    }
    json_object *pt;
    if (bl_regex) {
        pt = byte_level(1);
    } else {
        pt = obj_type("Sequence");
        json_object *list = json_object_new_array();
        for (int i = 0; i < n_regex; i++) json_object_array_add(list, split_regex(regex[i]));
        json_object_array_add(list, byte_level(0));
        json_object_object_add(pt, "pretokenizers", list);
    }
    json_object_object_add(root, "pre_tokenizer", pt);
    json_object_object_add(root, "normalizer", nfc ? obj_type("NFC") : NULL); /* HF's Qwen tokenizers: NFC */
    json_object_object_add(root, "decoder", byte_level(1));
    json_object_object_add(root, "post_processor", bos_template(g, (int)n, 0));
    return st;
}

typedef struct {
    float score;
    int merged, left, right;
} spm_merge;

static int merge_order(const void *a, const void *b) {
    const spm_merge *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1; /* higher score merges first */
    if (x->merged != y->merged) return x->merged < y->merged ? -1 : 1;
    return x->left < y->left ? -1 : x->left > y->left;
}

/* SentencePiece BPE merges the adjacent pair whose concatenation has the highest score: every split of every normal
 * token into two normal tokens is a merge, ranked by the token's score. */
static jl_status spm_merges(const jl_gguf *g, const char *path, uint64_t n, json_object *vocab, json_object *merges) {
    spm_merge *v = NULL;
    size_t nv = 0, cap = 0;
    jl_status st = JL_OK;
    for (uint64_t i = 0; i < n && st == JL_OK; i++) {
        int type = jl_gguf_arr_i32(g, "tokenizer.ggml.token_type", i);
        if (type != TT_NORMAL && type != 0) continue;
        size_t len;
        const char *s = jl_gguf_arr_str(g, "tokenizer.ggml.tokens", i, &len);
        char buf[512];
        if (len >= sizeof buf) continue;
        for (size_t cut = 1; cut < len; cut++) {
            if (((unsigned char)s[cut] & 0xC0) == 0x80) continue; /* at character boundaries only */
            json_object *l, *r;
            memcpy(buf, s, cut);
            buf[cut] = '\0';
            if (!json_object_object_get_ex(vocab, buf, &l)) continue;
            memcpy(buf, s + cut, len - cut);
            buf[len - cut] = '\0';
            if (!json_object_object_get_ex(vocab, buf, &r)) continue;
            if (nv == cap) {
                cap = cap ? 2 * cap : 4096;
                spm_merge *w = realloc(v, cap * sizeof *v);
                if (!w) { st = jl_fail(JL_ERR_NOMEM, "out of memory"); break; }
                v = w;
            }
            v[nv++] = (spm_merge){jl_gguf_arr_f32(g, "tokenizer.ggml.scores", i), (int)i, json_object_get_int(l),
                                  json_object_get_int(r)};
        }
    }
    if (st == JL_OK) qsort(v, nv, sizeof *v, merge_order);
    for (size_t k = 0; k < nv && st == JL_OK; k++) {
        json_object *pair = json_object_new_array();
        size_t la, lb;
        const char *a = jl_gguf_arr_str(g, "tokenizer.ggml.tokens", (uint64_t)v[k].left, &la);
        const char *b = jl_gguf_arr_str(g, "tokenizer.ggml.tokens", (uint64_t)v[k].right, &lb);
        json_object_array_add(pair, jstr(a, la));
        json_object_array_add(pair, jstr(b, lb));
        json_object_array_add(merges, pair);
    }
    free(v);
    (void)path;
    return st;
}

static json_object *replace(const char *from, const char *to) {
    json_object *o = obj_type("Replace"), *pat = json_object_new_object();
    json_object_object_add(pat, "String", json_object_new_string(from));
    json_object_object_add(o, "pattern", pat);
    json_object_object_add(o, "content", json_object_new_string(to));
    return o;
}

static jl_status spm_tokenizer(const jl_gguf *g, const char *path, uint64_t n, json_object *root, json_object *model) {
    jl_gguf_vtype elem;
    uint64_t ns = 0, nt = 0;
    if (jl_gguf_find(g, "tokenizer.ggml.scores") < 0 || jl_gguf_get_arr(g, "tokenizer.ggml.scores", &elem, &ns) != JL_OK ||
        elem != JL_GGUF_F32 || ns != n)
        return jl_fail(JL_ERR_FORMAT, "%s: tokenizer.ggml.scores: missing or not %llu f32 (SentencePiece needs them)",
                       path, (unsigned long long)n);
    if (jl_gguf_find(g, "tokenizer.ggml.token_type") < 0 ||
        jl_gguf_get_arr(g, "tokenizer.ggml.token_type", &elem, &nt) != JL_OK || elem != JL_GGUF_I32 || nt != n)
        return jl_fail(JL_ERR_FORMAT, "%s: tokenizer.ggml.token_type: missing or not %llu i32", path,
                       (unsigned long long)n);
    json_object *vocab = json_object_new_object(), *added = json_object_new_array(), *merges = json_object_new_array();
    json_object_object_add(model, "vocab", vocab);
    json_object_object_add(model, "merges", merges);
    json_object_object_add(root, "added_tokens", added);
    int unk;
    jl_status st = vocab_and_added(g, path, n, vocab, added, &unk);
    if (st == JL_OK) st = spm_merges(g, path, n, vocab, merges);
    json_object_object_add(model, "byte_fallback", json_object_new_boolean(1));
    json_object_object_add(model, "fuse_unk", json_object_new_boolean(1));
    if (unk >= 0) {
        size_t len;
        const char *s = jl_gguf_arr_str(g, "tokenizer.ggml.tokens", (uint64_t)unk, &len);
        json_object_object_add(model, "unk_token", jstr(s, len));
    }
    int prefix = get_bool_or(g, "tokenizer.ggml.add_space_prefix", 1);
    json_object *norm = obj_type("Sequence"), *nl = json_object_new_array();
    if (prefix) {
        json_object *p = obj_type("Prepend");
        json_object_object_add(p, "prepend", json_object_new_string("\xE2\x96\x81"));
        json_object_array_add(nl, p);
    }
    json_object_array_add(nl, replace(" ", "\xE2\x96\x81"));
    json_object_object_add(norm, "normalizers", nl);
    json_object_object_add(root, "normalizer", norm);
    json_object_object_add(root, "pre_tokenizer", NULL);
    json_object *dec = obj_type("Sequence"), *dl = json_object_new_array();
    json_object_array_add(dl, replace("\xE2\x96\x81", " "));
    json_object_array_add(dl, obj_type("ByteFallback"));
    json_object_array_add(dl, obj_type("Fuse"));
    if (prefix) {
        json_object *strip = obj_type("Strip");
        json_object_object_add(strip, "content", json_object_new_string(" "));
        json_object_object_add(strip, "start", json_object_new_int(1));
        json_object_object_add(strip, "stop", json_object_new_int(0));
        json_object_array_add(dl, strip);
    }
    json_object_object_add(dec, "decoders", dl);
    json_object_object_add(root, "decoder", dec);
    json_object_object_add(root, "post_processor", bos_template(g, (int)n, 1));
    return st;
}

jl_status jl_gguf_foreign_tokenizer(const jl_gguf *g, const char *path, char **json) {
    *json = NULL;
    const char *kind;
    size_t kl;
    if (jl_gguf_find(g, "tokenizer.ggml.model") < 0 || jl_gguf_get_str(g, "tokenizer.ggml.model", &kind, &kl) != JL_OK)
        return jl_fail(JL_ERR_FORMAT, "%s: no tokenizer.ggml.model (the file carries no tokenizer)", path);
    jl_gguf_vtype elem;
    uint64_t n = 0;
    if (jl_gguf_find(g, "tokenizer.ggml.tokens") < 0 || jl_gguf_get_arr(g, "tokenizer.ggml.tokens", &elem, &n) != JL_OK ||
        elem != JL_GGUF_STRING || n == 0 || n > (1u << 24))
        return jl_fail(JL_ERR_FORMAT, "%s: tokenizer.ggml.tokens: missing or not an array of strings", path);
    const int bpe = kl == 4 && !memcmp(kind, "gpt2", 4), spm = kl == 5 && !memcmp(kind, "llama", 5);
    if (!bpe && !spm)
        return jl_fail(JL_ERR_FORMAT, "%s: tokenizer.ggml.model '%.*s' is not supported (gpt2 = BPE, llama = "
                       "SentencePiece)", path, (int)(kl > 32 ? 32 : kl), kind);
    json_object *root = json_object_new_object(), *model = obj_type("BPE");
    json_object_object_add(root, "version", json_object_new_string("1.0"));
    json_object_object_add(root, "model", model);
    jl_status st = bpe ? bpe_tokenizer(g, path, n, root, model) : spm_tokenizer(g, path, n, root, model);
    if (st == JL_OK) {
        const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        *json = s ? strdup(s) : NULL;
        if (!*json) st = jl_fail(JL_ERR_NOMEM, "out of memory (tokenizer.json)");
    }
    json_object_put(root);
    return st;
}

char *jl_gguf_foreign_token(const jl_gguf *g, const char *id_key) {
    uint32_t id;
    size_t len;
    const char *s;
    if (jl_gguf_find(g, id_key) < 0 || jl_gguf_get_u32(g, id_key, &id) != JL_OK ||
        !(s = jl_gguf_arr_str(g, "tokenizer.ggml.tokens", id, &len)))
        return NULL;
    return strndup(s, len);
}
