/* Pretraining by next-token prediction on token streams, with periodic held-out loss, greedy samples,
 * metrics and checkpoints that resume bit for bit (a stage of the one training loop, jielong/train.h).
 * The library reports through a callback and never prints. */
#ifndef JIELONG_PRETRAIN_H
#define JIELONG_PRETRAIN_H
#include "jielong/checkpoint.h"
#include "jielong/data.h"
#include "jielong/model.h"
#include "jielong/tokenizer.h"
#include "jielong/train.h"

typedef struct {
    jl_stage_opts train;    /* run.batch rows of T tokens, optim.accum micro-batches per step; run.seed initialises
                             * (the caller's jl_model_init) */
    int T;
    int data_order;         /* jl_data_order (include/jielong/data.h); run.seed names the shuffled order */
    int eval_batches;       /* held-out loss every run.eval_every steps over this many batches (0 = off) */
    int sample_tokens;      /* greedy continuation of sample_prompt every run.sample_every steps */
    const char *sample_prompt;
} jl_pretrain_opts;

void jl_pretrain_defaults(jl_pretrain_opts *o);

/* Trains m in place. With o->train.run.resume (a training checkpoint of the same model) continues from its
 * state: step, data position and AdamW moments; batch, T and accum must match. tok is stored in the checkpoints
 * and decodes samples. */
jl_status jl_pretrain(jl_model *m, const jl_tokenizer *tok, const jl_tokens *train, const jl_tokens *val,
                      const jl_pretrain_opts *o, jl_event_fn on_event, void *user);

/* Reads the options that shape the trajectory (batch, T, accum, steps, lr, schedule, AdamW, seed) saved in a
 * training checkpoint's state into o (other fields untouched); every field range-checked. */
jl_status jl_pretrain_opts_from_state(const char *state_json, jl_pretrain_opts *o);

#endif
