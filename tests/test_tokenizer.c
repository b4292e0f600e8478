/* Byte-level BPE: round trips, special tokens, tokenizer.json, training against a naive trainer, bad input. */
#include "testutil.h"
#include "core/rng.h"
#include "io/fileio.h"
#include "jielong/tokenizer.h"
#include "tokenizer/json_scan.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/synth.h"
#include "tokenizer/tok_internal.h"
#include <json-c/json.h>
#include <omp.h>

static void assert_round_trip(const jl_tokenizer *t, const char *text, size_t len, int allow_special) {
    int32_t *ids;
    size_t n;
    assert_int_equal(jl_tokenizer_encode(t, text, len, allow_special, &ids, &n), JL_OK);
    char *back;
    size_t back_len;
    assert_int_equal(jl_tokenizer_decode(t, ids, n, &back, &back_len), JL_OK);
    assert_int_equal(back_len, len);
    if (len) assert_memory_equal(back, text, len);
    free(back);
    free(ids);
}

static jl_tokenizer *train_on(const char *text, size_t len, int vocab) {
    jl_train_opts o = {.vocab_size = vocab};
    jl_tokenizer *t = NULL;
    const char *texts[] = {text};
    assert_int_equal(jl_tokenizer_train(texts, &len, 1, &o, &t), JL_OK);
    return t;
}

static jl_tokenizer *small_trained(void) {
    char *text;
    size_t len;
    assert_int_equal(jl_synth_text(3, 200000, &text, &len), JL_OK);
    jl_tokenizer *t = train_on(text, len, 1000);
    free(text);
    return t;
}

static void test_bytes_tokenizer_layout(void **state) {
    (void)state;
    jl_tokenizer *t;
    assert_int_equal(jl_tokenizer_bytes(&t), JL_OK);
    assert_int_equal(jl_tokenizer_vocab_size(t), 256 + JL_TOKENIZER_N_SPECIAL);
    for (int k = 0; k < JL_TOKENIZER_N_SPECIAL; k++)
        assert_int_equal(jl_tokenizer_special(t, jl_tokenizer_special_names[k]), 256 + k);
    assert_int_equal(jl_tokenizer_special(t, "<|foo|>"), -1);
    size_t len;
    const char *s = jl_tokenizer_token(t, 'A', &len);
    assert_int_equal(len, 1);
    assert_int_equal(s[0], 'A');
    assert_null(jl_tokenizer_token(t, 262, &len));
    assert_null(jl_tokenizer_token(t, -1, &len));
    int32_t *ids;
    size_t n;
    assert_int_equal(jl_tokenizer_encode(t, "hi<|end|>", 9, 1, &ids, &n), JL_OK);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 'h');
    assert_int_equal(ids[2], jl_tokenizer_special(t, "<|end|>"));
    free(ids);
    assert_int_equal(jl_tokenizer_encode(t, "hi<|end|>", 9, 0, &ids, &n), JL_OK);
    assert_int_equal(n, 9); /* plain text: one byte token each */
    free(ids);
    jl_tokenizer_free(t);
}

/* Any bytes at all — invalid UTF-8, NULs, lone continuation bytes, truncated sequences — come back unchanged. */
static void test_round_trip_any_bytes(void **state) {
    (void)state;
    jl_tokenizer *t = small_trained();
    jl_rng r;
    jl_rng_seed(&r, 11);
    static const char *const pieces[] = {"hello", " world", "你好", "\xE4\xBD", "\xBD", "\xFF\xFE", "\xC0\x80", "\n\n",
                                         "  ", "<|bos|>", "<|end", "|>", "\xF0\x9F\x98", "\xF0\x9F\x98\x80", "'s",
                                         "123456", "\t", "\r\n", "\xED\xA0\x80", "<|", "\x00"};
    char buf[4096];
    for (int iter = 0; iter < 300; iter++) {
        size_t len = 0, target = jl_rng_below(&r, sizeof buf - 64);
        while (len < target) {
            if (jl_rng_below(&r, 3) == 0) {
                buf[len++] = (char)jl_rng_below(&r, 256);
            } else {
                size_t k = jl_rng_below(&r, sizeof pieces / sizeof pieces[0]);
                size_t pl = k == sizeof pieces / sizeof pieces[0] - 1 ? 1 : strlen(pieces[k]);
                memcpy(buf + len, pieces[k], pl);
                len += pl;
            }
        }
        assert_round_trip(t, buf, len, 0);
        assert_round_trip(t, buf, len, 1);
    }
    assert_round_trip(t, "", 0, 0);
    jl_tokenizer_free(t);
}

