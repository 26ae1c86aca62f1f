/*
 * The evict stall policy (src/reliability/evict.c and the evictable read path of
 * src/endpoints/subscriber.c): a stalled subscriber is detached so that producers go
 * on; it learns what it missed, and a handler never sees a record that is
 * not exactly what was committed. Dependency barriers survive eviction: a
 * dependent never handles a record its upstream did not.
 *
 * Evictions are forged where the race is too rare to hit: a handler plays
 * the evictor (stores EVICTED in its own row) and the producer that laps
 * the records being read, then looks at its own record.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "helpers.h"
#include "internal.h"

#define CAP 16u

static void sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

static shmbus_channel_t *evict_channel_flags(shmbus_t **bus,
					     const char *name, uint32_t flags)
{
	CHECK_OK(shmbus_open(name, NULL, bus));
	shmbus_channel_opts_t o = {.record_size = 8,
				   .capacity = CAP,
				   .flags = flags,
				   .stall_policy = SHMBUS_STALL_EVICT};
	shmbus_channel_t *ch;
	CHECK_OK(shmbus_channel_open(*bus, "Ev", &o, &ch));
	return ch;
}

static shmbus_channel_t *evict_channel(shmbus_t **bus, const char *name)
{
	return evict_channel_flags(bus, name, 0);
}

/* Publish values up to `to` (exclusive); every record's payload is its
 * own sequence number. */
static void publish_to(shmbus_producer_t *p, uint64_t *v, uint64_t to)
{
	for (; *v < to; (*v)++)
		cr_assert_eq(shmbus_try_publish(p, v, 8, 0), 0, "publish %lu",
			     *v);
}

struct counting {
	uint64_t got, next, errors;
};

static int count_in_order(const shmbus_record_t *r, void *ctx)
{
	struct counting *c = ctx;
	uint64_t v;
	memcpy(&v, r->data, 8);
	if (c->got && v != c->next)
		c->errors++;
	c->next = v + 1;
	c->got++;
	return 0;
}

Test(evict, evicted_subscribers_learn_what_they_missed, .timeout = 60)
{
	const char *name = test_bus("evict");
	shmbus_t *bus;
	shmbus_channel_t *ch = evict_channel(&bus, name);
	/* a subscriber whose process dies, and a live one that stalls */
	pid_t dead = test_fork();
	if (dead == 0) {
		shmbus_t *b;
		shmbus_channel_t *c = evict_channel(&b, name);
		struct counting cnt = {0};
		shmbus_sub_opts_t so = {.name = "gone"};
		shmbus_sub_t *s;
		CHECK_OK(shmbus_subscribe(c, count_in_order, &cnt, &so, &s));
		raise(SIGKILL);
	}
	cr_assert_eq(child_status(dead), 128 + SIGKILL);
	struct counting live = {0};
	shmbus_sub_opts_t so = {.name = "sleepy"};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, count_in_order, &live, &so, &s), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	uint64_t v = 0;
	publish_to(p, &v, CAP);
	cr_expect_eq(shmbus_try_publish(p, &v, 8, 0), SHMBUS_EAGAIN);
	cr_expect_eq(shmbus_channel_evict(ch, 30), 0); /* clocks start */
	sleep_us(40000);
	cr_expect_eq(shmbus_channel_evict(ch, 30), 2);
	/* producers go on */
	publish_to(p, &v, 100);
	/* the live one: one poll says it was lapped, then it goes on */
	cr_expect_eq(shmbus_poll(s, 1000), SHMBUS_ELAPPED);
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(s, &st);
	cr_expect_eq(st.missed, 100, "missed %lu", st.missed);
	publish_to(p, &v, 110);
	cr_expect_eq(shmbus_poll(s, 1000), 10);
	cr_expect_eq(live.errors, 0);
	/* the dead one's name comes back and is told what it missed */
	struct counting back = {0};
	shmbus_sub_opts_t go = {.name = "gone"};
	shmbus_sub_t *g;
	cr_assert_eq(shmbus_subscribe(ch, count_in_order, &back, &go, &g), 0);
	shmbus_sub_get_stats(g, &st);
	cr_expect_eq(st.missed, 110, "missed %lu", st.missed);
	publish_to(p, &v, 120);
	cr_expect_eq(shmbus_poll(g, 1000), 10);
	cr_expect_eq(back.errors, 0);
	/* a block-policy channel evicts nobody */
	shmbus_channel_opts_t bo = {.record_size = 8, .capacity = CAP};
	shmbus_channel_t *bch;
	cr_assert_eq(shmbus_channel_open(bus, "Blk", &bo, &bch), 0);
	cr_expect_eq(shmbus_channel_evict(bch, 0), SHMBUS_EINVAL);
	shmbus_close(bus);
	shmbus_unlink(name);
}

