/* The one training loop (see run.h): every stage's logging, evaluation, samples, checkpoints, resume, skip
 * policy, stop-after and stop requests. */
#include "train/run.h"
#include "jielong/checkpoint.h"
#include "jielong/dist.h"
#include "jielong/metrics.h"
#include "jielong/safetensors.h"
#include "core/kernels.h"
#include "core/perf.h"
#include "core/timer.h"
#include "io/fileio.h"
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- options */

void jl_stage_opts_defaults(jl_stage_opts *o) {
    memset(o, 0, sizeof *o);
    o->optim = (jl_optim_cfg){.lr = 0, .min_lr_frac = 0.1f, .warmup = -1, .schedule = JL_SCHED_COSINE,
                              .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f, .grad_clip = 1.0f,
                              .accum = 1};
    o->run = (jl_run_cfg){.steps = 1000, .batch = 8, .seed = 1337, .eval_every = 100, .save_every = 500,
                          .precision = (int)jl_precision_default()};
}

long jl_default_warmup(long warmup, long steps) {
    if (warmup >= 0) return warmup;
    return steps / 20 < 100 ? steps / 20 : 100;
}

void jl_optim_from_cfg(const jl_optim_cfg *c, long total_steps, jl_optim_opts *o) {
    jl_optim_defaults(o, c->lr, total_steps);
    o->min_lr_frac = c->min_lr_frac;
    o->warmup_steps = jl_default_warmup(c->warmup, total_steps);
    o->schedule = (jl_schedule)c->schedule;
    o->beta1 = c->beta1;
    o->beta2 = c->beta2;
    o->eps = c->eps;
    o->weight_decay = c->weight_decay;
    o->grad_clip = c->grad_clip;
    o->zero = c->zero;
}

void jl_metric_add(jl_metric_set *s, const char *key, double value) {
    if (s->n >= JL_STAGE_MAX_METRICS) return;
    s->keys[s->n] = key;
    s->values[s->n++] = value;
}

uint64_t jl_params_fingerprint(const float *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n * sizeof(float); i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* ---------------------------------------------------------------- stop requests */

static volatile sig_atomic_t stop_signal;

void jl_train_request_stop(int signo) { stop_signal = signo ? signo : SIGINT; }
int jl_train_stop_signal(void) { return (int)stop_signal; }

/* ---------------------------------------------------------------- state fields */

jl_status jl_state_num(json_object *j, const char *key, double min, double max, double *out) {
    json_object *v;
    if (!json_object_object_get_ex(j, key, &v) ||
        (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)))
        return jl_fail(JL_ERR_FORMAT, "training state: field '%s' missing or not a number", key);
    double x = json_object_get_double(v);
    if (!isfinite(x) || x < min || x > max)
        return jl_fail(JL_ERR_FORMAT, "training state: field '%s' is %g, outside [%g, %g]", key, x, min, max);
    *out = x;
    return JL_OK;
}

jl_status jl_state_long_opt(json_object *j, const char *key, long min, long max, long *out) {
    json_object *v;
    return json_object_object_get_ex(j, key, &v) ? jl_state_long(j, key, min, max, out) : JL_OK;
}

jl_status jl_state_long(json_object *j, const char *key, long min, long max, long *out) {
    double x = 0;
    jl_status st = jl_state_num(j, key, (double)min, (double)max, &x);
    if (st != JL_OK) return st;
    if (x != floor(x)) return jl_fail(JL_ERR_FORMAT, "training state: field '%s' is %g, not a whole number", key, x);
    *out = (long)x;
    return JL_OK;
}

void jl_state_set_fixed(json_object *j, const char *key, double value) {
    json_object_object_add(j, key, json_object_new_double(value));
}

jl_status jl_state_check_fixed(json_object *j, const char *key, double value) {
    double saved = 0;
    jl_status st = jl_state_num(j, key, -1e300, 1e300, &saved);
    if (st == JL_OK && saved != value)
        st = jl_fail(JL_ERR_ARG, "the checkpoint was trained with %s %g, not %g: resume with the flags of the "
                     "interrupted run", key, saved, value);
    return st;
}

void jl_state_set_u64(json_object *j, const char *key, uint64_t v) {
    char s[32];
    snprintf(s, sizeof s, "%llu", (unsigned long long)v);
    json_object_object_add(j, key, json_object_new_string(s));
}

jl_status jl_state_u64(json_object *j, const char *key, uint64_t *out) {
    json_object *v;
    if (!json_object_object_get_ex(j, key, &v) || !json_object_is_type(v, json_type_string))
        return jl_fail(JL_ERR_FORMAT, "training state: field '%s' missing or not a decimal string", key);
    const char *s = json_object_get_string(v);
    char *end;
    unsigned long long x = strtoull(s, &end, 10);
    if (!*s || *end || *s == '-')
        return jl_fail(JL_ERR_FORMAT, "training state: field '%s' ('%.20s') is not an unsigned integer", key, s);
    *out = (uint64_t)x;
    return JL_OK;
}

