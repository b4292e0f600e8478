/* GGUF → a jielong model for inference. The file's linear weights keep their block type (q8_0 / q4_0) as the
 * session's quantised matrices (and so does a quantised token embedding), with no fp32 copy unless asked to
 * dequantise; norms, biases and f32/f16 tensors become fp32. Rows are quantised independently,
 * so undoing the writer's Q/K row permutation (GGML's interleaved RoPE pairs → rotate_half) is a copy of whole
 * quantised rows, and the packed qkv / [gate; up] matrices are the file's tensors stacked row-wise. */
#include "infer/qweights.h"
#include "format/gguf_foreign.h"
#include "format/gguf_names.h"
#include "jielong/gguf.h"
#include "model/model.h"
#include <stdlib.h>
#include <string.h>

/* Row i of the file is row our_row(i) of ours: with heads > 0, row h·hs + 2i + j of the file (GGML pairs) is row
 * h·hs + j·hs/2 + i of ours (HF halves); else the same row. */
static int64_t our_row(int64_t file_row, int heads, int64_t n_rows) {
    if (heads <= 0) return file_row;
    const int64_t hs = n_rows / heads, h = file_row / hs, k = file_row % hs;
    return h * hs + (k % 2) * (hs / 2) + k / 2;
}

static void copy_rows(void *dst, const void *src, int heads, int64_t n_rows, size_t row_bytes) {
    for (int64_t i = 0; i < n_rows; i++)
        memcpy((char *)dst + (size_t)our_row(i, heads, n_rows) * row_bytes, (const char *)src + (size_t)i * row_bytes,
               row_bytes);
}

static char *dup_meta(const jl_gguf *g, const char *key) {
    const char *s;
    size_t len;
    if (jl_gguf_find(g, key) < 0 || jl_gguf_get_str(g, key, &s, &len) != JL_OK) return NULL;
    return strndup(s, len);
}

/* *foreign = 1: a file without jielong.config (written by llama.cpp's tools), read from its architecture keys. */
static jl_status load_config(const jl_gguf *g, const char *path, jl_config *cfg, int *foreign, int *unpermute) {
    const char *arch;
    size_t len;
    *foreign = 0;
    *unpermute = 1;
    if (jl_gguf_find(g, JL_GGUF_KEY_CONFIG) < 0) {
        *foreign = 1;
        return jl_gguf_foreign_config(g, path, cfg, unpermute);
    }
    if (jl_gguf_find(g, "general.architecture") < 0 || jl_gguf_get_str(g, "general.architecture", &arch, &len) != JL_OK)
        return jl_fail(JL_ERR_FORMAT, "%s: no general.architecture string", path);
    int llama = len == 5 && memcmp(arch, "llama", 5) == 0, gpt2 = len == 4 && memcmp(arch, "gpt2", 4) == 0;
    if (!llama && !gpt2)
        return jl_fail(JL_ERR_FORMAT, "%s: architecture '%.*s' is not supported (llama, gpt2)", path, (int)(len > 64 ? 64 : len), arch);
    char *json = dup_meta(g, JL_GGUF_KEY_CONFIG);
    if (!json)
        return jl_fail(JL_ERR_FORMAT, "%s: no '%s' metadata: only GGUF files written by jielong (quantize, export) "
                                      "can be loaded", path, JL_GGUF_KEY_CONFIG);
    jl_status st = jl_config_from_json(json, cfg);
    free(json);
    if (st != JL_OK) return jl_fail_context(st, "%s: %s", path, JL_GGUF_KEY_CONFIG);
    if ((cfg->arch == JL_ARCH_LLAMA) != llama)
        return jl_fail(JL_ERR_FORMAT, "%s: general.architecture '%.*s' disagrees with %s (%s)", path, (int)len, arch,
                       JL_GGUF_KEY_CONFIG, jl_arch_name(cfg->arch));
    return JL_OK;
}

static int is_block_type(jl_ggml_type t) { return t == JL_GGML_Q8_0 || t == JL_GGML_Q4_0; }

typedef struct {
    const jl_gguf *g;
    const jl_config *cfg;
} backing_ctx;

/* For inference a tensor the file holds in blocks lives only quantised (no fp32 copy): every 2-D tensor but the
 * positions (which the writer keeps f32) is a linear weight or the token embedding, both run from blocks. */
static int quantised_only(const jl_tensor_info *t, void *ctx) {
    const backing_ctx *b = ctx;
    char name[96];
    int heads;
    if (t->ndim != 2 || !jl_gguf_tensor_name(b->cfg, t->name, name, sizeof name, &heads)) return 0;
    const jl_gguf_tensor *gt = jl_gguf_find_tensor(b->g, name);
    return gt && is_block_type(gt->type);
}

