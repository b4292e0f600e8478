/* Tools: the calculator against a table (errors included), the tool-call parser on malformed and mutated calls,
 * the toolbox's error results, tool turns in the chat template (never trained), the SFT reader's tool fields,
 * `data tools`, and the agent loop on a tiny model trained here to call the calculator. */
#include "testutil.h"
#include "core/rng.h"
#include "jielong/dataset.h"
#include "jielong/template.h"
#include "jielong/tools.h"
#include "jielong/tokenizer.h"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_calculator_table(void **s) {
    (void)s;
    static const struct {
        const char *expr, *want;
    } table[] = {
        {"1+2", "3"},
        {"2*3+4", "10"},
        {"2*(3+4)", "14"},
        {"10/4", "2.5"},
        {"1/3", "1/3 \xe2\x89\x88 0.333333333333"},
        {"-5+2", "-3"},
        {"--5", "5"},
        {"0.1+0.2", "0.3"},
        {"1.5*1.5", "2.25"},
        {"7/8", "0.875"},
        {"100-250", "-150"},
        {"12 × 12 ÷ 3", "48"},
        {"（1+2）×3", "9"},
        {"3 − 5", "-2"},
        {"2/-4", "-0.5"},
        {"123456789012345678*1000", "123456789012345678000"},
        {"0.001/0.1", "0.01"},
        {"(((((1)))))", "1"},
        {"10/3*3", "10"},
        {"-0.5*4", "-2"},
        {"99999999999999999999999999999999999*99999", "error: number too large"},
        {"1/0", "error: division by zero"},
        {"1/(2-2)", "error: division by zero"},
        {"", "error: empty expression"},
        {"   ", "error: empty expression"},
        {"1+", "error: the expression ends too early"},
        {"(1+2", "error: missing ')'"},
        {"1+2)", "error: unexpected ')' at character 4"},
        {"2x3", "error: unexpected 'x' at character 2"},
        {"1..2", "error: unexpected '.' at character 3"},
        {"abc", "error: unexpected 'a' at character 1"},
        {"1 + 乘", "error: unexpected '乘' at character 5"},
        {"1234567890123456789012345678901234567", "error: number too long (36 digits at most)"},
    };
    char out[128];
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        int bad = jl_calc_eval(table[i].expr, out, sizeof out);
        if (strcmp(out, table[i].want)) fail_msg("calc(\"%s\") = \"%s\", want \"%s\"", table[i].expr, out, table[i].want);
        assert_int_equal(bad, strncmp(table[i].want, "error:", 6) == 0);
    }
    char deep[300];
    memset(deep, '(', 100);
    strcpy(deep + 100, "1");
    jl_calc_eval(deep, out, sizeof out);
    assert_string_equal(out, "error: nested deeper than 64");
    assert_int_equal(jl_calc_eval("1+1", out, 2), 0); /* a small buffer cuts, never overflows */
    assert_string_equal(out, "2");
}

