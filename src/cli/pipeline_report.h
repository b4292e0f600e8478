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

/* What the report plots for a stage's folder: `curves` (training and held-out loss, in DIR/curves.svg) and, where
 * the stage has one, its own metric (DIR/metric.svg: reward for GRPO/PPO, accuracy for the reward model, margin
 * for DPO; NULL otherwise). Comma-separated metric names for `jielong plot --y`. */
typedef struct {
    const char *curves, *metric, *metric_title;
} report_plots;
report_plots pipeline_report_plots(const char *dir);

/* Writes out_dir/report.md (atomically) from out_dir/summary.jsonl and the stages. */
jl_status pipeline_report_write(const char *out_dir, const report_stage *stages, int n_stages, int quick,
                                double total_seconds);

#endif
