/* Jinja parser: tokens → syntax tree. Statements: if/elif/else, for (with else, an `if` filter), set (also
 * attributes and block set), macro, call, filter blocks, break/continue; `generation` tags are accepted and
 * ignored. Expressions with Jinja's precedence: conditional < or < and < not < comparisons and `in` < + - <
 * ~ < * / // % < ** < unary - + < filters and tests < attribute, subscript, slice, call < literals. */
#include "template/jinja.h"
#include <stdio.h>
#include <string.h>

#define MAX_NESTING 200

typedef struct {
    jj_template *t;
    jj_fail *f;
    const jj_tok *toks;
    int n, pos, depth;
} parser;

static const jj_tok *peek(parser *P) { return &P->toks[P->pos]; }
static const jj_tok *next(parser *P) {
    const jj_tok *k = &P->toks[P->pos];
    if (P->pos < P->n - 1) P->pos++;
    return k;
}

static _Noreturn void fail_at(parser *P, const jj_tok *k, const char *msg) {
    if (k->t == TK_EOF) jj_raise(P->f, k->line, k->col, "%s (at the end of the template)", msg);
    jj_raise(P->f, k->line, k->col, "%s near '%.*s'", msg, (int)(k->s.len > 30 ? 30 : k->s.len), k->s.p);
}

static int is_op(const jj_tok *k, const char *op) { return k->t == TK_OP && jj_str_eq(k->s, op); }
static int is_name(const jj_tok *k, const char *name) { return k->t == TK_NAME && jj_str_eq(k->s, name); }

static void expect_op(parser *P, const char *op) {
    if (!is_op(peek(P), op)) {
        char msg[64];
        snprintf(msg, sizeof msg, "expected '%s'", op);
        fail_at(P, peek(P), msg);
    }
    next(P);
}

static void expect_close(parser *P, jj_tok_type t) {
    if (peek(P)->t != t) fail_at(P, peek(P), t == TK_CLOSE_STMT ? "expected '%}'" : "expected '}}'");
    next(P);
}

static jj_node *node(parser *P, jj_kind kind, const jj_tok *at) {
    jj_node *n = jj_alloc(&P->t->arena, sizeof *n);
    if (!n) jj_raise(P->f, at->line, at->col, "template too large");
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->line = at->line;
    n->col = at->col;
    return n;
}

/* A growable array of nodes in the arena. */
typedef struct {
    jj_node **items;
    int n, cap;
} node_vec;

static void vec_push(parser *P, node_vec *v, jj_node *x) {
    if (v->n == v->cap) {
        int cap = v->cap ? 2 * v->cap : 4;
        jj_node **g = jj_alloc(&P->t->arena, sizeof *g * (size_t)cap);
        if (!g) jj_raise(P->f, x->line, x->col, "template too large");
        if (v->n) memcpy(g, v->items, sizeof *g * (size_t)v->n);
        v->items = g;
        v->cap = cap;
    }
    v->items[v->n++] = x;
}

static jj_node *parse_expr(parser *P);
static jj_node *parse_or(parser *P);
static jj_node *parse_unary(parser *P);

static void enter(parser *P) {
    if (++P->depth > MAX_NESTING) fail_at(P, peek(P), "expression nested too deeply");
}

/* Call arguments after '(' up to ')': positional and name=value. */
static void parse_args(parser *P, jj_node *call) {
    node_vec args = {0};
    while (!is_op(peek(P), ")")) {
        const jj_tok *k = peek(P);
        jj_node *arg;
        if (k->t == TK_NAME && is_op(&P->toks[P->pos + 1 < P->n ? P->pos + 1 : P->pos], "=")) {
            next(P);
            next(P);
            arg = node(P, E_KWARG, k);
            arg->name = k->s;
            arg->a = parse_expr(P);
        } else {
            arg = parse_expr(P);
        }
        vec_push(P, &args, arg);
        if (!is_op(peek(P), ",")) break;
        next(P);
    }
    expect_op(P, ")");
    call->kids = args.items;
    call->n_kids = args.n;
}

static jj_node *parse_list_like(parser *P, const jj_tok *open, jj_kind kind, const char *close) {
    jj_node *n = node(P, kind, open);
    node_vec items = {0};
    while (!is_op(peek(P), close)) {
        vec_push(P, &items, parse_expr(P));
        if (kind == E_DICT) {
            expect_op(P, ":");
            vec_push(P, &items, parse_expr(P));
        }
        if (!is_op(peek(P), ",")) break;
        next(P);
    }
    expect_op(P, close);
    n->kids = items.items;
    n->n_kids = items.n;
    return n;
}

