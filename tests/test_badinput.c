/* The bad-input catalogue (#16): one table of bad inputs across every parser and command, each run through the
 * CLI with its expected exit code and a fragment of its one-line message. After every case, no file that existed
 * before has changed and no temp file is left. Fixtures (a tiny model in every format, datasets, shards) are made
 * once by the group setup in $JL_TMP/fx; crafted files are derived from them byte by byte. One cmocka test per
 * case, so the summary line counts the catalogue ("ok .../test_badinput: N tests"). */
#include "testutil.h"
#include "jielong/gguf.h"
#include <dirent.h>
#include <math.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* paths here are short scratch names: a truncated one would fail its case loudly */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* ---------------------------------------------------------------- file helpers */

static char fx[1024]; /* the fixture folder */

static const char *fxp(const char *name) {
    static char bufs[8][1200];
    static int slot;
    char *b = bufs[slot++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", fx, name);
    return b;
}

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    b[n] = 0;
    *len = (size_t)n;
    return b;
}

static void spit(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static void spit_str(const char *path, const char *s) { spit(path, s, strlen(s)); }

/* dst = src with the first `from` replaced by `to` (byte strings of the given lengths). */
static void patch_bytes(const char *src, const char *dst, const void *from, size_t nf, const void *to, size_t nt) {
    size_t n;
    unsigned char *b = slurp(src, &n);
    unsigned char *hit = memmem(b, n, from, nf);
    assert_non_null(hit);
    size_t at = (size_t)(hit - b);
    unsigned char *o = malloc(n - nf + nt);
    memcpy(o, b, at);
    memcpy(o + at, to, nt);
    memcpy(o + at + nt, b + at + nf, n - at - nf);
    spit(dst, o, n - nf + nt);
    free(o);
    free(b);
}

static void patch_str(const char *src, const char *dst, const char *from, const char *to) {
    patch_bytes(src, dst, from, strlen(from), to, strlen(to));
}

/* A safetensors file with its header text edited: the first `from` becomes `to` and the length is rewritten. */
static void st_patch(const char *src, const char *dst, const char *from, const char *to) {
    size_t n;
    unsigned char *b = slurp(src, &n);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = h << 8 | b[i];
    char *hdr = strndup((const char *)b + 8, (size_t)h);
    char *hit = strstr(hdr, from);
    assert_non_null(hit);
    size_t at = (size_t)(hit - hdr), nf = strlen(from), nt = strlen(to), nh = (size_t)h - nf + nt;
    unsigned char *o = malloc(8 + nh + (n - 8 - (size_t)h));
    for (int i = 0; i < 8; i++) o[i] = (unsigned char)(nh >> (8 * i));
    memcpy(o + 8, hdr, at);
    memcpy(o + 8 + at, to, nt);
    memcpy(o + 8 + at + nt, hdr + at + nf, (size_t)h - at - nf);
    memcpy(o + 8 + nh, b + 8 + h, n - 8 - (size_t)h);
    spit(dst, o, 8 + nh + (n - 8 - (size_t)h));
    free(o);
    free(hdr);
    free(b);
}

/* dst = src with `count` floats from the start of tensor data at byte `data_off` (after the header) set to v. */
static void st_poison(const char *src, const char *dst, size_t data_off, size_t count, float v) {
    size_t n;
    unsigned char *b = slurp(src, &n);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = h << 8 | b[i];
    for (size_t i = 0; i < count; i++) memcpy(b + 8 + h + data_off + 4 * i, &v, 4);
    spit(dst, b, n);
    free(b);
}

static void copy_cut(const char *src, const char *dst, size_t keep) {
    size_t n;
    unsigned char *b = slurp(src, &n);
    spit(dst, b, keep < n ? keep : n);
    free(b);
}

/* A minimal GGUF v3: one string key, two F32 tensors of 32 values at data offsets off0 and off1. */
static void gguf_two_tensors(const char *path, const char *name0, const char *name1, uint64_t off0, uint64_t off1) {
    unsigned char b[1024];
    size_t p = 0;
#define PUT(x, n) (memcpy(b + p, (x), (n)), p += (n))
    uint32_t u32;
    uint64_t u64;
    PUT("GGUF", 4);
    u32 = 3, PUT(&u32, 4);
    u64 = 2, PUT(&u64, 8);
    u64 = 1, PUT(&u64, 8);
    u64 = 20, PUT(&u64, 8), PUT("general.architecture", 20);
    u32 = 8, PUT(&u32, 4);
    u64 = 5, PUT(&u64, 8), PUT("llama", 5);
    const char *names[2] = {name0, name1};
    uint64_t offs[2] = {off0, off1};
    for (int t = 0; t < 2; t++) {
        u64 = strlen(names[t]), PUT(&u64, 8), PUT(names[t], strlen(names[t]));
        u32 = 1, PUT(&u32, 4);
        u64 = 32, PUT(&u64, 8);
        u32 = 0, PUT(&u32, 4);
        u64 = offs[t], PUT(&u64, 8);
    }
    while (p % 32) b[p++] = 0;
    memset(b + p, 0, 256), p += 256;
#undef PUT
    spit(path, b, p);
}

/* ---------------------------------------------------------------- snapshot: nothing that existed changes */

typedef struct {
    char path[1200];
    off_t size;
    struct timespec mtime;
    uint64_t sum;
} entry;

static entry *snap;
static int n_snap, cap_snap;
static entry *prev; /* the entries the last assert_unchanged verified: their sums need no second read */
static int n_prev, cap_prev;

/* A 64-bit hash of the file's bytes, read in blocks (the catalogue hashes its fixture folder around every case:
 * byte-wise fgetc made that a quarter of the test's time). */
static uint64_t file_sum(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    static unsigned char buf[1 << 16];
    uint64_t h = 1469598103934665603ull;
    for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0;) {
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            uint64_t w;
            memcpy(&w, buf + i, 8);
            h = (h ^ w) * 0x9E3779B97F4A7C15ull;
            h ^= h >> 29;
        }
        for (; i < n; i++) h = (h ^ buf[i]) * 1099511628211ull;
        h ^= (uint64_t)n;
    }
    fclose(f);
    return h;
}

