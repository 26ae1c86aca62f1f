/*
 * The handler registry: load-time registration, handlers added and removed
 * while a dispatcher thread runs, and fan-out to every handler of a channel.
 */
#include <criterion/criterion.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "helpers.h"

static atomic_ulong static_calls, static_sum;

static int on_registered(const shmbus_record_t *r, void *ctx)
{
	(void)ctx;
	uint64_t v;
	memcpy(&v, r->data, 8);
	atomic_fetch_add(&static_calls, 1);
	atomic_fetch_add(&static_sum, v);
	return 0;
}
SHMBUS_HANDLER(Registered, on_registered)

static int on_named(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	(void)ctx;
	return -1; /* counted as a failure */
}
SHMBUS_HANDLER_NAMED("reg.named-2", on_named)

static shmbus_channel_t *open_channel(shmbus_t **bus, const char *bus_name,
				      const char *ch_name)
{
	cr_assert_eq(shmbus_open(bus_name, NULL, bus), 0, "%s",
		     shmbus_errmsg());
	shmbus_channel_opts_t o = {.record_size = 8, .capacity = 256};
	shmbus_channel_t *ch;
	cr_assert_eq(shmbus_channel_open(*bus, ch_name, &o, &ch), 0, "%s",
		     shmbus_errmsg());
	return ch;
}

Test(registry, load_time_registration_is_bound_at_open)
{
	const char *name = test_bus("regstatic");
	shmbus_t *bus;
	shmbus_channel_t *ch = open_channel(&bus, name, "Registered");
	shmbus_sub_opts_t so = {.name = "r"};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, NULL, NULL, &so, &s), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	for (uint64_t v = 1; v <= 100; v++)
		cr_assert_eq(shmbus_publish(p, &v, 8, 0), 0);
	cr_expect_eq(shmbus_poll(s, 1000), 100);
	cr_expect_eq(atomic_load(&static_calls), 100);
	cr_expect_eq(atomic_load(&static_sum), 5050);
	/* the same handler twice is refused */
	cr_expect_eq(shmbus_handler_add(bus, "Registered", on_registered, NULL),
		     SHMBUS_EEXIST);

	shmbus_channel_t *nch;
	shmbus_channel_opts_t o = {.record_size = 8, .capacity = 16};
	cr_assert_eq(shmbus_channel_open(bus, "reg.named-2", &o, &nch), 0);
	shmbus_sub_t *ns;
	shmbus_sub_opts_t nso = {.name = "n"};
	cr_assert_eq(shmbus_subscribe(nch, NULL, NULL, &nso, &ns), 0);
	shmbus_producer_t *np;
	cr_assert_eq(shmbus_producer_open(nch, NULL, &np), 0);
	uint64_t v = 0;
	cr_assert_eq(shmbus_publish(np, &v, 8, 0), 0);
	cr_expect_eq(shmbus_poll(ns, 10), 1);
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(ns, &st);
	cr_expect_eq(st.failed, 1);
	shmbus_close(bus);
	shmbus_unlink(name);
}

struct counter {
	atomic_ulong calls;
};

static int count_handler(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	atomic_fetch_add(&((struct counter *)ctx)->calls, 1);
	return 0;
}

Test(registry, add_and_remove_while_a_dispatcher_runs, .timeout = 60)
{
	const char *name = test_bus("regdyn");
	shmbus_t *bus;
	shmbus_channel_t *ch = open_channel(&bus, name, "Dyn");
	struct counter always = {0}, churn = {0};
	cr_assert_eq(shmbus_handler_add(bus, "Dyn", count_handler, &always),
		     0);
	shmbus_sub_opts_t so = {.name = "d", .wait = SHMBUS_WAIT_YIELD};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, NULL, NULL, &so, &s), 0);
	cr_assert_eq(shmbus_sub_start(s, -1), 0, "%s", shmbus_errmsg());
	cr_expect_neq(shmbus_sub_start(s, -1), 0);
	shmbus_producer_opts_t po = {.wait = SHMBUS_WAIT_YIELD};
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, &po, &p), 0);
	const uint64_t n = scaled(200000);
	for (uint64_t v = 0; v < n; v++) {
		cr_assert_eq(shmbus_publish(p, &v, 8, 0), 0);
		if (v % 10000 == 0) { /* churn a second handler */
			if ((v / 10000) % 2 == 0)
				cr_assert_eq(shmbus_handler_add(bus, "Dyn",
								count_handler,
								&churn),
					     0);
			else
				cr_assert_eq(shmbus_handler_remove(
						     bus, "Dyn", count_handler,
						     &churn),
					     0);
		}
	}
	while (atomic_load(&always.calls) < n)
		sched_yield();
	cr_assert_eq(shmbus_sub_stop(s), 0);
	cr_expect_eq(atomic_load(&always.calls), n);
	cr_expect_gt(atomic_load(&churn.calls), 0);
	cr_expect_lt(atomic_load(&churn.calls), n);
	cr_expect_eq(shmbus_handler_remove(bus, "Dyn", count_handler, &always),
		     0);
	cr_expect_eq(shmbus_handler_remove(bus, "Dyn", count_handler, &always),
		     SHMBUS_ENOENT);
	shmbus_close(bus);
	shmbus_unlink(name);
}

