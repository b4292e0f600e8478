/* safetensors writer and validating reader (see include/jielong/safetensors.h for the format). */
#include "jielong/safetensors.h"
#include "io/fileio.h"
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this code assumes a little-endian host"
#endif

/* The reference implementation's limit; real headers are a few MB at most. */
#define ST_MAX_HEADER 100000000ull
#define META_KEY "__metadata__"

static const struct {
    const char *name;
    size_t size;
} dtype_info[] = {
    [JL_DT_F32] = {"F32", 4}, [JL_DT_F16] = {"F16", 2}, [JL_DT_BF16] = {"BF16", 2}, [JL_DT_F64] = {"F64", 8},
    [JL_DT_I64] = {"I64", 8}, [JL_DT_I32] = {"I32", 4}, [JL_DT_I16] = {"I16", 2},   [JL_DT_I8] = {"I8", 1},
    [JL_DT_U8] = {"U8", 1},   [JL_DT_U16] = {"U16", 2}, [JL_DT_U32] = {"U32", 4},   [JL_DT_U64] = {"U64", 8},
    [JL_DT_BOOL] = {"BOOL", 1},
};
#define N_DTYPES ((int)(sizeof dtype_info / sizeof dtype_info[0]))

size_t jl_dtype_size(jl_dtype dt) { return (int)dt >= 0 && (int)dt < N_DTYPES ? dtype_info[dt].size : 0; }

const char *jl_dtype_name(jl_dtype dt) { return (int)dt >= 0 && (int)dt < N_DTYPES ? dtype_info[dt].name : "?"; }

static int dtype_from_name(const char *s, jl_dtype *dt) {
    for (int i = 0; i < N_DTYPES; i++)
        if (strcmp(s, dtype_info[i].name) == 0) {
            *dt = (jl_dtype)i;
            return 1;
        }
    return 0;
}

/* Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF, no NUL); returns the offset of the
 * first bad byte, or `len` when the whole buffer is valid. */
static size_t utf8_valid_prefix(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c >= 0x01 && c < 0x80) { i++; continue; }
        int extra = c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2 : c >= 0xF0 && c <= 0xF4 ? 3 : -1;
        if (extra < 0 || i + (size_t)extra >= len) return i;
        unsigned lo = 0x80, hi = 0xBF, c1 = s[i + 1];
        if (c == 0xE0) lo = 0xA0;       /* overlong 3-byte */
        if (c == 0xED) hi = 0x9F;       /* surrogates */
        if (c == 0xF0) lo = 0x90;       /* overlong 4-byte */
        if (c == 0xF4) hi = 0x8F;       /* above U+10FFFF */
        if (c1 < lo || c1 > hi) return i;
        for (int k = 2; k <= extra; k++)
            if ((s[i + (size_t)k] & 0xC0) != 0x80) return i;
        i += (size_t)extra + 1;
    }
    return len;
}

static int utf8_ok(const char *s) {
    size_t n = strlen(s);
    return utf8_valid_prefix((const unsigned char *)s, n) == n;
}

/* ------------------------------------------------------------------------------------------------ writer */

typedef struct {
    char *name;
    jl_dtype dtype;
    int ndim;
    int64_t shape[JL_ST_MAX_DIMS];
    const void *data;
    size_t nbytes;
    uint64_t begin; /* byte offset in the buffer, set by jl_st_write */
} st_entry;

typedef struct {
    char *key, *value;
} st_meta;

struct jl_st_writer {
    st_entry *tensors;
    int n_tensors, cap_tensors;
    st_meta *meta;
    int n_meta, cap_meta;
};

jl_st_writer *jl_st_writer_new(void) { return calloc(1, sizeof(jl_st_writer)); }

void jl_st_writer_free(jl_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    for (int i = 0; i < w->n_meta; i++) {
        free(w->meta[i].key);
        free(w->meta[i].value);
    }
    free(w->tensors);
    free(w->meta);
    free(w);
}

