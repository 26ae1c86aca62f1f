/*
 * manychannels: 1 producer spreading its records over 16 channels, in
 * claims of up to 64 per channel in turn -> 1 consumer reading all 16
 * through one poller (shmbus_poller_*). Each channel's counters are checked
 * in order. Measures what the poller's ready bitmap costs over one channel.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "timer.h"

#define CHANNELS 16
#define PER_CHANNEL_CAPACITY 1024

struct chk {
	uint64_t expect, errors, got;
	uint32_t size;
	int ch;
	char *first; /* shared by the channels of one consumer */
	size_t first_len;
};

static int on_record(const shmbus_record_t *rec, void *arg)
{
	struct chk *c = arg;
	uint64_t v;
	memcpy(&v, rec->data, 8);
	c->got++;
	if (v != c->expect || rec->len != c->size) {
		if (c->errors++ == 0 && c->first[0] == 0)
			snprintf(c->first, c->first_len,
				 "channel %d: counter %llu, expected %llu",
				 c->ch, (unsigned long long)v,
				 (unsigned long long)c->expect);
	}
	c->expect = v + 1;
	return 0;
}

static int open_all(struct run *r, int idx, shmbus_t *bus,
		    shmbus_channel_t **chs)
{
	for (int i = 0; i < CHANNELS; i++) {
		char suffix[8];
		snprintf(suffix, sizeof(suffix), "c%d", i);
		if (sb_channel(r, idx, bus, suffix, PER_CHANNEL_CAPACITY, 0,
			       &chs[i]))
			return 1;
	}
	return 0;
}

/* n records over the channels in turn, a claim of <= 64 at a time */
static int produce(struct run *r, int idx, shmbus_producer_t **p,
		   uint64_t *next, int *turn, uint64_t n)
{
	while (n) {
		int c = (*turn)++ % CHANNELS;
		uint32_t k = n < BENCH_BATCH ? (uint32_t)n : BENCH_BATCH;
		shmbus_claim_t cl;
		int rc = shmbus_claim(p[c], k, &cl);
		for (uint32_t i = 0; rc == 0 && i < k; i++) {
			uint8_t *pl = shmbus_claim_at(&cl, i);
			uint64_t v = next[c]++;
			memcpy(pl, &v, 8);
			memset(pl + 8, (int)(v & 0xff), r->size - 8);
		}
		if (rc == 0)
			rc = shmbus_commit(p[c], &cl);
		if (rc)
			return child_fail(r, idx, "claim/commit: %s",
					  shmbus_strerror(rc));
		n -= k;
	}
	return 0;
}

static uint64_t received(const struct chk *c)
{
	uint64_t n = 0;
	for (int i = 0; i < CHANNELS; i++)
		n += c[i].got;
	return n;
}

static int consume(struct run *r, int idx, shmbus_poller_t *pl,
		   struct chk *c, uint64_t target, uint32_t done)
{
	while (received(c) < target) {
		int n = shmbus_poller_poll(pl, 4096);
		if (n < 0)
			return child_fail(r, idx, "shmbus_poller_poll: %s",
					  shmbus_strerror(n));
		if (n > 0)
			continue;
		if (atomic_load_explicit(&r->ctl->producers_done,
					 memory_order_acquire) >= done) {
			if (shmbus_poller_poll(pl, 4096) > 0)
				continue;
			return child_fail(r, idx,
					  "missing records: %llu of %llu "
					  "arrived and the producer is done",
					  (unsigned long long)received(c),
					  (unsigned long long)target);
		}
		if (r->wait == SHMBUS_WAIT_SPIN) {
			cpu_relax();
		} else {
			int rc = shmbus_poller_wait(pl, 100000000u);
			if (rc && rc != SHMBUS_EAGAIN && rc != SHMBUS_EINTR)
				return child_fail(r, idx,
						  "shmbus_poller_wait: %s",
						  shmbus_strerror(rc));
		}
	}
	return 0;
}

