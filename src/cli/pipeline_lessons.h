/* The report's table of lessons: one row per idea of the recipe, each with its measured figure(s), the sample
 * size and a 95% confidence interval where the figure is a share, and one plain sentence whose wording is chosen
 * from those figures (it says "did not appear" when the effect is absent). Nothing in a row is written by hand:
 * every number comes from a record a stage appended to OUT/summary.jsonl (`eval --summary --label --lesson`,
 * `sft --summary --label`, the pipeline's own {"kind":"stage"} lines with each stage's time).
 *
 * Adding a row: make the stage append its record(s) (a label names one measurement, a lesson a series of them),
 * write a lesson_fn that reads them with the helpers below and fills a lesson_row, and add one line to the
 * `lessons` table in pipeline_lessons.c. A row whose records are missing says "not measured in this run". */
#ifndef JL_CLI_PIPELINE_LESSONS_H
#define JL_CLI_PIPELINE_LESSONS_H
#include <json.h>
#include <stddef.h>
#include <stdio.h>

/* Every record of OUT/summary.jsonl, in file order. */
typedef struct {
    json_object **v;
    int n;
    char out_dir[4096]; /* the run's folder (summary.jsonl's): rows that also read metrics files */
} lesson_records;

/* What a row shows: the figures (Markdown table cell text), the sample and interval, the sentence. Empty figures
 * mean the row's records were not there. */
typedef struct {
    char figures[1024], sample[512], reading[1024];
} lesson_row;

typedef void (*lesson_fn)(const lesson_records *r, lesson_row *row);

/* The last record of this kind (and label, when not NULL), or NULL. */
json_object *lesson_find(const lesson_records *r, const char *kind, const char *label);
/* Up to `max` records of this kind carrying "lesson": lesson, in file order; returns how many. */
int lesson_series(const lesson_records *r, const char *kind, const char *lesson, json_object **out, int max);
/* A number at a dotted path ("write.accuracy", "ppl"), NAN when absent or not a number. */
double lesson_num(json_object *rec, const char *path);

/* A share k/n with its 95% Wilson score interval. */
typedef struct {
    int k, n;
    double p, lo, hi;
} lesson_share;
lesson_share lesson_share_of(int k, int n);
/* The share of a task object {"n","correct"} at `path` of a record ("write", "chat", "title"); n = 0 if absent. */
lesson_share lesson_task_share(json_object *rec, const char *path);
/* The 95% interval of a.p - b.p (Newcombe's method from the two Wilson intervals); returns +1 when the whole
 * interval is above 0, -1 when below, 0 when it holds 0 (no clear difference). */
int lesson_diff(lesson_share a, lesson_share b, double *lo, double *hi);

/* Appends printf-style text to a row's cell. */
void lesson_cat(char *cell, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Writes "## Lessons" (the table) from summary_path. */
void pipeline_write_lessons(FILE *f, const char *summary_path);

#endif
