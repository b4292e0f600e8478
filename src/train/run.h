/* The one training loop and the stage interface it drives (in the spirit of llama.cpp's llama_sampler_i).
 * A stage is built by its own constructor (setup: data, trainer, reference, heads) and then handed to
 * jl_train_run, which owns everything around a step: the output folder and its lock, metrics.jsonl (cut back
 * to the checkpoint's step on resume), the training state (common fields validated, then the stage's own),
 * evaluation / sample / checkpoint cadence, the NaN/skip policy, stop-after, a stop request (Ctrl-C), the final
 * save, and the events. */
#ifndef JL_TRAIN_RUN_H
#define JL_TRAIN_RUN_H
#include "jielong/train.h"
#include "jielong/tokenizer.h"
#include "model/lora.h"
#include "train/trainer.h"
#include <json.h>

#define JL_MAX_SKIPS_IN_A_ROW 20
#define JL_STAGE_MAX_METRICS 20

/* Named metrics a step or an evaluation adds (after the loop's own: loss, lr, grad_norm, tok_per_s, ms,
 * skipped, mfu). */
typedef struct {
    int n;
    const char *keys[JL_STAGE_MAX_METRICS];
    double values[JL_STAGE_MAX_METRICS];
} jl_metric_set;

void jl_metric_add(jl_metric_set *s, const char *key, double value);

/* What one step did. */
typedef struct {
    double loss;          /* the step's loss */
    double grad_norm;     /* before clipping (of the last update) */
    double lr;            /* of the last update */
    long tokens;          /* tokens processed, for tok/s (0: not reported) */
    double seconds;       /* wall time of the step (the loop measures it when 0) */
    const char *skipped;  /* why the update was skipped (NULL: applied) */
    jl_metric_set m;      /* the stage's own metrics */
} jl_stage_step;

typedef struct {
    const char *name;     /* "pretrain", ... : the metrics' stage and the state's "stage" */
    /* One step: its batch(es), loss, gradients and update(s). */
    jl_status (*step)(void *self, jl_stage_step *out);
    /* Held-out metrics after `step` (0: before training). NULL: the stage has none. */
    jl_status (*evaluate)(void *self, long step, jl_metric_set *out);
    /* A text sample (malloc'd). NULL: none. */
    jl_status (*sample)(void *self, char **text);
    /* The stage's own state: data position, RNGs, heads, the options that shape the trajectory. */
    jl_status (*save_state)(void *self, json_object *state);
    /* Reads (and validates) what save_state wrote; errors name the field. */
    jl_status (*restore_state)(void *self, json_object *state);
    /* The result of a finished run (model, adapter, heads): writes it into the out folder, names it in path. */
    jl_status (*save_result)(void *self, char *path, size_t size);
} jl_stage_i;

/* What trains: the trainer's parameter groups are the unfrozen model tensors, or an adapter (lora / prompt). */
typedef struct {
    jl_trainer *t;
    jl_lora *lora;        /* the trained adapter, or NULL */
    jl_prompt *prompt;    /* the trained soft prompt, or NULL */
    const jl_tokenizer *tok; /* stored in model checkpoints */
} jl_trainable;

typedef struct {
    const jl_stage_i *i;
    void *self;
    jl_trainable what;
    const jl_stage_opts *o;   /* the run's options (the stage's defaults resolved) */
    int eval_at_start;        /* evaluate at step 0 of a fresh run */
    int eval_at_end;          /* evaluate after the last step even when eval_every is 0 */
    int steps_may_change;     /* resume: --steps may differ from the checkpoint's (pretrain, distill) */
    double flops_per_step;    /* for MFU */
    int data_parallel;        /* its steps split a global batch across mpirun's ranks (jl_trainer_step does) */
    long steps_done;          /* out: steps of this invocation */
    double seconds;           /* out: their wall time */
} jl_stage;

/* Runs stage s from step 0 (or from o->run.resume) to o->run.steps. */
jl_status jl_train_run(jl_stage *s, jl_event_fn on_event, void *user);

/* ---- the training state, for stages and the CLI ---- */

/* Reads numeric field key of a state object, range-checked before any cast: JL_ERR_FORMAT naming the field
 * when missing, not a number, not finite or outside [min, max]. */
jl_status jl_state_num(json_object *j, const char *key, double min, double max, double *out);
jl_status jl_state_long(json_object *j, const char *key, long min, long max, long *out);
/* The same for a field older checkpoints lack: absent leaves *out as it is. */
jl_status jl_state_long_opt(json_object *j, const char *key, long min, long max, long *out);
/* A stage option that shapes the trajectory: saved as a number; on restore it must be the run's (JL_ERR_ARG
 * "the checkpoint was trained with KEY X, not Y"). */
void jl_state_set_fixed(json_object *j, const char *key, double value);
jl_status jl_state_check_fixed(json_object *j, const char *key, double value);
/* uint64 fields (RNG states, seeds) are decimal strings: a JSON double would round them. */
void jl_state_set_u64(json_object *j, const char *key, uint64_t v);
jl_status jl_state_u64(json_object *j, const char *key, uint64_t *out);
/* float arrays (a head and its moments) as hex of their bits, so they round-trip exactly. */
void jl_state_set_floats(json_object *j, const char *key, const float *v, size_t n);
jl_status jl_state_floats(json_object *j, const char *key, float *v, size_t n);
/* size_t arrays (data orders) as JSON integer arrays; each value must be < bound. */
void jl_state_set_indices(json_object *j, const char *key, const size_t *v, size_t n);
jl_status jl_state_indices(json_object *j, const char *key, size_t *v, size_t n, size_t bound);
/* The optimiser and run options that shape the trajectory, as saved (for the CLI to take them from a
 * checkpoint: batch, steps, schedule, AdamW ...). */
jl_status jl_state_read_opts(json_object *j, jl_stage_opts *o);
/* The state JSON of a checkpoint file (a model checkpoint or an adapter); malloc'd. */
jl_status jl_state_of_checkpoint(const char *path, char **state_json);
/* The same parsed (a JSON object, else an error naming the file); the caller puts it. */
jl_status jl_state_object_of_checkpoint(const char *path, json_object **out);

/* The optimizer options of the trainer from o (total_steps = updates of the whole run). */
void jl_optim_from_cfg(const jl_optim_cfg *c, long total_steps, jl_optim_opts *out);
/* 5% of the steps, at most 100, when warmup < 0. */
long jl_default_warmup(long warmup, long steps);

/* A model-only checkpoint of m with tok (a stage's result); with a chat format of the model's own (not NULL, not the
 * built-in one), its Jinja template and bos/eos token texts are kept in the file, so chat/serve/eval and later
 * stages render in it. */
struct jl_chat_format;
jl_status jl_save_model_file(jl_model *m, const jl_tokenizer *tok, const struct jl_chat_format *chat, const char *path);

/* A fingerprint of a model's weights (FNV-1a over the bytes), to check a resumed run has its reference. */
uint64_t jl_params_fingerprint(const float *p, size_t n);

#endif
