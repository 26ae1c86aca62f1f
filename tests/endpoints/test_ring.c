/*
 * Sequencing in one process: claim/commit, batches, back-pressure, wrap of
 * the 64-bit sequence, uncommitted slots, durable names, leases.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"
#include "internal.h"

struct seen {
	uint64_t n;
	uint64_t next;	    /* expected payload counter */
	uint64_t first_seq; /* sequence of the first record */
	uint64_t last_seq;
	int bad;
	uint64_t keys;
};

static int check_counter(const shmbus_record_t *r, void *ctx)
{
	struct seen *s = ctx;
	uint64_t v;
	memcpy(&v, r->data, sizeof(v));
	if (s->n == 0)
		s->first_seq = r->seq;
	else if (r->seq != s->last_seq + 1)
		s->bad++;
	if (v != s->next)
		s->bad++;
	s->keys += r->key;
	s->next = v + 1;
	s->last_seq = r->seq;
	s->n++;
	return 0;
}

static int count_any(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	(*(uint64_t *)ctx)++;
	return 0;
}

struct fixture {
	shmbus_t *bus;
	shmbus_channel_t *ch;
	const char *name;
};

static struct fixture setup(const char *tag, uint32_t cap, uint32_t flags)
{
	struct fixture f;
	f.name = test_bus(tag);
	cr_assert_eq(shmbus_open(f.name, NULL, &f.bus), 0, "%s",
		     shmbus_errmsg());
	shmbus_channel_opts_t o = {
		.record_size = 40, .capacity = cap, .flags = flags};
	cr_assert_eq(shmbus_channel_open(f.bus, "C", &o, &f.ch), 0, "%s",
		     shmbus_errmsg());
	return f;
}

static void teardown(struct fixture *f)
{
	shmbus_close(f->bus);
	shmbus_unlink(f->name);
}

static void publish_counter(shmbus_producer_t *p, uint64_t v)
{
	cr_assert_eq(shmbus_publish(p, &v, sizeof(v), v), 0);
}

Test(ring, publish_poll_and_batches)
{
	struct fixture f = setup("pp", 64, 0);
	struct seen seen = {0};
	shmbus_sub_opts_t so = {.name = "s", .batch = 7};
	shmbus_sub_t *s;
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_subscribe(f.ch, check_counter, &seen, &so, &s), 0);
	cr_assert_eq(shmbus_producer_open(f.ch, NULL, &p), 0);
	uint64_t v = 0;
	for (int round = 0; round < 100; round++) {
		/* a batch claim of up to 40 slots, zero-copy */
		uint32_t n = 1 + (uint32_t)(round % 40);
		shmbus_claim_t c;
		cr_assert_eq(shmbus_claim(p, n, &c), 0);
		for (uint32_t i = 0; i < n; i++) {
			uint64_t x = v++;
			if (round & 1) { /* payload, length and key at once */
				cr_assert_eq(shmbus_claim_write(p, &c, i, &x, 8,
								1),
					     0);
				continue;
			}
			memcpy(shmbus_claim_payload(p, &c, i), &x, 8);
			shmbus_claim_set(p, &c, i, 8, 1);
		}
		cr_assert_eq(shmbus_commit(p, &c), 0);
		while (shmbus_poll(s, 1000) > 0)
			;
	}
	cr_expect_eq(seen.n, v);
	cr_expect_eq(seen.bad, 0);
	cr_expect_eq(seen.keys, v);
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(s, &st);
	cr_expect_eq(st.cursor, v);
	cr_expect_eq(st.delivered, v);
	/* oversize and zero-slot claims are refused */
	char big[41] = {0};
	cr_expect_eq(shmbus_publish(p, big, sizeof(big), 0), SHMBUS_EINVAL);
	shmbus_claim_t c;
	cr_expect_eq(shmbus_claim(p, 0, &c), SHMBUS_EINVAL);
	cr_expect_eq(shmbus_claim(p, 65, &c), SHMBUS_EINVAL);
	cr_assert_eq(shmbus_claim(p, 1, &c), 0);
	cr_expect_eq(shmbus_claim_set(p, &c, 0, 41, 0), SHMBUS_EINVAL);
	cr_expect_eq(shmbus_claim_set(p, &c, 1, 8, 0), SHMBUS_EINVAL);
	cr_expect_eq(shmbus_claim_set(p, &c, 0, 8, 0), 0);
	cr_expect_eq(shmbus_claim_write(p, &c, 0, big, 41, 0), SHMBUS_EINVAL);
	cr_expect_eq(shmbus_claim_write(p, &c, 1, big, 8, 0), SHMBUS_EINVAL);
	cr_expect_eq(shmbus_claim_write(p, &c, 0, NULL, 8, 0), SHMBUS_EINVAL);
	uint64_t x = v;
	memcpy(shmbus_claim_payload(p, &c, 0), &x, 8);
	cr_assert_eq(shmbus_commit(p, &c), 0);
	teardown(&f);
}

