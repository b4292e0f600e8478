/* jielong eval: measure a model. Held-out perplexity and bits per byte/char on text files; or the score a
 * reward model gives a response. */
#include "cli/args.h"
#include "jielong/rlhf.h"
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

/* --reward RM --prompt P --response R: the reward model's scalar score. */
static jl_status eval_reward(const char *dir, const char *prompt, const char *response, int json) {
    if (!prompt || !response) return jl_fail(JL_ERR_ARG, "--reward needs --prompt and --response");
    jl_reward_model *rm;
    jl_status st = jl_reward_model_load(dir, &rm);
    if (st != JL_OK) return st;
    float score;
    st = jl_reward_model_score(rm, prompt, response, &score);
    if (st == JL_OK) {
        if (json) printf("{\"reward\":%.6f}\n", score);
        else printf("reward %.6f\n", score);
    }
    jl_reward_model_free(rm);
    return st;
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *reward = NULL, *prompt = NULL, *response = NULL;
    cli_strs data = {0};
    long window = 0;
    int json = 0;
    cli_opt opts[] = {
        {"model", OPT_STR, &model, "model checkpoint (.safetensors) for perplexity", NO_RANGE, 0},
        {"data", OPT_STRS, &data, "held-out text files: perplexity, bits per byte and per character", NO_RANGE, 0},
        {"reward", OPT_STR, &reward, "reward model folder (jielong reward): score --prompt/--response", NO_RANGE, 0},
        {"prompt", OPT_STR, &prompt, "prompt of the response to score (with --reward)", NO_RANGE, 0},
        {"response", OPT_STR, &response, "response to score (with --reward)", NO_RANGE, 0},
        {"window", OPT_INT, &window, "tokens per scoring window (default: the model's context)", 2, 1 << 20, 0},
        {"json", OPT_BOOL, &json, "one JSON object per result instead of text", NO_RANGE, 0},
    };
    int rc = cli_parse("eval", "Evaluate a model: held-out perplexity and bits per byte/char, or a reward score.",
                       opts, CLI_NOPTS(opts), argc, argv, 1);
    if (rc != CLI_PARSED) {
        free(data.v);
        return rc == CLI_HELP_SHOWN ? 0 : rc;
    }
    if (reward) {
        free(data.v);
        if (model || data.n) return cli_report("eval", jl_fail(JL_ERR_ARG, "--reward cannot be combined with --model/--data"));
        return cli_report("eval", eval_reward(reward, prompt, response, json));
    }
    if (!model || !data.n) {
        free(data.v);
        return cli_report("eval", jl_fail(JL_ERR_ARG, "give --model and --data (perplexity) or --reward (score)"));
    }
    jl_checkpoint ck;
    jl_tokenizer *tok = NULL;
    jl_status st = jl_checkpoint_load(model, &ck);
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