static void test_tool_call_parser(void **s) {
    (void)s;
    jl_tool_calls c;
    assert_int_equal(jl_tool_calls_parse("Let me compute. <tool_call>{\"name\":\"calculator\",\"arguments\":"
                                         "{\"expression\":\"2+2\"}}</tool_call> done",
                                         &c),
                     JL_OK);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.calls[0].name, "calculator");
    assert_string_equal(c.calls[0].arguments, "{\"expression\":\"2+2\"}");
    assert_null(c.calls[0].error);
    assert_string_equal(c.content, "Let me compute.  done");
    jl_tool_calls_free(&c);
    /* two calls; arguments as a JSON string (OpenAI); unterminated last call runs to the end */
    assert_int_equal(jl_tool_calls_parse("<tool_call>{\"name\":\"date\",\"arguments\":{}}</tool_call><tool_call>"
                                         "{\"name\":\"search\",\"arguments\":\"{\\\"query\\\":\\\"x\\\"}\"}",
                                         &c),
                     JL_OK);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.calls[1].name, "search");
    assert_string_equal(c.calls[1].arguments, "{\"query\":\"x\"}");
    jl_tool_calls_free(&c);
    assert_int_equal(jl_tool_calls_parse("no calls here", &c), JL_OK);
    assert_int_equal(c.n, 0);
    jl_tool_calls_free(&c);
    static const struct {
        const char *body, *error;
    } bad[] = {
        {"", "error: malformed tool call: the JSON ends too early"},
        {"{\"name\":\"calculator\"", "error: malformed tool call: the JSON ends too early"},
        {"[1,2]", "error: malformed tool call: not a JSON object"},
        {"{\"name\":3,\"arguments\":{}}", "error: malformed tool call: \"name\" must be a non-empty string"},
        {"{\"name\":\"\",\"arguments\":{}}", "error: malformed tool call: \"name\" must be a non-empty string"},
        {"{\"name\":\"calculator\"}", "error: malformed tool call: \"arguments\" is missing"},
        {"{\"name\":\"calculator\",\"arguments\":5}", "error: malformed tool call: \"arguments\" must be a JSON object"},
        {"{\"name\":\"c\",\"arguments\":\"{oops\"}", "error: malformed tool call: \"arguments\" must be a JSON object"},
        {"{\"name\":\"c\",\"arguments\":{}} trailing", "error: malformed tool call: text after the JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "<tool_call>%s</tool_call>", bad[i].body);
        assert_int_equal(jl_tool_calls_parse(text, &c), JL_OK);
        assert_int_equal(c.n, 1);
        assert_null(c.calls[0].name);
        if (!c.calls[0].error || strcmp(c.calls[0].error, bad[i].error))
            fail_msg("%s: error \"%s\", want \"%s\"", bad[i].body, c.calls[0].error ? c.calls[0].error : "(none)",
                     bad[i].error);
        jl_tool_calls_free(&c);
    }
    /* fuzz: random mutations of a valid call never crash; each call is either whole or carries an error */
    const char *valid = "<tool_call>{\"name\":\"calculator\",\"arguments\":{\"expression\":\"(1+2)*3\"}}</tool_call>";
    jl_rng r;
    jl_rng_seed(&r, 17);
    int whole = 0, broken = 0;
    for (int it = 0; it < 3000; it++) {
        char t[160];
        strcpy(t, valid);
        size_t n = strlen(t);
        for (int m = 0, k = 1 + (int)jl_rng_below(&r, 4); m < k; m++) {
            size_t at = jl_rng_below(&r, n);
            int kind = (int)jl_rng_below(&r, 3);
            if (kind == 0) t[at] = (char)(1 + jl_rng_below(&r, 255)); /* replace a byte */
            else if (kind == 1) memmove(t + at, t + at + 1, n - at), n--; /* delete one */
            else t[at] = "{}[]\",:\\<>/"[jl_rng_below(&r, 11)];
        }
        assert_int_equal(jl_tool_calls_parse(t, &c), JL_OK);
        for (int i = 0; i < c.n; i++) {
            assert_true((c.calls[i].name && c.calls[i].arguments && !c.calls[i].error) ||
                        (!c.calls[i].name && !c.calls[i].arguments && c.calls[i].error));
            if (c.calls[i].error) broken++;
            else whole++;
        }
        jl_tool_calls_free(&c);
    }
    assert_true(whole > 0 && broken > 0);
    char *text = jl_tool_call_text("calculator", "{\"expression\":\"1+1\"}");
    assert_string_equal(text, "<tool_call>{\"name\":\"calculator\",\"arguments\":{\"expression\":\"1+1\"}}</tool_call>");
    free(text);
    /* arguments that are JSON but not an object are refused, as the parser refuses them in a model's call */
    const char *not_args[] = {"[1]", "5", "\"x\"", "null", "{\"a\":1} 2", "{"};
    for (size_t i = 0; i < sizeof not_args / sizeof *not_args; i++)
        assert_null(jl_tool_call_text("calculator", not_args[i]));
}

