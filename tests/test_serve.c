/* jielong serve end to end with real clients, all on 127.0.0.1, each bounded in time: the official OpenAI client
 * (npm `openai`, answers equal `jielong chat` / `generate`), same seed → same text alone or beside 15 others,
 * 64 streaming clients with disconnects and a slow reader plus a catalogue of malformed requests, the chat page
 * in headless chromium (playwright-core), API keys, SIGTERM with a stream running, and bad flags.
 * The npm packages live in build/npm-serve (scripts/fetch_serve_npm.sh). Under ASan the load is smaller and the
 * browser test runs in the release build only. */
#include "testutil.h"
#include "io/fileio.h"
#include "jielong/tokenizer.h"
#include "serve/serve.h"
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int is_asan(void) {
    const char *bin = getenv("JL_BIN");
    return bin && strstr(bin, "/asan/") != NULL;
}

/* A random two-layer llama over the byte tokenizer (vocab 262, context 128), saved once. */
static const char *model_path(void) {
    static char path[1024];
    if (path[0]) return path;
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_bytes(&tok), JL_OK);
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, 2, jl_tokenizer_vocab_size(tok), 128);
    c.dim = 64;
    c.n_head = 4;
    c.n_kv_head = 2;
    c.hidden_dim = 128;
    assert_int_equal(jl_config_finish(&c), JL_OK);
    jl_model *m;
    assert_int_equal(jl_model_new(&c, &m), JL_OK);
    jl_model_init(m, 21);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] *= 3.0f; /* peaked distributions, varied text */
    snprintf(path, sizeof path, "%s", tmp_path("model.safetensors"));
    save_with_byte_tokenizer(m, path);
    jl_tokenizer_free(tok);
    return path;
}

typedef struct {
    pid_t pid;
    int port;
} server;

/* Starts `jielong serve --model MODEL --port 0 --threads 2 EXTRA` (20 s at most to print its address). */
static server start_server_on(const char *model, const char *extra) {
    char args[2048];
    snprintf(args, sizeof args, "--threads 2 %s", extra);
    server s;
    s.port = start_serve_cli(model, args, 20, &s.pid);
    return s;
}

static server start_server(const char *extra) { return start_server_on(model_path(), extra); }

/* SIGTERM, then the exit status within `bound` seconds (-1 if it had to be killed). */
static int stop_server(server s, double bound) {
    kill(s.pid, SIGTERM);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int status;
        pid_t r = waitpid(s.pid, &status, WNOHANG);
        if (r == s.pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((double)(t.tv_sec - t0.tv_sec) + 1e-9 * (double)(t.tv_nsec - t0.tv_nsec) > bound) {
            kill(s.pid, SIGKILL);
            waitpid(s.pid, &status, 0);
            return -1;
        }
        usleep(20000);
    }
}

static long rss_kb(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

/* Runs a node script of tests/serve with PORT and JL_NPM set (and `env`), bounded by `seconds`. */
static int run_node(const char *script, server s, const char *env, int seconds) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd %s && PORT=%d JL_NPM=%s %s timeout %d node tests/serve/%s > %s 2>&1", root_path(""),
             s.port, root_path("build/npm-serve"), env ? env : "", seconds, script, tmp_path("node.log"));
    int rc = system(cmd);
    rc = rc == -1 ? -1 : (rc >> 8) & 0xff;
    char *log = NULL;
    size_t len = 0;
    if (jl_read_file(tmp_path("node.log"), &log, &len) == JL_OK) {
        print_message("%s: %s", script, log);
        free(log);
    }
    return rc;
}

/* stdout of a CLI run (stdin from `input` if not NULL), malloc'd, without the one trailing newline. */
static char *cli_stdout(const char *args, const char *input) {
    char cmd[4096];
    const char *bin = getenv("JL_BIN");
    if (input) {
        FILE *f = fopen(tmp_path("stdin.txt"), "w");
        fputs(input, f);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "%s %s < %s > %s 2>/dev/null", bin ? bin : "build/jielong", args,
             input ? tmp_path("stdin.txt") : "/dev/null", tmp_path("cli.out"));
    assert_int_equal(system(cmd), 0);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(jl_read_file(tmp_path("cli.out"), &text, &len), JL_OK);
    if (len && text[len - 1] == '\n') text[len - 1] = '\0';
    return text;
}

