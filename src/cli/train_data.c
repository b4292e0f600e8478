/* Shared by the training commands (src/cli/train_data.h). */
#include "cli/train_data.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define UNSET CLI_UNSET

int cli_is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Loads train (and val, when the data has one) from --data, encoding text with tok. */
jl_status cli_load_tokens(const cli_strs *data, const jl_tokenizer *tok, jl_tokens *train, jl_tokens *val) {
    return jl_tokens_load((const char *const *)data->v, data->n, tok, train, val);
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
        c->hidden_dim = jl_config_default_hidden(arch, c->dim);
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
