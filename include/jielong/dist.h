/* Data parallelism over OpenMPI: N processes (ranks) train one model, each on its share of every global batch,
 * and average their gradients before the (identical) optimizer step.
 *
 * One binary: libmpi is loaded with dlopen only when the process was started by OpenMPI's mpirun / mpiexec
 * (OMPI_COMM_WORLD_SIZE in the environment). A plain `jielong …` never touches MPI and needs no MPI runtime;
 * every function below then behaves as for one rank (rank 0 of 1) and costs nothing.
 *
 * Collectives are built on point-to-point messages (MPI_Isend / MPI_Irecv, polled with MPI_Testall) so that
 *  - the reduction order is fixed for a given N (ring reduce-scatter + all-gather over fixed buckets): two runs
 *    with the same N are bitwise identical and every rank holds the same bits;
 *  - every wait is bounded (JL_DIST_TIMEOUT seconds, default 300): a rank that hangs or died stops the others
 *    with a message naming it instead of a hang forever.
 * Library code: nothing here prints or exits; errors are status + message (jl_last_error). */
#ifndef JIELONG_DIST_H
#define JIELONG_DIST_H
#include "jielong/common.h"
#include <stddef.h>

/* Joins the job when launched by mpirun (loads libmpi, MPI_Init); a no-op otherwise. Call once, first. */
jl_status jl_dist_init(void);
/* Leaves the job (MPI_Finalize); after a broken collective (a timeout) aborts the job instead, so that hung
 * ranks do not outlive this one. A no-op without mpirun. */
void jl_dist_finish(int exit_code);
int jl_dist_rank(void);  /* 0 without mpirun */
int jl_dist_size(void);  /* 1 without mpirun */
/* 1 when started by mpirun (any number of ranks, -np 1 too), 0 for a plain run. */
int jl_dist_launched(void);

/* Sums x[0..n) over the ranks, in place, in buckets of JL_DIST_BUCKET floats; every rank gets the same bits.
 * Needs the scratch of jl_dist_reserve(n) (no allocation here). JL_DIST_ALLREDUCE=mpi (for benchmarks) uses
 * OpenMPI's MPI_Allreduce per bucket instead of our ring: its order is OpenMPI's and it waits without the
 * timeout. */
#define JL_DIST_BUCKET (4u << 20)
jl_status jl_dist_reserve(size_t n);
jl_status jl_dist_sum_floats(float *x, size_t n);
/* The same sums overlapped with other work (the backward pass): jl_dist_overlap_add queues x[0..n) (its
 * buckets are jl_dist_sum_floats's, so the sums have the same bits), jl_dist_overlap_poll lands every ring step
 * whose messages are in and posts the next without waiting, jl_dist_overlap_finish waits for every queued sum
 * (bounded by the timeout) and empties the queue. Every rank queues the same buckets in the same order.
 * jl_dist_overlap: 1 when it is in use (N > 1, our ring, JL_DIST_OVERLAP not 0). */
int jl_dist_overlap(void);
jl_status jl_dist_overlap_add(float *x, size_t n);
jl_status jl_dist_overlap_poll(void);
jl_status jl_dist_overlap_finish(void);
/* ZeRO-1 (the sharded optimizer step): in each bucket of x[0..n) (jl_dist_sum_floats's), a rank owns the chunk
 * the ring's reduce-scatter completes on it, chunk (rank + 1) mod N of the bucket's N. jl_dist_shard: the owned
 * chunk [*lo, *lo + *len) of the bucket that starts at `off` (one rank: the whole bucket). jl_dist_spread_floats:
 * every rank's owned chunks of x to every rank (the all-gather half of the ring, bounded by the timeout), so
 * after each rank updated its chunks every rank holds all of x, bit for bit. */
void jl_dist_shard(size_t n, size_t off, size_t *lo, size_t *len);
jl_status jl_dist_spread_floats(float *x, size_t n);
/* Every rank's `bytes` bytes of mine, in rank order, into all (size · bytes). */
jl_status jl_dist_allgather(const void *mine, void *all, size_t bytes);
/* Agreement after a piece of work every rank did: returns st where this rank failed, else the status of the
 * lowest failing rank (message "rank R failed; see its message"), else JL_OK. *flag (may be NULL) becomes the OR
 * of every rank's flag (a stop request). A rank that fails outside the loop (set-up) calls it once before it
 * leaves, so the others stop at their next agreement. */
jl_status jl_dist_agree(jl_status st, int *flag);
/* jl_dist_agree, and when every rank is fine, every rank's `bytes` of mine in rank order into all (one message
 * exchange when bytes ≤ 248). */
jl_status jl_dist_agree_with(jl_status st, int *flag, const void *mine, void *all, size_t bytes);
/* The lowest failing rank of the last agreement that failed (-1: none yet): the one whose message is shown. */
int jl_dist_first_failed(void);
/* A collective timed out or failed: no more agreement is possible (jl_dist_finish aborts the job). */
int jl_dist_broken(void);

/* Test hook: JL_DIST_FAIL=RANK:UPDATE makes that rank's data reader fail at that optimizer update (a bad batch
 * on one rank only), to test the failure path. JL_OK when not set or not this rank / update. */
jl_status jl_dist_injected_fault(long update);

/* Time spent in and bytes sent by jl_dist_sum_floats and the overlapped all-reduce since start (benchmarks). */
void jl_dist_stats(double *seconds, double *bytes_sent);
/* Ring steps of the overlapped all-reduce since start: landed by a poll (during the backward), landed at all. */
void jl_dist_overlap_stats(double *early, double *landed);

#endif
