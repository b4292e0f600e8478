/* Inference benchmark: prefill and decode tok/s for the llama2.c stories15M and stories110M shapes (random
 * weights, tied embeddings) in f32, q8_0 and q4_0 (the quantised models through GGUF export and load, as
 * `jielong generate --model X.gguf` runs them), with the memory-bandwidth bound measured in the same run:
 * bound = bytes a token reads (weights of that type + the KV cache at the timed positions) ÷ the read bandwidth
 * of streaming a buffer of that size as decode streams its weights (stream_bandwidth).
 * The three types take turns run by run (the machine is shared); f32 decode is also timed with cblas_sgemv.
 * Prefill of f32 in fp32 and in bf16 products. Every ratio printed is against a figure measured in this run.
 * BG_ONLY=15M|110M runs one shape; BG_TYPES="q8_0 q4_0" picks the weight types (default "f32 q8_0 q4_0");
 * BG_PREFILL=0 skips the prefill lines (decode and its bound only); BG_QGROUPS=1..4 sets how many 16-row groups
 * the AVX-512 q8_0/q4_0 kernel takes a step (jl_quant_set_groups; default 4). E.g. the quantised decode check of issue 20,
 * about a minute: BG_ONLY=110M BG_TYPES="q8_0 q4_0" BG_PREFILL=0 build/bench/bench_generate */
#include "core/kernels.h"
#include "core/rng.h"
#include "core/timer.h"
#include "infer/sampler.h"
#include "jielong/generate.h"
#include "jielong/gguf.h"
#include "infer/qweights.h"
#include "jielong/tokenizer.h"
#include "model/model.h"
#include "bench_decode.h"
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPEATS 3

/* Read bandwidth in GB/s for streaming `bytes` the way decode streams its weights: one parallel region a pass,
 * every thread reading its contiguous share front to back with 64-byte loads (the sums kept alive, adds of
 * 1-cycle latency so the loads, not the arithmetic, set the pace), with a software prefetch `pf` bytes ahead
 * (0: none; the kernels prefetch 4-8 KiB ahead). The buffer has the size of what a token reads, so a model that
 * partly fits in the last-level cache is measured with the same help. Best pass of enough passes to read
 * about 4 GB (at least 12), best over the prefetch distances: what a token of decode can reach at most. */
static double stream_pass(const uint32_t *a, size_t n, size_t pf, uint32_t *sink) {
    uint32_t total = 0;
    double t0 = jl_now();
#pragma omp parallel reduction(+ : total)
    {
        const size_t lines = n / 16, t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
        const uint32_t *p = a + lines * t / nt * 16, *end = a + lines * (t + 1) / nt * 16;
        uint32_t acc[16] = {0};
        for (; p < end; p += 16) {
            if (pf) __builtin_prefetch((const char *)p + pf);
#pragma omp simd
            for (int j = 0; j < 16; j++) acc[j] += p[j];
        }
        for (int j = 0; j < 16; j++) total += acc[j];
    }
    double s = jl_now() - t0;
    *sink += total;
    return s;
}

static double stream_bandwidth(double bytes) {
    const size_t n = ((size_t)bytes / 64 + 1) * 16; /* uint32 count, whole lines */
    uint32_t *a = aligned_alloc(64, n * sizeof *a), sink = 0;
    if (!a) return -1;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = (uint32_t)i; /* first touch by the thread that reads it */
    const size_t pfs[3] = {0, 4096, 8192};
    int passes = (int)(4e9 / (n * sizeof *a));
    passes = passes < 12 ? 12 : passes;
    double best = 1e30;
    for (int r = 0; r < passes; r++)
        for (int k = 0; k < 3; k++) {
            double s = stream_pass(a, n, pfs[k], &sink);
            best = s < best ? s : best;
        }
    free(a);
    return sink == 1 ? -1 : n * sizeof(uint32_t) / best / 1e9; /* the sink keeps the sums alive */
}

/* CPU seconds of the whole process (every thread): on a loaded machine the cost of a token where wall time is not
 * (with more than one thread it includes the barriers' spinning). */
static double process_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double prefill_tok_s(jl_session *s, const int32_t *prompt, int n) {
    double best = 0;
    for (int r = 0; r < REPEATS; r++) {
        jl_session_truncate(s, 0);
        double t0 = jl_now();
        jl_session_forward(s, prompt, n, NULL, NULL);
        double rate = n / (jl_now() - t0);
        best = rate > best ? rate : best;
    }
    return best;
}

