/* The shared part of the training commands (train_cli.h). */
#include "cli/train_cli.h"
#include "jielong/common.h"
#include "jielong/dist.h"
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_signal(int signo) {
    jl_train_request_stop(signo);
    signal(signo, SIG_DFL); /* a second Ctrl-C ends the process at once */
}

/* Under mpirun: --threads 0 shares the cores among the ranks of this host; rank 0 says how the batch grows. */
static void dist_prepare(const jl_stage_opts *t, int threads) {
    if (jl_dist_size() == 1) return;
    const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    int here = local && atoi(local) > 0 ? atoi(local) : 1, cores = omp_get_num_procs() / here;
    if (threads == 0) omp_set_num_threads(cores > 0 ? cores : 1);
    fprintf(stderr, "data parallel: %d ranks (%d on this host, %d threads each); a step is %d micro-batches of %d "
            "(accum %d × %d ranks); rank 0 reports and writes\n", jl_dist_size(), here, omp_get_max_threads(),
            t->optim.accum * jl_dist_size(), t->run.batch, t->optim.accum, jl_dist_size());
}

void cli_train_prepare(jl_stage_opts *t, int threads, char *resume_buf, size_t size) {
    if (threads > 0) omp_set_num_threads(threads);
    dist_prepare(t, threads);
    if (t->run.resume && !t->run.resume[0]) {
        snprintf(resume_buf, size, "%s/checkpoint.safetensors", t->run.out_dir);
        t->run.resume = resume_buf;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* The JL_OPT_* mask of the shared flags given on the command line. */
static unsigned given_mask(const jl_stage_opts *t, const cli_opt *opts, int nopts, const unsigned char *given) {
    const struct { const void *dest; unsigned bit; } f[] = {
        {&t->run.batch, JL_OPT_BATCH}, {&t->run.steps, JL_OPT_STEPS}, {&t->run.seed, JL_OPT_SEED},
        {&t->run.eval_every, JL_OPT_EVAL_EVERY}, {&t->run.save_every, JL_OPT_SAVE_EVERY},
        {&t->run.sample_every, JL_OPT_SAMPLE_EVERY}, {&t->optim.accum, JL_OPT_ACCUM}, {&t->optim.lr, JL_OPT_LR},
        {&t->optim.min_lr_frac, JL_OPT_MIN_LR_FRAC}, {&t->optim.warmup, JL_OPT_WARMUP},
        {&t->optim.schedule, JL_OPT_SCHEDULE}, {&t->optim.beta1, JL_OPT_BETA1}, {&t->optim.beta2, JL_OPT_BETA2},
        {&t->optim.eps, JL_OPT_EPS}, {&t->optim.weight_decay, JL_OPT_WEIGHT_DECAY},
        {&t->optim.grad_clip, JL_OPT_GRAD_CLIP}, {&t->run.precision, JL_OPT_PRECISION},
    };
    unsigned mask = 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (cli_given(opts, nopts, given, f[i].dest)) mask |= f[i].bit;
    return mask;
}

void cli_train_take_saved(jl_stage_opts *t, const jl_stage_opts *saved, const cli_opt *opts, int nopts,
                          const unsigned char *given) {
    jl_stage_opts_resume(t, saved, given_mask(t, opts, nopts, given));
}

jl_status cli_train_resume_opts(jl_stage_opts *t, const cli_opt *opts, int nopts, const unsigned char *given) {
    if (!t->run.resume) return JL_OK;
    jl_stage_opts saved = *t;
    jl_status st = jl_stage_opts_of_checkpoint(t->run.resume, &saved);
    if (st == JL_OK) cli_train_take_saved(t, &saved, opts, nopts, given);
    return st;
}

void cli_train_view_start(cli_train_view *v, const char *stage, long steps, const char *const *show) {
    memset(v, 0, sizeof *v);
    v->stage = stage;
    v->total = steps;
    v->show = show;
    v->val = NAN;
    cli_progress_start(&v->bar, stage, (double)steps, "steps");
}

static int shown(const cli_train_view *v, const char *key) {
    for (int k = 0; v->show && v->show[k]; k++)
        if (strcmp(v->show[k], key) == 0) return 1;
    return 0;
}

/* "k v | k v" of the metrics (all of them, or the shown ones). */
static void metrics_text(const cli_train_view *v, const jl_train_event *ev, int all, char *buf, size_t size) {
    size_t n = strlen(buf);
    for (int i = 0; i < ev->n && n + 32 < size; i++)
        if (all || shown(v, ev->keys[i]))
            n += (size_t)snprintf(buf + n, size - n, "%s%s %.4g", n ? " | " : "", ev->keys[i], ev->values[i]);
}

static cli_summary_key *summary_key(cli_summary_key *keys, int *n, const char *key) {
    for (int i = 0; i < *n; i++)
        if (strcmp(keys[i].key, key) == 0) return &keys[i];
    if (*n == CLI_SUMMARY_KEYS) return NULL;
    cli_summary_key *k = &keys[(*n)++];
    memset(k, 0, sizeof *k);
    snprintf(k->key, sizeof k->key, "%s", key);
    return k;
}

static void note_eval(cli_train_view *v, const jl_train_event *ev) {
    for (int i = 0; i < ev->n; i++) {
        cli_summary_key *k = summary_key(v->held, &v->n_held, ev->keys[i]);
        if (!k || !isfinite(ev->values[i])) continue;
        if (k->evals++ == 0) k->first = ev->values[i];
        k->last = ev->values[i];
    }
}

/* The training loss and the shown metrics, summed over the first and the last tenth of the run's steps. */
static void note_step(cli_train_view *v, const jl_train_event *ev) {
    long window = v->total / 10 > 0 ? v->total / 10 : 1;
    int first = ev->step <= window, last = ev->step > v->total - window;
    if (!first && !last) return;
    for (int i = -1; i < ev->n; i++) {
        if (i >= 0 && !shown(v, ev->keys[i])) continue;
        double x = i < 0 ? ev->loss : ev->values[i];
        cli_summary_key *k = summary_key(v->steps, &v->n_steps, i < 0 ? "loss" : ev->keys[i]);
        if (!k || !isfinite(x)) continue;
        if (first) k->sum_first += x, k->n_first++;
        if (last) k->sum_last += x, k->n_last++;
    }
}

void cli_train_on_event(void *user, const jl_train_event *ev) {
    cli_train_view *v = user;
    char buf[256] = "";
    if (ev->kind == JL_EV_EVAL) note_eval(v, ev);
    if (ev->kind == JL_EV_STEP) note_step(v, ev);
    if (!v->clocked) { /* set-up (encoding, packing, the step-0 evaluation) ended: time the steps alone */
        v->clocked = 1;
        cli_progress_restart(&v->bar, (double)(ev->kind == JL_EV_STEP ? ev->step - 1 : ev->step));
    }
    switch (ev->kind) {
    case JL_EV_SKIP: cli_progress_note(&v->bar, "step %ld skipped: %s", ev->step, ev->text); return;
    case JL_EV_SAVE: cli_progress_note(&v->bar, "step %ld: saved %s", ev->step, ev->path); return;
    case JL_EV_SAMPLE: cli_progress_note(&v->bar, "step %ld sample: %s", ev->step, ev->text); return;
    case JL_EV_EVAL:
        if (!isnan(ev->val_loss)) v->val = ev->val_loss;
        metrics_text(v, ev, 1, buf, sizeof buf);
        cli_progress_note(&v->bar, "step %ld held out: %s", ev->step, buf);
        return;
    case JL_EV_STEP: break;
    }
    for (int i = 0; i < ev->n && !v->memory_noted; i++)
        if (strcmp(ev->keys[i], "adam_mb") == 0) { /* under mpirun, once */
            v->memory_noted = 1;
            cli_progress_note(&v->bar, "AdamW moments: %.1f MB on each rank (--zero 1: each rank's share)",
                              ev->values[i]);
        }
    v->loss = ev->loss;
    v->tps = ev->tok_per_s;
    v->mfu = ev->mfu;
    snprintf(buf, sizeof buf, "loss %.4f", v->loss);
    metrics_text(v, ev, 0, buf, sizeof buf);
    size_t n = strlen(buf);
    if (v->tps > 0) n += (size_t)snprintf(buf + n, sizeof buf - n, " | %.0f tok/s", v->tps);
    if (v->mfu > 0) n += (size_t)snprintf(buf + n, sizeof buf - n, " | mfu %.0f%%", 100.0 * v->mfu);
    if (!isnan(v->val)) snprintf(buf + n, sizeof buf - n, " | val %.4f", v->val);
    snprintf(v->extra, sizeof v->extra, "%s", buf);
    cli_progress_update(&v->bar, (double)ev->step, v->extra);
}

void cli_train_view_finish(cli_train_view *v, jl_status st) {
    cli_progress_finish(&v->bar, st == JL_OK ? "done" : "stopped");
    if (st != JL_OK) return;
    char line[1024];
    size_t n = 0;
    line[0] = '\0';
    double pairs = NAN;
    for (int i = 0; i < v->n_held && n + 80 < sizeof line; i++) {
        const cli_summary_key *k = &v->held[i];
        if (!k->evals) continue;
        if (strcmp(k->key, "eval_pairs") == 0) {
            pairs = k->last;
            continue;
        }
        if (k->evals == 1) n += (size_t)snprintf(line + n, sizeof line - n, "%s%s %.4g", n ? ", " : "", k->key, k->last);
        else n += (size_t)snprintf(line + n, sizeof line - n, "%s%s %.4g -> %.4g", n ? ", " : "", k->key, k->first, k->last);
    }
    if (n) fprintf(stderr, "%s: held out, first -> last evaluation: %s\n", v->stage, line);
    n = 0;
    line[0] = '\0';
    for (int i = 0; i < v->n_steps && n + 80 < sizeof line; i++) {
        const cli_summary_key *k = &v->steps[i];
        if (k->n_first && k->n_last)
            n += (size_t)snprintf(line + n, sizeof line - n, "%s%s %.4g -> %.4g", n ? ", " : "", k->key,
                                  k->sum_first / k->n_first, k->sum_last / k->n_last);
    }
    if (n) fprintf(stderr, "%s: training, mean of the first -> last tenth of the steps: %s\n", v->stage, line);
    if (!isnan(pairs) && pairs < 50)
        fprintf(stderr, "%s: warning: only %.0f pair%s held out — the held-out accuracy moves in steps of %.0f%% and "
                        "means little; hold out more (--eval-fraction) for a figure to trust\n",
                v->stage, pairs, pairs == 1 ? " is" : "s are", 100.0 / (pairs > 0 ? pairs : 1));
}

int cli_train_exit(const char *cmd, jl_status st) {
    int sig = jl_train_stop_signal();
    if (st == JL_OK || !sig) return cli_report(cmd, st);
    fprintf(stderr, "jielong %s: %s\n", cmd, jl_last_error());
    return 128 + sig;
}
