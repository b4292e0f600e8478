/* Tool use in the server: see serve_tools.h. */
#include "serve/serve_tools.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bad(serve_error *e, const char *param, const char *msg, const char *detail) {
    serve_error_set(e, 400, "invalid_request_error", param, msg, detail);
    return 0;
}

/* The function object of a tools[] entry ({"type":"function","function":{...}} or the function itself). */
static json_object *function_of(json_object *t) {
    json_object *fn = NULL;
    if (json_object_is_type(t, json_type_object) && json_object_object_get_ex(t, "function", &fn)) return fn;
    return t;
}

static int has_name(json_object *fn, const char **name) {
    json_object *n;
    if (!json_object_is_type(fn, json_type_object) || !json_object_object_get_ex(fn, "name", &n) ||
        !json_object_is_type(n, json_type_string) || !json_object_get_string_len(n))
        return 0;
    *name = json_object_get_string(n);
    return 1;
}

static int parse_tool_choice(json_object *tc, serve_params *p, serve_error *e) {
    const char *name = NULL;
    if (json_object_is_type(tc, json_type_string)) {
        name = json_object_get_string(tc);
        if (strcmp(name, "none") && strcmp(name, "auto") && strcmp(name, "required"))
            return bad(e, "tool_choice", "'tool_choice' is '%.40s': none, auto, required or a function", name);
        snprintf(p->tool_choice, sizeof p->tool_choice, "%s", name);
    } else if (has_name(function_of(tc), &name)) {
        snprintf(p->tool_choice, sizeof p->tool_choice, "function:%.60s", name);
    } else {
        return bad(e, "tool_choice", "'tool_choice' must be none, auto, required or {\"type\":\"function\",%s}",
                   "\"function\":{\"name\":...}}");
    }
    return 1;
}

int serve_parse_tools(json_object *o, serve_params *p, serve_error *e) {
    json_object *tools = NULL, *tc = NULL;
    json_object_object_get_ex(o, "tools", &tools);
    json_object_object_get_ex(o, "tool_choice", &tc);
    snprintf(p->tool_choice, sizeof p->tool_choice, "auto");
    if (tc && !json_object_is_type(tc, json_type_null) && !parse_tool_choice(tc, p, e)) return 0;
    if (!tools || json_object_is_type(tools, json_type_null)) return 1;
    char *specs;
    size_t at;
    const char *why = "";
    jl_status st = jl_tools_specs_json(tools, &specs, &at, &why);
    if (st == JL_ERR_NOMEM) return serve_error_set(e, 500, "server_error", "", "out of memory"), 0;
    if (st != JL_OK && at == SIZE_MAX) return bad(e, "tools", "'tools' must be a list%s", "");
    if (st != JL_OK) {
        char param[48];
        snprintf(param, sizeof param, "tools[%zu]", at);
        return bad(e, param, "'%s' must be {\"type\":\"function\",\"function\":{\"name\":...}}", param);
    }
    p->tool_specs = specs;
    if (!strncmp(p->tool_choice, "function:", 9)) {
        char want[128];
        snprintf(want, sizeof want, "{\"name\":\"%s\"", p->tool_choice + 9);
        if (!strstr(specs, want)) return bad(e, "tool_choice", "'tool_choice' names '%.60s', which is not in 'tools'",
                                             p->tool_choice + 9);
    }
    return 1;
}

char *serve_calls_text(json_object *calls, size_t i, char *content, serve_error *e) {
    char param[64], *text = NULL;
    snprintf(param, sizeof param, "messages[%zu].tool_calls", i);
    size_t at;
    const char *why = "";
    jl_status st = jl_tool_calls_json_text(calls, content, &text, &at, &why);
    free(content);
    if (st == JL_ERR_NOMEM) serve_error_set(e, 500, "server_error", "", "out of memory");
    else if (st != JL_OK && at == SIZE_MAX) bad(e, param, "'%s' must be a non-empty list", param);
    else if (st != JL_OK) bad(e, param, "'%s' needs function objects with a name and JSON object arguments", param);
    return text;
}

