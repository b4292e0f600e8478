/* jielong export: a jielong checkpoint → GGUF (llama.cpp), a Hugging Face folder, or an llm.c .bin. */
#include "cli/args.h"
#include "cli/export_format.h"
#include <stdio.h>

int cmd_export(int argc, char **argv) {
    char *in = NULL, *out = NULL, *format = NULL, *type = NULL;
    int quiet = 0;
    const cli_opt opts[] = {
        {"model", OPT_STR, &in, "jielong checkpoint (.safetensors)", NO_RANGE, 1},
        {"format", OPT_STR, &format, "gguf | safetensors (Hugging Face folder) | llmc (llm.c GPT-2 .bin)", NO_RANGE, 1},
        {"type", OPT_STR, &type, "gguf: f32 | f16 | q8_0 | q4_0; safetensors: f32 | f16 | bf16 (default f32)", NO_RANGE, 0},
        {"out", OPT_STR, &out, "output file (gguf, llmc) or folder (safetensors)", NO_RANGE, 1},
        {"quiet", OPT_BOOL, &quiet, "no summary line", NO_RANGE, 0},
    };
    int rc = cli_parse("export", "Export a model for other tools: GGUF for llama.cpp, Hugging Face safetensors, llm.c.",
                       opts, CLI_NOPTS(opts), argc, argv, 1);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : 2;
    jl_checkpoint ck;
    jl_status st = jl_checkpoint_load(in, &ck);
    if (st != JL_OK) return cli_report("export", st);
    rc = export_format(&ck, format, type, out, quiet);
    jl_checkpoint_free(&ck);
    return rc;
}
