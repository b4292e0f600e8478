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
#include <sys/wait.h>
#include <unistd.h>
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

/* Runs one subcommand as a child process (this very executable), for a figure of the process itself such as its
 * peak memory (generate --summary), and records it in commands.sh like run(). Returns its exit code. */
static int run_child(pipeline *p, const char *stage, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int run_child(pipeline *p, const char *stage, const char *fmt, ...) {
    char buf[8192], *argv[MAX_ARGS + 2];
    va_list ap;
    va_start(ap, fmt);
    int argc = build_argv(buf, sizeof buf, argv + 1, fmt, &ap);
    va_end(ap);
    argv[0] = "jielong";
    fprintf(stderr, "\n== %s  (%.0f s so far)\n$ ", stage, jl_now() - p->started);
    print_command(stderr, argv + 1, argc);
    if (p->commands) print_command(p->commands, argv + 1, argc);
    double t0 = jl_now();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    int status = 0, rc = 1;
    if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status)) rc = WEXITSTATUS(status);
    if (rc != 0) fprintf(stderr, "jielong pipeline: stage '%s' failed (exit %d)\n", stage, rc);
    if (p->n_stages > 0) p->stages[p->n_stages - 1].seconds += jl_now() - t0;
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

static const sizes default_sizes = {4096, 4, 512, 4, 8, 1000, 700, 300, 150, 100, 30, 30, 50, 4, 6};
static const sizes quick_sizes = {1024, 2, 128, 8, 8, 80, 40, 20, 20, 10, 4, 4, 8, 2, 4};

#define RUN(...) do { if ((rc = run(__VA_ARGS__)) != 0) goto done; } while (0)

/* ---- lessons 4-8 of the report (issue 19 part B): chain of thought, tools and retrieval, two judges of RLHF,
 * self-instruct data, deployment trade-offs. Each stage is a command; the figures come from their summaries. */

typedef struct {
    int cot_train, cot_eval, cot_steps, cot_grpo_steps, cot_tokens;
    int tools_calc, tools_search, tools_eval, tools_steps;
    int ppo_steps, ppo_batch, ppo_group;
    int si_n, si_steps, si_tries;
    float si_keep;
    int rec_steps, distill_steps, student_steps, deploy_limit, bench_tokens;
} lesson_sizes;

static const lesson_sizes default_lessons = {3000, 100, 600, 20, 64, 2000, 2000, 40, 400, 30, 4, 4,
                                             300, 150, 4, 1.0f, 60, 300, 150, 16, 128};
static const lesson_sizes quick_lessons = {200, 8, 8, 2, 48, 40, 40, 3, 8, 3, 2, 2, 8, 6, 2, 0.0f, 4, 8, 6, 3, 16};

#define LRUN(...) do { if ((rc = run(__VA_ARGS__)) != 0) return rc; } while (0)

/* Row 4: the same sums taught with direct and with step-by-step answers, then GRPO on the verifiable answer. Both
 * SFT runs have the same steps, rows and row length (the same tokens and time; a direct answer is shorter, so more
 * of them pack into a row) and the same learning rate (a lower one than the poems' SFT: at 3e-3 the steps model
 * never learnt to copy the operands). GRPO samples at temperature 0.5 with a small lr: at 2e-4 and temperature 1
 * one step took the policy 28 nats from the reference and the rewards fell to 0. */
