/* Internals of the Jinja interpreter (src/template): arena, values, tokens, syntax tree, evaluator state.
 * Written from the Jinja template documentation for the subset Hugging Face chat templates use; the output
 * follows @huggingface/jinja (the renderer transformers.js uses) where Python Jinja and it differ.
 * Bounded: every render has a memory, output, loop-iteration and recursion budget; any template text gives an
 * output or a one-line error "LINE:COL: message" — never a crash. */
#ifndef JL_TEMPLATE_JINJA_H
#define JL_TEMPLATE_JINJA_H
#include "jielong/common.h"
#include "jielong/template.h"
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- arena */

typedef struct jj_chunk jj_chunk;
typedef struct {
    jj_chunk *head;
    size_t used, limit; /* bytes handed out, and the budget */
} jj_arena;

/* ---------------------------------------------------------------- values */

typedef enum { JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT, JV_NS, JV_MACRO, JV_FUNC } jv_type;

typedef struct jv_list jv_list;
typedef struct jv_dict jv_dict;
typedef struct jj_node jj_node;

typedef struct {
    const char *p;
    size_t len;
} jj_str;

typedef struct jv {
    jv_type t;
    union {
        int b;
        int64_t i;
        double f;
        jj_str s;
        jv_list *l;
        jv_dict *d;       /* JV_DICT and JV_NS */
        struct {
            const jj_node *node;      /* JV_MACRO: the macro (or call block) statement */
            struct jj_scope *scope;   /* where it was defined */
        } m;
        struct {
            int id;          /* builtin function or bound method */
            struct jv *self; /* bound object (arena), or NULL */
        } fn;
    } u;
} jv;

struct jv_list {
    jv *items;
    size_t n, cap;
    int tuple;
};

struct jv_dict {
    jj_str *keys;
    jv *vals;
    size_t n, cap;
    int msg; /* index of the chat message this dict is (spans of the chat renderer), or -1 */
};

/* ---------------------------------------------------------------- tokens and syntax tree */

typedef enum {
    TK_EOF, TK_TEXT, TK_OPEN_STMT, TK_CLOSE_STMT, TK_OPEN_EXPR, TK_CLOSE_EXPR, TK_NAME, TK_INT, TK_FLOAT, TK_STR,
    TK_OP /* punctuation or operator, text in s */
} jj_tok_type;

typedef struct {
    jj_tok_type t;
    jj_str s;
    int64_t i;
    double f;
    int line, col;
} jj_tok;

typedef enum {
    /* statements */
    N_TEXT, N_OUTPUT, N_IF, N_FOR, N_SET, N_SET_BLOCK, N_MACRO, N_CALL_BLOCK, N_FILTER_BLOCK, N_BREAK, N_CONTINUE,
    /* expressions */
    E_LIT, E_NAME, E_ATTR, E_INDEX, E_SLICE, E_CALL, E_FILTER, E_TEST, E_NEG, E_POS, E_NOT, E_BIN, E_AND, E_OR,
    E_COND, E_LIST, E_TUPLE, E_DICT, E_KWARG
} jj_kind;

/* One node. Children by kind:
 *  N_TEXT lit(str) · N_OUTPUT a · N_IF a=cond, body, orelse · N_FOR targets (names in kids), a=iter, b=filter,
 *  body, orelse · N_SET kids=targets (E_NAME / E_ATTR), a=value · N_SET_BLOCK kids=target, body · N_MACRO name,
 *  kids=params (E_NAME or E_KWARG with default), body · N_CALL_BLOCK a=call, kids=caller params, body ·
 *  N_FILTER_BLOCK a=filter (E_FILTER with a NULL operand), body
 *  E_LIT lit · E_NAME name · E_ATTR a, name · E_INDEX a, b · E_SLICE a, kids[0..2] (may be NULL) · E_CALL a, kids
 *  (args, E_KWARG for keywords) · E_FILTER a=operand, name, kids · E_TEST a, name, kids, op=1 for "is not" ·
 *  E_NEG/E_POS/E_NOT a · E_BIN op, a, b · E_AND/E_OR a, b · E_COND a=then, b=cond, c=else (may be NULL) ·
 *  E_LIST/E_TUPLE kids · E_DICT kids (key, value pairs) · E_KWARG name, a */
struct jj_node {
    jj_kind kind;
    int line, col, op;
    jv lit;
    jj_str name;
    jj_node *a, *b, *c;
    jj_node **kids;
    int n_kids;
    jj_node **body, **orelse;
    int n_body, n_orelse;
};

/* Binary operators (E_BIN op). */
enum { OP_ADD = 1, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_CONCAT, OP_EQ, OP_NE, OP_LT, OP_GT, OP_LE,
       OP_GE, OP_IN, OP_NOT_IN };

/* A parsed template: its arena holds the tree (and the preprocessed text the tokens point into). */
typedef struct jj_template {
    jj_arena arena;
    jj_node **body;
    int n_body;
} jj_template;

/* ---------------------------------------------------------------- errors */

/* Where a parse or render failed: filled before the longjmp back to the entry point. */
typedef struct {
    jmp_buf jmp;
    int line, col;
    char msg[300];
} jj_fail;

