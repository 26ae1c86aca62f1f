/*
 * pingpong and throughput over a peer transport (peer.h), the same shape
 * and timing as the shmbus workloads: warm-up, barrier, timed part; every
 * message carries a counter that the receiver checks. --wait spin polls
 * with non-blocking calls (and a pause); any other strategy blocks in the
 * transport.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "peer.h"
#include "timer.h"

static void idle(const struct transport *t)
{
	if (t->io_threads)
		sched_yield();
	else
		cpu_relax();
}

static int send_msg(const struct transport *t, void *h, const void *buf,
		    size_t len, bool spin)
{
	int rc;
	while ((rc = t->send(h, buf, len, spin)) == PEER_AGAIN)
		idle(t);
	return rc;
}

static long recv_msg(const struct transport *t, void *h, void *buf,
		     size_t cap, bool spin)
{
	long n;
	while ((n = t->recv(h, buf, cap, spin)) == -PEER_AGAIN)
		idle(t);
	return n;
}

static void fill(uint8_t *buf, uint32_t size, uint64_t v)
{
	memcpy(buf, &v, 8);
	memset(buf + 8, (int)(v & 0xff), size - 8);
}

static int pp_child(struct run *r, int idx)
{
	const struct transport *t = r->arg;
	struct proc_result *res = &r->ctl->res[idx];
	bool spin = r->wait == SHMBUS_WAIT_SPIN;
	uint8_t *buf = malloc(r->size), *in = malloc(r->size);
	struct samples smp = {0};
	void *h;
	if (buf == NULL || in == NULL ||
	    (idx == 0 && samples_init(&smp, r->count)))
		return child_fail(r, idx, "out of memory");
	memset(buf, 0x5a, r->size);
	if (t->open(r, idx, &h))
		return 1;
	uint64_t total = r->warmup + r->count, f0 = 0;
	barrier_wait(r);
	for (uint64_t i = 0; i < total; i++) {
		if (i == r->warmup)
			f0 = minflt_now();
		if (idx == 0)
			memcpy(buf, &i, 8);
		uint64_t t0 = now_ns(), v;
		long n = 0;
		int rc = 0;
		if (idx == 0) {
			rc = send_msg(t, h, buf, r->size, spin);
			if (rc == 0)
				n = recv_msg(t, h, in, r->size, spin);
		} else {
			n = recv_msg(t, h, in, r->size, spin);
		}
		uint64_t t1 = now_ns();
		if (rc || n < 0)
			return child_fail(r, idx, "%s %llu: %s",
					  rc ? "send" : "recv",
					  (unsigned long long)i,
					  t->errstr(rc ? rc : (int)n));
		memcpy(&v, in, 8);
		if (v != i || (uint32_t)n != r->size) {
			res->seq_errors++;
			return child_fail(r, idx,
					  "sequence: expected %llu, got %llu "
					  "(%ld bytes)",
					  (unsigned long long)i,
					  (unsigned long long)v, n);
		}
		if (idx == 1 && (rc = send_msg(t, h, in, (size_t)n, spin)))
			return child_fail(r, idx, "send: %s", t->errstr(rc));
		if (idx == 0 && i >= r->warmup)
			samples_add(&smp, t1 - t0);
	}
	res->minflt = minflt_now() - f0;
	if (idx == 0) {
		samples_summary(&smp, &res->lat);
		res->has_lat = true;
	}
	barrier_wait(r); /* some transports drop what is queued at close */
	t->close(h);
	samples_free(&smp);
	free(buf);
	free(in);
	return 0;
}

static int tp_send(const struct transport *t, void *h, struct run *r,
		   uint8_t *buf, uint64_t *next, uint64_t n, bool spin)
{
	for (uint64_t i = 0; i < n; i++) {
		fill(buf, r->size, (*next)++);
		int rc = send_msg(t, h, buf, r->size, spin);
		if (rc)
			return child_fail(r, 0, "send: %s", t->errstr(rc));
	}
	return 0;
}

