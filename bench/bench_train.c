/* Training-step benchmark: GPT-2-124M shape at B=4 T=64 and B=8 T=256, and a small llama model.
 * Prints ms/step, tok/s and MFU = achieved FLOP/s ÷ cblas_sgemm FLOP/s measured in this same run. */
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

static void bench(const char *label, const jl_config *cfg, int B, int T, int steps, double sgemm) {
    jl_model *m;
    if (jl_model_new(cfg, &m) != JL_OK) {
        printf("%s: %s\n", label, jl_last_error());
        return;
    }
    jl_model_init(m, 1);
    jl_trainer_opts o = {.B = B, .T = T, .accum = 1};
    jl_optim_defaults(&o.opt, 6e-4f, 1000);
    jl_trainer *t;
    if (jl_trainer_new(m, &o, &t) != JL_OK) {
        printf("%s: %s\n", label, jl_last_error());
        jl_model_free(m);
        return;
    }
    random_tokens rt = {.vocab = cfg->vocab_size};
    jl_rng_seed(&rt.rng, 5);
    jl_step_stats st;
    jl_trainer_step(t, random_batch, &rt, &st); /* warm-up: page faults, BLAS buffers */
    double best = 1e30, total = 0;
    for (int i = 0; i < steps; i++) {
        jl_trainer_step(t, random_batch, &rt, &st);
        total += st.seconds;
        if (st.seconds < best) best = st.seconds;
    }
    double mean = total / steps, flops = jl_model_train_flops(&m->cfg, B, T);
    printf("%-34s B=%-2d T=%-4d %8.1f ms/step (best %7.1f) %9.0f tok/s  %6.1f GFLOP/s  MFU %.2f\n", label, B, T,
           mean * 1e3, best * 1e3, B * T / mean, flops / mean / 1e9, flops / mean / 1e9 / sgemm);
    jl_trainer_free(t);
    jl_model_free(m);
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 5;
    double sgemm = jl_sgemm_gflops(10);
    printf("training step benchmark: %d threads, OpenBLAS core %s\n", omp_get_max_threads(), jl_blas_core());
    printf("cblas_sgemm 1024x768x2304: %.1f GFLOP/s (the MFU yardstick)\n", sgemm);
    jl_config gpt2;
    jl_config_from_depth(&gpt2, JL_ARCH_GPT2, 12, 50257, 1024); /* 12 layers, 768 wide, 12 heads: GPT-2 124M */
    bench("gpt2-124M", &gpt2, 4, 64, steps, sgemm);
    bench("gpt2-124M", &gpt2, 8, 256, steps, sgemm);
    jl_config small;
    jl_config_from_depth(&small, JL_ARCH_LLAMA, 6, 8192, 512);
    small.n_kv_head = 3;
    bench("llama depth 6 (384 wide, GQA 6/3)", &small, 8, 256, steps * 3, sgemm);
    return 0;
}
