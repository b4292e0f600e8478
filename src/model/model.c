/* The transformer: parameter layout, initialisation, activations, forward and backward.
 * One code path for arch=llama and arch=gpt2; the arch only picks the norm, the activation,
 * rotary vs learned positions, and biases. */
#include "model/model.h"
#include "core/kernels.h"
#include "core/mem.h"
#include "core/rng.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a tensor is, so views can be rebuilt over any block with the same layout. */
enum {
    ROLE_NONE, ROLE_WTE, ROLE_WPE, ROLE_LNF_W, ROLE_LNF_B, ROLE_LM_HEAD,
    ROLE_LN1_W, ROLE_LN1_B, ROLE_QKV_W, ROLE_QKV_B, ROLE_O_W, ROLE_O_B,
    ROLE_LN2_W, ROLE_LN2_B, ROLE_FC_W, ROLE_FC_B, ROLE_DOWN_W, ROLE_DOWN_B,
};

typedef struct {
    jl_tensor_info *t;
    int n, cap;
    size_t offset;
} layout_builder;

static int add_tensor(layout_builder *lb, int role, int layer, int64_t rows, int64_t cols, int decay, int transposed,
                      const char *fmt, ...) __attribute__((format(printf, 8, 9)));

static int add_tensor(layout_builder *lb, int role, int layer, int64_t rows, int64_t cols, int decay, int transposed,
                      const char *fmt, ...) {
    if (lb->n == lb->cap) {
        int cap = lb->cap ? 2 * lb->cap : 64;
        jl_tensor_info *t = realloc(lb->t, sizeof *t * (size_t)cap);
        if (!t) return -1;
        lb->t = t;
        lb->cap = cap;
    }
    jl_tensor_info *ti = &lb->t[lb->n];
    memset(ti, 0, sizeof *ti);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ti->name, sizeof ti->name, fmt, ap);
    va_end(ap);
    ti->offset = lb->offset;
    ti->ndim = cols > 0 ? 2 : 1;
    ti->shape[0] = rows;
    ti->shape[1] = cols > 0 ? cols : 0;
    ti->rows_saved = rows;
    ti->decay = decay;
    ti->hf_transposed = transposed;
    ti->layer = layer;
    ti->role = role;
    lb->offset += (size_t)rows * (size_t)(cols > 0 ? cols : 1);
    return lb->n++;
}

/* Hugging Face names and shapes for each arch; q,k,v (and gate,up) are added back to back so that one
 * matmul computes all of them. */
