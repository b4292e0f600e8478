/* jielong distill: train a (smaller) student on a frozen teacher's soft targets over a text corpus, or with
 * --synthesize let the teacher answer prompts to make SFT data (self-instruct). */
#include "cli/args.h"
#include "cli/train_cli.h"
#include "cli/train_data.h"
#include "core/perf.h"
#include "jielong/chat_format.h"
#include "jielong/checkpoint.h"
#include "jielong/distill.h"
#include "jielong/rlhf.h"
#include "model/model.h"
#include "train/optim.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    cli_strs data;
    const char *teacher, *student, *prompts, *out_data, *data_order, *keep_fn;
    cli_model_shape shape;
    long synthesize, max_new_tokens; /* synthesize: used when --synthesize is given */
    int synthesizing;
    double val_fraction, sample_temperature, keep_min, retry_temperature;
    int threads, tries;
    jl_distill_opts o;
} distill_args;

static jl_status load_teacher(const char *path, jl_checkpoint *ck, jl_tokenizer **tok) {
    jl_status st = jl_checkpoint_load(path, ck);
    if (st != JL_OK) return st;
    if (!ck->tokenizer_json) return jl_fail(JL_ERR_FORMAT, "%s: teacher checkpoint has no tokenizer", path);
    st = jl_tokenizer_from_json(ck->tokenizer_json, strlen(ck->tokenizer_json), tok);
    return st == JL_OK ? JL_OK : jl_fail_context(st, "%s", path);
}

static int run_synthesize(const distill_args *a, const jl_checkpoint *teacher, const jl_tokenizer *tok) {
    if (!a->prompts || !a->out_data) {
        fprintf(stderr, "jielong distill: --synthesize needs --prompts FILE.jsonl and --out-data FILE.jsonl\n");
        return 2;
    }
    if (a->tries > 1 && !a->keep_fn) {
        fprintf(stderr, "jielong distill: --tries %d needs --keep-fn (the rule that decides whether to try again)\n",
                a->tries);
        return 2;
    }
    jl_synth_opts so = {.n = (size_t)a->synthesize, .max_new_tokens = (int)a->max_new_tokens,
                        .temperature = (float)a->sample_temperature, .seed = a->o.train.run.seed,
                        .keep_min = (float)a->keep_min, .tries = a->tries,
                        .retry_temperature = (float)a->retry_temperature};
    jl_synth_stats ss;
    jl_chat_format *format = NULL; /* the teacher's own chat template, if it has one */
    jl_status st = a->keep_fn ? jl_reward_fn_by_name(a->keep_fn, &so.keep) : JL_OK;
    if (st == JL_OK) st = jl_chat_format_from_checkpoint(teacher, &format);
    so.format = format;
    if (st == JL_OK) st = jl_distill_synthesize(teacher->model, tok, a->prompts, a->out_data, &so, &ss);
    jl_reward_fn_free(so.keep);
    jl_chat_format_free(format);
    if (st == JL_OK)
        fprintf(stderr, "distill: the teacher answered %zu prompts (%zu answers, %zu tokens); %zu conversations written "
                "to %s; %zu answers rejected by the keep rule, %zu prompts kept only on a later try\n", ss.prompts,
                ss.answers, ss.tokens, ss.written, a->out_data, ss.rejected, ss.retried_kept);
    return cli_report("distill", st);
}

/* The student: a checkpoint (its tokenizer must match the teacher's; with --resume, a training checkpoint of
 * this distillation), else a fresh model of the given shape with the teacher's vocabulary. */
static jl_status load_student(const distill_args *a, const jl_model *teacher, const jl_tokenizer *ttok,
                              jl_checkpoint *sck, jl_model **student, int *owned) {
    *owned = 0;
    const char *resume = a->o.train.run.resume, *path = resume ? resume : a->student;
    if (resume && a->student) return jl_fail(JL_ERR_ARG, "--resume and --student cannot be combined");
    if (path) {
        jl_tokenizer *stok = NULL;
        jl_status st = jl_checkpoint_load(path, sck);
        if (st == JL_OK && !sck->tokenizer_json)
            st = jl_fail(JL_ERR_FORMAT, "student checkpoint has no tokenizer");
        if (st == JL_OK && resume && !sck->train_state)
            st = jl_fail(JL_ERR_FORMAT, "not a training checkpoint (no optimizer state)");
        if (st == JL_OK) st = jl_tokenizer_from_json(sck->tokenizer_json, strlen(sck->tokenizer_json), &stok);
        if (st == JL_OK) st = jl_distill_check_pair(teacher, ttok, sck->model, stok);
        jl_tokenizer_free(stok);
        *student = sck->model;
        return st == JL_OK ? JL_OK : jl_fail_context(st, "%s", path);
    }
    cli_model_shape shape = a->shape;
    if (!(shape.given & CLI_SHAPE_CONTEXT)) shape.context = teacher->cfg.max_seq_len;
    jl_config c;
    jl_status st = cli_build_config(&shape, teacher->cfg.vocab_size, &c);
    if (st == JL_OK) st = jl_model_new(&c, student);
    if (st == JL_OK) {
        *owned = 1;
        jl_model_init(*student, a->o.train.run.seed);
    }
    return st;
}