/* Best (and, in *typical, mean) rate of REPEATS decode runs with the given matvec kernel. */
static double decode_tok_s(jl_session *s, int vocab, int n, int kernel, double *typical) {
    jl_set_matvec_kernel(kernel);
    double best = 0, sum = 0;
    for (int r = 0; r < REPEATS; r++) {
        double rate = bench_decode_run(s, vocab, n);
        best = rate > best ? rate : best;
        sum += rate;
    }
    jl_set_matvec_kernel(0);
    *typical = sum / REPEATS;
    return best;
}

static const char *types[3] = {"f32", "q8_0", "q4_0"};

/* The model as a GGUF of type t, loaded back for inference (quantised weights in *qw); 0 on success. */
static int quantised(const jl_model *m, int t, jl_checkpoint *back, jl_qweights **qw) {
    jl_tokenizer *tok;
    jl_checkpoint ck = {.model = (jl_model *)m};
    jl_ggml_type gt;
    const char *path = "/tmp/bench_generate.gguf";
    int bad = jl_tokenizer_bytes(&tok) != JL_OK;
    if (!bad) {
        bad = jl_tokenizer_to_json(tok, &ck.tokenizer_json) != JL_OK || jl_ggml_type_parse(types[t], &gt) != JL_OK ||
              jl_export_gguf(&ck, path, gt) != JL_OK || jl_gguf_load_model(path, 0, back, qw) != JL_OK;
        jl_tokenizer_free(tok);
    }
    free(ck.tokenizer_json);
    remove(path);
    return bad;
}

/* Bytes of KV cache a decode token reads on average over the timed tokens at positions 1..n (bench_decode_run:
 * one prompt token, then n): keys and values of positions 0..pos, every layer, fp32. */
static double kv_bytes_per_token(const jl_config *c, int n) {
    const double keys = (n + 3) / 2.0; /* mean of pos + 1 over pos = 1..n */
    return 2.0 * c->n_layer * keys * (double)c->n_kv_head * (c->dim / c->n_head) * sizeof(float);
}

/* Whether type t is wanted (BG_TYPES, a list of names; unset: all). */
static int wanted(int t) {
    const char *want = getenv("BG_TYPES");
    if (!want) return 1;
    const size_t n = strlen(types[t]);
    for (const char *p = strstr(want, types[t]); p; p = strstr(p + 1, types[t]))
        if ((p == want || p[-1] == ' ' || p[-1] == ',') && (p[n] == 0 || p[n] == ' ' || p[n] == ',')) return 1;
    return 0;
}

