/*
 * The journaler's own behaviour, in one process. Dead letters are
 * journaled: it copies the channel's DLQ entries into DIR/dlq (sequence =
 * DLQ id) with why they failed, once each, across a close and a
 * re-attach, skipping those purged before it looked; the records' own
 * journal is not disturbed by the subdirectory. On an evict-policy
 * channel it may fall behind: evicted, it rejoins and goes on, and what
 * it skipped is counted and is exactly the gap in its sequences.
 */
#include <criterion/criterion.h>
#include <pthread.h>

#include "helpers.h"
#include "jhelpers.h"

#define REC 64u

static char dir[256], jdir[300], dlqdir[320], bus_name[48];

static void setup(void)
{
	jt_dirs(dir, jdir);
	snprintf(dlqdir, sizeof(dlqdir), "%s/dlq", jdir);
}

static void teardown(void)
{
	jt_cleanup(dir, bus_name);
}

TestSuite(journaler, .init = setup, .fini = teardown, .timeout = 60);

/* Every 10th record can never succeed. */
static int picky(const shmbus_record_t *r, void *ctx)
{
	(void)ctx;
	if (r->key % 10 != 0)
		return 0;
	shmbus_fail_note("multiple of ten: %llu", (unsigned long long)r->key);
	return SHMBUS_EPERMANENT;
}

static void publish_range(shmbus_producer_t *p, uint64_t from, uint64_t to)
{
	uint8_t rec[REC];
	for (uint64_t k = from; k < to; k++) {
		jt_fill(rec, k, REC);
		cr_assert_eq(shmbus_publish(p, rec, REC, k), 0);
	}
}

static void drain(shmbus_sub_t *s, shmbus_journal_t *j)
{
	while (shmbus_poll(s, 256) > 0)
		;
	if (j)
		while (shmbus_journal_poll(j, 256) > 0)
			;
}

/* The journaler of ch into d, with jo. */
static shmbus_journal_t *attach(shmbus_channel_t *ch, const char *d,
				shmbus_journal_opts_t *jo)
{
	shmbus_journal_attach_opts_t ao = {.journal = jo};
	shmbus_journal_t *j;
	cr_assert_eq(shmbus_journal_attach(ch, d, &ao, &j), 0, "%s",
		     shmbus_errmsg());
	return j;
}

/* The dead-letter journal holds exactly the keys `want` (in DLQ id order,
 * ids strictly increasing), each with its failure. */
static void check_dead_letters(const uint64_t *want, size_t n)
{
	shmbus_journal_t *j = jt_open_ro(dlqdir);
	cr_assert_not_null(j, "%s", shmbus_errmsg());
	shmbus_journal_iter_t *it;
	cr_assert_eq(shmbus_journal_iter_open(j, NULL, &it), 0);
	shmbus_journal_entry_t e;
	size_t i = 0;
	uint64_t last_id = 0;
	while (shmbus_journal_iter_next(it, &e) == 1) {
		shmbus_journal_dead_letter_t h;
		cr_assert_geq(e.rec.len, sizeof(h));
		memcpy(&h, e.rec.data, sizeof(h));
		const uint8_t *payload = (const uint8_t *)e.rec.data + sizeof(h);
		cr_assert_lt(i, n, "more dead letters than failures");
		cr_expect(i == 0 || e.rec.seq > last_id);
		cr_expect_eq(e.rec.key, want[i]);
		cr_expect_eq(h.seq, want[i]); /* key = sequence here */
		cr_expect_eq(h.error, SHMBUS_EPERMANENT);
		cr_expect_eq(h.attempts, 1);
		cr_expect_str_eq(h.subscriber, "picky");
		char note[72];
		snprintf(note, sizeof(note), "multiple of ten: %llu",
			 (unsigned long long)want[i]);
		cr_expect_str_eq(h.text, note);
		cr_expect_eq(h.len, REC);
		cr_expect_eq(e.rec.len, sizeof(h) + REC);
		cr_expect(jt_same(payload, want[i], REC), "payload of %llu",
			  (unsigned long long)want[i]);
		last_id = e.rec.seq;
		i++;
	}
	cr_expect_eq(i, n, "dead letters journaled: %zu of %zu", i, n);
	shmbus_journal_iter_close(it);
	shmbus_journal_close(j);
}

