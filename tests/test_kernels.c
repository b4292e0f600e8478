/* Numeric kernels: forward results against naive double-precision references, every backward against
 * central finite differences of a random projection L = Σ out·r, and the accumulate (+=) contract. */
#include "testutil.h"
#include "core/kernels.h"
#include "core/rng.h"
#include "core/vexp.h"
#include <math.h>
#include <omp.h>

/* ---------- helpers ---------- */

static float *alloc_floats(size_t n) {
    float *x = calloc(n ? n : 1, sizeof *x);
    assert_non_null(x);
    return x;
}

static float *random_floats(jl_rng *rng, size_t n, float scale) {
    float *x = alloc_floats(n);
    for (size_t i = 0; i < n; i++) x[i] = scale * jl_rng_normal(rng);
    return x;
}

static float *copy_floats(const float *src, size_t n) {
    float *x = alloc_floats(n);
    memcpy(x, src, n * sizeof *x);
    return x;
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* |got - want| ≤ atol + rtol·max(|got|, |want|) for every element; prints the first few misses. */
static void assert_close(const char *what, const float *got, const double *want, size_t n, double rtol, double atol) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)got[i] - want[i]);
        if (!(diff <= atol + rtol * fmax(fabs((double)got[i]), fabs(want[i])))) {
            if (bad < 5) print_message("%s[%zu]: got %.8g, want %.8g\n", what, i, (double)got[i], want[i]);
            bad++;
        }
    }
    if (bad) print_message("%s: %d of %zu elements off\n", what, bad, n);
    assert_int_equal(bad, 0);
}

static void assert_close_f(const char *what, const float *got, const float *want, size_t n, double rtol, double atol) {
    double *w = malloc(n * sizeof *w);
    assert_non_null(w);
    for (size_t i = 0; i < n; i++) w[i] = want[i];
    assert_close(what, got, w, n, rtol, atol);
    free(w);
}

/* A forward pass as the gradient check sees it: recompute the outputs from the current inputs and
 * return L = Σ out·r. */
typedef double (*loss_fn)(void *ctx);

/* Central differences on every element of x against the analytic gradient. The step is taken as the
 * float difference actually stored, so rounding of x ± eps does not bias the quotient. */
static void check_gradient(const char *what, loss_fn loss, void *ctx, float *x, const float *grad, size_t n,
                           float eps) {
    const double rtol = 2e-2, atol = 2e-3;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float saved = x[i], up = saved + eps, down = saved - eps;
        x[i] = up;
        double loss_up = loss(ctx);
        x[i] = down;
        double loss_down = loss(ctx);
        x[i] = saved;
        double numeric = (loss_up - loss_down) / ((double)up - (double)down);
        double diff = fabs(numeric - grad[i]);
        if (!(diff <= atol + rtol * fmax(fabs(numeric), fabs((double)grad[i])))) {
            if (bad < 5) print_message("%s[%zu]: analytic %.6g, numeric %.6g\n", what, i, (double)grad[i], numeric);
            bad++;
        }
    }
    if (bad) print_message("%s: %d of %zu gradient elements off\n", what, bad, n);
    assert_int_equal(bad, 0);
}

/* After two backward calls on zeroed buffers, `twice` must be 2 × the one-call gradient `once`. */
static void assert_doubled(const char *what, const float *twice, const float *once, size_t n) {
    double *want = malloc(n * sizeof *want);
    assert_non_null(want);
    for (size_t i = 0; i < n; i++) want[i] = 2.0 * once[i];
    assert_close(what, twice, want, n, 1e-5, 1e-6);
    free(want);
}

static void assert_all_zero(const char *what, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (x[i] != 0.0f) {
            print_message("%s[%zu] = %g, want 0\n", what, i, (double)x[i]);
            fail();
        }
}

/* ---------- matmul ---------- */

typedef struct {
    int N, C, OC;
    float *inp, *w, *bias, *out, *r;
} matmul_case;

static double matmul_loss(void *p) {
    matmul_case *m = p;
    jl_matmul_forward(m->out, m->inp, m->w, m->bias, m->N, m->C, m->OC);
    return dot(m->out, m->r, (size_t)m->N * m->OC);
}

static void naive_matmul(double *out, const float *inp, const float *w, const float *bias, int N, int C, int OC) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = bias ? bias[o] : 0.0;
            for (int c = 0; c < C; c++) s += (double)inp[n * C + c] * w[o * C + c];
            out[n * OC + o] = s;
        }
}

static void test_matmul_forward_matches_naive(void **state) {
    (void)state;
    jl_rng rng;
    jl_rng_seed(&rng, 1);
    const int N = 67, C = 96, OC = 130; /* large enough for OpenBLAS's blocked path */
    float *inp = random_floats(&rng, (size_t)N * C, 1.0f), *w = random_floats(&rng, (size_t)OC * C, 1.0f);
    float *bias = random_floats(&rng, OC, 1.0f), *out = alloc_floats((size_t)N * OC);
    double *want = malloc((size_t)N * OC * sizeof *want);
    assert_non_null(want);
    naive_matmul(want, inp, w, bias, N, C, OC);
    jl_matmul_forward(out, inp, w, bias, N, C, OC);
    assert_close("matmul+bias", out, want, (size_t)N * OC, 1e-4, 1e-4);
    naive_matmul(want, inp, w, NULL, N, C, OC);
    jl_matmul_forward(out, inp, w, NULL, N, C, OC);
    assert_close("matmul", out, want, (size_t)N * OC, 1e-4, 1e-4);
    free(inp), free(w), free(bias), free(out), free(want);
}

static void test_matmul_backward_gradcheck(void **state) {
    (void)state;
    jl_rng rng;
    jl_rng_seed(&rng, 2);
    matmul_case m = {.N = 5, .C = 7, .OC = 6};
    size_t ni = (size_t)m.N * m.C, nw = (size_t)m.OC * m.C, no = (size_t)m.N * m.OC;
    m.inp = random_floats(&rng, ni, 1.0f), m.w = random_floats(&rng, nw, 1.0f);
    m.bias = random_floats(&rng, m.OC, 1.0f), m.out = alloc_floats(no), m.r = random_floats(&rng, no, 1.0f);
    float *dinp = alloc_floats(ni), *dw = alloc_floats(nw), *dbias = alloc_floats(m.OC);

    jl_matmul_backward(dinp, dw, dbias, m.r, m.inp, m.w, m.N, m.C, m.OC);
    float *dinp1 = copy_floats(dinp, ni), *dw1 = copy_floats(dw, nw), *dbias1 = copy_floats(dbias, m.OC);
    jl_matmul_backward(dinp, dw, dbias, m.r, m.inp, m.w, m.N, m.C, m.OC);
    assert_doubled("matmul dinp", dinp, dinp1, ni);
    assert_doubled("matmul dw", dw, dw1, nw);
    assert_doubled("matmul dbias", dbias, dbias1, m.OC);

    check_gradient("matmul dinp", matmul_loss, &m, m.inp, dinp1, ni, 1e-2f);
    check_gradient("matmul dw", matmul_loss, &m, m.w, dw1, nw, 1e-2f);
    check_gradient("matmul dbias", matmul_loss, &m, m.bias, dbias1, m.OC, 1e-2f);

    /* NULL skips a gradient and leaves the others as they would be */
    memset(dw, 0, nw * sizeof *dw);
    jl_matmul_backward(NULL, dw, NULL, m.r, m.inp, m.w, m.N, m.C, m.OC);
    assert_close_f("matmul dw alone", dw, dw1, nw, 1e-6, 1e-7);

    free(m.inp), free(m.w), free(m.bias), free(m.out), free(m.r);
    free(dinp), free(dw), free(dbias), free(dinp1), free(dw1), free(dbias1);
}

/* ---------- embeddings ---------- */

typedef struct {
    int N, C, B, T, pos0;
    const int32_t *tokens;
    float *table, *out, *base, *r;
} embed_case;

static double embedding_loss(void *p) {
    embed_case *e = p;
    jl_embedding_forward(e->out, e->tokens, e->table, e->N, e->C);
    return dot(e->out, e->r, (size_t)e->N * e->C);
}

