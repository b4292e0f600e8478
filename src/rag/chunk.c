/* Passages from text (paragraphs, then windows with overlap) and the "jlhan" tokenisation shared by the FTS5
 * tokenizer and query building. */
#include "core/utf8.h"
#include "jielong/rag.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
    jl_chunk *items;
    size_t n, cap;
} chunk_list;

static int push_chunk(chunk_list *l, size_t start, size_t end) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        jl_chunk *p = realloc(l->items, sizeof *p * cap);
        if (!p) return 0;
        l->items = p;
        l->cap = cap;
    }
    l->items[l->n++] = (jl_chunk){start, end};
    return 1;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* [*s, *e) without surrounding ASCII white space or U+3000. */
static void trim(const char *t, size_t *s, size_t *e) {
    for (;;) {
        if (*s < *e && is_space(t[*s])) (*s)++;
        else if (*e - *s >= 3 && !memcmp(t + *s, "\xe3\x80\x80", 3)) *s += 3;
        else break;
    }
    for (;;) {
        if (*e > *s && is_space(t[*e - 1])) (*e)--;
        else if (*e - *s >= 3 && !memcmp(t + *e - 3, "\xe3\x80\x80", 3)) *e -= 3;
        else break;
    }
}

/* Byte offsets of each character start in [s, e) into starts (n + 1 entries, the last = e). */
static size_t *char_starts(const char *t, size_t s, size_t e, size_t *n) {
    size_t *starts = malloc(sizeof *starts * (e - s + 1)), k = 0;
    if (!starts) return NULL;
    for (size_t i = s; i < e;) {
        uint32_t cp;
        starts[k++] = i;
        i += jl_utf8_decode(t + i, e - i, &cp);
    }
    starts[k] = e;
    *n = k;
    return starts;
}

static int sentence_end(const char *t, size_t at, size_t next) {
    size_t len = next - at;
    if (len == 1) return t[at] == '.' || t[at] == '!' || t[at] == '?' || t[at] == ';' || t[at] == '\n';
    return len == 3 && (!memcmp(t + at, "。", 3) || !memcmp(t + at, "！", 3) || !memcmp(t + at, "？", 3) ||
                        !memcmp(t + at, "；", 3));
}

/* A paragraph [s, e) into windows of `size` characters sharing `overlap`. */
static int split_paragraph(const char *t, size_t s, size_t e, int size, int overlap, chunk_list *l) {
    size_t n, *st = char_starts(t, s, e, &n);
    if (!st) return 0;
    int ok = 1;
    for (size_t a = 0; ok && a < n;) {
        size_t b = a + (size_t)size;
        if (b >= n) {
            b = n;
        } else { /* prefer a sentence end in the window's last fifth */
            size_t lo = b - (size_t)size / 5;
            for (size_t c = b; c > lo && c > a + 1; c--)
                if (sentence_end(t, st[c - 1], st[c])) {
                    b = c;
                    break;
                }
        }
        size_t cs = st[a], ce = st[b];
        trim(t, &cs, &ce);
        if (ce > cs) ok = push_chunk(l, cs, ce);
        if (b == n) break;
        size_t next = b > (size_t)overlap ? b - (size_t)overlap : 0;
        a = next > a ? next : a + 1;
    }
    free(st);
    return ok;
}

/* A line that is blank (white space only). */
static int blank_line(const char *t, size_t s, size_t e) {
    size_t a = s, b = e;
    trim(t, &a, &b);
    return a == b;
}

static int heading_line(const char *t, size_t s, size_t e) {
    while (s < e && (t[s] == ' ' || t[s] == '\t')) s++;
    size_t h = 0;
    while (s + h < e && t[s + h] == '#') h++;
    return h >= 1 && h <= 6 && (s + h == e || t[s + h] == ' ');
}

jl_status jl_chunk_text(const char *text, size_t len, int chunk_chars, int overlap, jl_chunk **out, size_t *n) {
    *out = NULL;
    *n = 0;
    if (chunk_chars < 16 || overlap < 0 || overlap >= chunk_chars / 2)
        return jl_fail(JL_ERR_ARG, "chunk size %d / overlap %d: need chunk >= 16 and 0 <= overlap < chunk/2",
                       chunk_chars, overlap);
    chunk_list l = {0};
    size_t para = (size_t)-1; /* start of the open paragraph */
    int ok = 1;
    for (size_t i = 0; ok && i <= len;) {
        size_t eol = i;
        while (eol < len && text[eol] != '\n') eol++;
        int at_end = i == len, blank = at_end || blank_line(text, i, eol), head = !blank && heading_line(text, i, eol);
        if (para != (size_t)-1 && (blank || head)) {
            size_t s = para, e = i;
            trim(text, &s, &e);
            if (e > s) ok = split_paragraph(text, s, e, chunk_chars, overlap, &l);
            para = (size_t)-1;
        }
        if (!blank && para == (size_t)-1) para = i;
        if (at_end) break;
        i = eol < len ? eol + 1 : len;
    }
    if (!ok) {
        free(l.items);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    *out = l.items;
    *n = l.n;
    return JL_OK;
}

/* Letters and digits outside the Han range that make words: ASCII alphanumerics and every code point from
 * U+00C0 up except general punctuation, CJK symbols, full-width punctuation and other symbols. */
static int word_char(uint32_t cp) {
    if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
    if (cp == JL_UTF8_INVALID || cp < 0xC0 || cp == 0xD7 || cp == 0xF7) return 0;
    if (cp >= 0x2000 && cp <= 0x2BFF) return 0;               /* punctuation, symbols, arrows, shapes */
    if (cp >= 0x3000 && cp <= 0x303F) return 0;               /* CJK symbols and punctuation */
    if (cp >= 0xFE30 && cp <= 0xFE4F) return 0;               /* CJK compatibility forms */
    if (cp >= 0xFF00 && cp <= 0xFFEF)                         /* full-width forms: letters and digits only */
        return (cp >= 0xFF10 && cp <= 0xFF19) || (cp >= 0xFF21 && cp <= 0xFF3A) || (cp >= 0xFF41 && cp <= 0xFF5A);
    if (cp >= 0x1F000) return 0;                              /* emoji and pictographs */
    return 1;
}

void jl_rag_tokenize(const char *text, size_t len, int (*cb)(void *user, const jl_rag_token *t), void *user) {
    int prev_han_end = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = jl_utf8_decode(text + i, len - i, &cp);
        if (jl_is_han(cp)) {
            jl_rag_token t = {i, i + n, 1, prev_han_end};
            if (cb(user, &t)) return;
            prev_han_end = 1;
            i += n;
        } else if (word_char(cp)) {
            size_t s = i;
            while (i < len) {
                size_t m = jl_utf8_decode(text + i, len - i, &cp);
                if (jl_is_han(cp) || !word_char(cp)) break;
                i += m;
            }
            jl_rag_token t = {s, i, 0, 0};
            if (cb(user, &t)) return;
            prev_han_end = 0;
        } else {
            prev_han_end = 0;
            i += n;
        }
    }
}
