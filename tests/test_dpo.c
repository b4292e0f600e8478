/* DPO: gradients of the sigmoid and IPO losses against finite differences, loss ln 2 at step 0 (policy ==
 * reference), and on the toy preference (answers ending in 'a' beat 'b') held-out accuracy rising to ≥ 0.9. */
#include "rl_testutil.h"
#include "jielong/rlhf.h"
#include "train/rl_losses.h"

typedef struct {
    jl_model *m;
    jl_acts *a;
    rl_batch *b;
    double *ref;
    float *buf;
    jl_dpo_loss kind;
} dpo_ctx;

static double dpo_loss_only(void *p) {
    dpo_ctx *c = p;
    dpo_stats s;
    return dpo_pairs_loss(c->m, c->a, c->b, c->ref, 0.5f, c->kind, c->buf, NULL, &s);
}

typedef struct {
    jl_tokenizer *tok;
    rl_seq seqs[6];
    rl_batch b;
    jl_acts a;
    float *buf;
} fixture;

static void fixture_new(fixture *f, const jl_config *c) {
    f->tok = byte_tok();
    const char *answers[] = {"abxa", "abxb", "xx", "axbxb", "bax", "bab"};
    const rl_seq *rows[6];
    for (int i = 0; i < 6; i++) {
        assert_int_equal(rl_encode(f->tok, NULL, "p", answers[i], 32, "test", &f->seqs[i]), JL_OK);
        rows[i] = &f->seqs[i];
    }
    assert_int_equal(rl_batch_new(6, 32, &f->b), JL_OK);
    rl_batch_fill(&f->b, rows, 6);
    assert_int_equal(jl_acts_new(c, 6, 32, &f->a), JL_OK);
    f->buf = calloc(6 * 32, sizeof(float));
}

static void fixture_free(fixture *f) {
    for (int i = 0; i < 6; i++) rl_seq_free(&f->seqs[i]);
    rl_batch_free(&f->b);
    jl_acts_free(&f->a);
    free(f->buf);
    jl_tokenizer_free(f->tok);
}

static void check_dpo_gradient(jl_dpo_loss kind) {
    jl_model *policy = tiny_model(1), *ref = tiny_model(2); /* different weights: the loss is not at its start */
    fixture f;
    fixture_new(&f, &policy->cfg);
    double ref_logp[6];
    dpo_seq_logps(ref, &f.a, &f.b, f.buf, ref_logp);
    float *grads = calloc(policy->n_params, sizeof(float));
    jl_layer_params *lp = calloc((size_t)policy->cfg.n_layer, sizeof *lp);
    jl_params gv;
    jl_params_at(policy, grads, &gv, lp);
    dpo_stats s;
    dpo_pairs_loss(policy, &f.a, &f.b, ref_logp, 0.5f, kind, f.buf, &gv, &s);
    dpo_ctx ctx = {policy, &f.a, &f.b, ref_logp, f.buf, kind};
    grad_check(policy, grads, NULL, NULL, 0, dpo_loss_only, &ctx);
    free(grads);
    free(lp);
    fixture_free(&f);
    jl_model_free(policy);
    jl_model_free(ref);
}

static void test_dpo_sigmoid_gradient(void **state) {
    (void)state;
    check_dpo_gradient(JL_DPO_SIGMOID);
}

static void test_dpo_ipo_gradient(void **state) {
    (void)state;
    check_dpo_gradient(JL_DPO_IPO);
}

static void test_dpo_step0_is_ln2(void **state) {
    (void)state;
    jl_model *policy = tiny_model(4), *ref;
    assert_int_equal(rl_model_clone(policy, &ref), JL_OK);
    fixture f;
    fixture_new(&f, &policy->cfg);
    double ref_logp[6];
    dpo_seq_logps(ref, &f.a, &f.b, f.buf, ref_logp);
    dpo_stats s;
    double loss = dpo_pairs_loss(policy, &f.a, &f.b, ref_logp, 0.1f, JL_DPO_SIGMOID, f.buf, NULL, &s);
    assert_true(loss == log(2.0));
    assert_true(s.margin == 0.0 && s.chosen == 0.0);
    loss = dpo_pairs_loss(policy, &f.a, &f.b, ref_logp, 0.5f, JL_DPO_IPO, f.buf, NULL, &s);
    assert_true(fabs(loss - 1.0) < 1e-12); /* (0 − 1/(2β))² with β = 0.5 */
    fixture_free(&f);
    jl_model_free(policy);
    jl_model_free(ref);
}

static void test_dpo_cli_raises_accuracy(void **state) {
    (void)state;
    jl_tokenizer *tok = byte_tok();
    jl_model *m = toy_policy(tok);
    const char *base = tmp_path("sft.safetensors"), *prefs = tmp_path("prefs.jsonl"), *out = tmp_path("dpo");
    save_model(m, tok, base);
    write_toy_prefs(prefs, 200, 21);
    char args[2048], metrics[1024];
    snprintf(args, sizeof args, "dpo --model %s --data %s --out %s --steps 40 --lr 3e-3 --beta 0.5 --batch-size 8 "
                                "--eval-fraction 0.2 --eval-every 20 --threads 2", base, prefs, out);
    assert_int_equal(run_cli(args, tmp_path("dpo.log")), 0);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", out);
    double loss[64], acc[8], margin[8];
    assert_int_equal(read_metric(metrics, "loss", loss, 64), 40);
    assert_true(fabs(loss[0] - log(2.0)) < 1e-6); /* the first step starts at policy == reference */
    int n = read_metric(metrics, "eval_accuracy", acc, 8);
    assert_int_equal(read_metric(metrics, "eval_margin", margin, 8), n);
    assert_int_equal(n, 3); /* before training, at step 20 and at the end */
    print_message("loss %.4f -> %.4f; held-out accuracy %.3f -> %.3f -> %.3f, margin %.3f\n", loss[0], loss[39],
                  acc[0], acc[1], acc[2], margin[2]);
    assert_true(acc[0] < 0.5); /* policy == reference: every margin is 0 */
    assert_true(acc[2] >= 0.9);
    assert_true(margin[2] > 0);
    assert_true(loss[39] < loss[0]);
    /* IPO runs too; an unknown loss is a usage error */
    snprintf(args, sizeof args, "dpo --model %s --data %s --out %s --steps 3 --loss ipo --threads 2", base, prefs,
             tmp_path("ipo"));
    assert_int_equal(run_cli(args, tmp_path("ipo.log")), 0);
    snprintf(args, sizeof args, "dpo --model %s --data %s --out %s --steps 3 --loss hinge", base, prefs, tmp_path("x"));
    assert_int_equal(run_cli(args, tmp_path("bad.log")), 2);
    assert_true(file_contains(tmp_path("bad.log"), "hinge"));
    jl_model_free(m);
    jl_tokenizer_free(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dpo_sigmoid_gradient),
        cmocka_unit_test(test_dpo_ipo_gradient),
        cmocka_unit_test(test_dpo_step0_is_ln2),
        cmocka_unit_test(test_dpo_cli_raises_accuracy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
