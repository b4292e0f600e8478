/* The HF tokenizer pipeline around the BPE model, as tokenizer.json describes it: added tokens (matched before or
 * after normalisation, with lstrip / rstrip / single_word), normalizers, pre-tokenizers (a chain of stages, each
 * cutting the pieces of the one before), the BPE model on bytes (ByteLevel) or on characters (SentencePiece-style,
 * with byte fallback and unk), the decoders and the post-processor's template for one sequence.
 * Every tokenizer has one: jielong's own get the plain pipeline (special tokens, one regex, byte-level BPE). */
#ifndef JL_TOKENIZER_PIPELINE_H
#define JL_TOKENIZER_PIPELINE_H
#include "tokenizer/tok_internal.h"

enum { TOK_MAX_STAGES = 16, TOK_CHAR_TABLE = 0x10000 };

typedef enum {
    TOK_NORM_NFC, TOK_NORM_NFD, TOK_NORM_NFKC, TOK_NORM_NFKD, TOK_NORM_LOWER, TOK_NORM_REPLACE, TOK_NORM_PREPEND,
    TOK_NORM_STRIP
} tok_norm_kind;

typedef struct {
    tok_norm_kind kind;
    char *from, *to;  /* Replace: the literal pattern (when re is NULL) and the content; Prepend: to */
    size_t from_len, to_len;
    pcre2_code *re;   /* Replace with a Regex pattern */
    int left, right;  /* Strip */
} tok_norm;

typedef enum {
    TOK_SPLIT_REMOVED, TOK_SPLIT_ISOLATED, TOK_SPLIT_PREVIOUS, TOK_SPLIT_NEXT, TOK_SPLIT_CONTIGUOUS
} tok_behavior;

typedef enum {
    TOK_PRE_SPLIT,        /* cut on a regex or a literal, by behavior (HF Split; also Digits, Whitespace, ...) */
    TOK_PRE_PREFIX_SPACE, /* ByteLevel add_prefix_space: a space before a piece that does not start with one */
    TOK_PRE_METASPACE,    /* spaces → the replacement character, prepended by the scheme */
    TOK_PRE_SPM_WORDS     /* cut before "▁" where no vocabulary token spans the cut (exact; added at load) */
} tok_pre_kind;

typedef struct {
    tok_pre_kind kind;
    pcre2_code *re;   /* Split on a regex (owned unless it is the tokenizer's own re) ... */
    int owns_re;
    char *literal;    /* ... or on a literal string */
    size_t literal_len;
    tok_behavior behavior;
    int invert;
    char rep[8];      /* Metaspace: the replacement character (UTF-8) */
    size_t rep_len;
    int prepend;      /* Metaspace: 0 never, 1 always, 2 only at the start of the text */
    int scan;         /* Split on a regex a hand-written scanner knows (tok_scan_kind), else TOK_SCAN_NONE */
} tok_pre;

enum {
    TOK_ADDED_SPECIAL = 1, TOK_ADDED_NORMALIZED = 2, TOK_ADDED_LSTRIP = 4, TOK_ADDED_RSTRIP = 8,
    TOK_ADDED_SINGLE_WORD = 16
};

/* Added tokens matched in text, leftmost-longest: a hash of their bytes per distinct length. */
typedef struct {
    int n;
    int32_t *ids;
    uint8_t *flags;
    uint32_t *slots;  /* hash → index + 1 */
    size_t mask;
    int n_lengths;
    uint32_t *lengths; /* distinct lengths, longest first */
    uint8_t first[256]; /* bit 1: some token starts with this byte; bit 2: it is a one-byte token */
    uint64_t *pre2;    /* [tok_added_pre2(b0, b1)]: bit L - 2 (L < 65) / bit 63 (L >= 65) if some token of L bytes
                          may start with b0 b1 (a hash of the two: a filter, never a miss) */
    uint8_t cut_ok[256]; /* 1: a printable non-space ASCII byte that no token holds: no match (nor its lstrip /
                            rstrip over whitespace) covers it, so a scan of the text can be cut right after it */
} tok_added_set;

struct tok_pipeline {
    int pcre2_only;   /* 1: every Split runs PCRE2, even where a scanner knows the pattern (jl_tokenizer_set_scanner) */
    int lossy_utf8;   /* invalid UTF-8 becomes U+FFFD first, as HF (which only ever sees text) does */
    int n_norm;
    tok_norm norm[TOK_MAX_STAGES];
    int n_pre;
    tok_pre pre[TOK_MAX_STAGES];
    tok_added_set raw_added, norm_added; /* matched in the raw text / in the normalised text */
    /* the model */
    int char_level;
    int32_t byte_fb[256]; /* byte fallback ids (<0xNN>), -1 = none */
    int byte_fallback;
    int32_t unk_id;
    int fuse_unk;
    char *subword_prefix, *word_suffix;
    size_t prefix_len, suffix_len;
    uint32_t *spm_bad; /* SPM_WORDS: code points c with "c▁" inside some token (sorted), no cut after them */
    int n_spm_bad;
    int spm_cut;       /* text segments may be cut before a space that tok_spm_cut_ok accepts (see json.c) */
    int32_t *char_id;  /* char-level without subword prefix / word suffix: the token of each code point below
                          TOK_CHAR_TABLE, -1 if none (what tok_lookup of its UTF-8 gives); NULL otherwise */
    /* the decoder: each token's bytes after the per-token decoders, then whole-text strips */
    uint32_t *dec_off;
    char *dec_bytes;  /* NULL: the tokens' own bytes (byte-level) */
    uint32_t strip_char;
    int strip_start, strip_stop;
    /* the post-processor's template for one sequence */
    int32_t *tpl_prefix, *tpl_suffix;
    size_t n_tpl_prefix, n_tpl_suffix;
};