/* Grows an array of `elem` bytes so that one more fits. */
static int grow(void **arr, int n, int *cap, size_t elem) {
    if (n < *cap) return 1;
    int new_cap = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, (size_t)new_cap * elem);
    if (!p) return 0;
    *arr = p;
    *cap = new_cap;
    return 1;
}

/* nbytes = product(shape) * element size, or 0 on overflow with *ok cleared. */
static size_t tensor_nbytes(jl_dtype dt, int ndim, const int64_t *shape, int *ok) {
    uint64_t n = jl_dtype_size(dt);
    *ok = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || __builtin_mul_overflow(n, (uint64_t)shape[d], &n)) {
            *ok = 0;
            return 0;
        }
    }
    if (n > (uint64_t)SIZE_MAX) *ok = 0;
    return (size_t)n;
}

jl_status jl_st_add(jl_st_writer *w, const char *name, jl_dtype dt, int ndim, const int64_t *shape,
                    const void *data) {
    if (!name || !*name) return jl_fail(JL_ERR_ARG, "safetensors: empty tensor name");
    if (strcmp(name, META_KEY) == 0) return jl_fail(JL_ERR_ARG, "safetensors: '%s' is a reserved name", name);
    if (!utf8_ok(name)) return jl_fail(JL_ERR_ARG, "safetensors: tensor name is not valid UTF-8");
    if (jl_dtype_size(dt) == 0) return jl_fail(JL_ERR_ARG, "safetensors: tensor '%s': bad dtype %d", name, (int)dt);
    if (ndim < 0 || ndim > JL_ST_MAX_DIMS)
        return jl_fail(JL_ERR_ARG, "safetensors: tensor '%s': ndim %d not in 0..%d", name, ndim, JL_ST_MAX_DIMS);
    if (ndim > 0 && !shape) return jl_fail(JL_ERR_ARG, "safetensors: tensor '%s': no shape", name);
    int ok;
    size_t nbytes = tensor_nbytes(dt, ndim, shape, &ok);
    if (!ok) return jl_fail(JL_ERR_ARG, "safetensors: tensor '%s': negative or overflowing shape", name);
    if (nbytes && !data) return jl_fail(JL_ERR_ARG, "safetensors: tensor '%s': no data", name);
    for (int i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return jl_fail(JL_ERR_ARG, "safetensors: duplicate tensor name '%s'", name);
    if (!grow((void **)&w->tensors, w->n_tensors, &w->cap_tensors, sizeof(st_entry)))
        return jl_fail(JL_ERR_NOMEM, "safetensors: out of memory");
    st_entry *e = &w->tensors[w->n_tensors];
    memset(e, 0, sizeof *e);
    if (!(e->name = strdup(name))) return jl_fail(JL_ERR_NOMEM, "safetensors: out of memory");
    e->dtype = dt;
    e->ndim = ndim;
    for (int d = 0; d < ndim; d++) e->shape[d] = shape[d];
    e->data = data;
    e->nbytes = nbytes;
    w->n_tensors++;
    return JL_OK;
}

jl_status jl_st_add_meta(jl_st_writer *w, const char *key, const char *value) {
    if (!key || !value) return jl_fail(JL_ERR_ARG, "safetensors: metadata key and value must not be NULL");
    if (!utf8_ok(key) || !utf8_ok(value))
        return jl_fail(JL_ERR_ARG, "safetensors: metadata '%s' is not valid UTF-8", key);
    for (int i = 0; i < w->n_meta; i++)
        if (strcmp(w->meta[i].key, key) == 0)
            return jl_fail(JL_ERR_ARG, "safetensors: duplicate metadata key '%s'", key);
    if (!grow((void **)&w->meta, w->n_meta, &w->cap_meta, sizeof(st_meta)))
        return jl_fail(JL_ERR_NOMEM, "safetensors: out of memory");
    st_meta *m = &w->meta[w->n_meta];
    m->key = strdup(key);
    m->value = strdup(value);
    if (!m->key || !m->value) {
        free(m->key);
        free(m->value);
        return jl_fail(JL_ERR_NOMEM, "safetensors: out of memory");
    }
    w->n_meta++;
    return JL_OK;
}

/* Buffer order: by element size, largest first, stable — every tensor then starts aligned to its element
 * size (the header is padded to 8 and each size divides the ones before it). Fills `order` and offsets. */
static void plan_layout(jl_st_writer *w, int *order) {
    int k = 0;
    for (size_t size = 8; size >= 1; size /= 2)
        for (int i = 0; i < w->n_tensors; i++)
            if (jl_dtype_size(w->tensors[i].dtype) == size) order[k++] = i;
    uint64_t offset = 0;
    for (int j = 0; j < k; j++) {
        w->tensors[order[j]].begin = offset;
        offset += w->tensors[order[j]].nbytes;
    }
}

static json_object *header_json(const jl_st_writer *w) {
    json_object *root = json_object_new_object();
    if (!root) return NULL;
    int ok = 1;
    if (w->n_meta) {
        json_object *meta = json_object_new_object();
        ok = meta && json_object_object_add(root, META_KEY, meta) == 0;
        for (int i = 0; ok && i < w->n_meta; i++)
            ok = json_object_object_add(meta, w->meta[i].key, json_object_new_string(w->meta[i].value)) == 0;
    }
    for (int i = 0; ok && i < w->n_tensors; i++) {
        const st_entry *e = &w->tensors[i];
        json_object *t = json_object_new_object(), *shape = json_object_new_array(),
                    *offs = json_object_new_array();
        ok = t && shape && offs;
        for (int d = 0; ok && d < e->ndim; d++) ok = json_object_array_add(shape, json_object_new_int64(e->shape[d])) == 0;
        ok = ok && json_object_array_add(offs, json_object_new_int64((int64_t)e->begin)) == 0 &&
             json_object_array_add(offs, json_object_new_int64((int64_t)(e->begin + e->nbytes))) == 0;
        ok = ok && json_object_object_add(t, "dtype", json_object_new_string(jl_dtype_name(e->dtype))) == 0 &&
             json_object_object_add(t, "shape", shape) == 0;
        if (ok) shape = NULL; /* now owned by t */
        ok = ok && json_object_object_add(t, "data_offsets", offs) == 0;
        if (ok) offs = NULL;
        ok = ok && json_object_object_add(root, e->name, t) == 0;
        if (!ok) {
            json_object_put(t);
            json_object_put(shape);
            json_object_put(offs);
        }
    }
    if (!ok) {
        json_object_put(root);
        return NULL;
    }
    return root;
}

static jl_status write_all(jl_atomic_file *af, const void *data, size_t len, const char *path) {
    if (len && fwrite(data, 1, len, af->f) != len) return jl_fail(JL_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return JL_OK;
}

jl_status jl_st_write(jl_st_writer *w, const char *path) {
    int *order = malloc(sizeof(int) * (size_t)(w->n_tensors + 1));
    if (!order) return jl_fail(JL_ERR_NOMEM, "%s: out of memory", path);
    plan_layout(w, order);
    json_object *root = header_json(w);
    if (!root) {
        free(order);
        return jl_fail(JL_ERR_NOMEM, "%s: out of memory building the header", path);
    }
    size_t json_len;
    const char *json = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
                                                         &json_len);
    uint64_t header_len = (json_len + 7) / 8 * 8; /* spaces pad the header to a multiple of 8 */
    unsigned char len_bytes[8];
    for (int i = 0; i < 8; i++) len_bytes[i] = (unsigned char)(header_len >> (8 * i));
    static const char spaces[8] = "        ";
    jl_atomic_file af;
    jl_status st = json ? jl_atomic_open(&af, path) : jl_fail(JL_ERR_NOMEM, "%s: out of memory", path);
    if (st == JL_OK) {
        st = write_all(&af, len_bytes, 8, path);
        if (st == JL_OK) st = write_all(&af, json, json_len, path);
        if (st == JL_OK) st = write_all(&af, spaces, header_len - json_len, path);
        for (int j = 0; st == JL_OK && j < w->n_tensors; j++)
            st = write_all(&af, w->tensors[order[j]].data, w->tensors[order[j]].nbytes, path);
        if (st == JL_OK) st = jl_atomic_commit(&af);
        else jl_atomic_abort(&af);
    }
    json_object_put(root);
    free(order);
    return st;
}

/* ------------------------------------------------------------------------------------------------ reader */

typedef struct {
    const char *key, *value;
} st_meta_ref;

struct jl_st_file {
    char *path;
    void *map;
    size_t map_size;
    json_object *header;      /* owns the name and metadata strings */
    jl_st_tensor *tensors;    /* header order */
    const jl_st_tensor **by_name;
    int n_tensors;
    st_meta_ref *meta;        /* sorted by key */
    int n_meta;
};

int jl_st_count(const jl_st_file *f) { return f->n_tensors; }

const jl_st_tensor *jl_st_at(const jl_st_file *f, int i) { return i >= 0 && i < f->n_tensors ? &f->tensors[i] : NULL; }

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp((*(const jl_st_tensor *const *)a)->name, (*(const jl_st_tensor *const *)b)->name);
}