static jj_node *parse_primary(parser *P) {
    const jj_tok *k = next(P);
    jj_node *n;
    switch (k->t) {
    case TK_STR: {
        n = node(P, E_LIT, k);
        n->lit = jv_str_ref(k->s.p, k->s.len);
        if (peek(P)->t == TK_STR) { /* adjacent literals concatenate */
            size_t total = k->s.len;
            int last = P->pos;
            while (P->toks[last].t == TK_STR) total += P->toks[last++].s.len;
            char *buf = jj_alloc(&P->t->arena, total + 1);
            if (!buf) fail_at(P, k, "template too large");
            memcpy(buf, k->s.p, k->s.len);
            size_t o = k->s.len;
            while (peek(P)->t == TK_STR) {
                const jj_tok *s = next(P);
                memcpy(buf + o, s->s.p, s->s.len);
                o += s->s.len;
            }
            n->lit = jv_str_ref(buf, o);
        }
        return n;
    }
    case TK_INT:
        n = node(P, E_LIT, k);
        n->lit = jv_int(k->i);
        return n;
    case TK_FLOAT:
        n = node(P, E_LIT, k);
        n->lit = jv_float(k->f);
        return n;
    case TK_NAME:
        n = node(P, E_LIT, k);
        if (is_name(k, "true") || is_name(k, "True")) n->lit = jv_bool(1);
        else if (is_name(k, "false") || is_name(k, "False")) n->lit = jv_bool(0);
        else if (is_name(k, "none") || is_name(k, "None")) n->lit = jv_none();
        else {
            n->kind = E_NAME;
            n->name = k->s;
        }
        return n;
    case TK_OP:
        if (jj_str_eq(k->s, "(")) {
            if (is_op(peek(P), ")")) { /* () : the empty tuple */
                next(P);
                return node(P, E_TUPLE, k);
            }
            jj_node *first = parse_expr(P);
            if (!is_op(peek(P), ",")) {
                expect_op(P, ")");
                return first;
            }
            n = node(P, E_TUPLE, k);
            node_vec items = {0};
            vec_push(P, &items, first);
            while (is_op(peek(P), ",")) {
                next(P);
                if (is_op(peek(P), ")")) break;
                vec_push(P, &items, parse_expr(P));
            }
            expect_op(P, ")");
            n->kids = items.items;
            n->n_kids = items.n;
            return n;
        }
        if (jj_str_eq(k->s, "[")) return parse_list_like(P, k, E_LIST, "]");
        if (jj_str_eq(k->s, "{")) return parse_list_like(P, k, E_DICT, "}");
        break;
    default: break;
    }
    fail_at(P, k, "unexpected token in an expression");
}

/* [a], [a:b], [a:b:c], [::-1] */
static jj_node *parse_subscript(parser *P, jj_node *obj, const jj_tok *open) {
    jj_node *parts[3] = {NULL, NULL, NULL};
    int n_colons = 0;
    while (!is_op(peek(P), "]")) {
        if (is_op(peek(P), ":")) {
            if (++n_colons > 2) fail_at(P, peek(P), "too many ':' in a slice");
            next(P);
            continue;
        }
        if (parts[n_colons]) fail_at(P, peek(P), "expected ']'");
        parts[n_colons] = parse_expr(P);
    }
    expect_op(P, "]");
    if (n_colons == 0 && !parts[0]) fail_at(P, open, "empty subscript");
    jj_node *n = node(P, n_colons ? E_SLICE : E_INDEX, open);
    n->a = obj;
    if (!n_colons) {
        n->b = parts[0];
        return n;
    }
    jj_node **kids = jj_alloc(&P->t->arena, sizeof *kids * 3);
    if (!kids) fail_at(P, open, "template too large");
    memcpy(kids, parts, sizeof parts);
    n->kids = kids;
    n->n_kids = 3;
    return n;
}

static jj_node *parse_postfix(parser *P) {
    jj_node *n = parse_primary(P);
    for (;;) {
        const jj_tok *k = peek(P);
        if (is_op(k, ".")) {
            next(P);
            const jj_tok *name = next(P);
            if (name->t != TK_NAME && name->t != TK_INT) fail_at(P, name, "expected an attribute name after '.'");
            jj_node *a = node(P, name->t == TK_INT ? E_INDEX : E_ATTR, k);
            a->a = n;
            if (name->t == TK_INT) {
                a->b = node(P, E_LIT, name);
                a->b->lit = jv_int(name->i);
            } else {
                a->name = name->s;
            }
            n = a;
        } else if (is_op(k, "[")) {
            next(P);
            n = parse_subscript(P, n, k);
        } else if (is_op(k, "(")) {
            next(P);
            jj_node *c = node(P, E_CALL, k);
            c->line = n->line; /* errors of a call point at what is called */
            c->col = n->col;
            c->a = n;
            parse_args(P, c);
            n = c;
        } else {
            return n;
        }
    }
}

