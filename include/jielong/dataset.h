/* Datasets in JSONL (one object a line, TRL conventions), the chat template rendered to segments, and the
 * bundled poem corpus with the datasets every stage derives from it.
 *
 *   SFT          {"messages":[{"role":"system|user|assistant","content":"..."}, ...]}
 *                or Alpaca {"instruction":"...","input":"...","output":"..."}  (one conversation type)
 *   preferences  {"prompt":"...","chosen":"...","rejected":"..."}
 *   RL prompts   {"prompt":"...", ...task fields such as "form"}  (every field stays readable)
 *
 * Readers load a whole file. A malformed line gives an error "FILE:LINE: FIELD: problem"; the options choose
 * between stopping there (the default) and skipping it (counted in jl_jsonl_stats). Blank lines are ignored. */
#ifndef JIELONG_DATASET_H
#define JIELONG_DATASET_H
#include "jielong/common.h"
#include "jielong/rules.h"
#include <stdint.h>

/* ---- JSONL reading ---- */

typedef struct {
    int skip_bad;          /* 0: stop at the first malformed line; 1: skip it and count it */
    size_t max_records;    /* stop after this many good records (0 = all) */
} jl_jsonl_options;

typedef struct {
    size_t lines;          /* lines read (blank ones included) */
    size_t records;        /* good records kept */
    size_t skipped;        /* malformed lines skipped (skip_bad only) */
    char first_error[512]; /* the message of the first skipped line ("" if none) */
} jl_jsonl_stats;

/* ---- conversations (SFT) ---- */

/* JL_ROLE_TOOL: a tool's result (include/jielong/tools.h), rendered `<|user|><tool_response>…</tool_response><|end|>`
 * and never trained on. */
typedef enum { JL_ROLE_SYSTEM = 0, JL_ROLE_USER, JL_ROLE_ASSISTANT, JL_ROLE_TOOL } jl_role;
const char *jl_role_name(jl_role role); /* "system", "user", "assistant", "tool" */

typedef struct {
    jl_role role;
    const char *content;   /* UTF-8, never NULL */
} jl_turn;

/* Read-only view of one conversation: an optional system turn first, then user/assistant turns,
 * at least one assistant turn with non-empty content. */
typedef struct {
    const jl_turn *turns;
    int n_turns;
} jl_conversation;

typedef struct jl_sft_set jl_sft_set;
/* Reads messages or Alpaca lines (both may be mixed in one file). Alpaca becomes user = instruction
 * (+ "\n\n" + input when input is not empty), assistant = output. Tool use (OpenAI style): an assistant
 * message's "tool_calls" ([{"function":{"name","arguments"}}], arguments an object or a JSON string) become
 * `<tool_call>{"name":…,"arguments":{…}}</tool_call>` after its content (which may then be empty or null);
 * {"role":"tool","content":…} turns follow an assistant turn; a top-level "tools" array (function objects, or
 * {"type":"function","function":{…}}) is appended to the system turn as the `<tools>` block (one is created). Validation: unknown role, missing or
 * non-string content, a system turn after the first, no assistant turn, an empty assistant response. */
jl_status jl_sft_load(const char *path, const jl_jsonl_options *opt, jl_sft_set **out, jl_jsonl_stats *stats);
size_t jl_sft_count(const jl_sft_set *set);
jl_conversation jl_sft_get(const jl_sft_set *set, size_t i);
void jl_sft_free(jl_sft_set *set);

/* ---- preference pairs ---- */

typedef struct {
    const char *prompt, *chosen, *rejected;
} jl_pref_pair;

typedef struct jl_pref_set jl_pref_set;
/* Validation: prompt, chosen and rejected must be strings, chosen and rejected non-empty and different. */
jl_status jl_prefs_load(const char *path, const jl_jsonl_options *opt, jl_pref_set **out, jl_jsonl_stats *stats);
size_t jl_prefs_count(const jl_pref_set *set);
jl_pref_pair jl_prefs_get(const jl_pref_set *set, size_t i);
void jl_prefs_free(jl_pref_set *set);

/* ---- RL prompts ---- */

typedef struct jl_rl_set jl_rl_set;
/* Validation: "prompt" must be a non-empty string. Every other field is kept. */
jl_status jl_rl_load(const char *path, const jl_jsonl_options *opt, jl_rl_set **out, jl_jsonl_stats *stats);
size_t jl_rl_count(const jl_rl_set *set);
const char *jl_rl_prompt(const jl_rl_set *set, size_t i);
/* A string field of record i ("form", "expected", ...), or NULL when absent or not a string. */
const char *jl_rl_field(const jl_rl_set *set, size_t i, const char *key);
/* An integer field of record i into *value; 0 when absent or not an integer. */
int jl_rl_field_int(const jl_rl_set *set, size_t i, const char *key, int64_t *value);
/* The whole record as compact JSON text (valid until the set is freed). */
const char *jl_rl_json(const jl_rl_set *set, size_t i);
void jl_rl_free(jl_rl_set *set);

