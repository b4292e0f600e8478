/* Supervised fine-tuning on conversations (jielong sft): the chat template rendered to token ids with an
 * assistant-only loss mask. Rows: with packing (the default) each epoch's conversations are packed into rows
 * of T by best fit, each in a segment of its own (attention stays inside it, positions and the soft prompt
 * restart in it), so every conversation gets exactly the loss and gradient it gets alone in a row; without,
 * one conversation per row, padded to T. Four ways to choose what trains:
 *   full    every parameter;
 *   freeze  only chosen blocks (train_layers / train_last), optionally the head (final norm + lm head; with tied
 *           embeddings that is the token embedding too), or everything but freeze_layers;
 *   lora    a LoRA adapter on the frozen base (include/jielong/adapter.h);
 *   prompt  a soft prompt of n virtual tokens on the frozen base.
 * Output folder: metrics.jsonl, checkpoint.safetensors (training state for --resume) and the result:
 * model.safetensors (full, freeze), adapter.safetensors (lora) or prompt.safetensors (prompt). */
#ifndef JIELONG_SFT_H
#define JIELONG_SFT_H
#include "jielong/adapter.h"
#include "jielong/chat_format.h"
#include "jielong/dataset.h"
#include "jielong/train.h"
#include "jielong/tokenizer.h"

/* Token ids of a rendered conversation and, per token, 1 if the loss covers it (assistant text and its <|end|>).
 * Special segments become their special id; text is encoded with allow_special = 0. seg is scratch (may be
 * reused). ids and trainable are malloc'd. */
jl_status jl_sft_tokenize(const jl_tokenizer *tok, const jl_conversation *conv, jl_segments *seg, int32_t **ids,
                          uint8_t **trainable, size_t *n);
/* The same with a model's chat format (NULL = built-in; see jielong/chat_format.h for the mask of a foreign
 * template). */
jl_status jl_sft_tokenize_format(const jl_tokenizer *tok, const jl_chat_format *fmt, const jl_conversation *conv,
                                 jl_segments *seg, int32_t **ids, uint8_t **trainable, size_t *n);
/* Training row from a tokenized conversation: tokens[i] = ids[i], targets[i] = ids[i+1] when token i+1 is
 * trainable, else -1, for i < T; the rest is padding (pad id, target -1). */
void jl_sft_row(const int32_t *ids, const uint8_t *trainable, size_t n, int32_t pad, int32_t *tokens,
                int32_t *targets, int T);

typedef enum { JL_SFT_FULL = 0, JL_SFT_LORA, JL_SFT_FREEZE, JL_SFT_PROMPT } jl_sft_method;
const char *jl_sft_method_name(jl_sft_method m);
jl_status jl_sft_method_parse(const char *name, jl_sft_method *out);

typedef struct {
    jl_stage_opts train;     /* run.batch conversations per micro-batch; optim.lr 0: by method (full/freeze: the
                              * width's default / 3; lora, prompt: 1e-3); run.seed: data order, adapter init, dropout;
                              * run.resume: out_dir/checkpoint.safetensors (same method, batch, steps, lr, seed) */
    jl_sft_method method;
    int T;
    int eval_batches;        /* batches per held-out evaluation (default 100; 0 = the whole set) */
    double val_fraction;     /* without a held-out set: the last share of the conversations is held out */
    int skip_overlong;       /* conversations longer than the row: 0 = truncate (warned, counted), 1 = skip */
    jl_lora_opts lora;
    int prompt_tokens;       /* soft prompt length */
    const char *train_layers;  /* freeze: "0-3,7" blocks that train */
    int train_last;            /* freeze: the last N blocks train */
    int train_head;            /* freeze: final norm + lm head train */
    const char *freeze_layers; /* freeze: these blocks are frozen, everything else trains */
    int packing;               /* 1 (default): several conversations per row (exact, see above); 0: one per row */
    jl_progress_fn progress;   /* may be NULL: "encode" done/total conversations while the set-up tokenizes them */
    void *progress_user;
    const jl_chat_format *chat; /* the model's chat format (NULL = built-in): renders the conversations and is
                                   saved with a full model */
} jl_sft_opts;

void jl_sft_defaults(jl_sft_opts *o);

/* --resume: the options a training checkpoint's state saved (the shared ones, T and eval_batches; a state
 * written before eval_batches was saved keeps o's) into o; every field range-checked. */
jl_status jl_sft_opts_of_checkpoint(const char *path, jl_sft_opts *o);

/* What a run did: the figures that show what each method costs. */
typedef struct {
    size_t trainable;         /* parameters the optimizer updates */
    size_t total;             /* model parameters */
    size_t optimizer_bytes;   /* Adam moments */
    size_t grad_bytes;        /* gradient buffers */
    double ms_per_step;       /* mean over this invocation's steps */
    double tok_per_s;         /* all row tokens (padding included) per second */
    double text_tok_per_s;    /* positions of conversations (padding excluded) per second */
    double pad_fraction;      /* share of row positions that are padding (in this run's batches): every position
                               * but a conversation's n − 1 that predict its next token, packed or not */
    double epoch_pad_fraction; /* the same over all rows of an epoch (the first epoch's, when packed) */
    double first_val, last_val; /* held-out loss before training (NAN when resumed) and at the end */
    size_t examples, truncated, skipped, val_examples;
    long steps_done;
    char result_path[4096];   /* the model / adapter / prompt file written at the end ("" if stopped early) */
} jl_sft_report;

/* Fine-tunes m (full, freeze) or an adapter on top of it (lora, prompt: m stays bit-identical). val may be NULL
 * (then val_fraction of train is held out). With o->train.run.resume, continues from that checkpoint (same
 * method, batch, steps, lr and seed required). */
jl_status jl_sft_train(jl_model *m, const jl_tokenizer *tok, const jl_sft_set *train, const jl_sft_set *val,
                       const jl_sft_opts *o, jl_event_fn on_event, void *user, jl_sft_report *report);

/* Marks m's tensors frozen for the freeze method (all unfrozen for the others). */
jl_status jl_sft_apply_freeze(jl_model *m, const jl_sft_opts *o);

#endif
