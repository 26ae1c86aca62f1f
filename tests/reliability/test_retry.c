/*
 * Handler failures: retry segments with back-off, the ordered policy,
 * back-pressure from a full segment, the dead-letter queue and its API,
 * and retry state that outlives the subscriber's process.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>

#include "helpers.h"
#include "internal.h"

#define N_MAX 4096

/* A handler that fails records by a rule and logs every delivery. */
struct log {
	uint64_t n;
	uint64_t val[N_MAX];	 /* payload of each delivery, in order */
	uint32_t attempt[N_MAX]; /* rec->attempt of each delivery */
	uint64_t when[N_MAX];	 /* shmbus_now_ns() of each delivery */
	uint64_t fail_val;	 /* the value that fails ... */
	uint32_t fail_times;	 /* ... this many times (UINT32_MAX: always) */
	uint32_t failed;
	int fail_rc;
};

static int logging(const shmbus_record_t *r, void *ctx)
{
	struct log *l = ctx;
	uint64_t v;
	memcpy(&v, r->data, sizeof(v));
	if (l->n < N_MAX) {
		l->val[l->n] = v;
		l->attempt[l->n] = r->attempt;
		l->when[l->n] = shmbus_now_ns();
	}
	l->n++;
	if (v == l->fail_val && l->failed < l->fail_times) {
		l->failed++;
		shmbus_fail_note("value %llu refused", (unsigned long long)v);
		return l->fail_rc ? l->fail_rc : -1;
	}
	return 0;
}

/* Start a log: value fail_val fails `times` times with rc (0: -1). */
static void log_reset(struct log *l, uint64_t fail_val, uint32_t times, int rc)
{
	memset(l, 0, sizeof(*l));
	l->fail_val = fail_val;
	l->fail_times = times;
	l->fail_rc = rc;
}

static shmbus_channel_t *chan(const char *bus_name, shmbus_t **bus,
			      uint32_t retry_cap, uint32_t dlq_cap,
			      uint32_t dlq_policy)
{
	shmbus_channel_opts_t o = {.record_size = 8,
				   .capacity = 64,
				   .retry_capacity = retry_cap,
				   .dlq_capacity = dlq_cap,
				   .dlq_policy = dlq_policy};
	shmbus_channel_t *ch;
	cr_assert_eq(shmbus_open(bus_name, NULL, bus), 0);
	cr_assert_eq(shmbus_channel_open(*bus, "R", &o, &ch), 0, "%s",
		     shmbus_errmsg());
	return ch;
}

static void publish_range(shmbus_producer_t *p, uint64_t from, uint64_t to)
{
	for (uint64_t v = from; v < to; v++)
		cr_assert_eq(shmbus_publish(p, &v, sizeof(v), v), 0);
}

/* Poll until `want` deliveries were logged or 5 s passed. */
static void poll_until(shmbus_sub_t *s, struct log *l, uint64_t want)
{
	uint64_t end = shmbus_now_ns() + 5000000000ull;
	while (l->n < want && shmbus_now_ns() < end)
		if (shmbus_poll(s, 64) == 0)
			shmbus_sub_wait(s, 1000000);
}

Test(retry, fails_k_times_then_succeeds_with_backoff)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = chan(test_bus("rk"), &bus, 0, 0, 0);
	static struct log l;
	log_reset(&l, 3, 3, 0);
	shmbus_sub_opts_t so = {.name = "s",
				.retry = {.max_attempts = 5,
					  .base_us = 2000,
					  .cap_us = 100000}};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, logging, &l, &so, &s), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	publish_range(p, 0, 10);
	poll_until(s, &l, 13);
	cr_assert_eq(l.n, 13, "deliveries %llu", (unsigned long long)l.n);
	/* first deliveries in order, not held up by the failing record */
	for (uint64_t i = 0; i < 10; i++) {
		cr_expect_eq(l.val[i], i);
		cr_expect_eq(l.attempt[i], 1);
	}
	/* then attempts 2..4 of record 3, each after its back-off:
	 * d(n) = min(cap, base * 2^(n-1)), jittered in [d/2, d] */
	uint64_t prev = l.when[3];
	for (uint32_t k = 0; k < 3; k++) {
		cr_expect_eq(l.val[10 + k], 3);
		cr_expect_eq(l.attempt[10 + k], k + 2);
		uint64_t gap = l.when[10 + k] - prev;
		uint64_t d = 2000000ull << k;
		cr_expect_geq(gap, d / 2, "attempt %u after %llu ns", k + 2,
			      (unsigned long long)gap);
		prev = l.when[10 + k];
	}
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(s, &st);
	cr_expect_eq(st.failed, 3);
	cr_expect_eq(st.retried, 3);
	cr_expect_eq(st.dead_lettered, 0);
	shmbus_dlq_stats_t ds;
	cr_assert_eq(shmbus_dlq_get_stats(ch, &ds), 0);
	cr_expect_eq(ds.count, 0);
	shmbus_close(bus);
}