void jl_state_set_floats(json_object *j, const char *key, const float *v, size_t n) {
    char *hex = malloc(8 * n + 1);
    if (!hex) return; /* the restore then reports the field missing */
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], 4);
        snprintf(hex + 8 * i, 9, "%08x", bits);
    }
    hex[8 * n] = 0;
    json_object_object_add(j, key, json_object_new_string(hex));
    free(hex);
}

jl_status jl_state_floats(json_object *j, const char *key, float *v, size_t n) {
    json_object *o;
    if (!json_object_object_get_ex(j, key, &o) || !json_object_is_type(o, json_type_string) ||
        (size_t)json_object_get_string_len(o) != 8 * n)
        return jl_fail(JL_ERR_FORMAT, "training state: field '%s' missing or not %zu hex floats", key, n);
    const char *s = json_object_get_string(o);
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = 0;
        for (int k = 0; k < 8; k++) {
            char c = s[8 * i + (size_t)k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0) return jl_fail(JL_ERR_FORMAT, "training state: field '%s' is not hex", key);
            bits = bits << 4 | (uint32_t)d;
        }
        memcpy(&v[i], &bits, 4);
        if (!isfinite(v[i])) return jl_fail(JL_ERR_FORMAT, "training state: field '%s' holds a non-finite value", key);
    }
    return JL_OK;
}

void jl_state_set_indices(json_object *j, const char *key, const size_t *v, size_t n) {
    json_object *a = json_object_new_array_ext((int)n);
    for (size_t i = 0; i < n; i++) json_object_array_add(a, json_object_new_int64((int64_t)v[i]));
    json_object_object_add(j, key, a);
}

jl_status jl_state_indices(json_object *j, const char *key, size_t *v, size_t n, size_t bound) {
    json_object *a;
    if (!json_object_object_get_ex(j, key, &a) || !json_object_is_type(a, json_type_array) ||
        json_object_array_length(a) != n)
        return jl_fail(JL_ERR_FORMAT, "training state: field '%s' missing or not %zu indices (other data?)", key, n);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(a, i);
        int64_t x = json_object_get_int64(e);
        if (!json_object_is_type(e, json_type_int) || x < 0 || (uint64_t)x >= bound)
            return jl_fail(JL_ERR_FORMAT, "training state: field '%s' entry %zu is not an index below %zu", key, i,
                           bound);
        v[i] = (size_t)x;
    }
    return JL_OK;
}

static void state_put_opts(json_object *j, const jl_stage_opts *o) {
    const jl_optim_cfg *c = &o->optim;
    json_object_object_add(j, "B", json_object_new_int(o->run.batch));
    json_object_object_add(j, "accum", json_object_new_int(c->accum));
    json_object_object_add(j, "ranks", json_object_new_int(jl_dist_size()));
    json_object_object_add(j, "steps", json_object_new_int64(o->run.steps));
    json_object_object_add(j, "lr", json_object_new_double(c->lr));
    json_object_object_add(j, "min_lr_frac", json_object_new_double(c->min_lr_frac));
    json_object_object_add(j, "warmup", json_object_new_int64(c->warmup));
    json_object_object_add(j, "schedule", json_object_new_int(c->schedule));
    json_object_object_add(j, "weight_decay", json_object_new_double(c->weight_decay));
    json_object_object_add(j, "beta1", json_object_new_double(c->beta1));
    json_object_object_add(j, "beta2", json_object_new_double(c->beta2));
    json_object_object_add(j, "eps", json_object_new_double(c->eps));
    json_object_object_add(j, "grad_clip", json_object_new_double(c->grad_clip));
    jl_state_set_u64(j, "seed", o->run.seed);
    json_object_object_add(j, "eval_every", json_object_new_int(o->run.eval_every));
    json_object_object_add(j, "save_every", json_object_new_int(o->run.save_every));
    json_object_object_add(j, "sample_every", json_object_new_int(o->run.sample_every));
    json_object_object_add(j, "precision", json_object_new_string(jl_precision_name((jl_precision)o->run.precision)));
}

/* "precision" ("fp32" / "bf16"); a checkpoint written before it was saved keeps o's. */
static jl_status state_precision(json_object *j, int *precision) {
    json_object *v;
    if (!json_object_object_get_ex(j, "precision", &v)) return JL_OK;
    jl_precision p;
    if (!json_object_is_type(v, json_type_string) || jl_precision_parse(json_object_get_string(v), &p))
        return jl_fail(JL_ERR_FORMAT, "training state: field 'precision' is not fp32 or bf16");
    *precision = (int)p;
    return JL_OK;
}

