/* jielong chat: a multi-turn conversation in the model's chat format (its own Jinja template when the checkpoint
 * has one, e.g. imported from Hugging Face; else the DESIGN template). On a terminal it reads lines with libedit
 * (editing + history); otherwise it reads stdin line by line, one user turn per line, so scripts and tests can
 * pipe a conversation in. With --jsonl it reads and writes one JSON object per line (a machine mode: answers
 * with newlines stay one line). The KV cache is kept across turns: only the new turn is prefilled. */
#include "cli/infer_cli.h"
#include "jielong/chat_format.h"
#include "cli/rag_cli.h"
#include "jielong/tools.h"
#include <editline/readline.h>
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const jl_tokenizer *tok;
    int show_probs, step;
    int jsonl;           /* machine mode: nothing streamed; tool calls collected into `calls` */
    json_object *calls;
} chat_view;

static int on_token(void *user, const jl_gen_event *ev) {
    chat_view *v = user;
    if (v->jsonl) return 0;
    if (ev->report && v->show_probs) infer_print_report(stdout, v->tok, ev->report, ++v->step);
    else fwrite(ev->text, 1, ev->text_len, stdout);
    fflush(stdout);
    return 0;
}

/* Reads one line (without the newline); NULL at end of input. The result is malloc'd. */
static char *read_line(int tty) {
    if (tty) {
        char *line = readline("> ");
        if (line && *line) add_history(line);
        return line;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    return line;
}

static void print_help(void) {
    fprintf(stderr, "commands: /reset (forget the conversation), /temp X (sampling temperature), "
                    "/system TEXT (set the system prompt; /system alone clears it), /quit\n");
}

/* A /command line. Returns 0 to go on, 1 to quit; *rejected counts a command refused (reported at once). */
static int run_command(const char *line, jl_chat *chat, jl_sampler *smp, int *rejected) {
    if (strcmp(line, "/quit") == 0 || strcmp(line, "/exit") == 0) return 1;
    if (strcmp(line, "/help") == 0) {
        print_help();
    } else if (strcmp(line, "/reset") == 0) {
        jl_chat_reset(chat);
        fprintf(stderr, "(conversation reset)\n");
    } else if (strncmp(line, "/temp", 5) == 0 && (line[5] == ' ' || line[5] == '\0')) {
        jl_sampler_params p = *jl_sampler_get_params(smp);
        char *end;
        double t = strtod(line + 5, &end);
        p.temperature = (float)t;
        if (end == line + 5 || *end != '\0' || jl_sampler_set_params(smp, &p) != JL_OK) {
            fprintf(stderr, "jielong chat: /temp needs a number >= 0 (0 = greedy)\n");
            ++*rejected;
        } else {
            fprintf(stderr, "(temperature %g)\n", t);
        }
    } else if (strncmp(line, "/system", 7) == 0 && (line[7] == ' ' || line[7] == '\0')) {
        const char *text = line[7] ? line + 8 : "";
        if (jl_chat_set_system(chat, text) != JL_OK) {
            fprintf(stderr, "jielong chat: %s\n", jl_last_error());
            ++*rejected;
        } else {
            fprintf(stderr, *text ? "(system prompt set)\n" : "(system prompt cleared)\n");
        }
    } else {
        fprintf(stderr, "jielong chat: unknown command %s\n", line);
        print_help();
        ++*rejected;
    }
    return 0;
}

typedef struct {
    const char *rag, *tools;
    long rag_k, max_steps, tool_timeout;
    int show_context;
    jl_index *index;
    rag_model rm;    /* the chat model's embedder when the index was embedded with it */
    jl_toolbox *tb;
} chat_extras;

static void on_call(void *user, const jl_tool_call *call, const char *result, int is_error) {
    chat_view *v = user;
    if (v->jsonl) {
        json_object *c = json_object_new_object();
        json_object_object_add(c, "name", call->name ? json_object_new_string(call->name) : NULL);
        json_object_object_add(c, "arguments", call->arguments ? json_object_new_string(call->arguments) : NULL);
        json_object_object_add(c, "result", json_object_new_string(result));
        json_object_object_add(c, "error", json_object_new_boolean(is_error));
        if (!v->calls) v->calls = json_object_new_array();
        json_object_array_add(v->calls, c);
        return;
    }
    fprintf(stderr, "\n[tool] %s %s -> %s%s\n", call->name ? call->name : "(malformed call)",
            call->arguments ? call->arguments : "", result, is_error ? "  (error)" : "");
}

/* Opens the index and the tools; the system prompt gets the <tools> block. */
static jl_status extras_setup(chat_extras *x, infer_setup *s, jl_chat *chat, const char *system) {
    jl_status st = JL_OK;
    if (x->rag) st = jl_index_open(x->rag, 0, &x->index);
    const char *embed_model = NULL;
    size_t np, nf;
    if (st == JL_OK && x->index) st = jl_index_info(x->index, &np, &nf, &embed_model);
    if (st == JL_OK && embed_model) { /* its embedder, if the index was embedded with this model (auto ranks by BM25) */
        rag_model probe = {0};
        snprintf(probe.id, sizeof probe.id, "weights-%016llx", (unsigned long long)jl_model_weights_hash(s->ck.model));
        if (!strcmp(probe.id, embed_model)) st = rag_model_borrow(s->ck.model, s->tok, &x->rm);
    }
    if (st != JL_OK || !x->tools) return st == JL_OK && system ? jl_chat_set_system(chat, system) : st;
    st = jl_toolbox_new(&x->tb);
    if (st == JL_OK) st = jl_toolbox_add_list(x->tb, x->tools, x->index, (int)x->rag_k);
    if (st == JL_OK) jl_toolbox_set_timeout(x->tb, (int)x->tool_timeout);
    char *specs = st == JL_OK ? jl_toolbox_specs(x->tb) : NULL, *block = specs ? jl_tools_block(specs) : NULL;
    size_t len = (system ? strlen(system) : 0) + (block ? strlen(block) : 0) + 3;
    char *sys = block ? malloc(len) : NULL;
    if (st == JL_OK && !sys) st = jl_fail(JL_ERR_NOMEM, "out of memory");
    if (st == JL_OK) {
        snprintf(sys, len, "%s%s%s", system ? system : "", system && *system ? "\n\n" : "", block);
        st = jl_chat_set_system(chat, sys);
    }
    free(specs);
    free(block);
    free(sys);
    return st;
}

static void extras_free(chat_extras *x) {
    jl_toolbox_free(x->tb);
    if (x->rm.embedder) jl_embedder_free(x->rm.embedder);
    jl_index_close(x->index);
}

/* One user line: retrieval (the <context> block), then a plain answer or the agent loop. */
static jl_status user_turn(chat_extras *x, jl_chat *chat, const char *line, const jl_gen_opts *o, chat_view *view,
                           char **answer, jl_gen_result *res) {
    char *turn = NULL;
    jl_status st = JL_OK;
    memset(res, 0, sizeof *res);
    if (x->index && !x->tb) { /* with tools, search is the model's choice */
        jl_hit *hits = NULL;
        int n = 0;
        st = jl_index_query(x->index, line, (int)x->rag_k, JL_RANK_AUTO, x->rm.embedder, 0, &hits, &n);
        if (st == JL_OK && x->show_context) rag_print_hits(stderr, hits, n);
        if (st == JL_OK && !(turn = rag_user_turn(hits, n, line))) st = jl_fail(JL_ERR_NOMEM, "out of memory");
        jl_hits_free(hits, n);
        if (st != JL_OK) return st;
    }
    if (!x->tb) st = jl_chat_turn(chat, turn ? turn : line, o, on_token, view, answer, res);
    else {
        jl_agent_result ar;
        st = jl_agent_turn(chat, x->tb, turn ? turn : line, (int)x->max_steps, o, on_token, on_call, view, answer, &ar);
        res->n_generated = ar.tokens;
        if (st == JL_OK && ar.step_limit)
            fprintf(stderr, "\njielong chat: stopped after %d tool steps (--max-tool-steps)\n", ar.steps);
    }
    free(turn);
    return st;
}

static const char *finish_reason(jl_stop_reason r) {
    return r == JL_STOP_MAX_TOKENS ? "length" : r == JL_STOP_CONTEXT_FULL ? "context" : "stop";
}

/* Writes one JSON object as a line on stdout; 0 if the write failed. */
static int put_json(json_object *o) {
    int ok = printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)) > 0;
    fflush(stdout);
    json_object_put(o);
    return ok && !ferror(stdout);
}

