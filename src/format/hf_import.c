/* Hugging Face model folders → jielong checkpoints: config.json mapping, shard discovery, dtype conversion,
 * name mapping (our names are HF's; GPT-2 files may carry a "transformer." prefix), strict checks. */
#include "core/half.h"
#include "io/fileio.h"
#include "io/hf_json.h"
#include "jielong/chat_format.h"
#include "jielong/convert.h"
#include "jielong/tokenizer.h"
#include "model/model.h"
#include <dirent.h>
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_SHARDS 256

/* ---------------------------------------------------------------- config.json */

static jl_status llama_family(const char *path, json_object *o, const char *type, jl_config *c) {
    jl_status st = JL_OK;
    c->arch = JL_ARCH_LLAMA;
    const char *act = hfj_str(o, "hidden_act", "silu");
    if (!act || strcmp(act, "silu") != 0)
        return jl_fail(JL_ERR_FORMAT, "%s: field 'hidden_act': '%s' is not supported (only silu)", path,
                       act ? act : "?");
    if (!hfj_is_null(o, "rope_scaling"))
        return jl_fail(JL_ERR_FORMAT, "%s: field 'rope_scaling': RoPE scaling is not supported", path);
    if (hfj_bool(o, "mlp_bias", 0)) return jl_fail(JL_ERR_FORMAT, "%s: field 'mlp_bias': MLP biases are not supported", path);
    if (strcmp(type, "qwen2") == 0) {
        c->qkv_bias = 1; /* Qwen2 always has q/k/v biases and no o_proj bias */
        if (hfj_bool(o, "use_sliding_window", 0))
            return jl_fail(JL_ERR_FORMAT, "%s: field 'use_sliding_window': sliding-window attention is not supported",
                           path);
    } else if (hfj_bool(o, "attention_bias", 0)) {
        return jl_fail(JL_ERR_FORMAT, "%s: field 'attention_bias': Llama attention biases (q/k/v/o) are not supported",
                       path);
    }
    if (st == JL_OK) st = hfj_int(path, o, "vocab_size", &c->vocab_size, -1);
    if (st == JL_OK) st = hfj_int(path, o, "hidden_size", &c->dim, -1);
    if (st == JL_OK) st = hfj_int(path, o, "intermediate_size", &c->hidden_dim, -1);
    if (st == JL_OK) st = hfj_int(path, o, "num_hidden_layers", &c->n_layer, -1);
    if (st == JL_OK) st = hfj_int(path, o, "num_attention_heads", &c->n_head, -1);
    if (st == JL_OK) st = hfj_int(path, o, "num_key_value_heads", &c->n_kv_head, c->n_head);
    if (st == JL_OK) st = hfj_int(path, o, "max_position_embeddings", &c->max_seq_len, -1);
    if (st == JL_OK) st = hfj_float(path, o, "rms_norm_eps", &c->norm_eps, 1e-6f, NULL);
    if (st == JL_OK) st = hfj_float(path, o, "rope_theta", &c->rope_theta, 10000.0f, NULL);
    if (st != JL_OK) return st;
    int head_dim = 0;
    if (hfj_has(o, "head_dim") && !hfj_is_null(o, "head_dim")) {
        st = hfj_int(path, o, "head_dim", &head_dim, -1);
        if (st != JL_OK) return st;
        if (c->n_head < 1 || (int64_t)head_dim * c->n_head != c->dim)
            return jl_fail(JL_ERR_FORMAT, "%s: field 'head_dim': %d × %d heads != hidden_size %d is not supported", path,
                           head_dim, c->n_head, c->dim);
    }
    c->tie_embeddings = hfj_bool(o, "tie_word_embeddings", 0);
    return JL_OK;
}

