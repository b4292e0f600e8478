/* SVG plots: well-formed documents with one path per series, smoothing, log axes, decimation, and the
 * `jielong plot` command's success and error paths. */
#include "testutil.h"
#include "io/fileio.h"
#include "jielong/metrics.h"
#include "jielong/plot.h"
#include <math.h>

/* A small well-formedness check: tags nest and close, attributes are quoted, '&' starts a known entity, and
 * there is exactly one root element. Returns NULL when fine, else a description. */
static const char *xml_problem(const char *s) {
    char stack[32][64];
    int depth = 0, roots = 0;
    while (*s) {
        if (*s == '&') {
            const char *ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
            int ok = 0;
            for (int i = 0; i < 5; i++) ok |= strncmp(s, ents[i], strlen(ents[i])) == 0;
            if (!ok) return "bare &";
            s++;
            continue;
        }
        if (*s == '>') return "bare >";
        if (*s != '<') { s++; continue; }
        if (s[1] == '?') { /* declaration */
            s = strstr(s, "?>");
            if (!s) return "unterminated <?";
            s += 2;
            continue;
        }
        int closing = s[1] == '/';
        s += closing ? 2 : 1;
        char name[64];
        size_t n = 0;
        while (*s && !strchr(" />\n", *s) && n < 63) name[n++] = *s++;
        name[n] = '\0';
        if (!n) return "empty tag name";
        int self_closing = 0;
        while (*s && *s != '>') { /* attributes */
            if (*s == '"') {
                const char *end = strchr(s + 1, '"');
                if (!end) return "unterminated attribute";
                for (const char *c = s + 1; c < end; c++)
                    if (*c == '<') return "< in attribute";
                s = end + 1;
                continue;
            }
            if (*s == '=' && s[1] != '"') return "unquoted attribute";
            self_closing = *s == '/';
            s++;
        }
        if (!*s) return "unterminated tag";
        s++;
        if (closing) {
            if (depth == 0 || strcmp(stack[depth - 1], name) != 0) return "mismatched closing tag";
            depth--;
        } else if (!self_closing) {
            if (depth == 0) roots++;
            if (depth == 32) return "too deep";
            strcpy(stack[depth++], name);
        } else if (depth == 0) {
            roots++;
        }
    }
    if (depth) return "unclosed element";
    return roots == 1 ? NULL : "not exactly one root";
}

__attribute__((noinline)) static int count(const char *hay, const char *needle) {
    int n = 0;
    size_t at = 0, len = strlen(hay);
    while (at < len) {
        const char *hit = strstr(hay + at, needle);
        if (!hit) break;
        n++;
        at = (size_t)(hit - hay) + 1;
    }
    return n;
}

static char *render(const jl_plot_options *opt, int n_series, int64_t n, int with_nonpositive) {
    jl_plot *p;
    assert_int_equal(jl_plot_new(opt, &p), JL_OK);
    double *x = malloc(sizeof(double) * (size_t)n), *y = malloc(sizeof(double) * (size_t)n);
    for (int s = 0; s < n_series; s++) {
        for (int64_t i = 0; i < n; i++) {
            x[i] = (double)i * 10;
            y[i] = (s + 1) * (2 + 8 * exp(-(double)i / (double)(n / 5 + 1))) + 0.1 * sin((double)i);
            if (with_nonpositive && i % 7 == 3) y[i] = -1;
            if (i == 5) y[i] = NAN; /* skipped */
        }
        char name[32];
        snprintf(name, sizeof name, s == 0 ? "loss <train> & \"val\"" : "series %d", s);
        assert_int_equal(jl_plot_add(p, name, n, x, y), JL_OK);
    }
    free(x);
    free(y);
    char *svg;
    size_t len;
    assert_int_equal(jl_plot_svg(p, &svg, &len), JL_OK);
    assert_int_equal(strlen(svg), len);
    jl_plot_free(p);
    const char *problem = xml_problem(svg);
    if (problem) fail_msg("SVG not well-formed: %s", problem);
    return svg;
}

/* The last point of a path's d attribute ("... L x y"), copied into out. */
static void last_point(const char *svg, const char *cls, char *out, size_t size) {
    char key[64];
    snprintf(key, sizeof key, "class=\"%s\"", cls);
    const char *start = strstr(svg, key);
    assert_non_null(start);
    const char *end = strstr(start, "\"/>"), *p = end;
    assert_non_null(end);
    while (p > start && p[-1] != 'L' && p[-1] != 'M') p--;
    snprintf(out, size, "%.*s", (int)(end - p), p);
}

static void assert_same_last_point(const char *svg) {
    char raw[64], smooth[64];
    last_point(svg, "series-raw", raw, sizeof raw);
    last_point(svg, "series", smooth, sizeof smooth);
    assert_string_equal(raw, smooth);
}

