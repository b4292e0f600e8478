/* SFT: the assistant-only mask token by token, bad input through the CLI, every method lowering held-out
 * assistant loss, the fine-tuned model following a format the base does not (greedy, fixed seeds), unmerged
 * LoRA = merged export, and resume bit-exact. */
#include "testutil.h"
#include "core/rng.h"
#include "io/fileio.h"
#include "jielong/adapter.h"
#include "jielong/checkpoint.h"
#include "jielong/sft.h"
#include "model/model.h"
#include <json.h>
#include <math.h>

static void test_mask_token_by_token(void **s) {
    (void)s;
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_bytes(&tok), JL_OK);
    jl_turn turns[] = {{JL_ROLE_SYSTEM, "be"}, {JL_ROLE_USER, "hi"}, {JL_ROLE_ASSISTANT, "yo"},
                       {JL_ROLE_USER, "<|end|>"}, {JL_ROLE_ASSISTANT, "k"}};
    jl_conversation conv = {turns, 5};
    jl_segments seg = {0};
    int32_t *ids;
    uint8_t *train;
    size_t n;
    assert_int_equal(jl_sft_tokenize(tok, &conv, &seg, &ids, &train, &n), JL_OK);
    const int32_t BOS = jl_tokenizer_special(tok, "<|bos|>"), SYS = jl_tokenizer_special(tok, "<|system|>");
    const int32_t USR = jl_tokenizer_special(tok, "<|user|>"), AST = jl_tokenizer_special(tok, "<|assistant|>");
    const int32_t END = jl_tokenizer_special(tok, "<|end|>");
    /* user text "<|end|>" is plain text (allow_special = 0): 7 byte tokens, not the special token */
    const int32_t want[] = {BOS, SYS, 'b', 'e', END, USR, 'h', 'i', END, AST, 'y', 'o', END,
                            USR, '<', '|', 'e', 'n', 'd', '|', '>', END, AST, 'k', END};
    const uint8_t mask[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1};
    assert_int_equal(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ids[i], want[i]);
        assert_int_equal(train[i], mask[i]);
    }
    /* row: targets[i] = ids[i+1] where token i+1 is trainable; padding after */
    int32_t tk[32], tg[32];
    jl_sft_row(ids, train, n, 0, tk, tg, 32);
    for (int i = 0; i < 32; i++) {
        int32_t expect = (size_t)i + 1 < n && mask[i + 1] ? want[i + 1] : -1;
        assert_int_equal(tg[i], expect);
        assert_int_equal(tk[i], (size_t)i < n ? want[i] : 0);
    }
    assert_int_equal(tg[9], 'y');  /* <|assistant|> predicts the first answer token */
    assert_int_equal(tg[11], END); /* the answer's last token predicts its <|end|> */
    assert_int_equal(tg[12], -1);  /* <|end|> → <|user|> is not learned */
    free(ids);
    free(train);
    jl_segments_free(&seg);
    jl_tokenizer_free(tok);
}

/* "len abc" → "n=3": a format the base model (byte tokenizer, random init) has never seen. */
static void write_task(const char *path, int n, uint64_t seed) {
    jl_rng r;
    jl_rng_seed(&r, seed);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < n; i++) {
        char w[8];
        int len = 1 + (int)jl_rng_below(&r, 5);
        for (int k = 0; k < len; k++) w[k] = (char)('a' + jl_rng_below(&r, 8));
        w[len] = '\0';
        if (i % 4 == 3) /* Alpaca lines mixed in */
            fprintf(f, "{\"instruction\":\"len %s\",\"output\":\"n=%d\"}\n", w, len);
        else
            fprintf(f, "{\"messages\":[{\"role\":\"user\",\"content\":\"len %s\"},{\"role\":\"assistant\","
                       "\"content\":\"n=%d\"}]}\n", w, len);
    }
    fclose(f);
}

static void make_base_ctx(const char *path, int context) {
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, 2, 262, context);
    c.n_head = 2;
    assert_int_equal(jl_config_finish(&c), JL_OK);
    jl_model *m;
    assert_int_equal(jl_model_new(&c, &m), JL_OK);
    jl_model_init(m, 42);
    save_with_byte_tokenizer(m, path);
}

