/*
 * Multi-process tests: real processes (fork) through one bus, every sequence
 * checked. Where processes outnumber the two cores they use the yield or
 * block strategies. Counts scale with SHMBUS_TEST_SCALE.
 */
#include <criterion/criterion.h>
#include <sched.h>
#include <sys/mount.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "helpers.h"
#include "internal.h"

struct payload {
	uint64_t producer;
	uint64_t counter;
};

static void sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

static shmbus_channel_t *child_channel(const char *bus_name, const char *ch,
				       shmbus_t **bus)
{
	CHECK_OK(shmbus_open(bus_name, NULL, bus));
	shmbus_channel_t *c;
	CHECK_OK(shmbus_channel_open(*bus, ch, NULL, &c));
	return c;
}

/* Subscriber i ("sub<i>") of a child: yield for the first, block for
 * the others (both paths). */
static shmbus_sub_t *child_subscribe(shmbus_channel_t *c, int i,
				     shmbus_handler_fn fn, void *ctx)
{
	char sub_name[16];
	snprintf(sub_name, sizeof(sub_name), "sub%d", i);
	shmbus_sub_opts_t so = {.name = sub_name,
				.wait = i == 0 ? SHMBUS_WAIT_YIELD
					       : SHMBUS_WAIT_BLOCK};
	shmbus_sub_t *s;
	CHECK_OK(shmbus_subscribe(c, fn, ctx, &so, &s));
	return s;
}

/* ------------------------------------------------ 2 producers x 3 subs */

#define NPROD 2
#define NSUB 3

struct fan_shared {
	_Atomic int joined;
	_Atomic int go;
	uint64_t got[NSUB];
	uint64_t errors[NSUB];
};

struct order_check {
	uint64_t next[NPROD];
	uint64_t got;
	uint64_t errors;
};

static int check_order(const shmbus_record_t *r, void *ctx)
{
	struct order_check *c = ctx;
	struct payload pl;
	memcpy(&pl, r->data, sizeof(pl));
	if (r->len != sizeof(pl) || pl.producer >= NPROD ||
	    pl.counter != c->next[pl.producer]) {
		c->errors++;
	} else {
		c->next[pl.producer]++;
	}
	c->got++;
	return 0;
}

Test(multiproc, two_producers_three_subscribers, .timeout = 300)
{
	const uint64_t per_producer = scaled(1000000);
	const char *name = test_bus("fan");
	shmbus_t *bus;
	(void)test_channel(name, &bus, "Fan", sizeof(struct payload),
					    4096, SHMBUS_CH_MULTI_PRODUCER);
	struct fan_shared *sh = shared_alloc(sizeof(*sh));
	pid_t pids[NPROD + NSUB];

	for (int i = 0; i < NSUB; i++) {
		if ((pids[i] = test_fork()) == 0) {
			shmbus_t *b;
			shmbus_channel_t *c = child_channel(name, "Fan", &b);
			struct order_check chk = {0};
			shmbus_sub_t *s = child_subscribe(c, i, check_order,
							  &chk);
			atomic_fetch_add(&sh->joined, 1);
			while (chk.got < NPROD * per_producer) {
				if (shmbus_poll(s, 512) == 0)
					shmbus_sub_wait(s, 0);
			}
			sh->got[i] = chk.got;
			sh->errors[i] = chk.errors;
			_exit(chk.errors ? 1 : 0);
		}
	}
	while (atomic_load(&sh->joined) < NSUB)
		sleep_us(1000);
	for (int i = 0; i < NPROD; i++) {
		if ((pids[NSUB + i] = test_fork()) == 0) {
			shmbus_t *b;
			shmbus_channel_t *c = child_channel(name, "Fan", &b);
			shmbus_producer_opts_t po = {
				.wait = i == 0 ? SHMBUS_WAIT_BLOCK
					       : SHMBUS_WAIT_YIELD};
			shmbus_producer_t *p;
			CHECK_OK(shmbus_producer_open(c, &po, &p));
			for (uint64_t k = 0; k < per_producer; k++) {
				struct payload pl = {(uint64_t)i, k};
				if (k % 3 == 0) {
					int rc;
					while ((rc = shmbus_try_publish(
							p, &pl, sizeof(pl),
							k)) == SHMBUS_EAGAIN)
						sched_yield();
					CHECK_OK(rc);
				} else {
					CHECK_OK(shmbus_publish(p, &pl,
								sizeof(pl), k));
				}
			}
			_exit(0);
		}
	}
	for (int i = 0; i < NPROD + NSUB; i++)
		cr_expect_eq(child_status(pids[i]), 0, "child %d failed", i);
	for (int i = 0; i < NSUB; i++) {
		cr_expect_eq(sh->got[i], NPROD * per_producer, "sub %d got %lu",
			     i, sh->got[i]);
		cr_expect_eq(sh->errors[i], 0, "sub %d: %lu order errors", i,
			     sh->errors[i]);
	}
	shmbus_close(bus);
	shmbus_unlink(name);
}

/* ------------------------------------- durable resume across SIGKILL */

struct resume_shared {
	_Atomic uint64_t seen_a; /* records handled by the killed process */
	_Atomic int b_done;
	uint64_t b_first;
	uint8_t count_a[];	 /* per sequence, times A handled it */
};

