/* Matrix products in fp32 and bf16 (oneDNN, fp32 accumulation): forward and both backward products match a
 * double-precision reference within the precision's rounding, accumulate (+=) as documented, training in bf16
 * is bitwise repeatable and ends near the fp32 loss; the peak probe and MFU (never above 1); --precision on
 * the CLI. Finite-difference gradient tests elsewhere stay in fp32 (the default). */
#include "testutil.h"
#include "core/kernels.h"
#include "core/perf.h"
#include "model/model.h"
#include "train/trainer.h"
#include <math.h>

static void fill(float *x, size_t n, jl_rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = jl_rng_normal(r);
}

/* Largest |got - want| relative to the largest |want|. */
static double rel_err(const float *got, const double *want, size_t n) {
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs(got[i] - want[i]));
        m = fmax(m, fabs(want[i]));
    }
    return e / m;
}

/* Forward, dinp and dw of an odd-sized product against double loops; gradients start at 1 (+= checked). */
static void check_products(jl_precision prec, double tol) {
    enum { N = 37, C = 53, OC = 29 };
    jl_rng r;
    jl_rng_seed(&r, 11);
    float inp[N * C], w[OC * C], bias[OC], dout[N * OC], out[N * OC], dinp[N * C], dw[OC * C];
    double ref_out[N * OC], ref_dinp[N * C], ref_dw[OC * C];
    fill(inp, N * C, &r);
    fill(w, OC * C, &r);
    fill(bias, OC, &r);
    fill(dout, N * OC, &r);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = bias[o];
            for (int c = 0; c < C; c++) s += (double)inp[n * C + c] * w[o * C + c];
            ref_out[n * OC + o] = s;
        }
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            double s = 1.0;
            for (int o = 0; o < OC; o++) s += (double)dout[n * OC + o] * w[o * C + c];
            ref_dinp[n * C + c] = s;
        }
    for (int o = 0; o < OC; o++)
        for (int c = 0; c < C; c++) {
            double s = 1.0;
            for (int n = 0; n < N; n++) s += (double)dout[n * OC + o] * inp[n * C + c];
            ref_dw[o * C + c] = s;
        }
    for (int i = 0; i < N * C; i++) dinp[i] = 1.0f;
    for (int i = 0; i < OC * C; i++) dw[i] = 1.0f;
    jl_precision was = jl_matmul_set_precision(prec);
    jl_matmul_forward(out, inp, w, bias, N, C, OC);
    jl_matmul_backward(dinp, dw, NULL, dout, inp, w, N, C, OC);
    jl_matmul_set_precision(was);
    double e1 = rel_err(out, ref_out, N * OC), e2 = rel_err(dinp, ref_dinp, N * C), e3 = rel_err(dw, ref_dw, OC * C);
    print_message("%s: relative error forward %.2e, dinp %.2e, dw %.2e\n", jl_precision_name(prec), e1, e2, e3);
    assert_true(e1 < tol && e2 < tol && e3 < tol);
}

static void test_fp32_products_match_reference(void **state) {
    (void)state;
    check_products(JL_PREC_FP32, 1e-5);
}

static void test_bf16_products_match_reference(void **state) {
    (void)state;
    /* bf16 keeps 8 significant bits: each product term is off by up to ~2^-8 relative; sums of 29..53 random
     * terms stay within a few 1e-3 of the largest output */
    check_products(JL_PREC_BF16, 1e-2);
}

/* Products reading a bf16 copy of the weight (the trainer's, jl_matmul_set_bf16_weights) equal, bit for bit,
 * products that convert the weight themselves; the copy is what they read (a zero copy gives zero), and a weight
 * outside the registered block is converted as before. */
