/* Model and training checkpoints: safetensors with Hugging Face tensor names and layout for the arch;
 * __metadata__ holds the jielong config, the tokenizer (tokenizer.json text) and the chat template.
 * A training checkpoint adds the AdamW moments and the training state (step, RNG, data position) so that
 * --resume continues bit for bit. Written atomically. */
#ifndef JIELONG_CHECKPOINT_H
#define JIELONG_CHECKPOINT_H
#include "jielong/model.h"

typedef struct {
    jl_model *model;
    char *tokenizer_json;  /* may be NULL */
    char *chat_template;   /* the model's own Jinja chat template; NULL: jielong's built-in format */
    char *bos_token;       /* token texts that template reads as bos_token / eos_token; may be NULL */
    char *eos_token;
    float *adam_m;         /* n_params each; NULL in a model-only checkpoint */
    float *adam_v;
    char *train_state;     /* JSON object text; NULL in a model-only checkpoint */
} jl_checkpoint;

/* Writes ck (model required, the rest optional) to path, atomically. */
jl_status jl_checkpoint_save(const char *path, const jl_checkpoint *ck);
/* Reads a checkpoint written by jl_checkpoint_save; every field it lacks stays NULL. */
jl_status jl_checkpoint_load(const char *path, jl_checkpoint *ck);
/* Frees everything ck owns, including the model. */
void jl_checkpoint_free(jl_checkpoint *ck);

#endif
