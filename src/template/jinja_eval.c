/* Jinja evaluator: statements write to the current output buffer, expressions give values. Scopes: the
 * context, the template's own scope, one per for-loop iteration and per macro call (so `set` in a loop does not
 * leak out — the reason chat templates use namespace()). Budgets: steps, nesting, output and memory. */
#include "template/jinja.h"
#include <math.h>
#include <string.h>

struct jj_scope {
    jv_dict *vars;
    jj_scope *parent;
};

static jj_scope *scope_new(jj_eval *e, jj_scope *parent) {
    jj_scope *s = jj_alloc(e->arena, sizeof *s);
    if (!s) jj_raise(e->fail, e->line, e->col, "the template needs too much memory");
    s->vars = jv_new_dict(e, 0).u.d;
    s->parent = parent;
    return s;
}

static jv *lookup(jj_scope *s, jj_str name) {
    for (; s; s = s->parent) {
        jv *v = jv_dict_get(s->vars, name.p, name.len);
        if (v) return v;
    }
    return NULL;
}

static _Noreturn void fail(jj_eval *e, const jj_node *at, const char *fmt, const char *arg) {
    jj_raise(e->fail, at ? at->line : e->line, at ? at->col : e->col, fmt, arg);
}

void jj_step(jj_eval *e, const jj_node *at) {
    if (++e->steps > e->max_steps) fail(e, at, "%s", "the template runs too long (loop or recursion budget spent)");
}

static void emit(jj_eval *e, jj_str s) {
    if (!s.len) return;
    if (e->out->len + s.len > e->out_limit) jj_raise(e->fail, e->line, e->col, "the output is larger than %zu MB", e->out_limit >> 20);
    jj_buf_put(e, e->out, s.p, s.len);
    if (e->out == &e->main && e->cur_msg >= 0 && e->cur_msg < e->n_msgs && e->spans) {
        jj_msg_span *sp = &e->spans[e->cur_msg];
        if (!sp->seen) sp->start = e->main.len - s.len;
        sp->seen = 1;
        sp->end = e->main.len;
    }
}

static jv eval(jj_eval *e, jj_scope *s, const jj_node *n);
static void exec_block(jj_eval *e, jj_scope *s, jj_node *const *body, int n);

/* ---------------------------------------------------------------- expressions */

static void eval_args(jj_eval *e, jj_scope *s, const jj_node *call, jj_args *a) {
    memset(a, 0, sizeof *a);
    if (!call->n_kids) return;
    a->args = jj_alloc(e->arena, sizeof *a->args * (size_t)call->n_kids);
    a->kw_names = jj_alloc(e->arena, sizeof *a->kw_names * (size_t)call->n_kids);
    a->kw_vals = jj_alloc(e->arena, sizeof *a->kw_vals * (size_t)call->n_kids);
    if (!a->args || !a->kw_names || !a->kw_vals) fail(e, call, "%s", "the template needs too much memory");
    for (int i = 0; i < call->n_kids; i++) {
        const jj_node *k = call->kids[i];
        if (k->kind == E_KWARG) {
            a->kw_names[a->n_kw] = k->name;
            a->kw_vals[a->n_kw++] = eval(e, s, k->a);
        } else {
            a->args[a->n++] = eval(e, s, k);
        }
    }
}

/* Python's index rules: negative counts from the end; out of range → -1. */
static int64_t norm_index(int64_t i, size_t n) {
    if (i < 0) i += (int64_t)n;
    return i < 0 || i >= (int64_t)n ? -1 : i;
}

static size_t utf8_len(const char *p, size_t n, size_t i) {
    unsigned char c = (unsigned char)p[i];
    size_t m = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return i + m > n ? n - i : m;
}

/* The characters of a string as a list of one-character strings. */
static jv chars_of(jj_eval *e, jj_str s) {
    jv l = jv_new_list(e, 0);
    for (size_t i = 0; i < s.len;) {
        size_t m = utf8_len(s.p, s.len, i);
        jv_list_push(e, l.u.l, jv_str_ref(s.p + i, m));
        i += m;
    }
    return l;
}

