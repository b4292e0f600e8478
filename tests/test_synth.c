/* The lessons' generated data and their RL options (issue 19 part B): chain-of-thought sums (every step right, the
 * answer last, held-out sums never trained on, deterministic), the verifiable reward "answer", PPO's second judge
 * (monitor_reward), reward whitening and adaptive KL control (the coefficient follows the KL to its target and a
 * resumed run ends bit for bit where an uninterrupted one does), generate --summary, eval --qa. */
#include "rl_testutil.h"
#include "io/fileio.h"
#include "jielong/dataset.h"
#include "jielong/rlhf.h"
#include "jielong/synth.h"
#include "jielong/tools.h"

/* The sum's digits as a step-by-step answer writes them, highest first: the second digit of each clause's two-digit
 * sum (lowest column first), then the last clause's first digit when it is 1 (the leading carry). */
static void written_digits(const char *steps, char *out, size_t cap) {
    char rev[64];
    size_t n = 0;
    const char *last = NULL;
    for (const char *p = steps; (p = strchr(p, '=')) != NULL && n + 1 < sizeof rev; p++) {
        rev[n++] = p[2];
        last = p;
    }
    if (last && last[1] == '1' && n + 1 < sizeof rev) rev[n++] = '1';
    size_t k = 0;
    while (n > 0 && k + 1 < cap) out[k++] = rev[--n];
    out[k] = '\0';
}

static void test_cot_steps_are_right(void **state) {
    (void)state;
    jl_rng r;
    jl_rng_seed(&r, 5);
    for (int i = 0; i < 3000; i++) {
        uint64_t a = jl_rng_below(&r, 100000), b = jl_rng_below(&r, 100000);
        char steps[1024], sum[32], digits[64];
        jl_cot_steps(a, b, steps, sizeof steps);
        snprintf(sum, sizeof sum, "%llu", (unsigned long long)(a + b));
        written_digits(steps, digits, sizeof digits);
        if (strcmp(digits, sum) != 0) print_message("%llu+%llu: %s\n", (unsigned long long)a, (unsigned long long)b, steps);
        assert_string_equal(digits, sum); /* each column's digit, carries included */
        assert_true(jl_tool_answer_correct("calc", steps, sum)); /* the answer is the last number */
    }
    char steps[1024];
    jl_cot_steps(957, 386, steps, sizeof steps);
    assert_string_equal(steps, "7+6=13，5+8+1=14，9+3+1=13，答：1343");
    jl_cot_steps(0, 4, steps, sizeof steps);
    assert_string_equal(steps, "0+4=04，答：4");
}

/* The operands of each prompt of an RL-prompt file, as "a+b" strings, into a set (sorted array). */
static int prompt_sums(const char *path, char (*out)[32], int max) {
    jl_jsonl_options jo = {0};
    jl_jsonl_stats js;
    jl_rl_set *set;
    assert_int_equal(jl_rl_load(path, &jo, &set, &js), JL_OK);
    int n = 0;
    for (size_t i = 0; i < jl_rl_count(set) && n < max; i++) {
        unsigned a, b;
        const char *p = jl_rl_prompt(set, i);
        while (*p && (*p < '0' || *p > '9')) p++;
        assert_int_equal(sscanf(p, "%u+%u", &a, &b), 2);
        snprintf(out[n++], 32, "%u+%u", a, b);
        char want[16];
        snprintf(want, sizeof want, "%u", a + b);
        assert_string_equal(jl_rl_field(set, i, "expected"), want);
    }
    jl_rl_free(set);
    return n;
}

