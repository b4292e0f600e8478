/* The chat template rendered to tokenizer-independent segments with trainable flags. */
#include "jielong/dataset.h"
#include <stdlib.h>
#include <string.h>

static const char *const special_names[JL_SPECIAL_COUNT] = {
    "<|bos|>", "<|eos|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>",
};

const char *jl_special_name(jl_special s) { return (s >= 0 && s < JL_SPECIAL_COUNT) ? special_names[s] : "?"; }

static int push(jl_segments *out, int special, const char *text, size_t len, int trainable) {
    if (out->n == out->cap) {
        size_t cap = out->cap ? 2 * out->cap : 16;
        jl_segment *p = realloc(out->items, sizeof *p * cap);
        if (!p) return 0;
        out->items = p;
        out->cap = cap;
    }
    out->items[out->n++] = (jl_segment){special, text, len, trainable, 0};
    return 1;
}

static int push_special(jl_segments *out, jl_special s, int trainable) {
    return push(out, (int)s, special_names[s], strlen(special_names[s]), trainable);
}

static jl_special role_token(jl_role role) {
    return role == JL_ROLE_SYSTEM                          ? JL_SPECIAL_SYSTEM
           : role == JL_ROLE_USER || role == JL_ROLE_TOOL ? JL_SPECIAL_USER
                                                          : JL_SPECIAL_ASSISTANT;
}

#define TOOL_OPEN "<tool_response>"
#define TOOL_CLOSE "</tool_response>"

/* <|role|>content<|end|>; only an assistant's content and closing <|end|> are trainable (when `train`).
 * A tool result is <|user|><tool_response>content</tool_response><|end|>, never trainable. */
static int push_turn(jl_segments *out, const jl_turn *t, int train) {
    int trainable = train && t->role == JL_ROLE_ASSISTANT, tool = t->role == JL_ROLE_TOOL;
    size_t len = strlen(t->content);
    return push_special(out, role_token(t->role), 0) &&
           (!tool || push(out, -1, TOOL_OPEN, strlen(TOOL_OPEN), 0)) &&
           (len == 0 || push(out, -1, t->content, len, trainable)) &&
           (!tool || push(out, -1, TOOL_CLOSE, strlen(TOOL_CLOSE), 0)) && push_special(out, JL_SPECIAL_END, trainable);
}

static jl_status render(const jl_conversation *conv, jl_segments *out, int n_turns, int train) {
    size_t start = out->n;
    int ok = push_special(out, JL_SPECIAL_BOS, 0);
    for (int i = 0; ok && i < n_turns; i++) ok = push_turn(out, &conv->turns[i], train);
    if (ok && !train) ok = push_special(out, JL_SPECIAL_ASSISTANT, 0);
    if (ok) return JL_OK;
    out->n = start;
    return jl_fail(JL_ERR_NOMEM, "chat template: out of memory");
}

static jl_status check_conversation(const jl_conversation *conv) {
    if (!conv || (conv->n_turns > 0 && !conv->turns) || conv->n_turns < 0)
        return jl_fail(JL_ERR_ARG, "chat template: no conversation");
    for (int i = 0; i < conv->n_turns; i++)
        if (!conv->turns[i].content || conv->turns[i].role < JL_ROLE_SYSTEM || conv->turns[i].role > JL_ROLE_TOOL)
            return jl_fail(JL_ERR_ARG, "chat template: turn %d has no content or an unknown role", i);
    return JL_OK;
}

jl_status jl_chat_render(const jl_conversation *conv, jl_segments *out) {
    jl_status st = check_conversation(conv);
    return st != JL_OK ? st : render(conv, out, conv->n_turns, 1);
}

