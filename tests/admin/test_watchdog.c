/*
 * The watchdog: holes of dead producers become tombstones (and only
 * theirs), one watchdog per bus, the thread does it by itself.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>

#include "failpoint.h"
#include "helpers.h"
#include "internal.h"

static int count_rec(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	(*(uint64_t *)ctx)++;
	return 0;
}

/* A child producer claims one slot of the MP channel and dies. */
static void dead_claimant(const char *name)
{
	pid_t pid = test_fork();
	if (pid == 0) {
		shmbus_t *b;
		CHECK_OK(shmbus_open(name, NULL, &b));
		shmbus_channel_t *c;
		CHECK_OK(shmbus_channel_open(b, "W", NULL, &c));
		shmbus_producer_t *p;
		CHECK_OK(shmbus_producer_open(c, NULL, &p));
		shmbus_claim_t cl;
		CHECK_OK(shmbus_claim(p, 1, &cl));
		raise(SIGKILL); /* between claim and commit */
	}
	cr_assert_eq(child_status(pid), 128 + SIGKILL);
}

/* A bus with a multi-producer channel "W", a subscriber counting into
 * *got, and a producer of our own. */
struct wd_world {
	const char *name;
	shmbus_t *bus;
	shmbus_channel_t *ch;
	shmbus_sub_t *s;
	shmbus_producer_t *p;
	uint64_t got;
};

static void wd_world(struct wd_world *w, const char *tag)
{
	w->name = test_bus(tag);
	w->got = 0;
	w->ch = test_channel(w->name, &w->bus, "W", 8, 64,
			     SHMBUS_CH_MULTI_PRODUCER);
	shmbus_sub_opts_t so = {.name = "r"};
	cr_assert_eq(shmbus_subscribe(w->ch, count_rec, &w->got, &so, &w->s),
		     0);
	cr_assert_eq(shmbus_producer_open(w->ch, NULL, &w->p), 0);
}

Test(watchdog, repairs_only_dead_producers_holes)
{
	struct wd_world world;
	wd_world(&world, "wd");
	const char *name = world.name;
	shmbus_t *bus = world.bus;
	shmbus_sub_t *s = world.s;
	shmbus_producer_t *p = world.p;
	/* a living producer's open claim must never be tombstoned */
	shmbus_claim_t mine;
	cr_assert_eq(shmbus_claim(p, 1, &mine), 0);
	dead_claimant(name);
	for (uint64_t v = 0; v < 5; v++)
		cr_assert_eq(shmbus_publish(p, &v, 8, 0), 0);
	cr_expect_eq(shmbus_poll(s, 100), 0, "read past an open claim");
	shmbus_watchdog_t *w;
	cr_assert_eq(shmbus_watchdog_open(bus, NULL, &w), 0, "%s",
		     shmbus_errmsg());
	cr_assert_eq(shmbus_watchdog_pass(w), 0);
	shmbus_watchdog_stats_t st;
	shmbus_watchdog_get_stats(w, &st);
	cr_expect_eq(st.tombstones, 1, "tombstones %lu", st.tombstones);
	cr_expect_eq(shmbus_poll(s, 100), 0, "our own claim is still open");
	uint64_t v = 99;
	memcpy(shmbus_claim_at(&mine, 0), &v, 8);
	cr_assert_eq(shmbus_commit(p, &mine), 0);
	cr_expect_eq(shmbus_poll(s, 100), 7); /* 1 + tombstone + 5 */
	cr_expect_eq(world.got, 6);
	shmbus_sub_stats_t ss;
	shmbus_sub_get_stats(s, &ss);
	cr_expect_eq(ss.tombstones, 1);
	/* a second pass finds nothing more */
	shmbus_watchdog_pass(w);
	shmbus_watchdog_get_stats(w, &st);
	cr_expect_eq(st.tombstones, 1);
	shmbus_watchdog_close(w);
	shmbus_close(bus);
	shmbus_unlink(name);
}

/* A pass reads its window (the lowest cursor up to the claim) once, at
 * its start; a slow pass may then meet a slot that readers and producers
 * have moved on to a later lap. Such a slot holds a newer record, never
 * this pass's hole: it must be left alone (a CAS from what was read
 * would destroy that record -- chaos runs caught it). */
