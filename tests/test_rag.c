/* Retrieval: chunking and byte offsets, the jlhan tokenisation, BM25 with known answers in Chinese and English
 * (and the trigram tokenizer), JSONL records, incremental builds, a build killed half-way, dense ranking and
 * reciprocal-rank fusion, bad input. */
#include "testutil.h"
#include "jielong/rag.h"
#include "jielong/tokenizer.h"
#include "core/utf8.h"
#include <sys/stat.h>

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_chunking_and_offsets(void **s) {
    (void)s;
    char text[4096];
    char long_para[2048] = "";
    for (int i = 0; i < 30; i++) strcat(long_para, i % 3 == 2 ? "床前明月光，疑是地上霜。" : "The moon is bright. ");
    snprintf(text, sizeof text, "  # Title\nfirst paragraph\nstill first\n\n\n  second paragraph  \n# Heading\nafter "
                                "heading\n\n%s\n\n   \n", long_para);
    jl_chunk *ch;
    size_t n;
    assert_int_equal(jl_chunk_text(text, strlen(text), 60, 10, &ch, &n), JL_OK);
    assert_true(n >= 6);
    const char *want[] = {"# Title\nfirst paragraph\nstill first", "second paragraph", "# Heading\nafter heading"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ch[i].end - ch[i].start, strlen(want[i]));
        assert_memory_equal(text + ch[i].start, want[i], strlen(want[i]));
    }
    size_t para_start = (size_t)(strstr(text, long_para) - text), para_end = para_start + strlen(long_para);
    assert_int_equal(ch[3].start, para_start);
    assert_int_equal(ch[n - 1].end, para_end);
    for (size_t i = 3; i < n; i++) {
        char piece[512];
        size_t len = ch[i].end - ch[i].start;
        memcpy(piece, text + ch[i].start, len);
        piece[len] = '\0';
        assert_true(jl_utf8_count(piece) <= 60);                              /* at most chunk characters */
        assert_true(((unsigned char)text[ch[i].start] & 0xC0) != 0x80);       /* never inside a character */
        assert_true(ch[i].end == para_end || ((unsigned char)text[ch[i].end] & 0xC0) != 0x80);
        assert_true(text[ch[i].start] != ' ' && text[ch[i].end - 1] != ' ');  /* trimmed */
        if (i > 3) assert_true(ch[i].start < ch[i - 1].end);                  /* overlap with the previous piece */
    }
    free(ch);
    assert_int_equal(jl_chunk_text("", 0, 60, 10, &ch, &n), JL_OK);
    assert_int_equal(n, 0);
    free(ch);
    assert_int_equal(jl_chunk_text("x", 1, 60, 40, &ch, &n), JL_ERR_ARG); /* overlap must be < chunk/2 */
}

typedef struct {
    char toks[32][32];
    int han[32], joined[32], n;
} tok_list;

static const char *g_text;
static int keep_tok(void *user, const jl_rag_token *t) {
    tok_list *l = user;
    snprintf(l->toks[l->n], 32, "%.*s", (int)(t->end - t->start), g_text + t->start);
    l->han[l->n] = t->han;
    l->joined[l->n] = t->joined;
    return ++l->n >= 32;
}

static void test_tokenize(void **s) {
    (void)s;
    g_text = "《静夜思》Li Bai's poem, 床前；café 2024年";
    tok_list l = {0};
    jl_rag_tokenize(g_text, strlen(g_text), keep_tok, &l);
    const char *want[] = {"静", "夜", "思", "Li", "Bai", "s", "poem", "床", "前", "café", "2024", "年"};
    const int joined[] = {0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0};
    assert_int_equal(l.n, 12);
    for (int i = 0; i < 12; i++) {
        assert_string_equal(l.toks[i], want[i]);
        assert_int_equal(l.joined[i], joined[i]);
    }
}

