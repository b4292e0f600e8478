/* Evaluation: rule verdicts on answers, held-out perplexity on a model with a known answer, the eval CLI. */
#include "testutil.h"
#include "core/rng.h"
#include "io/fileio.h"
#include "jielong/checkpoint.h"
#include "jielong/eval.h"
#include "jielong/rules.h"
#include "jielong/tokenizer.h"
#include "model/model.h"
#include <math.h>

static void test_task_verdicts(void **state) {
    (void)state;
    jl_task_score r;
    const char *poem = "床前明月光，疑是地上霜。\n举头望明月，低头思故乡。";
    assert_true(jl_task_correct(JL_TASK_WRITE, poem, NULL, "wujue", &r));
    assert_true(r.reward > 0.9f);
    assert_true(r.clean);
    /* the right form with a character used 5 times complies but is not clean */
    assert_true(jl_task_correct(JL_TASK_WRITE, "不前明月光，不是地上霜。\n不头望明月，不头不故乡。", NULL, "wujue", &r));
    assert_false(r.clean);
    assert_true(r.reward < 0.96f);
    assert_false(jl_task_correct(JL_TASK_WRITE, poem, NULL, "qijue", &r));
    assert_false(jl_task_correct(JL_TASK_WRITE, "床前明月光，疑是地上霜。", NULL, "wujue", &r)); /* truncated */
    assert_true(jl_task_correct(JL_TASK_CONTINUE, "疑是地上霜。\n", "疑是地上霜", "wujue", &r));
    assert_true(jl_task_correct(JL_TASK_CONTINUE, "疑是地上霜", "疑是地上霜", "wujue", &r));
    /* continuation: a line of the right length, not the exact line */
    assert_true(jl_task_correct(JL_TASK_CONTINUE, "疑是地上雪。", "疑是地上霜", "wujue", &r));
    assert_false(jl_task_correct(JL_TASK_CONTINUE, "疑是地上霜霜。", "疑是地上霜", "wujue", &r));
    assert_false(jl_task_correct(JL_TASK_CONTINUE, "疑是地上。", "疑是地上霜", "wujue", &r));
    assert_false(jl_task_correct(JL_TASK_CONTINUE, "疑是a上霜。", "疑是地上霜", "wujue", &r));
    assert_false(jl_task_correct(JL_TASK_CONTINUE, "", "疑是地上霜", "wujue", &r));
    assert_true(jl_task_correct(JL_TASK_CONTINUE, "下一句是“疑是地上雪”。", "疑是地上霜", "wujue", &r));
    assert_true(jl_task_correct(JL_TASK_CONTINUE, "“床前明月光”的下一句是“疑是地上霜”。", "疑是地上霜", "wujue", &r));
    assert_false(jl_task_correct(JL_TASK_CONTINUE, "下一句是“疑是地上霜霜”。", "疑是地上霜", "wujue", &r));
    assert_true(jl_task_correct(JL_TASK_AUTHOR, "这首诗的作者是李白。", "李白", "wujue", &r));
    assert_false(jl_task_correct(JL_TASK_AUTHOR, "作者是杜甫。", "李白", "wujue", &r));
    assert_true(jl_task_correct(JL_TASK_FORM, "这是一首五言绝句。", "wujue", "wujue", &r));
    assert_true(jl_task_correct(JL_TASK_FORM, "五绝，不是七律。", "wujue", "wujue", &r));
    assert_false(jl_task_correct(JL_TASK_FORM, "七律，不是五绝。", "wujue", "wujue", &r)); /* the first named counts */
    assert_false(jl_task_correct(JL_TASK_FORM, "不知道", "wujue", "wujue", &r));
}

/* A model whose every logit is zero predicts uniformly: perplexity = vocabulary size exactly. */
static void test_perplexity_of_uniform_model(void **state) {
    (void)state;
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_bytes(&tok), JL_OK);
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, 1, jl_tokenizer_vocab_size(tok), 16);
    jl_model *m;
    assert_int_equal(jl_model_new(&c, &m), JL_OK); /* all weights zero until init: logits are all 0 */
    const char *text = "hello world\n\nsecond document, a bit longer than the window of sixteen tokens";
    jl_ppl_result r;
    assert_int_equal(jl_eval_perplexity(m, tok, text, strlen(text), 16, &r), JL_OK);
    assert_true(fabs(r.ppl - jl_tokenizer_vocab_size(tok)) < 1e-2);
    assert_int_equal(r.tokens, (long)strlen(text) - 2 + 2 - 1); /* bytes - "\n\n" + 2 <|bos|> - the first */
    assert_int_equal(jl_eval_perplexity(m, tok, text, strlen(text), 1000, &r), JL_ERR_ARG);
    jl_model_free(m);
    jl_tokenizer_free(tok);
}