Test(ring, backpressure_refuses_then_resumes)
{
	struct fixture f = setup("bp", 16, 0);
	struct seen seen = {0};
	shmbus_sub_opts_t so = {.name = "slow"};
	shmbus_sub_t *s;
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_subscribe(f.ch, check_counter, &seen, &so, &s), 0);
	cr_assert_eq(shmbus_producer_open(f.ch, NULL, &p), 0);
	uint64_t v = 0;
	for (; v < 16; v++)
		cr_assert_eq(shmbus_try_publish(p, &v, 8, 0), 0);
	cr_expect_eq(shmbus_try_publish(p, &v, 8, 0), SHMBUS_EAGAIN);
	cr_expect_eq(shmbus_poll(s, 5), 5);
	for (int i = 0; i < 5; i++, v++)
		cr_assert_eq(shmbus_try_publish(p, &v, 8, 0), 0);
	cr_expect_eq(shmbus_try_publish(p, &v, 8, 0), SHMBUS_EAGAIN);
	while (shmbus_poll(s, 100) > 0)
		;
	cr_expect_eq(seen.n, 21);
	cr_expect_eq(seen.bad, 0);
	/* wait with a timeout on an empty ring */
	cr_expect_eq(shmbus_sub_wait(s, 1000000), SHMBUS_EAGAIN);
	teardown(&f);
}

static int sub_wait(void *s, uint64_t ns)
{
	return shmbus_sub_wait(s, ns);
}

/* Issue 13: a 200 ms wait took 256 ms, every time (ck_ec's back-off slept
 * in slices of 2, 16 and 128 ms past the time-out). */
Test(ring, wait_timeouts_are_honoured_by_every_sleeping_strategy,
     .timeout = 60)
{
	struct fixture f = setup("waitto", 16, 0);
	static const uint32_t strategies[] = {
		SHMBUS_WAIT_YIELD, SHMBUS_WAIT_BACKOFF, SHMBUS_WAIT_BLOCK};
	for (size_t i = 0; i < 3; i++) {
		char name[16];
		snprintf(name, sizeof(name), "w%u", strategies[i]);
		shmbus_sub_opts_t so = {.name = name, .wait = strategies[i]};
		shmbus_sub_t *s;
		uint64_t n = 0;
		cr_assert_eq(shmbus_subscribe(f.ch, count_any, &n, &so, &s), 0);
		char why[128];
		cr_expect(waits_on_time(sub_wait, s, why, sizeof(why)),
			  "strategy %u: %s", strategies[i], why);
		shmbus_sub_close(s, 0);
	}
	teardown(&f);
}

Test(ring, sequence_wraps_at_2_pow_64)
{
	struct fixture f = setup("wrap", 32, 0);
	/* Forge a claim sequence just below 2^64, before anyone joins. */
	struct ch_header *h = (struct ch_header *)f.ch->hdr;
	atomic_store(&h->claim, UINT64_MAX - 40);
	struct seen seen = {0};
	shmbus_sub_opts_t so = {.name = "w"};
	shmbus_sub_t *s;
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_subscribe(f.ch, check_counter, &seen, &so, &s), 0);
	cr_assert_eq(shmbus_producer_open(f.ch, NULL, &p), 0);
	for (uint64_t v = 0; v < 200; v++) {
		while (shmbus_try_publish(p, &v, 8, 0) == SHMBUS_EAGAIN)
			shmbus_poll(s, 10);
	}
	while (shmbus_poll(s, 100) > 0)
		;
	cr_expect_eq(seen.n, 200);
	cr_expect_eq(seen.bad, 0, "bad %d", seen.bad);
	cr_expect_eq(seen.first_seq, UINT64_MAX - 40);
	cr_expect_eq(seen.last_seq, 200 - 41 - 1);
	teardown(&f);
}

