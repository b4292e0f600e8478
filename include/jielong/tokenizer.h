/* Byte-level BPE tokenizer: train, encode, decode, HF tokenizer.json read/write, GPT-2 / tiktoken import.
 *
 * Ids: every byte-level vocabulary holds the 256 single-byte tokens. A tokenizer trained by jielong (or made by
 * jl_tokenizer_bytes) has byte b at id b, the DESIGN special tokens at the fixed ids 256..261 in the order
 * <|bos|> <|eos|> <|system|> <|user|> <|assistant|> <|end|>, its merges from 262 on, then any added tokens
 * (jl_tokenizer_add_tokens). An imported vocabulary keeps its own ids and gets the six special tokens appended
 * after its last id. Other code must find special tokens only through jl_tokenizer_special(). Encoding and
 * decoding are thread-safe on a shared tokenizer. */
#ifndef JIELONG_TOKENIZER_H
#define JIELONG_TOKENIZER_H
#include "jielong/common.h"

typedef struct jl_tokenizer jl_tokenizer;

/* The DESIGN special tokens, in id order. */
#define JL_TOKENIZER_N_SPECIAL 6
extern const char *const jl_tokenizer_special_names[JL_TOKENIZER_N_SPECIAL];

jl_status jl_tokenizer_load(const char *path, jl_tokenizer **out);                 /* tokenizer.json */
jl_status jl_tokenizer_from_json(const char *json, size_t len, jl_tokenizer **out); /* e.g. from checkpoint metadata */
jl_status jl_tokenizer_to_json(const jl_tokenizer *t, char **json_out);           /* malloc'd, NUL-terminated */
jl_status jl_tokenizer_save(const jl_tokenizer *t, const char *path);              /* atomic */
jl_status jl_tokenizer_bytes(jl_tokenizer **out); /* the 256 byte tokens + the DESIGN special tokens, no merges */
/* t with texts[0..n) appended as added tokens (ids from its vocabulary size on, not special: matched in every text
 * before pre-tokenization, whatever allow_special, and decoded as themselves), as loading its saved file gives.
 * JL_ERR_ARG for an empty text, one given twice or one that is already an added token. */
jl_status jl_tokenizer_add_tokens(const jl_tokenizer *t, const char *const *texts, int n, jl_tokenizer **out);
int jl_tokenizer_vocab_size(const jl_tokenizer *t);                               /* incl. special tokens */
/* allow_special: 1 = the literal text "<|end|>" etc. becomes the special token; 0 = it is encoded as plain text.
 * Large texts are split at safe newlines and encoded on all OpenMP threads; the result does not depend on it. */
jl_status jl_tokenizer_encode(const jl_tokenizer *t, const char *text, size_t len, int allow_special,
                              int32_t **ids, size_t *n_ids); /* *ids malloc'd */
/* Concatenates the raw bytes of the tokens; *text is malloc'd and NUL-terminated one past *len. */
jl_status jl_tokenizer_decode(const jl_tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len);
/* Raw bytes of one token (may be a partial UTF-8 sequence); NULL if out of range. */
const char *jl_tokenizer_token(const jl_tokenizer *t, int32_t id, size_t *len);
int32_t jl_tokenizer_special(const jl_tokenizer *t, const char *name); /* "<|bos|>" → id, -1 if absent */
/* The token that starts a document (pretraining data, prepare's separator): <|bos|> (jielong's), else the one
 * special token the post-processor puts before a text (Llama's <|begin_of_text|> / <s>, Gemma's <bos>, DeepSeek's
 * <｜begin▁of▁sentence｜>), else the document separator of tokenizers without a BOS (<|endoftext|>: Qwen, GPT-4o);
 * -1 if none. jl_tokenizer_eos: the token that ends a generation: <|eos|>, else the family's end-of-text token
 * (<|end_of_text|>, <|endoftext|>, <eos>, </s>, <｜end▁of▁sentence｜>: <eos> before </s>, which Gemma's vocabulary
 * also has, as an HTML tag); -1 if none. */
int32_t jl_tokenizer_bos(const jl_tokenizer *t);
int32_t jl_tokenizer_eos(const jl_tokenizer *t);
/* The ids the tokenizer's post-processor puts around one encoded text when the caller asks for special tokens
 * (HF TemplateProcessing "single", e.g. Llama 2's <s> before the text); none for jielong's own tokenizers. */
