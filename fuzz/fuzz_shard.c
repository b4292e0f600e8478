/* Token shards: header, width, count and every token checked at open; reads at any offset stay in range. */
#include "fuzz_util.h"
#include "jielong/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(0, data, size);
    jl_shard *s;
    if (jl_shard_open(path, &s) != JL_OK) return 0;
    size_t n = jl_shard_count(s);
    int32_t buf[64];
    for (size_t start = 0; start < n; start += 61) {
        size_t k = n - start < 64 ? n - start : 64;
        if (jl_shard_read(s, start, k, buf) != JL_OK) abort();
        for (size_t i = 0; i < k; i++)
            if (buf[i] < 0 || buf[i] >= jl_shard_vocab(s)) abort(); /* validated at open */
    }
    if (jl_shard_read(s, n, 1, buf) == JL_OK) abort(); /* past the end is an error */
    jl_shard_close(s);
    return 0;
}
