/* What the training commands share: loading --data (a `jielong prepare` folder, .bin shards or text files)
 * and building a fresh model's config from the --depth/--dim/... flags. */
#ifndef JL_CLI_TRAIN_DATA_H
#define JL_CLI_TRAIN_DATA_H
#include "cli/args.h"
#include "jielong/model.h"
#include "jielong/pretrain.h"
#include "jielong/tokenizer.h"

/* A fresh model's shape: the flags of CLI_SHAPE_FLAGS write the fields; `given` (cli_shape_given, after parsing)
 * says which were on the command line. A field not given is derived from depth (jl_config_from_depth), so the
 * fields hold no sentinel. */
enum {
    CLI_SHAPE_ARCH = 1 << 0, CLI_SHAPE_DEPTH = 1 << 1, CLI_SHAPE_DIM = 1 << 2, CLI_SHAPE_N_LAYER = 1 << 3,
    CLI_SHAPE_N_HEAD = 1 << 4, CLI_SHAPE_N_KV_HEAD = 1 << 5, CLI_SHAPE_HIDDEN_DIM = 1 << 6,
    CLI_SHAPE_CONTEXT = 1 << 7, CLI_SHAPE_UNTIED = 1 << 8
};
typedef struct {
    const char *arch;  /* "llama" (default) or "gpt2" */
    int depth;         /* default 4 */
    int dim, n_layer, n_head, n_kv_head, hidden_dim; /* used when given */
    int context;       /* default 256 (the caller may set another before parsing) */
    int untied;
    unsigned given;    /* CLI_SHAPE_* of the flags given */
} cli_model_shape;
#define CLI_MODEL_SHAPE_DEFAULT {.arch = "llama", .depth = 4, .context = 256}

/* The shape flags, writing into the cli_model_shape s; `who` prefixes each help text (a string literal, e.g.
 * "fresh student: "); context_help ends the --context help (its default). */
#define CLI_SHAPE_FLAGS(s, who, context_help)                                                                     \
    {"arch", OPT_STR, &(s).arch, who "llama (default) or gpt2", NO_RANGE, 0},                                     \
    {"depth", OPT_I32, &(s).depth, who "the size dial: layers = N, width = 64·N, heads = N (default 4)", 1, 64, 0}, \
    {"dim", OPT_I32, &(s).dim, who "width (default: from --depth)", 8, 16384, 0},                               \
    {"n-layer", OPT_I32, &(s).n_layer, who "number of layers (default: from --depth)", 1, 1024, 0},             \
    {"n-head", OPT_I32, &(s).n_head, who "attention heads (default: from --depth)", 1, 1024, 0},                \
    {"n-kv-head", OPT_I32, &(s).n_kv_head, who "key/value heads, grouped-query attention (default: --n-head)",   \
     1, 1024, 0},                                                                                                 \
    {"hidden-dim", OPT_I32, &(s).hidden_dim, who "MLP width (default: from the width)", 1, 1 << 20, 0},         \
    {"context", OPT_I32, &(s).context, who "context length " context_help, 1, 1 << 20, 0},                       \
    {"untied", OPT_BOOL, &(s).untied, who "separate lm head instead of tied embeddings (llama)", NO_RANGE, 0}

/* Fills s->given from the parser's given[] (cli_parse_given over opts). */
void cli_shape_given(cli_model_shape *s, const cli_opt *opts, int nopts, const unsigned char *given);

int cli_is_dir(const char *path);
/* Train (and val, when a prepared folder has val_*.bin shards; else val stays empty) from --data, encoding
 * text files with tok. */
jl_status cli_load_tokens(const cli_strs *data, const jl_tokenizer *tok, jl_tokens *train, jl_tokens *val);
/* The config of a fresh model: jl_config_from_depth(depth, context) plus the fields given. */
jl_status cli_build_config(const cli_model_shape *shape, int vocab, jl_config *c);
/* --data-order: NULL or "shuffled" → JL_DATA_SHUFFLED, "sequential" → JL_DATA_SEQUENTIAL, else an error. */
jl_status cli_parse_data_order(const char *name, int *order);
/* Prints the planned coverage: "300 steps × 8×128 = 0.31 M tokens = 0.24 epochs of 1.29 M (shuffled windows)". */
void cli_print_coverage(const char *stage, long steps, int B, int T, int accum, int order, size_t train_tokens);

#endif
