/* Index-wise permutations (see order.h): a 4-round balanced Feistel network over the smallest even power of two
 * ≥ n, with cycle walking back into [0, n). Each round's function is a splitmix64 finaliser of (half, key, round). */
#include "data/order.h"

static uint64_t fmix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t jl_mix64(uint64_t a, uint64_t b) { return fmix(a + 0x9e3779b97f4a7c15ULL * (b + 1)); }

/* One pass of the network over 2·half bits. */
static uint64_t feistel(uint64_t x, unsigned half, uint64_t key) {
    const uint64_t mask = (1ULL << half) - 1;
    uint64_t l = x >> half, r = x & mask;
    for (uint64_t round = 0; round < 4; round++) {
        uint64_t f = fmix(r ^ jl_mix64(key, round)) & mask;
        uint64_t nl = r;
        r = l ^ f;
        l = nl;
    }
    return (l << half) | r;
}

uint64_t jl_permute_index(uint64_t i, uint64_t n, uint64_t key) {
    if (n <= 1) return 0;
    unsigned half = 1;
    while (half < 32 && (1ULL << (2 * half)) < n) half++;
    uint64_t x = i;
    do x = feistel(x, half, key); /* the domain is < 4n, so a walk takes fewer than 4 passes on average */
    while (x >= n);
    return x;
}
