/* Inference: a session with a KV cache (prefill + decode), the sampler, streaming text with stop strings,
 * the generation loop and a multi-turn chat that keeps its cache across turns.
 *
 * Context limit: a session holds at most `capacity` positions. Generation stops with JL_STOP_CONTEXT_FULL when
 * the cache is full (no sliding window: the model never sees positions it was not trained on, and the caller
 * decides what to drop). A prompt that does not fit is an error (JL_ERR_ARG). */
#ifndef JIELONG_GENERATE_H
#define JIELONG_GENERATE_H
#include "jielong/model.h"
#include "jielong/tokenizer.h"

/* ---- session: KV cache + forward of new tokens ---- */

typedef struct jl_session jl_session;

/* A session over m (borrowed; must outlive the session). Adapters attached to m (jl_model_attach_lora /
 * jl_model_attach_prompt, include/jielong/adapter.h) are used unmerged by every forward of the session: the LoRA
 * term after each projection; the soft prompt's virtual tokens at the first positions of the cache, which the
 * caller fills with jl_session_virtual_tokens placeholders (any valid id) before the real tokens.
 * capacity = cache positions, 0 = the model's context; it may not exceed the model's context. */
jl_status jl_session_new(const jl_model *m, int capacity, jl_session **out);
void jl_session_free(jl_session *s);
int jl_session_capacity(const jl_session *s);
int jl_session_pos(const jl_session *s); /* positions filled */
const int32_t *jl_session_tokens(const jl_session *s); /* the pos tokens in the cache */
/* Placeholder positions a soft prompt attached to the model takes at the start of every sequence (0: none). */
int jl_session_virtual_tokens(const jl_session *s);
/* Forgets positions from `pos` on (0 = empty cache); pos must be ≤ the current position. */
void jl_session_truncate(jl_session *s, int pos);
/* Runs n new tokens at positions pos..pos+n-1 (n == 1: the matrix-vector decode path; n > 1: prefill with
 * matrix products). Fills all_logits (n × vocab_size) when not NULL. Returns the last token's logits
 * (vocab_size floats, valid until the next call) in *last when not NULL. Error if the tokens do not fit or a
 * token id is out of range. */
jl_status jl_session_forward(jl_session *s, const int32_t *tokens, int n, float *all_logits, const float **last);
/* Bytes of weights read to decode one token (all matrices once; the embedding table once when it is also the
 * lm head, else one row): the numerator of the memory-bandwidth bound. */
double jl_session_bytes_per_token(const jl_session *s);

/* ---- quantised weights: q8_0 / q4_0 blocks (ggml layouts) for every linear layer and the lm head ---- */

typedef struct jl_qweights jl_qweights;
/* Quantises m's linear weights (qkv, o, MLP, lm head) to type "q8_0" or "q4_0" (norms and embeddings stay
 * fp32; a width that is not a multiple of 32 stays fp32). Independent of m afterwards. */
jl_status jl_qweights_quantize(const jl_model *m, const char *type, jl_qweights **out);
void jl_qweights_free(jl_qweights *qw);
size_t jl_qweights_bytes(const jl_qweights *qw);   /* bytes of the quantised matrices */
const char *jl_qweights_type(const jl_qweights *qw); /* "q8_0", "q4_0" ("f32" when nothing is quantised) */
/* A session whose linear layers run on qw (built for m's config; both borrowed) through integer dot products,
 * the activations quantised to q8_0 on the fly; everything else reads m. qw == NULL: jl_session_new. */
jl_status jl_session_new_quant(const jl_model *m, const jl_qweights *qw, int capacity, jl_session **out);

/* Matrix-vector kernel for decode: 0 = our own AVX-512/AVX2 dot products (default), 1 = cblas_sgemv. */
void jl_set_matvec_kernel(int kernel);
int jl_get_matvec_kernel(void);

/* ---- sampling ---- */

