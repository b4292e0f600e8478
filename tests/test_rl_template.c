/* The preference, RL and distillation stages in a model's own chat template (a ChatML-style one, as an imported
 * model carries): pairs and prompts are encoded by sft's renderer — the sequence equals the template's rendering
 * token by token, the response (and the trained targets) cover exactly the answer and its <|im_end|>; rollouts stop
 * at the template's end-of-turn marker (here ten byte tokens) and equal the rendering of their own answer; reward,
 * dpo, grpo and ppo through the CLI learn in that format and keep the template in what they write; distill
 * --synthesize answers in it and a distilled student keeps it. */
#include "rl_testutil.h"
#include "io/fileio.h"
#include "jielong/chat_format.h"
#include "jielong/rlhf.h"
#include "jielong/template.h"
#include "train/rl_pairs.h"

/* A ChatML-style template, written for this test (the one of test_template.c). */
static const char chatml[] =
    "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content | trim + '<|im_end|>\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
#define END "<|im_end|>"

static jl_chat_format *chatml_format(void) {
    jl_chat_format *f;
    assert_int_equal(jl_chat_format_new(chatml, NULL, END, &f), JL_OK);
    return f;
}

/* The template rendered directly by the interpreter: user "p" (and the answer when not NULL). */
static char *render_direct(const char *prompt, const char *answer) {
    char ctx[512];
    if (answer)
        snprintf(ctx, sizeof ctx, "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"},{\"role\":\"assistant\","
                 "\"content\":\"%s\"}],\"add_generation_prompt\":false}", prompt, answer);
    else
        snprintf(ctx, sizeof ctx, "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],\"add_generation_prompt\":true}",
                 prompt);
    char *out = NULL;
    assert_int_equal(jl_template_render(chatml, strlen(chatml), ctx, &out, NULL), JL_OK);
    return out;
}

static void encode_text(const jl_tokenizer *tok, const char *text, size_t len, int32_t **ids, size_t *n) {
    assert_int_equal(jl_tokenizer_encode(tok, text, len, 1, ids, n), JL_OK);
}

/* s is prompt + answer in the template: ids = encode(rendering up to the end of the answer's <|im_end|>), the
 * response starts where the generation prompt's tokens end, and the batch's targets are exactly the response. */
static void check_rendered(const jl_tokenizer *tok, const rl_seq *s, const char *prompt, const char *answer) {
    char *full = render_direct(prompt, answer), *gen = render_direct(prompt, NULL);
    size_t glen = strlen(gen), span = strlen(answer) + strlen(END);
    assert_memory_equal(full, gen, glen);
    assert_memory_equal(full + glen + strlen(answer), END, strlen(END));
    assert_string_equal(full + glen + span, "\n"); /* what the template writes after the span is not the answer */
    int32_t *want, *pids;
    size_t nw, np;
    encode_text(tok, full, glen + span, &want, &nw);
    encode_text(tok, gen, glen, &pids, &np);
    assert_int_equal(s->len, (int)nw);
    assert_memory_equal(s->ids, want, nw * sizeof *want);
    assert_int_equal(s->resp_start, (int)np);
    char *back;
    size_t blen;
    assert_int_equal(jl_tokenizer_decode(tok, s->ids + s->resp_start, (size_t)(s->len - s->resp_start), &back, &blen),
                     JL_OK);
    assert_int_equal(blen, span);
    assert_memory_equal(back, full + glen, span);
    rl_batch b;
    assert_int_equal(rl_batch_new(1, s->len, &b), JL_OK);
    rl_batch_fill(&b, &s, 1);
    for (int t = 0; t < b.T; t++) assert_int_equal(b.targets[t] >= 0, t + 1 >= s->resp_start && t + 1 < s->len);
    rl_batch_free(&b);
    free(back);
    free(want);
    free(pids);
    free(full);
    free(gen);
}

/* ---------------------------------------------------------------- reward / dpo: pairs */

