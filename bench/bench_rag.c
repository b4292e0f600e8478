/* Retrieval recall on the bundled poems: questions "《X》的作者是谁？" and "《X》的第二句是什么？" about poems whose
 * title is unique, over an index of the whole corpus (one passage per poem: title, author, lines). Recall@1 and
 * recall@5 of the right poem for BM25 (jlhan tokenizer: Han bigram phrases + characters, characters only, bigrams
 * only; SQLite's trigram tokenizer), dense (mean-pooled hidden states of the model given) and fused (RRF), all on
 * the same questions in one run, with each index's build time (the dense one: passages + embeddings) and the mean
 * time per query (dense and fused: the question's forward pass included).
 *   build/bench/bench_rag [MODEL.safetensors|-] [questions per kind, default 300] [poems: the first N of the corpus]
 * Without a model only the BM25 rows are measured. */
#include "core/rng.h"
#include "io/fileio.h"
#include "jielong/checkpoint.h"
#include "jielong/dataset.h"
#include "jielong/rag.h"
#include "rag/rag_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

typedef struct {
    char q[2][512]; /* author, second line */
    int64_t start;  /* the poem's JSONL line */
} question;

static int cmp_title(const void *a, const void *b, void *ctx) {
    const jl_poems *p = ctx;
    return strcmp(jl_poems_get(p, *(const size_t *)a)->title, jl_poems_get(p, *(const size_t *)b)->title);
}

/* n questions about random poems with a unique title; starts[i] = byte offset of line i of the file. */
static int make_questions(const jl_poems *poems, const int64_t *starts, int n, question *qs) {
    size_t np = jl_poems_count(poems), *idx = malloc(sizeof *idx * np), m = 0;
    char *unique = calloc(np, 1);
    for (size_t i = 0; i < np; i++) idx[i] = i;
    qsort_r(idx, np, sizeof *idx, cmp_title, (void *)poems);
    for (size_t i = 0; i < np; i++) {
        const char *t = jl_poems_get(poems, idx[i])->title;
        unique[idx[i]] = !(i > 0 && !strcmp(t, jl_poems_get(poems, idx[i - 1])->title)) &&
                         !(i + 1 < np && !strcmp(t, jl_poems_get(poems, idx[i + 1])->title));
    }
    for (size_t i = 0; i < np; i++)
        if (unique[i]) idx[m++] = i;
    jl_rng r;
    jl_rng_seed(&r, 2024);
    for (int k = 0; k < n; k++) {
        size_t i = idx[jl_rng_below(&r, m)];
        const jl_poem *p = jl_poems_get(poems, i);
        snprintf(qs[k].q[0], sizeof qs[k].q[0], "《%s》的作者是谁？", p->title);
        snprintf(qs[k].q[1], sizeof qs[k].q[1], "《%s》的第二句是什么？", p->title);
        qs[k].start = starts[i];
    }
    printf("questions: %d per kind about poems with a unique title (%zu of %zu poems)\n", n, m, np);
    free(idx);
    free(unique);
    return n;
}

static void measure(const char *label, jl_index *ix, jl_rank_mode mode, jl_embedder *e, const question *qs, int n) {
    for (int kind = 0; kind < 2; kind++) {
        int at1 = 0, at5 = 0;
        double t0 = now_s();
        for (int i = 0; i < n; i++) {
            jl_hit *h;
            int nh;
            if (jl_index_query(ix, qs[i].q[kind], 5, mode, e, 0, &h, &nh) != JL_OK) {
                fprintf(stderr, "query: %s\n", jl_last_error());
                exit(1);
            }
            for (int j = 0; j < nh; j++)
                if (h[j].start == qs[i].start) {
                    at1 += j == 0;
                    at5++;
                    break;
                }
            jl_hits_free(h, nh);
        }
        double ms = (now_s() - t0) * 1e3 / n;
        printf("| %-36s | %-6s | %5.1f%% | %5.1f%% | %7.2f |\n", label, kind ? "line 2" : "author", 100.0 * at1 / n,
               100.0 * at5 / n, ms);
    }
}

static jl_index *build(const char *dir, const char *name, const char *tokenizer, jl_embedder *e, const char *poems) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    jl_index *ix;
    jl_index_options o;
    jl_index_defaults(&o);
    o.fields = "title,author,lines";
    o.tokenizer = tokenizer;
    o.model_id = "bench";
    jl_index_stats st;
    const char *in[] = {poems};
    double t0 = now_s();
    if (jl_index_open(path, 1, &ix) != JL_OK || jl_index_build(ix, in, 1, &o, e, NULL, NULL, &st) != JL_OK) {
        fprintf(stderr, "build: %s\n", jl_last_error());
        exit(1);
    }
    printf("index %s: %zu passages in %.1f s%s\n", name, st.passages_total, now_s() - t0, e ? " (with embeddings)" : "");
    return ix;
}

