/* The bookkeeping after every optimizer step that pretraining and distillation share: one metrics line
 * (loss, lr, grad_norm, tok_per_s, ms, skipped, then mfu (clipped to 1) and peak_gflops when there is a yardstick,
 * then the stage's own keys), the step event, and the stop
 * after too many skipped (non-finite) steps in a row. */
#ifndef JL_TRAIN_STEPLOG_H
#define JL_TRAIN_STEPLOG_H
#include "jielong/metrics.h"
#include "jielong/pretrain.h"
#include "train/trainer.h"

#define JL_MAX_SKIPS_IN_A_ROW 20

typedef struct {
    jl_metrics *log;
    const char *stage;      /* "pretrain", "distill" */
    long total_steps;
    double flops_per_step;  /* for MFU */
    double peak_gflops;     /* the MFU yardstick: probe peak of the precision in use (≤ 0: no MFU) */
    jl_event_fn on_event;
    void *user;
    long skips_in_a_row;
} jl_step_log;

/* Logs step `step` (already taken) with its stats and n_extra more metrics; JL_ERR_RUNTIME after
 * JL_MAX_SKIPS_IN_A_ROW skipped steps in a row. */
jl_status jl_step_log_write(jl_step_log *l, long step, const jl_step_stats *ss, int n_extra,
                            const char *const *extra_keys, const double *extra_values);

#endif
