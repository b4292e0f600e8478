/* Encoding: special-token split → regex pre-tokenisation (PCRE2) → per-word cache → BPE merges by rank.
 * Large texts are cut at safe newlines and the pieces encoded on all OpenMP threads, results joined in order. */
#include "tokenizer/pipeline.h"
#include "core/mem.h"
#include <omp.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* ---- regex matching: one match data and JIT stack per thread, made once ---- */
typedef struct {
    pcre2_match_data *md;
    pcre2_match_context *mc;
    pcre2_jit_stack *stack;
} regex_state;

static _Thread_local regex_state tls_regex;

/* A thread that encoded frees its state when it exits (a server encodes on one thread per connection). */
static pthread_key_t regex_key;
static pthread_once_t regex_key_once = PTHREAD_ONCE_INIT;

static void regex_state_free(void *p) {
    regex_state *r = p;
    pcre2_match_data_free(r->md);
    pcre2_match_context_free(r->mc);
    pcre2_jit_stack_free(r->stack);
    memset(r, 0, sizeof *r);
}

static void regex_key_make(void) { pthread_key_create(&regex_key, regex_state_free); }

static jl_status regex_state_get(regex_state **out) {
    regex_state *r = &tls_regex;
    if (!r->md) {
        pthread_once(&regex_key_once, regex_key_make);
        pthread_setspecific(regex_key, r);
        r->md = pcre2_match_data_create(1, NULL);
        r->mc = pcre2_match_context_create(NULL);
        r->stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
        if (!r->md || !r->mc || !r->stack) {
            pcre2_match_data_free(r->md);
            pcre2_match_context_free(r->mc);
            pcre2_jit_stack_free(r->stack);
            memset(r, 0, sizeof *r);
            return jl_fail(JL_ERR_NOMEM, "out of memory (regex)");
        }
        pcre2_jit_stack_assign(r->mc, NULL, r->stack);
    }
    *out = r;
    return JL_OK;
}

/* Calls fn for the matches of re in s[0..n) and the gaps between them, in order (is_match 1 / 0). Empty matches
 * are dropped and the search goes on one character later, as HF's Oniguruma iterator does; a match can never end
 * past n (the `$`-at-the-end case). */
typedef tok_span_fn span_fn;

static jl_status find_regex(const pcre2_code *re, const char *s, size_t n, span_fn fn, void *user) {
    regex_state *r;
    jl_status st = regex_state_get(&r);
    if (st != JL_OK) return st;
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
    size_t prev = 0, search = 0;
    while (search < n && st == JL_OK) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, search, 0, r->md, r->mc);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return jl_fail(JL_ERR_RUNTIME, "pre-tokenizer failed at byte %zu: %s", search, (const char *)msg);
        }
        size_t start = ov[0], end = ov[1];
        if (end <= start || end > n) { /* empty: try again one character on */
            uint32_t cp;
            search = start + (start < n ? tok_utf8_char(s + start, n - start, &cp) : 1);
            continue;
        }
        if (start > prev) st = fn(user, prev, start, 0);
        if (st == JL_OK) st = fn(user, start, end, 1);
        prev = search = end;
    }
    if (st == JL_OK && prev < n) st = fn(user, prev, n, 0);
    return st;
}

static jl_status find_literal(const char *lit, size_t lit_len, const char *s, size_t n, span_fn fn, void *user) {
    size_t prev = 0;
    jl_status st = JL_OK;
    while (st == JL_OK && lit_len && prev < n) {
        const char *hit = memmem(s + prev, n - prev, lit, lit_len);
        if (!hit) break;
        size_t start = (size_t)(hit - s);
        if (start > prev) st = fn(user, prev, start, 0);
        if (st == JL_OK) st = fn(user, start, start + lit_len, 1);
        prev = start + lit_len;
    }
    if (st == JL_OK && prev < n) st = fn(user, prev, n, 0);
    return st;
}

/* ---- pre-tokenisation for training: regex matches and the runs between them ---- */
/* Hands a piece to fn, cutting one longer than TOK_MAX_PIECE into windows that end before a UTF-8 lead byte,
 * so BPE (and training) memory stays bounded on pathological input such as megabytes of one letter. */
static jl_status emit_piece(tok_piece_fn fn, void *user, const char *s, size_t n) {
    while (n > TOK_MAX_PIECE) {
        size_t cut = TOK_MAX_PIECE;
        while (cut > TOK_MAX_PIECE - 4 && ((unsigned char)s[cut] & 0xC0) == 0x80) cut--;
        jl_status st = fn(user, s, cut);
        if (st != JL_OK) return st;
        s += cut;
        n -= cut;
    }
    return fn(user, s, n);
}

typedef struct {
    tok_piece_fn fn;
    void *user;
    const char *text;
} pretok_ctx;

static jl_status pretok_span(void *user, size_t start, size_t end, int is_match) {
    (void)is_match;
    pretok_ctx *c = user;
    return emit_piece(c->fn, c->user, c->text + start, end - start);
}

jl_status tok_pretokenize(const pcre2_code *re, const char *text, size_t len, tok_piece_fn fn, void *user) {
    pretok_ctx c = {fn, user, text};
    return find_regex(re, text, len, pretok_span, &c);
}

/* ---- splitting into units ---- */
static int is_ascii_alnum(unsigned char c) { return (unsigned)((c | 32) - 'a') < 26u || (unsigned)(c - '0') < 10u; }

/* First position >= from where splitting is safe (see tok_pattern_parallel_safe), or `len`. */
static size_t next_safe_split(const char *s, size_t from, size_t len) {
    size_t i = from < 2 ? 2 : from; /* candidate: split before s[i], right after a newline at s[i - 1] */
    while (i < len) {
        const char *nl = memchr(s + i - 1, '\n', len - (i - 1));
        if (!nl) return len;
        i = (size_t)(nl - s) + 1;
        if (i < len && i >= 2 && is_ascii_alnum((unsigned char)s[i]) && (unsigned char)s[i - 2] > ' ' &&
            (unsigned char)s[i - 2] < 0x7F)
            return i;
        i++;
    }
    return len;
}

int jl_tokenizer_splittable(const jl_tokenizer *t) { return t->parallel_safe; }

