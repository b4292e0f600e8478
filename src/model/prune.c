/* Magnitude pruning (include/jielong/prune.h). Each group (all selected weights, one tensor, or one row)
 * loses exactly k = round(sparsity · n) weights: a quickselect finds the k-th smallest magnitude, every
 * weight below it is zeroed, then weights equal to it (in position order) until the count is k. */
#include "jielong/prune.h"
#include "model/model.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const mode_names[] = {"global", "per-tensor", "per-row"};
static const char *const kind_names[JL_PK_COUNT] = {"attn_qkv", "attn_out", "mlp_in", "mlp_out",
                                                    "embedding", "lm_head", "norm_bias"};

const char *jl_prune_mode_name(jl_prune_mode mode) {
    return mode >= JL_PRUNE_GLOBAL && mode <= JL_PRUNE_PER_ROW ? mode_names[mode] : "?";
}

jl_status jl_prune_mode_parse(const char *name, jl_prune_mode *out) {
    for (int i = 0; i < 3; i++)
        if (strcmp(name, mode_names[i]) == 0) {
            *out = (jl_prune_mode)i;
            return JL_OK;
        }
    return jl_fail(JL_ERR_ARG, "unknown pruning mode '%s' (global, per-tensor or per-row)", name);
}

const char *jl_prune_kind_name(jl_prune_kind kind) {
    return kind >= 0 && kind < JL_PK_COUNT ? kind_names[kind] : "?";
}

/* A contiguous run of weights that belongs to one group. */
typedef struct {
    float *w;
    size_t n;
} span;

static int inside(const float *p, const float *base, size_t n) { return base && p >= base && p < base + n; }

/* Which kind a tensor is, found by where it lies among the model's views (k and v sit inside the packed
 * qkv block, up inside [gate; up]). */
static jl_prune_kind tensor_kind(const jl_model *m, const jl_tensor_info *t) {
    const jl_config *c = &m->cfg;
    const float *p = m->params + t->offset;
    if (t->ndim == 1) return JL_PK_NORM_BIAS;
    if (p == m->w.wte || p == m->w.wpe) return JL_PK_EMBEDDING;
    if (p == m->w.lm_head) return JL_PK_LM_HEAD;
    const size_t C = (size_t)c->dim;
    for (int l = 0; l < c->n_layer; l++) {
        const jl_layer_params *lp = &m->w.layers[l];
        if (inside(p, lp->qkv_w, (size_t)jl_qkv_dim(c) * C)) return JL_PK_ATTN_QKV;
        if (inside(p, lp->o_w, C * (size_t)c->n_head * (size_t)jl_head_size(c))) return JL_PK_ATTN_OUT;
        if (inside(p, lp->fc_w, (size_t)jl_fc_dim(c) * C)) return JL_PK_MLP_IN;
        if (inside(p, lp->down_w, C * (size_t)c->hidden_dim)) return JL_PK_MLP_OUT;
    }
    return JL_PK_NORM_BIAS;
}

static size_t tensor_rows(const jl_tensor_info *t) { return (size_t)t->rows_saved; }
static size_t tensor_cols(const jl_tensor_info *t) { return t->ndim == 2 ? (size_t)t->shape[1] : 1; }

static void swapf(float *a, float *b) {
    float t = *a;
    *a = *b;
    *b = t;
}

/* The k-th smallest (0-based) of v[0..n), reordering v. */
static float select_kth(float *v, size_t n, size_t k) {
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        /* median of three as pivot, moved to hi */
        if (v[mid] < v[lo]) swapf(&v[mid], &v[lo]);
        if (v[hi] < v[lo]) swapf(&v[hi], &v[lo]);
        if (v[mid] < v[hi]) swapf(&v[mid], &v[hi]);
        float pivot = v[hi];
        /* three-way partition: [lo, lt) < pivot, [lt, gt] == pivot, (gt, hi] > pivot */
        size_t lt = lo, i = lo, gt = hi;
        while (i <= gt) {
            if (v[i] < pivot) swapf(&v[lt++], &v[i++]);
            else if (v[i] > pivot) {
                swapf(&v[i], &v[gt]);
                if (gt == 0) break;
                gt--;
            } else i++;
        }
        if (k < lt) hi = lt - 1;
        else if (k > gt) lo = gt + 1;
        else return pivot;
    }
    return v[k];
}

