/* What the index files share: the handle, SQLite helpers, the FTS5 tokenizer and query building. */
#ifndef JL_RAG_INTERNAL_H
#define JL_RAG_INTERNAL_H
#include "jielong/rag.h"
#include <sqlite3.h>

struct jl_index {
    sqlite3 *db;
    char *path;
    char *tokenizer;   /* "jlhan" or "trigram" ("" before the first build) */
    char *embed_model; /* NULL when the index has no embeddings */
    int embed_dim;
    int query_terms;   /* jlhan queries: JL_TERMS_* */
    int dense_center;  /* 1: dense scores are cosines after subtracting the mean embedding (see query.c) */
    float *embed_mean; /* that mean, computed at the first such query after opening or building; or NULL */
};

/* Which terms a jlhan query ORs together: BIGRAM (the default: each pair of adjacent Han characters as a
 * two-token phrase, a Han character in no pair alone, and words) was best on the poem questions of
 * bench/bench_rag.c; BOTH adds every character; UNIGRAM has characters only. */
enum { JL_TERMS_BOTH = 0, JL_TERMS_UNIGRAM = 1, JL_TERMS_BIGRAM = 2 };
void jl_index_set_query_terms(jl_index *ix, int terms);
/* Dense ranking on centred embeddings (1) or on the stored ones as they are (0); bench/bench_rag.c measures both. */
void jl_index_set_dense_center(jl_index *ix, int on);

/* Registers the "jlhan" FTS5 tokenizer on db. */
int jl_rag_register_tokenizer(sqlite3 *db);
/* The FTS5 MATCH expression for a question (malloc'd; "" when it has no searchable term). */
char *jl_rag_match_query(const jl_index *ix, const char *question);

/* JL_ERR_* with the message "PATH: what: sqlite's message". */
jl_status jl_rag_sql_fail(const jl_index *ix, const char *what);
/* Runs SQL without results. */
jl_status jl_rag_exec(jl_index *ix, const char *sql);
/* A meta value (malloc'd) or NULL when absent. */
char *jl_rag_meta_get(jl_index *ix, const char *key);
jl_status jl_rag_meta_set(jl_index *ix, const char *key, const char *value);

#endif
