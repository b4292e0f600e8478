/* The report's table of lessons (see pipeline_lessons.h): helpers that read the summary records, then one
 * function per row, then the table of rows. */
#include "cli/pipeline_lessons.h"
#include "cli/pipeline_lessons_b.h"
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading the records ---- */

static const char *str_field(json_object *o, const char *key) {
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                                                              : NULL;
}

static int field_is(json_object *o, const char *key, const char *want) {
    const char *v = str_field(o, key);
    return v && strcmp(v, want) == 0;
}

json_object *lesson_find(const lesson_records *r, const char *kind, const char *label) {
    for (int i = r->n - 1; i >= 0; i--)
        if (field_is(r->v[i], "kind", kind) && (!label || field_is(r->v[i], "label", label))) return r->v[i];
    return NULL;
}

int lesson_series(const lesson_records *r, const char *kind, const char *lesson, json_object **out, int max) {
    int n = 0;
    for (int i = 0; i < r->n && n < max; i++)
        if (field_is(r->v[i], "kind", kind) && field_is(r->v[i], "lesson", lesson)) out[n++] = r->v[i];
    return n;
}

double lesson_num(json_object *rec, const char *path) {
    json_object *o = rec;
    char key[128];
    for (const char *at = path; o && *at;) {
        size_t len = strcspn(at, ".");
        if (len >= sizeof key) return NAN;
        memcpy(key, at, len);
        key[len] = '\0';
        if (!json_object_object_get_ex(o, key, &o)) return NAN;
        at += len + (at[len] == '.');
    }
    if (!o || !(json_object_is_type(o, json_type_int) || json_object_is_type(o, json_type_double))) return NAN;
    return json_object_get_double(o);
}

/* ---- shares and intervals ---- */

lesson_share lesson_share_of(int k, int n) {
    lesson_share s = {k, n, NAN, NAN, NAN};
    if (n <= 0) return s;
    const double z = 1.959964, p = (double)k / n, z2 = z * z / n;
    double centre = (p + z2 / 2) / (1 + z2), half = z * sqrt(p * (1 - p) / n + z2 / (4 * n)) / (1 + z2);
    s.p = p;
    s.lo = centre - half < 0 ? 0 : centre - half;
    s.hi = centre + half > 1 ? 1 : centre + half;
    return s;
}

lesson_share lesson_task_share(json_object *rec, const char *path) {
    char key[160];
    snprintf(key, sizeof key, "%s.n", path);
    double n = rec ? lesson_num(rec, key) : NAN;
    snprintf(key, sizeof key, "%s.correct", path);
    double k = rec ? lesson_num(rec, key) : NAN;
    return isnan(n) || isnan(k) ? lesson_share_of(0, 0) : lesson_share_of((int)k, (int)n);
}

int lesson_diff(lesson_share a, lesson_share b, double *lo, double *hi) {
    if (a.n <= 0 || b.n <= 0) {
        *lo = *hi = NAN;
        return 0;
    }
    double d = a.p - b.p;
    *lo = d - sqrt((a.p - a.lo) * (a.p - a.lo) + (b.hi - b.p) * (b.hi - b.p));
    *hi = d + sqrt((a.hi - a.p) * (a.hi - a.p) + (b.p - b.lo) * (b.p - b.lo));
    return *lo > 0 ? 1 : *hi < 0 ? -1 : 0;
}

void lesson_cat(char *cell, size_t size, const char *fmt, ...) {
    size_t used = strlen(cell);
    if (used + 1 >= size) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cell + used, size - used, fmt, ap);
    va_end(ap);
}

static const char *pct(char *buf, size_t n, double p) {
    if (isnan(p)) snprintf(buf, n, "–");
    else snprintf(buf, n, "%.1f%%", 100 * p);
    return buf;
}

#define PCT(p) pct((char[16]){0}, 16, (p))

