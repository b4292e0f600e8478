/* The sampler's steps as pure functions over a candidate array (easy to test one by one).
 * jl_sampler_sample chains them: penalties → temperature → top-k → softmax → top-p → min-p → renormalise →
 * draw (temperature 0: argmax of the penalised logits). */
#ifndef JL_INFER_SAMPLER_H
#define JL_INFER_SAMPLER_H
#include "jielong/generate.h"
#include "core/rng.h"

typedef struct {
    int32_t id;
    float logit;
    float p;
} jl_cand;

/* Penalties on logits[V] from history[0..n): repetition (positive ÷ r, negative × r), presence (− once),
 * frequency (− count times). counts is V ints of zeros, left zero on return. */
void jl_penalize(float *logits, int V, const int32_t *history, int n, float repetition, float presence,
                 float frequency, int *counts);
/* Index of the largest value (the smallest index among ties). */
int jl_argmax(const float *x, int n);
/* Reorders c so that c[0..k) hold the k largest logits in descending order (ties: smaller id first);
 * the rest stay in c[k..n) unordered. */
void jl_cand_top(jl_cand *c, int n, int k);
/* p = softmax(logit) over c[0..n). */
void jl_cand_softmax(jl_cand *c, int n);
/* c[0..n) normalised; keeps the smallest most-likely prefix with probability ≥ top_p (sorting as needed);
 * returns its length (≥ 1). */
int jl_cand_top_p(jl_cand *c, int n, float top_p);
/* Keeps candidates with p ≥ min_p · max p (in place, order kept); returns how many (≥ 1). */
int jl_cand_min_p(jl_cand *c, int n, float min_p);
/* p /= Σ p over c[0..n). */
void jl_cand_normalize(jl_cand *c, int n);
/* The index i where the cumulative probability passes u·Σp (u in [0, 1)). */
int jl_cand_draw(const jl_cand *c, int n, float u);

#endif
