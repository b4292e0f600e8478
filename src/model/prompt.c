/* Soft prompt (P-tuning v1 style): n trainable virtual-token embeddings that take the place of the first n
 * token embeddings of every sequence; the model stays frozen. */
#include "model/adapter_io.h"
#include "model/lora.h"
#include "model/model.h"
#include "core/rng.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TENSOR_NAME "prompt_embeddings"

struct jl_prompt {
    int n, C;
    float *params, *grads;
    jl_base_id base;
};

static jl_status prompt_alloc(const jl_model *m, int n_virtual, jl_prompt **out) {
    *out = NULL;
    if (n_virtual < 1 || n_virtual >= m->cfg.max_seq_len)
        return jl_fail(JL_ERR_ARG, "soft prompt length %d must be in [1, %d) (the model's context)", n_virtual,
                       m->cfg.max_seq_len);
    jl_prompt *p = calloc(1, sizeof *p);
    if (!p) return jl_fail(JL_ERR_NOMEM, "out of memory");
    p->n = n_virtual;
    p->C = m->cfg.dim;
    p->params = calloc((size_t)p->n * (size_t)p->C, sizeof(float));
    jl_status st = p->params ? jl_base_id_of(m, &p->base) : jl_fail(JL_ERR_NOMEM, "out of memory");
    if (st != JL_OK) {
        jl_prompt_free(p);
        return st;
    }
    *out = p;
    return JL_OK;
}

jl_status jl_prompt_new(const jl_model *m, int n_virtual, uint64_t seed, jl_prompt **out) {
    *out = NULL;
    jl_status st = jl_model_require_params(m, "soft prompt"); /* starts from rows of the fp32 embedding */
    if (st == JL_OK) st = prompt_alloc(m, n_virtual, out);
    if (st != JL_OK) return st;
    jl_prompt *p = *out;
    jl_rng rng; /* start from the embeddings of random real tokens, a common P-tuning initialisation */
    jl_rng_seed(&rng, seed);
    for (int i = 0; i < p->n; i++) {
        int tok = (int)jl_rng_below(&rng, (uint64_t)m->cfg.vocab_size);
        memcpy(p->params + (size_t)i * p->C, m->w.wte + (size_t)tok * p->C, sizeof(float) * (size_t)p->C);
    }
    return JL_OK;
}

void jl_prompt_free(jl_prompt *p) {
    if (!p) return;
    free(p->params);
    free(p->grads);
    jl_base_id_free(&p->base);
    free(p);
}

int jl_prompt_length(const jl_prompt *p) { return p->n; }
size_t jl_prompt_num_params(const jl_prompt *p) { return (size_t)p->n * (size_t)p->C; }
float *jl_prompt_params(jl_prompt *p) { return p->params; }

float *jl_prompt_grads(jl_prompt *p) {
    if (!p->grads) p->grads = calloc(jl_prompt_num_params(p), sizeof(float));
    return p->grads;
}

static void prompt_forward(const jl_prompt *p, float *res, int B, int T, const int32_t *seg) {
    if (seg) jl_prompt_forward_seg(p, res, B, T, seg);
    else jl_prompt_forward(p, res, B, T);
}

static void prompt_backward(jl_prompt *p, float *dres, int B, int T, const int32_t *seg) {
    if (seg) jl_prompt_backward_seg(p, dres, B, T, seg);
    else jl_prompt_backward(p, dres, B, T);
}

static const jl_prompt_hooks prompt_hooks = {prompt_forward, prompt_backward};

jl_status jl_model_attach_prompt(jl_model *m, jl_prompt *p) {
    if (p && (p->C != m->cfg.dim || !jl_base_id_matches(&p->base, m)))
        return jl_fail(JL_ERR_ARG, "soft prompt was made for another base model");
    m->prompt = p;
    m->prompt_hooks = &prompt_hooks;
    return JL_OK;
}

