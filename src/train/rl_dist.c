/* GRPO/PPO across ranks (see rl_dist.h). */
#include "train/rl_dist.h"
#include "core/kernels.h"
#include "jielong/dist.h"
#include <stdlib.h>
#include <string.h>

void rl_dist_part(int n, int *first, int *count) {
    const long N = jl_dist_size(), r = jl_dist_rank();
    *first = (int)((long)n * r / N);
    *count = (int)((long)n * (r + 1) / N) - *first;
}

int rl_dist_mine(int k) { return k % jl_dist_size() == jl_dist_rank(); }

jl_status rl_dist_sum(jl_status st, double *v, int n) {
    const int N = jl_dist_size();
    if (N == 1) return st;
    double all[64 * 31];
    if (N > 64 || n > 31) return jl_fail(JL_ERR_ARG, "rl_dist_sum: more than 64 ranks or 31 values");
    if ((st = jl_dist_agree_with(st, NULL, v, all, sizeof(double) * (size_t)n)) != JL_OK) return st;
    for (int k = 0; k < n; k++) {
        v[k] = 0;
        for (int r = 0; r < N; r++) v[k] += all[r * n + k];
    }
    return JL_OK;
}

jl_status rl_dist_gather_floats(const float *mine, float *all, size_t floats) {
    if (jl_dist_size() == 1) return JL_OK;
    return jl_dist_allgather(mine, all, floats * sizeof(float));
}

/* Rows lo.. of seqs as (len, resp_start) pairs and ids padded to cap (zeros). */
static void pack_rows(const rl_seq *seqs, int lo, int n, int cap, int32_t *meta, int32_t *ids) {
    memset(ids, 0, (size_t)n * (size_t)cap * sizeof *ids);
    for (int i = 0; i < n; i++) {
        const rl_seq *s = &seqs[lo + i];
        meta[2 * i] = s->len;
        meta[2 * i + 1] = s->resp_start;
        memcpy(ids + (size_t)i * cap, s->ids, (size_t)s->len * sizeof *ids);
    }
}

jl_status rl_dist_share_rollouts(jl_status st, rl_seq *seqs, int per_rank, int cap) {
    const int N = jl_dist_size(), me = jl_dist_rank();
    if (N == 1) return st;
    const size_t rows = (size_t)N * (size_t)per_rank, cells = rows * (size_t)cap;
    int32_t *meta = malloc(2 * sizeof(int32_t) * (rows + (size_t)per_rank));
    int32_t *ids = malloc(sizeof(int32_t) * (cells + (size_t)per_rank * cap));
    if (st == JL_OK && (!meta || !ids)) st = jl_fail(JL_ERR_NOMEM, "out of memory (sharing %zu rollouts)", rows);
    int32_t *my_meta = meta ? meta + 2 * rows : NULL, *my_ids = ids ? ids + cells : NULL;
    if (st == JL_OK) pack_rows(seqs, me * per_rank, per_rank, cap, my_meta, my_ids);
    /* the agreement carries the lengths: a rank whose rollout failed stops every rank here */
    st = jl_dist_agree_with(st, NULL, my_meta, meta, 2 * sizeof(int32_t) * (size_t)per_rank);
    if (st == JL_OK) st = jl_dist_allgather(my_ids, ids, sizeof(int32_t) * (size_t)per_rank * cap);
    for (size_t i = 0; i < rows && st == JL_OK; i++) {
        if ((int)(i / (size_t)per_rank) == me) continue;
        rl_seq *s = &seqs[i];
        int len = meta[2 * i];
        if (len < 1 || len > cap || meta[2 * i + 1] < 0 || meta[2 * i + 1] > len) {
            st = jl_fail(JL_ERR_RUNTIME, "rollout %zu from rank %zu: length %d out of range", i, i / per_rank, len);
            break;
        }
        rl_seq_free(s);
        if (!(s->ids = malloc((size_t)len * sizeof *s->ids))) {
            st = jl_fail(JL_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(s->ids, ids + i * (size_t)cap, (size_t)len * sizeof *s->ids);
        s->len = len;
        s->resp_start = meta[2 * i + 1];
    }
    free(meta);
    free(ids);
    return st;
}

enum { FIG_LOSS, FIG_POLICY, FIG_VALUE, FIG_KL, FIG_ENTROPY, FIG_CLIP, FIG_RATIO, FIG_TOKENS, FIGS };

/* Each rank's mean over its rows, weighted by its share of the minibatch. */
static float share(int mine, int total) { return (float)((double)mine / total); }

void rl_dist_policy_begin(jl_trainer *t, int mine, int total) { jl_trainer_sum_begin(t, share(mine, total)); }

jl_status rl_dist_policy_mean(jl_trainer *t, rl_head *vh, const rl_batch *mb, int mine, int total, policy_stats *s) {
    const int N = jl_dist_size();
    if (N == 1) return JL_OK;
    /* the model's (or adapter's) gradients: share·g summed over the ranks (begun by rl_dist_policy_begin) */
    jl_status st = jl_trainer_sum_end(t);
    if (st == JL_OK && N > 64) st = jl_fail(JL_ERR_ARG, "GRPO/PPO: more than 64 ranks");
    if (mine == 0) memset(s, 0, sizeof *s);
    double tokens = 0, w = (double)mine / total;
    for (int r = 0; r < mine; r++) tokens += rl_row_count(mb, r);
    double fig[FIGS] = {s->loss * w, s->policy_loss * w, s->value_loss * w, s->kl * w, s->entropy * tokens,
                        s->clip_frac * tokens, s->ratio_mean * tokens, tokens}, all[64 * FIGS];
    if ((st = jl_dist_agree_with(st, NULL, fig, all, sizeof fig)) != JL_OK) return st;
    double sum[FIGS] = {0};
    for (int r = 0; r < N; r++)
        for (int k = 0; k < FIGS; k++) sum[k] += all[r * FIGS + k];
    double per_token = sum[FIG_TOKENS] > 0 ? 1.0 / sum[FIG_TOKENS] : 0.0;
    *s = (policy_stats){.loss = sum[FIG_LOSS], .policy_loss = sum[FIG_POLICY], .value_loss = sum[FIG_VALUE],
                        .kl = sum[FIG_KL], .entropy = sum[FIG_ENTROPY] * per_token,
                        .clip_frac = sum[FIG_CLIP] * per_token, .ratio_mean = sum[FIG_RATIO] * per_token};
    if (!vh) return JL_OK;
    jl_scale_inplace(vh->g, share(mine, total), (size_t)vh->C);
    return jl_dist_sum_floats(vh->g, (size_t)vh->C);
}