static void share_sample(char *cell, size_t size, const char *what, lesson_share s) {
    lesson_cat(cell, size, "%s: %d/%d = %.1f%% [%.1f, %.1f]", what, s.k, s.n, 100 * s.p, 100 * s.lo, 100 * s.hi);
}

static void diff_sample(char *cell, size_t size, lesson_share a, lesson_share b) {
    double lo, hi;
    lesson_diff(a, b, &lo, &hi);
    lesson_cat(cell, size, "difference %+.1f points [%+.1f, %+.1f]", 100 * (a.p - b.p), 100 * lo, 100 * hi);
}

/* ---- row 1: why pretrain ---- */

static void row_pretrain(const lesson_records *r, lesson_row *row) {
    json_object *base = lesson_find(r, "tasks", "sft"), *scratch = lesson_find(r, "tasks", "sft-scratch");
    if (!base || !scratch) return;
    lesson_share a = lesson_task_share(base, "write"), b = lesson_task_share(scratch, "write");
    double pa = exp(lesson_num(lesson_find(r, "train", "sft"), "val_loss"));
    double pb = exp(lesson_num(lesson_find(r, "train", "sft-scratch"), "val_loss"));
    lesson_cat(row->figures, sizeof row->figures, "form compliance: SFT from the base %s, from random init %s; "
               "held-out conversation perplexity %.2f vs %.2f", PCT(a.p), PCT(b.p), pa, pb);
    share_sample(row->sample, sizeof row->sample, "from base", a);
    lesson_cat(row->sample, sizeof row->sample, "; ");
    share_sample(row->sample, sizeof row->sample, "from scratch", b);
    lesson_cat(row->sample, sizeof row->sample, "; ");
    diff_sample(row->sample, sizeof row->sample, a, b);
    double lo, hi;
    int v = lesson_diff(a, b, &lo, &hi);
    const char *ppl = pa < pb ? "and the model from the base predicts held-out conversations better"
                              : "and the model from the base does not predict held-out conversations better";
    if (v > 0)
        lesson_cat(row->reading, sizeof row->reading, "Pretraining pays: the same SFT run complies far more often "
                   "when it starts from the pretrained base (%s vs %s), %s (perplexity %.2f vs %.2f).", PCT(a.p),
                   PCT(b.p), ppl, pa, pb);
    else
        lesson_cat(row->reading, sizeof row->reading, "The benefit of pretraining did not appear in compliance at this "
                   "scale (%s from the base vs %s from random init, %s), %s (perplexity %.2f vs %.2f).", PCT(a.p),
                   PCT(b.p), v < 0 ? "random init ahead" : "no clear difference", ppl, pa, pb);
}

/* ---- row 2: adapters keep what was learnt ---- */

