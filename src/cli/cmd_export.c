/* jielong export: a jielong checkpoint → GGUF (llama.cpp), a Hugging Face folder or an llm.c .bin;
 * --merge first folds a LoRA adapter into the base (alone, it writes the merged jielong checkpoint). */
#include "cli/args.h"
#include "cli/export_format.h"
#include "jielong/adapter.h"
#include "jielong/checkpoint.h"
#include <stdio.h>

/* Folds the adapter at `path` into ck's model, in place. */
static jl_status merge_adapter(jl_checkpoint *ck, const char *path) {
    jl_lora *lr = NULL;
    jl_status st = jl_lora_load(path, ck->model, &lr, NULL);
    if (st == JL_OK) st = jl_lora_merge(ck->model, lr);
    if (st == JL_OK)
        fprintf(stderr, "export: merged %s (rank %d, %zu parameters) into the base model\n", path,
                jl_lora_options(lr)->rank, jl_lora_num_params(lr));
    jl_lora_free(lr);
    return st;
}

int cmd_export(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *format = NULL, *type = NULL, *merge = NULL;
    int quiet = 0;
    cli_opt opts[] = {
        {"model", OPT_STR, &in, "jielong checkpoint (.safetensors)", NO_RANGE, 1},
        {"merge", OPT_STR, &merge, "LoRA adapter (from jielong sft --method lora) to fold into the model first", NO_RANGE, 0},
        {"format", OPT_STR, &format, "gguf | safetensors (Hugging Face folder) | llmc (llm.c GPT-2 .bin); "
                                     "without it, --merge writes a jielong checkpoint", NO_RANGE, 0},
        {"type", OPT_STR, &type, "gguf: f32 | f16 | q8_0 | q4_0; safetensors: f32 | f16 | bf16 (default f32)", NO_RANGE, 0},
        {"out", OPT_STR, &out, "output file (jielong, gguf, llmc) or folder (safetensors)", NO_RANGE, 1},
        {"quiet", OPT_BOOL, &quiet, "no summary line", NO_RANGE, 0},
    };
    int rc = cli_parse("export", "Export a model for other tools (GGUF for llama.cpp, Hugging Face safetensors, "
                       "llm.c), after folding in a LoRA adapter with --merge.", opts, CLI_NOPTS(opts), argc, argv, 1);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : rc;
    if (!format && !merge) {
        fprintf(stderr, "jielong export: nothing to do: give --format and/or --merge (see --help)\n");
        return 2;
    }
    jl_checkpoint ck;
    jl_status st = jl_checkpoint_load(in, &ck);
    if (st == JL_OK && merge) st = merge_adapter(&ck, merge);
    if (st != JL_OK) {
        jl_checkpoint_free(&ck);
        return cli_report("export", st);
    }
    if (format) {
        rc = export_format(&ck, format, type, out, quiet);
    } else {
        jl_checkpoint merged = {.model = ck.model, .tokenizer_json = ck.tokenizer_json, .chat_template = ck.chat_template,
                                .bos_token = ck.bos_token, .eos_token = ck.eos_token};
        rc = cli_report("export", jl_checkpoint_save(out, &merged));
        if (rc == 0 && !quiet) fprintf(stderr, "export: wrote %s\n", out);
    }
    jl_checkpoint_free(&ck);
    return rc;
}
