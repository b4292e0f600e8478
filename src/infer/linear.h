/* One linear layer of the inference engine: y = W·x + b with W stored (out, in) as in jl_model.
 * Every weight the session uses goes through these two functions, so another weight format (quantised
 * blocks, an unmerged LoRA pair) only adds a case here. */
#ifndef JL_INFER_LINEAR_H
#define JL_INFER_LINEAR_H
#include "infer/quant.h"

typedef struct {
    const float *w; /* (out, in), fp32; unused when q is set */
    const float *b; /* (out) or NULL */
    int in, out;
    const jl_qmatrix *q; /* quantised weight (out, in), or NULL for fp32 */
    void *xq;            /* with q: scratch for the activations as q8_0 (jl_qmatmul_scratch_bytes(n, in)) */
    const uint16_t *w16; /* a bf16 copy of w for batched bf16 products (jl_batch_set_precision), or NULL */
} jl_linear;

/* Quantised weights go through jl_qmatmul (integer dot products against x quantised to q8_0).
 * Decode: y(out) = W·x(in) + b. Parallel over output rows (OpenMP); the kernel is chosen by
 * jl_set_matvec_kernel (ours or cblas_sgemv). */
void jl_linear_vec(const jl_linear *L, const float *x, float *y);
/* Rows [r0, r1) of y = W·x + b (+ y when accumulate), on the calling thread with no OpenMP of its own: one
 * thread's share of a decode step run inside one parallel region. Row values equal jl_linear_vec's when r0 is a
 * multiple of 4 (fp32; rows go four at a time) or of 16 (quantised). xq: this thread's own scratch
 * (jl_qmatmul_scratch_bytes(1, in)) for quantised weights, else unused. */
void jl_linear_vec_rows(const jl_linear *L, const float *x, float *y, void *xq, int r0, int r1, int accumulate);
/* Prefill: y(n, out) = x(n, in)·Wᵀ + b (cblas_sgemm). */
void jl_linear_mat(const jl_linear *L, const float *x, float *y, int n);

/* The two matvec kernels, callable directly (benchmark and tests). */
void jl_matvec_own(float *y, const float *w, const float *x, const float *b, int in, int out);
void jl_matvec_blas(float *y, const float *w, const float *x, const float *b, int in, int out);
/* Rows [r0, r1) of jl_matvec_own (+ y when accumulate), serial. */
void jl_matvec_rows(float *y, const float *w, const float *x, const float *b, int in, int out, int r0, int r1,
                    int accumulate);

#endif
