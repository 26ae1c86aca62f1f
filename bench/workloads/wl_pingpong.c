/*
 * pingpong: a round trip through two shmbus channels, A -> B on "ping" and
 * B -> A on "pong", single producer, back-pressure. Each round trip is timed
 * by A. At --size 32 a record (32-byte header + payload) fills exactly one
 * 64-byte slot, one cache line, like the floor's message.
 *
 * pingpong-handler: the same, but B publishes the reply inside its handler,
 * before its poll has moved its cursor (as Aeron's pong offers from its
 * fragment handler): the reader's bookkeeping after a record leaves the
 * round trip's path.
 *
 * manychannels: the same round trip, but B consumes through a poller
 * subscribed to MANY_CHANNELS channels of which only "ping" is active: what
 * a subscriber on many event types pays to find the active one.
 *
 * pingpong-after: B's subscriber on "ping" runs after another subscriber
 * of B's (a dependency barrier, the journal -> logic pattern): the cost of
 * the barrier on the round trip.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "timer.h"

#define MANY_CHANNELS 1000

struct pp_ctx {
	uint64_t got;  /* counter of the last record */
	uint32_t len;  /* its length */
	uint8_t *echo; /* pong side: the payload, to send back */
	shmbus_poller_t *poller; /* manychannels: B's poller */
	shmbus_sub_t *upstream;	 /* pingpong-after: B's first subscriber */
	shmbus_producer_t *reply; /* pingpong-handler: B replies from here */
	int reply_rc;
};

enum pp_mode { PP_PLAIN, PP_MANY, PP_AFTER, PP_HANDLER };

static int count_only(const shmbus_record_t *rec, void *arg)
{
	(void)rec;
	(*(uint64_t *)arg)++;
	return 0;
}
static uint64_t upstream_seen;

static int on_record(const shmbus_record_t *rec, void *arg)
{
	struct pp_ctx *c = arg;
	memcpy(&c->got, rec->data, sizeof(c->got));
	c->len = rec->len;
	if (c->reply) /* as Aeron's pong: the reply before the poll returns */
		c->reply_rc = shmbus_publish(c->reply, rec->data, rec->len, 0);
	else if (c->echo)
		memcpy(c->echo, rec->data, rec->len);
	return 0;
}

/* One record from s (or from the poller) into c; waits by the run's
 * strategy. */
static int recv_one(shmbus_sub_t *s, shmbus_poller_t *pl, uint32_t wait)
{
	for (;;) {
		int n = pl ? shmbus_poller_poll(pl, 1) : shmbus_poll(s, 1);
		if (n != 0)
			return n < 0 ? n : 0;
		if (pl == NULL) {
			int rc = sb_idle(s, wait);
			if (rc)
				return rc;
		} else if (wait == SHMBUS_WAIT_SPIN) {
			cpu_relax();
		} else {
			int rc = shmbus_poller_wait(pl, 100000000u);
			if (rc && rc != SHMBUS_EAGAIN && rc != SHMBUS_EINTR)
				return rc;
		}
	}
}

/* manychannels, side B: MANY_CHANNELS - 1 idle channels besides "ping",
 * each with a subscriber, all in one poller. */
static int many_setup(struct run *r, int idx, shmbus_t *bus,
		      shmbus_sub_t *ping_sub, struct pp_ctx *c)
{
	int rc = shmbus_poller_open(bus, r->wait, &c->poller);
	if (rc)
		return child_fail(r, idx, "poller: %s", shmbus_strerror(rc));
	for (int i = 1; i < MANY_CHANNELS; i++) {
		char suffix[16];
		snprintf(suffix, sizeof(suffix), "idle%d", i);
		shmbus_channel_t *ch;
		shmbus_sub_t *s;
		if (sb_channel(r, idx, bus, suffix, 2, 0, &ch) ||
		    sb_subscribe(r, idx, ch, "idle", on_record, c, &s))
			return 1;
		if ((rc = shmbus_poller_add(c->poller, s)))
			return child_fail(r, idx, "poller add: %s",
					  shmbus_strerror(rc));
	}
	if ((rc = shmbus_poller_add(c->poller, ping_sub)))
		return child_fail(r, idx, "poller add: %s",
				  shmbus_strerror(rc));
	while (shmbus_poller_poll(c->poller, 1000000) > 0)
		; /* the initial catch-up marks */
	return 0;
}

