/* Best-fit packing of sequences into rows (data/pack.h): a worked example, every item once in rows that hold
 * it with little padding on a large random set, and refused lengths. */
#include "testutil.h"
#include "core/rng.h"
#include "data/pack.h"

static void assert_row(const jl_packer *p, size_t r, const size_t *want, size_t n) {
    assert_int_equal(p->row_start[r + 1] - p->row_start[r], n);
    for (size_t i = 0; i < n; i++) assert_int_equal(p->items[p->row_start[r] + i], want[i]);
}

/* Rows of 10; lengths 6 5 4 3 2 5 in this order: 6 opens row 0 (room 4); 5 does not fit there, opens row 1
 * (room 5); 4 goes to the fuller row 0 (room 0), 3 and 2 fill row 1, the last 5 opens row 2. */
static void test_best_fit_worked_example(void **state) {
    (void)state;
    const int len[] = {6, 5, 4, 3, 2, 5};
    const size_t order[] = {0, 1, 2, 3, 4, 5};
    jl_packer p;
    assert_int_equal(jl_packer_init(&p, 6, 10), JL_OK);
    assert_int_equal(jl_pack_best_fit(&p, order, 6, len), JL_OK);
    assert_int_equal(p.rows, 3);
    const size_t r0[] = {0, 2}, r1[] = {1, 3, 4}, r2[] = {5};
    assert_row(&p, 0, r0, 2);
    assert_row(&p, 1, r1, 3);
    assert_row(&p, 2, r2, 1);
    /* another order of the same items: packed again from scratch */
    const size_t rev[] = {5, 4, 3, 2, 1, 0};
    assert_int_equal(jl_pack_best_fit(&p, rev, 6, len), JL_OK);
    size_t total = 0;
    for (size_t r = 0; r < p.rows; r++) total += p.row_start[r + 1] - p.row_start[r];
    assert_int_equal(total, 6);
    jl_packer_free(&p);
}

static void test_random_set_packs_tightly(void **state) {
    (void)state;
    enum { N = 5000, CAP = 160 };
    int *len = malloc(sizeof *len * N);
    size_t *order = malloc(sizeof *order * N);
    int *seen = calloc(N, sizeof *seen);
    assert_non_null(len), assert_non_null(order), assert_non_null(seen);
    jl_rng r;
    jl_rng_seed(&r, 3);
    long sum = 0;
    for (int i = 0; i < N; i++) {
        len[i] = 20 + (int)jl_rng_below(&r, 120); /* 20..139: most rows can hold one or two, rarely three */
        order[i] = (size_t)(N - 1 - i);
        sum += len[i];
    }
    jl_packer p;
    assert_int_equal(jl_packer_init(&p, N, CAP), JL_OK);
    assert_int_equal(jl_pack_best_fit(&p, order, N, len), JL_OK);
    for (size_t row = 0; row < p.rows; row++) {
        int used = 0;
        for (size_t k = p.row_start[row]; k < p.row_start[row + 1]; k++) {
            used += len[p.items[k]];
            seen[p.items[k]]++;
            if (k > p.row_start[row]) assert_true(p.items[k] < p.items[k - 1]); /* placement (= order) order */
        }
        assert_true(used <= CAP);
    }
    for (int i = 0; i < N; i++) assert_int_equal(seen[i], 1);
    double padding = 1.0 - (double)sum / ((double)p.rows * CAP);
    print_message("%d sequences of 20..139 tokens in %zu rows of %d: padding %.2f%%\n", N, p.rows, CAP, 100 * padding);
    assert_true(padding < 0.05);
    jl_packer_free(&p);
    free(len), free(order), free(seen);
}

static void test_refused(void **state) {
    (void)state;
    const int len[] = {3, 11, 0};
    const size_t order[] = {0, 1, 2};
    jl_packer p;
    assert_int_equal(jl_packer_init(&p, 2, 10), JL_OK);
    assert_int_equal(jl_pack_best_fit(&p, order, 3, len), JL_ERR_ARG); /* more than n_max */
    assert_int_equal(jl_pack_best_fit(&p, order, 2, len), JL_ERR_ARG);
    assert_non_null(strstr(jl_last_error(), "sequence 1 has 11 tokens"));
    const size_t zero[] = {2};
    assert_int_equal(jl_pack_best_fit(&p, zero, 1, len), JL_ERR_ARG);
    jl_packer_free(&p);
    assert_int_equal(jl_packer_init(&p, 2, 0), JL_ERR_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_best_fit_worked_example),
        cmocka_unit_test(test_random_set_packs_tightly),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
