/* jielong eval --qa: see eval_qa.h. */
#include "cli/eval_qa.h"
#include "cli/infer_cli.h"
#include "io/fileio.h"
#include "core/timer.h"
#include "jielong/chat_format.h"
#include "jielong/rag.h"
#include "jielong/tools.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QA_MAX_TASKS 16

typedef struct {
    char name[32];
    int n, correct;
} qa_task;

typedef struct {
    qa_task tasks[QA_MAX_TASKS];
    int n_tasks, n, correct, too_long, calls;
    json_object *asked; /* the current question's calls and results, for --samples (NULL: not kept) */
} qa_tally;

static qa_task *task_of(qa_tally *t, const char *name) {
    for (int i = 0; i < t->n_tasks; i++)
        if (!strcmp(t->tasks[i].name, name)) return &t->tasks[i];
    if (t->n_tasks == QA_MAX_TASKS) return NULL;
    qa_task *k = &t->tasks[t->n_tasks++];
    snprintf(k->name, sizeof k->name, "%s", name);
    return k;
}

static void count_call(void *user, const jl_tool_call *call, const char *result, int is_error) {
    qa_tally *t = user;
    t->calls++;
    if (!t->asked) return;
    json_object *c = json_object_new_object();
    json_object_object_add(c, "name", call->name ? json_object_new_string(call->name) : NULL);
    json_object_object_add(c, "arguments", call->arguments ? json_object_new_string(call->arguments) : NULL);
    json_object_object_add(c, "result", json_object_new_string(result ? result : ""));
    json_object_object_add(c, "error", json_object_new_boolean(is_error));
    json_object_array_add(t->asked, c);
}

/* The toolbox and the system prompt listing it (tool_specs). */
static jl_status tools_setup(const eval_qa_opts *o, jl_chat *chat, jl_index **ix, jl_toolbox **tb) {
    jl_status st = o->rag ? jl_index_open(o->rag, 0, ix) : JL_OK;
    if (st == JL_OK) st = jl_toolbox_new(tb);
    if (st == JL_OK) st = jl_toolbox_add_list(*tb, o->tools, *ix, o->k);
    if (st != JL_OK || !o->tool_specs) return st;
    char *specs = jl_toolbox_specs(*tb), *block = specs ? jl_tools_block(specs) : NULL;
    st = block ? jl_chat_set_system(chat, block) : jl_fail(JL_ERR_NOMEM, "out of memory");
    free(specs);
    free(block);
    return st;
}

