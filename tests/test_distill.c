/* End to end through the CLI: a teacher pretrained here on a structured corpus is distilled into a smaller
 * student, which beats the same student trained on hard labels alone (same steps, data, seed); the teacher
 * writes SFT data from prompts; a run stopped and resumed equals a straight one bit for bit; bad input gets exit
 * code 2 and a clear message. */
#include "testutil.h"
#include "core/rng.h"
#include "io/fileio.h"
#include "jielong/checkpoint.h"
#include "jielong/dataset.h"
#include "jielong/tokenizer.h"
#include "model/model.h"
#include <json.h>
#include <math.h>

/* The last value of key in a metrics file (NAN if none). */
static double last_metric(const char *dir, const char *key) {
    char path[1024], line[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    double v = NAN;
    while (f && fgets(line, sizeof line, f)) {
        json_object *o = json_tokener_parse(line), *x;
        if (o && json_object_object_get_ex(o, key, &x)) v = json_object_get_double(x);
        json_object_put(o);
    }
    if (f) fclose(f);
    return v;
}

static const char *teacher_path(void) { return tmp_path("teacher/model.safetensors"); }

static int setup_teacher(void **state) {
    (void)state;
    write_corpus(tmp_path("corpus.txt"), 3000);
    char args[2048];
    snprintf(args, sizeof args, "pretrain --data %s --out %s --depth 2 --dim 64 --n-head 2 --context 64 "
                                "--batch-size 8 --steps 150 --lr 3e-3 --eval-every 150 --eval-batches 4 --threads 2",
             tmp_path("corpus.txt"), tmp_path("teacher"));
    return run_cli(args, tmp_path("teacher.log"));
}

/* Sequential data: at 150 steps of a 1-layer student the comparison is within seed noise under the shuffled
 * order (measured: seeds 5..8 gave soft−hard of +0.04, −0.05, +0.21, +0.01), so the two students read the same
 * windows in the same order and differ only in their targets. */
#define STUDENT "--depth 1 --dim 64 --n-head 1 --batch-size 4 --steps 150 --lr 3e-3 --eval-every 150 " \
                "--eval-batches 8 --temperature 1 --seed 5 --threads 2 --data-order sequential"

static void test_distillation_beats_hard_labels(void **state) {
    (void)state;
    char args[2048];
    const char *hard = tmp_path("hard"), *soft = tmp_path("soft");
    snprintf(args, sizeof args, "distill --teacher %s --data %s --out %s --alpha 0 " STUDENT, teacher_path(),
             tmp_path("corpus.txt"), hard);
    assert_int_equal(run_cli(args, tmp_path("hard.log")), 0);
    snprintf(args, sizeof args, "distill --teacher %s --data %s --out %s --alpha 1 " STUDENT, teacher_path(),
             tmp_path("corpus.txt"), soft);
    assert_int_equal(run_cli(args, tmp_path("soft.log")), 0);
    double teacher = last_metric(soft, "teacher_val_loss"), v_hard = last_metric(hard, "val_loss"),
           v_soft = last_metric(soft, "val_loss"), kl = last_metric(soft, "kl");
    print_message("held-out loss: teacher %.4f, student on hard labels %.4f, distilled student %.4f (kl %.4f)\n",
                  teacher, v_hard, v_soft, kl);
    assert_true(isfinite(v_hard) && isfinite(v_soft) && kl >= 0);
    assert_true(v_soft < v_hard);
    assert_true(teacher < v_soft); /* the smaller student stays behind its teacher */
    /* the distilled student is a complete checkpoint with the teacher's tokenizer */
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", soft);
    jl_checkpoint ck;
    assert_int_equal(jl_checkpoint_load(path, &ck), JL_OK);
    assert_int_equal(ck.model->cfg.n_layer, 1);
    assert_non_null(ck.tokenizer_json);
    jl_checkpoint_free(&ck);
}

/* 10 steps straight against 4 steps, then --resume for the other 6: the same losses (soft and hard terms, AdamW
 * moments, schedule and data position all restored) and the same final weights, bit for bit. */
static void test_resume_is_bit_exact(void **state) {
    (void)state;
    char args[4096], ckpt[1024], straight[512], pieces[512], corpus[512], bad_log[512]; /* tmp_path rotates */
    snprintf(straight, sizeof straight, "%s", tmp_path("d_straight"));
    snprintf(pieces, sizeof pieces, "%s", tmp_path("d_pieces"));
    snprintf(corpus, sizeof corpus, "%s", tmp_path("corpus.txt"));
    snprintf(bad_log, sizeof bad_log, "%s", tmp_path("d_bad.log"));
    const char *common = "--depth 1 --dim 64 --n-head 1 --context 32 --batch-size 2 --accum 2 --steps 10 --lr 3e-3 "
                         "--warmup 3 --alpha 0.7 --temperature 2 --eval-every 3 --eval-batches 2 --save-every 3 --seed 5 --threads 2";
    snprintf(args, sizeof args, "distill --teacher %s --data %s --out %s %s", teacher_path(), corpus, straight, common);
    assert_int_equal(run_cli(args, tmp_path("d_straight.log")), 0);
    snprintf(args, sizeof args, "distill --teacher %s --data %s --out %s %s --stop-after 4", teacher_path(), corpus,
             pieces, common);
    assert_int_equal(run_cli(args, tmp_path("d_piece1.log")), 0);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", pieces);
    /* the soft targets are part of the trajectory: another temperature is refused */
    snprintf(args, sizeof args, "distill --teacher %s --data %s --out %s --resume %s --temperature 1", teacher_path(),
             corpus, pieces, ckpt);
    assert_int_equal(run_cli(args, bad_log), 2);
    char *msg;
    size_t len;
    assert_int_equal(jl_read_file(bad_log, &msg, &len), JL_OK);
    assert_non_null(strstr(msg, "temperature 2"));
    free(msg);
    snprintf(args, sizeof args, "distill --teacher %s --data %s --out %s --resume %s --threads 2", teacher_path(),
             corpus, pieces, ckpt);
    assert_int_equal(run_cli(args, tmp_path("d_piece2.log")), 0);
    double a[16], b[16], ka[16], kb[16];
    char ma[600], mb[600];
    snprintf(ma, sizeof ma, "%s/metrics.jsonl", straight);
    snprintf(mb, sizeof mb, "%s/metrics.jsonl", pieces);
    assert_int_equal(read_metric(ma, "loss", a, 16), 10);
    assert_int_equal(read_metric(mb, "loss", b, 16), 10);
    assert_int_equal(read_metric(ma, "kl", ka, 16), 10);
    assert_int_equal(read_metric(mb, "kl", kb, 16), 10);
    for (int i = 0; i < 10; i++) {
        assert_true(memcmp(&a[i], &b[i], sizeof(double)) == 0);
        assert_true(memcmp(&ka[i], &kb[i], sizeof(double)) == 0);
    }
    /* held-out losses (steps 3, 6, 9) bit for bit, the first after the resume included; --eval-batches 2 comes
     * back from the checkpoint */
    int na = read_metric(ma, "val_loss", a, 16), nb = read_metric(mb, "val_loss", b, 16);
    assert_true(na >= 3);
    assert_int_equal(na, nb);
    for (int i = 0; i < na; i++) assert_true(memcmp(&a[i], &b[i], sizeof(double)) == 0);
    assert_same_final_weights(straight, pieces);
    /* a pretraining checkpoint is no distillation state */
    snprintf(args, sizeof args, "distill --teacher %s --data %s --out %s --resume %s", teacher_path(), corpus,
             tmp_path("d_other"), tmp_path("teacher/checkpoint.safetensors"));
    assert_int_equal(run_cli(args, bad_log), 2);
    assert_int_equal(jl_read_file(bad_log, &msg, &len), JL_OK);
    assert_non_null(strstr(msg, "a pretrain checkpoint cannot resume distill"));
    free(msg);
}

static void test_synthesize(void **state) {
    (void)state;
    const char *prompts = tmp_path("prompts.jsonl"), *out = tmp_path("synth.jsonl");
    FILE *f = fopen(prompts, "w");
    fprintf(f, "{\"prompt\":\"the cat\",\"form\":\"wujue\"}\n{\"prompt\":\"a dog sees\"}\n{\"prompt\":\"my friend\"}\n");
    fclose(f);
    char args[2048];
    snprintf(args, sizeof args, "distill --teacher %s --synthesize 2 --prompts %s --out-data %s --max-new-tokens 12",
             teacher_path(), prompts, out);
    assert_int_equal(run_cli(args, tmp_path("synth.log")), 0);
    jl_sft_set *set;
    jl_jsonl_options opt = {0};
    jl_jsonl_stats st;
    assert_int_equal(jl_sft_load(out, &opt, &set, &st), JL_OK); /* valid SFT data */
    assert_true(jl_sft_count(set) >= 1 && jl_sft_count(set) <= 2);
    jl_conversation c = jl_sft_get(set, 0);
    assert_int_equal(c.n_turns, 2);
    assert_string_equal(c.turns[0].content, "the cat");
    assert_int_equal(c.turns[1].role, JL_ROLE_ASSISTANT);
    jl_sft_free(set);
    /* SFT conversations as prompts: the last assistant turn is answered anew */
    f = fopen(prompts, "w");
    fprintf(f, "{\"messages\":[{\"role\":\"user\",\"content\":\"a child\"},{\"role\":\"assistant\",\"content\":\"old\"}]}\n");
    fclose(f);
    assert_int_equal(run_cli(args, tmp_path("synth.log")), 0);
}

/* Count the answers of an SFT file holding `want` (all of them must), or -1 when one does not. */
static int answers_holding(const char *path, const char *want) {
    char *text;
    size_t len;
    assert_int_equal(jl_read_file(path, &text, &len), JL_OK);
    free(text);
    if (len == 0) return 0; /* nothing kept */
    jl_sft_set *set;
    jl_jsonl_options opt = {0};
    jl_jsonl_stats st;
    assert_int_equal(jl_sft_load(path, &opt, &set, &st), JL_OK);
    int n = (int)jl_sft_count(set);
    for (size_t i = 0; i < jl_sft_count(set); i++) {
        jl_conversation c = jl_sft_get(set, i);
        if (!strstr(c.turns[c.n_turns - 1].content, want)) n = -1;
    }
    jl_sft_free(set);
    return n;
}

/* --tries K (rejection sampling): a prompt whose first (greedy) answer the keep rule rejects is answered again,
 * sampled, until one is kept; every kept answer passes the rule and more prompts are kept than with one try. */
static void test_synthesize_tries(void **state) {
    (void)state;
    const char *prompts = tmp_path("tries.jsonl"), *out = tmp_path("tries_out.jsonl"), *log = tmp_path("tries.log");
    FILE *f = fopen(prompts, "w");
    static const char *const subj[] = {"the cat", "a dog", "the old man", "my friend", "the bird", "a child"};
    for (int i = 0; i < 12; i++) fprintf(f, "{\"prompt\":\"%s\",\"expected\":\"the \"}\n", subj[i % 6]);
    fclose(f);
    char args[2048];
    int kept[2];
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "distill --teacher %s --synthesize 0 --prompts %s --out-data %s --max-new-tokens 16 "
                 "--keep-fn contains --tries %d --retry-temperature 1", teacher_path(), prompts, out, k ? 12 : 1);
        assert_int_equal(run_cli(args, log), 0);
        kept[k] = answers_holding(out, "the ");
        assert_true(kept[k] >= 0); /* the rule holds for every kept answer */
    }
    assert_true(kept[1] > kept[0]);
    char *msg;
    size_t len;
    assert_int_equal(jl_read_file(log, &msg, &len), JL_OK);
    assert_non_null(strstr(msg, "prompts kept only on a later try"));
    free(msg);
    /* same seed, same file */
    char *a, *b;
    size_t na, nb;
    assert_int_equal(jl_read_file(out, &a, &na), JL_OK);
    assert_int_equal(run_cli(args, log), 0);
    assert_int_equal(jl_read_file(out, &b, &nb), JL_OK);
    assert_true(na == nb && memcmp(a, b, na) == 0);
    free(a);
    free(b);
    /* --tries without a rule deciding when to try again is refused */
    snprintf(args, sizeof args, "distill --teacher %s --synthesize 0 --prompts %s --out-data %s --tries 3",
             teacher_path(), prompts, out);
    assert_int_equal(run_cli(args, log), 2);
    assert_int_equal(jl_read_file(log, &msg, &len), JL_OK);
    assert_non_null(strstr(msg, "--tries 3 needs --keep-fn"));
    free(msg);
}