static jl_index *build(const char *db, const char *const *inputs, int n, const char *tokenizer, jl_index_stats *st) {
    jl_index *ix;
    assert_int_equal(jl_index_open(db, 1, &ix), JL_OK);
    jl_index_options o;
    jl_index_defaults(&o);
    o.tokenizer = tokenizer;
    if (jl_index_build(ix, inputs, n, &o, NULL, NULL, NULL, st) != JL_OK) fail_msg("build: %s", jl_last_error());
    return ix;
}

/* The text of the best hit for q ("" when none). */
static const char *top(jl_index *ix, const char *q) {
    static char buf[512];
    jl_hit *h;
    int n;
    assert_int_equal(jl_index_query(ix, q, 3, JL_RANK_BM25, NULL, 0, &h, &n), JL_OK);
    snprintf(buf, sizeof buf, "%s", n ? h[0].text : "");
    jl_hits_free(h, n);
    return buf;
}

static const char *const zh_docs =
    "静夜思 李白\n床前明月光，疑是地上霜。举头望明月，低头思故乡。\n\n"
    "春晓 孟浩然\n春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。\n\n"
    "登鹳雀楼 王之涣\n白日依山尽，黄河入海流。欲穷千里目，更上一层楼。\n\n"
    "相思 王维\n红豆生南国，春来发几枝。愿君多采撷，此物最相思。\n";
static const char *const en_docs =
    "# Notes\n\nThe quick brown fox jumps over the lazy dog.\n\n"
    "SQLite is a small, fast, self-contained SQL database engine.\n\n"
    "Reciprocal rank fusion combines several rankings into one.\n";

static void test_bm25_known_answers(void **s) {
    (void)s;
    mkdir(tmp_path("docs"), 0755);
    write_file(tmp_path("docs/poems.txt"), zh_docs);
    write_file(tmp_path("docs/notes.md"), en_docs);
    write_file(tmp_path("docs/image.png"), "not text");
    const char *inputs[] = {tmp_path("docs")};
    jl_index_stats st;
    jl_index *ix = build(tmp_path("bm25.db"), inputs, 1, NULL, &st);
    assert_int_equal(st.files_added, 2);
    assert_int_equal(st.files_skipped, 1);
    assert_int_equal(st.passages_total, 8);
    assert_non_null(strstr(top(ix, "黄河入海"), "登鹳雀楼"));
    assert_non_null(strstr(top(ix, "《春晓》的作者是谁？"), "孟浩然"));
    assert_non_null(strstr(top(ix, "李白写了什么诗"), "静夜思"));
    assert_non_null(strstr(top(ix, "红豆"), "相思"));
    assert_non_null(strstr(top(ix, "what is SQLite?"), "database engine"));
    assert_non_null(strstr(top(ix, "FOX and Dog"), "quick brown fox"));
    assert_non_null(strstr(top(ix, "fusion of rankings"), "Reciprocal"));
    assert_string_equal(top(ix, "火星 zebra"), "");      /* nothing matches: no hits, no error */
    assert_string_equal(top(ix, "。，！"), "");          /* no searchable term */
    jl_hit *h;
    int n;
    assert_int_equal(jl_index_query(ix, "明月", 5, JL_RANK_BM25, NULL, 0, &h, &n), JL_OK);
    assert_int_equal(n, 1);
    assert_true(h[0].score > 0 && h[0].rank_bm25 == 1 && h[0].rank_dense == 0);
    assert_non_null(strstr(h[0].source, "docs/poems.txt"));
    char *file;
    size_t len;
    FILE *f = fopen(tmp_path("docs/poems.txt"), "rb");
    file = malloc(4096);
    len = fread(file, 1, 4096, f);
    fclose(f);
    assert_true(h[0].end <= (int64_t)len);
    assert_memory_equal(file + h[0].start, h[0].text, strlen(h[0].text)); /* offsets point at the passage */
    free(file);
    jl_hits_free(h, n);
    assert_int_equal(jl_index_query(ix, "x", 5, JL_RANK_DENSE, NULL, 0, &h, &n), JL_ERR_ARG); /* no embeddings */
    jl_index_close(ix);
    /* SQLite's trigram tokenizer: three characters at least per term */
    ix = build(tmp_path("tri.db"), inputs, 1, "trigram", &st);
    assert_non_null(strstr(top(ix, "黄河入海"), "登鹳雀楼"));
    assert_non_null(strstr(top(ix, "database"), "SQLite"));
    assert_string_equal(top(ix, "红豆"), ""); /* two characters: the trigram index cannot find them */
    jl_index_close(ix);
}