jl_status jl_state_read_opts(json_object *j, jl_stage_opts *o) {
    double lr = 0, mlf = 0, wd = 0, b1 = 0, b2 = 0, eps = 0, clip = 0;
    long B = 0, accum = 0, steps = 0, warmup = 0, sched = 0;
    uint64_t seed = 0;
    jl_status st = jl_state_long(j, "B", 1, 1L << 20, &B);
    if (st == JL_OK) st = jl_state_long(j, "accum", 1, 1L << 20, &accum);
    if (st == JL_OK) st = jl_state_long(j, "steps", 1, 1L << 40, &steps);
    if (st == JL_OK) st = jl_state_num(j, "lr", 1e-12, 10, &lr);
    if (st == JL_OK) st = jl_state_num(j, "min_lr_frac", 0, 1, &mlf);
    if (st == JL_OK) st = jl_state_long(j, "warmup", 0, 1L << 40, &warmup);
    if (st == JL_OK) st = jl_state_long(j, "schedule", 0, 2, &sched);
    if (st == JL_OK) st = jl_state_num(j, "weight_decay", 0, 10, &wd);
    if (st == JL_OK) st = jl_state_num(j, "beta1", 0, 0.999999, &b1);
    if (st == JL_OK) st = jl_state_num(j, "beta2", 0, 0.999999999, &b2);
    if (st == JL_OK) st = jl_state_num(j, "eps", 1e-30, 1, &eps);
    if (st == JL_OK) st = jl_state_num(j, "grad_clip", 0, 1e6, &clip);
    if (st == JL_OK) st = jl_state_u64(j, "seed", &seed);
    long every[3] = {0};
    const char *every_keys[3] = {"eval_every", "save_every", "sample_every"};
    for (int i = 0; i < 3 && st == JL_OK; i++) st = jl_state_long(j, every_keys[i], 0, 1L << 30, &every[i]);
    int precision = o->run.precision;
    if (st == JL_OK) st = state_precision(j, &precision);
    if (st != JL_OK) return st;
    o->run.precision = precision;
    o->run.eval_every = (int)every[0];
    o->run.save_every = (int)every[1];
    o->run.sample_every = (int)every[2];
    o->run.batch = (int)B;
    o->optim.accum = (int)accum;
    o->run.steps = steps;
    o->optim.lr = (float)lr;
    o->optim.min_lr_frac = (float)mlf;
    o->optim.warmup = warmup;
    o->optim.schedule = (int)sched;
    o->optim.weight_decay = (float)wd;
    o->optim.beta1 = (float)b1;
    o->optim.beta2 = (float)b2;
    o->optim.eps = (float)eps;
    o->optim.grad_clip = (float)clip;
    o->run.seed = seed;
    return JL_OK;
}

void jl_stage_opts_resume(jl_stage_opts *o, const jl_stage_opts *saved, unsigned given) {
#define TAKE(bit, field)                                                                                          \
    if (!(given & (bit))) o->field = saved->field
    TAKE(JL_OPT_BATCH, run.batch);
    TAKE(JL_OPT_STEPS, run.steps);
    TAKE(JL_OPT_SEED, run.seed);
    TAKE(JL_OPT_EVAL_EVERY, run.eval_every);
    TAKE(JL_OPT_SAVE_EVERY, run.save_every);
    TAKE(JL_OPT_SAMPLE_EVERY, run.sample_every);
    TAKE(JL_OPT_ACCUM, optim.accum);
    TAKE(JL_OPT_LR, optim.lr);
    TAKE(JL_OPT_MIN_LR_FRAC, optim.min_lr_frac);
    TAKE(JL_OPT_WARMUP, optim.warmup);
    TAKE(JL_OPT_SCHEDULE, optim.schedule);
    TAKE(JL_OPT_BETA1, optim.beta1);
    TAKE(JL_OPT_BETA2, optim.beta2);
    TAKE(JL_OPT_EPS, optim.eps);
    TAKE(JL_OPT_WEIGHT_DECAY, optim.weight_decay);
    TAKE(JL_OPT_GRAD_CLIP, optim.grad_clip);
    TAKE(JL_OPT_PRECISION, run.precision);
#undef TAKE
}

jl_status jl_state_object_of_checkpoint(const char *path, json_object **out) {
    char *text;
    *out = NULL;
    jl_status st = jl_state_of_checkpoint(path, &text);
    if (st != JL_OK) return st;
    json_object *j = json_tokener_parse(text);
    free(text);
    if (j && json_object_is_type(j, json_type_object)) {
        *out = j;
        return JL_OK;
    }
    json_object_put(j);
    return jl_fail(JL_ERR_FORMAT, "%s: training state is not a JSON object", path);
}

jl_status jl_stage_opts_of_checkpoint(const char *path, jl_stage_opts *out) {
    json_object *j;
    jl_status st = jl_state_object_of_checkpoint(path, &j);
    if (st != JL_OK) return st;
    st = jl_state_read_opts(j, out);
    json_object_put(j);
    return st == JL_OK ? JL_OK : jl_fail_context(st, "%s", path);
}