static jl_status gpt2_config(const char *path, json_object *o, jl_config *c) {
    jl_status st = JL_OK;
    c->arch = JL_ARCH_GPT2;
    const char *act = hfj_str(o, "activation_function", "gelu_new");
    if (!act || (strcmp(act, "gelu_new") != 0 && strcmp(act, "gelu_pytorch_tanh") != 0))
        return jl_fail(JL_ERR_FORMAT, "%s: field 'activation_function': '%s' is not supported (gelu_new)", path,
                       act ? act : "?");
    if (st == JL_OK) st = hfj_int(path, o, "vocab_size", &c->vocab_size, -1);
    if (st == JL_OK) st = hfj_int(path, o, "n_positions", &c->max_seq_len, -1);
    if (st == JL_OK) st = hfj_int(path, o, "n_embd", &c->dim, -1);
    if (st == JL_OK) st = hfj_int(path, o, "n_layer", &c->n_layer, -1);
    if (st == JL_OK) st = hfj_int(path, o, "n_head", &c->n_head, -1);
    /* 4·n_embd only for a width the config allows (jl_config_finish refuses the rest): no int overflow */
    const int four_dim = c->dim >= 1 && c->dim <= 65536 ? 4 * c->dim : 0;
    if (st == JL_OK) st = hfj_int(path, o, "n_inner", &c->hidden_dim, hfj_is_null(o, "n_inner") ? four_dim : -1);
    if (st == JL_OK) st = hfj_float(path, o, "layer_norm_epsilon", &c->norm_eps, 1e-5f, NULL);
    c->n_kv_head = c->n_head;
    c->rope_theta = 10000.0f;
    c->tie_embeddings = 1;
    if (st == JL_OK && !hfj_bool(o, "tie_word_embeddings", 1))
        return jl_fail(JL_ERR_FORMAT, "%s: field 'tie_word_embeddings': untied GPT-2 heads are not supported", path);
    return st;
}

/* Parses a Hugging Face config.json text into a jielong config. */
static jl_status hf_config_parse(const char *path, const char *text, jl_config *c) {
    memset(c, 0, sizeof *c);
    json_object *o = NULL;
    jl_status st = hfj_parse(path, text, &o);
    if (st != JL_OK) return st;
    const char *type = hfj_str(o, "model_type", NULL);
    if (!type) st = jl_fail(JL_ERR_FORMAT, "%s: field 'model_type': missing or not a string", path);
    else if (strcmp(type, "gpt2") == 0) st = gpt2_config(path, o, c);
    else if (strcmp(type, "llama") == 0 || strcmp(type, "qwen2") == 0) st = llama_family(path, o, type, c);
    else st = jl_fail(JL_ERR_FORMAT, "%s: field 'model_type': '%s' is not supported (gpt2, llama, qwen2)", path, type);
    json_object_put(o);
    if (st == JL_OK && (st = jl_config_finish(c)) != JL_OK) jl_fail_context(st, "%s", path);
    return st == JL_OK ? JL_OK : JL_ERR_FORMAT;
}

/* ---------------------------------------------------------------- tensors */

typedef struct {
    jl_st_file *files[MAX_SHARDS];
    char *paths[MAX_SHARDS];
    int n;
} shard_set;

