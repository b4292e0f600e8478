/* jielong ppo: RLHF with PPO (value head, GAE, clipped surrogate and value loss, KL penalty to the reference). */
#include "cli/rl_policy_cli.h"

int cmd_ppo(int argc, char **argv) { return rl_policy_cli(JL_STAGE_PPO, argc, argv); }
