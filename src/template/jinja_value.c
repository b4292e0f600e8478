/* Template values: constructors, lists and dicts in the render's arena, truth, equality, printed text and JSON. */
#include "template/jinja.h"
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static void *alloc_or_raise(jj_eval *e, size_t n) {
    void *p = jj_alloc(e->arena, n);
    if (!p) jj_raise(e->fail, 0, 0, "the template needs more than %zu MB of memory", e->arena->limit >> 20);
    return p;
}

jv jv_undef(void) { return (jv){.t = JV_UNDEF}; }
jv jv_none(void) { return (jv){.t = JV_NONE}; }
jv jv_bool(int b) { return (jv){.t = JV_BOOL, .u.b = b != 0}; }
jv jv_int(int64_t i) { return (jv){.t = JV_INT, .u.i = i}; }
jv jv_float(double f) { return (jv){.t = JV_FLOAT, .u.f = f}; }
jv jv_str_ref(const char *p, size_t len) { return (jv){.t = JV_STR, .u.s = {p, len}}; }

jv jv_str(jj_eval *e, const char *p, size_t len) {
    char *c = alloc_or_raise(e, len + 1);
    if (len) memcpy(c, p, len);
    c[len] = '\0';
    return jv_str_ref(c, len);
}

jv jv_new_list(jj_eval *e, size_t cap) {
    jv_list *l = alloc_or_raise(e, sizeof *l);
    memset(l, 0, sizeof *l);
    if (cap) {
        l->items = alloc_or_raise(e, sizeof *l->items * cap);
        l->cap = cap;
    }
    return (jv){.t = JV_LIST, .u.l = l};
}

jv jv_new_dict(jj_eval *e, size_t cap) {
    jv_dict *d = alloc_or_raise(e, sizeof *d);
    memset(d, 0, sizeof *d);
    d->msg = -1;
    if (cap) {
        d->keys = alloc_or_raise(e, sizeof *d->keys * cap);
        d->vals = alloc_or_raise(e, sizeof *d->vals * cap);
        d->cap = cap;
    }
    return (jv){.t = JV_DICT, .u.d = d};
}

void jv_list_push(jj_eval *e, jv_list *l, jv v) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 4;
        jv *g = alloc_or_raise(e, sizeof *g * cap);
        if (l->n) memcpy(g, l->items, sizeof *g * l->n);
        l->items = g;
        l->cap = cap;
    }
    l->items[l->n++] = v;
}

jv *jv_dict_get(const jv_dict *d, const char *key, size_t len) {
    for (size_t i = 0; i < d->n; i++)
        if (d->keys[i].len == len && memcmp(d->keys[i].p, key, len) == 0) return &d->vals[i];
    return NULL;
}

void jv_dict_set(jj_eval *e, jv_dict *d, jj_str key, jv v) {
    jv *have = jv_dict_get(d, key.p, key.len);
    if (have) {
        *have = v;
        return;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 4;
        jj_str *k = alloc_or_raise(e, sizeof *k * cap);
        jv *g = alloc_or_raise(e, sizeof *g * cap);
        if (d->n) {
            memcpy(k, d->keys, sizeof *k * d->n);
            memcpy(g, d->vals, sizeof *g * d->n);
        }
        d->keys = k;
        d->vals = g;
        d->cap = cap;
    }
    d->keys[d->n] = key;
    d->vals[d->n++] = v;
}

int jv_truthy(const jv *v) {
    switch (v->t) {
    case JV_UNDEF:
    case JV_NONE: return 0;
    case JV_BOOL: return v->u.b;
    case JV_INT: return v->u.i != 0;
    case JV_FLOAT: return v->u.f != 0 && !isnan(v->u.f);
    case JV_STR: return v->u.s.len > 0;
    case JV_LIST: return v->u.l->n > 0;
    case JV_DICT: return v->u.d->n > 0;
    default: return 1;
    }
}

static int is_num(const jv *v) { return v->t == JV_INT || v->t == JV_FLOAT || v->t == JV_BOOL; }
static double num(const jv *v) { return v->t == JV_INT ? (double)v->u.i : v->t == JV_FLOAT ? v->u.f : v->u.b; }

int jv_equal(const jv *a, const jv *b) {
    int a_nil = a->t == JV_UNDEF || a->t == JV_NONE, b_nil = b->t == JV_UNDEF || b->t == JV_NONE;
    if (a_nil || b_nil) return a_nil && b_nil;
    if (a->t == JV_INT && b->t == JV_INT) return a->u.i == b->u.i;
    if (is_num(a) && is_num(b)) return num(a) == num(b);
    if (a->t == JV_STR && b->t == JV_STR) return a->u.s.len == b->u.s.len && memcmp(a->u.s.p, b->u.s.p, a->u.s.len) == 0;
    if (a->t != b->t) return 0;
    switch (a->t) {
    case JV_LIST: return a->u.l == b->u.l;
    case JV_DICT:
    case JV_NS: return a->u.d == b->u.d;
    case JV_MACRO: return a->u.m.node == b->u.m.node;
    default: return 0;
    }
}