Test(journaler, dead_letters_are_journaled_once_each)
{
	snprintf(bus_name, sizeof(bus_name), "%s", test_bus("dl"));
	shmbus_t *bus;
	shmbus_channel_t *ch =
		test_channel(bus_name, &bus, "orders", REC, 4096, 0);
	shmbus_journal_t *j;
	cr_assert_eq(shmbus_journal_attach(ch, jdir, NULL, &j), 0, "%s",
		     shmbus_errmsg());
	shmbus_sub_opts_t so = {.name = "picky"};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, picky, NULL, &so, &s), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);

	/* 100 dead letters, journaled by the journaler's polls */
	publish_range(p, 0, 1000);
	drain(s, j);
	uint64_t want[200];
	size_t n = 0;
	for (uint64_t k = 0; k < 1000; k += 10)
		want[n++] = k;
	check_dead_letters(want, n);

	/* 10 more, journaled by the close; then one purged before a new
	 * journaler looks, and 9 more after it: none twice */
	publish_range(p, 1000, 1100);
	drain(s, NULL);
	cr_assert_eq(shmbus_journal_close(j), 0);
	for (uint64_t k = 1000; k < 1100; k += 10)
		want[n++] = k;
	check_dead_letters(want, n);
	publish_range(p, 1100, 1200);
	drain(s, NULL);
	shmbus_dlq_entry_t e[128];
	int got = shmbus_dlq_list(ch, 0, e, 128);
	cr_assert_gt(got, 0);
	uint64_t purged_key = 0;
	for (int i = 0; i < got; i++)
		if (e[i].rec.key == 1150) {
			cr_assert_eq(shmbus_dlq_purge(ch, e[i].id), 1);
			purged_key = 1150;
		}
	cr_assert_eq(purged_key, 1150, "1150 not in the DLQ");
	cr_assert_eq(shmbus_journal_attach(ch, jdir, NULL, &j), 0, "%s",
		     shmbus_errmsg());
	drain(s, j);
	for (uint64_t k = 1100; k < 1200; k += 10)
		if (k != purged_key)
			want[n++] = k;
	check_dead_letters(want, n);

	/* the records' journal beside it: all 1200, verified */
	cr_expect_eq(shmbus_journal_verify(j), 0, "%s", shmbus_errmsg());
	shmbus_journal_stats_t st;
	shmbus_journal_get_stats(j, &st);
	cr_expect_eq(st.end_seq, 1200);
	cr_assert_eq(shmbus_journal_close(j), 0);
	shmbus_producer_close(p);
	shmbus_sub_close(s, 0);
	shmbus_close(bus);
}

/* A ring of 64 with the stall policy given, and its journaler (polled by
 * the test). */
static shmbus_channel_t *journaled_ring(const char *tag, uint32_t policy,
					shmbus_t **bus, shmbus_journal_t **j)
{
	snprintf(bus_name, sizeof(bus_name), "%s", test_bus(tag));
	cr_assert_eq(shmbus_open(bus_name, NULL, bus), 0);
	shmbus_channel_opts_t o = {.record_size = REC,
				   .capacity = 64,
				   .stall_policy = policy};
	shmbus_channel_t *ch;
	cr_assert_eq(shmbus_channel_open(*bus, "orders", &o, &ch), 0, "%s",
		     shmbus_errmsg());
	cr_assert_eq(shmbus_journal_attach(ch, jdir, NULL, j), 0, "%s",
		     shmbus_errmsg());
	return ch;
}

