/* End to end through the CLI: pretraining learns, resume is bit-exact, checkpoints round-trip,
 * and bad input gets a clear error with exit code 2 and no damaged file. */
#include "testutil.h"
#include "core/rng.h"
#include "io/fileio.h"
#include "jielong/checkpoint.h"
#include "model/model.h"
#include <json.h>
#include <math.h>
#include <sys/stat.h>

/* Unigram entropy (nats per byte) of a file: the loss of a model that learned nothing but frequencies. */
static double unigram_entropy(const char *path) {
    char *data;
    size_t len;
    assert_int_equal(jl_read_file(path, &data, &len), JL_OK);
    double counts[256] = {0}, h = 0;
    for (size_t i = 0; i < len; i++) counts[(unsigned char)data[i]]++;
    for (int i = 0; i < 256; i++)
        if (counts[i] > 0) h -= counts[i] / (double)len * log(counts[i] / (double)len);
    free(data);
    return h;
}

#define TINY "--depth 2 --dim 64 --n-head 2 --context 64 --batch-size 8 --seq-len 64 --threads 2"

static void test_pretraining_learns(void **state) {
    (void)state;
    const char *text = tmp_path("corpus.txt"), *out = tmp_path("run_learn");
    write_corpus(text, 3000);
    char args[2048];
    int steps = JL_SANITIZED ? 120 : 200;
    snprintf(args, sizeof args, "pretrain --data %s --out %s " TINY " --steps %d --lr 3e-3 --eval-every 40 "
                                "--eval-batches 4 --sample-every 100 --sample-prompt 'the cat'",
             text, out, steps);
    assert_int_equal(run_cli(args, tmp_path("learn.log")), 0);
    double val[32], loss[400];
    char metrics[1024];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", out);
    int nv = read_metric(metrics, "val_loss", val, 32), nl = read_metric(metrics, "loss", loss, 400);
    assert_int_equal(nl, steps);
    assert_true(nv >= 3);
    double h = unigram_entropy(text);
    print_message("unigram entropy %.3f nats; held-out loss %.3f -> %.3f; train loss %.3f -> %.3f\n", h, val[0],
                  val[nv - 1], loss[0], loss[nl - 1]);
    assert_true(val[nv - 1] < 0.6 * h);   /* well below the unigram entropy */
    assert_true(val[nv - 1] < val[0]);
    /* the final model is saved with its tokenizer and loads back */
    char model_path[1024];
    snprintf(model_path, sizeof model_path, "%s/model.safetensors", out);
    jl_checkpoint ck;
    assert_int_equal(jl_checkpoint_load(model_path, &ck), JL_OK);
    assert_non_null(ck.tokenizer_json);
    assert_null(ck.adam_m);
    assert_int_equal(ck.model->cfg.n_layer, 2);
    jl_checkpoint_free(&ck);
    /* jielong eval scores text the way training saw it: its loss matches the held-out loss */
    const char *eval_log = tmp_path("eval.json");
    snprintf(args, sizeof args, "eval --model %s --data %s --json", model_path, text);
    assert_int_equal(run_cli(args, eval_log), 0);
    char *out_text;
    size_t out_len;
    assert_int_equal(jl_read_file(eval_log, &out_text, &out_len), JL_OK);
    json_object *o = json_tokener_parse(out_text), *v;
    assert_non_null(o);
    assert_true(json_object_object_get_ex(o, "ppl", &v));
    double eval_loss = log(json_object_get_double(v));
    print_message("jielong eval: loss %.3f nats/token\n", eval_loss);
    assert_true(fabs(eval_loss - val[nv - 1]) < 0.15);
    json_object_put(o);
    free(out_text);
}

