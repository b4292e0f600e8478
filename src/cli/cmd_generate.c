/* jielong generate: continue a prompt, streaming the text as it is produced; --show-probs shows the next-token
 * distribution at every step and how temperature and truncation reshape it. */
#include "cli/infer_cli.h"
#include <json.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const jl_tokenizer *tok;
    int show_probs, step;
    int ids; /* --ids: token ids instead of text */
    char *text; /* the whole continuation (for --show-probs, printed at the end) */
    size_t len, cap;
} gen_view;

static int on_token(void *user, const jl_gen_event *ev) {
    gen_view *v = user;
    if (v->ids) {
        if (ev->token >= 0) printf("%s%d", v->step++ ? " " : "", (int)ev->token); /* < 0: text flushed at the end */
        return ferror(stdout);
    }
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

/* The process's peak resident set (VmHWM of /proc/self/status) in bytes; 0 when unknown. */
static long long peak_rss_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %lld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb * 1024;
}

/* --summary: one JSON line {"kind":"decode",...} appended: the model file's size, this process's peak RSS and the
 * prefill and decode speeds (what `jielong pipeline` puts in its deployment table). */
static jl_status append_decode_summary(const char *path, const char *label, const char *model, const jl_gen_result *r) {
    struct stat sb;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "kind", json_object_new_string("decode"));
    if (label) json_object_object_add(o, "label", json_object_new_string(label));
    json_object_object_add(o, "model", json_object_new_string(model));
    json_object_object_add(o, "file_bytes", json_object_new_int64(stat(model, &sb) == 0 ? (int64_t)sb.st_size : 0));
    json_object_object_add(o, "peak_rss_bytes", json_object_new_int64(peak_rss_bytes()));
    json_object_object_add(o, "prompt_tokens", json_object_new_int(r->n_prompt));
    json_object_object_add(o, "tokens", json_object_new_int(r->n_generated));
    json_object_object_add(o, "prefill_tok_per_s", json_object_new_double(r->prefill_s > 0 ? r->n_prompt / r->prefill_s : 0));
    json_object_object_add(o, "tok_per_s", json_object_new_double(r->decode_s > 0 ? r->n_generated / r->decode_s : 0));
    FILE *f = fopen(path, "a");
    int bad = !f || fprintf(f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                          JSON_C_TO_STRING_NOSLASHESCAPE)) < 0;
    if (f && fclose(f) != 0) bad = 1;
    json_object_put(o);
    return bad ? jl_fail(JL_ERR_IO, "%s: cannot append the summary", path) : JL_OK;
}

int cmd_generate(int argc, char **argv) {
    infer_flags f;
    infer_flags_defaults(&f);
    const char *prompt = NULL;
    cli_strs stops = {0};
    int echo = 0, show_ids = 0;
    const char *summary = NULL, *label = NULL;
    cli_opt opts[INFER_NOPTS + 6];
    int n = infer_opts(&f, opts);
    opts[n++] = (cli_opt){"prompt", OPT_STR, &prompt, "text to continue (special-token names in it are plain text); - reads it from standard input", NO_RANGE, 1};
    opts[n++] = (cli_opt){"stop", OPT_STRS, &stops, "stop when one of these strings appears (not printed)", NO_RANGE, 0};
    opts[n++] = (cli_opt){"echo", OPT_BOOL, &echo, "print the prompt before the continuation", NO_RANGE, 0};
    opts[n++] = (cli_opt){"summary", OPT_STR, &summary, "append {\"kind\":\"decode\"}: file size, peak RSS, prefill "
                          "and decode tok/s as a JSON line to this file", NO_RANGE, 0};
    opts[n++] = (cli_opt){"label", OPT_STR, &label, "a name stored with the --summary line", NO_RANGE, 0};
    opts[n++] = (cli_opt){"ids", OPT_BOOL, &show_ids, "print token ids, not text: the prompt's (as the model sees it) "
                          "on one line, the generated ones on the next", NO_RANGE, 0};
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
        gen_view view = {.tok = s.tok, .show_probs = show_ids ? 0 : (int)f.show_probs, .ids = show_ids};
        jl_gen_opts o = {.max_tokens = (int)f.max_tokens, .stops = (const char *const *)stops.v,
                         .n_stops = stops.n, .n_report = view.show_probs};
        if (view.show_probs) {
            jl_sampler_params p;
            infer_sampler_params(&f, &p);
            printf("p = model probability (temperature 1); q = sampling probability after temperature %g, "
                   "top-k %d, top-p %g, min-p %g; * = sampled\n", p.temperature, p.top_k, p.top_p, p.min_p);
        } else if (show_ids) {
            for (int i = 0; i < n_ids; i++) printf("%s%d", i ? " " : "", (int)ids[i]);
            printf("\n");
        } else if (echo) {
            fputs(prompt, stdout);
        }
        jl_gen_result res;
        st = jl_generate(s.session, s.sampler, s.tok, ids, n_ids, &o, on_token, &view, &res);
        if (view.show_probs) printf("text: %s%s", echo ? prompt : "", view.text ? view.text : "");
        printf("\n");
        fflush(stdout);
        free(view.text);
        if (st == JL_OK && summary) st = append_decode_summary(summary, label, f.model, &res);
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
