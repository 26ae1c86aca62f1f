/*
 * Pollers: one consumer on many channels, woken and directed by the ready
 * bitmap; no record missed, none out of order per channel.
 */
#include <criterion/criterion.h>
#include <sched.h>
#include <string.h>

#include "helpers.h"
#include "internal.h"

#define NCH 300

struct per_channel {
	uint64_t next;
	uint64_t got;
	uint64_t errors;
};

static int on_rec(const shmbus_record_t *r, void *ctx)
{
	struct per_channel *c = ctx;
	uint64_t v;
	memcpy(&v, r->data, 8);
	if (v != c->next)
		c->errors++;
	c->next = v + 1;
	c->got++;
	return 0;
}

struct world {
	shmbus_t *bus;
	shmbus_channel_t *ch[NCH];
	shmbus_sub_t *sub[NCH];
	struct per_channel pc[NCH];
	shmbus_poller_t *pl;
};

static void open_world(struct world *w, const char *name, uint32_t wait)
{
	memset(w, 0, sizeof(*w));
	shmbus_opts_t bo = {.max_channels = 512};
	cr_assert_eq(shmbus_open(name, &bo, &w->bus), 0, "%s", shmbus_errmsg());
	cr_assert_eq(shmbus_poller_open(w->bus, wait, &w->pl), 0, "%s",
		     shmbus_errmsg());
	shmbus_channel_opts_t o = {.record_size = 8, .capacity = 64};
	for (int i = 0; i < NCH; i++) {
		char cn[16];
		snprintf(cn, sizeof(cn), "ch%d", i);
		cr_assert_eq(shmbus_channel_open(w->bus, cn, &o, &w->ch[i]), 0,
			     "%s", shmbus_errmsg());
		shmbus_sub_opts_t so = {.name = "poller"};
		cr_assert_eq(shmbus_subscribe(w->ch[i], on_rec, &w->pc[i], &so,
					      &w->sub[i]),
			     0);
		cr_assert_eq(shmbus_poller_add(w->pl, w->sub[i]), 0, "%s",
			     shmbus_errmsg());
	}
}

static uint64_t ready_bits(struct world *w)
{
	struct sb_poller *row = poller_row(w->bus, 0);
	uint64_t n = 0;
	for (int i = 0; i < 8; i++)
		n += (uint64_t)__builtin_popcountll(atomic_load(&row->ready[i]));
	return n;
}

Test(poller, finds_only_active_channels)
{
	struct world w;
	const char *name = test_bus("poll1");
	open_world(&w, name, SHMBUS_WAIT_SPIN);
	/* every channel starts ready (catch-up), then drains */
	cr_expect_eq(shmbus_poller_poll(w.pl, 100000), 0);
	cr_expect_eq(ready_bits(&w), 0);
	cr_expect_eq(shmbus_poller_add(w.pl, w.sub[0]), SHMBUS_EEXIST);

	shmbus_producer_t *p[NCH];
	for (int i = 0; i < NCH; i++)
		cr_assert_eq(shmbus_producer_open(w.ch[i], NULL, &p[i]), 0);
	uint64_t sent[NCH] = {0}, total = 0;
	for (int round = 0; round < 50; round++) {
		/* three active channels per round */
		for (int k = 0; k < 3; k++) {
			int c = (round * 37 + k * 101) % NCH;
			for (int m = 0; m < 5; m++, total++, sent[c]++)
				cr_assert_eq(shmbus_publish(p[c], &sent[c], 8,
							    0),
					     0);
		}
		cr_expect_leq(ready_bits(&w), 3);
		cr_expect_eq(shmbus_poller_wait(w.pl, 1000000), 0);
		/* a small budget: the rest stays marked ready */
		int n = shmbus_poller_poll(w.pl, 4);
		cr_expect_eq(n, 4);
		while (shmbus_poller_poll(w.pl, 1000) > 0)
			;
		cr_expect_eq(ready_bits(&w), 0);
	}
	uint64_t got = 0, errors = 0;
	for (int i = 0; i < NCH; i++) {
		got += w.pc[i].got;
		errors += w.pc[i].errors;
		cr_expect_eq(w.pc[i].got, sent[i], "channel %d", i);
	}
	cr_expect_eq(got, total);
	cr_expect_eq(errors, 0);
	cr_expect_eq(shmbus_poller_wait(w.pl, 1000000), SHMBUS_EAGAIN);
	/* a closed subscriber leaves the poller */
	shmbus_sub_close(w.sub[5], 0);
	cr_assert_eq(shmbus_publish(p[5], &sent[5], 8, 0), 0);
	cr_expect_eq(shmbus_poller_poll(w.pl, 10), 0);
	shmbus_poller_close(w.pl);
	shmbus_close(w.bus);
	shmbus_unlink(name);
}

