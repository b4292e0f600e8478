/* GGUF reader: maps the file and validates every field against its size before handing anything out. */
#include "core/half.h"
#include "infer/quant.h"
#include "io/fileio.h"
#include "jielong/gguf.h"
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DIMS 4

typedef struct {
    char *key;
    jl_gguf_vtype type;
    size_t value;          /* file offset of the value (for arrays: of the first element) */
    jl_gguf_vtype elem;    /* arrays */
    uint64_t n;            /* arrays */
    size_t *str_offsets;   /* arrays of strings: offset of each string's length field */
} kv_entry;

struct jl_gguf {
    const unsigned char *map;
    size_t size;
    uint32_t version;
    kv_entry *kv;
    int n_kv;
    jl_gguf_tensor *tensors;
    int n_tensors;
};

typedef struct {
    const unsigned char *p;
    size_t size, pos;
    const char *path;
} cursor;

static jl_status need(cursor *c, size_t n, const char *what) {
    if (n > c->size - c->pos)
        return jl_fail(JL_ERR_FORMAT, "%s: truncated at byte %zu (reading %s)", c->path, c->pos, what);
    return JL_OK;
}

static jl_status rd(cursor *c, void *dst, size_t n, const char *what) {
    jl_status st = need(c, n, what);
    if (st == JL_OK) {
        memcpy(dst, c->p + c->pos, n);
        c->pos += n;
    }
    return st;
}

static jl_status rd_str(cursor *c, size_t *off, uint64_t *len, const char *what) {
    jl_status st = rd(c, len, 8, what);
    if (st != JL_OK) return st;
    if (*len > c->size - c->pos) return jl_fail(JL_ERR_FORMAT, "%s: %s: string length %llu past the end of the file",
                                                c->path, what, (unsigned long long)*len);
    *off = c->pos;
    c->pos += *len;
    return JL_OK;
}

static size_t scalar_size(jl_gguf_vtype t) {
    static const size_t sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return (int)t >= 0 && t <= JL_GGUF_F64 ? sizes[t] : 0;
}

static jl_status read_kv(cursor *c, kv_entry *e) {
    size_t key_off = 0;
    uint64_t key_len;
    uint32_t type;
    jl_status st = rd_str(c, &key_off, &key_len, "key");
    if (st == JL_OK && !(e->key = strndup((const char *)c->p + key_off, key_len))) st = jl_fail(JL_ERR_NOMEM, "out of memory");
    if (st == JL_OK) st = rd(c, &type, 4, "value type");
    if (st != JL_OK) return st;
    if (type > JL_GGUF_F64) return jl_fail(JL_ERR_FORMAT, "%s: key '%s': unknown value type %u", c->path, e->key, type);
    e->type = (jl_gguf_vtype)type;
    if (e->type == JL_GGUF_STRING) {
        uint64_t len;
        e->value = c->pos;
        return rd_str(c, &key_off, &len, e->key);
    }
    if (e->type != JL_GGUF_ARRAY) {
        e->value = c->pos;
        if ((st = need(c, scalar_size(e->type), e->key)) == JL_OK) c->pos += scalar_size(e->type);
        return st;
    }
    uint32_t elem;
    if ((st = rd(c, &elem, 4, e->key)) != JL_OK || (st = rd(c, &e->n, 8, e->key)) != JL_OK) return st;
    if (elem > JL_GGUF_F64 || elem == JL_GGUF_ARRAY)
        return jl_fail(JL_ERR_FORMAT, "%s: key '%s': unsupported array element type %u", c->path, e->key, elem);
    e->elem = (jl_gguf_vtype)elem;
    e->value = c->pos;
    if (e->elem != JL_GGUF_STRING) {
        size_t es = scalar_size(e->elem);
        if (e->n > (c->size - c->pos) / es)
            return jl_fail(JL_ERR_FORMAT, "%s: key '%s': array of %llu past the end of the file", c->path, e->key,
                           (unsigned long long)e->n);
        c->pos += (size_t)e->n * es;
        return JL_OK;
    }
    if (e->n > (c->size - c->pos) / 8) /* every string needs at least its 8-byte length */
        return jl_fail(JL_ERR_FORMAT, "%s: key '%s': %llu strings cannot fit in the file", c->path, e->key,
                       (unsigned long long)e->n);
    e->str_offsets = malloc(sizeof(size_t) * (size_t)(e->n ? e->n : 1));
    if (!e->str_offsets) return jl_fail(JL_ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < e->n && st == JL_OK; i++) {
        size_t off;
        uint64_t len;
        e->str_offsets[i] = c->pos;
        st = rd_str(c, &off, &len, e->key);
    }
    return st;
}

