/* A strict JSON scanner for tokenizer.json's large values (see json_scan.h). */
#include "tokenizer/json_scan.h"
#include "tokenizer/pipeline.h"
#include <string.h>

enum { MAX_DEPTH = 64 };

typedef struct {
    const char *s;
    size_t n;
    size_t err_at;
    const char *err;
} scan;

static int fail(scan *c, size_t at, const char *why) {
    if (!c->err) {
        c->err = at >= c->n ? "unexpected end of the text (truncated?)" : why;
        c->err_at = at;
    }
    return -1;
}

void tok_json_ws(const char *s, size_t n, size_t *i) {
    size_t k = *i;
    while (k < n && (s[k] == ' ' || s[k] == '\n' || s[k] == '\r' || s[k] == '\t')) k++;
    *i = k;
}

static int hex4(const char *s, size_t n, size_t at, unsigned *out) {
    if (at + 4 > n) return -1;
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[at + k];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                     : (c | 32) >= 'a' && (c | 32) <= 'f' ? (unsigned)((c | 32) - 'a' + 10)
                                                           : 16u;
        if (d == 16) return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

/* The string at s[*i]; dst NULL: only checked. Sets c's error on failure. */
static long string_at(scan *c, size_t *i, char *dst) {
    const char *s = c->s;
    size_t n = c->n, k = *i + 1, o = 0;
    if (*i >= n || s[*i] != '"') return fail(c, *i, "a string was expected");
    for (;;) {
        size_t run = k; /* the plain bytes up to the next quote, backslash or control character */
        while (run < n && s[run] != '"' && s[run] != '\\' && (unsigned char)s[run] >= 0x20) run++;
        if (dst && run > k) memcpy(dst + o, s + k, run - k);
        o += run - k;
        k = run;
        if (k >= n) return fail(c, k, "unterminated string");
        if (s[k] == '"') break;
        if ((unsigned char)s[k] < 0x20) return fail(c, k, "control character in a string");
        if (k + 1 >= n) return fail(c, k, "unterminated string");
        char e = s[k + 1], out = 0;
        switch (e) {
        case '"': out = '"'; break;
        case '\\': out = '\\'; break;
        case '/': out = '/'; break;
        case 'b': out = '\b'; break;
        case 'f': out = '\f'; break;
        case 'n': out = '\n'; break;
        case 'r': out = '\r'; break;
        case 't': out = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (hex4(s, n, k + 2, &cp)) return fail(c, k, "bad \\u escape");
            k += 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(c, k - 6, "lone surrogate in a \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (k + 1 >= n || s[k] != '\\' || s[k + 1] != 'u' || hex4(s, n, k + 2, &lo) || lo < 0xDC00 ||
                    lo > 0xDFFF)
                    return fail(c, k - 6, "lone surrogate in a \\u escape");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                k += 6;
            }
            char u8[4];
            size_t l = tok_utf8_put(cp, u8);
            if (dst) memcpy(dst + o, u8, l);
            o += l;
            continue;
        }
        default: return fail(c, k, "bad escape in a string");
        }
        if (dst) dst[o] = out;
        o++;
        k += 2;
    }
    if (dst) dst[o] = '\0';
    *i = k + 1;
    return (long)o;
}

static int number_at(scan *c, size_t *i) {
    const char *s = c->s;
    size_t n = c->n, k = *i;
    if (k < n && s[k] == '-') k++;
    if (k < n && s[k] == '0') k++;
    else if (k < n && s[k] >= '1' && s[k] <= '9')
        while (k < n && s[k] >= '0' && s[k] <= '9') k++;
    else return fail(c, *i, "bad number");
    if (k < n && s[k] == '.') {
        size_t d = ++k;
        while (k < n && s[k] >= '0' && s[k] <= '9') k++;
        if (k == d) return fail(c, k, "bad number");
    }
    if (k < n && (s[k] | 32) == 'e') {
        k++;
        if (k < n && (s[k] == '+' || s[k] == '-')) k++;
        size_t d = k;
        while (k < n && s[k] >= '0' && s[k] <= '9') k++;
        if (k == d) return fail(c, k, "bad number");
    }
    *i = k;
    return 0;
}

static int value_at(scan *c, size_t *i, int depth);

/* The object at s[*i]. role 1: the document's root, whose "model" object (role 2) has the vocab and merges spans
 * that d receives (a later duplicate key replaces an earlier one, as json-c keeps the last). */
