/* The inference session: a KV cache over a jl_model and the forward pass of new tokens against it.
 * It reads the model's parameter block through the same views as jl_model_forward and mirrors its steps
 * (norm → qkv → rope at absolute positions → causal GQA attention → o → residual → norm → MLP → residual),
 * so its logits equal the full forward pass at every position. Prefill runs a block of tokens through matrix
 * products; decode (one token) through matrix-vector products, which is where the time goes: it runs as one
 * OpenMP parallel region per token (decode_one), each thread owning a share of every product's rows, with four
 * barriers per layer, instead of a parallel region per product. */
#include "infer/session.h"
#include "core/kernels.h"
#include "core/mem.h"
#include "core/vexp.h"
#include "infer/attend.h"
#include "infer/linear.h"
#include "infer/qweights.h"
#include "model/lora.h"
#include "model/model.h"
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    jl_linear qkv, o, fc, down;
} layer_linears;

struct jl_session {
    const jl_model *m;
    const jl_qweights *qw; /* quantised linear weights, or NULL */
    void *xq;              /* activations quantised to q8_0 for the quantised linears */
    int cap, pos;        /* cache positions allocated / filled */
    int block, max_block;/* prefill block in use / allocated */
    int kv_dim;          /* n_kv_head · hs: floats per position per layer in k (and v) */
    float *k_cache, *v_cache; /* (L, cap, kv_dim) */
    /* activations for up to max_block tokens */
    float *x, *xb, *qkv, *atty, *fc, *fc_act, *mean, *rstd, *logits;
    float *att; /* (nh, max_block, cap) attention scores */
    int32_t *tokens;     /* (cap) the tokens in the cache */
    /* decode team: per-thread norm output (team × dim) and quantised-input scratch (team × xq_bytes) */
    int team;
    float *xb_team;
    uint8_t *xq_team;
    size_t xq_bytes;
    layer_linears *layers;
    jl_linear head;
};

/* Zeroed floats; the large ones (weights, the KV cache) on huge pages (jl_alloc_stream). */
static float *alloc_floats(size_t n) { return n > ((size_t)-1) / sizeof(float) ? NULL : jl_alloc_stream(n * sizeof(float)); }

/* The quantised matrix for a linear, or NULL when it runs in fp32. */
static const jl_qmatrix *qmat(const jl_session *s, int layer, int which) {
    if (!s->qw) return NULL;
    const jl_qmatrix *q = layer < 0 ? &s->qw->head : &s->qw->layer[(size_t)layer * JL_LIN_PER_LAYER + which];
    return q->data ? q : NULL;
}

static void bind_weights(jl_session *s) {
    const jl_config *c = &s->m->cfg;
    const int C = c->dim, H = c->hidden_dim;
    for (int l = 0; l < c->n_layer; l++) {
        const jl_layer_params *p = &s->m->w.layers[l];
        s->layers[l].qkv = (jl_linear){p->qkv_w, p->qkv_b, C, jl_qkv_dim(c), qmat(s, l, JL_LIN_QKV), s->xq, NULL};
        s->layers[l].o = (jl_linear){p->o_w, p->o_b, c->n_head * jl_head_size(c), C, qmat(s, l, JL_LIN_O), s->xq, NULL};
        s->layers[l].fc = (jl_linear){p->fc_w, p->fc_b, C, jl_fc_dim(c), qmat(s, l, JL_LIN_FC), s->xq, NULL};
        s->layers[l].down = (jl_linear){p->down_w, p->down_b, H, C, qmat(s, l, JL_LIN_DOWN), s->xq, NULL};
    }
    s->head = (jl_linear){s->m->w.lm_head, NULL, C, c->padded_vocab, qmat(s, -1, 0), s->xq, NULL};
}

/* A set of quantised weights fits m when every matrix has the shape of the linear it replaces, and every
 * weight the model holds no fp32 copy of (a GGUF loaded for inference) is among them. */
