/* llama.cpp's byte-level BPE pre-tokenizer names (tokenizer.ggml.pre) ↔ the Split regexes of a tokenizer.json
 * pre_tokenizer (see gguf_names.h). One table for both directions: GGUF export names the regexes a checkpoint's
 * tokenizer splits with, GGUF import rebuilds the pre_tokenizer from the name. */
#include "format/gguf_names.h"
#include "jielong/tokenizer.h"
#include <string.h>

/* DeepSeek V3's three Splits, in order: digit runs, CJK runs, then the word/punctuation pattern. */
static const char *const deepseek_v3[] = {
    "\\p{N}{1,3}", "[\xE4\xB8\x80-\xE9\xBE\xA5\xE3\x81\x80-\xE3\x82\x9F\xE3\x82\xA0-\xE3\x83\xBF]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+"
    "[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"};

static const struct {
    const char *name;
    int pattern;                /* a jl_pattern_kind, or -1: the regexes of `regex` */
    const char *const *regex;
    int n_regex, nfc, canonical; /* canonical: the name export writes for these regexes */
} table[] = {
    {"gpt-2", JL_PATTERN_GPT2, NULL, 1, 0, 1},          {"default", JL_PATTERN_GPT2, NULL, 1, 0, 0},
    {"llama-bpe", JL_PATTERN_CL100K, NULL, 1, 0, 1},    {"llama3", JL_PATTERN_CL100K, NULL, 1, 0, 0},
    {"dbrx", JL_PATTERN_CL100K, NULL, 1, 0, 0},         {"smaug-bpe", JL_PATTERN_CL100K, NULL, 1, 0, 0},
    {"qwen2", JL_PATTERN_QWEN2, NULL, 1, 1, 1},         {"gpt-4o", JL_PATTERN_O200K, NULL, 1, 0, 1},
    {"deepseek-v3", -1, deepseek_v3, 3, 0, 1},
};
#define N_TABLE (sizeof table / sizeof table[0])

static const char *regex_at(size_t k, int i) {
    return table[k].pattern >= 0 ? jl_tokenizer_pattern_text((jl_pattern_kind)table[k].pattern) : table[k].regex[i];
}

int jl_gguf_pre_regexes(const char *name, size_t len, const char **regex, int max, int *nfc) {
    for (size_t k = 0; k < N_TABLE; k++) {
        if (strlen(table[k].name) != len || memcmp(table[k].name, name, len) != 0) continue;
        int n = table[k].n_regex < max ? table[k].n_regex : max;
        for (int i = 0; i < n; i++) regex[i] = regex_at(k, i);
        *nfc = table[k].nfc;
        return n;
    }
    return -1;
}

const char *jl_gguf_pre_name(const char *const *regex, int n, int nfc) {
    for (size_t k = 0; k < N_TABLE; k++) {
        if (!table[k].canonical || table[k].n_regex != n || table[k].nfc != nfc) continue;
        int same = 1;
        for (int i = 0; i < n && same; i++) same = strcmp(regex[i], regex_at(k, i)) == 0;
        if (same) return table[k].name;
    }
    return NULL;
}
