/* Internal view of the transformer: parameter layout, activations, forward and backward.
 * Parameters live in one float block; every named tensor is a slice of it. A gradient or optimizer-moment
 * block has the same layout, so the same offsets address it (jl_params_at). */
#ifndef JL_MODEL_MODEL_H
#define JL_MODEL_MODEL_H
#include "jielong/adapter.h"
#include "jielong/model.h"
#include <stdint.h>

typedef struct {
    char name[96];      /* Hugging Face name for the arch ("model.layers.3.self_attn.q_proj.weight", "h.3.ln_1.bias") */
    size_t offset;      /* in floats from the start of the block */
    int ndim;
    int64_t shape[2];   /* as stored in memory: (out, in) for linear weights */
    int64_t rows_saved; /* rows written to files: vocab_size for the (padded) embedding, else shape[0] */
    int decay;          /* AdamW weight decay applies (2-D weights other than embeddings) */
    int hf_transposed;  /* stored (in, out) in Hugging Face files (GPT-2 Conv1D) */
    int layer;          /* block index, or -1 */
    int role;           /* which view pointer it backs (model.c) */
    int frozen;         /* excluded from optimizer updates (Freeze fine-tuning, adapters) */
    int unbacked;       /* no fp32 storage (jl_model_new_partial): the view is NULL, offset unused */
} jl_tensor_info;

/* Pointers to one layer's tensors (NULL where the arch has none). Linear weights are (out, in). */
typedef struct {
    float *ln1_w, *ln1_b;   /* (C) */
    float *qkv_w, *qkv_b;   /* (QKV, C), QKV = (nh + 2·nkv)·hs: llama q,k,v projections stored back to back */
    float *o_w, *o_b;       /* (C, nh·hs) */
    float *ln2_w, *ln2_b;   /* (C) */
    float *fc_w, *fc_b;     /* (FC, C): llama [gate; up] = 2H rows, gpt2 c_fc = H rows */
    float *down_w, *down_b; /* (C, H) */
} jl_layer_params;

typedef struct {
    float *wte;      /* (Vp, C) */
    float *wpe;      /* (max_seq_len, C), gpt2 only */
    float *lnf_w, *lnf_b;
    float *lm_head;  /* (Vp, C); == wte when tied */
    jl_layer_params *layers; /* n_layer */
} jl_params;

/* Where an adapter output goes: the fused outputs of one layer. The input of each is fixed:
 * QKV ← ln1 output (C), O ← attention output (C), FC ← ln2 output (C), DOWN ← MLP activation (H). */
typedef enum { JL_LORA_OUT_QKV = 0, JL_LORA_OUT_O, JL_LORA_OUT_FC, JL_LORA_OUT_DOWN, JL_LORA_OUT_COUNT } jl_lora_out;

/* What forward/backward ask of an attached adapter: the small interface the model calls, so the model does not
 * depend on the adapters' code (model/lora.h implements it; jl_model_attach_lora/prompt set it). seg_start may be
 * NULL (rows not packed). */
typedef struct {
    void (*forward)(jl_lora *lr, int layer, jl_lora_out kind, float *out, int ld, const float *in, int N);
    void (*backward)(jl_lora *lr, int layer, jl_lora_out kind, float *din, const float *dout, int ld,
                     const float *in, int N);
} jl_lora_hooks;
typedef struct {
    void (*forward)(const jl_prompt *p, float *res, int B, int T, const int32_t *seg_start);
    void (*backward)(jl_prompt *p, float *dres, int B, int T, const int32_t *seg_start);
} jl_prompt_hooks;

struct jl_model {
    jl_config cfg;
    float *params;          /* one block of n_backed floats */
    size_t n_params;        /* parameters of the architecture */
    size_t n_backed;        /* floats in params: n_params, less those of unbacked tensors */
    jl_tensor_info *tensors;
    int n_tensors;
    jl_params w;            /* views into params */
    float *rope_table;      /* (max_seq_len, hs), llama only */
    jl_lora *lora;          /* attached LoRA adapter used unmerged by forward/backward, or NULL (not owned) */
    jl_prompt *prompt;      /* attached soft prompt, or NULL (not owned) */
    const jl_lora_hooks *lora_hooks;     /* set by jl_model_attach_lora */
    const jl_prompt_hooks *prompt_hooks; /* set by jl_model_attach_prompt */
};

/* The tensors (names, shapes, as jl_model_new would lay them out) of cfg after jl_config_finish, without
 * allocating any parameter: loaders check every tensor against the file with it before allocating the model.
 * *tensors is malloc'd (n entries); *n_params the floats the model would need. */
jl_status jl_model_layout(const jl_config *cfg, jl_tensor_info **tensors, int *n, size_t *n_params);

/* JL_ERR_FORMAT naming path, the tensor and the index when any fp32 parameter is NaN or ±Inf (one vectorised
 * pass over the weights; loaders call it so that a broken file is refused, not run). */
jl_status jl_model_check_finite(const jl_model *m, const char *path);

