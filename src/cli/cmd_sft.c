/* jielong sft: supervised fine-tuning of a model on conversations (full, LoRA, freeze, soft prompt). */
#include "cli/args.h"
#include "cli/summary_cli.h"
#include "cli/train_cli.h"
#include "jielong/checkpoint.h"
#include "jielong/sft.h"
#include "train/optim.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static void print_bytes(const char *label, double bytes) {
    char buf[32];
    cli_format_si(bytes, buf, sizeof buf);
    fprintf(stderr, "%s%sB", label, buf);
}

/* The set-up's progress: conversations tokenized; the bar ends when the first one is drawn complete. */
static void on_encode(void *user, const char *phase, double done, double total) {
    cli_progress *p = user;
    (void)phase;
    cli_progress_update(p, done, NULL);
    if (done >= total) cli_progress_finish(p, "encoded");
}

/* The --summary line: {"kind":"train","stage":"sft",...} with what the method cost and reached. */
static jl_status append_summary(const cli_summary *sum, const jl_sft_opts *o, const char *init,
                                const jl_sft_report *rep) {
    if (!sum->summary) return JL_OK;
    json_object *j = json_object_new_object();
    json_object_object_add(j, "kind", json_object_new_string("train"));
    json_object_object_add(j, "stage", json_object_new_string("sft"));
    json_object_object_add(j, "method", json_object_new_string(jl_sft_method_name(o->method)));
    json_object_object_add(j, "init", json_object_new_string(init));
    json_object_object_add(j, "steps", json_object_new_int64(rep->steps_done));
    json_object_object_add(j, "trainable", json_object_new_int64((int64_t)rep->trainable));
    json_object_object_add(j, "params", json_object_new_int64((int64_t)rep->total));
    json_object_object_add(j, "optimizer_bytes", json_object_new_int64((int64_t)rep->optimizer_bytes));
    json_object_object_add(j, "grad_bytes", json_object_new_int64((int64_t)rep->grad_bytes));
    if (isfinite(rep->first_val)) json_object_object_add(j, "first_val_loss", json_object_new_double(rep->first_val));
    if (isfinite(rep->last_val)) json_object_object_add(j, "val_loss", json_object_new_double(rep->last_val));
    jl_status st = cli_summary_append(sum, j);
    json_object_put(j);
    return st;
}

