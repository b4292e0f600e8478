/* The datasets every stage derives from the poem corpus: pretraining text, SFT conversations, preference
 * pairs, RL prompts (train split) and their held-out counterparts for evaluation. Each file is written
 * atomically; every choice follows from the seed. */
#include "data/jsonl.h"
#include "core/utf8.h"
#include "data/poem_tasks.h"
#include "data/poem_text.h"
#include "io/fileio.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Salts so each file draws its own random stream from one seed. */
enum { SALT_PRETRAIN = 1, SALT_SFT, SALT_PREFS, SALT_PROMPTS };

static const char *const task_names[JL_TASK_COUNT] = {"write", "author", "continue", "form"};
const char *jl_poem_task_name(jl_poem_task t) {
    return t == JL_TASK_CHAT ? "chat" : (t >= 0 && t < JL_TASK_COUNT) ? task_names[t] : "?";
}

void jl_poem_build_defaults(jl_poem_build_options *opt) {
    memset(opt, 0, sizeof *opt);
    opt->seed = 1234;
    opt->general_fraction = 0.03;
    opt->system_fraction = 0.1;
    opt->write_copies = 3;
    opt->anthologies = 1;
    opt->invented_titles = 0.3;
    opt->copy_docs = 0;
    opt->repeat_docs = 0;
}

static void seed_rng(jl_rng *rng, const jl_poem_build_options *opt, uint64_t salt) {
    jl_rng_seed(rng, opt->seed ^ (salt * 0xD1B54A32D192ED03ull));
}

/* Indices of the poems of `split`, in a seeded random order. Caller frees. */
static size_t *split_order(const jl_poems *poems, jl_split split, jl_rng *rng, size_t *n_out) {
    size_t total = jl_poems_count(poems), n = 0;
    size_t *idx = malloc(sizeof *idx * (total ? total : 1));
    if (!idx) return NULL;
    for (size_t i = 0; i < total; i++)
        if (jl_poems_get(poems, i)->heldout == (split == JL_SPLIT_HELDOUT)) idx[n++] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = jl_rng_below(rng, i), t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
    *n_out = n;
    return idx;
}

/* Shared set-up of every writer: checks, the poem order, the output file. */
typedef struct {
    jl_rng rng;
    size_t *order, n;
    jl_atomic_file file;
    jl_text a, b, c, d; /* scratch texts */
} writer;

static jl_status writer_open(writer *w, const jl_poems *poems, jl_split split, const char *path,
                             const jl_poem_build_options *opt, uint64_t salt) {
    memset(w, 0, sizeof *w);
    if (!poems || !path || !opt) return jl_fail(JL_ERR_ARG, "poem datasets: missing argument");
    seed_rng(&w->rng, opt, salt);
    w->order = split_order(poems, split, &w->rng, &w->n);
    if (!w->order) return jl_fail(JL_ERR_NOMEM, "%s: out of memory", path);
    if (w->n == 0) {
        free(w->order);
        return jl_fail(JL_ERR_ARG, "%s: the corpus has no %s poems", path, split == JL_SPLIT_TRAIN ? "train" : "held-out");
    }
    jl_status st = jl_atomic_open(&w->file, path);
    if (st != JL_OK) free(w->order);
    return st;
}

static jl_status writer_close(writer *w, jl_status st) {
    if (st == JL_OK && (w->a.failed || w->b.failed || w->c.failed)) st = jl_fail(JL_ERR_NOMEM, "out of memory");
    if (st == JL_OK) st = jl_atomic_commit(&w->file);
    else jl_atomic_abort(&w->file);
    free(w->order);
    jl_text_free(&w->a);
    jl_text_free(&w->b);
    jl_text_free(&w->c);
    jl_text_free(&w->d);
    return st;
}

static void clear_texts(writer *w) {
    jl_text_clear(&w->a);
    jl_text_clear(&w->b);
    jl_text_clear(&w->c);
    jl_text_clear(&w->d);
}

