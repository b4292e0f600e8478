/* jielong tokenizer train|encode|decode|import|synth */
#include "cli/args.h"
#include "jielong/dataset.h"
#include "core/timer.h"
#include "io/fileio.h"
#include "jielong/tokenizer.h"
#include "jielong/tools.h"
#include "tokenizer/synth.h"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Progress for long runs, on stderr. A terminal gets one line redrawn in place; a pipe or file gets a line per
 * 10%. (Kept in this one function so it can move to the shared src/cli/progress.h once that exists.) */
typedef struct {
    double start;
    const char *phase;
    int last_decile;
} progress_state;

static void progress_line(void *user, const char *phase, double done, double total) {
    progress_state *p = user;
    if (p->phase != phase && (!p->phase || strcmp(p->phase, phase))) {
        if (p->phase && isatty(2)) fputc('\n', stderr);
        p->phase = phase;
        p->last_decile = -1;
    }
    double frac = total > 0 ? done / total : 1;
    int decile = (int)(frac * 10);
    if (isatty(2)) {
        fprintf(stderr, "\r%-6s %5.1f%%  %.0f/%.0f  %.1fs", phase, 100 * frac, done, total, jl_now() - p->start);
        if (done >= total) fputc('\n', stderr);
    } else if (decile != p->last_decile) {
        fprintf(stderr, "%s %3d%%  %.1fs\n", phase, decile * 10, jl_now() - p->start);
    }
    p->last_decile = decile;
}

/* Reads all of stdin. */
static jl_status read_stdin(char **data, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) return jl_fail(JL_ERR_NOMEM, "out of memory");
    for (;;) {
        if (n == cap) {
            char *b = realloc(buf, 2 * cap + 1);
            if (!b) {
                free(buf);
                return jl_fail(JL_ERR_NOMEM, "out of memory reading stdin");
            }
            buf = b;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0) break;
    }
    if (ferror(stdin)) {
        free(buf);
        return jl_fail(JL_ERR_IO, "stdin: read failed");
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return JL_OK;
}

/* The concatenation of the given files, or stdin when none. */
static jl_status read_inputs(const cli_strs *inputs, char **data, size_t *len) {
    if (inputs->n == 0) return read_stdin(data, len);
    char *all = NULL;
    size_t total = 0;
    for (int k = 0; k < inputs->n; k++) {
        char *d;
        size_t n;
        jl_status st = jl_read_file(inputs->v[k], &d, &n);
        if (st != JL_OK) {
            free(all);
            return st;
        }
        char *a = realloc(all, total + n + 1);
        if (!a) {
            free(d);
            free(all);
            return jl_fail(JL_ERR_NOMEM, "out of memory");
        }
        all = a;
        memcpy(all + total, d, n);
        total += n;
        all[total] = '\0';
        free(d);
    }
    *data = all;
    *len = total;
    return JL_OK;
}

static int write_all(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n ? 0 : -1; }

