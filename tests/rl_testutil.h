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
    jl_rng rng;
} toy_ctx;

/* Conversations "p" → 4 letters of {a,b,x}, loss on the answer (+ its <|end|>). */
static inline jl_status toy_batch(void *ctx, int32_t *tokens, int32_t *targets, int B, int T) {
    toy_ctx *c = ctx;
    for (int b = 0; b < B; b++) {
        char ans[8];
        random_answer(&c->rng, ans, 4);
        rl_seq s;
        jl_status st = rl_encode(c->tok, "p", ans, T + 1, "toy", &s);
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
    toy_ctx ctx = {tok, {0}};
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

/* Values of `key` in the metrics lines that have it, in order. */
static inline int read_metric(const char *path, const char *key, double *out, int max) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < max) {
        json_object *o = json_tokener_parse(line), *v;
        if (o && json_object_object_get_ex(o, key, &v)) out[n++] = json_object_get_double(v);
        json_object_put(o);
    }
    fclose(f);
    return n;
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
