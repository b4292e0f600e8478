/* Text / JSONL → token shards with a held-out split by document (see include/jielong/data.h). */
#include "io/fileio.h"
#include "jielong/data.h"
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    size_t off, len;
} doc_span;

typedef struct {
    doc_span *v;
    size_t n, cap;
} doc_list;

static int push_doc(doc_list *d, size_t off, size_t len) {
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 1024;
        doc_span *v = realloc(d->v, cap * sizeof *v);
        if (!v) return -1;
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n++] = (doc_span){off, len};
    return 0;
}

static int blank_line(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

/* Paragraphs separated by blank lines; each document runs from its first line to the end of its last line. */
static jl_status split_text(const char *text, size_t len, doc_list *docs) {
    size_t pos = 0, doc_start = 0, doc_end = 0;
    int in_doc = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        if (blank_line(text + pos, end - pos)) {
            if (in_doc && push_doc(docs, doc_start, doc_end - doc_start)) goto oom;
            in_doc = 0;
        } else {
            if (!in_doc) doc_start = pos;
            in_doc = 1;
            doc_end = end;
        }
        pos = end + 1;
    }
    if (in_doc && push_doc(docs, doc_start, doc_end - doc_start)) goto oom;
    return JL_OK;
oom:
    return jl_fail(JL_ERR_NOMEM, "out of memory (documents)");
}

jl_status jl_encode_documents(const jl_tokenizer *tok, const char *text, size_t len, int32_t **ids, size_t *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    int32_t bos = jl_tokenizer_bos(tok); /* <|bos|>, or a foreign tokenizer's own */
    if (bos < 0) return jl_fail(JL_ERR_ARG, "the tokenizer has no beginning-of-document token (<|bos|>, its BOS or "
                                            "<|endoftext|>) to separate documents");
    doc_list docs = {0};
    jl_status st = split_text(text, len, &docs);
    size_t cap = 0;
    for (size_t d = 0; st == JL_OK && d < docs.n; d++) {
        int32_t *doc_ids = NULL;
        size_t n = 0;
        st = jl_tokenizer_encode(tok, text + docs.v[d].off, docs.v[d].len, 0, &doc_ids, &n);
        if (st == JL_OK && *n_ids + n + 1 > cap) {
            size_t want = (*n_ids + n + 1) * 2;
            int32_t *p = realloc(*ids, want * sizeof(int32_t));
            if (!p) st = jl_fail(JL_ERR_NOMEM, "out of memory (tokens)");
            else {
                *ids = p;
                cap = want;
            }
        }
        if (st == JL_OK) {
            (*ids)[(*n_ids)++] = bos;
            memcpy(*ids + *n_ids, doc_ids, n * sizeof(int32_t));
            *n_ids += n;
        }
        free(doc_ids);
    }
    free(docs.v);
    if (st != JL_OK) {
        free(*ids);
        *ids = NULL;
        *n_ids = 0;
    }
    return st;
}

/* One {"text": "..."} object a line; the texts are copied back to back into *arena. */
static jl_status split_jsonl(const char *path, const char *text, size_t len, doc_list *docs, char **arena) {
    char *out = malloc(len + 1); /* a JSON string's value is never longer than its source */
    if (!out) return jl_fail(JL_ERR_NOMEM, "out of memory");
    size_t out_len = 0, pos = len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0; /* byte order mark */
    int line_no = 0;
    json_tokener *tk = json_tokener_new();
    jl_status st = tk ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory");
    while (pos < len && st == JL_OK) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        line_no++;
        if (!blank_line(text + pos, end - pos)) {
            json_tokener_reset(tk);
            json_object *o = end - pos > INT_MAX ? NULL : json_tokener_parse_ex(tk, text + pos, (int)(end - pos));
            json_object *t = NULL;
            if (!o || json_tokener_get_error(tk) != json_tokener_success) {
                st = jl_fail(JL_ERR_FORMAT, "%s:%d: invalid JSON", path, line_no);
            } else if (json_object_get_type(o) != json_type_object || !json_object_object_get_ex(o, "text", &t) ||
                       json_object_get_type(t) != json_type_string) {
                st = jl_fail(JL_ERR_FORMAT, "%s:%d: expected an object with a \"text\" string", path, line_no);
            } else {
                size_t n = (size_t)json_object_get_string_len(t);
                memcpy(out + out_len, json_object_get_string(t), n);
                if (push_doc(docs, out_len, n)) st = jl_fail(JL_ERR_NOMEM, "out of memory (documents)");
                out_len += n;
            }
            json_object_put(o);
        }
        pos = end + 1;
    }
    if (tk) json_tokener_free(tk);
    if (st != JL_OK) {
        free(out);
        return st;
    }
    *arena = out;
    return JL_OK;
}

