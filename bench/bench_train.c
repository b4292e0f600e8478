/* Training-step benchmark: GPT-2-124M shape at B=4 T=64 and B=8 T=256, and a small llama model, in each matrix
 * product precision (fp32; bf16 where the CPU has bf16 dot products), the two taking turns step by step.
 * Prints ms/step, tok/s and MFU = achieved FLOP/s ÷ the peak of the precision measured by the probe loop at
 * start (jl_peak_probe), printed with the matrix-product figures of the same run.
 * Arguments (optional): steps (default 5), and which shapes: all (default), gpt2-small (B=4 T=64), gpt2-large
 * (B=8 T=256) or llama. */
#include "core/perf.h"
#include "core/rng.h"
#include "core/timer.h"
#include "model/model.h"
#include "train/trainer.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { jl_rng rng; int vocab; } random_tokens;

static jl_status random_batch(void *ctx, int32_t *tok, int32_t *tgt, int B, int T) {
    random_tokens *r = ctx;
    for (int i = 0; i < B * T; i++) {
        tok[i] = (int32_t)jl_rng_below(&r->rng, (uint64_t)r->vocab);
        tgt[i] = (int32_t)jl_rng_below(&r->rng, (uint64_t)r->vocab);
    }
    return JL_OK;
}

/* One model and trainer; the precisions take turns step by step on it (one warm-up step each: page faults,
 * primitives, buffers), so both see the same machine load. */
static void bench(const char *label, const jl_config *cfg, int B, int T, int steps, const jl_peak *peak) {
    const int nprec = jl_cpu_has_bf16() ? 2 : 1;
    const jl_precision precs[2] = {JL_PREC_FP32, JL_PREC_BF16};
    jl_model *m;
    jl_trainer *t;
    if (jl_model_new(cfg, &m) != JL_OK) {
        printf("%s: %s\n", label, jl_last_error());
        return;
    }
    jl_model_init(m, 1);
    jl_trainer_opts o = {.B = B, .T = T, .accum = 1};
    jl_optim_defaults(&o.opt, 6e-4f, 1000);
    if (jl_trainer_new(m, &o, &t) != JL_OK) {
        printf("%s: %s\n", label, jl_last_error());
        jl_model_free(m);
        return;
    }
    random_tokens rt = {.vocab = cfg->vocab_size};
    jl_rng_seed(&rt.rng, 5);
    double total[2] = {0, 0}, best[2] = {1e30, 1e30};
    for (int i = 0; i <= steps; i++)
        for (int p = 0; p < nprec; p++) {
            jl_precision was = jl_matmul_set_precision(precs[p]);
            jl_step_stats st;
            jl_trainer_step(t, random_batch, &rt, &st);
            jl_matmul_set_precision(was);
            if (i == 0) continue;
            total[p] += st.seconds;
            best[p] = st.seconds < best[p] ? st.seconds : best[p];
        }
    const double flops = jl_model_train_flops(&m->cfg, B, T);
    for (int p = 0; p < nprec; p++) {
        double mean = total[p] / steps, pk = jl_peak_for(peak, precs[p]);
        printf("%-34s %s B=%-2d T=%-4d %8.1f ms/step (best %7.1f) %9.0f tok/s %6.1f GFLOP/s  MFU %.2f of %.0f\n",
               label, jl_precision_name(precs[p]), B, T, mean * 1e3, best[p] * 1e3, B * T / mean, flops / mean / 1e9,
               jl_mfu(flops / mean, pk), pk);
    }
    fflush(stdout);
    jl_trainer_free(t);
    jl_model_free(m);
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 5;
    if (steps < 1) steps = 1;
    const char *which = argc > 2 ? argv[2] : "all";
    const int all = !strcmp(which, "all");
    jl_peak peak = jl_peak_probe();
    printf("training step benchmark: %d threads; peak probe fp32 %.0f GFLOP/s, bf16 %.0f GFLOP/s (the MFU yardsticks)\n",
           peak.threads, peak.fp32, peak.bf16);
    printf("1024x768x2304 products: cblas_sgemm %.0f GFLOP/s (OpenBLAS core %s), oneDNN fp32 %.0f, bf16 %.0f "
           "(%s)\n", jl_sgemm_gflops(10), jl_blas_core(), jl_matmul_gflops(JL_PREC_FP32, 0, 10),
           jl_cpu_has_bf16() ? jl_matmul_gflops(JL_PREC_BF16, 0, 10) : 0.0, jl_matmul_impl(JL_PREC_BF16));
    fflush(stdout);
    jl_config gpt2;
    jl_config_from_depth(&gpt2, JL_ARCH_GPT2, 12, 50257, 1024); /* 12 layers, 768 wide, 12 heads: GPT-2 124M */
    if (all || !strcmp(which, "gpt2-small")) bench("gpt2-124M", &gpt2, 4, 64, steps, &peak);
    if (all || !strcmp(which, "gpt2-large")) bench("gpt2-124M", &gpt2, 8, 256, steps, &peak);
    jl_config small;
    jl_config_from_depth(&small, JL_ARCH_LLAMA, 6, 8192, 512);
    small.n_kv_head = 3;
    if (all || !strcmp(which, "llama")) bench("llama depth 6 (384 wide, GQA 6/3)", &small, 8, 256, steps * 3, &peak);
    return 0;
}
