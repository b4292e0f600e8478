/* Training state for exact resume (see train_state.h): written and read as JSON by json-c. */
#include "train/train_state.h"
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *jl_train_state_json(const char *stage, const jl_pretrain_opts *o, long step, const jl_token_stream *s,
                          const jl_state_extra *extra, int n_extra) {
    json_object *j = json_object_new_object();
    json_object_object_add(j, "stage", json_object_new_string(stage));
    json_object_object_add(j, "step", json_object_new_int64(step));
    json_object_object_add(j, "data_pos", json_object_new_int64((int64_t)s->pos));
    json_object_object_add(j, "epoch", json_object_new_int64(s->epoch));
    json_object_object_add(j, "data_order", json_object_new_string(s->shuffle ? "shuffled" : "sequential"));
    json_object_object_add(j, "data_seed", json_object_new_uint64(s->seed));
    json_object_object_add(j, "B", json_object_new_int(o->B));
    json_object_object_add(j, "T", json_object_new_int(o->T));
    json_object_object_add(j, "accum", json_object_new_int(o->accum));
    json_object_object_add(j, "steps", json_object_new_int64(o->steps));
    json_object_object_add(j, "lr", json_object_new_double(o->lr));
    json_object_object_add(j, "min_lr_frac", json_object_new_double(o->min_lr_frac));
    json_object_object_add(j, "warmup", json_object_new_int64(o->warmup));
    json_object_object_add(j, "schedule", json_object_new_int(o->schedule));
    json_object_object_add(j, "weight_decay", json_object_new_double(o->weight_decay));
    json_object_object_add(j, "beta1", json_object_new_double(o->beta1));
    json_object_object_add(j, "beta2", json_object_new_double(o->beta2));
    json_object_object_add(j, "grad_clip", json_object_new_double(o->grad_clip));
    json_object_object_add(j, "seed", json_object_new_int64((int64_t)o->seed));
    for (int i = 0; i < n_extra; i++) json_object_object_add(j, extra[i].key, json_object_new_double(extra[i].value));
    char *text = strdup(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
    json_object_put(j);
    return text;
}

static int state_get(json_object *j, const char *key, double *out) {
    json_object *v;
    if (!json_object_object_get_ex(j, key, &v)) return 0;
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) return 0;
    *out = json_object_get_double(v);
    return 1;
}

jl_status jl_pretrain_opts_from_state(const char *text, jl_pretrain_opts *o) {
    json_object *j = json_tokener_parse(text);
    if (!j || !json_object_is_type(j, json_type_object)) {
        json_object_put(j);
        return jl_fail(JL_ERR_FORMAT, "training state is not a JSON object");
    }
    static const char *const keys[] = {"B", "T", "accum", "steps", "lr", "min_lr_frac", "warmup", "schedule",
                                       "weight_decay", "beta1", "beta2", "grad_clip", "seed"};
    double v[13];
    for (int i = 0; i < 13; i++)
        if (!state_get(j, keys[i], &v[i])) {
            json_object_put(j);
            return jl_fail(JL_ERR_FORMAT, "training state: field '%s' missing or not a number", keys[i]);
        }
    json_object_put(j);
    o->B = (int)v[0];
    o->T = (int)v[1];
    o->accum = (int)v[2];
    o->steps = (long)v[3];
    o->lr = (float)v[4];
    o->min_lr_frac = (float)v[5];
    o->warmup = (long)v[6];
    o->schedule = (int)v[7];
    o->weight_decay = (float)v[8];
    o->beta1 = (float)v[9];
    o->beta2 = (float)v[10];
    o->grad_clip = (float)v[11];
    o->seed = (uint64_t)v[12];
    return JL_OK;
}

jl_status jl_train_state_number(const char *state, const char *key, double *out) {
    json_object *j = json_tokener_parse(state);
    int ok = j && state_get(j, key, out);
    json_object_put(j);
    return ok ? JL_OK : jl_fail(JL_ERR_FORMAT, "training state: field '%s' missing or not a number", key);
}

jl_status jl_train_state_check_stage(const char *state, const char *stage) {
    json_object *j = json_tokener_parse(state), *v;
    char saved[32];
    snprintf(saved, sizeof saved, "%s", j && json_object_object_get_ex(j, "stage", &v) ? json_object_get_string(v) : "");
    json_object_put(j);
    if (strcmp(saved, stage) == 0) return JL_OK;
    return jl_fail(JL_ERR_ARG, "a %s checkpoint cannot resume %s", saved[0] ? saved : "stage-less", stage);
}

