/* Shared by the GGUF writer and the GGUF model loader: tensor names and jielong's own metadata keys. */
#ifndef JL_FORMAT_GGUF_NAMES_H
#define JL_FORMAT_GGUF_NAMES_H
#include "jielong/model.h"
#include <stddef.h>

#define JL_GGUF_KEY_CONFIG "jielong.config"               /* jl_config_to_json text */
#define JL_GGUF_KEY_TOKENIZER "jielong.tokenizer"         /* the checkpoint's tokenizer.json text */
#define JL_GGUF_KEY_CHAT_TEMPLATE "jielong.chat_template" /* only when the checkpoint has one */
#define JL_GGUF_KEY_BOS_TOKEN "jielong.bos_token"         /* with a chat template: its bos_token / eos_token */
#define JL_GGUF_KEY_EOS_TOKEN "jielong.eos_token"

/* HF tensor name → llama.cpp name in out; 0 if the tensor has no GGUF counterpart. *permute_heads > 0 for
 * llama's Q and K (weights and biases): their rows are stored permuted from rotate_half to GGML's interleaved
 * pairs, per head of this many. */
int jl_gguf_tensor_name(const jl_config *c, const char *hf, char *out, size_t size, int *permute_heads);

/* tokenizer.ggml.pre (llama.cpp's names for byte-level BPE pre-tokenizers) ↔ the Split regexes, in order, that a
 * tokenizer.json pre_tokenizer applies before ByteLevel, and whether its normalizer is NFC (Qwen's):
 * jl_gguf_pre_regexes: name (len bytes) → up to max regexes in regex[] (static strings), how many; -1 if unknown.
 *   "gpt-2" and "default" give GPT-2's regex (ByteLevel's own, use_regex).
 * jl_gguf_pre_name: the name llama.cpp knows for these regexes; NULL if none does (its tokenization would differ). */
int jl_gguf_pre_regexes(const char *name, size_t len, const char **regex, int max, int *nfc);
const char *jl_gguf_pre_name(const char *const *regex, int n, int nfc);

#endif
