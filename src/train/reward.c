/* jielong reward: a reward model = the transformer trunk + a scalar head on the last token, trained on
 * preference pairs with the Bradley-Terry loss. */
#include "train/rl_losses.h"
#include "train/rl_dist.h"
#include "jielong/chat_format.h"
#include "model/model.h"
#include "jielong/dist.h"
#include "core/kernels.h"
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCORE_TENSOR "score.weight"

static double dot(const float *a, const float *b, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

void rm_scores(jl_model *m, jl_acts *a, const rl_batch *b, const rl_head *h, float *scores) {
    jl_model_forward(m, a, b->tokens, NULL, b->rows, b->T, 0.0f, NULL);
    for (int r = 0; r < b->rows; r++) scores[r] = (float)dot(h->w, rl_hidden(a, b, r, b->len[r] - 1, h->C), h->C);
}

/* −log σ(x), stable for large |x| */
static double neg_log_sigmoid(double x) { return x > 0 ? log1p(exp(-x)) : -x + log1p(exp(x)); }
static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

double rm_pairs_loss(jl_model *m, jl_acts *a, const rl_batch *b, rl_head *h, const jl_params *grads, rm_stats *s) {
    const int C = h->C, pairs = b->rows / 2;
    float scores[b->rows];
    rm_scores(m, a, b, h, scores);
    double loss = 0.0, correct = 0.0, margin = 0.0;
    float dscore[b->rows];
    for (int i = 0; i < pairs; i++) {
        double delta = (double)scores[2 * i] - scores[2 * i + 1];
        loss += neg_log_sigmoid(delta);
        correct += delta > 0;
        margin += delta;
        float d = (float)(-sigmoid(-delta) / pairs); /* d loss / d delta */
        dscore[2 * i] = d;
        dscore[2 * i + 1] = -d;
    }
    s->loss = loss / pairs;
    s->accuracy = correct / pairs;
    s->margin = margin / pairs;
    if (!grads) return s->loss;
    memset(a->dln, 0, (size_t)b->rows * b->T * C * sizeof(float));
    for (int r = 0; r < b->rows; r++) {
        int t = b->len[r] - 1;
        const float *hid = rl_hidden(a, b, r, t, C);
        float *dh = a->dln + ((size_t)r * b->T + t) * C;
        for (int c = 0; c < C; c++) {
            dh[c] = dscore[r] * h->w[c];
            h->g[c] += dscore[r] * hid[c];
        }
    }
    jl_model_backward_from_hidden(m, a, b->tokens, grads, b->rows, b->T);
    return s->loss;
}

/* ---------------------------------------------------------------- the reward model handle */

struct jl_reward_model {
    jl_checkpoint ck;
    jl_tokenizer *tok;
    jl_chat_format *fmt; /* the chat format its model.safetensors carries (NULL: built-in) */
    rl_head head;
    jl_acts acts;
    rl_batch batch;
};

jl_status jl_reward_model_load(const char *dir, jl_reward_model **out) {
    *out = NULL;
    jl_reward_model *rm = calloc(1, sizeof *rm);
    if (!rm) return jl_fail(JL_ERR_NOMEM, "out of memory");
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    jl_status st = jl_checkpoint_load(path, &rm->ck);
    if (st == JL_OK && !rm->ck.tokenizer_json) st = jl_fail(JL_ERR_FORMAT, "%s: checkpoint has no tokenizer", path);
    if (st == JL_OK) st = jl_tokenizer_from_json(rm->ck.tokenizer_json, strlen(rm->ck.tokenizer_json), &rm->tok);
    if (st == JL_OK && (st = jl_chat_format_from_checkpoint(&rm->ck, &rm->fmt)) != JL_OK) jl_fail_context(st, "%s", path);
    if (st == JL_OK) {
        snprintf(path, sizeof path, "%s/score.safetensors", dir);
        st = rl_head_load(path, SCORE_TENSOR, rm->ck.model->cfg.dim, &rm->head);
        if (st == JL_OK && !isfinite(jl_sumsq(rm->head.w, (size_t)rm->head.C)))
            st = jl_fail(JL_ERR_FORMAT, "%s: score head holds non-finite values", path);
    }
    int ctx = st == JL_OK ? rm->ck.model->cfg.max_seq_len : 0;
    if (st == JL_OK) st = jl_acts_new(&rm->ck.model->cfg, 1, ctx, &rm->acts);
    if (st == JL_OK) st = rl_batch_new(1, ctx, &rm->batch);
    if (st != JL_OK) {
        jl_reward_model_free(rm);
        return jl_fail_context(st, "reward model %s", dir);
    }
    *out = rm;
    return JL_OK;
}

static jl_status score_seq(jl_reward_model *rm, const char *prompt, const char *response, int allow_empty,
                           float *score) {
    rl_seq s;
    int ctx = rm->ck.model->cfg.max_seq_len;
    /* A response that runs past the context is cut to it (the score reads the last position); a prompt that
     * does not fit alone is an error. */
    jl_status st = allow_empty ? rl_encode_answer(rm->tok, rm->fmt, prompt, response, INT_MAX, "reward model input", &s)
                               : rl_encode(rm->tok, rm->fmt, prompt, response, INT_MAX, "reward model input", &s);
    if (st != JL_OK) return st;
    if (s.resp_start >= ctx) {
        rl_seq_free(&s);
        return jl_fail(JL_ERR_ARG, "reward model input: the prompt alone is %d tokens, longer than the context of %d",
                       s.resp_start, ctx);
    }
    if (s.len > ctx) s.len = ctx;
    const rl_seq *one = &s;
    rl_batch_fill(&rm->batch, &one, 1);
    rm_scores(rm->ck.model, &rm->acts, &rm->batch, &rm->head, score);
    rl_seq_free(&s);
    return JL_OK;
}

jl_status jl_reward_model_score(jl_reward_model *rm, const char *prompt, const char *response, float *score) {
    return score_seq(rm, prompt, response, 0, score);
}

jl_status rl_reward_model_score_answer(jl_reward_model *rm, const char *prompt, const char *answer, float *score) {
    return score_seq(rm, prompt, answer, 1, score);
}

const char *jl_reward_model_tokenizer_json(const jl_reward_model *rm) { return rm->ck.tokenizer_json; }

void jl_reward_model_free(jl_reward_model *rm) {
    if (!rm) return;
    jl_checkpoint_free(&rm->ck);
    jl_tokenizer_free(rm->tok);
    jl_chat_format_free(rm->fmt);
    rl_head_free(&rm->head);
    jl_acts_free(&rm->acts);
    rl_batch_free(&rm->batch);
    free(rm);
}

/* ---------------------------------------------------------------- preference data, shared with DPO */

#include "train/rl_pairs.h"

void rl_pairs_free(rl_pairs *p) {
    for (size_t i = 0; p->seqs && i < 2 * p->n; i++) rl_seq_free(&p->seqs[i]);
    free(p->seqs);
    free(p->order);
    memset(p, 0, sizeof *p);
}

jl_status rl_pairs_encode(const jl_tokenizer *tok, const jl_chat_format *fmt, const jl_pref_set *set, int max_len,
                          double eval_fraction, uint64_t seed, rl_pairs *p, size_t *skipped) {
    memset(p, 0, sizeof *p);
    size_t n = jl_prefs_count(set);
    if (n < 2) return jl_fail(JL_ERR_ARG, "preference data has %zu pairs; at least 2 are needed (train + held-out)", n);
    p->seqs = calloc(2 * n, sizeof *p->seqs);
    p->order = malloc(n * sizeof *p->order);
    if (!p->seqs || !p->order) {
        rl_pairs_free(p);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    jl_status st = JL_OK;
    size_t kept = 0;
    const int limit = skipped ? INT_MAX : max_len; /* when skipping, measure first and drop after */
    for (size_t i = 0; i < n && st == JL_OK; i++) {
        jl_pref_pair pr = jl_prefs_get(set, i);
        char what[64];
        snprintf(what, sizeof what, "pair %zu", i + 1);
        if (strcmp(pr.chosen, pr.rejected) == 0) st = jl_fail(JL_ERR_ARG, "%s: chosen and rejected are identical", what);
        snprintf(what, sizeof what, "pair %zu: chosen", i + 1);
        if (st == JL_OK) st = rl_encode(tok, fmt, pr.prompt, pr.chosen, limit, what, &p->seqs[2 * kept]);
        snprintf(what, sizeof what, "pair %zu: rejected", i + 1);
        if (st == JL_OK) st = rl_encode(tok, fmt, pr.prompt, pr.rejected, limit, what, &p->seqs[2 * kept + 1]);
        p->n = kept + (st == JL_OK); /* what rl_pairs_free must release */
        if (st != JL_OK) break;
        if (skipped && (p->seqs[2 * kept].len > max_len || p->seqs[2 * kept + 1].len > max_len)) {
            rl_seq_free(&p->seqs[2 * kept]);
            rl_seq_free(&p->seqs[2 * kept + 1]);
            (*skipped)++;
            continue;
        }
        p->order[kept] = kept;
        kept++;
    }
    p->n = n = kept;
    if (st == JL_OK && n < 2)
        st = jl_fail(JL_ERR_ARG, "%zu preference pairs fit the context of %d; at least 2 are needed", n, max_len);
    if (st != JL_OK) {
        rl_pairs_free(p);
        return st;
    }
    p->rng = seed ^ 0x9A1F5EEDull;
    rl_shuffle(p->order, n, &p->rng);
    size_t n_eval = (size_t)llround(eval_fraction * (double)n);
    if (n_eval < 1) n_eval = 1;
    if (n_eval > n - 1) n_eval = n - 1;
    p->n_train = n - n_eval;
    return JL_OK;
}

int rl_pairs_next(rl_pairs *p, int batch, const rl_seq **rows) {
    for (int i = 0; i < batch; i++) {
        if (p->pos >= p->n_train) {
            p->pos = 0;
            rl_shuffle(p->order, p->n_train, &p->rng); /* a new epoch in a new order */
        }
        size_t k = p->order[p->pos++];
        rows[2 * i] = &p->seqs[2 * k];
        rows[2 * i + 1] = &p->seqs[2 * k + 1];
    }
    return 2 * batch;
}

int rl_pairs_next_mine(rl_pairs *p, int batch, const rl_seq **rows) {
    const int N = jl_dist_size(), me = jl_dist_rank();
    for (int r = 0; r < N; r++) {
        const rl_seq *skip[2 * batch];
        rl_pairs_next(p, batch, r == me ? rows : skip);
    }
    return 2 * batch;
}

int rl_pairs_eval(const rl_pairs *p, size_t *cursor, int batch, const rl_seq **rows) {
    int n = 0;
    while (n < batch && p->n_train + *cursor < p->n) {
        size_t k = p->order[p->n_train + (*cursor)++];
        rows[2 * n] = &p->seqs[2 * k];
        rows[2 * n + 1] = &p->seqs[2 * k + 1];
        n++;
    }
    return 2 * n;
}

/* ---------------------------------------------------------------- training */

void rl_pairs_state_save(const rl_pairs *p, json_object *j) {
    json_object_object_add(j, "data_pos", json_object_new_int64((int64_t)p->pos));
    jl_state_set_u64(j, "data_rng", p->rng);
    jl_state_set_indices(j, "data_order", p->order, p->n);
}

jl_status rl_pairs_state_restore(rl_pairs *p, json_object *j) {
    long pos;
    jl_status st = jl_state_long(j, "data_pos", 0, (long)p->n_train, &pos);
    if (st == JL_OK) st = jl_state_u64(j, "data_rng", &p->rng);
    if (st == JL_OK) st = jl_state_indices(j, "data_order", p->order, p->n, p->n);
    if (st == JL_OK) p->pos = (size_t)pos;
    return st;
}

uint64_t rl_reward_model_fingerprint(const jl_reward_model *rm) {
    return jl_params_fingerprint(rm->ck.model->params, rm->ck.model->n_params) ^
           jl_params_fingerprint(rm->head.w, (size_t)rm->head.C);
}

/* ---------------------------------------------------------------- the stage */

typedef struct {
    const jl_rl_opts *o;
    jl_trainer *t;
    const jl_tokenizer *tok;
    rl_head h;
    rl_batch b;
    rl_pairs p;
} reward_stage;

static jl_status rm_eval(void *self, long step, jl_metric_set *out) {
    reward_stage *r = self;
    (void)step;
    const int batch = r->o->train.run.batch;
    const rl_seq *rows[2 * batch];
    size_t cursor = 0;
    double loss = 0, acc = 0, margin = 0;
    int pairs = 0, n;
    for (int k = 0; (n = rl_pairs_eval(&r->p, &cursor, batch, rows)) > 0; k++) {
        if (!rl_dist_mine(k)) continue; /* mpirun: batches dealt round the ranks, sums reduced below */
        rl_batch_fill(&r->b, rows, n);
        rm_stats s;
        rm_pairs_loss(r->t->model, &r->t->acts, &r->b, &r->h, NULL, &s);
        loss += s.loss * n / 2;
        acc += s.accuracy * n / 2;
        margin += s.margin * n / 2;
        pairs += n / 2;
    }
    double sums[4] = {loss, acc, margin, pairs};
    jl_status st = rl_dist_sum(JL_OK, sums, 4);
    if (st != JL_OK) return st;
    loss = sums[0], acc = sums[1], margin = sums[2], pairs = (int)sums[3];
    jl_metric_add(out, "eval_loss", loss / pairs);
    jl_metric_add(out, "eval_accuracy", acc / pairs);
    jl_metric_add(out, "eval_margin", margin / pairs);
    jl_metric_add(out, "eval_pairs", pairs); /* how much the accuracy can mean: it moves in steps of 1/pairs */
    return JL_OK;
}

static jl_status rm_step(void *self, jl_stage_step *out) {
    reward_stage *r = self;
    const int batch = r->o->train.run.batch;
    const rl_seq *rows[2 * batch];
    rl_batch_fill(&r->b, rows, rl_pairs_next_mine(&r->p, batch, rows));
    rl_zero_grads(r->t, &r->h);
    rm_stats s;
    jl_trainer_sum_begin(r->t, 1.0f); /* mpirun: the all-reduce overlaps the backward pass; ended in rl_dist_mean */
    rl_grad_pass_begin(r->t);
    rm_pairs_loss(r->t->model, &r->t->acts, &r->b, &r->h, &r->t->gview, &s);
    rl_grad_pass_end(r->t);
    double fig[3] = {s.loss, s.accuracy, s.margin};
    jl_status st = rl_dist_mean(r->t, &r->h, JL_OK, fig, 3);
    if (st != JL_OK) return st;
    s = (rm_stats){.loss = fig[0], .accuracy = fig[1], .margin = fig[2]};
    float lr;
    int applied;
    if ((st = rl_update(r->t, &r->h, s.loss, &out->grad_norm, &lr, &applied)) != JL_OK) return st;
    out->loss = s.loss;
    out->lr = lr;
    out->tokens = (long)r->b.rows * r->b.T;
    out->skipped = applied ? NULL : "loss or gradient not finite";
    jl_metric_add(&out->m, "accuracy", s.accuracy);
    jl_metric_add(&out->m, "margin", s.margin);
    return JL_OK;
}

static jl_status rm_save_state(void *self, json_object *j) {
    reward_stage *r = self;
    rl_pairs_state_save(&r->p, j);
    rl_head_state_save(&r->h, "score", j);
    return JL_OK;
}

static jl_status rm_restore_state(void *self, json_object *j) {
    reward_stage *r = self;
    jl_status st = rl_pairs_state_restore(&r->p, j);
    return st == JL_OK ? rl_head_state_restore(&r->h, "score", j) : st;
}

static jl_status rm_save_result(void *self, char *path, size_t size) {
    reward_stage *r = self;
    const char *dir = r->o->train.run.out_dir;
    jl_status st = rl_save_merged(r->t->model, r->tok, r->o->chat, dir, path, size); /* with LoRA: base + adapter folded in */
    if (st == JL_OK && r->t->model->lora) st = rl_save_policy(r->t->model, r->tok, r->o->chat, dir, path, size);
    char score[4096];
    snprintf(score, sizeof score, "%s/score.safetensors", dir);
    if (st == JL_OK) st = rl_head_save(&r->h, score, SCORE_TENSOR);
    snprintf(path, size, "%s", dir);
    return st;
}

static const jl_stage_i reward_i = {.name = "reward", .step = rm_step, .evaluate = rm_eval,
                                    .save_state = rm_save_state, .restore_state = rm_restore_state,
                                    .save_result = rm_save_result};

int rl_pairs_longest(const rl_pairs *p) {
    int T = 1;
    for (size_t i = 0; i < 2 * p->n; i++) T = p->seqs[i].len > T ? p->seqs[i].len : T;
    return T;
}

jl_status jl_reward_train(jl_model *base, const jl_tokenizer *tok, const jl_pref_set *set, const jl_rl_opts *o,
                          jl_event_fn fn, void *user) {
    const int batch = o->train.run.batch;
    int max_len = o->max_len > 0 ? o->max_len : base->cfg.max_seq_len;
    if (max_len > base->cfg.max_seq_len)
        return jl_fail(JL_ERR_ARG, "max length %d is larger than the model's context %d", max_len, base->cfg.max_seq_len);
    if (batch < 1 || o->train.run.steps < 1) return jl_fail(JL_ERR_ARG, "batch and steps must be ≥ 1");
    reward_stage r = {.o = o, .tok = tok};
    size_t dropped = 0;
    jl_status st = rl_pairs_encode(tok, o->chat, set, max_len, o->eval_fraction, o->train.run.seed, &r.p,
                                   o->skip_long ? &dropped : NULL);
    if (o->skipped_long) *o->skipped_long = dropped;
    if (st != JL_OK) return st;
    int T = rl_pairs_longest(&r.p);
    jl_lora *lora = NULL;
    if ((st = rl_lora_begin(base, o, 2 * batch * T, &lora)) == JL_OK &&
        (st = rl_trainer_new(base, 2 * batch, T, o, o->train.run.steps, &r.t)) == JL_OK &&
        (st = rl_head_new(base->cfg.dim, o->train.run.seed, &r.h)) == JL_OK &&
        (st = rl_batch_new(2 * batch, T, &r.b)) == JL_OK) {
        jl_stage s = {.i = &reward_i, .self = &r, .what = {.t = r.t, .lora = lora, .tok = tok}, .o = &o->train,
                      .data_parallel = 1, .eval_at_start = 1, .eval_at_end = 1};
        st = jl_train_run(&s, fn, user);
    }
    rl_batch_free(&r.b);
    rl_head_free(&r.h);
    jl_trainer_free(r.t);
    rl_lora_end(base, lora);
    rl_pairs_free(&r.p);
    return st;
}
