/* The HTTP side of jielong serve (see serve.h): routing, authentication, request bodies, OpenAI response and
 * chunk objects, Server-Sent Events, metrics. One libmicrohttpd thread per connection: a handler may block while
 * its job runs; a streaming response is a content reader that waits for the engine's next tokens. */
#include "serve/serve.h"
#include "serve/serve_tools.h"
#include "core/utf8.h"
#include "serve/engine.h"
#include <arpa/inet.h>
#include <microhttpd.h>
#include <poll.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { CODE_200, CODE_400, CODE_401, CODE_404, CODE_405, CODE_413, CODE_500, CODE_503, CODE_OTHER, N_CODES };
static const int code_values[N_CODES] = {200, 400, 401, 404, 405, 413, 500, 503, 0};

struct serve_server {
    serve_opts o;
    serve_engine *engine;
    struct MHD_Daemon *d;
    int port;
    atomic_int stopping;
    atomic_int ready;        /* the model is loaded and the engine runs (before: /health says 503 loading) */
    atomic_ullong requests[N_CODES];
    atomic_ullong next_id;
    atomic_ullong disconnects; /* non-streamed requests whose client left before the answer */
    atomic_int streams;        /* SSE responses not yet finished (serve_stop lets them send their end) */
};

void serve_opts_defaults(serve_opts *o) {
    *o = (serve_opts){.host = "127.0.0.1", .port = 8080, .parallel = 8, .max_queue = 64, .timeout_s = 600,
                      .max_body = 4u << 20, .chunk = 64, .model_name = "jielong"};
}

int serve_key_equal(const char *given, size_t given_len, const char *want) {
    const size_t want_len = strlen(want);
    unsigned diff = given_len != want_len;
    for (size_t i = 0; i < want_len; i++) diff |= (unsigned char)(i < given_len ? given[i] : 0) ^ (unsigned char)want[i];
    return diff == 0;
}

/* ---------------------------------------------------------------- responses */

static void count(serve_server *s, int status) {
    int k = CODE_OTHER;
    for (int i = 0; i < CODE_OTHER; i++)
        if (code_values[i] == status) k = i;
    atomic_fetch_add(&s->requests[k], 1);
}

static enum MHD_Result send_text(serve_server *s, struct MHD_Connection *c, int status, const char *type,
                                 const char *body, size_t len, const char *retry_after, const char *allow) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (retry_after) MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
    if (allow) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    count(s, status);
    return ret;
}

static const char *json_text(json_object *o, size_t *len) {
    return json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
}

static enum MHD_Result send_json(serve_server *s, struct MHD_Connection *c, int status, json_object *o) {
    size_t len;
    const char *t = json_text(o, &len);
    enum MHD_Result r = send_text(s, c, status, "application/json", t, len, NULL, NULL);
    json_object_put(o);
    return r;
}

static json_object *error_object(const serve_error *e) {
    json_object *err = json_object_new_object(), *o = json_object_new_object();
    json_object_object_add(err, "message", json_object_new_string(e->message));
    json_object_object_add(err, "type", json_object_new_string(e->type ? e->type : "invalid_request_error"));
    json_object_object_add(err, "param", e->param[0] ? json_object_new_string(e->param) : NULL);
    json_object_object_add(err, "code", e->code ? json_object_new_string(e->code) : NULL);
    json_object_object_add(o, "error", err);
    return o;
}

static enum MHD_Result send_error(serve_server *s, struct MHD_Connection *c, const serve_error *e, const char *allow) {
    json_object *o = error_object(e);
    size_t len;
    const char *t = json_text(o, &len);
    enum MHD_Result r = send_text(s, c, e->status, "application/json", t, len, e->status == 503 ? "1" : NULL, allow);
    json_object_put(o);
    return r;
}

static enum MHD_Result fail(serve_server *s, struct MHD_Connection *c, int status, const char *type, const char *code,
                            const char *allow, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static enum MHD_Result fail(serve_server *s, struct MHD_Connection *c, int status, const char *type, const char *code,
                            const char *allow, const char *fmt, ...) {
    serve_error e = {.status = status, .type = type, .code = code};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    return send_error(s, c, &e, allow);
}

/* ---------------------------------------------------------------- OpenAI objects */

/* A token's bytes as a JSON string: valid UTF-8 kept, a broken byte becomes U+FFFD (the exact bytes go in "bytes"). */
static json_object *token_string(const char *b, size_t n) {
    char *out = malloc(3 * n + 1);
    size_t o = 0;
    if (!out) return json_object_new_string("");
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = jl_utf8_decode(b + i, n - i, &cp);
        if (cp == JL_UTF8_INVALID) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
        } else {
            memcpy(out + o, b + i, k);
            o += k;
        }
        i += k;
    }
    json_object *s = json_object_new_string_len(out, (int)o);
    free(out);
    return s;
}

static json_object *token_bytes(const char *b, size_t n) {
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++) json_object_array_add(a, json_object_new_int((unsigned char)b[i]));
    return a;
}

static const char *tok_bytes(const jl_tokenizer *tok, int32_t id, size_t *n) {
    const char *b = jl_tokenizer_token(tok, id, n);
    if (!b) *n = 0;
    return b ? b : "";
}

/* Chat format: {"token","logprob","bytes","top_logprobs":[...]}. */
static json_object *chat_logprob_entry(const jl_tokenizer *tok, const serve_tok *t, int n_top) {
    json_object *o = json_object_new_object(), *tops = json_object_new_array();
    size_t n;
    const char *b = tok_bytes(tok, t->id, &n);
    json_object_object_add(o, "token", token_string(b, n));
    json_object_object_add(o, "logprob", json_object_new_double(t->logprob));
    json_object_object_add(o, "bytes", token_bytes(b, n));
    for (int i = 0; i < t->n_top && i < n_top; i++) {
        json_object *a = json_object_new_object();
        const char *tb = tok_bytes(tok, t->top_id[i], &n);
        json_object_object_add(a, "token", token_string(tb, n));
        json_object_object_add(a, "logprob", json_object_new_double(t->top_lp[i]));
        json_object_object_add(a, "bytes", token_bytes(tb, n));
        json_object_array_add(tops, a);
    }
    json_object_object_add(o, "top_logprobs", tops);
    return o;
}

/* Completions format, appended to the four parallel lists. */
typedef struct {
    json_object *tokens, *lps, *tops, *offsets;
    size_t offset;
} cmpl_logprobs;

static void cmpl_logprobs_init(cmpl_logprobs *l, size_t offset) {
    *l = (cmpl_logprobs){json_object_new_array(), json_object_new_array(), json_object_new_array(),
                         json_object_new_array(), offset};
}

