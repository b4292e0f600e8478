/* q8_0 / q4_0 block quantisation, the repacked inference layout and the integer matrix-vector kernels (see
 * quant.h for the layouts). Three paths compute the same sums over 16 rows at a time: scalar (portable), AVX2
 * (maddubs) and AVX-512 VNNI (vpdpbusd), the automatic choice where the CPU has it. Sums of int8 products are
 * exact in every path; only the rounding of the float scaling and accumulation over blocks differs.
 * Why repack: on ggml's 34-byte blocks the four-row AVX-512 kernel spent its time on split loads, 256-bit
 * inserts and one scalar fp16 conversion + broadcast per block and row (perf annotate, bench_quant_decode),
 * reaching half the memory bandwidth on q8_0; on the repacked lines each 64-byte load is one vpdpbusd. */
#include "infer/quant.h"
#include "core/half.h"
#include "core/mem.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define JL_X86 1
#else
#define JL_X86 0
#endif

const char *jl_qtype_name(jl_qtype t) {
    return t == JL_QTYPE_Q8_0 ? "q8_0" : t == JL_QTYPE_Q4_0 ? "q4_0" : t == JL_QTYPE_F32 ? "f32" : "?";
}

jl_status jl_qtype_parse(const char *name, jl_qtype *out) {
    if (strcmp(name, "q8_0") == 0) *out = JL_QTYPE_Q8_0;
    else if (strcmp(name, "q4_0") == 0) *out = JL_QTYPE_Q4_0;
    else if (strcmp(name, "f32") == 0) *out = JL_QTYPE_F32;
    else return jl_fail(JL_ERR_ARG, "unknown quantisation type '%s' (f32, q8_0, q4_0)", name);
    return JL_OK;
}

size_t jl_qtype_row_bytes(jl_qtype t, int64_t cols) {
    if (t == JL_QTYPE_Q8_0) return (size_t)(cols / JL_QK) * sizeof(jl_block_q8_0);
    if (t == JL_QTYPE_Q4_0) return (size_t)(cols / JL_QK) * sizeof(jl_block_q4_0);
    return (size_t)cols * sizeof(float);
}

/* ---------------------------------------------------------------- quantise / dequantise (ggml's reference rounding) */

