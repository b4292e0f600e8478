/* Conversations rendered with a model's chat format: the built-in one (src/data/chat.c) or its own Jinja
 * template, with the assistant spans (the loss mask) derived from the rendered text. */
#include "jielong/chat_format.h"
#include "jielong/template.h"
#include "template/jinja.h"
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

struct jl_chat_format {
    jl_template *t; /* NULL: built-in */
    char *text, *bos, *eos;
    char *stop_strings[2];
    const char *stops[2];
    int n_stops;
};

int jl_chat_format_is_builtin(const jl_chat_format *f) { return !f || !f->t; }
const char *jl_chat_format_template(const jl_chat_format *f) { return f ? f->text : NULL; }
const char *jl_chat_format_bos(const jl_chat_format *f) { return f && f->bos ? f->bos : ""; }
const char *jl_chat_format_eos(const jl_chat_format *f) { return f && f->eos ? f->eos : ""; }

int jl_chat_format_stops(const jl_chat_format *f, const char *const **stops) {
    *stops = f ? f->stops : NULL;
    return f ? f->n_stops : 0;
}

void jl_chat_format_free(jl_chat_format *f) {
    if (!f) return;
    jl_template_free(f->t);
    free(f->text);
    free(f->bos);
    free(f->eos);
    free(f->stop_strings[0]);
    free(f->stop_strings[1]);
    free(f);
}

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

/* ---------------------------------------------------------------- rendering with the Jinja template */

/* The template's variables for turns [0, n): messages, add_generation_prompt, bos_token, eos_token. */
static json_object *context(const jl_chat_format *f, const jl_conversation *conv, int n, int generation) {
    json_object *ctx = json_object_new_object(), *msgs = json_object_new_array();
    if (!ctx || !msgs) {
        json_object_put(ctx);
        json_object_put(msgs);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        json_object *m = json_object_new_object();
        json_object_object_add(m, "role", json_object_new_string(jl_role_name(conv->turns[i].role)));
        json_object_object_add(m, "content", json_object_new_string(conv->turns[i].content));
        json_object_array_add(msgs, m);
    }
    json_object_object_add(ctx, "messages", msgs);
    json_object_object_add(ctx, "add_generation_prompt", json_object_new_boolean(generation));
    json_object_object_add(ctx, "bos_token", json_object_new_string(f->bos));
    json_object_object_add(ctx, "eos_token", json_object_new_string(f->eos));
    return ctx;
}

static jl_status render_text(const jl_chat_format *f, const jl_conversation *conv, int n, int generation,
                             jl_template_span *spans, char **out, size_t *len) {
    json_object *ctx = context(f, conv, n, generation);
    if (!ctx) return jl_fail(JL_ERR_NOMEM, "out of memory");
    jl_status st = jl_template_render_ctx(f->t, ctx, spans, spans ? n : 0, out, len);
    json_object_put(ctx);
    return st == JL_OK ? st : jl_fail_context(st, "chat template");
}

static jl_status keep_text(jl_segments *out, char *text) {
    if (out->n_owned == out->cap_owned) {
        size_t cap = out->cap_owned ? 2 * out->cap_owned : 4;
        char **g = realloc(out->owned, sizeof *g * cap);
        if (!g) {
            free(text);
            return jl_fail(JL_ERR_NOMEM, "out of memory");
        }
        out->owned = g;
        out->cap_owned = cap;
    }
    out->owned[out->n_owned++] = text;
    return JL_OK;
}

static jl_status push_text(jl_segments *out, const char *text, size_t len, int trainable) {
    if (len == 0) return JL_OK;
    if (out->n == out->cap) {
        size_t cap = out->cap ? 2 * out->cap : 16;
        jl_segment *p = realloc(out->items, sizeof *p * cap);
        if (!p) return jl_fail(JL_ERR_NOMEM, "out of memory");
        out->items = p;
        out->cap = cap;
    }
    out->items[out->n++] = (jl_segment){-1, text, len, trainable, 1};
    return JL_OK;
}