/* The first `limit` lines of the corpus as DIR/poems.jsonl (its path in out); 0 when it cannot be written. */
static int corpus_head(const char *corpus, const char *dir, int limit, char *out, size_t cap) {
    char *data;
    size_t len, i = 0;
    if (jl_read_file(corpus, &data, &len) != JL_OK) return 0;
    for (int k = 0; i < len && k < limit; i++) k += data[i] == '\n';
    snprintf(out, cap, "%s/poems.jsonl", dir);
    FILE *f = fopen(out, "wb");
    int ok = f && fwrite(data, 1, i, f) == i;
    ok &= f && fclose(f) == 0;
    free(data);
    return ok;
}

int main(int argc, char **argv) {
    const char *model = argc > 1 && strcmp(argv[1], "-") ? argv[1] : NULL, *poems_path = "data/poems.jsonl";
    int n = argc > 2 ? atoi(argv[2]) : 300, limit = argc > 3 ? atoi(argv[3]) : 0;
    char dir[] = "/tmp/bench_rag_XXXXXX", head[64];
    if (!mkdtemp(dir)) return 1;
    if (limit > 0) { /* a smaller corpus: embedding every poem takes long on a loaded machine */
        if (!corpus_head(poems_path, dir, limit, head, sizeof head)) {
            fprintf(stderr, "%s: %s\n", poems_path, jl_last_error());
            return 1;
        }
        poems_path = head;
        printf("corpus: the first %d poems of data/poems.jsonl\n", limit);
    }
    jl_poems *poems;
    char *data;
    size_t len;
    if (jl_poems_load(poems_path, NULL, &poems, NULL) != JL_OK || jl_read_file(poems_path, &data, &len) != JL_OK) {
        fprintf(stderr, "%s\n", jl_last_error());
        return 1;
    }
    int64_t *starts = malloc(sizeof *starts * (jl_poems_count(poems) + 1));
    size_t k = 0;
    for (size_t i = 0; i < len && k < jl_poems_count(poems);) { /* the non-blank lines, in order */
        size_t e = i;
        while (e < len && data[e] != '\n') e++;
        if (e > i) starts[k++] = (int64_t)i;
        i = e + 1;
    }
    free(data);
    question *qs = malloc(sizeof *qs * (size_t)n);
    make_questions(poems, starts, n, qs);
    jl_checkpoint ck = {0};
    jl_tokenizer *tok = NULL;
    jl_embedder *e = NULL;
    if (model) {
        if (jl_checkpoint_load(model, &ck) != JL_OK || !ck.tokenizer_json ||
            jl_tokenizer_from_json(ck.tokenizer_json, strlen(ck.tokenizer_json), &tok) != JL_OK ||
            jl_embedder_new(ck.model, tok, &e) != JL_OK) {
            fprintf(stderr, "%s: %s\n", model, jl_last_error());
            return 1;
        }
    }
    jl_index *han = build(dir, "jlhan.db", "jlhan", NULL, poems_path), *tri = build(dir, "trigram.db", "trigram", NULL, poems_path),
             *emb = e ? build(dir, "dense.db", "jlhan", e, poems_path) : NULL;
    printf("\n| ranking | question | recall@1 | recall@5 | ms/query |\n|---|---|---|---|---|\n");
    jl_index_set_query_terms(han, JL_TERMS_BOTH);
    measure("BM25 jlhan: bigrams + characters", han, JL_RANK_BM25, NULL, qs, n);
    jl_index_set_query_terms(han, JL_TERMS_BIGRAM);
    measure("BM25 jlhan: bigrams", han, JL_RANK_BM25, NULL, qs, n);
    jl_index_set_query_terms(han, JL_TERMS_UNIGRAM);
    measure("BM25 jlhan: characters", han, JL_RANK_BM25, NULL, qs, n);
    jl_index_set_query_terms(han, JL_TERMS_BOTH);
    measure("BM25 trigram", tri, JL_RANK_BM25, NULL, qs, n);
    if (e) {
        jl_index_set_query_terms(emb, JL_TERMS_BIGRAM);
        measure("BM25 jlhan: bigrams (same index)", emb, JL_RANK_BM25, NULL, qs, n);
        for (int centred = 0; centred < 2; centred++) {
            jl_index_set_dense_center(emb, centred);
            measure(centred ? "dense, centred" : "dense (mean-pooled hidden states)", emb, JL_RANK_DENSE, e, qs, n);
            measure(centred ? "fused (RRF of BM25 bigrams, dense centred)" : "fused (RRF of BM25 bigrams, dense)", emb,
                    JL_RANK_FUSED, e, qs, n);
        }
        jl_index_close(emb);
    }
    jl_index_close(han);
    jl_index_close(tri);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    jl_embedder_free(e);
    jl_tokenizer_free(tok);
    if (ck.model) jl_checkpoint_free(&ck);
    jl_poems_free(poems);
    free(starts);
    free(qs);
    return 0;
}
