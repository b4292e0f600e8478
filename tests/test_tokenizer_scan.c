/* The hand-written pre-tokenizer scanners (src/tokenizer/scan.c) split exactly as PCRE2 does with their patterns:
 * every code point in several contexts, adversarial text (contractions in any case, ſ, numbers, whitespace runs
 * before letters / at the end / before invalid bytes, CRLF, combining marks, invalid UTF-8), and the benchmark's
 * synthetic text; and encoding with the scanner gives the same ids as with PCRE2. */
#include "testutil.h"
#include "core/rng.h"
#include "jielong/tokenizer.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/synth.h"
#include <stdio.h>
#include <string.h>

typedef struct {
    size_t *v; /* start, end pairs */
    size_t n, cap;
    const char *base;
} spans;

static void push(spans *s, size_t a, size_t b) {
    if (s->n + 2 > s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        assert_non_null(s->v);
    }
    s->v[s->n++] = a;
    s->v[s->n++] = b;
}

static jl_status on_span(void *user, size_t start, size_t end, int is_match) {
    (void)is_match;
    push(user, start, end);
    return JL_OK;
}

static jl_status on_piece(void *user, const char *piece, size_t len) {
    spans *s = user;
    push(s, (size_t)(piece - s->base), (size_t)(piece - s->base) + len);
    return JL_OK;
}

/* Pieces ≤ TOK_MAX_PIECE in this text, so PCRE2's pieces (tok_pretokenize) and the scanner's spans compare 1:1. */
static void assert_same_split(int kind, const char *text, size_t len) {
    const char *const pats[] = {NULL, jl_tokenizer_pattern_text(JL_PATTERN_GPT2),
                                jl_tokenizer_pattern_text(JL_PATTERN_CL100K),
                                jl_tokenizer_pattern_text(JL_PATTERN_QWEN2)};
    assert_int_equal(tok_scan_kind_of(pats[kind], strlen(pats[kind])), kind);
    pcre2_code *re;
    assert_int_equal(tok_compile_regex(pats[kind], strlen(pats[kind]), &re), JL_OK);
    spans a = {.base = text}, b = {.base = text};
    assert_int_equal(tok_pretokenize(re, text, len, on_piece, &a), JL_OK);
    assert_int_equal(tok_scan(kind, text, len, on_span, &b), JL_OK);
    size_t n = a.n < b.n ? a.n : b.n, i = 0;
    while (i < n && a.v[i] == b.v[i]) i++;
    if (i < a.n || i < b.n) {
        size_t at = i < a.n ? a.v[i & ~(size_t)1] : b.v[i & ~(size_t)1];
        size_t from = at > 16 ? at - 16 : 0, to = at + 24 < len ? at + 24 : len;
        fprintf(stderr, "pattern %d: PCRE2 and the scanner split differently at byte %zu (PCRE2 [%zu, %zu), "
                "scanner [%zu, %zu)); text around it:", kind, at, i < a.n ? a.v[i & ~(size_t)1] : 0,
                i < a.n ? a.v[i | 1] : 0, i < b.n ? b.v[i & ~(size_t)1] : 0, i < b.n ? b.v[i | 1] : 0);
        for (size_t k = from; k < to; k++) fprintf(stderr, " %02X", (unsigned char)text[k]);
        fprintf(stderr, "\n");
        fail_msg("split differs");
    }
    free(a.v);
    free(b.v);
    pcre2_code_free(re);
}

typedef struct {
    char *s;
    size_t n, cap;
} buf;