struct resume_ctx {
	struct resume_shared *sh;
	uint8_t *counts;
	uint64_t n;
	uint64_t got;
	uint64_t first;
	int bad;
};

static int count_seq(const shmbus_record_t *r, void *ctx)
{
	struct resume_ctx *c = ctx;
	uint64_t v;
	memcpy(&v, r->data, 8);
	if (v != r->seq || r->seq >= c->n) {
		c->bad++;
		return 0;
	}
	if (c->got++ == 0)
		c->first = r->seq;
	c->counts[r->seq]++;
	return 0;
}

static int count_and_report(const shmbus_record_t *r, void *ctx)
{
	struct resume_ctx *c = ctx;
	count_seq(r, ctx);
	atomic_fetch_add(&c->sh->seen_a, 1);
	return 0;
}

Test(multiproc, durable_resume_after_sigkill, .timeout = 120)
{
	const uint64_t n = scaled(300000);
	const char *name = test_bus("resume");
	shmbus_t *bus;
	shmbus_channel_t *ch = test_channel(name, &bus, "R", 8,
					    1024, 0);
	struct resume_shared *sh = shared_alloc(sizeof(*sh) + n);
	uint8_t *count_b = shared_alloc(n);
	shmbus_sub_opts_t so = {.name = "durable", .wait = SHMBUS_WAIT_YIELD};

	/* A: the subscriber that will be killed. It joins before the
	 * producer starts, so it is owed every record. */
	int pipefd[2];
	cr_assert_eq(pipe(pipefd), 0);
	pid_t a = test_fork();
	if (a == 0) {
		shmbus_t *b;
		shmbus_channel_t *c = child_channel(name, "R", &b);
		struct resume_ctx ctx = {.sh = sh, .counts = sh->count_a, .n = n};
		shmbus_sub_t *s;
		CHECK_OK(shmbus_subscribe(c, count_and_report, &ctx, &so, &s));
		(void)!write(pipefd[1], "j", 1);
		for (;;) {
			if (shmbus_poll(s, 64) == 0)
				sched_yield();
			if (ctx.bad)
				_exit(3);
		}
	}
	char j;
	cr_assert_eq(read(pipefd[0], &j, 1), 1);
	pid_t prod = test_fork();
	if (prod == 0) {
		shmbus_t *b;
		shmbus_channel_t *c = child_channel(name, "R", &b);
		shmbus_producer_opts_t po = {.wait = SHMBUS_WAIT_YIELD};
		shmbus_producer_t *p;
		CHECK_OK(shmbus_producer_open(c, &po, &p));
		for (uint64_t k = 0; k < n; k++)
			CHECK_OK(shmbus_publish(p, &k, 8, 0));
		_exit(0);
	}
	while (atomic_load(&sh->seen_a) < n / 3)
		sleep_us(200);
	kill(a, SIGKILL);
	cr_assert_eq(child_status(a), 128 + SIGKILL);
	uint64_t cursor = atomic_load(&ch->subs[0].cursor);
	cr_expect_str_eq(ch->subs[0].name, "durable");

	/* B: the same name, restarted. */
	pid_t b = test_fork();
	if (b == 0) {
		shmbus_t *bb;
		shmbus_channel_t *c = child_channel(name, "R", &bb);
		struct resume_ctx ctx = {.sh = sh, .counts = count_b, .n = n};
		shmbus_sub_t *s;
		int rc;
		/* the kernel released A's hold on the name at its death */
		CHECK_OK(rc = shmbus_subscribe(c, count_seq, &ctx, &so, &s));
		while (ctx.first + ctx.got < n || ctx.got == 0) {
			if (shmbus_poll(s, 64) == 0)
				sched_yield();
		}
		sh->b_first = ctx.first;
		_exit(ctx.bad ? 3 : 0);
	}
	cr_expect_eq(child_status(prod), 0);
	cr_expect_eq(child_status(b), 0);
	cr_expect_eq(sh->b_first, cursor, "restart began at %lu, cursor %lu",
		     sh->b_first, cursor);
	uint64_t lost = 0, dup_a = 0, redelivered = 0;
	for (uint64_t s = 0; s < n; s++) {
		if (s < cursor) {
			lost += sh->count_a[s] != 1 || count_b[s] != 0;
		} else {
			lost += count_b[s] != 1;
			redelivered += sh->count_a[s];
		}
		dup_a += sh->count_a[s] > 1;
	}
	cr_expect_eq(lost, 0, "%lu sequences lost or duplicated", lost);
	cr_expect_eq(dup_a, 0);
	/* at-least-once: what A handled past its last stored cursor came
	 * again; never more than one batch */
	cr_expect_leq(redelivered, 256);
	shmbus_close(bus);
	shmbus_unlink(name);
}

/* --------------------------------- joining while producers run flat out */

struct join_shared {
	_Atomic int stop;
	_Atomic uint64_t joins;
	_Atomic uint64_t errors;
	_Atomic uint64_t records;
};

struct contig {
	uint64_t got;
	uint64_t next;
	uint64_t errors;
};

