/* jielong index build|query — retrieval over the user's documents (SQLite FTS5 BM25, optional dense embeddings
 * from a model, fused by reciprocal-rank fusion). */
#include "cli/args.h"
#include "cli/rag_cli.h"
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    int quiet;
    long crash_after; /* tests: JL_INDEX_CRASH_AFTER passages, then SIGKILL (a build killed half-way) */
    size_t files;
} build_view;

static void on_progress(void *user, const char *path, size_t done) {
    build_view *v = user;
    if (v->crash_after > 0 && done >= (size_t)v->crash_after) raise(SIGKILL);
    if (path && !v->quiet) fprintf(stderr, "\rindex: %zu files, %zu passages (%s)\033[K", ++v->files, done, path);
}

static int index_build(int argc, char **argv) {
    cli_strs inputs = {0};
    const char *out = NULL, *model = NULL, *fields = NULL, *tokenizer = NULL;
    long chunk = 400, overlap = 50;
    int quiet = 0;
    const cli_opt opts[] = {
        {"input", OPT_STRS, &inputs, "files or folders (.txt, .md, .jsonl; folders recursively)", NO_RANGE, 1},
        {"out", OPT_STR, &out, "the index file (SQLite); an existing one is updated", NO_RANGE, 1},
        {"chunk-chars", OPT_INT, &chunk, "passage size in characters; longer paragraphs are split [400]", 16, 1e6, 0},
        {"overlap", OPT_INT, &overlap, "characters shared by neighbouring pieces of a split paragraph [50]", 0, 1e6, 0},
        {"fields", OPT_STR, &fields, "JSONL: fields that make a record's text, comma-separated [text, else all strings]",
         NO_RANGE, 0},
        {"tokenizer", OPT_STR, &tokenizer, "full-text tokenizer of a new index: jlhan or trigram [jlhan]", NO_RANGE, 0},
        {"model", OPT_STR, &model, "model checkpoint whose hidden states embed the passages (dense retrieval)",
         NO_RANGE, 0},
        {"quiet", OPT_BOOL, &quiet, "no progress on stderr", NO_RANGE, 0},
    };
    int rc = cli_parse("index build", "add files to a retrieval index (SQLite FTS5 + optional embeddings)", opts,
                       CLI_NOPTS(opts), argc, argv, 2);
    if (rc != CLI_PARSED) {
        free(inputs.v);
        return rc == CLI_HELP_SHOWN ? 0 : rc;
    }
    rag_model rm = {0};
    jl_index *ix = NULL;
    jl_index_options o;
    jl_index_defaults(&o);
    o.chunk_chars = (int)chunk;
    o.overlap = (int)overlap;
    o.fields = fields;
    o.tokenizer = tokenizer;
    jl_status st = model ? rag_model_load(model, &rm) : JL_OK;
    o.model_id = rm.id;
    struct stat sb;
    const int existed = stat(out, &sb) == 0;
    if (st == JL_OK) st = jl_index_open(out, 1, &ix);
    const char *crash = getenv("JL_INDEX_CRASH_AFTER");
    build_view v = {.quiet = quiet, .crash_after = crash ? atol(crash) : 0};
    jl_index_stats s;
    if (st == JL_OK)
        st = jl_index_build(ix, (const char *const *)inputs.v, inputs.n, &o, rm.embedder, on_progress, &v, &s);
    if (!quiet && v.files) fprintf(stderr, "\n");
    free(inputs.v);
    jl_index_close(ix);
    rag_model_free(&rm);
    if (st != JL_OK && !existed) { /* a first build that failed leaves no empty index behind */
        char journal[4200];
        snprintf(journal, sizeof journal, "%s-journal", out);
        unlink(out);
        unlink(journal);
    }
    if (st != JL_OK) return cli_report("index build", st);
    printf("%s: %zu passages (+%zu, -%zu); files: %zu added, %zu replaced, %zu unchanged, %zu skipped", out,
           s.passages_total, s.passages_added, s.passages_removed, s.files_added, s.files_replaced, s.files_unchanged,
           s.files_skipped);
    if (model) printf("; %zu passages embedded", s.embedded);
    printf("\n");
    return 0;
}

