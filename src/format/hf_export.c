/* jielong checkpoints → Hugging Face model folders (config.json, model.safetensors, tokenizer files). */
#include "core/half.h"
#include "io/fileio.h"
#include "jielong/convert.h"
#include "jielong/dataset.h"
#include "jielong/tokenizer.h"
#include "model/model.h"
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_int(json_object *o, const char *k, int v) { json_object_object_add(o, k, json_object_new_int(v)); }
static void add_str(json_object *o, const char *k, const char *v) { json_object_object_add(o, k, json_object_new_string(v)); }
static void add_num(json_object *o, const char *k, float v) { json_object_object_add(o, k, json_object_new_double(v)); }
static void add_bool(json_object *o, const char *k, int v) { json_object_object_add(o, k, json_object_new_boolean(v)); }

jl_status jl_hf_config_json(const jl_config *c, char **json) {
    json_object *o = json_object_new_object(), *archs = json_object_new_array();
    if (!o || !archs) {
        json_object_put(o);
        json_object_put(archs);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    if (c->arch == JL_ARCH_GPT2) {
        json_object_array_add(archs, json_object_new_string("GPT2LMHeadModel"));
        json_object_object_add(o, "architectures", archs);
        add_str(o, "model_type", "gpt2");
        add_int(o, "vocab_size", c->vocab_size);
        add_int(o, "n_positions", c->max_seq_len);
        add_int(o, "n_ctx", c->max_seq_len);
        add_int(o, "n_embd", c->dim);
        add_int(o, "n_layer", c->n_layer);
        add_int(o, "n_head", c->n_head);
        add_int(o, "n_inner", c->hidden_dim);
        add_num(o, "layer_norm_epsilon", c->norm_eps);
        add_str(o, "activation_function", "gelu_new");
        add_bool(o, "tie_word_embeddings", 1);
    } else {
        /* Qwen2 is Llama + q/k/v biases, so a model with those biases says qwen2 */
        json_object_array_add(archs, json_object_new_string(c->qkv_bias ? "Qwen2ForCausalLM" : "LlamaForCausalLM"));
        json_object_object_add(o, "architectures", archs);
        add_str(o, "model_type", c->qkv_bias ? "qwen2" : "llama");
        add_int(o, "vocab_size", c->vocab_size);
        add_int(o, "hidden_size", c->dim);
        add_int(o, "intermediate_size", c->hidden_dim);
        add_int(o, "num_hidden_layers", c->n_layer);
        add_int(o, "num_attention_heads", c->n_head);
        add_int(o, "num_key_value_heads", c->n_kv_head);
        add_int(o, "max_position_embeddings", c->max_seq_len);
        add_num(o, "rms_norm_eps", c->norm_eps);
        add_num(o, "rope_theta", c->rope_theta);
        add_str(o, "hidden_act", "silu");
        add_bool(o, "tie_word_embeddings", c->tie_embeddings);
        if (!c->qkv_bias) add_bool(o, "attention_bias", 0);
    }
    add_str(o, "torch_dtype", "float32");
    *json = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return *json ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory");
}

/* One tensor in the file's layout and dtype (malloc'd): transposed for GPT-2 Conv1D, converted for F16/BF16. */
static void *tensor_bytes(const jl_model *m, const jl_tensor_info *t, jl_dtype dt, int64_t shape[2]) {
    int64_t rows = t->rows_saved, cols = t->ndim == 2 ? t->shape[1] : 1;
    size_t n = (size_t)rows * (size_t)cols;
    const float *src = m->params + t->offset;
    void *out = malloc(n * jl_dtype_size(dt) + 1);
    if (!out) return NULL;
    shape[0] = t->hf_transposed ? cols : rows;
    shape[1] = t->hf_transposed ? rows : cols;
    for (size_t i = 0; i < n; i++) {
        size_t j = t->hf_transposed ? (i % (size_t)rows) * (size_t)cols + i / (size_t)rows : i; /* out i ← src j */
        float v = src[j];
        if (dt == JL_DT_F32) ((float *)out)[i] = v;
        else ((uint16_t *)out)[i] = dt == JL_DT_F16 ? jl_f32_to_f16(v) : jl_f32_to_bf16(v);
    }
    return out;
}

static jl_status write_model(const jl_checkpoint *ck, const char *path, jl_dtype dt) {
    const jl_model *m = ck->model;
    jl_st_writer *w = jl_st_writer_new();
    void **bufs = calloc((size_t)m->n_tensors, sizeof(void *));
    char *config_json = NULL;
    jl_status st = w && bufs ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory");
    if (st == JL_OK) st = jl_st_add_meta(w, "format", "pt");
    if (st == JL_OK) st = jl_config_to_json(&m->cfg, &config_json);
    if (st == JL_OK) st = jl_st_add_meta(w, "jielong.config", config_json);
    for (int i = 0; st == JL_OK && i < m->n_tensors; i++) {
        int64_t shape[2];
        bufs[i] = tensor_bytes(m, &m->tensors[i], dt, shape);
        if (!bufs[i]) st = jl_fail(JL_ERR_NOMEM, "out of memory");
        else st = jl_st_add(w, m->tensors[i].name, dt, m->tensors[i].ndim, shape, bufs[i]);
    }
    if (st == JL_OK) st = jl_st_write(w, path);
    for (int i = 0; bufs && i < m->n_tensors; i++) free(bufs[i]);
    free(bufs);
    free(config_json);
    jl_st_writer_free(w);
    return st;
}

static jl_status write_text(const char *dir, const char *name, const char *text) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return jl_write_file_atomic(path, text, strlen(text));
}

