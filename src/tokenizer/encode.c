/* Encoding: special-token split → regex pre-tokenisation (PCRE2) → per-word cache → BPE merges by rank.
 * Large texts are cut at safe newlines and the pieces encoded on all OpenMP threads, results joined in order. */
#include "tokenizer/tok_internal.h"
#include <omp.h>
#include <stdio.h>
#include <string.h>

/* ---- pre-tokenisation ---- */
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

jl_status tok_pretokenize(const pcre2_code *re, const char *text, size_t len, tok_piece_fn fn, void *user) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    pcre2_jit_stack *stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    if (!md || !mc || !stack) {
        pcre2_match_data_free(md);
        pcre2_match_context_free(mc);
        pcre2_jit_stack_free(stack);
        return jl_fail(JL_ERR_NOMEM, "out of memory (regex)");
    }
    pcre2_jit_stack_assign(mc, NULL, stack);
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t pos = 0;
    jl_status st = JL_OK;
    while (pos < len && st == JL_OK) {
        int rc = pcre2_match(re, (PCRE2_SPTR)text, len, pos, 0, md, mc);
        if (rc == PCRE2_ERROR_NOMATCH) { /* only bytes the regex cannot match (invalid UTF-8) are left */
            st = emit_piece(fn, user, text + pos, len - pos);
            break;
        }
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            st = jl_fail(JL_ERR_RUNTIME, "pre-tokenizer failed at byte %zu: %s", pos, (const char *)msg);
            break;
        }
        size_t start = ov[0], end = ov[1];
        if (start > pos) st = emit_piece(fn, user, text + pos, start - pos); /* invalid UTF-8 between matches */
        if (st != JL_OK) break;
        if (end == start) { /* an empty match: take one byte so we always advance */
            end = start + 1;
        }
        st = emit_piece(fn, user, text + start, end - start);
        pos = end;
    }
    pcre2_match_data_free(md);
    pcre2_match_context_free(mc);
    pcre2_jit_stack_free(stack);
    return st;
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

/* Length of the special token starting at s (longest match), with its id; 0 if none. */
static size_t match_special(const jl_tokenizer *t, const char *s, size_t n, int32_t *id) {
    size_t best = 0;
    for (int k = 0; k < t->n_special; k++) {
        int32_t sid = t->special_ids[k];
        size_t len = t->tok_off[sid + 1] - t->tok_off[sid];
        if (len > best && len <= n && memcmp(s, t->tok_bytes + t->tok_off[sid], len) == 0) {
            best = len;
            *id = sid;
        }
    }
    return best;
}

typedef struct {
    tok_unit *v;
    size_t n, cap;
} unit_vec;

static int push_unit(unit_vec *u, size_t start, size_t len, int32_t special) {
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 16;
        tok_unit *v = realloc(u->v, cap * sizeof *v);
        if (!v) return -1;
        u->v = v;
        u->cap = cap;
    }
    u->v[u->n++] = (tok_unit){start, len, special};
    return 0;
}

static int push_text(unit_vec *u, const char *text, size_t start, size_t end, int parallel_safe, size_t target) {
    while (start < end) {
        size_t cut = end;
        if (parallel_safe && end - start > target + target / 2) {
            cut = next_safe_split(text, start + target, end);
        }
        if (push_unit(u, start, cut - start, -1)) return -1;
        start = cut;
    }
    return 0;
}

jl_status tok_split_units(const jl_tokenizer *specials, int parallel_safe, const char *text, size_t len,
                          size_t target, tok_unit **units, size_t *n_units) {
    unit_vec u = {0};
    size_t seg = 0;
    int failed = 0;
    if (specials && specials->n_special) {
        for (size_t i = 0; i < len && !failed; i++) {
            if (!specials->special_first[(unsigned char)text[i]]) continue;
            int32_t id;
            size_t n = match_special(specials, text + i, len - i, &id);
            if (!n) continue;
            failed = push_text(&u, text, seg, i, parallel_safe, target) || push_unit(&u, i, n, id);
            i += n - 1;
            seg = i + 1;
        }
    }
    if (!failed) failed = push_text(&u, text, seg, len, parallel_safe, target);
    if (failed) {
        free(u.v);
        return jl_fail(JL_ERR_NOMEM, "out of memory (splitting text)");
    }
    *units = u.v;
    *n_units = u.n;
    return JL_OK;
}

/* ---- BPE on one pre-token ---- */
enum { SMALL_WORD = 48 };

static int32_t pair_rank(const jl_tokenizer *t, int32_t l, int32_t r, int32_t *merged) {
    const tok_pair_slot *s = tok_pair_find(&t->pairs, l, r);
    if (!s) return INT32_MAX;
    *merged = s->merged;
    return s->rank;
}

