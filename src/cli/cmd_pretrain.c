/* jielong pretrain: train a Transformer from scratch (or continue one) by next-token prediction. */
#include "cli/args.h"
#include "cli/train_cli.h"
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
    const char *tokenizer, *model;
    cli_model_shape shape;
    double val_fraction;
    int threads;
} pretrain_args;

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

/* The model: the checkpoint's (--model, --resume), whose config must be what shape flags ask for, or a fresh one. */
static jl_status load_model(const pretrain_args *a, jl_checkpoint *ck, const jl_tokenizer *tok,
                            jl_model **m, int *owned) {
    const char *path = ck->model ? (a->model ? a->model : "the checkpoint") : NULL;
    jl_config want;
    jl_status st = JL_OK;
    *owned = 0;
    if (!ck->model || a->shape.given) st = cli_build_config(&a->shape, jl_tokenizer_vocab_size(tok), &want);
    if (st != JL_OK) return st;
    if (!ck->model) {
        if ((st = jl_model_new(&want, m)) == JL_OK) *owned = 1;
        return st;
    }
    *m = ck->model;
    if (a->shape.given && !jl_config_equal(&want, &(*m)->cfg))
        return jl_fail(JL_ERR_ARG, "%s: checkpoint has another model config than the flags ask for", path);
    if ((*m)->cfg.vocab_size < jl_tokenizer_vocab_size(tok))
        return jl_fail(JL_ERR_ARG, "tokenizer has %d tokens, the model only %d", jl_tokenizer_vocab_size(tok),
                       (*m)->cfg.vocab_size);
    return JL_OK;
}