/* The first block whose fp16 scale is NaN or ±Inf (exponent bits all set), or -1. */
static int64_t bad_scale(const jl_gguf_tensor *gt) {
    const size_t bsize = gt->type == JL_GGML_Q8_0 ? sizeof(jl_block_q8_0) : sizeof(jl_block_q4_0);
    const unsigned char *p = gt->data;
    for (size_t b = 0; b < gt->nbytes / bsize; b++) {
        uint16_t d;
        memcpy(&d, p + b * bsize, 2);
        if ((d & 0x7c00) == 0x7c00) return (int64_t)b;
    }
    return -1;
}

/* Quantised rows of a GGUF tensor into q from row row0 (Q/K rows back in our order), repacked as they go in. */
static jl_status load_blocks(const char *path, const char *name, const jl_gguf_tensor *gt, jl_qmatrix *q, int64_t q_rows,
                             int64_t row0, int64_t rows, int64_t cols, int heads) {
    const jl_qtype qt = gt->type == JL_GGML_Q8_0 ? JL_QTYPE_Q8_0 : JL_QTYPE_Q4_0;
    const int64_t bad = bad_scale(gt);
    if (bad >= 0)
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s': block %lld has a non-finite scale: refusing a broken model",
                       path, name, (long long)bad);
    if (!q->data) {
        jl_status st = jl_qmatrix_alloc(q, qt, q_rows, cols);
        if (st != JL_OK) return jl_fail_context(st, "%s: %s", path, name);
    } else if (q->type != qt) {
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s' is %s but the rest of its matrix is %s", path, name,
                       jl_ggml_type_name(gt->type), jl_qtype_name(q->type));
    }
    for (int64_t i = 0; i < rows; i++)
        jl_qmatrix_set_row(q, row0 + our_row(i, heads, rows), (const char *)gt->data + (size_t)i * q->row_bytes);
    return JL_OK;
}

/* GGUF tensor gt (checked against the config) into tensor i of the model: quantised rows into its slot's matrix
 * (or the quantised embedding), fp32 values into the model for every tensor that has fp32 storage. */
static jl_status copy_tensor(const char *path, const char *name, jl_model *m, int i, jl_qweights *qw, jl_lin_slot *slots,
                             int *slot_kind, const jl_gguf_tensor *gt, int heads, int64_t rows, int64_t cols) {
    const jl_tensor_info *t = &m->tensors[i];
    int64_t row0 = 0;
    const int slot = jl_qweights_slot_of(m, i, &row0), quantised = is_block_type(gt->type);
    if (slot >= 0) {
        const int kind = quantised ? 1 : 2;
        if (slot_kind[slot] && slot_kind[slot] != kind)
            return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s' is %s but the rest of its matrix is not", path, name,
                           jl_ggml_type_name(gt->type));
        slot_kind[slot] = kind;
    }
    /* the untied embedding is the only 2-D tensor without a slot that can live quantised */
    jl_qmatrix *q = slot >= 0 ? slots[slot].q : t->unbacked ? &qw->embed : NULL;
    if (quantised && q) {
        const int64_t q_rows = slot >= 0 ? slots[slot].rows : t->shape[0];
        jl_status st = load_blocks(path, name, gt, q, q_rows, row0, rows, cols, heads);
        if (st != JL_OK) return st;
    }
    if (t->unbacked) return JL_OK;
    float *dst = m->params + t->offset;
    if (heads <= 0) { /* in the file's order: straight into the model */
        jl_gguf_tensor_f32(gt, dst);
        return JL_OK;
    }
    float *tmp = malloc(sizeof(float) * (size_t)rows * (size_t)cols);
    if (!tmp) return jl_fail(JL_ERR_NOMEM, "out of memory");
    jl_gguf_tensor_f32(gt, tmp);
    /* a 1-D bias of permuted rows is permuted entry by entry */
    copy_rows(dst, tmp, heads, t->ndim == 2 ? rows : cols, t->ndim == 2 ? (size_t)cols * sizeof(float) : sizeof(float));
    free(tmp);
    return JL_OK;
}

/* The GGUF counterpart of layout tensor t, found by name and checked against its shape; *heads for the Q/K rows. */
static jl_status find_tensor(const jl_gguf *g, const char *path, const jl_config *cfg, const jl_tensor_info *t,
                             char *name, int *heads, const jl_gguf_tensor **out) {
    *heads = 0;
    if (!jl_gguf_tensor_name(cfg, t->name, name, 96, heads))
        return jl_fail(JL_ERR_FORMAT, "%s: no GGUF name for tensor '%s'", path, t->name);
    const jl_gguf_tensor *gt = jl_gguf_find_tensor(g, name);
    if (!gt) return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s' missing", path, name);
    const int64_t rows = t->ndim == 2 ? t->rows_saved : 1, cols = t->ndim == 2 ? t->shape[1] : t->shape[0];
    if (gt->n_dims != t->ndim || gt->ne[0] != cols || (t->ndim == 2 && gt->ne[1] != rows))
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s' is [%lld, %lld], the config needs [%lld, %lld]", path, name,
                       (long long)gt->ne[0], (long long)(gt->n_dims > 1 ? gt->ne[1] : 1), (long long)cols, (long long)rows);
    *out = gt;
    return JL_OK;
}

