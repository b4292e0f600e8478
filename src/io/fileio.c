#include "io/fileio.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_of(mode_t m) {
    return S_ISDIR(m) ? "a folder" : S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ? "a character device" :
           S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

jl_status jl_open_regular(const char *path, int *fd_out, size_t *size) {
    *fd_out = -1;
    *size = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* O_NONBLOCK: open() of a FIFO must not wait */
    if (fd < 0) return jl_fail(JL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st = {0};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        jl_status r = jl_fail(JL_ERR_IO, "%s: is %s, expected a regular file", path, kind_of(st.st_mode));
        close(fd);
        return r;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    *fd_out = fd;
    *size = (size_t)st.st_size;
    return JL_OK;
}

long jl_read_head(const char *path, void *buf, size_t n) {
    int fd;
    size_t size;
    if (jl_open_regular(path, &fd, &size) != JL_OK) return -1;
    ssize_t got = read(fd, buf, n);
    close(fd);
    return got < 0 ? -1 : (long)got;
}

jl_status jl_read_file(const char *path, char **data, size_t *len) {
    *data = NULL;
    *len = 0;
    int fd;
    size_t size;
    jl_status rs = jl_open_regular(path, &fd, &size);
    if (rs != JL_OK) return rs;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return jl_fail(JL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
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

/* "<base>.tmp.<digits>" → the pid, else 0. */
static long tmp_pid(const char *name, const char *base) {
    size_t n = strlen(base);
    if (strncmp(name, base, n) != 0 || strncmp(name + n, ".tmp.", 5) != 0) return 0;
    const char *d = name + n + 5;
    long pid = 0;
    if (!*d) return 0;
    for (; *d; d++) {
        if (*d < '0' || *d > '9' || pid > 1L << 40) return 0;
        pid = pid * 10 + (*d - '0');
    }
    return pid;
}

void jl_remove_stale_tmp(const char *path) {
    char *a = strdup(path), *b = strdup(path);
    DIR *d = a && b ? opendir(dirname(a)) : NULL;
    const char *base = b ? basename(b) : "";
    for (struct dirent *e; d && (e = readdir(d));) {
        long pid = tmp_pid(e->d_name, base);
        if (pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        size_t n = strlen(a) + strlen(e->d_name) + 2;
        char *full = malloc(n);
        if (full) {
            snprintf(full, n, "%s/%s", a, e->d_name);
            unlink(full); /* best effort: a file we cannot remove does no harm */
            free(full);
        }
    }
    if (d) closedir(d);
    free(a);
    free(b);
}

jl_status jl_atomic_open(jl_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    jl_remove_stale_tmp(path);
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

jl_status jl_atomic_fail(jl_atomic_file *af, int err) {
    jl_status st = jl_fail(JL_ERR_IO, "%s: write failed: %s", af->path ? af->path : "?", err ? strerror(err) : "I/O error");
    jl_atomic_abort(af);
    return st;
}

jl_status jl_atomic_commit(jl_atomic_file *af) {
    if (!af->f) return jl_fail(JL_ERR_IO, "%s: not open", af->path ? af->path : "?");
    /* the errno of the first call that fails (a write that failed earlier left ferror set and, usually, errno) */
    int err = 0, bad = 1;
    if (fflush(af->f) != 0) err = errno;
    else if (ferror(af->f)) err = errno;
    else if (fsync(fileno(af->f)) != 0) err = errno;
    else bad = 0;
    if (fclose(af->f) != 0 && !bad) err = errno, bad = 1;
    af->f = NULL;
    if (bad) return jl_atomic_fail(af, err);
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
    if (len && fwrite(data, 1, len, af.f) != len) return jl_atomic_fail(&af, errno);
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
