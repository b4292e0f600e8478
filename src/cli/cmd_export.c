/* jielong export: write a model in another form. For now --merge (fold a LoRA adapter into its base model);
 * each export kind is one function below, chosen in cmd_export, so --format gguf|safetensors slots in beside it. */
#include "cli/args.h"
#include "jielong/adapter.h"
#include "jielong/checkpoint.h"
#include <stdio.h>

typedef struct {
    const char *model, *out, *merge;
} export_args;

/* base + adapter → one model checkpoint (tokenizer and chat template kept). */
static jl_status export_merged(const export_args *a) {
    jl_checkpoint ck;
    jl_status st = jl_checkpoint_load(a->model, &ck);
    if (st != JL_OK) return st;
    jl_lora *lr = NULL;
    st = jl_lora_load(a->merge, ck.model, &lr, NULL);
    if (st == JL_OK) st = jl_lora_merge(ck.model, lr);
    if (st == JL_OK) {
        jl_checkpoint out = {.model = ck.model, .tokenizer_json = ck.tokenizer_json, .chat_template = ck.chat_template};
        st = jl_checkpoint_save(a->out, &out);
    }
    if (st == JL_OK)
        fprintf(stderr, "export: merged %s (rank %d, %zu parameters) into %s → %s\n", a->merge, jl_lora_options(lr)->rank,
                jl_lora_num_params(lr), a->model, a->out);
    jl_lora_free(lr);
    jl_checkpoint_free(&ck);
    return st;
}

int cmd_export(int argc, char **argv) {
    export_args a = {0};
    cli_opt opts[] = {
        {"model", OPT_STR, &a.model, "base model checkpoint", NO_RANGE, 1},
        {"out", OPT_STR, &a.out, "output file", NO_RANGE, 1},
        {"merge", OPT_STR, &a.merge, "LoRA adapter (adapter.safetensors from jielong sft --method lora) to fold in", NO_RANGE, 0},
    };
    int rc = cli_parse("export", "Export a model: --merge folds a LoRA adapter into its base model.", opts,
                       CLI_NOPTS(opts), argc, argv, 1);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : rc;
    jl_status st;
    if (a.merge) st = export_merged(&a);
    else st = jl_fail(JL_ERR_ARG, "nothing to export: give --merge ADAPTER");
    return cli_report("export", st);
}