_Noreturn void jj_raise(jj_fail *f, int line, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---------------------------------------------------------------- arena API */

void jj_arena_init(jj_arena *a, size_t limit);
void jj_arena_free(jj_arena *a);
/* NULL when the budget is spent or malloc fails. */
void *jj_alloc(jj_arena *a, size_t n);

/* ---------------------------------------------------------------- lexer and parser */

/* Tokens of `text` (after the preprocessing @huggingface/jinja applies: one trailing newline dropped,
 * lstrip_blocks, trim_blocks), TK_EOF last. Raises on bad input. */
jj_tok *jj_lex(jj_arena *a, jj_fail *f, const char *text, size_t len, int *n_toks);
void jj_parse(jj_template *t, jj_fail *f, const jj_tok *toks, int n_toks);

/* ---------------------------------------------------------------- evaluator */

typedef struct jj_scope jj_scope;

/* Output span of one chat message: bytes written while a for-loop variable was that message's dict. */
typedef jl_template_span jj_msg_span;

typedef struct {
    char *p;
    size_t len, cap;
} jj_buf;

typedef struct jj_eval {
    jj_arena *arena;
    jj_fail *fail;
    jj_buf main;          /* the rendered text */
    jj_buf *out;          /* where output goes now: &main, or a macro's / block set's capture */
    size_t out_limit;     /* bytes any one buffer may hold */
    int depth, max_depth; /* macro calls and nested blocks */
    int64_t steps, max_steps;
    jj_scope *top;        /* the template's own scope (its parent holds the context variables) */
    int line, col;        /* the node being evaluated (for errors raised without a position) */
    int cur_msg;          /* chat message whose loop iteration is running, or -1 */
    jj_msg_span *spans;   /* n_msgs entries, or NULL */
    int n_msgs;
    int loop_ctl;         /* 1 break, 2 continue (pending) */
    const jv *caller;     /* {% call %}: the block, bound as `caller` in the macro called next */
} jj_eval;

/* Values */
jv jv_undef(void);
jv jv_none(void);
jv jv_bool(int b);
jv jv_int(int64_t i);
jv jv_float(double f);
jv jv_str(jj_eval *e, const char *p, size_t len); /* copies */
jv jv_str_ref(const char *p, size_t len);          /* borrows (static or arena text) */
jv jv_new_list(jj_eval *e, size_t cap);
jv jv_new_dict(jj_eval *e, size_t cap);
void jv_list_push(jj_eval *e, jv_list *l, jv v);
void jv_dict_set(jj_eval *e, jv_dict *d, jj_str key, jv v);
jv *jv_dict_get(const jv_dict *d, const char *key, size_t len);
int jv_truthy(const jv *v);
int jv_equal(const jv *a, const jv *b);
const char *jv_type_name(jv_type t);

/* Text of a value as {{ }} prints it (undefined and none print nothing). */
jj_str jv_to_text(jj_eval *e, const jv *v);
/* JSON text: tojson (indent < 0: none) and the printed form of lists and dicts (undef_as_null = 0). */
jj_str jv_to_json(jj_eval *e, const jv *v, int indent, int undef_as_null, int sort_keys);
/* A json-c value → a template value (context variables). */
struct json_object;
jv jv_from_json(jj_eval *e, struct json_object *o, int depth);

/* jj_buf: a growable byte buffer in the arena. */
void jj_buf_put(jj_eval *e, jj_buf *b, const char *s, size_t n);
jj_str jj_buf_str(jj_buf *b);

/* Builtins (jinja_builtins.c): filters, tests, global functions, methods of str/list/dict. The node gives the
 * error position. args/kwargs are evaluated already. */
typedef struct {
    jv *args;
    int n;
    jj_str *kw_names;
    jv *kw_vals;
    int n_kw;
} jj_args;

jv jj_filter(jj_eval *e, const jj_node *at, jj_str name, jv operand, const jj_args *a);
int jj_test(jj_eval *e, const jj_node *at, jj_str name, const jv *operand, const jj_args *a);
/* A global function by name (range, namespace, raise_exception, dict, strftime_now); found: 1 and *out. */
int jj_global_function(jj_str name, jv *out);
/* obj.name when name is a method of obj's type: a bound JV_FUNC; found: 1. */
int jj_method(jj_eval *e, const jv *obj, jj_str name, jv *out);
jv jj_call_builtin(jj_eval *e, const jj_node *at, const jv *fn, const jj_args *a);
/* Counts one unit of work; raises when the budget is spent. */
void jj_step(jj_eval *e, const jj_node *at);

int jj_str_eq(jj_str s, const char *lit);
/* Bytes of the JavaScript-\s whitespace character at s / ending at s+n, or 0. */
size_t jj_space_at(const char *s, size_t n);
size_t jj_space_before(const char *s, size_t n);

/* Renders t with the variables of `context` (a dict) into e->main (jinja_eval.c). */
void jj_render(jj_eval *e, const jj_template *t, jv context);
/* Calls a macro or a call block's caller with evaluated arguments; returns its output. */
jv jj_call_macro(jj_eval *e, const jj_node *at, const jv *macro, const jj_args *a);

#endif
