/* A progress line for long CLI jobs, on stderr. On a terminal it redraws one line in place (\r) at most ~10
 * times a second: label, bar, done/total, rate, elapsed, ETA and an `extra` text such as
 * "loss 2.31 | 12.3k tok/s | mfu 41%". When stderr is not a terminal (CI logs, pipes) it prints a plain line at
 * most every ~5 s and one at finish, so logs stay short. */
#ifndef JL_CLI_PROGRESS_H
#define JL_CLI_PROGRESS_H
#include <stddef.h>

typedef struct {
    char label[64];
    char unit[16];
    double total;        /* <= 0: unknown (no bar, percentage or ETA) */
    double done;
    double start, last_draw;
    double base;         /* done at `start`: the rate and ETA count only what was done since (cli_progress_restart) */
    double min_interval; /* seconds between two draws: 0.1 on a terminal, 5 otherwise */
    int tty;
    int drawn;           /* something was drawn (a redraw needs \r first) */
} cli_progress;

void cli_progress_start(cli_progress *p, const char *label, double total, const char *unit);
void cli_progress_update(cli_progress *p, double done, const char *extra);
/* Starts the clock again from `done` (e.g. when set-up ends and the first step arrives, or a resumed run's first
 * step), which also becomes the count done so far: rate and ETA then measure the work itself, not what came
 * before it. The rate is never negative: nothing done since the restart reads 0. */
void cli_progress_restart(cli_progress *p, double done);
/* Prints one message line (printf-style) above the bar, which is redrawn under it on the next update. */
void cli_progress_note(cli_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Draws the final state and ends the line. */
void cli_progress_finish(cli_progress *p, const char *extra);

/* Helpers, also used for other human-readable output: 950, 1.23k, 12.3k, 123k, 1.23M, 4.56G ... */
void cli_format_si(double v, char *buf, size_t size);
/* 42s, 3:07, 1:02:03 */
void cli_format_duration(double seconds, char *buf, size_t size);

#endif