/* name, optionally with (args); a filter's or test's name may be dotted in Jinja but not in chat templates. */
static jj_node *parse_named(parser *P, jj_kind kind, jj_node *operand) {
    const jj_tok *name = next(P);
    if (name->t != TK_NAME) fail_at(P, name, kind == E_FILTER ? "expected a filter name" : "expected a test name");
    jj_node *n = node(P, kind, name);
    n->a = operand;
    n->name = name->s;
    if (is_op(peek(P), "(")) {
        next(P);
        parse_args(P, n);
    } else if (kind == E_TEST) {
        /* a test with one argument and no parentheses: `x is divisibleby 3`, `x is sameas false` */
        const jj_tok *k = peek(P);
        int arg_start = k->t == TK_STR || k->t == TK_INT || k->t == TK_FLOAT ||
                        (k->t == TK_NAME && !is_name(k, "and") && !is_name(k, "or") && !is_name(k, "if") &&
                         !is_name(k, "else") && !is_name(k, "is") && !is_name(k, "in") && !is_name(k, "not") &&
                         !is_name(k, "recursive"));
        if (arg_start) {
            jj_node **kids = jj_alloc(&P->t->arena, sizeof *kids);
            if (!kids) fail_at(P, k, "template too large");
            kids[0] = parse_postfix(P);
            n->kids = kids;
            n->n_kids = 1;
        }
    }
    return n;
}

static jj_node *parse_filters_tests(parser *P, jj_node *n) {
    for (;;) {
        const jj_tok *k = peek(P);
        if (is_op(k, "|")) {
            next(P);
            n = parse_named(P, E_FILTER, n);
        } else if (is_name(k, "is")) {
            next(P);
            int negated = 0;
            if (is_name(peek(P), "not")) {
                next(P);
                negated = 1;
            }
            n = parse_named(P, E_TEST, n);
            n->op = negated;
        } else {
            return n;
        }
    }
}

static jj_node *parse_unary(parser *P) {
    enter(P);
    const jj_tok *k = peek(P);
    jj_node *n;
    if (is_op(k, "-") || is_op(k, "+")) {
        next(P);
        n = node(P, is_op(k, "-") ? E_NEG : E_POS, k);
        n->a = parse_unary(P);
    } else {
        n = parse_filters_tests(P, parse_postfix(P));
    }
    P->depth--;
    return n;
}

/* The left-associative binary levels, loosest first: or < and < (not) < comparisons and `in` < + - < ~ <
 * * / // % < **. Each level's operands are the next level's expressions; `not` (unary) sits between and and the
 * comparisons, unary - + below **. An operator is a symbol or a word (`in`, `and`, `or`). */
enum { LV_OR, LV_AND, LV_CMP, LV_ADD, LV_CONCAT, LV_MUL, LV_POW, N_LEVELS };

static const struct level {
    jj_kind kind; /* E_OR, E_AND or E_BIN (with op) */
    struct { const char *text; int word, op; } ops[8];
} levels[N_LEVELS] = {
    [LV_OR] = {E_OR, {{"or", 1, 0}}},
    [LV_AND] = {E_AND, {{"and", 1, 0}}},
    [LV_CMP] = {E_BIN, {{"==", 0, OP_EQ}, {"!=", 0, OP_NE}, {"<", 0, OP_LT}, {">", 0, OP_GT}, {"<=", 0, OP_LE},
                        {">=", 0, OP_GE}, {"in", 1, OP_IN}}},
    [LV_ADD] = {E_BIN, {{"+", 0, OP_ADD}, {"-", 0, OP_SUB}}},
    [LV_CONCAT] = {E_BIN, {{"~", 0, OP_CONCAT}}},
    [LV_MUL] = {E_BIN, {{"*", 0, OP_MUL}, {"/", 0, OP_DIV}, {"//", 0, OP_FLOORDIV}, {"%", 0, OP_MOD}}},
    [LV_POW] = {E_BIN, {{"**", 0, OP_POW}}},
};

