/* Internal side of the adapters (include/jielong/adapter.h): what jl_model_forward/backward call through the
 * hooks of model/model.h (set when an adapter is attached), and the KV-cache session calls directly. */
#ifndef JL_MODEL_LORA_H
#define JL_MODEL_LORA_H
#include "jielong/adapter.h"
#include "model/model.h"
#include <stdint.h>

/* out(N, ld) columns of each targeted projection writing to `kind` += scale·B·A·dropout(in(N, in_dim)). */
void jl_lora_forward(jl_lora *lr, int layer, jl_lora_out kind, float *out, int ld, const float *in, int N);
/* From d out(N, ld): accumulates dA, dB into the adapter's gradients and din(N, in_dim) += d in.
 * Uses what the last forward of this layer and kind saved. */
void jl_lora_backward(jl_lora *lr, int layer, jl_lora_out kind, float *din, const float *dout, int ld,
                      const float *in, int N);
/* Dropout is on between these calls (the trainer wraps each micro-batch), with masks drawn from seed. */
void jl_lora_dropout_begin(jl_lora *lr, uint64_t seed);
void jl_lora_dropout_end(jl_lora *lr);

/* res(B,T,C): the first n rows of every sequence become the virtual-token embeddings. */
void jl_prompt_forward(const jl_prompt *p, float *res, int B, int T);
/* Inference with a KV cache: rows res(n, C) hold positions pos0..pos0+n-1 of one sequence; those before the
 * prompt's length become its virtual-token embeddings. */
void jl_prompt_forward_at(const jl_prompt *p, float *res, int pos0, int n);
/* d prompt += Σ_b dres[b, t < n]; those rows of dres are then zeroed (no token embedding gets them). */
void jl_prompt_backward(jl_prompt *p, float *dres, int B, int T);
/* Packed rows (seg_start(B,T), see jl_attention_forward_seg): every segment begins with the virtual tokens,
 * i.e. the tokens at position t − seg_start[t] < n of their segment get (forward) or give (backward) them. */
void jl_prompt_forward_seg(const jl_prompt *p, float *res, int B, int T, const int32_t *seg_start);
void jl_prompt_backward_seg(jl_prompt *p, float *dres, int B, int T, const int32_t *seg_start);

#endif
