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
 * (composed and not), runs of spaces, CR / CRLF / tabs, numbers; with JL_SYNTH_ADDED text that looks like added
 * tokens (<s>, <|endoftext|>, ...), with JL_SYNTH_INVALID invalid UTF-8 (stray continuation bytes, overlongs,
 * surrogates, cut sequences). */
enum { JL_SYNTH_INVALID = 1, JL_SYNTH_ADDED = 2 };
jl_status jl_synth_mixed(uint64_t seed, size_t bytes, int flags, char **text, size_t *len);

#endif
