/* Builtins of the Jinja subset: filters, tests, global functions (range, namespace, raise_exception, dict,
 * strftime_now) and the methods of strings, lists and dicts that chat templates call. Python semantics where
 * the template language takes them from Python (strip(chars), split, slicing); case mapping is ASCII only. */
#include "template/jinja.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Noreturn void bad(jj_eval *e, const jj_node *at, const char *fmt, jj_str name) {
    char nm[64];
    snprintf(nm, sizeof nm, "%.*s", (int)(name.len > 40 ? 40 : name.len), name.p);
    jj_raise(e->fail, at ? at->line : e->line, at ? at->col : e->col, fmt, nm);
}

static jv arg(const jj_args *a, int pos, const char *kw) {
    for (int k = 0; kw && k < a->n_kw; k++)
        if (jj_str_eq(a->kw_names[k], kw)) return a->kw_vals[k];
    return pos >= 0 && pos < a->n ? a->args[pos] : jv_undef();
}

static int given(const jv *v) { return v->t != JV_UNDEF; }

static int truthy_arg(const jj_args *a, int pos, const char *kw) {
    jv v = arg(a, pos, kw);
    return jv_truthy(&v);
}

static jj_str need_str(jj_eval *e, const jj_node *at, jv v, const char *what) {
    if (v.t != JV_STR) bad(e, at, "%s must be a string", (jj_str){what, strlen(what)});
    return v.u.s;
}

static jv str_of(jj_eval *e, jj_buf *b) {
    (void)e;
    jj_str s = jj_buf_str(b);
    return jv_str_ref(s.p, s.len);
}

static size_t char_len(const char *p, size_t n, size_t i) {
    unsigned char c = (unsigned char)p[i];
    size_t m = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return i + m > n ? n - i : m;
}

static size_t n_chars(jj_str s) {
    size_t n = 0;
    for (size_t i = 0; i < s.len; i += char_len(s.p, s.len, i)) n++;
    return n;
}

/* ---------------------------------------------------------------- string helpers */

/* Is the character at s[i..i+m) one of `chars` (NULL: whitespace)? */
static int strip_char(jj_str s, size_t i, size_t m, const jj_str *chars) {
    if (!chars) return jj_space_at(s.p + i, s.len - i) == m;
    for (size_t k = 0; k < chars->len;) {
        size_t cm = char_len(chars->p, chars->len, k);
        if (cm == m && memcmp(chars->p + k, s.p + i, m) == 0) return 1;
        k += cm;
    }
    return 0;
}

static jj_str strip(jj_str s, const jj_str *chars, int left, int right) {
    size_t a = 0, b = s.len;
    while (left && a < b) {
        size_t m = char_len(s.p, s.len, a);
        if (!strip_char(s, a, m, chars)) break;
        a += m;
    }
    while (right && b > a) {
        size_t m = 1;
        while (m < 4 && b - m > a && ((unsigned char)s.p[b - m] & 0xC0) == 0x80) m++;
        if (!strip_char(s, b - m, m, chars)) break;
        b -= m;
    }
    return (jj_str){s.p + a, b - a};
}

static jv strip_call(jj_eval *e, const jj_node *at, jj_str s, jv chars, int left, int right) {
    if (chars.t == JV_UNDEF || chars.t == JV_NONE) {
        jj_str r = strip(s, NULL, left, right);
        return jv_str_ref(r.p, r.len);
    }
    jj_str c = need_str(e, at, chars, "the characters to strip");
    jj_str r = strip(s, &c, left, right);
    return jv_str_ref(r.p, r.len);
}

enum { CASE_UPPER, CASE_LOWER, CASE_TITLE, CASE_CAPITALIZE };

static jv change_case(jj_eval *e, jj_str s, int mode) {
    jv out = jv_str(e, s.p, s.len);
    char *p = (char *)out.u.s.p;
    int prev_letter = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = p[i];
        int letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        int up = mode == CASE_UPPER || (mode == CASE_TITLE && !prev_letter) || (mode == CASE_CAPITALIZE && i == 0);
        if (letter) p[i] = up ? (char)(c & ~0x20) : (char)(c | 0x20);
        /* Python's title(): a letter after a non-letter starts a word (non-ASCII bytes count as letters) */
        prev_letter = letter || ((unsigned char)c >= 0x80);
    }
    return out;
}

static jv replace(jj_eval *e, const jj_node *at, jj_str s, jv from, jv to, jv count) {
    jj_str f = need_str(e, at, from, "replace()'s first argument");
    jj_str t = need_str(e, at, to, "replace()'s second argument");
    int64_t max = count.t == JV_INT ? count.u.i : -1;
    jj_buf b = {0};
    size_t i = 0;
    int64_t done = 0;
    if (f.len == 0) { /* Python: inserts between characters */
        while (max < 0 || done < max) {
            jj_buf_put(e, &b, t.p, t.len);
            done++;
            if (i >= s.len) break;
            size_t m = char_len(s.p, s.len, i);
            jj_buf_put(e, &b, s.p + i, m);
            i += m;
            if (b.len > e->out_limit) jj_raise(e->fail, e->line, e->col, "string too long");
        }
        jj_buf_put(e, &b, s.p + i, s.len - i);
        return str_of(e, &b);
    }
    while (i < s.len && (max < 0 || done < max)) {
        const char *hit = memmem(s.p + i, s.len - i, f.p, f.len);
        if (!hit) break;
        jj_buf_put(e, &b, s.p + i, (size_t)(hit - (s.p + i)));
        jj_buf_put(e, &b, t.p, t.len);
        if (b.len > e->out_limit) jj_raise(e->fail, e->line, e->col, "string too long");
        i = (size_t)(hit - s.p) + f.len;
        done++;
    }
    jj_buf_put(e, &b, s.p + i, s.len - i);
    return str_of(e, &b);
}