static void count_into(jl_poem_build_counts *counts, const jl_poem_build_counts *add) {
    if (!counts) return;
    counts->poems = add->poems ? add->poems : counts->poems;
    counts->documents += add->documents;
    counts->anthologies += add->anthologies;
    counts->copy_docs += add->copy_docs;
    counts->repeat_docs += add->repeat_docs;
    counts->conversations += add->conversations;
    counts->general += add->general;
    counts->pairs += add->pairs;
    counts->prompts += add->prompts;
}

/* ---- pretraining text ---- */

/* Author anthologies: the poems of one author (in the split's seeded order) in groups of 2..ANTHOLOGY_MAX. */
enum { ANTHOLOGY_MAX = 4 };
typedef struct {
    size_t *poem; /* poem indices, grouped: group g is poem[start[g] .. start[g + 1]) */
    size_t *start, n;
} anthologies;

static int by_author(const void *a, const void *b, void *poems) {
    const size_t *x = a, *y = b; /* {poem, position in the seeded order} */
    int c = strcmp(jl_poems_get(poems, x[0])->author, jl_poems_get(poems, y[0])->author);
    return c ? c : (x[1] > y[1]) - (x[1] < y[1]);
}

static jl_status anthologies_build(const jl_poems *poems, const writer *w, anthologies *an) {
    memset(an, 0, sizeof *an);
    size_t *pairs = malloc(sizeof *pairs * 2 * w->n);
    an->poem = malloc(sizeof *an->poem * w->n);
    an->start = malloc(sizeof *an->start * (w->n + 1));
    if (!pairs || !an->poem || !an->start) {
        free(pairs);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    for (size_t k = 0; k < w->n; k++) pairs[2 * k] = w->order[k], pairs[2 * k + 1] = k;
    qsort_r(pairs, w->n, 2 * sizeof *pairs, by_author, (void *)poems);
    size_t used = 0;
    for (size_t k = 0; k < w->n;) {
        size_t end = k;
        const char *author = jl_poems_get(poems, pairs[2 * k])->author;
        while (end < w->n && strcmp(jl_poems_get(poems, pairs[2 * end])->author, author) == 0) end++;
        for (size_t g = k; g + 2 <= end; g += ANTHOLOGY_MAX) { /* groups of up to 4; a last single poem is left out */
            an->start[an->n++] = used;
            for (size_t i = g; i < end && i < g + ANTHOLOGY_MAX; i++) an->poem[used++] = pairs[2 * i];
        }
        k = end;
    }
    an->start[an->n] = used;
    free(pairs);
    return JL_OK;
}

static void anthologies_free(anthologies *an) {
    free(an->poem);
    free(an->start);
}

/* One poem as pretraining text: "《title》（form）author\npoem\n". */
static void render_document(jl_text *t, const jl_poem *p) {
    jl_render_heading(t, p);
    jl_text_puts(t, p->author);
    jl_text_puts(t, "\n");
    jl_render_lines(t, p->lines, p->n_lines);
    jl_text_puts(t, "\n");
}

/* A copy exercise, in place of the plain document: what it repeats is predictable only by copying from the
 * context (few-shot prompts and title requests need that ability, and poems alone rarely reward it).
 * Kind 0 announces the heading ("下面是A的一首F《T》：\n" then the document), kind 1 recites the poem again
 * ("默写《T》：\n" and its lines), kind 2 quotes a couplet back with its title and author. */
static void render_copy_document(jl_text *t, const jl_poem *p, jl_rng *rng) {
    int kind = (int)jl_rng_below(rng, 3);
    if (kind == 0) {
        jl_text_puts(t, "下面是");
        jl_text_puts(t, p->author);
        jl_text_puts(t, "的一首");
        jl_text_puts(t, jl_poem_form_name(p->form));
        jl_text_puts(t, "《");
        jl_text_puts(t, p->title);
        jl_text_puts(t, "》：\n");
    }
    render_document(t, p);
    if (kind == 1) {
        jl_text_puts(t, "默写《");
        jl_text_puts(t, p->title);
        jl_text_puts(t, "》：\n");
        jl_render_lines(t, p->lines, p->n_lines);
        jl_text_puts(t, "\n");
    } else if (kind == 2 && p->n_lines >= 2) {
        int couplet = (int)jl_rng_below(rng, (uint64_t)(p->n_lines / 2));
        jl_text_puts(t, "“");
        jl_render_lines(t, p->lines + 2 * couplet, 2);
        jl_text_puts(t, "”出自");
        jl_text_puts(t, p->author);
        jl_text_puts(t, "的《");
        jl_text_puts(t, p->title);
        jl_text_puts(t, "》。\n");
    }
}

/* n characters, each from a random line of a random poem of the writer's split (so as frequent as in the
 * corpus), appended to `t`. */
static void corpus_chars(writer *w, const jl_poems *poems, int n, jl_text *t) {
    for (int k = 0; k < n; k++) {
        const jl_poem *q = jl_poems_get(poems, w->order[jl_rng_below(&w->rng, w->n)]);
        const char *line = q->lines[jl_rng_below(&w->rng, (uint64_t)q->n_lines)];
        size_t chars = jl_utf8_count(line);
        if (!chars) continue;
        size_t at = jl_utf8_offset(line, (size_t)jl_rng_below(&w->rng, chars));
        uint32_t cp;
        size_t len = jl_utf8_decode(line + at, strlen(line + at), &cp);
        jl_text_append(t, line + at, len ? len : 1);
    }
}

/* A repetition exercise: a line of 4..12 random corpus characters, then the same line 2..5 times more. Nothing
 * predicts the line's first showing; every later one is predictable only by copying it from the context (the
 * in-context copying that few-shot prompts, title requests and tool-call arguments need, and that poems alone
 * reward too rarely for it to form in a short pretraining). */
static void render_repeat_document(writer *w, const jl_poems *poems, jl_text *t) {
    jl_text_clear(&w->b);
    corpus_chars(w, poems, 4 + (int)jl_rng_below(&w->rng, 9), &w->b);
    int times = 3 + (int)jl_rng_below(&w->rng, 4);
    for (int k = 0; k < times && !w->b.failed; k++) {
        jl_text_append(t, w->b.s, w->b.len);
        jl_text_puts(t, "\n");
    }
}

/* "《author》诗选：《t1》《t2》…\n" then each poem as its own document would be. */
static void render_anthology(jl_text *t, const jl_poems *poems, const anthologies *an, size_t g) {
    jl_text_puts(t, "《");
    jl_text_puts(t, jl_poems_get(poems, an->poem[an->start[g]])->author);
    jl_text_puts(t, "》诗选：");
    for (size_t i = an->start[g]; i < an->start[g + 1]; i++) {
        jl_text_puts(t, "《");
        jl_text_puts(t, jl_poems_get(poems, an->poem[i])->title);
        jl_text_puts(t, "》");
    }
    jl_text_puts(t, "\n");
    for (size_t i = an->start[g]; i < an->start[g + 1]; i++) render_document(t, jl_poems_get(poems, an->poem[i]));
}

jl_status jl_poems_write_pretrain(const jl_poems *poems, jl_split split, const char *path,
                                  const jl_poem_build_options *opt, jl_poem_build_counts *counts) {
    writer w;
    jl_status st = writer_open(&w, poems, split, path, opt, SALT_PRETRAIN);
    if (st != JL_OK) return st;
    anthologies an = {0};
    if (split == JL_SPLIT_TRAIN && opt->anthologies) st = anthologies_build(poems, &w, &an);
    size_t shown = 0; /* anthologies written so far: spread evenly among the single poems */
    size_t copies = 0, repeats = 0;
    for (size_t k = 0; st == JL_OK && k < w.n; k++) {
        clear_texts(&w);
        if (k) jl_text_puts(&w.a, "\n");
        const jl_poem *p = jl_poems_get(poems, w.order[k]);
        if (split == JL_SPLIT_TRAIN && opt->copy_docs > 0 && jl_rng_uniform(&w.rng) < opt->copy_docs) {
            render_copy_document(&w.a, p, &w.rng);
            copies++;
        } else {
            render_document(&w.a, p);
        }
        if (split == JL_SPLIT_TRAIN && opt->repeat_docs > 0 && jl_rng_uniform(&w.rng) < opt->repeat_docs) {
            jl_text_puts(&w.a, "\n");
            render_repeat_document(&w, poems, &w.a);
            repeats++;
        }
        for (; shown < an.n && shown * w.n < (k + 1) * an.n; shown++) {
            jl_text_puts(&w.a, "\n");
            render_anthology(&w.a, poems, &an, shown);
        }
        if (!w.a.failed && fwrite(w.a.s, 1, w.a.len, w.file.f) != w.a.len)
            st = jl_fail(JL_ERR_IO, "%s: write failed: %s", path, errno ? strerror(errno) : "I/O error");
    }
    anthologies_free(&an);
    count_into(counts, &(jl_poem_build_counts){.poems = w.n, .documents = w.n, .anthologies = an.n, .copy_docs = copies,
                                                .repeat_docs = repeats});
    return writer_close(&w, st);
}

/* ---- SFT conversations ---- */

/* Author probes: training poems whose author is asked only by the evaluation prompts, never by SFT, so a right
 * answer there comes from pretraining ("author accuracy for poems seen in pretraining"). */
enum { AUTHOR_PROBE_EVERY = 20 };
static int author_probe(const jl_poems *poems, size_t index) {
    return index % AUTHOR_PROBE_EVERY == 0 && !jl_poems_get(poems, index)->heldout;
}

static void add_message(json_object *messages, const char *role, const char *content) {
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string(role));
    json_object_object_add(m, "content", json_object_new_string(content ? content : ""));
    json_object_array_add(messages, m);
}