static void cmpl_logprobs_add(cmpl_logprobs *l, const jl_tokenizer *tok, const serve_tok *t, int n_top, int null_lp) {
    size_t n;
    const char *b = tok_bytes(tok, t->id, &n);
    json_object_array_add(l->tokens, token_string(b, n));
    json_object_array_add(l->lps, null_lp ? NULL : json_object_new_double(t->logprob));
    json_object *top = json_object_new_object();
    for (int i = 0; i < t->n_top && i < n_top; i++) {
        size_t k;
        const char *tb = tok_bytes(tok, t->top_id[i], &k);
        json_object *key = token_string(tb, k);
        json_object_object_add(top, json_object_get_string(key), json_object_new_double(t->top_lp[i]));
        json_object_put(key);
    }
    json_object_array_add(l->tops, null_lp ? (json_object_put(top), NULL) : top);
    json_object_array_add(l->offsets, json_object_new_int64((int64_t)l->offset));
    l->offset += n;
}

static json_object *cmpl_logprobs_object(cmpl_logprobs *l) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "tokens", l->tokens);
    json_object_object_add(o, "token_logprobs", l->lps);
    json_object_object_add(o, "top_logprobs", l->tops);
    json_object_object_add(o, "text_offset", l->offsets);
    return o;
}

/* One choice of a response: the job that generated it (after server-side tool rounds, choices of one request may
 * end in different jobs) and its index there. */
typedef struct {
    serve_job *job;
    int ci;
} choice_ref;

static const serve_choice *ref_choice(const choice_ref *r) { return &r->job->choices[r->ci]; }

/* The choices of one job as refs (n_choices <= SERVE_MAX_N: request.c caps prompts x n). */
static int job_refs(serve_job *j, choice_ref *r) {
    for (int i = 0; i < j->n_choices; i++) r[i] = (choice_ref){j, i};
    return j->n_choices;
}

/* Usage of the final round of every choice: its generated tokens, and the prompts of the distinct jobs. */
static json_object *usage_object(const choice_ref *r, int n) {
    int completion = 0, prompt = 0;
    for (int i = 0; i < n; i++) {
        const serve_choice *c = ref_choice(&r[i]);
        for (int k = 0; k < c->n_toks; k++) completion += c->toks[k].id >= 0;
        int seen = 0;
        for (int k = 0; k < i && !seen; k++) seen = r[k].job == r[i].job;
        if (!seen) prompt += r[i].job->prompt_tokens;
    }
    json_object *u = json_object_new_object();
    json_object_object_add(u, "prompt_tokens", json_object_new_int(prompt));
    json_object_object_add(u, "completion_tokens", json_object_new_int(completion));
    json_object_object_add(u, "total_tokens", json_object_new_int(prompt + completion));
    return u;
}

static json_object *envelope(serve_server *s, const serve_job *j, unsigned long long id, const char *object) {
    json_object *o = json_object_new_object();
    char idbuf[64];
    snprintf(idbuf, sizeof idbuf, "%s-%llu", j->p.kind == SERVE_CHAT ? "chatcmpl" : "cmpl", id);
    json_object_object_add(o, "id", json_object_new_string(idbuf));
    json_object_object_add(o, "object", json_object_new_string(object));
    json_object_object_add(o, "created", json_object_new_int64((int64_t)time(NULL)));
    json_object_object_add(o, "model", json_object_new_string(s->o.model_name));
    json_object_object_add(o, "system_fingerprint", NULL);
    return o;
}

static char *choice_text(const serve_choice *c, size_t *len) {
    size_t n = 0;
    for (int k = 0; k < c->n_toks; k++) n += c->toks[k].text_len;
    char *t = malloc(n + 1);
    if (!t) return NULL;
    n = 0;
    for (int k = 0; k < c->n_toks; k++) {
        memcpy(t + n, c->toks[k].text, c->toks[k].text_len);
        n += c->toks[k].text_len;
    }
    t[n] = '\0';
    *len = n;
    return t;
}

/* Which prompt a completion choice answers (choices are prompt-major, n per prompt). */
static const char *choice_prompt(const serve_job *j, int i) { return j->p.prompts[i / j->p.n]; }

/* The whole response of finished choices (lock held). */
static json_object *full_response(serve_server *s, const choice_ref *r, int n, unsigned long long id) {
    const jl_tokenizer *tok = serve_engine_tokenizer(s->engine);
    const int chat = r[0].job->p.kind == SERVE_CHAT, top = r[0].job->p.top_logprobs;
    json_object *o = envelope(s, r[0].job, id, chat ? "chat.completion" : "text_completion"),
                *choices = json_object_new_array();
    for (int i = 0; i < n; i++) {
        const serve_job *j = r[i].job;
        const serve_choice *c = ref_choice(&r[i]);
        json_object *ch = json_object_new_object(), *lp = NULL;
        size_t len = 0;
        char *text = choice_text(c, &len);
        const char *finish = c->finish ? c->finish : "length";
        json_object_object_add(ch, "index", json_object_new_int(i));
        if (chat) {
            json_object *msg = NULL;
            if (j->p.tools) {
                msg = serve_tool_message(&j->p, text ? text : "", id, &finish);
            } else {
                msg = json_object_new_object();
                json_object_object_add(msg, "role", json_object_new_string("assistant"));
                json_object_object_add(msg, "content", json_object_new_string_len(text ? text : "", (int)len));
                json_object_object_add(msg, "refusal", NULL);
            }
            json_object_object_add(ch, "message", msg);
            if (j->p.logprobs) {
                json_object *content = json_object_new_array();
                for (int k = 0; k < c->n_toks; k++)
                    if (c->toks[k].id >= 0) json_object_array_add(content, chat_logprob_entry(tok, &c->toks[k], top));
                lp = json_object_new_object();
                json_object_object_add(lp, "content", content);
                json_object_object_add(lp, "refusal", NULL);
            }
        } else {
            const char *prompt = choice_prompt(j, r[i].ci);
            size_t plen = j->p.echo ? strlen(prompt) : 0;
            char *full = malloc(plen + len + 1);
            if (full) {
                memcpy(full, prompt, plen);
                memcpy(full + plen, text ? text : "", len);
                json_object_object_add(ch, "text", json_object_new_string_len(full, (int)(plen + len)));
                free(full);
            }
            if (j->p.logprobs) {
                cmpl_logprobs l;
                cmpl_logprobs_init(&l, j->p.echo ? 0 : strlen(prompt));
                for (int k = 0; k < c->n_prompt_toks; k++) cmpl_logprobs_add(&l, tok, &c->prompt_toks[k], top, 0);
                for (int k = 0; k < c->n_toks; k++)
                    if (c->toks[k].id >= 0) cmpl_logprobs_add(&l, tok, &c->toks[k], top, 0);
                lp = cmpl_logprobs_object(&l);
            }
        }
        free(text);
        json_object_object_add(ch, "logprobs", lp);
        json_object_object_add(ch, "finish_reason", json_object_new_string(finish));
        json_object_array_add(choices, ch);
    }
    json_object_object_add(o, "choices", choices);
    json_object_object_add(o, "usage", usage_object(r, n));
    return o;
}

