/* llm.c GPT-2 checkpoints (header of 256 int32, then fp32 or bf16 weights) → jielong checkpoint. */
#include "fuzz_util.h"
#include "jielong/checkpoint.h"
#include "jielong/convert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    jl_checkpoint ck;
    if (jl_import_llmc(fuzz_file(0, data, size), &ck) == JL_OK) jl_checkpoint_free(&ck);
    return 0;
}
