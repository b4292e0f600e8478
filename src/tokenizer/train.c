/* BPE training. Pre-tokens are counted once (per-thread hash maps, merged); then merges are learned with
 * incremental pair counts: pair → (count, words it occurs in), and a max-heap with lazy deletion. */
#include "core/timer.h"
#include "tokenizer/tok_internal.h"
#include <omp.h>
#include <stdio.h>
#include <string.h>

/* ---- word counting: pre-token bytes → count ---- */
typedef struct {
    uint64_t hash;
    uint64_t count;
    uint32_t off, len; /* into keys */
} word_entry;

typedef struct {
    uint32_t *slots; /* entry index + 1 */
    size_t mask;
    word_entry *entries;
    size_t n, cap;
    char *keys;
    size_t keys_len, keys_cap;
    int oom;
} word_map;

static void word_map_free(word_map *m) {
    free(m->slots);
    free(m->entries);
    free(m->keys);
    memset(m, 0, sizeof *m);
}

static int word_map_rehash(word_map *m) {
    size_t cap = m->slots ? (m->mask + 1) * 2 : 1 << 14;
    uint32_t *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    free(m->slots);
    m->slots = slots;
    m->mask = cap - 1;
    for (size_t k = 0; k < m->n; k++) {
        size_t i = m->entries[k].hash & m->mask;
        while (m->slots[i]) i = (i + 1) & m->mask;
        m->slots[i] = (uint32_t)k + 1;
    }
    return 0;
}

static int word_map_add(word_map *m, const char *s, size_t n, uint64_t hash, uint64_t count) {
    if (!m->slots || (m->n + 1) * 2 > m->mask + 1) {
        if (word_map_rehash(m)) return -1;
    }
    size_t i = hash & m->mask;
    for (;; i = (i + 1) & m->mask) {
        uint32_t v = m->slots[i];
        if (!v) break;
        word_entry *e = &m->entries[v - 1];
        if (e->hash == hash && e->len == n && memcmp(m->keys + e->off, s, n) == 0) {
            e->count += count;
            return 0;
        }
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1 << 13;
        word_entry *e = realloc(m->entries, cap * sizeof *e);
        if (!e) return -1;
        m->entries = e;
        m->cap = cap;
    }
    if (m->keys_len + n > m->keys_cap) {
        size_t cap = m->keys_cap ? m->keys_cap : 1 << 16;
        while (cap < m->keys_len + n) cap *= 2;
        char *k = realloc(m->keys, cap);
        if (!k) return -1;
        m->keys = k;
        m->keys_cap = cap;
    }
    if (m->keys_len + n > UINT32_MAX || m->n >= UINT32_MAX - 1) return -1;
    memcpy(m->keys + m->keys_len, s, n);
    m->entries[m->n] = (word_entry){hash, count, (uint32_t)m->keys_len, (uint32_t)n};
    m->slots[i] = (uint32_t)++m->n;
    m->keys_len += n;
    return 0;
}

static jl_status count_piece(void *user, const char *s, size_t n) {
    word_map *m = user;
    if (word_map_add(m, s, n, tok_hash_bytes(s, n), 1)) {
        m->oom = 1;
        return jl_fail(JL_ERR_NOMEM, "out of memory counting words");
    }
    return JL_OK;
}

struct jl_bpe_trainer {
    jl_train_opts opts;
    char *pattern;
    pcre2_code *re;
    int parallel_safe;
    word_map words;
    double bytes_seen;
};

jl_status jl_bpe_trainer_new(const jl_train_opts *opts, jl_bpe_trainer **out) {
    *out = NULL;
    int min = 256 + JL_TOKENIZER_N_SPECIAL;
    if (opts->vocab_size < min)
        return jl_fail(JL_ERR_ARG, "vocab size %d is below 256 bytes + %d special tokens = %d", opts->vocab_size,
                       JL_TOKENIZER_N_SPECIAL, min);
    jl_bpe_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return jl_fail(JL_ERR_NOMEM, "out of memory");
    tr->opts = *opts;
    const char *pattern = opts->pattern ? opts->pattern : jl_tokenizer_pattern_text(JL_PATTERN_CL100K);
    tr->pattern = strdup(pattern);
    jl_status st = tr->pattern ? tok_compile_pattern(pattern, &tr->re) : jl_fail(JL_ERR_NOMEM, "out of memory");
    if (st != JL_OK) {
        jl_bpe_trainer_free(tr);
        return st;
    }
    tr->parallel_safe = tok_pattern_parallel_safe(pattern);
    *out = tr;
    return JL_OK;
}