static int check_contiguous(const shmbus_record_t *r, void *ctx)
{
	struct contig *c = ctx;
	uint64_t v[5];
	memcpy(v, r->data, sizeof(v));
	/* payload repeats the sequence: a lapped slot shows another value */
	for (int i = 0; i < 5; i++)
		if (v[i] != r->seq)
			c->errors++;
	if (c->got > 0 && r->seq != c->next)
		c->errors++;
	c->next = r->seq + 1;
	c->got++;
	return 0;
}

/* Joins against a producer running flat out, by each claim path: the
 * single producer's (gating scan before the claim store), a
 * multi-producer fetch-add (scan after the claim) and a multi-producer
 * CAS (scan before the claim), the three cases of the join argument in
 * docs/architecture.md. Every record a joiner reads must be whole and in
 * order from where it joined. */
static void join_under_full_speed(const char *tag, uint32_t flags,
				  bool try_claim)
{
	const uint64_t joins = scaled(300);
	const char *name = test_bus(tag);
	shmbus_t *bus;
	(void)test_channel(name, &bus, "J", 40, 64, flags);
	struct join_shared *sh = shared_alloc(sizeof(*sh));

	pid_t prod = test_fork();
	if (prod == 0) {
		shmbus_t *b;
		shmbus_channel_t *c = child_channel(name, "J", &b);
		shmbus_producer_opts_t po = {.wait = SHMBUS_WAIT_YIELD};
		shmbus_producer_t *p;
		CHECK_OK(shmbus_producer_open(c, &po, &p));
		uint64_t k = 0;
		while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
			/* batches of 4, as fast as the gate allows */
			shmbus_claim_t cl;
			if (!try_claim) {
				CHECK_OK(shmbus_claim(p, 4, &cl));
			} else {
				int rc;
				while ((rc = shmbus_try_claim(p, 4, &cl)) ==
				       SHMBUS_EAGAIN)
					sched_yield();
				CHECK_OK(rc);
			}
			for (uint32_t i = 0; i < 4; i++) {
				uint64_t v[5];
				for (int w = 0; w < 5; w++)
					v[w] = cl.seq + i;
				memcpy(shmbus_claim_payload(p, &cl, i), v,
				       sizeof(v));
			}
			CHECK_OK(shmbus_commit(p, &cl));
			k += 4;
		}
		_exit(0);
	}
	pid_t joiner = test_fork();
	if (joiner == 0) {
		shmbus_t *b;
		shmbus_channel_t *c = child_channel(name, "J", &b);
		for (uint64_t j = 0; j < joins; j++) {
			struct contig ct = {0};
			shmbus_sub_opts_t so = {.name = "joiner",
						.wait = SHMBUS_WAIT_YIELD};
			shmbus_sub_t *s;
			CHECK_OK(shmbus_subscribe(c, check_contiguous, &ct, &so,
						  &s));
			uint64_t want = 200 + (j * 7919) % 3000;
			while (ct.got < want) {
				if (shmbus_poll(s, 16) == 0)
					sched_yield();
			}
			CHECK_OK(shmbus_sub_close(s, 0));
			CHECK_OK(shmbus_unsubscribe(c, "joiner"));
			atomic_fetch_add(&sh->errors, ct.errors);
			atomic_fetch_add(&sh->records, ct.got);
			atomic_fetch_add(&sh->joins, 1);
			/* let the producer run ungated for a while */
			for (int y = 0; y < (int)(j % 5); y++)
				sched_yield();
		}
		_exit(0);
	}
	cr_expect_eq(child_status(joiner), 0);
	atomic_store(&sh->stop, 1);
	cr_expect_eq(child_status(prod), 0);
	cr_expect_eq(atomic_load(&sh->joins), joins);
	cr_expect_eq(atomic_load(&sh->errors), 0,
		     "%lu lapped or out-of-order records after a join",
		     atomic_load(&sh->errors));
	cr_expect_gt(atomic_load(&sh->records), joins * 200);
	shmbus_close(bus);
	shmbus_unlink(name);
}

Test(multiproc, join_during_full_speed_publishing, .timeout = 120)
{
	join_under_full_speed("join", 0, false);
}

Test(multiproc, join_during_full_speed_multi_producer_claims, .timeout = 120)
{
	join_under_full_speed("joinmp", SHMBUS_CH_MULTI_PRODUCER, false);
}

Test(multiproc, join_during_full_speed_cas_claims, .timeout = 120)
{
	join_under_full_speed("joincas", SHMBUS_CH_MULTI_PRODUCER, true);
}

/* --------------------------------------------- overwrite: slow reader */

#define OW_WORDS 256 /* 2 KiB: long copies, so torn reads would happen */

struct ow_check {
	uint64_t got;
	uint64_t torn;
	uint64_t last;
	uint64_t disorder;
	volatile uint64_t sink;
};

static int check_untorn(const shmbus_record_t *r, void *ctx)
{
	struct ow_check *c = ctx;
	uint64_t v[OW_WORDS];
	memcpy(v, r->data, sizeof(v));
	for (int i = 0; i < OW_WORDS; i++)
		if (v[i] != r->seq)
			c->torn++;
	if (c->got > 0 && r->seq <= c->last)
		c->disorder++;
	c->last = r->seq;
	c->got++;
	for (int i = 0; i < 200; i++) /* be slow */
		c->sink += (uint64_t)i;
	return 0;
}