static int build_layout(const jl_config *c, layout_builder *lb) {
    const int64_t C = c->dim, V = c->padded_vocab, H = c->hidden_dim, hs = jl_head_size(c);
    int ok = 1;
    if (c->arch == JL_ARCH_LLAMA) {
        int e = add_tensor(lb, ROLE_WTE, -1, V, C, 0, 0, "model.embed_tokens.weight");
        ok &= e >= 0;
        if (ok) lb->t[e].rows_saved = c->vocab_size;
        for (int l = 0; l < c->n_layer && ok; l++) {
            const char *p = "model.layers";
            ok &= add_tensor(lb, ROLE_LN1_W, l, C, 0, 0, 0, "%s.%d.input_layernorm.weight", p, l) >= 0;
            ok &= add_tensor(lb, ROLE_QKV_W, l, c->n_head * hs, C, 1, 0, "%s.%d.self_attn.q_proj.weight", p, l) >= 0;
            ok &= add_tensor(lb, ROLE_NONE, l, c->n_kv_head * hs, C, 1, 0, "%s.%d.self_attn.k_proj.weight", p, l) >= 0;
            ok &= add_tensor(lb, ROLE_NONE, l, c->n_kv_head * hs, C, 1, 0, "%s.%d.self_attn.v_proj.weight", p, l) >= 0;
            if (c->qkv_bias) { /* back to back like the weights, so one bias vector covers the packed qkv */
                ok &= add_tensor(lb, ROLE_QKV_B, l, c->n_head * hs, 0, 0, 0, "%s.%d.self_attn.q_proj.bias", p, l) >= 0;
                ok &= add_tensor(lb, ROLE_NONE, l, c->n_kv_head * hs, 0, 0, 0, "%s.%d.self_attn.k_proj.bias", p, l) >= 0;
                ok &= add_tensor(lb, ROLE_NONE, l, c->n_kv_head * hs, 0, 0, 0, "%s.%d.self_attn.v_proj.bias", p, l) >= 0;
            }
            ok &= add_tensor(lb, ROLE_O_W, l, C, c->n_head * hs, 1, 0, "%s.%d.self_attn.o_proj.weight", p, l) >= 0;
            ok &= add_tensor(lb, ROLE_LN2_W, l, C, 0, 0, 0, "%s.%d.post_attention_layernorm.weight", p, l) >= 0;
            ok &= add_tensor(lb, ROLE_FC_W, l, H, C, 1, 0, "%s.%d.mlp.gate_proj.weight", p, l) >= 0;
            ok &= add_tensor(lb, ROLE_NONE, l, H, C, 1, 0, "%s.%d.mlp.up_proj.weight", p, l) >= 0;
            ok &= add_tensor(lb, ROLE_DOWN_W, l, C, H, 1, 0, "%s.%d.mlp.down_proj.weight", p, l) >= 0;
        }
        ok &= add_tensor(lb, ROLE_LNF_W, -1, C, 0, 0, 0, "model.norm.weight") >= 0;
        if (ok && !c->tie_embeddings) {
            int h = add_tensor(lb, ROLE_LM_HEAD, -1, V, C, 1, 0, "lm_head.weight");
            ok &= h >= 0;
            if (ok) lb->t[h].rows_saved = c->vocab_size;
        }
    } else {
        int e = add_tensor(lb, ROLE_WTE, -1, V, C, 0, 0, "wte.weight");
        ok &= e >= 0;
        if (ok) lb->t[e].rows_saved = c->vocab_size;
        ok &= add_tensor(lb, ROLE_WPE, -1, c->max_seq_len, C, 0, 0, "wpe.weight") >= 0;
        for (int l = 0; l < c->n_layer && ok; l++) {
            ok &= add_tensor(lb, ROLE_LN1_W, l, C, 0, 0, 0, "h.%d.ln_1.weight", l) >= 0;
            ok &= add_tensor(lb, ROLE_LN1_B, l, C, 0, 0, 0, "h.%d.ln_1.bias", l) >= 0;
            ok &= add_tensor(lb, ROLE_QKV_W, l, 3 * C, C, 1, 1, "h.%d.attn.c_attn.weight", l) >= 0;
            ok &= add_tensor(lb, ROLE_QKV_B, l, 3 * C, 0, 0, 0, "h.%d.attn.c_attn.bias", l) >= 0;
            ok &= add_tensor(lb, ROLE_O_W, l, C, C, 1, 1, "h.%d.attn.c_proj.weight", l) >= 0;
            ok &= add_tensor(lb, ROLE_O_B, l, C, 0, 0, 0, "h.%d.attn.c_proj.bias", l) >= 0;
            ok &= add_tensor(lb, ROLE_LN2_W, l, C, 0, 0, 0, "h.%d.ln_2.weight", l) >= 0;
            ok &= add_tensor(lb, ROLE_LN2_B, l, C, 0, 0, 0, "h.%d.ln_2.bias", l) >= 0;
            ok &= add_tensor(lb, ROLE_FC_W, l, H, C, 1, 1, "h.%d.mlp.c_fc.weight", l) >= 0;
            ok &= add_tensor(lb, ROLE_FC_B, l, H, 0, 0, 0, "h.%d.mlp.c_fc.bias", l) >= 0;
            ok &= add_tensor(lb, ROLE_DOWN_W, l, C, H, 1, 1, "h.%d.mlp.c_proj.weight", l) >= 0;
            ok &= add_tensor(lb, ROLE_DOWN_B, l, C, 0, 0, 0, "h.%d.mlp.c_proj.bias", l) >= 0;
        }
        ok &= add_tensor(lb, ROLE_LNF_W, -1, C, 0, 0, 0, "ln_f.weight") >= 0;
        ok &= add_tensor(lb, ROLE_LNF_B, -1, C, 0, 0, 0, "ln_f.bias") >= 0;
    }
    return ok;
}

