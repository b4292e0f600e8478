/* The tokenizer object: building it from a vocabulary + merges, lookups, special tokens, patterns. */
#include "tokenizer/pipeline.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

const char *const jl_tokenizer_special_names[JL_TOKENIZER_N_SPECIAL] = {
    "<|bos|>", "<|eos|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>",
};

/* The pre-tokenizer regexes of GPT-2, GPT-4 and GPT-4o (published with tiktoken), and ours for Chinese text:
 * GPT-4's with every Han character a piece of its own, so merges never cross a character boundary and a
 * Chinese character is exactly one token — small models then see line lengths (5 or 7 characters) directly. */
static const char *const patterns[] = {
    [JL_PATTERN_GPT2] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
    [JL_PATTERN_CL100K] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
                          " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    [JL_PATTERN_O200K] =
        "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
        "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
        "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    [JL_PATTERN_QWEN2] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                         "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    [JL_PATTERN_HAN] = "\\p{Han}|(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[^\\P{L}\\p{Han}]+|\\p{N}{1,3}|"
                       " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};

const char *jl_tokenizer_pattern_text(jl_pattern_kind kind) {
    return (unsigned)kind < sizeof patterns / sizeof patterns[0] ? patterns[kind] : NULL;
}

int jl_tokenizer_pattern_by_name(const char *name) {
    if (!name) return -1;
    if (!strcmp(name, "gpt2") || !strcmp(name, "r50k") || !strcmp(name, "p50k")) return JL_PATTERN_GPT2;
    if (!strcmp(name, "cl100k") || !strcmp(name, "gpt4")) return JL_PATTERN_CL100K;
    if (!strcmp(name, "o200k") || !strcmp(name, "gpt4o")) return JL_PATTERN_O200K;
    if (!strcmp(name, "han")) return JL_PATTERN_HAN;
    if (!strcmp(name, "qwen2") || !strcmp(name, "qwen3")) return JL_PATTERN_QWEN2;
    return -1;
}

/* Splitting after "x\n" (x printable, not a space) before an ASCII letter or digit never changes how these three
 * patterns cut the text: no alternative can continue a newline into a letter or digit, and the newline itself is
 * matched the same way whether or not the text ends after it. For other patterns we do not assume it. */
/* Other patterns of the same shape in real tokenizer.json files (Llama 3, Qwen 2/3, DeepSeek V3's three Splits),
 * for which the same argument holds. */
static const char *const more_safe_patterns[] = {
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    "\\p{N}{1,3}",
    "[\xE4\xB8\x80-\xE9\xBE\xA5\xE3\x81\x80-\xE3\x82\x9F\xE3\x82\xA0-\xE3\x83\xBF]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
    " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
};

int tok_pattern_parallel_safe(const char *pattern) {
    for (size_t k = 0; k < sizeof patterns / sizeof patterns[0]; k++)
        if (!strcmp(pattern, patterns[k])) return 1;
    for (size_t k = 0; k < sizeof more_safe_patterns / sizeof more_safe_patterns[0]; k++)
        if (!strcmp(pattern, more_safe_patterns[k])) return 1;
    return 0;
}

jl_status tok_compile_pattern(const char *pattern, pcre2_code **out) {
    jl_status st = tok_compile_regex(pattern, strlen(pattern), out);
    return st == JL_OK ? st : jl_fail_context(st, "pre-tokenizer");
}

/* ---- GPT-2 byte ↔ unicode mapping: printable Latin-1 bytes map to themselves, the other 68 to U+0100.. ---- */
static int is_printable_latin1(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174; }

uint32_t tok_byte_to_unicode(unsigned char b) {
    if (is_printable_latin1(b)) return b;
    uint32_t k = 0; /* rank of b among the non-printable bytes */
    for (int x = 0; x < b; x++) k += !is_printable_latin1(x);
    return 256 + k;
}

int tok_unicode_to_byte(uint32_t cp) {
    if (cp < 256) return is_printable_latin1((int)cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    uint32_t k = 0;
    for (int x = 0; x < 256; x++)
        if (!is_printable_latin1(x) && k++ == cp - 256) return x;
    return -1;
}

static int utf8_next(const unsigned char *s, size_t n, size_t *i, uint32_t *cp) {
    unsigned char c = s[*i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!len || *i + (size_t)len > n) return -1;
    uint32_t v = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (int k = 1; k < len; k++) {
        if ((s[*i + k] & 0xC0) != 0x80) return -1;
        v = (v << 6) | (s[*i + k] & 0x3F);
    }
    *i += (size_t)len;
    *cp = v;
    return 0;
}

static int16_t unicode_to_byte_table[256 + 68];
static pthread_once_t unicode_table_once = PTHREAD_ONCE_INIT;
static void fill_unicode_table(void) {
    for (uint32_t cp = 0; cp < 256 + 68; cp++) unicode_to_byte_table[cp] = (int16_t)tok_unicode_to_byte(cp);
}

long tok_bytelevel_decode(const char *s, size_t n, char *dst) {
    pthread_once(&unicode_table_once, fill_unicode_table);
    const int16_t *table = unicode_to_byte_table;
    size_t i = 0;
    long out = 0;
    while (i < n) {
        uint32_t cp;
        if (utf8_next((const unsigned char *)s, n, &i, &cp) || cp >= 256 + 68 || table[cp] < 0) return -1;
        dst[out++] = (char)table[cp];
    }
    return out;
}

size_t tok_bytelevel_encode(const char *s, size_t n, char *dst) {
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = tok_byte_to_unicode((unsigned char)s[i]);
        if (cp < 0x80) dst[out++] = (char)cp;
        else {
            dst[out++] = (char)(0xC0 | (cp >> 6));
            dst[out++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    dst[out] = '\0';
    return out;
}

/* ---- growable token table ---- */
jl_status tok_table_add(tok_table *tb, const char *s, size_t n) {
    if (tb->n + 2 > tb->cap) {
        int cap = tb->cap ? tb->cap * 2 : 1024;
        uint32_t *off = realloc(tb->off, sizeof *off * (size_t)cap);
        if (!off) return jl_fail(JL_ERR_NOMEM, "out of memory (token table)");
        tb->off = off;
        tb->cap = cap;
    }
    if (tb->len + n > tb->bytes_cap) {
        size_t cap = tb->bytes_cap ? tb->bytes_cap : 4096;
        while (cap < tb->len + n) cap *= 2;
        char *b = realloc(tb->bytes, cap);
        if (!b) return jl_fail(JL_ERR_NOMEM, "out of memory (token table)");
        tb->bytes = b;
        tb->bytes_cap = cap;
    }
    if (tb->len + n > UINT32_MAX) return jl_fail(JL_ERR_ARG, "vocabulary too large");
    if (tb->n == 0) tb->off[0] = 0;
    if (n) memcpy(tb->bytes + tb->len, s, n);
    tb->len += n;
    tb->off[++tb->n] = (uint32_t)tb->len;
    return JL_OK;
}

void tok_table_free(tok_table *tb) {
    free(tb->off);
    free(tb->bytes);
    memset(tb, 0, sizeof *tb);
}

/* ---- lookups ---- */
static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

int32_t tok_lookup(const jl_tokenizer *t, const char *s, size_t n) {
    for (size_t i = tok_hash_bytes(s, n) & t->vocab_mask;; i = (i + 1) & t->vocab_mask) {
        uint32_t v = t->vocab_slots[i];
        if (!v) return -1;
        int32_t id = (int32_t)v - 1;
        size_t len = t->tok_off[id + 1] - t->tok_off[id];
        if (len == n && memcmp(t->tok_bytes + t->tok_off[id], s, n) == 0) return id;
    }
}

/* Fills the bytes → id hash; the first id of a duplicated byte string wins (specials never shadow bytes). */
static jl_status build_vocab_map(jl_tokenizer *t, const uint8_t *in_vocab) {
    size_t cap = pow2_at_least((size_t)t->n_vocab * 2);
    t->vocab_slots = calloc(cap, sizeof *t->vocab_slots);
    if (!t->vocab_slots) return jl_fail(JL_ERR_NOMEM, "out of memory (vocabulary)");
    t->vocab_mask = cap - 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (t->is_special[id] && !(in_vocab && in_vocab[id])) continue;
        const char *s = t->tok_bytes + t->tok_off[id];
        size_t n = t->tok_off[id + 1] - t->tok_off[id];
        if (n == 0 || tok_lookup(t, s, n) >= 0) continue;
        size_t i = tok_hash_bytes(s, n) & t->vocab_mask;
        while (t->vocab_slots[i]) i = (i + 1) & t->vocab_mask;
        t->vocab_slots[i] = (uint32_t)id + 1;
    }
    return JL_OK;
}

static jl_status build_pairs(jl_tokenizer *t, const tok_spec *sp) {
    size_t cap = pow2_at_least((size_t)sp->n_merges * 2 + 2);
    t->pairs.slots = malloc(cap * sizeof *t->pairs.slots);
    t->merge_left = malloc(sizeof(int32_t) * ((size_t)sp->n_merges + 1));
    t->merge_right = malloc(sizeof(int32_t) * ((size_t)sp->n_merges + 1));
    t->merge_rank = malloc(sizeof(int32_t) * ((size_t)sp->n_merges + 1));
    int32_t *first_rank = malloc(sizeof(int32_t) * (size_t)t->n_vocab); /* rank of the first merge making a token */
    if (!t->pairs.slots || !t->merge_left || !t->merge_right || !t->merge_rank || !first_rank) {
        free(first_rank);
        return jl_fail(JL_ERR_NOMEM, "out of memory (merges)");
    }
    for (int i = 0; i < t->n_vocab; i++) first_rank[i] = -1;
    for (size_t i = 0; i < cap; i++) t->pairs.slots[i].key = UINT64_MAX;
    t->pairs.mask = cap - 1;
    char *buf = NULL;
    size_t buf_cap = 0;
    jl_status st = JL_OK;
    for (int m = 0; m < sp->n_merges && st == JL_OK; m++) {
        int32_t l = sp->merge_left[m], r = sp->merge_right[m];
        if (l < 0 || r < 0 || l >= t->n_vocab || r >= t->n_vocab) {
            st = jl_fail(JL_ERR_FORMAT, "%s: merge %d: token id out of range", sp->origin, m);
            break;
        }
        size_t nl = t->tok_off[l + 1] - t->tok_off[l], nr = t->tok_off[r + 1] - t->tok_off[r];
        if (nl + nr > buf_cap) {
            buf_cap = (nl + nr) * 2;
            char *b = realloc(buf, buf_cap);
            if (!b) { st = jl_fail(JL_ERR_NOMEM, "out of memory (merges)"); break; }
            buf = b;
        }
        memcpy(buf, t->tok_bytes + t->tok_off[l], nl);
        const char *rs = t->tok_bytes + t->tok_off[r];
        size_t pl = sp->subword_prefix ? strlen(sp->subword_prefix) : 0;
        if (pl && nr >= pl && !memcmp(rs, sp->subword_prefix, pl)) { /* HF: a + b without b's prefix */
            rs += pl;
            nr -= pl;
        }
        memcpy(buf + nl, rs, nr);
        int32_t merged = tok_lookup(t, buf, nl + nr);
        if (merged < 0) {
            st = jl_fail(JL_ERR_FORMAT, "%s: merge %d: the merged token is not in the vocabulary", sp->origin, m);
            break;
        }
        /* Merges that make the same token share its first rank, so equal-rank pairs merge leftmost first,
         * exactly as tiktoken does with its rank files. */
        int32_t rank = sp->merge_rank ? sp->merge_rank[m] : (first_rank[merged] >= 0 ? first_rank[merged] : m);
        if (first_rank[merged] < 0) first_rank[merged] = rank;
        uint64_t key = tok_pair_key(l, r);
        size_t i = tok_hash_u64(key) & t->pairs.mask;
        while (t->pairs.slots[i].key != UINT64_MAX && t->pairs.slots[i].key != key) i = (i + 1) & t->pairs.mask;
        if (t->pairs.slots[i].key == key) continue; /* a repeated merge line: the first one counts */
        t->pairs.slots[i] = (tok_pair_slot){key, rank, merged};
        t->pairs.count++;
        t->merge_left[t->n_merges] = l;
        t->merge_right[t->n_merges] = r;
        t->merge_rank[t->n_merges] = rank;
        t->n_merges++;
    }
    free(buf);
    free(first_rank);
    return st;
}

/* The pair map's filter: a bit per (hash >> 32) of each pair, 16 bits per pair (about 1 in 16 absent pairs passes). */
static jl_status build_pair_filter(tok_pair_map *m) {
    size_t bits = pow2_at_least(m->count * 16 + 64);
    m->filter = calloc(bits / 64, sizeof *m->filter);
    if (!m->filter) return jl_fail(JL_ERR_NOMEM, "out of memory (merges)");
    m->filter_mask = bits - 1;
    for (size_t i = 0; i <= m->mask; i++) {
        if (m->slots[i].key == UINT64_MAX) continue;
        uint64_t b = (tok_hash_u64(m->slots[i].key) >> 32) & m->filter_mask;
        m->filter[b >> 6] |= 1ull << (b & 63);
    }
    return JL_OK;
}

static jl_status build_byte_pairs(jl_tokenizer *t) {
    t->byte_pairs = malloc(65536 * sizeof *t->byte_pairs);
    if (!t->byte_pairs) return jl_fail(JL_ERR_NOMEM, "out of memory");
    for (int a = 0; a < 256; a++)
        for (int b = 0; b < 256; b++) {
            const tok_pair_slot *s = t->byte_id[a] < 0 || t->byte_id[b] < 0
                                         ? NULL : tok_pair_find(&t->pairs, t->byte_id[a], t->byte_id[b]);
            t->byte_pairs[a * 256 + b].rank = s ? s->rank : INT32_MAX;
            t->byte_pairs[a * 256 + b].merged = s ? s->merged : -1;
        }
    return JL_OK;
}

/* UTF-8 length announced by a lead byte (>= 0xC0). */
static size_t lead_len(unsigned char c) { return c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

static int cross_add(jl_tokenizer *t, uint64_t key, size_t *count) {
    size_t i = tok_hash_u64(key) & t->cross_mask;
    while (t->cross_pairs[i] && t->cross_pairs[i] != key) i = (i + 1) & t->cross_mask;
    if (!t->cross_pairs[i]) ++*count;
    t->cross_pairs[i] = key;
    return *count * 2 > t->cross_mask; /* 1: full, grow */
}

/* The boundaries inside token s[0..n) between a multi-byte character and the next (see jl_tokenizer.cross_*). */
static int cross_token(jl_tokenizer *t, const unsigned char *s, size_t n, size_t *count) {
    for (size_t k = 1; k < n; k++) {
        if (s[k - 1] < 0x80 || s[k] < 0xC0) continue;
        size_t j = k - 1;
        while (j > 0 && s[j] >= 0x80 && s[j] < 0xC0) j--;
        uint32_t a = 0xFFFD, b = 0xFFFD;
        int whole = s[j] >= 0xC0 && lead_len(s[j]) == k - j && k + lead_len(s[k]) <= n &&
                    tok_utf8_char((const char *)s + j, k - j, &a) == k - j &&
                    tok_utf8_char((const char *)s + k, lead_len(s[k]), &b) == lead_len(s[k]);
        if (!whole) {
            unsigned bit = (unsigned)s[k - 1] << 8 | s[k];
            t->cross_bytes[bit >> 6] |= 1ull << (bit & 63);
        } else if (cross_add(t, ((uint64_t)a << 21 | b) + 1, count)) {
            return 1;
        }
    }
    return 0;
}

static jl_status build_cross(jl_tokenizer *t) {
    for (size_t cap = 1024;; cap *= 2) {
        free(t->cross_pairs);
        memset(t->cross_bytes, 0, sizeof t->cross_bytes);
        t->cross_pairs = calloc(cap, sizeof *t->cross_pairs);
        if (!t->cross_pairs) return jl_fail(JL_ERR_NOMEM, "out of memory");
        t->cross_mask = cap - 1;
        size_t count = 0;
        int full = 0;
        for (int id = 0; id < t->n_vocab && !full; id++)
            full = cross_token(t, (const unsigned char *)t->tok_bytes + t->tok_off[id],
                               t->tok_off[id + 1] - t->tok_off[id], &count);
        if (!full) return JL_OK;
    }
}

static jl_status build_specials(jl_tokenizer *t, const tok_spec *sp) {
    t->special_ids = malloc(sizeof(int32_t) * ((size_t)sp->n_special + 1));
    if (!t->special_ids) return jl_fail(JL_ERR_NOMEM, "out of memory");
    for (int k = 0; k < sp->n_special; k++) {
        int32_t id = sp->special_ids[k];
        if (id < 0 || id >= t->n_vocab)
            return jl_fail(JL_ERR_FORMAT, "%s: special token id %d out of range", sp->origin, (int)id);
        if (t->tok_off[id + 1] == t->tok_off[id])
            return jl_fail(JL_ERR_FORMAT, "%s: special token %d is empty", sp->origin, (int)id);
        if (t->is_special[id]) continue;
        t->is_special[id] = 1;
        t->special_ids[t->n_special++] = id;
        t->special_first[(unsigned char)t->tok_bytes[t->tok_off[id]]] = 1;
    }
    return JL_OK;
}

jl_status tok_build(const tok_spec *sp, jl_tokenizer **out) {
    *out = NULL;
    if (sp->n_vocab < (sp->char_level ? 1 : 256))
        return jl_fail(JL_ERR_FORMAT, sp->char_level ? "%s: the vocabulary is empty"
                                                     : "%s: vocabulary of %d tokens is smaller than the 256 bytes",
                       sp->origin, sp->n_vocab);
    jl_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return jl_fail(JL_ERR_NOMEM, "out of memory");
    t->n_vocab = sp->n_vocab;
    t->ignore_merges = sp->ignore_merges;
    size_t nbytes = sp->tok_off[sp->n_vocab];
    t->tok_off = malloc(sizeof(uint32_t) * ((size_t)sp->n_vocab + 1));
    t->tok_bytes = malloc(nbytes + 1);
    t->is_special = calloc((size_t)sp->n_vocab, 1);
    t->pattern = strdup(sp->pattern ? sp->pattern : "");
    jl_status st = JL_OK;
    if (!t->tok_off || !t->tok_bytes || !t->is_special || !t->pattern) st = jl_fail(JL_ERR_NOMEM, "out of memory");
    if (st == JL_OK) {
        memcpy(t->tok_off, sp->tok_off, sizeof(uint32_t) * ((size_t)sp->n_vocab + 1));
        memcpy(t->tok_bytes, sp->tok_bytes, nbytes);
        st = build_specials(t, sp);
    }
    if (st == JL_OK) st = build_vocab_map(t, sp->in_vocab);
    for (int b = 0; b < 256 && st == JL_OK; b++) {
        char c = (char)b;
        t->byte_id[b] = tok_lookup(t, &c, 1);
        if (t->byte_id[b] < 0 && !sp->char_level)
            st = jl_fail(JL_ERR_FORMAT, "%s: not a byte-level vocabulary: byte 0x%02X has no token", sp->origin, b);
    }
    if (st == JL_OK) st = build_pairs(t, sp);
    if (st == JL_OK) st = build_pair_filter(&t->pairs);
    if (st == JL_OK) st = build_byte_pairs(t);
    if (st == JL_OK) st = build_cross(t);
    if (st == JL_OK && t->pattern[0]) st = tok_compile_pattern(t->pattern, &t->re);
    if (st == JL_OK) st = tok_pipeline_default(t);
    if (st == JL_OK) t->pipe->char_level = sp->char_level;
    if (st != JL_OK) {
        jl_tokenizer_free(t);
        return st;
    }
    t->parallel_safe = tok_pattern_parallel_safe(t->pattern);
    *out = t;
    return JL_OK;
}

void jl_tokenizer_free(jl_tokenizer *t) {
    if (!t) return;
    free(t->tok_off);
    free(t->tok_bytes);
    free(t->vocab_slots);
    free(t->merge_left);
    free(t->merge_right);
    free(t->merge_rank);
    free(t->pairs.slots);
    free(t->pairs.filter);
    free(t->byte_pairs);
    free(t->cross_pairs);
    free(t->special_ids);
    free(t->is_special);
    free(t->pattern);
    if (t->re) pcre2_code_free(t->re);
    tok_pipeline_free(t->pipe);
    free(t->source_json);
    free(t);
}

jl_status jl_tokenizer_bytes(jl_tokenizer **out) {
    tok_table tb = {0};
    jl_status st = JL_OK;
    for (int b = 0; b < 256 && st == JL_OK; b++) {
        char c = (char)b;
        st = tok_table_add(&tb, &c, 1);
    }
    int32_t special_ids[JL_TOKENIZER_N_SPECIAL];
    for (int k = 0; k < JL_TOKENIZER_N_SPECIAL && st == JL_OK; k++) {
        special_ids[k] = 256 + k;
        st = tok_table_add(&tb, jl_tokenizer_special_names[k], strlen(jl_tokenizer_special_names[k]));
    }
    if (st == JL_OK) {
        tok_spec sp = {.n_vocab = tb.n, .tok_off = tb.off, .tok_bytes = tb.bytes, .n_special = JL_TOKENIZER_N_SPECIAL,
                       .special_ids = special_ids, .pattern = patterns[JL_PATTERN_CL100K], .origin = "bytes"};
        st = tok_build(&sp, out);
    }
    tok_table_free(&tb);
    return st;
}

int jl_tokenizer_vocab_size(const jl_tokenizer *t) { return t->n_vocab; }

const char *jl_tokenizer_pattern(const jl_tokenizer *t) { return t->pattern; }

int jl_tokenizer_set_scanner(jl_tokenizer *t, int on) {
    t->pipe->pcre2_only = !on;
    int n = 0;
    for (int k = 0; on && k < t->pipe->n_pre; k++) n += t->pipe->pre[k].kind == TOK_PRE_SPLIT && t->pipe->pre[k].scan;
    return n;
}

const char *jl_tokenizer_token(const jl_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) {
        if (len) *len = 0;
        return NULL;
    }
    const tok_pipeline *p = t->pipe;
    const uint32_t *off = p->dec_bytes ? p->dec_off : t->tok_off;
    if (len) *len = off[id + 1] - off[id];
    return (p->dec_bytes ? p->dec_bytes : t->tok_bytes) + off[id];
}

void jl_tokenizer_template(const jl_tokenizer *t, const int32_t **prefix, size_t *n_prefix, const int32_t **suffix,
                           size_t *n_suffix) {
    *prefix = t->pipe->tpl_prefix;
    *n_prefix = t->pipe->n_tpl_prefix;
    *suffix = t->pipe->tpl_suffix;
    *n_suffix = t->pipe->n_tpl_suffix;
}

int32_t jl_tokenizer_special(const jl_tokenizer *t, const char *name) {
    size_t n = strlen(name);
    for (int k = 0; k < t->n_special; k++) {
        int32_t id = t->special_ids[k];
        if (t->tok_off[id + 1] - t->tok_off[id] == n && memcmp(t->tok_bytes + t->tok_off[id], name, n) == 0)
            return id;
    }
    return -1;
}

static int32_t first_special(const jl_tokenizer *t, const char *const *names) {
    for (; *names; names++) {
        int32_t id = jl_tokenizer_special(t, *names);
        if (id >= 0) return id;
    }
    return -1;
}

int32_t jl_tokenizer_bos(const jl_tokenizer *t) {
    int32_t id = jl_tokenizer_special(t, "<|bos|>");
    if (id >= 0) return id;
    if (t->pipe->n_tpl_prefix == 1) return t->pipe->tpl_prefix[0];
    static const char *const names[] = {"<|begin_of_text|>", "<bos>", "<s>",
                                        "<\xEF\xBD\x9C" "begin\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>",
                                        "<|endoftext|>", NULL};
    return first_special(t, names);
}

int32_t jl_tokenizer_eos(const jl_tokenizer *t) {
    static const char *const names[] = {"<|eos|>", "<|end_of_text|>", "<|endoftext|>", "<eos>", "</s>",
                                        "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>", NULL};
    return first_special(t, names);
}
