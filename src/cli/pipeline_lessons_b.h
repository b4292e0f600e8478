/* Lessons 4-8 of the pipeline report (issue 19 part B): chain of thought, tools and retrieval, the two judges of
 * RLHF and reward over-optimisation, self-instruct data, deployment trade-offs. Every figure is read from the
 * summary lines the stages' commands appended (eval --summary, generate --summary) and their metrics files. */
#ifndef JL_CLI_PIPELINE_LESSONS_B_H
#define JL_CLI_PIPELINE_LESSONS_B_H
#include <stddef.h>
#include <stdio.h>

/* One row of the lessons table: the lesson, its measured figure and a plain-language reading (empty strings when
 * the stages did not run). */
typedef struct {
    char lesson[96];
    char figure[512];
    char reading[768];
} lesson_b_row;

/* Rows 4..8 (rows[0] is lesson 4) from out_dir/summary.jsonl and the stages' metrics; returns how many were filled. */
int pipeline_lessons_b_rows(const char *out_dir, lesson_b_row rows[5]);
/* The rows as a Markdown table "## Lessons 4-8". */
void pipeline_lessons_b_table(FILE *f, const char *out_dir);
/* The detail sections of lessons 4..8 (tables, the reward-hacking curve, the deployment table and its scatter
 * plot, written as out_dir/deploy.svg). */
void pipeline_lessons_b_sections(FILE *f, const char *out_dir);

#endif