/* Python's str.split(sep=None, maxsplit=-1). */
static jv split(jj_eval *e, const jj_node *at, jj_str s, jv sep, jv maxsplit) {
    int64_t max = maxsplit.t == JV_INT ? maxsplit.u.i : -1;
    jv out = jv_new_list(e, 0);
    if (sep.t == JV_UNDEF || sep.t == JV_NONE) {
        size_t i = 0;
        for (;;) {
            size_t m;
            while (i < s.len && (m = jj_space_at(s.p + i, s.len - i)) > 0) i += m;
            if (i >= s.len) break;
            if (max >= 0 && (int64_t)out.u.l->n >= max) {
                jj_str rest = strip((jj_str){s.p + i, s.len - i}, NULL, 0, 1);
                jv_list_push(e, out.u.l, jv_str_ref(rest.p, rest.len));
                break;
            }
            size_t j = i;
            while (j < s.len && jj_space_at(s.p + j, s.len - j) == 0) j += char_len(s.p, s.len, j);
            jv_list_push(e, out.u.l, jv_str_ref(s.p + i, j - i));
            i = j;
        }
        return out;
    }
    jj_str d = need_str(e, at, sep, "split()'s separator");
    if (d.len == 0) jj_raise(e->fail, at->line, at->col, "split(): empty separator");
    size_t i = 0;
    for (;;) {
        jj_step(e, at);
        const char *hit = (max < 0 || (int64_t)out.u.l->n < max) ? memmem(s.p + i, s.len - i, d.p, d.len) : NULL;
        if (!hit) {
            jv_list_push(e, out.u.l, jv_str_ref(s.p + i, s.len - i));
            return out;
        }
        jv_list_push(e, out.u.l, jv_str_ref(s.p + i, (size_t)(hit - (s.p + i))));
        i = (size_t)(hit - s.p) + d.len;
    }
}

static int starts_or_ends(jj_eval *e, const jj_node *at, jj_str s, jv what, int ends) {
    if (what.t == JV_LIST) {
        for (size_t i = 0; i < what.u.l->n; i++)
            if (starts_or_ends(e, at, s, what.u.l->items[i], ends)) return 1;
        return 0;
    }
    jj_str p = need_str(e, at, what, ends ? "endswith()'s argument" : "startswith()'s argument");
    if (p.len > s.len) return 0;
    return memcmp(ends ? s.p + s.len - p.len : s.p, p.p, p.len) == 0;
}

static jv join(jj_eval *e, const jj_node *at, jv items, jv sep, jv attribute) {
    jj_str d = sep.t == JV_STR ? sep.u.s : (jj_str){"", 0};
    if (items.t == JV_STR) return items;
    if (items.t == JV_UNDEF) return jv_str_ref("", 0);
    if (items.t != JV_LIST) jj_raise(e->fail, at->line, at->col, "join needs a list, not a %s", jv_type_name(items.t));
    jj_buf b = {0};
    for (size_t i = 0; i < items.u.l->n; i++) {
        jv v = items.u.l->items[i];
        if (attribute.t == JV_STR && (v.t == JV_DICT || v.t == JV_NS)) {
            jv *x = jv_dict_get(v.u.d, attribute.u.s.p, attribute.u.s.len);
            v = x ? *x : jv_undef();
        }
        if (i) jj_buf_put(e, &b, d.p, d.len);
        jj_str t = jv_to_text(e, &v);
        jj_buf_put(e, &b, t.p, t.len);
        if (b.len > e->out_limit) jj_raise(e->fail, at->line, at->col, "string too long");
    }
    return str_of(e, &b);
}

/* ---------------------------------------------------------------- sorting (stable; strings case-insensitive) */

static int cmp_values(const jv *a, const jv *b, int case_sensitive) {
    if (a->t == JV_STR && b->t == JV_STR) {
        size_t n = a->u.s.len < b->u.s.len ? a->u.s.len : b->u.s.len;
        for (size_t i = 0; i < n; i++) {
            unsigned char x = (unsigned char)a->u.s.p[i], y = (unsigned char)b->u.s.p[i];
            if (!case_sensitive && x >= 'A' && x <= 'Z') x |= 0x20;
            if (!case_sensitive && y >= 'A' && y <= 'Z') y |= 0x20;
            if (x != y) return x < y ? -1 : 1;
        }
        return (a->u.s.len > b->u.s.len) - (a->u.s.len < b->u.s.len);
    }
    int an = a->t == JV_INT || a->t == JV_FLOAT || a->t == JV_BOOL, bn = b->t == JV_INT || b->t == JV_FLOAT || b->t == JV_BOOL;
    if (an && bn) {
        double x = a->t == JV_INT ? (double)a->u.i : a->t == JV_FLOAT ? a->u.f : a->u.b;
        double y = b->t == JV_INT ? (double)b->u.i : b->t == JV_FLOAT ? b->u.f : b->u.b;
        return (x > y) - (x < y);
    }
    return (int)a->t - (int)b->t;
}

static jv key_of(const jv *v, jv attribute) {
    if (attribute.t != JV_STR || (v->t != JV_DICT && v->t != JV_NS)) return *v;
    jv *x = jv_dict_get(v->u.d, attribute.u.s.p, attribute.u.s.len);
    return x ? *x : jv_undef();
}