static jv attr(jj_eval *e, const jj_node *at, jv obj, jj_str name) {
    (void)at;
    jv m;
    if (obj.t == JV_DICT || obj.t == JV_NS) {
        jv *v = jv_dict_get(obj.u.d, name.p, name.len);
        if (v) return *v;
    }
    if (obj.t == JV_NS) return jv_undef();
    if (jj_method(e, &obj, name, &m)) return m;
    return jv_undef();
}

static jv subscript(jj_eval *e, const jj_node *at, jv obj, jv key) {
    if (obj.t == JV_DICT || obj.t == JV_NS) {
        if (key.t != JV_STR) {
            jj_str text = jv_to_text(e, &key); /* {1: 'a'}[1]: keys are strings here */
            jv *v = jv_dict_get(obj.u.d, text.p, text.len);
            return v ? *v : jv_undef();
        }
        return attr(e, at, obj, key.u.s);
    }
    if (key.t == JV_STR) return attr(e, at, obj, key.u.s);
    if (key.t != JV_INT && key.t != JV_BOOL) return jv_undef();
    int64_t i = key.t == JV_INT ? key.u.i : key.u.b;
    if (obj.t == JV_LIST) {
        i = norm_index(i, obj.u.l->n);
        return i < 0 ? jv_undef() : obj.u.l->items[i];
    }
    if (obj.t == JV_STR) {
        jv chars = chars_of(e, obj.u.s);
        i = norm_index(i, chars.u.l->n);
        return i < 0 ? jv_undef() : chars.u.l->items[i];
    }
    return jv_undef();
}

static int64_t slice_bound(jj_eval *e, const jj_node *at, jv v, int64_t dflt) {
    if (v.t == JV_UNDEF || v.t == JV_NONE) return dflt;
    if (v.t != JV_INT) fail(e, at, "%s", "slice indices must be integers");
    return v.u.i;
}

/* Python slicing of lists and strings. */
static jv slice(jj_eval *e, jj_scope *s, const jj_node *n) {
    jv obj = eval(e, s, n->a);
    jv parts[3];
    for (int k = 0; k < 3; k++) parts[k] = n->kids[k] ? eval(e, s, n->kids[k]) : jv_undef();
    jv items;
    if (obj.t == JV_LIST) items = obj;
    else if (obj.t == JV_STR) items = chars_of(e, obj.u.s);
    else if (obj.t == JV_UNDEF) return jv_undef();
    else fail(e, n, "cannot slice a %s", jv_type_name(obj.t));
    int64_t len = (int64_t)items.u.l->n;
    int64_t step = slice_bound(e, n, parts[2], 1);
    if (step == 0) fail(e, n, "%s", "slice step cannot be zero");
    int64_t lo = step > 0 ? 0 : len - 1, hi = step > 0 ? len : -1;
    int64_t start = slice_bound(e, n, parts[0], lo), stop = slice_bound(e, n, parts[1], hi);
    if (n->kids[0]) {
        if (start < 0) start += len;
        if (step > 0) start = start < 0 ? 0 : start > len ? len : start;
        else start = start < 0 ? -1 : start >= len ? len - 1 : start;
    }
    if (n->kids[1]) {
        if (stop < 0) stop += len;
        if (step > 0) stop = stop < 0 ? 0 : stop > len ? len : stop;
        else stop = stop < -1 ? -1 : stop >= len ? len - 1 : stop;
    }
    jv out = jv_new_list(e, 0);
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        jj_step(e, n);
        jv_list_push(e, out.u.l, items.u.l->items[i]);
    }
    if (obj.t == JV_LIST) return out;
    jj_buf b = {0};
    for (size_t i = 0; i < out.u.l->n; i++) jj_buf_put(e, &b, out.u.l->items[i].u.s.p, out.u.l->items[i].u.s.len);
    jj_str t = jj_buf_str(&b);
    return jv_str_ref(t.p, t.len);
}

