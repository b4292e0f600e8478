/* Kernel timings at GPT-2-124M training shapes: attention forward/backward (B=8, T=256, nh=12, hs=64; and at
 * bench_sft_packing's shape, B=8, T=160, nh=4, hs=64, causal rows against packed rows of 78 + 78 + 4),
 * fused cross-entropy (N=2048, V=50257, Vp=50304), and raw cblas_sgemm throughput on 1024×768×2304.
 * Prints one line per measurement; `make bench` runs it. */
#include "core/kernels.h"
#include "core/rng.h"
#include "core/timer.h"
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *random_buffer(size_t n, jl_rng *rng, float scale) {
    float *x = malloc(n * sizeof *x);
    if (!x) {
        fprintf(stderr, "bench_kernels: out of memory (%zu floats)\n", n);
        exit(1);
    }
    for (size_t i = 0; i < n; i++) x[i] = scale * jl_rng_normal(rng);
    return x;
}

/* One timed operation: a function and its arguments. */
typedef struct bench_op bench_op;
struct bench_op {
    void (*run)(bench_op *op);
    float *out, *att, *datt, *dqkv, *logits, *dlogits, *losses;
    const float *qkv, *dout, *a, *w;
    const int32_t *targets, *seg; /* seg: segment starts of packed rows, or NULL */
    int B, T, nh, nkv, hs, N, V, Vp, M, K;
    double sink; /* keeps the loss value alive */
};

/* Best of `reps` calls after one warm-up call, in milliseconds (the machine is shared: best, not mean). */
static double time_best_ms(bench_op *op, int reps) {
    op->run(op);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = jl_now();
        op->run(op);
        double dt = (jl_now() - t0) * 1e3;
        if (dt < best) best = dt;
    }
    return best;
}

static void run_attention_forward(bench_op *o) {
    jl_attention_forward_seg(o->out, o->att, o->qkv, o->B, o->T, o->nh, o->nkv, o->hs, o->seg);
}
static void run_attention_backward(bench_op *o) {
    jl_attention_backward_seg(o->dqkv, o->datt, o->dout, o->qkv, o->att, o->B, o->T, o->nh, o->nkv, o->hs, o->seg);
}
static void run_crossentropy(bench_op *o) {
    o->sink += jl_crossentropy_forward_backward(o->losses, o->dlogits, o->logits, o->targets, o->N, o->V, o->Vp,
                                                1.0f / o->N);
}
static void run_sgemm(bench_op *o) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, o->M, o->N, o->K, 1.0f, o->a, o->K, o->w, o->K, 0.0f,
                o->out, o->N);
}

/* Rows of T cut into segments of `len` tokens (the rest one more segment), as SFT packing makes them. */
static int32_t *segments(int B, int T, int len) {
    int32_t *seg = malloc((size_t)B * T * sizeof *seg);
    if (!seg) {
        fprintf(stderr, "bench_kernels: out of memory\n");
        exit(1);
    }
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) seg[(size_t)b * T + t] = t / len * len;
    return seg;
}

