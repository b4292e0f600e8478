/* jielong grpo and jielong ppo: one loop of rollouts → rewards → advantages → several epochs of clipped policy
 * updates. GRPO normalises each answer's reward within its group of G answers to the same prompt; PPO uses a
 * value head on the policy, a per-token KL penalty to the frozen reference in the reward and GAE(γ, λ). */
#include "train/rl_losses.h"
#include "train/rl_dist.h"
#include "core/rng.h"
#include "jielong/dist.h"
#include "model/model.h"
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { ALGO_GRPO, ALGO_PPO } algo;

/* Per-position arrays of a batch (rows·T each) and the rows' scores. */
typedef struct {
    float *old_logp, *ref_logp, *adv, *old_values, *returns;
} pos_arrays;

typedef struct {
    algo kind;
    const jl_rl_opts *o;
    jl_trainer *t;
    rl_ref ref;         /* the frozen starting policy (a copy, or the base under the adapter) */
    jl_model *policy;
    jl_lora *lora;      /* use_lora: the trained adapter on the frozen policy weights */
    rl_head value;      /* PPO */
    rl_seq *prompts;    /* encoded generation prompts */
    size_t n_prompts, pos, *order;
    uint64_t rng;
    int rows, cap_T;
    int lo, local;      /* this rank's rows [lo, lo + local) of the rollouts (mpirun; one process: all rows) */
    rl_seq *seqs;       /* this iteration's rollouts */
    float *scores, *anchor_scores; /* the reward's scores; the anchor rule's (o->anchor) */
    double kl_coef;     /* PPO's KL coefficient now (adaptive with kl_target) */
    rl_batch full, mb;
    pos_arrays fa, ma;
    float *logp, *buf;
} run;

static void free_seqs(rl_seq *s, int n) {
    for (int i = 0; s && i < n; i++) rl_seq_free(&s[i]);
}

