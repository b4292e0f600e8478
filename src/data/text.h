/* A growable string and a tiny template filler for the dataset builders:
 * "以《{T}》为题，写一首{F}。" with vars['T'], vars['F'] set. */
#ifndef JL_DATA_TEXT_H
#define JL_DATA_TEXT_H
#include <stddef.h>

typedef struct {
    char *s;
    size_t len, cap;
    int failed;  /* an allocation failed; the text is incomplete */
} jl_text;

void jl_text_append(jl_text *t, const char *s, size_t len);
void jl_text_puts(jl_text *t, const char *s);
/* Appends `tmpl` with each "{X}" (X an uppercase letter) replaced by vars[X - 'A'] ("" when NULL). */
void jl_text_fill(jl_text *t, const char *tmpl, const char *const vars[26]);
/* The text, NUL-terminated (empty string if nothing was appended); NULL after a failed allocation. */
const char *jl_text_str(jl_text *t);
void jl_text_clear(jl_text *t);  /* len = 0, keeps the memory */
void jl_text_free(jl_text *t);

#endif
