/* jielong serve: an OpenAI-compatible HTTP server (libmicrohttpd, one thread per connection) in front of the
 * batched engine (engine.h). Routes: GET / (the chat page), GET /health, GET /v1/models, GET /metrics,
 * POST /v1/chat/completions, POST /v1/completions (both with SSE streaming), POST /tokenize, POST /detokenize.
 * Errors are OpenAI error objects with their HTTP status. Library code: nothing printed; the CLI reports. */
#ifndef JL_SERVE_SERVE_H
#define JL_SERVE_SERVE_H
#include "jielong/generate.h"
#include <stddef.h>

typedef struct {
    const jl_model *model;     /* borrowed, with its adapter attached if any */
    const jl_qweights *qw;     /* or NULL */
    const jl_tokenizer *tok;
    const struct jl_chat_format *chat_format; /* the model's chat template (jl_chat_format_from_checkpoint), NULL = ours */
    const char *model_name;    /* the id /v1/models lists */
    const char *host;          /* "127.0.0.1" by default */
    int port;                  /* 0: any free port (serve_port tells which) */
    const char *api_key;       /* NULL: no authentication */
    int parallel;              /* KV slots (sequences decoded together) */
    int context;               /* positions per slot, 0 = the model's */
    int threads;               /* OpenMP threads of the engine, 0 = all */
    int max_queue;             /* requests waiting for a slot before 503 */
    int timeout_s;             /* idle connection timeout */
    double max_request_s;      /* wall-time limit of one request's generation (0 = none): then finish_reason "length" */
    size_t max_body;           /* bytes; larger bodies get 413 */
    int chunk;                 /* prompt tokens prefilled per step */
    struct jl_toolbox *tools;  /* built-in tools run by the server (jielong serve --tools), or NULL; borrowed */
    int max_tool_steps;        /* rounds of server-side tool calls per request */
    int bf16;                  /* 1: fp32 weights' batched products in bf16 (a bf16 copy; needs AVX512-BF16) */
} serve_opts;

void serve_opts_defaults(serve_opts *o);

typedef struct serve_server serve_server;
/* serve_listen + serve_ready with o's model. */
jl_status serve_start(const serve_opts *o, serve_server **out);
/* Listens (the model fields of o may be NULL): until serve_ready, /health answers 503 "loading model" and the API
 * 503 with Retry-After. */
jl_status serve_listen(const serve_opts *o, serve_server **out);
/* The model is loaded: starts the engine (the server keeps the borrowed pointers). */
jl_status serve_ready(serve_server *s, const jl_model *model, const jl_qweights *qw, const jl_tokenizer *tok,
                      const struct jl_chat_format *fmt, const char *model_name);
int serve_port(const serve_server *s);
/* Stops accepting, lets running requests finish for up to grace_s seconds (then cuts them), frees everything. */
void serve_stop(serve_server *s, double grace_s);

/* Constant-time comparison of a presented key with the expected one (1 = equal). */
int serve_key_equal(const char *given, size_t given_len, const char *want);

/* The chat page (src/serve/page.html, compiled in). */
extern const char serve_page_html[];
extern const size_t serve_page_html_len;

#endif