#define COT_DIGITS 2
#define COT_SFT "--lr 5e-4 --batch-size 6 --seq-len 104"
static int lesson_cot(pipeline *p, const lesson_sizes *l, const char *o) {
    int rc;
    LRUN(p, "chain of thought: sums, direct and step by step", NULL, "data cot --out %s/cot --train %d --eval %d "
         "--digits %d", o, l->cot_train, l->cot_eval, COT_DIGITS);
    static const char *const kinds[] = {"direct", "steps"};
    for (int k = 0; k < 2; k++) {
        char stage[64];
        snprintf(stage, sizeof stage, "SFT on sums (%s answers)", kinds[k]);
        LRUN(p, stage, k ? "cot-steps" : "cot-direct", "sft --model %s/sft/model.safetensors --data %s/cot/cot_%s.jsonl "
             "--out %s/cot-%s --steps %d " COT_SFT " --eval-every %d --eval-batches 4", o, o, kinds[k], o, kinds[k],
             l->cot_steps, l->cot_steps / 3);
        LRUN(p, "evaluate sums", NULL, "eval --model %s/cot-%s/model.safetensors --qa %s/cot/eval_cot.jsonl "
             "--max-new-tokens %d --limit 0 --label cot-%s --samples %s/cot-%s/answers_qa.jsonl --summary "
             "%s/summary.jsonl", o, kinds[k], o, l->cot_tokens, kinds[k], o, kinds[k], o);
    }
    LRUN(p, "GRPO on sums (verifiable reward: the answer)", "cot-grpo", "grpo --model %s/cot-steps/model.safetensors "
         "--prompts %s/cot/cot_prompts.jsonl --reward-fn answer --out %s/cot-grpo --steps %d --batch-size 4 --group 6 "
         "--max-new-tokens %d --lr 5e-6 --temperature 0.5 --kl 0.02", o, o, o, l->cot_grpo_steps, l->cot_tokens);
    LRUN(p, "evaluate sums", NULL, "eval --model %s/cot-grpo/model.safetensors --qa %s/cot/eval_cot.jsonl "
         "--max-new-tokens %d --limit 0 --label cot-grpo --samples %s/cot-grpo/answers_qa.jsonl --summary "
         "%s/summary.jsonl", o, o, l->cot_tokens, o, o);
    return 0;
}

/* Row 5: author questions and arithmetic from memory (the SFT model) and through search / the calculator. */
static int lesson_tools(pipeline *p, const lesson_sizes *l, const char *o, const char *poems, int context) {
    int rc;
    LRUN(p, "index of the poems (for the search tool)", NULL, "index build --input %s --fields title,author,lines "
         "--out %s/poems.db --quiet", poems, o);
    LRUN(p, "tool-use conversations", NULL, "data tools --poems %s --index %s/poems.db --out %s/tools --calc %d --search "
         "%d --eval %d --k 1 --tool-specs 0", poems, o, o, l->tools_calc, l->tools_search, l->tools_eval);
    LRUN(p, "evaluate questions from memory", NULL, "eval --model %s/sft/model.safetensors --qa %s/tools/eval_tools.jsonl "
         "--max-new-tokens 48 --limit 0 --label memory --summary %s/summary.jsonl", o, o, o);
    LRUN(p, "SFT on tool use", "sft-tools", "sft --model %s/sft/model.safetensors --data %s/tools/tools_sft.jsonl --out "
         "%s/sft-tools --steps %d --lr 2e-3 --batch-size 8 --seq-len %d --eval-every %d --eval-batches 4", o, o, o,
         l->tools_steps, context < 256 ? context : 256, l->tools_steps / 3);
    /* the tokenizer holds the call syntax (--tool-tokens): a call is 5 tokens + its argument, 48 a turn is plenty */
    LRUN(p, "evaluate questions with tools", NULL, "eval --model %s/sft-tools/model.safetensors --qa "
         "%s/tools/eval_tools.jsonl --tools calculator,search --rag %s/poems.db --k 1 --tool-specs 0 --max-new-tokens 48 "
         "--limit 0 --label tools --samples %s/sft-tools/answers_qa.jsonl --summary %s/summary.jsonl", o, o, o, o, o);
    LRUN(p, "evaluate questions without the tools", NULL, "eval --model %s/sft-tools/model.safetensors --qa "
         "%s/tools/eval_tools.jsonl --max-new-tokens 48 --limit 0 --label tools-off --summary %s/summary.jsonl", o, o, o);
    return 0;
}