static void bench_attention(jl_rng *rng, int B, int T, int nh, int seg_len) {
    const int nkv = nh, hs = 64, S = (nh + 2 * nkv) * hs;
    float *qkv = random_buffer((size_t)B * T * S, rng, 1.0f);
    float *dout = random_buffer((size_t)B * T * nh * hs, rng, 1.0f);
    float *out = calloc((size_t)B * T * nh * hs, sizeof *out);
    float *att = calloc((size_t)B * nh * T * T, sizeof *att);
    float *datt = calloc((size_t)B * nh * T * T, sizeof *datt);
    float *dqkv = calloc((size_t)B * T * S, sizeof *dqkv);
    int32_t *seg = seg_len ? segments(B, T, seg_len) : NULL;
    if (!out || !att || !datt || !dqkv) {
        fprintf(stderr, "bench_kernels: out of memory\n");
        exit(1);
    }
    bench_op op = {.out = out, .att = att, .datt = datt, .dqkv = dqkv, .qkv = qkv, .dout = dout, .B = B, .T = T,
                   .nh = nh, .nkv = nkv, .hs = hs, .seg = seg};
    op.run = run_attention_forward;
    double fwd = time_best_ms(&op, 10);
    op.run = run_attention_backward;
    double bwd = time_best_ms(&op, 10);
    char rows[64] = "causal rows";
    if (seg_len) snprintf(rows, sizeof rows, "packed rows of %d + %d + %d", seg_len, seg_len, T - 2 * seg_len);
    printf("attention B=%d T=%d nh=%d hs=%d, %s: forward %.2f ms, backward %.2f ms, forward+backward %.2f ms\n", B,
           T, nh, hs, rows, fwd, bwd, fwd + bwd);
    free(qkv), free(dout), free(out), free(att), free(datt), free(dqkv), free(seg);
}

static void bench_crossentropy(jl_rng *rng) {
    const int N = 2048, V = 50257, Vp = 50304;
    float *logits = random_buffer((size_t)N * Vp, rng, 2.0f);
    float *dlogits = malloc((size_t)N * Vp * sizeof *dlogits);
    float *losses = malloc((size_t)N * sizeof *losses);
    int32_t *targets = malloc((size_t)N * sizeof *targets);
    if (!dlogits || !losses || !targets) {
        fprintf(stderr, "bench_kernels: out of memory\n");
        exit(1);
    }
    for (int n = 0; n < N; n++) targets[n] = (int32_t)jl_rng_below(rng, V);
    bench_op op = {.run = run_crossentropy, .logits = logits, .dlogits = dlogits, .losses = losses,
                   .targets = targets, .N = N, .V = V, .Vp = Vp};
    double ms = time_best_ms(&op, 10);
    op.dlogits = NULL;
    double ms_loss = time_best_ms(&op, 10);
    op.dlogits = logits; /* in place, as a training step may call it */
    double ms_inplace = time_best_ms(&op, 10);
    printf("crossentropy N=%d V=%d Vp=%d: forward+backward %.2f ms (in place %.2f ms), loss only %.2f ms%s\n", N,
           V, Vp, ms, ms_inplace, ms_loss, op.sink == op.sink ? "" : " (NaN loss)");
    free(logits), free(dlogits), free(losses), free(targets);
}

static void bench_sgemm(jl_rng *rng) {
    const int M = 1024, K = 768, N = 2304; /* out(M,N) = inp(M,K) · w(N,K)ᵀ: a GPT-2 qkv projection */
    float *a = random_buffer((size_t)M * K, rng, 1.0f), *w = random_buffer((size_t)N * K, rng, 1.0f);
    float *c = malloc((size_t)M * N * sizeof *c);
    if (!c) {
        fprintf(stderr, "bench_kernels: out of memory\n");
        exit(1);
    }
    bench_op op = {.run = run_sgemm, .a = a, .w = w, .out = c, .M = M, .N = N, .K = K};
    double ms = time_best_ms(&op, 20);
    printf("cblas_sgemm %dx%dx%d: %.2f ms, %.1f GFLOP/s\n", M, K, N, ms, 2.0 * M * N * K / (ms * 1e6));
    free(a), free(w), free(c);
}

int main(void) {
    printf("threads: %d OpenMP; OpenBLAS core %s (%s)\n", omp_get_max_threads(), openblas_get_corename(),
           openblas_get_config());
    jl_rng rng;
    jl_rng_seed(&rng, 1234);
    bench_sgemm(&rng);
    bench_attention(&rng, 8, 256, 12, 0);
    bench_attention(&rng, 8, 160, 4, 0);
    bench_attention(&rng, 8, 160, 4, 78);
    bench_crossentropy(&rng);
    bench_sgemm(&rng);
    return 0;
}
