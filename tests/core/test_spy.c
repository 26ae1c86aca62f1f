/*
 * Spies (spy.c): they write nothing to shared memory, so they never gate;
 * while not lapped they see every record, in order, with its header;
 * lapped, what they read plus what they were told they missed is every
 * record; a tombstone comes back flagged; a claim behind the spy is a
 * corrupt header, not a lap. (Lapping on a quiet ring, torn copies and
 * the 16-bit lap wrap: test_introspect.c.)
 */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"
#include "internal.h"

/* Channel C of 16 8-byte records (flags), records 0..n-1 published by
 * *pp (if not NULL), each holding its sequence, keyed by it plus key. */
static shmbus_channel_t *published(const char *tag, shmbus_t **bus,
				   uint32_t flags, uint64_t n, uint64_t key,
				   shmbus_producer_t **pp)
{
	shmbus_channel_t *ch = test_channel(test_bus(tag), bus, "C", 8, 16,
					    flags);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	if (pp)
		*pp = p;
	for (uint64_t v = 0; v < n; v++)
		cr_assert_eq(shmbus_publish(p, &v, 8, v + key), 0);
	return ch;
}

/* The whole channel object, byte for byte, before and after the spy:
 * nothing written (no cursor, no row, no counter). */
Test(spy, writes_nothing_to_shared_memory)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = published("sw", &bus, SHMBUS_CH_MULTI_PRODUCER,
					 40, 0, NULL);
	size_t n = ch->map.size;
	uint8_t *before = malloc(n);
	cr_assert_not_null(before);
	memcpy(before, ch->map.addr, n);
	shmbus_spy_t *sp;
	cr_assert_eq(shmbus_spy_open(ch, 1, &sp), 0);
	uint64_t buf, missed = 0;
	shmbus_record_t r;
	int got = 0;
	while (shmbus_spy_next(sp, &r, &buf, 8, &missed) == 0)
		got++;
	shmbus_spy_close(sp);
	cr_expect_eq(got, 16);
	size_t diff = n;
	for (size_t i = 0; i < n && diff == n; i++)
		if (before[i] != ((uint8_t *)ch->map.addr)[i])
			diff = i;
	cr_expect_eq(diff, n, "the spy wrote byte %zu of the channel", diff);
	free(before);
	shmbus_close(bus);
}

/* Open at the present: only what comes after; from the start of a ring
 * not yet full: from record 0. Each record with its header. */
Test(spy, starts_at_the_present_or_at_the_oldest_record)
{
	shmbus_t *bus;
	shmbus_producer_t *p;
	shmbus_channel_t *ch = published("so", &bus, 0, 5, 50, &p);
	shmbus_spy_t *now, *start;
	cr_assert_eq(shmbus_spy_open(ch, 0, &now), 0);
	cr_assert_eq(shmbus_spy_open(ch, 1, &start), 0);
	uint64_t buf, missed = 0;
	shmbus_record_t r;
	cr_expect_eq(shmbus_spy_next(now, &r, &buf, 8, &missed),
		     SHMBUS_EAGAIN);
	uint64_t v = 5;
	cr_assert_eq(shmbus_publish(p, &v, 8, 55), 0);
	cr_assert_eq(shmbus_spy_next(now, &r, &buf, 8, &missed), 0);
	cr_expect_eq(r.seq, 5);
	cr_expect_eq(buf, 5);
	for (uint64_t k = 0; k <= 5; k++) {
		cr_assert_eq(shmbus_spy_next(start, &r, &buf, 8, &missed), 0);
		cr_expect_eq(r.seq, k);
		cr_expect_eq(buf, k);
		cr_expect_eq(r.key, k + 50);
		cr_expect_eq(r.len, 8);
		cr_expect_eq(r.origin, k);
		cr_expect_eq(r.channel_id, ch->id);
		cr_expect_eq(r.attempt, 1);
		cr_expect_eq(r.flags & SHMBUS_REC_TOMBSTONE, 0);
	}
	cr_expect_eq(missed, 0);
	shmbus_spy_close(now);
	shmbus_spy_close(start);
	cr_expect_eq(shmbus_spy_open(NULL, 0, &now), SHMBUS_EINVAL);
	cr_expect_eq(shmbus_spy_open(ch, 0, NULL), SHMBUS_EINVAL);
	shmbus_close(bus);
}

/* A producer process at full speed: each record the spy returns is the
 * one after the last, or after the ones it was told it missed; together,
 * every record once. On a back-pressure channel whose subscriber keeps
 * up, nothing is missed at all. */
static int count(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	(*(uint64_t *)ctx)++;
	return 0;
}