static void test_special_tokens_only_when_allowed(void **state) {
    (void)state;
    jl_tokenizer *t = small_trained();
    const char *text = "<|user|>hi<|end|><|assistant|>yo<|end|><|foo|>";
    int32_t *ids;
    size_t n;
    assert_int_equal(jl_tokenizer_encode(t, text, strlen(text), 1, &ids, &n), JL_OK);
    assert_int_equal(ids[0], jl_tokenizer_special(t, "<|user|>"));
    int specials = 0;
    for (size_t i = 0; i < n; i++) specials += ids[i] >= 256 && ids[i] < 262;
    assert_int_equal(specials, 4); /* <|foo|> is not a special token: plain text */
    free(ids);
    assert_int_equal(jl_tokenizer_encode(t, text, strlen(text), 0, &ids, &n), JL_OK);
    for (size_t i = 0; i < n; i++) assert_false(ids[i] >= 256 && ids[i] < 262);
    free(ids);
    jl_tokenizer_free(t);
}

static void test_json_round_trip(void **state) {
    (void)state;
    jl_tokenizer *t = small_trained();
    char *json, *json2;
    assert_int_equal(jl_tokenizer_to_json(t, &json), JL_OK);
    jl_tokenizer *u;
    assert_int_equal(jl_tokenizer_from_json(json, strlen(json), &u), JL_OK);
    assert_int_equal(jl_tokenizer_vocab_size(u), jl_tokenizer_vocab_size(t));
    assert_int_equal(jl_tokenizer_to_json(u, &json2), JL_OK);
    assert_string_equal(json, json2);
    char *text;
    size_t len;
    assert_int_equal(jl_synth_text(99, 50000, &text, &len), JL_OK);
    int32_t *a, *b;
    size_t na, nb;
    assert_int_equal(jl_tokenizer_encode(t, text, len, 1, &a, &na), JL_OK);
    assert_int_equal(jl_tokenizer_encode(u, text, len, 1, &b, &nb), JL_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof *a);
    const char *path = tmp_path("tok.json");
    assert_int_equal(jl_tokenizer_save(t, path), JL_OK);
    jl_tokenizer *v;
    assert_int_equal(jl_tokenizer_load(path, &v), JL_OK);
    assert_int_equal(jl_tokenizer_special(v, "<|assistant|>"), 260);
    free(text);
    free(a);
    free(b);
    free(json);
    free(json2);
    jl_tokenizer_free(t);
    jl_tokenizer_free(u);
    jl_tokenizer_free(v);
}

/* HF's newer format writes merges as ["a", "b"] pairs; both forms load to the same tokenizer. */
static void test_merges_as_pairs(void **state) {
    (void)state;
    jl_tokenizer *t = small_trained();
    char *json;
    assert_int_equal(jl_tokenizer_to_json(t, &json), JL_OK);
    json_object *root = json_tokener_parse(json), *model, *merges;
    assert_true(json_object_object_get_ex(root, "model", &model));
    assert_true(json_object_object_get_ex(model, "merges", &merges));
    json_object *pairs = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(merges); i++) {
        const char *m = json_object_get_string(json_object_array_get_idx(merges, i)), *sp = strchr(m, ' ');
        json_object *pair = json_object_new_array();
        json_object_array_add(pair, json_object_new_string_len(m, (int)(sp - m)));
        json_object_array_add(pair, json_object_new_string(sp + 1));
        json_object_array_add(pairs, pair);
    }
    json_object_object_add(model, "merges", pairs);
    const char *converted = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
    jl_tokenizer *u;
    assert_int_equal(jl_tokenizer_from_json(converted, strlen(converted), &u), JL_OK);
    char *json2; /* a loaded file is written back as it was */
    assert_int_equal(jl_tokenizer_to_json(u, &json2), JL_OK);
    assert_string_equal(converted, json2);
    const char *text = "hello world, 你好 123456 <|end|>";
    int32_t *a, *b;
    size_t na, nb;
    assert_int_equal(jl_tokenizer_encode(t, text, strlen(text), 1, &a, &na), JL_OK);
    assert_int_equal(jl_tokenizer_encode(u, text, strlen(text), 1, &b, &nb), JL_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof *a);
    free(a);
    free(b);
    json_object_put(root);
    free(json);
    free(json2);
    jl_tokenizer_free(t);
    jl_tokenizer_free(u);
}

/* Repeated long lines make tokens of thousands of bytes; they must survive tokenizer.json. */
static void test_long_tokens_survive_json(void **state) {
    (void)state;
    size_t line = 1500, n = 60 * (line + 1);
    char *text = malloc(n);
    for (size_t i = 0; i < n; i++) text[i] = i % (line + 1) == line ? '\n' : '=';
    jl_tokenizer *t = train_on(text, n, 300);
    size_t longest = 0, len;
    for (int32_t id = 0; id < jl_tokenizer_vocab_size(t); id++)
        if (jl_tokenizer_token(t, id, &len) && len > longest) longest = len;
    assert_true(longest >= line);
    char *json;
    assert_int_equal(jl_tokenizer_to_json(t, &json), JL_OK);
    jl_tokenizer *u;
    assert_int_equal(jl_tokenizer_from_json(json, strlen(json), &u), JL_OK);
    int32_t *a, *b;
    size_t na, nb;
    assert_int_equal(jl_tokenizer_encode(t, text, n, 0, &a, &na), JL_OK);
    assert_int_equal(jl_tokenizer_encode(u, text, n, 0, &b, &nb), JL_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof *a);
    assert_true(na <= 2 * 60);
    free(a);
    free(b);
    free(json);
    free(text);
    jl_tokenizer_free(t);
    jl_tokenizer_free(u);
}

