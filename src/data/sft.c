/* SFT conversations from JSONL: OpenAI "messages" lines and Alpaca lines, into one conversation type. */
#include "data/jsonl.h"
#include "data/pool.h"
#include "jielong/tools.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct jl_sft_set {
    jl_pool pool;            /* turns arrays and their strings */
    jl_conversation *convs;
    size_t n, cap;
};

const char *jl_role_name(jl_role role) {
    switch (role) {
    case JL_ROLE_SYSTEM: return "system";
    case JL_ROLE_USER: return "user";
    case JL_ROLE_ASSISTANT: return "assistant";
    case JL_ROLE_TOOL: return "tool";
    }
    return "?";
}

static int parse_role(const char *s, jl_role *role) {
    for (int r = JL_ROLE_SYSTEM; r <= JL_ROLE_TOOL; r++)
        if (!strcmp(s, jl_role_name((jl_role)r))) {
            *role = (jl_role)r;
            return 1;
        }
    return 0;
}

/* Copies validated turns (whose strings belong to json-c) into the set. */
static jl_status add_conversation(jl_sft_set *set, const jl_turn *turns, int n_turns) {
    if (set->n == set->cap) {
        size_t cap = set->cap ? 2 * set->cap : 256;
        jl_conversation *p = realloc(set->convs, sizeof *p * cap);
        if (!p) return jl_fail(JL_ERR_NOMEM, "out of memory");
        set->convs = p;
        set->cap = cap;
    }
    jl_turn *copy = jl_pool_alloc(&set->pool, sizeof *copy * (size_t)n_turns);
    if (!copy) return jl_fail(JL_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n_turns; i++) {
        copy[i].role = turns[i].role;
        copy[i].content = jl_pool_strndup(&set->pool, turns[i].content, strlen(turns[i].content));
        if (!copy[i].content) return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    set->convs[set->n++] = (jl_conversation){copy, n_turns};
    return JL_OK;
}

/* An assistant message's "tool_calls" as <tool_call>…</tool_call> text after its content (malloc'd in *owned). */
static jl_status tool_calls_text(json_object *calls, const char *where, const char *content, char **owned) {
    size_t bad;
    const char *why = "";
    jl_status st = jl_tool_calls_json_text(calls, content, owned, &bad, &why);
    if (st == JL_ERR_NOMEM) return jl_fail(st, "out of memory");
    if (st != JL_OK && bad == SIZE_MAX) return jl_fail(st, "%stool_calls: %s", where, why);
    if (st != JL_OK) return jl_fail(st, "%stool_calls[%zu].%s", where, bad, why);
    return JL_OK;
}

/* One message into turn; *owned receives a string made here (tool calls), for the caller to free. */
static jl_status check_turn(json_object *msg, int i, jl_turn *turn, char **owned) {
    char where[48];
    snprintf(where, sizeof where, "messages[%d].", i);
    if (!json_object_is_type(msg, json_type_object)) return jl_fail(JL_ERR_FORMAT, "messages[%d]: must be an object", i);
    const char *role;
    jl_status st = jl_json_string_field(msg, where, "role", &role, NULL);
    if (st != JL_OK) return st;
    if (!parse_role(role, &turn->role))
        return jl_fail(JL_ERR_FORMAT, "%srole: unknown role '%.40s' (system, user, assistant or tool)", where, role);
    if (turn->role == JL_ROLE_SYSTEM && i > 0)
        return jl_fail(JL_ERR_FORMAT, "%srole: a system turn must come first", where);
    json_object *calls = NULL, *content = NULL;
    if (turn->role == JL_ROLE_ASSISTANT && json_object_object_get_ex(msg, "tool_calls", &calls) && calls) {
        turn->content = "";
        if (json_object_object_get_ex(msg, "content", &content) && content &&
            (st = jl_json_string_field(msg, where, "content", &turn->content, NULL)) != JL_OK)
            return st;
        st = tool_calls_text(calls, where, turn->content, owned);
        if (st == JL_OK) turn->content = *owned;
        return st;
    }
    st = jl_json_string_field(msg, where, "content", &turn->content, NULL);
    if (st != JL_OK || turn->role == JL_ROLE_SYSTEM || turn->role == JL_ROLE_TOOL || !jl_blank(turn->content))
        return st;
    return jl_fail(JL_ERR_FORMAT, "%scontent: %s", where, turn->role == JL_ROLE_ASSISTANT ? "empty response" : "empty");
}

/* The top-level "tools" array as the <tools> block: one compact function object a line. */
static jl_status tools_block(json_object *tools, char **block) {
    *block = NULL;
    char *specs;
    size_t bad;
    const char *why = "";
    jl_status st = jl_tools_specs_json(tools, &specs, &bad, &why);
    if (st == JL_ERR_NOMEM) return jl_fail(st, "out of memory");
    if (st != JL_OK && bad == SIZE_MAX) return jl_fail(st, "tools: %s", why);
    if (st != JL_OK) return jl_fail(st, "tools[%zu]: %s", bad, why);
    *block = jl_tools_block(specs);
    free(specs);
    return *block ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory");
}

/* A system turn with the <tools> block at turns[0] (after the existing system text); *owned frees it. */
static jl_status add_tools_turn(json_object *tools, jl_turn *turns, size_t *n, char **owned) {
    char *block;
    jl_status st = tools_block(tools, &block);
    if (st != JL_OK) return st;
    int has_system = *n > 0 && turns[0].role == JL_ROLE_SYSTEM;
    const char *sys = has_system ? turns[0].content : "";
    size_t len = strlen(sys) + strlen(block) + 3;
    *owned = malloc(len);
    if (!*owned) {
        free(block);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    snprintf(*owned, len, "%s%s%s", sys, *sys ? "\n\n" : "", block);
    free(block);
    if (!has_system) {
        memmove(turns + 1, turns, sizeof *turns * *n);
        (*n)++;
    }
    turns[0] = (jl_turn){JL_ROLE_SYSTEM, *owned};
    return JL_OK;
}

static jl_status keep_messages(jl_sft_set *set, json_object *messages, json_object *tools) {
    if (!json_object_is_type(messages, json_type_array)) return jl_fail(JL_ERR_FORMAT, "messages: must be an array");
    size_t n = json_object_array_length(messages), n_msg = n;
    if (n == 0) return jl_fail(JL_ERR_FORMAT, "messages: empty");
    if (n > 100000) return jl_fail(JL_ERR_FORMAT, "messages: more than 100000 turns");
    jl_turn *turns = malloc(sizeof *turns * (n + 1));
    char **owned = calloc(n + 1, sizeof *owned);
    jl_status st = turns && owned ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory");
    int assistant_turns = 0;
    for (size_t i = 0; i < n && st == JL_OK; i++) {
        st = check_turn(json_object_array_get_idx(messages, i), (int)i, &turns[i], &owned[i]);
        if (st == JL_OK && turns[i].role == JL_ROLE_TOOL &&
            (i == 0 || (turns[i - 1].role != JL_ROLE_ASSISTANT && turns[i - 1].role != JL_ROLE_TOOL)))
            st = jl_fail(JL_ERR_FORMAT, "messages[%zu].role: a tool turn must follow an assistant turn", i);
        assistant_turns += st == JL_OK && turns[i].role == JL_ROLE_ASSISTANT;
    }
    if (st == JL_OK && assistant_turns == 0) st = jl_fail(JL_ERR_FORMAT, "messages: no assistant turn");
    if (st == JL_OK && tools) st = add_tools_turn(tools, turns, &n, &owned[n_msg]);
    if (st == JL_OK) st = add_conversation(set, turns, (int)n);
    for (size_t i = 0; owned && i <= n_msg; i++) free(owned[i]);
    free(owned);
    free(turns);
    return st;
}

/* Alpaca: user = instruction (+ blank line + input), assistant = output. */
static jl_status keep_alpaca(jl_sft_set *set, json_object *obj) {
    const char *instruction, *output, *input = "";
    size_t instruction_len, input_len = 0;
    jl_status st = jl_json_string_field(obj, "", "instruction", &instruction, &instruction_len);
    if (st == JL_OK && jl_blank(instruction)) st = jl_fail(JL_ERR_FORMAT, "instruction: empty");
    json_object *v;
    if (st == JL_OK && json_object_object_get_ex(obj, "input", &v) && v)
        st = jl_json_string_field(obj, "", "input", &input, &input_len);
    if (st == JL_OK) st = jl_json_string_field(obj, "", "output", &output, NULL);
    if (st == JL_OK && jl_blank(output)) st = jl_fail(JL_ERR_FORMAT, "output: empty response");
    if (st != JL_OK) return st;
    char *user = malloc(instruction_len + input_len + 3);
    if (!user) return jl_fail(JL_ERR_NOMEM, "out of memory");
    memcpy(user, instruction, instruction_len);
    size_t n = instruction_len;
    if (input_len) {
        memcpy(user + n, "\n\n", 2);
        memcpy(user + n + 2, input, input_len);
        n += 2 + input_len;
    }
    user[n] = '\0';
    jl_turn turns[2] = {{JL_ROLE_USER, user}, {JL_ROLE_ASSISTANT, output}};
    st = add_conversation(set, turns, 2);
    free(user);
    return st;
}

static jl_status keep_record(void *ctx, json_object *obj) {
    json_object *messages;
    json_object *tools = NULL;
    json_object_object_get_ex(obj, "tools", &tools);
    if (json_object_object_get_ex(obj, "messages", &messages)) return keep_messages(ctx, messages, tools);
    if (json_object_object_get_ex(obj, "instruction", NULL)) return keep_alpaca(ctx, obj);
    return jl_fail(JL_ERR_FORMAT, "messages: missing (neither a \"messages\" array nor an Alpaca \"instruction\")");
}

jl_status jl_sft_load(const char *path, const jl_jsonl_options *opt, jl_sft_set **out, jl_jsonl_stats *stats) {
    *out = NULL;
    jl_sft_set *set = calloc(1, sizeof *set);
    if (!set) return jl_fail(JL_ERR_NOMEM, "%s: out of memory", path);
    jl_status st = jl_jsonl_read(path, opt, stats, keep_record, set);
    if (st != JL_OK) {
        jl_sft_free(set);
        return st;
    }
    *out = set;
    return JL_OK;
}

size_t jl_sft_count(const jl_sft_set *set) { return set ? set->n : 0; }

jl_conversation jl_sft_get(const jl_sft_set *set, size_t i) {
    return (set && i < set->n) ? set->convs[i] : (jl_conversation){NULL, 0};
}

void jl_sft_free(jl_sft_set *set) {
    if (!set) return;
    jl_pool_free(&set->pool);
    free(set->convs);
    free(set);
}
