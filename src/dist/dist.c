/* Data parallelism over OpenMPI, loaded at run time (see jielong/dist.h). mpi.h gives the prototypes and types;
 * the functions and the predefined handles (MPI_COMM_WORLD, MPI_BYTE: OpenMPI's ompi_mpi_* globals) come from
 * dlsym, so the binary links no MPI library and starts without one. */
#include "jielong/dist.h"
#include "core/timer.h"
#include <dlfcn.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { TAG_GATHER = 0x1a01, TAG_REDUCE = 0x1a02, TAG_SPREAD = 0x1a03, TAG_QUEUE = 0x2000, QUEUE_TAGS = 0x2000 };

static struct {
    int rank, size, up, broken, first_failed;
    int use_mpi_allreduce; /* JL_DIST_ALLREDUCE=mpi: OpenMPI's MPI_Allreduce instead of our ring (benchmarks) */
    int no_overlap;        /* JL_DIST_OVERLAP=0: the all-reduce after the backward pass, not during it */
    double timeout;
    long busy_polls; /* polls before sleeping between polls (JL_DIST_BUSY_POLLS; 64) */
    void *lib;
    MPI_Comm world;
    MPI_Datatype byte;
    __typeof__(&MPI_Init_thread) init_thread;
    __typeof__(&MPI_Comm_rank) comm_rank;
    __typeof__(&MPI_Comm_size) comm_size;
    __typeof__(&MPI_Isend) isend;
    __typeof__(&MPI_Irecv) irecv;
    __typeof__(&MPI_Testall) testall;
    __typeof__(&MPI_Finalize) finalize;
    __typeof__(&MPI_Abort) abort_job;
    __typeof__(&MPI_Allreduce) allreduce;
    MPI_Datatype float_type;
    MPI_Op sum_op;
    float *scratch;
    size_t scratch_n;
    double seconds, bytes;
    double landed_early, landed; /* ring steps of the overlapped all-reduce: landed by a poll, landed at all */
} D = {.size = 1, .first_failed = -1};

/* The queue of the overlapped all-reduce (jl_dist_overlap_add): buckets [cur, end) are in flight together
 * (their reduce chunks side by side in the scratch, at scr), each at its own ring step. */
typedef struct {
    float *x;
    size_t n, ro, rn, scr;
    int step, posted;
    MPI_Request r[2];
} qbucket;
static struct {
    qbucket *q;
    int n, cap, cur, end;
} Q;

int jl_dist_rank(void) { return D.rank; }
int jl_dist_size(void) { return D.size; }
int jl_dist_launched(void) { return D.up; }
int jl_dist_first_failed(void) { return D.first_failed; }
int jl_dist_broken(void) { return D.broken; }

void jl_dist_stats(double *seconds, double *bytes_sent) {
    *seconds = D.seconds;
    *bytes_sent = D.bytes;
}

void jl_dist_overlap_stats(double *early, double *landed) {
    *early = D.landed_early;
    *landed = D.landed;
}

static void *sym(const char *name, int *missing) {
    void *p = dlsym(D.lib, name);
    if (!p) *missing = 1;
    return p;
}