void jl_params_at(const jl_model *m, float *base, jl_params *v, jl_layer_params *layers) {
    memset(v, 0, sizeof *v);
    memset(layers, 0, sizeof *layers * (size_t)m->cfg.n_layer);
    v->layers = layers;
    for (int i = 0; i < m->n_tensors; i++) {
        float *p = m->tensors[i].unbacked ? NULL : base + m->tensors[i].offset;
        jl_layer_params *lp = m->tensors[i].layer >= 0 ? &layers[m->tensors[i].layer] : NULL;
        switch (m->tensors[i].role) {
        case ROLE_WTE: v->wte = p; break;
        case ROLE_WPE: v->wpe = p; break;
        case ROLE_LNF_W: v->lnf_w = p; break;
        case ROLE_LNF_B: v->lnf_b = p; break;
        case ROLE_LM_HEAD: v->lm_head = p; break;
        case ROLE_LN1_W: lp->ln1_w = p; break;
        case ROLE_LN1_B: lp->ln1_b = p; break;
        case ROLE_QKV_W: lp->qkv_w = p; break;
        case ROLE_QKV_B: lp->qkv_b = p; break;
        case ROLE_O_W: lp->o_w = p; break;
        case ROLE_O_B: lp->o_b = p; break;
        case ROLE_LN2_W: lp->ln2_w = p; break;
        case ROLE_LN2_B: lp->ln2_b = p; break;
        case ROLE_FC_W: lp->fc_w = p; break;
        case ROLE_FC_B: lp->fc_b = p; break;
        case ROLE_DOWN_W: lp->down_w = p; break;
        case ROLE_DOWN_B: lp->down_b = p; break;
        default: break;
        }
    }
    if (!v->lm_head) v->lm_head = v->wte; /* tied */
}

/* Zeroed floats; the large ones (weights, the KV cache) on huge pages (jl_alloc_stream). */
static float *alloc_floats(size_t n) { return n > ((size_t)-1) / sizeof(float) ? NULL : jl_alloc_stream(n * sizeof(float)); }

/* Marks the unbacked tensors and packs the others' offsets; returns the floats they need. */
static size_t pack_backed(jl_tensor_info *t, int n, int (*unbacked)(const jl_tensor_info *, void *), void *ctx) {
    size_t offset = 0;
    for (int i = 0; i < n; i++) {
        t[i].unbacked = unbacked && unbacked(&t[i], ctx);
        if (t[i].unbacked) continue;
        t[i].offset = offset;
        offset += (size_t)t[i].shape[0] * (size_t)(t[i].ndim == 2 ? t[i].shape[1] : 1);
    }
    return offset;
}