void jl_bpe_trainer_free(jl_bpe_trainer *tr) {
    if (!tr) return;
    free(tr->pattern);
    if (tr->re) pcre2_code_free(tr->re);
    word_map_free(&tr->words);
    free(tr);
}

jl_status jl_bpe_trainer_add(jl_bpe_trainer *tr, const char *text, size_t len) {
    tok_unit *units;
    size_t n_units;
    jl_status st = tok_split_units(NULL, 0, tr->parallel_safe, text, len, 1 << 20, &units, &n_units);
    if (st != JL_OK) return st;
    int n_threads = omp_get_max_threads();
    word_map *maps = calloc((size_t)n_threads, sizeof *maps);
    if (!maps) {
        free(units);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    double done_bytes = 0;
    int failed = 0;
#pragma omp parallel num_threads(n_threads)
    {
        word_map *m = &maps[omp_get_thread_num()];
#pragma omp for schedule(dynamic, 1)
        for (size_t k = 0; k < n_units; k++) {
            if (failed) continue;
            if (tok_pretokenize(tr->re, text + units[k].start, units[k].len, count_piece, m) != JL_OK) failed = 1;
#pragma omp atomic
            done_bytes += (double)units[k].len;
            if (omp_get_thread_num() == 0 && tr->opts.progress) { /* the calling thread reports */
                double done;
#pragma omp atomic read
                done = done_bytes;
                tr->opts.progress(tr->opts.progress_user, "count", tr->bytes_seen + done, tr->bytes_seen + (double)len);
            }
        }
    }
    tr->bytes_seen += (double)len;
    for (int k = 0; k < n_threads && !failed; k++)
        for (size_t e = 0; e < maps[k].n && !failed; e++) {
            word_entry *w = &maps[k].entries[e];
            if (word_map_add(&tr->words, maps[k].keys + w->off, w->len, w->hash, w->count)) failed = 1;
        }
    for (int k = 0; k < n_threads; k++) word_map_free(&maps[k]);
    free(maps);
    free(units);
    if (failed) return jl_fail(JL_ERR_NOMEM, "out of memory counting the words of %zu bytes of text", len);
    return JL_OK;
}

/* ---- merge learning ---- */
typedef struct {
    uint64_t key;
    int64_t count;
    uint32_t *where; /* indices of words the pair occurs in (may hold stale ones; repeats are skipped) */
    uint32_t n_where, cap_where;
    uint32_t fresh; /* 1 + the merge that created this pair, while it waits for its first heap push */
} pair_info;

typedef struct {
    int64_t count;
    int32_t left, right;
} heap_item;

typedef struct {
    uint32_t *slots; /* pair index + 1 */
    size_t mask;
    pair_info *pairs;
    size_t n, cap;
    heap_item *heap;
    size_t n_heap, cap_heap;
    tok_ivec fresh; /* indices of pairs made by the current merge */
    int oom;
} pair_table;

static pair_info *pair_get(pair_table *pt, int32_t left, int32_t right, int create) {
    uint64_t key = tok_pair_key(left, right);
    if (create && (pt->n + 1) * 2 > pt->mask + 1) {
        size_t cap = (pt->mask + 1) * 2;
        uint32_t *slots = calloc(cap, sizeof *slots);
        if (!slots) { pt->oom = 1; return NULL; }
        free(pt->slots);
        pt->slots = slots;
        pt->mask = cap - 1;
        for (size_t k = 0; k < pt->n; k++) {
            size_t i = tok_hash_u64(pt->pairs[k].key) & pt->mask;
            while (pt->slots[i]) i = (i + 1) & pt->mask;
            pt->slots[i] = (uint32_t)k + 1;
        }
    }
    size_t i = tok_hash_u64(key) & pt->mask;
    for (; pt->slots[i]; i = (i + 1) & pt->mask)
        if (pt->pairs[pt->slots[i] - 1].key == key) return &pt->pairs[pt->slots[i] - 1];
    if (!create) return NULL;
    if (pt->n == pt->cap) {
        size_t cap = pt->cap * 2;
        pair_info *p = realloc(pt->pairs, cap * sizeof *p);
        if (!p) { pt->oom = 1; return NULL; }
        pt->pairs = p;
        pt->cap = cap;
    }
    pt->pairs[pt->n] = (pair_info){.key = key};
    pt->slots[i] = (uint32_t)++pt->n;
    return &pt->pairs[pt->n - 1];
}

static int heap_before(const heap_item *a, const heap_item *b) { /* max count; ties: smaller (left, right) */
    if (a->count != b->count) return a->count > b->count;
    if (a->left != b->left) return a->left < b->left;
    return a->right < b->right;
}

static void heap_push(pair_table *pt, int64_t count, int32_t left, int32_t right) {
    if (pt->n_heap == pt->cap_heap) {
        size_t cap = pt->cap_heap ? pt->cap_heap * 2 : 1 << 16;
        heap_item *h = realloc(pt->heap, cap * sizeof *h);
        if (!h) { pt->oom = 1; return; }
        pt->heap = h;
        pt->cap_heap = cap;
    }
    heap_item e = {count, left, right};
    size_t i = pt->n_heap++;
    while (i > 0 && heap_before(&e, &pt->heap[(i - 1) / 2])) {
        pt->heap[i] = pt->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    pt->heap[i] = e;
}

static heap_item heap_pop(pair_table *pt) {
    heap_item top = pt->heap[0], last = pt->heap[--pt->n_heap];
    size_t i = 0, n = pt->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_before(&pt->heap[c + 1], &pt->heap[c])) c++;
        if (!heap_before(&pt->heap[c], &last)) break;
        pt->heap[i] = pt->heap[c];
        i = c;
    }
    if (n) pt->heap[i] = last;
    return top;
}

