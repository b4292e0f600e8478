/* Quantised linear weights of a model, one jl_qmatrix per linear the session runs: per layer the packed qkv,
 * o, the packed MLP input ([gate; up] or c_fc) and down, plus the lm head (padded_vocab rows; rows past the
 * vocabulary are zero blocks). A matrix with data == NULL stays fp32 (read from the model). */
#ifndef JL_INFER_QWEIGHTS_H
#define JL_INFER_QWEIGHTS_H
#include "infer/quant.h"
#include "jielong/generate.h"

enum { JL_LIN_QKV = 0, JL_LIN_O, JL_LIN_FC, JL_LIN_DOWN, JL_LIN_PER_LAYER };

struct jl_qweights {
    int n_layer;
    jl_qmatrix *layer; /* n_layer · JL_LIN_PER_LAYER */
    jl_qmatrix head;
};

/* Where linear `slot` of layer `layer` (layer == -1: the lm head) lives in m: its fp32 weight, rows and cols. */
typedef struct {
    float *w;
    int64_t rows, cols;
    jl_qmatrix *q;
} jl_lin_slot;
int jl_qweights_slots(const jl_model *m, jl_qweights *qw, jl_lin_slot *slots); /* fills all, returns count */
int jl_qweights_n_slots(const jl_model *m);

/* An empty set (every matrix fp32) for m. */
jl_status jl_qweights_empty(const jl_model *m, jl_qweights **out);

#endif
