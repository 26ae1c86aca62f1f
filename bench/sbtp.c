/*
 * The shmbus throughput harness behind throughput, multiproducer and
 * fanout: P producers claim batches, fill payloads in place and commit; S
 * broadcast subscribers check every record's sequence.
 *
 * Payload: [uint64 counter][uint64 producer id, if tagged][filler]. The
 * producer writes all of it (a real producer fills its record); consumers
 * check the counter (and id) only.
 *
 * Phases: set-up, barrier, warm-up, barrier, timed. A consumer's clock runs
 * from leaving the second barrier to its last record. A producer counts
 * itself done after each phase, so that a consumer finding the ring empty
 * after every producer is done reports missing records instead of waiting.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shmbus/journal.h>

#include "bench.h"
#include "sbtp.h"
#include "timer.h"

struct check {
	uint64_t expect[BENCH_MAX_PROCS]; /* next counter, per producer */
	uint64_t received, errors;
	uint32_t size;
	uint32_t fail_every; /* fail these records, every attempt */
	bool tagged;
	char first[160]; /* the first error, for the report */
};

static int on_record(const shmbus_record_t *rec, void *arg)
{
	struct check *c = arg;
	uint64_t v, tag = 0;
	memcpy(&v, rec->data, 8);
	bool fail = c->fail_every && v % c->fail_every == 0;
	if (rec->attempt > 1) /* a redelivery: order is for first ones */
		return fail ? -1 : 0;
	if (c->tagged)
		memcpy(&tag, (const uint8_t *)rec->data + 8, 8);
	c->received++;
	if (tag >= BENCH_MAX_PROCS || v != c->expect[tag] ||
	    rec->len != c->size) {
		if (c->errors++ == 0)
			snprintf(c->first, sizeof(c->first),
				 "seq %llu: producer %llu counter %llu, "
				 "expected %llu (len %u)",
				 (unsigned long long)rec->seq,
				 (unsigned long long)tag, (unsigned long long)v,
				 tag < BENCH_MAX_PROCS
					 ? (unsigned long long)c->expect[tag]
					 : 0ull,
				 rec->len);
		if (tag >= BENCH_MAX_PROCS)
			return 0;
	}
	c->expect[tag] = v + 1;
	return fail ? -1 : 0;
}

static int produce(shmbus_producer_t *p, uint32_t size, bool tagged,
		   uint64_t tag, uint64_t *next, uint64_t n,
		   struct samples *claims, uint64_t pace, uint32_t batch)
{
	uint32_t off = tagged ? 16 : 8;
	uint64_t start = pace ? now_ns() : 0, sent = 0;
	while (n) {
		/* paced: not ahead of start + sent / pace (outside the timed
		 * claim-to-commit) */
		while (pace && now_ns() - start < sent * 1000000000ull / pace)
			cpu_relax();
		uint32_t k = n < batch ? (uint32_t)n : batch;
		shmbus_claim_t c;
		uint64_t t0 = claims ? now_ns() : 0;
		int rc = shmbus_claim(p, k, &c);
		if (rc)
			return rc;
		for (uint32_t i = 0; i < k; i++) {
			uint8_t *pl = shmbus_claim_at(&c, i);
			uint64_t v = (*next)++;
			memcpy(pl, &v, 8);
			if (tagged)
				memcpy(pl + 8, &tag, 8);
			memset(pl + off, (int)(v & 0xff), size - off);
		}
		rc = shmbus_commit(p, &c);
		if (rc)
			return rc;
		if (claims)
			samples_add(claims, now_ns() - t0);
		n -= k;
		sent += k;
	}
	return 0;
}