/* ---- train ---- */
static int cmd_train(int argc, char **argv) {
    cli_strs inputs = {0};
    long vocab = 0;
    char *output = NULL, *pattern = "cl100k";
    int quiet = 0, tool_tokens = 0;
    const cli_opt opts[] = {
        {"input", OPT_STRS, &inputs, "UTF-8 text files to learn from (any bytes are accepted)", NO_RANGE, 1},
        {"vocab-size", OPT_INT, &vocab, "final vocabulary size incl. 256 bytes + 6 special tokens", 262, 1 << 24, 1},
        {"out|output", OPT_STR, &output, "tokenizer.json to write", NO_RANGE, 1},
        {"pattern", OPT_STR, &pattern, "pre-tokenizer regex: gpt2 | cl100k (default) | o200k | han (one token per Chinese character)", NO_RANGE, 0},
        {"tool-tokens", OPT_BOOL, &tool_tokens, "add the tool-call syntax (<tool_call>, {\"name\":\"calculator\","
         "\"arguments\":, ...) as tokens, within --vocab-size", NO_RANGE, 0},
        {"quiet", OPT_BOOL, &quiet, "no progress output", NO_RANGE, 0},
    };
    int rc = cli_parse("tokenizer train", "Learn a byte-level BPE vocabulary from text.", opts, CLI_NOPTS(opts), argc,
                       argv, 2);
    if (rc != CLI_PARSED) {
        free(inputs.v);
        return rc == CLI_HELP_SHOWN ? 0 : 2;
    }
    int kind = jl_tokenizer_pattern_by_name(pattern);
    if (kind < 0) {
        free(inputs.v);
        fprintf(stderr, "jielong tokenizer train: --pattern %s: expected gpt2, cl100k, o200k or han\n", pattern);
        return 2;
    }
    progress_state prog = {.start = jl_now()};
    int n_added = tool_tokens ? JL_TOOL_CALL_N_TOKENS : 0;
    if (vocab - n_added < 262) {
        free(inputs.v);
        fprintf(stderr, "jielong tokenizer train: --vocab-size %ld: too small for %d added tokens\n", vocab, n_added);
        return 2;
    }
    jl_train_opts topts = {.vocab_size = (int)vocab - n_added, .pattern = jl_tokenizer_pattern_text((jl_pattern_kind)kind),
                           .progress = quiet ? NULL : progress_line, .progress_user = &prog};
    jl_bpe_trainer *tr = NULL;
    jl_tokenizer *tok = NULL;
    jl_status st = jl_bpe_trainer_new(&topts, &tr);
    for (int k = 0; k < inputs.n && st == JL_OK; k++) { /* one file in memory at a time */
        char *text;
        size_t len;
        st = jl_read_file(inputs.v[k], &text, &len);
        if (st == JL_OK) st = jl_bpe_trainer_add(tr, text, len);
        free(text);
    }
    if (st == JL_OK) st = jl_bpe_trainer_finish(tr, &tok);
    if (st == JL_OK && n_added) { /* after the merges: the added ids follow the learnt ones */
        jl_tokenizer *with = NULL;
        st = jl_tokenizer_add_tokens(tok, jl_tool_call_tokens, n_added, &with);
        jl_tokenizer_free(tok);
        tok = with;
    }
    if (st == JL_OK) st = jl_tokenizer_save(tok, output);
    if (st == JL_OK && !quiet)
        fprintf(stderr, "wrote %s: %d tokens in %.2fs\n", output, jl_tokenizer_vocab_size(tok), jl_now() - prog.start);
    jl_bpe_trainer_free(tr);
    jl_tokenizer_free(tok);
    free(inputs.v);
    return cli_report("tokenizer train", st);
}

/* ---- encode ---- */
/* One token as readable text: printable UTF-8 as is, everything else escaped (\n, \t, \xNN). */
static void show_token(FILE *f, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c == '\\') fputs("\\\\", f);
        else if (c < 0x20 || c == 0x7F) fprintf(f, "\\x%02X", c);
        else if (c < 0x80) fputc(c, f);
        else {
            int len = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
            int ok = len && i + (size_t)len <= n;
            for (int k = 1; ok && k < len; k++) ok = ((unsigned char)s[i + k] & 0xC0) == 0x80;
            if (ok) {
                fwrite(s + i, 1, (size_t)len, f);
                i += (size_t)len - 1;
            } else {
                fprintf(f, "\\x%02X", c); /* part of a character split across tokens, or invalid UTF-8 */
            }
        }
    }
}

/* Writes ids as text: "id id id" (a space before all but the very first, *first tracks it across calls), or with
 * show one "id<TAB>token" line each. */
static void emit_ids(FILE *f, const jl_tokenizer *tok, const int32_t *ids, size_t n, int show, int *first) {
    for (size_t i = 0; i < n; i++) {
        if (show) {
            size_t tl;
            const char *s = jl_tokenizer_token(tok, ids[i], &tl);
            fprintf(f, "%d\t", (int)ids[i]);
            show_token(f, s, tl);
            fputc('\n', f);
        } else {
            fprintf(f, *first ? "%d" : " %d", (int)ids[i]);
        }
        *first = 0;
    }
}

enum { STREAM_PIECE = 1 << 20 };

/* How much of buf[0..n) stdin encoding may take now: up to a cut the tokenizer says leaves the ids as those of
 * the whole text (jl_tokenizer_safe_cut), else, with a full buffer (a line over 1 MiB, e.g. /dev/zero), up to the
 * last UTF-8 character start; 0 = read more first. */
static size_t stream_cut(const jl_tokenizer *tok, const char *b, size_t n, int full) {
    size_t cut = jl_tokenizer_safe_cut(tok, b, n);
    if (cut || !full) return cut;
    size_t i = n;
    while (i > 1 && ((unsigned char)b[i - 1] & 0xC0) == 0x80) i--;
    return i > 1 ? i - 1 : n;
}