static pair_info *pair_add(pair_table *pt, int32_t left, int32_t right, int64_t delta, uint32_t word) {
    pair_info *p = pair_get(pt, left, right, 1);
    if (!p) return NULL;
    p->count += delta;
    if (delta <= 0 || (p->n_where && p->where[p->n_where - 1] == word)) return p;
    if (p->n_where == p->cap_where) {
        uint32_t cap = p->cap_where ? p->cap_where * 2 : 4;
        uint32_t *w = realloc(p->where, cap * sizeof *w);
        if (!w) { pt->oom = 1; return p; }
        p->where = w;
        p->cap_where = cap;
    }
    p->where[p->n_where++] = word;
    return p;
}

/* A pair containing the new token: remember it once for a heap push after the merge. */
static void add_fresh(pair_table *pt, int32_t left, int32_t right, int64_t count, uint32_t word, uint32_t merge) {
    pair_info *p = pair_add(pt, left, right, count, word);
    if (!p || p->fresh == merge + 1) return;
    p->fresh = merge + 1;
    if (tok_ivec_push(&pt->fresh, (int32_t)(p - pt->pairs))) pt->oom = 1;
}

typedef struct {
    int32_t *syms;   /* all words' symbols back to back */
    uint32_t *start; /* word w is syms[start[w] .. start[w] + len[w]) */
    uint32_t *len;
    int64_t *count;
    uint32_t n;
} word_list;

/* Replaces every (a, b) in word w by c, updating pair counts around each replacement. The pairs made with c are
 * new, so they are recorded in pt->fresh for one heap push each. */
static void merge_word(pair_table *pt, word_list *wl, uint32_t w, int32_t a, int32_t b, int32_t c, uint32_t m) {
    int32_t *s = wl->syms + wl->start[w];
    uint32_t n = wl->len[w], out = 0;
    int64_t f = wl->count[w];
    for (uint32_t i = 0; i < n;) {
        if (i + 1 < n && s[i] == a && s[i + 1] == b) {
            if (out > 0) {
                pair_add(pt, s[out - 1], a, -f, w);
                add_fresh(pt, s[out - 1], c, f, w, m);
            }
            pair_add(pt, a, b, -f, w);
            if (i + 2 < n) {
                pair_add(pt, b, s[i + 2], -f, w);
                add_fresh(pt, c, s[i + 2], f, w, m);
            }
            s[out++] = c;
            i += 2;
        } else {
            s[out++] = s[i++];
        }
    }
    wl->len[w] = out;
}

