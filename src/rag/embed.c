/* Dense passage embeddings: the model's final normalised hidden states, mean-pooled over the text's tokens and
 * L2-normalised (cosine = dot product). */
#include "model/model.h"
#include "jielong/rag.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct jl_embedder {
    jl_model *m;
    const jl_tokenizer *tok;
    jl_acts acts; /* B = 1, T = the model's context */
    int32_t *ids;
};

jl_status jl_embedder_new(jl_model *m, const jl_tokenizer *tok, jl_embedder **out) {
    *out = NULL;
    jl_status st = jl_model_require_params(m, "embeddings");
    if (st != JL_OK) return st;
    jl_embedder *e = calloc(1, sizeof *e);
    if (!e) return jl_fail(JL_ERR_NOMEM, "out of memory");
    e->m = m;
    e->tok = tok;
    const jl_config *c = jl_model_config(m);
    e->ids = malloc(sizeof *e->ids * (size_t)c->max_seq_len);
    st = e->ids ? jl_acts_new(c, 1, c->max_seq_len, &e->acts) : jl_fail(JL_ERR_NOMEM, "out of memory");
    if (st != JL_OK) {
        free(e->ids);
        free(e);
        return st;
    }
    *out = e;
    return JL_OK;
}

void jl_embedder_free(jl_embedder *e) {
    if (!e) return;
    jl_acts_free(&e->acts);
    free(e->ids);
    free(e);
}

int jl_embedder_dim(const jl_embedder *e) { return jl_model_config(e->m)->dim; }

jl_status jl_embed_text(jl_embedder *e, const char *text, float *vec) {
    const jl_config *c = jl_model_config(e->m);
    int32_t *piece;
    size_t n_piece;
    jl_status st = jl_tokenizer_encode(e->tok, text, strlen(text), 0, &piece, &n_piece);
    if (st != JL_OK) return st;
    int T = 0, bos = jl_tokenizer_bos(e->tok);
    if (bos >= 0) e->ids[T++] = bos;
    for (size_t i = 0; i < n_piece && T < c->max_seq_len; i++)
        if (piece[i] < c->vocab_size) e->ids[T++] = piece[i];
    free(piece);
    if (T == 0) e->ids[T++] = 0;
    jl_model_forward(e->m, &e->acts, e->ids, NULL, 1, T, 0.0f, NULL);
    const int C = c->dim, first = (bos >= 0 && T > 1) ? 1 : 0;
    double norm = 0;
    for (int j = 0; j < C; j++) {
        double s = 0;
        for (int t = first; t < T; t++) s += e->acts.lnf[(size_t)t * C + j];
        vec[j] = (float)(s / (T - first));
        norm += (double)vec[j] * vec[j];
    }
    norm = sqrt(norm);
    for (int j = 0; j < C; j++) vec[j] = norm > 0 ? (float)(vec[j] / norm) : 0.0f;
    return JL_OK;
}
