/* Magnitude pruning: exact counts in every mode, only the smallest magnitudes go, the rest is untouched,
 * norms/embeddings are left alone unless asked, and the CLI reports held-out loss and rejects bad input. */
#include "testutil.h"
#include "core/rng.h"
#include "io/fileio.h"
#include "jielong/checkpoint.h"
#include "jielong/prune.h"
#include "jielong/tokenizer.h"
#include "model/model.h"
#include <math.h>

static jl_model *tiny_model(jl_arch arch) {
    jl_config c;
    jl_config_from_depth(&c, arch, 2, 262, 32);
    c.dim = 64;
    c.n_head = c.n_kv_head = 2;
    c.hidden_dim = arch == JL_ARCH_GPT2 ? 256 : 192;
    c.tie_embeddings = arch == JL_ARCH_GPT2;
    assert_int_equal(jl_config_finish(&c), JL_OK);
    jl_model *m;
    assert_int_equal(jl_model_new(&c, &m), JL_OK);
    jl_model_init(m, 7);
    /* norms start at 1 and biases at 0: give them distinct values so "untouched" means something */
    jl_rng r;
    jl_rng_seed(&r, 3);
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].ndim == 1)
            for (int64_t j = 0; j < m->tensors[i].shape[0]; j++)
                m->params[m->tensors[i].offset + (size_t)j] = 1e-4f * jl_rng_normal(&r);
    return m;
}

static int is_linear(const jl_model *m, const jl_tensor_info *t) {
    const float *p = m->params + t->offset;
    return t->ndim == 2 && p != m->w.wte && p != m->w.wpe && p != m->w.lm_head;
}

static size_t zeros_in(const float *w, size_t n) {
    size_t z = 0;
    for (size_t i = 0; i < n; i++) z += w[i] == 0.0f;
    return z;
}

/* Pruned weights are exactly those the model now holds as 0; every kept weight is bitwise the original
 * and at least as large in magnitude as every pruned one of the same group. */
static void check_group(const float *orig, const float *now, size_t n, size_t want_zeros) {
    size_t z = 0;
    float max_pruned = 0, min_kept = INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (now[i] == 0.0f) {
            z++;
            max_pruned = fmaxf(max_pruned, fabsf(orig[i]));
        } else {
            assert_true(memcmp(&orig[i], &now[i], sizeof(float)) == 0);
            min_kept = fminf(min_kept, fabsf(orig[i]));
        }
    }
    assert_int_equal(z, want_zeros);
    assert_true(max_pruned <= min_kept);
}

static float *snapshot(const jl_model *m) {
    float *p = malloc(m->n_params * sizeof(float));
    memcpy(p, m->params, m->n_params * sizeof(float));
    return p;
}

static void test_per_tensor_exact(void **state) {
    (void)state;
    jl_model *m = tiny_model(JL_ARCH_LLAMA);
    float *orig = snapshot(m);
    jl_prune_opts o = {.sparsity = 0.3, .mode = JL_PRUNE_PER_TENSOR};
    jl_prune_report r;
    assert_int_equal(jl_prune(m, &o, &r), JL_OK);
    size_t expected = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const jl_tensor_info *t = &m->tensors[i];
        size_t n = (size_t)t->rows_saved * (size_t)(t->ndim == 2 ? t->shape[1] : 1);
        const float *a = orig + t->offset, *b = m->params + t->offset;
        if (is_linear(m, t)) {
            check_group(a, b, n, (size_t)llround(0.3 * (double)n));
            expected += (size_t)llround(0.3 * (double)n);
        }
        else
            assert_memory_equal(a, b, n * sizeof(float)); /* norms, embeddings, lm head untouched */
    }
    assert_int_equal(r.selected_zeros, expected);
    assert_true(fabs((double)r.zeros[JL_PK_ATTN_QKV] / (double)r.total[JL_PK_ATTN_QKV] - 0.3) < 1e-3);
    assert_int_equal(r.zeros[JL_PK_EMBEDDING], 0);
    assert_int_equal(r.zeros[JL_PK_LM_HEAD], 0);
    assert_false(r.selected[JL_PK_NORM_BIAS]);
    free(orig);
    jl_model_free(m);
}

