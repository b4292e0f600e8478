/* jielong pretrain: train a Transformer from scratch (or continue one) by next-token prediction. */
#include "cli/args.h"
#include "cli/precision.h"
#include "cli/progress.h"
#include "cli/train_data.h"
#include "core/perf.h"
#include "jielong/checkpoint.h"
#include "jielong/pretrain.h"
#include "jielong/tokenizer.h"
#include "model/model.h"
#include "train/optim.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    cli_strs data;
    const char *tokenizer, *model, *resume, *out, *arch, *schedule, *sample_prompt, *data_order;
    long depth, dim, n_layer, n_head, n_kv_head, hidden_dim, context, untied;
    long batch, seq_len, accum, steps, warmup, seed, eval_every, eval_batches, sample_every, sample_tokens;
    long save_every, stop_after, threads;
    const char *precision;
    double lr, min_lr_frac, weight_decay, beta2, grad_clip, val_fraction;
    int untied_flag, arch_given;
} pretrain_args;

#define UNSET (-1)


/* The tokenizer: --tokenizer, else the one beside prepared shards, else the checkpoint's, else bytes. */
static jl_status load_tokenizer(const pretrain_args *a, const jl_checkpoint *ck, jl_tokenizer **tok) {
    if (a->tokenizer) return jl_tokenizer_load(a->tokenizer, tok);
    if (ck && ck->tokenizer_json) return jl_tokenizer_from_json(ck->tokenizer_json, strlen(ck->tokenizer_json), tok);
    if (a->data.n == 1 && cli_is_dir(a->data.v[0])) {
        char path[4096];
        snprintf(path, sizeof path, "%s/tokenizer.json", a->data.v[0]);
        struct stat st;
        if (stat(path, &st) == 0) return jl_tokenizer_load(path, tok);
    }
    return jl_tokenizer_bytes(tok);
}

static jl_status build_config(const pretrain_args *a, int vocab, jl_config *c) {
    cli_model_shape s = {.arch = a->arch, .depth = a->depth, .dim = a->dim, .n_layer = a->n_layer, .n_head = a->n_head,
                         .n_kv_head = a->n_kv_head, .hidden_dim = a->hidden_dim, .context = a->context,
                         .untied = a->untied_flag};
    return cli_build_config(&s, vocab, c);
}

static int model_flags_given(const pretrain_args *a) {
    return a->dim != UNSET || a->n_layer != UNSET || a->n_head != UNSET || a->n_kv_head != UNSET ||
           a->hidden_dim != UNSET || a->context != UNSET || a->untied_flag || a->depth != UNSET || a->arch_given;
}

typedef struct {
    cli_progress bar;
    double last_loss, last_val, last_tps, last_mfu;
} run_view;

static void on_event(void *user, const jl_train_event *ev) {
    run_view *v = user;
    char extra[256];
    switch (ev->kind) {
    case JL_EV_STEP:
        v->last_loss = ev->loss;
        v->last_tps = ev->tok_per_s;
        v->last_mfu = ev->mfu;
        break;
    case JL_EV_SKIP:
        cli_progress_note(&v->bar, "step %ld skipped: loss or gradient not finite", ev->step);
        break;
    case JL_EV_EVAL:
        v->last_val = ev->val_loss;
        cli_progress_note(&v->bar, "step %ld: held-out loss %.4f", ev->step, ev->val_loss);
        break;
    case JL_EV_SAMPLE:
        cli_progress_note(&v->bar, "step %ld sample: %s", ev->step, ev->text);
        break;
    case JL_EV_SAVE:
        cli_progress_note(&v->bar, "step %ld: saved %s", ev->step, ev->path);
        return;
    }
    snprintf(extra, sizeof extra, "loss %.4f%s | %.0f tok/s | mfu %.0f%% of peak", v->last_loss,
             v->last_val > 0 ? "" : "", v->last_tps, 100.0 * v->last_mfu);
    if (v->last_val > 0) {
        size_t n = strlen(extra);
        snprintf(extra + n, sizeof extra - n, " | val %.4f", v->last_val);
    }
    cli_progress_update(&v->bar, (double)ev->step, extra);
}