static int tp_recv(const struct transport *t, void *h, struct run *r,
		   uint8_t *buf, uint64_t *expect, uint64_t n, bool spin)
{
	struct proc_result *res = &r->ctl->res[1];
	for (uint64_t i = 0; i < n; i++) {
		long len = recv_msg(t, h, buf, r->size, spin);
		if (len < 0)
			return child_fail(r, 1, "recv: %s",
					  t->errstr((int)len));
		uint64_t v;
		memcpy(&v, buf, 8);
		if (v != *expect || (uint32_t)len != r->size) {
			res->seq_errors++;
			return child_fail(r, 1,
					  "sequence: expected %llu, got %llu "
					  "(%ld bytes)",
					  (unsigned long long)*expect,
					  (unsigned long long)v, len);
		}
		(*expect)++;
	}
	return 0;
}

static int tp_child(struct run *r, int idx)
{
	const struct transport *t = r->arg;
	struct proc_result *res = &r->ctl->res[idx];
	bool spin = r->wait == SHMBUS_WAIT_SPIN;
	uint8_t *buf = malloc(r->size);
	uint64_t seq = 0;
	void *h;
	if (buf == NULL)
		return child_fail(r, idx, "out of memory");
	if (t->open(r, idx, &h))
		return 1;
	barrier_wait(r);
	int rc = idx == 0 ? tp_send(t, h, r, buf, &seq, r->warmup, spin)
			  : tp_recv(t, h, r, buf, &seq, r->warmup, spin);
	if (rc)
		return rc;
	barrier_wait(r);
	uint64_t f0 = minflt_now(), t0 = now_ns();
	rc = idx == 0 ? tp_send(t, h, r, buf, &seq, r->count, spin)
		      : tp_recv(t, h, r, buf, &seq, r->count, spin);
	res->elapsed_ns = now_ns() - t0;
	res->minflt = minflt_now() - f0;
	res->msgs = r->count;
	if (rc)
		return rc;
	barrier_wait(r); /* the producer must not close with data queued */
	t->close(h);
	free(buf);
	return 0;
}

static int run_one(const struct bench_opts *o, const struct transport *t,
		   bool latency, uint32_t size)
{
	struct run r;
	const char *name = latency ? t->pingpong_name : t->throughput_name;
	if (size < 8) {
		report_note(o, "%s: size %u is below the 8-byte counter; "
			       "using 8",
			    name, size);
		size = 8;
	}
	if (run_init(&r, o, name, size, 2, 0))
		return 1;
	r.arg = (void *)t;
	r.count = default_count(o, latency);
	r.warmup = default_warmup(o, r.count);
	int rc = t->prepare ? t->prepare(&r) : 0;
	if (rc == 0)
		rc = run_procs(&r, latency ? pp_child : tp_child);
	if (t->finish)
		t->finish(&r);
	if (rc) {
		report_failure(o, &r);
		run_free(&r);
		return rc;
	}
	struct result res;
	result_init(&res, &r);
	if (latency) {
		res.kind = RES_LAT;
		res.lat = r.ctl->res[0].lat;
		res.minflt = r.ctl->res[0].minflt;
		res.minflt_peer = r.ctl->res[1].minflt;
	} else {
		result_from_tp(&res, r.ctl->res[1].msgs,
			       r.ctl->res[1].elapsed_ns, size);
		res.minflt = r.ctl->res[1].minflt;
		res.minflt_peer = r.ctl->res[0].minflt;
	}
	snprintf(res.note, sizeof(res.note), "%s; %s", t->note,
		 r.wait != SHMBUS_WAIT_SPIN ? "blocking calls"
		 : t->io_threads ? "non-blocking calls, yielding to its "
				   "I/O threads"
				 : "non-blocking calls, spinning");
	report_result(o, &res);
	run_free(&r);
	return 0;
}

const char *peer_skip_reason(const struct transport *t)
{
	if (t->skip)
		return t->skip;
	return t->unavailable ? t->unavailable() : NULL;
}

int peer_pingpong(const struct bench_opts *o, const struct transport *t)
{
	const char *why = peer_skip_reason(t);
	if (why) {
		report_skip(o, t->pingpong_name, why);
		return 0;
	}
	return run_one(o, t, true, o->size ? o->size : 64);
}

int peer_throughput(const struct bench_opts *o, const struct transport *t)
{
	const char *why = peer_skip_reason(t);
	if (why) {
		report_skip(o, t->throughput_name, why);
		return 0;
	}
	uint32_t sizes[8];
	int n = tp_sizes(o, sizes, 8), failed = 0;
	for (int i = 0; i < n && !interrupted(); i++)
		failed |= run_one(o, t, false, sizes[i]);
	return failed;
}