/* The copy probe on a model whose logits are all zero: both showings cost ln(vocabulary) exactly, the tokens are
 * drawn from the byte tokens (a vocabulary this small), and sequences that do not fit the context are refused. */
/* The few-shot prompt ends where its examples' answers begin, on the same token: the byte-level tokenizer
 * merges "：《" (an answer opening with a heading), so a query ending at "答：" would stop mid-token, at a token
 * the examples never show before an answer. With "答：\n" the query's last token is the one that precedes
 * each example's answer. */
static void test_few_shot_prompt_boundary(void **state) {
    (void)state;
    const char *lines =
        "{\"prompt\":\"以《江树》为题，写一首五言绝句。\",\"task\":\"write\",\"answer\":\"《江树》（五言绝句）\\n春风\"}\n"
        "{\"prompt\":\"以《秋夜》为题，写一首五言绝句。\",\"task\":\"write\",\"answer\":\"《秋夜》（五言绝句）\\n明月\"}\n";
    const char *prompts = tmp_path("fewshot.jsonl");
    assert_int_equal(jl_write_file_atomic(prompts, lines, strlen(lines)), JL_OK);
    jl_jsonl_options jo = {0};
    jl_jsonl_stats js;
    jl_rl_set *set;
    assert_int_equal(jl_rl_load(prompts, &jo, &set, &js), JL_OK);
    const size_t items[] = {0, 1};
    char *text = jl_few_shot_prompt(set, items, 2, 0, 1);
    assert_non_null(text);
    assert_string_equal(text, "问：以《秋夜》为题，写一首五言绝句。\n答：\n《秋夜》（五言绝句）\n明月\n\n"
                              "问：以《江树》为题，写一首五言绝句。\n答：\n");
    /* a tokenizer that has learnt "：《" as one token */
    char corpus[4096] = "";
    for (int i = 0; i < 60; i++) strcat(corpus, "诗选：《江》答：《秋》");
    size_t len = strlen(corpus);
    const char *texts[] = {corpus};
    jl_train_opts to = {.vocab_size = 300, .pattern = jl_tokenizer_pattern_text(JL_PATTERN_HAN)};
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_train(texts, &len, 1, &to, &tok), JL_OK);
    int32_t *ids;
    size_t n;
    assert_int_equal(jl_tokenizer_encode(tok, "：《", strlen("：《"), 0, &ids, &n), JL_OK);
    assert_int_equal(n, 1); /* the merge the old format tripped on */
    free(ids);
    assert_int_equal(jl_tokenizer_encode(tok, text, strlen(text), 0, &ids, &n), JL_OK);
    /* a token boundary where the example's answer starts, after the same token the query ends with */
    const char *answer = strstr(text, "《秋夜》（");
    size_t head = (size_t)(answer - text);
    int seen = 0;
    for (size_t k = 1; k < n && !seen; k++) {
        char *part;
        size_t pl;
        assert_int_equal(jl_tokenizer_decode(tok, ids, k, &part, &pl), JL_OK);
        seen = pl == head && memcmp(part, text, head) == 0 && ids[k - 1] == ids[n - 1];
        free(part);
    }
    assert_true(seen);
    free(ids);
    free(text);
    jl_tokenizer_free(tok);
    jl_rl_free(set);
}

static void test_copy_probe(void **state) {
    (void)state;
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_bytes(&tok), JL_OK);
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, 1, jl_tokenizer_vocab_size(tok), 16);
    jl_model *m;
    assert_int_equal(jl_model_new(&c, &m), JL_OK);
    jl_copy_result r;
    assert_int_equal(jl_eval_copy_probe(m, tok, 3, 7, 1, &r), JL_OK);
    double v = log((double)jl_tokenizer_vocab_size(tok));
    assert_true(fabs(r.first - v) < 1e-4 && fabs(r.second - v) < 1e-4);
    assert_true(fabs(r.chance - log(256.0)) < 1e-9);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.len, 7);
    assert_int_equal(jl_eval_copy_probe(m, tok, 3, 8, 1, &r), JL_ERR_ARG); /* 2 x 8 + 1 > 16 */
    assert_int_equal(jl_eval_copy_probe(m, tok, 0, 7, 1, &r), JL_ERR_ARG);
    assert_int_equal(jl_eval_copy_probe(m, tok, 3, 1, 1, &r), JL_ERR_ARG);
    /* a randomly initialised model: the same figures for the same seed */
    jl_model_init(m, 7);
    jl_copy_result a, b;
    assert_int_equal(jl_eval_copy_probe(m, tok, 4, 7, 3, &a), JL_OK);
    assert_int_equal(jl_eval_copy_probe(m, tok, 4, 7, 3, &b), JL_OK);
    assert_true(a.first == b.first && a.second == b.second && isfinite(a.first) && isfinite(a.second));
    jl_model_free(m);
    jl_tokenizer_free(tok);
}

