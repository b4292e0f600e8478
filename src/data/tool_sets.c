/* jielong data tools: SFT conversations that call the calculator (generated arithmetic, exact answers) and the
 * search tool (poem questions over an index of the corpus), every tool result made by running the tool; and
 * held-out questions with expected answers. Every choice follows from the seed. */
#include "core/rng.h"
#include "data/jsonl.h"
#include "io/fileio.h"
#include "jielong/dataset.h"
#include "jielong/rag.h"
#include "jielong/tools.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jl_tool_data_defaults(jl_tool_data_options *o) {
    memset(o, 0, sizeof *o);
    o->seed = 1234;
    o->calc = 4000;
    o->search = 4000;
    o->eval = 200;
    o->k = 3;
}

/* ---- arithmetic ---- */

typedef struct {
    char ascii[128];  /* the expression generated: 12*(3+4) */
    char shown[192];  /* what the question shows and the call passes (a copy): 12×(3+4) in Chinese phrasings */
    char result[96];
} arith;

static void operand(jl_rng *r, char *buf, size_t cap) {
    if (jl_rng_below(r, 10) == 0) snprintf(buf, cap, "%d.%d", (int)jl_rng_below(r, 50), 1 + (int)jl_rng_below(r, 9));
    else if (jl_rng_below(r, 3) == 0) snprintf(buf, cap, "%d", 100 + (int)jl_rng_below(r, 900));
    else snprintf(buf, cap, "%d", 1 + (int)jl_rng_below(r, 99));
}

static char op_char(jl_rng *r) { return "+-*/+-*"[jl_rng_below(r, 7)]; }

/* An expression of 2 or 3 operands (sometimes parenthesised) whose exact value is a short decimal. */
static void make_arith(jl_rng *r, arith *a) {
    for (;;) {
        char x[24], y[24], z[24];
        operand(r, x, sizeof x);
        operand(r, y, sizeof y);
        operand(r, z, sizeof z);
        char o1 = op_char(r), o2 = op_char(r);
        int shape = (int)jl_rng_below(r, 5);
        if (shape < 2) snprintf(a->ascii, sizeof a->ascii, "%s%c%s", x, o1, y);
        else if (shape < 4) snprintf(a->ascii, sizeof a->ascii, "%s%c%s%c%s", x, o1, y, o2, z);
        else snprintf(a->ascii, sizeof a->ascii, "(%s%c%s)%c%s", x, o1, y, o2, z);
        if (jl_calc_eval(a->ascii, a->result, sizeof a->result) || strchr(a->result, '/') || strlen(a->result) > 12)
            continue;
        return;
    }
}

static void show_arith(arith *a, int chinese) {
    size_t k = 0;
    for (const char *p = a->ascii; *p && k + 4 < sizeof a->shown; p++) {
        const char *rep = !chinese ? NULL : *p == '*' ? "×" : *p == '/' ? "÷" : NULL;
        if (rep) {
            memcpy(a->shown + k, rep, strlen(rep));
            k += strlen(rep);
        } else {
            a->shown[k++] = *p;
        }
    }
    a->shown[k] = '\0';
}

static const char *const calc_zh[] = {"计算 %s", "%s 等于多少？", "请算一下 %s", "%s = ?"};
static const char *const calc_en[] = {"What is %s?", "Compute %s."};

/* ---- JSON pieces ---- */

static json_object *message(const char *role, const char *content) {
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string(role));
    json_object_object_add(m, "content", json_object_new_string(content));
    return m;
}

static json_object *call_message(const char *name, const char *key, const char *value) {
    json_object *args = json_object_new_object(), *fn = json_object_new_object(), *call = json_object_new_object(),
                *calls = json_object_new_array(), *m = json_object_new_object();
    json_object_object_add(args, key, json_object_new_string(value));
    json_object_object_add(fn, "name", json_object_new_string(name));
    json_object_object_add(fn, "arguments", json_object_new_string(json_object_to_json_string_ext(
                                                args, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)));
    json_object_put(args);
    json_object_object_add(call, "id", json_object_new_string("call_1"));
    json_object_object_add(call, "type", json_object_new_string("function"));
    json_object_object_add(call, "function", fn);
    json_object_array_add(calls, call);
    json_object_object_add(m, "role", json_object_new_string("assistant"));
    json_object_object_add(m, "content", json_object_new_string(""));
    json_object_object_add(m, "tool_calls", calls);
    return m;
}