static void test_bf16_weight_copy_same_products(void **state) {
    (void)state;
    enum { N = 19, C = 40, OC = 24 };
    jl_rng r;
    jl_rng_seed(&r, 12);
    float inp[N * C], w[OC * C], dout[N * OC], out[2][N * OC], dinp[2][N * C], dw[2][OC * C];
    uint16_t w16[OC * C], zero[OC * C];
    fill(inp, N * C, &r);
    fill(w, OC * C, &r);
    fill(dout, N * OC, &r);
    jl_to_bf16(w, w16, OC * C);
    memset(zero, 0, sizeof zero);
    jl_precision was = jl_matmul_set_precision(JL_PREC_BF16);
    for (int k = 0; k < 2; k++) {
        jl_matmul_set_bf16_weights(w, k ? OC * C : 0, k ? w16 : NULL);
        memset(dinp[k], 0, sizeof dinp[k]);
        memset(dw[k], 0, sizeof dw[k]);
        jl_matmul_forward(out[k], inp, w, NULL, N, C, OC);
        jl_matmul_backward(dinp[k], dw[k], NULL, dout, inp, w, N, C, OC);
    }
    assert_memory_equal(out[0], out[1], sizeof out[0]);
    assert_memory_equal(dinp[0], dinp[1], sizeof dinp[0]);
    assert_memory_equal(dw[0], dw[1], sizeof dw[0]);
    jl_matmul_set_bf16_weights(w, OC * C, zero);
    jl_matmul_forward(out[1], inp, w, NULL, N, C, OC);
    for (int i = 0; i < N * OC; i++) assert_true(out[1][i] == 0.0f);
    jl_matmul_set_bf16_weights(w + OC * C / 2, OC * C / 2, zero); /* holds only half of w: not used */
    jl_matmul_forward(out[1], inp, w, NULL, N, C, OC);
    assert_memory_equal(out[0], out[1], sizeof out[0]);
    jl_matmul_set_bf16_weights(NULL, 0, NULL);
    jl_matmul_set_precision(was);
}

typedef struct {
    jl_rng rng;
    int vocab;
} pattern_tokens;

/* Tokens of a learnable sequence: t(i+1) = (3·t(i) + 1) mod vocab, starting at a random token per row. */
static jl_status pattern_batch(void *ctx, int32_t *tok, int32_t *tgt, int B, int T) {
    pattern_tokens *p = ctx;
    for (int b = 0; b < B; b++) {
        int32_t t = (int32_t)jl_rng_below(&p->rng, (uint64_t)p->vocab);
        for (int i = 0; i < T; i++) {
            tok[b * T + i] = t;
            t = (3 * t + 1) % p->vocab;
            tgt[b * T + i] = t;
        }
    }
    return JL_OK;
}

/* Trains a tiny llama for `steps` in `prec`; returns the model (caller frees) and the last step's loss. */
static jl_model *train_tiny(jl_precision prec, int steps, double *last_loss) {
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, 2, 64, 32);
    jl_model *m;
    assert_int_equal(jl_model_new(&c, &m), JL_OK);
    jl_model_init(m, 7);
    jl_trainer_opts o = {.B = 4, .T = 32, .accum = 1};
    jl_optim_defaults(&o.opt, 3e-3f, steps);
    jl_trainer *t;
    assert_int_equal(jl_trainer_new(m, &o, &t), JL_OK);
    pattern_tokens pt = {.vocab = 64};
    jl_rng_seed(&pt.rng, 3);
    jl_precision was = jl_matmul_set_precision(prec);
    jl_step_stats st = {0};
    for (int i = 0; i < steps; i++) assert_int_equal(jl_trainer_step(t, pattern_batch, &pt, &st), JL_OK);
    jl_matmul_set_precision(was);
    *last_loss = st.loss;
    jl_trainer_free(t);
    return m;
}