/* ------------------------------- a handler sees only what was committed */

struct lapper {
	shmbus_channel_t *ch;
	shmbus_producer_t *p;
	uint64_t v;	  /* next value to publish */
	uint64_t got;	  /* handler calls */
	uint64_t wrong;	  /* records whose payload was not their own */
	uint32_t fail_first; /* fail the first delivery (a hold) */
	bool lapped;
};

/* Plays the evictor and the producer that laps the ring on its first
 * successful delivery, then reads its own record: it must still be the one
 * committed at r->seq. */
static int lap_then_look(const shmbus_record_t *r, void *ctx)
{
	struct lapper *l = ctx;
	l->got++;
	if (l->fail_first && r->attempt == 1 && r->seq == 0)
		return -1;
	if (!l->lapped) {
		l->lapped = true;
		atomic_store(&l->ch->subs[0].state, SUB_EVICTED);
		for (; l->v < 40; l->v++)
			cr_assert_eq(shmbus_try_publish(l->p, &l->v, 8, 0), 0);
	}
	uint64_t v;
	memcpy(&v, r->data, 8);
	if (v != r->seq)
		l->wrong++;
	return 0;
}

static void evicted_reader_never_sees_an_overwrite(const char *tag,
						    uint32_t flags)
{
	const char *name = test_bus(tag);
	shmbus_t *bus;
	shmbus_channel_t *ch = evict_channel_flags(&bus, name, flags);
	struct lapper l = {.ch = ch};
	shmbus_sub_opts_t so = {.name = "slow"};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, lap_then_look, &l, &so, &s), 0);
	cr_assert_eq(shmbus_producer_open(ch, NULL, &l.p), 0);
	publish_to(l.p, &l.v, CAP);
	/* record 0 was intact when it was handed over; from record 1 on the
	 * ring holds a later lap: told, never delivered */
	cr_expect_eq(shmbus_poll(s, 1000), SHMBUS_ELAPPED);
	cr_expect_eq(l.v, 40, "the producer was not let past: %lu", l.v);
	cr_expect_eq(l.wrong, 0, "%lu handler calls saw a record rewritten "
				 "under them",
		     l.wrong);
	cr_expect_eq(l.got, 1, "%lu handler calls", l.got);
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(s, &st);
	cr_expect_eq(st.missed, 39, "missed %lu", st.missed);
	/* and it goes on from the present */
	publish_to(l.p, &l.v, 45);
	cr_expect_eq(shmbus_poll(s, 1000), 5);
	cr_expect_eq(l.wrong, 0);
	shmbus_close(bus);
	shmbus_unlink(name);
}

Test(evict, an_evicted_reader_never_sees_an_overwritten_record,
     .timeout = 60)
{
	evicted_reader_never_sees_an_overwrite("evictmid", 0);
}

/* The same copy-and-check on 8-byte slot headers (the copy starts right
 * behind the marker and length) */
Test(evict, an_evicted_compact_reader_never_sees_an_overwritten_record,
     .timeout = 60)
{
	evicted_reader_never_sees_an_overwrite("evictcmp", SHMBUS_CH_COMPACT);
}

Test(evict, a_held_record_redelivered_after_eviction_is_intact,
     .timeout = 60)
{
	/* the ordered retry policy holds the subscriber at the ring record
	 * that failed; its redelivery reads the slot again */
	const char *name = test_bus("evicthold");
	shmbus_t *bus;
	shmbus_channel_t *ch = evict_channel(&bus, name);
	struct lapper l = {.ch = ch, .fail_first = 1};
	shmbus_sub_opts_t so = {.name = "held",
				.retry = {.policy = SHMBUS_RETRY_ORDERED,
					  .base_us = 1,
					  .cap_us = 1}};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, lap_then_look, &l, &so, &s), 0);
	cr_assert_eq(shmbus_producer_open(ch, NULL, &l.p), 0);
	publish_to(l.p, &l.v, CAP);
	cr_expect_eq(shmbus_poll(s, 1000), 0, "held at record 0");
	sleep_us(2000);
	int rc = shmbus_poll(s, 1000);
	if (rc >= 0) /* the redelivery was handled; the loss shows next */
		rc = shmbus_poll(s, 1000);
	cr_expect_eq(rc, SHMBUS_ELAPPED);
	cr_expect_eq(l.wrong, 0, "the held record was rewritten under its "
				 "handler");
	shmbus_close(bus);
	shmbus_unlink(name);
}

