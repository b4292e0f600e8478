/* Ranking: BM25 through FTS5, cosine over the stored embeddings, and reciprocal-rank fusion of both. */
#include "rag/rag_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RRF_K 60.0 /* the usual constant of reciprocal-rank fusion */

typedef struct {
    int64_t id;
    double score;
} ranked;

typedef struct {
    ranked *items;
    int n;
} ranking;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int past_deadline(void *user) { return now_ms() > *(double *)user; }

static jl_status rank_bm25(jl_index *ix, const char *question, int depth, ranking *out) {
    out->items = NULL;
    out->n = 0;
    char *match = jl_rag_match_query(ix, question);
    if (!match) return jl_fail(JL_ERR_NOMEM, "out of memory");
    if (!*match) {
        free(match);
        return JL_OK;
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ix->db, "SELECT rowid, bm25(fts) FROM fts WHERE fts MATCH ?1 ORDER BY bm25(fts) LIMIT ?2",
                           -1, &st, NULL) != SQLITE_OK) {
        free(match);
        return jl_rag_sql_fail(ix, "query");
    }
    sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, depth);
    out->items = malloc(sizeof *out->items * (size_t)depth);
    jl_status s = out->items ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory");
    int rc;
    while (s == JL_OK && (rc = sqlite3_step(st)) == SQLITE_ROW && out->n < depth)
        out->items[out->n++] = (ranked){sqlite3_column_int64(st, 0), -sqlite3_column_double(st, 1)};
    if (s == JL_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) s = jl_rag_sql_fail(ix, "query");
    sqlite3_finalize(st);
    free(match);
    return s;
}

