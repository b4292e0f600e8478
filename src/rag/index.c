/* The index file: open/create, schema and meta, and incremental builds in one transaction. */
#include "io/fileio.h"
#include "rag/rag_internal.h"
#include <dirent.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define INDEX_FORMAT "jielong-index 1"

void jl_index_defaults(jl_index_options *o) {
    memset(o, 0, sizeof *o);
    o->chunk_chars = 400;
    o->overlap = 50;
}

jl_status jl_rag_sql_fail(const jl_index *ix, const char *what) {
    int code = sqlite3_errcode(ix->db);
    jl_status st = code == SQLITE_NOTADB || code == SQLITE_CORRUPT ? JL_ERR_FORMAT
                   : code == SQLITE_INTERRUPT                        ? JL_ERR_RUNTIME
                   : code == SQLITE_NOMEM                            ? JL_ERR_NOMEM
                                                                     : JL_ERR_IO;
    if (code == SQLITE_INTERRUPT) return jl_fail(st, "%s: %s: timed out", ix->path, what);
    return jl_fail(st, "%s: %s: %s", ix->path, what, sqlite3_errmsg(ix->db));
}

jl_status jl_rag_exec(jl_index *ix, const char *sql) {
    return sqlite3_exec(ix->db, sql, NULL, NULL, NULL) == SQLITE_OK ? JL_OK : jl_rag_sql_fail(ix, "sql");
}

char *jl_rag_meta_get(jl_index *ix, const char *key) {
    sqlite3_stmt *st;
    char *v = NULL;
    if (sqlite3_prepare_v2(ix->db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL) != SQLITE_OK) return NULL;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return v;
}

jl_status jl_rag_meta_set(jl_index *ix, const char *key, const char *value) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ix->db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)", -1, &st, NULL) !=
        SQLITE_OK)
        return jl_rag_sql_fail(ix, "meta");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? JL_OK : jl_rag_sql_fail(ix, "meta");
}

void jl_index_set_query_terms(jl_index *ix, int terms) { ix->query_terms = terms; }
void jl_index_set_dense_center(jl_index *ix, int on) { ix->dense_center = on; }

