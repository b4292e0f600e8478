/* The serving engine (see engine.h). */
#include "serve/engine.h"
#include "jielong/chat_format.h"
#include "core/timer.h"
#include "model/lora.h"
#include "model/model.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct serve_engine {
    serve_engine_opts o;
    jl_batch *batch;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;        /* new jobs, cancellations, stop */
    serve_job *queue_head, *queue_tail;
    int queued;
    serve_job **running;        /* jobs with slots */
    int n_running;
    serve_choice **slot_owner;  /* per slot, or NULL */
    int stopping;               /* 1: no new jobs; queued ones fail */
    double cut_at;              /* when stopping: running jobs are cut after this time */
    int started;
    serve_stats stats;
    /* step scratch */
    jl_batch_item *items;
    serve_choice **item_choice;
    int32_t *feed;              /* one token per decode item */
    void *info;                 /* item_info per item */
    size_t *off;                /* first logits row per item */
};

pthread_mutex_t *serve_engine_lock(serve_engine *e) { return &e->mu; }
const jl_tokenizer *serve_engine_tokenizer(const serve_engine *e) { return e->o.tok; }
int serve_engine_context(const serve_engine *e) { return jl_batch_capacity(e->batch); }
int serve_engine_vocab(const serve_engine *e) { return e->o.model->cfg.vocab_size; }

/* ---------------------------------------------------------------- prompts */

static jl_status append_ids(int32_t **out, size_t *n, size_t *cap, const int32_t *ids, size_t k) {
    if (k == 0) return JL_OK;
    if (*n + k > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *n + k) c *= 2;
        int32_t *g = realloc(*out, sizeof *g * c);
        if (!g) return jl_fail(JL_ERR_NOMEM, "out of memory");
        *out = g;
        *cap = c;
    }
    memcpy(*out + *n, ids, sizeof *ids * k);
    *n += k;
    return JL_OK;
}

jl_status serve_render_chat(const jl_chat_format *fmt, const jl_tokenizer *tok, const jl_turn *turns,
                            int n_turns, int32_t **ids, int *n) {
    *ids = NULL;
    *n = 0;
    jl_conversation conv = {turns, n_turns};
    jl_segments seg = {0};
    jl_status st = jl_chat_format_render_generation(fmt, &conv, &seg);
    size_t len = 0;
    if (st == JL_OK) st = jl_segments_encode(tok, &seg, ids, NULL, &len);
    jl_segments_free(&seg);
    if (st == JL_OK && len > (size_t)1 << 30) st = jl_fail(JL_ERR_ARG, "the rendered conversation is too long");
    if (st != JL_OK) {
        free(*ids);
        *ids = NULL;
        return st;
    }
    *n = (int)len;
    return JL_OK;
}

/* A soft prompt's placeholder positions first (the batch puts its virtual tokens there). */
static jl_status with_placeholders(const serve_engine *e, int32_t **ids, int *n) {
    const int nv = e->o.model->prompt ? jl_prompt_length(e->o.model->prompt) : 0;
    if (nv == 0) return JL_OK;
    int32_t *all = calloc((size_t)nv + (size_t)*n, sizeof *all);
    if (!all) return jl_fail(JL_ERR_NOMEM, "out of memory");
    memcpy(all + nv, *ids, sizeof *all * (size_t)*n);
    free(*ids);
    *ids = all;
    *n += nv;
    return JL_OK;
}

static void free_choice(serve_choice *c) {
    jl_sampler_free(c->smp);
    jl_textstream_free(c->ts);
    free(c->prompt);
    for (int i = 0; i < c->n_toks; i++) free(c->toks[i].text);
    free(c->toks);
    for (int i = 0; i < c->n_prompt_toks; i++) free(c->prompt_toks[i].text);
    free(c->prompt_toks);
}

