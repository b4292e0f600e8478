#include "data/pool.h"
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

struct jl_pool_block {
    jl_pool_block *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
};

enum { POOL_BLOCK = 256 * 1024 };

void *jl_pool_alloc(jl_pool *pool, size_t size) {
    const size_t align = alignof(max_align_t);
    size = (size + align - 1) / align * align;
    jl_pool_block *b = pool->head;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > POOL_BLOCK ? size : POOL_BLOCK;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = pool->head;
        pool->head = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    return p;
}

char *jl_pool_strndup(jl_pool *pool, const char *s, size_t len) {
    char *p = jl_pool_alloc(pool, len + 1);
    if (!p) return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void jl_pool_free(jl_pool *pool) {
    for (jl_pool_block *b = pool->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    pool->head = NULL;
}
