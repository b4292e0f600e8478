/* The one training engine every stage is a thin loop over: micro-batches → forward/backward →
 * gradient accumulation → NaN/Inf guard → global-norm clipping → AdamW with a schedule.
 * What is optimised is a list of parameter groups: the model's tensors that are not frozen, plus any extra
 * trainable blocks (adapters: LoRA, soft prompt) with their own gradient buffers. Adam moments are allocated
 * for the groups only, so a frozen model with a small adapter costs adapter-sized optimizer state.
 * All memory (activations, gradients, Adam moments, batch buffers) is allocated once in jl_trainer_new;
 * a step allocates nothing. Freeze tensors (jl_tensor_info.frozen) before jl_trainer_new. */
#ifndef JL_TRAIN_TRAINER_H
#define JL_TRAIN_TRAINER_H
#include "core/rng.h"
#include "model/model.h"
#include "train/optim.h"

/* A trainable block outside model->params: the optimizer updates param from grad (which the model's backward
 * fills, e.g. an attached adapter's gradient block). */
typedef struct {
    float *param, *grad;
    size_t n;
    int decay;  /* AdamW weight decay applies */
} jl_param_group;

/* A loss other than next-token cross-entropy (distillation, later DPO): called after a gradient-free forward
 * over tokens (B,T) with the logits (B·T, padded_vocab) kept. It must return the summed loss of the counted
 * targets (target < 0: not counted) and overwrite `logits` in place with d loss / d logits · dscale (padding
 * columns 0); backward follows. */
typedef double (*jl_loss_hook)(void *ctx, const int32_t *tokens, const int32_t *targets, int B, int T, float *logits,
                               float dscale);

typedef struct {
    int B, T;        /* micro-batch */
    int accum;       /* micro-batches per optimizer step */
    jl_optim_opts opt;
    const jl_param_group *extra; /* extra trainable blocks (copied); may be NULL */
    int n_extra;
    uint64_t seed;   /* the trainer's RNG (adapter dropout); saved by callers for exact resume */
    jl_loss_hook loss_hook; /* NULL: the fused cross-entropy of jl_model_forward */
    void *loss_ctx;
} jl_trainer_opts;

typedef struct {
    double loss;      /* mean loss over the step's counted targets (mean of micro-batch means) */
    double grad_norm; /* before clipping */
    float lr;
    long tokens;      /* tokens processed (B·T·accum) */
    long counted;     /* targets that counted in the loss */
    int skipped;      /* 1 if the update was skipped for a non-finite loss or gradient */
    double seconds;
} jl_step_stats;

/* Fills tokens(B,T) and targets(B,T) (target < 0: not in the loss) for the next micro-batch. */
typedef jl_status (*jl_batch_fn)(void *ctx, int32_t *tokens, int32_t *targets, int B, int T);

typedef struct {
    jl_model *model;          /* not owned */
    jl_trainer_opts o;
    jl_acts acts;
    float *grads;             /* n_params, laid out like the parameters; NULL when every model tensor is frozen */
    jl_params gview;          /* gradient view for backward (NULL for frozen tensors) */
    jl_param_group *groups;   /* what the optimizer updates: unfrozen model tensors, then the extra blocks */
    int n_groups;
    float *state;             /* one block: mom1 | mom2, each n_own floats */
    float *mom1, *mom2;       /* the groups' moments back to back, in group order (ZeRO-1: this rank's chunks) */
    size_t n_state;           /* trainable parameters (== n_params for a model with nothing frozen and no extras) */
    size_t n_own;             /* moments held here: n_state, or under ZeRO-1 the chunks this rank updates */
    int zero;                 /* ZeRO-1 in use (o.opt.zero and more than one rank) */
    jl_rng rng;
    int32_t *tokens, *targets;
    uint16_t *w16;            /* bf16 copy of the model's parameters, made at the start of each bf16 step (or NULL) */
    int32_t *skip_tokens, *skip_targets; /* data parallelism: where the other ranks' micro-batches are read to */
    double *micro;            /* per micro-batch: counted targets, mean loss (2·accum; gathered: 2·accum·ranks) */
    /* The all-reduce overlapped with the last micro-batch's backward (jl_dist_overlap): layer_lo[l] = offset of
     * layer l's first gradient (layer_lo[n_layer]: of what follows the layers); the groups not queued yet are
     * 0..ov_group, of which ov_group's first ov_left floats; ov_status: the first failure of a poll. */
    size_t *layer_lo;
    int ov_armed, ov_model, ov_group; /* ov_model: the groups that are the model's (the first ones) */
    size_t ov_left;
    float ov_scale;           /* each bucket is multiplied by it just before it is queued (jl_trainer_sum_begin) */
    jl_status ov_status;
    long step;                /* optimizer steps taken */
    long skipped;             /* of which skipped */
} jl_trainer;