/* Calls fn on every regular file under dir (never opening FIFOs or devices). */
static void walk(const char *dir, void (*fn)(const char *path, const struct stat *sb)) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) != 0) continue;
        if (S_ISDIR(sb.st_mode)) walk(p, fn);
        else if (S_ISREG(sb.st_mode)) fn(p, &sb);
    }
    closedir(d);
}

static void add_entry(const char *path, const struct stat *sb) {
    if (n_snap == cap_snap) {
        cap_snap = cap_snap ? 2 * cap_snap : 256;
        snap = realloc(snap, sizeof *snap * (size_t)cap_snap);
    }
    entry *e = &snap[n_snap++];
    snprintf(e->path, sizeof e->path, "%s", path);
    e->size = sb->st_size;
    e->mtime = sb->st_mtim;
    for (int i = 0; i < n_prev; i++) /* verified just now, after the previous case: the same bytes */
        if (prev[i].size == e->size && prev[i].mtime.tv_sec == e->mtime.tv_sec &&
            prev[i].mtime.tv_nsec == e->mtime.tv_nsec && !strcmp(prev[i].path, path)) {
            e->sum = prev[i].sum;
            return;
        }
    e->sum = file_sum(path);
}

static int tmp_files;
static void count_tmp(const char *path, const struct stat *sb) {
    (void)sb;
    const char *base = strrchr(path, '/');
    if (strstr(base ? base : path, ".tmp.")) {
        fprintf(stderr, "left behind: %s\n", path);
        tmp_files++;
    }
}

static void take_snapshot(void) {
    n_snap = 0;
    walk(fx, add_entry);
    n_prev = 0;
}

static void assert_unchanged(void) {
    for (int i = 0; i < n_snap; i++) {
        struct stat sb;
        const entry *e = &snap[i];
        int same = stat(e->path, &sb) == 0 && sb.st_size == e->size && sb.st_mtim.tv_sec == e->mtime.tv_sec &&
                   sb.st_mtim.tv_nsec == e->mtime.tv_nsec && file_sum(e->path) == e->sum;
        if (!same) fprintf(stderr, "changed: %s\n", e->path);
        assert_true(same);
    }
    tmp_files = 0;
    walk(fx, count_tmp);
    assert_int_equal(tmp_files, 0);
    /* all verified: the next snapshot reuses their sums (the two arrays swap roles) */
    entry *t = prev;
    int cap = cap_prev;
    prev = snap, n_prev = n_snap, cap_prev = cap_snap;
    snap = t, cap_snap = cap, n_snap = 0;
}

/* ---------------------------------------------------------------- the catalogue */

typedef struct {
    const char *name;
    const char *cmd;  /* sh command; $J is the CLI, $D the fixture folder */
    int rc;           /* expected exit code */
    const char *msg;  /* fragment of the output (stderr and stdout together) */
} bad_case;

#define G "$J generate --max-tokens 2 --prompt the --model "
#define TOK "--tokenizer $D/tok.json"
#define SFT "$J sft --model $D/m.st --steps 1 --batch-size 1 --threads 1 --out $D/o_sft --data "
#define PREFS "$J dpo --model $D/m.st --steps 1 --threads 1 --out $D/o_dpo --data "
#define GRPO "$J grpo --policy $D/m.st --steps 1 --threads 1 --reward-fn poem --out $D/o_grpo --prompts "

