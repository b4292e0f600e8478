/* JSONL line loop (json-c) with FILE:LINE error messages, skip-or-stop, and small field helpers. */
#include "data/jsonl.h"
#include "core/utf8.h"
#include "io/fileio.h"
#include <errno.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static int only_space(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (!isspace((unsigned char)s[i])) return 0;
    return 1;
}

/* Byte offset of the first invalid UTF-8 sequence (malformed, overlong, a UTF-8-encoded surrogate, cut short),
 * or len: json-c's own check lets encoded surrogates through. */
static size_t bad_utf8_at(const char *s, size_t len) {
    for (size_t i = 0; i < len;) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t n = jl_utf8_decode(s + i, len - i, &cp);
        if (cp == JL_UTF8_INVALID) return i;
        i += n;
    }
    return len;
}

/* Parses one line into a JSON object; on failure records "problem" (no location) and returns NULL. */
static json_object *parse_line(json_tokener *tok, const char *line, size_t len, jl_status *st) {
    const char *nul = memchr(line, '\0', len);
    *st = JL_ERR_FORMAT;
    if (nul) {
        jl_fail(JL_ERR_FORMAT, "raw NUL byte at column %zu (not allowed in JSON text)", (size_t)(nul - line) + 1);
        return NULL;
    }
    size_t bad = bad_utf8_at(line, len);
    if (bad < len) {
        jl_fail(JL_ERR_FORMAT, "invalid UTF-8 at column %zu (byte 0x%02X)", bad + 1, (unsigned char)line[bad]);
        return NULL;
    }
    json_tokener_reset(tok);
    json_object *obj = json_tokener_parse_ex(tok, line, (int)len);
    enum json_tokener_error err = json_tokener_get_error(tok);
    *st = JL_ERR_FORMAT;
    if (err == json_tokener_continue) {
        jl_fail(JL_ERR_FORMAT, "truncated JSON (the object is not closed on this line)");
        return NULL;
    }
    if (err != json_tokener_success || !obj) {
        jl_fail(JL_ERR_FORMAT, "not valid JSON at column %zu (%s)", json_tokener_get_parse_end(tok) + 1,
                json_tokener_error_desc(err));
        return NULL;
    }
    size_t end = json_tokener_get_parse_end(tok);
    if (!only_space(line + end, len - end)) {
        json_object_put(obj);
        jl_fail(JL_ERR_FORMAT, "unexpected text after the JSON object at column %zu", end + 1);
        return NULL;
    }
    if (!json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        jl_fail(JL_ERR_FORMAT, "not a JSON object");
        return NULL;
    }
    *st = JL_OK;
    return obj;
}

/* Handles one bad line: stop with its message, or count it and go on. */
static jl_status bad_line(jl_status st, const char *path, size_t lineno, const jl_jsonl_options *opt,
                          jl_jsonl_stats *stats) {
    jl_fail_context(st, "%s:%zu", path, lineno);
    if (st != JL_ERR_FORMAT || !opt->skip_bad) return st;
    if (stats->skipped++ == 0) snprintf(stats->first_error, sizeof stats->first_error, "%s", jl_last_error());
    return JL_OK;
}

static jl_status read_lines(const char *path, char *data, size_t size, const jl_jsonl_options *opt,
                            jl_jsonl_stats *stats, jl_jsonl_record_fn keep, void *ctx) {
    json_tokener *tok = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH);
    if (!tok) return jl_fail(JL_ERR_NOMEM, "%s: out of memory", path);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    jl_status st = JL_OK;
    size_t pos0 = size >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0; /* a UTF-8 byte order mark */
    for (size_t pos = pos0; pos < size && st == JL_OK; ) {
        if (opt->max_records && stats->records >= opt->max_records) break;
        char *nl = memchr(data + pos, '\n', size - pos);
        size_t len = (nl ? (size_t)(nl - data) : size) - pos;
        const char *line = data + pos;
        pos += len + 1;
        stats->lines++;
        if (len && line[len - 1] == '\r') len--;
        if (only_space(line, len)) continue;
        if (len > (size_t)1 << 30) {
            st = bad_line(jl_fail(JL_ERR_FORMAT, "line longer than 1 GiB"), path, stats->lines, opt, stats);
            continue;
        }
        json_object *obj = parse_line(tok, line, len, &st);
        if (obj) {
            st = keep(ctx, obj);
            json_object_put(obj);
        }
        if (st == JL_OK) stats->records++;
        else st = bad_line(st, path, stats->lines, opt, stats);
    }
    json_tokener_free(tok);
    return st;
}

jl_status jl_jsonl_read(const char *path, const jl_jsonl_options *opt, jl_jsonl_stats *stats,
                        jl_jsonl_record_fn keep, void *ctx) {
    static const jl_jsonl_options defaults = {0, 0};
    jl_jsonl_stats local;
    if (!opt) opt = &defaults;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    char *data;
    size_t size;
    jl_status st = jl_read_file(path, &data, &size);
    if (st != JL_OK) return st;
    st = read_lines(path, data, size, opt, stats, keep, ctx);
    free(data);
    if (st == JL_OK && stats->records == 0)
        st = stats->skipped ? jl_fail(JL_ERR_FORMAT, "%s: no valid record (%zu skipped; first: %s)", path,
                                      stats->skipped, stats->first_error)
                            : jl_fail(JL_ERR_FORMAT, "%s: no records", path);
    return st;
}

int jl_blank(const char *s) { return only_space(s, strlen(s)); }

jl_status jl_json_string_field(json_object *obj, const char *where, const char *key, const char **out, size_t *len) {
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) || !v)
        return jl_fail(JL_ERR_FORMAT, "%s%s: missing", where, key);
    if (!json_object_is_type(v, json_type_string))
        return jl_fail(JL_ERR_FORMAT, "%s%s: must be a string", where, key);
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    if (strlen(s) != n) return jl_fail(JL_ERR_FORMAT, "%s%s: contains a NUL character", where, key);
    size_t bad = bad_utf8_at(s, n);
    if (bad < n) /* e.g. an escaped lone surrogate "\ud800" */
        return jl_fail(JL_ERR_FORMAT, "%s%s: invalid UTF-8 at byte %zu (a lone surrogate?)", where, key, bad);
    *out = s;
    if (len) *len = n;
    return JL_OK;
}

jl_status jl_json_write_line(FILE *f, json_object *obj, const char *path) {
    size_t n;
    const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
                                                       &n);
    if (!s) return jl_fail(JL_ERR_NOMEM, "%s: cannot serialise a record", path);
    if (fwrite(s, 1, n, f) != n || fputc('\n', f) == EOF)
        return jl_fail(JL_ERR_IO, "%s: write failed: %s", path, errno ? strerror(errno) : "I/O error");
    return JL_OK;
}
