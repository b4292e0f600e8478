/* jielong distill: a student trained on a frozen teacher's soft targets (a loss hook on the one trainer),
 * and self-instruct synthesis (the teacher answers prompts). */
#include "jielong/distill.h"
#include "jielong/generate.h"
#include "core/kl.h"
#include "core/rng.h"
#include "core/utf8.h"
#include "jielong/chat_format.h"
#include "jielong/dataset.h"
#include "io/fileio.h"
#include "jielong/checkpoint.h"
#include "jielong/metrics.h"
#include "jielong/rlhf.h"
#include "model/model.h"
#include "train/run.h"
#include "train/stream.h"
#include "train/trainer.h"
#include <json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


void jl_distill_defaults(jl_distill_opts *o) {
    memset(o, 0, sizeof *o);
    jl_stage_opts_defaults(&o->train);
    o->T = 256;
    o->temperature = 1.0f;
    o->alpha = 0.5f;
    o->data_seed = 1337;
    o->eval_batches = 8;
}

jl_status jl_distill_check_pair(const jl_model *teacher, const jl_tokenizer *tt, const jl_model *student,
                                const jl_tokenizer *ts) {
    int vt = jl_tokenizer_vocab_size(tt), vs = jl_tokenizer_vocab_size(ts);
    if (vt != vs) return jl_fail(JL_ERR_ARG, "teacher tokenizer has %d tokens, the student's %d", vt, vs);
    for (int32_t id = 0; id < vt; id++) {
        size_t lt, ls;
        const char *a = jl_tokenizer_token(tt, id, &lt), *b = jl_tokenizer_token(ts, id, &ls);
        if (!a || !b || lt != ls || memcmp(a, b, lt) != 0)
            return jl_fail(JL_ERR_ARG, "teacher and student tokenizers differ at token id %d", id);
    }
    for (int i = 0; i < JL_TOKENIZER_N_SPECIAL; i++) {
        const char *name = jl_tokenizer_special_names[i];
        if (jl_tokenizer_special(tt, name) != jl_tokenizer_special(ts, name))
            return jl_fail(JL_ERR_ARG, "teacher and student tokenizers put %s at different ids", name);
    }
    if (teacher->cfg.vocab_size != student->cfg.vocab_size)
        return jl_fail(JL_ERR_ARG, "teacher vocabulary %d ≠ student vocabulary %d", teacher->cfg.vocab_size,
                       student->cfg.vocab_size);
    if (teacher->cfg.vocab_size < vt)
        return jl_fail(JL_ERR_ARG, "tokenizer has %d tokens, the models only %d", vt, teacher->cfg.vocab_size);
    return JL_OK;
}

/* ---------------------------------------------------------------- training */

/* The loss hook: the teacher's forward over the same tokens, then the KL kernel writes the student's dlogits. */
typedef struct {
    jl_model *teacher;
    jl_acts tacts;
    float temperature, alpha;
    double kl_sum;          /* Σ KL over the counted tokens of the current step */
    long counted;
} distill_hook;

static double distill_loss(void *ctx, const int32_t *tokens, const int32_t *targets, int B, int T, float *logits,
                           float dscale) {
    distill_hook *h = ctx;
    const jl_config *c = &h->teacher->cfg;
    const float *teacher_logits = NULL;
    if (h->alpha > 0) {
        jl_model_forward(h->teacher, &h->tacts, tokens, NULL, B, T, 0.0f, NULL);
        teacher_logits = h->tacts.logits;
    }
    double kl = 0;
    double loss = jl_distill_loss_forward_backward(NULL, logits, logits, teacher_logits, targets, B * T,
                                                   c->vocab_size, c->padded_vocab, h->temperature, h->alpha,
                                                   dscale, &kl);
    h->kl_sum += kl;
    for (int i = 0; i < B * T; i++) h->counted += targets[i] >= 0;
    return loss;
}