const jl_st_tensor *jl_st_find(const jl_st_file *f, const char *name) {
    if (f->n_tensors == 0) return NULL;
    jl_st_tensor key = {.name = name};
    const jl_st_tensor *kp = &key;
    const jl_st_tensor **hit = bsearch(&kp, f->by_name, (size_t)f->n_tensors, sizeof *f->by_name, cmp_tensor_name);
    return hit ? *hit : NULL;
}

static int cmp_meta_key(const void *a, const void *b) {
    return strcmp(((const st_meta_ref *)a)->key, ((const st_meta_ref *)b)->key);
}

const char *jl_st_meta(const jl_st_file *f, const char *key) {
    if (f->n_meta == 0) return NULL;
    st_meta_ref probe = {.key = key};
    const st_meta_ref *hit = bsearch(&probe, f->meta, (size_t)f->n_meta, sizeof *f->meta, cmp_meta_key);
    return hit ? hit->value : NULL;
}

void jl_st_close(jl_st_file *f) {
    if (!f) return;
    if (f->map) munmap(f->map, f->map_size);
    json_object_put(f->header);
    free(f->tensors);
    free(f->by_name);
    free(f->meta);
    free(f->path);
    free(f);
}

typedef struct {
    const char *s;
    size_t n;
} raw_key;