static void test_toolbox_errors(void **s) {
    (void)s;
    jl_toolbox *tb;
    assert_int_equal(jl_toolbox_new(&tb), JL_OK);
    assert_int_equal(jl_toolbox_add(tb, "search", NULL, 3), JL_ERR_ARG); /* search needs an index */
    assert_int_equal(jl_toolbox_add(tb, "shell", NULL, 3), JL_ERR_ARG);
    assert_int_equal(jl_toolbox_add_list(tb, "calculator,date", NULL, 3), JL_OK);
    assert_int_equal(jl_toolbox_count(tb), 2);
    char *r;
    assert_int_equal(jl_toolbox_run(tb, "calculator", "{\"expression\":\"6*7\"}", &r), 0);
    assert_string_equal(r, "42");
    free(r);
    assert_int_equal(jl_toolbox_run(tb, "calculator", "{\"expression\":\"6/0\"}", &r), 1);
    assert_string_equal(r, "error: division by zero");
    free(r);
    assert_int_equal(jl_toolbox_run(tb, "calculator", "{\"expr\":\"1\"}", &r), 1);
    assert_string_equal(r, "error: calculator needs {\"expression\": \"...\"}");
    free(r);
    assert_int_equal(jl_toolbox_run(tb, "search", "{\"query\":\"x\"}", &r), 1);
    assert_string_equal(r, "error: unknown tool 'search'");
    free(r);
    assert_int_equal(jl_toolbox_run(tb, "date", "{}", &r), 0);
    assert_true(strlen(r) > 10 && r[4] == '-' && strstr(r, "UTC"));
    free(r);
    char *specs = jl_toolbox_specs(tb), *block = jl_tools_block(specs);
    assert_string_equal(block, "<tools>\n{\"name\":\"calculator\",\"description\":\"exact arithmetic\"}\n"
                               "{\"name\":\"date\",\"description\":\"today's date\"}\n</tools>");
    free(specs);
    free(block);
    jl_toolbox_free(tb);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A conversation with tools, calls and results: the reader turns it into template text; the renderer marks the
 * call and the answer trainable and never the tool result. */
static void test_tool_turns_rendered_and_masked(void **s) {
    (void)s;
    const char *path = tmp_path("tool_conv.jsonl");
    write_file(path, "{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"calculator\"}}],\"messages\":["
                     "{\"role\":\"user\",\"content\":\"2+2?\"},"
                     "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
                     "\"function\":{\"name\":\"calculator\",\"arguments\":\"{\\\"expression\\\":\\\"2+2\\\"}\"}}]},"
                     "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"4\"},"
                     "{\"role\":\"assistant\",\"content\":\"4.\"}]}\n");
    jl_sft_set *set;
    assert_int_equal(jl_sft_load(path, NULL, &set, NULL), JL_OK);
    jl_conversation conv = jl_sft_get(set, 0);
    assert_int_equal(conv.n_turns, 5);
    assert_int_equal(conv.turns[0].role, JL_ROLE_SYSTEM);
    assert_string_equal(conv.turns[0].content, "<tools>\n{\"name\":\"calculator\"}\n</tools>");
    assert_string_equal(conv.turns[2].content,
                        "<tool_call>{\"name\":\"calculator\",\"arguments\":{\"expression\":\"2+2\"}}</tool_call>");
    assert_int_equal(conv.turns[3].role, JL_ROLE_TOOL);
    jl_segments seg = {0};
    assert_int_equal(jl_chat_render(&conv, &seg), JL_OK);
    char *text = jl_segments_text(&seg);
    assert_string_equal(text, "<|bos|><|system|><tools>\n{\"name\":\"calculator\"}\n</tools><|end|><|user|>2+2?<|end|>"
                              "<|assistant|><tool_call>{\"name\":\"calculator\",\"arguments\":{\"expression\":\"2+2\"}}"
                              "</tool_call><|end|><|user|><tool_response>4</tool_response><|end|><|assistant|>4.<|end|>");
    free(text);
    /* trainable: the call + its <|end|>, the answer + its <|end|>; nothing of the tool turn */
    char trained[512] = "";
    for (size_t i = 0; i < seg.n; i++)
        if (seg.items[i].trainable) strncat(trained, seg.items[i].text, seg.items[i].len);
    assert_string_equal(trained, "<tool_call>{\"name\":\"calculator\",\"arguments\":{\"expression\":\"2+2\"}}</tool_call>"
                                 "<|end|>4.<|end|>");
    jl_segments_free(&seg);
    jl_sft_free(set);
    /* bad tool fields: FILE:LINE: field: problem */
    static const char *const bad[][2] = {
        {"{\"messages\":[{\"role\":\"tool\",\"content\":\"4\"},{\"role\":\"assistant\",\"content\":\"x\"}]}",
         "messages[0].role: a tool turn must follow an assistant turn"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"tool_calls\":[]}]}",
         "messages[1].tool_calls: must be a non-empty array"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"tool_calls\":[{\"function\":"
         "{\"arguments\":\"{}\"}}]}]}",
         "messages[1].tool_calls[0].function.name: missing, empty or not a string"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"tool_calls\":[{\"function\":"
         "{\"name\":\"c\",\"arguments\":\"{bad\"}}]}]}",
         "messages[1].tool_calls[0].function.arguments: not a JSON object"},
        {"{\"tools\":[{\"description\":\"x\"}],\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":"
         "\"assistant\",\"content\":\"a\"}]}",
         "tools[0]: needs a function object with a \"name\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(path, bad[i][0]);
        assert_int_equal(jl_sft_load(path, NULL, &set, NULL), JL_ERR_FORMAT);
        if (!strstr(jl_last_error(), bad[i][1]) || !strstr(jl_last_error(), ":1: "))
            fail_msg("error '%s' lacks '%s'", jl_last_error(), bad[i][1]);
    }
}

/* data tools on the bundled corpus: valid SFT, the calls' results are what the tools say, held-out poems only. */
static void test_data_tools(void **s) {
    (void)s;
    char args[2048];
    snprintf(args, sizeof args, "data tools --poems %s --out %s --calc 40 --search 30 --eval 5 --seed 3",
             root_path("data/poems.jsonl"), tmp_path("dt"));
    assert_int_equal(run_cli(args, tmp_path("dt.log")), 0);
    jl_sft_set *set;
    jl_jsonl_stats st;
    assert_int_equal(jl_sft_load(tmp_path("dt/tools_sft.jsonl"), NULL, &set, &st), JL_OK);
    assert_true(jl_sft_count(set) >= 65); /* 40 + 30 less the searches that missed */
    int calc = 0;
    for (size_t i = 0; i < jl_sft_count(set); i++) {
        jl_conversation c = jl_sft_get(set, i);
        assert_int_equal(c.n_turns, 5);
        jl_tool_calls calls;
        assert_int_equal(jl_tool_calls_parse(c.turns[2].content, &calls), JL_OK);
        assert_int_equal(calls.n, 1);
        if (!strcmp(calls.calls[0].name, "calculator")) { /* the result is the calculator's, and the answer's */
            json_object *a = json_tokener_parse(calls.calls[0].arguments), *e;
            assert_true(json_object_object_get_ex(a, "expression", &e));
            char want[128];
            assert_int_equal(jl_calc_eval(json_object_get_string(e), want, sizeof want), 0);
            assert_string_equal(c.turns[3].content, want);
            assert_true(jl_tool_answer_correct("calc", c.turns[4].content, want));
            json_object_put(a);
            calc++;
        } else {
            assert_string_equal(calls.calls[0].name, "search");
            assert_true(strncmp(c.turns[3].content, "[1] ", 4) == 0);
        }
        jl_tool_calls_free(&calls);
    }
    assert_int_equal(calc, 40);
    jl_sft_free(set);
    jl_rl_set *ev;
    assert_int_equal(jl_rl_load(tmp_path("dt/eval_tools.jsonl"), NULL, &ev, NULL), JL_OK);
    assert_int_equal(jl_rl_count(ev), 20);
    jl_rl_free(ev);
    snprintf(args, sizeof args, "data validate --kind sft --input %s", tmp_path("dt/tools_sft.jsonl"));
    assert_int_equal(run_cli(args, NULL), 0);
    assert_true(jl_tool_answer_correct("calc", "结果是 -3.5。", "-3.5"));
    assert_false(jl_tool_answer_correct("calc", "12+35 = 46", "47"));
    assert_true(jl_tool_answer_correct("author", "《静夜思》的作者是李白。", "李白"));
}

/* ---- the tool-call syntax as tokens (tokenizer train --tool-tokens) ---- */

static size_t count_ids(const jl_tokenizer *t, const char *text, int allow_special, char **back) {
    int32_t *ids;
    size_t n, len;
    assert_int_equal(jl_tokenizer_encode(t, text, strlen(text), allow_special, &ids, &n), JL_OK);
    assert_int_equal(jl_tokenizer_decode(t, ids, n, back, &len), JL_OK);
    free(ids);
    return n;
}

static void test_tool_call_tokens(void **s) {
    (void)s;
    const char *corpus = root_path("data/poems.jsonl"); /* Han text, digits, JSON punctuation */
    char args[2048];
    snprintf(args, sizeof args, "tokenizer train --input %s --vocab-size 400 --pattern han --tool-tokens --out %s --quiet",
             corpus, tmp_path("tt_tok.json"));
    assert_int_equal(run_cli(args, tmp_path("tt.log")), 0);
    jl_tokenizer *t, *plain;
    assert_int_equal(jl_tokenizer_load(tmp_path("tt_tok.json"), &t), JL_OK);
    assert_int_equal(jl_tokenizer_vocab_size(t), 400); /* the added tokens count in --vocab-size */
    snprintf(args, sizeof args, "tokenizer train --input %s --vocab-size 400 --pattern han --out %s --quiet", corpus,
             tmp_path("tt_plain.json"));
    assert_int_equal(run_cli(args, tmp_path("tt.log")), 0);
    assert_int_equal(jl_tokenizer_load(tmp_path("tt_plain.json"), &plain), JL_OK);
    static const char *const calls[] = {
        "<tool_call>{\"name\":\"calculator\",\"arguments\":{\"expression\":\"12×(3+4)\"}}</tool_call>",
        "<tool_call>{\"name\":\"search\",\"arguments\":{\"query\":\"静夜思\"}}</tool_call>",
    };
    /* 5 pieces of syntax around the argument, which is what the plain tokenizer makes of it */
    static const char *const argv_[] = {"12×(3+4)", "静夜思"};
    for (int k = 0; k < 2; k++) {
        char *back, *back2;
        size_t n = count_ids(t, calls[k], 0, &back), n_plain = count_ids(plain, calls[k], 0, &back2);
        assert_string_equal(back, calls[k]); /* the text is still the JSON, whatever allow_special */
        assert_string_equal(back2, calls[k]);
        free(back2);
        size_t n_arg = count_ids(t, argv_[k], 0, &back2);
        free(back2);
        print_message("tool call %d: %zu tokens with --tool-tokens, %zu without\n", k, n, n_plain);
        assert_int_equal(n, 5 + n_arg);
        assert_true(n_plain > 3 * n);
        free(back);
    }
    /* a call text the model writes is parsed as before */
    jl_tool_calls c;
    assert_int_equal(jl_tool_calls_parse(calls[0], &c), JL_OK);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.calls[0].arguments, "{\"expression\":\"12×(3+4)\"}");
    jl_tool_calls_free(&c);
    /* the same tokens survive a save and a load (checkpoints carry the tokenizer as JSON) */
    char *json;
    jl_tokenizer *again;
    assert_int_equal(jl_tokenizer_to_json(t, &json), JL_OK);
    assert_int_equal(jl_tokenizer_from_json(json, strlen(json), &again), JL_OK);
    char *b1, *b2;
    assert_int_equal(count_ids(again, calls[1], 1, &b1), count_ids(t, calls[1], 1, &b2));
    free(b1);
    free(b2);
    free(json);
    /* refused: a token twice, an empty one, one the tokenizer already has */
    jl_tokenizer *bad = NULL;
    const char *twice[] = {"<x>", "<x>"}, *empty[] = {""}, *end[] = {"<|end|>"}, *again_tok[] = {"<tool_call>"};
    assert_int_equal(jl_tokenizer_add_tokens(plain, twice, 2, &bad), JL_ERR_ARG);
    assert_int_equal(jl_tokenizer_add_tokens(plain, empty, 1, &bad), JL_ERR_ARG);
    assert_int_equal(jl_tokenizer_add_tokens(plain, end, 1, &bad), JL_ERR_ARG);
    assert_int_equal(jl_tokenizer_add_tokens(t, again_tok, 1, &bad), JL_ERR_ARG);
    assert_null(bad);
    snprintf(args, sizeof args, "tokenizer train --input %s --vocab-size 270 --tool-tokens --out %s --quiet", corpus,
             tmp_path("tt_small.json"));
    assert_int_equal(run_cli(args, tmp_path("tt.log")), 2);
    jl_tokenizer_free(again);
    jl_tokenizer_free(plain);
    jl_tokenizer_free(t);
}

/* ---- the agent loop on a tiny model trained to call the calculator ---- */

#define AGENT_CTX 256

static void make_base(const char *path) {
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, 1, 262, AGENT_CTX); /* one layer of width 64: the call's fixed text */
    assert_int_equal(jl_config_finish(&c), JL_OK);
    jl_model *m;
    assert_int_equal(jl_model_new(&c, &m), JL_OK);
    jl_model_init(m, 42);
    save_with_byte_tokenizer(m, path);
}