static int setup(struct run *r, int idx, shmbus_t **bus,
		 shmbus_producer_t **p, shmbus_sub_t **s, struct pp_ctx *c)
{
	shmbus_channel_t *ping, *pong;
	if (sb_open_bus(r, idx, bus) ||
	    sb_channel(r, idx, *bus, "ping", r->o->capacity, 0, &ping) ||
	    sb_channel(r, idx, *bus, "pong", r->o->capacity, 0, &pong))
		return 1;
	enum pp_mode mode = *(enum pp_mode *)r->arg;
	if (idx == 1 && mode == PP_AFTER) {
		/* B: an upstream on ping first, then pong-side after it */
		if (sb_subscribe(r, idx, ping, "upstream", count_only,
				 &upstream_seen, &c->upstream))
			return 1;
		const char *after[] = {"upstream"};
		shmbus_sub_opts_t so = {.name = "pong-side",
					.wait = r->wait,
					.after = after,
					.n_after = 1};
		int rc = shmbus_subscribe(ping, on_record, c, &so, s);
		if (rc)
			return child_fail(r, idx, "subscribe after: %s: %s",
					  shmbus_strerror(rc),
					  shmbus_errmsg());
		return sb_producer(r, idx, pong, p);
	}
	/* A publishes on ping and reads pong; B the other way round */
	if (sb_producer(r, idx, idx == 0 ? ping : pong, p) ||
	    sb_subscribe(r, idx, idx == 0 ? pong : ping,
			 idx == 0 ? "ping-side" : "pong-side", on_record, c, s))
		return 1;
	return idx == 1 && mode == PP_MANY ? many_setup(r, idx, *bus, *s, c)
					   : 0;
}

static int ping(struct run *r, int idx, shmbus_producer_t *p, shmbus_sub_t *s,
		struct pp_ctx *c)
{
	struct proc_result *res = &r->ctl->res[idx];
	struct samples smp;
	uint8_t *buf = calloc(1, r->size);
	if (buf == NULL || samples_init(&smp, r->count))
		return child_fail(r, idx, "out of memory");
	memset(buf, 0x5a, r->size);
	uint64_t total = r->warmup + r->count, f0 = 0;
	barrier_wait(r); /* both subscribed: nothing is published unseen */
	for (uint64_t i = 0; i < total; i++) {
		if (i == r->warmup)
			f0 = minflt_now();
		memcpy(buf, &i, sizeof(i));
		uint64_t t0 = now_ns();
		int rc = shmbus_publish(p, buf, r->size, 0);
		if (rc == 0)
			rc = recv_one(s, NULL, r->wait);
		uint64_t t1 = now_ns();
		if (rc)
			return child_fail(r, idx, "round trip %llu: %s",
					  (unsigned long long)i,
					  shmbus_strerror(rc));
		if (c->got != i || c->len != r->size) {
			res->seq_errors++;
			return child_fail(r, idx,
					  "sequence: sent %llu, got %llu "
					  "(len %u)",
					  (unsigned long long)i,
					  (unsigned long long)c->got, c->len);
		}
		if (i >= r->warmup)
			samples_add(&smp, t1 - t0);
	}
	res->minflt = minflt_now() - f0;
	samples_summary(&smp, &res->lat);
	res->has_lat = true;
	samples_free(&smp);
	free(buf);
	return 0;
}