/* ---------------------------------------------------------------- streaming */

typedef struct {
    serve_server *s;
    serve_job *job;
    unsigned long long id;
    int *sent;          /* per choice: tokens sent */
    int *closed;        /* per choice: finish chunk sent */
    int started, ended; /* role/echo chunks sent; [DONE] queued */
    char *buf;          /* formatted events not yet handed to MHD */
    size_t len, off, cap;
} stream_ctx;

static void buf_add(stream_ctx *st, const char *t, size_t n) {
    if (st->len + n > st->cap) {
        size_t cap = st->cap ? st->cap : 4096;
        while (cap < st->len + n) cap *= 2;
        char *g = realloc(st->buf, cap);
        if (!g) return;
        st->buf = g;
        st->cap = cap;
    }
    memcpy(st->buf + st->len, t, n);
    st->len += n;
}

static void emit(stream_ctx *st, json_object *o) {
    size_t len;
    const char *t = json_text(o, &len);
    buf_add(st, "data: ", 6);
    buf_add(st, t, len);
    buf_add(st, "\n\n", 2);
    json_object_put(o);
}

/* One chunk with one choice: delta text (chat) or text (completions), logprobs of token t (may be NULL),
 * finish reason (may be NULL). */
static void emit_chunk(stream_ctx *st, int i, const char *text, size_t len, const serve_tok *t, const char *finish,
                       int role) {
    const serve_job *j = st->job;
    const jl_tokenizer *tok = serve_engine_tokenizer(st->s->engine);
    const int chat = j->p.kind == SERVE_CHAT;
    json_object *o = envelope(st->s, j, st->id, chat ? "chat.completion.chunk" : "text_completion");
    json_object *choices = json_object_new_array(), *ch = json_object_new_object(), *lp = NULL;
    json_object_object_add(ch, "index", json_object_new_int(i));
    if (chat) {
        json_object *delta = json_object_new_object();
        if (role) json_object_object_add(delta, "role", json_object_new_string("assistant"));
        if (text) json_object_object_add(delta, "content", json_object_new_string_len(text, (int)len));
        json_object_object_add(ch, "delta", delta);
        if (t && j->p.logprobs) {
            json_object *content = json_object_new_array();
            json_object_array_add(content, chat_logprob_entry(tok, t, j->p.top_logprobs));
            lp = json_object_new_object();
            json_object_object_add(lp, "content", content);
        }
    } else {
        json_object_object_add(ch, "text", json_object_new_string_len(text ? text : "", (int)len));
        if (t && j->p.logprobs) {
            cmpl_logprobs l;
            cmpl_logprobs_init(&l, 0);
            cmpl_logprobs_add(&l, tok, t, j->p.top_logprobs, 0);
            lp = cmpl_logprobs_object(&l);
        }
    }
    json_object_object_add(ch, "logprobs", lp);
    json_object_object_add(ch, "finish_reason", finish ? json_object_new_string(finish) : NULL);
    json_object_array_add(choices, ch);
    json_object_object_add(o, "choices", choices);
    if (j->p.include_usage) json_object_object_add(o, "usage", NULL);
    emit(st, o);
}

/* What a stream has to send, copied under the lock (published tokens never change; their text stays valid while
 * the stream holds its reference), then formatted without it so the engine never waits for JSON formatting. */
typedef struct {
    serve_tok *toks; /* per choice: the new tokens, concatenated */
    int *first, *count;
    const char **finish;
    int done, failed;
    char error[200];
} stream_snapshot;

static int has_news(const stream_ctx *st) { /* lock held */
    const serve_job *j = st->job;
    if (!st->started || j->failed || j->done) return 1;
    for (int i = 0; i < j->n_choices; i++)
        if (j->choices[i].n_toks > st->sent[i] || (j->choices[i].finish && !st->closed[i])) return 1;
    return 0;
}

static int take_snapshot(const stream_ctx *st, stream_snapshot *sn) { /* lock held */
    const serve_job *j = st->job;
    int total = 0;
    for (int i = 0; i < j->n_choices; i++) total += j->choices[i].n_toks - st->sent[i];
    sn->toks = malloc(sizeof *sn->toks * (size_t)(total ? total : 1));
    sn->first = calloc((size_t)j->n_choices, sizeof *sn->first);
    sn->count = calloc((size_t)j->n_choices, sizeof *sn->count);
    sn->finish = calloc((size_t)j->n_choices, sizeof *sn->finish);
    if (!sn->toks || !sn->first || !sn->count || !sn->finish) return 0;
    int at = 0;
    for (int i = 0; i < j->n_choices; i++) {
        const serve_choice *c = &j->choices[i];
        sn->first[i] = at;
        sn->count[i] = c->n_toks - st->sent[i];
        if (sn->count[i]) memcpy(sn->toks + at, c->toks + st->sent[i], sizeof *sn->toks * (size_t)sn->count[i]);
        at += sn->count[i];
        sn->finish[i] = c->finish;
    }
    sn->done = j->done;
    sn->failed = j->failed;
    snprintf(sn->error, sizeof sn->error, "%s", j->error);
    return 1;
}

static void free_snapshot(stream_snapshot *sn) {
    free(sn->toks);
    free(sn->first);
    free(sn->count);
    free(sn->finish);
}

/* One chunk of choice i of a chat stream with `delta` (consumed) and no finish reason. */
static void emit_delta(stream_ctx *st, int i, json_object *delta) {
    json_object *o = envelope(st->s, st->job, st->id, "chat.completion.chunk"), *choices = json_object_new_array(),
                *ch = json_object_new_object();
    json_object_object_add(ch, "index", json_object_new_int(i));
    json_object_object_add(ch, "delta", delta);
    json_object_object_add(ch, "logprobs", NULL);
    json_object_object_add(ch, "finish_reason", NULL);
    json_object_array_add(choices, ch);
    json_object_object_add(o, "choices", choices);
    if (st->job->p.include_usage) json_object_object_add(o, "usage", NULL);
    emit(st, o);
}