jl_status jl_distill_opts_from_state(const char *state, jl_distill_opts *o) {
    json_object *j = json_tokener_parse(state), *v;
    jl_status st = j && json_object_is_type(j, json_type_object) ? JL_OK
                                                                 : jl_fail(JL_ERR_FORMAT, "training state is not a JSON object");
    const char *stage = st == JL_OK && json_object_object_get_ex(j, "stage", &v) ? json_object_get_string(v) : "";
    if (st == JL_OK && strcmp(stage, "distill") != 0)
        st = jl_fail(JL_ERR_ARG, "a %s checkpoint cannot resume distill", stage[0] ? stage : "stage-less");
    double tau, alpha;
    long T, eval_batches = o->eval_batches;
    if (st == JL_OK) st = jl_state_read_opts(j, &o->train);
    if (st == JL_OK) st = jl_state_long(j, "T", 1, 1L << 20, &T);
    if (st == JL_OK) st = jl_state_long_opt(j, "eval_batches", 0, 1L << 20, &eval_batches);
    if (st == JL_OK) st = jl_state_num(j, "temperature", 1e-6, 1e6, &tau);
    if (st == JL_OK) st = jl_state_num(j, "alpha", 0, 1, &alpha);
    json_object_put(j);
    if (st != JL_OK) return st;
    o->T = (int)T;
    o->eval_batches = (int)eval_batches;
    o->temperature = (float)tau;
    o->alpha = (float)alpha;
    return JL_OK;
}

static jl_status check_opts(const jl_model *student, const jl_model *teacher, const jl_tokens *train,
                            const jl_distill_opts *o) {
    if (o->train.run.batch < 1 || o->T < 1) return jl_fail(JL_ERR_ARG, "batch size and sequence length must be ≥ 1");
    if (o->T > student->cfg.max_seq_len || o->T > teacher->cfg.max_seq_len)
        return jl_fail(JL_ERR_ARG, "sequence length %d is larger than the student's context %d or the teacher's %d",
                       o->T, student->cfg.max_seq_len, teacher->cfg.max_seq_len);
    if (!(o->temperature > 0) || !isfinite(o->temperature))
        return jl_fail(JL_ERR_ARG, "temperature must be > 0 (got %g)", (double)o->temperature);
    if (!(o->alpha >= 0 && o->alpha <= 1)) return jl_fail(JL_ERR_ARG, "alpha must be in [0, 1] (got %g)", (double)o->alpha);
    if (o->train.run.steps < 1) return jl_fail(JL_ERR_ARG, "steps must be ≥ 1");
    if (teacher->cfg.vocab_size != student->cfg.vocab_size)
        return jl_fail(JL_ERR_ARG, "teacher vocabulary %d ≠ student vocabulary %d", teacher->cfg.vocab_size,
                       student->cfg.vocab_size);
    if (train->n < (size_t)o->T + 1)
        return jl_fail(JL_ERR_ARG, "training data has %zu tokens, fewer than one sequence of %d", train->n, o->T + 1);
    for (size_t i = 0; i < train->n; i++)
        if (train->ids[i] < 0 || train->ids[i] >= student->cfg.vocab_size)
            return jl_fail(JL_ERR_FORMAT, "token %d at position %zu is outside the vocabulary (%d)", train->ids[i], i,
                           student->cfg.vocab_size);
    return JL_OK;
}

/* ---------------------------------------------------------------- the stage */

typedef struct {
    jl_distill_opts o;
    jl_trainer *t;
    distill_hook hook;
    const jl_tokenizer *tok;
    jl_token_stream s;
    const jl_tokens *val;
} distill_stage;

static jl_status ds_step(void *self, jl_stage_step *out) {
    distill_stage *d = self;
    jl_step_stats ss;
    d->hook.kl_sum = 0;
    d->hook.counted = 0;
    jl_status st = jl_trainer_step(d->t, jl_stream_batch, &d->s, &ss);
    if (st != JL_OK) return st;
    *out = (jl_stage_step){.loss = ss.loss, .grad_norm = ss.grad_norm, .lr = ss.lr, .tokens = ss.tokens,
                           .seconds = ss.seconds, .skipped = ss.skipped ? "loss or gradient not finite" : NULL};
    jl_metric_add(&out->m, "kl", d->hook.counted ? d->hook.kl_sum / (double)d->hook.counted : 0.0);
    return JL_OK;
}

