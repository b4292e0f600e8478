/* Whole-file reads and atomic writes (temp file in the same folder, fsync, rename, fsync folder),
 * so a crash or a failed write never damages a file that was already saved. */
#ifndef JL_IO_FILEIO_H
#define JL_IO_FILEIO_H
#include "jielong/common.h"
#include <stdio.h>

/* Opens a regular file for reading without ever blocking (a FIFO or device given as a file is refused with a
 * message naming what it is); *fd (blocking from then on) and its *size. */
jl_status jl_open_regular(const char *path, int *fd, size_t *size);
/* Reads up to n bytes from the start of a regular file (magic sniffing); bytes read, or -1. */
long jl_read_head(const char *path, void *buf, size_t n);

/* Reads a whole file into a malloc'd buffer (NUL-terminated one past `len`). */
jl_status jl_read_file(const char *path, char **data, size_t *len);

typedef struct {
    FILE *f;          /* write through this */
    char *path;       /* final name */
    char *tmp_path;   /* "<path>.tmp.<pid>" until commit */
} jl_atomic_file;

/* Removes the temp files "<path>.tmp.<pid>" of processes that no longer run (killed mid-write). */
void jl_remove_stale_tmp(const char *path);
/* Creates "<path>.tmp.<pid>" for writing (after removing stale temp files of dead processes beside it). */
jl_status jl_atomic_open(jl_atomic_file *af, const char *path);
/* Flushes, fsyncs and renames over `path`; on any failure the temp file is removed. */
jl_status jl_atomic_commit(jl_atomic_file *af);
/* Discards the temp file; `path` is untouched. Safe to call after a failed commit. */
void jl_atomic_abort(jl_atomic_file *af);
/* After a failed write through af->f: discards the temp file and returns JL_ERR_IO "<path>: write failed: <why>",
 * why = strerror(err) (pass errno right after the failing call; 0 = "I/O error"). */
jl_status jl_atomic_fail(jl_atomic_file *af, int err);

jl_status jl_write_file_atomic(const char *path, const void *data, size_t len);

/* Creates a folder and its parents (like mkdir -p). */
jl_status jl_mkdir_p(const char *path);

/* An advisory lock (flock) on a folder's ".lock" file holding the owner's pid, so two runs never write into one
 * output folder: a second taker gets JL_ERR_ARG naming the holder's pid. Released at exit in any case. */
typedef struct {
    int fd;
} jl_dir_lock;
jl_status jl_dir_lock_take(const char *dir, jl_dir_lock *lock);
void jl_dir_lock_release(jl_dir_lock *lock);

#endif