/* ------------------------------------ dependency barriers and eviction */

/* Which sequences a subscriber handled. */
struct handled {
	uint8_t seen[256];
	uint64_t got;
};

static int mark(const shmbus_record_t *r, void *ctx)
{
	struct handled *h = ctx;
	if (r->seq < sizeof(h->seen))
		h->seen[r->seq] = 1;
	h->got++;
	return 0;
}

static shmbus_sub_t *sub_after(shmbus_channel_t *ch, const char *name,
			       const char *upstream, struct handled *h)
{
	const char *after[] = {upstream};
	shmbus_sub_opts_t so = {.name = name,
				.after = upstream ? after : NULL,
				.n_after = upstream ? 1 : 0};
	shmbus_sub_t *s = NULL;
	cr_assert_eq(shmbus_subscribe(ch, mark, h, &so, &s), 0,
		     "subscribe %s: %s", name, shmbus_errmsg());
	return s;
}

/* Poll until nothing more comes (ELAPPED counts as progress). */
static void drain(shmbus_sub_t *s)
{
	for (int i = 0; i < 100; i++) {
		int rc = shmbus_poll(s, 1000);
		if (rc == 0)
			return;
		cr_assert(rc > 0 || rc == SHMBUS_ELAPPED, "poll: %d", rc);
	}
}

/* Publish up to `to`, then let the upstream, then the dependent, poll. */
static void step(shmbus_producer_t *p, uint64_t *v, uint64_t to,
		 shmbus_sub_t *up, shmbus_sub_t *dep)
{
	publish_to(p, v, to);
	drain(up);
	drain(dep);
}

/* Every record the dependent handled, its upstream handled first. */
static void expect_subset(const struct handled *dep,
			  const struct handled *up)
{
	uint64_t bad = 0;
	for (size_t i = 0; i < sizeof(dep->seen); i++)
		bad += dep->seen[i] && !up->seen[i];
	cr_expect_eq(bad, 0, "the dependent handled %lu records its upstream "
			     "never did",
		     bad);
}

Test(evict, an_upstream_is_evicted_with_its_dependents, .timeout = 60)
{
	/* A dependent that joined while its upstream lagged a ring behind
	 * starts ahead of it, at the present: it is not stalled itself. When
	 * the upstream rejoins further on, the dependent must not handle
	 * what lies between: it goes with its upstream. */
	const char *name = test_bus("evictdep");
	shmbus_t *bus;
	shmbus_channel_t *ch = evict_channel(&bus, name);
	struct handled hu = {0}, hd = {0};
	shmbus_sub_t *u = sub_after(ch, "up", NULL, &hu);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	uint64_t v = 0;
	publish_to(p, &v, CAP); /* up stalls at 0 */
	shmbus_sub_t *d = sub_after(ch, "down", "up", &hd); /* at 16 */
	cr_expect_eq(shmbus_channel_evict(ch, 0), 0);
	int n = shmbus_channel_evict(ch, 0);
	cr_expect_eq(n, 2, "evicted %d: down must go with up", n);
	publish_to(p, &v, CAP + 8);
	drain(u); /* rejoins at 24 */
	step(p, &v, CAP + 16, u, d);
	step(p, &v, CAP + 24, u, d);
	expect_subset(&hd, &hu);
	cr_expect_eq(hd.got, 8, "the dependent handled %lu", hd.got);
	shmbus_close(bus);
	shmbus_unlink(name);
}