/* Row 6: PPO again, fixed so that both judges can agree: each answer's reward-model score and rule score less
 * its prompt's group mean (--group-baseline: the reward model scores some forms far lower than others, whatever the
 * answer), whitened, the poem rules added at twice the reward model's weight (--anchor-fn: the reward model never
 * saw repeated characters, which the rules penalise), rollouts at temperature 0.3 with their
 * log-probabilities at that temperature (the judges read greedy answers; at temperature 1 the rule score of the
 * samples rose while that of the greedy answers fell). Judged like the first. */
static int lesson_ppo_fixed(pipeline *p, const lesson_sizes *l, const char *o, int eval_limit) {
    int rc;
    LRUN(p, "PPO, fixed (group baseline, rule anchor, T 0.3)", "ppo-fixed", "ppo --model %s/sft/model.safetensors "
         "--reward-model %s/rm --prompts %s/data/rl_prompts.jsonl --out %s/ppo-fixed --steps %d --batch-size %d "
         "--group %d --max-new-tokens 96 --lr 7e-5 --kl 0.05 --temperature 0.3 --group-baseline --whiten-rewards "
         "--anchor-fn poem --anchor-weight 2 --monitor-fn poem --skip-long", o, o, o, o, l->ppo_steps, l->ppo_batch, l->ppo_group);
    LRUN(p, "win rate against SFT", NULL, "eval --model %s/ppo-fixed/model.safetensors --against %s/sft/model.safetensors "
         "--reward-model %s/rm --tasks %s/data/eval_prompts.jsonl --limit %d --label ppo-fixed --summary "
         "%s/summary.jsonl", o, o, o, o, eval_limit, o);
    LRUN(p, "plot", NULL, "plot --metrics %s/ppo/metrics.jsonl %s/ppo-fixed/metrics.jsonl --label ppo,ppo-fixed --y "
         "reward,monitor_reward --title reward-model-score-vs-rule-score --out %s/ppo/hacking.svg", o, o, o);
    return 0;
}

/* Row 7: the SFT model writes instructions and answers them; the rules filter (up to si_tries answers per
 * instruction: rejection sampling); students from the base model. */
static int lesson_self_instruct(pipeline *p, const lesson_sizes *l, const char *o, const char *poems, int sft_len) {
    int rc;
    LRUN(p, "self-instruct: the SFT model writes instructions", NULL, "data instruct --model %s/sft/model.safetensors "
         "--poems %s --n %d --out %s/self-instruct/prompts.jsonl", o, poems, l->si_n, o);
    char keep[32];
    snprintf(keep, sizeof keep, "%g", (double)l->si_keep);
    LRUN(p, "self-instruct: the SFT model answers, the rules filter", NULL, "distill --teacher %s/sft/model.safetensors "
         "--synthesize 0 --prompts %s/self-instruct/prompts.jsonl --out-data %s/self-instruct/sft.jsonl --max-new-tokens "
         "96 --keep-fn poem --keep-min %s --tries %d", o, o, o, keep, l->si_tries);
    static const char *const kinds[] = {"synthetic", "human"};
    for (int k = 0; k < 2; k++) {
        char stage[64], dir[32], data[4096];
        snprintf(stage, sizeof stage, "SFT student on %s data", kinds[k]);
        snprintf(dir, sizeof dir, "student-%s", kinds[k]);
        snprintf(data, sizeof data, k ? "%s/data/sft.jsonl" : "%s/self-instruct/sft.jsonl", o);
        LRUN(p, stage, k ? "student-human" : "student-synthetic", "sft --model %s/base/model.safetensors --data %s --out "
             "%s/%s --steps %d --lr 2e-3 --batch-size 8 --seq-len %d --eval-every %d --eval-batches 4", o, data, o, dir,
             l->si_steps, sft_len, l->si_steps / 3);
        LRUN(p, "evaluate", NULL, "eval --model %s/%s/model.safetensors --tasks %s/data/eval_prompts.jsonl --only write "
             "--limit %d --label %s --summary %s/summary.jsonl", o, dir, o, l->deploy_limit * 2, dir, o);
    }
    return 0;
}

