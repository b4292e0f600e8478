/* Lessons 4-8 of the pipeline report (issue 19 part B): chain of thought, tools and retrieval, the two judges of
 * RLHF and reward over-optimisation, self-instruct data, deployment trade-offs. Every figure is read from the
 * summary lines the stages' commands appended (eval --summary, generate --summary) and their metrics files. */
#ifndef JL_CLI_PIPELINE_LESSONS_B_H
#define JL_CLI_PIPELINE_LESSONS_B_H
#include "cli/pipeline_lessons.h"
#include <stddef.h>
#include <stdio.h>

/* Rows 4..8 of the lessons table (lesson_fn of pipeline_lessons.h; they also read r->out_dir's metrics files). */
void lesson_b_cot(const lesson_records *r, lesson_row *row);
void lesson_b_tools(const lesson_records *r, lesson_row *row);
void lesson_b_judges(const lesson_records *r, lesson_row *row);
void lesson_b_self_instruct(const lesson_records *r, lesson_row *row);
void lesson_b_deploy(const lesson_records *r, lesson_row *row);
/* The detail sections of lessons 4..8 (tables, the reward-hacking curve, the deployment table and its scatter
 * plot, written as out_dir/deploy.svg). */
void pipeline_lessons_b_sections(FILE *f, const char *out_dir);

#endif
