/* What every training command shares: one flag table for the options of jielong/train.h (written straight into
 * the stage's options, defaults shown from them, a given/not-given mask instead of sentinel values), resume
 * (the checkpoint's trajectory-shaping options for the flags not given), one progress view fed by the one
 * event type, and Ctrl-C / SIGTERM (a checkpoint of the last finished step, exit 130 / 143). */
#ifndef JL_CLI_TRAIN_CLI_H
#define JL_CLI_TRAIN_CLI_H
#include "cli/args.h"
#include "cli/precision.h"
#include "cli/progress.h"
#include "jielong/train.h"

/* The optimiser flags. */
#define CLI_OPTIM_FLAGS(t)                                                                                        \
    {"lr", OPT_F32, &(t).optim.lr, "peak learning rate (0: chosen for the model by the stage)", 0, 10, 0},       \
    {"min-lr-frac", OPT_F32, &(t).optim.min_lr_frac, "final lr as a fraction of the peak", 0, 1, 0},             \
    {"warmup", OPT_INT, &(t).optim.warmup, "warmup steps (-1: 5% of the steps, at most 100)", -1, 1L << 40, 0},   \
    {"schedule", OPT_SCHED, &(t).optim.schedule, "learning-rate schedule: cosine, linear or constant", NO_RANGE, 0}, \
    {"beta1", OPT_F32, &(t).optim.beta1, "AdamW beta1", 0, 0.99999, 0},                                          \
    {"beta2", OPT_F32, &(t).optim.beta2, "AdamW beta2", 0, 0.99999, 0},                                          \
    {"weight-decay", OPT_F32, &(t).optim.weight_decay, "AdamW decoupled weight decay", 0, 10, 0},                \
    {"grad-clip", OPT_F32, &(t).optim.grad_clip, "clip the global gradient norm (0 = off)", 0, 1e6, 0},          \
    {"zero", OPT_I32, &(t).optim.zero, "under mpirun: 1 = ZeRO-1, AdamW moments sharded across the ranks (memory " \
     "per rank ÷ N, the same result); 0 = off", 0, 1, 0}

/* The run flags (the batch's meaning is the stage's: batch_help). */
#define CLI_RUN_FLAGS(t, threads, batch_help)                                                                     \
    {"out|output", OPT_STR, &(t).run.out_dir, "output folder: checkpoint.safetensors, the result, metrics.jsonl", \
     NO_RANGE, 1},                                                                                                \
    {"batch-size", OPT_I32, &(t).run.batch, batch_help, 1, 4096, 0},                                             \
    {"steps", OPT_INT, &(t).run.steps, "steps of the whole run", 1, 1L << 40, 0},                                \
    {"seed", OPT_U64, &(t).run.seed, "seed of data order, initialisation of what is new, dropout and sampling",    \
     NO_RANGE, 0},                                                                                                \
    {"eval-every", OPT_I32, &(t).run.eval_every, "held-out evaluation every N steps", 0, 1 << 30, 0},           \
    {"save-every", OPT_I32, &(t).run.save_every, "training checkpoint every N steps (and at the end)", 0, 1 << 30, 0}, \
    {"stop-after", OPT_INT, &(t).run.stop_after, "stop after N steps of this run, with a checkpoint for --resume", \
     1, 1L << 40, 0},                                                                                             \
    {"resume", OPT_STR_OPT, &(t).run.resume, "continue a run exactly where it stopped, from this training "       \
     "checkpoint (default: --out's checkpoint.safetensors)", NO_RANGE, 0},                                       \
    {"threads", OPT_I32, &(threads), "OpenMP threads (0: all cores)", 0, 1024, 0},                             \
    {"precision", OPT_PREC, &(t).run.precision, CLI_PRECISION_HELP, NO_RANGE, 0}

/* Micro-batches per step (the stages on token rows). */
#define CLI_ACCUM_FLAG(t) {"accum", OPT_I32, &(t).optim.accum, "micro-batches per optimizer step", 1, 65536, 0}

/* After parsing: --threads, --resume "" → OUT/checkpoint.safetensors, the SIGINT/SIGTERM handlers. */
void cli_train_prepare(jl_stage_opts *t, int threads, char *resume_buf, size_t size);
/* On resume: the saved trajectory-shaping options (batch, accum, steps, lr, schedule, AdamW, seed) and the
 * cadence (eval, save, sample every) replace the defaults of the flags not given; given ones stay (the run refuses
 * trajectory-shaping ones that differ; the cadence may change). */
void cli_train_take_saved(jl_stage_opts *t, const jl_stage_opts *saved, const cli_opt *opts, int nopts,
                          const unsigned char *given);
/* Reads the saved options of t->run.resume (a no-op without resume). */
jl_status cli_train_resume_opts(jl_stage_opts *t, const cli_opt *opts, int nopts, const unsigned char *given);

/* One progress view for every stage: loss, the `show` metrics, tok/s, MFU and the last held-out value on the
 * line; held-out results, samples, skips and saves as notes. */
#define CLI_SUMMARY_KEYS 12
typedef struct {
    char key[40];
    double first, last;  /* held-out: first and last evaluation; step metrics: means of the first/last window */
    double sum_first, sum_last;
    int n_first, n_last, evals;
} cli_summary_key;

typedef struct {
    cli_progress bar;
    const char *stage;
    const char *const *show; /* stage metric keys on the line, NULL-terminated (may be NULL) */
    const char *eval_label;  /* "held-out loss" ... */
    double loss, tps, mfu, val;
    char extra[256];
    long total;              /* steps of the run (the summary's windows are its first and last tenth) */
    cli_summary_key held[CLI_SUMMARY_KEYS], steps[CLI_SUMMARY_KEYS]; /* the before → after summary */
    int n_held, n_steps;
    int clocked;             /* the bar's clock was restarted at the first step (set-up is not in the ETA) */
    int memory_noted;        /* under mpirun: the optimizer state per rank was shown (metric adam_mb) */
} cli_train_view;
void cli_train_view_start(cli_train_view *v, const char *stage, long steps, const char *const *show);
void cli_train_on_event(void *user, const jl_train_event *ev);
/* Ends the bar; after a run that trained, prints the before → after summary: every held-out metric from its first
 * to its last evaluation, and the training loss and shown metrics as means of the first and last tenth of the
 * steps; warns when the held-out pairs are too few for the accuracy to mean anything. */
void cli_train_view_finish(cli_train_view *v, jl_status st);

/* The exit code of a training command: 130 / 143 after SIGINT / SIGTERM (the message says a checkpoint was
 * written), else as cli_report. */
int cli_train_exit(const char *cmd, jl_status st);

#endif