/* Held-out cross-entropy of a model over the first eval_batches windows of val. */
static jl_status heldout(jl_trainer *t, const jl_tokens *val, int batches, double *loss) {
    jl_token_stream vs = jl_stream_spread(val, t->o.B, t->o.T, batches);
    return jl_trainer_eval(t, jl_stream_batch, &vs, batches, loss);
}

/* Step 0: the teacher's held-out loss, the floor the student is pulled towards; later the student's. */
static jl_status ds_eval(void *self, long step, jl_metric_set *out) {
    distill_stage *d = self;
    if (!d->val || d->val->n < (size_t)d->o.T + 1 || d->o.eval_batches < 1) return JL_OK;
    double v;
    jl_status st;
    if (step == 0) {
        if (d->o.train.run.eval_every <= 0) return JL_OK;
        jl_trainer_opts eo = {.B = d->o.train.run.batch, .T = d->o.T, .accum = 1};
        jl_trainer *te;
        if ((st = jl_trainer_new(d->hook.teacher, &eo, &te)) != JL_OK) return st;
        st = heldout(te, d->val, d->o.eval_batches, &v);
        jl_trainer_free(te);
        if (st == JL_OK) jl_metric_add(out, "teacher_val_loss", v);
        return st;
    }
    st = heldout(d->t, d->val, d->o.eval_batches, &v);
    if (st == JL_OK) jl_metric_add(out, "val_loss", v);
    return st;
}

static jl_status ds_save_state(void *self, json_object *j) {
    distill_stage *d = self;
    json_object_object_add(j, "temperature", json_object_new_double(d->o.temperature));
    json_object_object_add(j, "alpha", json_object_new_double(d->o.alpha));
    json_object_object_add(j, "eval_batches", json_object_new_int(d->o.eval_batches)); /* the held-out set's size */
    return jl_stream_state_save(&d->s, d->o.T, j);
}

static jl_status ds_restore_state(void *self, json_object *j) {
    distill_stage *d = self;
    double tau, alpha;
    jl_status st = jl_state_num(j, "temperature", 1e-6, 1e6, &tau);
    if (st == JL_OK) st = jl_state_num(j, "alpha", 0, 1, &alpha);
    if (st == JL_OK && ((float)tau != d->o.temperature || (float)alpha != d->o.alpha))
        st = jl_fail(JL_ERR_ARG, "checkpoint was distilled with temperature %g, alpha %g, not %g, %g", tau, alpha,
                     (double)d->o.temperature, (double)d->o.alpha);
    return st == JL_OK ? jl_stream_state_restore(&d->s, d->o.T, j) : st;
}

static jl_status ds_save_result(void *self, char *path, size_t size) {
    distill_stage *d = self;
    snprintf(path, size, "%s/model.safetensors", d->o.train.run.out_dir);
    return jl_save_model_file(d->t->model, d->tok, d->o.chat, path);
}

static const jl_stage_i distill_i = {.name = "distill", .step = ds_step, .evaluate = ds_eval,
                                     .save_state = ds_save_state, .restore_state = ds_restore_state,
                                     .save_result = ds_save_result};