Test(multiproc, overwrite_reader_is_lapped_and_counts_loss, .timeout = 120)
{
	const uint64_t n = scaled(200000);
	const char *name = test_bus("ow");
	shmbus_t *bus;
	shmbus_channel_t *ch = test_channel(name, &bus, "T", OW_WORDS * 8,
					    4, SHMBUS_CH_OVERWRITE);
	struct ow_check chk = {0};
	shmbus_sub_opts_t so = {.name = "slow"};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, check_untorn, &chk, &so, &s), 0);
	struct {
		_Atomic int done;
		_Atomic uint64_t read, published;
	} *sh = shared_alloc(sizeof(*sh));

	pid_t prod = test_fork();
	if (prod == 0) {
		shmbus_t *b;
		shmbus_channel_t *c = child_channel(name, "T", &b);
		shmbus_producer_t *p;
		CHECK_OK(shmbus_producer_open(c, NULL, &p));
		/* at least n, and on until the reader has really competed */
		uint64_t k = 0;
		for (; k < n || atomic_load(&sh->read) < 2000; k++) {
			uint64_t v[OW_WORDS];
			for (int w = 0; w < OW_WORDS; w++)
				v[w] = k;
			/* never waits, even with a stalled reader */
			CHECK_OK(shmbus_try_publish(p, v, sizeof(v), 0));
		}
		atomic_store(&sh->published, k);
		atomic_store(&sh->done, 1);
		_exit(0);
	}
	while (!atomic_load(&sh->done)) {
		if (shmbus_poll(s, 32) == 0)
			sched_yield();
		atomic_store(&sh->read, chk.got);
	}
	cr_expect_eq(child_status(prod), 0);
	while (shmbus_poll(s, 1000) > 0)
		;
	uint64_t published = atomic_load(&sh->published);
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(s, &st);
	cr_expect_eq(chk.torn, 0, "%lu torn words handed to the handler",
		     chk.torn);
	cr_expect_eq(chk.disorder, 0);
	cr_expect_gt(st.lost, 0, "the slow reader was never lapped");
	cr_expect_eq(chk.got + st.lost, published,
		     "delivered %lu + lost %lu != published %lu", chk.got,
		     st.lost, published);
	cr_expect_eq(st.cursor, published);
	shmbus_close(bus);
	shmbus_unlink(name);
}

/* ------------------------------------ single-producer lease recovery */

static int count_only(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	(*(uint64_t *)ctx)++;
	return 0;
}

Test(multiproc, dead_producer_lease_is_recovered, .timeout = 60)
{
	const char *name = test_bus("lease");
	shmbus_t *bus;
	shmbus_channel_t *ch = test_channel(name, &bus, "L", 8,
					    64, 0);
	uint64_t got = 0;
	shmbus_sub_opts_t so = {.name = "r"};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, count_only, &got, &so, &s), 0);
	int ready[2], go[2];
	cr_assert_eq(pipe(ready), 0);
	cr_assert_eq(pipe(go), 0);
	pid_t holder = test_fork();
	if (holder == 0) {
		shmbus_t *b;
		shmbus_channel_t *c = child_channel(name, "L", &b);
		shmbus_producer_t *p;
		CHECK_OK(shmbus_producer_open(c, NULL, &p));
		for (uint64_t k = 0; k < 5; k++)
			CHECK_OK(shmbus_publish(p, &k, 8, 0));
		shmbus_claim_t cl;
		CHECK_OK(shmbus_claim(p, 2, &cl)); /* never committed */
		(void)!write(ready[1], "r", 1);
		char x;
		(void)!read(go[0], &x, 1);
		raise(SIGKILL);
	}
	char x;
	cr_assert_eq(read(ready[0], &x, 1), 1);
	shmbus_producer_t *p;
	cr_expect_eq(shmbus_producer_open(ch, NULL, &p), SHMBUS_EBUSY);
	cr_expect(strstr(shmbus_errmsg(), "lease") != NULL);
	cr_assert_eq(write(go[1], "g", 1), 1);
	cr_expect_eq(child_status(holder), 128 + SIGKILL);
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0, "%s",
		     shmbus_errmsg());
	for (uint64_t k = 0; k < 5; k++)
		cr_assert_eq(shmbus_publish(p, &k, 8, 0), 0);
	while (shmbus_poll(s, 100) > 0)
		;
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(s, &st);
	cr_expect_eq(got, 10);
	cr_expect_eq(st.tombstones, 2, "tombstones %lu", st.tombstones);
	cr_expect_eq(st.cursor, 12);
	shmbus_close(bus);
	shmbus_unlink(name);
}

/* ------------------------------------------- block strategy wakes up */

