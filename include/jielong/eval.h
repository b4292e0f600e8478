/* Evaluation: held-out perplexity and bits per byte / per character. */
#ifndef JIELONG_EVAL_H
#define JIELONG_EVAL_H
#include "jielong/model.h"
#include "jielong/tokenizer.h"

typedef struct {
    double nll;            /* total negative log-likelihood, nats */
    long tokens;           /* predicted tokens */
    long bytes, chars;     /* of the text scored (UTF-8 characters) */
    double ppl;            /* exp(nll / tokens) */
    double bits_per_byte;  /* nll / ln 2 / bytes — comparable across tokenizers */
    double bits_per_char;
} jl_ppl_result;

/* Scores text encoded as `prepare` does (blank-line-separated documents, each after <|bos|>) in consecutive windows of up to `window` tokens (≤ the model's context), each
 * predicting all of its tokens from the ones before it inside the window. */
jl_status jl_eval_perplexity(jl_model *m, const jl_tokenizer *tok, const char *text, size_t len, int window,
                             jl_ppl_result *out);
/* Perplexity of token ids (a shard's), bytes and characters counted on their decoded documents. */
jl_status jl_eval_perplexity_tokens(jl_model *m, const jl_tokenizer *tok, const int32_t *ids, size_t n, int window,
                                    jl_ppl_result *out);
/* The same for what a path holds, recognised by content (jl_data_kind_of): a text file (valid UTF-8), a token
 * shard, or a `jielong prepare` folder (its held-out val_*.bin shards); anything else (a model file, binary data)
 * is refused. Errors name the file. */
jl_status jl_eval_perplexity_file(jl_model *m, const jl_tokenizer *tok, const char *path, int window,
                                  jl_ppl_result *out);

/* In-context copying (the "induction" probe): n sequences of len random tokens (merged tokens when the vocabulary
 * has more than 512, special tokens never), each shown twice after <|bos|> in one window. `first`: the mean loss
 * of tokens 2..len of the first showing, nothing to copy from, about `chance` = ln(tokens drawn from); `second`:
 * the same tokens of the second showing, predictable by copying the first. A model that copies from context has
 * second far below first. Deterministic in seed. Needs 2 len + 1 <= the model's context. */
typedef struct {
    int n, len;
    double first, second, chance; /* nats per token */
} jl_copy_result;
jl_status jl_eval_copy_probe(jl_model *m, const jl_tokenizer *tok, int n, int len, uint64_t seed, jl_copy_result *out);


/* ---- instruction following on the held-out poem tasks (data/poems.jsonl → jielong data poems → eval_prompts.jsonl) ----
 * Four task kinds, each scored by rule: "write" (the answer is a poem of the asked form: jl_poem_check ok),
 * "continue" (the first line of the answer is the expected next line), "author" (the answer names the expected
 * author), "form" (the first form name in the answer is the expected form). Prompts with "task":"chat" (greeting,
 * identity) are scored in chat mode only: the answer holds one of the phrases of "expected" ("接龙|jielong"). */
#include "jielong/dataset.h"

/* Task kinds and their names: jl_poem_task / jl_poem_task_name (dataset.h). */

typedef struct {
    int shots;       /* < 0: ask through the chat template (a tuned model); 0..8: plain completion "问：…\n答：…" with
                        that many solved examples of the same task first (in-context learning of a base model) */
    int limit;       /* prompts per task kind at most (0 = all) */
    int max_tokens;  /* per answer (default 96) */
    int only;        /* score one task kind (a jl_poem_task); -1 = all */
    const struct jl_chat_format *chat; /* the model's chat format for shots < 0 (NULL = built-in) */
} jl_task_opts;