/* End of turn i's span: the last non-space byte written while the loop ran over message i. */
static size_t span_end(const char *text, const jl_template_span *sp) {
    size_t end = sp->end, m;
    while (end > sp->start && (m = jj_space_before(text, end)) > 0) end -= m;
    return end;
}

/* [start, end) of assistant turn i in the full text F (len bytes). */
static jl_status assistant_span(const jl_chat_format *f, const jl_conversation *conv, int i, const char *full,
                                size_t len, const jl_template_span *spans, size_t *start, size_t *end) {
    char *prefix;
    size_t plen;
    jl_status st = render_text(f, conv, i, 1, NULL, &prefix, &plen);
    if (st != JL_OK) return st;
    int is_prefix = plen <= len && memcmp(prefix, full, plen) == 0;
    free(prefix);
    if (!is_prefix)
        return jl_fail(JL_ERR_FORMAT, "chat template: the prompt before turn %d (with add_generation_prompt) is not "
                       "how the whole conversation renders it, so the assistant's loss mask cannot be derived", i + 1);
    *start = plen;
    if (!spans[i].seen)
        return jl_fail(JL_ERR_FORMAT, "chat template: turn %d is not written inside a loop over messages, so the "
                       "assistant's loss mask cannot be derived", i + 1);
    *end = span_end(full, &spans[i]);
    if (*end < *start || spans[i].start > *start)
        return jl_fail(JL_ERR_FORMAT, "chat template: the assistant turn %d is not after its prompt in the rendered "
                       "text, so its loss mask cannot be derived", i + 1);
    return JL_OK;
}

static jl_status render_train_jinja(const jl_chat_format *f, const jl_conversation *conv, jl_segments *out) {
    int n = conv->n_turns;
    jl_template_span *spans = calloc((size_t)(n ? n : 1), sizeof *spans);
    if (!spans) return jl_fail(JL_ERR_NOMEM, "out of memory");
    char *full;
    size_t len, done = 0;
    jl_status st = render_text(f, conv, n, 0, spans, &full, &len);
    if (st == JL_OK) st = keep_text(out, full);
    for (int i = 0; st == JL_OK && i < n; i++) {
        if (conv->turns[i].role != JL_ROLE_ASSISTANT) continue;
        size_t start = 0, end = 0;
        st = assistant_span(f, conv, i, full, len, spans, &start, &end);
        if (st == JL_OK && start < done)
            st = jl_fail(JL_ERR_FORMAT, "chat template: assistant turn %d overlaps the one before", i + 1);
        if (st == JL_OK) st = push_text(out, full + done, start - done, 0);
        if (st == JL_OK) st = push_text(out, full + start, end - start, 1);
        done = end;
    }
    if (st == JL_OK) st = push_text(out, full + done, len - done, 0);
    free(spans);
    return st;
}

/* ---------------------------------------------------------------- public rendering */

static jl_status check_conversation(const jl_conversation *conv) {
    if (!conv || conv->n_turns < 0 || (conv->n_turns > 0 && !conv->turns))
        return jl_fail(JL_ERR_ARG, "chat template: no conversation");
    for (int i = 0; i < conv->n_turns; i++)
        if (!conv->turns[i].content || conv->turns[i].role < JL_ROLE_SYSTEM || conv->turns[i].role > JL_ROLE_TOOL)
            return jl_fail(JL_ERR_ARG, "chat template: turn %d has no content or an unknown role", i);
    return JL_OK;
}

jl_status jl_chat_format_render(const jl_chat_format *f, const jl_conversation *conv, jl_segments *out) {
    if (jl_chat_format_is_builtin(f)) return jl_chat_render(conv, out);
    jl_status st = check_conversation(conv);
    size_t n0 = out->n;
    if (st == JL_OK) st = render_train_jinja(f, conv, out);
    if (st != JL_OK) out->n = n0;
    return st;
}

