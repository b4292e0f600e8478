#include "data/text.h"
#include <stdlib.h>
#include <string.h>

static int reserve(jl_text *t, size_t extra) {
    if (t->failed) return 0;
    if (t->len + extra + 1 <= t->cap) return 1;
    size_t cap = t->cap ? t->cap : 128;
    while (cap < t->len + extra + 1) cap *= 2;
    char *p = realloc(t->s, cap);
    if (!p) {
        t->failed = 1;
        return 0;
    }
    t->s = p;
    t->cap = cap;
    return 1;
}

void jl_text_append(jl_text *t, const char *s, size_t len) {
    if (!reserve(t, len)) return;
    memcpy(t->s + t->len, s, len);
    t->len += len;
    t->s[t->len] = '\0';
}

void jl_text_puts(jl_text *t, const char *s) { jl_text_append(t, s, strlen(s)); }

void jl_text_fill(jl_text *t, const char *tmpl, const char *const vars[26]) {
    for (const char *p = tmpl; *p;) {
        if (p[0] == '{' && p[1] >= 'A' && p[1] <= 'Z' && p[2] == '}') {
            const char *v = vars[p[1] - 'A'];
            if (v) jl_text_puts(t, v);
            p += 3;
            continue;
        }
        const char *next = strchr(p + 1, '{');
        size_t n = next ? (size_t)(next - p) : strlen(p);
        jl_text_append(t, p, n);
        p += n;
    }
}

const char *jl_text_str(jl_text *t) {
    if (t->failed) return NULL;
    if (!t->s && !reserve(t, 0)) return NULL;
    t->s[t->len] = '\0';
    return t->s;
}

void jl_text_clear(jl_text *t) {
    t->len = 0;
    if (t->s) t->s[0] = '\0';
}

void jl_text_free(jl_text *t) {
    free(t->s);
    memset(t, 0, sizeof *t);
}