static void test_svg_has_one_path_per_series(void **state) {
    (void)state;
    jl_plot_options opt = {.title = "Loss & friends", .x_label = "step", .y_label = "loss"};
    char *svg = render(&opt, 3, 500, 0);
    assert_int_equal(count(svg, "class=\"series\""), 3);
    assert_int_equal(count(svg, "class=\"series-raw\""), 0);
    assert_non_null(strstr(svg, "loss &lt;train&gt; &amp; &quot;val&quot;"));
    assert_non_null(strstr(svg, ">series 2</text>"));
    assert_non_null(strstr(svg, "Loss &amp; friends"));
    assert_non_null(strstr(svg, ">step</text>"));
    assert_non_null(strstr(svg, ">4000</text>")); /* x ticks at nice numbers: 0 .. 5000 step 1000 */
    free(svg);

    opt.smooth = 20; /* raw curve faint + smoothed curve per series */
    svg = render(&opt, 2, 500, 0);
    assert_int_equal(count(svg, "class=\"series\""), 2);
    assert_int_equal(count(svg, "class=\"series-raw\""), 2);
    free(svg);

    /* the smoothed curve keeps the last point where it is: its path ends at the raw path's end */
    svg = render(&opt, 1, 500, 0);
    assert_same_last_point(svg);
    free(svg);

    opt.smooth = 0;
    opt.log_y = 1; /* non-positive points are left out, ticks at 1/2/5 × 10^k */
    svg = render(&opt, 1, 300, 1);
    assert_int_equal(count(svg, "class=\"series\""), 1);
    assert_non_null(strstr(svg, ">10</text>"));
    assert_non_null(strstr(svg, ">5</text>"));
    free(svg);
}

static void test_many_points_are_decimated(void **state) {
    (void)state;
    jl_plot_options opt = {.title = "big"};
    int64_t n = JL_SANITIZED ? 200000 : 1000000;
    char *svg = render(&opt, 1, n, 0);
    assert_true(strlen(svg) < 200000); /* a few points per pixel column, not a million */
    free(svg);
}

static void test_plot_errors(void **state) {
    (void)state;
    jl_plot_options opt = {0};
    jl_plot *p;
    assert_int_equal(jl_plot_new(&opt, &p), JL_OK);
    double x[2] = {1, 2}, y[2] = {-1, NAN};
    assert_int_equal(jl_plot_add(p, "", 2, x, y), JL_ERR_ARG);
    assert_int_equal(jl_plot_add(p, "neg", 2, x, y), JL_OK);
    char *svg;
    size_t len;
    assert_int_equal(jl_plot_svg(p, &svg, &len), JL_OK); /* linear: -1 is a point */
    free(svg);
    jl_plot_free(p);
    opt.log_y = 1;
    assert_int_equal(jl_plot_new(&opt, &p), JL_OK);
    assert_int_equal(jl_plot_add(p, "neg", 2, x, y), JL_OK);
    assert_int_equal(jl_plot_svg(p, &svg, &len), JL_ERR_ARG); /* nothing positive to draw */
    assert_int_equal(jl_plot_write(p, tmp_path("none.svg")), JL_ERR_ARG);
    assert_non_null(strstr(jl_last_error(), "none.svg"));
    jl_plot_free(p);
    opt.width = 50;
    assert_int_equal(jl_plot_new(&opt, &p), JL_ERR_ARG);
}

/* ---- the command ---- */

static const char *write_metrics(void) {
    const char *path = tmp_path("cli_metrics.jsonl");
    remove(path);
    jl_metrics *m;
    assert_int_equal(jl_metrics_open(path, &m), JL_OK);
    const char *keys[] = {"loss", "val_loss"};
    for (int step = 0; step < 200; step++) {
        double v[] = {2 + 8 * exp(-step / 40.0), step % 20 == 0 ? 2.2 + 8 * exp(-step / 40.0) : NAN};
        assert_int_equal(jl_metrics_log(m, "pretrain", step, step % 20 == 0 ? 2 : 1, keys, v), JL_OK);
    }
    for (int step = 0; step < 50; step++) {
        double v[] = {1.5 + exp(-step / 10.0)};
        assert_int_equal(jl_metrics_log(m, "sft", step, 1, keys, v), JL_OK);
    }
    jl_metrics_close(m);
    return path;
}

static char *read_text(const char *path) {
    char *text;
    size_t len;
    assert_int_equal(jl_read_file(path, &text, &len), JL_OK);
    return text;
}

