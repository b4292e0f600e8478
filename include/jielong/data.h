/* Token shards and text → shard preparation.
 *
 * Shard file: a header of 256 little-endian int32 — [0] magic 0x4A4C4E54 ("JLNT"), [1] version 1,
 * [2] token width in bytes (2 or 4), [3] token count low 32 bits, [4] count high 32 bits, [5] vocabulary size,
 * the rest 0 — then `count` tokens of `width` bytes (uint16 when the vocabulary has at most 65536 tokens, else
 * uint32). jl_shard_open validates everything up front (magic, version, width, exact file size, every token below
 * the vocabulary size), so readers never see a bad id. */
#ifndef JIELONG_DATA_H
#define JIELONG_DATA_H
#include "jielong/common.h"
#include "jielong/tokenizer.h"

#define JL_SHARD_MAGIC 0x4A4C4E54
#define JL_SHARD_VERSION 1
#define JL_SHARD_HEADER_INTS 256

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

typedef struct jl_shard jl_shard;

/* Writes tokens (each in [0, vocab_size)) atomically; the width is 2 bytes when vocab_size <= 65536, else 4. */
jl_status jl_shard_write(const char *path, const int32_t *tokens, size_t n, int vocab_size);
/* Maps a shard read-only and validates it. */
jl_status jl_shard_open(const char *path, jl_shard **out);
size_t jl_shard_count(const jl_shard *s);
int jl_shard_vocab(const jl_shard *s);
int jl_shard_width(const jl_shard *s);
/* Copies tokens [start, start + n) into dst as int32. */
jl_status jl_shard_read(const jl_shard *s, size_t start, size_t n, int32_t *dst);
void jl_shard_close(jl_shard *s);

/* ---- preparation: text / JSONL files → DIR/train_000.bin.., DIR/val_000.bin, DIR/tokenizer.json ----
 * Documents: a JSONL file (name ending in .jsonl, or format "jsonl") has one {"text": "..."} object a line; a text
 * file is split into documents at blank lines (lines empty or holding only spaces/tabs/CR), so a corpus of one poem
 * per paragraph gives one document per poem. Every document is encoded as <|bos|> + its tokens (special-token text
 * inside documents stays plain text). The held-out split is by document: a document goes to val when a hash of
 * (seed, document index) falls below val_fraction — deterministic, independent of threads; if that picks none
 * while val_fraction > 0 and there are >= 2 documents, the last document is held out. Train shards hold at most
 * shard_tokens tokens each (a document may continue into the next shard); val_000.bin is always written (it may
 * be empty when val_fraction = 0). Shards of an earlier run beyond the new ones are removed. */
typedef struct {
    const char *tokenizer_path;  /* tokenizer.json (copied into out_dir) */
    const char *const *inputs;
    int n_inputs;
    const char *out_dir;
    double val_fraction;         /* [0, 1) */
    uint64_t seed;
    size_t shard_tokens;         /* max tokens per train shard; 0 = 100M */
    const char *format;          /* "auto" (by file name; NULL = auto), "text" or "jsonl" */
    jl_progress_fn progress;     /* phase "prepare": done/total bytes of input */
    void *progress_user;
} jl_prepare_opts;

typedef struct {
    size_t docs_train, docs_val;
    size_t tokens_train, tokens_val;
    int train_shards;
    size_t bytes_in;
} jl_prepare_stats;

jl_status jl_prepare(const jl_prepare_opts *opts, jl_prepare_stats *stats);

/* Encodes text the way jl_prepare does: blank-line-separated paragraphs, each as jl_tokenizer_bos + its tokens,
 * concatenated. Pretraining on text files and held-out perplexity use this so they see what shards hold. */
jl_status jl_encode_documents(const jl_tokenizer *tok, const char *text, size_t len, int32_t **ids, size_t *n_ids);

#endif