jl_status jl_distill(jl_model *student, jl_model *teacher, const jl_tokenizer *tok, const jl_tokens *train,
                     const jl_tokens *val, const jl_distill_opts *opts, jl_event_fn on_event, void *user) {
    distill_stage d = {.o = *opts, .tok = tok, .val = val,
                       .s = {.data = train, .shuffle = opts->data_order == JL_DATA_SHUFFLED, .seed = opts->data_seed}};
    jl_stage_opts *o = &d.o.train;
    jl_status st = check_opts(student, teacher, train, &d.o);
    if (st != JL_OK) return st;
    if (o->optim.lr <= 0) o->optim.lr = jl_config_default_lr(&student->cfg);
    o->optim.warmup = jl_default_warmup(o->optim.warmup, o->run.steps);
    const int B = o->run.batch, T = d.o.T;
    d.hook = (distill_hook){.teacher = teacher, .temperature = d.o.temperature, .alpha = d.o.alpha};
    jl_trainer_opts to = {.B = B, .T = T, .accum = o->optim.accum, .loss_hook = distill_loss, .loss_ctx = &d.hook};
    jl_optim_from_cfg(&o->optim, o->run.steps, &to.opt);
    if ((st = jl_acts_new(&teacher->cfg, B, T, &d.hook.tacts)) != JL_OK) return st;
    if ((st = jl_trainer_new(student, &to, &d.t)) == JL_OK) {
        /* the teacher's forward (a third of its training FLOPs) counts too when its soft targets are used */
        double flops = (jl_model_train_flops(&student->cfg, B, T) +
                        (d.o.alpha > 0 ? jl_model_train_flops(&teacher->cfg, B, T) / 3 : 0)) * o->optim.accum;
        jl_stage s = {.i = &distill_i, .self = &d, .what = {.t = d.t, .tok = tok}, .o = o, .steps_may_change = 1,
                      .data_parallel = 1, .eval_at_start = 1, .flops_per_step = flops};
        st = jl_train_run(&s, on_event, user);
    }
    jl_trainer_free(d.t);
    jl_acts_free(&d.hook.tacts);
    return st;
}

/* ---------------------------------------------------------------- synthesis (self-instruct) */


/* The teacher answers one prompt with the KV-cache engine until a stop (jl_chat_stops: the format's end-of-turn
 * marker, eos), max_new tokens or a full context. The answer (stop excluded) goes to answer[0..*n_new). */
static jl_status generate_answer(jl_session *s, jl_sampler *smp, const jl_chat_stops *stops, const int32_t *prompt,
                                 size_t n_prompt, int max_new, int32_t *answer, size_t *n_new) {
    *n_new = 0;
    jl_session_truncate(s, 0);
    const float *logits;
    jl_status st = jl_session_forward(s, prompt, (int)n_prompt, NULL, &logits);
    for (int i = 0; st == JL_OK && i < max_new; i++) {
        int32_t next = jl_sampler_sample(smp, logits, jl_session_tokens(s), jl_session_pos(s), NULL, 0);
        if (next < 0) return JL_ERR_RUNTIME;
        answer[(*n_new)++] = next;
        size_t stop = jl_chat_stops_match(stops, answer, *n_new);
        if (stop) {
            *n_new -= stop;
            break;
        }
        if (jl_session_pos(s) >= jl_session_capacity(s)) break;
        st = jl_session_forward(s, &next, 1, NULL, &logits);
    }
    return st;
}

/* The prompts as conversations: RL prompts become one user turn; SFT conversations are used as they are
 * (the renderer drops a final assistant turn, the answer to write anew). */
typedef struct {
    jl_rl_set *rl;
    jl_sft_set *sft;
} prompt_set;

static jl_status load_prompts(const char *path, prompt_set *ps) {
    memset(ps, 0, sizeof *ps);
    jl_jsonl_options opt = {0};
    jl_jsonl_stats stats;
    char *text;
    size_t len;
    jl_status st = jl_read_file(path, &text, &len);
    if (st != JL_OK) return st;
    /* an SFT file names "messages" or "instruction"; anything else is read as RL prompts */
    int is_sft = strstr(text, "\"messages\"") || strstr(text, "\"instruction\"");
    free(text);
    return is_sft ? jl_sft_load(path, &opt, &ps->sft, &stats) : jl_rl_load(path, &opt, &ps->rl, &stats);
}

static size_t prompt_count(const prompt_set *ps) { return ps->rl ? jl_rl_count(ps->rl) : jl_sft_count(ps->sft); }