int cmd_pretrain(int argc, char **argv) {
    pretrain_args a = {.arch = "llama", .schedule = "cosine"};
    long *unset_longs[] = {&a.depth, &a.dim, &a.n_layer, &a.n_head, &a.n_kv_head, &a.hidden_dim, &a.context,
                           &a.batch, &a.seq_len, &a.accum, &a.steps, &a.warmup, &a.seed, &a.eval_every,
                           &a.eval_batches, &a.sample_every, &a.sample_tokens, &a.save_every, &a.stop_after,
                           &a.threads};
    for (size_t i = 0; i < sizeof unset_longs / sizeof unset_longs[0]; i++) *unset_longs[i] = UNSET;
    a.lr = a.min_lr_frac = a.weight_decay = a.beta2 = a.grad_clip = UNSET;
    a.val_fraction = 0.05;
    const char *arch_flag = NULL;
    cli_opt opts[] = {
        {"data", OPT_STRS, &a.data, "training data: a `jielong prepare` folder, .bin shards, or text files", NO_RANGE, 1},
        {"out", OPT_STR, &a.out, "output folder (checkpoint.safetensors, model.safetensors, metrics.jsonl)", NO_RANGE, 1},
        {"tokenizer", OPT_STR, &a.tokenizer, "tokenizer.json for text data (default: the prepared folder's, else bytes)", NO_RANGE, 0},
        {"model", OPT_STR, &a.model, "start from this model checkpoint instead of a fresh initialisation", NO_RANGE, 0},
        {"resume", OPT_STR, &a.resume, "continue a training checkpoint exactly where it stopped", NO_RANGE, 0},
        {"arch", OPT_STR, &arch_flag, "llama (default) or gpt2", NO_RANGE, 0},
        {"depth", OPT_INT, &a.depth, "the size dial: layers = N, width = 64·N, heads = N (default 4)", 1, 64, 0},
        {"dim", OPT_INT, &a.dim, "override the width", 8, 16384, 0},
        {"n-layer", OPT_INT, &a.n_layer, "override the number of layers", 1, 1024, 0},
        {"n-head", OPT_INT, &a.n_head, "override the number of attention heads", 1, 1024, 0},
        {"n-kv-head", OPT_INT, &a.n_kv_head, "key/value heads (grouped-query attention)", 1, 1024, 0},
        {"hidden-dim", OPT_INT, &a.hidden_dim, "override the MLP width", 1, 1 << 20, 0},
        {"context", OPT_INT, &a.context, "context length of the model (default 256)", 1, 1 << 20, 0},
        {"untied", OPT_BOOL, &a.untied_flag, "separate lm head instead of tied embeddings (llama)", NO_RANGE, 0},
        {"batch-size", OPT_INT, &a.batch, "sequences per micro-batch (default 8)", 1, 4096, 0},
        {"seq-len", OPT_INT, &a.seq_len, "tokens per sequence (default: the context length)", 1, 1 << 20, 0},
        {"accum", OPT_INT, &a.accum, "micro-batches per optimizer step (default 1)", 1, 65536, 0},
        {"steps", OPT_INT, &a.steps, "optimizer steps (default 1000)", 1, 1L << 40, 0},
        {"lr", OPT_FLOAT, &a.lr, "peak learning rate (default: by width, 6e-4 at 768)", 1e-8, 10, 0},
        {"min-lr-frac", OPT_FLOAT, &a.min_lr_frac, "final lr as a fraction of the peak (default 0.1)", 0, 1, 0},
        {"warmup", OPT_INT, &a.warmup, "warmup steps (default 5% of steps, at most 100)", 0, 1L << 40, 0},
        {"schedule", OPT_STR, &a.schedule, "cosine (default), linear or constant", NO_RANGE, 0},
        {"weight-decay", OPT_FLOAT, &a.weight_decay, "AdamW decoupled weight decay (default 0.1)", 0, 10, 0},
        {"beta2", OPT_FLOAT, &a.beta2, "AdamW beta2 (default 0.95)", 0, 0.99999, 0},
        {"grad-clip", OPT_FLOAT, &a.grad_clip, "clip the global gradient norm (default 1; 0 = off)", 0, 1e6, 0},
        {"seed", OPT_INT, &a.seed, "initialisation seed (default 1337)", 0, 1L << 62, 0},
        {"data-order", OPT_STR, &a.data_order, "shuffled (default: every epoch visits all windows in a seeded random order) or sequential (file order)", NO_RANGE, 0},
        {"val-fraction", OPT_FLOAT, &a.val_fraction, "held-out share of text data (default 0.05)", 0, 0.5, 0},
        {"eval-every", OPT_INT, &a.eval_every, "held-out loss every N steps (default 100; 0 = off)", 0, 1L << 40, 0},
        {"eval-batches", OPT_INT, &a.eval_batches, "batches per held-out evaluation (default 8)", 1, 100000, 0},
        {"sample-every", OPT_INT, &a.sample_every, "greedy sample every N steps (default 0 = off)", 0, 1L << 40, 0},
        {"sample-tokens", OPT_INT, &a.sample_tokens, "tokens per sample (default 64)", 1, 100000, 0},
        {"sample-prompt", OPT_STR, &a.sample_prompt, "prompt the samples continue", NO_RANGE, 0},
        {"save-every", OPT_INT, &a.save_every, "training checkpoint every N steps (default 500)", 0, 1L << 40, 0},
        {"stop-after", OPT_INT, &a.stop_after, "stop after N steps of this run, with a checkpoint to --resume", 1, 1L << 40, 0},
        {"threads", OPT_INT, &a.threads, "OpenMP threads (default: all cores)", 1, 1024, 0},
        CLI_PRECISION_OPT(a.precision),
    };
    int rc = cli_parse("pretrain", "Pretrain a Transformer by next-token prediction on raw text.", opts,
                       CLI_NOPTS(opts), argc, argv, 1);
    if (rc != CLI_PARSED) {
        free(a.data.v);
        return rc == CLI_HELP_SHOWN ? 0 : rc;
    }
    if (arch_flag) {
        a.arch = arch_flag;
        a.arch_given = 1;
    }
    if (a.threads != UNSET) omp_set_num_threads((int)a.threads);
    jl_pretrain_opts o;
    jl_pretrain_defaults(&o);
    jl_status st = JL_OK;
    jl_checkpoint ck = {0};
    jl_tokenizer *tok = NULL;
    jl_tokens train = {0}, val = {0};
    jl_model *m = NULL;
    int owns_model = 0;
    if (a.resume && a.model) st = jl_fail(JL_ERR_ARG, "--resume and --model cannot be combined");
    if (st == JL_OK && (a.resume || a.model)) st = jl_checkpoint_load(a.resume ? a.resume : a.model, &ck);
    if (st == JL_OK && a.resume) {
        if (!ck.train_state) st = jl_fail(JL_ERR_FORMAT, "%s: not a training checkpoint (no optimizer state)", a.resume);
        else st = jl_pretrain_opts_from_state(ck.train_state, &o);
        if (st != JL_OK) jl_fail_context(st, "%s", a.resume);
    }
    if (st == JL_OK) st = load_tokenizer(&a, &ck, &tok);
    if (st == JL_OK) {
        if (ck.model) {
            m = ck.model;
            if (model_flags_given(&a)) {
                jl_config want;
                st = build_config(&a, jl_tokenizer_vocab_size(tok), &want);
                if (st == JL_OK && !jl_config_equal(&want, &m->cfg))
                    st = jl_fail(JL_ERR_ARG, "%s: checkpoint has another model config than the flags ask for",
                                 a.resume ? a.resume : a.model);
            }
            if (st == JL_OK && m->cfg.vocab_size < jl_tokenizer_vocab_size(tok))
                st = jl_fail(JL_ERR_ARG, "tokenizer has %d tokens, the model only %d", jl_tokenizer_vocab_size(tok),
                             m->cfg.vocab_size);
        } else {
            jl_config c;
            st = build_config(&a, jl_tokenizer_vocab_size(tok), &c);
            if (st == JL_OK) st = jl_model_new(&c, &m);
            owns_model = st == JL_OK;
        }
    }
    /* Flags override defaults; on resume the trajectory-defining ones must agree with the checkpoint. */
    if (st == JL_OK && a.resume) {
        if ((a.batch != UNSET && a.batch != o.B) || (a.seq_len != UNSET && a.seq_len != o.T) ||
            (a.accum != UNSET && a.accum != o.accum))
            st = jl_fail(JL_ERR_ARG, "%s was trained with batch %d×%d×%d; resume with the same batch", a.resume, o.B,
                         o.T, o.accum);
    } else if (st == JL_OK) {
        if (a.batch != UNSET) o.B = (int)a.batch;
        o.T = a.seq_len != UNSET ? (int)a.seq_len : m->cfg.max_seq_len;
        if (a.accum != UNSET) o.accum = (int)a.accum;
        if (a.lr != UNSET) o.lr = (float)a.lr;
        if (a.min_lr_frac != UNSET) o.min_lr_frac = (float)a.min_lr_frac;
        if (a.warmup != UNSET) o.warmup = a.warmup;
        if (a.weight_decay != UNSET) o.weight_decay = (float)a.weight_decay;
        if (a.beta2 != UNSET) o.beta2 = (float)a.beta2;
        if (a.grad_clip != UNSET) o.grad_clip = (float)a.grad_clip;
        if (a.seed != UNSET) o.seed = (uint64_t)a.seed;
        jl_schedule sched;
        st = jl_schedule_parse(a.schedule, &sched);
        o.schedule = sched;
    }
    if (a.steps != UNSET) o.steps = a.steps;
    if (a.eval_every != UNSET) o.eval_every = (int)a.eval_every;
    if (a.eval_batches != UNSET) o.eval_batches = (int)a.eval_batches;
    if (a.sample_every != UNSET) o.sample_every = (int)a.sample_every;
    if (a.sample_tokens != UNSET) o.sample_tokens = (int)a.sample_tokens;
    if (a.save_every != UNSET) o.save_every = (int)a.save_every;
    if (a.stop_after != UNSET) o.stop_after = a.stop_after;
    o.sample_prompt = a.sample_prompt;
    o.out_dir = a.out;
    if (st == JL_OK) st = cli_parse_data_order(a.data_order, &o.data_order);
    if (st == JL_OK) st = cli_load_tokens(&a.data, tok, &train, &val);
    if (st == JL_OK && val.n == 0) st = jl_tokens_split(&train, a.val_fraction, o.T, &val);
    if (st == JL_OK && !a.resume && !a.model) jl_model_init(m, o.seed);
    if (st == JL_OK) {
        st = cli_precision_apply("pretrain", a.precision, &o.peak_gflops);
    }
    if (st == JL_OK) {
        const jl_config *c = &m->cfg;
        fprintf(stderr, "pretrain: %s depth %d, width %d, %d heads (%d kv), %.2fM parameters, vocab %d, context %d\n",
                jl_arch_name(c->arch), c->n_layer, c->dim, c->n_head, c->n_kv_head, jl_model_num_params(m) / 1e6,
                c->vocab_size, c->max_seq_len);
        fprintf(stderr, "pretrain: %zu training tokens, %zu held out; batch %d×%d×%d; %ld steps; "
                        "%d threads\n",
                train.n, val.n, o.B, o.T, o.accum, o.steps, omp_get_max_threads());
        cli_print_coverage("pretrain", o.steps, o.B, o.T, o.accum, o.data_order, train.n);
        run_view view = {0};
        cli_progress_start(&view.bar, "pretrain", (double)o.steps, "steps");
        st = jl_pretrain(m, tok, &train, &val, &o, a.resume ? &ck : NULL, on_event, &view);
        cli_progress_finish(&view.bar, st == JL_OK ? "done" : "stopped");
    }
    jl_tokens_free(&train);
    jl_tokens_free(&val);
    jl_tokenizer_free(tok);
    if (owns_model) jl_model_free(m);
    jl_checkpoint_free(&ck);
    free(a.data.v);
    return cli_report("pretrain", st);
}
