#include "cli/rl_cli.h"
#include <omp.h>
#include <stdio.h>
#include <string.h>

#define UNSET (-1)

jl_status rl_cli_load_model(const char *path, jl_checkpoint *ck, jl_tokenizer **tok) {
    *tok = NULL;
    jl_status st = jl_checkpoint_load(path, ck);
    if (st != JL_OK) return st;
    if (!ck->tokenizer_json) st = jl_fail(JL_ERR_FORMAT, "%s: checkpoint has no tokenizer", path);
    else st = jl_tokenizer_from_json(ck->tokenizer_json, strlen(ck->tokenizer_json), tok);
    if (st != JL_OK) jl_checkpoint_free(ck);
    return st;
}

void rl_cli_common_init(rl_cli_common *c) {
    c->batch = c->steps = c->warmup = c->seed = c->max_len = c->eval_every = c->save_every = c->threads = UNSET;
    c->lr = c->weight_decay = c->grad_clip = UNSET;
    c->skip_long = 0;
    c->skipped_long = 0;
    c->method = "full";
    c->lora_rank = UNSET;
    c->lora_alpha = c->lora_dropout = UNSET;
    c->lora_targets = NULL;
    c->precision = NULL;
}

jl_status rl_cli_common_apply(const char *stage, rl_cli_common *c, jl_rl_opts *o) {
    o->skip_long = c->skip_long;
    o->skipped_long = &c->skipped_long;
    if (c->batch != UNSET) o->batch = (int)c->batch;
    if (c->steps != UNSET) o->steps = c->steps;
    if (c->warmup != UNSET) o->warmup = c->warmup;
    if (c->seed != UNSET) o->seed = (uint64_t)c->seed;
    if (c->max_len != UNSET) o->max_len = (int)c->max_len;
    if (c->eval_every != UNSET) o->eval_every = (int)c->eval_every;
    if (c->save_every != UNSET) o->save_every = (int)c->save_every;
    if (c->lr != UNSET) o->lr = (float)c->lr;
    if (c->weight_decay != UNSET) o->weight_decay = (float)c->weight_decay;
    if (c->grad_clip != UNSET) o->grad_clip = (float)c->grad_clip;
    if (c->threads != UNSET) omp_set_num_threads((int)c->threads);
    double peak;
    jl_status pst = cli_precision_apply(stage, c->precision, &peak);
    if (pst != JL_OK) return pst;
    if (strcmp(c->method, "lora") == 0) {
        o->use_lora = 1;
        o->lora = (jl_lora_opts){.rank = 8, .alpha = 16, .dropout = 0.05f, .targets = c->lora_targets};
        if (c->lora_rank != UNSET) o->lora.rank = (int)c->lora_rank;
        if (c->lora_alpha != UNSET) o->lora.alpha = (float)c->lora_alpha;
        if (c->lora_dropout != UNSET) o->lora.dropout = (float)c->lora_dropout;
        if (c->lr == UNSET) o->lr *= 10; /* a small adapter wants larger steps than the whole model */
    } else if (strcmp(c->method, "full") != 0) {
        return jl_fail(JL_ERR_ARG, "--method: unknown '%s' (full or lora)", c->method);
    } else if (c->lora_rank != UNSET || c->lora_alpha != UNSET || c->lora_dropout != UNSET || c->lora_targets) {
        return jl_fail(JL_ERR_ARG, "--lora-* flags need --method lora");
    }
    return JL_OK;
}

void rl_cli_report_skipped(const rl_cli_common *c, const char *stage) {
    if (c->skipped_long)
        fprintf(stderr, "%s: %zu examples longer than the context were dropped (--skip-long)\n", stage, c->skipped_long);
}

static double find(const jl_rl_event *ev, const char *key, int *found) {
    for (int i = 0; i < ev->n; i++)
        if (strcmp(ev->keys[i], key) == 0) {
            *found = 1;
            return ev->values[i];
        }
    *found = 0;
    return 0;
}

void rl_cli_on_event(void *user, const jl_rl_event *ev) {
    rl_cli_view *v = user;
    if (ev->kind == JL_RL_SKIP) {
        cli_progress_note(&v->bar, "step %ld skipped: %s", ev->step, ev->text);
        return;
    }
    if (ev->kind == JL_RL_SAVE) {
        cli_progress_note(&v->bar, "step %ld: saved %s", ev->step, ev->text);
        return;
    }
    char buf[256] = "";
    size_t n = 0;
    for (int i = 0; i < ev->n && n < sizeof buf - 32; i++) {
        int shown = ev->kind == JL_RL_EVAL;
        for (int k = 0; !shown && v->show && v->show[k]; k++) shown = strcmp(v->show[k], ev->keys[i]) == 0;
        if (shown) n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s %.4g", n ? " | " : "", ev->keys[i], ev->values[i]);
    }
    if (ev->kind == JL_RL_EVAL) {
        cli_progress_note(&v->bar, "step %ld held out: %s", ev->step, buf);
        return;
    }
    int found;
    (void)find(ev, "skipped", &found);
    snprintf(v->line, sizeof v->line, "%s", buf);
    cli_progress_update(&v->bar, (double)ev->step, v->line);
}

int rl_cli_run_pairs(const char *stage, const char *model, const char *data, const char *settings,
                     const jl_rl_opts *o, rl_cli_common *c, const char *const *show, rl_pairs_train_fn train) {
    jl_checkpoint ck = {0};
    jl_tokenizer *tok = NULL;
    jl_pref_set *pairs = NULL;
    jl_jsonl_options jo = {0, 0};
    jl_jsonl_stats js;
    jl_status st = rl_cli_load_model(model, &ck, &tok);
    if (st == JL_OK) st = jl_prefs_load(data, &jo, &pairs, &js);
    if (st == JL_OK) {
        fprintf(stderr, "%s: %zu pairs from %s; %s%sbatch %d; %ld steps; lr %g\n", stage, jl_prefs_count(pairs), data,
                settings ? settings : "", settings ? "; " : "", o->batch, o->steps, o->lr);
        rl_cli_view view = {.show = show};
        cli_progress_start(&view.bar, stage, (double)o->steps, "steps");
        st = train(ck.model, tok, pairs, o, rl_cli_on_event, &view);
        cli_progress_finish(&view.bar, st == JL_OK ? "done" : "stopped");
    }
    jl_prefs_free(pairs);
    jl_tokenizer_free(tok);
    jl_checkpoint_free(&ck);
    rl_cli_report_skipped(c, stage);
    return cli_report(stage, st);
}
