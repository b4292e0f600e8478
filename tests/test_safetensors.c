/* safetensors: round trip, writer argument checks, every corruption a reader must reject, atomic writes, fuzzing. */
#include "testutil.h"
#include "core/rng.h"
#include "io/fileio.h"
#include "jielong/safetensors.h"
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static void fill_bytes(void *p, size_t n, uint64_t seed) {
    jl_rng r;
    jl_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) ((unsigned char *)p)[i] = (unsigned char)jl_rng_u64(&r);
}

static long file_size(const char *path) {
    struct stat s;
    return stat(path, &s) == 0 ? (long)s.st_size : -1;
}

/* ---- round trip ---- */

typedef struct {
    const char *name;
    jl_dtype dt;
    int ndim;
    int64_t shape[3];
} tensor_spec;

static const tensor_spec specs[] = {
    {"model.embed.weight", JL_DT_F32, 2, {3, 4}},
    {"u8.odd", JL_DT_U8, 1, {7}}, /* odd size in the middle: the layout must keep later tensors aligned */
    {"half", JL_DT_F16, 1, {5}},
    {"bf", JL_DT_BF16, 2, {2, 3}},
    {"i64", JL_DT_I64, 1, {3}},
    {"scalar", JL_DT_I32, 0, {0}},
    {"empty", JL_DT_U16, 2, {0, 3}},
    {"f64", JL_DT_F64, 3, {1, 2, 1}},
    {"flags", JL_DT_BOOL, 1, {1}},
    {"层.权重", JL_DT_I8, 1, {4}},
    {"u32", JL_DT_U32, 1, {2}},
    {"u64", JL_DT_U64, 1, {1}},
    {"i16", JL_DT_I16, 1, {3}},
};
#define N_SPECS ((int)(sizeof specs / sizeof specs[0]))

static size_t spec_bytes(const tensor_spec *s) {
    size_t n = jl_dtype_size(s->dt);
    for (int d = 0; d < s->ndim; d++) n *= (size_t)s->shape[d];
    return n;
}

/* Writes the spec tensors (random bytes) + metadata to `path`; returns the data buffers (caller frees). */
static unsigned char **write_sample(const char *path, const char *big_meta) {
    unsigned char **bufs = calloc(N_SPECS, sizeof *bufs);
    jl_st_writer *w = jl_st_writer_new();
    assert_non_null(w);
    for (int i = 0; i < N_SPECS; i++) {
        bufs[i] = malloc(spec_bytes(&specs[i]) + 1);
        fill_bytes(bufs[i], spec_bytes(&specs[i]), (uint64_t)i + 1);
        assert_int_equal(jl_st_add(w, specs[i].name, specs[i].dt, specs[i].ndim, specs[i].shape, bufs[i]), JL_OK);
    }
    assert_int_equal(jl_st_add_meta(w, "format", "pt"), JL_OK);
    assert_int_equal(jl_st_add_meta(w, "作者", "李白 \"静夜思\"\n床前明月光\\"), JL_OK);
    if (big_meta) assert_int_equal(jl_st_add_meta(w, "tokenizer", big_meta), JL_OK);
    assert_int_equal(jl_st_write(w, path), JL_OK);
    jl_st_writer_free(w);
    return bufs;
}

static void free_bufs(unsigned char **bufs) {
    for (int i = 0; i < N_SPECS; i++) free(bufs[i]);
    free(bufs);
}