/* Short words: arrays and a linear scan for the lowest rank (leftmost on ties), like tiktoken. */
static int bpe_small(const jl_tokenizer *t, const unsigned char *s, size_t n, tok_ivec *out) {
    int32_t ids[SMALL_WORD], ranks[SMALL_WORD], merged[SMALL_WORD];
    for (size_t i = 0; i < n; i++) ids[i] = t->byte_id[s[i]];
    for (size_t i = 0; i + 1 < n; i++) {
        ranks[i] = t->byte_pairs[s[i] * 256 + s[i + 1]].rank;
        merged[i] = t->byte_pairs[s[i] * 256 + s[i + 1]].merged;
    }
    size_t m = n;
    while (m > 1) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < m; i++)
            if (ranks[i] < ranks[best]) best = i;
        if (ranks[best] == INT32_MAX) break;
        ids[best] = merged[best];
        for (size_t i = best + 1; i + 1 < m; i++) {
            ids[i] = ids[i + 1];
            ranks[i] = ranks[i + 1];
            merged[i] = merged[i + 1];
        }
        m--;
        if (best > 0) ranks[best - 1] = pair_rank(t, ids[best - 1], ids[best], &merged[best - 1]);
        if (best + 1 < m) ranks[best] = pair_rank(t, ids[best], ids[best + 1], &merged[best]);
    }
    if (tok_ivec_reserve(out, m)) return -1;
    memcpy(out->v + out->n, ids, m * sizeof *ids);
    out->n += m;
    return 0;
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

