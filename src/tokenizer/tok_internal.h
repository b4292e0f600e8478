/* Internals of the byte-level BPE tokenizer shared by encode.c, json.c, train.c and import.c. */
#ifndef JL_TOKENIZER_INTERNAL_H
#define JL_TOKENIZER_INTERNAL_H
#define PCRE2_CODE_UNIT_WIDTH 8
#include "jielong/tokenizer.h"
#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>

/* 64-bit hash of a byte string (FNV-style multiply-xor over 8-byte words, then a finaliser). */
static inline uint64_t tok_hash_bytes(const char *s, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        __builtin_memcpy(&w, s + i, 8);
        h = (h ^ w) * 0x100000001B3ull;
        h ^= h >> 29;
    }
    uint64_t tail = 0;
    for (size_t k = 0; i + k < n; k++) tail |= (uint64_t)(unsigned char)s[i + k] << (8 * k);
    h = (h ^ tail) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 32;
    h *= 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

static inline uint64_t tok_hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ull;
    return x ^ (x >> 33);
}

/* Pair (left id, right id) → (rank, merged id), open addressing. */
typedef struct {
    uint64_t key;    /* (left << 32) | right; UINT64_MAX = empty */
    int32_t rank;
    int32_t merged;
} tok_pair_slot;

typedef struct {
    tok_pair_slot *slots;
    size_t mask;     /* capacity - 1 (capacity is a power of two) */
    size_t count;
    uint64_t *filter; /* NULL or a bit per hash (16 bits per pair): clear = the pair is surely absent. BPE asks
                         mostly about pairs that do not merge; this answers them from a table 1/8 of the map's size */
    size_t filter_mask;
} tok_pair_map;

static inline uint64_t tok_pair_key(int32_t left, int32_t right) {
    return ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
}

static inline const tok_pair_slot *tok_pair_find(const tok_pair_map *m, int32_t left, int32_t right) {
    uint64_t key = tok_pair_key(left, right), h = tok_hash_u64(key);
    if (m->filter) {
        uint64_t b = (h >> 32) & m->filter_mask;
        if (!(m->filter[b >> 6] >> (b & 63) & 1)) return NULL;
    }
    for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
        const tok_pair_slot *s = &m->slots[i];
        if (s->key == key) return s;
        if (s->key == UINT64_MAX) return NULL;
    }
}

typedef struct tok_pipeline tok_pipeline;

struct jl_tokenizer {
    int n_vocab;
    uint32_t *tok_off;     /* n_vocab + 1 offsets into tok_bytes: token i is tok_bytes[tok_off[i]..tok_off[i+1]) */
    char *tok_bytes;
    int32_t byte_id[256];  /* the single-byte token of each byte */

    uint32_t *vocab_slots; /* bytes → id hash (id + 1; 0 = empty), for imports and whole-word lookups */
    size_t vocab_mask;

    int n_merges;          /* merges in rank order, as written to tokenizer.json */
    int32_t *merge_left, *merge_right, *merge_rank;
    tok_pair_map pairs;
    struct { int32_t rank, merged; } *byte_pairs; /* [b1 * 256 + b2]: the pair of two single-byte tokens, without
                                                     hashing (half the lookups of BPE are these); rank INT32_MAX = none */
    int ignore_merges;     /* 1: a pre-token that is itself in the vocabulary is one token (tiktoken, HF) */

    /* Where BPE can merge across the boundary of two multi-byte characters A B: only where some token spans it.
     * cross_pairs holds (A << 21 | B) + 1 for tokens that hold both characters whole (open addressing, 0 =
     * empty); cross_bytes a bit per (last byte of A) << 8 | (first byte of B) for tokens that cut one of them short.
     * On a character-level vocabulary (tokens are text) the same: the pairs of characters some token holds side by
     * side. */
    uint64_t *cross_pairs;
    size_t cross_mask;
    uint64_t cross_bytes[1024];

    int n_special;         /* added tokens matched in text when allow_special = 1 */
    int32_t *special_ids;
    uint8_t special_first[256]; /* 1 if some special token starts with this byte */
    uint8_t *is_special;   /* n_vocab flags */

    char *pattern;         /* pre-tokenizer regex (PCRE2 syntax); "" when the pipeline has none */
    pcre2_code *re;        /* NULL when pattern is "" */
    int parallel_safe;     /* the pipeline is one we know lets text split after "x\n" before [A-Za-z0-9] */

    /* ---- the HF pipeline of a tokenizer.json (all zero / NULL for jielong's own byte-level BPE) ---- */
    tok_pipeline *pipe;    /* NULL: the plain pipeline (added tokens, one regex, byte-level BPE) */
    char *source_json;     /* the tokenizer.json text it was loaded from, written back unchanged; NULL if none */
    size_t source_len;
};

