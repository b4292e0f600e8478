/* jl_alloc_stream: large zeroed arrays on transparent huge pages where the kernel allows them. */
#include "core/mem.h"
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#define HUGE_PAGE ((size_t)2 << 20)

void *jl_alloc_stream(size_t bytes) {
    if (bytes > (size_t)-1 - 64) return NULL;
    const size_t n = bytes ? (bytes + 63) / 64 * 64 : 64;
    void *p = NULL; /* posix_memalign: aligned_alloc wants the size a multiple of the alignment */
    if (posix_memalign(&p, n >= HUGE_PAGE ? HUGE_PAGE : 64, n) != 0) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (n >= HUGE_PAGE) (void)madvise(p, n / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE); /* refused: ordinary pages */
#endif
    memset(p, 0, n);
    return p;
}
