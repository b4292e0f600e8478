/* Tool use in /v1/chat/completions (issue 17): `tools` / `tool_choice` in requests, assistant `tool_calls` and
 * `role: "tool"` messages back, `tool_calls` in responses (finish_reason "tool_calls"), and built-in tools run by
 * the server itself (`jielong serve --tools`). The text format is the chat template's (include/jielong/tools.h). */
#ifndef JL_SERVE_SERVE_TOOLS_H
#define JL_SERVE_SERVE_TOOLS_H
#include "jielong/tools.h"
#include "serve/request.h"

/* `tools` and `tool_choice` of a chat request into p (400 naming the field on a bad one). */
int serve_parse_tools(json_object *o, serve_params *p, serve_error *e);
/* An assistant message's content (owned, consumed) followed by its `tool_calls` as <tool_call> text; NULL on a
 * bad call (400 about messages[i].tool_calls). */
char *serve_calls_text(json_object *calls, size_t i, char *content, serve_error *e);
/* Puts the <tools> block (the client's functions, then the server's built-ins) at the end of the system turn
 * (creating one) unless tool_choice is "none"; sets p->tools. 0 when out of memory. */
int serve_params_finish_tools(serve_params *p, const char *server_specs);

/* The answer of a tools request as the client sees it: content (or null) and tool_calls with ids
 * "call_<id>_<k>"; *finish becomes "tool_calls" when there are calls. `text` is the generated text. */
json_object *serve_tool_message(const serve_params *p, const char *text, unsigned long long id, const char **finish);

/* When `text` (a generated answer) asks for built-in tools of tb only, runs them and fills *next with the
 * conversation extended by the answer and the results (forced text cleared); returns 1. Returns 0 when there is
 * nothing for the server to run (no calls, or a call the client must run), -1 when out of memory. */
int serve_tools_round(const serve_params *p, const char *text, jl_toolbox *tb, serve_params *next);

#endif