static void print_json(const jl_hit *h, int n) {
    for (int i = 0; i < n; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "rank", json_object_new_int(i + 1));
        json_object_object_add(o, "score", json_object_new_double(h[i].score));
        json_object_object_add(o, "source", json_object_new_string(h[i].source));
        json_object_object_add(o, "start", json_object_new_int64(h[i].start));
        json_object_object_add(o, "end", json_object_new_int64(h[i].end));
        json_object_object_add(o, "rank_bm25", json_object_new_int(h[i].rank_bm25));
        json_object_object_add(o, "rank_dense", json_object_new_int(h[i].rank_dense));
        json_object_object_add(o, "text", json_object_new_string(h[i].text));
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
    }
}

static int index_query(int argc, char **argv) {
    if (argc < 4 || argv[2][0] == '-' || argv[3][0] == '-') {
        if (argc >= 3 && !strcmp(argv[2], "--help")) {
            printf("usage: jielong index query DOCS.db \"question\" [-k 5] [--json] [--mode auto|bm25|dense|fused] "
                   "[--model M]\n  ranked passages with scores and sources (dense and fused need the model the "
                   "index was embedded with)\n");
            return 0;
        }
        fprintf(stderr, "jielong index query: usage: jielong index query DOCS.db \"question\" [-k 5] [--json]\n");
        return 2;
    }
    const char *db = argv[2], *question = argv[3], *mode_name = "auto", *model = NULL;
    long k = 5;
    int json = 0;
    for (int i = 4; i < argc; i++)
        if (!strcmp(argv[i], "-k")) argv[i] = "--k";
    const cli_opt opts[] = {
        {"k", OPT_INT, &k, "passages to return [5]", 1, 1000, 0},
        {"json", OPT_BOOL, &json, "one JSON object a line", NO_RANGE, 0},
        {"mode", OPT_STR, &mode_name, "auto (= bm25, the measured best here), bm25, dense, "
                                      "fused [auto]", NO_RANGE, 0},
        {"model", OPT_STR, &model, "the model the index was embedded with (dense, fused)", NO_RANGE, 0},
    };
    int rc = cli_parse("index query", "ranked passages for a question", opts, CLI_NOPTS(opts), argc, argv, 4);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : rc;
    jl_rank_mode mode;
    jl_status st = rag_mode_parse(mode_name, &mode);
    rag_model rm = {0};
    jl_index *ix = NULL;
    if (st == JL_OK && model) st = rag_model_load(model, &rm);
    if (st == JL_OK) st = jl_index_open(db, 0, &ix);
    jl_hit *hits = NULL;
    int n = 0;
    if (st == JL_OK) st = jl_index_query(ix, question, (int)k, mode, rm.embedder, 0, &hits, &n);
    if (st == JL_OK && json) print_json(hits, n);
    else if (st == JL_OK) rag_print_hits(stdout, hits, n);
    jl_hits_free(hits, n);
    jl_index_close(ix);
    rag_model_free(&rm);
    return st == JL_OK ? 0 : cli_report("index query", st);
}

int cmd_index(int argc, char **argv) {
    const char *sub = argc >= 2 ? argv[1] : "";
    if (!strcmp(sub, "build")) return index_build(argc, argv);
    if (!strcmp(sub, "query")) return index_query(argc, argv);
    FILE *out = !strcmp(sub, "--help") || !strcmp(sub, "-h") ? stdout : stderr;
    fprintf(out, "usage: jielong index build --input FILE|DIR... --out DOCS.db [--chunk-chars 400] [--overlap 50] "
                 "[--fields a,b] [--tokenizer jlhan|trigram] [--model M]\n"
                 "       jielong index query DOCS.db \"question\" [-k 5] [--json] [--mode auto|bm25|dense|fused] "
                 "[--model M]\n");
    return out == stdout ? 0 : 2;
}