typedef struct {
    jl_toolbox *tb;
    json_object *tools; /* the declared tools (function objects) */
    jl_rng rng;
    jl_atomic_file sft, eval;
    const char *sft_path, *eval_path;
} tool_writer;

/* {"tools","messages":[user, call, tool, answer],"task"} to the SFT file. */
static jl_status write_conversation(tool_writer *w, const char *task, const char *question, const char *tool,
                                    const char *key, const char *value, const char *result, const char *answer) {
    json_object *o = json_object_new_object(), *msgs = json_object_new_array(), *tm = message("tool", result);
    json_object_object_add(tm, "tool_call_id", json_object_new_string("call_1"));
    json_object_array_add(msgs, message("user", question));
    json_object_array_add(msgs, call_message(tool, key, value));
    json_object_array_add(msgs, tm);
    json_object_array_add(msgs, message("assistant", answer));
    if (w->tools) json_object_object_add(o, "tools", json_object_get(w->tools));
    json_object_object_add(o, "messages", msgs);
    json_object_object_add(o, "task", json_object_new_string(task));
    jl_status st = jl_json_write_line(w->sft.f, o, w->sft_path);
    json_object_put(o);
    return st;
}

static jl_status write_eval(tool_writer *w, const char *task, const char *prompt, const char *expected,
                            const char *title) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "prompt", json_object_new_string(prompt));
    json_object_object_add(o, "task", json_object_new_string(task));
    json_object_object_add(o, "expected", json_object_new_string(expected));
    if (title) json_object_object_add(o, "title", json_object_new_string(title));
    jl_status st = jl_json_write_line(w->eval.f, o, w->eval_path);
    json_object_put(o);
    return st;
}

static jl_status calc_items(tool_writer *w, int n, int eval, size_t *count) {
    jl_status st = JL_OK;
    for (int i = 0; st == JL_OK && i < n; i++) {
        arith a;
        make_arith(&w->rng, &a);
        int zh = jl_rng_below(&w->rng, 4) != 0;
        show_arith(&a, zh);
        char q[320], ans[160];
        const char *fmt = zh ? calc_zh[jl_rng_below(&w->rng, 4)] : calc_en[jl_rng_below(&w->rng, 2)];
        snprintf(q, sizeof q, fmt, a.shown);
        snprintf(ans, sizeof ans, zh ? "结果是 %s。" : "The result is %s.", a.result);
        if (eval) {
            st = write_eval(w, "calc", q, a.result, NULL);
        } else {
            char *res, args[224];
            snprintf(args, sizeof args, "{\"expression\":\"%s\"}", a.shown);
            if (jl_toolbox_run(w->tb, "calculator", args, &res) < 0) return jl_fail(JL_ERR_NOMEM, "out of memory");
            st = write_conversation(w, "calc", q, "calculator", "expression", a.shown, res, ans);
            free(res);
        }
        (*count)++;
    }
    return st;
}

/* ---- poem questions ---- */

static int by_title(const void *a, const void *b, void *ctx) {
    const jl_poems *p = ctx;
    return strcmp(jl_poems_get(p, *(const size_t *)a)->title, jl_poems_get(p, *(const size_t *)b)->title);
}

/* unique[i] = 1 when poem i's title is the only one of its kind in the corpus. */
static char *unique_titles(const jl_poems *poems) {
    size_t n = jl_poems_count(poems), *idx = malloc(sizeof *idx * (n ? n : 1));
    char *unique = calloc(n ? n : 1, 1);
    if (!idx || !unique) {
        free(idx);
        free(unique);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) idx[i] = i;
    qsort_r(idx, n, sizeof *idx, by_title, (void *)poems);
    for (size_t i = 0; i < n; i++) {
        const char *t = jl_poems_get(poems, idx[i])->title;
        int same_prev = i > 0 && !strcmp(t, jl_poems_get(poems, idx[i - 1])->title);
        int same_next = i + 1 < n && !strcmp(t, jl_poems_get(poems, idx[i + 1])->title);
        unique[idx[i]] = !same_prev && !same_next;
    }
    free(idx);
    return unique;
}

typedef enum { Q_AUTHOR, Q_LINE2, Q_WHICH } poem_q;