static void bench_shape(const char *name, int dim, int n_layer, int n_head, int hidden, int context) {
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, n_layer, 32000, context);
    c.dim = dim;
    c.n_layer = n_layer;
    c.n_head = c.n_kv_head = n_head;
    c.hidden_dim = hidden;
    c.tie_embeddings = 1;
    jl_model *m;
    jl_session *s[3] = {0};
    jl_checkpoint back[3] = {{0}};
    jl_qweights *qw[3] = {0};
    if (jl_model_new(&c, &m) != JL_OK || (wanted(0) && jl_session_new(m, 0, &s[0]) != JL_OK)) {
        printf("%s: %s\n", name, jl_last_error());
        jl_model_free(m);
        return;
    }
    jl_model_init(m, 1);
    for (int t = 1; t < 3; t++)
        if (wanted(t) &&
            (quantised(m, t, &back[t], &qw[t]) || jl_session_new_quant(back[t].model, qw[t], 0, &s[t]) != JL_OK))
            printf("%s %s: %s\n", name, types[t], jl_last_error());
    const char *pf = getenv("BG_PREFILL");
    const int prefill_on = !pf || strcmp(pf, "0") != 0;
    int32_t prompt[256];
    jl_rng r;
    jl_rng_seed(&r, 3);
    for (int i = 0; i < 256; i++) prompt[i] = (int32_t)jl_rng_below(&r, 32000);
    printf("%s (dim %d, %d layers, %d heads, hidden %d, vocab 32000, %.1fM params)\n", name, dim, n_layer, n_head,
           hidden, m->n_params / 1e6);
    if (prefill_on && s[0]) {
        double prefill = prefill_tok_s(s[0], prompt, 256), prefill_bf16 = 0;
        if (jl_cpu_has_bf16()) {
            jl_precision was = jl_matmul_set_precision(JL_PREC_BF16);
            prefill_bf16 = prefill_tok_s(s[0], prompt, 256);
            jl_matmul_set_precision(was);
        }
        printf("  f32  prefill 256 tokens:   %8.1f tok/s fp32 products, %8.1f tok/s bf16 products\n", prefill,
               prefill_bf16);
    }
    for (int t = 1; t < 3; t++)
        if (prefill_on && s[t])
            printf("  %-4s prefill 256 tokens:   %8.1f tok/s\n", types[t], prefill_tok_s(s[t], prompt, 256));
    double best[3] = {0}, sum[3] = {0}, cpu[3] = {1e30, 1e30, 1e30};
    for (int rep = 0; rep < REPEATS; rep++) /* the types take turns, run by run */
        for (int t = 0; t < 3; t++) {
            if (!s[t]) continue;
            const double c0 = process_cpu_s(), rate = bench_decode_run(s[t], 32000, 128), c = process_cpu_s() - c0;
            best[t] = rate > best[t] ? rate : best[t];
            sum[t] += rate;
            cpu[t] = c < cpu[t] ? c : cpu[t];
        }
    double blas_typ = 0, blas = s[0] ? decode_tok_s(s[0], 32000, 128, 1, &blas_typ) : 0;
    for (int t = 0; t < 3; t++) {
        if (!s[t]) continue;
        const double bytes = jl_session_bytes_per_token(s[t]) + kv_bytes_per_token(&c, 128);
        const double bw = stream_bandwidth(bytes), bound = bw * 1e9 / bytes;
        printf("  %-4s decode 128 tokens:    %8.1f tok/s best, %8.1f typical; bound %7.1f tok/s (%.1f MB/token at "
               "%.1f GB/s) -> %.0f%% of the bound; CPU %.2f ms/token (all threads, best run)\n", types[t], best[t],
               sum[t] / REPEATS, bound, bytes / 1e6, bw, 100 * best[t] / bound, cpu[t] / (128 + 1) * 1e3);
    }
    if (s[0]) printf("  f32  decode, cblas_sgemv:  %8.1f tok/s best, %8.1f typical\n", blas, blas_typ);
    fflush(stdout);
    for (int t = 0; t < 3; t++) {
        jl_session_free(s[t]);
        jl_qweights_free(qw[t]);
        if (t) jl_checkpoint_free(&back[t]);
    }
    jl_model_free(m);
}

int main(void) {
    const char *want = getenv("BG_TYPES"), *only = getenv("BG_ONLY"), *qg = getenv("BG_QGROUPS");
    if (qg && jl_quant_set_groups(atoi(qg)) != JL_OK) {
        fprintf(stderr, "bench_generate: BG_QGROUPS: %s\n", jl_last_error());
        return 1;
    }
    for (const char *p = want; p && *p;) { /* every name in BG_TYPES must be a type */
        const size_t n = strcspn(p, " ,");
        int known = n == 0;
        for (int t = 0; t < 3; t++) known |= n == strlen(types[t]) && strncmp(p, types[t], n) == 0;
        if (!known) {
            fprintf(stderr, "bench_generate: BG_TYPES: unknown type '%.*s' (f32, q8_0, q4_0)\n", (int)n, p);
            return 1;
        }
        p += n + (p[n] != 0);
    }
    if (only && strcmp(only, "15M") != 0 && strcmp(only, "110M") != 0) {
        fprintf(stderr, "bench_generate: BG_ONLY='%s': expected 15M or 110M\n", only);
        return 1;
    }
    printf("threads %d; a type's bound: the bytes a decode token reads (weights + KV cache) / the read bandwidth of "
           "streaming that many bytes with every thread (best pass)\n", omp_get_max_threads());
    if (!only || strcmp(only, "15M") == 0) bench_shape("stories15M", 288, 6, 6, 768, 256);
    if (!only || strcmp(only, "110M") == 0) bench_shape("stories110M", 768, 12, 12, 2048, 1024);
    return 0;
}