Test(retry, always_failing_goes_to_the_dlq_with_its_error)
{
	const char *name = test_bus("rd");
	shmbus_t *bus;
	shmbus_channel_t *ch = chan(name, &bus, 0, 0, 0);
	static struct log bad, good;
	log_reset(&bad, 5, UINT32_MAX, -42);
	log_reset(&good, UINT64_MAX, 0, 0);
	shmbus_sub_opts_t so = {.name = "bad",
				.retry = {.max_attempts = 3,
					  .base_us = 100,
					  .cap_us = 1000}};
	shmbus_sub_t *sb, *sg;
	cr_assert_eq(shmbus_subscribe(ch, logging, &bad, &so, &sb), 0);
	shmbus_sub_opts_t go = {.name = "good"};
	cr_assert_eq(shmbus_subscribe(ch, logging, &good, &go, &sg), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	publish_range(p, 0, 20);
	poll_until(sb, &bad, 22);
	poll_until(sg, &good, 20);
	cr_expect_eq(bad.n, 22); /* 20 first deliveries, 2 retries of 5 */
	cr_expect_eq(good.n, 20);
	for (uint64_t i = 0; i < 20; i++)
		cr_expect_eq(good.val[i], i);
	shmbus_dlq_entry_t e[4];
	cr_assert_eq(shmbus_dlq_list(ch, 0, e, 4), 1);
	cr_expect_eq(e[0].error, -42);
	cr_expect_eq(e[0].attempts, 3);
	cr_expect_str_eq(e[0].subscriber, "bad");
	cr_expect_str_eq(e[0].text, "value 5 refused");
	cr_expect_eq(e[0].rec.seq, 5);
	cr_expect_eq(e[0].rec.key, 5);
	cr_expect_null(e[0].rec.data);
	uint64_t v = 0;
	shmbus_dlq_entry_t one;
	cr_assert_eq(shmbus_dlq_get(ch, e[0].id, &one, &v, sizeof(v)), 0);
	cr_expect_eq(v, 5);
	cr_expect_eq(one.rec.len, 8);
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(sb, &st);
	cr_expect_eq(st.dead_lettered, 1);
	/* another process sees the same entry */
	pid_t pid = test_fork();
	if (pid == 0) {
		shmbus_t *b2;
		shmbus_channel_t *c2;
		CHECK_OK(shmbus_open(name, NULL, &b2));
		CHECK_OK(shmbus_channel_open(b2, "R", NULL, &c2));
		shmbus_dlq_entry_t x;
		uint64_t w = 0;
		CHECK_OK(shmbus_dlq_get(c2, e[0].id, &x, &w, sizeof(w)));
		_exit(w == 5 && x.error == -42 ? 0 : 1);
	}
	cr_expect_eq(child_status(pid), 0);
	shmbus_close(bus);
}

Test(retry, permanent_failure_is_not_retried)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = chan(test_bus("rp"), &bus, 0, 0, 0);
	static struct log l;
	log_reset(&l, 1, UINT32_MAX, SHMBUS_EPERMANENT);
	shmbus_sub_opts_t so = {.name = "s"};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, logging, &l, &so, &s), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	publish_range(p, 0, 3);
	poll_until(s, &l, 3);
	usleep(20000);
	shmbus_poll(s, 64);
	cr_expect_eq(l.n, 3);
	shmbus_dlq_entry_t e;
	cr_assert_eq(shmbus_dlq_list(ch, 0, &e, 1), 1);
	cr_expect_eq(e.attempts, 1);
	cr_expect_eq(e.error, SHMBUS_EPERMANENT);
	shmbus_close(bus);
}

