/* The training state a checkpoint carries so that a resumed run continues bit for bit, shared by the stages
 * that read a token stream (pretrain, distill): the options that shape the trajectory (batch, schedule,
 * AdamW), the step and the data position, as JSON in the checkpoint's train_state, next to the AdamW moments.
 * A stage adds its own trajectory-shaping numbers as extra keys (distill: temperature, alpha). */
#ifndef JL_TRAIN_TRAIN_STATE_H
#define JL_TRAIN_TRAIN_STATE_H
#include "jielong/checkpoint.h"
#include "train/stream.h"
#include "train/trainer.h"

typedef struct {
    const char *key;
    double value;
} jl_state_extra;

/* The state JSON (malloc'd; NULL when out of memory). */
char *jl_train_state_json(const char *stage, const jl_pretrain_opts *o, long step, const jl_token_stream *s,
                          const jl_state_extra *extra, int n_extra);

/* The optimizer settings of o (lr, schedule, warmup, AdamW, clipping) for jl_trainer_opts. */
void jl_train_state_optim(const jl_pretrain_opts *o, jl_optim_opts *opt);

/* Saves t's model with tok to path; with_optimizer: also the AdamW moments and the state JSON of `stage` (a
 * training checkpoint to resume from), else the model alone. */
jl_status jl_train_state_save(const char *path, const char *stage, const jl_trainer *t, const jl_tokenizer *tok,
                              const jl_pretrain_opts *o, const jl_token_stream *s, const jl_state_extra *extra,
                              int n_extra, int with_optimizer);

/* A number of a state (JL_ERR_FORMAT naming the key when it is missing or not a number). */
jl_status jl_train_state_number(const char *state, const char *key, double *out);

/* JL_OK when a state was written by `stage`; else JL_ERR_ARG naming both. */
jl_status jl_train_state_check_stage(const char *state, const char *stage);

/* Restores from training checkpoint ck (of `stage`) the AdamW moments and step into t and the data position
 * into s; ck's batch shape must be o's. */
jl_status jl_train_state_resume(const jl_checkpoint *ck, const char *stage, jl_trainer *t, jl_token_stream *s,
                                const jl_pretrain_opts *o);

#endif
