/* jielong plot: draws metrics JSONL files (from training runs) as an SVG line plot. */
#include "cli/args.h"
#include "jielong/metrics.h"
#include "jielong/plot.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    cli_strs metrics;
    char *y, *x, *stage, *out, *title, *labels, *where;
    long smooth, width, height;
    int log_y;
} plot_args;

/* The name of file f's curves: its --label, else its run folder ("runs/a/metrics.jsonl" → "runs/a" when the
 * folders' last parts collide, else "a"), else the file name for files not in a folder. */
static void run_name(const plot_args *a, int f, char *out, size_t size) {
    if (a->labels) {
        const char *p = a->labels;
        for (int i = 0; i < f && p; i++) p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL;
        size_t n = p ? strcspn(p, ",") : 0;
        if (n > 0) {
            snprintf(out, size, "%.*s", (int)n, p);
            return;
        }
    }
    const char *path = a->metrics.v[f], *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(out, size, "%s", path);
        return;
    }
    /* the folder's last part, unless another file's folder ends the same way */
    const char *start = slash;
    while (start > path && start[-1] != '/') start--;
    size_t len = (size_t)(slash - start);
    int clash = 0;
    for (int g = 0; g < a->metrics.n; g++) {
        const char *q = a->metrics.v[g], *qs = strrchr(q, '/');
        if (g == f || !qs) continue;
        const char *qb = qs;
        while (qb > q && qb[-1] != '/') qb--;
        clash |= (size_t)(qs - qb) == len && strncmp(qb, start, len) == 0;
    }
    if (clash) snprintf(out, size, "%.*s", (int)(slash - path), path);
    else snprintf(out, size, "%.*s", (int)len, start);
}

/* Whether the series matching `key` (and the stage filter) come from more than one stage across the files. */
static int stages_differ(jl_metrics_data **data, int n_files, const char *key, const char *stage) {
    const char *first = NULL;
    for (int f = 0; f < n_files; f++)
        for (int i = 0; i < jl_metrics_series_count(data[f]); i++) {
            const jl_series *s = jl_metrics_series_at(data[f], i);
            if (strcmp(s->key, key) != 0 || (stage && strcmp(s->stage, stage) != 0)) continue;
            if (first && strcmp(first, s->stage) != 0) return 1;
            first = s->stage;
        }
    return 0;
}

/* "loss, lr, val_loss" from the file's series, for the unknown-key message. */
static void list_keys(const jl_metrics_data *d, char *buf, size_t size) {
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < jl_metrics_series_count(d); i++) {
        const char *key = jl_metrics_series_at(d, i)->key;
        int seen = 0;
        for (int j = 0; j < i; j++) seen |= strcmp(jl_metrics_series_at(d, j)->key, key) == 0;
        if (!seen && n < size) n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? ", " : "", key);
    }
    if (!buf[0]) snprintf(buf, size, "none");
}

/* Adds every series of `key` (filtered by stage) from every file; labels say file/stage only when needed. */
static int add_key(jl_plot *plot, jl_metrics_data **data, const plot_args *a, const char *key, int multi_key) {
    int multi_stage = stages_differ(data, a->metrics.n, key, a->stage), added = 0;
    for (int f = 0; f < a->metrics.n; f++) {
        for (int i = 0; i < jl_metrics_series_count(data[f]); i++) {
            const jl_series *s = jl_metrics_series_at(data[f], i);
            if (strcmp(s->key, key) != 0 || (a->stage && strcmp(s->stage, a->stage) != 0)) continue;
            char label[512], run[256] = "";
            if (a->metrics.n > 1 || a->labels) run_name(a, f, run, sizeof run);
            snprintf(label, sizeof label, "%s%s%s%s%s", run, run[0] ? ": " : "", multi_stage ? s->stage : "", multi_stage ? " " : "",
                     multi_key || !multi_stage ? key : "");
            size_t len = strlen(label);
            while (len > 0 && label[len - 1] == ' ') label[--len] = '\0';
            if (jl_plot_add(plot, label, s->n, s->x, s->y) != 0) return cli_report("plot", 1);
            added++;
        }
    }
    if (!added) {
        char keys[1024];
        list_keys(data[0], keys, sizeof keys);
        fprintf(stderr, "jielong plot: no metric '%s' (x '%s'%s%s) in %s; metrics there: %s\n", key, a->x,
                a->stage ? ", stage " : "", a->stage ? a->stage : "", a->metrics.v[0], keys);
        return 2;
    }
    return 0;
}