/* Conversation i without its final assistant turn, into turns (room for n_turns + 1). */
static jl_conversation prompt_get(const prompt_set *ps, size_t i, jl_turn *one) {
    if (ps->rl) {
        one->role = JL_ROLE_USER;
        one->content = jl_rl_prompt(ps->rl, i);
        return (jl_conversation){one, 1};
    }
    jl_conversation c = jl_sft_get(ps->sft, i);
    if (c.n_turns > 0 && c.turns[c.n_turns - 1].role == JL_ROLE_ASSISTANT) c.n_turns--;
    return c;
}

/* The answer as valid UTF-8 for JSON: a small model may emit a partial byte sequence (or a NUL byte), each
 * becomes U+FFFD. malloc'd. */
static char *valid_utf8(const char *s, size_t len) {
    char *out = malloc(3 * len + 1), *w = out;
    if (!out) return NULL;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t used = jl_utf8_decode(s + i, len - i, &cp);
        if (cp == JL_UTF8_INVALID || cp == 0) cp = 0xFFFD;
        w += jl_utf8_encode(cp, w);
        i += used;
    }
    *w = 0;
    return out;
}

static json_object *messages_json(const jl_conversation *c, const char *answer) {
    json_object *msgs = json_object_new_array();
    for (int t = 0; t < c->n_turns; t++) {
        json_object *m = json_object_new_object();
        json_object_object_add(m, "role", json_object_new_string(jl_role_name(c->turns[t].role)));
        json_object_object_add(m, "content", json_object_new_string(c->turns[t].content));
        json_object_array_add(msgs, m);
    }
    json_object *a = json_object_new_object();
    json_object_object_add(a, "role", json_object_new_string("assistant"));
    json_object_object_add(a, "content", json_object_new_string(answer));
    json_object_array_add(msgs, a);
    json_object *line = json_object_new_object();
    json_object_object_add(line, "messages", msgs);
    return line;
}

/* One answer of the teacher to prompt i (ids), decoded to valid UTF-8 in *clean (NULL when empty); *kept: the keep
 * rule (if any) scores it at least keep_min and it is not empty. */
static jl_status answer_once(jl_session *session, jl_sampler *sampler, const jl_chat_stops *stops,
                             const jl_tokenizer *tok, const int32_t *ids, size_t n_ids, const jl_synth_opts *o,
                             const prompt_set *ps, size_t i, int32_t *seq, char **clean, int *kept,
                             jl_synth_stats *stats) {
    size_t n_new = 0, answer_len = 0;
    char *answer = NULL;
    *kept = 0;
    jl_status st = generate_answer(session, sampler, stops, ids, n_ids, o->max_new_tokens, seq, &n_new);
    if (st == JL_OK) st = jl_tokenizer_decode(tok, seq, n_new, &answer, &answer_len);
    if (st != JL_OK) return st;
    stats->answers++;
    stats->tokens += n_new;
    *clean = answer_len > 0 ? valid_utf8(answer, answer_len) : NULL;
    free(answer);
    if (answer_len > 0 && !*clean) return jl_fail(JL_ERR_NOMEM, "out of memory");
    if (!*clean) return JL_OK;
    float score = 1;
    if (o->keep && (st = jl_reward_fn_score(o->keep, ps->rl, i, *clean, &score)) != JL_OK) return st;
    if (score < o->keep_min) stats->rejected++;
    else *kept = 1;
    return JL_OK;
}

