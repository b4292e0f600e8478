/* Preference pairs {"prompt","chosen","rejected"} from JSONL. */
#include "data/jsonl.h"
#include "data/pool.h"
#include <stdlib.h>
#include <string.h>

struct jl_pref_set {
    jl_pool pool;
    jl_pref_pair *pairs;
    size_t n, cap;
};

static jl_status keep_pair(void *ctx, json_object *obj) {
    jl_pref_set *set = ctx;
    const char *prompt, *chosen, *rejected;
    size_t prompt_len, chosen_len, rejected_len;
    jl_status st = jl_json_string_field(obj, "", "prompt", &prompt, &prompt_len);
    if (st == JL_OK && jl_blank(prompt)) st = jl_fail(JL_ERR_FORMAT, "prompt: empty");
    if (st == JL_OK) st = jl_json_string_field(obj, "", "chosen", &chosen, &chosen_len);
    if (st == JL_OK && jl_blank(chosen)) st = jl_fail(JL_ERR_FORMAT, "chosen: empty response");
    if (st == JL_OK) st = jl_json_string_field(obj, "", "rejected", &rejected, &rejected_len);
    if (st == JL_OK && jl_blank(rejected)) st = jl_fail(JL_ERR_FORMAT, "rejected: empty response");
    if (st == JL_OK && !strcmp(chosen, rejected)) st = jl_fail(JL_ERR_FORMAT, "rejected: identical to chosen");
    if (st != JL_OK) return st;
    if (set->n == set->cap) {
        size_t cap = set->cap ? 2 * set->cap : 256;
        jl_pref_pair *p = realloc(set->pairs, sizeof *p * cap);
        if (!p) return jl_fail(JL_ERR_NOMEM, "out of memory");
        set->pairs = p;
        set->cap = cap;
    }
    jl_pref_pair pair = {jl_pool_strndup(&set->pool, prompt, prompt_len),
                         jl_pool_strndup(&set->pool, chosen, chosen_len),
                         jl_pool_strndup(&set->pool, rejected, rejected_len)};
    if (!pair.prompt || !pair.chosen || !pair.rejected) return jl_fail(JL_ERR_NOMEM, "out of memory");
    set->pairs[set->n++] = pair;
    return JL_OK;
}

jl_status jl_prefs_load(const char *path, const jl_jsonl_options *opt, jl_pref_set **out, jl_jsonl_stats *stats) {
    *out = NULL;
    jl_pref_set *set = calloc(1, sizeof *set);
    if (!set) return jl_fail(JL_ERR_NOMEM, "%s: out of memory", path);
    jl_status st = jl_jsonl_read(path, opt, stats, keep_pair, set);
    if (st != JL_OK) {
        jl_prefs_free(set);
        return st;
    }
    *out = set;
    return JL_OK;
}

size_t jl_prefs_count(const jl_pref_set *set) { return set ? set->n : 0; }

jl_pref_pair jl_prefs_get(const jl_pref_set *set, size_t i) {
    return (set && i < set->n) ? set->pairs[i] : (jl_pref_pair){NULL, NULL, NULL};
}

void jl_prefs_free(jl_pref_set *set) {
    if (!set) return;
    jl_pool_free(&set->pool);
    free(set->pairs);
    free(set);
}
