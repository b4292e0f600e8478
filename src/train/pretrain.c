/* jielong pretrain: next-token prediction over a token stream, a stage of the one loop (train/run.h). */
#include "jielong/chat_format.h"
#include "jielong/pretrain.h"
#include "model/model.h"
#include "train/run.h"
#include "train/stream.h"
#include "train/trainer.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jl_pretrain_defaults(jl_pretrain_opts *o) {
    memset(o, 0, sizeof *o);
    jl_stage_opts_defaults(&o->train);
    o->train.run.batch = 8;
    o->train.run.steps = 1000;
    o->T = 256;
    o->eval_batches = 8;
    o->sample_tokens = 64;
}

jl_status jl_pretrain_opts_from_state(const char *text, jl_pretrain_opts *o) {
    json_object *j = json_tokener_parse(text);
    jl_status st = j && json_object_is_type(j, json_type_object)
                       ? jl_state_read_opts(j, &o->train)
                       : jl_fail(JL_ERR_FORMAT, "training state is not a JSON object");
    long T, eval_batches = o->eval_batches;
    if (st == JL_OK && (st = jl_state_long(j, "T", 1, 1L << 20, &T)) == JL_OK) o->T = (int)T;
    if (st == JL_OK && (st = jl_state_long_opt(j, "eval_batches", 0, 1L << 20, &eval_batches)) == JL_OK)
        o->eval_batches = (int)eval_batches;
    json_object_put(j);
    return st;
}

/* Greedy continuation of prompt with the trainer's activations (full forward per token). */
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
    int32_t bos = jl_tokenizer_bos(tok), eos = jl_tokenizer_eos(tok); /* jielong's or a foreign tokenizer's own */
    if (bos >= 0) seq[len++] = bos;
    memcpy(seq + len, ids, n * sizeof(int32_t));
    len += n;
    free(ids);
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
    size_t text_len, skip = bos >= 0 ? 1 : 0;
    st = jl_tokenizer_decode(tok, seq + skip, len - skip, text, &text_len);
    free(seq);
    return st;
}

static jl_status check_opts(const jl_model *m, const jl_tokens *train, const jl_pretrain_opts *o) {
    if (o->train.run.batch < 1 || o->T < 1) return jl_fail(JL_ERR_ARG, "batch size and sequence length must be ≥ 1");
    if (o->T > m->cfg.max_seq_len)
        return jl_fail(JL_ERR_ARG, "sequence length %d is larger than the model's context %d", o->T, m->cfg.max_seq_len);
    if (train->n < (size_t)o->T + 1)
        return jl_fail(JL_ERR_ARG, "training data has %zu tokens, fewer than one sequence of %d", train->n, o->T + 1);
    for (size_t i = 0; i < train->n; i++)
        if (train->ids[i] < 0 || train->ids[i] >= m->cfg.vocab_size)
            return jl_fail(JL_ERR_FORMAT, "token %d at position %zu is outside the model's vocabulary (%d)",
                           train->ids[i], i, m->cfg.vocab_size);
    if (o->train.run.steps < 1) return jl_fail(JL_ERR_ARG, "steps must be ≥ 1");
    return JL_OK;
}

/* ---------------------------------------------------------------- the stage */

typedef struct {
    jl_pretrain_opts o;
    jl_trainer *t;
    const jl_tokenizer *tok;
    jl_token_stream s;
    const jl_tokens *val;
    char out_model[4096];
} pretrain_stage;

static jl_status ps_step(void *self, jl_stage_step *out) {
    pretrain_stage *p = self;
    jl_step_stats ss;
    jl_status st = jl_trainer_step(p->t, jl_stream_batch, &p->s, &ss);
    if (st != JL_OK) return st;
    *out = (jl_stage_step){.loss = ss.loss, .grad_norm = ss.grad_norm, .lr = ss.lr, .tokens = ss.tokens,
                           .seconds = ss.seconds, .skipped = ss.skipped ? "loss or gradient not finite" : NULL};
    return JL_OK;
}

static jl_status ps_eval(void *self, long step, jl_metric_set *out) {
    pretrain_stage *p = self;
    (void)step;
    if (!p->val || p->val->n < (size_t)p->o.T + 1 || p->o.eval_batches < 1) return JL_OK;
    jl_token_stream vs = jl_stream_spread(p->val, p->o.train.run.batch, p->o.T, p->o.eval_batches);
    double v;
    jl_status st = jl_trainer_eval(p->t, jl_stream_batch, &vs, p->o.eval_batches, &v);
    if (st == JL_OK) jl_metric_add(out, "val_loss", v);
    return st;
}

static jl_status ps_sample(void *self, char **text) {
    pretrain_stage *p = self;
    return greedy_sample(p->t, p->tok, p->o.sample_prompt ? p->o.sample_prompt : "", p->o.sample_tokens, text);
}