Test(ring, uncommitted_slot_holds_readers_in_order)
{
	struct fixture f = setup("mp", 64, SHMBUS_CH_MULTI_PRODUCER);
	struct seen seen = {0};
	shmbus_sub_opts_t so = {.name = "r"};
	shmbus_sub_t *s;
	shmbus_producer_t *a, *b;
	cr_assert_eq(shmbus_subscribe(f.ch, check_counter, &seen, &so, &s), 0);
	cr_assert_eq(shmbus_producer_open(f.ch, NULL, &a), 0);
	cr_assert_eq(shmbus_producer_open(f.ch, NULL, &b), 0);
	shmbus_claim_t ca;
	cr_assert_eq(shmbus_claim(a, 1, &ca), 0); /* seq 0, not committed */
	publish_counter(b, 1);			  /* seq 1, committed */
	cr_expect_eq(shmbus_poll(s, 10), 0, "read past an uncommitted slot");
	uint64_t zero = 0;
	memcpy(shmbus_claim_payload(a, &ca, 0), &zero, 8);
	cr_assert_eq(shmbus_commit(a, &ca), 0);
	cr_expect_eq(shmbus_poll(s, 10), 2);
	cr_expect_eq(seen.bad, 0);
	/* the uncommitted marker named its claimant */
	teardown(&f);
}

Test(ring, mp_try_claim_leaves_no_hole)
{
	struct fixture f = setup("mptry", 8, SHMBUS_CH_MULTI_PRODUCER);
	struct seen seen = {0};
	shmbus_sub_opts_t so = {.name = "r"};
	shmbus_sub_t *s;
	shmbus_producer_t *a;
	cr_assert_eq(shmbus_subscribe(f.ch, check_counter, &seen, &so, &s), 0);
	cr_assert_eq(shmbus_producer_open(f.ch, NULL, &a), 0);
	uint64_t v = 0;
	for (; v < 8; v++)
		cr_assert_eq(shmbus_try_publish(a, &v, 8, 0), 0);
	for (int i = 0; i < 10; i++)
		cr_expect_eq(shmbus_try_publish(a, &v, 8, 0), SHMBUS_EAGAIN);
	shmbus_channel_info_t info;
	shmbus_channel_get_info(f.ch, &info);
	cr_expect_eq(info.claimed, 8, "a refused try_claim moved the claim");
	while (shmbus_poll(s, 100) > 0)
		;
	for (; v < 12; v++)
		cr_assert_eq(shmbus_try_publish(a, &v, 8, 0), 0);
	while (shmbus_poll(s, 100) > 0)
		;
	cr_expect_eq(seen.n, 12);
	cr_expect_eq(seen.bad, 0);
	teardown(&f);
}

/* Issue 13: a name nobody reads blocked every producer forever, without a
 * word. With space_timeout_ms a claim that finds no room in time fails
 * with SHMBUS_ETIMEDOUT naming the subscriber that holds the ring, and
 * claims nothing: no hole, also on a multi-producer channel (there the
 * claim waits for room first, then claims by CAS). */
Test(ring, space_timeout_names_the_subscriber_holding_the_ring,
     .timeout = 30)
{
	static const uint32_t flags[] = {0, SHMBUS_CH_MULTI_PRODUCER};
	for (int k = 0; k < 2; k++) {
		struct fixture f = setup(k ? "spacemp" : "spacesp", 16, flags[k]);
		struct seen seen = {0};
		shmbus_sub_opts_t so = {.name = "slowpoke"};
		shmbus_sub_t *s;
		cr_assert_eq(shmbus_subscribe(f.ch, check_counter, &seen, &so,
					      &s),
			     0);
		shmbus_producer_opts_t po = {.wait = SHMBUS_WAIT_BLOCK,
					     .space_timeout_ms = 50};
		shmbus_producer_t *p;
		cr_assert_eq(shmbus_producer_open(f.ch, &po, &p), 0);
		uint64_t v = 0;
		for (; v < 16; v++)
			publish_counter(p, v);
		uint64_t t0 = shmbus_now_ns();
		cr_expect_eq(shmbus_publish(p, &v, 8, v), SHMBUS_ETIMEDOUT,
			     "channel flags %u", flags[k]);
		double ms = (double)(shmbus_now_ns() - t0) / 1e6;
		cr_expect(ms >= 50.0 && ms < 60.0, "timed out after %.1f ms",
			  ms);
		const char *m = shmbus_errmsg();
		cr_expect(strstr(m, "'slowpoke'") && strstr(m, "cursor 0") &&
				  strstr(m, "a live process"),
			  "%s", m);
		/* a zero-copy claim the same; nothing was claimed */
		shmbus_claim_t c;
		cr_expect_eq(shmbus_claim(p, 2, &c), SHMBUS_ETIMEDOUT);
		shmbus_channel_info_t info;
		shmbus_channel_get_info(f.ch, &info);
		cr_expect_eq(info.claimed, 16, "a timed-out claim moved it");
		/* room again: publishing goes on, without a hole */
		cr_expect_eq(shmbus_poll(s, 4), 4);
		for (; v < 20; v++)
			publish_counter(p, v);
		while (shmbus_poll(s, 100) > 0)
			;
		cr_expect_eq(seen.n, 20);
		cr_expect_eq(seen.bad, 0);
		teardown(&f);
	}
}

