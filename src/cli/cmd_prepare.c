/* jielong prepare: text / JSONL → token shards (train + held-out val) beside a copy of the tokenizer. */
#include "cli/args.h"
#include "core/timer.h"
#include "jielong/data.h"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* A simple progress line on stderr (to be replaced by src/cli/progress.h once that exists). */
static void progress_line(void *user, const char *phase, double done, double total) {
    double start = *(const double *)user;
    if (!isatty(2)) return;
    fprintf(stderr, "\r%s %5.1f%%  %.1f MB  %.1fs", phase, total > 0 ? 100 * done / total : 100.0, done / 1e6,
            jl_now() - start);
    if (done >= total) fputc('\n', stderr);
}

int cmd_prepare(int argc, char **argv) {
    cli_strs inputs = {0};
    char *tokenizer = NULL, *output = NULL, *format = "auto";
    double val_fraction = 0.01;
    long seed = 1, shard_tokens = 100000000;
    int quiet = 0;
    const cli_opt opts[] = {
        {"tokenizer", OPT_STR, &tokenizer, "tokenizer.json (copied into the output folder)", NO_RANGE, 1},
        {"input", OPT_STRS, &inputs, "text files (documents = blank-line-separated paragraphs) or .jsonl files "
                                     "({\"text\": ...} per line)", NO_RANGE, 1},
        {"out|output", OPT_STR, &output, "folder for train_000.bin.., val_000.bin, tokenizer.json", NO_RANGE, 1},
        {"val-fraction", OPT_FLOAT, &val_fraction, "share of documents held out for validation", 0, 0.999, 0},
        {"seed", OPT_INT, &seed, "seed of the train/val split", 0, 1L << 40, 0},
        {"format", OPT_STR, &format, "auto (by file name) | text | jsonl", NO_RANGE, 0},
        {"shard-tokens", OPT_INT, &shard_tokens, "max tokens per train shard", 1, 1L << 31, 0},
        {"quiet", OPT_BOOL, &quiet, "no progress or summary", NO_RANGE, 0},
    };
    int rc = cli_parse("prepare", "Tokenize text into shards: <|bos|> before every document, held-out split by "
                       "document.", opts, CLI_NOPTS(opts), argc, argv, 1);
    if (rc != CLI_PARSED) {
        free(inputs.v);
        return rc == CLI_HELP_SHOWN ? 0 : 2;
    }
    double start = jl_now();
    jl_prepare_opts po = {.tokenizer_path = tokenizer, .inputs = (const char *const *)inputs.v, .n_inputs = inputs.n,
                          .out_dir = output, .val_fraction = val_fraction, .seed = (uint64_t)seed,
                          .shard_tokens = (size_t)shard_tokens, .format = format,
                          .progress = quiet ? NULL : progress_line, .progress_user = &start};
    jl_prepare_stats stats;
    jl_status st = jl_prepare(&po, &stats);
    double secs = jl_now() - start;
    if (st == JL_OK && !quiet)
        fprintf(stderr, "%s: train %zu docs, %zu tokens in %d shard%s; val %zu docs, %zu tokens; %.1f MB in %.2fs "
                        "(%.1f MB/s)\n", output, stats.docs_train, stats.tokens_train, stats.train_shards,
                stats.train_shards == 1 ? "" : "s", stats.docs_val, stats.tokens_val, stats.bytes_in / 1e6, secs,
                stats.bytes_in / 1e6 / (secs > 0 ? secs : 1e-9));
    free(inputs.v);
    return cli_report("prepare", st);
}