static void expect_bad_json(const char *json, const char *fragment) {
    jl_tokenizer *t = (jl_tokenizer *)1;
    assert_int_equal(jl_tokenizer_from_json(json, strlen(json), &t), JL_ERR_FORMAT);
    assert_null(t);
    if (!strstr(jl_last_error(), fragment)) fail_msg("error '%s' lacks '%s'", jl_last_error(), fragment);
}

static void test_corrupted_json_is_a_clear_error(void **state) {
    (void)state;
    jl_tokenizer *t;
    char *json;
    assert_int_equal(jl_tokenizer_bytes(&t), JL_OK);
    assert_int_equal(jl_tokenizer_to_json(t, &json), JL_OK);
    jl_tokenizer_free(t);
    size_t len = strlen(json);
    for (size_t cut = 0; cut < len; cut += len / 37 + 1) { /* every truncation fails cleanly */
        char *part = strndup(json, cut);
        assert_int_not_equal(jl_tokenizer_from_json(part, cut, &t), JL_OK);
        assert_true(strlen(jl_last_error()) > 0);
        free(part);
    }
    free(json);
    expect_bad_json("[1,2]", "not a JSON object");
    expect_bad_json("{\"model\":{\"type\":\"WordPiece\"}}", "WordPiece");
    expect_bad_json("{\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}}}",
                    "fewer than the 256 bytes");
    expect_bad_json("{\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":\"x\"}}}",
                    "model.vocab['a']");
    expect_bad_json("{\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"ByteLevel\"},"
                    "{\"type\":\"BertPreTokenizer\"}]},\"model\":{\"type\":\"BPE\",\"vocab\":{}}}",
                    "pre_tokenizer.pretokenizers[1]: pre-tokenizer type 'BertPreTokenizer' is not supported");
    expect_bad_json("{\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},{\"type\":"
                    "\"StripAccents\"}]},\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}}}",
                    "normalizer.normalizers[1]: normalizer type 'StripAccents'");
    expect_bad_json("{\"decoder\":{\"type\":\"WordPiece\"},\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}}}",
                    "decoder: decoder type 'WordPiece'");
    expect_bad_json("{\"post_processor\":{\"type\":\"BertProcessing\"},\"model\":{\"type\":\"BPE\",\"vocab\":"
                    "{\"a\":0}}}", "post_processor: post-processor type 'BertProcessing'");
    expect_bad_json("{\"model\":{\"type\":\"BPE\",\"vocab\":{}}}", "empty");
    expect_bad_json("{\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"model\":{\"vocab\":{\"a\":300}}}", "byte 0x00");
    /* a byte-level vocabulary must have all 256 bytes; a merge must name vocabulary tokens */
    assert_int_equal(jl_tokenizer_bytes(&t), JL_OK);
    assert_int_equal(jl_tokenizer_to_json(t, &json), JL_OK);
    jl_tokenizer_free(t);
    char *merge = strstr(json, "\"merges\":[]");
    assert_non_null(merge);
    char *bad = malloc(strlen(json) + 64);
    sprintf(bad, "%.*s\"merges\":[\"a zz\"]%s", (int)(merge - json), json, merge + strlen("\"merges\":[]"));
    expect_bad_json(bad, "model.merges[0]");
    char *regex = strstr(json, "\"Regex\":\"");
    sprintf(bad, "%.*s\"Regex\":\"(unclosed\"}%s", (int)(regex - json), json, strstr(regex, ",\"behavior\""));
    expect_bad_json(bad, "regex");
    free(bad);
    free(json);
    assert_int_equal(jl_tokenizer_load(tmp_path("missing.json"), &t), JL_ERR_IO);
    assert_non_null(strstr(jl_last_error(), "missing.json"));
}

/* model.vocab and model.merges are read from the text (tokenizer/json_scan.c), the rest by json-c: the same
 * tokenizer whatever the layout — model first, merges before vocab, pretty-printed, every non-ASCII character
 * written as a \u escape — and strict JSON errors with their byte offsets. */