static void maybe_add_system(json_object *messages, writer *w, const jl_poem_build_options *opt) {
    if (jl_rng_uniform(&w->rng) < opt->system_fraction) add_message(messages, "system", jl_system_prompt(&w->rng));
}

static jl_status write_record(writer *w, json_object *obj) {
    jl_status st = obj ? jl_json_write_line(w->file.f, obj, w->file.path) : jl_fail(JL_ERR_NOMEM, "out of memory");
    json_object_put(obj);
    return st;
}

/* An invented title of 2..6 Han characters drawn by corpus_chars (the corpus has no such title to remember: a
 * heading that carries it was copied from the request). */
static void invented_title(writer *w, const jl_poems *poems, jl_text *t) {
    corpus_chars(w, poems, 2 + (int)jl_rng_below(&w->rng, 5), t);
}

static jl_status write_task_conversation(writer *w, const jl_poems *poems, const jl_poem *p, jl_poem_task task,
                                         const jl_poem_build_options *opt) {
    clear_texts(w);
    json_object *obj = json_object_new_object(), *messages = json_object_new_array();
    maybe_add_system(messages, w, opt);
    jl_poem renamed;
    if (task == JL_TASK_WRITE && opt->invented_titles > 0 && jl_rng_uniform(&w->rng) < opt->invented_titles) {
        invented_title(w, poems, &w->d);
        renamed = *p;
        renamed.title = jl_text_str(&w->d);
        p = &renamed;
    }
    jl_task_render(p, task, &w->rng, &w->a, &w->b, &w->c);
    add_message(messages, "user", jl_text_str(&w->a));
    add_message(messages, "assistant", jl_text_str(&w->b));
    json_object_object_add(obj, "messages", messages);
    json_object_object_add(obj, "task", json_object_new_string(jl_poem_task_name(task)));
    return write_record(w, obj);
}