/* The question, the search query, the answer and the expected part for poem p. */
static void poem_question(jl_rng *r, const jl_poem *p, poem_q kind, char *q, char *query, char *ans, char *expected,
                          size_t cap) {
    static const char *const author_q[] = {"《%s》的作者是谁？", "谁写了《%s》？", "Who wrote 《%s》?"};
    if (kind == Q_AUTHOR) {
        snprintf(q, cap, author_q[jl_rng_below(r, 3)], p->title);
        snprintf(query, cap, "%s", p->title);
        snprintf(ans, cap, "《%s》的作者是%s。", p->title, p->author);
        snprintf(expected, cap, "%s", p->author);
    } else if (kind == Q_LINE2) {
        snprintf(q, cap, "《%s》的第二句是什么？", p->title);
        snprintf(query, cap, "%s", p->title);
        snprintf(ans, cap, "《%s》的第二句是“%s”。", p->title, p->lines[1]);
        snprintf(expected, cap, "%s", p->lines[1]);
    } else {
        const char *line = p->lines[jl_rng_below(r, (uint64_t)p->n_lines)];
        snprintf(q, cap, "“%s”出自哪首诗？", line);
        snprintf(query, cap, "%s", line);
        snprintf(ans, cap, "出自%s的《%s》。", p->author, p->title);
        snprintf(expected, cap, "%s", p->title);
    }
}

/* 1 when the search result lists poem p (a passage "title\nauthor\n..." flattened to "title author ..."). */
static int result_has(const char *result, const jl_poem *p) {
    char want[512];
    snprintf(want, sizeof want, "] %s %s ", p->title, p->author);
    return strstr(result, want) != NULL;
}

static const char *const task_names[] = {"author", "line2", "which"};

static jl_status poem_items(tool_writer *w, const jl_poems *poems, const char *unique, jl_split split, int n, int eval,
                            jl_tool_data_counts *c) {
    size_t total = jl_poems_count(poems), m = 0, *pool = malloc(sizeof *pool * (total ? total : 1));
    if (!pool) return jl_fail(JL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < total; i++)
        if (unique[i] && jl_poems_get(poems, i)->heldout == (split == JL_SPLIT_HELDOUT)) pool[m++] = i;
    jl_status st = JL_OK;
    size_t *counts[2][3] = {{&c->author, &c->line2, &c->which}, {&c->eval_author, &c->eval_line2, &c->eval_which}};
    for (int i = 0; st == JL_OK && m > 0 && i < n; i++) {
        poem_q kind = (poem_q)(eval ? (uint64_t)(i % 3) : jl_rng_below(&w->rng, 3));
        const jl_poem *p = jl_poems_get(poems, pool[jl_rng_below(&w->rng, m)]);
        char q[512], query[512], ans[512], expected[512];
        poem_question(&w->rng, p, kind, q, query, ans, expected, sizeof q);
        if (eval) {
            st = write_eval(w, task_names[kind], q, expected, p->title);
            (*counts[1][kind])++;
            continue;
        }
        json_object *args = json_object_new_object();
        json_object_object_add(args, "query", json_object_new_string(query));
        char *res = NULL;
        int rc = jl_toolbox_run(w->tb, "search", json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN |
                                                                                      JSON_C_TO_STRING_NOSLASHESCAPE),
                                &res);
        json_object_put(args);
        if (rc < 0) st = jl_fail(JL_ERR_NOMEM, "out of memory");
        else if (rc > 0) st = jl_fail(JL_ERR_RUNTIME, "search: %s", res);
        else if (!result_has(res, p)) c->not_found++;
        else {
            st = write_conversation(w, task_names[kind], q, "search", "query", query, res, ans);
            (*counts[0][kind])++;
        }
        free(res);
    }
    free(pool);
    return st;
}

/* ---- the files ---- */

static jl_status declared_tools(jl_toolbox *tb, json_object **out) {
    char *specs = jl_toolbox_specs(tb);
    if (!specs) return jl_fail(JL_ERR_NOMEM, "out of memory");
    json_object *arr = json_object_new_array();
    for (char *line = strtok(specs, "\n"); line; line = strtok(NULL, "\n"))
        json_object_array_add(arr, json_tokener_parse(line));
    free(specs);
    *out = arr;
    return JL_OK;
}

