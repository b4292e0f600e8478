/* Yardsticks measured in the same process: the machine's peak arithmetic rate (a probe loop) and the
 * throughput of the matrix products the kernels use. MFU is reported against the probe's peak for the
 * precision in use, so it means the same on every machine and cannot exceed 1 (it is clipped if a later
 * moment runs faster than the probe saw). */
#ifndef JL_CORE_PERF_H
#define JL_CORE_PERF_H
#include "core/kernels.h"

/* Peak GFLOP/s of all OpenMP threads together, each running a loop of independent 512-bit multiply-adds:
 * vfmadd231ps for fp32 (32 FLOP an instruction), vdpbf16ps for bf16 (64 FLOP). Best of many ~0.3 ms runs per
 * thread, all threads at once, so a loaded machine's descheduled moments do not count. bf16 is 0 where the CPU
 * has no bf16 dot products; fp32 falls back to a 256-bit FMA loop without AVX-512, and to 0 without FMA. */
typedef struct {
    double fp32, bf16;
    int threads;
} jl_peak;
jl_peak jl_peak_probe(void);
/* The peak for a precision (GFLOP/s, ≤ 0 when the CPU has none). */
double jl_peak_for(const jl_peak *p, jl_precision prec);
/* "MFU": achieved ÷ peak, clipped to [0, 1]; 0 when there is no peak. */
double jl_mfu(double flops_per_s, double peak_gflops);

/* Best-of-n GFLOP/s of a 1024×768×2304 product (the shape of GPT-2's qkv projection over 1024 tokens), out =
 * a·bᵀ, through jl_matmul_forward in the given precision (oneDNN), or through cblas_sgemm when `blas` is set.
 * Takes about 0.1–0.3 s. Returns a negative number if memory could not be allocated. */
double jl_matmul_gflops(jl_precision prec, int blas, int repeats);
/* cblas_sgemm on the same shape (jl_matmul_gflops(JL_PREC_FP32, 1, repeats)). */
double jl_sgemm_gflops(int repeats);
/* The OpenBLAS kernel in use ("Cooperlake", "Haswell", ...); set OPENBLAS_CORETYPE to override. */
const char *jl_blas_core(void);
#endif