/* Issue 13: SHMBUS_HANDLER(OrderPlacd, fn), a typo, then a subscriber of
 * OrderPlaced with fn NULL: it subscribed, polled, moved its durable
 * cursor, and no handler ever ran. */
static int on_misspelt(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	(void)ctx;
	return 0;
}
SHMBUS_HANDLER(RegOrdres, on_misspelt)

Test(registry, a_subscriber_without_a_handler_is_refused_naming_both)
{
	const char *name = test_bus("regtypo");
	shmbus_t *bus;
	shmbus_channel_t *ch = open_channel(&bus, name, "RegOrders");
	shmbus_sub_opts_t so = {.name = "risk"};
	shmbus_sub_t *s = NULL;
	cr_expect_eq(shmbus_subscribe(ch, NULL, NULL, &so, &s), SHMBUS_ENOENT);
	cr_expect_null(s);
	const char *msg = shmbus_errmsg();
	cr_expect(strstr(msg, "'RegOrders'") && strstr(msg, "'RegOrdres'") &&
			  strstr(msg, "'risk'"),
		  "the message names neither the channel, the subscriber nor "
		  "the registered channels: %s",
		  msg);
	/* a group member the same; nothing was joined */
	cr_expect_eq(shmbus_group_join(ch, NULL, NULL, &so, &s), SHMBUS_ENOENT);
	shmbus_sub_info_t in[2];
	cr_expect_eq(shmbus_sub_list(ch, in, 2), 0);
	/* a handler for the channel makes it right */
	cr_assert_eq(shmbus_handler_add(bus, "RegOrders", on_misspelt, NULL),
		     0);
	cr_expect_eq(shmbus_subscribe(ch, NULL, NULL, &so, &s), 0, "%s",
		     shmbus_errmsg());
	shmbus_close(bus);
	shmbus_unlink(name);
}

/* The subscriber's durable cursor, as the row says. */
static uint64_t row_cursor(shmbus_channel_t *ch)
{
	shmbus_sub_info_t in[1];
	cr_assert_eq(shmbus_sub_list(ch, in, 1), 1);
	return in[0].cursor;
}

/* Every handler removed while subscribed: the subscriber stops at the
 * first record no handler saw (poll returns SHMBUS_ENOHANDLER, the
 * cursor stays), and goes on from there once a handler is back. */
/* A channel with one handler (count_handler, c; none if c is NULL: a
 * load-time one), a registry subscriber "g" that blocks, the producer. */
struct with_handler {
	const char *name;
	shmbus_t *bus;
	shmbus_channel_t *ch;
	shmbus_sub_opts_t so;
	shmbus_sub_t *s;
	shmbus_producer_t *p;
};

static void open_with_handler(struct with_handler *w, const char *tag,
			      const char *channel, struct counter *c)
{
	w->name = test_bus(tag);
	w->ch = open_channel(&w->bus, w->name, channel);
	if (c)
		cr_assert_eq(shmbus_handler_add(w->bus, channel, count_handler,
						c),
			     0);
	w->so = (shmbus_sub_opts_t){.name = "g", .wait = SHMBUS_WAIT_BLOCK};
	cr_assert_eq(shmbus_subscribe(w->ch, NULL, NULL, &w->so, &w->s), 0,
		     "%s", shmbus_errmsg());
	cr_assert_eq(shmbus_producer_open(w->ch, NULL, &w->p), 0);
}

Test(registry, no_record_passes_without_a_handler)
{
	struct with_handler w;
	struct counter c = {0};
	open_with_handler(&w, "regnone", "Gone", &c);
	for (uint64_t v = 0; v < 3; v++)
		cr_assert_eq(shmbus_publish(w.p, &v, 8, 0), 0);
	cr_expect_eq(shmbus_poll(w.s, 100), 3);
	cr_assert_eq(shmbus_handler_remove(w.bus, "Gone", count_handler, &c),
		     0);
	for (uint64_t v = 3; v < 5; v++)
		cr_assert_eq(shmbus_publish(w.p, &v, 8, 0), 0);
	cr_expect_eq(shmbus_poll(w.s, 100), SHMBUS_ENOHANDLER);
	cr_expect_eq(shmbus_poll(w.s, 100), SHMBUS_ENOHANDLER);
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(w.s, &st);
	cr_expect_eq(st.cursor, 3);
	cr_expect_eq(st.delivered, 3);
	cr_expect_eq(row_cursor(w.ch), 3, "the durable cursor moved");
	/* nothing it can deliver: the wait sleeps its time, no busy loop */
	uint64_t t0 = shmbus_now_ns();
	cr_expect_eq(shmbus_sub_wait(w.s, 30000000), SHMBUS_EAGAIN);
	cr_expect_geq(shmbus_now_ns() - t0, 30000000);
	/* a drain on close delivers nothing either */
	shmbus_sub_close(w.s, 1);
	cr_expect_eq(row_cursor(w.ch), 3);
	cr_expect_eq(atomic_load(&c.calls), 3);

	/* the name resumes with a handler: the two held records come */
	cr_assert_eq(shmbus_handler_add(w.bus, "Gone", count_handler, &c), 0);
	cr_assert_eq(shmbus_subscribe(w.ch, NULL, NULL, &w.so, &w.s), 0);
	cr_expect_eq(shmbus_poll(w.s, 100), 2);
	cr_expect_eq(atomic_load(&c.calls), 5);
	cr_expect_eq(row_cursor(w.ch), 5);
	shmbus_close(w.bus);
	shmbus_unlink(w.name);
}