static void make_base(const char *path) { make_base_ctx(path, 32); }

/* Share of held-out prompts answered exactly "n=<len><|end|>" by greedy decoding (prefix: soft prompt slots). */
static double exact_match(jl_model *m, int prefix, uint64_t seed) {
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_bytes(&tok), JL_OK);
    jl_acts a;
    assert_int_equal(jl_acts_new(&m->cfg, 1, m->cfg.max_seq_len, &a), JL_OK);
    jl_rng r;
    jl_rng_seed(&r, seed);
    const int trials = 20;
    int good = 0;
    for (int i = 0; i < trials; i++) {
        char w[8], user[16], want[8];
        int len = 1 + (int)jl_rng_below(&r, 5);
        for (int k = 0; k < len; k++) w[k] = (char)('a' + jl_rng_below(&r, 8));
        w[len] = '\0';
        snprintf(user, sizeof user, "len %s", w);
        snprintf(want, sizeof want, "n=%d", len);
        jl_turn turns[] = {{JL_ROLE_USER, user}};
        jl_conversation conv = {turns, 1};
        jl_segments seg = {0};
        assert_int_equal(jl_chat_render_generation(&conv, &seg), JL_OK);
        int32_t seq[64];
        int n = 0;
        for (int k = 0; k < prefix; k++) seq[n++] = 0;
        for (size_t k = 0; k < seg.n; k++) {
            if (seg.items[k].special >= 0) seq[n++] = jl_tokenizer_special(tok, jl_special_name(seg.items[k].special));
            else
                for (size_t b = 0; b < seg.items[k].len; b++) seq[n++] = (unsigned char)seg.items[k].text[b];
        }
        jl_segments_free(&seg);
        int start = n;
        while (n < m->cfg.max_seq_len) {
            jl_model_forward(m, &a, seq, NULL, 1, n, 0, NULL);
            const float *row = a.logits + (size_t)(n - 1) * m->cfg.padded_vocab;
            int best = 0;
            for (int v = 1; v < m->cfg.vocab_size; v++)
                if (row[v] > row[best]) best = v;
            seq[n++] = best;
            if (best == jl_tokenizer_special(tok, "<|end|>")) break;
        }
        char got[64];
        int g = 0;
        for (int k = start; k < n && g < 63; k++) got[g++] = seq[k] < 256 ? (char)seq[k] : '|';
        got[g] = '\0';
        good += n - start == (int)strlen(want) + 1 && strncmp(got, want, strlen(want)) == 0 &&
                seq[n - 1] == jl_tokenizer_special(tok, "<|end|>");
    }
    jl_acts_free(&a);
    jl_tokenizer_free(tok);
    return (double)good / trials;
}

#define SFT_FLAGS "--batch-size 16 --seq-len 24 --lr 3e-3 --eval-every 50 --threads 2 --seed 5"

static void run_method(const char *base, const char *data, const char *method, const char *extra, int steps,
                       double *first, double *last) {
    char out[1024], args[4096], metrics[1100];
    snprintf(out, sizeof out, "%s", tmp_path(method));
    snprintf(args, sizeof args, "sft --model %s --data %s --out %s --method %s --steps %d " SFT_FLAGS " %s", base, data,
             out, method, steps, extra);
    char log[1100];
    snprintf(log, sizeof log, "%s.log", out);
    int rc = run_cli(args, log);
    if (rc != 0) {
        char *text;
        size_t len;
        if (jl_read_file(log, &text, &len) == JL_OK) print_message("%s\n", text), free(text);
    }
    assert_int_equal(rc, 0);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", out);
    double v[64];
    int n = read_metric(metrics, "val_loss", v, 64);
    assert_true(n >= 2);
    *first = v[0];
    *last = v[n - 1];
    print_message("%-6s held-out assistant loss %.3f -> %.3f\n", method, *first, *last);
}

