#include "cli/rl_policy_cli.h"
#include "cli/rl_cli.h"
#include <stdio.h>
#include <string.h>

#define UNSET (-1)

int rl_policy_cli(jl_rl_stage stage, int argc, char **argv) {
    const int ppo = stage == JL_STAGE_PPO;
    const char *cmd = ppo ? "ppo" : "grpo";
    const char *policy = NULL, *prompts = NULL, *out = NULL, *reward_fn = NULL, *reward_model = NULL;
    rl_cli_common c;
    rl_cli_common_init(&c);
    long group = UNSET, max_new = UNSET, epochs = UNSET, minibatches = UNSET;
    double temperature = UNSET, clip = UNSET, kl = UNSET, gamma = UNSET, lam = UNSET, vf = UNSET, vclip = UNSET;
    cli_opt opts[] = {
        {"policy", OPT_STR, &policy, "starting policy checkpoint (the SFT model); also the frozen reference", NO_RANGE, 1},
        {"prompts", OPT_STR, &prompts, "RL prompts JSONL {\"prompt\", ...fields such as \"form\"}", NO_RANGE, 1},
        {"out", OPT_STR, &out, ppo ? "output folder: model.safetensors (--method lora: adapter.safetensors), value.safetensors, metrics.jsonl"
                                   : "output folder: model.safetensors (--method lora: adapter.safetensors), metrics.jsonl", NO_RANGE, 1},
        {"reward-fn", OPT_STR, &reward_fn, "rule reward: poem, x_count, length, contains", NO_RANGE, 0},
        {ppo ? "reward" : "reward-model", OPT_STR, &reward_model, "reward model folder (jielong reward)", NO_RANGE, 0},
        {"group", OPT_INT, &group, ppo ? "answers sampled per prompt (default 1)" : "answers per prompt G (default 8)",
         1, 4096, 0},
        {"max-new", OPT_INT, &max_new, "tokens per sampled answer (default 64)", 1, 1 << 20, 0},
        {"temperature", OPT_FLOAT, &temperature, "sampling temperature (default 1)", 0, 100, 0},
        {"clip", OPT_FLOAT, &clip, "ratio clip epsilon (default 0.2)", 1e-6, 10, 0},
        {"kl", OPT_FLOAT, &kl, ppo ? "per-token KL penalty in the reward (default 0.05)"
                                   : "weight of the k3 KL to the reference (default 0 = off)", 0, 1e3, 0},
        {"epochs", OPT_INT, &epochs, ppo ? "passes over each rollout batch (default 4)"
                                         : "passes over each rollout batch (default 1)", 1, 1000, 0},
        {"minibatches", OPT_INT, &minibatches, "updates per pass (default 1)", 1, 4096, 0},
        {"gamma", OPT_FLOAT, &gamma, "PPO discount γ (default 1)", 0, 1, 0},
        {"lambda", OPT_FLOAT, &lam, "PPO GAE λ (default 0.95)", 0, 1, 0},
        {"vf-coef", OPT_FLOAT, &vf, "PPO value loss weight (default 0.1)", 0, 1e3, 0},
        {"value-clip", OPT_FLOAT, &vclip, "PPO value clip (default 0.2; 0 = off)", 0, 1e6, 0},
        RL_CLI_COMMON_OPTS(c, "prompts per step (default 4)"),
    };
    int rc = cli_parse(cmd, ppo ? "RLHF with PPO: value head, GAE, clipped surrogate, KL penalty to the reference."
                                : "Group relative policy optimisation with rule-based or reward-model rewards.",
                       opts, CLI_NOPTS(opts), argc, argv, 1);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : rc;
    if (!reward_fn == !reward_model)
        return cli_report(cmd, jl_fail(JL_ERR_ARG, "give exactly one of --reward-fn and --%s",
                                       ppo ? "reward" : "reward-model"));
    jl_rl_opts o;
    jl_rl_defaults(&o, stage);
    jl_status ast = rl_cli_common_apply(cmd, &c, &o);
    if (ast != JL_OK) return cli_report(cmd, ast);
    if (group != UNSET) o.group = (int)group;
    if (max_new != UNSET) o.max_new = (int)max_new;
    if (epochs != UNSET) o.epochs = (int)epochs;
    if (minibatches != UNSET) o.minibatches = (int)minibatches;
    if (temperature != UNSET) o.temperature = (float)temperature;
    if (clip != UNSET) o.clip_eps = (float)clip;
    if (kl != UNSET) o.kl_coef = (float)kl;
    if (gamma != UNSET) o.gamma = (float)gamma;
    if (lam != UNSET) o.lam = (float)lam;
    if (vf != UNSET) o.vf_coef = (float)vf;
    if (vclip != UNSET) o.value_clip = (float)vclip;
    o.out_dir = out;
    jl_checkpoint ck = {0};
    jl_tokenizer *tok = NULL;
    jl_rl_set *set = NULL;
    jl_reward_fn *fn = NULL;
    jl_jsonl_options jo = {0, 0};
    jl_jsonl_stats js;
    jl_status st;
    if (reward_fn) {
        st = jl_reward_fn_by_name(reward_fn, &fn);
    } else {
        jl_reward_model *rm;
        st = jl_reward_model_load(reward_model, &rm);
        if (st == JL_OK) st = jl_reward_fn_from_model(rm, &fn);
    }
    if (st == JL_OK) st = rl_cli_load_model(policy, &ck, &tok);
    if (st == JL_OK) st = jl_rl_load(prompts, &jo, &set, &js);
    if (st == JL_OK) {
        fprintf(stderr, "%s: %zu prompts from %s; reward %s; %d prompts × %d answers per step; %ld steps; lr %g\n",
                cmd, jl_rl_count(set), prompts, reward_fn ? reward_fn : reward_model, o.batch, o.group, o.steps, o.lr);
        static const char *const show[] = {"reward", "kl", "entropy", "clip_frac", NULL};
        rl_cli_view view = {.show = show};
        cli_progress_start(&view.bar, cmd, (double)o.steps, "steps");
        st = ppo ? jl_ppo_train(ck.model, tok, set, fn, &o, rl_cli_on_event, &view)
                 : jl_grpo_train(ck.model, tok, set, fn, &o, rl_cli_on_event, &view);
        cli_progress_finish(&view.bar, st == JL_OK ? "done" : "stopped");
    }
    jl_rl_free(set);
    jl_reward_fn_free(fn);
    jl_tokenizer_free(tok);
    jl_checkpoint_free(&ck);
    rl_cli_report_skipped(&c, cmd);
    return cli_report(cmd, st);
}
