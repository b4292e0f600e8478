/* The generation loop (prefill, then sample → stream → decode until a stop) and the chat session built on it. */
#include "core/timer.h"
#include "jielong/chat_format.h"
#include "jielong/dataset.h"
#include "jielong/generate.h"
#include <stdlib.h>
#include <string.h>

const char *jl_stop_reason_name(jl_stop_reason r) {
    switch (r) {
    case JL_STOP_EOS: return "end of text";
    case JL_STOP_STRING: return "stop string";
    case JL_STOP_MAX_TOKENS: return "max tokens";
    case JL_STOP_CONTEXT_FULL: return "context full";
    case JL_STOP_CALLER: return "stopped by caller";
    default: return "none";
    }
}

jl_status jl_encode_prompt(const jl_tokenizer *tok, const char *text, int32_t **ids, int *n) {
    *ids = NULL;
    *n = 0;
    int32_t *body = NULL;
    size_t n_body = 0;
    jl_status st = jl_tokenizer_encode(tok, text, strlen(text), 0, &body, &n_body);
    if (st != JL_OK) return jl_fail_context(st, "prompt");
    int32_t bos = jl_tokenizer_bos(tok);
    int total = (int)n_body + (bos >= 0);
    if (total == 0) {
        free(body);
        return jl_fail(JL_ERR_ARG, "empty prompt (and the tokenizer has no <|bos|> to start from)");
    }
    int32_t *out = malloc(sizeof *out * (size_t)total);
    if (!out) {
        free(body);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    if (bos >= 0) out[0] = bos;
    if (n_body) memcpy(out + (bos >= 0), body, n_body * sizeof *body);
    free(body);
    *ids = out;
    *n = total;
    return JL_OK;
}

static int is_end_token(const jl_tokenizer *tok, int32_t t) {
    /* <|bos|> too: a base model that starts a new document has finished this one. */
    return t == jl_tokenizer_eos(tok) || t == jl_tokenizer_special(tok, "<|end|>") ||
           t == jl_tokenizer_bos(tok);
}

jl_status jl_generate(jl_session *s, jl_sampler *smp, const jl_tokenizer *tok, const int32_t *prompt, int n_prompt,
                      const jl_gen_opts *o, jl_gen_callback cb, void *user, jl_gen_result *res) {
    memset(res, 0, sizeof *res);
    int free_pos = jl_session_capacity(s) - jl_session_pos(s);
    if (n_prompt < 1) return jl_fail(JL_ERR_ARG, "empty prompt");
    if (n_prompt > free_pos)
        return jl_fail(JL_ERR_ARG, "the prompt has %d tokens but the context holds %d (%d free)", n_prompt,
                       jl_session_capacity(s), free_pos);
    jl_textstream *ts;
    jl_status st = jl_textstream_new(o->stops, o->n_stops, &ts);
    if (st != JL_OK) return st;
    jl_sample_report report;
    const float *logits;
    double t0 = jl_now();
    st = jl_session_forward(s, prompt, n_prompt, NULL, &logits);
    res->n_prompt = n_prompt;
    res->prefill_s = jl_now() - t0;
    t0 = jl_now();
    jl_stop_reason reason = o->max_tokens > 0 ? JL_STOP_NONE : JL_STOP_MAX_TOKENS;
    while (st == JL_OK && reason == JL_STOP_NONE) {
        int32_t t = jl_sampler_sample(smp, logits, jl_session_tokens(s), jl_session_pos(s),
                                      o->n_report > 0 ? &report : NULL, o->n_report);
        if (t < 0) {
            st = JL_ERR_RUNTIME;
            break;
        }
        if (is_end_token(tok, t)) {
            reason = JL_STOP_EOS;
            break;
        }
        size_t nbytes = 0;
        const char *bytes = jl_tokenizer_token(tok, t, &nbytes);
        jl_gen_event ev = {.token = t, .report = o->n_report > 0 ? &report : NULL};
        int stopped = jl_textstream_push(ts, bytes ? bytes : "", nbytes, &ev.text, &ev.text_len);
        res->n_generated++;
        if (cb && cb(user, &ev)) reason = JL_STOP_CALLER;
        else if (stopped) reason = JL_STOP_STRING;
        else if (res->n_generated >= o->max_tokens) reason = JL_STOP_MAX_TOKENS;
        else if (jl_session_pos(s) >= jl_session_capacity(s)) reason = JL_STOP_CONTEXT_FULL;
        else st = jl_session_forward(s, &t, 1, NULL, &logits);
    }
    res->decode_s = jl_now() - t0;
    res->reason = reason;
    jl_gen_event tail = {.token = -1};
    jl_textstream_flush(ts, &tail.text, &tail.text_len);
    if (st == JL_OK && tail.text_len && cb) cb(user, &tail);
    jl_textstream_free(ts);
    return st;
}

/* ---------------------------------------------------------------- chat */

struct jl_chat {
    jl_session *s;
    jl_sampler *smp;
    const jl_tokenizer *tok;
    jl_turn *turns; /* system (optional) then user/assistant; contents owned */
    int n_turns, cap_turns;
    jl_context_policy policy;
    int dropped; /* exchanges dropped to make the last turn fit */
    jl_segments seg;
    const jl_chat_format *fmt; /* NULL: built-in */
};

jl_status jl_chat_new_format(jl_session *s, jl_sampler *smp, const jl_tokenizer *tok, const jl_chat_format *fmt,
                             jl_chat **out) {
    *out = NULL;
    for (int k = JL_SPECIAL_BOS; jl_chat_format_is_builtin(fmt) && k < JL_SPECIAL_COUNT; k++)
        if (jl_tokenizer_special(tok, jl_special_name((jl_special)k)) < 0)
            return jl_fail(JL_ERR_FORMAT, "the tokenizer has no %s token and the model no chat template of its own: "
                           "not a chat model", jl_special_name((jl_special)k));
    jl_chat *c = calloc(1, sizeof *c);
    if (!c) return jl_fail(JL_ERR_NOMEM, "out of memory");
    c->s = s;
    c->smp = smp;
    c->tok = tok;
    c->fmt = fmt;
    *out = c;
    return JL_OK;
}

jl_status jl_chat_new(jl_session *s, jl_sampler *smp, const jl_tokenizer *tok, jl_chat **out) {
    return jl_chat_new_format(s, smp, tok, NULL, out);
}

static void drop_turns(jl_chat *c, int keep) {
    while (c->n_turns > keep) free((char *)c->turns[--c->n_turns].content);
}

void jl_chat_free(jl_chat *c) {
    if (!c) return;
    drop_turns(c, 0);
    free(c->turns);
    jl_segments_free(&c->seg);
    free(c);
}

static int has_system(const jl_chat *c) { return c->n_turns > 0 && c->turns[0].role == JL_ROLE_SYSTEM; }

static jl_status push_turn(jl_chat *c, jl_role role, const char *text, size_t len) {
    if (c->n_turns == c->cap_turns) {
        int cap = c->cap_turns ? 2 * c->cap_turns : 8;
        jl_turn *t = realloc(c->turns, sizeof *t * (size_t)cap);
        if (!t) return jl_fail(JL_ERR_NOMEM, "out of memory");
        c->turns = t;
        c->cap_turns = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return jl_fail(JL_ERR_NOMEM, "out of memory");
    memcpy(copy, text, len);
    copy[len] = '\0';
    c->turns[c->n_turns++] = (jl_turn){role, copy};
    return JL_OK;
}

jl_status jl_chat_set_system(jl_chat *c, const char *system) {
    int keep_from = has_system(c);
    if (keep_from) { /* remove the old system turn, keep the rest */
        free((char *)c->turns[0].content);
        memmove(c->turns, c->turns + 1, sizeof *c->turns * (size_t)(c->n_turns - 1));
        c->n_turns--;
    }
    if (!system || !*system) return JL_OK;
    jl_status st = push_turn(c, JL_ROLE_SYSTEM, system, strlen(system));
    if (st != JL_OK) return st;
    jl_turn sys = c->turns[c->n_turns - 1];
    memmove(c->turns + 1, c->turns, sizeof *c->turns * (size_t)(c->n_turns - 1));
    c->turns[0] = sys;
    return JL_OK;
}

void jl_chat_reset(jl_chat *c) {
    drop_turns(c, has_system(c));
    jl_session_truncate(c->s, 0);
}

int jl_chat_turns(const jl_chat *c) {
    int n = 0;
    for (int i = 0; i < c->n_turns; i++) n += c->turns[i].role == JL_ROLE_USER;
    return n;
}

/* The whole conversation, rendered with the chat format and tokenized, after the soft prompt's placeholders if
 * the model has one. */
static jl_status render_ids(jl_chat *c, int32_t **ids, int *n) {
    jl_conversation conv = {c->turns, c->n_turns};
    jl_segments_clear(&c->seg);
    int32_t *body = NULL;
    size_t n_body = 0;
    jl_status st = jl_chat_format_render_generation(c->fmt, &conv, &c->seg);
    if (st == JL_OK) st = jl_segments_encode(c->tok, &c->seg, &body, NULL, &n_body);
    /* a soft prompt's placeholders first (the session puts its virtual tokens there) */
    size_t nv = (size_t)jl_session_virtual_tokens(c->s);
    int32_t *out = st == JL_OK ? calloc(nv + n_body + 1, sizeof *out) : NULL;
    if (st == JL_OK && !out) st = jl_fail(JL_ERR_NOMEM, "out of memory");
    if (st == JL_OK) memcpy(out + nv, body, n_body * sizeof *body);
    free(body);
    if (st != JL_OK) {
        free(out);
        return st;
    }
    *ids = out;
    *n = (int)(nv + n_body);
    return JL_OK;
}

typedef struct {
    jl_gen_callback cb;
    void *user;
    char *text;
    size_t len, cap;
    int oom;
} answer_collector;

static int collect(void *user, const jl_gen_event *ev) {
    answer_collector *a = user;
    if (a->len + ev->text_len + 1 > a->cap) {
        size_t cap = a->cap ? a->cap : 256;
        while (a->len + ev->text_len + 1 > cap) cap *= 2;
        char *p = realloc(a->text, cap);
        if (!p) {
            a->oom = 1;
            return 1;
        }
        a->text = p;
        a->cap = cap;
    }
    memcpy(a->text + a->len, ev->text, ev->text_len);
    a->len += ev->text_len;
    a->text[a->len] = '\0';
    return a->cb ? a->cb(a->user, ev) : 0;
}

jl_status jl_chat_add_turn(jl_chat *c, int role, const char *text) {
    if (role != JL_ROLE_USER && role != JL_ROLE_ASSISTANT && role != JL_ROLE_TOOL)
        return jl_fail(JL_ERR_ARG, "chat: a turn added must be user, assistant or tool");
    return push_turn(c, (jl_role)role, text, strlen(text));
}

void jl_chat_set_context_policy(jl_chat *c, jl_context_policy policy) { c->policy = policy; }
int jl_chat_dropped(const jl_chat *c) { return c->dropped; }

/* Drops the oldest exchange (its user turn up to the next user turn, tool turns included) when it is older than
 * turn `keep`; returns the number of turns removed (0: nothing older to drop). */
static int drop_oldest(jl_chat *c, int keep) {
    int first = has_system(c), next = first + 1;
    if (first >= c->n_turns || c->turns[first].role != JL_ROLE_USER) return 0;
    while (next < c->n_turns && c->turns[next].role != JL_ROLE_USER) next++;
    if (next > keep || next >= c->n_turns) return 0; /* the oldest exchange is the one being answered */
    for (int i = first; i < next; i++) free((char *)c->turns[i].content);
    memmove(c->turns + first, c->turns + next, sizeof *c->turns * (size_t)(c->n_turns - next));
    c->n_turns -= next - first;
    return next - first;
}

/* Renders the conversation; with JL_CONTEXT_DROP_OLDEST, drops the oldest exchanges until it fits with room for
 * the start of an answer (max_tokens, at most an eighth of the context or 64). *keep follows the turns it indexes. */
static jl_status render_fitting(jl_chat *c, int *keep, const jl_gen_opts *o, int32_t **ids, int *n) {
    const int cap = jl_session_capacity(c->s);
    int room = o->max_tokens > 0 && o->max_tokens < 64 ? o->max_tokens : 64;
    if (room > cap / 8) room = cap / 8;
    if (room < 1) room = 1;
    c->dropped = 0;
    for (;;) {
        jl_status st = render_ids(c, ids, n);
        if (st != JL_OK) return st;
        int fits = c->policy == JL_CONTEXT_DROP_OLDEST ? *n + room <= cap : *n <= cap;
        if (fits) return JL_OK;
        int removed = c->policy == JL_CONTEXT_DROP_OLDEST ? drop_oldest(c, *keep) : 0;
        if (removed == 0) {
            if (*n <= cap) return JL_OK; /* nothing left to drop: answer in what room there is */
            free(*ids);
            *ids = NULL;
            return jl_fail(JL_ERR_ARG, "the conversation (%d tokens) no longer fits the context of %d tokens; reset "
                           "it%s", *n, cap, c->policy == JL_CONTEXT_DROP_OLDEST ? " (this turn alone is too long)"
                                                                               : " or drop the oldest turns (--context-policy drop-oldest)");
        }
        free(*ids);
        *ids = NULL;
        *keep -= removed;
        c->dropped++;
    }
}

/* The conversation so far, rendered and prefilled where the cache lacks it, then the assistant's answer. The
 * turns from `keep` on are dropped again on failure. */
static jl_status generate_from(jl_chat *c, int keep, const jl_gen_opts *o, jl_gen_callback cb, void *user,
                               char **answer, jl_gen_result *res) {
    int32_t *ids = NULL;
    int n = 0;
    jl_status st = render_fitting(c, &keep, o, &ids, &n);
    if (st != JL_OK) {
        free(ids);
        drop_turns(c, keep);
        return st;
    }
    /* reuse the cache up to the first token that differs; run at least one token for fresh logits */
    const int32_t *cached = jl_session_tokens(c->s);
    int common = 0, pos = jl_session_pos(c->s);
    while (common < pos && common < n - 1 && cached[common] == ids[common]) common++;
    jl_session_truncate(c->s, common);
    answer_collector col = {.cb = cb, .user = user};
    jl_gen_opts go = *o; /* the format's stop strings after the caller's */
    const char *const *fmt_stops;
    int n_fmt = jl_chat_format_stops(c->fmt, &fmt_stops);
    const char *stops[16];
    if (n_fmt > 0 && o->n_stops + n_fmt <= 16) {
        for (int i = 0; i < o->n_stops; i++) stops[i] = o->stops[i];
        for (int i = 0; i < n_fmt; i++) stops[o->n_stops + i] = fmt_stops[i];
        go.stops = stops;
        go.n_stops = o->n_stops + n_fmt;
    }
    st = jl_generate(c->s, c->smp, c->tok, ids + common, n - common, &go, collect, &col, res);
    free(ids);
    if (st == JL_OK && col.oom) st = jl_fail(JL_ERR_NOMEM, "out of memory");
    if (st == JL_OK) st = push_turn(c, JL_ROLE_ASSISTANT, col.text ? col.text : "", col.len);
    if (st != JL_OK) {
        drop_turns(c, keep);
        free(col.text);
        return st;
    }
    if (answer) *answer = col.text;
    else free(col.text);
    return JL_OK;
}

jl_status jl_chat_generate(jl_chat *c, const jl_gen_opts *o, jl_gen_callback cb, void *user, char **answer,
                           jl_gen_result *res) {
    if (answer) *answer = NULL;
    memset(res, 0, sizeof *res);
    return generate_from(c, c->n_turns, o, cb, user, answer, res);
}

jl_status jl_chat_turn(jl_chat *c, const char *user_text, const jl_gen_opts *o, jl_gen_callback cb, void *user,
                       char **answer, jl_gen_result *res) {
    if (answer) *answer = NULL;
    memset(res, 0, sizeof *res);
    int before = c->n_turns;
    jl_status st = push_turn(c, JL_ROLE_USER, user_text, strlen(user_text));
    return st != JL_OK ? st : generate_from(c, before, o, cb, user, answer, res);
}