Test(journaler, evicted_it_goes_on_and_counts_the_gap)
{
	shmbus_t *bus;
	shmbus_journal_t *j;
	shmbus_channel_t *ch = journaled_ring("de", SHMBUS_STALL_EVICT, &bus,
					      &j);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	uint8_t rec[REC];
	/* 10 journaled, then the journaler stalls a ring behind */
	publish_range(p, 0, 10);
	while (shmbus_journal_poll(j, 256) > 0)
		;
	for (uint64_t k = 10; k < 74; k++) {
		jt_fill(rec, k, REC);
		cr_assert_eq(shmbus_try_publish(p, rec, REC, k), 0);
	}
	jt_fill(rec, 74, REC);
	cr_assert_eq(shmbus_try_publish(p, rec, REC, 74), SHMBUS_EAGAIN);
	/* producers do not wait for it past the grace time (the first look
	 * starts its stall clock, the second evicts) */
	cr_assert_eq(shmbus_channel_evict(ch, 0), 0);
	cr_assert_eq(shmbus_channel_evict(ch, 0), 1);
	publish_range(p, 74, 200);
	/* its next poll rejoins at the present (SHMBUS_ELAPPED, once) */
	cr_expect_eq(shmbus_journal_poll(j, 256), SHMBUS_ELAPPED);
	for (uint64_t k = 200; k < 300; k += 50) { /* within a ring */
		publish_range(p, k, k + 50);
		while (shmbus_journal_poll(j, 256) > 0)
			;
	}
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(shmbus_journal_sub(j), &st);
	cr_expect_gt(st.missed, 0);
	/* the journal: 0..9, a gap of exactly `missed`, then on to 299 */
	shmbus_journal_iter_t *it;
	cr_assert_eq(shmbus_journal_iter_open(j, NULL, &it), 0);
	shmbus_journal_entry_t e;
	uint64_t next = 0, gap = 0, count = 0;
	while (shmbus_journal_iter_next(it, &e) == 1) {
		if (e.rec.seq != next)
			gap += e.rec.seq - next;
		cr_expect(jt_same(e.rec.data, e.rec.seq, REC));
		next = e.rec.seq + 1;
		count++;
	}
	shmbus_journal_iter_close(it);
	cr_expect_eq(next, 300);
	cr_expect_eq(gap, st.missed, "gap %llu, missed %llu",
		     (unsigned long long)gap, (unsigned long long)st.missed);
	cr_expect_eq(count + gap, 300);
	cr_expect_geq(count, 110);
	cr_assert_eq(shmbus_journal_close(j), 0);
	shmbus_producer_close(p);
	shmbus_close(bus);
}

/* A spill subscriber's view: every sequence, once, in order. */
struct spill_seen {
	uint64_t next, bad;
};

static int spill_check(const shmbus_record_t *r, void *ctx)
{
	struct spill_seen *v = ctx;
	if (r->seq != v->next || !jt_same(r->data, r->seq, REC))
		v->bad++;
	v->next = r->seq + 1;
	return 0;
}

/* Publish [from, to) in chunks that fit the ring, the journaler keeping
 * up (it gates; the evicted subscriber does not). */
static void publish_journaled(shmbus_producer_t *p, shmbus_journal_t *j,
			      uint64_t from, uint64_t to)
{
	for (uint64_t k = from; k < to; k += 32) {
		while (shmbus_journal_poll(j, 256) > 0)
			;
		publish_range(p, k, k + 32 < to ? k + 32 : to);
	}
	while (shmbus_journal_poll(j, 256) > 0)
		;
}

/* Stall until evicted: the first look starts the clock, the second
 * evicts; the journaler, current, is never a candidate. */
static void stall_and_evict(shmbus_channel_t *ch, shmbus_producer_t *p,
			    uint64_t from)
{
	uint8_t rec[REC];
	uint64_t k = from;
	for (;; k++) {
		jt_fill(rec, k, REC);
		if (shmbus_try_publish(p, rec, REC, k) != 0)
			break;
	}
	cr_assert_gt(k, from, "the ring had room");
	cr_assert_eq(shmbus_channel_evict(ch, 0), 0);
	cr_assert_eq(shmbus_channel_evict(ch, 0), 1, "only the subscriber");
}

