/* What every training stage (pretrain, distill, sft, reward, dpo, grpo, ppo) shares: the optimiser options and
 * the run options every stage's options embed (as `train`), the one event type a run reports through, and the
 * stop request a signal handler may raise. One loop (src/train/run.c) drives every stage: logging, evaluation,
 * samples, checkpoints, the NaN/skip policy, stop-after, Ctrl-C, the final save; a stage supplies its step. */
#ifndef JIELONG_TRAIN_H
#define JIELONG_TRAIN_H
#include "jielong/common.h"
#include <stdint.h>

typedef struct {
    float lr;            /* peak learning rate (0: the stage's default for the model) */
    float min_lr_frac;   /* final lr = lr · min_lr_frac (cosine, linear) */
    long warmup;         /* linear warmup steps (-1: 5% of the steps, at most 100) */
    int schedule;        /* 0 cosine, 1 linear, 2 constant */
    float beta1, beta2, eps;
    float weight_decay;  /* decoupled, 2-D weights other than embeddings */
    float grad_clip;     /* max global gradient norm (0: off) */
    int accum;           /* micro-batches per optimizer step (stages on token rows) */
    int zero;            /* under mpirun: 1 = ZeRO-1, each rank keeps and updates the AdamW moments of its 1/N of
                          * the parameters, then the parameters are all-gathered (the same bits); 0 = off */
} jl_optim_cfg;

typedef struct {
    long steps;          /* logged steps of the whole run (GRPO/PPO: rollout iterations) */
    int batch;           /* rows (pretrain, distill, sft), pairs (reward, dpo) or prompts (grpo, ppo) per step */
    uint64_t seed;       /* data order, initialisation of what is new, dropout, sampling */
    int eval_every;      /* held-out evaluation every N steps (0: see the stage) */
    int save_every;      /* training checkpoint every N steps (and at the end; 0: at the end) */
    int sample_every;    /* pretrain: greedy sample every N steps (0: off) */
    long stop_after;     /* stop after this many steps of this invocation, with a checkpoint (0: run to the end) */
    const char *out_dir; /* checkpoint.safetensors, the result, metrics.jsonl */
    const char *resume;  /* continue from this training checkpoint (NULL: a fresh run) */
    int precision;       /* of the matrix products while the run trains: 0 fp32, 1 bf16 (bf16 inputs, fp32
                          * accumulation; weights, gradients and AdamW stay fp32); default: bf16 where the CPU has
                          * bf16 dot products. Not saved in checkpoints: resume with the same one for an exact run. */
    double peak_gflops;  /* the MFU yardstick: peak GFLOP/s of that precision, measured by the caller with
                          * jl_peak_probe (≤ 0: no MFU); MFU is clipped to 1 */
} jl_run_cfg;

typedef struct {
    jl_optim_cfg optim;
    jl_run_cfg run;
} jl_stage_opts;

/* Defaults shared by the stages (each stage then sets its own: see jl_*_defaults). */
void jl_stage_opts_defaults(jl_stage_opts *o);

/* The options of jl_stage_opts a caller may have set on purpose (a mask for the resume policy). */
enum {
    JL_OPT_BATCH = 1u << 0, JL_OPT_STEPS = 1u << 1, JL_OPT_SEED = 1u << 2, JL_OPT_ACCUM = 1u << 3,
    JL_OPT_LR = 1u << 4, JL_OPT_MIN_LR_FRAC = 1u << 5, JL_OPT_WARMUP = 1u << 6, JL_OPT_SCHEDULE = 1u << 7,
    JL_OPT_BETA1 = 1u << 8, JL_OPT_BETA2 = 1u << 9, JL_OPT_EPS = 1u << 10, JL_OPT_WEIGHT_DECAY = 1u << 11,
    JL_OPT_GRAD_CLIP = 1u << 12, JL_OPT_EVAL_EVERY = 1u << 13, JL_OPT_SAVE_EVERY = 1u << 14,
    JL_OPT_SAMPLE_EVERY = 1u << 15, JL_OPT_PRECISION = 1u << 16,
};
/* The resume policy: the options saved in `saved` (a checkpoint's, see jl_stage_opts_of_checkpoint) replace the
 * fields of o not in `given`; the given ones stay, and the run refuses those that change the trajectory (batch,
 * accum, lr, schedule, AdamW, seed, precision; steps too, except pretrain and distill, which may extend a run)
 * when they differ. */
void jl_stage_opts_resume(jl_stage_opts *o, const jl_stage_opts *saved, unsigned given);
/* The options saved in a training checkpoint (model or adapter file), every field range-checked. */
jl_status jl_stage_opts_of_checkpoint(const char *path, jl_stage_opts *out);

typedef enum { JL_EV_STEP, JL_EV_EVAL, JL_EV_SAMPLE, JL_EV_SAVE, JL_EV_SKIP } jl_event_kind;

typedef struct {
    jl_event_kind kind;
    const char *stage;
    long step, total_steps;
    double loss, grad_norm, lr, tok_per_s, mfu; /* JL_EV_STEP, JL_EV_SKIP (tok_per_s, mfu: 0 when unknown) */
    double val_loss;                           /* JL_EV_EVAL: the metric "val_loss" (NAN when the stage has none) */
    int n;                                     /* the stage's own metrics of this step or evaluation */
    const char *const *keys;
    const double *values;
    const char *text;                          /* JL_EV_SAMPLE: prompt + continuation; JL_EV_SKIP: why */
    const char *path;                          /* JL_EV_SAVE */
} jl_train_event;

typedef void (*jl_event_fn)(void *user, const jl_train_event *ev);

/* Async-signal-safe: asks running training loops to stop after the step in progress, write a checkpoint of it
 * and return JL_ERR_RUNTIME ("interrupted"). signo is remembered for jl_train_stop_signal. */
void jl_train_request_stop(int signo);
/* The signal of the last stop request (0: none). */
int jl_train_stop_signal(void);

#endif