static jl_status check_qweights(const jl_model *m, const jl_qweights *qw) {
    if (!qw) return jl_model_require_params(m, "fp32 inference");
    if (qw->n_layer != m->cfg.n_layer)
        return jl_fail(JL_ERR_ARG, "quantised weights have %d layers, the model %d", qw->n_layer, m->cfg.n_layer);
    const int n = jl_qweights_n_slots(m);
    jl_lin_slot *slots = malloc(sizeof *slots * (size_t)n);
    if (!slots) return jl_fail(JL_ERR_NOMEM, "out of memory");
    jl_qweights_slots(m, (jl_qweights *)qw, slots);
    jl_status st = JL_OK;
    for (int i = 0; i < n && st == JL_OK; i++)
        if (slots[i].q->data && (slots[i].q->rows != slots[i].rows || slots[i].q->cols != slots[i].cols))
            st = jl_fail(JL_ERR_ARG, "quantised matrix %d is (%lld, %lld), the model's (%lld, %lld)", i,
                         (long long)slots[i].q->rows, (long long)slots[i].q->cols, (long long)slots[i].rows,
                         (long long)slots[i].cols);
        else if (!slots[i].q->data && !slots[i].w)
            st = jl_fail(JL_ERR_ARG, "linear weight %d has neither fp32 values nor a quantised matrix", i);
    free(slots);
    const jl_qmatrix *e = jl_qweights_embedding(m, qw);
    if (st == JL_OK && !m->w.wte && !e) st = jl_fail(JL_ERR_ARG, "the token embedding has neither fp32 values nor blocks");
    if (st == JL_OK && e && (e->rows != m->cfg.padded_vocab || e->cols != m->cfg.dim))
        st = jl_fail(JL_ERR_ARG, "quantised embedding is (%lld, %lld), the model's (%d, %d)", (long long)e->rows,
                     (long long)e->cols, m->cfg.padded_vocab, m->cfg.dim);
    return st;
}

jl_status jl_session_new(const jl_model *m, int capacity, jl_session **out) {
    return jl_session_new_quant(m, NULL, capacity, out);
}

jl_status jl_session_new_quant(const jl_model *m, const jl_qweights *qw, int capacity, jl_session **out) {
    *out = NULL;
    const jl_config *c = &m->cfg;
    jl_status st = check_qweights(m, qw);
    if (st != JL_OK) return st;
    if (capacity == 0) capacity = c->max_seq_len;
    if (capacity < 1 || capacity > c->max_seq_len)
        return jl_fail(JL_ERR_ARG, "context %d: must be in 1..%d (the model's context)", capacity, c->max_seq_len);
    jl_session *s = calloc(1, sizeof *s);
    if (!s) return jl_fail(JL_ERR_NOMEM, "out of memory");
    s->m = m;
    s->qw = qw;
    s->cap = capacity;
    s->kv_dim = c->n_kv_head * jl_head_size(c);
    /* prefill block: up to 128 tokens, fewer when the score buffer (nh × block × cap) would pass 4M floats */
    int block = (int)((size_t)(4u << 20) / ((size_t)c->n_head * (size_t)capacity));
    block = block > 128 ? 128 : block < 8 ? 8 : block;
    s->max_block = s->block = block < capacity ? block : capacity;
    const size_t L = (size_t)c->n_layer, B = (size_t)s->max_block, C = (size_t)c->dim;
    const size_t kv = L * (size_t)capacity * (size_t)s->kv_dim;
    s->k_cache = alloc_floats(kv);
    s->v_cache = alloc_floats(kv);
    s->x = alloc_floats(B * C);
    s->xb = alloc_floats(B * C);
    s->qkv = alloc_floats(B * (size_t)jl_qkv_dim(c));
    s->atty = alloc_floats(B * C);
    s->fc = alloc_floats(B * (size_t)jl_fc_dim(c));
    s->fc_act = alloc_floats(B * (size_t)c->hidden_dim);
    s->mean = alloc_floats(B);
    s->rstd = alloc_floats(B);
    s->logits = alloc_floats(B * (size_t)c->padded_vocab);
    s->att = alloc_floats((size_t)c->n_head * B * (size_t)capacity);
    s->layers = calloc(L, sizeof *s->layers);
    s->tokens = calloc((size_t)capacity, sizeof *s->tokens);
    if (qw) { /* the widest input of a linear: C, the MLP hidden width or the attention output */
        int widest = c->dim > c->hidden_dim ? c->dim : c->hidden_dim;
        widest = widest > c->n_head * jl_head_size(c) ? widest : c->n_head * jl_head_size(c);
        s->xq = aligned_alloc(64, (jl_qmatmul_scratch_bytes(s->max_block, widest) + 63) / 64 * 64);
    }
    s->team = omp_get_max_threads();
    s->xb_team = alloc_floats((size_t)s->team * (size_t)(c->dim + 16));
    if (qw) {
        int widest = c->dim > c->hidden_dim ? c->dim : c->hidden_dim;
        widest = widest > c->n_head * jl_head_size(c) ? widest : c->n_head * jl_head_size(c);
        s->xq_bytes = (jl_qmatmul_scratch_bytes(1, widest) + 63) / 64 * 64;
        s->xq_team = aligned_alloc(64, (size_t)s->team * s->xq_bytes);
    }
    if ((qw && (!s->xq || !s->xq_team)) || !s->xb_team || !s->tokens || !s->k_cache || !s->v_cache || !s->x || !s->xb || !s->qkv || !s->atty || !s->fc || !s->fc_act || !s->mean ||
        !s->rstd || !s->logits || !s->att || !s->layers) {
        jl_session_free(s);
        return jl_fail(JL_ERR_NOMEM, "cannot allocate the KV cache (%.1f MB) and activations", 8.0 * kv / 1e6);
    }
    bind_weights(s);
    *out = s;
    return JL_OK;
}

