/* The pipeline's report: docs-style Markdown with SVG plots, from the summary lines `jielong eval` appended
 * (--summary/--label) and the stages' metrics files. */
#ifndef JL_CLI_PIPELINE_REPORT_H
#define JL_CLI_PIPELINE_REPORT_H
#include "jielong/common.h"

typedef struct {
    const char *name;    /* "pretrain", "sft", ... */
    const char *dir;     /* its output folder (metrics.jsonl inside), or NULL */
    double seconds;      /* wall time of the stage */
    const char *command; /* the command line that ran it */
} report_stage;

/* Writes out_dir/report.md (atomically) from out_dir/summary.jsonl and the stages. */
jl_status pipeline_report_write(const char *out_dir, const report_stage *stages, int n_stages, int quick,
                                double total_seconds);

#endif
