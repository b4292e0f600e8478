/* Lessons 4-8 of the pipeline report: see pipeline_lessons_b.h. */
#include "cli/pipeline_lessons_b.h"
#include "cli/pipeline_lessons.h"
#include "io/fileio.h"
#include "jielong/metrics.h"
#include <json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading the figures ---- */

/* The last summary line of this kind (and label, unless NULL); NULL when there is none. Free with json_object_put. */
static json_object *record(const char *out_dir, const char *kind, const char *label) {
    char path[4096];
    snprintf(path, sizeof path, "%s/summary.jsonl", out_dir);
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *line = NULL;
    size_t cap = 0;
    json_object *found = NULL;
    while (getline(&line, &cap, f) > 0) {
        json_object *o = json_tokener_parse(line), *k, *l;
        int match = o && json_object_object_get_ex(o, "kind", &k) && !strcmp(json_object_get_string(k), kind) &&
                    (!label || (json_object_object_get_ex(o, "label", &l) && !strcmp(json_object_get_string(l), label)));
        if (match) {
            json_object_put(found);
            found = o;
        } else {
            json_object_put(o);
        }
    }
    free(line);
    fclose(f);
    return found;
}

static double num(json_object *o, const char *key) {
    json_object *v;
    return o && json_object_object_get_ex(o, key, &v) ? json_object_get_double(v) : NAN;
}

/* tasks.TASK.accuracy of a qa or tasks record. */
static double task_acc(json_object *o, const char *task) {
    json_object *t, *k;
    if (!o) return NAN;
    if (json_object_object_get_ex(o, "tasks", &t) && json_object_object_get_ex(t, task, &k)) return num(k, "accuracy");
    return json_object_object_get_ex(o, task, &k) ? num(k, "accuracy") : NAN;
}

static double task_n(json_object *o, const char *task) {
    json_object *t, *k;
    if (!o) return NAN;
    if (json_object_object_get_ex(o, "tasks", &t) && json_object_object_get_ex(t, task, &k)) return num(k, "n");
    return json_object_object_get_ex(o, task, &k) ? num(k, "n") : NAN;
}

/* The last (or first) value of a metric in out_dir/dir/metrics.jsonl, NAN when absent. */
static double metric(const char *out_dir, const char *dir, const char *key, int first) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", out_dir, dir);
    jl_metrics_data *d;
    if (jl_metrics_read(path, NULL, &d) != JL_OK) return NAN;
    const jl_series *s = jl_metrics_find(d, NULL, key);
    double v = s && s->n ? s->y[first ? 0 : s->n - 1] : NAN;
    jl_metrics_data_free(d);
    return v;
}

static long count_lines(const char *out_dir, const char *rel) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, rel);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long n = 0;
    for (int c; (c = fgetc(f)) != EOF;) n += c == '\n';
    fclose(f);
    return n;
}

/* "12.0%" or "–". */
static const char *pct(char *buf, size_t n, double v) {
    if (isnan(v)) snprintf(buf, n, "–");
    else snprintf(buf, n, "%.1f%%", 100 * v);
    return buf;
}

/* Half width of the 95% Wilson interval of a share p of n, in points. */
static double ci95(double p, double n) {
    if (!(n > 0) || isnan(p)) return NAN;
    const double z = 1.96, d = 1 + z * z / n;
    return 100 * z * sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d;
}

/* ---- lesson 4: chain of thought ---- */

/* The qa record's share right, k/n with its Wilson interval (n = 0 when the record is missing). */
static lesson_share qa_share(json_object *q) {
    double k = num(q, "correct"), n = num(q, "n");
    return isnan(k) || isnan(n) ? lesson_share_of(0, 0) : lesson_share_of((int)k, (int)n);
}

/* "steps 31/100 = 31.0% [22.8, 40.6]" into a cell. */
static void cot_share_cell(lesson_row *r, const char *what, lesson_share s) {
    lesson_cat(r->sample, sizeof r->sample, "%s %d/%d = %.1f%% [%.1f, %.1f]; ", what, s.k, s.n, 100 * s.p, 100 * s.lo,
               100 * s.hi);
}

