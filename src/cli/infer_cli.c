/* Shared by cmd_generate.c and cmd_chat.c. */
#include "cli/infer_cli.h"
#include "io/fileio.h"
#include "core/utf8.h"
#include "jielong/safetensors.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void infer_flags_defaults(infer_flags *f) {
    jl_sampler_params p;
    jl_sampler_defaults(&p);
    *f = (infer_flags){.max_tokens = 256, .context = 0, .top_k = p.top_k, .seed = (long)p.seed,
                       .penalty_last_n = p.penalty_last_n, .threads = 0, .temperature = p.temperature,
                       .top_p = p.top_p, .min_p = p.min_p, .repetition = p.repetition_penalty,
                       .presence = p.presence_penalty, .frequency = p.frequency_penalty, .matvec = "own"};
}

int infer_opts(infer_flags *f, cli_opt *o) {
    const cli_opt shared[INFER_NOPTS] = {
        {"model", OPT_STR, &f->model, "model: checkpoint (.safetensors from jielong pretrain/sft/...) or .gguf (jielong quantize/export, or llama.cpp's: llama, qwen2, gpt2)", NO_RANGE, 1},
        {"tokenizer", OPT_STR, &f->tokenizer, "tokenizer.json (default: the one stored in the checkpoint)", NO_RANGE, 0},
        {"max-new-tokens|max-tokens", OPT_INT, &f->max_tokens, "new tokens at most (default 256)", 1, 1 << 24, 0},
        {"temperature", OPT_FLOAT, &f->temperature, "sampling temperature, 0 = greedy (default 0.8)", 0, 1000, 0},
        {"top-k", OPT_INT, &f->top_k, "keep the k most likely tokens (default 0 = off)", 0, 1 << 24, 0},
        {"top-p", OPT_FLOAT, &f->top_p, "nucleus: smallest set with probability >= p, in (0,1] (default 0.95)", 0, 1, 0},
        {"min-p", OPT_FLOAT, &f->min_p, "drop tokens below min-p x the top probability, [0,1) (default 0)", 0, 1, 0},
        {"repeat-penalty", OPT_FLOAT, &f->repetition, "repetition penalty on seen tokens, 1 = off (default 1)", NO_RANGE, 0},
        {"presence-penalty", OPT_FLOAT, &f->presence, "subtracted once from seen tokens' logits (default 0)", NO_RANGE, 0},
        {"frequency-penalty", OPT_FLOAT, &f->frequency, "subtracted per occurrence (default 0)", NO_RANGE, 0},
        {"penalty-last-n", OPT_INT, &f->penalty_last_n, "tokens of history the penalties see, 0 = all (default 64)", 0, 1 << 24, 0},
        {"seed", OPT_INT, &f->seed, "sampling seed: the same seed gives the same text (default 1337)", 0, 1L << 62, 0},
        {"context", OPT_INT, &f->context, "KV cache positions (default: the model's context)", 1, 1 << 24, 0},
        {"show-probs", OPT_INT, &f->show_probs, "print the K most likely next tokens at each step (0 = off)", 0, JL_REPORT_MAX, 0},
        {"stats", OPT_BOOL, &f->stats, "print prefill/decode speed and the stop reason to stderr", NO_RANGE, 0},
        {"threads", OPT_INT, &f->threads, "OpenMP threads (default: all cores)", 1, 1024, 0},
        {"matvec", OPT_STR, &f->matvec, "decode kernel: own (AVX-512/AVX2 dot products, default) or blas (sgemv)", NO_RANGE, 0},
        {"quantize", OPT_STR, &f->quantize, "quantise a fp32 checkpoint's linear weights at load: q8_0 | q4_0", NO_RANGE, 0},
        {"adapter", OPT_STR, &f->adapter, "LoRA adapter or soft prompt (from jielong sft --method lora|prompt) of this model, used unmerged", NO_RANGE, 0},
    };
    memcpy(o, shared, sizeof shared);
    return INFER_NOPTS;
}

void infer_sampler_params(const infer_flags *f, jl_sampler_params *p) {
    jl_sampler_defaults(p);
    p->temperature = (float)f->temperature;
    p->top_k = (int)f->top_k;
    p->top_p = (float)f->top_p;
    p->min_p = (float)f->min_p;
    p->repetition_penalty = (float)f->repetition;
    p->presence_penalty = (float)f->presence;
    p->frequency_penalty = (float)f->frequency;
    p->penalty_last_n = (int)f->penalty_last_n;
    p->seed = (uint64_t)f->seed;
}