/* Until c has `target` records; `done` producers-done count ends a wait. */
static int consume(struct run *r, int idx, shmbus_sub_t *s, struct check *c,
		   uint64_t target, uint32_t done)
{
	while (c->received < target) {
		int n = shmbus_poll(s, 4096);
		if (n < 0)
			return child_fail(r, idx, "shmbus_poll: %s",
					  shmbus_strerror(n));
		if (n > 0)
			continue;
		if (atomic_load_explicit(&r->ctl->producers_done,
					 memory_order_acquire) >= done) {
			/* acquire: their commits are visible now */
			if (shmbus_poll(s, 4096) > 0)
				continue;
			return child_fail(r, idx,
					  "missing records: %llu of %llu "
					  "arrived and every producer is done",
					  (unsigned long long)c->received,
					  (unsigned long long)target);
		}
		int rc = sb_idle(s, r->wait);
		if (rc)
			return child_fail(r, idx, "shmbus_sub_wait: %s",
					  shmbus_strerror(rc));
	}
	return 0;
}

static int producer(struct run *r, int idx, const struct sbtp_cfg *cfg,
		    shmbus_channel_t *ch)
{
	shmbus_producer_t *p;
	if (sb_producer(r, idx, ch, &p))
		return 1;
	struct proc_result *res = &r->ctl->res[idx];
	uint64_t next = 0;
	struct samples claims = {0};
	uint32_t batch = cfg->batch ? cfg->batch : BENCH_BATCH;
	if (cfg->time_claims && samples_init(&claims, r->count / batch + 1))
		return child_fail(r, idx, "no memory for claim samples");
	barrier_wait(r); /* every subscriber joined */
	int rc = produce(p, r->size, cfg->tagged, (uint64_t)idx, &next,
			 r->warmup, NULL, cfg->pace, batch);
	atomic_fetch_add_explicit(&r->ctl->producers_done, 1,
				  memory_order_release);
	barrier_wait(r);
	uint64_t f0 = minflt_now(), t0 = now_ns();
	if (rc == 0)
		rc = produce(p, r->size, cfg->tagged, (uint64_t)idx, &next,
			     r->count, cfg->time_claims ? &claims : NULL,
			     cfg->pace, batch);
	res->elapsed_ns = now_ns() - t0;
	if (cfg->time_claims) {
		samples_summary(&claims, &res->lat);
		res->has_lat = true;
		samples_free(&claims);
	}
	res->minflt = minflt_now() - f0;
	res->msgs = r->count;
	atomic_fetch_add_explicit(&r->ctl->producers_done, 1,
				  memory_order_release);
	if (rc)
		return child_fail(r, idx, "claim/commit: %s",
				  shmbus_strerror(rc));
	return 0;
}

/* The journal of a journaled run: DIR/shmbus-bench-journal.PID */
static void journal_dir(const struct run *r, char out[320])
{
	snprintf(out, 320, "%s/shmbus-bench-journal.%d",
		 r->o->dir[0] ? r->o->dir : "/var/tmp", (int)getppid());
}

/* Journal until `target` records are in (or every producer is done). */
static int journal_until(struct run *r, int idx, shmbus_journal_t *j,
			 uint64_t target, uint32_t done)
{
	while (shmbus_journal_end(j) < target) {
		int n = shmbus_journal_poll(j, 4096);
		if (n < 0)
			return child_fail(r, idx, "shmbus_journal_poll: %s: %s",
					  shmbus_strerror(n), shmbus_errmsg());
		if (n > 0)
			continue;
		if (atomic_load_explicit(&r->ctl->producers_done,
					 memory_order_acquire) >= done &&
		    shmbus_journal_poll(j, 4096) == 0)
			return child_fail(r, idx,
					  "journal: %llu of %llu records and "
					  "every producer is done",
					  (unsigned long long)shmbus_journal_end(j),
					  (unsigned long long)target);
		shmbus_journal_wait(j, 1000000);
	}
	return 0;
}

/* The journaler as the last subscriber: asynchronous, or what a
 * SHMBUS_CH_JOURNAL_SYNC producer waits for. */