/* "steps − direct +27.0 points [+17.9, +35.6]": the difference a − b with its Newcombe interval; returns its sign
 * (+1 when the whole interval is above 0, -1 below, 0 when it holds 0). */
static int cot_diff_cell(lesson_row *r, const char *what, lesson_share a, lesson_share b) {
    double lo, hi;
    int v = lesson_diff(a, b, &lo, &hi);
    lesson_cat(r->sample, sizeof r->sample, "%s %+.1f points [%+.1f, %+.1f]", what, 100 * (a.p - b.p), 100 * lo,
               100 * hi);
    return v;
}

void lesson_b_cot(const lesson_records *rec, lesson_row *r) {
    const char *o = rec->out_dir;
    json_object *jd = record(o, "qa", "cot-direct"), *js = record(o, "qa", "cot-steps"), *jg = record(o, "qa", "cot-grpo");
    lesson_share d = qa_share(jd), s = qa_share(js), g = qa_share(jg);
    json_object_put(jd);
    json_object_put(js);
    json_object_put(jg);
    if (!d.n || !s.n) return;
    char a[16], b[16], c[16];
    snprintf(r->figures, sizeof r->figures, "held-out sums of two 2-digit numbers: direct answers %s, step by step %s; "
             "after GRPO with the right answer as reward %s", pct(a, sizeof a, d.p), pct(b, sizeof b, s.p),
             g.n ? pct(c, sizeof c, g.p) : "–");
    cot_share_cell(r, "direct", d);
    cot_share_cell(r, "steps", s);
    if (g.n) cot_share_cell(r, "GRPO", g);
    int vs = cot_diff_cell(r, "steps − direct", s, d);
    int vg = 0;
    if (g.n) {
        lesson_cat(r->sample, sizeof r->sample, "; ");
        vg = cot_diff_cell(r, "GRPO − steps", g, s);
    }
    const char *rl = !g.n ? "" : vg > 0 ? " Rewarding only a right final answer (GRPO) then raised it further, by more "
                                          "than the noise of these sums."
                       : g.p > s.p ? " Rewarding only a right final answer (GRPO) then raised it, but by less than the "
                                     "noise of these sums can confirm."
                       : vg < 0 ? " GRPO on the final answer lowered it here."
                                : " GRPO on the final answer did not raise it in these few steps.";
    if (vs > 0)
        lesson_cat(r->reading, sizeof r->reading, "The same model, fine-tuned on the same sums for the same steps, "
                   "adds far better when it writes each column and its carry before the answer (%s vs %s): each step "
                   "is a one-digit fact and a digit copied from the question, while the whole sum at once needs every "
                   "carry in one go.%s", b, a, rl);
    else
        lesson_cat(r->reading, sizeof r->reading, "Here the step-by-step answers did not beat the direct ones clearly "
                   "(%s vs %s): the effect did not appear at this size and number of steps.%s", b, a, rl);
}

/* ---- lesson 5: tools and retrieval ---- */