static int bpe_large(const jl_tokenizer *t, const unsigned char *s, size_t n, tok_ivec *out) {
    if (n > INT32_MAX / 2) return -1;
    int32_t *ids = malloc(n * sizeof *ids), *next = malloc(n * sizeof *next), *prev = malloc(n * sizeof *prev);
    heap_entry *h = malloc(2 * n * sizeof *h); /* each merge adds at most 2 entries, minus the one it pops */
    int rc = -1;
    if (!ids || !next || !prev || !h) goto done;
    for (size_t i = 0; i < n; i++) {
        ids[i] = t->byte_id[s[i]];
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

/* ---- per-thread word cache: pre-token bytes → ids ---- */
enum { CACHE_MAX_WORD = 128, CACHE_MAX_ENTRIES = 1 << 20 };

typedef struct {
    uint64_t hash;
    uint32_t key_off, key_len, ids_off, n_ids;
} cache_entry;

typedef struct {
    const jl_tokenizer *t;
    uint32_t *slots; /* entry index + 1; 0 = empty */
    size_t mask;
    cache_entry *entries;
    size_t n_entries, entries_cap;
    char *keys;
    size_t keys_len, keys_cap;
    tok_ivec ids;    /* the cached id sequences, back to back */
    tok_ivec *out;   /* where the current unit's ids go */
} encoder;

static void encoder_free(encoder *e) {
    free(e->slots);
    free(e->entries);
    free(e->keys);
    free(e->ids.v);
}

static void cache_clear(encoder *e) {
    memset(e->slots, 0, (e->mask + 1) * sizeof *e->slots);
    e->n_entries = 0;
    e->keys_len = 0;
    e->ids.n = 0;
}

static const cache_entry *cache_find(const encoder *e, const char *s, size_t n, uint64_t h) {
    if (!e->slots) return NULL;
    for (size_t i = h & e->mask;; i = (i + 1) & e->mask) {
        uint32_t v = e->slots[i];
        if (!v) return NULL;
        const cache_entry *c = &e->entries[v - 1];
        if (c->hash == h && c->key_len == n && memcmp(e->keys + c->key_off, s, n) == 0) return c;
    }
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

/* Remembers ids[from..out->n) as the encoding of s; a full cache starts over (memory stays bounded). */
static void cache_insert(encoder *e, const char *s, size_t n, uint64_t h, size_t from) {
    if (e->n_entries >= CACHE_MAX_ENTRIES) cache_clear(e);
    if (!e->slots || (e->n_entries + 1) * 2 > e->mask + 1) {
        size_t cap = e->slots ? (e->mask + 1) * 2 : 4096;
        uint32_t *slots = calloc(cap, sizeof *slots);
        if (!slots) return; /* the cache is an optimisation: skip it when memory is short */
        free(e->slots);
        e->slots = slots;
        e->mask = cap - 1;
        for (size_t k = 0; k < e->n_entries; k++) {
            size_t i = e->entries[k].hash & e->mask;
            while (e->slots[i]) i = (i + 1) & e->mask;
            e->slots[i] = (uint32_t)k + 1;
        }
    }
    size_t n_ids = e->out->n - from;
    if (grow((void **)&e->entries, &e->entries_cap, e->n_entries + 1, sizeof *e->entries) ||
        grow((void **)&e->keys, &e->keys_cap, e->keys_len + n, 1) || tok_ivec_reserve(&e->ids, n_ids))
        return;
    memcpy(e->keys + e->keys_len, s, n);
    memcpy(e->ids.v + e->ids.n, e->out->v + from, n_ids * sizeof(int32_t));
    e->entries[e->n_entries] = (cache_entry){h, (uint32_t)e->keys_len, (uint32_t)n, (uint32_t)e->ids.n,
                                             (uint32_t)n_ids};
    size_t i = h & e->mask;
    while (e->slots[i]) i = (i + 1) & e->mask;
    e->slots[i] = (uint32_t)++e->n_entries;
    e->keys_len += n;
    e->ids.n += n_ids;
}

static jl_status encode_piece(void *user, const char *s, size_t n) {
    encoder *e = user;
    const jl_tokenizer *t = e->t;
    tok_ivec *out = e->out;
    if (n == 1) {
        if (tok_ivec_push(out, t->byte_id[(unsigned char)s[0]])) goto oom;
        return JL_OK;
    }
    uint64_t h = 0;
    if (n <= CACHE_MAX_WORD) {
        h = tok_hash_bytes(s, n);
        const cache_entry *c = cache_find(e, s, n, h);
        if (c) {
            if (tok_ivec_reserve(out, c->n_ids)) goto oom;
            memcpy(out->v + out->n, e->ids.v + c->ids_off, c->n_ids * sizeof(int32_t));
            out->n += c->n_ids;
            return JL_OK;
        }
    }
    size_t from = out->n;
    int32_t whole = t->ignore_merges ? tok_lookup(t, s, n) : -1;
    if (whole >= 0) {
        if (tok_ivec_push(out, whole)) goto oom;
    } else if (n <= SMALL_WORD) {
        if (bpe_small(t, (const unsigned char *)s, n, out)) goto oom;
    } else if (bpe_large(t, (const unsigned char *)s, n, out)) {
        goto oom;
    }
    if (n <= CACHE_MAX_WORD) cache_insert(e, s, n, h, from);
    return JL_OK;
oom:
    return jl_fail(JL_ERR_NOMEM, "out of memory (encoding a %zu-byte piece)", n);
}

static jl_status encode_unit(encoder *e, const char *text, const tok_unit *u, tok_ivec *out) {
    e->out = out;
    if (u->special >= 0) {
        if (tok_ivec_push(out, u->special)) return jl_fail(JL_ERR_NOMEM, "out of memory");
        return JL_OK;
    }
    return tok_pretokenize(e->t->re, text + u->start, u->len, encode_piece, e);
}

enum { UNIT_TARGET = 256 * 1024 };

static jl_status encode_parallel(const jl_tokenizer *t, const char *text, const tok_unit *units, size_t n_units,
                                 tok_ivec *out) {
    tok_ivec *parts = calloc(n_units, sizeof *parts);
    if (!parts) return jl_fail(JL_ERR_NOMEM, "out of memory");
    jl_status st = JL_OK;
    char first_error[1024] = "";
#pragma omp parallel
    {
        encoder e = {.t = t};
#pragma omp for schedule(dynamic, 1)
        for (size_t k = 0; k < n_units; k++) {
            jl_status s = encode_unit(&e, text, &units[k], &parts[k]);
            if (s != JL_OK) {
#pragma omp critical(jl_tok_encode_error)
                if (st == JL_OK) {
                    st = s;
                    snprintf(first_error, sizeof first_error, "%s", jl_last_error());
                }
            }
        }
        encoder_free(&e);
    }
    size_t total = 0;
    for (size_t k = 0; k < n_units; k++) total += parts[k].n;
    if (st == JL_OK && tok_ivec_reserve(out, total)) st = jl_fail(JL_ERR_NOMEM, "out of memory (%zu ids)", total);
    else if (st != JL_OK) jl_fail(st, "%s", first_error);
    for (size_t k = 0; k < n_units; k++) {
        if (st == JL_OK) {
            memcpy(out->v + out->n, parts[k].v, parts[k].n * sizeof(int32_t));
            out->n += parts[k].n;
        }
        free(parts[k].v);
    }
    free(parts);
    return st;
}

jl_status jl_tokenizer_encode(const jl_tokenizer *t, const char *text, size_t len, int allow_special, int32_t **ids,
                              size_t *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    if (!text && len) return jl_fail(JL_ERR_ARG, "encode: NULL text");
    tok_unit *units;
    size_t n_units;
    jl_status st = tok_split_units(allow_special ? t : NULL, t->parallel_safe, text, len, UNIT_TARGET, &units,
                                   &n_units);
    if (st != JL_OK) return st;
    tok_ivec out = {0};
    if (len >= 2 * UNIT_TARGET && n_units > 1 && omp_get_max_threads() > 1) {
        st = encode_parallel(t, text, units, n_units, &out);
    } else {
        encoder e = {.t = t};
        for (size_t k = 0; k < n_units && st == JL_OK; k++) st = encode_unit(&e, text, &units[k], &out);
        encoder_free(&e);
    }
    free(units);
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

jl_status jl_tokenizer_decode(const jl_tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return jl_fail(JL_ERR_ARG, "decode: id %d at position %zu is out of range [0, %d)", (int)ids[i], i,
                           t->n_vocab);
        total += t->tok_off[ids[i] + 1] - t->tok_off[ids[i]];
    }
    char *buf = malloc(total + 1);
    if (!buf) return jl_fail(JL_ERR_NOMEM, "decode: out of memory (%zu bytes)", total);
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        size_t tl = t->tok_off[ids[i] + 1] - t->tok_off[ids[i]];
        memcpy(buf + pos, t->tok_bytes + t->tok_off[ids[i]], tl);
        pos += tl;
    }
    buf[pos] = '\0';
    *text = buf;
    *len = pos;
    return JL_OK;
}