/* The saved trajectory-shaping options must be the run's: the first that differs is named. The global batch is
 * batch × accum × ranks: a run may resume on another number of ranks with accum × ranks kept. */
static jl_status check_same_opts(const jl_stage *s, const jl_stage_opts *saved, long saved_ranks) {
    const jl_stage_opts *o = s->o;
    const jl_optim_cfg *a = &saved->optim, *b = &o->optim;
    struct { const char *name; double was, now; } f[] = {
        {"batch", saved->run.batch, o->run.batch},
        {saved_ranks == 1 && jl_dist_size() == 1 ? "accum" : "accum × ranks", (double)a->accum * (double)saved_ranks,
         (double)b->accum * jl_dist_size()},
        {"steps", s->steps_may_change ? o->run.steps : saved->run.steps, o->run.steps},
        {"lr", a->lr, b->lr}, {"min_lr_frac", a->min_lr_frac, b->min_lr_frac},
        {"warmup", a->warmup, jl_default_warmup(b->warmup, o->run.steps)}, {"schedule", a->schedule, b->schedule},
        {"weight_decay", a->weight_decay, b->weight_decay}, {"beta1", a->beta1, b->beta1},
        {"beta2", a->beta2, b->beta2}, {"eps", a->eps, b->eps}, {"grad_clip", a->grad_clip, b->grad_clip},
        {"seed", (double)saved->run.seed, (double)o->run.seed},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].was != f[i].now)
            return jl_fail(JL_ERR_ARG, "the checkpoint was trained with %s %g, not %g: resume with the flags of the "
                           "interrupted run", f[i].name, f[i].was, f[i].now);
    if ((saved->run.precision == JL_PREC_BF16) != (o->run.precision == JL_PREC_BF16))
        return jl_fail(JL_ERR_ARG, "the checkpoint was trained with precision %s, not %s: resume with the flags of the "
                       "interrupted run", jl_precision_name((jl_precision)saved->run.precision),
                       jl_precision_name((jl_precision)o->run.precision));
    return JL_OK;
}

jl_status jl_state_of_checkpoint(const char *path, char **state_json) {
    *state_json = NULL;
    jl_st_file *f;
    jl_status st = jl_st_open(path, &f);
    if (st != JL_OK) return jl_fail_context(st, "%s", path);
    const char *text = jl_st_meta(f, "jielong.train_state");
    if (!text) st = jl_fail(JL_ERR_FORMAT, "%s: not a training checkpoint (no training state)", path);
    else if (!(*state_json = strdup(text))) st = jl_fail(JL_ERR_NOMEM, "out of memory");
    jl_st_close(f);
    return st;
}

/* ---------------------------------------------------------------- checkpoints of what trains */

/* Moments in a model checkpoint use the model's layout (zeros for frozen tensors): scatter / gather. */
static void moments_layout(const jl_trainer *t, float *dst, const float *src, int to_model) {
    const jl_model *m = t->model;
    size_t off = 0;
    for (int i = 0; i < t->n_groups; i++) {
        const jl_param_group *g = &t->groups[i];
        if (to_model) memcpy(dst + (g->param - m->params), src + off, g->n * sizeof(float));
        else memcpy(dst + off, src + (g->param - m->params), g->n * sizeof(float));
        off += g->n;
    }
}

/* mo: the whole moments (jl_trainer_moments_open). */
static jl_status save_checkpoint(const jl_trainable *w, const char *path, const char *state, const jl_moments *mo) {
    const jl_trainer *t = w->t;
    jl_adapter_state as = {.adam_m = mo->m, .adam_v = mo->v, .train_state = (char *)state};
    if (w->lora) return jl_lora_save(w->lora, path, &as);
    if (w->prompt) return jl_prompt_save(w->prompt, path, &as);
    jl_checkpoint ck = {.model = t->model};
    jl_status st = jl_tokenizer_to_json(w->tok, &ck.tokenizer_json);
    float *mm = st == JL_OK ? calloc(t->model->n_params, sizeof(float)) : NULL;
    float *mv = mm ? calloc(t->model->n_params, sizeof(float)) : NULL;
    if (st == JL_OK && !mv) st = jl_fail(JL_ERR_NOMEM, "out of memory");
    if (st == JL_OK) {
        moments_layout(t, mm, mo->m, 1);
        moments_layout(t, mv, mo->v, 1);
        ck.adam_m = mm;
        ck.adam_v = mv;
        ck.train_state = (char *)state;
        st = jl_checkpoint_save(path, &ck);
    }
    free(mm);
    free(mv);
    free(ck.tokenizer_json);
    return st;
}

