/* The numeric kernels of the transformer, each a forward/backward pair (llm.c style).
 * All fp32, row-major. Shapes in comments: N = B·T rows, C channels, OC output channels.
 * Backward functions ACCUMULATE (+=) into every gradient buffer they are given, so residual
 * branches and shared weights (tied embeddings) need no extra adds; pass NULL to skip a gradient
 * (a frozen weight, or the input of the first layer). Parallel with OpenMP; results are
 * deterministic for a given thread count. */
#ifndef JL_CORE_KERNELS_H
#define JL_CORE_KERNELS_H
#include <stddef.h>
#include <stdint.h>

/* The precision of the matrix products (jl_matmul_*): fp32, or bf16 inputs (rounded to nearest even) with
 * fp32 accumulation and fp32 outputs; weights and gradients stay fp32 (the master copy). Process-wide; the
 * default is fp32. Set returns the previous setting. bf16 is fast only where the CPU has bf16 dot products
 * (jl_cpu_has_bf16: AVX512-BF16; AMX-BF16 CPUs have it too); jl_precision_default picks bf16 there. */
typedef enum { JL_PREC_FP32 = 0, JL_PREC_BF16 = 1 } jl_precision;
jl_precision jl_matmul_set_precision(jl_precision p);
jl_precision jl_matmul_precision(void);
int jl_cpu_has_bf16(void);
jl_precision jl_precision_default(void);
const char *jl_precision_name(jl_precision p);
/* "fp32" or "bf16" into *out; non-zero for anything else. */
int jl_precision_parse(const char *s, jl_precision *out);
/* While set (copy not NULL), bf16 products on the calling thread whose weight lies in base[0..n) read it from
 * copy (bf16 of base, same layout) instead of converting it each time: the trainer makes the copy once a step
 * and clears it after (NULL). The caller keeps the copy equal to bf16(base) while it is set. */
void jl_matmul_set_bf16_weights(const float *base, size_t n, const uint16_t *copy);
/* dst[i] = bf16(src[i]), nearest even (AVX512-BF16 where the CPU has it), split across threads when large. */
void jl_to_bf16(const float *src, uint16_t *dst, size_t n);
/* The kernel that runs a large product in that precision (oneDNN's implementation name), for reports. */
const char *jl_matmul_impl(jl_precision p);

/* out(N,OC) = inp(N,C) · w(OC,C)ᵀ + bias(OC); bias may be NULL. (oneDNN matmul; cblas_sgemm as fallback) */
void jl_matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC);
/* dinp(N,C) += dout(N,OC)·w;  dw(OC,C) += doutᵀ·inp;  dbias(OC) += Σₙ dout. Each may be NULL. */
void jl_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                        const float *w, int N, int C, int OC);

/* out(N,C) = wte[tokens[n]]  (wte(V,C)) */
void jl_embedding_forward(float *out, const int32_t *tokens, const float *wte, int N, int C);
void jl_embedding_backward(float *dwte, const float *dout, const int32_t *tokens, int N, int C);
/* Learned positions (GPT-2): x(B,T,C) += wpe[pos0 + t]. */
void jl_posemb_forward(float *x, const float *wpe, int B, int T, int C, int pos0);
void jl_posemb_backward(float *dwpe, const float *dx, int B, int T, int C, int pos0);
/* Learned positions of packed rows: x[b, t] += wpe[t − seg_start[b·T + t]] (NULL: wpe[t]). */
void jl_posemb_forward_seg(float *x, const float *wpe, int B, int T, int C, const int32_t *seg_start);
void jl_posemb_backward_seg(float *dwpe, const float *dx, int B, int T, int C, const int32_t *seg_start);

/* RMSNorm: out = inp / rms(inp) · weight; rstd(N) saved for backward. */
void jl_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N, int C, float eps);
void jl_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                         const float *rstd, int N, int C);
/* LayerNorm with affine weight and bias; mean(N), rstd(N) saved for backward. */
void jl_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                          const float *bias, int N, int C, float eps);
void jl_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                           const float *weight, const float *mean, const float *rstd, int N, int C);

/* Rotary position embedding, Hugging Face "rotate_half" convention: inside each head of size hs, element i
 * pairs with element i + hs/2, rotated by angle pos · theta^(-2i/hs), i < hs/2.
 * table(max_T, hs) holds cos in [0, hs/2) and sin in [hs/2, hs) for each position. */
void jl_rope_table(float *table, int max_T, int hs, float theta);
/* In place on x, viewed as (B, T, nheads, hs) where consecutive tokens are `stride` floats apart
 * (so q or k inside a packed qkv buffer can be rotated directly); positions pos0 .. pos0+T-1. */