void jl_quantize_row_q8_0(const float *x, jl_block_q8_0 *y, int64_t n) {
    for (int64_t b = 0; b < n / JL_QK; b++, x += JL_QK) {
        float amax = 0.0f;
        for (int j = 0; j < JL_QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = jl_f32_to_f16(d);
        for (int j = 0; j < JL_QK; j++) y[b].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

void jl_quantize_row_q4_0(const float *x, jl_block_q4_0 *y, int64_t n) {
    for (int64_t b = 0; b < n / JL_QK; b++, x += JL_QK) {
        float amax = 0.0f, max = 0.0f; /* the value of largest magnitude, with its sign */
        for (int j = 0; j < JL_QK; j++)
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        const float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = jl_f32_to_f16(d);
        for (int j = 0; j < JL_QK / 2; j++) {
            int q0 = (int8_t)(x[j] * id + 8.5f), q1 = (int8_t)(x[j + JL_QK / 2] * id + 8.5f);
            q0 = q0 < 15 ? q0 : 15;
            q1 = q1 < 15 ? q1 : 15;
            y[b].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void jl_dequantize_row_q8_0(const jl_block_q8_0 *x, float *y, int64_t n) {
    for (int64_t b = 0; b < n / JL_QK; b++) {
        const float d = jl_f16_to_f32(x[b].d);
        for (int j = 0; j < JL_QK; j++) y[b * JL_QK + j] = x[b].qs[j] * d;
    }
}

void jl_dequantize_row_q4_0(const jl_block_q4_0 *x, float *y, int64_t n) {
    for (int64_t b = 0; b < n / JL_QK; b++) {
        const float d = jl_f16_to_f32(x[b].d);
        for (int j = 0; j < JL_QK / 2; j++) {
            y[b * JL_QK + j] = ((x[b].qs[j] & 0x0F) - 8) * d;
            y[b * JL_QK + j + JL_QK / 2] = ((x[b].qs[j] >> 4) - 8) * d;
        }
    }
}

void jl_quantize_matrix(jl_qtype t, const float *w, void *out, int64_t rows, int64_t cols) {
    const size_t rb = jl_qtype_row_bytes(t, cols);
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        void *dst = (char *)out + (size_t)r * rb;
        if (t == JL_QTYPE_Q8_0) jl_quantize_row_q8_0(w + r * cols, dst, cols);
        else if (t == JL_QTYPE_Q4_0) jl_quantize_row_q4_0(w + r * cols, dst, cols);
        else memcpy(dst, w + r * cols, rb);
    }
}

void jl_dequantize_matrix(jl_qtype t, const void *q, float *w, int64_t rows, int64_t cols) {
    const size_t rb = jl_qtype_row_bytes(t, cols);
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const void *src = (const char *)q + (size_t)r * rb;
        if (t == JL_QTYPE_Q8_0) jl_dequantize_row_q8_0(src, w + r * cols, cols);
        else if (t == JL_QTYPE_Q4_0) jl_dequantize_row_q4_0(src, w + r * cols, cols);
        else memcpy(w + r * cols, src, rb);
    }
}

/* ---------------------------------------------------------------- reference dot products (ggml layouts) */

float jl_vec_dot_q8_0_q8_0(int64_t n, const jl_block_q8_0 *w, const jl_block_q8_0 *x) {
    float sum = 0.0f;
    for (int64_t b = 0; b < n / JL_QK; b++) {
        int32_t s = 0;
        for (int j = 0; j < JL_QK; j++) s += w[b].qs[j] * x[b].qs[j];
        sum += (float)s * (jl_f16_to_f32(w[b].d) * jl_f16_to_f32(x[b].d));
    }
    return sum;
}

float jl_vec_dot_q4_0_q8_0(int64_t n, const jl_block_q4_0 *w, const jl_block_q8_0 *x) {
    float sum = 0.0f;
    for (int64_t b = 0; b < n / JL_QK; b++) {
        int32_t s = 0;
        for (int j = 0; j < JL_QK / 2; j++)
            s += ((w[b].qs[j] & 0x0F) - 8) * x[b].qs[j] + ((w[b].qs[j] >> 4) - 8) * x[b].qs[j + JL_QK / 2];
        sum += (float)s * (jl_f16_to_f32(w[b].d) * jl_f16_to_f32(x[b].d));
    }
    return sum;
}

/* ---------------------------------------------------------------- the repacked layout */

#define LINE 64 /* bytes: 16 rows × 4 */

static int64_t n_blocks(const jl_qmatrix *q) { return q->cols / JL_QK; }
static int64_t n_groups(int64_t rows) { return (rows + JL_QROWS - 1) / JL_QROWS; }
/* Bytes of one group's quants for one block: 8 lines (q8_0) or 4 (q4_0). */
static size_t group_block_bytes(jl_qtype t) { return t == JL_QTYPE_Q8_0 ? 8 * LINE : 4 * LINE; }

/* The quants of group g, block b, and their 16 scales. */
/* Groups in a quad (4 but in a last, partial quad) and the bytes from group g's block b to its block b + 1. */
static int64_t quad_size(const jl_qmatrix *q, int64_t g) {
    const int64_t left = n_groups(q->rows) - g / 4 * 4;
    return left < 4 ? left : 4;
}
static size_t block_step(const jl_qmatrix *q, int64_t g) { return (size_t)quad_size(q, g) * group_block_bytes(q->type); }

/* The quants of group g, block b (quads of four groups interleaved block by block: see quant.h). */
static uint8_t *group_qs(const jl_qmatrix *q, int64_t g, int64_t b) {
    const size_t quad_bytes = 4 * (size_t)n_blocks(q) * group_block_bytes(q->type);
    return q->data + (size_t)(g / 4) * quad_bytes + (size_t)b * block_step(q, g) +
           (size_t)(g % 4) * group_block_bytes(q->type);
}

static uint16_t *group_d(const jl_qmatrix *q, int64_t g, int64_t b) {
    return q->d + ((size_t)g * (size_t)n_blocks(q) + (size_t)b) * JL_QROWS;
}

/* Nibble e (0..31, element order) of a ggml q4_0 block: elements 0..15 low nibbles, 16..31 high. */
static int q4_nibble(const jl_block_q4_0 *b, int e) { return e < 16 ? b->qs[e] & 0x0F : b->qs[e - 16] >> 4; }

/* Puts one ggml block (row r, block b) into the repacked layout. */
static void put_block(jl_qmatrix *q, int64_t r, int64_t b, const void *block) {
    const int64_t g = r / JL_QROWS, i = r % JL_QROWS;
    uint8_t *qs = group_qs(q, g, b) + 4 * i;
    if (q->type == JL_QTYPE_Q8_0) {
        const jl_block_q8_0 *src = block;
        group_d(q, g, b)[i] = src->d;
        for (int c = 0; c < 8; c++)
            for (int j = 0; j < 4; j++) qs[c * LINE + j] = (uint8_t)(src->qs[4 * c + j] ^ 0x80); /* q + 128 */
    } else {
        const jl_block_q4_0 *src = block;
        group_d(q, g, b)[i] = src->d;
        for (int c = 0; c < 4; c++)
            for (int j = 0; j < 4; j++)
                qs[c * LINE + j] = (uint8_t)(q4_nibble(src, 8 * c + j) | q4_nibble(src, 8 * c + 4 + j) << 4);
    }
}

/* The ggml block (row r, block b) back from the repacked layout. */
static void get_block(const jl_qmatrix *q, int64_t r, int64_t b, void *block) {
    const int64_t g = r / JL_QROWS, i = r % JL_QROWS;
    const uint8_t *qs = group_qs(q, g, b) + 4 * i;
    if (q->type == JL_QTYPE_Q8_0) {
        jl_block_q8_0 *dst = block;
        dst->d = group_d(q, g, b)[i];
        for (int c = 0; c < 8; c++)
            for (int j = 0; j < 4; j++) dst->qs[4 * c + j] = (int8_t)(qs[c * LINE + j] ^ 0x80);
    } else {
        jl_block_q4_0 *dst = block;
        dst->d = group_d(q, g, b)[i];
        uint8_t nib[JL_QK];
        for (int c = 0; c < 4; c++)
            for (int j = 0; j < 4; j++) {
                nib[8 * c + j] = qs[c * LINE + j] & 0x0F;
                nib[8 * c + 4 + j] = qs[c * LINE + j] >> 4;
            }
        for (int j = 0; j < JL_QK / 2; j++) dst->qs[j] = (uint8_t)(nib[j] | nib[j + JL_QK / 2] << 4);
    }
}

void jl_qmatrix_set_row(jl_qmatrix *q, int64_t r, const void *ggml_row) {
    const size_t bb = q->type == JL_QTYPE_Q8_0 ? sizeof(jl_block_q8_0) : sizeof(jl_block_q4_0);
    for (int64_t b = 0; b < n_blocks(q); b++) put_block(q, r, b, (const char *)ggml_row + (size_t)b * bb);
}

void jl_qmatrix_get_row(const jl_qmatrix *q, int64_t r, void *ggml_row) {
    const size_t bb = q->type == JL_QTYPE_Q8_0 ? sizeof(jl_block_q8_0) : sizeof(jl_block_q4_0);
    for (int64_t b = 0; b < n_blocks(q); b++) get_block(q, r, b, (char *)ggml_row + (size_t)b * bb);
}

void jl_qmatrix_row_f32(const jl_qmatrix *q, int64_t r, float *out) {
    for (int64_t b = 0; b < n_blocks(q); b++) {
        if (q->type == JL_QTYPE_Q8_0) {
            jl_block_q8_0 blk;
            get_block(q, r, b, &blk);
            jl_dequantize_row_q8_0(&blk, out + b * JL_QK, JL_QK);
        } else {
            jl_block_q4_0 blk;
            get_block(q, r, b, &blk);
            jl_dequantize_row_q4_0(&blk, out + b * JL_QK, JL_QK);
        }
    }
}

void jl_qmatrix_to_f32(const jl_qmatrix *q, float *out) {
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < q->rows; r++) jl_qmatrix_row_f32(q, r, out + r * q->cols);
}

jl_status jl_qmatrix_alloc(jl_qmatrix *q, jl_qtype t, int64_t rows, int64_t cols) {
    memset(q, 0, sizeof *q);
    if (t != JL_QTYPE_Q8_0 && t != JL_QTYPE_Q4_0) return jl_fail(JL_ERR_ARG, "qmatrix: type must be q8_0 or q4_0");
    if (rows < 1 || cols < JL_QK || cols % JL_QK != 0)
        return jl_fail(JL_ERR_ARG, "qmatrix: %lld columns is not a positive multiple of %d", (long long)cols, JL_QK);
    const size_t units = (size_t)n_groups(rows) * (size_t)(cols / JL_QK); /* (group, block) pairs */
    const size_t qs_bytes = units * group_block_bytes(t), d_bytes = units * JL_QROWS * sizeof(uint16_t);
    const size_t bytes = (qs_bytes + d_bytes + 63) / 64 * 64;
    q->data = jl_alloc_stream(bytes); /* zeroed, on huge pages where allowed (a token streams it) */
    if (!q->data) return jl_fail(JL_ERR_NOMEM, "qmatrix: cannot allocate %zu bytes", bytes);
    /* zero values: q8_0 quants 0 are stored as 128, q4_0 nibbles 8 (what quantising zeros gives) */
    memset(q->data, t == JL_QTYPE_Q8_0 ? 0x80 : 0x88, qs_bytes);
    q->d = (uint16_t *)(q->data + qs_bytes);
    q->type = t;
    q->rows = rows;
    q->cols = cols;
    q->row_bytes = jl_qtype_row_bytes(t, cols);
    return JL_OK;
}

jl_status jl_qmatrix_from_f32(jl_qmatrix *q, jl_qtype t, const float *w, int64_t rows, int64_t cols) {
    jl_status st = jl_qmatrix_alloc(q, t, rows, cols);
    if (st != JL_OK) return st;
    /* one block at a time through ggml's rounding: no row buffer; rows of a group of 16 share cache lines,
     * so a thread takes whole groups */
    #pragma omp parallel for schedule(static)
    for (int64_t g = 0; g < n_groups(rows); g++)
        for (int64_t r = g * JL_QROWS; r < rows && r < (g + 1) * JL_QROWS; r++)
            for (int64_t b = 0; b < cols / JL_QK; b++) {
                const float *src = w + r * cols + b * JL_QK;
                if (t == JL_QTYPE_Q8_0) {
                    jl_block_q8_0 blk;
                    jl_quantize_row_q8_0(src, &blk, JL_QK);
                    put_block(q, r, b, &blk);
                } else {
                    jl_block_q4_0 blk;
                    jl_quantize_row_q4_0(src, &blk, JL_QK);
                    put_block(q, r, b, &blk);
                }
            }
    return JL_OK;
}

void jl_qmatrix_free(jl_qmatrix *q) {
    free(q->data);
    memset(q, 0, sizeof *q);
}

/* ---------------------------------------------------------------- activations */

/* x quantised to q8_0 for the kernels: the int8 values contiguous (aligned, read 4 at a time), each block's
 * fp16-rounded scale as a float and the sum of its 32 values (the kernels' weights are unsigned: the offset
 * they add, 128 or 8 times Σx, is taken off once per block and group). */
typedef struct {
    const int8_t *qs; /* cols */
    const float *d;   /* cols / 32 */
    const int32_t *sum;
} xq_view;

static size_t xq_stride(int64_t cols) { return ((size_t)cols + (size_t)(cols / JL_QK) * 8 + 63) / 64 * 64; }

size_t jl_qmatmul_scratch_bytes(int64_t N, int64_t cols) { return (size_t)N * xq_stride(cols) + 64; }

/* The view of input i in scratch (aligned base): values, then scales, then sums. */
static xq_view xq_at(const uint8_t *base, int64_t i, int64_t cols) {
    const uint8_t *p = base + (size_t)i * xq_stride(cols);
    const float *d = (const float *)(p + cols);
    return (xq_view){(const int8_t *)p, d, (const int32_t *)(d + cols / JL_QK)};
}

static void quantize_x(const float *x, int64_t cols, uint8_t *dst) {
    const int64_t nb = cols / JL_QK;
    float *d = (float *)(dst + cols);
    int32_t *sum = (int32_t *)(d + nb);
    for (int64_t b = 0; b < nb; b++) {
        jl_block_q8_0 blk;
        jl_quantize_row_q8_0(x + b * JL_QK, &blk, JL_QK);
        memcpy(dst + b * JL_QK, blk.qs, JL_QK);
        d[b] = jl_f16_to_f32(blk.d);
        int32_t s = 0;
        for (int j = 0; j < JL_QK; j++) s += blk.qs[j];
        sum[b] = s;
    }
}

static int32_t load_i32(const void *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* ---------------------------------------------------------------- kernels: 16 rows (one group) · x */

/* Weights are stored unsigned (q8_0: q + 128, q4_0: q + 8), so each block's integer sum comes out
 * offset by 128·Σx or 8·Σx: one subtraction per block for all 16 rows. */
static int32_t weight_offset(jl_qtype t) { return t == JL_QTYPE_Q8_0 ? 128 : 8; }

static void group_scalar(const jl_qmatrix *w, int64_t g, const xq_view *x, float out[JL_QROWS]) {
    float acc[JL_QROWS] = {0};
    const int q8 = w->type == JL_QTYPE_Q8_0;
    for (int64_t b = 0; b < n_blocks(w); b++) {
        const uint8_t *qs = group_qs(w, g, b);
        const uint16_t *d = group_d(w, g, b);
        const int8_t *xb = x->qs + b * JL_QK;
        const int32_t offset = weight_offset(w->type) * x->sum[b];
        for (int i = 0; i < JL_QROWS; i++) {
            int32_t s = 0;
            for (int c = 0; c < (q8 ? 8 : 4); c++)
                for (int j = 0; j < 4; j++) {
                    const uint8_t v = qs[c * LINE + 4 * i + j];
                    if (q8) s += v * xb[4 * c + j];
                    else s += (v & 0x0F) * xb[8 * c + j] + (v >> 4) * xb[8 * c + 4 + j];
                }
            acc[i] += (float)(s - offset) * (jl_f16_to_f32(d[i]) * x->d[b]);
        }
    }
    memcpy(out, acc, sizeof acc);
}

/* Software prefetch, `pf` bytes ahead of the quants being read (the scales: the same number of blocks ahead).
 * A thread's rows are one sequential stream of quants plus one of scales; the hardware prefetcher alone kept
 * too few lines in flight (one thread's sweep of the 110M weights: ~21 GB/s without, ~27-30 GB/s with, against
 * ~33 GB/s for the fp32 kernel's four row streams; loaded machine, min per matrix over 15 sweeps). Distances
 * chosen by that measurement (2-16 KiB all helped). Past the matrix end a prefetch only wastes a line. */
static size_t prefetch_distance(jl_qtype t) { return t == JL_QTYPE_Q8_0 ? 4096 : 8192; }

/* always_inline: GCC 12 judged the out-of-line copy free of side effects (a prefetch only hints) and deleted
 * every call to it, so the kernels ran without any software prefetch (no prefetcht0 in quant.o until this). */
__attribute__((always_inline)) static inline void prefetch_block(const uint8_t *qs, const uint16_t *d, int64_t b,
                                                                 size_t pf, int q8) {
    for (int c = 0; c < (q8 ? 8 : 4); c++) __builtin_prefetch(qs + pf + (size_t)c * LINE);
    if (!(b & 1)) __builtin_prefetch((const uint8_t *)d + pf / (q8 ? 16 : 8)); /* 32 bytes of scales a block */
}

#if JL_X86
/* ---------------------------------------------------------------- AVX2 */
#define AVX2_TARGET __attribute__((target("avx2,fma,f16c")))

/* Σ over each 4-byte group of w (signed) · x (signed) as 8 int32 lanes: maddubs needs an unsigned left operand,
 * so |w| and sign(x, w) (|q| <= 127 keeps the pair sums below 2^15). */
AVX2_TARGET static inline __m256i dot4_signed_avx2(__m256i w, __m256i x) {
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

/* The same for unsigned nibbles (0..15) · x: the pair sums stay below 2^12, maddubs takes them directly. */
AVX2_TARGET static inline __m256i dot4_nibbles_avx2(__m256i w, __m256i x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1));
}

AVX2_TARGET static void group_avx2(const jl_qmatrix *w, int64_t g, const xq_view *x, float out[JL_QROWS]) {
    __m256 acc_lo = _mm256_setzero_ps(), acc_hi = _mm256_setzero_ps(); /* rows 0..7, 8..15 */
    const __m256i flip = _mm256_set1_epi8((char)0x80), low4 = _mm256_set1_epi8(0x0F);
    const int q8 = w->type == JL_QTYPE_Q8_0;
    const size_t pf = prefetch_distance(w->type);
    for (int64_t b = 0; b < n_blocks(w); b++) {
        const uint8_t *qs = group_qs(w, g, b);
        const int8_t *xb = x->qs + b * JL_QK;
        __m256i s_lo = _mm256_setzero_si256(), s_hi = _mm256_setzero_si256();
        prefetch_block(qs, group_d(w, g, b), b, pf, q8);
        if (q8) {
            for (int c = 0; c < 8; c++) { /* undo the +128: signed weights, no offset to take off */
                const __m256i xv = _mm256_set1_epi32(load_i32(xb + 4 * c));
                const __m256i w0 = _mm256_xor_si256(_mm256_load_si256((const __m256i *)(qs + c * LINE)), flip);
                const __m256i w1 = _mm256_xor_si256(_mm256_load_si256((const __m256i *)(qs + c * LINE + 32)), flip);
                s_lo = _mm256_add_epi32(s_lo, dot4_signed_avx2(w0, xv));
                s_hi = _mm256_add_epi32(s_hi, dot4_signed_avx2(w1, xv));
            }
        } else {
            for (int c = 0; c < 4; c++) {
                const __m256i xl = _mm256_set1_epi32(load_i32(xb + 8 * c)), xh = _mm256_set1_epi32(load_i32(xb + 8 * c + 4));
                const __m256i v0 = _mm256_load_si256((const __m256i *)(qs + c * LINE));
                const __m256i v1 = _mm256_load_si256((const __m256i *)(qs + c * LINE + 32));
                s_lo = _mm256_add_epi32(s_lo, dot4_nibbles_avx2(_mm256_and_si256(v0, low4), xl));
                s_lo = _mm256_add_epi32(s_lo, dot4_nibbles_avx2(_mm256_and_si256(_mm256_srli_epi16(v0, 4), low4), xh));
                s_hi = _mm256_add_epi32(s_hi, dot4_nibbles_avx2(_mm256_and_si256(v1, low4), xl));
                s_hi = _mm256_add_epi32(s_hi, dot4_nibbles_avx2(_mm256_and_si256(_mm256_srli_epi16(v1, 4), low4), xh));
            }
            const __m256i offset = _mm256_set1_epi32(8 * x->sum[b]);
            s_lo = _mm256_sub_epi32(s_lo, offset);
            s_hi = _mm256_sub_epi32(s_hi, offset);
        }
        const __m128i *d = (const __m128i *)group_d(w, g, b);
        const __m256 dx = _mm256_set1_ps(x->d[b]);
        acc_lo = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s_lo), _mm256_mul_ps(_mm256_cvtph_ps(_mm_load_si128(d)), dx), acc_lo);
        acc_hi = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s_hi), _mm256_mul_ps(_mm256_cvtph_ps(_mm_load_si128(d + 1)), dx), acc_hi);
    }
    _mm256_storeu_ps(out, acc_lo);
    _mm256_storeu_ps(out + 8, acc_hi);
}

