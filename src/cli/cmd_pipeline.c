/* jielong pipeline: the whole recipe on the bundled poems, each stage run as the user-facing command it is.
 * Every command line is printed and saved in OUT/commands.sh, so any stage can be rerun or changed by hand;
 * OUT/report.md sums up every stage with the evaluation figures, plots and sample answers. */
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/pipeline_report.h"
#include "cli/summary_cli.h"
#include "core/timer.h"
#include "io/fileio.h"
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 96
#define MAX_STAGES 32

typedef struct {
    const char *out;
    int quick;
    double started;
    FILE *commands;              /* OUT/commands.sh */
    char summary[4096];          /* OUT/summary.jsonl: every measurement, and each command's time */
    report_stage stages[MAX_STAGES];
    char stage_names[MAX_STAGES][64], stage_dirs[MAX_STAGES][64];
    int n_stages;
} pipeline;

/* Skips the arguments the conversions of one format word take (the pipeline's formats use %s and %d only). */
static void skip_args(const char *word, va_list *ap) {
    for (const char *c = word; (c = strchr(c, '%')) != NULL; c++) {
        if (c[1] == '%') {
            c++;
            continue;
        }
        while (*c && !strchr("sd", *c)) c++;
        if (*c == 's') (void)va_arg(*ap, const char *);
        else if (*c == 'd') (void)va_arg(*ap, int);
        if (!*c) break;
    }
}

/* The argument vector of a command line: the FORMAT is split into words at its spaces, then each word is
 * formatted on its own, so a value with spaces (--out "my runs/a") stays one argument. Words formatting to ""
 * are dropped (optional flags). */
static int build_argv(char *buf, size_t size, char **argv, const char *fmt, va_list *ap) {
    int argc = 0;
    size_t used = 0;
    char word[1024];
    for (const char *w = fmt; *w && argc < MAX_ARGS;) {
        while (*w == ' ') w++;
        size_t len = strcspn(w, " ");
        if (!len) break;
        snprintf(word, sizeof word, "%.*s", (int)len, w);
        va_list one;
        va_copy(one, *ap);
        int n = vsnprintf(buf + used, size - used, word, one);
        va_end(one);
        skip_args(word, ap);
        if (n < 0 || used + (size_t)n + 1 >= size) break;
        if (n > 0) {
            argv[argc++] = buf + used;
            used += (size_t)n + 1;
        }
        w += len;
    }
    argv[argc] = NULL;
    return argc;
}

/* One argument for a shell: as it is when it has only safe characters, else in single quotes. */
static void print_shell_arg(FILE *f, const char *arg) {
    if (arg[0] && strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_./=:,+%@") == strlen(arg)) {
        fputs(arg, f);
        return;
    }
    fputc('\'', f);
    for (const char *c = arg; *c; c++)
        if (*c == '\'') fputs("'\\''", f);
        else fputc(*c, f);
    fputc('\'', f);
}

static void print_command(FILE *f, char **argv, int argc) {
    fputs("jielong", f);
    for (int i = 0; i < argc; i++) {
        fputc(' ', f);
        print_shell_arg(f, argv[i]);
    }
    fputc('\n', f);
}

/* {"kind":"stage","name":...,"command":...,"seconds":...} in OUT/summary.jsonl: the time of every command. */
static void record_time(const pipeline *p, const char *stage, const char *command, double seconds) {
    json_object *j = json_object_new_object();
    json_object_object_add(j, "kind", json_object_new_string("stage"));
    json_object_object_add(j, "name", json_object_new_string(stage));
    json_object_object_add(j, "command", json_object_new_string(command));
    json_object_object_add(j, "seconds", json_object_new_double(seconds));
    jl_status st = cli_summary_append(&(cli_summary){.summary = p->summary}, j);
    json_object_put(j);
    if (st != JL_OK) fprintf(stderr, "jielong pipeline: %s\n", jl_last_error());
}

/* Runs one subcommand in-process from an argument vector (see build_argv) and records it as a stage of the report
 * when `dir` is given; the process-wide settings a command may change (OpenMP threads) are put back after it.
 * Returns its exit code. */