Test(watchdog, a_slot_of_a_later_lap_is_never_tombstoned)
{
	struct wd_world world;
	wd_world(&world, "wl");
	dead_claimant(world.name); /* a hole at sequence 0 */
	struct slot_header *h = slot_at(world.ch, 0);
	uint32_t hole = atomic_load(&h->marker);
	uint32_t later = marker_make(lap_of(world.ch, 0) + 1, SLOT_COMMITTED,
				     1);
	atomic_store(&h->marker, later); /* as a stale window would see it */
	shmbus_watchdog_t *w;
	cr_assert_eq(shmbus_watchdog_open(world.bus, NULL, &w), 0, "%s",
		     shmbus_errmsg());
	cr_assert_eq(shmbus_watchdog_pass(w), 0);
	shmbus_watchdog_stats_t st;
	shmbus_watchdog_get_stats(w, &st);
	cr_expect_eq(st.tombstones, 0);
	cr_expect_eq(atomic_load(&h->marker), later, "a later lap overwritten");
	/* the hole itself is still repaired */
	atomic_store(&h->marker, hole);
	cr_assert_eq(shmbus_watchdog_pass(w), 0);
	shmbus_watchdog_get_stats(w, &st);
	cr_expect_eq(st.tombstones, 1);
	shmbus_watchdog_close(w);
	shmbus_close(world.bus);
	shmbus_unlink(world.name);
}

Test(watchdog, one_per_bus_and_the_thread_works_alone, .timeout = 60)
{
	const char *name = test_bus("wdlease");
	shmbus_t *bus;
	shmbus_channel_t *ch =
		test_channel(name, &bus, "W", 8, 64, SHMBUS_CH_MULTI_PRODUCER);
	int ready[2], go[2];
	cr_assert_eq(pipe(ready), 0);
	cr_assert_eq(pipe(go), 0);
	pid_t other = test_fork();
	if (other == 0) {
		shmbus_t *b;
		CHECK_OK(shmbus_open(name, NULL, &b));
		shmbus_watchdog_t *w;
		CHECK_OK(shmbus_watchdog_start(b, NULL, &w));
		(void)!write(ready[1], "r", 1);
		char x;
		(void)!read(go[0], &x, 1);
		_exit(0); /* dies holding the lease */
	}
	char x;
	cr_assert_eq(read(ready[0], &x, 1), 1);
	shmbus_watchdog_t *w;
	cr_expect_eq(shmbus_watchdog_start(bus, NULL, &w), SHMBUS_EBUSY);
	cr_assert_eq(write(go[1], "g", 1), 1);
	cr_expect_eq(child_status(other), 0);
	/* the kernel released the dead watchdog's lease */
	shmbus_watchdog_opts_t wo = {.period_ms = 2};
	cr_assert_eq(shmbus_watchdog_start(bus, &wo, &w), 0, "%s",
		     shmbus_errmsg());
	uint64_t got = 0;
	shmbus_sub_opts_t so = {.name = "r", .wait = SHMBUS_WAIT_BLOCK};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, count_rec, &got, &so, &s), 0);
	dead_claimant(name);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	for (uint64_t v = 0; v < 5; v++)
		cr_assert_eq(shmbus_publish(p, &v, 8, 0), 0);
	/* nobody calls a pass: the thread repairs the hole by itself */
	for (int i = 0; i < 500 && got < 5; i++)
		if (shmbus_poll(s, 100) == 0)
			shmbus_sub_wait(s, 10000000);
	shmbus_watchdog_stats_t st;
	shmbus_watchdog_get_stats(w, &st);
	cr_expect_eq(got, 5);
	cr_expect_eq(st.tombstones, 1);
	cr_expect_gt(st.passes, 0);
	shmbus_watchdog_close(w);
	shmbus_close(bus);
	shmbus_unlink(name);
}

/* `shmbus watchdog BUS` as a daemon process: repairs, refuses a second
 * instance, stops cleanly on SIGTERM. */
static pid_t spawn_daemon(const char *bus, int *errfd)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = test_fork();
	if (pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		execl(SHMBUS_TOOL, "shmbus", "watchdog", bus, "--period", "2",
		      (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	*errfd = fds[0];
	return pid;
}

static void read_all(int fd, char *buf, size_t n)
{
	size_t off = 0;
	ssize_t r;
	while (off + 1 < n && (r = read(fd, buf + off, n - 1 - off)) > 0)
		off += (size_t)r;
	buf[off] = 0;
}

Test(watchdog, the_daemon, .timeout = 60)
{
	const char *name = test_bus("wdd");
	shmbus_t *bus;
	shmbus_channel_t *ch =
		test_channel(name, &bus, "W", 8, 64, SHMBUS_CH_MULTI_PRODUCER);
	uint64_t got = 0;
	shmbus_sub_opts_t so = {.name = "r"};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, count_rec, &got, &so, &s), 0);
	int err1, err2;
	pid_t d1 = spawn_daemon(name, &err1);
	usleep(200000);
	pid_t d2 = spawn_daemon(name, &err2);
	cr_expect_eq(child_status(d2), 1, "a second watchdog must refuse");
	char out[4096];
	read_all(err2, out, sizeof(out));
	cr_expect(strstr(out, "already has a live watchdog") != NULL, "%s",
		  out);
	dead_claimant(name);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	for (uint64_t v = 0; v < 5; v++)
		cr_assert_eq(shmbus_publish(p, &v, 8, 0), 0);
	for (int i = 0; i < 2000 && got < 5; i++)
		if (shmbus_poll(s, 100) == 0)
			usleep(1000);
	cr_expect_eq(got, 5);
	kill(d1, SIGTERM);
	cr_expect_eq(child_status(d1), 0);
	read_all(err1, out, sizeof(out));
	cr_expect(strstr(out, "tombstones 1") != NULL, "%s", out);
	cr_expect(strstr(out, "stopped after") != NULL, "%s", out);
	shmbus_close(bus);
	shmbus_unlink(name);
}