typedef struct {
    int n[JL_TASK_COUNT];        /* prompts scored */
    int correct[JL_TASK_COUNT];  /* for "write": form compliance (line count, line lengths, punctuation) */
    int write_clean;             /* "write" answers that comply and are free of repetition (no repeated line,
                                    no character overused): the stricter figure */
    double mean_reward;          /* "write": mean jl_poem_reward of the answers */
    int skipped;                 /* prompts longer than the context: not scored */
    long shots_used;             /* few-shot: examples actually shown, summed (fewer when a prompt would not fit) */
    int title_n, title_copied;   /* "write" prompts with a title, and answers whose first line carries it (the
                                    request followed, not just the form) */
    int lines, distinct_lines;   /* lines of all "write" answers (split at ，。！？； and newlines, the heading
                                    left out) and how many of them are distinct: low = one line recurs */
    int chat_n, chat_correct;    /* "chat" prompts (greeting, identity; chat mode only) and answers holding one
                                    of the "|"-separated phrases of their "expected" field */
    long tokens_generated;
    double seconds;
} jl_task_result;

/* What the rules say of a "write" answer beyond form compliance. */
typedef struct {
    float reward; /* the poem reward in [0,1] (jl_poem_reward); 0 for other kinds */
    int clean;    /* the poem complies and has no repetition */
} jl_task_score;

/* The verdict on one answer: `expected` and `form_name` are the prompt's fields ("expected", "form"). For
 * "write", correct = form compliance; `score` (may be NULL) gets the reward and the stricter verdict. */
int jl_task_correct(jl_poem_task kind, const char *answer, const char *expected, const char *form_name,
                    jl_task_score *score);

/* Called after each answer (may be NULL): for reports and progress. */
typedef void (*jl_task_fn)(void *user, jl_poem_task kind, const char *prompt, const char *answer, int correct);

/* The plain-text prompt a base model is asked item items[at] with (--shots): "问：<prompt>\n答：\n<answer>\n\n" for
 * `shots` other items of the list (items[(at + k) % n_items], k = 1..shots; the demonstration is the item's
 * "answer" field, else its "expected"), then "问：<prompt>\n答：\n". malloc'd; NULL when out of memory. */
char *jl_few_shot_prompt(const jl_rl_set *set, const size_t *items, size_t n_items, size_t at, int shots);

jl_status jl_eval_tasks(const jl_model *m, const jl_tokenizer *tok, const jl_rl_set *prompts, const jl_task_opts *o,
                        jl_task_fn on_answer, void *user, jl_task_result *out);

/* ---- head to head: the win rate of one model over another on the held-out "write" prompts ----
 * Both answer the same prompts (greedy, one model loaded at a time). A win is a higher score, a tie half a win.
 * Judged by the poem rules (jl_poem_reward of the prompt's form) and, when a reward model is given, by it too.
 * The one implementation behind `jielong eval --against` and the pipeline's comparison rows. */
struct jl_reward_model;
typedef struct {
    int n;                                   /* prompts judged */
    double rule_win_rate;                    /* in [0,1] */
    double rule_reward, rule_reward_against; /* mean poem rewards */
    int judged_by_rm;                        /* 1 when a reward model judged */
    double rm_win_rate, rm_score, rm_score_against;
} jl_compare_result;

/* One prompt's pair of answers; form_name is the prompt's "form" field (NULL or unknown: both rule scores 0). */
typedef struct {
    const char *prompt, *form_name, *answer, *answer_against;
} jl_compare_item;

/* Judges n ≥ 1 answer pairs (rm may be NULL). JL_ERR_ARG when n < 1; a reward model's error is passed on. */
jl_status jl_compare_answers(const jl_compare_item *items, int n, struct jl_reward_model *rm, jl_compare_result *out);
/* Loads the checkpoints `model` and `against` in turn, lets each answer the "write" prompts of `prompts` (o: its
 * limit, max_tokens, shots; only is forced to "write"; each model answers in its own chat format) and judges them.
 * Errors name the file; no "write" prompt → JL_ERR_FORMAT naming `prompts_name`. */
jl_status jl_eval_compare(const char *model, const char *against, const jl_rl_set *prompts, const char *prompts_name,
                          const jl_task_opts *o, struct jl_reward_model *rm, jl_compare_result *out);

#endif