static const char *const schema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS files(id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, size INTEGER NOT NULL,"
    " hash TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS passages(id INTEGER PRIMARY KEY, file_id INTEGER NOT NULL, start INTEGER NOT NULL,"
    " end INTEGER NOT NULL, text TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS passages_file ON passages(file_id);"
    "CREATE TABLE IF NOT EXISTS embeddings(id INTEGER PRIMARY KEY, vec BLOB NOT NULL);";

/* Reads the meta of an existing index (or none for a new file). */
static jl_status load_meta(jl_index *ix) {
    sqlite3_stmt *st;
    int has_meta = 0;
    if (sqlite3_prepare_v2(ix->db, "SELECT count(*) FROM sqlite_master WHERE name = 'meta'", -1, &st, NULL) !=
        SQLITE_OK)
        return jl_rag_sql_fail(ix, "open");
    if (sqlite3_step(st) == SQLITE_ROW) has_meta = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (!has_meta) return JL_OK;
    char *format = jl_rag_meta_get(ix, "format");
    int ok = format && !strcmp(format, INDEX_FORMAT);
    free(format);
    if (!ok) return jl_fail(JL_ERR_FORMAT, "%s: not a jielong index (meta.format is not '%s')", ix->path, INDEX_FORMAT);
    ix->tokenizer = jl_rag_meta_get(ix, "tokenizer");
    ix->embed_model = jl_rag_meta_get(ix, "embed_model");
    char *dim = jl_rag_meta_get(ix, "embed_dim");
    ix->embed_dim = dim ? atoi(dim) : 0;
    free(dim);
    return JL_OK;
}

jl_status jl_index_open(const char *path, int create, jl_index **out) {
    *out = NULL;
    struct stat sb;
    if (!create && stat(path, &sb) != 0) return jl_fail(JL_ERR_IO, "%s: no such index", path);
    jl_index *ix = calloc(1, sizeof *ix);
    if (!ix || !(ix->path = strdup(path))) {
        free(ix);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    jl_status st = JL_OK;
    if (sqlite3_open_v2(path, &ix->db, flags, NULL) != SQLITE_OK) st = jl_rag_sql_fail(ix, "open");
    if (st == JL_OK && jl_rag_register_tokenizer(ix->db) != SQLITE_OK)
        st = jl_fail(JL_ERR_RUNTIME, "%s: SQLite has no FTS5", path);
    ix->query_terms = JL_TERMS_BIGRAM; /* measured best on the poem questions (bench/bench_rag.c) */
    if (st == JL_OK) sqlite3_busy_timeout(ix->db, 5000);
    if (st == JL_OK) st = load_meta(ix);
    if (st != JL_OK) {
        jl_index_close(ix);
        return st;
    }
    *out = ix;
    return JL_OK;
}

void jl_index_close(jl_index *ix) {
    if (!ix) return;
    sqlite3_close(ix->db);
    free(ix->path);
    free(ix->tokenizer);
    free(ix->embed_model);
    free(ix->embed_mean);
    free(ix);
}

jl_status jl_index_info(jl_index *ix, size_t *passages, size_t *files, const char **embed_model) {
    *passages = *files = 0;
    *embed_model = ix->embed_model;
    if (!ix->tokenizer) return JL_OK;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ix->db, "SELECT (SELECT count(*) FROM passages), (SELECT count(*) FROM files)", -1, &st,
                           NULL) != SQLITE_OK)
        return jl_rag_sql_fail(ix, "info");
    if (sqlite3_step(st) == SQLITE_ROW) {
        *passages = (size_t)sqlite3_column_int64(st, 0);
        *files = (size_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return JL_OK;
}

/* ---- build ---- */

typedef struct {
    jl_index *ix;
    const jl_index_options *o;
    jl_embedder *e;
    jl_index_progress progress;
    void *user;
    jl_index_stats *stats;
    size_t done;
    sqlite3_stmt *ins_passage, *ins_fts;
} build_ctx;

/* Creates the tables of a new index, or checks that the settings match those it was built with. */
static jl_status setup_meta(jl_index *ix, const jl_index_options *o, const jl_embedder *e) {
    char chunk[32], overlap[32];
    snprintf(chunk, sizeof chunk, "%d", o->chunk_chars);
    snprintf(overlap, sizeof overlap, "%d", o->overlap);
    const char *fields = o->fields ? o->fields : "";
    if (!ix->tokenizer) {
        const char *tk = o->tokenizer ? o->tokenizer : "jlhan";
        if (strcmp(tk, "jlhan") && strcmp(tk, "trigram"))
            return jl_fail(JL_ERR_ARG, "tokenizer '%s': jlhan or trigram", tk);
        char sql[160];
        snprintf(sql, sizeof sql, "CREATE VIRTUAL TABLE fts USING fts5(text, tokenize='%s');", tk);
        jl_status st = jl_rag_exec(ix, schema);
        if (st == JL_OK) st = jl_rag_exec(ix, sql);
        if (st == JL_OK) st = jl_rag_meta_set(ix, "format", INDEX_FORMAT);
        if (st == JL_OK) st = jl_rag_meta_set(ix, "tokenizer", tk);
        if (st == JL_OK) st = jl_rag_meta_set(ix, "chunk_chars", chunk);
        if (st == JL_OK) st = jl_rag_meta_set(ix, "overlap", overlap);
        if (st == JL_OK) st = jl_rag_meta_set(ix, "fields", fields);
        if (st == JL_OK && !(ix->tokenizer = strdup(tk))) st = jl_fail(JL_ERR_NOMEM, "out of memory");
        if (st != JL_OK) return st;
    } else {
        if (o->tokenizer && strcmp(o->tokenizer, ix->tokenizer))
            return jl_fail(JL_ERR_ARG, "%s: built with tokenizer %s, not %s", ix->path, ix->tokenizer, o->tokenizer);
        const char *keys[] = {"chunk_chars", "overlap", "fields"}, *want[] = {chunk, overlap, fields};
        for (int i = 0; i < 3; i++) {
            char *have = jl_rag_meta_get(ix, keys[i]);
            int same = have && !strcmp(have, want[i]);
            jl_status st = same ? JL_OK
                                : jl_fail(JL_ERR_ARG, "%s: built with %s '%s', not '%s' (build a new index to change it)",
                                          ix->path, keys[i], have ? have : "?", want[i]);
            free(have);
            if (st != JL_OK) return st;
        }
    }
    const char *model = o->model_id ? o->model_id : "model";
    if (ix->embed_model && !e)
        return jl_fail(JL_ERR_ARG, "%s: has embeddings from %s: give that model (--model)", ix->path, ix->embed_model);
    if (ix->embed_model && strcmp(ix->embed_model, model))
        return jl_fail(JL_ERR_ARG, "%s: embeddings are from %s, not %s", ix->path, ix->embed_model, model);
    if (e && !ix->embed_model) {
        char dim[32];
        snprintf(dim, sizeof dim, "%d", jl_embedder_dim(e));
        jl_status st = jl_rag_meta_set(ix, "embed_model", model);
        if (st == JL_OK) st = jl_rag_meta_set(ix, "embed_dim", dim);
        if (st == JL_OK && !(ix->embed_model = strdup(model))) st = jl_fail(JL_ERR_NOMEM, "out of memory");
        if (st != JL_OK) return st;
        ix->embed_dim = jl_embedder_dim(e);
    }
    return JL_OK;
}

static uint64_t fnv1a(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

static jl_status add_passage(build_ctx *b, int64_t file_id, size_t start, size_t end, const char *text, size_t len) {
    sqlite3_stmt *p = b->ins_passage, *f = b->ins_fts;
    sqlite3_reset(p);
    sqlite3_bind_int64(p, 1, file_id);
    sqlite3_bind_int64(p, 2, (sqlite3_int64)start);
    sqlite3_bind_int64(p, 3, (sqlite3_int64)end);
    sqlite3_bind_text(p, 4, text, (int)len, SQLITE_STATIC);
    if (sqlite3_step(p) != SQLITE_DONE) return jl_rag_sql_fail(b->ix, "insert passage");
    sqlite3_reset(f);
    sqlite3_bind_int64(f, 1, sqlite3_last_insert_rowid(b->ix->db));
    sqlite3_bind_text(f, 2, text, (int)len, SQLITE_STATIC);
    if (sqlite3_step(f) != SQLITE_DONE) return jl_rag_sql_fail(b->ix, "index passage");
    b->stats->passages_added++;
    if (b->progress) b->progress(b->user, NULL, ++b->done);
    return JL_OK;
}

/* Passages of a text (the chunks' offsets shifted by base; a JSONL record keeps its line's offsets). */
static jl_status add_chunks(build_ctx *b, int64_t file_id, const char *text, size_t len, size_t line_start,
                            size_t line_end, int jsonl) {
    jl_chunk *ch;
    size_t n;
    jl_status st = jl_chunk_text(text, len, b->o->chunk_chars, b->o->overlap, &ch, &n);
    for (size_t i = 0; st == JL_OK && i < n; i++)
        st = add_passage(b, file_id, jsonl ? line_start : ch[i].start, jsonl ? line_end : ch[i].end,
                         text + ch[i].start, ch[i].end - ch[i].start);
    free(ch);
    return st;
}

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} textbuf;

static void tb_add(textbuf *t, const char *sep, const char *s) {
    size_t ns = t->len ? strlen(sep) : 0, n = strlen(s);
    if (t->oom) return;
    if (t->len + ns + n + 1 > t->cap) {
        size_t c = t->cap ? t->cap : 256;
        while (t->len + ns + n + 1 > c) c *= 2;
        char *p = realloc(t->buf, c);
        if (!p) {
            t->oom = 1;
            return;
        }
        t->buf = p;
        t->cap = c;
    }
    memcpy(t->buf + t->len, sep, ns);
    memcpy(t->buf + t->len + ns, s, n);
    t->len += ns + n;
    t->buf[t->len] = '\0';
}

/* Appends a string value, or the strings of an array separated by spaces. */
static void add_value(textbuf *t, const char *sep, json_object *v) {
    if (json_object_is_type(v, json_type_string)) {
        tb_add(t, sep, json_object_get_string(v));
    } else if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++)
            add_value(t, i ? " " : sep, json_object_array_get_idx(v, i));
    }
}