static void shards_close(shard_set *s) {
    for (int i = 0; i < s->n; i++) {
        jl_st_close(s->files[i]);
        free(s->paths[i]);
    }
    s->n = 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static jl_status shards_open(const char *dir, shard_set *s) {
    memset(s, 0, sizeof *s);
    DIR *d = opendir(dir);
    if (!d) return jl_fail(JL_ERR_IO, "%s: cannot open the model folder", dir);
    char *names[MAX_SHARDS];
    int n = 0;
    jl_status st = JL_OK;
    for (struct dirent *e; st == JL_OK && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len <= 12 || strcmp(e->d_name + len - 12, ".safetensors") != 0) continue;
        if (n == MAX_SHARDS) st = jl_fail(JL_ERR_FORMAT, "%s: more than %d safetensors files", dir, MAX_SHARDS);
        else if (!(names[n++] = strdup(e->d_name))) st = jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    closedir(d);
    if (st == JL_OK && n == 0) st = jl_fail(JL_ERR_FORMAT, "%s: no *.safetensors file in the model folder", dir);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    for (int i = 0; i < n; i++) {
        if (st == JL_OK) {
            size_t len = strlen(dir) + strlen(names[i]) + 2;
            char *p = malloc(len);
            if (!p) st = jl_fail(JL_ERR_NOMEM, "out of memory");
            else {
                snprintf(p, len, "%s/%s", dir, names[i]);
                s->paths[s->n] = p;
                st = jl_st_open(p, &s->files[s->n]);
                if (st == JL_OK) s->n++;
                else free(p);
            }
        }
        free(names[i]);
    }
    if (st != JL_OK) shards_close(s);
    return st;
}

/* Finds `name` (or "transformer."+name for GPT-2 files saved from GPT2LMHeadModel) in the shards: *found is
 * NULL when absent; a tensor in two shards (or under both names) is an error, not "the first wins". */
static jl_status shards_find(const shard_set *s, const char *name, int gpt2, int *which, const jl_st_tensor **found) {
    char prefixed[160];
    snprintf(prefixed, sizeof prefixed, "transformer.%s", name);
    *found = NULL;
    for (int i = 0; i < s->n; i++) {
        const jl_st_tensor *both[2] = {jl_st_find(s->files[i], name), gpt2 ? jl_st_find(s->files[i], prefixed) : NULL};
        for (int k = 0; k < 2; k++) {
            if (!both[k]) continue;
            if (*found)
                return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s' is also in %s: which one to load is ambiguous",
                               s->paths[i], both[k]->name, s->paths[*which]);
            *found = both[k];
            *which = i;
        }
    }
    return JL_OK;
}

/* n values of a F32/F16/BF16 tensor as floats (the data may be unaligned in files from other writers). */
static jl_status to_f32(const char *path, const jl_st_tensor *s, float *dst, size_t n) {
    const unsigned char *p = s->data;
    switch (s->dtype) {
    case JL_DT_F32: memcpy(dst, p, n * sizeof(float)); break;
    case JL_DT_F16:
    case JL_DT_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = s->dtype == JL_DT_F16 ? jl_f16_to_f32(h) : jl_bf16_to_f32(h);
        }
        break;
    default:
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s' has dtype %s (expected F32, F16 or BF16)", path, s->name,
                       jl_dtype_name(s->dtype));
    }
    return JL_OK;
}

/* Layout tensor t in the shards (exactly once) with the shape config.json implies and a float dtype. */
static jl_status find_one(const shard_set *s, const jl_tensor_info *t, int gpt2, int *which, const jl_st_tensor **src) {
    jl_status st = shards_find(s, t->name, gpt2, which, src);
    if (st != JL_OK) return st;
    if (!*src) return jl_fail(JL_ERR_FORMAT, "%s: missing tensor '%s'", s->paths[0], t->name);
    const char *path = s->paths[*which];
    int64_t rows = t->hf_transposed ? t->shape[1] : t->rows_saved;
    int64_t cols = t->hf_transposed ? t->rows_saved : t->shape[1];
    const jl_st_tensor *f = *src;
    int ok = f->ndim == t->ndim && f->shape[0] == rows && (t->ndim == 1 || f->shape[1] == cols);
    if (!ok)
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s' has shape [%lld%s%lld], expected [%lld, %lld] from config.json",
                       path, f->name, (long long)f->shape[0], f->ndim > 1 ? ", " : "",
                       (long long)(f->ndim > 1 ? f->shape[1] : 0), (long long)rows, (long long)cols);
    if (f->dtype != JL_DT_F32 && f->dtype != JL_DT_F16 && f->dtype != JL_DT_BF16)
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s' has dtype %s (expected F32, F16 or BF16)", path, f->name,
                       jl_dtype_name(f->dtype));
    return JL_OK;
}