void lesson_b_tools(const lesson_records *rec, lesson_row *r) {
    const char *o = rec->out_dir;
    json_object *m = record(o, "qa", "memory"), *t = record(o, "qa", "tools");
    if (m && t) {
        char a[16], b[16], c[16], d[16], e[16], f[16];
        double ma = task_acc(m, "author"), ta = task_acc(t, "author"), mc = task_acc(m, "calc"), tc = task_acc(t, "calc");
        snprintf(r->figures, sizeof r->figures, "who wrote 《X》 (held-out poems): from memory %s → through `search` %s; "
                 "arithmetic: from memory %s → with the calculator %s; second line of 《X》: %s → %s",
                 pct(a, sizeof a, ma), pct(b, sizeof b, ta), pct(c, sizeof c, mc), pct(d, sizeof d, tc),
                 pct(e, sizeof e, task_acc(m, "line2")), pct(f, sizeof f, task_acc(t, "line2")));
        double n = task_n(t, "author");
        snprintf(r->sample, sizeof r->sample, "%.0f questions per task; with tools ±%.0f (author), ±%.0f (arithmetic) "
                 "points", n, ci95(ta, n), ci95(tc, task_n(t, "calc")));
        if (ta > ma + 0.1 || tc > mc + 0.1)
            snprintf(r->reading, sizeof r->reading, "A small model cannot hold 17k authors or do exact arithmetic in "
                     "its weights; fine-tuned to call a search over the poems and a calculator, it looks the answer "
                     "up or computes it and copies the result into its reply.");
        else
            snprintf(r->reading, sizeof r->reading, "The tools did not raise accuracy here (%s → %s author, %s → %s "
                     "arithmetic): the model did not learn to call them and copy the results in these steps.", a, b,
                     c, d);
    }
    json_object_put(m);
    json_object_put(t);
}

/* ---- lesson 6: two judges ---- */

static const char *const judged[] = {"dpo", "grpo", "ppo", "ppo-fixed"};

/* +1: the reward model says the model beats SFT and the rules do not (reward over-optimisation); -1: the other way
 * round (the rules prefer it, the reward model does not: not hacking, a blind spot of the reward model); 0: agree. */
static int disagrees(json_object *c) {
    double rm = num(c, "rm_win_rate"), rule = num(c, "rule_win_rate");
    if (isnan(rm) || isnan(rule)) return 0;
    if (rm > 0.5 && rule <= 0.5) return 1;
    if (rm < 0.5 && rule > 0.5) return -1;
    return 0;
}

void lesson_b_judges(const lesson_records *rec, lesson_row *r) {
    const char *o = rec->out_dir;
    char a[16], b[16];
    json_object *ppo = record(o, "compare", "ppo"), *fixed = record(o, "compare", "ppo-fixed");
    if (!ppo) return;
    lesson_cat(r->figures, sizeof r->figures, "reward model held-out accuracy %s; win rate over SFT by the reward "
               "model / by the rules (KL):", pct(a, sizeof a, metric(o, "rm", "eval_accuracy", 0)));
    for (int i = 0; i < 4; i++) {
        json_object *c = record(o, "compare", judged[i]);
        if (!c) continue;
        double kl = metric(o, judged[i], "kl", 0);
        lesson_cat(r->figures, sizeof r->figures, "%s %s %s / %s", i ? "," : "", judged[i],
                   pct(a, sizeof a, num(c, "rm_win_rate")), pct(b, sizeof b, num(c, "rule_win_rate")));
        if (!isnan(kl)) lesson_cat(r->figures, sizeof r->figures, " (KL %.2f)", kl);
        if (i == 0) snprintf(r->sample, sizeof r->sample, "%.0f held-out 'write' prompts per comparison; ±%.0f "
                             "points at 50%%", num(c, "n"), ci95(0.5, num(c, "n")));
        json_object_put(c);
    }
    double frm = num(fixed, "rm_win_rate"), frule = num(fixed, "rule_win_rate");
    int agree = frm >= 0.6 && frule > 0.5;
    const char *fix = agree ? "The fixed PPO (each score less its prompt's group mean, the rule score added to the "
                              "reward model's at twice its weight, rollouts at temperature 0.3 scored at that "
                              "temperature) beats SFT by both judges."
                            : "The fixed PPO (each score less its prompt's group mean, the rule score added to the "
                              "reward model's at twice its weight, rollouts at temperature 0.3 scored at that "
                              "temperature) did not reach ≥ 60% by the reward model and > 50% by the rules in this "
                              "run.";
    if (disagrees(ppo) > 0)
        snprintf(r->reading, sizeof r->reading, "The two judges disagree on PPO (reward model %s, rules %s): its "
                 "reward went up by the learnt judge but not by the rules — reward over-optimisation, the policy "
                 "found what the reward model scores well rather than what was asked (curve: ppo/hacking.svg). %s",
                 pct(a, sizeof a, num(ppo, "rm_win_rate")), pct(b, sizeof b, num(ppo, "rule_win_rate")), fix);
    else if (disagrees(ppo) < 0)
        snprintf(r->reading, sizeof r->reading, "The two judges disagree on PPO the other way round (reward model "
                 "%s, rules %s): the rules prefer its answers, the reward model does not — not reward hacking; the "
                 "reward model misses what the rules check (curve: ppo/hacking.svg). %s",
                 pct(a, sizeof a, num(ppo, "rm_win_rate")), pct(b, sizeof b, num(ppo, "rule_win_rate")), fix);
    else
        snprintf(r->reading, sizeof r->reading, "The judges agree on PPO here (reward model %s, rules %s; both "
                 "scores over the steps: ppo/hacking.svg). %s", pct(a, sizeof a, num(ppo, "rm_win_rate")),
                 pct(b, sizeof b, num(ppo, "rule_win_rate")), fix);
    json_object_put(ppo);
    json_object_put(fixed);
}

