/* A grow-only allocator for the strings and small arrays of a loaded dataset: everything is freed at once,
 * and pointers stay valid while the pool lives (blocks are never moved). */
#ifndef JL_DATA_POOL_H
#define JL_DATA_POOL_H
#include <stddef.h>

typedef struct jl_pool_block jl_pool_block;
typedef struct {
    jl_pool_block *head;  /* newest block first */
} jl_pool;

/* size bytes aligned for any type, or NULL when out of memory. */
void *jl_pool_alloc(jl_pool *pool, size_t size);
/* A copy of s[0..len) with a NUL after it. */
char *jl_pool_strndup(jl_pool *pool, const char *s, size_t len);
void jl_pool_free(jl_pool *pool);

#endif