/* Row 8, one variant: decode speed and peak memory in a child process, held-out perplexity, 'write' compliance. */
static int deploy_measure(pipeline *p, const lesson_sizes *l, const char *o, const char *label, const char *model) {
    int rc;
    if ((rc = run_child(p, "measure decoding", "generate --model %s/%s --prompt 《春晓》（五言绝句） --temperature 0 "
                        "--max-new-tokens %d --summary %s/summary.jsonl --label %s", o, model, l->bench_tokens, o,
                        label)) != 0)
        return rc;
    LRUN(p, "evaluate", NULL, "eval --model %s/%s --data %s/data/eval_pretrain.txt --tasks %s/data/eval_prompts.jsonl "
         "--only write --limit %d --label %s --summary %s/summary.jsonl", o, model, o, o, l->deploy_limit, label, o);
    return 0;
}

static int lesson_deploy(pipeline *p, const lesson_sizes *l, const char *o, int depth, int sft_len) {
    int rc;
    LRUN(p, "quantise to q8_0 (GGUF)", NULL, "quantize --model %s/sft/model.safetensors --type q8_0 --out "
         "%s/sft/model-q8_0.gguf --quiet", o, o);
    LRUN(p, "quantise to q4_0 (GGUF)", NULL, "quantize --model %s/sft/model.safetensors --type q4_0 --out "
         "%s/sft/model-q4_0.gguf --quiet", o, o);
    LRUN(p, "export to GGUF f16 (llama.cpp)", NULL, "export --model %s/sft/model.safetensors --format gguf --type f16 "
         "--out %s/sft/model-f16.gguf", o, o);
    static const int sparsity[] = {30, 50};
    for (int i = 0; i < 2; i++) {
        char stage[64], dir[32];
        snprintf(dir, sizeof dir, "pruned%d-rec", sparsity[i]);
        LRUN(p, "prune", NULL, "prune --model %s/sft/model.safetensors --sparsity 0.%d --out %s/sft/model-pruned%d.safetensors",
             o, sparsity[i] / 10, o, sparsity[i]);
        snprintf(stage, sizeof stage, "recovery fine-tune after pruning %d%%", sparsity[i]);
        LRUN(p, stage, dir, "sft --model %s/sft/model-pruned%d.safetensors --data %s/data/sft.jsonl --out %s/%s --steps %d "
             "--lr 5e-4 --batch-size 8 --seq-len %d --eval-every %d --eval-batches 4", o, sparsity[i], o, o, dir,
             l->rec_steps, sft_len, l->rec_steps / 2);
        LRUN(p, "prune again (the fine-tune regrew the zeros)", NULL, "prune --model %s/%s/model.safetensors --sparsity "
             "0.%d --out %s/%s/model-pruned.safetensors", o, dir, sparsity[i] / 10, o, dir);
    }
    LRUN(p, "distil a smaller student (half the layers and width)", "student-small", "distill --teacher "
         "%s/base/model.safetensors --data %s/shards --out %s/student-small --depth %d --steps %d --batch-size 8 --lr 3e-3 "
         "--alpha 0.5 --eval-every %d", o, o, o, depth > 1 ? depth / 2 : 1, l->distill_steps, l->distill_steps / 3);
    LRUN(p, "SFT of the small student", "student-small-sft", "sft --model %s/student-small/model.safetensors --data "
         "%s/data/sft.jsonl --out %s/student-small-sft --steps %d --lr 2e-3 --batch-size 8 --seq-len %d --eval-every %d "
         "--eval-batches 4", o, o, o, l->student_steps, sft_len, l->student_steps / 3);
    static const char *const variants[][2] = {
        {"f32", "sft/model.safetensors"},          {"f16", "sft/model-f16.gguf"},
        {"q8_0", "sft/model-q8_0.gguf"},           {"q4_0", "sft/model-q4_0.gguf"},
        {"pruned30", "sft/model-pruned30.safetensors"}, {"pruned30+ft", "pruned30-rec/model-pruned.safetensors"},
        {"pruned50", "sft/model-pruned50.safetensors"}, {"pruned50+ft", "pruned50-rec/model-pruned.safetensors"},
        {"student", "student-small-sft/model.safetensors"},
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++)
        if ((rc = deploy_measure(p, l, o, variants[i][0], variants[i][1])) != 0) return rc;
    return 0;
}

