/* What the training commands share: loading --data (a `jielong prepare` folder, .bin shards or text files)
 * and building a fresh model's config from the --depth/--dim/... flags. */
#ifndef JL_CLI_TRAIN_DATA_H
#define JL_CLI_TRAIN_DATA_H
#include "cli/args.h"
#include "jielong/model.h"
#include "jielong/pretrain.h"
#include "jielong/tokenizer.h"

#define CLI_UNSET (-1) /* a model-shape flag that was not given */

typedef struct {
    const char *arch;  /* "llama" or "gpt2" */
    long depth, dim, n_layer, n_head, n_kv_head, hidden_dim, context; /* CLI_UNSET: derived from depth */
    int untied;
} cli_model_shape;

int cli_is_dir(const char *path);
/* Train (and val, when a prepared folder has val_*.bin shards; else val stays empty) from --data, encoding
 * text files with tok. */
jl_status cli_load_tokens(const cli_strs *data, const jl_tokenizer *tok, jl_tokens *train, jl_tokens *val);
/* The config of a fresh model: jl_config_from_depth (default depth 4, context 256) plus the overrides. */
jl_status cli_build_config(const cli_model_shape *shape, int vocab, jl_config *c);
/* --data-order: NULL or "shuffled" → JL_DATA_SHUFFLED, "sequential" → JL_DATA_SEQUENTIAL, else an error. */
jl_status cli_parse_data_order(const char *name, int *order);
/* Prints the planned coverage: "300 steps × 8×128 = 0.31 M tokens = 0.24 epochs of 1.29 M (shuffled windows)". */
void cli_print_coverage(const char *stage, long steps, int B, int T, int accum, int order, size_t train_tokens);

#endif
