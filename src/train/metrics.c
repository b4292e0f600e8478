/* JSONL metrics log: appending writer and series reader (see include/jielong/metrics.h). */
#include "jielong/metrics.h"
#include "io/fileio.h"
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jl_metrics {
    FILE *f;
    char *path;
};

/* Creates the folder part of `path`, if any. */
static jl_status make_parent_folder(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) return JL_OK;
    size_t n = (size_t)(slash - path);
    char *dir = malloc(n + 1);
    if (!dir) return jl_fail(JL_ERR_NOMEM, "%s: out of memory", path);
    memcpy(dir, path, n);
    dir[n] = '\0';
    jl_status st = jl_mkdir_p(dir);
    free(dir);
    return st;
}

jl_status jl_metrics_open(const char *path, jl_metrics **out) {
    *out = NULL;
    jl_status st = make_parent_folder(path);
    if (st != JL_OK) return st;
    jl_metrics *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return jl_fail(JL_ERR_NOMEM, "%s: out of memory", path);
    }
    m->f = fopen(path, "a");
    if (!m->f) {
        st = jl_fail(JL_ERR_IO, "%s: cannot open for appending: %s", path, strerror(errno));
        free(m->path);
        free(m);
        return st;
    }
    *out = m;
    return JL_OK;
}

void jl_metrics_close(jl_metrics *m) {
    if (!m) return;
    fclose(m->f);
    free(m->path);
    free(m);
}

/* A JSON number with the shortest text that reads back as the same double (null when not finite). */
static json_object *json_number(double v) {
    if (!isfinite(v)) return NULL;
    char buf[32];
    snprintf(buf, sizeof buf, "%.15g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, sizeof buf, "%.17g", v);
    return json_object_new_double_s(v, buf);
}

static jl_status check_keys(const jl_metrics *m, int n, const char *const *keys) {
    for (int i = 0; i < n; i++) {
        if (!keys[i] || !*keys[i] || strcmp(keys[i], "stage") == 0 || strcmp(keys[i], "step") == 0)
            return jl_fail(JL_ERR_ARG, "%s: metric key %d ('%s') is empty or reserved", m->path, i,
                           keys[i] ? keys[i] : "(null)");
        for (int j = 0; j < i; j++)
            if (strcmp(keys[i], keys[j]) == 0) return jl_fail(JL_ERR_ARG, "%s: duplicate metric key '%s'", m->path, keys[i]);
    }
    return JL_OK;
}

jl_status jl_metrics_log(jl_metrics *m, const char *stage, int64_t step, int n, const char *const *keys,
                         const double *values) {
    jl_status st = check_keys(m, n, keys);
    if (st != JL_OK) return st;
    json_object *line = json_object_new_object();
    if (!line) return jl_fail(JL_ERR_NOMEM, "%s: out of memory", m->path);
    json_object_object_add(line, "stage", json_object_new_string(stage ? stage : ""));
    json_object_object_add(line, "step", json_object_new_int64(step));
    for (int i = 0; i < n; i++) json_object_object_add(line, keys[i], json_number(values[i]));
    const char *text = json_object_to_json_string_ext(line, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    int bad = !text || fputs(text, m->f) < 0 || fputc('\n', m->f) == EOF || fflush(m->f) != 0;
    json_object_put(line);
    if (bad) return jl_fail(JL_ERR_IO, "%s: write failed: %s", m->path, strerror(errno));
    return JL_OK;
}

/* ------------------------------------------------------------------------------------------------ reader */

typedef struct {
    char *stage, *key;
    int64_t n, cap;
    double *x, *y;
} series_buf;

struct jl_metrics_data {
    series_buf *bufs;
    jl_series *views; /* filled once reading is done */
    int n, cap;
};

int jl_metrics_series_count(const jl_metrics_data *d) { return d->n; }

const jl_series *jl_metrics_series_at(const jl_metrics_data *d, int i) { return i >= 0 && i < d->n ? &d->views[i] : NULL; }

const jl_series *jl_metrics_find(const jl_metrics_data *d, const char *stage, const char *key) {
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->views[i].key, key) == 0 && (!stage || strcmp(d->views[i].stage, stage) == 0)) return &d->views[i];
    return NULL;
}

void jl_metrics_data_free(jl_metrics_data *d) {
    if (!d) return;
    for (int i = 0; i < d->n; i++) {
        free(d->bufs[i].stage);
        free(d->bufs[i].key);
        free(d->bufs[i].x);
        free(d->bufs[i].y);
    }
    free(d->bufs);
    free(d->views);
    free(d);
}

/* The series for (stage, key), created when new. `hint` remembers where the last lookup ended: lines usually
 * repeat the same keys in the same order, so the next key is usually the next series. */
static series_buf *series_for(jl_metrics_data *d, const char *stage, const char *key, int *hint) {
    for (int k = 0; k < d->n; k++) {
        int i = (*hint + k) % d->n;
        if (strcmp(d->bufs[i].key, key) == 0 && strcmp(d->bufs[i].stage, stage) == 0) {
            *hint = (i + 1) % d->n;
            return &d->bufs[i];
        }
    }
    if (d->n == d->cap) {
        int cap = d->cap ? d->cap * 2 : 16;
        series_buf *b = realloc(d->bufs, sizeof *b * (size_t)cap);
        if (!b) return NULL;
        d->bufs = b;
        d->cap = cap;
    }
    series_buf *s = &d->bufs[d->n];
    memset(s, 0, sizeof *s);
    s->stage = strdup(stage);
    s->key = strdup(key);
    if (!s->stage || !s->key) {
        free(s->stage);
        free(s->key);
        return NULL;
    }
    d->n++;
    *hint = 0;
    return s;
}

