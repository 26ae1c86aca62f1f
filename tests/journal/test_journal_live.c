/*
 * Replay, then live (shmbus_journal_subscribe): a subscriber that starts
 * in the journal switches to the ring while producer processes publish and
 * a journaler process appends, and must see every record from its start
 * exactly once, in sequence order, each with the payload its producer
 * wrote. Small segments, so that the journal part crosses segment rolls.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "helpers.h"
#include "jhelpers.h"

#define REC 64u
#define CAP 1024u
#define PRODUCERS 2

struct payload {
	uint32_t producer;
	uint32_t pad;
	uint64_t n; /* the producer's own count */
	uint8_t fill[REC - 16];
};

struct shared {
	atomic_int stop_journaler;
	atomic_int journaler_pause; /* the journaler stops polling */
	atomic_int producers_done;
};

static char dir[256], jdir[300], bus_name[48];
static struct shared *sh;

static void setup(void)
{
	jt_dirs(dir, jdir);
	sh = shared_alloc(sizeof(*sh));
	cr_assert_not_null(sh);
}

static void teardown(void)
{
	jt_cleanup(dir, bus_name);
}

TestSuite(journal_live, .init = setup, .fini = teardown, .timeout = 240);

static uint64_t claimed(shmbus_channel_t *ch)
{
	shmbus_channel_info_t info;
	cr_assert_eq(shmbus_channel_get_info(ch, &info), 0);
	return info.claimed;
}

static shmbus_channel_t *open_channel(shmbus_t **bus, uint32_t flags)
{
	return test_channel(bus_name, bus, "orders", REC, CAP,
			    SHMBUS_CH_MULTI_PRODUCER | flags);
}

static shmbus_channel_t *child_channel(shmbus_t **bus)
{
	return jt_child_channel(bus_name, "orders", bus);
}

static pid_t start_journaler(void)
{
	return jt_start_journaler(bus_name, "orders", jdir,
				  &sh->stop_journaler, &sh->journaler_pause);
}

/* A producer process: n records (producer id, count, filler). */
static pid_t start_producer(uint32_t id, uint64_t n)
{
	pid_t pid = test_fork();
	if (pid)
		return pid;
	shmbus_t *bus;
	shmbus_channel_t *ch = child_channel(&bus);
	shmbus_producer_opts_t po = {.wait = SHMBUS_WAIT_BLOCK};
	shmbus_producer_t *p;
	CHECK_OK(shmbus_producer_open(ch, &po, &p));
	struct payload pl = {.producer = id};
	for (uint64_t i = 0; i < n; i++) {
		pl.n = i;
		jt_fill(pl.fill, i * PRODUCERS + id, sizeof(pl.fill));
		CHECK_OK(shmbus_publish(p, &pl, sizeof(pl), i * PRODUCERS + id));
		if (i % 4096 == 0)
			usleep(200); /* let the subscriber start mid-stream */
	}
	shmbus_producer_close(p);
	shmbus_close(bus);
	atomic_fetch_add(&sh->producers_done, 1);
	_exit(0);
}

/* What the subscriber saw. */
struct seen {
	uint64_t count, first, last;
	uint64_t next_n[PRODUCERS]; /* each producer's next expected count */
	uint64_t from_journal;	    /* delivered before the switch */
	uint64_t fail_every;	    /* fail the first attempt of every k-th */
	uint64_t failures, bad;
	char why[200];
	shmbus_sub_t *s;
};