static void job_free(serve_job *j) {
    for (int i = 0; i < j->n_choices; i++) free_choice(&j->choices[i]);
    free(j->choices);
    serve_params_free(&j->p);
    pthread_cond_destroy(&j->cond);
    free(j);
}

/* tool_choice required / a named function: the answer starts with p->forced, which goes in as prompt */
static jl_status append_forced(const serve_engine *e, const serve_params *p, int32_t **ids, int *n) {
    if (!p->forced) return JL_OK;
    int32_t *piece = NULL;
    size_t k = 0;
    jl_status st = jl_tokenizer_encode(e->o.tok, p->forced, strlen(p->forced), 0, &piece, &k);
    size_t len = (size_t)*n, cap = len;
    if (st == JL_OK) st = append_ids(ids, &len, &cap, piece, k);
    free(piece);
    *n = (int)len;
    return st;
}

static jl_status prompt_ids(const serve_engine *e, const serve_params *p, int k, int32_t **ids, int *n) {
    jl_status st = p->kind == SERVE_CHAT ? serve_render_chat(e->o.fmt, e->o.tok, p->turns, p->n_turns, ids, n)
                                         : jl_encode_prompt(e->o.tok, p->prompts[k], ids, n);
    if (st == JL_OK && p->kind == SERVE_CHAT) st = append_forced(e, p, ids, n);
    return st == JL_OK ? with_placeholders(e, ids, n) : st;
}

static jl_status choice_init(const serve_engine *e, const serve_params *p, serve_choice *c, int index) {
    jl_sampler_params sp = p->sampling;
    sp.seed += (uint64_t)index;
    jl_status st = jl_sampler_new(&sp, e->o.model->cfg.vocab_size, &c->smp);
    /* a chat answer also ends at the model's end-of-turn marker when its template writes one (e.g. <|im_end|>) */
    const char *stops[SERVE_MAX_STOPS + 8];
    const char *const *fmt_stops = NULL;
    int n_stops = 0, n_fmt = p->kind == SERVE_CHAT ? jl_chat_format_stops(e->o.fmt, &fmt_stops) : 0;
    for (int i = 0; i < p->n_stops; i++) stops[n_stops++] = p->stops[i];
    for (int i = 0; i < n_fmt && i < 8; i++) stops[n_stops++] = fmt_stops[i];
    if (st == JL_OK) st = jl_textstream_new(stops, n_stops, &c->ts);
    c->slot = -1;
    return st;
}

jl_status serve_job_new(serve_engine *e, serve_params *p, serve_job **out, serve_error *err) {
    *out = NULL;
    serve_job *j = calloc(1, sizeof *j);
    const int n_prompts = p->kind == SERVE_CHAT ? 1 : p->n_prompts;
    if (j) j->choices = calloc((size_t)n_prompts * (size_t)p->n, sizeof *j->choices);
    if (!j || !j->choices) {
        free(j);
        serve_error_set(err, 500, "server_error", "", "out of memory");
        return JL_ERR_NOMEM;
    }
    j->p = *p;
    memset(p, 0, sizeof *p);
    pthread_cond_init(&j->cond, NULL);
    j->refs = 1;
    jl_status st = JL_OK;
    const int cap = jl_batch_capacity(e->batch);
    for (int k = 0; k < n_prompts && st == JL_OK; k++) {
        int32_t *ids = NULL;
        int n = 0;
        st = prompt_ids(e, &j->p, k, &ids, &n);
        if (st != JL_OK) {
            serve_error_set(err, st == JL_ERR_NOMEM ? 500 : 400, st == JL_ERR_NOMEM ? "server_error" : "invalid_request_error",
                            j->p.kind == SERVE_CHAT ? "messages" : "prompt", "%s", jl_last_error());
            break;
        }
        if (n >= cap) {
            serve_error_set(err, 400, "invalid_request_error", j->p.kind == SERVE_CHAT ? "messages" : "prompt",
                            "the prompt has %d tokens but the context holds %d (one more is needed to answer)", n, cap);
            err->code = "context_length_exceeded";
            free(ids);
            st = JL_ERR_ARG;
            break;
        }
        j->prompt_tokens += n;
        for (int c = 0; c < j->p.n && st == JL_OK; c++) {
            serve_choice *ch = &j->choices[j->n_choices++];
            st = choice_init(e, &j->p, ch, c);
            ch->prompt = c == j->p.n - 1 ? ids : malloc(sizeof *ids * (size_t)n);
            if (!ch->prompt) st = jl_fail(JL_ERR_NOMEM, "out of memory");
            else if (ch->prompt != ids) memcpy(ch->prompt, ids, sizeof *ids * (size_t)n);
            ch->n_prompt = n;
            ch->leader = c > 0 && !(j->p.echo && j->p.logprobs) ? j->n_choices - 1 - c : -1;
            if (st != JL_OK) serve_error_set(err, 500, "server_error", "", "%s", jl_last_error());
        }
        if (st != JL_OK && (j->n_choices == 0 || j->choices[j->n_choices - 1].prompt != ids)) free(ids);
    }
    if (st != JL_OK) {
        job_free(j);
        return st;
    }
    *out = j;
    return JL_OK;
}