static void test_methods_learn_the_format(void **s) {
    (void)s;
    char base[1024], data[1024];
    snprintf(base, sizeof base, "%s", tmp_path("base.safetensors"));
    snprintf(data, sizeof data, "%s", tmp_path("task.jsonl"));
    make_base(base);
    write_task(data, 400, 1);
    int steps = JL_SANITIZED ? 60 : 150;
    double first, last;
    run_method(base, data, "full", "", steps, &first, &last);
    assert_true(last < (JL_SANITIZED ? 0.8 : 0.5) * first);
    run_method(base, data, "lora", "--lora-rank 8 --lora-targets all --lr 1e-2", steps, &first, &last);
    assert_true(last < 0.8 * first);
    run_method(base, data, "freeze", "--train-last 1 --train-head", steps, &first, &last);
    assert_true(last < 0.8 * first);
    run_method(base, data, "prompt", "--prompt-tokens 4 --lr 3e-2", steps, &first, &last);
    assert_true(last < first);

    /* the base model does not follow the format; the fully fine-tuned one does */
    jl_checkpoint b, f;
    assert_int_equal(jl_checkpoint_load(base, &b), JL_OK);
    char path[1100];
    snprintf(path, sizeof path, "%s/model.safetensors", tmp_path("full"));
    assert_int_equal(jl_checkpoint_load(path, &f), JL_OK);
    double base_em = exact_match(b.model, 0, 99), sft_em = exact_match(f.model, 0, 99);
    print_message("exact match on held-out prompts: base %.2f, full SFT %.2f\n", base_em, sft_em);
    assert_true(base_em == 0.0);
    assert_true(sft_em >= (JL_SANITIZED ? 0.3 : 0.8));

    /* LoRA used unmerged (attached) answers exactly like the merged export */
    char adapter[1100], merged[1100], args[4096];
    snprintf(adapter, sizeof adapter, "%s/adapter.safetensors", tmp_path("lora"));
    snprintf(merged, sizeof merged, "%s", tmp_path("merged.safetensors"));
    snprintf(args, sizeof args, "export --merge %s --model %s --out %s", adapter, base, merged);
    assert_int_equal(run_cli(args, tmp_path("export.log")), 0);
    jl_lora *lr;
    assert_int_equal(jl_lora_load(adapter, b.model, &lr, NULL), JL_OK);
    assert_int_equal(jl_model_attach_lora(b.model, lr, b.model->cfg.max_seq_len), JL_OK);
    double unmerged_em = exact_match(b.model, 0, 7);
    jl_model_attach_lora(b.model, NULL, 0);
    jl_checkpoint mg;
    assert_int_equal(jl_checkpoint_load(merged, &mg), JL_OK);
    double merged_em = exact_match(mg.model, 0, 7);
    print_message("LoRA exact match: unmerged %.2f, merged %.2f\n", unmerged_em, merged_em);
    assert_true(fabs(unmerged_em - merged_em) < 1e-9);
    /* the adapter refuses another base: the fully fine-tuned model */
    snprintf(args, sizeof args, "export --merge %s --model %s --out %s", adapter, path, tmp_path("x.safetensors"));
    assert_int_equal(run_cli(args, tmp_path("export_bad.log")), 2);
    jl_lora_free(lr);
    jl_checkpoint_free(&mg);
    jl_checkpoint_free(&b);
    jl_checkpoint_free(&f);
}

static int files_equal(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    if (jl_read_file(a, &x, &nx) != JL_OK) return 0;
    if (jl_read_file(b, &y, &ny) != JL_OK) return free(x), 0;
    int eq = nx == ny && memcmp(x, y, nx) == 0;
    free(x), free(y);
    return eq;
}