static jl_status load_mpi(void) {
    const char *names[] = {"libmpi.so.40", "libmpi.so"};
    for (size_t i = 0; i < 2 && !D.lib; i++) D.lib = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
    if (!D.lib)
        return jl_fail(JL_ERR_RUNTIME, "started by mpirun but OpenMPI's libmpi.so.40 cannot be loaded (%s): install "
                       "openmpi-bin / libopenmpi3", dlerror());
    int missing = 0;
    D.init_thread = (__typeof__(D.init_thread))sym("MPI_Init_thread", &missing);
    D.comm_rank = (__typeof__(D.comm_rank))sym("MPI_Comm_rank", &missing);
    D.comm_size = (__typeof__(D.comm_size))sym("MPI_Comm_size", &missing);
    D.isend = (__typeof__(D.isend))sym("MPI_Isend", &missing);
    D.irecv = (__typeof__(D.irecv))sym("MPI_Irecv", &missing);
    D.testall = (__typeof__(D.testall))sym("MPI_Testall", &missing);
    D.finalize = (__typeof__(D.finalize))sym("MPI_Finalize", &missing);
    D.abort_job = (__typeof__(D.abort_job))sym("MPI_Abort", &missing);
    D.world = (MPI_Comm)sym("ompi_mpi_comm_world", &missing);
    D.byte = (MPI_Datatype)sym("ompi_mpi_byte", &missing);
    D.allreduce = (__typeof__(D.allreduce))sym("MPI_Allreduce", &missing);
    D.float_type = (MPI_Datatype)sym("ompi_mpi_float", &missing);
    D.sum_op = (MPI_Op)sym("ompi_mpi_op_sum", &missing);
    if (missing) return jl_fail(JL_ERR_RUNTIME, "the loaded libmpi is not OpenMPI's (missing MPI symbols)");
    return JL_OK;
}

