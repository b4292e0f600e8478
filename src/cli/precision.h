/* --precision of the training commands (in CLI_RUN_FLAGS): the precision of the matrix products (fp32, or bf16
 * inputs with fp32 accumulation; weights, gradients and AdamW stay fp32), and the peak MFU is measured against. */
#ifndef JL_CLI_PRECISION_H
#define JL_CLI_PRECISION_H
#include "jielong/train.h"

#define CLI_PRECISION_HELP                                                                                        \
    "matrix products: bf16 (bf16 inputs, fp32 accumulation and master weights) or fp32; the default is bf16 " \
    "where the CPU has bf16 dot products"

/* Measures the peak of r->precision with the probe loop into r->peak_gflops and prints one line
 * "STAGE: precision bf16 (kernel), peak N GFLOP/s bf16 (probe loop, T threads), the MFU yardstick" to stderr
 * (with a warning where the CPU has no bf16 dot products). Call after --threads is applied. */
void cli_precision_report(const char *stage, jl_run_cfg *r);
#endif
