/* Data parallelism of the RL stages (GRPO, PPO) under mpirun (jielong/dist.h): each rank rolls out its share of
 * the step's rows and computes its share of every forward and backward; what the algorithm needs whole (the
 * rollouts, their rewards, log-probs and values, hence group normalisation, reward and advantage whitening) is
 * gathered so that every rank holds the same full batch. Every function is a no-op for one rank. */
#ifndef JL_TRAIN_RL_DIST_H
#define JL_TRAIN_RL_DIST_H
#include "train/rl_losses.h"

/* v[0..n) (n ≤ 31) becomes the sum over the ranks, added in rank order (the same bits everywhere). st: this
 * rank's status so far (jl_dist_agree). */
jl_status rl_dist_sum(jl_status st, double *v, int n);
/* 1 when this rank takes the k-th of a sequence of items dealt round the ranks (k mod N); always 1 alone. */
int rl_dist_mine(int k);
/* This rank's part of n items in rank order: [*first, *first + *count); one rank: all of them. */
void rl_dist_part(int n, int *first, int *count);
/* seqs[0..N·per_rank): this rank filled rows [rank·per_rank, (rank+1)·per_rank) (ids of at most cap tokens).
 * Afterwards every rank holds every row (copies of the others'). st: this rank's status so far; a failing rank
 * stops them all (the lowest failing rank's status; jl_dist_agree). */
jl_status rl_dist_share_rollouts(jl_status st, rl_seq *seqs, int per_rank, int cap);
/* Every rank's `floats` values of mine, in rank order, into all (N·floats). */
jl_status rl_dist_gather_floats(const float *mine, float *all, size_t floats);
/* Before a rank runs policy_batch_loss on `mine` rows of a minibatch of `total` rows: starts the gradient
 * all-reduce that rl_dist_policy_mean ends (jl_trainer_sum_begin; overlapped with the backward pass). */
void rl_dist_policy_begin(jl_trainer *t, int mine, int total);
/* After each rank ran policy_batch_loss on `mine` rows (in mb) of a minibatch of `total` rows (mine may be 0:
 * gradients zero, *s zero): the gradients (model or adapter, and the value head's) become the minibatch's,
 * Σ_r (mine_r / total)·g_r, and *s its figures (losses weighted by rows, per-token means by tokens), the same
 * bits on every rank. */
jl_status rl_dist_policy_mean(jl_trainer *t, rl_head *vh, const rl_batch *mb, int mine, int total, policy_stats *s);

#endif
