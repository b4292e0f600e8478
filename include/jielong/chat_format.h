/* A model's chat format: jielong's own template (jl_chat_render: <|bos|><|role|>text<|end|>…) or the model's own
 * Hugging Face Jinja chat template (kept by `jielong import` from tokenizer_config.json), rendered by
 * src/template with the variables HF passes (messages, add_generation_prompt, bos_token, eos_token).
 *
 * Loss mask with a foreign template, derived from the rendered text: F = render(all turns); for assistant turn
 * i, P = render(turns before i, add_generation_prompt) must be a prefix of F — the trained span starts where P
 * ends (so training sees the prompt exactly as generation does) and ends at the last non-space byte the template
 * wrote while its for-loop variable was that message (its content and end-of-turn marker, e.g. <|im_end|>).
 * A template for which this does not hold is refused with a one-line error naming the turn. */
#ifndef JIELONG_CHAT_FORMAT_H
#define JIELONG_CHAT_FORMAT_H
#include "jielong/checkpoint.h"
#include "jielong/dataset.h"
#include "jielong/tokenizer.h"

typedef struct jl_chat_format jl_chat_format;

/* jinja = the model's chat template, or NULL for jielong's built-in format (also chosen when jinja is exactly
 * jl_chat_template_jinja(), our format as Jinja, which HF and GGUF export write). bos/eos: the token texts the
 * template reads as bos_token / eos_token (NULL = ""). */
jl_status jl_chat_format_new(const char *jinja, const char *bos_token, const char *eos_token, jl_chat_format **out);
/* From a checkpoint's chat_template, bos_token, eos_token. */
jl_status jl_chat_format_from_checkpoint(const jl_checkpoint *ck, jl_chat_format **out);
void jl_chat_format_free(jl_chat_format *f);
int jl_chat_format_is_builtin(const jl_chat_format *f); /* also 1 for f == NULL */
/* The Jinja text (NULL for the built-in format), bos and eos token texts. */
const char *jl_chat_format_template(const jl_chat_format *f);
const char *jl_chat_format_bos(const jl_chat_format *f);
const char *jl_chat_format_eos(const jl_chat_format *f);

/* For training: every turn, trainable = each assistant turn's span (see above). f NULL = built-in. */
jl_status jl_chat_format_render(const jl_chat_format *f, const jl_conversation *conv, jl_segments *out);
/* The prompt to complete (a trailing assistant turn is dropped; the conversation needs a user turn). */
jl_status jl_chat_format_render_generation(const jl_chat_format *f, const jl_conversation *conv, jl_segments *out);
/* Strings that end an assistant's answer in this format (the end-of-turn marker the template writes after the
 * content, and the eos token); n = 0 for the built-in format (its <|end|> is an end token). Borrowed. */
int jl_chat_format_stops(const jl_chat_format *f, const char *const **stops);

/* The token sequences that end an answer, for generating loops over ids (rollouts, synthesis): the built-in
 * format's <|end|> and the tokenizer's eos; a template's stop strings (jl_chat_format_stops) encoded with special
 * tokens recognised (<|im_end|> is one id where the tokenizer has it, else its pieces) and the tokenizer's eos. */
#define JL_CHAT_STOPS_MAX 4
typedef struct {
    int n;
    size_t len[JL_CHAT_STOPS_MAX];
    int32_t *ids[JL_CHAT_STOPS_MAX];
} jl_chat_stops;
jl_status jl_chat_stops_new(const jl_tokenizer *tok, const jl_chat_format *f, jl_chat_stops *out);
/* How many tokens at the end of ids[0..n) are a stop (the longest that matches); 0 when none is. */
size_t jl_chat_stops_match(const jl_chat_stops *s, const int32_t *ids, size_t n);
void jl_chat_stops_free(jl_chat_stops *s);

/* Segments → token ids and trainable flags (train may be NULL). Special segments become their token (the
 * tokenizer must have it); text segments are encoded, special-token names in them recognised only when
 * encode_special. *ids and *train malloc'd. */
jl_status jl_segments_encode(const jl_tokenizer *tok, const jl_segments *s, int32_t **ids, uint8_t **train, size_t *n);

#endif