/* tokenizer_config.json and generation_config.json: the chat template (the model's own, else ours as Jinja) and
 * the tokens that end an answer. Ours end with <|end|>, so that is the eos HF tools stop at; generation also stops
 * at <|eos|>. */
static jl_status write_tokenizer_config(const jl_checkpoint *ck, const char *dir) {
    jl_tokenizer *tok = NULL;
    jl_status st = jl_tokenizer_from_json(ck->tokenizer_json, strlen(ck->tokenizer_json), &tok);
    if (st != JL_OK) return st;
    int32_t bos = jl_tokenizer_bos(tok), eos = jl_tokenizer_eos(tok),
            end = jl_tokenizer_special(tok, "<|end|>");
    jl_tokenizer_free(tok);
    json_object *o = json_object_new_object(), *g = json_object_new_object();
    if (!o || !g) {
        json_object_put(o);
        json_object_put(g);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    add_str(o, "tokenizer_class", "PreTrainedTokenizerFast");
    if (bos >= 0) add_str(o, "bos_token", "<|bos|>");
    if (end >= 0 || eos >= 0) add_str(o, "eos_token", end >= 0 ? "<|end|>" : "<|eos|>");
    if (ck->chat_template || end >= 0) add_str(o, "chat_template", ck->chat_template ? ck->chat_template : jl_chat_template_jinja());
    if (bos >= 0) json_object_object_add(g, "bos_token_id", json_object_new_int(bos));
    json_object *stops = json_object_new_array();
    if (end >= 0) json_object_array_add(stops, json_object_new_int(end));
    if (eos >= 0) json_object_array_add(stops, json_object_new_int(eos));
    json_object_object_add(g, "eos_token_id", stops);
    const int flags = JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE;
    st = write_text(dir, "tokenizer_config.json", json_object_to_json_string_ext(o, flags));
    if (st == JL_OK) st = write_text(dir, "generation_config.json", json_object_to_json_string_ext(g, flags));
    json_object_put(o);
    json_object_put(g);
    return st;
}

jl_status jl_export_hf(const jl_checkpoint *ck, const char *dir, jl_dtype dt) {
    if (dt != JL_DT_F32 && dt != JL_DT_F16 && dt != JL_DT_BF16)
        return jl_fail(JL_ERR_ARG, "safetensors export: dtype %s not supported (F32, F16, BF16)", jl_dtype_name(dt));
    jl_status st = jl_model_require_params(ck->model, "safetensors export");
    if (st == JL_OK) st = jl_mkdir_p(dir);
    char *config = NULL, path[4096];
    if (st == JL_OK) st = jl_hf_config_json(&ck->model->cfg, &config);
    if (st == JL_OK) st = write_text(dir, "config.json", config);
    free(config);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (st == JL_OK) st = write_model(ck, path, dt);
    if (st == JL_OK && ck->tokenizer_json) st = write_text(dir, "tokenizer.json", ck->tokenizer_json);
    if (st == JL_OK && ck->tokenizer_json) st = write_tokenizer_config(ck, dir);
    return st;
}
