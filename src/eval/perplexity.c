#include "jielong/eval.h"
#include "jielong/data.h"
#include "jielong/pretrain.h"
#include "io/fileio.h"
#include "model/model.h"
#include "core/rng.h"
#include "core/seqloss.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static long count_utf8_chars(const char *s, size_t len) {
    long n = 0;
    for (size_t i = 0; i < len; i++) n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* Mean next-token loss of ids (every token after the first predicted once, windows overlapping by one). */
static jl_status score_ids(jl_model *m, const int32_t *seq, size_t total, int window, jl_ppl_result *out) {
    jl_status need = jl_model_require_params(m, "perplexity"); /* the full forward pass reads every fp32 weight */
    if (need != JL_OK) return need;
    if (window < 2 || window > m->cfg.max_seq_len)
        return jl_fail(JL_ERR_ARG, "window %d out of range [2..%d]", window, m->cfg.max_seq_len);
    for (size_t i = 0; i < total; i++)
        if (seq[i] < 0 || seq[i] >= m->cfg.vocab_size)
            return jl_fail(JL_ERR_ARG, "token %d at position %zu is beyond the model's vocabulary %d", seq[i], i,
                           m->cfg.vocab_size);
    if (total < 2) return jl_fail(JL_ERR_ARG, "text is too short to score");
    jl_acts a;
    jl_status st = jl_acts_new(&m->cfg, 1, window, &a);
    if (st != JL_OK) return st;
    int32_t *targets = malloc(sizeof(int32_t) * (size_t)window);
    if (!targets) st = jl_fail(JL_ERR_NOMEM, "out of memory");
    for (size_t start = 0; st == JL_OK && start + 1 < total; start += (size_t)window - 1) {
        size_t T = total - start < (size_t)window ? total - start : (size_t)window;
        for (size_t t = 0; t + 1 < T; t++) targets[t] = seq[start + t + 1];
        targets[T - 1] = -1;
        long counted;
        out->nll += jl_model_forward(m, &a, seq + start, targets, 1, (int)T, 0.0f, &counted);
        out->tokens += counted;
        if (start + T >= total) break;
    }
    free(targets);
    jl_acts_free(&a);
    if (st == JL_OK && !isfinite(out->nll))
        st = jl_fail(JL_ERR_FORMAT, "the model's loss is not finite (%g): its weights hold NaN or Inf", out->nll);
    return st;
}

static void finish(jl_ppl_result *out) {
    out->ppl = exp(out->nll / (double)out->tokens);
    out->bits_per_byte = out->nll / log(2.0) / (double)(out->bytes ? out->bytes : 1);
    out->bits_per_char = out->nll / log(2.0) / (double)(out->chars ? out->chars : 1);
}

jl_status jl_eval_perplexity(jl_model *m, const jl_tokenizer *tok, const char *text, size_t len, int window,
                             jl_ppl_result *out) {
    memset(out, 0, sizeof *out);
    int32_t *seq = NULL;
    size_t total = 0;
    jl_status st = jl_encode_documents(tok, text, len, &seq, &total);
    if (st == JL_OK) st = score_ids(m, seq, total, window, out);
    free(seq);
    if (st != JL_OK) return st;
    out->bytes = (long)len;
    out->chars = count_utf8_chars(text, len);
    finish(out);
    return JL_OK;
}

jl_status jl_eval_perplexity_tokens(jl_model *m, const jl_tokenizer *tok, const int32_t *ids, size_t n, int window,
                                    jl_ppl_result *out) {
    memset(out, 0, sizeof *out);
    jl_status st = score_ids(m, ids, n, window, out);
    if (st != JL_OK) return st;
    /* bytes and characters of the text the tokens stand for: documents decoded one by one, <|bos|> left out */
    int32_t bos = jl_tokenizer_bos(tok); /* the separator prepare put between documents */
    for (size_t i = 0; i < n && st == JL_OK;) {
        size_t j = i;
        while (j < n && ids[j] != bos) j++;
        if (j > i) {
            char *text;
            size_t len;
            if ((st = jl_tokenizer_decode(tok, ids + i, j - i, &text, &len)) != JL_OK) break;
            out->bytes += (long)len;
            out->chars += count_utf8_chars(text, len);
            free(text);
        }
        i = j + 1;
    }
    if (st == JL_OK) finish(out);
    return st;
}

/* Text to score must be text: valid UTF-8 (a leading BOM is skipped) without NUL bytes. */
static jl_status check_text(const char *path, const char *text, size_t len) {
    size_t i = len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    while (i < len) {
        unsigned char c = (unsigned char)text[i];
        size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 && c >= 0xC2 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 && c <= 0xF4 ? 4 : 0;
        int ok = k > 0 && c != 0 && i + k <= len;
        for (size_t j = 1; ok && j < k; j++) ok = ((unsigned char)text[i + j] & 0xC0) == 0x80;
        if (!ok)
            return jl_fail(JL_ERR_FORMAT, "%s: byte %zu (0x%02X) is not UTF-8 text; --data takes text files, token "
                           "shards (.bin from jielong prepare) or a prepared folder", path, i, c);
        i += k;
    }
    return JL_OK;
}

