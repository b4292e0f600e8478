/* Magnitude pruning: the smallest-magnitude weights of the linear layers are set to zero.
 *   global      one magnitude threshold over all selected tensors together (layers that matter less lose more);
 *   per-tensor  the same fraction in every tensor, each with its own threshold;
 *   per-row     the same fraction in every output row (the N:M-like structure a sparse kernel can exploit).
 * Counts are exact: k = round(sparsity · n) weights per group (tensor, row, or all together), ties broken by
 * position. Norms and biases are never pruned; embeddings, positions and the LM head only on request. */
#ifndef JIELONG_PRUNE_H
#define JIELONG_PRUNE_H
#include "jielong/model.h"

typedef enum { JL_PRUNE_GLOBAL = 0, JL_PRUNE_PER_TENSOR, JL_PRUNE_PER_ROW } jl_prune_mode;

/* "global", "per-tensor", "per-row". */
const char *jl_prune_mode_name(jl_prune_mode mode);
jl_status jl_prune_mode_parse(const char *name, jl_prune_mode *out);

typedef struct {
    double sparsity;        /* fraction of the selected weights to zero, in [0, 1) */
    jl_prune_mode mode;
    int include_embeddings; /* also token/position embeddings and the LM head (real vocab rows only) */
} jl_prune_opts;

/* The kinds of tensors the report groups by. */
typedef enum {
    JL_PK_ATTN_QKV = 0, JL_PK_ATTN_OUT, JL_PK_MLP_IN, JL_PK_MLP_OUT, JL_PK_EMBEDDING, JL_PK_LM_HEAD,
    JL_PK_NORM_BIAS, JL_PK_COUNT
} jl_prune_kind;
const char *jl_prune_kind_name(jl_prune_kind kind); /* "attn_qkv", "attn_out", "mlp_in", ... */

typedef struct {
    size_t total[JL_PK_COUNT];     /* weights of each kind (real vocab rows only) */
    size_t zeros[JL_PK_COUNT];     /* of which zero after pruning */
    int selected[JL_PK_COUNT];     /* 1: this kind was pruned */
    size_t selected_total, selected_zeros; /* over the pruned kinds */
} jl_prune_report;

/* Prunes m in place. The report counts zeros after pruning (weights already zero count as pruned first). */
jl_status jl_prune(jl_model *m, const jl_prune_opts *o, jl_prune_report *report);

#endif
