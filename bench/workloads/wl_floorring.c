/*
 * floorring: the throughput floor. The least an SPSC ring in shared memory
 * can do: 64-byte-aligned slots, no per-slot markers, each side caching the
 * other's index and publishing its own once per batch. shmbus does more per
 * record (header, marker, cursor protocol); this bounds what that costs.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "timer.h"

#define HEAD_OFF 0   /* written by the producer */
#define TAIL_OFF 256 /* written by the consumer */
#define SLOTS_OFF 4096

struct ring {
	_Atomic uint64_t *head, *tail;
	uint8_t *slots;
	uint64_t mask;
	uint32_t slot, size;
};

static void ring_at(struct run *r, struct ring *g)
{
	uint8_t *base = r->scratch;
	g->head = (_Atomic uint64_t *)(base + HEAD_OFF);
	g->tail = (_Atomic uint64_t *)(base + TAIL_OFF);
	g->slots = base + SLOTS_OFF;
	g->mask = r->o->capacity - 1;
	g->size = r->size;
	g->slot = (r->size + BENCH_CACHELINE - 1) / BENCH_CACHELINE *
		  BENCH_CACHELINE;
}

/* Producer state survives the warm-up / timed split. */
struct prod {
	uint64_t head, tail_cache, next;
};

static void produce(struct ring *g, struct prod *p, uint64_t n)
{
	uint64_t cap = g->mask + 1, end = p->head + n;
	while (p->head < end) {
		uint64_t room = cap - (p->head - p->tail_cache);
		if (room == 0) {
			p->tail_cache = atomic_load_explicit(
				g->tail, memory_order_acquire);
			room = cap - (p->head - p->tail_cache);
			if (room == 0) {
				cpu_relax();
				continue;
			}
		}
		uint64_t k = end - p->head;
		if (k > room)
			k = room;
		if (k > BENCH_BATCH)
			k = BENCH_BATCH;
		for (uint64_t i = 0; i < k; i++) {
			uint8_t *s = g->slots + ((p->head + i) & g->mask) *
							g->slot;
			uint64_t c = p->next++;
			memcpy(s, &c, 8);
			memset(s + 8, (int)(c & 0xff), g->size - 8);
		}
		p->head += k;
		/* release: the slots before the index that reveals them */
		atomic_store_explicit(g->head, p->head, memory_order_release);
	}
}

struct cons {
	uint64_t tail, head_cache, expect, errors;
};

static void consume(struct ring *g, struct cons *c, uint64_t n)
{
	uint64_t end = c->tail + n;
	while (c->tail < end) {
		if (c->head_cache == c->tail) {
			c->head_cache = atomic_load_explicit(
				g->head, memory_order_acquire);
			if (c->head_cache == c->tail) {
				cpu_relax();
				continue;
			}
		}
		uint64_t k = c->head_cache - c->tail;
		if (k > end - c->tail)
			k = end - c->tail;
		if (k > BENCH_BATCH)
			k = BENCH_BATCH;
		for (uint64_t i = 0; i < k; i++) {
			uint64_t v;
			memcpy(&v, g->slots + ((c->tail + i) & g->mask) *
						      g->slot,
			       8);
			if (v != c->expect)
				c->errors++;
			c->expect = v + 1;
		}
		c->tail += k;
		/* release: our reads before the producer reuses the slots */
		atomic_store_explicit(g->tail, c->tail, memory_order_release);
	}
}

static int child(struct run *r, int idx)
{
	struct ring g;
	ring_at(r, &g);
	struct proc_result *res = &r->ctl->res[idx];
	res->slot_size = g.slot;
	/* Fault the ring in, in both processes, before any clock runs: shmbus
	 * prefaults its channels, and the floor must not pay what it skips. */
	size_t bytes = (size_t)(g.mask + 1) * g.slot;
	if (idx == 0)
		memset(g.slots, 0, bytes);
	barrier_wait(r);
	if (idx == 1)
		for (size_t off = 0; off < bytes; off += 4096)
			(void)*(volatile uint8_t *)(g.slots + off);
	barrier_wait(r);
	if (idx == 0) {
		struct prod p = {0};
		produce(&g, &p, r->warmup);
		barrier_wait(r);
		uint64_t f0 = minflt_now();
		produce(&g, &p, r->count);
		res->minflt = minflt_now() - f0;
		return 0;
	}
	struct cons c = {0};
	consume(&g, &c, r->warmup);
	barrier_wait(r);
	uint64_t f0 = minflt_now(), t0 = now_ns();
	consume(&g, &c, r->count);
	uint64_t t1 = now_ns();
	res->minflt = minflt_now() - f0;
	res->elapsed_ns = t1 - t0;
	res->msgs = r->count;
	res->seq_errors = c.errors;
	if (c.errors)
		return child_fail(r, idx, "%llu sequence errors",
				  (unsigned long long)c.errors);
	return 0;
}

int wl_floorring(const struct bench_opts *o)
{
	uint32_t sizes[8];
	int n = tp_sizes(o, sizes, 8), failed = 0;
	for (int i = 0; i < n && !interrupted(); i++) {
		struct run r;
		uint32_t slot = (sizes[i] + 63) / 64 * 64;
		if (run_init(&r, o, "floorring", sizes[i], 2,
			     SLOTS_OFF + (size_t)o->capacity * slot))
			return 1;
		r.wait = SHMBUS_WAIT_SPIN;
		r.count = default_count(o, false);
		r.warmup = default_warmup(o, r.count);
		if (run_procs(&r, child)) {
			report_failure(o, &r);
			failed = 1;
		} else {
			struct result res;
			result_init(&res, &r);
			result_from_tp(&res, r.ctl->res[1].msgs,
				       r.ctl->res[1].elapsed_ns, r.size);
			res.slot_size = r.ctl->res[1].slot_size;
			res.minflt = r.ctl->res[1].minflt;
			res.minflt_peer = r.ctl->res[0].minflt;
			snprintf(res.note, sizeof(res.note),
				 "ring of %u slots, index published per batch "
				 "of <= %u",
				 o->capacity, BENCH_BATCH);
			report_result(o, &res);
		}
		run_free(&r);
	}
	return failed;
}
