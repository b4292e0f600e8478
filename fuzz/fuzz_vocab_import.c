/* tiktoken rank files and GPT-2 encoder.json + vocab.bpe (the input split at its first NUL byte). */
#include "fuzz_util.h"
#include "jielong/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    jl_tokenizer *t = NULL;
    if (data[0] & 1) {
        const char *path = fuzz_file(0, data + 1, size - 1);
        if (jl_tokenizer_import_tiktoken(path, jl_tokenizer_pattern_text(JL_PATTERN_CL100K), &t) == JL_OK)
            jl_tokenizer_free(t);
        return 0;
    }
    const uint8_t *rest = data + 1, *nul = memchr(rest, 0, size - 1);
    size_t n1 = nul ? (size_t)(nul - rest) : size - 1;
    const char *enc = fuzz_file(0, rest, n1);
    const char *merges = fuzz_file(1, nul ? nul + 1 : rest + n1, nul ? size - 1 - n1 - 1 : 0);
    if (jl_tokenizer_import_gpt2(enc, merges, &t) == JL_OK) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (jl_tokenizer_encode(t, (const char *)rest, n1, 0, &ids, &n) == JL_OK)
            for (size_t i = 0; i < n; i++)
                if (ids[i] < 0 || ids[i] >= jl_tokenizer_vocab_size(t)) abort();
        free(ids);
        jl_tokenizer_free(t);
    }
    return 0;
}