static void row_adapters(const lesson_records *r, lesson_row *row) {
    double b = lesson_num(lesson_find(r, "perplexity", "base"), "ppl");
    double f = lesson_num(lesson_find(r, "perplexity", "sft"), "ppl");
    double l = lesson_num(lesson_find(r, "perplexity", "sft-lora"), "ppl");
    json_object *tf = lesson_find(r, "train", "sft"), *tl = lesson_find(r, "train", "sft-lora");
    if (isnan(b) || isnan(f) || isnan(l) || !tf || !tl) return;
    lesson_share cf = lesson_task_share(lesson_find(r, "tasks", "sft"), "write");
    lesson_share cl = lesson_task_share(lesson_find(r, "tasks", "sft-lora"), "write");
    double rf = f / b - 1, rl = l / b - 1;
    double nf = lesson_num(tf, "trainable"), nl = lesson_num(tl, "trainable"), np = lesson_num(tl, "params");
    double of = lesson_num(tf, "optimizer_bytes"), ol = lesson_num(tl, "optimizer_bytes");
    lesson_cat(row->figures, sizeof row->figures, "held-out poem perplexity: base %.2f, after full SFT %.2f (%+.0f%%), "
               "after LoRA SFT %.2f (%+.0f%%); form compliance full %s, LoRA %s; trainable parameters %.2fM vs "
               "%.3fM (%.1f%%); optimizer state %.1f MB vs %.2f MB", b, f, 100 * rf, l, 100 * rl, PCT(cf.p),
               PCT(cl.p), nf / 1e6, nl / 1e6, 100 * nl / np, of / 1e6, ol / 1e6);
    share_sample(row->sample, sizeof row->sample, "full", cf);
    lesson_cat(row->sample, sizeof row->sample, "; ");
    share_sample(row->sample, sizeof row->sample, "LoRA", cl);
    double lo, hi;
    int v = lesson_diff(cl, cf, &lo, &hi);
    const char *comply = v > 0 ? "complies more often" : v < 0 ? "complies less often" : "complies about as often";
    if (rf < 0.02)
        lesson_cat(row->reading, sizeof row->reading, "Forgetting did not appear: full SFT left the pretraining "
                   "perplexity within 2%% (%+.1f%%), so the adapter has nothing to keep at this scale; LoRA %s "
                   "(%s vs %s).", 100 * rf, comply, PCT(cl.p), PCT(cf.p));
    else if (rl < 0.9 * rf)
        lesson_cat(row->reading, sizeof row->reading, "%s: full SFT raised the held-out poem perplexity by %.0f%%, LoRA by %.0f%%, training %.1f%% of the parameters with %.0f× "
                   "less optimizer memory; it %s (%s vs %s).",
                   rl < 0.5 * rf ? "The adapter keeps what pretraining learnt" : "The adapter forgets less, though not "
                                                                                "by half",
                   100 * rf, 100 * rl, 100 * nl / np, of / ol, comply, PCT(cl.p), PCT(cf.p));
    else
        lesson_cat(row->reading, sizeof row->reading, "LoRA did not forget less here: perplexity %+.0f%% with the "
                   "adapter vs %+.0f%% after full SFT, though it trains %.1f%% of the parameters with %.0f× less "
                   "optimizer memory; it %s (%s vs %s).", 100 * rl, 100 * rf, 100 * nl / np, of / ol, comply,
                   PCT(cl.p), PCT(cf.p));
}

/* ---- row 3: in-context learning ---- */

static const char *const icl_tasks[] = {"write", "continue", "form", "title"};
#define ICL_TASKS ((int)(sizeof icl_tasks / sizeof icl_tasks[0]))

static int by_shots(const void *a, const void *b) {
    double x = lesson_num(*(json_object *const *)a, "shots"), y = lesson_num(*(json_object *const *)b, "shots");
    return (x > y) - (x < y);
}

/* The copy probe in words. A model that copies (an induction head) predicts most of the second showing: its loss
 * falls well below half of the first's. A few percent lower (2-4% for the session 7 and 8 base models, which copy
 * neither titles nor authors nor the examples' format) is not called copying. */
static const char *copy_reading(double first, double second) {
    if (second < 0.5 * first) return "lower: it copies";
    if (second < first) return "lower, but far from copying";
    return "higher: no copying";
}

