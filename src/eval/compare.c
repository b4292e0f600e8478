/* Head to head on the held-out "write" prompts: the win rate of one model over another, by the poem rules and
 * optionally by a reward model (include/jielong/eval.h). Used by `jielong eval --against` (and so the pipeline). */
#include "jielong/chat_format.h"
#include "jielong/checkpoint.h"
#include "jielong/eval.h"
#include "jielong/rlhf.h"
#include "jielong/rules.h"
#include <stdlib.h>
#include <string.h>

/* 1 for a win of a over b, 0.5 for a tie, 0 for a loss. */
static double win_of(double a, double b) { return a > b ? 1.0 : a == b ? 0.5 : 0.0; }

jl_status jl_compare_answers(const jl_compare_item *items, int n, struct jl_reward_model *rm, jl_compare_result *out) {
    memset(out, 0, sizeof *out);
    if (!items || n < 1) return jl_fail(JL_ERR_ARG, "compare: no answers to judge");
    double rule_wins = 0, rm_wins = 0;
    for (int i = 0; i < n; i++) {
        const jl_compare_item *it = &items[i];
        jl_poem_form form = jl_poem_form_parse(it->form_name ? it->form_name : "");
        float ra = jl_poem_reward(it->answer, form), rb = jl_poem_reward(it->answer_against, form);
        out->rule_reward += ra;
        out->rule_reward_against += rb;
        rule_wins += win_of(ra, rb);
        if (!rm) continue;
        float sa, sb;
        jl_status st = jl_reward_model_score(rm, it->prompt, it->answer, &sa);
        if (st == JL_OK) st = jl_reward_model_score(rm, it->prompt, it->answer_against, &sb);
        if (st != JL_OK) return st;
        out->rm_score += sa;
        out->rm_score_against += sb;
        rm_wins += win_of(sa, sb);
    }
    out->n = n;
    out->rule_win_rate = rule_wins / n;
    out->rule_reward /= n;
    out->rule_reward_against /= n;
    out->judged_by_rm = rm != NULL;
    out->rm_win_rate = rm ? rm_wins / n : 0;
    out->rm_score /= n;
    out->rm_score_against /= n;
    return JL_OK;
}

/* The answers of one model, in the set's order; recs[i] is answer i's record in the set. */
typedef struct {
    const jl_rl_set *set;
    size_t next;          /* the set's record after the last one answered */
    size_t *recs;
    char **answers;
    int n, cap;
    jl_status st;
} answer_list;

static void collect_answer(void *user, jl_poem_task kind, const char *prompt, const char *answer, int correct) {
    (void)kind;
    (void)correct;
    answer_list *l = user;
    if (l->st != JL_OK || l->n == l->cap) return; /* sized to the set: never full */
    size_t count = jl_rl_count(l->set);
    while (l->next < count && strcmp(jl_rl_prompt(l->set, l->next), prompt) != 0) l->next++; /* the form's record */
    if (l->next == count) {
        l->st = jl_fail(JL_ERR_RUNTIME, "compare: an answer to a prompt not in the set");
        return;
    }
    l->recs[l->n] = l->next;
    l->answers[l->n] = strdup(answer);
    if (!l->answers[l->n]) {
        l->st = jl_fail(JL_ERR_NOMEM, "out of memory");
        return;
    }
    l->n++;
    l->next++;
}

static void free_answers(answer_list *l) {
    for (int i = 0; i < l->n; i++) free(l->answers[i]);
    free(l->recs);
    free(l->answers);
}

static jl_status answers_of(const char *model_path, const jl_rl_set *set, const jl_task_opts *o, answer_list *l) {
    memset(l, 0, sizeof *l);
    l->set = set;
    l->cap = (int)jl_rl_count(set);
    l->recs = calloc((size_t)l->cap + 1, sizeof *l->recs);
    l->answers = calloc((size_t)l->cap + 1, sizeof *l->answers);
    if (!l->recs || !l->answers) return jl_fail(JL_ERR_NOMEM, "out of memory");
    jl_checkpoint ck;
    jl_status st = jl_checkpoint_load(model_path, &ck);
    if (st != JL_OK) return st;
    jl_tokenizer *tok = NULL;
    jl_chat_format *fmt = NULL;
    if (!ck.tokenizer_json) st = jl_fail(JL_ERR_FORMAT, "%s: checkpoint has no tokenizer", model_path);
    else st = jl_tokenizer_from_json(ck.tokenizer_json, strlen(ck.tokenizer_json), &tok);
    if (st == JL_OK) st = jl_chat_format_from_checkpoint(&ck, &fmt);
    jl_task_opts mine = *o;
    mine.chat = fmt;
    mine.only = JL_TASK_WRITE;
    jl_task_result r;
    if (st == JL_OK) st = jl_eval_tasks(ck.model, tok, set, &mine, collect_answer, l, &r);
    if (st == JL_OK) st = l->st;
    jl_chat_format_free(fmt);
    jl_tokenizer_free(tok);
    jl_checkpoint_free(&ck);
    return st;
}

jl_status jl_eval_compare(const char *model, const char *against, const jl_rl_set *prompts, const char *prompts_name,
                          const jl_task_opts *o, struct jl_reward_model *rm, jl_compare_result *out) {
    memset(out, 0, sizeof *out);
    answer_list a, b;
    jl_status st = answers_of(model, prompts, o, &a);
    if (st == JL_OK) st = answers_of(against, prompts, o, &b);
    else memset(&b, 0, sizeof b);
    /* the prompts both answered (one may skip a prompt longer than its context), walked in the set's order */
    jl_compare_item *items = st == JL_OK ? calloc((size_t)a.n + 1, sizeof *items) : NULL;
    if (st == JL_OK && !items) st = jl_fail(JL_ERR_NOMEM, "out of memory");
    int n = 0;
    for (int i = 0, j = 0; st == JL_OK && i < a.n && j < b.n;) {
        if (a.recs[i] < b.recs[j]) { i++; continue; }
        if (b.recs[j] < a.recs[i]) { j++; continue; }
        size_t r = a.recs[i];
        items[n++] = (jl_compare_item){jl_rl_prompt(prompts, r), jl_rl_field(prompts, r, "form"), a.answers[i++],
                                       b.answers[j++]};
    }
    if (st == JL_OK && n == 0) st = jl_fail(JL_ERR_FORMAT, "%s: no \"write\" prompts to compare on", prompts_name);
    if (st == JL_OK) st = jl_compare_answers(items, n, rm, out);
    free(items);
    free_answers(&a);
    free_answers(&b);
    return st;
}