static int object_at(scan *c, size_t *i, int depth, int role, tok_json_doc *d) {
    const char *s = c->s;
    size_t n = c->n, k = *i + 1;
    if (depth > MAX_DEPTH) return fail(c, *i, "nesting too deep");
    tok_json_ws(s, n, &k);
    if (k < n && s[k] == '}') {
        *i = k + 1;
        return 0;
    }
    for (;;) {
        char key[8];
        size_t key_at = k;
        long kl = string_at(c, &k, NULL);
        if (kl < 0) return -1;
        if (role && kl < (long)sizeof key) { /* the keys looked for are short: only those are unescaped */
            size_t q = key_at;
            string_at(c, &q, key);
        } else kl = -1;
        tok_json_ws(s, n, &k);
        if (k >= n || s[k] != ':') return fail(c, k, "':' was expected");
        k++;
        tok_json_ws(s, n, &k);
        size_t at = k;
        int model = role == 1 && kl == 5 && !memcmp(key, "model", 5);
        if (model) d->vocab_at = d->vocab_end = d->merges_at = d->merges_end = 0;
        if (model && k < n && s[k] == '{') {
            if (object_at(c, &k, depth + 1, 2, d)) return -1;
        } else if (value_at(c, &k, depth + 1)) return -1;
        if (role == 2 && kl == 5 && !memcmp(key, "vocab", 5)) {
            d->vocab_at = s[at] == '{' ? at : 0;
            d->vocab_end = s[at] == '{' ? k : 0;
        } else if (role == 2 && kl == 6 && !memcmp(key, "merges", 6)) {
            d->merges_at = s[at] == '[' ? at : 0;
            d->merges_end = s[at] == '[' ? k : 0;
        }
        tok_json_ws(s, n, &k);
        if (k < n && s[k] == ',') {
            k++;
            tok_json_ws(s, n, &k);
            continue;
        }
        if (k < n && s[k] == '}') break;
        return fail(c, k, "',' or '}' was expected");
    }
    *i = k + 1;
    return 0;
}

static int array_at(scan *c, size_t *i, int depth) {
    const char *s = c->s;
    size_t n = c->n, k = *i + 1;
    if (depth > MAX_DEPTH) return fail(c, *i, "nesting too deep");
    tok_json_ws(s, n, &k);
    if (k < n && s[k] == ']') {
        *i = k + 1;
        return 0;
    }
    for (;;) {
        if (value_at(c, &k, depth + 1)) return -1;
        tok_json_ws(s, n, &k);
        if (k < n && s[k] == ',') {
            k++;
            tok_json_ws(s, n, &k);
            continue;
        }
        if (k < n && s[k] == ']') break;
        return fail(c, k, "',' or ']' was expected");
    }
    *i = k + 1;
    return 0;
}

static int literal_at(scan *c, size_t *i, const char *word) {
    size_t l = strlen(word);
    if (*i + l > c->n || memcmp(c->s + *i, word, l)) return fail(c, *i, "unexpected character");
    *i += l;
    return 0;
}

static int value_at(scan *c, size_t *i, int depth) {
    if (*i >= c->n) return fail(c, *i, "unexpected end of the text (truncated?)");
    switch (c->s[*i]) {
    case '{': return object_at(c, i, depth, 0, NULL);
    case '[': return array_at(c, i, depth);
    case '"': return string_at(c, i, NULL) < 0 ? -1 : 0;
    case 't': return literal_at(c, i, "true");
    case 'f': return literal_at(c, i, "false");
    case 'n': return literal_at(c, i, "null");
    default: return number_at(c, i);
    }
}

int tok_json_locate(const char *s, size_t n, tok_json_doc *d) {
    memset(d, 0, sizeof *d);
    scan c = {s, n, 0, NULL};
    size_t i = 0;
    tok_json_ws(s, n, &i);
    int rc = i < n && s[i] == '{' ? object_at(&c, &i, 1, 1, d) : value_at(&c, &i, 1);
    if (rc == 0) {
        tok_json_ws(s, n, &i);
        if (i < n) rc = fail(&c, i, "text after the JSON value");
    }
    if (rc) {
        d->err = c.err;
        d->err_at = c.err_at;
        return -1;
    }
    return 0;
}

long tok_json_string(const char *s, size_t n, size_t *i, char *dst) {
    scan c = {s, n, 0, NULL};
    return string_at(&c, i, dst);
}

int tok_json_skip(const char *s, size_t n, size_t *i) {
    scan c = {s, n, 0, NULL};
    return value_at(&c, i, 1);
}
