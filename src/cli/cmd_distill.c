/* jielong distill: train a (smaller) student on a frozen teacher's soft targets over a text corpus, or with
 * --synthesize let the teacher answer prompts to make SFT data (self-instruct). */
#include "cli/args.h"
#include "cli/precision.h"
#include "cli/progress.h"
#include "cli/train_data.h"
#include "core/perf.h"
#include "jielong/checkpoint.h"
#include "jielong/distill.h"
#include "model/model.h"
#include "train/optim.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNSET CLI_UNSET

typedef struct {
    cli_strs data;
    const char *teacher, *student, *resume, *out, *schedule, *prompts, *out_data, *data_order;
    cli_model_shape shape;
    long batch, seq_len, accum, steps, warmup, seed, eval_every, eval_batches, save_every, stop_after, threads;
    const char *precision;
    long synthesize, max_new_tokens;
    double lr, min_lr_frac, weight_decay, grad_clip, val_fraction, temperature, alpha, sample_temperature;
} distill_args;

static jl_status load_teacher(const char *path, jl_checkpoint *ck, jl_tokenizer **tok) {
    jl_status st = jl_checkpoint_load(path, ck);
    if (st != JL_OK) return st;
    if (!ck->tokenizer_json) return jl_fail(JL_ERR_FORMAT, "%s: teacher checkpoint has no tokenizer", path);
    st = jl_tokenizer_from_json(ck->tokenizer_json, strlen(ck->tokenizer_json), tok);
    return st == JL_OK ? JL_OK : jl_fail_context(st, "%s", path);
}

static int run_synthesize(const distill_args *a, jl_model *teacher, const jl_tokenizer *tok) {
    if (!a->prompts || !a->out_data) {
        fprintf(stderr, "jielong distill: --synthesize needs --prompts FILE.jsonl and --out-data FILE.jsonl\n");
        return 2;
    }
    jl_synth_opts so = {.n = (size_t)a->synthesize, .max_new_tokens = (int)a->max_new_tokens,
                        .temperature = (float)a->sample_temperature, .seed = (uint64_t)a->seed};
    jl_synth_stats ss;
    jl_status st = jl_distill_synthesize(teacher, tok, a->prompts, a->out_data, &so, &ss);
    if (st == JL_OK)
        fprintf(stderr, "distill: the teacher answered %zu prompts (%zu tokens); %zu conversations written to %s\n",
                ss.prompts, ss.tokens, ss.written, a->out_data);
    return cli_report("distill", st);
}

typedef struct {
    cli_progress bar;
    double loss, val, tps;
} run_view;

static void on_event(void *user, const jl_train_event *ev) {
    run_view *v = user;
    switch (ev->kind) {
    case JL_EV_STEP:
        v->loss = ev->loss;
        v->tps = ev->tok_per_s;
        break;
    case JL_EV_SKIP:
        cli_progress_note(&v->bar, "step %ld skipped: loss or gradient not finite", ev->step);
        break;
    case JL_EV_EVAL:
        v->val = ev->val_loss;
        cli_progress_note(&v->bar, "step %ld: student held-out loss %.4f", ev->step, ev->val_loss);
        break;
    case JL_EV_SAVE:
        cli_progress_note(&v->bar, "step %ld: saved %s", ev->step, ev->path);
        return;
    default:
        break;
    }
    char extra[160];
    snprintf(extra, sizeof extra, "loss %.4f | %.0f tok/s", v->loss, v->tps);
    if (v->val > 0) snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " | val %.4f", v->val);
    cli_progress_update(&v->bar, (double)ev->step, extra);
}

/* The student: a checkpoint (its tokenizer must match the teacher's; with --resume, a training checkpoint of
 * this distillation), else a fresh model of the given shape with the teacher's vocabulary. */
