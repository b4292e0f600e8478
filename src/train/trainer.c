#include "train/trainer.h"
#include "core/kernels.h"
#include "core/timer.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void jl_trainer_refresh_frozen(jl_trainer *t) {
    jl_params_at(t->model, t->grads, &t->gview, t->gview.layers);
    /* A frozen tensor gets no gradient: point its slot at NULL so backward skips the work. */
    float **slots[] = {&t->gview.wte, &t->gview.wpe, &t->gview.lnf_w, &t->gview.lnf_b, &t->gview.lm_head};
    const jl_model *m = t->model;
    for (int i = 0; i < m->n_tensors; i++) {
        if (!m->tensors[i].frozen) continue;
        float *p = t->grads + m->tensors[i].offset;
        for (size_t s = 0; s < sizeof slots / sizeof slots[0]; s++)
            if (*slots[s] == p) *slots[s] = NULL;
        for (int l = 0; l < m->cfg.n_layer; l++) {
            float **lp = (float **)&t->gview.layers[l];
            for (size_t k = 0; k < sizeof(jl_layer_params) / sizeof(float *); k++)
                if (lp[k] == p) lp[k] = NULL;
        }
    }
}

jl_status jl_trainer_new(jl_model *m, const jl_trainer_opts *o, jl_trainer **out) {
    *out = NULL;
    if (o->accum < 1) return jl_fail(JL_ERR_ARG, "gradient accumulation steps must be ≥ 1 (got %d)", o->accum);
    jl_trainer *t = calloc(1, sizeof *t);
    if (!t) return jl_fail(JL_ERR_NOMEM, "out of memory");
    t->model = m;
    t->o = *o;
    jl_status st = jl_acts_new(&m->cfg, o->B, o->T, &t->acts);
    if (st != JL_OK) {
        free(t);
        return st;
    }
    size_t n = m->n_params;
    t->state = aligned_alloc(64, (3 * n * sizeof(float) + 63) / 64 * 64);
    t->gview.layers = calloc((size_t)m->cfg.n_layer, sizeof(jl_layer_params));
    t->tokens = malloc(sizeof(int32_t) * (size_t)o->B * (size_t)o->T);
    t->targets = malloc(sizeof(int32_t) * (size_t)o->B * (size_t)o->T);
    if (!t->state || !t->gview.layers || !t->tokens || !t->targets) {
        jl_trainer_free(t);
        return jl_fail(JL_ERR_NOMEM, "cannot allocate optimizer state for %zu parameters", n);
    }
    memset(t->state, 0, 3 * n * sizeof(float));
    t->grads = t->state;
    t->mom1 = t->state + n;
    t->mom2 = t->state + 2 * n;
    jl_trainer_refresh_frozen(t);
    *out = t;
    return JL_OK;
}

void jl_trainer_free(jl_trainer *t) {
    if (!t) return;
    jl_acts_free(&t->acts);
    free(t->state);
    free(t->gview.layers);
    free(t->tokens);
    free(t->targets);
    free(t);
}

static long count_targets(const int32_t *targets, long n) {
    long c = 0;
    for (long i = 0; i < n; i++) c += targets[i] >= 0;
    return c;
}

jl_status jl_trainer_step(jl_trainer *t, jl_batch_fn next, void *ctx, jl_step_stats *st) {
    double t0 = jl_now();
    jl_model *m = t->model;
    const int B = t->o.B, T = t->o.T, accum = t->o.accum;
    memset(st, 0, sizeof *st);
    memset(t->grads, 0, m->n_params * sizeof(float));
    double loss_sum_of_means = 0.0;
    int counted_batches = 0;
    for (int micro = 0; micro < accum; micro++) {
        jl_status s = next(ctx, t->tokens, t->targets, B, T);
        if (s != JL_OK) return s;
        long counted = count_targets(t->targets, (long)B * T);
        st->tokens += (long)B * T;
        if (counted == 0) continue; /* nothing to learn from (e.g. a fully masked SFT batch) */
        const float dscale = 1.0f / ((float)counted * accum);
        double loss;
        if (t->o.loss_hook) {
            jl_model_forward(m, &t->acts, t->tokens, NULL, B, T, 0.0f, NULL);
            loss = t->o.loss_hook(t->o.loss_ctx, t->tokens, t->targets, B, T, t->acts.logits, dscale);
        } else {
            long n_counted;
            loss = jl_model_forward(m, &t->acts, t->tokens, t->targets, B, T, dscale, &n_counted);
        }
        jl_model_backward(m, &t->acts, t->tokens, &t->gview, B, T);
        loss_sum_of_means += loss / (double)counted;
        counted_batches++;
        st->counted += counted;
    }
    st->loss = counted_batches ? loss_sum_of_means / counted_batches : NAN;
    st->grad_norm = jl_grad_norm(m, t->grads);
    st->lr = jl_lr_at(&t->o.opt, t->step);
    if (!isfinite(st->loss) || !isfinite(st->grad_norm)) {
        st->skipped = 1; /* reported by the caller; weights and moments stay as they were */
        t->skipped++;
    } else {
        if (t->o.opt.grad_clip > 0 && st->grad_norm > t->o.opt.grad_clip)
            jl_scale_inplace(t->grads, (float)(t->o.opt.grad_clip / st->grad_norm), m->n_params);
        jl_adamw_step(m, t->grads, t->mom1, t->mom2, &t->o.opt, st->lr, t->step + 1);
    }
    t->step++;
    st->seconds = jl_now() - t0;
    return JL_OK;
}

jl_status jl_trainer_eval(jl_trainer *t, jl_batch_fn next, void *ctx, int n_batches, double *mean_loss) {
    double sum = 0.0;
    long counted_total = 0;
    for (int i = 0; i < n_batches; i++) {
        jl_status s = next(ctx, t->tokens, t->targets, t->o.B, t->o.T);
        if (s != JL_OK) return s;
        long counted;
        sum += jl_model_forward(t->model, &t->acts, t->tokens, t->targets, t->o.B, t->o.T, 0.0f, &counted);
        counted_total += counted;
    }
    *mean_loss = counted_total ? sum / (double)counted_total : NAN;
    return JL_OK;
}