jl_status jl_dist_init(void) {
    const char *world = getenv("OMPI_COMM_WORLD_SIZE");
    if (!world || D.up) return JL_OK;
    const char *t = getenv("JL_DIST_TIMEOUT");
    D.timeout = t && atof(t) > 0 ? atof(t) : 300;
    const char *b = getenv("JL_DIST_BUSY_POLLS");
    D.busy_polls = b && atol(b) >= 0 ? atol(b) : 64;
    const char *how = getenv("JL_DIST_ALLREDUCE");
    if (how && strcmp(how, "mpi") != 0 && strcmp(how, "ring") != 0)
        return jl_fail(JL_ERR_ARG, "JL_DIST_ALLREDUCE=%s: expected ring (the default) or mpi", how);
    D.use_mpi_allreduce = how && strcmp(how, "mpi") == 0;
    const char *ov = getenv("JL_DIST_OVERLAP");
    if (ov && strcmp(ov, "0") != 0 && strcmp(ov, "1") != 0)
        return jl_fail(JL_ERR_ARG, "JL_DIST_OVERLAP=%s: expected 1 (the default) or 0", ov);
    D.no_overlap = ov && strcmp(ov, "0") == 0;
    jl_status st = load_mpi();
    if (st != JL_OK) return st;
    int provided = 0;
    if (D.init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return jl_fail(JL_ERR_RUNTIME, "MPI_Init failed");
    D.up = 1;
    D.comm_rank(D.world, &D.rank);
    D.comm_size(D.world, &D.size);
    return JL_OK;
}

void jl_dist_finish(int exit_code) {
    if (!D.up) return;
    if (D.broken) D.abort_job(D.world, exit_code ? exit_code : 1);
    else D.finalize();
    D.up = 0;
    free(D.scratch);
    D.scratch = NULL;
    D.scratch_n = 0;
    free(Q.q);
    memset(&Q, 0, sizeof Q);
}

/* Waits for n requests, bounded by the timeout. peer: for the message. A few busy polls, then 50 µs sleeps
 * between polls: ranks often share cores with each other or with other work, and a spinning rank is descheduled
 * behind everything else (measured on the loaded 2-core machine: 300 ms per tiny step spinning, 25 ms
 * sleeping); large messages move in one copy (OpenMPI's shared-memory CMA), so the sleeps cost latency only. */
static jl_status wait_all(MPI_Request *r, int n, int peer) {
    double t0 = jl_now();
    for (long poll = 0;; poll++) {
        int done = 0;
        if (D.testall(n, r, &done, MPI_STATUSES_IGNORE) != MPI_SUCCESS) {
            D.broken = 1;
            return jl_fail(JL_ERR_RUNTIME, "message exchange with rank %d failed", peer);
        }
        if (done) return JL_OK;
        if (poll < D.busy_polls) continue;
        if ((poll & 63) == 0 && jl_now() - t0 > D.timeout) {
            D.broken = 1;
            return jl_fail(JL_ERR_RUNTIME, "no message from rank %d within %g s (JL_DIST_TIMEOUT): a rank died, "
                           "hangs or left the run early; stopping the job", peer, D.timeout);
        }
        nanosleep(&(struct timespec){0, 50000}, NULL);
    }
}

/* Sends out_bytes of `out` to the next rank and receives in_bytes into `in` from the previous one. */
static jl_status ring_step(const void *out, size_t out_bytes, void *in, size_t in_bytes, int tag) {
    int next = (D.rank + 1) % D.size, prev = (D.rank + D.size - 1) % D.size;
    MPI_Request r[2];
    if (D.irecv(in, (int)in_bytes, D.byte, prev, tag, D.world, &r[0]) != MPI_SUCCESS ||
        D.isend(out, (int)out_bytes, D.byte, next, tag, D.world, &r[1]) != MPI_SUCCESS) {
        D.broken = 1;
        return jl_fail(JL_ERR_RUNTIME, "cannot post a message to rank %d", next);
    }
    return wait_all(r, 2, prev);
}

jl_status jl_dist_allgather(const void *mine, void *all, size_t bytes) {
    char *a = all;
    memcpy(a + (size_t)D.rank * bytes, mine, bytes);
    for (int s = 0; s < D.size - 1; s++) {
        int send = (D.rank - s + D.size) % D.size, recv = (D.rank - s - 1 + D.size) % D.size;
        jl_status st = ring_step(a + (size_t)send * bytes, bytes, a + (size_t)recv * bytes, bytes, TAG_GATHER);
        if (st != JL_OK) return st;
    }
    return JL_OK;
}

jl_status jl_dist_reserve(size_t n) {
    if (D.size == 1) return JL_OK;
    /* twice a bucket's chunk, and at least 1 MB: the overlapped all-reduce keeps several buckets in flight */
    size_t bucket = n < JL_DIST_BUCKET ? n : JL_DIST_BUCKET, need = 2 * (bucket / (size_t)D.size + 1);
    need = need < (1u << 18) ? (1u << 18) : need;
    if (need <= D.scratch_n) return JL_OK;
    float *p = realloc(D.scratch, need * sizeof(float));
    if (!p) return jl_fail(JL_ERR_NOMEM, "out of memory (all-reduce scratch of %zu floats)", need);
    D.scratch = p;
    D.scratch_n = need;
    return JL_OK;
}

/* Chunk c (of N) of a bucket of n floats: [lo(c), lo(c+1)). */
static size_t chunk_lo(size_t n, int c) { return n * (size_t)c / (size_t)D.size; }

/* Ring all-reduce of one bucket of n floats in 2(N-1) steps: N-1 reduce-scatter steps — chunk c is summed along
 * the ring in the fixed order c, c+1, …, c-1 (acc = own + received) and ends complete on rank c-1 — then N-1
 * all-gather steps that copy the complete chunks around, so every rank holds the same bits. ring_post posts step
 * s (receiving [*ro, *ro + *rn) of x, into the scratch on a reduce step); ring_land adds what a reduce step got. */
static jl_status ring_post(float *x, size_t n, int s, float *scratch, int tag, size_t *ro, size_t *rn,
                           MPI_Request r[2]) {
    const int N = D.size, me = D.rank, reduce = s < N - 1, g = reduce ? s : s - (N - 1);
    const int send = reduce ? (me - g + N) % N : (me + 1 - g + N) % N, recv = (send + N - 1) % N;
    const int next = (me + 1) % N, prev = (me + N - 1) % N;
    if (tag < 0) tag = reduce ? TAG_REDUCE : TAG_SPREAD;
    const size_t so = chunk_lo(n, send), sn = chunk_lo(n, send + 1) - so;
    *ro = chunk_lo(n, recv);
    *rn = chunk_lo(n, recv + 1) - *ro;
    D.bytes += (double)(sn * sizeof(float));
    if (D.irecv(reduce ? scratch : x + *ro, (int)(*rn * sizeof(float)), D.byte, prev, tag, D.world, &r[0]) !=
            MPI_SUCCESS ||
        D.isend(x + so, (int)(sn * sizeof(float)), D.byte, next, tag, D.world, &r[1]) != MPI_SUCCESS) {
        D.broken = 1;
        return jl_fail(JL_ERR_RUNTIME, "cannot post a message to rank %d", next);
    }
    return JL_OK;
}

static void ring_land(float *x, int s, const float *scratch, size_t ro, size_t rn) {
    if (s < D.size - 1)
        for (size_t i = 0; i < rn; i++) x[ro + i] += scratch[i];
}

/* Ring steps first … 2N-3 of one bucket, each waited for: from 0 the all-reduce, from N-1 its all-gather half. */
static jl_status ring_steps(float *x, size_t n, int first) {
    const int prev = (D.rank + D.size - 1) % D.size;
    for (int s = first; s < 2 * (D.size - 1); s++) {
        MPI_Request r[2];
        size_t ro, rn;
        jl_status st = ring_post(x, n, s, D.scratch, -1, &ro, &rn, r);
        if (st == JL_OK) st = wait_all(r, 2, prev);
        if (st != JL_OK) return st;
        ring_land(x, s, D.scratch, ro, rn);
    }
    return JL_OK;
}

void jl_dist_shard(size_t n, size_t off, size_t *lo, size_t *len) {
    const size_t k = n - off < JL_DIST_BUCKET ? n - off : JL_DIST_BUCKET;
    const int c = (D.rank + 1) % D.size;
    *lo = off + chunk_lo(k, c);
    *len = chunk_lo(k, c + 1) - chunk_lo(k, c);
}

jl_status jl_dist_spread_floats(float *x, size_t n) {
    if (D.size == 1 || n == 0) return JL_OK;
    double t0 = jl_now();
    jl_status st = JL_OK;
    for (size_t off = 0; off < n && st == JL_OK; off += JL_DIST_BUCKET)
        st = ring_steps(x + off, n - off < JL_DIST_BUCKET ? n - off : JL_DIST_BUCKET, D.size - 1);
    D.seconds += jl_now() - t0;
    return st;
}

/* OpenMPI's own all-reduce of one bucket, for comparison (bench/dist.sh): it blocks without our timeout, and its
 * algorithm (so its summation order) is OpenMPI's choice. Bytes are counted as a ring would send them. */
static jl_status mpi_sum_bucket(float *x, size_t n) {
    D.bytes += 2.0 * (D.size - 1) / D.size * (double)(n * sizeof(float));
    if (D.allreduce(MPI_IN_PLACE, x, (int)n, D.float_type, D.sum_op, D.world) == MPI_SUCCESS) return JL_OK;
    D.broken = 1;
    return jl_fail(JL_ERR_RUNTIME, "MPI_Allreduce failed");
}

jl_status jl_dist_sum_floats(float *x, size_t n) {
    if (D.size == 1 || n == 0) return JL_OK;
    size_t bucket = n < JL_DIST_BUCKET ? n : JL_DIST_BUCKET;
    if (bucket / (size_t)D.size + 1 > D.scratch_n)
        return jl_fail(JL_ERR_RUNTIME, "all-reduce of %zu floats without jl_dist_reserve", n);
    double t0 = jl_now();
    jl_status st = JL_OK;
    for (size_t off = 0; off < n && st == JL_OK; off += JL_DIST_BUCKET) {
        size_t k = n - off < JL_DIST_BUCKET ? n - off : JL_DIST_BUCKET;
        st = D.use_mpi_allreduce ? mpi_sum_bucket(x + off, k) : ring_steps(x + off, k, 0);
    }
    D.seconds += jl_now() - t0;
    return st;
}

/* The all-reduce overlapped with the backward pass: the queued buckets (Q) are summed one after the other, each
 * by the ring steps above; jl_dist_overlap_poll lands every step whose messages are in and posts the next,
 * without waiting, so the sums advance while the caller computes. */

int jl_dist_overlap(void) { return D.size > 1 && !D.use_mpi_allreduce && !D.no_overlap; }

jl_status jl_dist_overlap_add(float *x, size_t n) {
    if (D.size == 1 || n == 0) return JL_OK;
    if ((n < JL_DIST_BUCKET ? n : JL_DIST_BUCKET) / (size_t)D.size + 1 > D.scratch_n)
        return jl_fail(JL_ERR_RUNTIME, "all-reduce of %zu floats without jl_dist_reserve", n);
    for (size_t off = 0; off < n; off += JL_DIST_BUCKET) { /* the buckets of jl_dist_sum_floats: the same bits */
        if (Q.n == Q.cap) {
            int cap = Q.cap ? 2 * Q.cap : 64;
            void *q = realloc(Q.q, (size_t)cap * sizeof *Q.q);
            if (!q) return jl_fail(JL_ERR_NOMEM, "out of memory (all-reduce queue)");
            Q.q = q;
            Q.cap = cap;
        }
        Q.q[Q.n++] = (qbucket){.x = x + off, .n = n - off < JL_DIST_BUCKET ? n - off : JL_DIST_BUCKET};
    }
    return JL_OK;
}

/* Advances the buckets in flight as far as the messages that are in allow: lands each finished ring step and
 * posts the bucket's next one; when all in flight are summed, the next queued ones that fit the scratch
 * together go in flight. wait = 0 returns when nothing more has arrived; 1 waits for every queued sum, bounded by
 * the timeout since the last progress. Each bucket in flight has a tag of its own (their steps may land in
 * different orders on different ranks); a bucket's steps follow each other, so they share it. */
static jl_status advance(int wait) {
    const int N = D.size, prev = (D.rank + N - 1) % N, last = 2 * (N - 1);
    double t0 = jl_now(), quiet = t0;
    jl_status st = JL_OK;
    for (long poll = 0; Q.cur < Q.n && st == JL_OK; poll++) {
        /* more buckets in flight, their chunks after the last one's in the scratch (from 0 when none is) */
        for (size_t at = Q.cur == Q.end ? 0 : Q.q[Q.end - 1].scr + Q.q[Q.end - 1].n / (size_t)N + 1;
             Q.end < Q.n && Q.end - Q.cur < QUEUE_TAGS; Q.end++) {
            size_t need = Q.q[Q.end].n / (size_t)N + 1;
            if (at + need > D.scratch_n) break;
            Q.q[Q.end].scr = at;
            at += need;
        }
        int progressed = 0;
        for (int i = Q.cur; i < Q.end && st == JL_OK; i++) {
            qbucket *b = &Q.q[i];
            while (b->step < last) {
                if (!b->posted && (st = ring_post(b->x, b->n, b->step, D.scratch + b->scr, TAG_QUEUE + i % QUEUE_TAGS,
                                                  &b->ro, &b->rn, b->r)) != JL_OK)
                    break;
                b->posted = 1;
                int done = 0;
                if (D.testall(2, b->r, &done, MPI_STATUSES_IGNORE) != MPI_SUCCESS) {
                    D.broken = 1;
                    st = jl_fail(JL_ERR_RUNTIME, "message exchange with rank %d failed", prev);
                    break;
                }
                if (!done) break;
                b->posted = 0;
                ring_land(b->x, b->step, D.scratch + b->scr, b->ro, b->rn);
                b->step++;
                D.landed += 1;
                D.landed_early += !wait;
                progressed = 1;
            }
        }
        while (Q.cur < Q.end && Q.q[Q.cur].step == last) Q.cur++;
        if (progressed || st != JL_OK) {
            quiet = jl_now();
            poll = 0;
            continue;
        }
        if (!wait) break;
        if (poll < D.busy_polls) continue;
        if ((poll & 63) == 0 && jl_now() - quiet > D.timeout) {
            D.broken = 1;
            st = jl_fail(JL_ERR_RUNTIME, "no message from rank %d within %g s (JL_DIST_TIMEOUT): a rank died, "
                         "hangs or left the run early; stopping the job", prev, D.timeout);
            break;
        }
        nanosleep(&(struct timespec){0, 50000}, NULL);
    }
    D.seconds += jl_now() - t0;
    return st;
}

jl_status jl_dist_overlap_poll(void) { return D.size == 1 ? JL_OK : advance(0); }

jl_status jl_dist_overlap_finish(void) {
    jl_status st = D.size == 1 ? JL_OK : advance(1);
    Q.n = Q.cur = Q.end = 0;
    return st;
}

/* Agreement messages have one fixed size, whatever the call site, so that a rank that left the loop early (its
 * last agreement in cli_dist_end) pairs with the others' next one; small payloads ride along. */
enum { AGREE_BYTES = 256, AGREE_PAYLOAD = AGREE_BYTES - 8 };

jl_status jl_dist_agree_with(jl_status st, int *flag, const void *mine, void *all, size_t bytes) {
    /* after an agreed failure every rank unwinds without another exchange (all learnt it at the same one) */
    if (D.size == 1 || D.first_failed >= 0) {
        if (bytes) memcpy(all, mine, bytes);
        return st;
    }
    char msg[AGREE_BYTES] = {0}, fixed[AGREE_BYTES * 8], *a = fixed;
    int32_t head[2] = {(int32_t)st, flag ? *flag : 0};
    memcpy(msg, head, sizeof head);
    int ride = bytes <= AGREE_PAYLOAD;
    if (ride && bytes) memcpy(msg + 8, mine, bytes);
    if ((size_t)D.size > sizeof fixed / AGREE_BYTES && !(a = malloc((size_t)D.size * AGREE_BYTES)))
        return jl_fail(JL_ERR_NOMEM, "out of memory");
    jl_status gs = jl_dist_allgather(msg, a, AGREE_BYTES);
    int failed = -1, any = 0;
    for (int r = 0; r < D.size && gs == JL_OK; r++) {
        memcpy(head, a + (size_t)r * AGREE_BYTES, sizeof head);
        if (failed < 0 && head[0] != JL_OK) failed = r;
        any |= head[1];
        if (ride && bytes) memcpy((char *)all + (size_t)r * bytes, a + (size_t)r * AGREE_BYTES + 8, bytes);
    }
    jl_status peer = JL_OK;
    if (failed >= 0) memcpy(&head, a + (size_t)failed * AGREE_BYTES, sizeof head), peer = (jl_status)head[0];
    if (a != fixed) free(a);
    if (gs != JL_OK) return st != JL_OK ? st : gs;
    if (flag) *flag = any;
    if (failed >= 0) D.first_failed = failed;
    if (failed < 0 && !ride && bytes) return jl_dist_allgather(mine, all, bytes);
    if (st != JL_OK || failed < 0) return st;
    return jl_fail(peer, "rank %d failed; see its message", failed);
}

jl_status jl_dist_agree(jl_status st, int *flag) { return jl_dist_agree_with(st, flag, NULL, NULL, 0); }

jl_status jl_dist_injected_fault(long update) {
    const char *f = getenv("JL_DIST_FAIL");
    int rank;
    long at;
    if (!f || sscanf(f, "%d:%ld", &rank, &at) != 2 || rank != D.rank || at != update) return JL_OK;
    return jl_fail(JL_ERR_FORMAT, "bad batch at update %ld (injected by JL_DIST_FAIL=%s)", update, f);
}