/* ---- lesson 7: self-instruct ---- */

void lesson_b_self_instruct(const lesson_records *rec, lesson_row *r) {
    const char *o = rec->out_dir;
    json_object *s = record(o, "tasks", "student-synthetic"), *h = record(o, "tasks", "student-human");
    if (s && h) {
        char a[16], b[16];
        long asked = count_lines(o, "self-instruct/prompts.jsonl"), kept = count_lines(o, "self-instruct/sft.jsonl");
        double as = task_acc(s, "write"), ah = task_acc(h, "write"), n = task_n(h, "write");
        snprintf(r->figures, sizeof r->figures, "the SFT model wrote %ld instructions and answered them, the rules "
                 "kept %ld; 'write' compliance of a student SFT'd from the base on them alone %s, on the human-style "
                 "data %s (same steps)", asked, kept, pct(a, sizeof a, as), pct(b, sizeof b, ah));
        snprintf(r->sample, sizeof r->sample, "%.0f held-out prompts; ±%.0f / ±%.0f points", n, ci95(as, n),
                 ci95(ah, n));
        snprintf(r->reading, sizeof r->reading, "%s", as >= ah - 0.05
                 ? "Filtered by the rules, the teacher's own answers to instructions it made up teach a student the "
                   "task about as well as the human-style data: the data can be bootstrapped."
                 : "The synthetic data taught less than the human-style data here: the teacher's answers, even "
                   "filtered, are fewer and less varied than real poems.");
    }
    json_object_put(s);
    json_object_put(h);
}

/* ---- lesson 8: deployment ---- */

static const char *const variants[] = {"f32", "f16", "q8_0", "q4_0", "pruned30", "pruned30+ft", "pruned50",
                                       "pruned50+ft", "student"};
#define N_VARIANTS (int)(sizeof variants / sizeof variants[0])

typedef struct {
    double mb, rss_mb, tps, ppl, write, n;
} variant_figures;

static variant_figures figures_of(const char *o, const char *label) {
    json_object *d = record(o, "decode", label), *p = record(o, "perplexity", label), *t = record(o, "tasks", label);
    variant_figures v = {num(d, "file_bytes") / 1e6, num(d, "peak_rss_bytes") / 1e6, num(d, "tok_per_s"),
                         num(p, "ppl"), task_acc(t, "write"), task_n(t, "write")};
    json_object_put(d);
    json_object_put(p);
    json_object_put(t);
    return v;
}

