#include "cli/export_format.h"
#include "cli/args.h"
#include "jielong/convert.h"
#include "jielong/gguf.h"
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int bad(const char *msg, const char *a, const char *b) {
    fprintf(stderr, "jielong export: ");
    fprintf(stderr, msg, a, b);
    fputc('\n', stderr);
    return 2;
}

int export_format(const jl_checkpoint *ck, const char *format, const char *type, const char *out, int quiet) {
    jl_status st;
    if (strcmp(format, "gguf") == 0) {
        jl_ggml_type t;
        if (jl_ggml_type_parse(type ? type : "f32", &t) != JL_OK) return cli_report("export", JL_ERR_ARG);
        st = jl_export_gguf(ck, out, t);
        char note[512];
        if (st == JL_OK && jl_gguf_export_note(ck, note, sizeof note)) fprintf(stderr, "jielong export: warning: %s\n", note);
    } else if (strcmp(format, "safetensors") == 0) {
        jl_dtype dt = JL_DT_F32;
        if (type && strcmp(type, "f16") == 0) dt = JL_DT_F16;
        else if (type && strcmp(type, "bf16") == 0) dt = JL_DT_BF16;
        else if (type && strcmp(type, "f32") != 0)
            return bad("--type %s: safetensors export takes f32, f16 or bf16%s", type, "");
        st = jl_export_hf(ck, out, dt);
    } else if (strcmp(format, "llmc") == 0) {
        if (type && strcmp(type, "f32") != 0) return bad("--type %s: llm.c export is f32 only%s", type, "");
        st = jl_export_llmc(ck->model, out);
    } else {
        return bad("--format %s: expected gguf, safetensors or llmc%s", format, "");
    }
    if (st == JL_OK && !quiet) {
        struct stat sb;
        char path[4096];
        snprintf(path, sizeof path, strcmp(format, "safetensors") == 0 ? "%s/model.safetensors" : "%s", out);
        double mb = stat(path, &sb) == 0 ? (double)sb.st_size / 1e6 : 0;
        fprintf(stderr, "wrote %s (%s, %s, %.1f MB)\n", out, format, type ? type : "f32", mb);
    }
    return cli_report("export", st);
}
