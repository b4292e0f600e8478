/* The decoder-only Transformer: configuration (with the --depth dial) and the model handle. */
#ifndef JIELONG_MODEL_H
#define JIELONG_MODEL_H
#include "jielong/common.h"

typedef enum {
    JL_ARCH_LLAMA = 0, /* RMSNorm, RoPE, SwiGLU, grouped-query attention, no biases */
    JL_ARCH_GPT2 = 1,  /* LayerNorm with bias, learned positions, GELU(tanh), biases, tied embeddings */
} jl_arch;

typedef struct {
    jl_arch arch;
    int vocab_size;     /* tokens the tokenizer can produce */
    int padded_vocab;   /* rows allocated for embeddings / logits: vocab_size rounded up to 64 */
    int max_seq_len;    /* context length */
    int n_layer;
    int n_head;
    int n_kv_head;      /* n_head for multi-head attention; a divisor of n_head for grouped-query */
    int dim;            /* model width; head size = dim / n_head */
    int hidden_dim;     /* MLP inner width */
    float norm_eps;
    float rope_theta;   /* llama only */
    int tie_embeddings; /* lm head shares the token embedding (always for gpt2) */
    int qkv_bias;       /* llama only: q,k,v projections have biases (Qwen2); gpt2 always has all biases */
} jl_config;

/* Fills every field from depth N: width 64·N, one head per 64 channels, kv heads = heads, MLP 4·width (gpt2) or
 * 8/3·width rounded up to 64 (llama); the caller may override any field afterwards, then call jl_config_finish. */
void jl_config_from_depth(jl_config *c, jl_arch arch, int depth, int vocab_size, int max_seq_len);
/* Derives padded_vocab and checks every field; the error names the offending field. */
jl_status jl_config_finish(jl_config *c);
/* Learning-rate and warmup defaults that go with a width (the other half of the --depth dial). */
float jl_config_default_lr(const jl_config *c);
/* The MLP width of an arch at width dim: 4·dim (gpt2), 8·dim/3 rounded up to 64 (llama). */
int jl_config_default_hidden(jl_arch arch, int dim);
/* JSON text of the config (malloc'd) and back; used in checkpoint metadata. */
jl_status jl_config_to_json(const jl_config *c, char **json);
jl_status jl_config_from_json(const char *json, jl_config *c);
const char *jl_arch_name(jl_arch a);
jl_status jl_arch_parse(const char *name, jl_arch *out);
/* 1 if both configs describe the same parameter shapes. */
int jl_config_equal(const jl_config *a, const jl_config *b);

typedef struct jl_model jl_model;

/* Allocates parameters (one block) for the config; weights are zero until jl_model_init or a load. */
jl_status jl_model_new(const jl_config *c, jl_model **out);
/* Deterministic initialisation from a seed: N(0, 0.02), residual projections scaled by 1/sqrt(2·n_layer),
 * norms 1, biases 0. */
void jl_model_init(jl_model *m, uint64_t seed);
const jl_config *jl_model_config(const jl_model *m);
size_t jl_model_num_params(const jl_model *m);
void jl_model_free(jl_model *m);

#endif
