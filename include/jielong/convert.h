/* Open weights in and out: Hugging Face model folders (GPT-2, Llama family incl. Qwen2- and SmolLM-style),
 * llm.c GPT-2 checkpoints, and GGUF export for llama.cpp.
 *
 * A Hugging Face folder is config.json + one or more *.safetensors (F32, F16 or BF16) + tokenizer.json
 * (+ tokenizer_config.json for the chat template). Our tensor names are the Hugging Face names, so the mapping
 * is by name; GPT-2's Conv1D weights are transposed on the way in and out. Export at F32 then import gives
 * bit-identical tensors and the same config. */
#ifndef JIELONG_CONVERT_H
#define JIELONG_CONVERT_H
#include "jielong/checkpoint.h"
#include "jielong/safetensors.h"

/* Reads a Hugging Face model folder into a model-only checkpoint (tokenizer and chat template when present).
 * Errors name the file and the field or tensor: unsupported model_type / hidden_act / rope_scaling / biases,
 * missing tensor, shape mismatch, unexpected tensor, malformed safetensors. */
jl_status jl_import_hf(const char *dir, jl_checkpoint *out);

/* Writes a Hugging Face folder: config.json, model.safetensors (dtype F32, F16 or BF16), tokenizer.json and
 * tokenizer_config.json (when the checkpoint has a tokenizer / chat template). Creates the folder. */
jl_status jl_export_hf(const jl_checkpoint *ck, const char *dir, jl_dtype dtype);

/* config.json text (malloc'd) in Hugging Face terms for a config. */
jl_status jl_hf_config_json(const jl_config *c, char **json);

/* llm.c GPT-2 checkpoints (gpt2_124M.bin and friends): a 256-int32 header (magic 20240326, version 3 = fp32,
 * 5 = bf16, max_seq_len, vocab, layers, heads, channels, padded vocab) then all parameters in llm.c's order. */
jl_status jl_import_llmc(const char *path, jl_checkpoint *out);
/* Writes a gpt2-arch model in llm.c's fp32 layout (version 3), atomically. */
jl_status jl_export_llmc(const jl_model *m, const char *path);

/* 1 if the file starts with llm.c's model magic, 0 otherwise (also when it cannot be read). */
int jl_is_llmc_file(const char *path);

#endif
