/* Windows of T tokens over a token stream: how pretraining and distillation read their data, and how held-out
 * loss is measured. The position is part of a training checkpoint, so resume is exact.
 *  - sequential (shuffle = 0): consecutive windows from the start, wrapping at the end (one more epoch);
 *  - shuffled (shuffle = 1, the training default): each epoch visits every window of T tokens once, in an order
 *    drawn from (seed, epoch), the window grid shifted by an offset drawn from (seed, epoch) as well — so a short
 *    run samples the whole corpus instead of its first files;
 *  - spread (stride > 0, held-out data): consecutive windows `stride` tokens apart, so a few evaluation batches
 *    cover the whole held-out set and not only its first file. */
#ifndef JL_TRAIN_STREAM_H
#define JL_TRAIN_STREAM_H
#include "data/order.h"
#include "jielong/data.h"
#include <json.h>
#include <string.h>

typedef struct {
    const jl_tokens *data;
    size_t pos;    /* sequential/spread: token offset of the next window; shuffled: windows read in this epoch */
    long epoch;
    int shuffle;   /* 1: shuffled windows */
    uint64_t seed; /* names the shuffled order */
    size_t stride; /* spread: tokens between window starts (0: T) */
} jl_token_stream;

/* Offset of the window grid of a shuffled epoch: below T and leaving at least one window. */
static inline size_t jl_stream_offset(const jl_token_stream *s, int T) {
    size_t room = s->data->n - (size_t)T; /* ≥ 1: the stream holds at least one window of T + 1 */
    size_t lim = room < (size_t)T ? room : (size_t)T;
    return (size_t)(jl_mix64(s->seed, (uint64_t)s->epoch) % lim);
}

/* Start of the next window; advances the stream. */
static inline size_t jl_stream_next(jl_token_stream *s, int T) {
    if (!s->shuffle) {
        if (s->pos + (size_t)T + 1 > s->data->n) {
            s->pos = 0;
            s->epoch++;
        }
        size_t start = s->pos;
        s->pos += s->stride ? s->stride : (size_t)T;
        return start;
    }
    size_t off = jl_stream_offset(s, T), windows = (s->data->n - 1 - off) / (size_t)T;
    if (s->pos >= windows) {
        s->pos = 0;
        s->epoch++;
        off = jl_stream_offset(s, T);
        windows = (s->data->n - 1 - off) / (size_t)T;
    }
    uint64_t k = jl_permute_index(s->pos++, windows, jl_mix64(s->seed ^ 0x5eed5eedULL, (uint64_t)s->epoch));
    return off + (size_t)k * (size_t)T;
}

/* A jl_batch_fn: B rows of T tokens and their next-token targets. */
static inline jl_status jl_stream_batch(void *ctx, int32_t *tokens, int32_t *targets, int B, int T) {
    jl_token_stream *s = ctx;
    for (int b = 0; b < B; b++) {
        size_t start = jl_stream_next(s, T);
        memcpy(tokens + (size_t)b * T, s->data->ids + start, sizeof(int32_t) * (size_t)T);
        memcpy(targets + (size_t)b * T, s->data->ids + start + 1, sizeof(int32_t) * (size_t)T);
    }
    return JL_OK;
}

/* A held-out stream whose `batches` batches of B×T spread evenly over the whole of val. */
static inline jl_token_stream jl_stream_spread(const jl_tokens *val, int B, int T, int batches) {
    jl_token_stream s = {.data = val};
    size_t windows = (val->n - 1) / (size_t)T, wanted = (size_t)B * (size_t)(batches > 0 ? batches : 1);
    if (windows > wanted) s.stride = windows / wanted * (size_t)T;
    return s;
}

/* The stream's position and order in a training state (with the row length, which must be the run's; the
 * shuffled order's seed is the checkpoint's, as the position is). */
jl_status jl_stream_state_save(const jl_token_stream *s, int T, json_object *j);
jl_status jl_stream_state_restore(jl_token_stream *s, int T, json_object *j);

#endif