static int cmp_raw_key(const void *a, const void *b) {
    const raw_key *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->s, y->s, n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* json-c keeps the last of two equal keys: a header naming one tensor twice would load silently. Scans the
 * (already valid) JSON text for the top-level keys and refuses a repeated one, naming it. */
static jl_status check_unique_keys(const char *path, const char *b, size_t len) {
    size_t cap = 64, n = 0;
    raw_key *keys = malloc(cap * sizeof *keys);
    if (!keys) return jl_fail(JL_ERR_NOMEM, "%s: out of memory", path);
    int depth = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = b[i];
        if (ch == '{' || ch == '[') depth++;
        else if (ch == '}' || ch == ']') depth--;
        else if (ch == '"') {
            size_t start = ++i;
            while (i < len && b[i] != '"') i += b[i] == '\\' ? 2 : 1;
            size_t j = i + 1;
            while (j < len && (b[j] == ' ' || b[j] == '\n' || b[j] == '\t' || b[j] == '\r')) j++;
            if (depth != 1 || j >= len || b[j] != ':') continue;
            if (n == cap) {
                raw_key *k = realloc(keys, 2 * cap * sizeof *keys);
                if (!k) {
                    free(keys);
                    return jl_fail(JL_ERR_NOMEM, "%s: out of memory", path);
                }
                keys = k;
                cap *= 2;
            }
            keys[n++] = (raw_key){b + start, (i < len ? i : len) - start};
        }
    }
    qsort(keys, n, sizeof *keys, cmp_raw_key);
    jl_status st = JL_OK;
    for (size_t i = 1; i < n && st == JL_OK; i++)
        if (cmp_raw_key(&keys[i - 1], &keys[i]) == 0)
            st = jl_fail(JL_ERR_FORMAT, "%s: header names '%.*s' twice", path, (int)(keys[i].n > 200 ? 200 : keys[i].n),
                         keys[i].s);
    free(keys);
    return st;
}