/* On resume the trajectory comes from the checkpoint for the flags not given (given ones must agree with it:
 * the run refuses them otherwise); T defaults to the smaller context. */
static jl_status distill_options(distill_args *a, const jl_checkpoint *sck, const jl_model *student,
                                 const jl_model *teacher, const cli_opt *opts, int nopts, const unsigned char *given) {
    jl_distill_opts *o = &a->o;
    if (o->train.run.resume) {
        jl_distill_opts saved = *o;
        jl_status st = jl_distill_opts_from_state(sck->train_state, &saved);
        if (st != JL_OK) return jl_fail_context(st, "%s", o->train.run.resume);
        cli_train_take_saved(&o->train, &saved.train, opts, nopts, given);
        if (!cli_given(opts, nopts, given, &o->T)) o->T = saved.T;
        if (!cli_given(opts, nopts, given, &o->eval_batches)) o->eval_batches = saved.eval_batches;
        if (!cli_given(opts, nopts, given, &o->temperature)) o->temperature = saved.temperature;
        if (!cli_given(opts, nopts, given, &o->alpha)) o->alpha = saved.alpha;
    }
    int ctx = student->cfg.max_seq_len < teacher->cfg.max_seq_len ? student->cfg.max_seq_len : teacher->cfg.max_seq_len;
    if (o->T == 0) o->T = ctx;
    o->data_seed = o->train.run.seed;
    return cli_parse_data_order(a->data_order, &o->data_order);
}

static int run_distill(distill_args *a, const jl_checkpoint *tck, const jl_tokenizer *tok, const cli_opt *opts,
                       int nopts, const unsigned char *given) {
    jl_model *teacher = tck->model;
    if (!a->o.train.run.out_dir || a->data.n == 0) {
        fprintf(stderr, "jielong distill: training needs --data and --out (or --synthesize N to make SFT data)\n");
        return 2;
    }
    jl_checkpoint sck = {0};
    jl_model *student = NULL;
    int owned = 0;
    jl_tokens train = {0}, val = {0};
    jl_distill_opts *po = &a->o;
    jl_status st = load_student(a, teacher, tok, &sck, &student, &owned);
    if (st == JL_OK) st = distill_options(a, &sck, student, teacher, opts, nopts, given);
    if (st == JL_OK) st = cli_load_tokens(&a->data, tok, &train, &val);
    if (st == JL_OK && val.n == 0) st = jl_tokens_split(&train, a->val_fraction, po->T, &val);
    jl_chat_format *chat = NULL; /* the student keeps its own chat template, else takes the teacher's */
    if (st == JL_OK) st = jl_chat_format_from_checkpoint(sck.chat_template ? &sck : tck, &chat);
    if (st == JL_OK) {
        jl_distill_opts o = *po;
        o.chat = chat;
        cli_precision_report("distill", &o.train.run);
        fprintf(stderr, "distill: teacher %.2fM parameters (depth %d, width %d) → student %.2fM (depth %d, width %d); "
                        "τ %.2f, α %.2f; %zu training tokens, %zu held out; batch %d×%d×%d; %ld steps\n",
                jl_model_num_params(teacher) / 1e6, teacher->cfg.n_layer, teacher->cfg.dim,
                jl_model_num_params(student) / 1e6, student->cfg.n_layer, student->cfg.dim, o.temperature, o.alpha,
                train.n, val.n, o.train.run.batch, o.T, o.train.optim.accum, o.train.run.steps);
        cli_print_coverage("distill", o.train.run.steps, o.train.run.batch, o.T, o.train.optim.accum, o.data_order,
                           train.n);
        cli_train_view view;
        cli_train_view_start(&view, "distill", o.train.run.steps, (const char *const[]){"kl", NULL});
        st = jl_distill(student, teacher, tok, &train, &val, &o, cli_train_on_event, &view);
        cli_train_view_finish(&view, st);
    }
    jl_chat_format_free(chat);
    jl_tokens_free(&train);
    jl_tokens_free(&val);
    if (owned) jl_model_free(student);
    jl_checkpoint_free(&sck);
    return cli_train_exit("distill", st);
}