static char *escape_non_ascii(const char *s) {
    char *o = malloc(6 * strlen(s) + 1), *w = o;
    for (size_t i = 0; s[i];) {
        uint32_t cp;
        size_t l = tok_utf8_char(s + i, strlen(s + i), &cp);
        if (cp < 0x80) *w++ = s[i];
        else if (cp < 0x10000) w += sprintf(w, "\\u%04x", (unsigned)cp);
        else w += sprintf(w, "\\u%04X\\u%04X", 0xD800 + ((cp - 0x10000) >> 10), 0xDC00 + ((cp - 0x10000) & 0x3FF));
        i += l;
    }
    *w = '\0';
    return o;
}

static void test_json_reader_layouts(void **state) {
    (void)state;
    jl_tokenizer *t = small_trained();
    char *json;
    assert_int_equal(jl_tokenizer_to_json(t, &json), JL_OK);
    json_object *root = json_tokener_parse(json), *model, *vocab, *merges;
    assert_true(json_object_object_get_ex(root, "model", &model));
    assert_true(json_object_object_get_ex(model, "vocab", &vocab));
    assert_true(json_object_object_get_ex(model, "merges", &merges));
    assert_true(json_object_array_length(merges) > 500);
    json_object *m2 = json_object_new_object(), *r2 = json_object_new_object();
    json_object_object_add(m2, "merges", json_object_get(merges));
    json_object_object_add(m2, "type", json_object_new_string("BPE"));
    json_object_object_add(m2, "vocab", json_object_get(vocab));
    json_object_object_add(r2, "model", m2);
    json_object_object_foreach(root, key, val)
        if (strcmp(key, "model")) json_object_object_add(r2, key, json_object_get(val));
    char *moved = escape_non_ascii(json_object_to_json_string_ext(r2, JSON_C_TO_STRING_PRETTY));
    assert_non_null(strstr(moved, "\\u0120")); /* "Ġ": the byte-level space, escaped */
    jl_tokenizer *u;
    assert_int_equal(jl_tokenizer_from_json(moved, strlen(moved), &u), JL_OK);
    char *text;
    size_t len;
    assert_int_equal(jl_synth_text(5, 50000, &text, &len), JL_OK);
    int32_t *a, *b;
    size_t na, nb;
    assert_int_equal(jl_tokenizer_encode(t, text, len, 0, &a, &na), JL_OK);
    assert_int_equal(jl_tokenizer_encode(u, text, len, 0, &b, &nb), JL_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof *a);
    free(a);
    free(b);
    free(text);
    free(moved);
    json_object_put(r2);
    json_object_put(root);
    free(json);
    jl_tokenizer_free(t);
    jl_tokenizer_free(u);
    /* strings: escapes, surrogate pairs; a lone surrogate is refused */
    char out[16];
    size_t i = 0;
    assert_int_equal(tok_json_string("\"a\\u00e9\\ud83d\\ude00\\n\"", 23, &i, out), 8);
    assert_memory_equal(out, "a\xC3\xA9\xF0\x9F\x98\x80\n", 9);
    assert_int_equal(i, 23);
    i = 0;
    assert_int_equal(tok_json_string("\"\\ud83d x\"", 10, &i, out), -1);
    /* strict JSON, the offset of the first fault */
    expect_bad_json("{\"model\":{\"vocab\":{\"a\":0,}}}", "invalid JSON at byte 25");
    expect_bad_json("{\"model\":{\"vocab\":{\"a\":0}}} x", "invalid JSON at byte 28");
    expect_bad_json("{\"model\":{\"vocab\":{\"a\":01}}}", "invalid JSON at byte 24");
    expect_bad_json("{\"model\":{\"merges\":[\"a b\"", "truncated");
    expect_bad_json("{\"model\":{\"vocab\":{\"a\":1.5}}}", "model.vocab['a']: id is not a valid integer");
    expect_bad_json("{\"model\":{\"vocab\":{\"a\":0,\"\\u0061\":1}}}", "model.vocab: 'a' is listed twice");
    expect_bad_json("{\"model\":{\"vocab\":{\"a\":0,\"b\":1},\"merges\":[[\"a\",\"b\",\"c\"]]}}", "model.merges[0]");
    /* a later "model" replaces an earlier one, as json-c keeps the last key */
    expect_bad_json("{\"model\":{\"vocab\":{\"a\":0}},\"model\":{\"vocab\":{}}}", "empty");
}

/* ---- training, checked against a naive trainer that recounts every pair after every merge ---- */
typedef struct {
    char *bytes[4096];
    size_t len[4096];
    long count[4096];
    int n;
} naive_words;

static jl_status collect_word(void *user, const char *s, size_t n) {
    naive_words *w = user;
    for (int k = 0; k < w->n; k++)
        if (w->len[k] == n && !memcmp(w->bytes[k], s, n)) {
            w->count[k]++;
            return JL_OK;
        }
    assert_true(w->n < 4096);
    w->bytes[w->n] = strndup(s, n);
    w->len[w->n] = n;
    w->count[w->n++] = 1;
    return JL_OK;
}

