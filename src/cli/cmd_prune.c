/* jielong prune: magnitude pruning of a checkpoint's linear weights, with held-out loss before and after. */
#include "cli/args.h"
#include "jielong/checkpoint.h"
#include "jielong/eval.h"
#include "jielong/prune.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Mean held-out loss (nats per token) over the text files. */
static jl_status heldout_loss(jl_model *m, const jl_tokenizer *tok, const cli_strs *files, int window, double *loss) {
    double nll = 0;
    long tokens = 0;
    for (int i = 0; i < files->n; i++) {
        jl_ppl_result r;
        jl_status st = jl_eval_perplexity_file(m, tok, files->v[i], window, &r);
        if (st != JL_OK) return st;
        nll += r.nll;
        tokens += r.tokens;
    }
    *loss = tokens ? nll / (double)tokens : 0.0;
    return JL_OK;
}

static void print_report(const jl_prune_report *r, const jl_prune_opts *o) {
    printf("pruned %s to sparsity %.4f (asked %.4f): %zu of %zu selected weights are zero\n",
           jl_prune_mode_name(o->mode), r->selected_total ? (double)r->selected_zeros / (double)r->selected_total : 0.0,
           o->sparsity, r->selected_zeros, r->selected_total);
    for (int k = 0; k < JL_PK_COUNT; k++) {
        if (!r->total[k]) continue;
        printf("  %-10s %10zu weights  sparsity %.4f%s\n", jl_prune_kind_name((jl_prune_kind)k), r->total[k],
               (double)r->zeros[k] / (double)r->total[k], r->selected[k] ? "" : "  (not pruned)");
    }
}

int cmd_prune(int argc, char **argv) {
    const char *model = NULL, *out = NULL, *mode = "per-tensor";
    cli_strs data = {0};
    double sparsity = -1;
    long window = 0;
    int include_embeddings = 0;
    cli_opt opts[] = {
        {"model", OPT_STR, &model, "model checkpoint (.safetensors)", NO_RANGE, 1},
        {"out", OPT_STR, &out, "pruned checkpoint to write (.safetensors)", NO_RANGE, 1},
        {"sparsity", OPT_FLOAT, &sparsity, "fraction of the selected weights set to zero, in [0, 1)", NO_RANGE, 1},
        {"mode", OPT_STR, &mode, "per-tensor (default: each tensor its own threshold), global (one threshold over "
                                 "all), per-row (the same fraction in every output row)", NO_RANGE, 0},
        {"include-embeddings", OPT_BOOL, &include_embeddings,
         "also prune token/position embeddings and the LM head (norms and biases never)", NO_RANGE, 0},
        {"data", OPT_STRS, &data, "held-out text files: loss before and after pruning", NO_RANGE, 0},
        {"window", OPT_INT, &window, "tokens per scoring window (default: the model's context)", 2, 1 << 20, 0},
    };
    int rc = cli_parse("prune", "Magnitude-prune a model's linear weights (unstructured or per row).", opts,
                       CLI_NOPTS(opts), argc, argv, 1);
    if (rc != CLI_PARSED) {
        free(data.v);
        return rc == CLI_HELP_SHOWN ? 0 : rc;
    }
    jl_prune_opts po = {.sparsity = sparsity, .include_embeddings = include_embeddings};
    jl_status st = jl_prune_mode_parse(mode, &po.mode);
    if (st == JL_OK && !(sparsity >= 0 && sparsity < 1))
        st = jl_fail(JL_ERR_ARG, "--sparsity %g: must be in [0, 1)", sparsity);
    if (st != JL_OK) {
        free(data.v);
        return cli_report("prune", st);
    }
    jl_checkpoint ck = {0};
    jl_tokenizer *tok = NULL;
    st = jl_checkpoint_load(model, &ck);
    if (st == JL_OK && data.n > 0) {
        if (!ck.tokenizer_json) st = jl_fail(JL_ERR_FORMAT, "%s: checkpoint has no tokenizer to encode --data", model);
        else st = jl_tokenizer_from_json(ck.tokenizer_json, strlen(ck.tokenizer_json), &tok);
    }
    int win = st == JL_OK ? (window ? (int)window : jl_model_config(ck.model)->max_seq_len) : 0;
    double before = 0, after = 0;
    if (st == JL_OK && tok) st = heldout_loss(ck.model, tok, &data, win, &before);
    jl_prune_report rep;
    if (st == JL_OK) st = jl_prune(ck.model, &po, &rep);
    if (st == JL_OK && tok) st = heldout_loss(ck.model, tok, &data, win, &after);
    if (st == JL_OK) {
        jl_checkpoint pruned = {.model = ck.model, .tokenizer_json = ck.tokenizer_json,
                                .chat_template = ck.chat_template, .bos_token = ck.bos_token, .eos_token = ck.eos_token};
        st = jl_checkpoint_save(out, &pruned);
    }
    if (st == JL_OK) {
        print_report(&rep, &po);
        if (tok) printf("held-out loss %.4f -> %.4f nats/token (%+.4f)\n", before, after, after - before);
        printf("wrote %s\n", out);
    }
    jl_tokenizer_free(tok);
    jl_checkpoint_free(&ck);
    free(data.v);
    return cli_report("prune", st);
}