static jv concat_text(jj_eval *e, jv a, jv b) {
    jj_str x = jv_to_text(e, &a), y = jv_to_text(e, &b);
    jj_buf buf = {0};
    if (x.len + y.len > e->out_limit) jj_raise(e->fail, e->line, e->col, "string too long");
    jj_buf_put(e, &buf, x.p, x.len);
    jj_buf_put(e, &buf, y.p, y.len);
    jj_str t = jj_buf_str(&buf);
    return jv_str_ref(t.p, t.len);
}

static int is_number(const jv *v) { return v->t == JV_INT || v->t == JV_FLOAT; }
static double as_double(const jv *v) { return v->t == JV_INT ? (double)v->u.i : v->u.f; }

static int str_cmp(jj_str a, jj_str b) {
    size_t n = a.len < b.len ? a.len : b.len;
    int c = memcmp(a.p, b.p, n);
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

static jv arith(jj_eval *e, const jj_node *n, int op, jv a, jv b) {
    if (a.t == JV_BOOL) a = jv_int(a.u.b);
    if (b.t == JV_BOOL) b = jv_int(b.u.b);
    if (!is_number(&a) || !is_number(&b)) fail(e, n, "%s", "arithmetic on a value that is not a number");
    if (a.t == JV_INT && b.t == JV_INT && op != OP_DIV && op != OP_POW) {
        int64_t x = a.u.i, y = b.u.i, r = 0;
        int overflow = 0;
        switch (op) {
        case OP_ADD: overflow = __builtin_add_overflow(x, y, &r); break;
        case OP_SUB: overflow = __builtin_sub_overflow(x, y, &r); break;
        case OP_MUL: overflow = __builtin_mul_overflow(x, y, &r); break;
        case OP_FLOORDIV:
        case OP_MOD:
            if (y == 0) fail(e, n, "%s", "integer division or modulo by zero");
            if (x == INT64_MIN && y == -1) overflow = 1;
            else {
                int64_t q = x / y, m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) {
                    q--;
                    m += y;
                }
                r = op == OP_FLOORDIV ? q : m;
            }
            break;
        }
        if (overflow) fail(e, n, "%s", "integer overflow");
        return jv_int(r);
    }
    double x = as_double(&a), y = as_double(&b);
    switch (op) {
    case OP_ADD: return jv_float(x + y);
    case OP_SUB: return jv_float(x - y);
    case OP_MUL: return jv_float(x * y);
    case OP_DIV:
        if (y == 0) fail(e, n, "%s", "division by zero");
        return jv_float(x / y);
    case OP_FLOORDIV:
        if (y == 0) fail(e, n, "%s", "division by zero");
        return jv_float(floor(x / y));
    case OP_MOD:
        if (y == 0) fail(e, n, "%s", "modulo by zero");
        return jv_float(x - y * floor(x / y));
    case OP_POW: {
        if (x == 0 && y < 0) fail(e, n, "%s", "0 cannot be raised to a negative power");
        double r = pow(x, y);
        if (!isfinite(r)) fail(e, n, "%s", "power overflow");
        if (a.t == JV_INT && b.t == JV_INT && y >= 0) {
            if (fabs(r) >= 9.2e18) fail(e, n, "%s", "integer overflow");
            int64_t ir = 1;
            for (int64_t k = 0; k < b.u.i; k++) ir *= a.u.i; /* |r| < 9.2e18 bounds the loop */
            return jv_int(ir);
        }
        return jv_float(r);
    }
    }
    return jv_undef();
}

static int contains(jj_eval *e, const jj_node *n, jv item, jv in) {
    if (in.t == JV_UNDEF) return 0;
    if (in.t == JV_LIST) {
        for (size_t i = 0; i < in.u.l->n; i++)
            if (jv_equal(&in.u.l->items[i], &item)) return 1;
        return 0;
    }
    if (in.t == JV_STR && item.t == JV_STR) {
        if (item.u.s.len == 0) return 1;
        return memmem(in.u.s.p, in.u.s.len, item.u.s.p, item.u.s.len) != NULL;
    }
    if ((in.t == JV_DICT || in.t == JV_NS) && item.t == JV_STR) return jv_dict_get(in.u.d, item.u.s.p, item.u.s.len) != NULL;
    (void)e;
    fail(e, n, "'in' needs a list, string or dict on the right, not a %s", jv_type_name(in.t));
}

