/* Batched forward over N KV-cache slots (see batch.h). It mirrors the session's steps (norm → qkv → rope at each
 * row's own position → causal GQA attention against the row's slot → o → residual → norm → MLP → residual) with
 * the rows of several sequences stacked in one matrix. */
#include "infer/batch.h"
#include "core/half.h"
#include "core/kernels.h"
#include "core/vexp.h"
#include "infer/attend.h"
#include "infer/linear.h"
#include "infer/qweights.h"
#include "model/lora.h"
#include "model/model.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    jl_linear qkv, o, fc, down;
} batch_linears;

struct jl_batch {
    const jl_model *m;
    const jl_qweights *qw;
    int n_slots, cap, max_rows, kv_dim, n_threads;
    int split_rows;           /* decode steps of at least this many rows per thread split rows (0: never) */
    float *k_cache, *v_cache; /* (slots, L, cap, kv_dim) */
    int32_t *tokens;          /* (slots, cap) */
    int *pos;                 /* (slots) */
    /* activations of up to max_rows rows */
    float *x, *xb, *qkv, *atty, *fc, *fc_act, *mean, *rstd, *hx, *logits;
    float *att;               /* (threads, cap) attention scores */
    void *xq;                 /* q8_0 activations for the quantised linears */
    uint16_t *w16;            /* bf16 copy of the fp32 linear weights (jl_batch_set_precision), or NULL */
    uint16_t *x16_team;       /* per thread: bf16 activations for those products (x16_elems each) */
    size_t x16_elems;
    /* the team of a step (one parallel region): per thread a norm output (max_rows × dim), norm statistics
     * (2 × max_rows) and quantised-input scratch (xq_bytes) */
    float *xb_team, *stat_team;
    uint8_t *xq_team;
    size_t xq_bytes;
    int *row_slot, *row_pos;  /* per row: its slot and absolute position */
    int *out_rows;            /* rows whose logits are returned */
    batch_linears *layers;
    jl_linear head;
};

static float *alloc_floats(size_t n) {
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p) memset(p, 0, bytes);
    return p;
}

static int widest_input(const jl_config *c) {
    int widest = c->dim > c->hidden_dim ? c->dim : c->hidden_dim;
    return widest > c->n_head * jl_head_size(c) ? widest : c->n_head * jl_head_size(c);
}

static const jl_qmatrix *qmat(const jl_batch *b, int layer, int which) {
    if (!b->qw) return NULL;
    const jl_qmatrix *q = layer < 0 ? &b->qw->head : &b->qw->layer[(size_t)layer * JL_LIN_PER_LAYER + which];
    return q->data ? q : NULL;
}

static void bind_weights(jl_batch *b) {
    const jl_config *c = &b->m->cfg;
    const int C = c->dim, H = c->hidden_dim;
    for (int l = 0; l < c->n_layer; l++) {
        const jl_layer_params *p = &b->m->w.layers[l];
        b->layers[l].qkv = (jl_linear){p->qkv_w, p->qkv_b, C, jl_qkv_dim(c), qmat(b, l, JL_LIN_QKV), b->xq, NULL};
        b->layers[l].o = (jl_linear){p->o_w, p->o_b, c->n_head * jl_head_size(c), C, qmat(b, l, JL_LIN_O), b->xq, NULL};
        b->layers[l].fc = (jl_linear){p->fc_w, p->fc_b, C, jl_fc_dim(c), qmat(b, l, JL_LIN_FC), b->xq, NULL};
        b->layers[l].down = (jl_linear){p->down_w, p->down_b, H, C, qmat(b, l, JL_LIN_DOWN), b->xq, NULL};
    }
    b->head = (jl_linear){b->m->w.lm_head, NULL, C, c->padded_vocab, qmat(b, -1, 0), b->xq, NULL};
}

/* Every fp32 linear of the model in a fixed order (per layer qkv, o, fc, down; then the head). */
static int fp32_linears(jl_batch *b, jl_linear **out) {
    int n = 0;
    for (int l = 0; l < b->m->cfg.n_layer; l++) {
        jl_linear *ls[4] = {&b->layers[l].qkv, &b->layers[l].o, &b->layers[l].fc, &b->layers[l].down};
        for (int k = 0; k < 4; k++)
            if (!ls[k]->q) out[n++] = ls[k];
    }
    if (!b->head.q) out[n++] = &b->head;
    return n;
}