/* Loads --adapter by its kind (metadata jielong.adapter) and attaches it to the model; the loader refuses an
 * adapter made for another base model. */
static jl_status attach_adapter(const char *path, infer_setup *s) {
    jl_st_file *f;
    jl_status st = jl_st_open(path, &f);
    if (st != JL_OK) return jl_fail_context(st, "--adapter");
    const char *kind = jl_st_meta(f, "jielong.adapter");
    int is_prompt = kind && strcmp(kind, "prompt") == 0;
    jl_st_close(f);
    if (is_prompt) {
        st = jl_prompt_load(path, s->ck.model, &s->prompt, NULL);
        if (st == JL_OK) st = jl_model_attach_prompt(s->ck.model, s->prompt);
    } else {
        st = jl_lora_load(path, s->ck.model, &s->lora, NULL);
        if (st == JL_OK) st = jl_model_attach_lora(s->ck.model, s->lora, 128); /* grows with longer blocks */
    }
    return st;
}

jl_status infer_setup_load(const infer_flags *f, infer_setup *s) {
    memset(s, 0, sizeof *s);
    if (f->threads > 0) omp_set_num_threads((int)f->threads);
    if (strcmp(f->matvec, "own") != 0 && strcmp(f->matvec, "blas") != 0)
        return jl_fail(JL_ERR_ARG, "--matvec %s: must be own or blas", f->matvec);
    jl_set_matvec_kernel(strcmp(f->matvec, "blas") == 0);
    jl_sampler_params p;
    infer_sampler_params(f, &p);
    jl_status st = jl_sampler_params_check(&p); /* bad flags first, before loading anything */
    if (st == JL_OK && f->quantize && strcmp(f->quantize, "q8_0") != 0 && strcmp(f->quantize, "q4_0") != 0)
        st = jl_fail(JL_ERR_ARG, "--quantize %s: must be q8_0 or q4_0", f->quantize);
    if (st == JL_OK) st = infer_load_model(f->model, 0, &s->ck, &s->qw);
    if (st == JL_OK && f->quantize && s->qw)
        st = jl_fail(JL_ERR_ARG, "--quantize: %s is already quantised (%s)", f->model, jl_qweights_type(s->qw));
    if (st == JL_OK && f->quantize) st = jl_qweights_quantize(s->ck.model, f->quantize, &s->qw);
    if (st == JL_OK && !f->tokenizer && !s->ck.tokenizer_json)
        st = jl_fail(JL_ERR_ARG, "%s has no tokenizer: pass --tokenizer", f->model);
    if (st == JL_OK)
        st = f->tokenizer ? jl_tokenizer_load(f->tokenizer, &s->tok)
                          : jl_tokenizer_from_json(s->ck.tokenizer_json, strlen(s->ck.tokenizer_json), &s->tok);
    const jl_config *c = st == JL_OK ? jl_model_config(s->ck.model) : NULL;
    if (st == JL_OK && jl_tokenizer_vocab_size(s->tok) > c->vocab_size)
        st = jl_fail(JL_ERR_ARG, "the tokenizer has %d tokens but the model only %d", jl_tokenizer_vocab_size(s->tok),
                     c->vocab_size);
    if (st == JL_OK && f->adapter) st = attach_adapter(f->adapter, s);
    if (st == JL_OK) st = jl_session_new_quant(s->ck.model, s->qw, (int)f->context, &s->session);
    if (st == JL_OK) st = jl_sampler_new(&p, c->vocab_size, &s->sampler);
    if (st != JL_OK) infer_setup_free(s);
    return st;
}

static int is_gguf(const char *path) {
    char magic[4] = {0};
    return jl_read_head(path, magic, 4) == 4 && memcmp(magic, "GGUF", 4) == 0;
}

jl_status infer_load_model(const char *path, int dequantise, jl_checkpoint *ck, jl_qweights **qw) {
    *qw = NULL;
    size_t n = strlen(path);
    if (is_gguf(path) || (n > 5 && strcmp(path + n - 5, ".gguf") == 0)) return jl_gguf_load_model(path, dequantise, ck, qw);
    return jl_checkpoint_load(path, ck);
}