/* ---------------------------------------------------------------- AVX-512 VNNI */
#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))

/* G consecutive groups (16·G rows) · one input: each broadcast of four x bytes feeds G vpdpbusd (one per group),
 * so a q8_0 block costs 8·G weight loads + 8 broadcasts for 8·G vpdpbusd, where one group at a time paid
 * 8 + 8 for 8: in cache the loads, not the multiplies, set the pace (1 thread, CPU time: see bench_quant). Two
 * integer chains per group: q8_0 even and odd lines; q4_0 low and high nibbles, the high ones masked in place
 * (0xF0: 16× the nibble) and divided by 16 once per block (exact: every term is a multiple of 16), which saves
 * a shift per line. Per row the float steps are one fma(dot, d_w·d_x, acc) per block in block order, the same
 * as group4_avx512 and pair4_avx512, so a row's bits never depend on G, on N or on the row range. */
__attribute__((always_inline)) AVX512_TARGET static inline void groups_body(const jl_qmatrix *w, int64_t g,
                                                                            const xq_view *x, float *out, int G,
                                                                            const int q8) {
    __m512 acc[4];
    const uint8_t *qs[4];
    const uint16_t *d[4];
    size_t step[4];
    const int64_t nb = n_blocks(w);
    for (int h = 0; h < G; h++) {
        acc[h] = _mm512_setzero_ps();
        qs[h] = group_qs(w, g + h, 0);
        d[h] = group_d(w, g + h, 0);
        step[h] = block_step(w, g + h);
    }
    const __m512i low4 = _mm512_set1_epi8(0x0F), high4 = _mm512_set1_epi8((char)0xF0);
    const int32_t wo = q8 ? 128 : 8;
    const size_t pf = prefetch_distance(q8 ? JL_QTYPE_Q8_0 : JL_QTYPE_Q4_0);
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *xb = x->qs + b * JL_QK;
        __m512i s0[4], s1[4];
        const __m512i off = _mm512_set1_epi32(-wo * x->sum[b]);
        for (int h = 0; h < G; h++) {
            prefetch_block(qs[h], d[h], b, pf, q8);
            s0[h] = off;
            s1[h] = _mm512_setzero_si512();
        }
        __m512i xv[8]; /* the block's 32 x bytes, four to a broadcast: column 4k..4k+3 in xv[k] */
        for (int k = 0; k < 8; k++) xv[k] = _mm512_set1_epi32(load_i32(xb + 4 * k));
        for (int h = 0; h < G; h++) /* group by group: the lines in address order */
            if (q8) {
                for (int c = 0; c < 8; c += 2) {
                    s0[h] = _mm512_dpbusd_epi32(s0[h], _mm512_load_si512(qs[h] + c * LINE), xv[c]);
                    s1[h] = _mm512_dpbusd_epi32(s1[h], _mm512_load_si512(qs[h] + (c + 1) * LINE), xv[c + 1]);
                }
            } else { /* line c: low nibbles are columns 8c..8c+3, high ones 8c+4..8c+7 */
                for (int c = 0; c < 4; c++) {
                    const __m512i v = _mm512_load_si512(qs[h] + c * LINE);
                    s0[h] = _mm512_dpbusd_epi32(s0[h], _mm512_and_si512(v, low4), xv[2 * c]);
                    s1[h] = _mm512_dpbusd_epi32(s1[h], _mm512_and_si512(v, high4), xv[2 * c + 1]);
                }
                s1[h] = _mm512_srai_epi32(s1[h], 4);
            }
        const __m512 dx = _mm512_set1_ps(x->d[b]);
        for (int h = 0; h < G; h++) {
            const __m512 scale = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_load_si256((const __m256i *)d[h])), dx);
            acc[h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0[h], s1[h])), scale, acc[h]);
            qs[h] += step[h];
            d[h] += JL_QROWS;
        }
    }
    for (int h = 0; h < G; h++) _mm512_storeu_ps(out + h * JL_QROWS, acc[h]);
}