jl_status jl_batch_set_precision(jl_batch *b, jl_precision p) {
    jl_linear **ls = malloc(sizeof *ls * (size_t)(4 * b->m->cfg.n_layer + 1));
    if (!ls) return jl_fail(JL_ERR_NOMEM, "out of memory");
    const int n = fp32_linears(b, ls);
    for (int i = 0; i < n; i++) ls[i]->w16 = NULL;
    free(b->w16);
    free(b->x16_team);
    b->w16 = NULL;
    b->x16_team = NULL;
    jl_status st = JL_OK;
    if (p == JL_PREC_BF16 && n > 0) {
        size_t total = 0;
        for (int i = 0; i < n; i++) total += (size_t)ls[i]->in * (size_t)ls[i]->out;
        b->x16_elems = ((size_t)b->max_rows * (size_t)widest_input(&b->m->cfg) + 31) / 32 * 32;
        if (!jl_matmat_bf16_supported()) st = jl_fail(JL_ERR_ARG, "bf16 products need a CPU with AVX512-BF16 (and a build for it)");
        else if (!(b->w16 = malloc(total * sizeof *b->w16)) ||
                 !(b->x16_team = aligned_alloc(64, (size_t)b->n_threads * b->x16_elems * sizeof *b->x16_team)))
            st = jl_fail(JL_ERR_NOMEM, "cannot allocate the bf16 copy of the weights (%.1f MB)", 2.0 * total / 1e6);
        for (size_t i = 0, off = 0; st == JL_OK && i < (size_t)n; off += (size_t)ls[i]->in * ls[i]->out, i++) {
            jl_to_bf16(ls[i]->w, b->w16 + off, (size_t)ls[i]->in * ls[i]->out);
            ls[i]->w16 = b->w16 + off;
        }
        if (st != JL_OK) {
            free(b->w16);
            free(b->x16_team);
            b->w16 = NULL;
            b->x16_team = NULL;
        }
    }
    free(ls);
    return st;
}

/* The weights are checked by creating (and dropping) a one-position session: the same rules as jl_session_new_quant. */
static jl_status check_weights(const jl_model *m, const jl_qweights *qw) {
    jl_session *s;
    jl_status st = jl_session_new_quant(m, qw, 1, &s);
    jl_session_free(s);
    return st;
}

static int alloc_buffers(jl_batch *b) {
    const jl_config *c = &b->m->cfg;
    const size_t R = (size_t)b->max_rows, C = (size_t)c->dim, S = (size_t)b->n_slots;
    const size_t kv = S * (size_t)c->n_layer * (size_t)b->cap * (size_t)b->kv_dim;
    b->k_cache = alloc_floats(kv);
    b->v_cache = alloc_floats(kv);
    b->tokens = calloc(S * (size_t)b->cap, sizeof *b->tokens);
    b->pos = calloc(S, sizeof *b->pos);
    b->x = alloc_floats(R * C);
    b->xb = alloc_floats(R * C);
    b->hx = alloc_floats(R * C);
    b->qkv = alloc_floats(R * (size_t)jl_qkv_dim(c));
    b->atty = alloc_floats(R * (size_t)c->n_head * (size_t)jl_head_size(c));
    b->fc = alloc_floats(R * (size_t)jl_fc_dim(c));
    b->fc_act = alloc_floats(R * (size_t)c->hidden_dim);
    b->mean = alloc_floats(R);
    b->rstd = alloc_floats(R);
    b->logits = alloc_floats(R * (size_t)c->padded_vocab);
    b->att = alloc_floats((size_t)b->n_threads * (size_t)b->cap);
    b->row_slot = calloc(R, sizeof *b->row_slot);
    b->row_pos = calloc(R, sizeof *b->row_pos);
    b->out_rows = calloc(R, sizeof *b->out_rows);
    b->layers = calloc((size_t)c->n_layer, sizeof *b->layers);
    const size_t T = (size_t)b->n_threads;
    b->xb_team = alloc_floats(T * R * C);
    b->stat_team = alloc_floats(T * 2 * R);
    if (b->qw) {
        const int widest = widest_input(c);
        b->xq_bytes = (jl_qmatmul_scratch_bytes(b->max_rows, widest) + 63) / 64 * 64;
        b->xq = aligned_alloc(64, b->xq_bytes);
        b->xq_team = aligned_alloc(64, T * b->xq_bytes);
        if (!b->xq || !b->xq_team) return 0;
    }
    return b->xb_team && b->stat_team && b->k_cache && b->v_cache && b->tokens && b->pos && b->x && b->xb && b->hx && b->qkv && b->atty && b->fc &&
           b->fc_act && b->mean && b->rstd && b->logits && b->att && b->row_slot && b->row_pos && b->out_rows &&
           b->layers;
}

