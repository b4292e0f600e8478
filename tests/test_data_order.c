/* The order a training stage reads its data in (src/data/order.c, src/train/stream.h) and the held-out split
 * (jl_tokens_split): a short run and a held-out set must cover every part of a mixed corpus, deterministically,
 * and a resumed stream must read exactly what an uninterrupted one reads. */
#include "testutil.h"
#include "data/order.h"
#include "train/stream.h"

static void test_permutation_is_a_bijection(void **state) {
    (void)state;
    const uint64_t sizes[] = {1, 2, 3, 7, 64, 100, 1000, 4097};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        uint64_t n = sizes[k];
        char *seen = calloc(n, 1);
        for (uint64_t i = 0; i < n; i++) {
            uint64_t p = jl_permute_index(i, n, 42 + k);
            assert_true(p < n);
            assert_false(seen[p]);
            seen[p] = 1;
        }
        free(seen);
    }
    /* another key, another order; the same key, the same order */
    int moved = 0;
    for (uint64_t i = 0; i < 100; i++) {
        moved += jl_permute_index(i, 100, 1) != jl_permute_index(i, 100, 2);
        assert_int_equal(jl_permute_index(i, 100, 1), jl_permute_index(i, 100, 1));
    }
    assert_true(moved > 50);
}

/* A corpus of two "files": ids 1 for the first half, ids 2 for the second. */
static jl_tokens two_halves(size_t n) {
    jl_tokens t = {.ids = malloc(n * sizeof(int32_t)), .n = n};
    for (size_t i = 0; i < n; i++) t.ids[i] = i < n / 2 ? 1 : 2;
    return t;
}

static void test_shuffled_stream_covers_the_corpus(void **state) {
    (void)state;
    const int T = 16, B = 4;
    jl_tokens data = two_halves(16 * 1000 + 1);
    int32_t tok[4 * 16], tgt[4 * 16];
    /* a quarter of an epoch: sequential reading never leaves the first half, shuffled reading sees both */
    jl_token_stream seq = {.data = &data}, shuf = {.data = &data, .shuffle = 1, .seed = 7};
    size_t from_second[2] = {0, 0};
    for (int step = 0; step < 1000 / 4 / B; step++) {
        jl_token_stream *streams[2] = {&seq, &shuf};
        for (int s = 0; s < 2; s++) {
            assert_int_equal(jl_stream_batch(streams[s], tok, tgt, B, T), JL_OK);
            for (int i = 0; i < B * T; i++) from_second[s] += tok[i] == 2;
        }
    }
    assert_int_equal(from_second[0], 0);
    double share = (double)from_second[1] / (1000.0 / 4 * T);
    assert_true(share > 0.35 && share < 0.65);
    /* one epoch of the shuffled stream reads every window once: token counts of each half match the corpus */
    jl_token_stream ep = {.data = &data, .shuffle = 1, .seed = 9};
    size_t ones = 0, twos = 0;
    long windows = (long)((data.n - 1 - jl_stream_offset(&ep, T)) / T);
    for (long w = 0; w < windows; w++) {
        assert_int_equal(jl_stream_batch(&ep, tok, tgt, 1, T), JL_OK);
        for (int i = 0; i < T; i++) {
            ones += tok[i] == 1;
            twos += tok[i] == 2;
        }
    }
    assert_int_equal(ep.epoch, 0);
    assert_true(ones + twos == (size_t)windows * T);
    assert_true(ones >= data.n / 2 - 2 * T && twos >= data.n / 2 - 2 * T);
    jl_tokens_free(&data);
}

static void test_stream_resumes_exactly(void **state) {
    (void)state;
    const int T = 8, B = 3;
    jl_tokens data = {.ids = malloc(1001 * sizeof(int32_t)), .n = 1001};
    for (size_t i = 0; i < data.n; i++) data.ids[i] = (int32_t)i;
    jl_token_stream a = {.data = &data, .shuffle = 1, .seed = 3};
    int32_t ta[24], ga[24], tb[24], gb[24];
    for (int i = 0; i < 37; i++) jl_stream_batch(&a, ta, ga, B, T); /* past an epoch boundary (125 windows) */
    /* a checkpoint holds pos and epoch; a new stream restored from them continues identically */
    jl_token_stream b = {.data = &data, .shuffle = 1, .seed = 3, .pos = a.pos, .epoch = a.epoch};
    for (int i = 0; i < 60; i++) {
        jl_stream_batch(&a, ta, ga, B, T);
        jl_stream_batch(&b, tb, gb, B, T);
        assert_memory_equal(ta, tb, sizeof ta);
        assert_memory_equal(ga, gb, sizeof ga);
        for (int k = 0; k < B * T; k++) assert_int_equal(ga[k], ta[k] + 1);
    }
    assert_true(a.epoch >= 1);
    jl_tokens_free(&data);
}

static void test_heldout_split_and_spread_cover_every_part(void **state) {
    (void)state;
    const int T = 16;
    jl_tokens train = two_halves(20000), val;
    assert_int_equal(jl_tokens_split(&train, 0.05, T, &val), JL_OK);
    size_t v2 = 0, t2 = 0;
    for (size_t i = 0; i < val.n; i++) v2 += val.ids[i] == 2;
    for (size_t i = 0; i < train.n; i++) t2 += train.ids[i] == 2;
    assert_int_equal(train.n + val.n, 20000);
    assert_true(val.n >= 900 && val.n <= 1000);
    assert_true(v2 > val.n / 3 && v2 < 2 * val.n / 3); /* both halves held out, not only the last file */
    assert_true(t2 > train.n / 3);
    /* two evaluation batches of a spread stream read from both halves of val */
    jl_token_stream vs = jl_stream_spread(&val, 2, T, 2);
    int32_t tok[2 * 16], tgt[2 * 16];
    size_t seen2 = 0;
    for (int b = 0; b < 2; b++) {
        assert_int_equal(jl_stream_batch(&vs, tok, tgt, 2, T), JL_OK);
        for (int i = 0; i < 2 * T; i++) seen2 += tok[i] == 2;
    }
    assert_true(seen2 > 0 && seen2 < 4 * (size_t)T);
    jl_tokens_free(&train);
    jl_tokens_free(&val);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_permutation_is_a_bijection),
        cmocka_unit_test(test_shuffled_stream_covers_the_corpus),
        cmocka_unit_test(test_stream_resumes_exactly),
        cmocka_unit_test(test_heldout_split_and_spread_cover_every_part),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
