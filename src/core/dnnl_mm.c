#include "core/dnnl_mm.h"
#include "core/half.h"
#include "core/parallel.h"
#include <dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum { N_SLOTS = 8, N_PRIMS = 48 };

typedef struct {
    int M, N, K, ldc, bias, accumulate, threads;
    long a_rs, a_cs, b_rs, b_cs;
    jl_precision prec;
} prim_key;

typedef struct {
    prim_key key;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t a_md, b_md, c_md, bias_md;
    size_t scratch_bytes;
    char impl[64];
} prim_entry;

typedef struct {
    int busy;
    dnnl_stream_t stream;
    prim_entry prims[N_PRIMS];
    int n_prims, next_evict;
    uint16_t *abf, *bbf, *sbf; /* bf16 copies of A and B; sbf: the first A of a sequence, kept for the others */
    size_t abf_n, bbf_n, sbf_n;
    void *scratch;
    size_t scratch_n;
} workspace;

static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t engine;
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static workspace slots[N_SLOTS];

static void release_at_exit(void) { jl_dnnl_release(); }

static void make_engine(void) {
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) engine = NULL;
    else atexit(release_at_exit);
}

static workspace *take_workspace(void) {
    pthread_once(&engine_once, make_engine);
    if (!engine) return NULL;
    workspace *w = NULL;
    pthread_mutex_lock(&slots_lock);
    for (int i = 0; i < N_SLOTS && !w; i++)
        if (!slots[i].busy) {
            w = &slots[i];
            w->busy = 1;
        }
    pthread_mutex_unlock(&slots_lock);
    if (w && !w->stream && dnnl_stream_create(&w->stream, engine, dnnl_stream_default_flags) != dnnl_success) {
        w->stream = NULL;
        pthread_mutex_lock(&slots_lock);
        w->busy = 0;
        pthread_mutex_unlock(&slots_lock);
        return NULL;
    }
    return w;
}

static void give_back(workspace *w) {
    pthread_mutex_lock(&slots_lock);
    w->busy = 0;
    pthread_mutex_unlock(&slots_lock);
}

static void free_workspace(workspace *w) {
    for (int i = 0; i < w->n_prims; i++) dnnl_primitive_destroy(w->prims[i].prim);
    if (w->stream) dnnl_stream_destroy(w->stream);
    free(w->abf);
    free(w->bbf);
    free(w->sbf);
    free(w->scratch);
    memset(w, 0, sizeof *w);
}

void jl_dnnl_release(void) {
    pthread_mutex_lock(&slots_lock);
    for (int i = 0; i < N_SLOTS; i++)
        if (!slots[i].busy) free_workspace(&slots[i]);
    pthread_mutex_unlock(&slots_lock);
}

/* Grows *buf to at least `bytes` (64-byte aligned); 0 on success. Contents are not kept. */
static int reserve(void **buf, size_t *have, size_t bytes) {
    if (*have >= bytes) return 0;
    size_t n = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, n);
    if (!p) return 1;
    free(*buf);
    *buf = p;
    *have = n;
    return 0;
}

/* ---------------------------------------------------------------- fp32 -> bf16 */

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bf16"))) static void to_bf16_avx512(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
        _mm256_storeu_si256((__m256i *)(dst + i), (__m256i)h);
    }
    for (; i < n; i++) dst[i] = jl_f32_to_bf16(src[i]);
}
#endif

void jl_to_bf16(const float *src, uint16_t *dst, size_t n) {
#if defined(__x86_64__)
    const int fast = jl_cpu_has_bf16();
#else
    const int fast = 0;
#endif
    const size_t chunk = 1 << 16;
    const long chunks = (long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static) if (n >= 4 * chunk)
    for (long c = 0; c < chunks; c++) {
        size_t i0 = (size_t)c * chunk, m = n - i0 < chunk ? n - i0 : chunk;
#if defined(__x86_64__)
        if (fast) {
            to_bf16_avx512(src + i0, dst + i0, m);
            continue;
        }
#endif
        jl_f32_to_bf16_array(src + i0, dst + i0, m);
    }
}

/* dst(R,C) row-major bf16 = src viewed with element (r,c) at src[r·rs + c·cs], in 32×32 tiles. */
static void to_bf16_strided(const float *src, long rs, long cs, uint16_t *dst, int R, int C) {
    enum { TILE = 32 };
    const int tr = (R + TILE - 1) / TILE, tc = (C + TILE - 1) / TILE;
#pragma omp parallel for schedule(static) if (JL_WORTH_THREADS((size_t)R * C))
    for (long t = 0; t < (long)tr * tc; t++) {
        int r0 = (int)(t / tc) * TILE, c0 = (int)(t % tc) * TILE;
        int r1 = r0 + TILE < R ? r0 + TILE : R, c1 = c0 + TILE < C ? c0 + TILE : C;
        for (int r = r0; r < r1; r++)
            for (int c = c0; c < c1; c++) dst[(size_t)r * C + c] = jl_f32_to_bf16(src[r * rs + c * cs]);
    }
}

