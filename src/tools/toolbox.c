/* The built-in tools (calculator, search over a jielong index, date) behind one call interface whose results are
 * always text: a failure, a timeout or bad arguments come back as "error: ...", for the model to read. */
#include "jielong/rag.h"
#include "jielong/tools.h"
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum { TOOL_CALCULATOR, TOOL_SEARCH, TOOL_DATE } tool_kind;

typedef struct {
    tool_kind kind;
    const char *name, *spec;
} builtin;

/* Short declarations: every conversation of `data tools` carries them, and a small model's context is short.
 * The arguments are {"expression": "..."} and {"query": "..."}; date takes none. */
static const builtin builtins[] = {
    {TOOL_CALCULATOR, "calculator", "{\"name\":\"calculator\",\"description\":\"exact arithmetic\"}"},
    {TOOL_SEARCH, "search", "{\"name\":\"search\",\"description\":\"search the documents\"}"},
    {TOOL_DATE, "date", "{\"name\":\"date\",\"description\":\"today's date\"}"},
};
#define N_BUILTINS ((int)(sizeof builtins / sizeof builtins[0]))

struct jl_toolbox {
    const builtin *tools[N_BUILTINS];
    int n;
    jl_index *index;
    int k, timeout_ms;
};

jl_status jl_toolbox_new(jl_toolbox **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return jl_fail(JL_ERR_NOMEM, "out of memory");
    (*out)->timeout_ms = 5000;
    (*out)->k = 3;
    return JL_OK;
}

void jl_toolbox_free(jl_toolbox *tb) { free(tb); }
int jl_toolbox_count(const jl_toolbox *tb) { return tb->n; }
void jl_toolbox_set_timeout(jl_toolbox *tb, int ms) { tb->timeout_ms = ms < 0 ? 0 : ms; }

static const builtin *find(const jl_toolbox *tb, const char *name) {
    for (int i = 0; i < tb->n; i++)
        if (!strcmp(tb->tools[i]->name, name)) return tb->tools[i];
    return NULL;
}

int jl_toolbox_has(const jl_toolbox *tb, const char *name) { return name && find(tb, name) != NULL; }

jl_status jl_toolbox_add(jl_toolbox *tb, const char *name, jl_index *index, int k) {
    for (int i = 0; i < N_BUILTINS; i++) {
        if (strcmp(builtins[i].name, name)) continue;
        if (builtins[i].kind == TOOL_SEARCH && !index)
            return jl_fail(JL_ERR_ARG, "tool search: needs an index (--rag DOCS.db)");
        if (find(tb, name)) return JL_OK;
        tb->tools[tb->n++] = &builtins[i];
        if (builtins[i].kind == TOOL_SEARCH) {
            tb->index = index;
            tb->k = k > 0 ? k : 3;
        }
        return JL_OK;
    }
    return jl_fail(JL_ERR_ARG, "unknown tool '%s' (built-in tools: calculator, search, date)", name);
}

jl_status jl_toolbox_add_list(jl_toolbox *tb, const char *names, jl_index *index, int k) {
    char name[64];
    for (const char *p = names; *p;) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n >= sizeof name) return jl_fail(JL_ERR_ARG, "tool list '%s': empty or too long name", names);
        memcpy(name, p, n);
        name[n] = '\0';
        jl_status st = jl_toolbox_add(tb, name, index, k);
        if (st != JL_OK) return st;
        p += n + (p[n] == ',');
    }
    return JL_OK;
}

char *jl_toolbox_specs(const jl_toolbox *tb) {
    size_t n = 1;
    for (int i = 0; i < tb->n; i++) n += strlen(tb->tools[i]->spec) + 1;
    char *s = malloc(n), *p = s;
    if (!s) return NULL;
    for (int i = 0; i < tb->n; i++) p += sprintf(p, "%s\n", tb->tools[i]->spec);
    *p = '\0';
    return s;
}

char *jl_tools_block(const char *specs) {
    size_t n = strlen(specs) + 32;
    char *s = malloc(n);
    if (s) snprintf(s, n, "<tools>\n%s</tools>", specs);
    return s;
}

/* The string argument `key` of a call, or NULL. */
static const char *string_arg(json_object *args, const char *key) {
    json_object *v;
    if (!args || !json_object_object_get_ex(args, key, &v) || !json_object_is_type(v, json_type_string)) return NULL;
    return json_object_get_string(v);
}

static char *printf_dup(const char *fmt, const char *a) {
    size_t n = strlen(fmt) + strlen(a) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, fmt, a);
    return s;
}

static int run_calculator(json_object *args, char **result) {
    const char *e = string_arg(args, "expression");
    if (!e) {
        *result = strdup("error: calculator needs {\"expression\": \"...\"}");
        return 1;
    }
    char buf[256];
    int bad = jl_calc_eval(e, buf, sizeof buf);
    *result = strdup(buf);
    return bad;
}

/* "[1] passage\n[2] passage" (passages on one line each) or "no results". */
static int run_search(jl_toolbox *tb, json_object *args, char **result) {
    const char *q = string_arg(args, "query");
    if (!q || !*q) {
        *result = strdup("error: search needs {\"query\": \"...\"}");
        return 1;
    }
    jl_hit *hits;
    int n;
    if (jl_index_query(tb->index, q, tb->k, JL_RANK_BM25, NULL, tb->timeout_ms, &hits, &n) != JL_OK) {
        *result = printf_dup("error: search failed: %s", jl_last_error());
        return 1;
    }
    size_t len = 16;
    for (int i = 0; i < n; i++) len += strlen(hits[i].text) + 16;
    char *s = malloc(len), *p = s;
    if (s) {
        *p = '\0';
        for (int i = 0; i < n; i++) {
            p += sprintf(p, "%s[%d] ", i ? "\n" : "", i + 1);
            for (const char *t = hits[i].text; *t; t++) *p++ = *t == '\n' ? ' ' : *t;
            *p = '\0';
        }
        if (n == 0) strcpy(s, "no results");
    }
    jl_hits_free(hits, n);
    *result = s;
    return 0;
}

static int run_date(char **result) {
    time_t t = time(NULL);
    struct tm tm;
    char buf[64];
    gmtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC (%A)", &tm);
    *result = strdup(buf);
    return 0;
}

int jl_toolbox_run(jl_toolbox *tb, const char *name, const char *arguments, char **result) {
    *result = NULL;
    const builtin *b = name ? find(tb, name) : NULL;
    int bad = 1;
    if (!b) {
        *result = printf_dup("error: unknown tool '%s'", name ? name : "");
        return *result ? 1 : -1;
    }
    json_object *args = arguments ? json_tokener_parse(arguments) : NULL;
    if (b->kind == TOOL_CALCULATOR) bad = run_calculator(args, result);
    else if (b->kind == TOOL_SEARCH) bad = run_search(tb, args, result);
    else bad = run_date(result);
    json_object_put(args);
    return *result ? bad : -1;
}
