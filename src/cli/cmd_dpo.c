/* jielong dpo: Direct Preference Optimisation against a frozen copy of the starting model. */
#include "cli/rl_cli.h"
#include <stdio.h>
#include <string.h>

int cmd_dpo(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *loss = "sigmoid";
    jl_rl_opts o;
    rl_cli_common c;
    rl_cli_defaults(&o, JL_STAGE_DPO, &c);
    cli_opt opts[] = {
        {"model|policy", OPT_STR, &model, "starting model (the SFT model); also the frozen reference", NO_RANGE, 1},
        {"data", OPT_STR, &data, "preference pairs JSONL {\"prompt\",\"chosen\",\"rejected\"}", NO_RANGE, 1},
        {"beta", OPT_F32, &o.beta, "strength of the pull to the reference", 1e-6, 1e6, 0},
        {"loss", OPT_STR, &loss, "sigmoid (DPO, default) or ipo", NO_RANGE, 0},
        RL_CLI_COMMON_OPTS(c, o, "preference pairs per step"),
        {"eval-fraction", OPT_FLOAT, &o.eval_fraction, "share of pairs held out (default 0.05)", 0, 0.9, 0},
    };
    unsigned char given[CLI_NOPTS(opts)];
    int rc = cli_parse_given("dpo", "Direct preference optimisation of a model on preference pairs; writes "
                             "model.safetensors (--method lora: adapter.safetensors).", opts, CLI_NOPTS(opts), argc,
                             argv, 1, given);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : rc;
    char resume[4096];
    jl_status st = rl_cli_apply(&c, &o, opts, CLI_NOPTS(opts), given, resume, sizeof resume);
    if (st != JL_OK) return cli_report("dpo", st);
    if (strcmp(loss, "sigmoid") == 0) o.loss = JL_DPO_SIGMOID;
    else if (strcmp(loss, "ipo") == 0) o.loss = JL_DPO_IPO;
    else return cli_report("dpo", jl_fail(JL_ERR_ARG, "--loss: unknown '%s' (sigmoid or ipo)", loss));
    char settings[64];
    snprintf(settings, sizeof settings, "%s loss, beta %g", loss, (double)o.beta);
    static const char *const show[] = {"accuracy", "margin", NULL};
    return rl_cli_run_pairs("dpo", model, data, settings, &o, show, jl_dpo_train);
}