static const bad_case cases[] = {
    /* ---- safetensors checkpoints */
    {"st_nan_weights", G "$D/nan.st", 2, "non-finite value"},
    {"st_inf_weights", G "$D/inf.st", 2, "non-finite value"},
    {"st_huge_vocab_claim", G "$D/bigvocab.st", 2, "expected [4000000, 32]"},
    {"st_duplicate_key", G "$D/dupkey.st", 2, "twice"},
    {"st_header_past_end", G "$D/hdrlong.st", 2, "header length"},
    {"st_truncated", G "$D/cut.st", 2, "beyond the"},
    {"st_empty", G "$D/empty.st", 2, "too short"},
    {"st_header_cut_short", G "$D/hdrcut.st", 2, "cut short"},
    {"st_header_not_utf8", G "$D/notutf8.st", 2, "not UTF-8"},
    {"st_json_given", G "$D/tok.json", 2, "is a JSON text"},
    {"st_llmc_given", G "$D/g2.bin", 2, "is an llm.c model file"},
    {"st_rope_theta_inf", G "$D/ropeinf.st", 2, "rope_theta"},
    {"st_norm_eps_range", G "$D/eps.st", 2, "norm_eps"},
    {"st_n_head_divides", G "$D/nhead.st", 2, "n_head"},
    {"st_missing_tensor", G "$D/missing.st", 2, "missing tensor"},
    {"st_dtype_span", G "$D/dtype.st", 2, "span"},
    {"st_not_jielong", G "$D/noconfig.st", 2, "not a jielong checkpoint"},
    {"st_meta_not_string", G "$D/metanum.st", 2, "is not a string"},
    {"st_offsets_reversed", G "$D/offrev.st", 2, "data_offsets"},
    {"st_unknown_dtype", G "$D/dtype9.st", 2, "unknown dtype"},
    {"st_quantize_gguf", "$J quantize --model $D/q.gguf --type q8_0 --out $D/o_q.gguf", 2, "is a GGUF file"},
    {"st_export_gguf", "$J export --model $D/f.gguf --format gguf --out $D/o_e.gguf", 2, "is a GGUF file"},
    {"model_fifo", "timeout 20 " G "$D/fifo", 2, "is a FIFO"},
    {"model_folder", G "$D/hf", 2, "is a Hugging Face folder: import it first"},
    {"model_char_device", G "/dev/zero", 2, "character device"},
    {"model_absent", G "$D/absent.st", 2, "cannot open"},
    /* ---- GGUF */
    {"gguf_bad_magic", G "$D/badmagic.gguf", 2, "bad magic"},
    {"gguf_version", G "$D/version.gguf", 2, "version"},
    {"gguf_truncated", G "$D/cut.gguf", 2, "$D/cut.gguf"},
    {"gguf_shared_range", G "$D/shared.gguf", 2, "share bytes"},
    {"gguf_duplicate_name", G "$D/dupname.gguf", 2, "appears twice"},
    {"gguf_nan_scale", G "$D/nanscale.gguf", 2, "non-finite scale"},
    {"gguf_huge_counts", G "$D/counts.gguf", 2, "exceed the file size"},
    /* ---- tokenizer.json */
    {"tok_truncated", "$J tokenizer encode --tokenizer $D/tokcut.json --input $D/corpus.txt", 2, "truncated"},
    {"tok_dup_added_id", "$J tokenizer encode --tokenizer $D/tokdup.json --input $D/corpus.txt", 2,
     "is already the added token"},
    {"tok_huge_id", "$J tokenizer encode --tokenizer $D/tokhuge.json --input $D/corpus.txt", 2, "token ids are missing: the largest is 100000000"},
    {"tok_not_json", "$J tokenizer encode --tokenizer $D/corpus.txt --input $D/corpus.txt", 2, "invalid JSON"},
    {"tok_normalizer", "$J tokenizer encode --tokenizer $D/toknorm.json --input $D/corpus.txt", 2, "normalizer"},
    {"tok_model_type", "$J tokenizer encode --tokenizer $D/toktype.json --input $D/corpus.txt", 2, "not supported"},
    {"tok_fifo", "timeout 20 $J tokenizer encode --tokenizer $D/fifo --input $D/corpus.txt", 2, "is a FIFO"},
    {"tok_input_fifo", "timeout 20 $J tokenizer encode " TOK " --input $D/fifo", 2, "is a FIFO"},
    {"tok_encode_stdin_zero_streams", "timeout 60 $J tokenizer encode " TOK " < /dev/zero | head -c 12", 0,
     "0 0 0 0 0 0"},
    {"tok_encode_full_stdout", "$J tokenizer encode " TOK " --input $D/corpus.txt > /dev/full", 2, "write failed"},
    {"tok_decode_not_id", "echo 12 x 3 | $J tokenizer decode " TOK, 2, "expected a token id"},
    {"tok_decode_huge_id", "echo 99999999999 | $J tokenizer decode " TOK, 2, "expected a token id"},
    {"tok_decode_out_of_vocab", "echo 5000 | $J tokenizer decode " TOK, 2, "5000"},
    {"tok_train_vocab_small", "$J tokenizer train --input $D/corpus.txt --vocab-size 100 --output $D/o_t.json", 2,
     "out of range"},
    {"tok_train_absent_input", "$J tokenizer train --input $D/absent.txt --vocab-size 300 --output $D/o_t.json", 2,
     "cannot open"},
    {"tok_train_fifo_input", "timeout 20 $J tokenizer train --input $D/fifo --vocab-size 300 --output $D/o_t.json", 2,
     "is a FIFO"},
    {"tok_import_bad_tiktoken", "$J tokenizer import --tiktoken $D/bad.tiktoken --pattern cl100k --output $D/o_i.json",
     2, "bad.tiktoken"},
    {"tok_import_gpt2_huge_id", /* found by fuzz_vocab_import: a 4 GB table for a 25-byte file */
     "$J tokenizer import --encoder $D/hugeid_encoder.json --merges $D/empty.st --output $D/o_i.json", 2,
     "token ids are missing: the largest is 535358879"},
    {"tok_import_encoder_not_object",
     "$J tokenizer import --encoder $D/corpus.txt --merges $D/corpus.txt --output $D/o_i.json", 2, "corpus.txt"},
    /* ---- prepare */
    {"prep_train_split_empty", "$J prepare " TOK " --input $D/two.txt --output $D/o_p --val-fraction 0.999", 2,
     "train split is empty"},
    {"prep_val_split_empty", "$J prepare " TOK " --input $D/one.txt --output $D/o_p", 2, "validation split is empty"},
    {"prep_jsonl_bad_line", "$J prepare " TOK " --input $D/badline.jsonl --output $D/o_p", 2, "badline.jsonl:2"},
    {"prep_jsonl_no_text", "$J prepare " TOK " --input $D/notext.jsonl --output $D/o_p", 2, "\"text\""},
    {"prep_empty_corpus", "$J prepare " TOK " --input $D/blank.txt --output $D/o_p", 2, "empty corpus"},
    {"prep_input_folder", "$J prepare " TOK " --input $D/hf --output $D/o_p", 2, "is a folder"},
    {"prep_bom_text_skipped", "$J prepare " TOK " --input $D/bom.txt --output $D/o_pb --val-fraction 0 && "
                              "$J prepare " TOK " --input $D/nobom.txt --output $D/o_pn --val-fraction 0 && "
                              "cmp $D/o_pb/train_000.bin $D/o_pn/train_000.bin && echo same tokens",
     0, "same tokens"},
    {"prep_bad_val_fraction", "$J prepare " TOK " --input $D/two.txt --output $D/o_p --val-fraction 1.5", 2,
     "out of range"},
    /* ---- JSONL datasets */
    {"sft_raw_nul", SFT "$D/nul.jsonl", 2, "raw NUL byte at column"},
    {"sft_encoded_surrogate", SFT "$D/surrogate.jsonl", 2, "invalid UTF-8"},
    {"sft_overlong_utf8", SFT "$D/overlong.jsonl", 2, "invalid UTF-8 at column"},
    {"sft_truncated_json", SFT "$D/sftcut.jsonl", 2, "truncated JSON"},
    {"sft_not_object", SFT "$D/array.jsonl", 2, "not a JSON object"},
    {"sft_trailing_text", SFT "$D/trailing.jsonl", 2, "trailing.jsonl:1: not valid JSON at column 17"},
    {"sft_empty_file", SFT "$D/blank.txt", 2, "no records"},
    {"sft_bad_role", SFT "$D/role.jsonl", 2, "role"},
    {"sft_data_fifo", "timeout 20 " SFT "$D/fifo", 2, "is a FIFO"},
    {"sft_bom_ok", "$J sft --model $D/m.st --steps 1 --batch-size 1 --threads 1 --out $D/o_sftbom --val-fraction 0 "
                   "--data $D/sftbom.jsonl", 0, "wrote"},
    {"sft_lora_rank_too_big", SFT "$D/sft.jsonl --method lora --lora-rank 64", 2, "exceeds the width"},
    {"sft_tools_not_list", SFT "$D/toolspec.jsonl", 2, "tools"},
    {"index_build_bad_jsonl", "$J index build --input $D/badline.jsonl --out $D/o_ix.db --quiet", 2, "badline.jsonl:2"},
    {"index_overlap_too_big", "$J index build --input $D/two.txt --out $D/o_ix.db --chunk-chars 20 --overlap 30", 2,
     "overlap"},
    {"index_query_not_an_index", "$J index query $D/two.txt hello", 2, "two.txt: open: file is not a database"},
    {"prefs_missing_rejected", PREFS "$D/norej.jsonl", 2, "rejected"},
    {"prefs_raw_nul", PREFS "$D/prefnul.jsonl", 2, "raw NUL byte"},
    {"rl_unknown_form", GRPO "$D/rlform.jsonl", 2, "is not a poem form"},
    {"rl_empty_prompt", GRPO "$D/rlempty.jsonl", 2, "prompt: empty"},
    {"rl_form_not_string", GRPO "$D/rlformnum.jsonl", 2, "form: must be a string"},
    /* ---- token shards */
    {"shard_bad_magic", "$J pretrain --data $D/badmagic.bin --out $D/o_pt --steps 1", 2, "not a token shard"},
    {"shard_out_of_vocab", "$J pretrain --data $D/oov.bin --out $D/o_pt --steps 1 " TOK, 2, "outside the vocabulary"},
    {"shard_truncated", "$J pretrain --data $D/cut.bin --out $D/o_pt --steps 1", 2, "cut.bin"},
    {"pretrain_data_fifo", "timeout 20 $J pretrain --data $D/fifo --out $D/o_pt --steps 1", 2, "not a regular file"},
    {"pretrain_data_absent", "$J pretrain --data $D/absent.txt --out $D/o_pt --steps 1", 2, "absent.txt"},
    /* ---- Hugging Face import */
    {"hf_no_config", "$J import --from $D/hf_noconf --out $D/o_imp.st", 2, "config.json"},
    {"hf_config_cut_short", "$J import --from $D/hf_cut --out $D/o_imp.st", 2, "cut short"},
    {"hf_n_embd_overflow", "$J import --from $D/hf_gpt2big --out $D/o_imp.st", 2, "dim"},
    {"hf_head_dim_overflow", "$J import --from $D/hf_headdim --out $D/o_imp.st", 2, "head_dim"},
    {"hf_tensor_in_two_shards", "$J import --from $D/hf_twice --out $D/o_imp.st", 2, "is also in"},
    {"hf_nan_weights", "$J import --from $D/hf_nan --out $D/o_imp.st", 2, "non-finite value"},
    {"hf_rope_theta_inf", "$J import --from $D/hf_rope --out $D/o_imp.st", 2, "rope_theta"},
    {"hf_model_type", "$J import --from $D/hf_type --out $D/o_imp.st", 2, "not supported"},
    {"hf_no_weights", "$J import --from $D/hf_noweights --out $D/o_imp.st", 2, "no *.safetensors"},
    {"hf_huge_vocab_claim", "$J import --from $D/hf_vocab --out $D/o_imp.st", 2, "expected [4000000"},
    /* ---- llm.c import */
    {"llmc_bad_magic", "$J import --from $D/llmc_magic.bin --out $D/o_imp.st", 2, "bad magic"},
    {"llmc_dim_overflow", "$J import --from $D/llmc_dim.bin --out $D/o_imp.st", 2, "header"},
    {"llmc_truncated", "$J import --from $D/llmc_cut.bin --out $D/o_imp.st", 2, "bytes, expected"},
    {"llmc_huge_vocab_claim", "$J import --from $D/llmc_vocab.bin --out $D/o_imp.st", 2, "bytes, expected"},
    /* ---- flags and commands */
    {"gen_temperature_huge", G "$D/m.st --temperature 1e308", 2, "out of range"},
    {"gen_top_p_zero", G "$D/m.st --top-p 0", 2, "top-p"},
    {"gen_min_p_one", G "$D/m.st --min-p 1", 2, "min-p"},
    {"gen_max_tokens_zero", "$J generate --model $D/m.st --prompt the --max-tokens 0", 2, "out of range"},
    {"gen_stdout_full", G "$D/m.st > /dev/full", 1, "cannot write to standard output"},
    {"eval_stdout_full", "$J eval --model $D/m.st --data $D/corpus.txt > /dev/full", 1, "standard output"},
    {"eval_data_fifo", "timeout 20 $J eval --model $D/m.st --data $D/fifo", 2, "not a regular file"},
    {"chat_rejected_command", "printf '/bogus\\n' | $J chat --model $D/m.st --max-tokens 2", 2,
     "1 command(s) were rejected"},
    {"chat_bad_temp", "printf '/temp abc\\n' | $J chat --model $D/m.st --max-tokens 2", 2, "/temp needs a number"},
    {"unknown_flag", "$J generate --model $D/m.st --prompt a --bogus", 2, "bogus"},
    {"missing_required", "$J generate --prompt a", 2, "--model"},
    {"unknown_command", "$J frobnicate", 2, "unknown command"},
    {"quantize_bad_type", "$J quantize --model $D/m.st --type q3 --out $D/o_q.gguf", 2, "q3"},
    {"export_bad_format", "$J export --model $D/m.st --format xyz --out $D/o_x", 2, "xyz"},
    {"prune_sparsity_one", "$J prune --model $D/m.st --out $D/o_pr.st --sparsity 1", 2, "must be in [0, 1)"},
    {"plot_bad_metrics", "$J plot --metrics $D/corpus.txt --out $D/o_plot.svg", 2, "corpus.txt:1"},
    {"plot_metrics_fifo", "timeout 20 $J plot --metrics $D/fifo --out $D/o_plot.svg", 2, "FIFO"},
    {"import_to_existing_folder", "$J import --from $D/hf --out $D/hf", 2, "hf"},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* SFT conversations whose assistant turn ("messages[1]") carries bad tool_calls: one row makes both the fixture
 * file (make_data_cases) and its catalogue case (an sft run on it, refused naming the field). */
static const struct {
    const char *name, *file, *calls, *msg;
} tool_cases[] = {
    {"sft_tool_args_not_json", "toolargs.jsonl",
     "[{\"type\":\"function\",\"function\":{\"name\":\"calculator\",\"arguments\":\"{not json\"}}]",
     "messages[1].tool_calls[0].function.arguments: not a JSON object"},
    {"sft_tool_args_array", "toolarr.jsonl",
     "[{\"type\":\"function\",\"function\":{\"name\":\"calculator\",\"arguments\":\"[1]\"}}]",
     "messages[1].tool_calls[0].function.arguments: not a JSON object"},
    {"sft_tool_call_no_name", "toolname.jsonl", "[{\"type\":\"function\",\"function\":{\"arguments\":{}}}]",
     "messages[1].tool_calls[0].function.name: missing"},
    {"sft_tool_calls_empty", "toolnone.jsonl", "[]", "messages[1].tool_calls: must be a non-empty array"},
};
#define N_TOOL_CASES ((int)(sizeof tool_cases / sizeof tool_cases[0]))

static void run_case(void **state) {
    const bad_case *c = *state;
    take_snapshot();
    const char *log = tmp_path("case.log");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "( %s ) > %s 2>&1", c->cmd, log);
    int rc = system(cmd);
    rc = rc == -1 ? -1 : (rc >> 8) & 0xff;
    size_t n;
    unsigned char *out = slurp(log, &n);
    /* the fragment may name the fixture folder as $D */
    char want[2048];
    const char *d = strstr(c->msg, "$D");
    if (d) snprintf(want, sizeof want, "%.*s%s%s", (int)(d - c->msg), c->msg, fx, d + 2);
    else snprintf(want, sizeof want, "%s", c->msg);
    int found = strstr((const char *)out, want) != NULL;
    if (rc != c->rc || !found)
        fprintf(stderr, "case %s: rc %d (expected %d), output:\n%s\n(wanted \"%s\")\n", c->name, rc, c->rc, out, want);
    /* an error is one line "jielong CMD: ..." (progress lines may precede it), never a sanitizer report */
    int errors = 0;
    for (size_t i = 0; i < n; i++) errors += (i == 0 || out[i - 1] == '\n') && !strncmp((char *)out + i, "jielong ", 8);
    const int sanitizer = strstr((char *)out, "Sanitizer") || strstr((char *)out, "runtime error:");
    if ((c->rc != 0 && errors > 2) || sanitizer) fprintf(stderr, "case %s: %d error lines\n%s\n", c->name, errors, out);
    assert_false(sanitizer);
    if (c->rc != 0) assert_true(errors <= 2); /* chat: the rejected command, then the summary */
    free(out);
    assert_int_equal(rc, c->rc);
    assert_true(found);
    assert_unchanged();
}

