/* jielong dpo: Direct Preference Optimisation. The implicit reward of a response is β·(log π − log π_ref) summed
 * over its tokens; the loss pushes the chosen one above the rejected one. The reference is a frozen copy of the
 * starting model, held in memory; its log-probs are computed once per batch. */
#include "train/rl_losses.h"
#include "train/rl_pairs.h"
#include "core/seqloss.h"
#include "model/model.h"
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

/* ---------------------------------------------------------------- training */

typedef struct {
    jl_trainer *t;
    rl_ref ref;
    rl_batch b;
    float *tok_buf;
    const jl_rl_opts *o;
} dpo_run;

static void ref_logps(dpo_run *r, double *ref) {
    dpo_seq_logps(rl_ref_enter(&r->ref), &r->t->acts, &r->b, r->tok_buf, ref);
    rl_ref_leave(&r->ref);
}

static jl_status dpo_eval(dpo_run *r, rl_pairs *p, dpo_stats *out) {
    const int batch = r->o->batch;
    const rl_seq *rows[2 * batch];
    size_t cursor = 0;
    int pairs = 0, n;
    memset(out, 0, sizeof *out);
    while ((n = rl_pairs_eval(p, &cursor, batch, rows)) > 0) {
        rl_batch_fill(&r->b, rows, n);
        double ref[n];
        ref_logps(r, ref);
        dpo_stats s;
        dpo_pairs_loss(r->t->model, &r->t->acts, &r->b, ref, r->o->beta, r->o->loss, r->tok_buf, NULL, &s);
        double w = n / 2;
        out->loss += s.loss * w;
        out->chosen += s.chosen * w;
        out->rejected += s.rejected * w;
        out->accuracy += s.accuracy * w;
        pairs += n / 2;
    }
    out->loss /= pairs;
    out->chosen /= pairs;
    out->rejected /= pairs;
    out->accuracy /= pairs;
    out->margin = out->chosen - out->rejected;
    return JL_OK;
}

jl_status jl_dpo_train(jl_model *policy, const jl_tokenizer *tok, const jl_pref_set *set, const jl_rl_opts *o,
                       jl_rl_event_fn fn, void *user) {
    int max_len = o->max_len > 0 ? o->max_len : policy->cfg.max_seq_len;
    if (max_len > policy->cfg.max_seq_len)
        return jl_fail(JL_ERR_ARG, "max length %d is larger than the model's context %d", max_len,
                       policy->cfg.max_seq_len);
    if (o->batch < 1 || o->steps < 1) return jl_fail(JL_ERR_ARG, "batch and steps must be ≥ 1");
    if (!(o->beta > 0)) return jl_fail(JL_ERR_ARG, "beta must be > 0 (got %g)", o->beta);
    rl_pairs p;
    size_t dropped = 0;
    jl_status st = rl_pairs_encode(tok, set, max_len, o->eval_fraction, o->seed, &p, o->skip_long ? &dropped : NULL);
    if (o->skipped_long) *o->skipped_long = dropped;
    if (st != JL_OK) return st;
    int T = rl_pairs_longest(&p);
    dpo_run r = {.o = o};
    rl_report rep = {0};
    jl_lora *lora = NULL;
    if ((st = rl_lora_begin(policy, o, 2 * o->batch * T, &lora)) == JL_OK && (st = rl_ref_new(policy, &r.ref)) == JL_OK &&
        (st = rl_trainer_new(policy, 2 * o->batch, T, o, &r.t)) == JL_OK &&
        (st = rl_batch_new(2 * o->batch, T, &r.b)) == JL_OK) {
        r.tok_buf = malloc((size_t)2 * o->batch * T * sizeof(float));
        st = r.tok_buf ? rl_report_open(&rep, "dpo", o->out_dir, o->steps, fn, user) : jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    const rl_seq *rows[2 * o->batch];
    long skips_in_a_row = 0;
    if (st == JL_OK) { /* the starting point: policy == reference, every implicit reward 0 */
        dpo_stats e;
        st = dpo_eval(&r, &p, &e);
        const char *ek[] = {"eval_loss", "eval_rewards_chosen", "eval_rewards_rejected", "eval_margin",
                            "eval_accuracy"};
        double ev[] = {e.loss, e.chosen, e.rejected, e.margin, e.accuracy};
        if (st == JL_OK) st = rl_report_metrics(&rep, JL_RL_EVAL, 0, 5, ek, ev);
    }
    while (st == JL_OK && r.t->step < o->steps) {
        rl_batch_fill(&r.b, rows, rl_pairs_next(&p, o->batch, rows));
        double ref[2 * o->batch];
        ref_logps(&r, ref);
        rl_zero_grads(r.t, NULL);
        dpo_stats s;
        rl_grad_pass_begin(r.t);
        dpo_pairs_loss(policy, &r.t->acts, &r.b, ref, o->beta, o->loss, r.tok_buf, &r.t->gview, &s);
        rl_grad_pass_end(r.t);
        double gn;
        float lr;
        int applied = rl_update(r.t, NULL, s.loss, &gn, &lr);
        long step = r.t->step;
        const char *keys[] = {"loss", "rewards_chosen", "rewards_rejected", "margin", "accuracy", "lr", "grad_norm",
                              "skipped"};
        double vals[] = {s.loss, s.chosen, s.rejected, s.margin, s.accuracy, lr, gn, !applied};
        if ((st = rl_report_metrics(&rep, JL_RL_STEP, step, 8, keys, vals)) != JL_OK) break;
        if ((st = rl_count_skip(&rep, step, applied ? NULL : "loss or gradient not finite", &skips_in_a_row)) != JL_OK)
            break;
        int last = step == o->steps;
        if (last || (o->eval_every > 0 && step % o->eval_every == 0)) {
            dpo_stats e;
            if ((st = dpo_eval(&r, &p, &e)) != JL_OK) break;
            const char *ek[] = {"eval_loss", "eval_rewards_chosen", "eval_rewards_rejected", "eval_margin",
                                "eval_accuracy"};
            double ev[] = {e.loss, e.chosen, e.rejected, e.margin, e.accuracy};
            if ((st = rl_report_metrics(&rep, JL_RL_EVAL, step, 5, ek, ev)) != JL_OK) break;
        }
        if (last || (o->save_every > 0 && step % o->save_every == 0)) {
            char path[4096];
            st = rl_save_policy(policy, tok, o->out_dir, path, sizeof path);
            if (st == JL_OK) rl_report_text(&rep, JL_RL_SAVE, step, path);
        }
    }
    rl_report_close(&rep);
    free(r.tok_buf);
    rl_batch_free(&r.b);
    jl_trainer_free(r.t);
    rl_ref_free(&r.ref);
    rl_lora_end(policy, lora);
    rl_pairs_free(&p);
    return st;
}