/* The text of a JSONL record: the listed fields (newline-separated), else "text", else every string field.
 * malloc'd (NULL when empty or out of memory: *oom says which). */
static char *record_text(json_object *obj, const char *fields, size_t *len, int *oom) {
    textbuf t = {0};
    json_object *v;
    if (fields && *fields) {
        char name[128];
        for (const char *p = fields; *p;) {
            size_t n = strcspn(p, ",");
            snprintf(name, sizeof name, "%.*s", (int)(n < 127 ? n : 127), p);
            if (json_object_object_get_ex(obj, name, &v)) add_value(&t, "\n", v);
            p += n + (p[n] == ',');
        }
    } else if (json_object_object_get_ex(obj, "text", &v) && json_object_is_type(v, json_type_string)) {
        add_value(&t, "\n", v);
    } else {
        json_object_object_foreach(obj, key, val) {
            (void)key;
            add_value(&t, "\n", val);
        }
    }
    *oom = t.oom;
    *len = t.len;
    if (t.oom) {
        free(t.buf);
        return NULL;
    }
    return t.buf;
}

/* One passage (or more, when long) per record; a malformed line is "FILE:LINE: ...". */
static jl_status add_jsonl(build_ctx *b, int64_t file_id, const char *path, const char *data, size_t len) {
    jl_status st = JL_OK;
    size_t line = 0;
    for (size_t i = 0; st == JL_OK && i < len;) {
        size_t eol = i;
        while (eol < len && data[eol] != '\n') eol++;
        line++;
        size_t s = i;
        while (s < eol && (data[s] == ' ' || data[s] == '\t' || data[s] == '\r')) s++;
        if (s < eol) {
            enum json_tokener_error jerr;
            json_tokener *tk = json_tokener_new();
            json_object *obj = tk ? json_tokener_parse_ex(tk, data + i, (int)(eol - i)) : NULL;
            jerr = tk ? json_tokener_get_error(tk) : json_tokener_error_parse_eof;
            if (tk) json_tokener_free(tk);
            if (!obj || jerr != json_tokener_success || !json_object_is_type(obj, json_type_object)) {
                st = jl_fail(JL_ERR_FORMAT, "%s:%zu: not a JSON object", path, line);
            } else {
                size_t tlen;
                int oom;
                char *text = record_text(obj, b->o->fields, &tlen, &oom);
                if (oom) st = jl_fail(JL_ERR_NOMEM, "out of memory");
                else if (text) st = add_chunks(b, file_id, text, tlen, i, eol, 1);
                free(text);
            }
            json_object_put(obj);
        }
        i = eol < len ? eol + 1 : len;
    }
    return st;
}

