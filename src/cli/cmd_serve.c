/* jielong serve: loads a model (safetensors or GGUF, optional adapter) and serves the OpenAI-compatible API and the
 * chat page until SIGINT/SIGTERM (src/serve). */
#include "cli/infer_cli.h"
#include "core/kernels.h"
#include "jielong/chat_format.h"
#include "serve/serve.h"
#include "jielong/rag.h"
#include "jielong/tools.h"
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *model_id(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int cmd_serve(int argc, char **argv) {
    infer_flags f;
    infer_flags_defaults(&f);
    const char *host = "127.0.0.1", *api_key = NULL, *name = NULL, *tools = NULL, *rag = NULL;
    long tool_steps = 4, rag_k = 3;
    int precision = JL_PREC_FP32;
    long port = 8080, parallel = 8, context = 0, max_queue = 64, timeout = 600, chunk = 64, max_body_mb = 4;
    double grace = 10.0, max_time = 600.0;
    cli_opt opts[] = {
        {"model", OPT_STR, &f.model, "model: checkpoint (.safetensors) or GGUF (f32/f16/q8_0/q4_0)", NO_RANGE, 1},
        {"adapter", OPT_STR, &f.adapter, "LoRA adapter or soft prompt of this model, used unmerged", NO_RANGE, 0},
        {"tokenizer", OPT_STR, &f.tokenizer, "tokenizer.json (default: the one stored in the model)", NO_RANGE, 0},
        {"quantize", OPT_STR, &f.quantize, "quantise a fp32 checkpoint at load: q8_0 | q4_0", NO_RANGE, 0},
        {"host", OPT_STR, &host, "address to listen on (default 127.0.0.1; 0.0.0.0 = every interface)", NO_RANGE, 0},
        {"port", OPT_INT, &port, "TCP port (default 8080; 0 = any free port, printed)", 0, 65535, 0},
        {"api-key", OPT_STR, &api_key, "require 'Authorization: Bearer KEY' on the API (default: none)", NO_RANGE, 0},
        {"parallel", OPT_INT, &parallel, "KV-cache slots: sequences decoded together in one batch (default 8)", 1, 1024, 0},
        {"context", OPT_INT, &context, "positions per slot (default: the model's context)", 1, 1 << 24, 0},
        {"threads", OPT_INT, &f.threads, "OpenMP threads (default: all cores)", 1, 1024, 0},
        {"max-queue", OPT_INT, &max_queue, "requests waiting for a slot before 503 + Retry-After (default 64)", 1, 1 << 20, 0},
        {"timeout", OPT_INT, &timeout, "seconds an idle connection stays open (default 600)", 1, 1 << 20, 0},
        {"max-time", OPT_FLOAT, &max_time, "seconds one request may generate, then it ends with finish_reason "
                                           "'length' (default 600; 0 = no limit)", 0, 1e7, 0},
        {"precision", OPT_PREC, &precision, "products of fp32 weights in the batch: fp32 (each token's logits as "
                                            "jielong generate's) or bf16 (a bf16 copy of the weights: about 1.5x "
                                            "the tokens per CPU-second at 16 streams, logits within bf16 rounding; needs "
                                            "AVX512-BF16)", NO_RANGE, 0},
        {"chunk", OPT_INT, &chunk, "prompt tokens prefilled per decode step (default 64)", 1, 4096, 0},
        {"max-body-mb", OPT_INT, &max_body_mb, "largest request body in MiB, else 413 (default 4)", 1, 1024, 0},
        {"grace", OPT_FLOAT, &grace, "seconds running requests may finish after SIGINT/SIGTERM (default 10)", 0, 3600, 0},
        {"name", OPT_STR, &name, "model id shown by /v1/models and in responses (default: the file name)", NO_RANGE, 0},
        {"tools", OPT_STR, &tools, "built-in tools the server runs itself: calculator,search,date (declared to the "
                                   "model in every chat; calls to the client's own tools go back to the client)",
         NO_RANGE, 0},
        {"rag", OPT_STR, &rag, "the index the search tool runs on (jielong index build)", NO_RANGE, 0},
        {"k", OPT_INT, &rag_k, "passages per search (default 3)", 1, 50, 0},
        {"max-tool-steps", OPT_INT, &tool_steps, "rounds of server-side tool calls per request (default 4)", 0, 100, 0},
    };
    int rc = cli_parse("serve",
                       "Serve a model over HTTP: OpenAI-compatible /v1/chat/completions and /v1/completions (SSE "
                       "streaming), /v1/models, /tokenize, /detokenize, /health, /metrics and a chat page at /. "
                       "Concurrent requests are decoded together in one batch.",
                       opts, CLI_NOPTS(opts), argc, argv, 1);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : rc;
    jl_index *ix = NULL;
    jl_toolbox *tb = NULL;
    jl_status tst = rag ? jl_index_open(rag, 0, &ix) : JL_OK;
    if (tst == JL_OK && tools) tst = jl_toolbox_new(&tb);
    if (tst == JL_OK && tools) tst = jl_toolbox_add_list(tb, tools, ix, (int)rag_k);
    if (tst != JL_OK) {
        jl_toolbox_free(tb);
        jl_index_close(ix);
        return cli_report("serve", tst);
    }
    serve_opts o;
    serve_opts_defaults(&o);
    o.model_name = name ? name : model_id(f.model);
    o.host = host;
    o.port = (int)port;
    o.api_key = api_key && *api_key ? api_key : NULL;
    o.parallel = (int)parallel;
    o.context = (int)context;
    o.threads = (int)f.threads;
    o.max_queue = (int)max_queue;
    o.timeout_s = (int)timeout;
    o.chunk = (int)chunk;
    o.bf16 = precision == JL_PREC_BF16;
    o.max_request_s = max_time;
    o.max_body = (size_t)max_body_mb << 20;
    o.tools = tb;
    o.max_tool_steps = (int)tool_steps;
    /* SIGINT/SIGTERM are taken by sigwait below: blocked before any thread starts, so every thread inherits it */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    serve_server *srv = NULL;
    jl_status st = serve_listen(&o, &srv); /* listening first: /health says 503 while the model loads */
    if (st != JL_OK) {
        jl_toolbox_free(tb);
        jl_index_close(ix);
        return cli_report("serve", st);
    }
    f.context = 1; /* the setup's own session is not used: the engine has its slots */
    infer_setup s;
    st = infer_setup_load(&f, &s);
    if (st != JL_OK) {
        serve_stop(srv, 0.0);
        jl_toolbox_free(tb);
        jl_index_close(ix);
        return cli_report("serve", st);
    }
    jl_session_free(s.session);
    s.session = NULL;
    jl_chat_format *fmt = NULL;
    st = jl_chat_format_from_checkpoint(&s.ck, &fmt); /* the model's own chat template, if it has one */
    if (st == JL_OK) st = serve_ready(srv, s.ck.model, s.qw, s.tok, fmt, NULL);
    if (st != JL_OK) {
        serve_stop(srv, 0.0);
        jl_chat_format_free(fmt);
        infer_setup_free(&s);
        jl_toolbox_free(tb);
        jl_index_close(ix);
        return cli_report("serve", st);
    }
    const jl_config *c = jl_model_config(s.ck.model);
    printf("jielong serve: http://%s%s%s:%d/ model %s (%s, %d layers, dim %d), %ld slots x %d positions\n",
           strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", serve_port(srv), o.model_name,
           s.qw ? jl_qweights_type(s.qw) : "f32", c->n_layer, c->dim, parallel, context ? (int)context : c->max_seq_len);
    fflush(stdout);
    if (!o.api_key && strcmp(host, "127.0.0.1") != 0 && strcmp(host, "::1") != 0 && strcmp(host, "localhost") != 0)
        fprintf(stderr, "jielong serve: WARNING: listening on %s WITHOUT an API key: anyone who can reach this "
                        "machine can use the model (pass --api-key KEY)\n", host);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "jielong serve: %s: stopping (running requests get %.0f s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM", grace);
    serve_stop(srv, grace);
    jl_chat_format_free(fmt);
    infer_setup_free(&s);
    jl_toolbox_free(tb);
    jl_index_close(ix);
    return 0;
}