static jv sorted(jj_eval *e, const jj_node *at, jv items, int reverse, int case_sensitive, jv attribute) {
    if (items.t != JV_LIST) jj_raise(e->fail, at->line, at->col, "sort needs a list, not a %s", jv_type_name(items.t));
    size_t n = items.u.l->n;
    jv out = jv_new_list(e, n);
    for (size_t i = 0; i < n; i++) {
        jv v = items.u.l->items[i];
        size_t j = out.u.l->n;
        jv kv = key_of(&v, attribute);
        while (j > 0) {
            jv kj = key_of(&out.u.l->items[j - 1], attribute);
            int c = cmp_values(&kj, &kv, case_sensitive);
            if (reverse ? c >= 0 : c <= 0) break;
            j--;
            jj_step(e, at);
        }
        jv_list_push(e, out.u.l, v);
        memmove(&out.u.l->items[j + 1], &out.u.l->items[j], sizeof(jv) * (out.u.l->n - 1 - j));
        out.u.l->items[j] = v;
    }
    return out;
}

/* ---------------------------------------------------------------- tests */

static int is_num(const jv *v) { return v->t == JV_INT || v->t == JV_FLOAT; }

int jj_test(jj_eval *e, const jj_node *at, jj_str name, const jv *v, const jj_args *a) {
    jv x = arg(a, 0, NULL);
#define T(s) jj_str_eq(name, s)
    if (T("defined")) return v->t != JV_UNDEF;
    if (T("undefined")) return v->t == JV_UNDEF;
    if (T("none")) return v->t == JV_NONE;
    if (T("string")) return v->t == JV_STR;
    if (T("number")) return is_num(v);
    if (T("integer")) return v->t == JV_INT;
    if (T("float")) return v->t == JV_FLOAT;
    if (T("boolean")) return v->t == JV_BOOL;
    if (T("true")) return v->t == JV_BOOL && v->u.b;
    if (T("false")) return v->t == JV_BOOL && !v->u.b;
    if (T("mapping")) return v->t == JV_DICT;
    if (T("iterable")) return v->t == JV_LIST || v->t == JV_STR || v->t == JV_DICT;
    if (T("sequence")) return v->t == JV_LIST || v->t == JV_STR || v->t == JV_DICT;
    if (T("callable")) return v->t == JV_MACRO || v->t == JV_FUNC;
    if (T("odd") || T("even")) {
        if (v->t != JV_INT) bad(e, at, "the test '%s' needs an integer", name);
        return (int)(v->u.i & 1) == (T("odd") ? 1 : 0);
    }
    if (T("divisibleby")) {
        if (v->t != JV_INT || x.t != JV_INT || x.u.i == 0) bad(e, at, "the test '%s' needs non-zero integers", name);
        return v->u.i % x.u.i == 0;
    }
    if (T("eq") || T("equalto") || T("==")) return jv_equal(v, &x);
    if (T("ne") || T("!=")) return !jv_equal(v, &x);
    if (T("sameas")) return jv_equal(v, &x) && v->t == x.t;
    if (T("lt") || T("gt") || T("le") || T("ge")) {
        int c = cmp_values(v, &x, 1);
        return T("lt") ? c < 0 : T("gt") ? c > 0 : T("le") ? c <= 0 : c >= 0;
    }
    if (T("in")) {
        if (x.t == JV_LIST) {
            for (size_t i = 0; i < x.u.l->n; i++)
                if (jv_equal(&x.u.l->items[i], v)) return 1;
            return 0;
        }
        if (x.t == JV_STR && v->t == JV_STR) return v->u.s.len == 0 || memmem(x.u.s.p, x.u.s.len, v->u.s.p, v->u.s.len);
        if (x.t == JV_DICT && v->t == JV_STR) return jv_dict_get(x.u.d, v->u.s.p, v->u.s.len) != NULL;
        return 0;
    }
    if (T("lower") || T("upper")) {
        if (v->t != JV_STR) return 0;
        int any = 0;
        for (size_t i = 0; i < v->u.s.len; i++) {
            char c = v->u.s.p[i];
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
                any = 1;
                if ((c >= 'a' && c <= 'z') != T("lower")) return 0;
            }
        }
        return any;
    }
#undef T
    bad(e, at, "unknown test '%s'", name);
}

/* ---------------------------------------------------------------- functions and methods */

enum {
    F_RANGE, F_NAMESPACE, F_RAISE, F_DICT, F_STRFTIME,
    /* string methods */
    M_UPPER, M_LOWER, M_STRIP, M_LSTRIP, M_RSTRIP, M_SPLIT, M_STARTSWITH, M_ENDSWITH, M_TITLE, M_CAPITALIZE,
    M_REPLACE, M_FIND, M_SCOUNT, M_JOIN, M_SPLITLINES, M_ISDIGIT, M_ISSPACE, M_ISALPHA,
    /* list methods */
    M_APPEND, M_POP, M_INDEX, M_LCOUNT, M_EXTEND,
    /* dict methods */
    M_ITEMS, M_KEYS, M_VALUES, M_GET, M_UPDATE,
};

