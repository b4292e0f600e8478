/* Shared by the training commands (src/cli/train_data.h). */
#include "cli/train_data.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define UNSET CLI_UNSET

int cli_is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Files of a `jielong prepare` folder whose names start with prefix and end in .bin, sorted. */
static int list_shards(const char *dir, const char *prefix, char ***out) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0, cap = 0;
    char **v = NULL;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || !ends_with(e->d_name, ".bin")) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            char **nv = realloc(v, sizeof *v * (size_t)cap);
            if (!nv) break;
            v = nv;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        v[n] = malloc(len);
        if (!v[n]) break;
        snprintf(v[n], len, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    qsort(v, (size_t)n, sizeof *v, cmp_str);
    *out = v;
    return n;
}

static void free_list(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* Loads train (and val, when the data has one) from --data, encoding text with tok. */
jl_status cli_load_tokens(const cli_strs *data, const jl_tokenizer *tok, jl_tokens *train, jl_tokens *val) {
    memset(val, 0, sizeof *val);
    int vocab = jl_tokenizer_vocab_size(tok);
    if (data->n == 1 && cli_is_dir(data->v[0])) {
        char **tr = NULL, **va = NULL;
        int ntr = list_shards(data->v[0], "train_", &tr), nva = list_shards(data->v[0], "val_", &va);
        jl_status st = ntr ? jl_tokens_from_shards((const char *const *)tr, ntr, vocab, train)
                           : jl_fail(JL_ERR_IO, "%s: no train_*.bin shards (make them with jielong prepare)",
                                     data->v[0]);
        if (st == JL_OK && nva) st = jl_tokens_from_shards((const char *const *)va, nva, vocab, val);
        free_list(tr, ntr);
        free_list(va, nva);
        return st;
    }
    int all_shards = 1;
    for (int i = 0; i < data->n; i++) all_shards &= ends_with(data->v[i], ".bin");
    return all_shards ? jl_tokens_from_shards((const char *const *)data->v, data->n, vocab, train)
                      : jl_tokens_from_text((const char *const *)data->v, data->n, tok, train);
}

jl_status cli_build_config(const cli_model_shape *a, int vocab, jl_config *c) {
    jl_arch arch;
    jl_status st = jl_arch_parse(a->arch, &arch);
    if (st != JL_OK) return st;
    jl_config_from_depth(c, arch, (int)(a->depth != UNSET ? a->depth : 4), vocab, (int)(a->context != UNSET ? a->context : 256));
    if (a->dim != UNSET) c->dim = (int)a->dim;
    if (a->n_layer != UNSET) c->n_layer = (int)a->n_layer;
    if (a->n_head != UNSET) c->n_head = (int)a->n_head;
    c->n_kv_head = a->n_kv_head != UNSET ? (int)a->n_kv_head : c->n_head;
    if (a->hidden_dim != UNSET) c->hidden_dim = (int)a->hidden_dim;
    else if (a->dim != UNSET)
        c->hidden_dim = arch == JL_ARCH_GPT2 ? 4 * c->dim : (8 * c->dim / 3 + 63) / 64 * 64;
    if (a->untied) c->tie_embeddings = 0;
    return jl_config_finish(c);
}

jl_status cli_parse_data_order(const char *name, int *order) {
    if (!name || strcmp(name, "shuffled") == 0) *order = JL_DATA_SHUFFLED;
    else if (strcmp(name, "sequential") == 0) *order = JL_DATA_SEQUENTIAL;
    else return jl_fail(JL_ERR_ARG, "--data-order %s: not shuffled or sequential", name);
    return JL_OK;
}

void cli_print_coverage(const char *stage, long steps, int B, int T, int accum, int order, size_t train_tokens) {
    double seen = (double)steps * B * T * accum, epochs = train_tokens ? seen / (double)train_tokens : 0;
    fprintf(stderr, "%s: %ld steps × %d×%d×%d = %.2f M tokens = %.2f epochs of %.2f M training tokens (%s)\n", stage,
            steps, B, T, accum, seen / 1e6, epochs, (double)train_tokens / 1e6,
            order == JL_DATA_SEQUENTIAL ? "sequential windows: a run shorter than an epoch sees only the start"
                                        : "shuffled windows over the whole corpus");
}