static void test_bf16_training_repeatable_and_near_fp32(void **state) {
    (void)state;
    const int steps = JL_SANITIZED ? 15 : 40;
    double l1, l2, l32;
    jl_model *a = train_tiny(JL_PREC_BF16, steps, &l1), *b = train_tiny(JL_PREC_BF16, steps, &l2);
    jl_model *f = train_tiny(JL_PREC_FP32, steps, &l32);
    print_message("after %d steps: loss bf16 %.5f (twice: %.5f), fp32 %.5f; log(vocab) %.3f\n", steps, l1, l2, l32,
                  log(64.0));
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float)); /* bit for bit */
    assert_true(l1 == l2);
    assert_true(l1 < 0.8 * log(64.0)); /* it learns */
    assert_true(fabs(l1 - l32) < 0.05 * l32);
    assert_true(memcmp(a->params, f->params, a->n_params * sizeof(float)) != 0); /* the precision did change */
    jl_model_free(a);
    jl_model_free(b);
    jl_model_free(f);
}

static void test_peak_probe_and_mfu(void **state) {
    (void)state;
    jl_peak p = jl_peak_probe();
    print_message("peak probe: fp32 %.1f, bf16 %.1f GFLOP/s, %d threads\n", p.fp32, p.bf16, p.threads);
    assert_true(p.fp32 > 0);
    assert_true(jl_cpu_has_bf16() ? p.bf16 > 0 : p.bf16 == 0);
    assert_true(jl_peak_for(&p, JL_PREC_FP32) == p.fp32 && jl_peak_for(&p, JL_PREC_BF16) == p.bf16);
    assert_true(fabs(jl_mfu(0.5 * p.fp32 * 1e9, p.fp32) - 0.5) < 1e-12);
    assert_true(jl_mfu(3.0 * p.fp32 * 1e9, p.fp32) == 1.0); /* never above 1 */
    assert_true(jl_mfu(1e9, 0) == 0.0);
    jl_precision q;
    assert_int_equal(jl_precision_parse("bf16", &q), 0);
    assert_int_equal(q, JL_PREC_BF16);
    assert_int_not_equal(jl_precision_parse("fp16", &q), 0);
    assert_int_equal(jl_precision_default(), jl_cpu_has_bf16() ? JL_PREC_BF16 : JL_PREC_FP32);
}

static int log_has(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static void test_cli_precision(void **state) {
    (void)state;
    const char *text = tmp_path("corpus.txt"), *log = tmp_path("prec.log");
    write_corpus(text, 300);
    char args[2048];
    snprintf(args, sizeof args, "pretrain --data %s --out %s --depth 1 --dim 32 --n-head 2 --context 16 "
                                "--batch-size 2 --steps 2 --precision fp16", text, tmp_path("bad"));
    assert_int_equal(run_cli(args, log), 2);
    assert_true(log_has(log, "--precision fp16: expected fp32 or bf16"));
    const char *precs[2] = {"fp32", "bf16"};
    for (int i = 0; i < 2; i++) {
        const char *out = tmp_path(precs[i]);
        snprintf(args, sizeof args, "pretrain --data %s --out %s --depth 1 --dim 32 --n-head 2 --context 16 "
                                    "--batch-size 2 --steps 3 --precision %s", text, out, precs[i]);
        assert_int_equal(run_cli(args, log), 0);
        char want[64], metrics[1024];
        snprintf(want, sizeof want, "pretrain: precision %s", precs[i]);
        assert_true(log_has(log, want));
        snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", out);
        double mfu[8], peak[8];
        int n = read_metric(metrics, "mfu", mfu, 8);
        assert_int_equal(n, 3);
        assert_int_equal(read_metric(metrics, "peak_gflops", peak, 8), 3);
        for (int s = 0; s < n; s++) assert_true(mfu[s] >= 0 && mfu[s] <= 1 && peak[s] > 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fp32_products_match_reference),
        cmocka_unit_test(test_bf16_products_match_reference),
        cmocka_unit_test(test_bf16_weight_copy_same_products),
        cmocka_unit_test(test_bf16_training_repeatable_and_near_fp32),
        cmocka_unit_test(test_peak_probe_and_mfu),
        cmocka_unit_test(test_cli_precision),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
