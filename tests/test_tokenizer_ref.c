/* Real vocabularies: GPT-2 (encoder.json + vocab.bpe, and as a tiktoken r50k file), cl100k and o200k give the same
 * ids as real implementations (tests/data/tokenizer_ref.txt, made by scripts/make_tokenizer_refs.sh) on 3 MB of our
 * synthetic mixed English/Chinese/code text. The vocabularies come from scripts/fetch_vocab.sh (build/vocab/);
 * without them these tests FAIL — they never skip. */
#include "testutil.h"
#include "io/fileio.h"
#include "jielong/tokenizer.h"
#include "tokenizer/synth.h"

typedef struct {
    size_t start, len, n_ids;
    uint64_t hash;
} ref_chunk;

typedef struct {
    char name[32];
    ref_chunk *chunks;
    int n_chunks;
    int32_t *first_ids; /* all ids of chunk 0 */
    size_t n_first;
} ref_encoding;

typedef struct {
    size_t text_len;
    uint64_t text_hash;
    ref_encoding enc[3];
    int n_enc;
    char *text;
} refs;

static refs R;

static uint64_t fnv1a(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t ids_hash(const int32_t *ids, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 4; k++) h = (h ^ (((uint32_t)ids[i] >> (8 * k)) & 0xFF)) * 0x100000001b3ull;
    return h;
}

static int load_refs(void **state) {
    (void)state;
    char *data;
    size_t len;
    if (jl_read_file(root_path("tests/data/tokenizer_ref.txt"), &data, &len) != JL_OK) return -1;
    ref_encoding *cur = NULL;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
        unsigned long long a, b, c, d;
        char name[32];
        int n;
        if (sscanf(line, "text seed %*d bytes %*d length %llu fnv %llx", &a, &b) == 2) {
            R.text_len = a;
            R.text_hash = b;
        } else if (sscanf(line, "encoding %31s chunks %d", name, &n) == 2) {
            cur = &R.enc[R.n_enc++];
            snprintf(cur->name, sizeof cur->name, "%s", name);
            cur->chunks = calloc((size_t)n, sizeof *cur->chunks);
        } else if (cur && sscanf(line, "chunk %d %llu %llu %llu %llx", &n, &a, &b, &c, &d) == 5) {
            cur->chunks[cur->n_chunks++] = (ref_chunk){a, b, c, d};
        } else if (cur && !strncmp(line, "ids ", 4)) {
            cur->first_ids = malloc(sizeof(int32_t) * cur->chunks[0].n_ids);
            char *p = line + 4;
            while (*p && cur->n_first < cur->chunks[0].n_ids) cur->first_ids[cur->n_first++] = (int32_t)strtol(p, &p, 10);
        }
    }
    free(data);
    if (R.n_enc != 3) return -1;
    size_t text_len;
    if (jl_synth_text(7, 3000000, &R.text, &text_len) != JL_OK) return -1;
    return 0;
}

static int free_refs(void **state) {
    (void)state;
    for (int k = 0; k < R.n_enc; k++) {
        free(R.enc[k].chunks);
        free(R.enc[k].first_ids);
    }
    free(R.text);
    return 0;
}

static const char *vocab_path(const char *file) {
    static char buf[4][1024];
    static int slot;
    char *b = buf[slot++ % 4];
    snprintf(b, sizeof buf[0], "%s", root_path("build/vocab/"));
    strncat(b, file, sizeof buf[0] - strlen(b) - 1);
    FILE *f = fopen(b, "rb");
    if (!f) fail_msg("%s is missing: run scripts/fetch_vocab.sh (needs the npm registry) — not skipping", b);
    fclose(f);
    return b;
}

static const ref_encoding *find_ref(const char *name) {
    for (int k = 0; k < R.n_enc; k++)
        if (!strcmp(R.enc[k].name, name)) return &R.enc[k];
    fail_msg("no reference ids for %s", name);
    return NULL;
}

/* Encodes every reference chunk and compares counts + hashes (and all ids of chunk 0). */
static void check_against(const jl_tokenizer *t, const char *name) {
    const ref_encoding *e = find_ref(name);
    size_t total = 0;
    for (int k = 0; k < e->n_chunks; k++) {
        const ref_chunk *c = &e->chunks[k];
        assert_true(c->start + c->len <= R.text_len);
        int32_t *ids;
        size_t n;
        assert_int_equal(jl_tokenizer_encode(t, R.text + c->start, c->len, 0, &ids, &n), JL_OK);
        if (k == 0) {
            assert_int_equal(n, e->n_first);
            for (size_t i = 0; i < n; i++)
                if (ids[i] != e->first_ids[i]) fail_msg("%s chunk 0: id %zu is %d, expected %d", name, i, ids[i],
                                                        e->first_ids[i]);
        }
        if (n != c->n_ids || ids_hash(ids, n) != c->hash)
            fail_msg("%s chunk %d (bytes %zu..%zu): %zu ids, expected %zu (or different ids)", name, k, c->start,
                     c->start + c->len, n, c->n_ids);
        total += n;
        free(ids);
    }
    assert_true(total > 500000);
}

static void test_synthetic_text_is_unchanged(void **state) {
    (void)state;
    assert_int_equal(strlen(R.text), R.text_len);
    assert_true(fnv1a(R.text, R.text_len) == R.text_hash); /* else the generator changed: rerun make_tokenizer_refs */
}

