/* Instruction following on held-out poem tasks, scored by rule; with the chat template (tuned models) or as
 * few-shot completion (base models). */
#include "jielong/eval.h"
#include "jielong/generate.h"
#include "jielong/rules.h"
#include "core/timer.h"
#include "core/utf8.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int task_of(const char *name) {
    if (name && strcmp(name, "chat") == 0) return JL_TASK_CHAT;
    for (int k = 0; name && k < JL_TASK_COUNT; k++)
        if (strcmp(name, jl_poem_task_name((jl_poem_task)k)) == 0) return k;
    return -1;
}

/* The answer's first line without its closing punctuation and surrounding spaces. */
static size_t first_line_len(const char *s) {
    size_t n = strcspn(s, "\n");
    static const char *const marks[] = {"，", "。", "！", "？", "；", "、"};
    for (int again = 1; again;) {
        again = 0;
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\r')) n--;
        for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++) {
            size_t m = strlen(marks[i]);
            if (n >= m && memcmp(s + n - m, marks[i], m) == 0) {
                n -= m;
                again = 1;
            }
        }
    }
    return n;
}

/* Han characters in s[0..n), or -1 if anything else is there. */
static long han_count(const char *s, size_t n) {
    long count = 0;
    for (size_t at = 0; at < n;) {
        uint32_t cp;
        size_t used = jl_utf8_decode(s + at, n - at, &cp);
        if (used == 0 || !jl_is_han(cp)) return -1;
        count++;
        at += used;
    }
    return count;
}

/* A continuation counts when the line it gives has the poem's line length: Han characters only, as many as the
 * real next line (the "line-length match"; the exact line is rarely guessable for a poem never seen).
 * The line given is the last “quoted” span (下一句是“…”。) or else the answer's first line. */
static int continues_line(const char *answer, const char *expected) {
    long want = han_count(expected, strlen(expected));
    const char *open = NULL, *close = NULL;
    for (const char *at = strstr(answer, "“"); at; at = strstr(at + 3, "“")) {
        const char *end = strstr(at + 3, "”");
        if (!end) break;
        open = at + 3;
        close = end;
    }
    long got = open ? han_count(open, (size_t)(close - open)) : han_count(answer, first_line_len(answer));
    return want > 0 && got == want;
}

/* The form whose name appears first in text (full or short name), or JL_FORM_NONE. */
static jl_poem_form first_form_named(const char *text) {
    static const char *const short_names[JL_FORM_COUNT] = {"五绝", "七绝", "五律", "七律"};
    const char *best_at = NULL;
    jl_poem_form best = JL_FORM_NONE;
    for (int f = 0; f < JL_FORM_COUNT; f++) {
        const char *names[2] = {jl_poem_form_name((jl_poem_form)f), short_names[f]};
        for (int k = 0; k < 2; k++) {
            const char *at = strstr(text, names[k]);
            if (at && (!best_at || at < best_at)) {
                best_at = at;
                best = (jl_poem_form)f;
            }
        }
    }
    return best;
}

/* The answer holds one of the "|"-separated phrases of `expected`. */
static int holds_phrase(const char *answer, const char *expected) {
    for (const char *at = expected; at && *at;) {
        size_t len = strcspn(at, "|");
        char phrase[256];
        if (len && len < sizeof phrase) {
            memcpy(phrase, at, len);
            phrase[len] = '\0';
            if (strstr(answer, phrase)) return 1;
        }
        at += len;
        if (*at == '|') at++;
    }
    return 0;
}

int jl_task_correct(jl_poem_task kind, const char *answer, const char *expected, const char *form_name,
                    jl_task_score *score) {
    jl_poem_form form = jl_poem_form_parse(form_name ? form_name : "");
    jl_task_score unused;
    if (!score) score = &unused;
    memset(score, 0, sizeof *score);
    switch (kind) {
    case JL_TASK_WRITE: {
        jl_poem_report r;
        if (form == JL_FORM_NONE || jl_poem_check(answer, form, &r) != JL_OK) return 0;
        score->reward = r.reward;
        score->clean = r.ok;
        return r.complies;
    }
    case JL_TASK_CONTINUE: return expected && continues_line(answer, expected);
    case JL_TASK_AUTHOR: return expected && *expected && strstr(answer, expected) != NULL;
    case JL_TASK_FORM: return form != JL_FORM_NONE && first_form_named(answer) == form;
    case JL_TASK_CHAT: return expected && holds_phrase(answer, expected);
    default: return 0;
    }
}

typedef struct {
    char *text;
    size_t len, cap;
} text_buf;

