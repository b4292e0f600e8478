#ifndef JL_CORE_TIMER_H
#define JL_CORE_TIMER_H
#include <time.h>
/* Monotonic wall-clock seconds. */
static inline double jl_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
#endif
