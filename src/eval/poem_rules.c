/* Rule-based poem checks (see include/jielong/rules.h): line splitting, form compliance, repetition, reward. */
#include "jielong/rules.h"
#include "core/utf8.h"
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *id, *name, *short_name;
    int lines, chars;
} form_table[JL_FORM_COUNT] = {
    [JL_FORM_WUJUE] = {"wujue", "五言绝句", "五绝", 4, 5},
    [JL_FORM_QIJUE] = {"qijue", "七言绝句", "七绝", 4, 7},
    [JL_FORM_WULV] = {"wulv", "五言律诗", "五律", 8, 5},
    [JL_FORM_QILV] = {"qilv", "七言律诗", "七律", 8, 7},
};

static int form_valid(jl_poem_form f) { return f >= 0 && f < JL_FORM_COUNT; }
const char *jl_poem_form_id(jl_poem_form f) { return form_valid(f) ? form_table[f].id : "none"; }
const char *jl_poem_form_name(jl_poem_form f) { return form_valid(f) ? form_table[f].name : "无"; }
int jl_poem_form_lines(jl_poem_form f) { return form_valid(f) ? form_table[f].lines : 0; }
int jl_poem_form_chars(jl_poem_form f) { return form_valid(f) ? form_table[f].chars : 0; }

jl_poem_form jl_poem_form_parse(const char *s) {
    if (!s) return JL_FORM_NONE;
    for (int f = 0; f < JL_FORM_COUNT; f++)
        if (!strcmp(s, form_table[f].id) || !strcmp(s, form_table[f].name) || !strcmp(s, form_table[f].short_name))
            return (jl_poem_form)f;
    return JL_FORM_NONE;
}

jl_poem_form jl_poem_form_of(int n_lines, int chars_per_line) {
    for (int f = 0; f < JL_FORM_COUNT; f++)
        if (form_table[f].lines == n_lines && form_table[f].chars == chars_per_line) return (jl_poem_form)f;
    return JL_FORM_NONE;
}

/* The Han characters of the text, line by line. */
typedef struct {
    uint32_t *chars;  /* all Han characters in order */
    int *start;       /* start[i]: index in chars of line i's first character; start[n_lines] = total */
    int n_chars, n_lines, cap_chars, cap_lines;
} lines_buf;

static int push_char(lines_buf *b, uint32_t cp) {
    if (b->n_chars == b->cap_chars) {
        int cap = b->cap_chars ? 2 * b->cap_chars : 64;
        uint32_t *p = realloc(b->chars, sizeof *p * (size_t)cap);
        if (!p) return 0;
        b->chars = p;
        b->cap_chars = cap;
    }
    b->chars[b->n_chars++] = cp;
    return 1;
}

/* Closes the open line (if it has characters); records its closing mark in the report. */
static int close_line(lines_buf *b, const char *mark, size_t mark_len, jl_poem_report *r) {
    int line_start = b->n_lines ? b->start[b->n_lines] : 0;
    if (b->n_chars == line_start) return 1; /* nothing since the last mark: stray punctuation */
    if (b->n_lines + 2 > b->cap_lines) {
        int cap = b->cap_lines ? 2 * b->cap_lines : 16;
        int *p = realloc(b->start, sizeof *p * (size_t)cap);
        if (!p) return 0;
        if (!b->cap_lines) p[0] = 0;
        b->start = p;
        b->cap_lines = cap;
    }
    if (b->n_lines < JL_POEM_MAX_LINES) {
        memcpy(r->line_end[b->n_lines], mark, mark_len);
        r->line_end[b->n_lines][mark_len] = '\0';
    }
    b->start[++b->n_lines] = b->n_chars;
    return 1;
}

static int is_line_mark(uint32_t cp) {
    return cp == 0xFF0C /* ， */ || cp == 0x3002 /* 。 */ || cp == 0xFF01 /* ！ */ || cp == 0xFF1F /* ？ */ ||
           cp == 0xFF1B /* ； */ || cp == 0x3001 /* 、 */ || cp == 0xFF1A /* ： */ || cp == ',' || cp == '.' ||
           cp == '!' || cp == '?' || cp == ';' || cp == ':';
}

/* Characters that neither count nor hurt: spaces and quotation marks. */
static int is_ignorable(uint32_t cp) {
    return cp == ' ' || cp == '\t' || cp == '\r' || cp == 0x3000 || cp == '"' || cp == '\'' || cp == 0x201C ||
           cp == 0x201D || cp == 0x2018 || cp == 0x2019 || cp == 0x300C || cp == 0x300D || cp == 0x300E ||
           cp == 0x300F;
}

/* The closing bracket of a span that is not part of the poem — a title 《...》 〈...〉 or a note （...） (...) —
 * opened by cp, or 0. */
static uint32_t span_closer(uint32_t cp) {
    switch (cp) {
    case 0x300A: return 0x300B; /* 《 》 */
    case 0x3008: return 0x3009; /* 〈 〉 */
    case 0xFF08: return 0xFF09; /* （ ） */
    case '(': return ')';
    default: return 0;
    }
}

/* Splits text into lines of Han characters; counts other characters; skips title and note spans. */
static int split_lines(const char *text, lines_buf *b, jl_poem_report *r) {
    size_t len = strlen(text);
    uint32_t closer = 0; /* inside a skipped span: the character that ends it */
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = jl_utf8_decode(text + i, len - i, &cp);
        const char *at = text + i;
        i += n;
        if (closer) {
            if (cp == closer) closer = 0;
        } else if (span_closer(cp)) {
            closer = span_closer(cp);
        } else if (jl_is_han(cp)) {
            if (!push_char(b, cp)) return 0;
        } else if (is_line_mark(cp)) {
            if (!close_line(b, at, n, r)) return 0;
        } else if (cp == '\n') {
            if (!close_line(b, "", 0, r)) return 0;
        } else if (!is_ignorable(cp)) {
            r->n_other++;
        }
    }
    return close_line(b, "", 0, r);
}