static const struct {
    const char *name;
    jv_type on; /* JV_UNDEF: a global function */
    int id;
} functions[] = {
    {"range", JV_UNDEF, F_RANGE}, {"namespace", JV_UNDEF, F_NAMESPACE}, {"raise_exception", JV_UNDEF, F_RAISE},
    {"dict", JV_UNDEF, F_DICT}, {"strftime_now", JV_UNDEF, F_STRFTIME},
    {"upper", JV_STR, M_UPPER}, {"lower", JV_STR, M_LOWER}, {"strip", JV_STR, M_STRIP}, {"lstrip", JV_STR, M_LSTRIP},
    {"rstrip", JV_STR, M_RSTRIP}, {"split", JV_STR, M_SPLIT}, {"startswith", JV_STR, M_STARTSWITH},
    {"endswith", JV_STR, M_ENDSWITH}, {"title", JV_STR, M_TITLE}, {"capitalize", JV_STR, M_CAPITALIZE},
    {"replace", JV_STR, M_REPLACE}, {"find", JV_STR, M_FIND}, {"count", JV_STR, M_SCOUNT}, {"join", JV_STR, M_JOIN},
    {"splitlines", JV_STR, M_SPLITLINES}, {"isdigit", JV_STR, M_ISDIGIT}, {"isspace", JV_STR, M_ISSPACE},
    {"isalpha", JV_STR, M_ISALPHA},
    {"append", JV_LIST, M_APPEND}, {"pop", JV_LIST, M_POP}, {"index", JV_LIST, M_INDEX}, {"count", JV_LIST, M_LCOUNT},
    {"extend", JV_LIST, M_EXTEND},
    {"items", JV_DICT, M_ITEMS}, {"keys", JV_DICT, M_KEYS}, {"values", JV_DICT, M_VALUES}, {"get", JV_DICT, M_GET},
    {"update", JV_DICT, M_UPDATE},
};

int jj_global_function(jj_str name, jv *out) {
    for (size_t i = 0; i < sizeof functions / sizeof *functions; i++)
        if (functions[i].on == JV_UNDEF && jj_str_eq(name, functions[i].name)) {
            *out = (jv){.t = JV_FUNC, .u.fn = {functions[i].id, NULL}};
            return 1;
        }
    return 0;
}

int jj_method(jj_eval *e, const jv *obj, jj_str name, jv *out) {
    if ((obj->t == JV_STR || obj->t == JV_LIST) && jj_str_eq(name, "length")) { /* @huggingface/jinja's .length */
        *out = jv_int((int64_t)(obj->t == JV_STR ? n_chars(obj->u.s) : obj->u.l->n));
        return 1;
    }
    for (size_t i = 0; i < sizeof functions / sizeof *functions; i++)
        if (functions[i].on == obj->t && jj_str_eq(name, functions[i].name)) {
            jv *self = jj_alloc(e->arena, sizeof *self);
            if (!self) jj_raise(e->fail, e->line, e->col, "the template needs too much memory");
            *self = *obj;
            *out = (jv){.t = JV_FUNC, .u.fn = {functions[i].id, self}};
            return 1;
        }
    return 0;
}

static jv range(jj_eval *e, const jj_node *at, const jj_args *a) {
    int64_t start = 0, stop, step = 1;
    for (int i = 0; i < a->n; i++)
        if (a->args[i].t != JV_INT) jj_raise(e->fail, at->line, at->col, "range() needs integers");
    if (a->n == 1) stop = a->args[0].u.i;
    else if (a->n >= 2) {
        start = a->args[0].u.i;
        stop = a->args[1].u.i;
        if (a->n >= 3) step = a->args[2].u.i;
    } else {
        jj_raise(e->fail, at->line, at->col, "range() needs 1 to 3 integers");
    }
    if (step == 0) jj_raise(e->fail, at->line, at->col, "range() step cannot be zero");
    jv out = jv_new_list(e, 0);
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        jj_step(e, at);
        jv_list_push(e, out.u.l, jv_int(i));
        if (out.u.l->n > 10000000) jj_raise(e->fail, at->line, at->col, "range() too long");
    }
    return out;
}

static jv from_kwargs(jj_eval *e, const jj_args *a, jv_type t) {
    jv d = jv_new_dict(e, (size_t)a->n_kw);
    d.t = t;
    for (int i = 0; i < a->n; i++) /* namespace(dict) / dict(dict): start from its items */
        if (a->args[i].t == JV_DICT)
            for (size_t k = 0; k < a->args[i].u.d->n; k++) jv_dict_set(e, d.u.d, a->args[i].u.d->keys[k], a->args[i].u.d->vals[k]);
    for (int i = 0; i < a->n_kw; i++) jv_dict_set(e, d.u.d, a->kw_names[i], a->kw_vals[i]);
    return d;
}

static jv dict_items(jj_eval *e, const jv_dict *d, int which) {
    jv out = jv_new_list(e, d->n);
    for (size_t i = 0; i < d->n; i++) {
        jv k = jv_str_ref(d->keys[i].p, d->keys[i].len);
        if (which == 1) jv_list_push(e, out.u.l, k);
        else if (which == 2) jv_list_push(e, out.u.l, d->vals[i]);
        else {
            jv pair = jv_new_list(e, 2);
            pair.u.l->tuple = 1;
            jv_list_push(e, pair.u.l, k);
            jv_list_push(e, pair.u.l, d->vals[i]);
            jv_list_push(e, out.u.l, pair);
        }
    }
    return out;
}

static jv splitlines(jj_eval *e, jj_str s) {
    jv out = jv_new_list(e, 0);
    size_t i = 0, start = 0;
    while (i < s.len) {
        if (s.p[i] == '\n' || s.p[i] == '\r') {
            jv_list_push(e, out.u.l, jv_str_ref(s.p + start, i - start));
            i += (s.p[i] == '\r' && i + 1 < s.len && s.p[i + 1] == '\n') ? 2 : 1;
            start = i;
        } else {
            i++;
        }
    }
    if (start < s.len) jv_list_push(e, out.u.l, jv_str_ref(s.p + start, s.len - start));
    return out;
}

