/* Parsing and checking of /v1/chat/completions and /v1/completions bodies (see request.h). */
#include "serve/request.h"
#include "serve/serve_tools.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void serve_error_set(serve_error *e, int status, const char *type, const char *param, const char *fmt, ...) {
    e->status = status;
    e->type = type;
    e->code = NULL;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

/* A 400 about `param`; returns 0 so checks read `return BAD(...)`. */
static int bad(serve_error *e, const char *param, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(serve_error *e, const char *param, const char *fmt, ...) {
    char msg[sizeof e->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    serve_error_set(e, 400, "invalid_request_error", param, "%s", msg);
    return 0;
}
#define BAD(param, ...) bad(e, param, __VA_ARGS__)

json_object *serve_parse_json(const char *body, size_t len, serve_error *e) {
    if (len == 0) return BAD("", "the request body is empty: a JSON object is expected"), NULL;
    json_tokener *tk = json_tokener_new();
    if (!tk) return serve_error_set(e, 500, "server_error", "", "out of memory"), NULL;
    json_tokener_set_flags(tk, JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tk, body, (int)len);
    enum json_tokener_error err = json_tokener_get_error(tk);
    size_t used = json_tokener_get_parse_end(tk);
    if (o && err == json_tokener_success) /* only white space may follow */
        while (used < len && strchr(" \t\r\n", body[used])) used++;
    if (!o || err != json_tokener_success || used != len) {
        if (err == json_tokener_continue) BAD("", "the JSON body is truncated");
        else if (err != json_tokener_success) BAD("", "the body is not valid JSON: %s", json_tokener_error_desc(err));
        else BAD("", "the body has text after its JSON value (at byte %zu)", used);
        json_object_put(o);
        o = NULL;
    } else if (!json_object_is_type(o, json_type_object)) {
        BAD("", "the body must be a JSON object");
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tk);
    return o;
}

/* ---------------------------------------------------------------- typed fields */

static json_object *field(json_object *o, const char *name) {
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null)) return NULL;
    return v;
}

/* 1 if absent or valid (then *out set when present); 0 with e filled otherwise. */
static int get_bool(json_object *o, const char *name, int *out, serve_error *e) {
    json_object *v = field(o, name);
    if (!v) return 1;
    if (!json_object_is_type(v, json_type_boolean)) return BAD(name, "'%s' must be a boolean", name);
    *out = json_object_get_boolean(v);
    return 1;
}

static int get_int(json_object *o, const char *name, long long lo, long long hi, long long *out, serve_error *e) {
    json_object *v = field(o, name);
    if (!v) return 1;
    if (!json_object_is_type(v, json_type_int)) return BAD(name, "'%s' must be an integer", name);
    long long x = (long long)json_object_get_int64(v);
    if (x < lo || x > hi) return BAD(name, "'%s' is %lld: must be in [%lld, %lld]", name, x, lo, hi);
    *out = x;
    return 1;
}

static int get_num(json_object *o, const char *name, double lo, double hi, int lo_open, float *out, serve_error *e) {
    json_object *v = field(o, name);
    if (!v) return 1;
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
        return BAD(name, "'%s' must be a number", name);
    double x = json_object_get_double(v);
    if (!(x >= lo && x <= hi) || (lo_open && x == lo))
        return BAD(name, "'%s' is %g: must be in %s%g, %g]", name, x, lo_open ? "(" : "[", lo, hi);
    *out = (float)x;
    return 1;
}

static char *dup_string(json_object *v) {
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, s, n);
        c[n] = '\0';
    }
    return c;
}

