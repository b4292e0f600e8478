/* The HF pipeline pieces that are not the BPE model: UTF-8 helpers, added-token matching, normalizers (Unicode
 * normalisation and lowercasing from ICU), decoder tables. See pipeline.h. */
#include "tokenizer/pipeline.h"
#include <string.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

/* ---------------------------------------------------------------- UTF-8 */
size_t tok_utf8_char(const char *str, size_t n, uint32_t *cp) {
    const unsigned char *s = (const unsigned char *)str;
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) len = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, v = c & 0x07, min = 0x10000;
    else goto bad;
    if (len > n) goto bad;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) goto bad;
        v = (v << 6) | (s[k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) goto bad;
    *cp = v;
    return len;
bad:
    *cp = 0xFFFD;
    return 1;
}

size_t tok_utf8_put(uint32_t cp, char *d) {
    if (cp < 0x80) { d[0] = (char)cp; return 1; }
    if (cp < 0x800) { d[0] = (char)(0xC0 | (cp >> 6)); d[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        d[0] = (char)(0xE0 | (cp >> 12)); d[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); d[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | (cp >> 18)); d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    d[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); d[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t tok_utf8_prev(const char *s, size_t n, uint32_t *cp) {
    size_t k = 1;
    while (k < 4 && k < n && ((unsigned char)s[n - k] & 0xC0) == 0x80) k++;
    size_t len = tok_utf8_char(s + n - k, k, cp);
    if (len != k) { /* not one character: the last byte alone */
        *cp = 0xFFFD;
        return 1;
    }
    return k;
}

int tok_utf8_valid(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        while (i + 8 <= n) { /* ASCII, eight bytes at a time */
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        if (s[i] < 0x80) { i++; continue; }
        uint32_t cp;
        size_t len = tok_utf8_char(str + i, n - i, &cp);
        if (cp == 0xFFFD && len == 1) return 0;
        i += len;
    }
    return 1;
}

/* Length of the maximal prefix of an ill-formed sequence at s that could start a character (WHATWG). */
static size_t invalid_run(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return 1;
    size_t k = 1;
    if (k < n && s[k] >= lo && s[k] <= hi) {
        k++;
        while (k < need && k < n && (s[k] & 0xC0) == 0x80) k++;
    }
    return k;
}

jl_status tok_utf8_lossy(const char *str, size_t n, char **out, size_t *out_len) {
    char *d = malloc(3 * n + 1);
    if (!d) return jl_fail(JL_ERR_NOMEM, "out of memory (%zu bytes of text)", n);
    size_t i = 0, o = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = tok_utf8_char(str + i, n - i, &cp);
        if (cp == 0xFFFD && len == 1) {
            len = invalid_run((const unsigned char *)str + i, n - i);
            o += tok_utf8_put(0xFFFD, d + o);
        } else {
            memcpy(d + o, str + i, len);
            o += len;
        }
        i += len;
    }
    d[o] = '\0';
    *out = d;
    *out_len = o;
    return JL_OK;
}

int tok_is_whitespace(uint32_t c) {
    return (c >= 9 && c <= 13) || c == ' ' || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

int tok_is_alnum(uint32_t c) {
    if (c < 0x80) return (unsigned)((c | 32) - 'a') < 26u || (unsigned)(c - '0') < 10u;
    int8_t cat = u_charType((UChar32)c);
    return cat == U_UPPERCASE_LETTER || cat == U_LOWERCASE_LETTER || cat == U_TITLECASE_LETTER ||
           cat == U_MODIFIER_LETTER || cat == U_OTHER_LETTER || cat == U_DECIMAL_DIGIT_NUMBER ||
           cat == U_LETTER_NUMBER || cat == U_OTHER_NUMBER;
}

/* ---------------------------------------------------------------- added tokens */
static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

static const char *tok_str(const jl_tokenizer *t, int32_t id, size_t *len) {
    *len = t->tok_off[id + 1] - t->tok_off[id];
    return t->tok_bytes + t->tok_off[id];
}

jl_status tok_added_build(const jl_tokenizer *t, tok_added_set *set, const int32_t *ids, const uint8_t *flags, int n) {
    memset(set, 0, sizeof *set);
    size_t cap = pow2_at_least((size_t)n * 2 + 2);
    set->ids = malloc(sizeof(int32_t) * ((size_t)n + 1));
    set->flags = malloc((size_t)n + 1);
    set->slots = calloc(cap, sizeof *set->slots);
    set->lengths = malloc(sizeof(uint32_t) * ((size_t)n + 1));
    set->pre2 = calloc(TOK_PRE2_SLOTS, sizeof *set->pre2);
    if (!set->ids || !set->flags || !set->slots || !set->lengths || !set->pre2)
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    set->mask = cap - 1;
    for (int b = 0x21; b < 0x7f; b++) set->cut_ok[b] = 1;
    for (int k = 0; k < n; k++) {
        size_t len;
        const char *s = tok_str(t, ids[k], &len);
        for (size_t i = 0; i < len; i++) set->cut_ok[(unsigned char)s[i]] = 0;
        if (len == 0) continue;
        size_t i = tok_hash_bytes(s, len) & set->mask;
        int dup = 0;
        for (; set->slots[i]; i = (i + 1) & set->mask) {
            size_t l2;
            const char *s2 = tok_str(t, set->ids[set->slots[i] - 1], &l2);
            if (l2 == len && !memcmp(s, s2, len)) dup = 1;
        }
        if (dup) continue; /* the same text twice: the first id counts */
        set->ids[set->n] = ids[k];
        set->flags[set->n] = flags[k];
        set->slots[i] = (uint32_t)++set->n;
        set->first[(unsigned char)s[0]] |= len == 1 ? 3 : 1;
        if (len > 1)
            set->pre2[tok_added_pre2((unsigned char)s[0], (unsigned char)s[1])] |= 1ull << (len < 65 ? len - 2 : 63);
        int have = 0;
        for (int j = 0; j < set->n_lengths; j++) have |= set->lengths[j] == len;
        if (!have) {
            int j = set->n_lengths++;
            while (j > 0 && set->lengths[j - 1] < len) {
                set->lengths[j] = set->lengths[j - 1];
                j--;
            }
            set->lengths[j] = (uint32_t)len;
        }
    }
    return JL_OK;
}

void tok_added_free(tok_added_set *set) {
    free(set->ids);
    free(set->flags);
    free(set->slots);
    free(set->lengths);
    free(set->pre2);
    memset(set, 0, sizeof *set);
}

size_t tok_added_match(const jl_tokenizer *t, const tok_added_set *set, const char *s, size_t n, int allow_special,
                       int *index) {
    if (!set->n || !set->first[(unsigned char)s[0]]) return 0;
    uint64_t maybe = n > 1 ? set->pre2[tok_added_pre2((unsigned char)s[0], (unsigned char)s[1])] : 0;
    for (int j = 0; j < set->n_lengths; j++) {
        size_t len = set->lengths[j];
        if (len > n) continue;
        if (len == 1 ? !(set->first[(unsigned char)s[0]] & 2) : !(maybe >> (len < 65 ? len - 2 : 63) & 1)) continue;
        for (size_t i = tok_hash_bytes(s, len) & set->mask; set->slots[i]; i = (i + 1) & set->mask) {
            int k = (int)set->slots[i] - 1;
            size_t l2;
            const char *s2 = tok_str(t, set->ids[k], &l2);
            if (l2 != len || memcmp(s, s2, len)) continue;
            if ((set->flags[k] & TOK_ADDED_SPECIAL) && !allow_special) break;
            *index = k;
            return len;
        }
    }
    return 0;
}

int tok_added_accept(const tok_added_set *set, int k, const char *text, size_t len, size_t *start, size_t *end) {
    uint8_t f = set->flags[k];
    uint32_t cp;
    if (f & TOK_ADDED_SINGLE_WORD) {
        if (*start > 0) {
            tok_utf8_prev(text, *start, &cp);
            if (tok_is_alnum(cp)) return 0;
        }
        if (*end < len) {
            tok_utf8_char(text + *end, len - *end, &cp);
            if (tok_is_alnum(cp)) return 0;
        }
    }
    if (f & TOK_ADDED_LSTRIP)
        while (*start > 0) {
            size_t l = tok_utf8_prev(text, *start, &cp);
            if (!tok_is_whitespace(cp)) break;
            *start -= l;
        }
    if (f & TOK_ADDED_RSTRIP)
        while (*end < len) {
            size_t l = tok_utf8_char(text + *end, len - *end, &cp);
            if (!tok_is_whitespace(cp)) break;
            *end += l;
        }
    return 1;
}

/* ---------------------------------------------------------------- normalizers */
void tok_norm_scratch_free(tok_norm_scratch *s) {
    free(s->a);
    free(s->b);
    free(s->u);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int reserve(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int all_below(const char *s, size_t n, unsigned char limit) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= limit) return 0;
    return 1;
}

/* UTF-8 → UTF-16 into sc->u; returns its length or -1. */
static int32_t to_utf16(tok_norm_scratch *sc, const char *s, size_t n) {
    if (n > INT32_MAX / 2 || reserve((void **)&sc->u, &sc->cap_u, n + 1, sizeof(uint16_t))) return -1;
    UErrorCode err = U_ZERO_ERROR;
    int32_t len = 0;
    u_strFromUTF8WithSub((UChar *)sc->u, (int32_t)sc->cap_u, &len, s, (int32_t)n, 0xFFFD, NULL, &err);
    return U_FAILURE(err) ? -1 : len;
}

/* UTF-16 src[0..n) → UTF-8 into *dst (buffer `which` of the scratch). */
static int from_utf16(char **buf, size_t *cap, const uint16_t *src, int32_t n, size_t *out_len) {
    if (reserve((void **)buf, cap, (size_t)n * 3 + 1, 1)) return -1;
    UErrorCode err = U_ZERO_ERROR;
    int32_t len = 0;
    u_strToUTF8(*buf, (int32_t)*cap, &len, (const UChar *)src, n, &err);
    if (U_FAILURE(err)) return -1;
    *out_len = (size_t)len;
    return 0;
}

static const UNormalizer2 *icu_normalizer(tok_norm_kind kind) {
    UErrorCode err = U_ZERO_ERROR;
    const UNormalizer2 *n = kind == TOK_NORM_NFC    ? unorm2_getNFCInstance(&err)
                            : kind == TOK_NORM_NFD  ? unorm2_getNFDInstance(&err)
                            : kind == TOK_NORM_NFKC ? unorm2_getNFKCInstance(&err)
                                                    : unorm2_getNFKDInstance(&err);
    return U_FAILURE(err) ? NULL : n;
}

/* One normalizer: s → (*out, *out_len), which is s itself when nothing changes, else buffer *buf. */
static jl_status norm_unicode(const tok_norm *nm, tok_norm_scratch *sc, char **buf, size_t *cap, const char *s,
                              size_t n, const char **out, size_t *out_len) {
    /* ASCII never changes; below U+0300 (lead bytes < 0xCC) nothing composes or decomposes under NFC */
    if (all_below(s, n, nm->kind == TOK_NORM_NFC ? 0xCC : 0x80)) {
        *out = s;
        *out_len = n;
        return JL_OK;
    }
    const UNormalizer2 *un = icu_normalizer(nm->kind);
    int32_t len = un ? to_utf16(sc, s, n) : -1;
    if (len < 0) return jl_fail(JL_ERR_RUNTIME, "normalizer: ICU failed");
    UErrorCode err = U_ZERO_ERROR;
    int32_t span = unorm2_spanQuickCheckYes(un, (const UChar *)sc->u, len, &err);
    if (U_SUCCESS(err) && span == len) {
        *out = s;
        *out_len = n;
        return JL_OK;
    }
    int32_t need = len * 4 + 16;
    if (reserve((void **)&sc->v, &sc->cap_v, (size_t)need, sizeof(uint16_t)))
        return jl_fail(JL_ERR_NOMEM, "out of memory (normalizer)");
    err = U_ZERO_ERROR;
    int32_t m = unorm2_normalize(un, (const UChar *)sc->u, len, (UChar *)sc->v, (int32_t)sc->cap_v, &err);
    if (U_FAILURE(err) || from_utf16(buf, cap, sc->v, m, out_len))
        return jl_fail(JL_ERR_RUNTIME, "normalizer: ICU normalisation failed (%s)", u_errorName(err));
    *out = *buf;
    return JL_OK;
}

static jl_status norm_lower(tok_norm_scratch *sc, char **buf, size_t *cap, const char *s, size_t n, const char **out,
                            size_t *out_len) {
    if (reserve((void **)buf, cap, n + 1, 1)) return jl_fail(JL_ERR_NOMEM, "out of memory (normalizer)");
    if (all_below(s, n, 0x80)) {
        for (size_t i = 0; i < n; i++) (*buf)[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
        *out = *buf;
        *out_len = n;
        return JL_OK;
    }
    int32_t len = to_utf16(sc, s, n);
    if (len < 0 || reserve((void **)&sc->v, &sc->cap_v, (size_t)len * 3 + 16, sizeof(uint16_t)))
        return jl_fail(JL_ERR_NOMEM, "out of memory (normalizer)");
    UErrorCode err = U_ZERO_ERROR;
    int32_t m = u_strToLower((UChar *)sc->v, (int32_t)sc->cap_v, (const UChar *)sc->u, len, "", &err);
    if (U_FAILURE(err) || from_utf16(buf, cap, sc->v, m, out_len))
        return jl_fail(JL_ERR_RUNTIME, "normalizer Lowercase: ICU failed (%s)", u_errorName(err));
    *out = *buf;
    return JL_OK;
}

static jl_status norm_replace(const tok_norm *nm, char **buf, size_t *cap, const char *s, size_t n, const char **out,
                              size_t *out_len) {
    if (nm->re) {
        PCRE2_SIZE len = n * (nm->to_len + 1) + 64;
        for (int tries = 0; tries < 2; tries++) {
            if (reserve((void **)buf, cap, len + 1, 1)) return jl_fail(JL_ERR_NOMEM, "out of memory (normalizer)");
            len = *cap;
            int rc = pcre2_substitute(nm->re, (PCRE2_SPTR)s, n, 0,
                                      PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_LITERAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH,
                                      NULL, NULL, (PCRE2_SPTR)nm->to, nm->to_len, (PCRE2_UCHAR *)*buf, &len);
            if (rc >= 0) {
                *out = *buf;
                *out_len = len;
                return JL_OK;
            }
            if (rc != PCRE2_ERROR_NOMEMORY) return jl_fail(JL_ERR_RUNTIME, "normalizer Replace: regex failed (%d)", rc);
        }
        return jl_fail(JL_ERR_NOMEM, "out of memory (normalizer)");
    }
    const char *hit = nm->from_len ? memmem(s, n, nm->from, nm->from_len) : NULL;
    if (!hit) {
        *out = s;
        *out_len = n;
        return JL_OK;
    }
    size_t worst = nm->to_len > nm->from_len ? n / nm->from_len * (nm->to_len - nm->from_len) + n : n;
    if (reserve((void **)buf, cap, worst + 1, 1)) return jl_fail(JL_ERR_NOMEM, "out of memory (normalizer)");
    size_t o = 0, i = 0;
    while (hit) {
        size_t at = (size_t)(hit - s);
        memcpy(*buf + o, s + i, at - i);
        o += at - i;
        memcpy(*buf + o, nm->to, nm->to_len);
        o += nm->to_len;
        i = at + nm->from_len;
        hit = memmem(s + i, n - i, nm->from, nm->from_len);
    }
    memcpy(*buf + o, s + i, n - i);
    *out = *buf;
    *out_len = o + n - i;
    return JL_OK;
}

static jl_status norm_one(const tok_norm *nm, tok_norm_scratch *sc, char **buf, size_t *cap, const char *s, size_t n,
                          const char **out, size_t *out_len) {
    switch (nm->kind) {
    case TOK_NORM_NFC: case TOK_NORM_NFD: case TOK_NORM_NFKC: case TOK_NORM_NFKD:
        return norm_unicode(nm, sc, buf, cap, s, n, out, out_len);
    case TOK_NORM_LOWER: return norm_lower(sc, buf, cap, s, n, out, out_len);
    case TOK_NORM_REPLACE: return norm_replace(nm, buf, cap, s, n, out, out_len);
    case TOK_NORM_PREPEND:
        if (n == 0) break; /* HF prepends only to a non-empty text */
        if (reserve((void **)buf, cap, n + nm->to_len + 1, 1)) return jl_fail(JL_ERR_NOMEM, "out of memory");
        memcpy(*buf, nm->to, nm->to_len);
        memcpy(*buf + nm->to_len, s, n);
        *out = *buf;
        *out_len = n + nm->to_len;
        return JL_OK;
    case TOK_NORM_STRIP: {
        uint32_t cp;
        if (nm->left)
            while (n) {
                size_t l = tok_utf8_char(s, n, &cp);
                if (!tok_is_whitespace(cp)) break;
                s += l;
                n -= l;
            }
        if (nm->right)
            while (n) {
                size_t l = tok_utf8_prev(s, n, &cp);
                if (!tok_is_whitespace(cp)) break;
                n -= l;
            }
        break;
    }
    }
    *out = s;
    *out_len = n;
    return JL_OK;
}

jl_status tok_normalize(const tok_pipeline *p, tok_norm_scratch *sc, const char *s, size_t n, int cont,
                        const char **out, size_t *out_len) {
    for (int k = 0; k < p->n_norm; k++) {
        if (cont && p->norm[k].kind == TOK_NORM_PREPEND) continue;
        /* write into whichever buffer does not hold the current text */
        int in_a = sc->a && s >= sc->a && s <= sc->a + sc->cap_a;
        char **buf = in_a ? &sc->b : &sc->a;
        size_t *cap = in_a ? &sc->cap_b : &sc->cap_a;
        jl_status st = norm_one(&p->norm[k], sc, buf, cap, s, n, &s, &n);
        if (st != JL_OK) return st;
    }
    *out = s;
    *out_len = n;
    return JL_OK;
}

/* ---------------------------------------------------------------- lossless pipelines */
static int added_keep_text(const tok_added_set *set) {
    for (int k = 0; k < set->n; k++)
        if (set->flags[k] & (TOK_ADDED_LSTRIP | TOK_ADDED_RSTRIP)) return 0;
    return 1;
}

int tok_lossless(const jl_tokenizer *t) {
    const tok_pipeline *p = t->pipe;
    if (p->char_level || p->n_norm || p->dec_bytes || p->strip_start || p->strip_stop) return 0;
    for (int k = 0; k < p->n_pre; k++)
        if (p->pre[k].kind != TOK_PRE_SPLIT || p->pre[k].behavior == TOK_SPLIT_REMOVED) return 0;
    return added_keep_text(&p->raw_added) && added_keep_text(&p->norm_added);
}

/* ---------------------------------------------------------------- decoder */
static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "<0xNN>" → the byte, -1 if the token is not one. */
static int byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>' || hexval(s[3]) < 0 || hexval(s[4]) < 0) return -1;
    return hexval(s[3]) * 16 + hexval(s[4]);
}

jl_status tok_decoder_build(jl_tokenizer *t, int n_replace, const char *const *from, const char *const *to,
                            int byte_fallback, int byte_level) {
    tok_pipeline *p = t->pipe;
    tok_table tb = {0};
    char *cur = NULL, *next = NULL;
    size_t cap = 0;
    jl_status st = JL_OK;
    for (int32_t id = 0; id < t->n_vocab && st == JL_OK; id++) {
        size_t n;
        const char *s = tok_str(t, id, &n);
        int b = byte_fallback ? byte_token(s, n) : -1; /* HF decodes added tokens through the decoders too */
        if (b >= 0) {
            char c = (char)b;
            st = tok_table_add(&tb, &c, 1);
            continue;
        }
        if (n_replace == 0 && !byte_level) {
            st = tok_table_add(&tb, s, n);
            continue;
        }
        size_t need = n * 8 + 16;
        if (need > cap) {
            cap = need;
            char *a = realloc(cur, cap), *c = a ? realloc(next, cap) : NULL;
            if (!a || !c) { free(a ? a : cur); free(c ? c : next); cur = next = NULL;
                            st = jl_fail(JL_ERR_NOMEM, "out of memory"); break; }
            cur = a;
            next = c;
        }
        memcpy(cur, s, n);
        size_t len = n;
        for (int r = 0; r < n_replace; r++) {
            size_t fl = strlen(from[r]), tl = strlen(to[r]), o = 0;
            for (size_t i = 0; i < len;) {
                if (fl && i + fl <= len && !memcmp(cur + i, from[r], fl)) {
                    if (o + tl > cap) break;
                    memcpy(next + o, to[r], tl);
                    o += tl;
                    i += fl;
                } else next[o++] = cur[i++];
            }
            char *sw = cur;
            cur = next;
            next = sw;
            len = o;
        }
        /* ByteLevel on a model that sees characters (no ByteLevel pre-tokenizer): a token all of whose characters
         * are GPT-2 byte characters becomes those bytes; any other token stays as it is (HF's rule) */
        long m = byte_level ? tok_bytelevel_decode(cur, len, next) : -1;
        st = m >= 0 ? tok_table_add(&tb, next, (size_t)m) : tok_table_add(&tb, cur, len);
    }
    free(cur);
    free(next);
    if (st == JL_OK) {
        free(p->dec_off);
        free(p->dec_bytes);
        p->dec_off = tb.off;
        p->dec_bytes = tb.bytes ? tb.bytes : calloc(1, 1);
        if (!p->dec_bytes) st = jl_fail(JL_ERR_NOMEM, "out of memory");
        return st;
    }
    tok_table_free(&tb);
    return st;
}

/* ---------------------------------------------------------------- the plain pipeline */
jl_status tok_pipeline_default(jl_tokenizer *t) {
    tok_pipeline *p = calloc(1, sizeof *p);
    if (!p) return jl_fail(JL_ERR_NOMEM, "out of memory");
    t->pipe = p;
    p->unk_id = -1;
    for (int b = 0; b < 256; b++) p->byte_fb[b] = -1;
    uint8_t *flags = malloc((size_t)t->n_special + 1);
    if (!flags) return jl_fail(JL_ERR_NOMEM, "out of memory");
    memset(flags, TOK_ADDED_SPECIAL, (size_t)t->n_special + 1);
    jl_status st = tok_added_build(t, &p->raw_added, t->special_ids, flags, t->n_special);
    free(flags);
    if (st != JL_OK) return st;
    if (t->re) {
        p->n_pre = 1;
        p->pre[0] = (tok_pre){.kind = TOK_PRE_SPLIT, .re = t->re, .behavior = TOK_SPLIT_ISOLATED,
                              .scan = tok_scan_kind_of(t->pattern, strlen(t->pattern))};
    }
    return JL_OK;
}

void tok_pipeline_free(tok_pipeline *p) {
    if (!p) return;
    for (int k = 0; k < p->n_norm; k++) {
        free(p->norm[k].from);
        free(p->norm[k].to);
        if (p->norm[k].re) pcre2_code_free(p->norm[k].re);
    }
    for (int k = 0; k < p->n_pre; k++) {
        if (p->pre[k].owns_re && p->pre[k].re) pcre2_code_free(p->pre[k].re);
        free(p->pre[k].literal);
    }
    tok_added_free(&p->raw_added);
    tok_added_free(&p->norm_added);
    free(p->subword_prefix);
    free(p->word_suffix);
    free(p->spm_bad);
    free(p->char_id);
    free(p->dec_off);
    free(p->dec_bytes);
    free(p->tpl_prefix);
    free(p->tpl_suffix);
    free(p);
}

jl_status tok_compile_regex(const char *pattern, size_t len, pcre2_code **out) {
    int err;
    PCRE2_SIZE off;
    uint32_t opts = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, opts, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return jl_fail(JL_ERR_FORMAT, "regex, offset %zu: %s", (size_t)off, (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    *out = re;
    return JL_OK;
}
