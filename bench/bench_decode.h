/* bench_decode.h — the one timed greedy-decode loop the decode benchmarks share (bench_generate, bench_llamacpp). */
#ifndef JL_BENCH_DECODE_H
#define JL_BENCH_DECODE_H
#include "core/timer.h"
#include "infer/sampler.h"
#include "jielong/generate.h"

/* Greedy decode of n tokens after a 1-token prompt, in tok/s (the argmax is part of the time, as in llama2.c). */
static inline double bench_decode_run(jl_session *s, int vocab, int n) {
    jl_session_truncate(s, 0);
    int32_t tok = 1;
    const float *logits;
    jl_session_forward(s, &tok, 1, NULL, &logits);
    double t0 = jl_now();
    for (int i = 0; i < n; i++) {
        tok = jl_argmax(logits, vocab);
        jl_session_forward(s, &tok, 1, NULL, &logits);
    }
    return n / (jl_now() - t0);
}
#endif