static jj_node *parse_level(parser *P, int lv);

static jj_node *parse_not(parser *P) {
    const jj_tok *k = peek(P);
    if (is_name(k, "not")) {
        enter(P);
        next(P);
        jj_node *n = node(P, E_NOT, k);
        n->a = parse_not(P);
        P->depth--;
        return n;
    }
    return parse_level(P, LV_CMP);
}

/* An operand of level lv: the next level's expression. */
static jj_node *parse_operand(parser *P, int lv) {
    if (lv + 1 == N_LEVELS) return parse_unary(P);
    if (lv + 1 == LV_CMP) return parse_not(P);
    return parse_level(P, lv + 1);
}

/* The operator of level lv at the current token, consumed but for its last token (`not in`: `not`); -1 if none. */
static int level_op(parser *P, int lv) {
    const jj_tok *k = peek(P);
    for (int i = 0; i < 8 && levels[lv].ops[i].text; i++)
        if (levels[lv].ops[i].word ? is_name(k, levels[lv].ops[i].text) : is_op(k, levels[lv].ops[i].text))
            return levels[lv].ops[i].op;
    if (lv == LV_CMP && is_name(k, "not") && is_name(&P->toks[P->pos + 1 < P->n ? P->pos + 1 : P->pos], "in")) {
        next(P);
        return OP_NOT_IN;
    }
    return -1;
}

static jj_node *parse_level(parser *P, int lv) {
    jj_node *n = parse_operand(P, lv);
    for (;;) {
        const jj_tok *k = peek(P);
        int op = level_op(P, lv);
        if (op < 0) return n;
        next(P);
        jj_node *b = node(P, levels[lv].kind, k);
        b->op = op;
        b->a = n;
        b->b = parse_operand(P, lv);
        n = b;
    }
}

static jj_node *parse_or(parser *P) { return parse_level(P, LV_OR); }

/* x if cond [else y] */
static jj_node *parse_expr(parser *P) {
    enter(P);
    jj_node *n = parse_or(P);
    while (is_name(peek(P), "if")) {
        const jj_tok *k = next(P);
        jj_node *c = node(P, E_COND, k);
        c->a = n;
        c->b = parse_or(P);
        if (is_name(peek(P), "else")) {
            next(P);
            c->c = parse_or(P);
        }
        n = c;
    }
    P->depth--;
    return n;
}

/* ---------------------------------------------------------------- statements */

static int parse_block(parser *P, const char *const *stops, node_vec *out);

static int stop_index(const jj_tok *k, const char *const *stops) {
    for (int i = 0; stops && stops[i]; i++)
        if (is_name(k, stops[i])) return i;
    return -1;
}

static void set_body(jj_node *n, node_vec *v, int orelse) {
    if (orelse) {
        n->orelse = v->items;
        n->n_orelse = v->n;
    } else {
        n->body = v->items;
        n->n_body = v->n;
    }
}

static jj_node *parse_if(parser *P, const jj_tok *at) {
    static const char *const stops[] = {"elif", "else", "endif", NULL};
    jj_node *n = node(P, N_IF, at);
    n->a = parse_expr(P);
    expect_close(P, TK_CLOSE_STMT);
    node_vec body = {0};
    int which = parse_block(P, stops, &body);
    set_body(n, &body, 0);
    const jj_tok *k = next(P);
    if (which == 0) { /* elif: an if nested in the else branch */
        node_vec orelse = {0};
        vec_push(P, &orelse, parse_if(P, k));
        set_body(n, &orelse, 1);
        return n;
    }
    if (which == 1) {
        expect_close(P, TK_CLOSE_STMT);
        static const char *const end[] = {"endif", NULL};
        node_vec orelse = {0};
        parse_block(P, end, &orelse);
        set_body(n, &orelse, 1);
        next(P);
    }
    expect_close(P, TK_CLOSE_STMT);
    return n;
}

static jj_node *name_node(parser *P) {
    const jj_tok *k = next(P);
    if (k->t != TK_NAME) fail_at(P, k, "expected a name");
    jj_node *n = node(P, E_NAME, k);
    n->name = k->s;
    return n;
}