static void test_eval_cli_tasks_and_bad_input(void **state) {
    (void)state;
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_bytes(&tok), JL_OK);
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, 1, jl_tokenizer_vocab_size(tok), 256);
    jl_model *m;
    assert_int_equal(jl_model_new(&c, &m), JL_OK);
    jl_model_init(m, 1);
    jl_checkpoint ck = {.model = m};
    assert_int_equal(jl_tokenizer_to_json(tok, &ck.tokenizer_json), JL_OK);
    const char *model = tmp_path("m.safetensors"), *prompts = tmp_path("prompts.jsonl");
    assert_int_equal(jl_checkpoint_save(model, &ck), JL_OK);
    const char *lines =
        "{\"prompt\":\"写一首五言绝句。\",\"task\":\"write\",\"form\":\"wujue\"}\n"
        "{\"prompt\":\"“床前明月光”的下一句是什么？\",\"task\":\"continue\",\"form\":\"wujue\",\"expected\":\"疑是地上霜\"}\n"
        "{\"prompt\":\"《静夜思》的作者是谁？\",\"task\":\"author\",\"form\":\"wujue\",\"expected\":\"李白\"}\n"
        "{\"prompt\":\"你好呀\",\"task\":\"chat\",\"expected\":\"你好|您好\"}\n";
    assert_int_equal(jl_write_file_atomic(prompts, lines, strlen(lines)), JL_OK);
    char args[2048];
    const char *out = tmp_path("eval_out.json"), *samples = tmp_path("samples.jsonl");
    snprintf(args, sizeof args, "eval --model %s --tasks %s --shots 1 --max-tokens 8 --json --samples %s", model,
             prompts, samples);
    assert_int_equal(run_cli(args, out), 0);
    char *text;
    size_t len;
    assert_int_equal(jl_read_file(out, &text, &len), JL_OK);
    assert_non_null(strstr(text, "\"write\":{\"n\":1"));
    assert_non_null(strstr(text, "\"continue\":{\"n\":1"));
    free(text);
    assert_int_equal(jl_read_file(samples, &text, &len), JL_OK);
    int n_lines = 0;
    for (size_t i = 0; i < len; i++) n_lines += text[i] == '\n';
    assert_int_equal(n_lines, 3); /* the chat probe is scored in chat mode only */
    free(text);
    /* --only chat: the greeting/identity probes alone, in chat mode */
    snprintf(args, sizeof args, "eval --model %s --tasks %s --only chat --max-tokens 8 --json", model, prompts);
    assert_int_equal(run_cli(args, out), 0);
    assert_int_equal(jl_read_file(out, &text, &len), JL_OK);
    assert_non_null(strstr(text, "\"chat\":{\"n\":1"));
    assert_non_null(strstr(text, "\"write\":{\"n\":0"));
    free(text);
    snprintf(args, sizeof args, "eval --model %s --tasks /nonexistent.jsonl", model);
    assert_int_equal(run_cli(args, out), 2);
    assert_int_equal(jl_write_file_atomic(prompts, "{\"prompt\": 3}\n", 14), JL_OK);
    snprintf(args, sizeof args, "eval --model %s --tasks %s", model, prompts);
    assert_int_equal(run_cli(args, out), 2);
    assert_int_equal(jl_read_file(out, &text, &len), JL_OK);
    assert_non_null(strstr(text, ":1:")); /* names the line */
    free(text);
    snprintf(args, sizeof args, "eval --model %s", model);
    assert_int_equal(run_cli(args, out), 2);
    free(ck.tokenizer_json);
    jl_model_free(m);
    jl_tokenizer_free(tok);
}

/* Expects exit code `rc` and `fragment` in the output of "jielong ARGS". */
static void expect_cli(const char *args, int rc, const char *fragment) {
    const char *log = tmp_path("expect.log");
    assert_int_equal(run_cli(args, log), rc);
    char *text;
    size_t len;
    assert_int_equal(jl_read_file(log, &text, &len), JL_OK);
    if (!strstr(text, fragment)) fail_msg("jielong %s: no '%s' in: %s", args, fragment, text);
    free(text);
}