static int is_jsonl(const char *path, const char *format) {
    if (format && !strcmp(format, "jsonl")) return 1;
    if (format && !strcmp(format, "text")) return 0;
    size_t n = strlen(path);
    return n >= 6 && !strcmp(path + n - 6, ".jsonl");
}

/* A hash of (seed, document index) in [0, 1): the split does not depend on batching or threads. */
static double doc_draw(uint64_t seed, uint64_t index) {
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + index * 0xBF58476D1CE4E5B9ull + 0x94D049BB133111EBull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

typedef struct {
    int32_t *v;
    size_t n, cap;
} id_buf;

static int id_buf_reserve(id_buf *b, size_t extra) {
    if (b->n + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->n + extra) cap *= 2;
    int32_t *v = realloc(b->v, cap * sizeof *v);
    if (!v) return -1;
    b->v = v;
    b->cap = cap;
    return 0;
}

typedef struct {
    const jl_prepare_opts *o;
    const jl_tokenizer *tok;
    int32_t bos;
    size_t shard_tokens;
    id_buf train, val;
    int train_shards, val_shards;
    uint64_t doc_index;
    int any_val;
    jl_prepare_stats *stats;
} prep;

/* Writes full shards (and, when final, the rest: at least one shard, possibly empty) of one split. */
static jl_status flush(prep *p, id_buf *b, const char *split, int *shard_no, int final) {
    while (b->n >= p->shard_tokens || (final && (b->n > 0 || *shard_no == 0))) {
        size_t n = b->n < p->shard_tokens ? b->n : p->shard_tokens;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s_%03d.bin", p->o->out_dir, split, *shard_no);
        jl_status st = jl_shard_write(path, b->v, n, jl_tokenizer_vocab_size(p->tok));
        if (st != JL_OK) return st;
        if (b->n > n) memmove(b->v, b->v + n, (b->n - n) * sizeof *b->v);
        b->n -= n;
        (*shard_no)++;
        if (final && b->n == 0) break;
    }
    return JL_OK;
}

/* Shards left from an earlier, longer run would be read as part of this one: remove them. */
static void remove_stale(const char *dir, const char *split, int from) {
    for (int k = from;; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s_%03d.bin", dir, split, k);
        if (unlink(path) != 0) break;
    }
}

/* Encodes a batch of documents on all threads, then appends <|bos|> + ids of each to its split in order. */
static jl_status encode_batch(prep *p, const char *base, const doc_span *docs, size_t n, int last_batch) {
    int32_t **ids = calloc(n ? n : 1, sizeof *ids);
    size_t *lens = calloc(n ? n : 1, sizeof *lens);
    if (!ids || !lens) {
        free(ids);
        free(lens);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    jl_status st = JL_OK;
    char first_error[1024] = "";
#pragma omp parallel for schedule(dynamic, 8)
    for (size_t i = 0; i < n; i++) {
        jl_status s = jl_tokenizer_encode(p->tok, base + docs[i].off, docs[i].len, 0, &ids[i], &lens[i]);
        if (s != JL_OK) {
#pragma omp critical(jl_prepare_error)
            if (st == JL_OK) {
                st = s;
                snprintf(first_error, sizeof first_error, "%s", jl_last_error());
            }
        }
    }
    if (st != JL_OK) jl_fail(st, "%s", first_error);
    for (size_t i = 0; i < n && st == JL_OK; i++) {
        int to_val = doc_draw(p->o->seed, p->doc_index++) < p->o->val_fraction;
        /* the guaranteed held-out document: the last one, when the hash picked none */
        if (!to_val && last_batch && i + 1 == n && !p->any_val && p->o->val_fraction > 0 && p->doc_index >= 2)
            to_val = 1;
        p->any_val |= to_val;
        id_buf *b = to_val ? &p->val : &p->train;
        if (id_buf_reserve(b, lens[i] + 1)) {
            st = jl_fail(JL_ERR_NOMEM, "out of memory (%zu tokens)", b->n + lens[i] + 1);
            break;
        }
        b->v[b->n++] = p->bos;
        memcpy(b->v + b->n, ids[i], lens[i] * sizeof(int32_t));
        b->n += lens[i];
        if (to_val) {
            p->stats->docs_val++;
            p->stats->tokens_val += lens[i] + 1;
        } else {
            p->stats->docs_train++;
            p->stats->tokens_train += lens[i] + 1;
        }
        if (!to_val) st = flush(p, &p->train, "train", &p->train_shards, 0);
    }
    for (size_t i = 0; i < n; i++) free(ids[i]);
    free(ids);
    free(lens);
    return st;
}

enum { BATCH_BYTES = 8 << 20 };

static jl_status prepare_file(prep *p, const char *path, int last_file, double *bytes_done, double bytes_total) {
    char *text, *arena = NULL;
    size_t len;
    jl_status st = jl_read_file(path, &text, &len);
    if (st != JL_OK) return st;
    doc_list docs = {0};
    int jsonl = is_jsonl(path, p->o->format);
    const size_t bom = !jsonl && len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0; /* byte order mark */
    st = jsonl ? split_jsonl(path, text, len, &docs, &arena) : split_text(text + bom, len - bom, &docs);
    const char *base = jsonl ? arena : text + bom;
    for (size_t first = 0; first < docs.n && st == JL_OK;) {
        size_t end = first, bytes = 0;
        while (end < docs.n && (end == first || bytes < BATCH_BYTES)) bytes += docs.v[end++].len;
        st = encode_batch(p, base, docs.v + first, end - first, last_file && end == docs.n);
        first = end;
        if (p->o->progress) p->o->progress(p->o->progress_user, "prepare", *bytes_done + (double)bytes, bytes_total);
        *bytes_done += (double)bytes;
    }
    free(docs.v);
    free(arena);
    free(text);
    p->stats->bytes_in += len;
    return st;
}

static double total_input_bytes(const jl_prepare_opts *o) {
    double total = 0;
    for (int k = 0; k < o->n_inputs; k++) {
        struct stat sb;
        if (stat(o->inputs[k], &sb) == 0) total += (double)sb.st_size;
    }
    return total;
}

static jl_status copy_tokenizer(const jl_prepare_opts *o) {
    char *json, path[4096];
    size_t len;
    jl_status st = jl_read_file(o->tokenizer_path, &json, &len);
    if (st != JL_OK) return st;
    snprintf(path, sizeof path, "%s/tokenizer.json", o->out_dir);
    st = jl_write_file_atomic(path, json, len);
    free(json);
    return st;
}

jl_status jl_prepare(const jl_prepare_opts *o, jl_prepare_stats *stats) {
    memset(stats, 0, sizeof *stats);
    if (!(o->val_fraction >= 0 && o->val_fraction < 1))
        return jl_fail(JL_ERR_ARG, "val fraction %g must be in [0, 1)", o->val_fraction);
    if (o->n_inputs <= 0) return jl_fail(JL_ERR_ARG, "no input files");
    if (o->format && strcmp(o->format, "auto") && strcmp(o->format, "text") && strcmp(o->format, "jsonl"))
        return jl_fail(JL_ERR_ARG, "format '%s': expected auto, text or jsonl", o->format);
    if (strlen(o->out_dir) > 3000) return jl_fail(JL_ERR_ARG, "output folder name too long");
    jl_tokenizer *tok;
    jl_status st = jl_tokenizer_load(o->tokenizer_path, &tok);
    if (st != JL_OK) return st;
    prep p = {.o = o, .tok = tok, .bos = jl_tokenizer_bos(tok), .stats = stats,
              .shard_tokens = o->shard_tokens ? o->shard_tokens : 100000000};
    if (p.bos < 0)
        st = jl_fail(JL_ERR_ARG, "%s: the tokenizer has no beginning-of-document token (<|bos|>, its BOS or "
                     "<|endoftext|>) to separate documents", o->tokenizer_path);
    if (st == JL_OK) st = jl_mkdir_p(o->out_dir);
    double done = 0, total = total_input_bytes(o);
    for (int k = 0; k < o->n_inputs && st == JL_OK; k++)
        st = prepare_file(&p, o->inputs[k], k + 1 == o->n_inputs, &done, total);
    if (st == JL_OK && stats->docs_train + stats->docs_val == 0)
        st = jl_fail(JL_ERR_ARG, "empty corpus: no documents in the input files");
    else if (st == JL_OK && stats->docs_train == 0)
        st = jl_fail(JL_ERR_ARG, "the train split is empty: all %llu documents went to validation (--val-fraction %g)",
                     (unsigned long long)stats->docs_val, o->val_fraction);
    else if (st == JL_OK && o->val_fraction > 0 && stats->docs_val == 0)
        st = jl_fail(JL_ERR_ARG, "the validation split is empty: %llu document(s) is too few to hold one out "
                     "(--val-fraction 0 for none)", (unsigned long long)stats->docs_train);
    if (st == JL_OK) st = flush(&p, &p.train, "train", &p.train_shards, 1);
    if (st == JL_OK) st = flush(&p, &p.val, "val", &p.val_shards, 1);
    if (st == JL_OK) st = copy_tokenizer(o);
    if (st == JL_OK) {
        remove_stale(o->out_dir, "train", p.train_shards);
        remove_stale(o->out_dir, "val", p.val_shards);
        stats->train_shards = p.train_shards;
    }
    free(p.train.v);
    free(p.val.v);
    jl_tokenizer_free(tok);
    return st;
}