static void arith_question(jl_rng *r, char *expr, size_t cap) {
    snprintf(expr, cap, "%d%c%d", 1 + (int)jl_rng_below(r, 40), "+-*"[jl_rng_below(r, 3)], 1 + (int)jl_rng_below(r, 40));
}

/* Conversations: user "E" → call calculator(E) → its result → the result as the answer. */
static void write_calc_chats(const char *path, int n) {
    jl_rng r;
    jl_rng_seed(&r, 5);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < n; i++) {
        char e[32], res[64];
        arith_question(&r, e, sizeof e);
        jl_calc_eval(e, res, sizeof res);
        fprintf(f, "{\"tools\":[{\"name\":\"calculator\",\"description\":\"exact arithmetic\"}],\"messages\":["
                   "{\"role\":\"user\",\"content\":\"%s\"},{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":"
                   "[{\"function\":{\"name\":\"calculator\",\"arguments\":{\"expression\":\"%s\"}}}]},"
                   "{\"role\":\"tool\",\"content\":\"%s\"},{\"role\":\"assistant\",\"content\":\"%s\"}]}\n",
                e, e, res, res);
    }
    fclose(f);
}

typedef struct {
    int valid, exact_args, right_answers, errors;
} agent_score;

/* Chats n held-out questions through `chat --tools calculator` (greedy) and reads the [tool] lines and answers. */
static agent_score run_agent(const char *model, int n, const char *extra) {
    jl_rng r;
    jl_rng_seed(&r, 99);
    char questions[8192] = "", expr[64][24];
    for (int i = 0; i < n; i++) {
        arith_question(&r, expr[i], sizeof expr[i]);
        strcat(questions, expr[i]);
        strcat(questions, "\n/reset\n"); /* each question on its own */
    }
    const char *qpath = tmp_path("agent_q.txt"), *out = tmp_path("agent_out.txt"), *err = tmp_path("agent_err.txt");
    write_file(qpath, questions);
    const char *bin = getenv("JL_BIN");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s chat --model %s --tools calculator --temperature 0 --max-tokens 90 %s < %s > %s 2> %s",
             bin ? bin : "build/jielong", model, extra, qpath, out, err);
    int rc = system(cmd); /* exit 2 when a rambling answer fills the context: counted below, not an error here */
    assert_true(rc != -1 && WIFEXITED(rc) && (WEXITSTATUS(rc) == 0 || WEXITSTATUS(rc) == 2));
    agent_score sc = {0};
    FILE *f = fopen(err, "r");
    assert_non_null(f);
    char line[1024];
    int q = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "[tool] ", 7)) continue;
        if (!strncmp(line, "[tool] calculator {\"expression\":\"", 33)) {
            sc.valid++;
            char want[160];
            snprintf(want, sizeof want, "[tool] calculator {\"expression\":\"%.20s\"}", q < n ? expr[q % 64] : "");
            sc.exact_args += strncmp(line, want, strlen(want)) == 0;
        }
        sc.errors += strstr(line, "(error)") != NULL;
        q++;
    }
    fclose(f);
    f = fopen(out, "r");
    assert_non_null(f);
    for (int i = 0; i < n && fgets(line, sizeof line, f); i++) {
        char want[64];
        jl_calc_eval(expr[i], want, sizeof want);
        const char *end = strstr(line, "</tool_call>");
        sc.right_answers += end && jl_tool_answer_correct("calc", end + 12, want);
    }
    fclose(f);
    return sc;
}

