/* The order in which a training stream visits its windows: a pseudo-random permutation of [0, n), computed per
 * index (no table), so a shuffled epoch costs nothing to set up and a resumed run visits exactly the windows an
 * uninterrupted one would. */
#ifndef JL_DATA_ORDER_H
#define JL_DATA_ORDER_H
#include <stdint.h>

/* The i-th element (0 ≤ i < n) of the permutation of [0, n) named by key: a bijection for every n ≥ 1. */
uint64_t jl_permute_index(uint64_t i, uint64_t n, uint64_t key);
/* A 64-bit mix of (a, b): independent keys for (seed, epoch) and the like. */
uint64_t jl_mix64(uint64_t a, uint64_t b);

#endif
