/* <tool_call>{"name": ..., "arguments": {...}}</tool_call> in assistant text: found, parsed, validated, written. */
#include "jielong/tools.h"
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPEN_TAG "<tool_call>"
#define CLOSE_TAG "</tool_call>"

const char *const jl_tool_call_tokens[JL_TOOL_CALL_N_TOKENS] = {
    OPEN_TAG, CLOSE_TAG, "<tool_response>", "</tool_response>", "<tools>", "</tools>",
    "{\"name\":\"calculator\",\"arguments\":", "{\"name\":\"search\",\"arguments\":", "{\"name\":\"date\",\"arguments\":",
    "{\"expression\":\"", "{\"query\":\"", "\"}}",
};

static char *dup_error(const char *fmt, const char *detail) {
    char buf[256];
    snprintf(buf, sizeof buf, fmt, detail);
    return strdup(buf);
}

static const char *compact(json_object *o) {
    return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* Parses a whole JSON text (nothing but white space may follow); NULL with *why set otherwise. */
static json_object *parse_whole(const char *s, size_t n, const char **why) {
    json_tokener *tk = json_tokener_new();
    if (!tk) {
        *why = "out of memory";
        return NULL;
    }
    json_object *o = json_tokener_parse_ex(tk, s, (int)n);
    enum json_tokener_error err = json_tokener_get_error(tk);
    size_t used = json_tokener_get_parse_end(tk);
    json_tokener_free(tk);
    if (!o || err != json_tokener_success) {
        json_object_put(o);
        *why = err == json_tokener_continue ? "the JSON ends too early" : json_tokener_error_desc(err);
        return NULL;
    }
    while (used < n && strchr(" \t\r\n", s[used])) used++;
    if (used < n) {
        json_object_put(o);
        *why = "text after the JSON object";
        return NULL;
    }
    return o;
}

/* One call's JSON into name + compact arguments, or an error for the model. */
static void parse_call(const char *s, size_t n, jl_tool_call *c) {
    memset(c, 0, sizeof *c);
    const char *why = NULL;
    json_object *o = parse_whole(s, n, &why), *name, *args, *parsed = NULL;
    if (!o) {
        c->error = dup_error("error: malformed tool call: %s", why);
        return;
    }
    if (!json_object_is_type(o, json_type_object)) {
        c->error = strdup("error: malformed tool call: not a JSON object");
    } else if (!json_object_object_get_ex(o, "name", &name) || !json_object_is_type(name, json_type_string) ||
               !*json_object_get_string(name)) {
        c->error = strdup("error: malformed tool call: \"name\" must be a non-empty string");
    } else if (!json_object_object_get_ex(o, "arguments", &args)) {
        c->error = strdup("error: malformed tool call: \"arguments\" is missing");
    } else {
        if (json_object_is_type(args, json_type_string)) { /* OpenAI sends arguments as a JSON string */
            const char *t = json_object_get_string(args);
            args = parsed = parse_whole(t, strlen(t), &why);
        }
        if (!args || !json_object_is_type(args, json_type_object))
            c->error = strdup("error: malformed tool call: \"arguments\" must be a JSON object");
        else {
            c->name = strdup(json_object_get_string(name));
            c->arguments = strdup(compact(args));
        }
    }
    json_object_put(parsed);
    json_object_put(o);
}

static void append(char *dst, size_t *len, const char *s, size_t n) {
    memcpy(dst + *len, s, n);
    *len += n;
    dst[*len] = '\0';
}

static char *trimmed(const char *s) {
    while (*s && strchr(" \t\r\n", *s)) s++;
    size_t n = strlen(s);
    while (n && strchr(" \t\r\n", s[n - 1])) n--;
    char *r = malloc(n + 1);
    if (r) {
        memcpy(r, s, n);
        r[n] = '\0';
    }
    return r;
}

jl_status jl_tool_calls_parse(const char *text, jl_tool_calls *out) {
    memset(out, 0, sizeof *out);
    size_t tlen = strlen(text), clen = 0;
    char *content = malloc(tlen + 1);
    if (!content) return jl_fail(JL_ERR_NOMEM, "out of memory");
    content[0] = '\0';
    int cap = 0;
    for (const char *p = text;;) {
        const char *open = strstr(p, OPEN_TAG);
        append(content, &clen, p, open ? (size_t)(open - p) : strlen(p));
        if (!open) break;
        const char *body = open + strlen(OPEN_TAG), *close = strstr(body, CLOSE_TAG);
        size_t n = close ? (size_t)(close - body) : strlen(body);
        if (out->n == cap) {
            cap = cap ? 2 * cap : 4;
            jl_tool_call *c = realloc(out->calls, sizeof *c * (size_t)cap);
            if (!c) {
                free(content);
                jl_tool_calls_free(out);
                return jl_fail(JL_ERR_NOMEM, "out of memory");
            }
            out->calls = c;
        }
        jl_tool_call *c = &out->calls[out->n++];
        parse_call(body, n, c);
        if (!c->error && !c->name) c->error = strdup("error: out of memory");
        p = close ? close + strlen(CLOSE_TAG) : body + n;
    }
    out->content = trimmed(content);
    free(content);
    if (!out->content) {
        jl_tool_calls_free(out);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    return JL_OK;
}

void jl_tool_calls_free(jl_tool_calls *c) {
    for (int i = 0; i < c->n; i++) {
        free(c->calls[i].name);
        free(c->calls[i].arguments);
        free(c->calls[i].error);
    }
    free(c->calls);
    free(c->content);
    memset(c, 0, sizeof *c);
}

char *jl_tool_call_text(const char *name, const char *arguments) {
    json_object *o = json_object_new_object();
    const char *why;
    json_object *args = arguments ? parse_whole(arguments, strlen(arguments), &why) : json_object_new_object();
    if (!o || !args || !json_object_is_type(args, json_type_object)) { /* "[1]", "5": not arguments */
        json_object_put(o);
        json_object_put(args);
        return NULL;
    }
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "arguments", args);
    const char *js = compact(o);
    size_t n = strlen(OPEN_TAG) + strlen(js) + strlen(CLOSE_TAG) + 1;
    char *r = malloc(n);
    if (r) snprintf(r, n, "%s%s%s", OPEN_TAG, js, CLOSE_TAG);
    json_object_put(o);
    return r;
}

/* ---------------------------------------------------------------- the OpenAI request shapes */

/* The function object of a tools[] / tool_calls[] entry, with its non-empty name; NULL if it has none. */
static json_object *named_function(json_object *t, const char **name) {
    json_object *fn = t, *inner, *n;
    if (json_object_is_type(t, json_type_object) && json_object_object_get_ex(t, "function", &inner)) fn = inner;
    if (!json_object_is_type(fn, json_type_object) || !json_object_object_get_ex(fn, "name", &n) ||
        !json_object_is_type(n, json_type_string) || !json_object_get_string_len(n))
        return NULL;
    *name = json_object_get_string(n);
    return fn;
}

/* s + t into a grown s (NULL, s freed, when out of memory). */
static char *grow_append(char *s, size_t *len, const char *t) {
    const size_t n = strlen(t);
    char *g = realloc(s, *len + n + 1);
    if (!g) {
        free(s);
        return NULL;
    }
    memcpy(g + *len, t, n + 1);
    *len += n;
    return g;
}

jl_status jl_tools_specs_json(struct json_object *tools, char **specs, size_t *bad, const char **why) {
    *specs = NULL;
    *bad = SIZE_MAX;
    if (!json_object_is_type(tools, json_type_array)) return *why = "must be an array", JL_ERR_FORMAT;
    size_t len = 0;
    char *text = calloc(1, 1);
    for (size_t i = 0; text && i < json_object_array_length(tools); i++) {
        const char *name;
        json_object *fn = named_function(json_object_array_get_idx(tools, i), &name);
        if (!fn) {
            free(text);
            *bad = i;
            return *why = "needs a function object with a \"name\"", JL_ERR_FORMAT;
        }
        text = grow_append(text, &len, compact(fn));
        if (text) text = grow_append(text, &len, "\n");
    }
    if (!text) return JL_ERR_NOMEM;
    *specs = text;
    return JL_OK;
}

jl_status jl_tool_calls_json_text(struct json_object *calls, const char *content, char **text, size_t *bad,
                                  const char **why) {
    *text = NULL;
    *bad = SIZE_MAX;
    if (!json_object_is_type(calls, json_type_array) || json_object_array_length(calls) == 0)
        return *why = "must be a non-empty array", JL_ERR_FORMAT;
    size_t len = 0;
    char *out = grow_append(calloc(1, 1), &len, content);
    for (size_t i = 0; out && i < json_object_array_length(calls); i++) {
        const char *name;
        json_object *fn = named_function(json_object_array_get_idx(calls, i), &name), *args = NULL;
        if (!fn) {
            free(out);
            *bad = i;
            return *why = "function.name: missing, empty or not a string", JL_ERR_FORMAT;
        }
        json_object_object_get_ex(fn, "arguments", &args);
        const char *a = !args ? "{}" : json_object_is_type(args, json_type_string) ? json_object_get_string(args)
                                                                                   : compact(args);
        char *call = jl_tool_call_text(name, a);
        if (!call) {
            free(out);
            *bad = i;
            return *why = "function.arguments: not a JSON object", JL_ERR_FORMAT;
        }
        out = grow_append(out, &len, call);
        free(call);
    }
    if (!out) return JL_ERR_NOMEM;
    *text = out;
    return JL_OK;
}
