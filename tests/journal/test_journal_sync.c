/*
 * The synchronous journal (SHMBUS_CH_JOURNAL_SYNC): a commit returns once
 * the journal holds the record. Producer processes check exactly that
 * after every commit, through a read-only journal handle of their own;
 * then the journaler is SIGKILLed and restarted many times under them,
 * and every record whose commit returned must be in the journal once, in
 * sequence order. Also: no journaler, a stopped journaler (time-out), a
 * journaler that leaves cleanly.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdatomic.h>

#include "helpers.h"
#include "internal.h"
#include "jhelpers.h"

#define REC 64u
#define CAP 256u
#define PRODUCERS 2

struct shared {
	atomic_int stop_journaler;
	atomic_int producers_done;
	/* per producer: records whose commit returned 0 */
	_Atomic uint64_t acked[PRODUCERS];
	atomic_int bad; /* a commit returned before its record was journaled */
	uint64_t bad_seq;
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

TestSuite(journal_sync, .init = setup, .fini = teardown, .timeout = 240);

static shmbus_channel_t *open_channel(const char *tag, shmbus_t **bus)
{
	snprintf(bus_name, sizeof(bus_name), "%s", test_bus(tag));
	return test_channel(bus_name, bus, "orders", REC, CAP,
			    SHMBUS_CH_MULTI_PRODUCER | SHMBUS_CH_JOURNAL_SYNC);
}

static shmbus_channel_t *child_channel(shmbus_t **bus)
{
	return jt_child_channel(bus_name, "orders", bus);
}

static pid_t start_journaler(void)
{
	return jt_start_journaler(bus_name, "orders", jdir,
				  &sh->stop_journaler, NULL);
}

/* Wait until the channel has a journaler (its attach is done). */
static void wait_attached(shmbus_channel_t *ch)
{
	shmbus_channel_info_t info;
	for (int i = 0; i < 20000; i++) {
		cr_assert_eq(shmbus_channel_get_info(ch, &info), 0);
		if (info.journal_attached)
			return;
		usleep(500);
	}
	cr_assert_fail("the journaler did not attach");
}

/* A producer process: n records, each checked in the journal the moment
 * its commit returns (a read-only handle: one acquire load of the end). */
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
	shmbus_journal_t *j = jt_open_ro(jdir);
	if (j == NULL) {
		fprintf(stderr, "producer %u: %s\n", id,
			shmbus_errmsg());
		_exit(90);
	}
	for (uint64_t i = 0; i < n; i++) {
		shmbus_claim_t c;
		CHECK_OK(shmbus_claim(p, 1, &c));
		uint8_t *d = shmbus_claim_payload(p, &c, 0);
		uint64_t key = i * PRODUCERS + id;
		jt_fill(d, key, REC);
		CHECK_OK(shmbus_claim_set(p, &c, 0, REC, key));
		CHECK_OK(shmbus_commit(p, &c));
		if (shmbus_journal_end(j) <= c.seq &&
		    atomic_fetch_add(&sh->bad, 1) == 0)
			sh->bad_seq = c.seq;
		atomic_store(&sh->acked[id], i + 1);
	}
	shmbus_journal_close(j);
	shmbus_producer_close(p);
	shmbus_close(bus);
	atomic_fetch_add(&sh->producers_done, 1);
	_exit(0);
}