/* groups_body for G = 1..4 groups (out: G × 16 sums), each (type, G) compiled on its own. */
AVX512_TARGET static void groups_avx512(const jl_qmatrix *w, int64_t g, int G, const xq_view *x, float *out) {
    if (w->type == JL_QTYPE_Q8_0) {
        if (G == 4) groups_body(w, g, x, out, 4, 1);
        else if (G == 3) groups_body(w, g, x, out, 3, 1);
        else if (G == 2) groups_body(w, g, x, out, 2, 1);
        else groups_body(w, g, x, out, 1, 1);
    } else {
        if (G == 4) groups_body(w, g, x, out, 4, 0);
        else if (G == 3) groups_body(w, g, x, out, 3, 0);
        else if (G == 2) groups_body(w, g, x, out, 2, 0);
        else groups_body(w, g, x, out, 1, 0);
    }
}

/* One group (16 rows) · x: the group kernel of the one-input interface. */
AVX512_TARGET static void group_avx512(const jl_qmatrix *w, int64_t g, const xq_view *x, float out[JL_QROWS]) {
    groups_avx512(w, g, 1, x, out);
}

/* The same sums for four inputs at once (batched decoding): each block's weight lines are loaded once and feed
 * four vpdpbusd chains. Per input the arithmetic is group_avx512's, so each row's result is bit-identical to it. */