/* Parses the header bytes (after the length) into a JSON object. */
static jl_status parse_header(jl_st_file *f, const char *bytes, size_t len) {
    size_t bad = utf8_valid_prefix((const unsigned char *)bytes, len);
    if (bad < len) return jl_fail(JL_ERR_FORMAT, "%s: header is not UTF-8 text (byte %zu)", f->path, bad + 8);
    while (len > 0 && (bytes[len - 1] == ' ' || bytes[len - 1] == '\n' || bytes[len - 1] == '\t' || bytes[len - 1] == '\r'))
        len--;
    if (len == 0 || bytes[0] != '{') return jl_fail(JL_ERR_FORMAT, "%s: header is not a JSON object", f->path);
    json_tokener *tok = json_tokener_new_ex(64);
    if (!tok) return jl_fail(JL_ERR_NOMEM, "%s: out of memory", f->path);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    if (len > (size_t)INT32_MAX) len = (size_t)INT32_MAX; /* cannot happen: the header is at most 100 MB */
    f->header = json_tokener_parse_ex(tok, bytes, (int)len);
    enum json_tokener_error err = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!f->header || err != json_tokener_success || end != len)
        return jl_fail(JL_ERR_FORMAT, "%s: header is not valid JSON: %s", f->path,
                       err == json_tokener_continue ? "it ends before the object is closed (cut short?)" :
                       err != json_tokener_success ? json_tokener_error_desc(err) : "trailing characters");
    if (!json_object_is_type(f->header, json_type_object))
        return jl_fail(JL_ERR_FORMAT, "%s: header is not a JSON object", f->path);
    return check_unique_keys(f->path, bytes, len);
}

static jl_status read_metadata(jl_st_file *f, json_object *meta) {
    if (!json_object_is_type(meta, json_type_object))
        return jl_fail(JL_ERR_FORMAT, "%s: %s is not an object", f->path, META_KEY);
    int n = json_object_object_length(meta);
    f->meta = calloc((size_t)n + 1, sizeof *f->meta);
    if (!f->meta) return jl_fail(JL_ERR_NOMEM, "%s: out of memory", f->path);
    json_object_object_foreach(meta, key, val) {
        if (!json_object_is_type(val, json_type_string))
            return jl_fail(JL_ERR_FORMAT, "%s: %s['%s'] is not a string", f->path, META_KEY, key);
        f->meta[f->n_meta].key = key;
        f->meta[f->n_meta].value = json_object_get_string(val);
        f->n_meta++;
    }
    qsort(f->meta, (size_t)f->n_meta, sizeof *f->meta, cmp_meta_key);
    return JL_OK;
}

/* A JSON number that is a non-negative integer (what shapes and offsets must be). */
static int json_uint(json_object *v, uint64_t *out) {
    if (!json_object_is_type(v, json_type_int)) return 0;
    errno = 0;
    int64_t x = json_object_get_int64(v);
    if (x < 0 || errno == ERANGE || x == INT64_MAX) return 0; /* INT64_MAX: json-c's clamp of larger values */
    *out = (uint64_t)x;
    return 1;
}