static void test_resume_is_bit_exact(void **state) {
    (void)state;
    const char *text = tmp_path("corpus_resume.txt");
    write_corpus(text, 800);
    const char *straight = tmp_path("run_straight"), *pieces = tmp_path("run_pieces");
    char args[2048];
    /* held-out evaluations every 3 steps over 3 batches in fp32 (not the defaults): the resumed process, given only
     * --resume, takes all three from the checkpoint, so its first held-out loss (step 6) is bit for bit the
     * straight run's; before, it evaluated 8 batches in bf16 */
    const char *common = TINY " --steps 12 --eval-every 3 --eval-batches 3 --precision fp32 --lr 2e-3 --warmup 3 --accum 2";
    snprintf(args, sizeof args, "pretrain --data %s --out %s %s", text, straight, common);
    assert_int_equal(run_cli(args, tmp_path("straight.log")), 0);
    snprintf(args, sizeof args, "pretrain --data %s --out %s %s --stop-after 5", text, pieces, common);
    assert_int_equal(run_cli(args, tmp_path("piece1.log")), 0);
    snprintf(args, sizeof args, "pretrain --data %s --out %s --resume %s/checkpoint.safetensors --threads 2", text,
             pieces, pieces);
    assert_int_equal(run_cli(args, tmp_path("piece2.log")), 0);
    double a[16], b[16];
    char pa[1024], pb[1024];
    snprintf(pa, sizeof pa, "%s/metrics.jsonl", straight);
    snprintf(pb, sizeof pb, "%s/metrics.jsonl", pieces);
    assert_int_equal(read_metric(pa, "loss", a, 16), 12);
    assert_int_equal(read_metric(pb, "loss", b, 16), 12);
    for (int i = 0; i < 12; i++) assert_true(memcmp(&a[i], &b[i], sizeof(double)) == 0);
    int na = read_metric(pa, "val_loss", a, 16), nb = read_metric(pb, "val_loss", b, 16);
    assert_true(na >= 4); /* steps 3, 6, 9, 12 */
    assert_int_equal(na, nb);
    for (int i = 0; i < na; i++) assert_true(memcmp(&a[i], &b[i], sizeof(double)) == 0);
    /* and the final weights are identical */
    assert_same_final_weights(straight, pieces);
    /* another precision than the checkpoint's is refused, naming both */
    snprintf(args, sizeof args, "pretrain --data %s --out %s --resume %s/checkpoint.safetensors --threads 2 "
             "--precision bf16 --steps 14", text, pieces, pieces);
    assert_int_equal(run_cli(args, tmp_path("piece3.log")), 2);
    char *log;
    size_t len;
    assert_int_equal(jl_read_file(tmp_path("piece3.log"), &log, &len), JL_OK);
    assert_non_null(strstr(log, "precision fp32, not bf16"));
    free(log);
}

static void test_checkpoint_round_trip_gpt2(void **state) {
    (void)state;
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_GPT2, 2, 300, 32);
    jl_model *m;
    assert_int_equal(jl_model_new(&c, &m), JL_OK);
    jl_model_init(m, 3);
    jl_checkpoint ck = {.model = m, .tokenizer_json = "{}", .chat_template = "tmpl"};
    const char *path = tmp_path("gpt2.safetensors");
    assert_int_equal(jl_checkpoint_save(path, &ck), JL_OK);
    jl_checkpoint back;
    assert_int_equal(jl_checkpoint_load(path, &back), JL_OK);
    assert_true(jl_config_equal(&m->cfg, &back.model->cfg));
    assert_memory_equal(m->params, back.model->params, m->n_params * sizeof(float));
    assert_string_equal(back.chat_template, "tmpl");
    jl_checkpoint_free(&back);
    jl_model_free(m);
}

/* The model-shape flags (one flag table, a given mask): each one given reaches the config, the others come from
 * --depth; a checkpoint whose config differs from the flags given is refused, one that matches is continued. */