jl_status jl_distill_synthesize(jl_model *teacher, const jl_tokenizer *tok, const char *prompts_path,
                                const char *out_path, const jl_synth_opts *o, jl_synth_stats *stats) {
    memset(stats, 0, sizeof *stats);
    if (o->max_new_tokens < 1) return jl_fail(JL_ERR_ARG, "max new tokens must be ≥ 1");
    if (!(o->temperature >= 0) || !isfinite(o->temperature))
        return jl_fail(JL_ERR_ARG, "sampling temperature must be ≥ 0 (got %g)", (double)o->temperature);
    if (teacher->cfg.vocab_size < jl_tokenizer_vocab_size(tok))
        return jl_fail(JL_ERR_ARG, "tokenizer has %d tokens, the teacher only %d", jl_tokenizer_vocab_size(tok),
                       teacher->cfg.vocab_size);
    if (o->keep && o->tries > 1 && !(o->retry_temperature > 0 && isfinite(o->retry_temperature)))
        return jl_fail(JL_ERR_ARG, "the temperature of later tries must be > 0 (got %g)", (double)o->retry_temperature);
    prompt_set ps;
    jl_status st = load_prompts(prompts_path, &ps);
    if (st != JL_OK) return st;
    if (o->keep && !ps.rl) {
        jl_sft_free(ps.sft);
        return jl_fail(JL_ERR_ARG, "%s: a keep rule needs RL prompts ({\"prompt\", \"form\", ...}), not conversations",
                       prompts_path);
    }
    size_t n = prompt_count(&ps);
    if (o->n > 0 && o->n < n) n = o->n;
    jl_session *session = NULL;
    jl_sampler *sampler = NULL, *retry = NULL;
    jl_sampler_params sp;
    jl_sampler_defaults(&sp);
    sp.temperature = o->temperature; /* plain temperature sampling (0 = greedy): no top-k/top-p truncation */
    sp.top_p = 1.0f;
    sp.seed = o->seed;
    if ((st = jl_session_new(teacher, teacher->cfg.max_seq_len, &session)) != JL_OK ||
        (st = jl_sampler_new(&sp, teacher->cfg.vocab_size, &sampler)) != JL_OK)
        goto done_acts;
    sp.temperature = o->retry_temperature; /* later tries: sampled, so that they differ from the first */
    sp.seed = o->seed + 1;
    if (o->keep && o->tries > 1 && (st = jl_sampler_new(&sp, teacher->cfg.vocab_size, &retry)) != JL_OK)
        goto done_acts;
    jl_chat_stops stops;
    if ((st = jl_chat_stops_new(tok, o->format, &stops)) != JL_OK) goto done_acts;
    jl_atomic_file af;
    if ((st = jl_atomic_open(&af, out_path)) != JL_OK) {
        jl_chat_stops_free(&stops);
        goto done_acts;
    }
    jl_segments segs = {0};
    int tries = o->keep && o->tries > 1 ? o->tries : 1;
    for (size_t i = 0; i < n && st == JL_OK; i++) {
        jl_turn one;
        jl_conversation conv = prompt_get(&ps, i, &one);
        int32_t *ids = NULL, *seq = NULL;
        size_t n_ids = 0;
        char *clean = NULL;
        jl_segments_clear(&segs);
        st = jl_chat_format_render_generation(o->format, &conv, &segs);
        if (st == JL_OK) st = jl_segments_encode(tok, &segs, &ids, NULL, &n_ids);
        if (st == JL_OK && !(seq = malloc(sizeof(int32_t) * (size_t)o->max_new_tokens)))
            st = jl_fail(JL_ERR_NOMEM, "out of memory");
        int kept = 0;
        for (int t = 0; t < tries && st == JL_OK && !kept; t++) {
            free(clean);
            clean = NULL;
            st = answer_once(session, t ? retry : sampler, &stops, tok, ids, n_ids, o, &ps, i, seq, &clean, &kept,
                             stats);
            stats->retried_kept += kept && t > 0;
        }
        if (st == JL_OK) {
            stats->prompts++;
            if (clean && kept) { /* an empty answer is no SFT example */
                json_object *line = messages_json(&conv, clean);
                fprintf(af.f, "%s\n", json_object_to_json_string_ext(line, JSON_C_TO_STRING_PLAIN));
                json_object_put(line);
                stats->written++;
            }
        } else {
            jl_fail_context(st, "%s: prompt %zu", prompts_path, i + 1);
        }
        free(clean);
        free(seq);
        free(ids);
    }
    jl_segments_free(&segs);
    jl_chat_stops_free(&stops);
    if (st == JL_OK) st = jl_atomic_commit(&af);
    else jl_atomic_abort(&af);
done_acts:
    jl_sampler_free(retry);
    jl_sampler_free(sampler);
    jl_session_free(session);
    jl_rl_free(ps.rl);
    jl_sft_free(ps.sft);
    return st;
}