/* eval --data accepts what pretrain accepts (text, token shards, a prepared folder) and refuses what cannot be
 * scored; --tasks refuses prompts none of which can be scored. Before: a shard was read as text (perplexity 13165,
 * exit 0), a folder was "not a regular file", prompts without task fields gave 0/0 with exit 0. */
static void test_eval_data_kinds(void **state) {
    (void)state;
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_bytes(&tok), JL_OK);
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, 1, jl_tokenizer_vocab_size(tok), 64);
    jl_model *m;
    assert_int_equal(jl_model_new(&c, &m), JL_OK); /* zero weights: uniform predictions, perplexity = vocabulary */
    jl_checkpoint ck = {.model = m};
    assert_int_equal(jl_tokenizer_to_json(tok, &ck.tokenizer_json), JL_OK);
    char model[512], text[512], dir[512], args[4096];
    snprintf(model, sizeof model, "%s", tmp_path("kinds.safetensors"));
    snprintf(text, sizeof text, "%s", tmp_path("kinds.txt"));
    snprintf(dir, sizeof dir, "%s", tmp_path("kinds_prep"));
    assert_int_equal(jl_checkpoint_save(model, &ck), JL_OK);
    FILE *f = fopen(text, "w");
    for (int i = 0; i < 200; i++) fprintf(f, "line %d of the held-out text\n\n", i);
    fclose(f);
    const char *tokpath = tmp_path("kinds_tok.json");
    assert_int_equal(jl_tokenizer_save(tok, tokpath), JL_OK);
    snprintf(args, sizeof args, "prepare --tokenizer %s --input %s --output %s --val-fraction 0.2 --quiet", tokpath, text, dir);
    assert_int_equal(run_cli(args, tmp_path("prep.log")), 0);
    char vocab[16];
    snprintf(vocab, sizeof vocab, "%d", jl_tokenizer_vocab_size(tok));
    /* a folder (its val shards) and one shard: scored as tokens, uniform model → perplexity = vocabulary */
    snprintf(args, sizeof args, "eval --model %s --data %s", model, dir);
    expect_cli(args, 0, "perplexity 262.000");
    snprintf(args, sizeof args, "eval --model %s --data %s/val_000.bin", model, dir);
    expect_cli(args, 0, "perplexity 262.000");
    /* model files and binary data are refused, naming the file */
    snprintf(args, sizeof args, "eval --model %s --data %s", model, model);
    expect_cli(args, 2, "is a safetensors model file, not text");
    const char *junk = tmp_path("junk.dat");
    f = fopen(junk, "wb");
    for (int i = 0; i < 256; i++) fputc(255 - i, f);
    fclose(f);
    snprintf(args, sizeof args, "eval --model %s --data %s", model, junk);
    expect_cli(args, 2, "byte 0 (0xFF) is not UTF-8 text");
    /* a folder given as --model says which file to pass; a checkpoint given to import says it needs none */
    snprintf(args, sizeof args, "eval --model %s --data %s", dir, text);
    expect_cli(args, 2, "is a prepared data folder (jielong prepare): it goes to --data, not --model");
    char run_dir[600];
    snprintf(run_dir, sizeof run_dir, "%s", tmp_path("kinds_run"));
    snprintf(args, sizeof args, "mkdir -p %s && cp %s %s/model.safetensors", run_dir, model, run_dir);
    assert_int_equal(system(args), 0);
    snprintf(args, sizeof args, "generate --model %s --prompt a", run_dir);
    expect_cli(args, 2, "is a run folder: pass");
    snprintf(args, sizeof args, "import --from %s --out %s/x.safetensors", model, run_dir);
    expect_cli(args, 2, "a jielong checkpoint needs no import");
    /* prompts without the fields a task needs */
    const char *prompts = tmp_path("fieldless.jsonl");
    const char *lines = "{\"prompt\":\"hello\"}\n{\"prompt\":\"world\",\"kind\":\"x\"}\n";
    assert_int_equal(jl_write_file_atomic(prompts, lines, strlen(lines)), JL_OK);
    snprintf(args, sizeof args, "eval --model %s --tasks %s --max-tokens 4", model, prompts);
    expect_cli(args, 2, "none of its prompts could be scored");
    free(ck.tokenizer_json);
    jl_model_free(m);
    jl_tokenizer_free(tok);
}

