/* Batched inference: N KV-cache slots over one model, and ONE forward pass per step over the new tokens of
 * every sequence that takes part (decode tokens and prefill chunks side by side as the rows of one matrix), so
 * every weight is read once per step for all of them (matrix-matrix products; for q8_0/q4_0 jl_qmatmul runs
 * each 16-row weight group against all rows while it is in cache).
 *
 * Every row is computed by the same code whatever the other rows are: the fp32 linear is our own kernel whose
 * per-output sums run in the same order as jl_matvec_own (4×4 register tiles of weight rows × activation rows),
 * the quantised one quantises each row on its own, attention runs row by row against the slot's cache. So a
 * sequence's logits, and its sampled text, do not depend on the batch it ran in nor on how its prompt was
 * chunked (tests/test_batch.c checks it bit for bit). */
#ifndef JL_INFER_BATCH_H
#define JL_INFER_BATCH_H
#include "core/kernels.h"
#include "jielong/generate.h"

typedef struct jl_batch jl_batch;

/* n_slots sequences of `capacity` positions each (0 = the model's context) over m and, when not NULL, its
 * quantised weights qw (both borrowed); at most max_rows tokens per forward. */
jl_status jl_batch_new(const jl_model *m, const jl_qweights *qw, int n_slots, int capacity, int max_rows,
                       jl_batch **out);
void jl_batch_free(jl_batch *b);
int jl_batch_slots(const jl_batch *b);
int jl_batch_capacity(const jl_batch *b);
int jl_batch_max_rows(const jl_batch *b);
int jl_batch_pos(const jl_batch *b, int slot);                /* positions filled in slot */
const int32_t *jl_batch_tokens(const jl_batch *b, int slot);  /* its tokens */
void jl_batch_reset(jl_batch *b, int slot);                   /* empties the slot */
/* Slot `to` becomes the first n positions of slot `from` (their keys and values in every layer, their tokens):
 * a prompt prefilled once serves several sequences. 0 < n ≤ the positions filled in from; from ≠ to. */
jl_status jl_batch_copy_prefix(jl_batch *b, int from, int to, int n);

/* The precision of the fp32 weights' products (quantised ones keep theirs): fp32 (the default: each row equals
 * the session's decode bit for bit) or bf16 (a bf16 copy of those weights, made here, half their size; activations
 * rounded to bf16, fp32 sums: about twice the rows per second at 16 rows, logits within bf16 rounding of fp32).
 * Either way a row's result does not depend on the other rows. bf16 needs AVX512-BF16 (else JL_ERR_ARG). */
jl_status jl_batch_set_precision(jl_batch *b, jl_precision p);

/* How a step's work is shared by the threads: a decode step (one row per item) with at least rows_per_thread rows
 * per thread gives each thread whole rows (the whole model for its rows, no barrier, each thread reading all the
 * weights); other steps, and every step when rows_per_thread is 0, give each thread a share of every product's
 * outputs (four barriers per layer). Results are the same bit for bit either way. Default JL_BATCH_SPLIT_DEFAULT
 * (0: the row split cost ~20% more CPU per 16-row step on the loaded machine, docs/DESIGN.md). */
#define JL_BATCH_SPLIT_DEFAULT 0
void jl_batch_set_split(jl_batch *b, int rows_per_thread);

/* Logits a forward returns for an item. */
enum { JL_BATCH_LOGITS_NONE = 0, JL_BATCH_LOGITS_LAST, JL_BATCH_LOGITS_ALL };

typedef struct {
    int slot;
    const int32_t *tokens; /* n tokens appended at the slot's next positions */
    int n;
    int logits;            /* JL_BATCH_LOGITS_* */
} jl_batch_item;

/* Runs every item's tokens in one pass (Σ n ≤ max_rows, each slot at most once, each fitting its slot).
 * *logits receives rows of *ld floats (the first vocab_size valid): per item in order, none, its last
 * token's row or one row per token; valid until the next call. */
jl_status jl_batch_forward(jl_batch *b, const jl_batch_item *items, int n_items, const float **logits, int *ld);

/* fp32 y(R, out) = x(R, in)·Wᵀ + b, each row bit-identical to jl_matvec_own(y_r, w, x_r, b, in, out). */
void jl_matmat_own(float *y, const float *w, const float *x, const float *b, int in, int out, int R);
/* Outputs [o0, o1) of it for all R rows on the calling thread (no OpenMP; o0 a multiple of 4), added to y when
 * accumulate: y = (y + x·w) + b, jl_matvec_rows's order, so one row equals jl_matvec_rows's result. */
void jl_matmat_rows(float *y, const float *w, const float *x, const float *b, int in, int out, int R, int o0, int o1,
                    int accumulate);

/* bf16 products, row by row as jl_matmat_rows: w16 (out, in) and x16 (R, in) in bf16, fp32 accumulation
 * (vdpbf16ps over 32-column chunks, one 16-lane reduction, the scalar tail). Every output is summed by the same
 * operations whatever R and the row's place, so a row's result never depends on the batch. */
void jl_matmat_bf16_rows(float *y, const uint16_t *w16, const uint16_t *x16, const float *b, int in, int out, int R,
                         int o0, int o1, int accumulate);
/* All outputs of it for R rows, split across the OpenMP threads. */
void jl_matmat_bf16(float *y, const uint16_t *w16, const uint16_t *x16, const float *b, int in, int out, int R);
/* Whether this build and CPU have bf16 dot products (AVX512-BF16), which the bf16 products need. */
int jl_matmat_bf16_supported(void);

#endif
