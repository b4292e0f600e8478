/* Memory for the large arrays a token streams through (weights, quantised matrices, the KV cache). */
#ifndef JL_CORE_MEM_H
#define JL_CORE_MEM_H
#include <stddef.h>

/* `bytes` of zeroed memory, 64-byte aligned; from 2 MiB up aligned to 2 MiB and advised for transparent huge
 * pages (MADV_HUGEPAGE, before the zeroing touches it), so a sweep over the weights takes a TLB entry per 2 MiB
 * instead of per 4 KiB (under a hypervisor a 4 KiB miss is a two-level walk). The whole 2 MiB pieces can be huge
 * pages, the tail past the last one stays ordinary pages (nothing is padded). The advice is only advice: where
 * the kernel refuses it the memory is ordinary pages. NULL when out of memory. Release with free(). */
void *jl_alloc_stream(size_t bytes);

#endif
