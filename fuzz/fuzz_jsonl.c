/* JSONL records of each dataset kind (the first byte picks it): SFT conversations (messages or Alpaca),
 * preference pairs, RL prompts, the poem corpus; bad lines skipped or stopping, by the first byte too. */
#include "fuzz_util.h"
#include "jielong/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *path = fuzz_file(0, data + 1, size - 1);
    jl_jsonl_options opt = {0};
    opt.skip_bad = (data[0] >> 2) & 1;
    jl_jsonl_stats stats;
    switch (data[0] & 3) {
    case 0: {
        jl_sft_set *s;
        if (jl_sft_load(path, &opt, &s, &stats) == JL_OK) jl_sft_free(s);
        break;
    }
    case 1: {
        jl_pref_set *s;
        if (jl_prefs_load(path, &opt, &s, &stats) == JL_OK) jl_prefs_free(s);
        break;
    }
    case 2: {
        jl_rl_set *s;
        if (jl_rl_load(path, &opt, &s, &stats) == JL_OK) {
            for (size_t i = 0; i < jl_rl_count(s); i++) {
                const char *p = jl_rl_prompt(s, i);
                fuzz_touch(p, strlen(p));
                jl_rl_field(s, i, "form");
            }
            jl_rl_free(s);
        }
        break;
    }
    default: {
        jl_poems *s;
        if (jl_poems_load(path, &opt, &s, &stats) == JL_OK) jl_poems_free(s);
        break;
    }
    }
    return 0;
}
