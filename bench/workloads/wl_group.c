/*
 * group: 1 producer -> a competing-consumer group of 2 members
 * (shmbus_group_join): each record must reach exactly one member; group1:
 * of one member; group1-plain: a plain subscriber in the same harness (the
 * same producer, handler and counting), so that group1 / group1-plain is
 * what the group protocol costs a record, on two processes. Each
 * member marks the counters it handled in a bitmap of its own in shared
 * memory (no contention between members); the parent checks afterwards
 * that every counter is marked exactly once.
 *
 * The members finish together: each adds what a poll dispatched to a shared
 * count, and a phase ends when the count reaches its target.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "timer.h"

#define MAX_MEMBERS 2
#define STALL_NS 2000000000ull /* no progress this long, producer done */

struct group_cfg {
	bool keyed;
	int members;
	bool plain; /* group1-plain: a plain subscriber in the same harness */
};

struct layout {
	_Atomic uint64_t *handled;
	uint64_t *bits[MAX_MEMBERS]; /* one bitmap per member */
	uint64_t words;		     /* per bitmap */
};

static void layout_at(struct run *r, struct layout *l)
{
	const struct group_cfg *cfg = r->arg;
	uint64_t total = r->warmup + r->count;
	l->words = (total + 63) / 64;
	l->handled = (_Atomic uint64_t *)r->scratch;
	for (int m = 0; m < MAX_MEMBERS; m++)
		l->bits[m] = m < cfg->members
				     ? (uint64_t *)((uint8_t *)r->scratch +
						    4096) +
					       (size_t)m * l->words
				     : NULL;
}

static size_t scratch_for(uint64_t total, int members)
{
	return 4096 + (size_t)members * ((total + 63) / 64) * 8;
}

struct member {
	uint64_t *bits;
	uint64_t total, bad, got;
};

static int on_record(const shmbus_record_t *rec, void *arg)
{
	struct member *m = arg;
	uint64_t v;
	memcpy(&v, rec->data, 8);
	m->got++;
	if (v >= m->total) {
		m->bad++;
		return 0;
	}
	m->bits[v >> 6] |= 1ull << (v & 63);
	return 0;
}

static int produce(struct run *r, int idx, shmbus_producer_t *p,
		   uint64_t *next, uint64_t n)
{
	while (n) {
		uint32_t k = n < BENCH_BATCH ? (uint32_t)n : BENCH_BATCH;
		shmbus_claim_t c;
		int rc = shmbus_claim(p, k, &c);
		for (uint32_t i = 0; rc == 0 && i < k; i++) {
			uint8_t *pl = shmbus_claim_at(&c, i);
			uint64_t v = (*next)++;
			memcpy(pl, &v, 8);
			memset(pl + 8, (int)(v & 0xff), r->size - 8);
			/* keys: 1,024 aggregates (used by group-keyed);
			 * none on a compact channel */
			shmbus_claim_set(p, &c, i, r->size,
					 r->o->compact ? 0 : v % 1024);
		}
		if (rc == 0)
			rc = shmbus_commit(p, &c);
		if (rc)
			return child_fail(r, idx, "claim/commit: %s",
					  shmbus_strerror(rc));
		n -= k;
	}
	return 0;
}

/* Until the group as a whole handled `target` records. */
static int consume(struct run *r, int idx, shmbus_sub_t *s,
		   _Atomic uint64_t *handled, uint64_t target)
{
	uint64_t last = 0, since = 0;
	for (;;) {
		int n = shmbus_poll(s, 256);
		if (n < 0)
			return child_fail(r, idx, "shmbus_poll: %s",
					  shmbus_strerror(n));
		if (n > 0) {
			atomic_fetch_add_explicit(handled, (uint64_t)n,
						  memory_order_relaxed);
			continue;
		}
		uint64_t h = atomic_load_explicit(handled,
						  memory_order_relaxed);
		if (h >= target)
			return 0;
		if (h != last) {
			last = h;
			since = 0;
		} else if (atomic_load_explicit(&r->ctl->producers_done,
						memory_order_acquire)) {
			uint64_t t = now_ns();
			if (since == 0)
				since = t;
			else if (t - since > STALL_NS)
				return child_fail(r, idx,
						  "missing records: the group "
						  "handled %llu of %llu",
						  (unsigned long long)h,
						  (unsigned long long)target);
		}
		int rc = sb_idle(s, r->wait);
		if (rc)
			return child_fail(r, idx, "shmbus_sub_wait: %s",
					  shmbus_strerror(rc));
	}
}