jl_status jl_chat_format_render_generation(const jl_chat_format *f, const jl_conversation *conv, jl_segments *out) {
    if (jl_chat_format_is_builtin(f)) return jl_chat_render_generation(conv, out);
    jl_status st = check_conversation(conv);
    if (st != JL_OK) return st;
    int n = conv->n_turns;
    if (n > 0 && conv->turns[n - 1].role == JL_ROLE_ASSISTANT) n--;
    int has_user = 0;
    for (int i = 0; i < n; i++) has_user |= conv->turns[i].role == JL_ROLE_USER;
    if (!has_user) return jl_fail(JL_ERR_ARG, "chat template: nothing to answer (no user turn)");
    char *text;
    size_t len;
    st = render_text(f, conv, n, 1, NULL, &text, &len);
    if (st == JL_OK) st = keep_text(out, text);
    if (st == JL_OK) st = push_text(out, text, len, 0);
    return st;
}

/* ---------------------------------------------------------------- construction */

/* The end-of-turn marker: what the template writes after an assistant's content inside its span. */
static jl_status find_stops(jl_chat_format *f) {
    static const char probe[] = "\x01jielong-probe\x02";
    jl_turn turns[2] = {{JL_ROLE_USER, "Hi"}, {JL_ROLE_ASSISTANT, probe}};
    jl_conversation conv = {turns, 2};
    jl_segments segs = {0};
    jl_status st = render_train_jinja(f, &conv, &segs);
    for (size_t i = 0; st == JL_OK && i < segs.n; i++) {
        const jl_segment *g = &segs.items[i];
        const char *hit = g->trainable ? memmem(g->text, g->len, probe, sizeof probe - 1) : NULL;
        if (!hit) continue;
        size_t after = (size_t)(hit - g->text) + sizeof probe - 1;
        if (after < g->len && !(f->stop_strings[f->n_stops] = strndup(hit + sizeof probe - 1, g->len - after)))
            st = jl_fail(JL_ERR_NOMEM, "out of memory");
        else if (after < g->len)
            f->n_stops++;
        break;
    }
    jl_segments_free(&segs);
    if (st == JL_ERR_NOMEM) return st;
    jl_clear_error(); /* a template that refuses the probe conversation: only eos ends an answer */
    if (f->eos[0] && (f->n_stops == 0 || strcmp(f->stop_strings[0], f->eos) != 0)) {
        if (!(f->stop_strings[f->n_stops] = strdup(f->eos))) return jl_fail(JL_ERR_NOMEM, "out of memory");
        f->n_stops++;
    }
    for (int i = 0; i < f->n_stops; i++) f->stops[i] = f->stop_strings[i];
    return JL_OK;
}

jl_status jl_chat_format_new(const char *jinja, const char *bos_token, const char *eos_token, jl_chat_format **out) {
    *out = NULL;
    jl_chat_format *f = calloc(1, sizeof *f);
    if (!f) return jl_fail(JL_ERR_NOMEM, "out of memory");
    f->bos = dup_or_empty(bos_token);
    f->eos = dup_or_empty(eos_token);
    f->text = jinja ? strdup(jinja) : NULL;
    jl_status st = f->bos && f->eos && (!jinja || f->text) ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory");
    if (jinja && strcmp(jinja, jl_chat_template_jinja()) == 0) jinja = NULL; /* ours: the C renderer, exactly */
    if (st == JL_OK && jinja && (st = jl_template_parse(jinja, strlen(jinja), &f->t)) != JL_OK)
        jl_fail_context(st, "chat template");
    if (st == JL_OK && f->t && (st = find_stops(f)) != JL_OK)
        jl_fail_context(st, "chat template (a user turn and an assistant turn)");
    if (st != JL_OK) {
        jl_chat_format_free(f);
        return st;
    }
    *out = f;
    return JL_OK;
}

jl_status jl_chat_format_from_checkpoint(const jl_checkpoint *ck, jl_chat_format **out) {
    return jl_chat_format_new(ck->chat_template, ck->bos_token, ck->eos_token, out);
}

/* ---------------------------------------------------------------- encoding */