static void test_training_matches_naive_bpe(void **state) {
    (void)state;
    char *text;
    size_t len;
    assert_int_equal(jl_synth_text(5, 20000, &text, &len), JL_OK);
    const int vocab = 262 + 300;
    jl_tokenizer *t = train_on(text, len, vocab);
    naive_words *w = calloc(1, sizeof *w);
    assert_int_equal(tok_pretokenize(t->re, text, len, collect_word, w), JL_OK);
    int32_t *syms[4096];
    size_t n_syms[4096];
    for (int k = 0; k < w->n; k++) {
        syms[k] = malloc(w->len[k] * sizeof(int32_t));
        for (size_t i = 0; i < w->len[k]; i++) syms[k][i] = (unsigned char)w->bytes[k][i];
        n_syms[k] = w->len[k];
    }
    static long counts[1024][1024]; /* ids stay below 1024 here */
    assert_int_equal(t->n_merges, vocab - 262);
    for (int m = 0; m < t->n_merges; m++) {
        memset(counts, 0, sizeof counts);
        for (int k = 0; k < w->n; k++)
            for (size_t i = 0; i + 1 < n_syms[k]; i++) counts[syms[k][i]][syms[k][i + 1]] += w->count[k];
        int ba = 0, bb = 0;
        for (int a = 0; a < 1024; a++)
            for (int b = 0; b < 1024; b++)
                if (counts[a][b] > counts[ba][bb]) ba = a, bb = b; /* strict: ties keep the smaller (a, b) */
        assert_int_equal(t->merge_left[m], ba);
        assert_int_equal(t->merge_right[m], bb);
        int32_t c = 262 + m;
        for (int k = 0; k < w->n; k++) {
            size_t out = 0;
            for (size_t i = 0; i < n_syms[k];) {
                if (i + 1 < n_syms[k] && syms[k][i] == ba && syms[k][i + 1] == bb) syms[k][out++] = c, i += 2;
                else syms[k][out++] = syms[k][i++];
            }
            n_syms[k] = out;
        }
    }
    for (int k = 0; k < w->n; k++) {
        free(syms[k]);
        free(w->bytes[k]);
    }
    free(w);
    free(text);
    jl_tokenizer_free(t);
}

static void test_training_is_deterministic_and_bounded(void **state) {
    (void)state;
    char *text;
    size_t len;
    assert_int_equal(jl_synth_text(8, 1500000, &text, &len), JL_OK); /* large enough for the parallel paths */
    jl_tokenizer *a = train_on(text, len, 2000);
    omp_set_num_threads(1);
    jl_tokenizer *b = train_on(text, len, 2000);
    int32_t *ia, *ib;
    size_t na, nb;
    assert_int_equal(jl_tokenizer_encode(b, text, len, 0, &ib, &nb), JL_OK); /* one thread */
    omp_set_num_threads(2);
    assert_int_equal(jl_tokenizer_encode(a, text, len, 0, &ia, &na), JL_OK); /* two threads, split at newlines */
    char *ja, *jb;
    assert_int_equal(jl_tokenizer_to_json(a, &ja), JL_OK);
    assert_int_equal(jl_tokenizer_to_json(b, &jb), JL_OK);
    assert_string_equal(ja, jb);
    assert_int_equal(na, nb);
    assert_memory_equal(ia, ib, na * sizeof *ia);
    assert_int_equal(jl_tokenizer_vocab_size(a), 2000);
    /* a tiny corpus runs out of pairs: a smaller vocabulary, not an error */
    jl_tokenizer *c = train_on("abab", 4, 1000);
    assert_int_equal(jl_tokenizer_vocab_size(c), 262 + 2); /* "ab", then "abab" */
    free(ja);
    free(jb);
    free(ia);
    free(ib);
    free(text);
    jl_tokenizer_free(a);
    jl_tokenizer_free(b);
    jl_tokenizer_free(c);
}

static void test_training_bad_input(void **state) {
    (void)state;
    jl_train_opts o = {.vocab_size = 261};
    jl_bpe_trainer *tr;
    assert_int_equal(jl_bpe_trainer_new(&o, &tr), JL_ERR_ARG);
    assert_non_null(strstr(jl_last_error(), "262"));
    o.vocab_size = 300;
    jl_tokenizer *t;
    size_t zero = 0;
    const char *texts[] = {""};
    assert_int_equal(jl_tokenizer_train(texts, &zero, 1, &o, &t), JL_ERR_ARG);
    assert_non_null(strstr(jl_last_error(), "empty corpus"));
    o.pattern = "([unclosed";
    assert_int_equal(jl_bpe_trainer_new(&o, &tr), JL_ERR_FORMAT);
}