static int check(const shmbus_record_t *r, void *ctx)
{
	struct seen *v = ctx;
	if (v->fail_every && r->attempt == 1 && r->seq % v->fail_every == 0) {
		v->failures++;
		return -1; /* ordered policy: delivered again, in place */
	}
	struct payload pl;
	const char *why = NULL;
	if (r->len != sizeof(pl)) {
		why = "length";
	} else {
		memcpy(&pl, r->data, sizeof(pl));
		if (pl.producer >= PRODUCERS)
			why = "producer id";
		else if (pl.n != v->next_n[pl.producer] &&
			 v->next_n[pl.producer] != UINT64_MAX)
			why = "per-producer order: a gap or a duplicate";
		else if (r->key != pl.n * PRODUCERS + pl.producer ||
			 !jt_same(pl.fill, r->key, sizeof(pl.fill)))
			why = "payload";
	}
	if (why == NULL && v->count && r->seq != v->last + 1)
		why = "bus sequence: a gap or a duplicate";
	if (why) {
		if (v->bad++ == 0)
			snprintf(v->why, sizeof(v->why),
				 "seq %llu (after %llu, %llu seen): %s",
				 (unsigned long long)r->seq,
				 (unsigned long long)v->last,
				 (unsigned long long)v->count, why);
		return 0;
	}
	if (v->count == 0)
		v->first = r->seq;
	v->next_n[pl.producer] = pl.n + 1;
	v->last = r->seq;
	v->count++;
	if (shmbus_sub_replaying(v->s))
		v->from_journal++;
	return 0;
}

/* Wait until the journal holds at least n records. */
static void wait_journaled(uint64_t n)
{
	shmbus_journal_t *j = NULL;
	for (int i = 0; i < 20000; i++) {
		if (j == NULL)
			j = jt_open_ro(jdir);
		if (j && shmbus_journal_end(j) >= n)
			break;
		usleep(500);
	}
	cr_assert_not_null(j, "no journal: %s", shmbus_errmsg());
	cr_assert_geq(shmbus_journal_end(j), n);
	shmbus_journal_close(j);
}

/* One round: producers publish, the journaler journals, and a subscriber
 * starts in the journal at `from` once `head` records are journaled (both
 * in thousandths of what the producers publish: the sanitizer builds run
 * a quarter as many). */