static void test_round_trip_all_dtypes_and_metadata(void **state) {
    (void)state;
    const char *path = tmp_path("rt.safetensors");
    size_t big_len = 2u << 20;
    char *big = malloc(big_len + 1);
    for (size_t i = 0; i < big_len; i++) big[i] = (char)('a' + i % 26);
    memcpy(big + 100, "\"quoted\" {json} 诗", strlen("\"quoted\" {json} 诗"));
    big[big_len] = '\0';
    unsigned char **bufs = write_sample(path, big);

    jl_st_file *f;
    assert_int_equal(jl_st_open(path, &f), JL_OK);
    assert_int_equal(jl_st_count(f), N_SPECS);
    for (int i = 0; i < N_SPECS; i++) {
        const jl_st_tensor *t = jl_st_at(f, i);
        assert_string_equal(t->name, specs[i].name); /* header keeps the order added */
        assert_ptr_equal(jl_st_find(f, specs[i].name), t);
        assert_int_equal(t->dtype, specs[i].dt);
        assert_int_equal(t->ndim, specs[i].ndim);
        for (int d = 0; d < t->ndim; d++) assert_int_equal(t->shape[d], specs[i].shape[d]);
        assert_int_equal(t->nbytes, spec_bytes(&specs[i]));
        if (t->nbytes) assert_memory_equal(t->data, bufs[i], t->nbytes);
        assert_int_equal((uintptr_t)t->data % jl_dtype_size(t->dtype), 0);
    }
    assert_null(jl_st_at(f, N_SPECS));
    assert_null(jl_st_at(f, -1));
    assert_null(jl_st_find(f, "missing"));
    assert_string_equal(jl_st_meta(f, "format"), "pt");
    assert_string_equal(jl_st_meta(f, "作者"), "李白 \"静夜思\"\n床前明月光\\");
    assert_string_equal(jl_st_meta(f, "tokenizer"), big);
    assert_null(jl_st_meta(f, "absent"));
    jl_st_close(f);

    /* The header length is a multiple of 8 and starts with '{' (HF's reader requirements). */
    char *raw;
    size_t len;
    assert_int_equal(jl_read_file(path, &raw, &len), JL_OK);
    uint64_t hlen;
    memcpy(&hlen, raw, 8);
    assert_int_equal(hlen % 8, 0);
    assert_int_equal(raw[8], '{');
    free(raw);
    free(big);
    free_bufs(bufs);
}

static void test_empty_file_with_no_tensors(void **state) {
    (void)state;
    const char *path = tmp_path("empty.safetensors");
    jl_st_writer *w = jl_st_writer_new();
    assert_int_equal(jl_st_write(w, path), JL_OK);
    jl_st_writer_free(w);
    jl_st_file *f;
    assert_int_equal(jl_st_open(path, &f), JL_OK);
    assert_int_equal(jl_st_count(f), 0);
    assert_null(jl_st_find(f, "x"));
    assert_null(jl_st_meta(f, "x"));
    jl_st_close(f);
}

static void test_writer_rejects_bad_arguments(void **state) {
    (void)state;
    jl_st_writer *w = jl_st_writer_new();
    float x[4] = {0};
    int64_t shape[9] = {2, 2, 1, 1, 1, 1, 1, 1, 1}, neg[1] = {-1}, huge[3] = {1ll << 40, 1ll << 40, 1ll << 40};
    assert_int_equal(jl_st_add(w, "a", JL_DT_F32, 2, shape, x), JL_OK);
    assert_int_equal(jl_st_add(w, "a", JL_DT_F32, 2, shape, x), JL_ERR_ARG);
    assert_non_null(strstr(jl_last_error(), "duplicate"));
    assert_int_equal(jl_st_add(w, "", JL_DT_F32, 2, shape, x), JL_ERR_ARG);
    assert_int_equal(jl_st_add(w, "__metadata__", JL_DT_F32, 2, shape, x), JL_ERR_ARG);
    assert_int_equal(jl_st_add(w, "b", JL_DT_F32, 9, shape, x), JL_ERR_ARG);
    assert_int_equal(jl_st_add(w, "b", JL_DT_F32, 1, neg, x), JL_ERR_ARG);
    assert_int_equal(jl_st_add(w, "b", JL_DT_F32, 3, huge, x), JL_ERR_ARG);
    assert_int_equal(jl_st_add(w, "b", (jl_dtype)99, 1, shape, x), JL_ERR_ARG);
    assert_int_equal(jl_st_add(w, "bad\xff", JL_DT_F32, 1, shape, x), JL_ERR_ARG);
    assert_int_equal(jl_st_add_meta(w, "k", "v"), JL_OK);
    assert_int_equal(jl_st_add_meta(w, "k", "w"), JL_ERR_ARG);
    assert_int_equal(jl_st_add_meta(w, "k2", "\xc0\x80"), JL_ERR_ARG); /* overlong NUL */
    jl_st_writer_free(w);
    assert_int_equal(jl_dtype_size(JL_DT_BF16), 2);
    assert_string_equal(jl_dtype_name(JL_DT_BOOL), "BOOL");
    assert_string_equal(jl_dtype_name((jl_dtype)-1), "?");
}