static int journaler(struct run *r, int idx, const struct sbtp_cfg *cfg,
		     shmbus_channel_t *ch)
{
	char dir[320];
	journal_dir(r, dir);
	bench_rmrf(dir);
	shmbus_journal_opts_t jo = {
		.sync = cfg->sync_every ? SHMBUS_JOURNAL_SYNC_EVERY_N
					: SHMBUS_JOURNAL_SYNC_NONE,
		.sync_every = cfg->sync_every};
	shmbus_journal_attach_opts_t ao = {.wait = r->wait, .journal = &jo};
	shmbus_journal_t *j;
	int rc = shmbus_journal_attach(ch, dir, &ao, &j);
	if (rc)
		return child_fail(r, idx, "shmbus_journal_attach(%s): %s", dir,
				  shmbus_errmsg());
	struct proc_result *res = &r->ctl->res[idx];
	uint32_t np = (uint32_t)cfg->producers;
	barrier_wait(r);
	rc = journal_until(r, idx, j, np * r->warmup, np);
	barrier_wait(r); /* after a failure too: the others wait here */
	uint64_t t0 = now_ns();
	if (rc == 0)
		rc = journal_until(r, idx, j, np * (r->warmup + r->count),
				   2 * np);
	res->elapsed_ns = now_ns() - t0;
	res->msgs = np * r->count;
	shmbus_journal_close(j);
	bench_rmrf(dir);
	return rc;
}

static int consumer(struct run *r, int idx, const struct sbtp_cfg *cfg,
		    shmbus_channel_t *ch)
{
	if (cfg->journal && idx == cfg->producers + cfg->subscribers - 1)
		return journaler(r, idx, cfg, ch);

	struct check c = {0};
	c.size = r->size;
	c.tagged = cfg->tagged;
	if (idx == cfg->producers + cfg->subscribers - 1)
		c.fail_every = cfg->fail_every;
	char name[32];
	snprintf(name, sizeof(name), "sub%d", idx);
	shmbus_sub_t *s;
	/* a failing subscriber: short back-offs, and a full retry segment
	 * spills to the DLQ, so that it never holds (what is measured is
	 * whether the others notice it) */
	shmbus_sub_opts_t so = {.name = name,
				.wait = r->wait,
				.retry = {.max_attempts = 3,
					  .base_us = 10,
					  .cap_us = 100,
					  .on_full = SHMBUS_RETRY_FULL_DLQ}};
	int rc = shmbus_subscribe(ch, on_record, &c, &so, &s);
	if (rc)
		return child_fail(r, idx, "shmbus_subscribe(%s): %s: %s", name,
				  shmbus_strerror(rc), shmbus_errmsg());
	struct proc_result *res = &r->ctl->res[idx];
	uint32_t np = (uint32_t)cfg->producers;
	barrier_wait(r);
	rc = consume(r, idx, s, &c, np * r->warmup, np);
	barrier_wait(r); /* after a failure too: the others wait here */
	if (rc)
		return rc;
	uint64_t f0 = minflt_now(), t0 = now_ns();
	rc = consume(r, idx, s, &c, np * (r->warmup + r->count), 2 * np);
	uint64_t t1 = now_ns();
	res->elapsed_ns = t1 - t0;
	res->minflt = minflt_now() - f0;
	res->msgs = np * r->count;
	res->seq_errors = c.errors;
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(s, &st);
	res->delivered = st.delivered;
	res->tombstones = st.tombstones;
	if (rc)
		return rc;
	if (c.errors)
		return child_fail(r, idx, "%llu sequence errors; first: %s",
				  (unsigned long long)c.errors, c.first);
	return 0;
}

static int child(struct run *r, int idx)
{
	const struct sbtp_cfg *cfg = r->arg;
	shmbus_t *bus = NULL;
	shmbus_channel_t *ch;
	int rc = sb_open_bus(r, idx, &bus);
	if (rc == 0)
		rc = sb_channel(r, idx, bus, "", r->o->capacity, cfg->chflags,
				&ch);
	if (rc == 0)
		rc = idx < cfg->producers ? producer(r, idx, cfg, ch)
					  : consumer(r, idx, cfg, ch);
	shmbus_close(bus);
	return rc;
}