static void test_embedding_forward_backward(void **state) {
    (void)state;
    jl_rng rng;
    jl_rng_seed(&rng, 3);
    const int V = 9, N = 8, C = 70; /* C spans two channel blocks of the backward */
    const int32_t tokens[] = {3, 0, 8, 3, 3, 5, 0, 1}; /* repeats must add up */
    embed_case e = {.N = N, .C = C, .tokens = tokens};
    e.table = random_floats(&rng, (size_t)V * C, 1.0f), e.out = alloc_floats((size_t)N * C);
    e.r = random_floats(&rng, (size_t)N * C, 1.0f);
    jl_embedding_forward(e.out, tokens, e.table, N, C);
    for (int n = 0; n < N; n++)
        assert_memory_equal(e.out + (size_t)n * C, e.table + (size_t)tokens[n] * C, (size_t)C * sizeof(float));

    float *dwte = alloc_floats((size_t)V * C);
    jl_embedding_backward(dwte, e.r, tokens, N, C);
    float *dwte1 = copy_floats(dwte, (size_t)V * C);
    jl_embedding_backward(dwte, e.r, tokens, N, C);
    assert_doubled("embedding dwte", dwte, dwte1, (size_t)V * C);
    check_gradient("embedding dwte", embedding_loss, &e, e.table, dwte1, (size_t)V * C, 1e-2f);
    assert_all_zero("dwte of unused token 2", dwte1 + 2 * C, C);
    free(e.table), free(e.out), free(e.r), free(dwte), free(dwte1);
}

static double posemb_loss(void *p) {
    embed_case *e = p;
    size_t n = (size_t)e->B * e->T * e->C;
    memcpy(e->out, e->base, n * sizeof *e->out);
    jl_posemb_forward(e->out, e->table, e->B, e->T, e->C, e->pos0);
    return dot(e->out, e->r, n);
}

static void test_posemb_forward_backward(void **state) {
    (void)state;
    jl_rng rng;
    jl_rng_seed(&rng, 4);
    const int B = 2, T = 3, C = 5, max_T = 7, pos0 = 2;
    size_t n = (size_t)B * T * C;
    embed_case e = {.B = B, .T = T, .C = C, .pos0 = pos0};
    e.table = random_floats(&rng, (size_t)max_T * C, 1.0f), e.base = random_floats(&rng, n, 1.0f);
    e.out = alloc_floats(n), e.r = random_floats(&rng, n, 1.0f);
    posemb_loss(&e);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) {
                size_t i = ((size_t)b * T + t) * C + c;
                assert_true(e.out[i] == e.base[i] + e.table[(pos0 + t) * C + c]);
            }
    float *dwpe = alloc_floats((size_t)max_T * C);
    jl_posemb_backward(dwpe, e.r, B, T, C, pos0);
    float *dwpe1 = copy_floats(dwpe, (size_t)max_T * C);
    jl_posemb_backward(dwpe, e.r, B, T, C, pos0);
    assert_doubled("posemb dwpe", dwpe, dwpe1, (size_t)max_T * C);
    check_gradient("posemb dwpe", posemb_loss, &e, e.table, dwpe1, (size_t)max_T * C, 1e-2f);
    assert_all_zero("dwpe before pos0", dwpe1, (size_t)pos0 * C);
    assert_all_zero("dwpe after the window", dwpe1 + (size_t)(pos0 + T) * C, (size_t)(max_T - pos0 - T) * C);
    free(e.table), free(e.base), free(e.out), free(e.r), free(dwpe), free(dwpe1);
}

/* ---------- norms ---------- */

typedef struct {
    int N, C, layer; /* layer: LayerNorm, else RMSNorm */
    float *inp, *weight, *bias, *out, *mean, *rstd, *r;
} norm_case;

static double norm_loss(void *p) {
    norm_case *c = p;
    if (c->layer)
        jl_layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->weight, c->bias, c->N, c->C, 1e-5f);
    else
        jl_rmsnorm_forward(c->out, c->rstd, c->inp, c->weight, c->N, c->C, 1e-5f);
    return dot(c->out, c->r, (size_t)c->N * c->C);
}

static void naive_norm(double *out, const norm_case *c) {
    for (int n = 0; n < c->N; n++) {
        const float *x = c->inp + (size_t)n * c->C;
        double mean = 0, var = 0;
        if (c->layer) {
            for (int i = 0; i < c->C; i++) mean += x[i];
            mean /= c->C;
        }
        for (int i = 0; i < c->C; i++) var += (x[i] - mean) * (x[i] - mean);
        double rstd = 1.0 / sqrt(var / c->C + 1e-5);
        for (int i = 0; i < c->C; i++)
            out[(size_t)n * c->C + i] = (x[i] - mean) * rstd * c->weight[i] + (c->layer ? c->bias[i] : 0.0);
    }
}

/* Backward at the mean/rstd the last forward call left in c. */
static void norm_backward(const norm_case *c, float *dinp, float *dw, float *db) {
    if (c->layer)
        jl_layernorm_backward(dinp, dw, db, c->r, c->inp, c->weight, c->mean, c->rstd, c->N, c->C);
    else
        jl_rmsnorm_backward(dinp, dw, c->r, c->inp, c->weight, c->rstd, c->N, c->C);
}

static void run_norm_case(int layer, int C) {
    jl_rng rng;
    jl_rng_seed(&rng, 5 + layer);
    norm_case c = {.N = 4, .C = C, .layer = layer};
    size_t n = (size_t)c.N * C;
    c.inp = random_floats(&rng, n, 1.0f);
    for (size_t i = 0; i < n; i++) c.inp[i] += 0.5f; /* a non-zero mean, so LayerNorm's centring matters */
    c.weight = random_floats(&rng, C, 1.0f), c.bias = random_floats(&rng, C, 1.0f);
    c.out = alloc_floats(n), c.mean = alloc_floats(c.N), c.rstd = alloc_floats(c.N), c.r = random_floats(&rng, n, 1.0f);
    double *want = malloc(n * sizeof *want);
    assert_non_null(want);
    naive_norm(want, &c);
    norm_loss(&c);
    assert_close(layer ? "layernorm" : "rmsnorm", c.out, want, n, 1e-5, 1e-5);

    float *dinp = alloc_floats(n), *dw = alloc_floats(C), *db = alloc_floats(C);
    norm_backward(&c, dinp, dw, db);
    float *dinp1 = copy_floats(dinp, n), *dw1 = copy_floats(dw, C), *db1 = copy_floats(db, C);
    norm_backward(&c, dinp, dw, db);
    assert_doubled("norm dinp", dinp, dinp1, n);
    assert_doubled("norm dweight", dw, dw1, C);
    if (layer) assert_doubled("layernorm dbias", db, db1, C);

    check_gradient(layer ? "layernorm dinp" : "rmsnorm dinp", norm_loss, &c, c.inp, dinp1, n, 1e-2f);
    check_gradient(layer ? "layernorm dweight" : "rmsnorm dweight", norm_loss, &c, c.weight, dw1, C, 1e-2f);
    if (layer) check_gradient("layernorm dbias", norm_loss, &c, c.bias, db1, C, 1e-2f);
    free(want), free(c.inp), free(c.weight), free(c.bias), free(c.out), free(c.mean), free(c.rstd), free(c.r);
    free(dinp), free(dw), free(db), free(dinp1), free(dw1), free(db1);
}

static void test_rmsnorm(void **state) {
    (void)state;
    run_norm_case(0, 9);
    run_norm_case(0, 70);
}

static void test_layernorm(void **state) {
    (void)state;
    run_norm_case(1, 9);
    run_norm_case(1, 70);
}

/* ---------- rope ---------- */

static void test_rope_table_values(void **state) {
    (void)state;
    const int max_T = 40, hs = 16;
    const double theta = 10000.0;
    float *table = alloc_floats((size_t)max_T * hs);
    jl_rope_table(table, max_T, hs, (float)theta);
    for (int pos = 0; pos < max_T; pos++)
        for (int i = 0; i < hs / 2; i++) {
            double angle = pos * pow(theta, -2.0 * i / hs);
            assert_true(fabs(table[pos * hs + i] - cos(angle)) < 1e-6);
            assert_true(fabs(table[pos * hs + hs / 2 + i] - sin(angle)) < 1e-6);
        }
    free(table);
}