/* Every acknowledged record in the journal, once, in sequence order. */
static void check_journal(uint64_t per_producer)
{
	shmbus_journal_t *j = jt_open_ro(jdir);
	cr_assert_not_null(j, "%s", shmbus_errmsg());
	cr_expect_eq(shmbus_journal_verify(j), 0, "%s", shmbus_errmsg());
	shmbus_journal_iter_t *it;
	cr_assert_eq(shmbus_journal_iter_open(j, NULL, &it), 0);
	uint64_t total = per_producer * PRODUCERS, n = 0, next_seq = 0;
	uint8_t *seen = calloc(total, 1);
	shmbus_journal_entry_t e;
	int rc;
	while ((rc = shmbus_journal_iter_next(it, &e)) == 1) {
		QUIET(e.rec.seq == next_seq, "seq %llu, expected %llu",
		      (unsigned long long)e.rec.seq,
		      (unsigned long long)next_seq);
		QUIET(e.rec.key < total && !seen[e.rec.key],
		      "key %llu twice or out of range",
		      (unsigned long long)e.rec.key);
		QUIET(e.rec.len == REC && jt_same(e.rec.data, e.rec.key, REC),
		      "payload of seq %llu", (unsigned long long)e.rec.seq);
		seen[e.rec.key] = 1;
		next_seq++;
		n++;
	}
	cr_expect_eq(rc, 0);
	for (uint32_t id = 0; id < PRODUCERS; id++)
		for (uint64_t i = 0; i < atomic_load(&sh->acked[id]); i++)
			QUIET(seen[i * PRODUCERS + id],
			      "producer %u's record %llu was acknowledged and "
			      "is not in the journal",
			      id, (unsigned long long)i);
	cr_expect_eq(n, total);
	free(seen);
	shmbus_journal_iter_close(it);
	shmbus_journal_close(j);
}

/* Producers publish while the journaler runs, or is SIGKILLed and
 * restarted at random moments under them; then the journal is checked. */
static void producers_and_journaler(const char *tag, bool kill_journaler)
{
	uint64_t per = scaled(20000);
	shmbus_t *bus;
	shmbus_channel_t *ch = open_channel(tag, &bus);
	pid_t jp = start_journaler();
	wait_attached(ch);
	pid_t pp[PRODUCERS];
	for (uint32_t i = 0; i < PRODUCERS; i++)
		pp[i] = start_producer(i, per);
	uint64_t seed = shmbus_now_ns();
	srand((unsigned)seed);
	int kills = 0;
	while (kill_journaler && atomic_load(&sh->producers_done) < PRODUCERS) {
		usleep(2000 + (unsigned)(rand() % 20000));
		kill(jp, SIGKILL);
		child_status(jp);
		kills++;
		jp = start_journaler();
	}
	for (uint32_t i = 0; i < PRODUCERS; i++)
		cr_expect_eq(child_status(pp[i]), 0);
	cr_expect_eq(atomic_load(&sh->bad), 0,
		     "a commit returned before seq %llu was journaled",
		     (unsigned long long)sh->bad_seq);
	atomic_store(&sh->stop_journaler, 1);
	cr_expect_eq(child_status(jp), 0);
	if (kill_journaler) {
		cr_log_info("seed %llu: %d journaler kills",
			    (unsigned long long)seed, kills);
		cr_expect_geq(kills, 5);
	}
	check_journal(per);
	shmbus_close(bus);
}

Test(journal_sync, every_commit_is_in_the_journal_when_it_returns)
{
	producers_and_journaler("ss", false);
}

Test(journal_sync, journaler_killed_and_restarted_under_the_producers)
{
	producers_and_journaler("sk", true);
}

