/* LoRA adapters: y += (alpha/r)·B·A·dropout(x) on targeted projections, inside the model's forward/backward.
 * All A and B matrices live in one block (so the optimizer state is adapter-sized); each projection's output
 * is a column slice of a fused output (llama q,k,v → qkv; gate,up → [gate; up]), written with the fused stride. */
#include "model/lora.h"
#include "model/adapter_io.h"
#include "model/model.h"
#include "core/rng.h"
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SITES 7

typedef struct {
    const char *name;    /* target name on the command line */
    const char *module;  /* HF module inside a layer, printf pattern with the layer index */
    jl_lora_out kind;
    int in_dim, out_off, out_dim, ld;
    int mlp;             /* belongs to the "mlp" group (else "attn") */
} site_def;

struct jl_lora {
    jl_lora_opts o;
    char targets[64];
    float scale;
    int n_layer, n_sites;
    site_def sites[MAX_SITES]; /* the targeted ones, in forward order (grouped by kind) */
    size_t *a_off;             /* [layer·n_sites + site]: A (r, in) then B (out, r) */
    float *params, *grads;
    size_t n_params;
    int cap;                   /* tokens the scratch holds */
    int max_in;
    float *u, *du, *xd, *tmp;  /* U = x·Aᵀ per layer and site (saved for backward); scratch */
    int dropout_on;
    uint64_t dropout_seed;
    jl_base_id base;
};

/* Every projection of the arch that can carry an adapter. */
static int arch_sites(const jl_config *c, site_def *s) {
    const int C = c->dim, H = c->hidden_dim, hs = jl_head_size(c), QKV = jl_qkv_dim(c);
    if (c->arch == JL_ARCH_LLAMA) {
        const int q = c->n_head * hs, kv = c->n_kv_head * hs;
        site_def d[] = {
            {"q", "model.layers.%d.self_attn.q_proj", JL_LORA_OUT_QKV, C, 0, q, QKV, 0},
            {"k", "model.layers.%d.self_attn.k_proj", JL_LORA_OUT_QKV, C, q, kv, QKV, 0},
            {"v", "model.layers.%d.self_attn.v_proj", JL_LORA_OUT_QKV, C, q + kv, kv, QKV, 0},
            {"o", "model.layers.%d.self_attn.o_proj", JL_LORA_OUT_O, q, 0, C, C, 0},
            {"gate", "model.layers.%d.mlp.gate_proj", JL_LORA_OUT_FC, C, 0, H, 2 * H, 1},
            {"up", "model.layers.%d.mlp.up_proj", JL_LORA_OUT_FC, C, H, H, 2 * H, 1},
            {"down", "model.layers.%d.mlp.down_proj", JL_LORA_OUT_DOWN, H, 0, C, C, 1},
        };
        memcpy(s, d, sizeof d);
        return 7;
    }
    site_def d[] = {
        {"qkv", "h.%d.attn.c_attn", JL_LORA_OUT_QKV, C, 0, 3 * C, 3 * C, 0},
        {"o", "h.%d.attn.c_proj", JL_LORA_OUT_O, C, 0, C, C, 0},
        {"fc", "h.%d.mlp.c_fc", JL_LORA_OUT_FC, C, 0, H, H, 1},
        {"down", "h.%d.mlp.c_proj", JL_LORA_OUT_DOWN, H, 0, C, C, 1},
    };
    memcpy(s, d, sizeof d);
    return 4;
}

/* Parses "q,v" / "attn" / "mlp" / "all" into a mask over the arch's sites. */
static jl_status parse_targets(const jl_config *c, const char *list, unsigned *mask) {
    site_def all[MAX_SITES];
    int n = arch_sites(c, all);
    *mask = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list && *list ? list : "attn");
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        int found = 0;
        for (int i = 0; i < n; i++) {
            int hit = !strcmp(tok, all[i].name) || !strcmp(tok, "all") || (!strcmp(tok, "attn") && !all[i].mlp) ||
                      (!strcmp(tok, "mlp") && all[i].mlp);
            if (hit) *mask |= 1u << i;
            found |= hit;
        }
        if (!found) {
            char names[128] = "";
            for (int i = 0; i < n; i++) {
                strncat(names, all[i].name, sizeof names - strlen(names) - 1);
                strncat(names, ", ", sizeof names - strlen(names) - 1);
            }
            return jl_fail(JL_ERR_ARG, "LoRA target '%s' is not a projection of %s (%sattn, mlp, all)", tok,
                           jl_arch_name(c->arch), names);
        }
    }
    return JL_OK;
}

