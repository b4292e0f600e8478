/* jielong eval: measure a model. Held-out perplexity and bits per byte/char on text files.
 * A quantised GGUF is scored with its weights dequantised to fp32 through the same forward pass as a fp32
 * checkpoint, so the difference to the fp32 figure is the weight quantisation error alone (the decode engine
 * additionally rounds activations to q8_0 before its integer dot products, as ggml does). */
#include "cli/args.h"
#include "cli/infer_cli.h"
#include "cli/eval_qa.h"
#include "cli/summary_cli.h"
#include "jielong/chat_format.h"
#include "io/fileio.h"
#include "jielong/checkpoint.h"
#include "jielong/eval.h"
#include "jielong/rlhf.h"
#include "jielong/rules.h"
#include <json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where results go: text or JSON on stdout, and optionally one JSON line each appended to a summary file
 * (with a label and a lesson), which `jielong pipeline` turns into its report. */
typedef struct {
    int json;
    cli_summary sink;
} result_sink;

static jl_status emit(const result_sink *out, json_object *r) {
    jl_status st = cli_summary_append(&out->sink, r);
    if (out->json)
        printf("%s\n", json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    return st;
}

static jl_status eval_text_files(jl_model *m, const jl_tokenizer *tok, const cli_strs *files, int window,
                                 const result_sink *out) {
    for (int i = 0; i < files->n; i++) {
        jl_ppl_result r;
        jl_status st = jl_eval_perplexity_file(m, tok, files->v[i], window, &r);
        if (st != JL_OK) return st;
        if (!isfinite(r.nll) || !isfinite(r.ppl)) /* a number that means nothing is not a result */
            return jl_fail(JL_ERR_RUNTIME, "%s: perplexity is not finite (loss %g over %ld tokens): the model's output "
                           "overflowed or holds NaN", files->v[i], r.nll, r.tokens);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "kind", json_object_new_string("perplexity"));
        json_object_object_add(o, "file", json_object_new_string(files->v[i]));
        json_object_object_add(o, "tokens", json_object_new_int64(r.tokens));
        json_object_object_add(o, "nll", json_object_new_double(r.nll));
        json_object_object_add(o, "ppl", json_object_new_double(r.ppl));
        json_object_object_add(o, "bits_per_byte", json_object_new_double(r.bits_per_byte));
        json_object_object_add(o, "bits_per_char", json_object_new_double(r.bits_per_char));
        st = emit(out, o);
        json_object_put(o);
        if (st != JL_OK) return st;
        if (!out->json)
            printf("%s: %ld tokens, perplexity %.3f, %.4f bits/byte, %.4f bits/char, loss %.4f nats/token\n",
                   files->v[i], r.tokens, r.ppl, r.bits_per_byte, r.bits_per_char, r.nll / (double)r.tokens);
    }
    return JL_OK;
}

/* --copy-probe N: the in-context copy probe (jl_eval_copy_probe), sequences of up to 32 tokens. */
static jl_status eval_copy(jl_model *m, const jl_tokenizer *tok, int n, const result_sink *out) {
    int ctx = jl_model_config(m)->max_seq_len, len = (ctx - 1) / 2 < 32 ? (ctx - 1) / 2 : 32;
    jl_copy_result r;
    jl_status st = jl_eval_copy_probe(m, tok, n, len, 20261202, &r);
    if (st != JL_OK) return st;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "kind", json_object_new_string("copy"));
    json_object_object_add(o, "sequences", json_object_new_int(r.n));
    json_object_object_add(o, "length", json_object_new_int(r.len));
    json_object_object_add(o, "first_loss", json_object_new_double(r.first));
    json_object_object_add(o, "second_loss", json_object_new_double(r.second));
    json_object_object_add(o, "chance_loss", json_object_new_double(r.chance));
    st = emit(out, o);
    json_object_put(o);
    if (st == JL_OK && !out->json)
        printf("copy probe (%d random sequences of %d tokens, each shown twice): loss %.3f nats/token on the first "
               "showing (chance %.3f), %.3f on the second (%+.0f%%)\n", r.n, r.len, r.first, r.chance, r.second,
               100 * (r.second / r.first - 1));
    return st;
}

typedef struct {
    FILE *samples;
    int done;
} task_view;