static jl_status open_index(const jl_tool_data_options *o, const char *poems_path, jl_index **ix) {
    if (o->index) return jl_index_open(o->index, 0, ix);
    jl_status st = jl_index_open(":memory:", 1, ix);
    jl_index_options io;
    jl_index_defaults(&io);
    io.fields = "title,author,lines";
    jl_index_stats s;
    const char *inputs[1] = {poems_path};
    if (st == JL_OK) st = jl_index_build(*ix, inputs, 1, &io, NULL, NULL, NULL, &s);
    return st;
}

static jl_status write_all(tool_writer *w, const jl_poems *poems, const char *unique, const jl_tool_data_options *o,
                           jl_tool_data_counts *c) {
    jl_status st = calc_items(w, o->calc, 0, &c->calc);
    if (st == JL_OK) st = poem_items(w, poems, unique, JL_SPLIT_TRAIN, o->search, 0, c);
    if (st == JL_OK) st = calc_items(w, o->eval, 1, &c->eval_calc);
    if (st == JL_OK) st = poem_items(w, poems, unique, JL_SPLIT_HELDOUT, 3 * o->eval, 1, c);
    return st;
}

jl_status jl_tool_data_write(const jl_poems *poems, const char *poems_path, const char *dir,
                             const jl_tool_data_options *o, jl_tool_data_counts *counts) {
    memset(counts, 0, sizeof *counts);
    tool_writer w = {0};
    jl_rng_seed(&w.rng, o->seed);
    jl_index *ix = NULL;
    char *unique = unique_titles(poems), sft_path[4096], eval_path[4096];
    snprintf(sft_path, sizeof sft_path, "%s/tools_sft.jsonl", dir);
    snprintf(eval_path, sizeof eval_path, "%s/eval_tools.jsonl", dir);
    w.sft_path = sft_path;
    w.eval_path = eval_path;
    jl_status st = unique ? jl_mkdir_p(dir) : jl_fail(JL_ERR_NOMEM, "out of memory");
    if (st == JL_OK) st = open_index(o, poems_path, &ix);
    if (st == JL_OK) st = jl_toolbox_new(&w.tb);
    if (st == JL_OK) st = jl_toolbox_add_list(w.tb, "calculator,search", ix, o->k);
    if (st == JL_OK && !o->no_specs) st = declared_tools(w.tb, &w.tools);
    int opened = 0;
    if (st == JL_OK && (st = jl_atomic_open(&w.sft, sft_path)) == JL_OK) {
        opened = 1;
        if ((st = jl_atomic_open(&w.eval, eval_path)) != JL_OK) jl_atomic_abort(&w.sft);
        else opened = 2;
    }
    if (st == JL_OK) st = write_all(&w, poems, unique, o, counts);
    if (opened == 2 && st == JL_OK) st = jl_atomic_commit(&w.sft);
    else if (opened == 2) jl_atomic_abort(&w.sft);
    if (opened == 2 && st == JL_OK) st = jl_atomic_commit(&w.eval);
    else if (opened == 2) jl_atomic_abort(&w.eval);
    json_object_put(w.tools);
    jl_toolbox_free(w.tb);
    jl_index_close(ix);
    free(unique);
    return st;
}

/* ---- scoring ---- */

/* The last number (digits with an optional sign and decimal point) in s, into buf. */
static int last_number(const char *s, char *buf, size_t cap) {
    const char *best = NULL;
    size_t best_len = 0;
    for (const char *p = s; *p;) {
        if ((*p >= '0' && *p <= '9') || (*p == '-' && p[1] >= '0' && p[1] <= '9')) {
            const char *q = p + 1;
            while ((*q >= '0' && *q <= '9') || (*q == '.' && q[1] >= '0' && q[1] <= '9')) q++;
            best = p;
            best_len = (size_t)(q - p);
            p = q;
        } else {
            p++;
        }
    }
    if (!best || best_len >= cap) return 0;
    memcpy(buf, best, best_len);
    buf[best_len] = '\0';
    return 1;
}

int jl_tool_answer_correct(const char *task, const char *answer, const char *expected) {
    if (!answer || !expected) return 0;
    if (!strcmp(task, "calc")) {
        char num[128];
        return last_number(answer, num, sizeof num) && !strcmp(num, expected);
    }
    return strstr(answer, expected) != NULL;
}