AVX512_TARGET static void group4_avx512(const jl_qmatrix *w, int64_t g, const xq_view *x, float out[4][JL_QROWS],
                                        size_t pf) {
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    const int q8 = w->type == JL_QTYPE_Q8_0;
    const int32_t wo = weight_offset(w->type);
    const uint8_t *qs = group_qs(w, g, 0);
    const uint16_t *d = group_d(w, g, 0);
    const size_t step = block_step(w, g);
    for (int64_t b = 0; b < n_blocks(w); b++, d += JL_QROWS, qs += step) {
        __m512i l[8];
        if (pf) prefetch_block(qs, d, b, pf, q8);
        if (q8) {
            for (int c = 0; c < 8; c++) l[c] = _mm512_load_si512(qs + c * LINE);
        } else { /* low nibbles (columns 8c..8c+3) in l[2c], high (8c+4..8c+7) in l[2c+1] */
            for (int c = 0; c < 4; c++) {
                const __m512i v = _mm512_load_si512(qs + c * LINE);
                l[2 * c] = _mm512_and_si512(v, low4);
                l[2 * c + 1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
            }
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)d));
        for (int r = 0; r < 4; r++) {
            const int8_t *xb = x[r].qs + b * JL_QK;
            __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
            for (int k = 0; k < 8; k += 2) { /* line k holds the x bytes 4k..4k+3 in both layouts */
                s0 = _mm512_dpbusd_epi32(s0, l[k], _mm512_set1_epi32(load_i32(xb + 4 * k)));
                s1 = _mm512_dpbusd_epi32(s1, l[k + 1], _mm512_set1_epi32(load_i32(xb + 4 * k + 4)));
            }
            const __m512i dot = _mm512_sub_epi32(_mm512_add_epi32(s0, s1), _mm512_set1_epi32(wo * x[r].sum[b]));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, _mm512_set1_ps(x[r].d[b])), acc[r]);
        }
    }
    for (int r = 0; r < 4; r++) _mm512_storeu_ps(out[r], acc[r]);
}