Test(multiproc, blocked_subscriber_is_woken, .timeout = 60)
{
	const char *name = test_bus("block");
	shmbus_t *bus;
	shmbus_channel_t *ch = test_channel(name, &bus, "B", 8,
					    64, 0);
	int ready[2];
	cr_assert_eq(pipe(ready), 0);
	const uint64_t bursts = 50, per = 20;
	pid_t sub = test_fork();
	if (sub == 0) {
		shmbus_t *b;
		shmbus_channel_t *c = child_channel(name, "B", &b);
		uint64_t got = 0;
		shmbus_sub_opts_t so = {.name = "sleeper",
					.wait = SHMBUS_WAIT_BLOCK};
		shmbus_sub_t *s;
		CHECK_OK(shmbus_subscribe(c, count_only, &got, &so, &s));
		(void)!write(ready[1], "r", 1);
		while (got < bursts * per) {
			if (shmbus_poll(s, 64) == 0 &&
			    shmbus_sub_wait(s, 10ull * 1000000000) != 0)
				_exit(4); /* 10 s without a wake-up */
		}
		_exit(0);
	}
	char x;
	cr_assert_eq(read(ready[0], &x, 1), 1);
	shmbus_producer_opts_t po = {.wait = SHMBUS_WAIT_BLOCK};
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, &po, &p), 0);
	for (uint64_t i = 0; i < bursts; i++) {
		for (uint64_t k = 0; k < per; k++)
			cr_assert_eq(shmbus_publish(p, &k, 8, 0), 0);
		sleep_us(2000); /* let the subscriber fall asleep */
	}
	cr_expect_eq(child_status(sub), 0);
	shmbus_close(bus);
	shmbus_unlink(name);
}

/* -------------------------------------- a signal ends a wait promptly */

static volatile sig_atomic_t caught;

static void on_signal(int sig)
{
	caught = sig;
}

struct intr_case {
	int poller; /* shmbus_poller_wait, else shmbus_sub_wait */
	uint32_t wait;
	int sig, sa_flags;
	int no_handler; /* the default action (ignore): the wait goes on */
};

struct intr_result {
	int rc;
	int caught;
	uint64_t returned_ns;
};

/* A child waits 10 s on an empty channel (1 s for a signal without a
 * handler); a signal with a handler must end the wait at once, with
 * SHMBUS_EINTR, after the handler ran. */
static void intr_child(const char *name, const struct intr_case *c,
		       int ready_fd, struct intr_result *res)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = c->sa_flags;
	if (!c->no_handler)
		sigaction(c->sig, &sa, NULL);
	shmbus_t *b;
	shmbus_channel_t *ch = child_channel(name, "I", &b);
	uint64_t got = 0;
	char sub_name[16];
	snprintf(sub_name, sizeof(sub_name), "i%d.%u", c->poller, c->wait);
	shmbus_sub_opts_t so = {.name = sub_name, .wait = c->wait};
	shmbus_sub_t *s;
	shmbus_poller_t *pl = NULL;
	CHECK_OK(shmbus_subscribe(ch, count_only, &got, &so, &s));
	if (c->poller) {
		CHECK_OK(shmbus_poller_open(b, c->wait, &pl));
		CHECK_OK(shmbus_poller_add(pl, s));
		shmbus_poller_poll(pl, 1); /* the catch-up */
	}
	(void)!write(ready_fd, "r", 1);
	uint64_t ns = (c->no_handler ? 1ull : 10ull) * 1000000000;
	res->rc = pl ? shmbus_poller_wait(pl, ns) : shmbus_sub_wait(s, ns);
	res->returned_ns = shmbus_now_ns();
	res->caught = caught;
	_exit(0);
}

/* Issue 13: waits went on through signals (once 1 s after a SIGTERM; idle
 * processes took 1.7-2 s to exit). */
Test(multiproc, a_signal_ends_a_wait_promptly, .timeout = 120)
{
	const char *name = test_bus("intr");
	shmbus_t *bus;
	shmbus_channel_t *ch = test_channel(name, &bus, "I", 8, 16, 0);
	(void)ch;
	static const struct intr_case cases[] = {
		{0, SHMBUS_WAIT_BLOCK, SIGTERM, 0},
		{0, SHMBUS_WAIT_BACKOFF, SIGUSR1, SA_RESTART},
		{1, SHMBUS_WAIT_BLOCK, SIGUSR1, SA_RESTART},
		{1, SHMBUS_WAIT_BACKOFF, SIGTERM, 0},
		{0, SHMBUS_WAIT_YIELD, SIGUSR1, 0},
		{0, SHMBUS_WAIT_BLOCK, SIGCHLD, 0, 1},
		{0, SHMBUS_WAIT_BACKOFF, SIGWINCH, 0, 1},
	};
	struct intr_result *res = shared_alloc(sizeof(*res));
	cr_assert_not_null(res);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct intr_case *c = &cases[i];
		int ready[2];
		cr_assert_eq(pipe(ready), 0);
		memset(res, 0, sizeof(*res));
		pid_t pid = test_fork();
		if (pid == 0)
			intr_child(name, c, ready[1], res);
		char x;
		cr_assert_eq(read(ready[0], &x, 1), 1);
		close(ready[0]);
		close(ready[1]);
		sleep_us(300000); /* a long idle: deep in the wait */
		uint64_t sent = shmbus_now_ns();
		cr_assert_eq(kill(pid, c->sig), 0);
		cr_assert_eq(child_status(pid), 0);
		double ms = (double)(res->returned_ns - sent) / 1e6;
		if (c->no_handler) { /* nothing ran: it waited its 1 s */
			cr_expect_eq(res->rc, SHMBUS_EAGAIN,
				     "case %zu: signal %d ended the wait "
				     "(%d), no handler ran",
				     i, c->sig, res->rc);
			cr_expect_gt(ms, 500.0, "case %zu", i);
			continue;
		}
		cr_expect_eq(res->caught, c->sig, "case %zu: no handler ran",
			     i);
		cr_expect_eq(res->rc, SHMBUS_EINTR,
			     "case %zu: the wait returned %d after %.1f ms", i,
			     res->rc, ms);
		cr_expect_lt(ms, 50.0,
			     "case %zu (%s, strategy %u, signal %d): the wait "
			     "returned %.1f ms after the signal",
			     i, c->poller ? "poller" : "subscriber", c->wait,
			     c->sig, ms);
	}
	shmbus_close(bus);
	shmbus_unlink(name);
}

