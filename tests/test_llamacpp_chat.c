/* llama.cpp chats with our GGUF export in our chat format: node-llama-cpp 3.22.1 (build/npm-llamacpp, from
 * scripts/fetch_llamacpp_npm.sh; never skipped) reads the file's tokenizer.chat_template (our format as Jinja) and
 * its LlamaChatSession, greedy, must answer every turn of several conversations — one turn without a system
 * prompt, multi-turn ones with a Chinese and an English system prompt — exactly as `jielong chat --temperature 0`
 * does on the same file, answers that stop at the end-of-turn token included (the template's eos reaches llama.cpp),
 * and llama.cpp's context holds the same tokens as jielong's cache at the end of each (system prompt and turns
 * rendered alike).
 * The model is tiny and fast to make (a depth-1, width-64 llama with a 360-token BPE tokenizer, 120 SFT steps on
 * "len <word>" → "n=<length>"): it needs no quality, only greedy choices that are not near-ties, which is checked:
 * the same conversations run in-process through jl_chat with a top-2 report, and every chosen token's logit beats
 * the runner-up by at least MIN_GAP (an f32 file on both sides; the two sides' sums differ by ~1e-6).
 * scripts/check_llamacpp_chat.sh runs this test. */
#include "testutil.h"
#include "io/fileio.h"
#include "jielong/chat_format.h"
#include "jielong/generate.h"
#include "jielong/gguf.h"
#include "jielong/tokenizer.h"
#include "model/model.h"
#include <json-c/json.h>
#include <math.h>
#include <unistd.h>

#define MAX_TOKENS 12
#define MIN_GAP 0.05 /* nats between the chosen token's logit and the runner-up's, at every step */

typedef struct {
    const char *system; /* NULL: none */
    const char *turns[4];
} conversation;

static const conversation CONVS[] = {
    {NULL, {"len abc", NULL}},
    {"你是接龙。", {"len abc", "len xx", "床前明月光", NULL}},
    {"You count letters.", {"len dddd", "len bcdx", NULL}},
};
#define N_CONVS (sizeof CONVS / sizeof CONVS[0])

/* The SFT task: "len <word>" → "n=<its length>", 80 conversations. */
static void write_task(const char *path) {
    static const char *const words[] = {"a", "bb", "ccc", "dddd", "eeeee", "ab", "abc", "abcd", "bcd", "cd"};
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int w = 0; w < 10; w++)
        for (int k = 1; k <= 8; k++)
            fprintf(f, "{\"messages\":[{\"role\":\"user\",\"content\":\"len %s%.*s\"},"
                       "{\"role\":\"assistant\",\"content\":\"n=%d\"}]}\n",
                    words[w], k % 3, "xx", (int)strlen(words[w]) + k % 3);
    fclose(f);
}

/* A random depth-1 llama (grouped-query, untied) with a BPE tokenizer trained on the task and some poems. */
static void make_model(const char *task, const char *out) {
    char *a, *b;
    size_t la, lb;
    assert_int_equal(jl_read_file(task, &a, &la), JL_OK);
    assert_int_equal(jl_read_file(root_path("data/poems.jsonl"), &b, &lb), JL_OK);
    if (lb > 40000) lb = 40000;
    const char *texts[] = {a, b};
    const size_t lens[] = {la, lb};
    jl_train_opts o = {.vocab_size = 360};
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_train(texts, lens, 2, &o, &tok), JL_OK);
    free(a);
    free(b);
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, 1, jl_tokenizer_vocab_size(tok), 96);
    c.dim = 64;
    c.n_head = 2;
    c.n_kv_head = 1;
    c.hidden_dim = 160;
    c.tie_embeddings = 0;
    assert_int_equal(jl_config_finish(&c), JL_OK);
    jl_checkpoint ck = {0};
    assert_int_equal(jl_model_new(&c, &ck.model), JL_OK);
    jl_model_init(ck.model, 3);
    assert_int_equal(jl_tokenizer_to_json(tok, &ck.tokenizer_json), JL_OK);
    jl_tokenizer_free(tok);
    assert_int_equal(jl_checkpoint_save(out, &ck), JL_OK);
    jl_checkpoint_free(&ck);
}