/* The plain pipeline of a jielong tokenizer: its special tokens (raw, special) and Split(t->re, Isolated). */
jl_status tok_pipeline_default(jl_tokenizer *t);
void tok_pipeline_free(tok_pipeline *p);
/* Whether decode(encode(x)) gives x back for every x — the raw bytes, or their U+FFFD-replaced form when
 * p->lossy_utf8 — : a byte-level model with no normalizer, no pre-tokenizer stage that drops or adds text, no
 * added token that eats whitespace and a decoder that keeps each token's bytes. Char-level models are not: like
 * HF, they drop a character the vocabulary lacks when there is neither byte fallback nor an unk token. */
int tok_lossless(const jl_tokenizer *t);

jl_status tok_added_build(const jl_tokenizer *t, tok_added_set *set, const int32_t *ids, const uint8_t *flags, int n);
void tok_added_free(tok_added_set *set);
enum { TOK_PRE2_SLOTS = 4096 };
static inline size_t tok_added_pre2(unsigned char b0, unsigned char b1) { return ((size_t)b0 << 4 ^ b1) & 4095; }
/* Longest added token at s (within n bytes), skipping TOK_ADDED_SPECIAL ones unless allow_special; its length
 * and *index into set, 0 if none. */
size_t tok_added_match(const jl_tokenizer *t, const tok_added_set *set, const char *s, size_t n, int allow_special,
                       int *index);
/* Whether a match [start, end) of entry k in text[0..len) stands (single_word) and its span widened by
 * lstrip / rstrip over whitespace; 0 if the match does not count. */
int tok_added_accept(const tok_added_set *set, int k, const char *text, size_t len, size_t *start, size_t *end);

/* ---- hand-written pre-tokenizer scanners (scan.c) ---- */
/* Spans of a pre-tokenizer over s[0..n): matches (is_match 1) and the runs between them (0), in order. */
typedef jl_status (*tok_span_fn)(void *user, size_t start, size_t end, int is_match);
typedef enum { TOK_SCAN_NONE, TOK_SCAN_GPT2, TOK_SCAN_CL100K, TOK_SCAN_QWEN2 } tok_scan_kind;
/* The scanner that splits exactly as PCRE2 does with this pattern (UTF, UCP, invalid UTF-8 as a barrier),
 * TOK_SCAN_NONE if there is none: the GPT-2, cl100k (= Llama 3) and Qwen 2 patterns, byte for byte. */
int tok_scan_kind_of(const char *pattern, size_t len);
/* Calls fn for the spans of the scanner `kind` over s[0..n), as find_regex would with its pattern. */
jl_status tok_scan(int kind, const char *s, size_t n, tok_span_fn fn, void *user);

/* ---- UTF-8 ---- */
/* Decodes one character at s[0..n); returns its length (1 for an invalid byte, *cp = U+FFFD). */
size_t tok_utf8_char(const char *s, size_t n, uint32_t *cp);
size_t tok_utf8_put(uint32_t cp, char *dst); /* up to 4 bytes */
/* Length of the character ending at s[n - 1]. */
size_t tok_utf8_prev(const char *s, size_t n, uint32_t *cp);
/* Whether text is valid UTF-8 (no surrogates, no overlongs). */
int tok_utf8_valid(const char *s, size_t n);
/* text with every maximal invalid subsequence replaced by U+FFFD (WHATWG / Rust from_utf8_lossy); malloc'd. */
jl_status tok_utf8_lossy(const char *s, size_t n, char **out, size_t *out_len);
int tok_is_whitespace(uint32_t cp);  /* Rust char::is_whitespace */
int tok_is_alnum(uint32_t cp);       /* Rust char::is_alphanumeric */

/* ---- normalizers ---- */
typedef struct {
    char *a, *b;      /* two growing byte buffers */
    size_t cap_a, cap_b;
    uint16_t *u, *v;  /* UTF-16 buffers for ICU */
    size_t cap_u, cap_v;
} tok_norm_scratch;
void tok_norm_scratch_free(tok_norm_scratch *s);
/* Applies the pipeline's normalizers to s[0..n); *out points at s or into the scratch. cont: s goes on a segment
 * cut before it (a unit with cont set): Prepend, which is for a segment's start, is skipped. */
jl_status tok_normalize(const tok_pipeline *p, tok_norm_scratch *sc, const char *s, size_t n, int cont,
                        const char **out, size_t *out_len);

/* ---- decoder ---- */
/* Builds p->dec_* for t from its decoder steps (called by the tokenizer.json loader). replace: the per-token
 * Replace pairs (from → to), byte_fallback: "<0xNN>" tokens become their byte, byte_level: tokens made only of
 * GPT-2 byte characters become those bytes (a ByteLevel decoder on a model without the ByteLevel pre-tokenizer). */
jl_status tok_decoder_build(jl_tokenizer *t, int n_replace, const char *const *from, const char *const *to,
                            int byte_fallback, int byte_level);

/* jl_tokenizer_encode with text segments cut into units of about `target` bytes where a cut provably changes no
 * id (after safe newlines, or before safe spaces on SentencePiece-style pipelines: spm_cut), the units encoded on
 * all threads when there are several; SIZE_MAX: no cut. The tests compare small targets with SIZE_MAX. */
jl_status tok_encode_units(const jl_tokenizer *t, const char *text, size_t len, int allow_special, size_t target,
                           int32_t **ids, size_t *n_ids);

/* Compiles a regex the way Split and Replace need it (PCRE2, UTF + UCP, JIT). */
jl_status tok_compile_regex(const char *pattern, size_t len, pcre2_code **out);

#endif
