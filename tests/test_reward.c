/* Reward model: the Bradley-Terry gradient against finite differences, learning a toy preference
 * (answers ending in 'a' beat 'b') to high held-out accuracy, the CLI round trip through `jielong eval --reward`,
 * and clear errors for bad pairs. */
#include "rl_testutil.h"
#include "io/fileio.h"
#include "jielong/rlhf.h"
#include "train/rl_losses.h"

typedef struct {
    jl_model *m;
    jl_acts *a;
    rl_batch *b;
    rl_head *h;
} rm_ctx;

static double rm_loss_only(void *p) {
    rm_ctx *c = p;
    rm_stats s;
    return rm_pairs_loss(c->m, c->a, c->b, c->h, NULL, &s);
}

static void test_bradley_terry_gradient(void **state) {
    (void)state;
    jl_tokenizer *tok = byte_tok();
    jl_model *m = tiny_model(1);
    const char *answers[] = {"abxa", "abxb", "xx", "axbxb", "bax", "bab"};
    rl_seq seqs[6];
    const rl_seq *rows[6];
    for (int i = 0; i < 6; i++) {
        assert_int_equal(rl_encode(tok, NULL, "p", answers[i], 32, "test", &seqs[i]), JL_OK);
        rows[i] = &seqs[i];
    }
    rl_batch b;
    assert_int_equal(rl_batch_new(6, 32, &b), JL_OK);
    rl_batch_fill(&b, rows, 6);
    jl_acts a;
    assert_int_equal(jl_acts_new(&m->cfg, 6, 32, &a), JL_OK);
    rl_head h;
    assert_int_equal(rl_head_new(m->cfg.dim, 5, &h), JL_OK);
    for (int c = 0; c < h.C; c++) h.w[c] *= 20.0f; /* scores of order 1, so the loss is not flat */
    float *grads = calloc(m->n_params, sizeof(float));
    jl_layer_params *lp = calloc((size_t)m->cfg.n_layer, sizeof *lp);
    jl_params gv;
    jl_params_at(m, grads, &gv, lp);
    rm_stats s;
    double loss = rm_pairs_loss(m, &a, &b, &h, &gv, &s);
    assert_true(isfinite(loss) && loss > 0);
    rm_ctx ctx = {m, &a, &b, &h};
    grad_check(m, grads, h.w, h.g, h.C, rm_loss_only, &ctx);
    free(grads);
    free(lp);
    rl_head_free(&h);
    jl_acts_free(&a);
    rl_batch_free(&b);
    for (int i = 0; i < 6; i++) rl_seq_free(&seqs[i]);
    jl_model_free(m);
    jl_tokenizer_free(tok);
}

