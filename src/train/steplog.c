#include "train/steplog.h"
#include "core/perf.h"

jl_status jl_step_log_write(jl_step_log *l, long step, const jl_step_stats *ss, int n_extra,
                            const char *const *extra_keys, const double *extra_values) {
    double tps = ss->tokens / ss->seconds;
    double mfu = jl_mfu(l->flops_per_step / ss->seconds, l->peak_gflops);
    const char *keys[16] = {"loss", "lr", "grad_norm", "tok_per_s", "ms", "skipped", "mfu", "peak_gflops"};
    double vals[16] = {ss->loss, ss->lr, ss->grad_norm, tps, ss->seconds * 1e3, ss->skipped, mfu, l->peak_gflops};
    int n = l->peak_gflops > 0 ? 8 : 6; /* no yardstick, no MFU */
    for (int i = 0; i < n_extra && n < 16; i++, n++) {
        keys[n] = extra_keys[i];
        vals[n] = extra_values[i];
    }
    jl_status st = jl_metrics_log(l->log, l->stage, step, n, keys, vals);
    if (st != JL_OK) return st;
    jl_train_event ev = {.kind = ss->skipped ? JL_EV_SKIP : JL_EV_STEP, .step = step, .total_steps = l->total_steps,
                         .loss = ss->loss, .grad_norm = ss->grad_norm, .lr = ss->lr, .tok_per_s = tps, .mfu = mfu};
    if (l->on_event) l->on_event(l->user, &ev);
    l->skips_in_a_row = ss->skipped ? l->skips_in_a_row + 1 : 0;
    if (l->skips_in_a_row >= JL_MAX_SKIPS_IN_A_ROW)
        return jl_fail(JL_ERR_RUNTIME, "loss or gradient was not finite for %d steps in a row (step %ld); "
                       "lower the learning rate", JL_MAX_SKIPS_IN_A_ROW, step);
    return JL_OK;
}
