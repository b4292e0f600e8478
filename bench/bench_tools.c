/* Accuracy on held-out tool questions (jielong data tools → eval_tools.jsonl), with and without tools:
 *   build/bench/bench_tools MODEL.safetensors EVAL_TOOLS.jsonl DOCS.db [questions per task, default 50]
 * With tools: each question through the agent loop (calculator + search over DOCS.db, at most 3 rounds), the last
 * answer scored. Without: the same model asked plainly (no tools declared, no results). Greedy decoding. Scoring:
 * jl_tool_answer_correct (calc: the last number equals the exact result; poem tasks: the expected text appears). */
#include "jielong/checkpoint.h"
#include "jielong/dataset.h"
#include "jielong/generate.h"
#include "jielong/rag.h"
#include "jielong/tools.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const tasks[] = {"calc", "author", "line2", "which"};

static int task_of(const char *t) {
    for (int i = 0; i < 4; i++)
        if (t && !strcmp(t, tasks[i])) return i;
    return -1;
}

static void die(const char *what) {
    fprintf(stderr, "%s: %s\n", what, jl_last_error());
    exit(1);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: bench_tools MODEL EVAL_TOOLS.jsonl DOCS.db [N]\n");
        return 2;
    }
    int per_task = argc > 4 ? atoi(argv[4]) : 50;
    jl_checkpoint ck = {0};
    jl_tokenizer *tok;
    if (jl_checkpoint_load(argv[1], &ck) != JL_OK || !ck.tokenizer_json ||
        jl_tokenizer_from_json(ck.tokenizer_json, strlen(ck.tokenizer_json), &tok) != JL_OK)
        die(argv[1]);
    jl_rl_set *ev;
    jl_index *ix;
    if (jl_rl_load(argv[2], NULL, &ev, NULL) != JL_OK) die(argv[2]);
    if (jl_index_open(argv[3], 0, &ix) != JL_OK) die(argv[3]);
    jl_toolbox *tb;
    if (jl_toolbox_new(&tb) != JL_OK || jl_toolbox_add_list(tb, "calculator,search", ix, 2) != JL_OK) die("tools");
    char *specs = jl_toolbox_specs(tb), *block = jl_tools_block(specs);
    jl_session *s;
    jl_sampler *smp;
    jl_sampler_params sp;
    jl_sampler_defaults(&sp);
    sp.temperature = 0;
    jl_chat *with, *without;
    if (jl_session_new(ck.model, 0, &s) != JL_OK || jl_sampler_new(&sp, jl_model_config(ck.model)->vocab_size, &smp) != JL_OK ||
        jl_chat_new(s, smp, tok, &with) != JL_OK || jl_chat_new(s, smp, tok, &without) != JL_OK ||
        jl_chat_set_system(with, block) != JL_OK)
        die("session");
    jl_gen_opts o = {.max_tokens = 96};
    int n[4] = {0}, right_with[4] = {0}, right_without[4] = {0}, calls[4] = {0};
    for (size_t i = 0; i < jl_rl_count(ev); i++) {
        int t = task_of(jl_rl_field(ev, i, "task"));
        if (t < 0 || n[t] >= per_task) continue;
        const char *q = jl_rl_prompt(ev, i), *want = jl_rl_field(ev, i, "expected");
        char *a = NULL, *b = NULL;
        jl_agent_result ar;
        jl_gen_result gr;
        jl_chat_reset(with);
        jl_chat_reset(without);
        jl_status st = jl_agent_turn(with, tb, q, 3, &o, NULL, NULL, NULL, &a, &ar);
        jl_status st2 = jl_chat_turn(without, q, &o, NULL, NULL, &b, &gr);
        n[t]++;
        calls[t] += st == JL_OK && ar.calls > 0;
        right_with[t] += st == JL_OK && jl_tool_answer_correct(tasks[t], a, want);
        right_without[t] += st2 == JL_OK && jl_tool_answer_correct(tasks[t], b, want);
        if (n[t] <= 2) printf("%s: %s\n  with tools: %s\n  without:    %s\n", tasks[t], q, a ? a : "(failed)", b ? b : "(failed)");
        free(a);
        free(b);
    }
    printf("\n| task | questions | called a tool | right with tools | right without |\n|---|---|---|---|---|\n");
    for (int t = 0; t < 4; t++)
        if (n[t])
            printf("| %s | %d | %.0f%% | %.0f%% | %.0f%% |\n", tasks[t], n[t], 100.0 * calls[t] / n[t],
                   100.0 * right_with[t] / n[t], 100.0 * right_without[t] / n[t]);
    jl_chat_free(with);
    jl_chat_free(without);
    jl_sampler_free(smp);
    jl_session_free(s);
    jl_toolbox_free(tb);
    jl_index_close(ix);
    jl_rl_free(ev);
    free(specs);
    free(block);
    jl_tokenizer_free(tok);
    jl_checkpoint_free(&ck);
    return 0;
}