/* Everything needed to make a tokenizer; tok_build validates it and builds the lookup tables. */
typedef struct {
    int n_vocab;
    const uint32_t *tok_off;   /* n_vocab + 1 offsets */
    const char *tok_bytes;
    int n_merges;
    const int32_t *merge_left, *merge_right; /* ids; the merged token must be in the vocabulary */
    const int32_t *merge_rank;               /* NULL: rank = index, shared by merges that make the same token */
    int n_special;
    const int32_t *special_ids;
    const char *pattern;       /* NULL or "": no regex */
    int ignore_merges;
    int char_level;            /* 1: tokens are text (SentencePiece-style), not bytes; the 256 bytes need not exist */
    const char *subword_prefix, *word_suffix; /* BPE continuing_subword_prefix / end_of_word_suffix; NULL = none */
    const uint8_t *in_vocab;   /* per id, NULL = none: a special (added) token BPE can also make */
    const char *origin;        /* file name for error messages */
} tok_spec;

jl_status tok_build(const tok_spec *spec, jl_tokenizer **out);
/* Whether some token spans the boundary between the characters A (last byte x) and B (first byte y). */
static inline int tok_crossable(const jl_tokenizer *t, uint32_t a, uint32_t b, unsigned char x, unsigned char y) {
    unsigned bit = (unsigned)x << 8 | y;
    if (t->cross_bytes[bit >> 6] >> (bit & 63) & 1) return 1;
    uint64_t key = ((uint64_t)a << 21 | b) + 1;
    for (size_t i = tok_hash_u64(key) & t->cross_mask;; i = (i + 1) & t->cross_mask) {
        if (t->cross_pairs[i] == key) return 1;
        if (!t->cross_pairs[i]) return 0;
    }
}
/* Id of a byte string, -1 if absent. */
int32_t tok_lookup(const jl_tokenizer *t, const char *s, size_t n);
/* Compiles `pattern` with UTF + UCP + invalid-UTF matching and JIT. */
jl_status tok_compile_pattern(const char *pattern, pcre2_code **out);

/* GPT-2's byte ↔ unicode mapping used by tokenizer.json / encoder.json to print bytes as visible characters. */
uint32_t tok_byte_to_unicode(unsigned char b);
int tok_unicode_to_byte(uint32_t cp); /* -1 if the code point is not one of the 256 */
/* Decodes a byte-level string (UTF-8 of mapped code points) into raw bytes; returns the length or -1. */
long tok_bytelevel_decode(const char *s, size_t n, char *dst);
/* Encodes raw bytes as a byte-level UTF-8 string into dst (needs 2·n + 1 bytes); returns the length. */
size_t tok_bytelevel_encode(const char *s, size_t n, char *dst);

/* A growable token-byte table used while building vocabularies. */
typedef struct {
    uint32_t *off;
    char *bytes;
    int n, cap;
    size_t len, bytes_cap;
} tok_table;
jl_status tok_table_add(tok_table *tb, const char *s, size_t n);
void tok_table_free(tok_table *tb);

/* Growable int32 vector. */
typedef struct {
    int32_t *v;
    size_t n, cap;
} tok_ivec;
static inline int tok_ivec_reserve(tok_ivec *a, size_t extra) {
    if (a->n + extra <= a->cap) return 0;
    size_t cap = a->cap ? a->cap : 64;
    while (cap < a->n + extra) cap *= 2;
    int32_t *v = realloc(a->v, cap * sizeof *v);
    if (!v) return -1;
    a->v = v;
    a->cap = cap;
    return 0;
}
static inline int tok_ivec_push(tok_ivec *a, int32_t x) {
    if (a->n == a->cap && tok_ivec_reserve(a, 1)) return -1;
    a->v[a->n++] = x;
    return 0;
}

/* Pre-tokens longer than this are cut into windows of at most this many bytes (at UTF-8 character starts): real
 * text never has such pre-tokens, and it bounds the memory of one BPE run (~60 bytes per byte). */
#define TOK_MAX_PIECE (256 * 1024)

/* Pre-tokenisation: calls fn(user, piece, len) for every regex match and for every run of bytes between matches
 * (invalid UTF-8), in order, pieces longer than TOK_MAX_PIECE cut into windows. Returns JL_OK or the first non-OK status fn returned / a regex failure. */
typedef jl_status (*tok_piece_fn)(void *user, const char *piece, size_t len);
jl_status tok_pretokenize(const pcre2_code *re, const char *text, size_t len, tok_piece_fn fn,
                          void *user);

/* Units of parallel work: text split at special tokens (when allowed) and at safe newlines. */
typedef struct {
    size_t start, len;
    int32_t special; /* >= 0: this unit is that special token */
    int cont;        /* 1: it goes on the text segment of the unit before it (cut by tok_spm_cut_ok): a normalizer's
                        Prepend, which applies to a segment's start, is not applied again */
} tok_unit;
/* t: its added tokens are matched (NULL = none), special ones only with allow_special; parallel_safe = 0: text
 * segments are not split (one unit each). */
jl_status tok_split_units(const jl_tokenizer *t, int allow_special, int parallel_safe, const char *text, size_t len,
                          size_t target, tok_unit **units, size_t *n_units);
int tok_pattern_parallel_safe(const char *pattern);

#endif
