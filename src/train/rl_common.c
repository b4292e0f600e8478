#include "train/rl_common.h"
#include "train/rl_dist.h"
#include "jielong/dist.h"
#include "core/kernels.h"
#include "core/rng.h"
#include "core/seqloss.h"
#include "model/lora.h"
#include "io/fileio.h"
#include "jielong/checkpoint.h"
#include "jielong/safetensors.h"
#include "jielong/sft.h"
#include "train/run.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- encoding */

jl_status rl_encode(const jl_tokenizer *tok, const jl_chat_format *fmt, const char *prompt, const char *response,
                    int max_len, const char *what, rl_seq *out) {
    memset(out, 0, sizeof *out);
    if (response && !*response) return jl_fail(JL_ERR_ARG, "%s: response is empty", what);
    return rl_encode_answer(tok, fmt, prompt, response, max_len, what, out);
}

/* The renderer and encoder of sft (jl_sft_tokenize_format, jl_segments_encode): the response is the trained
 * span, and the sequence ends where it ends (what a template writes after its end-of-turn marker, e.g. ChatML's
 * newline, is not part of the answer a rollout samples). */
jl_status rl_encode_answer(const jl_tokenizer *tok, const jl_chat_format *fmt, const char *prompt,
                           const char *response, int max_len, const char *what, rl_seq *out) {
    memset(out, 0, sizeof *out);
    jl_turn turns[2] = {{JL_ROLE_USER, prompt}, {JL_ROLE_ASSISTANT, response ? response : ""}};
    jl_conversation conv = {turns, response ? 2 : 1};
    jl_segments segs = {0};
    uint8_t *train = NULL;
    size_t n = 0;
    jl_status st;
    if (response) {
        st = jl_sft_tokenize_format(tok, fmt, &conv, &segs, &out->ids, &train, &n);
    } else {
        st = jl_chat_format_render_generation(fmt, &conv, &segs);
        if (st == JL_OK) st = jl_segments_encode(tok, &segs, &out->ids, NULL, &n);
    }
    jl_segments_free(&segs);
    out->len = (int)n;
    out->resp_start = out->len;
    if (st == JL_OK && train) {
        size_t first = 0, last = n;
        while (first < n && !train[first]) first++;
        while (last > first && !train[last - 1]) last--;
        out->resp_start = (int)first;
        out->len = (int)last;
    }
    free(train);
    if (st == JL_OK && out->len > max_len)
        st = jl_fail(JL_ERR_ARG, "%s: %s is %d tokens, longer than the context of %d", what,
                     response ? "prompt + response" : "prompt", out->len, max_len);
    if (st != JL_OK) rl_seq_free(out);
    return st;
}

