/* jielong data poems|check|validate|render — the bundled poem corpus, its derived datasets, the poem rules
 * (the verifiable reward) and a look at JSONL datasets through the readers and the chat template. */
#include "cli/args.h"
#include "jielong.h"
#include "io/fileio.h"
#include "jielong/chat_format.h"
#include "jielong/dataset.h"
#include "jielong/rules.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_counts(const char *split, const jl_poem_build_counts *c) {
    printf("%-8s poems %6zu | pretrain documents %6zu (+%zu anthologies; %zu are copy exercises; +%zu repetitions) | sft conversations %6zu (general chat %zu) | "
           "preference pairs %6zu | prompts %6zu\n",
           split, c->poems, c->documents, c->anthologies, c->copy_docs, c->repeat_docs, c->conversations, c->general, c->pairs, c->prompts);
}

static int data_poems(int argc, char **argv) {
    const char *input = "data/poems.jsonl", *out = NULL;
    long seed = 1234;
    double general = 0.03, system = 0.1, invented = 0.3, copy_docs = 0, repeat_docs = 0;
    long write_copies = 3, anthologies = 1;
    const cli_opt opts[] = {
        {"input", OPT_STR, &input, "poem corpus (JSONL) [data/poems.jsonl]", NO_RANGE, 0},
        {"out", OPT_STR, &out, "output folder", NO_RANGE, 1},
        {"seed", OPT_INT, &seed, "seed of every choice (order, phrasing, corruption) [1234]", 0, 1e9, 0},
        {"general", OPT_FLOAT, &general, "share of general chat in sft.jsonl [0.03]", 0, 0.5, 0},
        {"system", OPT_FLOAT, &system, "share of conversations with a system turn [0.1]", 0, 1, 0},
        {"write-copies", OPT_INT, &write_copies, "'write' conversations per poem in sft.jsonl, each phrased anew; "
                                                 "the other tasks have one [3]", 1, 8, 0},
        {"invented-titles", OPT_FLOAT, &invented, "share of 'write' conversations asked under an invented title "
                                                  "(the heading must copy it from the request) [0.3]", 0, 1, 0},
        {"anthologies", OPT_INT, &anthologies, "1: pretrain.txt also holds author anthologies (a contents line of "
                                               "titles, then up to 4 poems of one author: copying from context "
                                               "pays); 0: single poems only [1]", 0, 1, 0},
        {"copy-docs", OPT_FLOAT, &copy_docs, "share of the train poems whose pretraining document is a copy exercise: "
                                             "heading announced before it, poem recited again after it, or a couplet "
                                             "quoted back with title and author (copying from context pays) [0: off]", 0, 1, 0},
        {"repeat-docs", OPT_FLOAT, &repeat_docs, "share of the train poems followed by a repetition exercise: a line "
                                                 "of 4-12 random corpus characters shown 3-6 times (only copying "
                                                 "predicts the repeats) [0: off]", 0, 1, 0},
    };
    int rc = cli_parse("data poems", "derive every stage's datasets from the poem corpus: pretrain.txt, sft.jsonl, "
                       "prefs.jsonl, rl_prompts.jsonl (train poems) and eval_*.jsonl, eval_pretrain.txt (held-out)",
                       opts, CLI_NOPTS(opts), argc, argv, 2);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : 2;
    jl_poems *poems;
    jl_jsonl_stats stats;
    jl_status st = jl_poems_load(input, NULL, &poems, &stats);
    if (st != JL_OK) return cli_report("data poems", st);
    jl_poem_build_options opt;
    jl_poem_build_defaults(&opt);
    opt.seed = (uint64_t)seed;
    opt.general_fraction = general;
    opt.system_fraction = system;
    opt.write_copies = (int)write_copies;
    opt.anthologies = (int)anthologies;
    opt.invented_titles = invented;
    opt.copy_docs = copy_docs;
    opt.repeat_docs = repeat_docs;
    jl_poem_build_counts train, heldout;
    st = jl_poems_write_all(poems, out, &opt, &train, &heldout);
    jl_poems_free(poems);
    if (st != JL_OK) return cli_report("data poems", st);
    printf("read %zu poems from %s; wrote %s/{pretrain.txt,sft.jsonl,prefs.jsonl,rl_prompts.jsonl,"
           "eval_pretrain.txt,eval_sft.jsonl,eval_prefs.jsonl,eval_prompts.jsonl}\n", stats.records, input, out);
    print_counts("train", &train);
    print_counts("held-out", &heldout);
    return 0;
}

static char *read_stdin(void) {
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - len - 1, stdin);
        if (feof(stdin) || ferror(stdin)) break;
        char *p = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;
        if (!p) {
            free(buf);
            return NULL;
        }
        buf = p;
        cap *= 2;
    }
    if (buf) buf[len] = '\0';
    return buf;
}