Test(retry, ordered_policy_holds_the_subscriber_alone)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = chan(test_bus("ro"), &bus, 0, 0, 0);
	static struct log l, other;
	log_reset(&l, 2, 2, 0);
	log_reset(&other, UINT64_MAX, 0, 0);
	shmbus_sub_opts_t so = {.name = "strict",
				.retry = {.policy = SHMBUS_RETRY_ORDERED,
					  .base_us = 3000,
					  .cap_us = 10000}};
	shmbus_sub_t *s, *o;
	cr_assert_eq(shmbus_subscribe(ch, logging, &l, &so, &s), 0);
	shmbus_sub_opts_t oo = {.name = "other"};
	cr_assert_eq(shmbus_subscribe(ch, logging, &other, &oo, &o), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	publish_range(p, 0, 6);
	/* held at 2: a poll right away consumes 0, 1, fails 2 and stops */
	cr_expect_eq(shmbus_poll(s, 64), 2);
	cr_expect_eq(l.n, 3);
	cr_expect_eq(shmbus_poll(s, 64), 0);
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(s, &st);
	cr_expect_eq(st.cursor, 2, "held at the failing record");
	/* the other subscriber is not held */
	cr_expect_eq(shmbus_poll(o, 64), 6);
	poll_until(s, &l, 8);
	cr_assert_eq(l.n, 8);
	uint64_t want[8] = {0, 1, 2, 2, 2, 3, 4, 5};
	for (int i = 0; i < 8; i++)
		cr_expect_eq(l.val[i], want[i], "delivery %d: %llu", i,
			     (unsigned long long)l.val[i]);
	cr_expect_eq(l.attempt[4], 3);
	cr_expect_geq(l.when[3] - l.when[2], 1500000);
	/* ordered needs a back-pressure broadcast subscriber */
	shmbus_sub_opts_t bad = so;
	bad.name = "g";
	shmbus_sub_t *g;
	cr_expect_eq(shmbus_group_join(ch, logging, &l, &bad, &g),
		     SHMBUS_EINVAL);
	shmbus_close(bus);
}

struct twice {
	struct log *l;
	uint32_t failed[8];
};
static int fail_once(const shmbus_record_t *r, void *ctx);

Test(retry, full_segment_holds_then_drains)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = chan(test_bus("rf"), &bus, 1, 0, 0);
	static struct log l;
	log_reset(&l, UINT64_MAX, 0, 0); /* see below: fail 1 and 2 once each */
	shmbus_sub_opts_t so = {.name = "s",
				.retry = {.base_us = 2000, .cap_us = 2000}};
	shmbus_sub_t *s;
	struct twice t = {&l, {0}};
	cr_assert_eq(shmbus_subscribe(ch, fail_once, &t, &so, &s), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	publish_range(p, 0, 5);
	/* 1 fails into the one-entry segment; 2 fails and finds it full:
	 * the subscriber holds at 2 */
	cr_expect_eq(shmbus_poll(s, 64), 2);
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(s, &st);
	cr_expect_eq(st.cursor, 2);
	poll_until(s, &l, 7);
	cr_assert_eq(l.n, 7);
	uint64_t seen[5] = {0};
	for (int i = 0; i < 7; i++)
		seen[l.val[i]]++;
	cr_expect_eq(seen[1], 2);
	cr_expect_eq(seen[2], 2);
	cr_expect_eq(seen[0] + seen[3] + seen[4], 3);
	shmbus_dlq_stats_t ds;
	cr_assert_eq(shmbus_dlq_get_stats(ch, &ds), 0);
	cr_expect_eq(ds.count, 0);
	shmbus_close(bus);
}

static int fail_once(const shmbus_record_t *r, void *ctx);