static jl_status load_student(const distill_args *a, const jl_model *teacher, const jl_tokenizer *ttok,
                              jl_checkpoint *sck, jl_model **student, int *owned) {
    *owned = 0;
    const char *path = a->resume ? a->resume : a->student;
    if (a->resume && a->student) return jl_fail(JL_ERR_ARG, "--resume and --student cannot be combined");
    if (path) {
        jl_tokenizer *stok = NULL;
        jl_status st = jl_checkpoint_load(path, sck);
        if (st == JL_OK && !sck->tokenizer_json)
            st = jl_fail(JL_ERR_FORMAT, "student checkpoint has no tokenizer");
        if (st == JL_OK && a->resume && !sck->train_state)
            st = jl_fail(JL_ERR_FORMAT, "not a training checkpoint (no optimizer state)");
        if (st == JL_OK) st = jl_tokenizer_from_json(sck->tokenizer_json, strlen(sck->tokenizer_json), &stok);
        if (st == JL_OK) st = jl_distill_check_pair(teacher, ttok, sck->model, stok);
        jl_tokenizer_free(stok);
        *student = sck->model;
        return st == JL_OK ? JL_OK : jl_fail_context(st, "%s", path);
    }
    cli_model_shape shape = a->shape;
    if (shape.context == UNSET) shape.context = teacher->cfg.max_seq_len;
    jl_config c;
    jl_status st = cli_build_config(&shape, teacher->cfg.vocab_size, &c);
    if (st == JL_OK) st = jl_model_new(&c, student);
    if (st == JL_OK) {
        *owned = 1;
        jl_model_init(*student, (uint64_t)a->seed);
    }
    return st;
}

/* Flags over the defaults; on resume the trajectory comes from the checkpoint and flags that shape it must
 * agree with it (steps, evaluation and saving may change). */
static jl_status distill_options(const distill_args *a, const jl_checkpoint *sck, const jl_model *student,
                                 const jl_model *teacher, jl_distill_opts *o) {
    if (a->resume) {
        jl_status st = jl_distill_opts_from_state(sck->train_state, o);
        if (st != JL_OK) return jl_fail_context(st, "%s", a->resume);
        if ((a->batch != UNSET && a->batch != o->B) || (a->seq_len != UNSET && a->seq_len != o->T) ||
            (a->accum != UNSET && a->accum != o->accum) || (a->temperature != UNSET && (float)a->temperature != o->temperature) ||
            (a->alpha != UNSET && (float)a->alpha != o->alpha))
            return jl_fail(JL_ERR_ARG, "%s was distilled with batch %d×%d×%d, temperature %g, alpha %g; resume with "
                                       "the same", a->resume, o->B, o->T, o->accum, (double)o->temperature,
                           (double)o->alpha);
    } else {
        int ctx = student->cfg.max_seq_len < teacher->cfg.max_seq_len ? student->cfg.max_seq_len : teacher->cfg.max_seq_len;
        o->T = a->seq_len != UNSET ? (int)a->seq_len : ctx;
        if (a->batch != UNSET) o->B = (int)a->batch;
        if (a->accum != UNSET) o->accum = (int)a->accum;
        if (a->lr != UNSET) o->lr = (float)a->lr;
        if (a->min_lr_frac != UNSET) o->min_lr_frac = (float)a->min_lr_frac;
        if (a->warmup != UNSET) o->warmup = a->warmup;
        if (a->weight_decay != UNSET) o->weight_decay = (float)a->weight_decay;
        if (a->grad_clip != UNSET) o->grad_clip = (float)a->grad_clip;
        if (a->temperature != UNSET) o->temperature = (float)a->temperature;
        if (a->alpha != UNSET) o->alpha = (float)a->alpha;
        jl_schedule sched;
        jl_status st = jl_schedule_parse(a->schedule, &sched);
        if (st != JL_OK) return st;
        o->schedule = sched;
    }
    if (a->steps != UNSET) o->steps = a->steps;
    if (a->eval_every != UNSET) o->eval_every = (int)a->eval_every;
    if (a->eval_batches != UNSET) o->eval_batches = (int)a->eval_batches;
    if (a->save_every != UNSET) o->save_every = (int)a->save_every;
    if (a->stop_after != UNSET) o->stop_after = a->stop_after;
    o->out_dir = a->out;
    o->data_seed = (uint64_t)a->seed;
    return cli_parse_data_order(a->data_order, &o->data_order);
}

