/* The shared command line of jielong grpo and jielong ppo. */
#ifndef JL_CLI_RL_POLICY_CLI_H
#define JL_CLI_RL_POLICY_CLI_H
#include "jielong/rlhf.h"

/* stage: JL_STAGE_GRPO or JL_STAGE_PPO. */
int rl_policy_cli(jl_rl_stage stage, int argc, char **argv);

#endif