/* The same through a poller and a dispatcher thread: nothing passes while
 * no handler is there, nothing is forgotten once one is back. */
Test(registry, pollers_and_dispatchers_hold_without_a_handler, .timeout = 30)
{
	struct with_handler w;
	struct counter c = {0};
	open_with_handler(&w, "regnone2", "Gone2", &c);
	shmbus_poller_t *pl;
	cr_assert_eq(shmbus_poller_open(w.bus, SHMBUS_WAIT_BLOCK, &pl), 0);
	cr_assert_eq(shmbus_poller_add(pl, w.s), 0);
	cr_expect_eq(shmbus_poller_poll(pl, 10), 0);
	cr_assert_eq(shmbus_handler_remove(w.bus, "Gone2", count_handler, &c),
		     0);
	uint64_t v = 0;
	cr_assert_eq(shmbus_publish(w.p, &v, 8, 0), 0);
	cr_expect_eq(shmbus_poller_wait(pl, 1000000000), 0);
	cr_expect_eq(shmbus_poller_poll(pl, 10), SHMBUS_ENOHANDLER);
	cr_expect_eq(row_cursor(w.ch), 0);
	cr_assert_eq(shmbus_handler_add(w.bus, "Gone2", count_handler, &c), 0);
	/* the channel is looked at again although nothing new came */
	uint64_t t0 = shmbus_now_ns();
	int got = 0;
	while (got == 0 && shmbus_now_ns() - t0 < 2000000000ull) {
		shmbus_poller_wait(pl, 100000000);
		got = shmbus_poller_poll(pl, 10);
	}
	cr_expect_eq(got, 1);
	cr_expect_eq(atomic_load(&c.calls), 1);
	shmbus_poller_close(pl);

	/* a dispatcher thread */
	cr_assert_eq(shmbus_sub_start(w.s, -1), 0);
	cr_assert_eq(shmbus_handler_remove(w.bus, "Gone2", count_handler, &c),
		     0);
	cr_assert_eq(shmbus_publish(w.p, &v, 8, 0), 0);
	usleep(50000);
	cr_expect_eq(row_cursor(w.ch), 1, "the dispatcher passed a record");
	cr_assert_eq(shmbus_handler_add(w.bus, "Gone2", count_handler, &c), 0);
	t0 = shmbus_now_ns();
	while (atomic_load(&c.calls) < 2 &&
	       shmbus_now_ns() - t0 < 2000000000ull)
		usleep(1000);
	cr_expect_eq(atomic_load(&c.calls), 2);
	cr_assert_eq(shmbus_sub_stop(w.s), 0);
	cr_expect_eq(row_cursor(w.ch), 2);
	shmbus_close(w.bus);
	shmbus_unlink(w.name);
}

/* SHMBUS_HANDLER_CTX: a load-time handler with a context. */
static struct counter ctx_counter;

static int on_with_ctx(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	cr_assert_eq(ctx, &ctx_counter);
	atomic_fetch_add(&((struct counter *)ctx)->calls, 1);
	return 0;
}
SHMBUS_HANDLER_CTX(RegCtx, on_with_ctx, &ctx_counter)

Test(registry, a_load_time_handler_gets_its_context)
{
	struct with_handler w;
	open_with_handler(&w, "regctx", "RegCtx", NULL);
	uint64_t v = 7;
	cr_assert_eq(shmbus_publish(w.p, &v, 8, 0), 0);
	cr_expect_eq(shmbus_poll(w.s, 10), 1);
	cr_expect_eq(atomic_load(&ctx_counter.calls), 1);
	/* registered with its context: removed by the same pair */
	cr_expect_eq(shmbus_handler_remove(w.bus, "RegCtx", on_with_ctx,
					   &ctx_counter),
		     0);
	shmbus_close(w.bus);
	shmbus_unlink(w.name);
}
