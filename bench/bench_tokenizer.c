/* Tokenizer speed: training time and encode throughput (MB/s) on one thread and on all OpenMP threads.
 *   bench_tokenizer [--text FILE] [--mb N] [--vocab N] [--pattern gpt2|cl100k|o200k] [--save tok.json]
 *                   [--encode tok.json]...
 * Without --text it generates N MB (default 16) of synthetic mixed English/Chinese/code text. It trains a
 * tokenizer of --vocab tokens (default 30000; 0 = no training), then times encoding the whole text with it and with every
 * --encode tokenizer (best of 3; with PCRE2 beside where a scanner is used; the load time of each). One result per
 * line: "name: value unit". bench/bench_tokenizer.sh runs it beside
 * HF tokenizers. */
#include "core/timer.h"
#include "io/fileio.h"
#include "jielong/tokenizer.h"
#include "tokenizer/synth.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int die(const char *what) {
    fprintf(stderr, "bench_tokenizer: %s: %s\n", what, jl_last_error());
    return 1;
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double best_cpu; /* CPU seconds of the best-of-3 run (all threads): on a loaded machine, wall time is not ours */

/* Best-of-3 encode time of the whole text with `threads` threads; returns seconds and the id count. */
static double time_encode(const jl_tokenizer *t, const char *text, size_t len, int threads, size_t *n_ids) {
    omp_set_num_threads(threads);
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        int32_t *ids;
        double t0 = jl_now(), c0 = cpu_now();
        if (jl_tokenizer_encode(t, text, len, 0, &ids, n_ids) != JL_OK) return -1;
        double dt = jl_now() - t0, dc = cpu_now() - c0;
        free(ids);
        if (dt < best) best = dt, best_cpu = dc;
    }
    return best;
}

/* Times the default engine and, where a pre-tokenizer stage has a hand-written scanner, PCRE2 beside it (the
 * same id count or it says so): "encode NAME ..." is the default, "encode NAME pcre2 ..." PCRE2 on every Split. */
static void report_encode(const char *name, jl_tokenizer *t, const char *text, size_t len, int threads) {
    size_t n1, n2, ids_scan = 0;
    int scanners = jl_tokenizer_set_scanner(t, 1);
    for (int engine = 1; engine >= (scanners ? 0 : 1); engine--) {
        jl_tokenizer_set_scanner(t, engine);
        const char *tag = engine ? "" : " pcre2";
        double t1 = time_encode(t, text, len, 1, &n1), c1 = best_cpu;
        double tn = time_encode(t, text, len, threads, &n2), cn = best_cpu;
        printf("encode %s%s 1 thread: %.1f MB/s (%zu tokens, %.3f s, %.1f MB per CPU second)\n", name, tag,
               len / 1e6 / t1, n1, t1, len / 1e6 / c1);
        printf("encode %s%s %d threads: %.1f MB/s (%zu tokens, %.3f s, %.3f CPU s)\n", name, tag, threads,
               len / 1e6 / tn, n2, tn, cn);
        if (engine) ids_scan = n1;
        else if (ids_scan != n1) printf("encode %s: SCANNER AND PCRE2 DIFFER (%zu vs %zu ids)\n", name, ids_scan, n1);
    }
    jl_tokenizer_set_scanner(t, 1);
    omp_set_num_threads(threads);
}

int main(int argc, char **argv) {
    const char *text_path = NULL, *save = NULL, *pattern = "cl100k";
    const char *encode_paths[16];
    int n_encode = 0;
    long mb = 16, vocab = 30000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--text")) text_path = argv[i + 1];
        else if (!strcmp(argv[i], "--mb")) mb = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--vocab")) vocab = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--pattern")) pattern = argv[i + 1];
        else if (!strcmp(argv[i], "--save")) save = argv[i + 1];
        else if (!strcmp(argv[i], "--encode") && n_encode < 16) encode_paths[n_encode++] = argv[i + 1];
        else {
            fprintf(stderr, "bench_tokenizer: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    char *text;
    size_t len;
    jl_status st = text_path ? jl_read_file(text_path, &text, &len)
                             : jl_synth_text(1, (size_t)mb << 20, &text, &len);
    if (st != JL_OK) return die("text");
    int threads = omp_get_max_threads();
    int kind = jl_tokenizer_pattern_by_name(pattern);
    if (kind < 0) {
        fprintf(stderr, "bench_tokenizer: unknown pattern %s\n", pattern);
        return 2;
    }
    printf("text: %.1f MB, %d threads\n", len / 1e6, threads);
    jl_train_opts o = {.vocab_size = (int)vocab, .pattern = jl_tokenizer_pattern_text((jl_pattern_kind)kind)};
    jl_tokenizer *t;
    const char *texts[] = {text};
    double t0 = jl_now();
    if (vocab > 0) { /* --vocab 0: only the --encode tokenizers */
        if (jl_tokenizer_train(texts, &len, 1, &o, &t) != JL_OK) return die("train");
        printf("train %s vocab %ld: %.2f s\n", pattern, vocab, jl_now() - t0);
        if (save && jl_tokenizer_save(t, save) != JL_OK) return die("save");
        report_encode("trained", t, text, len, threads);
        jl_tokenizer_free(t);
    }
    for (int k = 0; k < n_encode; k++) {
        double l0 = jl_now();
        if (jl_tokenizer_load(encode_paths[k], &t) != JL_OK) return die(encode_paths[k]);
        printf("load %s: %.3f s\n", strrchr(encode_paths[k], '/') ? strrchr(encode_paths[k], '/') + 1 : encode_paths[k],
               jl_now() - l0);
        const char *base = strrchr(encode_paths[k], '/');
        report_encode(base ? base + 1 : encode_paths[k], t, text, len, threads);
        jl_tokenizer_free(t);
    }
    free(text);
    return 0;
}