const char *jv_type_name(jv_type t) {
    static const char *const names[] = {"undefined", "none", "boolean", "integer", "float", "string",
                                        "list", "dict", "namespace", "macro", "function"};
    return (unsigned)t < sizeof names / sizeof *names ? names[t] : "?";
}

/* ---------------------------------------------------------------- buffers */

void jj_buf_put(jj_eval *e, jj_buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (b->len + n + 1 > cap) cap *= 2;
        char *g = alloc_or_raise(e, cap);
        if (b->len) memcpy(g, b->p, b->len);
        b->p = g;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

jj_str jj_buf_str(jj_buf *b) { return (jj_str){b->p ? b->p : "", b->len}; }

static void buf_cstr(jj_eval *e, jj_buf *b, const char *s) { jj_buf_put(e, b, s, strlen(s)); }

/* ---------------------------------------------------------------- numbers as JavaScript prints them */

/* The shortest decimal that reads back as d, written as JavaScript's Number#toString does. */
static void js_number(double d, char *out, size_t cap) {
    if (isnan(d)) {
        snprintf(out, cap, "NaN");
        return;
    }
    if (isinf(d)) {
        snprintf(out, cap, d > 0 ? "Infinity" : "-Infinity");
        return;
    }
    if (d == 0) {
        snprintf(out, cap, "0");
        return;
    }
    char digits[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(digits, sizeof digits, "%.*e", prec - 1, d);
        if (strtod(digits, NULL) == d) break;
    }
    /* digits = [-]D.DDDDe±XX */
    const char *p = digits;
    int neg = *p == '-';
    if (neg) p++;
    char mant[24];
    int nm = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') mant[nm++] = *p;
    mant[nm] = '\0';
    int exp10 = atoi(p + 1); /* value = 0.mant × 10^(exp10 + 1) */
    int n = exp10 + 1;      /* position of the decimal point */
    size_t o = 0;
    if (neg) out[o++] = '-';
    if (n >= 1 && n <= 21) {
        for (int i = 0; i < (nm > n ? nm : n); i++) {
            if (i == n) out[o++] = '.';
            out[o++] = i < nm ? mant[i] : '0';
        }
    } else if (n <= 0 && n > -6) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = 0; i < -n; i++) out[o++] = '0';
        for (int i = 0; i < nm; i++) out[o++] = mant[i];
    } else {
        out[o++] = mant[0];
        if (nm > 1) out[o++] = '.';
        for (int i = 1; i < nm; i++) out[o++] = mant[i];
        o += (size_t)snprintf(out + o, cap - o, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
    }
    out[o] = '\0';
}

static void float_text(double d, char *out, size_t cap) {
    if (d == 0 && signbit(d)) snprintf(out, cap, "-0.0");
    else if (isfinite(d) && d == floor(d) && fabs(d) < 1e21) snprintf(out, cap, "%.1f", d);
    else js_number(d, out, cap);
}

/* ---------------------------------------------------------------- JSON */

static void json_string(jj_eval *e, jj_buf *b, jj_str s) {
    jj_buf_put(e, b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        const char *esc = NULL;
        char hex[8];
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c == '\b') esc = "\\b";
        else if (c == '\f') esc = "\\f";
        else if (c < 0x20) {
            snprintf(hex, sizeof hex, "\\u%04x", c);
            esc = hex;
        }
        if (esc) {
            jj_buf_put(e, b, s.p + run, i - run);
            buf_cstr(e, b, esc);
            run = i + 1;
        }
    }
    jj_buf_put(e, b, s.p + run, s.len - run);
    jj_buf_put(e, b, "\"", 1);
}

static void newline_indent(jj_eval *e, jj_buf *b, int indent, int depth) {
    jj_buf_put(e, b, "\n", 1);
    for (int i = 0; i < indent * depth; i++) jj_buf_put(e, b, " ", 1);
}