static size_t type_row_bytes(jl_ggml_type t, int64_t ne0, int *ok) {
    *ok = 1;
    switch (t) {
    case JL_GGML_F32: return (size_t)ne0 * 4;
    case JL_GGML_F16: return (size_t)ne0 * 2;
    case JL_GGML_Q8_0: *ok = ne0 % JL_QK == 0; return (size_t)(ne0 / JL_QK) * sizeof(jl_block_q8_0);
    case JL_GGML_Q4_0: *ok = ne0 % JL_QK == 0; return (size_t)(ne0 / JL_QK) * sizeof(jl_block_q4_0);
    case JL_GGML_BF16: return (size_t)ne0 * 2;
    }
    *ok = 0;
    return 0;
}

static jl_status read_tensor_info(cursor *c, jl_gguf_tensor *t, uint64_t *offset) {
    size_t off = 0;
    uint64_t len;
    uint32_t n_dims, type;
    jl_status st = rd_str(c, &off, &len, "tensor name");
    if (st == JL_OK && !(t->name = strndup((const char *)c->p + off, len))) st = jl_fail(JL_ERR_NOMEM, "out of memory");
    if (st == JL_OK) st = rd(c, &n_dims, 4, "n_dims");
    if (st != JL_OK) return st;
    if (n_dims < 1 || n_dims > MAX_DIMS)
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s': %u dimensions (1..4)", c->path, t->name, n_dims);
    t->n_dims = (int)n_dims;
    uint64_t count = 1;
    for (int d = 0; d < MAX_DIMS; d++) {
        uint64_t ne = 1;
        if (d < t->n_dims && (st = rd(c, &ne, 8, "ne")) != JL_OK) return st;
        if (ne == 0 || ne > (1ull << 40) || count > (1ull << 40) / ne)
            return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s': dimension %d = %llu out of range", c->path, t->name, d,
                           (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
        count *= ne;
    }
    if ((st = rd(c, &type, 4, "type")) != JL_OK || (st = rd(c, offset, 8, "offset")) != JL_OK) return st;
    int ok;
    size_t rb = type_row_bytes((jl_ggml_type)type, t->ne[0], &ok);
    if (!ok) {
        const char *tn = jl_ggml_type_name_any(type);
        if ((type == JL_GGML_Q8_0 || type == JL_GGML_Q4_0))
            return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s': ne[0] %lld is not a whole number of blocks", c->path,
                           t->name, (long long)t->ne[0]);
        return jl_fail(JL_ERR_FORMAT, "%s: tensor '%s': type %s (%u) is not supported (f32, f16, bf16, q8_0, q4_0; "
                       "requantize it with llama.cpp's llama-quantize)", c->path, t->name, tn ? tn : "unknown", type);
    }
    t->type = (jl_ggml_type)type;
    t->nbytes = rb * (size_t)(count / (uint64_t)t->ne[0]);
    return JL_OK;
}

static int cmp_by_data(const void *a, const void *b) {
    const jl_gguf_tensor *x = *(jl_gguf_tensor *const *)a, *y = *(jl_gguf_tensor *const *)b;
    return x->data < y->data ? -1 : x->data > y->data;
}

static int cmp_by_name(const void *a, const void *b) {
    return strcmp((*(jl_gguf_tensor *const *)a)->name, (*(jl_gguf_tensor *const *)b)->name);
}

/* No two tensors share a name or overlap in the data section (a second tensor over the first's bytes, or a
 * repeated name of which only the first would be read, is a malformed file, not one to half-load). */
