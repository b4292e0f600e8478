/* Request bodies of the OpenAI-compatible endpoints, parsed and checked into one struct (json-c).
 * Every check names the offending field (`param` of the OpenAI error object). Fields the server does not know are
 * ignored, as OpenAI's own clients send some. New request fields (e.g. `tools`) go in serve_params and in
 * parse_common / parse_chat of request.c. */
#ifndef JL_SERVE_REQUEST_H
#define JL_SERVE_REQUEST_H
#include "jielong/dataset.h"
#include "jielong/generate.h"
#include <json.h>

/* An error for the client: HTTP status, OpenAI type/code, message, and the field it is about ("" if none). */
typedef struct {
    int status;
    const char *type; /* "invalid_request_error", "authentication_error", "server_error", ... */
    const char *code; /* or NULL */
    char param[64];
    char message[320];
} serve_error;
void serve_error_set(serve_error *e, int status, const char *type, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#define SERVE_MAX_STOPS 4
#define SERVE_MAX_TOP_LOGPROBS 20
#define SERVE_MAX_N 16

typedef enum { SERVE_CHAT = 0, SERVE_COMPLETION } serve_kind;

typedef struct {
    serve_kind kind;
    char *model;          /* as sent, or NULL */
    int stream, include_usage;
    int n;                /* choices per prompt, 1..SERVE_MAX_N */
    int max_tokens;       /* -1: until the context is full */
    jl_sampler_params sampling;
    char *stops[SERVE_MAX_STOPS];
    int n_stops;
    int logprobs;         /* chat: bool; completions: the number of top logprobs (0..5) as `logprobs` = k */
    int top_logprobs;     /* alternatives per token, 0..SERVE_MAX_TOP_LOGPROBS */
    int echo;             /* completions: the prompt before the answer (and its logprobs) */
    int ignore_eos;       /* extension: keep going after <|eos|>/<|end|> (benchmarks) */
    jl_turn *turns;       /* chat: system/user/assistant messages (contents owned) */
    int n_turns;
    char **prompts;       /* completions: one or more prompts (owned) */
    int n_prompts;
    /* tool use (serve/tools.c): the client's function objects, one compact JSON a line (owned, or NULL);
     * tool_choice "none" / "auto" / "required" / a function's name; `tools` = calls are read from the answer;
     * `forced` = text the answer is made to start with (required: "<tool_call>", a named function:
     * "<tool_call>{"name":"X","arguments":"), owned or NULL */
    char *tool_specs;
    char tool_choice[80];
    int tools;
    char *forced;
} serve_params;

/* Parses a body (len bytes, must be one JSON object, valid UTF-8) for `kind`. On failure fills e (400). */
int serve_parse_request(const char *body, size_t len, serve_kind kind, serve_params *p, serve_error *e);
void serve_params_free(serve_params *p);

/* A deep copy of a chat request's parameters (for the next round of server-side tools). 0 when out of memory. */
int serve_params_copy(const serve_params *src, serve_params *dst);

/* The body as a JSON object (strict UTF-8, nothing after it), or NULL with e filled. */
json_object *serve_parse_json(const char *body, size_t len, serve_error *e);

#endif