void jl_session_free(jl_session *s) {
    if (!s) return;
    float *bufs[] = {s->k_cache, s->v_cache, s->x, s->xb, s->qkv, s->atty, s->fc, s->fc_act, s->mean, s->rstd,
                     s->logits, s->att};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(s->layers);
    free(s->tokens);
    free(s->xq);
    free(s->xb_team);
    free(s->xq_team);
    free(s);
}

int jl_session_capacity(const jl_session *s) { return s->cap; }
int jl_session_pos(const jl_session *s) { return s->pos; }
const int32_t *jl_session_tokens(const jl_session *s) { return s->tokens; }
int jl_session_virtual_tokens(const jl_session *s) { return s->m->prompt ? jl_prompt_length(s->m->prompt) : 0; }

void jl_session_truncate(jl_session *s, int pos) {
    if (pos >= 0 && pos < s->pos) s->pos = pos;
}

void jl_session_set_prefill_block(jl_session *s, int block) {
    s->block = block < 1 ? 1 : block > s->max_block ? s->max_block : block;
}

double jl_session_bytes_per_token(const jl_session *s) {
    const jl_config *c = &s->m->cfg;
    double floats = (double)s->m->n_params;
    size_t table = (size_t)c->padded_vocab * (size_t)c->dim;
    if (!c->tie_embeddings && c->arch == JL_ARCH_LLAMA) floats -= (double)table - c->dim; /* one embedding row */
    if (c->arch == JL_ARCH_GPT2) floats -= (double)c->max_seq_len * c->dim - c->dim;      /* one position row */
    double bytes = 4.0 * floats;
    if (s->qw) { /* quantised matrices replace their fp32 bytes; the one embedding row is read from whichever
                  * table the session looks it up in */
        for (int i = 0; i < c->n_layer * JL_LIN_PER_LAYER; i++) {
            const jl_qmatrix *q = &s->qw->layer[i];
            if (q->data) bytes -= (double)q->rows * (4.0 * (double)q->cols - (double)q->row_bytes);
        }
        const jl_qmatrix *head = &s->qw->head;
        if (head->data) {
            bytes -= 4.0 * (double)table - (double)head->rows * (double)head->row_bytes;
            if (c->tie_embeddings) bytes += s->m->w.wte ? 4.0 * c->dim : (double)head->row_bytes;
        }
        if (s->qw->embed.data) bytes -= 4.0 * c->dim - (double)s->qw->embed.row_bytes;
    }
    return bytes;
}

/* ---------------------------------------------------------------- one block of tokens */

static void norm(const jl_session *s, float *out, const float *inp, const float *w, const float *b, int n) {
    const jl_config *c = &s->m->cfg;
    if (c->arch == JL_ARCH_LLAMA) jl_rmsnorm_forward(out, s->rstd, inp, w, n, c->dim, c->norm_eps);
    else jl_layernorm_forward(out, s->mean, s->rstd, inp, w, b, n, c->dim, c->norm_eps);
}

