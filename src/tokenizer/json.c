/* HF tokenizer.json (byte-level BPE) read and write, with json-c.
 * Read: model BPE (vocab, merges as "a b" strings or ["a","b"] pairs, ignore_merges), added_tokens, and the
 * pre-tokenizer: ByteLevel(use_regex) = GPT-2's regex, or Sequence[Split(Regex, Isolated), ByteLevel(no regex)]. */
#include "io/fileio.h"
#include "tokenizer/tok_internal.h"
#include <json-c/json.h>
#include <limits.h>
#include <string.h>

typedef struct {
    const char *origin;
    json_object *vocab;    /* model.vocab: byte-level string → id */
    int n_vocab;
    const char **tok_str;  /* per id: the string as written (byte-level for the model vocab, raw for added) */
    size_t *tok_len;
    uint8_t *tok_raw;      /* 1: an added token, the string is the raw bytes */
    tok_table table;
    tok_ivec merge_left, merge_right, special_ids;
    const char *pattern;
    int ignore_merges;
} json_load;

static json_object *get(json_object *o, const char *key) {
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static jl_status read_pretokenizer(json_load *L, json_object *pre) {
    const char *origin = L->origin;
    if (!pre || json_object_get_type(pre) != json_type_object)
        return jl_fail(JL_ERR_FORMAT, "%s: pre_tokenizer: missing (not a byte-level BPE tokenizer)", origin);
    const char *type = json_object_get_string(get(pre, "type"));
    if (!type) return jl_fail(JL_ERR_FORMAT, "%s: pre_tokenizer.type: missing", origin);
    if (!strcmp(type, "ByteLevel")) {
        json_object *prefix = get(pre, "add_prefix_space"), *use_regex = get(pre, "use_regex");
        if (prefix && json_object_get_boolean(prefix))
            return jl_fail(JL_ERR_FORMAT, "%s: pre_tokenizer.add_prefix_space = true is not supported", origin);
        if (use_regex && !json_object_get_boolean(use_regex))
            return jl_fail(JL_ERR_FORMAT, "%s: pre_tokenizer: ByteLevel without a regex splits nothing", origin);
        L->pattern = jl_tokenizer_pattern_text(JL_PATTERN_GPT2);
        return JL_OK;
    }
    if (strcmp(type, "Sequence") != 0)
        return jl_fail(JL_ERR_FORMAT, "%s: pre_tokenizer.type '%s' is not supported", origin, type);
    json_object *list = get(pre, "pretokenizers");
    if (!list || json_object_get_type(list) != json_type_array || json_object_array_length(list) != 2)
        return jl_fail(JL_ERR_FORMAT, "%s: pre_tokenizer: expected [Split, ByteLevel]", origin);
    json_object *split = json_object_array_get_idx(list, 0), *bl = json_object_array_get_idx(list, 1);
    const char *t0 = json_object_get_string(get(split, "type")), *t1 = json_object_get_string(get(bl, "type"));
    if (!t0 || !t1 || strcmp(t0, "Split") || strcmp(t1, "ByteLevel"))
        return jl_fail(JL_ERR_FORMAT, "%s: pre_tokenizer: expected [Split, ByteLevel]", origin);
    const char *regex = json_object_get_string(get(get(split, "pattern"), "Regex"));
    const char *behavior = json_object_get_string(get(split, "behavior"));
    json_object *invert = get(split, "invert"), *bl_regex = get(bl, "use_regex"), *bl_prefix = get(bl, "add_prefix_space");
    if (!regex) return jl_fail(JL_ERR_FORMAT, "%s: pre_tokenizer Split: pattern.Regex missing", origin);
    if (!behavior || strcmp(behavior, "Isolated") || (invert && json_object_get_boolean(invert)))
        return jl_fail(JL_ERR_FORMAT, "%s: pre_tokenizer Split: only behavior Isolated (not inverted) is supported",
                       origin);
    if ((bl_regex && json_object_get_boolean(bl_regex)) || (bl_prefix && json_object_get_boolean(bl_prefix)))
        return jl_fail(JL_ERR_FORMAT, "%s: pre_tokenizer ByteLevel after Split: use_regex/add_prefix_space must be "
                       "false", origin);
    L->pattern = regex;
    return JL_OK;
}

static jl_status read_vocab(json_load *L, json_object *model) {
    L->vocab = get(model, "vocab");
    if (!L->vocab || json_object_get_type(L->vocab) != json_type_object)
        return jl_fail(JL_ERR_FORMAT, "%s: model.vocab: missing or not an object", L->origin);
    json_object_object_foreach(L->vocab, key, val) {
        (void)key;
        int64_t id = json_object_get_int64(val);
        if (json_object_get_type(val) != json_type_int || id < 0 || id >= INT32_MAX / 2)
            return jl_fail(JL_ERR_FORMAT, "%s: model.vocab['%s']: id is not a valid integer", L->origin, key);
        if (id >= L->n_vocab) L->n_vocab = (int)id + 1;
    }
    return JL_OK;
}

static jl_status read_added(json_load *L, json_object *added) {
    if (!added) return JL_OK;
    if (json_object_get_type(added) != json_type_array)
        return jl_fail(JL_ERR_FORMAT, "%s: added_tokens: not an array", L->origin);
    size_t n = json_object_array_length(added);
    for (size_t k = 0; k < n; k++) {
        json_object *a = json_object_array_get_idx(added, k), *idv = get(a, "id");
        const char *content = json_object_get_string(get(a, "content"));
        int64_t id = idv ? json_object_get_int64(idv) : -1;
        if (!content || !*content || !idv || json_object_get_type(idv) != json_type_int || id < 0 || id >= INT32_MAX / 2)
            return jl_fail(JL_ERR_FORMAT, "%s: added_tokens[%zu]: needs an integer id and a non-empty content",
                           L->origin, k);
        if (id >= L->n_vocab) L->n_vocab = (int)id + 1;
    }
    return JL_OK;
}

/* Lays out per-id strings from the vocab and added tokens, then converts them to raw bytes in id order. */
static jl_status collect_tokens(json_load *L, json_object *added) {
    size_t n = (size_t)L->n_vocab;
    L->tok_str = calloc(n, sizeof *L->tok_str);
    L->tok_len = calloc(n, sizeof *L->tok_len);
    L->tok_raw = calloc(n, 1);
    if (!L->tok_str || !L->tok_len || !L->tok_raw) return jl_fail(JL_ERR_NOMEM, "out of memory");
    json_object_object_foreach(L->vocab, key, val) {
        int id = json_object_get_int(val);
        if (L->tok_str[id]) return jl_fail(JL_ERR_FORMAT, "%s: model.vocab: id %d is used twice", L->origin, id);
        L->tok_str[id] = key;
        L->tok_len[id] = strlen(key);
    }
    size_t n_added = added ? json_object_array_length(added) : 0;
    for (size_t k = 0; k < n_added; k++) {
        json_object *a = json_object_array_get_idx(added, k);
        int id = json_object_get_int(get(a, "id"));
        json_object *c = get(a, "content");
        const char *content = json_object_get_string(c);
        size_t len = (size_t)json_object_get_string_len(c);
        char *raw = malloc(2 * len + 1);
        if (!raw) return jl_fail(JL_ERR_NOMEM, "out of memory");
        /* The vocab may list the same token (GPT-2 does); it must then be the same text. */
        int clash = 0;
        if (L->tok_str[id] && !L->tok_raw[id]) {
            size_t m = tok_bytelevel_encode(content, len, raw);
            clash = m != L->tok_len[id] || memcmp(raw, L->tok_str[id], m) != 0;
        }
        free(raw);
        if (L->tok_raw[id])
            return jl_fail(JL_ERR_FORMAT, "%s: added_tokens[%zu] '%s': id %d is already the added token '%s'",
                           L->origin, k, content, id, L->tok_str[id]);
        if (clash) return jl_fail(JL_ERR_FORMAT, "%s: added_tokens[%zu] '%s': id %d is another token in model.vocab",
                                  L->origin, k, content, id);
        L->tok_str[id] = content;
        L->tok_len[id] = len;
        L->tok_raw[id] = 1;
        if (tok_ivec_push(&L->special_ids, id)) return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    char *buf = NULL;
    size_t cap = 0;
    jl_status st = JL_OK;
    for (size_t id = 0; id < n && st == JL_OK; id++) {
        if (!L->tok_str[id]) {
            st = jl_fail(JL_ERR_FORMAT, "%s: token id %zu is missing (ids must be 0..%zu without gaps)", L->origin,
                         id, n - 1);
            break;
        }
        if (L->tok_len[id] + 1 > cap) {
            cap = 2 * L->tok_len[id] + 16;
            char *b = realloc(buf, cap);
            if (!b) { st = jl_fail(JL_ERR_NOMEM, "out of memory"); break; }
            buf = b;
        }
        long m = (long)L->tok_len[id];
        if (L->tok_raw[id]) memcpy(buf, L->tok_str[id], L->tok_len[id]);
        else m = tok_bytelevel_decode(L->tok_str[id], L->tok_len[id], buf);
        if (m < 0) st = jl_fail(JL_ERR_FORMAT, "%s: model.vocab['%s']: not a byte-level token", L->origin,
                                L->tok_str[id]);
        else st = tok_table_add(&L->table, buf, (size_t)m);
    }
    free(buf);
    return st;
}

static int32_t vocab_id(json_load *L, const char *s, size_t n) {
    char small[256], *key = n < sizeof small ? small : malloc(n + 1); /* json-c wants a NUL-terminated key */
    if (!key) return -1;
    memcpy(key, s, n);
    key[n] = '\0';
    json_object *v = get(L->vocab, key);
    if (key != small) free(key);
    return v ? json_object_get_int(v) : -1;
}

static jl_status read_merges(json_load *L, json_object *merges) {
    if (!merges) return JL_OK;
    if (json_object_get_type(merges) != json_type_array)
        return jl_fail(JL_ERR_FORMAT, "%s: model.merges: not an array", L->origin);
    size_t n = json_object_array_length(merges);
    for (size_t k = 0; k < n; k++) {
        json_object *m = json_object_array_get_idx(merges, k);
        int32_t l = -1, r = -1;
        if (json_object_get_type(m) == json_type_string) {
            const char *s = json_object_get_string(m), *sp = strchr(s, ' ');
            if (sp) {
                l = vocab_id(L, s, (size_t)(sp - s));
                r = vocab_id(L, sp + 1, strlen(sp + 1));
            }
        } else if (json_object_get_type(m) == json_type_array && json_object_array_length(m) == 2) {
            json_object *a = json_object_array_get_idx(m, 0), *b = json_object_array_get_idx(m, 1);
            if (json_object_get_type(a) == json_type_string && json_object_get_type(b) == json_type_string) {
                l = vocab_id(L, json_object_get_string(a), (size_t)json_object_get_string_len(a));
                r = vocab_id(L, json_object_get_string(b), (size_t)json_object_get_string_len(b));
            }
        }
        if (l < 0 || r < 0)
            return jl_fail(JL_ERR_FORMAT, "%s: model.merges[%zu]: not two tokens of the vocabulary", L->origin, k);
        if (tok_ivec_push(&L->merge_left, l) || tok_ivec_push(&L->merge_right, r))
            return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    return JL_OK;
}

static jl_status read_model(json_load *L, json_object *root) {
    if (json_object_get_type(root) != json_type_object)
        return jl_fail(JL_ERR_FORMAT, "%s: not a JSON object", L->origin);
    json_object *model = get(root, "model");
    if (!model || json_object_get_type(model) != json_type_object)
        return jl_fail(JL_ERR_FORMAT, "%s: model: missing or not an object", L->origin);
    const char *type = json_object_get_string(get(model, "type"));
    if (type && strcmp(type, "BPE"))
        return jl_fail(JL_ERR_FORMAT, "%s: model.type '%s' is not supported (only BPE)", L->origin, type);
    json_object *norm = get(root, "normalizer");
    if (norm && json_object_get_type(norm) != json_type_null)
        return jl_fail(JL_ERR_FORMAT, "%s: normalizer: not supported by a byte-level BPE (must be null)", L->origin);
    json_object *im = get(model, "ignore_merges");
    L->ignore_merges = im && json_object_get_boolean(im);
    json_object *added = get(root, "added_tokens");
    jl_status st = read_pretokenizer(L, get(root, "pre_tokenizer"));
    if (st == JL_OK) st = read_vocab(L, model);
    if (st == JL_OK) st = read_added(L, added);
    if (st == JL_OK && L->n_vocab < 256)
        return jl_fail(JL_ERR_FORMAT, "%s: model.vocab has %d tokens, fewer than the 256 bytes", L->origin, L->n_vocab);
    /* ids run 0..n-1 without gaps, so the largest id is bounded by the entries the file has: checked before the
     * per-id tables are allocated (an id of 2^30 in a 7 KB file would otherwise cost gigabytes) */
    if (st != JL_OK) return st;
    const size_t entries = (size_t)json_object_object_length(L->vocab) +
                           (added && json_object_get_type(added) == json_type_array ? json_object_array_length(added) : 0);
    if ((size_t)L->n_vocab > entries)
        return jl_fail(JL_ERR_FORMAT, "%s: token ids are missing: the largest is %d but the file lists only %zu tokens "
                       "(ids must be 0..N-1 without gaps)", L->origin, L->n_vocab - 1, entries);
    if (st == JL_OK) st = collect_tokens(L, added);
    if (st == JL_OK) st = read_merges(L, get(model, "merges"));
    return st;
}

static jl_status from_json(const char *json, size_t len, const char *origin, jl_tokenizer **out) {
    *out = NULL;
    if (len > INT_MAX) return jl_fail(JL_ERR_FORMAT, "%s: too large for a tokenizer.json", origin);
    json_tokener *tk = json_tokener_new_ex(64);
    if (!tk) return jl_fail(JL_ERR_NOMEM, "out of memory");
    json_object *root = json_tokener_parse_ex(tk, json, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tk);
    if (!root || jerr != json_tokener_success) {
        const char *why = jerr == json_tokener_continue || jerr == json_tokener_success
                              ? "unexpected end of the text (truncated?)"
                              : json_tokener_error_desc(jerr);
        jl_status st = jl_fail(JL_ERR_FORMAT, "%s: invalid JSON at byte %zu: %s", origin,
                               json_tokener_get_parse_end(tk), why);
        json_object_put(root);
        json_tokener_free(tk);
        return st;
    }
    json_tokener_free(tk);
    json_load L = {.origin = origin};
    jl_status st = read_model(&L, root);
    if (st == JL_OK) {
        tok_spec sp = {.n_vocab = L.table.n, .tok_off = L.table.off, .tok_bytes = L.table.bytes,
                       .n_merges = (int)L.merge_left.n, .merge_left = L.merge_left.v, .merge_right = L.merge_right.v,
                       .n_special = (int)L.special_ids.n, .special_ids = L.special_ids.v, .pattern = L.pattern,
                       .ignore_merges = L.ignore_merges, .origin = origin};
        st = tok_build(&sp, out);
    }
    free(L.tok_str);
    free(L.tok_len);
    free(L.tok_raw);
    tok_table_free(&L.table);
    free(L.merge_left.v);
    free(L.merge_right.v);
    free(L.special_ids.v);
    json_object_put(root);
    return st;
}

jl_status jl_tokenizer_from_json(const char *json, size_t len, jl_tokenizer **out) {
    return from_json(json, len, "tokenizer.json", out);
}

jl_status jl_tokenizer_load(const char *path, jl_tokenizer **out) {
    *out = NULL;
    char *data;
    size_t len;
    jl_status st = jl_read_file(path, &data, &len);
    if (st != JL_OK) return st;
    st = from_json(data, len, path, out);
    free(data);
    return st;
}

/* ---- writing ---- */
static json_object *byte_level_string(const jl_tokenizer *t, int32_t id, char *buf) {
    size_t n = t->tok_off[id + 1] - t->tok_off[id];
    size_t m = tok_bytelevel_encode(t->tok_bytes + t->tok_off[id], n, buf);
    return json_object_new_string_len(buf, (int)m);
}

static json_object *added_token(const jl_tokenizer *t, int32_t id) {
    json_object *a = json_object_new_object();
    json_object_object_add(a, "id", json_object_new_int(id));
    json_object_object_add(a, "content", json_object_new_string_len(t->tok_bytes + t->tok_off[id],
                                                                     (int)(t->tok_off[id + 1] - t->tok_off[id])));
    json_object_object_add(a, "single_word", json_object_new_boolean(0));
    json_object_object_add(a, "lstrip", json_object_new_boolean(0));
    json_object_object_add(a, "rstrip", json_object_new_boolean(0));
    json_object_object_add(a, "normalized", json_object_new_boolean(0));
    json_object_object_add(a, "special", json_object_new_boolean(1));
    return a;
}

static json_object *byte_level(int use_regex) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string("ByteLevel"));
    json_object_object_add(o, "add_prefix_space", json_object_new_boolean(0));
    json_object_object_add(o, "trim_offsets", json_object_new_boolean(1));
    json_object_object_add(o, "use_regex", json_object_new_boolean(use_regex));
    return o;
}

static json_object *pre_tokenizer(const jl_tokenizer *t) {
    json_object *split = json_object_new_object(), *pat = json_object_new_object();
    json_object_object_add(split, "type", json_object_new_string("Split"));
    json_object_object_add(pat, "Regex", json_object_new_string(t->pattern));
    json_object_object_add(split, "pattern", pat);
    json_object_object_add(split, "behavior", json_object_new_string("Isolated"));
    json_object_object_add(split, "invert", json_object_new_boolean(0));
    json_object *list = json_object_new_array();
    json_object_array_add(list, split);
    json_object_array_add(list, byte_level(0));
    json_object *seq = json_object_new_object();
    json_object_object_add(seq, "type", json_object_new_string("Sequence"));
    json_object_object_add(seq, "pretokenizers", list);
    return seq;
}

static json_object *bpe_model(const jl_tokenizer *t, char *buf) {
    json_object *model = json_object_new_object(), *vocab = json_object_new_object(), *merges = json_object_new_array();
    json_object_object_add(model, "type", json_object_new_string("BPE"));
    json_object_object_add(model, "dropout", NULL);
    json_object_object_add(model, "unk_token", NULL);
    json_object_object_add(model, "continuing_subword_prefix", NULL);
    json_object_object_add(model, "end_of_word_suffix", NULL);
    json_object_object_add(model, "fuse_unk", json_object_new_boolean(0));
    json_object_object_add(model, "byte_fallback", json_object_new_boolean(0));
    json_object_object_add(model, "ignore_merges", json_object_new_boolean(t->ignore_merges));
    for (int32_t id = 0; id < t->n_vocab; id++) {
        json_object *s = byte_level_string(t, id, buf);
        json_object_object_add(vocab, json_object_get_string(s), json_object_new_int(id));
        json_object_put(s);
    }
    json_object_object_add(model, "vocab", vocab);
    for (int m = 0; m < t->n_merges; m++) {
        size_t a = tok_bytelevel_encode(t->tok_bytes + t->tok_off[t->merge_left[m]],
                                        t->tok_off[t->merge_left[m] + 1] - t->tok_off[t->merge_left[m]], buf);
        buf[a] = ' ';
        size_t b = tok_bytelevel_encode(t->tok_bytes + t->tok_off[t->merge_right[m]],
                                        t->tok_off[t->merge_right[m] + 1] - t->tok_off[t->merge_right[m]], buf + a + 1);
        json_object_array_add(merges, json_object_new_string_len(buf, (int)(a + 1 + b)));
    }
    json_object_object_add(model, "merges", merges);
    return model;
}

jl_status jl_tokenizer_to_json(const jl_tokenizer *t, char **json_out) {
    *json_out = NULL;
    size_t longest = 0;
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (t->tok_off[id + 1] - t->tok_off[id] > longest) longest = t->tok_off[id + 1] - t->tok_off[id];
    char *buf = malloc(4 * longest + 8); /* two byte-level strings of ≤ 2 bytes per raw byte, a space, a NUL */
    if (!buf) return jl_fail(JL_ERR_NOMEM, "out of memory");
    json_object *root = json_object_new_object(), *added = json_object_new_array();
    json_object_object_add(root, "version", json_object_new_string("1.0"));
    json_object_object_add(root, "truncation", NULL);
    json_object_object_add(root, "padding", NULL);
    for (int k = 0; k < t->n_special; k++) json_object_array_add(added, added_token(t, t->special_ids[k]));
    json_object_object_add(root, "added_tokens", added);
    json_object_object_add(root, "normalizer", NULL);
    json_object_object_add(root, "pre_tokenizer", pre_tokenizer(t));
    json_object_object_add(root, "post_processor", NULL);
    json_object_object_add(root, "decoder", byte_level(1));
    json_object_object_add(root, "model", bpe_model(t, buf));
    free(buf);
    const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    *json_out = s ? strdup(s) : NULL;
    json_object_put(root);
    return *json_out ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory (tokenizer.json)");
}

jl_status jl_tokenizer_save(const jl_tokenizer *t, const char *path) {
    char *json;
    jl_status st = jl_tokenizer_to_json(t, &json);
    if (st != JL_OK) return st;
    st = jl_write_file_atomic(path, json, strlen(json));
    free(json);
    return st;
}