jl_status jl_batch_new(const jl_model *m, const jl_qweights *qw, int n_slots, int capacity, int max_rows,
                       jl_batch **out) {
    *out = NULL;
    const jl_config *c = &m->cfg;
    jl_status st = check_weights(m, qw);
    if (st != JL_OK) return st;
    if (capacity == 0) capacity = c->max_seq_len;
    if (capacity < 1 || capacity > c->max_seq_len)
        return jl_fail(JL_ERR_ARG, "context %d: must be in 1..%d (the model's context)", capacity, c->max_seq_len);
    if (n_slots < 1 || n_slots > 4096) return jl_fail(JL_ERR_ARG, "slots %d: must be in 1..4096", n_slots);
    if (max_rows < 1 || max_rows > 65536) return jl_fail(JL_ERR_ARG, "rows per step %d: must be in 1..65536", max_rows);
    jl_batch *b = calloc(1, sizeof *b);
    if (!b) return jl_fail(JL_ERR_NOMEM, "out of memory");
    *b = (jl_batch){.m = m, .qw = qw, .n_slots = n_slots, .cap = capacity, .max_rows = max_rows,
                    .kv_dim = c->n_kv_head * jl_head_size(c), .n_threads = omp_get_max_threads(),
                    .split_rows = JL_BATCH_SPLIT_DEFAULT};
    if (!alloc_buffers(b)) {
        double mb = 8.0 * n_slots * c->n_layer * (double)capacity * b->kv_dim / 1e6;
        jl_batch_free(b);
        return jl_fail(JL_ERR_NOMEM, "cannot allocate %d KV slots (%.1f MB) and activations", n_slots, mb);
    }
    bind_weights(b);
    *out = b;
    return JL_OK;
}

void jl_batch_free(jl_batch *b) {
    if (!b) return;
    float *bufs[] = {b->k_cache, b->v_cache, b->x, b->xb, b->hx, b->qkv, b->atty, b->fc, b->fc_act, b->mean,
                     b->rstd, b->logits, b->att, b->xb_team, b->stat_team};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(b->tokens);
    free(b->pos);
    free(b->row_slot);
    free(b->row_pos);
    free(b->out_rows);
    free(b->layers);
    free(b->xq);
    free(b->xq_team);
    free(b->w16);
    free(b->x16_team);
    free(b);
}

void jl_batch_set_split(jl_batch *b, int rows_per_thread) { b->split_rows = rows_per_thread > 0 ? rows_per_thread : 0; }

int jl_batch_slots(const jl_batch *b) { return b->n_slots; }
int jl_batch_capacity(const jl_batch *b) { return b->cap; }
int jl_batch_max_rows(const jl_batch *b) { return b->max_rows; }
int jl_batch_pos(const jl_batch *b, int slot) { return b->pos[slot]; }
const int32_t *jl_batch_tokens(const jl_batch *b, int slot) { return b->tokens + (size_t)slot * b->cap; }
void jl_batch_reset(jl_batch *b, int slot) { b->pos[slot] = 0; }

static float *kv_at(const jl_batch *b, float *cache, int slot, int layer);

jl_status jl_batch_copy_prefix(jl_batch *b, int from, int to, int n) {
    if (from < 0 || from >= b->n_slots || to < 0 || to >= b->n_slots || from == to)
        return jl_fail(JL_ERR_ARG, "copy from slot %d to slot %d: two different slots of %d", from, to, b->n_slots);
    if (n < 0 || n > b->pos[from])
        return jl_fail(JL_ERR_ARG, "copy of %d positions: slot %d holds %d", n, from, b->pos[from]);
    const size_t bytes = (size_t)n * b->kv_dim * sizeof(float);
    for (int l = 0; l < b->m->cfg.n_layer; l++) {
        memcpy(kv_at(b, b->k_cache, to, l), kv_at(b, b->k_cache, from, l), bytes);
        memcpy(kv_at(b, b->v_cache, to, l), kv_at(b, b->v_cache, from, l), bytes);
    }
    memcpy(b->tokens + (size_t)to * b->cap, b->tokens + (size_t)from * b->cap, sizeof *b->tokens * (size_t)n);
    b->pos[to] = n;
    return JL_OK;
}

/* ---------------------------------------------------------------- the pieces of one step */

static float *kv_at(const jl_batch *b, float *cache, int slot, int layer) {
    return cache + ((size_t)slot * b->m->cfg.n_layer + (size_t)layer) * b->cap * b->kv_dim;
}

/* Row-independent linear: our fp32 kernel, the bf16 one or the quantised product (each row quantised on its own). */
static void linear(const jl_batch *b, const jl_linear *L, const float *x, float *y, int n) {
    if (L->q) {
        jl_qmatmul(y, x, L->q, L->b, n, L->xq);
    } else if (L->w16) {
        jl_f32_to_bf16_array(x, b->x16_team, (size_t)n * L->in);
        jl_matmat_bf16(y, L->w16, b->x16_team, L->b, L->in, L->out, n);
    } else {
        jl_matmat_own(y, L->w, x, L->b, L->in, L->out, n);
    }
}

static void norm(const jl_batch *b, float *out, const float *inp, const float *w, const float *bias, int n) {
    const jl_config *c = &b->m->cfg;
    if (c->arch == JL_ARCH_LLAMA) jl_rmsnorm_forward(out, b->rstd, inp, w, n, c->dim, c->norm_eps);
    else jl_layernorm_forward(out, b->mean, b->rstd, inp, w, bias, n, c->dim, c->norm_eps);
}

