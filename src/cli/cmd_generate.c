/* jielong generate: continue a prompt, streaming the text as it is produced; --show-probs shows the next-token
 * distribution at every step and how temperature and truncation reshape it. */
#include "cli/infer_cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const jl_tokenizer *tok;
    int show_probs, step;
    char *text; /* the whole continuation (for --show-probs, printed at the end) */
    size_t len, cap;
} gen_view;

static int on_token(void *user, const jl_gen_event *ev) {
    gen_view *v = user;
    if (!v->show_probs) {
        fwrite(ev->text, 1, ev->text_len, stdout);
        return fflush(stdout) != 0 || ferror(stdout); /* output lost (full disk, closed pipe): stop generating */
    }
    if (ev->report) infer_print_report(stdout, v->tok, ev->report, ++v->step);
    if (v->len + ev->text_len + 1 > v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 256;
        while (cap < v->len + ev->text_len + 1) cap *= 2;
        char *p = realloc(v->text, cap);
        if (!p) return 1;
        v->text = p;
        v->cap = cap;
    }
    memcpy(v->text + v->len, ev->text, ev->text_len);
    v->len += ev->text_len;
    v->text[v->len] = '\0';
    return 0;
}

/* The whole of standard input (for --prompt -), up to a bound so that `< /dev/zero` cannot exhaust memory. */
static jl_status read_stdin(char **out) {
    const size_t limit = 64u << 20;
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    if (!buf) return jl_fail(JL_ERR_NOMEM, "out of memory");
    for (size_t got; (got = fread(buf + len, 1, cap - len - 1, stdin)) > 0;) {
        len += got;
        if (len + 1 == cap) {
            if (cap >= limit) {
                free(buf);
                return jl_fail(JL_ERR_ARG, "--prompt -: standard input is longer than %zu MiB", limit >> 20);
            }
            char *grown = realloc(buf, cap *= 2);
            if (!grown) {
                free(buf);
                return jl_fail(JL_ERR_NOMEM, "out of memory");
            }
            buf = grown;
        }
    }
    if (ferror(stdin)) {
        free(buf);
        return jl_fail(JL_ERR_IO, "--prompt -: cannot read standard input");
    }
    buf[len] = '\0';
    size_t nul = strlen(buf);
    if (nul != len) {
        free(buf);
        return jl_fail(JL_ERR_ARG, "--prompt -: standard input holds a NUL byte (at %zu)", nul);
    }
    *out = buf;
    return JL_OK;
}

int cmd_generate(int argc, char **argv) {
    infer_flags f;
    infer_flags_defaults(&f);
    const char *prompt = NULL;
    cli_strs stops = {0};
    int echo = 0;
    cli_opt opts[INFER_NOPTS + 3];
    int n = infer_opts(&f, opts);
    opts[n++] = (cli_opt){"prompt", OPT_STR, &prompt, "text to continue (special-token names in it are plain text); - reads it from standard input", NO_RANGE, 1};
    opts[n++] = (cli_opt){"stop", OPT_STRS, &stops, "stop when one of these strings appears (not printed)", NO_RANGE, 0};
    opts[n++] = (cli_opt){"echo", OPT_BOOL, &echo, "print the prompt before the continuation", NO_RANGE, 0};
    int rc = cli_parse("generate", "Continue a prompt with a model, streaming the text token by token.", opts, n,
                       argc, argv, 1);
    if (rc != CLI_PARSED) {
        free(stops.v);
        return rc == CLI_HELP_SHOWN ? 0 : rc;
    }
    char *stdin_prompt = NULL;
    if (strcmp(prompt, "-") == 0) {
        jl_status rs = read_stdin(&stdin_prompt);
        if (rs != JL_OK) {
            free(stops.v);
            return cli_report("generate", rs);
        }
        prompt = stdin_prompt;
    }
    infer_setup s;
    jl_status st = infer_setup_load(&f, &s);
    int32_t *ids = NULL;
    int n_ids = 0;
    if (st == JL_OK) st = infer_encode_prompt(&s, prompt, &ids, &n_ids);
    if (st == JL_OK && n_ids > jl_session_capacity(s.session))
        st = jl_fail(JL_ERR_ARG, "the prompt has %d tokens but the context holds %d", n_ids,
                     jl_session_capacity(s.session));
    if (st == JL_OK) {
        gen_view view = {.tok = s.tok, .show_probs = (int)f.show_probs};
        jl_gen_opts o = {.max_tokens = (int)f.max_tokens, .stops = (const char *const *)stops.v,
                         .n_stops = stops.n, .n_report = (int)f.show_probs};
        if (view.show_probs) {
            jl_sampler_params p;
            infer_sampler_params(&f, &p);
            printf("p = model probability (temperature 1); q = sampling probability after temperature %g, "
                   "top-k %d, top-p %g, min-p %g; * = sampled\n", p.temperature, p.top_k, p.top_p, p.min_p);
        } else if (echo) {
            fputs(prompt, stdout);
        }
        jl_gen_result res;
        st = jl_generate(s.session, s.sampler, s.tok, ids, n_ids, &o, on_token, &view, &res);
        if (view.show_probs) printf("text: %s%s", echo ? prompt : "", view.text ? view.text : "");
        printf("\n");
        fflush(stdout);
        free(view.text);
        if (st == JL_OK && f.stats) infer_print_stats("generate", &res);
        else if (st == JL_OK && res.reason == JL_STOP_CONTEXT_FULL)
            fprintf(stderr, "jielong generate: stopped: context full (%d positions)\n",
                    jl_session_capacity(s.session));
    }
    free(ids);
    infer_setup_free(&s);
    free(stops.v);
    free(stdin_prompt);
    return cli_report("generate", st);
}
