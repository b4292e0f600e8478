/* The encoder on arbitrary bytes with each shipped pre-tokenizer pattern (a small vocabulary trained on fixed
 * text for each, so merges apply): ids in range, and decoding gives the bytes back exactly. The first byte
 * picks the pattern and whether special-token text is matched. */
#include "fuzz_util.h"
#include "jielong/tokenizer.h"

enum { N_PATTERNS = 4 };
static jl_tokenizer *toks[N_PATTERNS];

static void init(void) {
    static const char text[] = "the cat sees the moon. 床前明月光，疑是地上霜。 don't 12345 <|end|> \n\n  x\ty "
                               "Hello World! ÀÉÎ ŒŸ ǅ αβγ 😀 the the the cat cat";
    const jl_pattern_kind kinds[N_PATTERNS] = {JL_PATTERN_GPT2, JL_PATTERN_CL100K, JL_PATTERN_O200K, JL_PATTERN_HAN};
    for (int k = 0; k < N_PATTERNS; k++) {
        const char *texts[1] = {text};
        size_t lens[1] = {sizeof text - 1};
        jl_train_opts o = {.vocab_size = 300, .pattern = jl_tokenizer_pattern_text(kinds[k])};
        if (jl_tokenizer_train(texts, lens, 1, &o, &toks[k]) != JL_OK) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!toks[0]) init();
    if (size < 1) return 0;
    const jl_tokenizer *t = toks[data[0] % N_PATTERNS];
    const int special = (data[0] >> 2) & 1;
    const char *text = (const char *)data + 1;
    const size_t len = size - 1;
    int32_t *ids = NULL;
    size_t n = 0;
    if (jl_tokenizer_encode(t, text, len, special, &ids, &n) != JL_OK) abort(); /* any bytes encode */
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= jl_tokenizer_vocab_size(t)) abort();
    char *back = NULL;
    size_t back_len = 0;
    if (jl_tokenizer_decode(t, ids, n, &back, &back_len) != JL_OK) abort();
    if (back_len != len || memcmp(back, text, len) != 0) abort(); /* lossless */
    free(back);
    free(ids);
    return 0;
}