static int all_chars(jj_str s, int kind) {
    if (!s.len) return 0;
    for (size_t i = 0; i < s.len;) {
        size_t m = char_len(s.p, s.len, i);
        char c = s.p[i];
        int ok = kind == 0 ? (c >= '0' && c <= '9')
                 : kind == 1 ? jj_space_at(s.p + i, s.len - i) == m
                             : ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
        if (!ok) return 0;
        i += m;
    }
    return 1;
}

static jv strftime_now(jj_eval *e, const jj_node *at, jv fmt) {
    jj_str f = need_str(e, at, fmt, "strftime_now()'s format");
    char cfmt[128], out[256];
    if (f.len >= sizeof cfmt) jj_raise(e->fail, at->line, at->col, "strftime_now(): format too long");
    memcpy(cfmt, f.p, f.len);
    cfmt[f.len] = '\0';
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    size_t n = strftime(out, sizeof out, cfmt, &tm);
    return jv_str(e, out, n);
}

static jv string_method(jj_eval *e, const jj_node *at, int id, jj_str s, const jj_args *a) {
    jv a0 = arg(a, 0, NULL), a1 = arg(a, 1, NULL);
    switch (id) {
    case M_UPPER: return change_case(e, s, CASE_UPPER);
    case M_LOWER: return change_case(e, s, CASE_LOWER);
    case M_TITLE: return change_case(e, s, CASE_TITLE);
    case M_CAPITALIZE: {
        jv low = change_case(e, s, CASE_LOWER);
        return change_case(e, low.u.s, CASE_CAPITALIZE);
    }
    case M_STRIP: return strip_call(e, at, s, a0, 1, 1);
    case M_LSTRIP: return strip_call(e, at, s, a0, 1, 0);
    case M_RSTRIP: return strip_call(e, at, s, a0, 0, 1);
    case M_SPLIT: return split(e, at, s, arg(a, 0, "sep"), arg(a, 1, "maxsplit"));
    case M_STARTSWITH: return jv_bool(starts_or_ends(e, at, s, a0, 0));
    case M_ENDSWITH: return jv_bool(starts_or_ends(e, at, s, a0, 1));
    case M_REPLACE: return replace(e, at, s, a0, a1, arg(a, 2, "count"));
    case M_FIND: {
        jj_str n = need_str(e, at, a0, "find()'s argument");
        const char *hit = n.len == 0 ? s.p : memmem(s.p, s.len, n.p, n.len);
        return jv_int(hit ? (int64_t)n_chars((jj_str){s.p, (size_t)(hit - s.p)}) : -1);
    }
    case M_SCOUNT: {
        jj_str n = need_str(e, at, a0, "count()'s argument");
        if (n.len == 0) return jv_int((int64_t)n_chars(s) + 1);
        int64_t c = 0;
        for (const char *p = s.p; (p = memmem(p, (size_t)(s.p + s.len - p), n.p, n.len)); p += n.len) c++;
        return jv_int(c);
    }
    case M_JOIN: return join(e, at, a0, jv_str_ref(s.p, s.len), jv_undef());
    case M_SPLITLINES: return splitlines(e, s);
    case M_ISDIGIT: return jv_bool(all_chars(s, 0));
    case M_ISSPACE: return jv_bool(all_chars(s, 1));
    case M_ISALPHA: return jv_bool(all_chars(s, 2));
    }
    return jv_undef();
}

static jv list_method(jj_eval *e, const jj_node *at, int id, jv_list *l, const jj_args *a) {
    jv a0 = arg(a, 0, NULL);
    switch (id) {
    case M_APPEND: jv_list_push(e, l, a0); return jv_none();
    case M_EXTEND:
        if (a0.t != JV_LIST) jj_raise(e->fail, at->line, at->col, "extend() needs a list");
        for (size_t i = 0, n = a0.u.l->n; i < n; i++) jv_list_push(e, l, a0.u.l->items[i]);
        return jv_none();
    case M_POP: {
        if (!l->n) jj_raise(e->fail, at->line, at->col, "pop() from an empty list");
        int64_t i = a0.t == JV_INT ? a0.u.i : (int64_t)l->n - 1;
        if (i < 0) i += (int64_t)l->n;
        if (i < 0 || i >= (int64_t)l->n) jj_raise(e->fail, at->line, at->col, "pop(): index out of range");
        jv v = l->items[i];
        memmove(&l->items[i], &l->items[i + 1], sizeof(jv) * (l->n - (size_t)i - 1));
        l->n--;
        return v;
    }
    case M_INDEX:
        for (size_t i = 0; i < l->n; i++)
            if (jv_equal(&l->items[i], &a0)) return jv_int((int64_t)i);
        jj_raise(e->fail, at->line, at->col, "index(): value not in the list");
    case M_LCOUNT: {
        int64_t c = 0;
        for (size_t i = 0; i < l->n; i++) c += jv_equal(&l->items[i], &a0);
        return jv_int(c);
    }
    }
    return jv_undef();
}

static jv dict_method(jj_eval *e, int id, jv_dict *d, const jj_args *a) {
    switch (id) {
    case M_ITEMS: return dict_items(e, d, 0);
    case M_KEYS: return dict_items(e, d, 1);
    case M_VALUES: return dict_items(e, d, 2);
    case M_GET: {
        jv k = arg(a, 0, NULL);
        jv *v = k.t == JV_STR ? jv_dict_get(d, k.u.s.p, k.u.s.len) : NULL;
        if (v) return *v;
        jv dflt = arg(a, 1, "default");
        return given(&dflt) ? dflt : jv_none();
    }
    case M_UPDATE: {
        jv other = from_kwargs(e, a, JV_DICT);
        for (size_t i = 0; i < other.u.d->n; i++) jv_dict_set(e, d, other.u.d->keys[i], other.u.d->vals[i]);
        return jv_none();
    }
    }
    return jv_undef();
}