int cmd_distill(int argc, char **argv) {
    distill_args a = {.val_fraction = 0.05, .max_new_tokens = 128, .sample_temperature = 0.0, .keep_min = 1.0,
                    .tries = 1, .retry_temperature = 0.8};
    a.shape = (cli_model_shape)CLI_MODEL_SHAPE_DEFAULT;
    jl_distill_defaults(&a.o);
    a.o.T = 0; /* 0: the smaller context */
    jl_stage_opts *t = &a.o.train;
    cli_opt opts[] = {
        {"teacher", OPT_STR, &a.teacher, "teacher checkpoint (frozen; any size)", NO_RANGE, 1},
        {"student", OPT_STR, &a.student, "student checkpoint to start from (default: a fresh model of --depth ...)", NO_RANGE, 0},
        {"data", OPT_STRS, &a.data, "training text: a `jielong prepare` folder, .bin shards, or text files", NO_RANGE, 0},
        {"data-order", OPT_STR, &a.data_order, "shuffled (default: every epoch visits all windows in a seeded random order) or sequential (file order)", NO_RANGE, 0},
        {"temperature", OPT_F32, &a.o.temperature, "softmax temperature τ of the soft targets", 0.01, 100, 0},
        {"alpha", OPT_F32, &a.o.alpha, "weight of the soft (KL) term; 1-alpha on hard labels", 0, 1, 0},
        CLI_SHAPE_FLAGS(a.shape, "fresh student: ", "(default: the teacher's)"),
        CLI_RUN_FLAGS(*t, a.threads, "sequences per micro-batch"),
        CLI_ACCUM_FLAG(*t),
        CLI_OPTIM_FLAGS(*t),
        {"seq-len", OPT_I32, &a.o.T, "tokens per sequence (0: the smaller context)", 0, 1 << 20, 0},
        {"val-fraction", OPT_FLOAT, &a.val_fraction, "held-out share of text data (default 0.05)", 0, 0.5, 0},
        {"eval-batches", OPT_I32, &a.o.eval_batches, "batches per held-out evaluation", 1, 100000, 0},
        {"synthesize", OPT_INT, &a.synthesize, "instead of training: the teacher answers the first N prompts (0 = all)", 0, 1L << 40, 0},
        {"prompts", OPT_STR, &a.prompts, "--synthesize: prompts (RL-prompt or SFT JSONL)", NO_RANGE, 0},
        {"out-data", OPT_STR, &a.out_data, "--synthesize: SFT messages JSONL to write", NO_RANGE, 0},
        {"max-new-tokens", OPT_INT, &a.max_new_tokens, "--synthesize: tokens per answer (default 128)", 1, 1 << 20, 0},
        {"sample-temperature", OPT_FLOAT, &a.sample_temperature, "--synthesize: 0 = greedy (default)", 0, 100, 0},
        {"keep-fn", OPT_STR, &a.keep_fn, "--synthesize with RL prompts: keep only answers this rule reward (poem, "
                                         "contains, answer, ...) scores at least --keep-min", NO_RANGE, 0},
        {"keep-min", OPT_FLOAT, &a.keep_min, "--synthesize: the score an answer needs to be kept (default 1)", -1e9, 1e9, 0},
        {"tries", OPT_I32, &a.tries, "--synthesize with --keep-fn: answers drawn per prompt until the rule keeps one "
                                     "(rejection sampling; default 1)", 1, 1000, 0},
        {"retry-temperature", OPT_FLOAT, &a.retry_temperature, "--synthesize: sampling temperature of the 2nd and "
                                                               "later tries (default 0.8)", 1e-3, 100, 0},
    };
    for (int i = 0; i < CLI_NOPTS(opts); i++)
        if (opts[i].dest == &t->run.out_dir) opts[i].required = 0; /* not with --synthesize */
    unsigned char given[CLI_NOPTS(opts)];
    int rc = cli_parse_given("distill", "Distil a teacher into a student (soft targets), or synthesize SFT data with it.",
                             opts, CLI_NOPTS(opts), argc, argv, 1, given);
    if (rc != CLI_PARSED) {
        free(a.data.v);
        return rc == CLI_HELP_SHOWN ? 0 : rc;
    }
    cli_shape_given(&a.shape, opts, CLI_NOPTS(opts), given);
    a.synthesizing = cli_given(opts, CLI_NOPTS(opts), given, &a.synthesize);
    char resume_path[4096];
    cli_train_prepare(t, a.threads, resume_path, sizeof resume_path);
    jl_checkpoint tck = {0};
    jl_tokenizer *tok = NULL;
    jl_status st = load_teacher(a.teacher, &tck, &tok);
    if (st == JL_OK)
        rc = a.synthesizing ? run_synthesize(&a, &tck, tok)
                                   : run_distill(&a, &tck, tok, opts, CLI_NOPTS(opts), given);
    else rc = cli_report("distill", st);
    jl_tokenizer_free(tok);
    jl_checkpoint_free(&tck);
    free(a.data.v);
    return rc;
}