static jv repeat(jj_eval *e, const jj_node *n, jv s, int64_t times) {
    jj_buf b = {0};
    if (times > 0 && s.u.s.len && (uint64_t)times > e->out_limit / s.u.s.len) fail(e, n, "%s", "string too long");
    for (int64_t i = 0; i < times; i++) jj_buf_put(e, &b, s.u.s.p, s.u.s.len);
    jj_str t = jj_buf_str(&b);
    return jv_str_ref(t.p, t.len);
}

static jv binop(jj_eval *e, const jj_node *n, jv a, jv b) {
    int op = n->op;
    if (op == OP_EQ) return jv_bool(jv_equal(&a, &b));
    if (op == OP_NE) return jv_bool(!jv_equal(&a, &b));
    if (op == OP_IN || op == OP_NOT_IN) return jv_bool(contains(e, n, a, b) == (op == OP_IN));
    if (a.t == JV_UNDEF || b.t == JV_UNDEF) fail(e, n, "%s", "an undefined value in an operation");
    if (a.t == JV_NONE || b.t == JV_NONE) fail(e, n, "%s", "none in an operation");
    if (op == OP_CONCAT) return concat_text(e, a, b);
    if (op == OP_ADD && a.t == JV_LIST && b.t == JV_LIST) {
        jv out = jv_new_list(e, a.u.l->n + b.u.l->n);
        for (size_t i = 0; i < a.u.l->n; i++) jv_list_push(e, out.u.l, a.u.l->items[i]);
        for (size_t i = 0; i < b.u.l->n; i++) jv_list_push(e, out.u.l, b.u.l->items[i]);
        return out;
    }
    if (op == OP_ADD && (a.t == JV_STR || b.t == JV_STR)) return concat_text(e, a, b);
    if (op == OP_MUL && a.t == JV_STR && b.t == JV_INT) return repeat(e, n, a, b.u.i);
    if (op >= OP_LT && op <= OP_GE) {
        int c;
        if (a.t == JV_STR && b.t == JV_STR) c = str_cmp(a.u.s, b.u.s);
        else if ((is_number(&a) || a.t == JV_BOOL) && (is_number(&b) || b.t == JV_BOOL)) {
            double x = a.t == JV_BOOL ? a.u.b : as_double(&a), y = b.t == JV_BOOL ? b.u.b : as_double(&b);
            c = (x > y) - (x < y);
        } else {
            fail(e, n, "cannot compare a %s", jv_type_name(a.t));
        }
        return jv_bool(op == OP_LT ? c < 0 : op == OP_GT ? c > 0 : op == OP_LE ? c <= 0 : c >= 0);
    }
    return arith(e, n, op, a, b);
}

static jv call(jj_eval *e, jj_scope *s, const jj_node *n) {
    jv callee = eval(e, s, n->a);
    jj_args a;
    eval_args(e, s, n, &a);
    if (callee.t == JV_MACRO) return jj_call_macro(e, n, &callee, &a);
    if (callee.t == JV_FUNC) return jj_call_builtin(e, n, &callee, &a);
    fail(e, n, "%s", callee.t == JV_UNDEF ? "calling an undefined function" : "calling a value that is not a function");
}