static void test_bad_input(void **state) {
    (void)state;
    char args[2048];
    const char *log = tmp_path("bad.log"), *corpus = tmp_path("corpus.txt");
    /* a student with another vocabulary */
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, 1, 300, 64);
    assert_int_equal(jl_config_finish(&c), JL_OK);
    jl_model *m;
    assert_int_equal(jl_model_new(&c, &m), JL_OK);
    jl_model_init(m, 1);
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_bytes(&tok), JL_OK);
    jl_checkpoint ck = {.model = m};
    assert_int_equal(jl_tokenizer_to_json(tok, &ck.tokenizer_json), JL_OK);
    const char *other = tmp_path("other.safetensors");
    assert_int_equal(jl_checkpoint_save(other, &ck), JL_OK);
    free(ck.tokenizer_json);
    jl_tokenizer_free(tok);
    jl_model_free(m);
    snprintf(args, sizeof args, "distill --teacher %s --student %s --data %s --out %s --steps 2", teacher_path(),
             other, corpus, tmp_path("bad_out"));
    assert_int_equal(run_cli(args, log), 2);
    char *msg;
    size_t len;
    assert_int_equal(jl_read_file(log, &msg, &len), JL_OK);
    assert_non_null(strstr(msg, "vocabulary"));
    free(msg);
    const char *cases[] = {
        "--teacher %s/none.safetensors --data %s --out %s",
        "--teacher %s --data %s --out %s --alpha 1.5",
        "--teacher %s --data %s --out %s --temperature 0",
        "--teacher %s --data %s/missing.txt --out %s",
        "--teacher %s --synthesize 2 --data %s --out %s",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char flags[1024];
        snprintf(flags, sizeof flags, cases[i], i == 0 ? tmp_path("") : teacher_path(),
                 i == 3 ? tmp_path("") : corpus, tmp_path("bad_out"));
        snprintf(args, sizeof args, "distill %s --steps 2", flags);
        assert_int_equal(run_cli(args, log), 2);
    }
    snprintf(args, sizeof args, "distill --teacher %s --synthesize 1 --prompts %s --out-data %s", teacher_path(),
             corpus, tmp_path("x.jsonl")); /* not JSONL */
    assert_int_equal(run_cli(args, log), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distillation_beats_hard_labels),
        cmocka_unit_test(test_resume_is_bit_exact),
        cmocka_unit_test(test_synthesize),
        cmocka_unit_test(test_synthesize_tries),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, setup_teacher, NULL);
}