/* `jielong chat --jsonl` on the conversation: answers[t] (malloc'd); *stopped counts answers ended by "stop". */
static void jielong_chat(const char *model, const conversation *cv, char **answers, int *stopped) {
    char in[512], out[512], args[2048];
    snprintf(in, sizeof in, "%s", tmp_path("chat.in"));
    snprintf(out, sizeof out, "%s", tmp_path("chat.out"));
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    for (int t = 0; cv->turns[t]; t++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "content", json_object_new_string(cv->turns[t]));
        fprintf(f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    }
    fclose(f);
    char sys[256] = "";
    if (cv->system) snprintf(sys, sizeof sys, "--system '%s'", cv->system);
    snprintf(args, sizeof args, "chat --model '%s' --temperature 0 --max-tokens %d --jsonl %s < '%s'", model,
             MAX_TOKENS, sys, in);
    if (run_cli(args, out) != 0) fail_msg("jielong %s failed", args);
    f = fopen(out, "r");
    assert_non_null(f);
    char line[8192];
    int t = 0;
    while (fgets(line, sizeof line, f)) {
        json_object *r = json_tokener_parse(line), *content, *reason;
        if (!r || !json_object_object_get_ex(r, "content", &content)) fail_msg("jielong chat printed: %s", line);
        assert_true(cv->turns[t] != NULL);
        answers[t++] = strdup(json_object_get_string(content));
        if (json_object_object_get_ex(r, "finish_reason", &reason) && !strcmp(json_object_get_string(reason), "stop"))
            (*stopped)++;
        json_object_put(r);
    }
    fclose(f);
    assert_true(cv->turns[t] == NULL);
}

typedef struct {
    double min_gap;
} gap_view;

static int on_token(void *user, const jl_gen_event *ev) {
    gap_view *g = user;
    assert_non_null(ev->report);
    assert_int_equal(ev->report->top[0].id, ev->token); /* greedy */
    double gap = log((double)ev->report->top[0].p_model) - log((double)ev->report->top[1].p_model);
    if (gap < g->min_gap) g->min_gap = gap;
    return 0;
}

/* The conversation in-process on the GGUF (the code `jielong chat` runs), with a top-2 report per token: the
 * answers must be the CLI's; the smallest top-2 logit gap over all its tokens is returned, and in tokens / *n the
 * cache's tokens at its end (system prompt, turns, answers as rendered; malloc'd). */
static double margin(const char *gguf, const conversation *cv, char *const *cli_answers, int32_t **tokens, int *n) {
    jl_checkpoint ck;
    jl_qweights *qw;
    assert_int_equal(jl_gguf_load_model(gguf, 1, &ck, &qw), JL_OK);
    assert_null(qw);
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_from_json(ck.tokenizer_json, strlen(ck.tokenizer_json), &tok), JL_OK);
    jl_chat_format *fmt;
    assert_int_equal(jl_chat_format_from_checkpoint(&ck, &fmt), JL_OK);
    jl_session *s;
    assert_int_equal(jl_session_new(ck.model, 0, &s), JL_OK);
    jl_sampler_params p;
    jl_sampler_defaults(&p);
    p.temperature = 0;
    jl_sampler *smp;
    assert_int_equal(jl_sampler_new(&p, jl_tokenizer_vocab_size(tok), &smp), JL_OK);
    jl_chat *chat;
    assert_int_equal(jl_chat_new_format(s, smp, tok, fmt, &chat), JL_OK);
    if (cv->system) assert_int_equal(jl_chat_set_system(chat, cv->system), JL_OK);
    gap_view g = {INFINITY};
    jl_gen_opts o = {.max_tokens = MAX_TOKENS, .n_report = 2};
    for (int t = 0; cv->turns[t]; t++) {
        char *answer;
        jl_gen_result res;
        assert_int_equal(jl_chat_turn(chat, cv->turns[t], &o, on_token, &g, &answer, &res), JL_OK);
        assert_string_equal(answer, cli_answers[t]);
        free(answer);
    }
    *n = jl_session_pos(s);
    *tokens = malloc(sizeof(int32_t) * (size_t)(*n + 1));
    memcpy(*tokens, jl_session_tokens(s), sizeof(int32_t) * (size_t)*n);
    jl_chat_free(chat);
    jl_sampler_free(smp);
    jl_session_free(s);
    jl_chat_format_free(fmt);
    jl_tokenizer_free(tok);
    jl_checkpoint_free(&ck);
    return g.min_gap;
}

/* llama.cpp's context tokens at the end of a conversation against ours: the same rendering (system prompt,
 * template, answers; neither holds the last end-of-turn token). Returns 1 when they are equal. */
static int same_context(json_object *theirs, const int32_t *ours, int n_ours) {
    if ((int)json_object_array_length(theirs) != n_ours) return 0;
    for (int i = 0; i < n_ours; i++)
        if (json_object_get_int(json_object_array_get_idx(theirs, (size_t)i)) != ours[i]) return 0;
    return 1;
}

/* Writes the conversations for scripts/llamacpp_chat.mjs: [{"system": S|null, "turns": [...]}, ...]. */
static void write_conversations(const char *path) {
    json_object *list = json_object_new_array();
    for (size_t c = 0; c < N_CONVS; c++) {
        json_object *o = json_object_new_object(), *turns = json_object_new_array();
        json_object_object_add(o, "system", CONVS[c].system ? json_object_new_string(CONVS[c].system) : NULL);
        for (int t = 0; CONVS[c].turns[t]; t++) json_object_array_add(turns, json_object_new_string(CONVS[c].turns[t]));
        json_object_object_add(o, "turns", turns);
        json_object_array_add(list, o);
    }
    assert_int_equal(json_object_to_file_ext(path, list, JSON_C_TO_STRING_PLAIN), 0);
    json_object_put(list);
}

