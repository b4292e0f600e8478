/* Regression tests of the reliability campaign (#16) that need the library rather than the CLI: the sampler on
 * non-finite logits, temp files of killed writers, non-blocking opens, the finite-weights check, the layout used
 * to validate files before allocating, stdin encoding in pieces, and write faults (kill -9, a full disk). */
/* scratch paths are short: a truncated command would fail its test loudly */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include "testutil.h"
#include "infer/sampler.h"
#include "io/fileio.h"
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


/* ---------------------------------------------------------------- sampler (defect 1) */

static jl_sampler *sampler(float temperature, float min_p, int V) {
    jl_sampler_params p;
    jl_sampler_defaults(&p);
    p.temperature = temperature;
    p.min_p = min_p;
    jl_sampler *s;
    assert_int_equal(jl_sampler_new(&p, V, &s), JL_OK);
    return s;
}

static void test_sampler_nan_logits_give_an_error(void **state) {
    (void)state;
    enum { V = 50 };
    float logits[V];
    for (int i = 0; i < V; i++) logits[i] = NAN;
    const float temps[] = {0.0f, 0.8f, 0.8f}, min_ps[] = {0.0f, 0.0f, 0.1f};
    for (int k = 0; k < 3; k++) { /* greedy, plain, min-p (which kept no candidate: cand[-1] was read) */
        jl_sampler *s = sampler(temps[k], min_ps[k], V);
        jl_clear_error();
        assert_int_equal(jl_sampler_sample(s, logits, NULL, 0, NULL, 0), -1);
        assert_non_null(strstr(jl_last_error(), "not finite"));
        jl_sampler_free(s);
    }
    /* one NaN or +Inf among finite logits is a broken model too */
    for (int i = 0; i < V; i++) logits[i] = (float)i / V;
    logits[7] = INFINITY;
    jl_sampler *s = sampler(0.8f, 0.1f, V);
    assert_int_equal(jl_sampler_sample(s, logits, NULL, 0, NULL, 0), -1);
    logits[7] = NAN;
    assert_int_equal(jl_sampler_sample(s, logits, NULL, 0, NULL, 0), -1);
    /* every logit -inf: nothing can be drawn */
    for (int i = 0; i < V; i++) logits[i] = -INFINITY;
    assert_int_equal(jl_sampler_sample(s, logits, NULL, 0, NULL, 0), -1);
    assert_non_null(strstr(jl_last_error(), "-inf"));
    /* -inf on some tokens only excludes them: the draw is always a valid, finite one */
    for (int i = 0; i < V; i++) logits[i] = i % 3 ? -INFINITY : 0.01f * (float)i;
    jl_sample_report rep;
    for (int d = 0; d < 200; d++) {
        int32_t t = jl_sampler_sample(s, logits, NULL, 0, &rep, 5);
        assert_true(t >= 0 && t < V);
        assert_int_equal(t % 3, 0);
    }
    jl_sampler_free(s);
}

/* ---------------------------------------------------------------- temp files (defect 7) */

static int exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* The pid of a child that has exited (and been reaped): no process has it now (pids are not reused this fast). */
static pid_t dead_pid(void) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    waitpid(pid, NULL, 0);
    return pid;
}

static void test_stale_temp_files_removed(void **state) {
    (void)state;
    const char *target = tmp_path("out.bin");
    char dead[1100], live[1100], other[1100], odd[1100];
    snprintf(dead, sizeof dead, "%s.tmp.%ld", target, (long)dead_pid());
    snprintf(live, sizeof live, "%s.tmp.%ld", target, (long)getppid()); /* a running process: its write goes on */
    snprintf(other, sizeof other, "%s.tmp.%ld", tmp_path("other.bin"), (long)dead_pid()); /* another file's */
    snprintf(odd, sizeof odd, "%s.tmp.12x", target);                                      /* not a pid */
    const char *made[] = {dead, live, other, odd};
    for (int i = 0; i < 4; i++) {
        FILE *f = fopen(made[i], "w");
        assert_non_null(f);
        fputs("partial", f);
        fclose(f);
    }
    assert_int_equal(jl_write_file_atomic(target, "ok", 2), JL_OK);
    assert_false(exists(dead));
    assert_true(exists(live));
    assert_true(exists(other));
    assert_true(exists(odd));
    for (int i = 1; i < 4; i++) unlink(made[i]);
    /* an error path leaves no temp file: a folder in the way of the rename */
    const char *blocked = tmp_path("blocked");
    assert_int_equal(mkdir(blocked, 0755), 0);
    char inside[1100];
    snprintf(inside, sizeof inside, "%s/x", blocked);
    assert_int_equal(mkdir(inside, 0755), 0);
    assert_int_not_equal(jl_write_file_atomic(blocked, "data", 4), JL_OK);
    char mine[1100];
    snprintf(mine, sizeof mine, "%s.tmp.%ld", blocked, (long)getpid());
    assert_false(exists(mine));
}