/* Rotates (x[i], x[i + hs/2]) of one head by pos·theta^(-2i/hs), in double. */
static void naive_rope_head(double *out, const float *x, int hs, int pos, double theta) {
    for (int i = 0; i < hs / 2; i++) {
        double a = pos * pow(theta, -2.0 * i / hs), x1 = x[i], x2 = x[i + hs / 2];
        out[i] = x1 * cos(a) - x2 * sin(a);
        out[i + hs / 2] = x2 * cos(a) + x1 * sin(a);
    }
}

/* q and k rotated in place inside a packed qkv buffer (token stride S); v must be left alone. */
static void test_rope_forward_on_packed_qkv(void **state) {
    (void)state;
    jl_rng rng;
    jl_rng_seed(&rng, 7);
    const int B = 2, T = 5, nh = 4, nkv = 2, hs = 8, S = (nh + 2 * nkv) * hs, pos0 = 3, max_T = 16;
    float *table = alloc_floats((size_t)max_T * hs);
    jl_rope_table(table, max_T, hs, 10000.0f);
    size_t n = (size_t)B * T * S;
    float *qkv = random_floats(&rng, n, 1.0f), *orig = copy_floats(qkv, n);
    jl_rope_forward(qkv, table, B, T, nh, hs, S, pos0);
    jl_rope_forward(qkv + nh * hs, table, B, T, nkv, hs, S, pos0);
    double want[8];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t tok = ((size_t)b * T + t) * S;
            for (int h = 0; h < nh + nkv; h++) {
                naive_rope_head(want, orig + tok + (size_t)h * hs, hs, pos0 + t, 10000.0);
                assert_close("rope q/k", qkv + tok + (size_t)h * hs, want, hs, 1e-5, 1e-6);
            }
            assert_memory_equal(qkv + tok + (nh + nkv) * hs, orig + tok + (nh + nkv) * hs, (size_t)nkv * hs * 4);
        }
    free(table), free(qkv), free(orig);
}

typedef struct {
    int B, T, nheads, hs, stride, pos0;
    const float *table;
    float *x, *out, *r;
} rope_case;

static double rope_loss(void *p) {
    rope_case *c = p;
    size_t n = (size_t)c->B * c->T * c->stride;
    memcpy(c->out, c->x, n * sizeof *c->out);
    jl_rope_forward(c->out, c->table, c->B, c->T, c->nheads, c->hs, c->stride, c->pos0);
    return dot(c->out, c->r, n);
}

static void test_rope_backward_gradcheck(void **state) {
    (void)state;
    jl_rng rng;
    jl_rng_seed(&rng, 8);
    const int max_T = 12;
    rope_case c = {.B = 2, .T = 4, .nheads = 3, .hs = 6, .stride = 24, .pos0 = 5}; /* 6 spare floats per token */
    float *table = alloc_floats((size_t)max_T * c.hs);
    jl_rope_table(table, max_T, c.hs, 100.0f);
    c.table = table;
    size_t n = (size_t)c.B * c.T * c.stride;
    c.x = random_floats(&rng, n, 1.0f), c.out = alloc_floats(n), c.r = random_floats(&rng, n, 1.0f);
    /* In-place gradient: the spare floats are not rotated, so their gradient is the incoming one. */
    float *grad = copy_floats(c.r, n);
    jl_rope_backward(grad, table, c.B, c.T, c.nheads, c.hs, c.stride, c.pos0);
    check_gradient("rope dx", rope_loss, &c, c.x, grad, n, 1e-2f);
    /* forward then backward is the identity */
    float *y = copy_floats(c.x, n);
    jl_rope_forward(y, table, c.B, c.T, c.nheads, c.hs, c.stride, c.pos0);
    jl_rope_backward(y, table, c.B, c.T, c.nheads, c.hs, c.stride, c.pos0);
    assert_close_f("rope round trip", y, c.x, n, 1e-5, 1e-6);
    free(table), free(c.x), free(c.out), free(c.r), free(grad), free(y);
}

/* ---------- attention ---------- */

typedef struct {
    int B, T, nh, nkv, hs;
    float *qkv, *out, *att, *r;
    const int32_t *start; /* segment starts (B,T) of packed rows, or NULL */
} attn_case;

static size_t attn_qkv_size(const attn_case *a) { return (size_t)a->B * a->T * (a->nh + 2 * a->nkv) * a->hs; }
static size_t attn_out_size(const attn_case *a) { return (size_t)a->B * a->T * a->nh * a->hs; }
static size_t attn_att_size(const attn_case *a) { return (size_t)a->B * a->nh * a->T * a->T; }

static void attn_alloc(attn_case *a, jl_rng *rng) {
    a->qkv = random_floats(rng, attn_qkv_size(a), 1.0f);
    a->out = alloc_floats(attn_out_size(a));
    a->att = alloc_floats(attn_att_size(a));
    a->r = random_floats(rng, attn_out_size(a), 1.0f);
}

static void attn_free(attn_case *a) { free(a->qkv), free(a->out), free(a->att), free(a->r); }

static double attention_loss(void *p) {
    attn_case *a = p;
    jl_attention_forward_seg(a->out, a->att, a->qkv, a->B, a->T, a->nh, a->nkv, a->hs, a->start);
    return dot(a->out, a->r, attn_out_size(a));
}

/* Direct triple loop in double: out(b,t,h) = Σ_{s≤j≤t} softmax_j(q_t·k_j / √hs) v_j, s = the start of t's
 * segment (0 without segments). */
static void naive_attention(double *out, double *att, const attn_case *a) {
    const int S = (a->nh + 2 * a->nkv) * a->hs, hs = a->hs, T = a->T;
    double *score = malloc((size_t)T * sizeof *score);
    assert_non_null(score);
    for (int b = 0; b < a->B; b++)
        for (int h = 0; h < a->nh; h++) {
            int kvh = h / (a->nh / a->nkv);
            for (int t = 0; t < T; t++) {
                const float *q = a->qkv + ((size_t)b * T + t) * S + h * hs;
                const int s0 = a->start ? a->start[(size_t)b * T + t] : 0;
                double maxv = -INFINITY, sum = 0;
                for (int j = s0; j <= t; j++) {
                    const float *k = a->qkv + ((size_t)b * T + j) * S + (a->nh + kvh) * hs;
                    double s = 0;
                    for (int i = 0; i < hs; i++) s += (double)q[i] * k[i];
                    score[j] = s / sqrt((double)hs);
                    maxv = fmax(maxv, score[j]);
                }
                for (int j = s0; j <= t; j++) sum += (score[j] = exp(score[j] - maxv));
                double *arow = att + (((size_t)b * a->nh + h) * T + t) * T;
                for (int j = 0; j < T; j++) arow[j] = j >= s0 && j <= t ? score[j] / sum : 0.0;
                double *o = out + ((size_t)b * T + t) * a->nh * hs + h * hs;
                for (int i = 0; i < hs; i++) {
                    o[i] = 0;
                    for (int j = s0; j <= t; j++)
                        o[i] += arow[j] * a->qkv[((size_t)b * T + j) * S + (a->nh + a->nkv + kvh) * hs + i];
                }
            }
        }
    free(score);
}

static void check_attention_forward_seg(int B, int T, int nh, int nkv, int hs, const int32_t *start) {
    jl_rng rng;
    jl_rng_seed(&rng, 9 + T);
    attn_case a = {.B = B, .T = T, .nh = nh, .nkv = nkv, .hs = hs, .start = start};
    attn_alloc(&a, &rng);
    double *want_out = malloc(attn_out_size(&a) * sizeof(double)), *want_att = malloc(attn_att_size(&a) * sizeof(double));
    assert_non_null(want_out);
    assert_non_null(want_att);
    naive_attention(want_out, want_att, &a);
    attention_loss(&a);
    assert_close("attention out", a.out, want_out, attn_out_size(&a), 1e-4, 1e-5);
    assert_close("attention att", a.att, want_att, attn_att_size(&a), 1e-4, 1e-6);
    for (size_t row = 0; row < (size_t)B * nh * T; row++) { /* zero outside [segment start, t] exactly */
        size_t b = row / ((size_t)nh * T), t = row % T;
        int s0 = start ? start[b * T + t] : 0;
        for (int j = 0; j < T; j++)
            if (j < s0 || j > (int)t) assert_true(a.att[row * T + j] == 0.0f);
    }
    free(want_out), free(want_att);
    attn_free(&a);
}

