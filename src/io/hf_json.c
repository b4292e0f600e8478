#include "io/hf_json.h"
#include <limits.h>
#include <string.h>

jl_status hfj_parse(const char *path, const char *text, json_object **out) {
    *out = NULL;
    json_tokener *tok = json_tokener_new();
    if (!tok) return jl_fail(JL_ERR_NOMEM, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, text, (int)strnlen(text, INT_MAX));
    enum json_tokener_error err = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!o || err != json_tokener_success) {
        json_object_put(o);
        return jl_fail(JL_ERR_FORMAT, "%s: invalid JSON at byte %zu (%s)", path, end,
                       err == json_tokener_success || err == json_tokener_continue
                           ? "the text ends before the object is closed: cut short, or a raw NUL byte"
                           : json_tokener_error_desc(err));
    }
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return jl_fail(JL_ERR_FORMAT, "%s: not a JSON object", path);
    }
    *out = o;
    return JL_OK;
}

int hfj_has(json_object *o, const char *key) { return json_object_object_get_ex(o, key, NULL); }

int hfj_is_null(json_object *o, const char *key) {
    json_object *v;
    return !json_object_object_get_ex(o, key, &v) || v == NULL;
}

const char *hfj_str(json_object *o, const char *key, const char *dflt) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !v) return dflt;
    return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

int hfj_bool(json_object *o, const char *key, int dflt) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !v) return dflt;
    return json_object_get_boolean(v) ? 1 : 0;
}

jl_status hfj_int(const char *path, json_object *o, const char *key, int *dst, int dflt) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !v) {
        if (dflt < 0) return jl_fail(JL_ERR_FORMAT, "%s: field '%s': missing", path, key);
        *dst = dflt;
        return JL_OK;
    }
    if (!json_object_is_type(v, json_type_int))
        return jl_fail(JL_ERR_FORMAT, "%s: field '%s': not an integer", path, key);
    int64_t x = json_object_get_int64(v);
    if (x < 0 || x > INT_MAX) return jl_fail(JL_ERR_FORMAT, "%s: field '%s': %lld out of range", path, key, (long long)x);
    *dst = (int)x;
    return JL_OK;
}

jl_status hfj_float(const char *path, json_object *o, const char *key, float *dst, float dflt, int *set) {
    json_object *v;
    if (set) *set = 0;
    if (!json_object_object_get_ex(o, key, &v) || !v) {
        *dst = dflt;
        return JL_OK;
    }
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
        return jl_fail(JL_ERR_FORMAT, "%s: field '%s': not a number", path, key);
    *dst = (float)json_object_get_double(v);
    if (set) *set = 1;
    return JL_OK;
}
