/* jielong eval --qa: questions with a checkable answer ({"prompt","task","expected"}, e.g. eval_tools.jsonl of
 * `jielong data tools` or eval_cot.jsonl of `jielong data cot`), answered greedily through the model's chat format,
 * with or without tools (the agent loop of `chat --tools`), scored by jl_tool_answer_correct. */
#ifndef JL_CLI_EVAL_QA_H
#define JL_CLI_EVAL_QA_H
#include "jielong/common.h"
#include <json.h>

typedef struct {
    const char *tools;   /* comma-separated built-in tools, or NULL: answers from the model alone */
    const char *rag;     /* index for the search tool */
    int tool_specs;      /* 1: the system prompt lists the tools (as chat --tools does); 0: no listing */
    int k;               /* passages per search */
    int limit;           /* questions per task (0 = all) */
    int max_tokens;      /* tokens per answer round */
    int max_steps;       /* rounds of tool calls per question */
    const char *samples; /* every question, answer and verdict to this JSONL file, or NULL */
} eval_qa_opts;

/* Scores the questions of `path` with the model; *out (to free with json_object_put) is
 * {"kind":"qa","file","tools","n","correct","accuracy","too_long","tool_calls","tasks":{TASK:{n,correct,accuracy}}}. */
jl_status eval_qa(const char *model, const char *path, const eval_qa_opts *o, json_object **out);
/* The text form of that result on stdout. */
void eval_qa_print(json_object *r);

#endif