/* One step of pair4_avx512: weight lines la (group g) and lb (group g + 1) holding columns 4k..4k+3 of block b,
 * against the four inputs' bytes 4k..4k+3 of that block. */
AVX512_TARGET static inline void pair_step(__m512i sa[4], __m512i sb[4], __m512i la, __m512i lb, const xq_view *x,
                                           int64_t b, int k) {
    for (int r = 0; r < 4; r++) {
        const __m512i xv = _mm512_set1_epi32(load_i32(x[r].qs + b * JL_QK + 4 * k));
        sa[r] = _mm512_dpbusd_epi32(sa[r], la, xv);
        sb[r] = _mm512_dpbusd_epi32(sb[r], lb, xv);
    }
}

/* The batched product's micro-kernel: two groups (32 rows) × four inputs. Each broadcast of four x bytes feeds
 * two vpdpbusd (one per group) and each weight line four, so a block costs 16 weight loads and 32 broadcasts for
 * 64 vpdpbusd (0.75 loads each), where group4_avx512 issues 8 + 32 for 32 (1.25 each): the loads, not the
 * multiplies, were what one core could issue least of.
 * Per (input, group) the integer sums are exact and the float steps are group_avx512's in its order, so every row
 * is bit-identical to it. Groups g and g + 1 must both exist. */
AVX512_TARGET static void pair4_avx512(const jl_qmatrix *w, int64_t g, const xq_view *x, float out[2][4][JL_QROWS],
                                       size_t pf) {
    __m512 acc[2][4];
    for (int h = 0; h < 2; h++)
        for (int r = 0; r < 4; r++) acc[h][r] = _mm512_setzero_ps();
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    const int q8 = w->type == JL_QTYPE_Q8_0;
    const int32_t wo = weight_offset(w->type);
    const size_t sa_step = block_step(w, g), sb_step = block_step(w, g + 1);
    const uint8_t *qa = group_qs(w, g, 0), *qb = group_qs(w, g + 1, 0);
    const uint16_t *da = group_d(w, g, 0), *db = group_d(w, g + 1, 0);
    for (int64_t b = 0; b < n_blocks(w); b++, qa += sa_step, qb += sb_step, da += JL_QROWS, db += JL_QROWS) {
        __m512i sa[4], sb[4];
        if (pf) {
            prefetch_block(qa, da, b, pf, q8);
            prefetch_block(qb, db, b, pf, q8);
        }
        for (int r = 0; r < 4; r++) sa[r] = sb[r] = _mm512_set1_epi32(-wo * x[r].sum[b]);
        if (q8)
            for (int k = 0; k < 8; k++)
                pair_step(sa, sb, _mm512_load_si512(qa + k * LINE), _mm512_load_si512(qb + k * LINE), x, b, k);
        else /* stored line c: low nibbles are columns 8c..8c+3 (k = 2c), high ones 8c+4..8c+7 (k = 2c + 1) */
            for (int c = 0; c < 4; c++) {
                const __m512i va = _mm512_load_si512(qa + c * LINE), vb = _mm512_load_si512(qb + c * LINE);
                pair_step(sa, sb, _mm512_and_si512(va, low4), _mm512_and_si512(vb, low4), x, b, 2 * c);
                pair_step(sa, sb, _mm512_and_si512(_mm512_srli_epi16(va, 4), low4),
                          _mm512_and_si512(_mm512_srli_epi16(vb, 4), low4), x, b, 2 * c + 1);
            }
        const __m512 dwa = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)da));
        const __m512 dwb = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)db));
        for (int r = 0; r < 4; r++) {
            const __m512 dx = _mm512_set1_ps(x[r].d[b]);
            acc[0][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sa[r]), _mm512_mul_ps(dwa, dx), acc[0][r]);
            acc[1][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sb[r]), _mm512_mul_ps(dwb, dx), acc[1][r]);
        }
    }
    for (int h = 0; h < 2; h++)
        for (int r = 0; r < 4; r++) _mm512_storeu_ps(out[h][r], acc[h][r]);
}
#endif

