/* Quantised linear weights: built from a fp32 model (quantise at load time) or filled by the GGUF loader. */
#include "infer/qweights.h"
#include "model/model.h"
#include <stdlib.h>
#include <string.h>

int jl_qweights_n_slots(const jl_model *m) { return m->cfg.n_layer * JL_LIN_PER_LAYER + 1; }

int jl_qweights_slots(const jl_model *m, jl_qweights *qw, jl_lin_slot *slots) {
    const jl_config *c = &m->cfg;
    const int C = c->dim, A = c->n_head * jl_head_size(c);
    int n = 0;
    for (int l = 0; l < c->n_layer; l++) {
        const jl_layer_params *p = &m->w.layers[l];
        jl_qmatrix *q = qw ? qw->layer + (size_t)l * JL_LIN_PER_LAYER : NULL;
        slots[n++] = (jl_lin_slot){p->qkv_w, jl_qkv_dim(c), C, q ? q + JL_LIN_QKV : NULL};
        slots[n++] = (jl_lin_slot){p->o_w, C, A, q ? q + JL_LIN_O : NULL};
        slots[n++] = (jl_lin_slot){p->fc_w, jl_fc_dim(c), C, q ? q + JL_LIN_FC : NULL};
        slots[n++] = (jl_lin_slot){p->down_w, C, c->hidden_dim, q ? q + JL_LIN_DOWN : NULL};
    }
    slots[n++] = (jl_lin_slot){m->w.lm_head, c->padded_vocab, C, qw ? &qw->head : NULL};
    return n;
}

int jl_qweights_slot_of(const jl_model *m, int i, int64_t *row0) {
    int layer, kind;
    if (!jl_tensor_linear(m, i, &layer, &kind, row0)) return -1;
    return layer < 0 ? m->cfg.n_layer * JL_LIN_PER_LAYER : layer * JL_LIN_PER_LAYER + kind;
}

const jl_qmatrix *jl_qweights_embedding(const jl_model *m, const jl_qweights *qw) {
    if (!qw) return NULL;
    const jl_qmatrix *q = m->cfg.tie_embeddings ? &qw->head : &qw->embed; /* gpt2 is always tied */
    return q->data ? q : NULL;
}

jl_status jl_qweights_empty(const jl_model *m, jl_qweights **out) {
    *out = NULL;
    jl_qweights *qw = calloc(1, sizeof *qw);
    if (qw) qw->layer = calloc((size_t)m->cfg.n_layer * JL_LIN_PER_LAYER, sizeof *qw->layer);
    if (!qw || !qw->layer) {
        free(qw);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    qw->n_layer = m->cfg.n_layer;
    *out = qw;
    return JL_OK;
}

jl_status jl_qweights_quantize(const jl_model *m, const char *type, jl_qweights **out) {
    *out = NULL;
    jl_qtype t;
    jl_status st = jl_model_require_params(m, "quantise");
    if (st == JL_OK) st = jl_qtype_parse(type, &t);
    if (st == JL_OK && t == JL_QTYPE_F32) st = jl_fail(JL_ERR_ARG, "quantise: type must be q8_0 or q4_0, not f32");
    jl_qweights *qw = NULL;
    if (st == JL_OK) st = jl_qweights_empty(m, &qw);
    if (st != JL_OK) return st;
    const int n = jl_qweights_n_slots(m);
    jl_lin_slot *slots = malloc(sizeof *slots * (size_t)n);
    if (!slots) st = jl_fail(JL_ERR_NOMEM, "out of memory");
    if (st == JL_OK) jl_qweights_slots(m, qw, slots);
    for (int i = 0; st == JL_OK && i < n; i++) /* widths that are not whole blocks stay fp32 */
        if (slots[i].cols % JL_QK == 0) st = jl_qmatrix_from_f32(slots[i].q, t, slots[i].w, slots[i].rows, slots[i].cols);
    free(slots);
    if (st != JL_OK) {
        jl_qweights_free(qw);
        return st;
    }
    *out = qw;
    return JL_OK;
}

void jl_qweights_free(jl_qweights *qw) {
    if (!qw) return;
    for (int i = 0; i < qw->n_layer * JL_LIN_PER_LAYER; i++) jl_qmatrix_free(&qw->layer[i]);
    jl_qmatrix_free(&qw->head);
    jl_qmatrix_free(&qw->embed);
    free(qw->layer);
    free(qw);
}

size_t jl_qweights_bytes(const jl_qweights *qw) {
    size_t bytes = qw->head.rows * qw->head.row_bytes + qw->embed.rows * qw->embed.row_bytes;
    for (int i = 0; i < qw->n_layer * JL_LIN_PER_LAYER; i++) bytes += (size_t)qw->layer[i].rows * qw->layer[i].row_bytes;
    return bytes;
}

const char *jl_qweights_type(const jl_qweights *qw) {
    for (int i = 0; i < qw->n_layer * JL_LIN_PER_LAYER; i++)
        if (qw->layer[i].data) return jl_qtype_name(qw->layer[i].type);
    return qw->head.data ? jl_qtype_name(qw->head.type) : "f32";
}
