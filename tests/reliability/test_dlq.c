/*
 * The dead-letter store (dlq.c) on its own, below the retry machinery:
 * put keeps every field, get copies the payload into a buffer it checks,
 * list pages by id, ids are never reused, bounds on lengths, a damaged
 * entry never returned, the full policies with force, and the lock
 * recovered from a holder killed under it. (Records that reach the DLQ
 * through handlers, replay, a corrupt range: test_retry.c.)
 */
#include <criterion/criterion.h>
#include <string.h>

#include "dlq.h"
#include "helpers.h"

/* Dead-letter v (8 bytes) as record seq v, key v + 100. */
static int put(shmbus_channel_t *ch, uint64_t v, bool force)
{
	shmbus_record_t r = {.data = &v, .len = 8, .seq = v,
			     .key = v + 100, .timestamp = 1000 + v,
			     .origin = v, .producer = 2};
	return dlq_put(ch, &r, 3, -7, "why", "sub", 1, force);
}

/* Channel D with a DLQ of cap entries (policy), holding 0..n-1 put. */
static shmbus_channel_t *dlq_channel(const char *tag, shmbus_t **bus,
				     uint32_t cap, uint32_t policy, uint64_t n)
{
	shmbus_channel_opts_t o = {.record_size = 8,
				   .capacity = 16,
				   .dlq_capacity = cap,
				   .dlq_policy = policy};
	shmbus_channel_t *ch;
	cr_assert_eq(shmbus_open(test_bus(tag), NULL, bus), 0);
	cr_assert_eq(shmbus_channel_open(*bus, "D", &o, &ch), 0, "%s",
		     shmbus_errmsg());
	for (uint64_t v = 0; v < n; v++)
		cr_assert_eq(put(ch, v, false), 0);
	return ch;
}

Test(dlq, put_keeps_every_field_and_get_copies_the_payload)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = dlq_channel("df", &bus, 4, 0, 0);
	uint64_t v = 0x1122334455667788ull;
	shmbus_record_t r = {.data = &v, .len = 8, .seq = 41, .key = 9,
			     .timestamp = 777, .origin = 40,
			     .flags = SHMBUS_REC_REPUBLISHED, .producer = 5};
	uint64_t t0 = (uint64_t)time(NULL) * 1000000000ull;
	cr_assert_eq(dlq_put(ch, &r, 3, -7, "value refused", "risk", 2,
			     false),
		     0);
	shmbus_dlq_entry_t e[2];
	cr_assert_eq(shmbus_dlq_list(ch, 0, e, 2), 1);
	cr_expect_eq(e[0].id, 0);
	cr_expect_eq(e[0].error, -7);
	cr_expect_eq(e[0].attempts, 3);
	cr_expect_str_eq(e[0].subscriber, "risk");
	cr_expect_str_eq(e[0].text, "value refused");
	cr_expect_geq(e[0].failed_realtime_ns + 1000000000ull, t0);
	cr_expect_null(e[0].rec.data);
	cr_expect_eq(e[0].rec.len, 8);
	cr_expect_eq(e[0].rec.seq, 41);
	cr_expect_eq(e[0].rec.key, 9);
	cr_expect_eq(e[0].rec.timestamp, 777);
	cr_expect_eq(e[0].rec.origin, 40);
	cr_expect_eq(e[0].rec.flags, SHMBUS_REC_REPUBLISHED);
	cr_expect_eq(e[0].rec.producer, 5);
	cr_expect_eq(e[0].rec.attempt, 3);

	uint64_t got = 0;
	shmbus_dlq_entry_t one;
	cr_assert_eq(shmbus_dlq_get(ch, 0, &one, &got, sizeof(got)), 0);
	cr_expect_eq(got, v);
	cr_expect_eq(one.rec.data, &got);
	cr_expect_eq(one.rec.seq, 41);
	/* a buffer too small: refused, nothing written past it */
	uint32_t small[2] = {0, 0xabcdabcd};
	cr_expect_eq(shmbus_dlq_get(ch, 0, &one, small, 4), SHMBUS_EINVAL);
	cr_expect(strstr(shmbus_errmsg(), "has 8 bytes, buffer 4") != NULL,
		  "%s", shmbus_errmsg());
	cr_expect_eq(small[1], 0xabcdabcd);
	/* long texts and names are cut, never overrun */
	char longtext[300];
	memset(longtext, 'x', sizeof(longtext) - 1);
	longtext[sizeof(longtext) - 1] = '\0';
	cr_assert_eq(dlq_put(ch, &r, 1, -1, longtext, longtext, 2, false), 0);
	cr_assert_eq(shmbus_dlq_list(ch, 1, e, 2), 1);
	cr_expect_eq(strlen(e[0].text), sizeof(e[0].text) - 1);
	cr_expect_lt(strlen(e[0].subscriber), sizeof(e[0].subscriber));
	shmbus_dlq_stats_t st;
	cr_assert_eq(shmbus_dlq_get_stats(ch, &st), 0);
	cr_expect_eq(st.count, 2);
	cr_expect_eq(st.head, 2);
	cr_expect_eq(st.capacity, 4);
	shmbus_close(bus);
}