static jl_status check_distinct(jl_gguf *g, const char *path) {
    const int n = g->n_tensors;
    jl_gguf_tensor **v = malloc(sizeof *v * (size_t)(n ? n : 1));
    if (!v) return jl_fail(JL_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) v[i] = &g->tensors[i];
    jl_status st = JL_OK;
    qsort(v, (size_t)n, sizeof *v, cmp_by_name);
    for (int i = 1; i < n && st == JL_OK; i++)
        if (strcmp(v[i - 1]->name, v[i]->name) == 0)
            st = jl_fail(JL_ERR_FORMAT, "%s: tensor '%s' appears twice", path, v[i]->name);
    qsort(v, (size_t)n, sizeof *v, cmp_by_data);
    for (int i = 1; i < n && st == JL_OK; i++)
        if ((const unsigned char *)v[i - 1]->data + v[i - 1]->nbytes > (const unsigned char *)v[i]->data)
            st = jl_fail(JL_ERR_FORMAT, "%s: tensors '%s' and '%s' share bytes of the data section", path,
                         v[i - 1]->name, v[i]->name);
    free(v);
    return st;
}

static jl_status parse(jl_gguf *g, const char *path) {
    cursor c = {.p = g->map, .size = g->size, .path = path};
    char magic[4];
    uint64_t n_tensors, n_kv;
    jl_status st = rd(&c, magic, 4, "magic");
    if (st == JL_OK && memcmp(magic, "GGUF", 4) != 0) return jl_fail(JL_ERR_FORMAT, "%s: bad magic (not a GGUF file)", path);
    if (st == JL_OK) st = rd(&c, &g->version, 4, "version");
    if (st == JL_OK && (g->version < 2 || g->version > 3))
        return jl_fail(JL_ERR_FORMAT, "%s: GGUF version %u not supported (2, 3)", path, g->version);
    if (st == JL_OK) st = rd(&c, &n_tensors, 8, "tensor count");
    if (st == JL_OK) st = rd(&c, &n_kv, 8, "metadata count");
    if (st != JL_OK) return st;
    /* each kv needs >= 12 bytes, each tensor info >= 28: bounds the counts before allocating */
    if (n_kv > g->size / 12 || n_tensors > g->size / 28)
        return jl_fail(JL_ERR_FORMAT, "%s: counts (%llu tensors, %llu keys) exceed the file size", path,
                       (unsigned long long)n_tensors, (unsigned long long)n_kv);
    g->kv = calloc((size_t)n_kv + 1, sizeof *g->kv);
    g->tensors = calloc((size_t)n_tensors + 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) return jl_fail(JL_ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < n_kv && st == JL_OK; i++, g->n_kv++) st = read_kv(&c, &g->kv[i]);
    if (st != JL_OK) return st;
    uint32_t align = 32;
    int ai = jl_gguf_find(g, "general.alignment");
    if (ai >= 0) {
        if (g->kv[ai].type != JL_GGUF_U32) return jl_fail(JL_ERR_FORMAT, "%s: general.alignment is not a u32", path);
        memcpy(&align, g->map + g->kv[ai].value, 4);
        if (align == 0 || (align & (align - 1))) return jl_fail(JL_ERR_FORMAT, "%s: general.alignment %u", path, align);
    }
    uint64_t *offsets = calloc((size_t)n_tensors + 1, sizeof *offsets);
    if (!offsets) return jl_fail(JL_ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < n_tensors && st == JL_OK; i++, g->n_tensors++)
        st = read_tensor_info(&c, &g->tensors[i], &offsets[i]);
    size_t data_start = (c.pos + align - 1) / align * align;
    for (int i = 0; i < g->n_tensors && st == JL_OK; i++) {
        jl_gguf_tensor *t = &g->tensors[i];
        if (offsets[i] % align != 0 || data_start > g->size || offsets[i] > g->size - data_start ||
            t->nbytes > g->size - data_start - offsets[i])
            st = jl_fail(JL_ERR_FORMAT, "%s: tensor '%s': data at offset %llu (%zu bytes) misaligned or past the end",
                         path, t->name, (unsigned long long)offsets[i], t->nbytes);
        else t->data = g->map + data_start + offsets[i];
    }
    if (st == JL_OK) st = check_distinct(g, path);
    free(offsets);
    return st;
}

