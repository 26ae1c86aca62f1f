#define _GNU_SOURCE
#include "hist.h"

#include <stdlib.h>
#include <string.h>

int samples_init(struct samples *s, uint64_t cap)
{
	s->n = 0;
	s->cap = cap;
	s->v = malloc((cap ? cap : 1) * sizeof(*s->v));
	if (s->v == NULL)
		return -1;
	/* first touch faults the pages in before the clock starts; not
	 * zero, which the compiler may turn into calloc (no touch at all) */
	memset(s->v, 0xff, (cap ? cap : 1) * sizeof(*s->v));
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least p% of samples <= it. */
static uint64_t rank(const struct samples *s, double p)
{
	uint64_t k = (uint64_t)((p / 100.0) * (double)s->n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > s->n)
		k = s->n;
	return s->v[k - 1];
}

void samples_summary(struct samples *s, struct lat_summary *out)
{
	memset(out, 0, sizeof(*out));
	if (s->n == 0)
		return;
	qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
	long double sum = 0;
	for (uint64_t i = 0; i < s->n; i++)
		sum += s->v[i];
	out->n = s->n;
	out->min = s->v[0];
	out->p50 = rank(s, 50);
	out->p90 = rank(s, 90);
	out->p99 = rank(s, 99);
	out->p999 = rank(s, 99.9);
	out->p9999 = rank(s, 99.99);
	out->max = s->v[s->n - 1];
	out->mean = (double)(sum / s->n);
}

void samples_free(struct samples *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}
