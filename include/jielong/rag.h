/* Retrieval over the user's documents: passages in one SQLite file, ranked by BM25 (FTS5) for Chinese and
 * English alike, optionally by dense embeddings from a model, and by both fused (reciprocal-rank fusion).
 *
 * File (docs/DESIGN.md "Retrieval"): tables meta(key, value), files(id, path, size, hash),
 * passages(id, file_id, start, end, text), fts (FTS5 over passages.text, rowid = passage id, tokenizer "jlhan":
 * one token per Han character, lower-cased words otherwise), embeddings(id, vec float32 blob).
 * A build runs in one transaction: a crash leaves the previous index as it was. */
#ifndef JIELONG_RAG_H
#define JIELONG_RAG_H
#include "jielong/common.h"
#include "jielong/model.h"
#include "jielong/tokenizer.h"
#include <stddef.h>
#include <stdint.h>

/* ---- chunking ---- */

typedef struct {
    size_t start, end; /* byte offsets [start, end) into the text; never inside a UTF-8 character */
} jl_chunk;

/* Splits text into passages: paragraphs (blank lines; a Markdown heading line also starts one), then a
 * paragraph longer than chunk_chars characters into windows of chunk_chars with `overlap` characters shared by
 * neighbours (cut after a sentence end 。！？.!?; or a newline in the window's last fifth when there is one).
 * Leading and trailing white space is left out of every passage; empty paragraphs give none. *out malloc'd. */
jl_status jl_chunk_text(const char *text, size_t len, int chunk_chars, int overlap, jl_chunk **out, size_t *n);

/* ---- FTS5 tokenizer "jlhan" (also used to build queries) ---- */

typedef struct {
    size_t start, end; /* bytes of the token in the text */
    int han;           /* 1: one Han character */
    int joined;        /* 1: directly follows the previous token (a Han run continues) */
} jl_rag_token;
/* Tokens of text: each Han character one token, runs of letters/digits (lower-cased by the caller if needed)
 * one token, punctuation and spaces none. Calls cb for each; stops when it returns non-zero. */
void jl_rag_tokenize(const char *text, size_t len, int (*cb)(void *user, const jl_rag_token *t), void *user);

/* ---- embeddings ---- */

typedef struct jl_embedder jl_embedder;
/* Mean-pooled final hidden states (after the last norm) of text run through m, L2-normalised; texts longer
 * than the model's context are cut. Both borrowed. */
jl_status jl_embedder_new(jl_model *m, const jl_tokenizer *tok, jl_embedder **out);
void jl_embedder_free(jl_embedder *e);
int jl_embedder_dim(const jl_embedder *e);
jl_status jl_embed_text(jl_embedder *e, const char *text, float *vec);

/* ---- the index ---- */

typedef struct jl_index jl_index;

typedef struct {
    int chunk_chars;     /* default 400 */
    int overlap;         /* default 50 */
    const char *fields;  /* JSONL: comma-separated fields whose values make a record's text; NULL: "text",
                            else every string (and array of strings) field */
    const char *tokenizer;/* FTS5 tokenizer of a new index: "jlhan" (default) or "trigram" (SQLite built-in) */
    const char *model_id;/* identifies the embedding model (with its weights hash) when an embedder is given */
} jl_index_options;
void jl_index_defaults(jl_index_options *o);

/* Opens (create: creating if missing) an index file. A file that is not a jielong index: JL_ERR_FORMAT. */
jl_status jl_index_open(const char *path, int create, jl_index **out);
void jl_index_close(jl_index *ix);

typedef struct {
    size_t files_added, files_replaced, files_unchanged, files_skipped; /* skipped: not .txt/.md/.jsonl */
    size_t passages_added, passages_removed, passages_total, embedded;
} jl_index_stats;

typedef void (*jl_index_progress)(void *user, const char *path, size_t passages_done);

/* Adds the files (a folder: its .txt, .md, .markdown and .jsonl files, recursively, in name order); a file
 * already indexed with the same content is kept, a changed one has its passages replaced. With e, every
 * passage lacking an embedding gets one. One transaction: on any error nothing changes. Chunk settings (and
 * the embedding model) must match those the index was built with (JL_ERR_ARG otherwise). */
jl_status jl_index_build(jl_index *ix, const char *const *inputs, int n_inputs, const jl_index_options *o,
                         jl_embedder *e, jl_index_progress progress, void *user, jl_index_stats *stats);

/* JL_RANK_AUTO is BM25 (the measured best on this project's data; see src/rag/query.c); dense and fused by name. */
typedef enum { JL_RANK_AUTO = 0, JL_RANK_BM25, JL_RANK_DENSE, JL_RANK_FUSED } jl_rank_mode;

typedef struct {
    int64_t id;
    char *text, *source;
    int64_t start, end;   /* bytes of the source file (a JSONL record: its line) */
    double score;         /* the ranking's score (BM25: higher is better; dense: cosine; fused: RRF) */
    int rank_bm25, rank_dense; /* 1-based ranks in each list, 0 = absent */
} jl_hit;

/* The k best passages for the question. AUTO: fused when the index has embeddings and e is given, else BM25.
 * DENSE / FUSED need e (the model the index was built with). *hits malloc'd (jl_hits_free). timeout_ms > 0
 * interrupts a long query (JL_ERR_RUNTIME "timed out"). */
jl_status jl_index_query(jl_index *ix, const char *question, int k, jl_rank_mode mode, jl_embedder *e,
                         int timeout_ms, jl_hit **hits, int *n_hits);
void jl_hits_free(jl_hit *hits, int n);
/* Passages, files and the embedding model id (NULL if none; valid until close) of the index. */
jl_status jl_index_info(jl_index *ix, size_t *passages, size_t *files, const char **embed_model);

#endif
