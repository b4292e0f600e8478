/* Sequential windows over a token stream, wrapping around at the end (one more epoch): how pretraining and
 * distillation read their data. The position is part of a training checkpoint, so resume is exact. */
#ifndef JL_TRAIN_STREAM_H
#define JL_TRAIN_STREAM_H
#include "jielong/data.h"
#include <json.h>
#include <string.h>

typedef struct {
    const jl_tokens *data;
    size_t pos;
    long epoch;
} jl_token_stream;

/* A jl_batch_fn: B rows of T tokens and their next-token targets. */
static inline jl_status jl_stream_batch(void *ctx, int32_t *tokens, int32_t *targets, int B, int T) {
    jl_token_stream *s = ctx;
    for (int b = 0; b < B; b++) {
        if (s->pos + (size_t)T + 1 > s->data->n) {
            s->pos = 0;
            s->epoch++;
        }
        memcpy(tokens + (size_t)b * T, s->data->ids + s->pos, sizeof(int32_t) * (size_t)T);
        memcpy(targets + (size_t)b * T, s->data->ids + s->pos + 1, sizeof(int32_t) * (size_t)T);
        s->pos += (size_t)T;
    }
    return JL_OK;
}

/* The stream's position in a training state (with the row length, which must be the run's). */
jl_status jl_stream_state_save(const jl_token_stream *s, int T, json_object *j);
jl_status jl_stream_state_restore(jl_token_stream *s, int T, json_object *j);

#endif
