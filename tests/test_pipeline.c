/* jielong pipeline --quick end to end: every stage runs as its command (from an argument vector: the output folder
 * has a space in its name), the report holds every section. */
#include "testutil.h"
#include "io/fileio.h"
#include <math.h>
#include <sys/stat.h>

static int exists(const char *dir, const char *rel) {
    char path[2048];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return stat(path, &st) == 0;
}

/* Lesson 6's verdict of each row follows its two win rates: "reward over-optimisation" only where the reward model
 * says the model beats SFT (> 50%) and the rules do not (<= 50%); returns the rows checked. */
static int check_judges(const char *text) {
    const char *sec = strstr(text, "## Lesson 6");
    assert_non_null(sec);
    int checked = 0;
    for (const char *line = strchr(sec, '\n'); line && line[1] && line[1] != '#'; line = strchr(line + 1, '\n')) {
        char model[64];
        double rm, rule;
        if (sscanf(line + 1, "| %63s | %lf%% | %lf%% |", model, &rm, &rule) != 3) continue;
        const char *end = strchr(line + 1, '\n');
        if (!end) end = line + strlen(line);
        int hacking = memmem(line, (size_t)(end - line), "over-optimisation", 17) != NULL;
        assert_int_equal(hacking, rm > 50 && rule <= 50);
        checked++;
    }
    return checked;
}

/* Every "k/n = p% [lo, hi]" of the lessons table is k/n with its 95% Wilson interval; returns how many. */
static int check_intervals(const char *from, const char *to) {
    int checked = 0;
    for (const char *start = from; start < to; start++) {
        int k, n;
        double p, lo, hi;
        if ((start > from && start[-1] != ' ') || sscanf(start, "%d/%d = %lf%% [%lf, %lf]", &k, &n, &p, &lo, &hi) != 5)
            continue;
        const double z = 1.959964, q = (double)k / n, z2 = z * z / n;
        double centre = (q + z2 / 2) / (1 + z2), half = z * sqrt(q * (1 - q) / n + z2 / (4 * n)) / (1 + z2);
        assert_true(fabs(p - 100 * q) < 0.06);
        assert_true(fabs(lo - 100 * fmax(0, centre - half)) < 0.06);
        assert_true(fabs(hi - 100 * fmin(1, centre + half)) < 0.06);
        checked++;
    }
    return checked;
}