static void linear(const jl_linear *L, const float *x, float *y, int n) {
    if (n == 1) jl_linear_vec(L, x, y);
    else jl_linear_mat(L, x, y, n);
}

static void softmax_prefix(float *row, int n) {
    float maxv = -INFINITY, sum = 0.0f;
    for (int j = 0; j < n; j++) maxv = row[j] > maxv ? row[j] : maxv;
    for (int j = 0; j < n; j++) {
        row[j] = jl_vexpf(row[j] - maxv);
        sum += row[j];
    }
    float inv = 1.0f / sum;
    for (int j = 0; j < n; j++) row[j] *= inv;
}

/* Attention of query head h for the token at pos against the cache (keys 0..pos): jl_attend_head, as the batch's rows. */
static void attend_head(jl_session *s, const float *kc, const float *vc, int h, int pos) {
    const jl_config *c = &s->m->cfg;
    const int hs = jl_head_size(c), kvo = (h / (c->n_head / c->n_kv_head)) * hs;
    jl_attend_head(s->qkv + (size_t)h * hs, kc + kvo, vc + kvo, s->kv_dim, hs, pos + 1, s->att + (size_t)h * s->cap,
                   s->atty + (size_t)h * hs);
}

/* One token at position pos against keys 0..pos: heads in parallel (decode outside the one-region path). */
static void attend_one(jl_session *s, const float *kc, const float *vc, int pos) {
    const int nh = s->m->cfg.n_head;
#pragma omp parallel for schedule(static) if (pos > 64)
    for (int h = 0; h < nh; h++) attend_head(s, kc, vc, h, pos);
}

/* n tokens at positions pos0.. against keys 0..pos0+n-1 (causal): two sgemms per head, heads in parallel. */
static void attend_block(jl_session *s, const float *kc, const float *vc, int pos0, int n) {
    const jl_config *c = &s->m->cfg;
    const int nh = c->n_head, hs = jl_head_size(c), group = nh / c->n_kv_head, kvd = s->kv_dim;
    const int QKV = jl_qkv_dim(c), keys = pos0 + n, ld = s->cap;
    const float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for schedule(dynamic, 1)
    for (int h = 0; h < nh; h++) {
        const int kvo = (h / group) * hs;
        float *att = s->att + (size_t)h * s->max_block * ld;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, keys, hs, scale, s->qkv + (size_t)h * hs, QKV,
                    kc + kvo, kvd, 0.0f, att, ld);
        for (int i = 0; i < n; i++) {
            float *row = att + (size_t)i * ld;
            softmax_prefix(row, pos0 + i + 1);
            memset(row + pos0 + i + 1, 0, (size_t)(n - 1 - i) * sizeof *row);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hs, keys, 1.0f, att, ld, vc + kvo, kvd, 0.0f,
                    s->atty + (size_t)h * hs, nh * hs);
    }
}

/* An attached LoRA adds its low-rank term to a projection's output (unmerged: the base stays as it is). */
static void lora_add(const jl_session *s, int layer, jl_lora_out kind, float *out, int ld, const float *in, int n) {
    if (s->m->lora) jl_lora_forward(s->m->lora, layer, kind, out, ld, in, n);
}

/* Token embeddings into s->x: fp32 rows, or rows of the quantised table dequantised (a GGUF keeps no fp32 copy). */
static void embed(jl_session *s, const int32_t *tokens, int n) {
    const int C = s->m->cfg.dim;
    if (s->m->w.wte) {
        jl_embedding_forward(s->x, tokens, s->m->w.wte, n, C);
        return;
    }
    const jl_qmatrix *q = jl_qweights_embedding(s->m, s->qw);
    for (int i = 0; i < n; i++) jl_qmatrix_row_f32(q, tokens[i], s->x + (size_t)i * C);
}

