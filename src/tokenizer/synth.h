/* Deterministic synthetic text for tokenizer tests and benchmarks: English prose (contractions, numbers, case),
 * Chinese prose, source code (indentation, tabs, CRLF, trailing spaces), and assorted Unicode (accents, Greek,
 * Cyrillic, kana, emoji, combining marks, unusual spaces). The same seed and size always give the same bytes. */
#ifndef JL_TOKENIZER_SYNTH_H
#define JL_TOKENIZER_SYNTH_H
#include "jielong/common.h"
#include <stdint.h>

/* About `bytes` bytes (whole paragraphs; never less than `bytes`), valid UTF-8, malloc'd, NUL-terminated. */
jl_status jl_synth_text(uint64_t seed, size_t bytes, char **text, size_t *len);

/* Like jl_synth_text, with more scripts (Japanese, Korean incl. conjoining jamo), emoji with ZWJ, combining accents
 * (composed and not), runs of spaces, CR / CRLF / tabs, text that looks like added tokens (<s>, <|endoftext|>, ...)
 * and, with with_invalid, invalid UTF-8 (stray continuation bytes, overlongs, surrogates, cut sequences). */
jl_status jl_synth_mixed(uint64_t seed, size_t bytes, int with_invalid, char **text, size_t *len);

#endif
