/* jielong data cot — the chain-of-thought lesson's data: the same sums answered directly and step by step.
 * jielong data instruct — self-instruct: writing instructions whose titles and forms a model makes up. */
#include "cli/args.h"
#include "jielong/checkpoint.h"
#include "jielong/dataset.h"
#include "jielong/tokenizer.h"
#include "jielong/synth.h"
#include <stdio.h>
#include <string.h>

int data_cot(int argc, char **argv);
int data_instruct(int argc, char **argv);

int data_cot(int argc, char **argv) {
    const char *out = NULL;
    long seed = 1234, train = 3000, eval = 200, digits = 3;
    const cli_opt opts[] = {
        {"out", OPT_STR, &out, "output folder (cot_direct.jsonl, cot_steps.jsonl, cot_prompts.jsonl, eval_cot.jsonl)",
         NO_RANGE, 1},
        {"seed", OPT_INT, &seed, "seed of every choice [1234]", 0, 1e9, 0},
        {"train", OPT_INT, &train, "training problems [3000]", 0, 1e7, 0},
        {"eval", OPT_INT, &eval, "held-out problems [200]", 0, 1e6, 0},
        {"digits", OPT_INT, &digits, "digits of each operand [3]", 2, 6, 0},
    };
    int rc = cli_parse("data cot", "addition problems answered directly and step by step (column by column), RL "
                       "prompts with the expected sum, and held-out problems", opts, CLI_NOPTS(opts), argc, argv, 2);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : 2;
    jl_cot_options o;
    jl_cot_defaults(&o);
    o.seed = (uint64_t)seed;
    o.train = (int)train;
    o.eval = (int)eval;
    o.digits = (int)digits;
    jl_cot_counts c;
    jl_status st = jl_cot_data_write(out, &o, &c);
    if (st != JL_OK) return cli_report("data cot", st);
    printf("%s: %zu training problems (cot_direct.jsonl, cot_steps.jsonl, cot_prompts.jsonl), %zu held out "
           "(eval_cot.jsonl)\n", out, c.train, c.eval);
    return 0;
}

int data_instruct(int argc, char **argv) {
    const char *model = NULL, *out = NULL, *poems_path = "data/poems.jsonl";
    long seed = 1234, n = 500, tries = 8;
    double temperature = 1.0;
    const cli_opt opts[] = {
        {"model", OPT_STR, &model, "the model that writes the headings (plain completion of \"《\")", NO_RANGE, 1},
        {"out", OPT_STR, &out, "RL prompts JSONL to write (answer them with distill --synthesize)", NO_RANGE, 1},
        {"poems", OPT_STR, &poems_path, "corpus whose titles are not new [data/poems.jsonl]", NO_RANGE, 0},
        {"n", OPT_INT, &n, "instructions to write [500]", 0, 1e7, 0},
        {"seed", OPT_INT, &seed, "sampling seed [1234]", 0, 1e9, 0},
        {"max-tries", OPT_INT, &tries, "headings sampled at most per instruction wanted [8]", 1, 1000, 0},
        {"temperature", OPT_FLOAT, &temperature, "sampling temperature [1]", 0, 100, 0},
    };
    int rc = cli_parse("data instruct", "self-instruct: the model makes up poem headings 《title》（form）; each new "
                       "title becomes a writing instruction", opts, CLI_NOPTS(opts), argc, argv, 2);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : 2;
    jl_poems *poems = NULL;
    jl_checkpoint ck;
    jl_tokenizer *tok = NULL;
    jl_status st = jl_poems_load(poems_path, NULL, &poems, NULL);
    int loaded = st == JL_OK && (st = jl_checkpoint_load(model, &ck)) == JL_OK;
    if (loaded && !ck.tokenizer_json) st = jl_fail(JL_ERR_FORMAT, "%s: checkpoint has no tokenizer", model);
    else if (loaded) st = jl_tokenizer_from_json(ck.tokenizer_json, strlen(ck.tokenizer_json), &tok);
    jl_instruct_options o;
    jl_instruct_defaults(&o);
    o.seed = (uint64_t)seed;
    o.n = (int)n;
    o.max_tries = (int)tries;
    o.temperature = (float)temperature;
    jl_instruct_counts c;
    if (st == JL_OK) st = jl_instruct_write(ck.model, tok, poems, out, &o, &c);
    jl_tokenizer_free(tok);
    if (loaded) jl_checkpoint_free(&ck);
    jl_poems_free(poems);
    if (st != JL_OK) return cli_report("data instruct", st);
    printf("%s: %zu instructions from %zu headings the model wrote (%zu malformed, %zu titles of the corpus, "
           "%zu repeated; %zu with a form drawn at random, the heading naming none)\n", out, c.written, c.sampled,
           c.bad, c.known, c.repeated, c.drawn_form);
    return 0;
}
