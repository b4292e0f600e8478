/* Preference learning and RLHF, each a thin loop over the training engine:
 *   reward  a transformer with a scalar head ("score.weight", (1, C)) on the final normalised hidden state of the
 *           last token, trained with the Bradley-Terry loss −log σ(r_chosen − r_rejected);
 *   dpo     Direct Preference Optimisation against a frozen copy of the starting model (sigmoid or IPO loss);
 *   grpo    G sampled answers per prompt, group-normalised advantages, clipped ratio, optional k3 KL;
 *   ppo     a value head on the policy, per-token KL penalty in the reward, GAE(γ, λ), clipped surrogate,
 *           value clipping, several epochs per rollout batch.
 * Texts are rendered in the model's chat format (jl_rl_opts.chat: its own Jinja template, e.g. an imported
 * model's; NULL = the built-in <|bos|><|user|>prompt<|end|><|assistant|>response<|end|>) by the renderer sft uses;
 * the response tokens (the span sft trains: response text + the format's end-of-turn marker) are the ones scored
 * and trained, and rollouts stop at that marker (or eos).
 * Each is a stage of the one training loop (jielong/train.h): events with named metrics, checkpoints that
 * resume bit for bit, metrics.jsonl. The library never prints. */
#ifndef JIELONG_RLHF_H
#define JIELONG_RLHF_H
#include "jielong/adapter.h"
#include "jielong/checkpoint.h"
#include "jielong/dataset.h"
#include "jielong/tokenizer.h"
#include "jielong/train.h"

/* ---- reward model ---- */

typedef struct jl_reward_model jl_reward_model;
/* Reads a reward model folder (model.safetensors + score.safetensors, as written by jl_reward_train). */
jl_status jl_reward_model_load(const char *dir, jl_reward_model **out);
/* The scalar score of `response` to `prompt`, rendered in the chat format the reward model's checkpoint carries
 * (its own template, else the built-in one). Errors: empty response, text longer than the context. */
jl_status jl_reward_model_score(jl_reward_model *rm, const char *prompt, const char *response, float *score);
/* The tokenizer the reward model reads text with (tokenizer.json text). */
const char *jl_reward_model_tokenizer_json(const jl_reward_model *rm);
void jl_reward_model_free(jl_reward_model *rm);

/* ---- options shared by the four stages ---- */

typedef enum { JL_DPO_SIGMOID = 0, JL_DPO_IPO = 1 } jl_dpo_loss;

typedef struct {
    jl_stage_opts train;  /* run.batch: pairs (reward, dpo) or prompts (grpo, ppo) per step; run.eval_every:
                           * reward, dpo held-out accuracy every N steps (and at the end; 0 = end only);
                           * run.resume: continue from that training checkpoint (every stage resumes bit for bit) */
    int max_len;          /* tokens of prompt + response (≤ the model's context; 0 = the context) */
    int skip_long;        /* 1: drop (and count) pairs/prompts longer than max_len; 0: that is an error */
    size_t *skipped_long; /* out, may be NULL: how many were dropped */
    double eval_fraction; /* reward, dpo: share of pairs held out for accuracy (at least 1 pair) */
    /* dpo */
    float beta;
    jl_dpo_loss loss;
    /* grpo, ppo */
    int group;            /* grpo: samples per prompt */
    int max_new;          /* tokens per sampled answer */
    float temperature;
    float clip_eps;       /* ratio clip ε */
    float kl_coef;        /* grpo: weight of the k3 KL term (0 = off); ppo: per-token KL penalty in the reward */
    int epochs;           /* optimisation passes over each rollout batch */
    int minibatches;      /* per epoch */
    float gamma, lam;     /* ppo: GAE */
    float vf_coef;        /* ppo: value loss weight */
    float value_clip;     /* ppo: values move at most this far from the rollout's (0 = off) */
    /* ppo: adaptive KL control (Ziegler et al. 2019): after each step the KL coefficient becomes
     * kl·(1 + clip(KL/kl_target − 1, −0.2, 0.2)·rollouts/kl_horizon), KL the step's mean Σ log π/π_ref of an
     * answer; kl_target 0 = a fixed coefficient. Logged as kl_coef. */
    float kl_target;
    int kl_horizon;       /* rollouts (default 100) */
    int whiten_rewards;   /* grpo, ppo: 1 = the step's scores standardised (mean 0, std 1) before use */
    int group_baseline;   /* ppo (group ≥ 2): 1 = each answer's score minus the mean score of its prompt's group
                           * (before whitening; the anchor's too): the prompt's difficulty (a 五绝 scores lower
                           * than a 律诗 by the reward model) is no longer part of the advantage */
    struct jl_reward_fn *monitor; /* grpo, ppo: a second judge of every rollout, logged as monitor_reward and never
                                   * trained on (e.g. the poem rules beside a reward model); NULL = none. Borrowed. */
    struct jl_reward_fn *anchor;  /* grpo, ppo: a rule reward added to every rollout's score with weight anchor_weight
                                   * (with whiten_rewards both are standardised first): a reward model beside the
                                   * rule it approximates cannot be gamed where the rule says no. NULL = none.
                                   * Borrowed. Logged as anchor_reward. */
    float anchor_weight;          /* default 1 */
    /* LoRA as the trainable part: the model's weights stay frozen (bit for bit), a fresh adapter (seeded from
     * seed) is trained together with the stage's head (reward score, PPO value); the reference of dpo/grpo/ppo
     * is the same weights with the adapter detached, so no second model is held. Outputs adapter.safetensors
     * (PEFT names, for `jielong export --merge`) instead of model.safetensors; reward also writes the merged
     * model.safetensors so the folder stays a reward model. */
    int use_lora;
    jl_lora_opts lora;
    /* The policy's chat format (jl_chat_format_from_checkpoint; NULL = built-in): renders every prompt and
     * response, ends rollouts, and is kept in the saved model.safetensors. A reward model renders in its own
     * (the one its folder's model.safetensors carries). Borrowed. */
    const struct jl_chat_format *chat;
} jl_rl_opts;