static int append_text(void *user, const jl_gen_event *ev) {
    text_buf *b = user;
    if (b->len + ev->text_len + 1 > b->cap) {
        size_t cap = (b->len + ev->text_len + 1) * 2;
        char *p = realloc(b->text, cap);
        if (!p) return 1; /* stop generating; the answer is what we have */
        b->text = p;
        b->cap = cap;
    }
    memcpy(b->text + b->len, ev->text, ev->text_len);
    b->len += ev->text_len;
    b->text[b->len] = '\0';
    return 0;
}

/* The lines of every "write" answer, to count how many are distinct. */
typedef struct {
    char **v;
    int n, cap;
} line_set;

static int line_add(line_set *ls, const char *s, size_t len) {
    if (ls->n == ls->cap) {
        int cap = ls->cap ? 2 * ls->cap : 256;
        char **v = realloc(ls->v, sizeof *v * (size_t)cap);
        if (!v) return 0;
        ls->v = v;
        ls->cap = cap;
    }
    if (!(ls->v[ls->n] = strndup(s, len))) return 0;
    ls->n++;
    return 1;
}

/* Splits a poem answer at ，。！？； and newlines; the heading (a part holding 《) is left out. 0: out of memory. */
static int collect_lines(line_set *ls, const char *answer) {
    static const char *const marks[] = {"，", "。", "！", "？", "；", "\n"};
    for (const char *at = answer; *at;) {
        const char *end = at + strlen(at);
        size_t skip = 0;
        for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++) {
            const char *m = strstr(at, marks[i]);
            if (m && m < end) {
                end = m;
                skip = strlen(marks[i]);
            }
        }
        if (end > at && !memmem(at, (size_t)(end - at), "《", strlen("《")) && !line_add(ls, at, (size_t)(end - at)))
            return 0;
        at = end + skip;
    }
    return 1;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* How many distinct lines; frees the set. */
static int distinct_lines(line_set *ls) {
    if (ls->n > 1) qsort(ls->v, (size_t)ls->n, sizeof *ls->v, cmp_str);
    int distinct = 0;
    for (int i = 0; i < ls->n; i++) distinct += i == 0 || strcmp(ls->v[i], ls->v[i - 1]) != 0;
    for (int i = 0; i < ls->n; i++) free(ls->v[i]);
    free(ls->v);
    return distinct;
}

/* The answer's first line carries the asked title. */
static int heading_has_title(const char *answer, const char *title) {
    size_t n = strcspn(answer, "\n");
    return title && *title && memmem(answer, n, title, strlen(title)) != NULL;
}

/* "问：<prompt>\n答：\n<answer>\n\n" for `shots` other items of the same task, then "问：<prompt>\n答：\n". The
 * demonstration is the item's "answer" (what the assistant says in SFT), or its "expected" field. The newline
 * after 答： keeps the query's last token the same as the examples': the byte-level tokenizer merges "：《" (an
 * answer opening with a heading) into one token, so a query ending at "：" would stop mid-token — at a token the
 * model has never seen followed by a heading — while "：\n" is never merged. */
char *jl_few_shot_prompt(const jl_rl_set *set, const size_t *items, size_t n_items, size_t at, int shots) {
    size_t cap = 256, len = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    s[0] = '\0';
    for (int k = 1; k <= shots + 1; k++) {
        int is_query = k == shots + 1;
        size_t i = is_query ? items[at] : items[(at + (size_t)k) % n_items];
        const char *q = jl_rl_prompt(set, i), *a = "";
        if (!is_query && !(a = jl_rl_field(set, i, "answer"))) a = jl_rl_field(set, i, "expected");
        size_t need = len + strlen(q) + strlen(a ? a : "") + 32;
        if (need > cap) {
            cap = need * 2;
            char *p = realloc(s, cap);
            if (!p) {
                free(s);
                return NULL;
            }
            s = p;
        }
        len += (size_t)snprintf(s + len, cap - len, "问：%s\n答：\n%s%s", q, a ? a : "", is_query ? "" : "\n\n");
    }
    return s;
}