static void check_attention_forward(int B, int T, int nh, int nkv, int hs) {
    check_attention_forward_seg(B, T, nh, nkv, hs, NULL);
}

static void test_attention_forward_matches_naive(void **state) {
    (void)state;
    check_attention_forward(2, 7, 4, 4, 8);   /* MHA */
    check_attention_forward(2, 7, 4, 2, 8);   /* GQA */
    check_attention_forward(1, 150, 4, 1, 16); /* MQA, several causal blocks, ragged last block */
}

static void check_attention_gradient_seg(int B, int T, int nh, int nkv, int hs, const int32_t *start) {
    jl_rng rng;
    jl_rng_seed(&rng, 10 + nkv);
    attn_case a = {.B = B, .T = T, .nh = nh, .nkv = nkv, .hs = hs, .start = start};
    attn_alloc(&a, &rng);
    size_t nq = attn_qkv_size(&a);
    float *dqkv = alloc_floats(nq), *datt = alloc_floats(attn_att_size(&a));
    attention_loss(&a);
    jl_attention_backward_seg(dqkv, datt, a.r, a.qkv, a.att, B, T, nh, nkv, hs, start);
    float *dqkv1 = copy_floats(dqkv, nq);
    jl_attention_backward_seg(dqkv, datt, a.r, a.qkv, a.att, B, T, nh, nkv, hs, start);
    assert_doubled("attention dqkv", dqkv, dqkv1, nq);
    check_gradient("attention dqkv", attention_loss, &a, a.qkv, dqkv1, nq, 1e-2f);
    free(dqkv), free(datt), free(dqkv1);
    attn_free(&a);
}

static void check_attention_gradient(int B, int T, int nh, int nkv, int hs) {
    check_attention_gradient_seg(B, T, nh, nkv, hs, NULL);
}

static void test_attention_backward_gradcheck_mha(void **state) {
    (void)state;
    check_attention_gradient(2, 6, 4, 4, 8);
}

static void test_attention_backward_gradcheck_gqa(void **state) {
    (void)state;
    check_attention_gradient(2, 6, 4, 2, 8);
    check_attention_gradient(1, 70, 4, 2, 4); /* crosses a causal block boundary */
}

/* The output at position t must not change, not even in the last bit, when any later token changes. */
static void test_attention_is_causal(void **state) {
    (void)state;
    jl_rng rng;
    jl_rng_seed(&rng, 11);
    attn_case a = {.B = 1, .T = 70, .nh = 4, .nkv = 2, .hs = 8};
    attn_alloc(&a, &rng);
    const int S = (a.nh + 2 * a.nkv) * a.hs, D = a.nh * a.hs;
    attention_loss(&a);
    float *ref = copy_floats(a.out, attn_out_size(&a)), *orig = copy_floats(a.qkv, attn_qkv_size(&a));
    const int cuts[] = {0, 31, 63, 64, 68};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        int t = cuts[c];
        memcpy(a.qkv, orig, attn_qkv_size(&a) * sizeof(float));
        for (size_t i = (size_t)(t + 1) * S; i < attn_qkv_size(&a); i++) a.qkv[i] += jl_rng_normal(&rng);
        attention_loss(&a);
        assert_memory_equal(a.out, ref, (size_t)(t + 1) * D * sizeof(float));
        assert_true(memcmp(a.out + (size_t)(t + 1) * D, ref + (size_t)(t + 1) * D, (size_t)D * sizeof(float)) != 0);
    }
    free(ref), free(orig);
    attn_free(&a);
}

/* Same inputs, same thread count: bitwise the same outputs and gradients. */
static void test_attention_deterministic(void **state) {
    (void)state;
    jl_rng rng;
    jl_rng_seed(&rng, 12);
    attn_case a = {.B = 3, .T = 80, .nh = 4, .nkv = 2, .hs = 16};
    attn_alloc(&a, &rng);
    size_t nq = attn_qkv_size(&a), no = attn_out_size(&a), na = attn_att_size(&a);
    float *out1 = alloc_floats(no), *dq1 = alloc_floats(nq), *dq2 = alloc_floats(nq), *datt = alloc_floats(na);
    attention_loss(&a);
    memcpy(out1, a.out, no * sizeof(float));
    jl_attention_backward(dq1, datt, a.r, a.qkv, a.att, a.B, a.T, a.nh, a.nkv, a.hs);
    attention_loss(&a);
    assert_memory_equal(a.out, out1, no * sizeof(float));
    jl_attention_backward(dq2, datt, a.r, a.qkv, a.att, a.B, a.T, a.nh, a.nkv, a.hs);
    assert_memory_equal(dq1, dq2, nq * sizeof(float));
    free(out1), free(dq1), free(dq2), free(datt);
    attn_free(&a);
}

/* ---------- packed rows: block-diagonal causal attention, positions per segment ---------- */

/* Segment starts of B rows of T, row b cut into segments of the lengths lens[b] (0-terminated); what is left
 * of a row after its list is one more segment (the padding). */
static int32_t *segments_of(int B, int T, const int *const *lens) {
    int32_t *start = calloc((size_t)B * T, sizeof *start);
    assert_non_null(start);
    for (int b = 0; b < B; b++) {
        int t = 0;
        for (const int *l = lens[b]; *l && t < T; l++)
            for (int i = 0; i < *l && t < T; i++, t++) start[(size_t)b * T + t] = t - i;
        for (int t0 = t; t < T; t++) start[(size_t)b * T + t] = t0;
    }
    assert_true(jl_segments_valid(start, B, T, NULL));
    return start;
}

static void test_segments_valid(void **state) {
    (void)state;
    const int32_t one_row[] = {0, 1, 1, 1, 4, 4}, two_rows[] = {0, 0, 2, 0, 1, 1};
    const int32_t no_resume[] = {0, 0, 2, 1, 4, 4}, carried[] = {0, 1, 1, 1, 1, 1}, first[] = {1, 1, 1};
    long bad = -1;
    assert_true(jl_segments_valid(one_row, 1, 6, &bad));
    assert_true(jl_segments_valid(two_rows, 2, 3, &bad));
    assert_false(jl_segments_valid(no_resume, 1, 6, &bad)); /* a segment cannot come back after another */
    assert_int_equal(bad, 3);
    assert_false(jl_segments_valid(carried, 2, 3, &bad)); /* nor run on into the next row */
    assert_int_equal(bad, 3);
    assert_false(jl_segments_valid(first, 1, 3, &bad));
    assert_int_equal(bad, 0);
}

/* Segments of length 1, segments across the 64-row blocks, a segment starting on a block boundary, and the
 * padding tail as its own segment. */
static const int row_a[] = {30, 70, 1, 20, 0}, row_b[] = {64, 1, 64, 0};

static void test_attention_segments_match_naive(void **state) {
    (void)state;
    const int *const lens[] = {row_a, row_b};
    int32_t *start = segments_of(2, 150, lens);
    check_attention_forward_seg(2, 150, 4, 2, 8, start);
    free(start);
    const int small_a[] = {2, 3, 0}, small_b[] = {1, 1, 1, 1, 0};
    const int *const small[] = {small_a, small_b};
    start = segments_of(2, 7, small);
    check_attention_forward_seg(2, 7, 4, 4, 8, start);
    free(start);
}

static void test_attention_segments_gradcheck(void **state) {
    (void)state;
    const int small_a[] = {2, 3, 0}, small_b[] = {1, 4, 0};
    const int *const small[] = {small_a, small_b};
    int32_t *start = segments_of(2, 6, small);
    check_attention_gradient_seg(2, 6, 4, 2, 8, start);
    free(start);
    const int long_a[] = {5, 40, 25, 0}; /* the 40 crosses the block boundary at 64 */
    const int *const longer[] = {long_a};
    start = segments_of(1, 70, longer);
    check_attention_gradient_seg(1, 70, 4, 2, 4, start);
    free(start);
}

/* One row of PK_T packed with sequences of 20, 50 and 70 (the 50 spans the block boundary at 64; 10 of padding):
 * random q, k, v and output gradient, then the attention forward and the segment-aware backward (dqkv cleared
 * first). The set-up shared by the two tests below. */
