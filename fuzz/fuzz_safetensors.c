/* safetensors header + tensors (jl_st_open), then the checkpoint loader on the same bytes. */
#include "fuzz_util.h"
#include "jielong/checkpoint.h"
#include "jielong/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(0, data, size);
    jl_st_file *f;
    if (jl_st_open(path, &f) == JL_OK) {
        for (int i = 0; i < jl_st_count(f); i++) {
            const jl_st_tensor *t = jl_st_at(f, i);
            fuzz_touch(t->data, t->nbytes);
            if (jl_st_find(f, t->name) == NULL) abort(); /* every listed tensor is found by its name */
        }
        jl_st_meta(f, "jielong.config");
        jl_st_close(f);
    }
    jl_checkpoint ck;
    if (jl_checkpoint_load(path, &ck) == JL_OK) jl_checkpoint_free(&ck);
    return 0;
}