/* ---------------------------------------------------------------- primitives */

static int key_equal(const prim_key *x, const prim_key *y) { return memcmp(x, y, sizeof *x) == 0; }

static int md_strided(dnnl_memory_desc_t *md, int rows, int cols, dnnl_data_type_t dt, long rs, long cs) {
    dnnl_dims_t dims = {rows, cols}, strides = {rs, cs};
    return dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides) != dnnl_success;
}

static prim_entry *build_prim(workspace *w, const prim_key *k) {
    prim_entry e = {.key = *k};
    const dnnl_data_type_t in_t = k->prec == JL_PREC_BF16 ? dnnl_bf16 : dnnl_f32;
    /* the key holds A's strides as passed (a bf16 copy keeps them, or is made row-major: a_plan) */
    if (md_strided(&e.a_md, k->M, k->K, in_t, k->a_rs, k->a_cs) || md_strided(&e.b_md, k->K, k->N, in_t, k->b_rs, k->b_cs) ||
        md_strided(&e.c_md, k->M, k->N, dnnl_f32, k->ldc, 1) || md_strided(&e.bias_md, 1, k->N, dnnl_f32, k->N, 1))
        return NULL;
    dnnl_matmul_desc_t desc;
    if (dnnl_matmul_desc_init(&desc, &e.a_md, &e.b_md, k->bias ? &e.bias_md : NULL, &e.c_md) != dnnl_success)
        return NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int bad = dnnl_primitive_attr_create(&attr) != dnnl_success ||
              dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) != dnnl_success;
    if (!bad && k->accumulate)
        bad = dnnl_post_ops_create(&po) != dnnl_success || dnnl_post_ops_append_sum(po, 1.0f) != dnnl_success ||
              dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success;
    if (!bad) bad = dnnl_primitive_desc_create(&pd, &desc, attr, engine, NULL) != dnnl_success;
    if (!bad) {
        const char *impl = "";
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
        snprintf(e.impl, sizeof e.impl, "%s", impl);
        e.scratch_bytes = dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0));
        bad = dnnl_primitive_create(&e.prim, pd) != dnnl_success;
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (bad) return NULL;
    int slot;
    if (w->n_prims < N_PRIMS) {
        slot = w->n_prims++;
    } else { /* full: replace the entries in turn */
        slot = w->next_evict++ % N_PRIMS;
        dnnl_primitive_destroy(w->prims[slot].prim);
    }
    w->prims[slot] = e;
    return &w->prims[slot];
}

static prim_entry *find_prim(workspace *w, const prim_key *k) {
    for (int i = 0; i < w->n_prims; i++)
        if (key_equal(&w->prims[i].key, k)) return &w->prims[i];
    return build_prim(w, k);
}

/* How A reaches oneDNN: as given (fp32), a bf16 copy the caller made, a bf16 copy of the array it spans with its
 * strides kept (A dense in either order), or a row-major bf16 copy of a view with gaps. */
typedef enum { A_AS_GIVEN, A_CALLER_COPY, A_SPAN_COPY, A_DENSE_COPY } a_plan;

static size_t a_span(const jl_mm_op *op) { return (size_t)((op->M - 1) * op->a_rs + (op->K - 1) * op->a_cs + 1); }
/* Elements spanned by B's strides: the dense array it lives in. */
static size_t b_span(const jl_mm_op *op) { return (size_t)((op->K - 1) * op->b_rs + (op->N - 1) * op->b_cs + 1); }

static a_plan plan_a(const jl_mm_op *op, jl_precision prec) {
    if (prec != JL_PREC_BF16) return A_AS_GIVEN;
    if (op->a16) return A_CALLER_COPY;
    const int row_major = op->a_cs == 1 && op->a_rs == op->K, col_major = op->a_rs == 1 && op->a_cs == op->M;
    return row_major || col_major ? A_SPAN_COPY : A_DENSE_COPY;
}

static prim_key make_key(const jl_mm_op *op, jl_precision prec) {
    prim_key k;
    memset(&k, 0, sizeof k); /* padding too: keys are compared bytewise */
    k.M = op->M, k.N = op->N, k.K = op->K, k.ldc = op->ldc, k.bias = op->bias != NULL;
    k.accumulate = op->accumulate, k.threads = omp_get_max_threads();
    const int dense = plan_a(op, prec) == A_DENSE_COPY;
    k.a_rs = dense ? op->K : op->a_rs, k.a_cs = dense ? 1 : op->a_cs;
    k.b_rs = op->b_rs, k.b_cs = op->b_cs, k.prec = prec;
    return k;
}

/* The bf16 operands of op into *a, *b: the caller's copies, or converted into the workspace. `shared` (or NULL) is
 * a bf16 copy of A made for an earlier product over the same array. */