static void emit_content(stream_ctx *st, int i, const char *text, size_t len) {
    json_object *delta = json_object_new_object();
    json_object_object_add(delta, "content", json_object_new_string_len(text, (int)len));
    emit_delta(st, i, delta);
}

/* Call k of a message as OpenAI streams it: first {index, id, type, function {name, arguments ""}}, then
 * {index, function {arguments}}. */
static void emit_call(stream_ctx *st, int i, int k, json_object *call) {
    json_object *id, *fn, *name, *args;
    json_object_object_get_ex(call, "id", &id);
    json_object_object_get_ex(call, "function", &fn);
    json_object_object_get_ex(fn, "name", &name);
    json_object_object_get_ex(fn, "arguments", &args);
    for (int part = 0; part < 2; part++) {
        json_object *delta = json_object_new_object(), *calls = json_object_new_array(), *c = json_object_new_object(),
                    *f = json_object_new_object();
        json_object_object_add(c, "index", json_object_new_int(k));
        if (part == 0) {
            json_object_object_add(c, "id", json_object_get(id));
            json_object_object_add(c, "type", json_object_new_string("function"));
            json_object_object_add(f, "name", json_object_get(name));
        }
        json_object_object_add(f, "arguments", part == 0 ? json_object_new_string("") : json_object_get(args));
        json_object_object_add(c, "function", f);
        json_object_array_add(calls, c);
        json_object_object_add(delta, "tool_calls", calls);
        emit_delta(st, i, delta);
    }
}

/* A finished answer of a tools request (calls are known once the answer is whole): with calls, the text outside
 * them as one content delta and each call as emit_call sends it; without, the text as generated, one delta per
 * token (the forced start first); then the finish chunk ("tool_calls" when it has calls). The choice is finished,
 * so its tokens no longer change. */
static void emit_tool_answer(stream_ctx *st, int i, const serve_choice *c, const char *finish) {
    size_t len = 0;
    char *text = choice_text(c, &len);
    json_object *msg = serve_tool_message(&st->job->p, text ? text : "", st->id, &finish), *calls = NULL, *content;
    free(text);
    if (json_object_object_get_ex(msg, "tool_calls", &calls)) {
        if (json_object_object_get_ex(msg, "content", &content) && content)
            emit_content(st, i, json_object_get_string(content), (size_t)json_object_get_string_len(content));
        for (size_t k = 0; k < json_object_array_length(calls); k++)
            emit_call(st, i, (int)k, json_object_array_get_idx(calls, k));
    } else {
        const char *forced = st->job->p.forced;
        if (forced && *forced) emit_content(st, i, forced, strlen(forced));
        for (int k = 0; k < c->n_toks; k++)
            if (c->toks[k].text_len) emit_content(st, i, c->toks[k].text, c->toks[k].text_len);
    }
    json_object_put(msg);
    emit_chunk(st, i, NULL, 0, NULL, finish, 0);
    st->closed[i] = 1;
}

/* Formats a snapshot into SSE events (no lock). */
static void stream_format(stream_ctx *st, const stream_snapshot *sn) {
    const serve_job *j = st->job; /* only its immutable parts: parameters, choice count, prompts */
    if (!st->started) {
        st->started = 1;
        for (int i = 0; i < j->n_choices; i++) {
            if (j->p.kind == SERVE_CHAT) emit_chunk(st, i, "", 0, NULL, NULL, 1);
            else if (j->p.echo) {
                const char *p = choice_prompt(j, i);
                emit_chunk(st, i, p, strlen(p), NULL, NULL, 0);
            }
        }
    }
    if (sn->failed) {
        serve_error e;
        serve_error_set(&e, 503, "server_error", "", "%s", sn->error);
        emit(st, error_object(&e));
        buf_add(st, "data: [DONE]\n\n", 14);
        st->ended = 1;
        return;
    }
    int all_closed = 1;
    for (int i = 0; i < j->n_choices; i++) {
        if (j->p.kind == SERVE_CHAT && j->p.tools) { /* calls are known once the answer is whole */
            st->sent[i] += sn->count[i];
            if (sn->finish[i] && !st->closed[i]) emit_tool_answer(st, i, &j->choices[i], sn->finish[i]);
            all_closed &= st->closed[i];
            continue;
        }
        for (int k = 0; k < sn->count[i]; k++) {
            /* one chunk per token, also when its text is held back (part of a character, or of a stop string) */
            const serve_tok *t = &sn->toks[sn->first[i] + k];
            emit_chunk(st, i, t->text, t->text_len, t->id >= 0 ? t : NULL, NULL, 0);
        }
        st->sent[i] += sn->count[i];
        if (sn->finish[i] && !st->closed[i]) {
            emit_chunk(st, i, NULL, 0, NULL, sn->finish[i], 0);
            st->closed[i] = 1;
        }
        all_closed &= st->closed[i];
    }
    if (all_closed && sn->done) {
        st->ended = 1;
        if (j->p.include_usage) { /* the usage counts are final once the job is done */
            json_object *o = envelope(st->s, j, st->id, j->p.kind == SERVE_CHAT ? "chat.completion.chunk" : "text_completion");
            json_object_object_add(o, "choices", json_object_new_array());
            pthread_mutex_t *mu = serve_engine_lock(st->s->engine);
            choice_ref r[SERVE_MAX_N];
            pthread_mutex_lock(mu);
            json_object_object_add(o, "usage", usage_object(r, job_refs(st->job, r)));
            pthread_mutex_unlock(mu);
            emit(st, o);
        }
        buf_add(st, "data: [DONE]\n\n", 14);
    }
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max) {
    (void)pos;
    stream_ctx *st = cls;
    while (st->off == st->len) {
        st->off = st->len = 0;
        if (st->ended) return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_t *mu = serve_engine_lock(st->s->engine);
        stream_snapshot sn = {0};
        pthread_mutex_lock(mu);
        while (!has_news(st)) serve_job_wait(st->s->engine, st->job, 1.0);
        int ok = take_snapshot(st, &sn);
        pthread_mutex_unlock(mu);
        if (!ok) {
            free_snapshot(&sn);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        stream_format(st, &sn);
        free_snapshot(&sn);
    }
    size_t n = st->len - st->off < max ? st->len - st->off : max;
    memcpy(out, st->buf + st->off, n);
    st->off += n;
    return (ssize_t)n;
}

/* The connection went away or the stream ended: the job's slot is freed at the next step. */
static void stream_free(void *cls) {
    stream_ctx *st = cls;
    atomic_fetch_sub(&st->s->streams, 1);
    serve_job_release(st->s->engine, st->job);
    free(st->sent);
    free(st->closed);
    free(st->buf);
    free(st);
}

static enum MHD_Result start_stream(serve_server *s, struct MHD_Connection *c, serve_job *j, unsigned long long id) {
    stream_ctx *st = calloc(1, sizeof *st);
    if (st) {
        st->sent = calloc((size_t)j->n_choices, sizeof *st->sent);
        st->closed = calloc((size_t)j->n_choices, sizeof *st->closed);
    }
    if (!st || !st->sent || !st->closed) {
        if (st) {
            free(st->sent);
            free(st->closed);
        }
        free(st);
        serve_job_release(s->engine, j);
        return fail(s, c, 500, "server_error", NULL, NULL, "out of memory");
    }
    *st = (stream_ctx){.s = s, .job = j, .id = id, .sent = st->sent, .closed = st->closed};
    atomic_fetch_add(&s->streams, 1); /* stream_free takes it back */
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, st, stream_free);
    if (!r) {
        stream_free(st);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    count(s, 200);
    return ret;
}

/* ---------------------------------------------------------------- endpoints */

/* Whether the client of c has gone (closed or reset its side): its socket polls as hung up or readable at EOF.
 * A non-streamed request has sent its whole body, so anything readable is the end or a pipelined request. */
static int client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 0;
    struct pollfd pf = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&pf, 1, 0) != 1) return 0;
    if (pf.revents & (POLLRDHUP | POLLHUP | POLLERR)) return 1;
    char b;
    return (pf.revents & POLLIN) && recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* Waits for a job (lock held by the caller's loop), looking at the client every 0.2 s: when it has gone the job is
 * cancelled (its slots free at the next step) and 0 returned. */
static int wait_done(serve_server *s, struct MHD_Connection *c, serve_job *j) {
    while (!j->done) {
        serve_job_wait(s->engine, j, 0.2);
        if (!j->done && client_gone(c)) {
            j->cancelled = 1;
            pthread_mutex_unlock(serve_engine_lock(s->engine));
            serve_job_cancel(s->engine, j);
            pthread_mutex_lock(serve_engine_lock(s->engine));
            return 0;
        }
    }
    return 1;
}

/* A finished choice's next round when its answer asked for the server's own tools only: 1 and *next (n = 1, the
 * choice's own seed), 0 when it is final, -1 when out of memory (lock held). */
static int next_round(serve_server *s, const choice_ref *r, serve_params *next) {
    if (r->job->failed) return 0;
    size_t len;
    char *text = choice_text(ref_choice(r), &len);
    int rc = text ? serve_tools_round(&r->job->p, text, s->o.tools, next) : -1;
    free(text);
    if (rc == 1) {
        next->n = 1;
        next->sampling.seed = r->job->p.sampling.seed + (uint64_t)r->ci; /* what choice ci sampled with */
    }
    return rc;
}

/* The jobs of a request with server-side tools, all released together once the answer is sent. */
typedef struct {
    serve_job **jobs;
    int n, cap;
} job_list;

static int job_list_add(job_list *l, serve_job *j) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        serve_job **g = realloc(l->jobs, sizeof *g * (size_t)cap);
        if (!g) return 0;
        l->jobs = g;
        l->cap = cap;
    }
    l->jobs[l->n++] = j;
    return 1;
}

