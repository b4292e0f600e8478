/* Rule-based checks of a regular-form Chinese poem: the verifiable rewards of GRPO/PPO and the
 * instruction-following metric of evaluation. A model's answer is split into lines (句) at the
 * punctuation ，。！？；、 (full-width or ASCII) and at line breaks; Han characters are counted per line.
 * 《title》 spans, （notes） in parentheses and quote marks are ignored, so an answer that opens with the
 * heading "《title》（form）" still scores. */
#ifndef JIELONG_RULES_H
#define JIELONG_RULES_H
#include "jielong/common.h"

/* The four regular forms: 4 (绝句) or 8 (律诗) lines of 5 (五言) or 7 (七言) Han characters,
 * punctuated ，。，。… (a couplet may also close with ！ or ？). */
typedef enum {
    JL_FORM_NONE = -1,
    JL_FORM_WUJUE = 0, /* 五言绝句 */
    JL_FORM_QIJUE,     /* 七言绝句 */
    JL_FORM_WULV,      /* 五言律诗 */
    JL_FORM_QILV,      /* 七言律诗 */
    JL_FORM_COUNT
} jl_poem_form;

const char *jl_poem_form_id(jl_poem_form form);    /* "wujue", "qijue", "wulv", "qilv"; "none" */
const char *jl_poem_form_name(jl_poem_form form);  /* "五言绝句" ...; "无" for JL_FORM_NONE */
int jl_poem_form_lines(jl_poem_form form);         /* 4 or 8 (0 for NONE) */
int jl_poem_form_chars(jl_poem_form form);         /* 5 or 7 (0 for NONE) */
/* Parses an id ("wujue") or a Chinese name ("五言绝句", "五绝"); JL_FORM_NONE if unknown. */
jl_poem_form jl_poem_form_parse(const char *s);
/* The form with this many lines of this many characters, or JL_FORM_NONE. */
jl_poem_form jl_poem_form_of(int n_lines, int chars_per_line);

/* A character that occurs more than this many times in one poem counts as repetition
 * (fewer than 0.2% of the bundled Tang poems exceed it), as does any run of 3 identical characters. */
#define JL_POEM_MAX_CHAR_REPEAT 4
#define JL_POEM_MAX_LINES 64 /* lines beyond this are counted but not listed */

typedef struct {
    /* What was found. */
    int n_lines;                          /* lines (句) with at least one Han character */
    int line_chars[JL_POEM_MAX_LINES];    /* Han characters in each line */
    char line_end[JL_POEM_MAX_LINES][4];  /* the UTF-8 punctuation closing each line; "" if none */
    int n_han;                            /* Han characters in all */
    int n_other;                          /* letters, digits, symbols: not Han, punctuation, space or quotes */
    int n_repeated_lines;                 /* lines identical to an earlier line */
    int max_char_count;                   /* occurrences of the most frequent Han character */
    int n_excess_chars;                   /* occurrences beyond JL_POEM_MAX_CHAR_REPEAT + lengths of runs beyond 2 */
    jl_poem_form detected;                /* the form the text has (line count x length), punctuation aside */
    /* Against the asked form. */
    jl_poem_form form;
    int lines_ok;                         /* exactly the form's number of lines */
    int n_lines_right_length;             /* lines with exactly the form's number of characters */
    int n_punct_right;                    /* lines closed by the right mark (，after odd lines, 。！？ after even) */
    int complies;                         /* line count, every line's length and every mark right, no other chars */
    int repetitive;                       /* a repeated line or repeated characters */
    int ok;                               /* complies && !repetitive */
    float form_score;                     /* [0,1]: mean of line-count, line-length and punctuation scores */
    float repetition_score;               /* [0,1]: 1 = no repetition */
    float reward;                         /* [0,1]: form_score x repetition_score x share of Han among chars */
} jl_poem_report;

/* Checks `text` (UTF-8) against `form`. Invalid UTF-8 bytes count as other characters.
 * Returns JL_ERR_ARG for a NULL text or an unknown form. */
jl_status jl_poem_check(const char *text, jl_poem_form form, jl_poem_report *out);

/* The scalar reward in [0,1] of `text` for `form` (0 for bad arguments). */
float jl_poem_reward(const char *text, jl_poem_form form);

/* The regular form of `text` (line count x characters per line), or JL_FORM_NONE. */
jl_poem_form jl_poem_classify(const char *text);

#endif