/* Runs tokens[0..n) at positions pos.. through every layer; s->x ends as the final residual. */
static void forward_block(jl_session *s, const int32_t *tokens, int n) {
    const jl_model *m = s->m;
    const jl_config *c = &m->cfg;
    const int C = c->dim, hs = jl_head_size(c), QKV = jl_qkv_dim(c), H = c->hidden_dim, pos0 = s->pos;
    const size_t nC = (size_t)n * C;
    embed(s, tokens, n);
    if (m->prompt) jl_prompt_forward_at(m->prompt, s->x, pos0, n);
    if (c->arch == JL_ARCH_GPT2) jl_posemb_forward(s->x, m->w.wpe, 1, n, C, pos0);
    for (int l = 0; l < c->n_layer; l++) {
        const jl_layer_params *p = &m->w.layers[l];
        const layer_linears *lin = &s->layers[l];
        float *kc = s->k_cache + (size_t)l * s->cap * s->kv_dim, *vc = s->v_cache + (size_t)l * s->cap * s->kv_dim;
        norm(s, s->xb, s->x, p->ln1_w, p->ln1_b, n);
        linear(&lin->qkv, s->xb, s->qkv, n);
        lora_add(s, l, JL_LORA_OUT_QKV, s->qkv, QKV, s->xb, n);
        if (c->arch == JL_ARCH_LLAMA) {
            jl_rope_forward(s->qkv, m->rope_table, 1, n, c->n_head, hs, QKV, pos0);
            jl_rope_forward(s->qkv + c->n_head * hs, m->rope_table, 1, n, c->n_kv_head, hs, QKV, pos0);
        }
        for (int i = 0; i < n; i++) { /* append k and v to the cache */
            const float *row = s->qkv + (size_t)i * QKV + (size_t)c->n_head * hs;
            memcpy(kc + (size_t)(pos0 + i) * s->kv_dim, row, (size_t)s->kv_dim * sizeof(float));
            memcpy(vc + (size_t)(pos0 + i) * s->kv_dim, row + s->kv_dim, (size_t)s->kv_dim * sizeof(float));
        }
        if (n == 1) attend_one(s, kc, vc, pos0);
        else attend_block(s, kc, vc, pos0, n);
        linear(&lin->o, s->atty, s->xb, n);
        lora_add(s, l, JL_LORA_OUT_O, s->xb, C, s->atty, n);
        jl_residual_forward(s->x, s->x, s->xb, nC);
        norm(s, s->xb, s->x, p->ln2_w, p->ln2_b, n);
        linear(&lin->fc, s->xb, s->fc, n);
        lora_add(s, l, JL_LORA_OUT_FC, s->fc, jl_fc_dim(c), s->xb, n);
        if (c->arch == JL_ARCH_LLAMA) jl_swiglu_forward(s->fc_act, s->fc, n, H);
        else jl_gelu_forward(s->fc_act, s->fc, (size_t)n * H);
        linear(&lin->down, s->fc_act, s->xb, n);
        lora_add(s, l, JL_LORA_OUT_DOWN, s->xb, C, s->fc_act, n);
        jl_residual_forward(s->x, s->x, s->xb, nC);
    }
    s->pos += n;
}

/* ---------------------------------------------------------------- decode: one parallel region per token */

/* [lo, hi) of n units for member t of a team of nt: contiguous, sizes differing by at most one unit. */
static void share(int n, int t, int nt, int *lo, int *hi) {
    *lo = (int)((long)n * t / nt);
    *hi = (int)((long)n * (t + 1) / nt);
}

/* Rows of a linear split among the team in units of 16 rows (whole groups of the quantised layout, whole
 * fours of the fp32 kernel), so each row is computed exactly as jl_linear_vec computes it. */
static void rows_share(const jl_linear *L, const float *x, float *y, void *xq, int t, int nt, int accumulate) {
    int lo, hi;
    share((L->out + 15) / 16, t, nt, &lo, &hi);
    jl_linear_vec_rows(L, x, y, xq, lo * 16, hi * 16 < L->out ? hi * 16 : L->out, accumulate);
}

/* Norm of the residual into this thread's own buffer (every thread computes the same row: no barrier). */
static void norm_private(const jl_session *s, float *out, const float *w, const float *b) {
    const jl_config *c = &s->m->cfg;
    float mean, rstd;
    if (c->arch == JL_ARCH_LLAMA) jl_rmsnorm_forward(out, &rstd, s->x, w, 1, c->dim, c->norm_eps);
    else jl_layernorm_forward(out, &mean, &rstd, s->x, w, b, 1, c->dim, c->norm_eps);
}