/* ------------------------------- an abandoned name of a dead process */

Test(multiproc, dead_subscriber_name_expires, .timeout = 60)
{
	const char *name = test_bus("ttldead");
	shmbus_t *bus;
	shmbus_channel_t *ch = test_channel(name, &bus, "E", 8,
					    8, 0);
	pid_t sub = test_fork();
	if (sub == 0) {
		shmbus_t *b;
		shmbus_channel_t *c = child_channel(name, "E", &b);
		uint64_t got = 0;
		shmbus_sub_opts_t so = {.name = "mortal", .ttl_ms = 50};
		shmbus_sub_t *s;
		CHECK_OK(shmbus_subscribe(c, count_only, &got, &so, &s));
		raise(SIGKILL); /* dies without closing */
	}
	cr_assert_eq(child_status(sub), 128 + SIGKILL);
	cr_expect_eq(shmbus_channel_expire(ch), 0); /* starts its clock */
	sleep_us(80000);
	cr_expect_eq(shmbus_channel_expire(ch), 1);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	for (uint64_t v = 0; v < 100; v++) /* nobody gates any more */
		cr_assert_eq(shmbus_try_publish(p, &v, 8, 0), 0);
	shmbus_close(bus);
	shmbus_unlink(name);
}

/* Issue 13: the name of a dead subscriber blocked every producer forever
 * with no error; with space_timeout_ms the producer is told which name and
 * that no process holds it. */
Test(multiproc, a_dead_subscribers_name_times_out_a_producer, .timeout = 30)
{
	const char *name = test_bus("ghost");
	shmbus_t *bus;
	shmbus_channel_t *ch = test_channel(name, &bus, "G", 8, 8, 0);
	pid_t sub = test_fork();
	if (sub == 0) {
		shmbus_t *b;
		shmbus_channel_t *c = child_channel(name, "G", &b);
		uint64_t got = 0;
		shmbus_sub_opts_t so = {.name = "ghost"};
		shmbus_sub_t *s;
		CHECK_OK(shmbus_subscribe(c, count_only, &got, &so, &s));
		raise(SIGKILL); /* dies without closing */
	}
	cr_assert_eq(child_status(sub), 128 + SIGKILL);
	shmbus_producer_opts_t po = {.space_timeout_ms = 100};
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, &po, &p), 0);
	uint64_t v = 0;
	for (; v < 8; v++)
		cr_assert_eq(shmbus_publish(p, &v, 8, 0), 0);
	cr_expect_eq(shmbus_publish(p, &v, 8, 0), SHMBUS_ETIMEDOUT);
	const char *m = shmbus_errmsg();
	cr_expect(strstr(m, "'ghost'") && strstr(m, "cursor 0") &&
			  strstr(m, "no live process") &&
			  strstr(m, "shmbus unsubscribe"),
		  "%s", m);
	cr_assert_eq(shmbus_unsubscribe(ch, "ghost"), 0);
	cr_expect_eq(shmbus_publish(p, &v, 8, 0), 0);
	shmbus_close(bus);
	shmbus_unlink(name);
}

/* ---------------------------------------- a /dev/shm that is too small */

