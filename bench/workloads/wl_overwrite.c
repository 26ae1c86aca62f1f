/*
 * overwrite: a SHMBUS_CH_OVERWRITE channel. The producer never waits; the
 * reader does some work per record and so falls behind and is lapped. We
 * report the producer's rate and the reader's loss, and check the books:
 *
 *   delivered + lost == published - unread      (library counters)
 *   lost == the gaps the reader saw in the payload counters
 *   no record delivered torn (every payload word holds its counter)
 *
 * overwrite-stalled: the reader subscribes and then stalls (does not poll
 * until the producer is done), and overwrite-alone: nobody subscribes. The
 * producer's rate in the three should agree within noise: in overwrite mode
 * the producer never looks at its subscribers.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "timer.h"

#define OW_CAPACITY 1024u /* small: the reader should be lapped */
#define OW_WORK 50 	  /* dependent multiply-adds per record */

enum ow_mode { OW_SLOW_READER, OW_STALLED_READER, OW_NO_READER };

struct reader {
	uint64_t expect; /* next counter if nothing is lost */
	uint64_t gaps;	 /* records skipped, as seen in the counters */
	uint64_t torn, errors, seen, sink;
	uint32_t size;
	char first[160];
};

static void fill(uint8_t *buf, uint32_t size, uint64_t v)
{
	uint32_t w = size / 8;
	for (uint32_t i = 0; i < w; i++)
		memcpy(buf + 8 * i, &v, 8);
	memset(buf + 8 * w, (int)(v & 0xff), size - 8 * w);
}

static int on_record(const shmbus_record_t *rec, void *arg)
{
	struct reader *c = arg;
	const uint8_t *d = rec->data;
	uint64_t v, x;
	memcpy(&v, d, 8);
	c->seen++;
	/* a torn copy would mix two laps' counters */
	for (uint32_t i = 1; i < c->size / 8; i++) {
		memcpy(&x, d + 8 * i, 8);
		if (x != v) {
			c->torn++;
			break;
		}
	}
	if (v != rec->seq || v < c->expect || rec->len != c->size) {
		if (c->errors++ == 0)
			snprintf(c->first, sizeof(c->first),
				 "seq %llu carries counter %llu, expected >= "
				 "%llu (len %u)",
				 (unsigned long long)rec->seq,
				 (unsigned long long)v,
				 (unsigned long long)c->expect, rec->len);
	} else {
		c->gaps += v - c->expect;
	}
	c->expect = v + 1;
	x = v; /* the reader's "work": slow enough to be lapped */
	for (int i = 0; i < OW_WORK; i++)
		x = x * 6364136223846793005ull + 1442695040888963407ull;
	c->sink += x;
	return 0;
}

static int producer(struct run *r, int idx, shmbus_channel_t *ch)
{
	shmbus_producer_t *p;
	uint8_t *buf = malloc(r->size);
	if (buf == NULL)
		return child_fail(r, idx, "out of memory");
	if (sb_producer(r, idx, ch, &p))
		return 1;
	struct proc_result *res = &r->ctl->res[idx];
	uint64_t total = r->warmup + r->count, t0 = 0, f0 = 0;
	barrier_wait(r);
	for (uint64_t i = 0; i < total; i++) {
		if (i == r->warmup) {
			f0 = minflt_now();
			t0 = now_ns();
		}
		fill(buf, r->size, i);
		int rc = shmbus_publish(p, buf, r->size, 0);
		if (rc)
			return child_fail(r, idx, "publish %llu: %s",
					  (unsigned long long)i,
					  shmbus_strerror(rc));
	}
	res->elapsed_ns = now_ns() - t0;
	res->minflt = minflt_now() - f0;
	res->msgs = r->count;
	res->published = total;
	free(buf);
	/* release: every commit before "done" */
	atomic_store_explicit(&r->ctl->producers_done, 1, memory_order_release);
	return 0;
}