/* qkv, rope, cache append and attention of kv heads [g0, g1) and their query heads: all rows this thread needs
 * it computes itself, so no barrier comes between the projection and the attention. */
static void attention_share(jl_session *s, const layer_linears *lin, const float *xb, void *xq, float *kc, float *vc,
                            int g0, int g1) {
    const jl_config *c = &s->m->cfg;
    const int hs = jl_head_size(c), group = c->n_head / c->n_kv_head, QKV = jl_qkv_dim(c), pos = s->pos;
    const int kq = c->n_head * hs, vq = kq + s->kv_dim;
    if (g0 >= g1) return;
    jl_linear_vec_rows(&lin->qkv, xb, s->qkv, xq, g0 * group * hs, g1 * group * hs, 0);
    jl_linear_vec_rows(&lin->qkv, xb, s->qkv, xq, kq + g0 * hs, kq + g1 * hs, 0);
    jl_linear_vec_rows(&lin->qkv, xb, s->qkv, xq, vq + g0 * hs, vq + g1 * hs, 0);
    if (c->arch == JL_ARCH_LLAMA) {
        jl_rope_forward(s->qkv + (size_t)g0 * group * hs, s->m->rope_table, 1, 1, (g1 - g0) * group, hs, QKV, pos);
        jl_rope_forward(s->qkv + kq + (size_t)g0 * hs, s->m->rope_table, 1, 1, g1 - g0, hs, QKV, pos);
    }
    memcpy(kc + (size_t)pos * s->kv_dim + g0 * hs, s->qkv + kq + g0 * hs, (size_t)(g1 - g0) * hs * sizeof(float));
    memcpy(vc + (size_t)pos * s->kv_dim + g0 * hs, s->qkv + vq + g0 * hs, (size_t)(g1 - g0) * hs * sizeof(float));
    for (int h = g0 * group; h < g1 * group; h++) attend_head(s, kc, vc, h, pos);
}

/* MLP hidden rows [lo, hi) (units of 16): the fused gate|up (or fc) rows of those units, then the activation. */
static void mlp_share(jl_session *s, const layer_linears *lin, const float *xb, void *xq, int t, int nt) {
    const jl_config *c = &s->m->cfg;
    const int H = c->hidden_dim;
    int lo, hi;
    share((H + 15) / 16, t, nt, &lo, &hi);
    lo *= 16;
    hi = hi * 16 < H ? hi * 16 : H;
    if (lo >= hi) return;
    jl_linear_vec_rows(&lin->fc, xb, s->fc, xq, lo, hi, 0);
    if (c->arch == JL_ARCH_LLAMA) {
        jl_linear_vec_rows(&lin->fc, xb, s->fc, xq, H + lo, H + hi, 0);
        const float *gate = s->fc, *up = s->fc + H;
#pragma omp simd
        for (int i = lo; i < hi; i++) s->fc_act[i] = gate[i] / (1.0f + jl_vexpf(-gate[i])) * up[i];
    } else {
        jl_gelu_forward(s->fc_act + lo, s->fc + lo, (size_t)(hi - lo));
    }
}

/* Whether decode_one can run this token: every weight through jl_linear_vec_rows (no unmerged LoRA, our own
 * matvec kernel), the MLP gate|up halves starting on a 16-row boundary, and enough kv heads for the team. */
static int team_decode_ok(const jl_session *s, int nt) {
    const jl_config *c = &s->m->cfg;
    return !s->m->lora && jl_get_matvec_kernel() == 0 && nt <= s->team && c->n_kv_head >= nt &&
           (c->arch != JL_ARCH_LLAMA || c->hidden_dim % 16 == 0);
}

/* One token through every layer and the head in one parallel region; s->logits gets its logits. The
 * residual stream s->x is shared: o and down add into the rows each thread owns. Barriers: after attention,
 * after o, after the MLP activation, after down (four per layer). */
