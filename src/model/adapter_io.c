#include "model/adapter_io.h"
#include "model/model.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define META_KIND "jielong.adapter"
#define META_BASE_CONFIG "jielong.base_config"
#define META_BASE_HASH "jielong.base_hash"
#define META_STATE "jielong.train_state"
#define TENSOR_M "jielong.adam_m"
#define TENSOR_V "jielong.adam_v"

uint64_t jl_model_weights_hash(const jl_model *m) {
    /* FNV-1a over 32-bit words: bit-exact weights give the same hash, any change almost surely another */
    const uint32_t *w = (const uint32_t *)m->params;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < m->n_backed; i++) {
        h ^= w[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

jl_status jl_base_id_of(const jl_model *m, jl_base_id *id) {
    id->hash = jl_model_weights_hash(m);
    return jl_config_to_json(&m->cfg, &id->config_json);
}

int jl_base_id_matches(const jl_base_id *id, const jl_model *m) {
    jl_config c;
    if (jl_config_from_json(id->config_json, &c) != JL_OK || !jl_config_equal(&c, &m->cfg)) return 0;
    return id->hash == jl_model_weights_hash(m);
}

void jl_base_id_free(jl_base_id *id) {
    free(id->config_json);
    id->config_json = NULL;
}

void jl_adapter_state_free(jl_adapter_state *s) {
    free(s->adam_m);
    free(s->adam_v);
    free(s->train_state);
    memset(s, 0, sizeof *s);
}

jl_status jl_adapter_writer_begin(jl_adapter_writer *aw, const char *kind, const jl_base_id *base) {
    aw->w = jl_st_writer_new();
    if (!aw->w) return jl_fail(JL_ERR_NOMEM, "out of memory");
    char hash[32];
    snprintf(hash, sizeof hash, "%016" PRIx64, base->hash);
    jl_status st = jl_st_add_meta(aw->w, "format", "pt");
    if (st == JL_OK) st = jl_st_add_meta(aw->w, META_KIND, kind);
    if (st == JL_OK) st = jl_st_add_meta(aw->w, META_BASE_CONFIG, base->config_json);
    if (st == JL_OK) st = jl_st_add_meta(aw->w, META_BASE_HASH, hash);
    return st;
}

jl_status jl_adapter_writer_finish(jl_adapter_writer *aw, jl_status st, const char *path, size_t n,
                                   const jl_adapter_state *state) {
    int64_t shape = (int64_t)n;
    if (st == JL_OK && state && state->adam_m) st = jl_st_add(aw->w, TENSOR_M, JL_DT_F32, 1, &shape, state->adam_m);
    if (st == JL_OK && state && state->adam_v) st = jl_st_add(aw->w, TENSOR_V, JL_DT_F32, 1, &shape, state->adam_v);
    if (st == JL_OK && state && state->train_state) st = jl_st_add_meta(aw->w, META_STATE, state->train_state);
    if (st == JL_OK) st = jl_st_write(aw->w, path);
    jl_st_writer_free(aw->w);
    aw->w = NULL;
    return st;
}

jl_status jl_adapter_open(const char *path, const char *kind, const jl_model *m, jl_st_file **out) {
    *out = NULL;
    jl_st_file *f;
    jl_status st = jl_st_open(path, &f);
    if (st != JL_OK) return st;
    const char *k = jl_st_meta(f, META_KIND), *cfg_json = jl_st_meta(f, META_BASE_CONFIG);
    const char *hash = jl_st_meta(f, META_BASE_HASH);
    jl_config c;
    char want[32];
    snprintf(want, sizeof want, "%016" PRIx64, jl_model_weights_hash(m));
    if (!k || strcmp(k, kind) != 0)
        st = jl_fail(JL_ERR_FORMAT, "%s: not a %s adapter (metadata %s is '%s')", path, kind, META_KIND, k ? k : "absent");
    else if (!cfg_json || !hash)
        st = jl_fail(JL_ERR_FORMAT, "%s: base model fingerprint (%s, %s) missing", path, META_BASE_CONFIG, META_BASE_HASH);
    else if (jl_config_from_json(cfg_json, &c) != JL_OK || !jl_config_equal(&c, &m->cfg))
        st = jl_fail(JL_ERR_ARG, "%s: adapter was made for a base model with another config (%s) than this one",
                     path, cfg_json);
    else if (strcmp(hash, want) != 0)
        st = jl_fail(JL_ERR_ARG, "%s: adapter was made for other base weights (hash %s, this model %s)", path, hash, want);
    if (st != JL_OK) {
        jl_st_close(f);
        return st;
    }
    *out = f;
    return JL_OK;
}

jl_status jl_adapter_read_tensor(const char *path, const jl_st_file *f, const char *name, int64_t rows, int64_t cols,
                                 float *dst, const char *what) {
    const jl_st_tensor *t = jl_st_find(f, name);
    if (!t) return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s' missing", path, name);
    if (t->dtype != JL_DT_F32) return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s' is %s, expected F32", path, name,
                                              jl_dtype_name(t->dtype));
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s' has shape [%lld, %lld], expected [%lld, %lld] from the %s", path,
                       name, (long long)t->shape[0], (long long)(t->ndim > 1 ? t->shape[1] : 0), (long long)rows,
                       (long long)cols, what);
    memcpy(dst, t->data, t->nbytes);
    return JL_OK;
}

jl_status jl_adapter_check_extra(const char *path, const jl_st_file *f, int expected) {
    int n = 0;
    for (int i = 0; i < jl_st_count(f); i++) {
        const char *name = jl_st_at(f, i)->name;
        if (strcmp(name, TENSOR_M) != 0 && strcmp(name, TENSOR_V) != 0) n++;
    }
    if (n != expected)
        return jl_fail(JL_ERR_FORMAT, "%s: %d adapter tensors, expected %d for its metadata (targets, layers)", path, n,
                       expected);
    return JL_OK;
}

static jl_status read_moment(const char *path, const jl_st_file *f, const char *name, size_t n, float **out) {
    const jl_st_tensor *t = jl_st_find(f, name);
    if (!t) return JL_OK;
    if (t->dtype != JL_DT_F32 || t->ndim != 1 || (size_t)t->shape[0] != n)
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s' does not match the adapter's %zu parameters", path, name, n);
    *out = malloc(t->nbytes);
    if (!*out) return jl_fail(JL_ERR_NOMEM, "out of memory");
    memcpy(*out, t->data, t->nbytes);
    return JL_OK;
}

jl_status jl_adapter_read_state(const char *path, const jl_st_file *f, size_t n, jl_adapter_state *state) {
    memset(state, 0, sizeof *state);
    jl_status st = read_moment(path, f, TENSOR_M, n, &state->adam_m);
    if (st == JL_OK) st = read_moment(path, f, TENSOR_V, n, &state->adam_v);
    const char *ts = jl_st_meta(f, META_STATE);
    if (st == JL_OK && ts && !(state->train_state = strdup(ts))) st = jl_fail(JL_ERR_NOMEM, "out of memory");
    if (st == JL_OK && (!state->adam_m) != (!state->adam_v))
        st = jl_fail(JL_ERR_FORMAT, "%s: only one of the two AdamW moments is present", path);
    if (st != JL_OK) jl_adapter_state_free(state);
    return st;
}