void rl_seq_free(rl_seq *s) {
    free(s->ids);
    memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------- batches */

jl_status rl_batch_new(int cap_rows, int cap_T, rl_batch *b) {
    memset(b, 0, sizeof *b);
    size_t n = (size_t)cap_rows * (size_t)cap_T;
    b->tokens = malloc(n * sizeof *b->tokens);
    b->targets = malloc(n * sizeof *b->targets);
    b->len = malloc((size_t)cap_rows * sizeof *b->len);
    b->resp_start = malloc((size_t)cap_rows * sizeof *b->resp_start);
    b->cap_rows = cap_rows;
    b->cap_T = cap_T;
    if (!b->tokens || !b->targets || !b->len || !b->resp_start) {
        rl_batch_free(b);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    return JL_OK;
}

void rl_batch_free(rl_batch *b) {
    free(b->tokens);
    free(b->targets);
    free(b->len);
    free(b->resp_start);
    memset(b, 0, sizeof *b);
}

void rl_batch_fill(rl_batch *b, const rl_seq *const *seqs, int n) {
    int T = 1;
    for (int r = 0; r < n; r++) T = seqs[r]->len > T ? seqs[r]->len : T;
    b->rows = n;
    b->T = T;
    for (int r = 0; r < n; r++) {
        const rl_seq *s = seqs[r];
        int32_t *tk = b->tokens + (size_t)r * T, *tg = b->targets + (size_t)r * T;
        memcpy(tk, s->ids, (size_t)s->len * sizeof *tk);
        /* padding after the end: causal attention keeps it from touching the real tokens */
        for (int t = s->len; t < T; t++) tk[t] = 0;
        for (int t = 0; t < T; t++) tg[t] = (t + 1 >= s->resp_start && t + 1 < s->len) ? s->ids[t + 1] : -1;
        b->len[r] = s->len;
        b->resp_start[r] = s->resp_start;
    }
}

void rl_forward_logprobs_at(jl_model *m, jl_acts *a, const rl_batch *b, float temperature, float *logp,
                            float *entropy) {
    const jl_config *c = jl_model_config(m);
    jl_model_forward(m, a, b->tokens, NULL, b->rows, b->T, 0.0f, NULL);
    if (temperature > 0 && temperature != 1.0f) { /* (rows·T, V) logits → logits / T */
        const float inv = 1.0f / temperature;
        for (size_t p = 0; p < (size_t)b->rows * b->T; p++) {
            float *z = a->logits + p * c->padded_vocab;
            for (int v = 0; v < c->vocab_size; v++) z[v] *= inv;
        }
    }
    jl_token_logprobs(logp, entropy, a->logits, b->targets, b->rows * b->T, c->vocab_size, c->padded_vocab);
}

void rl_forward_logprobs(jl_model *m, jl_acts *a, const rl_batch *b, float *logp, float *entropy) {
    rl_forward_logprobs_at(m, a, b, 1.0f, logp, entropy);
}

double rl_row_sum(const rl_batch *b, const float *per_pos, int r) {
    double s = 0.0;
    for (int t = 0; t < b->T; t++)
        if (b->targets[(size_t)r * b->T + t] >= 0) s += per_pos[(size_t)r * b->T + t];
    return s;
}

int rl_row_count(const rl_batch *b, int r) {
    int n = 0;
    for (int t = 0; t < b->T; t++) n += b->targets[(size_t)r * b->T + t] >= 0;
    return n;
}

/* ---------------------------------------------------------------- heads */

jl_status rl_head_new(int C, uint64_t seed, rl_head *h) {
    memset(h, 0, sizeof *h);
    h->block = calloc(4 * (size_t)C, sizeof(float));
    if (!h->block) return jl_fail(JL_ERR_NOMEM, "out of memory");
    h->C = C;
    h->w = h->block;
    h->g = h->block + C;
    h->m = h->block + 2 * C;
    h->v = h->block + 3 * C;
    jl_rng rng;
    jl_rng_seed(&rng, seed ^ 0x5C0E5C0E5C0Eull);
    for (int i = 0; i < C; i++) h->w[i] = 0.02f * jl_rng_normal(&rng);
    return JL_OK;
}

void rl_head_free(rl_head *h) {
    free(h->block);
    memset(h, 0, sizeof *h);
}

const float *rl_hidden(const jl_acts *a, const rl_batch *b, int r, int t, int C) {
    return a->lnf + ((size_t)r * b->T + t) * C;
}

jl_status rl_head_save(const rl_head *h, const char *path, const char *tensor) {
    jl_st_writer *w = jl_st_writer_new();
    if (!w) return jl_fail(JL_ERR_NOMEM, "out of memory");
    int64_t shape[2] = {1, h->C};
    jl_status st = jl_st_add_meta(w, "format", "pt");
    if (st == JL_OK) st = jl_st_add(w, tensor, JL_DT_F32, 2, shape, h->w);
    if (st == JL_OK) st = jl_st_write(w, path);
    jl_st_writer_free(w);
    return st;
}

jl_status rl_head_load(const char *path, const char *tensor, int C, rl_head *h) {
    memset(h, 0, sizeof *h);
    jl_st_file *f;
    jl_status st = jl_st_open(path, &f);
    if (st != JL_OK) return st;
    const jl_st_tensor *t = jl_st_find(f, tensor);
    if (!t) st = jl_fail(JL_ERR_FORMAT, "%s: missing tensor '%s'", path, tensor);
    else if (t->dtype != JL_DT_F32 || t->ndim != 2 || t->shape[0] != 1 || t->shape[1] != C)
        st = jl_fail(JL_ERR_FORMAT, "%s: tensor '%s' is not F32 of shape [1, %d] (the model's width)", path, tensor, C);
    if (st == JL_OK) st = rl_head_new(C, 0, h);
    if (st == JL_OK) memcpy(h->w, t->data, (size_t)C * sizeof(float));
    jl_st_close(f);
    return st;
}

/* ---------------------------------------------------------------- optimisation */

jl_status rl_trainer_new(jl_model *m, int rows, int T, const jl_rl_opts *o, long total_updates, jl_trainer **out) {
    jl_trainer_opts to = {.B = rows, .T = T, .accum = 1, .seed = o->train.run.seed ^ 0xD50F0u};
    jl_optim_from_cfg(&o->train.optim, total_updates, &to.opt);
    jl_param_group adapter;
    if (m->lora) { /* the adapter is the trainable block; the (frozen) model gets no gradient buffer */
        adapter = (jl_param_group){jl_lora_params(m->lora), jl_lora_grads(m->lora), jl_lora_num_params(m->lora), 0};
        if (!adapter.grad) return jl_fail(JL_ERR_NOMEM, "out of memory");
        to.extra = &adapter;
        to.n_extra = 1;
    }
    return jl_trainer_new(m, &to, out);
}

void rl_zero_grads(jl_trainer *t, rl_head *head) {
    jl_trainer_zero_grads(t);
    if (head) memset(head->g, 0, (size_t)head->C * sizeof(float));
}

void rl_grad_pass_begin(jl_trainer *t) {
    uint64_t seed = jl_rng_u64(&t->rng); /* drawn every pass, so runs with and without dropout stay in step */
    if (t->model->lora) jl_lora_dropout_begin(t->model->lora, seed);
}

void rl_grad_pass_end(jl_trainer *t) {
    if (t->model->lora) jl_lora_dropout_end(t->model->lora);
}

jl_status rl_update(jl_trainer *t, rl_head *head, double loss, double *grad_norm, float *lr, int *applied) {
    double norm = jl_trainer_grad_norm(t);
    if (head) norm = sqrt(norm * norm + jl_sumsq(head->g, (size_t)head->C));
    *grad_norm = norm;
    *lr = jl_lr_at(&t->o.opt, t->step);
    jl_status st = JL_OK;
    *applied = isfinite(loss) && isfinite(norm);
    if (*applied) {
        if (t->o.opt.grad_clip > 0 && norm > t->o.opt.grad_clip) {
            float s = (float)(t->o.opt.grad_clip / norm);
            for (int i = 0; i < t->n_groups; i++) jl_scale_inplace(t->groups[i].grad, s, t->groups[i].n);
            if (head) jl_scale_inplace(head->g, s, (size_t)head->C);
        }
        st = jl_trainer_adamw(t, *lr);
        if (head)
            jl_adamw_update(head->w, head->g, head->m, head->v, (size_t)head->C, *lr, t->o.opt.beta1, t->o.opt.beta2,
                            t->o.opt.eps, 0.0f, (int)(t->step + 1));
    } else {
        t->skipped++;
    }
    t->step++;
    return st;
}

jl_status rl_dist_mean(jl_trainer *t, rl_head *head, jl_status st, double *stats, int n) {
    const int N = jl_dist_size();
    if (N == 1) return st;
    jl_status sum = jl_trainer_sum_end(t); /* every rank ends the sums it began (jl_trainer_sum_begin) */
    if ((st = rl_dist_sum(st != JL_OK ? st : sum, stats, n)) != JL_OK) return st;
    for (int k = 0; k < n; k++) stats[k] /= N;
    if (head && (st = jl_dist_sum_floats(head->g, (size_t)head->C)) != JL_OK) return st;
    const float inv = 1.0f / (float)N;
    for (int i = 0; i < t->n_groups; i++) jl_scale_inplace(t->groups[i].grad, inv, t->groups[i].n);
    if (head) jl_scale_inplace(head->g, inv, (size_t)head->C);
    return JL_OK;
}

/* ---------------------------------------------------------------- LoRA and the reference */

jl_status rl_lora_begin(jl_model *m, const jl_rl_opts *o, int tokens, jl_lora **out) {
    *out = NULL;
    if (!o->use_lora) return JL_OK;
    jl_status st = jl_lora_new(m, &o->lora, o->train.run.seed ^ 0x4C6F5241ull, out);
    if (st != JL_OK) return st;
    if ((st = jl_model_attach_lora(m, *out, tokens)) != JL_OK) {
        jl_lora_free(*out);
        *out = NULL;
        return st;
    }
    for (int i = 0; i < m->n_tensors; i++) m->tensors[i].frozen = 1;
    return JL_OK;
}

void rl_lora_end(jl_model *m, jl_lora *lr) {
    if (!lr) return;
    m->lora = NULL;
    for (int i = 0; i < m->n_tensors; i++) m->tensors[i].frozen = 0;
    jl_lora_free(lr);
}

jl_status rl_ref_new(jl_model *policy, rl_ref *ref) {
    memset(ref, 0, sizeof *ref);
    ref->policy = policy;
    return policy->lora ? JL_OK : rl_model_clone(policy, &ref->copy);
}

jl_model *rl_ref_enter(rl_ref *ref) {
    if (ref->copy) return ref->copy;
    ref->detached = ref->policy->lora;
    ref->policy->lora = NULL;
    return ref->policy;
}

void rl_ref_leave(rl_ref *ref) {
    if (!ref->copy) ref->policy->lora = ref->detached;
}

void rl_ref_free(rl_ref *ref) {
    jl_model_free(ref->copy);
    memset(ref, 0, sizeof *ref);
}

/* ---------------------------------------------------------------- reporting and saving */

void rl_head_state_save(const rl_head *h, const char *key, json_object *j) {
    jl_state_set_floats(j, key, h->w, (size_t)h->C);
    char k[64];
    snprintf(k, sizeof k, "%s_adam_m", key);
    jl_state_set_floats(j, k, h->m, (size_t)h->C);
    snprintf(k, sizeof k, "%s_adam_v", key);
    jl_state_set_floats(j, k, h->v, (size_t)h->C);
}

jl_status rl_head_state_restore(rl_head *h, const char *key, json_object *j) {
    char km[64], kv[64];
    snprintf(km, sizeof km, "%s_adam_m", key);
    snprintf(kv, sizeof kv, "%s_adam_v", key);
    jl_status st = jl_state_floats(j, key, h->w, (size_t)h->C);
    if (st == JL_OK) st = jl_state_floats(j, km, h->m, (size_t)h->C);
    if (st == JL_OK) st = jl_state_floats(j, kv, h->v, (size_t)h->C);
    for (int i = 0; st == JL_OK && i < h->C; i++)
        if (h->v[i] < 0) st = jl_fail(JL_ERR_FORMAT, "training state: field '%s' holds %g at %d (must be ≥ 0)", kv,
                                      (double)h->v[i], i);
    return st;
}

static uint64_t ref_fingerprint(rl_ref *ref) {
    jl_model *m = rl_ref_enter(ref);
    uint64_t h = jl_params_fingerprint(m->params, m->n_params);
    rl_ref_leave(ref);
    return h;
}

void rl_ref_state_save(rl_ref *ref, json_object *j) { jl_state_set_u64(j, "reference", ref_fingerprint(ref)); }

jl_status rl_ref_state_restore(rl_ref *ref, json_object *j) {
    uint64_t saved;
    jl_status st = jl_state_u64(j, "reference", &saved);
    if (st == JL_OK && saved != ref_fingerprint(ref))
        st = jl_fail(JL_ERR_ARG, "the starting model is not the one this run started from (its reference)");
    return st;
}

jl_status rl_save_model(jl_model *m, const jl_tokenizer *tok, const jl_chat_format *fmt, const char *out_dir,
                        const char *name, char *path_out, size_t path_size) {
    snprintf(path_out, path_size, "%s/%s", out_dir, name);
    return jl_save_model_file(m, tok, fmt, path_out);
}

jl_status rl_save_policy(jl_model *m, const jl_tokenizer *tok, const jl_chat_format *fmt, const char *out_dir,
                         char *path_out, size_t path_size) {
    if (!m->lora) return rl_save_model(m, tok, fmt, out_dir, "model.safetensors", path_out, path_size);
    snprintf(path_out, path_size, "%s/adapter.safetensors", out_dir);
    return jl_lora_save(m->lora, path_out, NULL);
}

jl_status rl_save_merged(jl_model *m, const jl_tokenizer *tok, const jl_chat_format *fmt, const char *out_dir,
                         char *path_out, size_t path_size) {
    if (!m->lora) return rl_save_model(m, tok, fmt, out_dir, "model.safetensors", path_out, path_size);
    jl_model *merged;
    jl_status st = rl_model_clone(m, &merged);
    if (st == JL_OK) st = jl_lora_merge(merged, m->lora);
    if (st == JL_OK) st = rl_save_model(merged, tok, fmt, out_dir, "model.safetensors", path_out, path_size);
    jl_model_free(merged);
    return st;
}

jl_status rl_model_clone(const jl_model *m, jl_model **out) {
    *out = NULL;
    jl_status st = jl_model_require_params(m, "copy model");
    if (st == JL_OK) st = jl_model_new(jl_model_config(m), out);
    if (st == JL_OK) memcpy((*out)->params, m->params, m->n_params * sizeof(float));
    return st;
}

void rl_shuffle(size_t *idx, size_t n, uint64_t *rng_state) {
    jl_rng rng = {*rng_state};
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)jl_rng_below(&rng, i);
        size_t tmp = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = tmp;
    }
    *rng_state = rng.state;
}

