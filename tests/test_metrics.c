/* Metrics JSONL: write → read round trip, null for non-finite values, appending, and line-numbered errors. */
#include "testutil.h"
#include "io/fileio.h"
#include "jielong/metrics.h"
#include <math.h>

static void test_log_and_read_back(void **state) {
    (void)state;
    const char *path = tmp_path("runs/a/b/metrics.jsonl"); /* folders are created */
    remove(path); /* appending: start from nothing even when the scratch folder is reused */
    jl_metrics *m;
    assert_int_equal(jl_metrics_open(path, &m), JL_OK);
    const char *keys[] = {"loss", "lr", "tok_per_s"};
    for (int step = 0; step < 50; step++) {
        double v[] = {3.0 / (1 + step) + 0.1, 1e-3 * step, step == 7 ? NAN : 12345.5};
        assert_int_equal(jl_metrics_log(m, "pretrain", step, 3, keys, v), JL_OK);
    }
    const char *sft_keys[] = {"loss", "val_loss"};
    double sv[] = {0.1 + 0.2, INFINITY}; /* 0.30000000000000004 must survive the text round trip */
    assert_int_equal(jl_metrics_log(m, "sft", 3, 2, sft_keys, sv), JL_OK);
    jl_metrics_close(m);

    /* Reopening appends. */
    assert_int_equal(jl_metrics_open(path, &m), JL_OK);
    double v2[] = {0.25};
    assert_int_equal(jl_metrics_log(m, "sft", 4, 1, sft_keys, v2), JL_OK);
    jl_metrics_close(m);

    char *text;
    size_t len;
    assert_int_equal(jl_read_file(path, &text, &len), JL_OK);
    assert_non_null(strstr(text, "{\"stage\":\"pretrain\",\"step\":0,\"loss\":3.1,\"lr\":0,\"tok_per_s\":12345.5}\n"));
    assert_non_null(strstr(text, "\"step\":7,\"loss\":0.475,\"lr\":0.007,\"tok_per_s\":null}"));
    assert_non_null(strstr(text, "\"val_loss\":null"));
    free(text);

    jl_metrics_data *d;
    assert_int_equal(jl_metrics_read(path, NULL, &d), JL_OK);
    assert_int_equal(jl_metrics_series_count(d), 4); /* pretrain loss, lr, tok_per_s; sft loss (val_loss all null) */
    const jl_series *loss = jl_metrics_find(d, "pretrain", "loss");
    assert_non_null(loss);
    assert_int_equal(loss->n, 50);
    for (int i = 0; i < 50; i++) {
        assert_true(loss->x[i] == i);
        assert_true(loss->y[i] == 3.0 / (1 + i) + 0.1); /* bit-exact through the text */
    }
    assert_int_equal(jl_metrics_find(d, "pretrain", "tok_per_s")->n, 49); /* the null is no point */
    const jl_series *sft = jl_metrics_find(d, "sft", "loss");
    assert_int_equal(sft->n, 2);
    assert_true(sft->y[0] == 0.1 + 0.2 && sft->x[1] == 4 && sft->y[1] == 0.25);
    assert_ptr_equal(jl_metrics_find(d, NULL, "loss"), loss);
    assert_null(jl_metrics_find(d, NULL, "val_loss"));
    assert_string_equal(jl_metrics_series_at(d, 0)->key, "loss");
    assert_null(jl_metrics_series_at(d, 4));
    jl_metrics_data_free(d);

    /* Another x axis: lr as x; lines without it add nothing. */
    assert_int_equal(jl_metrics_read(path, "lr", &d), JL_OK);
    const jl_series *by_lr = jl_metrics_find(d, "pretrain", "loss");
    assert_int_equal(by_lr->n, 50);
    assert_true(by_lr->x[10] == 1e-3 * 10);
    assert_non_null(jl_metrics_find(d, "pretrain", "step"));
    assert_null(jl_metrics_find(d, "sft", "loss"));
    jl_metrics_data_free(d);
}

static void test_log_rejects_bad_keys(void **state) {
    (void)state;
    jl_metrics *m;
    assert_int_equal(jl_metrics_open(tmp_path("k.jsonl"), &m), JL_OK);
    double v[2] = {1, 2};
    const char *reserved[] = {"step"}, *dup[] = {"a", "a"}, *empty[] = {""};
    assert_int_equal(jl_metrics_log(m, "x", 0, 1, reserved, v), JL_ERR_ARG);
    assert_int_equal(jl_metrics_log(m, "x", 0, 2, dup, v), JL_ERR_ARG);
    assert_int_equal(jl_metrics_log(m, "x", 0, 1, empty, v), JL_ERR_ARG);
    assert_int_equal(jl_metrics_log(m, "x", 0, 0, NULL, NULL), JL_OK);
    jl_metrics_close(m);
    assert_int_equal(jl_metrics_open("/proc/nope/m.jsonl", &m), JL_ERR_IO);
}

static void expect_read_error(const char *content, const char *want) {
    const char *path = tmp_path("bad.jsonl");
    assert_int_equal(jl_write_file_atomic(path, content, strlen(content)), JL_OK);
    jl_metrics_data *d = (jl_metrics_data *)1;
    assert_int_equal(jl_metrics_read(path, NULL, &d), JL_ERR_FORMAT);
    assert_null(d);
    char expect[1200];
    snprintf(expect, sizeof expect, "%s%s", path, want);
    if (!strstr(jl_last_error(), expect)) fail_msg("'%s' does not contain '%s'", jl_last_error(), expect);
}

static void test_read_reports_file_and_line(void **state) {
    (void)state;
    expect_read_error("{\"step\":1,\"loss\":2}\n{\"step\":2,\"loss\":\n", ":2: not a JSON object");
    expect_read_error("{\"step\":1}\n\n  \n[1,2]\n", ":4: not a JSON object");
    expect_read_error("{\"step\":1} {\"step\":2}\n", ":1: not a JSON object");
    expect_read_error("{\"step\":1}\r\n{\"stage\":5,\"step\":2}\r\n", ":2: \"stage\" is not a string");
    jl_metrics_data *d;
    assert_int_equal(jl_metrics_read(tmp_path("missing.jsonl"), NULL, &d), JL_ERR_IO);
    /* Tolerated: CRLF, blank lines, strings/bools, lines without the x key, an empty file. */
    const char *path = tmp_path("ok.jsonl");
    const char *ok = "\r\n{\"step\":1,\"loss\":2,\"note\":\"hi\",\"flag\":true}\r\n{\"loss\":9}\n{\"step\":2,\"loss\":1.5}";
    assert_int_equal(jl_write_file_atomic(path, ok, strlen(ok)), JL_OK);
    assert_int_equal(jl_metrics_read(path, NULL, &d), JL_OK);
    assert_int_equal(jl_metrics_series_count(d), 1);
    assert_int_equal(jl_metrics_find(d, "", "loss")->n, 2);
    jl_metrics_data_free(d);
    assert_int_equal(jl_write_file_atomic(path, "", 0), JL_OK);
    assert_int_equal(jl_metrics_read(path, NULL, &d), JL_OK);
    assert_int_equal(jl_metrics_series_count(d), 0);
    jl_metrics_data_free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_and_read_back),
        cmocka_unit_test(test_log_rejects_bad_keys),
        cmocka_unit_test(test_read_reports_file_and_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
