/* jielong chat: a multi-turn conversation with the DESIGN chat template. On a terminal it reads lines with
 * libedit (editing + history); otherwise it reads stdin line by line, one user turn per line, so scripts and
 * tests can pipe a conversation in. The KV cache is kept across turns: only the new turn is prefilled. */
#include "cli/infer_cli.h"
#include <editline/readline.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const jl_tokenizer *tok;
    int show_probs, step;
} chat_view;

static int on_token(void *user, const jl_gen_event *ev) {
    chat_view *v = user;
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

int cmd_chat(int argc, char **argv) {
    infer_flags f;
    infer_flags_defaults(&f);
    const char *system = NULL;
    cli_opt opts[INFER_NOPTS + 1];
    int n = infer_opts(&f, opts);
    opts[n++] = (cli_opt){"system", OPT_STR, &system, "system prompt for the conversation", NO_RANGE, 0};
    int rc = cli_parse("chat", "Chat with a model: one user turn per line (/reset, /temp X, /system TEXT, /quit).",
                       opts, n, argc, argv, 1);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : rc;
    infer_setup s;
    jl_chat *chat = NULL;
    jl_status st = infer_setup_load(&f, &s);
    if (st == JL_OK) st = jl_chat_new(s.session, s.sampler, s.tok, &chat);
    if (st == JL_OK && system) st = jl_chat_set_system(chat, system);
    if (st != JL_OK) {
        jl_chat_free(chat);
        infer_setup_free(&s);
        return cli_report("chat", st);
    }
    const int tty = isatty(STDIN_FILENO);
    if (tty) {
        fprintf(stderr, "jielong chat: %s, context %d. ", f.model, jl_session_capacity(s.session));
        print_help();
    }
    chat_view view = {.tok = s.tok, .show_probs = (int)f.show_probs};
    jl_gen_opts o = {.max_tokens = (int)f.max_tokens, .n_report = (int)f.show_probs};
    int exit_code = 0, rejected = 0;
    for (char *line; (line = read_line(tty));) {
        int quit = 0;
        if (line[0] == '/') {
            quit = run_command(line, chat, s.sampler, &rejected);
        } else if (line[0]) {
            jl_gen_result res;
            view.step = 0;
            jl_status ts = jl_chat_turn(chat, line, &o, on_token, &view, NULL, &res);
            printf("\n");
            fflush(stdout);
            if (ts != JL_OK) {
                fprintf(stderr, "jielong chat: %s\n", jl_last_error());
                exit_code = jl_exit_code(ts);
            } else if (f.stats) {
                infer_print_stats("chat", &res);
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
    jl_chat_free(chat);
    infer_setup_free(&s);
    return exit_code;
}