static int bf16_operands(workspace *w, const jl_mm_op *op, const uint16_t *shared, const void **a, const void **b) {
    const a_plan ap = plan_a(op, JL_PREC_BF16);
    if (ap == A_CALLER_COPY || shared) {
        *a = shared ? shared : op->a16;
    } else {
        const size_t an = ap == A_SPAN_COPY ? a_span(op) : (size_t)op->M * op->K;
        if (reserve((void **)&w->abf, &w->abf_n, an * 2)) return 1;
        if (ap == A_SPAN_COPY) jl_to_bf16(op->a, w->abf, an);
        else to_bf16_strided(op->a, op->a_rs, op->a_cs, w->abf, op->M, op->K);
        *a = w->abf;
    }
    if (op->b16) {
        *b = op->b16;
    } else {
        const size_t bn = b_span(op);
        if (reserve((void **)&w->bbf, &w->bbf_n, bn * 2)) return 1;
        jl_to_bf16(op->b, w->bbf, bn);
        *b = w->bbf;
    }
    return 0;
}

static int run(workspace *w, const jl_mm_op *op, jl_precision prec, const uint16_t *shared) {
    prim_key k = make_key(op, prec);
    prim_entry *e = find_prim(w, &k);
    if (!e) return 1;
    const void *a = op->a, *b = op->b;
    if (prec == JL_PREC_BF16 && bf16_operands(w, op, shared, &a, &b)) return 1;
    if (reserve(&w->scratch, &w->scratch_n, e->scratch_bytes ? e->scratch_bytes : 64)) return 1;
    dnnl_memory_desc_t scratch_md;
    dnnl_dims_t sd = {(dnnl_dim_t)(e->scratch_bytes ? e->scratch_bytes : 1)};
    dnnl_memory_t am = NULL, bm = NULL, cm = NULL, biasm = NULL, sm = NULL;
    int bad = dnnl_memory_desc_init_by_tag(&scratch_md, 1, sd, dnnl_u8, dnnl_a) != dnnl_success ||
              dnnl_memory_create(&am, &e->a_md, engine, (void *)a) != dnnl_success ||
              dnnl_memory_create(&bm, &e->b_md, engine, (void *)b) != dnnl_success ||
              dnnl_memory_create(&cm, &e->c_md, engine, op->c) != dnnl_success ||
              dnnl_memory_create(&sm, &scratch_md, engine, w->scratch) != dnnl_success ||
              (op->bias && dnnl_memory_create(&biasm, &e->bias_md, engine, (void *)op->bias) != dnnl_success);
    if (!bad) {
        dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm},
                                   {DNNL_ARG_SCRATCHPAD, sm}, {DNNL_ARG_BIAS, biasm}};
        bad = dnnl_primitive_execute(e->prim, w->stream, op->bias ? 5 : 4, args) != dnnl_success ||
              dnnl_stream_wait(w->stream) != dnnl_success;
    }
    dnnl_memory_t mems[] = {am, bm, cm, biasm, sm};
    for (int i = 0; i < 5; i++)
        if (mems[i]) dnnl_memory_destroy(mems[i]);
    return bad;
}

int jl_dnnl_matmul(const jl_mm_op *op, jl_precision prec) { return jl_dnnl_matmul_seq(op, 1, prec) != 1; }

/* Whether op's A is ops0's A array (same base and span) so one bf16 copy of it serves both. */
static int same_a_array(const jl_mm_op *op, const jl_mm_op *ops0) {
    return op->a == ops0->a && !op->a16 && a_span(op) == a_span(ops0) && plan_a(op, JL_PREC_BF16) == A_SPAN_COPY &&
           plan_a(ops0, JL_PREC_BF16) == A_SPAN_COPY;
}

int jl_dnnl_matmul_seq(const jl_mm_op *ops, int n, jl_precision prec) {
    workspace *w = take_workspace();
    if (!w) return 0;
    int done = 0;
    const uint16_t *shared = NULL;
    for (; done < n; done++) {
        const jl_mm_op *op = &ops[done];
        if (op->M <= 0 || op->N <= 0 || op->K <= 0) break;
        if (run(w, op, prec, done > 0 && shared && same_a_array(op, &ops[0]) ? shared : NULL)) break;
        if (done == 0 && n > 1 && prec == JL_PREC_BF16 && plan_a(op, prec) == A_SPAN_COPY) {
            uint16_t *copy = w->abf; /* op 0's A copy moves to sbf, where the next products leave it */
            size_t copy_n = w->abf_n;
            w->abf = w->sbf, w->abf_n = w->sbf_n;
            w->sbf = copy, w->sbf_n = copy_n;
            shared = copy;
        }
    }
    give_back(w);
    return done;
}

const char *jl_dnnl_impl(jl_precision prec) {
    static char names[2][64];
    char *name = names[prec == JL_PREC_BF16];
    workspace *w = take_workspace();
    snprintf(name, 64, "unavailable");
    if (!w) return name;
    const int M = 1024, K = 768, N = 2304;
    jl_mm_op op = {.M = M, .N = N, .K = K, .a_rs = K, .a_cs = 1, .b_rs = 1, .b_cs = K, .ldc = N};
    prim_key k = make_key(&op, prec);
    prim_entry *e = find_prim(w, &k);
    if (e) snprintf(name, 64, "%s", e->impl);
    give_back(w);
    return name;
}