static void test_cot_files(void **state) {
    (void)state;
    jl_cot_options o;
    jl_cot_defaults(&o);
    o.train = 400;
    o.eval = 60;
    jl_cot_counts c;
    const char *dir = tmp_path("cot"), *again = tmp_path("cot2");
    assert_int_equal(jl_cot_data_write(dir, &o, &c), JL_OK);
    assert_int_equal(c.train, 400);
    assert_int_equal(c.eval, 60);
    assert_int_equal(jl_cot_data_write(again, &o, &c), JL_OK);
    static const char *const files[] = {"cot_direct.jsonl", "cot_steps.jsonl", "cot_prompts.jsonl", "eval_cot.jsonl"};
    for (int i = 0; i < 4; i++) { /* the same seed, the same bytes */
        char pa[1100], pb[1100], *ta, *tb;
        size_t la, lb;
        snprintf(pa, sizeof pa, "%s/%s", dir, files[i]);
        snprintf(pb, sizeof pb, "%s/%s", again, files[i]);
        assert_int_equal(jl_read_file(pa, &ta, &la), JL_OK);
        assert_int_equal(jl_read_file(pb, &tb, &lb), JL_OK);
        assert_true(la == lb && memcmp(ta, tb, la) == 0);
        free(ta);
        free(tb);
    }
    static char train[400][32], held[60][32];
    char path[1100];
    snprintf(path, sizeof path, "%s/cot_prompts.jsonl", dir);
    assert_int_equal(prompt_sums(path, train, 400), 400);
    snprintf(path, sizeof path, "%s/eval_cot.jsonl", dir);
    assert_int_equal(prompt_sums(path, held, 60), 60);
    for (int i = 0; i < 60; i++)
        for (int j = 0; j < 400; j++) assert_string_not_equal(held[i], train[j]);
    /* both SFT files read as conversations, the same number */
    jl_jsonl_options jo = {0};
    jl_jsonl_stats js;
    jl_sft_set *s;
    snprintf(path, sizeof path, "%s/cot_steps.jsonl", dir);
    assert_int_equal(jl_sft_load(path, &jo, &s, &js), JL_OK);
    assert_int_equal(jl_sft_count(s), 400);
    jl_sft_free(s);
    o.digits = 7;
    assert_int_equal(jl_cot_data_write(tmp_path("cot3"), &o, &c), JL_ERR_ARG);
}

static void test_reward_answer(void **state) {
    (void)state;
    const char *path = tmp_path("answer.jsonl");
    write_text(path, "{\"prompt\":\"241+611 等于多少？\",\"task\":\"calc\",\"expected\":\"852\"}\n"
                     "{\"prompt\":\"《静夜思》的作者是谁？\",\"task\":\"author\",\"expected\":\"李白\"}\n"
                     "{\"prompt\":\"no expected\"}\n");
    jl_jsonl_options jo = {0};
    jl_jsonl_stats js;
    jl_rl_set *set;
    assert_int_equal(jl_rl_load(path, &jo, &set, &js), JL_OK);
    jl_reward_fn *fn;
    assert_int_equal(jl_reward_fn_by_name("answer", &fn), JL_OK);
    float r;
    assert_int_equal(jl_reward_fn_score(fn, set, 0, "答：852", &r), JL_OK);
    assert_true(r == 1.0f);
    assert_int_equal(jl_reward_fn_score(fn, set, 0, "个位：1+1=2，写2。答：851", &r), JL_OK);
    assert_true(r == 0.0f);
    assert_int_equal(jl_reward_fn_score(fn, set, 0, "852 is it? no, 853", &r), JL_OK); /* the last number counts */
    assert_true(r == 0.0f);
    assert_int_equal(jl_reward_fn_score(fn, set, 1, "作者是李白。", &r), JL_OK);
    assert_true(r == 1.0f);
    assert_int_equal(jl_reward_fn_score(fn, set, 2, "x", &r), JL_ERR_FORMAT);
    jl_reward_fn_free(fn);
    jl_rl_free(set);
}

/* A saved toy policy, a prompt file, a log and two run folders (a straight run, a stopped and resumed one) with
 * the straight run's metrics file, named by `tag`, for the PPO tests below. */
typedef struct {
    char base[256], prompts[256], log[256], full[256], part[256], metrics[300];
} ppo_fixture;

static void ppo_fixture_make(ppo_fixture *f, const char *tag) {
    jl_tokenizer *tok = byte_tok();
    jl_model *m = toy_policy(tok);
    char name[128];
    snprintf(name, sizeof name, "sft-%s.safetensors", tag);
    snprintf(f->base, sizeof f->base, "%s", tmp_path(name));
    snprintf(name, sizeof name, "prompts-%s.jsonl", tag);
    snprintf(f->prompts, sizeof f->prompts, "%s", tmp_path(name));
    snprintf(name, sizeof name, "ppo-%s.log", tag);
    snprintf(f->log, sizeof f->log, "%s", tmp_path(name));
    snprintf(name, sizeof name, "ppo-%s-full", tag);
    snprintf(f->full, sizeof f->full, "%s", tmp_path(name));
    snprintf(name, sizeof name, "ppo-%s-part", tag);
    snprintf(f->part, sizeof f->part, "%s", tmp_path(name));
    snprintf(f->metrics, sizeof f->metrics, "%s/metrics.jsonl", f->full);
    save_model(m, tok, f->base);
    write_prompts(f->prompts, 4);
    jl_model_free(m);
    jl_tokenizer_free(tok);
}