jl_status jl_model_layout(const jl_config *cfg, jl_tensor_info **tensors, int *n, size_t *n_params) {
    *tensors = NULL;
    *n = 0;
    *n_params = 0;
    jl_config c = *cfg;
    jl_status st = jl_config_finish(&c);
    if (st != JL_OK) return st;
    layout_builder lb = {0};
    if (!build_layout(&c, &lb)) {
        free(lb.t);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    *tensors = lb.t;
    *n = lb.n;
    *n_params = lb.offset;
    return JL_OK;
}

jl_status jl_model_new_partial(const jl_config *cfg, int (*unbacked)(const jl_tensor_info *t, void *ctx), void *ctx,
                               jl_model **out) {
    *out = NULL;
    jl_config c = *cfg;
    jl_status st = jl_config_finish(&c);
    if (st != JL_OK) return st;
    jl_model *m = calloc(1, sizeof *m);
    if (!m) return jl_fail(JL_ERR_NOMEM, "out of memory");
    m->cfg = c;
    layout_builder lb = {0};
    if (!build_layout(&c, &lb)) {
        free(lb.t);
        free(m);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    m->tensors = lb.t;
    m->n_tensors = lb.n;
    m->n_params = lb.offset;
    m->n_backed = pack_backed(m->tensors, m->n_tensors, unbacked, ctx);
    m->params = alloc_floats(m->n_backed);
    m->w.layers = calloc((size_t)c.n_layer, sizeof(jl_layer_params));
    if (c.arch == JL_ARCH_LLAMA) m->rope_table = alloc_floats((size_t)c.max_seq_len * (size_t)jl_head_size(&c));
    if (!m->params || !m->w.layers || (c.arch == JL_ARCH_LLAMA && !m->rope_table)) {
        const size_t n = m->n_backed;
        jl_model_free(m);
        return jl_fail(JL_ERR_NOMEM, "cannot allocate %zu parameters", n);
    }
    jl_params_at(m, m->params, &m->w, m->w.layers);
    if (m->rope_table) jl_rope_table(m->rope_table, c.max_seq_len, jl_head_size(&c), c.rope_theta);
    *out = m;
    return JL_OK;
}

/* NaN when any of x[0..n) is NaN or ±Inf (x - x), else 0: one vectorised pass, no branch per value. */
static float nonfinite_probe(const float *x, size_t n) {
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (size_t i = 0; i < n; i++) acc += x[i] - x[i];
    return acc;
}

jl_status jl_model_check_finite(const jl_model *m, const char *path) {
    for (int i = 0; i < m->n_tensors; i++) {
        const jl_tensor_info *t = &m->tensors[i];
        if (t->unbacked) continue;
        const float *x = m->params + t->offset;
        const size_t n = (size_t)t->rows_saved * (size_t)(t->ndim == 2 ? t->shape[1] : 1);
        if (nonfinite_probe(x, n) == 0.0f) continue;
        size_t k = 0;
        while (k < n && isfinite(x[k])) k++;
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s' holds a non-finite value (%g at index %zu): refusing a broken model",
                       path, t->name, (double)x[k < n ? k : 0], k);
    }
    return JL_OK;
}

jl_status jl_model_new(const jl_config *cfg, jl_model **out) { return jl_model_new_partial(cfg, NULL, NULL, out); }

jl_status jl_model_require_params(const jl_model *m, const char *what) {
    if (m->n_backed == m->n_params) return JL_OK;
    return jl_fail(JL_ERR_ARG, "%s: this model holds its weights quantised only (a q8_0/q4_0 GGUF loaded for "
                               "inference), without the fp32 parameters this needs; use the fp32 checkpoint", what);
}

int jl_tensor_linear(const jl_model *m, int i, int *layer, int *kind, int64_t *row0) {
    const jl_tensor_info *t = m->tensors;
    int has_head = 0;
    for (int j = 0; j < m->n_tensors; j++) has_head |= t[j].role == ROLE_LM_HEAD;
    if (t[i].ndim != 2 || t[i].role == ROLE_WPE || (t[i].role == ROLE_WTE && has_head)) return 0;
    int j = i; /* k, v (after q) and up (after gate) have no role of their own: their matrix starts earlier */
    *row0 = 0;
    while (t[j].role == ROLE_NONE && j > 0) *row0 += t[--j].shape[0];
    const int role = t[j].role;
    *layer = role == ROLE_WTE || role == ROLE_LM_HEAD ? -1 : t[j].layer;
    *kind = role == ROLE_O_W ? 1 : role == ROLE_FC_W ? 2 : role == ROLE_DOWN_W ? 3 : 0;
    return role == ROLE_QKV_W || role == ROLE_O_W || role == ROLE_FC_W || role == ROLE_DOWN_W || *layer == -1;
}

void jl_model_free(jl_model *m) {
    if (!m) return;
    free(m->params);
    free(m->tensors);
    free(m->w.layers);
    free(m->rope_table);
    free(m);
}

const jl_config *jl_model_config(const jl_model *m) { return &m->cfg; }
size_t jl_model_num_params(const jl_model *m) { return m->n_params; }

void jl_model_init(jl_model *m, uint64_t seed) {
    const float std = 0.02f, resid_std = 0.02f / sqrtf(2.0f * (float)m->cfg.n_layer);
    #pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < m->n_tensors; i++) {
        const jl_tensor_info *t = &m->tensors[i];
        if (t->unbacked) continue;
        float *p = m->params + t->offset;
        size_t n = (size_t)t->shape[0] * (size_t)(t->ndim == 2 ? t->shape[1] : 1);
        int is_norm = t->role == ROLE_LN1_W || t->role == ROLE_LN2_W || t->role == ROLE_LNF_W;
        if (t->ndim == 1) { /* norm weights 1, biases 0 */
            for (size_t j = 0; j < n; j++) p[j] = is_norm ? 1.0f : 0.0f;
            continue;
        }
        jl_rng rng; /* one stream per tensor: the result does not depend on the thread count */
        jl_rng_seed(&rng, seed ^ (0xA24BAED4963EE407ull * (uint64_t)(i + 1)));
        float s = (t->role == ROLE_O_W || t->role == ROLE_DOWN_W) ? resid_std : std;
        size_t n_real = (size_t)t->rows_saved * (size_t)t->shape[1]; /* padded vocab rows stay 0 */
        for (size_t j = 0; j < n_real; j++) p[j] = s * jl_rng_normal(&rng);
        for (size_t j = n_real; j < n; j++) p[j] = 0.0f;
    }
}