static int run_distill(distill_args *a, jl_model *teacher, const jl_tokenizer *tok) {
    if (!a->out || a->data.n == 0) {
        fprintf(stderr, "jielong distill: training needs --data and --out (or --synthesize N to make SFT data)\n");
        return 2;
    }
    jl_checkpoint sck = {0};
    jl_model *student = NULL;
    int owned = 0;
    jl_tokens train = {0}, val = {0};
    jl_distill_opts o;
    jl_distill_defaults(&o);
    jl_status st = load_student(a, teacher, tok, &sck, &student, &owned);
    if (st == JL_OK) st = distill_options(a, &sck, student, teacher, &o);
    if (st == JL_OK) st = cli_load_tokens(&a->data, tok, &train, &val);
    if (st == JL_OK && val.n == 0) st = jl_tokens_split(&train, a->val_fraction, o.T, &val);
    if (st == JL_OK) {
        st = cli_precision_apply("distill", a->precision, &o.peak_gflops);
    }
    if (st == JL_OK) {
        fprintf(stderr, "distill: teacher %.2fM parameters (depth %d, width %d) → student %.2fM (depth %d, width %d); "
                        "τ %.2f, α %.2f; %zu training tokens, %zu held out; batch %d×%d×%d; %ld steps\n",
                jl_model_num_params(teacher) / 1e6, teacher->cfg.n_layer, teacher->cfg.dim,
                jl_model_num_params(student) / 1e6, student->cfg.n_layer, student->cfg.dim, o.temperature, o.alpha,
                train.n, val.n, o.B, o.T, o.accum, o.steps);
        cli_print_coverage("distill", o.steps, o.B, o.T, o.accum, o.data_order, train.n);
        run_view view = {0};
        cli_progress_start(&view.bar, "distill", (double)o.steps, "steps");
        st = jl_distill(student, teacher, tok, &train, &val, &o, a->resume ? &sck : NULL, on_event, &view);
        cli_progress_finish(&view.bar, st == JL_OK ? "done" : "stopped");
    }
    jl_tokens_free(&train);
    jl_tokens_free(&val);
    if (owned) jl_model_free(student);
    jl_checkpoint_free(&sck);
    return cli_report("distill", st);
}

