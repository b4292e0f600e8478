/* Imports of existing byte-level BPE vocabularies: GPT-2's encoder.json + vocab.bpe, and tiktoken rank files.
 * The DESIGN special tokens are appended after the imported ids. */
#include "io/fileio.h"
#include "tokenizer/tok_internal.h"
#include <json-c/json.h>
#include <string.h>

static jl_status append_design_specials(tok_table *tb, tok_ivec *special_ids) {
    for (int k = 0; k < JL_TOKENIZER_N_SPECIAL; k++) {
        if (tok_ivec_push(special_ids, tb->n)) return jl_fail(JL_ERR_NOMEM, "out of memory");
        jl_status st = tok_table_add(tb, jl_tokenizer_special_names[k], strlen(jl_tokenizer_special_names[k]));
        if (st != JL_OK) return st;
    }
    return JL_OK;
}

/* "<|...|>" tokens of an imported vocabulary (GPT-2's <|endoftext|>) are control tokens, not text. */
static int looks_special(const char *s, size_t n) {
    return n > 4 && !memcmp(s, "<|", 2) && !memcmp(s + n - 2, "|>", 2);
}

/* ---- GPT-2 ---- */
static jl_status gpt2_vocab(json_object *enc, const char *path, tok_table *tb, tok_ivec *specials) {
    int n = 0;
    json_object_object_foreach(enc, key0, val0) {
        int64_t id = json_object_get_int64(val0);
        if (json_object_get_type(val0) != json_type_int || id < 0 || id >= INT32_MAX / 2)
            return jl_fail(JL_ERR_FORMAT, "%s: '%s': id is not a valid integer", path, key0);
        if (id >= n) n = (int)id + 1;
    }
    /* ids run 0..n-1 without gaps: an id beyond the entry count is refused before the table is allocated
     * (fuzzing: {"a":0,"b":535358879} asked for 4 GB) */
    if (n > json_object_object_length(enc))
        return jl_fail(JL_ERR_FORMAT, "%s: token ids are missing: the largest is %d but the file lists %d tokens (ids must "
                       "be 0..N-1 without gaps)", path, n - 1, json_object_object_length(enc));
    const char **by_id = calloc((size_t)n + 1, sizeof *by_id);
    if (!by_id) return jl_fail(JL_ERR_NOMEM, "out of memory");
    jl_status st = JL_OK;
    json_object_object_foreach(enc, key, val) {
        int id = json_object_get_int(val);
        if (by_id[id]) {
            st = jl_fail(JL_ERR_FORMAT, "%s: id %d is used twice", path, id);
            break;
        }
        by_id[id] = key;
    }
    char *buf = NULL;
    size_t cap = 0;
    for (int id = 0; id < n && st == JL_OK; id++) {
        if (!by_id[id]) {
            st = jl_fail(JL_ERR_FORMAT, "%s: id %d is missing (ids must be 0..%d)", path, id, n - 1);
            break;
        }
        size_t len = strlen(by_id[id]);
        if (len + 1 > cap) {
            cap = 2 * len + 16;
            char *b = realloc(buf, cap);
            if (!b) { st = jl_fail(JL_ERR_NOMEM, "out of memory"); break; }
            buf = b;
        }
        long m = tok_bytelevel_decode(by_id[id], len, buf);
        if (m < 0) st = jl_fail(JL_ERR_FORMAT, "%s: '%s': not a byte-level token", path, by_id[id]);
        else if (looks_special(by_id[id], len) && tok_ivec_push(specials, id)) st = jl_fail(JL_ERR_NOMEM, "oom");
        if (st == JL_OK) st = tok_table_add(tb, buf, (size_t)m);
    }
    free(buf);
    free(by_id);
    return st;
}

