/* Streaming text: byte-level BPE tokens may end inside a UTF-8 character, and a stop string may arrive split
 * over several tokens. Bytes wait in `pending` until they are known to be whole characters that cannot be
 * the start of a stop string. */
#include "jielong/generate.h"
#include "core/utf8.h"
#include <stdlib.h>
#include <string.h>

struct jl_textstream {
    char **stops;
    int n_stops;
    char *pending, *out;
    size_t n_pending, cap, max_stop;
    int stopped;
};

jl_status jl_textstream_new(const char *const *stops, int n_stops, jl_textstream **out) {
    *out = NULL;
    jl_textstream *ts = calloc(1, sizeof *ts);
    if (!ts) return jl_fail(JL_ERR_NOMEM, "out of memory");
    ts->stops = calloc((size_t)(n_stops > 0 ? n_stops : 1), sizeof(char *));
    if (!ts->stops) {
        free(ts);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n_stops; i++) {
        if (!stops[i] || !stops[i][0]) {
            jl_textstream_free(ts);
            return jl_fail(JL_ERR_ARG, "stop string %d is empty", i + 1);
        }
        ts->stops[ts->n_stops] = strdup(stops[i]);
        if (!ts->stops[ts->n_stops]) {
            jl_textstream_free(ts);
            return jl_fail(JL_ERR_NOMEM, "out of memory");
        }
        size_t len = strlen(stops[i]);
        if (len > ts->max_stop) ts->max_stop = len;
        ts->n_stops++;
    }
    *out = ts;
    return JL_OK;
}

void jl_textstream_free(jl_textstream *ts) {
    if (!ts) return;
    for (int i = 0; i < ts->n_stops; i++) free(ts->stops[i]);
    free(ts->stops);
    free(ts->pending);
    free(ts->out);
    free(ts);
}

void jl_textstream_reset(jl_textstream *ts) {
    ts->n_pending = 0;
    ts->stopped = 0;
}

/* Bytes at the end of s[0..len) that begin a UTF-8 character whose remaining bytes have not arrived. */
static size_t incomplete_tail(const char *s, size_t len) {
    for (size_t back = 1; back <= 4 && back <= len; back++) {
        unsigned char b = (unsigned char)s[len - back];
        if ((b & 0xC0) == 0x80) continue; /* continuation byte: keep looking for the lead */
        size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
        return back < need ? back : 0;
    }
    return 0;
}

/* Longest suffix of s[0..len) that is a proper prefix of some stop string. */
static size_t stop_prefix_tail(const jl_textstream *ts, const char *s, size_t len) {
    size_t longest = 0;
    for (int i = 0; i < ts->n_stops; i++) {
        size_t sl = strlen(ts->stops[i]);
        for (size_t k = sl - 1; k > longest; k--)
            if (k <= len && memcmp(s + len - k, ts->stops[i], k) == 0) {
                longest = k;
                break;
            }
    }
    return longest;
}

/* Earliest occurrence of any stop string in s[0..len), or len if none. */
static size_t first_stop(const jl_textstream *ts, const char *s, size_t len) {
    size_t best = len;
    for (int i = 0; i < ts->n_stops; i++) {
        size_t sl = strlen(ts->stops[i]);
        for (size_t at = 0; at + sl <= len && at < best; at++)
            if (memcmp(s + at, ts->stops[i], sl) == 0) {
                best = at;
                break;
            }
    }
    return best;
}

static int reserve(jl_textstream *ts, size_t need) {
    if (need <= ts->cap) return 1;
    size_t cap = ts->cap ? ts->cap : 64;
    while (cap < need) cap *= 2;
    char *p = realloc(ts->pending, cap), *o;
    if (!p) return 0;
    ts->pending = p;
    o = realloc(ts->out, 3 * cap + 4); /* every byte may become a 3-byte U+FFFD */
    if (!o) return 0;
    ts->out = o;
    ts->cap = cap;
    return 1;
}

/* Moves the first n pending bytes to the output buffer as valid UTF-8: a model may emit any byte sequence, and
 * each malformed byte becomes U+FFFD (as a decoder with errors="replace" does). */
static void emit(jl_textstream *ts, size_t n, const char **out, size_t *out_len) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t used = jl_utf8_decode(ts->pending + i, n - i, &cp);
        if (cp == JL_UTF8_INVALID) {
            memcpy(ts->out + o, "\xEF\xBF\xBD", 3);
            o += 3;
        } else {
            memcpy(ts->out + o, ts->pending + i, used);
            o += used;
        }
        i += used;
    }
    memmove(ts->pending, ts->pending + n, ts->n_pending - n);
    ts->n_pending -= n;
    *out = ts->out;
    *out_len = o;
}

int jl_textstream_push(jl_textstream *ts, const char *bytes, size_t len, const char **out, size_t *out_len) {
    *out = "";
    *out_len = 0;
    if (ts->stopped) return 1;
    if (!reserve(ts, ts->n_pending + len + 1)) return 0; /* out of memory: hold nothing new back */
    memcpy(ts->pending + ts->n_pending, bytes, len);
    ts->n_pending += len;
    size_t at = first_stop(ts, ts->pending, ts->n_pending);
    if (at < ts->n_pending) {
        emit(ts, at, out, out_len);
        ts->n_pending = 0;
        ts->stopped = 1;
        return 1;
    }
    size_t hold = incomplete_tail(ts->pending, ts->n_pending), hold_stop = stop_prefix_tail(ts, ts->pending, ts->n_pending);
    if (hold_stop > hold) hold = hold_stop;
    emit(ts, ts->n_pending - hold, out, out_len);
    return 0;
}

void jl_textstream_flush(jl_textstream *ts, const char **out, size_t *out_len) {
    *out = "";
    *out_len = 0;
    if (ts->stopped || ts->n_pending == 0) return;
    size_t broken = incomplete_tail(ts->pending, ts->n_pending);
    emit(ts, ts->n_pending - broken, out, out_len);
    if (broken) { /* the unfinished character becomes one U+FFFD */
        memcpy(ts->out + *out_len, "\xEF\xBF\xBD", 3);
        *out_len += 3;
        ts->n_pending = 0;
    }
}
