#include "cli/pipeline_report.h"
#include "cli/pipeline_lessons.h"
#include "cli/pipeline_lessons_b.h"
#include "io/fileio.h"
#include "jielong/metrics.h"
#include <errno.h>
#include <json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The last value of a metric series, NAN if absent. */
static double last_value(const char *metrics_path, const char *key) {
    jl_metrics_data *d;
    if (jl_metrics_read(metrics_path, NULL, &d) != JL_OK) return NAN;
    const jl_series *s = jl_metrics_find(d, NULL, key);
    double v = s && s->n ? s->y[s->n - 1] : NAN;
    jl_metrics_data_free(d);
    return v;
}

static double first_value(const char *metrics_path, const char *key) {
    jl_metrics_data *d;
    if (jl_metrics_read(metrics_path, NULL, &d) != JL_OK) return NAN;
    const jl_series *s = jl_metrics_find(d, NULL, key);
    double v = s && s->n ? s->y[0] : NAN;
    jl_metrics_data_free(d);
    return v;
}

static double mean_value(const char *metrics_path, const char *key) {
    jl_metrics_data *d;
    if (jl_metrics_read(metrics_path, NULL, &d) != JL_OK) return NAN;
    const jl_series *s = jl_metrics_find(d, NULL, key);
    double sum = 0;
    for (int64_t i = 0; s && i < s->n; i++) sum += s->y[i];
    double v = s && s->n ? sum / (double)s->n : NAN;
    jl_metrics_data_free(d);
    return v;
}

static void fmt(char *buf, size_t n, const char *f, double v) {
    if (isnan(v)) snprintf(buf, n, "–");
    else snprintf(buf, n, f, v);
}

/* The summary lines of one kind, in file order. */
static int summary_lines(const char *path, const char *kind, json_object **out, int max) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    while (getline(&line, &cap, f) > 0 && n < max) {
        json_object *o = json_tokener_parse(line), *k;
        if (o && json_object_object_get_ex(o, "kind", &k) && strcmp(json_object_get_string(k), kind) == 0) out[n++] = o;
        else json_object_put(o);
    }
    free(line);
    fclose(f);
    return n;
}

