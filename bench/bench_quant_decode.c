/* Quantised models side by side: file size (GGUF), decode tok/s through the inference session for f32 / q8_0 /
 * q4_0 at the stories110M shape (dim 768, 12 layers, 12 heads, MLP 2048, vocab 32000) and stories15M (dim 288,
 * 6 layers, 6 heads, MLP 768), the peak resident memory of `jielong generate --model X.gguf` at the 110M shape
 * (the CLI beside this binary, build/jielong, or $JL_BIN), and held-out perplexity of a small model trained here
 * with the library.
 * The q8_0 / q4_0 models go through the real path: jl_export_gguf → jl_gguf_load_model → jl_session_new_quant.
 * Decode: best and median of several runs, the three types taking turns run by run (the machine is shared). Targets (issue 7): q8_0 perplexity within 1% of
 * f32, q8_0 decode >= 2x f32 at the 110M shape.
 *   build/bench/bench_quant_decode [runs (default 5)] [train steps (default 300)]   (BQ_ONLY110=1: the 110M
 *   decode table only) */
#include "core/timer.h"
#include "infer/qweights.h"
#include "jielong/checkpoint.h"
#include "jielong/data.h"
#include "jielong/eval.h"
#include "jielong/generate.h"
#include "jielong/gguf.h"
#include "model/model.h"
#include "tokenizer/synth.h"
#include "train/trainer.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

extern char **environ;

#define DECODE_TOKENS 48