jl_status jl_gguf_open(const char *path, jl_gguf **out) {
    *out = NULL;
    int fd;
    size_t fsize;
    jl_status rs = jl_open_regular(path, &fd, &fsize);
    if (rs != JL_OK) return rs;
    struct stat sb = {.st_size = (off_t)fsize};
    if (fsize < 24) {
        close(fd);
        return jl_fail(JL_ERR_FORMAT, "%s: too small for a GGUF header", path);
    }
    jl_gguf *g = calloc(1, sizeof *g);
    void *map = g ? mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (map == MAP_FAILED) {
        free(g);
        return jl_fail(JL_ERR_IO, "%s: cannot map", path);
    }
    g->map = map;
    g->size = (size_t)sb.st_size;
    jl_status st = parse(g, path);
    if (st != JL_OK) {
        jl_gguf_close(g);
        return st;
    }
    *out = g;
    return JL_OK;
}

void jl_gguf_tensor_release(const jl_gguf *g, const jl_gguf_tensor *t) {
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), base = (uintptr_t)g->map;
    uintptr_t start = (uintptr_t)t->data / page * page, end = ((uintptr_t)t->data + t->nbytes + page - 1) / page * page;
    start = start < base ? base : start; /* the mapping starts on a page; its last page may be partial */
    end = end > base + (g->size + page - 1) / page * page ? base + (g->size + page - 1) / page * page : end;
    if (end > start) madvise((void *)start, end - start, MADV_DONTNEED); /* advice: nothing to do if refused */
}

void jl_gguf_close(jl_gguf *g) {
    if (!g) return;
    for (int i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].str_offsets);
    }
    if (g->kv && g->kv[g->n_kv].key) { /* the entry that failed mid-parse */
        free(g->kv[g->n_kv].key);
        free(g->kv[g->n_kv].str_offsets);
    }
    for (int i = 0; i <= g->n_tensors && g->tensors; i++) free((char *)g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    if (g->map) munmap((void *)g->map, g->size);
    free(g);
}

uint32_t jl_gguf_version(const jl_gguf *g) { return g->version; }
int jl_gguf_kv_count(const jl_gguf *g) { return g->n_kv; }
const char *jl_gguf_kv_key(const jl_gguf *g, int i) { return i >= 0 && i < g->n_kv ? g->kv[i].key : NULL; }
jl_gguf_vtype jl_gguf_kv_type(const jl_gguf *g, int i) { return g->kv[i].type; }

int jl_gguf_find(const jl_gguf *g, const char *key) {
    for (int i = 0; i < g->n_kv; i++)
        if (strcmp(g->kv[i].key, key) == 0) return i;
    return -1;
}

static jl_status typed(const jl_gguf *g, const char *key, jl_gguf_vtype t, const kv_entry **e) {
    int i = jl_gguf_find(g, key);
    if (i < 0) return jl_fail(JL_ERR_FORMAT, "gguf: key '%s' missing", key);
    if (g->kv[i].type != t) return jl_fail(JL_ERR_FORMAT, "gguf: key '%s' has type %d, expected %d", key, g->kv[i].type, t);
    *e = &g->kv[i];
    return JL_OK;
}

jl_status jl_gguf_get_u32(const jl_gguf *g, const char *key, uint32_t *v) {
    const kv_entry *e = NULL;
    jl_status st = typed(g, key, JL_GGUF_U32, &e);
    if (st == JL_OK) memcpy(v, g->map + e->value, 4);
    return st;
}

jl_status jl_gguf_get_f32(const jl_gguf *g, const char *key, float *v) {
    const kv_entry *e = NULL;
    jl_status st = typed(g, key, JL_GGUF_F32, &e);
    if (st == JL_OK) memcpy(v, g->map + e->value, 4);
    return st;
}

jl_status jl_gguf_get_bool(const jl_gguf *g, const char *key, int *v) {
    const kv_entry *e = NULL;
    jl_status st = typed(g, key, JL_GGUF_BOOL, &e);
    if (st == JL_OK) *v = g->map[e->value] != 0;
    return st;
}

jl_status jl_gguf_get_str(const jl_gguf *g, const char *key, const char **s, size_t *len) {
    const kv_entry *e = NULL;
    jl_status st = typed(g, key, JL_GGUF_STRING, &e);
    if (st == JL_OK) {
        uint64_t n;
        memcpy(&n, g->map + e->value, 8);
        *len = (size_t)n;
        *s = (const char *)g->map + e->value + 8;
    }
    return st;
}

