#define _GNU_SOURCE
#include "timer.h"

double timer_overhead_ns(void)
{
	enum { N = 1000000 };
	volatile uint64_t sink = 0;
	for (int i = 0; i < 10000; i++) /* warm the vDSO page and caches */
		sink += now_ns();
	uint64_t t0 = now_ns();
	for (int i = 0; i < N; i++)
		sink += now_ns();
	uint64_t t1 = now_ns();
	(void)sink;
	return (double)(t1 - t0) / N;
}