size_t jl_tokenizer_safe_cut(const jl_tokenizer *t, const char *s, size_t len) {
    if (!t->parallel_safe) return 0;
    for (size_t i = len; i-- > 2;)
        if (s[i - 1] == '\n' && is_ascii_alnum((unsigned char)s[i]) && (unsigned char)s[i - 2] > ' ' &&
            (unsigned char)s[i - 2] < 0x7F)
            return i;
    return 0;
}

typedef struct {
    tok_unit *v;
    size_t n, cap;
} unit_vec;

static int push_unit(unit_vec *u, size_t start, size_t len, int32_t special, int cont) {
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 16;
        tok_unit *v = realloc(u->v, cap * sizeof *v);
        if (!v) return -1;
        u->v = v;
        u->cap = cap;
    }
    u->v[u->n++] = (tok_unit){start, len, special, cont};
    return 0;
}

/* Whether a SentencePiece-style segment text[seg..) may be cut before text[i] (see spm_cut_allowed in json.c): a
 * space after a character that is neither a space, "▁" nor one that some token holds before "▁". */
static int spm_cut_ok(const tok_pipeline *p, const char *text, size_t seg, size_t i) {
    if (i <= seg || text[i] != ' ') return 0;
    uint32_t cp;
    tok_utf8_prev(text + seg, i - seg, &cp);
    if (cp == ' ' || cp == 0x2581) return 0;
    for (int j = 0; j < p->n_spm_bad; j++)
        if (p->spm_bad[j] == cp) return 0;
    return 1;
}

/* First position >= from in the segment text[seg..end) where spm_cut_ok allows a cut, or end. */
static size_t next_spm_split(const tok_pipeline *p, const char *text, size_t seg, size_t from, size_t end) {
    for (size_t i = from; i < end; i++) {
        const char *sp = memchr(text + i, ' ', end - i);
        if (!sp) return end;
        i = (size_t)(sp - text);
        if (spm_cut_ok(p, text, seg, i)) return i;
    }
    return end;
}

/* The units of the text segment text[start..end): cut near every `target` bytes after safe newlines
 * (parallel_safe) or before safe spaces (spm: a pipeline with spm_cut; the later parts are marked cont). */
static int push_text(unit_vec *u, const char *text, size_t start, size_t end, int parallel_safe,
                     const tok_pipeline *spm, size_t target) {
    size_t seg = start;
    while (start < end) {
        size_t cut = end;
        if (end - start > target && end - start - target > target / 2) { /* (no overflow at SIZE_MAX) */
            if (spm) cut = next_spm_split(spm, text, seg, start + target, end);
            else if (parallel_safe) cut = next_safe_split(text, start + target, end);
        }
        if (push_unit(u, start, cut - start, -1, start > seg)) return -1;
        start = cut;
    }
    return 0;
}

/* An added token the scan found: text[start, end) (its lstrip / rstrip applied; start not yet kept from
 * reaching back over the previous one) is id. */
typedef struct {
    size_t start, end;
    int32_t id;
} added_hit;
typedef struct {
    added_hit *v;
    size_t n, cap;
} hit_vec;

enum { ADDED_SCAN_PARTS = 64 };

/* The added tokens of text[from, to) in the order a scan of the whole text meets them (leftmost-longest, a
 * match skipped over). The same as that scan's when it is at rest at from and at to: see added_scan_cuts. */
static int scan_added(const jl_tokenizer *t, const tok_added_set *set, int allow_special, const char *text,
                      size_t len, size_t from, size_t to, hit_vec *h) {
    for (size_t i = from; i < to; i++) {
        if (!set->first[(unsigned char)text[i]]) continue;
        int k;
        size_t n = tok_added_match(t, set, text + i, len - i, allow_special, &k);
        size_t start = i, end = i + n;
        if (!n || !tok_added_accept(set, k, text, len, &start, &end)) continue;
        if (h->n == h->cap) {
            size_t cap = h->cap ? h->cap * 2 : 1024;
            added_hit *v = realloc(h->v, cap * sizeof *v);
            if (!v) return -1;
            h->v = v;
            h->cap = cap;
        }
        h->v[h->n++] = (added_hit){start, end, set->ids[k]};
        i = end - 1;
    }
    return 0;
}

/* Where the scan may be cut into parts (cut[0] = 0 < cut[1] < ... < cut[n] = len; returns n): right after a
 * byte that set->cut_ok marks. No token holds that byte and it is not whitespace, so no match covers it, nor a
 * match's lstrip / rstrip: the whole-text scan steps onto it and then onto the next byte, as a fresh scan
 * started there does. Each cut is the first such place at or after its share of the text; none found: fewer. */
static int added_scan_cuts(const tok_added_set *set, const char *text, size_t len, int parts, size_t *cut) {
    int n = 0;
    cut[0] = 0;
    for (int j = 1; j < parts; j++) {
        size_t c = len / (size_t)parts * (size_t)j;
        if (c <= cut[n]) continue;
        while (c < len && !set->cut_ok[(unsigned char)text[c - 1]]) c++;
        if (c >= len) break;
        cut[++n] = c;
    }
    cut[++n] = len;
    return n;
}

/* The added tokens of the whole text, found by the threads in parts of at least 4 × target bytes (the units'
 * size: 1 MB parts by default, so texts of 2 MB and more; the tests' small targets cut short texts into up to
 * ADDED_SCAN_PARTS parts): hits[0..*parts). */
static int find_added(const jl_tokenizer *t, const tok_added_set *set, int allow_special, const char *text,
                      size_t len, size_t target, hit_vec hits[ADDED_SCAN_PARTS], int *parts) {
    size_t want = len / 4 / (target ? target : 1);
    if (want > ADDED_SCAN_PARTS) want = ADDED_SCAN_PARTS;
    size_t cut[ADDED_SCAN_PARTS + 1] = {0, len};
    int n = want > 1 ? added_scan_cuts(set, text, len, (int)want, cut) : 1, failed = 0;
    int threads = omp_get_max_threads() < n ? omp_get_max_threads() : n;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) reduction(| : failed) if (threads > 1)
    for (int j = 0; j < n; j++) failed |= scan_added(t, set, allow_special, text, len, cut[j], cut[j + 1], &hits[j]);
    *parts = n;
    return failed;
}

