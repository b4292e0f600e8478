/* Jinja lexer: the preprocessing Hugging Face applies (trailing newline, lstrip_blocks, trim_blocks), then text,
 * {{ }}, {% %} and {# #} with the '-' whitespace control, and the tokens inside tags. */
#include "template/jinja.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Noreturn void jj_raise(jj_fail *f, int line, int col, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof f->msg, fmt, ap);
    va_end(ap);
    f->line = line;
    f->col = col;
    longjmp(f->jmp, 1);
}

/* ---------------------------------------------------------------- arena */

struct jj_chunk {
    jj_chunk *next;
    size_t size, used;
    max_align_t data[];
};

void jj_arena_init(jj_arena *a, size_t limit) {
    memset(a, 0, sizeof *a);
    a->limit = limit;
}

void jj_arena_free(jj_arena *a) {
    for (jj_chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    a->head = NULL;
    a->used = 0;
}

void *jj_alloc(jj_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (n > a->limit || a->used > a->limit - n) return NULL;
    jj_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = n > 65536 ? n : 65536;
        c = malloc(sizeof *c + size);
        if (!c) return NULL;
        c->size = size;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    a->used += n;
    return p;
}

/* ---------------------------------------------------------------- whitespace (JavaScript's \s) */

/* Bytes of the whitespace character at s (JavaScript's \s: ASCII space, tab, newlines, and the Unicode spaces),
 * or 0. */
static size_t space_at(const char *s, size_t n) {
    unsigned char c = (unsigned char)s[0];
    if (c == ' ' || (c >= '\t' && c <= '\r')) return 1;
    if (c < 0xC2 || n < 2) return 0;
    unsigned char c1 = (unsigned char)s[1];
    if (c == 0xC2) return c1 == 0xA0 ? 2 : 0;
    if (n < 3) return 0;
    unsigned char c2 = (unsigned char)s[2];
    if (c == 0xE1) return c1 == 0x9A && c2 == 0x80 ? 3 : 0;                       /* U+1680 */
    if (c == 0xE2 && c1 == 0x80) return (c2 <= 0x8A || c2 == 0xA8 || c2 == 0xA9 || c2 == 0xAF) ? 3 : 0;
    if (c == 0xE2 && c1 == 0x81) return c2 == 0x9F ? 3 : 0;                       /* U+205F */
    if (c == 0xE3) return c1 == 0x80 && c2 == 0x80 ? 3 : 0;                       /* U+3000 */
    if (c == 0xEF) return c1 == 0xBB && c2 == 0xBF ? 3 : 0;                       /* U+FEFF */
    return 0;
}

size_t jj_space_at(const char *s, size_t n) { return n ? space_at(s, n) : 0; }

/* Bytes of whitespace ending at s+n (the last character only). */
size_t jj_space_before(const char *s, size_t n) {
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        size_t m = space_at(s + n - k, k);
        if (m == k) return k;
    }
    return 0;
}

/* ---------------------------------------------------------------- preprocessing */

typedef struct {
    char *text;
    uint32_t *orig; /* byte offset in the original text of each byte */
    size_t len;
} pre_text;

static int block_open(const char *s, size_t n) { return n >= 2 && s[0] == '{' && (s[1] == '#' || s[1] == '%' || s[1] == '-'); }

/* Drops one trailing newline; lstrip_blocks: spaces/tabs from a line start to a "{%", "{#" (or "{-"); then
 * trim_blocks: the newline right after "%}", "#}" or "-}". */
static int preprocess(jj_arena *a, const char *src, size_t n, pre_text *p) {
    if (n && src[n - 1] == '\n') n--;
    char *t1 = jj_alloc(a, n + 1), *t2 = jj_alloc(a, n + 1);
    uint32_t *o1 = jj_alloc(a, (n + 1) * sizeof *o1), *o2 = jj_alloc(a, (n + 1) * sizeof *o2);
    if (!t1 || !t2 || !o1 || !o2) return 0;
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        if (i == 0 || src[i - 1] == '\n' || src[i - 1] == '\r') {
            size_t j = i;
            while (j < n && (src[j] == ' ' || src[j] == '\t')) j++;
            if (j > i && block_open(src + j, n - j)) i = j;
        }
        o1[m] = (uint32_t)i;
        t1[m++] = src[i++];
    }
    size_t k = 0;
    for (size_t i = 0; i < m; i++) {
        if (t1[i] == '\n' && i >= 2 && t1[i - 1] == '}' && (t1[i - 2] == '#' || t1[i - 2] == '%' || t1[i - 2] == '-'))
            continue;
        o2[k] = o1[i];
        t2[k++] = t1[i];
    }
    t2[k] = '\0';
    o2[k] = (uint32_t)n;
    p->text = t2;
    p->orig = o2;
    p->len = k;
    return 1;
}

/* ---------------------------------------------------------------- lexer */