jl_status jl_segments_encode(const jl_tokenizer *tok, const jl_segments *s, int32_t **ids_out, uint8_t **train_out,
                             size_t *n_out) {
    *ids_out = NULL;
    if (train_out) *train_out = NULL;
    *n_out = 0;
    size_t n = 0, cap = 64;
    int32_t *ids = malloc(sizeof *ids * cap);
    uint8_t *train = malloc(cap);
    jl_status st = ids && train ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < s->n && st == JL_OK; i++) {
        const jl_segment *g = &s->items[i];
        int32_t one, *piece = &one;
        size_t np = 1;
        if (g->special >= 0) {
            one = jl_tokenizer_special(tok, jl_special_name((jl_special)g->special));
            if (one < 0) st = jl_fail(JL_ERR_ARG, "tokenizer has no %s token", jl_special_name((jl_special)g->special));
        } else {
            st = jl_tokenizer_encode(tok, g->text, g->len, g->encode_special, &piece, &np);
        }
        if (st == JL_OK && n + np > cap) {
            while (n + np > cap) cap *= 2;
            int32_t *ni = realloc(ids, sizeof *ids * cap);
            if (ni) ids = ni;
            uint8_t *nt = ni ? realloc(train, cap) : NULL;
            if (nt) train = nt;
            if (!ni || !nt) st = jl_fail(JL_ERR_NOMEM, "out of memory");
        }
        if (st == JL_OK) {
            memcpy(ids + n, piece, sizeof *ids * np);
            memset(train + n, g->trainable ? 1 : 0, np);
            n += np;
        }
        if (piece != &one) free(piece);
    }
    if (st != JL_OK) {
        free(ids);
        free(train);
        return st;
    }
    *ids_out = ids;
    if (train_out) *train_out = train;
    else free(train);
    *n_out = n;
    return JL_OK;
}

/* ---------------------------------------------------------------- stops as token ids */

static jl_status add_stop(jl_chat_stops *s, const int32_t *ids, size_t n) {
    if (n == 0 || s->n == JL_CHAT_STOPS_MAX) return JL_OK;
    for (int i = 0; i < s->n; i++)
        if (s->len[i] == n && memcmp(s->ids[i], ids, n * sizeof *ids) == 0) return JL_OK; /* eos named twice */
    if (!(s->ids[s->n] = malloc(n * sizeof *ids))) return jl_fail(JL_ERR_NOMEM, "out of memory");
    memcpy(s->ids[s->n], ids, n * sizeof *ids);
    s->len[s->n++] = n;
    return JL_OK;
}

jl_status jl_chat_stops_new(const jl_tokenizer *tok, const jl_chat_format *f, jl_chat_stops *out) {
    memset(out, 0, sizeof *out);
    int32_t end = jl_tokenizer_special(tok, "<|end|>"), eos = jl_tokenizer_eos(tok);
    jl_status st = JL_OK;
    if (jl_chat_format_is_builtin(f) && end >= 0) st = add_stop(out, &end, 1);
    const char *const *strs;
    int n = jl_chat_format_stops(f, &strs);
    for (int i = 0; i < n && st == JL_OK; i++) {
        int32_t *ids = NULL;
        size_t len = 0;
        st = jl_tokenizer_encode(tok, strs[i], strlen(strs[i]), 1, &ids, &len);
        if (st == JL_OK) st = add_stop(out, ids, len);
        free(ids);
    }
    if (st == JL_OK && eos >= 0) st = add_stop(out, &eos, 1);
    if (st != JL_OK) jl_chat_stops_free(out);
    return st;
}

size_t jl_chat_stops_match(const jl_chat_stops *s, const int32_t *ids, size_t n) {
    size_t best = 0;
    for (int i = 0; i < s->n; i++)
        if (s->len[i] <= n && s->len[i] > best && memcmp(ids + n - s->len[i], s->ids[i], s->len[i] * sizeof *ids) == 0)
            best = s->len[i];
    return best;
}

void jl_chat_stops_free(jl_chat_stops *s) {
    for (int i = 0; i < s->n; i++) free(s->ids[i]);
    memset(s, 0, sizeof *s);
}