Test(dlq, list_pages_by_id_and_ids_are_never_reused)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = dlq_channel("dp", &bus, 8, 0, 5);
	shmbus_dlq_entry_t e[8];
	/* pages of two, by the id after the last seen */
	uint64_t from = 0, seen = 0;
	for (int n; (n = shmbus_dlq_list(ch, from, e, 2)) > 0;) {
		for (int i = 0; i < n; i++, seen++) {
			cr_expect_eq(e[i].id, seen);
			cr_expect_eq(e[i].rec.seq, seen);
			cr_expect_eq(e[i].rec.key, seen + 100);
		}
		from = e[n - 1].id + 1;
	}
	cr_expect_eq(seen, 5);
	cr_expect_eq(shmbus_dlq_list(ch, 0, NULL, 0), 0);
	/* a hole in the middle is skipped */
	cr_expect_eq(shmbus_dlq_purge(ch, 2), 1);
	cr_assert_eq(shmbus_dlq_list(ch, 0, e, 8), 4);
	cr_expect_eq(e[2].id, 3);
	/* purged all, the next id goes on from the last */
	cr_expect_eq(shmbus_dlq_purge(ch, SHMBUS_DLQ_ALL), 4);
	cr_assert_eq(put(ch, 9, false), 0);
	cr_assert_eq(shmbus_dlq_list(ch, 0, e, 8), 1);
	cr_expect_eq(e[0].id, 5);
	uint64_t buf;
	shmbus_dlq_entry_t one;
	cr_expect_eq(shmbus_dlq_get(ch, 0, &one, &buf, 8), SHMBUS_ENOENT);
	cr_expect(strstr(shmbus_errmsg(), "no DLQ entry 0") != NULL, "%s",
		  shmbus_errmsg());
	/* ids outside [tail, head), either side */
	cr_expect_eq(shmbus_dlq_get(ch, 6, &one, &buf, 8), SHMBUS_ENOENT);
	cr_expect_eq(shmbus_dlq_get(ch, UINT64_MAX - 1, &one, &buf, 8),
		     SHMBUS_ENOENT);
	cr_expect_eq(shmbus_dlq_purge(ch, 6), SHMBUS_ENOENT);
	shmbus_close(bus);
}

/* Lengths are bounded by the channel's record size: a longer record is
 * kept cut, and a damaged length never reads or copies past it. */
Test(dlq, lengths_are_bounded_by_the_record_size)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = dlq_channel("dl", &bus, 4, 0, 0);
	uint64_t big[4] = {1, 2, 3, 4};
	shmbus_record_t r = {.data = big, .len = sizeof(big), .seq = 1};
	cr_assert_eq(dlq_put(ch, &r, 1, -1, NULL, NULL, 0, false), 0);
	uint64_t buf[2] = {0, 0x5555};
	shmbus_dlq_entry_t one;
	cr_assert_eq(shmbus_dlq_get(ch, 0, &one, buf, 8), 0);
	cr_expect_eq(one.rec.len, 8);
	cr_expect_eq(buf[0], 1);
	cr_expect_eq(buf[1], 0x5555);
	cr_expect_str_eq(one.text, "");
	cr_expect_str_eq(one.subscriber, "");
	/* another process writes a length of 16 MiB */
	dlq_at(ch, 0)->len_flags = SLOT_LEN_MASK;
	cr_assert_eq(shmbus_dlq_get(ch, 0, &one, buf, 8), 0);
	cr_expect_eq(one.rec.len, 8);
	cr_expect_eq(buf[1], 0x5555);
	shmbus_close(bus);
}

/* An entry another process damaged (its id or state not what the ring
 * says) is not returned as a record: get says there is no such entry,
 * list and the count leave it out, and the entries beside it stay. */
Test(dlq, a_damaged_entry_is_never_returned)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = dlq_channel("dc", &bus, 4, 0, 3);
	dlq_at(ch, 1)->id = 77;
	dlq_at(ch, 2)->state = 0x5a5a;
	uint64_t buf;
	shmbus_dlq_entry_t one, e[4];
	for (uint64_t id = 1; id < 3; id++) {
		cr_expect_eq(shmbus_dlq_get(ch, id, &one, &buf, 8),
			     SHMBUS_ENOENT, "entry %llu",
			     (unsigned long long)id);
		char want[64];
		snprintf(want, sizeof(want), "channel 'D': no DLQ entry %llu",
			 (unsigned long long)id);
		cr_expect(strstr(shmbus_errmsg(), want) != NULL, "%s",
			  shmbus_errmsg());
	}
	cr_expect_eq(shmbus_dlq_get(ch, 77, &one, &buf, 8), SHMBUS_ENOENT);
	cr_assert_eq(shmbus_dlq_list(ch, 0, e, 4), 1);
	cr_expect_eq(e[0].id, 0);
	shmbus_dlq_stats_t st;
	cr_assert_eq(shmbus_dlq_get_stats(ch, &st), 0);
	cr_expect_eq(st.count, 1);
	/* a put still goes in after them */
	cr_assert_eq(put(ch, 3, false), 0);
	cr_expect_eq(shmbus_dlq_list(ch, 0, e, 4), 2);
	shmbus_close(bus);
}