typedef enum { JL_STAGE_REWARD, JL_STAGE_DPO, JL_STAGE_GRPO, JL_STAGE_PPO } jl_rl_stage;
void jl_rl_defaults(jl_rl_opts *o, jl_rl_stage stage);

/* Every stage trains in place and writes out_dir/model.safetensors (with `tok`) at the end (use_lora: the adapter,
 * see above; the model passed in is then left unchanged). */

/* Reward model from `base` (its weights are the starting trunk; a fresh score head is initialised from seed).
 * Logs loss, accuracy, margin; held-out accuracy as eval_accuracy. Writes model.safetensors + score.safetensors. */
jl_status jl_reward_train(jl_model *base, const jl_tokenizer *tok, const jl_pref_set *pairs, const jl_rl_opts *o,
                          jl_event_fn fn, void *user);

/* DPO of `policy`; the frozen reference is a copy of it taken at the start (use_lora: the policy without adapter). Logs loss, rewards_chosen,
 * rewards_rejected, margin, accuracy (chosen implicit reward > rejected), and their held-out eval_ versions. */
jl_status jl_dpo_train(jl_model *policy, const jl_tokenizer *tok, const jl_pref_set *pairs, const jl_rl_opts *o,
                       jl_event_fn fn, void *user);

/* The reward of an RL rollout: a rule by name, or a reward model. */
typedef struct jl_reward_fn jl_reward_fn;
/* Built-in names: "poem" (jl_poem_reward against the prompt record's "form" field), "x_count" (share of 'x'
 * characters in the answer), "length" (characters of the answer), "contains" (1 when the answer contains the
 * record's "expected" field), "answer" (1 when the answer is right as jl_tool_answer_correct judges it: for a record
 * whose "task" is "calc" or absent, the last number of the answer equals "expected"; else "expected" appears in it).
 * Unknown names are an error listing the known ones. */
jl_status jl_reward_fn_by_name(const char *name, jl_reward_fn **out);
/* A reward model; its tokenizer must be the policy's (checked by the stages). Takes ownership of rm. */
jl_status jl_reward_fn_from_model(jl_reward_model *rm, jl_reward_fn **out);
/* Scores one answer to prompt record i of set. */
jl_status jl_reward_fn_score(jl_reward_fn *fn, const jl_rl_set *set, size_t i, const char *answer, float *reward);
void jl_reward_fn_free(jl_reward_fn *fn);

/* GRPO of `policy` on the prompts. Logs reward (mean), reward_std, kl, entropy, clip_frac, loss, ratio_first
 * (the mean ratio of the first minibatch: 1 up to rounding), answer_len. */
jl_status jl_grpo_train(jl_model *policy, const jl_tokenizer *tok, const jl_rl_set *prompts, jl_reward_fn *reward,
                        const jl_rl_opts *o, jl_event_fn fn, void *user);

/* PPO of `policy` with a value head (value.safetensors in out_dir). Logs reward (mean score), kl, entropy,
 * clip_frac, value_loss, loss, ratio_first, answer_len. */
jl_status jl_ppo_train(jl_model *policy, const jl_tokenizer *tok, const jl_rl_set *prompts, jl_reward_fn *reward,
                       const jl_rl_opts *o, jl_event_fn fn, void *user);

#endif