void jl_rope_forward(float *x, const float *table, int B, int T, int nheads, int hs, int stride, int pos0);
/* The transpose (rotation by -angle), in place on the gradient. */
void jl_rope_backward(float *dx, const float *table, int B, int T, int nheads, int hs, int stride, int pos0);
/* The same with the position of token t of row b = t − seg_start[b·T + t] (packed rows: positions restart in
 * each segment; see jl_attention_forward_seg). seg_start == NULL: positions 0 .. T-1. */
void jl_rope_forward_seg(float *x, const float *table, int B, int T, int nheads, int hs, int stride,
                         const int32_t *seg_start);
void jl_rope_backward_seg(float *dx, const float *table, int B, int T, int nheads, int hs, int stride,
                          const int32_t *seg_start);

/* Causal self-attention with grouped-query heads, scale 1/sqrt(hs).
 * qkv(B, T, (nh + 2·nkv)·hs): per token, nh query heads, then nkv key heads, then nkv value heads;
 * query head h uses kv head h / (nh / nkv).
 * out(B, T, nh·hs); att(B, nh, T, T) keeps the softmax probabilities (upper triangle zero) for backward. */
void jl_attention_forward(float *out, float *att, const float *qkv, int B, int T, int nh, int nkv, int hs);
/* dqkv(B,T,(nh+2nkv)·hs) += ...;  datt(B,nh,T,T) is scratch (overwritten). */
void jl_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att,
                           int B, int T, int nh, int nkv, int hs);
/* Packed rows: several sequences per row. seg_start(B,T) gives, per token, the index inside its row of the
 * first token of its sequence (its segment): seg_start[t] == t opens a segment, else seg_start[t] ==
 * seg_start[t-1]. Token t attends only to [seg_start[t], t] (block-diagonal causal); att is zero elsewhere.
 * seg_start == NULL is plain causal attention (one segment per row), exactly the functions above. */
void jl_attention_forward_seg(float *out, float *att, const float *qkv, int B, int T, int nh, int nkv, int hs,
                              const int32_t *seg_start);
void jl_attention_backward_seg(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att,
                               int B, int T, int nh, int nkv, int hs, const int32_t *seg_start);
/* 1 if seg_start(B,T) follows the rule above in every row, else 0 (and *bad = the first flat index off). */
int jl_segments_valid(const int32_t *seg_start, int B, int T, long *bad);

/* SwiGLU: gate_up(N, 2H) holds [gate | up] per row; out(N,H) = silu(gate) · up. */
void jl_swiglu_forward(float *out, const float *gate_up, int N, int H);
void jl_swiglu_backward(float *dgate_up, const float *dout, const float *gate_up, int N, int H);
/* GELU, tanh approximation (GPT-2). */
void jl_gelu_forward(float *out, const float *inp, size_t n);
void jl_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n);

/* out = a + b (out may alias a or b). */
void jl_residual_forward(float *out, const float *a, const float *b, size_t n);

/* Fused softmax + cross-entropy. logits(N, Vp): only the first V columns are real (the rest is padding).
 * targets[n] < 0 is ignored: loss 0, gradient 0. losses(N) gets -log p(target) (may be NULL).
 * If dlogits is not NULL it receives (softmax - onehot) · dscale for real columns and 0 for padding;
 * dlogits may alias logits (the gradient then overwrites the logits in place).
 * Returns the sum of the losses of the counted (non-ignored) rows. */
double jl_crossentropy_forward_backward(float *losses, float *dlogits, const float *logits,
                                        const int32_t *targets, int N, int V, int Vp, float dscale);

/* In-place numerically stable softmax of one row of n values. */
void jl_softmax_inplace(float *x, int n);

/* AdamW step over n parameters with decoupled weight decay (p -= lr·wd·p); t ≥ 1 is the step count for
 * bias correction. g is read only. */
void jl_adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2,
                     float eps, float weight_decay, int t);
/* The same step on the gradient gscale·g (the clipping factor applied as it is read: no pass of its own);
 * bit for bit what jl_scale_inplace(g, gscale) followed by jl_adamw_update gives. */
void jl_adamw_update_scaled(float *p, const float *g, float gscale, float *m, float *v, size_t n, float lr,
                            float beta1, float beta2, float eps, float weight_decay, int t);

/* Σ x² in double (for the global gradient norm). */
double jl_sumsq(const float *x, size_t n);
/* x *= s */
void jl_scale_inplace(float *x, float s, size_t n);

#endif