/* ---------------------------------------------------------------- activations */

jl_status jl_acts_new(const jl_config *c, int B, int T, jl_acts *a) {
    memset(a, 0, sizeof *a);
    if (B < 1 || T < 1 || T > c->max_seq_len)
        return jl_fail(JL_ERR_ARG, "batch %d×%d does not fit the model (context %d)", B, T, c->max_seq_len);
    const size_t L = (size_t)c->n_layer, N = (size_t)B * (size_t)T, C = (size_t)c->dim;
    const size_t QKV = (size_t)jl_qkv_dim(c), FC = (size_t)jl_fc_dim(c), H = (size_t)c->hidden_dim;
    const size_t ATT = (size_t)B * (size_t)c->n_head * (size_t)T * (size_t)T, Vp = (size_t)c->padded_vocab;
    struct { float **dst; size_t n; } parts[] = {
        {&a->res, (L + 1) * N * C}, {&a->res_mid, L * N * C},
        {&a->ln1, L * N * C}, {&a->ln1_mean, L * N}, {&a->ln1_rstd, L * N},
        {&a->qkv, L * N * QKV}, {&a->att, L * ATT}, {&a->atty, L * N * C},
        {&a->ln2, L * N * C}, {&a->ln2_mean, L * N}, {&a->ln2_rstd, L * N},
        {&a->fc, L * N * FC}, {&a->fc_act, L * N * H},
        {&a->lnf, N * C}, {&a->lnf_mean, N}, {&a->lnf_rstd, N},
        {&a->logits, N * Vp}, {&a->losses, N},
        {&a->dres, N * C}, {&a->dln, N * C}, {&a->dqkv, N * QKV}, {&a->datt, ATT},
        {&a->datty, N * C}, {&a->dfc, N * FC}, {&a->dfc_act, N * H},
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) total += (parts[i].n + 15) / 16 * 16;
    a->block = alloc_floats(total);
    if (!a->block) return jl_fail(JL_ERR_NOMEM, "cannot allocate %.1f MB of activations", total * 4.0 / 1e6);
    float *p = a->block;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        *parts[i].dst = p;
        p += (parts[i].n + 15) / 16 * 16;
    }
    a->B = B;
    a->T = T;
    a->n_floats = total;
    return JL_OK;
}

void jl_acts_free(jl_acts *a) {
    free(a->block);
    memset(a, 0, sizeof *a);
}

/* ---------------------------------------------------------------- forward */