void jl_prompt_forward(const jl_prompt *p, float *res, int B, int T) {
    const int n = p->n < T ? p->n : T;
    for (int b = 0; b < B; b++)
        memcpy(res + (size_t)b * T * p->C, p->params, sizeof(float) * (size_t)n * p->C);
}

void jl_prompt_forward_at(const jl_prompt *p, float *res, int pos0, int n) {
    for (int i = 0; i < n && pos0 + i < p->n; i++)
        memcpy(res + (size_t)i * p->C, p->params + (size_t)(pos0 + i) * p->C, sizeof(float) * (size_t)p->C);
}

void jl_prompt_backward(jl_prompt *p, float *dres, int B, int T) {
    const int n = p->n < T ? p->n : T;
    for (int b = 0; b < B; b++) {
        float *rows = dres + (size_t)b * T * p->C;
        if (p->grads)
            for (size_t i = 0; i < (size_t)n * p->C; i++) p->grads[i] += rows[i];
        memset(rows, 0, sizeof(float) * (size_t)n * p->C);
    }
}

void jl_prompt_forward_seg(const jl_prompt *p, float *res, int B, int T, const int32_t *seg_start) {
    for (int n = 0; n < B * T; n++) {
        const int pos = n % T - seg_start[n];
        if (pos < p->n) memcpy(res + (size_t)n * p->C, p->params + (size_t)pos * p->C, sizeof(float) * (size_t)p->C);
    }
}

void jl_prompt_backward_seg(jl_prompt *p, float *dres, int B, int T, const int32_t *seg_start) {
    for (int n = 0; n < B * T; n++) {
        const int pos = n % T - seg_start[n];
        if (pos >= p->n) continue;
        float *row = dres + (size_t)n * p->C, *g = p->grads ? p->grads + (size_t)pos * p->C : NULL;
        if (g)
            for (int c = 0; c < p->C; c++) g[c] += row[c];
        memset(row, 0, sizeof(float) * (size_t)p->C);
    }
}

jl_status jl_prompt_save(const jl_prompt *p, const char *path, const jl_adapter_state *state) {
    jl_adapter_writer aw;
    jl_status st = jl_adapter_writer_begin(&aw, "prompt", &p->base);
    char buf[32];
    snprintf(buf, sizeof buf, "%d", p->n);
    if (st == JL_OK) st = jl_st_add_meta(aw.w, "num_virtual_tokens", buf);
    int64_t shape[2] = {p->n, p->C};
    if (st == JL_OK) st = jl_st_add(aw.w, TENSOR_NAME, JL_DT_F32, 2, shape, p->params);
    return jl_adapter_writer_finish(&aw, st, path, jl_prompt_num_params(p), state);
}

jl_status jl_prompt_load(const char *path, const jl_model *m, jl_prompt **out, jl_adapter_state *state) {
    *out = NULL;
    jl_st_file *f;
    jl_status st = jl_adapter_open(path, "prompt", m, &f);
    if (st != JL_OK) return st;
    const char *nv = jl_st_meta(f, "num_virtual_tokens");
    char *end = NULL;
    long n = nv ? strtol(nv, &end, 10) : 0;
    jl_prompt *p = NULL;
    if (!nv || *end != '\0') st = jl_fail(JL_ERR_FORMAT, "%s: metadata 'num_virtual_tokens' missing or not a number", path);
    if (st == JL_OK && (st = prompt_alloc(m, (int)n, &p)) != JL_OK) jl_fail_context(st, "%s", path);
    if (st == JL_OK)
        st = jl_adapter_read_tensor(path, f, TENSOR_NAME, n, m->cfg.dim, p->params, "num_virtual_tokens and width");
    if (st == JL_OK) st = jl_adapter_check_extra(path, f, 1);
    if (st == JL_OK && state) st = jl_adapter_read_state(path, f, jl_prompt_num_params(p), state);
    jl_st_close(f);
    if (st != JL_OK) {
        jl_prompt_free(p);
        return st;
    }
    *out = p;
    return JL_OK;
}
