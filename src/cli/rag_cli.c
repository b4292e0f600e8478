/* Shared by jielong index and chat --rag: see rag_cli.h. */
#include "cli/rag_cli.h"
#include "cli/infer_cli.h"
#include "jielong/adapter.h"
#include <stdlib.h>
#include <string.h>

jl_status rag_model_borrow(jl_model *m, const jl_tokenizer *tok, rag_model *rm) {
    snprintf(rm->id, sizeof rm->id, "weights-%016llx", (unsigned long long)jl_model_weights_hash(m));
    return jl_embedder_new(m, tok, &rm->embedder);
}

jl_status rag_model_load(const char *path, rag_model *rm) {
    memset(rm, 0, sizeof *rm);
    jl_qweights *qw = NULL;
    jl_status st = infer_load_model(path, 1, &rm->ck, &qw);
    jl_qweights_free(qw);
    if (st == JL_OK && !rm->ck.tokenizer_json) st = jl_fail(JL_ERR_ARG, "%s has no tokenizer", path);
    if (st == JL_OK) st = jl_tokenizer_from_json(rm->ck.tokenizer_json, strlen(rm->ck.tokenizer_json), &rm->tok);
    if (st == JL_OK) st = rag_model_borrow(rm->ck.model, rm->tok, rm);
    if (st != JL_OK) rag_model_free(rm);
    return st;
}

void rag_model_free(rag_model *rm) {
    jl_embedder_free(rm->embedder);
    jl_tokenizer_free(rm->tok);
    if (rm->ck.model) jl_checkpoint_free(&rm->ck);
    memset(rm, 0, sizeof *rm);
}

jl_status rag_mode_parse(const char *name, jl_rank_mode *mode) {
    static const char *const names[] = {"auto", "bm25", "dense", "fused"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, names[i])) {
            *mode = (jl_rank_mode)i;
            return JL_OK;
        }
    return jl_fail(JL_ERR_ARG, "--mode '%s': auto, bm25, dense or fused", name);
}

void rag_print_hits(FILE *out, const jl_hit *hits, int n) {
    for (int i = 0; i < n; i++) {
        fprintf(out, "[%d] score %.4f  %s:%lld-%lld\n    ", i + 1, hits[i].score, hits[i].source,
                (long long)hits[i].start, (long long)hits[i].end);
        for (const char *t = hits[i].text; *t; t++) {
            fputc(*t, out);
            if (*t == '\n') fputs("    ", out);
        }
        fputc('\n', out);
    }
    if (n == 0) fprintf(out, "(no passage matches)\n");
}

char *rag_user_turn(const jl_hit *hits, int n, const char *question) {
    size_t len = strlen(question) + 32;
    for (int i = 0; i < n; i++) len += strlen(hits[i].text) + 16;
    char *s = malloc(len), *p = s;
    if (!s) return NULL;
    p += sprintf(p, "<context>\n");
    for (int i = 0; i < n; i++) p += sprintf(p, "[%d] %s\n", i + 1, hits[i].text);
    sprintf(p, "</context>\n\n%s", question);
    return s;
}
