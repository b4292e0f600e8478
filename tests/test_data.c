/* Datasets: JSONL readers on good and broken files, chat template segments, the poem corpus loader and the
 * derived datasets (determinism, no held-out poem in training files), and the data CLI. */
#include "testutil.h"
#include "jielong/dataset.h"
#include "data/poem_tasks.h"
#include "core/utf8.h"
#include "jielong/synth.h"
#include "io/fileio.h"
#include <sys/stat.h>

static const char *write_tmp(const char *name, const char *content) {
    const char *path = tmp_path(name);
    assert_int_equal(jl_write_file_atomic(path, content, strlen(content)), JL_OK);
    return path;
}

static char *slurp(const char *path) {
    char *data;
    size_t len;
    assert_int_equal(jl_read_file(path, &data, &len), JL_OK);
    return data;
}

/* ---- readers ---- */

static void test_sft_reader_good(void **state) {
    (void)state;
    const char *path = write_tmp("good_sft.jsonl",
        "{\"messages\":[{\"role\":\"system\",\"content\":\"你是接龙。\"},{\"role\":\"user\",\"content\":\"你好\"},"
        "{\"role\":\"assistant\",\"content\":\"你好！\"},{\"role\":\"user\",\"content\":\"再见\"},"
        "{\"role\":\"assistant\",\"content\":\"再见！\"}],\"task\":\"chat\"}\r\n"
        "\n"
        "{\"instruction\":\"接下一句\",\"input\":\"床前明月光\",\"output\":\"疑是地上霜。\"}\n"
        "{\"instruction\":\"写一首诗\",\"output\":\"春眠不觉晓\"}");
    jl_sft_set *set;
    jl_jsonl_stats stats;
    assert_int_equal(jl_sft_load(path, NULL, &set, &stats), JL_OK);
    assert_int_equal(jl_sft_count(set), 3);
    assert_int_equal(stats.lines, 4);
    assert_int_equal(stats.records, 3);
    jl_conversation c = jl_sft_get(set, 0);
    assert_int_equal(c.n_turns, 5);
    assert_int_equal(c.turns[0].role, JL_ROLE_SYSTEM);
    assert_string_equal(c.turns[4].content, "再见！");
    c = jl_sft_get(set, 1);
    assert_int_equal(c.n_turns, 2);
    assert_string_equal(c.turns[0].content, "接下一句\n\n床前明月光");
    assert_int_equal(c.turns[1].role, JL_ROLE_ASSISTANT);
    c = jl_sft_get(set, 2);
    assert_string_equal(c.turns[0].content, "写一首诗");
    assert_int_equal(jl_sft_get(set, 3).n_turns, 0);
    jl_sft_free(set);
    jl_jsonl_options first_two = {0, 2};
    assert_int_equal(jl_sft_load(path, &first_two, &set, NULL), JL_OK);
    assert_int_equal(jl_sft_count(set), 2);
    jl_sft_free(set);
}

/* One bad line after a good one: stop mode names file:2 and the field; skip mode keeps the good lines. */
static void expect_sft_error(const char *bad_line, const char *message_part) {
    char content[2048];
    snprintf(content, sizeof content,
             "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"}]}\n%s\n"
             "{\"instruction\":\"c\",\"output\":\"d\"}\n", bad_line);
    const char *path = write_tmp("bad_sft.jsonl", content);
    jl_sft_set *set = (jl_sft_set *)1;
    assert_int_equal(jl_sft_load(path, NULL, &set, NULL), JL_ERR_FORMAT);
    assert_null(set);
    char where[1100];
    snprintf(where, sizeof where, "%s:2: ", path);
    if (!strstr(jl_last_error(), where) || !strstr(jl_last_error(), message_part))
        fail_msg("line %s: got '%s', want '%s' and '%s'", bad_line, jl_last_error(), where, message_part);
    jl_jsonl_options skip = {1, 0};
    jl_jsonl_stats stats;
    assert_int_equal(jl_sft_load(path, &skip, &set, &stats), JL_OK);
    assert_int_equal(jl_sft_count(set), 2);
    assert_int_equal(stats.skipped, 1);
    assert_non_null(strstr(stats.first_error, message_part));
    jl_sft_free(set);
}