typedef struct {
    jj_arena *a;
    jj_fail *f;
    const char *src; /* original text (for line/column) */
    pre_text p;
    size_t pos;
    jj_tok *toks;
    int n, cap;
    size_t line_pos; /* original offset where (line, col) was last computed */
    int line, col;
} lexer;

static void where(lexer *L, size_t at, int *line, int *col) {
    size_t target = L->p.orig[at < L->p.len ? at : L->p.len];
    if (target < L->line_pos) { /* restart (never needed: offsets grow) */
        L->line_pos = 0;
        L->line = 1;
        L->col = 1;
    }
    for (; L->line_pos < target; L->line_pos++) {
        if (L->src[L->line_pos] == '\n') {
            L->line++;
            L->col = 1;
        } else if (((unsigned char)L->src[L->line_pos] & 0xC0) != 0x80) {
            L->col++;
        }
    }
    *line = L->line;
    *col = L->col;
}

static _Noreturn void lex_error(lexer *L, size_t at, const char *msg) {
    int line, col;
    where(L, at, &line, &col);
    jj_raise(L->f, line, col, "%s", msg);
}

static jj_tok *push(lexer *L, jj_tok_type t, size_t at, const char *s, size_t len) {
    if (L->n == L->cap) {
        int cap = L->cap ? 2 * L->cap : 256;
        jj_tok *g = jj_alloc(L->a, sizeof *g * (size_t)cap);
        if (!g) lex_error(L, at, "template too large");
        if (L->n) memcpy(g, L->toks, sizeof *g * (size_t)L->n);
        L->toks = g;
        L->cap = cap;
    }
    jj_tok *k = &L->toks[L->n++];
    memset(k, 0, sizeof *k);
    k->t = t;
    k->s = (jj_str){s, len};
    where(L, at, &k->line, &k->col);
    return k;
}

/* {%- {{- {#-: the text token just before loses its trailing whitespace (and goes if it becomes empty). */
static void strip_previous_text(lexer *L) {
    if (L->n == 0 || L->toks[L->n - 1].t != TK_TEXT) return;
    jj_tok *k = &L->toks[L->n - 1];
    size_t m;
    while (k->s.len && (m = jj_space_before(k->s.p, k->s.len)) > 0) k->s.len -= m;
    if (k->s.len == 0) L->n--;
}

static void skip_space(lexer *L) {
    size_t m;
    while (L->pos < L->p.len && (m = space_at(L->p.text + L->pos, L->p.len - L->pos)) > 0) L->pos += m;
}