Test(retry, a_group_member_held_mid_run_lets_the_rest_go)
{
	/* A takes the run [0, 8) with one CAS; 1 fails into the one-entry
	 * segment, 2 fails and finds it full: A holds 2. The run ends there:
	 * 0 and 1 are done, 2 stays A's, and 3..7 are nobody's, so B takes
	 * them while A waits (a run left whole would keep them from B until
	 * A's hold ends). */
	shmbus_t *bus;
	shmbus_channel_t *ch = chan(test_bus("rgh"), &bus, 1, 0, 0);
	static struct log la, lb;
	log_reset(&la, UINT64_MAX, 0, 0);
	log_reset(&lb, UINT64_MAX, 0, 0);
	shmbus_sub_opts_t so = {.name = "g",
				.retry = {.base_us = 2000, .cap_us = 2000}};
	shmbus_sub_t *a, *b;
	struct twice t = {&la, {0}};
	cr_assert_eq(shmbus_group_join(ch, fail_once, &t, &so, &a), 0);
	cr_assert_eq(shmbus_group_join(ch, logging, &lb, &so, &b), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	publish_range(p, 0, 8);
	cr_expect_eq(shmbus_poll(a, 64), 3, "0, 1 and the held 2");
	cr_expect_eq(la.n, 3);
	cr_expect_eq(shmbus_poll(b, 64), 5, "B takes 3..7");
	cr_assert_eq(lb.n, 5);
	for (uint64_t i = 0; i < 5; i++)
		cr_expect_eq(lb.val[i], 3 + i);
	_Atomic uint64_t *floor = NULL;
	for (uint32_t i = 0; i < ch->max_subs; i++)
		if (strcmp(ch->subs[i].name, "g") == 0)
			floor = &ch->subs[i].cursor;
	cr_assert(floor);
	cr_expect_eq(atomic_load(floor), 2, "the floor waits at the held "
					    "record");
	poll_until(a, &la, 5);
	cr_assert_eq(la.n, 5, "A delivers 1 and 2 again");
	uint64_t seen[8] = {0};
	for (uint64_t i = 0; i < la.n; i++)
		seen[la.val[i]]++;
	cr_expect(seen[0] == 1 && seen[1] == 2 && seen[2] == 2);
	shmbus_poll(a, 64); /* moves the floor over the retried 2 */
	cr_expect_eq(atomic_load(floor), 8);
	shmbus_close(bus);
}

/* fails records 1 and 2 once each (full_segment_holds_then_drains) */
static int fail_once(const shmbus_record_t *r, void *ctx)
{
	struct twice *t = ctx;
	logging(r, t->l);
	uint64_t v;
	memcpy(&v, r->data, sizeof(v));
	if ((v == 1 || v == 2) && t->failed[v]++ == 0)
		return -1;
	return 0;
}

static int fail_all(const shmbus_record_t *r, void *ctx)
{
	logging(r, ctx);
	return -1;
}

Test(retry, full_segment_to_dlq_when_asked)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = chan(test_bus("rq"), &bus, 1, 0, 0);
	static struct log l;
	log_reset(&l, UINT64_MAX, 0, 0);
	shmbus_sub_opts_t so = {.name = "s",
				.retry = {.on_full = SHMBUS_RETRY_FULL_DLQ}};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, fail_all, &l, &so, &s), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	publish_range(p, 0, 4);
	cr_expect_eq(shmbus_poll(s, 64), 4); /* nothing holds */
	shmbus_dlq_stats_t ds;
	cr_assert_eq(shmbus_dlq_get_stats(ch, &ds), 0);
	cr_expect_eq(ds.count, 3, "one in the segment, three dead-lettered");
	shmbus_close(bus);
}


Test(dlq, full_queue_drops_oldest_or_refuses)
{
	/* drop-oldest: capacity 2, four dead letters keep the last two */
	shmbus_t *bus;
	shmbus_channel_t *ch = chan(test_bus("qd"), &bus, 0, 2, 0);
	static struct log l;
	log_reset(&l, UINT64_MAX, 0, 0);
	shmbus_sub_opts_t so = {.name = "s", .retry = {.max_attempts = 1}};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, fail_all, &l, &so, &s), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	publish_range(p, 0, 4);
	cr_expect_eq(shmbus_poll(s, 64), 4);
	shmbus_dlq_stats_t ds;
	cr_assert_eq(shmbus_dlq_get_stats(ch, &ds), 0);
	cr_expect_eq(ds.count, 2);
	cr_expect_eq(ds.dropped, 2);
	shmbus_dlq_entry_t e[4];
	cr_assert_eq(shmbus_dlq_list(ch, 0, e, 4), 2);
	cr_expect_eq(e[0].rec.seq, 2);
	cr_expect_eq(e[1].rec.seq, 3);
	shmbus_close(bus);

	/* refuse: the third stays in the retry segment until there is room */
	ch = chan(test_bus("qr"), &bus, 0, 2, SHMBUS_DLQ_REFUSE);
	log_reset(&l, UINT64_MAX, 0, 0);
	so.retry.cap_us = 1000;
	cr_assert_eq(shmbus_subscribe(ch, fail_all, &l, &so, &s), 0);
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	publish_range(p, 0, 3);
	cr_expect_eq(shmbus_poll(s, 64), 3);
	cr_assert_eq(shmbus_dlq_get_stats(ch, &ds), 0);
	cr_expect_eq(ds.count, 2);
	cr_expect_eq(ds.refused, 1);
	cr_expect_eq(ds.dropped, 0);
	cr_expect_eq(shmbus_dlq_purge(ch, SHMBUS_DLQ_ALL), 2);
	/* retried at the cap, it finds room now */
	uint64_t before = l.n;
	poll_until(s, &l, before + 1);
	cr_assert_eq(shmbus_dlq_list(ch, 0, e, 4), 1);
	cr_expect_eq(e[0].rec.seq, 2);
	cr_expect_eq(e[0].attempts, 1);
	/* a channel declared with another policy is refused */
	shmbus_channel_opts_t o = {.record_size = 8,
				   .capacity = 64,
				   .dlq_capacity = 2};
	shmbus_channel_t *c2;
	cr_expect_eq(shmbus_channel_open(bus, "R", &o, &c2), SHMBUS_EEXIST);
	cr_expect(strstr(shmbus_errmsg(), "dlq_policy") != NULL);
	o.dlq_capacity = 3;
	cr_expect_eq(shmbus_channel_open(bus, "X", &o, &c2), SHMBUS_EINVAL);
	shmbus_close(bus);
}

