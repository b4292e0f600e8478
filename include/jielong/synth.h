/* Generated teaching data for the lessons of `jielong pipeline` (issue 19):
 *   chain of thought  column addition of multi-digit numbers, answered directly or step by step (same problems);
 *   self-instruct     new writing instructions whose titles a model makes up (jielong data instruct).
 * Every choice follows from the seed; held-out problems never appear in a training file. */
#ifndef JIELONG_SYNTH_H
#define JIELONG_SYNTH_H
#include "jielong/common.h"
#include "jielong/rules.h"
#include <stddef.h>
#include <stdint.h>

/* ---- chain of thought: a + b with `digits`-digit operands ---- */

typedef struct {
    uint64_t seed;
    int train;  /* training problems (default 3000) */
    int eval;   /* held-out problems (default 200) */
    int digits; /* digits of each operand, 2..6 (default 3) */
} jl_cot_options;
void jl_cot_defaults(jl_cot_options *o);

typedef struct {
    size_t train, eval;
} jl_cot_counts;

/* Writes, in dir: cot_direct.jsonl and cot_steps.jsonl (SFT {"messages":[user, assistant],"task":"calc"}: the
 * same problems, answered "答：843" or column by column "7+6=13，5+8+1=14，4+3+1=08，答：843": every clause the same length)), cot_prompts.jsonl (the
 * training problems as RL prompts {"prompt","task":"calc","expected"}) and eval_cot.jsonl (held-out problems, same
 * fields). A problem is held out by a fixed rule on its operands, so no held-out problem is trained on. The answer
 * is the last number of either kind of reply (jl_tool_answer_correct with task "calc" scores both). */
jl_status jl_cot_data_write(const char *dir, const jl_cot_options *o, jl_cot_counts *counts);

/* The step-by-step reply to a + b (both ≥ 0, < 10^9) into buf: one clause per column, lowest first, its sum always
 * two digits ("9+4+0=13，"), then "答：SUM". */
void jl_cot_steps(uint64_t a, uint64_t b, char *buf, size_t cap);

/* ---- self-instruct: new writing instructions made up by a model ---- */

typedef struct jl_model jl_model;
typedef struct jl_tokenizer jl_tokenizer;
typedef struct jl_poems jl_poems;

typedef struct {
    uint64_t seed;
    int n;             /* instructions to write (default 500) */
    int max_tries;     /* samples drawn at most, per instruction wanted (default 8) */
    float temperature; /* sampling (default 1) */
} jl_instruct_options;
void jl_instruct_defaults(jl_instruct_options *o);

typedef struct {
    size_t written;    /* instructions written */
    size_t sampled;    /* headings the model wrote */
    size_t bad;        /* rejected: no 《title》 heading of 2–12 Han characters */
    size_t drawn_form; /* written with a form drawn at random: the heading named no known form after 》 */
    size_t known;      /* rejected: the title is one of the corpus (`known`) */
    size_t repeated;   /* rejected: a title already written */
} jl_instruct_counts;

/* The model (plain completion, e.g. the SFT model or its base) continues "《" into a heading "title》（form）"
 * as it learnt in pretraining; a new title (not in `known`, which may be NULL, not written before) becomes a
 * writing instruction in the heading's form (a form drawn at random, seeded, when the heading names none) phrased as `jielong data poems` phrases them. Writes RL prompts
 * {"prompt","task":"write","form","title","source":"self-instruct"} to out_path (atomically). */
/* A heading the model wrote after "《": "title》（form）..." → the title (into title[cap]) and *form: 1;
 * "title》..." naming no known form after 》: 2 (jl_instruct_write then draws the form); 0 when it is no heading
 * (no 》, or a title not of 2–12 Han characters). */
int jl_instruct_parse_heading(const char *text, char *title, size_t cap, jl_poem_form *form);

jl_status jl_instruct_write(jl_model *m, const jl_tokenizer *tok, const jl_poems *known, const char *out_path,
                            const jl_instruct_options *o, jl_instruct_counts *counts);

#endif