static void test_resume_is_exact(void **s) {
    (void)s;
    char base[1024], data[1024];
    snprintf(base, sizeof base, "%s", tmp_path("rbase.safetensors"));
    snprintf(data, sizeof data, "%s", tmp_path("rtask.jsonl"));
    make_base(base);
    write_task(data, 100, 2);
    const char *methods[] = {"lora", "full"};
    for (int i = 0; i < 2; i++) {
        char args[4096], a[1024], b[1024], fa[1100], fb[1100];
        snprintf(a, sizeof a, "%s", tmp_path(i ? "r_full_a" : "r_lora_a"));
        snprintf(b, sizeof b, "%s", tmp_path(i ? "r_full_b" : "r_lora_b"));
        const char *flags = "--steps 20 --lora-dropout 0.2 --lora-targets all " SFT_FLAGS;
        snprintf(args, sizeof args, "sft --model %s --data %s --out %s --method %s %s", base, data, a, methods[i], flags);
        assert_int_equal(run_cli(args, tmp_path("ra.log")), 0);
        snprintf(args, sizeof args, "sft --model %s --data %s --out %s --method %s %s --stop-after 8", base, data, b,
                 methods[i], flags);
        assert_int_equal(run_cli(args, tmp_path("rb.log")), 0);
        snprintf(args, sizeof args, "sft --model %s --data %s --out %s --method %s %s --resume", base, data, b,
                 methods[i], flags);
        assert_int_equal(run_cli(args, tmp_path("rc.log")), 0);
        const char *file = i ? "model.safetensors" : "adapter.safetensors";
        snprintf(fa, sizeof fa, "%s/%s", a, file);
        snprintf(fb, sizeof fb, "%s/%s", b, file);
        assert_true(files_equal(fa, fb));
        /* resuming with another rank is refused */
        if (i == 0) {
            snprintf(args, sizeof args, "sft --model %s --data %s --out %s --method lora %s --lora-rank 4 --resume",
                     base, data, b, flags);
            assert_int_equal(run_cli(args, tmp_path("rd.log")), 2);
        }
    }
}

/* --eval-batches is in the training state: a run resumed without the flag evaluates over the saved number of
 * batches (not the default 100), so every held-out loss it logs is the uninterrupted run's; a given flag wins. */
static void test_resume_keeps_eval_batches(void **s) {
    (void)s;
    char base[1024], data[1024], args[4096], a[1024], b[1024], c[1024], m[1100];
    snprintf(base, sizeof base, "%s", tmp_path("ebase.safetensors"));
    snprintf(data, sizeof data, "%s", tmp_path("etask.jsonl"));
    make_base(base);
    write_task(data, 80, 2);
    snprintf(a, sizeof a, "%s", tmp_path("e_a"));
    snprintf(b, sizeof b, "%s", tmp_path("e_b"));
    snprintf(c, sizeof c, "%s", tmp_path("e_c"));
    const char *flags = "--steps 8 --batch-size 4 --seq-len 24 --val-fraction 0.5 --eval-every 4 --threads 2 --seed 3";
    snprintf(args, sizeof args, "sft --model %s --data %s --out %s %s --eval-batches 2", base, data, a, flags);
    assert_int_equal(run_cli(args, tmp_path("ea.log")), 0);
    snprintf(args, sizeof args, "sft --model %s --data %s --out %s %s --eval-batches 2 --stop-after 4", base, data, b,
             flags);
    assert_int_equal(run_cli(args, tmp_path("eb.log")), 0);
    snprintf(args, sizeof args, "cp -r %s %s", b, c);
    assert_int_equal(system(args), 0);
    snprintf(args, sizeof args, "sft --model %s --data %s --out %s %s --resume", base, data, b, flags);
    assert_int_equal(run_cli(args, tmp_path("ec.log")), 0);
    double va[8], vb[8], vc[8];
    snprintf(m, sizeof m, "%s/metrics.jsonl", a);
    const int n = read_metric(m, "val_loss", va, 8);
    snprintf(m, sizeof m, "%s/metrics.jsonl", b);
    assert_int_equal(n, 3); /* steps 0, 4, 8 */
    assert_int_equal(read_metric(m, "val_loss", vb, 8), n);
    for (int i = 0; i < n; i++) assert_true(va[i] == vb[i]);
    /* given on the command line, the flag decides: the whole held-out set (10 batches) gives another figure */
    snprintf(args, sizeof args, "sft --model %s --data %s --out %s %s --eval-batches 0 --resume", base, data, c, flags);
    assert_int_equal(run_cli(args, tmp_path("ed.log")), 0);
    snprintf(m, sizeof m, "%s/metrics.jsonl", c);
    assert_int_equal(read_metric(m, "val_loss", vc, 8), n);
    assert_true(vc[0] == va[0] && vc[2] != va[2]);
}

