/* GGUF reader (every key and tensor) and the model loader (quantised or dequantised, by the first byte). */
#include "fuzz_util.h"
#include "jielong/checkpoint.h"
#include "jielong/generate.h"
#include "jielong/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const int dequantise = data[0] & 1;
    const char *path = fuzz_file(0, data + 1, size - 1);
    jl_gguf *g;
    if (jl_gguf_open(path, &g) == JL_OK) {
        for (int i = 0; i < jl_gguf_kv_count(g); i++) {
            const char *key = jl_gguf_kv_key(g, i);
            const char *s;
            size_t len;
            jl_gguf_vtype elem;
            uint64_t n;
            if (jl_gguf_get_str(g, key, &s, &len) == JL_OK) fuzz_touch(s, len);
            if (jl_gguf_get_arr(g, key, &elem, &n) == JL_OK)
                for (uint64_t k = 0; k < n && k < 64; k++) {
                    const char *e = jl_gguf_arr_str(g, key, k, &len);
                    if (e) fuzz_touch(e, len);
                    jl_gguf_arr_i32(g, key, k);
                }
        }
        for (int i = 0; i < jl_gguf_tensor_count(g); i++) {
            const jl_gguf_tensor *t = jl_gguf_tensor_at(g, i);
            fuzz_touch(t->data, t->nbytes);
        }
        jl_gguf_close(g);
    }
    jl_checkpoint ck;
    jl_qweights *qw = NULL;
    if (jl_gguf_load_model(path, dequantise, &ck, &qw) == JL_OK) {
        jl_qweights_free(qw);
        jl_checkpoint_free(&ck);
    }
    return 0;
}