Test(ring, durable_names_resume_and_unsubscribe)
{
	struct fixture f = setup("dur", 16, 0);
	struct seen seen = {0};
	shmbus_sub_opts_t so = {.name = "d"};
	shmbus_sub_t *s, *s2;
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_subscribe(f.ch, check_counter, &seen, &so, &s), 0);
	cr_expect_eq(shmbus_subscribe(f.ch, check_counter, &seen, &so, &s2),
		     SHMBUS_EBUSY);
	cr_assert_eq(shmbus_producer_open(f.ch, NULL, &p), 0);
	uint64_t v = 0;
	for (; v < 5; v++)
		publish_counter(p, v);
	cr_expect_eq(shmbus_poll(s, 3), 3);
	cr_assert_eq(shmbus_sub_close(s, 0), 0);
	/* closed but durable: it still gates the producer */
	for (; v < 5 + 14; v++)
		cr_assert_eq(shmbus_try_publish(p, &v, 8, 0), 0, "v=%lu", v);
	cr_expect_eq(shmbus_try_publish(p, &v, 8, 0), SHMBUS_EAGAIN);
	cr_expect_eq(shmbus_unsubscribe(f.ch, "nobody"), SHMBUS_ENOENT);
	/* resume where it stopped: records 3.. */
	seen.next = 3;
	seen.n = 1;
	seen.last_seq = 2;
	cr_assert_eq(shmbus_subscribe(f.ch, check_counter, &seen, &so, &s), 0);
	cr_expect_eq(shmbus_unsubscribe(f.ch, "d"), SHMBUS_EBUSY);
	while (shmbus_poll(s, 100) > 0)
		;
	cr_expect_eq(seen.n, 1 + 16);
	cr_expect_eq(seen.bad, 0);
	cr_assert_eq(shmbus_sub_close(s, 1), 0);
	cr_expect_eq(shmbus_unsubscribe(f.ch, "d"), 0);
	/* nobody gates now: the producer runs free */
	for (int i = 0; i < 100; i++, v++)
		cr_assert_eq(shmbus_try_publish(p, &v, 8, 0), 0);
	teardown(&f);
}

Test(ring, subscriber_table_full)
{
	const char *name = test_bus("subfull");
	shmbus_t *bus;
	cr_assert_eq(shmbus_open(name, NULL, &bus), 0);
	shmbus_channel_opts_t o = {
		.record_size = 8, .capacity = 8, .max_subscribers = 2};
	shmbus_channel_t *ch;
	cr_assert_eq(shmbus_channel_open(bus, "C", &o, &ch), 0);
	struct seen seen = {0};
	shmbus_sub_t *a, *b, *c;
	shmbus_sub_opts_t so = {.name = "a"};
	cr_assert_eq(shmbus_subscribe(ch, check_counter, &seen, &so, &a), 0);
	so.name = "b";
	cr_assert_eq(shmbus_subscribe(ch, check_counter, &seen, &so, &b), 0);
	so.name = "c";
	cr_expect_eq(shmbus_subscribe(ch, check_counter, &seen, &so, &c),
		     SHMBUS_EFULL);
	so.name = "bad/name";
	cr_expect_eq(shmbus_subscribe(ch, check_counter, &seen, &so, &c),
		     SHMBUS_EINVAL);
	shmbus_close(bus);
	shmbus_unlink(name);
}