static int put_error(long line_no, const char *msg) {
    json_object *o = json_object_new_object(), *e = json_object_new_object();
    json_object_object_add(e, "message", json_object_new_string(msg));
    json_object_object_add(e, "line", json_object_new_int64(line_no));
    json_object_object_add(o, "error", e);
    return put_json(o);
}

/* --jsonl: each input line is {"content": "..."} (a user turn; "role": "user" may be given),
 * {"role": "system", "content": "..."} (sets the system prompt) or {"reset": true}; each user turn answers with
 * {"role":"assistant","content":...,"finish_reason":"stop|length|context","tokens":N,"dropped_turns":K} (plus
 * "tool_calls" with --tools). A bad line answers {"error":{"message","line"}} and the exit code is 2 at the end. */
static int jsonl_loop(chat_extras *x, jl_chat *chat, const jl_gen_opts *o, chat_view *view) {
    int exit_code = 0;
    long line_no = 0;
    for (char *line; (line = read_line(0)); free(line)) {
        line_no++;
        if (!line[0]) continue;
        json_object *in = json_tokener_parse(line), *v;
        const char *role = "user", *content = NULL;
        if (!in || !json_object_is_type(in, json_type_object)) {
            exit_code = 2;
            if (!put_error(line_no, "not a JSON object")) exit_code = 1;
            json_object_put(in);
            continue;
        }
        if (json_object_object_get_ex(in, "reset", &v) && json_object_get_boolean(v)) {
            jl_chat_reset(chat);
            json_object *r = json_object_new_object();
            json_object_object_add(r, "reset", json_object_new_boolean(1));
            if (!put_json(r)) exit_code = 1;
            json_object_put(in);
            continue;
        }
        if (json_object_object_get_ex(in, "role", &v)) role = json_object_get_string(v);
        if (json_object_object_get_ex(in, "content", &v) && json_object_is_type(v, json_type_string))
            content = json_object_get_string(v);
        char msg[256] = "";
        if (!content) snprintf(msg, sizeof msg, "field 'content' missing or not a string");
        else if (strcmp(role, "user") != 0 && strcmp(role, "system") != 0)
            snprintf(msg, sizeof msg, "role '%.64s': expected user or system", role);
        if (msg[0]) {
            exit_code = 2;
            if (!put_error(line_no, msg)) exit_code = 1;
            json_object_put(in);
            continue;
        }
        jl_status st = JL_OK;
        char *answer = NULL;
        jl_gen_result res = {0};
        const int is_system = strcmp(role, "system") == 0; /* role and content live in `in` */
        if (is_system) st = jl_chat_set_system(chat, content);
        else st = user_turn(x, chat, content, o, view, &answer, &res);
        json_object_put(in);
        if (st != JL_OK) {
            exit_code = jl_exit_code(st);
            if (!put_error(line_no, jl_last_error())) exit_code = 1;
            json_object_put(view->calls);
            view->calls = NULL;
            continue;
        }
        json_object *r = json_object_new_object();
        if (is_system) {
            json_object_object_add(r, "system", json_object_new_boolean(1));
        } else {
            json_object_object_add(r, "role", json_object_new_string("assistant"));
            json_object_object_add(r, "content", json_object_new_string(answer ? answer : ""));
            json_object_object_add(r, "finish_reason", json_object_new_string(finish_reason(res.reason)));
            json_object_object_add(r, "tokens", json_object_new_int(res.n_generated));
            json_object_object_add(r, "dropped_turns", json_object_new_int(jl_chat_dropped(chat)));
            if (view->calls) json_object_object_add(r, "tool_calls", view->calls);
            view->calls = NULL;
        }
        free(answer);
        if (!put_json(r)) exit_code = 1;
    }
    return exit_code;
}

