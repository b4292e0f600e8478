/* --precision of the training commands: the precision of the matrix products (fp32, or bf16 inputs with fp32
 * accumulation; weights, gradients and AdamW stay fp32), and the peak it is measured against for MFU. */
#ifndef JL_CLI_PRECISION_H
#define JL_CLI_PRECISION_H
#include "jielong/common.h"

#define CLI_PRECISION_HELP                                                                                        \
    "matrix products: bf16 (bf16 inputs, fp32 accumulation and master weights) or fp32 (default: bf16 where the " \
    "CPU has bf16 dot products, else fp32)"
#define CLI_PRECISION_OPT(dest) {"precision", OPT_STR, &(dest), CLI_PRECISION_HELP, NO_RANGE, 0}

/* Parses `flag` (NULL: the CPU's default), sets the process's matmul precision, measures the peak of that
 * precision with the probe loop and prints one line "STAGE: precision bf16 (kernel ...), peak ... GFLOP/s
 * (probe, N threads) — the MFU yardstick" to stderr. *peak_gflops gets the peak (0 where unknown). */
jl_status cli_precision_apply(const char *stage, const char *flag, double *peak_gflops);
#endif