Test(ring, corrupt_length_is_bounded)
{
	struct fixture f = setup("len", 16, 0);
	struct seen seen = {0};
	shmbus_sub_opts_t so = {.name = "r"};
	shmbus_sub_t *s;
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_subscribe(f.ch, check_counter, &seen, &so, &s), 0);
	cr_assert_eq(shmbus_producer_open(f.ch, NULL, &p), 0);
	shmbus_claim_t c;
	cr_assert_eq(shmbus_claim(p, 1, &c), 0);
	uint64_t zero = 0;
	memcpy(shmbus_claim_payload(p, &c, 0), &zero, 8);
	/* a hostile length in the header */
	struct slot_header *h =
		(struct slot_header *)shmbus_claim_payload(p, &c, 0) - 1;
	h->len_flags = 0x00ffffff;
	cr_assert_eq(shmbus_commit(p, &c), 0);
	cr_expect_eq(shmbus_poll(s, 10), 1);
	cr_expect_eq(seen.n, 1);
	teardown(&f);
}

Test(ring, abandoned_names_expire_after_their_ttl)
{
	struct fixture f = setup("ttl", 8, 0);
	struct seen seen = {0};
	shmbus_sub_opts_t so = {.name = "brief", .ttl_ms = 50};
	shmbus_sub_opts_t keep = {.name = "kept"};
	shmbus_sub_t *s, *k;
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_subscribe(f.ch, check_counter, &seen, &so, &s), 0);
	cr_assert_eq(shmbus_subscribe(f.ch, check_counter, &seen, &keep, &k),
		     0);
	cr_assert_eq(shmbus_producer_open(f.ch, NULL, &p), 0);
	cr_expect_eq(shmbus_channel_expire(f.ch), 0, "a live name expired");
	cr_assert_eq(shmbus_sub_close(s, 0), 0);
	cr_assert_eq(shmbus_sub_close(k, 0), 0);
	cr_expect_eq(shmbus_channel_expire(f.ch), 0, "expired before its ttl");
	usleep(80000);
	cr_expect_eq(shmbus_channel_expire(f.ch), 1);
	/* "kept" (no ttl) still gates; unsubscribing it frees the producer */
	uint64_t v = 0;
	for (; v < 8; v++)
		cr_assert_eq(shmbus_try_publish(p, &v, 8, 0), 0);
	cr_expect_eq(shmbus_try_publish(p, &v, 8, 0), SHMBUS_EAGAIN);
	cr_assert_eq(shmbus_unsubscribe(f.ch, "kept"), 0);
	cr_expect_eq(shmbus_try_publish(p, &v, 8, 0), 0);
	cr_expect_eq(shmbus_unsubscribe(f.ch, "brief"), SHMBUS_ENOENT);
	teardown(&f);
}

struct stamp {
	uint64_t ts;
};

static int take_stamp(const shmbus_record_t *r, void *ctx)
{
	((struct stamp *)ctx)->ts = r->timestamp;
	return 0;
}

Test(ring, timestamps_come_from_the_bus_clock)
{
	struct fixture f = setup("clock", 8, 0);
	struct stamp st = {0};
	shmbus_sub_opts_t so = {.name = "t"};
	shmbus_sub_t *s;
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_subscribe(f.ch, take_stamp, &st, &so, &s), 0);
	cr_assert_eq(shmbus_producer_open(f.ch, NULL, &p), 0);
	for (int i = 0; i < 100; i++) {
		uint64_t before = shmbus_clock_ns(f.bus);
		uint64_t v = 0;
		cr_assert_eq(shmbus_publish(p, &v, 8, 0), 0);
		uint64_t after = shmbus_clock_ns(f.bus);
		cr_assert_eq(shmbus_poll(s, 1), 1);
		cr_assert(st.ts >= before && st.ts <= after,
			  "%lu not in [%lu, %lu]", st.ts, before, after);
	}
	/* the bus clock tracks CLOCK_MONOTONIC closely (TSC calibration) */
	int64_t skew = (int64_t)(shmbus_clock_ns(f.bus) - shmbus_now_ns());
	cr_expect(skew > -1000000 && skew < 1000000, "skew %ld ns", skew);
	teardown(&f);
}

