/* The poem corpus: data/poems.jsonl records, validated against their form. */
#include "core/utf8.h"
#include "data/jsonl.h"
#include "data/pool.h"
#include <stdlib.h>
#include <string.h>

struct jl_poems {
    jl_pool pool;      /* strings and line arrays */
    jl_poem *poems;
    size_t n, cap;
};

/* "lines[i]: ..." unless line i has exactly `chars` Han characters and nothing else. */
static jl_status check_line(const char *line, int i, int chars, jl_poem_form form) {
    size_t len = strlen(line), count = 0;
    for (size_t at = 0; at < len; count++) {
        uint32_t cp;
        at += jl_utf8_decode(line + at, len - at, &cp);
        if (!jl_is_han(cp))
            return jl_fail(JL_ERR_FORMAT, "lines[%d]: character %zu is not a Han character (no punctuation)", i,
                           count + 1);
    }
    if ((int)count != chars)
        return jl_fail(JL_ERR_FORMAT, "lines[%d]: %zu characters, a %s line has %d", i, count,
                       jl_poem_form_id(form), chars);
    return JL_OK;
}

static jl_status check_lines(json_object *lines, jl_poem_form form) {
    if (!lines || !json_object_is_type(lines, json_type_array))
        return jl_fail(JL_ERR_FORMAT, "lines: missing or not an array");
    int n = (int)json_object_array_length(lines), want = jl_poem_form_lines(form);
    if (n != want) return jl_fail(JL_ERR_FORMAT, "lines: %d lines, a %s has %d", n, jl_poem_form_id(form), want);
    for (int i = 0; i < n; i++) {
        json_object *line = json_object_array_get_idx(lines, (size_t)i);
        if (!json_object_is_type(line, json_type_string))
            return jl_fail(JL_ERR_FORMAT, "lines[%d]: must be a string", i);
        jl_status st = check_line(json_object_get_string(line), i, jl_poem_form_chars(form), form);
        if (st != JL_OK) return st;
    }
    return JL_OK;
}

static jl_status grow(jl_poems *set) {
    if (set->n < set->cap) return JL_OK;
    size_t cap = set->cap ? 2 * set->cap : 1024;
    jl_poem *p = realloc(set->poems, sizeof *p * cap);
    if (!p) return jl_fail(JL_ERR_NOMEM, "out of memory");
    set->poems = p;
    set->cap = cap;
    return JL_OK;
}

static jl_status store(jl_poems *set, const char *title, const char *author, jl_poem_form form,
                       json_object *lines, int heldout) {
    jl_status st = grow(set);
    if (st != JL_OK) return st;
    int n = (int)json_object_array_length(lines);
    const char **copy = jl_pool_alloc(&set->pool, sizeof *copy * (size_t)n);
    jl_poem p = {jl_pool_strndup(&set->pool, title, strlen(title)), jl_pool_strndup(&set->pool, author, strlen(author)),
                 form, copy, n, heldout};
    int ok = copy && p.title && p.author;
    for (int i = 0; ok && i < n; i++) {
        const char *line = json_object_get_string(json_object_array_get_idx(lines, (size_t)i));
        ok = (copy[i] = jl_pool_strndup(&set->pool, line, strlen(line))) != NULL;
    }
    if (!ok) return jl_fail(JL_ERR_NOMEM, "out of memory");
    set->poems[set->n++] = p;
    return JL_OK;
}

static jl_status keep_poem(void *ctx, json_object *obj) {
    const char *title, *author, *form_id, *split;
    jl_status st = jl_json_string_field(obj, "", "title", &title, NULL);
    if (st == JL_OK && jl_blank(title)) st = jl_fail(JL_ERR_FORMAT, "title: empty");
    if (st == JL_OK) st = jl_json_string_field(obj, "", "author", &author, NULL);
    if (st == JL_OK && jl_blank(author)) st = jl_fail(JL_ERR_FORMAT, "author: empty");
    if (st == JL_OK) st = jl_json_string_field(obj, "", "form", &form_id, NULL);
    jl_poem_form form = st == JL_OK ? jl_poem_form_parse(form_id) : JL_FORM_NONE;
    if (st == JL_OK && form == JL_FORM_NONE)
        st = jl_fail(JL_ERR_FORMAT, "form: unknown form '%.40s' (wujue, qijue, wulv or qilv)", form_id);
    json_object *lines = NULL;
    if (st == JL_OK) {
        json_object_object_get_ex(obj, "lines", &lines);
        st = check_lines(lines, form);
    }
    if (st == JL_OK) st = jl_json_string_field(obj, "", "split", &split, NULL);
    if (st == JL_OK && strcmp(split, "train") && strcmp(split, "heldout"))
        st = jl_fail(JL_ERR_FORMAT, "split: '%.40s' is neither \"train\" nor \"heldout\"", split);
    if (st != JL_OK) return st;
    return store(ctx, title, author, form, lines, !strcmp(split, "heldout"));
}

jl_status jl_poems_load(const char *path, const jl_jsonl_options *opt, jl_poems **out, jl_jsonl_stats *stats) {
    *out = NULL;
    jl_poems *set = calloc(1, sizeof *set);
    if (!set) return jl_fail(JL_ERR_NOMEM, "%s: out of memory", path);
    jl_status st = jl_jsonl_read(path, opt, stats, keep_poem, set);
    if (st != JL_OK) {
        jl_poems_free(set);
        return st;
    }
    *out = set;
    return JL_OK;
}

size_t jl_poems_count(const jl_poems *poems) { return poems ? poems->n : 0; }

const jl_poem *jl_poems_get(const jl_poems *poems, size_t i) {
    return (poems && i < poems->n) ? &poems->poems[i] : NULL;
}

void jl_poems_free(jl_poems *poems) {
    if (!poems) return;
    jl_pool_free(&poems->pool);
    free(poems->poems);
    free(poems);
}