int cmd_distill(int argc, char **argv) {
    distill_args a = {.schedule = "cosine", .temperature = UNSET, .alpha = UNSET, .val_fraction = 0.05,
                      .max_new_tokens = 128, .sample_temperature = 0.0};
    a.shape = (cli_model_shape){.arch = "llama"};
    long *unset[] = {&a.shape.depth, &a.shape.dim, &a.shape.n_layer, &a.shape.n_head, &a.shape.n_kv_head,
                     &a.shape.hidden_dim, &a.shape.context, &a.batch, &a.seq_len, &a.accum, &a.steps, &a.warmup,
                     &a.eval_every, &a.eval_batches, &a.save_every, &a.stop_after, &a.threads};
    for (size_t i = 0; i < sizeof unset / sizeof unset[0]; i++) *unset[i] = UNSET;
    a.lr = a.min_lr_frac = a.weight_decay = a.grad_clip = UNSET;
    a.seed = 1337;
    cli_opt opts[] = {
        {"teacher", OPT_STR, &a.teacher, "teacher checkpoint (frozen; any size)", NO_RANGE, 1},
        {"student", OPT_STR, &a.student, "student checkpoint to start from (default: a fresh model of --depth ...)", NO_RANGE, 0},
        {"resume", OPT_STR, &a.resume, "continue a distillation from its checkpoint.safetensors exactly where it stopped", NO_RANGE, 0},
        {"data", OPT_STRS, &a.data, "training text: a `jielong prepare` folder, .bin shards, or text files", NO_RANGE, 0},
        {"data-order", OPT_STR, &a.data_order, "shuffled (default: every epoch visits all windows in a seeded random order) or sequential (file order)", NO_RANGE, 0},
        {"out", OPT_STR, &a.out, "output folder (checkpoint.safetensors, model.safetensors, metrics.jsonl)", NO_RANGE, 0},
        {"temperature", OPT_FLOAT, &a.temperature, "softmax temperature τ of the soft targets (default 1)", 0.01, 100, 0},
        {"alpha", OPT_FLOAT, &a.alpha, "weight of the soft (KL) term; 1-alpha on hard labels (default 0.5)", 0, 1, 0},
        {"arch", OPT_STR, &a.shape.arch, "fresh student: llama (default) or gpt2", NO_RANGE, 0},
        {"depth", OPT_INT, &a.shape.depth, "fresh student: layers = N, width = 64·N (default 4)", 1, 64, 0},
        {"dim", OPT_INT, &a.shape.dim, "fresh student: width", 8, 16384, 0},
        {"n-layer", OPT_INT, &a.shape.n_layer, "fresh student: layers", 1, 1024, 0},
        {"n-head", OPT_INT, &a.shape.n_head, "fresh student: attention heads", 1, 1024, 0},
        {"n-kv-head", OPT_INT, &a.shape.n_kv_head, "fresh student: key/value heads", 1, 1024, 0},
        {"hidden-dim", OPT_INT, &a.shape.hidden_dim, "fresh student: MLP width", 1, 1 << 20, 0},
        {"context", OPT_INT, &a.shape.context, "fresh student: context length (default: the teacher's)", 1, 1 << 20, 0},
        {"untied", OPT_BOOL, &a.shape.untied, "fresh student: separate lm head (llama)", NO_RANGE, 0},
        {"batch-size", OPT_INT, &a.batch, "sequences per micro-batch (default 8)", 1, 4096, 0},
        {"seq-len", OPT_INT, &a.seq_len, "tokens per sequence (default: the smaller context)", 1, 1 << 20, 0},
        {"accum", OPT_INT, &a.accum, "micro-batches per optimizer step (default 1)", 1, 65536, 0},
        {"steps", OPT_INT, &a.steps, "optimizer steps (default 1000)", 1, 1L << 40, 0},
        {"lr", OPT_FLOAT, &a.lr, "peak learning rate (default: by the student's width)", 1e-8, 10, 0},
        {"min-lr-frac", OPT_FLOAT, &a.min_lr_frac, "final lr as a fraction of the peak (default 0.1)", 0, 1, 0},
        {"warmup", OPT_INT, &a.warmup, "warmup steps (default 5% of steps, at most 100)", 0, 1L << 40, 0},
        {"schedule", OPT_STR, &a.schedule, "cosine (default), linear or constant", NO_RANGE, 0},
        {"weight-decay", OPT_FLOAT, &a.weight_decay, "AdamW decoupled weight decay (default 0.1)", 0, 10, 0},
        {"grad-clip", OPT_FLOAT, &a.grad_clip, "clip the global gradient norm (default 1; 0 = off)", 0, 1e6, 0},
        {"seed", OPT_INT, &a.seed, "fresh student initialisation and sampling seed (default 1337)", 0, 1L << 62, 0},
        {"val-fraction", OPT_FLOAT, &a.val_fraction, "held-out share of text data (default 0.05)", 0, 0.5, 0},
        {"eval-every", OPT_INT, &a.eval_every, "student held-out loss every N steps (default 100; 0 = off)", 0, 1L << 40, 0},
        {"eval-batches", OPT_INT, &a.eval_batches, "batches per held-out evaluation (default 8)", 1, 100000, 0},
        {"save-every", OPT_INT, &a.save_every, "training checkpoint every N steps (default 500)", 0, 1L << 40, 0},
        {"stop-after", OPT_INT, &a.stop_after, "stop after N steps of this run, with a checkpoint to --resume", 1, 1L << 40, 0},
        {"synthesize", OPT_INT, &a.synthesize, "instead of training: the teacher answers the first N prompts (0 = all)", 0, 1L << 40, 0},
        {"prompts", OPT_STR, &a.prompts, "--synthesize: prompts (RL-prompt or SFT JSONL)", NO_RANGE, 0},
        {"out-data", OPT_STR, &a.out_data, "--synthesize: SFT messages JSONL to write", NO_RANGE, 0},
        {"max-new-tokens", OPT_INT, &a.max_new_tokens, "--synthesize: tokens per answer (default 128)", 1, 1 << 20, 0},
        {"sample-temperature", OPT_FLOAT, &a.sample_temperature, "--synthesize: 0 = greedy (default)", 0, 100, 0},
        {"threads", OPT_INT, &a.threads, "OpenMP threads (default: all cores)", 1, 1024, 0},
        CLI_PRECISION_OPT(a.precision),
    };
    a.synthesize = UNSET;
    int rc = cli_parse("distill", "Distil a teacher into a student (soft targets), or synthesize SFT data with it.",
                       opts, CLI_NOPTS(opts), argc, argv, 1);
    if (rc != CLI_PARSED) {
        free(a.data.v);
        return rc == CLI_HELP_SHOWN ? 0 : rc;
    }
    if (a.threads != UNSET) omp_set_num_threads((int)a.threads);
    jl_checkpoint tck = {0};
    jl_tokenizer *tok = NULL;
    jl_status st = load_teacher(a.teacher, &tck, &tok);
    if (st == JL_OK) rc = a.synthesize != UNSET ? run_synthesize(&a, tck.model, tok) : run_distill(&a, tck.model, tok);
    else rc = cli_report("distill", st);
    jl_tokenizer_free(tok);
    jl_checkpoint_free(&tck);
    free(a.data.v);
    return rc;
}