static size_t site_size(const site_def *s, int r) { return (size_t)r * (size_t)(s->in_dim + s->out_dim); }

static jl_status reserve(jl_lora *lr, int tokens) {
    if (tokens <= lr->cap) return JL_OK;
    const size_t r = (size_t)lr->o.rank, n = (size_t)tokens;
    float *u = malloc(sizeof(float) * (size_t)lr->n_layer * (size_t)lr->n_sites * n * r);
    float *du = malloc(sizeof(float) * n * r);
    float *xd = malloc(sizeof(float) * n * (size_t)lr->max_in), *tmp = malloc(sizeof(float) * n * (size_t)lr->max_in);
    if (!u || !du || !xd || !tmp) {
        free(u), free(du), free(xd), free(tmp);
        return jl_fail(JL_ERR_NOMEM, "cannot allocate LoRA scratch for %d tokens", tokens);
    }
    free(lr->u), free(lr->du), free(lr->xd), free(lr->tmp);
    lr->u = u, lr->du = du, lr->xd = xd, lr->tmp = tmp;
    lr->cap = tokens;
    return JL_OK;
}

/* The structure (sites, offsets, zeroed block) for a config and options; no values. */
static jl_status lora_alloc(const jl_config *c, const jl_lora_opts *o, jl_lora **out) {
    *out = NULL;
    if (o->rank < 1 || o->rank > 4096) return jl_fail(JL_ERR_ARG, "LoRA rank %d is out of range [1, 4096]", o->rank);
    if (!(o->alpha > 0) || !isfinite(o->alpha)) return jl_fail(JL_ERR_ARG, "LoRA alpha must be > 0");
    if (!(o->dropout >= 0 && o->dropout < 1)) return jl_fail(JL_ERR_ARG, "LoRA dropout must be in [0, 1)");
    unsigned mask;
    jl_status st = parse_targets(c, o->targets, &mask);
    if (st != JL_OK) return st;
    jl_lora *lr = calloc(1, sizeof *lr);
    if (!lr) return jl_fail(JL_ERR_NOMEM, "out of memory");
    lr->o = *o;
    lr->scale = o->alpha / (float)o->rank;
    lr->n_layer = c->n_layer;
    site_def all[MAX_SITES];
    int n_all = arch_sites(c, all);
    for (int i = 0; i < n_all; i++) {
        if (!(mask & (1u << i))) continue;
        const int width = all[i].in_dim < all[i].out_dim ? all[i].in_dim : all[i].out_dim;
        if (o->rank > width) {
            jl_lora_free(lr);
            return jl_fail(JL_ERR_ARG, "LoRA rank %d exceeds the width of %s (%d in, %d out): at most %d", o->rank,
                           all[i].name, all[i].in_dim, all[i].out_dim, width);
        }
        lr->sites[lr->n_sites++] = all[i];
        if (all[i].in_dim > lr->max_in) lr->max_in = all[i].in_dim;
        size_t len = strlen(lr->targets);
        snprintf(lr->targets + len, sizeof lr->targets - len, "%s%s", len ? "," : "", all[i].name);
    }
    lr->o.targets = lr->targets;
    lr->a_off = malloc(sizeof(size_t) * (size_t)c->n_layer * (size_t)lr->n_sites);
    if (!lr->a_off) {
        jl_lora_free(lr);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    for (int l = 0; l < c->n_layer; l++)
        for (int s = 0; s < lr->n_sites; s++) {
            lr->a_off[l * lr->n_sites + s] = lr->n_params;
            lr->n_params += site_size(&lr->sites[s], o->rank);
        }
    lr->params = calloc(lr->n_params, sizeof(float));
    if (!lr->params) {
        jl_lora_free(lr);
        return jl_fail(JL_ERR_NOMEM, "cannot allocate %zu LoRA parameters", lr->n_params);
    }
    *out = lr;
    return JL_OK;
}

jl_status jl_lora_new(const jl_model *m, const jl_lora_opts *o, uint64_t seed, jl_lora **out) {
    jl_status st = lora_alloc(&m->cfg, o, out);
    if (st != JL_OK) return st;
    jl_lora *lr = *out;
    if ((st = jl_base_id_of(m, &lr->base)) != JL_OK) {
        jl_lora_free(lr);
        *out = NULL;
        return st;
    }
    jl_rng rng;
    jl_rng_seed(&rng, seed);
    for (int l = 0; l < lr->n_layer; l++)
        for (int s = 0; s < lr->n_sites; s++) { /* A uniform like PyTorch's Linear init, B zero */
            float *A = lr->params + lr->a_off[l * lr->n_sites + s];
            int in = lr->sites[s].in_dim;
            float bound = 1.0f / sqrtf((float)in);
            for (size_t i = 0; i < (size_t)o->rank * (size_t)in; i++) A[i] = bound * (2.0f * jl_rng_uniform(&rng) - 1.0f);
        }
    return JL_OK;
}

void jl_lora_free(jl_lora *lr) {
    if (!lr) return;
    free(lr->a_off);
    free(lr->params);
    free(lr->grads);
    free(lr->u), free(lr->du), free(lr->xd), free(lr->tmp);
    jl_base_id_free(&lr->base);
    free(lr);
}

size_t jl_lora_num_params(const jl_lora *lr) { return lr->n_params; }
const jl_lora_opts *jl_lora_options(const jl_lora *lr) { return &lr->o; }
float *jl_lora_params(jl_lora *lr) { return lr->params; }

float *jl_lora_grads(jl_lora *lr) {
    if (!lr->grads) lr->grads = calloc(lr->n_params, sizeof(float));
    return lr->grads;
}

static const jl_lora_hooks lora_hooks = {jl_lora_forward, jl_lora_backward};

jl_status jl_model_attach_lora(jl_model *m, jl_lora *lr, int max_tokens) {
    if (lr) {
        if (lr->n_layer != m->cfg.n_layer || !jl_base_id_matches(&lr->base, m))
            return jl_fail(JL_ERR_ARG, "LoRA adapter was made for another base model");
        jl_status st = reserve(lr, max_tokens);
        if (st != JL_OK) return st;
    }
    m->lora = lr;
    m->lora_hooks = &lora_hooks;
    return JL_OK;
}

/* ---------------------------------------------------------------- dropout */

void jl_lora_dropout_begin(jl_lora *lr, uint64_t seed) {
    lr->dropout_on = lr->o.dropout > 0;
    lr->dropout_seed = seed;
}

void jl_lora_dropout_end(jl_lora *lr) { lr->dropout_on = 0; }

/* Keep-or-drop of element i of the input of (layer, kind): a hash, so backward regenerates it. */
static inline float dropout_factor(const jl_lora *lr, int layer, int kind, size_t i) {
    uint64_t z = lr->dropout_seed ^ ((uint64_t)(layer * JL_LORA_OUT_COUNT + kind + 1) * 0x9E3779B97F4A7C15ull) ^
                 ((uint64_t)i * 0xD1B54A32D192ED03ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    float u = (float)(z >> 40) * (1.0f / 16777216.0f);
    return u < lr->o.dropout ? 0.0f : 1.0f / (1.0f - lr->o.dropout);
}

static void apply_dropout(const jl_lora *lr, int layer, int kind, float *dst, const float *src, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dst[i] = src[i] * dropout_factor(lr, layer, kind, i);
}

/* ---------------------------------------------------------------- forward / backward */

static int kind_range(const jl_lora *lr, jl_lora_out kind, int *first, int *end) {
    *first = 0;
    while (*first < lr->n_sites && lr->sites[*first].kind != kind) (*first)++;
    *end = *first;
    while (*end < lr->n_sites && lr->sites[*end].kind == kind) (*end)++;
    return *end > *first;
}

void jl_lora_forward(jl_lora *lr, int layer, jl_lora_out kind, float *out, int ld, const float *in, int N) {
    int s0, s1;
    if (!kind_range(lr, kind, &s0, &s1) || N <= 0) return;
    if (reserve(lr, N) != JL_OK) return; /* attach reserved the usual size; this only grows for larger calls */
    const int r = lr->o.rank, in_dim = lr->sites[s0].in_dim;
    const float *x = in;
    if (lr->dropout_on) {
        apply_dropout(lr, layer, kind, lr->xd, in, (size_t)N * in_dim);
        x = lr->xd;
    }
    for (int s = s0; s < s1; s++) {
        const site_def *d = &lr->sites[s];
        const float *A = lr->params + lr->a_off[layer * lr->n_sites + s], *B = A + (size_t)r * in_dim;
        float *U = lr->u + ((size_t)layer * lr->n_sites + s) * (size_t)lr->cap * r;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, r, in_dim, 1.0f, x, in_dim, A, in_dim, 0.0f, U, r);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, d->out_dim, r, lr->scale, U, r, B, r, 1.0f,
                    out + d->out_off, ld);
    }
}

