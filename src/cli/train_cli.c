/* The shared part of the training commands (train_cli.h). */
#include "cli/train_cli.h"
#include "jielong/common.h"
#include "train/run.h"
#include <json.h>
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

void cli_train_prepare(jl_stage_opts *t, int threads, char *resume_buf, size_t size) {
    if (threads > 0) omp_set_num_threads(threads);
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

void cli_train_take_saved(jl_stage_opts *t, const jl_stage_opts *saved, const cli_opt *opts, int nopts,
                          const unsigned char *given) {
#define TAKE(field)                                                                                               \
    if (!cli_given(opts, nopts, given, &t->field)) t->field = saved->field
    TAKE(run.batch);
    TAKE(run.steps);
    TAKE(run.seed);
    TAKE(run.eval_every);
    TAKE(run.save_every);
    TAKE(run.sample_every);
    TAKE(optim.accum);
    TAKE(optim.lr);
    TAKE(optim.min_lr_frac);
    TAKE(optim.warmup);
    TAKE(optim.schedule);
    TAKE(optim.beta1);
    TAKE(optim.beta2);
    TAKE(optim.eps);
    TAKE(optim.weight_decay);
    TAKE(optim.grad_clip);
#undef TAKE
}

jl_status cli_train_resume_opts(jl_stage_opts *t, const cli_opt *opts, int nopts, const unsigned char *given) {
    if (!t->run.resume) return JL_OK;
    char *text;
    jl_status st = jl_state_of_checkpoint(t->run.resume, &text);
    if (st != JL_OK) return st;
    json_object *j = json_tokener_parse(text);
    free(text);
    jl_stage_opts saved = *t;
    st = j ? jl_state_read_opts(j, &saved) : jl_fail(JL_ERR_FORMAT, "training state is not JSON");
    json_object_put(j);
    if (st != JL_OK) return jl_fail_context(st, "%s", t->run.resume);
    cli_train_take_saved(t, &saved, opts, nopts, given);
    return JL_OK;
}

void cli_train_view_start(cli_train_view *v, const char *stage, long steps, const char *const *show) {
    memset(v, 0, sizeof *v);
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

void cli_train_on_event(void *user, const jl_train_event *ev) {
    cli_train_view *v = user;
    char buf[256] = "";
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

void cli_train_view_finish(cli_train_view *v, jl_status st) { cli_progress_finish(&v->bar, st == JL_OK ? "done" : "stopped"); }

int cli_train_exit(const char *cmd, jl_status st) {
    int sig = jl_train_stop_signal();
    if (st == JL_OK || !sig) return cli_report(cmd, st);
    fprintf(stderr, "jielong %s: %s\n", cmd, jl_last_error());
    return 128 + sig;
}