/* ---------------------------------------------------------------- queue and lifetime */

int serve_engine_submit(serve_engine *e, serve_job *j, serve_error *err) {
    pthread_mutex_lock(&e->mu);
    int ok = 0;
    if (e->stopping) {
        serve_error_set(err, 503, "server_error", "", "the server is shutting down");
    } else if (e->queued >= e->o.max_queue) {
        serve_error_set(err, 503, "server_error", "", "the queue is full (%d requests waiting): retry later", e->queued);
        err->code = "queue_full";
    } else if (j->n_choices > jl_batch_slots(e->batch)) {
        serve_error_set(err, 400, "invalid_request_error", "n", "%d choices need more slots than the server has (%d)",
                        j->n_choices, jl_batch_slots(e->batch));
    } else {
        j->refs++;
        j->t_submit = jl_now();
        if (e->queue_tail) e->queue_tail->next = j;
        else e->queue_head = j;
        e->queue_tail = j;
        e->queued++;
        ok = 1;
        pthread_cond_signal(&e->wake);
    }
    pthread_mutex_unlock(&e->mu);
    return ok;
}

static void job_unref(serve_job *j) { /* lock held */
    if (--j->refs == 0) job_free(j);
}

void serve_job_release(serve_engine *e, serve_job *j) {
    if (!j) return;
    pthread_mutex_lock(&e->mu);
    j->cancelled = 1;
    pthread_cond_signal(&e->wake);
    job_unref(j);
    pthread_mutex_unlock(&e->mu);
}

void serve_job_cancel(serve_engine *e, serve_job *j) {
    pthread_mutex_lock(&e->mu);
    j->cancelled = 1;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->mu);
}

void serve_job_wait(serve_engine *e, serve_job *j, double seconds) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ns = (long long)ts.tv_nsec + (long long)(seconds * 1e9);
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    pthread_cond_timedwait(&j->cond, &e->mu, &ts);
}

void serve_engine_stats(serve_engine *e, serve_stats *s) {
    pthread_mutex_lock(&e->mu);
    *s = e->stats;
    s->queued = e->queued;
    s->active = e->n_running;
    s->slots = jl_batch_slots(e->batch);
    int used = 0;
    for (int i = 0; i < s->slots; i++) used += e->slot_owner[i] != NULL;
    s->slots_used = used;
    pthread_mutex_unlock(&e->mu);
}

/* ---------------------------------------------------------------- one step */

static void finish_choice(serve_engine *e, serve_choice *c, const char *reason) { /* lock held */
    if (c->finish) return;
    c->finish = reason;
    c->running = 0;
    if (c->slot >= 0) {
        e->slot_owner[c->slot] = NULL;
        jl_batch_reset(e->batch, c->slot);
        c->slot = -1;
    }
}