static void test_cli_plot(void **state) {
    (void)state;
    const char *metrics = write_metrics(), *out = tmp_path("plot.svg"), *log = tmp_path("plot.log");
    char args[4096];
    snprintf(args, sizeof args, "plot --metrics %s --y loss,val_loss --stage pretrain --smooth 5 --out %s", metrics, out);
    assert_int_equal(run_cli(args, log), 0);
    char *svg = read_text(out);
    assert_null(xml_problem(svg));
    assert_int_equal(count(svg, "class=\"series\""), 2);
    assert_non_null(strstr(svg, "data-name=\"loss\""));
    assert_non_null(strstr(svg, "data-name=\"val_loss\""));
    free(svg);

    /* Both stages of one key: one series each, named by stage; log axis. */
    snprintf(args, sizeof args, "plot --metrics %s --log-y --out %s", metrics, out);
    assert_int_equal(run_cli(args, log), 0);
    svg = read_text(out);
    assert_null(xml_problem(svg));
    assert_non_null(strstr(svg, "data-name=\"pretrain\""));
    assert_non_null(strstr(svg, "data-name=\"sft\""));
    free(svg);

    /* Sparse series are never smoothed: with --smooth 20 the dense loss gets a faint raw curve under its smoothed
     * one, the 10-point val_loss is drawn raw with a marker per point (before: smoothed, ending above its last value). */
    snprintf(args, sizeof args, "plot --metrics %s --y loss,val_loss --stage pretrain --smooth 20 --out %s", metrics, out);
    assert_int_equal(run_cli(args, log), 0);
    svg = read_text(out);
    assert_int_equal(count(svg, "class=\"series-raw\""), 1);
    assert_non_null(strstr(svg, "class=\"points\" data-name=\"val_loss\""));
    assert_int_equal(count(svg, "<circle"), 10);
    free(svg);

    /* Two runs: curves are named by run folder (before: both "cli_metrics.jsonl: loss"), or by --label. */
    char a_dir[1024], b_dir[1024], cmd[8192];
    snprintf(a_dir, sizeof a_dir, "%s", tmp_path("run_a"));
    snprintf(b_dir, sizeof b_dir, "%s", tmp_path("run_b"));
    snprintf(cmd, sizeof cmd, "mkdir -p %s %s && cp %s %s/metrics.jsonl && cp %s %s/metrics.jsonl", a_dir, b_dir,
             metrics, a_dir, metrics, b_dir);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args, "plot --metrics %s/metrics.jsonl %s/metrics.jsonl --stage sft --out %s", a_dir, b_dir, out);
    assert_int_equal(run_cli(args, log), 0);
    svg = read_text(out);
    assert_int_equal(count(svg, "data-name=\"run_a: loss\""), 2); /* its path and its 50 markers' group */
    assert_int_equal(count(svg, "data-name=\"run_b: loss\""), 2);
    free(svg);
    snprintf(args, sizeof args, "plot --metrics %s/metrics.jsonl %s/metrics.jsonl --stage sft --label full,lora --out %s",
             a_dir, b_dir, out);
    assert_int_equal(run_cli(args, log), 0);
    svg = read_text(out);
    assert_int_equal(count(svg, "data-name=\"full: loss\""), 2);
    assert_int_equal(count(svg, "data-name=\"lora: loss\""), 2);
    free(svg);

    assert_int_equal(run_cli("plot --help", log), 0);
}

static void expect_cli_error(const char *args, const char *want) {
    const char *log = tmp_path("err.log");
    assert_int_equal(run_cli(args, log), 2);
    char *text = read_text(log);
    if (!strstr(text, want)) fail_msg("'%s' does not mention '%s'", text, want);
    free(text);
}

static void test_cli_plot_bad_inputs(void **state) {
    (void)state;
    char metrics[1024], out[1024], args[4096], want[1200]; /* copies: tmp_path's buffers are reused */
    snprintf(metrics, sizeof metrics, "%s", write_metrics());
    snprintf(out, sizeof out, "%s", tmp_path("bad.svg"));
    snprintf(args, sizeof args, "plot --metrics %s --out %s", tmp_path("missing.jsonl"), out);
    expect_cli_error(args, "missing.jsonl");

    const char *bad = tmp_path("broken.jsonl");
    const char *text = "{\"step\":1,\"loss\":2}\n{\"step\":2,\"loss\":1.9}\n{\"step\":3,\"loss\"\n";
    assert_int_equal(jl_write_file_atomic(bad, text, strlen(text)), JL_OK);
    snprintf(args, sizeof args, "plot --metrics %s --out %s", bad, out);
    snprintf(want, sizeof want, "%s:3:", bad);
    expect_cli_error(args, want);

    snprintf(args, sizeof args, "plot --metrics %s --y perplexity --out %s", metrics, out);
    expect_cli_error(args, "no metric 'perplexity'");
    snprintf(args, sizeof args, "plot --metrics %s --stage dpo --out %s", metrics, out);
    expect_cli_error(args, "stage dpo");
    snprintf(args, sizeof args, "plot --metrics %s --y loss, --out %s", metrics, out);
    expect_cli_error(args, "--y");
    snprintf(args, sizeof args, "plot --metrics %s", metrics);
    expect_cli_error(args, "--out is required");
    snprintf(args, sizeof args, "plot --metrics %s --smooth -3 --out %s", metrics, out);
    expect_cli_error(args, "out of range");
    FILE *f = fopen(out, "r");
    assert_null(f); /* no partial output on failure */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_svg_has_one_path_per_series),
        cmocka_unit_test(test_many_points_are_decimated),
        cmocka_unit_test(test_plot_errors),
        cmocka_unit_test(test_cli_plot),
        cmocka_unit_test(test_cli_plot_bad_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