int cmd_pretrain(int argc, char **argv) {
    pretrain_args a = {.val_fraction = 0.05};
    a.shape = (cli_model_shape)CLI_MODEL_SHAPE_DEFAULT;
    jl_pretrain_opts o;
    jl_pretrain_defaults(&o);
    o.T = 0; /* 0: the model's context */
    const char *data_order = NULL;
    cli_opt opts[] = {
        {"data", OPT_STRS, &a.data, "training data: a `jielong prepare` folder, .bin shards, or text files", NO_RANGE, 1},
        {"tokenizer", OPT_STR, &a.tokenizer, "tokenizer.json for text data (default: the prepared folder's, else bytes)", NO_RANGE, 0},
        {"model", OPT_STR, &a.model, "start from this model checkpoint instead of a fresh initialisation", NO_RANGE, 0},
        CLI_SHAPE_FLAGS(a.shape, "", "(default 256)"),
        CLI_RUN_FLAGS(o.train, a.threads, "sequences per micro-batch"),
        CLI_ACCUM_FLAG(o.train),
        CLI_OPTIM_FLAGS(o.train),
        {"seq-len", OPT_I32, &o.T, "tokens per sequence (0: the context length)", 0, 1 << 20, 0},
        {"data-order", OPT_STR, &data_order, "shuffled (default: every epoch visits all windows in a seeded random order) or sequential (file order)", NO_RANGE, 0},
        {"val-fraction", OPT_FLOAT, &a.val_fraction, "held-out share of text data (default 0.05)", 0, 0.5, 0},
        {"eval-batches", OPT_I32, &o.eval_batches, "batches per held-out evaluation", 1, 100000, 0},
        {"sample-every", OPT_I32, &o.train.run.sample_every, "greedy sample every N steps (0 = off)", 0, 1 << 30, 0},
        {"max-new-tokens|sample-tokens", OPT_I32, &o.sample_tokens, "tokens per sample", 1, 100000, 0},
        {"sample-prompt", OPT_STR, &o.sample_prompt, "prompt the samples continue", NO_RANGE, 0},
    };
    unsigned char given[CLI_NOPTS(opts)];
    int rc = cli_parse_given("pretrain", "Pretrain a Transformer by next-token prediction on raw text.", opts,
                             CLI_NOPTS(opts), argc, argv, 1, given);
    if (rc != CLI_PARSED) {
        free(a.data.v);
        return rc == CLI_HELP_SHOWN ? 0 : rc;
    }
    cli_shape_given(&a.shape, opts, CLI_NOPTS(opts), given);
    char resume_path[4096];
    cli_train_prepare(&o.train, a.threads, resume_path, sizeof resume_path);
    jl_status st = JL_OK;
    jl_checkpoint ck = {0};
    jl_tokenizer *tok = NULL;
    jl_tokens train = {0}, val = {0};
    jl_model *m = NULL;
    int owns_model = 0;
    const char *resume = o.train.run.resume;
    if (resume && a.model) st = jl_fail(JL_ERR_ARG, "--resume and --model cannot be combined");
    if (st == JL_OK && (resume || a.model)) st = jl_checkpoint_load(resume ? resume : a.model, &ck);
    if (st == JL_OK && resume) { /* the checkpoint's trajectory for the flags not given */
        jl_pretrain_opts saved = o;
        if (!ck.train_state) st = jl_fail(JL_ERR_FORMAT, "%s: not a training checkpoint (no optimizer state)", resume);
        else st = jl_pretrain_opts_from_state(ck.train_state, &saved);
        if (st != JL_OK) jl_fail_context(st, "%s", resume);
        if (st == JL_OK) cli_train_take_saved(&o.train, &saved.train, opts, CLI_NOPTS(opts), given);
        if (st == JL_OK && !cli_given(opts, CLI_NOPTS(opts), given, &o.T)) o.T = saved.T;
        if (st == JL_OK && !cli_given(opts, CLI_NOPTS(opts), given, &o.eval_batches)) o.eval_batches = saved.eval_batches;
    }
    if (st == JL_OK) st = load_tokenizer(&a, &ck, &tok);
    if (st == JL_OK) st = load_model(&a, &ck, tok, &m, &owns_model);
    if (st == JL_OK && o.T == 0) o.T = m->cfg.max_seq_len;
    if (st == JL_OK) st = cli_parse_data_order(data_order, &o.data_order);
    if (st == JL_OK) st = cli_load_tokens(&a.data, tok, &train, &val);
    if (st == JL_OK && val.n == 0) st = jl_tokens_split(&train, a.val_fraction, o.T, &val);
    if (st == JL_OK && !resume && !a.model) jl_model_init(m, o.train.run.seed);
    if (st == JL_OK) {
        const jl_config *c = &m->cfg;
        fprintf(stderr, "pretrain: %s depth %d, width %d, %d heads (%d kv), %.2fM parameters, vocab %d, context %d\n",
                jl_arch_name(c->arch), c->n_layer, c->dim, c->n_head, c->n_kv_head, jl_model_num_params(m) / 1e6,
                c->vocab_size, c->max_seq_len);
        fprintf(stderr, "pretrain: %zu training tokens, %zu held out; batch %d×%d×%d; %ld steps; "
                        "%d threads\n",
                train.n, val.n, o.train.run.batch, o.T, o.train.optim.accum, o.train.run.steps,
                omp_get_max_threads());
        cli_precision_report("pretrain", &o.train.run);
        cli_print_coverage("pretrain", o.train.run.steps, o.train.run.batch, o.T, o.train.optim.accum, o.data_order,
                           train.n);
        cli_train_view view;
        cli_train_view_start(&view, "pretrain", o.train.run.steps, NULL);
        st = jl_pretrain(m, tok, &train, &val, &o, cli_train_on_event, &view);
        cli_train_view_finish(&view, st);
    }
    jl_tokens_free(&train);
    jl_tokens_free(&val);
    jl_tokenizer_free(tok);
    if (owns_model) jl_model_free(m);
    jl_checkpoint_free(&ck);
    free(a.data.v);
    return cli_train_exit("pretrain", st);
}