static void job_end(serve_engine *e, int k, const char *error) { /* lock held: running[k] leaves */
    serve_job *j = e->running[k];
    for (int i = 0; i < j->n_choices; i++) finish_choice(e, &j->choices[i], "length");
    if (error) {
        j->failed = 1;
        snprintf(j->error, sizeof j->error, "%s", error);
    }
    j->done = 1;
    e->stats.jobs_done++;
    pthread_cond_broadcast(&j->cond);
    e->running[k] = e->running[--e->n_running];
    job_unref(j);
}

static int free_slots(const serve_engine *e) {
    int n = 0;
    for (int i = 0; i < jl_batch_slots(e->batch); i++) n += e->slot_owner[i] == NULL;
    return n;
}

/* Queued jobs join while their choices fit the free slots (first come, first served). */
static void admit(serve_engine *e) { /* lock held */
    while (e->queue_head && free_slots(e) >= e->queue_head->n_choices) {
        serve_job *j = e->queue_head;
        e->queue_head = j->next;
        if (!e->queue_head) e->queue_tail = NULL;
        e->queued--;
        j->next = NULL;
        e->running[e->n_running++] = j;
        for (int i = 0; i < j->n_choices; i++) {
            int s = 0;
            while (e->slot_owner[s]) s++;
            e->slot_owner[s] = &j->choices[i];
            j->choices[i].slot = s;
            j->choices[i].running = 1;
            jl_batch_reset(e->batch, s);
        }
    }
}

static void close_choice(serve_engine *e, serve_choice *c, const char *reason);

/* Cancelled jobs and jobs whose choices all finished leave; during shutdown queued jobs fail, running ones are
 * cut at the deadline. */
static void sweep(serve_engine *e) { /* lock held */
    for (int k = e->n_running - 1; k >= 0; k--) {
        serve_job *j = e->running[k];
        int all = 1;
        for (int i = 0; i < j->n_choices; i++) all &= j->choices[i].finish != NULL;
        if (all || j->cancelled) job_end(e, k, NULL);
        else if (e->stopping && jl_now() > e->cut_at) job_end(e, k, "the server shut down before the answer was complete");
        else if (e->o.max_request_s > 0 && jl_now() - j->t_submit > e->o.max_request_s) { /* the answer so far */
            for (int i = 0; i < j->n_choices; i++)
                if (!j->choices[i].finish) close_choice(e, &j->choices[i], "length");
            e->stats.jobs_timed_out++;
            job_end(e, k, NULL);
        }
    }
    while (e->stopping && e->queue_head) {
        serve_job *j = e->queue_head;
        e->queue_head = j->next;
        e->queued--;
        j->failed = j->done = 1;
        snprintf(j->error, sizeof j->error, "the server is shutting down");
        pthread_cond_broadcast(&j->cond);
        job_unref(j);
    }
    if (!e->queue_head) e->queue_tail = NULL;
}