static void put(buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        assert_non_null(b->s);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

/* Every code point (not the surrogates) after a letter, a space, an apostrophe and a digit, and before a letter. */
static void every_code_point(buf *b) {
    static const char *const before[] = {"a", " ", "'", "1", "\n", "\t", "!"};
    for (uint32_t cp = 0; cp < 0x110000; cp++) {
        if (cp >= 0xD800 && cp < 0xE000) continue;
        char c[4];
        size_t l = tok_utf8_put(cp, c);
        puts_(b, before[cp % 7]);
        put(b, c, l);
        puts_(b, cp % 3 ? "b" : " ");
    }
}

static void adversarial(buf *b, uint64_t seed) {
    static const char *const bits[] = {
        "'s", "'S", "'t", "'T", "'re", "'RE", "'rE", "'ve", "'Ve", "'m", "'M", "'ll", "'LL", "'lL", "'d", "'D",
        "'\xC5\xBF", "'\xE2\x84\xAA", "'x", "'", "''", "'r", "'l", "'v", " ", "  ", "   ", "\t", "\n", "\r\n", "\r",
        "\n\n", " \n ", "\t\n\t", "\xC2\xA0", "\xE3\x80\x80", "\xE2\x80\xA8", "\xC2\x85", "\x0B", "\x0C", "abc",
        "ABC", "Zürich", "e\xCC\x81", "\xCC\x81", "\xCC\x81x", "1", "12", "123", "1234", "12345", "١٢٣", "１２",
        "½", "Ⅻ", "①②", "的一是", "こんにちは", "한국어", "😀", "👍🏽", "!", "!!", "...", "?!", "$", "€", "—",
        "\xFF", "\xC0\x80", "\xED\xA0\x80", "\xE2\x82", "\xF4\x90\x80\x80", "\x80", "\xF0\x9F\x98", "_", "-", "#",
        "'s'", "x'sy", "\xEF\xBF\xBD", "\x00", "<|end|>", "ǅ", "ﬁ", "\xE2\x80\x8B", "\xEF\xBB\xBF",
    };
    jl_rng r;
    jl_rng_seed(&r, seed);
    for (int k = 0; k < 200000; k++) {
        const char *s = bits[jl_rng_below(&r, sizeof bits / sizeof bits[0])];
        put(b, s, strlen(s) + (s[0] == 0)); /* "\x00" is one NUL byte */
    }
}

static void test_scanner_matches_pcre2(void **state) {
    (void)state;
    buf cps = {0}, adv = {0};
    every_code_point(&cps);
    adversarial(&adv, 7);
    char *synth;
    size_t synth_len;
    assert_int_equal(jl_synth_text(3, 1 << 20, &synth, &synth_len), JL_OK);
    for (int kind = TOK_SCAN_GPT2; kind <= TOK_SCAN_QWEN2; kind++) {
        assert_same_split(kind, cps.s, cps.n);
        assert_same_split(kind, adv.s, adv.n);
        assert_same_split(kind, synth, synth_len);
        for (size_t cut = 0; cut < 64; cut++) /* endings: whitespace, invalid bytes, a contraction cut short */
            assert_same_split(kind, adv.s + cut * 131, 97 + cut);
    }
    free(cps.s);
    free(adv.s);
    free(synth);
}

/* Encoding with the scanner gives PCRE2's ids, with a trained cl100k-pattern tokenizer. */
static void test_scanner_same_ids(void **state) {
    (void)state;
    char *text;
    size_t len;
    assert_int_equal(jl_synth_text(5, 1 << 19, &text, &len), JL_OK);
    jl_train_opts o = {.vocab_size = 2000};
    jl_tokenizer *t;
    const char *texts[] = {text};
    assert_int_equal(jl_tokenizer_train(texts, &len, 1, &o, &t), JL_OK);
    buf adv = {0};
    adversarial(&adv, 11);
    const char *in[] = {text, adv.s};
    size_t in_len[] = {len, adv.n};
    for (int k = 0; k < 2; k++) {
        int32_t *a, *b;
        size_t na, nb;
        assert_int_equal(jl_tokenizer_set_scanner(t, 1), 1);
        assert_int_equal(jl_tokenizer_encode(t, in[k], in_len[k], 1, &a, &na), JL_OK);
        assert_int_equal(jl_tokenizer_set_scanner(t, 0), 0);
        assert_int_equal(jl_tokenizer_encode(t, in[k], in_len[k], 1, &b, &nb), JL_OK);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na * sizeof *a);
        free(a);
        free(b);
    }
    jl_tokenizer_free(t);
    free(adv.s);
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scanner_matches_pcre2),
        cmocka_unit_test(test_scanner_same_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
