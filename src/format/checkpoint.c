#include "jielong/checkpoint.h"
#include "jielong/safetensors.h"
#include "model/model.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define META_CONFIG "jielong.config"
#define META_TOKENIZER "jielong.tokenizer"
#define META_CHAT_TEMPLATE "jielong.chat_template"
#define META_BOS_TOKEN "jielong.bos_token"
#define META_EOS_TOKEN "jielong.eos_token"
#define META_TRAIN_STATE "jielong.train_state"
#define TENSOR_ADAM_M "jielong.adam_m"
#define TENSOR_ADAM_V "jielong.adam_v"

/* (rows, cols) → (cols, rows) copy, for GPT-2's Conv1D weights which Hugging Face stores as (in, out). */
static float *transposed_copy(const float *src, int64_t rows, int64_t cols) {
    float *dst = malloc(sizeof(float) * (size_t)rows * (size_t)cols);
    if (!dst) return NULL;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c];
    return dst;
}

static void transpose_into(float *dst, const float *src, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c];
}

jl_status jl_checkpoint_save(const char *path, const jl_checkpoint *ck) {
    const jl_model *m = ck->model;
    if (jl_model_require_params(m, "save checkpoint") != JL_OK) return jl_fail_context(JL_ERR_ARG, "%s", path);
    jl_st_writer *w = jl_st_writer_new();
    float **copies = calloc((size_t)m->n_tensors, sizeof(float *));
    char *config_json = NULL;
    jl_status st = (w && copies) ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory");
    if (st == JL_OK) st = jl_config_to_json(&m->cfg, &config_json);
    if (st == JL_OK) st = jl_st_add_meta(w, "format", "pt");
    if (st == JL_OK) st = jl_st_add_meta(w, META_CONFIG, config_json);
    if (st == JL_OK && ck->tokenizer_json) st = jl_st_add_meta(w, META_TOKENIZER, ck->tokenizer_json);
    if (st == JL_OK && ck->chat_template) st = jl_st_add_meta(w, META_CHAT_TEMPLATE, ck->chat_template);
    if (st == JL_OK && ck->chat_template && ck->bos_token) st = jl_st_add_meta(w, META_BOS_TOKEN, ck->bos_token);
    if (st == JL_OK && ck->chat_template && ck->eos_token) st = jl_st_add_meta(w, META_EOS_TOKEN, ck->eos_token);
    if (st == JL_OK && ck->train_state) st = jl_st_add_meta(w, META_TRAIN_STATE, ck->train_state);
    for (int i = 0; i < m->n_tensors && st == JL_OK; i++) {
        const jl_tensor_info *t = &m->tensors[i];
        const float *data = m->params + t->offset;
        int64_t shape[2] = {t->rows_saved, t->shape[1]};
        if (t->hf_transposed) {
            copies[i] = transposed_copy(data, t->rows_saved, t->shape[1]);
            if (!copies[i]) st = jl_fail(JL_ERR_NOMEM, "out of memory");
            data = copies[i];
            shape[0] = t->shape[1];
            shape[1] = t->rows_saved;
        }
        if (st == JL_OK) st = jl_st_add(w, t->name, JL_DT_F32, t->ndim, shape, data);
    }
    int64_t n = (int64_t)m->n_params;
    if (st == JL_OK && ck->adam_m) st = jl_st_add(w, TENSOR_ADAM_M, JL_DT_F32, 1, &n, ck->adam_m);
    if (st == JL_OK && ck->adam_v) st = jl_st_add(w, TENSOR_ADAM_V, JL_DT_F32, 1, &n, ck->adam_v);
    if (st == JL_OK) st = jl_st_write(w, path);
    for (int i = 0; copies && i < m->n_tensors; i++) free(copies[i]);
    free(copies);
    free(config_json);
    jl_st_writer_free(w);
    return st;
}

static char *dup_meta(const jl_st_file *f, const char *key) {
    const char *v = jl_st_meta(f, key);
    return v ? strdup(v) : NULL;
}

/* Tensor t of the layout is in the file with its shape (as saved) and dtype F32. */
static jl_status check_tensor(const char *path, const jl_st_file *f, const jl_tensor_info *t) {
    const jl_st_tensor *s = jl_st_find(f, t->name);
    if (!s) return jl_fail(JL_ERR_FORMAT, "%s: missing tensor '%s'", path, t->name);
    int64_t rows = t->hf_transposed ? t->shape[1] : t->rows_saved;
    int64_t cols = t->hf_transposed ? t->rows_saved : t->shape[1];
    int shape_ok = s->ndim == t->ndim && s->shape[0] == rows && (t->ndim == 1 || s->shape[1] == cols);
    if (!shape_ok)
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s' has shape [%lld%s%lld], expected [%lld, %lld]", path, t->name,
                       (long long)s->shape[0], s->ndim > 1 ? ", " : "", (long long)(s->ndim > 1 ? s->shape[1] : 0),
                       (long long)rows, (long long)cols);
    if (s->dtype != JL_DT_F32)
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s' is %s, expected F32", path, t->name, jl_dtype_name(s->dtype));
    return JL_OK;
}

/* Every tensor the config lays out is in the file (shape, dtype) and the file has no other: checked before the
 * model is allocated, so a small file whose config claims a huge model is refused at once (the safetensors
 * reader has checked every tensor's byte range against the file). */
