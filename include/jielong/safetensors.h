/* safetensors: the checkpoint container (HF format, so HF tools read what we write and we read theirs).
 *
 * Layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON
 *   {"__metadata__": {str: str}, "name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...}
 * padded with spaces to a multiple of 8, then the byte buffer. Offsets are relative to the buffer; the tensors
 * tile it exactly (no holes, no overlaps, ending at end of file).
 *
 * Writing: register tensors (not copied) and metadata, then jl_st_write writes the file atomically.
 * The JSON header lists tensors in the order added; in the byte buffer they are laid out by element size,
 * largest first (stable, so all-F32 checkpoints keep the order added) — like HF's own writer, this keeps every
 * tensor aligned to its element size when the file is mapped.
 * Reading: jl_st_open maps the file read-only and validates everything before returning, so every tensor's
 * `data` .. `data + nbytes` lies inside the file. `data` is aligned for files written by jielong or HF;
 * other writers may leave it unaligned (memcpy such tensors out). */
#ifndef JIELONG_SAFETENSORS_H
#define JIELONG_SAFETENSORS_H
#include "jielong/common.h"
#include <stddef.h>
#include <stdint.h>

typedef enum {
    JL_DT_F32, JL_DT_F16, JL_DT_BF16, JL_DT_F64, JL_DT_I64, JL_DT_I32, JL_DT_I16, JL_DT_I8, JL_DT_U8,
    JL_DT_U16, JL_DT_U32, JL_DT_U64, JL_DT_BOOL
} jl_dtype;

#define JL_ST_MAX_DIMS 8

size_t jl_dtype_size(jl_dtype dt);      /* bytes per element; 0 for an invalid value */
const char *jl_dtype_name(jl_dtype dt); /* "F32", "BF16", ...; "?" for an invalid value */

/* ---- writing ---- */
typedef struct jl_st_writer jl_st_writer;

jl_st_writer *jl_st_writer_new(void); /* NULL on out of memory */
/* Registers a tensor; `data` is NOT copied and must stay valid until jl_st_write returns. Duplicate names
 * and empty names are errors (JL_ERR_ARG). ndim 0..8; shape entries >= 0. */
jl_status jl_st_add(jl_st_writer *w, const char *name, jl_dtype dt, int ndim, const int64_t *shape,
                    const void *data);
/* string → string; the value may be large (MBs) and is copied. Duplicate keys are errors. */
jl_status jl_st_add_meta(jl_st_writer *w, const char *key, const char *value);
/* Atomic: temp file + fsync + rename, so a failed write leaves an existing file untouched. */
jl_status jl_st_write(jl_st_writer *w, const char *path);
void jl_st_writer_free(jl_st_writer *w);

/* ---- reading ---- */
typedef struct {
    const char *name;
    jl_dtype dtype;
    int ndim;
    int64_t shape[JL_ST_MAX_DIMS];
    const void *data; /* points into the read-only mapping; valid until jl_st_close */
    size_t nbytes;
} jl_st_tensor;

typedef struct jl_st_file jl_st_file;

/* Maps `path` read-only and validates it completely; JL_ERR_FORMAT (message names the file and the field)
 * for any malformed file, JL_ERR_IO when it cannot be opened. */
jl_status jl_st_open(const char *path, jl_st_file **out);
int jl_st_count(const jl_st_file *f);
const jl_st_tensor *jl_st_at(const jl_st_file *f, int i);                /* header order; NULL if out of range */
const jl_st_tensor *jl_st_find(const jl_st_file *f, const char *name);   /* NULL if absent (binary search) */
const char *jl_st_meta(const jl_st_file *f, const char *key);            /* NULL if absent */
void jl_st_close(jl_st_file *f);

#endif