static void on_answer(void *user, jl_poem_task kind, const char *prompt, const char *answer, int correct) {
    task_view *v = user;
    v->done++;
    if (!v->samples) return;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "task", json_object_new_string(jl_poem_task_name(kind)));
    json_object_object_add(o, "prompt", json_object_new_string(prompt));
    json_object_object_add(o, "answer", json_object_new_string(answer));
    json_object_object_add(o, "correct", json_object_new_boolean(correct));
    fprintf(v->samples, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

static jl_status eval_tasks(jl_model *m, const jl_tokenizer *tok, const char *path, const jl_task_opts *o,
                            const char *samples_path, const result_sink *out) {
    jl_jsonl_options jo = {0};
    jl_jsonl_stats js;
    jl_rl_set *set;
    jl_status st = jl_rl_load(path, &jo, &set, &js);
    if (st != JL_OK) return st;
    task_view view = {0};
    jl_atomic_file af = {0};
    if (samples_path && (st = jl_atomic_open(&af, samples_path)) == JL_OK) view.samples = af.f;
    jl_task_result r;
    if (st == JL_OK) st = jl_eval_tasks(m, tok, set, o, on_answer, &view, &r);
    if (view.samples) {
        if (st == JL_OK) st = jl_atomic_commit(&af);
        else jl_atomic_abort(&af);
    }
    jl_rl_free(set);
    if (st != JL_OK) return st;
    const char *mode = o->shots < 0 ? "chat" : "few-shot";
    json_object *j = json_object_new_object();
    json_object_object_add(j, "kind", json_object_new_string("tasks"));
    json_object_object_add(j, "file", json_object_new_string(path));
    json_object_object_add(j, "mode", json_object_new_string(mode));
    json_object_object_add(j, "shots", json_object_new_int(o->shots < 0 ? 0 : o->shots));
    for (int k = 0; k < JL_TASK_COUNT; k++) {
        json_object *t = json_object_new_object();
        json_object_object_add(t, "n", json_object_new_int(r.n[k]));
        json_object_object_add(t, "correct", json_object_new_int(r.correct[k]));
        json_object_object_add(t, "accuracy", json_object_new_double(r.n[k] ? (double)r.correct[k] / r.n[k] : 0.0));
        json_object_object_add(j, jl_poem_task_name((jl_poem_task)k), t);
        char flat[64]; /* the same share as a top-level number, for `jielong plot --x shots` */
        snprintf(flat, sizeof flat, "%s_accuracy", jl_poem_task_name((jl_poem_task)k));
        json_object_object_add(j, flat, json_object_new_double(r.n[k] ? (double)r.correct[k] / r.n[k] : 0.0));
    }
    if (r.chat_n) {
        json_object *t = json_object_new_object();
        json_object_object_add(t, "n", json_object_new_int(r.chat_n));
        json_object_object_add(t, "correct", json_object_new_int(r.chat_correct));
        json_object_object_add(t, "accuracy", json_object_new_double((double)r.chat_correct / r.chat_n));
        json_object_object_add(j, "chat", t);
    }
    json_object *title = json_object_new_object();
    json_object_object_add(title, "n", json_object_new_int(r.title_n));
    json_object_object_add(title, "correct", json_object_new_int(r.title_copied));
    json_object_object_add(title, "accuracy", json_object_new_double(r.title_n ? (double)r.title_copied / r.title_n : 0));
    json_object_object_add(j, "title", title);
    json_object_object_add(j, "title_accuracy", json_object_new_double(r.title_n ? (double)r.title_copied / r.title_n : 0));
    json_object_object_add(j, "lines", json_object_new_int(r.lines));
    json_object_object_add(j, "distinct_lines", json_object_new_int(r.distinct_lines));
    json_object_object_add(j, "write_reward", json_object_new_double(r.mean_reward));
    json_object_object_add(j, "write_clean", json_object_new_double(
                                                  r.n[JL_TASK_WRITE] ? (double)r.write_clean / r.n[JL_TASK_WRITE] : 0.0));
    int scored = 0;
    for (int k = 0; k < JL_TASK_COUNT; k++) scored += r.n[k];
    if (scored + r.chat_n == 0) {
        json_object_put(j);
        return jl_fail(JL_ERR_FORMAT, "%s: none of its prompts could be scored (%d too long for the context): a task prompt needs \"task\" "
                       "(write, continue, author, form) and its \"expected\" or \"form\" field, as `jielong data poems` "
                       "writes them in eval_prompts.jsonl", path, r.skipped);
    }
    json_object_object_add(j, "skipped", json_object_new_int(r.skipped));
    json_object_object_add(j, "mean_shots", json_object_new_double(scored && o->shots >= 0 ? (double)r.shots_used / scored : 0));
    json_object_object_add(j, "tokens", json_object_new_int64(r.tokens_generated));
    json_object_object_add(j, "seconds", json_object_new_double(r.seconds));
    st = emit(out, j);
    json_object_put(j);
    if (st != JL_OK) return st;
    if (!out->json) {
        printf("%s (%s%s):\n", path, mode, o->shots >= 0 ? (o->shots == 1 ? ", 1 example" : ", examples") : "");
        if (o->shots > 1 || o->shots == 0) printf("  examples per question: %d\n", o->shots);
        for (int k = 0; k < JL_TASK_COUNT; k++)
            printf("  %-9s %4d/%-4d = %5.1f%%%s\n", jl_poem_task_name((jl_poem_task)k), r.correct[k], r.n[k],
                   r.n[k] ? 100.0 * r.correct[k] / r.n[k] : 0.0,
                   k == JL_TASK_WRITE ? "  (form compliance)" : "");
        if (r.n[JL_TASK_WRITE])
            printf("  write     %4d/%-4d = %5.1f%%  (form compliance and no repetition)\n", r.write_clean,
                   r.n[JL_TASK_WRITE], 100.0 * r.write_clean / r.n[JL_TASK_WRITE]);
        if (r.title_n)
            printf("  title     %4d/%-4d = %5.1f%%  (the answer's heading carries the asked title)\n", r.title_copied,
                   r.title_n, 100.0 * r.title_copied / r.title_n);
        if (r.lines)
            printf("  lines     %4d/%-4d = %5.1f%%  distinct across the 'write' answers\n", r.distinct_lines, r.lines,
                   100.0 * r.distinct_lines / r.lines);
        if (r.chat_n)
            printf("  chat      %4d/%-4d = %5.1f%%  (greeting, identity)\n", r.chat_correct, r.chat_n,
                   100.0 * r.chat_correct / r.chat_n);
        printf("  mean poem reward of 'write' answers %.3f; %ld tokens in %.1fs\n", r.mean_reward,
               r.tokens_generated, r.seconds);
        if (r.skipped) printf("  %d prompts longer than the context were not scored\n", r.skipped);
    }
    return JL_OK;
}

/* --reward-model RM --prompt P --response R: the reward model's scalar score. */
static jl_status eval_reward(const char *dir, const char *prompt, const char *response, const result_sink *out) {
    if (!prompt || !response) return jl_fail(JL_ERR_ARG, "--reward-model needs --prompt and --response");
    jl_reward_model *rm;
    jl_status st = jl_reward_model_load(dir, &rm);
    if (st != JL_OK) return st;
    float score;
    st = jl_reward_model_score(rm, prompt, response, &score);
    if (st == JL_OK && !isfinite(score))
        st = jl_fail(JL_ERR_RUNTIME, "%s: the reward is not finite (%g): the model's output overflowed or holds NaN", dir,
                     (double)score);
    if (st == JL_OK) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "kind", json_object_new_string("reward"));
        json_object_object_add(o, "reward", json_object_new_double(score));
        st = emit(out, o);
        json_object_put(o);
        if (!out->json) printf("reward %.6f\n", score);
    }
    jl_reward_model_free(rm);
    return st;
}