void lesson_b_deploy(const lesson_records *rec, lesson_row *r) {
    const char *o = rec->out_dir;
    variant_figures f = figures_of(o, "f32"), q = figures_of(o, "q4_0"), p = figures_of(o, "pruned50"),
                    pf = figures_of(o, "pruned50+ft"), s = figures_of(o, "student");
    if (isnan(f.mb)) return;
    char a[16], b[16], c[16], d[16], e[16];
    snprintf(r->figures, sizeof r->figures, "f32 %.1f MB, perplexity %.1f, compliance %s, %.0f tok/s; q4_0 %.1f MB, "
             "%.1f, %s, %.0f tok/s; pruned 50%% %.1f, %s (after a short fine-tune %.1f, %s); distilled half-size "
             "student %.1f MB, %.1f, %s (table: lesson 8)", f.mb, f.ppl, pct(a, sizeof a, f.write), f.tps, q.mb,
             q.ppl, pct(b, sizeof b, q.write), q.tps, p.ppl, pct(c, sizeof c, p.write), pf.ppl,
             pct(d, sizeof d, pf.write), s.mb, s.ppl, pct(e, sizeof e, s.write));
    snprintf(r->sample, sizeof r->sample, "%.0f held-out 'write' prompts per variant (±%.0f points at f32)", f.n,
             ci95(f.write, f.n));
    lesson_cat(r->reading, sizeof r->reading, "%s", q.mb < f.mb / 3 && q.ppl < f.ppl * 1.1
               ? "Quantising to 4 bits shrinks the file several times at little cost in perplexity. "
               : "Quantising shrank the file but cost quality here. ");
    lesson_cat(r->reading, sizeof r->reading, "%s", pf.ppl < p.ppl ? "Pruning half the weights costs quality (a dense "
               "file is no smaller); a short fine-tune wins some back. " : "Pruning half the weights costs quality (a "
               "dense file is no smaller); the short fine-tune did not win it back here. ");
    lesson_cat(r->reading, sizeof r->reading, "%s", s.ppl > f.ppl ? "The distilled student is smaller but clearly "
               "worse." : "The distilled student is smaller and as good here.");
}

/* ---- detail sections ---- */

static void section_cot_tools(FILE *f, const char *o) {
    static const char *const cot[] = {"cot-direct", "cot-steps", "cot-grpo"};
    char a[16];
    fprintf(f, "## Lesson 4: chain of thought\n\n| model | held-out sums | accuracy | 95%% interval |\n|---|---|---|---|\n");
    for (int i = 0; i < 3; i++) {
        json_object *q = record(o, "qa", cot[i]);
        double acc = num(q, "accuracy"), n = num(q, "n");
        fprintf(f, "| %s | %.0f | %s | ±%.1f points |\n", cot[i], n, pct(a, sizeof a, acc), ci95(acc, n));
        json_object_put(q);
    }
    fprintf(f, "\ncot-direct and cot-steps: the SFT model fine-tuned on the same training sums (`data cot`), answered "
               "as `答：83` or column by column (`7+6=13，4+3+1=08，答：83`, for 47+36); cot-grpo: cot-steps after GRPO "
               "whose reward is 1 for a right final number (`--reward-fn answer`). Greedy answers, scored on the last "
               "number. Samples: cot-steps/answers_qa.jsonl.\n\n");
    static const char *const tl[] = {"memory", "tools-off", "tools"};
    static const char *const what[] = {"SFT model, no tools", "tool-tuned model, tools not given",
                                       "tool-tuned model with calculator + search"};
    char b[16], c[16], d[16];
    fprintf(f, "## Lesson 5: tools and retrieval\n\n| model | calc | author | second line | which poem |\n"
               "|---|---|---|---|---|\n");
    for (int i = 0; i < 3; i++) {
        json_object *q = record(o, "qa", tl[i]);
        fprintf(f, "| %s | %s | %s | %s | %s |\n", what[i], pct(a, sizeof a, task_acc(q, "calc")),
                pct(b, sizeof b, task_acc(q, "author")), pct(c, sizeof c, task_acc(q, "line2")),
                pct(d, sizeof d, task_acc(q, "which")));
        json_object_put(q);
    }
    fprintf(f, "\nHeld-out questions of `data tools` (held-out poems, fresh arithmetic). With tools the answer goes "
               "through the agent loop of `chat --tools` (`eval --qa --tools calculator,search --rag poems.db`); the "
               "tools are not listed in the system prompt (`--tool-specs 0`: the listing would take half of the "
               "256-token context). Samples: sft-tools/answers_qa.jsonl.\n\n");
}

