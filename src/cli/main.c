/* jielong CLI entry point: dispatches to one function per subcommand (src/cli/cmd_*.c). */
#include "cli/commands.h"
#include "cli/dist_cli.h"
#include "jielong.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmd_version(int argc, char **argv) {
    (void)argc;
    (void)argv;
    printf("jielong %s\n", JL_VERSION);
    return 0;
}

int cmd_tokenizer(int, char **);
int cmd_pretrain(int, char **);
int cmd_plot(int, char **);
int cmd_prepare(int, char **);
int cmd_data(int, char **);
int cmd_eval(int, char **);
int cmd_import(int, char **);
int cmd_export(int, char **);
int cmd_quantize(int, char **);
int cmd_pipeline(int, char **);
int cmd_generate(int, char **);
int cmd_chat(int, char **);
int cmd_serve(int, char **);
int cmd_sft(int, char **);
int cmd_reward(int, char **);
int cmd_dpo(int, char **);
int cmd_grpo(int, char **);
int cmd_ppo(int, char **);
int cmd_prune(int, char **);
int cmd_distill(int, char **);
int cmd_index(int, char **);

/* Subcommands, in the order of the recipe. */
const cli_command cli_commands[] = {
    {"data", cmd_data, "bundled poem corpus: derived datasets, poem rules, JSONL checks"},
    {"tokenizer", cmd_tokenizer, "train, use, import byte-level BPE tokenizers (train|encode|decode|import)"},
    {"prepare", cmd_prepare, "text or JSONL → token shards (train + held-out val) for pretraining"},
    {"pretrain", cmd_pretrain, "pretrain a Transformer by next-token prediction"},
    {"sft", cmd_sft, "supervised fine-tuning on conversations: full, LoRA, freeze or soft prompt"},
    {"generate", cmd_generate, "continue a prompt, streaming tokens (sampling options, --show-probs)"},
    {"chat", cmd_chat, "multi-turn chat with the chat template (line editing, /reset /temp /system)"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server with batched decoding and a chat page"},
    {"reward", cmd_reward, "train a reward model on preference pairs (Bradley-Terry)"},
    {"dpo", cmd_dpo, "direct preference optimisation (sigmoid or IPO loss)"},
    {"ppo", cmd_ppo, "RLHF with PPO: rollouts, value head, GAE, clipped surrogate, KL penalty"},
    {"grpo", cmd_grpo, "group relative policy optimisation with rule-based or model rewards"},
    {"eval", cmd_eval, "evaluate: perplexity, instruction following, zero/few-shot, reward scores"},
    {"import", cmd_import, "import open weights: Hugging Face GPT-2 / Llama / Qwen2 folder or llm.c .bin"},
    {"export", cmd_export, "export a model: GGUF (llama.cpp; f32/f16/q8_0/q4_0), HF safetensors, llm.c; --merge LoRA"},
    {"quantize", cmd_quantize, "quantise a model to q8_0 / q4_0 blocks (GGUF)"},
    {"distill", cmd_distill, "train a smaller student on a teacher's soft targets; --synthesize SFT data"},
    {"prune", cmd_prune, "magnitude-prune a model's linear weights (global, per tensor or per row)"},
    {"index", cmd_index, "retrieval index over your documents (SQLite FTS5 BM25, dense, fused): build|query"},
    {"pipeline", cmd_pipeline, "the whole recipe on the bundled poems, stage by stage (--quick: ~2 minutes)"},
    {"plot", cmd_plot, "draw training metrics (JSONL) as an SVG line plot"},
    {"version", cmd_version, "print the version"},
    {NULL, NULL, NULL},
};

static void usage(FILE *out) {
    fprintf(out, "jielong %s — build and use a ChatGPT-style model on a CPU, every stage in one binary.\n\n"
                 "usage: jielong <command> [options]   (jielong <command> --help for its options; jielong --version)\n\ncommands:\n",
            JL_VERSION);
    for (const cli_command *c = cli_commands; c->name; c++) fprintf(out, "  %-12s %s\n", c->name, c->summary);
    fprintf(out, "\nseveral processes or machines (pretrain, sft, distill, reward, dpo): mpirun -np N jielong <command> "
                 "... (OpenMPI; README \"Training on several processes or machines\")\n");
}

/* OpenMP threads that spin while they wait wreck throughput as soon as anything else runs on the machine
 * (measured on a busy 2-core machine: 24 s spinning vs 1.1 s sleeping for the same evaluation). libgomp reads
 * its wait policy once, at start-up, so set it and execute ourselves again. OMP_WAIT_POLICY=active in the
 * environment keeps spinning (slightly faster on an otherwise idle machine). */
static void prefer_sleeping_threads(char **argv) {
    if (getenv("OMP_WAIT_POLICY")) return;
    setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", argv); /* returns only on failure: then run as we are */
}

/* Output that could not be written (a full disk, a closed pipe, /dev/full) is a failure, not exit 0: the
 * stream's error flag is sticky, so one check of the flush and the close at the end sees every lost write. */
static int finish_stdout(const char *command, int rc) {
    int bad = fflush(stdout) != 0 || ferror(stdout);
    bad |= fclose(stdout) != 0;
    if (!bad) return rc;
    fprintf(stderr, "jielong %s: cannot write to standard output: %s\n", command, strerror(errno ? errno : EIO));
    return rc ? rc : 1;
}

int main(int argc, char **argv) {
    prefer_sleeping_threads(argv);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) return cmd_version(argc - 1, argv + 1);
    for (const cli_command *c = cli_commands; c->name; c++)
        if (strcmp(argv[1], c->name) == 0) {
            int rc = cli_dist_start(); /* under mpirun: joins the job (issue 18) */
            return rc ? rc : cli_dist_end(finish_stdout(c->name, c->run(argc - 1, argv + 1)));
        }
    fprintf(stderr, "jielong: unknown command '%s' (see jielong --help)\n", argv[1]);
    return 2;
}
