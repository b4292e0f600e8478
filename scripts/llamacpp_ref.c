/* Model maker of scripts/check_llamacpp_chat.sh: a small random model with a trained BPE tokenizer.
 *   llamacpp_ref make OUT.safetensors ARCH(llama|gpt2) TIED(0|1) QKV_BIAS(0|1) CORPUS */
#include "jielong/checkpoint.h"
#include "jielong/tokenizer.h"
#include "io/fileio.h"
#include "model/model.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(const char *what) {
    fprintf(stderr, "llamacpp_ref: %s: %s\n", what, jl_last_error());
    return 1;
}

static int make(const char *out, const char *arch, int tied, int qkv_bias, const char *corpus) {
    char *text;
    size_t len;
    if (jl_read_file(corpus, &text, &len) != JL_OK) return die("corpus");
    if (len > 300000) len = 300000;
    jl_train_opts o = {.vocab_size = 600};
    const char *texts[] = {text};
    jl_tokenizer *tok;
    if (jl_tokenizer_train(texts, &len, 1, &o, &tok) != JL_OK) return die("tokenizer");
    free(text);
    jl_config c;
    jl_arch a;
    if (jl_arch_parse(arch, &a) != JL_OK) return die("arch");
    jl_config_from_depth(&c, a, 2, jl_tokenizer_vocab_size(tok), 128);
    c.n_kv_head = a == JL_ARCH_LLAMA ? 1 : 2; /* grouped-query for llama */
    c.hidden_dim = a == JL_ARCH_LLAMA ? 352 : 512;
    c.tie_embeddings = tied;
    c.qkv_bias = qkv_bias;
    jl_checkpoint ck = {0};
    if (jl_model_new(&c, &ck.model) != JL_OK) return die("model");
    jl_model_init(ck.model, 1);
    /* larger weights than the training init so the logits are spread and greedy choices are clear-cut;
     * biases get values too so that they are checked */
    for (int i = 0; i < ck.model->n_tensors; i++) {
        jl_tensor_info *t = &ck.model->tensors[i];
        float *p = ck.model->params + t->offset;
        size_t n = (size_t)t->shape[0] * (size_t)(t->ndim == 2 ? t->shape[1] : 1);
        int bias = t->ndim == 1 && strstr(t->name, "bias") != NULL;
        for (size_t j = 0; j < n; j++) p[j] = t->ndim == 2 ? 4 * p[j] : bias ? 0.05f * (float)((j * 7919) % 13) - 0.3f : p[j];
    }
    if (jl_tokenizer_to_json(tok, &ck.tokenizer_json) != JL_OK) return die("tokenizer json");
    jl_tokenizer_free(tok);
    if (jl_checkpoint_save(out, &ck) != JL_OK) return die(out);
    jl_checkpoint_free(&ck);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 7 && strcmp(argv[1], "make") == 0) return make(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]), argv[6]);
    fprintf(stderr, "usage: llamacpp_ref make OUT ARCH TIED QKV_BIAS CORPUS\n");
    return 2;
}
