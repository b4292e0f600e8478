/* Shared by the training commands (src/cli/train_data.h). */
#include "cli/train_data.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int cli_is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Loads train (and val, when the data has one) from --data, encoding text with tok. */
jl_status cli_load_tokens(const cli_strs *data, const jl_tokenizer *tok, jl_tokens *train, jl_tokens *val) {
    return jl_tokens_load((const char *const *)data->v, data->n, tok, train, val);
}

void cli_shape_given(cli_model_shape *s, const cli_opt *opts, int nopts, const unsigned char *given) {
    const struct { const void *dest; unsigned bit; } f[] = {
        {&s->arch, CLI_SHAPE_ARCH},         {&s->depth, CLI_SHAPE_DEPTH},           {&s->dim, CLI_SHAPE_DIM},
        {&s->n_layer, CLI_SHAPE_N_LAYER},   {&s->n_head, CLI_SHAPE_N_HEAD},         {&s->n_kv_head, CLI_SHAPE_N_KV_HEAD},
        {&s->hidden_dim, CLI_SHAPE_HIDDEN_DIM}, {&s->context, CLI_SHAPE_CONTEXT}, {&s->untied, CLI_SHAPE_UNTIED},
    };
    s->given = 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (cli_given(opts, nopts, given, f[i].dest)) s->given |= f[i].bit;
}

jl_status cli_build_config(const cli_model_shape *a, int vocab, jl_config *c) {
    jl_arch arch;
    jl_status st = jl_arch_parse(a->arch, &arch);
    if (st != JL_OK) return st;
    unsigned g = a->given;
    jl_config_from_depth(c, arch, a->depth, vocab, a->context);
    if (g & CLI_SHAPE_DIM) c->dim = a->dim;
    if (g & CLI_SHAPE_N_LAYER) c->n_layer = a->n_layer;
    if (g & CLI_SHAPE_N_HEAD) c->n_head = a->n_head;
    c->n_kv_head = g & CLI_SHAPE_N_KV_HEAD ? a->n_kv_head : c->n_head;
    if (g & CLI_SHAPE_HIDDEN_DIM) c->hidden_dim = a->hidden_dim;
    else if (g & CLI_SHAPE_DIM) c->hidden_dim = jl_config_default_hidden(arch, c->dim);
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