static int line_len(const lines_buf *b, int i) { return b->start[i + 1] - b->start[i]; }

static int lines_equal(const lines_buf *b, int i, int j) {
    int n = line_len(b, i);
    return n == line_len(b, j) && !memcmp(b->chars + b->start[i], b->chars + b->start[j], sizeof(uint32_t) * (size_t)n);
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Repeated lines, characters used too often, and runs of 3+ identical characters. */
static int measure_repetition(const lines_buf *b, jl_poem_report *r) {
    for (int i = 1; i < b->n_lines; i++)
        for (int j = 0; j < i; j++)
            if (lines_equal(b, i, j)) {
                r->n_repeated_lines++;
                break;
            }
    for (int i = 0; i < b->n_lines; i++)
        for (int k = b->start[i], run = 1; k < b->start[i + 1]; k++) {
            run = (k > b->start[i] && b->chars[k] == b->chars[k - 1]) ? run + 1 : 1;
            if (run >= 3) r->n_excess_chars++;
        }
    if (b->n_chars == 0) return 1;
    uint32_t *sorted = malloc(sizeof *sorted * (size_t)b->n_chars);
    if (!sorted) return 0;
    memcpy(sorted, b->chars, sizeof *sorted * (size_t)b->n_chars);
    qsort(sorted, (size_t)b->n_chars, sizeof *sorted, cmp_u32);
    for (int k = 0, count = 0; k < b->n_chars; k++) {
        count = (k > 0 && sorted[k] == sorted[k - 1]) ? count + 1 : 1;
        if (count > r->max_char_count) r->max_char_count = count;
        if (count > JL_POEM_MAX_CHAR_REPEAT) r->n_excess_chars++;
    }
    free(sorted);
    return 1;
}

static jl_poem_form detect_form(const lines_buf *b) {
    if (b->n_lines == 0) return JL_FORM_NONE;
    for (int i = 1; i < b->n_lines; i++)
        if (line_len(b, i) != line_len(b, 0)) return JL_FORM_NONE;
    return jl_poem_form_of(b->n_lines, line_len(b, 0));
}

static int mark_right(const char *mark, int line_index) {
    if (line_index % 2 == 0) return !strcmp(mark, "，");
    return !strcmp(mark, "。") || !strcmp(mark, "！") || !strcmp(mark, "？");
}

static void score_form(const lines_buf *b, jl_poem_form form, jl_poem_report *r) {
    int want_lines = jl_poem_form_lines(form), want_chars = jl_poem_form_chars(form);
    int n = b->n_lines, m = n < want_lines ? n : want_lines, most = n > want_lines ? n : want_lines;
    for (int i = 0; i < m; i++) {
        r->n_lines_right_length += line_len(b, i) == want_chars;
        r->n_punct_right += mark_right(r->line_end[i], i);
    }
    r->lines_ok = n == want_lines;
    int gap = abs(n - want_lines);
    float count_score = gap >= want_lines ? 0.0f : 1.0f - (float)gap / (float)want_lines;
    r->form_score = (count_score + (float)r->n_lines_right_length / (float)most +
                     (float)r->n_punct_right / (float)most) / 3.0f;
    r->complies = r->lines_ok && r->n_lines_right_length == want_lines && r->n_punct_right == want_lines &&
                  r->n_other == 0;
}

jl_status jl_poem_check(const char *text, jl_poem_form form, jl_poem_report *out) {
    if (!out) return jl_fail(JL_ERR_ARG, "poem check: no report to fill");
    memset(out, 0, sizeof *out);
    out->form = form;
    out->detected = JL_FORM_NONE;
    if (!text) return jl_fail(JL_ERR_ARG, "poem check: no text");
    if (!form_valid(form)) return jl_fail(JL_ERR_ARG, "poem check: unknown form %d", (int)form);
    lines_buf b = {0};
    int done = split_lines(text, &b, out) && measure_repetition(&b, out);
    if (done) {
        out->n_lines = b.n_lines;
        out->n_han = b.n_chars;
        for (int i = 0; i < b.n_lines && i < JL_POEM_MAX_LINES; i++) out->line_chars[i] = line_len(&b, i);
        out->detected = detect_form(&b);
        score_form(&b, form, out);
    }
    free(b.chars);
    free(b.start);
    if (!done) return jl_fail(JL_ERR_NOMEM, "poem check: out of memory");
    out->repetitive = out->n_repeated_lines > 0 || out->n_excess_chars > 0;
    out->ok = out->complies && !out->repetitive;
    float rep = 1.0f;
    if (out->n_lines) rep -= (float)out->n_repeated_lines / (float)out->n_lines;
    if (out->n_han) rep -= (float)out->n_excess_chars / (float)out->n_han;
    out->repetition_score = rep > 0.0f ? rep : 0.0f;
    int counted = out->n_han + out->n_other;
    float clean = counted ? (float)out->n_han / (float)counted : 0.0f;
    out->reward = out->form_score * out->repetition_score * clean;
    return JL_OK;
}

float jl_poem_reward(const char *text, jl_poem_form form) {
    jl_poem_report r;
    return jl_poem_check(text, form, &r) == JL_OK ? r.reward : 0.0f;
}

jl_poem_form jl_poem_classify(const char *text) {
    jl_poem_report r;
    return jl_poem_check(text, JL_FORM_WUJUE, &r) == JL_OK ? r.detected : JL_FORM_NONE;
}
