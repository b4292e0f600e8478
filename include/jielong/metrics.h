/* Training metrics as JSONL: one object a line, {"stage": "pretrain", "step": 100, "loss": 2.31, ...}.
 * Writers append and flush every line (a crash loses at most the line being written); readers turn a file
 * into series (one per stage and key) for plots and reports. Non-finite values are written as null. */
#ifndef JIELONG_METRICS_H
#define JIELONG_METRICS_H
#include "jielong/common.h"
#include <stdint.h>

/* ---- writing ---- */
typedef struct jl_metrics jl_metrics;

/* Opens `path` for appending, creating it and its folders. */
jl_status jl_metrics_open(const char *path, jl_metrics **out);
/* Appends {"stage": stage, "step": step, keys[i]: values[i], ...} and flushes. Keys must be distinct, non-empty
 * and not "stage"/"step" (JL_ERR_ARG). */
jl_status jl_metrics_log(jl_metrics *m, const char *stage, int64_t step, int n, const char *const *keys,
                         const double *values);
void jl_metrics_close(jl_metrics *m);

/* ---- reading ---- */
typedef struct {
    const char *stage; /* "" for lines without a stage */
    const char *key;
    int64_t n;         /* points, in file order */
    const double *x, *y;
} jl_series;

typedef struct jl_metrics_data jl_metrics_data;

/* Reads a JSONL metrics file. Every numeric field other than `x_key` of a line becomes a point (x, value) of
 * the series (stage, field), where x is the line's numeric `x_key` field ("step" when NULL); lines without it
 * and null values add no point; strings and booleans are ignored. Blank lines are skipped. A line that is not a
 * JSON object, or whose "stage" is not a string, is JL_ERR_FORMAT with "path:line: ..." in the message. */
jl_status jl_metrics_read(const char *path, const char *x_key, jl_metrics_data **out);
/* The same, keeping only the lines whose string field KEY equals VALUE (`where` = "KEY=VALUE"; NULL: all), e.g.
 * "lesson=icl" of a pipeline's summary.jsonl. */
jl_status jl_metrics_read_where(const char *path, const char *x_key, const char *where, jl_metrics_data **out);
int jl_metrics_series_count(const jl_metrics_data *d);
const jl_series *jl_metrics_series_at(const jl_metrics_data *d, int i); /* in order of first appearance */
/* The series of `key` in `stage`; with stage NULL the first series of that key in any stage. NULL if absent. */
const jl_series *jl_metrics_find(const jl_metrics_data *d, const char *stage, const char *key);
void jl_metrics_data_free(jl_metrics_data *d);

#endif