static jl_status gpt2_merges(json_object *enc, const char *path, char *text, tok_ivec *ml, tok_ivec *mr) {
    int line_no = 0;
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        line_no++;
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r') line[--n] = '\0';
        if (n == 0 || (line_no == 1 && line[0] == '#')) continue;
        char *sp = strchr(line, ' ');
        json_object *l = NULL, *r = NULL;
        if (sp) {
            *sp = '\0';
            json_object_object_get_ex(enc, line, &l);
            json_object_object_get_ex(enc, sp + 1, &r);
        }
        if (!l || !r) return jl_fail(JL_ERR_FORMAT, "%s:%d: expected two tokens of encoder.json", path, line_no);
        if (tok_ivec_push(ml, json_object_get_int(l)) || tok_ivec_push(mr, json_object_get_int(r)))
            return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    return JL_OK;
}

jl_status jl_tokenizer_import_gpt2(const char *encoder_json_path, const char *vocab_bpe_path, jl_tokenizer **out) {
    *out = NULL;
    json_object *enc = json_object_from_file(encoder_json_path);
    if (!enc || json_object_get_type(enc) != json_type_object) {
        json_object_put(enc);
        return jl_fail(JL_ERR_FORMAT, "%s: not a JSON object of token → id", encoder_json_path);
    }
    char *merges_text = NULL;
    size_t merges_len;
    tok_table tb = {0};
    tok_ivec specials = {0}, ml = {0}, mr = {0};
    jl_status st = jl_read_file(vocab_bpe_path, &merges_text, &merges_len);
    if (st == JL_OK) st = gpt2_vocab(enc, encoder_json_path, &tb, &specials);
    if (st == JL_OK) st = gpt2_merges(enc, vocab_bpe_path, merges_text, &ml, &mr);
    if (st == JL_OK) st = append_design_specials(&tb, &specials);
    if (st == JL_OK) {
        tok_spec sp = {.n_vocab = tb.n, .tok_off = tb.off, .tok_bytes = tb.bytes, .n_merges = (int)ml.n,
                       .merge_left = ml.v, .merge_right = mr.v, .n_special = (int)specials.n,
                       .special_ids = specials.v, .pattern = jl_tokenizer_pattern_text(JL_PATTERN_GPT2),
                       .origin = vocab_bpe_path};
        st = tok_build(&sp, out);
    }
    json_object_put(enc);
    free(merges_text);
    tok_table_free(&tb);
    free(specials.v);
    free(ml.v);
    free(mr.v);
    return st;
}

/* ---- tiktoken ---- */
static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes standard base64 (with '=' padding); returns the length or -1. */
static long b64_decode(const char *s, size_t n, char *dst) {
    while (n && s[n - 1] == '=') n--;
    long out = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            dst[out++] = (char)((acc >> bits) & 0xFF);
        }
    }
    return out;
}

typedef struct {
    uint32_t off, len;
} span;