Test(journal_sync, refusals_time_outs_and_a_clean_leave)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = open_channel("sr", &bus);
	/* an overwrite channel cannot wait for a journal */
	shmbus_channel_opts_t o = {.record_size = REC,
				   .capacity = CAP,
				   .flags = SHMBUS_CH_OVERWRITE |
					    SHMBUS_CH_JOURNAL_SYNC};
	shmbus_channel_t *bad;
	cr_expect_eq(shmbus_channel_open(bus, "ow", &o, &bad), SHMBUS_EINVAL);
	/* no journaler: nothing is claimed */
	shmbus_producer_opts_t po = {.journal_timeout_ms = 50};
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, &po, &p), 0);
	uint8_t rec[REC] = {1};
	cr_expect_eq(shmbus_publish(p, rec, REC, 1), SHMBUS_ENOENT);
	cr_expect(strstr(shmbus_errmsg(), "no journaler") != NULL, "%s",
		  shmbus_errmsg());
	shmbus_claim_t c;
	cr_expect_eq(shmbus_claim(p, 1, &c), SHMBUS_ENOENT);
	shmbus_channel_info_t info;
	cr_assert_eq(shmbus_channel_get_info(ch, &info), 0);
	cr_expect_eq(info.claimed, 0, "a refused publish claimed a slot");
	/* a journaler that stops answering: the commit times out, and the
	 * record is journaled once it goes on */
	pid_t jp = start_journaler();
	wait_attached(ch);
	cr_expect_eq(shmbus_publish(p, rec, REC, 1), 0);
	kill(jp, SIGSTOP);
	uint64_t t0 = shmbus_now_ns();
	cr_expect_eq(shmbus_publish(p, rec, REC, 2), SHMBUS_ETIMEDOUT);
	cr_expect_geq(shmbus_now_ns() - t0, 50000000ull);
	kill(jp, SIGCONT);
	cr_expect_eq(shmbus_publish(p, rec, REC, 3), 0);
	/* a clean leave: producers are refused again */
	atomic_store(&sh->stop_journaler, 1);
	cr_expect_eq(child_status(jp), 0);
	cr_expect_eq(shmbus_publish(p, rec, REC, 4), SHMBUS_ENOENT);
	shmbus_producer_close(p);
	shmbus_journal_t *j = jt_open_ro(jdir);
	cr_assert_not_null(j, "%s", shmbus_errmsg());
	cr_expect_eq(shmbus_journal_end(j), 3, "the three accepted records");
	shmbus_journal_close(j);
	shmbus_close(bus);
}

static int nothing(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	(void)ctx;
	return 0;
}

/* The journaler dies between a claim and its commit; the operator removes
 * its name, as the refusal advises, and another name takes the same row,
 * its cursor at the present. That cursor says nothing of the claim's
 * record: the commit must not be confirmed by it. */
Test(journal_sync, a_row_given_to_another_name_confirms_nothing)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = open_channel("sg", &bus);
	pid_t jp = start_journaler();
	wait_attached(ch);
	kill(jp, SIGKILL);
	cr_assert_eq(child_status(jp), 128 + SIGKILL);
	shmbus_producer_opts_t po = {.journal_timeout_ms = 100};
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, &po, &p), 0);
	shmbus_claim_t c;
	cr_assert_eq(shmbus_claim(p, 1, &c), 0, "%s", shmbus_errmsg());
	uint8_t rec[REC] = {7};
	cr_assert_eq(shmbus_claim_write(p, &c, 0, rec, REC, 1), 0);
	cr_assert_eq(shmbus_unsubscribe(ch, "journal"), 0, "%s",
		     shmbus_errmsg());
	shmbus_sub_opts_t so = {.name = "bystander"};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, nothing, NULL, &so, &s), 0);
	cr_assert_str_eq(ch->subs[0].name, "bystander",
			 "the test wants the journaler's old row");
	int rc = shmbus_commit(p, &c);
	cr_expect_eq(rc, SHMBUS_ETIMEDOUT,
		     "commit %d: confirmed by a cursor that never journaled",
		     rc);
	cr_expect(strstr(shmbus_errmsg(), "left") != NULL, "%s",
		  shmbus_errmsg());
	shmbus_journal_t *j = jt_open_ro(jdir);
	cr_assert_not_null(j, "%s", shmbus_errmsg());
	cr_expect_eq(shmbus_journal_end(j), 0, "nothing was journaled");
	shmbus_journal_close(j);
	shmbus_close(bus);
}

/* The rules that keep a commit's confirmation true: one journaler per
 * sync channel, never evicted; a commit whose journaler left does not
 * wait forever; a replay-then-live start needs a running journaler. */