static int fail_small(const shmbus_record_t *r, void *ctx);

Test(dlq, replay_purge_and_replay_to)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = chan(test_bus("qp"), &bus, 0, 0, 0);
	static struct log l, x;
	log_reset(&l, UINT64_MAX, 0, 0);
	log_reset(&x, UINT64_MAX, 0, 0);
	shmbus_sub_opts_t so = {.name = "s", .retry = {.max_attempts = 1}};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, fail_small, &l, &so, &s), 0);
	shmbus_sub_opts_t xo = {.name = "x"};
	shmbus_sub_t *sx;
	cr_assert_eq(shmbus_subscribe(ch, logging, &x, &xo, &sx), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	publish_range(p, 0, 3);
	cr_expect_eq(shmbus_poll(s, 64), 3);
	cr_expect_eq(shmbus_poll(sx, 64), 3);
	shmbus_dlq_entry_t e[4];
	cr_assert_eq(shmbus_dlq_list(ch, 0, e, 4), 3);

	/* purge one: gone, and a second purge says so */
	cr_expect_eq(shmbus_dlq_purge(ch, e[0].id), 1);
	cr_expect_eq(shmbus_dlq_purge(ch, e[0].id), SHMBUS_ENOENT);
	uint64_t v;
	shmbus_dlq_entry_t one;
	cr_expect_eq(shmbus_dlq_get(ch, e[0].id, &one, &v, sizeof(v)),
		     SHMBUS_ENOENT);

	/* replay into the channel: everyone sees it again, origin kept */
	cr_assert_eq(shmbus_dlq_replay(ch, e[1].id, p), 0);
	l.n = x.n = 0;
	cr_expect_eq(shmbus_poll(sx, 64), 1);
	cr_expect_eq(x.val[0], 1);
	cr_expect_eq(shmbus_poll(s, 64), 1);
	cr_expect_eq(l.val[0], 1);

	/* replay to one subscriber: only it, as a first attempt again */
	cr_assert_eq(shmbus_dlq_replay_to(ch, e[2].id, "s"), 0);
	l.n = x.n = 0;
	poll_until(s, &l, 1);
	cr_expect_eq(l.n, 1);
	cr_expect_eq(l.val[0], 2);
	cr_expect_eq(l.attempt[0], 1);
	cr_expect_eq(shmbus_poll(sx, 64), 0);
	cr_expect_eq(shmbus_dlq_list(ch, 0, e, 4), 0);
	cr_expect_eq(shmbus_dlq_replay_to(ch, 12345, "s"), SHMBUS_ENOENT);
	shmbus_close(bus);
}

/* Fails its first three deliveries; a republished record must carry its
 * origin (the first sequence, equal to its value here). */
static int fail_small(const shmbus_record_t *r, void *ctx)
{
	struct log *l = ctx;
	logging(r, ctx);
	uint64_t v;
	memcpy(&v, r->data, sizeof(v));
	if (r->flags & SHMBUS_REC_REPUBLISHED)
		return r->origin == v ? 0 : -99; /* origin: the first seq */
	return l->failed++ < 3 ? -1 : 0;
}

static int die_on_retry(const shmbus_record_t *r, void *ctx)
{
	if (r->attempt > 1)
		raise(SIGKILL);
	return logging(r, ctx);
}

/* A child subscriber fails record 1 into its segment and is killed. */
static void fail_then_die(const char *name, bool during_retry)
{
	pid_t pid = test_fork();
	if (pid == 0) {
		shmbus_t *b;
		shmbus_channel_t *c;
		CHECK_OK(shmbus_open(name, NULL, &b));
		CHECK_OK(shmbus_channel_open(b, "R", NULL, &c));
		static struct log l;
		l.fail_val = 1;
		l.fail_times = UINT32_MAX;
		shmbus_sub_opts_t so = {.name = "s",
					.retry = {.max_attempts = 4,
						  .base_us = 1000,
						  .cap_us = 1000}};
		shmbus_sub_t *s;
		CHECK_OK(shmbus_subscribe(c, during_retry ? die_on_retry
							  : logging,
					  &l, &so, &s));
		while (l.n < 3)
			shmbus_poll(s, 64);
		if (during_retry)
			for (;;) /* the redelivery kills us, entry TAKEN */
				shmbus_poll(s, 64);
		raise(SIGKILL);
	}
	cr_assert_eq(child_status(pid), 128 + SIGKILL);
}