/* ---------------------------------------------------------------- fixtures */

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[8400];
    snprintf(full, sizeof full, "cd %s && ( %s ) > %s/../setup.log 2>&1", fx, cmd, fx);
    int rc = system(full);
    if (rc != 0) {
        fprintf(stderr, "fixture command failed: %s\n", cmd);
        char cat[1400];
        snprintf(cat, sizeof cat, "tail -20 %s/../setup.log >&2", fx);
        if (system(cat)) {}
    }
    assert_int_equal(rc, 0);
}

static void make_models(void) {
    FILE *f = fopen(fxp("corpus.txt"), "w");
    static const char *const w[] = {"the cat", "a dog", "sees", "likes", "the moon", "an apple", "river", "ball"};
    jl_rng r;
    jl_rng_seed(&r, 5);
    for (int i = 0; i < 240; i++) {
        for (int k = 0; k < 6; k++) fprintf(f, "%s%s", k ? " " : "", w[jl_rng_below(&r, 8)]);
        fprintf(f, i % 8 == 7 ? ".\n\n" : ".\n");
    }
    fclose(f);
    /* JL_FIXTURES_ONLY=small (fuzz/seeds.sh): a width-8 model, a tenth of the bytes, so that each fuzz execution
     * on a model file goes through the same loader code ~10x faster; the catalogue itself runs width 32 */
    const char *only = getenv("JL_FIXTURES_ONLY");
    const char *width = only && !strcmp(only, "small") ? "--dim 8 --n-head 1" : "--dim 32";
    const char *tiny = "--depth 1 --context 32 --steps 2 --batch-size 2 --eval-every 0 --save-every 0 --threads 1";
    sh("$J tokenizer train --input corpus.txt --vocab-size 300 --output tok.json --quiet");
    sh("$J pretrain --data corpus.txt --tokenizer tok.json --out run %s %s && cp run/model.safetensors m.st", tiny,
       width);
    sh("$J pretrain --arch gpt2 --data corpus.txt --tokenizer tok.json --out run2 %s %s && "
       "cp run2/model.safetensors g2.st", tiny, width);
    sh("rm -rf run run2");
    sh("$J quantize --model m.st --type q8_0 --out q.gguf && $J export --model m.st --format gguf --out f.gguf");
    sh("$J export --model m.st --format safetensors --out hf && $J export --model g2.st --format llmc --out g2.bin");
    sh("$J prepare --tokenizer tok.json --input corpus.txt --output shards --val-fraction 0.2");
    sh("mkfifo fifo");
}