/* ---------------------------------------------------------------- opens that never block (defect 12) */

static void test_fifo_and_devices_refused_without_blocking(void **state) {
    (void)state;
    const char *fifo = tmp_path("fifo");
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0644), 0);
    alarm(20); /* a regression would block in open(): fail instead of hanging the suite */
    int fd;
    size_t size;
    assert_int_equal(jl_open_regular(fifo, &fd, &size), JL_ERR_IO);
    assert_non_null(strstr(jl_last_error(), "FIFO"));
    char *data;
    size_t len;
    assert_int_equal(jl_read_file(fifo, &data, &len), JL_ERR_IO);
    assert_int_equal(jl_read_file("/dev/zero", &data, &len), JL_ERR_IO);
    assert_non_null(strstr(jl_last_error(), "character device"));
    jl_checkpoint ck;
    assert_int_equal(jl_checkpoint_load(fifo, &ck), JL_ERR_IO);
    alarm(0);
    /* a regular file still opens, blocking from then on */
    assert_int_equal(jl_write_file_atomic(tmp_path("plain"), "abc", 3), JL_OK);
    assert_int_equal(jl_open_regular(tmp_path("plain"), &fd, &size), JL_OK);
    assert_int_equal(size, 3);
    assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    close(fd);
    unlink(fifo);
}

/* ---------------------------------------------------------------- finite weights, layout (defects 2, 11) */

static void test_layout_and_finite_check(void **state) {
    (void)state;
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, 1, 300, 32);
    jl_model *m;
    assert_int_equal(jl_model_new(&c, &m), JL_OK);
    jl_tensor_info *t;
    int n;
    size_t n_params;
    assert_int_equal(jl_model_layout(&c, &t, &n, &n_params), JL_OK);
    assert_int_equal(n, m->n_tensors);
    assert_int_equal(n_params, m->n_params);
    for (int i = 0; i < n; i++) {
        assert_string_equal(t[i].name, m->tensors[i].name);
        assert_int_equal(t[i].shape[0], m->tensors[i].shape[0]);
    }
    free(t);
    /* a config claiming 4M tokens is laid out without allocating its 4M × 64 floats */
    c.vocab_size = 4000000;
    assert_int_equal(jl_model_layout(&c, &t, &n, &n_params), JL_OK);
    assert_true(n_params > (size_t)4000000 * 64);
    free(t);
    jl_model_init(m, 1);
    assert_int_equal(jl_model_check_finite(m, "x"), JL_OK);
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; k++) {
        float *w = m->params + m->tensors[m->n_tensors - 1].offset + 5; /* the final norm, entry 5 */
        float keep = *w;
        *w = bad[k];
        assert_int_equal(jl_model_check_finite(m, "x"), JL_ERR_FORMAT);
        assert_non_null(strstr(jl_last_error(), "index 5"));
        *w = keep;
    }
    c.vocab_size = 300;
    c.rope_theta = INFINITY;
    jl_model *m2;
    assert_int_equal(jl_model_new(&c, &m2), JL_ERR_ARG);
    assert_non_null(strstr(jl_last_error(), "rope_theta"));
    jl_model_free(m);
}

/* ---------------------------------------------------------------- stdin encoding in pieces (defect 12) */

/* Pieces cut at "\n" + a non-space give the ids of the whole text: a text with long lines, blank-line runs,
 * spaces before newlines and special tokens, read through a pipe (64 KB reads: many pieces). */
