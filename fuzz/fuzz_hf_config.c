/* Hugging Face config.json → config, in a model folder (tmpfs) holding a tiny llama's weights, so that a config
 * that parses goes on to the shape checks against the shard. */
#include "fuzz_util.h"
#include "jielong/checkpoint.h"
#include "jielong/convert.h"
#include "jielong/model.h"
#include <sys/stat.h>

static char dir[128], config[192];

static void cleanup(void) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static void init(void) {
    snprintf(dir, sizeof dir, "/dev/shm/jlfuzz-hf-%d", (int)getpid());
    snprintf(config, sizeof config, "%s/config.json", dir);
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, 1, 300, 32);
    c.dim = 8; /* width 8: a config that parses goes through the same shape checks and loads, ~8x fewer bytes */
    c.n_head = c.n_kv_head = 1;
    c.hidden_dim = 16;
    if (jl_config_finish(&c) != JL_OK) abort();
    jl_checkpoint ck = {0};
    if (jl_model_new(&c, &ck.model) != JL_OK) abort();
    jl_model_init(ck.model, 1);
    if (jl_export_hf(&ck, dir, JL_DT_F32) != JL_OK) abort();
    jl_checkpoint_free(&ck);
    atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) init();
    FILE *f = fopen(config, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    jl_checkpoint ck;
    if (jl_import_hf(dir, &ck) == JL_OK) jl_checkpoint_free(&ck);
    return 0;
}