static int poller_wait(void *pl, uint64_t ns)
{
	return shmbus_poller_wait(pl, ns);
}

/* Issue 13: a 200 ms poller wait took 256 ms, every time. */
Test(poller, wait_timeouts_are_honoured, .timeout = 60)
{
	const char *name = test_bus("pollto");
	shmbus_t *bus;
	shmbus_channel_t *ch = test_channel(name, &bus, "T", 8, 16, 0);
	static const uint32_t strategies[] = {SHMBUS_WAIT_BACKOFF,
					      SHMBUS_WAIT_BLOCK};
	for (size_t i = 0; i < 2; i++) {
		shmbus_poller_t *pl;
		cr_assert_eq(shmbus_poller_open(bus, strategies[i], &pl), 0);
		struct per_channel pc = {0};
		shmbus_sub_opts_t so = {.name = "p"};
		shmbus_sub_t *s;
		cr_assert_eq(shmbus_subscribe(ch, on_rec, &pc, &so, &s), 0);
		cr_assert_eq(shmbus_poller_add(pl, s), 0);
		cr_expect_eq(shmbus_poller_poll(pl, 10), 0); /* the catch-up */
		char why[128];
		cr_expect(waits_on_time(poller_wait, pl, why, sizeof(why)),
			  "strategy %u: %s", strategies[i], why);
		shmbus_sub_close(s, 0);
		shmbus_poller_close(pl);
	}
	shmbus_close(bus);
	shmbus_unlink(name);
}

Test(poller, blocked_poller_across_processes, .timeout = 120)
{
	struct world w;
	const char *name = test_bus("poll2");
	open_world(&w, name, SHMBUS_WAIT_BLOCK);
	while (shmbus_poller_poll(w.pl, 100000) > 0)
		;
	const uint64_t per = scaled(2000);
	const int active = 20;
	pid_t prod = test_fork();
	if (prod == 0) {
		shmbus_t *b;
		shmbus_opts_t bo = {.max_channels = 512};
		CHECK_OK(shmbus_open(name, &bo, &b));
		shmbus_producer_t *p[NCH];
		shmbus_producer_opts_t po = {.wait = SHMBUS_WAIT_YIELD};
		for (int k = 0; k < active; k++) {
			char cn[16];
			snprintf(cn, sizeof(cn), "ch%d", k * 13);
			shmbus_channel_t *c;
			CHECK_OK(shmbus_channel_open(b, cn, NULL, &c));
			CHECK_OK(shmbus_producer_open(c, &po, &p[k]));
		}
		for (uint64_t v = 0; v < per; v++) {
			for (int k = 0; k < active; k++)
				CHECK_OK(shmbus_publish(p[k], &v, 8, 0));
			if (v % 64 == 0) /* idle gaps: the poller sleeps */
				usleep(200);
		}
		_exit(0);
	}
	uint64_t got = 0;
	while (got < per * active) {
		int n = shmbus_poller_poll(w.pl, 256);
		cr_assert_geq(n, 0);
		got += (uint64_t)n;
		if (n == 0)
			cr_assert_eq(shmbus_poller_wait(w.pl, 5000000000ull), 0,
				     "no wake-up in 5 s (got %lu)", got);
	}
	cr_expect_eq(child_status(prod), 0);
	for (int k = 0; k < active; k++) {
		cr_expect_eq(w.pc[k * 13].got, per);
		cr_expect_eq(w.pc[k * 13].errors, 0);
	}
	shmbus_poller_close(w.pl);
	shmbus_close(w.bus);
	shmbus_unlink(name);
}