/* Padding share from the run's log line "padding X% of row tokens". */
static double logged_padding(const char *log) {
    char *text;
    size_t len;
    assert_int_equal(jl_read_file(log, &text, &len), JL_OK);
    const char *p = strstr(text, "padding ");
    assert_non_null(p);
    double pct = strtod(p + strlen("padding "), NULL);
    free(text);
    return pct;
}

/* One run; returns the held-out losses logged (n of them) and the padding share. */
static int packing_run(const char *base, const char *data, const char *name, const char *flags, double *val,
                       double *padding) {
    char out[1024], args[4096], log[1100], metrics[1100];
    snprintf(out, sizeof out, "%s", tmp_path(name));
    snprintf(log, sizeof log, "%s.log", out);
    snprintf(args, sizeof args, "sft --model %s --data %s --out %s --threads 2 --seed 5 %s", base, data, out, flags);
    assert_int_equal(run_cli(args, log), 0);
    *padding = logged_padding(log);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", out);
    return read_metric(metrics, "val_loss", val, 64);
}

/* Packing is exact: the held-out loss of the untrained model (every held-out conversation, packed into rows of
 * 96 or one per row) is the same, with and without a soft prompt; and a packed run learns the format. */
static void test_packing_is_exact_and_learns(void **s) {
    (void)s;
    char base[1024], data[1024];
    snprintf(base, sizeof base, "%s", tmp_path("pbase.safetensors"));
    snprintf(data, sizeof data, "%s", tmp_path("ptask.jsonl"));
    make_base_ctx(base, 96);
    write_task(data, 400, 3);
    const char *methods[] = {"--method full", "--method prompt --prompt-tokens 3", "--method lora --lora-dropout 0"};
    for (int i = 0; i < 3; i++) {
        char flags[512];
        double on[64], off[64], pad_on, pad_off;
        snprintf(flags, sizeof flags, "%s --steps 1 --batch-size 4 --seq-len 96 --packing on", methods[i]);
        assert_true(packing_run(base, data, "pk_on", flags, on, &pad_on) >= 1);
        snprintf(flags, sizeof flags, "%s --steps 1 --batch-size 4 --seq-len 96 --packing off", methods[i]);
        assert_true(packing_run(base, data, "pk_off", flags, off, &pad_off) >= 1);
        print_message("%s: held-out loss packed %.8f, one per row %.8f; padding %.1f%% vs %.1f%%\n", methods[i],
                      on[0], off[0], pad_on, pad_off);
        assert_true(fabs(on[0] - off[0]) <= 1e-5 * fabs(off[0]));
        assert_true(pad_on < 20 && pad_off > 70); /* one step: the first 4 rows only */
    }
    double v[64], pad;
    int n = packing_run(base, data, "pk_learn", "--steps 60 --batch-size 4 --seq-len 96 --lr 3e-3 --eval-every 30",
                        v, &pad);
    assert_true(n >= 2);
    print_message("packed full SFT: held-out loss %.3f -> %.3f, padding %.1f%%\n", v[0], v[n - 1], pad);
    assert_true(v[n - 1] < 0.5 * v[0]);
    assert_true(pad < 10);
}

static int log_has(const char *log, const char *needle) {
    char *text;
    size_t len;
    if (jl_read_file(log, &text, &len) != JL_OK) return 0;
    int found = strstr(text, needle) != NULL;
    if (!found) print_message("log lacks '%s':\n%s\n", needle, text);
    free(text);
    return found;
}

static void write_text(const char *path, const char *text) {
    assert_int_equal(jl_write_file_atomic(path, text, strlen(text)), JL_OK);
}

