/* llm.c GPT-2 checkpoints: header of 256 int32, then every parameter tensor in llm.c's fixed order,
 * all layers of one kind together. Weights are (out, in) as in our memory layout. */
#include "core/half.h"
#include "io/fileio.h"
#include "jielong/convert.h"
#include "model/model.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LLMC_MAGIC 20240326
#define LLMC_HEADER_BYTES (256 * 4)

/* The parameter spans in llm.c order, after the embeddings (which need vocab padding care). */
static int layer_spans(const jl_model *m, float **ptr, size_t *len, int max) {
    const jl_config *c = &m->cfg;
    const size_t C = (size_t)c->dim, H = (size_t)c->hidden_dim;
    int n = 0;
    for (int kind = 0; kind < 12; kind++)
        for (int l = 0; l < c->n_layer && n < max; l++) {
            const jl_layer_params *p = &m->w.layers[l];
            float *v[12] = {p->ln1_w, p->ln1_b, p->qkv_w, p->qkv_b, p->o_w, p->o_b,
                            p->ln2_w, p->ln2_b, p->fc_w, p->fc_b, p->down_w, p->down_b};
            size_t s[12] = {C, C, 3 * C * C, 3 * C, C * C, C, C, C, H * C, H, C * H, C};
            ptr[n] = v[kind];
            len[n++] = s[kind];
        }
    ptr[n] = m->w.lnf_w;
    len[n++] = C;
    ptr[n] = m->w.lnf_b;
    len[n++] = C;
    return n;
}

int jl_is_llmc_file(const char *path) {
    int32_t magic = 0;
    return jl_read_head(path, &magic, 4) == 4 && magic == LLMC_MAGIC;
}

/* Reads n values at *pos as floats (fp32 or bf16) and advances. */
static void take(const unsigned char *data, size_t *pos, float *dst, size_t n, int bf16) {
    if (!bf16) memcpy(dst, data + *pos, n * 4);
    else
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, data + *pos + 2 * i, 2);
            dst[i] = jl_bf16_to_f32(h);
        }
    *pos += n * (bf16 ? 2 : 4);
}

/* The file holds exactly the header's shapes (checked before the model is allocated): the header's config
 * lays out n_params floats with the vocabulary padded to a multiple of 64; the file pads it to padded_vocab. */
static jl_status check_size(const char *path, const jl_config *c, int32_t padded_vocab, int bf16, size_t size) {
    jl_tensor_info *t;
    int n;
    size_t n_params;
    jl_status st = jl_model_layout(c, &t, &n, &n_params);
    if (st != JL_OK) return jl_fail_context(JL_ERR_FORMAT, "%s: header", path);
    free(t);
    const size_t C = (size_t)c->dim, ours = (size_t)(c->vocab_size + 63) / 64 * 64;
    const size_t need = (n_params - ours * C + (size_t)padded_vocab * C) * (bf16 ? 2 : 4) + LLMC_HEADER_BYTES;
    if (size != need) return jl_fail(JL_ERR_FORMAT, "%s: %zu bytes, expected %zu for the header's shapes", path, size, need);
    return JL_OK;
}