static int by_score(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The mean of the stored embeddings into ix->embed_mean (one scan). */
static jl_status load_mean(jl_index *ix) {
    const int dim = ix->embed_dim;
    double *sum = calloc((size_t)dim, sizeof *sum);
    float *mean = malloc(sizeof *mean * (size_t)dim);
    sqlite3_stmt *st = NULL;
    jl_status s = sum && mean ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory");
    if (s == JL_OK && sqlite3_prepare_v2(ix->db, "SELECT vec FROM embeddings", -1, &st, NULL) != SQLITE_OK)
        s = jl_rag_sql_fail(ix, "query");
    size_t n = 0;
    int rc = SQLITE_DONE;
    while (s == JL_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const float *v = sqlite3_column_blob(st, 0);
        if (sqlite3_column_bytes(st, 0) != (int)(sizeof(float) * (size_t)dim)) continue; /* rank_dense names it */
        for (int i = 0; i < dim; i++) sum[i] += v[i];
        n++;
    }
    if (s == JL_OK && rc != SQLITE_DONE) s = jl_rag_sql_fail(ix, "query");
    sqlite3_finalize(st);
    for (int i = 0; s == JL_OK && i < dim; i++) mean[i] = n ? (float)(sum[i] / (double)n) : 0.0f;
    free(sum);
    if (s != JL_OK) {
        free(mean);
        return s;
    }
    ix->embed_mean = mean;
    return JL_OK;
}

/* Cosine of q (centred and normalised already when mean is given) and v - mean; v is unit length. */
static double dense_score(const float *q, const float *v, const float *mean, int dim) {
    double dot = 0, norm = 0;
    for (int i = 0; i < dim; i++) {
        double x = mean ? (double)v[i] - mean[i] : v[i];
        dot += (double)q[i] * x;
        norm += x * x;
    }
    return mean ? (norm > 0 ? dot / sqrt(norm) : 0) : dot;
}

/* Dense ranking: cosine of the question's embedding with every stored one (after subtracting their mean when
 * ix->dense_center: mean-pooled hidden states of a small model share one large common direction, which otherwise
 * dominates every cosine). Keeps the `depth` best of the full scan in items (sorted: n is small). */
static jl_status rank_dense(jl_index *ix, jl_embedder *e, const char *question, int depth, ranking *out) {
    out->items = NULL;
    out->n = 0;
    int dim = ix->embed_dim;
    float *q = malloc(sizeof *q * (size_t)dim);
    if (!q) return jl_fail(JL_ERR_NOMEM, "out of memory");
    jl_status s = jl_embed_text(e, question, q);
    if (s == JL_OK && ix->dense_center && !ix->embed_mean) s = load_mean(ix);
    const float *mean = ix->dense_center ? ix->embed_mean : NULL;
    if (s == JL_OK && mean) {
        double norm = 0;
        for (int i = 0; i < dim; i++) norm += ((double)q[i] - mean[i]) * ((double)q[i] - mean[i]);
        norm = sqrt(norm);
        for (int i = 0; i < dim; i++) q[i] = norm > 0 ? (float)((q[i] - mean[i]) / norm) : 0.0f;
    }
    sqlite3_stmt *st = NULL;
    if (s == JL_OK && sqlite3_prepare_v2(ix->db, "SELECT id, vec FROM embeddings", -1, &st, NULL) != SQLITE_OK)
        s = jl_rag_sql_fail(ix, "query");
    ranked *all = NULL;
    size_t n = 0, cap = 0;
    int rc = SQLITE_DONE;
    while (s == JL_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const float *v = sqlite3_column_blob(st, 1);
        if (sqlite3_column_bytes(st, 1) != (int)(sizeof(float) * (size_t)dim)) {
            s = jl_fail(JL_ERR_FORMAT, "%s: embedding of passage %lld has the wrong size", ix->path,
                        (long long)sqlite3_column_int64(st, 0));
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            ranked *p = realloc(all, sizeof *p * cap);
            if (!p) {
                s = jl_fail(JL_ERR_NOMEM, "out of memory");
                break;
            }
            all = p;
        }
        all[n++] = (ranked){sqlite3_column_int64(st, 0), dense_score(q, v, mean, dim)};
    }
    if (s == JL_OK && rc != SQLITE_DONE) s = jl_rag_sql_fail(ix, "query");
    sqlite3_finalize(st);
    free(q);
    if (s != JL_OK) {
        free(all);
        return s;
    }
    if (all) qsort(all, n, sizeof *all, by_score);
    out->items = all;
    out->n = (int)(n < (size_t)depth ? n : (size_t)depth);
    return JL_OK;
}

static int rank_of(const ranking *r, int64_t id) {
    for (int i = 0; i < r->n; i++)
        if (r->items[i].id == id) return i + 1;
    return 0;
}

/* RRF: score = Σ 1 / (60 + rank) over the lists that hold the passage. */
static jl_status fuse(const ranking *a, const ranking *b, ranking *out) {
    out->items = malloc(sizeof *out->items * (size_t)(a->n + b->n + 1));
    out->n = 0;
    if (!out->items) return jl_fail(JL_ERR_NOMEM, "out of memory");
    const ranking *lists[2] = {a, b};
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < lists[l]->n; i++) {
            int64_t id = lists[l]->items[i].id;
            int seen = 0;
            for (int j = 0; j < out->n && !seen; j++) seen = out->items[j].id == id;
            if (seen) continue;
            int ra = rank_of(a, id), rb = rank_of(b, id);
            double s = (ra ? 1.0 / (RRF_K + ra) : 0) + (rb ? 1.0 / (RRF_K + rb) : 0);
            out->items[out->n++] = (ranked){id, s};
        }
    qsort(out->items, (size_t)out->n, sizeof *out->items, by_score);
    return JL_OK;
}

static jl_status fill_hit(jl_index *ix, sqlite3_stmt *st, const ranked *r, jl_hit *h) {
    memset(h, 0, sizeof *h);
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, r->id);
    if (sqlite3_step(st) != SQLITE_ROW) return jl_fail(JL_ERR_FORMAT, "%s: passage %lld is missing", ix->path, (long long)r->id);
    h->id = r->id;
    h->score = r->score;
    h->text = strdup((const char *)sqlite3_column_text(st, 0));
    h->source = strdup((const char *)sqlite3_column_text(st, 1));
    h->start = sqlite3_column_int64(st, 2);
    h->end = sqlite3_column_int64(st, 3);
    return h->text && h->source ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory");
}