static int has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcasecmp(s + n - m, suf);
}

static int indexable(const char *name) {
    return has_suffix(name, ".txt") || has_suffix(name, ".md") || has_suffix(name, ".markdown") ||
           has_suffix(name, ".jsonl");
}

static jl_status remove_passages(build_ctx *b, int64_t file_id) {
    static const char *const sql[] = {
        "DELETE FROM fts WHERE rowid IN (SELECT id FROM passages WHERE file_id = ?1)",
        "DELETE FROM embeddings WHERE id IN (SELECT id FROM passages WHERE file_id = ?1)",
        "DELETE FROM passages WHERE file_id = ?1",
    };
    for (int i = 0; i < 3; i++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(b->ix->db, sql[i], -1, &st, NULL) != SQLITE_OK)
            return jl_rag_sql_fail(b->ix, "remove passages");
        sqlite3_bind_int64(st, 1, file_id);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) return jl_rag_sql_fail(b->ix, "remove passages");
        if (i == 2) b->stats->passages_removed += (size_t)sqlite3_changes(b->ix->db);
    }
    return JL_OK;
}

/* The files row for path: an existing id and hash, or a new row. Sets *unchanged when the hash matches. */
static jl_status file_row(build_ctx *b, const char *path, size_t size, const char *hash, int64_t *id,
                          int *unchanged) {
    sqlite3_stmt *st;
    *unchanged = 0;
    *id = 0;
    if (sqlite3_prepare_v2(b->ix->db, "SELECT id, hash FROM files WHERE path = ?1", -1, &st, NULL) != SQLITE_OK)
        return jl_rag_sql_fail(b->ix, "files");
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        *unchanged = !strcmp((const char *)sqlite3_column_text(st, 1), hash);
    }
    sqlite3_finalize(st);
    const char *sql = *id ? "UPDATE files SET size = ?2, hash = ?3 WHERE id = ?4"
                          : "INSERT INTO files(path, size, hash) VALUES(?1, ?2, ?3)";
    if (*unchanged) return JL_OK;
    if (sqlite3_prepare_v2(b->ix->db, sql, -1, &st, NULL) != SQLITE_OK) return jl_rag_sql_fail(b->ix, "files");
    if (!*id) sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
    sqlite3_bind_text(st, 3, hash, -1, SQLITE_STATIC);
    if (*id) sqlite3_bind_int64(st, 4, *id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return jl_rag_sql_fail(b->ix, "files");
    if (!*id) *id = sqlite3_last_insert_rowid(b->ix->db);
    return JL_OK;
}

