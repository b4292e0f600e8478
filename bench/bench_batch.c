/* Batched decoding step without HTTP: the stories110M shape (random weights, vocab 32000, fp32), S slots each
 * prefilled with BB_KEYS tokens, then BB_STEPS decode steps of one row per slot (jl_batch_forward, the server's
 * step). Prints per step the wall and the process CPU milliseconds and the generated tokens per CPU-second, which
 * say more than wall-clock rates on a loaded machine; A/B two builds by running this bench of each in turn.
 * BB_ROWS="1 16" (rows per step), BB_KEYS (default 60: the mean context of bench_serve's 64-token streams),
 * BB_STEPS (default 16), BB_SHAPE=15M|110M (default 110M), BB_SPLIT="0 4" (jl_batch_set_split's rows per thread,
 * each in turn; default JL_BATCH_SPLIT_DEFAULT, 0), BB_TYPE=f32|q8_0|q4_0 (default f32: the linears' weights). */
#include "core/timer.h"
#include "infer/batch.h"
#include "infer/qweights.h"
#include "model/model.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static double cpu_s(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

/* One run of S slots: prefill, then the timed decode steps; returns 0 on an error (printed). */
static int run(const jl_model *m, const jl_qweights *qw, int S, int keys, int steps, int split) {
    jl_batch *b;
    if (jl_batch_new(m, qw, S, keys + steps + 1, S > keys ? S : keys, &b) != JL_OK) {
        printf("batch: %s\n", jl_last_error());
        return 0;
    }
    jl_batch_set_split(b, split);
    int32_t *tok = malloc(sizeof *tok * (size_t)(keys + steps) * S);
    jl_batch_item *items = malloc(sizeof *items * (size_t)S);
    for (int i = 0; i < (keys + steps) * S; i++) tok[i] = (int32_t)((i * 7919u) % 32000u);
    const float *lg;
    int ld, ok = 1;
    for (int s = 0; s < S && ok; s++) {
        jl_batch_item it = {s, tok + (size_t)s * (keys + steps), keys, JL_BATCH_LOGITS_LAST};
        ok = jl_batch_forward(b, &it, 1, &lg, &ld) == JL_OK;
    }
    double w0 = jl_now(), c0 = cpu_s();
    for (int k = 0; k < steps && ok; k++) {
        for (int s = 0; s < S; s++) items[s] = (jl_batch_item){s, tok + (size_t)s * (keys + steps) + keys + k, 1, JL_BATCH_LOGITS_LAST};
        ok = jl_batch_forward(b, items, S, &lg, &ld) == JL_OK;
    }
    const double wall = jl_now() - w0, cpu = cpu_s() - c0;
    if (ok)
        printf("    %2d rows, %d keys, split %d: %7.2f ms per step wall, %7.2f CPU-ms per step, %7.1f tok/s wall, %7.1f tok per CPU-s\n",
               S, keys, split, 1e3 * wall / steps, 1e3 * cpu / steps, S * steps / wall, S * steps / cpu);
    else printf("step: %s\n", jl_last_error());
    free(tok);
    free(items);
    jl_batch_free(b);
    return ok;
}

int main(void) {
    const char *rs = getenv("BB_ROWS"), *sp = getenv("BB_SPLIT"), *ks = getenv("BB_KEYS"), *ss = getenv("BB_STEPS"), *shape = getenv("BB_SHAPE");
    const int keys = ks ? atoi(ks) : 60, steps = ss ? atoi(ss) : 16, small = shape && strcmp(shape, "15M") == 0;
    if (keys < 1 || steps < 1) {
        printf("BB_KEYS and BB_STEPS must be positive\n");
        return 1;
    }
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, small ? 6 : 12, 32000, keys + steps + 1);
    c.dim = small ? 288 : 768;
    c.n_head = c.n_kv_head = small ? 6 : 12;
    c.hidden_dim = small ? 768 : 2048;
    c.tie_embeddings = 1;
    jl_model *m;
    if (jl_config_finish(&c) != JL_OK || jl_model_new(&c, &m) != JL_OK) {
        printf("model: %s\n", jl_last_error());
        return 1;
    }
    jl_model_init(m, 1);
    const char *ts = getenv("BB_TYPE");
    jl_qweights *qw = NULL;
    if (ts && strcmp(ts, "f32") != 0) {
        if (jl_qweights_quantize(m, ts, &qw) != JL_OK) {
            printf("BB_TYPE %s: %s\n", ts, jl_last_error());
            jl_model_free(m);
            return 1;
        }
    }
    printf("stories%s %s batch step, %d threads\n", small ? "15M" : "110M", ts ? ts : "f32", omp_get_max_threads());
    int ok = 1;
    for (const char *p = rs ? rs : "1 16"; *p && ok;) {
        char *end;
        long S = strtol(p, &end, 10);
        if (end == p) break;
        for (const char *q = sp ? sp : "0"; *q && ok;) { /* each split setting in turn (jl_batch_set_split) */
            char *qe;
            long split = strtol(q, &qe, 10);
            if (qe == q) break;
            ok = S >= 1 && S <= 4096 && run(m, qw, (int)S, keys, steps, (int)split);
            q = qe;
        }
        p = end;
    }
    jl_qweights_free(qw);
    jl_model_free(m);
    return ok ? 0 : 1;
}