jl_status jl_eval_perplexity_file(jl_model *m, const jl_tokenizer *tok, const char *path, int window,
                                  jl_ppl_result *out) {
    jl_data_kind kind = JL_DATA_TEXT;
    jl_status st = jl_data_kind_of(path, &kind);
    if (st != JL_OK) return st;
    if (kind == JL_DATA_FOLDER || kind == JL_DATA_SHARD) {
        jl_tokens toks = {0};
        st = jl_tokens_load_heldout(path, jl_tokenizer_vocab_size(tok), &toks);
        if (st == JL_OK) st = jl_eval_perplexity_tokens(m, tok, toks.ids, toks.n, window, out);
        jl_tokens_free(&toks);
        return st == JL_OK ? JL_OK : jl_fail_context(st, "%s", path);
    }
    if (kind != JL_DATA_TEXT)
        return jl_fail(JL_ERR_FORMAT, "%s: is a %s, not text to score (--data takes text files, token shards or a "
                       "prepared folder)", path, jl_data_kind_name(kind));
    char *text;
    size_t len;
    if ((st = jl_read_file(path, &text, &len)) != JL_OK) return st;
    if ((st = check_text(path, text, len)) == JL_OK && (st = jl_eval_perplexity(m, tok, text, len, window, out)) != JL_OK)
        jl_fail_context(st, "%s", path);
    free(text);
    return st;
}

/* Summed negative log-probability and count of the positions [from, to) of logp (a target's log-prob at the
 * position before it). */
static double span_nll(const float *logp, int from, int to, long *tokens) {
    double nll = 0;
    for (int t = from - 1; t < to - 1; t++) nll -= logp[t];
    *tokens += to - from;
    return nll;
}

jl_status jl_eval_copy_probe(jl_model *m, const jl_tokenizer *tok, int n, int len, uint64_t seed, jl_copy_result *out) {
    memset(out, 0, sizeof *out);
    jl_status need = jl_model_require_params(m, "copy probe");
    if (need != JL_OK) return need;
    const int total = 1 + 2 * len, vocab = jl_tokenizer_vocab_size(tok);
    if (n < 1 || len < 2)
        return jl_fail(JL_ERR_ARG, "copy probe: needs at least 1 sequence of at least 2 tokens (got %d of %d)", n, len);
    if (total > m->cfg.max_seq_len)
        return jl_fail(JL_ERR_ARG, "copy probe: 2 x %d tokens + <|bos|> do not fit the model's context of %d", len,
                       m->cfg.max_seq_len);
    if (vocab > m->cfg.vocab_size)
        return jl_fail(JL_ERR_ARG, "copy probe: the tokenizer's %d tokens exceed the model's vocabulary %d", vocab,
                       m->cfg.vocab_size);
    int32_t bos = jl_tokenizer_bos(tok), lo = vocab > 512 ? 256 : 0; /* merged tokens when there are enough */
    int32_t special[JL_TOKENIZER_N_SPECIAL];
    for (int k = 0; k < JL_TOKENIZER_N_SPECIAL; k++) special[k] = jl_tokenizer_special(tok, jl_tokenizer_special_names[k]);
    jl_acts a;
    jl_status st = jl_acts_new(&m->cfg, 1, total, &a);
    if (st != JL_OK) return st;
    int32_t *seq = malloc(sizeof(int32_t) * (size_t)total), *targets = malloc(sizeof(int32_t) * (size_t)total);
    float *logp = malloc(sizeof(float) * (size_t)total);
    if (!seq || !targets || !logp) st = jl_fail(JL_ERR_NOMEM, "out of memory");
    jl_rng rng;
    jl_rng_seed(&rng, seed);
    double nll1 = 0, nll2 = 0;
    long tok1 = 0, tok2 = 0;
    for (int s = 0; s < n && st == JL_OK; s++) {
        seq[0] = bos >= 0 ? bos : (int32_t)lo;
        for (int t = 1; t <= len; t++) {
            int32_t id;
            int is_special;
            do {
                id = lo + (int32_t)jl_rng_below(&rng, (uint64_t)(vocab - lo));
                is_special = 0;
                for (int k = 0; k < JL_TOKENIZER_N_SPECIAL; k++) is_special |= id == special[k];
            } while (is_special);
            seq[t] = seq[t + len] = id;
        }
        /* one forward pass; per-position log-probs of the next token. First showing: tokens 2..len (the first
         * follows <|bos|> alone); second: tokens 2..len of the copy (its first token follows the end of the first
         * showing, which nothing predicts) */
        for (int t = 0; t < total; t++) targets[t] = t + 1 < total ? seq[t + 1] : -1;
        jl_model_forward(m, &a, seq, NULL, 1, total, 0.0f, NULL);
        jl_token_logprobs(logp, NULL, a.logits, targets, total, m->cfg.vocab_size, m->cfg.padded_vocab);
        nll1 += span_nll(logp, 2, len + 1, &tok1);
        nll2 += span_nll(logp, len + 2, total, &tok2);
        if (!isfinite(nll1) || !isfinite(nll2))
            st = jl_fail(JL_ERR_FORMAT, "the model's loss is not finite: its weights hold NaN or Inf");
    }
    free(seq);
    free(targets);
    free(logp);
    jl_acts_free(&a);
    if (st != JL_OK) return st;
    out->n = n;
    out->len = len;
    out->first = nll1 / (double)tok1;
    out->second = nll2 / (double)tok2;
    int drawn = vocab - lo;
    for (int k = 0; k < JL_TOKENIZER_N_SPECIAL; k++) drawn -= special[k] >= lo && special[k] < vocab;
    out->chance = log((double)drawn);
    return JL_OK;
}