static void make_safetensors_cases(void) {
    st_poison(fxp("m.st"), fxp("nan.st"), 0, 64, NAN);
    st_poison(fxp("m.st"), fxp("inf.st"), 128, 1, INFINITY);
    st_patch(fxp("m.st"), fxp("bigvocab.st"), "\\\"vocab_size\\\":300", "\\\"vocab_size\\\":4000000");
    st_patch(fxp("m.st"), fxp("ropeinf.st"), "\\\"rope_theta\\\":10000.0", "\\\"rope_theta\\\":1e39");
    st_patch(fxp("m.st"), fxp("eps.st"), "\\\"norm_eps\\\":", "\\\"norm_eps\\\":2,\\\"x\\\":");
    st_patch(fxp("m.st"), fxp("nhead.st"), "\\\"n_head\\\":1", "\\\"n_head\\\":3");
    st_patch(fxp("m.st"), fxp("missing.st"), "\"model.norm.weight\"", "\"model.norm.weigh\"");
    st_patch(fxp("m.st"), fxp("noconfig.st"), "\"jielong.config\"", "\"jielong.konfig\"");
    st_patch(fxp("m.st"), fxp("metanum.st"), "\"format\":\"pt\"", "\"format\":7");
    /* the first tensor named twice: json-c would keep only the second */
    size_t n;
    unsigned char *b = slurp(fxp("m.st"), &n);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = h << 8 | b[i];
    char *hdr = strndup((const char *)b + 8, (size_t)h);
    char *norm = strstr(hdr, "\"model.norm.weight\":{");
    assert_non_null(norm);
    char *end = strchr(norm, '}');
    char dup[600];
    snprintf(dup, sizeof dup, "{%.*s,\"__metadata__\"", (int)(end + 1 - norm), norm);
    st_patch(fxp("m.st"), fxp("dupkey.st"), "{\"__metadata__\"", dup);
    free(hdr);
    st_patch(fxp("m.st"), fxp("dtype.st"), "\"model.norm.weight\":{\"dtype\":\"F32\"",
             "\"model.norm.weight\":{\"dtype\":\"F16\"");
    st_patch(fxp("m.st"), fxp("dtype9.st"), "\"model.norm.weight\":{\"dtype\":\"F32\"",
             "\"model.norm.weight\":{\"dtype\":\"Q9\"");
    /* header length beyond the file; header cut inside the JSON; bytes that are not UTF-8 */
    unsigned char *c = malloc(n);
    memcpy(c, b, n);
    uint64_t big = (uint64_t)n * 2;
    for (int i = 0; i < 8; i++) c[i] = (unsigned char)(big >> (8 * i));
    spit(fxp("hdrlong.st"), c, n);
    memcpy(c, b, n);
    for (int i = 0; i < 8; i++) c[i] = (unsigned char)((h / 2) >> (8 * i));
    spit(fxp("hdrcut.st"), c, 8 + h / 2);
    memcpy(c, b, n);
    c[8 + 40] = 0xFF;
    spit(fxp("notutf8.st"), c, n);
    free(c);
    free(b);
    copy_cut(fxp("m.st"), fxp("cut.st"), n - 100);
    spit(fxp("empty.st"), "", 0);
    /* data_offsets [end, begin] for the norm */
    b = slurp(fxp("m.st"), &n);
    h = 0;
    for (int i = 7; i >= 0; i--) h = h << 8 | b[i];
    hdr = strndup((const char *)b + 8, (size_t)h);
    norm = strstr(hdr, "\"model.norm.weight\":{");
    char *offs = strstr(norm, "\"data_offsets\":[");
    long lo, hi;
    assert_int_equal(sscanf(offs, "\"data_offsets\":[%ld,%ld]", &lo, &hi), 2);
    char from[128], to[128];
    snprintf(from, sizeof from, "\"data_offsets\":[%ld,%ld]", lo, hi);
    snprintf(to, sizeof to, "\"data_offsets\":[%ld,%ld]", hi, lo);
    st_patch(fxp("m.st"), fxp("offrev.st"), from, to);
    free(hdr);
    free(b);
}

