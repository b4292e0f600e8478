/* Token streams for pretraining: from shards, from text, and the held-out split. */
#include "jielong/data.h"
#include "jielong/pretrain.h"
#include "io/fileio.h"
#include <stdlib.h>
#include <string.h>

void jl_tokens_free(jl_tokens *t) {
    free(t->ids);
    memset(t, 0, sizeof *t);
}

static jl_status tokens_reserve(jl_tokens *t, size_t extra, size_t *cap);

static jl_status tokens_append(jl_tokens *t, const int32_t *ids, size_t n, size_t *cap) {
    jl_status st = tokens_reserve(t, n, cap);
    if (st != JL_OK) return st;
    memcpy(t->ids + t->n, ids, n * sizeof(int32_t));
    t->n += n;
    return JL_OK;
}

static jl_status tokens_reserve(jl_tokens *t, size_t extra, size_t *cap) {
    if (t->n + extra <= *cap) return JL_OK;
    size_t want = (t->n + extra) * 3 / 2 + 1024;
    int32_t *p = realloc(t->ids, want * sizeof(int32_t));
    if (!p) return jl_fail(JL_ERR_NOMEM, "out of memory for %zu tokens", want);
    t->ids = p;
    *cap = want;
    return JL_OK;
}

jl_status jl_tokens_from_shards(const char *const *paths, int n_paths, int vocab_size, jl_tokens *out) {
    memset(out, 0, sizeof *out);
    size_t cap = 0;
    jl_status st = JL_OK;
    for (int i = 0; i < n_paths && st == JL_OK; i++) {
        jl_shard *s;
        if ((st = jl_shard_open(paths[i], &s)) != JL_OK) break;
        size_t n = jl_shard_count(s);
        if (jl_shard_vocab(s) > vocab_size)
            st = jl_fail(JL_ERR_FORMAT, "%s: shard vocabulary %d is larger than the model's %d", paths[i],
                         jl_shard_vocab(s), vocab_size);
        if (st == JL_OK) st = tokens_reserve(out, n, &cap);
        if (st == JL_OK) st = jl_shard_read(s, 0, n, out->ids + out->n);
        if (st == JL_OK) out->n += n;
        jl_shard_close(s);
    }
    if (st == JL_OK && out->n == 0) st = jl_fail(JL_ERR_FORMAT, "%s: no tokens", n_paths ? paths[0] : "(no shards)");
    if (st != JL_OK) jl_tokens_free(out);
    return st;
}

jl_status jl_tokens_from_text(const char *const *paths, int n_paths, const jl_tokenizer *tok, jl_tokens *out) {
    memset(out, 0, sizeof *out);
    size_t cap = 0;
    jl_status st = JL_OK;
    for (int i = 0; i < n_paths && st == JL_OK; i++) {
        char *text;
        size_t len;
        if ((st = jl_read_file(paths[i], &text, &len)) != JL_OK) break;
        int32_t *ids = NULL;
        size_t n = 0;
        st = jl_encode_documents(tok, text, len, &ids, &n);
        if (st != JL_OK) jl_fail_context(st, "%s", paths[i]);
        if (st == JL_OK) st = tokens_append(out, ids, n, &cap);
        free(ids);
        free(text);
    }
    if (st == JL_OK && out->n <= 1) st = jl_fail(JL_ERR_FORMAT, "%s: empty training text", n_paths ? paths[0] : "(none)");
    if (st != JL_OK) jl_tokens_free(out);
    return st;
}

/* The held-out share is taken as up to 16 equal pieces spread evenly over the stream (each at least one window),
 * so a corpus made of several files or kinds of text is held out from all of them, not only from its last file. */
jl_status jl_tokens_split(jl_tokens *train, double fraction, int T, jl_tokens *val) {
    memset(val, 0, sizeof *val);
    if (fraction <= 0) return JL_OK;
    size_t n = train->n, n_val = (size_t)((double)n * fraction);
    if (n_val < (size_t)T + 1) n_val = (size_t)T + 1;
    if (n < n_val + (size_t)T + 1)
        return jl_fail(JL_ERR_ARG, "%zu tokens are too few for a held-out split and sequences of %d", n, T);
    size_t pieces = n_val / ((size_t)T + 1);
    if (pieces > 16) pieces = 16;
    if (pieces < 1) pieces = 1;
    size_t piece = n_val / pieces, seg = n / pieces;
    n_val = piece * pieces;
    val->ids = malloc(n_val * sizeof(int32_t));
    if (!val->ids) return jl_fail(JL_ERR_NOMEM, "out of memory");
    /* piece k is the last `piece` tokens of segment k; train keeps the rest of each segment, in order */
    size_t w = 0;
    for (size_t k = 0; k < pieces; k++) {
        size_t seg_start = k * seg, seg_end = k + 1 == pieces ? n : (k + 1) * seg, cut = seg_end - piece;
        memcpy(val->ids + k * piece, train->ids + cut, piece * sizeof(int32_t));
        memmove(train->ids + w, train->ids + seg_start, (cut - seg_start) * sizeof(int32_t));
        w += cut - seg_start;
    }
    val->n = n_val;
    train->n = w;
    return JL_OK;
}