static int pong(struct run *r, int idx, shmbus_producer_t *p, shmbus_sub_t *s,
		struct pp_ctx *c)
{
	uint64_t total = r->warmup + r->count, f0 = 0;
	barrier_wait(r);
	for (uint64_t i = 0; i < total; i++) {
		if (i == r->warmup)
			f0 = minflt_now();
		int rc = 0;
		if (c->upstream) /* the upstream passes the record first */
			rc = recv_one(c->upstream, NULL, r->wait);
		if (rc == 0)
			rc = recv_one(s, c->poller, r->wait);
		if (rc)
			return child_fail(r, idx, "poll: %s",
					  shmbus_strerror(rc));
		if (c->got != i || c->len != r->size) {
			r->ctl->res[idx].seq_errors++;
			return child_fail(r, idx,
					  "sequence: expected %llu, got %llu "
					  "(len %u)",
					  (unsigned long long)i,
					  (unsigned long long)c->got, c->len);
		}
		rc = c->reply ? c->reply_rc
			      : shmbus_publish(p, c->echo, c->len, 0);
		if (rc)
			return child_fail(r, idx, "publish: %s",
					  shmbus_strerror(rc));
	}
	r->ctl->res[idx].minflt = minflt_now() - f0;
	return 0;
}

static int child(struct run *r, int idx)
{
	shmbus_t *bus = NULL;
	shmbus_producer_t *p = NULL;
	shmbus_sub_t *s = NULL;
	struct pp_ctx c = {0};
	if (idx == 1 && (c.echo = malloc(r->size)) == NULL)
		return child_fail(r, idx, "out of memory");
	int rc = setup(r, idx, &bus, &p, &s, &c);
	if (rc == 0 && idx == 1 && *(enum pp_mode *)r->arg == PP_HANDLER)
		c.reply = p;
	if (rc == 0)
		rc = idx == 0 ? ping(r, idx, p, s, &c) : pong(r, idx, p, s, &c);
	shmbus_close(bus);
	free(c.echo);
	return rc;
}

static int pingpong(const struct bench_opts *o, const char *name,
		    enum pp_mode mode)
{
	struct run r;
	if (run_init(&r, o, name, o->size ? o->size : 64, 2, 0))
		return 1;
	r.arg = &mode;
	r.count = default_count(o, true);
	r.warmup = default_warmup(o, r.count);
	int rc = run_procs(&r, child);
	if (rc) {
		report_failure(o, &r);
	} else {
		struct result res;
		result_init(&res, &r);
		res.kind = RES_LAT;
		res.lat = r.ctl->res[0].lat;
		res.minflt = r.ctl->res[0].minflt;
		res.minflt_peer = r.ctl->res[1].minflt;
		res.slot_size = r.ctl->res[0].slot_size;
		snprintf(res.note, sizeof(res.note),
			 "record = %u B header + %u B payload in a %u B slot%s%s",
			 o->compact ? 8u : SHMBUS_RECORD_HEADER, r.size,
			 res.slot_size,
			 res.slot_size == BENCH_CACHELINE
				 ? ": one cache line, like the floor"
				 : "",
			 mode == PP_MANY    ? "; B polls 1000 channels, 1 active"
			 : mode == PP_AFTER ? "; B's reader runs after an upstream"
			 : mode == PP_HANDLER
				 ? "; B replies from its handler"
				 : "");
		report_result(o, &res);
	}
	run_free(&r);
	return rc;
}

int wl_pingpong(const struct bench_opts *o)
{
	return pingpong(o, "pingpong", PP_PLAIN);
}

int wl_manychannels(const struct bench_opts *o)
{
	return pingpong(o, "manychannels", PP_MANY);
}

int wl_pingpong_handler(const struct bench_opts *o)
{
	return pingpong(o, "pingpong-handler", PP_HANDLER);
}

int wl_pingpong_after(const struct bench_opts *o)
{
	return pingpong(o, "pingpong-after", PP_AFTER);
}
