/* jielong distill: a student trained on a frozen teacher's soft targets (a loss hook on the one trainer),
 * and self-instruct synthesis (the teacher answers prompts). */
#include "jielong/distill.h"
#include "jielong/generate.h"
#include "core/kl.h"
#include "core/rng.h"
#include "core/utf8.h"
#include "jielong/dataset.h"
#include "io/fileio.h"
#include "jielong/checkpoint.h"
#include "jielong/metrics.h"
#include "model/model.h"
#include "train/steplog.h"
#include "train/stream.h"
#include "train/train_state.h"
#include "train/trainer.h"
#include <json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


void jl_distill_defaults(jl_distill_opts *o) {
    memset(o, 0, sizeof *o);
    o->B = 8;
    o->T = 256;
    o->accum = 1;
    o->steps = 1000;
    o->lr = 0; /* 0: the student width's default */
    o->min_lr_frac = 0.1f;
    o->weight_decay = 0.1f;
    o->beta1 = 0.9f;
    o->beta2 = 0.95f;
    o->grad_clip = 1.0f;
    o->warmup = -1;
    o->schedule = JL_SCHED_COSINE;
    o->temperature = 1.0f;
    o->alpha = 0.5f;
    o->data_seed = 1337;
    o->eval_every = 100;
    o->eval_batches = 8;
    o->save_every = 500;
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

/* The options in the training-state form pretraining uses (train_state.h), and the two of distillation. */
static jl_pretrain_opts state_opts(const jl_distill_opts *o) {
    jl_pretrain_opts p;
    jl_pretrain_defaults(&p);
    p.B = o->B;
    p.T = o->T;
    p.accum = o->accum;
    p.steps = o->steps;
    p.lr = o->lr;
    p.min_lr_frac = o->min_lr_frac;
    p.warmup = o->warmup;
    p.schedule = o->schedule;
    p.weight_decay = o->weight_decay;
    p.beta1 = o->beta1;
    p.beta2 = o->beta2;
    p.grad_clip = o->grad_clip;
    p.seed = 0; /* the student's initialisation is the caller's */
    return p;
}

jl_status jl_distill_opts_from_state(const char *state, jl_distill_opts *o) {
    jl_pretrain_opts p = state_opts(o);
    double tau, alpha;
    jl_status st = jl_train_state_check_stage(state, "distill");
    if (st == JL_OK) st = jl_pretrain_opts_from_state(state, &p);
    if (st == JL_OK) st = jl_train_state_number(state, "temperature", &tau);
    if (st == JL_OK) st = jl_train_state_number(state, "alpha", &alpha);
    if (st != JL_OK) return st;
    o->B = p.B;
    o->T = p.T;
    o->accum = p.accum;
    o->steps = p.steps;
    o->lr = p.lr;
    o->min_lr_frac = p.min_lr_frac;
    o->warmup = p.warmup;
    o->schedule = p.schedule;
    o->weight_decay = p.weight_decay;
    o->beta1 = p.beta1;
    o->beta2 = p.beta2;
    o->grad_clip = p.grad_clip;
    o->temperature = (float)tau;
    o->alpha = (float)alpha;
    return JL_OK;
}

/* Step, data position and moments from a distillation checkpoint, whose soft targets must be these. */
static jl_status resume_state(const jl_checkpoint *ck, jl_trainer *t, jl_token_stream *s, const jl_distill_opts *o) {
    const jl_pretrain_opts p = state_opts(o);
    jl_status st = jl_train_state_resume(ck, "distill", t, s, &p);
    jl_distill_opts saved = *o;
    if (st == JL_OK) st = jl_distill_opts_from_state(ck->train_state, &saved);
    if (st == JL_OK && (saved.temperature != o->temperature || saved.alpha != o->alpha))
        st = jl_fail(JL_ERR_ARG, "checkpoint was distilled with temperature %g, alpha %g, not %g, %g",
                     (double)saved.temperature, (double)saved.alpha, (double)o->temperature, (double)o->alpha);
    return st;
}

static jl_status save_model(const char *path, jl_trainer *t, const jl_tokenizer *tok, const jl_distill_opts *o,
                            const jl_token_stream *s, int with_optimizer) {
    const jl_pretrain_opts p = state_opts(o);
    const jl_state_extra extra[] = {{"temperature", o->temperature}, {"alpha", o->alpha}};
    return jl_train_state_save(path, "distill", t, tok, &p, s, extra, 2, with_optimizer);
}

static jl_status check_opts(const jl_model *student, const jl_model *teacher, const jl_tokens *train,
                            const jl_distill_opts *o) {
    if (o->B < 1 || o->T < 1) return jl_fail(JL_ERR_ARG, "batch size and sequence length must be ≥ 1");
    if (o->T > student->cfg.max_seq_len || o->T > teacher->cfg.max_seq_len)
        return jl_fail(JL_ERR_ARG, "sequence length %d is larger than the student's context %d or the teacher's %d",
                       o->T, student->cfg.max_seq_len, teacher->cfg.max_seq_len);
    if (!(o->temperature > 0) || !isfinite(o->temperature))
        return jl_fail(JL_ERR_ARG, "temperature must be > 0 (got %g)", (double)o->temperature);
    if (!(o->alpha >= 0 && o->alpha <= 1)) return jl_fail(JL_ERR_ARG, "alpha must be in [0, 1] (got %g)", (double)o->alpha);
    if (o->steps < 1) return jl_fail(JL_ERR_ARG, "steps must be ≥ 1");
    if (train->n < (size_t)o->T + 1)
        return jl_fail(JL_ERR_ARG, "training data has %zu tokens, fewer than one sequence of %d", train->n, o->T + 1);
    for (size_t i = 0; i < train->n; i++)
        if (train->ids[i] < 0 || train->ids[i] >= student->cfg.vocab_size)
            return jl_fail(JL_ERR_FORMAT, "token %d at position %zu is outside the vocabulary (%d)", train->ids[i], i,
                           student->cfg.vocab_size);
    return JL_OK;
}

static void emit(jl_event_fn fn, void *user, const jl_train_event *ev) {
    if (fn) fn(user, ev);
}

/* Held-out cross-entropy of a model over the first eval_batches windows of val. */
static jl_status heldout(jl_trainer *t, const jl_tokens *val, int batches, double *loss) {
    jl_token_stream vs = jl_stream_spread(val, t->o.B, t->o.T, batches);
    return jl_trainer_eval(t, jl_stream_batch, &vs, batches, loss);
}

jl_status jl_distill(jl_model *student, jl_model *teacher, const jl_tokenizer *tok, const jl_tokens *train,
                     const jl_tokens *val, const jl_distill_opts *opts, const jl_checkpoint *resume, jl_event_fn on_event,
                     void *user) {
    jl_distill_opts o = *opts;
    jl_status st = check_opts(student, teacher, train, &o);
    if (st == JL_OK && (teacher->cfg.vocab_size != student->cfg.vocab_size))
        st = jl_fail(JL_ERR_ARG, "teacher vocabulary %d ≠ student vocabulary %d", teacher->cfg.vocab_size,
                     student->cfg.vocab_size);
    if (st != JL_OK) return st;
    if (o.lr <= 0) o.lr = jl_config_default_lr(&student->cfg);
    if (o.warmup < 0) o.warmup = o.steps / 20 < 100 ? o.steps / 20 : 100;
    int have_val = val && val->n >= (size_t)o.T + 1;

    distill_hook hook = {.teacher = teacher, .temperature = o.temperature, .alpha = o.alpha};
    jl_trainer_opts to = {.B = o.B, .T = o.T, .accum = o.accum, .loss_hook = distill_loss, .loss_ctx = &hook};
    const jl_pretrain_opts p = state_opts(&o);
    jl_train_state_optim(&p, &to.opt);
    jl_trainer *t = NULL, *teacher_eval = NULL;
    if ((st = jl_mkdir_p(o.out_dir)) != JL_OK) return st;
    if ((st = jl_acts_new(&teacher->cfg, o.B, o.T, &hook.tacts)) != JL_OK) return st;
    jl_token_stream s = {.data = train, .shuffle = o.data_order == JL_DATA_SHUFFLED, .seed = o.data_seed};
    if ((st = jl_trainer_new(student, &to, &t)) != JL_OK || (resume && (st = resume_state(resume, t, &s, &o)) != JL_OK)) {
        jl_trainer_free(t);
        jl_acts_free(&hook.tacts);
        return st;
    }
    char metrics_path[4096], ckpt_path[4096], model_path[4096];
    snprintf(metrics_path, sizeof metrics_path, "%s/metrics.jsonl", o.out_dir);
    snprintf(ckpt_path, sizeof ckpt_path, "%s/checkpoint.safetensors", o.out_dir);
    snprintf(model_path, sizeof model_path, "%s/model.safetensors", o.out_dir);
    if (!resume) unlink(metrics_path); /* a fresh run starts a fresh log */
    jl_metrics *log = NULL;
    st = jl_metrics_open(metrics_path, &log);
    /* the teacher's held-out loss: the floor the student is pulled towards (logged once, by the first run) */
    if (st == JL_OK && !resume && have_val && o.eval_every > 0) {
        jl_trainer_opts eo = {.B = o.B, .T = o.T, .accum = 1};
        double tv;
        if ((st = jl_trainer_new(teacher, &eo, &teacher_eval)) == JL_OK &&
            (st = heldout(teacher_eval, val, o.eval_batches, &tv)) == JL_OK) {
            const char *k[] = {"teacher_val_loss"};
            st = jl_metrics_log(log, "distill", 0, 1, k, &tv);
        }
        jl_trainer_free(teacher_eval);
    }
    /* the teacher's forward (a third of its training FLOPs) counts too when its soft targets are used */
    jl_step_log steps = {.log = log, .stage = "distill", .total_steps = o.steps, .on_event = on_event, .user = user,
                         .flops_per_step = (jl_model_train_flops(&student->cfg, o.B, o.T) +
                                            (o.alpha > 0 ? jl_model_train_flops(&teacher->cfg, o.B, o.T) / 3 : 0)) *
                                           o.accum,
                         .peak_gflops = o.peak_gflops};
    long steps_this_run = 0;
    while (st == JL_OK && t->step < o.steps) {
        jl_step_stats ss;
        hook.kl_sum = 0;
        hook.counted = 0;
        if ((st = jl_trainer_step(t, jl_stream_batch, &s, &ss)) != JL_OK) break;
        steps_this_run++;
        long step = t->step;
        double kl = hook.counted ? hook.kl_sum / (double)hook.counted : 0.0;
        const char *kl_key[] = {"kl"};
        if ((st = jl_step_log_write(&steps, step, &ss, 1, kl_key, &kl)) != JL_OK) break;
        int last = step == o.steps || (o.stop_after > 0 && steps_this_run >= o.stop_after);
        if (have_val && o.eval_every > 0 && (step % o.eval_every == 0 || last)) {
            double val_loss;
            if ((st = heldout(t, val, o.eval_batches, &val_loss)) != JL_OK) break;
            const char *vk[] = {"val_loss"};
            if ((st = jl_metrics_log(log, "distill", step, 1, vk, &val_loss)) != JL_OK) break;
            jl_train_event e2 = {.kind = JL_EV_EVAL, .step = step, .total_steps = o.steps, .val_loss = val_loss};
            emit(on_event, user, &e2);
        }
        if ((o.save_every > 0 && step % o.save_every == 0) || last) {
            if ((st = save_model(ckpt_path, t, tok, &o, &s, 1)) != JL_OK) break;
            jl_train_event e3 = {.kind = JL_EV_SAVE, .step = step, .total_steps = o.steps, .path = ckpt_path};
            emit(on_event, user, &e3);
        }
        if (last) break;
    }
    if (st == JL_OK && t->step == o.steps && (st = save_model(model_path, t, tok, &o, &s, 0)) == JL_OK) {
        jl_train_event e4 = {.kind = JL_EV_SAVE, .step = t->step, .total_steps = o.steps, .path = model_path};
        emit(on_event, user, &e4);
    }
    jl_metrics_close(log);
    jl_trainer_free(t);
    jl_acts_free(&hook.tacts);
    return st;
}

/* ---------------------------------------------------------------- synthesis (self-instruct) */


/* Token ids of rendered chat segments: special tokens by name, text encoded as text. */
static jl_status encode_segments(const jl_tokenizer *tok, const jl_segments *segs, int32_t **ids, size_t *n) {
    size_t cap = 64, len = 0;
    int32_t *out = malloc(sizeof(int32_t) * cap);
    jl_status st = out ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == JL_OK && i < segs->n; i++) {
        const jl_segment *sg = &segs->items[i];
        int32_t *piece = NULL, one;
        size_t np = 0;
        if (sg->special >= 0) {
            one = jl_tokenizer_special(tok, jl_special_name((jl_special)sg->special));
            if (one < 0) st = jl_fail(JL_ERR_FORMAT, "tokenizer has no %s token (chat template)",
                                      jl_special_name((jl_special)sg->special));
            np = 1;
        } else {
            st = jl_tokenizer_encode(tok, sg->text, sg->len, 0, &piece, &np);
        }
        if (st == JL_OK && len + np > cap) {
            while (len + np > cap) cap *= 2;
            int32_t *grown = realloc(out, sizeof(int32_t) * cap);
            if (!grown) st = jl_fail(JL_ERR_NOMEM, "out of memory");
            else out = grown;
        }
        if (st == JL_OK) memcpy(out + len, sg->special >= 0 ? &one : piece, sizeof(int32_t) * np);
        len += np;
        free(piece);
    }
    if (st != JL_OK) {
        free(out);
        return st;
    }
    *ids = out;
    *n = len;
    return JL_OK;
}