jl_status jl_chat_render_generation(const jl_conversation *conv, jl_segments *out) {
    jl_status st = check_conversation(conv);
    if (st != JL_OK) return st;
    int n = conv->n_turns;
    if (n > 0 && conv->turns[n - 1].role == JL_ROLE_ASSISTANT) n--; /* the answer to generate */
    int has_user = 0;
    for (int i = 0; i < n; i++) has_user |= conv->turns[i].role == JL_ROLE_USER;
    if (!has_user) return jl_fail(JL_ERR_ARG, "chat template: nothing to answer (no user turn)");
    return render(conv, out, n, 0);
}

void jl_segments_clear(jl_segments *s) {
    for (size_t i = 0; i < s->n_owned; i++) free(s->owned[i]);
    s->n_owned = 0;
    s->n = 0;
}

void jl_segments_free(jl_segments *s) {
    jl_segments_clear(s);
    free(s->owned);
    free(s->items);
    memset(s, 0, sizeof *s);
}

char *jl_segments_text(const jl_segments *s) {
    size_t total = 1;
    for (size_t i = 0; i < s->n; i++) total += s->items[i].len;
    char *text = malloc(total), *p = text;
    if (!text) return NULL;
    for (size_t i = 0; i < s->n; i++) {
        memcpy(p, s->items[i].text, s->items[i].len);
        p += s->items[i].len;
    }
    *p = '\0';
    return text;
}

/* Our template in Jinja, for the files we export (GGUF, HF): it renders what the C renderer above renders, tool
 * turns too — a tool result as <|user|><tool_response>…</tool_response><|end|>, an assistant's OpenAI
 * `tool_calls` as <tool_call>{"name":…,"arguments":…}</tool_call> after its content, the `tools` list as the
 * <tools> block of the system turn (src/tools: jl_tools_block) — with JSON written compact by the `json` macro
 * (tojson's separators differ between Jinja implementations). tests/test_template.c and tests/test_tools.c
 * compare it with the C renderer. */
const char *jl_chat_template_jinja(void) {
    return "{% macro json(v) %}{% if v is mapping %}{{ '{' }}{% for k, x in v.items() %}{% if not loop.first %},{% endif %}{{ k | tojson }}:{{ json(x) }}{% endfor %}{{ '}' }}"
           "{% elif v is string or v is number or v is boolean or v is none %}{{ v | tojson }}{% else %}[{% for x in v %}{% if not loop.first %},{% endif %}{{ json(x) }}{% endfor %}]{% endif %}"
           "{% endmacro %}{{ bos_token }}"
           "{% set ns = namespace(tools='') %}"
           "{% if tools is defined and tools %}"
           "{% set ns.tools = '<tools>\\n' %}{% for t in tools %}"
           "{% set ns.tools = ns.tools ~ json(t.function if t.function is defined else t) ~ '\\n' %}{% endfor %}"
           "{% set ns.tools = ns.tools ~ '</tools>' %}{% if messages[0]['role'] != 'system' %}{{ '<|system|>' + ns.tools + '<|end|>' }}{% endif %}{% endif %}"
           "{% for message in messages %}"
           "{% if message['role'] == 'tool' %}{{ '<|user|><tool_response>' + message['content'] + '</tool_response><|end|>' }}"
           "{% elif message['role'] == 'system' and ns.tools %}{{ '<|system|>' + (message['content'] + '\\n\\n' if message['content'] else '') + ns.tools + '<|end|>' }}"
           "{% else %}{{ '<|' + message['role'] + '|>' }}{% if message['content'] %}{{ message['content'] }}{% endif %}{% if message['tool_calls'] is defined and message['tool_calls'] %}{% for c in message['tool_calls'] %}{% set f = c.function if c.function is defined else c %}{{ '<tool_call>{\"name\":' ~ json(f.name) ~ ',\"arguments\":' ~ (f.arguments if f.arguments is string else json(f.arguments if f.arguments is defined else {})) ~ '}</tool_call>' }}{% endfor %}{% endif %}{{ '<|end|>' }}{% endif %}{% endfor %}"
           "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";
}
