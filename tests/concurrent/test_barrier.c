/*
 * Dependency barriers: a subscriber that runs after others never sees a
 * record before each of them has passed it; declarations are checked.
 */
#include <criterion/criterion.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "helpers.h"

static int nop(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	(void)ctx;
	return 0;
}

static shmbus_sub_t *sub(shmbus_channel_t *ch, const char *name,
			 const char *const *after, uint32_t n, int want_rc)
{
	shmbus_sub_opts_t so = {.name = name, .after = after, .n_after = n};
	shmbus_sub_t *s = NULL;
	int rc = shmbus_subscribe(ch, nop, NULL, &so, &s);
	cr_assert_eq(rc, want_rc, "subscribe %s: %d (%s)", name, rc,
		     shmbus_errmsg());
	return s;
}

Test(barrier, declarations_are_checked)
{
	const char *name = test_bus("bdecl");
	shmbus_t *bus;
	shmbus_channel_t *ch = test_channel(name, &bus, "C", 8,
					    16, 0);

	const char *ghost[] = {"ghost"};
	sub(ch, "x", ghost, 1, SHMBUS_ENOENT);
	const char *self[] = {"y"};
	sub(ch, "y", self, 1, SHMBUS_EINVAL);
	/* neither failed attempt left a gating row behind */
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	for (uint64_t v = 0; v < 40; v++)
		cr_assert_eq(shmbus_try_publish(p, &v, 8, 0), 0);

	shmbus_sub_t *a = sub(ch, "a", NULL, 0, 0);
	const char *after_a[] = {"a"};
	shmbus_sub_t *b = sub(ch, "b", after_a, 1, 0);
	const char *after_b[] = {"b"};
	shmbus_sub_t *c = sub(ch, "c", after_b, 1, 0);
	/* a may not come back running after c: a -> b -> c -> a */
	cr_assert_eq(shmbus_sub_close(a, 0), 0);
	const char *after_c[] = {"c"};
	sub(ch, "a", after_c, 1, SHMBUS_EINVAL);
	cr_expect(strstr(shmbus_errmsg(), "cycle") != NULL, "%s",
		  shmbus_errmsg());
	/* an upstream cannot be removed under its dependents */
	cr_expect_eq(shmbus_unsubscribe(ch, "a"), SHMBUS_EBUSY);
	cr_assert_eq(shmbus_sub_close(c, 0), 0);
	cr_assert_eq(shmbus_unsubscribe(ch, "c"), 0);
	cr_assert_eq(shmbus_sub_close(b, 0), 0);
	cr_assert_eq(shmbus_unsubscribe(ch, "b"), 0);
	cr_expect_eq(shmbus_unsubscribe(ch, "a"), 0);
	const char *many[SHMBUS_MAX_AFTER + 1] = {0};
	sub(ch, "m", many, SHMBUS_MAX_AFTER + 1, SHMBUS_EINVAL);
	shmbus_close(bus);
	shmbus_unlink(name);
}

/* Shared progress: how far each upstream has got, written by its handler
 * before it returns. */
struct progress {
	_Atomic uint64_t done[2]; /* upstream 0, 1: last seq + 1 */
	_Atomic uint64_t violations;
	_Atomic uint64_t got;
	_Atomic int ready;
};

struct role {
	struct progress *pg;
	int id;	  /* upstream id, or -1 for the dependent */
	int spin; /* busy work per record, to slow an upstream down */
	uint64_t got;
};

static int on_record(const shmbus_record_t *r, void *ctx)
{
	struct role *ro = ctx;
	if (ro->id < 0) {
		/* the dependent: both upstreams must have passed r */
		for (int u = 0; u < 2; u++)
			if (atomic_load(&ro->pg->done[u]) <= r->seq)
				atomic_fetch_add(&ro->pg->violations, 1);
		atomic_fetch_add(&ro->pg->got, 1);
	} else {
		for (volatile int i = 0; i < ro->spin; i++)
			;
		atomic_store(&ro->pg->done[ro->id], r->seq + 1);
	}
	ro->got++;
	return 0;
}

Test(barrier, dependent_never_overtakes_its_upstreams, .timeout = 120)
{
	const uint64_t n = scaled(50000);
	const char *name = test_bus("bchain");
	shmbus_t *bus;
	(void)test_channel(name, &bus, "Chain", 8,
					    256, 0);
	struct progress *pg = shared_alloc(sizeof(*pg));
	/* journal -> risk -> strategy, strategy also after journal */
	const char *names[3] = {"journal", "risk", "strategy"};
	const char *after_journal[] = {"journal"};
	const char *after_both[] = {"risk", "journal"};
	pid_t pids[4];
	for (int i = 0; i < 3; i++) {
		if ((pids[i] = test_fork()) == 0) {
			shmbus_t *b;
			CHECK_OK(shmbus_open(name, NULL, &b));
			shmbus_channel_t *c;
			CHECK_OK(shmbus_channel_open(b, "Chain", NULL, &c));
			/* upstreams join before their dependents */
			while (atomic_load(&pg->ready) < i)
				sched_yield();
			struct role ro = {pg, i < 2 ? i : -1, i == 0 ? 2000 : 200,
					  0};
			shmbus_sub_opts_t so = {
				.name = names[i],
				.wait = SHMBUS_WAIT_YIELD,
				.after = i == 1 ? after_journal
					 : i == 2 ? after_both
						  : NULL,
				.n_after = (uint32_t)i};
			shmbus_sub_t *s;
			CHECK_OK(shmbus_subscribe(c, on_record, &ro, &so, &s));
			atomic_fetch_add(&pg->ready, 1);
			/* upstreams in small batches, the dependent in large
			 * ones: it would run past them if the barrier let it */
			while (ro.got < n)
				if (shmbus_poll(s, i == 2 ? 1024 : 16) == 0)
					shmbus_sub_wait(s, 0);
			_exit(0);
		}
	}
	while (atomic_load(&pg->ready) < 3)
		sched_yield();
	if ((pids[3] = test_fork()) == 0) {
		shmbus_t *b;
		CHECK_OK(shmbus_open(name, NULL, &b));
		shmbus_channel_t *c;
		CHECK_OK(shmbus_channel_open(b, "Chain", NULL, &c));
		shmbus_producer_opts_t po = {.wait = SHMBUS_WAIT_YIELD};
		shmbus_producer_t *p;
		CHECK_OK(shmbus_producer_open(c, &po, &p));
		for (uint64_t v = 0; v < n; v++)
			CHECK_OK(shmbus_publish(p, &v, 8, 0));
		_exit(0);
	}
	for (int i = 0; i < 4; i++)
		cr_expect_eq(child_status(pids[i]), 0, "child %d", i);
	cr_expect_eq(atomic_load(&pg->got), n);
	cr_expect_eq(atomic_load(&pg->violations), 0,
		     "%lu records seen before an upstream passed them",
		     atomic_load(&pg->violations));
	shmbus_close(bus);
	shmbus_unlink(name);
}
