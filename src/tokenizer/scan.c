/* Hand-written pre-tokenizer scanners for the regexes real tokenizers use most (GPT-2's; GPT-4's cl100k, which
 * Llama 3 shares; Qwen 2/3's, cl100k's with single digits). Each gives exactly the spans PCRE2 gives for the same
 * pattern (leftmost match, alternatives in order, greedy with backtracking as worked out below), and invalid UTF-8
 * is a barrier no match crosses, as with PCRE2_MATCH_INVALID_UTF. The character classes (\p{L}, \p{N}, \s under
 * PCRE2_UCP) are taken from PCRE2 itself, a block of 256 code points at a time the first time one is met, so the
 * two agree on every code point whatever Unicode version each library has. tests/test_tokenizer.c compares the
 * two on adversarial text; bench_tokenizer times both. */
#include "tokenizer/pipeline.h"
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

static const char *const scan_patterns[] = {
    [TOK_SCAN_GPT2] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
    [TOK_SCAN_CL100K] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
                        " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    [TOK_SCAN_QWEN2] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                       "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};

int tok_scan_kind_of(const char *pattern, size_t len) {
    for (int k = 1; k < (int)(sizeof scan_patterns / sizeof scan_patterns[0]); k++)
        if (strlen(scan_patterns[k]) == len && !memcmp(pattern, scan_patterns[k], len)) return k;
    return TOK_SCAN_NONE;
}

/* ---- character classes, from PCRE2 ---- */
enum { C_L = 1, C_N = 2, C_S = 4, C_BAD = 8 }; /* letter, number, \s; C_BAD: an invalid UTF-8 byte */
enum { N_BLOCKS = 0x110000 >> 8 };

static _Atomic(uint8_t *) cls_blocks[N_BLOCKS];
static uint8_t ascii_cls[128];
static const uint8_t zero_block[256]; /* the surrogates: never decoded, so never asked */
static pcre2_code *cls_re;            /* (\p{L}+)|(\p{N}+)|(\s+), made once, kept for the process */
static pthread_once_t cls_once = PTHREAD_ONCE_INIT;
static jl_status cls_init_status = JL_ERR_RUNTIME;

static jl_status build_block(uint32_t block, uint8_t **out) {
    char buf[256 * 4];
    uint32_t off[257];
    size_t len = 0;
    for (uint32_t k = 0; k < 256; k++) {
        off[k] = (uint32_t)len;
        len += tok_utf8_put((block << 8) | k, buf + len);
    }
    off[256] = (uint32_t)len;
    uint8_t *cls = calloc(256, 1);
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    if (!cls || !md) {
        free(cls);
        pcre2_match_data_free(md);
        return jl_fail(JL_ERR_NOMEM, "out of memory (pre-tokenizer classes)");
    }
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t at = 0;
    uint32_t k = 0;
    while (at < len) {
        int rc = pcre2_match(cls_re, (PCRE2_SPTR)buf, len, at, 0, md, NULL);
        if (rc <= 0) break;
        int g = 1;
        while (g < rc && ov[2 * g] == PCRE2_UNSET) g++;
        uint8_t c = g == 1 ? C_L : g == 2 ? C_N : C_S;
        while (k < 256 && off[k] < ov[0]) k++;
        for (; k < 256 && off[k] < ov[1]; k++) cls[k] = c;
        at = ov[1] > at ? ov[1] : at + 1;
    }
    pcre2_match_data_free(md);
    *out = cls;
    return JL_OK;
}

static void cls_init(void) {
    static const char classes[] = "(\\p{L}+)|(\\p{N}+)|(\\s+)";
    if (tok_compile_regex(classes, sizeof classes - 1, &cls_re) != JL_OK) return;
    uint8_t *b0;
    if (build_block(0, &b0) != JL_OK) return;
    memcpy(ascii_cls, b0, 128);
    atomic_store(&cls_blocks[0], b0);
    for (uint32_t b = 0xD8; b < 0xE0; b++) atomic_store(&cls_blocks[b], (uint8_t *)zero_block);
    cls_init_status = JL_OK;
}

/* The class table of code point block b, built (by whichever thread comes first) when first needed. */
static const uint8_t *cls_block(uint32_t b) {
    uint8_t *p = atomic_load_explicit(&cls_blocks[b], memory_order_acquire);
    if (p) return p;
    uint8_t *mine;
    if (build_block(b, &mine) != JL_OK) return NULL;
    uint8_t *expected = NULL;
    if (!atomic_compare_exchange_strong(&cls_blocks[b], &expected, mine)) {
        free(mine); /* another thread built the same table first */
        return expected;
    }
    return mine;
}

/* Class of the character at s[0..n) (n >= 1) and its length; C_BAD (length 1) for an invalid byte; 0xFF if the
 * class table could not be made (out of memory). */
static inline unsigned cls_at(const char *s, size_t n, size_t *len) {
    unsigned char c = (unsigned char)s[0];
    if (c < 0x80) {
        *len = 1;
        return ascii_cls[c];
    }
    uint32_t cp;
    *len = tok_utf8_char(s, n, &cp);
    if (cp == 0xFFFD && *len == 1) return C_BAD;
    const uint8_t *b = cls_block(cp >> 8);
    return b ? b[cp & 255] : 0xFF;
}

static int is_punct(unsigned c) { return !(c & (C_L | C_N | C_S | C_BAD)); } /* [^\s\p{L}\p{N}], valid */

/* A scan: the text, where it ends and whether a class table failed. */
typedef struct {
    const char *s;
    size_t n;
    int oom;
} scan;

static inline unsigned cls_of(scan *sc, size_t i, size_t *len) {
    if (i >= sc->n) {
        *len = 0;
        return C_BAD; /* the end acts as a barrier, like an invalid byte */
    }
    unsigned c = cls_at(sc->s + i, sc->n - i, len);
    if (c == 0xFF) {
        sc->oom = 1;
        c = C_BAD;
    }
    return c;
}

