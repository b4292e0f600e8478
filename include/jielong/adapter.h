/* Parameter-efficient adapters on top of a frozen base model: LoRA and soft prompts (P-tuning v1 style).
 *
 * LoRA: for each targeted projection y = W·x, a pair A (r, in), B (out, r) adds (alpha/r)·B·A·dropout(x).
 * B starts at zero, so a fresh adapter leaves the model's outputs unchanged. Targets (by arch):
 *   llama: q, k, v, o, gate, up, down      gpt2: qkv (c_attn), o (attn.c_proj), fc (c_fc), down (mlp.c_proj)
 *   and the groups "attn" (llama q,k,v,o; gpt2 qkv,o), "mlp" (llama gate,up,down; gpt2 fc,down), "all".
 * Files: safetensors with PEFT names "base_model.model.<module>.lora_A.weight" / ".lora_B.weight" and
 * metadata jielong.adapter = "lora", r, lora_alpha, lora_dropout, target_modules, jielong.base_config and
 * jielong.base_hash (a fingerprint of the base weights): loading onto another base is refused.
 * Dropout masks are a hash of (seed, layer, site, element), so backward regenerates them instead of storing them;
 * one mask per input, shared by the projections that read the same input (q,k,v; gate,up).
 *
 * Soft prompt: n virtual-token embeddings (n, C) that replace the embeddings of the first n positions of every
 * row: callers put n placeholder tokens (any valid id) at the start of each sequence with targets -1. Positions
 * shift by n. Saved as safetensors "prompt_embeddings" (n, C), metadata jielong.adapter = "prompt".
 *
 * Attached adapters are used (unmerged) by jl_model_forward / jl_model_backward; the caller keeps ownership. */
#ifndef JIELONG_ADAPTER_H
#define JIELONG_ADAPTER_H
#include "jielong/model.h"

typedef struct jl_lora jl_lora;
typedef struct jl_prompt jl_prompt;

typedef struct {
    int rank;              /* r ≥ 1 */
    float alpha;           /* scale = alpha / r */
    float dropout;         /* on the adapter input during training, [0, 1) */
    const char *targets;   /* comma list, see above; NULL = "attn" */
} jl_lora_opts;

/* Training state kept inside an adapter training checkpoint (all NULL in a final adapter file). */
typedef struct {
    float *adam_m, *adam_v; /* n each, n = adapter parameters */
    char *train_state;      /* JSON text */
} jl_adapter_state;
void jl_adapter_state_free(jl_adapter_state *s);

/* A fresh adapter for base m: A ~ U(-1/sqrt(in), 1/sqrt(in)) from seed, B = 0. */
jl_status jl_lora_new(const jl_model *m, const jl_lora_opts *o, uint64_t seed, jl_lora **out);
/* Reads an adapter for base m; JL_ERR_ARG when it was made for another base model (config or weights), or when a
 * tensor's shape disagrees with the file's rank. state may be NULL. */
jl_status jl_lora_load(const char *path, const jl_model *m, jl_lora **out, jl_adapter_state *state);
/* Writes it atomically; state (may be NULL) makes it a training checkpoint. */
jl_status jl_lora_save(const jl_lora *lr, const char *path, const jl_adapter_state *state);
/* Folds the adapter into the weights: W += (alpha/r)·B·A. m must be the adapter's base. */
jl_status jl_lora_merge(jl_model *m, const jl_lora *lr);
/* Uses lr (NULL: none) in m's forward/backward, unmerged; reserves scratch for max_tokens = B·T per call. */
jl_status jl_model_attach_lora(jl_model *m, jl_lora *lr, int max_tokens);
size_t jl_lora_num_params(const jl_lora *lr);
const jl_lora_opts *jl_lora_options(const jl_lora *lr); /* targets as normalised in the file */
/* The trainable block and its gradient buffer (allocated on first call; zero). */
float *jl_lora_params(jl_lora *lr);
float *jl_lora_grads(jl_lora *lr);
void jl_lora_free(jl_lora *lr);

jl_status jl_prompt_new(const jl_model *m, int n_virtual, uint64_t seed, jl_prompt **out);
jl_status jl_prompt_load(const char *path, const jl_model *m, jl_prompt **out, jl_adapter_state *state);
jl_status jl_prompt_save(const jl_prompt *p, const char *path, const jl_adapter_state *state);
/* Uses p (NULL: none) in m's forward/backward. Every sequence must then be longer than n_virtual. */
jl_status jl_model_attach_prompt(jl_model *m, jl_prompt *p);
int jl_prompt_length(const jl_prompt *p);
size_t jl_prompt_num_params(const jl_prompt *p);
float *jl_prompt_params(jl_prompt *p);
float *jl_prompt_grads(jl_prompt *p);
void jl_prompt_free(jl_prompt *p);

/* Fingerprint of a model's weights (FNV-1a over the parameter bytes), as stored in adapter files. */
uint64_t jl_model_weights_hash(const jl_model *m);

#endif