/* ---- chat template ---- */

/* Special tokens of the chat template, in the order the tokenizer reserves them. */
typedef enum {
    JL_SPECIAL_BOS = 0,   /* <|bos|> */
    JL_SPECIAL_EOS,       /* <|eos|> */
    JL_SPECIAL_SYSTEM,    /* <|system|> */
    JL_SPECIAL_USER,      /* <|user|> */
    JL_SPECIAL_ASSISTANT, /* <|assistant|> */
    JL_SPECIAL_END,       /* <|end|> */
    JL_SPECIAL_COUNT
} jl_special;
const char *jl_special_name(jl_special s); /* "<|bos|>" ... */

/* One piece of a rendered conversation: a special token, or text the tokenizer encodes as text. */
typedef struct {
    int special;          /* a jl_special, or -1 for text */
    const char *text;     /* the text (borrowed from the conversation) or the special token's name */
    size_t len;           /* bytes of text */
    int trainable;        /* 1: the loss covers it (assistant text and the <|end|> closing it) */
    int encode_special;   /* text rendered by a model's own template: special-token names in it are special tokens */
} jl_segment;

typedef struct {
    jl_segment *items;
    size_t n, cap;
    char **owned;         /* texts rendered by a Jinja template (jl_chat_format), freed by clear/free */
    size_t n_owned, cap_owned;
} jl_segments;

/* Renders `<|bos|>` then each turn as `<|role|>content<|end|>` (system, user, assistant; the template is
 * `<|user|>text<|end|><|assistant|>text<|end|>`). Appends to `out` (zero-initialise it first; reuse it to
 * avoid allocations). The segments borrow the conversation's strings. */
jl_status jl_chat_render(const jl_conversation *conv, jl_segments *out);
/* The prompt to complete: like jl_chat_render without a trailing assistant turn (the answer to generate),
 * ending with `<|assistant|>`. Nothing is trainable. The conversation must have a user turn. */
jl_status jl_chat_render_generation(const jl_conversation *conv, jl_segments *out);
/* The same chat format as a Jinja template (HF tokenizer_config.json, GGUF tokenizer.chat_template): `{{ bos_token }}`,
 * then each message as `<|role|>content<|end|>`, then `<|assistant|>` with add_generation_prompt. */
const char *jl_chat_template_jinja(void);
void jl_segments_clear(jl_segments *s); /* n = 0, keeps the memory */
void jl_segments_free(jl_segments *s);
/* The rendered text (special tokens written as their names), malloc'd; NULL when out of memory. */
char *jl_segments_text(const jl_segments *s);

/* ---- the poem corpus (data/poems.jsonl) ---- */

typedef struct {
    const char *title, *author;
    jl_poem_form form;
    const char *const *lines; /* n_lines lines of Han characters, no punctuation */
    int n_lines;
    int heldout;              /* 1: held out from every training-derived file */
} jl_poem;

typedef struct jl_poems jl_poems;
/* Reads {"title","author","form","lines":[...],"split":"train"|"heldout"} lines; each poem is validated
 * against its form (line count, Han characters per line). */
jl_status jl_poems_load(const char *path, const jl_jsonl_options *opt, jl_poems **out, jl_jsonl_stats *stats);
size_t jl_poems_count(const jl_poems *poems);
const jl_poem *jl_poems_get(const jl_poems *poems, size_t i);
void jl_poems_free(jl_poems *poems);
/* The poem's text: one couplet a line, "line1，line2。\nline3，line4。" (no trailing newline). malloc'd. */
char *jl_poem_text(const jl_poem *poem);

/* ---- datasets derived from the corpus ---- */

typedef enum { JL_SPLIT_TRAIN = 0, JL_SPLIT_HELDOUT = 1 } jl_split;

/* The task kinds of SFT conversations and evaluation prompts. */
/* JL_TASK_CHAT: greeting and identity prompts of the evaluation set, scored apart from the four poem tasks. */
typedef enum { JL_TASK_WRITE = 0, JL_TASK_AUTHOR, JL_TASK_CONTINUE, JL_TASK_FORM, JL_TASK_COUNT,
               JL_TASK_CHAT = JL_TASK_COUNT } jl_poem_task;
const char *jl_poem_task_name(jl_poem_task task); /* "write", "author", "continue", "form" */

/* The ways a preference pair's rejected poem is corrupted. */
typedef enum {
    JL_CORRUPT_LINE_LENGTH = 0, /* two lines lose or gain a character */
    JL_CORRUPT_REPEATED_LINE,   /* a line is replaced by a copy of the line before */
    JL_CORRUPT_TRUNCATED,       /* the poem stops after its first half and one line */
    JL_CORRUPT_WRONG_FORM,      /* a 律诗 cut to 4 lines, or a 绝句 of the other line length */
    JL_CORRUPT_COUNT
} jl_corruption;
const char *jl_corruption_name(jl_corruption c); /* "line_length", "repeated_line", "truncated", "wrong_form" */

