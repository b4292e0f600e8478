/* Pretraining by next-token prediction on token streams, with periodic held-out loss, greedy samples,
 * metrics and checkpoints that resume bit for bit. The library reports through a callback and never prints. */
#ifndef JIELONG_PRETRAIN_H
#define JIELONG_PRETRAIN_H
#include "jielong/checkpoint.h"
#include "jielong/model.h"
#include "jielong/tokenizer.h"

/* A token stream in memory. */
typedef struct {
    int32_t *ids;
    size_t n;
} jl_tokens;

void jl_tokens_free(jl_tokens *t);
/* Concatenates token shards (jielong prepare); every id must be < vocab_size. */
jl_status jl_tokens_from_shards(const char *const *paths, int n_paths, int vocab_size, jl_tokens *out);
/* Encodes text files with tok as `prepare` does: blank-line-separated documents, each after <|bos|>. */
jl_status jl_tokens_from_text(const char *const *paths, int n_paths, const jl_tokenizer *tok, jl_tokens *out);
/* What a data path holds, recognised by its first bytes and type (never by its name). */
typedef enum { JL_DATA_TEXT, JL_DATA_SHARD, JL_DATA_FOLDER, JL_DATA_GGUF, JL_DATA_SAFETENSORS } jl_data_kind;
jl_status jl_data_kind_of(const char *path, jl_data_kind *kind); /* errors: missing, not a file or folder */
const char *jl_data_kind_name(jl_data_kind kind);               /* "text file", "token shard", ... */
/* The shards of one split ("train" or "val") of a `jielong prepare` folder, sorted by name (none: *n = 0).
 * Free *paths with jl_paths_free. */
jl_status jl_prepared_shards(const char *dir, const char *split, char ***paths, int *n);
void jl_paths_free(char **paths, int n);
/* Training data as every training stage accepts it: one prepared folder (train_*.bin; val_*.bin into val when
 * present), token shards, or text files encoded with tok (val stays empty: split it with jl_tokens_split). Model
 * files and folders without shards are refused with a message saying what to pass. */
jl_status jl_tokens_load(const char *const *paths, int n_paths, const jl_tokenizer *tok, jl_tokens *train,
                         jl_tokens *val);
/* Held-out tokens of a prepared folder (its val_*.bin) or of one token shard. */
jl_status jl_tokens_load_heldout(const char *path, int vocab_size, jl_tokens *out);
/* Moves `fraction` of all (at least one window of T+1) into val, as up to 16 pieces spread evenly over the
 * stream (so every part of a mixed corpus is held out); the rest stays in train, in order. */
jl_status jl_tokens_split(jl_tokens *train, double fraction, int T, jl_tokens *val);

/* How a training stage walks its token stream (src/train/stream.h): shuffled windows covering the corpus each
 * epoch (the default), or the windows in file order. */
typedef enum { JL_DATA_SHUFFLED = 0, JL_DATA_SEQUENTIAL = 1 } jl_data_order;

typedef struct {
    int B, T, accum;        /* micro-batch B×T tokens; accum micro-batches per step */
    long steps;             /* optimizer steps of the whole run */
    float lr, min_lr_frac, weight_decay, beta1, beta2, grad_clip;
    long warmup;
    int schedule;           /* jl_schedule */
    uint64_t seed;          /* initialisation (ignored on resume) and the shuffled data order */
    int data_order;         /* jl_data_order */
    int eval_every, eval_batches;   /* held-out loss every N steps over this many batches (0 = off) */
    int sample_every, sample_tokens; /* greedy continuation of sample_prompt every N steps (0 = off) */
    const char *sample_prompt;
    int save_every;         /* training checkpoint every N steps (and at the end) */
    long stop_after;        /* stop (with a checkpoint) after this many steps in this invocation; 0 = run to the end */
    const char *out_dir;    /* checkpoint.safetensors, model.safetensors, metrics.jsonl */
    double peak_gflops;     /* the MFU yardstick: peak of the precision in use, measured by the caller (≤ 0: no MFU) */
} jl_pretrain_opts;

void jl_pretrain_defaults(jl_pretrain_opts *o);

typedef enum { JL_EV_STEP, JL_EV_EVAL, JL_EV_SAMPLE, JL_EV_SAVE, JL_EV_SKIP } jl_event_kind;

typedef struct {
    jl_event_kind kind;
    long step, total_steps;
    double loss, grad_norm, lr, tok_per_s, mfu; /* JL_EV_STEP, JL_EV_SKIP */
    double val_loss;                           /* JL_EV_EVAL */
    const char *text;                          /* JL_EV_SAMPLE: prompt + continuation */
    const char *path;                          /* JL_EV_SAVE */
} jl_train_event;

typedef void (*jl_event_fn)(void *user, const jl_train_event *ev);

/* Trains m in place. With `resume` (a training checkpoint of the same model) continues from its state:
 * step, data position and AdamW moments; B, T and accum must match. tok is stored in the checkpoints and
 * decodes samples. */
jl_status jl_pretrain(jl_model *m, const jl_tokenizer *tok, const jl_tokens *train, const jl_tokens *val,
                      const jl_pretrain_opts *o, const jl_checkpoint *resume, jl_event_fn on_event, void *user);

/* Reads B, T, accum, steps, lr... saved in a training checkpoint's state into o (other fields untouched). */
jl_status jl_pretrain_opts_from_state(const char *state_json, jl_pretrain_opts *o);

#endif