/* One pre-token of megabytes (a letter run, a space run, Chinese without punctuation): O(n log n) merges. */
static void test_very_long_pieces(void **state) {
    (void)state;
    jl_tokenizer *t = small_trained();
    size_t n = JL_SANITIZED ? 300000 : 3000000;
    char *text = malloc(n + 1);
    for (size_t i = 0; i < n; i++) text[i] = 'a' + (char)(i % 3 == 0);
    assert_round_trip(t, text, n, 0);
    memset(text, ' ', n);
    text[n - 1] = 'x';
    assert_round_trip(t, text, n, 0);
    for (size_t i = 0; i + 3 <= n; i += 3) memcpy(text + i, i % 2 ? "\xE5\xA5\xBD" : "\xE4\xBD\xA0", 3);
    assert_round_trip(t, text, n - n % 3, 0);
    free(text);
    jl_tokenizer_free(t);
}

/* The "han" pattern: merges never cross a Chinese character, while the plain cl100k one merges frequent pairs. */
/* #16 item 3: a Split regex that matches empty at the end ($, \z) must not read past the text. */
static void test_empty_match_at_end(void **state) {
    (void)state;
    jl_tokenizer *t;
    char *json;
    assert_int_equal(jl_tokenizer_bytes(&t), JL_OK);
    assert_int_equal(jl_tokenizer_to_json(t, &json), JL_OK);
    jl_tokenizer_free(t);
    static const char *const regexes[] = {"[a-z]|$", "[a-z]|\\\\z", "$|[a-z]", "x*"};
    for (size_t r = 0; r < sizeof regexes / sizeof regexes[0]; r++) {
        const char *at = strstr(json, "\"Regex\":\""), *end = strstr(at, "\"},\"behavior\"");
        char *bad = malloc(strlen(json) + 64);
        sprintf(bad, "%.*s\"Regex\":\"%s%s", (int)(at - json), json, regexes[r], end);
        if (jl_tokenizer_from_json(bad, strlen(bad), &t) != JL_OK) fail_msg("%s", jl_last_error());
        int32_t *ids;
        size_t n;
        assert_int_equal(jl_tokenizer_encode(t, "ab<|end|>cd", 11, 1, &ids, &n), JL_OK);
        assert_int_equal(n, 5);
        assert_int_equal(ids[0], 'a');
        assert_int_equal(ids[1], 'b');
        assert_int_equal(ids[2], jl_tokenizer_special(t, "<|end|>"));
        assert_int_equal(ids[3], 'c');
        assert_int_equal(ids[4], 'd');
        free(ids);
        free(bad);
        jl_tokenizer_free(t);
    }
    free(json);
}

/* A small character-level tokenizer.json: vocab a b - a- -b -- x <x> (merges "a -", "- b", "- -"), with the
 * given pre_tokenizer / normalizer / added-token flags spliced in. */
static jl_tokenizer *char_level(const char *pre, const char *norm, const char *added_flags) {
    char json[2048];
    snprintf(json, sizeof json,
             "{\"added_tokens\":[{\"id\":7,\"content\":\"<x>\",\"special\":true,\"normalized\":false%s}],"
             "\"normalizer\":%s,\"pre_tokenizer\":%s,\"decoder\":null,\"post_processor\":null,"
             "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"-\":2,\"a-\":3,\"-b\":4,\"--\":5,\"x\":6},"
             "\"merges\":[\"a -\",\"- b\",\"- -\"]}}",
             added_flags, norm, pre);
    jl_tokenizer *t;
    if (jl_tokenizer_from_json(json, strlen(json), &t) != JL_OK) fail_msg("%s", jl_last_error());
    return t;
}

static void expect_ids(jl_tokenizer *t, const char *text, const char *want) {
    int32_t *ids;
    size_t n;
    assert_int_equal(jl_tokenizer_encode(t, text, strlen(text), 1, &ids, &n), JL_OK);
    char got[256] = "";
    for (size_t i = 0; i < n; i++) snprintf(got + strlen(got), sizeof got - strlen(got), i ? " %d" : "%d", ids[i]);
    if (strcmp(got, want)) fail_msg("'%s': ids '%s', expected '%s'", text, got, want);
    free(ids);
    jl_tokenizer_free(t);
}

#define SPLIT(b, inv) "{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},\"behavior\":\"" b "\",\"invert\":" inv "}"

