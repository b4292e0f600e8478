/* The per-row log-prob kernels: log-probs and entropies against a double-precision reference, and the backward
 * (coefficient per row) against central finite differences of L = Σ dlogp[n]·logp[n], also in place. */
#include "testutil.h"
#include "core/rng.h"
#include "core/seqloss.h"
#include <math.h>

enum { N = 6, V = 37, VP = 48 };

static void fill(float *logits, int32_t *targets, float *dlogp) {
    jl_rng r;
    jl_rng_seed(&r, 5);
    for (int i = 0; i < N * VP; i++) logits[i] = (i % VP) < V ? 2.0f * jl_rng_normal(&r) : 0.0f;
    for (int n = 0; n < N; n++) {
        targets[n] = n == 2 ? -1 : (int32_t)jl_rng_below(&r, V); /* row 2 is ignored */
        dlogp[n] = jl_rng_normal(&r);
    }
}

static void test_logprobs_and_entropy(void **state) {
    (void)state;
    float logits[N * VP], dlogp[N], logp[N], ent[N];
    int32_t targets[N];
    fill(logits, targets, dlogp);
    jl_token_logprobs(logp, ent, logits, targets, N, V, VP);
    for (int n = 0; n < N; n++) {
        if (targets[n] < 0) {
            assert_true(logp[n] == 0.0f && ent[n] == 0.0f);
            continue;
        }
        double z = 0, h = 0;
        for (int j = 0; j < V; j++) z += exp((double)logits[n * VP + j]);
        for (int j = 0; j < V; j++) {
            double p = exp((double)logits[n * VP + j]) / z;
            h -= p * log(p);
        }
        assert_true(fabs(logp[n] - ((double)logits[n * VP + targets[n]] - log(z))) < 1e-5);
        assert_true(fabs(ent[n] - h) < 1e-5);
    }
}

static double weighted_sum(const float *logits, const int32_t *targets, const float *dlogp) {
    float logp[N];
    jl_token_logprobs(logp, NULL, logits, targets, N, V, VP);
    double s = 0;
    for (int n = 0; n < N; n++) s += (double)dlogp[n] * logp[n];
    return s;
}

static void test_backward_finite_differences(void **state) {
    (void)state;
    float logits[N * VP], dlogp[N], grad[N * VP], inplace[N * VP];
    int32_t targets[N];
    fill(logits, targets, dlogp);
    jl_token_logprobs_backward(grad, logits, targets, dlogp, N, V, VP);
    memcpy(inplace, logits, sizeof logits);
    jl_token_logprobs_backward(inplace, inplace, targets, dlogp, N, V, VP);
    assert_memory_equal(grad, inplace, sizeof grad);
    for (int i = 0; i < N * VP; i++) {
        if (i % VP >= V) { /* padding columns get no gradient */
            assert_true(grad[i] == 0.0f);
            continue;
        }
        float saved = logits[i];
        const float eps = 1e-2f;
        logits[i] = saved + eps;
        double lp = weighted_sum(logits, targets, dlogp);
        logits[i] = saved - eps;
        double lm = weighted_sum(logits, targets, dlogp);
        logits[i] = saved;
        double fd = (lp - lm) / (2 * eps);
        assert_true(fabs(fd - grad[i]) <= 1e-3 + 1e-2 * fabs(fd));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logprobs_and_entropy),
        cmocka_unit_test(test_backward_finite_differences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