int sbtp_run(const struct bench_opts *o, const struct sbtp_cfg *cfg,
	     uint32_t size)
{
	struct run r;
	int np = cfg->producers, ns = cfg->subscribers;
	if (run_init(&r, o, cfg->name, size, np + ns, 0))
		return 1;
	r.arg = (void *)cfg;
	r.count = o->count || !cfg->count ? default_count(o, false)
					  : cfg->count;
	r.warmup = default_warmup(o, r.count);
	int rc = run_procs(&r, child);
	if (rc) {
		report_failure(o, &r);
		run_free(&r);
		return rc;
	}
	/* the slowest subscriber sets the rate everyone sustained */
	uint64_t worst = 0, best = UINT64_MAX, flt = 0, pflt = 0;
	for (int i = np; i < np + ns; i++) {
		const struct proc_result *pr = &r.ctl->res[i];
		if (pr->elapsed_ns > worst)
			worst = pr->elapsed_ns;
		if (pr->elapsed_ns < best)
			best = pr->elapsed_ns;
		flt = pr->minflt > flt ? pr->minflt : flt;
	}
	for (int i = 0; i < np; i++)
		pflt = r.ctl->res[i].minflt > pflt ? r.ctl->res[i].minflt
						   : pflt;
	struct result res;
	result_init(&res, &r);
	if (cfg->rate_of_first)
		worst = r.ctl->res[np].elapsed_ns;
	result_from_tp(&res, (uint64_t)np * r.count, worst, size);
	res.slot_size = r.ctl->res[0].slot_size;
	res.minflt = flt;
	res.minflt_peer = pflt;
	if (cfg->variant[0])
		snprintf(res.variant, sizeof(res.variant), "%s",
			 cfg->variant);
	size_t off = (size_t)snprintf(
		res.note, sizeof(res.note),
		"%d producer(s) -> %d subscriber(s), claims of <= %u, "
		"ring of %u slots",
		np, ns, cfg->batch ? cfg->batch : BENCH_BATCH, o->capacity);
	if (r.wait != o->wait && off < sizeof(res.note))
		snprintf(res.note + off, sizeof(res.note) - off,
			 "; %d processes on %d cpus: wait %s, not %s",
			 np + ns, o->ncpus, wait_name(r.wait),
			 wait_name(o->wait));
	snprintf(res.extra_json, sizeof(res.extra_json),
		 ",\"producers\":%d,\"subscribers\":%d,"
		 "\"deliveries_per_s\":%.0f,\"fastest_sub_msgs_per_s\":%.0f",
		 np, ns, res.msgs_per_s * ns,
		 best ? (double)np * r.count / ((double)best / 1e9) : 0.0);
	if (cfg->time_claims) {
		const struct lat_summary *l = &r.ctl->res[0].lat;
		size_t n = strlen(res.extra_json);
		snprintf(res.extra_json + n, sizeof(res.extra_json) - n,
			 ",\"claim_commit_p50_ns\":%llu,"
			 "\"claim_commit_p99_ns\":%llu,"
			 "\"claim_commit_p999_ns\":%llu",
			 (unsigned long long)l->p50,
			 (unsigned long long)l->p99,
			 (unsigned long long)l->p999);
		n = strlen(res.note);
		snprintf(res.note + n, sizeof(res.note) - n,
			 "; claim-to-commit of %u: p50 %llu ns, p99 %llu ns, "
			 "p99.9 %llu ns",
			 cfg->batch ? cfg->batch : BENCH_BATCH,
			 (unsigned long long)l->p50,
			 (unsigned long long)l->p99,
			 (unsigned long long)l->p999);
	}
	report_result(o, &res);
	run_free(&r);
	return 0;
}