typedef struct {
    float temperature;        /* 0 = greedy (argmax); must be ≥ 0 */
    int top_k;                /* keep the k most likely tokens; 0 = off */
    float top_p;              /* keep the smallest set with probability ≥ p; in (0, 1], 1 = off */
    float min_p;              /* drop tokens below min_p × the top probability; in [0, 1), 0 = off */
    float repetition_penalty; /* > 0; 1 = off. logits of seen tokens: positive ÷ r, negative × r */
    float presence_penalty;   /* subtracted once from the logit of every seen token; 0 = off */
    float frequency_penalty;  /* subtracted count times; 0 = off */
    int penalty_last_n;       /* tokens of history the penalties look at; 0 = all */
    uint64_t seed;
} jl_sampler_params;

void jl_sampler_defaults(jl_sampler_params *p); /* temperature 0.8, top-p 0.95, penalties off, seed 1337 */
/* Checks every field; the message names the offending one. */
jl_status jl_sampler_params_check(const jl_sampler_params *p);

/* One token of the --show-probs view. */
typedef struct {
    int32_t id;
    float p_model;  /* softmax of the (penalised) logits at temperature 1 */
    float p_sample; /* after temperature and top-k/top-p/min-p: what the draw used (0 = cut) */
} jl_token_prob;

#define JL_REPORT_MAX 64
typedef struct {
    int n_top;                       /* entries in top (the most likely by p_model) */
    jl_token_prob top[JL_REPORT_MAX];
    jl_token_prob chosen;            /* the sampled token */
    int n_kept;                      /* tokens left after truncation */
} jl_sample_report;

typedef struct jl_sampler jl_sampler;
/* A sampler for vocab_size tokens with its own deterministic RNG (seeded from p->seed). */
jl_status jl_sampler_new(const jl_sampler_params *p, int vocab_size, jl_sampler **out);
void jl_sampler_free(jl_sampler *s);
/* Replaces the parameters (the RNG state continues unless the seed changed). */
jl_status jl_sampler_set_params(jl_sampler *s, const jl_sampler_params *p);
const jl_sampler_params *jl_sampler_get_params(const jl_sampler *s);
/* Draws one token from logits (vocab_size floats, not modified) given the history (for penalties).
 * Returns a valid id, or -1 with jl_last_error() set (JL_ERR_RUNTIME) when a logit is NaN/+Inf or none is finite.
 * With report != NULL and n_report > 0, fills the top-n_report view (n_report ≤ JL_REPORT_MAX). */
int32_t jl_sampler_sample(jl_sampler *s, const float *logits, const int32_t *history, int n_history,
                          jl_sample_report *report, int n_report);

/* ---- streaming text ---- */

/* Turns token bytes into printable text: holds back an incomplete UTF-8 character at the end and any tail that
 * could be the start of a stop string; a completed stop string ends the stream and is not emitted. */
typedef struct jl_textstream jl_textstream;
jl_status jl_textstream_new(const char *const *stops, int n_stops, jl_textstream **out);
void jl_textstream_free(jl_textstream *ts);
void jl_textstream_reset(jl_textstream *ts);
/* Appends bytes; *out and *out_len receive the text now safe to print (valid until the next call).
 * Returns 1 when a stop string completed (then *out holds the text before it), else 0. */
int jl_textstream_push(jl_textstream *ts, const char *bytes, size_t len, const char **out, size_t *out_len);
/* End of generation: everything held back (an incomplete character is emitted as U+FFFD). */
void jl_textstream_flush(jl_textstream *ts, const char **out, size_t *out_len);

/* ---- generation loop ---- */

typedef enum {
    JL_STOP_NONE = 0,
    JL_STOP_EOS,          /* the model produced its end of text (jl_tokenizer_eos), <|end|>, or its BOS (a new document) */
    JL_STOP_STRING,       /* a stop string appeared */
    JL_STOP_MAX_TOKENS,
    JL_STOP_CONTEXT_FULL, /* the KV cache is full */
    JL_STOP_CALLER,       /* the callback asked to stop */
} jl_stop_reason;
const char *jl_stop_reason_name(jl_stop_reason r); /* "eos", "stop string", "max tokens", "context full", ... */

typedef struct {
    int32_t token;                  /* the sampled token */
    const char *text;               /* text safe to print now (may be empty) */
    size_t text_len;
    const jl_sample_report *report; /* NULL unless n_report > 0 */
} jl_gen_event;
/* Return non-zero to stop. */
typedef int (*jl_gen_callback)(void *user, const jl_gen_event *ev);