static void test_split_behaviors(void **state) {
    (void)state;
    expect_ids(char_level("null", "null", ""), "a-b", "3 1");                               /* a- b: no split */
    expect_ids(char_level(SPLIT("Isolated", "false"), "null", ""), "a-b", "0 2 1");
    expect_ids(char_level(SPLIT("Removed", "false"), "null", ""), "a-b", "0 1");
    expect_ids(char_level(SPLIT("Removed", "true"), "null", ""), "a-b-", "2 2");           /* only the matches */
    expect_ids(char_level(SPLIT("MergedWithPrevious", "false"), "null", ""), "a-b", "3 1");
    expect_ids(char_level(SPLIT("MergedWithNext", "false"), "null", ""), "a-b", "0 4");
    expect_ids(char_level(SPLIT("Contiguous", "false"), "null", ""), "a--b", "0 5 1");
    expect_ids(char_level("{\"type\":\"Sequence\",\"pretokenizers\":[" SPLIT("Isolated", "false") ","
                          "{\"type\":\"Digits\",\"individual_digits\":true}]}", "null", ""), "a-b", "0 2 1");
}

static void test_normalizers_and_added_flags(void **state) {
    (void)state;
    /* NFKC folds fullwidth letters, Lowercase folds case; Replace and Prepend as Llama 2 uses them */
    expect_ids(char_level("null", "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFKC\"},{\"type\":\"Lowercase\"}]}",
                          ""), "\xEF\xBC\xA1-B", "3 1");
    expect_ids(char_level("null", "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"a\"},"
                          "{\"type\":\"Replace\",\"pattern\":{\"String\":\"=\"},\"content\":\"-\"}]}", ""), "=b",
               "3 1");
    expect_ids(char_level("null", "{\"type\":\"Strip\",\"strip_left\":true,\"strip_right\":true}", ""), " \tab \n",
               "0 1");
    /* added tokens: plain, lstrip/rstrip eat the whitespace around them, single_word only between non-words */
    expect_ids(char_level("null", "null", ""), "a<x>b", "0 7 1");
    expect_ids(char_level("null", "null", ",\"lstrip\":true,\"rstrip\":true"), "a  <x> b", "0 7 1");
    expect_ids(char_level("null", "null", ",\"single_word\":true"), "-<x>-", "2 7 2");
    jl_tokenizer *t = char_level("null", "null", ",\"single_word\":true");
    int32_t *ids;
    size_t n;
    assert_int_equal(jl_tokenizer_encode(t, "a<x>b", 5, 1, &ids, &n), JL_OK);
    for (size_t i = 0; i < n; i++) assert_int_not_equal(ids[i], 7); /* inside a word: not the added token */
    free(ids);
    jl_tokenizer_free(t);
}

static void test_han_pattern_one_token_per_character(void **state) {
    (void)state;
    const char *poem = "春眠不觉晓，处处闻啼鸟。\n夜来风雨声，花落知多少。\n";
    char text[8192] = "";
    for (int i = 0; i < 40; i++) strcat(text, poem);
    size_t len = strlen(text);
    jl_train_opts o = {.vocab_size = 400, .pattern = jl_tokenizer_pattern_text(JL_PATTERN_HAN)};
    jl_tokenizer *han = NULL, *plain = train_on(text, len, 400);
    const char *texts[] = {text};
    assert_int_equal(jl_tokenizer_train(texts, &len, 1, &o, &han), JL_OK);
    assert_int_equal(jl_tokenizer_pattern_by_name("han"), JL_PATTERN_HAN);
    int32_t *ids;
    size_t n, n_plain;
    assert_int_equal(jl_tokenizer_encode(han, "春眠不觉晓，", strlen("春眠不觉晓，"), 0, &ids, &n), JL_OK);
    assert_int_equal(n, 6); /* five characters and the comma */
    for (size_t i = 0; i < 5; i++) {
        size_t tl;
        jl_tokenizer_token(han, ids[i], &tl);
        assert_int_equal(tl, 3); /* one UTF-8 Han character each */
    }
    free(ids);
    assert_int_equal(jl_tokenizer_encode(plain, "春眠不觉晓，", strlen("春眠不觉晓，"), 0, &ids, &n_plain), JL_OK);
    assert_true(n_plain < 6);
    free(ids);
    assert_round_trip(han, text, len, 0);
    jl_tokenizer_free(han);
    jl_tokenizer_free(plain);
}

static void test_decode_rejects_bad_ids(void **state) {
    (void)state;
    jl_tokenizer *t;
    assert_int_equal(jl_tokenizer_bytes(&t), JL_OK);
    int32_t ids[] = {65, 262};
    char *text;
    size_t len;
    assert_int_equal(jl_tokenizer_decode(t, ids, 2, &text, &len), JL_ERR_ARG);
    assert_non_null(strstr(jl_last_error(), "262"));
    jl_tokenizer_free(t);
}

