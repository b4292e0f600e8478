/* LoRA as the trainable part of reward / dpo / grpo / ppo: the base weights stay bit for bit, only the adapter
 * (and the stage's head) changes, the reference is the base without the adapter, the toy tasks still improve. */
#include "rl_testutil.h"
#include "jielong/adapter.h"
#include "jielong/rlhf.h"
#include <sys/stat.h>

static float *copy_params(const jl_model *m) {
    float *p = malloc(m->n_params * sizeof(float));
    assert_non_null(p);
    memcpy(p, m->params, m->n_params * sizeof(float));
    return p;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void lora_opts(jl_rl_opts *o, jl_rl_stage stage, const char *out) {
    jl_rl_defaults(o, stage);
    o->out_dir = out;
    o->use_lora = 1;
    o->lora = (jl_lora_opts){.rank = 4, .alpha = 8, .dropout = 0.0f, .targets = "all"};
    o->eval_every = 0;
}

/* The model is as it was (weights, no adapter left attached, nothing frozen); the saved adapter loads onto it
 * (its base fingerprint matches) and is no longer the identity: merging it changes the weights. */
static void check_base_kept_and_adapter_trained(jl_model *m, const float *before, const char *out) {
    assert_memory_equal(before, m->params, m->n_params * sizeof(float));
    assert_null(m->lora);
    for (int i = 0; i < m->n_tensors; i++) assert_int_equal(m->tensors[i].frozen, 0);
    char path[1024];
    snprintf(path, sizeof path, "%s/adapter.safetensors", out);
    jl_lora *lr;
    assert_int_equal(jl_lora_load(path, m, &lr, NULL), JL_OK);
    jl_model *merged;
    assert_int_equal(rl_model_clone(m, &merged), JL_OK);
    assert_int_equal(jl_lora_merge(merged, lr), JL_OK);
    assert_true(memcmp(merged->params, m->params, m->n_params * sizeof(float)) != 0);
    jl_model_free(merged);
    jl_lora_free(lr);
}

static jl_pref_set *load_prefs(const char *path) {
    jl_pref_set *pairs;
    jl_jsonl_options jo = {0, 0};
    jl_jsonl_stats js;
    assert_int_equal(jl_prefs_load(path, &jo, &pairs, &js), JL_OK);
    return pairs;
}

static void test_dpo_lora(void **state) {
    (void)state;
    jl_tokenizer *tok = byte_tok();
    jl_model *m = toy_policy(tok);
    float *before = copy_params(m);
    char prefs[512], out[512], metrics[1024], path[1024];
    snprintf(prefs, sizeof prefs, "%s", tmp_path("lora_prefs.jsonl"));
    snprintf(out, sizeof out, "%s", tmp_path("dpo_lora"));
    write_toy_prefs(prefs, 200, 21);
    jl_pref_set *pairs = load_prefs(prefs);
    jl_rl_opts o;
    lora_opts(&o, JL_STAGE_DPO, out);
    o.steps = 30;
    o.lr = 1e-2f;
    o.beta = 0.5f;
    o.eval_fraction = 0.2;
    assert_int_equal(jl_dpo_train(m, tok, pairs, &o, NULL, NULL), JL_OK);
    check_base_kept_and_adapter_trained(m, before, out);
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    assert_false(file_exists(path)); /* the adapter is the result */
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", out);
    double loss[64], acc[8];
    assert_int_equal(read_metric(metrics, "loss", loss, 64), 30);
    assert_true(fabs(loss[0] - log(2.0)) < 1e-6); /* a fresh adapter (B = 0): policy == reference */
    assert_int_equal(read_metric(metrics, "eval_accuracy", acc, 8), 2);
    print_message("dpo lora: loss %.4f -> %.4f; held-out accuracy %.3f -> %.3f\n", loss[0], loss[29], acc[0], acc[1]);
    assert_true(acc[1] >= 0.9 && acc[1] > acc[0]);
    assert_true(loss[29] < loss[0]);
    /* the CLI: --method lora writes an adapter that export --merge folds into the base */
    char base[512], args[4096];
    snprintf(base, sizeof base, "%s", tmp_path("lora_sft.safetensors"));
    save_model(m, tok, base);
    snprintf(args, sizeof args, "dpo --model %s --data %s --out %s --steps 2 --method lora --lora-rank 2 "
                                "--lora-targets q,v --threads 2", base, prefs, tmp_path("dpo_lora_cli"));
    assert_int_equal(run_cli(args, tmp_path("dpo_lora.log")), 0);
    snprintf(path, sizeof path, "%s/adapter.safetensors", tmp_path("dpo_lora_cli"));
    snprintf(args, sizeof args, "export --merge %s --model %s --out %s", path, base, tmp_path("dpo_merged.safetensors"));
    assert_int_equal(run_cli(args, tmp_path("merge.log")), 0);
    snprintf(args, sizeof args, "dpo --model %s --data %s --out %s --steps 2 --method adapter", base, prefs,
             tmp_path("x"));
    assert_int_equal(run_cli(args, tmp_path("bad.log")), 2);
    assert_true(file_contains(tmp_path("bad.log"), "--method"));
    snprintf(args, sizeof args, "dpo --model %s --data %s --out %s --steps 2 --lora-rank 4", base, prefs, tmp_path("x"));
    assert_int_equal(run_cli(args, tmp_path("bad.log")), 2);
    jl_prefs_free(pairs);
    free(before);
    jl_model_free(m);
    jl_tokenizer_free(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dpo_lora),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
