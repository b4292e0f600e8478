/* Tools the model can call, the tool-call format of the chat template, and the agent loop.
 *
 * Format (plain text, no new special tokens; see docs/DESIGN.md "Tools"):
 *   system turn   ...\n<tools>\n{"name":"calculator","description":...,"parameters":{...}}\n...</tools>
 *   assistant     <tool_call>{"name":"calculator","arguments":{"expression":"3*(4+5)"}}</tool_call>   (trainable)
 *   tool turn     <|user|><tool_response>27</tool_response><|end|>                                    (never trained)
 * An assistant message may hold several calls; the text outside the calls is kept as the message's content. */
#ifndef JIELONG_TOOLS_H
#define JIELONG_TOOLS_H
#include "jielong/common.h"
#include "jielong/generate.h"
#include <stddef.h>

/* ---- calculator: exact rational arithmetic on integers and decimals ---- */

/* Evaluates `expr`: numbers (integers or decimals, up to 36 digits), + - * / (also − × ÷), parentheses (ASCII
 * or full-width), unary minus, spaces. Exact: values are fractions of 128-bit integers. Writes the result to
 * out ("27", "-0.125", or for a non-terminating fraction "1/3 ≈ 0.333333333333") and returns 0; on an error
 * (syntax with its character position, division by zero, overflow, nesting deeper than 64) writes
 * "error: ..." and returns 1. out always ends with a NUL (cap ≥ 64 recommended). */
int jl_calc_eval(const char *expr, char *out, size_t cap);

/* ---- tool calls in assistant text ---- */

typedef struct {
    char *name;      /* NULL when the call was malformed */
    char *arguments; /* compact JSON object text; NULL when malformed */
    char *error;     /* why the call is malformed ("error: ..."), else NULL */
} jl_tool_call;

typedef struct {
    jl_tool_call *calls;
    int n;
    char *content;   /* the text outside the calls, trimmed (malloc'd, may be "") */
} jl_tool_calls;

/* Finds every <tool_call>...</tool_call> in text (an unterminated one runs to the end). Each is parsed as a JSON
 * object {"name": string, "arguments": object or a string holding one}; a malformed call is kept with its error,
 * so it can be reported back to the model. Returns JL_ERR_NOMEM only. */
jl_status jl_tool_calls_parse(const char *text, jl_tool_calls *out);
void jl_tool_calls_free(jl_tool_calls *c);
/* "<tool_call>{"name":NAME,"arguments":ARGS}</tool_call>" (malloc'd); ARGS is JSON object text ("{}" if NULL). */
char *jl_tool_call_text(const char *name, const char *arguments);

/* The tool-call syntax as pieces a tokenizer can hold whole (`tokenizer train --tool-tokens`: added tokens, not
 * special, so the text stays the JSON above and decodes as itself): the tags, each built-in tool's
 * `{"name":"N","arguments":`, its argument key and the `"}}` that closes a one-argument call. A calculator call is
 * then <tool_call> {"name":"calculator","arguments": {"expression":" 3 * ( 4 + 5 ) "}} </tool_call>. */
#define JL_TOOL_CALL_N_TOKENS 12
extern const char *const jl_tool_call_tokens[JL_TOOL_CALL_N_TOKENS];

/* The OpenAI request shapes, parsed once for SFT data (src/data/sft.c) and the server (src/serve/tools.c). On bad
 * input both return JL_ERR_FORMAT with *bad the index of the entry at fault (SIZE_MAX: the array itself) and *why
 * what is wrong with it; they set no error message (each caller names the field its own way); JL_ERR_NOMEM else.
 * tools[] ({"type":"function","function":{...}} or the function object itself, with a non-empty "name") as the
 * specs text: one compact function object a line (malloc'd). */
struct json_object;
jl_status jl_tools_specs_json(struct json_object *tools, char **specs, size_t *bad, const char **why);
/* An assistant message's tool_calls (a non-empty array of {"function":{"name","arguments"}}, arguments a JSON
 * object or a string holding one, absent = {}) appended to content as <tool_call> texts (malloc'd in *text). */
jl_status jl_tool_calls_json_text(struct json_object *calls, const char *content, char **text, size_t *bad,
                                  const char **why);

/* ---- tools ---- */

typedef struct jl_index jl_index;
typedef struct jl_toolbox jl_toolbox;