static jv eval(jj_eval *e, jj_scope *s, const jj_node *n) {
    e->line = n->line;
    e->col = n->col;
    jj_step(e, n);
    switch (n->kind) {
    case E_LIT: return n->lit;
    case E_NAME: {
        jv *v = lookup(s, n->name);
        if (v) return *v;
        jv fn;
        if (jj_global_function(n->name, &fn)) return fn;
        return jv_undef();
    }
    case E_ATTR: return attr(e, n, eval(e, s, n->a), n->name);
    case E_INDEX: {
        jv obj = eval(e, s, n->a);
        return subscript(e, n, obj, eval(e, s, n->b));
    }
    case E_SLICE: return slice(e, s, n);
    case E_CALL: return call(e, s, n);
    case E_FILTER: {
        jv operand = eval(e, s, n->a);
        jj_args a;
        eval_args(e, s, n, &a);
        return jj_filter(e, n, n->name, operand, &a);
    }
    case E_TEST: {
        jv operand = eval(e, s, n->a);
        jj_args a;
        eval_args(e, s, n, &a);
        int r = jj_test(e, n, n->name, &operand, &a);
        return jv_bool(n->op ? !r : r);
    }
    case E_NEG:
    case E_POS: {
        jv v = eval(e, s, n->a);
        if (v.t == JV_BOOL) v = jv_int(v.u.b);
        if (!is_number(&v)) fail(e, n, "%s", "unary - or + on a value that is not a number");
        if (n->kind == E_POS) return v;
        if (v.t == JV_INT) {
            if (v.u.i == INT64_MIN) fail(e, n, "%s", "integer overflow");
            return jv_int(-v.u.i);
        }
        return jv_float(-v.u.f);
    }
    case E_NOT: {
        jv v = eval(e, s, n->a);
        return jv_bool(!jv_truthy(&v));
    }
    case E_AND: {
        jv a = eval(e, s, n->a);
        return jv_truthy(&a) ? eval(e, s, n->b) : a;
    }
    case E_OR: {
        jv a = eval(e, s, n->a);
        return jv_truthy(&a) ? a : eval(e, s, n->b);
    }
    case E_COND: {
        jv c = eval(e, s, n->b);
        if (jv_truthy(&c)) return eval(e, s, n->a);
        return n->c ? eval(e, s, n->c) : jv_undef();
    }
    case E_BIN: {
        jv a = eval(e, s, n->a);
        jv b = eval(e, s, n->b);
        return binop(e, n, a, b);
    }
    case E_LIST:
    case E_TUPLE: {
        jv l = jv_new_list(e, (size_t)n->n_kids);
        l.u.l->tuple = n->kind == E_TUPLE;
        for (int i = 0; i < n->n_kids; i++) jv_list_push(e, l.u.l, eval(e, s, n->kids[i]));
        return l;
    }
    case E_DICT: {
        jv d = jv_new_dict(e, (size_t)n->n_kids / 2);
        for (int i = 0; i + 1 < n->n_kids; i += 2) {
            jv k = eval(e, s, n->kids[i]);
            jj_str key = k.t == JV_STR ? k.u.s : jv_to_text(e, &k);
            jv_dict_set(e, d.u.d, key, eval(e, s, n->kids[i + 1]));
        }
        return d;
    }
    case E_KWARG: fail(e, n, "%s", "a keyword argument outside a call");
    default: fail(e, n, "%s", "a statement where an expression was expected");
    }
}

/* ---------------------------------------------------------------- macros */

jv jj_call_macro(jj_eval *e, const jj_node *at, const jv *macro, const jj_args *a) {
    const jj_node *m = macro->u.m.node;
    if (++e->depth > e->max_depth) fail(e, at, "%s", "macro calls nested too deeply");
    jj_scope *s = scope_new(e, macro->u.m.scope);
    if (e->caller) {
        jv_dict_set(e, s->vars, (jj_str){"caller", 6}, *e->caller);
        e->caller = NULL;
    }
    int positional = 0;
    for (int i = 0; i < m->n_kids; i++) {
        const jj_node *p = m->kids[i];
        jv v = jv_undef();
        int given = 0;
        for (int k = 0; k < a->n_kw; k++)
            if (a->kw_names[k].len == p->name.len && memcmp(a->kw_names[k].p, p->name.p, p->name.len) == 0) {
                v = a->kw_vals[k];
                given = 1;
            }
        if (!given && positional < a->n) {
            v = a->args[positional++];
            given = 1;
        }
        if (!given && p->kind == E_KWARG) v = eval(e, s, p->a);
        jv_dict_set(e, s->vars, p->name, v);
    }
    jj_buf capture = {0}, *saved = e->out;
    int saved_ctl = e->loop_ctl;
    e->out = &capture;
    e->loop_ctl = 0;
    exec_block(e, s, m->body, m->n_body);
    e->out = saved;
    e->loop_ctl = saved_ctl;
    e->depth--;
    jj_str t = jj_buf_str(&capture);
    return jv_str_ref(t.p, t.len);
}