static jj_node *parse_for(parser *P, const jj_tok *at) {
    jj_node *n = node(P, N_FOR, at);
    node_vec targets = {0};
    int paren = is_op(peek(P), "(");
    if (paren) next(P);
    do {
        if (targets.n) next(P);
        vec_push(P, &targets, name_node(P));
    } while (is_op(peek(P), ","));
    if (paren) expect_op(P, ")");
    n->kids = targets.items;
    n->n_kids = targets.n;
    if (!is_name(peek(P), "in")) fail_at(P, peek(P), "expected 'in' in a for loop");
    next(P);
    n->a = parse_or(P);
    if (is_name(peek(P), "if")) {
        next(P);
        n->b = parse_expr(P);
    }
    if (is_name(peek(P), "recursive")) fail_at(P, peek(P), "recursive loops are not supported");
    expect_close(P, TK_CLOSE_STMT);
    static const char *const stops[] = {"else", "endfor", NULL};
    node_vec body = {0};
    int which = parse_block(P, stops, &body);
    set_body(n, &body, 0);
    next(P);
    if (which == 0) {
        expect_close(P, TK_CLOSE_STMT);
        static const char *const end[] = {"endfor", NULL};
        node_vec orelse = {0};
        parse_block(P, end, &orelse);
        set_body(n, &orelse, 1);
        next(P);
    }
    expect_close(P, TK_CLOSE_STMT);
    return n;
}

static jj_node *parse_set(parser *P, const jj_tok *at) {
    node_vec targets = {0};
    do {
        if (targets.n) next(P);
        jj_node *t = name_node(P);
        if (is_op(peek(P), ".")) { /* ns.attr */
            const jj_tok *dot = next(P);
            const jj_tok *attr = next(P);
            if (attr->t != TK_NAME) fail_at(P, attr, "expected an attribute name after '.'");
            jj_node *a = node(P, E_ATTR, dot);
            a->a = t;
            a->name = attr->s;
            t = a;
        }
        vec_push(P, &targets, t);
    } while (is_op(peek(P), ","));
    if (peek(P)->t == TK_CLOSE_STMT) { /* {% set x %}...{% endset %} */
        if (targets.n != 1 || targets.items[0]->kind != E_NAME) fail_at(P, peek(P), "a block set takes one name");
        next(P);
        jj_node *n = node(P, N_SET_BLOCK, at);
        n->kids = targets.items;
        n->n_kids = 1;
        static const char *const end[] = {"endset", NULL};
        node_vec body = {0};
        parse_block(P, end, &body);
        set_body(n, &body, 0);
        next(P);
        expect_close(P, TK_CLOSE_STMT);
        return n;
    }
    expect_op(P, "=");
    jj_node *n = node(P, N_SET, at);
    n->kids = targets.items;
    n->n_kids = targets.n;
    const jj_tok *k = peek(P);
    jj_node *value = parse_expr(P);
    if (is_op(peek(P), ",")) { /* set a, b = 1, 2 */
        jj_node *tuple = node(P, E_TUPLE, k);
        node_vec items = {0};
        vec_push(P, &items, value);
        while (is_op(peek(P), ",")) {
            next(P);
            vec_push(P, &items, parse_expr(P));
        }
        tuple->kids = items.items;
        tuple->n_kids = items.n;
        value = tuple;
    }
    n->a = value;
    expect_close(P, TK_CLOSE_STMT);
    return n;
}

/* (a, b=default, ...) of a macro or a call block */
static void parse_params(parser *P, jj_node *n) {
    node_vec params = {0};
    if (is_op(peek(P), "(")) {
        next(P);
        while (!is_op(peek(P), ")")) {
            jj_node *p = name_node(P);
            if (is_op(peek(P), "=")) {
                next(P);
                jj_node *kw = node(P, E_KWARG, &P->toks[P->pos]);
                kw->name = p->name;
                kw->a = parse_expr(P);
                p = kw;
            }
            vec_push(P, &params, p);
            if (!is_op(peek(P), ",")) break;
            next(P);
        }
        expect_op(P, ")");
    }
    n->kids = params.items;
    n->n_kids = params.n;
}

static jj_node *parse_macro(parser *P, const jj_tok *at) {
    jj_node *n = node(P, N_MACRO, at);
    n->name = name_node(P)->name;
    if (!is_op(peek(P), "(")) fail_at(P, peek(P), "expected '(' after the macro name");
    parse_params(P, n);
    expect_close(P, TK_CLOSE_STMT);
    static const char *const end[] = {"endmacro", NULL};
    node_vec body = {0};
    parse_block(P, end, &body);
    set_body(n, &body, 0);
    next(P);
    expect_close(P, TK_CLOSE_STMT);
    return n;
}