Test(ring, overwrite_loss_total_survives_a_resume)
{
	struct fixture f = setup("owlost", 4, SHMBUS_CH_OVERWRITE);
	uint64_t got = 0;
	shmbus_sub_opts_t so = {.name = "r"};
	shmbus_sub_t *s;
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_subscribe(f.ch, count_any, &got, &so, &s), 0);
	cr_assert_eq(shmbus_producer_open(f.ch, NULL, &p), 0);
	for (uint64_t v = 0; v < 20; v++)
		cr_assert_eq(shmbus_publish(p, &v, 8, 0), 0);
	while (shmbus_poll(s, 100) > 0)
		;
	cr_assert_eq(shmbus_sub_close(s, 0), 0);
	for (uint64_t v = 0; v < 20; v++)
		cr_assert_eq(shmbus_publish(p, &v, 8, 0), 0);
	cr_assert_eq(shmbus_subscribe(f.ch, count_any, &got, &so, &s), 0);
	while (shmbus_poll(s, 100) > 0)
		;
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(s, &st);
	cr_expect_eq(got, 8);
	cr_expect_eq(st.lost, 16, "this handle lost %lu", st.lost);
	cr_expect_eq(atomic_load(&f.ch->subs[0].lost), 32,
		     "the name's total is %lu", atomic_load(&f.ch->subs[0].lost));
	teardown(&f);
}

/* The block strategy's sleepers count threads asleep, not subscribers that
 * use it: while every reader is awake, producers and readers write no word
 * of the wake-up lines (each event count stays put), and only a real sleep
 * makes a commit bump it. */
Test(ring, awake_block_readers_cost_the_writers_no_shared_write)
{
	struct fixture f = setup("sleepers", 64, 0);
	uint64_t got = 0;
	shmbus_sub_opts_t so = {.name = "b", .wait = SHMBUS_WAIT_BLOCK};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(f.ch, count_any, &got, &so, &s), 0);
	shmbus_producer_opts_t po = {.wait = SHMBUS_WAIT_BLOCK};
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(f.ch, &po, &p), 0);
	struct ch_header *h = f.ch->hdr;
	uint32_t data = ck_ec32_value(&h->data_ec);
	uint32_t space = ck_ec32_value(&h->space_ec);
	for (uint64_t v = 0; v < 100; v++) {
		publish_counter(p, v);
		cr_assert_eq(shmbus_poll(s, 16), 1);
	}
	cr_expect_eq(got, 100);
	cr_expect_eq(ck_ec32_value(&h->data_ec), data,
		     "commits bumped the data event count %u times with "
		     "nobody asleep",
		     ck_ec32_value(&h->data_ec) - data);
	cr_expect_eq(ck_ec32_value(&h->space_ec), space,
		     "polls bumped the space event count with nobody asleep");
	cr_expect_eq(atomic_load(&h->data_sleepers), 0);
	/* a wait that times out leaves the count as it found it */
	cr_expect_eq(shmbus_sub_wait(s, 2000000), SHMBUS_EAGAIN);
	cr_expect_eq(atomic_load(&h->data_sleepers), 0);
	teardown(&f);
}

/* Records without a publish time: no latency sampled (it would be
 * nonsense against 0) into the first row's histogram. */
static void expect_no_latency_samples(shmbus_channel_t *ch)
{
	uint64_t samples = 0;
	for (uint32_t b = 0; b < SHMBUS_LAT_BUCKETS; b++)
		samples += atomic_load(&ch->stats[0].lat[b]);
	cr_expect_eq(samples, 0, "%lu latency samples against no time",
		     samples);
}

/* SHMBUS_CH_NO_TIMESTAMP: no clock read at commit, timestamp 0, and no
 * latency sampled (it would be nonsense against 0). */
Test(ring, a_channel_without_timestamps_carries_none)
{
	struct fixture f = setup("nots", 8, SHMBUS_CH_NO_TIMESTAMP);
	struct stamp st = {.ts = 1};
	shmbus_sub_opts_t so = {.name = "t"};
	shmbus_sub_t *s;
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_subscribe(f.ch, take_stamp, &st, &so, &s), 0);
	cr_assert_eq(shmbus_producer_open(f.ch, NULL, &p), 0);
	for (int i = 0; i < 40; i++) {
		uint64_t v = 0;
		cr_assert_eq(shmbus_publish(p, &v, 8, 0), 0);
		cr_assert_eq(shmbus_poll(s, 1), 1);
		cr_assert_eq(st.ts, 0, "a timestamp %lu", st.ts);
	}
	shmbus_sub_info_t info;
	cr_assert_eq(shmbus_sub_list(f.ch, &info, 1), 1);
	expect_no_latency_samples(f.ch);
	/* a second open must agree on the flag */
	shmbus_channel_opts_t o = {.record_size = 40, .capacity = 8};
	shmbus_channel_t *again;
	cr_expect_eq(shmbus_channel_open(f.bus, "C", &o, &again), SHMBUS_EEXIST);
	teardown(&f);
}