/* ---------------------------------------------------------------- statements */

static void assign(jj_eval *e, jj_scope *s, const jj_node *target, jv v) {
    if (target->kind == E_NAME) {
        jv_dict_set(e, s->vars, target->name, v);
        return;
    }
    jv obj = eval(e, s, target->a);
    if (obj.t != JV_NS) fail(e, target, "%s", "only a namespace() takes attribute assignment");
    jv_dict_set(e, obj.u.d, target->name, v);
}

static void exec_set(jj_eval *e, jj_scope *s, const jj_node *n) {
    jv v = eval(e, s, n->a);
    if (n->n_kids == 1) {
        assign(e, s, n->kids[0], v);
        return;
    }
    if (v.t != JV_LIST || v.u.l->n != (size_t)n->n_kids) fail(e, n, "%s", "cannot unpack: wrong number of values");
    for (int i = 0; i < n->n_kids; i++) assign(e, s, n->kids[i], v.u.l->items[i]);
}

static jv iterable(jj_eval *e, const jj_node *n, jv v) {
    switch (v.t) {
    case JV_LIST: return v;
    case JV_UNDEF: return jv_new_list(e, 0);
    case JV_STR: return chars_of(e, v.u.s);
    case JV_DICT: {
        jv keys = jv_new_list(e, v.u.d->n);
        for (size_t i = 0; i < v.u.d->n; i++) jv_list_push(e, keys.u.l, jv_str_ref(v.u.d->keys[i].p, v.u.d->keys[i].len));
        return keys;
    }
    default: fail(e, n, "cannot loop over a %s", jv_type_name(v.t));
    }
}

static void bind_targets(jj_eval *e, jj_scope *s, const jj_node *n, jv item) {
    if (n->n_kids == 1) {
        jv_dict_set(e, s->vars, n->kids[0]->name, item);
        return;
    }
    if (item.t != JV_LIST || item.u.l->n != (size_t)n->n_kids) fail(e, n, "%s", "cannot unpack a loop item: wrong number of values");
    for (int i = 0; i < n->n_kids; i++) jv_dict_set(e, s->vars, n->kids[i]->name, item.u.l->items[i]);
}

static jv loop_object(jj_eval *e, const jv_list *items, size_t i) {
    jv d = jv_new_dict(e, 10);
    size_t n = items->n;
#define SET(k, v) jv_dict_set(e, d.u.d, (jj_str){k, sizeof k - 1}, v)
    SET("index", jv_int((int64_t)i + 1));
    SET("index0", jv_int((int64_t)i));
    SET("revindex", jv_int((int64_t)(n - i)));
    SET("revindex0", jv_int((int64_t)(n - i - 1)));
    SET("first", jv_bool(i == 0));
    SET("last", jv_bool(i + 1 == n));
    SET("length", jv_int((int64_t)n));
    SET("depth", jv_int(1));
    SET("previtem", i > 0 ? items->items[i - 1] : jv_undef());
    SET("nextitem", i + 1 < n ? items->items[i + 1] : jv_undef());
#undef SET
    return d;
}

static void exec_for(jj_eval *e, jj_scope *s, const jj_node *n) {
    jv all = iterable(e, n, eval(e, s, n->a));
    jv_list *items = all.u.l;
    if (n->b) { /* for x in xs if cond: the filtered items are the loop */
        jv kept = jv_new_list(e, 0);
        for (size_t i = 0; i < items->n; i++) {
            jj_scope *t = scope_new(e, s);
            bind_targets(e, t, n, items->items[i]);
            jv c = eval(e, t, n->b);
            if (jv_truthy(&c)) jv_list_push(e, kept.u.l, items->items[i]);
        }
        items = kept.u.l;
    }
    if (++e->depth > e->max_depth) fail(e, n, "%s", "blocks nested too deeply");
    int saved_msg = e->cur_msg;
    for (size_t i = 0; i < items->n; i++) {
        jj_step(e, n);
        jj_scope *t = scope_new(e, s);
        jv item = items->items[i];
        bind_targets(e, t, n, item);
        jv_dict_set(e, t->vars, (jj_str){"loop", 4}, loop_object(e, items, i));
        if (item.t == JV_DICT && item.u.d->msg >= 0) e->cur_msg = item.u.d->msg;
        exec_block(e, t, n->body, n->n_body);
        e->cur_msg = saved_msg;
        int ctl = e->loop_ctl;
        e->loop_ctl = 0;
        if (ctl == 1) break;
    }
    if (items->n == 0) exec_block(e, s, n->orelse, n->n_orelse);
    e->depth--;
}