int serve_params_finish_tools(serve_params *p, const char *server_specs) {
    if (!strcmp(p->tool_choice, "none") || (!p->tool_specs && !server_specs)) return 1;
    size_t len = (p->tool_specs ? strlen(p->tool_specs) : 0) + (server_specs ? strlen(server_specs) : 0);
    char *specs = malloc(len + 1);
    if (!specs) return 0;
    snprintf(specs, len + 1, "%s%s", p->tool_specs ? p->tool_specs : "", server_specs ? server_specs : "");
    char *block = jl_tools_block(specs);
    free(specs);
    if (!block) return 0;
    int has_system = p->n_turns > 0 && p->turns[0].role == JL_ROLE_SYSTEM;
    const char *sys = has_system ? p->turns[0].content : "";
    size_t n = strlen(sys) + strlen(block) + 3;
    char *text = malloc(n);
    if (!text) {
        free(block);
        return 0;
    }
    snprintf(text, n, "%s%s%s", sys, *sys ? "\n\n" : "", block);
    free(block);
    if (has_system) {
        free((char *)p->turns[0].content);
    } else { /* parse_chat left room for one more turn */
        memmove(p->turns + 1, p->turns, sizeof *p->turns * (size_t)p->n_turns);
        p->n_turns++;
    }
    p->turns[0] = (jl_turn){JL_ROLE_SYSTEM, text};
    p->tools = 1;
    if (!strcmp(p->tool_choice, "required") || !strncmp(p->tool_choice, "function:", 9)) {
        char forced[160];
        if (p->tool_choice[0] == 'r') snprintf(forced, sizeof forced, "<tool_call>");
        else snprintf(forced, sizeof forced, "<tool_call>{\"name\":\"%s\",\"arguments\":", p->tool_choice + 9);
        if (!(p->forced = strdup(forced))) return 0;
    }
    return 1;
}

/* forced + generated: the whole answer. */
static char *whole_answer(const serve_params *p, const char *text) {
    size_t n = (p->forced ? strlen(p->forced) : 0) + strlen(text) + 1;
    char *all = malloc(n);
    if (all) snprintf(all, n, "%s%s", p->forced ? p->forced : "", text);
    return all;
}

json_object *serve_tool_message(const serve_params *p, const char *text, unsigned long long id, const char **finish) {
    json_object *msg = json_object_new_object();
    json_object_object_add(msg, "role", json_object_new_string("assistant"));
    char *all = whole_answer(p, text);
    jl_tool_calls calls = {0};
    int ok = all && jl_tool_calls_parse(all, &calls) == JL_OK, valid = 0;
    for (int k = 0; ok && k < calls.n; k++) valid += calls.calls[k].error == NULL;
    if (!valid) { /* no usable call: the text as it is */
        json_object_object_add(msg, "content", json_object_new_string(all ? all : text));
    } else {
        json_object *arr = json_object_new_array();
        for (int k = 0; k < calls.n; k++) {
            if (calls.calls[k].error) continue;
            json_object *c = json_object_new_object(), *fn = json_object_new_object();
            char cid[64];
            snprintf(cid, sizeof cid, "call_%llu_%d", id, k);
            json_object_object_add(c, "id", json_object_new_string(cid));
            json_object_object_add(c, "type", json_object_new_string("function"));
            json_object_object_add(fn, "name", json_object_new_string(calls.calls[k].name));
            json_object_object_add(fn, "arguments", json_object_new_string(calls.calls[k].arguments));
            json_object_object_add(c, "function", fn);
            json_object_array_add(arr, c);
        }
        json_object_object_add(msg, "content", *calls.content ? json_object_new_string(calls.content) : NULL);
        json_object_object_add(msg, "tool_calls", arr);
        *finish = "tool_calls";
    }
    json_object_object_add(msg, "refusal", NULL);
    jl_tool_calls_free(&calls);
    free(all);
    return msg;
}

int serve_tools_round(const serve_params *p, const char *text, jl_toolbox *tb, serve_params *next) {
    if (!tb || !p->tools) return 0;
    char *all = whole_answer(p, text);
    jl_tool_calls calls = {0};
    if (!all || jl_tool_calls_parse(all, &calls) != JL_OK) {
        free(all);
        return -1;
    }
    int server = calls.n > 0;
    for (int k = 0; k < calls.n; k++) /* a malformed call is answered by the server too */
        server &= calls.calls[k].error != NULL || jl_toolbox_has(tb, calls.calls[k].name);
    int rc = 0;
    if (server && serve_params_copy(p, next)) {
        rc = 1;
        jl_turn *t = realloc(next->turns, sizeof *t * ((size_t)next->n_turns + (size_t)calls.n + 2));
        if (!t) {
            rc = -1;
        } else {
            next->turns = t;
            next->turns[next->n_turns++] = (jl_turn){JL_ROLE_ASSISTANT, all};
            all = NULL;
        }
        for (int k = 0; rc == 1 && k < calls.n; k++) {
            char *res = calls.calls[k].error ? strdup(calls.calls[k].error) : NULL;
            if (!calls.calls[k].error) jl_toolbox_run(tb, calls.calls[k].name, calls.calls[k].arguments, &res);
            if (!res) rc = -1;
            else next->turns[next->n_turns++] = (jl_turn){JL_ROLE_TOOL, res};
        }
        free(next->forced);
        next->forced = NULL;
        if (rc < 0) serve_params_free(next);
    } else if (server) {
        rc = -1;
    }
    free(all);
    jl_tool_calls_free(&calls);
    return rc;
}