void jl_lora_backward(jl_lora *lr, int layer, jl_lora_out kind, float *din, const float *dout, int ld,
                      const float *in, int N) {
    int s0, s1;
    if (!kind_range(lr, kind, &s0, &s1) || N <= 0 || N > lr->cap) return;
    const int r = lr->o.rank, in_dim = lr->sites[s0].in_dim;
    const float *x = in;
    if (lr->dropout_on) {
        apply_dropout(lr, layer, kind, lr->xd, in, (size_t)N * in_dim);
        x = lr->xd;
    }
    for (int s = s0; s < s1; s++) {
        const site_def *d = &lr->sites[s];
        size_t off = lr->a_off[layer * lr->n_sites + s];
        const float *A = lr->params + off, *B = A + (size_t)r * in_dim;
        const float *U = lr->u + ((size_t)layer * lr->n_sites + s) * (size_t)lr->cap * r;
        const float *dy = dout + d->out_off;
        if (lr->grads) /* dB(out, r) += scale · dyᵀ · U */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d->out_dim, r, N, lr->scale, dy, ld, U, r, 1.0f,
                        lr->grads + off + (size_t)r * in_dim, r);
        /* dU(N, r) = scale · dy · B */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, r, d->out_dim, lr->scale, dy, ld, B, r, 0.0f,
                    lr->du, r);
        if (lr->grads) /* dA(r, in) += dUᵀ · x */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, in_dim, N, 1.0f, lr->du, r, x, in_dim, 1.0f,
                        lr->grads + off, in_dim);
        if (din) /* d x(N, in) = Σ dU · A, through the dropout below */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in_dim, r, 1.0f, lr->du, r, A, in_dim,
                        s == s0 ? 0.0f : 1.0f, lr->tmp, in_dim);
    }
    if (!din) return;
    const size_t n = (size_t)N * in_dim;
    if (lr->dropout_on) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) din[i] += lr->tmp[i] * dropout_factor(lr, layer, kind, i);
    } else {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) din[i] += lr->tmp[i];
    }
}