static void test_bad_input(void **s) {
    (void)s;
    char base[1024];
    snprintf(base, sizeof base, "%s", tmp_path("bbase.safetensors"));
    make_base(base);
    const char *good = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"yo\"}]}\n";
    char text[4096], args[4096];
    char bad[1024], log[1024], out[1024];
    snprintf(bad, sizeof bad, "%s", tmp_path("bad.jsonl"));
    snprintf(log, sizeof log, "%s", tmp_path("bad.log"));
    snprintf(out, sizeof out, "%s", tmp_path("bad_out"));
    /* a broken line: stop with file:line, or skip it with --skip-bad */
    snprintf(text, sizeof text, "%s%s{\"messages\":[{\"role\":\"user\"\n%s", good, good, good);
    write_text(bad, text);
    snprintf(args, sizeof args, "sft --model %s --data %s --out %s --steps 2 --batch-size 2 --seq-len 16", base, bad, out);
    assert_int_equal(run_cli(args, log), 2);
    assert_true(log_has(log, "bad.jsonl:3"));
    snprintf(args, sizeof args, "sft --model %s --data %s --out %s --steps 2 --batch-size 2 --seq-len 16 --skip-bad",
             base, bad, out);
    assert_int_equal(run_cli(args, log), 0);
    assert_true(log_has(log, "skipped 1 malformed line"));
    /* missing role, no assistant turn */
    write_text(bad, "{\"messages\":[{\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"yo\"}]}\n");
    snprintf(args, sizeof args, "sft --model %s --data %s --out %s --steps 2", base, bad, out);
    assert_int_equal(run_cli(args, log), 2);
    assert_true(log_has(log, "messages[0].role"));
    write_text(bad, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}\n");
    assert_int_equal(run_cli(args, log), 2);
    assert_true(log_has(log, "no assistant turn"));
    /* longer than the row: truncated (counted) by default, skipped on request — all skipped is an error */
    char longer[2048];
    snprintf(longer, sizeof longer, "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"},{\"role\":\"assistant\","
                                    "\"content\":\"yes\"}]}\n", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    snprintf(text, sizeof text, "%s%s%s%s", good, longer, good, good);
    write_text(bad, text);
    snprintf(args, sizeof args, "sft --model %s --data %s --out %s --steps 2 --batch-size 2 --seq-len 16 "
                                "--val-fraction 0", base, bad, out);
    assert_int_equal(run_cli(args, log), 0); /* truncation leaves nothing of its answer: skipped, said so */
    assert_true(log_has(log, "1 skipped"));
    snprintf(text, sizeof text, "%s", longer);
    write_text(bad, text);
    snprintf(args, sizeof args, "sft --model %s --data %s --out %s --steps 2 --seq-len 16 --overlong skip", base, bad,
             out);
    assert_int_equal(run_cli(args, log), 2);
    assert_true(log_has(log, "no training conversation left"));
    /* flags */
    write_text(bad, good);
    snprintf(args, sizeof args, "sft --model %s --data %s --out %s --method lora --lora-targets q,gate_proj", base,
             bad, out);
    assert_int_equal(run_cli(args, log), 2);
    assert_true(log_has(log, "gate_proj"));
    snprintf(args, sizeof args, "sft --model %s --data %s --out %s --method freeze", base, bad, out);
    assert_int_equal(run_cli(args, log), 2);
    assert_true(log_has(log, "--train-last"));
    snprintf(args, sizeof args, "sft --model %s --data %s --out %s --method freeze --train-layers 0-9", base, bad, out);
    assert_int_equal(run_cli(args, log), 2);
    assert_true(log_has(log, "outside the model's layers"));
    snprintf(args, sizeof args, "sft --model %s --data %s --out %s --method adapter", base, bad, out);
    assert_int_equal(run_cli(args, log), 2);
    assert_true(log_has(log, "unknown method"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask_token_by_token),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_methods_learn_the_format),
        cmocka_unit_test(test_resume_is_exact),
        cmocka_unit_test(test_resume_keeps_eval_batches),
        cmocka_unit_test(test_packing_is_exact_and_learns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
