/* Shared pieces of the preference and RL stages: prompt/response → token ids with the chat template, padded
 * batches with response-only targets, per-token log-probs, scalar heads on the final hidden state, the optimizer
 * update over model + head, metrics and events. */
#ifndef JL_TRAIN_RL_COMMON_H
#define JL_TRAIN_RL_COMMON_H
#include "jielong/chat_format.h"
#include "jielong/rlhf.h"
#include "train/run.h"
#include "train/trainer.h"


/* One rendered sequence: ids[0..len), the response (scored/trained part) is ids[resp_start..len). */
typedef struct {
    int32_t *ids;
    int len, resp_start;
} rl_seq;

/* prompt (one user turn) and response rendered in the model's chat format fmt (NULL = built-in:
 * <|bos|><|user|>prompt<|end|><|assistant|>response<|end|>) by sft's renderer and encoder; the response is the span
 * sft trains (the answer and the format's end-of-turn marker) and the sequence ends with it. With response NULL,
 * the generation prompt (resp_start = len). Errors: empty response, more than max_len tokens. `what` names the
 * record in error messages ("prefs.jsonl pair 3"). */
jl_status rl_encode(const jl_tokenizer *tok, const jl_chat_format *fmt, const char *prompt, const char *response,
                    int max_len, const char *what, rl_seq *out);
/* Like rl_encode, but an empty response is allowed (a sampled answer that is only its end-of-turn marker). */
jl_status rl_encode_answer(const jl_tokenizer *tok, const jl_chat_format *fmt, const char *prompt,
                           const char *response, int max_len, const char *what, rl_seq *out);
void rl_seq_free(rl_seq *s);

/* Samples an answer after each prompt (rows: prompt i repeated as given), at most max_new tokens, stopping at the
 * end of an answer in the chat format fmt (jl_chat_stops: <|end|> or eos for the built-in format, the template's
 * end-of-turn marker or eos for a model's own; kept as the last response tokens) or at max_len. out[i] gets
 * prompt + answer with resp_start at the answer. first_row < 0: the rows draw one after the other from
 * *rng_state's stream (advanced); first_row ≥ 0 (under mpirun): row i draws from its own stream of
 * (*rng_state, first_row + i), its index in the whole batch the ranks share (jielong/dist.h), so the answers do not
 * depend on the split (*rng_state is left as it is). The ONE place that generates: the KV-cache engine
 * (include/jielong/generate.h), which applies an attached LoRA adapter unmerged (rollout.c). */
jl_status rl_rollout(jl_model *m, jl_acts *a, const jl_tokenizer *tok, const jl_chat_format *fmt,
                     const rl_seq *const *prompts, int rows, int max_new, int max_len, float temperature,
                     uint64_t *rng_state, int first_row, rl_seq *out);
/* The answer text of a rolled-out sequence (without the stop it ended with), malloc'd. */
jl_status rl_answer_text(const jl_tokenizer *tok, const jl_chat_format *fmt, const rl_seq *s, char **text);

/* Internal to the RL stages: the reward model behind a reward function (NULL for rules). */
struct jl_reward_model;
struct jl_reward_model *rl_reward_fn_model(jl_reward_fn *fn);
/* Scores with a reward model, allowing an empty answer. */
jl_status rl_reward_model_score_answer(struct jl_reward_model *rm, const char *prompt, const char *answer, float *score);

/* Up to `cap_rows` sequences padded to the longest (T ≤ cap_T). targets[r·T + t] = tokens[t+1] when token t+1
 * is a response token, else -1. */
typedef struct {
    int rows, T, cap_rows, cap_T;
    int32_t *tokens, *targets;
    int *len, *resp_start;
} rl_batch;

jl_status rl_batch_new(int cap_rows, int cap_T, rl_batch *b);
void rl_batch_free(rl_batch *b);
void rl_batch_fill(rl_batch *b, const rl_seq *const *seqs, int n);

/* Forward of the batch (no LM gradient); logp(rows·T) and entropy(rows·T, may be NULL) per target position. */
void rl_forward_logprobs(jl_model *m, jl_acts *a, const rl_batch *b, float *logp, float *entropy);
/* The same under the sampling distribution at temperature T, softmax(logits / T) (T ≤ 0 or 1: the logits as they
 * are, bit for bit). The scaled logits stay in a->logits, so a backward through them must scale its d logp by 1/T
 * (policy_batch_loss does). */
void rl_forward_logprobs_at(jl_model *m, jl_acts *a, const rl_batch *b, float temperature, float *logp,
                            float *entropy);
/* Σ of per-position values over the response targets of row r. */
double rl_row_sum(const rl_batch *b, const float *per_pos, int r);
int rl_row_count(const rl_batch *b, int r);

/* A scalar head: value = w · h on the final normalised hidden state; g, m, v its gradient and AdamW moments. */
typedef struct {
    int C;
    float *block; /* w | g | m | v */
    float *w, *g, *m, *v;
} rl_head;