/* Refuse: a full DLQ refuses a put (counted) unless forced; forced, the
 * oldest entry gives way (counted as dropped). Drop-oldest drops. */
Test(dlq, a_full_dlq_refuses_or_drops_and_force_always_puts)
{
	shmbus_t *bus;
	shmbus_channel_t *ch =
		dlq_channel("dr", &bus, 2, SHMBUS_DLQ_REFUSE, 2);
	cr_expect_eq(put(ch, 2, false), SHMBUS_EFULL);
	cr_expect_eq(put(ch, 3, true), 0);
	shmbus_dlq_stats_t st;
	cr_assert_eq(shmbus_dlq_get_stats(ch, &st), 0);
	cr_expect_eq(st.refused, 1);
	cr_expect_eq(st.dropped, 1);
	cr_expect_eq(st.count, 2);
	cr_expect_eq(st.policy, SHMBUS_DLQ_REFUSE);
	shmbus_dlq_entry_t e[4];
	cr_assert_eq(shmbus_dlq_list(ch, 0, e, 4), 2);
	cr_expect_eq(e[0].rec.seq, 1);
	cr_expect_eq(e[1].rec.seq, 3);
	cr_expect_eq(e[1].id, 2);
	shmbus_close(bus);

	ch = dlq_channel("do", &bus, 2, 0, 5);
	cr_assert_eq(shmbus_dlq_get_stats(ch, &st), 0);
	cr_expect_eq(st.dropped, 3);
	cr_expect_eq(st.refused, 0);
	cr_assert_eq(shmbus_dlq_list(ch, 0, e, 4), 2);
	cr_expect_eq(e[0].rec.seq, 3);
	cr_expect_eq(e[1].rec.seq, 4);
	shmbus_close(bus);
}

Test(dlq, bad_arguments_are_refused)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = dlq_channel("da", &bus, 2, 0, 0);
	shmbus_dlq_stats_t st;
	shmbus_dlq_entry_t e;
	uint64_t buf;
	cr_expect_eq(shmbus_dlq_get_stats(NULL, &st), SHMBUS_EINVAL);
	cr_expect_eq(shmbus_dlq_get_stats(ch, NULL), SHMBUS_EINVAL);
	cr_expect_eq(shmbus_dlq_list(NULL, 0, &e, 1), SHMBUS_EINVAL);
	cr_expect_eq(shmbus_dlq_list(ch, 0, NULL, 1), SHMBUS_EINVAL);
	cr_expect_eq(shmbus_dlq_get(ch, 0, NULL, &buf, 8), SHMBUS_EINVAL);
	cr_expect_eq(shmbus_dlq_get(ch, 0, &e, NULL, 8), SHMBUS_EINVAL);
	cr_expect_eq(shmbus_dlq_purge(NULL, 0), SHMBUS_EINVAL);
	shmbus_close(bus);
}

/* dlq.c: a process that dies under the DLQ's lock leaves it usable (the
 * robust mutex is recovered) and nothing half-visible. */
Test(dlq, a_holder_killed_under_the_lock_leaves_it_usable)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = dlq_channel("dk", &bus, 4, 0, 1);
	int ready[2];
	cr_assert_eq(pipe(ready), 0);
	pid_t pid = test_fork();
	if (pid == 0) {
		shmbus_t *b;
		shmbus_channel_t *c;
		CHECK_OK(shmbus_open(bus->name, NULL, &b));
		CHECK_OK(shmbus_channel_open(b, "D", NULL, &c));
		CHECK_OK(pthread_mutex_lock(&c->dlq->lock));
		/* half an entry, as a put killed mid-way leaves it */
		memset(dlq_at(c, 1), 0x77, sizeof(struct dlq_entry));
		(void)!write(ready[1], "r", 1);
		pause();
	}
	char x;
	cr_assert_eq(read(ready[0], &x, 1), 1);
	kill(pid, SIGKILL);
	cr_assert_eq(child_status(pid), 128 + SIGKILL);
	shmbus_dlq_entry_t e[4];
	cr_assert_eq(shmbus_dlq_list(ch, 0, e, 4), 1, "%s", shmbus_errmsg());
	cr_assert_eq(put(ch, 1, false), 0, "%s", shmbus_errmsg());
	cr_assert_eq(shmbus_dlq_list(ch, 0, e, 4), 2);
	cr_expect_eq(e[1].id, 1);
	cr_expect_eq(e[1].rec.seq, 1);
	shmbus_close(bus);
}