/* A general chat exchange; one time in four it goes on with a poem request, so multi-turn chats are seen. */
static jl_status write_general_conversation(writer *w, const jl_poems *poems, const jl_poem_build_options *opt) {
    clear_texts(w);
    json_object *obj = json_object_new_object(), *messages = json_object_new_array();
    maybe_add_system(messages, w, opt);
    jl_chat_topic_render(jl_chat_topic_pick(&w->rng), &w->rng, &w->a, &w->b);
    add_message(messages, "user", jl_text_str(&w->a));
    add_message(messages, "assistant", jl_text_str(&w->b));
    if (jl_rng_below(&w->rng, 4) == 0) {
        const jl_poem *p = jl_poems_get(poems, w->order[jl_rng_below(&w->rng, w->n)]);
        clear_texts(w);
        jl_task_render(p, JL_TASK_WRITE, &w->rng, &w->a, &w->b, &w->c);
        add_message(messages, "user", jl_text_str(&w->a));
        add_message(messages, "assistant", jl_text_str(&w->b));
    }
    json_object_object_add(obj, "messages", messages);
    json_object_object_add(obj, "task", json_object_new_string("chat"));
    return write_record(w, obj);
}

/* Items 0..n*JL_TASK_COUNT-1 are (poem, task) pairs; the rest general chat; all in a seeded order. */
static size_t *sft_items(writer *w, size_t n_items) {
    size_t *items = malloc(sizeof *items * n_items);
    if (!items) return NULL;
    for (size_t i = 0; i < n_items; i++) items[i] = i;
    for (size_t i = n_items; i > 1; i--) {
        size_t j = jl_rng_below(&w->rng, i), t = items[i - 1];
        items[i - 1] = items[j];
        items[j] = t;
    }
    return items;
}

