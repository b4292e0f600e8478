/* CLI progress line: number/time formatting and the plain (non-terminal) output. progress.c lives in src/cli,
 * which is not part of the library, so it is compiled into this test directly. */
#include "testutil.h"
#include "cli/progress.c"

static void test_format_si_and_duration(void **state) {
    (void)state;
    char b[32];
    const struct { double v; const char *s; } si[] = {
        {0, "0"}, {950, "950"}, {999, "999"}, {12.5, "12.5"}, {3.14159, "3.14"}, {1234, "1.23k"}, {12345, "12.3k"},
        {123456, "123k"}, {999999, "1.00M"}, {1.5e9, "1.50G"}, {-2500, "-2.50k"},
    };
    for (size_t i = 0; i < sizeof si / sizeof si[0]; i++) {
        cli_format_si(si[i].v, b, sizeof b);
        assert_string_equal(b, si[i].s);
    }
    cli_format_si(NAN, b, sizeof b);
    assert_string_equal(b, "?");
    cli_format_duration(42.2, b, sizeof b);
    assert_string_equal(b, "42s");
    cli_format_duration(187, b, sizeof b);
    assert_string_equal(b, "3:07");
    cli_format_duration(3723, b, sizeof b);
    assert_string_equal(b, "1:02:03");
    cli_format_duration(INFINITY, b, sizeof b);
    assert_string_equal(b, "?");
}

/* Redirects stderr to a file while `fn` runs; returns what was written (caller frees). */
static char *capture_stderr(void (*fn)(void)) {
    const char *path = tmp_path("progress.log");
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *f = fopen(path, "w+");
    dup2(fileno(f), STDERR_FILENO);
    fn();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *text = calloc((size_t)n + 1, 1);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return text;
}

static void run_quiet_job(void) {
    cli_progress p;
    cli_progress_start(&p, "pretrain", 2000, "tok");
    for (int i = 1; i <= 2000; i++) cli_progress_update(&p, i, "loss 2.31"); /* fast: within the 5 s interval */
    cli_progress_finish(&p, "loss 2.00 | mfu 41%");
}

static void run_chatty_job(void) {
    cli_progress p;
    cli_progress_start(&p, "sft", 0, "ex"); /* unknown total */
    p.min_interval = 0;                     /* draw every update */
    for (int i = 1; i <= 3; i++) cli_progress_update(&p, i * 1000, NULL);
    cli_progress_finish(&p, NULL);
}

static void test_plain_output_is_short(void **state) {
    (void)state;
    char *out = capture_stderr(run_quiet_job); /* a file, not a terminal: one line at finish */
    assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out));
    assert_non_null(strstr(out, "pretrain [########################] 100% 2.00k/2.00k tok"));
    assert_non_null(strstr(out, "loss 2.00 | mfu 41%"));
    assert_null(strchr(out, '\r'));
    free(out);

    out = capture_stderr(run_chatty_job);
    int lines = 0;
    for (char *c = out; *c; c++) lines += *c == '\n';
    assert_int_equal(lines, 4);
    assert_non_null(strstr(out, "sft 3.00k ex"));
    assert_null(strchr(out, '['));
    free(out);
}

/* A resumed run that starts at its final step: its first event (the final evaluation) restarts the clock at 30
 * before any update, and the finished line reads 30/30 at 0 steps/s, never a negative rate. */
static void run_resumed_at_end(void) {
    cli_progress p;
    cli_progress_start(&p, "dpo", 30, "steps");
    cli_progress_restart(&p, 30);
    cli_progress_finish(&p, "done");
}

static void run_resumed_midway(void) {
    cli_progress p;
    cli_progress_start(&p, "dpo", 30, "steps");
    cli_progress_restart(&p, 20);
    cli_progress_update(&p, 25, NULL);
    cli_progress_finish(&p, NULL);
}

static void test_resumed_rate_never_negative(void **state) {
    (void)state;
    char *out = capture_stderr(run_resumed_at_end);
    assert_non_null(strstr(out, "100% 30/30 steps  0 steps/s"));
    assert_null(strchr(out, '-'));
    free(out);
    out = capture_stderr(run_resumed_midway);
    assert_non_null(strstr(out, " 25/30 steps  "));
    assert_null(strchr(out, '-'));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_si_and_duration),
        cmocka_unit_test(test_plain_output_is_short),
        cmocka_unit_test(test_resumed_rate_never_negative),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
