/* jielong pretrain: next-token prediction over a token stream (a thin loop over the trainer). */
#include "jielong/pretrain.h"
#include "jielong/metrics.h"
#include "core/timer.h"
#include "io/fileio.h"
#include "model/model.h"
#include "train/steplog.h"
#include "train/train_state.h"
#include "train/stream.h"
#include "train/trainer.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


void jl_pretrain_defaults(jl_pretrain_opts *o) {
    memset(o, 0, sizeof *o);
    o->B = 8;
    o->T = 256;
    o->accum = 1;
    o->steps = 1000;
    o->lr = 0; /* 0: the width's default (jl_config_default_lr) */
    o->min_lr_frac = 0.1f;
    o->weight_decay = 0.1f;
    o->beta1 = 0.9f;
    o->beta2 = 0.95f;
    o->grad_clip = 1.0f;
    o->warmup = -1; /* -1: 5% of the steps, at most 100 */
    o->schedule = JL_SCHED_COSINE;
    o->seed = 1337;
    o->eval_every = 100;
    o->eval_batches = 8;
    o->sample_every = 0;
    o->sample_tokens = 64;
    o->save_every = 500;
}

static jl_status greedy_sample(jl_trainer *t, const jl_tokenizer *tok, const char *prompt, int n_new, char **text) {
    jl_model *m = t->model;
    const int T = t->o.T, V = m->cfg.vocab_size, Vp = m->cfg.padded_vocab;
    int32_t *ids = NULL;
    size_t n = 0;
    jl_status st = jl_tokenizer_encode(tok, prompt, strlen(prompt), 0, &ids, &n);
    if (st != JL_OK) return st;
    int32_t *seq = malloc(sizeof(int32_t) * (n + (size_t)n_new + 1));
    if (!seq) {
        free(ids);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    size_t len = 0;
    int32_t bos = jl_tokenizer_special(tok, "<|bos|>"), eos = jl_tokenizer_special(tok, "<|eos|>");
    if (bos >= 0) seq[len++] = bos;
    memcpy(seq + len, ids, n * sizeof(int32_t));
    len += n;
    free(ids);
    size_t prompt_len = len;
    for (int i = 0; i < n_new; i++) {
        size_t ctx = len < (size_t)T ? len : (size_t)T;
        jl_model_forward(m, &t->acts, seq + len - ctx, NULL, 1, (int)ctx, 0.0f, NULL);
        const float *row = t->acts.logits + (ctx - 1) * (size_t)Vp;
        int32_t best = 0;
        for (int v = 1; v < V; v++)
            if (row[v] > row[best]) best = v;
        if (best == eos || best == bos) break;
        seq[len++] = best;
    }
    size_t text_len;
    size_t skip = bos >= 0 ? 1 : 0;
    st = jl_tokenizer_decode(tok, seq + skip, len - skip, text, &text_len);
    (void)prompt_len;
    free(seq);
    return st;
}

static jl_status save_checkpoint(const char *path, jl_trainer *t, const jl_tokenizer *tok, const jl_pretrain_opts *o,
                                 const jl_token_stream *s, int with_optimizer) {
    return jl_train_state_save(path, "pretrain", t, tok, o, s, NULL, 0, with_optimizer);
}

static void emit(jl_event_fn fn, void *user, jl_train_event *ev) {
    if (fn) fn(user, ev);
}

static jl_status check_opts(const jl_model *m, const jl_tokens *train, const jl_pretrain_opts *o) {
    if (o->B < 1 || o->T < 1) return jl_fail(JL_ERR_ARG, "batch size and sequence length must be ≥ 1");
    if (o->T > m->cfg.max_seq_len)
        return jl_fail(JL_ERR_ARG, "sequence length %d is larger than the model's context %d", o->T, m->cfg.max_seq_len);
    if (train->n < (size_t)o->T + 1)
        return jl_fail(JL_ERR_ARG, "training data has %zu tokens, fewer than one sequence of %d", train->n, o->T + 1);
    for (size_t i = 0; i < train->n; i++)
        if (train->ids[i] < 0 || train->ids[i] >= m->cfg.vocab_size)
            return jl_fail(JL_ERR_FORMAT, "token %d at position %zu is outside the model's vocabulary (%d)",
                           train->ids[i], i, m->cfg.vocab_size);
    if (o->steps < 1) return jl_fail(JL_ERR_ARG, "steps must be ≥ 1");
    return JL_OK;
}

jl_status jl_pretrain(jl_model *m, const jl_tokenizer *tok, const jl_tokens *train, const jl_tokens *val,
                      const jl_pretrain_opts *opts, const jl_checkpoint *resume, jl_event_fn on_event, void *user) {
    jl_pretrain_opts o = *opts;
    jl_status st = check_opts(m, train, &o);
    if (st != JL_OK) return st;
    if (o.lr <= 0) o.lr = jl_config_default_lr(&m->cfg);
    if (o.warmup < 0) o.warmup = o.steps / 20 < 100 ? o.steps / 20 : 100;
    int have_val = val && val->n >= (size_t)o.T + 1;

    jl_trainer_opts to = {.B = o.B, .T = o.T, .accum = o.accum};
    jl_train_state_optim(&o, &to.opt);
    jl_trainer *t = NULL;
    if ((st = jl_mkdir_p(o.out_dir)) != JL_OK || (st = jl_trainer_new(m, &to, &t)) != JL_OK) return st;
    jl_token_stream s = {.data = train, .shuffle = o.data_order == JL_DATA_SHUFFLED, .seed = o.seed};
    if (resume && (st = jl_train_state_resume(resume, "pretrain", t, &s, &o)) != JL_OK) {
        jl_trainer_free(t);
        return st;
    }

    char metrics_path[4096], ckpt_path[4096], model_path[4096];
    snprintf(metrics_path, sizeof metrics_path, "%s/metrics.jsonl", o.out_dir);
    snprintf(ckpt_path, sizeof ckpt_path, "%s/checkpoint.safetensors", o.out_dir);
    snprintf(model_path, sizeof model_path, "%s/model.safetensors", o.out_dir);
    if (!resume) unlink(metrics_path); /* a fresh run starts a fresh log */
    jl_metrics *log = NULL;
    if ((st = jl_metrics_open(metrics_path, &log)) != JL_OK) {
        jl_trainer_free(t);
        return st;
    }

    jl_step_log steps = {.log = log, .stage = "pretrain", .total_steps = o.steps, .on_event = on_event, .user = user,
                         .flops_per_step = jl_model_train_flops(&m->cfg, o.B, o.T) * o.accum,
                         .peak_gflops = o.peak_gflops};
    long steps_this_run = 0;
    while (t->step < o.steps && st == JL_OK) {
        jl_step_stats ss;
        if ((st = jl_trainer_step(t, jl_stream_batch, &s, &ss)) != JL_OK) break;
        steps_this_run++;
        long step = t->step;
        if ((st = jl_step_log_write(&steps, step, &ss, 0, NULL, NULL)) != JL_OK) break;
        int last = step == o.steps || (o.stop_after > 0 && steps_this_run >= o.stop_after);
        if (have_val && o.eval_every > 0 && (step % o.eval_every == 0 || last)) {
            jl_token_stream vs = jl_stream_spread(val, o.B, o.T, o.eval_batches);
            double val_loss;
            if ((st = jl_trainer_eval(t, jl_stream_batch, &vs, o.eval_batches, &val_loss)) != JL_OK) break;
            const char *vk[] = {"val_loss"};
            if ((st = jl_metrics_log(log, "pretrain", step, 1, vk, &val_loss)) != JL_OK) break;
            jl_train_event e2 = {.kind = JL_EV_EVAL, .step = step, .total_steps = o.steps, .val_loss = val_loss};
            emit(on_event, user, &e2);
        }
        if (o.sample_every > 0 && (step % o.sample_every == 0 || last)) {
            char *text = NULL;
            if ((st = greedy_sample(t, tok, o.sample_prompt ? o.sample_prompt : "", o.sample_tokens, &text)) != JL_OK)
                break;
            jl_train_event e3 = {.kind = JL_EV_SAMPLE, .step = step, .total_steps = o.steps, .text = text};
            emit(on_event, user, &e3);
            free(text);
        }
        if ((o.save_every > 0 && step % o.save_every == 0) || last) {
            if ((st = save_checkpoint(ckpt_path, t, tok, &o, &s, 1)) != JL_OK) break;
            jl_train_event e4 = {.kind = JL_EV_SAVE, .step = step, .total_steps = o.steps, .path = ckpt_path};
            emit(on_event, user, &e4);
        }
        if (last) break;
    }
    if (st == JL_OK && t->step == o.steps) {
        st = save_checkpoint(model_path, t, tok, &o, &s, 0);
        jl_train_event e5 = {.kind = JL_EV_SAVE, .step = t->step, .total_steps = o.steps, .path = model_path};
        if (st == JL_OK) emit(on_event, user, &e5);
    }
    jl_metrics_close(log);
    jl_trainer_free(t);
    return st;
}