static int at(lexer *L, const char *s) {
    size_t n = strlen(s);
    return L->p.len - L->pos >= n && memcmp(L->p.text + L->pos, s, n) == 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static size_t put_utf8(char *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

/* A quoted string with the escapes \n \t \r \b \f \v \' \" \\ \xHH \uHHHH. */
static void lex_string(lexer *L) {
    size_t start = L->pos;
    char quote = L->p.text[L->pos++];
    char *out = jj_alloc(L->a, L->p.len - L->pos + 1);
    if (!out) lex_error(L, start, "template too large");
    size_t n = 0;
    for (;;) {
        if (L->pos >= L->p.len) lex_error(L, start, "unterminated string");
        char c = L->p.text[L->pos++];
        if (c == quote) break;
        if (c != '\\') {
            out[n++] = c;
            continue;
        }
        if (L->pos >= L->p.len) lex_error(L, start, "unterminated string");
        char e = L->p.text[L->pos++];
        const char *simple = strchr("ntrbfv'\"\\", e);
        if (e && simple) {
            static const char map[] = "\n\t\r\b\f\v'\"\\";
            out[n++] = map[simple - "ntrbfv'\"\\"];
        } else if (e == 'x' || e == 'u') {
            int digits = e == 'x' ? 2 : 4;
            uint32_t cp = 0;
            for (int k = 0; k < digits; k++) {
                int h = L->pos < L->p.len ? hexval(L->p.text[L->pos]) : -1;
                if (h < 0) lex_error(L, L->pos, "bad hexadecimal escape in string");
                cp = cp * 16 + (uint32_t)h;
                L->pos++;
            }
            if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD; /* a lone surrogate half: the replacement character */
            n += put_utf8(out + n, cp);
        } else {
            lex_error(L, L->pos - 1, "unknown escape in string");
        }
    }
    out[n] = '\0';
    push(L, TK_STR, start, out, n);
}

static void lex_number(lexer *L) {
    size_t start = L->pos;
    while (L->pos < L->p.len && L->p.text[L->pos] >= '0' && L->p.text[L->pos] <= '9') L->pos++;
    int is_float = 0;
    int after_dot = L->n > 0 && L->toks[L->n - 1].t == TK_OP && jj_str_eq(L->toks[L->n - 1].s, ".");
    if (!after_dot && L->pos + 1 < L->p.len && L->p.text[L->pos] == '.' && L->p.text[L->pos + 1] >= '0' &&
        L->p.text[L->pos + 1] <= '9') {
        is_float = 1;
        L->pos++;
        while (L->pos < L->p.len && L->p.text[L->pos] >= '0' && L->p.text[L->pos] <= '9') L->pos++;
    }
    size_t len = L->pos - start;
    char buf[64];
    if (len >= sizeof buf) lex_error(L, start, "number too long");
    memcpy(buf, L->p.text + start, len);
    buf[len] = '\0';
    jj_tok *k = push(L, is_float ? TK_FLOAT : TK_INT, start, L->p.text + start, len);
    if (is_float) {
        k->f = strtod(buf, NULL);
    } else {
        if (len > 18) lex_error(L, start, "integer too large");
        k->i = strtoll(buf, NULL, 10);
    }
}

static int is_word(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }

/* Tokens inside {% %} or {{ }} up to the closing tag. */
static void lex_tag(lexer *L, int is_stmt) {
    int braces = 0;
    for (;;) {
        skip_space(L);
        if (L->pos >= L->p.len) lex_error(L, L->pos, is_stmt ? "unclosed {% tag" : "unclosed {{ tag");
        size_t start = L->pos;
        if (at(L, "-%}") || at(L, "-}}")) {
            int stmt = L->p.text[L->pos + 1] == '%';
            push(L, stmt ? TK_CLOSE_STMT : TK_CLOSE_EXPR, start, L->p.text + start, 3);
            L->pos += 3;
            skip_space(L);
            return;
        }
        if (at(L, "%}") || (at(L, "}}") && braces <= 0)) {
            push(L, L->p.text[L->pos] == '%' ? TK_CLOSE_STMT : TK_CLOSE_EXPR, start, L->p.text + start, 2);
            L->pos += 2;
            return;
        }
        char c = L->p.text[L->pos];
        if (c == '\'' || c == '"') {
            lex_string(L);
        } else if (c >= '0' && c <= '9') {
            lex_number(L);
        } else if (is_word(c)) {
            while (L->pos < L->p.len && is_word(L->p.text[L->pos])) L->pos++;
            push(L, TK_NAME, start, L->p.text + start, L->pos - start);
        } else {
            static const char *const two[] = {"**", "//", "==", "!=", "<=", ">="};
            size_t len = 0;
            for (size_t k = 0; k < sizeof two / sizeof *two && !len; k++)
                if (at(L, two[k])) len = 2;
            if (!len && strchr("()[]{},.:|<>+-~*/%=", c) && c) len = 1;
            if (!len) lex_error(L, start, "unexpected character in a tag");
            if (c == '{') braces++;
            if (c == '}') braces--;
            push(L, TK_OP, start, L->p.text + start, len);
            L->pos += len;
        }
    }
}

static void lex_comment(lexer *L) {
    size_t start = L->pos;
    L->pos += 2;
    int strip_before = L->pos < L->p.len && L->p.text[L->pos] == '-';
    const char *end = NULL;
    for (size_t i = L->pos + strip_before; i + 1 < L->p.len; i++)
        if (L->p.text[i] == '#' && L->p.text[i + 1] == '}') {
            end = L->p.text + i;
            break;
        }
    if (!end) lex_error(L, start, "unclosed comment");
    int strip_after = end > L->p.text + L->pos + strip_before && end[-1] == '-';
    if (strip_before) strip_previous_text(L);
    L->pos = (size_t)(end - L->p.text) + 2;
    if (strip_after) skip_space(L);
}

jj_tok *jj_lex(jj_arena *a, jj_fail *f, const char *text, size_t len, int *n_toks) {
    lexer L = {.a = a, .f = f, .src = text, .line = 1, .col = 1};
    if (len > UINT32_MAX / 2) jj_raise(f, 1, 1, "template too large");
    if (!preprocess(a, text, len, &L.p)) jj_raise(f, 1, 1, "template too large");
    while (L.pos < L.p.len) {
        size_t start = L.pos;
        while (L.pos < L.p.len && !(L.p.text[L.pos] == '{' && L.pos + 1 < L.p.len &&
                                    strchr("{%#", L.p.text[L.pos + 1]) && L.p.text[L.pos + 1]))
            L.pos++;
        if (L.pos > start) push(&L, TK_TEXT, start, L.p.text + start, L.pos - start);
        if (L.pos >= L.p.len) break;
        if (L.p.text[L.pos + 1] == '#') {
            lex_comment(&L);
            continue;
        }
        int is_stmt = L.p.text[L.pos + 1] == '%';
        int strip = L.pos + 2 < L.p.len && L.p.text[L.pos + 2] == '-';
        if (strip) strip_previous_text(&L);
        push(&L, is_stmt ? TK_OPEN_STMT : TK_OPEN_EXPR, L.pos, L.p.text + L.pos, 2);
        L.pos += 2 + (size_t)strip;
        lex_tag(&L, is_stmt);
    }
    push(&L, TK_EOF, L.p.len, L.p.text + L.p.len, 0);
    *n_toks = L.n;
    return L.toks;
}

int jj_str_eq(jj_str s, const char *lit) {
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.p, lit, n) == 0;
}