/* Adam moments as saved: first finite, second finite and ≥ 0 (else the resumed run would write NaN). */
static jl_status check_moments(const jl_trainer *t, const jl_moments *mo) {
    for (size_t i = 0; i < t->n_state; i++) {
        if (!isfinite(mo->m[i]))
            return jl_fail(JL_ERR_FORMAT, "training state: field 'adam_m' holds a non-finite value at %zu", i);
        if (!isfinite(mo->v[i]) || mo->v[i] < 0)
            return jl_fail(JL_ERR_FORMAT, "training state: field 'adam_v' holds %g at %zu (must be finite, ≥ 0)",
                           (double)mo->v[i], i);
    }
    return JL_OK;
}

static jl_status load_adapter_checkpoint(const jl_trainable *w, const char *path, jl_adapter_state *as) {
    jl_status st;
    if (w->lora) {
        jl_lora *ck;
        if ((st = jl_lora_load(path, w->t->model, &ck, as)) != JL_OK) return st;
        if (jl_lora_num_params(ck) != jl_lora_num_params(w->lora))
            st = jl_fail(JL_ERR_ARG, "%s: adapter has rank/targets %d/%s, the flags ask for %d/%s", path,
                         jl_lora_options(ck)->rank, jl_lora_options(ck)->targets, jl_lora_options(w->lora)->rank,
                         jl_lora_options(w->lora)->targets);
        else memcpy(jl_lora_params(w->lora), jl_lora_params(ck), jl_lora_num_params(ck) * sizeof(float));
        jl_lora_free(ck);
        return st;
    }
    jl_prompt *ck;
    if ((st = jl_prompt_load(path, w->t->model, &ck, as)) != JL_OK) return st;
    if (jl_prompt_num_params(ck) != jl_prompt_num_params(w->prompt))
        st = jl_fail(JL_ERR_ARG, "%s: soft prompt has %d tokens, the flags ask for %d", path, jl_prompt_length(ck),
                     jl_prompt_length(w->prompt));
    else memcpy(jl_prompt_params(w->prompt), jl_prompt_params(ck), jl_prompt_num_params(ck) * sizeof(float));
    jl_prompt_free(ck);
    return st;
}

/* Loads the trained part (weights or adapter values) and the moments (into mo: jl_trainer_moments_open); *state
 * gets the state JSON. */
static jl_status load_checkpoint(const jl_trainable *w, const char *path, jl_moments *mo, char **state) {
    jl_trainer *t = w->t;
    *state = NULL;
    jl_status st;
    if (w->lora || w->prompt) {
        jl_adapter_state as = {0};
        st = load_adapter_checkpoint(w, path, &as);
        if (st == JL_OK && (!as.adam_m || !as.adam_v || !as.train_state))
            st = jl_fail(JL_ERR_FORMAT, "%s: no training state to resume from", path);
        if (st == JL_OK) {
            memcpy(mo->m, as.adam_m, t->n_state * sizeof(float));
            memcpy(mo->v, as.adam_v, t->n_state * sizeof(float));
            *state = as.train_state;
            as.train_state = NULL;
        }
        jl_adapter_state_free(&as);
        return st;
    }
    jl_checkpoint ck;
    if ((st = jl_checkpoint_load(path, &ck)) != JL_OK) return st;
    if (!jl_config_equal(&ck.model->cfg, &t->model->cfg))
        st = jl_fail(JL_ERR_ARG, "%s: checkpoint of another model config than this run's", path);
    else if (!ck.adam_m || !ck.adam_v || !ck.train_state)
        st = jl_fail(JL_ERR_FORMAT, "%s: not a training checkpoint (no optimizer state)", path);
    if (st == JL_OK) {
        if (ck.model->params != t->model->params)
            memcpy(t->model->params, ck.model->params, t->model->n_params * sizeof(float));
        moments_layout(t, mo->m, ck.adam_m, 0);
        moments_layout(t, mo->v, ck.adam_v, 0);
        *state = ck.train_state;
        ck.train_state = NULL;
    }
    jl_checkpoint_free(&ck);
    return st;
}

/* ---------------------------------------------------------------- the state of a run */

typedef struct {
    jl_stage *s;
    jl_metrics *log;
    jl_event_fn fn;
    void *user;
    long step;
    long skips_in_a_row;
    char ckpt_path[4096], metrics_path[4096];
} loop;

