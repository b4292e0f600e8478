/* Token shards (format, validation) and `jielong prepare` (documents, split, shard sizes, bad input). */
#include "testutil.h"
#include "io/fileio.h"
#include "jielong/data.h"
#include <sys/stat.h>

static void test_shard_round_trip_and_width(void **state) {
    (void)state;
    int32_t toks[1000];
    for (int i = 0; i < 1000; i++) toks[i] = (i * 7919) % 50000;
    const char *p16 = tmp_path("a.bin"), *p32 = tmp_path("b.bin");
    assert_int_equal(jl_shard_write(p16, toks, 1000, 50000), JL_OK);
    assert_int_equal(jl_shard_write(p32, toks, 1000, 100262), JL_OK);
    jl_shard *s;
    assert_int_equal(jl_shard_open(p16, &s), JL_OK);
    assert_int_equal(jl_shard_width(s), 2);
    assert_int_equal(jl_shard_count(s), 1000);
    assert_int_equal(jl_shard_vocab(s), 50000);
    int32_t back[1000];
    assert_int_equal(jl_shard_read(s, 0, 1000, back), JL_OK);
    assert_memory_equal(back, toks, sizeof toks);
    assert_int_equal(jl_shard_read(s, 990, 11, back), JL_ERR_ARG);
    jl_shard_close(s);
    assert_int_equal(jl_shard_open(p32, &s), JL_OK);
    assert_int_equal(jl_shard_width(s), 4);
    assert_int_equal(jl_shard_read(s, 500, 500, back), JL_OK);
    assert_memory_equal(back, toks + 500, 500 * sizeof *toks);
    jl_shard_close(s);
    struct stat st;
    assert_int_equal(stat(p16, &st), 0);
    assert_int_equal(st.st_size, 1024 + 2 * 1000);
    toks[3] = 50000;
    assert_int_equal(jl_shard_write(p16, toks, 1000, 50000), JL_ERR_ARG); /* out of the vocabulary */
}

static void write_bytes(const char *path, const void *p, size_t n) {
    assert_int_equal(jl_write_file_atomic(path, p, n), JL_OK);
}