jl_status tok_split_units(const jl_tokenizer *t, int allow_special, int parallel_safe, const char *text, size_t len,
                          size_t target, tok_unit **units, size_t *n_units) {
    unit_vec u = {0};
    size_t seg = 0;
    int failed = 0;
    const tok_added_set *set = t ? &t->pipe->raw_added : NULL;
    const tok_pipeline *spm = t && t->pipe->spm_cut ? t->pipe : NULL;
    int can_match = set && set->n && allow_special; /* without allow_special only the non-special ones match */
    for (int k = 0; set && !can_match && k < set->n; k++) can_match = !(set->flags[k] & TOK_ADDED_SPECIAL);
    if (can_match) {
        hit_vec hits[ADDED_SCAN_PARTS] = {{0}};
        int parts = 0;
        failed = find_added(t, set, allow_special, text, len, target, hits, &parts);
        for (int j = 0; j < parts && !failed; j++)
            for (size_t h = 0; h < hits[j].n && !failed; h++) {
                size_t start = hits[j].v[h].start, end = hits[j].v[h].end;
                if (start < seg) start = seg;
                failed = push_text(&u, text, seg, start, parallel_safe, spm, target) ||
                         push_unit(&u, start, end - start, hits[j].v[h].id, 0);
                seg = end;
            }
        for (int j = 0; j < parts; j++) free(hits[j].v);
    }
    if (!failed) failed = push_text(&u, text, seg, len, parallel_safe, spm, target);
    if (failed) {
        free(u.v);
        return jl_fail(JL_ERR_NOMEM, "out of memory (splitting text)");
    }
    *units = u.v;
    *n_units = u.n;
    return JL_OK;
}

/* ---- BPE on one pre-token ---- */
enum { SMALL_WORD = 128 };

static int32_t pair_rank(const jl_tokenizer *t, int32_t l, int32_t r, int32_t *merged) {
    const tok_pair_slot *s = tok_pair_find(&t->pairs, l, r);
    if (!s) return INT32_MAX;
    *merged = s->merged;
    return s->rank;
}

/* Position of the lowest of ranks[0..m) (m rounded up to 16, padded with INT32_MAX), the leftmost on ties. */
static size_t lowest_rank(const int32_t *ranks, size_t m) {
#if defined(__AVX512F__)
    size_t nv = (m + 15) / 16;
    __m512i lo = _mm512_loadu_si512(ranks);
    for (size_t k = 1; k < nv; k++) lo = _mm512_min_epi32(lo, _mm512_loadu_si512(ranks + 16 * k));
    __m512i want = _mm512_set1_epi32(_mm512_reduce_min_epi32(lo));
    for (size_t k = 0;; k++) {
        __mmask16 hit = _mm512_cmpeq_epi32_mask(_mm512_loadu_si512(ranks + 16 * k), want);
        if (hit) return 16 * k + (size_t)__builtin_ctz(hit);
    }
#else
    size_t best = 0;
    for (size_t i = 1; i < m; i++)
        if (ranks[i] < ranks[best]) best = i;
    return best;
#endif
}

/* Words of at most SMALL_WORD symbols, like tiktoken: the pair of lowest rank (leftmost on ties) merges until none
 * is left. Symbols keep their slot; a merged-away slot is unlinked (nxt / prv) and its rank set to INT32_MAX, so
 * nothing shifts and the search for the lowest rank is a few vector compares. ids, ranks and merged hold the m
 * initial symbols and the pairs' ranks (ranks[i] for symbol i and the next one), with room for SMALL_WORD. */
static int bpe_small_run(const jl_tokenizer *t, int32_t *ids, int32_t *ranks, int32_t *merged, size_t m,
                         tok_ivec *out) {
    uint8_t nxt[SMALL_WORD], prv[SMALL_WORD];
    for (size_t i = 0; i < m; i++) {
        nxt[i] = (uint8_t)(i + 1);
        prv[i] = (uint8_t)(i - 1); /* 255 for the first: SMALL_WORD < 255 */
    }
    size_t padded = (m + 15) & ~(size_t)15;
    for (size_t i = m ? m - 1 : 0; i < padded; i++) ranks[i] = INT32_MAX;
    size_t left = m;
    while (left > 1) {
        size_t best = lowest_rank(ranks, m);
        if (ranks[best] == INT32_MAX) break;
        size_t gone = nxt[best], after = nxt[gone];
        ids[best] = merged[best];
        ranks[gone] = INT32_MAX;
        nxt[best] = (uint8_t)after;
        if (after < m) prv[after] = (uint8_t)best;
        left--;
        size_t before = prv[best];
        if (before < m) ranks[before] = pair_rank(t, ids[before], ids[best], &merged[before]);
        ranks[best] = after < m ? pair_rank(t, ids[best], ids[after], &merged[best]) : INT32_MAX;
    }
    if (tok_ivec_reserve(out, left)) return -1;
    for (size_t i = 0; i < m; i = nxt[i]) out->v[out->n++] = ids[i];
    return 0;
}

static int bpe_small(const jl_tokenizer *t, const unsigned char *s, size_t n, tok_ivec *out) {
    int32_t ids[SMALL_WORD], ranks[SMALL_WORD], merged[SMALL_WORD];
    for (size_t i = 0; i < n; i++) ids[i] = t->byte_id[s[i]];
    for (size_t i = 0; i + 1 < n; i++) {
        ranks[i] = t->byte_pairs[s[i] * 256 + s[i + 1]].rank;
        merged[i] = t->byte_pairs[s[i] * 256 + s[i + 1]].merged;
    }
    return bpe_small_run(t, ids, ranks, merged, n, out);
}

static int bpe_small_ids(const jl_tokenizer *t, const int32_t *sym, size_t m, tok_ivec *out) {
    int32_t ids[SMALL_WORD], ranks[SMALL_WORD], merged[SMALL_WORD];
    if (m) memcpy(ids, sym, m * sizeof *ids);
    for (size_t i = 0; i + 1 < m; i++) ranks[i] = pair_rank(t, ids[i], ids[i + 1], &merged[i]);
    return bpe_small_run(t, ids, ranks, merged, m, out);
}

/* Long words: a linked list of parts and a min-heap of candidate pairs keyed by (rank, position), O(n log n).
 * Stale heap entries are skipped: an entry is live while both its parts still hold the ids it was made from. */
typedef struct {
    int32_t rank, pos, right, left_id, right_id, merged;
} heap_entry;