static void section_judges(FILE *f, const char *o) {
    char a[16], b[16];
    fprintf(f, "## Lesson 6: two judges — the reward model and the rules\n\n| model | win rate (reward model) | "
               "win rate (rules) | KL to reference | judges |\n|---|---|---|---|---|\n");
    for (int i = 0; i < 4; i++) {
        json_object *c = record(o, "compare", judged[i]);
        if (!c) continue;
        char kl[32] = "–";
        if (!isnan(metric(o, judged[i], "kl", 0))) snprintf(kl, sizeof kl, "%.3f", metric(o, judged[i], "kl", 0));
        fprintf(f, "| %s | %s | %s | %s | %s |\n", judged[i], pct(a, sizeof a, num(c, "rm_win_rate")),
                pct(b, sizeof b, num(c, "rule_win_rate")), kl,
                disagrees(c) > 0   ? "**disagree: reward over-optimisation**"
                : disagrees(c) < 0 ? "disagree: the rules prefer it, the reward model does not"
                                   : "agree");
        json_object_put(c);
    }
    fprintf(f, "\n![reward-model score and rule score over PPO steps](ppo/hacking.svg)\n\nThe curve: per PPO step, the "
               "mean reward-model score of the rollouts (`reward`, what PPO maximises) and their mean poem-rule score "
               "(`monitor_reward`, logged with `--monitor-fn poem`, never trained on), for the first PPO and the fixed "
               "one. Where the first rises while the second does not, the policy is learning the reward model's "
               "blind spots. The reward model learnt real poems against corrupted copies (a line too long or too "
               "short, a repeated line, a truncated poem, the wrong form); it never saw repeated characters, which "
               "the rules penalise, so a policy may repeat characters and still please it. The fixed PPO (`--group-baseline --whiten-rewards --anchor-fn poem --anchor-weight 2 "
               "--temperature 0.3`) trains on the reward model's score plus twice the rule score, each less the "
               "mean of the answers to the same prompt "
               "(the reward model scores some forms far lower than others, whatever the answer), and samples at "
               "temperature 0.3 with its log-probabilities at that temperature: the judges read greedy answers, and "
               "samples at temperature 1 are not where greedy answers go wrong. Its rollouts' rule score is thus "
               "part of its reward and drawn at another temperature than the first PPO's: the win rates above, on "
               "greedy answers, are the comparable figures.\n\n");
}

static void section_self_instruct(FILE *f, const char *o) {
    char a[16];
    fprintf(f, "## Lesson 7: self-instruct data\n\n| student (SFT from the base model) | training conversations | "
               "'write' compliance |\n|---|---|---|\n");
    json_object *s = record(o, "tasks", "student-synthetic"), *h = record(o, "tasks", "student-human");
    fprintf(f, "| synthetic: instructions and answers by the SFT model, kept by the rules | %ld | %s |\n",
            count_lines(o, "self-instruct/sft.jsonl"), pct(a, sizeof a, task_acc(s, "write")));
    fprintf(f, "| human-style: data/sft.jsonl | %ld | %s |\n\n", count_lines(o, "data/sft.jsonl"),
            pct(a, sizeof a, task_acc(h, "write")));
    fprintf(f, "`data instruct` lets the SFT model continue `《` into new headings 《title》（form） (titles of the "
               "corpus and repeats dropped); `distill --synthesize --keep-fn poem --keep-min 1 --tries K` has it answer "
               "them and keeps only answers the poem rules pass; an answer the rules reject is drawn again, sampled, "
               "up to K answers an instruction (rejection sampling; the command is in commands.sh).\n\n");
    json_object_put(s);
    json_object_put(h);
}

