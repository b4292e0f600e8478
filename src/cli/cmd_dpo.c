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
    jl_status ast = rl_cli_common_apply("dpo", &c, &o);
    if (ast != JL_OK) return cli_report("dpo", ast);
    if (eval_fraction >= 0) o.eval_fraction = eval_fraction;
    if (beta > 0) o.beta = (float)beta;
    o.out_dir = out;
    if (strcmp(loss, "sigmoid") == 0) o.loss = JL_DPO_SIGMOID;
    else if (strcmp(loss, "ipo") == 0) o.loss = JL_DPO_IPO;
    else return cli_report("dpo", jl_fail(JL_ERR_ARG, "--loss: unknown '%s' (sigmoid or ipo)", loss));
    char settings[64];
    snprintf(settings, sizeof settings, "%s loss, beta %g", loss, o.beta);
    static const char *const show[] = {"loss", "accuracy", "margin", NULL};
    return rl_cli_run_pairs("dpo", model, data, settings, &o, &c, show, jl_dpo_train);
}
