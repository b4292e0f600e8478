/* The distillation loss kernel (src/core/kl.h): value against a direct double-precision formula, gradient
 * against finite differences for several temperatures and mixes, ignore index, padding, in-place use, and
 * α = 0 reducing to the fused cross-entropy. */
#include "testutil.h"
#include "core/kernels.h"
#include "core/kl.h"
#include "core/rng.h"
#include <math.h>

enum { N = 5, V = 29, Vp = 32 };
static const int32_t targets[N] = {3, -1, 0, 28, 11}; /* one ignored row, both vocabulary ends */

typedef struct {
    float *s, *t;
    float tau, alpha;
} kl_case;

static void fill(jl_rng *r, float *x, float scale) {
    for (int n = 0; n < N; n++)
        for (int j = 0; j < Vp; j++) /* padding that would dominate a softmax if it took part */
            x[n * Vp + j] = j < V ? scale * jl_rng_normal(r) : 60.0f;
}

/* L for one row straight from the definition, in double. */
static double naive_row(const float *s, const float *t, int y, double tau, double alpha) {
    double ms = -INFINITY, mt = -INFINITY;
    for (int j = 0; j < V; j++) ms = fmax(ms, s[j]), mt = fmax(mt, t[j]);
    double zs = 0, zt = 0, z1 = 0;
    for (int j = 0; j < V; j++) {
        zs += exp((s[j] - ms) / tau);
        zt += exp((t[j] - mt) / tau);
        z1 += exp(s[j] - ms);
    }
    double kl = 0;
    for (int j = 0; j < V; j++) {
        double pt = exp((t[j] - mt) / tau) / zt, ps = exp((s[j] - ms) / tau) / zs;
        kl += pt * log(pt / ps);
    }
    double ce = log(z1) + ms - s[y];
    return alpha * tau * tau * kl + (1 - alpha) * ce;
}

static double case_loss(const kl_case *c) {
    return jl_distill_loss_forward_backward(NULL, NULL, c->s, c->t, targets, N, V, Vp, c->tau, c->alpha, 1.0f, NULL);
}

static void check_case(float tau, float alpha, uint64_t seed) {
    jl_rng r;
    jl_rng_seed(&r, seed);
    float s[N * Vp], t[N * Vp], d[N * Vp], losses[N];
    fill(&r, s, 1.5f);
    fill(&r, t, 2.5f);
    for (int i = 0; i < N * Vp; i++) d[i] = 123.0f; /* every element must be written */
    kl_case c = {s, t, tau, alpha};
    double kl;
    double total = jl_distill_loss_forward_backward(losses, d, s, t, targets, N, V, Vp, tau, alpha, 1.0f, &kl);
    double want = 0;
    for (int n = 0; n < N; n++) {
        double w = targets[n] < 0 ? 0 : naive_row(s + n * Vp, t + n * Vp, targets[n], tau, alpha);
        assert_true(fabs(losses[n] - w) <= 1e-5 * fabs(w) + 1e-6);
        want += w;
    }
    assert_true(fabs(total - want) <= 1e-6 * fabs(want) + 1e-6);
    assert_true(kl >= 0);
    for (int n = 0; n < N; n++) {
        double sum = 0;
        for (int j = 0; j < Vp; j++) {
            if (j >= V || targets[n] < 0) assert_true(d[n * Vp + j] == 0.0f);
            sum += d[n * Vp + j];
        }
        assert_true(fabs(sum) < 1e-5); /* both terms are differences of distributions */
    }
    /* finite differences on every real student logit */
    int bad = 0;
    for (int i = 0; i < N * Vp; i++) {
        if (i % Vp >= V) continue;
        const float eps = 1e-2f, saved = s[i];
        s[i] = saved + eps;
        double up = case_loss(&c);
        s[i] = saved - eps;
        double down = case_loss(&c);
        s[i] = saved;
        double numeric = (up - down) / (2.0 * eps);
        if (fabs(numeric - d[i]) > 1e-3 + 1e-2 * fabs(numeric)) {
            if (bad++ < 5)
                print_message("tau %g alpha %g: d[%d] analytic %.6g numeric %.6g\n", tau, alpha, i, d[i], numeric);
        }
    }
    assert_int_equal(bad, 0);
    /* in place: the gradient overwrites the student logits, same loss and values */
    float inplace[N * Vp];
    memcpy(inplace, s, sizeof inplace);
    double total2 = jl_distill_loss_forward_backward(NULL, inplace, inplace, t, targets, N, V, Vp, tau, alpha, 1.0f,
                                                     NULL);
    assert_true(total2 == total);
    assert_memory_equal(inplace, d, sizeof inplace);
}

static void test_gradient_matches_finite_differences(void **state) {
    (void)state;
    check_case(1.0f, 0.5f, 1);
    check_case(2.0f, 0.7f, 2);
    check_case(4.0f, 1.0f, 3); /* pure soft targets: the τ factor of the gradient is exercised alone */
    check_case(0.5f, 0.25f, 4);
}

static void test_alpha_zero_is_cross_entropy(void **state) {
    (void)state;
    jl_rng r;
    jl_rng_seed(&r, 9);
    float s[N * Vp], d1[N * Vp], d2[N * Vp], l1[N], l2[N];
    fill(&r, s, 2.0f);
    double a = jl_distill_loss_forward_backward(l1, d1, s, NULL, targets, N, V, Vp, 3.0f, 0.0f, 0.5f, NULL);
    double b = jl_crossentropy_forward_backward(l2, d2, s, targets, N, V, Vp, 0.5f);
    assert_true(fabs(a - b) < 1e-5 * b);
    for (int i = 0; i < N * Vp; i++) assert_true(fabs(d1[i] - d2[i]) < 1e-6);
    for (int n = 0; n < N; n++) assert_true(fabs(l1[n] - l2[n]) < 1e-5 * (l2[n] + 1));
}

static void test_same_distribution_has_no_soft_loss(void **state) {
    (void)state;
    jl_rng r;
    jl_rng_seed(&r, 5);
    float s[N * Vp], t[N * Vp], d[N * Vp];
    fill(&r, s, 2.0f);
    for (int i = 0; i < N * Vp; i++) t[i] = s[i] + 3.0f; /* a shift does not change a softmax */
    double kl;
    double total = jl_distill_loss_forward_backward(NULL, d, s, t, targets, N, V, Vp, 2.0f, 1.0f, 1.0f, &kl);
    assert_true(fabs(total) < 1e-6 && fabs(kl) < 1e-6);
    for (int i = 0; i < N * Vp; i++) assert_true(fabs(d[i]) < 1e-6);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradient_matches_finite_differences),
        cmocka_unit_test(test_alpha_zero_is_cross_entropy),
        cmocka_unit_test(test_same_distribution_has_no_soft_loss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