enum { PK_NH = 4, PK_NKV = 2, PK_HS = 8, PK_S = (PK_NH + 2 * PK_NKV) * PK_HS, PK_D = PK_NH * PK_HS, PK_T = 150 };
static const int packed_lens[] = {20, 50, 70, 0};

typedef struct {
    attn_case a;
    int32_t *start;
    float *dqkv, *datt;
} packed_row;

static void packed_row_backward(packed_row *p) {
    memset(p->dqkv, 0, attn_qkv_size(&p->a) * sizeof *p->dqkv);
    attention_loss(&p->a);
    jl_attention_backward_seg(p->dqkv, p->datt, p->a.r, p->a.qkv, p->a.att, 1, PK_T, PK_NH, PK_NKV, PK_HS, p->start);
}

static void packed_row_make(packed_row *p, jl_rng *rng) {
    const int *const rows[] = {packed_lens};
    p->start = segments_of(1, PK_T, rows);
    p->a = (attn_case){.B = 1, .T = PK_T, .nh = PK_NH, .nkv = PK_NKV, .hs = PK_HS, .start = p->start};
    attn_alloc(&p->a, rng);
    p->dqkv = alloc_floats(attn_qkv_size(&p->a));
    p->datt = alloc_floats(attn_att_size(&p->a));
    packed_row_backward(p);
}

static void packed_row_free(packed_row *p) {
    free(p->dqkv), free(p->datt), free(p->start);
    attn_free(&p->a);
}

/* Sequences packed into one row give what each gives alone in its own row: outputs, and the gradient of
 * the same projection of them. */
static void test_attention_packed_row_equals_separate_rows(void **state) {
    (void)state;
    jl_rng rng;
    jl_rng_seed(&rng, 21);
    packed_row p;
    packed_row_make(&p, &rng);
    for (int i = 0, t0 = 0; packed_lens[i]; t0 += packed_lens[i++]) {
        const int n = packed_lens[i];
        attn_case one = {.B = 1, .T = n, .nh = PK_NH, .nkv = PK_NKV, .hs = PK_HS};
        attn_alloc(&one, &rng);
        memcpy(one.qkv, p.a.qkv + (size_t)t0 * PK_S, (size_t)n * PK_S * sizeof(float));
        memcpy(one.r, p.a.r + (size_t)t0 * PK_D, (size_t)n * PK_D * sizeof(float));
        float *dq1 = alloc_floats(attn_qkv_size(&one)), *datt1 = alloc_floats(attn_att_size(&one));
        attention_loss(&one);
        jl_attention_backward(dq1, datt1, one.r, one.qkv, one.att, 1, n, PK_NH, PK_NKV, PK_HS);
        assert_close_f("packed attention out", p.a.out + (size_t)t0 * PK_D, one.out, (size_t)n * PK_D, 1e-5, 1e-6);
        assert_close_f("packed attention dqkv", p.dqkv + (size_t)t0 * PK_S, dq1, (size_t)n * PK_S, 1e-5, 1e-6);
        free(dq1), free(datt1);
        attn_free(&one);
    }
    packed_row_free(&p);
}

/* No product between two segments is computed: NaN in every q, k, v and output gradient of the middle
 * sequence of a packed row leaves the others' outputs and gradients finite and bit for bit what they are
 * without it (a kernel that multiplied a masked-out probability 0 by a NaN value would spread it). */
static void test_attention_segments_do_not_mix(void **state) {
    (void)state;
    jl_rng rng;
    jl_rng_seed(&rng, 23);
    packed_row p;
    packed_row_make(&p, &rng);
    float *out = copy_floats(p.a.out, attn_out_size(&p.a)), *dq_clean = copy_floats(p.dqkv, attn_qkv_size(&p.a));
    for (size_t i = (size_t)20 * PK_S; i < (size_t)70 * PK_S; i++) p.a.qkv[i] = NAN;
    for (size_t i = (size_t)20 * PK_D; i < (size_t)70 * PK_D; i++) p.a.r[i] = NAN;
    packed_row_backward(&p);
    const int keep[][2] = {{0, 20}, {70, PK_T}};
    for (int k = 0; k < 2; k++) {
        const size_t t0 = (size_t)keep[k][0], n = (size_t)(keep[k][1] - keep[k][0]);
        for (size_t i = t0 * PK_D; i < (t0 + n) * PK_D; i++) assert_true(isfinite(p.a.out[i]));
        for (size_t i = t0 * PK_S; i < (t0 + n) * PK_S; i++) assert_true(isfinite(p.dqkv[i]));
        assert_memory_equal(p.a.out + t0 * PK_D, out + t0 * PK_D, n * PK_D * sizeof(float));
        assert_memory_equal(p.dqkv + t0 * PK_S, dq_clean + t0 * PK_S, n * PK_S * sizeof(float));
    }
    free(out), free(dq_clean);
    packed_row_free(&p);
}

/* Positions restart in each segment: rope and learned positions of a packed row equal those of each
 * segment run from position 0; the learned-position gradient is checked against finite differences. */
static void test_positions_restart_per_segment(void **state) {
    (void)state;
    enum { T = 12, NH = 2, HS = 6, STRIDE = 14, C = 5 };
    const int lens[] = {5, 4, 0}; /* and 3 of padding */
    const int *const rows[] = {lens};
    int32_t *start = segments_of(1, T, rows);
    jl_rng rng;
    jl_rng_seed(&rng, 22);
    float *table = alloc_floats((size_t)T * HS);
    jl_rope_table(table, T, HS, 100.0f);
    float *x = random_floats(&rng, (size_t)T * STRIDE, 1.0f), *y = copy_floats(x, (size_t)T * STRIDE);
    jl_rope_forward_seg(y, table, 1, T, NH, HS, STRIDE, start);
    const int cuts[] = {0, 5, 9, T};
    for (int i = 0; i < 3; i++) {
        const int t0 = cuts[i], n = cuts[i + 1] - t0;
        float *want = copy_floats(x + (size_t)t0 * STRIDE, (size_t)n * STRIDE);
        jl_rope_forward(want, table, 1, n, NH, HS, STRIDE, 0);
        assert_memory_equal(y + (size_t)t0 * STRIDE, want, (size_t)n * STRIDE * sizeof(float));
        free(want);
    }
    jl_rope_backward_seg(y, table, 1, T, NH, HS, STRIDE, start);
    assert_close_f("rope seg round trip", y, x, (size_t)T * STRIDE, 1e-5, 1e-6);

    embed_case e = {.B = 1, .T = T, .C = C};
    e.table = random_floats(&rng, (size_t)T * C, 1.0f), e.base = random_floats(&rng, (size_t)T * C, 1.0f);
    e.out = alloc_floats((size_t)T * C), e.r = random_floats(&rng, (size_t)T * C, 1.0f);
    memcpy(e.out, e.base, (size_t)T * C * sizeof(float));
    jl_posemb_forward_seg(e.out, e.table, 1, T, C, start);
    for (int t = 0; t < T; t++)
        for (int c = 0; c < C; c++)
            assert_true(e.out[t * C + c] == e.base[t * C + c] + e.table[(t - start[t]) * C + c]);
    float *dwpe = alloc_floats((size_t)T * C);
    jl_posemb_backward_seg(dwpe, e.r, 1, T, C, start);
    for (int c = 0; c < C; c++) { /* position 0 is used by tokens 0, 5 and 9 */
        float want = e.r[0 * C + c] + e.r[5 * C + c] + e.r[9 * C + c];
        assert_true(fabsf(dwpe[c] - want) <= 1e-6f * (1 + fabsf(want)));
    }
    assert_all_zero("dwpe past the longest segment", dwpe + 5 * C, (size_t)(T - 5) * C);
    free(table), free(x), free(y), free(e.table), free(e.base), free(e.out), free(e.r), free(dwpe), free(start);
}

/* ---------- activations ---------- */

typedef struct {
    size_t n_in, n_out;
    int N, H, gelu;
    float *in, *out, *r;
} act_case;