jl_status jl_poems_write_sft(const jl_poems *poems, jl_split split, const char *path,
                             const jl_poem_build_options *opt, jl_poem_build_counts *counts) {
    writer w;
    jl_status st = writer_open(&w, poems, split, path, opt, SALT_SFT);
    if (st != JL_OK) return st;
    /* per poem: write_copies "write" items, then one item of each other kind */
    const size_t copies = opt->write_copies > 0 ? (size_t)opt->write_copies : 1, per_poem = copies + JL_TASK_COUNT - 1;
    size_t n_tasks = w.n * per_poem, n_general = 0;
    double share = opt->general_fraction;
    if (split == JL_SPLIT_TRAIN && share > 0 && share < 1) n_general = (size_t)(share * (double)n_tasks / (1 - share) + 0.5);
    size_t *items = sft_items(&w, n_tasks + n_general), written = 0;
    if (!items) st = jl_fail(JL_ERR_NOMEM, "%s: out of memory", path);
    for (size_t k = 0; st == JL_OK && k < n_tasks + n_general; k++) {
        if (items[k] >= n_tasks) {
            st = write_general_conversation(&w, poems, opt);
        } else {
            const size_t poem = w.order[items[k] / per_poem], slot = items[k] % per_poem;
            const jl_poem_task task = slot < copies ? JL_TASK_WRITE : (jl_poem_task)(slot - copies + 1);
            if (task == JL_TASK_AUTHOR && author_probe(poems, poem)) continue;
            st = write_task_conversation(&w, poems, jl_poems_get(poems, poem), task, opt);
        }
        written++;
    }
    free(items);
    count_into(counts, &(jl_poem_build_counts){.poems = w.n, .conversations = written, .general = n_general});
    return writer_close(&w, st);
}

/* ---- preference pairs ---- */

