/* What `jielong index` and `jielong chat --rag/--tools` share: a model loaded for embeddings, the ranking mode
 * flag, printing passages, and the retrieved block put into a user turn. */
#ifndef JL_CLI_RAG_CLI_H
#define JL_CLI_RAG_CLI_H
#include "jielong/checkpoint.h"
#include "jielong/rag.h"
#include <stdio.h>

typedef struct {
    jl_checkpoint ck;
    jl_tokenizer *tok;
    jl_embedder *embedder;
    char id[32]; /* "weights-<hash>": the model's identity stored in the index */
} rag_model;

/* Loads a checkpoint (fp32 weights) and its tokenizer for embeddings. */
jl_status rag_model_load(const char *path, rag_model *rm);
/* An embedder over an already-loaded model (borrowed), id filled from its weights. */
jl_status rag_model_borrow(jl_model *m, const jl_tokenizer *tok, rag_model *rm);
void rag_model_free(rag_model *rm);
jl_status rag_mode_parse(const char *name, jl_rank_mode *mode);
/* "[1] score 3.21  source:start-end\n    text" per hit. */
void rag_print_hits(FILE *out, const jl_hit *hits, int n);
/* The user turn with retrieved passages: "<context>\n[1] text\n[2] text\n</context>\n\n" + question (malloc'd). */
char *rag_user_turn(const jl_hit *hits, int n, const char *question);

#endif