static int get_stops(json_object *o, serve_params *p, serve_error *e) {
    json_object *v = field(o, "stop");
    if (!v) return 1;
    if (json_object_is_type(v, json_type_string)) {
        if (json_object_get_string_len(v) == 0) return 1;
        p->stops[p->n_stops++] = dup_string(v);
        return 1;
    }
    if (!json_object_is_type(v, json_type_array)) return BAD("stop", "'stop' must be a string or a list of strings");
    size_t n = json_object_array_length(v);
    if (n > SERVE_MAX_STOPS) return BAD("stop", "'stop' has %zu strings: at most %d", n, SERVE_MAX_STOPS);
    for (size_t i = 0; i < n; i++) {
        json_object *s = json_object_array_get_idx(v, i);
        if (!json_object_is_type(s, json_type_string)) return BAD("stop", "'stop[%zu]' must be a string", i);
        if (json_object_get_string_len(s) > 0) p->stops[p->n_stops++] = dup_string(s);
    }
    return 1;
}

/* Fields both endpoints share. */
static int parse_common(json_object *o, serve_params *p, serve_error *e) {
    jl_sampler_params *sp = &p->sampling;
    jl_sampler_defaults(sp);
    sp->temperature = 1.0f; /* OpenAI's defaults */
    sp->top_p = 1.0f;
    sp->penalty_last_n = 0;
    sp->seed = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20);
    p->n = 1;
    p->max_tokens = -1;
    json_object *model = field(o, "model");
    if (model && !json_object_is_type(model, json_type_string)) return BAD("model", "'model' must be a string");
    if (model) p->model = dup_string(model);
    long long n = 1, max_tokens = -1, top_k = 0, seed = -1;
    if (!get_bool(o, "stream", &p->stream, e) || !get_bool(o, "ignore_eos", &p->ignore_eos, e) ||
        !get_int(o, "n", 1, SERVE_MAX_N, &n, e) || !get_int(o, "max_tokens", 0, 1 << 24, &max_tokens, e) ||
        !get_int(o, "max_completion_tokens", 0, 1 << 24, &max_tokens, e) || !get_int(o, "top_k", 0, 1 << 24, &top_k, e) ||
        !get_int(o, "seed", -(1LL << 62), 1LL << 62, &seed, e) ||
        !get_num(o, "temperature", 0.0, 2.0, 0, &sp->temperature, e) || !get_num(o, "top_p", 0.0, 1.0, 1, &sp->top_p, e) ||
        !get_num(o, "min_p", 0.0, 0.999, 0, &sp->min_p, e) ||
        !get_num(o, "presence_penalty", -2.0, 2.0, 0, &sp->presence_penalty, e) ||
        !get_num(o, "frequency_penalty", -2.0, 2.0, 0, &sp->frequency_penalty, e) ||
        !get_num(o, "repetition_penalty", 0.0, 10.0, 1, &sp->repetition_penalty, e) || !get_stops(o, p, e))
        return 0;
    p->n = (int)n;
    p->max_tokens = (int)max_tokens;
    sp->top_k = (int)top_k;
    if (seed != -1) sp->seed = (uint64_t)seed;
    json_object *so = field(o, "stream_options");
    if (so && !json_object_is_type(so, json_type_object)) return BAD("stream_options", "'stream_options' must be an object");
    if (so && !get_bool(so, "include_usage", &p->include_usage, e)) return 0;
    return 1;
}

static int parse_role(const char *s, jl_role *r) {
    if (strcmp(s, "system") == 0 || strcmp(s, "developer") == 0) *r = JL_ROLE_SYSTEM;
    else if (strcmp(s, "user") == 0) *r = JL_ROLE_USER;
    else if (strcmp(s, "assistant") == 0) *r = JL_ROLE_ASSISTANT;
    else if (strcmp(s, "tool") == 0) *r = JL_ROLE_TOOL;
    else return 0;
    return 1;
}

