/* Block-quantised weights and the matrix-vector kernels that use them, in ggml's exact layouts so the same
 * bytes go into GGUF files:
 *   q8_0: 32 values per block = fp16 scale d + 32 int8 q;         value = q·d,     d = max|x| / 127
 *   q4_0: 32 values per block = fp16 scale d + 16 bytes of nibbles; value = (q-8)·d, d = (signed max-|x| value) / -8;
 *         byte j holds value j in its low nibble and value j+16 in its high nibble.
 * In a file, a quantised matrix (rows, cols) is rows × cols/32 blocks, row after row; cols must be a multiple of 32.
 * y = W·x quantises x to q8_0 on the fly (as ggml does) and runs integer dot products on a repacked copy of the
 * weights (jl_qmatrix): AVX-512 (VNNI), AVX2, or a portable path, picked at run time (jl_quant_set_path forces one,
 * for tests and benchmarks). */
#ifndef JL_INFER_QUANT_H
#define JL_INFER_QUANT_H
#include "jielong/common.h"
#include <stddef.h>
#include <stdint.h>

#define JL_QK 32

typedef enum { JL_QTYPE_F32 = 0, JL_QTYPE_Q8_0 = 8, JL_QTYPE_Q4_0 = 2 } jl_qtype; /* values = ggml type ids */

typedef struct {
    uint16_t d;           /* fp16 scale */
    int8_t qs[JL_QK];
} jl_block_q8_0;          /* 34 bytes */

typedef struct {
    uint16_t d;
    uint8_t qs[JL_QK / 2];
} jl_block_q4_0;          /* 18 bytes */

const char *jl_qtype_name(jl_qtype t);               /* "f32", "q8_0", "q4_0" */
jl_status jl_qtype_parse(const char *name, jl_qtype *out);
size_t jl_qtype_row_bytes(jl_qtype t, int64_t cols); /* bytes of one quantised row */

/* Rows of n values (n a multiple of 32) → blocks and back. */
void jl_quantize_row_q8_0(const float *x, jl_block_q8_0 *y, int64_t n);
void jl_quantize_row_q4_0(const float *x, jl_block_q4_0 *y, int64_t n);
void jl_dequantize_row_q8_0(const jl_block_q8_0 *x, float *y, int64_t n);
void jl_dequantize_row_q4_0(const jl_block_q4_0 *x, float *y, int64_t n);
/* Whole matrices (rows × cols), parallel over rows. `out` holds rows · jl_qtype_row_bytes(t, cols) bytes. */
void jl_quantize_matrix(jl_qtype t, const float *w, void *out, int64_t rows, int64_t cols);
void jl_dequantize_matrix(jl_qtype t, const void *q, float *w, int64_t rows, int64_t cols);

/* Reference dot product of n values (n/32 blocks) in ggml's layouts, weights q8_0 or q4_0, activations q8_0:
 * exact integer sums per block, scaled and added in block order. The engine does not use these (it runs
 * jl_qmatmul on repacked matrices); tests check the kernels against them. */
float jl_vec_dot_q8_0_q8_0(int64_t n, const jl_block_q8_0 *w, const jl_block_q8_0 *x);
float jl_vec_dot_q4_0_q8_0(int64_t n, const jl_block_q4_0 *w, const jl_block_q8_0 *x);

/* Kernel paths of jl_qmatmul, picked at run time. */
typedef enum { JL_QPATH_AUTO = 0, JL_QPATH_SCALAR, JL_QPATH_AVX2, JL_QPATH_AVX512 } jl_qpath;
/* Forces a path (JL_QPATH_AUTO = the best this CPU has); returns JL_ERR_ARG if the CPU lacks it. */
jl_status jl_quant_set_path(jl_qpath p);
jl_qpath jl_quant_path(void);               /* the path in use */
int jl_quant_path_supported(jl_qpath p);
const char *jl_quant_path_name(jl_qpath p);
/* Groups of 16 rows the AVX-512 one-input kernel takes at a time (1..4, default 4; each activation load feeds that
 * many groups). Every row's bits are the same whatever the setting: a knob for benchmarks (bench_generate
 * BG_QGROUPS) and tests. JL_ERR_ARG outside 1..4. */
jl_status jl_quant_set_groups(int groups);