jl_status jl_poems_write_prefs(const jl_poems *poems, jl_split split, const char *path,
                               const jl_poem_build_options *opt, jl_poem_build_counts *counts) {
    writer w;
    jl_status st = writer_open(&w, poems, split, path, opt, SALT_PREFS);
    if (st != JL_OK) return st;
    for (size_t k = 0; st == JL_OK && k < w.n; k++) {
        const jl_poem *p = jl_poems_get(poems, w.order[k]);
        jl_corruption kind = (jl_corruption)(k % JL_CORRUPT_COUNT); /* the order is random: kinds stay balanced */
        clear_texts(&w);
        jl_task_write_prompt(p, &w.rng, &w.a);
        jl_render_heading(&w.b, p); /* both sides open with the heading, as the assistant's poems do */
        jl_text_puts(&w.b, "\n");
        jl_text_append(&w.c, w.b.s, w.b.len);
        jl_render_lines(&w.b, p->lines, p->n_lines);
        char *corrupted = jl_poem_corrupt(poems, w.order[k], kind, &w.rng.state);
        if (corrupted) jl_text_puts(&w.c, corrupted);
        free(corrupted);
        const char *rejected = corrupted && jl_text_str(&w.c) ? w.c.s : NULL;
        json_object *obj = json_object_new_object();
        json_object_object_add(obj, "prompt", json_object_new_string(jl_text_str(&w.a) ? w.a.s : ""));
        json_object_object_add(obj, "chosen", json_object_new_string(jl_text_str(&w.b) ? w.b.s : ""));
        json_object_object_add(obj, "rejected", json_object_new_string(rejected ? rejected : ""));
        json_object_object_add(obj, "form", json_object_new_string(jl_poem_form_id(p->form)));
        json_object_object_add(obj, "corruption", json_object_new_string(jl_corruption_name(kind)));
        st = rejected ? write_record(&w, obj) : (json_object_put(obj), jl_fail(JL_ERR_NOMEM, "out of memory"));
    }
    count_into(counts, &(jl_poem_build_counts){.poems = w.n, .pairs = w.n});
    return writer_close(&w, st);
}

/* ---- RL prompts (train) and evaluation prompts (held-out; author questions about author probes) ---- */

/* The author probes' indices in corpus order. Caller frees. */
static size_t *author_probes(const jl_poems *poems, size_t *n_out) {
    size_t total = jl_poems_count(poems), n = 0;
    size_t *idx = malloc(sizeof *idx * (total ? total : 1));
    for (size_t i = 0; idx && i < total; i++)
        if (author_probe(poems, i)) idx[n++] = i;
    *n_out = n;
    return idx;
}

static jl_status write_prompt(writer *w, const jl_poem *p, jl_poem_task task, int with_expected) {
    clear_texts(w);
    if (task == JL_TASK_WRITE && !with_expected) jl_task_write_prompt(p, &w->rng, &w->a);
    else jl_task_render(p, task, &w->rng, &w->a, &w->b, &w->c);
    json_object *obj = json_object_new_object();
    json_object_object_add(obj, "prompt", json_object_new_string(jl_text_str(&w->a) ? w->a.s : ""));
    json_object_object_add(obj, "task", json_object_new_string(jl_poem_task_name(task)));
    json_object_object_add(obj, "form", json_object_new_string(jl_poem_form_id(p->form)));
    json_object_object_add(obj, "title", json_object_new_string(p->title));
    if (with_expected) {
        json_object_object_add(obj, "author", json_object_new_string(p->author));
        json_object_object_add(obj, "expected", json_object_new_string(jl_text_str(&w->c) ? w->c.s : ""));
        json_object_object_add(obj, "answer", json_object_new_string(jl_text_str(&w->b) ? w->b.s : ""));
    }
    return write_record(w, obj);
}