static jj_node *parse_call_block(parser *P, const jj_tok *at) {
    jj_node *n = node(P, N_CALL_BLOCK, at);
    parse_params(P, n);
    n->a = parse_expr(P);
    if (n->a->kind != E_CALL) fail_at(P, at, "a call block needs a macro call");
    expect_close(P, TK_CLOSE_STMT);
    static const char *const end[] = {"endcall", NULL};
    node_vec body = {0};
    parse_block(P, end, &body);
    set_body(n, &body, 0);
    next(P);
    expect_close(P, TK_CLOSE_STMT);
    return n;
}

static jj_node *parse_filter_block(parser *P, const jj_tok *at) {
    jj_node *n = node(P, N_FILTER_BLOCK, at);
    jj_node *f = parse_named(P, E_FILTER, NULL);
    while (is_op(peek(P), "|")) {
        next(P);
        f = parse_named(P, E_FILTER, f);
    }
    n->a = f;
    expect_close(P, TK_CLOSE_STMT);
    static const char *const end[] = {"endfilter", NULL};
    node_vec body = {0};
    parse_block(P, end, &body);
    set_body(n, &body, 0);
    next(P);
    expect_close(P, TK_CLOSE_STMT);
    return n;
}

static jj_node *parse_statement(parser *P) {
    const jj_tok *k = next(P);
    if (k->t != TK_NAME) fail_at(P, k, "expected a statement name after '{%'");
    if (is_name(k, "if")) return parse_if(P, k);
    if (is_name(k, "for")) return parse_for(P, k);
    if (is_name(k, "set")) return parse_set(P, k);
    if (is_name(k, "macro")) return parse_macro(P, k);
    if (is_name(k, "call")) return parse_call_block(P, k);
    if (is_name(k, "filter")) return parse_filter_block(P, k);
    if (is_name(k, "break") || is_name(k, "continue")) {
        jj_node *n = node(P, is_name(k, "break") ? N_BREAK : N_CONTINUE, k);
        expect_close(P, TK_CLOSE_STMT);
        return n;
    }
    if (is_name(k, "generation") || is_name(k, "endgeneration")) { /* HF's assistant-mask markers: no output */
        expect_close(P, TK_CLOSE_STMT);
        return NULL;
    }
    fail_at(P, k, "unknown or unsupported statement");
}

/* Statements up to one of `stops` (NULL: the end of the template). Returns the stop's index, with the cursor on
 * its name; -1 at the end. */
static int parse_block(parser *P, const char *const *stops, node_vec *out) {
    enter(P);
    for (;;) {
        const jj_tok *k = peek(P);
        if (k->t == TK_EOF) {
            if (stops) {
                char msg[80];
                snprintf(msg, sizeof msg, "missing {%% %s %%}", stops[0] && stops[1] && stops[2] ? stops[2]
                                                             : stops[0] && stops[1] ? stops[1] : stops[0]);
                fail_at(P, k, msg);
            }
            P->depth--;
            return -1;
        }
        if (k->t == TK_TEXT) {
            next(P);
            jj_node *n = node(P, N_TEXT, k);
            n->lit = jv_str_ref(k->s.p, k->s.len);
            vec_push(P, out, n);
        } else if (k->t == TK_OPEN_EXPR) {
            next(P);
            jj_node *n = node(P, N_OUTPUT, k);
            n->a = parse_expr(P);
            expect_close(P, TK_CLOSE_EXPR);
            vec_push(P, out, n);
        } else if (k->t == TK_OPEN_STMT) {
            next(P);
            int which = stop_index(peek(P), stops);
            if (which >= 0) {
                P->depth--;
                return which;
            }
            if (peek(P)->t == TK_NAME && (jj_str_eq(peek(P)->s, "endif") || jj_str_eq(peek(P)->s, "endfor") ||
                                          jj_str_eq(peek(P)->s, "else") || jj_str_eq(peek(P)->s, "elif") ||
                                          jj_str_eq(peek(P)->s, "endmacro") || jj_str_eq(peek(P)->s, "endset") ||
                                          jj_str_eq(peek(P)->s, "endcall") || jj_str_eq(peek(P)->s, "endfilter")))
                fail_at(P, peek(P), "unexpected end of block");
            jj_node *n = parse_statement(P);
            if (n) vec_push(P, out, n);
        } else {
            fail_at(P, k, "unexpected token");
        }
    }
}

void jj_parse(jj_template *t, jj_fail *f, const jj_tok *toks, int n_toks) {
    parser P = {.t = t, .f = f, .toks = toks, .n = n_toks};
    node_vec body = {0};
    parse_block(&P, NULL, &body);
    t->body = body.items;
    t->n_body = body.n;
}
