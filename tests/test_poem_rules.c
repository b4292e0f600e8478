/* Poem rules: line splitting, form compliance, repetition and reward, on hand-made texts, on every poem of
 * the bundled corpus and on each kind of corruption the preference pairs use. */
#include "testutil.h"
#include "jielong/dataset.h"
#include "jielong/rules.h"

static const char *const JINGYESI = "床前明月光，疑是地上霜。\n举头望明月，低头思故乡。";          /* 五绝 */
static const char *const WANGLUSHAN = "日照香炉生紫烟，遥看瀑布挂前川。\n飞流直下三千尺，疑是银河落九天。"; /* 七绝 */
static const char *const CHUNWANG = "国破山河在，城春草木深。\n感时花溅泪，恨别鸟惊心。\n"
                                   "烽火连三月，家书抵万金。\n白头搔更短，浑欲不胜簪。"; /* 五律 */
static const char *const DENGGAO = "风急天高猿啸哀，渚清沙白鸟飞回。\n无边落木萧萧下，不尽长江滚滚来。\n"
                                  "万里悲秋常作客，百年多病独登台。\n艰难苦恨繁霜鬓，潦倒新停浊酒杯。"; /* 七律 */

static void check(const char *text, jl_poem_form form, jl_poem_report *r) {
    assert_int_equal(jl_poem_check(text, form, r), JL_OK);
}

static void test_forms_and_names(void **state) {
    (void)state;
    assert_int_equal(jl_poem_form_parse("wujue"), JL_FORM_WUJUE);
    assert_int_equal(jl_poem_form_parse("七言律诗"), JL_FORM_QILV);
    assert_int_equal(jl_poem_form_parse("五律"), JL_FORM_WULV);
    assert_int_equal(jl_poem_form_parse("sonnet"), JL_FORM_NONE);
    assert_int_equal(jl_poem_form_of(4, 7), JL_FORM_QIJUE);
    assert_int_equal(jl_poem_form_of(6, 7), JL_FORM_NONE);
    assert_int_equal(jl_poem_form_lines(JL_FORM_QILV), 8);
    assert_int_equal(jl_poem_form_chars(JL_FORM_WUJUE), 5);
    assert_string_equal(jl_poem_form_name(JL_FORM_QIJUE), "七言绝句");
}

static void test_real_poems_comply(void **state) {
    (void)state;
    const char *texts[] = {JINGYESI, WANGLUSHAN, CHUNWANG, DENGGAO};
    const jl_poem_form forms[] = {JL_FORM_WUJUE, JL_FORM_QIJUE, JL_FORM_WULV, JL_FORM_QILV};
    for (int i = 0; i < 4; i++) {
        jl_poem_report r;
        check(texts[i], forms[i], &r);
        assert_true(r.ok);
        assert_int_equal(r.n_lines, jl_poem_form_lines(forms[i]));
        assert_int_equal(r.detected, forms[i]);
        assert_true(r.reward == 1.0f);
        assert_int_equal(jl_poem_classify(texts[i]), forms[i]);
        for (int f = 0; f < 4; f++)
            if (f != i) assert_true(jl_poem_reward(texts[i], forms[f]) < 0.7f); /* the wrong form scores low */
    }
}

static void test_splitting_details(void **state) {
    (void)state;
    jl_poem_report r;
    /* A title in 《》, quotes and spaces are ignored; 静夜思 still complies. */
    check("《静夜思》\n“床前明月光， 疑是地上霜。举头望明月，低头思故乡。”", JL_FORM_WUJUE, &r);
    assert_true(r.ok);
    /* The heading the assistant writes, and notes in parentheses, are not lines of the poem. */
    check("《静夜思》（五言绝句）\n床前明月光，疑是地上霜。(一作看月光)\n举头望明月，低头思故乡。", JL_FORM_WUJUE, &r);
    assert_true(r.ok);
    assert_int_equal(r.n_lines, 4);
    /* An unclosed note swallows the rest: nothing is left to comply. */
    check("（床前明月光，疑是地上霜。\n举头望明月，低头思故乡。", JL_FORM_WUJUE, &r);
    assert_int_equal(r.n_lines, 0);
    assert_false(r.ok);
    /* ASCII punctuation splits lines but is the wrong mark. */
    check("床前明月光,疑是地上霜.举头望明月,低头思故乡.", JL_FORM_WUJUE, &r);
    assert_int_equal(r.n_lines, 4);
    assert_int_equal(r.n_lines_right_length, 4);
    assert_int_equal(r.n_punct_right, 0);
    assert_false(r.complies);
    /* Line breaks without marks: 4 lines, no punctuation. */
    check("床前明月光\n疑是地上霜\n举头望明月\n低头思故乡", JL_FORM_WUJUE, &r);
    assert_int_equal(r.n_lines, 4);
    assert_int_equal(r.detected, JL_FORM_WUJUE);
    assert_string_equal(r.line_end[3], "");
    assert_false(r.complies);
    assert_true(r.reward > 0.6f && r.reward < 0.7f);
    /* Letters and digits count as other characters and cost reward. */
    check("床前明月光，疑是地上霜。举头望明月，低头思故乡。abc123", JL_FORM_WUJUE, &r);
    assert_int_equal(r.n_other, 6);
    assert_false(r.complies);
    assert_true(r.reward < 1.0f && r.reward > 0.7f);
    /* Invalid UTF-8 bytes are other characters, never a crash. */
    check("床前明月光\xff\xfe，疑是地上霜。", JL_FORM_WUJUE, &r);
    assert_int_equal(r.n_other, 2);
    assert_int_equal(r.n_lines, 2);
    /* A couplet may close with ！ or ？. */
    check("床前明月光，疑是地上霜！举头望明月，低头思故乡？", JL_FORM_WUJUE, &r);
    assert_true(r.ok);
}

