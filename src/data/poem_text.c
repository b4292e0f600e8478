/* A poem's text, and the corruptions that make the rejected side of preference pairs. */
#include "core/rng.h"
#include "core/utf8.h"
#include "data/poem_text.h"
#include <stdlib.h>
#include <string.h>

void jl_render_lines(jl_text *t, const char *const *lines, int n) {
    for (int i = 0; i < n; i++) {
        jl_text_puts(t, lines[i]);
        jl_text_puts(t, i % 2 == 0 ? "，" : "。");
        if (i % 2 == 1 && i + 1 < n) jl_text_puts(t, "\n");
    }
}

void jl_render_heading(jl_text *t, const jl_poem *poem) {
    jl_text_puts(t, "《");
    jl_text_puts(t, poem->title);
    jl_text_puts(t, "》（");
    jl_text_puts(t, jl_poem_form_name(poem->form));
    jl_text_puts(t, "）");
}

char *jl_poem_text(const jl_poem *poem) {
    jl_text t = {0};
    jl_render_lines(&t, poem->lines, poem->n_lines);
    if (!jl_text_str(&t)) {
        jl_text_free(&t);
        return NULL;
    }
    return t.s;
}

static const char *const corruption_names[JL_CORRUPT_COUNT] = {"line_length", "repeated_line", "truncated",
                                                               "wrong_form"};
const char *jl_corruption_name(jl_corruption c) {
    return (c >= 0 && c < JL_CORRUPT_COUNT) ? corruption_names[c] : "?";
}

/* Line `src` with the character at code point index k removed (grow = 0) or `extra` inserted before it. */
static void edit_line(jl_text *t, const char *src, size_t k, int grow, const char *extra, size_t extra_len) {
    size_t at = jl_utf8_offset(src, k);
    jl_text_append(t, src, at);
    if (grow) jl_text_append(t, extra, extra_len);
    else at = jl_utf8_offset(src, k + 1);
    jl_text_puts(t, src + at);
}

/* One line a character short and another a character long (a character borrowed from the poem). */
static void corrupt_line_length(jl_text *out, const jl_poem *p, jl_rng *rng) {
    const char *lines[JL_POEM_MAX_LINES];
    int n = p->n_lines < JL_POEM_MAX_LINES ? p->n_lines : JL_POEM_MAX_LINES;
    memcpy(lines, p->lines, sizeof *lines * (size_t)n);
    int shorter = (int)jl_rng_below(rng, (uint64_t)n);
    int longer = (shorter + 1 + (int)jl_rng_below(rng, (uint64_t)(n - 1))) % n;
    const char *donor = p->lines[jl_rng_below(rng, (uint64_t)n)];
    size_t donor_at = jl_utf8_offset(donor, jl_rng_below(rng, jl_utf8_count(donor)));
    size_t donor_len = jl_utf8_offset(donor + donor_at, 1);
    jl_text short_line = {0}, long_line = {0};
    edit_line(&short_line, lines[shorter], jl_rng_below(rng, jl_utf8_count(lines[shorter])), 0, NULL, 0);
    edit_line(&long_line, lines[longer], jl_rng_below(rng, jl_utf8_count(lines[longer]) + 1), 1, donor + donor_at,
              donor_len);
    if (jl_text_str(&short_line) && jl_text_str(&long_line)) {
        lines[shorter] = short_line.s;
        lines[longer] = long_line.s;
        jl_render_lines(out, lines, n);
    } else {
        out->failed = 1;
    }
    jl_text_free(&short_line);
    jl_text_free(&long_line);
}

static void corrupt_repeated_line(jl_text *out, const jl_poem *p, jl_rng *rng) {
    const char *lines[JL_POEM_MAX_LINES];
    int n = p->n_lines < JL_POEM_MAX_LINES ? p->n_lines : JL_POEM_MAX_LINES;
    memcpy(lines, p->lines, sizeof *lines * (size_t)n);
    int j = 1 + (int)jl_rng_below(rng, (uint64_t)(n - 1));
    lines[j] = lines[j - 1];
    jl_render_lines(out, lines, n);
}

/* Another poem of the same split in `form`, or NULL. Random probes first, then a scan. */
static const jl_poem *find_poem(const jl_poems *poems, jl_poem_form form, int heldout, jl_rng *rng) {
    size_t n = jl_poems_count(poems);
    for (int tries = 0; tries < 64 && n; tries++) {
        const jl_poem *q = jl_poems_get(poems, jl_rng_below(rng, n));
        if (q->form == form && q->heldout == heldout) return q;
    }
    size_t start = jl_rng_below(rng, n);
    for (size_t k = 0; k < n; k++) {
        const jl_poem *q = jl_poems_get(poems, (start + k) % n);
        if (q->form == form && q->heldout == heldout) return q;
    }
    return NULL;
}

/* A 律诗 cut to its first 4 lines (a 绝句); a 绝句 swapped for a 绝句 of the other line length. */
static void corrupt_wrong_form(jl_text *out, const jl_poems *poems, const jl_poem *p, jl_rng *rng) {
    if (p->n_lines == 8) {
        jl_render_lines(out, p->lines, 4);
        return;
    }
    jl_poem_form other = p->form == JL_FORM_WUJUE ? JL_FORM_QIJUE : JL_FORM_WUJUE;
    const jl_poem *q = find_poem(poems, other, p->heldout, rng);
    if (q) {
        jl_render_lines(out, q->lines, q->n_lines);
        return;
    }
    const char *doubled[8]; /* no such poem: the poem twice, 8 lines where 4 were asked */
    for (int i = 0; i < 8; i++) doubled[i] = p->lines[i % 4];
    jl_render_lines(out, doubled, 8);
}

char *jl_poem_corrupt(const jl_poems *poems, size_t i, jl_corruption c, uint64_t *rng_state) {
    const jl_poem *p = jl_poems_get(poems, i);
    if (!p || p->n_lines < 2 || c < 0 || c >= JL_CORRUPT_COUNT || !rng_state) return NULL;
    jl_rng rng = {*rng_state};
    jl_text out = {0};
    switch (c) {
    case JL_CORRUPT_LINE_LENGTH: corrupt_line_length(&out, p, &rng); break;
    case JL_CORRUPT_REPEATED_LINE: corrupt_repeated_line(&out, p, &rng); break;
    case JL_CORRUPT_TRUNCATED: jl_render_lines(&out, p->lines, p->n_lines / 2 + 1); break;
    case JL_CORRUPT_WRONG_FORM: corrupt_wrong_form(&out, poems, p, &rng); break;
    default: break;
    }
    *rng_state = rng.state;
    if (!jl_text_str(&out)) {
        jl_text_free(&out);
        return NULL;
    }
    return out.s;
}