static jl_status add_file(build_ctx *b, const char *given) {
    char real[PATH_MAX];
    if (!realpath(given, real)) return jl_fail(JL_ERR_IO, "%s: cannot open", given);
    char *data;
    size_t len;
    jl_status st = jl_read_file(real, &data, &len);
    if (st != JL_OK) return st;
    char hash[24];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)fnv1a(data, len));
    int64_t id;
    int unchanged, existed;
    sqlite3_stmt *q;
    existed = 0;
    if (sqlite3_prepare_v2(b->ix->db, "SELECT 1 FROM files WHERE path = ?1", -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, real, -1, SQLITE_STATIC);
        existed = sqlite3_step(q) == SQLITE_ROW;
        sqlite3_finalize(q);
    }
    st = file_row(b, real, len, hash, &id, &unchanged);
    if (st == JL_OK && unchanged) b->stats->files_unchanged++;
    if (st == JL_OK && !unchanged) {
        if (existed) {
            b->stats->files_replaced++;
            st = remove_passages(b, id);
        } else {
            b->stats->files_added++;
        }
        if (st == JL_OK && has_suffix(real, ".jsonl")) st = add_jsonl(b, id, given, data, len);
        else if (st == JL_OK) st = add_chunks(b, id, data, len, 0, 0, 0);
        if (b->progress) b->progress(b->user, given, b->done);
    }
    free(data);
    return st;
}

static jl_status add_path(build_ctx *b, const char *path, int depth) {
    struct stat sb;
    if (stat(path, &sb) != 0) return jl_fail(JL_ERR_IO, "%s: no such file or folder", path);
    if (!S_ISDIR(sb.st_mode)) return add_file(b, path);
    if (depth > 32) return jl_fail(JL_ERR_ARG, "%s: folders nested deeper than 32", path);
    struct dirent **names;
    int n = scandir(path, &names, NULL, alphasort);
    if (n < 0) return jl_fail(JL_ERR_IO, "%s: cannot read the folder", path);
    jl_status st = JL_OK;
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        if (st == JL_OK && nm[0] != '.') {
            size_t len = strlen(path) + strlen(nm) + 2;
            char *child = malloc(len);
            if (!child) {
                st = jl_fail(JL_ERR_NOMEM, "out of memory");
            } else {
                snprintf(child, len, "%s/%s", path, nm);
                struct stat cs;
                if (stat(child, &cs) == 0 && S_ISDIR(cs.st_mode)) st = add_path(b, child, depth + 1);
                else if (indexable(nm)) st = add_path(b, child, depth + 1);
                else b->stats->files_skipped++;
                free(child);
            }
        }
        free(names[i]);
    }
    free(names);
    return st;
}

