/* Shared by the preference/RL tests: a tiny model over the byte tokenizer, a toy "SFT" policy that answers
 * prompt "p" with 4 characters from {a, b, x}, toy data files, finite-difference gradient checks. */
#ifndef JL_RL_TESTUTIL_H
#define JL_RL_TESTUTIL_H
#include "testutil.h"
#include "core/rng.h"
#include "jielong/checkpoint.h"
#include "model/model.h"
#include "train/rl_common.h"
#include "train/trainer.h"
#include <json.h>
#include <math.h>

static inline jl_model *tiny_model(uint64_t seed) {
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, 1, 262, 32);
    c.dim = 32;
    c.n_head = 2;
    c.n_kv_head = 2;
    c.hidden_dim = 64;
    jl_model *m;
    assert_int_equal(jl_model_new(&c, &m), JL_OK);
    jl_model_init(m, seed);
    return m;
}

static inline jl_tokenizer *byte_tok(void) {
    jl_tokenizer *t;
    assert_int_equal(jl_tokenizer_bytes(&t), JL_OK);
    return t;
}

static inline void random_answer(jl_rng *r, char *out, int n) {
    static const char letters[] = "abx";
    for (int i = 0; i < n; i++) out[i] = letters[jl_rng_below(r, 3)];
    out[n] = 0;
}

typedef struct {
    const jl_tokenizer *tok;
    const jl_chat_format *fmt; /* NULL: the built-in chat format */
    jl_rng rng;
} toy_ctx;

/* Conversations "p" → 4 letters of {a,b,x} in fmt, loss on the answer (+ its end-of-turn marker). */
static inline jl_status toy_batch(void *ctx, int32_t *tokens, int32_t *targets, int B, int T) {
    toy_ctx *c = ctx;
    for (int b = 0; b < B; b++) {
        char ans[8];
        random_answer(&c->rng, ans, 4);
        rl_seq s;
        jl_status st = rl_encode(c->tok, c->fmt, "p", ans, T + 1, "toy", &s);
        if (st != JL_OK) return st;
        for (int t = 0; t < T; t++) {
            tokens[b * T + t] = t < s.len ? s.ids[t] : 0;
            targets[b * T + t] = (t + 1 >= s.resp_start && t + 1 < s.len) ? s.ids[t + 1] : -1;
        }
        rl_seq_free(&s);
    }
    return JL_OK;
}

/* A tiny model fine-tuned (next-token loss) to answer "p" with 4 letters of {a,b,x}. */
static inline jl_model *toy_policy(const jl_tokenizer *tok) {
    jl_model *m = tiny_model(7);
    jl_trainer_opts to = {.B = 16, .T = 12, .accum = 1};
    jl_optim_defaults(&to.opt, 1e-2f, 80);
    to.opt.warmup_steps = 0;
    jl_trainer *t;
    assert_int_equal(jl_trainer_new(m, &to, &t), JL_OK);
    toy_ctx ctx = {tok, NULL, {0}};
    jl_rng_seed(&ctx.rng, 3);
    jl_step_stats ss;
    for (int i = 0; i < 80; i++) assert_int_equal(jl_trainer_step(t, toy_batch, &ctx, &ss), JL_OK);
    jl_trainer_free(t);
    return m;
}

static inline void save_model(jl_model *m, const jl_tokenizer *tok, const char *path) {
    jl_checkpoint ck = {.model = m};
    assert_int_equal(jl_tokenizer_to_json(tok, &ck.tokenizer_json), JL_OK);
    assert_int_equal(jl_checkpoint_save(path, &ck), JL_OK);
    free(ck.tokenizer_json);
}

/* Pairs where an answer ending in 'a' beats the same answer ending in 'b'. */
static inline void write_toy_prefs(const char *path, int n, uint64_t seed) {
    jl_rng r;
    jl_rng_seed(&r, seed);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < n; i++) {
        char pre[8];
        random_answer(&r, pre, 3);
        fprintf(f, "{\"prompt\":\"p\",\"chosen\":\"%sa\",\"rejected\":\"%sb\"}\n", pre, pre);
    }
    fclose(f);
}