static jl_status read_tensor_entry(jl_st_file *f, const char *name, json_object *obj, uint64_t buf_size,
                                   jl_st_tensor *t, uint64_t *begin, uint64_t *end) {
    json_object *dtype, *shape, *offs;
    if (!json_object_is_type(obj, json_type_object))
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s': entry is not an object", f->path, name);
    if (!json_object_object_get_ex(obj, "dtype", &dtype))
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s': missing dtype", f->path, name);
    if (!json_object_object_get_ex(obj, "shape", &shape))
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s': missing shape", f->path, name);
    if (!json_object_object_get_ex(obj, "data_offsets", &offs))
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s': missing data_offsets", f->path, name);
    t->name = name;
    if (!json_object_is_type(dtype, json_type_string) || !dtype_from_name(json_object_get_string(dtype), &t->dtype))
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s': unknown dtype %s", f->path, name,
                       json_object_to_json_string_ext(dtype, JSON_C_TO_STRING_PLAIN));
    if (!json_object_is_type(shape, json_type_array) || json_object_array_length(shape) > JL_ST_MAX_DIMS)
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s': shape is not an array of at most %d sizes", f->path, name,
                       JL_ST_MAX_DIMS);
    t->ndim = (int)json_object_array_length(shape);
    for (int d = 0; d < t->ndim; d++) {
        uint64_t v;
        if (!json_uint(json_object_array_get_idx(shape, (size_t)d), &v))
            return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer", f->path, name, d);
        t->shape[d] = (int64_t)v;
    }
    int ok;
    t->nbytes = tensor_nbytes(t->dtype, t->ndim, t->shape, &ok);
    if (!ok) return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s': shape overflows", f->path, name);
    if (!json_object_is_type(offs, json_type_array) || json_object_array_length(offs) != 2 ||
        !json_uint(json_object_array_get_idx(offs, 0), begin) || !json_uint(json_object_array_get_idx(offs, 1), end))
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s': data_offsets is not [begin, end]", f->path, name);
    if (*end < *begin)
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s': data_offsets end %llu < begin %llu", f->path, name,
                       (unsigned long long)*end, (unsigned long long)*begin);
    if (*end > buf_size)
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] beyond the %llu-byte data (truncated?)",
                       f->path, name, (unsigned long long)*begin, (unsigned long long)*end,
                       (unsigned long long)buf_size);
    if (*end - *begin != t->nbytes)
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s': data_offsets span %llu bytes but shape x %s needs %zu", f->path,
                       name, (unsigned long long)(*end - *begin), jl_dtype_name(t->dtype), t->nbytes);
    return JL_OK;
}

typedef struct {
    uint64_t begin, end;
    int index;
} st_span;

static int cmp_span(const void *a, const void *b) {
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* The tensors must tile the data buffer exactly: sorted by offset, each begins where the previous ended. */
static jl_status check_tiling(jl_st_file *f, st_span *spans, uint64_t buf_size) {
    qsort(spans, (size_t)f->n_tensors, sizeof *spans, cmp_span);
    uint64_t covered = 0;
    for (int i = 0; i < f->n_tensors; i++) {
        const char *name = f->tensors[spans[i].index].name;
        if (spans[i].begin < covered)
            return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s' overlaps the previous tensor (offset %llu < %llu)", f->path,
                           name, (unsigned long long)spans[i].begin, (unsigned long long)covered);
        if (spans[i].begin > covered)
            return jl_fail(JL_ERR_FORMAT, "%s: hole in the data before tensor '%s' (bytes %llu..%llu unused)", f->path,
                           name, (unsigned long long)covered, (unsigned long long)spans[i].begin);
        covered = spans[i].end;
    }
    if (covered != buf_size)
        return jl_fail(JL_ERR_FORMAT, "%s: tensors cover %llu bytes but the data section is %llu bytes", f->path,
                       (unsigned long long)covered, (unsigned long long)buf_size);
    return JL_OK;
}

