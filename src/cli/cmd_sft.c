/* jielong sft: supervised fine-tuning of a model on conversations (full, LoRA, freeze, soft prompt). */
#include "cli/args.h"
#include "cli/precision.h"
#include "cli/progress.h"
#include "jielong/checkpoint.h"
#include "jielong/sft.h"
#include "train/optim.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNSET (-1)

typedef struct {
    cli_progress bar;
    double loss, val, tps;
} view;

static void on_event(void *user, const jl_train_event *ev) {
    view *v = user;
    switch (ev->kind) {
    case JL_EV_STEP: v->loss = ev->loss, v->tps = ev->tok_per_s; break;
    case JL_EV_SKIP: cli_progress_note(&v->bar, "step %ld skipped: loss or gradient not finite", ev->step); break;
    case JL_EV_EVAL:
        v->val = ev->val_loss;
        cli_progress_note(&v->bar, "step %ld: held-out assistant loss %.4f", ev->step, ev->val_loss);
        break;
    case JL_EV_SAVE: cli_progress_note(&v->bar, "step %ld: saved %s", ev->step, ev->path); return;
    default: break;
    }
    char extra[160];
    snprintf(extra, sizeof extra, "loss %.4f | %.0f tok/s%s", v->loss, v->tps, "");
    if (v->val > 0) snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " | val %.4f", v->val);
    cli_progress_update(&v->bar, (double)ev->step, extra);
}

static void print_bytes(const char *label, double bytes) {
    char buf[32];
    cli_format_si(bytes, buf, sizeof buf);
    fprintf(stderr, "%s%sB", label, buf);
}

