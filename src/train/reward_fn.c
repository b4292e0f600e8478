/* Rewards of RL rollouts: rule-based functions by name (the poem-form checks of docs/DESIGN.md and toy rules for
 * tests) or a trained reward model. */
#include "train/rl_common.h"
#include "jielong/tools.h"
#include <stdlib.h>
#include <string.h>

typedef enum { FN_POEM, FN_X_COUNT, FN_LENGTH, FN_CONTAINS, FN_ANSWER, FN_MODEL } fn_kind;

struct jl_reward_fn {
    fn_kind kind;
    jl_reward_model *rm;
};

static const char *const fn_names[] = {"poem", "x_count", "length", "contains", "answer"};

jl_status jl_reward_fn_by_name(const char *name, jl_reward_fn **out) {
    *out = NULL;
    for (int k = 0; k < (int)(sizeof fn_names / sizeof fn_names[0]); k++)
        if (strcmp(name, fn_names[k]) == 0) {
            *out = calloc(1, sizeof **out);
            if (!*out) return jl_fail(JL_ERR_NOMEM, "out of memory");
            (*out)->kind = (fn_kind)k;
            return JL_OK;
        }
    return jl_fail(JL_ERR_ARG, "unknown reward function '%s' (known: poem, x_count, length, contains, answer)", name);
}

jl_status jl_reward_fn_from_model(jl_reward_model *rm, jl_reward_fn **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) {
        jl_reward_model_free(rm);
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    }
    (*out)->kind = FN_MODEL;
    (*out)->rm = rm;
    return JL_OK;
}

struct jl_reward_model *rl_reward_fn_model(jl_reward_fn *fn) { return fn->rm; }

static int utf8_chars(const char *s) {
    int n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

jl_status jl_reward_fn_score(jl_reward_fn *fn, const jl_rl_set *set, size_t i, const char *answer, float *reward) {
    switch (fn->kind) {
    case FN_POEM: {
        const char *form_name = jl_rl_field(set, i, "form");
        jl_poem_form form = form_name ? jl_poem_form_parse(form_name) : JL_FORM_NONE;
        if (form == JL_FORM_NONE)
            return jl_fail(JL_ERR_FORMAT, "prompt %zu: reward 'poem' needs a \"form\" field naming a poem form "
                           "(wujue, qijue, wulv, qilv)", i + 1);
        *reward = jl_poem_reward(answer, form);
        return JL_OK;
    }
    case FN_X_COUNT: {
        int x = 0, n = 0;
        for (const char *p = answer; *p; p++) {
            x += *p == 'x';
            n += ((unsigned char)*p & 0xC0) != 0x80;
        }
        *reward = n ? (float)x / (float)n : 0.0f;
        return JL_OK;
    }
    case FN_LENGTH: *reward = (float)utf8_chars(answer); return JL_OK;
    case FN_CONTAINS: {
        const char *expected = jl_rl_field(set, i, "expected");
        if (!expected) return jl_fail(JL_ERR_FORMAT, "prompt %zu: reward 'contains' needs an \"expected\" field", i + 1);
        *reward = strstr(answer, expected) ? 1.0f : 0.0f;
        return JL_OK;
    }
    case FN_ANSWER: { /* a verifiable answer: the last number for "calc" records, else the expected text */
        const char *expected = jl_rl_field(set, i, "expected"), *task = jl_rl_field(set, i, "task");
        if (!expected) return jl_fail(JL_ERR_FORMAT, "prompt %zu: reward 'answer' needs an \"expected\" field", i + 1);
        *reward = jl_tool_answer_correct(task ? task : "calc", answer, expected) ? 1.0f : 0.0f;
        return JL_OK;
    }
    case FN_MODEL: return rl_reward_model_score_answer(fn->rm, jl_rl_prompt(set, i), answer, reward);
    }
    return jl_fail(JL_ERR_ARG, "bad reward function");
}

void jl_reward_fn_free(jl_reward_fn *fn) {
    if (!fn) return;
    jl_reward_model_free(fn->rm);
    free(fn);
}

uint64_t rl_reward_fn_identity(jl_reward_fn *fn) {
    return fn->rm ? rl_reward_model_fingerprint(fn->rm) : (uint64_t)fn->kind + 1;
}