jv jj_call_builtin(jj_eval *e, const jj_node *at, const jv *fn, const jj_args *a) {
    int id = fn->u.fn.id;
    const jv *self = fn->u.fn.self;
    switch (id) {
    case F_RANGE: return range(e, at, a);
    case F_NAMESPACE: return from_kwargs(e, a, JV_NS);
    case F_DICT: return from_kwargs(e, a, JV_DICT);
    case F_STRFTIME: return strftime_now(e, at, arg(a, 0, NULL));
    case F_RAISE: {
        jv m = arg(a, 0, NULL);
        jj_str t = jv_to_text(e, &m);
        jj_raise(e->fail, at->line, at->col, "raise_exception: %.*s", (int)(t.len > 200 ? 200 : t.len), t.p);
    }
    }
    if (!self) return jv_undef();
    if (self->t == JV_STR) return string_method(e, at, id, self->u.s, a);
    if (self->t == JV_LIST) return list_method(e, at, id, self->u.l, a);
    if (self->t == JV_DICT) return dict_method(e, id, self->u.d, a);
    return jv_undef();
}

/* ---------------------------------------------------------------- filters */

static jv to_int(jj_eval *e, jv v, jv dflt) {
    (void)e;
    if (v.t == JV_INT) return v;
    if (v.t == JV_BOOL) return jv_int(v.u.b);
    if (v.t == JV_FLOAT) return isfinite(v.u.f) && fabs(v.u.f) < 9e18 ? jv_int((int64_t)v.u.f) : dflt;
    if (v.t == JV_STR) {
        char buf[64];
        jj_str s = strip(v.u.s, NULL, 1, 1);
        if (!s.len || s.len >= sizeof buf) return dflt;
        memcpy(buf, s.p, s.len);
        buf[s.len] = '\0';
        char *end;
        long long i = strtoll(buf, &end, 10);
        if (*end == '\0') return jv_int(i);
        double d = strtod(buf, &end);
        return *end == '\0' && isfinite(d) && fabs(d) < 9e18 ? jv_int((int64_t)d) : dflt;
    }
    return dflt;
}

static jv to_float(jv v, jv dflt) {
    if (v.t == JV_FLOAT) return v;
    if (v.t == JV_INT) return jv_float((double)v.u.i);
    if (v.t == JV_BOOL) return jv_float(v.u.b);
    if (v.t == JV_STR) {
        char buf[64];
        jj_str s = strip(v.u.s, NULL, 1, 1);
        if (!s.len || s.len >= sizeof buf) return dflt;
        memcpy(buf, s.p, s.len);
        buf[s.len] = '\0';
        char *end;
        double d = strtod(buf, &end);
        return *end == '\0' ? jv_float(d) : dflt;
    }
    return dflt;
}

static jv html_escape(jj_eval *e, jj_str s) {
    jj_buf b = {0};
    for (size_t i = 0; i < s.len; i++) {
        const char *r = s.p[i] == '&' ? "&amp;" : s.p[i] == '<' ? "&lt;" : s.p[i] == '>' ? "&gt;"
                        : s.p[i] == '"' ? "&#34;" : s.p[i] == '\'' ? "&#39;" : NULL;
        if (r) jj_buf_put(e, &b, r, strlen(r));
        else jj_buf_put(e, &b, s.p + i, 1);
    }
    return str_of(e, &b);
}

static jv indent(jj_eval *e, jj_str s, jv width, jv first, jv blank) {
    jj_str pad = {"    ", 4};
    char spaces[256];
    if (width.t == JV_INT) {
        int w = width.u.i < 0 ? 0 : width.u.i > 255 ? 255 : (int)width.u.i;
        memset(spaces, ' ', (size_t)w);
        pad = (jj_str){spaces, (size_t)w};
    } else if (width.t == JV_STR) {
        pad = width.u.s;
    }
    jj_buf b = {0};
    size_t start = 0;
    int line = 0;
    for (size_t i = 0; i <= s.len; i++) {
        if (i < s.len && s.p[i] != '\n') continue;
        size_t len = i - start;
        if ((line > 0 || jv_truthy(&first)) && (len > 0 || jv_truthy(&blank))) jj_buf_put(e, &b, pad.p, pad.len);
        jj_buf_put(e, &b, s.p + start, len);
        if (i < s.len) jj_buf_put(e, &b, "\n", 1);
        start = i + 1;
        line++;
    }
    return str_of(e, &b);
}

static jv as_list(jj_eval *e, const jj_node *at, jv v, const char *filter) {
    if (v.t == JV_LIST) return v;
    if (v.t == JV_UNDEF) return jv_new_list(e, 0);
    if (v.t == JV_DICT) return dict_items(e, v.u.d, 1);
    if (v.t == JV_STR) {
        jv l = jv_new_list(e, 0);
        for (size_t i = 0; i < v.u.s.len;) {
            size_t m = char_len(v.u.s.p, v.u.s.len, i);
            jv_list_push(e, l.u.l, jv_str_ref(v.u.s.p + i, m));
            i += m;
        }
        return l;
    }
    jj_raise(e->fail, at->line, at->col, "the filter '%s' needs a list, not a %s", filter, jv_type_name(v.t));
}