/* Encodes stdin piece by piece (memory bounded by 2 MiB of text, output as it goes: `< /dev/zero` streams). */
static jl_status encode_stdin(const jl_tokenizer *tok, int allow_special, int show, FILE *f, int *first) {
    const size_t cap = 2 * STREAM_PIECE;
    char *buf = malloc(cap);
    if (!buf) return jl_fail(JL_ERR_NOMEM, "out of memory");
    size_t n = 0;
    jl_status st = JL_OK;
    for (int eof = 0; st == JL_OK && !eof;) {
        ssize_t got = read(STDIN_FILENO, buf + n, cap - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) st = jl_fail(JL_ERR_IO, "stdin: read failed: %s", strerror(errno));
        eof = got <= 0;
        n += got > 0 ? (size_t)got : 0;
        size_t cut = eof ? n : stream_cut(tok, buf, n, n == cap);
        if (st != JL_OK || cut == 0) continue;
        int32_t *ids = NULL;
        size_t n_ids = 0;
        st = jl_tokenizer_encode(tok, buf, cut, allow_special, &ids, &n_ids);
        if (st == JL_OK) emit_ids(f, tok, ids, n_ids, show, first);
        free(ids);
        memmove(buf, buf + cut, n - cut);
        n -= cut;
        if (st == JL_OK && (fflush(f) != 0 || ferror(f)))
            st = jl_fail(JL_ERR_IO, "output: write failed: %s", strerror(errno));
    }
    free(buf);
    return st;
}

static int cmd_encode(int argc, char **argv) {
    cli_strs inputs = {0};
    char *path = NULL, *output = NULL;
    int show = 0, allow_special = 0, add_special = 0;
    const cli_opt opts[] = {
        {"tokenizer", OPT_STR, &path, "tokenizer.json (jielong's, or any HF one of a BPE model)", NO_RANGE, 1},
        {"input", OPT_STRS, &inputs, "files to encode, concatenated (default: stdin)", NO_RANGE, 0},
        {"out|output", OPT_STR, &output, "write the ids here (default: stdout)", NO_RANGE, 0},
        {"allow-special", OPT_BOOL, &allow_special, "the text '<|end|>' etc. becomes its special token", NO_RANGE, 0},
        {"add-special", OPT_BOOL, &add_special, "put the tokenizer's special tokens around the ids (its "
                                                "post-processor template, e.g. Llama 2's <s>)", NO_RANGE, 0},
        {"show", OPT_BOOL, &show, "print one token a line: id, tab, the token as text", NO_RANGE, 0},
    };
    int rc = cli_parse("tokenizer encode", "Text → token ids (space-separated).", opts, CLI_NOPTS(opts), argc, argv, 2);
    if (rc != CLI_PARSED) {
        free(inputs.v);
        return rc == CLI_HELP_SHOWN ? 0 : 2;
    }
    jl_tokenizer *tok = NULL;
    char *text = NULL;
    size_t len = 0, n = 0;
    int32_t *ids = NULL;
    jl_status st = jl_tokenizer_load(path, &tok);
    jl_atomic_file af = {0};
    if (st == JL_OK && output) st = jl_atomic_open(&af, output);
    FILE *f = output ? af.f : stdout;
    int first = 1;
    const int32_t *pre = NULL, *post = NULL;
    size_t n_pre = 0, n_post = 0;
    if (st == JL_OK && add_special) jl_tokenizer_template(tok, &pre, &n_pre, &post, &n_post);
    if (st == JL_OK) emit_ids(f, tok, pre, n_pre, show, &first); /* the post-processor template around the text */
    /* stdin in pieces when the tokenizer allows cuts; otherwise (Llama 2's Prepend, ...) all of it at once */
    const int whole = inputs.n > 0 || (tok && !jl_tokenizer_splittable(tok));
    if (st == JL_OK && !whole) st = encode_stdin(tok, allow_special, show, f, &first);
    if (st == JL_OK && whole) st = read_inputs(&inputs, &text, &len);
    if (st == JL_OK && whole) st = jl_tokenizer_encode(tok, text, len, allow_special, &ids, &n);
    if (st == JL_OK && whole) emit_ids(f, tok, ids, n, show, &first);
    if (st == JL_OK) emit_ids(f, tok, post, n_post, show, &first);
    if (st == JL_OK && !show && !first) fputc('\n', f);
    if (st == JL_OK && (fflush(f) != 0 || ferror(f)))
        st = jl_fail(JL_ERR_IO, "%s: write failed: %s", output ? output : "stdout", strerror(errno));
    if (output && af.f) {
        if (st == JL_OK) st = jl_atomic_commit(&af);
        else jl_atomic_abort(&af);
    }
    free(ids);
    free(text);
    free(inputs.v);
    jl_tokenizer_free(tok);
    return cli_report("tokenizer encode", st);
}