/* Parses "<base64> <rank>" lines into tokens indexed by rank (ranks must be 0..n-1, each once). */
static jl_status tiktoken_ranks(const char *path, char *text, size_t len, tok_table *tb) {
    size_t n_lines = 0;
    for (size_t i = 0; i < len; i++) n_lines += text[i] == '\n';
    n_lines++;
    span *by_rank = calloc(n_lines, sizeof *by_rank);
    uint8_t *seen = calloc(n_lines, 1);
    char *raw = malloc(len + 1); /* decoded bytes of all tokens, in file order */
    if (!by_rank || !seen || !raw) {
        free(by_rank);
        free(seen);
        free(raw);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    jl_status st = JL_OK;
    size_t raw_len = 0, n_tokens = 0;
    int line_no = 0;
    for (char *line = text, *next; line && st == JL_OK; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        line_no++;
        if (!*line || (*line == '\r' && !line[1])) continue;
        char *sp = strchr(line, ' '), *end;
        long long rank = sp ? strtoll(sp + 1, &end, 10) : -1;
        if (!sp || end == sp + 1 || (*end && *end != '\r') || rank < 0 || (size_t)rank >= n_lines) {
            st = jl_fail(JL_ERR_FORMAT, "%s:%d: expected '<base64 token> <rank>'", path, line_no);
            break;
        }
        long m = b64_decode(line, (size_t)(sp - line), raw + raw_len);
        if (m <= 0) st = jl_fail(JL_ERR_FORMAT, "%s:%d: invalid base64 token", path, line_no);
        else if (seen[rank]) st = jl_fail(JL_ERR_FORMAT, "%s:%d: rank %lld appears twice", path, line_no, rank);
        else {
            seen[rank] = 1;
            by_rank[rank] = (span){(uint32_t)raw_len, (uint32_t)m};
            raw_len += (size_t)m;
            n_tokens++;
        }
    }
    for (size_t r = 0; r < n_tokens && st == JL_OK; r++) {
        if (!seen[r]) st = jl_fail(JL_ERR_FORMAT, "%s: rank %zu is missing (ranks must be 0..%zu)", path, r,
                                   n_tokens - 1);
        else st = tok_table_add(tb, raw + by_rank[r].off, by_rank[r].len);
    }
    free(by_rank);
    free(seen);
    free(raw);
    return st;
}

/* Every split of every token into two vocabulary tokens is a merge of the token's rank, so that BPE by pair
 * rank reproduces tiktoken's "merge the adjacent pair whose concatenation has the lowest rank". */
static jl_status tiktoken_merges(const jl_tokenizer *plain, int n_ranked, tok_ivec *ml, tok_ivec *mr,
                                 tok_ivec *rank) {
    for (int32_t id = 0; id < n_ranked; id++) {
        size_t len;
        const char *s = jl_tokenizer_token(plain, id, &len);
        for (size_t cut = 1; cut < len; cut++) {
            int32_t l = tok_lookup(plain, s, cut), r = tok_lookup(plain, s + cut, len - cut);
            if (l < 0 || r < 0) continue;
            /* keep each token's merges ordered by (left, right) id, as HF's tiktoken conversion does */
            size_t at = ml->n;
            if (tok_ivec_push(ml, l) || tok_ivec_push(mr, r) || tok_ivec_push(rank, id))
                return jl_fail(JL_ERR_NOMEM, "out of memory");
            while (at > 0 && rank->v[at - 1] == id &&
                   (ml->v[at - 1] > l || (ml->v[at - 1] == l && mr->v[at - 1] > r))) {
                ml->v[at] = ml->v[at - 1];
                mr->v[at] = mr->v[at - 1];
                at--;
            }
            ml->v[at] = l;
            mr->v[at] = r;
        }
    }
    return JL_OK;
}

jl_status jl_tokenizer_import_tiktoken(const char *path, const char *pattern, jl_tokenizer **out) {
    *out = NULL;
    char *text;
    size_t len;
    jl_status st = jl_read_file(path, &text, &len);
    if (st != JL_OK) return st;
    tok_table tb = {0};
    tok_ivec specials = {0}, ml = {0}, mr = {0}, rank = {0};
    jl_tokenizer *plain = NULL;
    st = tiktoken_ranks(path, text, len, &tb);
    int n_ranked = tb.n;
    if (st == JL_OK) st = append_design_specials(&tb, &specials);
    tok_spec sp = {.n_vocab = tb.n, .tok_off = tb.off, .tok_bytes = tb.bytes, .n_special = (int)specials.n,
                   .special_ids = specials.v, .pattern = pattern, .ignore_merges = 1, .origin = path};
    if (st == JL_OK) st = tok_build(&sp, &plain); /* no merges yet: gives the bytes → id lookup */
    if (st == JL_OK) st = tiktoken_merges(plain, n_ranked, &ml, &mr, &rank);
    if (st == JL_OK) {
        sp.n_merges = (int)ml.n;
        sp.merge_left = ml.v;
        sp.merge_right = mr.v;
        sp.merge_rank = rank.v;
        st = tok_build(&sp, out);
    }
    jl_tokenizer_free(plain);
    free(text);
    tok_table_free(&tb);
    free(specials.v);
    free(ml.v);
    free(mr.v);
    free(rank.v);
    return st;
}