static void test_shard_validation(void **state) {
    (void)state;
    int32_t toks[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    const char *p = tmp_path("v.bin");
    assert_int_equal(jl_shard_write(p, toks, 10, 11), JL_OK);
    char *data;
    size_t len;
    assert_int_equal(jl_read_file(p, &data, &len), JL_OK);
    jl_shard *s;
    const char *bad = tmp_path("bad.bin");
    write_bytes(bad, data, len - 2); /* truncated */
    assert_int_equal(jl_shard_open(bad, &s), JL_ERR_FORMAT);
    assert_non_null(strstr(jl_last_error(), "bad.bin"));
    write_bytes(bad, data, 100); /* shorter than the header */
    assert_int_equal(jl_shard_open(bad, &s), JL_ERR_FORMAT);
    data[0] ^= 1; /* magic */
    write_bytes(bad, data, len);
    assert_int_equal(jl_shard_open(bad, &s), JL_ERR_FORMAT);
    assert_non_null(strstr(jl_last_error(), "magic"));
    data[0] ^= 1;
    data[1024 + 2 * 9] = 11; /* the last token = vocab size */
    write_bytes(bad, data, len);
    assert_int_equal(jl_shard_open(bad, &s), JL_ERR_FORMAT);
    assert_non_null(strstr(jl_last_error(), "token 9"));
    data[1024 + 2 * 9] = 10;
    data[8] = 3; /* width */
    write_bytes(bad, data, len);
    assert_int_equal(jl_shard_open(bad, &s), JL_ERR_FORMAT);
    free(data);
    assert_int_equal(jl_shard_open(tmp_path("nope.bin"), &s), JL_ERR_IO);
}

static size_t shard_tokens(const char *path, int32_t **out) {
    jl_shard *s;
    assert_int_equal(jl_shard_open(path, &s), JL_OK);
    size_t n = jl_shard_count(s);
    *out = malloc((n + 1) * sizeof **out);
    assert_int_equal(jl_shard_read(s, 0, n, *out), JL_OK);
    jl_shard_close(s);
    return n;
}

/* (a copy: tmp_path's buffers are reused) */
static const char *bytes_tokenizer(void) {
    static char p[1024];
    jl_tokenizer *t;
    assert_int_equal(jl_tokenizer_bytes(&t), JL_OK);
    snprintf(p, sizeof p, "%s", tmp_path("bytes_tok.json"));
    assert_int_equal(jl_tokenizer_save(t, p), JL_OK);
    jl_tokenizer_free(t);
    return p;
}

static void test_prepare_text_documents_and_split(void **state) {
    (void)state;
    const char *tok = bytes_tokenizer();
    /* 40 poems separated by blank lines (one with spaces on it) */
    char text[8192] = "";
    for (int i = 0; i < 40; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "《题%d》作者\n床前明月光<|end|>\n%s", i,
                 i % 7 == 3 ? "  \n\n" : "\n");
    write_bytes(tmp_path("poems.txt"), text, strlen(text));
    const char *inputs[] = {tmp_path("poems.txt")};
    const char *dir = tmp_path("prep_out");
    jl_prepare_opts o = {.tokenizer_path = tok, .inputs = inputs, .n_inputs = 1, .out_dir = dir,
                         .val_fraction = 0.25, .seed = 3, .shard_tokens = 1000};
    jl_prepare_stats st;
    assert_int_equal(jl_prepare(&o, &st), JL_OK);
    assert_int_equal(st.docs_train + st.docs_val, 40);
    assert_true(st.docs_val >= 4 && st.docs_val <= 18);
    assert_true(st.train_shards >= 2);
    char path[1024];
    int32_t *ids;
    size_t total = 0, bos = 0;
    for (int k = 0; k < st.train_shards; k++) {
        snprintf(path, sizeof path, "%s/train_%03d.bin", dir, k);
        size_t n = shard_tokens(path, &ids);
        assert_true(n <= 1000);
        for (size_t i = 0; i < n; i++) bos += ids[i] == 256;
        for (size_t i = 0; i < n; i++) assert_int_not_equal(ids[i], 261); /* "<|end|>" in text stays text */
        total += n;
        free(ids);
    }
    assert_int_equal(total, st.tokens_train);
    assert_int_equal(bos, st.docs_train);
    snprintf(path, sizeof path, "%s/val_000.bin", dir);
    size_t n = shard_tokens(path, &ids);
    assert_int_equal(n, st.tokens_val);
    assert_int_equal(ids[0], 256);
    /* a document is its lines without the blank separator: <|bos|> then "《题" ... ending with "<|end|>" */
    assert_int_equal(ids[n - 1], '>');
    free(ids);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    jl_tokenizer *copy;
    assert_int_equal(jl_tokenizer_load(path, &copy), JL_OK);
    jl_tokenizer_free(copy);
    /* the same seed gives the same split; a rerun with bigger shards removes the stale ones */
    jl_prepare_stats st2;
    o.shard_tokens = 0;
    assert_int_equal(jl_prepare(&o, &st2), JL_OK);
    assert_int_equal(st2.docs_val, st.docs_val);
    assert_int_equal(st2.train_shards, 1);
    snprintf(path, sizeof path, "%s/train_001.bin", dir);
    struct stat sb;
    assert_int_not_equal(stat(path, &sb), 0);
}

static void test_prepare_jsonl_and_bad_input(void **state) {
    (void)state;
    const char *tok = bytes_tokenizer();
    const char *good = "{\"text\": \"first doc\"}\n\n{\"text\": \"second\\ndoc \\u4f60\"}\n{\"text\": \"third\"}\n";
    write_bytes(tmp_path("d.jsonl"), good, strlen(good));
    char cmd[4096], log[1024];
    snprintf(log, sizeof log, "%s", tmp_path("prep.log")); /* tmp_path's buffers are reused */
    snprintf(cmd, sizeof cmd, "prepare --tokenizer %s --input %s --output %s --val-fraction 0.1 --quiet", tok,
             tmp_path("d.jsonl"), tmp_path("j_out"));
    assert_int_equal(run_cli(cmd, log), 0);
    char path[1024];
    int32_t *ids;
    snprintf(path, sizeof path, "%s/val_000.bin", tmp_path("j_out"));
    size_t n = shard_tokens(path, &ids); /* the fallback held-out document: the last one */
    assert_int_equal(n, 1 + 5);
    assert_int_equal(ids[1], 't');
    free(ids);
    const char *bad = "{\"text\": \"ok\"}\n{\"txt\": \"no\"}\n";
    write_bytes(tmp_path("bad.jsonl"), bad, strlen(bad));
    snprintf(cmd, sizeof cmd, "prepare --tokenizer %s --input %s --output %s", tok, tmp_path("bad.jsonl"),
             tmp_path("b_out"));
    assert_int_equal(run_cli(cmd, log), 2);
    char *out;
    size_t len;
    assert_int_equal(jl_read_file(log, &out, &len), JL_OK);
    assert_non_null(strstr(out, "bad.jsonl:2"));
    free(out);
    write_bytes(tmp_path("broken.jsonl"), "{\"text\": \"ok\"\n", 14);
    snprintf(cmd, sizeof cmd, "prepare --tokenizer %s --input %s --output %s", tok, tmp_path("broken.jsonl"),
             tmp_path("b_out"));
    assert_int_equal(run_cli(cmd, log), 2);
    /* a tokenizer without <|bos|> (its added tokens dropped): a clear error, not a guess */
    jl_tokenizer *t;
    char *json;
    assert_int_equal(jl_tokenizer_bytes(&t), JL_OK);
    assert_int_equal(jl_tokenizer_to_json(t, &json), JL_OK);
    jl_tokenizer_free(t);
    char *added = strstr(json, "\"added_tokens\":["), *end = strstr(added, "],\"normalizer\"");
    char *stripped = malloc(strlen(json) + 1);
    sprintf(stripped, "%.*s\"added_tokens\":[]%s", (int)(added - json), json, end + 1);
    write_bytes(tmp_path("nobos.json"), stripped, strlen(stripped));
    free(stripped);
    free(json);
    assert_int_equal(jl_tokenizer_load(tmp_path("nobos.json"), &t), JL_OK);
    assert_int_equal(jl_tokenizer_special(t, "<|bos|>"), -1);
    jl_tokenizer_free(t);
    snprintf(cmd, sizeof cmd, "prepare --tokenizer %s --input %s --output %s", tmp_path("nobos.json"),
             tmp_path("d.jsonl"), tmp_path("b_out"));
    assert_int_equal(run_cli(cmd, log), 2);
    assert_int_equal(jl_read_file(log, &out, &len), JL_OK);
    assert_non_null(strstr(out, "<|bos|>"));
    free(out);
    write_bytes(tmp_path("blank.txt"), "\n  \n\n", 5);
    snprintf(cmd, sizeof cmd, "prepare --tokenizer %s --input %s --output %s", tok, tmp_path("blank.txt"),
             tmp_path("b_out"));
    assert_int_equal(run_cli(cmd, log), 2); /* empty corpus */
    snprintf(cmd, sizeof cmd, "prepare --tokenizer %s --input %s --output %s --val-fraction 1.5", tok,
             tmp_path("d.jsonl"), tmp_path("b_out"));
    assert_int_equal(run_cli(cmd, log), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shard_round_trip_and_width),
        cmocka_unit_test(test_shard_validation),
        cmocka_unit_test(test_prepare_text_documents_and_split),
        cmocka_unit_test(test_prepare_jsonl_and_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