/* `jielong ppo` of the fixture into out for steps steps with flags (and more); returns its exit code. */
static int ppo_run(const ppo_fixture *f, const char *out, int steps, const char *flags, const char *more) {
    char args[2048];
    snprintf(args, sizeof args, "ppo --policy %s --prompts %s --out %s --steps %d %s %s", f->base, f->prompts, out,
             steps, flags, more);
    return run_cli(args, f->log);
}

/* The run stopped after `stop` steps and resumed ends with the weights of the straight run. */
static void ppo_stop_resume_same(const ppo_fixture *f, int steps, int stop, const char *flags) {
    char more[64];
    snprintf(more, sizeof more, "--stop-after %d", stop);
    assert_int_equal(ppo_run(f, f->part, steps, flags, more), 0);
    assert_int_equal(ppo_run(f, f->part, steps, flags, "--resume"), 0);
    assert_same_final_weights(f->full, f->part);
}

/* An unknown rule for `option` (--monitor-fn, --anchor-fn) is refused before any work. */
static void ppo_unknown_fn_refused(const ppo_fixture *f, const char *option) {
    char more[128], out[128];
    snprintf(more, sizeof more, "%s nope", option);
    snprintf(out, sizeof out, "ppo-bad%s", option);
    assert_int_equal(ppo_run(f, tmp_path(out), 1, "--reward-fn x_count", more), 2);
    assert_true(file_contains(f->log, "unknown reward function 'nope'"));
}

/* PPO with a second judge, whitened rewards and adaptive KL: kl_coef follows KL/target, the monitor is logged,
 * and a run stopped and resumed ends with the same weights. */
static void test_ppo_shaping(void **state) {
    (void)state;
    ppo_fixture f;
    ppo_fixture_make(&f, "shaping");
    const int steps = 8;
    const char *flags = "--reward-fn x_count --monitor-fn length --whiten-rewards --kl 0.05 --kl-target 0.001 "
                        "--kl-horizon 8 --lr 3e-3 --batch-size 4 --max-new 6 --epochs 2 --threads 2 --save-every 4";
    assert_int_equal(ppo_run(&f, f.full, steps, flags, ""), 0);
    double coef[16], kl[16], mon[16];
    assert_int_equal(read_metric(f.metrics, "kl_coef", coef, 16), steps);
    assert_int_equal(read_metric(f.metrics, "kl", kl, 16), steps);
    assert_int_equal(read_metric(f.metrics, "monitor_reward", mon, 16), steps);
    assert_true(fabs(coef[0] - 0.05) < 1e-6);
    for (int i = 1; i < steps; i++) { /* KL above the tiny target: +20% × rollouts/horizon = ×1.1 a step */
        double want = coef[i - 1] * (kl[i - 1] > 0.001 * 1.2 ? 1.1 : kl[i - 1] < 0.001 * 0.8 ? 0.9 : coef[i] / coef[i - 1]);
        assert_true(fabs(coef[i] - want) < 1e-6 * want + 1e-9);
    }
    assert_true(coef[steps - 1] > coef[0]);
    for (int i = 0; i < steps; i++) assert_true(mon[i] >= 0.0 && mon[i] <= 6.0); /* length of ≤ 6-token answers */
    ppo_stop_resume_same(&f, steps, 4, flags);
    ppo_unknown_fn_refused(&f, "--monitor-fn");
}

/* PPO with an anchor rule added to the reward: anchor_reward is logged each step, a stopped and resumed run ends
 * with the same weights, resuming under another anchor is refused, an unknown anchor is refused before any work. */
