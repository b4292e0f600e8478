/* Knowledge distillation: a student learns from a frozen teacher's soft targets over a text corpus,
 *   loss per token = α·τ²·KL(softmax(teacher/τ) ‖ softmax(student/τ)) + (1−α)·CE(student, next token),
 * and self-instruct data synthesis: the teacher answers prompts, giving SFT conversations for the student.
 * Teacher and student must share the tokenizer (same vocabulary, token for token). */
#ifndef JIELONG_DISTILL_H
#define JIELONG_DISTILL_H
#include "jielong/model.h"
#include "jielong/pretrain.h"
#include "jielong/tokenizer.h"

typedef struct {
    int B, T, accum;        /* micro-batch B×T tokens; accum micro-batches per step */
    long steps;
    float lr, min_lr_frac, weight_decay, beta1, beta2, grad_clip;
    long warmup;            /* -1: 5% of the steps, at most 100 */
    int schedule;           /* jl_schedule */
    float temperature;      /* τ > 0 */
    float alpha;            /* weight of the soft (teacher) term in [0, 1]; 0 = hard labels only */
    int data_order;         /* jl_data_order (include/jielong/pretrain.h) */
    uint64_t data_seed;     /* names the shuffled order */
    int eval_every, eval_batches; /* held-out cross-entropy of the student every N steps (0 = off) */
    int save_every;         /* training checkpoint every N steps (and at the end) */
    long stop_after;        /* stop (with a checkpoint) after this many steps in this invocation; 0 = run to the end */
    const char *out_dir;    /* checkpoint.safetensors, model.safetensors, metrics.jsonl */
    double peak_gflops;     /* the MFU yardstick: peak of the precision in use (≤ 0: no MFU) */
} jl_distill_opts;

void jl_distill_defaults(jl_distill_opts *o);

/* JL_OK when the two models and tokenizers can be distilled: same vocabulary size in both models, the same
 * tokens (bytes) at every id and the same special tokens. The error names the first difference. */
jl_status jl_distill_check_pair(const jl_model *teacher, const jl_tokenizer *teacher_tok, const jl_model *student,
                                const jl_tokenizer *student_tok);

/* Trains `student` in place on `train` with the teacher frozen; reports through on_event (JL_EV_STEP,
 * JL_EV_EVAL with the student's held-out cross-entropy, JL_EV_SAVE, JL_EV_SKIP). Metrics (stage "distill"):
 * loss, kl (mean per token), lr, grad_norm, tok_per_s, mfu, ms, skipped; val_loss; teacher_val_loss at step 0.
 * With `resume` (out_dir's checkpoint.safetensors, loaded as the student) continues from its state: step, data
 * position and AdamW moments, so the run equals one that never stopped; B, T, accum, temperature and alpha must
 * match (jl_distill_opts_from_state gives them). */
jl_status jl_distill(jl_model *student, jl_model *teacher, const jl_tokenizer *tok, const jl_tokens *train,
                     const jl_tokens *val, const jl_distill_opts *o, const jl_checkpoint *resume, jl_event_fn on_event,
                     void *user);

/* Reads the trajectory-shaping options saved in a distillation checkpoint's state (batch, steps, schedule,
 * AdamW, temperature, alpha) into o; other fields untouched. */
jl_status jl_distill_opts_from_state(const char *state, jl_distill_opts *o);

typedef struct {
    size_t n;               /* prompts to answer (the first n; 0 = all) */
    int max_new_tokens;     /* per answer */
    float temperature;      /* 0 = greedy */
    uint64_t seed;          /* sampling */
} jl_synth_opts;

typedef struct {
    size_t prompts;         /* prompts answered */
    size_t written;         /* conversations written (answers that were not empty) */
    size_t tokens;          /* generated tokens */
} jl_synth_stats;

/* Reads prompts (RL prompts {"prompt",...} or SFT conversations, whose last assistant turn is replaced) from
 * prompts_path, lets the teacher answer each through the chat template, and writes
 * {"messages":[...,{"role":"assistant","content":ANSWER}]} lines to out_path (atomically). */
jl_status jl_distill_synthesize(jl_model *teacher, const jl_tokenizer *tok, const char *prompts_path,
                                const char *out_path, const jl_synth_opts *o, jl_synth_stats *stats);

#endif