/* ---------------------------------------------------------------- merge */

static float *fused_weight(jl_model *m, int layer, jl_lora_out kind) {
    jl_layer_params *p = &m->w.layers[layer];
    return kind == JL_LORA_OUT_QKV ? p->qkv_w : kind == JL_LORA_OUT_O ? p->o_w : kind == JL_LORA_OUT_FC ? p->fc_w : p->down_w;
}

jl_status jl_lora_merge(jl_model *m, const jl_lora *lr) {
    if (jl_model_require_params(m, "LoRA merge") != JL_OK) return JL_ERR_ARG;
    if (lr->n_layer != m->cfg.n_layer || !jl_base_id_matches(&lr->base, m))
        return jl_fail(JL_ERR_ARG, "LoRA adapter was made for another base model; cannot merge");
    const int r = lr->o.rank;
    for (int l = 0; l < lr->n_layer; l++)
        for (int s = 0; s < lr->n_sites; s++) { /* W[out slice] (out, in) += scale · B(out, r) · A(r, in) */
            const site_def *d = &lr->sites[s];
            const float *A = lr->params + lr->a_off[l * lr->n_sites + s], *B = A + (size_t)r * d->in_dim;
            float *W = fused_weight(m, l, d->kind) + (size_t)d->out_off * d->in_dim;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d->out_dim, d->in_dim, r, lr->scale, B, r, A,
                        d->in_dim, 1.0f, W, d->in_dim);
        }
    return JL_OK;
}

/* ---------------------------------------------------------------- files */

static void peft_name(char *buf, size_t size, const jl_lora *lr, int layer, int site, char which) {
    char module[96];
    snprintf(module, sizeof module, lr->sites[site].module, layer);
    snprintf(buf, size, "base_model.model.%s.lora_%c.weight", module, which);
}