static void serve_tool_flow(const char *model);

static void test_agent_learns_to_call_the_calculator(void **s) {
    (void)s;
    const char *base = tmp_path("agent_base.safetensors"), *data = tmp_path("agent_calc.jsonl");
    make_base(base);
    write_calc_chats(data, 400);
    const int n = 12;
    agent_score before = run_agent(base, n, "");
    char args[2048];
    snprintf(args, sizeof args, "sft --model %s --data %s --out %s --steps %d --batch-size 8 --seq-len %d --lr 3e-3 "
                                "--warmup 10 --val-fraction 0.02 --eval-every 1000 --threads 2 --seed 5",
             base, data, tmp_path("agent_sft"), 100, AGENT_CTX);
    assert_int_equal(run_cli(args, tmp_path("agent_sft.log")), 0);
    char model[1100];
    snprintf(model, sizeof model, "%s/model.safetensors", tmp_path("agent_sft"));
    agent_score after = run_agent(model, n, "");
    printf("calculator calls on %d held-out questions: base %d valid; trained %d valid, %d with the exact expression, "
           "%d right answers, %d error results\n", n, before.valid, after.valid, after.exact_args, after.right_answers,
           after.errors);
    assert_int_equal(before.valid, 0);
    assert_true(after.valid >= n * 3 / 4); /* it learnt to call the tool, well-formed */
    /* with no tool steps allowed, the calls are not run and the loop says so */
    const char *bin = getenv("JL_BIN");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "echo 3+4 | %s chat --model %s --tools calculator --temperature 0 --max-tokens 90 "
                              "--max-tool-steps 0 2>&1 | grep -c 'stopped after 0 tool steps'", bin ? bin : "build/jielong", model);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    int count = 0;
    assert_int_equal(fscanf(p, "%d", &count), 1);
    pclose(p);
    assert_int_equal(count, 1);
    serve_tool_flow(model);
}

