/* HF tokenizer.json read and write, with json-c; model.vocab and model.merges (most of the file) are read
 * straight from the text by json_scan.c and blanked for json-c.
 * Read: the BPE model (vocab, merges as "a b" strings or ["a","b"] pairs, ignore_merges, byte_fallback, unk_token,
 * fuse_unk, continuing_subword_prefix, end_of_word_suffix), added_tokens with their flags, and the pipeline:
 * normalizer, pre_tokenizer, decoder, post_processor (see pipeline.h). A construct we do not implement is an
 * error naming its JSON path. Write: jielong's own byte-level BPE; a loaded file is written back as it was. */
#include "io/fileio.h"
#include "tokenizer/json_scan.h"
#include "tokenizer/pipeline.h"
#include <json-c/json.h>
#include <limits.h>
#include <string.h>

typedef struct {
    const char *origin;
    const char *doc;       /* the document's text, where model.vocab and model.merges are read */
    tok_json_doc jd;
    char *vkeys;           /* model.vocab's keys, unescaped, each NUL-terminated */
    const char **vk;       /* per entry of model.vocab: key, its length, id */
    size_t *vl;
    int32_t *vi;
    size_t n_entries;
    int n_vocab;
    const char **tok_str;  /* per id: the string as written (byte-level for a byte-level vocab, raw for added) */
    size_t *tok_len;
    uint8_t *tok_raw;      /* 1: an added token, the string is the raw bytes */
    tok_table table;
    tok_ivec merge_left, merge_right, merge_rank, special_ids;
    uint8_t *added_flags;  /* per special_ids entry */
    uint8_t *in_vocab;     /* per id: an added token that model.vocab also has */
    uint32_t *str_slots;   /* model.vocab string → id + 1 */
    size_t str_mask;
    const char **vocab_str; /* per id: its model.vocab string (NULL if none) */
    size_t *vocab_len;
    int ignore_merges, byte_level, parallel_safe;
    const char *first_regex;
    tok_pipeline pipe;     /* the pipeline as read; moved into the tokenizer once it is built */
    /* decoder */
    int n_dec_replace, dec_byte_fallback, dec_fused, dec_byte_level;
    const char *dec_from[TOK_MAX_STAGES], *dec_to[TOK_MAX_STAGES];
    /* post-processor: names of the template's special tokens (resolved through its special_tokens) */
    json_object *tpl;
} json_load;