/* A quantised weight matrix (out = rows, in = cols), (out, in) like our fp32 linear weights, held in memory in
 * an inference layout repacked from ggml's blocks at load time (the files keep ggml's bytes; set_row / get_row
 * convert one row from / to them):
 *   rows in groups of JL_QROWS = 16 (the last group padded with zero rows); per group and 32-column block,
 *   q8_0: 8 lines of 64 bytes, line c = columns 4c..4c+3 of the 16 rows (4 bytes a row), each quant + 128;
 *   q4_0: 4 lines of 64 bytes, line c = for each row 4 bytes whose low nibbles are columns 8c..8c+3 and high
 *         nibbles 8c+4..8c+7 (the nibbles as ggml stores them, q + 8);
 *   and the group's 16 fp16 scales of each block side by side in `d`. Groups go in fours (a "quad": 64 rows;
 *   the last quad may hold fewer), block after block: block b of the quad's groups 0..3, then block b + 1, so
 *   the four-group kernel that feeds each activation load to four groups reads one sequential stream.
 * So one aligned 64-byte load feeds one vpdpbusd (unsigned weights × signed activations) for 16 rows, whose
 * int32 lanes are the 16 rows' dot products: no shuffles, no horizontal sums, scales loaded as a vector.
 * The bytes in memory equal the file's (32 quants + one fp16 scale per block and row). */
#define JL_QROWS 16
typedef struct {
    jl_qtype type;
    int64_t rows, cols;
    size_t row_bytes; /* bytes of one row in ggml's layout (what the file holds) */
    uint8_t *data;    /* the repacked quants, 64-byte aligned, then the scales; NULL: no matrix (fp32 linear) */
    uint16_t *d;      /* inside data: groups × blocks × 16 fp16 scales */
} jl_qmatrix;

/* Quantises a fp32 (rows, cols) matrix into a new jl_qmatrix (ggml's rounding, repacked). */
jl_status jl_qmatrix_from_f32(jl_qmatrix *q, jl_qtype t, const float *w, int64_t rows, int64_t cols);
/* Allocates q: rows × cols of type t, every block zero (scale 0, quants 0). */
jl_status jl_qmatrix_alloc(jl_qmatrix *q, jl_qtype t, int64_t rows, int64_t cols);
void jl_qmatrix_free(jl_qmatrix *q);
/* Row r from / to ggml's bytes (row_bytes: cols/32 blocks of jl_block_q8_0 or jl_block_q4_0). */
void jl_qmatrix_set_row(jl_qmatrix *q, int64_t r, const void *ggml_row);
void jl_qmatrix_get_row(const jl_qmatrix *q, int64_t r, void *ggml_row);
/* Row r dequantised into cols floats (an embedding lookup), and the whole matrix into rows × cols floats. */
void jl_qmatrix_row_f32(const jl_qmatrix *q, int64_t r, float *out);
void jl_qmatrix_to_f32(const jl_qmatrix *q, float *out);

/* y (N, rows) = x (N, cols) · Wᵀ (+ bias (rows), may be NULL). `xq` is scratch of jl_qmatmul_scratch_bytes(N, cols)
 * bytes (any alignment) where x is quantised to q8_0 (ggml's rounding). N = 1 is the decode matrix-vector product. */
size_t jl_qmatmul_scratch_bytes(int64_t N, int64_t cols);
void jl_qmatmul(float *y, const float *x, const jl_qmatrix *w, const float *bias, int64_t N, void *xq);
/* Rows [r0, r1) of y = W·x (+ bias) (+ y when accumulate) for one vector, on the calling thread (no OpenMP): a
 * decode thread's share. x is quantised into xq (jl_qmatmul_scratch_bytes(1, cols), this thread's own); the
 * groups of 16 rows that straddle r0 or r1 are computed whole and only rows inside are written. */
void jl_qmatvec_rows(float *y, const float *x, const jl_qmatrix *w, const float *bias, void *xq, int64_t r0,
                     int64_t r1, int accumulate);
/* The batched step's two halves, on the calling thread (no OpenMP): a thread's share of a step run inside one
 * parallel region. jl_qmatmul_quantize puts N inputs as q8_0 into xq (jl_qmatmul_scratch_bytes(N, cols)), with
 * ggml's rounding (AVX-512 where the path is, the same bytes); jl_qmatmul_rows then computes rows [r0, r1) of
 * y (N, rows) = x · Wᵀ (+ bias) (+ y when accumulate), every row equal to jl_qmatvec_rows's for that input. */
void jl_qmatmul_quantize(const float *x, int64_t N, int64_t cols, void *xq);
void jl_qmatmul_rows(float *y, const void *xq, const jl_qmatrix *w, const float *bias, int64_t N, int64_t r0,
                     int64_t r1, int accumulate);

#endif