typedef struct {
    int max_tokens;          /* new tokens at most */
    const char *const *stops;/* stop strings (not printed) */
    int n_stops;
    int n_report;            /* top-K report per step for the callback; 0 = none */
} jl_gen_opts;

typedef struct {
    jl_stop_reason reason;
    int n_prompt, n_generated;
    double prefill_s, decode_s;
} jl_gen_result;

/* Prefills `prompt` (appended after what the session already holds) and samples up to max_tokens new tokens,
 * each fed back into the cache before the next is drawn (so the cache ends without the last one). The penalties
 * see the session's tokens. n_prompt ≥ 1; a prompt that does not fit the free context is JL_ERR_ARG. */
jl_status jl_generate(jl_session *s, jl_sampler *smp, const jl_tokenizer *tok, const int32_t *prompt, int n_prompt,
                      const jl_gen_opts *o, jl_gen_callback cb, void *user, jl_gen_result *res);

/* Text → tokens for a plain completion: <|bos|> (when the tokenizer has it) + the text, special-token names in
 * the text encoded as plain text. *ids malloc'd. */
jl_status jl_encode_prompt(const jl_tokenizer *tok, const char *text, int32_t **ids, int *n);

/* ---- chat: the model's chat format (built-in or its own template), the cache kept across turns ---- */

typedef struct jl_chat jl_chat;
typedef struct jl_chat_format jl_chat_format; /* jielong/chat_format.h */
jl_status jl_chat_new(jl_session *s, jl_sampler *smp, const jl_tokenizer *tok, jl_chat **out); /* borrowed */
/* The same with the model's chat format (borrowed; NULL = the built-in one): turns are rendered with its
 * template and an answer also ends at the format's stop strings (its end-of-turn marker, eos). */
jl_status jl_chat_new_format(jl_session *s, jl_sampler *smp, const jl_tokenizer *tok, const jl_chat_format *fmt,
                             jl_chat **out);
void jl_chat_free(jl_chat *c);
/* Sets (or with NULL / "" clears) the system prompt; the next turn re-prefills from the start. */
jl_status jl_chat_set_system(jl_chat *c, const char *system);
void jl_chat_reset(jl_chat *c); /* forgets the conversation (keeps the system prompt) */
int jl_chat_turns(const jl_chat *c); /* user turns so far */
/* What a turn does when the conversation no longer fits the context: refuse it (JL_ERR_ARG, the default), or
 * drop the oldest exchanges (user turn, tool turns, answer; the system prompt stays) until it fits with room
 * for the answer. jl_chat_dropped: exchanges the last turn dropped. */
typedef enum { JL_CONTEXT_REFUSE = 0, JL_CONTEXT_DROP_OLDEST = 1 } jl_context_policy;
void jl_chat_set_context_policy(jl_chat *c, jl_context_policy policy);
int jl_chat_dropped(const jl_chat *c);
/* Adds a user turn, prefills only what the cache lacks, and generates the answer (streamed through cb).
 * *answer (malloc'd, may be NULL) receives the whole answer text. A turn that does not fit the context
 * is rejected with JL_ERR_ARG and leaves the conversation unchanged. */
jl_status jl_chat_turn(jl_chat *c, const char *user_text, const jl_gen_opts *o, jl_gen_callback cb, void *user,
                       char **answer, jl_gen_result *res);
/* Appends a turn without generating (role: JL_ROLE_USER, JL_ROLE_ASSISTANT or JL_ROLE_TOOL; a jl_role of
 * include/jielong/dataset.h): e.g. a tool's result before jl_chat_generate continues. */
jl_status jl_chat_add_turn(jl_chat *c, int role, const char *text);
/* Generates the next assistant turn for the conversation as it stands (after jl_chat_add_turn); like
 * jl_chat_turn otherwise. */
jl_status jl_chat_generate(jl_chat *c, const jl_gen_opts *o, jl_gen_callback cb, void *user, char **answer,
                           jl_gen_result *res);

#endif