static int heap_less(const heap_entry *a, const heap_entry *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(heap_entry *h, size_t *n, heap_entry e) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&e, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static heap_entry heap_pop(heap_entry *h, size_t *n) {
    heap_entry top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && heap_less(&h[c + 1], &h[c])) c++;
        if (!heap_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

static void push_pair(const jl_tokenizer *t, heap_entry *h, size_t *nh, const int32_t *ids, int32_t l, int32_t r) {
    int32_t merged;
    int32_t rank = pair_rank(t, ids[l], ids[r], &merged);
    if (rank != INT32_MAX) heap_push(h, nh, (heap_entry){rank, l, r, ids[l], ids[r], merged});
}

/* s: bytes (byte-level) or, with s NULL, the initial symbols sym[0..n). */
static int bpe_large(const jl_tokenizer *t, const unsigned char *s, const int32_t *sym, size_t n, tok_ivec *out) {
    if (n > INT32_MAX / 2) return -1;
    int32_t *ids = malloc(n * sizeof *ids), *next = malloc(n * sizeof *next), *prev = malloc(n * sizeof *prev);
    heap_entry *h = malloc(2 * n * sizeof *h + sizeof *h); /* each merge adds at most 2 entries, minus the one it pops */
    int rc = -1;
    if (!ids || !next || !prev || !h) goto done;
    for (size_t i = 0; i < n; i++) {
        ids[i] = s ? t->byte_id[s[i]] : sym[i];
        next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
        prev[i] = (int32_t)i - 1;
    }
    size_t nh = 0;
    for (size_t i = 0; i + 1 < n; i++) push_pair(t, h, &nh, ids, (int32_t)i, (int32_t)i + 1);
    while (nh) {
        heap_entry e = heap_pop(h, &nh);
        if (ids[e.pos] != e.left_id || next[e.pos] != e.right || ids[e.right] != e.right_id) continue;
        ids[e.pos] = e.merged; /* the left part absorbs the right one */
        ids[e.right] = -1;
        next[e.pos] = next[e.right];
        if (next[e.pos] >= 0) prev[next[e.pos]] = e.pos;
        if (prev[e.pos] >= 0) push_pair(t, h, &nh, ids, prev[e.pos], e.pos);
        if (next[e.pos] >= 0) push_pair(t, h, &nh, ids, e.pos, next[e.pos]);
    }
    for (int32_t i = 0; i >= 0; i = next[i])
        if (tok_ivec_push(out, ids[i])) goto done;
    rc = 0;
done:
    free(ids);
    free(next);
    free(prev);
    free(h);
    return rc;
}

/* ---- per-thread word cache: pre-token bytes → ids ----
 * Direct-mapped and of fixed size (at most CACHE_SLOTS_MAX entries of one cache line, chosen by the text's
 * length): short pre-tokens repeat (a few tens of thousands of distinct ones in megabytes of text), long ones rarely
 * do, so only words of at most CACHE_KEY bytes and CACHE_IDS ids are kept, and a newcomer replaces the slot's old
 * word. The cache stays in L2 and costs no allocation after the first. */
enum { CACHE_KEY = 22, CACHE_IDS = 8, CACHE_SLOTS_MIN = 256, CACHE_SLOTS_MAX = 1 << 14 };

typedef struct {
    uint64_t hash;    /* 0 = empty (hashes are stored with the low bit set) */
    uint8_t key_len, n_ids;
    char key[CACHE_KEY];
    int32_t ids[CACHE_IDS];
} cache_entry;

typedef struct {
    const jl_tokenizer *t;
    cache_entry *cache; /* NULL until the first word is cached */
    size_t cache_mask;
    size_t text_len;    /* sizes the cache */
    tok_ivec *out;   /* where the current unit's ids go */
    int allow_special;
    /* scratch of the pipeline: per pre-tokenizer stage a byte buffer and a span list; normalizer buffers;
     * the initial symbols of a character-level word */
    struct {
        char *buf;
        size_t cap;
        struct span { size_t start, end; int is_match; } *spans;
        size_t n_spans, spans_cap;
    } stage[TOK_MAX_STAGES];
    tok_norm_scratch norm;
    tok_ivec sym;
} encoder;

static void encoder_free(encoder *e) {
    free(e->cache);
    for (int k = 0; k < TOK_MAX_STAGES; k++) {
        free(e->stage[k].buf);
        free(e->stage[k].spans);
    }
    tok_norm_scratch_free(&e->norm);
    free(e->sym.v);
}

static const cache_entry *cache_find(const encoder *e, const char *s, size_t n, uint64_t h) {
    if (!e->cache) return NULL;
    const cache_entry *c = &e->cache[h & e->cache_mask];
    return c->hash == h && c->key_len == n && memcmp(c->key, s, n) == 0 ? c : NULL;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* Remembers ids[from..out->n) as the encoding of s (n <= CACHE_KEY), if there are at most CACHE_IDS of them. */
static void cache_insert(encoder *e, const char *s, size_t n, uint64_t h, size_t from) {
    size_t n_ids = e->out->n - from;
    if (n_ids > CACHE_IDS) return;
    if (!e->cache) {
        size_t slots = CACHE_SLOTS_MIN;
        while (slots < CACHE_SLOTS_MAX && slots * 64 < e->text_len) slots *= 2;
        e->cache = calloc(slots, sizeof *e->cache);
        if (!e->cache) return; /* the cache is an optimisation: skip it when memory is short */
        e->cache_mask = slots - 1;
    }
    cache_entry *c = &e->cache[h & e->cache_mask];
    c->hash = h;
    c->key_len = (uint8_t)n;
    c->n_ids = (uint8_t)n_ids;
    memcpy(c->key, s, n);
    memcpy(c->ids, e->out->v + from, n_ids * sizeof(int32_t));
}

/* The initial symbols of a character-level (SentencePiece-style) word, as HF's BPE makes them: each character's
 * token (with the continuing-subword prefix / end-of-word suffix), else its bytes' <0xNN> tokens (byte_fallback),
 * else unk (consecutive unknown characters fused into one with fuse_unk; dropped without an unk token). */
static int char_symbols(encoder *e, const char *s, size_t n) {
    const tok_pipeline *p = e->t->pipe;
    tok_ivec *sym = &e->sym;
    sym->n = 0;
    char small[64];
    int32_t unk = -1; /* a pending unk */
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = tok_utf8_char(s + i, n - i, &cp);
        const char *c = s + i;
        size_t cl = l;
        int32_t id;
        if (p->char_id && cp < TOK_CHAR_TABLE && !(cp == 0xFFFD && l == 1)) { /* (no prefix / suffix then) */
            id = p->char_id[cp];
        } else {
            if ((i > 0 && p->prefix_len) || (i + l == n && p->suffix_len)) {
                size_t pl = i > 0 ? p->prefix_len : 0, sl = i + l == n ? p->suffix_len : 0;
                if (pl + l + sl > sizeof small) return -1;
                if (pl) memcpy(small, p->subword_prefix, pl); /* the one not set is NULL */
                memcpy(small + pl, s + i, l);
                if (sl) memcpy(small + pl + l, p->word_suffix, sl);
                c = small;
                cl = pl + l + sl;
            }
            id = tok_lookup(e->t, c, cl);
        }
        i += l;
        if (id >= 0) {
            if (unk >= 0 && tok_ivec_push(sym, unk)) return -1;
            unk = -1;
            if (tok_ivec_push(sym, id)) return -1;
            continue;
        }
        if (p->byte_fallback) {
            int all = 1;
            for (size_t k = 0; k < cl; k++) all &= p->byte_fb[(unsigned char)c[k]] >= 0;
            if (all) {
                for (size_t k = 0; k < cl; k++)
                    if (tok_ivec_push(sym, p->byte_fb[(unsigned char)c[k]])) return -1;
                continue;
            }
        }
        if (p->unk_id >= 0) {
            if (unk >= 0 && !p->fuse_unk && tok_ivec_push(sym, unk)) return -1;
            unk = p->unk_id;
        }
    }
    if (unk >= 0 && tok_ivec_push(sym, unk)) return -1;
    return 0;
}

static int bpe_word(encoder *e, const char *s, size_t n, tok_ivec *out) {
    const jl_tokenizer *t = e->t;
    if (!t->pipe->char_level) {
        if (n <= SMALL_WORD) return bpe_small(t, (const unsigned char *)s, n, out);
        return bpe_large(t, (const unsigned char *)s, NULL, n, out);
    }
    if (char_symbols(e, s, n)) return -1;
    if (e->sym.n <= SMALL_WORD) return bpe_small_ids(t, e->sym.v, e->sym.n, out);
    return bpe_large(t, NULL, e->sym.v, e->sym.n, out);
}

/* A part of a cut piece (encode_cut): BPE alone — the whole-piece lookup of ignore_merges is for whole pieces —,
 * cached under a hash of its own so a part and an equal whole piece never share an entry. */
static int encode_part(encoder *e, const char *s, size_t n) {
    const jl_tokenizer *t = e->t;
    tok_ivec *out = e->out;
    if (n == 1 && !t->pipe->char_level) return tok_ivec_push(out, t->byte_id[(unsigned char)s[0]]);
    uint64_t h = 0;
    if (n <= CACHE_KEY) {
        h = (tok_hash_bytes(s, n) ^ 0x5bd1e9955bd1e995ull) | 1;
        const cache_entry *c = cache_find(e, s, n, h);
        if (c) {
            if (tok_ivec_reserve(out, CACHE_IDS)) return -1;
            memcpy(out->v + out->n, c->ids, CACHE_IDS * sizeof(int32_t));
            out->n += c->n_ids;
            return 0;
        }
    }
    size_t from = out->n;
    if (bpe_word(e, s, n, out)) return -1;
    if (n <= CACHE_KEY) cache_insert(e, s, n, h, from);
    return 0;
}

/* Whether the character cp (l bytes at s) is a token of a character-level vocabulary (p->char_id is set). */
static int char_known(const jl_tokenizer *t, const char *s, size_t l, uint32_t cp) {
    return cp < TOK_CHAR_TABLE ? t->pipe->char_id[cp] >= 0 : tok_lookup(t, s, l) >= 0;
}

/* BPE of a piece cut between two multi-byte characters wherever no token spans them (tok_crossable): no merge can
 * cross such a boundary, so the parts give the same ids apart, and short parts are cached (CJK runs are long and
 * rarely repeat whole; their characters and words do). On a character-level vocabulary both characters must be
 * tokens: a merge across the cut makes a token whose text holds the two side by side (one the vocabulary lacks is
 * <0xNN> / <unk> symbols, and unknown neighbours fuse into one unk). 1: cut and encoded, 0: nothing to cut (no ids
 * added), -1: out of memory. */
static int encode_cut(encoder *e, const char *s, size_t n) {
    const jl_tokenizer *t = e->t;
    int chars = t->pipe->char_level;
    size_t seg = 0, i = 0, prev_len = 0;
    uint32_t prev = 0;
    int cut = 0;
    while (i < n) {
        if ((unsigned char)s[i] < 0x80) {
            prev_len = 0;
            i++;
            continue;
        }
        uint32_t cp;
        size_t l = tok_utf8_char(s + i, n - i, &cp);
        int valid = !(cp == 0xFFFD && l == 1) && (!chars || char_known(t, s + i, l, cp));
        if (valid && prev_len && !tok_crossable(t, prev, cp, (unsigned char)s[i - 1], (unsigned char)s[i])) {
            if (encode_part(e, s + seg, i - seg)) return -1;
            seg = i;
            cut = 1;
        }
        prev = cp;
        prev_len = valid ? l : 0;
        i += l;
    }
    if (!cut) return 0;
    return encode_part(e, s + seg, n - seg) ? -1 : 1;
}

static jl_status encode_word(encoder *e, const char *s, size_t n) {
    const jl_tokenizer *t = e->t;
    tok_ivec *out = e->out;
    if (n == 1 && !t->pipe->char_level) {
        if (tok_ivec_push(out, t->byte_id[(unsigned char)s[0]])) goto oom;
        return JL_OK;
    }
    uint64_t h = 0;
    if (n <= CACHE_KEY) {
        h = tok_hash_bytes(s, n) | 1;
        const cache_entry *c = cache_find(e, s, n, h);
        if (c) {
            if (tok_ivec_reserve(out, CACHE_IDS)) goto oom;
            memcpy(out->v + out->n, c->ids, CACHE_IDS * sizeof(int32_t)); /* all 8: a fixed-size copy */
            out->n += c->n_ids;
            return JL_OK;
        }
    }
    size_t from = out->n;
    /* A piece that can be cut is no token (a token would span the cut): cut first, then the whole-piece lookup. Cut
     * pieces are mostly random CJK runs: only their parts are cached */
    const tok_pipeline *p = t->pipe;
    int cut = t->cross_pairs && n > 3 && (!p->char_level || p->char_id) && !p->prefix_len && !p->suffix_len
                  ? encode_cut(e, s, n)
                  : 0;
    if (cut < 0) goto oom;
    if (cut) return JL_OK;
    int32_t whole = t->ignore_merges ? tok_lookup(t, s, n) : -1;
    if (whole >= 0) {
        if (tok_ivec_push(out, whole)) goto oom;
    } else if (bpe_word(e, s, n, out)) {
        goto oom;
    }
    if (n <= CACHE_KEY) cache_insert(e, s, n, h, from);
    return JL_OK;
oom:
    return jl_fail(JL_ERR_NOMEM, "out of memory (encoding a %zu-byte piece)", n);
}

/* ---- the pre-tokenizer chain: stage k cuts a piece and hands each part to stage k + 1; past the last, BPE ---- */
static jl_status run_stage(encoder *e, int k, const char *s, size_t n, int first);

typedef struct {
    encoder *e;
    int k, first;
    const char *s;
    int keep; /* Isolated: -1 (every span); Removed: the is_match value that is kept */
} stage_ctx;

static jl_status stage_emit(void *user, size_t start, size_t end, int is_match) {
    stage_ctx *c = user;
    if (c->keep >= 0 && is_match != c->keep) return JL_OK;
    return run_stage(c->e, c->k + 1, c->s + start, end - start, c->first && start == 0);
}

static jl_status stage_collect(void *user, size_t start, size_t end, int is_match) {
    stage_ctx *c = user;
    __typeof__(c->e->stage[0]) *sb = &c->e->stage[c->k];
    if (grow((void **)&sb->spans, &sb->spans_cap, sb->n_spans + 1, sizeof *sb->spans))
        return jl_fail(JL_ERR_NOMEM, "out of memory (pre-tokenizer)");
    sb->spans[sb->n_spans++] = (struct span){start, end, is_match};
    return JL_OK;
}

/* HF's SplitDelimiterBehavior for MergedWithPrevious / MergedWithNext / Contiguous over the collected spans. */
static jl_status split_merged(encoder *e, int k, const char *s, int first, tok_behavior b, int invert) {
    __typeof__(e->stage[0]) *sb = &e->stage[k];
    struct span *v = sb->spans;
    size_t n = sb->n_spans, out = 0;
    for (size_t i = 0; i < n; i++) v[i].is_match ^= invert;
    if (b == TOK_SPLIT_NEXT) {
        int prev_match = 0; /* walks right to left: "previous" is the span to the right */
        size_t w = n;
        for (size_t i = n; i-- > 0;) {
            int m = v[i].is_match;
            if (m && !prev_match && w < n) v[w].start = v[i].start;
            else v[--w] = (struct span){v[i].start, v[i].end, 0};
            prev_match = m;
        }
        memmove(v, v + w, (n - w) * sizeof *v);
        out = n - w;
    } else {
        int prev_match = 0;
        for (size_t i = 0; i < n; i++) {
            int m = v[i].is_match;
            int join = b == TOK_SPLIT_PREVIOUS ? m && !prev_match : m == prev_match;
            if (join && out) v[out - 1].end = v[i].end;
            else v[out++] = (struct span){v[i].start, v[i].end, 0};
            prev_match = m;
        }
    }
    sb->n_spans = 0;
    jl_status st = JL_OK;
    for (size_t i = 0; i < out && st == JL_OK; i++) /* spans is stage k's own: later stages do not touch it */
        st = run_stage(e, k + 1, s + v[i].start, v[i].end - v[i].start, first && v[i].start == 0);
    return st;
}

static jl_status stage_split(encoder *e, int k, const char *s, size_t n, int first) {
    const tok_pre *pr = &e->t->pipe->pre[k];
    stage_ctx c = {e, k, first, s, -1};
    int streaming = pr->behavior == TOK_SPLIT_ISOLATED || pr->behavior == TOK_SPLIT_REMOVED;
    if (pr->behavior == TOK_SPLIT_REMOVED) c.keep = pr->invert;
    span_fn fn = streaming ? stage_emit : stage_collect;
    e->stage[k].n_spans = 0;
    jl_status st = pr->scan && !e->t->pipe->pcre2_only ? tok_scan(pr->scan, s, n, fn, &c)
                   : pr->re                                ? find_regex(pr->re, s, n, fn, &c)
                                                           : find_literal(pr->literal, pr->literal_len, s, n, fn, &c);
    if (st != JL_OK || streaming) return st;
    return split_merged(e, k, s, first, pr->behavior, pr->invert);
}

static char *stage_buf(encoder *e, int k, size_t need) {
    return grow((void **)&e->stage[k].buf, &e->stage[k].cap, need, 1) ? NULL : e->stage[k].buf;
}

/* Metaspace: spaces become the replacement; it is prepended by the scheme unless the piece starts with it. */
static jl_status stage_metaspace(encoder *e, int k, const char *s, size_t n, int first) {
    const tok_pre *pr = &e->t->pipe->pre[k];
    char *b = stage_buf(e, k, n * pr->rep_len + pr->rep_len + 1);
    if (!b) return jl_fail(JL_ERR_NOMEM, "out of memory (pre-tokenizer)");
    size_t o = 0;
    int starts = n >= pr->rep_len && !memcmp(s, pr->rep, pr->rep_len);
    if (!starts && s[0] == ' ') starts = 1; /* the space becomes the replacement just below */
    if (!starts && (pr->prepend == 1 || (pr->prepend == 2 && first))) {
        memcpy(b, pr->rep, pr->rep_len);
        o = pr->rep_len;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(b + o, pr->rep, pr->rep_len);
            o += pr->rep_len;
        } else b[o++] = s[i];
    }
    return run_stage(e, k + 1, b, o, first);
}

/* Cuts before each "▁" that follows a character c with no "c▁" inside any token: BPE cannot merge across such a
 * cut, so the words encode the same apart (and can be cached). */
/* The first "▁" in s[from..n), NULL if none: memchr for its lead byte (memmem's set-up per call cost more than the
 * search on words of a few bytes). */
static const char *find_spm_space(const char *s, size_t from, size_t n) {
    for (size_t i = from; i + 3 <= n; i++) {
        const char *h = memchr(s + i, 0xE2, n - 2 - i);
        if (!h) return NULL;
        i = (size_t)(h - s);
        if ((unsigned char)s[i + 1] == 0x96 && (unsigned char)s[i + 2] == 0x81) return h;
    }
    return NULL;
}

static jl_status stage_spm_words(encoder *e, int k, const char *s, size_t n, int first) {
    const tok_pipeline *p = e->t->pipe;
    size_t prev = 0;
    for (size_t i = 1; i + 3 <= n; i++) {
        const char *hit = find_spm_space(s, i, n);
        if (!hit) break;
        i = (size_t)(hit - s);
        uint32_t cp;
        tok_utf8_prev(s, i, &cp);
        int bad = cp == 0x2581;
        for (int j = 0; j < p->n_spm_bad && !bad; j++) bad = p->spm_bad[j] == cp;
        if (!bad) {
            jl_status st = run_stage(e, k + 1, s + prev, i - prev, first && prev == 0);
            if (st != JL_OK) return st;
            prev = i;
        }
        i += 2;
    }
    return run_stage(e, k + 1, s + prev, n - prev, first && prev == 0);
}

static jl_status run_stage(encoder *e, int k, const char *s, size_t n, int first) {
    if (n == 0) return JL_OK; /* HF drops empty pieces */
    const tok_pipeline *p = e->t->pipe;
    if (k == p->n_pre) {
        while (n > TOK_MAX_PIECE) { /* as in training: bounded memory on pathological input */
            size_t cut = TOK_MAX_PIECE;
            while (cut > TOK_MAX_PIECE - 4 && ((unsigned char)s[cut] & 0xC0) == 0x80) cut--;
            jl_status st = encode_word(e, s, cut);
            if (st != JL_OK) return st;
            s += cut;
            n -= cut;
        }
        return encode_word(e, s, n);
    }
    switch (p->pre[k].kind) {
    case TOK_PRE_SPLIT: return stage_split(e, k, s, n, first);
    case TOK_PRE_METASPACE: return stage_metaspace(e, k, s, n, first);
    case TOK_PRE_SPM_WORDS: return stage_spm_words(e, k, s, n, first);
    case TOK_PRE_PREFIX_SPACE: {
        if (s[0] == ' ') return run_stage(e, k + 1, s, n, first);
        char *b = stage_buf(e, k, n + 1);
        if (!b) return jl_fail(JL_ERR_NOMEM, "out of memory (pre-tokenizer)");
        b[0] = ' ';
        memcpy(b + 1, s, n);
        return run_stage(e, k + 1, b, n + 1, first);
    }
    }
    return jl_fail(JL_ERR_RUNTIME, "pre-tokenizer: unknown stage");
}

/* A text segment (between raw-matched added tokens): normalise, match the normalised added tokens, then the
 * pre-tokenizer chain and BPE on what is between them. */
static jl_status encode_segment(encoder *e, const char *s, size_t n, int first, int cont) {
    const tok_pipeline *p = e->t->pipe;
    if (p->n_norm) {
        jl_status st = tok_normalize(p, &e->norm, s, n, cont, &s, &n);
        if (st != JL_OK) return st;
    }
    const tok_added_set *set = &p->norm_added;
    size_t seg = 0;
    for (size_t i = 0; set->n && i < n; i++) {
        if (!set->first[(unsigned char)s[i]]) continue;
        int k;
        size_t m = tok_added_match(e->t, set, s + i, n - i, e->allow_special, &k);
        size_t start = i, end = i + m;
        if (!m || !tok_added_accept(set, k, s, n, &start, &end)) continue;
        if (start < seg) start = seg;
        jl_status st = run_stage(e, 0, s + seg, start - seg, first && seg == 0);
        if (st != JL_OK) return st;
        if (tok_ivec_push(e->out, set->ids[k])) return jl_fail(JL_ERR_NOMEM, "out of memory");
        i = end - 1;
        seg = end;
    }
    return run_stage(e, 0, s + seg, n - seg, first && seg == 0);
}

static jl_status encode_unit(encoder *e, const char *text, const tok_unit *u, tok_ivec *out) {
    e->out = out;
    if (u->special >= 0) {
        if (tok_ivec_push(out, u->special)) return jl_fail(JL_ERR_NOMEM, "out of memory");
        return JL_OK;
    }
    return encode_segment(e, text + u->start, u->len, u->start == 0, u->cont);
}

enum { UNIT_TARGET = 256 * 1024, GROUP_BYTES = 32 * 1024 };

/* Room for n ids in the empty vector a; from 2 MiB up on huge pages (jl_alloc_stream): the first touch of each
 * 4 KiB page of a fresh output buffer was a page fault, ~5% of cl100k's one-thread encode (perf). */
static int reserve_ids(tok_ivec *a, size_t n) {
    if (n > ((size_t)2 << 20) / sizeof(int32_t) && !a->v) {
        int32_t *v = jl_alloc_stream(n * sizeof *v);
        if (!v) return -1;
        a->v = v;
        a->cap = n;
        return 0;
    }
    return tok_ivec_reserve(a, n);
}

/* Consecutive units of at least GROUP_BYTES together (the last group may be smaller): the items handed out to the
 * threads. Text with many added tokens (Gemma 3: one every ~35 bytes) has hundreds of thousands of tiny units;
 * handing them out one by one cost a shared atomic and a bookkeeping entry each. first[g] is group g's first unit,
 * first[n_groups] = n_units. */
static size_t group_units(const tok_unit *units, size_t n_units, size_t *first) {
    size_t n = 0, bytes = 0;
    for (size_t k = 0; k < n_units; k++) {
        if (k == 0 || bytes >= GROUP_BYTES) {
            first[n++] = k;
            bytes = 0;
        }
        bytes += units[k].len;
    }
    first[n] = n_units;
    return n;
}

/* Groups of units are handed out one at a time (dynamic: a thread that the machine's load stalls does less); each
 * thread appends its groups' ids to one buffer of its own, then the threads copy them into place in order. One
 * buffer per thread, reserved once: an allocation (and its page faults and unmapping) per unit was a serial cost. */
static jl_status encode_parallel(const jl_tokenizer *t, int allow_special, const char *text, size_t len,
                                 const tok_unit *units, size_t n_units, tok_ivec *out) {
    int nt = omp_get_max_threads();
    tok_ivec *bufs = calloc((size_t)nt, sizeof *bufs);
    size_t *first = malloc((n_units + 1) * sizeof *first);
    size_t *at = malloc(n_units * sizeof *at), *count = malloc(n_units * sizeof *count);
    int *owner = malloc(n_units * sizeof *owner);
    jl_status st = JL_OK;
    char first_error[1024] = "";
    if (!bufs || !first || !at || !count || !owner) {
        free(bufs);
        free(first);
        free(at);
        free(count);
        free(owner);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    size_t n_groups = group_units(units, n_units, first), total = 0;
#pragma omp parallel num_threads(nt)
    {
        int me = omp_get_thread_num();
        encoder e = {.t = t, .allow_special = allow_special, .text_len = 1u << 30};
        jl_status s = reserve_ids(&bufs[me], len / 3 / (size_t)nt + 1024)
                          ? jl_fail(JL_ERR_NOMEM, "out of memory (%zu bytes of text)", len)
                          : JL_OK;
#pragma omp for schedule(dynamic, 1)
        for (size_t g = 0; g < n_groups; g++) {
            size_t from = bufs[me].n;
            for (size_t k = first[g]; k < first[g + 1] && s == JL_OK; k++)
                s = encode_unit(&e, text, &units[k], &bufs[me]);
            at[g] = from;
            count[g] = bufs[me].n - from;
            owner[g] = me;
        }
        if (s != JL_OK) {
#pragma omp critical(jl_tok_encode_error)
            if (st == JL_OK) {
                st = s;
                snprintf(first_error, sizeof first_error, "%s", jl_last_error());
            }
        }
        encoder_free(&e);
#pragma omp barrier
#pragma omp single
        {
            for (size_t g = 0; g < n_groups; g++) total += count[g];
            if (st == JL_OK && tok_ivec_reserve(out, total))
                st = jl_fail(JL_ERR_NOMEM, "out of memory (%zu ids)", total);
            size_t pos = out->n; /* at[g] becomes group g's place in out */
            for (size_t g = 0; g < n_groups && st == JL_OK; g++) {
                size_t c = count[g];
                count[g] = at[g];
                at[g] = pos;
                pos += c;
            }
        }
        if (st == JL_OK) {
#pragma omp for schedule(static)
            for (size_t g = 0; g < n_groups; g++) {
                size_t n = (g + 1 < n_groups ? at[g + 1] : out->n + total) - at[g];
                if (n) memcpy(out->v + at[g], bufs[owner[g]].v + count[g], n * sizeof(int32_t));
            }
        }
    }
    if (st == JL_OK) out->n += total;
    else if (first_error[0]) jl_fail(st, "%s", first_error);
    for (int k = 0; k < nt; k++) free(bufs[k].v);
    free(bufs);
    free(first);
    free(at);
    free(count);
    free(owner);
    return st;
}

jl_status jl_tokenizer_encode(const jl_tokenizer *t, const char *text, size_t len, int allow_special, int32_t **ids,
                              size_t *n_ids) {
    return tok_encode_units(t, text, len, allow_special, UNIT_TARGET, ids, n_ids);
}

jl_status tok_encode_units(const jl_tokenizer *t, const char *text, size_t len, int allow_special, size_t target,
                           int32_t **ids, size_t *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    if (!text && len) return jl_fail(JL_ERR_ARG, "encode: NULL text");
    char *fixed = NULL; /* the text with invalid UTF-8 replaced, for tokenizers that see text as HF does */
    if (t->pipe->lossy_utf8 && !tok_utf8_valid(text, len)) {
        jl_status st = tok_utf8_lossy(text, len, &fixed, &len);
        if (st != JL_OK) return st;
        text = fixed;
    }
    tok_unit *units;
    size_t n_units;
    jl_status st = tok_split_units(t, allow_special, t->parallel_safe, text, len, target, &units, &n_units);
    if (st != JL_OK) {
        free(fixed);
        return st;
    }
    tok_ivec out = {0};
    if (reserve_ids(&out, len / 3 + 16)) /* about one id per 3-4 bytes: one allocation, rarely a regrowth */
        st = jl_fail(JL_ERR_NOMEM, "out of memory (%zu bytes of text)", len);
    else if (len / 2 >= target && n_units > 1 && omp_get_max_threads() > 1) {
        st = encode_parallel(t, allow_special, text, len, units, n_units, &out);
    } else {
        encoder e = {.t = t, .allow_special = allow_special, .text_len = len};
        for (size_t k = 0; k < n_units && st == JL_OK; k++) st = encode_unit(&e, text, &units[k], &out);
        encoder_free(&e);
    }
    free(units);
    free(fixed);
    if (st != JL_OK) {
        free(out.v);
        return st;
    }
    if (!out.v) out.v = malloc(sizeof(int32_t)); /* empty text: a valid pointer the caller frees */
    if (!out.v) return jl_fail(JL_ERR_NOMEM, "out of memory");
    *ids = out.v;
    *n_ids = out.n;
    return JL_OK;
}

/* Removes up to `count` characters cp from the start (or the end) of buf[0..*len). */
static void strip_chars(char *buf, size_t *len, uint32_t cp, int count, int at_end) {
    char enc[4];
    size_t el = tok_utf8_put(cp, enc), cut = 0;
    for (int k = 0; k < count; k++) {
        if (*len - cut < el) break;
        const char *at = at_end ? buf + *len - cut - el : buf + cut;
        if (memcmp(at, enc, el)) break;
        cut += el;
    }
    if (!at_end) memmove(buf, buf + cut, *len - cut);
    *len -= cut;
}

jl_status jl_tokenizer_decode(const jl_tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    const tok_pipeline *p = t->pipe;
    const uint32_t *off = p->dec_bytes ? p->dec_off : t->tok_off;
    const char *bytes = p->dec_bytes ? p->dec_bytes : t->tok_bytes;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return jl_fail(JL_ERR_ARG, "decode: id %d at position %zu is out of range [0, %d)", (int)ids[i], i,
                           t->n_vocab);
        total += off[ids[i] + 1] - off[ids[i]];
    }
    char *buf = malloc(total + 1);
    if (!buf) return jl_fail(JL_ERR_NOMEM, "decode: out of memory (%zu bytes)", total);
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        size_t tl = off[ids[i] + 1] - off[ids[i]];
        memcpy(buf + pos, bytes + off[ids[i]], tl);
        pos += tl;
    }
    if (p->strip_start) strip_chars(buf, &pos, p->strip_char, p->strip_start, 0);
    if (p->strip_stop) strip_chars(buf, &pos, p->strip_char, p->strip_stop, 1);
    buf[pos] = '\0';
    *text = buf;
    *len = pos;
    return JL_OK;
}
