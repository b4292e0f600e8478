/* PPO: the clipped surrogate + clipped value loss (value head on the policy's final hidden state) against finite
 * differences; on the toy task "as many 'x' as possible" (optimum reward 1) the mean reward rises, with the
 * per-token KL to the reference reported, ratio 1 at the first minibatch, several epochs per rollout batch. */
#include "rl_testutil.h"
#include "jielong/rlhf.h"
#include "jielong/safetensors.h"

static void test_ppo_objective_gradient(void **state) {
    (void)state;
    policy_grad_check(0.0f, 1);
}

/* At a sampling temperature T every log π is that of softmax(logits / T): log π(target) equals z_t/T − logsumexp(z/T)
 * computed here from the logits, T = 1 is the plain path bit for bit, and the objective's gradient (with the KL
 * term and the value head) matches finite differences. */
static void test_ppo_temperature_logprobs(void **state) {
    (void)state;
    policy_fixture f;
    policy_fixture_new(&f, 0.05f, 1);
    const int N = f.b.rows * f.b.T, V = f.m->cfg.vocab_size, PV = f.m->cfg.padded_vocab;
    float *plain = calloc((size_t)N, sizeof(float)), *at1 = calloc((size_t)N, sizeof(float));
    float *at = calloc((size_t)N, sizeof(float)), *z = calloc((size_t)N * PV, sizeof(float));
    rl_forward_logprobs(f.m, &f.a, &f.b, plain, NULL);
    memcpy(z, f.a.logits, (size_t)N * PV * sizeof(float));
    rl_forward_logprobs_at(f.m, &f.a, &f.b, 1.0f, at1, NULL);
    assert_memory_equal(plain, at1, (size_t)N * sizeof(float));
    const float T = 0.6f;
    rl_forward_logprobs_at(f.m, &f.a, &f.b, T, at, NULL);
    int checked = 0;
    for (int p = 0; p < N; p++) {
        if (f.b.targets[p] < 0) continue;
        double mx = -1e30, sum = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, z[(size_t)p * PV + v] / T);
        for (int v = 0; v < V; v++) sum += exp(z[(size_t)p * PV + v] / T - mx);
        double want = z[(size_t)p * PV + f.b.targets[p]] / T - mx - log(sum);
        assert_true(fabs(at[p] - want) < 1e-4);
        assert_true(fabs(at[p] - plain[p]) > 1e-6); /* the temperature changed it */
        checked++;
    }
    assert_true(checked > 8);
    free(plain);
    free(at1);
    free(at);
    free(z);
    policy_fixture_free(&f);
    policy_grad_check_at(0.05f, 1, 0.6f);
}

static void test_ppo_raises_reward(void **state) {
    (void)state;
    jl_tokenizer *tok = byte_tok();
    jl_model *m = toy_policy(tok);
    char base[256], prompts[256], out[256], log[256];
    snprintf(base, sizeof base, "%s", tmp_path("sft.safetensors"));
    snprintf(prompts, sizeof prompts, "%s", tmp_path("prompts.jsonl"));
    snprintf(out, sizeof out, "%s", tmp_path("ppo"));
    snprintf(log, sizeof log, "%s", tmp_path("ppo.log"));
    save_model(m, tok, base);
    write_prompts(prompts, 4);
    int steps = 30;
    char args[2048], metrics[512];
    snprintf(args, sizeof args, "ppo --policy %s --prompts %s --reward-fn x_count --out %s --steps %d --lr 3e-3 "
                                "--batch-size 16 --max-new 6 --epochs 4 --minibatches 2 --kl 0.02 --threads 2",
             base, prompts, out, steps);
    assert_int_equal(run_cli(args, log), 0);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", out);
    double reward[64], kl[64], ratio[64], clip[64], vloss[64], ent[64];
    assert_int_equal(read_metric(metrics, "reward", reward, 64), steps);
    assert_int_equal(read_metric(metrics, "kl", kl, 64), steps);
    assert_int_equal(read_metric(metrics, "ratio_first", ratio, 64), steps);
    assert_int_equal(read_metric(metrics, "clip_frac", clip, 64), steps);
    assert_int_equal(read_metric(metrics, "value_loss", vloss, 64), steps);
    assert_int_equal(read_metric(metrics, "entropy", ent, 64), steps);
    double first = reward[0], last = mean_of(reward, steps - 5, steps);
    print_message("mean reward (step 1) %.3f -> (last 5) %.3f; kl %.4f -> %.4f; entropy %.3f -> %.3f; value loss %.4f -> %.4f; "
                  "clip fraction (step 1) %.3f\n", first, last, kl[0], kl[steps - 1], ent[0], ent[steps - 1],
                  vloss[0], vloss[steps - 1], clip[0]);
    assert_true(first < 0.5); /* the SFT policy: about a third of its letters are x */
    assert_true(last > first + 0.3);
    assert_true(kl[0] == 0.0 && kl[steps - 1] > 0.0);
    for (int i = 0; i < steps; i++) assert_true(fabs(ratio[i] - 1.0) < 1e-4);
    /* the value head is saved beside the policy */
    char vpath[512];
    snprintf(vpath, sizeof vpath, "%s/value.safetensors", out);
    jl_st_file *f;
    assert_int_equal(jl_st_open(vpath, &f), JL_OK);
    assert_non_null(jl_st_find(f, "value_head.weight"));
    jl_st_close(f);
    /* exactly one reward source */
    snprintf(args, sizeof args, "ppo --policy %s --prompts %s --out %s", base, prompts, tmp_path("none"));
    assert_int_equal(run_cli(args, log), 2);
    jl_model_free(m);
    jl_tokenizer_free(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ppo_objective_gradient),
        cmocka_unit_test(test_ppo_temperature_logprobs),
        cmocka_unit_test(test_ppo_raises_reward),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
