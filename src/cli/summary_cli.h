/* One JSON line appended to a summary file (`--summary FILE`): the measurements `jielong pipeline` turns into its
 * report (OUT/summary.jsonl). Every record has a "kind" (perplexity, tasks, compare, train, stage...) and, when
 * given, a "label" (which model: base, sft, sft-lora...) and a "lesson" (a series a row of the report's lessons
 * table reads, e.g. "icl": every few-shot evaluation of the base model). */
#ifndef JL_CLI_SUMMARY_CLI_H
#define JL_CLI_SUMMARY_CLI_H
#include "jielong/common.h"
#include <json.h>

typedef struct {
    const char *summary; /* file to append to, or NULL */
    const char *label;   /* NULL: none */
    const char *lesson;  /* NULL: none */
} cli_summary;

/* Adds label/lesson to r and appends it as one line to s->summary (nothing when NULL). */
jl_status cli_summary_append(const cli_summary *s, json_object *r);

#endif
