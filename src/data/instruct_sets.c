/* jielong data instruct: self-instruct writing instructions. The model continues "《" into a heading
 * "title》（form）" as pretraining taught it; each new title becomes an instruction, in the heading's form or, when
 * the heading names none, a form drawn at random. The answers
 * come from `jielong distill --synthesize` (the teacher), filtered by the poem rules there. */
#include "core/rng.h"
#include "core/utf8.h"
#include "data/jsonl.h"
#include "data/poem_tasks.h"
#include "io/fileio.h"
#include "jielong/generate.h"
#include "jielong/model.h"
#include "jielong/rules.h"
#include "jielong/synth.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jl_instruct_defaults(jl_instruct_options *o) {
    memset(o, 0, sizeof *o);
    o->seed = 1234;
    o->n = 500;
    o->max_tries = 8;
    o->temperature = 1.0f;
}

/* Han characters of s[0..len), or -1 when another character is among them. */
static int han_count(const char *s, size_t len) {
    int n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t used = jl_utf8_decode(s + i, len - i, &cp);
        if (!used || !jl_is_han(cp)) return -1;
        i += used;
        n++;
    }
    return n;
}

int jl_instruct_parse_heading(const char *text, char *title, size_t cap, jl_poem_form *form) {
    const char *close = strstr(text, "》");
    if (!close || (size_t)(close - text) >= cap) return 0;
    int chars = han_count(text, (size_t)(close - text));
    if (chars < 2 || chars > 12) return 0;
    memcpy(title, text, (size_t)(close - text));
    title[close - text] = '\0';
    const char *open = close + strlen("》");
    if (strncmp(open, "（", strlen("（")) != 0) return 2;
    open += strlen("（");
    const char *end = strstr(open, "）");
    for (int f = 0; end && f < 4; f++) {
        const char *name = jl_poem_form_name((jl_poem_form)f);
        if ((size_t)(end - open) == strlen(name) && !strncmp(open, name, strlen(name))) {
            *form = (jl_poem_form)f;
            return 1;
        }
    }
    return 2;
}

typedef struct {
    char **v;
    size_t n, cap;
} title_list;

static int title_seen(const title_list *l, const char *t) {
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], t)) return 1;
    return 0;
}

static int title_known(const jl_poems *known, const char *t) {
    for (size_t i = 0; known && i < jl_poems_count(known); i++)
        if (!strcmp(jl_poems_get(known, i)->title, t)) return 1;
    return 0;
}

static jl_status title_add(title_list *l, const char *t) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) return jl_fail(JL_ERR_NOMEM, "out of memory");
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(t))) return jl_fail(JL_ERR_NOMEM, "out of memory");
    l->n++;
    return JL_OK;
}

typedef struct {
    char *text;
    size_t len, cap;
} grow_text;

static int collect(void *user, const jl_gen_event *ev) {
    grow_text *g = user;
    if (g->len + ev->text_len + 1 > g->cap) return 1; /* a heading is short: stop */
    memcpy(g->text + g->len, ev->text, ev->text_len);
    g->len += ev->text_len;
    g->text[g->len] = '\0';
    return 0;
}

/* One instruction for title/form as {"prompt","task","form","title","source"}. */
static jl_status write_instruction(FILE *f, const char *path, const char *title, jl_poem_form form, jl_rng *rng) {
    static const char *const blank[8] = {"", "", "", "", "", "", "", ""};
    jl_poem p = {.title = title, .author = "", .form = form, .lines = blank, .n_lines = jl_poem_form_lines(form)};
    jl_text user = {0};
    jl_task_write_prompt(&p, rng, &user);
    if (!jl_text_str(&user)) return jl_fail(JL_ERR_NOMEM, "out of memory");
    json_object *o = json_object_new_object();
    json_object_object_add(o, "prompt", json_object_new_string(jl_text_str(&user)));
    json_object_object_add(o, "task", json_object_new_string("write"));
    json_object_object_add(o, "form", json_object_new_string(jl_poem_form_id(form)));
    json_object_object_add(o, "title", json_object_new_string(title));
    json_object_object_add(o, "source", json_object_new_string("self-instruct"));
    jl_status st = jl_json_write_line(f, o, path);
    json_object_put(o);
    jl_text_free(&user);
    return st;
}