static void make_gguf_cases(void) {
    patch_bytes(fxp("f.gguf"), fxp("badmagic.gguf"), "GGUF", 4, "GGUX", 4);
    patch_bytes(fxp("f.gguf"), fxp("version.gguf"), "GGUF\x03\0\0\0", 8, "GGUF\x09\0\0\0", 8);
    size_t n;
    unsigned char *b = slurp(fxp("f.gguf"), &n);
    spit(fxp("cut.gguf"), b, n / 2);
    uint64_t huge = 1ull << 40;
    memcpy(b + 8, &huge, 8); /* tensor count */
    spit(fxp("counts.gguf"), b, n);
    free(b);
    gguf_two_tensors(fxp("shared.gguf"), "a.weight", "b.weight", 0, 0);
    gguf_two_tensors(fxp("dupname.gguf"), "a.weight", "a.weight", 0, 128);
    /* the first q8_0 block's fp16 scale set to NaN (0x7E00): found by the bytes of the tensor's data */
    jl_gguf *g;
    assert_int_equal(jl_gguf_open(fxp("q.gguf"), &g), JL_OK);
    const jl_gguf_tensor *t = jl_gguf_find_tensor(g, "blk.0.attn_q.weight");
    assert_non_null(t);
    unsigned char head[64];
    memcpy(head, t->data, sizeof head);
    unsigned char bad[64];
    memcpy(bad, head, sizeof bad);
    bad[0] = 0x00, bad[1] = 0x7E;
    jl_gguf_close(g);
    patch_bytes(fxp("q.gguf"), fxp("nanscale.gguf"), head, sizeof head, bad, sizeof bad);
}