static void norm_forward(const jl_config *c, float *out, float *mean, float *rstd, const float *inp, const float *w,
                         const float *b, int N) {
    if (c->arch == JL_ARCH_LLAMA) jl_rmsnorm_forward(out, rstd, inp, w, N, c->dim, c->norm_eps);
    else jl_layernorm_forward(out, mean, rstd, inp, w, b, N, c->dim, c->norm_eps);
}

static void norm_backward(const jl_config *c, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                          const float *w, const float *mean, const float *rstd, int N) {
    if (c->arch == JL_ARCH_LLAMA) jl_rmsnorm_backward(dinp, dw, dout, inp, w, rstd, N, c->dim);
    else jl_layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, c->dim);
}

/* Per-layer slices of the activation block (strides use the capacity, so smaller batches fit). */
typedef struct {
    float *in, *mid, *out, *ln1, *ln1_mean, *ln1_rstd, *qkv, *att, *atty, *ln2, *ln2_mean, *ln2_rstd, *fc, *fc_act;
} layer_acts;

static layer_acts layer_slice(const jl_config *c, const jl_acts *a, int l) {
    const size_t N = (size_t)a->B * (size_t)a->T, C = (size_t)c->dim;
    const size_t ATT = (size_t)a->B * (size_t)c->n_head * (size_t)a->T * (size_t)a->T;
    layer_acts s = {
        .in = a->res + (size_t)l * N * C,
        .mid = a->res_mid + (size_t)l * N * C,
        .out = a->res + (size_t)(l + 1) * N * C,
        .ln1 = a->ln1 + (size_t)l * N * C,
        .ln1_mean = a->ln1_mean + (size_t)l * N,
        .ln1_rstd = a->ln1_rstd + (size_t)l * N,
        .qkv = a->qkv + (size_t)l * N * (size_t)jl_qkv_dim(c),
        .att = a->att + (size_t)l * ATT,
        .atty = a->atty + (size_t)l * N * C,
        .ln2 = a->ln2 + (size_t)l * N * C,
        .ln2_mean = a->ln2_mean + (size_t)l * N,
        .ln2_rstd = a->ln2_rstd + (size_t)l * N,
        .fc = a->fc + (size_t)l * N * (size_t)jl_fc_dim(c),
        .fc_act = a->fc_act + (size_t)l * N * (size_t)c->hidden_dim,
    };
    return s;
}