Test(multiproc, small_dev_shm_is_an_error_at_open, .timeout = 60)
{
	pid_t c = test_fork();
	if (c == 0) {
		/* a private mount namespace with a 1 MiB /dev/shm (root only) */
		if (unshare(CLONE_NEWNS) != 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
		    mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=1m") != 0)
			_exit(77);
		shmbus_t *b;
		CHECK_OK(shmbus_open("small", NULL, &b));
		shmbus_channel_opts_t o = {.record_size = 1024,
					   .capacity = 4096};
		shmbus_channel_t *ch;
		int rc = shmbus_channel_open(b, "Big", &o, &ch);
		if (rc != SHMBUS_ENOMEM || !strstr(shmbus_errmsg(), "/dev/shm")) {
			fprintf(stderr, "rc %d: %s\n", rc, shmbus_errmsg());
			_exit(1);
		}
		/* nothing half-made is left behind: a small one still fits */
		o.capacity = 64;
		CHECK_OK(shmbus_channel_open(b, "Big", &o, &ch));
		_exit(0);
	}
	int st = child_status(c);
	if (st == 77)
		cr_skip_test("needs CAP_SYS_ADMIN for a private /dev/shm");
	cr_expect_eq(st, 0);
}


/* ------------------------------------------------ block-strategy wakes */

struct bounce {
	uint64_t got;
};

static int bounce_seen(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	((struct bounce *)ctx)->got++;
	return 0;
}

/* Busy for 0-15 us before answering: the other side's spin (a few us)
 * then often ends right around the commit, in the race to sleep. */
static void dither(uint64_t *rng)
{
	*rng ^= *rng << 13;
	*rng ^= *rng >> 7;
	*rng ^= *rng << 17;
	uint64_t until = shmbus_now_ns() + *rng % 15000;
	while (shmbus_now_ns() < until)
		;
}

/* Receive one record, sleeping (block) in between: the time it took. */
static uint64_t block_recv(shmbus_sub_t *s, struct bounce *b)
{
	uint64_t t0 = shmbus_now_ns(), want = b->got + 1;
	while (b->got < want)
		if (shmbus_poll(s, 1) == 0)
			shmbus_sub_wait(s, 2000000000ull);
	return shmbus_now_ns() - t0;
}

/* Two processes bounce a record, each asleep (block) while the other
 * works: every round trip is two sleeps that race with the commit that
 * ends them (wait.h, "Sleepers"). A wake-up lost in that race costs a
 * whole sleep slice (20 ms); none may be. */
Test(multiproc, block_sleepers_miss_no_wake_up, .timeout = 120)
{
	const uint64_t rounds = scaled(3000);
	const char *name = test_bus("bounce");
	shmbus_t *bus;
	shmbus_channel_t *ping = test_channel(name, &bus, "ping", 8, 64, 0);
	shmbus_channel_opts_t o = {.record_size = 8, .capacity = 64};
	shmbus_channel_t *pong;
	cr_assert_eq(shmbus_channel_open(bus, "pong", &o, &pong), 0);
	(void)ping;
	struct join_shared *sh = shared_alloc(sizeof(*sh));
	pid_t child = test_fork();
	if (child == 0) {
		shmbus_t *b;
		shmbus_channel_t *in = child_channel(name, "ping", &b);
		shmbus_channel_t *out;
		CHECK_OK(shmbus_channel_open(b, "pong", NULL, &out));
		struct bounce bc = {0};
		shmbus_sub_opts_t so = {.name = "B", .wait = SHMBUS_WAIT_BLOCK};
		shmbus_producer_opts_t po = {.wait = SHMBUS_WAIT_BLOCK};
		shmbus_sub_t *s;
		shmbus_producer_t *p;
		CHECK_OK(shmbus_subscribe(in, bounce_seen, &bc, &so, &s));
		CHECK_OK(shmbus_producer_open(out, &po, &p));
		atomic_store(&sh->joins, 1);
		uint64_t rng = 0x9e3779b97f4a7c15ull;
		for (uint64_t i = 0; i < rounds; i++) {
			if (block_recv(s, &bc) > 10000000ull)
				atomic_fetch_add(&sh->errors, 1);
			dither(&rng);
			CHECK_OK(shmbus_publish(p, &i, 8, 0));
		}
		_exit(0);
	}
	struct bounce bc = {0};
	shmbus_sub_opts_t so = {.name = "A", .wait = SHMBUS_WAIT_BLOCK};
	shmbus_producer_opts_t po = {.wait = SHMBUS_WAIT_BLOCK};
	shmbus_sub_t *s;
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_subscribe(pong, bounce_seen, &bc, &so, &s), 0);
	shmbus_channel_t *pch;
	cr_assert_eq(shmbus_channel_open(bus, "ping", NULL, &pch), 0);
	cr_assert_eq(shmbus_producer_open(pch, &po, &p), 0);
	while (!atomic_load(&sh->joins))
		sched_yield();
	uint64_t slow = 0, worst = 0, rng = 0x2545f4914f6cdd1dull;
	for (uint64_t i = 0; i < rounds; i++) {
		dither(&rng);
		cr_assert_eq(shmbus_publish(p, &i, 8, 0), 0);
		uint64_t t = block_recv(s, &bc);
		slow += t > 10000000ull;
		worst = t > worst ? t : worst;
	}
	cr_expect_eq(child_status(child), 0);
	uint64_t lost = slow + atomic_load(&sh->errors);
	/* a descheduled process can look like one, now and then */
	cr_expect_leq(lost, 2,
		      "%lu of %lu wake-ups took over 10 ms (worst round trip "
		      "%.1f ms): lost wake-ups",
		      lost, 2 * rounds, (double)worst / 1e6);
	shmbus_close(bus);
	shmbus_unlink(name);
}

/* ------------------------------------------ compact channels, 8 and 64 B */

/*
 * Two producers (publish, try_publish, and claims filled through
 * shmbus_claim_at and shmbus_claim_write) and two subscribers (yield,
 * block) on a SHMBUS_CH_COMPACT channel: every record arrives once, in
 * each producer's order, and whole. An 8-byte record is one word,
 * producer << 56 | counter; a 64-byte one is eight words, each a function
 * of (producer, counter, word), so a torn or misplaced payload shows.
 */
#define CP_SUBS 2

struct compact_shared {
	_Atomic int joined;
	uint64_t got[CP_SUBS], errors[CP_SUBS];
};

struct compact_check {
	uint32_t size;
	uint64_t next[NPROD];
	uint64_t got, errors;
};

static uint64_t cp_word(uint64_t prod, uint64_t k, uint32_t i)
{
	return (prod << 56 | k) * 0x9e3779b97f4a7c15ull + i;
}

static void cp_fill(uint64_t *w, uint32_t size, uint64_t prod, uint64_t k)
{
	if (size == 8) {
		w[0] = prod << 56 | k;
		return;
	}
	for (uint32_t i = 0; i < size / 8; i++)
		w[i] = cp_word(prod, k, i);
}

