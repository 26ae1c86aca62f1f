/*
 * floor: the physical latency floor of the machine. Two processes bounce a
 * counter through one cache line each, nothing else: every round trip is
 * two line transfers between cores, which is the least any shared-memory
 * transport can cost.
 */
#define _GNU_SOURCE
#include <stdio.h>

#include "bench.h"
#include "timer.h"

/* 256 bytes apart: not in one 128-byte pair that the adjacent-line
 * prefetcher would pull together */
#define LINE_A 0
#define LINE_B 256

static _Atomic uint64_t *line(struct run *r, size_t off)
{
	return (_Atomic uint64_t *)((uint8_t *)r->scratch + off);
}

static int ping(struct run *r, int idx)
{
	_Atomic uint64_t *a = line(r, LINE_A), *b = line(r, LINE_B);
	struct proc_result *res = &r->ctl->res[idx];
	struct samples s;
	if (samples_init(&s, r->count))
		return child_fail(r, idx, "out of memory for samples");
	uint64_t total = r->warmup + r->count, flt0 = 0;
	barrier_wait(r);
	for (uint64_t i = 1; i <= total; i++) {
		if (i == r->warmup + 1)
			flt0 = minflt_now();
		uint64_t t0 = now_ns();
		/* release/acquire: the counter is the whole message */
		atomic_store_explicit(a, i, memory_order_release);
		while (atomic_load_explicit(b, memory_order_acquire) != i)
			cpu_relax();
		uint64_t t1 = now_ns();
		if (i > r->warmup)
			samples_add(&s, t1 - t0);
	}
	res->minflt = minflt_now() - flt0;
	samples_summary(&s, &res->lat);
	res->has_lat = true;
	samples_free(&s);
	return 0;
}

static int pong(struct run *r, int idx)
{
	_Atomic uint64_t *a = line(r, LINE_A), *b = line(r, LINE_B);
	uint64_t total = r->warmup + r->count;
	barrier_wait(r);
	for (uint64_t i = 1; i <= total; i++) {
		uint64_t v;
		while ((v = atomic_load_explicit(a, memory_order_acquire)) != i) {
			if (v > i)
				return child_fail(r, idx,
						  "floor: saw %llu, expected "
						  "%llu",
						  (unsigned long long)v,
						  (unsigned long long)i);
			cpu_relax();
		}
		atomic_store_explicit(b, i, memory_order_release);
	}
	return 0;
}

static int floor_child(struct run *r, int idx)
{
	return idx == 0 ? ping(r, idx) : pong(r, idx);
}

int wl_floor(const struct bench_opts *o)
{
	struct run r;
	if (run_init(&r, o, "floor", 8, 2, 4096))
		return 1;
	r.wait = SHMBUS_WAIT_SPIN; /* the floor is a spin by definition */
	r.count = default_count(o, true);
	r.warmup = default_warmup(o, r.count);
	int rc = run_procs(&r, floor_child);
	if (rc) {
		report_failure(o, &r);
	} else {
		struct result res;
		result_init(&res, &r);
		res.kind = RES_LAT;
		res.lat = r.ctl->res[0].lat;
		res.minflt = r.ctl->res[0].minflt;
		snprintf(res.note, sizeof(res.note),
			 "round trip = 2 cache-line transfers; includes one "
			 "clock read (%.1f ns)",
			 o->timer_overhead_ns);
		report_result(o, &res);
	}
	run_free(&r);
	return rc;
}