static void job_list_release(serve_server *s, job_list *l) {
    for (int i = 0; i < l->n; i++) serve_job_release(s->engine, l->jobs[i]);
    free(l->jobs);
}

/* Waits for the jobs of one round (lock held); when the client has gone, cancels them all and returns 0. */
static int wait_round(serve_server *s, struct MHD_Connection *c, job_list *l, int from) {
    for (int k = from; k < l->n; k++)
        if (!wait_done(s, c, l->jobs[k])) {
            pthread_mutex_unlock(serve_engine_lock(s->engine));
            for (int m = from; m < l->n; m++) serve_job_cancel(s->engine, l->jobs[m]);
            pthread_mutex_lock(serve_engine_lock(s->engine));
            return 0;
        }
    return 1;
}

/* The answer of finished choices: JSON, or (stream) the whole SSE body at once. */
static enum MHD_Result send_answer(serve_server *s, struct MHD_Connection *c, choice_ref *r, int n,
                                   unsigned long long id) {
    pthread_mutex_t *mu = serve_engine_lock(s->engine);
    serve_error e;
    pthread_mutex_lock(mu);
    for (int i = 0; i < n; i++)
        if (r[i].job->failed) {
            serve_error_set(&e, 503, "server_error", "", "%s", r[i].job->error);
            pthread_mutex_unlock(mu);
            return send_error(s, c, &e, NULL);
        }
    if (!r[0].job->p.stream) {
        json_object *o = full_response(s, r, n, id);
        pthread_mutex_unlock(mu);
        return send_json(s, c, 200, o);
    }
    int closed[SERVE_MAX_N] = {0};
    stream_ctx st = {.s = s, .job = r[0].job, .id = id, .closed = closed};
    for (int i = 0; i < n; i++) {
        st.job = r[i].job;
        emit_chunk(&st, i, "", 0, NULL, NULL, 1);
        emit_tool_answer(&st, i, ref_choice(&r[i]), ref_choice(&r[i])->finish ? ref_choice(&r[i])->finish : "length");
    }
    if (st.job->p.include_usage) {
        json_object *o = envelope(s, st.job, id, "chat.completion.chunk");
        json_object_object_add(o, "choices", json_object_new_array());
        json_object_object_add(o, "usage", usage_object(r, n));
        emit(&st, o);
    }
    pthread_mutex_unlock(mu);
    buf_add(&st, "data: [DONE]\n\n", 14);
    enum MHD_Result ret = st.buf ? send_text(s, c, 200, "text/event-stream; charset=utf-8", st.buf, st.len, NULL, NULL)
                                 : fail(s, c, 500, "server_error", NULL, NULL, "out of memory");
    free(st.buf);
    return ret;
}

/* A chat request with the server's own tools (serve --tools): every choice runs its own rounds — its answer's
 * built-in calls are run, the answer and the results appended to its conversation and it generates again (one job
 * of n = 1 per continuing choice, all of a round decoded together) — up to max_tool_steps rounds. A choice whose
 * next round does not fit the context keeps its last answer (its calls go to the client). */