jl_status jl_poems_write_prompts(const jl_poems *poems, jl_split split, const char *path,
                                 const jl_poem_build_options *opt, jl_poem_build_counts *counts) {
    writer w;
    jl_status st = writer_open(&w, poems, split, path, opt, SALT_PROMPTS);
    if (st != JL_OK) return st;
    int eval = split == JL_SPLIT_HELDOUT, tasks = eval ? JL_TASK_COUNT : 1;
    size_t n_probes = 0, *probes = eval ? author_probes(poems, &n_probes) : NULL, written = 0;
    if (eval && !probes) st = jl_fail(JL_ERR_NOMEM, "%s: out of memory", path);
    for (size_t k = 0; st == JL_OK && k < w.n; k++)
        for (int t = 0; st == JL_OK && t < tasks; t++) {
            const jl_poem *p = jl_poems_get(poems, w.order[k]);
            if (eval && t == JL_TASK_AUTHOR) { /* held-out: the k-th author probe instead */
                if (k >= n_probes) continue;
                p = jl_poems_get(poems, probes[k]);
            }
            st = write_prompt(&w, p, (jl_poem_task)t, eval);
            written++;
        }
    free(probes);
    for (int k = 0; eval && st == JL_OK && k < jl_chat_probe_count(); k++, written++) {
        const char *prompt, *expected, *answer;
        jl_chat_probe(k, &prompt, &expected, &answer);
        json_object *obj = json_object_new_object();
        json_object_object_add(obj, "prompt", json_object_new_string(prompt));
        json_object_object_add(obj, "task", json_object_new_string("chat"));
        json_object_object_add(obj, "expected", json_object_new_string(expected));
        json_object_object_add(obj, "answer", json_object_new_string(answer));
        st = write_record(&w, obj);
    }
    count_into(counts, &(jl_poem_build_counts){.poems = w.n, .prompts = written});
    return writer_close(&w, st);
}

/* ---- everything ---- */

static jl_status join_path(char *buf, size_t size, const char *dir, const char *name) {
    if ((size_t)snprintf(buf, size, "%s/%s", dir, name) >= size) return jl_fail(JL_ERR_ARG, "%s: path too long", dir);
    return JL_OK;
}

jl_status jl_poems_write_all(const jl_poems *poems, const char *dir, const jl_poem_build_options *opt,
                             jl_poem_build_counts *train, jl_poem_build_counts *heldout) {
    typedef jl_status (*write_fn)(const jl_poems *, jl_split, const char *, const jl_poem_build_options *,
                                  jl_poem_build_counts *);
    static const struct {
        const char *name;
        jl_split split;
        write_fn write;
    } files[] = {
        {"pretrain.txt", JL_SPLIT_TRAIN, jl_poems_write_pretrain},
        {"sft.jsonl", JL_SPLIT_TRAIN, jl_poems_write_sft},
        {"prefs.jsonl", JL_SPLIT_TRAIN, jl_poems_write_prefs},
        {"rl_prompts.jsonl", JL_SPLIT_TRAIN, jl_poems_write_prompts},
        {"eval_pretrain.txt", JL_SPLIT_HELDOUT, jl_poems_write_pretrain},
        {"eval_sft.jsonl", JL_SPLIT_HELDOUT, jl_poems_write_sft},
        {"eval_prefs.jsonl", JL_SPLIT_HELDOUT, jl_poems_write_prefs},
        {"eval_prompts.jsonl", JL_SPLIT_HELDOUT, jl_poems_write_prompts},
    };
    jl_poem_build_counts counts[2] = {{0}, {0}};
    jl_status st = jl_mkdir_p(dir);
    for (size_t i = 0; st == JL_OK && i < sizeof files / sizeof files[0]; i++) {
        char path[4096];
        st = join_path(path, sizeof path, dir, files[i].name);
        if (st == JL_OK) st = files[i].write(poems, files[i].split, path, opt, &counts[files[i].split]);
    }
    if (train) *train = counts[JL_SPLIT_TRAIN];
    if (heldout) *heldout = counts[JL_SPLIT_HELDOUT];
    return st;
}