/* ---- decode ---- */
static jl_status parse_ids(const char *text, size_t len, const char *origin, int32_t **ids, size_t *n) {
    size_t cap = 1024, count = 0;
    int32_t *v = malloc(cap * sizeof *v);
    if (!v) return jl_fail(JL_ERR_NOMEM, "out of memory");
    size_t i = 0;
    while (i < len) {
        while (i < len && (isspace((unsigned char)text[i]) || text[i] == ',')) i++;
        if (i >= len) break;
        long long x = 0;
        size_t start = i;
        while (i < len && text[i] >= '0' && text[i] <= '9' && x <= INT32_MAX) x = x * 10 + (text[i++] - '0');
        if (i == start || x > INT32_MAX || (i < len && !isspace((unsigned char)text[i]) && text[i] != ',')) {
            free(v);
            return jl_fail(JL_ERR_FORMAT, "%s: byte %zu: expected a token id (a non-negative integer)", origin, start);
        }
        if (count == cap) {
            int32_t *nv = realloc(v, 2 * cap * sizeof *v);
            if (!nv) {
                free(v);
                return jl_fail(JL_ERR_NOMEM, "out of memory");
            }
            v = nv;
            cap *= 2;
        }
        v[count++] = (int32_t)x;
    }
    *ids = v;
    *n = count;
    return JL_OK;
}

static int cmd_decode(int argc, char **argv) {
    cli_strs inputs = {0};
    char *path = NULL;
    const cli_opt opts[] = {
        {"tokenizer", OPT_STR, &path, "tokenizer.json", NO_RANGE, 1},
        {"input", OPT_STRS, &inputs, "files of ids separated by spaces/commas/newlines (default: stdin)", NO_RANGE, 0},
    };
    int rc = cli_parse("tokenizer decode", "Token ids → the exact bytes, on stdout.", opts, CLI_NOPTS(opts), argc,
                       argv, 2);
    if (rc != CLI_PARSED) {
        free(inputs.v);
        return rc == CLI_HELP_SHOWN ? 0 : 2;
    }
    jl_tokenizer *tok = NULL;
    char *text = NULL, *out = NULL;
    size_t len = 0, n = 0, out_len = 0;
    int32_t *ids = NULL;
    jl_status st = jl_tokenizer_load(path, &tok);
    if (st == JL_OK) st = read_inputs(&inputs, &text, &len);
    if (st == JL_OK) st = parse_ids(text, len, inputs.n ? inputs.v[0] : "stdin", &ids, &n);
    if (st == JL_OK) st = jl_tokenizer_decode(tok, ids, n, &out, &out_len);
    if (st == JL_OK && (write_all(stdout, out, out_len) || fflush(stdout)))
        st = jl_fail(JL_ERR_IO, "stdout: write failed: %s", errno ? strerror(errno) : "I/O error");
    free(out);
    free(ids);
    free(text);
    free(inputs.v);
    jl_tokenizer_free(tok);
    return cli_report("tokenizer decode", st);
}

/* ---- import ---- */
/* --pattern, else a guess from the rank file's name (cl100k_base.tiktoken → cl100k). */
static int pattern_for(const char *flag, const char *file) {
    if (flag) return jl_tokenizer_pattern_by_name(flag);
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    if (strstr(base, "o200k")) return JL_PATTERN_O200K;
    if (strstr(base, "cl100k")) return JL_PATTERN_CL100K;
    if (strstr(base, "r50k") || strstr(base, "p50k") || strstr(base, "gpt2")) return JL_PATTERN_GPT2;
    return -1;
}

static const char *pattern_label(int kind) {
    return kind == JL_PATTERN_GPT2 ? "gpt2" : kind == JL_PATTERN_CL100K ? "cl100k" : kind == JL_PATTERN_O200K ? "o200k" : "custom";
}

