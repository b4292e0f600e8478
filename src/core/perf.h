/* The yardstick for MFU: cblas_sgemm throughput measured in the same process. */
#ifndef JL_CORE_PERF_H
#define JL_CORE_PERF_H
/* Best-of-n GFLOP/s of a 1024×768×2304 sgemm (the shape of GPT-2's qkv projection over 1024 tokens).
 * Takes about 0.1–0.3 s. Returns a negative number if memory could not be allocated. */
double jl_sgemm_gflops(int repeats);
/* The OpenBLAS kernel in use ("Cooperlake", "Haswell", ...); set OPENBLAS_CORETYPE to override. */
const char *jl_blas_core(void);
#endif