/* Every tensor config.json implies, checked in the shards before the model is allocated. */
static jl_status check_layout(const shard_set *s, const char *path, const jl_config *cfg) {
    jl_tensor_info *t;
    int n, which;
    size_t n_params;
    const jl_st_tensor *src;
    jl_status st = jl_model_layout(cfg, &t, &n, &n_params);
    if (st != JL_OK) return jl_fail_context(st, "%s", path);
    for (int i = 0; st == JL_OK && i < n; i++) st = find_one(s, &t[i], cfg->arch == JL_ARCH_GPT2, &which, &src);
    free(t);
    return st;
}

static jl_status load_one(const shard_set *s, jl_model *m, const jl_tensor_info *t) {
    int which = 0, gpt2 = m->cfg.arch == JL_ARCH_GPT2;
    const jl_st_tensor *src;
    jl_status st0 = find_one(s, t, gpt2, &which, &src);
    if (st0 != JL_OK) return st0;
    const char *path = s->paths[which];
    int64_t rows = t->hf_transposed ? t->shape[1] : t->rows_saved;
    int64_t cols = t->hf_transposed ? t->rows_saved : t->shape[1];
    size_t n = (size_t)rows * (size_t)(t->ndim == 2 ? cols : 1);
    float *dst = m->params + t->offset;
    if (!t->hf_transposed) return to_f32(path, src, dst, n);
    float *tmp = malloc(n * sizeof(float));
    if (!tmp) return jl_fail(JL_ERR_NOMEM, "out of memory");
    jl_status st = to_f32(path, src, tmp, n);
    for (int64_t r = 0; st == JL_OK && r < rows; r++)
        for (int64_t c = 0; c < cols; c++) dst[c * rows + r] = tmp[r * cols + c];
    free(tmp);
    return st;
}

/* Tensors HF files carry that we rebuild or do not need: GPT-2's causal-mask buffers, rotary caches, and a
 * tied lm_head saved beside the embedding. */
static int ignorable(const jl_config *c, const char *name) {
    size_t len = strlen(name);
    if (c->arch == JL_ARCH_GPT2 && ((len > 10 && strcmp(name + len - 10, ".attn.bias") == 0) ||
                                    (len > 17 && strcmp(name + len - 17, ".attn.masked_bias") == 0)))
        return 1;
    if (len > 20 && strcmp(name + len - 20, ".rotary_emb.inv_freq") == 0) return 1;
    return c->tie_embeddings && strcmp(name, "lm_head.weight") == 0;
}

static jl_status check_no_strays(const shard_set *s, const jl_model *m) {
    for (int f = 0; f < s->n; f++)
        for (int i = 0; i < jl_st_count(s->files[f]); i++) {
            const char *name = jl_st_at(s->files[f], i)->name;
            const char *bare = strncmp(name, "transformer.", 12) == 0 ? name + 12 : name;
            int known = ignorable(&m->cfg, bare);
            for (int k = 0; !known && k < m->n_tensors; k++) known = strcmp(bare, m->tensors[k].name) == 0;
            if (!known)
                return jl_fail(JL_ERR_FORMAT, "%s: unexpected tensor '%s' for the %s model described by config.json",
                               s->paths[f], name, jl_arch_name(m->cfg.arch));
        }
    return JL_OK;
}

/* ---------------------------------------------------------------- tokenizer, chat template */

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* A special token of tokenizer_config.json: a string or an AddedToken object {"content": ...}; NULL when absent. */
static jl_status config_token(const char *path, json_object *o, const char *key, char **out) {
    json_object *v;
    *out = NULL;
    if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) return JL_OK;
    json_object *content = v;
    if (json_object_is_type(v, json_type_object) && !json_object_object_get_ex(v, "content", &content))
        return jl_fail(JL_ERR_FORMAT, "%s: %s: an object without \"content\"", path, key);
    if (!json_object_is_type(content, json_type_string))
        return jl_fail(JL_ERR_FORMAT, "%s: %s: not a string", path, key);
    return (*out = strdup(json_object_get_string(content))) ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory");
}

