#include "cli/rl_cli.h"
#include "jielong/chat_format.h"
#include <stdio.h>
#include <string.h>

jl_status rl_cli_load_model(const char *path, jl_checkpoint *ck, jl_tokenizer **tok, jl_chat_format **fmt) {
    *tok = NULL;
    *fmt = NULL;
    jl_status st = jl_checkpoint_load(path, ck);
    if (st != JL_OK) return st;
    if (!ck->tokenizer_json) st = jl_fail(JL_ERR_FORMAT, "%s: checkpoint has no tokenizer", path);
    else st = jl_tokenizer_from_json(ck->tokenizer_json, strlen(ck->tokenizer_json), tok);
    if (st == JL_OK && (st = jl_chat_format_from_checkpoint(ck, fmt)) != JL_OK) jl_fail_context(st, "%s", path);
    if (st != JL_OK) {
        jl_tokenizer_free(*tok);
        *tok = NULL;
        jl_checkpoint_free(ck);
    }
    return st;
}

void rl_cli_defaults(jl_rl_opts *o, jl_rl_stage stage, rl_cli_common *c) {
    jl_rl_defaults(o, stage);
    o->lora = (jl_lora_opts){.rank = 8, .alpha = 16, .dropout = 0.05f, .targets = NULL};
    c->method = "full";
    c->threads = 0;
}

jl_status rl_cli_apply(rl_cli_common *c, jl_rl_opts *o, const cli_opt *opts, int nopts, const unsigned char *given,
                       char *resume_buf, size_t size) {
    cli_train_prepare(&o->train, c->threads, resume_buf, size);
    int lora_given = cli_given(opts, nopts, given, &o->lora.rank) || cli_given(opts, nopts, given, &o->lora.alpha) ||
                     cli_given(opts, nopts, given, &o->lora.dropout) || cli_given(opts, nopts, given, &o->lora.targets);
    if (strcmp(c->method, "lora") == 0) {
        o->use_lora = 1;
        if (!cli_given(opts, nopts, given, &o->train.optim.lr))
            o->train.optim.lr *= 10; /* a small adapter wants larger steps than the whole model */
    } else if (strcmp(c->method, "full") != 0) {
        return jl_fail(JL_ERR_ARG, "--method: unknown '%s' (full or lora)", c->method);
    } else if (lora_given) {
        return jl_fail(JL_ERR_ARG, "--lora-* flags need --method lora");
    }
    return cli_train_resume_opts(&o->train, opts, nopts, given);
}

void rl_cli_report_skipped(size_t skipped, const char *stage) {
    if (skipped) fprintf(stderr, "%s: %zu examples longer than the context were dropped (--skip-long)\n", stage, skipped);
}

int rl_cli_run_pairs(const char *stage, const char *model, const char *data, const char *settings, jl_rl_opts *o,
                     const char *const *show, rl_pairs_train_fn train) {
    jl_checkpoint ck = {0};
    jl_tokenizer *tok = NULL;
    jl_chat_format *fmt = NULL;
    jl_pref_set *pairs = NULL;
    jl_jsonl_options jo = {0, 0};
    jl_jsonl_stats js;
    size_t skipped = 0;
    o->skipped_long = &skipped;
    jl_status st = rl_cli_load_model(model, &ck, &tok, &fmt);
    o->chat = fmt; /* the model's own chat template, if it has one */
    if (st == JL_OK) st = jl_prefs_load(data, &jo, &pairs, &js);
    if (st == JL_OK) {
        fprintf(stderr, "%s: %zu pairs from %s; %s%sbatch %d; %ld steps; lr %g\n", stage, jl_prefs_count(pairs), data,
                settings ? settings : "", settings ? "; " : "", o->train.run.batch, o->train.run.steps,
                (double)o->train.optim.lr);
        cli_precision_report(stage, &o->train.run);
        cli_train_view view;
        cli_train_view_start(&view, stage, o->train.run.steps, show);
        st = train(ck.model, tok, pairs, o, cli_train_on_event, &view);
        cli_train_view_finish(&view, st);
    }
    jl_prefs_free(pairs);
    jl_chat_format_free(fmt);
    o->chat = NULL;
    jl_tokenizer_free(tok);
    jl_checkpoint_free(&ck);
    rl_cli_report_skipped(skipped, stage);
    return cli_train_exit(stage, st);
}