static int cmd_import(int argc, char **argv) {
    char *encoder = NULL, *merges = NULL, *tiktoken = NULL, *pattern = NULL, *output = NULL;
    const cli_opt opts[] = {
        {"encoder", OPT_STR, &encoder, "GPT-2 encoder.json (with --merges)", NO_RANGE, 0},
        {"merges", OPT_STR, &merges, "GPT-2 vocab.bpe (with --encoder)", NO_RANGE, 0},
        {"tiktoken", OPT_STR, &tiktoken, "tiktoken rank file (base64 token + rank per line)", NO_RANGE, 0},
        {"pattern", OPT_STR, &pattern, "regex for --tiktoken: gpt2 | cl100k | o200k (default: from the file name)",
         NO_RANGE, 0},
        {"out|output", OPT_STR, &output, "tokenizer.json to write", NO_RANGE, 1},
    };
    int rc = cli_parse("tokenizer import", "Convert a GPT-2 or tiktoken vocabulary to tokenizer.json.", opts,
                       CLI_NOPTS(opts), argc, argv, 2);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : 2;
    if (!!tiktoken == !!(encoder || merges) || (!tiktoken && (!encoder || !merges))) {
        fprintf(stderr, "jielong tokenizer import: give either --encoder and --merges, or --tiktoken\n");
        return 2;
    }
    jl_tokenizer *tok = NULL;
    jl_status st;
    int kind = JL_PATTERN_GPT2;
    if (tiktoken) {
        kind = pattern_for(pattern, tiktoken);
        if (kind < 0) {
            fprintf(stderr, "jielong tokenizer import: --pattern: give gpt2, cl100k or o200k (cannot tell from the "
                            "file name)\n");
            return 2;
        }
        st = jl_tokenizer_import_tiktoken(tiktoken, jl_tokenizer_pattern_text((jl_pattern_kind)kind), &tok);
    } else {
        st = jl_tokenizer_import_gpt2(encoder, merges, &tok);
    }
    if (st == JL_OK) st = jl_tokenizer_save(tok, output);
    if (st == JL_OK) {
        int specials = 0;
        for (int k = JL_SPECIAL_BOS; k < JL_SPECIAL_COUNT; k++) specials += jl_tokenizer_special(tok, jl_special_name((jl_special)k)) >= 0;
        fprintf(stderr, "tokenizer import: %s: %d tokens (%d chat special tokens appended), pre-tokenizer %s → %s\n",
                tiktoken ? tiktoken : encoder, jl_tokenizer_vocab_size(tok), specials,
                pattern_label(kind), output);
    }
    jl_tokenizer_free(tok);
    return cli_report("tokenizer import", st);
}

/* ---- synth ---- */
static int cmd_synth(int argc, char **argv) {
    long bytes = 1 << 20, seed = 1;
    int world = 0, invalid = 0;
    char *output = NULL;
    const cli_opt opts[] = {
        {"bytes", OPT_INT, &bytes, "about this many bytes", 1, 1L << 32, 0},
        {"seed", OPT_INT, &seed, "generator seed", 0, 1L << 40, 0},
        {"world", OPT_BOOL, &world, "also Japanese, Korean, ZWJ emoji, combining accents, space runs",
         NO_RANGE, 0},
        {"invalid-utf8", OPT_BOOL, &invalid, "with --world: also invalid UTF-8 and added-token look-alikes (<s>, "
                                             "<|endoftext|>, ...)", NO_RANGE, 0},
        {"out|output", OPT_STR, &output, "file to write", NO_RANGE, 1},
    };
    int rc = cli_parse("tokenizer synth", "Deterministic mixed English/Chinese/code text for tests and benchmarks.",
                       opts, CLI_NOPTS(opts), argc, argv, 2);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : 2;
    char *text;
    size_t len;
    jl_status st = world ? jl_synth_mixed((uint64_t)seed, (size_t)bytes, invalid ? JL_SYNTH_INVALID | JL_SYNTH_ADDED : 0, &text, &len)
                         : jl_synth_text((uint64_t)seed, (size_t)bytes, &text, &len);
    if (st == JL_OK) {
        st = jl_write_file_atomic(output, text, len);
        free(text);
    }
    return cli_report("tokenizer synth", st);
}

int cmd_tokenizer(int argc, char **argv) {
    static const struct {
        const char *name;
        int (*run)(int, char **);
        const char *summary;
    } subs[] = {
        {"train", cmd_train, "learn a byte-level BPE vocabulary from text"},
        {"encode", cmd_encode, "text → token ids"},
        {"decode", cmd_decode, "token ids → text"},
        {"import", cmd_import, "GPT-2 encoder.json + vocab.bpe, or a tiktoken rank file → tokenizer.json"},
        {"synth", cmd_synth, "write deterministic mixed-language test text"},
    };
    const size_t n_subs = sizeof subs / sizeof subs[0];
    if (argc >= 2)
        for (size_t k = 0; k < n_subs; k++)
            if (!strcmp(argv[1], subs[k].name)) return subs[k].run(argc, argv);
    int help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
    FILE *f = help ? stdout : stderr;
    if (argc >= 2 && !help) fprintf(stderr, "jielong tokenizer: unknown subcommand '%s'\n", argv[1]);
    fprintf(f, "usage: jielong tokenizer <subcommand> [options]   (--help after one for its options)\n");
    for (size_t k = 0; k < n_subs; k++) fprintf(f, "  %-8s %s\n", subs[k].name, subs[k].summary);
    return help ? 0 : 2;
}
