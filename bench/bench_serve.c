/* Serving benchmark: jielong serve's batched decoding over real HTTP on loopback. For the llama2.c stories15M and
 * stories110M shapes (random weights, vocab 32000), fp32 and q8_0, it starts the server in-process (port 0) and
 * runs 1, 4, 16 and 64 concurrent streaming clients (POST /v1/completions, stream, greedy, ignore_eos, one SSE
 * chunk per token): aggregate generated tok/s, p50/p99 time to first token and inter-token latency — beside the
 * single-stream decode rate of the `jielong generate` path (jl_generate on a session) measured in the same run.
 * The aggregate counts the wall time of each stream's ~27-token prompt prefill (the byte tokenizer) too; the
 * steady decode rate (streams / p50 inter-token gap) is the rate once every stream is decoding.
 * f32 runs twice: the batch's products in fp32 (the default) and in bf16 (serve --precision bf16, where the CPU has
 * AVX512-BF16). BS_ONLY=15M|110M runs one shape; BS_TYPES="f32 bf16 q8_0" picks the weight formats; BS_TOKENS
 * (default 64) tokens per stream; BS_STREAMS="1 4 16 64". */
#include "core/timer.h"
#include "infer/batch.h"
#include "infer/qweights.h"
#include "jielong/generate.h"
#include "model/model.h"
#include "serve/serve.h"
#include <arpa/inet.h>
#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    int port, n_tokens, id;
    double start, first, *times; /* times of each token chunk */
    int got;
    int ok;
} stream_run;

/* One streaming request; records when each token chunk arrives. */
static void *client(void *arg) {
    stream_run *r = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)r->port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    char body[256], req[512];
    snprintf(body, sizeof body,
             "{\"prompt\":\"Once upon a time, stream %d\",\"stream\":true,\"temperature\":0,\"max_tokens\":%d,"
             "\"ignore_eos\":true}", r->id, r->n_tokens);
    int n = snprintf(req, sizeof req,
                     "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", strlen(body), body);
    r->start = jl_now();
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 || write(fd, req, (size_t)n) != n) {
        close(fd);
        return NULL;
    }
    static const char marker[] = "\"finish_reason\":null";
    const size_t ml = sizeof marker - 1;
    char buf[65536];
    size_t len = 0;
    for (;;) {
        ssize_t k = read(fd, buf + len, sizeof buf - len - 1);
        if (k <= 0) break;
        const double now = jl_now();
        size_t from = len >= ml ? len - ml + 1 : 0;
        len += (size_t)k;
        buf[len] = '\0';
        for (char *p = buf + from; (p = strstr(p, marker)) != NULL; p += ml)
            if (r->got < r->n_tokens) r->times[r->got++] = now;
        if (strstr(buf + from, "data: [DONE]")) r->ok = 1;
        if (len > sizeof buf / 2) { /* keep the tail only */
            memmove(buf, buf + len - ml, ml);
            len = ml;
        }
    }
    close(fd);
    return NULL;
}

