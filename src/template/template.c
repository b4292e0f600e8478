/* Public entry points of the Jinja interpreter: parse once, render many times, each render in its own arena. */
#include "template/jinja.h"
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#define PARSE_MEMORY (64u << 20)
#define RENDER_MEMORY (256u << 20)
#define OUTPUT_LIMIT (64u << 20)
#define MAX_STEPS 50000000
#define MAX_DEPTH 200

struct jl_template {
    jj_template t;
};

/* One line: control characters of the message (a quoted token, a raise_exception text) become spaces. */
static jl_status report(jj_fail *f, jl_status st) {
    for (char *p = f->msg; *p; p++)
        if ((unsigned char)*p < 0x20) *p = ' ';
    if (f->line > 0) return jl_fail(st, "template line %d, column %d: %s", f->line, f->col, f->msg);
    return jl_fail(st, "template: %s", f->msg);
}

jl_status jl_template_parse(const char *text, size_t len, jl_template **out) {
    *out = NULL;
    if (!text) return jl_fail(JL_ERR_ARG, "template: no text");
    jl_template *t = calloc(1, sizeof *t);
    if (!t) return jl_fail(JL_ERR_NOMEM, "out of memory");
    jj_arena_init(&t->t.arena, PARSE_MEMORY + 64 * (size_t)len);
    jj_fail f = {0};
    if (setjmp(f.jmp)) {
        jl_template_free(t);
        return report(&f, JL_ERR_FORMAT);
    }
    int n_toks;
    jj_tok *toks = jj_lex(&t->t.arena, &f, text, len, &n_toks);
    jj_parse(&t->t, &f, toks, n_toks);
    *out = t;
    return JL_OK;
}

void jl_template_free(jl_template *t) {
    if (!t) return;
    jj_arena_free(&t->t.arena);
    free(t);
}

/* The context object as a dict; the dicts of its "messages" list numbered 0.. for the spans. */
static jv context_value(jj_eval *e, json_object *ctx) {
    jv c = jv_from_json(e, ctx, 0);
    if (c.t != JV_DICT) jj_raise(e->fail, 0, 0, "the context must be a JSON object");
    jv *msgs = jv_dict_get(c.u.d, "messages", 8);
    if (msgs && msgs->t == JV_LIST)
        for (size_t i = 0; i < msgs->u.l->n; i++)
            if (msgs->u.l->items[i].t == JV_DICT) msgs->u.l->items[i].u.d->msg = (int)i;
    return c;
}

jl_status jl_template_render_ctx(const jl_template *t, json_object *context, jl_template_span *spans, int n_msgs,
                                 char **out, size_t *out_len) {
    *out = NULL;
    if (out_len) *out_len = 0;
    if (spans && n_msgs > 0) memset(spans, 0, sizeof *spans * (size_t)n_msgs);
    jj_arena arena;
    jj_arena_init(&arena, RENDER_MEMORY);
    jj_fail f = {0};
    jj_eval e = {.arena = &arena, .fail = &f, .out_limit = OUTPUT_LIMIT, .max_depth = MAX_DEPTH,
                 .max_steps = MAX_STEPS, .cur_msg = -1, .spans = spans, .n_msgs = spans ? n_msgs : 0};
    if (setjmp(f.jmp)) {
        if (f.line == 0) {
            f.line = e.line;
            f.col = e.col;
        }
        jj_arena_free(&arena);
        return report(&f, JL_ERR_ARG);
    }
    jv ctx = context ? context_value(&e, context) : jv_new_dict(&e, 0);
    jj_render(&e, &t->t, ctx);
    char *text = malloc(e.main.len + 1);
    if (!text) {
        jj_arena_free(&arena);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    if (e.main.len) memcpy(text, e.main.p, e.main.len);
    text[e.main.len] = '\0';
    if (out_len) *out_len = e.main.len;
    *out = text;
    jj_arena_free(&arena);
    return JL_OK;
}

jl_status jl_template_render_json(const jl_template *t, const char *context_json, char **out, size_t *out_len) {
    *out = NULL;
    json_object *ctx = NULL;
    if (context_json) {
        json_tokener *tk = json_tokener_new_ex(200);
        if (!tk) return jl_fail(JL_ERR_NOMEM, "out of memory");
        ctx = json_tokener_parse_ex(tk, context_json, (int)strlen(context_json));
        enum json_tokener_error err = json_tokener_get_error(tk);
        json_tokener_free(tk);
        if (err != json_tokener_success || !ctx || !json_object_is_type(ctx, json_type_object)) {
            json_object_put(ctx);
            return jl_fail(JL_ERR_FORMAT, "template context: not a JSON object");
        }
    }
    jl_status st = jl_template_render_ctx(t, ctx, NULL, 0, out, out_len);
    json_object_put(ctx);
    return st;
}

jl_status jl_template_render(const char *tmpl, size_t tmpl_len, const char *context_json, char **out,
                             size_t *out_len) {
    *out = NULL;
    jl_template *t;
    jl_status st = jl_template_parse(tmpl, tmpl_len, &t);
    if (st != JL_OK) return st;
    st = jl_template_render_json(t, context_json, out, out_len);
    jl_template_free(t);
    return st;
}