static void test_empty_and_bad_arguments(void **state) {
    (void)state;
    jl_poem_report r;
    check("", JL_FORM_QILV, &r);
    assert_int_equal(r.n_lines, 0);
    assert_true(r.reward == 0.0f);
    assert_false(r.ok);
    check("，。！？", JL_FORM_WUJUE, &r);
    assert_int_equal(r.n_lines, 0);
    assert_int_equal(jl_poem_check(NULL, JL_FORM_WUJUE, &r), JL_ERR_ARG);
    assert_int_equal(jl_poem_check("床前明月光", JL_FORM_COUNT, &r), JL_ERR_ARG);
    assert_true(jl_poem_reward(NULL, JL_FORM_WUJUE) == 0.0f);
    assert_int_equal(jl_poem_classify("你好"), JL_FORM_NONE);
}

static void test_repetition(void **state) {
    (void)state;
    jl_poem_report r;
    check("春春春春春，春春春春春。春春春春春，春春春春春。", JL_FORM_WUJUE, &r);
    assert_true(r.complies); /* the shape is right ... */
    assert_true(r.repetitive);  /* ... but it is all one character */
    assert_int_equal(r.n_repeated_lines, 3);
    assert_true(r.reward == 0.0f);
    check("床前明月光，疑是地上霜。床前明月光，低头思故乡。", JL_FORM_WUJUE, &r);
    assert_int_equal(r.n_repeated_lines, 1);
    assert_false(r.ok);
    assert_true(r.reward < 1.0f && r.reward > 0.5f);
    check("床前明明明，疑是地上霜。举头望明月，低头思故乡。", JL_FORM_WUJUE, &r);
    assert_true(r.repetitive); /* a run of three */
}

/* Every poem of the corpus, written out, must comply with its own form; almost all are free of
 * repetition as the rules define it; every corruption of every poem must fail. */
static void test_corpus_and_corruptions(void **state) {
    (void)state;
    jl_poems *poems;
    assert_int_equal(jl_poems_load(root_path("data/poems.jsonl"), NULL, &poems, NULL), JL_OK);
    size_t n = jl_poems_count(poems), step = JL_SANITIZED ? 7 : 1, checked = 0, complies = 0, ok = 0;
    size_t fails[JL_CORRUPT_COUNT] = {0}, corrupted = 0;
    uint64_t rng = 99;
    for (size_t i = 0; i < n; i += step) {
        const jl_poem *p = jl_poems_get(poems, i);
        char *text = jl_poem_text(p);
        jl_poem_report r;
        check(text, p->form, &r);
        checked++;
        complies += r.complies;
        ok += r.ok;
        assert_int_equal(r.detected, p->form);
        for (int c = 0; c < JL_CORRUPT_COUNT; c++) {
            char *bad = jl_poem_corrupt(poems, i, (jl_corruption)c, &rng);
            assert_non_null(bad);
            assert_string_not_equal(bad, text);
            jl_poem_report rb;
            check(bad, p->form, &rb);
            fails[c] += !rb.ok;
            if (r.ok) assert_true(rb.reward < r.reward);
            free(bad);
        }
        corrupted++;
        free(text);
    }
    print_message("corpus: %zu poems checked, %zu comply with their form (%.2f%%), %zu pass all rules (%.2f%%)\n",
                  checked, complies, 100.0 * (double)complies / (double)checked, ok,
                  100.0 * (double)ok / (double)checked);
    assert_int_equal(complies, checked);
    assert_true((double)ok / (double)checked > 0.995);
    for (int c = 0; c < JL_CORRUPT_COUNT; c++) {
        print_message("corruption %-13s fails the rules on %zu/%zu poems\n", jl_corruption_name((jl_corruption)c),
                      fails[c], corrupted);
        assert_int_equal(fails[c], corrupted);
    }
    jl_poems_free(poems);
}

static void test_cli_check(void **state) {
    (void)state;
    const char *log = tmp_path("check.log");
    char args[512];
    snprintf(args, sizeof args, "data check --form wujue --text '%s'", JINGYESI);
    assert_int_equal(run_cli(args, log), 0);
    char *out;
    size_t len;
    FILE *f = fopen(log, "rb");
    assert_non_null(f);
    out = calloc(1, 65536);
    len = fread(out, 1, 65535, f);
    fclose(f);
    assert_true(len > 0);
    assert_non_null(strstr(out, "reward        1.000"));
    free(out);
    assert_int_equal(run_cli("data check --form sonnet --text x", log), 2);
    assert_int_equal(run_cli("data check --text x", log), 2);
    /* The text from standard input. */
    const char *bin = getenv("JL_BIN");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "printf '%%s' '%s' | '%s' data check --form 五绝 > '%s' 2>&1", JINGYESI,
             bin ? bin : "build/jielong", log);
    assert_int_equal(system(cmd), 0);
    f = fopen(log, "rb");
    assert_non_null(f);
    out = calloc(1, 65536);
    len = fread(out, 1, 65535, f);
    fclose(f);
    assert_non_null(strstr(out, "ok            yes"));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms_and_names),
        cmocka_unit_test(test_real_poems_comply),
        cmocka_unit_test(test_splitting_details),
        cmocka_unit_test(test_empty_and_bad_arguments),
        cmocka_unit_test(test_repetition),
        cmocka_unit_test(test_corpus_and_corruptions),
        cmocka_unit_test(test_cli_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