static void test_encode_stdin_equals_whole_file(void **state) {
    (void)state;
    const char *text = tmp_path("enc.txt"), *tok = tmp_path("enc_tok.json");
    FILE *f = fopen(text, "w");
    assert_non_null(f);
    jl_rng r;
    jl_rng_seed(&r, 3);
    static const char *const pieces[] = {"the cat", " sees", "  \n", "\n\n", "<|end|>", "。你好", "!!\n", " \t\n x", "42"};
    for (size_t bytes = 0; bytes < 600u << 10;) {
        const char *p = pieces[jl_rng_below(&r, 9)];
        fputs(p, f);
        bytes += strlen(p);
    }
    fclose(f);
    char args[4096];
    snprintf(args, sizeof args, "tokenizer train --input %s --vocab-size 320 --output %s --quiet", text, tok);
    assert_int_equal(run_cli(args, NULL), 0);
    snprintf(args, sizeof args, "tokenizer encode --tokenizer %s --allow-special --input %s > %s", tok, text,
             tmp_path("whole.ids"));
    assert_int_equal(run_cli(args, NULL), 0);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cat %s | %s tokenizer encode --tokenizer %s --allow-special > %s", text,
             getenv("JL_BIN") ? getenv("JL_BIN") : "build/jielong", tok, tmp_path("piece.ids"));
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "cmp -s %s %s", tmp_path("whole.ids"), tmp_path("piece.ids"));
    assert_int_equal(system(cmd), 0);
    /* /dev/zero streams: output comes while it reads (reading to the end first never printed anything) */
    snprintf(cmd, sizeof cmd, "timeout 60 %s tokenizer encode --tokenizer %s < /dev/zero "
             "| head -c 300000 | wc -c", getenv("JL_BIN") ? getenv("JL_BIN") : "build/jielong", tok);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    long count = 0;
    assert_int_equal(fscanf(p, "%ld", &count), 1);
    pclose(p);
    assert_int_equal(count, 300000);
}

/* ---------------------------------------------------------------- faults of the writing commands */

/* Every file under dir whose name has ".tmp." in it. */
static int temp_files_in(const char *dir) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "find %s -name '*.tmp.*' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1) n = -1;
        pclose(p);
    }
    return n;
}

/* Whether name is the temp file of process pid ("<name>.tmp.<pid>"). */
static int temp_of(const char *name, pid_t pid) {
    const char *t = strstr(name, ".tmp.");
    return t && atol(t + 5) == (long)pid;
}

/* 1 when process pid's temp file is in dir or a folder below it (one level): the temp files that killed runs
 * before it left behind do not count (they made every "kill it mid-write" kill at once, before it wrote). */
static int temp_file_now(const char *dir, pid_t pid) {
    DIR *d = opendir(dir);
    int found = 0;
    for (struct dirent *e; d && !found && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        found = temp_of(e->d_name, pid);
        if (!found && e->d_type == DT_DIR) {
            char sub[1200];
            snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
            DIR *s2 = opendir(sub);
            for (struct dirent *f; s2 && !found && (f = readdir(s2));) found = temp_of(f->d_name, pid);
            if (s2) closedir(s2);
        }
    }
    if (d) closedir(d);
    return found;
}

/* Runs `args` in the background and kills it with SIGKILL after delay_ms (or lets it finish first); with
 * delay_ms < 0, as soon as a temp file appears in watch (mid-write), or after -delay_ms if none does. */
