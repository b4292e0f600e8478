#include "train/trainer.h"
#include "core/kernels.h"
#include "jielong/dist.h"
#include "core/timer.h"
#include "model/lora.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static size_t numel(const jl_tensor_info *t) { return (size_t)t->shape[0] * (size_t)(t->ndim == 2 ? t->shape[1] : 1); }

/* Gradient view for backward: a frozen tensor's slot is NULL so backward skips its gradient. */
static void build_grad_view(jl_trainer *t) {
    const jl_model *m = t->model;
    jl_layer_params *layers = t->gview.layers;
    if (!t->grads) { /* nothing of the model trains: every slot NULL */
        memset(layers, 0, sizeof *layers * (size_t)m->cfg.n_layer);
        memset(&t->gview, 0, sizeof t->gview);
        t->gview.layers = layers;
        return;
    }
    jl_params_at(m, t->grads, &t->gview, layers);
    float **slots[] = {&t->gview.wte, &t->gview.wpe, &t->gview.lnf_w, &t->gview.lnf_b, &t->gview.lm_head};
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

/* Offsets of the layers' first tensors, and of the end of the last layer (the layers lie back to back, after the
 * embeddings and before the final norm and the head). */
static size_t *layer_bounds(const jl_model *m) {
    const int L = m->cfg.n_layer;
    size_t *lo = malloc(sizeof *lo * ((size_t)L + 1));
    if (!lo) return NULL;
    for (int l = 0; l <= L; l++) lo[l] = m->n_params;
    for (int i = 0; i < m->n_tensors; i++) {
        const jl_tensor_info *ti = &m->tensors[i];
        if (ti->layer < 0) continue;
        if (ti->offset < lo[ti->layer]) lo[ti->layer] = ti->offset;
        if (ti->layer == L - 1 && (lo[L] == m->n_params || ti->offset + numel(ti) > lo[L])) lo[L] = ti->offset + numel(ti);
    }
    return lo;
}

/* Unfrozen model tensors (adjacent ones merged into one group), then the extra blocks. */
static jl_status build_groups(jl_trainer *t, const jl_trainer_opts *o) {
    jl_model *m = t->model;
    t->groups = calloc((size_t)m->n_tensors + (size_t)o->n_extra + 1, sizeof *t->groups);
    if (!t->groups) return jl_fail(JL_ERR_NOMEM, "out of memory");
    int n = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const jl_tensor_info *ti = &m->tensors[i];
        if (ti->frozen) continue;
        jl_param_group *prev = n ? &t->groups[n - 1] : NULL;
        if (prev && prev->decay == ti->decay && prev->param + prev->n == m->params + ti->offset &&
            prev->grad + prev->n == t->grads + ti->offset) {
            prev->n += numel(ti);
            continue;
        }
        t->groups[n++] = (jl_param_group){m->params + ti->offset, t->grads + ti->offset, numel(ti), ti->decay};
    }
    for (int i = 0; i < o->n_extra; i++) {
        if (!o->extra[i].param || !o->extra[i].grad)
            return jl_fail(JL_ERR_ARG, "trainable block %d has no parameters or gradient buffer", i);
        t->groups[n++] = o->extra[i];
    }
    t->n_groups = n;
    t->n_state = 0;
    for (int i = 0; i < n; i++) t->n_state += t->groups[i].n;
    if (t->n_state == 0) return jl_fail(JL_ERR_ARG, "nothing to train: every parameter is frozen");
    return JL_OK;
}

/* ZeRO-1: the floats of the groups this rank updates (jl_dist_shard of each bucket of each group). */
static size_t owned_floats(const jl_trainer *t) {
    size_t n = 0;
    for (int i = 0; i < t->n_groups; i++)
        for (size_t b = 0; b < t->groups[i].n; b += JL_DIST_BUCKET) {
            size_t lo, len;
            jl_dist_shard(t->groups[i].n, b, &lo, &len);
            n += len;
        }
    return n;
}

