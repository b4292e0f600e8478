/* jielong quantize: a checkpoint → a block-quantised GGUF (q8_0 / q4_0, ggml layouts) that llama.cpp runs and
 * that the jielong engine maps (src/infer/quant.h kernels), with the weight error of every quantised tensor. */
#include "cli/args.h"
#include "infer/quant.h"
#include "jielong/gguf.h"
#include "model/model.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* Relative RMS error of quantising one (rows, cols) weight; -1 when cols is not whole blocks. */
static double weight_error(jl_qtype t, const float *w, int64_t rows, int64_t cols) {
    if (cols % JL_QK != 0) return -1;
    size_t rb = jl_qtype_row_bytes(t, cols);
    void *q = malloc(rb);
    float *back = malloc(sizeof(float) * (size_t)cols);
    double err = 0, ref = 0;
    for (int64_t r = 0; q && back && r < rows; r++) {
        jl_quantize_matrix(t, w + r * cols, q, 1, cols);
        jl_dequantize_matrix(t, q, back, 1, cols);
        for (int64_t c = 0; c < cols; c++) {
            double d = back[c] - w[r * cols + c];
            err += d * d;
            ref += (double)w[r * cols + c] * w[r * cols + c];
        }
    }
    free(q);
    free(back);
    return ref > 0 ? sqrt(err / ref) : 0;
}

int cmd_quantize(int argc, char **argv) {
    char *in = NULL, *out = NULL, *type = "q8_0";
    int quiet = 0;
    const cli_opt opts[] = {
        {"model", OPT_STR, &in, "jielong checkpoint (.safetensors, fp32)", NO_RANGE, 1},
        {"type", OPT_STR, &type, "q8_0 | q4_0 (32-value blocks with an fp16 scale)", NO_RANGE, 0},
        {"out", OPT_STR, &out, "quantised model (.gguf)", NO_RANGE, 1},
        {"quiet", OPT_BOOL, &quiet, "no report", NO_RANGE, 0},
    };
    int rc = cli_parse("quantize", "Quantise a model's linear weights to q8_0 or q4_0 blocks (GGUF file).", opts,
                       CLI_NOPTS(opts), argc, argv, 1);
    if (rc != CLI_PARSED) return rc == CLI_HELP_SHOWN ? 0 : 2;
    jl_qtype qt;
    if (jl_qtype_parse(type, &qt) != JL_OK || qt == JL_QTYPE_F32) {
        fprintf(stderr, "jielong quantize: --type %s: expected q8_0 or q4_0\n", type);
        return 2;
    }
    jl_checkpoint ck;
    jl_status st = jl_checkpoint_load(in, &ck);
    if (st != JL_OK) return cli_report("quantize", st);
    st = jl_export_gguf(&ck, out, qt == JL_QTYPE_Q8_0 ? JL_GGML_Q8_0 : JL_GGML_Q4_0);
    char note[512];
    if (st == JL_OK && jl_gguf_export_note(&ck, note, sizeof note)) fprintf(stderr, "jielong quantize: warning: %s\n", note);
    if (st == JL_OK && !quiet) {
        const jl_model *m = ck.model;
        double worst = 0, sum = 0;
        int n = 0;
        for (int i = 0; i < m->n_tensors; i++) {
            const jl_tensor_info *t = &m->tensors[i];
            if (t->ndim != 2) continue;
            double e = weight_error(qt, m->params + t->offset, t->rows_saved, t->shape[1]);
            if (e < 0) continue;
            worst = e > worst ? e : worst;
            sum += e;
            n++;
        }
        struct stat sb;
        double mb = stat(out, &sb) == 0 ? (double)sb.st_size / 1e6 : 0;
        fprintf(stderr, "%s → %s (%s, %.1f MB; fp32 weights %.1f MB): %d tensors quantised, relative RMS weight "
                        "error mean %.4f, worst %.4f\n", in, out, type, mb, m->n_params * 4.0 / 1e6, n,
                n ? sum / n : 0.0, worst);
    }
    jl_checkpoint_free(&ck);
    return cli_report("quantize", st);
}