static inline void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}


static inline int file_contains(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return strstr(buf, needle) != NULL;
}

/* Checks an analytic gradient against central differences of loss_fn: in every tensor of the model, the entry
 * with the largest gradient (when it is not tiny), plus `extra` (a head's w and g, may be NULL). */
typedef double (*rl_loss_fn)(void *ctx);

static inline void fd_check_one(const char *what, float *p, double analytic, rl_loss_fn f, void *ctx, int *checked) {
    const float eps = 1e-3f;
    float saved = *p;
    *p = saved + eps;
    double lp = f(ctx);
    *p = saved - eps;
    double lm = f(ctx);
    *p = saved;
    double fd = (lp - lm) / (2.0 * eps);
    double tol = 0.05 * fmax(fabs(fd), fabs(analytic)) + 2e-4;
    if (!(fabs(fd - analytic) <= tol)) print_message("%s: analytic %.6g, finite difference %.6g\n", what, analytic, fd);
    assert_true(fabs(fd - analytic) <= tol);
    (*checked)++;
}

static inline void grad_check(jl_model *m, const float *grads, float *head_w, const float *head_g, int C, rl_loss_fn f,
                       void *ctx) {
    int checked = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const jl_tensor_info *t = &m->tensors[i];
        size_t n = (size_t)t->shape[0] * (size_t)(t->ndim == 2 ? t->shape[1] : 1), best = 0;
        const float *g = grads + t->offset;
        for (size_t j = 1; j < n; j++)
            if (fabsf(g[j]) > fabsf(g[best])) best = j;
        if (fabsf(g[best]) < 1e-3f) continue;
        fd_check_one(t->name, m->params + t->offset + best, g[best], f, ctx, &checked);
    }
    if (head_w) {
        int best = 0;
        for (int c = 1; c < C; c++)
            if (fabsf(head_g[c]) > fabsf(head_g[best])) best = c;
        fd_check_one("head", head_w + best, head_g[best], f, ctx, &checked);
    }
    assert_true(checked >= 4);
}

#endif

#include "train/rl_losses.h"

/* A batch of 4 toy answers with random old log-probs near the current ones, random advantages, values and
 * returns, and the reference log-probs of another model: the inputs of the policy loss away from its start. */
typedef struct {
    jl_tokenizer *tok;
    jl_model *m, *ref;
    rl_seq seqs[4];
    rl_batch b;
    jl_acts a;
    float *old_logp, *ref_logp, *adv, *old_values, *returns, *logp, *buf;
    policy_inputs in;
    rl_head head;
    int use_head;
} policy_fixture;

static inline void policy_fixture_new(policy_fixture *f, float kl_coef, int use_head) {
    memset(f, 0, sizeof *f);
    f->tok = byte_tok();
    f->m = tiny_model(1);
    f->ref = tiny_model(2);
    const char *answers[] = {"abxa", "xx", "axbxb", "b"};
    const rl_seq *rows[4];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rl_encode(f->tok, NULL, "p", answers[i], 32, "test", &f->seqs[i]), JL_OK);
        rows[i] = &f->seqs[i];
    }
    assert_int_equal(rl_batch_new(4, 32, &f->b), JL_OK);
    rl_batch_fill(&f->b, rows, 4);
    assert_int_equal(jl_acts_new(&f->m->cfg, 4, 32, &f->a), JL_OK);
    size_t n = 4 * 32;
    float **arrays[] = {&f->old_logp, &f->ref_logp, &f->adv, &f->old_values, &f->returns, &f->logp, &f->buf};
    for (int k = 0; k < 7; k++) *arrays[k] = calloc(n, sizeof(float));
    rl_forward_logprobs(f->ref, &f->a, &f->b, f->ref_logp, NULL);
    rl_forward_logprobs(f->m, &f->a, &f->b, f->old_logp, NULL);
    jl_rng r;
    jl_rng_seed(&r, 77);
    for (size_t i = 0; i < n; i++) {
        f->old_logp[i] += 0.15f * jl_rng_normal(&r); /* some ratios beyond the clip range */
        f->adv[i] = jl_rng_normal(&r);
        f->old_values[i] = 0.5f * jl_rng_normal(&r);
        f->returns[i] = jl_rng_normal(&r);
    }
    f->use_head = use_head;
    assert_int_equal(rl_head_new(f->m->cfg.dim, 3, &f->head), JL_OK);
    for (int c = 0; c < f->head.C; c++) f->head.w[c] *= 20.0f;
    f->in = (policy_inputs){.old_logp = f->old_logp, .ref_logp = f->ref_logp, .adv = f->adv,
                            .old_values = f->old_values, .returns = f->returns, .clip_eps = 0.2f,
                            .kl_coef = kl_coef, .vf_coef = 0.5f, .value_clip = 0.3f};
}