static void test_openai_client(void **state) {
    (void)state;
    const char *user = "hello there", *prompt = "Once upon a time";
    char args[2048];
    snprintf(args, sizeof args, "chat --model %s --temperature 0 --max-tokens 24", model_path());
    char *chat = cli_stdout(args, "hello there\n");
    snprintf(args, sizeof args, "generate --model %s --temperature 0 --max-tokens 24 --prompt '%s'", model_path(), prompt);
    char *gen = cli_stdout(args, NULL);
    json_object *want = json_object_new_object();
    json_object_object_add(want, "chat", json_object_new_string(chat));
    json_object_object_add(want, "generate", json_object_new_string(gen));
    json_object_object_add(want, "prompt", json_object_new_string(prompt));
    json_object_object_add(want, "user", json_object_new_string(user));
    json_object_object_add(want, "max_tokens", json_object_new_int(24));
    assert_int_equal(json_object_to_file(tmp_path("expect.json"), want), 0);
    json_object_put(want);
    free(chat);
    free(gen);
    server s = start_server("--parallel 4 --api-key test-key");
    char env[1200];
    snprintf(env, sizeof env, "EXPECT=%s", tmp_path("expect.json"));
    int rc = run_node("openai_client.cjs", s, env, 60);
    /* the key is required on the API (not on /health), compared in constant time */
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "test $(curl -s -o /dev/null -w '%%{http_code}' http://127.0.0.1:%d/v1/models) = 401 && "
             "test $(curl -s -o /dev/null -w '%%{http_code}' -H 'Authorization: Bearer test-kez' http://127.0.0.1:%d/v1/models) = 401 && "
             "test $(curl -s -o /dev/null -w '%%{http_code}' -H 'Authorization: Bearer test-key' http://127.0.0.1:%d/v1/models) = 200 && "
             "test $(curl -s -o /dev/null -w '%%{http_code}' http://127.0.0.1:%d/health) = 200",
             s.port, s.port, s.port, s.port);
    int auth = system(cmd);
    assert_int_equal(stop_server(s, 15), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(auth, 0);
}

static void test_same_seed_alone_or_beside_others(void **state) {
    (void)state;
    server s = start_server("--parallel 16");
    int rc = run_node("determinism.cjs", s, NULL, is_asan() ? 240 : 60);
    assert_int_equal(stop_server(s, 15), 0);
    assert_int_equal(rc, 0);
}

static void test_load_and_faults(void **state) {
    (void)state;
    server s = start_server("--parallel 16 --max-queue 256 --context 128");
    /* warm up (allocator arenas, thread stacks), then the RSS baseline */
    assert_int_equal(run_node("load.cjs", s, "CLIENTS=16 ROUNDS=1 CATALOGUE=0", 120), 0);
    long before = rss_kb(s.pid);
    int rc = run_node("load.cjs", s, is_asan() ? "CLIENTS=24 ROUNDS=1" : "CLIENTS=64 ROUNDS=2", is_asan() ? 300 : 120);
    long after = rss_kb(s.pid);
    print_message("server RSS: %ld kB after warm-up, %ld kB after the load\n", before, after);
    assert_int_equal(stop_server(s, 15), 0);
    assert_int_equal(rc, 0);
    assert_true(before > 0 && after > 0);
    assert_true(after < before + before / 4 + 16384); /* back near the baseline, not growing with requests */
}

static void test_browser_page(void **state) {
    (void)state;
    if (is_asan()) { /* the page is JavaScript; the server side is covered by the other tests under ASan */
        server s = start_server("--parallel 2");
        char cmd[512];
        snprintf(cmd, sizeof cmd, "curl -sf http://127.0.0.1:%d/ | grep -q 'id=\"send\"'", s.port);
        int rc = system(cmd);
        assert_int_equal(stop_server(s, 15), 0);
        assert_int_equal(rc, 0);
        return;
    }
    server s = start_server("--parallel 4");
    char env[1200];
    snprintf(env, sizeof env, "SHOT=%s", root_path("build/serve_page.png"));
    int rc = run_node("browser.cjs", s, env, 90);
    assert_int_equal(stop_server(s, 15), 0);
    assert_int_equal(rc, 0);
}

/* curl's status code for METHOD PATH on port (BODY if not NULL); the response headers go to tmp hdr.txt. */
static int http_status(int port, const char *method, const char *path, const char *body) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "curl -s -o %s -D %s -w '%%{http_code}' -X %s %s%s%s http://127.0.0.1:%d%s > %s",
             tmp_path("body.txt"), tmp_path("hdr.txt"), method, body ? "-d '" : "", body ? body : "", body ? "'" : "",
             port, path, tmp_path("code.txt"));
    if (system(cmd) != 0) return -1;
    char *code = NULL;
    size_t len = 0;
    if (jl_read_file(tmp_path("code.txt"), &code, &len) != JL_OK) return -1;
    int c = atoi(code);
    free(code);
    return c;
}

