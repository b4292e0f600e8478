/* Per-token log-probabilities of chosen tokens and their backward with a coefficient per row: the pieces of
 * every sequence-level loss (DPO, PPO, GRPO), which weight each response token's log-prob differently, where
 * the fused cross-entropy of kernels.h scales all rows alike. */
#ifndef JL_CORE_SEQLOSS_H
#define JL_CORE_SEQLOSS_H
#include <stdint.h>

/* logits(N, Vp), first V columns real. For rows with targets[n] ≥ 0: logp[n] = log softmax(logits[n])[target];
 * entropy[n] = -Σ p log p of the row (entropy may be NULL). Rows with targets[n] < 0 get 0 in both. */
void jl_token_logprobs(float *logp, float *entropy, const float *logits, const int32_t *targets, int N, int V,
                       int Vp);

/* The gradient of L = Σₙ dlogp[n] · logp[n] with respect to the logits: dlogits[n] = dlogp[n] · (onehot − softmax)
 * on real columns of counted rows, 0 on padding columns and ignored rows. Overwrites (does not accumulate);
 * dlogits may alias logits. */
void jl_token_logprobs_backward(float *dlogits, const float *logits, const int32_t *targets, const float *dlogp,
                                int N, int V, int Vp);

#endif
