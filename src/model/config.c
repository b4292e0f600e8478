/* Model configuration: the --depth dial, validation, and JSON for checkpoint metadata. */
#include "jielong/model.h"
#include <json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *jl_arch_name(jl_arch a) { return a == JL_ARCH_GPT2 ? "gpt2" : "llama"; }

jl_status jl_arch_parse(const char *name, jl_arch *out) {
    if (strcmp(name, "llama") == 0) *out = JL_ARCH_LLAMA;
    else if (strcmp(name, "gpt2") == 0) *out = JL_ARCH_GPT2;
    else return jl_fail(JL_ERR_ARG, "unknown arch '%s' (expected llama or gpt2)", name);
    return JL_OK;
}

static int round_up(int x, int m) { return (x + m - 1) / m * m; }

int jl_config_default_hidden(jl_arch arch, int dim) { return arch == JL_ARCH_GPT2 ? 4 * dim : round_up(8 * dim / 3, 64); }

void jl_config_from_depth(jl_config *c, jl_arch arch, int depth, int vocab_size, int max_seq_len) {
    memset(c, 0, sizeof *c);
    c->arch = arch;
    c->vocab_size = vocab_size;
    c->max_seq_len = max_seq_len;
    c->n_layer = depth;
    c->dim = 64 * depth;
    c->n_head = depth;     /* head size 64 */
    c->n_kv_head = depth;
    c->hidden_dim = jl_config_default_hidden(arch, c->dim);
    c->norm_eps = arch == JL_ARCH_GPT2 ? 1e-5f : 1e-6f;
    c->rope_theta = 10000.0f;
    c->tie_embeddings = 1;
}

float jl_config_default_lr(const jl_config *c) {
    /* GPT-2 small's 6e-4 at width 768, growing as 1/sqrt(width) for narrower models, capped. */
    float lr = 6e-4f * sqrtf(768.0f / (float)c->dim);
    return lr > 3e-3f ? 3e-3f : lr;
}

#define CHECK_FIELD(cond, field, ...) \
    do { if (!(cond)) return jl_fail(JL_ERR_ARG, "config field '" field "': " __VA_ARGS__); } while (0)

jl_status jl_config_finish(jl_config *c) {
    CHECK_FIELD(c->arch == JL_ARCH_LLAMA || c->arch == JL_ARCH_GPT2, "arch", "unknown value %d", (int)c->arch);
    CHECK_FIELD(c->vocab_size >= 2 && c->vocab_size <= (1 << 24), "vocab_size", "%d out of range [2..16777216]", c->vocab_size);
    CHECK_FIELD(c->max_seq_len >= 1 && c->max_seq_len <= (1 << 20), "max_seq_len", "%d out of range", c->max_seq_len);
    CHECK_FIELD(c->n_layer >= 1 && c->n_layer <= 1024, "n_layer", "%d out of range [1..1024]", c->n_layer);
    CHECK_FIELD(c->dim >= 1 && c->dim <= 65536, "dim", "%d out of range", c->dim);
    CHECK_FIELD(c->n_head >= 1 && c->dim % c->n_head == 0, "n_head", "%d does not divide dim %d", c->n_head, c->dim);
    CHECK_FIELD(c->n_kv_head >= 1 && c->n_head % c->n_kv_head == 0, "n_kv_head", "%d does not divide n_head %d",
                c->n_kv_head, c->n_head);
    CHECK_FIELD(c->hidden_dim >= 1 && c->hidden_dim <= 1 << 20, "hidden_dim", "%d out of range", c->hidden_dim);
    CHECK_FIELD(c->norm_eps > 0 && c->norm_eps < 1, "norm_eps", "%g out of range (0..1)", (double)c->norm_eps);
    if (c->arch == JL_ARCH_LLAMA) {
        CHECK_FIELD((c->dim / c->n_head) % 2 == 0, "n_head", "head size %d must be even for RoPE", c->dim / c->n_head);
        CHECK_FIELD(c->rope_theta > 0 && isfinite(c->rope_theta), "rope_theta", "%g must be positive and finite",
                    (double)c->rope_theta);
    } else {
        CHECK_FIELD(c->n_kv_head == c->n_head, "n_kv_head", "gpt2 has no grouped-query attention (%d != %d)",
                    c->n_kv_head, c->n_head);
        c->tie_embeddings = 1;
        c->qkv_bias = 0; /* gpt2 has every bias anyway */
    }
    c->qkv_bias = c->qkv_bias ? 1 : 0;
    c->tie_embeddings = c->tie_embeddings ? 1 : 0;
    c->padded_vocab = round_up(c->vocab_size, 64);
    return JL_OK;
}

