#include "jielong/eval.h"
#include "jielong/data.h"
#include "io/fileio.h"
#include "model/model.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static long count_utf8_chars(const char *s, size_t len) {
    long n = 0;
    for (size_t i = 0; i < len; i++) n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

jl_status jl_eval_perplexity(jl_model *m, const jl_tokenizer *tok, const char *text, size_t len, int window,
                             jl_ppl_result *out) {
    memset(out, 0, sizeof *out);
    jl_status need = jl_model_require_params(m, "perplexity"); /* the full forward pass reads every fp32 weight */
    if (need != JL_OK) return need;
    if (window < 2 || window > m->cfg.max_seq_len)
        return jl_fail(JL_ERR_ARG, "window %d out of range [2..%d]", window, m->cfg.max_seq_len);
    int32_t *seq = NULL;
    size_t total = 0;
    jl_status st = jl_encode_documents(tok, text, len, &seq, &total);
    if (st != JL_OK) return st;
    for (size_t i = 0; i < total; i++)
        if (seq[i] >= m->cfg.vocab_size) {
            free(seq);
            return jl_fail(JL_ERR_ARG, "tokenizer produces id %d, beyond the model's vocabulary %d", seq[i],
                           m->cfg.vocab_size);
        }
    if (total < 2) {
        free(seq);
        return jl_fail(JL_ERR_ARG, "text is too short to score");
    }
    jl_acts a;
    if ((st = jl_acts_new(&m->cfg, 1, window, &a)) != JL_OK) {
        free(seq);
        return st;
    }
    int32_t *targets = malloc(sizeof(int32_t) * (size_t)window);
    if (!targets) st = jl_fail(JL_ERR_NOMEM, "out of memory");
    /* Windows overlap by one token so that every token after the first is predicted exactly once. */
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
    free(seq);
    if (st != JL_OK) return st;
    out->bytes = (long)len;
    out->chars = count_utf8_chars(text, len);
    out->ppl = exp(out->nll / (double)out->tokens);
    out->bits_per_byte = out->nll / log(2.0) / (double)(out->bytes ? out->bytes : 1);
    out->bits_per_char = out->nll / log(2.0) / (double)(out->chars ? out->chars : 1);
    return JL_OK;
}

jl_status jl_eval_perplexity_file(jl_model *m, const jl_tokenizer *tok, const char *path, int window,
                                  jl_ppl_result *out) {
    char *text;
    size_t len;
    jl_status st = jl_read_file(path, &text, &len);
    if (st != JL_OK) return st;
    st = jl_eval_perplexity(m, tok, text, len, window, out);
    free(text);
    return st == JL_OK ? JL_OK : jl_fail_context(st, "%s", path);
}