static const char *str_of(json_object *o, const char *key) {
    json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

static double num_of(json_object *o, const char *key) {
    json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_double(v) : NAN;
}

static double accuracy_of(json_object *o, const char *task) {
    json_object *t;
    return json_object_object_get_ex(o, task, &t) ? num_of(t, "accuracy") : NAN;
}

report_plots pipeline_report_plots(const char *dir) {
    if (strcmp(dir, "rm") == 0) return (report_plots){"loss,eval_loss", "accuracy,eval_accuracy", "pairwise accuracy"};
    if (strcmp(dir, "dpo") == 0) return (report_plots){"loss,eval_loss", "margin,eval_margin", "reward margin"};
    if (strstr(dir, "grpo") || strstr(dir, "ppo")) return (report_plots){"loss", "reward,kl", "reward and KL"};
    return (report_plots){"loss,val_loss", NULL, NULL};
}

static void write_stage_table(FILE *f, const char *out_dir, const report_stage *st, int n) {
    fprintf(f, "## Stages\n\n| stage | time | final loss | held-out | tok/s | MFU | plot |\n|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        char loss[32] = "–", val[32] = "–", tps[32] = "–", mfu[32] = "–", plot[256] = "";
        if (st[i].dir) {
            char m[4096];
            snprintf(m, sizeof m, "%s/%s/metrics.jsonl", out_dir, st[i].dir);
            fmt(loss, sizeof loss, "%.3f", last_value(m, "loss"));
            double v = last_value(m, "val_loss");
            if (isnan(v)) v = last_value(m, "eval_accuracy");
            fmt(val, sizeof val, isnan(last_value(m, "val_loss")) ? "acc %.3f" : "%.3f", v);
            fmt(tps, sizeof tps, "%.0f", mean_value(m, "tok_per_s"));
            fmt(mfu, sizeof mfu, "%.2f", mean_value(m, "mfu"));
            report_plots rp = pipeline_report_plots(st[i].dir);
            snprintf(plot, sizeof plot, "[loss](%s/curves.svg)%s%s%s%s", st[i].dir, rp.metric ? " · [" : "",
                     rp.metric ? rp.metric_title : "", rp.metric ? "](" : "", rp.metric ? st[i].dir : "");
            if (rp.metric) snprintf(plot + strlen(plot), sizeof plot - strlen(plot), "/metric.svg)");
        }
        fprintf(f, "| %s | %.0f s | %s | %s | %s | %s | %s |\n", st[i].name, st[i].seconds, loss, val, tps, mfu, plot);
    }
    fprintf(f, "\nHeld-out: loss on held-out data for pretraining/SFT, pairwise accuracy for the reward model and "
               "DPO. MFU = achieved FLOP/s ÷ the peak of the precision in use (probe loop of FMAs / bf16 dot "
               "products at the start of the stage), at most 1. Plots: training loss with held-out loss (raw points), "
               "and the stage's own metric where it has one.\n\n");
}

static void write_perplexity(FILE *f, json_object **lines, int n) {
    if (!n) return;
    fprintf(f, "## Held-out perplexity\n\n| model | tokens | perplexity | bits/char | bits/byte |\n|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "| %s | %.0f | %.2f | %.3f | %.3f |\n", str_of(lines[i], "label"), num_of(lines[i], "tokens"),
                num_of(lines[i], "ppl"), num_of(lines[i], "bits_per_char"), num_of(lines[i], "bits_per_byte"));
    fprintf(f, "\n");
}

static void write_tasks(FILE *f, json_object **lines, int n) {
    if (!n) return;
    fprintf(f, "## Instruction following on held-out poems (greedy, scored by rule)\n\n"
               "| model | asked as | write: form compliance | write: form, no repetition | continue | author | form | "
               "poem reward |\n|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        char mode[64];
        if (strcmp(str_of(lines[i], "mode"), "chat") == 0) snprintf(mode, sizeof mode, "chat template");
        else if (num_of(lines[i], "mean_shots") + 0.05 < num_of(lines[i], "shots"))
            snprintf(mode, sizeof mode, "%.0f-shot completion (%.1f shown on average: context)",
                     num_of(lines[i], "shots"), num_of(lines[i], "mean_shots"));
        else snprintf(mode, sizeof mode, "%.0f-shot completion", num_of(lines[i], "shots"));
        fprintf(f, "| %s | %s | %.1f%% | %.1f%% | %.1f%% | %.1f%% | %.1f%% | %.3f |\n", str_of(lines[i], "label"), mode,
                100 * accuracy_of(lines[i], "write"), 100 * num_of(lines[i], "write_clean"),
                100 * accuracy_of(lines[i], "continue"),
                100 * accuracy_of(lines[i], "author"), 100 * accuracy_of(lines[i], "form"),
                num_of(lines[i], "write_reward"));
    }
    fprintf(f, "\nwrite — form compliance: the answer is a poem of the asked form (line count, characters per line, "
               "punctuation; a 《title》（form） heading is allowed); no repetition: also no repeated line, no character "
               "more than 4 times, no run of 3. continue: a next line of the right length (Han characters only). "
               "author: the author named (author probes: poems seen in pretraining whose author SFT never asks). "
               "form: the form named.\n\n");
}

static void write_compare(FILE *f, const char *out_dir, json_object **lines, int n) {
    if (!n) return;
    fprintf(f, "## Preference-tuned models against SFT\n\n"
               "| model | win rate (rules) | win rate (reward model) | poem reward | RM score | KL to reference |\n"
               "|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const char *label = str_of(lines[i], "label");
        char rm[32], rms[32], kl[32] = "–", m[4096];
        fmt(rm, sizeof rm, "%.1f%%", 100 * num_of(lines[i], "rm_win_rate"));
        fmt(rms, sizeof rms, "%.3f", num_of(lines[i], "rm_score"));
        snprintf(m, sizeof m, "%s/%s/metrics.jsonl", out_dir, label);
        double k = last_value(m, "kl");
        if (isnan(k)) k = -last_value(m, "rewards_chosen"); /* DPO logs implicit rewards, not KL */
        fmt(kl, sizeof kl, "%.3f", isnan(last_value(m, "kl")) ? NAN : k);
        fprintf(f, "| %s | %.1f%% | %s | %.3f (SFT %.3f) | %s | %s |\n", label, 100 * num_of(lines[i], "rule_win_rate"),
                rm, num_of(lines[i], "rule_reward"), num_of(lines[i], "rule_reward_against"), rms, kl);
    }
    char m[4096];
    snprintf(m, sizeof m, "%s/rm/metrics.jsonl", out_dir);
    double acc0 = first_value(m, "eval_accuracy"), acc = last_value(m, "eval_accuracy");
    if (!isnan(acc))
        fprintf(f, "\nReward model: held-out pairwise accuracy %.1f%% (%.1f%% before training). ", 100 * acc,
                100 * acc0);
    fprintf(f, "Win rate: share of held-out 'write' prompts where the model's answer scores higher than SFT's "
               "(ties count half). KL: the last logged KL to the frozen reference (GRPO/PPO).\n\n");
}

static void write_samples(FILE *f, const char *out_dir, const report_stage *st, int n) {
    fprintf(f, "## Sample answers (the first held-out 'write' prompts)\n\n");
    int shown = 0;
    for (int s = 0; s < n; s++) {
        if (!st[s].dir) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s/answers.jsonl", out_dir, st[s].dir);
        FILE *in = fopen(path, "r");
        if (!in) continue;
        char *line = NULL;
        size_t cap = 0;
        int k = 0;
        fprintf(f, "**%s**\n\n", st[s].name);
        while (k < 2 && getline(&line, &cap, in) > 0) {
            json_object *o = json_tokener_parse(line);
            if (o && strcmp(str_of(o, "task"), "write") == 0) {
                fprintf(f, "- %s %s\n\n  ```\n  ", str_of(o, "prompt"),
                        json_object_get_boolean(json_object_object_get(o, "correct")) ? "✓" : "✗");
                for (const char *p = str_of(o, "answer"); *p; p++) fputs(*p == '\n' ? "\n  " : (char[2]){*p, 0}, f);
                fprintf(f, "\n  ```\n");
                k++;
            }
            json_object_put(o);
        }
        fprintf(f, "\n");
        free(line);
        fclose(in);
        shown++;
    }
    if (!shown) fprintf(f, "(none)\n\n");
}

/* Every command's time (the {"kind":"stage"} lines the pipeline appends), summed by stage name. */
static void write_times(FILE *f, json_object **lines, int n) {
    if (!n) return;
    fprintf(f, "## Time per stage\n\n| stage | commands | time |\n|---|---|---|\n");
    double total = 0;
    for (int i = 0; i < n; i++) {
        const char *name = str_of(lines[i], "name");
        int first = 1, count = 0;
        double sum = 0;
        for (int j = 0; j < n && first; j++) first = j >= i || strcmp(str_of(lines[j], "name"), name) != 0;
        if (!first) continue;
        for (int j = i; j < n; j++)
            if (strcmp(str_of(lines[j], "name"), name) == 0) sum += num_of(lines[j], "seconds"), count++;
        fprintf(f, "| %s | %d | %.1f s |\n", name, count, sum);
        total += sum;
    }
    fprintf(f, "| all | %d | %.1f s |\n\n", n, total);
}

jl_status pipeline_report_write(const char *out_dir, const report_stage *stages, int n_stages, int quick,
                                double total_seconds) {
    char path[4096], summary[4096];
    snprintf(path, sizeof path, "%s/report.md", out_dir);
    snprintf(summary, sizeof summary, "%s/summary.jsonl", out_dir);
    jl_atomic_file af;
    jl_status st = jl_atomic_open(&af, path);
    if (st != JL_OK) return st;
    FILE *f = af.f;
    fprintf(f, "# jielong pipeline report\n\nThe whole recipe on the bundled Tang poems (%s run, %.0f s on this "
               "machine). Every stage ran as the command shown in `commands.sh`; the models are in this folder.\n\n",
            quick ? "a --quick" : "the default", total_seconds);
    if (quick)
        fprintf(f, "> **This is a `--quick` run: tiny models and a few steps each, to check that every stage runs. Its "
                   "figures are not meaningful** — run `jielong pipeline` without `--quick` for the measured "
                   "results.\n\n");
    pipeline_write_lessons(f, summary);
    char icl_path[4096];
    snprintf(icl_path, sizeof icl_path, "%s/icl.svg", out_dir);
    FILE *icl = fopen(icl_path, "r");
    if (icl) { /* the in-context learning curve of lesson 3, under the table */
        fclose(icl);
        fprintf(f, "![In-context learning: share right vs examples shown](icl.svg)\n\n");
    }
    write_stage_table(f, out_dir, stages, n_stages);
    json_object *lines[256];
    int n = summary_lines(summary, "perplexity", lines, 256);
    write_perplexity(f, lines, n);
    for (int i = 0; i < n; i++) json_object_put(lines[i]);
    n = summary_lines(summary, "tasks", lines, 256);
    write_tasks(f, lines, n);
    for (int i = 0; i < n; i++) json_object_put(lines[i]);
    n = summary_lines(summary, "compare", lines, 256);
    write_compare(f, out_dir, lines, n);
    for (int i = 0; i < n; i++) json_object_put(lines[i]);
    pipeline_lessons_b_sections(f, out_dir);
    write_samples(f, out_dir, stages, n_stages);
    n = summary_lines(summary, "stage", lines, 256);
    write_times(f, lines, n);
    for (int i = 0; i < n; i++) json_object_put(lines[i]);
    fprintf(f, "## Chat with the result\n\n```sh\njielong chat --model %s/sft/model.safetensors\n```\n", out_dir);
    if (ferror(f)) return jl_atomic_fail(&af, errno);
    return jl_atomic_commit(&af);
}