static int key_cmp(jj_str a, jj_str b) {
    size_t n = a.len < b.len ? a.len : b.len;
    int c = memcmp(a.p, b.p, n);
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

static void json_value(jj_eval *e, jj_buf *b, const jv *v, int indent, int undef_null, int sort_keys, int depth);

static void json_dict(jj_eval *e, jj_buf *b, const jv_dict *d, int indent, int undef_null, int sort_keys, int depth) {
    if (d->n == 0) {
        jj_buf_put(e, b, "{}", 2);
        return;
    }
    size_t *order = alloc_or_raise(e, sizeof *order * d->n);
    for (size_t i = 0; i < d->n; i++) order[i] = i;
    if (sort_keys) /* insertion sort: dicts in templates are small */
        for (size_t i = 1; i < d->n; i++)
            for (size_t j = i; j > 0 && key_cmp(d->keys[order[j - 1]], d->keys[order[j]]) > 0; j--) {
                size_t t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
    jj_buf_put(e, b, "{", 1);
    for (size_t k = 0; k < d->n; k++) {
        size_t i = order[k];
        if (k) buf_cstr(e, b, indent > 0 ? "," : ", ");
        if (indent > 0) newline_indent(e, b, indent, depth + 1);
        json_string(e, b, d->keys[i]);
        jj_buf_put(e, b, ": ", 2);
        json_value(e, b, &d->vals[i], indent, undef_null, sort_keys, depth + 1);
    }
    if (indent > 0) newline_indent(e, b, indent, depth);
    jj_buf_put(e, b, "}", 1);
}

static void json_value(jj_eval *e, jj_buf *b, const jv *v, int indent, int undef_null, int sort_keys, int depth) {
    char num_buf[64];
    if (depth > 200) jj_raise(e->fail, 0, 0, "value nested too deeply for JSON");
    switch (v->t) {
    case JV_UNDEF: buf_cstr(e, b, undef_null ? "null" : "undefined"); return;
    case JV_NONE: buf_cstr(e, b, "null"); return;
    case JV_BOOL: buf_cstr(e, b, v->u.b ? "true" : "false"); return;
    case JV_INT: snprintf(num_buf, sizeof num_buf, "%lld", (long long)v->u.i); break;
    case JV_FLOAT:
        if (!isfinite(v->u.f)) snprintf(num_buf, sizeof num_buf, "null");
        else js_number(v->u.f, num_buf, sizeof num_buf);
        break;
    case JV_STR: json_string(e, b, v->u.s); return;
    case JV_LIST:
        if (v->u.l->n == 0) {
            jj_buf_put(e, b, "[]", 2);
            return;
        }
        jj_buf_put(e, b, "[", 1);
        for (size_t i = 0; i < v->u.l->n; i++) {
            if (i) buf_cstr(e, b, indent > 0 ? "," : ", ");
            if (indent > 0) newline_indent(e, b, indent, depth + 1);
            json_value(e, b, &v->u.l->items[i], indent, undef_null, sort_keys, depth + 1);
        }
        if (indent > 0) newline_indent(e, b, indent, depth);
        jj_buf_put(e, b, "]", 1);
        return;
    case JV_DICT:
    case JV_NS: json_dict(e, b, v->u.d, indent, undef_null, sort_keys, depth); return;
    default: jj_raise(e->fail, 0, 0, "cannot convert a %s to JSON", jv_type_name(v->t));
    }
    buf_cstr(e, b, num_buf);
}

jj_str jv_to_json(jj_eval *e, const jv *v, int indent, int undef_as_null, int sort_keys) {
    jj_buf b = {0};
    json_value(e, &b, v, indent, undef_as_null, sort_keys, 0);
    return jj_buf_str(&b);
}

jj_str jv_to_text(jj_eval *e, const jv *v) {
    char buf[64];
    switch (v->t) {
    case JV_UNDEF:
    case JV_NONE: return (jj_str){"", 0};
    case JV_BOOL: return v->u.b ? (jj_str){"true", 4} : (jj_str){"false", 5};
    case JV_INT: snprintf(buf, sizeof buf, "%lld", (long long)v->u.i); break;
    case JV_FLOAT: float_text(v->u.f, buf, sizeof buf); break;
    case JV_STR: return v->u.s;
    case JV_LIST:
    case JV_DICT:
    case JV_NS: return jv_to_json(e, v, -1, 0, 0);
    default: jj_raise(e->fail, 0, 0, "cannot print a %s", jv_type_name(v->t));
    }
    jv s = jv_str(e, buf, strlen(buf));
    return s.u.s;
}

/* ---------------------------------------------------------------- context from JSON */

jv jv_from_json(jj_eval *e, json_object *o, int depth) {
    if (depth > 100) jj_raise(e->fail, 0, 0, "context nested too deeply");
    switch (json_object_get_type(o)) {
    case json_type_null: return jv_none();
    case json_type_boolean: return jv_bool(json_object_get_boolean(o));
    case json_type_int: return jv_int(json_object_get_int64(o));
    case json_type_double: {
        double d = json_object_get_double(o);
        /* JavaScript has one number type: an integral value is an integer to @huggingface/jinja */
        if (d == floor(d) && fabs(d) < 9007199254740992.0) return jv_int((int64_t)d);
        return jv_float(d);
    }
    case json_type_string: return jv_str(e, json_object_get_string(o), (size_t)json_object_get_string_len(o));
    case json_type_array: {
        size_t n = json_object_array_length(o);
        jv l = jv_new_list(e, n);
        for (size_t i = 0; i < n; i++) jv_list_push(e, l.u.l, jv_from_json(e, json_object_array_get_idx(o, i), depth + 1));
        return l;
    }
    case json_type_object: {
        jv d = jv_new_dict(e, (size_t)json_object_object_length(o));
        json_object_object_foreach(o, key, val) {
            jv k = jv_str(e, key, strlen(key));
            jv_dict_set(e, d.u.d, k.u.s, jv_from_json(e, val, depth + 1));
        }
        return d;
    }
    }
    return jv_undef();
}
