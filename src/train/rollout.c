/* Sampling answers for GRPO/PPO with the KV-cache generation engine. */
#include "train/rl_common.h"
#include "core/rng.h"
#include "model/model.h"
#include "jielong/generate.h"
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

/* Row r's own sampling stream (under mpirun): from the step's seed and the row's index in the whole (all ranks')
 * batch, so a row draws the same numbers whichever rank rolls it out. */
static jl_rng row_stream(uint64_t seed, int row) {
    jl_rng rng;
    jl_rng_seed(&rng, seed ^ ((uint64_t)(row + 1) * 0xD1B54A32D192ED03ull));
    return rng;
}

/* Each row is generated with the KV-cache engine (which applies an attached LoRA adapter unmerged): one prefill
 * of the prompt, then one matrix-vector step per token. The sampling is the same for every thread count (and,
 * with first_row ≥ 0, every number of ranks). */
jl_status rl_rollout(jl_model *m, jl_acts *a, const jl_tokenizer *tok, const jl_chat_format *fmt,
                     const rl_seq *const *prompts, int rows, int max_new, int max_len, float temperature,
                     uint64_t *rng_state, int first_row, rl_seq *out) {
    (void)a; /* the session keeps its own buffers */
    const int V = m->cfg.vocab_size;
    int capacity = max_len < m->cfg.max_seq_len ? max_len : m->cfg.max_seq_len;
    jl_session *session = NULL;
    jl_chat_stops stops;
    jl_status st = jl_chat_stops_new(tok, fmt, &stops);
    if (st != JL_OK) return st;
    st = jl_session_new(m, capacity, &session);
    for (int r = 0; r < rows; r++) out[r].ids = NULL;
    jl_rng rng = {*rng_state};
    for (int r = 0; r < rows && st == JL_OK; r++) {
        if (first_row >= 0) rng = row_stream(*rng_state, first_row + r);
        int cap = prompts[r]->len + max_new;
        out[r].ids = malloc((size_t)cap * sizeof(int32_t));
        if (!out[r].ids) {
            st = jl_fail(JL_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(out[r].ids, prompts[r]->ids, (size_t)prompts[r]->len * sizeof(int32_t));
        out[r].len = out[r].resp_start = prompts[r]->len;
        if (out[r].len >= capacity) continue; /* nothing fits after the prompt */
        jl_session_truncate(session, 0);
        const float *logits;
        st = jl_session_forward(session, out[r].ids, out[r].len, NULL, &logits);
        for (int step = 0; st == JL_OK && step < max_new; step++) {
            int32_t id = sample_row(logits, V, temperature, &rng);
            out[r].ids[out[r].len++] = id;
            if (jl_chat_stops_match(&stops, out[r].ids + out[r].resp_start, (size_t)(out[r].len - out[r].resp_start)) ||
                out[r].len >= capacity)
                break;
            st = jl_session_forward(session, &id, 1, NULL, &logits);
        }
    }
    jl_session_free(session);
    jl_chat_stops_free(&stops);
    if (st != JL_OK) {
        for (int r = 0; r < rows; r++) rl_seq_free(&out[r]);
        return st;
    }
    if (first_row < 0) *rng_state = rng.state;
    return JL_OK;
}

jl_status rl_answer_text(const jl_tokenizer *tok, const jl_chat_format *fmt, const rl_seq *s, char **text) {
    jl_chat_stops stops;
    jl_status st = jl_chat_stops_new(tok, fmt, &stops);
    if (st != JL_OK) return st;
    size_t n = (size_t)(s->len - s->resp_start), len;
    n -= jl_chat_stops_match(&stops, s->ids + s->resp_start, n);
    jl_chat_stops_free(&stops);
    return jl_tokenizer_decode(tok, s->ids + s->resp_start, n, text, &len);
}