static int reader(struct run *r, int idx, shmbus_channel_t *ch)
{
	enum ow_mode mode = *(enum ow_mode *)r->arg;
	if (mode == OW_NO_READER) {
		barrier_wait(r);
		while (!atomic_load_explicit(&r->ctl->producers_done,
					     memory_order_acquire))
			sb_idle_ns(1000000);
		return 0;
	}
	struct reader c = {0};
	c.size = r->size;
	shmbus_sub_t *s;
	if (sb_subscribe(r, idx, ch, "reader", on_record, &c, &s))
		return 1;
	struct proc_result *res = &r->ctl->res[idx];
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(s, &st);
	uint64_t start = st.cursor;
	c.expect = start;
	barrier_wait(r);
	uint64_t f0 = minflt_now(), t0 = now_ns();
	if (mode == OW_STALLED_READER) /* stalled: not a single poll */
		while (!atomic_load_explicit(&r->ctl->producers_done,
					     memory_order_acquire))
			sb_idle_ns(1000000);
	for (;;) {
		int n = shmbus_poll(s, 64);
		if (n < 0)
			return child_fail(r, idx, "poll: %s",
					  shmbus_strerror(n));
		if (n > 0)
			continue;
		/* acquire: the producer's last commit is visible */
		if (atomic_load_explicit(&r->ctl->producers_done,
					 memory_order_acquire)) {
			while ((n = shmbus_poll(s, 4096)) > 0)
				;
			break;
		}
		int rc = sb_idle(s, r->wait);
		if (rc)
			return child_fail(r, idx, "wait: %s",
					  shmbus_strerror(rc));
	}
	res->elapsed_ns = now_ns() - t0;
	res->minflt = minflt_now() - f0;
	shmbus_sub_get_stats(s, &st);
	uint64_t published = r->ctl->res[0].published;
	res->delivered = st.delivered;
	res->lost = st.lost;
	res->tombstones = st.tombstones;
	res->published = published;
	res->unread = published - st.cursor;
	res->msgs = st.delivered;
	res->seq_errors = c.errors + c.torn;
	if (c.errors)
		return child_fail(r, idx, "%llu sequence errors; first: %s",
				  (unsigned long long)c.errors, c.first);
	if (c.torn)
		return child_fail(r, idx, "%llu torn records delivered",
				  (unsigned long long)c.torn);
	if (st.delivered + st.lost + st.tombstones != published - res->unread -
							       start)
		return child_fail(r, idx,
				  "books: delivered %llu + lost %llu != "
				  "published %llu - unread %llu",
				  (unsigned long long)st.delivered,
				  (unsigned long long)st.lost,
				  (unsigned long long)published,
				  (unsigned long long)res->unread);
	if (c.gaps != st.lost)
		return child_fail(r, idx,
				  "lost %llu, but the counters skipped %llu",
				  (unsigned long long)st.lost,
				  (unsigned long long)c.gaps);
	if (c.seen != st.delivered)
		return child_fail(r, idx, "handler saw %llu, delivered %llu",
				  (unsigned long long)c.seen,
				  (unsigned long long)st.delivered);
	return 0;
}

static int child(struct run *r, int idx)
{
	shmbus_t *bus = NULL;
	shmbus_channel_t *ch;
	int rc = sb_open_bus(r, idx, &bus);
	if (rc == 0)
		rc = sb_channel(r, idx, bus, "", OW_CAPACITY,
				SHMBUS_CH_OVERWRITE, &ch);
	if (rc == 0)
		rc = idx == 0 ? producer(r, idx, ch) : reader(r, idx, ch);
	shmbus_close(bus);
	return rc;
}

static int overwrite(const struct bench_opts *o, const char *name,
		     enum ow_mode mode)
{
	struct run r;
	if (run_init(&r, o, name, o->size ? o->size : 64, 2, 0))
		return 1;
	r.arg = &mode;
	r.count = default_count(o, false);
	r.warmup = default_warmup(o, r.count);
	if (r.size < 8) {
		report_note(o, "overwrite: size %u too small; using 8", r.size);
		r.size = 8;
	}
	int rc = run_procs(&r, child);
	if (rc) {
		report_failure(o, &r);
		run_free(&r);
		return rc;
	}
	const struct proc_result *p = &r.ctl->res[0], *c = &r.ctl->res[1];
	struct result res;
	result_init(&res, &r);
	result_from_tp(&res, p->msgs, p->elapsed_ns, r.size);
	res.slot_size = p->slot_size;
	res.minflt = p->minflt;
	res.minflt_peer = c->minflt;
	double loss = c->published ? 100.0 * (double)c->lost /
					     (double)c->published
				   : 0;
	if (mode == OW_NO_READER) {
		snprintf(res.note, sizeof(res.note),
			 "producer rate, nobody subscribed");
		report_result(o, &res);
		run_free(&r);
		return 0;
	}
	snprintf(res.note, sizeof(res.note),
		 "producer rate; reader got %llu, lost %llu (%.1f%%), "
		 "unread %llu of %llu",
		 (unsigned long long)c->delivered,
		 (unsigned long long)c->lost, loss,
		 (unsigned long long)c->unread,
		 (unsigned long long)c->published);
	snprintf(res.extra_json, sizeof(res.extra_json),
		 ",\"published\":%llu,\"delivered\":%llu,\"lost\":%llu,"
		 "\"unread\":%llu,\"loss_pct\":%.2f,\"reader_msgs_per_s\":%.0f",
		 (unsigned long long)c->published,
		 (unsigned long long)c->delivered,
		 (unsigned long long)c->lost, (unsigned long long)c->unread,
		 loss,
		 c->elapsed_ns ? (double)c->delivered /
					 ((double)c->elapsed_ns / 1e9)
			       : 0.0);
	report_result(o, &res);
	run_free(&r);
	return 0;
}

int wl_overwrite(const struct bench_opts *o)
{
	return overwrite(o, "overwrite", OW_SLOW_READER);
}

int wl_overwrite_stalled(const struct bench_opts *o)
{
	return overwrite(o, "overwrite-stalled", OW_STALLED_READER);
}

int wl_overwrite_alone(const struct bench_opts *o)
{
	return overwrite(o, "overwrite-alone", OW_NO_READER);
}