Test(retry, state_survives_a_killed_subscriber)
{
	for (int during = 0; during < 2; during++) {
		const char *name = test_bus(during ? "rs2" : "rs1");
		shmbus_t *bus;
		shmbus_channel_t *ch = chan(name, &bus, 0, 0, 0);
		/* create the name first so that it gates from record 0 */
		shmbus_sub_opts_t so = {.name = "s",
					.retry = {.max_attempts = 4,
						  .base_us = 1000,
						  .cap_us = 1000}};
		static struct log l;
		log_reset(&l, UINT64_MAX, 0, 0);
		shmbus_sub_t *s;
		cr_assert_eq(shmbus_subscribe(ch, logging, &l, &so, &s), 0);
		shmbus_sub_close(s, 0);
		shmbus_producer_t *p;
		cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
		publish_range(p, 0, 3);
		fail_then_die(name, during);
		/* the same name in this process: record 1 comes back, and its
		 * attempts go on from where the dead process left them */
		cr_assert_eq(shmbus_subscribe(ch, logging, &l, &so, &s), 0);
		poll_until(s, &l, 1);
		cr_assert_eq(l.n, 1, "during=%d", during);
		cr_expect_eq(l.val[0], 1);
		cr_expect_eq(l.attempt[0], 2, "during=%d attempt %u", during,
			     l.attempt[0]);
		shmbus_sub_stats_t st;
		shmbus_sub_get_stats(s, &st);
		cr_expect_eq(st.cursor, 3);
		shmbus_close(bus);
	}
}

Test(retry, unsubscribe_moves_pending_retries_to_the_dlq)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = chan(test_bus("ru"), &bus, 0, 0, 0);
	static struct log l;
	log_reset(&l, 0, UINT32_MAX, 0);
	shmbus_sub_opts_t so = {.name = "gone",
				.retry = {.base_us = 1000000,
					  .cap_us = 1000000}};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, logging, &l, &so, &s), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	publish_range(p, 0, 1);
	cr_expect_eq(shmbus_poll(s, 64), 1);
	shmbus_sub_close(s, 0);
	cr_assert_eq(shmbus_unsubscribe(ch, "gone"), 0);
	shmbus_dlq_entry_t e;
	cr_assert_eq(shmbus_dlq_list(ch, 0, &e, 1), 1);
	cr_expect_str_eq(e.subscriber, "gone");
	cr_expect_str_eq(e.text, "subscriber removed");
	cr_expect_eq(e.attempts, 1);
	shmbus_close(bus);
}

Test(retry, group_member_retries_and_a_dead_ones_entries_come_back)
{
	const char *name = test_bus("rg");
	shmbus_t *bus;
	shmbus_channel_t *ch = chan(name, &bus, 0, 0, 0);
	static struct log l;
	log_reset(&l, 0, 1, 0);
	shmbus_sub_opts_t so = {.name = "g",
				.retry = {.base_us = 1000, .cap_us = 1000}};
	shmbus_sub_t *m;
	cr_assert_eq(shmbus_group_join(ch, logging, &l, &so, &m), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	publish_range(p, 0, 2);
	poll_until(m, &l, 3);
	cr_expect_eq(l.n, 3);
	cr_expect_eq(l.val[2], 0);
	cr_expect_eq(l.attempt[2], 2);

	/* a member in another process takes a retry entry and dies in its
	 * handler; the watchdog hands the entry back to the group */
	publish_range(p, 7, 8);
	pid_t pid = test_fork();
	if (pid == 0) {
		shmbus_t *b;
		shmbus_channel_t *c;
		CHECK_OK(shmbus_open(name, NULL, &b));
		CHECK_OK(shmbus_channel_open(b, "R", NULL, &c));
		static struct log cl;
		cl.fail_val = 7;
		cl.fail_times = 1;
		shmbus_sub_t *cm;
		CHECK_OK(shmbus_group_join(c, die_on_retry, &cl, &so, &cm));
		for (;;)
			if (shmbus_poll(cm, 64) == 0)
				shmbus_sub_wait(cm, 1000000);
	}
	cr_assert_eq(child_status(pid), 128 + SIGKILL);
	shmbus_watchdog_t *w;
	cr_assert_eq(shmbus_watchdog_open(bus, NULL, &w), 0);
	cr_assert_eq(shmbus_watchdog_pass(w), 0);
	shmbus_watchdog_stats_t ws;
	shmbus_watchdog_get_stats(w, &ws);
	cr_expect_eq(ws.released, 1);
	uint64_t before = l.n;
	poll_until(m, &l, before + 1);
	cr_assert_eq(l.n, before + 1);
	cr_expect_eq(l.val[before], 7);
	cr_expect_eq(l.attempt[before], 2);
	/* the bus's totals in shared memory, from another handle */
	shmbus_t *b2;
	cr_assert_eq(shmbus_open(name, NULL, &b2), 0);
	shmbus_watchdog_counters(b2, &ws);
	cr_expect_eq(ws.released, 1);
	cr_expect_eq(ws.passes, 1);
	shmbus_close(b2);
	shmbus_watchdog_close(w);
	shmbus_close(bus);
}

Test(retry, poller_delivers_retries_when_due)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = chan(test_bus("rl"), &bus, 0, 0, 0);
	static struct log l;
	log_reset(&l, 0, 1, 0);
	shmbus_sub_opts_t so = {.name = "s",
				.retry = {.base_us = 5000, .cap_us = 5000}};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, logging, &l, &so, &s), 0);
	shmbus_poller_t *pl;
	cr_assert_eq(shmbus_poller_open(bus, SHMBUS_WAIT_BLOCK, &pl), 0);
	cr_assert_eq(shmbus_poller_add(pl, s), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	publish_range(p, 0, 1);
	cr_expect_eq(shmbus_poller_poll(pl, 64), 1);
	/* nothing new is published: the wait ends when the retry is due */
	uint64_t t0 = shmbus_now_ns();
	cr_expect_eq(shmbus_poller_wait(pl, 2000000000ull), 0);
	cr_expect_lt(shmbus_now_ns() - t0, 1000000000ull);
	cr_expect_eq(shmbus_poller_poll(pl, 64), 1);
	cr_expect_eq(l.n, 2);
	cr_expect_eq(l.attempt[1], 2);
	shmbus_poller_close(pl);
	shmbus_close(bus);
}