/* A message's content: a string, or a list of {"type":"text","text":...} parts (joined). */
static char *message_content(json_object *c, size_t i, serve_error *e) {
    char param[64];
    snprintf(param, sizeof param, "messages[%zu].content", i);
    if (!c) return BAD(param, "'%s' is missing", param), NULL;
    if (json_object_is_type(c, json_type_string)) return dup_string(c);
    if (!json_object_is_type(c, json_type_array)) return BAD(param, "'%s' must be a string or a list of text parts", param), NULL;
    size_t total = 1, n = json_object_array_length(c);
    for (size_t k = 0; k < n; k++) {
        json_object *part = json_object_array_get_idx(c, k), *type = NULL, *text = NULL;
        if (!json_object_is_type(part, json_type_object) || !(type = field(part, "type")) ||
            !json_object_is_type(type, json_type_string) || strcmp(json_object_get_string(type), "text") != 0 ||
            !(text = field(part, "text")) || !json_object_is_type(text, json_type_string))
            return BAD(param, "'%s[%zu]' must be {\"type\":\"text\",\"text\":\"...\"} (only text is supported)", param, k), NULL;
        total += (size_t)json_object_get_string_len(text);
    }
    char *out = malloc(total), *w = out;
    if (!out) return serve_error_set(e, 500, "server_error", "", "out of memory"), NULL;
    for (size_t k = 0; k < n; k++) {
        json_object *text = field(json_object_array_get_idx(c, k), "text");
        memcpy(w, json_object_get_string(text), (size_t)json_object_get_string_len(text));
        w += json_object_get_string_len(text);
    }
    *w = '\0';
    return out;
}

static int parse_chat(json_object *o, serve_params *p, serve_error *e) {
    json_object *msgs = field(o, "messages");
    if (!msgs) return BAD("messages", "'messages' is required");
    if (!json_object_is_type(msgs, json_type_array)) return BAD("messages", "'messages' must be a list");
    size_t n = json_object_array_length(msgs);
    if (n == 0) return BAD("messages", "'messages' is empty");
    if (n > 4096) return BAD("messages", "'messages' has %zu entries: at most 4096", n);
    p->turns = calloc(n + 1, sizeof *p->turns); /* + a system turn for the tools */
    if (!p->turns) return serve_error_set(e, 500, "server_error", "", "out of memory"), 0;
    int has_user = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(msgs, i), *role;
        char param[64];
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (!json_object_is_type(m, json_type_object)) return BAD(param, "'%s' must be an object", param);
        snprintf(param, sizeof param, "messages[%zu].role", i);
        if (!(role = field(m, "role")) || !json_object_is_type(role, json_type_string))
            return BAD(param, "'%s' is required and must be a string", param);
        jl_role r;
        if (!parse_role(json_object_get_string(role), &r))
            return BAD(param, "'%s' is '%.40s': must be system, user, assistant or tool", param,
                       json_object_get_string(role));
        json_object *calls = r == JL_ROLE_ASSISTANT ? field(m, "tool_calls") : NULL, *cj = field(m, "content");
        char *content = calls && (!cj || json_object_is_type(cj, json_type_null)) ? strdup("")
                                                                                  : message_content(cj, i, e);
        if (!content) return 0;
        if (calls && !(content = serve_calls_text(calls, i, content, e))) return 0;
        p->turns[p->n_turns++] = (jl_turn){r, content};
        has_user |= r == JL_ROLE_USER;
    }
    if (!has_user) return BAD("messages", "'messages' has no user message to answer");
    if (!serve_parse_tools(o, p, e)) return 0;
    int lp = 0;
    long long top = 0;
    if (!get_bool(o, "logprobs", &lp, e) || !get_int(o, "top_logprobs", 0, SERVE_MAX_TOP_LOGPROBS, &top, e)) return 0;
    if (top > 0 && !lp) return BAD("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    p->logprobs = lp;
    p->top_logprobs = (int)top;
    return 1;
}

