/* Token streams for pretraining: from shards, from text, and the held-out split. */
#include "jielong/data.h"
#include "jielong/pretrain.h"
#include "io/fileio.h"
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
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

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

jl_status jl_data_kind_of(const char *path, jl_data_kind *kind) {
    struct stat st;
    if (stat(path, &st) != 0) return jl_fail(JL_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        *kind = JL_DATA_FOLDER;
        return JL_OK;
    }
    if (!S_ISREG(st.st_mode)) return jl_fail(JL_ERR_IO, "%s: not a regular file or folder", path);
    unsigned char h[16] = {0};
    long got = jl_read_head(path, h, sizeof h);
    if (got < 0) return jl_fail(JL_ERR_IO, "%s: cannot read", path);
    int32_t magic;
    memcpy(&magic, h, 4);
    uint64_t hlen;
    memcpy(&hlen, h, 8);
    if (got >= 4 && magic == JL_SHARD_MAGIC) *kind = JL_DATA_SHARD;
    else if (got >= 4 && memcmp(h, "GGUF", 4) == 0) *kind = JL_DATA_GGUF;
    else if (got >= 9 && hlen > 1 && hlen < (uint64_t)st.st_size && h[8] == '{') *kind = JL_DATA_SAFETENSORS;
    else if (ends_with(path, ".bin")) /* a damaged shard (or an llm.c model) must not be trained on as text */
        return jl_fail(JL_ERR_FORMAT, "%s: a .bin file but not a token shard (magic 0x%08X, a shard has 0x%08X)", path,
                       (unsigned)magic, (unsigned)JL_SHARD_MAGIC);
    else *kind = JL_DATA_TEXT;
    return JL_OK;
}

const char *jl_data_kind_name(jl_data_kind kind) {
    switch (kind) {
    case JL_DATA_TEXT: return "text file";
    case JL_DATA_SHARD: return "token shard";
    case JL_DATA_FOLDER: return "folder";
    case JL_DATA_GGUF: return "GGUF model file";
    case JL_DATA_SAFETENSORS: return "safetensors model file";
    }
    return "file";
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void jl_paths_free(char **paths, int n) {
    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
}

jl_status jl_prepared_shards(const char *dir, const char *split, char ***paths, int *n_out) {
    *paths = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d) return jl_fail(JL_ERR_IO, "%s: %s", dir, strerror(errno));
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s_", split);
    int n = 0, cap = 0;
    char **v = NULL;
    jl_status st = JL_OK;
    for (struct dirent *e; st == JL_OK && (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || !ends_with(e->d_name, ".bin")) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            char **nv = realloc(v, sizeof *v * (size_t)cap);
            if (!nv) {
                st = jl_fail(JL_ERR_NOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        if (!(v[n] = malloc(len))) {
            st = jl_fail(JL_ERR_NOMEM, "out of memory");
            break;
        }
        snprintf(v[n++], len, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (st != JL_OK) {
        jl_paths_free(v, n);
        return st;
    }
    if (n) qsort(v, (size_t)n, sizeof *v, cmp_str);
    *paths = v;
    *n_out = n;
    return JL_OK;
}

jl_status jl_tokens_load(const char *const *paths, int n_paths, const jl_tokenizer *tok, jl_tokens *train,
                         jl_tokens *val) {
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    if (n_paths < 1) return jl_fail(JL_ERR_ARG, "no training data given");
    int vocab = jl_tokenizer_vocab_size(tok), shards = 0, texts = 0;
    for (int i = 0; i < n_paths; i++) {
        jl_data_kind k = JL_DATA_TEXT;
        jl_status st = jl_data_kind_of(paths[i], &k);
        if (st != JL_OK) return st;
        if (k == JL_DATA_FOLDER && n_paths > 1)
            return jl_fail(JL_ERR_ARG, "%s: a prepared folder is given alone, not beside other data", paths[i]);
        if (k == JL_DATA_GGUF || k == JL_DATA_SAFETENSORS)
            return jl_fail(JL_ERR_ARG, "%s: is a %s, not training data (pass it as --model; --data takes text files, "
                           "token shards or a `jielong prepare` folder)", paths[i], jl_data_kind_name(k));
        shards += k == JL_DATA_SHARD;
        texts += k == JL_DATA_TEXT;
        if (k == JL_DATA_FOLDER) {
            char **tr, **va;
            int ntr, nva;
            if ((st = jl_prepared_shards(paths[i], "train", &tr, &ntr)) != JL_OK) return st;
            if ((st = jl_prepared_shards(paths[i], "val", &va, &nva)) != JL_OK) {
                jl_paths_free(tr, ntr);
                return st;
            }
            st = ntr ? jl_tokens_from_shards((const char *const *)tr, ntr, vocab, train)
                     : jl_fail(JL_ERR_IO, "%s: no train_*.bin shards (make them with jielong prepare, or pass text "
                               "files)", paths[i]);
            if (st == JL_OK && nva) st = jl_tokens_from_shards((const char *const *)va, nva, vocab, val);
            jl_paths_free(tr, ntr);
            jl_paths_free(va, nva);
            if (st != JL_OK) jl_tokens_free(train);
            return st;
        }
    }
    if (shards && texts)
        return jl_fail(JL_ERR_ARG, "--data mixes token shards and text files; give one kind");
    return shards ? jl_tokens_from_shards(paths, n_paths, vocab, train) : jl_tokens_from_text(paths, n_paths, tok, train);
}

jl_status jl_tokens_load_heldout(const char *path, int vocab_size, jl_tokens *out) {
    memset(out, 0, sizeof *out);
    jl_data_kind k = JL_DATA_TEXT;
    jl_status st = jl_data_kind_of(path, &k);
    if (st != JL_OK) return st;
    if (k == JL_DATA_SHARD) return jl_tokens_from_shards(&path, 1, vocab_size, out);
    if (k != JL_DATA_FOLDER) return jl_fail(JL_ERR_ARG, "%s: not a token shard or prepared folder", path);
    char **va;
    int nva;
    if ((st = jl_prepared_shards(path, "val", &va, &nva)) != JL_OK) return st;
    st = nva ? jl_tokens_from_shards((const char *const *)va, nva, vocab_size, out)
             : jl_fail(JL_ERR_IO, "%s: no held-out val_*.bin shards (jielong prepare --val-fraction > 0 writes them)",
                       path);
    jl_paths_free(va, nva);
    return st;
}