/* SHMBUS_CH_COMPACT: an 8-byte slot header (marker and length only), so
 * a 64-byte record takes 72 bytes of ring and an 8-byte one 16; records
 * carry no time, key or origin (origin reads as the sequence). */
static void compact_slot_size(const char *tag, uint32_t rsize, uint32_t want)
{
	const char *name = test_bus(tag);
	shmbus_t *bus;
	shmbus_channel_t *ch = test_channel(name, &bus, "C", rsize, 8,
					    SHMBUS_CH_COMPACT);
	shmbus_channel_info_t info;
	cr_assert_eq(shmbus_channel_get_info(ch, &info), 0);
	cr_expect_eq(info.slot_size, want, "%u B records: slots of %u B",
		     rsize, info.slot_size);
	cr_expect_eq(info.flags, SHMBUS_CH_COMPACT);
	shmbus_close(bus);
	shmbus_unlink(name);
}

struct compact_seen {
	uint64_t n, bad, ts, keys;
};

static int check_compact(const shmbus_record_t *r, void *ctx)
{
	struct compact_seen *c = ctx;
	uint64_t v[5];
	if (r->len != sizeof(v)) {
		c->bad++;
		return 0;
	}
	memcpy(v, r->data, sizeof(v));
	for (int i = 0; i < 5; i++)
		c->bad += v[i] != r->seq * 10 + (uint64_t)i;
	c->bad += r->origin != r->seq || r->flags != 0;
	c->ts |= r->timestamp;
	c->keys |= r->key;
	c->n++;
	return 0;
}

/* A compact channel of 40-byte records, a subscriber checking them and
 * a producer. */
static struct fixture compact_setup(const char *tag, struct compact_seen *seen,
				    shmbus_sub_t **s, shmbus_producer_t **p)
{
	struct fixture f = setup(tag, 8, SHMBUS_CH_COMPACT);
	shmbus_sub_opts_t so = {.name = "t"};
	cr_assert_eq(shmbus_subscribe(f.ch, check_compact, seen, &so, s), 0);
	cr_assert_eq(shmbus_producer_open(f.ch, NULL, p), 0);
	return f;
}

Test(ring, a_compact_channel_has_8_byte_slot_headers)
{
	compact_slot_size("cmp64", 64, 72);
	compact_slot_size("cmp8", 8, 16);
	/* 40-byte records: publish, claim_write and claim_at all put the
	 * payload right behind the marker and length */
	struct compact_seen seen = {0};
	shmbus_sub_t *s;
	shmbus_producer_t *p;
	struct fixture f = compact_setup("cmp", &seen, &s, &p);
	cr_expect_eq(f.ch->slot_size, 48);
	uint64_t seq = 0;
	for (int round = 0; round < 5; round++) {
		uint64_t v[5];
		for (int i = 0; i < 5; i++)
			v[i] = seq * 10 + (uint64_t)i;
		cr_assert_eq(shmbus_publish(p, v, sizeof(v), 0), 0, "%s",
			     shmbus_errmsg());
		uint8_t *slot = (uint8_t *)slot_at(f.ch, seq);
		cr_expect_eq(memcmp(slot + 8, v, sizeof(v)), 0,
			     "the payload is not 8 bytes into its slot");
		seq++;
		shmbus_claim_t c;
		cr_assert_eq(shmbus_claim(p, 3, &c), 0);
		for (uint32_t k = 0; k < 3; k++, seq++) {
			for (int i = 0; i < 5; i++)
				v[i] = seq * 10 + (uint64_t)i;
			if (k == 1) {
				memcpy(shmbus_claim_at(&c, k), v, sizeof(v));
				cr_assert_eq(shmbus_claim_set(p, &c, k,
							      sizeof(v), 0),
					     0);
			} else {
				cr_assert_eq(shmbus_claim_write(p, &c, k, v,
								sizeof(v), 0),
					     0);
			}
			cr_expect_eq((uint8_t *)shmbus_claim_at(&c, k),
				     (uint8_t *)slot_at(f.ch, seq) + 8);
		}
		cr_assert_eq(shmbus_commit(p, &c), 0);
		cr_assert_eq(shmbus_poll(s, 100), 4);
	}
	cr_expect_eq(seen.n, 20);
	cr_expect_eq(seen.bad, 0, "%lu records not as published", seen.bad);
	cr_expect_eq(seen.ts, 0, "a compact record has a timestamp");
	cr_expect_eq(seen.keys, 0);
	/* no publish time: no latency sampled */
	expect_no_latency_samples(f.ch);
	/* every open must agree on the layout */
	shmbus_channel_opts_t o = {.record_size = 40, .capacity = 8};
	shmbus_channel_t *again;
	cr_expect_eq(shmbus_channel_open(f.bus, "C", &o, &again),
		     SHMBUS_EEXIST);
	cr_expect_str_eq(shmbus_errmsg(),
			 "channel 'C' exists with flags 16 (compact), this "
			 "open declares 0");
	o.flags = SHMBUS_CH_COMPACT;
	cr_expect_eq(shmbus_channel_open(f.bus, "C", &o, &again), 0, "%s",
		     shmbus_errmsg());
	teardown(&f);
	/* a compact channel opened by one that is not */
	struct fixture g = setup("cmpnot", 8, 0);
	o.flags = SHMBUS_CH_COMPACT;
	cr_expect_eq(shmbus_channel_open(g.bus, "C", &o, &again),
		     SHMBUS_EEXIST);
	cr_expect_str_eq(shmbus_errmsg(),
			 "channel 'C' exists with flags 0, this open "
			 "declares 16 (compact)");
	teardown(&g);
}