static void test_per_row_exact(void **state) {
    (void)state;
    jl_model *m = tiny_model(JL_ARCH_GPT2);
    float *orig = snapshot(m);
    jl_prune_opts o = {.sparsity = 0.5, .mode = JL_PRUNE_PER_ROW};
    jl_prune_report r;
    assert_int_equal(jl_prune(m, &o, &r), JL_OK);
    for (int i = 0; i < m->n_tensors; i++) {
        const jl_tensor_info *t = &m->tensors[i];
        if (!is_linear(m, t)) continue;
        size_t cols = (size_t)t->shape[1];
        for (int64_t row = 0; row < t->rows_saved; row++)
            check_group(orig + t->offset + row * cols, m->params + t->offset + row * cols, cols, cols / 2);
    }
    assert_int_equal(r.selected_zeros * 2, r.selected_total);
    free(orig);
    jl_model_free(m);
}

static void test_global_exact_with_embeddings(void **state) {
    (void)state;
    jl_model *m = tiny_model(JL_ARCH_LLAMA);
    float *orig = snapshot(m);
    /* a tie at the threshold: many equal magnitudes must still give the exact count */
    float *q = m->params + m->tensors[2].offset;
    for (int j = 0; j < 500; j++) q[j] = (j % 2 ? 1e-3f : -1e-3f);
    memcpy(orig + m->tensors[2].offset, q, 500 * sizeof(float));
    jl_prune_opts o = {.sparsity = 0.75, .mode = JL_PRUNE_GLOBAL, .include_embeddings = 1};
    jl_prune_report r;
    assert_int_equal(jl_prune(m, &o, &r), JL_OK);
    size_t total = 0, zeros = 0;
    float max_pruned = 0, min_kept = INFINITY;
    for (int i = 0; i < m->n_tensors; i++) {
        const jl_tensor_info *t = &m->tensors[i];
        size_t n = (size_t)t->rows_saved * (size_t)(t->ndim == 2 ? t->shape[1] : 1);
        const float *a = orig + t->offset, *b = m->params + t->offset;
        if (t->ndim == 1) {
            assert_memory_equal(a, b, n * sizeof(float));
            continue;
        }
        total += n;
        zeros += zeros_in(b, n);
        for (size_t j = 0; j < n; j++)
            if (b[j] == 0.0f) max_pruned = fmaxf(max_pruned, fabsf(a[j]));
            else min_kept = fminf(min_kept, fabsf(a[j]));
    }
    assert_int_equal(zeros, (size_t)llround(0.75 * (double)total));
    assert_int_equal(r.selected_zeros, zeros);
    assert_true(max_pruned <= min_kept);
    assert_true(r.zeros[JL_PK_EMBEDDING] > 0);
    free(orig);
    jl_model_free(m);
}

static void test_bad_sparsity(void **state) {
    (void)state;
    jl_model *m = tiny_model(JL_ARCH_LLAMA);
    float *orig = snapshot(m);
    jl_prune_report r;
    double bad[] = {1.0, -0.01, 1.5, NAN};
    for (int i = 0; i < 4; i++) {
        jl_prune_opts o = {.sparsity = bad[i], .mode = JL_PRUNE_PER_ROW};
        assert_int_equal(jl_prune(m, &o, &r), JL_ERR_ARG);
        assert_non_null(strstr(jl_last_error(), "sparsity"));
    }
    jl_prune_mode mode;
    assert_int_equal(jl_prune_mode_parse("rows", &mode), JL_ERR_ARG);
    m->params[m->tensors[2].offset + 5] = NAN;
    jl_prune_opts o = {.sparsity = 0.5};
    assert_int_equal(jl_prune(m, &o, &r), JL_ERR_FORMAT);
    assert_non_null(strstr(jl_last_error(), "q_proj"));
    m->params[m->tensors[2].offset + 5] = orig[m->tensors[2].offset + 5];
    assert_memory_equal(orig, m->params, m->n_params * sizeof(float)); /* nothing changed on failure */
    free(orig);
    jl_model_free(m);
}