/* `jielong serve --model M --port 0 --threads 1 EXTRA` in the background; its port. */
static int start_server(const char *model, const char *extra, pid_t *pid) {
    char args[2048];
    snprintf(args, sizeof args, "--threads 1 %s", extra);
    return start_serve_cli(model, args, 60, pid);
}

static void stop_server(pid_t pid) {
    int status;
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
}

/* The OpenAI client's tool-calling flow (tests/serve/tools_client.cjs) on the model trained above. */
static void serve_tool_flow(const char *model) {
    pid_t a, b;
    int port = start_server(model, "", &a), port2 = start_server(model, "--tools calculator --max-tool-steps 1", &b);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd %s && PORT=%d PORT2=%d JL_NPM=%s timeout 120 node tests/serve/tools_client.cjs > %s 2>&1",
             root_path(""), port, port2, root_path("build/npm-serve"), tmp_path("node_tools.log"));
    int rc = system(cmd);
    stop_server(a);
    stop_server(b);
    char line[4096];
    FILE *f = fopen(tmp_path("node_tools.log"), "r");
    while (f && fgets(line, sizeof line, f)) print_message("tools_client.cjs: %s", line);
    if (f) fclose(f);
    assert_int_equal(rc, 0);
}

/* The exported Jinja template (jl_chat_template_jinja) on OpenAI-shaped messages — `tools`, an assistant's
 * `tool_calls` (arguments as a JSON string and as an object), a `tool` result — renders the same text as the C
 * renderer on the turns SFT data and the server make of them (jl_tools_specs_json, jl_tool_calls_json_text). */