static void test_shape_flags(void **state) {
    (void)state;
    const char *text = tmp_path("shape.txt"), *out = tmp_path("run_shape"), *out2 = tmp_path("run_shape2");
    write_corpus(text, 200);
    char args[2048], model[600];
    const char *run = "--steps 1 --batch-size 2 --seq-len 16 --eval-every 0 --save-every 0 --threads 1";
    snprintf(args, sizeof args, "pretrain --data %s --out %s --depth 2 --dim 48 --n-head 4 --n-kv-head 2 "
             "--hidden-dim 80 --context 40 --untied %s", text, out, run);
    assert_int_equal(run_cli(args, tmp_path("shape.log")), 0);
    snprintf(model, sizeof model, "%s/model.safetensors", out);
    jl_checkpoint ck;
    assert_int_equal(jl_checkpoint_load(model, &ck), JL_OK);
    const jl_config *c = &ck.model->cfg;
    assert_int_equal(c->n_layer, 2); /* from --depth */
    assert_int_equal(c->dim, 48);
    assert_int_equal(c->n_head, 4);
    assert_int_equal(c->n_kv_head, 2);
    assert_int_equal(c->hidden_dim, 80);
    assert_int_equal(c->max_seq_len, 40);
    assert_int_equal(c->tie_embeddings, 0);
    jl_checkpoint_free(&ck);
    /* --dim alone: layers and heads from depth 3, the MLP width from the new width, kv heads = heads */
    snprintf(args, sizeof args, "pretrain --data %s --out %s --depth 3 --dim 96 %s", text, out2, run);
    assert_int_equal(run_cli(args, tmp_path("shape2.log")), 0);
    snprintf(model, sizeof model, "%s/model.safetensors", out2);
    assert_int_equal(jl_checkpoint_load(model, &ck), JL_OK);
    jl_config want;
    jl_config_from_depth(&want, JL_ARCH_LLAMA, 3, ck.model->cfg.vocab_size, 256);
    assert_int_equal(ck.model->cfg.n_layer, want.n_layer);
    assert_int_equal(ck.model->cfg.n_head, want.n_head);
    assert_int_equal(ck.model->cfg.n_kv_head, want.n_head);
    assert_int_equal(ck.model->cfg.dim, 96);
    assert_int_equal(ck.model->cfg.hidden_dim, jl_config_default_hidden(JL_ARCH_LLAMA, 96));
    jl_checkpoint_free(&ck);
    snprintf(args, sizeof args, "pretrain --data %s --out %s --model %s --dim 64 %s", text, out, model, run);
    assert_int_equal(run_cli(args, tmp_path("shape3.log")), 2); /* another width than the checkpoint's */
    snprintf(args, sizeof args, "pretrain --data %s --out %s --model %s --depth 3 --dim 96 %s", text, out, model, run);
    assert_int_equal(run_cli(args, tmp_path("shape4.log")), 0); /* the checkpoint's own shape */
}

static void copy_prefix(const char *from, const char *to, double fraction) {
    char *data;
    size_t len;
    assert_int_equal(jl_read_file(from, &data, &len), JL_OK);
    assert_int_equal(jl_write_file_atomic(to, data, (size_t)(len * fraction)), JL_OK);
    free(data);
}

static void test_bad_input_exits_2(void **state) {
    (void)state;
    const char *text = tmp_path("corpus_bad.txt"), *out = tmp_path("run_bad"), *log = tmp_path("bad.log");
    write_corpus(text, 300);
    char args[2048];
    snprintf(args, sizeof args, "pretrain --data /nonexistent.txt --out %s " TINY " --steps 2", out);
    assert_int_equal(run_cli(args, log), 2);
    snprintf(args, sizeof args, "pretrain --data %s --out %s " TINY " --steps 2 --seq-len 128", text, out);
    assert_int_equal(run_cli(args, log), 2); /* longer than the context */
    snprintf(args, sizeof args, "pretrain --data %s --out %s --arch mamba --steps 2", text, out);
    assert_int_equal(run_cli(args, log), 2);
    snprintf(args, sizeof args, "pretrain --data %s --out %s --steps -3", text, out);
    assert_int_equal(run_cli(args, log), 2);
    snprintf(args, sizeof args, "pretrain --data %s --out %s --lr nan", text, out);
    assert_int_equal(run_cli(args, log), 2);
    /* a good training checkpoint to corrupt */
    snprintf(args, sizeof args, "pretrain --data %s --out %s " TINY " --steps 2 --eval-every 0", text, out);
    assert_int_equal(run_cli(args, log), 0);
    char ckpt[1024], trunc[1024];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", out);
    snprintf(trunc, sizeof trunc, "%s/truncated.safetensors", out);
    copy_prefix(ckpt, trunc, 0.7);
    struct stat before, after;
    assert_int_equal(stat(trunc, &before), 0);
    snprintf(args, sizeof args, "pretrain --data %s --out %s --resume %s --steps 4", text, out, trunc);
    assert_int_equal(run_cli(args, log), 2);
    assert_int_equal(stat(trunc, &after), 0);
    assert_int_equal(before.st_size, after.st_size); /* nothing damaged */
    /* a checkpoint of another config */
    snprintf(args, sizeof args, "pretrain --data %s --out %s --resume %s --depth 3 --steps 4", text, out, ckpt);
    assert_int_equal(run_cli(args, log), 2);
    char *msg;
    size_t len;
    assert_int_equal(jl_read_file(log, &msg, &len), JL_OK);
    assert_non_null(strstr(msg, "config"));
    free(msg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pretraining_learns),
        cmocka_unit_test(test_resume_is_bit_exact),
        cmocka_unit_test(test_checkpoint_round_trip_gpt2),
        cmocka_unit_test(test_shape_flags),
        cmocka_unit_test(test_bad_input_exits_2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
