/* GRPO: the clipped objective with its k3 KL term against finite differences; on the toy task "answer with
 * as many 'x' as possible" (optimum: all x, reward 1) the mean reward rises from the SFT policy's ~1/3 with KL
 * reported and the ratio 1 at the first minibatch; bad input (unknown reward function, prompts longer than the
 * context, a reward model of another tokenizer) gets a clear error; a NaN reward skips the step, not the run. */
#include "rl_testutil.h"
#include "jielong/rlhf.h"
#include "io/fileio.h"

static void test_grpo_objective_gradient(void **state) {
    (void)state;
    policy_grad_check(0.3f, 0);
}

static void test_grpo_raises_reward(void **state) {
    (void)state;
    jl_tokenizer *tok = byte_tok();
    jl_model *m = toy_policy(tok);
    const char *base = tmp_path("sft.safetensors"), *prompts = tmp_path("prompts.jsonl"), *out = tmp_path("grpo");
    save_model(m, tok, base);
    write_prompts(prompts, 4);
    int steps = 30;
    char args[2048], metrics[1024];
    snprintf(args, sizeof args, "grpo --policy %s --prompts %s --reward-fn x_count --out %s --steps %d --lr 3e-3 "
                                "--batch-size 4 --group 8 --max-new 6 --kl 0.01 --threads 2", base, prompts, out, steps);
    assert_int_equal(run_cli(args, tmp_path("grpo.log")), 0);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", out);
    double reward[64], kl[64], ratio[64];
    assert_int_equal(read_metric(metrics, "reward", reward, 64), steps);
    assert_int_equal(read_metric(metrics, "kl", kl, 64), steps);
    assert_int_equal(read_metric(metrics, "ratio_first", ratio, 64), steps);
    double first = mean_of(reward, 0, 5), last = mean_of(reward, steps - 5, steps);
    print_message("mean reward %.3f -> %.3f; kl %.4f -> %.4f; first-minibatch ratio %.7f\n", first, last, kl[0],
                  kl[steps - 1], ratio[0]);
    assert_true(first < 0.5);
    assert_true(last > first + 0.25);
    assert_true(kl[0] == 0.0 && kl[steps - 1] > 0.0); /* starts at the reference, then moves away */
    for (int i = 0; i < steps; i++) assert_true(fabs(ratio[i] - 1.0) < 1e-4);
    jl_model_free(m);
    jl_tokenizer_free(tok);
}

/* A reward model folder whose trunk is m (with tok), and a score head. */
static void write_reward_model(const char *dir, jl_model *m, const jl_tokenizer *tok) {
    char path[1024];
    assert_int_equal(jl_mkdir_p(dir), JL_OK);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    save_model(m, tok, path);
    rl_head h;
    assert_int_equal(rl_head_new(m->cfg.dim, 1, &h), JL_OK);
    snprintf(path, sizeof path, "%s/score.safetensors", dir);
    assert_int_equal(rl_head_save(&h, path, "score.weight"), JL_OK);
    rl_head_free(&h);
}

static void test_grpo_bad_input(void **state) {
    (void)state;
    jl_tokenizer *tok = byte_tok();
    jl_model *m = tiny_model(5);
    char base[256], prompts[256], log[256]; /* tmp_path's buffers are reused */
    snprintf(base, sizeof base, "%s", tmp_path("base.safetensors"));
    snprintf(prompts, sizeof prompts, "%s", tmp_path("p.jsonl"));
    snprintf(log, sizeof log, "%s", tmp_path("bad.log"));
    save_model(m, tok, base);
    write_prompts(prompts, 2);
    char args[2048];
    snprintf(args, sizeof args, "grpo --policy %s --prompts %s --reward-fn smiles --out %s", base, prompts,
             tmp_path("o1"));
    assert_int_equal(run_cli(args, log), 2);
    assert_true(file_contains(log, "unknown reward function 'smiles'"));
    /* a prompt longer than the context (32) */
    const char *longp = tmp_path("long.jsonl");
    write_text(longp, "{\"prompt\":\"pppppppppppppppppppppppppppppppppppppppppp\"}\n");
    snprintf(args, sizeof args, "grpo --policy %s --prompts %s --reward-fn length --out %s --max-new 4", base, longp,
             tmp_path("o2"));
    assert_int_equal(run_cli(args, log), 2);
    assert_true(file_contains(log, "prompt 1") && file_contains(log, "longer than the context"));
    /* the poem rule needs a "form" field */
    const char *noform = tmp_path("noform.jsonl");
    write_text(noform, "{\"prompt\":\"p\"}\n");
    snprintf(args, sizeof args, "grpo --policy %s --prompts %s --reward-fn poem --out %s --max-new 4 --group 2 "
                                "--batch-size 1 --steps 1", base, noform, tmp_path("o3"));
    assert_int_equal(run_cli(args, log), 2);
    assert_true(file_contains(log, "form"));
    /* a reward model of another tokenizer */
    const char *texts[] = {"xxxx yyyy xxxx yyyy abab abab"};
    size_t lens[] = {strlen(texts[0])};
    jl_train_opts to = {.vocab_size = 266};
    jl_tokenizer *other;
    assert_int_equal(jl_tokenizer_train(texts, lens, 1, &to, &other), JL_OK);
    jl_config c = m->cfg;
    c.vocab_size = jl_tokenizer_vocab_size(other);
    jl_model *m2;
    assert_int_equal(jl_model_new(&c, &m2), JL_OK);
    jl_model_init(m2, 1);
    write_reward_model(tmp_path("rm_other"), m2, other);
    snprintf(args, sizeof args, "grpo --policy %s --prompts %s --reward-model %s --out %s --max-new 4", base, prompts,
             tmp_path("rm_other"), tmp_path("o4"));
    assert_int_equal(run_cli(args, log), 2);
    assert_true(file_contains(log, "another tokenizer"));
    /* a reward model with NaN weights (it would score NaN) is refused when it loads, naming the tensor */
    jl_model *nan_rm;
    assert_int_equal(rl_model_clone(m, &nan_rm), JL_OK);
    /* NaN in the final norm only: every score is NaN, and no exp() sees a NaN (vexp is not defined for one) */
    for (int i = 0; i < nan_rm->cfg.dim; i++) nan_rm->w.lnf_w[i] = NAN;
    write_reward_model(tmp_path("rm_nan"), nan_rm, tok);
    snprintf(args, sizeof args, "grpo --policy %s --prompts %s --reward-model %s --out %s --max-new 4 --group 2 "
                                "--batch-size 1 --steps 3", base, prompts, tmp_path("rm_nan"), tmp_path("o5"));
    assert_int_equal(run_cli(args, log), 2);
    assert_true(file_contains(log, "'model.norm.weight' holds a non-finite value"));
    jl_model_free(nan_rm);
    jl_model_free(m2);
    jl_tokenizer_free(other);
    jl_model_free(m);
    jl_tokenizer_free(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grpo_objective_gradient),
        cmocka_unit_test(test_grpo_raises_reward),
        cmocka_unit_test(test_grpo_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