/* Items of this step: a decode token per running choice, then prompt chunks within the row budget. */
static int build_items(serve_engine *e) { /* lock held */
    int n = 0, rows = 0, budget = e->o.chunk;
    const int max_rows = jl_batch_max_rows(e->batch);
    for (int k = 0; k < e->n_running; k++)
        for (int i = 0; i < e->running[k]->n_choices; i++) {
            serve_choice *c = &e->running[k]->choices[i];
            if (!c->running || c->fed < c->n_prompt) continue;
            e->feed[n] = c->next;
            e->items[n] = (jl_batch_item){c->slot, &e->feed[n], 1, JL_BATCH_LOGITS_LAST};
            e->item_choice[n++] = c;
            rows++;
        }
    for (int k = 0; k < e->n_running && budget > 0 && rows < max_rows; k++) {
        const serve_job *j = e->running[k];
        for (int i = 0; i < j->n_choices && budget > 0 && rows < max_rows; i++) {
            serve_choice *c = &j->choices[i];
            if (!c->running || c->fed >= c->n_prompt || c->leader >= 0) continue; /* a follower waits for its leader */
            int take = c->n_prompt - c->fed;
            take = take < budget ? take : budget;
            take = take < max_rows - rows ? take : max_rows - rows;
            const int all = j->p.echo && j->p.logprobs;
            e->items[n] = (jl_batch_item){c->slot, c->prompt + c->fed, take,
                                          all ? JL_BATCH_LOGITS_ALL : c->fed + take == c->n_prompt ? JL_BATCH_LOGITS_LAST : JL_BATCH_LOGITS_NONE};
            e->item_choice[n++] = c;
            rows += take;
            budget -= take;
        }
    }
    return n;
}

/* What a step needs to know of a choice's job. */
typedef struct {
    int top;        /* logprob alternatives to report (0: no logprobs) */
    int ignore_eos;
    int max_tokens; /* -1: until the context is full */
} item_info;

static item_info info_of(const serve_engine *e, const serve_choice *c) { /* lock held */
    for (int k = 0; k < e->n_running; k++) {
        const serve_job *j = e->running[k];
        if (c >= j->choices && c < j->choices + j->n_choices)
            return (item_info){j->p.logprobs ? (j->p.top_logprobs > 0 ? j->p.top_logprobs : 1) : 0, j->p.ignore_eos,
                               j->p.max_tokens};
    }
    return (item_info){0, 0, -1};
}

static int is_end_token(const jl_tokenizer *tok, int32_t t) {
    return t == jl_tokenizer_eos(tok) || t == jl_tokenizer_special(tok, "<|end|>") ||
           t == jl_tokenizer_bos(tok);
}

static char *dup_bytes(const char *s, size_t n) {
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, s, n);
        c[n] = '\0';
    }
    return c;
}

/* log-softmax view of one row: the logprob of `want` and the top k, from the raw logits (temperature 1). */
static void row_logprobs(const float *row, int V, int32_t want, int k, serve_tok *t) {
    float maxv = -INFINITY;
    for (int i = 0; i < V; i++) maxv = row[i] > maxv ? row[i] : maxv;
    double sum = 0.0;
    for (int i = 0; i < V; i++) sum += exp((double)(row[i] - maxv));
    const float lse = maxv + (float)log(sum);
    t->id = want;
    t->logprob = row[want] - lse;
    t->n_top = 0;
    for (int i = 0; i < V && k > 0; i++) { /* insertion into the top k, descending (smaller id first on ties) */
        int at = t->n_top;
        while (at > 0 && row[i] - lse > t->top_lp[at - 1]) at--;
        if (at >= k) continue;
        int last = t->n_top < k ? t->n_top : k - 1;
        memmove(t->top_id + at + 1, t->top_id + at, sizeof *t->top_id * (size_t)(last - at));
        memmove(t->top_lp + at + 1, t->top_lp + at, sizeof *t->top_lp * (size_t)(last - at));
        t->top_id[at] = i;
        t->top_lp[at] = row[i] - lse;
        if (t->n_top < k) t->n_top++;
    }
}

