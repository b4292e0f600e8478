/* Evaluation: held-out perplexity and bits per byte / per character. */
#ifndef JIELONG_EVAL_H
#define JIELONG_EVAL_H
#include "jielong/model.h"
#include "jielong/tokenizer.h"

typedef struct {
    double nll;            /* total negative log-likelihood, nats */
    long tokens;           /* predicted tokens */
    long bytes, chars;     /* of the text scored (UTF-8 characters) */
    double ppl;            /* exp(nll / tokens) */
    double bits_per_byte;  /* nll / ln 2 / bytes — comparable across tokenizers */
    double bits_per_char;
} jl_ppl_result;

/* Scores text encoded as `prepare` does (blank-line-separated documents, each after <|bos|>) in consecutive windows of up to `window` tokens (≤ the model's context), each
 * predicting all of its tokens from the ones before it inside the window. */
jl_status jl_eval_perplexity(jl_model *m, const jl_tokenizer *tok, const char *text, size_t len, int window,
                             jl_ppl_result *out);

#endif
