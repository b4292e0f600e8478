/* When the kernels go parallel. Starting an OpenMP team and joining it costs microseconds, and far more
 * when the machine is oversubscribed and a team member has been descheduled, so loops over less work
 * than this (counted in elements touched or multiply-adds) run on the calling thread. */
#ifndef JL_CORE_PARALLEL_H
#define JL_CORE_PARALLEL_H
#define JL_PARALLEL_MIN_WORK 32768
#define JL_WORTH_THREADS(work) ((double)(work) >= (double)JL_PARALLEL_MIN_WORK)
#endif
