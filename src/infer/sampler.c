/* Sampling a token from logits: penalties, temperature, truncation (top-k, top-p, min-p), a seeded draw,
 * and the report behind --show-probs. */
#include "infer/sampler.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- pure steps */

void jl_penalize(float *logits, int V, const int32_t *history, int n, float repetition, float presence,
                 float frequency, int *counts) {
    if (repetition == 1.0f && presence == 0.0f && frequency == 0.0f) return;
    for (int i = 0; i < n; i++)
        if (history[i] >= 0 && history[i] < V) counts[history[i]]++;
    for (int i = 0; i < n; i++) {
        int32_t t = history[i];
        if (t < 0 || t >= V || counts[t] == 0) continue; /* each seen token once */
        float *l = &logits[t];
        *l = *l > 0 ? *l / repetition : *l * repetition;
        *l -= presence + frequency * (float)counts[t];
        counts[t] = 0;
    }
}

int jl_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* a ranks before b: larger logit, then smaller id (a total order, so results never depend on the sort). */
static inline int before(const jl_cand *a, const jl_cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cmp_cand(const void *pa, const void *pb) {
    const jl_cand *a = pa, *b = pb;
    return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

static inline void swap_cand(jl_cand *a, jl_cand *b) {
    jl_cand t = *a;
    *a = *b;
    *b = t;
}

/* Quickselect (median-of-three pivot): afterwards c[0..k) are the k first in rank order, unsorted. */
static void select_top(jl_cand *c, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (before(&c[mid], &c[lo])) swap_cand(&c[mid], &c[lo]);
        if (before(&c[hi], &c[lo])) swap_cand(&c[hi], &c[lo]);
        if (before(&c[hi], &c[mid])) swap_cand(&c[hi], &c[mid]);
        jl_cand pivot = c[mid];
        int i = lo, j = hi;
        while (i <= j) {
            while (before(&c[i], &pivot)) i++;
            while (before(&pivot, &c[j])) j--;
            if (i <= j) swap_cand(&c[i++], &c[j--]);
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

void jl_cand_top(jl_cand *c, int n, int k) {
    if (k > n) k = n;
    if (k <= 0) return;
    if (k < n) select_top(c, n, k);
    qsort(c, (size_t)k, sizeof *c, cmp_cand);
}

void jl_cand_softmax(jl_cand *c, int n) {
    float maxv = -INFINITY;
    for (int i = 0; i < n; i++) maxv = c[i].logit > maxv ? c[i].logit : maxv;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        c[i].p = expf(c[i].logit - maxv);
        sum += c[i].p;
    }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) c[i].p *= inv;
}

/* Length of the prefix of sorted c[0..m) whose probability reaches top_p, or 0 if it does not. */
static int nucleus_in(const jl_cand *c, int m, float top_p) {
    double cum = 0.0;
    for (int i = 0; i < m; i++) {
        cum += c[i].p;
        if (cum >= top_p) return i + 1;
    }
    return 0;
}

int jl_cand_top_p(jl_cand *c, int n, float top_p) {
    if (top_p >= 1.0f) return n;
    /* the nucleus is usually small: sort a short prefix first, everything only when it falls short */
    int first = n < 256 ? n : 256;
    jl_cand_top(c, n, first);
    int m = nucleus_in(c, first, top_p);
    if (m) return m;
    jl_cand_top(c, n, n);
    m = nucleus_in(c, n, top_p);
    return m ? m : n; /* rounding: the whole set sums to just under top_p */
}

int jl_cand_min_p(jl_cand *c, int n, float min_p) {
    if (min_p <= 0.0f) return n;
    float maxp = 0.0f;
    for (int i = 0; i < n; i++) maxp = c[i].p > maxp ? c[i].p : maxp;
    float cut = min_p * maxp;
    int kept = 0;
    for (int i = 0; i < n; i++)
        if (c[i].p >= cut) c[kept++] = c[i];
    return kept;
}

void jl_cand_normalize(jl_cand *c, int n) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += c[i].p;
    if (sum <= 0.0) return;
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) c[i].p *= inv;
}