static int check_compact(const shmbus_record_t *r, void *ctx)
{
	struct compact_check *c = ctx;
	uint64_t w[8], want[8];
	c->got++;
	if (r->len != c->size || r->timestamp || r->key ||
	    r->origin != r->seq) {
		c->errors++;
		return 0;
	}
	memcpy(w, r->data, c->size);
	uint64_t prod = c->size == 8 ? w[0] >> 56 : 0;
	if (c->size != 8) /* which producer: the one whose word 0 it is */
		while (prod < NPROD &&
		       w[0] != cp_word(prod, c->next[prod], 0))
			prod++;
	if (prod >= NPROD) {
		c->errors++;
		return 0;
	}
	cp_fill(want, c->size, prod, c->next[prod]);
	if (memcmp(w, want, c->size) != 0)
		c->errors++;
	else
		c->next[prod]++;
	return 0;
}

static void compact_producer(shmbus_channel_t *c, int i, uint32_t size,
			     uint64_t n)
{
	shmbus_producer_opts_t po = {.wait = i == 0 ? SHMBUS_WAIT_BLOCK
						    : SHMBUS_WAIT_YIELD};
	shmbus_producer_t *p;
	CHECK_OK(shmbus_producer_open(c, &po, &p));
	uint64_t w[8];
	for (uint64_t k = 0; k < n;) {
		if (k % 3 == 0) {
			cp_fill(w, size, (uint64_t)i, k++);
			int rc;
			while ((rc = shmbus_try_publish(p, w, size, 0)) ==
			       SHMBUS_EAGAIN)
				sched_yield();
			CHECK_OK(rc);
		} else if (k % 3 == 1 || k + 4 > n) {
			cp_fill(w, size, (uint64_t)i, k++);
			CHECK_OK(shmbus_publish(p, w, size, 0));
		} else {
			shmbus_claim_t cl;
			CHECK_OK(shmbus_claim(p, 4, &cl));
			for (uint32_t j = 0; j < 4; j++) {
				cp_fill(w, size, (uint64_t)i, k++);
				if (j & 1)
					memcpy(shmbus_claim_at(&cl, j), w,
					       size);
				else
					CHECK_OK(shmbus_claim_write(
						p, &cl, j, w, size, 0));
			}
			CHECK_OK(shmbus_commit(p, &cl));
		}
	}
	_exit(0);
}

static void compact_stress(const char *tag, uint32_t size)
{
	const uint64_t per_producer = scaled(300000);
	const char *name = test_bus(tag);
	shmbus_t *bus;
	shmbus_channel_t *ch = test_channel(
		name, &bus, "Cp", size, 1024,
		SHMBUS_CH_MULTI_PRODUCER | SHMBUS_CH_COMPACT);
	shmbus_channel_info_t info;
	cr_assert_eq(shmbus_channel_get_info(ch, &info), 0);
	cr_assert_eq(info.slot_size, size + 8);
	struct compact_shared *sh = shared_alloc(sizeof(*sh));
	pid_t pids[NPROD + CP_SUBS];
	for (int i = 0; i < CP_SUBS; i++) {
		if ((pids[i] = test_fork()) == 0) {
			shmbus_t *b;
			shmbus_channel_t *c = child_channel(name, "Cp", &b);
			struct compact_check chk = {.size = size};
			shmbus_sub_t *s = child_subscribe(c, i, check_compact,
							  &chk);
			atomic_fetch_add(&sh->joined, 1);
			while (chk.got < NPROD * per_producer)
				if (shmbus_poll(s, 512) == 0)
					shmbus_sub_wait(s, 0);
			/* nothing more: no duplicate came after the last */
			chk.errors += shmbus_poll(s, 512) != 0;
			for (int k = 0; k < NPROD; k++)
				chk.errors += chk.next[k] != per_producer;
			sh->got[i] = chk.got;
			sh->errors[i] = chk.errors;
			_exit(chk.errors ? 1 : 0);
		}
	}
	while (atomic_load(&sh->joined) < CP_SUBS)
		sleep_us(1000);
	for (int i = 0; i < NPROD; i++)
		if ((pids[CP_SUBS + i] = test_fork()) == 0) {
			shmbus_t *b;
			compact_producer(child_channel(name, "Cp", &b), i,
					 size, per_producer);
		}
	for (int i = 0; i < NPROD + CP_SUBS; i++)
		cr_expect_eq(child_status(pids[i]), 0, "child %d failed", i);
	for (int i = 0; i < CP_SUBS; i++) {
		cr_expect_eq(sh->got[i], NPROD * per_producer,
			     "sub %d got %lu", i, sh->got[i]);
		cr_expect_eq(sh->errors[i], 0, "sub %d: %lu bad records", i,
			     sh->errors[i]);
	}
	shmbus_close(bus);
	shmbus_unlink(name);
}

Test(multiproc, compact_8_byte_records_arrive_whole_and_in_order,
     .timeout = 300)
{
	compact_stress("cp8", 8);
}

Test(multiproc, compact_64_byte_records_arrive_whole_and_in_order,
     .timeout = 300)
{
	compact_stress("cp64", 64);
}
