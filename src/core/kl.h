/* The knowledge-distillation loss of one student against a frozen teacher, per token:
 *
 *   L = α·τ²·KL(softmax(t/τ) ‖ softmax(s/τ)) + (1−α)·CE(softmax(s), y)
 *
 * and its gradient with respect to the student's logits s:
 *
 *   dL/ds = α·τ·(softmax(s/τ) − softmax(t/τ)) + (1−α)·(softmax(s) − onehot(y))
 *
 * (τ² keeps the soft term's gradient on the scale of the hard one as τ grows: d/ds of softmax(s/τ) brings 1/τ.) */
#ifndef JL_CORE_KL_H
#define JL_CORE_KL_H
#include <stdint.h>

/* student, teacher: (N, Vp) logits of which the first V columns are real (padding takes no part).
 * targets[n] < 0 (or ≥ V) ignores row n: loss 0, gradient 0 — the same ignore index as the cross-entropy.
 * The teacher may be NULL when alpha = 0. losses(N) gets each row's loss (may be NULL).
 * If dlogits is not NULL it receives dL/ds · dscale for the real columns and 0 for padding; it may alias
 * student (the gradient then overwrites the logits in place). Returns the sum of the counted rows' losses.
 * kl_sum (may be NULL) receives Σ KL(softmax(t/τ) ‖ softmax(s/τ)) over counted rows (without α·τ²). */
double jl_distill_loss_forward_backward(float *losses, float *dlogits, const float *student, const float *teacher,
                                        const int32_t *targets, int N, int V, int Vp, float temperature, float alpha,
                                        float dscale, double *kl_sum);

#endif