/* Embeddings for every passage that lacks one. */
static jl_status embed_missing(build_ctx *b) {
    sqlite3_stmt *sel, *ins;
    jl_index *ix = b->ix;
    if (sqlite3_prepare_v2(ix->db, "SELECT p.id, p.text FROM passages p LEFT JOIN embeddings e ON e.id = p.id "
                                   "WHERE e.id IS NULL ORDER BY p.id", -1, &sel, NULL) != SQLITE_OK)
        return jl_rag_sql_fail(ix, "embeddings");
    if (sqlite3_prepare_v2(ix->db, "INSERT INTO embeddings(id, vec) VALUES(?1, ?2)", -1, &ins, NULL) != SQLITE_OK) {
        sqlite3_finalize(sel);
        return jl_rag_sql_fail(ix, "embeddings");
    }
    int dim = jl_embedder_dim(b->e);
    float *vec = malloc(sizeof *vec * (size_t)dim);
    jl_status st = vec ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory");
    while (st == JL_OK && sqlite3_step(sel) == SQLITE_ROW) {
        st = jl_embed_text(b->e, (const char *)sqlite3_column_text(sel, 1), vec);
        if (st != JL_OK) break;
        sqlite3_reset(ins);
        sqlite3_bind_int64(ins, 1, sqlite3_column_int64(sel, 0));
        sqlite3_bind_blob(ins, 2, vec, (int)(sizeof *vec * (size_t)dim), SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE) st = jl_rag_sql_fail(ix, "embeddings");
        b->stats->embedded++;
        if (b->progress && b->stats->embedded % 256 == 0) b->progress(b->user, "(embeddings)", b->stats->embedded);
    }
    free(vec);
    sqlite3_finalize(sel);
    sqlite3_finalize(ins);
    return st;
}

static jl_status build_in_transaction(build_ctx *b, const char *const *inputs, int n_inputs) {
    jl_index *ix = b->ix;
    jl_status st = setup_meta(ix, b->o, b->e);
    if (st != JL_OK) return st;
    if (sqlite3_prepare_v2(ix->db, "INSERT INTO passages(file_id, start, end, text) VALUES(?1, ?2, ?3, ?4)", -1,
                           &b->ins_passage, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(ix->db, "INSERT INTO fts(rowid, text) VALUES(?1, ?2)", -1, &b->ins_fts, NULL) !=
            SQLITE_OK)
        return jl_rag_sql_fail(ix, "prepare");
    for (int i = 0; st == JL_OK && i < n_inputs; i++) st = add_path(b, inputs[i], 0);
    if (st == JL_OK && b->e) st = embed_missing(b);
    sqlite3_stmt *cnt;
    if (st == JL_OK && sqlite3_prepare_v2(ix->db, "SELECT count(*) FROM passages", -1, &cnt, NULL) == SQLITE_OK) {
        if (sqlite3_step(cnt) == SQLITE_ROW) b->stats->passages_total = (size_t)sqlite3_column_int64(cnt, 0);
        sqlite3_finalize(cnt);
    }
    return st;
}

jl_status jl_index_build(jl_index *ix, const char *const *inputs, int n_inputs, const jl_index_options *o,
                         jl_embedder *e, jl_index_progress progress, void *user, jl_index_stats *stats) {
    memset(stats, 0, sizeof *stats);
    if (n_inputs < 1) return jl_fail(JL_ERR_ARG, "no input files");
    jl_status st = jl_rag_exec(ix, "BEGIN IMMEDIATE");
    if (st != JL_OK) return st;
    char *old_tok = ix->tokenizer ? strdup(ix->tokenizer) : NULL, *old_model = ix->embed_model ? strdup(ix->embed_model) : NULL;
    int old_dim = ix->embed_dim;
    build_ctx b = {.ix = ix, .o = o, .e = e, .progress = progress, .user = user, .stats = stats};
    st = build_in_transaction(&b, inputs, n_inputs);
    sqlite3_finalize(b.ins_passage);
    sqlite3_finalize(b.ins_fts);
    if (st == JL_OK && sqlite3_exec(ix->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        st = jl_rag_sql_fail(ix, "commit");
    if (st != JL_OK) { /* nothing of this build remains, in the file or in the handle */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", jl_last_error());
        sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
        free(ix->tokenizer);
        free(ix->embed_model);
        ix->tokenizer = old_tok;
        ix->embed_model = old_model;
        ix->embed_dim = old_dim;
        jl_fail(st, "%s", msg);
        return st;
    }
    free(old_tok);
    free(old_model);
    free(ix->embed_mean); /* the embeddings changed */
    ix->embed_mean = NULL;
    return JL_OK;
}