static void test_quick_pipeline(void **state) {
    (void)state;
    const char *out = tmp_path("my runs/pipeline");
    char args[2048];
    snprintf(args, sizeof args, "pipeline --quick --out '%s' --poems %s", out, root_path("data/poems.jsonl"));
    assert_int_equal(run_cli(args, tmp_path("pipeline.log")), 0);
    static const char *const files[] = {
        "tokenizer.json", "shards/train_000.bin", "base/model.safetensors", "sft/model.safetensors",
        "sft-lora/adapter.safetensors", "sft-lora/model.safetensors", "rm/score.safetensors",
        "dpo/model.safetensors", "grpo/model.safetensors", "ppo/model.safetensors", "sft/model-q8_0.gguf",
        "sft/model-f16.gguf", "sft-scratch/model.safetensors", "icl.svg", "base/curves.svg", "ppo/curves.svg", "ppo/metric.svg", "grpo/metric.svg",
        "rm/metric.svg", "dpo/metric.svg", "commands.sh", "summary.jsonl", "report.md",
        /* lessons 4-8 */
        "cot/eval_cot.jsonl", "cot-steps/model.safetensors", "cot-grpo/model.safetensors", "poems.db",
        "sft-tools/model.safetensors", "ppo-fixed/model.safetensors", "ppo/hacking.svg",
        "self-instruct/sft.jsonl", "student-synthetic/model.safetensors", "sft/model-q4_0.gguf",
        "pruned50-rec/model-pruned.safetensors", "student-small-sft/model.safetensors", "deploy.svg",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (!exists(out, files[i])) print_message("missing %s\n", files[i]);
        assert_true(exists(out, files[i]));
    }
    char path[2048], *text;
    size_t len;
    snprintf(path, sizeof path, "%s/report.md", out);
    assert_int_equal(jl_read_file(path, &text, &len), JL_OK);
    static const char *const sections[] = {"## Stages", "## Held-out perplexity", "## Instruction following",
                                           "## Preference-tuned models against SFT", "## Sample answers",
                                           "| base-0shot |", "| base-3shot |", "| sft |", "| sft-lora |",
                                           "| dpo |", "| grpo |", "| ppo |", "| base-5shot |", "| sft-scratch |", "Reward model: held-out pairwise accuracy",
                                           "figures are not meaningful", "(rm/metric.svg)",
                                           "## Lesson 8", "| q4_0 |", "| pruned50+ft |",
                                           "(ppo/hacking.svg)", "(deploy.svg)"};

    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        if (!strstr(text, sections[i])) print_message("report lacks '%s'\n", sections[i]);
        assert_non_null(strstr(text, sections[i]));
    }
    /* the lessons table comes first; each row carries a measured number, not "not measured" */
    const char *lessons = strstr(text, "## Lessons"), *stages = strstr(text, "## Stages");
    assert_non_null(lessons);
    assert_true(stages && lessons < stages);
    static const char *const rows[] = {"| 1. Why pretrain", "| 2. Adapters keep", "| 3. In-context learning",
                                       "| 4. Chain of thought", "| 5. Tools and retrieval",
                                       "| 6. Reward model, RLHF, DPO and reward hacking", "| 7. Self-instruct data",
                                       "| 8. Deployment trade-offs", "| 9. Following the request"};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *row = strstr(lessons, rows[i]);
        if (!row) print_message("lessons table lacks '%s'\n", rows[i]);
        assert_non_null(row);
        const char *end = strchr(row, '\n'), *title_end = strchr(row + 2, '|');
        assert_non_null(end);
        assert_null(memmem(row, (size_t)(end - row), "not measured", 12));
        assert_true(strpbrk(title_end, "0123456789") != NULL && strpbrk(title_end, "0123456789") < end);
        assert_non_null(memmem(row, (size_t)(end - row), "%", 1)); /* a share with its interval */
    }
    assert_true(check_intervals(lessons, stages) >= 6);
    assert_non_null(strstr(lessons, "copy probe (16 random")); /* row 3 starts from copying */
    assert_true(check_judges(text) >= 3);
    assert_non_null(strstr(text, "## Time per stage"));
    assert_non_null(strstr(text, "| SFT from random init (no pretraining) | 1 |"));
    free(text);
    /* the in-context learning curve: one series per task over the shots */
    snprintf(path, sizeof path, "%s/icl.svg", out);
    assert_int_equal(jl_read_file(path, &text, &len), JL_OK);
    assert_non_null(strstr(text, "data-name=\"form_accuracy\""));
    free(text);
    /* every measurement and every command's time in summary.jsonl */
    snprintf(path, sizeof path, "%s/summary.jsonl", out);
    assert_int_equal(jl_read_file(path, &text, &len), JL_OK);
    assert_non_null(strstr(text, "\"lesson\":\"icl\""));
    assert_non_null(strstr(text, "\"kind\":\"copy\""));
    assert_non_null(strstr(text, "\"kind\":\"train\",\"stage\":\"sft\""));
    assert_non_null(strstr(text, "\"kind\":\"stage\""));
    free(text);
    /* held-out loss is drawn beside the training loss */
    snprintf(path, sizeof path, "%s/sft/curves.svg", out);
    assert_int_equal(jl_read_file(path, &text, &len), JL_OK);
    assert_non_null(strstr(text, "data-name=\"val_loss\""));
    free(text);
    /* the saved commands rerun by hand: every line is a jielong command */
    snprintf(path, sizeof path, "%s/commands.sh", out);
    assert_int_equal(jl_read_file(path, &text, &len), JL_OK);
    assert_non_null(strstr(text, "jielong pretrain --data"));
    assert_non_null(strstr(text, "jielong ppo --model"));
    assert_non_null(strstr(text, "my runs/pipeline/sft/model.safetensors'")); /* quoted for the shell */
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quick_pipeline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