static char *state_json(loop *l) {
    const jl_trainer *t = l->s->what.t;
    json_object *j = json_object_new_object();
    json_object_object_add(j, "stage", json_object_new_string(l->s->i->name));
    json_object_object_add(j, "step", json_object_new_int64(l->step));
    json_object_object_add(j, "updates", json_object_new_int64(t->step));
    json_object_object_add(j, "skipped", json_object_new_int64(t->skipped));
    jl_state_set_u64(j, "rng", t->rng.state);
    state_put_opts(j, l->s->o);
    char *text = NULL;
    if (l->s->i->save_state(l->s->self, j) == JL_OK)
        text = strdup(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
    else jl_fail_context(JL_ERR_NOMEM, "saving the %s state", l->s->i->name);
    json_object_put(j);
    return text;
}

static jl_status restore_into(loop *l, const char *path, jl_moments *mo) {
    jl_stage *s = l->s;
    char *text;
    jl_status st = load_checkpoint(&s->what, path, mo, &text);
    if (st != JL_OK) return st;
    json_object *j = json_tokener_parse(text), *v;
    free(text);
    if (!j || !json_object_is_type(j, json_type_object)) {
        json_object_put(j);
        return jl_fail(JL_ERR_FORMAT, "%s: training state is not a JSON object", path);
    }
    const char *stage = json_object_object_get_ex(j, "stage", &v) ? json_object_get_string(v) : "";
    if (strcmp(stage, s->i->name) != 0)
        st = jl_fail(JL_ERR_ARG, "a %s checkpoint cannot resume %s", stage[0] ? stage : "stage-less", s->i->name);
    jl_stage_opts saved = *s->o;
    long step = 0, updates = 0, skipped = 0, ranks = 1;
    uint64_t rng = 0;
    if (st == JL_OK) st = jl_state_read_opts(j, &saved);
    if (st == JL_OK && json_object_object_get_ex(j, "ranks", &v)) st = jl_state_long(j, "ranks", 1, 1L << 20, &ranks);
    if (st == JL_OK) st = check_same_opts(s, &saved, ranks);
    if (st == JL_OK) st = jl_state_long(j, "step", 0, s->o->run.steps, &step);
    if (st == JL_OK) st = jl_state_long(j, "updates", 0, 1L << 50, &updates);
    if (st == JL_OK) st = jl_state_long(j, "skipped", 0, updates, &skipped);
    if (st == JL_OK) st = jl_state_u64(j, "rng", &rng);
    if (st == JL_OK) st = check_moments(s->what.t, mo);
    if (st == JL_OK) st = s->i->restore_state(s->self, j);
    json_object_put(j);
    if (st != JL_OK) return jl_fail_context(st, "%s", path);
    l->step = step;
    s->what.t->step = updates;
    s->what.t->skipped = skipped;
    s->what.t->rng.state = rng;
    return JL_OK;
}

/* The checkpoint's moments are read whole; under ZeRO-1 each rank then keeps its chunks. */
static jl_status restore(loop *l, const char *path) {
    jl_moments mo;
    jl_status st = jl_trainer_moments_open(l->s->what.t, 0, &mo);
    if (st == JL_OK) st = restore_into(l, path, &mo);
    jl_trainer_moments_close(l->s->what.t, &mo, st == JL_OK);
    return st;
}

/* Under mpirun, rank 0 alone reports, logs and writes; the other ranks compute. */
static int writer(void) { return jl_dist_rank() == 0; }

static void emit(loop *l, jl_train_event *ev) {
    ev->stage = l->s->i->name;
    ev->total_steps = l->s->o->run.steps;
    if (l->fn && writer()) l->fn(l->user, ev);
}

/* Rank 0 writes; every rank learns whether it could (jl_dist_agree). A checkpoint's moments are whole: under
 * ZeRO-1 every rank's chunks are gathered first (every rank takes part). */
static jl_status save(loop *l, const char *path, int result) {
    jl_trainer *t = l->s->what.t;
    jl_moments mo = {0};
    jl_status st = result ? JL_OK : jl_trainer_moments_open(t, 1, &mo);
    char written[4096];
    if (!writer() || st != JL_OK) {
        jl_trainer_moments_close(t, &mo, 0);
        return jl_dist_agree(st, NULL);
    }
    if (result) {
        st = l->s->i->save_result(l->s->self, written, sizeof written);
        path = written;
    } else {
        char *state = state_json(l);
        st = state ? save_checkpoint(&l->s->what, path, state, &mo) : JL_ERR_NOMEM;
        free(state);
    }
    jl_trainer_moments_close(t, &mo, 0);
    if ((st = jl_dist_agree(st, NULL)) != JL_OK) return st;
    jl_train_event ev = {.kind = JL_EV_SAVE, .step = l->step, .path = path};
    emit(l, &ev);
    return JL_OK;
}

static jl_status evaluate(loop *l) {
    jl_metric_set m = {0};
    jl_status st = jl_dist_agree(l->s->i->evaluate(l->s->self, l->step, &m), NULL);
    if (st != JL_OK || m.n == 0) return st;
    if (l->log && (st = jl_metrics_log(l->log, l->s->i->name, l->step, m.n, m.keys, m.values)) != JL_OK) return st;
    jl_train_event ev = {.kind = JL_EV_EVAL, .step = l->step, .val_loss = NAN, .n = m.n, .keys = m.keys,
                         .values = m.values};
    for (int i = 0; i < m.n; i++)
        if (strcmp(m.keys[i], "val_loss") == 0) ev.val_loss = m.values[i];
    emit(l, &ev);
    return JL_OK;
}

/* One metrics line (the loop's keys, then the stage's), the step or skip event, the skip policy. */
static jl_status log_step(loop *l, const jl_stage_step *ss) {
    const jl_stage *s = l->s;
    double tps = ss->tokens > 0 && ss->seconds > 0 ? (double)ss->tokens / ss->seconds : 0;
    double mfu = s->flops_per_step > 0 && ss->seconds > 0 ? jl_mfu(s->flops_per_step / ss->seconds,
                                                                   s->o->run.peak_gflops) : 0;
    const char *keys[8 + JL_STAGE_MAX_METRICS] = {"loss", "lr", "grad_norm"};
    double vals[8 + JL_STAGE_MAX_METRICS] = {ss->loss, ss->lr, ss->grad_norm};
    int n = 3;
    if (ss->tokens > 0) {
        keys[n] = "tok_per_s", vals[n++] = tps;
        keys[n] = "ms", vals[n++] = ss->seconds * 1e3;
    }
    keys[n] = "skipped", vals[n++] = ss->skipped != NULL;
    if (mfu > 0) {
        keys[n] = "mfu", vals[n++] = mfu;
        keys[n] = "peak_gflops", vals[n++] = s->o->run.peak_gflops;
    }
    for (int i = 0; i < ss->m.n; i++) keys[n] = ss->m.keys[i], vals[n++] = ss->m.values[i];
    jl_status st = l->log ? jl_metrics_log(l->log, s->i->name, l->step, n, keys, vals) : JL_OK;
    if (st != JL_OK) return st; /* rank 0's failure: the others learn it at the agreement after the step */
    jl_train_event ev = {.kind = ss->skipped ? JL_EV_SKIP : JL_EV_STEP, .step = l->step, .loss = ss->loss,
                         .grad_norm = ss->grad_norm, .lr = ss->lr, .tok_per_s = tps, .mfu = mfu, .val_loss = NAN,
                         .n = ss->m.n, .keys = ss->m.keys, .values = ss->m.values, .text = ss->skipped};
    emit(l, &ev);
    l->skips_in_a_row = ss->skipped ? l->skips_in_a_row + 1 : 0;
    if (l->skips_in_a_row >= JL_MAX_SKIPS_IN_A_ROW)
        return jl_fail(JL_ERR_RUNTIME, "%s for %d steps in a row (step %ld); lower the learning rate", ss->skipped,
                       JL_MAX_SKIPS_IN_A_ROW, l->step);
    return JL_OK;
}

static jl_status sample(loop *l) {
    char *text = NULL;
    jl_status st = writer() ? l->s->i->sample(l->s->self, &text) : JL_OK;
    if ((st = jl_dist_agree(st, NULL)) != JL_OK || !text) return st;
    jl_train_event ev = {.kind = JL_EV_SAMPLE, .step = l->step, .val_loss = NAN, .text = text};
    emit(l, &ev);
    free(text);
    return JL_OK;
}

static int every(long step, int n) { return n > 0 && step % n == 0; }

/* Steps until the end, stop-after or a stop request; evaluation, samples and checkpoints on their cadence. */
/* Under mpirun, every rank runs the same steps: a step's failure or a stop request anywhere is agreed on after the
 * step (jl_dist_agree), so all ranks stop at the same step and rank 0 writes its checkpoint. */
static jl_status steps(loop *l) {
    jl_stage *s = l->s;
    const jl_run_cfg *r = &s->o->run;
    const int alone = jl_dist_size() == 1;
    jl_status st = JL_OK;
    int interrupted = 0;
    while (st == JL_OK && l->step < r->steps) {
        if (alone && jl_train_stop_signal()) break; /* before any step of this invocation: nothing new to save */
        jl_stage_step ss = {0};
        double t0 = jl_now();
        double comm0, sent0, comm1, sent1, early0, landed0, early1, landed1;
        jl_dist_stats(&comm0, &sent0);
        jl_dist_overlap_stats(&early0, &landed0);
        if ((st = s->i->step(s->self, &ss)) == JL_OK) {
            if (ss.seconds <= 0) ss.seconds = jl_now() - t0;
            jl_dist_stats(&comm1, &sent1);
            if (comm1 > comm0) { /* under mpirun: the gradient all-reduce of this step, bus bandwidth per rank */
                jl_metric_add(&ss.m, "allreduce_ms", (comm1 - comm0) * 1e3);
                jl_metric_add(&ss.m, "allreduce_gbps", (sent1 - sent0) / (comm1 - comm0) / 1e9);
                jl_metric_add(&ss.m, "allreduce_mb", (sent1 - sent0) / 1e6); /* what this rank sent */
            }
            if (!alone) /* this rank's optimizer state (ZeRO-1: its share of the AdamW moments) */
                jl_metric_add(&ss.m, "adam_mb", (double)jl_trainer_state_bytes(s->what.t) / 1e6);
            jl_dist_overlap_stats(&early1, &landed1);
            if (landed1 > landed0) /* the share of the ring steps that landed during the backward pass */
                jl_metric_add(&ss.m, "allreduce_overlapped", (early1 - early0) / (landed1 - landed0));
            l->step++;
            s->steps_done++;
            s->seconds += ss.seconds;
            st = log_step(l, &ss);
        }
        interrupted = jl_train_stop_signal() != 0;
        if ((st = jl_dist_agree(st, &interrupted)) != JL_OK) break; /* one agreement per step: step, log, stop */
        int end = l->step == r->steps, stop = r->stop_after > 0 && s->steps_done >= r->stop_after;
        if (alone) interrupted = jl_train_stop_signal() != 0;
        if (s->i->evaluate && (every(l->step, r->eval_every) || (end && (s->eval_at_end || r->eval_every > 0))) &&
            (st = evaluate(l)) != JL_OK)
            break;
        if (s->i->sample && (every(l->step, r->sample_every) || (end && r->sample_every > 0)) &&
            (st = sample(l)) != JL_OK)
            break;
        if ((every(l->step, r->save_every) || end || stop || interrupted) && (st = save(l, l->ckpt_path, 0)) != JL_OK)
            break;
        if (stop || interrupted) break;
    }
    if (st == JL_OK && (jl_train_stop_signal() || interrupted) && l->step < r->steps)
        st = jl_fail(JL_ERR_RUNTIME, "interrupted by signal %d at step %ld; %s", jl_train_stop_signal(), l->step,
                     s->steps_done ? "checkpoint written: continue with --resume" : "no step finished in this run");
    return st;
}

/* Keeps the lines of a metrics file whose step is at most max_step (a resumed run rewrites the rest). */
static jl_status metrics_cut_back(const char *path, long max_step) {
    char *text;
    size_t len;
    if (access(path, F_OK) != 0) return JL_OK;
    jl_status st = jl_read_file(path, &text, &len);
    if (st != JL_OK) return st;
    char *out = malloc(len + 1), *w = out;
    if (!out) {
        free(text);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    for (char *line = text; line < text + len;) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        size_t n = nl ? (size_t)(nl - line) + 1 : (size_t)(text + len - line);
        json_object *j = json_tokener_parse(line), *v;
        int keep = j && json_object_object_get_ex(j, "step", &v) && json_object_get_int64(v) <= max_step && nl;
        json_object_put(j);
        if (keep) memcpy(w, line, n), w += n;
        line += n;
    }
    st = jl_write_file_atomic(path, out, (size_t)(w - out));
    free(out);
    free(text);
    return st;
}

jl_status jl_train_run(jl_stage *s, jl_event_fn on_event, void *user) {
    const jl_run_cfg *r = &s->o->run;
    loop l = {.s = s, .fn = on_event, .user = user};
    s->steps_done = 0;
    s->seconds = 0;
    if (!r->out_dir) return jl_fail(JL_ERR_ARG, "no output folder");
    if (r->steps < 1) return jl_fail(JL_ERR_ARG, "steps must be ≥ 1");
    snprintf(l.ckpt_path, sizeof l.ckpt_path, "%s/checkpoint.safetensors", r->out_dir);
    snprintf(l.metrics_path, sizeof l.metrics_path, "%s/metrics.jsonl", r->out_dir);
    jl_dir_lock lock = {.fd = -1};
    jl_status st = JL_OK;
    if (jl_dist_size() > 1 && !s->data_parallel)
        return jl_fail(JL_ERR_ARG, "%s does not split its work across ranks yet: run it without mpirun (or with -np 1)",
                       s->i->name);
    if (writer() && (st = jl_mkdir_p(r->out_dir)) == JL_OK) st = jl_dir_lock_take(r->out_dir, &lock);
    if ((st = jl_dist_agree(st, NULL)) != JL_OK) {
        jl_dir_lock_release(&lock);
        return st;
    }
    if (r->resume) st = restore(&l, r->resume); /* every rank reads the checkpoint (the same path on every host) */
    if (st == JL_OK && writer()) {
        st = r->resume ? metrics_cut_back(l.metrics_path, l.step) : JL_OK;
        if (st == JL_OK && !r->resume) unlink(l.metrics_path); /* a fresh run starts a fresh log */
        if (st == JL_OK) st = jl_metrics_open(l.metrics_path, &l.log);
    }
    st = jl_dist_agree(st, NULL);
    /* the run's products (steps, evaluations, samples) in its precision; the caller's setting comes back after */
    jl_precision was = jl_matmul_set_precision(r->precision == JL_PREC_BF16 ? JL_PREC_BF16 : JL_PREC_FP32);
    if (st == JL_OK && !r->resume && s->eval_at_start && s->i->evaluate) st = evaluate(&l);
    if (st == JL_OK) st = steps(&l);
    jl_matmul_set_precision(was);
    if (st == JL_OK && l.step == r->steps) st = save(&l, NULL, 1);
    jl_metrics_close(l.log);
    if (writer()) jl_dir_lock_release(&lock);
    return st;
}
