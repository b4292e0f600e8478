/* GGUF (version 3), the llama.cpp file format: export of a jielong checkpoint, and a validating reader.
 *
 * Export: llama arch (gpt2 arch for gpt2 models) metadata, byte-level BPE tokenizer (tokenizer.ggml.model
 * "gpt2": tokens in GPT-2's byte→unicode spelling, merges, token types, bos/eos/eot ids, pre-tokenizer name),
 * chat template, and tensors in llama.cpp names. Q and K rows are permuted from Hugging Face's rotate_half
 * RoPE layout to GGML's interleaved pairs. --type picks the 2-D weights' type (f32, f16, q8_0, q4_0; block
 * types need a multiple of 32 columns); norms and biases stay f32.
 *
 * Reader: maps the file and validates every count, string, array, dimension and offset against the file size
 * before returning; tensors of types f32, f16, q8_0, q4_0 can be read back as floats. Written separately from
 * the writer so that tests check one against the other. */
#ifndef JIELONG_GGUF_H
#define JIELONG_GGUF_H
#include "jielong/checkpoint.h"
#include <stddef.h>
#include <stdint.h>

typedef enum { JL_GGML_F32 = 0, JL_GGML_F16 = 1, JL_GGML_Q4_0 = 2, JL_GGML_Q8_0 = 8, JL_GGML_BF16 = 30 } jl_ggml_type;

jl_status jl_ggml_type_parse(const char *name, jl_ggml_type *out); /* "f32" | "f16" | "q8_0" | "q4_0" */
const char *jl_ggml_type_name(jl_ggml_type t);

/* Writes ck (model, tokenizer, chat template) to path as GGUF, atomically. */
jl_status jl_export_gguf(const jl_checkpoint *ck, const char *path, jl_ggml_type type);
/* 1 with a one-line note in note[0..size) when the export's GGUF would not tokenize as jielong does in llama.cpp:
 * a byte-level BPE tokenizer with merges whose pre-tokenizer (Split regexes) llama.cpp has no
 * tokenizer.ggml.pre name for, written as "default" (llama.cpp then splits with its default regex). The file
 * is still written (llama.cpp loads it, and it round-trips into jielong); `jielong export` and `quantize` print
 * the note as a warning. 0 otherwise. */
int jl_gguf_export_note(const jl_checkpoint *ck, char *note, size_t size);

/* Loads a GGUF written by jl_export_gguf (jielong quantize / export) for inference: ck->model, ck->tokenizer_json
 * and ck->chat_template (from jielong's own metadata keys; the config from "jielong.config"), and in *qw the
 * linear weights in their block type (q8_0 / q4_0) with Q/K rows restored to jielong's order — NULL when the
 * file's weights are f32/f16, which then all land in ck->model. Norms, biases and f32/f16 tensors are fp32 in
 * ck->model. With dequantise = 0 (generate, chat, serve) the quantised tensors (linears, the token embedding)
 * live only in *qw: the model has no fp32 storage for them, so it runs only in a session with *qw and anything
 * that needs every fp32 parameter (save, export, train, the fp32 forward) refuses it. With dequantise = 1 (the
 * fp32 forward pass, e.g. eval) they are also dequantised into ck->model.
 * Free with jl_checkpoint_free and jl_qweights_free. */
typedef struct jl_qweights jl_qweights;
jl_status jl_gguf_load_model(const char *path, int dequantise, jl_checkpoint *ck, jl_qweights **qw);

/* ---- reading ---- */
typedef enum {
    JL_GGUF_U8 = 0, JL_GGUF_I8, JL_GGUF_U16, JL_GGUF_I16, JL_GGUF_U32, JL_GGUF_I32, JL_GGUF_F32, JL_GGUF_BOOL,
    JL_GGUF_STRING, JL_GGUF_ARRAY, JL_GGUF_U64, JL_GGUF_I64, JL_GGUF_F64
} jl_gguf_vtype;

typedef struct {
    const char *name;     /* NUL-terminated copy */
    int n_dims;
    int64_t ne[4];        /* ne[0] is the innermost (columns) */
    jl_ggml_type type;
    const void *data;     /* into the mapping */
    size_t nbytes;
} jl_gguf_tensor;

typedef struct jl_gguf jl_gguf;

jl_status jl_gguf_open(const char *path, jl_gguf **out);
void jl_gguf_close(jl_gguf *g);
uint32_t jl_gguf_version(const jl_gguf *g);
int jl_gguf_kv_count(const jl_gguf *g);
const char *jl_gguf_kv_key(const jl_gguf *g, int i);
int jl_gguf_find(const jl_gguf *g, const char *key);                /* index or -1 */
jl_gguf_vtype jl_gguf_kv_type(const jl_gguf *g, int i);
/* Typed getters by key: JL_ERR_FORMAT (naming the key) when absent or of another type. */
jl_status jl_gguf_get_u32(const jl_gguf *g, const char *key, uint32_t *v);
jl_status jl_gguf_get_f32(const jl_gguf *g, const char *key, float *v);
jl_status jl_gguf_get_bool(const jl_gguf *g, const char *key, int *v);
jl_status jl_gguf_get_str(const jl_gguf *g, const char *key, const char **s, size_t *len); /* not NUL-terminated */
/* Arrays: element type and count; then string or int32 elements by index. */
jl_status jl_gguf_get_arr(const jl_gguf *g, const char *key, jl_gguf_vtype *elem, uint64_t *n);
const char *jl_gguf_arr_str(const jl_gguf *g, const char *key, uint64_t i, size_t *len); /* NULL if not one */
int32_t jl_gguf_arr_i32(const jl_gguf *g, const char *key, uint64_t i);                  /* 0 if not one */
float jl_gguf_arr_f32(const jl_gguf *g, const char *key, uint64_t i);                    /* 0 if not one */
/* ggml's name of a tensor type number ("q4_K", "iq2_xs", ...), or NULL if unknown. */
const char *jl_ggml_type_name_any(uint32_t type);

int jl_gguf_tensor_count(const jl_gguf *g);
const jl_gguf_tensor *jl_gguf_tensor_at(const jl_gguf *g, int i);
const jl_gguf_tensor *jl_gguf_find_tensor(const jl_gguf *g, const char *name);
/* Done with tensor t's bytes: its pages leave this process's resident set (they stay in the page cache and
 * fault back in if read again), so a model loaded tensor by tensor does not also hold the whole file. */
void jl_gguf_tensor_release(const jl_gguf *g, const jl_gguf_tensor *t);
/* All elements as floats (dequantised); dst holds ne[0]·ne[1]·ne[2]·ne[3] floats. */
void jl_gguf_tensor_f32(const jl_gguf_tensor *t, float *dst);

#endif