/* chat_template: a string, or a list of {"name", "template"} (the one named "default" is kept, else the first);
 * with it, bos_token and eos_token. */
static jl_status read_chat_config(const char *path, json_object *o, jl_checkpoint *ck) {
    json_object *v;
    jl_status st = config_token(path, o, "bos_token", &ck->bos_token);
    if (st == JL_OK) st = config_token(path, o, "eos_token", &ck->eos_token);
    if (st != JL_OK) return st;
    if (!json_object_object_get_ex(o, "chat_template", &v) || json_object_is_type(v, json_type_null)) return JL_OK;
    const char *text = NULL;
    if (json_object_is_type(v, json_type_string)) {
        text = json_object_get_string(v);
    } else if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            json_object *item = json_object_array_get_idx(v, i), *name, *t;
            if (!json_object_is_type(item, json_type_object) || !json_object_object_get_ex(item, "template", &t) ||
                !json_object_is_type(t, json_type_string))
                return jl_fail(JL_ERR_FORMAT, "%s: chat_template[%zu]: not an object with a \"template\" string", path, i);
            int is_default = json_object_object_get_ex(item, "name", &name) && json_object_is_type(name, json_type_string) &&
                             strcmp(json_object_get_string(name), "default") == 0;
            if (!text || is_default) text = json_object_get_string(t);
        }
        if (!text) return jl_fail(JL_ERR_FORMAT, "%s: chat_template: an empty list", path);
    } else {
        return jl_fail(JL_ERR_FORMAT, "%s: chat_template: not a string or a list of named templates", path);
    }
    jl_chat_format *fmt; /* refuse a template we cannot render now, not at the first chat */
    st = jl_chat_format_new(text, ck->bos_token, ck->eos_token, &fmt);
    jl_chat_format_free(fmt);
    if (st != JL_OK) return jl_fail_context(st, "%s: chat_template", path);
    return (ck->chat_template = strdup(text)) ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory");
}

static jl_status read_tokenizer(const char *dir, jl_checkpoint *ck) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (!file_exists(path)) return JL_OK;
    size_t len;
    jl_status st = jl_read_file(path, &ck->tokenizer_json, &len);
    jl_tokenizer *tok = NULL;
    if (st == JL_OK && (st = jl_tokenizer_from_json(ck->tokenizer_json, len, &tok)) != JL_OK)
        jl_fail_context(st, "%s", path);
    jl_tokenizer_free(tok);
    if (st != JL_OK) return st;
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    if (!file_exists(path)) return JL_OK;
    char *text;
    if ((st = jl_read_file(path, &text, &len)) != JL_OK) return st;
    json_object *o = NULL;
    st = hfj_parse(path, text, &o);
    free(text);
    if (st != JL_OK) return st;
    st = read_chat_config(path, o, ck);
    json_object_put(o);
    return st;
}

jl_status jl_import_hf(const char *dir, jl_checkpoint *ck) {
    memset(ck, 0, sizeof *ck);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = NULL;
    size_t len;
    jl_config cfg;
    jl_status st = jl_read_file(path, &text, &len);
    if (st == JL_OK) st = hf_config_parse(path, text, &cfg);
    free(text);
    if (st != JL_OK) return st;
    shard_set shards;
    if ((st = shards_open(dir, &shards)) != JL_OK) return st;
    st = check_layout(&shards, dir, &cfg);
    if (st == JL_OK) st = jl_model_new(&cfg, &ck->model);
    for (int i = 0; st == JL_OK && i < ck->model->n_tensors; i++) st = load_one(&shards, ck->model, &ck->model->tensors[i]);
    if (st == JL_OK) st = check_no_strays(&shards, ck->model);
    if (st == JL_OK) st = jl_model_check_finite(ck->model, dir);
    shards_close(&shards);
    if (st == JL_OK) st = read_tokenizer(dir, ck);
    if (st != JL_OK) jl_checkpoint_free(ck);
    return st;
}