static void round_trip(const char *tag, uint64_t head, uint64_t from,
		       bool by_time, bool pause_journaler, uint64_t fail_every)
{
	uint64_t per = scaled(40000);
	head = head * per * PRODUCERS / 1000;
	from = from * per * PRODUCERS / 1000;
	snprintf(bus_name, sizeof(bus_name), "%s", test_bus(tag));
	shmbus_t *bus;
	shmbus_channel_t *ch = open_channel(&bus, 0);
	pid_t jp = start_journaler();
	/* journaled from the first record on: it joins before anyone
	 * publishes */
	shmbus_sub_info_t info[4];
	for (int i = 0; i < 20000 && shmbus_sub_list(ch, info, 4) < 1; i++)
		usleep(500);
	cr_assert_eq(shmbus_sub_list(ch, info, 4), 1);
	pid_t pp[PRODUCERS];
	for (uint32_t i = 0; i < PRODUCERS; i++)
		pp[i] = start_producer(i, per);
	wait_journaled(head);

	shmbus_journal_query_t q = {.from_seq = from};
	if (by_time) {
		/* the time stamp of record `from`, from the journal itself */
		shmbus_journal_t *j = jt_open_ro(jdir);
		cr_assert_not_null(j, "%s", shmbus_errmsg());
		shmbus_journal_iter_t *it;
		shmbus_journal_query_t one = {.from_seq = from};
		cr_assert_eq(shmbus_journal_iter_open(j, &one, &it), 0);
		shmbus_journal_entry_t e;
		cr_assert_eq(shmbus_journal_iter_next(it, &e), 1);
		q = (shmbus_journal_query_t){.from_time = e.rec.timestamp,
					     .flags = SHMBUS_JOURNAL_BY_TIME};
		shmbus_journal_iter_close(it);
		/* time stamps are taken after the claim, so with two
		 * producers an earlier sequence may carry a later time: the
		 * start is what the journal's own time query finds */
		cr_assert_eq(shmbus_journal_iter_open(j, &q, &it), 0);
		cr_assert_eq(shmbus_journal_iter_next(it, &e), 1);
		cr_assert_leq(e.rec.seq, from);
		from = e.rec.seq;
		shmbus_journal_iter_close(it);
		shmbus_journal_close(j);
	}
	if (pause_journaler)
		atomic_store(&sh->journaler_pause, 1);
	struct seen v = {.fail_every = fail_every};
	for (uint32_t i = 0; i < PRODUCERS; i++)
		v.next_n[i] = UINT64_MAX; /* each may start anywhere */
	shmbus_sub_opts_t so = {.name = "late",
				.wait = SHMBUS_WAIT_BLOCK,
				.retry = {.policy = SHMBUS_RETRY_ORDERED,
					  .base_us = 100,
					  .cap_us = 1000}};
	cr_assert_eq(shmbus_journal_subscribe(ch, jdir, &q, check, &v, &so,
					      &v.s),
		     0, "%s", shmbus_errmsg());
	cr_assert(shmbus_sub_replaying(v.s));
	uint64_t deadline = shmbus_now_ns() + 120000000000ull;
	bool paused = pause_journaler;
	while (v.bad == 0 && shmbus_now_ns() < deadline) {
		int n = shmbus_poll(v.s, 256);
		cr_assert_geq(n, 0, "poll: %s", shmbus_errmsg());
		if (paused && v.count > 1000) {
			/* it read what there was, and cannot switch until
			 * the journaler has passed its ring position */
			cr_assert(shmbus_sub_replaying(v.s));
			atomic_store(&sh->journaler_pause, 0);
			paused = false;
		}
		if (n == 0) {
			if (atomic_load(&sh->producers_done) == PRODUCERS &&
			    !shmbus_sub_replaying(v.s) &&
			    v.last + 1 >= claimed(ch))
				break;
			shmbus_sub_wait(v.s, 2000000);
		}
	}
	cr_expect_eq(v.bad, 0, "%s", v.why);
	cr_expect(!shmbus_sub_replaying(v.s), "never switched to the ring");
	cr_expect_eq(v.first, from, "started at %llu, not %llu",
		     (unsigned long long)v.first, (unsigned long long)from);
	cr_expect_eq(v.last + 1, claimed(ch));
	cr_expect_eq(v.count, v.last + 1 - from);
	cr_expect_gt(v.from_journal, 0, "nothing came from the journal");
	cr_expect_lt(v.from_journal, v.count, "nothing came from the ring");
	if (fail_every)
		cr_expect_gt(v.failures, 0);
	cr_log_info("%s: %llu records from %llu, %llu from the journal, "
		    "%llu failed first attempts",
		    tag, (unsigned long long)v.count,
		    (unsigned long long)from,
		    (unsigned long long)v.from_journal,
		    (unsigned long long)v.failures);
	/* the name goes first, so that producers do not wait for it after
	 * a failure */
	shmbus_sub_close(v.s, 0);
	cr_expect_eq(shmbus_unsubscribe(ch, "late"), 0);
	atomic_store(&sh->journaler_pause, 0);
	for (uint32_t i = 0; i < PRODUCERS; i++)
		cr_expect_eq(child_status(pp[i]), 0);
	atomic_store(&sh->stop_journaler, 1);
	cr_expect_eq(child_status(jp), 0);
	shmbus_close(bus);
}

Test(journal_live, from_the_oldest_while_publishing)
{
	round_trip("lo", 60, 0, false, false, 0);
}

Test(journal_live, from_the_middle_while_publishing)
{
	round_trip("lm", 250, 97, false, false, 0);
}

Test(journal_live, by_time)
{
	round_trip("lt", 250, 154, true, false, 0);
}

Test(journal_live, waits_for_a_journaler_behind_it)
{
	round_trip("lb", 60, 0, false, true, 0);
}

Test(journal_live, ordered_retries_in_the_journal_part)
{
	round_trip("lr", 60, 0, false, false, 97);
}

/* A name evicted while it was away (evict policy) comes back through the
 * journal from where it stopped: every record once, none counted as
 * missed (the journal part delivers what the eviction skipped). */
