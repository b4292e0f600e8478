/* A strict JSON scanner (RFC 8259) for the two large values of a tokenizer.json: model.vocab and model.merges are
 * read by json.c straight from the text (no json-c object per entry); json-c parses the rest with them blanked. */
#ifndef JL_TOKENIZER_JSON_SCAN_H
#define JL_TOKENIZER_JSON_SCAN_H
#include <stddef.h>

typedef struct {
    size_t vocab_at, vocab_end;   /* the value of model.vocab when it is an object, else both 0 */
    size_t merges_at, merges_end; /* the value of model.merges when it is an array, else both 0 */
    size_t err_at;                /* invalid JSON: where, and why */
    const char *err;
} tok_json_doc;

/* Checks that s[0..n) is one JSON value (nesting at most 64 deep) and finds model.vocab / model.merges in it
 * (the last of duplicate keys, as json-c keeps). 0, or -1 with err / err_at set. */
int tok_json_locate(const char *s, size_t n, tok_json_doc *d);

/* Skips spaces from s[*i]. */
void tok_json_ws(const char *s, size_t n, size_t *i);
/* Reads the string at s[*i] (the opening quote) into dst, unescaped and NUL-terminated (dst needs the string's
 * written length + 1 bytes: unescaping never lengthens it); *i moves past the closing quote. Returns the length, or
 * -1 if it is not a valid string. */
long tok_json_string(const char *s, size_t n, size_t *i, char *dst);
/* Skips the value at s[*i] (validating it); 0 or -1. */
int tok_json_skip(const char *s, size_t n, size_t *i);

#endif