int cmd_chat(int argc, char **argv) {
    infer_flags f;
    infer_flags_defaults(&f);
    const char *system = NULL;
    cli_opt opts[INFER_NOPTS + 10];
    int n = infer_opts(&f, opts);
    opts[n++] = (cli_opt){"system", OPT_STR, &system, "system prompt for the conversation", NO_RANGE, 0};
    int jsonl = 0;
    const char *policy = "drop-oldest";
    opts[n++] = (cli_opt){"jsonl", OPT_BOOL, &jsonl, "machine mode: one JSON object per line in ({\"content\": ...}, "
                          "{\"role\":\"system\",...}, {\"reset\":true}) and out (the answer, finish_reason, tokens)", NO_RANGE, 0};
    opts[n++] = (cli_opt){"context-policy", OPT_STR, &policy, "when the conversation outgrows the context: drop-oldest "
                          "(default: forget the oldest exchanges, keep the system prompt) or refuse (an error; /reset)", NO_RANGE, 0};
    chat_extras x = {.rag_k = 3, .max_steps = 4, .tool_timeout = 5000};
    opts[n++] = (cli_opt){"rag", OPT_STR, &x.rag, "retrieval index (jielong index build): each turn gets its k best "
                          "passages in a <context> block; with --tools, the index of the search tool", NO_RANGE, 0};
    opts[n++] = (cli_opt){"k", OPT_INT, &x.rag_k, "passages retrieved per turn or search [3]", 1, 50, 0};
    opts[n++] = (cli_opt){"show-context", OPT_BOOL, &x.show_context, "print the retrieved passages (stderr)",
                          NO_RANGE, 0};
    opts[n++] = (cli_opt){"tools", OPT_STR, &x.tools, "tools the model may call: calculator,search,date", NO_RANGE, 0};
    opts[n++] = (cli_opt){"max-tool-steps", OPT_INT, &x.max_steps, "rounds of tool calls per turn at most [4]", 0,
                          100, 0};
    opts[n++] = (cli_opt){"tool-timeout", OPT_INT, &x.tool_timeout, "milliseconds a tool call may take [5000]", 0,
                          3600000, 0};
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-k")) argv[i] = "--k";
    int rc = cli_parse("chat", "Chat with a model: one user turn per line (/reset, /temp X, /system TEXT, /quit).",
                       opts, n, argc, argv, 1);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : rc;
    infer_setup s;
    jl_chat *chat = NULL;
    jl_chat_format *fmt = NULL;
    jl_status st = infer_setup_load(&f, &s);
    if (st == JL_OK) st = jl_chat_format_from_checkpoint(&s.ck, &fmt); /* the model's own template, if it has one */
    if (st == JL_OK) st = jl_chat_new_format(s.session, s.sampler, s.tok, fmt, &chat);
    if (st == JL_OK) st = extras_setup(&x, &s, chat, system);
    if (st == JL_OK && strcmp(policy, "drop-oldest") != 0 && strcmp(policy, "refuse") != 0)
        st = jl_fail(JL_ERR_ARG, "--context-policy %s: expected drop-oldest or refuse", policy);
    if (st == JL_OK)
        jl_chat_set_context_policy(chat, strcmp(policy, "refuse") == 0 ? JL_CONTEXT_REFUSE : JL_CONTEXT_DROP_OLDEST);
    if (st != JL_OK) {
        extras_free(&x);
        jl_chat_free(chat);
        jl_chat_format_free(fmt);
        infer_setup_free(&s);
        return cli_report("chat", st);
    }
    chat_view view = {.tok = s.tok, .show_probs = (int)f.show_probs, .jsonl = jsonl};
    jl_gen_opts o = {.max_tokens = (int)f.max_tokens, .n_report = jsonl ? 0 : (int)f.show_probs};
    if (jsonl) {
        int code = jsonl_loop(&x, chat, &o, &view);
        extras_free(&x);
        jl_chat_free(chat);
        jl_chat_format_free(fmt);
        infer_setup_free(&s);
        return code;
    }
    const int tty = isatty(STDIN_FILENO);
    if (tty) {
        fprintf(stderr, "jielong chat: %s, context %d. ", f.model, jl_session_capacity(s.session));
        print_help();
    }
    int exit_code = 0, rejected = 0;
    for (char *line; (line = read_line(tty));) {
        int quit = 0;
        if (line[0] == '/') {
            quit = run_command(line, chat, s.sampler, &rejected);
        } else if (line[0]) {
            jl_gen_result res;
            view.step = 0;
            jl_status ts = user_turn(&x, chat, line, &o, &view, NULL, &res);
            printf("\n");
            fflush(stdout);
            if (ts != JL_OK) {
                fprintf(stderr, "jielong chat: %s\n", jl_last_error());
                exit_code = jl_exit_code(ts);
            } else if (f.stats) {
                infer_print_stats("chat", &res);
            }
            if (ts == JL_OK && jl_chat_dropped(chat)) {
                fprintf(stderr, "(the oldest %d exchange%s dropped to fit the context)\n", jl_chat_dropped(chat),
                        jl_chat_dropped(chat) > 1 ? "s were" : " was");
            } else if (res.reason == JL_STOP_CONTEXT_FULL) {
                fprintf(stderr, "jielong chat: answer cut: context full (/reset to start over)\n");
            }
        }
        free(line);
        if (quit) break;
    }
    /* At a terminal a mistyped command is corrected on the spot; a script's rejected command fails the run, and
     * says so at the end (the exit code alone used to leave the cause to guess). */
    if (!tty && rejected) {
        fprintf(stderr, "jielong chat: %d command(s) were rejected (see above): exit 2\n", rejected);
        if (!exit_code) exit_code = 2;
    }
    extras_free(&x);
    jl_chat_free(chat);
    jl_chat_format_free(fmt);
    infer_setup_free(&s);
    return exit_code;
}