static enum MHD_Result tool_rounds(serve_server *s, struct MHD_Connection *c, serve_params *p, unsigned long long id) {
    pthread_mutex_t *mu = serve_engine_lock(s->engine);
    serve_error e;
    serve_job *j;
    if (serve_job_new(s->engine, p, &j, &e) != JL_OK) {
        serve_params_free(p);
        return send_error(s, c, &e, NULL);
    }
    job_list l = {0};
    choice_ref r[SERVE_MAX_N];
    int n = job_refs(j, r), final[SERVE_MAX_N] = {0}, oom = !job_list_add(&l, j), from = 0, sent = 0;
    if (oom) serve_job_release(s->engine, j);
    if (!oom && !serve_engine_submit(s->engine, j, &e)) {
        job_list_release(s, &l);
        return send_error(s, c, &e, NULL);
    }
    enum MHD_Result ret = MHD_NO;
    for (int round = 0; !oom; round++) {
        pthread_mutex_lock(mu);
        if (!wait_round(s, c, &l, from)) { /* nobody to answer */
            pthread_mutex_unlock(mu);
            atomic_fetch_add(&s->disconnects, 1);
            job_list_release(s, &l);
            return MHD_NO;
        }
        serve_params next[SERVE_MAX_N];
        int more[SERVE_MAX_N] = {0}, any = 0;
        for (int i = 0; i < n && round < s->o.max_tool_steps; i++) {
            more[i] = final[i] ? 0 : next_round(s, &r[i], &next[i]);
            oom |= more[i] < 0;
            final[i] |= more[i] == 0;
        }
        pthread_mutex_unlock(mu);
        from = l.n;
        for (int i = 0; i < n; i++) {
            if (more[i] != 1) continue;
            if (oom || serve_job_new(s->engine, &next[i], &j, &e) != JL_OK) {
                serve_params_free(&next[i]);
                final[i] = 1; /* does not fit: this answer as it is */
                continue;
            }
            if (!job_list_add(&l, j)) {
                serve_job_release(s->engine, j);
                oom = 1;
                continue;
            }
            if (!serve_engine_submit(s->engine, j, &e)) {
                l.n--;
                serve_job_release(s->engine, j);
                for (int m = from; m < l.n; m++) serve_job_cancel(s->engine, l.jobs[m]); /* this round's others */
                ret = send_error(s, c, &e, NULL);
                sent = 1;
                oom = 1;
                continue;
            }
            r[i] = (choice_ref){j, 0};
            any = 1;
        }
        if (!any) break;
    }
    if (!sent) ret = oom ? fail(s, c, 500, "server_error", NULL, NULL, "out of memory") : send_answer(s, c, r, n, id);
    job_list_release(s, &l);
    return ret;
}

static enum MHD_Result completions(serve_server *s, struct MHD_Connection *c, const char *body, size_t len,
                                   serve_kind kind) {
    serve_params p;
    serve_error e;
    serve_job *j = NULL;
    if (!serve_parse_request(body, len, kind, &p, &e)) return send_error(s, c, &e, NULL);
    char *server_specs = s->o.tools && kind == SERVE_CHAT ? jl_toolbox_specs(s->o.tools) : NULL;
    int ok = kind != SERVE_CHAT || serve_params_finish_tools(&p, server_specs);
    free(server_specs);
    if (!ok) {
        serve_params_free(&p);
        return fail(s, c, 500, "server_error", NULL, NULL, "out of memory");
    }
    const unsigned long long id = atomic_fetch_add(&s->next_id, 1) + 1;
    if (kind == SERVE_CHAT && s->o.tools && p.tools) return tool_rounds(s, c, &p, id);
    if (serve_job_new(s->engine, &p, &j, &e) != JL_OK) {
        serve_params_free(&p);
        return send_error(s, c, &e, NULL);
    }
    if (!serve_engine_submit(s->engine, j, &e)) {
        serve_job_release(s->engine, j);
        return send_error(s, c, &e, NULL);
    }
    if (j->p.stream) return start_stream(s, c, j, id);
    pthread_mutex_t *mu = serve_engine_lock(s->engine);
    pthread_mutex_lock(mu);
    int done = wait_done(s, c, j);
    pthread_mutex_unlock(mu);
    if (!done) { /* nobody to answer */
        serve_job_release(s->engine, j);
        atomic_fetch_add(&s->disconnects, 1);
        return MHD_NO;
    }
    choice_ref r[SERVE_MAX_N];
    enum MHD_Result ret = send_answer(s, c, r, job_refs(j, r), id);
    serve_job_release(s->engine, j);
    return ret;
}

static enum MHD_Result models(serve_server *s, struct MHD_Connection *c) {
    json_object *o = json_object_new_object(), *data = json_object_new_array(), *m = json_object_new_object();
    json_object_object_add(m, "id", json_object_new_string(s->o.model_name));
    json_object_object_add(m, "object", json_object_new_string("model"));
    json_object_object_add(m, "created", json_object_new_int64((int64_t)time(NULL)));
    json_object_object_add(m, "owned_by", json_object_new_string("jielong"));
    json_object *meta = json_object_new_object();
    json_object_object_add(meta, "context", json_object_new_int(serve_engine_context(s->engine)));
    json_object_object_add(meta, "vocab_size", json_object_new_int(serve_engine_vocab(s->engine)));
    json_object_object_add(meta, "parallel", json_object_new_int(s->o.parallel));
    json_object_object_add(meta, "weights", json_object_new_string(s->o.qw ? jl_qweights_type(s->o.qw) : "f32"));
    json_object_object_add(m, "meta", meta);
    json_object_array_add(data, m);
    json_object_object_add(o, "object", json_object_new_string("list"));
    json_object_object_add(o, "data", data);
    return send_json(s, c, 200, o);
}

static enum MHD_Result tokenize(serve_server *s, struct MHD_Connection *c, const char *body, size_t len) {
    serve_error e;
    json_object *o = serve_parse_json(body, len, &e), *content = NULL;
    if (!o) return send_error(s, c, &e, NULL);
    if (!json_object_object_get_ex(o, "content", &content) || !json_object_is_type(content, json_type_string)) {
        json_object_put(o);
        serve_error_set(&e, 400, "invalid_request_error", "content", "'content' is required and must be a string");
        return send_error(s, c, &e, NULL);
    }
    json_object *add = NULL;
    int bos = json_object_object_get_ex(o, "add_special", &add) && json_object_get_boolean(add);
    const jl_tokenizer *tok = serve_engine_tokenizer(s->engine);
    int32_t *ids = NULL;
    size_t n = 0;
    jl_status st = jl_tokenizer_encode(tok, json_object_get_string(content), (size_t)json_object_get_string_len(content), 0, &ids, &n);
    json_object_put(o);
    if (st != JL_OK) return fail(s, c, 400, "invalid_request_error", NULL, NULL, "%s", jl_last_error());
    json_object *r = json_object_new_object(), *a = json_object_new_array();
    int32_t b = jl_tokenizer_bos(tok);
    if (bos && b >= 0) json_object_array_add(a, json_object_new_int(b));
    for (size_t i = 0; i < n; i++) json_object_array_add(a, json_object_new_int(ids[i]));
    free(ids);
    json_object_object_add(r, "tokens", a);
    return send_json(s, c, 200, r);
}