jl_status jl_toolbox_new(jl_toolbox **out);
void jl_toolbox_free(jl_toolbox *tb);
/* Adds a built-in tool: "calculator", "search" (needs index, borrowed; k passages per search) or "date".
 * Unknown names are JL_ERR_ARG naming the built-ins. */
jl_status jl_toolbox_add(jl_toolbox *tb, const char *name, jl_index *index, int k);
/* Adds every name of a comma-separated list. */
jl_status jl_toolbox_add_list(jl_toolbox *tb, const char *names, jl_index *index, int k);
int jl_toolbox_count(const jl_toolbox *tb);
int jl_toolbox_has(const jl_toolbox *tb, const char *name); /* 1 when the tool was added */
/* Limit for one call in milliseconds (search honours it inside SQLite); 0 = none. Default 5000. */
void jl_toolbox_set_timeout(jl_toolbox *tb, int ms);
/* The OpenAI function objects of the tools, one compact JSON object a line (malloc'd). */
char *jl_toolbox_specs(const jl_toolbox *tb);
/* The block appended to the system prompt: "<tools>\n" + specs + "</tools>" (malloc'd). */
char *jl_tools_block(const char *specs);
/* Runs one call. *result (malloc'd) is the tool's answer, or "error: ..." for an unknown tool, bad arguments,
 * a failure or a timeout; returns 1 when the result is an error, 0 otherwise, -1 when out of memory. */
int jl_toolbox_run(jl_toolbox *tb, const char *name, const char *arguments, char **result);

/* ---- the agent loop: answer → tool calls → results as tool turns → answer again ---- */

typedef struct {
    int steps;        /* rounds of tool calls run */
    int calls;        /* tool calls run (malformed ones included) */
    int errors;       /* calls whose result was an error */
    int step_limit;   /* 1: stopped at max_steps with calls still asked for */
    int tokens;       /* tokens generated over all rounds */
} jl_agent_result;

/* Called for each call with its result (is_error: the result is an "error: ..."). */
typedef void (*jl_agent_call_fn)(void *user, const jl_tool_call *call, const char *result, int is_error);

/* One user turn through the loop: generate; while the answer holds tool calls and fewer than max_steps rounds
 * ran, run each call (a malformed one gets its parse error as the result, an unknown tool or a failure an
 * error result), add the results as tool turns and generate again. cb streams every round's text; on_call
 * (may be NULL) sees each call. *answer (malloc'd, may be NULL) gets the last round's text. */
jl_status jl_agent_turn(jl_chat *chat, jl_toolbox *tb, const char *user_text, int max_steps, const jl_gen_opts *o,
                        jl_gen_callback cb, jl_agent_call_fn on_call, void *user, char **answer, jl_agent_result *res);

/* ---- data to teach tool use (jielong data tools) ---- */

typedef struct jl_poems jl_poems;
typedef struct {
    uint64_t seed;
    int calc;        /* calculator conversations (default 4000) */
    int search;      /* search conversations over train poems: author, second line, which poem (default 4000) */
    int eval;        /* held-out questions per task (default 200) */
    int k;           /* passages per search (default 3) */
    int no_specs;    /* 1: conversations without the "tools" listing (a model tuned on its tools needs no listing
                        in its system prompt: saves ~130 positions of a small context); default 0 */
    const char *index; /* the index search runs on; NULL: one built in memory from poems_path (fields
                          title,author,lines), as `jielong index build --fields title,author,lines` builds it */
} jl_tool_data_options;
void jl_tool_data_defaults(jl_tool_data_options *o);

typedef struct {
    size_t calc, author, line2, which;     /* SFT conversations written per task */
    size_t not_found;                      /* poem questions dropped: the search did not return the poem */
    size_t eval_calc, eval_author, eval_line2, eval_which;
} jl_tool_data_counts;

/* Writes DIR/tools_sft.jsonl (OpenAI-style conversations with "tools", assistant "tool_calls" and "tool" turns
 * whose results come from running the tools) and DIR/eval_tools.jsonl ({"prompt","task","expected",...}:
 * arithmetic, and questions about held-out poems with unique titles). Poems whose title is shared are left out. */
jl_status jl_tool_data_write(const jl_poems *poems, const char *poems_path, const char *dir,
                             const jl_tool_data_options *o, jl_tool_data_counts *counts);
/* 1 when answer holds expected as the task's evaluation requires: calc: the last number in the answer equals
 * expected; the poem tasks: expected appears in the answer. */
int jl_tool_answer_correct(const char *task, const char *answer, const char *expected);

#endif