jl_status jl_gguf_get_arr(const jl_gguf *g, const char *key, jl_gguf_vtype *elem, uint64_t *n) {
    const kv_entry *e = NULL;
    jl_status st = typed(g, key, JL_GGUF_ARRAY, &e);
    if (st == JL_OK) {
        *elem = e->elem;
        *n = e->n;
    }
    return st;
}

const char *jl_gguf_arr_str(const jl_gguf *g, const char *key, uint64_t i, size_t *len) {
    int k = jl_gguf_find(g, key);
    if (k < 0 || g->kv[k].type != JL_GGUF_ARRAY || g->kv[k].elem != JL_GGUF_STRING || i >= g->kv[k].n) return NULL;
    uint64_t n;
    memcpy(&n, g->map + g->kv[k].str_offsets[i], 8);
    *len = (size_t)n;
    return (const char *)g->map + g->kv[k].str_offsets[i] + 8;
}

int32_t jl_gguf_arr_i32(const jl_gguf *g, const char *key, uint64_t i) {
    int k = jl_gguf_find(g, key);
    if (k < 0 || g->kv[k].type != JL_GGUF_ARRAY || g->kv[k].elem != JL_GGUF_I32 || i >= g->kv[k].n) return 0;
    int32_t v;
    memcpy(&v, g->map + g->kv[k].value + 4 * i, 4);
    return v;
}

float jl_gguf_arr_f32(const jl_gguf *g, const char *key, uint64_t i) {
    int k = jl_gguf_find(g, key);
    if (k < 0 || g->kv[k].type != JL_GGUF_ARRAY || g->kv[k].elem != JL_GGUF_F32 || i >= g->kv[k].n) return 0;
    float v;
    memcpy(&v, g->map + g->kv[k].value + 4 * i, 4);
    return v;
}

const char *jl_ggml_type_name_any(uint32_t type) {
    static const char *const names[] = {
        "f32", "f16", "q4_0", "q4_1", NULL, NULL, "q5_0", "q5_1", "q8_0", "q8_1", "q2_K", "q3_K", "q4_K", "q5_K",
        "q6_K", "q8_K", "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s", "iq4_nl", "iq3_s", "iq2_s", "iq4_xs", "i8", "i16",
        "i32", "i64", "f64", "iq1_m", "bf16", NULL, NULL, NULL, "tq1_0", "tq2_0"};
    return type < sizeof names / sizeof names[0] ? names[type] : NULL;
}

int jl_gguf_tensor_count(const jl_gguf *g) { return g->n_tensors; }
const jl_gguf_tensor *jl_gguf_tensor_at(const jl_gguf *g, int i) { return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL; }

const jl_gguf_tensor *jl_gguf_find_tensor(const jl_gguf *g, const char *name) {
    for (int i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0) return &g->tensors[i];
    return NULL;
}

void jl_gguf_tensor_f32(const jl_gguf_tensor *t, float *dst) {
    const int64_t rows = t->ne[1] * t->ne[2] * t->ne[3], cols = t->ne[0];
    switch (t->type) {
    case JL_GGML_F32: memcpy(dst, t->data, t->nbytes); break;
    case JL_GGML_F16:
        for (int64_t i = 0; i < rows * cols; i++) {
            uint16_t h;
            memcpy(&h, (const char *)t->data + 2 * i, 2);
            dst[i] = jl_f16_to_f32(h);
        }
        break;
    case JL_GGML_Q8_0: jl_dequantize_matrix(JL_QTYPE_Q8_0, t->data, dst, rows, cols); break;
    case JL_GGML_Q4_0: jl_dequantize_matrix(JL_QTYPE_Q4_0, t->data, dst, rows, cols); break;
    case JL_GGML_BF16:
        for (int64_t i = 0; i < rows * cols; i++) {
            uint16_t h;
            memcpy(&h, (const char *)t->data + 2 * i, 2);
            uint32_t u = (uint32_t)h << 16;
            memcpy(&dst[i], &u, 4);
        }
        break;
    }
}