static int parse_completion(json_object *o, serve_params *p, serve_error *e) {
    json_object *pr = field(o, "prompt");
    if (!pr) return BAD("prompt", "'prompt' is required");
    size_t n = json_object_is_type(pr, json_type_array) ? json_object_array_length(pr) : 1;
    if (!json_object_is_type(pr, json_type_string) && !json_object_is_type(pr, json_type_array))
        return BAD("prompt", "'prompt' must be a string or a list of strings");
    if (n == 0 || n > SERVE_MAX_N) return BAD("prompt", "'prompt' has %zu strings: must be 1..%d", n, SERVE_MAX_N);
    p->prompts = calloc(n, sizeof *p->prompts);
    if (!p->prompts) return serve_error_set(e, 500, "server_error", "", "out of memory"), 0;
    for (size_t i = 0; i < n; i++) {
        json_object *s = json_object_is_type(pr, json_type_array) ? json_object_array_get_idx(pr, i) : pr;
        if (!json_object_is_type(s, json_type_string)) return BAD("prompt", "'prompt[%zu]' must be a string", i);
        p->prompts[p->n_prompts++] = dup_string(s);
    }
    long long lp = -1;
    if (!get_bool(o, "echo", &p->echo, e) || !get_int(o, "logprobs", 0, 5, &lp, e)) return 0;
    p->logprobs = lp >= 0;
    p->top_logprobs = lp > 0 ? (int)lp : 0;
    if (p->max_tokens < 0 && !field(o, "max_tokens")) p->max_tokens = 16; /* OpenAI's default for completions */
    if (p->max_tokens == 0 && !p->echo) return BAD("max_tokens", "'max_tokens' 0 is only allowed with 'echo'");
    if ((size_t)p->n * n > SERVE_MAX_N) return BAD("n", "%zu prompts × n %d choices: at most %d", n, p->n, SERVE_MAX_N);
    return 1;
}

int serve_parse_request(const char *body, size_t len, serve_kind kind, serve_params *p, serve_error *e) {
    memset(p, 0, sizeof *p);
    p->kind = kind;
    json_object *o = serve_parse_json(body, len, e);
    if (!o) return 0;
    int ok = parse_common(o, p, e) && (kind == SERVE_CHAT ? parse_chat(o, p, e) : parse_completion(o, p, e));
    if (ok && kind == SERVE_CHAT && p->max_tokens == 0) ok = BAD("max_tokens", "'max_tokens' must be at least 1");
    json_object_put(o);
    if (ok && jl_sampler_params_check(&p->sampling) != JL_OK) ok = BAD("", "%s", jl_last_error());
    if (!ok) serve_params_free(p);
    return ok;
}

void serve_params_free(serve_params *p) {
    free(p->model);
    for (int i = 0; i < p->n_stops; i++) free(p->stops[i]);
    for (int i = 0; i < p->n_turns; i++) free((char *)p->turns[i].content);
    free(p->turns);
    for (int i = 0; i < p->n_prompts; i++) free(p->prompts[i]);
    free(p->prompts);
    free(p->tool_specs);
    free(p->forced);
    memset(p, 0, sizeof *p);
}

static char *dup_or_null(const char *s, int *oom) {
    char *d = s ? strdup(s) : NULL;
    if (s && !d) *oom = 1;
    return d;
}

int serve_params_copy(const serve_params *src, serve_params *dst) {
    int oom = 0;
    *dst = *src;
    dst->model = dup_or_null(src->model, &oom);
    for (int i = 0; i < src->n_stops; i++) dst->stops[i] = dup_or_null(src->stops[i], &oom);
    dst->turns = calloc((size_t)src->n_turns + 1, sizeof *dst->turns);
    if (!dst->turns) {
        oom = 1;
        dst->n_turns = 0;
    }
    for (int i = 0; dst->turns && i < src->n_turns; i++)
        dst->turns[i] = (jl_turn){src->turns[i].role, dup_or_null(src->turns[i].content, &oom)};
    dst->prompts = NULL;
    dst->n_prompts = 0;
    dst->tool_specs = dup_or_null(src->tool_specs, &oom);
    dst->forced = dup_or_null(src->forced, &oom);
    if (oom) serve_params_free(dst);
    return !oom;
}