int jl_cand_draw(const jl_cand *c, int n, float u) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += c[i].p;
    double target = (double)u * sum, cum = 0.0;
    for (int i = 0; i < n; i++) {
        cum += c[i].p;
        if (target < cum) return i;
    }
    return n - 1;
}

/* ---------------------------------------------------------------- the sampler */

struct jl_sampler {
    jl_sampler_params p;
    jl_rng rng;
    int V;
    float *logits, *p_sample; /* (V) */
    int *counts;              /* (V) zeros */
    jl_cand *cand, *model;    /* (V) */
};

void jl_sampler_defaults(jl_sampler_params *p) {
    *p = (jl_sampler_params){.temperature = 0.8f, .top_k = 0, .top_p = 0.95f, .min_p = 0.0f,
                             .repetition_penalty = 1.0f, .penalty_last_n = 64, .seed = 1337};
}

jl_status jl_sampler_params_check(const jl_sampler_params *p) {
    if (!(p->temperature >= 0.0f) || !isfinite(p->temperature))
        return jl_fail(JL_ERR_ARG, "temperature %g: must be ≥ 0 (0 = greedy)", p->temperature);
    if (p->top_k < 0) return jl_fail(JL_ERR_ARG, "top-k %d: must be ≥ 0 (0 = off)", p->top_k);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return jl_fail(JL_ERR_ARG, "top-p %g: must be in (0, 1] (1 = off)", p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p < 1.0f))
        return jl_fail(JL_ERR_ARG, "min-p %g: must be in [0, 1) (0 = off)", p->min_p);
    if (!(p->repetition_penalty > 0.0f) || !isfinite(p->repetition_penalty))
        return jl_fail(JL_ERR_ARG, "repetition penalty %g: must be > 0 (1 = off)", p->repetition_penalty);
    if (!isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty))
        return jl_fail(JL_ERR_ARG, "presence/frequency penalty must be finite");
    if (p->penalty_last_n < 0) return jl_fail(JL_ERR_ARG, "penalty-last-n %d: must be ≥ 0", p->penalty_last_n);
    return JL_OK;
}

