/* jielong grpo: group relative policy optimisation (G answers per prompt, group-normalised advantages). */
#include "cli/rl_policy_cli.h"

int cmd_grpo(int argc, char **argv) { return rl_policy_cli(JL_STAGE_GRPO, argc, argv); }