jl_status jl_config_to_json(const jl_config *c, char **json) {
    json_object *o = json_object_new_object();
    if (!o) return jl_fail(JL_ERR_NOMEM, "out of memory");
    json_object_object_add(o, "arch", json_object_new_string(jl_arch_name(c->arch)));
    json_object_object_add(o, "vocab_size", json_object_new_int(c->vocab_size));
    json_object_object_add(o, "max_seq_len", json_object_new_int(c->max_seq_len));
    json_object_object_add(o, "n_layer", json_object_new_int(c->n_layer));
    json_object_object_add(o, "n_head", json_object_new_int(c->n_head));
    json_object_object_add(o, "n_kv_head", json_object_new_int(c->n_kv_head));
    json_object_object_add(o, "dim", json_object_new_int(c->dim));
    json_object_object_add(o, "hidden_dim", json_object_new_int(c->hidden_dim));
    json_object_object_add(o, "norm_eps", json_object_new_double(c->norm_eps));
    json_object_object_add(o, "rope_theta", json_object_new_double(c->rope_theta));
    json_object_object_add(o, "tie_embeddings", json_object_new_boolean(c->tie_embeddings));
    if (c->qkv_bias) json_object_object_add(o, "qkv_bias", json_object_new_boolean(1));
    *json = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return *json ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory");
}

static jl_status get_int(json_object *o, const char *key, int *dst) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
        return jl_fail(JL_ERR_FORMAT, "config: field '%s' missing or not an integer", key);
    int64_t x = json_object_get_int64(v);
    if (x < INT32_MIN || x > INT32_MAX) return jl_fail(JL_ERR_FORMAT, "config: field '%s' out of range", key);
    *dst = (int)x;
    return JL_OK;
}

static jl_status get_float(json_object *o, const char *key, float *dst) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) ||
        !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
        return jl_fail(JL_ERR_FORMAT, "config: field '%s' missing or not a number", key);
    *dst = (float)json_object_get_double(v);
    return JL_OK;
}

jl_status jl_config_from_json(const char *json, jl_config *c) {
    memset(c, 0, sizeof *c);
    json_object *o = json_tokener_parse(json);
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return jl_fail(JL_ERR_FORMAT, "config: not a JSON object");
    }
    jl_status st = JL_OK;
    json_object *v;
    if (!json_object_object_get_ex(o, "arch", &v) || !json_object_is_type(v, json_type_string))
        st = jl_fail(JL_ERR_FORMAT, "config: field 'arch' missing or not a string");
    else if (jl_arch_parse(json_object_get_string(v), &c->arch) != JL_OK)
        st = jl_fail_context(JL_ERR_FORMAT, "config: field 'arch'");
    if (st == JL_OK) st = get_int(o, "vocab_size", &c->vocab_size);
    if (st == JL_OK) st = get_int(o, "max_seq_len", &c->max_seq_len);
    if (st == JL_OK) st = get_int(o, "n_layer", &c->n_layer);
    if (st == JL_OK) st = get_int(o, "n_head", &c->n_head);
    if (st == JL_OK) st = get_int(o, "n_kv_head", &c->n_kv_head);
    if (st == JL_OK) st = get_int(o, "dim", &c->dim);
    if (st == JL_OK) st = get_int(o, "hidden_dim", &c->hidden_dim);
    if (st == JL_OK) st = get_float(o, "norm_eps", &c->norm_eps);
    if (st == JL_OK) st = get_float(o, "rope_theta", &c->rope_theta);
    if (st == JL_OK) {
        c->tie_embeddings = json_object_object_get_ex(o, "tie_embeddings", &v) ? json_object_get_boolean(v) : 1;
        c->qkv_bias = json_object_object_get_ex(o, "qkv_bias", &v) ? json_object_get_boolean(v) : 0;
    }
    json_object_put(o);
    if (st == JL_OK) st = jl_config_finish(c);
    return st;
}

int jl_config_equal(const jl_config *a, const jl_config *b) {
    return a->arch == b->arch && a->vocab_size == b->vocab_size && a->max_seq_len == b->max_seq_len &&
           a->n_layer == b->n_layer && a->n_head == b->n_head && a->n_kv_head == b->n_kv_head && a->dim == b->dim &&
           a->hidden_dim == b->hidden_dim && a->tie_embeddings == b->tie_embeddings && a->qkv_bias == b->qkv_bias &&
           a->norm_eps == b->norm_eps && a->rope_theta == b->rope_theta;
}