static jl_status make_hits(jl_index *ix, const ranking *final, const ranking *bm, const ranking *dn, int k,
                           jl_hit **hits, int *n_hits) {
    int n = final->n < k ? final->n : k;
    jl_hit *h = calloc((size_t)(n ? n : 1), sizeof *h);
    if (!h) return jl_fail(JL_ERR_NOMEM, "out of memory");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ix->db, "SELECT p.text, f.path, p.start, p.end FROM passages p JOIN files f ON "
                                   "f.id = p.file_id WHERE p.id = ?1", -1, &st, NULL) != SQLITE_OK) {
        free(h);
        return jl_rag_sql_fail(ix, "query");
    }
    jl_status s = JL_OK;
    int i = 0;
    for (; s == JL_OK && i < n; i++) {
        s = fill_hit(ix, st, &final->items[i], &h[i]);
        h[i].rank_bm25 = rank_of(bm, final->items[i].id);
        h[i].rank_dense = rank_of(dn, final->items[i].id);
    }
    sqlite3_finalize(st);
    if (s != JL_OK) {
        jl_hits_free(h, i);
        return s;
    }
    *hits = h;
    *n_hits = n;
    return JL_OK;
}

jl_status jl_index_query(jl_index *ix, const char *question, int k, jl_rank_mode mode, jl_embedder *e,
                         int timeout_ms, jl_hit **hits, int *n_hits) {
    *hits = NULL;
    *n_hits = 0;
    if (k < 1) return jl_fail(JL_ERR_ARG, "k must be at least 1");
    if (!ix->tokenizer) return jl_fail(JL_ERR_ARG, "%s: the index is empty (run jielong index build)", ix->path);
    /* auto is BM25: measured on the poem questions (bench_rag), the small models' dense list is weak (recall@1
     * 8-13%) and fusing it with BM25 lowers BM25's 89% to 40-47%; dense and fused stay available by name. */
    if (mode == JL_RANK_AUTO) mode = JL_RANK_BM25;
    if (mode != JL_RANK_BM25 && !ix->embed_model)
        return jl_fail(JL_ERR_ARG, "%s: has no embeddings (build it with --model)", ix->path);
    if (mode != JL_RANK_BM25 && !e) return jl_fail(JL_ERR_ARG, "dense ranking needs the index's model (%s)", ix->embed_model);
    double deadline = now_ms() + timeout_ms;
    if (timeout_ms > 0) sqlite3_progress_handler(ix->db, 200, past_deadline, &deadline);
    int depth = k * 10 > 100 ? k * 10 : 100; /* lists fused are deeper than k */
    ranking bm = {0}, dn = {0}, fused = {0};
    jl_status st = JL_OK;
    if (mode != JL_RANK_DENSE) st = rank_bm25(ix, question, mode == JL_RANK_BM25 ? k : depth, &bm);
    if (st == JL_OK && mode != JL_RANK_BM25) st = rank_dense(ix, e, question, mode == JL_RANK_DENSE ? k : depth, &dn);
    if (st == JL_OK && mode == JL_RANK_FUSED) st = fuse(&bm, &dn, &fused);
    const ranking *final = mode == JL_RANK_FUSED ? &fused : mode == JL_RANK_DENSE ? &dn : &bm;
    if (st == JL_OK) st = make_hits(ix, final, &bm, &dn, k, hits, n_hits);
    if (timeout_ms > 0) sqlite3_progress_handler(ix->db, 0, NULL, NULL);
    free(bm.items);
    free(dn.items);
    free(fused.items);
    return st;
}

void jl_hits_free(jl_hit *hits, int n) {
    if (!hits) return;
    for (int i = 0; i < n; i++) {
        free(hits[i].text);
        free(hits[i].source);
    }
    free(hits);
}