/* select/reject(test, args...) and selectattr/rejectattr(attribute, test, args...) */
static jv select_items(jj_eval *e, const jj_node *at, jv items, const jj_args *a, int by_attr, int keep) {
    const char *name = by_attr ? (keep ? "selectattr" : "rejectattr") : (keep ? "select" : "reject");
    jv l = as_list(e, at, items, name);
    if (by_attr && a->n < 1) jj_raise(e->fail, at->line, at->col, "the filter '%s' needs an attribute name", name);
    jv out = jv_new_list(e, 0);
    int first_test_arg = by_attr ? 1 : 0, n_rest = a->n > first_test_arg + 1 ? a->n - first_test_arg - 1 : 0;
    jj_args rest = {n_rest ? a->args + first_test_arg + 1 : NULL, n_rest, NULL, NULL, 0};
    jv test = arg(a, first_test_arg, NULL);
    for (size_t i = 0; i < l.u.l->n; i++) {
        jv v = l.u.l->items[i];
        if (by_attr) v = key_of(&v, arg(a, 0, NULL));
        int r = test.t == JV_STR ? jj_test(e, at, test.u.s, &v, &rest) : jv_truthy(&v);
        if (r == keep) jv_list_push(e, out.u.l, l.u.l->items[i]);
    }
    return out;
}

static jv map(jj_eval *e, const jj_node *at, jv items, const jj_args *a) {
    jv l = as_list(e, at, items, "map");
    jv attribute = arg(a, -1, "attribute"), filter = arg(a, 0, NULL), dflt = arg(a, -1, "default");
    jv out = jv_new_list(e, l.u.l->n);
    jj_args none = {0};
    for (size_t i = 0; i < l.u.l->n; i++) {
        jv v = l.u.l->items[i];
        if (attribute.t == JV_STR) {
            v = key_of(&v, attribute);
            if (v.t == JV_UNDEF && given(&dflt)) v = dflt;
        } else if (filter.t == JV_STR) {
            v = jj_filter(e, at, filter.u.s, v, &none);
        }
        jv_list_push(e, out.u.l, v);
    }
    return out;
}

static jv min_max_sum(jj_eval *e, const jj_node *at, jv items, int which) {
    jv l = as_list(e, at, items, which == 2 ? "sum" : which ? "max" : "min");
    if (which == 2) {
        jv total = jv_int(0);
        for (size_t i = 0; i < l.u.l->n; i++) {
            jv v = l.u.l->items[i];
            if (!is_num(&v)) jj_raise(e->fail, at->line, at->col, "sum needs numbers");
            total = total.t == JV_INT && v.t == JV_INT && !__builtin_add_overflow(total.u.i, v.u.i, &total.u.i)
                        ? total
                        : jv_float((total.t == JV_INT ? (double)total.u.i : total.u.f) + (v.t == JV_INT ? (double)v.u.i : v.u.f));
        }
        return total;
    }
    if (!l.u.l->n) return jv_undef();
    jv best = l.u.l->items[0];
    for (size_t i = 1; i < l.u.l->n; i++) {
        int c = cmp_values(&l.u.l->items[i], &best, 0);
        if (which ? c > 0 : c < 0) best = l.u.l->items[i];
    }
    return best;
}

static jv round_filter(jj_eval *e, const jj_node *at, jv v, jv precision, jv method) {
    if (!is_num(&v)) jj_raise(e->fail, at->line, at->col, "round needs a number");
    double x = v.t == JV_INT ? (double)v.u.i : v.u.f;
    int p = precision.t == JV_INT ? (int)(precision.u.i > 15 ? 15 : precision.u.i < 0 ? 0 : precision.u.i) : 0;
    double scale = pow(10, p), y = x * scale;
    if (method.t == JV_STR && jj_str_eq(method.u.s, "floor")) y = floor(y);
    else if (method.t == JV_STR && jj_str_eq(method.u.s, "ceil")) y = ceil(y);
    else y = round(y);
    return jv_float(y / scale);
}