static int file_has(const char *path, const char *needle) {
    char *text = NULL;
    size_t len = 0;
    if (jl_read_file(path, &text, &len) != JL_OK) return 0;
    int has = strstr(text, needle) != NULL;
    free(text);
    return has;
}

/* SIGTERM while a long stream runs: the server stops accepting, ends the stream, frees everything, exits 0. */
static void test_sigterm_with_stream(void **state) {
    (void)state;
    server s = start_server("--parallel 2 --grace 1");
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "curl -sN --max-time 30 http://127.0.0.1:%d/v1/chat/completions -d '{\"messages\":[{\"role\":\"user\","
             "\"content\":\"hi\"}],\"stream\":true,\"ignore_eos\":true,\"max_tokens\":100000}' > %s 2>&1 &",
             s.port, tmp_path("stream.out"));
    assert_int_equal(system(cmd), 0);
    for (int i = 0; i < 200 && !file_has(tmp_path("stream.out"), "\"delta\""); i++) usleep(50000); /* streaming */
    assert_int_equal(stop_server(s, 10), 0);
    usleep(300000);
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(jl_read_file(tmp_path("stream.out"), &out, &len), JL_OK);
    assert_non_null(strstr(out, "\"delta\"")); /* it was streaming */
    assert_non_null(strstr(out, "data: [DONE]")); /* and was told the stream ended */
    free(out);
}

/* A model that carries its own (ChatML-like) Jinja chat template: the server renders messages with it. With the
 * byte tokenizer every byte of the rendered prompt is one token, so usage.prompt_tokens is its length. */
static void test_model_chat_template(void **state) {
    (void)state;
    static const char tmpl[] = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
                               "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
    static const char rendered[] = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n";
    jl_checkpoint ck;
    assert_int_equal(jl_checkpoint_load(model_path(), &ck), JL_OK);
    ck.chat_template = strdup(tmpl);
    const char *path = tmp_path("templated.safetensors");
    assert_int_equal(jl_checkpoint_save(path, &ck), JL_OK);
    jl_checkpoint_free(&ck);
    char cmd[1024];
    server s = start_server_on(path, "--parallel 1");
    snprintf(cmd, sizeof cmd,
             "curl -s http://127.0.0.1:%d/v1/chat/completions -d '{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
             "\"max_tokens\":1}' > %s", s.port, tmp_path("tmpl.json"));
    int rc = system(cmd);
    assert_int_equal(stop_server(s, 15), 0);
    assert_int_equal(rc, 0);
    json_object *o = json_object_from_file(tmp_path("tmpl.json")), *usage, *pt;
    assert_non_null(o);
    assert_true(json_object_object_get_ex(o, "usage", &usage) && json_object_object_get_ex(usage, "prompt_tokens", &pt));
    assert_int_equal(json_object_get_int(pt), (int)strlen(rendered));
    json_object_put(o);
}

/* Listening before the model is there (what `jielong serve` does while it loads): /health is 503 "loading" with
 * Retry-After, so is the API (an OpenAI error object, code "loading"); once serve_ready has the model, 200. */
static void test_503_while_loading(void **state) {
    (void)state;
    serve_opts o;
    serve_opts_defaults(&o);
    o.port = 0;
    o.parallel = 2;
    o.threads = 1;
    serve_server *srv;
    assert_int_equal(serve_listen(&o, &srv), JL_OK);
    const int port = serve_port(srv);
    assert_int_equal(http_status(port, "GET", "/health", NULL), 503);
    assert_true(file_has(tmp_path("hdr.txt"), "Retry-After"));
    assert_true(file_has(tmp_path("body.txt"), "loading"));
    assert_int_equal(http_status(port, "POST", "/v1/completions", "{\"prompt\":\"hi\",\"max_tokens\":2}"), 503);
    assert_true(file_has(tmp_path("hdr.txt"), "Retry-After"));
    assert_true(file_has(tmp_path("body.txt"), "\"code\":\"loading\""));
    jl_checkpoint ck;
    jl_tokenizer *tok;
    assert_int_equal(jl_checkpoint_load(model_path(), &ck), JL_OK);
    assert_int_equal(jl_tokenizer_bytes(&tok), JL_OK);
    assert_int_equal(serve_ready(srv, ck.model, NULL, tok, NULL, "tiny"), JL_OK);
    assert_int_equal(http_status(port, "GET", "/health", NULL), 200);
    assert_int_equal(http_status(port, "POST", "/v1/completions", "{\"prompt\":\"hi\",\"max_tokens\":2}"), 200);
    assert_true(file_has(tmp_path("body.txt"), "\"choices\""));
    serve_stop(srv, 1.0);
    jl_tokenizer_free(tok);
    jl_checkpoint_free(&ck);
}