jl_status jl_eval_tasks(const jl_model *m, const jl_tokenizer *tok, const jl_rl_set *prompts, const jl_task_opts *o,
                        jl_task_fn on_answer, void *user, jl_task_result *out) {
    memset(out, 0, sizeof *out);
    double t0 = jl_now();
    size_t n = jl_rl_count(prompts);
    size_t *items[JL_TASK_COUNT + 1] = {0}, n_items[JL_TASK_COUNT + 1] = {0}; /* + the chat prompts */
    line_set lines = {0};
    jl_status st = JL_OK;
    for (int k = 0; k <= JL_TASK_COUNT && st == JL_OK; k++)
        if (!(items[k] = malloc(sizeof(size_t) * (n ? n : 1)))) st = jl_fail(JL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && st == JL_OK; i++) {
        int k = task_of(jl_rl_field(prompts, i, "task"));
        if (k >= 0) items[k][n_items[k]++] = i;
    }
    jl_session *s = NULL;
    jl_sampler *smp = NULL;
    jl_chat *chat = NULL;
    jl_sampler_params sp;
    jl_sampler_defaults(&sp);
    sp.temperature = 0; /* greedy: the score is a property of the model, not of a draw */
    if (st == JL_OK) st = jl_session_new(m, jl_model_config(m)->max_seq_len, &s);
    if (st == JL_OK) st = jl_sampler_new(&sp, jl_model_config(m)->vocab_size, &smp);
    if (st == JL_OK && o->shots < 0) st = jl_chat_new_format(s, smp, tok, o->chat, &chat);
    /* few-shot: the answer ends where the next question would start, or where a base model heads another poem
     * on a new line ("\n《": pretraining text has poems one after another in anthologies) */
    static const char *const stops[] = {"\n\n", "问：", "\n《"};
    jl_gen_opts go = {.max_tokens = o->max_tokens > 0 ? o->max_tokens : 96};
    if (o->shots >= 0) {
        go.stops = stops;
        go.n_stops = 3;
    }
    double reward_sum = 0;
    for (int k = 0; k <= JL_TASK_COUNT && st == JL_OK; k++) {
        if ((o->only >= 0 && o->only != k) || (k == JL_TASK_CHAT && !chat)) continue;
        size_t limit = o->limit > 0 && (size_t)o->limit < n_items[k] ? (size_t)o->limit : n_items[k];
        for (size_t j = 0; j < limit && st == JL_OK; j++) {
            size_t i = items[k][j];
            text_buf answer = {0};
            jl_gen_result res = {0};
            const int room = jl_session_capacity(s) - 8; /* leave a few positions to answer in */
            int32_t *ids = NULL;
            int n_ids = 0, shots = o->shots;
            if (chat) {
                /* the chat template adds a handful of tokens around the prompt */
                st = jl_encode_prompt(tok, jl_rl_prompt(prompts, i), &ids, &n_ids);
                if (st == JL_OK && n_ids + 8 > room) shots = -2;
            } else {
                /* drop solved examples until the question fits the context */
                for (; st == JL_OK && shots >= 0; shots--) {
                    char *text = jl_few_shot_prompt(prompts, items[k], n_items[k], j, shots);
                    free(ids);
                    ids = NULL;
                    st = text ? jl_encode_prompt(tok, text, &ids, &n_ids) : jl_fail(JL_ERR_NOMEM, "out of memory");
                    free(text);
                    if (st == JL_OK && n_ids <= room) break;
                }
                if (shots < 0) shots = -2;
            }
            if (st == JL_OK && shots == -2) { /* does not fit even alone: not scored */
                out->skipped++;
                free(ids);
                continue;
            }
            if (st == JL_OK && chat) {
                jl_chat_reset(chat);
                st = jl_chat_turn(chat, jl_rl_prompt(prompts, i), &go, NULL, NULL, &answer.text, &res);
            } else if (st == JL_OK) {
                out->shots_used += shots;
                jl_session_truncate(s, 0);
                st = jl_generate(s, smp, tok, ids, n_ids, &go, append_text, &answer, &res);
            }
            free(ids);
            if (st != JL_OK) {
                jl_fail_context(st, "%s prompt %zu", jl_poem_task_name((jl_poem_task)k), i + 1);
                free(answer.text);
                break;
            }
            const char *a = answer.text ? answer.text : "";
            jl_task_score score;
            int ok = jl_task_correct((jl_poem_task)k, a, jl_rl_field(prompts, i, "expected"),
                                     jl_rl_field(prompts, i, "form"), &score);
            if (k == JL_TASK_CHAT) {
                out->chat_n++;
                out->chat_correct += ok;
            } else {
                out->n[k]++;
                out->correct[k] += ok;
            }
            if (k == JL_TASK_WRITE) {
                const char *title = jl_rl_field(prompts, i, "title");
                reward_sum += score.reward;
                out->write_clean += score.clean;
                out->title_n += title && *title;
                out->title_copied += heading_has_title(a, title);
                if (!collect_lines(&lines, a)) st = jl_fail(JL_ERR_NOMEM, "out of memory");
            }
            out->tokens_generated += res.n_generated;
            if (on_answer) on_answer(user, (jl_poem_task)k, jl_rl_prompt(prompts, i), a, ok);
            free(answer.text);
        }
    }
    out->mean_reward = out->n[JL_TASK_WRITE] ? reward_sum / out->n[JL_TASK_WRITE] : 0;
    out->lines = lines.n;
    out->distinct_lines = distinct_lines(&lines);
    out->seconds = jl_now() - t0;
    jl_chat_free(chat);
    jl_sampler_free(smp);
    jl_session_free(s);
    for (int k = 0; k <= JL_TASK_COUNT; k++) free(items[k]);
    return st;
}
