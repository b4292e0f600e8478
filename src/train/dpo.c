/* jielong dpo: Direct Preference Optimisation. The implicit reward of a response is β·(log π − log π_ref) summed
 * over its tokens; the loss pushes the chosen one above the rejected one. The reference is a frozen copy of the
 * starting model, held in memory; its log-probs are computed once per batch. */
#include "train/rl_losses.h"
#include "train/rl_pairs.h"
#include "train/rl_dist.h"
#include "core/seqloss.h"
#include "model/model.h"
#include "jielong/dist.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void dpo_seq_logps(jl_model *m, jl_acts *a, const rl_batch *b, float *tok_logp, double *seq_logp) {
    rl_forward_logprobs(m, a, b, tok_logp, NULL);
    for (int r = 0; r < b->rows; r++) seq_logp[r] = rl_row_sum(b, tok_logp, r);
}

static double neg_log_sigmoid(double x) { return x > 0 ? log1p(exp(-x)) : -x + log1p(exp(x)); }

double dpo_pairs_loss(jl_model *m, jl_acts *a, const rl_batch *b, const double *ref_logp, float beta,
                      jl_dpo_loss kind, float *tok_buf, const jl_params *grads, dpo_stats *s) {
    const int pairs = b->rows / 2;
    double pi[b->rows], dh[pairs];
    dpo_seq_logps(m, a, b, tok_buf, pi);
    memset(s, 0, sizeof *s);
    for (int i = 0; i < pairs; i++) {
        double rc = pi[2 * i] - ref_logp[2 * i], rr = pi[2 * i + 1] - ref_logp[2 * i + 1], h = rc - rr;
        if (kind == JL_DPO_IPO) {
            double target = 1.0 / (2.0 * beta);
            s->loss += (h - target) * (h - target);
            dh[i] = 2.0 * (h - target);
        } else {
            s->loss += neg_log_sigmoid(beta * h);
            dh[i] = -beta / (1.0 + exp(beta * h)); /* d/dh −log σ(βh) = −β σ(−βh) */
        }
        s->chosen += beta * rc;
        s->rejected += beta * rr;
        s->accuracy += rc > rr;
    }
    s->loss /= pairs;
    s->chosen /= pairs;
    s->rejected /= pairs;
    s->margin = s->chosen - s->rejected;
    s->accuracy /= pairs;
    if (!grads) return s->loss;
    /* d loss / d logp of every response token: ±dh/pairs for the chosen/rejected row */
    for (int r = 0; r < b->rows; r++) {
        float coef = (float)((r % 2 == 0 ? dh[r / 2] : -dh[r / 2]) / pairs);
        for (int t = 0; t < b->T; t++) tok_buf[(size_t)r * b->T + t] = b->targets[(size_t)r * b->T + t] >= 0 ? coef : 0;
    }
    const jl_config *c = &m->cfg;
    jl_token_logprobs_backward(a->logits, a->logits, b->targets, tok_buf, b->rows * b->T, c->vocab_size,
                               c->padded_vocab);
    jl_model_backward(m, a, b->tokens, grads, b->rows, b->T);
    return s->loss;
}

/* ---------------------------------------------------------------- the stage */

typedef struct {
    const jl_rl_opts *o;
    const jl_tokenizer *tok;
    jl_trainer *t;
    rl_ref ref;
    rl_batch b;
    rl_pairs p;
    float *tok_buf;
} dpo_stage;

static void ref_logps(dpo_stage *r, double *ref) {
    dpo_seq_logps(rl_ref_enter(&r->ref), &r->t->acts, &r->b, r->tok_buf, ref);
    rl_ref_leave(&r->ref);
}

static void add_stats(jl_metric_set *m, const dpo_stats *s, int eval) {
    jl_metric_add(m, eval ? "eval_loss" : "loss", s->loss);
    jl_metric_add(m, eval ? "eval_rewards_chosen" : "rewards_chosen", s->chosen);
    jl_metric_add(m, eval ? "eval_rewards_rejected" : "rewards_rejected", s->rejected);
    jl_metric_add(m, eval ? "eval_margin" : "margin", s->margin);
    jl_metric_add(m, eval ? "eval_accuracy" : "accuracy", s->accuracy);
}

