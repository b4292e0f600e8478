/* jielong pipeline: the whole recipe on the bundled poems (or given data), each stage run as the user-facing
 * command it is — the pipeline prints every command line, so any stage can be rerun or changed by hand. */
#include "cli/args.h"
#include "cli/commands.h"
#include "core/timer.h"
#include "io/fileio.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 64

typedef struct {
    const char *out;   /* output folder */
    const char *bin;   /* how to show the command to the user */
    int quick;
    double started;
} pipeline;

/* Runs one subcommand in-process with a printf-built argument line (split at spaces; no quoting needed for
 * the paths and values the pipeline builds). Returns its exit code. */
static int run_step(pipeline *p, const char *title, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int run_step(pipeline *p, const char *title, const char *fmt, ...) {
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n== %s  (%.0fs)\n$ %s %s\n", title, jl_now() - p->started, p->bin, line);
    char copy[4096], *argv[MAX_ARGS + 1];
    memcpy(copy, line, sizeof copy);
    int argc = 0;
    for (char *tok = strtok(copy, " "); tok && argc < MAX_ARGS; tok = strtok(NULL, " ")) argv[argc++] = tok;
    argv[argc] = NULL;
    for (const cli_command *c = cli_commands; c->name; c++)
        if (strcmp(c->name, argv[0]) == 0) {
            fflush(stdout);
            int rc = c->run(argc, argv);
            fflush(stdout);
            if (rc != 0) fprintf(stderr, "jielong pipeline: step '%s' failed (exit %d)\n", title, rc);
            return rc;
        }
    fprintf(stderr, "jielong pipeline: no command '%s'\n", argv[0]);
    return 1;
}

/* Sizes of the default run (≤ 15 minutes on 2 cores) and of --quick (≤ 2 minutes). */
typedef struct {
    int vocab, depth, context, batch, pretrain_steps, eval_every, sample_every;
} pipeline_sizes;

static const pipeline_sizes default_sizes = {4096, 4, 128, 16, 1500, 100, 500};
static const pipeline_sizes quick_sizes = {1024, 2, 64, 8, 120, 40, 60};

int cmd_pipeline(int argc, char **argv) {
    pipeline p = {.out = "out/pipeline", .bin = "jielong"};
    const char *poems = "data/poems.jsonl";
    cli_opt opts[] = {
        {"out", OPT_STR, &p.out, "output folder for every stage (default out/pipeline)", NO_RANGE, 0},
        {"poems", OPT_STR, &poems, "poem corpus to derive the datasets from (default data/poems.jsonl)", NO_RANGE, 0},
        {"quick", OPT_BOOL, &p.quick, "a ~2 minute run with tiny sizes (used by the tests)", NO_RANGE, 0},
    };
    int rc = cli_parse("pipeline", "Run the whole recipe on the bundled poems: data → tokenizer → shards → "
                       "pretraining → evaluation, each stage as its own command.", opts, CLI_NOPTS(opts), argc, argv, 1);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : rc;
    const pipeline_sizes *z = p.quick ? &quick_sizes : &default_sizes;
    p.started = jl_now();
    jl_status st = jl_mkdir_p(p.out);
    if (st != JL_OK) return cli_report("pipeline", st);
    const char *o = p.out;
    if ((rc = run_step(&p, "1. datasets from the poem corpus", "data poems --input %s --out %s/data", poems, o)))
        return rc;
    if ((rc = run_step(&p, "2. byte-level BPE tokenizer", "tokenizer train --input %s/data/pretrain.txt "
                       "--vocab-size %d --output %s/tokenizer.json --quiet", o, z->vocab, o)))
        return rc;
    if ((rc = run_step(&p, "3. token shards with a held-out split", "prepare --tokenizer %s/tokenizer.json "
                       "--input %s/data/pretrain.txt --output %s/shards --val-fraction 0.02 --quiet", o, o, o)))
        return rc;
    if ((rc = run_step(&p, "4. pretraining (self-supervised next-token prediction)",
                       "pretrain --data %s/shards --out %s/base --depth %d --context %d --batch-size %d "
                       "--steps %d --lr 3e-3 --eval-every %d --sample-every %d --sample-tokens 48 "
                       "--sample-prompt 《春晓》", o, o, z->depth, z->context, z->batch, z->pretrain_steps,
                       z->eval_every, z->sample_every)))
        return rc;
    if ((rc = run_step(&p, "5. held-out perplexity of the base model",
                       "eval --model %s/base/model.safetensors --data %s/data/eval_pretrain.txt", o, o)))
        return rc;
    if ((rc = run_step(&p, "6. loss curves", "plot --metrics %s/base/metrics.jsonl --y loss,val_loss --smooth 10 "
                       "--title pretraining --out %s/base/loss.svg", o, o)))
        return rc;
    fprintf(stderr, "\n== done in %.0fs: base model %s/base/model.safetensors, curves %s/base/loss.svg\n",
            jl_now() - p.started, o, o);
    return 0;
}
