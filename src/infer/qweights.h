/* Quantised linear weights of a model, one jl_qmatrix per linear the session runs: per layer the packed qkv,
 * o, the packed MLP input ([gate; up] or c_fc) and down, plus the lm head (padded_vocab rows; rows past the
 * vocabulary are zero blocks), and an untied token embedding kept quantised (the session dequantises the rows it
 * looks up; a tied one is the head). A matrix with data == NULL stays fp32 (read from the model). */
#ifndef JL_INFER_QWEIGHTS_H
#define JL_INFER_QWEIGHTS_H
#include "infer/quant.h"
#include "jielong/generate.h"

enum { JL_LIN_QKV = 0, JL_LIN_O, JL_LIN_FC, JL_LIN_DOWN, JL_LIN_PER_LAYER };

struct jl_qweights {
    int n_layer;
    jl_qmatrix *layer; /* n_layer · JL_LIN_PER_LAYER */
    jl_qmatrix head;
    jl_qmatrix embed; /* untied token embedding (padded_vocab, dim), or data == NULL */
};

/* Where linear `slot` of layer `layer` (layer == -1: the lm head) lives in m: its fp32 weight, rows and cols. */
typedef struct {
    float *w;
    int64_t rows, cols;
    jl_qmatrix *q;
} jl_lin_slot;
int jl_qweights_slots(const jl_model *m, jl_qweights *qw, jl_lin_slot *slots); /* fills all, returns count */
int jl_qweights_n_slots(const jl_model *m);
/* The slot (index in jl_qweights_slots' order) tensor i of m is part of, and its first row there; -1 if none. */
int jl_qweights_slot_of(const jl_model *m, int i, int64_t *row0);
/* The quantised token embedding of m (the untied one, or the head when tied), or NULL when it is fp32. */
const jl_qmatrix *jl_qweights_embedding(const jl_model *m, const jl_qweights *qw);

/* An empty set (every matrix fp32) for m. */
jl_status jl_qweights_empty(const jl_model *m, jl_qweights **out);

#endif