static void test_sft_reader_errors(void **state) {
    (void)state;
    expect_sft_error("{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":\"y\"}]}",
                     "messages[0].role: a tool turn must follow an assistant turn");
    expect_sft_error("{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":\"y\"}]}",
                     "messages[0].role: unknown role 'robot'");
    expect_sft_error("{\"messages\":[{\"role\":\"user\"},{\"role\":\"assistant\",\"content\":\"y\"}]}",
                     "messages[0].content: missing");
    expect_sft_error("{\"messages\":[{\"role\":\"user\",\"content\":7},{\"role\":\"assistant\",\"content\":\"y\"}]}",
                     "messages[0].content: must be a string");
    expect_sft_error("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "messages: no assistant turn");
    expect_sft_error("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":\" \"}]}",
                     "messages[1].content: empty response");
    expect_sft_error("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"system\",\"content\":\"s\"},"
                     "{\"role\":\"assistant\",\"content\":\"y\"}]}", "messages[1].role: a system turn must come first");
    expect_sft_error("{\"messages\":[]}", "messages: empty");
    expect_sft_error("{\"messages\":{}}", "messages: must be an array");
    expect_sft_error("{\"messages\":[\"hi\"]}", "messages[0]: must be an object");
    expect_sft_error("{\"instruction\":\"x\",\"output\":\"\"}", "output: empty response");
    expect_sft_error("{\"instruction\":\"x\"}", "output: missing");
    expect_sft_error("{\"instruction\":\"x\",\"input\":3,\"output\":\"y\"}", "input: must be a string");
    expect_sft_error("{\"prompt\":\"x\"}", "messages: missing");
    expect_sft_error("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}", "truncated JSON");
    expect_sft_error("{\"messages\": nope}", "not valid JSON");
    expect_sft_error("[1,2]", "not a JSON object");
    expect_sft_error("{\"instruction\":\"x\",\"output\":\"y\"} extra", "not valid JSON at column 34");
    expect_sft_error("{\"instruction\":\"x\\u0000y\",\"output\":\"z\"}", "instruction: contains a NUL character");
    expect_sft_error("{\"instruction\":\"\xff\xfe\",\"output\":\"z\"}", "invalid UTF-8 at column 17");
}

static void test_reader_file_level_errors(void **state) {
    (void)state;
    jl_sft_set *set;
    assert_int_equal(jl_sft_load(tmp_path("missing.jsonl"), NULL, &set, NULL), JL_ERR_IO);
    assert_non_null(strstr(jl_last_error(), "missing.jsonl"));
    assert_int_equal(jl_sft_load(write_tmp("empty.jsonl", "\n\n"), NULL, &set, NULL), JL_ERR_FORMAT);
    assert_non_null(strstr(jl_last_error(), "no records"));
    jl_jsonl_options skip = {1, 0};
    assert_int_equal(jl_sft_load(write_tmp("allbad.jsonl", "x\ny\n"), &skip, &set, NULL), JL_ERR_FORMAT);
    assert_non_null(strstr(jl_last_error(), "no valid record (2 skipped"));
}

static void test_prefs_reader(void **state) {
    (void)state;
    const char *good = write_tmp("prefs.jsonl", "{\"prompt\":\"写诗\",\"chosen\":\"好诗\",\"rejected\":\"坏诗\",\"form\":\"wujue\"}\n");
    jl_pref_set *set;
    assert_int_equal(jl_prefs_load(good, NULL, &set, NULL), JL_OK);
    assert_int_equal(jl_prefs_count(set), 1);
    jl_pref_pair p = jl_prefs_get(set, 0);
    assert_string_equal(p.prompt, "写诗");
    assert_string_equal(p.chosen, "好诗");
    assert_string_equal(p.rejected, "坏诗");
    jl_prefs_free(set);
    struct { const char *line, *message; } bad[] = {
        {"{\"prompt\":\"p\",\"chosen\":\"same\",\"rejected\":\"same\"}", "rejected: identical to chosen"},
        {"{\"prompt\":\"p\",\"chosen\":\"\",\"rejected\":\"r\"}", "chosen: empty response"},
        {"{\"prompt\":\"p\",\"chosen\":\"c\"}", "rejected: missing"},
        {"{\"chosen\":\"c\",\"rejected\":\"r\"}", "prompt: missing"},
        {"{\"prompt\":\"p\",\"chosen\":[\"c\"],\"rejected\":\"r\"}", "chosen: must be a string"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char content[512];
        snprintf(content, sizeof content, "{\"prompt\":\"a\",\"chosen\":\"b\",\"rejected\":\"c\"}\n%s\n", bad[i].line);
        const char *path = write_tmp("bad_prefs.jsonl", content);
        assert_int_equal(jl_prefs_load(path, NULL, &set, NULL), JL_ERR_FORMAT);
        assert_non_null(strstr(jl_last_error(), ":2: "));
        assert_non_null(strstr(jl_last_error(), bad[i].message));
        jl_jsonl_options skip = {1, 0};
        assert_int_equal(jl_prefs_load(path, &skip, &set, NULL), JL_OK);
        assert_int_equal(jl_prefs_count(set), 1);
        jl_prefs_free(set);
    }
}

static void test_rl_reader_keeps_fields(void **state) {
    (void)state;
    const char *path = write_tmp("rl.jsonl", "{\"prompt\":\"写一首五言绝句\",\"form\":\"wujue\",\"n\":3,\"tags\":[1]}\n"
                                             "{\"prompt\":\"\"}\n{\"prompt\":\"接下一句\",\"expected\":\"疑是地上霜\"}\n");
    jl_rl_set *set;
    assert_int_equal(jl_rl_load(path, NULL, &set, NULL), JL_ERR_FORMAT);
    assert_non_null(strstr(jl_last_error(), ":2: prompt: empty"));
    jl_jsonl_options skip = {1, 0};
    jl_jsonl_stats stats;
    assert_int_equal(jl_rl_load(path, &skip, &set, &stats), JL_OK);
    assert_int_equal(stats.skipped, 1);
    assert_int_equal(jl_rl_count(set), 2);
    assert_string_equal(jl_rl_prompt(set, 0), "写一首五言绝句");
    assert_string_equal(jl_rl_field(set, 0, "form"), "wujue");
    assert_null(jl_rl_field(set, 0, "n")); /* not a string */
    assert_null(jl_rl_field(set, 0, "missing"));
    int64_t n = 0;
    assert_true(jl_rl_field_int(set, 0, "n", &n));
    assert_int_equal(n, 3);
    assert_false(jl_rl_field_int(set, 0, "form", &n));
    assert_string_equal(jl_rl_field(set, 1, "expected"), "疑是地上霜");
    assert_string_equal(jl_rl_json(set, 0), "{\"prompt\":\"写一首五言绝句\",\"form\":\"wujue\",\"n\":3,\"tags\":[1]}");
    assert_null(jl_rl_prompt(set, 2));
    jl_rl_free(set);
}

/* ---- chat template ---- */

typedef struct {
    int special;
    const char *text;
    int trainable;
} want_segment;

static void expect_segments(const jl_segments *s, const want_segment *want, size_t n) {
    assert_int_equal(s->n, n);
    for (size_t i = 0; i < n; i++) {
        if (s->items[i].special != want[i].special || s->items[i].trainable != want[i].trainable ||
            s->items[i].len != strlen(want[i].text) || memcmp(s->items[i].text, want[i].text, s->items[i].len))
            fail_msg("segment %zu: got (%d, '%.*s', %d), want (%d, '%s', %d)", i, s->items[i].special,
                     (int)s->items[i].len, s->items[i].text, s->items[i].trainable, want[i].special, want[i].text,
                     want[i].trainable);
    }
}

static void test_chat_segments(void **state) {
    (void)state;
    const jl_turn turns[] = {{JL_ROLE_SYSTEM, "你是接龙。"}, {JL_ROLE_USER, "你好"}, {JL_ROLE_ASSISTANT, "你好！"},
                             {JL_ROLE_USER, "接下一句：床前明月光，"}, {JL_ROLE_ASSISTANT, "疑是地上霜。"}};
    jl_conversation conv = {turns, 5};
    jl_segments segs = {0};
    assert_int_equal(jl_chat_render(&conv, &segs), JL_OK);
    const int T = -1;
    const want_segment train[] = {
        {JL_SPECIAL_BOS, "<|bos|>", 0},
        {JL_SPECIAL_SYSTEM, "<|system|>", 0}, {T, "你是接龙。", 0}, {JL_SPECIAL_END, "<|end|>", 0},
        {JL_SPECIAL_USER, "<|user|>", 0}, {T, "你好", 0}, {JL_SPECIAL_END, "<|end|>", 0},
        {JL_SPECIAL_ASSISTANT, "<|assistant|>", 0}, {T, "你好！", 1}, {JL_SPECIAL_END, "<|end|>", 1},
        {JL_SPECIAL_USER, "<|user|>", 0}, {T, "接下一句：床前明月光，", 0}, {JL_SPECIAL_END, "<|end|>", 0},
        {JL_SPECIAL_ASSISTANT, "<|assistant|>", 0}, {T, "疑是地上霜。", 1}, {JL_SPECIAL_END, "<|end|>", 1},
    };
    expect_segments(&segs, train, sizeof train / sizeof train[0]);
    char *text = jl_segments_text(&segs);
    assert_string_equal(text, "<|bos|><|system|>你是接龙。<|end|><|user|>你好<|end|><|assistant|>你好！<|end|>"
                              "<|user|>接下一句：床前明月光，<|end|><|assistant|>疑是地上霜。<|end|>");
    free(text);

    /* For generation: the trailing answer is dropped, the prompt ends with <|assistant|>, nothing trainable. */
    jl_segments_clear(&segs);
    assert_int_equal(jl_chat_render_generation(&conv, &segs), JL_OK);
    const want_segment gen[] = {
        {JL_SPECIAL_BOS, "<|bos|>", 0},
        {JL_SPECIAL_SYSTEM, "<|system|>", 0}, {T, "你是接龙。", 0}, {JL_SPECIAL_END, "<|end|>", 0},
        {JL_SPECIAL_USER, "<|user|>", 0}, {T, "你好", 0}, {JL_SPECIAL_END, "<|end|>", 0},
        {JL_SPECIAL_ASSISTANT, "<|assistant|>", 0}, {T, "你好！", 0}, {JL_SPECIAL_END, "<|end|>", 0},
        {JL_SPECIAL_USER, "<|user|>", 0}, {T, "接下一句：床前明月光，", 0}, {JL_SPECIAL_END, "<|end|>", 0},
        {JL_SPECIAL_ASSISTANT, "<|assistant|>", 0},
    };
    expect_segments(&segs, gen, sizeof gen / sizeof gen[0]);
    /* Same result for the conversation without its answer. */
    jl_conversation prompt_only = {turns, 4};
    jl_segments segs2 = {0};
    assert_int_equal(jl_chat_render_generation(&prompt_only, &segs2), JL_OK);
    expect_segments(&segs2, gen, sizeof gen / sizeof gen[0]);
    jl_segments_free(&segs2);
    /* Nothing to answer. */
    jl_conversation system_only = {turns, 1};
    assert_int_equal(jl_chat_render_generation(&system_only, &segs), JL_ERR_ARG);
    assert_string_equal(jl_special_name(JL_SPECIAL_EOS), "<|eos|>");
    jl_segments_free(&segs);
}

/* ---- the poem corpus ---- */

static void test_poems_loader_errors(void **state) {
    (void)state;
    jl_poems *poems;
    const char *good = "{\"title\":\"静夜思\",\"author\":\"李白\",\"form\":\"wujue\",\"lines\":[\"床前明月光\","
                       "\"疑是地上霜\",\"举头望明月\",\"低头思故乡\"],\"split\":\"train\"}";
    struct { const char *line, *message; } bad[] = {
        {"{\"title\":\"t\",\"author\":\"a\",\"form\":\"wulv\",\"lines\":[\"床前明月光\",\"疑是地上霜\",\"举头望明月\","
         "\"低头思故乡\"],\"split\":\"train\"}", "lines: 4 lines, a wulv has 8"},
        {"{\"title\":\"t\",\"author\":\"a\",\"form\":\"wujue\",\"lines\":[\"床前明月光\",\"疑是地上霜\",\"举头望明\","
         "\"低头思故乡\"],\"split\":\"train\"}", "lines[2]: 4 characters, a wujue line has 5"},
        {"{\"title\":\"t\",\"author\":\"a\",\"form\":\"wujue\",\"lines\":[\"床前明月光\",\"疑是地上，\",\"举头望明月\","
         "\"低头思故乡\"],\"split\":\"train\"}", "lines[1]: character 5 is not a Han character"},
        {"{\"title\":\"t\",\"author\":\"a\",\"form\":\"ci\",\"lines\":[],\"split\":\"train\"}", "form: unknown form 'ci'"},
        {"{\"title\":\"t\",\"author\":\"a\",\"form\":\"wujue\",\"lines\":[\"床前明月光\",\"疑是地上霜\",\"举头望明月\","
         "\"低头思故乡\"],\"split\":\"test\"}", "split: 'test' is neither"},
        {"{\"title\":\"\",\"author\":\"a\",\"form\":\"wujue\",\"lines\":[],\"split\":\"train\"}", "title: empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char content[1024];
        snprintf(content, sizeof content, "%s\n%s\n", good, bad[i].line);
        assert_int_equal(jl_poems_load(write_tmp("bad_poems.jsonl", content), NULL, &poems, NULL), JL_ERR_FORMAT);
        if (!strstr(jl_last_error(), ":2: ") || !strstr(jl_last_error(), bad[i].message))
            fail_msg("got '%s', want '%s'", jl_last_error(), bad[i].message);
    }
    char content[1024];
    snprintf(content, sizeof content, "%s\n", good);
    assert_int_equal(jl_poems_load(write_tmp("one_poem.jsonl", content), NULL, &poems, NULL), JL_OK);
    const jl_poem *p = jl_poems_get(poems, 0);
    assert_string_equal(p->author, "李白");
    assert_int_equal(p->form, JL_FORM_WUJUE);
    char *text = jl_poem_text(p);
    assert_string_equal(text, "床前明月光，疑是地上霜。\n举头望明月，低头思故乡。");
    free(text);
    jl_poems_free(poems);
}

static const char *const derived_files[] = {"pretrain.txt", "sft.jsonl", "prefs.jsonl", "rl_prompts.jsonl",
                                            "eval_pretrain.txt", "eval_sft.jsonl", "eval_prefs.jsonl",
                                            "eval_prompts.jsonl"};
#define N_DERIVED (sizeof derived_files / sizeof derived_files[0])

static jl_poems *corpus;
static int load_corpus(void **state) {
    (void)state;
    return jl_poems_load(root_path("data/poems.jsonl"), NULL, &corpus, NULL) == JL_OK ? 0 : -1;
}
static int free_corpus(void **state) {
    (void)state;
    jl_poems_free(corpus);
    return 0;
}

static void build(const char *dir, uint64_t seed, jl_poem_build_counts *train, jl_poem_build_counts *heldout) {
    jl_poem_build_options opt;
    jl_poem_build_defaults(&opt);
    opt.copy_docs = 0.4; /* off by default; checked here */
    opt.repeat_docs = 0.3; /* off by default; checked here */
    opt.seed = seed;
    assert_int_equal(jl_poems_write_all(corpus, dir, &opt, train, heldout), JL_OK);
}

static int same_file(const char *a, const char *b) {
    char *x = slurp(a), *y = slurp(b);
    int same = strcmp(x, y) == 0;
    free(x);
    free(y);
    return same;
}

static void test_derived_deterministic(void **state) {
    (void)state;
    jl_poem_build_counts train, heldout;
    build(tmp_path("derived_a"), 5, &train, &heldout);
    /* copy exercises: ~40% of the train poems, none of the held-out ones */
    assert_true(train.copy_docs > train.poems * 3 / 10 && train.copy_docs < train.poems / 2);
    assert_int_equal(heldout.copy_docs, 0);
    /* repetition exercises: after ~30% of the train poems, none in the held-out text */
    assert_true(train.repeat_docs > train.poems / 5 && train.repeat_docs < train.poems * 2 / 5);
    assert_int_equal(heldout.repeat_docs, 0);
    build(tmp_path("derived_b"), 5, NULL, NULL);
    build(tmp_path("derived_c"), 6, NULL, NULL);
    for (size_t i = 0; i < N_DERIVED; i++) {
        char a[1200], b[1200], c[1200];
        snprintf(a, sizeof a, "%s/%s", tmp_path("derived_a"), derived_files[i]);
        snprintf(b, sizeof b, "%s/%s", tmp_path("derived_b"), derived_files[i]);
        snprintf(c, sizeof c, "%s/%s", tmp_path("derived_c"), derived_files[i]);
        assert_true(same_file(a, b));
        assert_false(same_file(a, c));
    }
    /* author probes: training poems 0, 20, 40... whose author only the evaluation prompts ask */
    size_t n_train = 0, n_held = 0, n_probes = 0;
    for (size_t i = 0; i < jl_poems_count(corpus); i++) {
        jl_poems_get(corpus, i)->heldout ? n_held++ : n_train++;
        n_probes += i % 20 == 0 && !jl_poems_get(corpus, i)->heldout;
    }
    assert_true(n_probes > 0);
    assert_int_equal(train.poems, n_train);
    assert_int_equal(heldout.poems, n_held);
    assert_int_equal(train.documents, n_train);
    assert_int_equal(train.pairs, n_train);
    assert_int_equal(train.prompts, n_train);
    assert_int_equal(heldout.prompts, n_held * (JL_TASK_COUNT - 1) + (n_probes < n_held ? n_probes : n_held) +
                                          (size_t)jl_chat_probe_count()); /* + the held-out greeting/identity prompts */
    /* 3 "write" conversations per poem by default, one of each other kind */
    assert_int_equal(train.conversations, n_train * (JL_TASK_COUNT + 2) - n_probes + train.general);
    assert_true(train.general > 0 && heldout.general == 0);
    print_message("derived: train %zu poems, %zu conversations (%zu general), %zu pairs; held-out %zu poems\n",
                  train.poems, train.conversations, train.general, train.pairs, heldout.poems);
}

/* The derived files read back through the readers, and the pairs' rejected sides fail the rules. */
static void test_derived_files_read_back(void **state) {
    (void)state;
    char path[1200];
    jl_sft_set *sft;
    snprintf(path, sizeof path, "%s/sft.jsonl", tmp_path("derived_a"));
    assert_int_equal(jl_sft_load(path, NULL, &sft, NULL), JL_OK);
    jl_segments segs = {0};
    for (size_t i = 0; i < jl_sft_count(sft); i += 97) {
        jl_conversation c = jl_sft_get(sft, i);
        jl_segments_clear(&segs);
        assert_int_equal(jl_chat_render(&c, &segs), JL_OK);
        assert_true(segs.items[segs.n - 1].special == JL_SPECIAL_END && segs.items[segs.n - 1].trainable);
    }
    jl_segments_free(&segs);
    jl_sft_free(sft);
    jl_pref_set *prefs;
    snprintf(path, sizeof path, "%s/prefs.jsonl", tmp_path("derived_a"));
    assert_int_equal(jl_prefs_load(path, NULL, &prefs, NULL), JL_OK);
    jl_rl_set *rl;
    snprintf(path, sizeof path, "%s/rl_prompts.jsonl", tmp_path("derived_a"));
    assert_int_equal(jl_rl_load(path, NULL, &rl, NULL), JL_OK);
    assert_int_equal(jl_rl_count(rl), jl_prefs_count(prefs));
    for (size_t i = 0; i < jl_prefs_count(prefs); i += 13) {
        jl_poem_form form = jl_poem_form_parse(jl_rl_field(rl, i, "form"));
        assert_int_not_equal(form, JL_FORM_NONE);
        jl_pref_pair p = jl_prefs_get(prefs, i);
        jl_poem_form asked = jl_poem_classify(p.chosen);
        jl_poem_report r;
        assert_int_equal(jl_poem_check(p.rejected, asked, &r), JL_OK);
        assert_false(r.ok);
    }
    jl_rl_free(rl);
    jl_prefs_free(prefs);
}

/* Two consecutive lines of a poem, without punctuation, as one key. */
static char *pair_key(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *k = malloc(n);
    snprintf(k, n, "%s|%s", a, b);
    return k;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Han runs of `text` (lines between punctuation, line breaks or JSON "\n" escapes), consecutive pairs looked up. */
static size_t count_leaks(const char *text, char **keys, size_t n_keys) {
    size_t leaks = 0, len = strlen(text);
    char prev[64] = "", cur[64] = "";
    size_t cur_len = 0;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0xE4 && c <= 0xE9 && i + 2 < len) { /* a 3-byte CJK ideograph */
            if (cur_len + 3 < sizeof cur) memcpy(cur + cur_len, text + i, 3);
            cur_len += 3;
            i += 2;
            continue;
        }
        if (cur_len && cur_len < sizeof cur) {
            cur[cur_len] = '\0';
            if (prev[0]) {
                char *key = pair_key(prev, cur);
                leaks += bsearch(&key, keys, n_keys, sizeof *keys, cmp_str) != NULL;
                free(key);
            }
            memcpy(prev, cur, cur_len + 1);
        }
        cur_len = 0;
    }
    return leaks;
}

/* The first "默写《T》：" of pretraining text is followed by the very lines just before it (and their line break). */
__attribute__((noinline)) static void check_recitation(const char *text) {
    const char *recite = strstr(text, "默写《");
    assert_non_null(recite);
    const char *again = strchr(recite, '\n') + 1, *end = strstr(again, "\n\n");
    size_t len = end ? (size_t)(end - again) + 1 : strlen(again);
    assert_true(len > 10 && (size_t)(recite - text) > len);
    assert_memory_equal(recite - len, again, len);
}

/* Paragraphs of pretraining text that are repetition exercises: 3-6 lines, all the same line of 4-12 Han
 * characters. A poem or anthology paragraph opens with a heading, so it is never counted. */
static size_t count_repetitions(const char *text) {
    size_t n = 0;
    for (const char *p = text; *p;) {
        const char *end = strstr(p, "\n\n"), *nl = strchr(p, '\n');
        size_t para = end ? (size_t)(end - p) + 1 : strlen(p);
        size_t line = nl && nl < p + para ? (size_t)(nl - p) + 1 : para;
        size_t chars = 0, han = 0;
        for (size_t i = 0; i + 1 < line;) {
            uint32_t cp;
            i += jl_utf8_decode(p + i, line - 1 - i, &cp);
            chars++;
            han += (size_t)jl_is_han(cp);
        }
        int same = para % line == 0 && para / line >= 2;
        for (size_t k = line; same && k < para; k += line) same = memcmp(p, p + k, line) == 0;
        if (same) {
            assert_true(para / line >= 3 && para / line <= 6 && chars >= 4 && chars <= 12 && han == chars);
            n++;
        }
        p += end ? para + 1 : para;
    }
    return n;
}

static void test_repetition_exercises(void **state) {
    (void)state;
    jl_poem_build_counts train = {0}, heldout = {0};
    build(tmp_path("derived_r"), 5, &train, &heldout);
    char path[1200];
    snprintf(path, sizeof path, "%s/pretrain.txt", tmp_path("derived_r"));
    char *pre = slurp(path);
    assert_true(train.repeat_docs > 0);
    assert_int_equal(count_repetitions(pre), train.repeat_docs);
    free(pre);
    snprintf(path, sizeof path, "%s/eval_pretrain.txt", tmp_path("derived_r"));
    char *held = slurp(path);
    assert_int_equal(count_repetitions(held), 0);
    free(held);
    /* off (the default): the same text as before, no repetition */
    jl_poem_build_options opt;
    jl_poem_build_defaults(&opt);
    assert_true(opt.repeat_docs == 0);
    opt.seed = 5;
    assert_int_equal(jl_poems_write_all(corpus, tmp_path("derived_r0"), &opt, &train, &heldout), JL_OK);
    assert_int_equal(train.repeat_docs, 0);
    snprintf(path, sizeof path, "%s/pretrain.txt", tmp_path("derived_r0"));
    pre = slurp(path);
    assert_int_equal(count_repetitions(pre), 0);
    free(pre);
}

static void test_no_heldout_poem_in_training_files(void **state) {
    (void)state;
    size_t n_keys = 0;
    char **keys = malloc(sizeof *keys * jl_poems_count(corpus) * 8);
    for (size_t i = 0; i < jl_poems_count(corpus); i++) {
        const jl_poem *p = jl_poems_get(corpus, i);
        if (!p->heldout) continue;
        for (int l = 0; l + 1 < p->n_lines; l++) keys[n_keys++] = pair_key(p->lines[l], p->lines[l + 1]);
    }
    qsort(keys, n_keys, sizeof *keys, cmp_str);
    const char *train_files[] = {"pretrain.txt", "sft.jsonl", "prefs.jsonl", "rl_prompts.jsonl"};
    for (size_t f = 0; f < 4; f++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", tmp_path("derived_a"), train_files[f]);
        char *text = slurp(path);
        assert_int_equal(count_leaks(text, keys, n_keys), 0);
        free(text);
    }
    /* The check does see held-out text where it is. */
    char path[1200];
    snprintf(path, sizeof path, "%s/eval_pretrain.txt", tmp_path("derived_a"));
    char *text = slurp(path);
    assert_true(count_leaks(text, keys, n_keys) >= n_keys / 2);
    free(text);
    /* copy exercises (train split only): a recitation repeats the poem just before it */
    snprintf(path, sizeof path, "%s/pretrain.txt", tmp_path("derived_a"));
    char *pre = slurp(path);
    assert_non_null(strstr(pre, "”出自"));
    assert_non_null(strstr(pre, "下面是"));
    check_recitation(pre);
    free(pre);
    snprintf(path, sizeof path, "%s/eval_pretrain.txt", tmp_path("derived_a"));
    char *held = slurp(path);
    assert_null(strstr(held, "默写《"));
    free(held);
    for (size_t i = 0; i < n_keys; i++) free(keys[i]);
    free(keys);
}

/* data instruct's heading parser: the model's own form when the heading names one, "draw one" (2) when it names
 * none — an SFT model continues "《" into "title》的作者是…", the author answer SFT taught it — and no heading
 * for titles that are not 2–12 Han characters. */
static void test_instruct_headings(void **state) {
    (void)state;
    char title[64];
    jl_poem_form form = JL_FORM_NONE;
    assert_int_equal(jl_instruct_parse_heading("春江夜泊》（七言绝句）王维", title, sizeof title, &form), 1);
    assert_string_equal(title, "春江夜泊");
    assert_int_equal(form, JL_FORM_QIJUE);
    form = JL_FORM_NONE;
    assert_int_equal(jl_instruct_parse_heading("蝉暇》的作者是刘威。", title, sizeof title, &form), 2);
    assert_string_equal(title, "蝉暇");
    assert_int_equal(form, JL_FORM_NONE); /* left to the caller */
    assert_int_equal(jl_instruct_parse_heading("秋思》（散文）", title, sizeof title, &form), 2);
    assert_int_equal(jl_instruct_parse_heading("秋》（五言绝句）", title, sizeof title, &form), 0);   /* 1 char */
    assert_int_equal(jl_instruct_parse_heading("江南曲 五》（五言绝句）", title, sizeof title, &form), 0); /* space */
    assert_int_equal(jl_instruct_parse_heading("没有结尾的标题", title, sizeof title, &form), 0);
    assert_int_equal(jl_instruct_parse_heading("一二三四五六七八九十一二三》", title, sizeof title, &form), 0);
    assert_int_equal(jl_instruct_parse_heading("春江夜泊》", title, 8, &form), 0); /* no room for the title */
}

/* The held-out greeting/identity probes are never a training phrasing: every topic rendered many times, no user
 * turn is one of them; and there are enough of them for the figure to mean something. */
static void test_chat_probes_held_out(void **state) {
    (void)state;
    assert_true(jl_chat_probe_count() >= 40);
    jl_rng rng;
    jl_rng_seed(&rng, 7);
    jl_text user = {0}, answer = {0};
    int greeting = 0;
    for (int draw = 0; draw < 4000; draw++) {
        int k = jl_chat_topic_pick(&rng);
        greeting += k <= 1;
        jl_text_clear(&user);
        jl_text_clear(&answer);
        jl_chat_topic_render(k, &rng, &user, &answer);
        for (int i = 0; i < jl_chat_probe_count(); i++) {
            const char *prompt, *expected, *ref;
            jl_chat_probe(i, &prompt, &expected, &ref);
            assert_string_not_equal(jl_text_str(&user), prompt);
        }
    }
    assert_true(greeting > 4000 / 2); /* greeting and identity weighted up */
    jl_text_free(&user);
    jl_text_free(&answer);
}

/* "write" conversations head the poem with the asked title; about invented_titles (0.3) of them ask under a title
 * no poem of the corpus has. */
static void test_invented_titles(void **state) {
    (void)state;
    size_t n_titles = jl_poems_count(corpus);
    const char **titles = malloc(sizeof *titles * n_titles);
    for (size_t i = 0; i < n_titles; i++) titles[i] = jl_poems_get(corpus, i)->title;
    qsort(titles, n_titles, sizeof *titles, cmp_str);
    char path[1200];
    snprintf(path, sizeof path, "%s/sft.jsonl", tmp_path("derived_a"));
    jl_sft_set *sft;
    assert_int_equal(jl_sft_load(path, NULL, &sft, NULL), JL_OK);
    size_t writes = 0, invented = 0;
    for (size_t i = 0; i < jl_sft_count(sft); i++) {
        jl_conversation c = jl_sft_get(sft, i);
        const char *user = c.turns[c.n_turns - 2].content, *reply = c.turns[c.n_turns - 1].content;
        const char *open = strstr(user, "《"), *close = open ? strstr(open, "》") : NULL;
        if (!close || strncmp(reply, "《", strlen("《")) != 0 || !strstr(reply, "）\n")) continue; /* not "write" */
        char title[512];
        size_t len = (size_t)(close - open) - strlen("《");
        assert_true(len < sizeof title);
        memcpy(title, open + strlen("《"), len);
        title[len] = '\0';
        assert_int_equal(strncmp(reply + strlen("《"), title, len), 0); /* the heading carries the asked title */
        const char *key = title;
        writes++;
        invented += bsearch(&key, titles, n_titles, sizeof *titles, cmp_str) == NULL;
    }
    jl_sft_free(sft);
    free(titles);
    assert_true(writes > 100);
    assert_true(invented > writes / 5 && invented < writes * 2 / 5);
}

/* ---- CLI ---- */

static void test_cli_data(void **state) {
    (void)state;
    char args[2048];
    char log[1100]; /* tmp_path's buffers rotate: keep a copy */
    snprintf(log, sizeof log, "%s", tmp_path("data_cli.log"));
    snprintf(args, sizeof args, "data poems --input %s --out %s --seed 5 --copy-docs 0.4 --repeat-docs 0.3", root_path("data/poems.jsonl"),
             tmp_path("cli_out"));
    assert_int_equal(run_cli(args, log), 0);
    for (size_t i = 0; i < N_DERIVED; i++) {
        char a[1200], b[1200];
        snprintf(a, sizeof a, "%s/%s", tmp_path("cli_out"), derived_files[i]);
        snprintf(b, sizeof b, "%s/%s", tmp_path("derived_a"), derived_files[i]);
        assert_true(same_file(a, b)); /* the CLI with seed 5 writes what the library wrote with seed 5 */
    }
    const char *bad = write_tmp("cli_bad.jsonl", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}\n");
    snprintf(args, sizeof args, "data validate --kind sft --input %s", bad);
    assert_int_equal(run_cli(args, log), 2);
    char *out = slurp(log);
    assert_non_null(strstr(out, ":1: messages: no assistant turn"));
    free(out);
    snprintf(args, sizeof args, "data poems --input %s --out %s", bad, tmp_path("cli_out2"));
    assert_int_equal(run_cli(args, log), 2);
    snprintf(args, sizeof args, "data render --input %s/sft.jsonl --index 3", tmp_path("cli_out"));
    assert_int_equal(run_cli(args, log), 0);
    out = slurp(log);
    assert_non_null(strstr(out, "<|assistant|>"));
    free(out);
    assert_int_equal(run_cli("data nope", log), 2);
    assert_int_equal(run_cli("data poems", log), 2); /* --out is required */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sft_reader_good),
        cmocka_unit_test(test_sft_reader_errors),
        cmocka_unit_test(test_reader_file_level_errors),
        cmocka_unit_test(test_prefs_reader),
        cmocka_unit_test(test_rl_reader_keeps_fields),
        cmocka_unit_test(test_chat_segments),
        cmocka_unit_test(test_poems_loader_errors),
        cmocka_unit_test(test_derived_deterministic),
        cmocka_unit_test(test_derived_files_read_back),
        cmocka_unit_test(test_no_heldout_poem_in_training_files),
        cmocka_unit_test(test_repetition_exercises),
        cmocka_unit_test(test_chat_probes_held_out),
        cmocka_unit_test(test_instruct_headings),
        cmocka_unit_test(test_invented_titles),
        cmocka_unit_test(test_cli_data),
    };
    return cmocka_run_group_tests(tests, load_corpus, free_corpus);
}