double jl_model_forward(jl_model *m, jl_acts *a, const int32_t *tokens, const int32_t *targets, int B, int T,
                        float grad_scale, long *n_counted) {
    const jl_config *c = &m->cfg;
    const int N = B * T, C = c->dim, hs = jl_head_size(c), QKV = jl_qkv_dim(c), H = c->hidden_dim;
    const jl_params *w = &m->w;
    float *scratch = a->dln; /* backward scratch, free during forward: branch outputs before the residual add */

    jl_embedding_forward(a->res, tokens, w->wte, N, C);
    const int32_t *seg = a->seg_start;
    if (m->prompt) m->prompt_hooks->forward(m->prompt, a->res, B, T, seg);
    if (c->arch == JL_ARCH_GPT2) jl_posemb_forward_seg(a->res, w->wpe, B, T, C, seg);

    for (int l = 0; l < c->n_layer; l++) {
        const jl_layer_params *p = &w->layers[l];
        layer_acts s = layer_slice(c, a, l);
        /* attention branch: mid = in + o(attention(rope(qkv(norm(in))))) */
        norm_forward(c, s.ln1, s.ln1_mean, s.ln1_rstd, s.in, p->ln1_w, p->ln1_b, N);
        jl_matmul_forward(s.qkv, s.ln1, p->qkv_w, p->qkv_b, N, C, QKV);
        if (m->lora) m->lora_hooks->forward(m->lora, l, JL_LORA_OUT_QKV, s.qkv, QKV, s.ln1, N);
        if (c->arch == JL_ARCH_LLAMA) {
            jl_rope_forward_seg(s.qkv, m->rope_table, B, T, c->n_head, hs, QKV, seg);
            jl_rope_forward_seg(s.qkv + c->n_head * hs, m->rope_table, B, T, c->n_kv_head, hs, QKV, seg);
        }
        jl_attention_forward_seg(s.atty, s.att, s.qkv, B, T, c->n_head, c->n_kv_head, hs, seg);
        jl_matmul_forward(scratch, s.atty, p->o_w, p->o_b, N, C, C);
        if (m->lora) m->lora_hooks->forward(m->lora, l, JL_LORA_OUT_O, scratch, C, s.atty, N);
        jl_residual_forward(s.mid, s.in, scratch, (size_t)N * C);
        /* MLP branch: out = mid + down(act(fc(norm(mid)))) */
        norm_forward(c, s.ln2, s.ln2_mean, s.ln2_rstd, s.mid, p->ln2_w, p->ln2_b, N);
        jl_matmul_forward(s.fc, s.ln2, p->fc_w, p->fc_b, N, C, jl_fc_dim(c));
        if (m->lora) m->lora_hooks->forward(m->lora, l, JL_LORA_OUT_FC, s.fc, jl_fc_dim(c), s.ln2, N);
        if (c->arch == JL_ARCH_LLAMA) jl_swiglu_forward(s.fc_act, s.fc, N, H);
        else jl_gelu_forward(s.fc_act, s.fc, (size_t)N * H);
        jl_matmul_forward(scratch, s.fc_act, p->down_w, p->down_b, N, H, C);
        if (m->lora) m->lora_hooks->forward(m->lora, l, JL_LORA_OUT_DOWN, scratch, C, s.fc_act, N);
        jl_residual_forward(s.out, s.mid, scratch, (size_t)N * C);
    }
    const float *final_res = a->res + (size_t)c->n_layer * (size_t)a->B * (size_t)a->T * (size_t)C;
    norm_forward(c, a->lnf, a->lnf_mean, a->lnf_rstd, final_res, w->lnf_w, w->lnf_b, N);
    jl_matmul_forward(a->logits, a->lnf, w->lm_head, NULL, N, C, c->padded_vocab);

    if (n_counted) *n_counted = 0;
    if (!targets) return 0.0;
    long counted = 0;
    for (int i = 0; i < N; i++) counted += targets[i] >= 0;
    if (n_counted) *n_counted = counted;
    return jl_crossentropy_forward_backward(a->losses, grad_scale > 0 ? a->logits : NULL, a->logits, targets, N,
                                            c->vocab_size, c->padded_vocab, grad_scale);
}

/* ---------------------------------------------------------------- backward */

void jl_model_backward(jl_model *m, jl_acts *a, const int32_t *tokens, const jl_params *g, int B, int T) {
    const jl_config *c = &m->cfg;
    const int N = B * T, C = c->dim;
    /* lm head: logits = lnf · lm_headᵀ (the logits buffer holds d logits) */
    memset(a->dln, 0, (size_t)N * C * sizeof(float));
    jl_matmul_backward(a->dln, g->lm_head, NULL, a->logits, a->lnf, m->w.lm_head, N, C, c->padded_vocab);
    jl_model_backward_from_hidden(m, a, tokens, g, B, T);
}

