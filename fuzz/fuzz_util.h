/* Shared by the libFuzzer harnesses: the input as a file (the loaders take paths) without touching the disk. */
#ifndef JL_FUZZ_UTIL_H
#define JL_FUZZ_UTIL_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Path of an in-memory file (memfd) holding data[0..size); slot picks one of four files. */
static inline const char *fuzz_file(int slot, const uint8_t *data, size_t size) {
    static int fd[4] = {-1, -1, -1, -1};
    static char path[4][64];
    if (fd[slot] < 0) {
        fd[slot] = memfd_create("jlfuzz", 0);
        if (fd[slot] < 0) abort();
        snprintf(path[slot], sizeof path[slot], "/proc/self/fd/%d", fd[slot]);
    }
    if (ftruncate(fd[slot], 0) != 0) abort();
    if (size && pwrite(fd[slot], data, size, 0) != (ssize_t)size) abort();
    return path[slot];
}

/* Reads every byte of p[0..n) so that a pointer past the file faults under ASan. */
static inline unsigned fuzz_touch(const void *p, size_t n) {
    const volatile unsigned char *b = p;
    unsigned s = 0;
    for (size_t i = 0; i < n; i++) s += b[i];
    return s;
}

#endif
