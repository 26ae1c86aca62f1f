/*
 * Latency samples: a full array, filled without allocation in the timed
 * part, sorted afterwards for exact percentiles.
 */
#ifndef SHMBUS_BENCH_HIST_H
#define SHMBUS_BENCH_HIST_H

#include <stdint.h>

struct lat_summary {
	uint64_t n;
	uint64_t min, p50, p90, p99, p999, p9999, max;
	double mean;
};

struct samples {
	uint64_t *v;
	uint64_t n, cap;
};

/* Allocate and touch every page now, so the timed part takes no fault. */
int samples_init(struct samples *s, uint64_t cap);
static inline void samples_add(struct samples *s, uint64_t ns)
{
	if (s->n < s->cap)
		s->v[s->n++] = ns;
}
/* Sorts the samples in place. */
void samples_summary(struct samples *s, struct lat_summary *out);
void samples_free(struct samples *s);

#endif /* SHMBUS_BENCH_HIST_H */