Test(journaler, spill_an_evicted_subscriber_reads_what_it_skipped)
{
	shmbus_t *bus;
	shmbus_journal_t *j;
	shmbus_channel_t *ch = journaled_ring("sp", SHMBUS_STALL_SPILL, &bus,
					      &j);
	struct spill_seen v = {0};
	shmbus_sub_opts_t so = {.name = "slow"};
	shmbus_sub_t *s;
	/* a spill channel needs the journal's directory */
	cr_expect_eq(shmbus_subscribe(ch, spill_check, &v, &so, &s),
		     SHMBUS_EINVAL);
	so.journal = jdir;
	cr_assert_eq(shmbus_subscribe(ch, spill_check, &v, &so, &s), 0, "%s",
		     shmbus_errmsg());
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);

	/* evicted while polling: the next poll reads the skipped records
	 * from the journal, then the ring */
	publish_journaled(p, j, 0, 10);
	while (shmbus_poll(s, 256) > 0)
		;
	while (shmbus_journal_poll(j, 256) > 0)
		;
	stall_and_evict(ch, p, 10);
	publish_journaled(p, j, 74, 200);
	int rc;
	while ((rc = shmbus_poll(s, 256)) > 0 || shmbus_sub_replaying(s))
		cr_assert_geq(rc, 0, "%s", shmbus_errmsg());
	publish_journaled(p, j, 200, 250);
	while (shmbus_poll(s, 256) > 0)
		;
	cr_expect_eq(v.bad, 0);
	cr_expect_eq(v.next, 250);
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(s, &st);
	cr_expect_eq(st.missed, 0);

	/* evicted while away (closed): the next subscribe spills */
	shmbus_sub_close(s, 0);
	stall_and_evict(ch, p, 250);
	publish_journaled(p, j, 314, 400);
	cr_assert_eq(shmbus_subscribe(ch, spill_check, &v, &so, &s), 0, "%s",
		     shmbus_errmsg());
	cr_expect(shmbus_sub_replaying(s));
	while ((rc = shmbus_poll(s, 256)) > 0 || shmbus_sub_replaying(s))
		cr_assert_geq(rc, 0, "%s", shmbus_errmsg());
	cr_expect_eq(v.bad, 0);
	cr_expect_eq(v.next, 400);
	shmbus_sub_get_stats(s, &st);
	cr_expect_eq(st.missed, 0);
	shmbus_sub_close(s, 0);
	cr_assert_eq(shmbus_journal_close(j), 0);
	shmbus_producer_close(p);
	shmbus_close(bus);
}

/* Mid-batch: a subscriber evicted while its handler holds a batch gets
 * the rest of that batch from the journal (each record it was handed was
 * checked whole first, so none comes twice); away: a replay-then-live
 * start of a name evicted while away replaces the spill it found (nothing
 * leaks, nothing is skipped). */
static shmbus_channel_t *mid_ch;
static uint32_t mid_seen[512];
static bool mid_evict;

static int mid_handler(const shmbus_record_t *r, void *ctx)
{
	(void)ctx;
	if (r->seq < 512)
		mid_seen[r->seq]++;
	if (mid_evict) {
		mid_evict = false;
		shmbus_channel_evict(mid_ch, 0);
		cr_expect_eq(shmbus_channel_evict(mid_ch, 0), 1);
	}
	return 0;
}

static void poll_until_live(shmbus_sub_t *s)
{
	int rc;
	while ((rc = shmbus_poll(s, 256)) > 0 || shmbus_sub_replaying(s))
		cr_assert_geq(rc, 0, "%s", shmbus_errmsg());
}

Test(journaler, spill_mid_batch_and_a_replay_start_while_evicted)
{
	shmbus_t *bus;
	shmbus_journal_t *j;
	mid_ch = journaled_ring("sm", SHMBUS_STALL_SPILL, &bus, &j);
	shmbus_sub_opts_t so = {.name = "slow", .journal = jdir};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(mid_ch, mid_handler, NULL, &so, &s), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(mid_ch, NULL, &p), 0);
	publish_journaled(p, j, 0, 64); /* the ring full behind "slow" */
	mid_evict = true;
	poll_until_live(s);
	for (uint32_t i = 0; i < 64; i++)
		cr_expect_eq(mid_seen[i], 1, "seq %u: %u times", i,
			     mid_seen[i]);

	shmbus_sub_close(s, 0);
	stall_and_evict(mid_ch, p, 64);
	publish_journaled(p, j, 128, 200);
	memset(mid_seen, 0, sizeof(mid_seen));
	shmbus_journal_query_t q = {.from_seq = 0};
	cr_assert_eq(shmbus_journal_subscribe(mid_ch, jdir, &q, mid_handler,
					      NULL, &so, &s),
		     0, "%s", shmbus_errmsg());
	poll_until_live(s);
	for (uint32_t i = 0; i < 200; i++)
		cr_expect_eq(mid_seen[i], 1, "seq %u: %u times", i, mid_seen[i]);
	shmbus_sub_close(s, 0);
	shmbus_producer_close(p);
	cr_assert_eq(shmbus_journal_close(j), 0);
	shmbus_close(bus);
}