static void make_tokenizer_cases(void) {
    size_t n;
    unsigned char *b = slurp(fxp("tok.json"), &n);
    spit(fxp("tokcut.json"), b, n / 2);
    free(b);
    patch_str(fxp("tok.json"), fxp("tokdup.json"), "{\"id\":257,", "{\"id\":256,");
    patch_str(fxp("tok.json"), fxp("tokhuge.json"), "{\"id\":261,", "{\"id\":100000000,");
    patch_str(fxp("tok.json"), fxp("toknorm.json"), "\"normalizer\":null", "\"normalizer\":{\"type\":\"Bogus\"}");
    patch_str(fxp("tok.json"), fxp("toktype.json"), "\"type\":\"BPE\"", "\"type\":\"WordPiece\"");
    spit_str(fxp("bad.tiktoken"), "IQ== 0\n!!!notbase64 1\n");
    spit_str(fxp("hugeid_encoder.json"), "{\"a\":0,\"b\":535358879}");
}

static void make_data_cases(void) {
    spit_str(fxp("two.txt"), "first document here\n\nsecond document here\n");
    spit_str(fxp("one.txt"), "just one document\n");
    spit_str(fxp("blank.txt"), "\n\n  \n");
    spit_str(fxp("bom.txt"), "\xEF\xBB\xBFthe cat sees the moon\n\nanother one\n");
    spit_str(fxp("nobom.txt"), "the cat sees the moon\n\nanother one\n");
    spit_str(fxp("badline.jsonl"), "{\"text\":\"ok\"}\n{\"text\":\n");
    spit_str(fxp("notext.jsonl"), "{\"body\":\"ok\"}\n");
    const char *conv = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"the cat\"}]}\n";
    char buf[1024];
    spit_str(fxp("sft.jsonl"), conv);
    snprintf(buf, sizeof buf, "\xEF\xBB\xBF%s%s", conv, conv);
    spit_str(fxp("sftbom.jsonl"), buf);
    spit(fxp("nul.jsonl"), "{\"messages\":[{\"role\":\"user\",\"content\":\"h\0i\"}]}\n", 48);
    spit_str(fxp("surrogate.jsonl"),
             "{\"messages\":[{\"role\":\"user\",\"content\":\"\xED\xA0\x80\"},{\"role\":\"assistant\",\"content\":\"a\"}]}\n");
    spit_str(fxp("overlong.jsonl"),
             "{\"messages\":[{\"role\":\"user\",\"content\":\"\xC0\xAF\"},{\"role\":\"assistant\",\"content\":\"a\"}]}\n");
    spit_str(fxp("sftcut.jsonl"), "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}\n");
    spit_str(fxp("array.jsonl"), "[1,2]\n");
    spit_str(fxp("trailing.jsonl"), "{\"messages\":[]} x\n");
    spit_str(fxp("role.jsonl"), "{\"messages\":[{\"role\":\"wizard\",\"content\":\"hi\"}]}\n");
    for (int i = 0; i < N_TOOL_CASES; i++) {
        snprintf(buf, sizeof buf, "{\"messages\":[{\"role\":\"user\",\"content\":\"2+2\"},{\"role\":\"assistant\","
                 "\"tool_calls\":%s}]}\n", tool_cases[i].calls);
        spit_str(fxp(tool_cases[i].file), buf);
    }
    spit_str(fxp("toolspec.jsonl"), "{\"tools\":{\"name\":\"calculator\"},\"messages\":[{\"role\":\"user\",\"content\":"
             "\"hi\"},{\"role\":\"assistant\",\"content\":\"a\"}]}\n");
    spit_str(fxp("norej.jsonl"), "{\"prompt\":\"a\",\"chosen\":\"b\"}\n");
    spit(fxp("prefnul.jsonl"), "{\"prompt\":\"a\",\"chosen\":\"b\",\"rejected\":\"\0\"}\n", 42);
    spit_str(fxp("rlform.jsonl"), "{\"prompt\":\"write\",\"form\":\"sonnet\"}\n");
    spit_str(fxp("rlempty.jsonl"), "{\"prompt\":\"  \"}\n");
    spit_str(fxp("rlformnum.jsonl"), "{\"prompt\":\"write\",\"form\":5}\n");
    /* shards: the prepared one with its magic broken, a token out of the vocabulary, cut short */
    size_t n;
    unsigned char *b = slurp(fxp("shards/train_000.bin"), &n);
    unsigned char *c = malloc(n);
    memcpy(c, b, n);
    c[0] ^= 0xFF;
    spit(fxp("badmagic.bin"), c, n);
    memcpy(c, b, n);
    c[1024] = 0xFF, c[1025] = 0xFF; /* first token = 65535 (uint16) or more */
    spit(fxp("oov.bin"), c, n);
    spit(fxp("cut.bin"), b, 1024 + (n - 1024) / 2 + 1);
    free(c);
    free(b);
}

