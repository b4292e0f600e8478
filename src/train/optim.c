#include "train/optim.h"
#include <math.h>
#include <string.h>

void jl_optim_defaults(jl_optim_opts *o, float lr, long total_steps) {
    memset(o, 0, sizeof *o);
    o->lr = lr;
    o->min_lr_frac = 0.1f;
    o->total_steps = total_steps;
    o->warmup_steps = total_steps / 20 < 100 ? total_steps / 20 : 100;
    o->schedule = JL_SCHED_COSINE;
    o->beta1 = 0.9f;
    o->beta2 = 0.95f;
    o->eps = 1e-8f;
    o->weight_decay = 0.1f;
    o->grad_clip = 1.0f;
}

static const char *const schedule_names[] = {"cosine", "linear", "constant"};

const char *jl_schedule_name(jl_schedule s) { return schedule_names[s]; }

jl_status jl_schedule_parse(const char *name, jl_schedule *out) {
    for (int i = 0; i < 3; i++)
        if (strcmp(name, schedule_names[i]) == 0) {
            *out = (jl_schedule)i;
            return JL_OK;
        }
    return jl_fail(JL_ERR_ARG, "unknown schedule '%s' (expected cosine, linear or constant)", name);
}

float jl_lr_at(const jl_optim_opts *o, long step) {
    if (step < o->warmup_steps) return o->lr * (float)(step + 1) / (float)o->warmup_steps;
    if (o->schedule == JL_SCHED_CONSTANT || o->total_steps <= o->warmup_steps) return o->lr;
    double progress = (double)(step - o->warmup_steps) / (double)(o->total_steps - o->warmup_steps);
    if (progress > 1.0) progress = 1.0;
    double decay = o->schedule == JL_SCHED_COSINE ? 0.5 * (1.0 + cos(M_PI * progress)) : 1.0 - progress;
    double min_lr = o->lr * o->min_lr_frac;
    return (float)(min_lr + (o->lr - min_lr) * decay);
}