void jl_tokenizer_template(const jl_tokenizer *t, const int32_t **prefix, size_t *n_prefix, const int32_t **suffix,
                           size_t *n_suffix);
/* Whether text may be encoded in pieces at all (see jl_tokenizer_safe_cut); 0 for pipelines that act on a whole
 * segment (Llama 2's Prepend, Strip, Metaspace, unknown regexes). */
int jl_tokenizer_splittable(const jl_tokenizer *t);
/* The largest p in (0, len) where encoding text[0..p) and the rest separately gives the ids of the whole text,
 * whatever follows: just after "x\n" (x printable ASCII) before an ASCII letter or digit; 0 if there is none or
 * the tokenizer is not splittable. */
size_t jl_tokenizer_safe_cut(const jl_tokenizer *t, const char *text, size_t len);
/* The pre-tokenizer regex (PCRE2 syntax) this tokenizer splits text with. */
const char *jl_tokenizer_pattern(const jl_tokenizer *t);
/* Pre-tokenizer engine: on = 1 (the default) splits with a hand-written scanner where the pattern is one it knows
 * (GPT-2's, cl100k / Llama 3's, Qwen 2's; the same pieces as PCRE2, faster), on = 0 with PCRE2 always. Returns
 * how many pre-tokenizer stages a scanner then runs. Call it before encoding, not while other threads encode. */
int jl_tokenizer_set_scanner(jl_tokenizer *t, int on);
void jl_tokenizer_free(jl_tokenizer *t);

/* ---- pre-tokenizer patterns ---- */
typedef enum { JL_PATTERN_GPT2, JL_PATTERN_CL100K, JL_PATTERN_O200K, JL_PATTERN_HAN, JL_PATTERN_QWEN2 } jl_pattern_kind;
/* The regex of GPT-2 (r50k), GPT-4 (cl100k), GPT-4o (o200k), or Qwen 2/3 (cl100k with single digits). */
const char *jl_tokenizer_pattern_text(jl_pattern_kind kind);
/* "gpt2" | "r50k" | "p50k" | "cl100k" | "o200k" | "qwen2" | "han" (cl100k with one piece per Han character) → kind;
 * -1 if unknown. */
int jl_tokenizer_pattern_by_name(const char *name);

/* ---- training ---- */
/* Called from the calling thread only. phase: "count" (done/total in bytes of text) or "merge" (merges). */
typedef void (*jl_progress_fn)(void *user, const char *phase, double done, double total);

typedef struct {
    int vocab_size;          /* final size incl. 256 bytes + 6 special tokens; >= 262 */
    const char *pattern;     /* pre-tokenizer regex; NULL = GPT-4's (cl100k) */
    jl_progress_fn progress; /* may be NULL */
    void *progress_user;
} jl_train_opts;

typedef struct jl_bpe_trainer jl_bpe_trainer;
jl_status jl_bpe_trainer_new(const jl_train_opts *opts, jl_bpe_trainer **out);
/* Splits `text` into pre-tokens and counts them; may be called once per input file (the text can be freed after). */
jl_status jl_bpe_trainer_add(jl_bpe_trainer *tr, const char *text, size_t len);
/* Learns the merges and returns the tokenizer. Deterministic: the most frequent pair wins, ties go to the pair
 * with the smaller (left id, right id). Stops early (smaller vocabulary) when no pair is left to merge. */
jl_status jl_bpe_trainer_finish(jl_bpe_trainer *tr, jl_tokenizer **out);
void jl_bpe_trainer_free(jl_bpe_trainer *tr);
/* One call: all texts, then finish. */
jl_status jl_tokenizer_train(const char *const *texts, const size_t *lens, size_t n_texts, const jl_train_opts *opts,
                             jl_tokenizer **out);

/* ---- imports (the DESIGN special tokens are appended after the imported ids) ---- */
/* GPT-2's encoder.json (token → id, byte-level unicode strings) + vocab.bpe (merges, one "a b" per line). */
jl_status jl_tokenizer_import_gpt2(const char *encoder_json_path, const char *vocab_bpe_path, jl_tokenizer **out);
/* A tiktoken rank file ("<base64 token> <rank>" per line); ranks become ids; `pattern` is the regex. */
jl_status jl_tokenizer_import_tiktoken(const char *path, const char *pattern, jl_tokenizer **out);

#endif
