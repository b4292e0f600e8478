/* The losses of the preference and RL stages on one batch, with their gradients: separate from the training
 * loops so the tests can check each gradient against finite differences. With `grads` NULL only the loss is
 * computed; otherwise gradients are ACCUMULATED into grads (a view over a gradient block) and the head's g. */
#ifndef JL_TRAIN_RL_LOSSES_H
#define JL_TRAIN_RL_LOSSES_H
#include "train/rl_common.h"

/* Rows 2i (chosen) and 2i+1 (rejected) of b are pair i; rewards r = w·h(last token).
 * Loss: mean over pairs of −log σ(r_c − r_r). */
typedef struct {
    double loss, accuracy, margin; /* accuracy: share of pairs with r_c > r_r; margin: mean r_c − r_r */
} rm_stats;
void rm_scores(jl_model *m, jl_acts *a, const rl_batch *b, const rl_head *h, float *scores);
double rm_pairs_loss(jl_model *m, jl_acts *a, const rl_batch *b, rl_head *h, const jl_params *grads, rm_stats *s);

/* DPO on pairs laid out like the reward model's; ref_logp(rows) holds the reference model's summed response
 * log-probs. sigmoid: −log σ(β·h); IPO: (h − 1/(2β))², h = (π_c − ref_c) − (π_r − ref_r). */
typedef struct {
    double loss, chosen, rejected, margin, accuracy; /* implicit rewards β(π − ref): means over pairs */
} dpo_stats;
void dpo_seq_logps(jl_model *m, jl_acts *a, const rl_batch *b, float *tok_logp, double *seq_logp);
double dpo_pairs_loss(jl_model *m, jl_acts *a, const rl_batch *b, const double *ref_logp, float beta,
                      jl_dpo_loss kind, float *tok_buf, const jl_params *grads, dpo_stats *s);

/* The clipped policy objective of GRPO/PPO over response tokens of the batch:
 *   per token: −min(ρ·A, clip(ρ, 1−ε, 1+ε)·A) + kl_coef·k3(ref, π),  ρ = exp(logp − old_logp),
 *   averaged over each row's tokens, then over rows (weights row_weight, NULL = 1/rows).
 * Every log π is at in->temperature: the policy trained is the distribution its rollouts were drawn from.
 * PPO adds a value head: v = w·h at each position, loss vf_coef · ½·max((v−R)², (clip(v, v_old ± c) − R)²)
 * averaged the same way (value_head NULL: no value loss). Arrays are per position (rows·T). */
typedef struct {
    const float *old_logp, *ref_logp, *adv; /* ref_logp may be NULL when kl_coef is 0 */
    const float *old_values, *returns;     /* PPO only */
    float clip_eps, kl_coef, vf_coef, value_clip;
    float temperature; /* log π of the sampling distribution softmax(logits / T) (0 or 1: the logits as they are);
                        * old_logp and ref_logp must be at the same T (rl_forward_logprobs_at) */
} policy_inputs;
typedef struct {
    double loss, policy_loss, value_loss, kl, entropy, clip_frac, ratio_mean;
} policy_stats;
double policy_batch_loss(jl_model *m, jl_acts *a, const rl_batch *b, const policy_inputs *in, rl_head *value_head,
                         float *tok_buf, float *tok_buf2, const jl_params *grads, policy_stats *s);

#endif
