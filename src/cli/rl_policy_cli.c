#include "cli/rl_policy_cli.h"
#include "cli/rl_cli.h"
#include <stdio.h>
#include <string.h>

int rl_policy_cli(jl_rl_stage stage, int argc, char **argv) {
    const int ppo = stage == JL_STAGE_PPO;
    const char *cmd = ppo ? "ppo" : "grpo";
    const char *policy = NULL, *prompts = NULL, *reward_fn = NULL, *reward_model = NULL, *monitor_fn = NULL, *anchor_fn = NULL;
    jl_rl_opts o;
    rl_cli_common c;
    rl_cli_defaults(&o, stage, &c);
    cli_opt opts[] = {
        {"model|policy", OPT_STR, &policy, "starting policy checkpoint (the SFT model); also the frozen reference", NO_RANGE, 1},
        {"prompts", OPT_STR, &prompts, "RL prompts JSONL {\"prompt\", ...fields such as \"form\"}", NO_RANGE, 1},
        {"reward-fn", OPT_STR, &reward_fn, "rule reward: poem, x_count, length, contains, answer", NO_RANGE, 0},
        {"reward-model|reward", OPT_STR, &reward_model, "reward model folder (jielong reward)", NO_RANGE, 0},
        {"group", OPT_I32, &o.group, ppo ? "answers sampled per prompt" : "answers per prompt G", 1, 4096, 0},
        {"max-new-tokens|max-new", OPT_I32, &o.max_new, "tokens per sampled answer", 1, 1 << 20, 0},
        {"temperature", OPT_F32, &o.temperature, "sampling temperature; every log-probability of the update is taken at it", 0,
         100, 0},
        {"clip", OPT_F32, &o.clip_eps, "ratio clip epsilon", 1e-6, 10, 0},
        {"kl", OPT_F32, &o.kl_coef, ppo ? "per-token KL penalty in the reward" : "weight of the k3 KL to the reference (0 = off)",
         0, 1e3, 0},
        {"epochs", OPT_I32, &o.epochs, "passes over each rollout batch", 1, 1000, 0},
        {"minibatches", OPT_I32, &o.minibatches, "updates per pass", 1, 4096, 0},
        {"gamma", OPT_F32, &o.gamma, "PPO discount γ", 0, 1, 0},
        {"lambda", OPT_F32, &o.lam, "PPO GAE λ", 0, 1, 0},
        {"vf-coef", OPT_F32, &o.vf_coef, "PPO value loss weight", 0, 1e3, 0},
        {"value-clip", OPT_F32, &o.value_clip, "PPO value clip (0 = off)", 0, 1e6, 0},
        {"kl-target", OPT_F32, &o.kl_target, "PPO adaptive KL control: the per-answer KL the coefficient steers to "
                                             "(0 = a fixed --kl)", 0, 1e6, 0},
        {"kl-horizon", OPT_I32, &o.kl_horizon, "PPO adaptive KL: rollouts over which the coefficient may change by "
                                               "up to 20%", 1, 1 << 30, 0},
        {"whiten-rewards", OPT_BOOL, &o.whiten_rewards, "standardise each step's scores (mean 0, std 1) before use",
         NO_RANGE, 0},
        {"group-baseline", OPT_BOOL, &o.group_baseline, "PPO: subtract from each answer's score the mean of its "
                                                        "prompt's --group answers (before whitening)", NO_RANGE, 0},
        {"monitor-fn", OPT_STR, &monitor_fn, "a second judge, logged as monitor_reward and never trained on (a rule "
                                             "reward name, e.g. poem beside --reward-model)", NO_RANGE, 0},
        {"anchor-fn", OPT_STR, &anchor_fn, "a rule reward added to every rollout's score (beside --reward-model: the "
                                           "rule keeps the learnt judge from being gamed; with --whiten-rewards each "
                                           "is standardised first)", NO_RANGE, 0},
        {"anchor-weight", OPT_F32, &o.anchor_weight, "weight of --anchor-fn's score", 0, 1e3, 0},
        RL_CLI_COMMON_OPTS(c, o, "prompts per step"),
    };
    unsigned char given[CLI_NOPTS(opts)];
    int rc = cli_parse_given(cmd, ppo ? "RLHF with PPO: value head, GAE, clipped surrogate, KL penalty to the reference; "
                                        "writes model.safetensors (--method lora: adapter.safetensors), value.safetensors."
                                      : "Group relative policy optimisation with rule-based or reward-model rewards; writes "
                                        "model.safetensors (--method lora: adapter.safetensors).",
                             opts, CLI_NOPTS(opts), argc, argv, 1, given);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : rc;
    if (!reward_fn == !reward_model)
        return cli_report(cmd, jl_fail(JL_ERR_ARG, "give exactly one of --reward-fn and --reward-model"));
    char resume[4096];
    jl_status st = rl_cli_apply(&c, &o, opts, CLI_NOPTS(opts), given, resume, sizeof resume);
    if (st != JL_OK) return cli_report(cmd, st);
    size_t skipped = 0;
    o.skipped_long = &skipped;
    jl_checkpoint ck = {0};
    jl_tokenizer *tok = NULL;
    jl_chat_format *fmt = NULL;
    jl_rl_set *set = NULL;
    jl_reward_fn *fn = NULL;
    jl_jsonl_options jo = {0, 0};
    jl_jsonl_stats js;
    if (reward_fn) {
        st = jl_reward_fn_by_name(reward_fn, &fn);
    } else {
        jl_reward_model *rm;
        st = jl_reward_model_load(reward_model, &rm);
        if (st == JL_OK) st = jl_reward_fn_from_model(rm, &fn);
    }
    jl_reward_fn *monitor = NULL;
    if (st == JL_OK && monitor_fn) st = jl_reward_fn_by_name(monitor_fn, &monitor);
    o.monitor = monitor;
    jl_reward_fn *anchor = NULL;
    if (st == JL_OK && anchor_fn) st = jl_reward_fn_by_name(anchor_fn, &anchor);
    o.anchor = anchor;
    if (st == JL_OK) st = rl_cli_load_model(policy, &ck, &tok, &fmt);
    o.chat = fmt; /* the policy's own chat template, if it has one */
    if (st == JL_OK) st = jl_rl_load(prompts, &jo, &set, &js);
    if (st == JL_OK) {
        fprintf(stderr, "%s: %zu prompts from %s; reward %s; %d prompts × %d answers per step; %ld steps; lr %g\n",
                cmd, jl_rl_count(set), prompts, reward_fn ? reward_fn : reward_model, o.train.run.batch, o.group,
                o.train.run.steps, (double)o.train.optim.lr);
        static const char *const show[] = {"reward", "kl", "entropy", "clip_frac", NULL};
        static const char *const show_monitor[] = {"reward", "monitor_reward", "kl", "entropy", NULL};
        static const char *const show_anchor[] = {"reward", "anchor_reward", "kl", "entropy", NULL};
        cli_precision_report(cmd, &o.train.run);
        cli_train_view view;
        cli_train_view_start(&view, cmd, o.train.run.steps, anchor ? show_anchor : monitor ? show_monitor : show);
        st = ppo ? jl_ppo_train(ck.model, tok, set, fn, &o, cli_train_on_event, &view)
                 : jl_grpo_train(ck.model, tok, set, fn, &o, cli_train_on_event, &view);
        cli_train_view_finish(&view, st);
    }
    jl_rl_free(set);
    jl_reward_fn_free(fn);
    jl_reward_fn_free(monitor);
    jl_reward_fn_free(anchor);
    jl_chat_format_free(fmt);
    jl_tokenizer_free(tok);
    jl_checkpoint_free(&ck);
    rl_cli_report_skipped(skipped, cmd);
    return cli_train_exit(cmd, st);
}
