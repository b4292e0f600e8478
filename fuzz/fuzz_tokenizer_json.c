/* tokenizer.json loader; a tokenizer that loads must encode its own bytes to ids in range, give them back
 * where its pipeline is lossless (tok_lossless: the bytes, or their U+FFFD form for a foreign one) and write
 * itself back. A char-level model drops characters its vocabulary lacks, as HF does (no round trip there). */
#include "fuzz_util.h"
#include "jielong/tokenizer.h"
#include "tokenizer/pipeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    jl_tokenizer *t;
    if (jl_tokenizer_from_json((const char *)data, size, &t) != JL_OK) return 0;
    int32_t *ids = NULL;
    size_t n = 0;
    const size_t len = size < 4096 ? size : 4096;
    if (jl_tokenizer_encode(t, (const char *)data, len, 0, &ids, &n) == JL_OK) {
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= jl_tokenizer_vocab_size(t)) abort();
        char *back = NULL, *want = NULL;
        size_t back_len = 0, want_len = len;
        if (tok_lossless(t) && jl_tokenizer_decode(t, ids, n, &back, &back_len) == JL_OK) {
            const char *w = (const char *)data;
            if (t->pipe->lossy_utf8 && tok_utf8_lossy(w, len, &want, &want_len) == JL_OK) w = want;
            if (back_len != want_len || memcmp(back, w, want_len)) abort(); /* byte-level BPE loses nothing */
        }
        free(back);
        free(want);
    }
    free(ids);
    char *json = NULL;
    if (jl_tokenizer_to_json(t, &json) == JL_OK) {
        jl_tokenizer *again;
        if (jl_tokenizer_from_json(json, strlen(json), &again) != JL_OK) abort(); /* what we write, we read */
        jl_tokenizer_free(again);
    }
    free(json);
    jl_tokenizer_free(t);
    return 0;
}