static void write_sample(FILE *f, const char *task, const char *prompt, const char *answer, const char *expected,
                         int correct, json_object *calls) {
    json_object *s = json_object_new_object();
    json_object_object_add(s, "task", json_object_new_string(task));
    json_object_object_add(s, "prompt", json_object_new_string(prompt));
    json_object_object_add(s, "answer", json_object_new_string(answer));
    json_object_object_add(s, "expected", json_object_new_string(expected));
    json_object_object_add(s, "correct", json_object_new_boolean(correct));
    if (calls) json_object_object_add(s, "calls", json_object_get(calls));
    fprintf(f, "%s\n", json_object_to_json_string_ext(s, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(s);
}

/* One question: a fresh conversation, a plain answer or the agent loop. A question (with its tool results) too
 * long for the context is wrong and counted. */
static jl_status ask(const eval_qa_opts *o, jl_chat *chat, jl_toolbox *tb, const char *prompt, qa_tally *t,
                     char **answer) {
    jl_gen_opts go = {.max_tokens = o->max_tokens};
    jl_gen_result res;
    jl_agent_result ar;
    jl_chat_reset(chat);
    jl_status st = tb ? jl_agent_turn(chat, tb, prompt, o->max_steps, &go, NULL, count_call, t, answer, &ar)
                      : jl_chat_turn(chat, prompt, &go, NULL, NULL, answer, &res);
    if (st == JL_ERR_ARG) { /* the context is full: the conversation does not fit */
        t->too_long++;
        free(*answer);
        *answer = NULL;
        return JL_OK;
    }
    return st;
}

static jl_status run_all(const eval_qa_opts *o, const jl_rl_set *set, jl_chat *chat, jl_toolbox *tb, FILE *samples,
                         qa_tally *t) {
    for (size_t i = 0; i < jl_rl_count(set); i++) {
        const char *task = jl_rl_field(set, i, "task"), *expected = jl_rl_field(set, i, "expected");
        if (!task || !expected)
            return jl_fail(JL_ERR_FORMAT, "record %zu: a question needs \"task\" and \"expected\" fields (as `jielong "
                           "data tools` and `jielong data cot` write them)", i + 1);
        qa_task *k = task_of(t, task);
        if (!k) return jl_fail(JL_ERR_FORMAT, "record %zu: more than %d tasks", i + 1, QA_MAX_TASKS);
        if (o->limit && k->n >= o->limit) continue;
        char *answer = NULL;
        t->asked = samples && tb ? json_object_new_array() : NULL;
        jl_status st = ask(o, chat, tb, jl_rl_prompt(set, i), t, &answer);
        if (st != JL_OK) {
            json_object_put(t->asked);
            t->asked = NULL;
            return st;
        }
        int ok = answer && jl_tool_answer_correct(task, answer, expected);
        k->n++;
        k->correct += ok;
        t->n++;
        t->correct += ok;
        if (samples) write_sample(samples, task, jl_rl_prompt(set, i), answer ? answer : "", expected, ok, t->asked);
        json_object_put(t->asked);
        t->asked = NULL;
        free(answer);
    }
    return JL_OK;
}

static json_object *result_json(const char *path, const eval_qa_opts *o, const qa_tally *t, double seconds) {
    json_object *j = json_object_new_object(), *tasks = json_object_new_object();
    json_object_object_add(j, "kind", json_object_new_string("qa"));
    json_object_object_add(j, "file", json_object_new_string(path));
    json_object_object_add(j, "tools", json_object_new_string(o->tools ? o->tools : ""));
    json_object_object_add(j, "n", json_object_new_int(t->n));
    json_object_object_add(j, "correct", json_object_new_int(t->correct));
    json_object_object_add(j, "accuracy", json_object_new_double(t->n ? (double)t->correct / t->n : 0.0));
    json_object_object_add(j, "too_long", json_object_new_int(t->too_long));
    json_object_object_add(j, "tool_calls", json_object_new_int(t->calls));
    json_object_object_add(j, "seconds", json_object_new_double(seconds));
    for (int i = 0; i < t->n_tasks; i++) {
        json_object *k = json_object_new_object();
        json_object_object_add(k, "n", json_object_new_int(t->tasks[i].n));
        json_object_object_add(k, "correct", json_object_new_int(t->tasks[i].correct));
        json_object_object_add(k, "accuracy", json_object_new_double(t->tasks[i].n ? (double)t->tasks[i].correct /
                                                                                          t->tasks[i].n : 0.0));
        json_object_object_add(tasks, t->tasks[i].name, k);
    }
    json_object_object_add(j, "tasks", tasks);
    return j;
}

jl_status eval_qa(const char *model, const char *path, const eval_qa_opts *o, json_object **out) {
    *out = NULL;
    jl_jsonl_options jo = {0};
    jl_jsonl_stats js;
    jl_rl_set *set = NULL;
    jl_status st = jl_rl_load(path, &jo, &set, &js);
    if (st != JL_OK) return st;
    infer_flags f;
    infer_flags_defaults(&f);
    f.model = model;
    f.temperature = 0;
    infer_setup s;
    jl_chat_format *fmt = NULL;
    jl_chat *chat = NULL;
    jl_index *ix = NULL;
    jl_toolbox *tb = NULL;
    qa_tally t;
    memset(&t, 0, sizeof t);
    jl_atomic_file af = {0};
    int have_setup = (st = infer_setup_load(&f, &s)) == JL_OK;
    if (st == JL_OK) st = jl_chat_format_from_checkpoint(&s.ck, &fmt);
    if (st == JL_OK) st = jl_chat_new_format(s.session, s.sampler, s.tok, fmt, &chat);
    if (st == JL_OK && o->tools) st = tools_setup(o, chat, &ix, &tb);
    if (st == JL_OK && o->samples) st = jl_atomic_open(&af, o->samples);
    double t0 = jl_now();
    if (st == JL_OK) st = run_all(o, set, chat, tb, af.f, &t);
    if (af.f) {
        if (st == JL_OK) st = jl_atomic_commit(&af);
        else jl_atomic_abort(&af);
    }
    if (st == JL_OK && t.n == 0) st = jl_fail(JL_ERR_FORMAT, "%s: no questions", path);
    if (st == JL_OK) *out = result_json(path, o, &t, jl_now() - t0);
    jl_toolbox_free(tb);
    jl_index_close(ix);
    jl_chat_free(chat);
    jl_chat_format_free(fmt);
    if (have_setup) infer_setup_free(&s);
    jl_rl_free(set);
    return st;
}

void eval_qa_print(json_object *r) {
    json_object *v, *tasks;
    const char *tools = json_object_object_get_ex(r, "tools", &v) ? json_object_get_string(v) : "";
    printf("%s (%s):\n", json_object_get_string(json_object_object_get(r, "file")),
           *tools ? tools : "no tools");
    if (json_object_object_get_ex(r, "tasks", &tasks)) {
        json_object_object_foreach(tasks, name, k) {
            int n = json_object_get_int(json_object_object_get(k, "n"));
            int c = json_object_get_int(json_object_object_get(k, "correct"));
            printf("  %-9s %4d/%-4d = %5.1f%%\n", name, c, n, n ? 100.0 * c / n : 0.0);
        }
    }
    printf("  all       %4d/%-4d = %5.1f%%; %d tool calls; %d too long for the context\n",
           json_object_get_int(json_object_object_get(r, "correct")), json_object_get_int(json_object_object_get(r, "n")),
           100 * json_object_get_double(json_object_object_get(r, "accuracy")),
           json_object_get_int(json_object_object_get(r, "tool_calls")),
           json_object_get_int(json_object_object_get(r, "too_long")));
}
