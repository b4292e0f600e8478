/* Shared by jielong reward / dpo / grpo / ppo: loading the starting model with its tokenizer, the flags these
 * stages add to the shared training flags (cli/train_cli.h), and the runner of the stages on preference pairs. */
#ifndef JL_CLI_RL_CLI_H
#define JL_CLI_RL_CLI_H
#include "cli/train_cli.h"
#include "jielong/chat_format.h"
#include "jielong/rlhf.h"

/* A model checkpoint, the tokenizer stored in it and its chat format (its own template, else the built-in one). */
jl_status rl_cli_load_model(const char *path, jl_checkpoint *ck, jl_tokenizer **tok, jl_chat_format **fmt);

typedef struct {
    const char *method;  /* full | lora, with the LoRA flags of jielong sft */
    int threads;
} rl_cli_common;

#define RL_CLI_COMMON_OPTS(c, o, batch_help)                                                                     \
    CLI_RUN_FLAGS((o).train, (c).threads, batch_help), CLI_OPTIM_FLAGS((o).train),                              \
    {"max-len", OPT_I32, &(o).max_len, "tokens of prompt + response (0: the model's context)", 0, 1 << 20, 0},   \
    {"skip-long", OPT_BOOL, &(o).skip_long, "drop (and count) pairs/prompts longer than --max-len instead of "   \
     "stopping with an error", NO_RANGE, 0},                                                                       \
    {"method", OPT_STR, &(c).method, "full (default) or lora: train a LoRA adapter (and heads) on the frozen "  \
     "model; the reference is the same weights without the adapter", NO_RANGE, 0},                              \
    {"lora-rank", OPT_I32, &(o).lora.rank, "lora: rank r", 1, 4096, 0},                                         \
    {"lora-alpha", OPT_F32, &(o).lora.alpha, "lora: alpha; scale = alpha / r", 1e-6, 1e6, 0},                   \
    {"lora-dropout", OPT_F32, &(o).lora.dropout, "lora: dropout on the adapter input", 0, 0.99, 0},            \
    {"lora-targets", OPT_STR, &(o).lora.targets, "lora: q,k,v,o,gate,up,down (gpt2: qkv,o,fc,down) or "          \
     "attn|mlp|all (default attn)", NO_RANGE, 0}

/* Defaults of the stage with the LoRA defaults of jielong sft. */
void rl_cli_defaults(jl_rl_opts *o, jl_rl_stage stage, rl_cli_common *c);
/* After parsing: --method (with lora and no --lr: 10× the stage's full fine-tuning default), --threads, --resume,
 * the checkpoint's options for the flags not given. Error: unknown --method, --lora-* without lora. */
jl_status rl_cli_apply(rl_cli_common *c, jl_rl_opts *o, const cli_opt *opts, int nopts, const unsigned char *given,
                       char *resume_buf, size_t size);
/* After the stage: says how many examples --skip-long dropped, if any. */
void rl_cli_report_skipped(size_t skipped, const char *stage);

/* The stages trained on preference pairs (reward, dpo): loads the starting model with its tokenizer and the
 * pairs, prints "STAGE: N pairs from DATA; SETTINGS; batch; steps; lr", runs `train` under the progress view of
 * the `show` metrics, then reports --skip-long drops. Returns the CLI exit code. */
typedef jl_status (*rl_pairs_train_fn)(jl_model *, const jl_tokenizer *, const jl_pref_set *, const jl_rl_opts *,
                                       jl_event_fn, void *);
int rl_cli_run_pairs(const char *stage, const char *model, const char *data, const char *settings, jl_rl_opts *o,
                     const char *const *show, rl_pairs_train_fn train);

#endif