/* End of the run of characters from i whose class has a bit of mask, at most max of them. */
static size_t run_of(scan *sc, size_t i, unsigned mask, size_t max) {
    for (size_t count = 0; count < max; count++) {
        size_t l;
        if (!(cls_of(sc, i, &l) & mask)) break;
        i += l;
    }
    return i;
}

static size_t run_punct(scan *sc, size_t i) {
    for (;;) {
        size_t l;
        if (!is_punct(cls_of(sc, i, &l))) return i;
        i += l;
    }
}

static size_t run_crlf(const scan *sc, size_t i) {
    while (i < sc->n && (sc->s[i] == '\r' || sc->s[i] == '\n')) i++;
    return i;
}

/* Length of the contraction after an apostrophe at s[0..n): 's 't 're 've 'm 'll 'd, any case with caseless
 * (PCRE2's caseless s also matches U+017F ſ); 0 if none. */
static size_t contraction(const char *s, size_t n, int caseless) {
    if (!n) return 0;
    char a = s[0], b = n > 1 ? s[1] : 0;
    if (caseless) {
        if (n > 1 && (unsigned char)a == 0xC5 && (unsigned char)b == 0xBF) return 2; /* ſ */
        if (a >= 'A' && a <= 'Z') a = (char)(a + 32);
        if (b >= 'A' && b <= 'Z') b = (char)(b + 32);
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 1;
    if ((a == 'r' || a == 'v') && b == 'e') return 2;
    if (a == 'l' && b == 'l') return 2;
    return 0;
}

/* The whitespace alternatives at i (a \s character): with_newline adds cl100k's \s*[\r\n]+ before
 * \s+(?!\S) and \s+. */
static size_t match_space(scan *sc, size_t i, int with_newline) {
    size_t j = i, last = i, after_nl = 0, l;
    while (cls_of(sc, j, &l) & C_S) {
        if (with_newline && (sc->s[j] == '\r' || sc->s[j] == '\n')) after_nl = j + 1;
        last = j;
        j += l;
    }
    if (after_nl) return after_nl; /* \s* gives back down to the last newline, [\r\n]+ takes it */
    if (cls_of(sc, j, &l) & C_BAD) return j; /* (?!\S) holds at the end and before an invalid byte */
    return last > i ? last : j; /* \s+ gives back one character so (?!\S) holds, else \s+ alone */
}

/* cl100k / Qwen 2: the end of the match starting at i (class c0, length l0). */
static size_t match_cl100k(scan *sc, size_t i, unsigned c0, size_t l0, size_t max_digits) {
    const char *s = sc->s;
    size_t l1;
    if (s[i] == '\'') {
        size_t k = contraction(s + i + 1, sc->n - i - 1, 1);
        if (k) return i + 1 + k;
    }
    if (!(c0 & (C_L | C_N)) && s[i] != '\r' && s[i] != '\n' && (cls_of(sc, i + l0, &l1) & C_L))
        return run_of(sc, i + l0, C_L, SIZE_MAX);
    if (c0 & C_L) return run_of(sc, i, C_L, SIZE_MAX);
    if (c0 & C_N) return run_of(sc, i, C_N, max_digits);
    if (s[i] == ' ' && is_punct(cls_of(sc, i + 1, &l1))) return run_crlf(sc, run_punct(sc, i + 1));
    if (is_punct(c0)) return run_crlf(sc, run_punct(sc, i));
    return match_space(sc, i, 1);
}

/* GPT-2: the end of the match starting at i. */
static size_t match_gpt2(scan *sc, size_t i, unsigned c0) {
    const char *s = sc->s;
    if (s[i] == '\'') {
        size_t k = contraction(s + i + 1, sc->n - i - 1, 0);
        if (k) return i + 1 + k;
    }
    size_t l1;
    unsigned c = c0, from = i;
    if (s[i] == ' ') {
        unsigned c1 = cls_of(sc, i + 1, &l1);
        if ((c1 & (C_L | C_N)) || is_punct(c1)) c = c1, from = i + 1;
    }
    if (c & C_L) return run_of(sc, from, C_L, SIZE_MAX);
    if (c & C_N) return run_of(sc, from, C_N, SIZE_MAX);
    if (is_punct(c)) return run_punct(sc, from);
    return match_space(sc, i, 0);
}

jl_status tok_scan(int kind, const char *s, size_t n, tok_span_fn fn, void *user) {
    pthread_once(&cls_once, cls_init);
    if (cls_init_status != JL_OK) return jl_fail(JL_ERR_NOMEM, "pre-tokenizer: character classes: out of memory");
    scan sc = {s, n, 0};
    size_t i = 0, gap = 0;
    jl_status st = JL_OK;
    while (i < n && st == JL_OK) {
        size_t l0;
        unsigned c0 = cls_of(&sc, i, &l0);
        if (c0 & C_BAD) { /* an invalid byte: part of the run between matches */
            i += l0;
            continue;
        }
        size_t end = kind == TOK_SCAN_GPT2     ? match_gpt2(&sc, i, c0)
                     : kind == TOK_SCAN_QWEN2 ? match_cl100k(&sc, i, c0, l0, 1)
                                              : match_cl100k(&sc, i, c0, l0, 3);
        if (sc.oom) return jl_fail(JL_ERR_NOMEM, "pre-tokenizer: character classes: out of memory");
        if (i > gap) st = fn(user, gap, i, 0);
        if (st == JL_OK) st = fn(user, i, end, 1);
        i = gap = end;
    }
    if (st == JL_OK && gap < n) st = fn(user, gap, n, 0);
    return st;
}