/* The saved run must have walked its data in the order this one will (checkpoints before shuffling: sequential);
 * the shuffled order's seed is the checkpoint's, as the position is. */
static jl_status check_data_order(const char *state, jl_token_stream *s) {
    json_object *j = json_tokener_parse(state), *v;
    int shuffled = 0;
    uint64_t seed = s->seed;
    if (j && json_object_object_get_ex(j, "data_order", &v)) shuffled = strcmp(json_object_get_string(v), "shuffled") == 0;
    if (j && json_object_object_get_ex(j, "data_seed", &v)) seed = json_object_get_uint64(v);
    json_object_put(j);
    if (shuffled != s->shuffle)
        return jl_fail(JL_ERR_ARG, "checkpoint read its data in %s order; resume with --data-order %s",
                       shuffled ? "shuffled" : "sequential", shuffled ? "shuffled" : "sequential");
    s->seed = seed;
    return JL_OK;
}

jl_status jl_train_state_resume(const jl_checkpoint *ck, const char *stage, jl_trainer *t, jl_token_stream *s,
                                const jl_pretrain_opts *o) {
    if (!ck->train_state || !ck->adam_m)
        return jl_fail(JL_ERR_FORMAT, "not a training checkpoint (no optimizer state); use it as --model instead");
    jl_pretrain_opts saved = *o;
    jl_status st = jl_train_state_check_stage(ck->train_state, stage);
    if (st == JL_OK) st = jl_pretrain_opts_from_state(ck->train_state, &saved);
    if (st != JL_OK) return st;
    if (saved.B != o->B || saved.T != o->T || saved.accum != o->accum)
        return jl_fail(JL_ERR_ARG, "checkpoint was trained with batch %d×%d×%d, not %d×%d×%d", saved.B, saved.T,
                       saved.accum, o->B, o->T, o->accum);
    json_object *j = json_tokener_parse(ck->train_state);
    double step = 0, pos = 0, epoch = 0;
    int ok = state_get(j, "step", &step) && state_get(j, "data_pos", &pos) && state_get(j, "epoch", &epoch);
    json_object_put(j);
    if (!ok) return jl_fail(JL_ERR_FORMAT, "training state: step/data_pos/epoch missing");
    if ((st = check_data_order(ck->train_state, s)) != JL_OK) return st;
    if (pos < 0 || (size_t)pos > s->data->n)
        return jl_fail(JL_ERR_ARG, "checkpoint data position %.0f is beyond this data (%zu tokens)", pos, s->data->n);
    if (t->n_state != t->model->n_params) /* moments are in the model's layout only when nothing is frozen */
        return jl_fail(JL_ERR_ARG, "cannot resume %s of a model with frozen tensors", stage);
    memcpy(t->mom1, ck->adam_m, t->model->n_params * sizeof(float));
    memcpy(t->mom2, ck->adam_v, t->model->n_params * sizeof(float));
    t->step = (long)step;
    s->pos = (size_t)pos;
    s->epoch = (long)epoch;
    return JL_OK;
}

jl_status jl_train_state_save(const char *path, const char *stage, const jl_trainer *t, const jl_tokenizer *tok,
                              const jl_pretrain_opts *o, const jl_token_stream *s, const jl_state_extra *extra,
                              int n_extra, int with_optimizer) {
    jl_checkpoint ck = {.model = t->model};
    jl_status st = jl_tokenizer_to_json(tok, &ck.tokenizer_json);
    if (st != JL_OK) return st;
    if (with_optimizer) {
        ck.adam_m = t->mom1;
        ck.adam_v = t->mom2;
        ck.train_state = jl_train_state_json(stage, o, t->step, s, extra, n_extra);
        if (!ck.train_state) st = jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    if (st == JL_OK) st = jl_checkpoint_save(path, &ck);
    free(ck.tokenizer_json);
    free(ck.train_state);
    return st;
}

void jl_train_state_optim(const jl_pretrain_opts *o, jl_optim_opts *opt) {
    jl_optim_defaults(opt, o->lr, o->steps);
    opt->min_lr_frac = o->min_lr_frac;
    opt->warmup_steps = o->warmup;
    opt->schedule = (jl_schedule)o->schedule;
    opt->weight_decay = o->weight_decay;
    opt->beta1 = o->beta1;
    opt->beta2 = o->beta2;
    opt->grad_clip = o->grad_clip;
}