static void hf_folder(const char *name, const char *config) {
    sh("rm -rf %s && mkdir %s && cp hf/*.safetensors %s/", name, name, name);
    if (config) {
        char p[1200];
        snprintf(p, sizeof p, "%s/config.json", name);
        spit_str(fxp(p), config);
    }
}

static void make_hf_cases(void) {
    size_t n;
    unsigned char *cfg = slurp(fxp("hf/config.json"), &n);
    hf_folder("hf_noconf", NULL);
    char *cut = strndup((const char *)cfg, n / 2);
    hf_folder("hf_cut", cut);
    free(cut);
    hf_folder("hf_gpt2big", "{\"model_type\":\"gpt2\",\"vocab_size\":300,\"n_positions\":32,\"n_embd\":1073741824,"
                            "\"n_layer\":1,\"n_head\":1}");
    hf_folder("hf_headdim", "{\"model_type\":\"llama\",\"vocab_size\":300,\"hidden_size\":32,\"intermediate_size\":64,"
                            "\"num_hidden_layers\":1,\"num_attention_heads\":4,\"max_position_embeddings\":32,"
                            "\"head_dim\":1073741824}");
    hf_folder("hf_type", "{\"model_type\":\"bert\"}");
    sh("rm -rf hf_noweights && mkdir hf_noweights && cp hf/config.json hf_noweights/");
    /* the same tensors in a second shard */
    sh("rm -rf hf_twice && mkdir hf_twice && cp hf/config.json hf_twice/ && cp hf/model.safetensors "
       "hf_twice/model-00001.safetensors && cp hf/model.safetensors hf_twice/model-00002.safetensors");
    sh("rm -rf hf_nan && cp -r hf hf_nan");
    st_poison(fxp("hf/model.safetensors"), fxp("hf_nan/model.safetensors"), 0, 16, NAN);
    sh("rm -rf hf_rope hf_vocab && cp -r hf hf_rope && cp -r hf hf_vocab");
    char *t = strstr((char *)cfg, "\"rope_theta\"");
    assert_non_null(t);
    patch_str(fxp("hf/config.json"), fxp("hf_rope/config.json"), "\"rope_theta\":", "\"rope_theta\":1e39,\"x\":");
    patch_str(fxp("hf/config.json"), fxp("hf_vocab/config.json"), "\"vocab_size\":300", "\"vocab_size\":4000000");
    free(cfg);
}

static void make_llmc_cases(void) {
    size_t n;
    unsigned char *b = slurp(fxp("g2.bin"), &n);
    int32_t *h = (int32_t *)b;
    unsigned char *c = malloc(n);
    memcpy(c, b, n), ((int32_t *)c)[0] = 12345;
    spit(fxp("llmc_magic.bin"), c, n);
    memcpy(c, b, n), ((int32_t *)c)[6] = 1 << 30;
    spit(fxp("llmc_dim.bin"), c, n);
    memcpy(c, b, n), ((int32_t *)c)[3] = 4000000, ((int32_t *)c)[7] = 4000000;
    spit(fxp("llmc_vocab.bin"), c, n);
    spit(fxp("llmc_cut.bin"), b, n - 64);
    (void)h;
    free(c);
    free(b);
}

static int setup_fixtures(void **state) {
    (void)state;
    snprintf(fx, sizeof fx, "%s", tmp_path("fx"));
    mkdir(fx, 0755);
    setenv("D", fx, 1);
    const char *bin = getenv("JL_BIN");
    setenv("J", bin ? bin : "build/jielong", 1);
    make_models();
    make_safetensors_cases();
    make_gguf_cases();
    make_tokenizer_cases();
    make_data_cases();
    make_hf_cases();
    make_llmc_cases();
    return 0;
}

int main(void) {
    if (getenv("JL_FIXTURES_ONLY")) return setup_fixtures(NULL); /* fuzz/seeds.sh: the crafted files as seeds */
    enum { N_ALL = N_CASES + N_TOOL_CASES };
    static bad_case all[N_ALL];
    static char tool_cmds[N_TOOL_CASES][256];
    memcpy(all, cases, sizeof cases);
    for (int i = 0; i < N_TOOL_CASES; i++) {
        snprintf(tool_cmds[i], sizeof tool_cmds[i], SFT "$D/%s", tool_cases[i].file);
        all[N_CASES + i] = (bad_case){tool_cases[i].name, tool_cmds[i], 2, tool_cases[i].msg};
    }
    struct CMUnitTest tests[N_ALL];
    for (int i = 0; i < N_ALL; i++) tests[i] = (struct CMUnitTest){all[i].name, run_case, NULL, NULL, &all[i]};
    fprintf(stderr, "bad-input catalogue: %d cases\n", N_ALL);
    return cmocka_run_group_tests_name("bad-input catalogue", tests, setup_fixtures, NULL);
}