/* The text of poem i of `poems` corrupted by kind c (malloc'd; NULL when out of memory). `rng_state` drives
 * the choices; a wrong-form corruption of a 绝句 borrows another poem of the same split. */
char *jl_poem_corrupt(const jl_poems *poems, size_t i, jl_corruption c, uint64_t *rng_state);

typedef struct {
    uint64_t seed;            /* every choice (order, phrasing, corruption) follows from it */
    double general_fraction;  /* share of general chat conversations in the SFT file (default 0.03) */
    double system_fraction;   /* share of SFT conversations that start with a system turn (default 0.1) */
    int write_copies;         /* SFT "write" conversations per poem, each phrased anew (default 3: half the
                                 poem tasks; the other kinds have one each) */
    int anthologies;          /* 1 (default): the train split's pretraining text also holds author anthologies
                                 (a contents line of titles, then up to 4 poems of one author, each headed again):
                                 text in which copying a title or an author from context pays, so in-context
                                 learning can form; 0: single poems only */
    double invented_titles;   /* share of SFT "write" conversations whose poem is asked (and headed) under an
                                 invented title of 2-6 corpus characters (default 0.3): no title to remember, so
                                 the heading must be copied from the request */
    double copy_docs;         /* share of the train split's poems whose pretraining document is a copy exercise
                                 (default 0, off): the heading announced before it ("下面是A的一首F《T》："), the
                                 poem recited again after it ("默写《T》：" and its lines) or a couplet of it quoted
                                 back with title and author; what follows is predictable only by copying from the
                                 context, the ability few-shot prompts and title requests need; 0.4 did not
                                 make copying form in a 500-step pretraining at the default size (eval
                                 --copy-probe: 9.52 vs 9.57 nats/token), so it is off */
    double repeat_docs;       /* share of the train split's poems followed by a repetition exercise (default 0,
                                 off): a line of 4-12 random corpus characters shown 3-6 times, one per line;
                                 every showing after the first is predictable only by copying it */
} jl_poem_build_options;
void jl_poem_build_defaults(jl_poem_build_options *opt);

typedef struct {
    size_t poems;             /* poems of the split */
    size_t documents;         /* pretraining documents (single poems) */
    size_t anthologies;       /* pretraining documents that are author anthologies (train split) */
    size_t copy_docs;         /* pretraining documents that are copy exercises (train split) */
    size_t repeat_docs;       /* pretraining documents that are repetition exercises (train split) */
    size_t conversations;     /* SFT conversations (general chat included) */
    size_t general;           /* of which general chat */
    size_t pairs;             /* preference pairs */
    size_t prompts;           /* RL (train) or evaluation (held-out) prompts */
} jl_poem_build_counts;

/* Each writer writes one file atomically from the poems of `split`.
 *   pretrain: "《title》author form\npoem" documents separated by a blank line, in a seeded order;
 *   sft:      {"messages":[...],"task":...} — one conversation per poem and task kind (+ general chat for the
 *             train split), except the author question of "author probes" (one training poem in 20);
 *   prefs:    {"prompt","chosen","rejected","form","corruption"} — one pair per poem;
 *   prompts:  train: RL prompts {"prompt","task":"write","form","title"}, one per poem;
 *             held-out: evaluation prompts of every task kind with the expected answer:
 *             {"prompt","task","form","title","author","expected","answer"} (expected: the poem for write,
 *             the author, the next line, the form id; answer: the assistant's reply as SFT phrases it, which
 *             few-shot prompts show); the author questions are about author probes (training poems, so
 *             seen in pretraining, whose author SFT never asks). */
jl_status jl_poems_write_pretrain(const jl_poems *poems, jl_split split, const char *path,
                                  const jl_poem_build_options *opt, jl_poem_build_counts *counts);
jl_status jl_poems_write_sft(const jl_poems *poems, jl_split split, const char *path,
                             const jl_poem_build_options *opt, jl_poem_build_counts *counts);
jl_status jl_poems_write_prefs(const jl_poems *poems, jl_split split, const char *path,
                               const jl_poem_build_options *opt, jl_poem_build_counts *counts);
jl_status jl_poems_write_prompts(const jl_poems *poems, jl_split split, const char *path,
                                 const jl_poem_build_options *opt, jl_poem_build_counts *counts);

/* All of them into `dir` (created if missing): pretrain.txt, sft.jsonl, prefs.jsonl, rl_prompts.jsonl from the
 * train split; eval_pretrain.txt, eval_sft.jsonl, eval_prefs.jsonl, eval_prompts.jsonl from the held-out split. */
jl_status jl_poems_write_all(const jl_poems *poems, const char *dir, const jl_poem_build_options *opt,
                             jl_poem_build_counts *train, jl_poem_build_counts *heldout);

#endif