Test(watchdog, a_producer_dead_before_naming_its_claim)
{
	/* killed between its fetch-add and the CLAIMED marker: the hole
	 * names nobody; the claim intent it left up says whose it is */
	struct wd_world world;
	wd_world(&world, "wdintent");
	const char *name = world.name;
	shmbus_t *bus = world.bus;
	shmbus_sub_t *s = world.s;
	shmbus_producer_t *p = world.p;
	shmbus_watchdog_t *w;
	cr_assert_eq(shmbus_watchdog_open(bus, NULL, &w), 0);
	pid_t pid = test_fork();
	if (pid == 0) {
		failpoint_arm("mp_after_claim:1");
		shmbus_t *b;
		CHECK_OK(shmbus_open(name, NULL, &b));
		shmbus_channel_t *c;
		CHECK_OK(shmbus_channel_open(b, "W", NULL, &c));
		shmbus_producer_t *cp;
		CHECK_OK(shmbus_producer_open(c, NULL, &cp));
		uint64_t v = 7;
		shmbus_publish(cp, &v, 8, 0); /* dies inside */
		_exit(3);
	}
	cr_assert_eq(child_status(pid), 128 + SIGKILL);
	for (uint64_t v = 0; v < 5; v++)
		cr_assert_eq(shmbus_publish(p, &v, 8, 0), 0);
	cr_expect_eq(shmbus_poll(s, 100), 0);
	/* a live producer inside the same window (our own, forged) holds
	 * the repair off: it might be about to name that very slot */
	for (uint32_t id = 1; id < bus->max_participants; id++)
		if (bit_get(bus->held_parts, id))
			atomic_store(&bus->parts[id].claim_intent, 1);
	cr_assert_eq(shmbus_watchdog_pass(w), 0);
	shmbus_watchdog_stats_t st;
	shmbus_watchdog_get_stats(w, &st);
	cr_expect_eq(st.tombstones, 0, "repaired under a live intent");
	for (uint32_t id = 1; id < bus->max_participants; id++)
		if (bit_get(bus->held_parts, id))
			atomic_store(&bus->parts[id].claim_intent, 0);
	cr_assert_eq(shmbus_watchdog_pass(w), 0);
	shmbus_watchdog_get_stats(w, &st);
	cr_expect_eq(st.tombstones, 1, "tombstones %lu", st.tombstones);
	cr_expect_eq(shmbus_poll(s, 100), 6);
	cr_expect_eq(world.got, 5);
	shmbus_watchdog_close(w);
	shmbus_close(bus);
	shmbus_unlink(name);
}

/* ------------------------------------------- producers waiting for space
 * On a multi-producer channel a producer fetch-adds its claim, then waits
 * for space: the claim runs ahead of the slowest cursor by more than a
 * ring. Found by the chaos test. */

static int log_val(const shmbus_record_t *r, void *ctx)
{
	uint64_t *log = ctx;
	uint64_t v;
	memcpy(&v, r->data, 8);
	log[1 + log[0]++] = v;
	return 0;
}

/* A child that publishes `v` on channel W and blocks for space. */
static pid_t waiting_publisher(const char *name, uint64_t v)
{
	pid_t pid = test_fork();
	if (pid == 0) {
		shmbus_t *b;
		shmbus_channel_t *c;
		shmbus_producer_t *p;
		CHECK_OK(shmbus_open(name, NULL, &b));
		CHECK_OK(shmbus_channel_open(b, "W", NULL, &c));
		shmbus_producer_opts_t po = {.wait = SHMBUS_WAIT_BLOCK};
		CHECK_OK(shmbus_producer_open(c, &po, &p));
		CHECK_OK(shmbus_publish(p, &v, 8, v));
		_exit(0);
	}
	/* until its claim shows */
	shmbus_t *b;
	shmbus_channel_t *c;
	shmbus_channel_info_t info = {0};
	uint64_t before = 0;
	cr_assert_eq(shmbus_open(name, NULL, &b), 0);
	cr_assert_eq(shmbus_channel_open(b, "W", NULL, &c), 0);
	shmbus_channel_get_info(c, &info);
	before = info.claimed;
	for (int i = 0; i < 2000 && info.claimed == before; i++) {
		usleep(1000);
		shmbus_channel_get_info(c, &info);
	}
	shmbus_close(b);
	return pid;
}