static json_object *get(json_object *o, const char *key) {
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static int is_null(json_object *o) { return !o || json_object_get_type(o) == json_type_null; }

static int get_bool(json_object *o, const char *key, int dflt) {
    json_object *v = get(o, key);
    return is_null(v) ? dflt : json_object_get_boolean(v);
}

static const char *get_str(json_object *o, const char *key, size_t *len) {
    json_object *v = get(o, key);
    if (!v || json_object_get_type(v) != json_type_string) return NULL;
    if (len) *len = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

static char *dup_bytes(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static jl_status unsupported(json_load *L, const char *path, const char *what) {
    return jl_fail(JL_ERR_FORMAT, "%s: %s: %s is not supported", L->origin, path, what);
}

/* A {"String": s} or {"Regex": r} pattern: the literal (and its length) or the compiled regex. */
static jl_status read_pattern(json_load *L, json_object *pat, const char *path, char **literal, size_t *lit_len,
                              pcre2_code **re, const char **regex_src) {
    size_t n;
    const char *str = get_str(pat, "String", &n), *rx = get_str(pat, "Regex", &n);
    if (str) {
        *literal = dup_bytes(str, n);
        *lit_len = n;
        return *literal ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    if (!rx) return jl_fail(JL_ERR_FORMAT, "%s: %s.pattern: needs a String or a Regex", L->origin, path);
    if (regex_src) *regex_src = rx;
    jl_status st = tok_compile_regex(rx, n, re);
    return st == JL_OK ? st : jl_fail_context(st, "%s: %s.pattern", L->origin, path);
}

/* ---- normalizer ---- */
static jl_status add_normalizer(json_load *L, json_object *o, const char *path) {
    if (is_null(o)) return JL_OK;
    const char *type = get_str(o, "type", NULL);
    char sub[256];
    if (!type) return jl_fail(JL_ERR_FORMAT, "%s: %s.type: missing", L->origin, path);
    if (!strcmp(type, "Sequence")) {
        json_object *list = get(o, "normalizers");
        if (!list || json_object_get_type(list) != json_type_array)
            return jl_fail(JL_ERR_FORMAT, "%s: %s.normalizers: not an array", L->origin, path);
        for (size_t k = 0; k < json_object_array_length(list); k++) {
            snprintf(sub, sizeof sub, "%s.normalizers[%zu]", path, k);
            jl_status st = add_normalizer(L, json_object_array_get_idx(list, k), sub);
            if (st != JL_OK) return st;
        }
        return JL_OK;
    }
    tok_pipeline *p = &L->pipe;
    if (p->n_norm == TOK_MAX_STAGES) return jl_fail(JL_ERR_FORMAT, "%s: %s: too many normalizers", L->origin, path);
    tok_norm *nm = &p->norm[p->n_norm];
    memset(nm, 0, sizeof *nm);
    static const struct { const char *name; tok_norm_kind kind; } simple[] = {
        {"NFC", TOK_NORM_NFC}, {"NFD", TOK_NORM_NFD}, {"NFKC", TOK_NORM_NFKC}, {"NFKD", TOK_NORM_NFKD},
        {"Lowercase", TOK_NORM_LOWER}};
    for (size_t k = 0; k < sizeof simple / sizeof simple[0]; k++)
        if (!strcmp(type, simple[k].name)) {
            nm->kind = simple[k].kind;
            p->n_norm++;
            return JL_OK;
        }
    size_t n;
    if (!strcmp(type, "Replace")) {
        nm->kind = TOK_NORM_REPLACE;
        const char *content = get_str(o, "content", &n);
        snprintf(sub, sizeof sub, "%s", path);
        if (!content) return jl_fail(JL_ERR_FORMAT, "%s: %s.content: missing", L->origin, path);
        nm->to = dup_bytes(content, n);
        nm->to_len = n;
        p->n_norm++; /* owned from here on: freed with the pipeline */
        jl_status st = nm->to ? read_pattern(L, get(o, "pattern"), sub, &nm->from, &nm->from_len, &nm->re, NULL)
                              : jl_fail(JL_ERR_NOMEM, "out of memory");
        if (st == JL_OK && nm->from && memchr(nm->from, '\n', nm->from_len)) L->parallel_safe = 0;
        if (nm->re) L->parallel_safe = 0;
        return st;
    }
    if (!strcmp(type, "Prepend")) {
        const char *pre = get_str(o, "prepend", &n);
        if (!pre) return jl_fail(JL_ERR_FORMAT, "%s: %s.prepend: missing", L->origin, path);
        nm->kind = TOK_NORM_PREPEND;
        nm->to = dup_bytes(pre, n);
        nm->to_len = n;
        p->n_norm++;
        L->parallel_safe = 0; /* it applies to each segment's start */
        return nm->to ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    if (!strcmp(type, "Strip")) {
        nm->kind = TOK_NORM_STRIP;
        nm->left = get_bool(o, "strip_left", 0);
        nm->right = get_bool(o, "strip_right", 0);
        p->n_norm++;
        L->parallel_safe = 0;
        return JL_OK;
    }
    snprintf(sub, sizeof sub, "normalizer type '%s'", type);
    return unsupported(L, path, sub);
}

/* ---- pre-tokenizer ---- */
static jl_status add_split(json_load *L, const char *regex, tok_behavior b, int invert, const char *path) {
    tok_pipeline *p = &L->pipe;
    if (p->n_pre == TOK_MAX_STAGES) return jl_fail(JL_ERR_FORMAT, "%s: %s: too many pre-tokenizers", L->origin, path);
    tok_pre *pr = &p->pre[p->n_pre];
    *pr = (tok_pre){.kind = TOK_PRE_SPLIT, .behavior = b, .invert = invert, .owns_re = 1};
    jl_status st = tok_compile_regex(regex, strlen(regex), &pr->re);
    if (st != JL_OK) return jl_fail_context(st, "%s: %s", L->origin, path);
    pr->scan = tok_scan_kind_of(regex, strlen(regex));
    p->n_pre++;
    if (!L->first_regex) L->first_regex = regex;
    if (!tok_pattern_parallel_safe(regex)) L->parallel_safe = 0;
    return JL_OK;
}

static const char *const behaviors[] = {
    [TOK_SPLIT_REMOVED] = "Removed", [TOK_SPLIT_ISOLATED] = "Isolated", [TOK_SPLIT_PREVIOUS] = "MergedWithPrevious",
    [TOK_SPLIT_NEXT] = "MergedWithNext", [TOK_SPLIT_CONTIGUOUS] = "Contiguous"};

static jl_status add_split_json(json_load *L, json_object *o, const char *path) {
    tok_pipeline *p = &L->pipe;
    if (p->n_pre == TOK_MAX_STAGES) return jl_fail(JL_ERR_FORMAT, "%s: %s: too many pre-tokenizers", L->origin, path);
    const char *b = get_str(o, "behavior", NULL);
    int behavior = -1;
    for (int k = 0; b && k < 5; k++)
        if (!strcmp(b, behaviors[k])) behavior = k;
    if (behavior < 0) return jl_fail(JL_ERR_FORMAT, "%s: %s.behavior: '%s' is not one of Removed, Isolated, "
                                     "MergedWithPrevious, MergedWithNext, Contiguous", L->origin, path, b ? b : "");
    tok_pre *pr = &p->pre[p->n_pre];
    *pr = (tok_pre){.kind = TOK_PRE_SPLIT, .behavior = (tok_behavior)behavior, .invert = get_bool(o, "invert", 0),
                    .owns_re = 1};
    p->n_pre++;
    const char *src = NULL;
    jl_status st = read_pattern(L, get(o, "pattern"), path, &pr->literal, &pr->literal_len, &pr->re, &src);
    if (st != JL_OK) return st;
    if (src) pr->scan = tok_scan_kind_of(src, strlen(src));
    if (src && !L->first_regex) L->first_regex = src;
    if (src ? !tok_pattern_parallel_safe(src) : (memchr(pr->literal, '\n', pr->literal_len) != NULL))
        L->parallel_safe = 0;
    return JL_OK;
}

static jl_status add_metaspace(json_load *L, json_object *o, const char *path) {
    tok_pipeline *p = &L->pipe;
    if (p->n_pre + 2 > TOK_MAX_STAGES) return jl_fail(JL_ERR_FORMAT, "%s: %s: too many pre-tokenizers", L->origin, path);
    size_t n = 0;
    const char *rep = get_str(o, "replacement", &n);
    if (!rep) rep = "\xE2\x96\x81", n = 3;
    uint32_t cp;
    if (n == 0 || n > 4 || tok_utf8_char(rep, n, &cp) != n)
        return jl_fail(JL_ERR_FORMAT, "%s: %s.replacement: must be one character", L->origin, path);
    const char *scheme = get_str(o, "prepend_scheme", NULL);
    int prepend = get_bool(o, "add_prefix_space", 1);
    if (scheme) {
        if (!strcmp(scheme, "always")) prepend = 1;
        else if (!strcmp(scheme, "first")) prepend = 2;
        else if (!strcmp(scheme, "never")) prepend = 0;
        else return jl_fail(JL_ERR_FORMAT, "%s: %s.prepend_scheme: '%s' is not always, first or never", L->origin,
                            path, scheme);
    }
    tok_pre *pr = &p->pre[p->n_pre++];
    *pr = (tok_pre){.kind = TOK_PRE_METASPACE, .prepend = prepend, .rep_len = n};
    memcpy(pr->rep, rep, n);
    L->parallel_safe = 0;
    if (!get_bool(o, "split", 1)) return JL_OK;
    pr = &p->pre[p->n_pre++];
    *pr = (tok_pre){.kind = TOK_PRE_SPLIT, .behavior = TOK_SPLIT_NEXT, .literal = dup_bytes(rep, n), .literal_len = n};
    return pr->literal ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory");
}

static jl_status add_pretokenizer(json_load *L, json_object *o, const char *path) {
    if (is_null(o)) return JL_OK;
    const char *type = get_str(o, "type", NULL);
    char sub[256];
    if (!type) return jl_fail(JL_ERR_FORMAT, "%s: %s.type: missing", L->origin, path);
    if (!strcmp(type, "Sequence")) {
        json_object *list = get(o, "pretokenizers");
        if (!list || json_object_get_type(list) != json_type_array)
            return jl_fail(JL_ERR_FORMAT, "%s: %s.pretokenizers: not an array", L->origin, path);
        for (size_t k = 0; k < json_object_array_length(list); k++) {
            snprintf(sub, sizeof sub, "%s.pretokenizers[%zu]", path, k);
            jl_status st = add_pretokenizer(L, json_object_array_get_idx(list, k), sub);
            if (st != JL_OK) return st;
        }
        return JL_OK;
    }
    if (!strcmp(type, "Split")) return add_split_json(L, o, path);
    if (!strcmp(type, "ByteLevel")) {
        L->byte_level = 1;
        if (get_bool(o, "add_prefix_space", 0)) {
            tok_pipeline *p = &L->pipe;
            if (p->n_pre == TOK_MAX_STAGES) return jl_fail(JL_ERR_FORMAT, "%s: %s: too many stages", L->origin, path);
            p->pre[p->n_pre++] = (tok_pre){.kind = TOK_PRE_PREFIX_SPACE};
            L->parallel_safe = 0;
        }
        if (!get_bool(o, "use_regex", 1)) return JL_OK;
        return add_split(L, jl_tokenizer_pattern_text(JL_PATTERN_GPT2), TOK_SPLIT_ISOLATED, 0, path);
    }
    if (!strcmp(type, "Digits"))
        return add_split(L, get_bool(o, "individual_digits", 0) ? "\\p{N}" : "\\p{N}+", TOK_SPLIT_ISOLATED, 0, path);
    /* HF's \w is Rust regex's Unicode word class (Alphabetic, marks, decimal digits, connector punctuation,
     * ZWNJ/ZWJ), wider than PCRE2's \p{L}\p{N}_: a combining accent stays inside its word */
    if (!strcmp(type, "Whitespace"))
        return add_split(L, "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]+|"
                         "[^\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}\\s]+", TOK_SPLIT_REMOVED, 1, path);
    if (!strcmp(type, "WhitespaceSplit")) return add_split(L, "\\s+", TOK_SPLIT_REMOVED, 0, path);
    if (!strcmp(type, "Metaspace")) return add_metaspace(L, o, path);
    snprintf(sub, sizeof sub, "pre-tokenizer type '%s'", type);
    return unsupported(L, path, sub);
}

/* ---- decoder ---- */
static jl_status add_decoder(json_load *L, json_object *o, const char *path) {
    if (is_null(o)) return JL_OK;
    const char *type = get_str(o, "type", NULL);
    char sub[256];
    if (!type) return jl_fail(JL_ERR_FORMAT, "%s: %s.type: missing", L->origin, path);
    if (!strcmp(type, "Sequence")) {
        json_object *list = get(o, "decoders");
        if (!list || json_object_get_type(list) != json_type_array)
            return jl_fail(JL_ERR_FORMAT, "%s: %s.decoders: not an array", L->origin, path);
        for (size_t k = 0; k < json_object_array_length(list); k++) {
            snprintf(sub, sizeof sub, "%s.decoders[%zu]", path, k);
            jl_status st = add_decoder(L, json_object_array_get_idx(list, k), sub);
            if (st != JL_OK) return st;
        }
        return JL_OK;
    }
    if (!strcmp(type, "ByteLevel")) { /* byte-level tokens are stored as their bytes already; others: see install */
        L->dec_byte_level = 1;
        return JL_OK;
    }
    if (!strcmp(type, "ByteFallback")) {
        L->dec_byte_fallback = 1;
        return JL_OK;
    }
    if (!strcmp(type, "Fuse")) {
        L->dec_fused = 1;
        return JL_OK;
    }
    if (!strcmp(type, "Replace") || !strcmp(type, "Metaspace")) {
        const char *from, *to;
        if (!strcmp(type, "Replace")) {
            from = get_str(get(o, "pattern"), "String", NULL);
            to = get_str(o, "content", NULL);
            if (!from || !to) return unsupported(L, path, "a decoder Replace without a String pattern and content");
        } else {
            from = get_str(o, "replacement", NULL);
            if (!from) from = "\xE2\x96\x81";
            to = " ";
            const char *scheme = get_str(o, "prepend_scheme", NULL);
            int prepend = scheme ? strcmp(scheme, "never") != 0 : get_bool(o, "add_prefix_space", 1);
            if (prepend) {
                L->pipe.strip_char = ' ';
                L->pipe.strip_start = 1;
            }
        }
        if (L->n_dec_replace == TOK_MAX_STAGES) return unsupported(L, path, "this many decoders");
        L->dec_from[L->n_dec_replace] = from;
        L->dec_to[L->n_dec_replace++] = to;
        return JL_OK;
    }
    if (!strcmp(type, "Strip")) {
        size_t n;
        const char *c = get_str(o, "content", &n);
        uint32_t cp = ' ';
        if (c && (n == 0 || tok_utf8_char(c, n, &cp) != n))
            return jl_fail(JL_ERR_FORMAT, "%s: %s.content: must be one character", L->origin, path);
        if (!L->dec_fused) return unsupported(L, path, "a decoder Strip before Fuse (per token)");
        L->pipe.strip_char = cp;
        L->pipe.strip_start = json_object_get_int(get(o, "start"));
        L->pipe.strip_stop = json_object_get_int(get(o, "stop"));
        return JL_OK;
    }
    snprintf(sub, sizeof sub, "decoder type '%s'", type);
    return unsupported(L, path, sub);
}

/* ---- post-processor: TemplateProcessing's "single" gives the ids around one encoded text ---- */
static jl_status read_template(json_load *L, jl_tokenizer *t, json_object *o, const char *path) {
    if (is_null(o)) return JL_OK;
    const char *type = get_str(o, "type", NULL);
    char sub[256];
    if (!type) return jl_fail(JL_ERR_FORMAT, "%s: %s.type: missing", L->origin, path);
    if (!strcmp(type, "ByteLevel")) return JL_OK;
    if (!strcmp(type, "Sequence")) {
        json_object *list = get(o, "processors");
        for (size_t k = 0; list && k < json_object_array_length(list); k++) {
            snprintf(sub, sizeof sub, "%s.processors[%zu]", path, k);
            jl_status st = read_template(L, t, json_object_array_get_idx(list, k), sub);
            if (st != JL_OK) return st;
        }
        return JL_OK;
    }
    if (strcmp(type, "TemplateProcessing")) {
        snprintf(sub, sizeof sub, "post-processor type '%s'", type);
        return unsupported(L, path, sub);
    }
    json_object *single = get(o, "single"), *specials = get(o, "special_tokens");
    if (!single || json_object_get_type(single) != json_type_array)
        return jl_fail(JL_ERR_FORMAT, "%s: %s.single: not an array", L->origin, path);
    tok_pipeline *p = t->pipe;
    int after = 0;
    for (size_t k = 0; k < json_object_array_length(single); k++) {
        json_object *item = json_object_array_get_idx(single, k);
        if (get(item, "Sequence")) {
            after = 1;
            continue;
        }
        const char *name = get_str(get(item, "SpecialToken"), "id", NULL);
        json_object *ids = get(get(specials, name ? name : ""), "ids");
        if (!name || !ids || json_object_get_type(ids) != json_type_array)
            return jl_fail(JL_ERR_FORMAT, "%s: %s.single[%zu]: a SpecialToken without ids in special_tokens",
                           L->origin, path, k);
        for (size_t j = 0; j < json_object_array_length(ids); j++) {
            int64_t id = json_object_get_int64(json_object_array_get_idx(ids, j));
            if (id < 0 || id >= t->n_vocab)
                return jl_fail(JL_ERR_FORMAT, "%s: %s.special_tokens['%s'].ids[%zu]: id %lld out of range", L->origin,
                               path, name, j, (long long)id);
            int32_t **v = after ? &p->tpl_suffix : &p->tpl_prefix;
            size_t *n = after ? &p->n_tpl_suffix : &p->n_tpl_prefix;
            int32_t *g = realloc(*v, sizeof **v * (*n + 1));
            if (!g) return jl_fail(JL_ERR_NOMEM, "out of memory");
            *v = g;
            g[(*n)++] = (int32_t)id;
        }
    }
    return JL_OK;
}

/* ---- model ---- */
static jl_status read_vocab(json_load *L, json_object *model) {
    json_object *v = get(model, "vocab");
    if (!v || json_object_get_type(v) != json_type_object)
        return jl_fail(JL_ERR_FORMAT, "%s: model.vocab: missing or not an object", L->origin);
    if (!L->jd.vocab_at) /* json-c saw the same document: an object that json_scan.c did not find cannot happen */
        return json_object_object_length(v) ? jl_fail(JL_ERR_RUNTIME, "%s: model.vocab: not located", L->origin)
                                            : JL_OK;
    const char *s = L->doc;
    size_t i = L->jd.vocab_at + 1, n = L->jd.vocab_end, used = 0, cap = 0;
    /* the keys unescaped: each loses its two quotes and gains a NUL, so the value's length bounds them all */
    if (!(L->vkeys = malloc(n - L->jd.vocab_at))) return jl_fail(JL_ERR_NOMEM, "out of memory");
    size_t *key_off = NULL;
    jl_status st = JL_OK;
    for (;;) {
        tok_json_ws(s, n, &i);
        if (s[i] == '}') break;
        if (L->n_entries == cap) {
            cap = cap ? 2 * cap : 1024;
            size_t *ko = realloc(key_off, cap * sizeof *ko), *vl = realloc(L->vl, cap * sizeof *vl);
            int32_t *vi = realloc(L->vi, cap * sizeof *vi);
            if (ko) key_off = ko;
            if (vl) L->vl = vl;
            if (vi) L->vi = vi;
            if (!ko || !vl || !vi) {
                st = jl_fail(JL_ERR_NOMEM, "out of memory");
                break;
            }
        }
        char *key = L->vkeys + used;
        long kl = tok_json_string(s, n, &i, key); /* the document is valid JSON (tok_json_locate) */
        tok_json_ws(s, n, &i);
        i++; /* ':' */
        tok_json_ws(s, n, &i);
        int64_t id = 0;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9' && id < INT32_MAX) id = id * 10 + (s[i++] - '0');
        if (kl < 0 || i == d || id >= INT32_MAX / 2 || (i < n && (s[i] == '.' || (s[i] | 32) == 'e' ||
                                                                  (s[i] >= '0' && s[i] <= '9')))) {
            st = jl_fail(JL_ERR_FORMAT, "%s: model.vocab['%s']: id is not a valid integer", L->origin,
                         kl < 0 ? "?" : key);
            break;
        }
        key_off[L->n_entries] = used;
        L->vl[L->n_entries] = (size_t)kl;
        L->vi[L->n_entries++] = (int32_t)id;
        used += (size_t)kl + 1;
        if (id >= L->n_vocab) L->n_vocab = (int)id + 1;
        tok_json_ws(s, n, &i);
        if (s[i] == ',') i++;
    }
    if (st == JL_OK && !(L->vk = malloc((L->n_entries + 1) * sizeof *L->vk)))
        st = jl_fail(JL_ERR_NOMEM, "out of memory");
    for (size_t k = 0; st == JL_OK && k < L->n_entries; k++) L->vk[k] = L->vkeys + key_off[k];
    free(key_off);
    return st;
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

/* model.vocab's strings as written → id, in our own hash (json-c's lookups were most of the loading time). */
static jl_status build_string_index(json_load *L) {
    size_t cap = 16;
    while (cap < (size_t)L->n_vocab * 2) cap *= 2;
    L->str_slots = calloc(cap, sizeof *L->str_slots);
    if (!L->str_slots) return jl_fail(JL_ERR_NOMEM, "out of memory");
    L->str_mask = cap - 1;
    for (size_t k = 0; k < L->n_entries; k++) {
        const char *key = L->vk[k];
        size_t n = L->vl[k], i = tok_hash_bytes(key, n) & L->str_mask;
        for (; L->str_slots[i]; i = (i + 1) & L->str_mask) {
            int32_t id = (int32_t)L->str_slots[i] - 1;
            if (L->vocab_len[id] == n && !memcmp(L->vocab_str[id], key, n))
                return jl_fail(JL_ERR_FORMAT, "%s: model.vocab: '%s' is listed twice (ids %d and %d)", L->origin,
                               key, (int)id, (int)L->vi[k]);
        }
        L->str_slots[i] = (uint32_t)L->vi[k] + 1;
    }
    return JL_OK;
}

/* Lays out per-id strings from the vocab and added tokens, then converts them to the stored bytes in id order
 * (byte-level strings to raw bytes; a character-level vocabulary keeps its text). */
static jl_status collect_tokens(json_load *L, json_object *added) {
    size_t n = (size_t)L->n_vocab;
    L->tok_str = calloc(n, sizeof *L->tok_str);
    L->tok_len = calloc(n, sizeof *L->tok_len);
    L->tok_raw = calloc(n, 1);
    size_t n_added = added ? json_object_array_length(added) : 0;
    L->added_flags = malloc(n_added + 1);
    L->in_vocab = calloc(n, 1);
    if (!L->tok_str || !L->tok_len || !L->tok_raw || !L->added_flags || !L->in_vocab)
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    L->vocab_str = calloc(n + 1, sizeof *L->vocab_str);
    L->vocab_len = calloc(n + 1, sizeof *L->vocab_len);
    if (!L->vocab_str || !L->vocab_len) return jl_fail(JL_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < L->n_entries; k++) {
        int id = L->vi[k];
        if (L->tok_str[id]) return jl_fail(JL_ERR_FORMAT, "%s: model.vocab: id %d is used twice", L->origin, id);
        L->tok_str[id] = L->vocab_str[id] = L->vk[k];
        L->tok_len[id] = L->vocab_len[id] = L->vl[k];
    }
    jl_status ist = build_string_index(L);
    if (ist != JL_OK) return ist;
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
            size_t m = len;
            if (L->byte_level) m = tok_bytelevel_encode(content, len, raw);
            else memcpy(raw, content, len);
            int same_raw = len == L->tok_len[id] && !memcmp(content, L->tok_str[id], len);
            int same = m == L->tok_len[id] && memcmp(raw, L->tok_str[id], m) == 0;
            clash = !same && !same_raw;
            L->in_vocab[id] = same; /* BPE can make it too (Gemma's runs of newlines and ▁) */
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
        L->added_flags[L->special_ids.n] = (uint8_t)(
            (get_bool(a, "special", 0) ? TOK_ADDED_SPECIAL : 0) | (get_bool(a, "normalized", 0) ? TOK_ADDED_NORMALIZED : 0) |
            (get_bool(a, "lstrip", 0) ? TOK_ADDED_LSTRIP : 0) | (get_bool(a, "rstrip", 0) ? TOK_ADDED_RSTRIP : 0) |
            (get_bool(a, "single_word", 0) ? TOK_ADDED_SINGLE_WORD : 0));
        if (tok_ivec_push(&L->special_ids, id)) return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    char *buf = NULL;
    size_t cap = 0;
    jl_status st = JL_OK;
    for (size_t id = 0; id < n && st == JL_OK; id++) {
        if (!L->tok_str[id]) { /* a gap in the ids (GPT-4o has some): an empty token nothing encodes to */
            st = tok_table_add(&L->table, "", 0);
            continue;
        }
        if (L->tok_len[id] + 1 > cap) {
            cap = 2 * L->tok_len[id] + 16;
            char *b = realloc(buf, cap);
            if (!b) { st = jl_fail(JL_ERR_NOMEM, "out of memory"); break; }
            buf = b;
        }
        long m = (long)L->tok_len[id];
        if (L->tok_raw[id] || !L->byte_level) memcpy(buf, L->tok_str[id], L->tok_len[id]);
        else m = tok_bytelevel_decode(L->tok_str[id], L->tok_len[id], buf);
        if (m < 0) st = jl_fail(JL_ERR_FORMAT, "%s: model.vocab['%s']: not a byte-level token", L->origin,
                                L->tok_str[id]);
        else st = tok_table_add(&L->table, buf, (size_t)m);
    }
    free(buf);
    return st;
}

static int32_t vocab_id(json_load *L, const char *s, size_t n) {
    if (!L->str_slots) return -1;
    for (size_t i = tok_hash_bytes(s, n) & L->str_mask; L->str_slots[i]; i = (i + 1) & L->str_mask) {
        int32_t id = (int32_t)L->str_slots[i] - 1;
        const char *v = L->vocab_str[id];
        if (v && L->vocab_len[id] == n && !memcmp(v, s, n)) return id;
    }
    return -1;
}

/* The string at doc[*i] into *buf (grown as needed); its length, or -1 when memory is short. */
static long merge_string(json_load *L, size_t *i, char **buf, size_t *cap) {
    size_t end = *i, n = L->jd.merges_end;
    tok_json_string(L->doc, n, &end, NULL); /* only its written length, which bounds the unescaped one */
    if (end - *i + 1 > *cap) {
        size_t c = 2 * (end - *i) + 64;
        char *b = realloc(*buf, c);
        if (!b) return -1;
        *buf = b;
        *cap = c;
    }
    return tok_json_string(L->doc, n, i, *buf);
}

static jl_status read_merges(json_load *L, json_object *merges) {
    if (!merges) return JL_OK;
    if (json_object_get_type(merges) != json_type_array)
        return jl_fail(JL_ERR_FORMAT, "%s: model.merges: not an array", L->origin);
    if (!L->jd.merges_at)
        return json_object_array_length(merges) ? jl_fail(JL_ERR_RUNTIME, "%s: model.merges: not located", L->origin)
                                                : JL_OK;
    const char *s = L->doc;
    size_t i = L->jd.merges_at + 1, n = L->jd.merges_end, cap_a = 0, cap_b = 0;
    char *a = NULL, *b = NULL;
    jl_status st = JL_OK;
    for (size_t k = 0; st == JL_OK; k++) {
        tok_json_ws(s, n, &i);
        if (s[i] == ']') break;
        int32_t l = -1, r = -1;
        if (s[i] == '"') {
            long m = merge_string(L, &i, &a, &cap_a);
            if (m < 0) { st = jl_fail(JL_ERR_NOMEM, "out of memory"); break; }
            const char *sp = memchr(a, ' ', (size_t)m);
            if (sp) {
                l = vocab_id(L, a, (size_t)(sp - a));
                r = vocab_id(L, sp + 1, (size_t)m - (size_t)(sp + 1 - a));
            }
        } else if (s[i] == '[') { /* ["a", "b"]: exactly two strings */
            i++;
            tok_json_ws(s, n, &i);
            long ma = s[i] == '"' ? merge_string(L, &i, &a, &cap_a) : -2;
            tok_json_ws(s, n, &i);
            int comma = ma >= 0 && s[i] == ',';
            if (comma) i++;
            tok_json_ws(s, n, &i);
            long mb = comma && s[i] == '"' ? merge_string(L, &i, &b, &cap_b) : -2;
            tok_json_ws(s, n, &i);
            if (ma == -1 || mb == -1) { st = jl_fail(JL_ERR_NOMEM, "out of memory"); break; }
            if (ma >= 0 && mb >= 0 && s[i] == ']') {
                l = vocab_id(L, a, (size_t)ma);
                r = vocab_id(L, b, (size_t)mb);
                i++;
            }
        }
        if (l < 0 || r < 0)
            st = jl_fail(JL_ERR_FORMAT, "%s: model.merges[%zu]: not two tokens of the vocabulary", L->origin, k);
        /* HF ranks merges by their index */
        else if (tok_ivec_push(&L->merge_left, l) || tok_ivec_push(&L->merge_right, r) ||
                 tok_ivec_push(&L->merge_rank, (int32_t)k))
            st = jl_fail(JL_ERR_NOMEM, "out of memory");
        tok_json_ws(s, n, &i);
        if (s[i] == ',') i++;
    }
    free(a);
    free(b);
    return st;
}

/* Model fields that only make sense on the built tokenizer: byte fallback ids, unk, the prefix / suffix. */
static jl_status read_model_extras(json_load *L, json_object *model) {
    tok_pipeline *p = &L->pipe;
    p->unk_id = -1;
    for (int b = 0; b < 256; b++) p->byte_fb[b] = -1;
    json_object *dropout = get(model, "dropout");
    if (!is_null(dropout) && json_object_get_double(dropout) < 1.0)
        return unsupported(L, "model.dropout", "BPE dropout");
    p->byte_fallback = get_bool(model, "byte_fallback", 0);
    for (int b = 0; b < 256 && p->byte_fallback; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        p->byte_fb[b] = vocab_id(L, name, 6);
    }
    size_t n;
    const char *unk = get_str(model, "unk_token", &n);
    if (unk && (p->unk_id = vocab_id(L, unk, n)) < 0)
        return jl_fail(JL_ERR_FORMAT, "%s: model.unk_token '%s' is not in model.vocab", L->origin, unk);
    p->fuse_unk = get_bool(model, "fuse_unk", 0);
    const char *pre = get_str(model, "continuing_subword_prefix", &n);
    if (pre && n) {
        if (!(p->subword_prefix = dup_bytes(pre, n))) return jl_fail(JL_ERR_NOMEM, "out of memory");
        p->prefix_len = n;
    }
    const char *suf = get_str(model, "end_of_word_suffix", &n);
    if (suf && n) {
        if (!(p->word_suffix = dup_bytes(suf, n))) return jl_fail(JL_ERR_NOMEM, "out of memory");
        p->suffix_len = n;
    }
    if ((p->prefix_len || p->suffix_len) && L->byte_level)
        return unsupported(L, "model.continuing_subword_prefix", "a subword prefix or word suffix with ByteLevel");
    return JL_OK;
}

static jl_status read_model(json_load *L, json_object *root) {
    if (json_object_get_type(root) != json_type_object)
        return jl_fail(JL_ERR_FORMAT, "%s: not a JSON object", L->origin);
    json_object *model = get(root, "model");
    if (!model || json_object_get_type(model) != json_type_object)
        return jl_fail(JL_ERR_FORMAT, "%s: model: missing or not an object", L->origin);
    const char *type = get_str(model, "type", NULL);
    if (type && strcmp(type, "BPE"))
        return jl_fail(JL_ERR_FORMAT, "%s: model.type: '%s' is not supported (only BPE)", L->origin, type);
    L->ignore_merges = get_bool(model, "ignore_merges", 0);
    L->parallel_safe = 1;
    json_object *added = get(root, "added_tokens");
    jl_status st = add_normalizer(L, get(root, "normalizer"), "normalizer");
    if (st == JL_OK) st = add_pretokenizer(L, get(root, "pre_tokenizer"), "pre_tokenizer");
    if (st == JL_OK) st = add_decoder(L, get(root, "decoder"), "decoder");
    if (st == JL_OK) st = read_vocab(L, model);
    if (st == JL_OK) st = read_added(L, added);
    if (st == JL_OK && L->byte_level && L->n_vocab < 256)
        return jl_fail(JL_ERR_FORMAT, "%s: model.vocab has %d tokens, fewer than the 256 bytes", L->origin, L->n_vocab);
    /* ids run 0..n-1 without gaps, so the largest id is bounded by the entries the file has: checked before the
     * per-id tables are allocated (an id of 2^30 in a 7 KB file would otherwise cost gigabytes) */
    if (st != JL_OK) return st;
    const size_t entries = L->n_entries +
                           (added && json_object_get_type(added) == json_type_array ? json_object_array_length(added) : 0);
    if ((size_t)L->n_vocab > entries + (1u << 20)) /* (smaller gaps: the per-id check below names the first) */
        return jl_fail(JL_ERR_FORMAT, "%s: token ids are missing: the largest is %d but the file lists only %zu tokens "
                       "(ids must be 0..N-1 without gaps)", L->origin, L->n_vocab - 1, entries);
    if (st == JL_OK) st = collect_tokens(L, added);
    if (st == JL_OK) st = read_merges(L, get(model, "merges"));
    if (st == JL_OK) st = read_model_extras(L, model);
    return st;
}

/* Code points c such that "c▁" (c not ▁) occurs inside some token: no SPM word cut after them. */
static jl_status spm_bad_chars(jl_tokenizer *t, tok_pipeline *p) {
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const char *s = t->tok_bytes + t->tok_off[id];
        size_t n = t->tok_off[id + 1] - t->tok_off[id];
        for (size_t i = 1; i + 3 <= n; i++) {
            const char *hit = memmem(s + i, n - i, "\xE2\x96\x81", 3);
            if (!hit) break;
            i = (size_t)(hit - s);
            uint32_t cp;
            tok_utf8_prev(s, i, &cp);
            int have = cp == 0x2581;
            for (int k = 0; k < p->n_spm_bad && !have; k++) have = p->spm_bad[k] == cp;
            if (!have) {
                if (p->n_spm_bad == 64) return JL_ERR_ARG; /* too many: do not cut at all */
                uint32_t *v = realloc(p->spm_bad, sizeof *v * (size_t)(p->n_spm_bad + 1));
                if (!v) return jl_fail(JL_ERR_NOMEM, "out of memory");
                p->spm_bad = v;
                v[p->n_spm_bad++] = cp;
            }
            i += 2;
        }
    }
    return JL_OK;
}

/* p->char_id: the token of each code point of the table (the symbols of a char-level word start as these). */
static jl_status char_table(const jl_tokenizer *t, tok_pipeline *p) {
    p->char_id = malloc(sizeof *p->char_id * TOK_CHAR_TABLE);
    if (!p->char_id) return jl_fail(JL_ERR_NOMEM, "out of memory");
    for (uint32_t cp = 0; cp < TOK_CHAR_TABLE; cp++) {
        char u[4];
        p->char_id[cp] = cp >= 0xD800 && cp < 0xE000 ? -1 : tok_lookup(t, u, tok_utf8_put(cp, u));
    }
    return JL_OK;
}

/* Whether a byte-fallback token or unk is the left side of some merge. The SPM word cut looks at the character
 * before "▁"; a character the vocabulary lacks is a <0xNN> / <unk> symbol there, and a merge of that symbol with
 * "▁..." would make a token holding ">▁" that spm_bad_chars blames on '>', not on that character. No real
 * vocabulary merges them; where one does, no cut is made at all. */
static int fallback_merges(const jl_tokenizer *t, const tok_pipeline *p) {
    for (int k = 0; k < t->n_merges; k++) {
        int32_t l = t->merge_left[k];
        if (l == p->unk_id) return 1;
        for (int b = 0; b < 256; b++)
            if (p->byte_fb[b] == l) return 1;
    }
    return 0;
}

/* Whether encode may cut a text segment (between raw-matched added tokens) before a space whose previous character
 * c is neither a space, "▁" nor in spm_bad (tok_spm_cut_ok), and encode the parts apart: exactly when every
 * normalizer is Replace(" " → "▁") or a Prepend without a space (skipped on the part after the cut: it is for the
 * segment's start), the pre-tokenizer stages before SPM_WORDS are Splits (not inverted) on a literal with a space in
 * it (after that Replace no space is left for them to match: each passes its piece on whole) and no added token is matched
 * in the normalised text. Then the normalised segment holds "c▁" at the cut, where SPM_WORDS cuts too; the pieces
 * on either side, and so their BPE, are the same apart as together. (Llama 2 and Gemma 3 are of this shape.) */
static int spm_cut_allowed(const tok_pipeline *p) {
    int replaced = 0;
    if (!p->lossy_utf8 || p->norm_added.n) return 0; /* lossy_utf8: the text is valid UTF-8 when it is cut */
    for (int k = 0; k < p->n_norm; k++) {
        const tok_norm *nm = &p->norm[k];
        if (nm->kind == TOK_NORM_PREPEND && !memchr(nm->to, ' ', nm->to_len)) continue;
        if (nm->kind != TOK_NORM_REPLACE || nm->re || nm->from_len != 1 || nm->from[0] != ' ' || nm->to_len != 3 ||
            memcmp(nm->to, "\xE2\x96\x81", 3))
            return 0;
        replaced = 1;
    }
    for (int k = 0; k + 1 < p->n_pre; k++) {
        const tok_pre *pr = &p->pre[k];
        if (pr->kind != TOK_PRE_SPLIT || pr->re || pr->invert || !pr->literal ||
            !memchr(pr->literal, ' ', pr->literal_len))
            return 0;
    }
    return replaced && p->n_pre && p->pre[p->n_pre - 1].kind == TOK_PRE_SPM_WORDS;
}

/* Whether some token holds a newline followed by an ASCII letter or digit (then text cannot be cut there). */
static int newline_then_alnum(const jl_tokenizer *t) {
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const char *s = t->tok_bytes + t->tok_off[id], *end = t->tok_bytes + t->tok_off[id + 1];
        for (const char *p = memchr(s, '\n', (size_t)(end - s)); p && p + 1 < end;
             p = memchr(p + 1, '\n', (size_t)(end - p - 1))) {
            unsigned char c = (unsigned char)p[1];
            if ((unsigned)((c | 32) - 'a') < 26u || (unsigned)(c - '0') < 10u) return 1;
        }
    }
    return 0;
}

static int has_design_specials(const jl_tokenizer *t) {
    for (int k = 0; k < JL_TOKENIZER_N_SPECIAL; k++)
        if (jl_tokenizer_special(t, jl_tokenizer_special_names[k]) < 0) return 0;
    return 1;
}

/* Moves the pipeline read from the file into the built tokenizer (replacing its plain one). */
static jl_status install_pipeline(json_load *L, jl_tokenizer *t, json_object *root) {
    tok_pipeline *p = t->pipe, *r = &L->pipe;
    p->n_norm = r->n_norm;
    memcpy(p->norm, r->norm, sizeof r->norm);
    p->n_pre = r->n_pre;
    memcpy(p->pre, r->pre, sizeof r->pre);
    r->n_norm = r->n_pre = 0;
    memcpy(p->byte_fb, r->byte_fb, sizeof r->byte_fb);
    p->byte_fallback = r->byte_fallback;
    p->unk_id = r->unk_id;
    p->fuse_unk = r->fuse_unk;
    p->subword_prefix = r->subword_prefix;
    p->word_suffix = r->word_suffix;
    p->prefix_len = r->prefix_len;
    p->suffix_len = r->suffix_len;
    r->subword_prefix = r->word_suffix = NULL;
    p->strip_char = r->strip_char;
    p->strip_start = r->strip_start;
    p->strip_stop = r->strip_stop;
    p->char_level = !L->byte_level;
    p->lossy_utf8 = !L->byte_level || !has_design_specials(t);
    /* added tokens: normalized ones are matched after the normalizer (when there is one) */
    size_t n = L->special_ids.n;
    int32_t *raw_ids = malloc(sizeof(int32_t) * (n + 1)), *norm_ids = malloc(sizeof(int32_t) * (n + 1));
    uint8_t *raw_fl = malloc(n + 1), *norm_fl = malloc(n + 1);
    jl_status st = raw_ids && norm_ids && raw_fl && norm_fl ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory");
    int nr = 0, nn = 0;
    for (size_t k = 0; k < n && st == JL_OK; k++) {
        int late = (L->added_flags[k] & TOK_ADDED_NORMALIZED) && p->n_norm > 0;
        if (late) norm_ids[nn] = L->special_ids.v[k], norm_fl[nn++] = L->added_flags[k];
        else raw_ids[nr] = L->special_ids.v[k], raw_fl[nr++] = L->added_flags[k];
    }
    if (nn) t->parallel_safe = 0;
    if (st == JL_OK) {
        tok_added_free(&p->raw_added);
        st = tok_added_build(t, &p->raw_added, raw_ids, raw_fl, nr);
    }
    if (st == JL_OK) st = tok_added_build(t, &p->norm_added, norm_ids, norm_fl, nn);
    free(raw_ids);
    free(norm_ids);
    free(raw_fl);
    free(norm_fl);
    if (st == JL_OK && p->char_level && !p->prefix_len && !p->suffix_len && tok_lookup(t, "\xE2\x96\x81", 3) >= 0 &&
        p->n_pre < TOK_MAX_STAGES) {
        jl_status bad = fallback_merges(t, p) ? JL_ERR_ARG : spm_bad_chars(t, p);
        if (bad == JL_OK) {
            p->pre[p->n_pre++] = (tok_pre){.kind = TOK_PRE_SPM_WORDS};
            p->spm_cut = spm_cut_allowed(p);
        } else if (bad != JL_ERR_ARG) st = bad;
    }
    if (st == JL_OK && p->char_level && !p->prefix_len && !p->suffix_len) st = char_table(t, p);
    int dec_bytes = L->dec_byte_level && !L->byte_level; /* the model sees characters, the decoder wants bytes */
    if (st == JL_OK && (L->n_dec_replace || L->dec_byte_fallback || dec_bytes))
        st = tok_decoder_build(t, L->n_dec_replace, L->dec_from, L->dec_to, L->dec_byte_fallback, dec_bytes);
    if (st == JL_OK) st = read_template(L, t, get(root, "post_processor"), "post_processor");
    return st;
}

/* The document with model.vocab and model.merges replaced by {} and [] (json-c parses the rest); *shift gets where
 * each blanked span began and how many bytes it lost, to give json-c's error offsets in the original text. */
static char *blank_large(const char *json, size_t len, const tok_json_doc *d, size_t *out_len, size_t shift[2][2]) {
    size_t at[2] = {d->vocab_at, d->merges_at}, end[2] = {d->vocab_end, d->merges_end};
    const char *with[2] = {"{}", "[]"};
    int order[2] = {0, 1};
    if (at[1] && (!at[0] || at[1] < at[0])) order[0] = 1, order[1] = 0;
    char *b = malloc(len + 1);
    if (!b) return NULL;
    size_t o = 0, from = 0;
    for (int j = 0; j < 2; j++) {
        int k = order[j];
        shift[j][0] = shift[j][1] = 0;
        if (!at[k]) continue;
        memcpy(b + o, json + from, at[k] - from);
        o += at[k] - from;
        memcpy(b + o, with[k], 2);
        o += 2;
        shift[j][0] = o;
        shift[j][1] = end[k] - at[k] - 2;
        from = end[k];
    }
    memcpy(b + o, json + from, len - from);
    o += len - from;
    b[o] = '\0';
    *out_len = o;
    return b;
}

/* owned: the caller's buffer holding json, kept as the tokenizer's source text (freed on failure); NULL: copied. */
static jl_status from_json(const char *json, size_t len, const char *origin, char *owned, jl_tokenizer **out) {
    *out = NULL;
    if (len > INT_MAX) {
        free(owned);
        return jl_fail(JL_ERR_FORMAT, "%s: too large for a tokenizer.json", origin);
    }
    tok_json_doc jd;
    if (tok_json_locate(json, len, &jd)) {
        jl_status st = jl_fail(JL_ERR_FORMAT, "%s: invalid JSON at byte %zu: %s", origin, jd.err_at, jd.err);
        free(owned);
        return st;
    }
    size_t small_len, shift[2][2];
    char *small = blank_large(json, len, &jd, &small_len, shift);
    json_tokener *tk = small ? json_tokener_new_ex(64) : NULL;
    if (!tk) {
        free(small);
        free(owned);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    json_object *root = json_tokener_parse_ex(tk, small, (int)small_len);
    enum json_tokener_error jerr = json_tokener_get_error(tk);
    free(small);
    if (!root || jerr != json_tokener_success) {
        const char *why = jerr == json_tokener_continue || jerr == json_tokener_success
                              ? "unexpected end of the text (truncated?)"
                              : json_tokener_error_desc(jerr);
        size_t at = json_tokener_get_parse_end(tk), orig = at;
        for (int j = 0; j < 2; j++)
            if (shift[j][1] && at >= shift[j][0]) orig += shift[j][1];
        jl_status st = jl_fail(JL_ERR_FORMAT, "%s: invalid JSON at byte %zu: %s", origin, orig, why);
        json_object_put(root);
        json_tokener_free(tk);
        free(owned);
        return st;
    }
    json_tokener_free(tk);
    json_load L = {.origin = origin, .doc = json, .jd = jd};
    jl_status st = read_model(&L, root);
    jl_tokenizer *t = NULL;
    if (st == JL_OK) {
        tok_spec sp = {.n_vocab = L.table.n, .tok_off = L.table.off, .tok_bytes = L.table.bytes,
                       .n_merges = (int)L.merge_left.n, .merge_left = L.merge_left.v, .merge_right = L.merge_right.v,
                       .merge_rank = L.merge_rank.v, .n_special = (int)L.special_ids.n, .special_ids = L.special_ids.v,
                       .pattern = L.first_regex, .ignore_merges = L.ignore_merges, .char_level = !L.byte_level,
                       .subword_prefix = L.pipe.subword_prefix, .in_vocab = L.in_vocab, .origin = origin};
        st = tok_build(&sp, &t);
    }
    if (st == JL_OK) st = install_pipeline(&L, t, root);
    if (st == JL_OK) {
        t->parallel_safe = L.parallel_safe && !t->pipe->norm_added.n &&
                           (L.byte_level ? L.first_regex != NULL : !newline_then_alnum(t));
        t->source_json = owned ? owned : dup_bytes(json, len);
        t->source_len = len;
        owned = NULL;
        if (!t->source_json) st = jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    if (st == JL_OK) *out = t;
    else jl_tokenizer_free(t);
    /* what install_pipeline did not take */
    tok_pipeline *rest = calloc(1, sizeof *rest);
    if (rest) {
        *rest = L.pipe;
        memset(&rest->raw_added, 0, sizeof rest->raw_added);
        memset(&rest->norm_added, 0, sizeof rest->norm_added);
        tok_pipeline_free(rest);
    }
    free(owned);
    free(L.vkeys);
    free(L.vk);
    free(L.vl);
    free(L.vi);
    free(L.tok_str);
    free(L.tok_len);
    free(L.tok_raw);
    free(L.added_flags);
    free(L.in_vocab);
    free(L.str_slots);
    free(L.vocab_str);
    free(L.vocab_len);
    tok_table_free(&L.table);
    free(L.merge_left.v);
    free(L.merge_right.v);
    free(L.merge_rank.v);
    free(L.special_ids.v);
    json_object_put(root);
    return st;
}

jl_status jl_tokenizer_from_json(const char *json, size_t len, jl_tokenizer **out) {
    return from_json(json, len, "tokenizer.json", NULL, out);
}

jl_status jl_tokenizer_load(const char *path, jl_tokenizer **out) {
    *out = NULL;
    char *data;
    size_t len;
    jl_status st = jl_read_file(path, &data, &len);
    if (st != JL_OK) return st;
    return from_json(data, len, path, data, out);
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
    if (t->source_json) { /* a loaded file goes back as it was */
        *json_out = dup_bytes(t->source_json, t->source_len);
        return *json_out ? JL_OK : jl_fail(JL_ERR_NOMEM, "out of memory (tokenizer.json)");
    }
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

/* The tokenizer with texts[0..n) appended as added tokens (ids from its vocabulary size on, "special": false:
 * matched in any text before pre-tokenization, decoded as themselves), through its tokenizer.json so that the
 * result is exactly what loading the saved file gives. */
jl_status jl_tokenizer_add_tokens(const jl_tokenizer *t, const char *const *texts, int n, jl_tokenizer **out) {
    *out = NULL;
    for (int k = 0; k < n; k++) {
        if (!texts[k] || !texts[k][0]) return jl_fail(JL_ERR_ARG, "added token %d: empty", k + 1);
        for (int j = 0; j < k; j++)
            if (!strcmp(texts[j], texts[k])) return jl_fail(JL_ERR_ARG, "added token '%s': given twice", texts[k]);
        for (int k2 = 0; k2 < t->n_special; k2++) {
            size_t l;
            const char *s = jl_tokenizer_token(t, t->special_ids[k2], &l);
            if (l == strlen(texts[k]) && !memcmp(s, texts[k], l))
                return jl_fail(JL_ERR_ARG, "added token '%s': the tokenizer has it already", texts[k]);
        }
    }
    char *json;
    jl_status st = jl_tokenizer_to_json(t, &json);
    if (st != JL_OK) return st;
    json_object *root = json_tokener_parse(json), *added = NULL;
    free(json);
    if (!root || !json_object_object_get_ex(root, "added_tokens", &added) ||
        json_object_get_type(added) != json_type_array) {
        json_object_put(root);
        return jl_fail(JL_ERR_FORMAT, "tokenizer.json: no added_tokens array to extend");
    }
    for (int k = 0; k < n; k++) {
        json_object *a = json_object_new_object();
        json_object_object_add(a, "id", json_object_new_int(t->n_vocab + k));
        json_object_object_add(a, "content", json_object_new_string(texts[k]));
        json_object_object_add(a, "single_word", json_object_new_boolean(0));
        json_object_object_add(a, "lstrip", json_object_new_boolean(0));
        json_object_object_add(a, "rstrip", json_object_new_boolean(0));
        json_object_object_add(a, "normalized", json_object_new_boolean(0));
        json_object_object_add(a, "special", json_object_new_boolean(0));
        json_object_array_add(added, a);
    }
    const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    st = s ? from_json(s, strlen(s), "tokenizer.json (with added tokens)", NULL, out) : jl_fail(JL_ERR_NOMEM, "out of memory");
    json_object_put(root);
    return st;
}
