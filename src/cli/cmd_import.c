/* jielong import: a Hugging Face model folder (GPT-2, Llama, Qwen2, SmolLM) or an llm.c GPT-2 .bin → a jielong
 * checkpoint (safetensors with the config, tokenizer and chat template in its metadata). */
#include "cli/args.h"
#include "infer/qweights.h"
#include "io/fileio.h"
#include "jielong/chat_format.h"
#include "jielong/convert.h"
#include "jielong/gguf.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* --chat-template FILE: parsed now (a template that cannot be rendered is refused here, not at the first chat). */
static jl_status replace_template(const char *path, jl_checkpoint *ck) {
    char *text;
    size_t len;
    jl_status st = jl_read_file(path, &text, &len);
    if (st != JL_OK) return st;
    jl_chat_format *fmt = NULL;
    if (strlen(text) != len) st = jl_fail(JL_ERR_FORMAT, "%s: a NUL byte in the template", path);
    else if ((st = jl_chat_format_new(text, ck->bos_token, ck->eos_token, &fmt)) != JL_OK) jl_fail_context(st, "%s", path);
    jl_chat_format_free(fmt);
    if (st != JL_OK) {
        free(text);
        return st;
    }
    free(ck->chat_template);
    ck->chat_template = text;
    return JL_OK;
}

int cmd_import(int argc, char **argv) {
    char *from = NULL, *out = NULL, *tmpl = NULL;
    int quiet = 0;
    const cli_opt opts[] = {
        {"from", OPT_STR, &from, "Hugging Face model folder (config.json, *.safetensors, tokenizer.json), a GGUF "
                                 "file (llama.cpp's: llama / qwen2 / gpt2; f32, f16, bf16, q8_0, q4_0) or an "
                                 "llm.c GPT-2 checkpoint (.bin)", NO_RANGE, 1},
        {"out", OPT_STR, &out, "jielong checkpoint to write (.safetensors)", NO_RANGE, 1},
        {"chat-template", OPT_STR, &tmpl, "a Jinja chat template file to keep instead of (or for a model without) the "
                                          "chat_template of tokenizer_config.json", NO_RANGE, 0},
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
    if (tmpl) st = replace_template(tmpl, &ck);
    if (st == JL_OK) st = jl_checkpoint_save(out, &ck);
    if (st == JL_OK && !quiet) {
        const jl_config *c = jl_model_config(ck.model);
        fprintf(stderr, "%s: %s, %d layers, width %d, %d/%d heads, vocab %d, %.1fM parameters%s%s → %s\n", from,
                jl_arch_name(c->arch), c->n_layer, c->dim, c->n_head, c->n_kv_head, c->vocab_size,
                (double)jl_model_num_params(ck.model) / 1e6, ck.tokenizer_json ? ", tokenizer" : ", no tokenizer",
                ck.chat_template ? ", its chat template" : "", out);
    }
    jl_checkpoint_free(&ck);
    return cli_report("import", st);
}