static int draw(const plot_args *a, jl_metrics_data **data) {
    char default_title[256];
    size_t n = 0;
    for (const char *c = a->y; *c && n + 3 < sizeof default_title; c++) { /* "loss,val_loss" → "loss, val_loss" */
        default_title[n++] = *c;
        if (*c == ',') default_title[n++] = ' ';
    }
    snprintf(default_title + n, sizeof default_title - n, "%s%s", a->stage ? " — " : "", a->stage ? a->stage : "");
    int multi_key = strchr(a->y, ',') != NULL;
    jl_plot_options opt = {a->title ? a->title : default_title, a->x, multi_key ? "" : a->y, (int)a->width,
                           (int)a->height, a->log_y, (int)a->smooth};
    jl_plot *plot;
    int rc = jl_plot_new(&opt, &plot);
    if (rc != 0) return cli_report("plot", rc);
    char *keys = strdup(a->y), *save = NULL;
    if (!keys) {
        jl_plot_free(plot);
        return 1;
    }
    for (char *key = strtok_r(keys, ",", &save); key && rc == 0; key = strtok_r(NULL, ",", &save))
        rc = add_key(plot, data, a, key, multi_key);
    if (rc == 0) rc = cli_report("plot", jl_plot_write(plot, a->out));
    free(keys);
    jl_plot_free(plot);
    return rc;
}

int cmd_plot(int argc, char **argv) {
    plot_args a = {.y = "loss", .x = "step", .width = 760, .height = 440};
    const cli_opt opts[] = {
        {"metrics", OPT_STRS, &a.metrics, "metrics JSONL file(s) written by training", NO_RANGE, 1},
        {"y", OPT_STR, &a.y, "metric(s) to draw, comma-separated (default loss)", NO_RANGE, 0},
        {"x", OPT_STR, &a.x, "field for the x axis (default step)", NO_RANGE, 0},
        {"stage", OPT_STR, &a.stage, "only lines of this stage (pretrain, sft, ...)", NO_RANGE, 0},
        {"where", OPT_STR, &a.where, "only lines whose string field KEY equals VALUE, as KEY=VALUE (e.g. lesson=icl "
                                     "in a pipeline's summary.jsonl, with --x shots)", NO_RANGE, 0},
        {"label", OPT_STR, &a.labels, "names of the runs, comma-separated, one per --metrics file (default: each file's run folder)", NO_RANGE, 0},
        {"smooth", OPT_INT, &a.smooth, "centred moving-average window in points, for series of at least 3 windows (sparse ones such as val_loss are drawn raw, with markers; 0: none)", 0, 1000000, 0},
        {"log-y", OPT_BOOL, &a.log_y, "logarithmic y axis", NO_RANGE, 0},
        {"title", OPT_STR, &a.title, "plot title (default: the metric names)", NO_RANGE, 0},
        {"width", OPT_INT, &a.width, "width in pixels", 200, 10000, 0},
        {"height", OPT_INT, &a.height, "height in pixels", 150, 10000, 0},
        {"out", OPT_STR, &a.out, "SVG file to write", NO_RANGE, 1},
    };
    int rc = cli_parse("plot", "Draw training metrics (JSONL) as an SVG line plot.", opts, CLI_NOPTS(opts), argc, argv, 1);
    if (rc != CLI_PARSED) {
        free(a.metrics.v);
        return rc == CLI_HELP_SHOWN ? 0 : 2;
    }
    if (!*a.y || strstr(a.y, ",,") || a.y[0] == ',' || a.y[strlen(a.y) - 1] == ',') {
        fprintf(stderr, "jielong plot: --y '%s': expected names separated by commas\n", a.y);
        free(a.metrics.v);
        return 2;
    }
    jl_metrics_data **data = calloc((size_t)a.metrics.n, sizeof *data);
    rc = data ? 0 : 1;
    for (int f = 0; f < a.metrics.n && rc == 0; f++) rc = cli_report("plot", jl_metrics_read_where(a.metrics.v[f], a.x, a.where, &data[f]));
    if (rc == 0) rc = draw(&a, data);
    if (rc == 0) printf("wrote %s\n", a.out);
    for (int f = 0; data && f < a.metrics.n; f++) jl_metrics_data_free(data[f]);
    free(data);
    free(a.metrics.v);
    return rc;
}
