/* Minimal UTF-8 decoding and the Unicode classes the poem rules and dataset builders need. */
#ifndef JL_CORE_UTF8_H
#define JL_CORE_UTF8_H
#include <stddef.h>
#include <stdint.h>

#define JL_UTF8_INVALID 0xFFFFFFFFu

/* Decodes the code point at s[0..len) into *cp and returns the bytes it used (1..4).
 * A malformed, overlong, surrogate or truncated sequence yields *cp = JL_UTF8_INVALID and 1 byte,
 * so a caller always advances. Returns 0 only when len == 0. */
size_t jl_utf8_decode(const char *s, size_t len, uint32_t *cp);

/* Writes the UTF-8 form of cp (a valid scalar value) into out[0..4) and returns its length. */
size_t jl_utf8_encode(uint32_t cp, char out[4]);

/* Number of code points in a NUL-terminated string (an invalid byte counts as one). */
size_t jl_utf8_count(const char *s);

/* 1 for a CJK ideograph (Unified + Extensions A-G, compatibility ideographs, 〇). */
int jl_is_han(uint32_t cp);

/* Byte offset of the n-th code point of s (or strlen(s) if s has fewer). */
size_t jl_utf8_offset(const char *s, size_t n);

#endif