static inline void policy_fixture_free(policy_fixture *f) {
    for (int i = 0; i < 4; i++) rl_seq_free(&f->seqs[i]);
    rl_batch_free(&f->b);
    jl_acts_free(&f->a);
    float *arrays[] = {f->old_logp, f->ref_logp, f->adv, f->old_values, f->returns, f->logp, f->buf};
    for (int k = 0; k < 7; k++) free(arrays[k]);
    rl_head_free(&f->head);
    jl_model_free(f->m);
    jl_model_free(f->ref);
    jl_tokenizer_free(f->tok);
}

static inline double policy_loss_only(void *p) {
    policy_fixture *f = p;
    policy_stats s;
    return policy_batch_loss(f->m, &f->a, &f->b, &f->in, f->use_head ? &f->head : NULL, f->logp, f->buf, NULL, &s);
}

/* The analytic gradient of the policy (+ value) loss against finite differences, every log π at temperature
 * (1: the logits as they are; the fixture's old and reference log-probs are then recomputed at it). */
static inline void policy_grad_check_at(float kl_coef, int use_head, float temperature) {
    policy_fixture f;
    policy_fixture_new(&f, kl_coef, use_head);
    if (temperature != 1.0f) {
        f.in.temperature = temperature;
        rl_forward_logprobs_at(f.ref, &f.a, &f.b, temperature, f.ref_logp, NULL);
        float *noise = f.logp; /* keep the fixture's perturbation of old_logp (ratios beyond the clip range) */
        rl_forward_logprobs(f.m, &f.a, &f.b, noise, NULL);
        for (size_t i = 0; i < 4 * 32; i++) f.old_logp[i] -= noise[i];
        rl_forward_logprobs_at(f.m, &f.a, &f.b, temperature, noise, NULL);
        for (size_t i = 0; i < 4 * 32; i++) f.old_logp[i] += noise[i];
    }
    float *grads = calloc(f.m->n_params, sizeof(float));
    jl_layer_params *lp = calloc((size_t)f.m->cfg.n_layer, sizeof *lp);
    jl_params gv;
    jl_params_at(f.m, grads, &gv, lp);
    policy_stats s;
    policy_batch_loss(f.m, &f.a, &f.b, &f.in, use_head ? &f.head : NULL, f.logp, f.buf, &gv, &s);
    assert_true(s.clip_frac > 0 && s.clip_frac < 1); /* both branches of the clipped objective are exercised */
    grad_check(f.m, grads, use_head ? f.head.w : NULL, use_head ? f.head.g : NULL, f.head.C, policy_loss_only, &f);
    free(grads);
    free(lp);
    policy_fixture_free(&f);
}

static inline void policy_grad_check(float kl_coef, int use_head) { policy_grad_check_at(kl_coef, use_head, 1.0f); }

static inline void write_prompts(const char *path, int n) {
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i < n; i++) fprintf(fp, "{\"prompt\":\"p\",\"form\":\"wujue\"}\n");
    fclose(fp);
}

/* Mean of v[from..to). */
static inline double mean_of(const double *v, int from, int to) {
    double s = 0;
    for (int i = from; i < to; i++) s += v[i];
    return s / (to - from);
}