static float *falloc(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static jl_status alloc_arrays(pos_arrays *p, size_t n) {
    p->old_logp = falloc(n);
    p->ref_logp = falloc(n);
    p->adv = falloc(n);
    p->old_values = falloc(n);
    p->returns = falloc(n);
    return p->old_logp && p->ref_logp && p->adv && p->old_values && p->returns ? JL_OK
                                                                             : jl_fail(JL_ERR_NOMEM, "out of memory");
}

static void free_arrays(pos_arrays *p) {
    free(p->old_logp);
    free(p->ref_logp);
    free(p->adv);
    free(p->old_values);
    free(p->returns);
}

static jl_status encode_prompts(run *r, const jl_tokenizer *tok, const jl_rl_set *set, int max_len) {
    r->n_prompts = jl_rl_count(set);
    if (!r->n_prompts) return jl_fail(JL_ERR_ARG, "no prompts");
    r->prompts = calloc(r->n_prompts, sizeof *r->prompts);
    r->order = malloc(r->n_prompts * sizeof *r->order);
    if (!r->prompts || !r->order) return jl_fail(JL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < r->n_prompts; i++) {
        char what[64];
        snprintf(what, sizeof what, "prompt %zu", i + 1);
        /* at least one answer token must fit after the prompt */
        jl_status st = rl_encode(tok, r->o->chat, jl_rl_prompt(set, i), NULL, r->o->skip_long ? INT_MAX : max_len - 1, what,
                                 &r->prompts[i]);
        if (st != JL_OK) return st;
        r->order[i] = i;
    }
    if (r->o->skip_long) { /* keep the prompts that leave room for an answer, in order */
        size_t kept = 0;
        for (size_t i = 0; i < r->n_prompts; i++) {
            if (r->prompts[i].len > max_len - 1) {
                rl_seq_free(&r->prompts[i]);
                if (r->o->skipped_long) (*r->o->skipped_long)++;
                continue;
            }
            r->prompts[kept] = r->prompts[i];
            r->order[kept] = kept;
            kept++;
        }
        r->n_prompts = kept;
        if (!kept) return jl_fail(JL_ERR_ARG, "no prompt fits the context of %d", max_len);
    }
    rl_shuffle(r->order, r->n_prompts, &r->rng);
    return JL_OK;
}

/* Rolls out group answers for each of the next o->batch prompts; rows = batch·group, prompt of row i in which[i]. */
static jl_status rollout(run *r, const jl_tokenizer *tok, size_t *which) {
    const jl_rl_opts *o = r->o;
    const rl_seq *rows[r->rows];
    for (int p = 0; p < r->rows / o->group; p++) { /* batch prompts per rank */
        if (r->pos >= r->n_prompts) {
            r->pos = 0;
            rl_shuffle(r->order, r->n_prompts, &r->rng);
        }
        size_t k = r->order[r->pos++];
        for (int g = 0; g < o->group; g++) {
            rows[p * o->group + g] = &r->prompts[k];
            which[p * o->group + g] = k;
        }
    }
    free_seqs(r->seqs, r->rows);
    if (!jl_dist_launched())
        return rl_rollout(r->t->model, &r->t->acts, tok, o->chat, rows, r->rows, o->max_new, r->cap_T, o->temperature, &r->rng,
                          -1, r->seqs);
    /* under mpirun (even -np 1): one stream per row, so a row's answer does not depend on which rank samples it */
    jl_rng g = {r->rng};
    uint64_t seed = jl_rng_u64(&g);
    r->rng = g.state;
    jl_status st = rl_rollout(r->t->model, &r->t->acts, tok, o->chat, rows + r->lo, r->local, o->max_new, r->cap_T,
                              o->temperature, &seed, r->lo, r->seqs + r->lo);
    if (st == JL_OK) st = jl_dist_injected_fault(r->t->step); /* test hook: JL_DIST_FAIL */
    return rl_dist_share_rollouts(st, r->seqs, r->local, r->cap_T); /* every rank then holds every rollout */
}

/* fn's scores of the rollouts into out[rows]. Under mpirun each rank scores once the rows it rolled out
 * ([lo, lo + local)) and every rank's scores are gathered: the same bits as scoring every row on every rank (a
 * row's score depends on its text alone); a rank whose scoring fails stops every rank (jl_dist_agree). */
static jl_status score_mine(run *r, const jl_tokenizer *tok, const jl_rl_set *set, jl_reward_fn *fn,
                            const size_t *which, float *out) {
    float mine[r->local];
    jl_status st = JL_OK;
    for (int i = 0; i < r->local && st == JL_OK; i++) {
        char *text;
        if ((st = rl_answer_text(tok, r->o->chat, &r->seqs[r->lo + i], &text)) != JL_OK) break;
        st = jl_reward_fn_score(fn, set, which[r->lo + i], text, &mine[i]);
        free(text);
    }
    if (r->local == r->rows) {
        memcpy(out, mine, sizeof mine);
        return st;
    }
    return jl_dist_agree_with(st, NULL, mine, out, sizeof mine);
}

static jl_status score_rows(run *r, const jl_tokenizer *tok, const jl_rl_set *set, jl_reward_fn *fn,
                            const size_t *which, double *answer_len) {
    *answer_len = 0;
    for (int i = 0; i < r->rows; i++) *answer_len += (double)(r->seqs[i].len - r->seqs[i].resp_start) / r->rows;
    return score_mine(r, tok, set, fn, which, r->scores);
}

/* GRPO: (r − mean) / (std + 1e-4) within each group, the same for every token of an answer. */
static void grpo_advantages(run *r) {
    const int G = r->o->group;
    for (int g0 = 0; g0 < r->rows; g0 += G) {
        double mean = 0, var = 0;
        for (int i = 0; i < G; i++) mean += r->scores[g0 + i] / G;
        for (int i = 0; i < G; i++) var += (r->scores[g0 + i] - mean) * (r->scores[g0 + i] - mean) / G;
        for (int i = 0; i < G; i++) {
            float a = (float)((r->scores[g0 + i] - mean) / (sqrt(var) + 1e-4));
            for (int t = 0; t < r->full.T; t++) r->fa.adv[(size_t)(g0 + i) * r->full.T + t] = a;
        }
    }
}

/* PPO: per-token reward −kl_coef·(log π_old − log π_ref), plus the score on the last token; GAE(γ, λ) over the
 * answer's tokens with the rollout values; returns = A + V; advantages whitened over the batch. */
static void ppo_advantages(run *r) {
    const rl_batch *b = &r->full;
    const double gamma = r->o->gamma, lam = r->o->lam;
    double sum = 0, sq = 0;
    long n = 0;
    for (int row = 0; row < b->rows; row++) {
        double next_v = 0, next_adv = 0;
        int last = 1;
        for (int t = b->T - 1; t >= 0; t--) {
            size_t p = (size_t)row * b->T + t;
            if (b->targets[p] < 0) continue;
            double rew = -r->kl_coef * ((double)r->fa.old_logp[p] - r->fa.ref_logp[p]);
            if (last) rew += r->scores[row];
            last = 0;
            double v = r->fa.old_values[p], delta = rew + gamma * next_v - v;
            double adv = delta + gamma * lam * next_adv;
            r->fa.adv[p] = (float)adv;
            r->fa.returns[p] = (float)(adv + v);
            next_v = v;
            next_adv = adv;
            sum += adv;
            sq += adv * adv;
            n++;
        }
    }
    double mean = n ? sum / n : 0, std = n ? sqrt(fmax(sq / n - mean * mean, 0.0)) : 1;
    for (size_t p = 0; p < (size_t)b->rows * b->T; p++)
        if (b->targets[p] >= 0) r->fa.adv[p] = (float)((r->fa.adv[p] - mean) / (std + 1e-8));
}

/* Copies rows idx[0..n) of the full batch and its arrays into the minibatch (same T). */
static void gather(run *r, const int *idx, int n) {
    const int T = r->full.T;
    r->mb.rows = n;
    r->mb.T = T;
    float *const src[] = {r->fa.old_logp, r->fa.ref_logp, r->fa.adv, r->fa.old_values, r->fa.returns};
    float *const dst[] = {r->ma.old_logp, r->ma.ref_logp, r->ma.adv, r->ma.old_values, r->ma.returns};
    for (int i = 0; i < n; i++) {
        size_t s = (size_t)idx[i] * T, d = (size_t)i * T;
        memcpy(r->mb.tokens + d, r->full.tokens + s, (size_t)T * sizeof(int32_t));
        memcpy(r->mb.targets + d, r->full.targets + s, (size_t)T * sizeof(int32_t));
        r->mb.len[i] = r->full.len[idx[i]];
        r->mb.resp_start[i] = r->full.resp_start[idx[i]];
        for (int k = 0; k < 5; k++) memcpy(dst[k] + d, src[k] + s, (size_t)T * sizeof(float));
    }
}

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

typedef struct {
    double loss, value_loss, entropy, clip_frac, ratio_first, grad_norm;
    float lr;
    int applied, updates;
} iter_stats;

/* Epochs × minibatches of clipped updates over the rollout batch (each rank computes its part of a minibatch). */
static jl_status optimise(run *r, iter_stats *is) {
    const jl_rl_opts *o = r->o;
    int idx[r->rows];
    for (int i = 0; i < r->rows; i++) idx[i] = i;
    int per = (r->rows + o->minibatches - 1) / o->minibatches;
    policy_inputs in = {.old_logp = r->ma.old_logp, .ref_logp = r->ma.ref_logp, .adv = r->ma.adv,
                        .old_values = r->ma.old_values, .returns = r->ma.returns, .clip_eps = o->clip_eps,
                        .kl_coef = r->kind == ALGO_GRPO ? o->kl_coef : 0.0f, .vf_coef = o->vf_coef,
                        .value_clip = o->value_clip, .temperature = o->temperature};
    rl_head *vh = r->kind == ALGO_PPO ? &r->value : NULL;
    for (int e = 0; e < o->epochs; e++) {
        if (e > 0) { /* a new order of rows each epoch */
            size_t tmp[r->rows];
            for (int i = 0; i < r->rows; i++) tmp[i] = (size_t)i;
            rl_shuffle(tmp, (size_t)r->rows, &r->rng);
            for (int i = 0; i < r->rows; i++) idx[i] = (int)tmp[i];
        }
        for (int s0 = 0; s0 < r->rows; s0 += per) {
            int n = r->rows - s0 < per ? r->rows - s0 : per, first, mine;
            rl_dist_part(n, &first, &mine);
            gather(r, idx + s0 + first, mine);
            rl_zero_grads(r->t, vh);
            policy_stats ps = {0};
            rl_dist_policy_begin(r->t, mine, n);
            rl_grad_pass_begin(r->t);
            if (mine) policy_batch_loss(r->t->model, &r->t->acts, &r->mb, &in, vh, r->logp, r->buf, &r->t->gview, &ps);
            rl_grad_pass_end(r->t);
            jl_status st = rl_dist_policy_mean(r->t, vh, &r->mb, mine, n, &ps);
            if (st != JL_OK) return st;
            if (is->updates == 0) {
                is->ratio_first = ps.ratio_mean;
                is->entropy = ps.entropy;
            }
            int applied;
            if ((st = rl_update(r->t, vh, ps.loss, &is->grad_norm, &is->lr, &applied)) != JL_OK) return st;
            is->applied += applied;
            is->updates++;
            is->loss += ps.loss;
            is->value_loss += ps.value_loss;
            is->clip_frac += ps.clip_frac;
        }
    }
    is->loss /= is->updates;
    is->value_loss /= is->updates;
    is->clip_frac /= is->updates;
    return JL_OK;
}

static jl_status check_opts(const jl_model *m, const jl_rl_opts *o, algo kind, int *max_len) {
    *max_len = o->max_len > 0 ? o->max_len : m->cfg.max_seq_len;
    if (*max_len > m->cfg.max_seq_len)
        return jl_fail(JL_ERR_ARG, "max length %d is larger than the model's context %d", *max_len, m->cfg.max_seq_len);
    if (o->train.run.batch < 1 || o->train.run.steps < 1 || o->group < 1 || o->max_new < 1 || o->epochs < 1 || o->minibatches < 1)
        return jl_fail(JL_ERR_ARG, "batch, steps, group, max-new, epochs and minibatches must be ≥ 1");
    if (o->minibatches > o->train.run.batch * o->group)
        return jl_fail(JL_ERR_ARG, "%d minibatches for %d rollouts", o->minibatches, o->train.run.batch * o->group);
    if (kind == ALGO_GRPO && o->group < 2) return jl_fail(JL_ERR_ARG, "GRPO needs a group of at least 2 answers");
    if (o->group_baseline && (kind != ALGO_PPO || o->group < 2))
        return jl_fail(JL_ERR_ARG, kind == ALGO_PPO ? "--group-baseline needs a group of at least 2 answers per prompt"
                                                    : "--group-baseline is for PPO (GRPO's advantages are already "
                                                      "relative to the group)");
    if (!(o->clip_eps > 0)) return jl_fail(JL_ERR_ARG, "clip epsilon must be > 0");
    return JL_OK;
}

static jl_status check_reward_tokenizer(jl_reward_fn *fn, const jl_tokenizer *tok) {
    jl_reward_model *rm = rl_reward_fn_model(fn);
    if (!rm) return JL_OK;
    char *json;
    jl_status st = jl_tokenizer_to_json(tok, &json);
    if (st != JL_OK) return st;
    int same = strcmp(json, jl_reward_model_tokenizer_json(rm)) == 0;
    free(json);
    return same ? JL_OK : jl_fail(JL_ERR_ARG, "the reward model was trained with another tokenizer than the policy");
}

static void run_free(run *r) {
    free_seqs(r->seqs, r->rows);
    free(r->seqs);
    free(r->scores);
    free(r->anchor_scores);
    free_seqs(r->prompts, (int)r->n_prompts);
    free(r->prompts);
    free(r->order);
    rl_batch_free(&r->full);
    rl_batch_free(&r->mb);
    free_arrays(&r->fa);
    free_arrays(&r->ma);
    free(r->logp);
    free(r->buf);
    rl_head_free(&r->value);
    rl_ref_free(&r->ref);
    jl_trainer_free(r->t);
    rl_lora_end(r->policy, r->lora);
}

static jl_status run_new(run *r, jl_model *policy, const jl_tokenizer *tok, const jl_rl_set *set, int max_len) {
    const jl_rl_opts *o = r->o;
    r->local = o->train.run.batch * o->group;
    r->rows = r->local * jl_dist_size(); /* under mpirun each rank rolls out batch × group of them */
    r->lo = r->local * jl_dist_rank();
    r->cap_T = max_len;
    r->rng = o->train.run.seed ^ 0x0F1E2D3C4B5A6978ull;
    r->kl_coef = o->kl_coef;
    size_t n = (size_t)r->rows * (size_t)max_len;
    r->policy = policy;
    jl_status st = encode_prompts(r, tok, set, max_len);
    if (st == JL_OK) st = rl_lora_begin(policy, o, r->local * max_len, &r->lora);
    /* the schedule counts optimizer updates; a rank's passes hold at most its rows */
    if (st == JL_OK) st = rl_trainer_new(policy, r->local, max_len, o, o->train.run.steps * o->epochs * o->minibatches, &r->t);
    if (st == JL_OK) st = rl_ref_new(policy, &r->ref); /* KL is always reported */
    if (st == JL_OK && r->kind == ALGO_PPO) {
        st = rl_head_new(policy->cfg.dim, o->train.run.seed, &r->value);
        if (st == JL_OK) memset(r->value.w, 0, (size_t)r->value.C * sizeof(float)); /* values start at 0 */
    }
    if (st == JL_OK) st = rl_batch_new(r->rows, max_len, &r->full);
    if (st == JL_OK) st = rl_batch_new(r->local, max_len, &r->mb);
    if (st == JL_OK) st = alloc_arrays(&r->fa, n);
    if (st == JL_OK) st = alloc_arrays(&r->ma, n);
    if (st == JL_OK) {
        r->seqs = calloc((size_t)r->rows, sizeof *r->seqs);
        r->scores = falloc((size_t)r->rows);
        r->anchor_scores = falloc((size_t)r->rows);
        r->logp = falloc(n);
        r->buf = falloc(n);
        if (!r->seqs || !r->scores || !r->anchor_scores || !r->logp || !r->buf)
            st = jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    return st;
}

/* log π_old (and values) under the policy, log π_ref under the reference, for the rollout batch; both at the
 * sampling temperature, so that KL and ratios are those of the distribution the rollouts came from. */
static jl_status rollout_logprobs(run *r, double *kl) {
    rl_batch *b = &r->full;
    pos_arrays *out = &r->fa;
    if (r->local < r->rows) { /* mpirun: this rank's rows, then every rank's gathered */
        int own[r->local];
        for (int i = 0; i < r->local; i++) own[i] = r->lo + i;
        gather(r, own, r->local);
        b = &r->mb;
        out = &r->ma;
    }
    const int C = r->t->model->cfg.dim;
    rl_forward_logprobs_at(r->t->model, &r->t->acts, b, r->o->temperature, out->old_logp, NULL);
    if (r->kind == ALGO_PPO)
        for (int row = 0; row < b->rows; row++)
            for (int t = 0; t < b->T; t++) {
                const float *h = rl_hidden(&r->t->acts, b, row, t, C);
                double v = 0;
                for (int k = 0; k < C; k++) v += (double)r->value.w[k] * h[k];
                out->old_values[(size_t)row * b->T + t] = (float)v;
            }
    *kl = 0;
    rl_forward_logprobs_at(rl_ref_enter(&r->ref), &r->t->acts, b, r->o->temperature, out->ref_logp, NULL);
    rl_ref_leave(&r->ref);
    jl_status st = JL_OK;
    if (out != &r->fa) {
        const size_t n = (size_t)r->local * b->T;
        float *const mine[] = {r->ma.old_logp, r->ma.old_values, r->ma.ref_logp};
        float *const all[] = {r->fa.old_logp, r->fa.old_values, r->fa.ref_logp};
        for (int k = 0; k < 3 && st == JL_OK; k++) st = rl_dist_gather_floats(mine[k], all[k], n);
        b = &r->full;
    }
    for (int row = 0; row < b->rows; row++)
        *kl += (rl_row_sum(b, r->fa.old_logp, row) - rl_row_sum(b, r->fa.ref_logp, row)) / b->rows;
    return st;
}

/* Another judge's scores of the rollouts (the monitor, logged only; or the anchor rule) into out[rows] (NULL: not
 * kept) and their mean. */
static jl_status judge_rows(run *r, const jl_tokenizer *tok, const jl_rl_set *set, jl_reward_fn *fn,
                            const size_t *which, float *out, double *mean) {
    *mean = 0;
    float kept[r->rows], *v = out ? out : kept;
    jl_status st = score_mine(r, tok, set, fn, which, v);
    for (int i = 0; i < r->rows && st == JL_OK; i++) *mean += (double)v[i] / r->rows;
    return st;
}

static void mean_std(const float *x, int n, double *mean, double *std) {
    double m = 0, v = 0;
    for (int i = 0; i < n; i++) m += x[i] / n; /* float division, as the step always computed it */
    for (int i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m) / n;
    *mean = m;
    *std = sqrt(v);
}

/* Reward whitening: scores x[n] to mean 0, standard deviation 1 (all equal: all 0). */
static void whiten_scores(float *x, int n) {
    double mean, std;
    mean_std(x, n, &mean, &std);
    for (int i = 0; i < n; i++) x[i] = (float)((x[i] - mean) / (std + 1e-6));
}

/* Group baseline: each score x[i] minus the mean of its group (rows [g0, g0 + G) answer one prompt). */
static void subtract_group_means(float *x, int n, int G) {
    for (int g0 = 0; g0 + G <= n; g0 += G) {
        double mean, std;
        mean_std(x + g0, G, &mean, &std);
        for (int i = 0; i < G; i++) x[g0 + i] = (float)(x[g0 + i] - mean);
    }
}

/* The scores as PPO uses them: less their group's mean (group_baseline), then whitened (whiten_rewards). */
static void shape_scores(const jl_rl_opts *o, float *x, int n) {
    if (o->group_baseline) subtract_group_means(x, n, o->group);
    if (o->whiten_rewards) whiten_scores(x, n);
}

/* The anchor rule's scores added to the reward's (each shaped first: shape_scores); *mean: the rule's. */
static jl_status add_anchor(run *r, const jl_tokenizer *tok, const jl_rl_set *set, const size_t *which,
                            double *mean) {
    const jl_rl_opts *o = r->o;
    shape_scores(o, r->scores, r->rows);
    if (!o->anchor) return JL_OK;
    jl_status st = judge_rows(r, tok, set, o->anchor, which, r->anchor_scores, mean);
    if (st != JL_OK) return st;
    shape_scores(o, r->anchor_scores, r->rows);
    for (int i = 0; i < r->rows; i++) r->scores[i] += o->anchor_weight * r->anchor_scores[i];
    return JL_OK;
}

/* Adaptive KL control: the coefficient follows the step's KL towards kl_target (proportional, clipped). */
static void adapt_kl(run *r, double kl) {
    const jl_rl_opts *o = r->o;
    if (!(o->kl_target > 0) || o->kl_horizon < 1) return;
    double err = kl / o->kl_target - 1.0;
    err = err < -0.2 ? -0.2 : err > 0.2 ? 0.2 : err;
    r->kl_coef *= 1.0 + err * r->rows / o->kl_horizon;
}

static int shaped(const jl_rl_opts *o) { return o->kl_target > 0 || o->whiten_rewards || o->anchor || o->group_baseline; }

/* ---------------------------------------------------------------- the stage */

typedef struct {
    run r;
    const jl_tokenizer *tok;
    const jl_rl_set *set;
    jl_reward_fn *fn;
    size_t *which;
} policy_stage;

/* One iteration: rollouts, rewards, advantages, epochs × minibatches of clipped updates. */
static jl_status ps_step(void *self, jl_stage_step *out) {
    policy_stage *p = self;
    run *r = &p->r;
    double answer_len, kl;
    jl_status st = rollout(r, p->tok, p->which);
    if (st != JL_OK) return st;
    const rl_seq *rows[r->rows];
    for (int i = 0; i < r->rows; i++) rows[i] = &r->seqs[i];
    rl_batch_fill(&r->full, rows, r->rows);
    if ((st = score_rows(r, p->tok, p->set, p->fn, p->which, &answer_len)) != JL_OK) return st;
    double mean, std, monitor = NAN, anchor = NAN;
    mean_std(r->scores, r->rows, &mean, &std);
    if (r->o->monitor && (st = judge_rows(r, p->tok, p->set, r->o->monitor, p->which, NULL, &monitor)) != JL_OK)
        return st;
    if ((st = add_anchor(r, p->tok, p->set, p->which, &anchor)) != JL_OK) return st;
    if ((st = rollout_logprobs(r, &kl)) != JL_OK) return st;
    const double kl_coef_used = r->kl_coef;
    if (r->kind == ALGO_GRPO) grpo_advantages(r);
    else ppo_advantages(r);
    if (r->kind == ALGO_PPO) adapt_kl(r, kl);
    size_t npos = (size_t)r->full.rows * r->full.T;
    const char *bad = !all_finite(r->scores, (size_t)r->rows) ? "a reward is not finite"
                      : !all_finite(r->fa.adv, npos)         ? "an advantage is not finite"
                                                             : NULL;
    iter_stats is = {0};
    if (!bad) {
        if ((st = optimise(r, &is)) != JL_OK) return st;
        if (is.applied < is.updates) bad = "loss or gradient not finite";
    }
    *out = (jl_stage_step){.loss = is.loss, .grad_norm = is.grad_norm, .lr = is.lr, .skipped = bad,
                           .tokens = (long)npos};
    const char *keys[] = {"reward", "reward_std", "kl", "entropy", "clip_frac", "value_loss", "ratio_first",
                          "answer_len"};
    double vals[] = {mean, std, kl, is.entropy, is.clip_frac, is.value_loss, is.ratio_first, answer_len};
    for (int i = 0; i < 8; i++) jl_metric_add(&out->m, keys[i], vals[i]);
    if (r->kind == ALGO_PPO) jl_metric_add(&out->m, "kl_coef", kl_coef_used);
    if (r->o->monitor) jl_metric_add(&out->m, "monitor_reward", monitor);
    if (r->o->anchor) jl_metric_add(&out->m, "anchor_reward", anchor);
    return JL_OK;
}

static jl_status ps_save_state(void *self, json_object *j) {
    policy_stage *p = self;
    run *r = &p->r;
    const jl_rl_opts *o = r->o;
    json_object_object_add(j, "data_pos", json_object_new_int64((int64_t)r->pos));
    jl_state_set_u64(j, "data_rng", r->rng);
    jl_state_set_indices(j, "data_order", r->order, r->n_prompts);
    rl_ref_state_save(&r->ref, j);
    jl_state_set_u64(j, "reward_identity", rl_reward_fn_identity(p->fn));
    if (r->kind == ALGO_PPO) rl_head_state_save(&r->value, "value", j);
    const char *keys[] = {"group", "max_new", "temperature", "clip_eps", "kl_coef", "epochs", "minibatches",
                          "gamma", "lambda", "vf_coef", "value_clip"};
    double vals[] = {o->group, o->max_new, o->temperature, o->clip_eps, o->kl_coef, o->epochs, o->minibatches,
                     o->gamma, o->lam, o->vf_coef, o->value_clip};
    for (int i = 0; i < 11; i++) jl_state_set_fixed(j, keys[i], vals[i]);
    if (shaped(o)) { /* only then: older checkpoints resume as they were */
        jl_state_set_fixed(j, "kl_target", o->kl_target);
        jl_state_set_fixed(j, "kl_horizon", o->kl_horizon);
        jl_state_set_fixed(j, "whiten_rewards", o->whiten_rewards);
        if (o->group_baseline) jl_state_set_fixed(j, "group_baseline", 1);
        jl_state_set_u64(j, "anchor_identity", o->anchor ? rl_reward_fn_identity(o->anchor) : 0);
        jl_state_set_fixed(j, "anchor_weight", o->anchor ? o->anchor_weight : 0);
        uint64_t bits;
        memcpy(&bits, &r->kl_coef, sizeof bits);
        jl_state_set_u64(j, "kl_coef_now", bits);
    }
    return JL_OK;
}

static jl_status ps_restore_state(void *self, json_object *j) {
    policy_stage *p = self;
    run *r = &p->r;
    const jl_rl_opts *o = r->o;
    const char *keys[] = {"group", "max_new", "temperature", "clip_eps", "kl_coef", "epochs", "minibatches",
                          "gamma", "lambda", "vf_coef", "value_clip"};
    double vals[] = {o->group, o->max_new, o->temperature, o->clip_eps, o->kl_coef, o->epochs, o->minibatches,
                     o->gamma, o->lam, o->vf_coef, o->value_clip};
    jl_status st = JL_OK;
    for (int i = 0; i < 11 && st == JL_OK; i++) st = jl_state_check_fixed(j, keys[i], vals[i]);
    long pos;
    uint64_t reward_id;
    if (st == JL_OK) st = jl_state_long(j, "data_pos", 0, (long)r->n_prompts, &pos);
    if (st == JL_OK) st = jl_state_u64(j, "data_rng", &r->rng);
    if (st == JL_OK) st = jl_state_indices(j, "data_order", r->order, r->n_prompts, r->n_prompts);
    if (st == JL_OK) st = rl_ref_state_restore(&r->ref, j);
    if (st == JL_OK) st = jl_state_u64(j, "reward_identity", &reward_id);
    if (st == JL_OK && reward_id != rl_reward_fn_identity(p->fn))
        st = jl_fail(JL_ERR_ARG, "the reward is not the one this run was trained with");
    if (st == JL_OK && r->kind == ALGO_PPO) st = rl_head_state_restore(&r->value, "value", j);
    uint64_t bits = 0;
    if (st == JL_OK && shaped(o)) st = jl_state_check_fixed(j, "kl_target", o->kl_target);
    if (st == JL_OK && shaped(o)) st = jl_state_check_fixed(j, "kl_horizon", o->kl_horizon);
    if (st == JL_OK && shaped(o)) st = jl_state_check_fixed(j, "whiten_rewards", o->whiten_rewards);
    if (st == JL_OK && (o->group_baseline || json_object_object_get_ex(j, "group_baseline", NULL)))
        st = jl_state_check_fixed(j, "group_baseline", o->group_baseline); /* absent: saved without it */
    if (st == JL_OK && o->anchor) st = jl_state_check_fixed(j, "anchor_weight", o->anchor_weight);
    uint64_t anchor_id = 0;
    if (st == JL_OK && o->anchor && (st = jl_state_u64(j, "anchor_identity", &anchor_id)) == JL_OK &&
        anchor_id != rl_reward_fn_identity(o->anchor))
        st = jl_fail(JL_ERR_ARG, "the anchor rule is not the one this run was trained with");
    if (st == JL_OK && shaped(o) && (st = jl_state_u64(j, "kl_coef_now", &bits)) == JL_OK) {
        memcpy(&r->kl_coef, &bits, sizeof bits);
        if (!isfinite(r->kl_coef) || r->kl_coef < 0) st = jl_fail(JL_ERR_FORMAT, "kl_coef_now: not a coefficient");
    }
    if (st == JL_OK) r->pos = (size_t)pos;
    return st;
}

static jl_status ps_save_result(void *self, char *path, size_t size) {
    policy_stage *p = self;
    run *r = &p->r;
    jl_status st = rl_save_policy(r->policy, p->tok, r->o->chat, r->o->train.run.out_dir, path, size);
    if (st == JL_OK && r->kind == ALGO_PPO) {
        char vpath[4096];
        snprintf(vpath, sizeof vpath, "%s/value.safetensors", r->o->train.run.out_dir);
        st = rl_head_save(&r->value, vpath, "value_head.weight");
    }
    return st;
}

static const jl_stage_i grpo_i = {.name = "grpo", .step = ps_step, .save_state = ps_save_state,
                                  .restore_state = ps_restore_state, .save_result = ps_save_result};
static const jl_stage_i ppo_i = {.name = "ppo", .step = ps_step, .save_state = ps_save_state,
                                 .restore_state = ps_restore_state, .save_result = ps_save_result};

static jl_status policy_train(algo kind, jl_model *policy, const jl_tokenizer *tok, const jl_rl_set *set,
                              jl_reward_fn *fn, const jl_rl_opts *o, jl_event_fn efn, void *user) {
    int max_len;
    jl_status st = check_opts(policy, o, kind, &max_len);
    if (st == JL_OK) st = check_reward_tokenizer(fn, tok);
    if (st != JL_OK) return st;
    policy_stage p = {.r = {.kind = kind, .o = o}, .tok = tok, .set = set, .fn = fn};
    st = run_new(&p.r, policy, tok, set, max_len);
    if (st == JL_OK && !(p.which = malloc((size_t)p.r.rows * sizeof *p.which))) st = jl_fail(JL_ERR_NOMEM, "out of memory");
    if (st == JL_OK) {
        jl_stage s = {.i = kind == ALGO_GRPO ? &grpo_i : &ppo_i, .self = &p,
                      .what = {.t = p.r.t, .lora = p.r.lora, .tok = tok}, .o = &o->train, .data_parallel = 1};
        st = jl_train_run(&s, efn, user);
    }
    free(p.which);
    run_free(&p.r);
    return st;
}

jl_status jl_grpo_train(jl_model *policy, const jl_tokenizer *tok, const jl_rl_set *prompts, jl_reward_fn *reward,
                        const jl_rl_opts *o, jl_event_fn fn, void *user) {
    return policy_train(ALGO_GRPO, policy, tok, prompts, reward, o, fn, user);
}

jl_status jl_ppo_train(jl_model *policy, const jl_tokenizer *tok, const jl_rl_set *prompts, jl_reward_fn *reward,
                       const jl_rl_opts *o, jl_event_fn fn, void *user) {
    return policy_train(ALGO_PPO, policy, tok, prompts, reward, o, fn, user);
}
