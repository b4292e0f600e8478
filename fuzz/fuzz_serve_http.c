/* Raw bytes as an HTTP request to a live server in this process: `jielong serve`'s daemon (serve_start, as the
 * CLI runs it: libmicrohttpd's request-line, header and body parsing, then our routing, authorisation and
 * request handling) with a tiny random model on 127.0.0.1. Each input goes on a fresh connection whose write
 * side is then shut; the answer is read for at most ANSWER_S seconds. The daemon must answer with an HTTP
 * status line ("HTTP/1.x NNN ", 100 ≤ NNN ≤ 599) or close without a byte, never hang, and stay up: every 64th
 * input, and after any input it closed without answering, GET /health must still be 200.
 * libmicrohttpd is the system library (not instrumented): coverage feedback comes from our handlers. */
#include "fuzz_util.h"
#include "jielong/tokenizer.h"
#include "model/model.h"
#include "serve/serve.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

enum { ANSWER_S = 10, HEALTH_EVERY = 64 };

static serve_server *srv;
static jl_model *model;
static jl_tokenizer *tok;
static int port;

static void stop_server(void) {
    serve_stop(srv, 0.0);
    jl_model_free(model);
    jl_tokenizer_free(tok);
}

/* A one-layer llama of width 16 over the byte tokenizer, context 32: generation is quick and bounded. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    jl_config c;
    if (jl_tokenizer_bytes(&tok) != JL_OK) abort();
    jl_config_from_depth(&c, JL_ARCH_LLAMA, 1, jl_tokenizer_vocab_size(tok), 32);
    c.dim = 16;
    c.n_head = 2;
    c.n_kv_head = 1;
    c.hidden_dim = 32;
    if (jl_config_finish(&c) != JL_OK || jl_model_new(&c, &model) != JL_OK) abort();
    jl_model_init(model, 7);
    serve_opts o;
    serve_opts_defaults(&o);
    o.model = model;
    o.tok = tok;
    o.model_name = "tiny";
    o.port = 0;
    o.parallel = 2;
    o.threads = 1;
    o.max_queue = 8;
    o.timeout_s = 2;         /* a connection that stalls mid-request is closed by the daemon */
    o.max_request_s = 0.5;   /* and a generation is cut */
    o.max_body = 1u << 16;   /* larger bodies: 413 */
    if (serve_start(&o, &srv) != JL_OK) {
        fprintf(stderr, "fuzz_serve_http: %s\n", jl_last_error());
        abort();
    }
    port = serve_port(srv);
    atexit(stop_server);
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A connect() that a signal interrupted (libFuzzer's timers: EINTR) goes on in the background: waits until the
 * socket is writable and returns 1 when it connected; 0 with errno set otherwise. */
static int connect_finish(int fd) {
    if (errno != EINTR) return 0;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    for (int k = 0; k < 100; k++) {
        int r = poll(&p, 1, 100);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return 0;
        errno = err;
        return err == 0;
    }
    errno = ETIMEDOUT;
    return 0;
}

/* Sends data on a new connection, shuts the write side and reads the answer into buf (up to cap − 1 bytes,
 * the rest drained) until the daemon closes or ANSWER_S pass. Returns the bytes kept; *closed = 1 when the
 * daemon closed (or reset) the connection within the time. */
static size_t exchange(const uint8_t *data, size_t size, char *buf, size_t cap, int *closed) {
    *closed = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) abort();
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && !connect_finish(fd)) {
        fprintf(stderr, "fuzz_serve_http: cannot connect to the daemon: %s\n", strerror(errno));
        abort(); /* the daemon is gone */
    }
    for (size_t off = 0; off < size;) { /* the daemon may answer and close before it has read everything */
        ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (w <= 0) break;
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    size_t n = 0;
    const double end = now_s() + ANSWER_S;
    for (double left; (left = end - now_s()) > 0;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(left * 1000) + 1) <= 0) continue;
        char scratch[4096];
        char *to = n + 1 < cap ? buf + n : scratch;
        size_t room = n + 1 < cap ? cap - 1 - n : sizeof scratch;
        ssize_t r = recv(fd, to, room, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            *closed = 1;
            break;
        }
        if (to != scratch) n += (size_t)r;
    }
    buf[n] = '\0';
    close(fd);
    return n;
}

/* 1 if buf starts with "HTTP/1.x NNN " and 100 ≤ NNN ≤ 599. */
static int status_line(const char *buf, size_t n, int *code) {
    if (n < 13 || memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') || buf[8] != ' ' ||
        buf[12] != ' ')
        return 0;
    *code = 0;
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9') return 0;
        *code = *code * 10 + (buf[i] - '0');
    }
    return *code >= 100 && *code <= 599;
}

static void check_health(void) {
    static const char req[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    char buf[1024];
    int closed, code = 0;
    size_t n = exchange((const uint8_t *)req, sizeof req - 1, buf, sizeof buf, &closed);
    if (!status_line(buf, n, &code) || code != 200) {
        fprintf(stderr, "fuzz_serve_http: the daemon no longer answers GET /health with 200 (got %zu bytes: %.40s)\n",
                n, buf);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static unsigned long inputs;
    static char buf[1 << 16];
    int closed, code = 0;
    size_t n = exchange(data, size, buf, sizeof buf, &closed);
    if (n > 0 && !status_line(buf, n, &code)) {
        fprintf(stderr, "fuzz_serve_http: the answer does not start with an HTTP status line: %.40s\n", buf);
        abort();
    }
    if (n == 0 && !closed) {
        fprintf(stderr, "fuzz_serve_http: no answer and no close within %d s\n", ANSWER_S);
        abort();
    }
    if (++inputs % HEALTH_EVERY == 0 || n == 0) check_health();
    return 0;
}