static jl_status build_words(const word_map *m, word_list *wl, pair_table *pt) {
    size_t total = 0;
    for (size_t k = 0; k < m->n; k++) total += m->entries[k].len;
    wl->n = (uint32_t)m->n;
    wl->syms = malloc((total + 1) * sizeof *wl->syms);
    wl->start = malloc((m->n + 1) * sizeof *wl->start);
    wl->len = malloc((m->n + 1) * sizeof *wl->len);
    wl->count = malloc((m->n + 1) * sizeof *wl->count);
    if (!wl->syms || !wl->start || !wl->len || !wl->count) return jl_fail(JL_ERR_NOMEM, "out of memory (words)");
    size_t pos = 0;
    for (uint32_t w = 0; w < wl->n; w++) {
        const word_entry *e = &m->entries[w];
        wl->start[w] = (uint32_t)pos;
        wl->len[w] = e->len;
        wl->count[w] = (int64_t)e->count;
        for (uint32_t i = 0; i < e->len; i++) wl->syms[pos + i] = (unsigned char)m->keys[e->off + i];
        for (uint32_t i = 0; i + 1 < e->len; i++)
            pair_add(pt, wl->syms[pos + i], wl->syms[pos + i + 1], wl->count[w], w);
        pos += e->len;
    }
    if (pt->oom) return jl_fail(JL_ERR_NOMEM, "out of memory (pair counts)");
    for (size_t k = 0; k < pt->n; k++)
        heap_push(pt, pt->pairs[k].count, (int32_t)(pt->pairs[k].key >> 32), (int32_t)(uint32_t)pt->pairs[k].key);
    return pt->oom ? jl_fail(JL_ERR_NOMEM, "out of memory (pair heap)") : JL_OK;
}

/* Pops the most frequent live pair (count > 0); stale heap entries are re-pushed with their current count. */
static int best_pair(pair_table *pt, int32_t *a, int32_t *b, int64_t *count) {
    while (pt->n_heap) {
        heap_item top = heap_pop(pt);
        pair_info *p = pair_get(pt, top.left, top.right, 0);
        if (!p || p->count <= 0) continue;
        if (p->count != top.count) {
            heap_push(pt, p->count, top.left, top.right);
            continue;
        }
        *a = top.left;
        *b = top.right;
        *count = p->count;
        return 1;
    }
    return 0;
}

static jl_status learn_merges(jl_bpe_trainer *tr, word_list *wl, pair_table *pt, tok_table *tb, tok_ivec *ml,
                              tok_ivec *mr) {
    int n_merges = tr->opts.vocab_size - tb->n;
    uint32_t *stamp = malloc(((size_t)wl->n + 1) * sizeof *stamp); /* last merge that rewrote each word */
    char *buf = NULL;
    size_t buf_cap = 0;
    if (!stamp) return jl_fail(JL_ERR_NOMEM, "out of memory");
    memset(stamp, 0xFF, ((size_t)wl->n + 1) * sizeof *stamp);
    jl_status st = JL_OK;
    double last_report = 0;
    for (int m = 0; m < n_merges && st == JL_OK; m++) {
        int32_t a, b;
        int64_t count;
        if (!best_pair(pt, &a, &b, &count)) break; /* nothing left to merge: a smaller vocabulary */
        int32_t c = tb->n;
        size_t la = tb->off[a + 1] - tb->off[a], lb = tb->off[b + 1] - tb->off[b];
        if (la + lb > buf_cap) {
            buf_cap = 2 * (la + lb);
            char *nb = realloc(buf, buf_cap);
            if (!nb) { st = jl_fail(JL_ERR_NOMEM, "out of memory"); break; }
            buf = nb;
        }
        memcpy(buf, tb->bytes + tb->off[a], la);
        memcpy(buf + la, tb->bytes + tb->off[b], lb);
        st = tok_table_add(tb, buf, la + lb);
        if (st != JL_OK || tok_ivec_push(ml, a) || tok_ivec_push(mr, b)) {
            if (st == JL_OK) st = jl_fail(JL_ERR_NOMEM, "out of memory");
            break;
        }
        pair_info *p = pair_get(pt, a, b, 0);
        uint32_t *where = p->where, n_where = p->n_where;
        p->where = NULL; /* detached: the list is read below while other pairs grow */
        p->n_where = p->cap_where = 0;
        for (uint32_t k = 0; k < n_where; k++) {
            uint32_t w = where[k];
            if (stamp[w] == (uint32_t)m) continue;
            stamp[w] = (uint32_t)m;
            merge_word(pt, wl, w, a, b, c, (uint32_t)m);
        }
        free(where);
        (void)count;
        /* every pair containing c is new: push each once with its final count */
        for (size_t k = 0; k < pt->fresh.n; k++) {
            pair_info *q = &pt->pairs[pt->fresh.v[k]];
            q->fresh = 0;
            if (q->count > 0) heap_push(pt, q->count, (int32_t)(q->key >> 32), (int32_t)(uint32_t)q->key);
        }
        pt->fresh.n = 0;
        if (pt->oom) st = jl_fail(JL_ERR_NOMEM, "out of memory (pair counts)");
        if (tr->opts.progress && (m + 1 == n_merges || jl_now() - last_report > 0.1)) {
            last_report = jl_now();
            tr->opts.progress(tr->opts.progress_user, "merge", m + 1, n_merges);
        }
    }
    free(stamp);
    free(buf);
    return st;
}