void jl_model_backward_from_hidden(jl_model *m, jl_acts *a, const int32_t *tokens, const jl_params *g, int B, int T) {
    const jl_config *c = &m->cfg;
    const int N = B * T, C = c->dim, hs = jl_head_size(c), QKV = jl_qkv_dim(c), H = c->hidden_dim;
    const int FC = jl_fc_dim(c);
    const jl_params *w = &m->w;
    const size_t NC = (size_t)N * C;
    const int32_t *seg = a->seg_start;
    float *dres = a->dres; /* gradient of the residual stream, carried down through the layers */
    memset(dres, 0, NC * sizeof(float));
    const float *final_res = a->res + (size_t)c->n_layer * (size_t)a->B * (size_t)a->T * (size_t)C;
    norm_backward(c, dres, g->lnf_w, g->lnf_b, a->dln, final_res, w->lnf_w, a->lnf_mean, a->lnf_rstd, N);
    if (a->grads_done) a->grads_done(a->grads_done_ctx, c->n_layer);

    for (int l = c->n_layer - 1; l >= 0; l--) {
        const jl_layer_params *p = &w->layers[l];
        const jl_layer_params *gp = &g->layers[l];
        layer_acts s = layer_slice(c, a, l);
        /* MLP branch; dres flows unchanged to mid and also enters the branch */
        memset(a->dfc_act, 0, (size_t)N * H * sizeof(float));
        jl_matmul_backward(a->dfc_act, gp->down_w, gp->down_b, dres, s.fc_act, p->down_w, N, H, C);
        if (m->lora) m->lora_hooks->backward(m->lora, l, JL_LORA_OUT_DOWN, a->dfc_act, dres, C, s.fc_act, N);
        memset(a->dfc, 0, (size_t)N * FC * sizeof(float));
        if (c->arch == JL_ARCH_LLAMA) jl_swiglu_backward(a->dfc, a->dfc_act, s.fc, N, H);
        else jl_gelu_backward(a->dfc, a->dfc_act, s.fc, (size_t)N * H);
        memset(a->dln, 0, NC * sizeof(float));
        jl_matmul_backward(a->dln, gp->fc_w, gp->fc_b, a->dfc, s.ln2, p->fc_w, N, C, FC);
        if (m->lora) m->lora_hooks->backward(m->lora, l, JL_LORA_OUT_FC, a->dln, a->dfc, FC, s.ln2, N);
        norm_backward(c, dres, gp->ln2_w, gp->ln2_b, a->dln, s.mid, p->ln2_w, s.ln2_mean, s.ln2_rstd, N);
        /* attention branch */
        memset(a->datty, 0, NC * sizeof(float));
        jl_matmul_backward(a->datty, gp->o_w, gp->o_b, dres, s.atty, p->o_w, N, C, C);
        if (m->lora) m->lora_hooks->backward(m->lora, l, JL_LORA_OUT_O, a->datty, dres, C, s.atty, N);
        memset(a->dqkv, 0, (size_t)N * QKV * sizeof(float));
        jl_attention_backward_seg(a->dqkv, a->datt, a->datty, s.qkv, s.att, B, T, c->n_head, c->n_kv_head, hs, seg);
        if (c->arch == JL_ARCH_LLAMA) {
            jl_rope_backward_seg(a->dqkv, m->rope_table, B, T, c->n_head, hs, QKV, seg);
            jl_rope_backward_seg(a->dqkv + c->n_head * hs, m->rope_table, B, T, c->n_kv_head, hs, QKV, seg);
        }
        memset(a->dln, 0, NC * sizeof(float));
        jl_matmul_backward(a->dln, gp->qkv_w, gp->qkv_b, a->dqkv, s.ln1, p->qkv_w, N, C, QKV);
        if (m->lora) m->lora_hooks->backward(m->lora, l, JL_LORA_OUT_QKV, a->dln, a->dqkv, QKV, s.ln1, N);
        norm_backward(c, dres, gp->ln1_w, gp->ln1_b, a->dln, s.in, p->ln1_w, s.ln1_mean, s.ln1_rstd, N);
        if (a->grads_done) a->grads_done(a->grads_done_ctx, l);
    }
    if (c->arch == JL_ARCH_GPT2 && g->wpe) jl_posemb_backward_seg(g->wpe, dres, B, T, C, seg);
    if (m->prompt) m->prompt_hooks->backward(m->prompt, dres, B, T, seg);
    if (g->wte) jl_embedding_backward(g->wte, dres, tokens, N, C);
}

double jl_model_train_flops(const jl_config *c, int B, int T) {
    const double C = c->dim, L = c->n_layer;
    double matmul_params = L * (C * jl_qkv_dim(c) + C * C + C * jl_fc_dim(c) + (double)c->hidden_dim * C) +
                           C * c->padded_vocab;
    double per_token_fwd = 2.0 * matmul_params + 4.0 * L * C * T; /* attention scores and weighted sum */
    return 3.0 * per_token_fwd * (double)B * (double)T;
}