/* The value of a /metrics counter or gauge (-1 if absent). */
static double metric(int port, const char *name) {
    if (http_status(port, "GET", "/metrics", NULL) != 200) return -1;
    char *text = NULL;
    size_t len = 0;
    if (jl_read_file(tmp_path("body.txt"), &text, &len) != JL_OK) return -1;
    char key[256];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *at = strstr(text, key);
    double v = at ? atof(at + strlen(key)) : -1;
    free(text);
    return v;
}

/* A client that leaves a non-streamed request frees its slot (the handler polls its socket); a request past
 * --max-time ends with finish_reason "length" and what it had. A context of 4096 makes the answers long. */
static void test_disconnect_and_max_time(void **state) {
    (void)state;
    jl_checkpoint ck;
    assert_int_equal(jl_checkpoint_load(model_path(), &ck), JL_OK);
    jl_config c = ck.model->cfg;
    c.max_seq_len = 4096;
    jl_model *m;
    assert_int_equal(jl_config_finish(&c), JL_OK);
    assert_int_equal(jl_model_new(&c, &m), JL_OK);
    jl_model_init(m, 5);
    jl_model_free(ck.model);
    ck.model = m;
    const char *path = tmp_path("long.safetensors");
    assert_int_equal(jl_checkpoint_save(path, &ck), JL_OK);
    jl_checkpoint_free(&ck);
    server s = start_server_on(path, "--parallel 2 --max-time 0.5");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "curl -s --max-time 0.3 http://127.0.0.1:%d/v1/completions -d '{\"prompt\":\"hi\","
             "\"max_tokens\":100000,\"ignore_eos\":true}' > /dev/null", s.port);
    assert_true(system(cmd) != 0); /* curl gave up (timeout) */
    double gone = 0, used = 1;
    for (int i = 0; i < 50 && (gone < 1 || used != 0); i++) {
        usleep(100000);
        gone = metric(s.port, "jielong_client_disconnects_total");
        used = metric(s.port, "jielong_kv_slots_used");
    }
    assert_true(gone >= 1);
    assert_true(used == 0);
    /* the wall-time limit: the answer stops early, as "length" */
    assert_int_equal(http_status(s.port, "POST", "/v1/completions",
                                 "{\"prompt\":\"hi\",\"max_tokens\":100000,\"ignore_eos\":true}"), 200);
    json_object *o = json_object_from_file(tmp_path("body.txt")), *ch, *fr, *usage, *ct;
    assert_non_null(o);
    assert_true(json_object_object_get_ex(o, "choices", &ch));
    assert_true(json_object_object_get_ex(json_object_array_get_idx(ch, 0), "finish_reason", &fr));
    assert_string_equal(json_object_get_string(fr), "length");
    assert_true(json_object_object_get_ex(o, "usage", &usage) && json_object_object_get_ex(usage, "completion_tokens", &ct));
    assert_true(json_object_get_int(ct) > 0 && json_object_get_int(ct) < 4000);
    json_object_put(o);
    assert_true(metric(s.port, "jielong_requests_timed_out_total") >= 1);
    assert_int_equal(stop_server(s, 15), 0);
}

static void test_bad_flags(void **state) {
    (void)state;
    char args[1200];
    snprintf(args, sizeof args, "serve --model %s --host not-an-address --port 0", model_path());
    assert_int_equal(run_cli(args, tmp_path("bad.log")), 2);
    assert_int_equal(run_cli("serve --model /nonexistent.safetensors", tmp_path("bad.log")), 2);
    snprintf(args, sizeof args, "serve --model %s --parallel 0", model_path());
    assert_int_equal(run_cli(args, tmp_path("bad.log")), 2);
    assert_int_equal(run_cli("serve --help", tmp_path("bad.log")), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_503_while_loading),
        cmocka_unit_test(test_disconnect_and_max_time),
        cmocka_unit_test(test_openai_client),
        cmocka_unit_test(test_same_seed_alone_or_beside_others),
        cmocka_unit_test(test_load_and_faults),
        cmocka_unit_test(test_browser_page),
        cmocka_unit_test(test_sigterm_with_stream),
        cmocka_unit_test(test_model_chat_template),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
