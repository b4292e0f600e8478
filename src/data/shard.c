/* Token shards: write atomically, open with mmap and validate everything once (see include/jielong/data.h). */
#include "io/fileio.h"
#include "jielong/data.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct jl_shard {
    void *map;
    size_t map_len;
    const unsigned char *tokens;
    size_t count;
    int width, vocab;
};

static int width_for(int vocab_size) { return vocab_size <= 65536 ? 2 : 4; }

jl_status jl_shard_write(const char *path, const int32_t *tokens, size_t n, int vocab_size) {
    if (vocab_size <= 0) return jl_fail(JL_ERR_ARG, "%s: vocabulary size %d must be positive", path, vocab_size);
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= vocab_size)
            return jl_fail(JL_ERR_ARG, "%s: token %zu = %d is outside [0, %d)", path, i, (int)tokens[i], vocab_size);
    int32_t header[JL_SHARD_HEADER_INTS] = {0};
    int width = width_for(vocab_size);
    header[0] = JL_SHARD_MAGIC;
    header[1] = JL_SHARD_VERSION;
    header[2] = width;
    header[3] = (int32_t)(uint32_t)(n & 0xFFFFFFFFu);
    header[4] = (int32_t)(uint32_t)((uint64_t)n >> 32);
    header[5] = vocab_size;
    jl_atomic_file af;
    jl_status st = jl_atomic_open(&af, path);
    if (st != JL_OK) return st;
    int bad = fwrite(header, sizeof header, 1, af.f) != 1;
    enum { BLOCK = 1 << 16 };
    unsigned char *buf = malloc((size_t)BLOCK * 4);
    if (!buf) {
        jl_atomic_abort(&af);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n && !bad; i += BLOCK) {
        size_t m = n - i < BLOCK ? n - i : BLOCK;
        for (size_t k = 0; k < m; k++) {
            uint32_t v = (uint32_t)tokens[i + k];
            if (width == 2) {
                uint16_t v16 = (uint16_t)v;
                memcpy(buf + 2 * k, &v16, 2);
            } else {
                memcpy(buf + 4 * k, &v, 4);
            }
        }
        bad = fwrite(buf, (size_t)width, m, af.f) != m;
    }
    int err = bad ? errno : 0; /* of the failed write */
    free(buf);
    if (bad) return jl_atomic_fail(&af, err);
    return jl_atomic_commit(&af);
}

static uint32_t token_at(const jl_shard *s, size_t i) {
    if (s->width == 2) {
        uint16_t v;
        memcpy(&v, s->tokens + 2 * i, 2);
        return v;
    }
    uint32_t v;
    memcpy(&v, s->tokens + 4 * i, 4);
    return v;
}

static jl_status validate(jl_shard *s, const char *path, size_t file_size) {
    int32_t h[JL_SHARD_HEADER_INTS];
    if (file_size < sizeof h)
        return jl_fail(JL_ERR_FORMAT, "%s: %zu bytes, too short for the %zu-byte shard header", path, file_size,
                       sizeof h);
    memcpy(h, s->map, sizeof h);
    if (h[0] != JL_SHARD_MAGIC) return jl_fail(JL_ERR_FORMAT, "%s: bad magic 0x%08X (not a token shard)", path, h[0]);
    if (h[1] != JL_SHARD_VERSION) return jl_fail(JL_ERR_FORMAT, "%s: shard version %d, expected 1", path, h[1]);
    if (h[2] != 2 && h[2] != 4) return jl_fail(JL_ERR_FORMAT, "%s: token width %d, expected 2 or 4", path, h[2]);
    if (h[5] <= 0 || (h[2] == 2 && h[5] > 65536))
        return jl_fail(JL_ERR_FORMAT, "%s: vocabulary size %d does not fit width %d", path, h[5], h[2]);
    uint64_t count = (uint64_t)(uint32_t)h[3] | ((uint64_t)(uint32_t)h[4] << 32);
    s->width = h[2];
    s->vocab = h[5];
    if (count > (file_size - sizeof h) / (size_t)s->width || sizeof h + count * (size_t)s->width != file_size)
        return jl_fail(JL_ERR_FORMAT, "%s: header says %llu tokens of %d bytes but the file has %zu bytes", path,
                       (unsigned long long)count, s->width, file_size);
    s->count = (size_t)count;
    s->tokens = (const unsigned char *)s->map + sizeof h;
    for (size_t i = 0; i < s->count; i++)
        if (token_at(s, i) >= (uint32_t)s->vocab)
            return jl_fail(JL_ERR_FORMAT, "%s: token %zu = %u is outside the vocabulary of %d", path, i,
                           token_at(s, i), s->vocab);
    return JL_OK;
}

jl_status jl_shard_open(const char *path, jl_shard **out) {
    *out = NULL;
    int fd;
    size_t size;
    jl_status rs = jl_open_regular(path, &fd, &size);
    if (rs != JL_OK) return rs;
    jl_shard *s = calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    s->map_len = size;
    if (s->map_len) {
        s->map = mmap(NULL, s->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (s->map == MAP_FAILED) {
            s->map = NULL;
            close(fd);
            free(s);
            return jl_fail(JL_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
        }
    }
    close(fd);
    jl_status rc = validate(s, path, s->map_len);
    if (rc != JL_OK) {
        jl_shard_close(s);
        return rc;
    }
    *out = s;
    return JL_OK;
}

size_t jl_shard_count(const jl_shard *s) { return s->count; }
int jl_shard_vocab(const jl_shard *s) { return s->vocab; }
int jl_shard_width(const jl_shard *s) { return s->width; }

jl_status jl_shard_read(const jl_shard *s, size_t start, size_t n, int32_t *dst) {
    if (start > s->count || n > s->count - start)
        return jl_fail(JL_ERR_ARG, "shard read [%zu, %zu) is past its %zu tokens", start, start + n, s->count);
    for (size_t i = 0; i < n; i++) dst[i] = (int32_t)token_at(s, start + i);
    return JL_OK;
}

void jl_shard_close(jl_shard *s) {
    if (!s) return;
    if (s->map) munmap(s->map, s->map_len);
    free(s);
}