/* Review 7: after a lost newest segment, a writer that accepts the loss
 * takes the control file's end (not CRC-protected): one past every
 * sequence the bus has claimed is refused by the journaler, which would
 * otherwise drop every record below it as journaled. (Before: attached,
 * and the records published after it never reached the journal.) */
Test(journaler, an_end_past_the_bus_is_refused)
{
	snprintf(bus_name, sizeof(bus_name), "%s", test_bus("end"));
	shmbus_t *bus;
	shmbus_channel_t *ch =
		test_channel(bus_name, &bus, "orders", 1024, 4096, 0);
	shmbus_journal_opts_t jo = {.segment_size = 64 * 1024,
				    .flags = SHMBUS_JOURNAL_ACCEPT_LOSS};
	shmbus_journal_t *j = attach(ch, jdir, &jo);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	static uint8_t rec[1000];
	for (uint64_t k = 0; k < 200; k++)
		cr_assert_eq(shmbus_publish(p, rec, sizeof(rec), k), 0);
	while (shmbus_journal_poll(j, 256) > 0)
		;
	cr_assert_eq(shmbus_journal_close(j), 0);
	uint64_t firsts[16], garbage = 1ull << 40;
	uint32_t n = jt_seg_firsts(jdir, firsts, 16);
	cr_assert_geq(n, 2);
	char p1[600];
	snprintf(p1, sizeof(p1), "%s/%020llu.seg", jdir,
		 (unsigned long long)firsts[n - 1]);
	cr_assert_eq(unlink(p1), 0);
	snprintf(p1, sizeof(p1), "%s/journal.ctl", jdir);
	jt_poke(p1, 144 /* end_seq */, &garbage, 8);
	shmbus_journal_attach_opts_t ao = {.journal = &jo};
	cr_assert_eq(shmbus_journal_attach(ch, jdir, &ao, &j), SHMBUS_ECORRUPT,
		     "attached");
	cr_assert(strstr(shmbus_errmsg(), "is past every sequence"), "%s",
		  shmbus_errmsg());
	shmbus_producer_close(p);
	shmbus_close(bus);
}

/* A channel without timestamps: the journaler stamps each batch with the
 * time it journals it, so that replay by time works (by journal time). */
/* A channel of 64 REC-byte records with `flags`, its journaler in jdir
 * and a producer. */
static shmbus_t *journaled_channel(const char *tag, uint32_t flags,
				   shmbus_journal_t **j, shmbus_producer_t **p)
{
	snprintf(bus_name, sizeof(bus_name), "%s", test_bus(tag));
	shmbus_t *bus;
	cr_assert_eq(shmbus_open(bus_name, NULL, &bus), 0);
	shmbus_channel_opts_t o = {.record_size = REC,
				   .capacity = 64,
				   .flags = flags};
	shmbus_channel_t *ch;
	cr_assert_eq(shmbus_channel_open(bus, "orders", &o, &ch), 0, "%s",
		     shmbus_errmsg());
	cr_assert_eq(shmbus_journal_attach(ch, jdir, NULL, j), 0, "%s",
		     shmbus_errmsg());
	cr_assert_eq(shmbus_producer_open(ch, NULL, p), 0);
	return bus;
}