jl_status jl_import_llmc(const char *path, jl_checkpoint *ck) {
    memset(ck, 0, sizeof *ck);
    char *data;
    size_t size;
    jl_status st = jl_read_file(path, &data, &size);
    if (st != JL_OK) return st;
    int32_t h[256];
    if (size < LLMC_HEADER_BYTES) {
        free(data);
        return jl_fail(JL_ERR_FORMAT, "%s: truncated llm.c header (%zu bytes)", path, size);
    }
    memcpy(h, data, sizeof h);
    if (h[0] != LLMC_MAGIC) st = jl_fail(JL_ERR_FORMAT, "%s: header[0]: bad magic %d (not an llm.c model)", path, h[0]);
    else if (h[1] != 3 && h[1] != 5) st = jl_fail(JL_ERR_FORMAT, "%s: header[1]: version %d not supported (3, 5)", path, h[1]);
    else if (h[7] < h[3]) st = jl_fail(JL_ERR_FORMAT, "%s: header[7]: padded vocab %d < vocab %d", path, h[7], h[3]);
    /* 4·dim only for a width the config allows (jl_config_finish refuses the rest): no int overflow */
    jl_config c = {.arch = JL_ARCH_GPT2, .max_seq_len = h[2], .vocab_size = h[3], .n_layer = h[4], .n_head = h[5],
                   .n_kv_head = h[5], .dim = h[6], .hidden_dim = h[6] >= 1 && h[6] <= 65536 ? 4 * h[6] : 0,
                   .norm_eps = 1e-5f, .rope_theta = 10000.0f, .tie_embeddings = 1};
    if (st == JL_OK) st = check_size(path, &c, h[7], h[1] == 5, size);
    if (st == JL_OK && (st = jl_model_new(&c, &ck->model)) != JL_OK) jl_fail_context(JL_ERR_FORMAT, "%s: header", path);
    if (st == JL_OK) {
        jl_model *m = ck->model;
        const int bf16 = h[1] == 5;
        const size_t C = (size_t)c.dim, Vp_file = (size_t)h[7];
        float *ptr[4096 * 12 + 2];
        size_t len[4096 * 12 + 2];
        int n = layer_spans(m, ptr, len, 4096 * 12);
        size_t need = (Vp_file + (size_t)c.max_seq_len) * C;
        for (int i = 0; i < n; i++) need += len[i];
        need = need * (bf16 ? 2 : 4) + LLMC_HEADER_BYTES;
        if (size != need) st = jl_fail(JL_ERR_FORMAT, "%s: %zu bytes, expected %zu for the header's shapes", path, size, need);
        else { /* (check_size made sure before allocating) */
            size_t pos = LLMC_HEADER_BYTES;
            take((unsigned char *)data, &pos, m->w.wte, (size_t)c.vocab_size * C, bf16);
            pos += (Vp_file - (size_t)c.vocab_size) * C * (bf16 ? 2 : 4); /* padding rows are not used */
            take((unsigned char *)data, &pos, m->w.wpe, (size_t)c.max_seq_len * C, bf16);
            for (int i = 0; i < n; i++) take((unsigned char *)data, &pos, ptr[i], len[i], bf16);
        }
    }
    free(data);
    if (st == JL_OK) st = jl_model_check_finite(ck->model, path);
    if (st != JL_OK) jl_checkpoint_free(ck);
    return st;
}

jl_status jl_export_llmc(const jl_model *m, const char *path) {
    const jl_config *c = &m->cfg;
    if (jl_model_require_params(m, "llm.c export") != JL_OK) return JL_ERR_ARG;
    if (c->arch != JL_ARCH_GPT2) return jl_fail(JL_ERR_ARG, "llm.c format holds gpt2 models only (arch is %s)", jl_arch_name(c->arch));
    if (c->hidden_dim != 4 * c->dim)
        return jl_fail(JL_ERR_ARG, "llm.c format needs hidden_dim = 4·dim (%d != %d)", c->hidden_dim, 4 * c->dim);
    int32_t h[256] = {LLMC_MAGIC, 3, c->max_seq_len, c->vocab_size, c->n_layer, c->n_head, c->dim, c->padded_vocab};
    jl_atomic_file af;
    jl_status st = jl_atomic_open(&af, path);
    if (st != JL_OK) return st;
    float *ptr[4096 * 12 + 2];
    size_t len[4096 * 12 + 2];
    int n = layer_spans(m, ptr, len, 4096 * 12);
    const size_t C = (size_t)c->dim;
    int ok = fwrite(h, sizeof h, 1, af.f) == 1;
    ok = ok && fwrite(m->w.wte, 4, (size_t)c->padded_vocab * C, af.f) == (size_t)c->padded_vocab * C;
    ok = ok && fwrite(m->w.wpe, 4, (size_t)c->max_seq_len * C, af.f) == (size_t)c->max_seq_len * C;
    for (int i = 0; ok && i < n; i++) ok = fwrite(ptr[i], 4, len[i], af.f) == len[i];
    if (!ok) {
        jl_atomic_abort(&af);
        return jl_fail(JL_ERR_IO, "%s: write failed", path);
    }
    return jl_atomic_commit(&af);
}