/* CPU seconds this process used so far (every thread: engine, OpenMP workers, HTTP and client threads). */
static double cpu_s(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + 1e-6 * (double)u.ru_utime.tv_usec + (double)u.ru_stime.tv_sec +
           1e-6 * (double)u.ru_stime.tv_usec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p) {
    if (n == 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

/* S concurrent streams; prints aggregate tok/s and latencies; returns the aggregate rate, *per_cpu the tokens
 * per CPU-second of the process. */
static double run_streams(int port, int S, int n_tokens, double *per_cpu) {
    stream_run *runs = calloc((size_t)S, sizeof *runs);
    pthread_t *th = calloc((size_t)S, sizeof *th);
    for (int i = 0; i < S; i++) {
        runs[i] = (stream_run){.port = port, .n_tokens = n_tokens, .id = i};
        runs[i].times = calloc((size_t)n_tokens, sizeof(double));
    }
    const double t0 = jl_now(), c0 = cpu_s();
    for (int i = 0; i < S; i++) pthread_create(&th[i], NULL, client, &runs[i]);
    for (int i = 0; i < S; i++) pthread_join(th[i], NULL);
    const double wall = jl_now() - t0, cpu = cpu_s() - c0;
    double *ttft = calloc((size_t)S, sizeof(double)), *itl = calloc((size_t)S * (size_t)n_tokens, sizeof(double));
    int n_itl = 0, total = 0, ok = 0;
    for (int i = 0; i < S; i++) {
        total += runs[i].got;
        ok += runs[i].ok && runs[i].got == n_tokens;
        ttft[i] = runs[i].got ? runs[i].times[0] - runs[i].start : wall;
        for (int k = 1; k < runs[i].got; k++) itl[n_itl++] = runs[i].times[k] - runs[i].times[k - 1];
        free(runs[i].times);
    }
    const double rate = total / wall;
    *per_cpu = total / cpu;
    const double itl50 = pct(itl, n_itl, 0.5);
    printf("    %2d streams: %7.1f tok/s aggregate, %7.1f tok per CPU-s (%d/%d complete) | TTFT p50 %6.1f ms p99 %6.1f ms | "
           "inter-token p50 %6.1f ms p99 %6.1f ms | steady decode %7.1f tok/s (streams / p50 inter-token: the prompts' "
           "prefill left out)\n", S, rate, *per_cpu, ok, S, 1e3 * pct(ttft, S, 0.5), 1e3 * pct(ttft, S, 0.99),
           1e3 * itl50, 1e3 * pct(itl, n_itl, 0.99), itl50 > 0 ? S / itl50 : 0.0);
    fflush(stdout);
    free(ttft);
    free(itl);
    free(runs);
    free(th);
    return rate;
}

/* The `jielong generate` path: a session, greedy jl_generate of n tokens after a short prompt (best of 2);
 * *per_cpu: decode tokens per CPU-second of the process. */
static double single_stream(const jl_model *m, const jl_qweights *qw, const jl_tokenizer *tok, int n, double *per_cpu) {
    jl_session *s;
    jl_sampler *smp;
    jl_sampler_params p;
    jl_sampler_defaults(&p);
    p.temperature = 0;
    if (jl_session_new_quant(m, qw, 256, &s) != JL_OK || jl_sampler_new(&p, m->cfg.vocab_size, &smp) != JL_OK) return 0;
    int32_t prompt[8] = {256, 'O', 'n', 'c', 'e', ' ', 'u', 'p'};
    double best = 0;
    *per_cpu = 0;
    for (int r = 0; r < 2; r++) {
        jl_session_truncate(s, 0);
        jl_gen_opts o = {.max_tokens = n};
        jl_gen_result res;
        const double c0 = cpu_s();
        /* ids past the byte tokenizer are fine: they have no text */
        if (jl_generate(s, smp, tok, prompt, 8, &o, NULL, NULL, &res) != JL_OK) break;
        const double rate = res.n_generated / res.decode_s, pc = res.n_generated / (cpu_s() - c0);
        best = rate > best ? rate : best;
        *per_cpu = pc > *per_cpu ? pc : *per_cpu;
    }
    jl_sampler_free(smp);
    jl_session_free(s);
    return best;
}

static void bench_shape(const char *name, int dim, int n_layer, int n_head, int hidden, const char *qtype, int bf16,
                        const int *streams, int n_streams, int n_tokens, const jl_tokenizer *tok) {
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, n_layer, 32000, 256);
    c.dim = dim;
    c.n_layer = n_layer;
    c.n_head = c.n_kv_head = n_head;
    c.hidden_dim = hidden;
    c.tie_embeddings = 1;
    jl_model *m;
    jl_qweights *qw = NULL;
    if (jl_config_finish(&c) != JL_OK || jl_model_new(&c, &m) != JL_OK) {
        printf("%s: %s\n", name, jl_last_error());
        return;
    }
    jl_model_init(m, 1);
    if (qtype && jl_qweights_quantize(m, qtype, &qw) != JL_OK) {
        printf("%s: %s\n", name, jl_last_error());
        jl_model_free(m);
        return;
    }
    int max_streams = 1;
    for (int i = 0; i < n_streams; i++) max_streams = streams[i] > max_streams ? streams[i] : max_streams;
    serve_opts o;
    serve_opts_defaults(&o);
    o.model = m;
    o.qw = qw;
    o.tok = tok;
    o.port = 0;
    o.parallel = max_streams;
    o.context = 256;
    o.max_queue = 1024;
    o.bf16 = bf16;
    serve_server *srv;
    if (serve_start(&o, &srv) != JL_OK) {
        printf("%s: %s\n", name, jl_last_error());
        return;
    }
    printf("%s %s%s (dim %d, %d layers, %.1fM params), %d tokens per stream, %d threads\n", name, qtype ? qtype : "f32",
           bf16 ? " (serve --precision bf16: the batch's products in bf16)" : "",
           dim, n_layer, m->n_params / 1e6, n_tokens, omp_get_max_threads());
    /* single stream and S streams take turns, so a load change on the machine shows in both; on a loaded machine
     * tokens per CPU-second say more than wall-clock rates (both sides run the same 2 OpenMP threads) */
    double single_cpu, single = single_stream(m, qw, tok, n_tokens, &single_cpu);
    printf("    single stream, jielong generate path: %7.1f tok/s, %7.1f tok per CPU-s\n", single, single_cpu);
    for (int i = 0; i < n_streams; i++) {
        double per_cpu, after_cpu;
        const double rate = run_streams(serve_port(srv), streams[i], n_tokens, &per_cpu);
        const double after = single_stream(m, qw, tok, n_tokens, &after_cpu);
        printf("    single stream, jielong generate path: %7.1f tok/s, %7.1f tok per CPU-s  -> %d streams: %.2fx "
               "wall-clock, %.2fx per CPU-second (against the mean of the single runs before and after)\n", after,
               after_cpu, streams[i], rate / (0.5 * (single + after)), per_cpu / (0.5 * (single_cpu + after_cpu)));
        fflush(stdout);
        single = after;
        single_cpu = after_cpu;
    }
    serve_stop(srv, 1.0);
    jl_qweights_free(qw);
    jl_model_free(m);
}

int main(int argc, char **argv) {
    (void)argc;
    if (!getenv("OMP_WAIT_POLICY")) { /* as the jielong command does: sleeping threads (libgomp reads it at start) */
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);
    }
    signal(SIGPIPE, SIG_IGN);
    const char *only = getenv("BS_ONLY"), *tokens = getenv("BS_TOKENS"), *ss = getenv("BS_STREAMS");
    const int n_tokens = tokens ? atoi(tokens) : 64;
    int streams[8] = {1, 4, 16, 64}, n_streams = 4;
    if (ss) {
        n_streams = 0;
        for (char *p = (char *)ss; *p && n_streams < 8;) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p) break;
            streams[n_streams++] = (int)v;
            p = end;
        }
    }
    jl_tokenizer *tok;
    if (jl_tokenizer_bytes(&tok) != JL_OK) return 1;
    /* f32 weights with fp32 products, the same with bf16 products (where the CPU has them), q8_0; BS_TYPES="f32 bf16
     * q8_0" (default all three) picks */
    const char *types[3] = {NULL, NULL, "q8_0"}, *names[3] = {"f32", "bf16", "q8_0"}, *want = getenv("BS_TYPES");
    for (int t = 0; t < 3; t++) {
        if ((want && !strstr(want, names[t])) || (t == 1 && !jl_matmat_bf16_supported())) continue;
        if (!only || strcmp(only, "15M") == 0)
            bench_shape("stories15M", 288, 6, 6, 768, types[t], t == 1, streams, n_streams, n_tokens, tok);
        if (!only || strcmp(only, "110M") == 0)
            bench_shape("stories110M", 768, 12, 12, 2048, types[t], t == 1, streams, n_streams, n_tokens, tok);
    }
    jl_tokenizer_free(tok);
    return 0;
}