static void decode_one(jl_session *s, int nt) {
    const jl_model *m = s->m;
    const jl_config *c = &m->cfg;
    const size_t C = (size_t)c->dim;
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num(), n = omp_get_num_threads();
        float *xb = s->xb_team + (size_t)t * (C + 16);
        void *xq = s->xq_team ? s->xq_team + (size_t)t * s->xq_bytes : NULL;
        int g0, g1;
        share(c->n_kv_head, t, n, &g0, &g1);
        for (int l = 0; l < c->n_layer; l++) {
            const jl_layer_params *p = &m->w.layers[l];
            const layer_linears *lin = &s->layers[l];
            float *kc = s->k_cache + (size_t)l * s->cap * s->kv_dim, *vc = s->v_cache + (size_t)l * s->cap * s->kv_dim;
            norm_private(s, xb, p->ln1_w, p->ln1_b);
            attention_share(s, lin, xb, xq, kc, vc, g0, g1);
#pragma omp barrier
            rows_share(&lin->o, s->atty, s->x, xq, t, n, 1);
#pragma omp barrier
            norm_private(s, xb, p->ln2_w, p->ln2_b);
            mlp_share(s, lin, xb, xq, t, n);
#pragma omp barrier
            rows_share(&lin->down, s->fc_act, s->x, xq, t, n, 1);
#pragma omp barrier
        }
        norm_private(s, xb, m->w.lnf_w, m->w.lnf_b);
        rows_share(&s->head, xb, s->logits, xq, t, n, 0);
    }
    s->pos += 1;
}

/* Decode of one token through decode_one when the session allows it (logits in s->logits); 0 otherwise. */
static int try_decode_one(jl_session *s, const int32_t *token) {
    const jl_model *m = s->m;
    const int nt = omp_get_max_threads();
    if (!team_decode_ok(s, nt)) return 0;
    s->tokens[s->pos] = *token;
    embed(s, token, 1);
    if (m->prompt) jl_prompt_forward_at(m->prompt, s->x, s->pos, 1);
    if (m->cfg.arch == JL_ARCH_GPT2) jl_posemb_forward(s->x, m->w.wpe, 1, 1, m->cfg.dim, s->pos);
    decode_one(s, nt);
    return 1;
}

/* Logits of rows [first, n) of the last block into s->logits (row-major, padded_vocab wide). */
static void head_rows(jl_session *s, int first, int n) {
    const jl_model *m = s->m;
    const int C = m->cfg.dim, rows = n - first;
    norm(s, s->xb, s->x + (size_t)first * C, m->w.lnf_w, m->w.lnf_b, rows);
    linear(&s->head, s->xb, s->logits, rows);
}

jl_status jl_session_forward(jl_session *s, const int32_t *tokens, int n, float *all_logits, const float **last) {
    const jl_config *c = &s->m->cfg;
    if (n < 1) return jl_fail(JL_ERR_ARG, "no tokens to run");
    if (n > s->cap - s->pos)
        return jl_fail(JL_ERR_ARG, "%d tokens do not fit the context: %d of %d positions are used", n, s->pos,
                       s->cap);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return jl_fail(JL_ERR_ARG, "token %d: id %d is outside the vocabulary (%d)", i, tokens[i], c->vocab_size);
    const int V = c->vocab_size, Vp = c->padded_vocab;
    if (n == 1 && try_decode_one(s, tokens)) {
        if (all_logits) memcpy(all_logits, s->logits, (size_t)V * sizeof(float));
        if (last) *last = s->logits;
        return JL_OK;
    }
    for (int done = 0; done < n;) {
        int b = n - done < s->block ? n - done : s->block;
        memcpy(s->tokens + s->pos, tokens + done, (size_t)b * sizeof *tokens);
        forward_block(s, tokens + done, b);
        if (all_logits) {
            head_rows(s, 0, b);
            for (int i = 0; i < b; i++)
                memcpy(all_logits + (size_t)(done + i) * V, s->logits + (size_t)i * Vp, (size_t)V * sizeof(float));
        } else if (done + b == n) {
            head_rows(s, b - 1, b);
        }
        done += b;
    }
    if (last) *last = all_logits ? s->logits + (size_t)((n - 1) % s->block) * Vp : s->logits;
    return JL_OK;
}