/* The choice's work on its logits rows of this step (no lock: engine-only fields; stages what to publish). */
static void process_item(serve_engine *e, const jl_batch_item *it, serve_choice *c, const float *rows, int ld,
                         item_info info) {
    const int top = info.top;
    const int V = e->o.model->cfg.vocab_size;
    c->staged_finish = 0;
    c->staged.text = NULL;
    c->staged.id = -2; /* nothing staged */
    const int prefill = c->fed < c->n_prompt;
    if (prefill) c->fed += it->n;
    if (it->logits == JL_BATCH_LOGITS_ALL && prefill) { /* echo: logprob of each next prompt token */
        const int first = c->fed - it->n;
        for (int i = 0; i < it->n && first + i + 1 < c->n_prompt; i++) {
            serve_tok *t = &c->prompt_toks[first + i];
            row_logprobs(rows + (size_t)i * ld, V, c->prompt[first + i + 1], top, t);
            size_t len = 0;
            const char *b = jl_tokenizer_token(e->o.tok, t->id, &len);
            t->text = dup_bytes(b ? b : "", b ? len : 0);
            t->text_len = b ? len : 0;
        }
        if (c->fed < c->n_prompt) return;
        rows += (size_t)(it->n - 1) * ld;
    } else if (it->logits == JL_BATCH_LOGITS_NONE) {
        return;
    }
    if (info.max_tokens == 0) return; /* echo only: nothing is sampled */
    jl_sample_report rep;
    const int32_t *hist = jl_batch_tokens(e->batch, c->slot);
    int32_t t = jl_sampler_sample(c->smp, rows, hist, jl_batch_pos(e->batch, c->slot), top ? &rep : NULL, top);
    if (!info.ignore_eos && is_end_token(e->o.tok, t)) {
        c->staged_finish = 1; /* stop */
        return;
    }
    size_t nb = 0;
    const char *bytes = jl_tokenizer_token(e->o.tok, t, &nb);
    const char *text;
    size_t tl;
    int stopped = jl_textstream_push(c->ts, bytes ? bytes : "", bytes ? nb : 0, &text, &tl);
    c->staged = (serve_tok){.id = t, .text = dup_bytes(text, tl), .text_len = tl};
    if (top) {
        c->staged.logprob = logf(rep.chosen.p_model > 0 ? rep.chosen.p_model : 1e-45f);
        c->staged.n_top = rep.n_top < top ? rep.n_top : top;
        for (int i = 0; i < c->staged.n_top; i++) {
            c->staged.top_id[i] = rep.top[i].id;
            c->staged.top_lp[i] = logf(rep.top[i].p_model > 0 ? rep.top[i].p_model : 1e-45f);
        }
    }
    c->n_generated++;
    c->next = t;
    if (stopped) c->staged_finish = 1;
}

static int push_tok(serve_choice *c, serve_tok t) { /* lock held */
    if (c->n_toks == c->cap_toks) {
        int cap = c->cap_toks ? 2 * c->cap_toks : 16;
        serve_tok *g = realloc(c->toks, sizeof *g * (size_t)cap);
        if (!g) return 0;
        c->toks = g;
        c->cap_toks = cap;
    }
    c->toks[c->n_toks++] = t;
    return 1;
}

/* Ends a choice: the text still held back by the stream goes out as a last piece. */
static void close_choice(serve_engine *e, serve_choice *c, const char *reason) { /* lock held */
    const char *text;
    size_t len;
    jl_textstream_flush(c->ts, &text, &len);
    if (len) {
        serve_tok t = {.id = -1, .text = dup_bytes(text, len), .text_len = len};
        if (!t.text || !push_tok(c, t)) free(t.text);
    }
    finish_choice(e, c, reason);
}

static void publish(serve_engine *e, int n_items, const item_info *info) {
    double now = jl_now();
    for (int i = 0; i < n_items; i++) {
        serve_choice *c = e->item_choice[i];
        if (c->finish) continue;
        if (c->staged.id != -2) {
            if (!c->staged.text || !push_tok(c, c->staged)) {
                free(c->staged.text);
                close_choice(e, c, "length");
                continue;
            }
            e->stats.generated_tokens++;
        }
        const int max_tokens = info[i].max_tokens;
        if (c->staged_finish == 1) close_choice(e, c, "stop");
        else if (c->fed == c->n_prompt && ((max_tokens >= 0 && c->n_generated >= max_tokens) ||
                                           jl_batch_pos(e->batch, c->slot) >= jl_batch_capacity(e->batch)))
            close_choice(e, c, "length");
    }
    for (int k = 0; k < e->n_running; k++) {
        serve_job *j = e->running[k];
        if (!j->t_first && j->n_choices && j->choices[0].n_toks) j->t_first = now;
        pthread_cond_broadcast(&j->cond);
    }
}