/* A compact slot has no room for a key or an origin: what would need one
 * is refused, naming the channel, and nothing is claimed (no hole). */
Test(ring, a_compact_channel_refuses_keys_and_origins)
{
	struct compact_seen seen = {0};
	shmbus_sub_t *s;
	shmbus_producer_t *p;
	struct fixture f = compact_setup("cmpkey", &seen, &s, &p);
	uint64_t v[5] = {0, 1, 2, 3, 4};
	const char *keymsg = "channel 'C' is compact (SHMBUS_CH_COMPACT): its "
			     "records carry no key; publish with key 0, or "
			     "use a channel without the flag";
	cr_expect_eq(shmbus_publish(p, v, sizeof(v), 7), SHMBUS_EINVAL);
	cr_expect_str_eq(shmbus_errmsg(), keymsg);
	cr_expect_eq(shmbus_try_publish(p, v, sizeof(v), 7), SHMBUS_EINVAL);
	cr_expect_str_eq(shmbus_errmsg(), keymsg);
	shmbus_record_t rec = {.data = v, .len = sizeof(v), .seq = 3,
			       .origin = 3};
	cr_expect_eq(shmbus_republish(p, &rec), SHMBUS_EINVAL);
	cr_expect_str_eq(shmbus_errmsg(),
			 "channel 'C' is compact (SHMBUS_CH_COMPACT): its "
			 "records carry no origin, so a re-published record "
			 "would lose its identity; nothing published");
	shmbus_channel_info_t info;
	cr_assert_eq(shmbus_channel_get_info(f.ch, &info), 0);
	cr_expect_eq(info.claimed, 0, "a refused publish claimed a slot");
	/* in a claim: the key is refused, the slot keeps its defaults and
	 * is published with key 0 when committed */
	shmbus_claim_t c;
	cr_assert_eq(shmbus_claim(p, 2, &c), 0);
	cr_expect_eq(shmbus_claim_set(p, &c, 0, sizeof(v), 9), SHMBUS_EINVAL);
	cr_expect_str_eq(shmbus_errmsg(), keymsg);
	cr_expect_eq(shmbus_claim_write(p, &c, 1, v, sizeof(v), 9),
		     SHMBUS_EINVAL);
	cr_expect_str_eq(shmbus_errmsg(), keymsg);
	for (uint32_t k = 0; k < 2; k++) {
		uint64_t w[5];
		for (int i = 0; i < 5; i++)
			w[i] = k * 10 + (uint64_t)i;
		cr_assert_eq(shmbus_claim_write(p, &c, k, w, sizeof(w), 0),
			     0);
	}
	cr_assert_eq(shmbus_commit(p, &c), 0);
	cr_expect_eq(shmbus_poll(s, 10), 2);
	cr_expect_eq(seen.bad, 0);
	cr_expect_eq(seen.keys, 0);
	teardown(&f);
}
