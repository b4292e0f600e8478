#include "io/fileio.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

jl_status jl_read_file(const char *path, char **data, size_t *len) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return jl_fail(JL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return jl_fail(JL_ERR_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    char *buf = malloc(size + 1);
    if (!buf) {
        fclose(f);
        return jl_fail(JL_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, size);
    }
    size_t got = fread(buf, 1, size, f);
    int err = ferror(f);
    fclose(f);
    if (got != size || err) {
        free(buf);
        return jl_fail(JL_ERR_IO, "%s: read failed", path);
    }
    buf[size] = '\0';
    *data = buf;
    *len = size;
    return JL_OK;
}

static char *dup_printf_tmp(const char *path) {
    size_t n = strlen(path) + 32;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s.tmp.%ld", path, (long)getpid());
    return s;
}

jl_status jl_atomic_open(jl_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    af->path = strdup(path);
    af->tmp_path = dup_printf_tmp(path);
    if (!af->path || !af->tmp_path) {
        jl_atomic_abort(af);
        return jl_fail(JL_ERR_NOMEM, "%s: out of memory", path);
    }
    af->f = fopen(af->tmp_path, "wb");
    if (!af->f) {
        jl_status st = jl_fail(JL_ERR_IO, "%s: cannot create: %s", af->tmp_path, strerror(errno));
        jl_atomic_abort(af);
        return st;
    }
    return JL_OK;
}

static void fsync_parent(const char *path) {
    char *copy = strdup(path);
    if (!copy) return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

jl_status jl_atomic_commit(jl_atomic_file *af) {
    if (!af->f) return jl_fail(JL_ERR_IO, "%s: not open", af->path ? af->path : "?");
    int bad = fflush(af->f) != 0 || ferror(af->f) || fsync(fileno(af->f)) != 0;
    int close_bad = fclose(af->f) != 0;
    af->f = NULL;
    if (bad || close_bad) {
        jl_status st = jl_fail(JL_ERR_IO, "%s: write failed: %s", af->path, strerror(errno));
        jl_atomic_abort(af);
        return st;
    }
    if (rename(af->tmp_path, af->path) != 0) {
        jl_status st = jl_fail(JL_ERR_IO, "%s: rename failed: %s", af->path, strerror(errno));
        jl_atomic_abort(af);
        return st;
    }
    fsync_parent(af->path);
    free(af->path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
    return JL_OK;
}

void jl_atomic_abort(jl_atomic_file *af) {
    if (af->f) fclose(af->f);
    if (af->tmp_path) unlink(af->tmp_path);
    free(af->path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
}

jl_status jl_write_file_atomic(const char *path, const void *data, size_t len) {
    jl_atomic_file af;
    jl_status st = jl_atomic_open(&af, path);
    if (st != JL_OK) return st;
    if (len && fwrite(data, 1, len, af.f) != len) {
        jl_atomic_abort(&af);
        return jl_fail(JL_ERR_IO, "%s: write failed", path);
    }
    return jl_atomic_commit(&af);
}

jl_status jl_mkdir_p(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return jl_fail(JL_ERR_ARG, "bad folder name '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return jl_fail(JL_ERR_IO, "%s: cannot create folder: %s", buf, strerror(errno));
        buf[i] = saved;
    }
    return JL_OK;
}

jl_status jl_dir_lock_take(const char *dir, jl_dir_lock *lock) {
    char path[4096];
    lock->fd = -1;
    snprintf(path, sizeof path, "%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return jl_fail(JL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        close(fd);
        return jl_fail(JL_ERR_ARG, "%s is in use by another run (pid %s); wait for it or choose another --out", dir,
                       pid[0] ? pid : "unknown");
    }
    char text[32];
    int len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len) {
        close(fd);
        return jl_fail(JL_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    }
    lock->fd = fd;
    return JL_OK;
}

void jl_dir_lock_release(jl_dir_lock *lock) {
    if (lock->fd < 0) return;
    if (ftruncate(lock->fd, 0) != 0) { /* the pid stays; the lock itself goes with the descriptor */ }
    close(lock->fd);
    lock->fd = -1;
}