Test(journaler, records_without_timestamps_get_the_journal_time)
{
	shmbus_journal_t *j;
	shmbus_producer_t *p;
	shmbus_t *bus = journaled_channel("nts", SHMBUS_CH_NO_TIMESTAMP, &j,
					  &p);
	uint64_t t0 = shmbus_clock_ns(bus);
	publish_range(p, 0, 10);
	while (shmbus_journal_poll(j, 256) > 0)
		;
	uint64_t t1 = shmbus_clock_ns(bus);
	publish_range(p, 10, 20);
	while (shmbus_journal_poll(j, 256) > 0)
		;
	shmbus_journal_iter_t *it;
	cr_assert_eq(shmbus_journal_iter_open(j, NULL, &it), 0);
	shmbus_journal_entry_t e;
	uint64_t n = 0;
	while (shmbus_journal_iter_next(it, &e) == 1) {
		cr_expect(e.rec.timestamp >= t0, "seq %lu: time %lu",
			  e.rec.seq, e.rec.timestamp);
		cr_expect(e.rec.seq < 10 ? e.rec.timestamp <= t1
					 : e.rec.timestamp >= t1,
			  "seq %lu journaled at %lu, the batches split at %lu",
			  e.rec.seq, e.rec.timestamp, t1);
		n++;
	}
	shmbus_journal_iter_close(it);
	cr_expect_eq(n, 20);
	/* by time: from t1, the second batch alone */
	shmbus_journal_query_t q = {.flags = SHMBUS_JOURNAL_BY_TIME,
				    .from_time = t1};
	cr_assert_eq(shmbus_journal_iter_open(j, &q, &it), 0, "%s",
		     shmbus_errmsg());
	cr_assert_eq(shmbus_journal_iter_next(it, &e), 1);
	cr_expect_eq(e.rec.seq, 10);
	shmbus_journal_iter_close(it);
	cr_assert_eq(shmbus_journal_close(j), 0);
	shmbus_producer_close(p);
	shmbus_close(bus);
}

/* Group commit: under EVERY_N with sync_every 1 the journaler syncs once
 * per batch, at its end, before its cursor moves (what a producer of a
 * synchronous channel waits for), not once per record: a batch of 64
 * records is one sync, and every record of it is synced when the poll
 * returns. A producer thread of a synchronous channel then finds its
 * record synced when its commit returns. */
struct sync_pub {
	shmbus_channel_t *ch;
	const char *jdir;
	uint64_t n, unsynced; /* commits that returned before the sync */
};

static void *sync_publisher(void *arg)
{
	struct sync_pub *sp = arg;
	shmbus_producer_t *p;
	CHECK_OK(shmbus_producer_open(sp->ch, NULL, &p));
	shmbus_journal_t *ro = jt_open_ro(sp->jdir);
	uint8_t rec[REC];
	for (uint64_t k = 0; k < sp->n; k++) {
		shmbus_claim_t c;
		CHECK_OK(shmbus_claim(p, 4, &c));
		for (uint32_t i = 0; i < 4; i++) {
			jt_fill(rec, 4 * k + i, REC);
			memcpy(shmbus_claim_payload(p, &c, i), rec, REC);
			CHECK_OK(shmbus_claim_set(p, &c, i, REC, 4 * k + i));
		}
		CHECK_OK(shmbus_commit(p, &c));
		if (shmbus_journal_synced(ro) < c.seq + 4)
			sp->unsynced++;
	}
	shmbus_journal_close(ro);
	shmbus_producer_close(p);
	return NULL;
}