/* Zeroes exactly k of the smallest-magnitude weights of the spans; scratch holds Σn floats. */
static void prune_group(const span *spans, int n_spans, size_t k, float *scratch) {
    if (k == 0) return;
    size_t n = 0;
    for (int s = 0; s < n_spans; s++)
        for (size_t i = 0; i < spans[s].n; i++) scratch[n++] = fabsf(spans[s].w[i]);
    float thr = select_kth(scratch, n, k - 1);
    size_t zeroed = 0;
    for (int s = 0; s < n_spans; s++)
        for (size_t i = 0; i < spans[s].n; i++)
            if (fabsf(spans[s].w[i]) < thr) {
                spans[s].w[i] = 0.0f;
                zeroed++;
            }
    for (int s = 0; s < n_spans && zeroed < k; s++)
        for (size_t i = 0; i < spans[s].n && zeroed < k; i++)
            if (fabsf(spans[s].w[i]) == thr) {
                spans[s].w[i] = 0.0f;
                zeroed++;
            }
}

static size_t count_of(double sparsity, size_t n) { return (size_t)llround(sparsity * (double)n); }

static jl_status check_finite(const jl_model *m, const jl_tensor_info *t) {
    const float *w = m->params + t->offset;
    size_t n = tensor_rows(t) * tensor_cols(t);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(w[i])) return jl_fail(JL_ERR_FORMAT, "tensor %s: weight %zu is not finite", t->name, i);
    return JL_OK;
}

static int is_selected(jl_prune_kind kind, const jl_prune_opts *o) {
    if (kind == JL_PK_NORM_BIAS) return 0;
    if (kind == JL_PK_EMBEDDING || kind == JL_PK_LM_HEAD) return o->include_embeddings;
    return 1;
}

jl_status jl_prune(jl_model *m, const jl_prune_opts *o, jl_prune_report *r) {
    memset(r, 0, sizeof *r);
    if (jl_model_require_params(m, "prune") != JL_OK) return JL_ERR_ARG;
    if (!(o->sparsity >= 0.0 && o->sparsity < 1.0))
        return jl_fail(JL_ERR_ARG, "sparsity must be in [0, 1) (got %g)", o->sparsity);
    if (o->mode < JL_PRUNE_GLOBAL || o->mode > JL_PRUNE_PER_ROW)
        return jl_fail(JL_ERR_ARG, "unknown pruning mode %d", (int)o->mode);
    int n = m->n_tensors, n_sel = 0;
    span *spans = calloc((size_t)n, sizeof *spans);
    if (!spans) return jl_fail(JL_ERR_NOMEM, "out of memory");
    size_t sel_total = 0, largest = 0;
    jl_status st = JL_OK;
    for (int i = 0; i < n && st == JL_OK; i++) {
        const jl_tensor_info *t = &m->tensors[i];
        jl_prune_kind kind = tensor_kind(m, t);
        size_t size = tensor_rows(t) * tensor_cols(t);
        r->total[kind] += size;
        if (!is_selected(kind, o)) continue;
        r->selected[kind] = 1;
        st = check_finite(m, t);
        spans[n_sel++] = (span){m->params + t->offset, size};
        sel_total += size;
        if (size > largest) largest = size;
    }
    float *scratch = NULL;
    if (st == JL_OK && n_sel > 0) {
        scratch = malloc(sizeof(float) * (o->mode == JL_PRUNE_GLOBAL ? sel_total : largest));
        if (!scratch) st = jl_fail(JL_ERR_NOMEM, "cannot allocate %zu floats for pruning", sel_total);
    }
    if (st == JL_OK && n_sel > 0) {
        if (o->mode == JL_PRUNE_GLOBAL) {
            prune_group(spans, n_sel, count_of(o->sparsity, sel_total), scratch);
        } else {
            for (int i = 0, s = 0; i < n; i++) {
                const jl_tensor_info *t = &m->tensors[i];
                if (!is_selected(tensor_kind(m, t), o)) continue;
                const span *sp = &spans[s++];
                if (o->mode == JL_PRUNE_PER_TENSOR) {
                    prune_group(sp, 1, count_of(o->sparsity, sp->n), scratch);
                } else {
                    size_t cols = tensor_cols(t), k = count_of(o->sparsity, cols);
                    for (size_t row = 0; row < tensor_rows(t); row++) {
                        span rs = {sp->w + row * cols, cols};
                        prune_group(&rs, 1, k, scratch);
                    }
                }
            }
        }
    }
    if (st == JL_OK)
        for (int i = 0; i < n; i++) {
            const jl_tensor_info *t = &m->tensors[i];
            jl_prune_kind kind = tensor_kind(m, t);
            const float *w = m->params + t->offset;
            size_t size = tensor_rows(t) * tensor_cols(t), z = 0;
            for (size_t j = 0; j < size; j++) z += w[j] == 0.0f;
            r->zeros[kind] += z;
            if (r->selected[kind]) {
                r->selected_total += size;
                r->selected_zeros += z;
            }
        }
    free(scratch);
    free(spans);
    return st;
}