/* Every tensor the config lays out is in the file with its shape: checked before the model is allocated, so a
 * small file whose config claims a huge model is refused at once (the reader checked each byte range). */
static jl_status check_layout(const jl_gguf *g, const char *path, const jl_config *cfg) {
    jl_tensor_info *t;
    int n, heads;
    size_t n_params;
    char name[96];
    const jl_gguf_tensor *gt = NULL;
    jl_status st = jl_model_layout(cfg, &t, &n, &n_params);
    if (st != JL_OK) return jl_fail_context(st, "%s", path);
    for (int i = 0; st == JL_OK && i < n; i++) st = find_tensor(g, path, cfg, &t[i], name, &heads, &gt);
    free(t);
    return st;
}

/* Tensor i of the model from its GGUF counterpart, found by name and checked against the config. */
static jl_status load_tensor(const jl_gguf *g, const char *path, jl_model *m, int i, jl_qweights *qw,
                             jl_lin_slot *slots, int *slot_kind, int unpermute) {
    const jl_tensor_info *t = &m->tensors[i];
    char name[96];
    int heads = 0;
    const jl_gguf_tensor *gt = NULL;
    jl_status st = find_tensor(g, path, &m->cfg, t, name, &heads, &gt);
    if (st != JL_OK) return st;
    if (!unpermute) heads = 0; /* qwen2 files keep HF's rotate_half order */
    const int64_t rows = t->ndim == 2 ? t->rows_saved : 1, cols = t->ndim == 2 ? t->shape[1] : t->shape[0];
    st = copy_tensor(path, name, m, i, qw, slots, slot_kind, gt, heads, rows, cols);
    jl_gguf_tensor_release(g, gt); /* the model holds its own copy now: the file's pages need not stay resident */
    return st;
}

static jl_status load_tensors(const jl_gguf *g, const char *path, jl_model *m, jl_qweights *qw, int *any_quantised,
                              int unpermute) {
    const int n = jl_qweights_n_slots(m);
    jl_lin_slot *slots = malloc(sizeof *slots * (size_t)n);
    int *kind = calloc((size_t)n, sizeof *kind);
    jl_status st = slots && kind ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory");
    if (st == JL_OK) jl_qweights_slots(m, qw, slots);
    for (int i = 0; st == JL_OK && i < m->n_tensors; i++) st = load_tensor(g, path, m, i, qw, slots, kind, unpermute);
    *any_quantised = qw->embed.data != NULL;
    for (int i = 0; st == JL_OK && i < n; i++) *any_quantised |= kind[i] == 1;
    free(slots);
    free(kind);
    return st;
}

jl_status jl_gguf_load_model(const char *path, int dequantise, jl_checkpoint *ck, jl_qweights **qw) {
    memset(ck, 0, sizeof *ck);
    *qw = NULL;
    jl_gguf *g;
    jl_status st = jl_gguf_open(path, &g);
    if (st != JL_OK) return st;
    jl_config cfg;
    jl_qweights *w = NULL;
    int any_quantised = 0, foreign = 0, unpermute = 1;
    st = load_config(g, path, &cfg, &foreign, &unpermute);
    backing_ctx bc = {g, &cfg};
    if (st == JL_OK) st = check_layout(g, path, &cfg);
    if (st == JL_OK) st = jl_model_new_partial(&cfg, dequantise ? NULL : quantised_only, &bc, &ck->model);
    if (st == JL_OK) st = jl_qweights_empty(ck->model, &w);
    if (st == JL_OK) st = load_tensors(g, path, ck->model, w, &any_quantised, unpermute);
    if (st == JL_OK) st = jl_model_check_finite(ck->model, path);
    if (st == JL_OK) {
        ck->tokenizer_json = dup_meta(g, JL_GGUF_KEY_TOKENIZER);
        ck->chat_template = dup_meta(g, JL_GGUF_KEY_CHAT_TEMPLATE);
        ck->bos_token = dup_meta(g, JL_GGUF_KEY_BOS_TOKEN);
        ck->eos_token = dup_meta(g, JL_GGUF_KEY_EOS_TOKEN);
        if (foreign && !ck->chat_template) ck->chat_template = dup_meta(g, "tokenizer.chat_template"); /* its own */
        if (foreign && !ck->tokenizer_json) st = jl_gguf_foreign_tokenizer(g, path, &ck->tokenizer_json);
        if (foreign && !ck->bos_token) ck->bos_token = jl_gguf_foreign_token(g, "tokenizer.ggml.bos_token_id");
        if (foreign && !ck->eos_token) ck->eos_token = jl_gguf_foreign_token(g, "tokenizer.ggml.eos_token_id");
    }
    jl_gguf_close(g);
    if (st != JL_OK || !any_quantised) jl_qweights_free(w);
    if (st != JL_OK) {
        jl_checkpoint_free(ck);
        return st;
    }
    *qw = any_quantised ? w : NULL;
    return JL_OK;
}