static int series_push(series_buf *s, double x, double y) {
    if (s->n == s->cap) {
        int64_t cap = s->cap ? s->cap * 2 : 64;
        double *nx = realloc(s->x, sizeof(double) * (size_t)cap);
        if (!nx) return 0;
        s->x = nx;
        double *ny = realloc(s->y, sizeof(double) * (size_t)cap);
        if (!ny) return 0;
        s->y = ny;
        s->cap = cap;
    }
    s->x[s->n] = x;
    s->y[s->n] = y;
    s->n++;
    return 1;
}

static int is_number(json_object *v) { return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double); }

/* The line passes `where` ("key=value": its string field key equals value; NULL: every line). */
static int line_matches(json_object *obj, const char *where) {
    if (!where) return 1;
    const char *eq = strchr(where, '=');
    char key[128];
    size_t len = eq ? (size_t)(eq - where) : 0;
    if (!eq || len >= sizeof key) return 0;
    memcpy(key, where, len);
    key[len] = '\0';
    json_object *v;
    return json_object_object_get_ex(obj, key, &v) && json_object_is_type(v, json_type_string) &&
           strcmp(json_object_get_string(v), eq + 1) == 0;
}

/* Adds the points of one parsed line. */
static jl_status add_line(jl_metrics_data *d, json_object *obj, const char *x_key, const char *where, const char *path,
                          long line_no, int *hint) {
    json_object *stage_obj, *x_obj;
    if (!line_matches(obj, where)) return JL_OK;
    const char *stage = "";
    if (json_object_object_get_ex(obj, "stage", &stage_obj)) {
        if (!json_object_is_type(stage_obj, json_type_string))
            return jl_fail(JL_ERR_FORMAT, "%s:%ld: \"stage\" is not a string", path, line_no);
        stage = json_object_get_string(stage_obj);
    }
    if (!json_object_object_get_ex(obj, x_key, &x_obj) || !is_number(x_obj)) return JL_OK;
    double x = json_object_get_double(x_obj);
    json_object_object_foreach(obj, key, val) {
        if (strcmp(key, x_key) == 0 || !is_number(val)) continue;
        series_buf *s = series_for(d, stage, key, hint);
        if (!s || !series_push(s, x, json_object_get_double(val)))
            return jl_fail(JL_ERR_NOMEM, "%s:%ld: out of memory", path, line_no);
    }
    return JL_OK;
}

static jl_status parse_lines(jl_metrics_data *d, char *text, size_t len, const char *x_key, const char *where,
                             const char *path) {
    json_tokener *tok = json_tokener_new();
    if (!tok) return jl_fail(JL_ERR_NOMEM, "%s: out of memory", path);
    jl_status st = JL_OK;
    int hint = 0;
    long line_no = 0;
    for (char *line = text; st == JL_OK && line < text + len; ) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        char *end = nl ? nl : text + len;
        line_no++;
        size_t n = (size_t)(end - line);
        while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t')) n--;
        size_t lead = strspn(line, " \t");
        if (lead < n) {
            json_tokener_reset(tok);
            json_object *obj = json_tokener_parse_ex(tok, line + lead, (int)(n - lead));
            enum json_tokener_error err = json_tokener_get_error(tok);
            if (!obj || err != json_tokener_success || json_tokener_get_parse_end(tok) != n - lead ||
                !json_object_is_type(obj, json_type_object))
                st = jl_fail(JL_ERR_FORMAT, "%s:%ld: not a JSON object%s%s", path, line_no,
                             err != json_tokener_success ? ": " : "",
                             err != json_tokener_success ? json_tokener_error_desc(err) : "");
            else
                st = add_line(d, obj, x_key, where, path, line_no, &hint);
            json_object_put(obj);
        }
        line = end + 1;
    }
    json_tokener_free(tok);
    return st;
}

jl_status jl_metrics_read(const char *path, const char *x_key, jl_metrics_data **out) {
    return jl_metrics_read_where(path, x_key, NULL, out);
}

jl_status jl_metrics_read_where(const char *path, const char *x_key, const char *where, jl_metrics_data **out) {
    *out = NULL;
    if (where && !strchr(where, '='))
        return jl_fail(JL_ERR_ARG, "where '%s': give KEY=VALUE (e.g. lesson=icl)", where);
    char *text;
    size_t len;
    jl_status st = jl_read_file(path, &text, &len);
    if (st != JL_OK) return st;
    if (len > (size_t)INT32_MAX) {
        free(text);
        return jl_fail(JL_ERR_FORMAT, "%s: too large for a metrics file", path);
    }
    jl_metrics_data *d = calloc(1, sizeof *d);
    st = d ? parse_lines(d, text, len, x_key ? x_key : "step", where, path) : jl_fail(JL_ERR_NOMEM, "%s: out of memory", path);
    free(text);
    if (st == JL_OK && !(d->views = calloc((size_t)d->n + 1, sizeof *d->views)))
        st = jl_fail(JL_ERR_NOMEM, "%s: out of memory", path);
    if (st != JL_OK) {
        jl_metrics_data_free(d);
        return st;
    }
    for (int i = 0; i < d->n; i++)
        d->views[i] = (jl_series){d->bufs[i].stage, d->bufs[i].key, d->bufs[i].n, d->bufs[i].x, d->bufs[i].y};
    *out = d;
    return JL_OK;
}
