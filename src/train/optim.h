/* Learning-rate schedules and the optimizer settings of the trainer (AdamW itself: core/optim.c, trainer.c). */
#ifndef JL_TRAIN_OPTIM_H
#define JL_TRAIN_OPTIM_H
#include "model/model.h"

typedef enum { JL_SCHED_COSINE = 0, JL_SCHED_LINEAR = 1, JL_SCHED_CONSTANT = 2 } jl_schedule;

typedef struct {
    float lr;            /* peak learning rate */
    float min_lr_frac;   /* final lr = lr · min_lr_frac (cosine/linear) */
    long warmup_steps;   /* linear warmup from lr/warmup to lr */
    long total_steps;    /* optimizer steps in the whole run (for decay) */
    jl_schedule schedule;
    float beta1, beta2, eps;
    float weight_decay;  /* decoupled; only tensors marked `decay` (2-D weights other than embeddings) */
    float grad_clip;     /* max global gradient norm; 0 = off */
    int zero;            /* ZeRO-1 under mpirun (jl_optim_cfg.zero) */
} jl_optim_opts;

void jl_optim_defaults(jl_optim_opts *o, float lr, long total_steps);
jl_status jl_schedule_parse(const char *name, jl_schedule *out);
const char *jl_schedule_name(jl_schedule s);
/* Learning rate for 0-based optimizer step `step`. */
float jl_lr_at(const jl_optim_opts *o, long step);
#endif
