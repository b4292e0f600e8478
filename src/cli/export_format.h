/* The format writers behind `jielong export`, callable after the checkpoint is loaded (and adapters merged). */
#ifndef JL_CLI_EXPORT_FORMAT_H
#define JL_CLI_EXPORT_FORMAT_H
#include "jielong/checkpoint.h"

/* format: "gguf" (type f32|f16|q8_0|q4_0), "safetensors" (a Hugging Face folder; type f32|f16|bf16) or
 * "llmc" (llm.c GPT-2 .bin, f32). Prints one summary line unless quiet; returns the CLI exit code. */
int export_format(const jl_checkpoint *ck, const char *format, const char *type, const char *out, int quiet);

#endif