static shmbus_channel_t *full_ring(const char *name, shmbus_t **bus,
				   uint32_t policy, uint64_t *log,
				   shmbus_sub_t **s)
{
	shmbus_channel_opts_t co = {.record_size = 8,
				    .capacity = 16,
				    .flags = SHMBUS_CH_MULTI_PRODUCER,
				    .stall_policy = policy};
	shmbus_channel_t *ch;
	cr_assert_eq(shmbus_open(name, NULL, bus), 0);
	cr_assert_eq(shmbus_channel_open(*bus, "W", &co, &ch), 0);
	shmbus_sub_opts_t so = {.name = "s"};
	cr_assert_eq(shmbus_subscribe(ch, log_val, log, &so, s), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	for (uint64_t v = 0; v < 16; v++)
		cr_assert_eq(shmbus_publish(p, &v, 8, v), 0);
	shmbus_producer_close(p);
	return ch;
}

Test(waiting, a_name_resumes_and_is_not_evicted_by_a_waiting_claim)
{
	for (uint32_t policy = 0; policy < 2; policy++) {
		const char *name = test_bus(policy ? "wte" : "wtb");
		static uint64_t log[64];
		memset(log, 0, sizeof(log));
		shmbus_t *bus;
		shmbus_sub_t *s;
		shmbus_channel_t *ch = full_ring(name, &bus, policy, log, &s);
		pid_t pid = waiting_publisher(name, 16);
		/* the name resumes although claim - cursor > capacity */
		shmbus_sub_close(s, 0);
		shmbus_sub_opts_t so = {.name = "s"};
		cr_assert_eq(shmbus_subscribe(ch, log_val, log, &so, &s), 0,
			     "%s", shmbus_errmsg());
		/* a live subscriber is not told it was lapped */
		cr_expect_eq(shmbus_poll(s, 100), 16);
		cr_expect_eq(child_status(pid), 0);
		while (shmbus_poll(s, 100) > 0)
			;
		cr_assert_eq(log[0], 17, "policy %u: %llu records", policy,
			     (unsigned long long)log[0]);
		for (uint64_t v = 0; v < 17; v++)
			cr_expect_eq(log[1 + v], v);
		shmbus_sub_stats_t st;
		shmbus_sub_get_stats(s, &st);
		cr_expect_eq(st.missed, 0);
		shmbus_close(bus);
	}
}

Test(waiting, a_dead_waiters_hole_is_repaired_in_turn_and_no_sooner)
{
	const char *name = test_bus("wth");
	static uint64_t log[64];
	memset(log, 0, sizeof(log));
	shmbus_t *bus;
	shmbus_sub_t *s;
	full_ring(name, &bus, 0, log, &s);
	pid_t dead = waiting_publisher(name, 16); /* claims 16, waits */
	kill(dead, SIGKILL);
	cr_assert_eq(child_status(dead), 128 + SIGKILL);
	pid_t live = waiting_publisher(name, 17); /* claims 17, waits */
	shmbus_watchdog_t *w;
	cr_assert_eq(shmbus_watchdog_open(bus, NULL, &w), 0);
	/* slot 16 still holds record 0, unread: not a hole yet */
	cr_assert_eq(shmbus_watchdog_pass(w), 0);
	shmbus_watchdog_stats_t ws;
	shmbus_watchdog_get_stats(w, &ws);
	cr_expect_eq(ws.tombstones, 0);
	cr_expect_eq(shmbus_poll(s, 100), 16);
	/* now 16 is in the window: repaired, although a live producer waits
	 * behind it (its range says 17 is its own) */
	cr_assert_eq(shmbus_watchdog_pass(w), 0);
	shmbus_watchdog_get_stats(w, &ws);
	cr_expect_eq(ws.tombstones, 1);
	cr_expect_eq(child_status(live), 0);
	while (shmbus_poll(s, 100) > 0)
		;
	cr_assert_eq(log[0], 17);
	for (uint64_t v = 0; v < 16; v++)
		cr_expect_eq(log[1 + v], v);
	cr_expect_eq(log[17], 17);
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(s, &st);
	cr_expect_eq(st.tombstones, 1);
	/* the dead waiter's row goes only once its range is behind us */
	cr_assert_eq(shmbus_watchdog_pass(w), 0);
	shmbus_watchdog_get_stats(w, &ws);
	cr_expect_geq(ws.reaped, 1);
	shmbus_watchdog_close(w);
	shmbus_close(bus);
}