static double act_loss(void *p) {
    act_case *c = p;
    if (c->gelu)
        jl_gelu_forward(c->out, c->in, c->n_in);
    else
        jl_swiglu_forward(c->out, c->in, c->N, c->H);
    return dot(c->out, c->r, c->n_out);
}

static void test_swiglu(void **state) {
    (void)state;
    jl_rng rng;
    jl_rng_seed(&rng, 13);
    act_case c = {.N = 3, .H = 21};
    c.n_in = (size_t)c.N * 2 * c.H, c.n_out = (size_t)c.N * c.H;
    c.in = random_floats(&rng, c.n_in, 2.0f), c.out = alloc_floats(c.n_out), c.r = random_floats(&rng, c.n_out, 1.0f);
    c.in[0] = -100.0f, c.in[1] = 100.0f; /* saturated sigmoid both ways */
    act_loss(&c);
    double *want = malloc(c.n_out * sizeof *want);
    assert_non_null(want);
    for (int n = 0; n < c.N; n++)
        for (int i = 0; i < c.H; i++) {
            double g = c.in[(size_t)n * 2 * c.H + i], u = c.in[(size_t)n * 2 * c.H + c.H + i];
            want[(size_t)n * c.H + i] = g / (1.0 + exp(-g)) * u;
        }
    assert_close("swiglu", c.out, want, c.n_out, 1e-5, 1e-6);
    float *d = alloc_floats(c.n_in);
    jl_swiglu_backward(d, c.r, c.in, c.N, c.H);
    float *d1 = copy_floats(d, c.n_in);
    jl_swiglu_backward(d, c.r, c.in, c.N, c.H);
    assert_doubled("swiglu dgate_up", d, d1, c.n_in);
    check_gradient("swiglu dgate_up", act_loss, &c, c.in, d1, c.n_in, 1e-2f);
    free(want), free(c.in), free(c.out), free(c.r), free(d), free(d1);
}

static void test_gelu(void **state) {
    (void)state;
    jl_rng rng;
    jl_rng_seed(&rng, 14);
    act_case c = {.n_in = 37, .n_out = 37, .gelu = 1};
    c.in = random_floats(&rng, c.n_in, 2.0f), c.out = alloc_floats(c.n_out), c.r = random_floats(&rng, c.n_out, 1.0f);
    c.in[0] = -12.0f, c.in[1] = 12.0f, c.in[2] = 0.0f, c.in[3] = 1e-4f;
    act_loss(&c);
    double *want = malloc(c.n_out * sizeof *want);
    assert_non_null(want);
    for (size_t i = 0; i < c.n_in; i++) {
        double x = c.in[i];
        want[i] = 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    }
    assert_close("gelu", c.out, want, c.n_out, 1e-5, 1e-6);
    float *d = alloc_floats(c.n_in);
    jl_gelu_backward(d, c.r, c.in, c.n_in);
    float *d1 = copy_floats(d, c.n_in);
    jl_gelu_backward(d, c.r, c.in, c.n_in);
    assert_doubled("gelu dinp", d, d1, c.n_in);
    check_gradient("gelu dinp", act_loss, &c, c.in, d1, c.n_in, 1e-2f);
    free(want), free(c.in), free(c.out), free(c.r), free(d), free(d1);
}

static void test_residual_in_place(void **state) {
    (void)state;
    jl_rng rng;
    jl_rng_seed(&rng, 15);
    const size_t n = 1001;
    float *a = random_floats(&rng, n, 1.0f), *b = random_floats(&rng, n, 1.0f), *a0 = copy_floats(a, n);
    float *out = alloc_floats(n);
    jl_residual_forward(out, a, b, n);
    for (size_t i = 0; i < n; i++) assert_true(out[i] == a[i] + b[i]);
    jl_residual_forward(a, a, b, n); /* out aliasing an input */
    assert_memory_equal(a, out, n * sizeof(float));
    assert_true(a0[0] + b[0] == a[0]);
    free(a), free(b), free(a0), free(out);
}

/* ---------- softmax and cross-entropy ---------- */

static void test_softmax_inplace(void **state) {
    (void)state;
    jl_rng rng;
    jl_rng_seed(&rng, 16);
    const int n = 77;
    float *x = random_floats(&rng, n, 3.0f);
    x[5] += 1000.0f; /* would overflow a naive exp */
    double want[77], maxv = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++) maxv = fmax(maxv, x[i]);
    for (int i = 0; i < n; i++) sum += (want[i] = exp(x[i] - maxv));
    for (int i = 0; i < n; i++) want[i] /= sum;
    jl_softmax_inplace(x, n);
    assert_close("softmax", x, want, n, 1e-5, 1e-7);
    free(x);
}

typedef struct {
    int N, V, Vp;
    float dscale;
    const int32_t *targets;
    float *logits, *losses;
} ce_case;

/* L = dscale · Σ losses, whose gradient is what the kernel writes into dlogits. */
static double ce_loss(void *p) {
    ce_case *c = p;
    return c->dscale * jl_crossentropy_forward_backward(c->losses, NULL, c->logits, c->targets, c->N, c->V, c->Vp,
                                                        c->dscale);
}

static double naive_ce_row(const float *logits, int V, int target) {
    double maxv = -INFINITY, sum = 0;
    for (int j = 0; j < V; j++) maxv = fmax(maxv, logits[j]);
    for (int j = 0; j < V; j++) sum += exp((double)logits[j] - maxv);
    return log(sum) + maxv - logits[target];
}

static void test_crossentropy(void **state) {
    (void)state;
    jl_rng rng;
    jl_rng_seed(&rng, 17);
    const int N = 6, V = 37, Vp = 48;
    const int32_t targets[] = {3, -1, 0, 36, -100, 17}; /* two ignored rows, both vocabulary ends */
    ce_case c = {.N = N, .V = V, .Vp = Vp, .dscale = 0.25f, .targets = targets};
    size_t n = (size_t)N * Vp;
    c.logits = random_floats(&rng, n, 2.0f);
    for (int row = 0; row < N; row++) /* padding that would dominate the softmax if it took part */
        for (int j = V; j < Vp; j++) c.logits[(size_t)row * Vp + j] = 50.0f;
    c.logits[2 * Vp + 7] = 80.0f; /* a large real logit: the row must stay finite */
    c.losses = alloc_floats(N);
    float *dlogits = alloc_floats(n);
    for (size_t i = 0; i < n; i++) dlogits[i] = 123.0f; /* every element must be written */

    double total = jl_crossentropy_forward_backward(c.losses, dlogits, c.logits, targets, N, V, Vp, c.dscale);
    double want_total = 0, want_losses[6];
    for (int row = 0; row < N; row++) {
        want_losses[row] = targets[row] < 0 ? 0.0 : naive_ce_row(c.logits + (size_t)row * Vp, V, targets[row]);
        want_total += want_losses[row];
    }
    assert_close("ce losses", c.losses, want_losses, N, 1e-5, 1e-6);
    assert_true(fabs(total - want_total) <= 1e-5 * want_total);
    assert_true(want_losses[2] > 40.0); /* the large logit is not the target, so row 2 costs ~80 */

    for (int row = 0; row < N; row++) {
        const float *d = dlogits + (size_t)row * Vp;
        assert_all_zero("ce padding gradient", d + V, Vp - V);
        if (targets[row] < 0) assert_all_zero("ce ignored row gradient", d, V);
        double sum = 0;
        for (int j = 0; j < V; j++) sum += d[j];
        assert_true(fabs(sum) < 1e-6); /* (softmax - onehot) sums to 0 */
    }
    check_gradient("ce dlogits", ce_loss, &c, c.logits, dlogits, n, 1e-2f);

    /* in place (dlogits aliasing logits) gives the same loss and gradient; no losses array is fine */
    float *inplace = copy_floats(c.logits, n);
    double total2 = jl_crossentropy_forward_backward(NULL, inplace, inplace, targets, N, V, Vp, c.dscale);
    assert_true(total2 == total);
    assert_memory_equal(inplace, dlogits, n * sizeof(float));
    /* without a gradient buffer: the same loss (up to the summation order of the Σexp sweep) */
    double loss_only = jl_crossentropy_forward_backward(NULL, NULL, c.logits, targets, N, V, Vp, 1.0f);
    assert_true(fabs(loss_only - total) <= 1e-6 * total);
    free(c.logits), free(c.losses), free(dlogits), free(inplace);
}