/* A scatter of file size (x, log) against 'write' compliance (y), one labelled point per variant. */
static void write_scatter(const char *o, const variant_figures *v) {
    char path[4096];
    snprintf(path, sizeof path, "%s/deploy.svg", o);
    jl_atomic_file af;
    if (jl_atomic_open(&af, path) != JL_OK) return;
    const double W = 640, H = 400, L = 60, R = 20, T = 30, B = 50;
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < N_VARIANTS; i++)
        if (v[i].mb > 0) {
            lo = fmin(lo, log10(v[i].mb));
            hi = fmax(hi, log10(v[i].mb));
        }
    if (!(hi > lo)) hi = lo + 1;
    lo -= 0.1 * (hi - lo);
    hi += 0.1 * (hi - lo);
    FILE *f = af.f;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
               "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text x=\"%.0f\" y=\"18\" text-anchor=\"middle\">file size vs 'write' compliance</text>\n", W / 2);
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", L, H - B, W - R, H - B);
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", L, T, L, H - B);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">file size (MB, log scale)</text>\n", W / 2, H - 12);
    fprintf(f, "<text x=\"14\" y=\"%.0f\" transform=\"rotate(-90 14 %.0f)\" text-anchor=\"middle\">compliance (%%)</text>\n",
            H / 2, H / 2);
    for (int k = 0; k <= 4; k++) {
        double y = H - B - k * (H - B - T) / 4;
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">%d</text>\n", L - 6, y + 4, 25 * k);
        double xv = lo + k * (hi - lo) / 4, x = L + k * (W - L - R) / 4;
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">%.2g</text>\n", x, H - B + 16, pow(10, xv));
    }
    for (int i = 0; i < N_VARIANTS; i++) {
        if (!(v[i].mb > 0) || isnan(v[i].write)) continue;
        double x = L + (log10(v[i].mb) - lo) / (hi - lo) * (W - L - R), y = H - B - v[i].write * (H - B - T);
        fprintf(f, "<circle data-name=\"%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#1f77b4\"/>\n<text x=\"%.1f\" "
                   "y=\"%.1f\">%s</text>\n", variants[i], x, y, x + 6, y - 6 - 10 * (i % 2), variants[i]);
    }
    fprintf(f, "</svg>\n");
    if (ferror(f)) jl_atomic_abort(&af);
    else (void)jl_atomic_commit(&af);
}

static void section_deploy(FILE *f, const char *o) {
    variant_figures v[N_VARIANTS];
    char a[16];
    fprintf(f, "## Lesson 8: deployment trade-offs (the SFT model)\n\n| variant | file | peak RSS | decode tok/s | "
               "held-out perplexity | 'write' compliance |\n|---|---|---|---|---|---|\n");
    for (int i = 0; i < N_VARIANTS; i++) {
        v[i] = figures_of(o, variants[i]);
        fprintf(f, "| %s | %.2f MB | %.1f MB | %.0f | %.2f | %s |\n", variants[i], v[i].mb, v[i].rss_mb, v[i].tps,
                v[i].ppl, pct(a, sizeof a, v[i].write));
    }
    write_scatter(o, v);
    fprintf(f, "\n![file size against compliance](deploy.svg)\n\nAll measured in this run: file size on disk; peak "
               "RSS and decode speed of `generate --summary` (greedy, one process per variant, loading included); "
               "perplexity on the held-out poems (`eval --data`; a GGUF is scored with its weights dequantised); "
               "compliance on held-out 'write' prompts (`eval --only write`). Pruned: magnitude pruning of the linear "
               "layers (`prune --sparsity`), stored dense (same size); +ft: a short SFT on the same data, then pruned "
               "again to the same sparsity. student: a model of half the layers and width distilled from the base "
               "model on the pretraining text (`distill`), then SFT'd like the teacher.\n\n");
}

void pipeline_lessons_b_sections(FILE *f, const char *out_dir) {
    section_cot_tools(f, out_dir);
    section_judges(f, out_dir);
    section_self_instruct(f, out_dir);
    section_deploy(f, out_dir);
}