jl_status rl_head_new(int C, uint64_t seed, rl_head *h);
void rl_head_free(rl_head *h);
/* Final hidden state of (row r, position t) after the last forward. */
const float *rl_hidden(const jl_acts *a, const rl_batch *b, int r, int t, int C);

/* The update after the caller accumulated gradients into t->grads (and head->g): global norm over both, skip on
 * a non-finite loss or norm, clipping, AdamW (the head without weight decay). *applied: 1 if applied, 0 if
 * skipped; increments t->step either way. Fails only under ZeRO-1 (the parameters' all-gather). */
jl_status rl_update(jl_trainer *t, rl_head *head, double loss, double *grad_norm, float *lr, int *applied);
/* Data parallelism (jielong/dist.h) of the pair stages: each rank took its slice of the step's pairs and began the
 * gradient all-reduce before its backward pass (jl_trainer_sum_begin, scale 1); the gradients (and the head's)
 * become the mean over the ranks, stats[0..n) the mean of the ranks' (equal-size slices), in rank
 * order, the same on every rank. st: this rank's step so far (a failure stops every rank). No-op for one rank. */
jl_status rl_dist_mean(jl_trainer *t, rl_head *head, jl_status st, double *stats, int n);

/* A trainer for custom losses: micro-batch capacity rows × T, optimizer from o over total_updates updates. With
 * an adapter attached to m (rl_lora_begin), the adapter is what it trains. */
jl_status rl_trainer_new(jl_model *m, int rows, int T, const jl_rl_opts *o, long total_updates, jl_trainer **out);
/* Zeroes the trainer's gradients (model or adapter) and the head's. */
void rl_zero_grads(jl_trainer *t, rl_head *head);
/* Around a forward/backward that computes gradients: LoRA dropout on (masks from the trainer's RNG). Passes
 * without gradients (reference, old log-probs, evaluation) run without dropout. */
void rl_grad_pass_begin(jl_trainer *t);
void rl_grad_pass_end(jl_trainer *t);

/* o->use_lora: attaches a fresh adapter (from o->lora, seeded from o->seed) sized for `tokens` per forward and
 * freezes every model tensor; *out stays NULL otherwise. rl_lora_end detaches and frees it, unfreezes. */
jl_status rl_lora_begin(jl_model *m, const jl_rl_opts *o, int tokens, jl_lora **out);
void rl_lora_end(jl_model *m, jl_lora *lr);

/* The frozen reference: a copy of the starting policy (full fine-tuning), or, with an adapter attached, the
 * policy's own weights with the adapter detached for the duration of enter..leave (no second model). */
typedef struct {
    jl_model *copy, *policy;
    jl_lora *detached;
} rl_ref;
jl_status rl_ref_new(jl_model *policy, rl_ref *ref);
jl_model *rl_ref_enter(rl_ref *ref);
void rl_ref_leave(rl_ref *ref);
void rl_ref_free(rl_ref *ref);

/* out_dir/name with tok's JSON (and fmt's template, if the model has its own: jl_save_model_file) in the metadata. */
jl_status rl_save_model(jl_model *m, const jl_tokenizer *tok, const jl_chat_format *fmt, const char *out_dir,
                        const char *name, char *path_out, size_t path_size);
/* The trained policy: out_dir/adapter.safetensors when an adapter is attached, else model.safetensors. */
jl_status rl_save_policy(jl_model *m, const jl_tokenizer *tok, const jl_chat_format *fmt, const char *out_dir,
                         char *path_out, size_t path_size);
/* out_dir/model.safetensors of the model with its attached adapter folded in (a merged copy; m is unchanged). */
jl_status rl_save_merged(jl_model *m, const jl_tokenizer *tok, const jl_chat_format *fmt, const char *out_dir,
                         char *path_out, size_t path_size);
/* Saves a head as a one-tensor safetensors file (tensor `tensor`, shape (1, C)). */
jl_status rl_head_save(const rl_head *h, const char *path, const char *tensor);
jl_status rl_head_load(const char *path, const char *tensor, int C, rl_head *h);

/* A head (weights and moments) in a training state, exactly. */
void rl_head_state_save(const rl_head *h, const char *key, json_object *j);
jl_status rl_head_state_restore(rl_head *h, const char *key, json_object *j);
/* The reference's identity (a fingerprint of its weights) in a training state: a resumed run must start from the
 * same model. */
void rl_ref_state_save(rl_ref *ref, json_object *j);
jl_status rl_ref_state_restore(rl_ref *ref, json_object *j);
/* An identity of a reward function (the rule, or the reward model's weights). */
uint64_t rl_reward_fn_identity(jl_reward_fn *fn);
uint64_t rl_reward_model_fingerprint(const struct jl_reward_model *rm);

/* A copy of m (same config and weights). */
jl_status rl_model_clone(const jl_model *m, jl_model **out);

/* Deterministic Fisher-Yates shuffle of idx[0..n). */
void rl_shuffle(size_t *idx, size_t n, uint64_t *rng_state);

#endif