static void test_ppo_anchor(void **state) {
    (void)state;
    ppo_fixture f;
    ppo_fixture_make(&f, "anchor");
    const int steps = 4;
    const char *flags = "--reward-fn x_count --anchor-fn length --anchor-weight 0.5 --whiten-rewards --kl 0.05 "
                        "--lr 3e-3 --batch-size 4 --max-new 6 --epochs 2 --threads 2 --save-every 2";
    assert_int_equal(ppo_run(&f, f.full, steps, flags, ""), 0);
    double anchor[8];
    assert_int_equal(read_metric(f.metrics, "anchor_reward", anchor, 8), steps);
    for (int i = 0; i < steps; i++) assert_true(anchor[i] >= 0.0 && anchor[i] <= 6.0); /* length of ≤ 6 tokens */
    /* resuming under another anchor is refused; then the resume under the same one ends as the straight run */
    assert_int_equal(ppo_run(&f, f.part, steps, flags, "--stop-after 2"), 0);
    assert_int_equal(ppo_run(&f, f.part, steps, flags, "--anchor-fn x_count --resume"), 2);
    assert_true(file_contains(f.log, "the anchor rule is not the one this run was trained with"));
    assert_int_equal(ppo_run(&f, f.part, steps, flags, "--resume"), 0);
    assert_same_final_weights(f.full, f.part);
    ppo_unknown_fn_refused(&f, "--anchor-fn");
}

/* PPO with a group baseline (each answer's score less its prompt's mean): the reward still rises on x_count, a
 * stopped and resumed run ends with the same weights, resuming it without the flag is refused, and a group of one
 * answer (every score would become 0) or GRPO is refused before any work. */
static void test_ppo_group_baseline(void **state) {
    (void)state;
    ppo_fixture f;
    ppo_fixture_make(&f, "baseline");
    const int steps = 12;
    const char *flags = "--reward-fn x_count --group-baseline --whiten-rewards --group 4 --kl 0.02 --lr 3e-3 "
                        "--batch-size 4 --max-new 6 --epochs 4 --threads 2 --save-every 6";
    assert_int_equal(ppo_run(&f, f.full, steps, flags, ""), 0);
    double reward[16];
    assert_int_equal(read_metric(f.metrics, "reward", reward, 16), steps);
    print_message("group baseline: mean reward (step 1) %.3f -> (last 3) %.3f\n", reward[0],
                  mean_of(reward, steps - 3, steps));
    assert_true(mean_of(reward, steps - 3, steps) > reward[0] + 0.2);
    assert_int_equal(ppo_run(&f, f.part, steps, flags, "--stop-after 6"), 0);
    char without[512];
    snprintf(without, sizeof without, "%s", flags);
    char *at = strstr(without, "--group-baseline ");
    memmove(at, at + strlen("--group-baseline "), strlen(at + strlen("--group-baseline ")) + 1);
    assert_int_equal(ppo_run(&f, f.part, steps, without, "--resume"), 2);
    assert_true(file_contains(f.log, "group_baseline"));
    assert_int_equal(ppo_run(&f, f.part, steps, flags, "--resume"), 0);
    assert_same_final_weights(f.full, f.part);
    assert_int_equal(ppo_run(&f, tmp_path("ppo-baseline-g1"), 1, "--reward-fn x_count --group-baseline --group 1", ""), 2);
    assert_true(file_contains(f.log, "--group-baseline needs a group of at least 2"));
    char args[1024];
    snprintf(args, sizeof args, "grpo --policy %s --prompts %s --out %s --steps 1 --reward-fn x_count --group-baseline",
             f.base, f.prompts, tmp_path("grpo-baseline"));
    assert_int_equal(run_cli(args, f.log), 2);
    assert_true(file_contains(f.log, "--group-baseline is for PPO"));
}

/* Rescores each sample of eval --qa --samples and checks the verdicts and the record's counts agree; with tools
 * each sample lists its calls (as many in all as the record counts), without them none. */
static void check_samples(const char *samples, json_object *record, int tools) {
    char *text;
    size_t len;
    assert_int_equal(jl_read_file(samples, &text, &len), JL_OK);
    int n = 0, right = 0, calls = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_object *s = json_tokener_parse(line), *c;
        assert_non_null(s);
        assert_int_equal(json_object_object_get_ex(s, "calls", &c), tools);
        if (tools) calls += (int)json_object_array_length(c);
        const char *task = json_object_get_string(json_object_object_get(s, "task"));
        int ok = jl_tool_answer_correct(task, json_object_get_string(json_object_object_get(s, "answer")),
                                        json_object_get_string(json_object_object_get(s, "expected")));
        assert_int_equal(ok, json_object_get_boolean(json_object_object_get(s, "correct")));
        n++;
        right += ok;
        json_object_put(s);
    }
    free(text);
    assert_int_equal(n, json_object_get_int(json_object_object_get(record, "n")));
    assert_int_equal(right, json_object_get_int(json_object_object_get(record, "correct")));
    assert_int_equal(calls, json_object_get_int(json_object_object_get(record, "tool_calls")));
}