int cmd_sft(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *val = NULL, *method = "full", *overlong = "truncate", *packing = "on";
    const char *init = "model";
    cli_summary sum = {0};
    int skip_bad = 0, threads = 0;
    jl_sft_opts o;
    jl_sft_defaults(&o);
    o.T = 0; /* 0: the model's context */
    cli_opt opts[] = {
        {"model", OPT_STR, &model, "base model checkpoint (model.safetensors from pretrain)", NO_RANGE, 1},
        {"data", OPT_STR, &data, "conversations, JSONL: {\"messages\":[...]} or Alpaca {instruction,input,output}", NO_RANGE, 1},
        {"method", OPT_STR, &method, "full (default), lora, freeze or prompt", NO_RANGE, 0},
        {"val", OPT_STR, &val, "held-out conversations (default: the last --val-fraction of --data)", NO_RANGE, 0},
        {"val-fraction", OPT_FLOAT, &o.val_fraction, "held-out share of --data without --val (default 0.05)", 0, 0.5, 0},
        {"skip-bad", OPT_BOOL, &skip_bad, "skip malformed JSONL lines (reported) instead of stopping at the first", NO_RANGE, 0},
        {"overlong", OPT_STR, &overlong, "conversations longer than --seq-len: truncate (default, counted) or skip", NO_RANGE, 0},
        CLI_RUN_FLAGS(o.train, threads, "rows per micro-batch"),
        CLI_ACCUM_FLAG(o.train),
        CLI_OPTIM_FLAGS(o.train),
        {"seq-len", OPT_I32, &o.T, "tokens per row (0: the context)", 0, 1 << 20, 0},
        {"packing", OPT_STR, &packing, "on (default): conversations packed into rows by best fit, each attending only "
                                       "to itself with its own positions (exact: the same loss as one per row, "
                                       "every method); off: one conversation per row, padded", NO_RANGE, 0},
        {"eval-batches", OPT_I32, &o.eval_batches, "batches per held-out evaluation (0 = the whole held-out set)", 0, 1000000, 0},
        {"lora-rank", OPT_I32, &o.lora.rank, "lora: rank r (default 8; raise it, e.g. 32, when the adapter underfits: held-out loss well above full SFT's)", 1, 4096, 0},
        {"lora-alpha", OPT_F32, &o.lora.alpha, "lora: alpha; scale = alpha / r", 1e-6, 1e6, 0},
        {"lora-dropout", OPT_F32, &o.lora.dropout, "lora: dropout on the adapter input", 0, 0.99, 0},
        {"lora-targets", OPT_STR, &o.lora.targets, "lora: q,k,v,o,gate,up,down (gpt2: qkv,o,fc,down) or attn|mlp|all (default all; attn alone learns far less)", NO_RANGE, 0},
        {"prompt-tokens", OPT_I32, &o.prompt_tokens, "prompt: virtual tokens", 1, 1 << 20, 0},
        {"train-last", OPT_I32, &o.train_last, "freeze: train the last N blocks", 1, 1 << 20, 0},
        {"train-layers", OPT_STR, &o.train_layers, "freeze: train these blocks, e.g. 0-3,7", NO_RANGE, 0},
        {"train-head", OPT_BOOL, &o.train_head, "freeze: also train the final norm and lm head", NO_RANGE, 0},
        {"freeze-layers", OPT_STR, &o.freeze_layers, "freeze: freeze these blocks, train everything else", NO_RANGE, 0},
        {"init", OPT_STR, &init, "model (default): start from --model's weights; random: its architecture and "
                                 "tokenizer with freshly initialised weights (SFT without pretraining)", NO_RANGE, 0},
        {"summary", OPT_STR, &sum.summary, "append a JSON line of what the run cost and reached (trainable "
                                           "parameters, optimizer bytes, held-out loss) to this file", NO_RANGE, 0},
        {"label", OPT_STR, &sum.label, "a name stored with the --summary line (e.g. sft-lora)", NO_RANGE, 0},
    };
    unsigned char given[CLI_NOPTS(opts)];
    int rc = cli_parse_given("sft", "Supervised fine-tuning on conversations: full, LoRA, freeze or soft prompt.", opts,
                             CLI_NOPTS(opts), argc, argv, 1, given);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : rc;
    char resume_path[4096];
    cli_train_prepare(&o.train, threads, resume_path, sizeof resume_path);
    jl_status st = jl_sft_method_parse(method, &o.method);
    if (st == JL_OK && strcmp(overlong, "truncate") && strcmp(overlong, "skip"))
        st = jl_fail(JL_ERR_ARG, "--overlong must be truncate or skip (got '%s')", overlong);
    o.skip_overlong = !strcmp(overlong, "skip");
    if (st == JL_OK && strcmp(packing, "on") && strcmp(packing, "off"))
        st = jl_fail(JL_ERR_ARG, "--packing must be on or off (got '%s')", packing);
    o.packing = !strcmp(packing, "on");
    if (st == JL_OK && o.train.run.resume) { /* the checkpoint's settings for the flags not given */
        jl_sft_opts saved = o;
        st = jl_sft_opts_of_checkpoint(o.train.run.resume, &saved);
        if (st == JL_OK) cli_train_take_saved(&o.train, &saved.train, opts, CLI_NOPTS(opts), given);
        if (st == JL_OK && !cli_given(opts, CLI_NOPTS(opts), given, &o.T)) o.T = saved.T;
        if (st == JL_OK && !cli_given(opts, CLI_NOPTS(opts), given, &o.eval_batches)) o.eval_batches = saved.eval_batches;
    }
    if (st == JL_OK && strcmp(init, "model") && strcmp(init, "random"))
        st = jl_fail(JL_ERR_ARG, "--init must be model or random (got '%s')", init);

    jl_checkpoint ck = {0};
    jl_tokenizer *tok = NULL;
    jl_sft_set *train = NULL, *held = NULL;
    jl_jsonl_options jo = {.skip_bad = skip_bad};
    jl_jsonl_stats js = {0}, vs = {0};
    if (st == JL_OK) st = jl_checkpoint_load(model, &ck);
    if (st == JL_OK && !strcmp(init, "random")) jl_model_init(ck.model, o.train.run.seed);
    if (st == JL_OK) st = ck.tokenizer_json ? jl_tokenizer_from_json(ck.tokenizer_json, strlen(ck.tokenizer_json), &tok)
                                            : jl_tokenizer_bytes(&tok);
    if (st == JL_OK) st = jl_sft_load(data, &jo, &train, &js);
    if (st == JL_OK && js.skipped)
        fprintf(stderr, "sft: skipped %zu malformed line(s) of %s; first: %s\n", js.skipped, data, js.first_error);
    if (st == JL_OK && val) st = jl_sft_load(val, &jo, &held, &vs);
    if (st == JL_OK && vs.skipped)
        fprintf(stderr, "sft: skipped %zu malformed line(s) of %s; first: %s\n", vs.skipped, val, vs.first_error);
    if (st == JL_OK) {
        if (o.T == 0) o.T = ck.model->cfg.max_seq_len;
        fprintf(stderr, "sft: method %s on %s (%.2fM parameters); %zu conversations%s; batch %d×%d×%d; %ld steps\n",
                jl_sft_method_name(o.method), model, jl_model_num_params(ck.model) / 1e6, jl_sft_count(train),
                held ? " + held-out file" : "", o.train.run.batch, o.T, o.train.optim.accum, o.train.run.steps);
        cli_precision_report("sft", &o.train.run);
        cli_train_view v;
        jl_sft_report rep;
        cli_progress enc;
        cli_progress_start(&enc, "sft: encoding", (double)jl_sft_count(train), "conversations");
        o.progress = on_encode;
        o.progress_user = &enc;
        cli_train_view_start(&v, "sft", o.train.run.steps, NULL);
        jl_chat_format *fmt = NULL; /* the model's own chat template (an imported model), else the built-in one */
        st = jl_chat_format_from_checkpoint(&ck, &fmt);
        o.chat = fmt;
        if (st == JL_OK) st = jl_sft_train(ck.model, tok, train, held, &o, cli_train_on_event, &v, &rep);
        jl_chat_format_free(fmt);
        o.chat = NULL;
        cli_train_view_finish(&v, st);
        if (st == JL_OK || rep.trainable) {
            fprintf(stderr, "sft: %s: trainable %zu of %zu parameters (%.3f%%), ", jl_sft_method_name(o.method),
                    rep.trainable, rep.total, 100.0 * (double)rep.trainable / (double)(rep.total ? rep.total : 1));
            print_bytes("optimizer state ", (double)rep.optimizer_bytes);
            print_bytes(", gradients ", (double)rep.grad_bytes);
            fprintf(stderr, ", %.1f ms/step, %.0f tok/s (%.0f of conversations)\n", rep.ms_per_step, rep.tok_per_s,
                    rep.text_tok_per_s);
            fprintf(stderr, "sft: %zu training conversations, %zu held out; %zu truncated, %zu skipped (too long or "
                            "nothing to learn); padding %.1f%% of row tokens (packing %s; %.1f%% over a whole epoch)\n",
                    rep.examples, rep.val_examples, rep.truncated, rep.skipped, 100.0 * rep.pad_fraction,
                    o.packing ? "on" : "off", 100.0 * rep.epoch_pad_fraction);
            if (rep.result_path[0]) fprintf(stderr, "sft: wrote %s\n", rep.result_path);
        }
        if (st == JL_OK) st = append_summary(&sum, &o, init, &rep);
    }
    jl_sft_free(train);
    jl_sft_free(held);
    jl_tokenizer_free(tok);
    jl_checkpoint_free(&ck);
    return cli_train_exit("sft", st);
}