/* ---------------------------------------------------------------- dispatch */

static jl_qpath g_path = JL_QPATH_AUTO; /* set before use; read-only while kernels run */
static int g_groups = 4;                /* groups per step of the AVX-512 one-input kernel (jl_quant_set_groups) */

jl_status jl_quant_set_groups(int groups) {
    if (groups < 1 || groups > 4) return jl_fail(JL_ERR_ARG, "quant: %d groups a step (1..4)", groups);
    g_groups = groups;
    return JL_OK;
}

int jl_quant_path_supported(jl_qpath p) {
    if (p == JL_QPATH_AUTO || p == JL_QPATH_SCALAR) return 1;
#if JL_X86
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    if (p == JL_QPATH_AVX2) return avx2;
    if (p == JL_QPATH_AVX512)
        return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vnni");
#endif
    return 0;
}

static jl_qpath best_path(void) {
    if (jl_quant_path_supported(JL_QPATH_AVX512)) return JL_QPATH_AVX512;
    if (jl_quant_path_supported(JL_QPATH_AVX2)) return JL_QPATH_AVX2;
    return JL_QPATH_SCALAR;
}

jl_status jl_quant_set_path(jl_qpath p) {
    if (!jl_quant_path_supported(p)) return jl_fail(JL_ERR_ARG, "this CPU cannot run the %s path", jl_quant_path_name(p));
    g_path = p == JL_QPATH_AUTO ? best_path() : p;
    return JL_OK;
}

jl_qpath jl_quant_path(void) {
    if (g_path == JL_QPATH_AUTO) g_path = best_path();
    return g_path;
}

const char *jl_quant_path_name(jl_qpath p) {
    static const char *names[] = {"auto", "scalar", "avx2", "avx512"};
    return p >= JL_QPATH_AUTO && p <= JL_QPATH_AVX512 ? names[p] : "?";
}

#if JL_X86
/* quantize_x with AVX-512: the same numbers (max |x|, d = amax / 127, q = round-half-away(x / d) built from a
 * truncation and the exact fraction, the fp16 scale read back), two vectors per block. */
AVX512_TARGET static void quantize_x_avx512(const float *x, int64_t cols, uint8_t *dst) {
    const int64_t nb = cols / JL_QK;
    float *d = (float *)(dst + cols);
    int32_t *sum = (int32_t *)(d + nb);
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
    for (int64_t b = 0; b < nb; b++) {
        const __m512 v0 = _mm512_loadu_ps(x + b * JL_QK), v1 = _mm512_loadu_ps(x + b * JL_QK + 16);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        const float dd = amax / 127.0f, id = dd != 0.0f ? 1.0f / dd : 0.0f;
        d[b] = _cvtsh_ss(_cvtss_sh(dd, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)); /* = jl_f32_to_f16's RNE */
        __m512i qi[2];
        const __m512 vs[2] = {v0, v1};
        for (int k = 0; k < 2; k++) {
            const __m512 t = _mm512_mul_ps(vs[k], _mm512_set1_ps(id));
            const __m512 tr = _mm512_roundscale_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            const __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(t, tr)), half, _CMP_GE_OQ);
            const __m512 adj = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(one),
                _mm512_and_si512(_mm512_castps_si512(t), _mm512_set1_epi32((int)0x80000000u))));
            qi[k] = _mm512_cvttps_epi32(_mm512_mask_add_ps(tr, up, tr, adj));
            _mm_storeu_si128((__m128i *)(dst + b * JL_QK + 16 * k), _mm512_cvtepi32_epi8(qi[k]));
        }
        sum[b] = _mm512_reduce_add_epi32(_mm512_add_epi32(qi[0], qi[1]));
    }
}
#endif

/* ---------------------------------------------------------------- y = x·Wᵀ + b */

typedef void (*group_kernel)(const jl_qmatrix *, int64_t, const xq_view *, float *);

static group_kernel kernel_for(jl_qpath p) {
#if JL_X86
    if (p == JL_QPATH_AVX512) return group_avx512;
    if (p == JL_QPATH_AVX2) return group_avx2;
#endif
    (void)p;
    return group_scalar;
}

/* One input row quantised into dst (an aligned slot of xq_stride(cols) bytes), with the path's quantiser: the
 * same bytes on every path. */