static void test_llamacpp_chats_like_jielong(void **state) {
    (void)state;
    const char *nlc = root_path("build/npm-llamacpp/node_modules/node-llama-cpp/package.json");
    if (access(nlc, R_OK) != 0) fail_msg("%s is missing: run scripts/fetch_llamacpp_npm.sh — not skipping", nlc);
    char task[512], base[512], sft[512], gguf[512], convs[512], theirs[512], args[4096];
    snprintf(task, sizeof task, "%s", tmp_path("task.jsonl"));
    snprintf(base, sizeof base, "%s", tmp_path("base.safetensors"));
    snprintf(sft, sizeof sft, "%s", tmp_path("sft"));
    snprintf(gguf, sizeof gguf, "%s", tmp_path("chat.gguf"));
    snprintf(convs, sizeof convs, "%s", tmp_path("conversations.json"));
    snprintf(theirs, sizeof theirs, "%s", tmp_path("llamacpp.out"));
    write_task(task);
    make_model(task, base);
    snprintf(args, sizeof args, "sft --model '%s' --data '%s' --out '%s' --method full --steps 120 --batch-size 16 "
             "--seq-len 32 --lr 1e-2 --eval-every 0 --seed 5", base, task, sft);
    if (run_cli(args, tmp_path("sft.log")) != 0) fail_msg("jielong %s failed", args);
    snprintf(args, sizeof args, "export --model '%s/model.safetensors' --format gguf --type f32 --out '%s' --quiet",
             sft, gguf);
    if (run_cli(args, tmp_path("export.log")) != 0) fail_msg("jielong %s failed", args);
    write_conversations(convs);
    char cmd[4096];
    /* the script imports node-llama-cpp from its own folder's node_modules: run a copy placed there */
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && OMP_NUM_THREADS=1 node '%s' '%s' %d '%s' > '%s'",
             root_path("scripts/llamacpp_chat.mjs"), root_path("build/npm-llamacpp/llamacpp_chat.mjs"),
             root_path("build/npm-llamacpp/llamacpp_chat.mjs"), gguf, MAX_TOKENS, convs, theirs);
    if (system(cmd) != 0) fail_msg("node-llama-cpp failed: %s", cmd);
    FILE *f = fopen(theirs, "r");
    assert_non_null(f);
    static char line[1 << 16];
    int bad = 0, turns = 0, stopped = 0;
    for (size_t c = 0; c < N_CONVS; c++) {
        char *ours[4] = {0};
        jielong_chat(gguf, &CONVS[c], ours, &stopped);
        int32_t *ctx;
        int n_ctx;
        double gap = margin(gguf, &CONVS[c], ours, &ctx, &n_ctx);
        if (!fgets(line, sizeof line, f)) fail_msg("node-llama-cpp answered %zu of %zu conversations", c, N_CONVS);
        json_object *r = json_tokener_parse(line), *answers, *tokens;
        assert_true(r && json_object_object_get_ex(r, "answers", &answers) &&
                    json_object_object_get_ex(r, "tokens", &tokens));
        int ctx_ok = same_context(tokens, ctx, n_ctx);
        print_message("conversation %zu: context tokens at the end: jielong %d, llama.cpp %zu, %s\n", c, n_ctx,
                      json_object_array_length(tokens), ctx_ok ? "the same" : "DIFFERENT");
        bad += !ctx_ok;
        free(ctx);
        for (int t = 0; CONVS[c].turns[t]; t++, turns++) {
            json_object *a = json_object_array_get_idx(answers, (size_t)t);
            const char *them = a ? json_object_get_string(a) : "(none)";
            int same = !strcmp(them, ours[t]);
            bad += !same;
            print_message("conversation %zu turn %d (%s): jielong '%s' llama.cpp '%s' %s\n", c, t, CONVS[c].turns[t],
                          ours[t], them, same ? "same" : "DIFFERENT");
            free(ours[t]);
        }
        print_message("conversation %zu: smallest top-2 logit gap %.3f nats\n", c, gap);
        if (gap < MIN_GAP) fail_msg("conversation %zu: a near-tie (top-2 gap %.4f < %g): greedy is not decisive", c,
                                    gap, MIN_GAP);
        json_object_put(r);
    }
    fclose(f);
    print_message("%d/%d answers equal; %d stopped at the end-of-turn token\n", turns - bad, turns, stopped);
    assert_int_equal(bad, 0);
    assert_true(stopped >= 2); /* the SFT model answers and stops: the end of turn is compared too */
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_llamacpp_chats_like_jielong)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