jv jj_filter(jj_eval *e, const jj_node *at, jj_str name, jv v, const jj_args *a) {
    jv a0 = arg(a, 0, NULL), a1 = arg(a, 1, NULL);
#define F(s) jj_str_eq(name, s)
    if (F("default") || F("d")) {
        jv dflt = arg(a, 0, "default_value"), boolean = arg(a, 1, "boolean");
        if (v.t == JV_UNDEF || (jv_truthy(&boolean) && !jv_truthy(&v))) return given(&dflt) ? dflt : jv_str_ref("", 0);
        return v;
    }
    if (F("tojson")) {
        jv ind = arg(a, 0, "indent"), sort = arg(a, -1, "sort_keys");
        jj_str s = jv_to_json(e, &v, ind.t == JV_INT ? (int)(ind.u.i > 16 ? 16 : ind.u.i) : -1, 1, jv_truthy(&sort));
        return jv_str_ref(s.p, s.len);
    }
    if (F("safe")) return v;
    if (F("string")) {
        jj_str s = jv_to_text(e, &v);
        if (v.t == JV_NONE) return jv_str_ref("None", 4);
        return jv_str_ref(s.p, s.len);
    }
    if (F("length") || F("count")) {
        if (v.t == JV_STR) return jv_int((int64_t)n_chars(v.u.s));
        if (v.t == JV_LIST) return jv_int((int64_t)v.u.l->n);
        if (v.t == JV_DICT || v.t == JV_NS) return jv_int((int64_t)v.u.d->n);
        if (v.t == JV_UNDEF) return jv_int(0);
        bad(e, at, "the filter '%s' needs a string, list or dict", name);
    }
    if (F("int")) return to_int(e, v, given(&a0) ? a0 : jv_int(0));
    if (F("float")) return to_float(v, given(&a0) ? a0 : jv_float(0));
    if (F("bool")) return jv_bool(jv_truthy(&v));
    if (F("abs")) {
        if (v.t == JV_INT) return v.u.i == INT64_MIN ? jv_float(9.223372036854775808e18) : jv_int(v.u.i < 0 ? -v.u.i : v.u.i);
        if (v.t == JV_FLOAT) return jv_float(fabs(v.u.f));
        bad(e, at, "the filter '%s' needs a number", name);
    }
    if (F("round")) return round_filter(e, at, v, arg(a, 0, "precision"), arg(a, 1, "method"));
    if (F("items")) {
        if (v.t == JV_UNDEF) return jv_new_list(e, 0);
        if (v.t != JV_DICT && v.t != JV_NS) bad(e, at, "the filter '%s' needs a dict", name);
        return dict_items(e, v.u.d, 0);
    }
    if (F("dictsort")) {
        if (v.t != JV_DICT) bad(e, at, "the filter '%s' needs a dict", name);
        jv items = dict_items(e, v.u.d, 0);
        return sorted(e, at, items, truthy_arg(a, 2, "reverse"), truthy_arg(a, 0, "case_sensitive"), jv_undef());
    }
    if (F("list")) return as_list(e, at, v, "list");
    if (F("first") || F("last")) {
        if (v.t == JV_DICT) v = dict_items(e, v.u.d, 1);
        if (v.t == JV_STR) v = as_list(e, at, v, "first");
        if (v.t == JV_UNDEF) return jv_undef();
        if (v.t != JV_LIST) bad(e, at, "the filter '%s' needs a list or string", name);
        if (!v.u.l->n) return jv_undef();
        return F("first") ? v.u.l->items[0] : v.u.l->items[v.u.l->n - 1];
    }
    if (F("reverse")) {
        if (v.t == JV_STR) {
            jv chars = as_list(e, at, v, "reverse");
            jj_buf b = {0};
            for (size_t i = chars.u.l->n; i-- > 0;) jj_buf_put(e, &b, chars.u.l->items[i].u.s.p, chars.u.l->items[i].u.s.len);
            return str_of(e, &b);
        }
        jv l = as_list(e, at, v, "reverse"), out = jv_new_list(e, l.u.l->n);
        for (size_t i = l.u.l->n; i-- > 0;) jv_list_push(e, out.u.l, l.u.l->items[i]);
        return out;
    }
    if (F("sort")) return sorted(e, at, as_list(e, at, v, "sort"), truthy_arg(a, 0, "reverse"),
                                 truthy_arg(a, 1, "case_sensitive"), arg(a, 2, "attribute"));
    if (F("unique")) {
        jv l = as_list(e, at, v, "unique"), out = jv_new_list(e, 0);
        for (size_t i = 0; i < l.u.l->n; i++) {
            int seen = 0;
            for (size_t k = 0; k < out.u.l->n && !seen; k++) seen = jv_equal(&out.u.l->items[k], &l.u.l->items[i]);
            if (!seen) jv_list_push(e, out.u.l, l.u.l->items[i]);
        }
        return out;
    }
    if (F("join")) return join(e, at, v, arg(a, 0, "d"), arg(a, 1, "attribute"));
    if (F("map")) return map(e, at, v, a);
    if (F("select") || F("reject")) return select_items(e, at, v, a, 0, F("select"));
    if (F("selectattr") || F("rejectattr")) return select_items(e, at, v, a, 1, F("selectattr"));
    if (F("min")) return min_max_sum(e, at, v, 0);
    if (F("max")) return min_max_sum(e, at, v, 1);
    if (F("sum")) return min_max_sum(e, at, v, 2);
    /* string filters */
    if (v.t == JV_UNDEF && (F("trim") || F("upper") || F("lower") || F("title") || F("capitalize") || F("replace") ||
                            F("indent") || F("escape") || F("e")))
        v = jv_str_ref("", 0);
    if (v.t == JV_NONE && (F("trim") || F("upper") || F("lower") || F("title") || F("capitalize") || F("replace") ||
                           F("indent") || F("escape") || F("e") || F("wordcount")))
        bad(e, at, "the filter '%s' cannot take none", name);
    if (v.t != JV_STR && (F("trim") || F("upper") || F("lower") || F("title") || F("capitalize") || F("replace") ||
                          F("indent") || F("escape") || F("e") || F("wordcount"))) {
        jj_str t = jv_to_text(e, &v);
        v = jv_str_ref(t.p, t.len);
    }
    if (F("trim")) return strip_call(e, at, v.u.s, a0, 1, 1);
    if (F("upper")) return change_case(e, v.u.s, CASE_UPPER);
    if (F("lower")) return change_case(e, v.u.s, CASE_LOWER);
    if (F("title")) return change_case(e, v.u.s, CASE_TITLE);
    if (F("capitalize")) return string_method(e, at, M_CAPITALIZE, v.u.s, a);
    if (F("replace")) return replace(e, at, v.u.s, a0, a1, arg(a, 2, "count"));
    if (F("indent")) return indent(e, v.u.s, arg(a, 0, "width"), arg(a, 1, "first"), arg(a, 2, "blank"));
    if (F("escape") || F("e")) return html_escape(e, v.u.s);
    if (F("wordcount")) return jv_int((int64_t)split(e, at, v.u.s, jv_undef(), jv_undef()).u.l->n);
#undef F
    bad(e, at, "unknown filter '%s'", name);
}
