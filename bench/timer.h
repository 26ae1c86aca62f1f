/*
 * The clock: CLOCK_MONOTONIC through clock_gettime, which the vDSO serves
 * without a system call. Same base as shmbus_now_ns() and record stamps.
 */
#ifndef SHMBUS_BENCH_TIMER_H
#define SHMBUS_BENCH_TIMER_H

#include <stdint.h>
#include <time.h>

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Mean cost of one now_ns(), from 1M back-to-back reads. */
double timer_overhead_ns(void);

#endif /* SHMBUS_BENCH_TIMER_H */