/* One row's attention for one head: q against keys 0..pos of its slot (jl_attend_head, as the session's decode). */
static void attend_row_head(const jl_batch *b, int layer, int row, int h, float *att) {
    const jl_config *c = &b->m->cfg;
    const int hs = jl_head_size(c), group = c->n_head / c->n_kv_head, QKV = jl_qkv_dim(c);
    const int slot = b->row_slot[row], kvo = (h / group) * hs;
    jl_attend_head(b->qkv + (size_t)row * QKV + (size_t)h * hs, kv_at(b, b->k_cache, slot, layer) + kvo,
                   kv_at(b, b->v_cache, slot, layer) + kvo, b->kv_dim, hs, b->row_pos[row] + 1, att,
                   b->atty + (size_t)row * c->n_head * hs + (size_t)h * hs);
}

/* Appends every row's k and v to its slot, then attends (rows × heads in parallel). */
static void attention(jl_batch *b, int layer, int R) {
    const jl_config *c = &b->m->cfg;
    const int QKV = jl_qkv_dim(c), hs = jl_head_size(c), nh = c->n_head;
    for (int r = 0; r < R; r++) {
        const float *row = b->qkv + (size_t)r * QKV + (size_t)nh * hs;
        const size_t at = (size_t)b->row_pos[r] * b->kv_dim;
        memcpy(kv_at(b, b->k_cache, b->row_slot[r], layer) + at, row, (size_t)b->kv_dim * sizeof(float));
        memcpy(kv_at(b, b->v_cache, b->row_slot[r], layer) + at, row + b->kv_dim, (size_t)b->kv_dim * sizeof(float));
    }
    const int work = R * nh;
#pragma omp parallel for schedule(dynamic, 4) num_threads(b->n_threads)
    for (int i = 0; i < work; i++)
        attend_row_head(b, layer, i / nh, i % nh, b->att + (size_t)omp_get_thread_num() * b->cap);
}

/* Embeddings (+ soft prompt, + learned positions) of every item's rows at their own positions. */
static void embed(jl_batch *b, const jl_batch_item *items, int n_items) {
    const jl_model *m = b->m;
    const int C = m->cfg.dim;
    int r0 = 0;
    for (int k = 0; k < n_items; k++) {
        const jl_batch_item *it = &items[k];
        float *x = b->x + (size_t)r0 * C;
        if (m->w.wte) jl_embedding_forward(x, it->tokens, m->w.wte, it->n, C);
        else
            for (int i = 0; i < it->n; i++)
                jl_qmatrix_row_f32(jl_qweights_embedding(m, b->qw), it->tokens[i], x + (size_t)i * C);
        const int pos0 = b->pos[it->slot];
        if (m->prompt) jl_prompt_forward_at(m->prompt, x, pos0, it->n);
        if (m->cfg.arch == JL_ARCH_GPT2) jl_posemb_forward(x, m->w.wpe, 1, it->n, C, pos0);
        for (int i = 0; i < it->n; i++) {
            b->row_slot[r0 + i] = it->slot;
            b->row_pos[r0 + i] = pos0 + i;
        }
        r0 += it->n;
    }
}

/* Rope at each item's positions (the rows of an item are consecutive positions). */
static void rope(jl_batch *b, const jl_batch_item *items, int n_items) {
    const jl_config *c = &b->m->cfg;
    const int hs = jl_head_size(c), QKV = jl_qkv_dim(c);
    int r0 = 0;
    for (int k = 0; k < n_items; k++) {
        float *q = b->qkv + (size_t)r0 * QKV;
        const int pos0 = b->pos[items[k].slot];
        jl_rope_forward(q, b->m->rope_table, 1, items[k].n, c->n_head, hs, QKV, pos0);
        jl_rope_forward(q + c->n_head * hs, b->m->rope_table, 1, items[k].n, c->n_kv_head, hs, QKV, pos0);
        r0 += items[k].n;
    }
}

static void lora_add(const jl_batch *b, int layer, jl_lora_out kind, float *out, int ld, const float *in, int n) {
    if (b->m->lora) jl_lora_forward(b->m->lora, layer, kind, out, ld, in, n);
}