Test(journal_sync, one_journaler_never_evicted_and_leaving_is_said)
{
	snprintf(bus_name, sizeof(bus_name), "%s", test_bus("sj"));
	shmbus_t *bus;
	cr_assert_eq(shmbus_open(bus_name, NULL, &bus), 0);
	shmbus_channel_opts_t o = {.record_size = REC,
				   .capacity = 4,
				   .flags = SHMBUS_CH_JOURNAL_SYNC,
				   .stall_policy = SHMBUS_STALL_EVICT};
	shmbus_channel_t *ch;
	cr_assert_eq(shmbus_channel_open(bus, "orders", &o, &ch), 0, "%s",
		     shmbus_errmsg());
	shmbus_journal_t *j, *j2;
	cr_assert_eq(shmbus_journal_attach(ch, jdir, NULL, &j), 0, "%s",
		     shmbus_errmsg());
	/* a second journaler (another directory, another name) */
	char other[320];
	snprintf(other, sizeof(other), "%s/other", dir);
	shmbus_journal_attach_opts_t ao = {.name = "journal2"};
	cr_expect_eq(shmbus_journal_attach(ch, other, &ao, &j2), SHMBUS_EBUSY);
	cr_expect(strstr(shmbus_errmsg(), "'journal'") != NULL, "%s",
		  shmbus_errmsg());
	shmbus_sub_info_t info[4];
	cr_expect_eq(shmbus_sub_list(ch, info, 4), 1, "no name left behind");

	/* a stalled journaler is not evicted: its cursor would jump over
	 * records that producers wait to see journaled */
	shmbus_producer_opts_t po = {.journal_timeout_ms = 10};
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, &po, &p), 0);
	uint8_t rec[REC] = {0};
	shmbus_claim_t c;
	cr_assert_eq(shmbus_claim(p, 4, &c), 0);
	for (uint32_t i = 0; i < 4; i++)
		cr_assert_eq(shmbus_claim_set(p, &c, i, REC, i), 0);
	cr_expect_eq(shmbus_commit(p, &c), SHMBUS_ETIMEDOUT);
	cr_expect_eq(shmbus_channel_evict(ch, 0), 0);
	cr_expect_eq(shmbus_channel_evict(ch, 0), 0, "the journaler evicted");
	while (shmbus_journal_poll(j, 16) > 0)
		;
	cr_expect_eq(shmbus_journal_end(j), 4);

	/* claimed, then the journaler leaves before the commit: the
	 * commit says so after a bounded wait instead of waiting forever
	 * (journal_timeout_ms 0) */
	shmbus_producer_close(p);
	po.journal_timeout_ms = 0;
	cr_assert_eq(shmbus_producer_open(ch, &po, &p), 0);
	cr_assert_eq(shmbus_claim(p, 1, &c), 0);
	cr_assert_eq(shmbus_claim_set(p, &c, 0, REC, 9), 0);
	memcpy(shmbus_claim_payload(p, &c, 0), rec, REC);
	cr_assert_eq(shmbus_journal_close(j), 0); /* drains, up to 1 s */
	uint64_t t0 = shmbus_now_ns();
	cr_expect_eq(shmbus_commit(p, &c), SHMBUS_ETIMEDOUT);
	cr_expect(strstr(shmbus_errmsg(), "left") != NULL, "%s",
		  shmbus_errmsg());
	cr_expect_lt(shmbus_now_ns() - t0, 10000000000ull);
	shmbus_producer_close(p);

	/* its name is there, nobody runs it: a replay-then-live start
	 * would never switch, and is refused */
	shmbus_sub_opts_t so = {.name = "late"};
	shmbus_sub_t *s;
	cr_expect_eq(shmbus_journal_subscribe(ch, jdir, NULL, nothing, NULL,
					      &so, &s),
		     SHMBUS_ENOENT);
	cr_expect(strstr(shmbus_errmsg(), "not running") != NULL, "%s",
		  shmbus_errmsg());
	shmbus_close(bus);
}