static void test_pairs_encode_in_template(void **state) {
    (void)state;
    jl_tokenizer *tok = byte_tok();
    jl_chat_format *fmt = chatml_format();
    const char *prefs = tmp_path("prefs.jsonl");
    write_toy_prefs(prefs, 12, 4);
    jl_pref_set *set;
    jl_jsonl_options jo = {0, 0};
    jl_jsonl_stats js;
    assert_int_equal(jl_prefs_load(prefs, &jo, &set, &js), JL_OK);
    rl_pairs p;
    assert_int_equal(rl_pairs_encode(tok, fmt, set, 96, 0.25, 1, &p, NULL), JL_OK);
    assert_int_equal(p.n, 12);
    for (size_t i = 0; i < p.n; i++) {
        jl_pref_pair pr = jl_prefs_get(set, i);
        check_rendered(tok, &p.seqs[2 * i], pr.prompt, pr.chosen);
        check_rendered(tok, &p.seqs[2 * i + 1], pr.prompt, pr.rejected);
    }
    /* the prompt alone is the generation prompt, as a rollout starts from it */
    rl_seq s;
    assert_int_equal(rl_encode(tok, fmt, "p", NULL, 96, "prompt", &s), JL_OK);
    char *gen = render_direct("p", NULL);
    int32_t *ids;
    size_t n;
    encode_text(tok, gen, strlen(gen), &ids, &n);
    assert_int_equal(s.len, (int)n);
    assert_int_equal(s.resp_start, s.len);
    assert_memory_equal(s.ids, ids, n * sizeof *ids);
    free(ids);
    free(gen);
    rl_seq_free(&s);
    /* an answer that is only the end-of-turn marker (a sampled empty answer) */
    assert_int_equal(rl_encode_answer(tok, fmt, "p", "", 96, "empty", &s), JL_OK);
    check_rendered(tok, &s, "p", "");
    rl_seq_free(&s);
    rl_pairs_free(&p);
    jl_prefs_free(set);
    jl_chat_format_free(fmt);
    jl_tokenizer_free(tok);
}

/* ---------------------------------------------------------------- a policy that answers in the template */

/* A tiny model (context 96) taught to answer "p" in the template with 4 letters of {a,b,x} and <|im_end|>. */
static jl_model *chatml_policy(const jl_tokenizer *tok, const jl_chat_format *fmt) {
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, 1, 262, 96);
    c.dim = 32;
    c.n_head = 2;
    c.n_kv_head = 2;
    c.hidden_dim = 64;
    jl_model *m;
    assert_int_equal(jl_model_new(&c, &m), JL_OK);
    jl_model_init(m, 7);
    jl_trainer_opts to = {.B = 16, .T = 72, .accum = 1};
    jl_optim_defaults(&to.opt, 1e-2f, 120);
    to.opt.warmup_steps = 0;
    jl_trainer *t;
    assert_int_equal(jl_trainer_new(m, &to, &t), JL_OK);
    toy_ctx ctx = {tok, fmt, {0}};
    jl_rng_seed(&ctx.rng, 3);
    jl_step_stats ss;
    for (int i = 0; i < 120; i++) assert_int_equal(jl_trainer_step(t, toy_batch, &ctx, &ss), JL_OK);
    jl_trainer_free(t);
    return m;
}

static void save_with_template(jl_model *m, const jl_tokenizer *tok, const char *path) {
    jl_checkpoint ck = {.model = m, .chat_template = (char *)chatml, .eos_token = (char *)END};
    assert_int_equal(jl_tokenizer_to_json(tok, &ck.tokenizer_json), JL_OK);
    assert_int_equal(jl_checkpoint_save(path, &ck), JL_OK);
    free(ck.tokenizer_json);
}

static void assert_keeps_template(const char *path) {
    jl_checkpoint ck;
    assert_int_equal(jl_checkpoint_load(path, &ck), JL_OK);
    if (!ck.chat_template) fail_msg("%s: no chat template kept", path);
    assert_string_equal(ck.chat_template, chatml);
    assert_string_equal(ck.eos_token, END);
    jl_checkpoint_free(&ck);
}

static jl_tokenizer *g_tok;
static jl_chat_format *g_fmt;
static jl_model *g_policy;
static char g_base[1024];

static int setup(void **state) {
    (void)state;
    g_tok = byte_tok();
    g_fmt = chatml_format();
    g_policy = chatml_policy(g_tok, g_fmt);
    snprintf(g_base, sizeof g_base, "%s", tmp_path("chatml_sft.safetensors"));
    save_with_template(g_policy, g_tok, g_base);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    jl_model_free(g_policy);
    jl_chat_format_free(g_fmt);
    jl_tokenizer_free(g_tok);
    return 0;
}

/* ---------------------------------------------------------------- grpo / ppo: rollouts */