/* Head to head (jl_eval_compare): the win rate of --model over --against on the held-out "write" prompts. */
static jl_status eval_compare(const char *model, const char *against, const char *tasks, const char *reward,
                              const jl_task_opts *base_opts, const result_sink *out) {
    jl_jsonl_options jo = {0};
    jl_jsonl_stats js;
    jl_rl_set *set;
    jl_status st = jl_rl_load(tasks, &jo, &set, &js);
    if (st != JL_OK) return st;
    jl_reward_model *rm = NULL;
    jl_compare_result r;
    if (reward) st = jl_reward_model_load(reward, &rm);
    if (st == JL_OK) st = jl_eval_compare(model, against, set, tasks, base_opts, rm, &r);
    if (st == JL_OK) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "kind", json_object_new_string("compare"));
        json_object_object_add(j, "model", json_object_new_string(model));
        json_object_object_add(j, "against", json_object_new_string(against));
        json_object_object_add(j, "n", json_object_new_int(r.n));
        json_object_object_add(j, "rule_win_rate", json_object_new_double(r.rule_win_rate));
        json_object_object_add(j, "rule_reward", json_object_new_double(r.rule_reward));
        json_object_object_add(j, "rule_reward_against", json_object_new_double(r.rule_reward_against));
        if (r.judged_by_rm) {
            json_object_object_add(j, "rm_win_rate", json_object_new_double(r.rm_win_rate));
            json_object_object_add(j, "rm_score", json_object_new_double(r.rm_score));
            json_object_object_add(j, "rm_score_against", json_object_new_double(r.rm_score_against));
        }
        st = emit(out, j);
        json_object_put(j);
        if (!out->json) {
            printf("%s against %s on %d held-out 'write' prompts:\n", model, against, r.n);
            printf("  rules:        win rate %5.1f%%  (mean poem reward %.3f vs %.3f)\n", 100 * r.rule_win_rate,
                   r.rule_reward, r.rule_reward_against);
            if (r.judged_by_rm)
                printf("  reward model: win rate %5.1f%%  (mean score %.3f vs %.3f)\n", 100 * r.rm_win_rate,
                       r.rm_score, r.rm_score_against);
        }
    }
    jl_reward_model_free(rm);
    jl_rl_free(set);
    return st;
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *tasks = NULL, *samples = NULL, *reward = NULL, *prompt = NULL, *response = NULL;
    const char *against = NULL;
    result_sink sink = {0};
    cli_strs data = {0};
    long window = 0, shots = -1, limit = 50, max_tokens = 96, copy_probe = 0;
    const char *qa = NULL, *only = NULL;
    eval_qa_opts qo = {.tool_specs = 1, .k = 3, .max_steps = 3};
    long qa_k = 3, qa_steps = 3;
    cli_opt opts[] = {
        {"model", OPT_STR, &model, "model checkpoint (.safetensors) or quantised .gguf (scored with its dequantised weights) for --data and --tasks", NO_RANGE, 0},
        {"reward-model|reward", OPT_STR, &reward, "reward model folder (jielong reward): score --prompt/--response", NO_RANGE, 0},
        {"prompt", OPT_STR, &prompt, "prompt of the response to score (with --reward)", NO_RANGE, 0},
        {"against", OPT_STR, &against, "with --tasks: win rate of --model over this model on the 'write' prompts, "
                                       "judged by the poem rules and by --reward-model RM if given", NO_RANGE, 0},
        {"response", OPT_STR, &response, "response to score (with --reward)", NO_RANGE, 0},
        {"data", OPT_STRS, &data, "held-out data: text files, token shards (.bin) or a `jielong prepare` folder (its val_*.bin): perplexity, bits per byte and per character", NO_RANGE, 0},
        {"copy-probe", OPT_INT, &copy_probe, "N random token sequences, each shown twice: the loss on the second "
                                             "showing vs the first (copying from context, what few-shot prompts need)",
         1, 100000, 0},
        {"window", OPT_INT, &window, "tokens per scoring window (default: the model's context)", 2, 1 << 20, 0},
        {"tasks", OPT_STR, &tasks, "held-out task prompts (eval_prompts.jsonl from `jielong data poems`): "
                                   "instruction following scored by rule", NO_RANGE, 0},
        {"shots", OPT_INT, &shots, "-1 (default): ask through the chat template; 0..8: plain completion with that "
                                   "many solved examples (base models)", -1, 8, 0},
        {"limit", OPT_INT, &limit, "prompts per task kind (default 50; 0 = all)", 0, 1 << 30, 0},
        {"max-new-tokens|max-tokens", OPT_INT, &max_tokens, "tokens per answer (default 96)", 1, 4096, 0},
        {"samples", OPT_STR, &samples, "write every prompt, answer and verdict to this JSONL file", NO_RANGE, 0},
        {"only", OPT_STR, &only, "with --tasks: only this kind of prompt (write, author, continue, form, chat)", NO_RANGE, 0},
        {"qa", OPT_STR, &qa, "questions with a checkable answer ({\"prompt\",\"task\",\"expected\"}: eval_tools.jsonl, "
                             "eval_cot.jsonl): accuracy of greedy chat answers, with --tools through the agent loop", NO_RANGE, 0},
        {"tools", OPT_STR, &qo.tools, "with --qa: tools the model may call (calculator,search,date)", NO_RANGE, 0},
        {"rag", OPT_STR, &qo.rag, "with --qa --tools search: the index searched (jielong index build)", NO_RANGE, 0},
        {"k", OPT_INT, &qa_k, "with --qa: passages per search [3]", 1, 50, 0},
        {"tool-specs", OPT_I32, &qo.tool_specs, "with --qa --tools: 1 (default) lists the tools in the system prompt as "
                                               "chat --tools does; 0 leaves the listing out (a model tuned on its tools "
                                               "without it, to save context)", 0, 1, 0},
        {"max-tool-steps", OPT_INT, &qa_steps, "with --qa --tools: rounds of tool calls per question [3]", 0, 100, 0},
        {"json", OPT_BOOL, &sink.json, "one JSON object per result instead of text", NO_RANGE, 0},
        {"summary", OPT_STR, &sink.sink.summary, "also append each result as a JSON line to this file", NO_RANGE, 0},
        {"label", OPT_STR, &sink.sink.label, "a name stored with each result (e.g. the stage: base, sft, dpo)", NO_RANGE, 0},
        {"lesson", OPT_STR, &sink.sink.lesson, "a series name stored with each result (e.g. icl: the few-shot curve "
                                               "the pipeline report's lessons table reads)", NO_RANGE, 0},
    };
    int rc = cli_parse("eval", "Evaluate a model: held-out perplexity and bits per byte/char (--data), instruction "
                       "following by rule (--tasks), zero/few-shot (--shots), copying from context (--copy-probe), win rate --against another model, or a reward "
                       "model's score (--reward).", opts, CLI_NOPTS(opts), argc, argv, 1);
    if (rc != CLI_PARSED) {
        free(data.v);
        return rc == CLI_HELP_SHOWN ? 0 : rc;
    }
    jl_task_opts to = {.shots = (int)shots, .limit = (int)limit, .max_tokens = (int)max_tokens, .only = -1};
    for (int k = 0; only && k < JL_TASK_COUNT; k++)
        if (!strcmp(only, jl_poem_task_name((jl_poem_task)k))) to.only = k;
    if (only && !strcmp(only, "chat")) to.only = JL_TASK_CHAT; /* the greeting/identity probes alone */
    if (only && to.only < 0) {
        free(data.v);
        return cli_report("eval", jl_fail(JL_ERR_ARG, "--only %s: not a task (write, author, continue, form, chat)", only));
    }
    if (qa) {
        free(data.v);
        if (!model || tasks || against || reward) return cli_report("eval", jl_fail(JL_ERR_ARG, "--qa needs --model and "
                                                                     "cannot be combined with --tasks/--against/--reward"));
        qo.k = (int)qa_k;
        qo.max_steps = (int)qa_steps;
        qo.limit = (int)limit;
        qo.max_tokens = (int)max_tokens;
        qo.samples = samples;
        json_object *r = NULL;
        jl_status qs = eval_qa(model, qa, &qo, &r);
        if (qs == JL_OK) qs = emit(&sink, r);
        if (qs == JL_OK && !sink.json) eval_qa_print(r);
        json_object_put(r);
        return cli_report("eval", qs);
    }
    if (against) {
        free(data.v);
        if (!model || !tasks) return cli_report("eval", jl_fail(JL_ERR_ARG, "--against needs --model and --tasks"));
        return cli_report("eval", eval_compare(model, against, tasks, reward, &to, &sink));
    }
    if (reward) {
        free(data.v);
        if (model || data.n || tasks)
            return cli_report("eval", jl_fail(JL_ERR_ARG, "--reward-model cannot be combined with --model/--data/--tasks"));
        return cli_report("eval", eval_reward(reward, prompt, response, &sink));
    }
    if (!model || (!data.n && !tasks && !copy_probe)) {
        free(data.v);
        fprintf(stderr, "jielong eval: give --model with --data (perplexity), --copy-probe N and/or --tasks (instruction following), "
                        "or --reward-model (score)\n");
        return 2;
    }
    jl_checkpoint ck;
    jl_qweights *qw = NULL; /* unused: a GGUF's quantised weights are scored dequantised, in the fp32 forward */
    jl_tokenizer *tok = NULL;
    jl_status st = infer_load_model(model, 1, &ck, &qw);
    jl_qweights_free(qw);
    if (st == JL_OK) {
        if (!ck.tokenizer_json) st = jl_fail(JL_ERR_FORMAT, "%s: checkpoint has no tokenizer", model);
        else st = jl_tokenizer_from_json(ck.tokenizer_json, strlen(ck.tokenizer_json), &tok);
        if (st == JL_OK && data.n)
            st = eval_text_files(ck.model, tok, &data, window ? (int)window : jl_model_config(ck.model)->max_seq_len, &sink);
        if (st == JL_OK && copy_probe) st = eval_copy(ck.model, tok, (int)copy_probe, &sink);
        jl_chat_format *fmt = NULL; /* tuned models answer in their own chat format */
        if (st == JL_OK && tasks) st = jl_chat_format_from_checkpoint(&ck, &fmt);
        to.chat = fmt;
        if (st == JL_OK && tasks) st = eval_tasks(ck.model, tok, tasks, &to, samples, &sink);
        jl_chat_format_free(fmt);
        jl_tokenizer_free(tok);
        jl_checkpoint_free(&ck);
    }
    free(data.v);
    return cli_report("eval", st);
}
