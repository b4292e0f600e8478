/* GGUF files written by llama.cpp's tools (no jielong.* keys): the model config from the architecture's keys and a
 * tokenizer.json built from tokenizer.ggml.*. */
#ifndef JL_FORMAT_GGUF_FOREIGN_H
#define JL_FORMAT_GGUF_FOREIGN_H
#include "jielong/gguf.h"
#include "jielong/model.h"

/* general.architecture llama, qwen2 or gpt2 → cfg. *unpermute = 1 when the file's Q/K rows are in GGML's
 * interleaved RoPE order (llama: llama.cpp's converter permutes them; qwen2 keeps HF's order). */
jl_status jl_gguf_foreign_config(const jl_gguf *g, const char *path, jl_config *cfg, int *unpermute);
/* tokenizer.ggml.model "gpt2" (byte-level BPE: tokens, merges, tokenizer.ggml.pre) or "llama" (SentencePiece:
 * tokens, scores, token types) → the equivalent HF tokenizer.json text (malloc'd). */
jl_status jl_gguf_foreign_tokenizer(const jl_gguf *g, const char *path, char **json);

/* The text of the token whose id is under id_key (e.g. "tokenizer.ggml.bos_token_id"), malloc'd; NULL if none. */
char *jl_gguf_foreign_token(const jl_gguf *g, const char *id_key);

#endif