int cmd_sft(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *val = NULL, *out = NULL, *method = "full", *schedule = "cosine";
    const char *overlong = "truncate", *packing = "on", *targets = NULL, *train_layers = NULL, *freeze_layers = NULL;
    long batch = UNSET, seq_len = UNSET, accum = UNSET, steps = UNSET, warmup = UNSET, seed = UNSET;
    long eval_every = UNSET, eval_batches = UNSET, save_every = UNSET, stop_after = UNSET, threads = UNSET;
    long rank = UNSET, prompt_tokens = UNSET, train_last = UNSET;
    double lr = UNSET, weight_decay = UNSET, grad_clip = UNSET, alpha = UNSET, dropout = UNSET, val_fraction = UNSET;
    int resume = 0, skip_bad = 0, train_head = 0;
    const char *precision = NULL;
    cli_opt opts[] = {
        {"model", OPT_STR, &model, "base model checkpoint (model.safetensors from pretrain)", NO_RANGE, 1},
        {"data", OPT_STR, &data, "conversations, JSONL: {\"messages\":[...]} or Alpaca {instruction,input,output}", NO_RANGE, 1},
        {"out", OPT_STR, &out, "output folder (result, checkpoint.safetensors, metrics.jsonl)", NO_RANGE, 1},
        {"method", OPT_STR, &method, "full (default), lora, freeze or prompt", NO_RANGE, 0},
        {"val", OPT_STR, &val, "held-out conversations (default: the last --val-fraction of --data)", NO_RANGE, 0},
        {"val-fraction", OPT_FLOAT, &val_fraction, "held-out share of --data without --val (default 0.05)", 0, 0.5, 0},
        {"skip-bad", OPT_BOOL, &skip_bad, "skip malformed JSONL lines (reported) instead of stopping at the first", NO_RANGE, 0},
        {"overlong", OPT_STR, &overlong, "conversations longer than --seq-len: truncate (default, counted) or skip", NO_RANGE, 0},
        {"batch-size", OPT_INT, &batch, "rows per micro-batch (default 8)", 1, 4096, 0},
        {"seq-len", OPT_INT, &seq_len, "tokens per row (default: context)", 2, 1 << 20, 0},
        {"packing", OPT_STR, &packing, "on (default): conversations packed into rows by best fit, each attending only "
                                       "to itself with its own positions (exact: the same loss as one per row, "
                                       "every method); off: one conversation per row, padded", NO_RANGE, 0},
        {"accum", OPT_INT, &accum, "micro-batches per optimizer step (default 1)", 1, 65536, 0},
        {"steps", OPT_INT, &steps, "optimizer steps (default 500)", 1, 1L << 40, 0},
        {"lr", OPT_FLOAT, &lr, "peak learning rate (default: lora 5e-3, prompt 1e-3, full/freeze width default / 3)", 1e-8, 10, 0},
        {"warmup", OPT_INT, &warmup, "warmup steps (default 5% of steps, at most 100)", 0, 1L << 40, 0},
        {"schedule", OPT_STR, &schedule, "cosine (default), linear or constant", NO_RANGE, 0},
        {"weight-decay", OPT_FLOAT, &weight_decay, "AdamW weight decay of model matrices (default 0)", 0, 10, 0},
        {"grad-clip", OPT_FLOAT, &grad_clip, "clip the global gradient norm (default 1; 0 = off)", 0, 1e6, 0},
        {"seed", OPT_INT, &seed, "data order, adapter init and dropout (default 1337)", 0, 1L << 62, 0},
        {"eval-every", OPT_INT, &eval_every, "held-out loss every N steps (default 100; 0 = off)", 0, 1L << 40, 0},
        {"eval-batches", OPT_INT, &eval_batches, "batches per held-out evaluation (default 0 = all)", 0, 1000000, 0},
        {"save-every", OPT_INT, &save_every, "training checkpoint every N steps (default 500)", 0, 1L << 40, 0},
        {"stop-after", OPT_INT, &stop_after, "stop after N steps of this run, with a checkpoint for --resume", 1, 1L << 40, 0},
        {"resume", OPT_BOOL, &resume, "continue the run in --out from its checkpoint.safetensors (same flags)", NO_RANGE, 0},
        {"lora-rank", OPT_INT, &rank, "lora: rank r (default 8; raise it, e.g. 32, when the adapter underfits: held-out loss well above full SFT's)", 1, 4096, 0},
        {"lora-alpha", OPT_FLOAT, &alpha, "lora: alpha; scale = alpha / r (default 16)", 1e-6, 1e6, 0},
        {"lora-dropout", OPT_FLOAT, &dropout, "lora: dropout on the adapter input (default 0.05)", 0, 0.99, 0},
        {"lora-targets", OPT_STR, &targets, "lora: q,k,v,o,gate,up,down (gpt2: qkv,o,fc,down) or attn|mlp|all (default all; attn alone learns far less)", NO_RANGE, 0},
        {"prompt-tokens", OPT_INT, &prompt_tokens, "prompt: virtual tokens (default 16)", 1, 1 << 20, 0},
        {"train-last", OPT_INT, &train_last, "freeze: train the last N blocks", 1, 1 << 20, 0},
        {"train-layers", OPT_STR, &train_layers, "freeze: train these blocks, e.g. 0-3,7", NO_RANGE, 0},
        {"train-head", OPT_BOOL, &train_head, "freeze: also train the final norm and lm head", NO_RANGE, 0},
        {"freeze-layers", OPT_STR, &freeze_layers, "freeze: freeze these blocks, train everything else", NO_RANGE, 0},
        {"threads", OPT_INT, &threads, "OpenMP threads (default: all cores)", 1, 1024, 0},
        CLI_PRECISION_OPT(precision),
    };
    int rc = cli_parse("sft", "Supervised fine-tuning on conversations: full, LoRA, freeze or soft prompt.", opts,
                       CLI_NOPTS(opts), argc, argv, 1);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : rc;
    if (threads != UNSET) omp_set_num_threads((int)threads);
    jl_sft_opts o;
    jl_sft_defaults(&o);
    double peak;
    jl_status st = cli_precision_apply("sft", precision, &peak);
    if (st == JL_OK) st = jl_sft_method_parse(method, &o.method);
    jl_schedule sched = JL_SCHED_COSINE;
    if (st == JL_OK) st = jl_schedule_parse(schedule, &sched);
    if (st == JL_OK && strcmp(overlong, "truncate") && strcmp(overlong, "skip"))
        st = jl_fail(JL_ERR_ARG, "--overlong must be truncate or skip (got '%s')", overlong);
    o.schedule = sched;
    o.skip_overlong = !strcmp(overlong, "skip");
    if (st == JL_OK && strcmp(packing, "on") && strcmp(packing, "off"))
        st = jl_fail(JL_ERR_ARG, "--packing must be on or off (got '%s')", packing);
    o.packing = !strcmp(packing, "on");
    o.out_dir = out;
    if (batch != UNSET) o.B = (int)batch;
    if (accum != UNSET) o.accum = (int)accum;
    if (steps != UNSET) o.steps = steps;
    if (lr != UNSET) o.lr = (float)lr;
    if (warmup != UNSET) o.warmup = warmup;
    if (weight_decay != UNSET) o.weight_decay = (float)weight_decay;
    if (grad_clip != UNSET) o.grad_clip = (float)grad_clip;
    if (seed != UNSET) o.seed = (uint64_t)seed;
    if (eval_every != UNSET) o.eval_every = (int)eval_every;
    if (eval_batches != UNSET) o.eval_batches = (int)eval_batches;
    if (save_every != UNSET) o.save_every = (int)save_every;
    if (stop_after != UNSET) o.stop_after = stop_after;
    if (val_fraction != UNSET) o.val_fraction = val_fraction;
    if (rank != UNSET) o.lora.rank = (int)rank;
    if (alpha != UNSET) o.lora.alpha = (float)alpha;
    if (dropout != UNSET) o.lora.dropout = (float)dropout;
    if (targets) o.lora.targets = targets;
    if (prompt_tokens != UNSET) o.prompt_tokens = (int)prompt_tokens;
    if (train_last != UNSET) o.train_last = (int)train_last;
    o.train_layers = train_layers;
    o.train_head = train_head;
    o.freeze_layers = freeze_layers;

    jl_checkpoint ck = {0};
    jl_tokenizer *tok = NULL;
    jl_sft_set *train = NULL, *held = NULL;
    jl_jsonl_options jo = {.skip_bad = skip_bad};
    jl_jsonl_stats js = {0}, vs = {0};
    if (st == JL_OK) st = jl_checkpoint_load(model, &ck);
    if (st == JL_OK) st = ck.tokenizer_json ? jl_tokenizer_from_json(ck.tokenizer_json, strlen(ck.tokenizer_json), &tok)
                                            : jl_tokenizer_bytes(&tok);
    if (st == JL_OK) st = jl_sft_load(data, &jo, &train, &js);
    if (st == JL_OK && js.skipped)
        fprintf(stderr, "sft: skipped %zu malformed line(s) of %s; first: %s\n", js.skipped, data, js.first_error);
    if (st == JL_OK && val) st = jl_sft_load(val, &jo, &held, &vs);
    if (st == JL_OK && vs.skipped)
        fprintf(stderr, "sft: skipped %zu malformed line(s) of %s; first: %s\n", vs.skipped, val, vs.first_error);
    if (st == JL_OK) {
        o.T = seq_len != UNSET ? (int)seq_len : ck.model->cfg.max_seq_len;
        fprintf(stderr, "sft: method %s on %s (%.2fM parameters); %zu conversations%s; batch %d×%d×%d; %ld steps\n",
                jl_sft_method_name(o.method), model, jl_model_num_params(ck.model) / 1e6, jl_sft_count(train),
                held ? " + held-out file" : "", o.B, o.T, o.accum, o.steps);
        view v = {0};
        jl_sft_report rep;
        cli_progress_start(&v.bar, "sft", (double)o.steps, "steps");
        st = jl_sft_train(ck.model, tok, train, held, &o, resume, on_event, &v, &rep);
        cli_progress_finish(&v.bar, st == JL_OK ? "done" : "stopped");
        if (st == JL_OK || rep.trainable) {
            fprintf(stderr, "sft: %s: trainable %zu of %zu parameters (%.3f%%), ", jl_sft_method_name(o.method),
                    rep.trainable, rep.total, 100.0 * (double)rep.trainable / (double)(rep.total ? rep.total : 1));
            print_bytes("optimizer state ", (double)rep.optimizer_bytes);
            print_bytes(", gradients ", (double)rep.grad_bytes);
            fprintf(stderr, ", %.1f ms/step, %.0f tok/s (%.0f of conversations)\n", rep.ms_per_step, rep.tok_per_s,
                    rep.text_tok_per_s);
            fprintf(stderr, "sft: %zu training conversations, %zu held out; %zu truncated, %zu skipped (too long or "
                            "nothing to learn); padding %.1f%% of row tokens (packing %s)\n",
                    rep.examples, rep.val_examples, rep.truncated, rep.skipped, 100.0 * rep.pad_fraction,
                    o.packing ? "on" : "off");
            if (!isnan(rep.last_val))
                fprintf(stderr, "sft: held-out assistant loss %.4f -> %.4f\n", rep.first_val, rep.last_val);
            if (rep.result_path[0]) fprintf(stderr, "sft: wrote %s\n", rep.result_path);
        }
    }
    jl_sft_free(train);
    jl_sft_free(held);
    jl_tokenizer_free(tok);
    jl_checkpoint_free(&ck);
    return cli_report("sft", st);
}
