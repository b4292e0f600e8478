/* Knowledge distillation: a student learns from a frozen teacher's soft targets over a text corpus,
 *   loss per token = α·τ²·KL(softmax(teacher/τ) ‖ softmax(student/τ)) + (1−α)·CE(student, next token),
 * and self-instruct data synthesis: the teacher answers prompts, giving SFT conversations for the student.
 * Teacher and student must share the tokenizer (same vocabulary, token for token). */
#ifndef JIELONG_DISTILL_H
#define JIELONG_DISTILL_H
#include "jielong/model.h"
#include "jielong/pretrain.h"
#include "jielong/tokenizer.h"
#include "jielong/train.h"

typedef struct {
    jl_stage_opts train;    /* run.batch rows of T tokens, optim.accum micro-batches per step */
    int T;
    float temperature;      /* τ > 0 */
    float alpha;            /* weight of the soft (teacher) term in [0, 1]; 0 = hard labels only */
    int data_order;         /* jl_data_order (include/jielong/data.h) */
    uint64_t data_seed;     /* names the shuffled order */
    int eval_batches;       /* held-out cross-entropy of the student every run.eval_every steps (0 = off) */
    const struct jl_chat_format *chat; /* the chat format the student's model.safetensors keeps (the CLI: the
                                        * student checkpoint's own template, else the teacher's); NULL = built-in */
} jl_distill_opts;

void jl_distill_defaults(jl_distill_opts *o);

/* JL_OK when the two models and tokenizers can be distilled: same vocabulary size in both models, the same
 * tokens (bytes) at every id and the same special tokens. The error names the first difference. */
jl_status jl_distill_check_pair(const jl_model *teacher, const jl_tokenizer *teacher_tok, const jl_model *student,
                                const jl_tokenizer *student_tok);

/* Trains `student` in place on `train` with the teacher frozen; reports through on_event (steps, the student's
 * held-out cross-entropy, saves, skips). Metrics (stage "distill"): loss, kl (mean per token), lr, grad_norm,
 * tok_per_s, mfu, ms, skipped; val_loss; teacher_val_loss at step 0. With o->train.run.resume (out_dir's
 * checkpoint.safetensors, loaded as the student) continues from its state: step, data position and AdamW
 * moments, so the run equals one that never stopped; batch, T, accum, temperature and alpha must match
 * (jl_distill_opts_from_state gives them). */
jl_status jl_distill(jl_model *student, jl_model *teacher, const jl_tokenizer *tok, const jl_tokens *train,
                     const jl_tokens *val, const jl_distill_opts *o, jl_event_fn on_event, void *user);

/* Reads the trajectory-shaping options saved in a distillation checkpoint's state (batch, steps, schedule,
 * AdamW, temperature, alpha) into o; other fields untouched. */
jl_status jl_distill_opts_from_state(const char *state, jl_distill_opts *o);

typedef struct {
    size_t n;               /* prompts to answer (the first n; 0 = all) */
    int max_new_tokens;     /* per answer */
    float temperature;      /* 0 = greedy */
    uint64_t seed;          /* sampling */
    struct jl_reward_fn *keep; /* RL prompts only: keep an answer when this rule (jielong/rlhf.h) scores it ≥
                                * keep_min, e.g. "poem" against the record's form; NULL = keep every answer */
    float keep_min;
    int tries;              /* with a keep rule: answers drawn per prompt until one is kept (rejection sampling);
                             * the first at `temperature`, the others at retry_temperature; ≤ 1 = one answer */
    float retry_temperature; /* of the 2nd and later tries (> 0) */
    const struct jl_chat_format *format; /* the teacher's chat format (jl_chat_format_from_checkpoint): prompts are
                                          * rendered with it and an answer also ends at its end-of-turn token;
                                          * NULL = jielong's built-in format */
} jl_synth_opts;

typedef struct {
    size_t prompts;         /* prompts answered */
    size_t written;         /* conversations written (answers that were not empty) */
    size_t rejected;        /* answers the keep rule scored below keep_min (every try counts) */
    size_t answers;         /* answers drawn (prompts × tries used) */
    size_t retried_kept;    /* prompts kept only thanks to a 2nd or later try */
    size_t tokens;          /* generated tokens */
} jl_synth_stats;

/* Reads prompts (RL prompts {"prompt",...} or SFT conversations, whose last assistant turn is replaced) from
 * prompts_path, lets the teacher answer each through the chat template, and writes
 * {"messages":[...,{"role":"assistant","content":ANSWER}]} lines to out_path (atomically). */
jl_status jl_distill_synthesize(jl_model *teacher, const jl_tokenizer *tok, const char *prompts_path,
                                const char *out_path, const jl_synth_opts *o, jl_synth_stats *stats);

#endif