jl_status jl_bpe_trainer_finish(jl_bpe_trainer *tr, jl_tokenizer **out) {
    *out = NULL;
    if (tr->words.n == 0) return jl_fail(JL_ERR_ARG, "empty corpus: no text to train on");
    tok_table tb = {0};
    tok_ivec ml = {0}, mr = {0};
    word_list wl = {0};
    pair_table pt = {.mask = (1 << 16) - 1, .cap = 1 << 15};
    pt.slots = calloc(pt.mask + 1, sizeof *pt.slots);
    pt.pairs = malloc(pt.cap * sizeof *pt.pairs);
    jl_status st = pt.slots && pt.pairs ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory");
    for (int b = 0; b < 256 && st == JL_OK; b++) {
        char ch = (char)b;
        st = tok_table_add(&tb, &ch, 1);
    }
    int32_t special_ids[JL_TOKENIZER_N_SPECIAL];
    for (int k = 0; k < JL_TOKENIZER_N_SPECIAL && st == JL_OK; k++) {
        special_ids[k] = tb.n;
        st = tok_table_add(&tb, jl_tokenizer_special_names[k], strlen(jl_tokenizer_special_names[k]));
    }
    if (st == JL_OK) st = build_words(&tr->words, &wl, &pt);
    if (st == JL_OK) st = learn_merges(tr, &wl, &pt, &tb, &ml, &mr);
    if (st == JL_OK) {
        tok_spec sp = {.n_vocab = tb.n, .tok_off = tb.off, .tok_bytes = tb.bytes, .n_merges = (int)ml.n,
                       .merge_left = ml.v, .merge_right = mr.v, .n_special = JL_TOKENIZER_N_SPECIAL,
                       .special_ids = special_ids, .pattern = tr->pattern, .origin = "training"};
        st = tok_build(&sp, out);
    }
    for (size_t k = 0; k < pt.n; k++) free(pt.pairs[k].where);
    free(pt.slots);
    free(pt.pairs);
    free(pt.heap);
    free(pt.fresh.v);
    free(wl.syms);
    free(wl.start);
    free(wl.len);
    free(wl.count);
    free(ml.v);
    free(mr.v);
    tok_table_free(&tb);
    return st;
}

jl_status jl_tokenizer_train(const char *const *texts, const size_t *lens, size_t n_texts, const jl_train_opts *opts,
                             jl_tokenizer **out) {
    *out = NULL;
    jl_bpe_trainer *tr;
    jl_status st = jl_bpe_trainer_new(opts, &tr);
    for (size_t k = 0; k < n_texts && st == JL_OK; k++) st = jl_bpe_trainer_add(tr, texts[k], lens[k]);
    if (st == JL_OK) st = jl_bpe_trainer_finish(tr, out);
    jl_bpe_trainer_free(tr);
    return st;
}
