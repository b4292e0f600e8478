/* Model and tokenizer fixtures shared by the format tests (test_convert.c, test_gguf_foreign.c): a tiny config,
 * a model with every saved parameter random (so a swapped, skipped or mis-permuted tensor shows), and a small
 * trained byte-level BPE tokenizer as tokenizer.json text. */
#ifndef JL_TESTS_FIXTURES_H
#define JL_TESTS_FIXTURES_H
#include "testutil.h"
#include "core/rng.h"
#include "jielong/tokenizer.h"
#include "model/model.h"
#include <string.h>

/* Depth 2, vocabulary 300, context 32, width 64, 4 heads (n_kv of them for keys/values), MLP width 96. */
static inline jl_config fixture_tiny_config(jl_arch arch, int n_kv, int tied, int qkv_bias) {
    jl_config c;
    jl_config_from_depth(&c, arch, 2, 300, 32);
    c.dim = 64;
    c.n_head = 4;
    c.n_kv_head = n_kv;
    c.hidden_dim = 96;
    c.tie_embeddings = tied;
    c.qkv_bias = qkv_bias;
    assert_int_equal(jl_config_finish(&c), JL_OK);
    return c;
}

/* Every saved parameter (biases and norms too) N(0, 0.1²) from seed; the padding rows of the vocabulary stay 0. */
static inline jl_model *fixture_random_model(const jl_config *c, uint64_t seed) {
    jl_model *m;
    assert_int_equal(jl_model_new(c, &m), JL_OK);
    jl_rng rng;
    jl_rng_seed(&rng, seed);
    for (int i = 0; i < m->n_tensors; i++) {
        const jl_tensor_info *t = &m->tensors[i];
        size_t cols = t->ndim == 2 ? (size_t)t->shape[1] : 1;
        for (size_t j = 0; j < (size_t)t->rows_saved * cols; j++) m->params[t->offset + j] = 0.1f * jl_rng_normal(&rng);
    }
    return m;
}

/* A 280-token tokenizer trained on a line of English and Chinese; the caller frees the text. */
static inline char *fixture_tokenizer_json(void) {
    static const char *text = "the cat sat on the mat; the dog sat on the log. 床前明月光，疑是地上霜。";
    jl_train_opts o = {.vocab_size = 280};
    const char *texts[] = {text};
    size_t lens[] = {strlen(text)};
    jl_tokenizer *t;
    assert_int_equal(jl_tokenizer_train(texts, lens, 1, &o, &t), JL_OK);
    char *json;
    assert_int_equal(jl_tokenizer_to_json(t, &json), JL_OK);
    jl_tokenizer_free(t);
    return json;
}

#endif
