/* Matrix products through oneDNN's matmul primitive (JIT-compiled for the CPU's features: AVX-512,
 * AVX512-BF16, AMX), in fp32 or in bf16 with fp32 accumulation and output.
 * C(M,N) (+)= A(M,K)·B(K,N) [+ bias(N)], A and B fp32 given by element strides; in bf16 they are rounded to
 * bf16 (nearest even) into scratch the module keeps, unless the caller hands a bf16 copy already made (a16/b16:
 * the trainer's copy of the weights, made once a step). Thread-safe: a caller takes one of a few workspaces
 * (scratch, stream, a small cache of primitives) for the duration of a call; a training loop reuses the same
 * one, so after the first step nothing is allocated. */
#ifndef JL_CORE_DNNL_MM_H
#define JL_CORE_DNNL_MM_H
#include "core/kernels.h"

typedef struct {
    int M, N, K;
    const float *a; long a_rs, a_cs; /* A(m,k) = a[m·a_rs + k·a_cs] */
    const float *b; long b_rs, b_cs; /* B(k,n) = b[k·b_rs + n·b_cs] */
    float *c; int ldc;               /* C row-major */
    const float *bias;               /* (N) or NULL */
    int accumulate;                  /* C += A·B instead of C = A·B */
    const uint16_t *a16, *b16;       /* bf16 copies of a / b (same strides), used in bf16 instead of converting; or NULL */
} jl_mm_op;

/* 0 on success; non-zero when oneDNN could not run the product (the caller then uses BLAS). */
int jl_dnnl_matmul(const jl_mm_op *op, jl_precision prec);
/* ops[0..n) in order on one workspace; in bf16 an A operand with the same array and strides as ops[0]'s (the
 * output gradient that both backward products read) is converted once. Returns how many ran: the caller runs
 * ops[returned..n) some other way. */
int jl_dnnl_matmul_seq(const jl_mm_op *ops, int n, jl_precision prec);
/* The implementation oneDNN chose for a 1024×768×2304 product in that precision ("brg:avx512_core_bf16"), or
 * "unavailable". */
const char *jl_dnnl_impl(jl_precision prec);
/* Frees the workspaces (also registered with atexit). */
void jl_dnnl_release(void);
#endif