static jl_status sample_all(jl_session *s, jl_sampler *smp, const jl_tokenizer *tok, const jl_poems *known,
                            const jl_instruct_options *o, jl_atomic_file *af, const char *path,
                            jl_instruct_counts *c) {
    int32_t *ids = NULL;
    int n_ids = 0;
    jl_status st = jl_encode_prompt(tok, "《", &ids, &n_ids);
    char buf[256], title[128];
    title_list seen = {0};
    jl_rng rng;
    jl_rng_seed(&rng, o->seed);
    const char *const stops[] = {"\n"};
    jl_gen_opts go = {.max_tokens = 24, .stops = stops, .n_stops = 1};
    for (long tries = 0; st == JL_OK && (int)c->written < o->n && tries < (long)o->n * o->max_tries; tries++) {
        grow_text g = {.text = buf, .cap = sizeof buf};
        buf[0] = '\0';
        jl_gen_result res;
        jl_session_truncate(s, 0);
        st = jl_generate(s, smp, tok, ids, n_ids, &go, collect, &g, &res);
        if (st != JL_OK) break;
        c->sampled++;
        jl_poem_form form = JL_FORM_NONE;
        int parsed = jl_instruct_parse_heading(buf, title, sizeof title, &form);
        if (!parsed) c->bad++;
        else if (title_known(known, title)) c->known++;
        else if (title_seen(&seen, title)) c->repeated++;
        else {
            if (parsed == 2) { /* a title without a form (an SFT model heads answers "《title》的作者是…"): draw one */
                form = (jl_poem_form)jl_rng_below(&rng, 4);
                c->drawn_form++;
            }
            if ((st = title_add(&seen, title)) == JL_OK &&
                (st = write_instruction(af->f, path, title, form, &rng)) == JL_OK)
                c->written++;
        }
    }
    for (size_t i = 0; i < seen.n; i++) free(seen.v[i]);
    free(seen.v);
    free(ids);
    return st;
}

jl_status jl_instruct_write(jl_model *m, const jl_tokenizer *tok, const jl_poems *known, const char *out_path,
                            const jl_instruct_options *o, jl_instruct_counts *counts) {
    memset(counts, 0, sizeof *counts);
    if (o->n < 0 || o->max_tries < 1 || !(o->temperature >= 0))
        return jl_fail(JL_ERR_ARG, "instructions ≥ 0, tries ≥ 1 and temperature ≥ 0 are needed");
    jl_session *s = NULL;
    jl_sampler *smp = NULL;
    jl_sampler_params sp;
    jl_sampler_defaults(&sp);
    sp.temperature = o->temperature;
    sp.top_p = 1.0f;
    sp.seed = o->seed;
    jl_atomic_file af;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", out_path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) *slash = '\0';
    jl_status st = slash && slash != dir ? jl_mkdir_p(dir) : JL_OK; /* the file's folder, as other outputs get */
    if (st == JL_OK) st = jl_session_new(m, jl_model_config(m)->max_seq_len, &s);
    if (st == JL_OK) st = jl_sampler_new(&sp, jl_model_config(m)->vocab_size, &smp);
    if (st == JL_OK && (st = jl_atomic_open(&af, out_path)) == JL_OK) {
        st = sample_all(s, smp, tok, known, o, &af, out_path, counts);
        if (st == JL_OK) st = jl_atomic_commit(&af);
        else jl_atomic_abort(&af);
    }
    jl_sampler_free(smp);
    jl_session_free(s);
    return st;
}
