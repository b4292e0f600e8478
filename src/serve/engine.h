/* The serving engine: one thread that owns a jl_batch (N KV slots) and runs the decode loop for every admitted
 * request at once. HTTP threads submit jobs and read their tokens; all shared state is under one mutex.
 *
 * Each step: cancelled or finished choices leave (their slot is free at once), queued jobs join while slots are
 * free (all choices of a job together), then ONE jl_batch_forward over one decode token per running choice plus
 * prompt chunks of the joining ones (up to `chunk` prompt tokens per step, so running streams keep flowing), then
 * every choice whose prompt is in samples its next token with its own sampler (seed + choice index). The n choices
 * of one prompt share its prefill: the first runs it, the others copy its cache but for the last prompt position
 * (jl_batch_copy_prefix) at the end of that step and run that one token themselves, for their own logits. */
#ifndef JL_SERVE_ENGINE_H
#define JL_SERVE_ENGINE_H
#include "infer/batch.h"
#include "serve/request.h"
#include <pthread.h>

/* One generated token as the client sees it. */
typedef struct {
    int32_t id;          /* -1: the text held back at the end (no token) */
    char *text;          /* text released at this token (may be ""), NUL-terminated */
    size_t text_len;
    float logprob;       /* log p of the token (model distribution after penalties) */
    int n_top;
    int32_t top_id[SERVE_MAX_TOP_LOGPROBS];
    float top_lp[SERVE_MAX_TOP_LOGPROBS];
} serve_tok;

typedef struct {
    /* read by the engine only */
    jl_sampler *smp;
    jl_textstream *ts;
    int32_t *prompt;
    int n_prompt, slot, fed;   /* fed: prompt tokens already in the cache */
    int leader;                /* n > 1: the choice (index in the job) whose prefill this one copies, or -1 */
    int32_t next;              /* the sampled token to feed at the next step */
    int n_generated, running;
    serve_tok staged;          /* the token of this step, before it is published */
    int staged_finish;         /* 0, or a finish reason set this step */
    /* shared under the engine's mutex */
    serve_tok *toks;
    int n_toks, cap_toks;
    const char *finish;        /* "stop" / "length" once done, else NULL */
    /* echo + logprobs: per prompt token after the first, its logprob and top alternatives */
    serve_tok *prompt_toks;
    int n_prompt_toks;
} serve_choice;

typedef struct serve_job {
    serve_params p;
    int n_choices;
    serve_choice *choices;
    int prompt_tokens;         /* usage: Σ over distinct prompts */
    pthread_cond_t cond;       /* signalled when tokens arrive or the job ends */
    int cancelled;             /* set by the client side (disconnect) */
    int done;                  /* every choice finished (or the job was dropped) */
    int failed;                /* the engine dropped it (shutdown, error): error message below */
    char error[200];
    int refs;                  /* the HTTP side and the engine */
    double t_submit, t_first;
    struct serve_job *next;    /* the queue */
} serve_job;

typedef struct {
    const jl_model *model;
    const jl_qweights *qw;
    const jl_tokenizer *tok;
    int parallel, context, threads, max_queue, chunk;
    const struct jl_chat_format *fmt; /* the model's chat template, or NULL for jielong's own */
    double max_request_s;      /* a job running longer (from submission) ends with finish_reason "length"; 0 = none */
    int bf16;                  /* fp32 weights' batched products in bf16 (jl_batch_set_precision) */
} serve_engine_opts;

typedef struct {
    unsigned long long prompt_tokens, generated_tokens, steps, jobs_done, jobs_timed_out;
    int active, queued, slots_used, slots;
    double tok_per_s; /* generated tokens per second over the last few steps */
} serve_stats;

typedef struct serve_engine serve_engine;
jl_status serve_engine_start(const serve_engine_opts *o, serve_engine **out);
/* Stops the loop: queued jobs fail, running ones get up to grace_s seconds to finish, then are cut. Joins. */
void serve_engine_stop(serve_engine *e, double grace_s);
void serve_engine_free(serve_engine *e);

/* A job for p (moved in: p is zeroed) with its choices' prompts tokenized: chat messages rendered with the chat
 * template, completions' prompts after <|bos|>. Fails with a 400 when a prompt does not fit the context. */
jl_status serve_job_new(serve_engine *e, serve_params *p, serve_job **out, serve_error *err);
/* Queues the job: 0 on success, else fills err (503 queue full / shutting down). */
int serve_engine_submit(serve_engine *e, serve_job *j, serve_error *err);
void serve_job_release(serve_engine *e, serve_job *j); /* the HTTP side's reference */
void serve_job_cancel(serve_engine *e, serve_job *j);

pthread_mutex_t *serve_engine_lock(serve_engine *e);
/* Waits (lock held) until the job has news or `seconds` passed. */
void serve_job_wait(serve_engine *e, serve_job *j, double seconds);
void serve_engine_stats(serve_engine *e, serve_stats *s);
const jl_tokenizer *serve_engine_tokenizer(const serve_engine *e);
int serve_engine_context(const serve_engine *e);
int serve_engine_vocab(const serve_engine *e);

/* Messages rendered into token ids (malloc'd) with the model's chat format (fmt NULL: jielong's own template). */
jl_status serve_render_chat(const struct jl_chat_format *fmt, const jl_tokenizer *tok, const jl_turn *turns,
                            int n_turns, int32_t **ids, int *n);

#endif