static int run(pipeline *p, const char *stage, const char *dir, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int run(pipeline *p, const char *stage, const char *dir, const char *fmt, ...) {
    char buf[8192], *argv[MAX_ARGS + 1];
    va_list ap;
    va_start(ap, fmt);
    int argc = build_argv(buf, sizeof buf, argv, fmt, &ap);
    va_end(ap);
    fprintf(stderr, "\n== %s  (%.0f s so far)\n$ ", stage, jl_now() - p->started);
    print_command(stderr, argv, argc);
    if (p->commands) print_command(p->commands, argv, argc);
    const cli_command *c = cli_commands;
    while (argc && c->name && strcmp(c->name, argv[0]) != 0) c++;
    if (!argc || !c->name) return 1;
    double t0 = jl_now();
    int threads = omp_get_max_threads();
    fflush(stdout);
    int rc = c->run(argc, argv);
    fflush(stdout);
    omp_set_num_threads(threads);
    if (rc != 0) fprintf(stderr, "jielong pipeline: stage '%s' failed (exit %d)\n", stage, rc);
    record_time(p, stage, argv[0], jl_now() - t0);
    if (dir && p->n_stages < MAX_STAGES) {
        int i = p->n_stages++;
        snprintf(p->stage_names[i], sizeof p->stage_names[i], "%s", stage);
        snprintf(p->stage_dirs[i], sizeof p->stage_dirs[i], "%s", dir);
        p->stages[i] = (report_stage){.name = p->stage_names[i], .dir = p->stage_dirs[i], .seconds = jl_now() - t0};
    } else if (p->n_stages > 0 && !dir) {
        p->stages[p->n_stages - 1].seconds += jl_now() - t0; /* evaluation time counts with its stage */
    }
    return rc;
}

/* Sizes of the default run (≤ 20 minutes on 2 cores with every lesson; see "Time per stage" of its report) and of
 * --quick (≤ 2 minutes). The default pretrains on rows of 512 tokens (batch 4: the same tokens per step as
 * 8 × 256) so that an author anthology and a 5-shot question fit in one context (lesson 3). */
typedef struct {
    int vocab, depth, context, pretrain_batch, batch;
    int pretrain_steps, sft_steps, lora_steps, rm_steps, dpo_steps, grpo_steps, ppo_steps;
    int eval_limit, rl_batch, group;
} sizes;

static const sizes default_sizes = {4096, 4, 512, 4, 8, 1000, 800, 300, 150, 100, 30, 30, 50, 4, 6};
static const sizes quick_sizes = {1024, 2, 128, 8, 8, 80, 40, 20, 20, 10, 4, 4, 8, 2, 4};

#define RUN(...) do { if ((rc = run(__VA_ARGS__)) != 0) goto done; } while (0)

int cmd_pipeline(int argc, char **argv) {
    pipeline p = {.out = "out/pipeline"};
    const char *poems = "data/poems.jsonl";
    cli_opt opts[] = {
        {"out", OPT_STR, &p.out, "output folder for every stage (default out/pipeline)", NO_RANGE, 0},
        {"poems", OPT_STR, &poems, "poem corpus to derive the datasets from (default data/poems.jsonl)", NO_RANGE, 0},
        {"quick", OPT_BOOL, &p.quick, "a ~2 minute run with tiny sizes (used by the tests)", NO_RANGE, 0},
    };
    int rc = cli_parse("pipeline", "The whole recipe on the bundled poems: datasets → tokenizer → shards → "
                       "pretraining → SFT (full, LoRA) → reward model → DPO, GRPO, PPO → quantisation and export → "
                       "evaluation report; each stage as its own command.", opts, CLI_NOPTS(opts), argc, argv, 1);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : rc;
    const sizes *z = p.quick ? &quick_sizes : &default_sizes;
    const char *o = p.out;
    /* SFT rows of 160 tokens hold all but ~1.5% of the conversations whole (the rest are truncated); sft packs
     * several conversations into each row (padding ~3%) */
    const int sft_len = z->context < 160 ? z->context : 160;
    p.started = jl_now();
    jl_status st = jl_mkdir_p(o);
    if (st != JL_OK) return cli_report("pipeline", st);
    char path[4096];
    snprintf(p.summary, sizeof p.summary, "%s/summary.jsonl", o);
    remove(p.summary); /* a fresh report */
    snprintf(path, sizeof path, "%s/commands.sh", o);
    p.commands = fopen(path, "w");
    if (p.commands) fprintf(p.commands, "#!/bin/sh\n# The commands `jielong pipeline%s` ran, in order.\nset -e\n",
                            p.quick ? " --quick" : "");
#define EVAL_TASKS(label, model, extra) \
    RUN(&p, "evaluate " label, NULL, "eval --model %s/%s %s --label %s --samples %s/%s/answers.jsonl " \
        "--tasks %s/data/eval_prompts.jsonl --limit %d --summary %s/summary.jsonl", o, model, extra, label, o, \
        label, o, z->eval_limit, o)

    RUN(&p, "datasets from the poem corpus", NULL, "data poems --input %s --out %s/data", poems, o);
    RUN(&p, "tokenizer", NULL, "tokenizer train --input %s/data/pretrain.txt --vocab-size %d --pattern han "
        "--out %s/tokenizer.json --quiet", o, z->vocab, o);
    RUN(&p, "token shards", NULL, "prepare --tokenizer %s/tokenizer.json --input %s/data/pretrain.txt --out "
        "%s/shards --val-fraction 0.02 --quiet", o, o, o);
    RUN(&p, "pretraining", "base", "pretrain --data %s/shards --out %s/base --depth %d --context %d --batch-size %d "
        "--steps %d --lr 3e-3 --eval-every %d --sample-every %d --max-new-tokens 40 --sample-prompt 《春晓》", o, o,
        z->depth, z->context, z->pretrain_batch, z->pretrain_steps, z->pretrain_steps / 6, z->pretrain_steps / 2);
    /* lesson 2 (forgetting) compares this held-out pretraining perplexity with the tuned models' */
    RUN(&p, "evaluate base: perplexity", NULL, "eval --model %s/base/model.safetensors --data "
        "%s/data/eval_pretrain.txt --label base --summary %s/summary.jsonl", o, o, o);
    /* lesson 3: in-context learning of the base model, the same questions with 0, 1, 3, 5 solved examples */
    for (int shots = 0; shots <= 5; shots += shots ? 2 : 1) {
        char label[32], samples[4096];
        snprintf(label, sizeof label, "base-%dshot", shots);
        snprintf(samples, sizeof samples, "%s/base/answers.jsonl", o);
        RUN(&p, "evaluate base: in-context learning", NULL, "eval --model %s/base/model.safetensors --shots %d "
            "--max-new-tokens 96 --label %s --lesson icl %s %s --tasks %s/data/eval_prompts.jsonl --limit %d "
            "--summary %s/summary.jsonl", o, shots, label, shots == 3 ? "--samples" : "", shots == 3 ? samples : "",
            o, z->eval_limit, o);
    }
    RUN(&p, "plot", NULL, "plot --metrics %s/summary.jsonl --where lesson=icl --x shots --y "
        "write_accuracy,continue_accuracy,form_accuracy,title_accuracy --title %s --out %s/icl.svg", o,
        "in-context learning of the base model (share right vs examples shown)", o);
    /* SFT, held out on conversations about poems never trained on; --summary records what it cost and reached */
#define SFT(stage, dir, extra, steps, lr, ...) \
    RUN(&p, stage, dir, "sft --model %s/base/model.safetensors --data %s/data/sft.jsonl --val " \
        "%s/data/eval_sft.jsonl --out %s/" dir " --steps %d --lr " lr " --batch-size %d --seq-len %d --eval-every %d " \
        "--eval-batches 10 --summary %s/summary.jsonl --label " dir " " extra, o, o, o, o, steps, z->batch, sft_len, \
        (steps) / 3, o, ##__VA_ARGS__)
#define EVAL_PPL(label) \
    RUN(&p, "evaluate " label ": pretraining perplexity", NULL, "eval --model %s/" label "/model.safetensors " \
        "--data %s/data/eval_pretrain.txt --label " label " --summary %s/summary.jsonl", o, o, o)
    SFT("SFT (full fine-tuning)", "sft", "", z->sft_steps, "2e-3");
    EVAL_TASKS("sft", "sft/model.safetensors", "");
    EVAL_PPL("sft");
    /* lesson 1: the same SFT from random weights (the base model's architecture and tokenizer) */
    SFT("SFT from random init (no pretraining)", "sft-scratch", "--init random", z->sft_steps, "2e-3");
    EVAL_TASKS("sft-scratch", "sft-scratch/model.safetensors", "");
    SFT("SFT (LoRA adapter)", "sft-lora", "--method lora --lora-targets all", z->lora_steps, "5e-3");
    RUN(&p, "merge the LoRA adapter", NULL, "export --model %s/base/model.safetensors --merge "
        "%s/sft-lora/adapter.safetensors --out %s/sft-lora/model.safetensors", o, o, o);
    EVAL_TASKS("sft-lora", "sft-lora/model.safetensors", "");
    EVAL_PPL("sft-lora");
    RUN(&p, "reward model", "rm", "reward --model %s/sft/model.safetensors --data %s/data/prefs.jsonl --out %s/rm "
        "--steps %d --batch-size %d --eval-fraction 0.02 --eval-every %d --skip-long", o, o, o, z->rm_steps, z->batch / 2,
        z->rm_steps / 3);
    RUN(&p, "DPO", "dpo", "dpo --model %s/sft/model.safetensors --data %s/data/prefs.jsonl --out %s/dpo --steps %d "
        "--batch-size %d --eval-fraction 0.02 --eval-every %d --skip-long", o, o, o, z->dpo_steps, z->batch / 2, z->dpo_steps / 2);
    EVAL_TASKS("dpo", "dpo/model.safetensors", "");
    RUN(&p, "GRPO (rule reward: poem form)", "grpo", "grpo --model %s/sft/model.safetensors --prompts "
        "%s/data/rl_prompts.jsonl --reward-fn poem --out %s/grpo --steps %d --batch-size %d --group %d --max-new-tokens 96 "
        "--kl 0.05 --lr 2e-4 --skip-long", o, o, o, z->grpo_steps, z->rl_batch, z->group);
    EVAL_TASKS("grpo", "grpo/model.safetensors", "");
    RUN(&p, "PPO (reward model)", "ppo", "ppo --model %s/sft/model.safetensors --reward-model %s/rm --prompts "
        "%s/data/rl_prompts.jsonl --out %s/ppo --steps %d --batch-size %d --group 2 --max-new-tokens 96 --lr 2e-4 "
        "--skip-long", o, o, o, o,
        z->ppo_steps, z->rl_batch);
    EVAL_TASKS("ppo", "ppo/model.safetensors", "");
    static const char *const tuned[] = {"dpo", "grpo", "ppo"};
    for (int i = 0; i < 3; i++)
        RUN(&p, "win rate against SFT", NULL, "eval --model %s/%s/model.safetensors --against %s/sft/model.safetensors "
            "--reward-model %s/rm --tasks %s/data/eval_prompts.jsonl --limit %d --label %s --summary %s/summary.jsonl", o,
            tuned[i], o, o, o, z->eval_limit, tuned[i], o);
    RUN(&p, "quantise to q8_0 (GGUF)", NULL, "quantize --model %s/sft/model.safetensors --type q8_0 --out "
        "%s/sft/model-q8_0.gguf", o, o);
    RUN(&p, "export to GGUF f16 (llama.cpp)", NULL, "export --model %s/sft/model.safetensors --format gguf --type f16 "
        "--out %s/sft/model-f16.gguf", o, o);
    for (int i = 0; i < p.n_stages; i++) {
        report_plots rp = pipeline_report_plots(p.stages[i].dir);
        RUN(&p, "plot", NULL, "plot --metrics %s/%s/metrics.jsonl --y %s --smooth 5 --title %s --out %s/%s/curves.svg",
            o, p.stages[i].dir, rp.curves, p.stages[i].dir, o, p.stages[i].dir);
        if (rp.metric)
            RUN(&p, "plot", NULL, "plot --metrics %s/%s/metrics.jsonl --y %s --smooth 5 --title %s --out "
                "%s/%s/metric.svg", o, p.stages[i].dir, rp.metric, p.stages[i].dir, o, p.stages[i].dir);
    }
    st = pipeline_report_write(o, p.stages, p.n_stages, p.quick, jl_now() - p.started);
    if (st != JL_OK) rc = cli_report("pipeline", st);
    else
        fprintf(stderr, "\n== done in %.0f s. Report: %s/report.md\nChat with the result:\n  jielong chat --model "
                        "%s/sft/model.safetensors\n", jl_now() - p.started, o, o);
done:
    if (p.commands) fclose(p.commands);
    return rc;
}