/* The teacher answers one prompt with the KV-cache engine until <|end|>/<|eos|>, max_new tokens or a full
 * context. The answer (stop token excluded) goes to answer[0..*n_new). */
static jl_status generate_answer(jl_session *s, jl_sampler *smp, const jl_tokenizer *tok, const int32_t *prompt,
                                 size_t n_prompt, int max_new, int32_t *answer, size_t *n_new) {
    int32_t end = jl_tokenizer_special(tok, "<|end|>"), eos = jl_tokenizer_special(tok, "<|eos|>");
    *n_new = 0;
    jl_session_truncate(s, 0);
    const float *logits;
    jl_status st = jl_session_forward(s, prompt, (int)n_prompt, NULL, &logits);
    for (int i = 0; st == JL_OK && i < max_new; i++) {
        int32_t next = jl_sampler_sample(smp, logits, jl_session_tokens(s), jl_session_pos(s), NULL, 0);
        if (next == end || next == eos) break;
        answer[(*n_new)++] = next;
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

jl_status jl_distill_synthesize(jl_model *teacher, const jl_tokenizer *tok, const char *prompts_path,
                                const char *out_path, const jl_synth_opts *o, jl_synth_stats *stats) {
    memset(stats, 0, sizeof *stats);
    if (o->max_new_tokens < 1) return jl_fail(JL_ERR_ARG, "max new tokens must be ≥ 1");
    if (!(o->temperature >= 0) || !isfinite(o->temperature))
        return jl_fail(JL_ERR_ARG, "sampling temperature must be ≥ 0 (got %g)", (double)o->temperature);
    if (teacher->cfg.vocab_size < jl_tokenizer_vocab_size(tok))
        return jl_fail(JL_ERR_ARG, "tokenizer has %d tokens, the teacher only %d", jl_tokenizer_vocab_size(tok),
                       teacher->cfg.vocab_size);
    prompt_set ps;
    jl_status st = load_prompts(prompts_path, &ps);
    if (st != JL_OK) return st;
    size_t n = prompt_count(&ps);
    if (o->n > 0 && o->n < n) n = o->n;
    jl_session *session = NULL;
    jl_sampler *sampler = NULL;
    jl_sampler_params sp;
    jl_sampler_defaults(&sp);
    sp.temperature = o->temperature; /* plain temperature sampling (0 = greedy): no top-k/top-p truncation */
    sp.top_p = 1.0f;
    sp.seed = o->seed;
    if ((st = jl_session_new(teacher, teacher->cfg.max_seq_len, &session)) != JL_OK ||
        (st = jl_sampler_new(&sp, teacher->cfg.vocab_size, &sampler)) != JL_OK)
        goto done_acts;
    jl_atomic_file af;
    if ((st = jl_atomic_open(&af, out_path)) != JL_OK) goto done_acts;
    jl_segments segs = {0};
    for (size_t i = 0; i < n && st == JL_OK; i++) {
        jl_turn one;
        jl_conversation conv = prompt_get(&ps, i, &one);
        int32_t *ids = NULL, *seq = NULL;
        size_t n_ids = 0, n_new = 0;
        char *answer = NULL;
        size_t answer_len;
        jl_segments_clear(&segs);
        st = jl_chat_render_generation(&conv, &segs);
        if (st == JL_OK) st = encode_segments(tok, &segs, &ids, &n_ids);
        if (st == JL_OK && !(seq = malloc(sizeof(int32_t) * (size_t)o->max_new_tokens)))
            st = jl_fail(JL_ERR_NOMEM, "out of memory");
        if (st == JL_OK) st = generate_answer(session, sampler, tok, ids, n_ids, o->max_new_tokens, seq, &n_new);
        if (st == JL_OK) st = jl_tokenizer_decode(tok, seq, n_new, &answer, &answer_len);
        if (st == JL_OK) {
            stats->prompts++;
            stats->tokens += n_new;
            char *clean = answer_len > 0 ? valid_utf8(answer, answer_len) : NULL;
            if (answer_len > 0 && !clean) st = jl_fail(JL_ERR_NOMEM, "out of memory");
            if (clean) { /* an empty answer is no SFT example */
                json_object *line = messages_json(&conv, clean);
                fprintf(af.f, "%s\n", json_object_to_json_string_ext(line, JSON_C_TO_STRING_PLAIN));
                json_object_put(line);
                stats->written++;
            }
            free(clean);
        } else {
            jl_fail_context(st, "%s: prompt %zu", prompts_path, i + 1);
        }
        free(answer);
        free(seq);
        free(ids);
    }
    jl_segments_free(&segs);
    if (st == JL_OK) st = jl_atomic_commit(&af);
    else jl_atomic_abort(&af);
done_acts:
    jl_sampler_free(sampler);
    jl_session_free(session);
    jl_rl_free(ps.rl);
    jl_sft_free(ps.sft);
    return st;
}