/* ---- corruption: each must be JL_ERR_FORMAT with a message naming the file ---- */

/* Writes 8-byte length (or `len_override` when nonzero) + header + `data_len` zero bytes. */
static void write_raw(const char *path, const char *header, size_t data_len, uint64_t len_override) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    uint64_t n = len_override ? len_override : strlen(header);
    fwrite(&n, 8, 1, fp);
    fwrite(header, 1, strlen(header), fp);
    for (size_t i = 0; i < data_len; i++) fputc(0, fp);
    fclose(fp);
}

static void expect_format_error(const char *path, const char *word) {
    jl_st_file *f = (jl_st_file *)1;
    jl_status st = jl_st_open(path, &f);
    if (st != JL_ERR_FORMAT || !strstr(jl_last_error(), path) || (word && !strstr(jl_last_error(), word)))
        fail_msg("expected a format error with '%s', got %d: %s", word ? word : "", st, jl_last_error());
    assert_null(f);
}

static void expect_header_error(const char *header, size_t data_len, const char *word) {
    const char *path = tmp_path("bad.safetensors");
    write_raw(path, header, data_len, 0);
    expect_format_error(path, word);
}

#define T(name, dtype, shape, b, e) "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static void test_reader_rejects_each_corruption(void **state) {
    (void)state;
    char path[1024]; /* a copy: tmp_path's buffers are reused by the helpers below */
    snprintf(path, sizeof path, "%s", tmp_path("short.safetensors"));
    FILE *fp = fopen(path, "wb");
    fwrite("abcd", 1, 4, fp);
    fclose(fp);
    expect_format_error(path, "too short");

    write_raw(path, "{}", 0, 1ull << 40); /* longer than the file */
    expect_format_error(path, "header length");
    write_raw(path, "{}", 0, 200000000ull); /* above the 100 MB cap */
    expect_format_error(path, "header length");

    expect_header_error("{\"a\xff\":1}", 0, "UTF-8");
    expect_header_error("{\"a\":", 0, "JSON");
    expect_header_error("{\"a\":1} x", 0, "JSON");
    expect_header_error("[1,2]", 0, "object");
    expect_header_error("", 0, "object");
    expect_header_error("{\"x\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "missing dtype");
    expect_header_error("{\"x\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "missing shape");
    expect_header_error("{\"x\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "missing data_offsets");
    expect_header_error("{\"x\":7}", 0, "not an object");
    expect_header_error("{" T("x", "F8_E4M3", "[1]", 0, 1) "}", 1, "unknown dtype");
    expect_header_error("{" T("x", "F32", "[-1]", 0, 4) "}", 4, "shape[0]");
    expect_header_error("{" T("x", "F32", "[1.5]", 0, 4) "}", 4, "shape[0]");
    expect_header_error("{" T("x", "F32", "[4294967296,4294967296,4294967296]", 0, 4) "}", 4, "overflows");
    expect_header_error("{" T("x", "F32", "[1,1,1,1,1,1,1,1,1]", 0, 4) "}", 4, "shape");
    expect_header_error("{" T("x", "F32", "[99999999999999999999]", 0, 4) "}", 4, "shape[0]");
    expect_header_error("{" T("x", "F32", "[1]", 4, 0) "}", 4, "end 0 < begin 4");
    expect_header_error("{" T("x", "F32", "[1]", 0, 8) "}", 4, "beyond");
    expect_header_error("{" T("x", "F32", "[1]", -4, 0) "}", 4, "data_offsets");
    expect_header_error("{" T("x", "F32", "[2]", 0, 4) "}", 4, "needs 8");
    expect_header_error("{" T("x", "F32", "[2]", 0, 8) "," T("y", "F32", "[1]", 4, 8) "}", 8, "overlaps");
    expect_header_error("{" T("x", "F32", "[1]", 0, 4) "," T("y", "F32", "[1]", 8, 12) "}", 12, "hole");
    expect_header_error("{" T("x", "F32", "[1]", 4, 8) "}", 8, "hole");
    expect_header_error("{" T("x", "F32", "[1]", 0, 4) "}", 9, "cover 4 bytes but the data section is 9");
    expect_header_error("{\"__metadata__\":{\"a\":1}}", 0, "not a string");
    expect_header_error("{\"__metadata__\":[\"a\"]}", 0, "not an object");

    /* A valid file cut short. */
    const char *good = tmp_path("good.safetensors");
    unsigned char **bufs = write_sample(good, NULL);
    char *raw;
    size_t len;
    assert_int_equal(jl_read_file(good, &raw, &len), JL_OK);
    assert_int_equal(jl_write_file_atomic(path, raw, len - 3), JL_OK);
    expect_format_error(path, "beyond");
    free(raw);
    free_bufs(bufs);

    jl_st_file *f;
    assert_int_equal(jl_st_open("/nonexistent/x.safetensors", &f), JL_ERR_IO);
    assert_non_null(strstr(jl_last_error(), "/nonexistent/x.safetensors"));
}

/* The smallest valid files the reader must accept: no tensors, padding spaces, zero-size tensors. */
static void test_reader_accepts_padding_and_zero_size(void **state) {
    (void)state;
    const char *path = tmp_path("pad.safetensors");
    write_raw(path, "{" T("z", "F32", "[0]", 0, 0) "," T("x", "F32", "[1]", 0, 4) "}    ", 4, 0);
    jl_st_file *f;
    assert_int_equal(jl_st_open(path, &f), JL_OK);
    assert_int_equal(jl_st_count(f), 2);
    assert_int_equal(jl_st_find(f, "z")->nbytes, 0);
    assert_int_equal(jl_st_find(f, "x")->nbytes, 4);
    jl_st_close(f);
}

/* ---- atomic write ---- */

static void test_failed_write_leaves_existing_file(void **state) {
    (void)state;
    const char *path = tmp_path("keep.safetensors");
    unsigned char **bufs = write_sample(path, NULL);
    long before = file_size(path);
    char *old;
    size_t old_len;
    assert_int_equal(jl_read_file(path, &old, &old_len), JL_OK);

    /* A 1 MB tensor under a 64 kB file-size limit: the write fails part way. */
    size_t n = 1u << 18;
    float *big = calloc(n, sizeof(float));
    jl_st_writer *w = jl_st_writer_new();
    int64_t shape[1] = {(int64_t)n};
    assert_int_equal(jl_st_add(w, "big", JL_DT_F32, 1, shape, big), JL_OK);
    struct rlimit saved, small = {65536, 65536};
    getrlimit(RLIMIT_FSIZE, &saved);
    small.rlim_max = saved.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    jl_status st = jl_st_write(w, path);
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(st, JL_ERR_IO);
    assert_non_null(strstr(jl_last_error(), path));
    jl_st_writer_free(w);
    free(big);

    assert_int_equal(file_size(path), before);
    char *now;
    size_t now_len;
    assert_int_equal(jl_read_file(path, &now, &now_len), JL_OK);
    assert_int_equal(now_len, old_len);
    assert_memory_equal(now, old, old_len);
    char tmpname[1200];
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", path, (long)getpid());
    assert_int_equal(file_size(tmpname), -1);
    free(now);
    free(old);
    free_bufs(bufs);

    /* A folder that does not exist: an I/O error naming the path. */
    w = jl_st_writer_new();
    assert_int_equal(jl_st_write(w, "/nonexistent/dir/x.safetensors"), JL_ERR_IO);
    assert_non_null(strstr(jl_last_error(), "/nonexistent/dir/x.safetensors"));
    jl_st_writer_free(w);
}

/* ---- fuzz: random damage never crashes; every open either succeeds (and all data is readable) or fails cleanly ---- */

static void test_fuzz_damaged_files(void **state) {
    (void)state;
    const char *good = tmp_path("fuzz_src.safetensors"), *path = tmp_path("fuzz.safetensors");
    unsigned char **bufs = write_sample(good, "some metadata");
    char *raw;
    size_t len;
    assert_int_equal(jl_read_file(good, &raw, &len), JL_OK);
    unsigned char *copy = malloc(len);
    jl_rng r;
    jl_rng_seed(&r, 1234);
    int iters = JL_SANITIZED ? 4000 : 10000, opened = 0, rejected = 0;
    for (int it = 0; it < iters; it++) {
        memcpy(copy, raw, len);
        size_t n = len;
        int kind = (int)jl_rng_below(&r, 4);
        if (kind == 0) n = (size_t)jl_rng_below(&r, len); /* truncate */
        int flips = kind == 0 ? 0 : 1 + (int)jl_rng_below(&r, 4);
        for (int k = 0; k < flips; k++) {
            /* Mostly hit the header (where parsing happens), sometimes anywhere. */
            size_t where = jl_rng_below(&r, 4) ? jl_rng_below(&r, len < 400 ? len : 400) : jl_rng_below(&r, len);
            if (kind == 1) copy[where] ^= (unsigned char)(1u << jl_rng_below(&r, 8));
            else if (kind == 2) copy[where] = (unsigned char)"0123456789{}[],:\"- "[jl_rng_below(&r, 19)];
            else copy[where] = (unsigned char)jl_rng_u64(&r);
        }
        FILE *fp = fopen(path, "wb");
        fwrite(copy, 1, n, fp);
        fclose(fp);
        jl_st_file *f;
        jl_status st = jl_st_open(path, &f);
        if (st == JL_OK) {
            unsigned sum = 0;
            for (int i = 0; i < jl_st_count(f); i++) {
                const jl_st_tensor *t = jl_st_at(f, i);
                for (size_t b = 0; b < t->nbytes; b++) sum += ((const unsigned char *)t->data)[b];
                assert_ptr_equal(jl_st_find(f, t->name), t);
            }
            (void)jl_st_meta(f, "format");
            jl_st_close(f);
            opened++;
            (void)sum;
        } else {
            assert_int_equal(st, JL_ERR_FORMAT);
            assert_non_null(strstr(jl_last_error(), path));
            assert_null(strchr(jl_last_error(), '\n'));
            rejected++;
        }
    }
    print_message("fuzz: %d opened, %d rejected\n", opened, rejected);
    assert_true(opened > 0 && rejected > iters / 2); /* both outcomes exercised */
    free(copy);
    free(raw);
    free_bufs(bufs);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_all_dtypes_and_metadata),
        cmocka_unit_test(test_empty_file_with_no_tensors),
        cmocka_unit_test(test_writer_rejects_bad_arguments),
        cmocka_unit_test(test_reader_rejects_each_corruption),
        cmocka_unit_test(test_reader_accepts_padding_and_zero_size),
        cmocka_unit_test(test_failed_write_leaves_existing_file),
        cmocka_unit_test(test_fuzz_damaged_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