/* An inference-only model whose tensors for which unbacked(t, ctx) is non-zero get no fp32 storage (they live
 * quantised elsewhere, e.g. jl_qweights): their views are NULL and params holds only the other tensors, packed.
 * Anything that needs every fp32 parameter (save, export, training, pruning, merging, the fp32 forward) must
 * refuse such a model: jl_model_require_params. */
jl_status jl_model_new_partial(const jl_config *cfg, int (*unbacked)(const jl_tensor_info *t, void *ctx), void *ctx,
                               jl_model **out);
/* JL_OK for a model with every parameter in fp32; else JL_ERR_ARG naming `what` and the cause. */
jl_status jl_model_require_params(const jl_model *m, const char *what);

/* Which linear weight of the forward pass 2-D tensor i is part of: *layer (-1: the lm head, which a tied
 * embedding is), *kind (0 qkv, 1 o, 2 fc, 3 down: the order of JL_LIN_* in infer/qweights.h; 0 for the head)
 * and its first row there (k and v follow q in the packed qkv, up follows gate). Returns 0 for tensors that are
 * no linear weight (norms, biases, positions, an untied embedding). */
int jl_tensor_linear(const jl_model *m, int i, int *layer, int *kind, int64_t *row0);

/* Views of any block laid out like the parameters (gradients, Adam moments). `layers` must hold n_layer. */
void jl_params_at(const jl_model *m, float *base, jl_params *view, jl_layer_params *layers);

/* Derived sizes. */
static inline int jl_head_size(const jl_config *c) { return c->dim / c->n_head; }
static inline int jl_qkv_dim(const jl_config *c) { return (c->n_head + 2 * c->n_kv_head) * jl_head_size(c); }
static inline int jl_fc_dim(const jl_config *c) { return c->arch == JL_ARCH_LLAMA ? 2 * c->hidden_dim : c->hidden_dim; }

/* Activations for batches of up to B×T tokens, in one allocation. Forward keeps what backward needs;
 * the d* buffers are backward scratch shared by all layers. */
typedef struct {
    int B, T;                     /* capacity */
    float *block;
    size_t n_floats;
    float *res;                   /* (L+1, N, C): res[l] = input of block l, res[L] = final residual */
    float *res_mid;               /* (L, N, C): after the attention branch */
    float *ln1, *ln1_mean, *ln1_rstd; /* (L, N, C), (L, N), (L, N) */
    float *qkv;                   /* (L, N, QKV), q and k already rotated */
    float *att;                   /* (L, B, nh, T, T) */
    float *atty;                  /* (L, N, nh·hs) */
    float *ln2, *ln2_mean, *ln2_rstd;
    float *fc;                    /* (L, N, FC) pre-activation */
    float *fc_act;                /* (L, N, H) */
    float *lnf, *lnf_mean, *lnf_rstd; /* (N, C), (N), (N) */
    float *logits;                /* (N, Vp); holds d logits after a forward with gradients */
    float *losses;                /* (N) */
    float *dres, *dln, *dqkv, *datt, *datty, *dfc, *dfc_act;
    /* Packed rows: segment starts (B,T) for forward and backward (jl_attention_forward_seg: each token attends
     * within its segment only, positions restart at 0 in each, a soft prompt opens each). NULL (the default):
     * one sequence per row. Not owned; the caller sets it and fills it before each forward. */
    const int32_t *seg_start;
    /* Called by the backward pass as soon as layer l's gradients are complete (l = n_layer: the final norm's and
     * the head's; then l = n_layer-1 … 0), e.g. to start their all-reduce. NULL (the default): not called. */
    void (*grads_done)(void *ctx, int layer);
    void *grads_done_ctx;
} jl_acts;

jl_status jl_acts_new(const jl_config *c, int B, int T, jl_acts *a);
void jl_acts_free(jl_acts *a);

/* Forward over tokens (B,T). With targets (B,T) (entries < 0 ignored) fills losses and returns their sum and
 * the number of counted targets. If grad_scale > 0 the logits are replaced in place by
 * d loss / d logits · grad_scale, ready for jl_model_backward. */
double jl_model_forward(jl_model *m, jl_acts *a, const int32_t *tokens, const int32_t *targets, int B, int T,
                        float grad_scale, long *n_counted);
/* Accumulates parameter gradients into the `grads` view (jl_params_at over a gradient block; NULL pointers
 * are skipped, e.g. frozen tensors) from the last forward with
 * grad_scale > 0 over the same tokens. */
void jl_model_backward(jl_model *m, jl_acts *a, const int32_t *tokens, const jl_params *grads, int B, int T);

/* Like jl_model_backward, but starting from d loss / d(final normalised hidden state) placed in a->dln (N, C)
 * by the caller (scalar reward/value heads; add dlogits·lm_head there to combine with an LM loss).
 * a->dln is consumed. */
void jl_model_backward_from_hidden(jl_model *m, jl_acts *a, const int32_t *tokens, const jl_params *grads, int B,
                                   int T);

/* FLOPs of one forward+backward over B×T tokens (matmuls and attention, the PaLM MFU convention). */
double jl_model_train_flops(const jl_config *c, int B, int T);

#endif