static void test_jsonl_and_bad_input(void **s) {
    (void)s;
    write_file(tmp_path("p.jsonl"), "{\"title\":\"静夜思\",\"author\":\"李白\",\"lines\":[\"床前明月光\",\"疑是地上霜\"],"
                                    "\"split\":\"train\"}\n\n{\"title\":\"春晓\",\"author\":\"孟浩然\",\"lines\":"
                                    "[\"春眠不觉晓\",\"处处闻啼鸟\"]}\n");
    jl_index *ix;
    assert_int_equal(jl_index_open(tmp_path("j.db"), 1, &ix), JL_OK);
    jl_index_options o;
    jl_index_defaults(&o);
    o.fields = "title,author,lines";
    jl_index_stats st;
    const char *in[] = {tmp_path("p.jsonl")};
    assert_int_equal(jl_index_build(ix, in, 1, &o, NULL, NULL, NULL, &st), JL_OK);
    assert_int_equal(st.passages_total, 2);
    jl_hit *h;
    int n;
    assert_int_equal(jl_index_query(ix, "春眠", 1, JL_RANK_BM25, NULL, 0, &h, &n), JL_OK);
    assert_string_equal(h[0].text, "春晓\n孟浩然\n春眠不觉晓 处处闻啼鸟");
    assert_int_equal(h[0].start, strchr(strchr(
                                     "{\"title\":\"静夜思\",\"author\":\"李白\",\"lines\":[\"床前明月光\",\"疑是地上霜\"],"
                                     "\"split\":\"train\"}\n\n", '\n') + 1, '\n') + 1 -
                                     "{\"title\":\"静夜思\",\"author\":\"李白\",\"lines\":[\"床前明月光\",\"疑是地上霜\"],"
                                     "\"split\":\"train\"}\n\n"); /* the record's line */
    jl_hits_free(h, n);
    /* different settings than the index was built with: refused */
    o.chunk_chars = 100;
    assert_int_equal(jl_index_build(ix, in, 1, &o, NULL, NULL, NULL, &st), JL_ERR_ARG);
    assert_non_null(strstr(jl_last_error(), "chunk_chars"));
    jl_index_defaults(&o);
    o.fields = "title,author,lines";
    /* a malformed line: FILE:LINE, and the index is as it was */
    write_file(tmp_path("bad.jsonl"), "{\"title\":\"a\"}\n{oops\n");
    const char *bad[] = {tmp_path("bad.jsonl")};
    assert_int_equal(jl_index_build(ix, bad, 1, &o, NULL, NULL, NULL, &st), JL_ERR_FORMAT);
    assert_non_null(strstr(jl_last_error(), "bad.jsonl:2: not a JSON object"));
    const char *missing[] = {tmp_path("nope.txt")};
    assert_int_equal(jl_index_build(ix, missing, 1, &o, NULL, NULL, NULL, &st), JL_ERR_IO);
    size_t np, nf;
    const char *em;
    assert_int_equal(jl_index_info(ix, &np, &nf, &em), JL_OK);
    assert_int_equal(np, 2);
    assert_int_equal(nf, 1);
    jl_index_close(ix);
    write_file(tmp_path("not.db"), "this is not a database at all, just some text long enough to be one");
    assert_int_equal(jl_index_open(tmp_path("not.db"), 0, &ix), JL_ERR_FORMAT);
    assert_int_equal(jl_index_open(tmp_path("absent.db"), 0, &ix), JL_ERR_IO);
    /* the CLI: exit 2 and one line for bad input */
    char args[1024];
    snprintf(args, sizeof args, "index build --input %s --out %s", tmp_path("bad.jsonl"), tmp_path("cli_bad.db"));
    assert_int_equal(run_cli(args, tmp_path("cli_bad.log")), 2);
    snprintf(args, sizeof args, "index query %s 春眠 --json -k 1", tmp_path("j.db"));
    assert_int_equal(run_cli(args, tmp_path("cli_q.log")), 0);
    FILE *f = fopen(tmp_path("cli_q.log"), "r");
    char line[2048];
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    json_object *obj = json_tokener_parse(line), *v;
    assert_non_null(obj);
    assert_true(json_object_object_get_ex(obj, "rank", &v) && json_object_get_int(v) == 1);
    assert_true(json_object_object_get_ex(obj, "text", &v) && strstr(json_object_get_string(v), "春晓"));
    json_object_put(obj);
}