static void run_and_kill(const char *args, int delay_ms, const char *watch) {
    const char *bin = getenv("JL_BIN") ? getenv("JL_BIN") : "build/jielong";
    pid_t pid = fork();
    if (pid == 0) {
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "exec %s %s > /dev/null 2>&1", bin, args);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    if (delay_ms >= 0) {
        struct timespec ts = {delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    } else {
        struct timespec tick = {0, 200000L};
        for (long waited = 0; waited < -delay_ms * 5L && !temp_file_now(watch, pid); waited++) nanosleep(&tick, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* kill -9 at spread-out moments of prepare, tokenizer train, quantize and export: the output saved before
 * stays loadable (bit for bit the same), and the next run removes the killed runs' temp files. */
static void test_kill9_during_writes(void **state) {
    (void)state;
#ifdef __SANITIZE_ADDRESS__
    /* timing-driven and about files, not memory: the release flavour runs it (the sanitizers slow every run
     * several-fold without looking at anything a kill leaves behind) */
    fprintf(stderr, "kill -9 faults: run by the release build\n");
    return;
#endif
    const char *dir = tmp_path("k9");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    assert_int_equal(system(cmd), 0);
    char corpus[1100], tok[1100], model[1100], args[8192];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", dir);
    snprintf(tok, sizeof tok, "%s/tok.json", dir);
    snprintf(model, sizeof model, "%s/run/model.safetensors", dir);
    write_corpus(corpus, 8000);
    snprintf(args, sizeof args, "tokenizer train --input %s --vocab-size 400 --output %s --quiet", corpus, tok);
    assert_int_equal(run_cli(args, NULL), 0);
    snprintf(args, sizeof args, "pretrain --data %s --tokenizer %s --out %s/run --depth 2 --context 32 --steps 1 "
             "--batch-size 1 --eval-every 0 --save-every 0 --threads 1", corpus, tok, dir);
    assert_int_equal(run_cli(args, NULL), 0);
    char writes[4][8192];
    snprintf(writes[0], sizeof writes[0], "prepare --tokenizer %s --input %s --output %s/shards --val-fraction 0", tok,
             corpus, dir);
    snprintf(writes[1], sizeof writes[1], "tokenizer train --input %s --vocab-size 600 --output %s --quiet", corpus, tok);
    snprintf(writes[2], sizeof writes[2], "quantize --model %s --type q8_0 --out %s/q.gguf", model, dir);
    snprintf(writes[3], sizeof writes[3], "export --model %s --format gguf --type f16 --out %s/f.gguf", model, dir);
    const char *outputs[4] = {"shards/train_000.bin", "tok.json", "q.gguf", "f.gguf"};
    int stale = 0;
    for (int w = 0; w < 4; w++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(run_cli(writes[w], NULL), 0); /* a complete output first, timed */
        clock_gettime(CLOCK_MONOTONIC, &t1);
        const int run_ms = (int)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
        char out[1200], ref[1200];
        snprintf(out, sizeof out, "%s/%s", dir, outputs[w]);
        snprintf(ref, sizeof ref, "%s/ref", dir);
        snprintf(cmd, sizeof cmd, "cp %s %s", out, ref);
        assert_int_equal(system(cmd), 0);
        for (int k = 1; k <= 5; k++) run_and_kill(writes[w], run_ms * k / 5 + 1, dir); /* spread over a run */
        for (int k = 0; k < 3; k++) run_and_kill(writes[w], -(run_ms + 50) * 3, dir); /* the moment it writes */
        stale += temp_files_in(dir);
        snprintf(cmd, sizeof cmd, "cmp -s %s %s", out, ref);
        assert_int_equal(system(cmd), 0); /* untouched: a killed run only ever wrote its temp file */
        assert_int_equal(run_cli(writes[w], NULL), 0);
        assert_int_equal(temp_files_in(dir), 0);
        snprintf(cmd, sizeof cmd, "cmp -s %s %s", out, ref); /* the rerun writes the same (deterministic) */
        assert_int_equal(system(cmd), 0);
    }
    fprintf(stderr, "kill -9: %d temp files left by killed writes, all removed by the next run\n", stale);
    /* what was written loads */
    char gen[8192];
    snprintf(gen, sizeof gen, "generate --model %s/q.gguf --prompt the --max-tokens 2", dir);
    assert_int_equal(run_cli(gen, NULL), 0);
}

/* A full disk during each kind of write (a file-size limit: EFBIG at the limit, as ENOSPC would be): a one-line
 * error naming the file and the reason (strerror), a non-zero exit, nothing already saved damaged, no temp file left. */
static void test_full_disk_during_writes(void **state) {
    (void)state;
    const char *dir = tmp_path("full");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    assert_int_equal(system(cmd), 0);
    char corpus[1100], tok[1100], model[1100], args[8192];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", dir);
    snprintf(tok, sizeof tok, "%s/tok.json", dir);
    snprintf(model, sizeof model, "%s/run/model.safetensors", dir);
    write_corpus(corpus, 4000);
    snprintf(args, sizeof args, "tokenizer train --input %s --vocab-size 300 --output %s --quiet", corpus, tok);
    assert_int_equal(run_cli(args, NULL), 0);
    snprintf(args, sizeof args, "pretrain --data %s --tokenizer %s --out %s/run --depth 1 --dim 32 --context 32 "
             "--steps 1 --batch-size 1 --eval-every 0 --save-every 0 --threads 1", corpus, tok, dir);
    assert_int_equal(run_cli(args, NULL), 0);
    struct {
        const char *args, *out;
    } w[] = {
        {"prepare --tokenizer %s/tok.json --input %s/corpus.txt --output %s/shards --val-fraction 0", "shards/train_000.bin"},
        {"tokenizer train --input %s/corpus.txt --vocab-size 300 --output %s/tok2.json --quiet%.0s", "tok2.json"},
        {"quantize --model %s/run/model.safetensors --type q8_0 --out %s/q.gguf%.0s", "q.gguf"},
        {"export --model %s/run/model.safetensors --format safetensors --out %s/hf%.0s", "hf/model.safetensors"},
        {"export --model %s/run/model.safetensors --format gguf --out %s/f.gguf%.0s", "f.gguf"},
        {"import --from %s/hf --out %s/imported.safetensors%.0s", "imported.safetensors"},
        {"tokenizer encode --tokenizer %s/tok.json --input %s/corpus.txt --output %s/ids.txt", "ids.txt"},
    };
    const char *bin = getenv("JL_BIN") ? getenv("JL_BIN") : "build/jielong";
    for (size_t k = 0; k < sizeof w / sizeof w[0]; k++) {
        char a[4096], out[1200], ref[1200], log[1200];
        snprintf(a, sizeof a, w[k].args, dir, dir, dir);
        snprintf(out, sizeof out, "%s/%s", dir, w[k].out);
        snprintf(ref, sizeof ref, "%s/ref", dir);
        snprintf(log, sizeof log, "%s/log", dir);
        assert_int_equal(run_cli(a, NULL), 0); /* the complete output, kept as the reference */
        snprintf(cmd, sizeof cmd, "cp %s %s", out, ref);
        assert_int_equal(system(cmd), 0);
        /* 8 KB of room: every output here is larger (ulimit -f counts 1 KB blocks; XFSZ ignored → EFBIG) */
        snprintf(cmd, sizeof cmd, "trap '' XFSZ; ulimit -f 8; %s %s > %s 2>&1", bin, a, log);
        int rc = system(cmd);
        rc = rc == -1 ? -1 : (rc >> 8) & 0xff;
        size_t n = 0;
        char *text = NULL;
        FILE *f = fopen(log, "r");
        assert_non_null(f);
        if (getline(&text, &n, f) < 0) text[0] = 0;
        char rest[256];
        int more = fgets(rest, sizeof rest, f) != NULL;
        fclose(f);
        if (rc == 0 || !strstr(text, "write") || more)
            fprintf(stderr, "full disk, %s: rc %d, first line: %s\n", a, rc, text);
        assert_int_not_equal(rc, 0);
        assert_non_null(strstr(text, "write"));
        if (!strstr(text, strerror(EFBIG))) fprintf(stderr, "full disk, %s: no errno text in: %s\n", a, text);
        assert_non_null(strstr(text, strerror(EFBIG))); /* the reason, not only "write failed" */
        assert_false(more); /* one line */
        free(text);
        snprintf(cmd, sizeof cmd, "cmp -s %s %s", out, ref);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(temp_files_in(dir), 0);
    }
}

/* ---------------------------------------------------------------- sft --eval-every 0 (defect 15) */

/* With periodic evaluation off, the report still compares the held-out loss before and after training (it used
 * to print the first value twice: "2.7063 -> 2.7063" while the loss fell to 1.83). */
static void test_sft_eval_every_0_reports_the_final_loss(void **state) {
    (void)state;
    const char *corpus = tmp_path("e0_corpus.txt"), *tok = tmp_path("e0_tok.json"), *data = tmp_path("e0.jsonl");
    write_corpus(corpus, 400);
    char args[4096];
    snprintf(args, sizeof args, "tokenizer train --input %s --vocab-size 300 --output %s --quiet", corpus, tok);
    assert_int_equal(run_cli(args, NULL), 0);
    snprintf(args, sizeof args, "pretrain --data %s --tokenizer %s --out %s --depth 1 --dim 32 --context 32 --steps 1 "
             "--batch-size 1 --eval-every 0 --save-every 0 --threads 1", corpus, tok, tmp_path("e0_base"));
    assert_int_equal(run_cli(args, NULL), 0);
    FILE *f = fopen(data, "w");
    assert_non_null(f);
    for (int i = 0; i < 40; i++)
        fputs("{\"messages\":[{\"role\":\"user\",\"content\":\"the cat\"},{\"role\":\"assistant\",\"content\":"
              "\"sees the moon\"}]}\n", f);
    fclose(f);
    const char *log = tmp_path("e0.log");
    snprintf(args, sizeof args, "sft --model %s/model.safetensors --data %s --steps 30 --batch-size 4 --threads 1 "
             "--out %s --eval-every 0 --val-fraction 0.2 --lr 3e-3", tmp_path("e0_base"), data, tmp_path("e0_out"));
    assert_int_equal(run_cli(args, log), 0);
    f = fopen(log, "r");
    assert_non_null(f);
    char line[1024];
    double first = 0, last = 0;
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "val_loss ");
        if (p && strstr(line, "->") && sscanf(p, "val_loss %lf -> %lf", &first, &last) == 2) found = 1;
    }
    fclose(f);
    assert_true(found);
    assert_true(last < first - 0.5); /* the model learnt the one answer: the report shows it */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sampler_nan_logits_give_an_error),
        cmocka_unit_test(test_stale_temp_files_removed),
        cmocka_unit_test(test_fifo_and_devices_refused_without_blocking),
        cmocka_unit_test(test_layout_and_finite_check),
        cmocka_unit_test(test_encode_stdin_equals_whole_file),
        cmocka_unit_test(test_kill9_during_writes),
        cmocka_unit_test(test_full_disk_during_writes),
        cmocka_unit_test(test_sft_eval_every_0_reports_the_final_loss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