static void check(jl_status st, const char *what) {
    if (st != JL_OK) {
        fprintf(stderr, "bench_quant_decode: %s: %s\n", what, jl_last_error());
        exit(1);
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char *types[3] = {"f32", "q8_0", "q4_0"};

/* Writes ck as GGUF of type t; loads it back as inference weights. Returns the file size. */
static double gguf_roundtrip(const jl_checkpoint *ck, int t, const char *path, jl_checkpoint *back, jl_qweights **qw,
                             int dequantise) {
    jl_ggml_type gt;
    check(jl_ggml_type_parse(types[t], &gt), "type");
    check(jl_export_gguf(ck, path, gt), "export gguf");
    struct stat sb;
    double mb = stat(path, &sb) == 0 ? sb.st_size / 1e6 : 0;
    check(jl_gguf_load_model(path, dequantise, back, qw), "load gguf");
    remove(path);
    return mb;
}

/* One run: decode tok/s over DECODE_TOKENS tokens after a one-token prompt. */
static double decode_once(jl_session *s, int vocab) {
    jl_session_truncate(s, 0);
    int32_t tok = 1;
    const float *logits;
    check(jl_session_forward(s, &tok, 1, NULL, &logits), "prefill");
    double t0 = jl_now();
    for (int i = 0; i < DECODE_TOKENS; i++) {
        tok = (int32_t)((tok * 7919 + i) % vocab); /* the logits are random: any token will do */
        check(jl_session_forward(s, &tok, 1, NULL, &logits), "decode");
    }
    return DECODE_TOKENS / (jl_now() - t0);
}

/* Peak resident set (MB) of `jielong generate` on a model file: the child's ru_maxrss. -1 if it failed. */
static double generate_peak_rss(const char *cli, const char *model, double *seconds) {
    char *argv[] = {(char *)cli, "generate", "--model", (char *)model, "--prompt", "Once upon a time", "--max-tokens",
                    "32", "--temperature", "0", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    double t0 = jl_now();
    int rc = posix_spawn(&pid, cli, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return -1;
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
    *seconds = jl_now() - t0;
    return ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

/* The 110M model as GGUF files of each type, for bench_rss (written while the fp32 model is in memory). */
static void write_rss_models(const jl_checkpoint *ck, char paths[3][64], double mb[3]) {
    for (int t = 0; t < 3; t++) {
        snprintf(paths[t], sizeof paths[t], "/tmp/bench_quant_rss_%s.gguf", types[t]);
        jl_ggml_type gt;
        check(jl_ggml_type_parse(types[t], &gt), "type");
        check(jl_export_gguf(ck, paths[t], gt), "export gguf");
        struct stat sb;
        mb[t] = stat(paths[t], &sb) == 0 ? sb.st_size / 1e6 : 0;
    }
}

/* The CLI runs each file; its peak RSS against the file size. A spawned child's peak starts at its parent's
 * (exec inherits the old address space's high-water mark), so this runs after the bench has freed its models
 * and reset its own high-water mark to its current, small, resident set. */
static void bench_rss(const char *cli, char paths[3][64], const double mb[3], int ctx, double kv_mb) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    int reset = f && fputs("5", f) >= 0;
    if (f) reset &= fclose(f) == 0;
    printf("\npeak RSS of `jielong generate --model X.gguf --max-tokens 32` (110M shape; KV cache %d positions = "
           "%.1f MB)%s\n", ctx, kv_mb, reset ? "" : " (could not reset this process's peak: upper bounds)");
    printf("%-5s %9s %14s %16s %10s\n", "type", "file MB", "peak RSS MB", "RSS - file MB", "run s");
    for (int t = 0; t < 3; t++) {
        double secs = 0, rss = generate_peak_rss(cli, paths[t], &secs);
        if (rss < 0) printf("%-5s %9.1f   (%s generate failed)\n", types[t], mb[t], cli);
        else printf("%-5s %9.1f %14.1f %16.1f %10.1f\n", types[t], mb[t], rss * 1.048576, rss * 1.048576 - mb[t], secs);
        remove(paths[t]);
    }
}

static void bench_shape(const char *name, int dim, int layers, int heads, int hidden, int runs, const char *cli) {
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, layers, 32000, 256);
    c.dim = dim;
    c.n_layer = layers;
    c.n_head = c.n_kv_head = heads;
    c.hidden_dim = hidden;
    c.tie_embeddings = 1; /* llama2.c's stories models share the classifier */
    check(jl_config_finish(&c), "config");
    jl_tokenizer *tok;
    check(jl_tokenizer_bytes(&tok), "tokenizer");
    jl_checkpoint ck = {0};
    check(jl_model_new(&c, &ck.model), "model");
    jl_model_init(ck.model, 1);
    check(jl_tokenizer_to_json(tok, &ck.tokenizer_json), "tokenizer json");
    jl_tokenizer_free(tok);
    printf("\n%s shape: dim %d, %d layers, %d heads, MLP %d, vocab 32000, %.1fM params; decode %d tokens, %d runs\n",
           name, dim, layers, heads, hidden, ck.model->n_params / 1e6, DECODE_TOKENS, runs);
    printf("%-5s %9s %12s %12s %14s %10s\n", "type", "file MB", "tok/s best", "tok/s median", "weights MB/tok", "vs f32");
    /* the three types loaded side by side and timed in turn, run after run, so that they share the machine's
     * moods (it is shared); best and median per type */
    jl_checkpoint back[3];
    jl_qweights *qw[3];
    jl_session *sess[3];
    double mb[3], *tps = malloc(sizeof(double) * 3 * (size_t)runs);
    for (int t = 0; t < 3; t++) {
        mb[t] = gguf_roundtrip(&ck, t, "/tmp/bench_quant_decode.gguf", &back[t], &qw[t], 0);
        check(jl_session_new_quant(back[t].model, qw[t], DECODE_TOKENS + 2, &sess[t]), "session");
    }
    for (int r = 0; r < runs; r++)
        for (int t = 0; t < 3; t++) tps[t * runs + r] = decode_once(sess[t], c.vocab_size);
    double f32_best = 0, f32_med = 0;
    for (int t = 0; t < 3; t++) {
        double *v = tps + t * runs;
        qsort(v, (size_t)runs, sizeof *v, cmp_double);
        if (t == 0) f32_best = v[runs - 1], f32_med = v[runs / 2];
        printf("%-5s %9.1f %12.1f %12.1f %14.1f   %.2fx best, %.2fx median\n", types[t], mb[t], v[runs - 1],
               v[runs / 2], jl_session_bytes_per_token(sess[t]) / 1e6, v[runs - 1] / f32_best, v[runs / 2] / f32_med);
        jl_session_free(sess[t]);
        jl_qweights_free(qw[t]);
        jl_checkpoint_free(&back[t]);
    }
    free(tps);
    struct stat sb;
    const int rss = cli && stat(cli, &sb) == 0;
    char paths[3][64];
    if (rss) write_rss_models(&ck, paths, mb);
    else if (cli) printf("\n(no CLI at %s: peak RSS not measured; build it or set JL_BIN)\n", cli);
    jl_checkpoint_free(&ck);
    if (rss) bench_rss(cli, paths, mb, c.max_seq_len, 2.0 * c.n_layer * c.max_seq_len * c.dim * 4 / 1e6);
}

/* ---------------------------------------------------------------- perplexity of a small trained model */

typedef struct {
    const char *text;
    size_t len;
    uint64_t state;
} text_batches;

static jl_status next_batch(void *ctx, int32_t *tokens, int32_t *targets, int B, int T) {
    text_batches *tb = ctx;
    for (int b = 0; b < B; b++) {
        tb->state = tb->state * 6364136223846793005ull + 1442695040888963407ull;
        size_t start = (size_t)(tb->state >> 33) % (tb->len - (size_t)T - 1);
        for (int t = 0; t < T; t++) {
            tokens[b * T + t] = (unsigned char)tb->text[start + t];
            targets[b * T + t] = (unsigned char)tb->text[start + t + 1];
        }
    }
    return JL_OK;
}

/* Perplexity as the engine computes it: the session's prefill (quantised activations and weights), windows of
 * the context, log-softmax of its logits. */
static double session_ppl(const jl_model *m, const jl_qweights *qw, const int32_t *ids, size_t n) {
    const int W = m->cfg.max_seq_len, V = m->cfg.vocab_size;
    jl_session *s;
    check(jl_session_new_quant(m, qw, W, &s), "session");
    float *logits = malloc(sizeof(float) * (size_t)W * V);
    double nll = 0;
    long count = 0;
    for (size_t start = 0; start + 1 < n; start += (size_t)W - 1) {
        int T = n - start < (size_t)W ? (int)(n - start) : W;
        jl_session_truncate(s, 0);
        check(jl_session_forward(s, ids + start, T, logits, NULL), "forward");
        for (int t = 0; t + 1 < T; t++) {
            const float *row = logits + (size_t)t * V;
            double mx = row[0], sum = 0;
            for (int v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
            for (int v = 0; v < V; v++) sum += exp(row[v] - mx);
            nll += log(sum) + mx - row[ids[start + t + 1]];
            count++;
        }
        if (start + (size_t)T >= n) break;
    }
    free(logits);
    jl_session_free(s);
    return exp(nll / (double)count);
}

static void bench_perplexity(int steps) {
    char *train, *heldout;
    size_t train_len, held_len;
    check(jl_synth_text(1, 400000, &train, &train_len), "synthetic text");
    check(jl_synth_text(2, 40000, &heldout, &held_len), "synthetic text");
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, 4, 262, 128);
    c.dim = 128;
    c.n_head = c.n_kv_head = 4;
    c.hidden_dim = 352;
    check(jl_config_finish(&c), "config");
    jl_tokenizer *tok;
    check(jl_tokenizer_bytes(&tok), "tokenizer");
    jl_checkpoint ck = {0};
    check(jl_model_new(&c, &ck.model), "model");
    jl_model_init(ck.model, 3);
    check(jl_tokenizer_to_json(tok, &ck.tokenizer_json), "tokenizer json");
    text_batches tb = {train, train_len, 1};
    jl_trainer_opts o = {.B = 16, .T = 128, .accum = 1};
    jl_optim_defaults(&o.opt, 3e-3f, steps);
    jl_trainer *t;
    check(jl_trainer_new(ck.model, &o, &t), "trainer");
    jl_step_stats st;
    double t0 = jl_now();
    for (int i = 0; i < steps; i++) check(jl_trainer_step(t, next_batch, &tb, &st), "train step");
    jl_trainer_free(t);
    printf("\nperplexity: byte-level llama (dim 128, 4 layers, %.2fM params) trained %d steps of 16x128 on synthetic "
           "text (%.0f s, last loss %.3f); held out: %zu bytes of another seed\n",
           ck.model->n_params / 1e6, steps, jl_now() - t0, st.loss, held_len);
    int32_t *ids; /* the same tokens jielong eval scores */
    size_t n_ids;
    check(jl_encode_documents(tok, heldout, held_len, &ids, &n_ids), "encode");
    printf("%-5s %9s %18s %8s %18s %8s\n", "type", "file KB", "ppl (fp32 fwd)", "vs f32", "ppl (engine)", "vs f32");
    double ref_eval = 0, ref_engine = 0;
    for (int k = 0; k < 3; k++) {
        jl_checkpoint back;
        jl_qweights *qw;
        double mb = gguf_roundtrip(&ck, k, "/tmp/bench_quant_ppl.gguf", &back, &qw, 1);
        jl_ppl_result r;
        check(jl_eval_perplexity(back.model, tok, heldout, held_len, c.max_seq_len, &r), "eval");
        double engine = session_ppl(back.model, qw, ids, n_ids);
        if (k == 0) ref_eval = r.ppl, ref_engine = engine;
        printf("%-5s %9.1f %18.4f %+7.2f%% %18.4f %+7.2f%%\n", types[k], mb * 1e3, r.ppl, 100 * (r.ppl / ref_eval - 1),
               engine, 100 * (engine / ref_engine - 1));
        jl_qweights_free(qw);
        jl_checkpoint_free(&back);
    }
    printf("(fp32 fwd = jielong eval on the dequantised weights; engine = the quantised session's prefill logits)\n");
    free(ids);
    free(train);
    free(heldout);
    jl_tokenizer_free(tok);
    jl_checkpoint_free(&ck);
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    int steps = argc > 2 ? atoi(argv[2]) : 300;
    if (runs < 1 || steps < 1) {
        fprintf(stderr, "usage: bench_quant_decode [runs >= 1] [train steps >= 1]\n");
        return 2;
    }
    char cli[4096]; /* build/bench/bench_quant_decode → build/jielong */
    const char *bin = getenv("JL_BIN"), *slash = strrchr(argv[0], '/');
    if (bin) snprintf(cli, sizeof cli, "%s", bin);
    else snprintf(cli, sizeof cli, "%.*s/../jielong", slash ? (int)(slash - argv[0]) : 1, slash ? argv[0] : ".");
    bench_shape("stories110M", 768, 12, 12, 2048, runs, cli);
    if (getenv("BQ_ONLY110")) return 0;
    bench_shape("stories15M", 288, 6, 6, 768, runs, NULL);
    bench_perplexity(steps);
    return 0;
}