Test(journal_live, an_evicted_name_back_through_the_journal_misses_nothing)
{
	snprintf(bus_name, sizeof(bus_name), "%s", test_bus("le"));
	shmbus_t *bus;
	shmbus_channel_opts_t co = {.record_size = REC,
				    .capacity = CAP,
				    .stall_policy = SHMBUS_STALL_EVICT};
	cr_assert_eq(shmbus_open(bus_name, NULL, &bus), 0);
	shmbus_channel_t *ch;
	cr_assert_eq(shmbus_channel_open(bus, "orders", &co, &ch), 0, "%s",
		     shmbus_errmsg());
	shmbus_journal_opts_t jo = {.segment_size = 64 * 1024};
	shmbus_journal_attach_opts_t ao = {.journal = &jo};
	shmbus_journal_t *j;
	cr_assert_eq(shmbus_journal_attach(ch, jdir, &ao, &j), 0, "%s",
		     shmbus_errmsg());
	struct seen v = {0};
	for (uint32_t i = 0; i < PRODUCERS; i++)
		v.next_n[i] = UINT64_MAX;
	shmbus_sub_opts_t so = {.name = "audit"};
	cr_assert_eq(shmbus_subscribe(ch, check, &v, &so, &v.s), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	struct payload pl = {.producer = 0};
	uint64_t n = 5 * CAP, evictions = 0;
	for (uint64_t i = 0; i < n;) {
		if (i == 100) { /* audit read 100, then went away */
			cr_assert_eq(shmbus_poll(v.s, 1000), 100);
			shmbus_sub_close(v.s, 0);
		}
		pl.n = i;
		jt_fill(pl.fill, i * PRODUCERS, sizeof(pl.fill));
		int rc = shmbus_try_publish(p, &pl, sizeof(pl), i * PRODUCERS);
		if (rc == SHMBUS_EAGAIN) {
			/* the journaler had nothing to do: audit holds */
			int done = shmbus_journal_poll(j, 4096);
			cr_assert_geq(done, 0);
			if (done == 0)
				evictions += shmbus_channel_evict(ch, 0) > 0;
			continue;
		}
		cr_assert_eq(rc, 0);
		i++;
	}
	while (shmbus_journal_poll(j, 4096) > 0)
		;
	cr_assert_gt(evictions, 0, "audit was never evicted");
	shmbus_journal_query_t q = {.from_seq = 100};
	cr_assert_eq(shmbus_journal_subscribe(ch, jdir, &q, check, &v, &so,
					      &v.s),
		     0, "%s", shmbus_errmsg());
	while (shmbus_poll(v.s, 4096) > 0 || shmbus_sub_replaying(v.s))
		shmbus_journal_poll(j, 4096);
	cr_expect_eq(v.bad, 0, "%s", v.why);
	cr_expect_eq(v.count, n, "%llu of %llu",
		     (unsigned long long)v.count, (unsigned long long)n);
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(v.s, &st);
	cr_expect_eq(st.missed, 0, "missed %llu, all of it delivered",
		     (unsigned long long)st.missed);
	shmbus_sub_close(v.s, 0);
	shmbus_journal_close(j);
	shmbus_close(bus);
}

/* Issue 13: a segment deleted from the journal under a running journaler.
 * A subscriber that replays across it is told once (SHMBUS_ECORRUPT from
 * shmbus_poll, naming the sequences), counts them in missed, and gets
 * every other record once, in order. */
struct gap_seen {
	uint64_t count, next, lost_from, lost_to;
	bool bad;
};

static int gap_check(const shmbus_record_t *r, void *ctx)
{
	struct gap_seen *v = ctx;
	uint64_t want = v->next == v->lost_from ? v->lost_to : v->next;
	v->bad |= r->seq != want;
	v->next = r->seq + 1;
	v->count++;
	return 0;
}

Test(journal_live, a_deleted_segment_in_the_journal_part_is_counted_missed)
{
	snprintf(bus_name, sizeof(bus_name), "%s", test_bus("lg"));
	shmbus_t *bus;
	shmbus_channel_t *ch = open_channel(&bus, 0);
	shmbus_journal_opts_t jo = {.segment_size = 64 * 1024};
	shmbus_journal_attach_opts_t ao = {.journal = &jo};
	shmbus_journal_t *j;
	cr_assert_eq(shmbus_journal_attach(ch, jdir, &ao, &j), 0, "%s",
		     shmbus_errmsg());
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	struct payload pl = {.producer = 0};
	uint64_t n = 5000;
	for (uint64_t i = 0; i < n;) {
		pl.n = i;
		int rc = shmbus_try_publish(p, &pl, sizeof(pl), i);
		if (rc == SHMBUS_EAGAIN) {
			cr_assert_geq(shmbus_journal_poll(j, 4096), 0);
			continue;
		}
		cr_assert_eq(rc, 0);
		i++;
	}
	while (shmbus_journal_poll(j, 4096) > 0)
		;
	uint64_t f[64];
	cr_assert_geq(jt_seg_firsts(jdir, f, 64), 6);
	char path[600];
	snprintf(path, sizeof(path), "%s/%020llu.seg", jdir,
		 (unsigned long long)f[3]);
	cr_assert_eq(unlink(path), 0);
	struct gap_seen v = {.lost_from = f[3], .lost_to = f[4]};
	shmbus_sub_t *s;
	shmbus_journal_query_t q = {.from_seq = 0};
	shmbus_sub_opts_t so = {.name = "late"};
	cr_assert_eq(shmbus_journal_subscribe(ch, jdir, &q, gap_check, &v, &so,
					      &s),
		     0, "%s", shmbus_errmsg());
	int corrupt = 0;
	for (int round = 0; round < 100000; round++) {
		int rc = shmbus_poll(s, 4096);
		if (rc == SHMBUS_ECORRUPT) {
			corrupt++;
			cr_expect(strstr(shmbus_errmsg(), "are missing"), "%s",
				  shmbus_errmsg());
			continue;
		}
		cr_assert_geq(rc, 0, "%s", shmbus_errmsg());
		if (rc == 0 && !shmbus_sub_replaying(s))
			break;
		shmbus_journal_poll(j, 4096);
	}
	cr_expect_not(v.bad, "out of order, or the gap's records");
	cr_expect_eq(v.count, n - (f[4] - f[3]), "delivered %llu",
		     (unsigned long long)v.count);
	cr_expect_eq(corrupt, 1, "told once");
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(s, &st);
	cr_expect_eq(st.missed, f[4] - f[3], "missed %llu",
		     (unsigned long long)st.missed);
	shmbus_sub_close(s, 0);
	shmbus_producer_close(p);
	shmbus_journal_close(j);
	shmbus_close(bus);
}

/* A name that was holding at a ring record (ordered retries) comes back
 * through the journal, and a journal-part record fails too: the ring
 * record's hold keeps its attempt count. */
static struct {
	uint32_t attempt_at_150;
	uint32_t fails_120;
	uint64_t next;
	bool ring_fails;
	bool out_of_order;
} hv;

static int hold_check(const shmbus_record_t *r, void *ctx)
{
	(void)ctx;
	if (r->seq == 150 && hv.ring_fails)
		return -1;
	if (r->seq == 120 && hv.fails_120 == 0) {
		hv.fails_120++;
		return -1;
	}
	if (r->seq != hv.next)
		hv.out_of_order = true;
	if (r->seq == 150)
		hv.attempt_at_150 = r->attempt;
	hv.next = r->seq + 1;
	return 0;
}

Test(journal_live, a_resumed_ring_hold_keeps_its_attempts)
{
	snprintf(bus_name, sizeof(bus_name), "%s", test_bus("lh"));
	shmbus_t *bus;
	shmbus_channel_t *ch = open_channel(&bus, 0);
	shmbus_journal_t *j;
	cr_assert_eq(shmbus_journal_attach(ch, jdir, NULL, &j), 0, "%s",
		     shmbus_errmsg());
	shmbus_sub_opts_t so = {.name = "a",
				.retry = {.policy = SHMBUS_RETRY_ORDERED,
					  .max_attempts = 1000,
					  .base_us = 1,
					  .cap_us = 1}};
	shmbus_sub_t *s;
	hv.ring_fails = true;
	cr_assert_eq(shmbus_subscribe(ch, hold_check, NULL, &so, &s), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	struct payload pl = {0};
	for (uint64_t i = 0; i < 200; i++)
		cr_assert_eq(shmbus_publish(p, &pl, sizeof(pl), i), 0);
	while (shmbus_journal_poll(j, 4096) > 0)
		;
	hv.fails_120 = 1; /* the ring pass does not fail it */
	for (int k = 0; k < 200; k++) { /* up to 150, then held there */
		shmbus_poll(s, 256);
		usleep(100);
	}
	hv.attempt_at_150 = 0;
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(s, &st);
	uint64_t failed = st.failed;
	cr_assert_geq(failed, 3, "held at 150, tried %llu times",
		      (unsigned long long)failed);
	cr_assert_eq(hv.next, 150);
	cr_assert_not(hv.out_of_order);
	shmbus_sub_close(s, 0); /* the row keeps the hold */

	hv.ring_fails = false;
	hv.fails_120 = 0;
	hv.next = 100;
	shmbus_journal_query_t q = {.from_seq = 100};
	cr_assert_eq(shmbus_journal_subscribe(ch, jdir, &q, hold_check, NULL,
					      &so, &s),
		     0, "%s", shmbus_errmsg());
	for (int k = 0; k < 2000 && hv.next < 200; k++) {
		shmbus_poll(s, 256);
		usleep(100);
	}
	cr_expect_not(hv.out_of_order);
	cr_expect_eq(hv.next, 200);
	cr_expect_eq(hv.fails_120, 1, "the journal part held at 120 once");
	cr_expect_eq(hv.attempt_at_150, failed + 1,
		     "150 delivered at attempt %u after %llu failures",
		     hv.attempt_at_150, (unsigned long long)failed);
	shmbus_sub_close(s, 0);
	shmbus_journal_close(j);
	shmbus_close(bus);
}

/* Contiguous from 0: the first gap is the only thing this test needs. */
struct contiguous {
	uint64_t next, gaps;
};

static int contiguous(const shmbus_record_t *r, void *ctx)
{
	struct contiguous *c = ctx;
	if (r->seq != c->next)
		c->gaps++;
	c->next = r->seq + 1;
	return 0;
}

/* The journaler dies while a subscriber is in its journal part short of
 * the switch point; the operator unsubscribes its name and a new
 * subscriber takes the same name and row, its cursor at the present. That
 * cursor says nothing of the journal: the subscriber must not switch to
 * the ring over the records the journal never got. */
Test(journal_live, a_journaler_row_taken_by_a_new_name_is_not_followed)
{
	snprintf(bus_name, sizeof(bus_name), "%s", test_bus("lg"));
	shmbus_t *bus;
	shmbus_channel_t *ch = open_channel(&bus, 0);
	pid_t jp = start_journaler();
	shmbus_sub_info_t info;
	for (int k = 0; k < 5000 && shmbus_sub_list(ch, &info, 1) < 1; k++)
		usleep(1000); /* attached: it is owed every record */
	cr_assert_str_eq(info.name, "journal");
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	struct payload pl = {0};
	for (uint64_t i = 0; i < 100; i++)
		cr_assert_eq(shmbus_publish(p, &pl, sizeof(pl), i), 0);
	for (int k = 0; k < 5000; k++) { /* journaled up to 100 */
		shmbus_journal_t *j = jt_open_ro(jdir);
		uint64_t end = j ? shmbus_journal_end(j) : 0;
		if (j)
			shmbus_journal_close(j);
		if (end == 100)
			break;
		usleep(1000);
	}
	atomic_store(&sh->journaler_pause, 1);
	usleep(20000);
	for (uint64_t i = 100; i < 150; i++)
		cr_assert_eq(shmbus_publish(p, &pl, sizeof(pl), i), 0);
	struct contiguous seen = {0};
	shmbus_sub_opts_t so = {.name = "late"};
	shmbus_journal_query_t q = {.from_seq = 0};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_journal_subscribe(ch, jdir, &q, contiguous, &seen,
					      &so, &s),
		     0, "%s", shmbus_errmsg());
	kill(jp, SIGKILL);
	cr_assert_eq(child_status(jp), 128 + SIGKILL);
	cr_assert_eq(shmbus_unsubscribe(ch, "journal"), 0, "%s",
		     shmbus_errmsg());
	shmbus_sub_opts_t impostor = {.name = "journal"};
	shmbus_sub_t *x;
	cr_assert_eq(shmbus_subscribe(ch, contiguous, &(struct contiguous){0},
				      &impostor, &x),
		     0);
	for (int k = 0; k < 50; k++)
		shmbus_poll(s, 256);
	for (uint64_t i = 150; i < 160; i++)
		cr_assert_eq(shmbus_publish(p, &pl, sizeof(pl), i), 0);
	for (int k = 0; k < 50; k++)
		shmbus_poll(s, 256);
	cr_expect_eq(seen.gaps, 0, "switched to the ring over a gap: next %llu",
		     (unsigned long long)seen.next);
	cr_expect_eq(seen.next, 100, "the journal part went on to %llu",
		     (unsigned long long)seen.next);
	cr_expect(shmbus_sub_replaying(s), "it left the journal part");
	shmbus_sub_close(s, 0);
	shmbus_close(bus);
}

Test(journal_live, refuses_what_it_cannot_do)
{
	snprintf(bus_name, sizeof(bus_name), "%s", test_bus("lx"));
	shmbus_t *bus;
	shmbus_channel_t *ch = open_channel(&bus, 0);
	shmbus_sub_opts_t so = {.name = "late"};
	shmbus_sub_t *s;
	struct seen v = {0};
	/* no journal there */
	cr_expect_neq(shmbus_journal_subscribe(ch, jdir, NULL, check, &v, &so,
					       &s),
		      0);
	/* a journal, but no journaler on this channel */
	shmbus_journal_attach_opts_t ao = {.name = "jr"};
	shmbus_journal_t *j;
	cr_assert_eq(shmbus_journal_attach(ch, jdir, &ao, &j), 0, "%s",
		     shmbus_errmsg());
	shmbus_journal_close(j);
	cr_assert_eq(shmbus_unsubscribe(ch, "jr"), 0, "%s", shmbus_errmsg());
	cr_expect_eq(shmbus_journal_subscribe(ch, jdir, NULL, check, &v, &so,
					      &s),
		     SHMBUS_ENOENT);
	cr_expect(strstr(shmbus_errmsg(), "'jr'") != NULL, "%s",
		  shmbus_errmsg());
	/* the journal of another channel */
	shmbus_channel_opts_t o = {.record_size = REC, .capacity = CAP};
	shmbus_channel_t *other;
	cr_assert_eq(shmbus_channel_open(bus, "other", &o, &other), 0);
	cr_expect_eq(shmbus_journal_subscribe(other, jdir, NULL, check, &v,
					      &so, &s),
		     SHMBUS_EINVAL);
	/* a range or a key is not a start */
	shmbus_journal_query_t q = {.to_seq = 10};
	cr_expect_eq(shmbus_journal_subscribe(ch, jdir, &q, check, &v, &so,
					      &s),
		     SHMBUS_EINVAL);
	q = (shmbus_journal_query_t){.flags = SHMBUS_JOURNAL_BY_KEY};
	cr_expect_eq(shmbus_journal_subscribe(ch, jdir, &q, check, &v, &so,
					      &s),
		     SHMBUS_EINVAL);
	/* an overwrite channel has nothing to hold the ring */
	o.flags = SHMBUS_CH_OVERWRITE;
	shmbus_channel_t *ow;
	cr_assert_eq(shmbus_channel_open(bus, "ow", &o, &ow), 0);
	cr_expect_eq(shmbus_journal_subscribe(ow, jdir, NULL, check, &v, &so,
					      &s),
		     SHMBUS_EINVAL);
	/* none of the refusals left a name behind */
	shmbus_sub_info_t info[8];
	cr_expect_eq(shmbus_sub_list(ch, info, 8), 0);
	shmbus_close(bus);
}