jl_status jl_trainer_new(jl_model *m, const jl_trainer_opts *o, jl_trainer **out);
void jl_trainer_free(jl_trainer *t);
/* One optimizer step over accum micro-batches. Under mpirun (jielong/dist.h, N ranks) it is one step of a global
 * batch of accum·N micro-batches, the same as one process with accum·N: every rank reads every micro-batch in
 * the global order (so every reader's position stays identical on all ranks, and a checkpoint of rank 0 is every
 * rank's) and computes the ones of its turn (global micro-batch g = micro·N + rank); the gradients are summed
 * over the ranks (fixed order), the loss is the mean over the global micro-batches in their order. */
jl_status jl_trainer_step(jl_trainer *t, jl_batch_fn next, void *ctx, jl_step_stats *st);
/* Mean cross-entropy over n_batches micro-batches, no gradients (the loss hook is not used). Under mpirun the
 * batches are dealt round the ranks and the sums reduced. */
jl_status jl_trainer_eval(jl_trainer *t, jl_batch_fn next, void *ctx, int n_batches, double *mean_loss);
/* The pieces of a step, for stages with their own loss loop (the RL stages): zero every group's gradient; the
 * global norm over the groups; AdamW over the groups with step number t->step + 1 (t->step is not changed; under
 * ZeRO-1 each rank updates its chunks and the parameters are all-gathered: every rank calls it). */
void jl_trainer_zero_grads(jl_trainer *t);
double jl_trainer_grad_norm(const jl_trainer *t);
jl_status jl_trainer_adamw(jl_trainer *t, float lr);
/* Sums every group's gradient over the ranks (jielong/dist.h; a no-op for one process). */
jl_status jl_trainer_sum_grads(jl_trainer *t);
/* The gradient all-reduce of a stage with its own backward pass through t->acts and t->gview (reward, DPO, GRPO,
 * PPO): jl_trainer_step's mechanism. jl_trainer_sum_begin before the backward pass: when the all-reduce overlaps
 * the backward (jl_dist_overlap) the backward's grads_done hook queues each layer's buckets as soon as they are
 * complete; jl_trainer_sum_end after it: the rest queued and every sum waited for, or (not overlapped) every
 * group summed then. Either way every group's gradient becomes Σ_ranks scale·g, the same bits (each bucket is
 * scaled, then summed in the fixed ring order). Every rank calls both, also one that ran no backward pass. One
 * process: nothing happens (no scaling either). */
void jl_trainer_sum_begin(jl_trainer *t, float scale);
jl_status jl_trainer_sum_end(jl_trainer *t);
/* The whole Adam moments (n_state floats each, in group order), e.g. for a checkpoint. Without ZeRO-1, m and v
 * are t->mom1 and t->mom2 themselves. Under ZeRO-1 jl_trainer_moments_open allocates them; gather = 1 fills them
 * with every rank's chunks (a collective: every rank calls it), 0 leaves them to be filled (a loaded checkpoint)
 * and jl_trainer_moments_close(keep = 1) then takes this rank's chunks from them; close frees what open made. */
typedef struct {
    float *m, *v;
    int made;
} jl_moments;
jl_status jl_trainer_moments_open(jl_trainer *t, int gather, jl_moments *out);
void jl_trainer_moments_close(jl_trainer *t, jl_moments *mo, int keep);
/* Bytes of optimizer state (Adam moments, this rank's under ZeRO-1) and of gradient buffers the trainer
 * allocated. */
size_t jl_trainer_state_bytes(const jl_trainer *t);
size_t jl_trainer_grad_bytes(const jl_trainer *t);

#endif