static void save_model(jl_model *m, const char *path) {
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_bytes(&tok), JL_OK);
    jl_checkpoint ck = {.model = m};
    assert_int_equal(jl_tokenizer_to_json(tok, &ck.tokenizer_json), JL_OK);
    assert_int_equal(jl_checkpoint_save(path, &ck), JL_OK);
    free(ck.tokenizer_json);
    jl_tokenizer_free(tok);
}

static void test_cli(void **state) {
    (void)state;
    jl_model *m = tiny_model(JL_ARCH_LLAMA);
    const char *in = tmp_path("p_in.safetensors"), *out = tmp_path("p_out.safetensors"), *log = tmp_path("p.log");
    const char *text = tmp_path("p_heldout.txt");
    save_model(m, in);
    FILE *f = fopen(text, "w");
    for (int i = 0; i < 40; i++) fprintf(f, "the cat sees the moon %d.\n", i);
    fclose(f);
    char args[4096];
    snprintf(args, sizeof args, "prune --model %s --out %s --sparsity 0.5 --mode per-row --data %s", in, out, text);
    assert_int_equal(run_cli(args, log), 0);
    char *msg;
    size_t len;
    assert_int_equal(jl_read_file(log, &msg, &len), JL_OK);
    double before, after;
    const char *h = strstr(msg, "held-out loss");
    assert_non_null(h);
    assert_int_equal(sscanf(h, "held-out loss %lf -> %lf", &before, &after), 2);
    assert_true(before > 0 && after > 0 && isfinite(after));
    assert_non_null(strstr(msg, "attn_qkv"));
    free(msg);
    jl_checkpoint ck;
    assert_int_equal(jl_checkpoint_load(out, &ck), JL_OK);
    assert_non_null(ck.tokenizer_json);
    for (int i = 0; i < ck.model->n_tensors; i++) {
        const jl_tensor_info *t = &ck.model->tensors[i];
        if (!is_linear(ck.model, t)) continue;
        size_t n = (size_t)t->rows_saved * (size_t)t->shape[1];
        assert_int_equal(zeros_in(ck.model->params + t->offset, n), n / 2);
    }
    jl_checkpoint_free(&ck);
    /* bad input: exit 2, a clear message, no output written */
    const char *none = tmp_path("p_none.safetensors");
    const char *bad[] = {"--sparsity 1", "--sparsity -0.5", "--sparsity 0.5 --mode rows", "--sparsity abc"};
    for (int i = 0; i < 4; i++) {
        snprintf(args, sizeof args, "prune --model %s --out %s %s", in, none, bad[i]);
        assert_int_equal(run_cli(args, log), 2);
    }
    snprintf(args, sizeof args, "prune --model %s --out %s --sparsity 0.5", tmp_path("missing.safetensors"), none);
    assert_int_equal(run_cli(args, log), 2);
    snprintf(args, sizeof args, "prune --model %s --out %s --sparsity 0.5", text, none); /* not a checkpoint */
    assert_int_equal(run_cli(args, log), 2);
    snprintf(args, sizeof args, "prune --model %s --out %s --sparsity 0.5 --data %s", in, none,
             tmp_path("missing.txt"));
    assert_int_equal(run_cli(args, log), 2);
    assert_int_equal(jl_read_file(log, &msg, &len), JL_OK);
    assert_non_null(strstr(msg, "missing.txt"));
    free(msg);
    FILE *probe = fopen(none, "r");
    assert_null(probe);
    jl_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_tensor_exact),
        cmocka_unit_test(test_per_row_exact),
        cmocka_unit_test(test_global_exact_with_embeddings),
        cmocka_unit_test(test_bad_sparsity),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