static void test_incremental_and_killed_build(void **s) {
    (void)s;
    mkdir(tmp_path("inc"), 0755);
    write_file(tmp_path("inc/a.txt"), "alpha apple\n\napricot avocado\n");
    write_file(tmp_path("inc/b.txt"), "banana blueberry\n");
    const char *db = tmp_path("inc.db"), *in[] = {tmp_path("inc")};
    jl_index_stats st;
    jl_index *ix = build(db, in, 1, NULL, &st);
    assert_int_equal(st.passages_total, 3);
    jl_index_close(ix);
    ix = build(db, in, 1, NULL, &st); /* nothing changed */
    assert_int_equal(st.files_unchanged, 2);
    assert_int_equal(st.passages_added, 0);
    jl_index_close(ix);
    write_file(tmp_path("inc/a.txt"), "alpha almond\n"); /* changed: its passages replaced */
    write_file(tmp_path("inc/c.md"), "cherry coconut\n");  /* new */
    ix = build(db, in, 1, NULL, &st);
    assert_int_equal(st.files_replaced, 1);
    assert_int_equal(st.files_added, 1);
    assert_int_equal(st.files_unchanged, 1);
    assert_int_equal(st.passages_removed, 2);
    assert_int_equal(st.passages_total, 3);
    assert_string_equal(top(ix, "apricot"), "");
    assert_string_equal(top(ix, "almond"), "alpha almond");
    assert_string_equal(top(ix, "coconut"), "cherry coconut");
    jl_index_close(ix);
    /* a build killed half-way (SIGKILL after 40 passages of 200) leaves the index as it was */
    FILE *f = fopen(tmp_path("big.txt"), "w");
    for (int i = 0; i < 200; i++) fprintf(f, "zebra number %d grazes\n\n", i);
    fclose(f);
    char args[2048];
    snprintf(args, sizeof args, "index build --input %s --out %s --quiet", tmp_path("big.txt"), db);
    setenv("JL_INDEX_CRASH_AFTER", "40", 1);
    int rc = run_cli(args, tmp_path("killed.log"));
    unsetenv("JL_INDEX_CRASH_AFTER");
    assert_int_not_equal(rc, 0);
    assert_int_equal(jl_index_open(db, 0, &ix), JL_OK);
    assert_string_equal(top(ix, "zebra"), "");
    assert_string_equal(top(ix, "almond"), "alpha almond");
    size_t np, nf;
    const char *em;
    assert_int_equal(jl_index_info(ix, &np, &nf, &em), JL_OK);
    assert_int_equal(np, 3);
    assert_int_equal(nf, 3);
    jl_index_close(ix);
    assert_int_equal(run_cli(args, tmp_path("rebuilt.log")), 0); /* and the next build completes */
    assert_int_equal(jl_index_open(db, 0, &ix), JL_OK);
    assert_int_equal(jl_index_info(ix, &np, &nf, &em), JL_OK);
    assert_int_equal(np, 203);
    assert_non_null(strstr(top(ix, "zebra number 117"), "117"));
    jl_index_close(ix);
}