static void print_report(const jl_poem_report *r) {
    printf("form          %s (%s): %d lines of %d characters\n", jl_poem_form_name(r->form), jl_poem_form_id(r->form),
           jl_poem_form_lines(r->form), jl_poem_form_chars(r->form));
    printf("lines         %d:", r->n_lines);
    for (int i = 0; i < r->n_lines && i < JL_POEM_MAX_LINES; i++)
        printf(" %d%s", r->line_chars[i], r->line_end[i][0] ? r->line_end[i] : "_");
    printf("\ndetected      %s\n", r->detected == JL_FORM_NONE ? "none" : jl_poem_form_id(r->detected));
    printf("line count    %s\nline lengths  %d/%d right\npunctuation   %d/%d right\nother chars   %d\n",
           r->lines_ok ? "right" : "wrong", r->n_lines_right_length, jl_poem_form_lines(r->form), r->n_punct_right,
           jl_poem_form_lines(r->form), r->n_other);
    printf("repetition    %d repeated lines, %d excess characters (most frequent character x%d)\n",
           r->n_repeated_lines, r->n_excess_chars, r->max_char_count);
    printf("complies      %s\nrepetitive    %s\nok            %s\n", r->complies ? "yes" : "no",
           r->repetitive ? "yes" : "no", r->ok ? "yes" : "no");
    printf("form score    %.3f\nrepetition    %.3f\nreward        %.3f\n", r->form_score, r->repetition_score,
           r->reward);
}

static int data_check(int argc, char **argv) {
    const char *form_name = NULL, *text = NULL;
    const cli_opt opts[] = {
        {"form", OPT_STR, &form_name, "wujue | qijue | wulv | qilv (or 五言绝句, 五绝 ...)", NO_RANGE, 1},
        {"text", OPT_STR, &text, "the poem to check (default: read standard input)", NO_RANGE, 0},
    };
    int rc = cli_parse("data check", "check a poem against a regular form and print the rule report and reward",
                       opts, CLI_NOPTS(opts), argc, argv, 2);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : 2;
    jl_poem_form form = jl_poem_form_parse(form_name);
    if (form == JL_FORM_NONE) {
        fprintf(stderr, "jielong data check: --form %s: unknown form (wujue, qijue, wulv or qilv)\n", form_name);
        return 2;
    }
    char *owned = text ? NULL : read_stdin();
    if (!text && !owned) {
        fprintf(stderr, "jielong data check: cannot read standard input\n");
        return 1;
    }
    jl_poem_report report;
    jl_status st = jl_poem_check(text ? text : owned, form, &report);
    free(owned);
    if (st != JL_OK) return cli_report("data check", st);
    print_report(&report);
    return 0;
}

/* Loads (and frees) a dataset of `kind` through its reader; stats receive the counts. */
static jl_status load_kind(const char *kind, const char *path, const jl_jsonl_options *opt, jl_jsonl_stats *stats) {
    if (!strcmp(kind, "sft")) {
        jl_sft_set *set;
        jl_status st = jl_sft_load(path, opt, &set, stats);
        jl_sft_free(set);
        return st;
    }
    if (!strcmp(kind, "prefs")) {
        jl_pref_set *set;
        jl_status st = jl_prefs_load(path, opt, &set, stats);
        jl_prefs_free(set);
        return st;
    }
    if (!strcmp(kind, "rl")) {
        jl_rl_set *set;
        jl_status st = jl_rl_load(path, opt, &set, stats);
        jl_rl_free(set);
        return st;
    }
    if (!strcmp(kind, "poems")) {
        jl_poems *set;
        jl_status st = jl_poems_load(path, opt, &set, stats);
        jl_poems_free(set);
        return st;
    }
    return jl_fail(JL_ERR_ARG, "--kind %s: unknown kind (sft, prefs, rl or poems)", kind);
}

static int data_validate(int argc, char **argv) {
    const char *kind = NULL, *input = NULL;
    int skip_bad = 0;
    const cli_opt opts[] = {
        {"kind", OPT_STR, &kind, "sft (messages or Alpaca) | prefs | rl | poems", NO_RANGE, 1},
        {"input", OPT_STR, &input, "JSONL file", NO_RANGE, 1},
        {"skip-bad", OPT_BOOL, &skip_bad, "skip malformed lines (counted) instead of stopping at the first", NO_RANGE, 0},
    };
    int rc = cli_parse("data validate", "read a JSONL dataset with the training readers and report what they find",
                       opts, CLI_NOPTS(opts), argc, argv, 2);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : 2;
    jl_jsonl_options opt = {skip_bad, 0};
    jl_jsonl_stats stats;
    jl_status st = load_kind(kind, input, &opt, &stats);
    if (st != JL_OK) return cli_report("data validate", st);
    printf("%s: %zu lines, %zu %s records, %zu skipped\n", input, stats.lines, stats.records, kind, stats.skipped);
    if (stats.skipped) fprintf(stderr, "jielong data validate: warning: first skipped line: %s\n", stats.first_error);
    return 0;
}

static void print_segments(const jl_segments *segs) {
    for (size_t i = 0; i < segs->n; i++) {
        const jl_segment *s = &segs->items[i];
        printf("%3zu %s %-5s %.*s\n", i, s->trainable ? "T" : ".", s->special >= 0 ? "token" : "text", (int)s->len,
               s->text);
    }
}

