/* Sampling answers for GRPO/PPO. Kept behind one function (rl_rollout) so the KV-cache generation engine can
 * replace the full forward per token in one place. */
#include "train/rl_common.h"
#include "core/rng.h"
#include "model/model.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Samples from softmax(logits / temperature) over the first V columns (greedy when temperature is 0). */
static int32_t sample_row(const float *logits, int V, float temperature, jl_rng *rng) {
    int32_t best = 0;
    for (int v = 1; v < V; v++)
        if (logits[v] > logits[best]) best = v;
    if (temperature <= 0) return best;
    double sum = 0.0;
    for (int v = 0; v < V; v++) sum += exp((double)(logits[v] - logits[best]) / temperature);
    double u = jl_rng_uniform(rng) * sum, acc = 0.0;
    for (int v = 0; v < V; v++) {
        acc += exp((double)(logits[v] - logits[best]) / temperature);
        if (acc >= u) return v;
    }
    return best;
}

jl_status rl_rollout(jl_model *m, jl_acts *a, const jl_tokenizer *tok, const rl_seq *const *prompts, int rows,
                     int max_new, int max_len, float temperature, uint64_t *rng_state, rl_seq *out) {
    const int V = m->cfg.vocab_size, Vp = m->cfg.padded_vocab;
    int32_t end = jl_tokenizer_special(tok, "<|end|>"), eos = jl_tokenizer_special(tok, "<|eos|>");
    if (rows > a->B) return jl_fail(JL_ERR_ARG, "rollout of %d rows does not fit the %d-row activations", rows, a->B);
    int done[rows];
    int T = 0;
    for (int r = 0; r < rows; r++) {
        int cap = prompts[r]->len + max_new;
        out[r].ids = malloc((size_t)cap * sizeof(int32_t));
        if (!out[r].ids) {
            for (int k = 0; k <= r; k++) rl_seq_free(&out[k]);
            return jl_fail(JL_ERR_NOMEM, "out of memory");
        }
        memcpy(out[r].ids, prompts[r]->ids, (size_t)prompts[r]->len * sizeof(int32_t));
        out[r].len = out[r].resp_start = prompts[r]->len;
        done[r] = out[r].len >= max_len;
        T = out[r].len > T ? out[r].len : T;
    }
    int32_t *tokens = malloc((size_t)rows * (size_t)(T + max_new) * sizeof(int32_t));
    if (!tokens) {
        for (int r = 0; r < rows; r++) rl_seq_free(&out[r]);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    jl_rng rng = {*rng_state};
    for (int step = 0; step < max_new; step++) {
        int active = 0;
        T = 1;
        for (int r = 0; r < rows; r++) {
            active += !done[r];
            T = out[r].len > T ? out[r].len : T;
        }
        if (!active) break;
        for (int r = 0; r < rows; r++)
            for (int t = 0; t < T; t++) tokens[(size_t)r * T + t] = t < out[r].len ? out[r].ids[t] : 0;
        jl_model_forward(m, a, tokens, NULL, rows, T, 0.0f, NULL);
        for (int r = 0; r < rows; r++) {
            if (done[r]) continue;
            const float *row = a->logits + ((size_t)r * T + out[r].len - 1) * Vp;
            int32_t id = sample_row(row, V, temperature, &rng);
            out[r].ids[out[r].len++] = id;
            done[r] = id == end || id == eos || out[r].len >= max_len;
        }
    }
    *rng_state = rng.state;
    free(tokens);
    return JL_OK;
}

jl_status rl_answer_text(const jl_tokenizer *tok, const rl_seq *s, char **text) {
    int32_t end = jl_tokenizer_special(tok, "<|end|>"), eos = jl_tokenizer_special(tok, "<|eos|>");
    int n = s->len - s->resp_start;
    if (n > 0 && (s->ids[s->len - 1] == end || s->ids[s->len - 1] == eos)) n--;
    size_t len;
    return jl_tokenizer_decode(tok, s->ids + s->resp_start, (size_t)n, text, &len);
}
