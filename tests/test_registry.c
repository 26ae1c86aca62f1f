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