void jl_rl_defaults(jl_rl_opts *o, jl_rl_stage stage) {
    memset(o, 0, sizeof *o);
    jl_stage_opts_defaults(&o->train);
    jl_optim_cfg *c = &o->train.optim;
    jl_run_cfg *r = &o->train.run;
    r->batch = stage == JL_STAGE_GRPO || stage == JL_STAGE_PPO ? 4 : 8;
    r->steps = 200;
    r->eval_every = 50;
    r->save_every = 0;
    c->lr = stage == JL_STAGE_REWARD ? 1e-4f : 1e-5f;
    c->weight_decay = 0.0f;
    c->warmup = 0;
    o->eval_fraction = 0.05;
    o->beta = 0.1f;
    o->loss = JL_DPO_SIGMOID;
    o->group = stage == JL_STAGE_PPO ? 1 : 8;
    o->max_new = 64;
    o->temperature = 1.0f;
    o->clip_eps = 0.2f;
    o->kl_coef = stage == JL_STAGE_PPO ? 0.05f : 0.0f;
    o->epochs = stage == JL_STAGE_PPO ? 4 : 1;
    o->minibatches = 1;
    o->gamma = 1.0f;
    o->lam = 0.95f;
    o->vf_coef = 0.1f;
    o->anchor_weight = 1.0f;
    o->value_clip = 0.2f;
    o->kl_horizon = 100;
}
