/* Linear layer: out = inp · wᵀ + bias, with the weight stored (OC, C) as in PyTorch / llm.c. The products go
 * to oneDNN's matmul (fp32, or bf16 inputs with fp32 accumulation: the precision set by
 * jl_matmul_set_precision), and to OpenBLAS when oneDNN cannot run one; the bias gradient is our own loop. */
#include "core/kernels.h"
#include "core/dnnl_mm.h"
#include "core/parallel.h"
#include <cblas.h>
#include <stdatomic.h>
#include <string.h>

static _Atomic int current_precision = JL_PREC_FP32;

/* The calling thread's bf16 copy of a weight block (jl_matmul_set_bf16_weights), or none. */
static _Thread_local const float *shadow_base;
static _Thread_local const uint16_t *shadow_copy;
static _Thread_local size_t shadow_n;

void jl_matmul_set_bf16_weights(const float *base, size_t n, const uint16_t *copy) {
    shadow_base = copy ? base : NULL;
    shadow_copy = copy;
    shadow_n = copy ? n : 0;
}

/* The bf16 copy of w[0..n) when the registered block holds all of it, else NULL. */
static const uint16_t *shadow_of(const float *w, size_t n) {
    if (!shadow_copy || w < shadow_base || w >= shadow_base + shadow_n) return NULL;
    const size_t at = (size_t)(w - shadow_base);
    return n <= shadow_n - at ? shadow_copy + at : NULL;
}

jl_precision jl_matmul_set_precision(jl_precision p) { return (jl_precision)atomic_exchange(&current_precision, (int)p); }
jl_precision jl_matmul_precision(void) { return (jl_precision)atomic_load(&current_precision); }

int jl_cpu_has_bf16(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") > 0;
#else
    return 0;
#endif
}

jl_precision jl_precision_default(void) { return jl_cpu_has_bf16() ? JL_PREC_BF16 : JL_PREC_FP32; }
const char *jl_precision_name(jl_precision p) { return p == JL_PREC_BF16 ? "bf16" : "fp32"; }

int jl_precision_parse(const char *s, jl_precision *out) {
    if (!s) return 1;
    if (!strcmp(s, "fp32")) *out = JL_PREC_FP32;
    else if (!strcmp(s, "bf16")) *out = JL_PREC_BF16;
    else return 1;
    return 0;
}

const char *jl_matmul_impl(jl_precision p) { return jl_dnnl_impl(p); }

/* C(M,N) (+)= A·B through cblas_sgemm (transposes as given): the stand-in when oneDNN cannot run a product. */
static void blas_product(const jl_mm_op *op, CBLAS_TRANSPOSE ta, int lda, CBLAS_TRANSPOSE tb, int ldb) {
    cblas_sgemm(CblasRowMajor, ta, tb, op->M, op->N, op->K, 1.0f, op->a, lda, op->b, ldb,
                op->accumulate ? 1.0f : 0.0f, op->c, op->ldc);
    if (!op->bias) return;
    for (int m = 0; m < op->M; m++) {
        float *row = op->c + (size_t)m * op->ldc;
#pragma omp simd
        for (int n = 0; n < op->N; n++) row[n] += op->bias[n];
    }
}

/* C(M,N) (+)= A·B through oneDNN in the current precision, else cblas_sgemm. */
static void product(const jl_mm_op *op, CBLAS_TRANSPOSE ta, int lda, CBLAS_TRANSPOSE tb, int ldb) {
    if (jl_dnnl_matmul(op, jl_matmul_precision()) == 0) return;
    blas_product(op, ta, lda, tb, ldb);
}

void jl_matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC) {
    if (N <= 0 || OC <= 0) return;
    if (C <= 0) { /* BLAS would reject (and print about) a leading dimension of 0 */
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] = bias ? bias[o] : 0.0f;
        return;
    }
    /* A = inp (N,C), B = wᵀ (C,OC) */
    jl_mm_op op = {.M = N, .N = OC, .K = C, .a = inp, .a_rs = C, .a_cs = 1, .b = w, .b_rs = 1, .b_cs = C,
                   .c = out, .ldc = OC, .bias = bias, .b16 = shadow_of(w, (size_t)OC * C)};
    product(&op, CblasNoTrans, C, CblasTrans, C);
}

/* dbias(OC) += Σₙ dout(n, ·). Threads own disjoint column blocks and sum rows in order, so the result
 * does not depend on the thread count. */
static void bias_backward(float *dbias, const float *dout, int N, int OC) {
    enum { COLS = 64 };
    int nblocks = (OC + COLS - 1) / COLS;
#pragma omp parallel for schedule(static) if (JL_WORTH_THREADS((size_t)N * OC))
    for (int blk = 0; blk < nblocks; blk++) {
        int o0 = blk * COLS, o1 = o0 + COLS < OC ? o0 + COLS : OC;
        float acc[COLS];
        for (int o = o0; o < o1; o++) acc[o - o0] = 0.0f;
        for (int n = 0; n < N; n++) {
            const float *row = dout + (size_t)n * OC;
#pragma omp simd
            for (int o = o0; o < o1; o++) acc[o - o0] += row[o];
        }
        for (int o = o0; o < o1; o++) dbias[o] += acc[o - o0];
    }
}

void jl_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                        const float *w, int N, int C, int OC) {
    if (N <= 0 || OC <= 0 || C <= 0) return;
    jl_mm_op ops[2];
    CBLAS_TRANSPOSE ta[2], tb[2];
    int lda[2], ldb[2], n = 0;
    if (dinp) { /* dinp(N,C) += dout(N,OC) · w(OC,C) */
        ops[n] = (jl_mm_op){.M = N, .N = C, .K = OC, .a = dout, .a_rs = OC, .a_cs = 1, .b = w, .b_rs = C, .b_cs = 1,
                            .c = dinp, .ldc = C, .accumulate = 1, .b16 = shadow_of(w, (size_t)OC * C)};
        ta[n] = CblasNoTrans, lda[n] = OC, tb[n] = CblasNoTrans, ldb[n] = C, n++;
    }
    if (dw) { /* dw(OC,C) += doutᵀ(OC,N) · inp(N,C) */
        ops[n] = (jl_mm_op){.M = OC, .N = C, .K = N, .a = dout, .a_rs = 1, .a_cs = OC, .b = inp, .b_rs = C,
                            .b_cs = 1, .c = dw, .ldc = C, .accumulate = 1};
        ta[n] = CblasTrans, lda[n] = OC, tb[n] = CblasNoTrans, ldb[n] = C, n++;
    }
    /* one workspace for both: in bf16, dout is converted once for the two */
    for (int i = jl_dnnl_matmul_seq(ops, n, jl_matmul_precision()); i < n; i++)
        blas_product(&ops[i], ta[i], lda[i], tb[i], ldb[i]);
    if (dbias) bias_backward(dbias, dout, N, OC);
}