static void layer_forward(jl_batch *b, const jl_batch_item *items, int n_items, int l, int R) {
    const jl_config *c = &b->m->cfg;
    const jl_layer_params *p = &b->m->w.layers[l];
    const batch_linears *lin = &b->layers[l];
    const int C = c->dim, QKV = jl_qkv_dim(c), H = c->hidden_dim;
    const size_t nC = (size_t)R * C;
    norm(b, b->xb, b->x, p->ln1_w, p->ln1_b, R);
    linear(b, &lin->qkv, b->xb, b->qkv, R);
    lora_add(b, l, JL_LORA_OUT_QKV, b->qkv, QKV, b->xb, R);
    if (c->arch == JL_ARCH_LLAMA) rope(b, items, n_items);
    attention(b, l, R);
    linear(b, &lin->o, b->atty, b->xb, R);
    lora_add(b, l, JL_LORA_OUT_O, b->xb, C, b->atty, R);
    jl_residual_forward(b->x, b->x, b->xb, nC);
    norm(b, b->xb, b->x, p->ln2_w, p->ln2_b, R);
    linear(b, &lin->fc, b->xb, b->fc, R);
    lora_add(b, l, JL_LORA_OUT_FC, b->fc, jl_fc_dim(c), b->xb, R);
    if (c->arch == JL_ARCH_LLAMA) jl_swiglu_forward(b->fc_act, b->fc, R, H);
    else jl_gelu_forward(b->fc_act, b->fc, (size_t)R * H);
    linear(b, &lin->down, b->fc_act, b->xb, R);
    lora_add(b, l, JL_LORA_OUT_DOWN, b->xb, C, b->fc_act, R);
    jl_residual_forward(b->x, b->x, b->xb, nC);
}

/* ---------------------------------------------------------------- the step as one parallel region */

/* [lo, hi) of n units for member t of a team of nt: contiguous, sizes differing by at most one unit. */
static void share(int n, int t, int nt, int *lo, int *hi) {
    *lo = (int)((long)n * t / nt);
    *hi = (int)((long)n * (t + 1) / nt);
}

/* Outputs [lo, hi) of a linear for all R rows: y (R, L->out) gets W·x + b, added to y when accumulate (the
 * residual). A quantised or bf16 linear reads x from its scratch, where prepare_input put it. */
typedef struct {
    void *xq;      /* q8_0 activations (quantised linears) */
    uint16_t *x16; /* bf16 activations (bf16 products) */
} input_scratch;

static void linear_rows(const jl_linear *L, const float *x, const input_scratch *in, float *y, int R, int lo, int hi,
                        int accumulate) {
    if (L->q) jl_qmatmul_rows(y, in->xq, L->q, L->b, R, lo, hi, accumulate);
    else if (L->w16) jl_matmat_bf16_rows(y, L->w16, in->x16, L->b, L->in, L->out, R, lo, hi, accumulate);
    else jl_matmat_rows(y, L->w, x, L->b, L->in, L->out, R, lo, hi, accumulate);
}

/* R rows of x as q8_0 (quantised linear) or bf16 (bf16 products) into this thread's scratch. */
static void prepare_input(const jl_linear *L, const float *x, int R, const input_scratch *in) {
    if (L->q) jl_qmatmul_quantize(x, R, L->in, in->xq);
    else if (L->w16) jl_f32_to_bf16_array(x, in->x16, (size_t)R * L->in);
}

/* This thread's outputs of a linear (units of 16: whole groups of the quantised layout, whole fours of the fp32
 * kernel) for all R rows. */
static void linear_share(const jl_linear *L, const float *x, float *y, int R, const input_scratch *xq, int t, int nt,
                         int accumulate) {
    int lo, hi;
    share((L->out + 15) / 16, t, nt, &lo, &hi);
    lo *= 16;
    hi = hi * 16 < L->out ? hi * 16 : L->out;
    if (lo >= hi) return;
    prepare_input(L, x, R, xq);
    linear_rows(L, x, xq, y, R, lo, hi, accumulate);
}

/* Norm of R rows of inp into this thread's own out (every thread computes the same rows: no barrier). */
static void norm_private(const jl_batch *b, float *out, float *stat, const float *inp, const float *w,
                         const float *bias, int R) {
    const jl_config *c = &b->m->cfg;
    if (c->arch == JL_ARCH_LLAMA) jl_rmsnorm_forward(out, stat, inp, w, R, c->dim, c->norm_eps);
    else jl_layernorm_forward(out, stat + R, stat, inp, w, bias, R, c->dim, c->norm_eps);
}

/* Row r, kv head g: rope of its query heads and key head at the row's position, its k and v into the slot's cache. */
static void rope_append_unit(jl_batch *b, int layer, int r, int g) {
    const jl_config *c = &b->m->cfg;
    const int hs = jl_head_size(c), group = c->n_head / c->n_kv_head, QKV = jl_qkv_dim(c), kq = c->n_head * hs;
    const int pos = b->row_pos[r];
    float *row = b->qkv + (size_t)r * QKV;
    if (c->arch == JL_ARCH_LLAMA) {
        jl_rope_forward(row + (size_t)g * group * hs, b->m->rope_table, 1, 1, group, hs, QKV, pos);
        jl_rope_forward(row + kq + (size_t)g * hs, b->m->rope_table, 1, 1, 1, hs, QKV, pos);
    }
    const size_t at = (size_t)pos * b->kv_dim + (size_t)g * hs;
    memcpy(kv_at(b, b->k_cache, b->row_slot[r], layer) + at, row + kq + (size_t)g * hs, (size_t)hs * sizeof(float));
    memcpy(kv_at(b, b->v_cache, b->row_slot[r], layer) + at, row + kq + b->kv_dim + (size_t)g * hs,
           (size_t)hs * sizeof(float));
}