static void quantize_one(jl_qpath p, const float *x, int64_t cols, uint8_t *dst) {
#if JL_X86
    if (p == JL_QPATH_AVX512) {
        quantize_x_avx512(x, cols, dst);
        return;
    }
#endif
    (void)p;
    quantize_x(x, cols, dst);
}

static uint8_t *xq_base(const void *xq) { return (uint8_t *)(((uintptr_t)xq + 63) / 64 * 64); }

/* Rows [a, b) (inside group g) of one input's output row yr from the group's 16 sums s: (y +) s + bias. */
static void put_rows(float *yr, const float *s, int64_t g, int64_t a, int64_t b, const float *bias, int accumulate) {
    for (int64_t r = a; r < b; r++) yr[r] = (accumulate ? yr[r] : 0.0f) + s[r - g * JL_QROWS] + (bias ? bias[r] : 0.0f);
}

/* Rows [r0, r1) of y (N, rows) for the N quantised inputs at base, on the calling thread, in steps of up to four
 * groups (AVX-512; one group on the other paths). The groups that straddle r0 or r1 are computed whole and only
 * rows inside are written. AVX-512 with four or more inputs: two groups against four inputs at a time
 * (pair4_avx512), a last odd group against four (group4_avx512); the remaining inputs one at a time against all
 * the step's groups (groups_avx512). Every kernel gives each row the same bits, so a row never depends on N, on
 * the other inputs or on the range. */
static void rows_range(float *y, const uint8_t *base, const jl_qmatrix *w, const float *bias, int64_t N, int64_t r0,
                       int64_t r1, int accumulate, jl_qpath path) {
    const int64_t K = w->cols, rows = w->rows, g_last = (r1 - 1) / JL_QROWS; /* the last group inside [r0, r1) */
    const group_kernel kernel = kernel_for(path);
    for (int64_t g = r0 / JL_QROWS; g <= g_last;) {
        const int n_g = path == JL_QPATH_AVX512 ? (int)(g_last - g + 1 < g_groups ? g_last - g + 1 : g_groups) : 1;
        int64_t a[4], b[4];
        for (int h = 0; h < n_g; h++) {
            a[h] = (g + h) * JL_QROWS > r0 ? (g + h) * JL_QROWS : r0;
            b[h] = (g + h + 1) * JL_QROWS < r1 ? (g + h + 1) * JL_QROWS : r1;
        }
        int64_t i = 0;
#if JL_X86
        if (path == JL_QPATH_AVX512)
            for (; i + 4 <= N; i += 4) {
                const xq_view xv[4] = {xq_at(base, i, K), xq_at(base, i + 1, K),
                                       xq_at(base, i + 2, K), xq_at(base, i + 3, K)};
                /* the first four inputs read the weights from memory (prefetched); the others from cache */
                const size_t pf = i == 0 ? prefetch_distance(w->type) : 0;
                for (int h = 0; h < n_g; h += 2) {
                    float s[2][4][JL_QROWS];
                    const int pair = h + 1 < n_g;
                    if (pair) pair4_avx512(w, g + h, xv, s, pf);
                    else group4_avx512(w, g + h, xv, s[0], pf);
                    for (int e = 0; e <= pair; e++)
                        for (int k = 0; k < 4; k++)
                            put_rows(y + (i + k) * rows, s[e][k], g + h + e, a[h + e], b[h + e], bias, accumulate);
                }
            }
#endif
        for (; i < N; i++) {
            const xq_view xv = xq_at(base, i, K);
            float s[4][JL_QROWS];
#if JL_X86
            if (path == JL_QPATH_AVX512) groups_avx512(w, g, n_g, &xv, s[0]);
            else
#endif
                kernel(w, g, &xv, s[0]);
            for (int h = 0; h < n_g; h++) put_rows(y + i * rows, s[h], g + h, a[h], b[h], bias, accumulate);
        }
        g += n_g;
    }
}

void jl_qmatmul(float *y, const float *x, const jl_qmatrix *w, const float *bias, int64_t N, void *xq) {
    const int64_t K = w->cols, units = (n_groups(w->rows) + 3) / 4;
    uint8_t *base = xq_base(xq);
    const jl_qpath path = jl_quant_path();
    #pragma omp parallel for schedule(static) if (N > 1)
    for (int64_t i = 0; i < N; i++) quantize_one(path, x + i * K, K, base + (size_t)i * xq_stride(K));
    /* units of four groups (64 rows) outer: each unit's weights are read once from memory and used for all N
     * inputs */
    #pragma omp parallel for schedule(static)
    for (int64_t u = 0; u < units; u++) {
        const int64_t r0 = u * 4 * JL_QROWS, r1 = r0 + 4 * JL_QROWS < w->rows ? r0 + 4 * JL_QROWS : w->rows;
        rows_range(y, base, w, bias, N, r0, r1, 0, path);
    }
}

void jl_qmatvec_rows(float *y, const float *x, const jl_qmatrix *w, const float *bias, void *xq, int64_t r0,
                     int64_t r1, int accumulate) {
    uint8_t *base = xq_base(xq);
    const jl_qpath path = jl_quant_path();
    quantize_one(path, x, w->cols, base);
    rows_range(y, base, w, bias, 1, r0, r1, accumulate, path);
}

void jl_qmatmul_quantize(const float *x, int64_t N, int64_t cols, void *xq) {
    uint8_t *base = xq_base(xq);
    const jl_qpath path = jl_quant_path();
    for (int64_t i = 0; i < N; i++) quantize_one(path, x + i * cols, cols, base + (size_t)i * xq_stride(cols));
}

void jl_qmatmul_rows(float *y, const void *xq, const jl_qmatrix *w, const float *bias, int64_t N, int64_t r0,
                     int64_t r1, int accumulate) {
    rows_range(y, xq_base(xq), w, bias, N, r0, r1, accumulate, jl_quant_path());
}