static void test_reward_cli_learns_and_scores(void **state) {
    (void)state;
    jl_tokenizer *tok = byte_tok();
    jl_model *m = tiny_model(2);
    const char *base = tmp_path("base.safetensors"), *prefs = tmp_path("prefs.jsonl"), *out = tmp_path("rm");
    save_model(m, tok, base);
    write_toy_prefs(prefs, 240, 9);
    char args[2048], metrics[1024];
    snprintf(args, sizeof args, "reward --model %s --data %s --out %s --steps 60 --lr 3e-3 --batch-size 8 "
                                "--eval-fraction 0.2 --eval-every 20 --threads 2", base, prefs, out);
    assert_int_equal(run_cli(args, tmp_path("reward.log")), 0);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", out);
    double acc[8];
    int n = read_metric(metrics, "eval_accuracy", acc, 8);
    assert_int_equal(n, 4); /* before training, steps 20, 40, 60 */
    print_message("held-out accuracy: %.3f %.3f %.3f %.3f\n", acc[0], acc[1], acc[2], acc[3]);
    assert_true(acc[n - 1] >= 0.9);
    /* the command ends with the before → after summary of the held-out accuracy (48 pairs held out: a warning
     * that the figure moves in steps of 2%) */
    char *log;
    size_t len;
    assert_int_equal(jl_read_file(tmp_path("reward.log"), &log, &len), JL_OK);
    char want[128];
    snprintf(want, sizeof want, "eval_accuracy %.4g -> %.4g", acc[0], acc[n - 1]);
    if (!strstr(log, "reward: held out, first -> last evaluation:") || !strstr(log, want))
        fail_msg("no before -> after summary ('%s') in:\n%s", want, log);
    assert_non_null(strstr(log, "warning: only 48 pairs are held out"));
    free(log);
    /* eval --reward scores unseen answers: ending in 'a' above ending in 'b' */
    const char *log_a = tmp_path("score_a.log"), *log_b = tmp_path("score_b.log");
    snprintf(args, sizeof args, "eval --reward %s --prompt p --response xxba --json", out);
    assert_int_equal(run_cli(args, log_a), 0);
    snprintf(args, sizeof args, "eval --reward %s --prompt p --response xxbb --json", out);
    assert_int_equal(run_cli(args, log_b), 0);
    double ra, rb;
    assert_int_equal(read_metric(log_a, "reward", &ra, 1), 1);
    assert_int_equal(read_metric(log_b, "reward", &rb, 1), 1);
    print_message("reward(xxba) %.3f, reward(xxbb) %.3f\n", ra, rb);
    assert_true(ra > rb);
    /* the library handle agrees */
    jl_reward_model *rm;
    assert_int_equal(jl_reward_model_load(out, &rm), JL_OK);
    float s;
    assert_int_equal(jl_reward_model_score(rm, "p", "xxba", &s), JL_OK);
    assert_true(fabs(s - ra) < 1e-4);
    assert_int_equal(jl_reward_model_score(rm, "p", "", &s), JL_ERR_ARG);
    jl_reward_model_free(rm);
    jl_model_free(m);
    jl_tokenizer_free(tok);
}

static void test_reward_bad_input(void **state) {
    (void)state;
    jl_tokenizer *tok = byte_tok();
    jl_model *m = tiny_model(3);
    char base[256], log[256]; /* tmp_path's buffers are reused */
    snprintf(base, sizeof base, "%s", tmp_path("base_bad.safetensors"));
    snprintf(log, sizeof log, "%s", tmp_path("bad.log"));
    save_model(m, tok, base);
    char args[2048];
    /* identical chosen and rejected */
    const char *same = tmp_path("same.jsonl");
    write_text(same, "{\"prompt\":\"p\",\"chosen\":\"ab\",\"rejected\":\"xb\"}\n"
                     "{\"prompt\":\"p\",\"chosen\":\"ab\",\"rejected\":\"ab\"}\n");
    snprintf(args, sizeof args, "reward --model %s --data %s --out %s --steps 2", base, same, tmp_path("o1"));
    assert_int_equal(run_cli(args, log), 2);
    assert_true(file_contains(log, ":2"));
    /* empty response */
    const char *empty = tmp_path("empty.jsonl");
    write_text(empty, "{\"prompt\":\"p\",\"chosen\":\"\",\"rejected\":\"xb\"}\n");
    snprintf(args, sizeof args, "reward --model %s --data %s --out %s --steps 2", base, empty, tmp_path("o2"));
    assert_int_equal(run_cli(args, log), 2);
    /* prompt longer than the context (32 tokens) */
    const char *longp = tmp_path("long.jsonl");
    write_text(longp, "{\"prompt\":\"pppppppppppppppppppppppppppppppppppppppp\",\"chosen\":\"a\",\"rejected\":\"b\"}\n"
                      "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\"}\n");
    snprintf(args, sizeof args, "reward --model %s --data %s --out %s --steps 2", base, longp, tmp_path("o3"));
    assert_int_equal(run_cli(args, log), 2);
    assert_true(file_contains(log, "longer than the context"));
    /* eval --reward without a response; not a reward model folder */
    snprintf(args, sizeof args, "eval --reward %s --prompt p", tmp_path("o3"));
    assert_int_equal(run_cli(args, log), 2);
    snprintf(args, sizeof args, "eval --reward %s --prompt p --response a", tmp_path("nowhere"));
    assert_int_equal(run_cli(args, log), 2);
    jl_model_free(m);
    jl_tokenizer_free(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bradley_terry_gradient),
        cmocka_unit_test(test_reward_cli_learns_and_scores),
        cmocka_unit_test(test_reward_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
