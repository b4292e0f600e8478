/* jielong data tools — SFT conversations that call the calculator and the search tool, and held-out questions. */
#include "cli/args.h"
#include "jielong/dataset.h"
#include "jielong/tools.h"
#include <stdio.h>

int data_tools(int argc, char **argv);

int data_tools(int argc, char **argv) {
    const char *input = "data/poems.jsonl", *out = NULL, *index = NULL;
    long seed = 1234, calc = 4000, calc_digits = 0, search = 4000, eval = 200, k = 3, specs = 1;
    const cli_opt opts[] = {
        {"out", OPT_STR, &out, "output folder (tools_sft.jsonl, eval_tools.jsonl)", NO_RANGE, 1},
        {"poems", OPT_STR, &input, "poem corpus (JSONL) [data/poems.jsonl]", NO_RANGE, 0},
        {"index", OPT_STR, &index, "index the search tool runs on [built in memory from --poems with --fields "
                                   "title,author,lines]", NO_RANGE, 0},
        {"seed", OPT_INT, &seed, "seed of every choice [1234]", 0, 1e9, 0},
        {"calc", OPT_INT, &calc, "calculator conversations [4000]", 0, 1e7, 0},
        {"calc-digits", OPT_INT, &calc_digits, "operands: integers of at most N digits (0: 1-2 digits, 3 digits or "
                                               "a decimal) [0]", 0, 9, 0},
        {"search", OPT_INT, &search, "search conversations (author, second line, which poem) [4000]", 0, 1e7, 0},
        {"eval", OPT_INT, &eval, "held-out questions per task (calc, author, line2, which) [200]", 0, 1e6, 0},
        {"k", OPT_INT, &k, "passages per search [3]", 1, 50, 0},
        {"tool-specs", OPT_INT, &specs, "1: each conversation lists its tools (\"tools\", rendered into the system "
                                        "prompt); 0: no listing, to fit a small context [1]", 0, 1, 0},
    };
    int rc = cli_parse("data tools", "SFT conversations that call tools (results from running them) and held-out "
                       "questions with expected answers", opts, CLI_NOPTS(opts), argc, argv, 2);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : 2;
    jl_poems *poems;
    jl_status st = jl_poems_load(input, NULL, &poems, NULL);
    if (st != JL_OK) return cli_report("data tools", st);
    jl_tool_data_options o;
    jl_tool_data_defaults(&o);
    o.seed = (uint64_t)seed;
    o.calc = (int)calc;
    o.calc_digits = (int)calc_digits;
    o.search = (int)search;
    o.eval = (int)eval;
    o.k = (int)k;
    o.index = index;
    o.no_specs = !specs;
    jl_tool_data_counts c;
    st = jl_tool_data_write(poems, input, out, &o, &c);
    jl_poems_free(poems);
    if (st != JL_OK) return cli_report("data tools", st);
    printf("%s/tools_sft.jsonl: %zu calculator, %zu author, %zu second-line, %zu which-poem conversations "
           "(%zu poem questions dropped: the search missed the poem)\n",
           out, c.calc, c.author, c.line2, c.which, c.not_found);
    printf("%s/eval_tools.jsonl: %zu calc, %zu author, %zu line2, %zu which held-out questions\n", out, c.eval_calc,
           c.eval_author, c.eval_line2, c.eval_which);
    return 0;
}