/* A long row (GPT-2-sized vocabulary) against double precision: the vectorised Σexp must hold up. */
static void test_crossentropy_long_rows(void **state) {
    (void)state;
    jl_rng rng;
    jl_rng_seed(&rng, 18);
    const int N = 3, V = 50257, Vp = 50304;
    float *logits = random_floats(&rng, (size_t)N * Vp, 3.0f), losses[3];
    const int32_t targets[] = {0, 50256, 12345};
    float *d = alloc_floats((size_t)N * Vp);
    double total = jl_crossentropy_forward_backward(losses, d, logits, targets, N, V, Vp, 1.0f);
    double want_total = 0;
    for (int row = 0; row < N; row++) {
        double want = naive_ce_row(logits + (size_t)row * Vp, V, targets[row]);
        assert_true(fabs(losses[row] - want) < 1e-4 * want);
        want_total += want;
        double sum = 0;
        for (int j = 0; j < Vp; j++) sum += d[(size_t)row * Vp + j];
        assert_true(fabs(sum) < 1e-4);
    }
    assert_true(fabs(total - want_total) < 1e-4 * want_total);
    free(logits), free(d);
}

/* ---------- optimizer helpers ---------- */

static void test_adamw_matches_scalar_reference(void **state) {
    (void)state;
    jl_rng rng;
    jl_rng_seed(&rng, 19);
    const size_t n = 1003;
    const float lr = 1e-2f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f;
    float *p = random_floats(&rng, n, 1.0f), *m = alloc_floats(n), *v = alloc_floats(n);
    double *rp = malloc(n * sizeof *rp), *rm = calloc(n, sizeof *rm), *rv = calloc(n, sizeof *rv);
    assert_non_null(rp);
    assert_non_null(rm);
    assert_non_null(rv);
    for (size_t i = 0; i < n; i++) rp[i] = p[i];
    for (int t = 1; t <= 3; t++) {
        float *g = random_floats(&rng, n, 1.0f);
        g[0] = 0.0f; /* a zero gradient: only decay and momentum move it */
        jl_adamw_update(p, g, m, v, n, lr, b1, b2, eps, wd, t);
        for (size_t i = 0; i < n; i++) {
            rm[i] = b1 * rm[i] + (1.0 - b1) * g[i];
            rv[i] = b2 * rv[i] + (1.0 - b2) * (double)g[i] * g[i];
            double mhat = rm[i] / (1.0 - pow(b1, t)), vhat = rv[i] / (1.0 - pow(b2, t));
            rp[i] -= lr * (mhat / (sqrt(vhat) + eps) + wd * rp[i]);
        }
        free(g);
    }
    assert_close("adamw p", p, rp, n, 1e-5, 1e-6);
    assert_close("adamw m", m, rm, n, 1e-5, 1e-7);
    assert_close("adamw v", v, rv, n, 1e-5, 1e-8);
    free(p), free(m), free(v), free(rp), free(rm), free(rv);
}

/* AdamW on gscale·g (clipping as the gradient is read) equals scaling g in place and then AdamW, bit for bit. */
static void test_adamw_scaled_equals_scale_then_adamw(void **state) {
    (void)state;
    jl_rng rng;
    jl_rng_seed(&rng, 23);
    const size_t n = 70001;
    float *p1 = random_floats(&rng, n, 1.0f), *g = random_floats(&rng, n, 3.0f);
    float *p2 = copy_floats(p1, n), *g2 = copy_floats(g, n);
    float *m1 = alloc_floats(n), *v1 = alloc_floats(n), *m2 = alloc_floats(n), *v2 = alloc_floats(n);
    const float s = 0.3719f;
    for (int t = 1; t <= 2; t++) {
        jl_adamw_update_scaled(p1, g, s, m1, v1, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, t);
        memcpy(g2, g, n * sizeof *g);
        jl_scale_inplace(g2, s, n);
        jl_adamw_update(p2, g2, m2, v2, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, t);
    }
    assert_memory_equal(p1, p2, n * sizeof *p1);
    assert_memory_equal(m1, m2, n * sizeof *m1);
    assert_memory_equal(v1, v2, n * sizeof *v1);
    free(p1), free(g), free(p2), free(g2), free(m1), free(v1), free(m2), free(v2);
}

static void test_sumsq_and_scale(void **state) {
    (void)state;
    jl_rng rng;
    jl_rng_seed(&rng, 20);
    const size_t n = 100003;
    float *x = random_floats(&rng, n, 1.0f);
    double want = 0;
    for (size_t i = 0; i < n; i++) want += (double)x[i] * x[i];
    double got = jl_sumsq(x, n);
    assert_true(fabs(got - want) < 1e-9 * want);
    assert_true(jl_sumsq(x, n) == got); /* deterministic */
    assert_true(jl_sumsq(x, 0) == 0.0);
    assert_true(jl_sumsq(x, 1) == (double)x[0] * x[0]);
    float *y = copy_floats(x, n);
    jl_scale_inplace(y, 0.5f, n);
    for (size_t i = 0; i < n; i++) assert_true(y[i] == 0.5f * x[i]);
    free(x), free(y);
}

/* The vectorised exp behind softmax, SiLU and GELU: a few ulp of libm's expf over the usable range. */
static void test_vexpf_accuracy(void **state) {
    (void)state;
    double worst = 0;
    for (float x = -87.0f; x < 88.0f; x += 0.01371f) {
        double want = exp((double)x);
        double rel = fabs(jl_vexpf(x) - want) / want;
        worst = fmax(worst, rel);
    }
    print_message("jl_vexpf worst relative error %.3g\n", worst);
    assert_true(worst < 3e-7);
    assert_true(jl_vexpf(0.0f) == 1.0f);
    assert_true(jl_vexpf(-100.0f) == 0.0f);
    assert_true(jl_vexpf(-INFINITY) == 0.0f);
    assert_true(isfinite(jl_vexpf(1000.0f)) && jl_vexpf(1000.0f) > 1e38f);
    assert_true(isnan(jl_vexpf(NAN))); /* propagates, with no undefined conversion on the way (UBSan) */
}

/* jl_vexp16 (the AVX-512 attention's exponentials) is jl_vexpf lane for lane, bit for bit, specials included. */
static void test_vexp16_equals_vexpf(void **state) {
    (void)state;
#if defined(__AVX512F__)
    float x[16], y[16];
    int n = 0;
    for (float v = -120.0f; v < 120.0f; v += 0.0137f) {
        x[n++] = v;
        if (n < 16 && v + 0.0137f < 120.0f) continue;
        const float special[4] = {NAN, -INFINITY, INFINITY, -87.3f};
        for (int i = n; i < 16; i++) x[i] = special[i % 4];
        _mm512_storeu_ps(y, jl_vexp16(_mm512_loadu_ps(x)));
        for (int i = 0; i < 16; i++) {
            const float want = jl_vexpf(x[i]);
            assert_true(isnan(want) ? isnan(y[i]) : memcmp(&want, &y[i], sizeof want) == 0);
        }
        n = 0;
    }
#else
    skip();
#endif
}

/* ---------- threads ---------- */

/* Every kernel's parallel split (rows, channel blocks, (batch, kv head) pairs, static shares) must give
 * the single-thread result. Sizes are above JL_PARALLEL_MIN_WORK so the kernels do go parallel; 3
 * threads make the shares uneven. */
typedef struct {
    float *dqkv, *datt, *att, *attn_out, *dnorm, *dw, *db, *dwte, *dwpe, *rope, *act, *dact, *dlogits, *p, *m, *v;
    float losses[64];
    double ce_total, sumsq;
} thread_results;

enum { TR_B = 2, TR_T = 96, TR_NH = 4, TR_NKV = 2, TR_HS = 16, TR_N = 64, TR_C = 600, TR_V = 5000 };