static void test_exported_template_renders_tool_turns(void **state) {
    (void)state;
    static const char tools[] = "[{\"type\":\"function\",\"function\":{\"name\":\"calculator\",\"description\":\"计算\","
                                "\"parameters\":{\"type\":\"object\",\"properties\":{\"expression\":{\"type\":\"string\"}}}}}]";
    static const char calls[] = "[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"calculator\","
                                "\"arguments\":\"{\\\"expression\\\":\\\"1+2\\\"}\"}},{\"type\":\"function\",\"function\":"
                                "{\"name\":\"calculator\",\"arguments\":{\"expression\":\"3*4\",\"n\":[1,2.5,true,null]}}}]";
    for (int with_system = 0; with_system < 2; with_system++) {
        char ctx[2048];
        snprintf(ctx, sizeof ctx,
                 "{\"bos_token\":\"<|bos|>\",\"add_generation_prompt\":false,\"tools\":%s,\"messages\":[%s"
                 "{\"role\":\"user\",\"content\":\"1+2?\"},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":%s},"
                 "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"3\"},{\"role\":\"assistant\",\"content\":\"是 3。\"}]}",
                 tools, with_system ? "{\"role\":\"system\",\"content\":\"你是接龙。\"}," : "", calls);
        const char *tmpl = jl_chat_template_jinja();
        char *jinja = NULL;
        assert_int_equal(jl_template_render(tmpl, strlen(tmpl), ctx, &jinja, NULL), JL_OK);
        /* the C side */
        json_object *jt = json_tokener_parse(tools), *jc = json_tokener_parse(calls);
        char *specs, *call_text;
        size_t bad;
        const char *why;
        assert_int_equal(jl_tools_specs_json(jt, &specs, &bad, &why), JL_OK);
        assert_int_equal(jl_tool_calls_json_text(jc, "", &call_text, &bad, &why), JL_OK);
        char *block = jl_tools_block(specs), sys[1024];
        snprintf(sys, sizeof sys, "%s%s", with_system ? "你是接龙。\n\n" : "", block);
        const jl_turn turns[] = {{JL_ROLE_SYSTEM, sys}, {JL_ROLE_USER, "1+2?"}, {JL_ROLE_ASSISTANT, call_text},
                                 {JL_ROLE_TOOL, "3"}, {JL_ROLE_ASSISTANT, "是 3。"}};
        jl_conversation conv = {turns, 5};
        jl_segments seg = {0};
        assert_int_equal(jl_chat_render(&conv, &seg), JL_OK);
        char *c_text = jl_segments_text(&seg);
        assert_string_equal(jinja, c_text);
        assert_non_null(strstr(jinja, "\"arguments\":{\"expression\":\"3*4\",\"n\":[1,2.5,true,null]}}</tool_call>"));
        free(c_text);
        jl_segments_free(&seg);
        free(block);
        free(specs);
        free(call_text);
        json_object_put(jt);
        json_object_put(jc);
        free(jinja);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calculator_table),
        cmocka_unit_test(test_tool_call_parser),
        cmocka_unit_test(test_toolbox_errors),
        cmocka_unit_test(test_tool_turns_rendered_and_masked),
        cmocka_unit_test(test_exported_template_renders_tool_turns),
        cmocka_unit_test(test_data_tools),
        cmocka_unit_test(test_tool_call_tokens),
        cmocka_unit_test(test_agent_learns_to_call_the_calculator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