static enum MHD_Result detokenize(serve_server *s, struct MHD_Connection *c, const char *body, size_t len) {
    serve_error e;
    json_object *o = serve_parse_json(body, len, &e), *toks = NULL;
    if (!o) return send_error(s, c, &e, NULL);
    if (!json_object_object_get_ex(o, "tokens", &toks) || !json_object_is_type(toks, json_type_array)) {
        json_object_put(o);
        serve_error_set(&e, 400, "invalid_request_error", "tokens", "'tokens' is required and must be a list of ids");
        return send_error(s, c, &e, NULL);
    }
    const jl_tokenizer *tok = serve_engine_tokenizer(s->engine);
    const size_t n = json_object_array_length(toks);
    const int V = jl_tokenizer_vocab_size(tok);
    int32_t *ids = malloc(sizeof *ids * (n ? n : 1));
    for (size_t i = 0; ids && i < n; i++) {
        json_object *v = json_object_array_get_idx(toks, i);
        long long id = json_object_is_type(v, json_type_int) ? (long long)json_object_get_int64(v) : -1;
        if (id < 0 || id >= V) {
            free(ids);
            json_object_put(o);
            serve_error_set(&e, 400, "invalid_request_error", "tokens", "'tokens[%zu]' must be an id in [0, %d)", i, V);
            return send_error(s, c, &e, NULL);
        }
        ids[i] = (int32_t)id;
    }
    json_object_put(o);
    char *text = NULL;
    size_t tl = 0;
    jl_status st = ids ? jl_tokenizer_decode(tok, ids, n, &text, &tl) : jl_fail(JL_ERR_NOMEM, "out of memory");
    free(ids);
    if (st != JL_OK) return fail(s, c, 500, "server_error", NULL, NULL, "%s", jl_last_error());
    json_object *r = json_object_new_object();
    json_object_object_add(r, "content", token_string(text, tl));
    free(text);
    return send_json(s, c, 200, r);
}

static enum MHD_Result metrics(serve_server *s, struct MHD_Connection *c) {
    serve_stats st;
    serve_engine_stats(s->engine, &st);
    char buf[4096];
    size_t n = 0;
#define OUT(...) n += (size_t)snprintf(buf + n, sizeof buf - n, __VA_ARGS__)
    OUT("# HELP jielong_requests_total HTTP responses by status code.\n# TYPE jielong_requests_total counter\n");
    for (int i = 0; i < CODE_OTHER; i++)
        OUT("jielong_requests_total{code=\"%d\"} %llu\n", code_values[i], (unsigned long long)atomic_load(&s->requests[i]));
    OUT("jielong_requests_total{code=\"other\"} %llu\n", (unsigned long long)atomic_load(&s->requests[CODE_OTHER]));
    OUT("# HELP jielong_prompt_tokens_total Prompt tokens prefilled.\n# TYPE jielong_prompt_tokens_total counter\n"
        "jielong_prompt_tokens_total %llu\n", st.prompt_tokens);
    OUT("# HELP jielong_generated_tokens_total Tokens generated.\n# TYPE jielong_generated_tokens_total counter\n"
        "jielong_generated_tokens_total %llu\n", st.generated_tokens);
    OUT("# HELP jielong_tokens_per_second Decode tokens per second of recent steps.\n# TYPE jielong_tokens_per_second gauge\n"
        "jielong_tokens_per_second %.2f\n", st.tok_per_s);
    OUT("# HELP jielong_requests_active Requests holding KV slots.\n# TYPE jielong_requests_active gauge\n"
        "jielong_requests_active %d\n", st.active);
    OUT("# HELP jielong_requests_queued Requests waiting for a slot.\n# TYPE jielong_requests_queued gauge\n"
        "jielong_requests_queued %d\n", st.queued);
    OUT("# HELP jielong_kv_slots_used KV-cache slots in use.\n# TYPE jielong_kv_slots_used gauge\n"
        "jielong_kv_slots_used %d\n", st.slots_used);
    OUT("# HELP jielong_kv_slots KV-cache slots.\n# TYPE jielong_kv_slots gauge\njielong_kv_slots %d\n", st.slots);
    OUT("# HELP jielong_engine_steps_total Batched forward passes.\n# TYPE jielong_engine_steps_total counter\n"
        "jielong_engine_steps_total %llu\n", st.steps);
    OUT("# HELP jielong_requests_timed_out_total Requests ended at the --max-time limit.\n"
        "# TYPE jielong_requests_timed_out_total counter\njielong_requests_timed_out_total %llu\n", st.jobs_timed_out);
    OUT("# HELP jielong_client_disconnects_total Non-streamed requests cancelled because the client left.\n"
        "# TYPE jielong_client_disconnects_total counter\njielong_client_disconnects_total %llu\n",
        (unsigned long long)atomic_load(&s->disconnects));
#undef OUT
    return send_text(s, c, 200, "text/plain; version=0.0.4", buf, n < sizeof buf ? n : sizeof buf - 1, NULL, NULL);
}

/* ---------------------------------------------------------------- routing */

typedef struct {
    char *body;
    size_t len, cap;
    int too_big;
} conn_ctx;

typedef enum { R_NONE = 0, R_PAGE, R_HEALTH, R_MODELS, R_METRICS, R_CHAT, R_CMPL, R_TOKENIZE, R_DETOKENIZE } route;

static route find_route(const char *url, const char **method) {
    static const struct {
        const char *path, *method;
        route r;
    } table[] = {{"/", "GET", R_PAGE},         {"/health", "GET", R_HEALTH},
                 {"/v1/models", "GET", R_MODELS}, {"/metrics", "GET", R_METRICS},
                 {"/v1/chat/completions", "POST", R_CHAT}, {"/v1/completions", "POST", R_CMPL},
                 {"/tokenize", "POST", R_TOKENIZE}, {"/detokenize", "POST", R_DETOKENIZE}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(url, table[i].path) == 0) {
            *method = table[i].method;
            return table[i].r;
        }
    return R_NONE;
}

static int authorized(serve_server *s, struct MHD_Connection *c) {
    if (!s->o.api_key) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7) != 0) return 0;
    return serve_key_equal(h + 7, strlen(h + 7), s->o.api_key);
}

