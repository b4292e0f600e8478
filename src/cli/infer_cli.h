/* What `jielong generate` and `jielong chat` share: model + tokenizer loading, the sampling flags, the
 * per-step probability view and the closing statistics line. */
#ifndef JL_CLI_INFER_CLI_H
#define JL_CLI_INFER_CLI_H
#include "cli/args.h"
#include "jielong/adapter.h"
#include "jielong/checkpoint.h"
#include "jielong/generate.h"
#include "jielong/gguf.h"
#include <stdio.h>

typedef struct {
    const char *model, *tokenizer, *matvec, *quantize, *adapter;
    long max_tokens, context, top_k, seed, penalty_last_n, threads, show_probs;
    double temperature, top_p, min_p, repetition, presence, frequency;
    int stats;
} infer_flags;

/* Defaults, then the shared options written to opts (returns how many; opts needs INFER_NOPTS slots). */
#define INFER_NOPTS 19
void infer_flags_defaults(infer_flags *f);
int infer_opts(infer_flags *f, cli_opt *opts);

/* Everything one run needs, loaded from the flags. */
typedef struct {
    jl_checkpoint ck;
    jl_qweights *qw;  /* quantised linear weights (a q8_0/q4_0 GGUF, or --quantize), or NULL */
    jl_tokenizer *tok;
    jl_lora *lora;     /* --adapter: attached to ck.model, used unmerged; or NULL */
    jl_prompt *prompt; /* --adapter with a soft prompt; or NULL */
    jl_session *session;
    jl_sampler *sampler;
} infer_setup;
jl_status infer_setup_load(const infer_flags *f, infer_setup *s);
void infer_setup_free(infer_setup *s);
/* The prompt ids for a completion: a soft prompt's placeholders (if any), then jl_encode_prompt(text). */
jl_status infer_encode_prompt(const infer_setup *s, const char *text, int32_t **ids, int *n);
/* A model file by its magic: a GGUF (jl_gguf_load_model; *qw its quantised weights) or a safetensors
 * checkpoint (*qw = NULL). dequantise: also fill the GGUF's quantised linears into ck->model as fp32. */
jl_status infer_load_model(const char *path, int dequantise, jl_checkpoint *ck, jl_qweights **qw);
void infer_sampler_params(const infer_flags *f, jl_sampler_params *p);

/* One step of --show-probs: the top tokens with model and sampling probabilities, the sampled one marked. */
void infer_print_report(FILE *out, const jl_tokenizer *tok, const jl_sample_report *r, int step);
/* "prompt N tok (X tok/s) | generated M tok (Y tok/s) | stop: reason" on stderr. */
void infer_print_stats(const char *cmd, const jl_gen_result *r);

#endif
