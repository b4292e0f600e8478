/* Shared by jielong reward / dpo / grpo / ppo: loading the starting model with its tokenizer, the common
 * training flags, and a progress line fed by the stage's events. */
#ifndef JL_CLI_RL_CLI_H
#define JL_CLI_RL_CLI_H
#include "cli/args.h"
#include "cli/precision.h"
#include "cli/progress.h"
#include "jielong/rlhf.h"

/* A model checkpoint and the tokenizer stored in it. */
jl_status rl_cli_load_model(const char *path, jl_checkpoint *ck, jl_tokenizer **tok);

/* Flags every stage has, written into o when given (UNSET = -1 keeps the default). */
typedef struct {
    long batch, steps, warmup, seed, max_len, eval_every, save_every, threads;
    double lr, weight_decay, grad_clip;
    int skip_long;
    size_t skipped_long; /* filled by the stage with --skip-long */
    const char *method;  /* full | lora, with the LoRA flags of jielong sft */
    long lora_rank;
    double lora_alpha, lora_dropout;
    const char *lora_targets;
    const char *precision;
} rl_cli_common;
void rl_cli_common_init(rl_cli_common *c);
#define RL_CLI_COMMON_OPTS(c, batch_help)                                                                        \
    {"batch-size", OPT_INT, &(c).batch, batch_help, 1, 4096, 0},                                                  \
    {"steps", OPT_INT, &(c).steps, "optimizer steps (default 200)", 1, 1L << 40, 0},                             \
    {"lr", OPT_FLOAT, &(c).lr, "peak learning rate (cosine decay to 10%)", 1e-9, 10, 0},                        \
    {"warmup", OPT_INT, &(c).warmup, "warmup steps (default 0)", 0, 1L << 40, 0},                                \
    {"weight-decay", OPT_FLOAT, &(c).weight_decay, "AdamW weight decay (default 0)", 0, 10, 0},                  \
    {"grad-clip", OPT_FLOAT, &(c).grad_clip, "clip the global gradient norm (default 1; 0 = off)", 0, 1e6, 0},  \
    {"seed", OPT_INT, &(c).seed, "seed of data order, head initialisation and sampling (default 1337)", 0,       \
     1L << 62, 0},                                                                                                \
    {"max-len", OPT_INT, &(c).max_len, "tokens of prompt + response (default: the model's context)", 2,          \
     1 << 20, 0},                                                                                                 \
    {"skip-long", OPT_BOOL, &(c).skip_long, "drop (and count) pairs/prompts longer than --max-len instead of "   \
     "stopping with an error", NO_RANGE, 0},                                                                       \
    {"save-every", OPT_INT, &(c).save_every, "model checkpoint every N steps (default: at the end)", 0,          \
     1L << 40, 0},                                                                                                \
    {"threads", OPT_INT, &(c).threads, "OpenMP threads (default: all cores)", 1, 1024, 0},                        \
    CLI_PRECISION_OPT((c).precision),                                                                           \
    {"method", OPT_STR, &(c).method, "full (default) or lora: train a LoRA adapter (and heads) on the frozen "  \
     "model; the reference is the same weights without the adapter", NO_RANGE, 0},                              \
    {"lora-rank", OPT_INT, &(c).lora_rank, "lora: rank r (default 8)", 1, 4096, 0},                              \
    {"lora-alpha", OPT_FLOAT, &(c).lora_alpha, "lora: alpha; scale = alpha / r (default 16)", 1e-6, 1e6, 0},     \
    {"lora-dropout", OPT_FLOAT, &(c).lora_dropout, "lora: dropout on the adapter input (default 0.05)", 0, 0.99, \
     0},                                                                                                          \
    {"lora-targets", OPT_STR, &(c).lora_targets, "lora: q,k,v,o,gate,up,down (gpt2: qkv,o,fc,down) or "          \
     "attn|mlp|all (default attn)", NO_RANGE, 0}
/* Writes the given flags into o; c must outlive the stage (it receives the --skip-long count). With --method
 * lora and no --lr, the learning rate is 10× the stage's full fine-tuning default. Sets the matmul precision
 * (--precision), printed as "STAGE: precision ...". Errors: unknown --method or --precision. */
jl_status rl_cli_common_apply(const char *stage, rl_cli_common *c, jl_rl_opts *o);
/* After the stage: says how many examples --skip-long dropped, if any. */
void rl_cli_report_skipped(const rl_cli_common *c, const char *stage);

typedef struct {
    cli_progress bar;
    const char *const *show; /* metric keys shown on the progress line, NULL-terminated */
    char line[256];
} rl_cli_view;
/* jl_rl_event_fn: progress line of the `show` metrics, notes for held-out results, skips and saves. */
void rl_cli_on_event(void *user, const jl_rl_event *ev);

/* The stages trained on preference pairs (reward, dpo): loads the starting model with its tokenizer and the
 * pairs, prints "STAGE: N pairs from DATA; SETTINGS; batch; steps; lr", runs `train` under a progress line of
 * the `show` metrics, then reports --skip-long drops. Returns the CLI exit code. */
typedef jl_status (*rl_pairs_train_fn)(jl_model *, const jl_tokenizer *, const jl_pref_set *, const jl_rl_opts *,
                                       jl_rl_event_fn, void *);
int rl_cli_run_pairs(const char *stage, const char *model, const char *data, const char *settings,
                     const jl_rl_opts *o, rl_cli_common *c, const char *const *show, rl_pairs_train_fn train);

#endif