Test(journaler, every_1_syncs_once_a_batch_before_the_cursor_moves)
{
	snprintf(bus_name, sizeof(bus_name), "%s", test_bus("grp"));
	shmbus_t *bus;
	shmbus_channel_t *ch =
		test_channel(bus_name, &bus, "orders", REC, 256, 0);
	shmbus_journal_opts_t jo = {.sync = SHMBUS_JOURNAL_SYNC_EVERY_N,
				    .sync_every = 1};
	shmbus_journal_t *j = attach(ch, jdir, &jo);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	publish_range(p, 0, 64);
	shmbus_journal_stats_t st;
	shmbus_journal_get_stats(j, &st);
	uint64_t syncs = st.syncs;
	cr_assert_eq(shmbus_journal_poll(j, 256), 64);
	shmbus_journal_get_stats(j, &st);
	cr_expect_eq(st.syncs - syncs, 1, "syncs for a batch of 64: %llu",
		     (unsigned long long)(st.syncs - syncs));
	cr_expect_eq(shmbus_journal_synced(j), 64);
	cr_expect_eq(shmbus_journal_end(j), 64);
	shmbus_producer_close(p);
	cr_assert_eq(shmbus_journal_close(j), 0);
	shmbus_channel_close(ch);
	/* a synchronous channel: each commit returns with its records
	 * synced, the journaler a thread of its own */
	shmbus_channel_opts_t o = {.record_size = REC,
				   .capacity = 256,
				   .flags = SHMBUS_CH_JOURNAL_SYNC |
					    SHMBUS_CH_MULTI_PRODUCER};
	cr_assert_eq(shmbus_channel_open(bus, "sync", &o, &ch), 0, "%s",
		     shmbus_errmsg());
	char sdir[400];
	snprintf(sdir, sizeof(sdir), "%s/sync", dir);
	j = attach(ch, sdir, &jo);
	cr_assert_eq(shmbus_journal_start(j, -1), 0);
	struct sync_pub sp[2] = {{ch, sdir, 200, 0}, {ch, sdir, 200, 0}};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, sync_publisher, &sp[i]),
			     0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	cr_expect_eq(sp[0].unsynced + sp[1].unsynced, 0,
		     "commits returned before their records were synced");
	shmbus_journal_get_stats(j, &st);
	cr_expect_eq(shmbus_journal_synced(j), 1600);
	cr_expect_leq(st.syncs, 400, "one sync per commit of 4 at most: %llu",
		      (unsigned long long)st.syncs);
	cr_assert_eq(shmbus_journal_close(j), 0);
	shmbus_close(bus);
}

/* A compact channel (no time, key or origin in its slots): the journaler
 * journals every record whole, in order, with key 0, origin = sequence,
 * and the time it journaled it (as without timestamps). */
Test(journaler, a_compact_channel_is_journaled_whole)
{
	shmbus_journal_t *j;
	shmbus_producer_t *p;
	shmbus_t *bus = journaled_channel("jcmp", SHMBUS_CH_COMPACT, &j, &p);
	const uint64_t n = 1000;
	uint64_t t0 = shmbus_clock_ns(bus);
	uint8_t rec[REC];
	for (uint64_t k = 0; k < n; k++) {
		jt_fill(rec, k, REC);
		cr_assert_eq(shmbus_publish(p, rec, REC, 0), 0, "%s",
			     shmbus_errmsg());
		if (k % 50 == 49) /* the ring holds 64: journal as we go */
			while (shmbus_journal_poll(j, 256) > 0)
				;
	}
	while (shmbus_journal_poll(j, 256) > 0)
		;
	uint64_t t1 = shmbus_clock_ns(bus);
	shmbus_journal_iter_t *it;
	cr_assert_eq(shmbus_journal_iter_open(j, NULL, &it), 0);
	shmbus_journal_entry_t e;
	uint64_t next = 0;
	while (shmbus_journal_iter_next(it, &e) == 1) {
		cr_assert_eq(e.rec.seq, next, "journaled %lu, expected %lu",
			     e.rec.seq, next);
		cr_expect_eq(e.rec.len, REC);
		cr_expect(jt_same(e.rec.data, next, REC), "payload of %lu",
			  next);
		cr_expect_eq(e.rec.key, 0);
		cr_expect_eq(e.rec.origin, next);
		cr_expect(e.rec.timestamp >= t0 && e.rec.timestamp <= t1,
			  "seq %lu: time %lu not in [%lu, %lu]", next,
			  e.rec.timestamp, t0, t1);
		next++;
	}
	shmbus_journal_iter_close(it);
	cr_expect_eq(next, n, "journaled %lu of %lu", next, n);
	/* replayed into the ring, records would lose their origin: refused
	 * at the first, nothing published */
	uint64_t count = 0;
	cr_expect_eq(shmbus_journal_republish(j, NULL, p, &count),
		     SHMBUS_EINVAL);
	cr_expect_str_eq(shmbus_errmsg(),
			 "journal republish: sequence 0: channel 'orders' is "
			 "compact (SHMBUS_CH_COMPACT): its records carry no "
			 "origin, so a re-published record would lose its "
			 "identity; nothing published");
	cr_expect_eq(count, 0);
	while (shmbus_journal_poll(j, 256) > 0)
		;
	cr_expect_eq(shmbus_journal_end(j), n, "a refused record was published");
	cr_assert_eq(shmbus_journal_close(j), 0);
	shmbus_producer_close(p);
	shmbus_close(bus);
}