/* Units (row, kv head) [u0, u1) of rope_append_unit. */
static void rope_append(jl_batch *b, int layer, int u0, int u1) {
    const int nkv = b->m->cfg.n_kv_head;
    for (int u = u0; u < u1; u++) rope_append_unit(b, layer, u / nkv, u % nkv);
}

/* kv heads [g0, g1) for all R rows: their qkv outputs (the query heads', the key and the value rows), rope, cache
 * append, then the attention of their query heads, rows in order. All a kv head's attention reads (its rows' k and
 * v, earlier rows of the same slot included) this thread wrote itself: no barrier between projection and
 * attention, as in the session's decode. Needs hs a multiple of 16 (whole groups of the quantised layout). */
static void attention_share(jl_batch *b, int layer, const jl_linear *qkv, const float *xb, const input_scratch *xq,
                            int R, int g0, int g1, float *att) {
    const jl_config *c = &b->m->cfg;
    const int hs = jl_head_size(c), group = c->n_head / c->n_kv_head, kq = c->n_head * hs, vq = kq + b->kv_dim;
    if (g0 >= g1) return;
    prepare_input(qkv, xb, R, xq);
    linear_rows(qkv, xb, xq, b->qkv, R, g0 * group * hs, g1 * group * hs, 0);
    linear_rows(qkv, xb, xq, b->qkv, R, kq + g0 * hs, kq + g1 * hs, 0);
    linear_rows(qkv, xb, xq, b->qkv, R, vq + g0 * hs, vq + g1 * hs, 0);
    for (int r = 0; r < R; r++)
        for (int g = g0; g < g1; g++) rope_append_unit(b, layer, r, g);
    for (int r = 0; r < R; r++)
        for (int h = g0 * group; h < g1 * group; h++) attend_row_head(b, layer, r, h, att);
}

/* The MLP's hidden units [lo, hi) of rows [r0, r0 + n): the fused gate|up (or fc) rows, then the activation. */
static void mlp_rows(jl_batch *b, const batch_linears *lin, const float *xb, const input_scratch *xq, int r0, int n,
                     int lo, int hi) {
    const jl_config *c = &b->m->cfg;
    const int H = c->hidden_dim, F = jl_fc_dim(c);
    float *fc = b->fc + (size_t)r0 * F;
    prepare_input(&lin->fc, xb, n, xq);
    linear_rows(&lin->fc, xb, xq, fc, n, lo, hi, 0);
    if (c->arch == JL_ARCH_LLAMA) linear_rows(&lin->fc, xb, xq, fc, n, H + lo, H + hi, 0);
    for (int r = 0; r < n; r++) {
        const float *f = fc + (size_t)r * F;
        float *act = b->fc_act + (size_t)(r0 + r) * H;
        if (c->arch == JL_ARCH_LLAMA) {
#pragma omp simd
            for (int i = lo; i < hi; i++) act[i] = f[i] / (1.0f + jl_vexpf(-f[i])) * f[H + i];
        } else {
            jl_gelu_forward(act + lo, f + lo, (size_t)(hi - lo));
        }
    }
}

/* The MLP's hidden units of this thread's share (units of 16) for all R rows. */
static void mlp_share(jl_batch *b, const batch_linears *lin, const float *xb, const input_scratch *xq, int R, int t,
                      int nt) {
    const int H = b->m->cfg.hidden_dim;
    int lo, hi;
    share((H + 15) / 16, t, nt, &lo, &hi);
    lo *= 16;
    hi = hi * 16 < H ? hi * 16 : H;
    if (lo < hi) mlp_rows(b, lin, xb, xq, 0, R, lo, hi);
}

/* Whether the step can run as one parallel region: no unmerged LoRA (its products have their own threads),
 * the MLP gate|up halves starting on a 16-row boundary. */
static int team_ok(const jl_batch *b) {
    const jl_config *c = &b->m->cfg;
    return !b->m->lora && (c->arch != JL_ARCH_LLAMA || c->hidden_dim % 16 == 0);
}

/* All outputs of a linear for n rows: y (n, L->out) gets W·x + b (+ y when accumulate). */
static void linear_all(const jl_linear *L, const float *x, float *y, int n, const input_scratch *xq, int accumulate) {
    prepare_input(L, x, n, xq);
    linear_rows(L, x, xq, y, n, 0, L->out, accumulate);
}

/* Rows [r0, r0 + n) through every layer and their share of the head, on this thread alone: it owns those rows of
 * every activation (x, qkv, atty, fc, the logits of the rows among out_rows), so no barrier is needed. Each row
 * is its own slot's only row (a decode step), so its attention reads only what this thread appended. */