jl_status jl_sampler_new(const jl_sampler_params *p, int vocab_size, jl_sampler **out) {
    *out = NULL;
    jl_status st = jl_sampler_params_check(p);
    if (st != JL_OK) return st;
    if (vocab_size < 1) return jl_fail(JL_ERR_ARG, "sampler: vocabulary size %d", vocab_size);
    jl_sampler *s = calloc(1, sizeof *s);
    if (!s) return jl_fail(JL_ERR_NOMEM, "out of memory");
    s->V = vocab_size;
    s->logits = malloc(sizeof(float) * (size_t)vocab_size);
    s->p_sample = malloc(sizeof(float) * (size_t)vocab_size);
    s->counts = calloc((size_t)vocab_size, sizeof(int));
    s->cand = malloc(sizeof(jl_cand) * (size_t)vocab_size);
    s->model = malloc(sizeof(jl_cand) * (size_t)vocab_size);
    if (!s->logits || !s->p_sample || !s->counts || !s->cand || !s->model) {
        jl_sampler_free(s);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    s->p = *p;
    jl_rng_seed(&s->rng, p->seed);
    *out = s;
    return JL_OK;
}

void jl_sampler_free(jl_sampler *s) {
    if (!s) return;
    free(s->logits);
    free(s->p_sample);
    free(s->counts);
    free(s->cand);
    free(s->model);
    free(s);
}

jl_status jl_sampler_set_params(jl_sampler *s, const jl_sampler_params *p) {
    jl_status st = jl_sampler_params_check(p);
    if (st != JL_OK) return st;
    if (p->seed != s->p.seed) jl_rng_seed(&s->rng, p->seed);
    s->p = *p;
    return JL_OK;
}

const jl_sampler_params *jl_sampler_get_params(const jl_sampler *s) { return &s->p; }

/* The top-n tokens of the model distribution (temperature 1, after penalties) with their sampling probability. */
static void fill_report(jl_sampler *s, int32_t chosen, int n_kept, jl_sample_report *r, int n_report) {
    const int V = s->V;
    for (int i = 0; i < V; i++) s->model[i] = (jl_cand){i, s->logits[i], 0.0f};
    jl_cand_softmax(s->model, V);
    float p_chosen = s->model[chosen].p;
    if (n_report > JL_REPORT_MAX) n_report = JL_REPORT_MAX;
    if (n_report > V) n_report = V;
    jl_cand_top(s->model, V, n_report);
    r->n_top = n_report;
    for (int i = 0; i < n_report; i++)
        r->top[i] = (jl_token_prob){s->model[i].id, s->model[i].p, s->p_sample[s->model[i].id]};
    r->chosen = (jl_token_prob){chosen, p_chosen, s->p_sample[chosen]};
    r->n_kept = n_kept;
}

/* -1 and an error naming the first bad logit when one is NaN or +Inf, or when none is finite (every token
 * excluded): a broken model must not yield a token id (all-NaN logits used to leave min-p with no candidate). */
static int32_t check_logits(const float *logits, int V) {
    int finite = 0;
    for (int i = 0; i < V; i++) {
        if (isnan(logits[i]) || logits[i] == INFINITY) {
            jl_fail(JL_ERR_RUNTIME, "sampler: logit of token %d is %g: the model's output is not finite "
                                    "(NaN/Inf in its weights?)", i, (double)logits[i]);
            return -1;
        }
        finite += logits[i] != -INFINITY;
    }
    if (finite) return 0;
    jl_fail(JL_ERR_RUNTIME, "sampler: every logit is -inf: no token can be drawn");
    return -1;
}

int32_t jl_sampler_sample(jl_sampler *s, const float *logits, const int32_t *history, int n_history,
                          jl_sample_report *report, int n_report) {
    const jl_sampler_params *p = &s->p;
    const int V = s->V;
    if (check_logits(logits, V) < 0) return -1;
    memcpy(s->logits, logits, sizeof(float) * (size_t)V);
    if (p->penalty_last_n > 0 && n_history > p->penalty_last_n) {
        history += n_history - p->penalty_last_n;
        n_history = p->penalty_last_n;
    }
    jl_penalize(s->logits, V, history, n_history, p->repetition_penalty, p->presence_penalty,
                p->frequency_penalty, s->counts);
    int32_t chosen;
    int n = 1;
    if (p->temperature == 0.0f) {
        chosen = jl_argmax(s->logits, V);
        if (report) {
            memset(s->p_sample, 0, sizeof(float) * (size_t)V);
            s->p_sample[chosen] = 1.0f;
        }
    } else {
        const float inv_t = 1.0f / p->temperature;
        for (int i = 0; i < V; i++) s->cand[i] = (jl_cand){i, s->logits[i] * inv_t, 0.0f};
        n = V;
        if (p->top_k > 0 && p->top_k < V) {
            jl_cand_top(s->cand, V, p->top_k);
            n = p->top_k;
        }
        jl_cand_softmax(s->cand, n);
        n = jl_cand_top_p(s->cand, n, p->top_p);
        n = jl_cand_min_p(s->cand, n, p->min_p);
        jl_cand_normalize(s->cand, n);
        int i = n > 0 ? jl_cand_draw(s->cand, n, jl_rng_uniform(&s->rng)) : -1;
        if (i < 0) {
            jl_fail(JL_ERR_RUNTIME, "sampler: no candidate left after truncation");
            return -1;
        }
        chosen = s->cand[i].id;
        if (report) {
            memset(s->p_sample, 0, sizeof(float) * (size_t)V);
            for (int j = 0; j < n; j++) s->p_sample[s->cand[j].id] = s->cand[j].p;
        }
    }
    if (report) fill_report(s, chosen, n, report, n_report);
    return chosen;
}