static void test_gpt2_encoder_and_merges(void **state) {
    (void)state;
    jl_tokenizer *t;
    assert_int_equal(jl_tokenizer_import_gpt2(vocab_path("encoder.json"), vocab_path("vocab.bpe"), &t), JL_OK);
    assert_int_equal(jl_tokenizer_vocab_size(t), 50257 + JL_TOKENIZER_N_SPECIAL);
    assert_int_equal(jl_tokenizer_special(t, "<|endoftext|>"), 50256);
    assert_int_equal(jl_tokenizer_special(t, "<|bos|>"), 50257);
    check_against(t, "r50k_base");
    /* through tokenizer.json and back: the same ids */
    assert_int_equal(jl_tokenizer_save(t, tmp_path("gpt2.json")), JL_OK);
    jl_tokenizer *u;
    assert_int_equal(jl_tokenizer_load(tmp_path("gpt2.json"), &u), JL_OK);
    check_against(u, "r50k_base");
    jl_tokenizer_free(t);
    jl_tokenizer_free(u);
}

static void test_tiktoken_r50k(void **state) {
    (void)state;
    jl_tokenizer *t;
    assert_int_equal(jl_tokenizer_import_tiktoken(vocab_path("r50k_base.tiktoken"),
                                                  jl_tokenizer_pattern_text(JL_PATTERN_GPT2), &t), JL_OK);
    check_against(t, "r50k_base");
    jl_tokenizer_free(t);
}

static void test_tiktoken_cl100k(void **state) {
    (void)state;
    jl_tokenizer *t;
    assert_int_equal(jl_tokenizer_import_tiktoken(vocab_path("cl100k_base.tiktoken"),
                                                  jl_tokenizer_pattern_text(JL_PATTERN_CL100K), &t), JL_OK);
    assert_int_equal(jl_tokenizer_vocab_size(t), 100256 + JL_TOKENIZER_N_SPECIAL);
    check_against(t, "cl100k_base");
    assert_int_equal(jl_tokenizer_save(t, tmp_path("cl100k.json")), JL_OK);
    jl_tokenizer *u;
    assert_int_equal(jl_tokenizer_load(tmp_path("cl100k.json"), &u), JL_OK);
    check_against(u, "cl100k_base");
    jl_tokenizer_free(t);
    jl_tokenizer_free(u);
}

static void test_tiktoken_o200k(void **state) {
    (void)state;
    jl_tokenizer *t;
    assert_int_equal(jl_tokenizer_import_tiktoken(vocab_path("o200k_base.tiktoken"),
                                                  jl_tokenizer_pattern_text(JL_PATTERN_O200K), &t), JL_OK);
    check_against(t, "o200k_base");
    jl_tokenizer_free(t);
}

static void test_cli_import(void **state) {
    (void)state;
    char cmd[4096];
    char log[1024];
    snprintf(log, sizeof log, "%s", tmp_path("import.log")); /* tmp_path's buffers are reused */
    snprintf(cmd, sizeof cmd, "tokenizer import --tiktoken %s --output %s", vocab_path("cl100k_base.tiktoken"),
             tmp_path("cli_cl100k.json"));
    assert_int_equal(run_cli(cmd, log), 0); /* pattern inferred from the file name */
    jl_tokenizer *t;
    assert_int_equal(jl_tokenizer_load(tmp_path("cli_cl100k.json"), &t), JL_OK);
    assert_string_equal(jl_tokenizer_pattern(t), jl_tokenizer_pattern_text(JL_PATTERN_CL100K));
    jl_tokenizer_free(t);
    snprintf(cmd, sizeof cmd, "tokenizer import --encoder %s --merges %s --output %s", vocab_path("encoder.json"),
             vocab_path("vocab.bpe"), tmp_path("cli_gpt2.json"));
    assert_int_equal(run_cli(cmd, log), 0);
    /* corrupted inputs: clear errors naming the file and line */
    assert_int_equal(jl_write_file_atomic(tmp_path("bad.tiktoken"), "IQ== 0\nnot base64! 1\n", 22), JL_OK);
    snprintf(cmd, sizeof cmd, "tokenizer import --tiktoken %s --pattern cl100k --output %s", tmp_path("bad.tiktoken"),
             tmp_path("x.json"));
    assert_int_equal(run_cli(cmd, log), 2);
    char *out;
    size_t len;
    assert_int_equal(jl_read_file(log, &out, &len), JL_OK);
    assert_non_null(strstr(out, "bad.tiktoken:2"));
    free(out);
    assert_int_equal(jl_write_file_atomic(tmp_path("bad.bpe"), "#version: 0.2\nh e\nnotatoken1 x\n", 30), JL_OK);
    snprintf(cmd, sizeof cmd, "tokenizer import --encoder %s --merges %s --output %s", vocab_path("encoder.json"),
             tmp_path("bad.bpe"), tmp_path("x.json"));
    assert_int_equal(run_cli(cmd, log), 2);
    assert_int_equal(jl_read_file(log, &out, &len), JL_OK);
    assert_non_null(strstr(out, "bad.bpe:3"));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synthetic_text_is_unchanged),
        cmocka_unit_test(test_gpt2_encoder_and_merges),
        cmocka_unit_test(test_tiktoken_r50k),
        cmocka_unit_test(test_tiktoken_cl100k),
        cmocka_unit_test(test_tiktoken_o200k),
        cmocka_unit_test(test_cli_import),
    };
    return cmocka_run_group_tests(tests, load_refs, free_refs);
}
