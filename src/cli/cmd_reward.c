/* jielong reward: train a reward model (scalar head on the last token) on preference pairs. */
#include "cli/rl_cli.h"
#include <stdio.h>
#include <stdlib.h>

int cmd_reward(int argc, char **argv) {
    const char *model = NULL, *data = NULL;
    jl_rl_opts o;
    rl_cli_common c;
    rl_cli_defaults(&o, JL_STAGE_REWARD, &c);
    cli_opt opts[] = {
        {"model", OPT_STR, &model, "starting model checkpoint (usually the SFT model)", NO_RANGE, 1},
        {"data", OPT_STR, &data, "preference pairs JSONL {\"prompt\",\"chosen\",\"rejected\"}", NO_RANGE, 1},
        RL_CLI_COMMON_OPTS(c, o, "preference pairs per step"),
        {"eval-fraction", OPT_FLOAT, &o.eval_fraction, "share of pairs held out for accuracy (default 0.05)", 0, 0.9, 0},
    };
    unsigned char given[CLI_NOPTS(opts)];
    int rc = cli_parse_given("reward", "Train a reward model on preference pairs (Bradley-Terry loss); writes "
                             "model.safetensors + score.safetensors.", opts, CLI_NOPTS(opts), argc, argv, 1, given);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : rc;
    char resume[4096];
    jl_status st = rl_cli_apply(&c, &o, opts, CLI_NOPTS(opts), given, resume, sizeof resume);
    if (st != JL_OK) return cli_report("reward", st);
    static const char *const show[] = {"accuracy", NULL};
    return rl_cli_run_pairs("reward", model, data, NULL, &o, show, jl_reward_train);
}