static void test_cli_train_encode_decode(void **state) {
    (void)state;
    char *text;
    size_t len;
    assert_int_equal(jl_synth_text(4, 100000, &text, &len), JL_OK);
    text[100] = (char)0xFF; /* invalid UTF-8 in the input must still round-trip */
    assert_int_equal(jl_write_file_atomic(tmp_path("in.txt"), text, len), JL_OK);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "tokenizer train --input %s --vocab-size 600 --output %s --quiet", tmp_path("in.txt"),
             tmp_path("cli_tok.json"));
    assert_int_equal(run_cli(cmd, tmp_path("train.log")), 0);
    snprintf(cmd, sizeof cmd, "tokenizer encode --tokenizer %s --input %s --output %s", tmp_path("cli_tok.json"),
             tmp_path("in.txt"), tmp_path("ids.txt"));
    assert_int_equal(run_cli(cmd, tmp_path("enc.log")), 0);
    snprintf(cmd, sizeof cmd, "tokenizer decode --tokenizer %s --input %s > %s", tmp_path("cli_tok.json"),
             tmp_path("ids.txt"), tmp_path("out.txt"));
    assert_int_equal(run_cli(cmd, NULL), 0);
    char *back;
    size_t back_len;
    assert_int_equal(jl_read_file(tmp_path("out.txt"), &back, &back_len), JL_OK);
    assert_int_equal(back_len, len);
    assert_memory_equal(back, text, len);
    free(back);
    snprintf(cmd, sizeof cmd, "tokenizer encode --tokenizer %s --show --allow-special < /dev/null",
             tmp_path("cli_tok.json"));
    assert_int_equal(run_cli(cmd, tmp_path("show.log")), 0);
    snprintf(cmd, sizeof cmd, "echo 'hi <|end|>' | %s tokenizer encode --tokenizer %s --show --allow-special > %s",
             getenv("JL_BIN") ? getenv("JL_BIN") : "build/jielong", tmp_path("cli_tok.json"), tmp_path("show.txt"));
    assert_int_equal(system(cmd), 0);
    assert_int_equal(jl_read_file(tmp_path("show.txt"), &back, &back_len), JL_OK);
    assert_non_null(strstr(back, "261\t<|end|>\n"));
    assert_non_null(strstr(back, "\t\\n\n"));
    free(back);
    free(text);
}

static void test_cli_bad_input(void **state) {
    (void)state;
    char log[1024];
    snprintf(log, sizeof log, "%s", tmp_path("bad.log")); /* tmp_path's buffers are reused */
    assert_int_equal(jl_write_file_atomic(tmp_path("empty.txt"), "", 0), JL_OK);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "tokenizer train --input %s --vocab-size 300 --output %s", tmp_path("empty.txt"),
             tmp_path("x.json"));
    assert_int_equal(run_cli(cmd, log), 2);
    snprintf(cmd, sizeof cmd, "tokenizer train --input %s --vocab-size 100 --output %s", tmp_path("empty.txt"),
             tmp_path("x.json"));
    assert_int_equal(run_cli(cmd, log), 2);
    assert_int_equal(jl_write_file_atomic(tmp_path("corrupt.json"), "{\"model\": {", 11), JL_OK);
    snprintf(cmd, sizeof cmd, "tokenizer encode --tokenizer %s < /dev/null", tmp_path("corrupt.json"));
    assert_int_equal(run_cli(cmd, log), 2);
    char *out;
    size_t len;
    assert_int_equal(jl_read_file(log, &out, &len), JL_OK);
    assert_non_null(strstr(out, "corrupt.json"));
    free(out);
    jl_tokenizer *t;
    assert_int_equal(jl_tokenizer_bytes(&t), JL_OK);
    assert_int_equal(jl_tokenizer_save(t, tmp_path("bytes.json")), JL_OK);
    jl_tokenizer_free(t);
    snprintf(cmd, sizeof cmd, "tokenizer decode --tokenizer %s --input %s", tmp_path("bytes.json"),
             tmp_path("corrupt.json"));
    assert_int_equal(run_cli(cmd, log), 2); /* not ids */
    assert_int_equal(run_cli("tokenizer frobnicate", log), 2);
    assert_int_equal(run_cli("tokenizer import --output x.json", log), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_tokenizer_layout),
        cmocka_unit_test(test_round_trip_any_bytes),
        cmocka_unit_test(test_special_tokens_only_when_allowed),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_long_tokens_survive_json),
        cmocka_unit_test(test_merges_as_pairs),
        cmocka_unit_test(test_corrupted_json_is_a_clear_error),
        cmocka_unit_test(test_json_reader_layouts),
        cmocka_unit_test(test_training_matches_naive_bpe),
        cmocka_unit_test(test_training_is_deterministic_and_bounded),
        cmocka_unit_test(test_training_bad_input),
        cmocka_unit_test(test_very_long_pieces),
        cmocka_unit_test(test_han_pattern_one_token_per_character),
        cmocka_unit_test(test_decode_rejects_bad_ids),
        cmocka_unit_test(test_cli_train_encode_decode),
        cmocka_unit_test(test_cli_bad_input),
        cmocka_unit_test(test_empty_match_at_end),
        cmocka_unit_test(test_split_behaviors),
        cmocka_unit_test(test_normalizers_and_added_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
