/* jielong dpo: Direct Preference Optimisation against a frozen copy of the starting model. */
#include "cli/rl_cli.h"
#include <stdio.h>
#include <string.h>

int cmd_dpo(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *out = NULL, *loss = "sigmoid";
    rl_cli_common c;
    rl_cli_common_init(&c);
    double eval_fraction = -1, beta = -1;
    cli_opt opts[] = {
        {"model", OPT_STR, &model, "starting model (the SFT model); also the frozen reference", NO_RANGE, 1},
        {"data", OPT_STR, &data, "preference pairs JSONL {\"prompt\",\"chosen\",\"rejected\"}", NO_RANGE, 1},
        {"out", OPT_STR, &out, "output folder: model.safetensors (--method lora: adapter.safetensors), metrics.jsonl", NO_RANGE, 1},
        {"beta", OPT_FLOAT, &beta, "strength of the pull to the reference (default 0.1)", 1e-6, 1e6, 0},
        {"loss", OPT_STR, &loss, "sigmoid (DPO, default) or ipo", NO_RANGE, 0},
        RL_CLI_COMMON_OPTS(c, "preference pairs per step (default 8)"),
        {"eval-fraction", OPT_FLOAT, &eval_fraction, "share of pairs held out (default 0.05)", 0, 0.9, 0},
        {"eval-every", OPT_INT, &c.eval_every, "held-out accuracy every N steps (default 50; 0 = end only)", 0, 1L << 40, 0},
    };
    int rc = cli_parse("dpo", "Direct preference optimisation of a model on preference pairs.", opts, CLI_NOPTS(opts),
                       argc, argv, 1);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : rc;
    jl_rl_opts o;
    jl_rl_defaults(&o, JL_STAGE_DPO);
    jl_status ast = rl_cli_common_apply(&c, &o);
    if (ast != JL_OK) return cli_report("dpo", ast);
    if (eval_fraction >= 0) o.eval_fraction = eval_fraction;
    if (beta > 0) o.beta = (float)beta;
    o.out_dir = out;
    if (strcmp(loss, "sigmoid") == 0) o.loss = JL_DPO_SIGMOID;
    else if (strcmp(loss, "ipo") == 0) o.loss = JL_DPO_IPO;
    else return cli_report("dpo", jl_fail(JL_ERR_ARG, "--loss: unknown '%s' (sigmoid or ipo)", loss));
    jl_checkpoint ck = {0};
    jl_tokenizer *tok = NULL;
    jl_pref_set *pairs = NULL;
    jl_jsonl_options jo = {0, 0};
    jl_jsonl_stats js;
    jl_status st = rl_cli_load_model(model, &ck, &tok);
    if (st == JL_OK) st = jl_prefs_load(data, &jo, &pairs, &js);
    if (st == JL_OK) {
        fprintf(stderr, "dpo: %zu pairs from %s; %s loss, beta %g; batch %d; %ld steps; lr %g\n",
                jl_prefs_count(pairs), data, loss, o.beta, o.batch, o.steps, o.lr);
        static const char *const show[] = {"loss", "accuracy", "margin", NULL};
        rl_cli_view view = {.show = show};
        cli_progress_start(&view.bar, "dpo", (double)o.steps, "steps");
        st = jl_dpo_train(ck.model, tok, pairs, &o, rl_cli_on_event, &view);
        cli_progress_finish(&view.bar, st == JL_OK ? "done" : "stopped");
    }
    jl_prefs_free(pairs);
    jl_tokenizer_free(tok);
    jl_checkpoint_free(&ck);
    rl_cli_report_skipped(&c, "dpo");
    return cli_report("dpo", st);
}