static void row_icl(const lesson_records *r, lesson_row *row) {
    json_object *s[16];
    int n = lesson_series(r, "tasks", "icl", s, 16);
    if (n < 2) return;
    qsort(s, (size_t)n, sizeof *s, by_shots);
    int best_t = -1, best_k = -1;
    double best = -2;
    for (int t = 0; t < ICL_TASKS; t++) {
        lesson_cat(row->figures, sizeof row->figures, "%s%s:", t ? "; " : "", icl_tasks[t]);
        lesson_share zero = lesson_task_share(s[0], icl_tasks[t]);
        for (int k = 0; k < n; k++) {
            lesson_share sk = lesson_task_share(s[k], icl_tasks[t]);
            lesson_cat(row->figures, sizeof row->figures, " %s", PCT(sk.p));
            double lo, hi;
            lesson_diff(sk, zero, &lo, &hi);
            if (k > 0 && sk.n && zero.n && lo > best) best = lo, best_t = t, best_k = k;
        }
    }
    lesson_cat(row->figures, sizeof row->figures, " (at");
    for (int k = 0; k < n; k++) lesson_cat(row->figures, sizeof row->figures, " %.0f", lesson_num(s[k], "shots"));
    lesson_cat(row->figures, sizeof row->figures, " shots; [curve](icl.svg))");
    json_object *copy = lesson_find(r, "copy", "base"); /* eval --copy-probe: what the few-shot prompts build on */
    double c1 = lesson_num(copy, "first_loss"), c2 = lesson_num(copy, "second_loss");
    if (copy && c1 > 0)
        lesson_cat(row->figures, sizeof row->figures, "; copy probe (%.0f random %.0f-token sequences shown twice): "
                   "loss %.2f nats/token on the second showing vs %.2f on the first (%.0f%% %s)",
                   lesson_num(copy, "sequences"), lesson_num(copy, "length"), c2, c1, 100 * fabs(1 - c2 / c1),
                   copy_reading(c1, c2));
    if (best_t < 0) return;
    lesson_share a = lesson_task_share(s[best_k], icl_tasks[best_t]), z = lesson_task_share(s[0], icl_tasks[best_t]);
    double shown = lesson_num(s[best_k], "mean_shots"), shots = lesson_num(s[best_k], "shots");
    share_sample(row->sample, sizeof row->sample, "0-shot", z);
    lesson_cat(row->sample, sizeof row->sample, "; %.0f-shot ", shots);
    share_sample(row->sample, sizeof row->sample, icl_tasks[best_t], a);
    lesson_cat(row->sample, sizeof row->sample, "; ");
    diff_sample(row->sample, sizeof row->sample, a, z);
    lesson_cat(row->sample, sizeof row->sample, "; %.1f examples fitted the context on average", shown);
    double lo, hi;
    if (lesson_diff(a, z, &lo, &hi) > 0)
        lesson_cat(row->reading, sizeof row->reading, "In-context learning appeared: shown %.0f solved examples, the "
                   "base model's '%s' score rose from %s to %s with no weight changed (the task with the clearest "
                   "gain of the %d measured).", shots, icl_tasks[best_t], PCT(z.p), PCT(a.p), ICL_TASKS);
    else
        lesson_cat(row->reading, sizeof row->reading, "In-context learning did not appear: no task improved beyond "
                   "chance with examples (clearest: '%s' %s at 0 shots, %s at %.0f).", icl_tasks[best_t], PCT(z.p),
                   PCT(a.p), shots);
}

/* ---- row 9: following the request ---- */

static void row_follow(const lesson_records *r, lesson_row *row) {
    json_object *sft = lesson_find(r, "tasks", "sft");
    if (!sft) return;
    static const char *const models[] = {"sft", "sft-lora", "dpo", "grpo", "ppo"};
    lesson_cat(row->figures, sizeof row->figures, "asked title in the heading / distinct lines / greeting+identity:");
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        json_object *m = lesson_find(r, "tasks", models[i]);
        if (!m) continue;
        double lines = lesson_num(m, "lines"), distinct = lesson_num(m, "distinct_lines");
        lesson_cat(row->figures, sizeof row->figures, "%s %s %s / %s / %s", i ? ";" : "", models[i],
                   PCT(lesson_task_share(m, "title").p), PCT(lines > 0 ? distinct / lines : NAN),
                   PCT(lesson_task_share(m, "chat").p));
    }
    lesson_share t = lesson_task_share(sft, "title"), c = lesson_task_share(sft, "chat");
    double lines = lesson_num(sft, "lines"), distinct = lesson_num(sft, "distinct_lines");
    double d = lines > 0 ? distinct / lines : NAN;
    share_sample(row->sample, sizeof row->sample, "SFT title", t);
    lesson_cat(row->sample, sizeof row->sample, "; ");
    share_sample(row->sample, sizeof row->sample, "SFT greeting+identity (held-out phrasings)", c);
    lesson_cat(row->sample, sizeof row->sample, "; %.0f distinct of %.0f lines", distinct, lines);
    lesson_cat(row->reading, sizeof row->reading, "%s (%s); ",
               t.p >= 0.9 ? "SFT writes the poem it was asked for, headed with the requested title"
               : t.p >= 0.5 ? "SFT mostly heads its poem with the requested title"
                            : "SFT mostly ignores the requested title: copying from the request has not formed",
               PCT(t.p));
    lesson_cat(row->reading, sizeof row->reading, "%s (%s distinct); ",
               d >= 0.9 ? "its lines rarely recur across answers" : "lines recur across its answers", PCT(d));
    if (c.n)
        lesson_cat(row->reading, sizeof row->reading, "asked greetings and who it is in words it never saw, it "
                   "answers right %s of the time%s.", PCT(c.p), c.p >= 0.9 ? " (the 90% goal met)"
                                                                          : ", short of the 90% goal");
}