/* The win rate (jl_compare_answers): a win counts 1, a tie half, a loss 0, by the poem reward of the prompt's
 * form; no answers is an error. Then jl_eval_compare of a model against itself: every prompt a tie (0.5), the same
 * mean rewards, and `eval --against` reports the library's figures. */
static void test_compare_win_rate(void **state) {
    (void)state;
    const char *poem = "床前明月光，\n疑是地上霜。\n举头望明月，\n低头思故乡。", *junk = "abc abc abc";
    float good = jl_poem_reward(poem, JL_FORM_WUJUE), bad = jl_poem_reward(junk, JL_FORM_WUJUE);
    assert_true(good > bad);
    jl_compare_item items[] = {
        {"p1", "wujue", poem, junk},  /* win */
        {"p2", "wujue", junk, poem},  /* loss */
        {"p3", "wujue", poem, poem},  /* tie */
        {"p4", "wujue", poem, junk},  /* win */
        {"p5", NULL, poem, junk},     /* no form: both 0, a tie */
    };
    jl_compare_result r;
    assert_int_equal(jl_compare_answers(items, 5, NULL, &r), JL_OK);
    assert_int_equal(r.n, 5);
    assert_true(fabs(r.rule_win_rate - 3.0 / 5) < 1e-12); /* 1 + 0 + 0.5 + 1 + 0.5 */
    assert_true(fabs(r.rule_reward - (3.0 * good + bad) / 5) < 1e-6);
    assert_true(fabs(r.rule_reward_against - (2.0 * good + 2.0 * bad) / 5) < 1e-6);
    assert_int_equal(r.judged_by_rm, 0);
    assert_int_equal(jl_compare_answers(items, 0, NULL, &r), JL_ERR_ARG);

    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_bytes(&tok), JL_OK);
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, 1, jl_tokenizer_vocab_size(tok), 256);
    jl_model *m;
    assert_int_equal(jl_model_new(&c, &m), JL_OK);
    jl_model_init(m, 3);
    jl_checkpoint ck = {.model = m};
    assert_int_equal(jl_tokenizer_to_json(tok, &ck.tokenizer_json), JL_OK);
    char model[512], prompts[512], args[2048];
    snprintf(model, sizeof model, "%s", tmp_path("cmp.safetensors"));
    snprintf(prompts, sizeof prompts, "%s", tmp_path("cmp_prompts.jsonl"));
    assert_int_equal(jl_checkpoint_save(model, &ck), JL_OK);
    const char *lines = "{\"prompt\":\"写一首五言绝句。\",\"task\":\"write\",\"form\":\"wujue\"}\n"
                        "{\"prompt\":\"《静夜思》的作者是谁？\",\"task\":\"author\",\"form\":\"wujue\",\"expected\":\"李白\"}\n"
                        "{\"prompt\":\"写一首七言绝句。\",\"task\":\"write\",\"form\":\"qijue\"}\n";
    assert_int_equal(jl_write_file_atomic(prompts, lines, strlen(lines)), JL_OK);
    jl_jsonl_options jo = {0};
    jl_jsonl_stats js;
    jl_rl_set *set;
    assert_int_equal(jl_rl_load(prompts, &jo, &set, &js), JL_OK);
    jl_task_opts o = {.shots = -1, .max_tokens = 6, .only = -1};
    assert_int_equal(jl_eval_compare(model, model, set, prompts, &o, NULL, &r), JL_OK);
    assert_int_equal(r.n, 2); /* the two "write" prompts */
    assert_true(r.rule_win_rate == 0.5);
    assert_true(r.rule_reward == r.rule_reward_against);
    assert_int_equal(jl_eval_compare(model, "/nonexistent.safetensors", set, prompts, &o, NULL, &r) != JL_OK, 1);
    assert_non_null(strstr(jl_last_error(), "/nonexistent.safetensors"));
    jl_rl_free(set);
    snprintf(args, sizeof args, "eval --model %s --against %s --tasks %s --max-tokens 6 --json", model, model, prompts);
    expect_cli(args, 0, "\"n\":2,\"rule_win_rate\":0.5,");
    free(ck.tokenizer_json);
    jl_model_free(m);
    jl_tokenizer_free(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_task_verdicts),
        cmocka_unit_test(test_perplexity_of_uniform_model),
        cmocka_unit_test(test_copy_probe),
        cmocka_unit_test(test_few_shot_prompt_boundary),
        cmocka_unit_test(test_eval_cli_tasks_and_bad_input),
        cmocka_unit_test(test_eval_data_kinds),
        cmocka_unit_test(test_compare_win_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