/* Run the shmbus tool; its stdout in out. Returns its exit status. */
static int tool(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = test_vshell(out, n, SHMBUS_TOOL, fmt, ap);
	va_end(ap);
	return rc;
}

Test(dlq, the_tool_lists_shows_replays_and_purges)
{
	const char *name = test_bus("qt");
	shmbus_t *bus;
	shmbus_channel_t *ch = chan(name, &bus, 0, 0, 0);
	static struct log l;
	log_reset(&l, 7, 1, -5);
	shmbus_sub_opts_t so = {.name = "audit", .retry = {.max_attempts = 1}};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, logging, &l, &so, &s), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	publish_range(p, 6, 9);
	cr_expect_eq(shmbus_poll(s, 64), 3);
	static char out[8192];
	cr_assert_eq(tool(out, sizeof(out), "dlq %s R list", name), 0);
	cr_expect(strstr(out, "1 entries") != NULL, "%s", out);
	cr_expect(strstr(out, "audit") != NULL, "%s", out);
	cr_expect(strstr(out, "value 7 refused") != NULL, "%s", out);
	cr_assert_eq(tool(out, sizeof(out), "dlq %s R show 0", name), 0);
	cr_expect(strstr(out, "error       -5") != NULL, "%s", out);
	cr_expect(strstr(out, "00000000  07 00 00 00") != NULL, "%s", out);
	cr_expect_neq(tool(out, sizeof(out), "dlq %s R show 9 2>/dev/null",
			   name),
		      0);
	/* replay to the subscriber: it succeeds the second time */
	cr_assert_eq(tool(out, sizeof(out), "dlq %s R replay 0 --to audit",
			  name),
		     0, "%s", out);
	poll_until(s, &l, 4);
	cr_expect_eq(l.val[3], 7);
	cr_assert_eq(tool(out, sizeof(out), "dlq %s R list", name), 0);
	cr_expect(strstr(out, "0 entries") != NULL, "%s", out);
	/* purge all */
	l.failed = 0;
	publish_range(p, 7, 8);
	cr_expect_eq(shmbus_poll(s, 64), 1);
	cr_assert_eq(tool(out, sizeof(out), "dlq %s R purge all", name), 0);
	cr_expect(strstr(out, "purged 1") != NULL, "%s", out);
	cr_expect_neq(tool(out, sizeof(out), "dlq nosuchbus R list 2>&1"), 0);
	cr_expect(strstr(out, "does not exist") != NULL, "%s", out);
	shmbus_close(bus);
}