static void forward_rows(jl_batch *b, int r0, int n, int n_out, float *xb, float *stat, const input_scratch *xq,
                         float *att) {
    const jl_model *m = b->m;
    const jl_config *c = &m->cfg;
    const size_t C = (size_t)c->dim, QKV = (size_t)jl_qkv_dim(c), A = (size_t)c->n_head * jl_head_size(c);
    const size_t H = (size_t)c->hidden_dim;
    float *x = b->x + r0 * C;
    for (int l = 0; l < c->n_layer; l++) {
        const jl_layer_params *p = &m->w.layers[l];
        const batch_linears *lin = &b->layers[l];
        norm_private(b, xb, stat, x, p->ln1_w, p->ln1_b, n);
        linear_all(&lin->qkv, xb, b->qkv + r0 * QKV, n, xq, 0);
        for (int r = r0; r < r0 + n; r++)
            for (int g = 0; g < c->n_kv_head; g++) rope_append_unit(b, l, r, g);
        for (int r = r0; r < r0 + n; r++)
            for (int h = 0; h < c->n_head; h++) attend_row_head(b, l, r, h, att);
        linear_all(&lin->o, b->atty + r0 * A, x, n, xq, 1);
        norm_private(b, xb, stat, x, p->ln2_w, p->ln2_b, n);
        mlp_rows(b, lin, xb, xq, r0, n, 0, c->hidden_dim);
        linear_all(&lin->down, b->fc_act + r0 * H, x, n, xq, 1);
    }
    int i0 = 0, i1;
    while (i0 < n_out && b->out_rows[i0] < r0) i0++;
    for (i1 = i0; i1 < n_out && b->out_rows[i1] < r0 + n; i1++) /* out_rows ascend: this thread's are [i0, i1) */
        memcpy(xb + (size_t)(i1 - i0) * C, b->x + (size_t)b->out_rows[i1] * C, sizeof(float) * C);
    if (i1 == i0) return;
    norm_private(b, xb, stat, xb, m->w.lnf_w, m->w.lnf_b, i1 - i0);
    linear_all(&b->head, xb, b->logits + (size_t)i0 * c->padded_vocab, i1 - i0, xq, 0);
}

/* This thread's share of every layer and the head over R rows (n_out of them gathered for the head), split by
 * outputs, inside forward_team's region. The residual b->x is shared: o and down add into the outputs each thread
 * owns. Barriers per layer: after attention (each thread projects, ropes and attends its own kv heads:
 * attention_share), after o, after the MLP, after down — four, as in the session's decode. Where hs is no multiple
 * of 16, qkv is split by outputs instead, with a barrier after it and one after the cache append when a slot takes
 * several rows. */
static void forward_outputs(jl_batch *b, int R, int multi, int n_out, int t, int n, float *xb, float *stat,
                            const input_scratch *xq, float *att) {
    const jl_model *m = b->m;
    const jl_config *c = &m->cfg;
    const int fused = jl_head_size(c) % 16 == 0 && c->n_kv_head >= n;
    const size_t C = (size_t)c->dim;
    const int units = R * c->n_kv_head, group = c->n_head / c->n_kv_head;
    int u0, u1, g0, g1;
    share(units, t, n, &u0, &u1);
    share(c->n_kv_head, t, n, &g0, &g1);
    for (int l = 0; l < c->n_layer; l++) {
        const jl_layer_params *p = &m->w.layers[l];
        const batch_linears *lin = &b->layers[l];
        norm_private(b, xb, stat, b->x, p->ln1_w, p->ln1_b, R);
        if (fused) {
            attention_share(b, l, &lin->qkv, xb, xq, R, g0, g1, att);
        } else {
            linear_share(&lin->qkv, xb, b->qkv, R, xq, t, n, 0);
#pragma omp barrier
            rope_append(b, l, u0, u1);
            if (multi) {
#pragma omp barrier
            }
            for (int u = u0; u < u1; u++)
                for (int h = (u % c->n_kv_head) * group; h < (u % c->n_kv_head + 1) * group; h++)
                    attend_row_head(b, l, u / c->n_kv_head, h, att);
        }
#pragma omp barrier
        linear_share(&lin->o, b->atty, b->x, R, xq, t, n, 1);
#pragma omp barrier
        norm_private(b, xb, stat, b->x, p->ln2_w, p->ln2_b, R);
        mlp_share(b, lin, xb, xq, R, t, n);
#pragma omp barrier
        linear_share(&lin->down, b->fc_act, b->x, R, xq, t, n, 1);
#pragma omp barrier
    }
    if (n_out > 0) {
        for (int i = 0; i < n_out; i++) /* each thread gathers the rows into its own buffer */
            memcpy(xb + (size_t)i * C, b->x + (size_t)b->out_rows[i] * C, sizeof(float) * C);
        norm_private(b, xb, stat, xb, m->w.lnf_w, m->w.lnf_b, n_out);
        linear_share(&b->head, xb, b->logits, n_out, xq, t, n, 0);
    }
}

