/* The "jlhan" FTS5 tokenizer (one token per Han character, lower-cased words) and MATCH expressions built
 * from a question: jlhan ORs the question's Han bigrams (as two-token phrases; a Han character in no pair
 * alone) and its words; trigram ORs every three-character window of each run of letters. */
#include "rag/rag_internal.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
    void *ctx;
    int (*emit)(void *, int, const char *, int, int, int);
    const char *text;
    int rc;
    char buf[256];
} fts_ctx;

static int fts_token(void *user, const jl_rag_token *t) {
    fts_ctx *c = user;
    size_t n = t->end - t->start;
    if (n > sizeof c->buf) n = sizeof c->buf; /* a longer word is indexed by its first 256 bytes */
    for (size_t i = 0; i < n; i++) {
        char ch = c->text[t->start + i];
        c->buf[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    c->rc = c->emit(c->ctx, 0, c->buf, (int)n, (int)t->start, (int)t->end);
    return c->rc != SQLITE_OK;
}

static int xcreate(void *p, const char **args, int n, Fts5Tokenizer **out) {
    (void)p;
    (void)args;
    if (n != 0) return SQLITE_ERROR;
    *out = (Fts5Tokenizer *)1; /* no state */
    return SQLITE_OK;
}

static void xdelete(Fts5Tokenizer *t) { (void)t; }

static int xtokenize(Fts5Tokenizer *t, void *ctx, int flags, const char *text, int n,
                     int (*emit)(void *, int, const char *, int, int, int)) {
    (void)t;
    (void)flags;
    fts_ctx c = {.ctx = ctx, .emit = emit, .text = text, .rc = SQLITE_OK};
    jl_rag_tokenize(text, (size_t)n, fts_token, &c);
    return c.rc;
}

static fts5_api *fts5_of(sqlite3 *db) {
    fts5_api *api = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return api;
}

int jl_rag_register_tokenizer(sqlite3 *db) {
    fts5_api *api = fts5_of(db);
    if (!api) return SQLITE_ERROR;
    fts5_tokenizer tk = {xcreate, xdelete, xtokenize};
    return api->xCreateTokenizer(api, "jlhan", NULL, &tk, NULL);
}

/* ---- MATCH expressions ---- */

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} strbuf;

static void sb_add(strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap) cap *= 2;
        char *p = realloc(b->buf, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->buf = p;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

/* Adds "term" unless the expression already has it. */
static void add_term(strbuf *b, const char *s, size_t n) {
    char q[300];
    if (n == 0 || n > 256) return;
    q[0] = '"';
    for (size_t i = 0; i < n; i++) q[1 + i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
    q[n + 1] = '"';
    q[n + 2] = '\0';
    if (b->buf && strstr(b->buf, q)) return;
    if (b->len) sb_add(b, " OR ", 4);
    sb_add(b, q, n + 2);
}

typedef struct {
    strbuf *b;
    const char *text;
    int terms;
    jl_rag_token prev;
    int have_prev, prev_paired;
    size_t run_start, run_chars; /* trigram: the current run of joined characters */
    size_t win[512];             /* trigram: character starts of the run (bounded) */
} query_ctx;

/* both: every Han character and word, and each pair of adjacent Han characters as a phrase; unigram: no pairs */
static int han_term(void *user, const jl_rag_token *t) {
    query_ctx *c = user;
    if (t->han && t->joined && c->have_prev && c->prev.han && c->terms == JL_TERMS_BOTH)
        add_term(c->b, c->text + c->prev.start, t->end - c->prev.start);
    add_term(c->b, c->text + t->start, t->end - t->start);
    c->prev = *t;
    c->have_prev = 1;
    return 0;
}

/* bigram mode: a Han character that ends up in no pair is added alone */
static int han_term_bigram(void *user, const jl_rag_token *t) {
    query_ctx *c = user;
    int paired = t->han && t->joined && c->have_prev && c->prev.han;
    if (!paired && c->have_prev && c->prev.han && !c->prev_paired)
        add_term(c->b, c->text + c->prev.start, c->prev.end - c->prev.start);
    if (paired) add_term(c->b, c->text + c->prev.start, t->end - c->prev.start);
    else if (!t->han) add_term(c->b, c->text + t->start, t->end - t->start);
    c->prev_paired = paired;
    c->prev = *t;
    c->have_prev = 1;
    return 0;
}

static void trigram_flush(query_ctx *c) {
    for (size_t i = 0; i + 3 <= c->run_chars && i + 3 < 512; i++) {
        size_t s = c->win[i], e = i + 3 < c->run_chars ? c->win[i + 3] : c->prev.end;
        add_term(c->b, c->text + s, e - s);
    }
    c->run_chars = 0;
}

/* trigram: runs of Han characters (and each word on its own), windows of three characters */
static int trigram_term(void *user, const jl_rag_token *t) {
    query_ctx *c = user;
    if (!(t->han && t->joined)) trigram_flush(c);
    if (t->han) {
        if (c->run_chars < 512) c->win[c->run_chars++] = t->start;
        c->prev = *t;
    } else {
        for (size_t s = t->start; s < t->end && c->run_chars < 512;) {
            c->win[c->run_chars++] = s;
            s++;
            while (s < t->end && ((unsigned char)c->text[s] & 0xC0) == 0x80) s++;
        }
        c->prev = *t;
        trigram_flush(c);
    }
    return 0;
}

char *jl_rag_match_query(const jl_index *ix, const char *question) {
    strbuf b = {0};
    query_ctx c = {.b = &b, .text = question, .terms = ix->query_terms};
    size_t len = strlen(question);
    if (ix->tokenizer && !strcmp(ix->tokenizer, "trigram")) {
        jl_rag_tokenize(question, len, trigram_term, &c);
        trigram_flush(&c);
    } else if (c.terms == JL_TERMS_BIGRAM) {
        jl_rag_tokenize(question, len, han_term_bigram, &c);
        if (c.have_prev && c.prev.han && !c.prev_paired)
            add_term(&b, question + c.prev.start, c.prev.end - c.prev.start);
    } else {
        jl_rag_tokenize(question, len, han_term, &c);
    }
    if (b.oom) {
        free(b.buf);
        return NULL;
    }
    if (!b.buf) sb_add(&b, "", 0);
    return b.buf;
}