jl_status jl_stream_state_save(const jl_token_stream *s, int T, json_object *j) {
    json_object_object_add(j, "data_pos", json_object_new_int64((int64_t)s->pos));
    json_object_object_add(j, "epoch", json_object_new_int64(s->epoch));
    json_object_object_add(j, "T", json_object_new_int(T));
    json_object_object_add(j, "data_order", json_object_new_string(s->shuffle ? "shuffled" : "sequential"));
    jl_state_set_u64(j, "data_seed", s->seed);
    return JL_OK;
}

jl_status jl_stream_state_restore(jl_token_stream *s, int T, json_object *j) {
    long pos, epoch, saved_T;
    jl_status st = jl_state_long(j, "T", 1, 1L << 20, &saved_T);
    if (st == JL_OK && saved_T != T)
        st = jl_fail(JL_ERR_ARG, "the checkpoint was trained with sequence length %ld, not %d", saved_T, T);
    json_object *v;
    const char *order = json_object_object_get_ex(j, "data_order", &v) ? json_object_get_string(v) : "";
    int shuffled = strcmp(order, "shuffled") == 0;
    if (st == JL_OK && !shuffled && strcmp(order, "sequential") != 0)
        st = jl_fail(JL_ERR_FORMAT, "training state: field 'data_order' is '%.20s', not shuffled or sequential", order);
    if (st == JL_OK && shuffled != s->shuffle)
        st = jl_fail(JL_ERR_ARG, "checkpoint read its data in %s order; resume with --data-order %s",
                     shuffled ? "shuffled" : "sequential", shuffled ? "shuffled" : "sequential");
    if (st == JL_OK) st = jl_state_u64(j, "data_seed", &s->seed);
    if (st == JL_OK) st = jl_state_long(j, "data_pos", 0, (long)s->data->n, &pos);
    if (st == JL_OK) st = jl_state_long(j, "epoch", 0, 1L << 50, &epoch);
    if (st != JL_OK) return st;
    s->pos = (size_t)pos;
    s->epoch = epoch;
    return JL_OK;
}

static jl_status ps_save_state(void *self, json_object *j) {
    pretrain_stage *p = self;
    json_object_object_add(j, "eval_batches", json_object_new_int(p->o.eval_batches)); /* the held-out set's size */
    return jl_stream_state_save(&p->s, p->o.T, j);
}

static jl_status ps_restore_state(void *self, json_object *j) {
    pretrain_stage *p = self;
    return jl_stream_state_restore(&p->s, p->o.T, j);
}

jl_status jl_save_model_file(jl_model *m, const jl_tokenizer *tok, const jl_chat_format *chat, const char *path) {
    jl_checkpoint ck = {.model = m};
    if (!jl_chat_format_is_builtin(chat)) {
        ck.chat_template = (char *)jl_chat_format_template(chat);
        ck.bos_token = (char *)jl_chat_format_bos(chat);
        ck.eos_token = (char *)jl_chat_format_eos(chat);
    }
    jl_status st = jl_tokenizer_to_json(tok, &ck.tokenizer_json);
    if (st == JL_OK) st = jl_checkpoint_save(path, &ck);
    free(ck.tokenizer_json);
    return st;
}

static jl_status ps_save_result(void *self, char *path, size_t size) {
    pretrain_stage *p = self;
    snprintf(path, size, "%s/model.safetensors", p->o.train.run.out_dir);
    return jl_save_model_file(p->t->model, p->tok, NULL, path);
}

static const jl_stage_i pretrain_i = {
    .name = "pretrain", .step = ps_step, .evaluate = ps_eval, .sample = ps_sample, .save_state = ps_save_state,
    .restore_state = ps_restore_state, .save_result = ps_save_result};

jl_status jl_pretrain(jl_model *m, const jl_tokenizer *tok, const jl_tokens *train, const jl_tokens *val,
                      const jl_pretrain_opts *opts, jl_event_fn on_event, void *user) {
    pretrain_stage p = {.o = *opts, .tok = tok, .val = val,
                        .s = {.data = train, .shuffle = opts->data_order == JL_DATA_SHUFFLED, .seed = opts->train.run.seed}};
    jl_stage_opts *o = &p.o.train;
    jl_status st = check_opts(m, train, &p.o);
    if (st != JL_OK) return st;
    if (o->optim.lr <= 0) o->optim.lr = jl_config_default_lr(&m->cfg);
    o->optim.warmup = jl_default_warmup(o->optim.warmup, o->run.steps);
    if (p.o.eval_batches < 1) o->run.eval_every = 0;
    jl_trainer_opts to = {.B = o->run.batch, .T = p.o.T, .accum = o->optim.accum};
    jl_optim_from_cfg(&o->optim, o->run.steps, &to.opt);
    if ((st = jl_trainer_new(m, &to, &p.t)) != JL_OK) return st;
    jl_stage s = {.i = &pretrain_i, .self = &p, .what = {.t = p.t, .tok = tok}, .o = o, .steps_may_change = 1,
                  .data_parallel = 1, .flops_per_step = jl_model_train_flops(&m->cfg, o->run.batch, p.o.T) * o->optim.accum};
    if (!p.o.sample_tokens) o->run.sample_every = 0;
    st = jl_train_run(&s, on_event, user);
    jl_trainer_free(p.t);
    return st;
}