/* Every layer and the head over R rows in one parallel region: a decode step of at least split_rows rows per
 * thread (jl_batch_set_split) splits the rows between the threads (forward_rows: each thread the whole model for
 * its rows, no barrier, every thread reading all the weights), any other step the outputs of every product
 * (forward_outputs: four barriers per layer). Either way each row goes through the same kernels, so its result
 * does not change. */
static void forward_team(jl_batch *b, int R, int multi, int n_out) {
    const int by_rows = !multi && b->split_rows > 0 && R >= b->split_rows * b->n_threads;
    const size_t C = (size_t)b->m->cfg.dim;
#pragma omp parallel num_threads(b->n_threads)
    {
        const int t = omp_get_thread_num(), n = omp_get_num_threads();
        float *xb = b->xb_team + (size_t)t * b->max_rows * C, *stat = b->stat_team + (size_t)t * 2 * b->max_rows;
        const input_scratch in = {b->xq_team ? b->xq_team + (size_t)t * b->xq_bytes : NULL,
                                  b->x16_team ? b->x16_team + (size_t)t * b->x16_elems : NULL};
        float *att = b->att + (size_t)t * b->cap;
        if (by_rows) {
            int r0, r1;
            share(R, t, n, &r0, &r1);
            if (r0 < r1) forward_rows(b, r0, r1 - r0, n_out, xb, stat, &in, att);
        } else {
            forward_outputs(b, R, multi, n_out, t, n, xb, stat, &in, att);
        }
    }
}

static jl_status check_items(const jl_batch *b, const jl_batch_item *items, int n_items, int *rows) {
    const int V = b->m->cfg.vocab_size;
    int R = 0;
    for (int k = 0; k < n_items; k++) {
        const jl_batch_item *it = &items[k];
        if (it->slot < 0 || it->slot >= b->n_slots) return jl_fail(JL_ERR_ARG, "item %d: slot %d out of range", k, it->slot);
        for (int j = 0; j < k; j++)
            if (items[j].slot == it->slot) return jl_fail(JL_ERR_ARG, "item %d: slot %d appears twice", k, it->slot);
        if (it->n < 1 || it->n > b->cap - b->pos[it->slot])
            return jl_fail(JL_ERR_ARG, "item %d: %d tokens do not fit slot %d (%d of %d positions used)", k, it->n,
                           it->slot, b->pos[it->slot], b->cap);
        for (int i = 0; i < it->n; i++)
            if (it->tokens[i] < 0 || it->tokens[i] >= V)
                return jl_fail(JL_ERR_ARG, "item %d: token id %d is outside the vocabulary (%d)", k, it->tokens[i], V);
        R += it->n;
    }
    if (R < 1 || R > b->max_rows) return jl_fail(JL_ERR_ARG, "%d rows in one step: must be in 1..%d", R, b->max_rows);
    *rows = R;
    return JL_OK;
}

jl_status jl_batch_forward(jl_batch *b, const jl_batch_item *items, int n_items, const float **logits, int *ld) {
    const jl_model *m = b->m;
    const jl_config *c = &m->cfg;
    int R = 0;
    jl_status st = check_items(b, items, n_items, &R);
    if (st != JL_OK) return st;
    embed(b, items, n_items);
    const int team = team_ok(b);
    if (!team)
        for (int l = 0; l < c->n_layer; l++) layer_forward(b, items, n_items, l, R);
    /* the rows whose logits are asked for, then one head product over them */
    int n_out = 0, r0 = 0, multi = 0;
    for (int k = 0; k < n_items; k++) {
        const jl_batch_item *it = &items[k];
        multi |= it->n > 1;
        if (it->logits == JL_BATCH_LOGITS_LAST) b->out_rows[n_out++] = r0 + it->n - 1;
        else if (it->logits == JL_BATCH_LOGITS_ALL)
            for (int i = 0; i < it->n; i++) b->out_rows[n_out++] = r0 + i;
        r0 += it->n;
    }
    if (team) forward_team(b, R, multi, n_out);
    for (int k = 0; k < n_items; k++) {
        const jl_batch_item *it = &items[k];
        memcpy(b->tokens + (size_t)it->slot * b->cap + b->pos[it->slot], it->tokens, sizeof *it->tokens * (size_t)it->n);
        b->pos[it->slot] += it->n;
    }
    const int C = c->dim;
    if (!team && n_out > 0) {
        for (int i = 0; i < n_out; i++) memcpy(b->hx + (size_t)i * C, b->x + (size_t)b->out_rows[i] * C, sizeof(float) * C);
        norm(b, b->xb, b->hx, m->w.lnf_w, m->w.lnf_b, n_out);
        linear(b, &b->head, b->xb, b->logits, n_out);
    }
    *logits = b->logits;
    *ld = c->padded_vocab;
    return JL_OK;
}