jl_status jl_lora_save(const jl_lora *lr, const char *path, const jl_adapter_state *state) {
    jl_adapter_writer aw;
    jl_status st = jl_adapter_writer_begin(&aw, "lora", &lr->base);
    char buf[64];
    snprintf(buf, sizeof buf, "%d", lr->o.rank);
    if (st == JL_OK) st = jl_st_add_meta(aw.w, "r", buf);
    snprintf(buf, sizeof buf, "%.9g", lr->o.alpha);
    if (st == JL_OK) st = jl_st_add_meta(aw.w, "lora_alpha", buf);
    snprintf(buf, sizeof buf, "%.9g", lr->o.dropout);
    if (st == JL_OK) st = jl_st_add_meta(aw.w, "lora_dropout", buf);
    if (st == JL_OK) st = jl_st_add_meta(aw.w, "target_modules", lr->targets);
    const int64_t r = lr->o.rank;
    for (int l = 0; l < lr->n_layer && st == JL_OK; l++)
        for (int s = 0; s < lr->n_sites && st == JL_OK; s++) {
            const site_def *d = &lr->sites[s];
            const float *A = lr->params + lr->a_off[l * lr->n_sites + s];
            char name[160];
            int64_t a_shape[2] = {r, d->in_dim}, b_shape[2] = {d->out_dim, r};
            peft_name(name, sizeof name, lr, l, s, 'A');
            st = jl_st_add(aw.w, name, JL_DT_F32, 2, a_shape, A);
            peft_name(name, sizeof name, lr, l, s, 'B');
            if (st == JL_OK) st = jl_st_add(aw.w, name, JL_DT_F32, 2, b_shape, A + r * d->in_dim);
        }
    return jl_adapter_writer_finish(&aw, st, path, lr->n_params, state);
}

static int meta_number(const jl_st_file *f, const char *key, double *out) {
    const char *v = jl_st_meta(f, key);
    char *end;
    if (!v) return 0;
    *out = strtod(v, &end);
    return end != v && *end == '\0';
}

jl_status jl_lora_load(const char *path, const jl_model *m, jl_lora **out, jl_adapter_state *state) {
    *out = NULL;
    jl_st_file *f;
    jl_status st = jl_adapter_open(path, "lora", m, &f);
    if (st != JL_OK) return st;
    double r, alpha, dropout = 0;
    const char *targets = jl_st_meta(f, "target_modules");
    if (!meta_number(f, "r", &r) || !meta_number(f, "lora_alpha", &alpha) || !targets) {
        jl_st_close(f);
        return jl_fail(JL_ERR_FORMAT, "%s: LoRA metadata 'r', 'lora_alpha' or 'target_modules' missing", path);
    }
    meta_number(f, "lora_dropout", &dropout);
    jl_lora_opts o = {.rank = (int)r, .alpha = (float)alpha, .dropout = (float)dropout, .targets = targets};
    jl_lora *lr;
    if ((st = lora_alloc(&m->cfg, &o, &lr)) != JL_OK) {
        jl_fail_context(st, "%s", path);
        jl_st_close(f);
        return st;
    }
    if ((st = jl_base_id_of(m, &lr->base)) != JL_OK) goto done;
    int expected = 0;
    for (int l = 0; l < lr->n_layer && st == JL_OK; l++)
        for (int s = 0; s < lr->n_sites && st == JL_OK; s++)
            for (int k = 0; k < 2 && st == JL_OK; k++) {
                const site_def *d = &lr->sites[s];
                char name[160];
                peft_name(name, sizeof name, lr, l, s, k ? 'B' : 'A');
                float *dst = lr->params + lr->a_off[l * lr->n_sites + s] + (k ? (size_t)o.rank * d->in_dim : 0);
                int64_t rows = k ? d->out_dim : o.rank, cols = k ? o.rank : d->in_dim;
                st = jl_adapter_read_tensor(path, f, name, rows, cols, dst, "rank in the metadata");
                expected++;
            }
    if (st == JL_OK) st = jl_adapter_check_extra(path, f, expected);
    if (st == JL_OK && state) st = jl_adapter_read_state(path, f, lr->n_params, state);
done:
    jl_st_close(f);
    if (st != JL_OK) {
        jl_lora_free(lr);
        return st;
    }
    *out = lr;
    return JL_OK;
}