static void every_record_or_counted(uint32_t flags, const char *tag,
				    bool gated)
{
	const char *name = test_bus(tag);
	shmbus_t *bus;
	shmbus_channel_t *ch = test_channel(name, &bus, "C", 8, 64, flags);
	const uint64_t n = scaled(200000);
	shmbus_spy_t *sp;
	cr_assert_eq(shmbus_spy_open(ch, 0, &sp), 0);
	/* gated: a subscriber that moves only behind the spy holds the
	 * producer back, so that the spy is never lapped */
	shmbus_sub_t *gate = NULL;
	uint64_t gate_got = 0;
	shmbus_sub_opts_t so = {.name = "gate"};
	if (gated)
		cr_assert_eq(shmbus_subscribe(ch, count, &gate_got, &so,
					      &gate),
			     0);
	pid_t pid = test_fork();
	if (pid == 0) {
		shmbus_producer_t *p = child_producer(name, "C", NULL);
		for (uint64_t v = 0; v < n; v++)
			CHECK_OK(shmbus_publish(p, &v, 8, v));
		_exit(0);
	}
	uint64_t buf, missed = 0, read = 0, next = 0, laps = 0;
	shmbus_record_t r;
	uint64_t end = shmbus_now_ns() + 60000000000ull;
	while (next < n && shmbus_now_ns() < end) {
		uint64_t before = missed;
		int rc = shmbus_spy_next(sp, &r, &buf, 8, &missed);
		if (rc == SHMBUS_ELAPPED) {
			laps++;
			next += missed - before;
			continue;
		}
		if (rc == SHMBUS_EAGAIN)
			continue;
		cr_assert_eq(rc, 0);
		if (r.seq != next || buf != next) /* no assert per record */
			cr_assert_fail("seq %llu holding %llu, wanted %llu",
				       (unsigned long long)r.seq,
				       (unsigned long long)buf,
				       (unsigned long long)next);
		next++;
		read++;
		if (gate)
			cr_assert_eq(shmbus_poll(gate, 1), 1);
	}
	cr_assert_eq(child_status(pid), 0);
	cr_expect_eq(read + missed, n, "read %llu + missed %llu",
		     (unsigned long long)read, (unsigned long long)missed);
	if (gated) {
		cr_expect_eq(missed, 0);
		cr_expect_eq(gate_got, n);
	}
	cr_log_info("spy %s: %llu read, %llu missed in %llu laps", tag,
		    (unsigned long long)read, (unsigned long long)missed,
		    (unsigned long long)laps);
	shmbus_spy_close(sp);
	shmbus_close(bus);
}

Test(spy, sees_every_record_or_counts_it_missed, .timeout = 120)
{
	every_record_or_counted(0, "se", false);
	every_record_or_counted(SHMBUS_CH_MULTI_PRODUCER, "sm", false);
	every_record_or_counted(0, "sg", true);
	every_record_or_counted(SHMBUS_CH_MULTI_PRODUCER, "sn", true);
}

/* A tombstone (a dead producer's hole, filled by the watchdog) comes back
 * flagged, without a payload, and the spy goes on past it. */
Test(spy, returns_a_tombstone_flagged)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = published("st", &bus, 0, 3, 0, NULL);
	struct slot_header *h = slot_at(ch, 1);
	uint32_t part = atomic_load(&h->marker) & MARKER_PART_MASK;
	atomic_store(&h->marker,
		     marker_make(lap_of(ch, 1), SLOT_TOMBSTONE, part));
	shmbus_spy_t *sp;
	cr_assert_eq(shmbus_spy_open(ch, 1, &sp), 0);
	uint64_t buf, missed = 0;
	shmbus_record_t r;
	cr_assert_eq(shmbus_spy_next(sp, &r, &buf, 8, &missed), 0);
	cr_expect_eq(r.seq, 0);
	cr_expect_eq(r.flags & SHMBUS_REC_TOMBSTONE, 0);
	cr_assert_eq(shmbus_spy_next(sp, &r, &buf, 8, &missed), 0);
	cr_expect_eq(r.seq, 1);
	cr_expect_neq(r.flags & SHMBUS_REC_TOMBSTONE, 0);
	cr_expect_eq(r.len, 0);
	cr_assert_eq(shmbus_spy_next(sp, &r, &buf, 8, &missed), 0);
	cr_expect_eq(r.seq, 2);
	cr_expect_eq(buf, 2);
	cr_expect_eq(missed, 0);
	shmbus_spy_close(sp);
	shmbus_close(bus);
}

/* A claim sequence behind the spy no lap explains: SHMBUS_ECORRUPT with
 * the values, every call (tail's twin test has the claim 2^63 ahead). */
Test(spy, a_claim_behind_the_spy_is_corrupt_not_a_lap)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = published("sc", &bus, 0, 10, 0, NULL);
	shmbus_spy_t *sp;
	cr_assert_eq(shmbus_spy_open(ch, 0, &sp), 0); /* next: 10 */
	atomic_store(&ch->hdr->claim, 4);
	uint64_t buf, missed = 0;
	shmbus_record_t r;
	for (int i = 0; i < 2; i++) {
		cr_expect_eq(shmbus_spy_next(sp, &r, &buf, 8, &missed),
			     SHMBUS_ECORRUPT);
		cr_expect(strstr(shmbus_errmsg(), "claim sequence 4 is behind "
						  "the next record to read "
						  "(10)") != NULL,
			  "%s", shmbus_errmsg());
	}
	cr_expect_eq(missed, 0);
	atomic_store(&ch->hdr->claim, 10);
	shmbus_spy_close(sp);
	shmbus_close(bus);
}