static jl_status dpo_eval(void *self, long step, jl_metric_set *m) {
    dpo_stage *r = self;
    (void)step;
    const int batch = r->o->train.run.batch;
    const rl_seq *rows[2 * batch];
    size_t cursor = 0;
    int pairs = 0, n;
    dpo_stats out = {0};
    for (int k = 0; (n = rl_pairs_eval(&r->p, &cursor, batch, rows)) > 0; k++) {
        if (!rl_dist_mine(k)) continue; /* mpirun: batches dealt round the ranks, sums reduced below */
        rl_batch_fill(&r->b, rows, n);
        double ref[n];
        ref_logps(r, ref);
        dpo_stats s;
        dpo_pairs_loss(r->t->model, &r->t->acts, &r->b, ref, r->o->beta, r->o->loss, r->tok_buf, NULL, &s);
        double w = n / 2;
        out.loss += s.loss * w;
        out.chosen += s.chosen * w;
        out.rejected += s.rejected * w;
        out.accuracy += s.accuracy * w;
        pairs += n / 2;
    }
    double sums[5] = {out.loss, out.chosen, out.rejected, out.accuracy, pairs};
    jl_status st = rl_dist_sum(JL_OK, sums, 5);
    if (st != JL_OK) return st;
    out = (dpo_stats){.loss = sums[0], .chosen = sums[1], .rejected = sums[2], .accuracy = sums[3]};
    pairs = (int)sums[4];
    out.loss /= pairs;
    out.chosen /= pairs;
    out.rejected /= pairs;
    out.accuracy /= pairs;
    out.margin = out.chosen - out.rejected;
    add_stats(m, &out, 1);
    jl_metric_add(m, "eval_pairs", pairs); /* how much the accuracy can mean: it moves in steps of 1/pairs */
    return JL_OK;
}

static jl_status dpo_step(void *self, jl_stage_step *out) {
    dpo_stage *r = self;
    const int batch = r->o->train.run.batch;
    const rl_seq *rows[2 * batch];
    rl_batch_fill(&r->b, rows, rl_pairs_next_mine(&r->p, batch, rows));
    double ref[2 * batch];
    ref_logps(r, ref);
    rl_zero_grads(r->t, NULL);
    dpo_stats s;
    jl_trainer_sum_begin(r->t, 1.0f); /* mpirun: the all-reduce overlaps the backward pass; ended in rl_dist_mean */
    rl_grad_pass_begin(r->t);
    dpo_pairs_loss(r->t->model, &r->t->acts, &r->b, ref, r->o->beta, r->o->loss, r->tok_buf, &r->t->gview, &s);
    rl_grad_pass_end(r->t);
    double fig[5] = {s.loss, s.chosen, s.rejected, s.margin, s.accuracy};
    jl_status st = rl_dist_mean(r->t, NULL, JL_OK, fig, 5);
    if (st != JL_OK) return st;
    s = (dpo_stats){.loss = fig[0], .chosen = fig[1], .rejected = fig[2], .margin = fig[3], .accuracy = fig[4]};
    float lr;
    int applied;
    if ((st = rl_update(r->t, NULL, s.loss, &out->grad_norm, &lr, &applied)) != JL_OK) return st;
    out->loss = s.loss;
    out->lr = lr;
    out->tokens = (long)r->b.rows * r->b.T;
    out->skipped = applied ? NULL : "loss or gradient not finite";
    jl_metric_add(&out->m, "rewards_chosen", s.chosen);
    jl_metric_add(&out->m, "rewards_rejected", s.rejected);
    jl_metric_add(&out->m, "margin", s.margin);
    jl_metric_add(&out->m, "accuracy", s.accuracy);
    return JL_OK;
}

