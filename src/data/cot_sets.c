/* jielong data cot: the chain-of-thought lesson's data. Column addition of two multi-digit numbers is a task whose
 * direct answer needs every carry at once (hard for a small model writing the sum's first digit first), while the
 * step-by-step answer needs only one-digit facts and copying: the same problems are written both ways. */
#include "core/rng.h"
#include "data/jsonl.h"
#include "io/fileio.h"
#include "jielong/synth.h"
#include <stdio.h>
#include <string.h>

void jl_cot_defaults(jl_cot_options *o) {
    memset(o, 0, sizeof *o);
    o->seed = 1234;
    o->train = 3000;
    o->eval = 200;
    o->digits = 3;
}

/* One clause per column, lowest first: its digits, the carry in (from the second column on) and their sum always
 * written with two digits ("9+4+0=13，"), so every clause has the same length whatever its digits and each digit
 * the model copies from the question sits the same distance from the place it is written (a small model picks the
 * operands up by position); the sum's digits are then the second digit of each clause, the leading one the last
 * clause's first. Short, so a step-by-step answer costs about twice a direct one, not four times. */
void jl_cot_steps(uint64_t a, uint64_t b, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = '\0';
    uint64_t sum = a + b;
    int carry = 0;
    for (int col = 0; (a || b || !col) && col < 10 && n < cap; col++) {
        int x = (int)(a % 10), y = (int)(b % 10), s = x + y + carry, w;
        a /= 10;
        b /= 10;
        if (col) w = snprintf(buf + n, cap - n, "%d+%d+%d=%02d，", x, y, carry, s);
        else w = snprintf(buf + n, cap - n, "%d+%d=%02d，", x, y, s);
        if (w < 0) return;
        n += (size_t)w;
        carry = s / 10;
    }
    if (n < cap) snprintf(buf + n, cap - n, "答：%llu", (unsigned long long)sum);
}

/* Every form ends with the sum itself, so the operands' digits are the same distance back from the answer. */
static const char *const question_forms[] = {"计算 %llu+%llu", "请算一下 %llu+%llu", "算一算：%llu+%llu",
                                             "%llu+%llu"};

/* Held out by a fixed rule on the operands (about one problem in 16), whatever the seed. */
static int held_out(uint64_t a, uint64_t b) { return ((a * 2654435761u) ^ (b * 40503u)) % 16 == 3; }

typedef struct {
    jl_atomic_file f[4];
    char path[4][4096];
} cot_files;

static const char *const file_names[] = {"cot_direct.jsonl", "cot_steps.jsonl", "cot_prompts.jsonl",
                                         "eval_cot.jsonl"};

static json_object *turn(const char *role, const char *content) {
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string(role));
    json_object_object_add(m, "content", json_object_new_string(content));
    return m;
}

static jl_status write_sft(cot_files *w, int which, const char *question, const char *answer) {
    json_object *o = json_object_new_object(), *msgs = json_object_new_array();
    json_object_array_add(msgs, turn("user", question));
    json_object_array_add(msgs, turn("assistant", answer));
    json_object_object_add(o, "messages", msgs);
    json_object_object_add(o, "task", json_object_new_string("calc"));
    jl_status st = jl_json_write_line(w->f[which].f, o, w->path[which]);
    json_object_put(o);
    return st;
}

static jl_status write_prompt(cot_files *w, int which, const char *question, uint64_t sum) {
    json_object *o = json_object_new_object();
    char expected[32];
    snprintf(expected, sizeof expected, "%llu", (unsigned long long)sum);
    json_object_object_add(o, "prompt", json_object_new_string(question));
    json_object_object_add(o, "task", json_object_new_string("calc"));
    json_object_object_add(o, "expected", json_object_new_string(expected));
    jl_status st = jl_json_write_line(w->f[which].f, o, w->path[which]);
    json_object_put(o);
    return st;
}

/* One problem: training (both SFT files and the RL prompts) or held out. */
static jl_status write_problem(cot_files *w, jl_rng *r, uint64_t lo, uint64_t hi, int eval) {
    uint64_t a, b;
    do {
        a = lo + jl_rng_below(r, hi - lo);
        b = lo + jl_rng_below(r, hi - lo);
    } while (held_out(a, b) != eval);
    char q[128], direct[64], steps[1024];
    snprintf(q, sizeof q, question_forms[jl_rng_below(r, 4)], (unsigned long long)a, (unsigned long long)b);
    if (eval) return write_prompt(w, 3, q, a + b);
    snprintf(direct, sizeof direct, "答：%llu", (unsigned long long)(a + b));
    jl_cot_steps(a, b, steps, sizeof steps);
    jl_status st = write_sft(w, 0, q, direct);
    if (st == JL_OK) st = write_sft(w, 1, q, steps);
    if (st == JL_OK) st = write_prompt(w, 2, q, a + b);
    return st;
}

jl_status jl_cot_data_write(const char *dir, const jl_cot_options *o, jl_cot_counts *counts) {
    memset(counts, 0, sizeof *counts);
    if (o->digits < 2 || o->digits > 6) return jl_fail(JL_ERR_ARG, "digits: %d is out of range (2..6)", o->digits);
    jl_status st = jl_mkdir_p(dir);
    if (st != JL_OK) return st;
    cot_files w;
    memset(&w, 0, sizeof w);
    int opened = 0;
    for (; st == JL_OK && opened < 4; opened++) {
        snprintf(w.path[opened], sizeof w.path[opened], "%s/%s", dir, file_names[opened]);
        if ((st = jl_atomic_open(&w.f[opened], w.path[opened])) != JL_OK) break;
    }
    uint64_t lo = 1, hi;
    for (int i = 1; i < o->digits; i++) lo *= 10;
    hi = lo * 10;
    jl_rng r;
    jl_rng_seed(&r, o->seed);
    for (int i = 0; st == JL_OK && i < o->train; i++, counts->train++) st = write_problem(&w, &r, lo, hi, 0);
    for (int i = 0; st == JL_OK && i < o->eval; i++, counts->eval++) st = write_problem(&w, &r, lo, hi, 1);
    for (int i = 0; i < opened; i++) {
        if (st == JL_OK) st = jl_atomic_commit(&w.f[i]);
        else jl_atomic_abort(&w.f[i]);
    }
    return st;
}