static int child(struct run *r, int idx)
{
	struct layout l;
	layout_at(r, &l);
	struct proc_result *res = &r->ctl->res[idx];
	shmbus_t *bus = NULL;
	shmbus_channel_t *ch;
	int rc = sb_open_bus(r, idx, &bus);
	if (rc == 0)
		rc = sb_channel(r, idx, bus, "", r->o->capacity, 0, &ch);
	if (rc)
		goto out;
	if (idx == 0) {
		shmbus_producer_t *p;
		uint64_t next = 0;
		if ((rc = sb_producer(r, idx, ch, &p)))
			goto out;
		barrier_wait(r); /* the group exists */
		rc = produce(r, idx, p, &next, r->warmup);
		barrier_wait(r);
		uint64_t f0 = minflt_now();
		if (rc == 0)
			rc = produce(r, idx, p, &next, r->count);
		res->minflt = minflt_now() - f0;
		atomic_store_explicit(&r->ctl->producers_done, 1,
				      memory_order_release);
		goto out;
	}
	struct member m = {.bits = l.bits[idx - 1],
			   .total = r->warmup + r->count};
	memset(m.bits, 0, l.words * 8); /* fault it in before any clock */
	const struct group_cfg *cfg = r->arg;
	shmbus_sub_opts_t so = {.name = "group",
				.wait = r->wait,
				.flags = cfg->keyed ? SHMBUS_GROUP_KEYED : 0};
	shmbus_sub_t *s;
	rc = cfg->plain ? shmbus_subscribe(ch, on_record, &m, &so, &s)
			: shmbus_group_join(ch, on_record, &m, &so, &s);
	if (rc) {
		rc = child_fail(r, idx, "join: %s: %s",
				shmbus_strerror(rc), shmbus_errmsg());
		goto out;
	}
	barrier_wait(r);
	rc = consume(r, idx, s, l.handled, r->warmup);
	barrier_wait(r);
	uint64_t f0 = minflt_now(), t0 = now_ns();
	if (rc == 0)
		rc = consume(r, idx, s, l.handled, r->warmup + r->count);
	res->elapsed_ns = now_ns() - t0;
	res->minflt = minflt_now() - f0;
	res->delivered = m.got;
	res->seq_errors = m.bad;
	if (rc == 0 && m.bad)
		rc = child_fail(r, idx, "%llu records with a counter out of "
					"range",
				(unsigned long long)m.bad);
out:
	shmbus_close(bus);
	return rc;
}

/* Every counter handled by exactly one member; else describe the first. */
static int check(struct run *r, char *why, size_t len)
{
	struct layout l;
	layout_at(r, &l);
	uint64_t total = r->warmup + r->count, missing = 0, dup = 0;
	for (uint64_t w = 0; w < l.words; w++) {
		uint64_t want = w + 1 < l.words || total % 64 == 0
					? ~0ull
					: (1ull << (total % 64)) - 1;
		uint64_t a = l.bits[0][w], b = l.bits[1] ? l.bits[1][w] : 0;
		missing += (uint64_t)__builtin_popcountll(want & ~(a | b));
		dup += (uint64_t)__builtin_popcountll(a & b);
	}
	if (missing || dup)
		snprintf(why, len, "%llu records handled by no member, %llu "
				   "by both",
			 (unsigned long long)missing, (unsigned long long)dup);
	return missing || dup;
}

static int group(const struct bench_opts *o, const char *name, bool keyed,
		 int members, bool plain)
{
	struct run r;
	struct group_cfg cfg = {keyed, members, plain};
	uint64_t count = default_count(o, false);
	uint64_t total = count + default_warmup(o, count);
	if (run_init(&r, o, name, o->size ? o->size : 64, 1 + members,
		     scratch_for(total, members)))
		return 1;
	r.arg = &cfg;
	r.count = count;
	r.warmup = total - count;
	int rc = run_procs(&r, child);
	char why[160];
	if (rc == 0 && check(&r, why, sizeof(why))) {
		child_fail(&r, 0, "exactly-once: %s", why);
		rc = 1;
	}
	if (rc) {
		report_failure(o, &r);
		run_free(&r);
		return rc;
	}
	uint64_t worst = 0, flt = 0;
	char split[64] = "";
	for (int i = 1; i <= members; i++) {
		const struct proc_result *pr = &r.ctl->res[i];
		worst = pr->elapsed_ns > worst ? pr->elapsed_ns : worst;
		flt = pr->minflt > flt ? pr->minflt : flt;
	}
	uint64_t second = members > 1 ? r.ctl->res[2].delivered : 0;
	snprintf(split, sizeof(split), "%llu/%llu",
		 (unsigned long long)r.ctl->res[1].delivered,
		 (unsigned long long)second);
	struct result res;
	result_init(&res, &r);
	result_from_tp(&res, r.count, worst, r.size);
	snprintf(res.variant, sizeof(res.variant), "members=%d", members);
	res.slot_size = r.ctl->res[0].slot_size;
	res.minflt = flt;
	res.minflt_peer = r.ctl->res[0].minflt;
	size_t off = (size_t)snprintf(res.note, sizeof(res.note),
				      "each record to exactly one member "
				      "(checked); records per member %s",
				      split);
	if (r.wait != o->wait && off < sizeof(res.note))
		snprintf(res.note + off, sizeof(res.note) - off,
			 "; %d processes on %d cpus: wait %s, not %s",
			 r.nprocs, o->ncpus, wait_name(r.wait),
			 wait_name(o->wait));
	snprintf(res.extra_json, sizeof(res.extra_json),
		 ",\"members\":%d,\"member_records\":[%llu,%llu]", members,
		 (unsigned long long)r.ctl->res[1].delivered,
		 (unsigned long long)second);
	report_result(o, &res);
	run_free(&r);
	return 0;
}

int wl_group(const struct bench_opts *o)
{
	return group(o, "group", false, 2, false);
}

int wl_group_keyed(const struct bench_opts *o)
{
	return group(o, "group-keyed", true, 2, false);
}

int wl_group1(const struct bench_opts *o)
{
	return group(o, "group1", false, 1, false);
}

int wl_group1_keyed(const struct bench_opts *o)
{
	return group(o, "group1-keyed", true, 1, false);
}

int wl_group1_plain(const struct bench_opts *o)
{
	return group(o, "group1-plain", false, 1, true);
}
