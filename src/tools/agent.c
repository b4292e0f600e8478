/* The agent loop (ReAct): the model answers, asks for tools, reads their results as tool turns, answers again. */
#include "jielong/dataset.h"
#include "jielong/tools.h"
#include <stdlib.h>
#include <string.h>

/* Runs the calls of one answer and adds their results as tool turns. */
static jl_status run_calls(jl_chat *chat, jl_toolbox *tb, const jl_tool_calls *calls, jl_agent_call_fn on_call,
                           void *user, jl_agent_result *res) {
    for (int i = 0; i < calls->n; i++) {
        const jl_tool_call *c = &calls->calls[i];
        char *result = NULL;
        int bad = 1;
        if (c->error) result = strdup(c->error);
        else bad = jl_toolbox_run(tb, c->name, c->arguments, &result);
        if (!result || bad < 0) {
            free(result);
            return jl_fail(JL_ERR_NOMEM, "out of memory");
        }
        res->calls++;
        res->errors += bad != 0;
        if (on_call) on_call(user, c, result, bad != 0);
        jl_status st = jl_chat_add_turn(chat, JL_ROLE_TOOL, result);
        free(result);
        if (st != JL_OK) return st;
    }
    return JL_OK;
}

jl_status jl_agent_turn(jl_chat *chat, jl_toolbox *tb, const char *user_text, int max_steps, const jl_gen_opts *o,
                        jl_gen_callback cb, jl_agent_call_fn on_call, void *user, char **answer, jl_agent_result *res) {
    memset(res, 0, sizeof *res);
    if (answer) *answer = NULL;
    if (max_steps < 0) return jl_fail(JL_ERR_ARG, "max tool steps must be >= 0");
    char *text = NULL;
    jl_gen_result g;
    jl_status st = jl_chat_turn(chat, user_text, o, cb, user, &text, &g);
    res->tokens += g.n_generated;
    while (st == JL_OK) {
        jl_tool_calls calls;
        if ((st = jl_tool_calls_parse(text ? text : "", &calls)) != JL_OK) break;
        int n = calls.n;
        if (n > 0 && res->steps >= max_steps) res->step_limit = 1;
        if (n > 0 && !res->step_limit) st = run_calls(chat, tb, &calls, on_call, user, res);
        jl_tool_calls_free(&calls);
        if (st != JL_OK || n == 0 || res->step_limit) break;
        res->steps++;
        free(text);
        text = NULL;
        st = jl_chat_generate(chat, o, cb, user, &text, &g);
        res->tokens += g.n_generated;
    }
    if (st == JL_OK && answer) *answer = text;
    else free(text);
    return st;
}