static jj_str capture_block(jj_eval *e, jj_scope *s, jj_node *const *body, int n_body) {
    jj_buf capture = {0}, *saved = e->out;
    e->out = &capture;
    exec_block(e, s, body, n_body);
    e->out = saved;
    return jj_buf_str(&capture);
}

/* The filters of a {% filter %} block, applied innermost first. */
static jv apply_filter_chain(jj_eval *e, jj_scope *s, const jj_node *f, jv v) {
    if (!f) return v;
    v = apply_filter_chain(e, s, f->a, v);
    jj_args a;
    eval_args(e, s, f, &a);
    return jj_filter(e, f, f->name, v, &a);
}

static void exec(jj_eval *e, jj_scope *s, const jj_node *n) {
    e->line = n->line;
    e->col = n->col;
    jj_step(e, n);
    switch (n->kind) {
    case N_TEXT: emit(e, n->lit.u.s); return;
    case N_OUTPUT: {
        jv v = eval(e, s, n->a);
        emit(e, jv_to_text(e, &v));
        return;
    }
    case N_IF: {
        jv c = eval(e, s, n->a);
        if (jv_truthy(&c)) exec_block(e, s, n->body, n->n_body);
        else exec_block(e, s, n->orelse, n->n_orelse);
        return;
    }
    case N_FOR: exec_for(e, s, n); return;
    case N_SET: exec_set(e, s, n); return;
    case N_SET_BLOCK: {
        jj_str t = capture_block(e, s, n->body, n->n_body);
        jv_dict_set(e, s->vars, n->kids[0]->name, jv_str_ref(t.p, t.len));
        return;
    }
    case N_MACRO: {
        jv m = {.t = JV_MACRO, .u.m = {n, s}};
        jv_dict_set(e, s->vars, n->name, m);
        return;
    }
    case N_CALL_BLOCK: {
        jv callee = eval(e, s, n->a->a);
        jj_args a;
        eval_args(e, s, n->a, &a);
        if (callee.t != JV_MACRO) fail(e, n, "%s", "a call block needs a macro");
        jv caller = {.t = JV_MACRO, .u.m = {n, s}};
        e->caller = &caller;
        jv v = jj_call_macro(e, n, &callee, &a);
        emit(e, jv_to_text(e, &v));
        return;
    }
    case N_FILTER_BLOCK: {
        jj_str t = capture_block(e, s, n->body, n->n_body);
        jv v = apply_filter_chain(e, s, n->a, jv_str_ref(t.p, t.len));
        emit(e, jv_to_text(e, &v));
        return;
    }
    case N_BREAK: e->loop_ctl = 1; return;
    case N_CONTINUE: e->loop_ctl = 2; return;
    default: fail(e, n, "%s", "an expression where a statement was expected");
    }
}

static void exec_block(jj_eval *e, jj_scope *s, jj_node *const *body, int n) {
    if (++e->depth > e->max_depth) fail(e, n ? body[0] : NULL, "%s", "blocks nested too deeply");
    for (int i = 0; i < n && !e->loop_ctl; i++) exec(e, s, body[i]);
    e->depth--;
}

void jj_render(jj_eval *e, const jj_template *t, jv context) {
    jj_scope *ctx = jj_alloc(e->arena, sizeof *ctx);
    if (!ctx) jj_raise(e->fail, 1, 1, "the template needs too much memory");
    ctx->vars = context.u.d;
    ctx->parent = NULL;
    e->top = scope_new(e, ctx);
    e->out = &e->main;
    e->cur_msg = -1;
    exec_block(e, e->top, t->body, t->n_body);
}