static jl_status check_layout(const char *path, const jl_st_file *f, const jl_config *cfg) {
    jl_tensor_info *t;
    int n;
    size_t n_params;
    jl_status st = jl_model_layout(cfg, &t, &n, &n_params);
    if (st != JL_OK) return jl_fail_context(st, "%s", path);
    for (int i = 0; st == JL_OK && i < n; i++) st = check_tensor(path, f, &t[i]);
    /* Every tensor in the file must be one the config expects: a stray one means another config. */
    for (int i = 0; st == JL_OK && i < jl_st_count(f); i++) {
        const char *name = jl_st_at(f, i)->name;
        int known = strcmp(name, TENSOR_ADAM_M) == 0 || strcmp(name, TENSOR_ADAM_V) == 0;
        for (int k = 0; !known && k < n; k++) known = strcmp(name, t[k].name) == 0;
        if (!known) st = jl_fail(JL_ERR_FORMAT, "%s: unexpected tensor '%s' for the config in its metadata", path, name);
    }
    free(t);
    return st;
}

static void load_tensor(const jl_st_file *f, jl_model *m, const jl_tensor_info *t) {
    const jl_st_tensor *s = jl_st_find(f, t->name);
    float *dst = m->params + t->offset;
    if (t->hf_transposed) transpose_into(dst, s->data, t->shape[1], t->rows_saved);
    else memcpy(dst, s->data, s->nbytes);
}

static jl_status load_moment(const char *path, const jl_st_file *f, const char *name, size_t n, float **out) {
    const jl_st_tensor *s = jl_st_find(f, name);
    if (!s) return JL_OK;
    if (s->dtype != JL_DT_F32 || s->ndim != 1 || (size_t)s->shape[0] != n)
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s' does not match the model's %zu parameters", path, name, n);
    *out = malloc(s->nbytes);
    if (!*out) return jl_fail(JL_ERR_NOMEM, "out of memory");
    memcpy(*out, s->data, s->nbytes);
    return JL_OK;
}

/* A folder given where a checkpoint file is expected: say which file of it to pass. */
static jl_status folder_hint(const char *path) {
    static const char *const kinds[][2] = {
        {"config.json", "a Hugging Face folder: import it first (jielong import --from %s --out model.safetensors)"},
        {"model.safetensors", "a run folder: pass %s/model.safetensors (its result), or %s/checkpoint.safetensors to --resume"},
        {"train_000.bin", "a prepared data folder (jielong prepare): it goes to --data, not --model"},
    };
    char probe[4096];
    struct stat sb;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        snprintf(probe, sizeof probe, "%s/%s", path, kinds[i][0]);
        if (stat(probe, &sb) != 0) continue;
        char hint[4096];
        snprintf(hint, sizeof hint, kinds[i][1], path, path);
        return jl_fail(JL_ERR_ARG, "%s: is %s", path, hint);
    }
    return jl_fail(JL_ERR_ARG, "%s: is a folder, not a checkpoint file (.safetensors)", path);
}

jl_status jl_checkpoint_load(const char *path, jl_checkpoint *ck) {
    memset(ck, 0, sizeof *ck);
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) return folder_hint(path);
    jl_st_file *f;
    jl_status st = jl_st_open(path, &f);
    if (st != JL_OK) return st;
    const char *config_json = jl_st_meta(f, META_CONFIG);
    jl_config cfg;
    if (!config_json) st = jl_fail(JL_ERR_FORMAT, "%s: not a jielong checkpoint (no '%s' metadata)", path, META_CONFIG);
    else if ((st = jl_config_from_json(config_json, &cfg)) != JL_OK) jl_fail_context(st, "%s", path);
    if (st == JL_OK) st = check_layout(path, f, &cfg);
    if (st == JL_OK) st = jl_model_new(&cfg, &ck->model);
    for (int i = 0; st == JL_OK && i < ck->model->n_tensors; i++) load_tensor(f, ck->model, &ck->model->tensors[i]);
    if (st == JL_OK) st = jl_model_check_finite(ck->model, path);
    if (st == JL_OK) st = load_moment(path, f, TENSOR_ADAM_M, ck->model->n_params, &ck->adam_m);
    if (st == JL_OK) st = load_moment(path, f, TENSOR_ADAM_V, ck->model->n_params, &ck->adam_v);
    if (st == JL_OK && (!ck->adam_m) != (!ck->adam_v))
        st = jl_fail(JL_ERR_FORMAT, "%s: only one of the two AdamW moments is present", path);
    if (st == JL_OK) {
        ck->tokenizer_json = dup_meta(f, META_TOKENIZER);
        ck->chat_template = dup_meta(f, META_CHAT_TEMPLATE);
        ck->bos_token = dup_meta(f, META_BOS_TOKEN);
        ck->eos_token = dup_meta(f, META_EOS_TOKEN);
        ck->train_state = dup_meta(f, META_TRAIN_STATE);
    }
    jl_st_close(f);
    if (st != JL_OK) jl_checkpoint_free(ck);
    return st;
}

void jl_checkpoint_free(jl_checkpoint *ck) {
    jl_model_free(ck->model);
    free(ck->tokenizer_json);
    free(ck->chat_template);
    free(ck->bos_token);
    free(ck->eos_token);
    free(ck->adam_m);
    free(ck->adam_v);
    free(ck->train_state);
    memset(ck, 0, sizeof *ck);
}