static int producer(struct run *r, int idx, shmbus_channel_t **chs)
{
	shmbus_producer_t *p[CHANNELS];
	uint64_t next[CHANNELS] = {0};
	int turn = 0;
	for (int i = 0; i < CHANNELS; i++)
		if (sb_producer(r, idx, chs[i], &p[i]))
			return 1;
	struct proc_result *res = &r->ctl->res[idx];
	barrier_wait(r);
	int rc = produce(r, idx, p, next, &turn, r->warmup);
	atomic_fetch_add_explicit(&r->ctl->producers_done, 1,
				  memory_order_release);
	barrier_wait(r);
	uint64_t f0 = minflt_now();
	if (rc == 0)
		rc = produce(r, idx, p, next, &turn, r->count);
	res->minflt = minflt_now() - f0;
	atomic_fetch_add_explicit(&r->ctl->producers_done, 1,
				  memory_order_release);
	return rc;
}

static int consumer(struct run *r, int idx, shmbus_t *bus,
		    shmbus_channel_t **chs)
{
	struct chk c[CHANNELS];
	char first[160] = "";
	shmbus_poller_t *pl;
	int rc = shmbus_poller_open(bus, r->wait, &pl);
	if (rc)
		return child_fail(r, idx, "shmbus_poller_open: %s: %s",
				  shmbus_strerror(rc), shmbus_errmsg());
	for (int i = 0; i < CHANNELS; i++) {
		shmbus_sub_t *s;
		c[i] = (struct chk){.size = r->size, .ch = i, .first = first,
				    .first_len = sizeof(first)};
		if (sb_subscribe(r, idx, chs[i], "poller", on_record, &c[i],
				 &s))
			return 1;
		if ((rc = shmbus_poller_add(pl, s)))
			return child_fail(r, idx, "shmbus_poller_add: %s: %s",
					  shmbus_strerror(rc),
					  shmbus_errmsg());
	}
	struct proc_result *res = &r->ctl->res[idx];
	barrier_wait(r);
	rc = consume(r, idx, pl, c, r->warmup, 1);
	barrier_wait(r);
	if (rc)
		return rc;
	uint64_t f0 = minflt_now(), t0 = now_ns();
	rc = consume(r, idx, pl, c, r->warmup + r->count, 2);
	res->elapsed_ns = now_ns() - t0;
	res->minflt = minflt_now() - f0;
	res->msgs = r->count;
	uint64_t errors = 0;
	for (int i = 0; i < CHANNELS; i++)
		errors += c[i].errors;
	res->seq_errors = errors;
	shmbus_poller_close(pl);
	if (rc == 0 && errors)
		rc = child_fail(r, idx, "%llu sequence errors; first: %s",
				(unsigned long long)errors, first);
	return rc;
}

static int child(struct run *r, int idx)
{
	shmbus_t *bus = NULL;
	shmbus_channel_t *chs[CHANNELS];
	int rc = sb_open_bus(r, idx, &bus);
	if (rc == 0)
		rc = open_all(r, idx, bus, chs);
	if (rc == 0)
		rc = idx == 0 ? producer(r, idx, chs)
			      : consumer(r, idx, bus, chs);
	shmbus_close(bus);
	return rc;
}

int wl_manychannels_tp(const struct bench_opts *o)
{
	struct run r;
	if (run_init(&r, o, "manychannels-tp", o->size ? o->size : 64, 2, 0))
		return 1;
	r.count = default_count(o, false);
	r.warmup = default_warmup(o, r.count);
	int rc = run_procs(&r, child);
	if (rc) {
		report_failure(o, &r);
		run_free(&r);
		return rc;
	}
	struct result res;
	result_init(&res, &r);
	result_from_tp(&res, r.count, r.ctl->res[1].elapsed_ns, r.size);
	snprintf(res.variant, sizeof(res.variant), "channels=%d", CHANNELS);
	res.slot_size = r.ctl->res[1].slot_size;
	res.minflt = r.ctl->res[1].minflt;
	res.minflt_peer = r.ctl->res[0].minflt;
	snprintf(res.note, sizeof(res.note),
		 "1 producer, claims of <= %u per channel in turn -> 1 "
		 "poller over %d subscribers; rings of %u slots",
		 BENCH_BATCH, CHANNELS, PER_CHANNEL_CAPACITY);
	snprintf(res.extra_json, sizeof(res.extra_json), ",\"channels\":%d",
		 CHANNELS);
	report_result(o, &res);
	run_free(&r);
	return 0;
}
