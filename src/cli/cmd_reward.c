/* jielong reward: train a reward model (scalar head on the last token) on preference pairs. */
#include "cli/rl_cli.h"
#include <stdio.h>
#include <stdlib.h>

int cmd_reward(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *out = NULL;
    rl_cli_common c;
    rl_cli_common_init(&c);
    double eval_fraction = -1;
    cli_opt opts[] = {
        {"model", OPT_STR, &model, "starting model checkpoint (usually the SFT model)", NO_RANGE, 1},
        {"data", OPT_STR, &data, "preference pairs JSONL {\"prompt\",\"chosen\",\"rejected\"}", NO_RANGE, 1},
        {"out", OPT_STR, &out, "output folder: model.safetensors + score.safetensors, metrics.jsonl", NO_RANGE, 1},
        RL_CLI_COMMON_OPTS(c, "preference pairs per step (default 8)"),
        {"eval-fraction", OPT_FLOAT, &eval_fraction, "share of pairs held out for accuracy (default 0.05)", 0, 0.9, 0},
        {"eval-every", OPT_INT, &c.eval_every, "held-out accuracy every N steps (default 50; 0 = end only)", 0, 1L << 40, 0},
    };
    int rc = cli_parse("reward", "Train a reward model on preference pairs (Bradley-Terry loss).", opts,
                       CLI_NOPTS(opts), argc, argv, 1);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : rc;
    jl_rl_opts o;
    jl_rl_defaults(&o, JL_STAGE_REWARD);
    jl_status ast = rl_cli_common_apply("reward", &c, &o);
    if (ast != JL_OK) return cli_report("reward", ast);
    if (eval_fraction >= 0) o.eval_fraction = eval_fraction;
    o.out_dir = out;
    static const char *const show[] = {"loss", "accuracy", NULL};
    return rl_cli_run_pairs("reward", model, data, NULL, &o, &c, show, jl_reward_train);
}