/* The chat format data render uses: --chat-template FILE (with --bos/--eos), or --model's own, or built-in. */
static jl_status render_format(const char *model, const char *tmpl_path, const char *bos, const char *eos,
                               jl_chat_format **fmt) {
    *fmt = NULL;
    if (tmpl_path) {
        char *text;
        size_t len;
        jl_status st = jl_read_file(tmpl_path, &text, &len);
        if (st == JL_OK && strlen(text) != len) st = jl_fail(JL_ERR_FORMAT, "%s: a NUL byte in the template", tmpl_path);
        if (st == JL_OK && (st = jl_chat_format_new(text, bos, eos, fmt)) != JL_OK) jl_fail_context(st, "%s", tmpl_path);
        free(text);
        return st;
    }
    if (!model) return JL_OK;
    jl_checkpoint ck;
    jl_status st = jl_checkpoint_load(model, &ck);
    if (st == JL_OK) st = jl_chat_format_from_checkpoint(&ck, fmt);
    jl_checkpoint_free(&ck);
    return st;
}

static int data_render(int argc, char **argv) {
    const char *input = NULL, *model = NULL, *tmpl = NULL, *bos = NULL, *eos = NULL;
    long index = 0;
    int generation = 0;
    const cli_opt opts[] = {
        {"input", OPT_STR, &input, "SFT JSONL (messages or Alpaca)", NO_RANGE, 1},
        {"index", OPT_INT, &index, "which conversation (0-based) [0]", 0, 1e12, 0},
        {"generation", OPT_BOOL, &generation, "render the prompt to complete (ends with the assistant's header)", NO_RANGE, 0},
        {"model", OPT_STR, &model, "render in this checkpoint's chat format (its own template, if it has one)", NO_RANGE, 0},
        {"chat-template", OPT_STR, &tmpl, "render with this Jinja chat template file (Hugging Face style)", NO_RANGE, 0},
        {"bos", OPT_STR, &bos, "with --chat-template: the text of bos_token", NO_RANGE, 0},
        {"eos", OPT_STR, &eos, "with --chat-template: the text of eos_token", NO_RANGE, 0},
    };
    int rc = cli_parse("data render", "show a conversation rendered with the chat template: one segment a line, "
                       "T = trainable (in the loss)", opts, CLI_NOPTS(opts), argc, argv, 2);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : 2;
    jl_sft_set *set;
    jl_jsonl_options opt = {0, (size_t)index + 1};
    jl_chat_format *fmt = NULL;
    jl_status st = render_format(model, tmpl, bos, eos, &fmt);
    if (st != JL_OK) return cli_report("data render", st);
    if ((st = jl_sft_load(input, &opt, &set, NULL)) != JL_OK) {
        jl_chat_format_free(fmt);
        return cli_report("data render", st);
    }
    if ((size_t)index >= jl_sft_count(set)) {
        fprintf(stderr, "jielong data render: --index %ld: %s has %zu conversations\n", index, input, jl_sft_count(set));
        jl_sft_free(set);
        jl_chat_format_free(fmt);
        return 2;
    }
    jl_conversation conv = jl_sft_get(set, (size_t)index);
    jl_segments segs = {0};
    st = generation ? jl_chat_format_render_generation(fmt, &conv, &segs) : jl_chat_format_render(fmt, &conv, &segs);
    if (st == JL_OK) print_segments(&segs);
    jl_segments_free(&segs);
    jl_sft_free(set);
    jl_chat_format_free(fmt);
    return cli_report("data render", st);
}

int data_tools(int argc, char **argv); /* cmd_data_tools.c */
int data_cot(int argc, char **argv);   /* cmd_data_synth.c */
int data_instruct(int argc, char **argv); /* cmd_data_synth.c */

int cmd_data(int argc, char **argv) {
    static const struct {
        const char *name;
        int (*run)(int, char **);
        const char *summary;
    } subs[] = {
        {"poems", data_poems, "derive the datasets of every stage from the poem corpus"},
        {"check", data_check, "check a poem against a form: the rule report and reward"},
        {"validate", data_validate, "read a JSONL dataset (sft, prefs, rl, poems) and report errors"},
        {"render", data_render, "show a conversation rendered with the chat template"},
        {"tools", data_tools, "SFT conversations calling calculator and search, held-out questions"},
        {"cot", data_cot, "sums answered directly and step by step (chain of thought), held-out sums"},
        {"instruct", data_instruct, "self-instruct: writing instructions whose titles a model makes up"},
    };
    const int n = (int)(sizeof subs / sizeof subs[0]);
    if (argc >= 2)
        for (int i = 0; i < n; i++)
            if (!strcmp(argv[1], subs[i].name)) return subs[i].run(argc, argv);
    int help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
    FILE *f = help ? stdout : stderr;
    if (argc >= 2 && !help) fprintf(stderr, "jielong data: unknown subcommand '%s'\n", argv[1]);
    fprintf(f, "usage: jielong data <subcommand> [options]   (jielong data <subcommand> --help)\n\n");
    for (int i = 0; i < n; i++) fprintf(f, "  %-10s %s\n", subs[i].name, subs[i].summary);
    return help ? 0 : 2;
}