static void test_rollout_stops_at_template_end(void **state) {
    (void)state;
    rl_seq prompt;
    assert_int_equal(rl_encode(g_tok, g_fmt, "p", NULL, 96, "prompt", &prompt), JL_OK);
    const rl_seq *rows[3] = {&prompt, &prompt, &prompt};
    rl_seq out[3];
    uint64_t rng = 11;
    assert_int_equal(rl_rollout(g_policy, NULL, g_tok, g_fmt, rows, 3, 40, 96, 0.7f, &rng, -1, out), JL_OK);
    int32_t *end_ids;
    size_t n_end;
    encode_text(g_tok, END, strlen(END), &end_ids, &n_end);
    assert_true(n_end > 1); /* the byte tokenizer spells it: a stop of several tokens */
    for (int r = 0; r < 3; r++) {
        char *answer;
        assert_int_equal(rl_answer_text(g_tok, g_fmt, &out[r], &answer), JL_OK);
        print_message("rollout %d: '%s' in %d tokens (40 allowed)\n", r, answer, out[r].len - out[r].resp_start);
        /* stopped at the template's marker, long before max_new, with the marker kept as the last tokens */
        assert_true(out[r].len - out[r].resp_start < 40);
        assert_memory_equal(out[r].ids + out[r].len - n_end, end_ids, n_end * sizeof *end_ids);
        assert_null(strstr(answer, "<|im"));
        assert_true(strlen(answer) >= 1);
        /* the rollout is the template's rendering of its own answer, token by token, and so is its mask */
        check_rendered(g_tok, &out[r], "p", answer);
        rl_seq again;
        assert_int_equal(rl_encode_answer(g_tok, g_fmt, "p", answer, 96, "again", &again), JL_OK);
        assert_int_equal(again.len, out[r].len);
        assert_int_equal(again.resp_start, out[r].resp_start);
        assert_memory_equal(again.ids, out[r].ids, (size_t)again.len * sizeof *again.ids);
        rl_seq_free(&again);
        free(answer);
        rl_seq_free(&out[r]);
    }
    free(end_ids);
    rl_seq_free(&prompt);
}

/* ---------------------------------------------------------------- the four stages through the CLI */

static void test_stages_cli_in_template(void **state) {
    (void)state;
    const char *prefs = tmp_path("prefs.jsonl"), *prompts = tmp_path("prompts.jsonl");
    write_toy_prefs(prefs, 120, 9);
    write_prompts(prompts, 4);
    char args[4096], path[1200], out[1100];
    double v[64];
    /* reward: learns 'a' over 'b' in the template; the folder's model keeps it, and scoring renders with it */
    snprintf(out, sizeof out, "%s", tmp_path("rm"));
    snprintf(args, sizeof args, "reward --model %s --data %s --out %s --steps 40 --lr 3e-3 --batch-size 8 "
             "--eval-fraction 0.2 --eval-every 40 --threads 2", g_base, prefs, out);
    assert_int_equal(run_cli(args, tmp_path("reward.log")), 0);
    snprintf(path, sizeof path, "%s/metrics.jsonl", out);
    int n = read_metric(path, "eval_accuracy", v, 8);
    print_message("reward in the template: held-out accuracy %.3f -> %.3f\n", v[0], v[n - 1]);
    assert_true(v[n - 1] >= 0.85);
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    assert_keeps_template(path);
    jl_reward_model *rm;
    assert_int_equal(jl_reward_model_load(out, &rm), JL_OK);
    float ra, rb;
    assert_int_equal(jl_reward_model_score(rm, "p", "xxba", &ra), JL_OK);
    assert_int_equal(jl_reward_model_score(rm, "p", "xxbb", &rb), JL_OK);
    assert_true(ra > rb);
    jl_reward_model_free(rm);
    /* dpo: the held-out accuracy rises from the reference's 0; the result keeps the template */
    snprintf(out, sizeof out, "%s", tmp_path("dpo"));
    snprintf(args, sizeof args, "dpo --model %s --data %s --out %s --steps 30 --lr 3e-3 --beta 0.5 --batch-size 8 "
             "--eval-fraction 0.2 --eval-every 30 --threads 2", g_base, prefs, out);
    assert_int_equal(run_cli(args, tmp_path("dpo.log")), 0);
    snprintf(path, sizeof path, "%s/metrics.jsonl", out);
    n = read_metric(path, "eval_accuracy", v, 8);
    print_message("dpo in the template: held-out accuracy %.3f -> %.3f\n", v[0], v[n - 1]);
    assert_true(v[0] < 0.5 && v[n - 1] >= 0.85);
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    assert_keeps_template(path);
    /* grpo: answers in the template (about 4 letters + <|im_end|>'s 10 tokens), more 'x' after training */
    snprintf(out, sizeof out, "%s", tmp_path("grpo"));
    int steps = 24;
    snprintf(args, sizeof args, "grpo --policy %s --prompts %s --reward-fn x_count --out %s --steps %d --lr 3e-3 "
             "--batch-size 4 --group 8 --max-new 30 --kl 0.01 --threads 2", g_base, prompts, out, steps);
    assert_int_equal(run_cli(args, tmp_path("grpo.log")), 0);
    snprintf(path, sizeof path, "%s/metrics.jsonl", out);
    assert_int_equal(read_metric(path, "reward", v, 64), steps);
    double first = mean_of(v, 0, 4), last = mean_of(v, steps - 4, steps);
    double len[64];
    assert_int_equal(read_metric(path, "answer_len", len, 64), steps);
    print_message("grpo in the template: reward %.3f -> %.3f, answer length %.1f -> %.1f tokens (max 30)\n", first,
                  last, len[0], len[steps - 1]);
    assert_true(last > first + 0.15);
    assert_true(len[0] < 20); /* stopped at the marker, not at --max-new */
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    assert_keeps_template(path);
    /* ppo: runs in the template and keeps it */
    snprintf(out, sizeof out, "%s", tmp_path("ppo"));
    snprintf(args, sizeof args, "ppo --policy %s --prompts %s --reward-fn x_count --out %s --steps 3 --lr 3e-3 "
             "--batch-size 2 --group 4 --max-new 30 --threads 2", g_base, prompts, out);
    assert_int_equal(run_cli(args, tmp_path("ppo.log")), 0);
    snprintf(path, sizeof path, "%s/metrics.jsonl", out);
    assert_int_equal(read_metric(path, "answer_len", len, 64), 3);
    assert_true(len[0] < 20);
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    assert_keeps_template(path);
}

