/* jielong beside llama.cpp (node-llama-cpp 3.22.1, its prebuilt CPU binary: scripts/fetch_llamacpp_npm.sh →
 * build/npm-llamacpp) on the same GGUF files: greedy decode tok/s of 128 tokens after a 1-token prompt at the
 * llama2.c stories15M and stories110M shapes (random weights, tied embeddings, vocabulary 32000), f32 and q8_0,
 * the files written by jl_export_gguf. jielong loads each file as `generate --model X.gguf` does and decodes in
 * its session (the argmax is part of the time); llama.cpp runs bench/llamacpp_decode.mjs on the same file, in
 * turns with ours, REPEATS rounds, with the same thread count (OpenMP's). The ratio is of the best rates measured
 * here in this run. BL_ONLY=15M or BL_ONLY=110M runs one shape. */
#include "core/rng.h"
#include "core/timer.h"
#include "infer/sampler.h"
#include "jielong/generate.h"
#include "jielong/gguf.h"
#include "jielong/tokenizer.h"
#include "model/model.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bench_decode.h"

#define REPEATS 3
#define N_DECODE 128

static double theirs_run(const char *nlc, const char *gguf) {
    char cmd[2048], line[128] = "";
    snprintf(cmd, sizeof cmd, "node '%s/llamacpp_decode.mjs' '%s' %d %d", nlc, gguf, N_DECODE, omp_get_max_threads());
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    if (!fgets(line, sizeof line, p)) line[0] = '\0';
    return pclose(p) == 0 ? atof(line) : 0;
}

/* Writes the shape's model as f32 and q8_0 GGUFs (paths[0], paths[1]); 0 on success. */
static int write_ggufs(const char *name, int dim, int n_layer, int n_head, int hidden, int context, char paths[2][256]) {
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, n_layer, 32000, context);
    c.dim = dim;
    c.n_layer = n_layer;
    c.n_head = c.n_kv_head = n_head;
    c.hidden_dim = hidden;
    c.tie_embeddings = 1;
    jl_checkpoint ck = {0};
    jl_tokenizer *tok;
    if (jl_config_finish(&c) != JL_OK || jl_model_new(&c, &ck.model) != JL_OK || jl_tokenizer_bytes(&tok) != JL_OK)
        return 1;
    jl_model_init(ck.model, 1);
    int bad = jl_tokenizer_to_json(tok, &ck.tokenizer_json) != JL_OK;
    jl_tokenizer_free(tok);
    const jl_ggml_type types[2] = {JL_GGML_F32, JL_GGML_Q8_0};
    for (int t = 0; t < 2 && !bad; t++) {
        snprintf(paths[t], 256, "/tmp/bench_llamacpp_%s_%s.gguf", name, jl_ggml_type_name(types[t]));
        bad = jl_export_gguf(&ck, paths[t], types[t]) != JL_OK;
    }
    jl_checkpoint_free(&ck);
    return bad;
}

static void bench_shape(const char *nlc, const char *name, int dim, int n_layer, int n_head, int hidden, int context) {
    char paths[2][256];
    if (write_ggufs(name, dim, n_layer, n_head, hidden, context, paths)) {
        printf("%s: %s\n", name, jl_last_error());
        return;
    }
    printf("%s (dim %d, %d layers, %d heads, hidden %d, vocab 32000), %d threads each\n", name, dim, n_layer, n_head,
           hidden, omp_get_max_threads());
    for (int t = 0; t < 2; t++) {
        jl_checkpoint ck = {0};
        jl_qweights *qw = NULL;
        jl_session *s = NULL;
        if (jl_gguf_load_model(paths[t], 0, &ck, &qw) != JL_OK || jl_session_new_quant(ck.model, qw, 0, &s) != JL_OK) {
            printf("  %s: %s\n", paths[t], jl_last_error());
        } else {
            double ours = 0, theirs = 0;
            for (int r = 0; r < REPEATS; r++) { /* in turns: the machine is shared */
                double a = bench_decode_run(s, 32000, N_DECODE), b = theirs_run(nlc, paths[t]);
                ours = a > ours ? a : ours;
                theirs = b > theirs ? b : theirs;
            }
            printf("  %-4s decode %d tokens: jielong %8.1f tok/s, llama.cpp %8.1f tok/s (best of %d) -> %.2fx\n",
                   t ? "q8_0" : "f32", N_DECODE, ours, theirs, REPEATS, theirs > 0 ? ours / theirs : 0.0);
        }
        fflush(stdout);
        jl_session_free(s);
        jl_qweights_free(qw);
        jl_checkpoint_free(&ck);
        remove(paths[t]);
    }
}

int main(void) {
    const char *nlc = "build/npm-llamacpp";
    char src[512];
    snprintf(src, sizeof src, "cp bench/llamacpp_decode.mjs %s/ 2>/dev/null", nlc);
    if (access("build/npm-llamacpp/node_modules/node-llama-cpp/package.json", R_OK) != 0 || system(src) != 0) {
        printf("node-llama-cpp is missing in %s (run scripts/fetch_llamacpp_npm.sh from the repository root)\n", nlc);
        return 1;
    }
    const char *only = getenv("BL_ONLY");
    if (!only || !strcmp(only, "15M")) bench_shape(nlc, "stories15M", 288, 6, 6, 768, 256);
    if (!only || !strcmp(only, "110M")) bench_shape(nlc, "stories110M", 768, 12, 12, 2048, 1024);
    return 0;
}
