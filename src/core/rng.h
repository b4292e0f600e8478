/* Deterministic random numbers. The whole state is one uint64 so checkpoints can save it and
 * a resumed run draws exactly the numbers an uninterrupted run would. (splitmix64) */
#ifndef JL_CORE_RNG_H
#define JL_CORE_RNG_H
#include <stdint.h>

typedef struct { uint64_t state; } jl_rng;

static inline void jl_rng_seed(jl_rng *r, uint64_t seed) { r->state = seed * 0x9E3779B97F4A7C15ull + 1; }

static inline uint64_t jl_rng_u64(jl_rng *r) {
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* Uniform in [0, 1) with 24 random bits. */
static inline float jl_rng_uniform(jl_rng *r) { return (float)(jl_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }
/* Uniform integer in [0, n). */
static inline uint64_t jl_rng_below(jl_rng *r, uint64_t n) { return n ? jl_rng_u64(r) % n : 0; }
/* Standard normal (Box-Muller, one value per call so the state stays a single word). */
float jl_rng_normal(jl_rng *r);

#endif