static void thread_results_alloc(thread_results *r) {
    const size_t S = (TR_NH + 2 * TR_NKV) * TR_HS;
    r->dqkv = alloc_floats((size_t)TR_B * TR_T * S), r->datt = alloc_floats((size_t)TR_B * TR_NH * TR_T * TR_T);
    r->att = alloc_floats((size_t)TR_B * TR_NH * TR_T * TR_T), r->attn_out = alloc_floats((size_t)TR_B * TR_T * TR_NH * TR_HS);
    r->dnorm = alloc_floats((size_t)TR_N * TR_C), r->dw = alloc_floats(TR_C), r->db = alloc_floats(TR_C);
    r->dwte = alloc_floats((size_t)50 * TR_C), r->dwpe = alloc_floats((size_t)TR_N * TR_C);
    r->rope = alloc_floats((size_t)TR_B * TR_T * S), r->act = alloc_floats((size_t)TR_N * TR_C);
    r->dact = alloc_floats((size_t)TR_N * 2 * TR_C), r->dlogits = alloc_floats((size_t)TR_N * TR_V);
    r->p = alloc_floats((size_t)TR_N * TR_C), r->m = alloc_floats((size_t)TR_N * TR_C), r->v = alloc_floats((size_t)TR_N * TR_C);
}

static void thread_results_free(thread_results *r) {
    free(r->dqkv), free(r->datt), free(r->att), free(r->attn_out), free(r->dnorm), free(r->dw), free(r->db);
    free(r->dwte), free(r->dwpe), free(r->rope), free(r->act), free(r->dact), free(r->dlogits);
    free(r->p), free(r->m), free(r->v);
}

/* Runs one backward (or forward) of each kind on the shared inputs `in` with `threads` OpenMP threads. */
static void run_all_kernels(thread_results *r, const float *in, const int32_t *ids, int threads) {
    omp_set_num_threads(threads);
    const int S = (TR_NH + 2 * TR_NKV) * TR_HS;
    const size_t nrow = (size_t)TR_N * TR_C;
    jl_attention_forward(r->attn_out, r->att, in, TR_B, TR_T, TR_NH, TR_NKV, TR_HS);
    jl_attention_backward(r->dqkv, r->datt, in + 7, in, r->att, TR_B, TR_T, TR_NH, TR_NKV, TR_HS);
    float mean[TR_N], rstd[TR_N];
    jl_layernorm_forward(r->act, mean, rstd, in, in + 1, in + 2, TR_N, TR_C, 1e-5f);
    jl_layernorm_backward(r->dnorm, r->dw, r->db, in + 3, in, in + 1, mean, rstd, TR_N, TR_C);
    jl_rmsnorm_forward(r->act, rstd, in, in + 1, TR_N, TR_C, 1e-5f);
    jl_rmsnorm_backward(r->dnorm, r->dw, in + 3, in, in + 1, rstd, TR_N, TR_C);
    jl_embedding_backward(r->dwte, in + 5, ids, TR_N, TR_C);
    jl_posemb_backward(r->dwpe, in + 6, 4, TR_N / 4, TR_C, 3);
    float table[(TR_T + 3) * TR_HS];
    jl_rope_table(table, TR_T + 3, TR_HS, 10000.0f);
    memcpy(r->rope, in, (size_t)TR_B * TR_T * S * sizeof(float));
    jl_rope_forward(r->rope, table, TR_B, TR_T, TR_NH + TR_NKV, TR_HS, S, 3);
    jl_rope_backward(r->rope, table, TR_B, TR_T, TR_NH, TR_HS, S, 2);
    jl_swiglu_forward(r->act, in, TR_N, TR_C);
    jl_swiglu_backward(r->dact, in + 9, in, TR_N, TR_C);
    jl_gelu_backward(r->dact, in + 4, in + 8, nrow);
    int32_t targets[TR_N];
    for (int n = 0; n < TR_N; n++) targets[n] = n % 5 == 0 ? -1 : ids[n] * 97;
    r->ce_total = jl_crossentropy_forward_backward(r->losses, r->dlogits, in, targets, TR_N, TR_V - 13, TR_V, 0.5f);
    memcpy(r->p, in, nrow * sizeof(float));
    for (int t = 1; t <= 2; t++) jl_adamw_update(r->p, in + 11, r->m, r->v, nrow, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, t);
    r->sumsq = jl_sumsq(in, (size_t)TR_N * TR_V);
}

static void test_threads_match_single_thread(void **state) {
    (void)state;
    jl_rng rng;
    jl_rng_seed(&rng, 21);
    int saved = omp_get_max_threads();
    const size_t nin = (size_t)TR_N * TR_V + 64; /* the largest input (logits) plus room for the offsets */
    float *in = random_floats(&rng, nin, 1.0f);
    int32_t ids[TR_N];
    for (int n = 0; n < TR_N; n++) ids[n] = (int32_t)jl_rng_below(&rng, 50);
    thread_results one, many;
    thread_results_alloc(&one);
    thread_results_alloc(&many);
    run_all_kernels(&one, in, ids, 1);
    run_all_kernels(&many, in, ids, 3);
    omp_set_num_threads(saved);
    const size_t S = (TR_NH + 2 * TR_NKV) * TR_HS, nrow = (size_t)TR_N * TR_C;
    assert_close_f("threads attention out", many.attn_out, one.attn_out, (size_t)TR_B * TR_T * TR_NH * TR_HS, 1e-6, 1e-7);
    assert_close_f("threads attention dqkv", many.dqkv, one.dqkv, (size_t)TR_B * TR_T * S, 1e-6, 1e-7);
    assert_memory_equal(many.dnorm, one.dnorm, nrow * sizeof(float));
    assert_memory_equal(many.dw, one.dw, TR_C * sizeof(float));
    assert_memory_equal(many.db, one.db, TR_C * sizeof(float));
    assert_memory_equal(many.dwte, one.dwte, (size_t)50 * TR_C * sizeof(float));
    assert_memory_equal(many.dwpe, one.dwpe, nrow * sizeof(float));
    assert_memory_equal(many.rope, one.rope, (size_t)TR_B * TR_T * S * sizeof(float));
    assert_memory_equal(many.act, one.act, nrow * sizeof(float));
    assert_memory_equal(many.dact, one.dact, 2 * nrow * sizeof(float));
    assert_memory_equal(many.dlogits, one.dlogits, (size_t)TR_N * TR_V * sizeof(float));
    assert_memory_equal(many.losses, one.losses, sizeof one.losses);
    assert_true(fabs(many.ce_total - one.ce_total) <= 1e-12 * one.ce_total);
    assert_memory_equal(many.p, one.p, nrow * sizeof(float));
    assert_true(fabs(many.sumsq - one.sumsq) <= 1e-12 * one.sumsq);
    thread_results_free(&one);
    thread_results_free(&many);
    free(in);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_forward_matches_naive),
        cmocka_unit_test(test_matmul_backward_gradcheck),
        cmocka_unit_test(test_embedding_forward_backward),
        cmocka_unit_test(test_posemb_forward_backward),
        cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_rope_table_values),
        cmocka_unit_test(test_rope_forward_on_packed_qkv),
        cmocka_unit_test(test_rope_backward_gradcheck),
        cmocka_unit_test(test_attention_forward_matches_naive),
        cmocka_unit_test(test_attention_backward_gradcheck_mha),
        cmocka_unit_test(test_attention_backward_gradcheck_gqa),
        cmocka_unit_test(test_attention_is_causal),
        cmocka_unit_test(test_attention_deterministic),
        cmocka_unit_test(test_segments_valid),
        cmocka_unit_test(test_attention_segments_match_naive),
        cmocka_unit_test(test_attention_segments_gradcheck),
        cmocka_unit_test(test_attention_packed_row_equals_separate_rows),
        cmocka_unit_test(test_attention_segments_do_not_mix),
        cmocka_unit_test(test_positions_restart_per_segment),
        cmocka_unit_test(test_swiglu),
        cmocka_unit_test(test_gelu),
        cmocka_unit_test(test_residual_in_place),
        cmocka_unit_test(test_softmax_inplace),
        cmocka_unit_test(test_crossentropy),
        cmocka_unit_test(test_crossentropy_long_rows),
        cmocka_unit_test(test_adamw_matches_scalar_reference),
        cmocka_unit_test(test_adamw_scaled_equals_scale_then_adamw),
        cmocka_unit_test(test_sumsq_and_scale),
        cmocka_unit_test(test_vexpf_accuracy),
        cmocka_unit_test(test_vexp16_equals_vexpf),
        cmocka_unit_test(test_threads_match_single_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