Test(evict, a_dependent_back_first_waits_for_its_upstream, .timeout = 60)
{
	/* Both evicted; the dependent rejoins first, at a present its
	 * upstream has not reached: when the upstream rejoins later, further
	 * on, the dependent must not handle what lies between. */
	const char *name = test_bus("evictorder");
	shmbus_t *bus;
	shmbus_channel_t *ch = evict_channel(&bus, name);
	struct handled hu = {0}, hd = {0};
	shmbus_sub_t *u = sub_after(ch, "up", NULL, &hu);
	shmbus_sub_t *d = sub_after(ch, "down", "up", &hd);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	uint64_t v = 0;
	publish_to(p, &v, CAP);
	cr_expect_eq(shmbus_channel_evict(ch, 0), 0);
	cr_expect_eq(shmbus_channel_evict(ch, 0), 2);
	publish_to(p, &v, CAP + 4);
	cr_expect_eq(shmbus_poll(d, 1000), SHMBUS_ELAPPED); /* at 20 */
	publish_to(p, &v, CAP + 12);
	cr_expect_eq(shmbus_poll(u, 1000), SHMBUS_ELAPPED); /* at 28 */
	step(p, &v, CAP + 20, u, d);
	step(p, &v, CAP + 28, u, d);
	expect_subset(&hd, &hu);
	cr_expect_gt(hd.got, 0, "the dependent never went on");
	shmbus_close(bus);
	shmbus_unlink(name);
}

static int nop(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	(void)ctx;
	return 0;
}

Test(evict, an_upstream_of_a_group_is_not_evicted, .timeout = 60)
{
	/* a group cannot rejoin at the present, so neither is its upstream
	 * evicted: the group gates producers at or below it anyway */
	const char *name = test_bus("evictgrp");
	shmbus_t *bus;
	shmbus_channel_t *ch = evict_channel(&bus, name);
	struct handled hu = {0};
	shmbus_sub_t *u = sub_after(ch, "up", NULL, &hu);
	const char *after[] = {"up"};
	shmbus_sub_opts_t go = {.name = "workers", .after = after, .n_after = 1};
	shmbus_sub_t *g;
	cr_assert_eq(shmbus_group_join(ch, nop, NULL, &go, &g), 0, "%s",
		     shmbus_errmsg());
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	uint64_t v = 0;
	publish_to(p, &v, CAP);
	cr_expect_eq(shmbus_channel_evict(ch, 0), 0);
	cr_expect_eq(shmbus_channel_evict(ch, 0), 0, "up was evicted");
	cr_expect_eq(shmbus_poll(u, 1000), CAP);
	(void)g;
	shmbus_close(bus);
	shmbus_unlink(name);
}

Test(evict, on_a_spill_channel_an_upstream_is_not_evicted, .timeout = 60)
{
	/* its dependents could neither lose what it skipped (spill loses
	 * nothing) nor read it from the journal before it has */
	const char *name = test_bus("evictspill");
	shmbus_t *bus;
	CHECK_OK(shmbus_open(name, NULL, &bus));
	shmbus_channel_opts_t o = {.record_size = 8,
				   .capacity = CAP,
				   .stall_policy = SHMBUS_STALL_SPILL};
	shmbus_channel_t *ch;
	CHECK_OK(shmbus_channel_open(bus, "Sp", &o, &ch));
	struct handled hu = {0}, hd = {0};
	const char *after[] = {"up"};
	shmbus_sub_opts_t uo = {.name = "up", .journal = "/nonexistent"};
	shmbus_sub_opts_t dop = {.name = "down", .journal = "/nonexistent",
				 .after = after, .n_after = 1};
	shmbus_sub_t *u, *d;
	cr_assert_eq(shmbus_subscribe(ch, mark, &hu, &uo, &u), 0, "%s",
		     shmbus_errmsg());
	cr_assert_eq(shmbus_subscribe(ch, mark, &hd, &dop, &d), 0, "%s",
		     shmbus_errmsg());
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	uint64_t v = 0;
	publish_to(p, &v, CAP);
	cr_expect_eq(shmbus_channel_evict(ch, 0), 0);
	/* the dependent, a leaf, may go; its upstream stays */
	cr_expect_eq(shmbus_channel_evict(ch, 0), 1);
	cr_expect_eq(atomic_load(&ch->subs[0].state), SUB_ACTIVE);
	cr_expect_eq(atomic_load(&ch->subs[1].state), SUB_EVICTED);
	cr_expect_eq(shmbus_poll(u, 1000), CAP);
	(void)d;
	shmbus_close(bus);
	shmbus_unlink(name);
}
