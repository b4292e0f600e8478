/* RL prompts {"prompt", ...task fields} from JSONL; every field of a record stays readable. */
#include "data/jsonl.h"
#include "jielong/rules.h"
#include <stdlib.h>
#include <string.h>

struct jl_rl_set {
    json_object **records; /* one reference held per record */
    size_t n, cap;
};

static jl_status keep_prompt(void *ctx, json_object *obj) {
    jl_rl_set *set = ctx;
    const char *prompt;
    jl_status st = jl_json_string_field(obj, "", "prompt", &prompt, NULL);
    if (st == JL_OK && jl_blank(prompt)) st = jl_fail(JL_ERR_FORMAT, "prompt: empty");
    /* a "form" that names no poem form would be scored as no form at all: refused where it is read */
    const char *form;
    if (st == JL_OK && json_object_object_get_ex(obj, "form", NULL) &&
        (st = jl_json_string_field(obj, "", "form", &form, NULL)) == JL_OK && jl_poem_form_parse(form) == JL_FORM_NONE)
        st = jl_fail(JL_ERR_FORMAT, "form: '%.64s' is not a poem form (wujue, qijue, wulv, qilv or 五言绝句 ...)", form);
    if (st != JL_OK) return st;
    if (set->n == set->cap) {
        size_t cap = set->cap ? 2 * set->cap : 256;
        json_object **p = realloc(set->records, sizeof *p * cap);
        if (!p) return jl_fail(JL_ERR_NOMEM, "out of memory");
        set->records = p;
        set->cap = cap;
    }
    set->records[set->n++] = json_object_get(obj);
    return JL_OK;
}

jl_status jl_rl_load(const char *path, const jl_jsonl_options *opt, jl_rl_set **out, jl_jsonl_stats *stats) {
    *out = NULL;
    jl_rl_set *set = calloc(1, sizeof *set);
    if (!set) return jl_fail(JL_ERR_NOMEM, "%s: out of memory", path);
    jl_status st = jl_jsonl_read(path, opt, stats, keep_prompt, set);
    if (st != JL_OK) {
        jl_rl_free(set);
        return st;
    }
    *out = set;
    return JL_OK;
}

size_t jl_rl_count(const jl_rl_set *set) { return set ? set->n : 0; }

static json_object *field(const jl_rl_set *set, size_t i, const char *key) {
    json_object *v = NULL;
    if (!set || i >= set->n || !key) return NULL;
    return json_object_object_get_ex(set->records[i], key, &v) ? v : NULL;
}

const char *jl_rl_field(const jl_rl_set *set, size_t i, const char *key) {
    json_object *v = field(set, i, key);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

const char *jl_rl_prompt(const jl_rl_set *set, size_t i) { return jl_rl_field(set, i, "prompt"); }

int jl_rl_field_int(const jl_rl_set *set, size_t i, const char *key, int64_t *value) {
    json_object *v = field(set, i, key);
    if (!v || !json_object_is_type(v, json_type_int)) return 0;
    *value = json_object_get_int64(v);
    return 1;
}

const char *jl_rl_json(const jl_rl_set *set, size_t i) {
    if (!set || i >= set->n) return NULL;
    return json_object_to_json_string_ext(set->records[i], JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

void jl_rl_free(jl_rl_set *set) {
    if (!set) return;
    for (size_t i = 0; i < set->n; i++) json_object_put(set->records[i]);
    free(set->records);
    free(set);
}
