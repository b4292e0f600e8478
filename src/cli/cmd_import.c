/* jielong import: a Hugging Face model folder (GPT-2, Llama, Qwen2, SmolLM) or an llm.c GPT-2 .bin → a jielong
 * checkpoint (safetensors with the config, tokenizer and chat template in its metadata). */
#include "cli/args.h"
#include "infer/qweights.h"
#include "jielong/convert.h"
#include "jielong/gguf.h"
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>

int cmd_import(int argc, char **argv) {
    char *from = NULL, *out = NULL;
    int quiet = 0;
    const cli_opt opts[] = {
        {"from", OPT_STR, &from, "Hugging Face model folder (config.json, *.safetensors, tokenizer.json), a GGUF "
                                 "file (llama.cpp's: llama / qwen2 / gpt2; f32, f16, bf16, q8_0, q4_0) or an "
                                 "llm.c GPT-2 checkpoint (.bin)", NO_RANGE, 1},
        {"out", OPT_STR, &out, "jielong checkpoint to write (.safetensors)", NO_RANGE, 1},
        {"quiet", OPT_BOOL, &quiet, "no summary line", NO_RANGE, 0},
    };
    int rc = cli_parse("import", "Import open weights (HF GPT-2 / Llama-family folder, GGUF, or llm.c .bin) as a jielong "
                       "checkpoint.", opts, CLI_NOPTS(opts), argc, argv, 1);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : 2;
    struct stat sb;
    if (stat(from, &sb) != 0) {
        fprintf(stderr, "jielong import: %s: no such file or folder\n", from);
        return 2;
    }
    jl_checkpoint ck;
    const int file = !S_ISDIR(sb.st_mode);
    char magic[4] = {0};
    FILE *fp = file ? fopen(from, "rb") : NULL;
    const int gguf = fp && fread(magic, 1, 4, fp) == 4 && memcmp(magic, "GGUF", 4) == 0;
    if (fp) fclose(fp);
    jl_status st;
    if (gguf) { /* dequantised into fp32 weights */
        jl_qweights *qw = NULL;
        st = jl_gguf_load_model(from, 1, &ck, &qw);
        jl_qweights_free(qw);
    } else {
        st = file ? jl_import_llmc(from, &ck) : jl_import_hf(from, &ck);
    }
    if (st != JL_OK) return cli_report("import", st);
    st = jl_checkpoint_save(out, &ck);
    if (st == JL_OK && !quiet) {
        const jl_config *c = jl_model_config(ck.model);
        fprintf(stderr, "%s: %s, %d layers, width %d, %d/%d heads, vocab %d, %.1fM parameters%s → %s\n", from,
                jl_arch_name(c->arch), c->n_layer, c->dim, c->n_head, c->n_kv_head, c->vocab_size,
                (double)jl_model_num_params(ck.model) / 1e6, ck.tokenizer_json ? ", tokenizer" : ", no tokenizer", out);
    }
    jl_checkpoint_free(&ck);
    return cli_report("import", st);
}