/* generate --summary: size, peak RSS and speeds; eval --qa: verdicts per question, with and without tools. */
static void test_decode_summary_and_qa(void **state) {
    (void)state;
    jl_tokenizer *tok = byte_tok();
    jl_model *m = toy_policy(tok);
    char base[256], summary[256], qa[256], log[256], samples[256], args[2048];
    snprintf(base, sizeof base, "%s", tmp_path("qa-model.safetensors"));
    snprintf(summary, sizeof summary, "%s", tmp_path("summary.jsonl"));
    snprintf(qa, sizeof qa, "%s", tmp_path("qa.jsonl"));
    snprintf(log, sizeof log, "%s", tmp_path("qa.log"));
    snprintf(samples, sizeof samples, "%s", tmp_path("qa-samples.jsonl"));
    save_model(m, tok, base);
    snprintf(args, sizeof args, "generate --model %s --prompt p --temperature 0 --max-new-tokens 8 --summary %s --label "
                                "toy", base, summary);
    assert_int_equal(run_cli(args, log), 0);
    /* the toy policy answers "p" with letters of {a, b, x}: some "word" questions are right, no "calc" one */
    write_text(qa, "{\"prompt\":\"p\",\"task\":\"word\",\"expected\":\"a\"}\n"
                   "{\"prompt\":\"p\",\"task\":\"word\",\"expected\":\"b\"}\n"
                   "{\"prompt\":\"p\",\"task\":\"word\",\"expected\":\"x\"}\n"
                   "{\"prompt\":\"p\",\"task\":\"calc\",\"expected\":\"7\"}\n");
    for (int tools = 0; tools < 2; tools++) {
        snprintf(args, sizeof args, "eval --model %s --qa %s %s --max-new-tokens 6 --samples %s --summary %s --label q",
                 base, qa, tools ? "--tools calculator" : "", samples, summary);
        assert_int_equal(run_cli(args, log), 0);
        json_object *r = NULL, *v, *t, *k;
        char *text;
        size_t len;
        assert_int_equal(jl_read_file(summary, &text, &len), JL_OK);
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            json_object *o = json_tokener_parse(line);
            if (o && json_object_object_get_ex(o, "kind", &v) && !strcmp(json_object_get_string(v), "decode")) {
                assert_true(json_object_object_get_ex(o, "file_bytes", &v) && json_object_get_int64(v) > 1000);
                assert_true(json_object_object_get_ex(o, "peak_rss_bytes", &v) && json_object_get_int64(v) > (1 << 20));
                assert_true(json_object_object_get_ex(o, "tok_per_s", &v) && json_object_get_double(v) > 0);
            }
            json_object_put(r);
            r = o;
        }
        free(text);
        assert_true(json_object_object_get_ex(r, "kind", &v) && !strcmp(json_object_get_string(v), "qa"));
        assert_true(json_object_object_get_ex(r, "tasks", &t) && json_object_object_get_ex(t, "calc", &k));
        assert_int_equal(json_object_get_int(json_object_object_get(k, "correct")), 0);
        assert_int_equal(json_object_get_int(json_object_object_get(k, "n")), 1);
        assert_true(json_object_object_get_ex(t, "word", &k));
        assert_int_equal(json_object_get_int(json_object_object_get(k, "n")), 3);
        check_samples(samples, r, tools);
        json_object_put(r);
    }
    /* a question file without expected answers is refused, exit 2 */
    write_text(qa, "{\"prompt\":\"p\"}\n");
    snprintf(args, sizeof args, "eval --model %s --qa %s", base, qa);
    assert_int_equal(run_cli(args, log), 2);
    assert_true(file_contains(log, "needs \"task\" and \"expected\""));
    jl_model_free(m);
    jl_tokenizer_free(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cot_steps_are_right), cmocka_unit_test(test_cot_files),
        cmocka_unit_test(test_reward_answer),       cmocka_unit_test(test_ppo_shaping), cmocka_unit_test(test_ppo_anchor),
        cmocka_unit_test(test_ppo_group_baseline),
        cmocka_unit_test(test_decode_summary_and_qa),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