static int lessons_b(pipeline *p, const char *o, const char *poems, int depth, int context, int sft_len,
                     int eval_limit) {
    const lesson_sizes *l = p->quick ? &quick_lessons : &default_lessons;
    int rc = lesson_cot(p, l, o);
    if (rc == 0) rc = lesson_tools(p, l, o, poems, context);
    if (rc == 0) rc = lesson_ppo_fixed(p, l, o, eval_limit);
    if (rc == 0) rc = lesson_self_instruct(p, l, o, poems, sft_len);
    if (rc == 0) rc = lesson_deploy(p, l, o, depth, sft_len);
    return rc;
}

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

    /* 6% general chat (greeting and identity half of it): the held-out greeting/identity probes of row 9 */
    RUN(&p, "datasets from the poem corpus", NULL, "data poems --input %s --out %s/data --general 0.06", poems, o);
    RUN(&p, "tokenizer", NULL, "tokenizer train --input %s/data/pretrain.txt --vocab-size %d --pattern han --tool-tokens "
        "--out %s/tokenizer.json --quiet", o, z->vocab, o);
    RUN(&p, "token shards", NULL, "prepare --tokenizer %s/tokenizer.json --input %s/data/pretrain.txt --out "
        "%s/shards --val-fraction 0.02 --quiet", o, o, o);
    RUN(&p, "pretraining", "base", "pretrain --data %s/shards --out %s/base --depth %d --context %d --batch-size %d "
        "--steps %d --lr 3e-3 --eval-every %d --sample-every %d --max-new-tokens 40 --sample-prompt 《春晓》", o, o,
        z->depth, z->context, z->pretrain_batch, z->pretrain_steps, z->pretrain_steps / 6, z->pretrain_steps / 2);
    /* lesson 2 (forgetting) compares this held-out pretraining perplexity with the tuned models' */
    RUN(&p, "evaluate base: perplexity", NULL, "eval --model %s/base/model.safetensors --data "
        "%s/data/eval_pretrain.txt --label base --summary %s/summary.jsonl", o, o, o);
    /* lesson 3 starts from copying: random token sequences shown twice, the loss of the second showing */
    RUN(&p, "evaluate base: copying from context", NULL, "eval --model %s/base/model.safetensors --copy-probe %d "
        "--label base --summary %s/summary.jsonl", o, p.quick ? 16 : 64, o);
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
        "--monitor-fn poem --skip-long", o, o, o, o,
        z->ppo_steps, z->rl_batch);
    EVAL_TASKS("ppo", "ppo/model.safetensors", "");
    static const char *const tuned[] = {"dpo", "grpo", "ppo"};
    for (int i = 0; i < 3; i++)
        RUN(&p, "win rate against SFT", NULL, "eval --model %s/%s/model.safetensors --against %s/sft/model.safetensors "
            "--reward-model %s/rm --tasks %s/data/eval_prompts.jsonl --limit %d --label %s --summary %s/summary.jsonl", o,
            tuned[i], o, o, o, z->eval_limit, tuned[i], o);
    if ((rc = lessons_b(&p, o, poems, z->depth, z->context, sft_len, z->eval_limit)) != 0) goto done;
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