/* Prompt logprob arrays for echo jobs that just joined (engine-only memory, allocated before their first step). */
static void prepare_echo(serve_engine *e) { /* lock held */
    for (int k = 0; k < e->n_running; k++) {
        serve_job *j = e->running[k];
        if (!j->p.echo || !j->p.logprobs) continue;
        for (int i = 0; i < j->n_choices; i++) {
            serve_choice *c = &j->choices[i];
            if (c->prompt_toks || c->n_prompt < 2) continue;
            c->prompt_toks = calloc((size_t)c->n_prompt - 1, sizeof *c->prompt_toks);
            if (!c->prompt_toks) finish_choice(e, c, "length");
            else c->n_prompt_toks = c->n_prompt - 1;
        }
    }
}

/* Followers whose leader's prompt is now in its cache take it over (all but the last position, which they run
 * themselves next step for their own logits), before anything of this step can free the leader's slot. */
static void share_prefill(serve_engine *e) { /* lock held */
    for (int k = 0; k < e->n_running; k++) {
        serve_job *j = e->running[k];
        for (int i = 0; i < j->n_choices; i++) {
            serve_choice *c = &j->choices[i], *lead = c->leader >= 0 ? &j->choices[c->leader] : NULL;
            if (!lead || !c->running || lead->slot < 0 || lead->fed < lead->n_prompt) continue;
            if (jl_batch_copy_prefix(e->batch, lead->slot, c->slot, c->n_prompt - 1) == JL_OK) c->fed = c->n_prompt - 1;
            c->leader = -1; /* on failure (cannot happen: same prompt) it prefills itself */
        }
    }
}

static void step(serve_engine *e) {
    pthread_mutex_lock(&e->mu);
    sweep(e);
    if (!e->stopping) admit(e);
    prepare_echo(e);
    int n = build_items(e);
    item_info *info = e->info;
    for (int i = 0; i < n; i++) info[i] = info_of(e, e->item_choice[i]);
    int prompt_rows = 0;
    for (int i = 0; i < n; i++) prompt_rows += e->item_choice[i]->fed < e->item_choice[i]->n_prompt ? e->items[i].n : 0;
    pthread_mutex_unlock(&e->mu);
    if (n == 0) return;
    const double t0 = jl_now();
    const float *logits;
    int ld;
    jl_status st = jl_batch_forward(e->batch, e->items, n, &logits, &ld);
    /* each item's logits rows: per item in order, none / 1 / n rows */
    size_t *off = e->off, o = 0;
    for (int i = 0; i < n; i++) {
        off[i] = o;
        o += e->items[i].logits == JL_BATCH_LOGITS_ALL ? (size_t)e->items[i].n : e->items[i].logits == JL_BATCH_LOGITS_LAST;
    }
    if (st == JL_OK) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(e->o.threads)
        for (int i = 0; i < n; i++)
            process_item(e, &e->items[i], e->item_choice[i], logits + off[i] * (size_t)ld, ld, info[i]);
    }
    pthread_mutex_lock(&e->mu);
    if (st != JL_OK) {
        while (e->n_running) job_end(e, 0, jl_last_error());
    } else {
        share_prefill(e);
        publish(e, n, info);
    }
    e->stats.steps++;
    e->stats.prompt_tokens += (unsigned long long)prompt_rows;
    const double dt = jl_now() - t0, rate = dt > 0 ? (double)(n - (prompt_rows ? 1 : 0)) / dt : 0.0;
    e->stats.tok_per_s = e->stats.steps == 1 ? rate : 0.9 * e->stats.tok_per_s + 0.1 * rate;
    pthread_mutex_unlock(&e->mu);
}

