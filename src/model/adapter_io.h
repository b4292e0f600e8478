/* What LoRA and soft-prompt files share: the base model's fingerprint (config + weights hash), the metadata
 * that marks the adapter kind, the optional training state, and shape-checked tensor reads. */
#ifndef JL_MODEL_ADAPTER_IO_H
#define JL_MODEL_ADAPTER_IO_H
#include "jielong/adapter.h"
#include "jielong/safetensors.h"

typedef struct {
    char *config_json;
    uint64_t hash;
} jl_base_id;

jl_status jl_base_id_of(const jl_model *m, jl_base_id *id);
int jl_base_id_matches(const jl_base_id *id, const jl_model *m);
void jl_base_id_free(jl_base_id *id);

typedef struct {
    jl_st_writer *w;
} jl_adapter_writer;

/* Starts a file of adapter `kind` ("lora", "prompt") for the base; add tensors and metadata to aw->w. */
jl_status jl_adapter_writer_begin(jl_adapter_writer *aw, const char *kind, const jl_base_id *base);
/* Adds the state (if any; moments of n floats), writes atomically unless st != JL_OK, frees. Returns the status. */
jl_status jl_adapter_writer_finish(jl_adapter_writer *aw, jl_status st, const char *path, size_t n,
                                   const jl_adapter_state *state);
/* Opens an adapter file, checks its kind and that it was made for base model m. */
jl_status jl_adapter_open(const char *path, const char *kind, const jl_model *m, jl_st_file **out);
/* Copies F32 tensor `name` of shape (rows, cols) into dst; `what` names the metadata the shape follows from. */
jl_status jl_adapter_read_tensor(const char *path, const jl_st_file *f, const char *name, int64_t rows, int64_t cols,
                                 float *dst, const char *what);
/* Fails if the file holds other tensors than the `expected` adapter tensors (and the moments). */
jl_status jl_adapter_check_extra(const char *path, const jl_st_file *f, int expected);
jl_status jl_adapter_read_state(const char *path, const jl_st_file *f, size_t n, jl_adapter_state *state);

#endif