jl_status jl_trainer_new(jl_model *m, const jl_trainer_opts *o, jl_trainer **out) {
    *out = NULL;
    if (jl_model_require_params(m, "training") != JL_OK) return JL_ERR_ARG;
    if (o->accum < 1) return jl_fail(JL_ERR_ARG, "gradient accumulation steps must be ≥ 1 (got %d)", o->accum);
    jl_trainer *t = calloc(1, sizeof *t);
    if (!t) return jl_fail(JL_ERR_NOMEM, "out of memory");
    t->model = m;
    t->o = *o;
    t->o.extra = NULL; /* copied into groups */
    t->ov_scale = 1.0f;
    jl_rng_seed(&t->rng, o->seed);
    jl_status st = jl_acts_new(&m->cfg, o->B, o->T, &t->acts);
    if (st != JL_OK) {
        free(t);
        return st;
    }
    int model_trains = 0;
    for (int i = 0; i < m->n_tensors; i++) model_trains |= !m->tensors[i].frozen;
    if (model_trains) t->grads = aligned_alloc(64, (m->n_params * sizeof(float) + 63) / 64 * 64);
    t->gview.layers = calloc((size_t)m->cfg.n_layer, sizeof(jl_layer_params));
    t->tokens = malloc(sizeof(int32_t) * (size_t)o->B * (size_t)o->T);
    t->targets = malloc(sizeof(int32_t) * (size_t)o->B * (size_t)o->T);
    const size_t ranks = (size_t)jl_dist_size();
    t->micro = malloc(sizeof(double) * 2 * (size_t)o->accum * (ranks + 1)); /* every rank's, then a copy of own */
    int dist_ok = 1;
    if (ranks > 1) {
        t->skip_tokens = malloc(sizeof(int32_t) * (size_t)o->B * (size_t)o->T);
        t->skip_targets = malloc(sizeof(int32_t) * (size_t)o->B * (size_t)o->T);
        dist_ok = t->skip_tokens && t->skip_targets;
    }
    if ((model_trains && !t->grads) || !t->gview.layers || !t->tokens || !t->targets || !t->micro || !dist_ok) {
        jl_trainer_free(t);
        return jl_fail(JL_ERR_NOMEM, "cannot allocate gradients for %zu parameters", m->n_params);
    }
    if ((st = build_groups(t, o)) != JL_OK) {
        jl_trainer_free(t);
        return st;
    }
    t->zero = o->opt.zero && ranks > 1;
    t->n_own = t->zero ? owned_floats(t) : t->n_state;
    t->state = aligned_alloc(64, (2 * t->n_own * sizeof(float) + 63) / 64 * 64);
    if (!t->state) {
        size_t n_own = t->n_own;
        jl_trainer_free(t);
        return jl_fail(JL_ERR_NOMEM, "cannot allocate optimizer state for %zu parameters", n_own);
    }
    memset(t->state, 0, 2 * t->n_own * sizeof(float));
    t->mom1 = t->state;
    t->mom2 = t->state + t->n_own;
    build_grad_view(t);
    if (ranks > 1 && !(t->layer_lo = layer_bounds(m))) {
        jl_trainer_free(t);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    size_t largest = 0;
    for (int i = 0; i < t->n_groups; i++) largest = t->groups[i].n > largest ? t->groups[i].n : largest;
    if ((st = jl_dist_reserve(largest)) != JL_OK) {
        jl_trainer_free(t);
        return st;
    }
    *out = t;
    return JL_OK;
}

void jl_trainer_free(jl_trainer *t) {
    if (!t) return;
    jl_acts_free(&t->acts);
    free(t->grads);
    free(t->state);
    free(t->groups);
    free(t->gview.layers);
    free(t->tokens);
    free(t->targets);
    free(t->w16);
    free(t->skip_tokens);
    free(t->skip_targets);
    free(t->micro);
    free(t->layer_lo);
    free(t);
}

size_t jl_trainer_state_bytes(const jl_trainer *t) { return 2 * t->n_own * sizeof(float); }

/* ZeRO-1: copies between this rank's moment chunks (own, n_own) and whole moments (all, n_state in group order):
 * to_all = 1 own → all, 0 all → own. */
static void shard_copy(const jl_trainer *t, float *own, float *all, int to_all) {
    size_t at = 0, off = 0;
    for (int i = 0; i < t->n_groups; i++) {
        const size_t n = t->groups[i].n;
        for (size_t b = 0; b < n; b += JL_DIST_BUCKET) {
            size_t lo, len;
            jl_dist_shard(n, b, &lo, &len);
            if (to_all) memcpy(all + at + lo, own + off, len * sizeof(float));
            else memcpy(own + off, all + at + lo, len * sizeof(float));
            off += len;
        }
        at += n;
    }
}

jl_status jl_trainer_moments_open(jl_trainer *t, int gather, jl_moments *out) {
    *out = (jl_moments){t->mom1, t->mom2, 0};
    if (!t->zero) return JL_OK;
    out->m = calloc(2 * t->n_state + 1, sizeof(float)); /* zeros: the other ranks' chunks before the gather */
    if (!out->m) return jl_fail(JL_ERR_NOMEM, "out of memory (the whole Adam moments: %zu floats)", 2 * t->n_state);
    out->v = out->m + t->n_state;
    out->made = 1;
    if (!gather) return JL_OK;
    shard_copy(t, t->mom1, out->m, 1);
    shard_copy(t, t->mom2, out->v, 1);
    jl_status st = JL_OK;
    for (int k = 0; k < 2 && st == JL_OK; k++) {
        float *all = k ? out->v : out->m;
        for (int i = 0; i < t->n_groups && st == JL_OK; i++) {
            st = jl_dist_spread_floats(all, t->groups[i].n);
            all += t->groups[i].n;
        }
    }
    if (st != JL_OK) jl_trainer_moments_close(t, out, 0);
    return st;
}

void jl_trainer_moments_close(jl_trainer *t, jl_moments *mo, int keep) {
    if (mo->made && keep) {
        shard_copy(t, t->mom1, mo->m, 0);
        shard_copy(t, t->mom2, mo->v, 0);
    }
    if (mo->made) free(mo->m);
    *mo = (jl_moments){0};
}

size_t jl_trainer_grad_bytes(const jl_trainer *t) {
    size_t n = t->grads ? t->model->n_params : 0;
    for (int i = 0; i < t->n_groups; i++)
        if (!t->grads || t->groups[i].grad < t->grads || t->groups[i].grad >= t->grads + t->model->n_params)
            n += t->groups[i].n;
    return n * sizeof(float);
}

static long count_targets(const int32_t *targets, long n) {
    long c = 0;
    for (long i = 0; i < n; i++) c += targets[i] >= 0;
    return c;
}

void jl_trainer_zero_grads(jl_trainer *t) {
    if (t->grads) memset(t->grads, 0, t->model->n_params * sizeof(float));
    for (int i = 0; i < t->n_groups; i++)
        if (!t->grads || t->groups[i].grad < t->grads || t->groups[i].grad >= t->grads + t->model->n_params)
            memset(t->groups[i].grad, 0, t->groups[i].n * sizeof(float));
}

double jl_trainer_grad_norm(const jl_trainer *t) {
    double sumsq = 0.0;
    for (int i = 0; i < t->n_groups; i++) sumsq += jl_sumsq(t->groups[i].grad, t->groups[i].n);
    return sqrt(sumsq);
}

/* AdamW over the groups on gscale · gradient. ZeRO-1: over this rank's chunk of each bucket (AdamW is
 * elementwise, so a chunk's update has the bits of the whole update's), then every rank's chunks to every rank. */
static jl_status adamw_scaled(jl_trainer *t, float lr, float gscale) {
    const jl_optim_opts *o = &t->o.opt;
    size_t off = 0;
    for (int i = 0; i < t->n_groups; i++) {
        const jl_param_group *g = &t->groups[i];
        const float decay = g->decay ? o->weight_decay : 0.0f;
        for (size_t b = 0; b < g->n; b += t->zero ? JL_DIST_BUCKET : g->n) {
            size_t lo = 0, len = g->n;
            if (t->zero) jl_dist_shard(g->n, b, &lo, &len);
            jl_adamw_update_scaled(g->param + lo, g->grad + lo, gscale, t->mom1 + off, t->mom2 + off, len, lr,
                                   o->beta1, o->beta2, o->eps, decay, (int)(t->step + 1));
            off += len;
        }
    }
    jl_status st = JL_OK;
    for (int i = 0; i < t->n_groups && t->zero && st == JL_OK; i++)
        st = jl_dist_spread_floats(t->groups[i].param, t->groups[i].n);
    return st;
}

jl_status jl_trainer_adamw(jl_trainer *t, float lr) { return adamw_scaled(t, lr, 1.0f); }

/* In bf16, the step's products read one bf16 copy of the weights made here (allocated at the first bf16 step)
 * instead of converting each weight at each product (forward and backward). No copy if it cannot be allocated:
 * the products then convert as they go, with the same result. */
static void bf16_weights_begin(jl_trainer *t) {
    const jl_model *m = t->model;
    if (jl_matmul_precision() != JL_PREC_BF16) return;
    if (!t->w16) t->w16 = aligned_alloc(64, (m->n_backed * sizeof(uint16_t) + 63) / 64 * 64);
    if (!t->w16) return;
    jl_to_bf16(m->params, t->w16, m->n_backed);
    jl_matmul_set_bf16_weights(m->params, m->n_backed, t->w16);
}

static void bf16_weights_end(void) { jl_matmul_set_bf16_weights(NULL, 0, NULL); }

jl_status jl_trainer_sum_grads(jl_trainer *t) {
    jl_status st = JL_OK;
    for (int i = 0; i < t->n_groups && st == JL_OK; i++) st = jl_dist_sum_floats(t->groups[i].grad, t->groups[i].n);
    return st;
}

/* Queues x[0..n) for the overlapped all-reduce, multiplied by t->ov_scale first. */
static jl_status queue_bucket(jl_trainer *t, float *x, size_t n) {
    if (t->ov_scale != 1.0f) jl_scale_inplace(x, t->ov_scale, n);
    return jl_dist_overlap_add(x, n);
}

/* Queues for the overlapped all-reduce the model's gradient buckets (jl_dist_overlap_add's, from the top down)
 * that lie at or above `from` and advances the sums; from NULL: every bucket left, then the extra blocks'. The
 * order depends only on the layout, so every rank queues the same buckets in the same order. */
static jl_status queue_grads_from(jl_trainer *t, const float *from) {
    jl_status st = JL_OK;
    while (t->ov_group >= 0 && st == JL_OK) {
        const jl_param_group *g = &t->groups[t->ov_group];
        while (t->ov_left > 0 && st == JL_OK) {
            size_t lo = (t->ov_left - 1) / JL_DIST_BUCKET * JL_DIST_BUCKET;
            if (from && g->grad + lo < from) break;
            st = queue_bucket(t, g->grad + lo, t->ov_left - lo);
            t->ov_left = lo;
        }
        if (t->ov_left > 0) break;
        if (--t->ov_group >= 0) t->ov_left = t->groups[t->ov_group].n;
    }
    if (!from)
        for (int i = t->ov_model; i < t->n_groups && st == JL_OK; i++)
            st = queue_bucket(t, t->groups[i].grad, t->groups[i].n);
    return st == JL_OK ? jl_dist_overlap_poll() : st;
}

/* Starts the overlapped all-reduce of a step (before the last micro-batch's backward); scale: t->ov_scale. */
static void overlap_arm(jl_trainer *t, float scale) {
    int n = 0; /* the model's groups come first (build_groups) */
    while (n < t->n_groups && t->grads && t->groups[n].grad >= t->grads && t->groups[n].grad < t->grads + t->model->n_params)
        n++;
    t->ov_armed = 1;
    t->ov_scale = scale;
    t->ov_status = JL_OK;
    t->ov_model = n;
    t->ov_group = n - 1;
    t->ov_left = n ? t->groups[n - 1].n : 0;
}

/* The backward's hook (jl_acts.grads_done): layer l's gradients (and all above them) are complete. */
static void grads_done(void *ctx, int layer) {
    jl_trainer *t = ctx;
    if (t->ov_status == JL_OK) t->ov_status = queue_grads_from(t, t->grads + t->layer_lo[layer]);
}

/* Ends the overlapped all-reduce: queues what is left (every bucket, if this rank's backward never ran) and
 * waits for every sum. Every rank takes part, even one whose reads failed (its gradient is not used: the
 * agreement after it stops every rank), so no rank waits for a missing message. */
static jl_status overlap_finish(jl_trainer *t) {
    t->acts.grads_done = NULL;
    if (!t->ov_armed) overlap_arm(t, t->ov_scale);
    jl_status q = t->ov_status == JL_OK ? queue_grads_from(t, NULL) : t->ov_status;
    jl_status f = jl_dist_overlap_finish();
    t->ov_armed = 0;
    return q != JL_OK ? q : f;
}

void jl_trainer_sum_begin(jl_trainer *t, float scale) {
    t->ov_scale = scale;
    if (!jl_dist_overlap()) return;
    overlap_arm(t, scale);
    if (t->ov_model) { /* the layers' buckets are summed as the backward pass completes them */
        t->acts.grads_done = grads_done;
        t->acts.grads_done_ctx = t;
    }
}

jl_status jl_trainer_sum_end(jl_trainer *t) {
    t->acts.grads_done = NULL;
    if (jl_dist_size() == 1) return JL_OK;
    if (jl_dist_overlap()) return overlap_finish(t);
    if (t->ov_scale != 1.0f)
        for (int i = 0; i < t->n_groups; i++) jl_scale_inplace(t->groups[i].grad, t->ov_scale, t->groups[i].n);
    return jl_trainer_sum_grads(t);
}

/* Reads n micro-batches that other ranks compute (their readers' positions and RNG draws stay in step). */
static jl_status skip_batches(jl_trainer *t, jl_batch_fn next, void *ctx, int n) {
    jl_status s = JL_OK;
    for (int i = 0; i < n && s == JL_OK; i++) s = next(ctx, t->skip_tokens, t->skip_targets, t->o.B, t->o.T);
    return s;
}

/* This rank's micro-batches of a step: t->micro[2·m] = counted targets, [2·m+1] = mean loss. */
static jl_status micro_batches(jl_trainer *t, jl_batch_fn next, void *ctx, jl_step_stats *st) {
    jl_model *m = t->model;
    const int B = t->o.B, T = t->o.T, accum = t->o.accum, N = jl_dist_size(), rank = jl_dist_rank();
    for (int micro = 0; micro < accum; micro++) {
        jl_status s = skip_batches(t, next, ctx, (micro ? N - 1 - rank : 0) + rank);
        if (s == JL_OK) s = next(ctx, t->tokens, t->targets, B, T);
        if (s == JL_OK && N > 1) s = jl_dist_injected_fault(t->step);
        if (s != JL_OK) return s;
        const int arm = micro == accum - 1 && jl_dist_overlap();
        if (arm) overlap_arm(t, 1.0f);
        long counted = count_targets(t->targets, (long)B * T);
        st->tokens += (long)B * T;
        uint64_t dropout_seed = 0; /* drawn for every global micro-batch so resume stays in step */
        for (int r = 0; r < N; r++) {
            uint64_t d = jl_rng_u64(&t->rng);
            if (r == rank) dropout_seed = d;
        }
        t->micro[2 * micro] = (double)counted;
        t->micro[2 * micro + 1] = 0;
        if (counted == 0) continue; /* nothing to learn from (e.g. a fully masked SFT batch) */
        if (m->lora) jl_lora_dropout_begin(m->lora, dropout_seed);
        const float dscale = 1.0f / ((float)counted * (float)(accum * N));
        double loss;
        if (t->o.loss_hook) {
            jl_model_forward(m, &t->acts, t->tokens, NULL, B, T, 0.0f, NULL);
            loss = t->o.loss_hook(t->o.loss_ctx, t->tokens, t->targets, B, T, t->acts.logits, dscale);
        } else {
            long n_counted;
            loss = jl_model_forward(m, &t->acts, t->tokens, t->targets, B, T, dscale, &n_counted);
        }
        if (arm && t->ov_model) { /* the layers' buckets are summed as the backward pass completes them */
            t->acts.grads_done = grads_done;
            t->acts.grads_done_ctx = t;
        }
        jl_model_backward(m, &t->acts, t->tokens, &t->gview, B, T);
        t->acts.grads_done = NULL;
        if (m->lora) jl_lora_dropout_end(m->lora);
        t->micro[2 * micro + 1] = loss / (double)counted;
    }
    return skip_batches(t, next, ctx, N - 1 - rank);
}

/* Under mpirun: agreement (a rank that failed stops every rank), the micro-batch figures of every rank in the
 * global order, the gradients summed. */
static jl_status reduce_step(jl_trainer *t, jl_status s, jl_step_stats *st) {
    const int N = jl_dist_size();
    size_t block = 2 * (size_t)t->o.accum;
    double *own = t->micro + block * (size_t)N; /* the gather fills t->micro rank-major: rank r's at r·block */
    memcpy(own, t->micro, sizeof(double) * block);
    const int armed = jl_dist_overlap();
    jl_status q = armed ? overlap_finish(t) : JL_OK;
    if (q != JL_OK) return q;
    if ((s = jl_dist_agree_with(s, NULL, own, t->micro, sizeof(double) * block)) != JL_OK) return s;
    st->tokens *= N; /* every rank's micro-batches have the same shape */
    return armed ? JL_OK : jl_trainer_sum_grads(t);
}

jl_status jl_trainer_step(jl_trainer *t, jl_batch_fn next, void *ctx, jl_step_stats *st) {
    double t0 = jl_now();
    const int accum = t->o.accum, N = jl_dist_size();
    memset(st, 0, sizeof *st);
    jl_trainer_zero_grads(t);
    t->ov_scale = 1.0f;
    bf16_weights_begin(t);
    jl_status s = micro_batches(t, next, ctx, st);
    bf16_weights_end();
    if (N > 1) s = reduce_step(t, s, st);
    if (s != JL_OK) return s;
    double loss_sum_of_means = 0.0;
    int counted_batches = 0;
    for (int micro = 0; micro < accum; micro++)
        for (int r = 0; r < N; r++) {
            const double *b = t->micro + 2 * ((size_t)r * (size_t)accum + (size_t)micro);
            if (b[0] == 0) continue;
            loss_sum_of_means += b[1];
            counted_batches++;
            st->counted += (long)b[0];
        }
    st->loss = counted_batches ? loss_sum_of_means / counted_batches : NAN;
    st->grad_norm = jl_trainer_grad_norm(t);
    st->lr = jl_lr_at(&t->o.opt, t->step);
    if (!isfinite(st->loss) || !isfinite(st->grad_norm)) {
        st->skipped = 1; /* reported by the caller; weights and moments stay as they were */
        t->skipped++;
    } else {
        float gscale = 1.0f; /* clipping, applied as AdamW reads the gradient */
        if (t->o.opt.grad_clip > 0 && st->grad_norm > t->o.opt.grad_clip)
            gscale = (float)(t->o.opt.grad_clip / st->grad_norm);
        if ((s = adamw_scaled(t, st->lr, gscale)) != JL_OK) return s;
    }
    t->step++;
    st->seconds = jl_now() - t0;
    return JL_OK;
}

jl_status jl_trainer_eval(jl_trainer *t, jl_batch_fn next, void *ctx, int n_batches, double *mean_loss) {
    const int N = jl_dist_size(), rank = jl_dist_rank();
    double sum = 0.0;
    long counted_total = 0;
    jl_status s = JL_OK;
    for (int i = 0; i < n_batches && s == JL_OK; i++) {
        if (i % N != rank) {
            s = skip_batches(t, next, ctx, 1);
            continue;
        }
        if ((s = next(ctx, t->tokens, t->targets, t->o.B, t->o.T)) != JL_OK) break;
        long counted;
        sum += jl_model_forward(t->model, &t->acts, t->tokens, t->targets, t->o.B, t->o.T, 0.0f, &counted);
        counted_total += counted;
    }
    if (N > 1) { /* the ranks' sums, added in rank order */
        double mine[2] = {sum, (double)counted_total}, *all = malloc(sizeof mine * (size_t)N);
        if (!all) return jl_fail(JL_ERR_NOMEM, "out of memory");
        if ((s = jl_dist_agree_with(s, NULL, mine, all, sizeof mine)) == JL_OK) {
            sum = 0;
            counted_total = 0;
            for (int r = 0; r < N; r++) sum += all[2 * r], counted_total += (long)all[2 * r + 1];
        }
        free(all);
    }
    if (s != JL_OK) return s;
    *mean_loss = counted_total ? sum / (double)counted_total : NAN;
    return JL_OK;
}