jl_status infer_encode_prompt(const infer_setup *s, const char *text, int32_t **ids, int *n) {
    int32_t *text_ids;
    int n_text;
    jl_status st = jl_encode_prompt(s->tok, text, &text_ids, &n_text);
    const int nv = jl_session_virtual_tokens(s->session);
    if (st != JL_OK || nv == 0) {
        *ids = st == JL_OK ? text_ids : NULL;
        *n = st == JL_OK ? n_text : 0;
        return st;
    }
    int32_t *all = calloc((size_t)nv + (size_t)n_text, sizeof *all); /* placeholders: id 0 */
    if (!all) {
        free(text_ids);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    memcpy(all + nv, text_ids, sizeof *all * (size_t)n_text);
    free(text_ids);
    *ids = all;
    *n = nv + n_text;
    return JL_OK;
}

void infer_setup_free(infer_setup *s) {
    jl_sampler_free(s->sampler);
    jl_session_free(s->session);
    jl_qweights_free(s->qw);
    jl_tokenizer_free(s->tok);
    if (s->ck.model) { /* detach before freeing the adapters */
        jl_model_attach_lora(s->ck.model, NULL, 0);
        jl_model_attach_prompt(s->ck.model, NULL);
    }
    jl_lora_free(s->lora);
    jl_prompt_free(s->prompt);
    jl_checkpoint_free(&s->ck);
    memset(s, 0, sizeof *s);
}

/* A token as readable text: whole UTF-8 characters as they are, control characters escaped, bytes of a
 * character split across tokens as <0xE5>. */
static void token_label(const jl_tokenizer *tok, int32_t id, char *buf, size_t cap) {
    size_t len = 0, o = 0;
    const char *b = jl_tokenizer_token(tok, id, &len);
    if (!b) {
        snprintf(buf, cap, "<id %d>", id);
        return;
    }
    buf[o++] = '\'';
    for (size_t i = 0; i < len && o + 8 < cap;) {
        uint32_t cp;
        size_t n = jl_utf8_decode(b + i, len - i, &cp);
        if (cp == JL_UTF8_INVALID) o += (size_t)snprintf(buf + o, cap - o, "<0x%02X>", (unsigned char)b[i]);
        else if (cp == '\n') o += (size_t)snprintf(buf + o, cap - o, "\\n");
        else if (cp == '\t') o += (size_t)snprintf(buf + o, cap - o, "\\t");
        else if (cp < 0x20 || cp == 0x7F) o += (size_t)snprintf(buf + o, cap - o, "\\x%02X", cp);
        else {
            memcpy(buf + o, b + i, n);
            o += n;
        }
        i += n;
    }
    buf[o++] = '\'';
    buf[o] = '\0';
}

static void print_row(FILE *out, const jl_tokenizer *tok, const jl_token_prob *t, int chosen) {
    char label[160];
    token_label(tok, t->id, label, sizeof label);
    int bar = (int)(t->p_sample * 20.0f + 0.5f);
    fprintf(out, "  %c %-16s p=%.4f  q=%.4f  %.*s\n", chosen ? '*' : ' ', label, t->p_model, t->p_sample, bar,
            "####################");
}

void infer_print_report(FILE *out, const jl_tokenizer *tok, const jl_sample_report *r, int step) {
    fprintf(out, "step %d (%d candidates kept)\n", step, r->n_kept);
    int shown = 0;
    for (int i = 0; i < r->n_top; i++) {
        int is_chosen = r->top[i].id == r->chosen.id;
        shown |= is_chosen;
        print_row(out, tok, &r->top[i], is_chosen);
    }
    if (!shown) print_row(out, tok, &r->chosen, 1);
}

void infer_print_stats(const char *cmd, const jl_gen_result *r) {
    fprintf(stderr, "jielong %s: prompt %d tokens (%.1f tok/s) | generated %d tokens (%.1f tok/s) | stop: %s\n", cmd,
            r->n_prompt, r->prefill_s > 0 ? r->n_prompt / r->prefill_s : 0.0, r->n_generated,
            r->decode_s > 0 ? r->n_generated / r->decode_s : 0.0, jl_stop_reason_name(r->reason));
}