/* Dense ranking with a (random) tiny model, and RRF: each fused score is Σ 1/(60 + rank) of the two lists. */
static void test_dense_and_fused(void **s) {
    (void)s;
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, 1, 262, 128);
    assert_int_equal(jl_config_finish(&c), JL_OK);
    jl_model *m;
    assert_int_equal(jl_model_new(&c, &m), JL_OK);
    jl_model_init(m, 7);
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_bytes(&tok), JL_OK);
    jl_embedder *e;
    assert_int_equal(jl_embedder_new(m, tok, &e), JL_OK);
    float v1[64], v2[64];
    assert_int_equal(jl_embedder_dim(e), 64);
    assert_int_equal(jl_embed_text(e, "红豆生南国", v1), JL_OK);
    assert_int_equal(jl_embed_text(e, "红豆生南国", v2), JL_OK);
    double norm = 0;
    for (int i = 0; i < 64; i++) norm += v1[i] * v1[i], assert_true(v1[i] == v2[i]);
    assert_float_equal(norm, 1.0, 1e-5);
    write_file(tmp_path("dense.txt"), zh_docs);
    jl_index *ix;
    assert_int_equal(jl_index_open(tmp_path("dense.db"), 1, &ix), JL_OK);
    jl_index_options o;
    jl_index_defaults(&o);
    o.model_id = "weights-test";
    jl_index_stats st;
    const char *in[] = {tmp_path("dense.txt")};
    assert_int_equal(jl_index_build(ix, in, 1, &o, e, NULL, NULL, &st), JL_OK);
    assert_int_equal(st.embedded, 4);
    const char *third = "登鹳雀楼 王之涣\n白日依山尽，黄河入海流。欲穷千里目，更上一层楼。";
    jl_hit *h;
    int n;
    assert_int_equal(jl_index_query(ix, third, 4, JL_RANK_DENSE, e, 0, &h, &n), JL_OK);
    assert_int_equal(n, 4);
    assert_string_equal(h[0].text, third); /* the passage itself: cosine 1 */
    assert_float_equal(h[0].score, 1.0, 1e-4);
    for (int i = 1; i < n; i++) assert_true(h[i].score <= h[i - 1].score);
    jl_hits_free(h, n);
    assert_int_equal(jl_index_query(ix, "春眠 明月", 4, JL_RANK_FUSED, e, 0, &h, &n), JL_OK);
    assert_true(n >= 2);
    for (int i = 0; i < n; i++) {
        double want = (h[i].rank_bm25 ? 1.0 / (60 + h[i].rank_bm25) : 0) + (h[i].rank_dense ? 1.0 / (60 + h[i].rank_dense) : 0);
        assert_float_equal(h[i].score, want, 1e-12);
        assert_true(h[i].rank_dense > 0); /* every passage has an embedding */
        if (i) assert_true(h[i].score <= h[i - 1].score);
    }
    jl_hits_free(h, n);
    /* AUTO is BM25, with or without the model; building on without the model is refused */
    assert_int_equal(jl_index_query(ix, "春眠", 2, JL_RANK_AUTO, NULL, 0, &h, &n), JL_OK);
    assert_true(n >= 1 && h[0].rank_dense == 0);
    jl_hits_free(h, n);
    assert_int_equal(jl_index_query(ix, "春眠", 2, JL_RANK_AUTO, e, 0, &h, &n), JL_OK);
    assert_true(n >= 1);
    for (int i = 0; i < n; i++) assert_true(h[i].rank_dense == 0 && h[i].rank_bm25 == i + 1);
    jl_hits_free(h, n);
    assert_int_equal(jl_index_build(ix, in, 1, &o, NULL, NULL, NULL, &st), JL_ERR_ARG);
    o.model_id = "weights-other";
    assert_int_equal(jl_index_build(ix, in, 1, &o, e, NULL, NULL, &st), JL_ERR_ARG);
    jl_index_close(ix);
    jl_embedder_free(e);
    jl_tokenizer_free(tok);
    jl_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunking_and_offsets),
        cmocka_unit_test(test_tokenize),
        cmocka_unit_test(test_bm25_known_answers),
        cmocka_unit_test(test_jsonl_and_bad_input),
        cmocka_unit_test(test_incremental_and_killed_build),
        cmocka_unit_test(test_dense_and_fused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