Test(dlq, a_corrupt_range_is_an_error_and_purge_all_resets_it)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = chan(test_bus("qc"), &bus, 0, 0, 0);
	/* a peer scribbles the DLQ's range (the test reaches in) */
	atomic_store(&ch->dlq->tail, 0x9000000000000ull);
	atomic_store(&ch->dlq->head, 1);
	shmbus_dlq_stats_t ds;
	cr_expect_eq(shmbus_dlq_get_stats(ch, &ds), SHMBUS_ECORRUPT);
	cr_expect(strstr(shmbus_errmsg(), "purge all") != NULL);
	shmbus_dlq_entry_t e[2];
	cr_expect_eq(shmbus_dlq_list(ch, 0, e, 2), SHMBUS_ECORRUPT);
	/* a record that fails meanwhile is kept in its retry segment */
	static struct log l;
	log_reset(&l, 0, UINT32_MAX, 0);
	shmbus_sub_opts_t so = {.name = "s", .retry = {.max_attempts = 1}};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, logging, &l, &so, &s), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	publish_range(p, 0, 1);
	cr_expect_eq(shmbus_poll(s, 8), 1);
	shmbus_sub_info_t in;
	cr_assert_eq(shmbus_sub_list(ch, &in, 1), 1);
	cr_expect_eq(in.retry_pending, 1);
	cr_expect_eq(shmbus_dlq_purge(ch, SHMBUS_DLQ_ALL), 0);
	cr_assert_eq(shmbus_dlq_get_stats(ch, &ds), 0);
	cr_expect_eq(ds.count, 0);
	shmbus_close(bus);
}

/* SHMBUS_CH_COMPACT: retries and dead letters keep a record's identity
 * outside the ring, so they work as anywhere; a replay into the ring
 * would drop its origin (compact slots have none) and is refused, the
 * entry kept; a replay to one subscriber's retry segment keeps it. */
static int origin_is_value(const shmbus_record_t *r, void *ctx)
{
	struct log *l = ctx;
	uint64_t v;
	memcpy(&v, r->data, sizeof(v));
	if (r->origin != v)
		l->fail_rc = -99; /* noted: an origin lost */
	return logging(r, ctx);
}

Test(dlq, on_a_compact_channel_replay_is_refused_and_replay_to_works)
{
	shmbus_t *bus;
	const char *name = test_bus("qcmp");
	cr_assert_eq(shmbus_open(name, NULL, &bus), 0);
	shmbus_channel_opts_t o = {.record_size = 8,
				   .capacity = 64,
				   .flags = SHMBUS_CH_COMPACT};
	shmbus_channel_t *ch;
	cr_assert_eq(shmbus_channel_open(bus, "R", &o, &ch), 0, "%s",
		     shmbus_errmsg());
	static struct log l;
	log_reset(&l, 1, UINT32_MAX, 0);
	shmbus_sub_opts_t so = {.name = "s",
				.retry = {.max_attempts = 2,
					  .base_us = 100,
					  .cap_us = 100}};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, origin_is_value, &l, &so, &s), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	for (uint64_t v = 0; v < 3; v++)
		cr_assert_eq(shmbus_publish(p, &v, sizeof(v), 0), 0);
	/* 3 first deliveries, then record 1 again from the segment */
	poll_until(s, &l, 4);
	cr_expect_eq(l.n, 4);
	cr_expect_eq(l.val[3], 1);
	cr_expect_eq(l.attempt[3], 2);
	shmbus_dlq_entry_t e[2];
	cr_assert_eq(shmbus_dlq_list(ch, 0, e, 2), 1);
	cr_expect_eq(e[0].rec.origin, 1);
	cr_expect_eq(e[0].rec.key, 0);

	cr_expect_eq(shmbus_dlq_replay(ch, e[0].id, p), SHMBUS_EINVAL);
	char want[256];
	snprintf(want, sizeof(want),
		 "replaying DLQ entry %llu (kept): channel 'R' is compact "
		 "(SHMBUS_CH_COMPACT): its records carry no origin, so a "
		 "re-published record would lose its identity; nothing "
		 "published",
		 (unsigned long long)e[0].id);
	cr_expect_str_eq(shmbus_errmsg(), want);
	shmbus_channel_info_t info;
	cr_assert_eq(shmbus_channel_get_info(ch, &info), 0);
	cr_expect_eq(info.claimed, 3, "the refused replay claimed a slot");
	cr_expect_eq(shmbus_dlq_list(ch, 0, e, 2), 1, "the entry is gone");

	l.fail_times = 0; /* it succeeds now */
	cr_assert_eq(shmbus_dlq_replay_to(ch, e[0].id, "s"), 0, "%s",
		     shmbus_errmsg());
	poll_until(s, &l, 5);
	cr_expect_eq(l.n, 5);
	cr_expect_eq(l.val[4], 1);
	cr_expect_eq(l.fail_rc, 0, "a delivery without its origin");
	cr_expect_eq(shmbus_dlq_list(ch, 0, e, 2), 0);
	shmbus_close(bus);
	shmbus_unlink(name);
}