static enum MHD_Result dispatch(serve_server *s, struct MHD_Connection *c, const char *url, const char *method,
                                conn_ctx *cc) {
    const char *want = NULL;
    route r = find_route(url, &want);
    if (r == R_NONE) return fail(s, c, 404, "invalid_request_error", "not_found", NULL, "no route %.100s", url);
    const int head = strcmp(method, "HEAD") == 0 && strcmp(want, "GET") == 0;
    if (strcmp(method, want) != 0 && !head)
        return fail(s, c, 405, "invalid_request_error", "method_not_allowed", want, "%.100s takes %s, not %.16s", url, want, method);
    if (r == R_PAGE) return send_text(s, c, 200, "text/html; charset=utf-8", serve_page_html, serve_page_html_len, NULL, NULL);
    if (r == R_HEALTH && !atomic_load(&s->ready)) {
        static const char loading[] = "{\"status\":\"loading model\"}";
        return send_text(s, c, 503, "application/json", loading, sizeof loading - 1, "1", NULL);
    }
    if (!atomic_load(&s->ready))
        return fail(s, c, 503, "server_error", "loading", NULL, "the model is still loading: retry in a moment");
    if (r == R_HEALTH) {
        if (atomic_load(&s->stopping)) return fail(s, c, 503, "server_error", "shutting_down", NULL, "shutting down");
        static const char ok[] = "{\"status\":\"ok\"}";
        return send_text(s, c, 200, "application/json", ok, sizeof ok - 1, NULL, NULL);
    }
    if (!authorized(s, c))
        return fail(s, c, 401, "invalid_request_error", "invalid_api_key", NULL,
                    "missing or wrong API key: send the header 'Authorization: Bearer KEY'");
    if (cc->too_big)
        return fail(s, c, 413, "invalid_request_error", "request_too_large", NULL, "the body is larger than %zu bytes", s->o.max_body);
    switch (r) {
    case R_MODELS: return models(s, c);
    case R_METRICS: return metrics(s, c);
    case R_CHAT: return completions(s, c, cc->body, cc->len, SERVE_CHAT);
    case R_CMPL: return completions(s, c, cc->body, cc->len, SERVE_COMPLETION);
    case R_TOKENIZE: return tokenize(s, c, cc->body, cc->len);
    case R_DETOKENIZE: return detokenize(s, c, cc->body, cc->len);
    default: return MHD_NO;
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    serve_server *s = cls;
    conn_ctx *cc = *con_cls;
    if (!cc) { /* first call: headers only */
        cc = calloc(1, sizeof *cc);
        if (!cc) return MHD_NO;
        *con_cls = cc;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->o.max_body) cc->too_big = 1;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!cc->too_big && cc->len + *upload_size > s->o.max_body) cc->too_big = 1;
        if (!cc->too_big) {
            if (cc->len + *upload_size + 1 > cc->cap) {
                size_t cap = cc->cap ? cc->cap : 4096;
                while (cap < cc->len + *upload_size + 1) cap *= 2;
                char *g = realloc(cc->body, cap);
                if (!g) return MHD_NO;
                cc->body = g;
                cc->cap = cap;
            }
            memcpy(cc->body + cc->len, upload, *upload_size);
            cc->len += *upload_size;
            cc->body[cc->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }
    return dispatch(s, c, url, method, cc);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t) {
    (void)cls;
    (void)c;
    (void)t;
    conn_ctx *cc = *con_cls;
    if (cc) {
        free(cc->body);
        free(cc);
    }
    *con_cls = NULL;
}

/* ---------------------------------------------------------------- lifetime */

static jl_status bind_address(const char *host, int port, struct sockaddr_storage *ss, int *v6) {
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *v6 = 0;
        return JL_OK;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *v6 = 1;
        return JL_OK;
    }
    return jl_fail(JL_ERR_ARG, "--host %s: not a numeric IPv4 or IPv6 address (e.g. 127.0.0.1, 0.0.0.0, ::1)", host);
}

jl_status serve_listen(const serve_opts *o, serve_server **out) {
    *out = NULL;
    if (o->port < 0 || o->port > 65535) return jl_fail(JL_ERR_ARG, "--port %d: must be in 0..65535", o->port);
    if (o->parallel < 1 || o->parallel > 1024) return jl_fail(JL_ERR_ARG, "--parallel %d: must be in 1..1024", o->parallel);
    struct sockaddr_storage ss;
    int v6 = 0;
    jl_status st = bind_address(o->host, o->port, &ss, &v6);
    if (st != JL_OK) return st;
    serve_server *s = calloc(1, sizeof *s);
    if (!s) return jl_fail(JL_ERR_NOMEM, "out of memory");
    s->o = *o;
    const unsigned limit = (unsigned)(o->parallel + o->max_queue + 64);
    s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                                (v6 ? MHD_USE_IPv6 : 0),
                            (uint16_t)o->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT, limit,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(o->timeout_s > 0 ? o->timeout_s : 0),
                            MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
    if (!s->d) {
        free(s);
        return jl_fail(JL_ERR_IO, "cannot listen on %s:%d (in use, or not allowed)", o->host, o->port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : o->port;
    *out = s;
    return JL_OK;
}

jl_status serve_ready(serve_server *s, const jl_model *model, const jl_qweights *qw, const jl_tokenizer *tok,
                      const struct jl_chat_format *fmt, const char *model_name) {
    s->o.model = model;
    s->o.qw = qw;
    s->o.tok = tok;
    if (model_name) s->o.model_name = model_name;
    s->o.chat_format = fmt;
    serve_engine_opts eo = {model, qw, tok, s->o.parallel, s->o.context, s->o.threads, s->o.max_queue, s->o.chunk, fmt,
                            s->o.max_request_s, s->o.bf16};
    jl_status st = serve_engine_start(&eo, &s->engine);
    if (st == JL_OK) atomic_store(&s->ready, 1);
    return st;
}

jl_status serve_start(const serve_opts *o, serve_server **out) {
    jl_status st = serve_listen(o, out);
    if (st != JL_OK) return st;
    st = serve_ready(*out, o->model, o->qw, o->tok, o->chat_format, o->model_name);
    if (st != JL_OK) {
        serve_stop(*out, 0.0);
        *out = NULL;
    }
    return st;
}

int serve_port(const serve_server *s) { return s->port; }

void serve_stop(serve_server *s, double grace_s) {
    if (!s) return;
    atomic_store(&s->stopping, 1);
    MHD_socket fd = MHD_quiesce_daemon(s->d);
    if (s->engine) serve_engine_stop(s->engine, grace_s); /* running jobs finish (or are cut); queued ones fail */
    /* every job has ended: let the streams write their last chunk and [DONE] before the sockets close (2 s at most) */
    for (int i = 0; i < 200 && atomic_load(&s->streams) > 0; i++) usleep(10000);
    MHD_stop_daemon(s->d);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    serve_engine_free(s->engine);
    free(s);
}
