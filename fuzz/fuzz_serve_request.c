/* The server's request bodies (OpenAI chat/completions JSON → serve_params): the first byte picks the endpoint.
 * A body that parses is copied (the tool-round path) and freed; a refused one fills a 4xx error with a message. */
#include "fuzz_util.h"
#include "serve/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const serve_kind kind = data[0] & 1 ? SERVE_COMPLETION : SERVE_CHAT;
    serve_params p;
    serve_error e;
    memset(&p, 0, sizeof p);
    memset(&e, 0, sizeof e);
    if (serve_parse_request((const char *)data + 1, size - 1, kind, &p, &e)) {
        serve_params q;
        memset(&q, 0, sizeof q);
        if (serve_params_copy(&p, &q)) serve_params_free(&q);
        if (p.n < 1 || p.n > SERVE_MAX_N || p.n_stops > SERVE_MAX_STOPS) abort(); /* what the parser promises */
        if (jl_sampler_params_check(&p.sampling) != JL_OK) abort();
    } else if (e.status < 400 || e.status > 599 || !e.message[0]) {
        abort(); /* a refusal always says why */
    }
    serve_params_free(&p);
    return 0;
}