static jl_status read_entries(jl_st_file *f, const unsigned char *buf, uint64_t buf_size) {
    int n = json_object_object_length(f->header);
    f->tensors = calloc((size_t)n + 1, sizeof *f->tensors);
    f->by_name = calloc((size_t)n + 1, sizeof *f->by_name);
    st_span *spans = calloc((size_t)n + 1, sizeof *spans);
    jl_status st = f->tensors && f->by_name && spans ? JL_OK : jl_fail(JL_ERR_NOMEM, "%s: out of memory", f->path);
    json_object_object_foreach(f->header, key, val) {
        if (st != JL_OK) break;
        if (strcmp(key, META_KEY) == 0) {
            st = read_metadata(f, val);
            continue;
        }
        int i = f->n_tensors;
        st = read_tensor_entry(f, key, val, buf_size, &f->tensors[i], &spans[i].begin, &spans[i].end);
        if (st != JL_OK) break;
        f->tensors[i].data = buf + spans[i].begin;
        spans[i].index = i;
        f->by_name[i] = &f->tensors[i];
        f->n_tensors++;
    }
    if (st == JL_OK) st = check_tiling(f, spans, buf_size);
    free(spans);
    if (st == JL_OK) qsort(f->by_name, (size_t)f->n_tensors, sizeof *f->by_name, cmp_tensor_name);
    return st;
}

static jl_status map_file(jl_st_file *f) {
    int fd;
    size_t size;
    jl_status st = jl_open_regular(f->path, &fd, &size);
    if (st != JL_OK) return st;
    if (size < 8)
        st = jl_fail(JL_ERR_FORMAT, "%s: file is %zu bytes, too short for a safetensors header", f->path, size);
    if (st == JL_OK) {
        f->map_size = size;
        f->map = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (f->map == MAP_FAILED) {
            f->map = NULL;
            st = jl_fail(JL_ERR_IO, "%s: cannot map: %s", f->path, strerror(errno));
        }
    }
    close(fd);
    return st;
}

/* A file of another known kind (by its magic) is named as such, with what reads it, instead of being
 * reported as a bad safetensors header. */
static jl_status sniff_other_format(const char *path, const unsigned char *b, size_t n) {
    const int32_t llmc_magic = 20240326;
    int32_t m32 = 0;
    if (n >= 4) memcpy(&m32, b, 4);
    if (n >= 4 && memcmp(b, "GGUF", 4) == 0)
        return jl_fail(JL_ERR_FORMAT, "%s: is a GGUF file, not a safetensors checkpoint: GGUF models load in generate, "
                                      "chat and eval; quantize, export and training need the .safetensors checkpoint",
                       path);
    if (n >= 4 && m32 == llmc_magic)
        return jl_fail(JL_ERR_FORMAT, "%s: is an llm.c model file, not a safetensors checkpoint: convert it with "
                                      "'jielong import --from FILE --out MODEL.safetensors'", path);
    if (n >= 2 && b[0] == '{')
        return jl_fail(JL_ERR_FORMAT, "%s: is a JSON text, not a safetensors checkpoint (which starts with an 8-byte "
                                      "header length)", path);
    return JL_OK;
}

jl_status jl_st_open(const char *path, jl_st_file **out) {
    *out = NULL;
    jl_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return jl_fail(JL_ERR_NOMEM, "%s: out of memory", path);
    }
    jl_status st = map_file(f);
    if (st == JL_OK) st = sniff_other_format(path, f->map, f->map_size);
    if (st == JL_OK) {
        const unsigned char *bytes = f->map;
        uint64_t header_len = 0;
        for (int i = 7; i >= 0; i--) header_len = header_len << 8 | bytes[i];
        uint64_t rest = (uint64_t)f->map_size - 8;
        if (header_len > ST_MAX_HEADER || header_len > rest)
            st = jl_fail(JL_ERR_FORMAT, "%s: header length %llu exceeds the file (%llu bytes after the length) or %llu",
                         path, (unsigned long long)header_len, (unsigned long long)rest,
                         (unsigned long long)ST_MAX_HEADER);
        if (st == JL_OK) st = parse_header(f, (const char *)bytes + 8, (size_t)header_len);
        if (st == JL_OK) st = read_entries(f, bytes + 8 + header_len, rest - header_len);
    }
    if (st != JL_OK) {
        jl_st_close(f);
        return st;
    }
    *out = f;
    return JL_OK;
}
