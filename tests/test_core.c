/* Core utilities: error messages, atomic file writes, deterministic RNG, CLI flag parsing. */
#include "testutil.h"
#include "core/rng.h"
#include "io/fileio.h"
#include "jielong.h"
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_error_message_and_context(void **state) {
    (void)state;
    assert_int_equal(jl_fail(JL_ERR_FORMAT, "bad magic %d", 7), JL_ERR_FORMAT);
    assert_string_equal(jl_last_error(), "bad magic 7");
    jl_fail_context(JL_ERR_FORMAT, "ckpt.safetensors");
    assert_string_equal(jl_last_error(), "ckpt.safetensors: bad magic 7");
    assert_int_equal(jl_exit_code(JL_ERR_ARG), 2);
    assert_int_equal(jl_exit_code(JL_ERR_RUNTIME), 1);
    assert_int_equal(jl_exit_code(JL_OK), 0);
}

static void test_atomic_write_replaces_whole_file(void **state) {
    (void)state;
    const char *p = tmp_path("atomic.txt");
    assert_int_equal(jl_write_file_atomic(p, "first", 5), JL_OK);
    jl_atomic_file af;
    assert_int_equal(jl_atomic_open(&af, p), JL_OK);
    fputs("half-written", af.f);
    jl_atomic_abort(&af); /* simulated failure: the old content must survive */
    char *data;
    size_t len;
    assert_int_equal(jl_read_file(p, &data, &len), JL_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(data, "first", 5);
    free(data);
    assert_int_equal(jl_write_file_atomic(p, "second!", 7), JL_OK);
    assert_int_equal(jl_read_file(p, &data, &len), JL_OK);
    assert_int_equal(len, 7);
    free(data);
    struct stat st;
    char tmpname[1200];
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", p, (long)getpid());
    assert_int_not_equal(stat(tmpname, &st), 0); /* no temp file left behind */
}

static void test_read_missing_file_names_it(void **state) {
    (void)state;
    char *data;
    size_t len;
    assert_int_equal(jl_read_file("/nonexistent/x.bin", &data, &len), JL_ERR_IO);
    assert_non_null(strstr(jl_last_error(), "/nonexistent/x.bin"));
}

static void test_rng_deterministic_and_distributed(void **state) {
    (void)state;
    jl_rng a, b;
    jl_rng_seed(&a, 42);
    jl_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) assert_true(jl_rng_u64(&a) == jl_rng_u64(&b));
    double sum = 0, sumsq = 0;
    const int n = 100000;
    for (int i = 0; i < n; i++) {
        float x = jl_rng_normal(&a);
        sum += x;
        sumsq += (double)x * x;
    }
    assert_true(fabs(sum / n) < 0.02);
    assert_true(fabs(sumsq / n - 1.0) < 0.03);
    for (int i = 0; i < 1000; i++) {
        float u = jl_rng_uniform(&a);
        assert_true(u >= 0.0f && u < 1.0f);
    }
}

static void test_cli_usage_errors(void **state) {
    (void)state;
    assert_int_equal(run_cli("version", NULL), 0);
    assert_int_equal(run_cli("no-such-command", tmp_path("cli.log")), 2);
    assert_int_equal(run_cli("", tmp_path("cli.log")), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_message_and_context),
        cmocka_unit_test(test_atomic_write_replaces_whole_file),
        cmocka_unit_test(test_read_missing_file_names_it),
        cmocka_unit_test(test_rng_deterministic_and_distributed),
        cmocka_unit_test(test_cli_usage_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
