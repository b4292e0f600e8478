/* Shared by the cmocka tests: scratch paths and running the CLI. Include after cmocka.h's prerequisites. */
#ifndef JL_TESTUTIL_H
#define JL_TESTUTIL_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/rng.h"
#include "jielong/checkpoint.h"
#include "model/model.h"
#include <json.h>

/* A path inside the per-test-binary scratch folder ($JL_TMP, else /tmp). Returns a static buffer slot. */
static inline const char *tmp_path(const char *name) {
    static char bufs[8][1024];
    static int slot;
    const char *dir = getenv("JL_TMP");
    char *b = bufs[slot++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", dir && *dir ? dir : "/tmp", name);
    return b;
}

/* Runs "$JL_BIN <args>" through the shell; returns its exit code (stdout/stderr to `log` if given). */
static inline int run_cli(const char *args, const char *log) {
    const char *bin = getenv("JL_BIN");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s %s%s 2>&1", bin ? bin : "build/jielong", args, log ? "> " : "", log ? log : "");
    int rc = system(cmd);
    return rc == -1 ? -1 : (rc >> 8) & 0xff;
}

/* Path of a file in the source tree ($JL_ROOT, else "."). */
static inline const char *root_path(const char *rel) {
    static char bufs[4][1024];
    static int slot;
    const char *root = getenv("JL_ROOT");
    char *b = bufs[slot++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", root && *root ? root : ".", rel);
    return b;
}

/* Values of `key` in the metrics lines (JSONL) of path that have it, in order, at most max. Returns how many. */
static inline int read_metric(const char *path, const char *key, double *out, int max) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < max) {
        json_object *o = json_tokener_parse(line), *v;
        if (o && json_object_object_get_ex(o, key, &v)) out[n++] = json_object_get_double(v);
        json_object_put(o);
    }
    fclose(f);
    return n;
}

/* A text with structure to learn: n sentences from a small grammar, fixed seed. */
static inline void write_corpus(const char *path, int n_sentences) {
    static const char *const subj[] = {"the cat", "a dog", "the old man", "my friend", "the bird", "a child"};
    static const char *const verb[] = {"sees", "likes", "follows", "finds", "watches"};
    static const char *const obj[] = {"the river", "a red ball", "the moon", "an apple", "the small house"};
    jl_rng r;
    jl_rng_seed(&r, 11);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < n_sentences; i++)
        fprintf(f, "%s %s %s.\n", subj[jl_rng_below(&r, 6)], verb[jl_rng_below(&r, 5)], obj[jl_rng_below(&r, 5)]);
    fclose(f);
}

/* Two training runs ended with bit-identical weights: DIR/model.safetensors of each. */
static inline void assert_same_final_weights(const char *dir_a, const char *dir_b) {
    char ma[1100], mb[1100];
    snprintf(ma, sizeof ma, "%s/model.safetensors", dir_a);
    snprintf(mb, sizeof mb, "%s/model.safetensors", dir_b);
    jl_checkpoint ca, cb;
    assert_int_equal(jl_checkpoint_load(ma, &ca), JL_OK);
    assert_int_equal(jl_checkpoint_load(mb, &cb), JL_OK);
    assert_int_equal(ca.model->n_params, cb.model->n_params);
    assert_memory_equal(ca.model->params, cb.model->params, ca.model->n_params * sizeof(float));
    jl_checkpoint_free(&ca);
    jl_checkpoint_free(&cb);
}

/* 1 when built with AddressSanitizer (tests may then shrink long end-to-end runs). */
#if defined(__SANITIZE_ADDRESS__)
#define JL_SANITIZED 1
#else
#define JL_SANITIZED 0
#endif

/* ---- fixtures of the serving / tools / SFT tests (issue 13/17) ---- */
#include "jielong/tokenizer.h"
#include <sys/types.h>
#include <unistd.h>

/* Saves m (taken: freed here) to path with the byte tokenizer stored beside it: the tiny models of the tests. */
static inline void save_with_byte_tokenizer(jl_model *m, const char *path) {
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_bytes(&tok), JL_OK);
    jl_checkpoint ck = {.model = m};
    assert_int_equal(jl_tokenizer_to_json(tok, &ck.tokenizer_json), JL_OK);
    assert_int_equal(jl_checkpoint_save(path, &ck), JL_OK);
    jl_checkpoint_free(&ck);
    jl_tokenizer_free(tok);
}

/* Starts `$JL_BIN serve --model MODEL --port 0 EXTRA` (stderr appended to tmp serve.err) in the background and
 * returns its port, read from the first line of its stdout within `seconds`; *pid is the server's. */
static inline int start_serve_cli(const char *model, const char *extra, int seconds, pid_t *pid) {
    const char *bin = getenv("JL_BIN");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "exec %s serve --model %s --port 0 %s 2>>%s", bin ? bin : "build/jielong", model, extra,
             tmp_path("serve.err"));
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    *pid = fork();
    assert_true(*pid >= 0);
    if (*pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[1024] = {0};
    alarm((unsigned)seconds);
    const char *got = fgets(line, sizeof line, f);
    alarm(0);
    fclose(f);
    const char *at = got ? strstr(line, "http://127.0.0.1:") : NULL;
    if (!at) print_message("serve did not start: '%s'\n", line);
    assert_non_null(at);
    const int port = atoi(at + strlen("http://127.0.0.1:"));
    assert_true(port > 0);
    return port;
}

#endif