/* ---------------------------------------------------------------- distill */

static void test_distill_in_template(void **state) {
    (void)state;
    const char *prompts = tmp_path("dprompts.jsonl"), *synth = tmp_path("synth.jsonl");
    write_prompts(prompts, 3);
    char args[4096], path[1200];
    snprintf(args, sizeof args, "distill --teacher %s --synthesize 0 --prompts %s --out-data %s --max-new-tokens 30",
             g_base, prompts, synth);
    assert_int_equal(run_cli(args, tmp_path("synth.log")), 0);
    jl_sft_set *set;
    jl_jsonl_options opt = {0};
    jl_jsonl_stats js;
    assert_int_equal(jl_sft_load(synth, &opt, &set, &js), JL_OK);
    assert_int_equal(jl_sft_count(set), 3);
    for (size_t i = 0; i < 3; i++) {
        jl_conversation c = jl_sft_get(set, i);
        const char *a = c.turns[1].content;
        print_message("synthesized answer %zu: '%s'\n", i, a);
        /* greedy: the teacher's answer in its template, ended by <|im_end|> (not written, not cut at 30 tokens) */
        assert_true(strlen(a) >= 1 && strlen(a) <= 8);
        for (const char *q = a; *q; q++) assert_non_null(strchr("abx", *q));
    }
    jl_sft_free(set);
    /* the distilled student (fresh, the teacher's vocabulary) keeps the teacher's template */
    const char *text = tmp_path("text.txt"), *out = tmp_path("student");
    FILE *f = fopen(text, "w");
    for (int i = 0; i < 200; i++) fprintf(f, "<|im_start|>user\np<|im_end|>\n<|im_start|>assistant\nxab%c<|im_end|>\n", "abx"[i % 3]);
    fclose(f);
    snprintf(args, sizeof args, "distill --teacher %s --data %s --out %s --depth 1 --steps 3 --batch-size 2 "
             "--seq-len 80 --threads 2", g_base, text, out);
    assert_int_equal(run_cli(args, tmp_path("distill.log")), 0);
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    assert_keeps_template(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pairs_encode_in_template),
        cmocka_unit_test(test_rollout_stops_at_template_end),
        cmocka_unit_test(test_stages_cli_in_template),
        cmocka_unit_test(test_distill_in_template),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
