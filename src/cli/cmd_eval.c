/* jielong eval: measure a model. Held-out perplexity and bits per byte/char on text files.
 * A quantised GGUF is scored with its weights dequantised to fp32 through the same forward pass as a fp32
 * checkpoint, so the difference to the fp32 figure is the weight quantisation error alone (the decode engine
 * additionally rounds activations to q8_0 before its integer dot products, as ggml does). */
#include "cli/args.h"
#include "cli/infer_cli.h"
#include "io/fileio.h"
#include "jielong/checkpoint.h"
#include "jielong/eval.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static jl_status eval_text_files(jl_model *m, const jl_tokenizer *tok, const cli_strs *files, int window, int json) {
    for (int i = 0; i < files->n; i++) {
        char *text;
        size_t len;
        jl_status st = jl_read_file(files->v[i], &text, &len);
        if (st != JL_OK) return st;
        jl_ppl_result r;
        st = jl_eval_perplexity(m, tok, text, len, window, &r);
        free(text);
        if (st != JL_OK) return jl_fail_context(st, "%s", files->v[i]);
        if (json)
            printf("{\"file\":\"%s\",\"tokens\":%ld,\"nll\":%.6f,\"ppl\":%.4f,\"bits_per_byte\":%.4f,"
                   "\"bits_per_char\":%.4f}\n",
                   files->v[i], r.tokens, r.nll, r.ppl, r.bits_per_byte, r.bits_per_char);
        else
            printf("%s: %ld tokens, perplexity %.3f, %.4f bits/byte, %.4f bits/char, loss %.4f nats/token\n",
                   files->v[i], r.tokens, r.ppl, r.bits_per_byte, r.bits_per_char, r.nll / (double)r.tokens);
    }
    return JL_OK;
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL;
    cli_strs data = {0};
    long window = 0;
    int json = 0;
    cli_opt opts[] = {
        {"model", OPT_STR, &model, "model checkpoint (.safetensors) or quantised .gguf (scored with its dequantised weights)", NO_RANGE, 1},
        {"data", OPT_STRS, &data, "held-out text files: perplexity, bits per byte and per character", NO_RANGE, 1},
        {"window", OPT_INT, &window, "tokens per scoring window (default: the model's context)", 2, 1 << 20, 0},
        {"json", OPT_BOOL, &json, "one JSON object per result instead of text", NO_RANGE, 0},
    };
    int rc = cli_parse("eval", "Evaluate a model: held-out perplexity and bits per byte/char.", opts,
                       CLI_NOPTS(opts), argc, argv, 1);
    if (rc != CLI_PARSED) {
        free(data.v);
        return rc == CLI_HELP_SHOWN ? 0 : rc;
    }
    jl_checkpoint ck;
    jl_qweights *qw = NULL; /* unused: a GGUF's quantised weights are scored dequantised, in the fp32 forward */
    jl_tokenizer *tok = NULL;
    jl_status st = infer_load_model(model, 1, &ck, &qw);
    jl_qweights_free(qw);
    if (st == JL_OK) {
        if (!ck.tokenizer_json) st = jl_fail(JL_ERR_FORMAT, "%s: checkpoint has no tokenizer", model);
        else st = jl_tokenizer_from_json(ck.tokenizer_json, strlen(ck.tokenizer_json), &tok);
        if (st == JL_OK)
            st = eval_text_files(ck.model, tok, &data, window ? (int)window : jl_model_config(ck.model)->max_seq_len, json);
        jl_tokenizer_free(tok);
        jl_checkpoint_free(&ck);
    }
    free(data.v);
    return cli_report("eval", st);
}