static jl_status dpo_save_state(void *self, json_object *j) {
    dpo_stage *r = self;
    rl_pairs_state_save(&r->p, j);
    rl_ref_state_save(&r->ref, j);
    json_object_object_add(j, "beta", json_object_new_double(r->o->beta));
    json_object_object_add(j, "loss_kind", json_object_new_int(r->o->loss));
    return JL_OK;
}

static jl_status dpo_restore_state(void *self, json_object *j) {
    dpo_stage *r = self;
    double beta;
    long kind;
    jl_status st = jl_state_num(j, "beta", 1e-12, 1e12, &beta);
    if (st == JL_OK) st = jl_state_long(j, "loss_kind", 0, 1, &kind);
    if (st == JL_OK && ((float)beta != r->o->beta || kind != (long)r->o->loss))
        st = jl_fail(JL_ERR_ARG, "the checkpoint was trained with beta %g and loss %s, not %g and %s", beta,
                     kind ? "ipo" : "sigmoid", (double)r->o->beta, r->o->loss ? "ipo" : "sigmoid");
    if (st == JL_OK) st = rl_ref_state_restore(&r->ref, j);
    return st == JL_OK ? rl_pairs_state_restore(&r->p, j) : st;
}

static jl_status dpo_save_result(void *self, char *path, size_t size) {
    dpo_stage *r = self;
    return rl_save_policy(r->t->model, r->tok, r->o->chat, r->o->train.run.out_dir, path, size);
}

static const jl_stage_i dpo_i = {.name = "dpo", .step = dpo_step, .evaluate = dpo_eval, .save_state = dpo_save_state,
                                 .restore_state = dpo_restore_state, .save_result = dpo_save_result};

jl_status jl_dpo_train(jl_model *policy, const jl_tokenizer *tok, const jl_pref_set *set, const jl_rl_opts *o,
                       jl_event_fn fn, void *user) {
    const int batch = o->train.run.batch;
    int max_len = o->max_len > 0 ? o->max_len : policy->cfg.max_seq_len;
    if (max_len > policy->cfg.max_seq_len)
        return jl_fail(JL_ERR_ARG, "max length %d is larger than the model's context %d", max_len,
                       policy->cfg.max_seq_len);
    if (batch < 1 || o->train.run.steps < 1) return jl_fail(JL_ERR_ARG, "batch and steps must be ≥ 1");
    if (!(o->beta > 0)) return jl_fail(JL_ERR_ARG, "beta must be > 0 (got %g)", o->beta);
    dpo_stage r = {.o = o, .tok = tok};
    size_t dropped = 0;
    jl_status st = rl_pairs_encode(tok, o->chat, set, max_len, o->eval_fraction, o->train.run.seed, &r.p,
                                   o->skip_long ? &dropped : NULL);
    if (o->skipped_long) *o->skipped_long = dropped;
    if (st != JL_OK) return st;
    int T = rl_pairs_longest(&r.p);
    jl_lora *lora = NULL;
    if ((st = rl_lora_begin(policy, o, 2 * batch * T, &lora)) == JL_OK && (st = rl_ref_new(policy, &r.ref)) == JL_OK &&
        (st = rl_trainer_new(policy, 2 * batch, T, o, o->train.run.steps, &r.t)) == JL_OK &&
        (st = rl_batch_new(2 * batch, T, &r.b)) == JL_OK) {
        r.tok_buf = malloc((size_t)2 * batch * T * sizeof(float));
        /* the starting point is evaluated too: policy == reference, every implicit reward 0 */
        jl_stage s = {.i = &dpo_i, .self = &r, .what = {.t = r.t, .lora = lora, .tok = tok}, .o = &o->train,
                      .data_parallel = 1, .eval_at_start = 1, .eval_at_end = 1};
        st = r.tok_buf ? jl_train_run(&s, fn, user) : jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    free(r.tok_buf);
    rl_batch_free(&r.b);
    jl_trainer_free(r.t);
    rl_ref_free(&r.ref);
    rl_lora_end(policy, lora);
    rl_pairs_free(&r.p);
    return st;
}