/* ---- the table ---- */

static const struct {
    const char *title;
    lesson_fn row;
} lessons[] = {
    {"1. Why pretrain (SFT from random init vs from the base)", row_pretrain},
    {"2. Adapters keep what was learnt (full SFT vs LoRA)", row_adapters},
    {"3. In-context learning (base model, 0/1/3/5 examples)", row_icl},
    {"4. Chain of thought (and RL on a verifiable answer)", lesson_b_cot},
    {"5. Tools and retrieval", lesson_b_tools},
    {"6. Reward model, RLHF, DPO and reward hacking", lesson_b_judges},
    {"7. Self-instruct data (逆向工程)", lesson_b_self_instruct},
    {"8. Deployment trade-offs", lesson_b_deploy},
    {"9. Following the request, not just the form", row_follow},
};

static void cell(FILE *f, const char *text) {
    for (const char *c = *text ? text : "–"; *c; c++)
        if (*c == '|') fputs("\\|", f);
        else if (*c == '\n') fputc(' ', f);
        else fputc(*c, f);
}

static int read_records(const char *path, lesson_records *r) {
    memset(r, 0, sizeof *r);
    FILE *in = fopen(path, "r");
    if (!in) return 0;
    char *line = NULL;
    size_t cap = 0;
    int max = 0;
    while (getline(&line, &cap, in) > 0) {
        json_object *o = json_tokener_parse(line);
        if (!o) continue;
        if (r->n == max) {
            max = max ? 2 * max : 64;
            json_object **v = realloc(r->v, sizeof *v * (size_t)max);
            if (!v) {
                json_object_put(o);
                break;
            }
            r->v = v;
        }
        r->v[r->n++] = o;
    }
    free(line);
    fclose(in);
    return r->n;
}

void pipeline_write_lessons(FILE *f, const char *summary_path) {
    lesson_records r;
    read_records(summary_path, &r);
    snprintf(r.out_dir, sizeof r.out_dir, "%s", summary_path);
    char *slash = strrchr(r.out_dir, '/');
    if (slash) *slash = '\0';
    else snprintf(r.out_dir, sizeof r.out_dir, ".");
    fprintf(f, "## Lessons\n\nEach row is one idea of the recipe, measured in this run (figures from `summary.jsonl`; "
               "intervals are 95%%, Wilson for a share, Newcombe for a difference of two shares).\n\n"
               "| lesson | measured | sample, 95%% interval | what it shows |\n|---|---|---|---|\n");
    for (size_t i = 0; i < sizeof lessons / sizeof lessons[0]; i++) {
        lesson_row row = {{0}, {0}, {0}};
        lessons[i].row(&r, &row);
        if (!row.figures[0]) snprintf(row.figures, sizeof row.figures, "not measured in this run");
        fprintf(f, "| %s | ", lessons[i].title);
        cell(f, row.figures);
        fputs(" | ", f);
        cell(f, row.sample);
        fputs(" | ", f);
        cell(f, row.reading);
        fputs(" |\n", f);
    }
    fputs("\n", f);
    for (int i = 0; i < r.n; i++) json_object_put(r.v[i]);
    free(r.v);
}