static void *engine_main(void *arg) {
    serve_engine *e = arg;
    if (e->o.threads > 0) omp_set_num_threads(e->o.threads);
    for (;;) {
        pthread_mutex_lock(&e->mu);
        while (!e->stopping && !e->queue_head && e->n_running == 0) pthread_cond_wait(&e->wake, &e->mu);
        int quit = e->stopping && !e->queue_head && e->n_running == 0;
        pthread_mutex_unlock(&e->mu);
        if (quit) break;
        step(e);
    }
    return NULL;
}

jl_status serve_engine_start(const serve_engine_opts *o, serve_engine **out) {
    *out = NULL;
    serve_engine *e = calloc(1, sizeof *e);
    if (!e) return jl_fail(JL_ERR_NOMEM, "out of memory");
    e->o = *o;
    if (e->o.threads <= 0) e->o.threads = omp_get_max_threads();
    if (e->o.chunk <= 0) e->o.chunk = 64;
    if (e->o.max_queue <= 0) e->o.max_queue = 64;
    if (e->o.parallel < 1 || e->o.parallel > 1024) {
        free(e);
        return jl_fail(JL_ERR_ARG, "--parallel %d: must be in 1..1024", o->parallel);
    }
    const int max_rows = e->o.parallel + e->o.chunk;
    int saved = omp_get_max_threads();
    omp_set_num_threads(e->o.threads); /* the batch sizes its per-thread scratch from this */
    jl_status st = jl_batch_new(o->model, o->qw, e->o.parallel, o->context, max_rows, &e->batch);
    if (st == JL_OK && e->o.bf16) st = jl_batch_set_precision(e->batch, JL_PREC_BF16); /* threads as the batch's */
    omp_set_num_threads(saved);
    if (st == JL_OK && o->model->lora) st = jl_model_attach_lora((jl_model *)o->model, o->model->lora, max_rows);
    e->running = calloc((size_t)e->o.parallel, sizeof *e->running);
    e->slot_owner = calloc((size_t)e->o.parallel, sizeof *e->slot_owner);
    e->items = calloc((size_t)max_rows, sizeof *e->items);
    e->item_choice = calloc((size_t)max_rows, sizeof *e->item_choice);
    e->feed = calloc((size_t)max_rows, sizeof *e->feed);
    e->info = calloc((size_t)max_rows, sizeof(item_info));
    e->off = calloc((size_t)max_rows, sizeof *e->off);
    if (st == JL_OK && (!e->running || !e->slot_owner || !e->items || !e->item_choice || !e->feed || !e->info || !e->off))
        st = jl_fail(JL_ERR_NOMEM, "out of memory");
    if (st == JL_OK && max_rows > 4096) st = jl_fail(JL_ERR_ARG, "--parallel %d: too many rows per step", o->parallel);
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->wake, NULL);
    if (st == JL_OK && pthread_create(&e->thread, NULL, engine_main, e) != 0)
        st = jl_fail(JL_ERR_RUNTIME, "cannot start the engine thread");
    if (st != JL_OK) {
        serve_engine_free(e);
        return st;
    }
    e->started = 1;
    *out = e;
    return JL_OK;
}

void serve_engine_stop(serve_engine *e, double grace_s) {
    if (!e || !e->started) return;
    pthread_mutex_lock(&e->mu);
    e->stopping = 1;
    e->cut_at = jl_now() + grace_s;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->thread, NULL);
    e->started = 0;
}

void serve_engine_free(serve_engine *e) {
    if (!e) return;
    serve_engine_stop(e, 0.0);
    jl_batch_free(e->batch);
    free(e->running);
    free(e->slot_owner);
    free(e->items);
    free(e->item_choice);
    free(e->feed);
    free(e->info);
    free(e->off);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->wake);
    free(e);
}
