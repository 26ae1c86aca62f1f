/*
 * Competing-consumer groups: each record to one member, the floor never
 * passes an unfinished record, and members killed at failpoints lose
 * nothing (every duplicate is a record a dead member had taken).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "failpoint.h"
#include "helpers.h"
#include "internal.h"

static shmbus_channel_t *open_ch(const char *bus_name, shmbus_t **bus,
				 uint32_t cap)
{
	CHECK_OK(shmbus_open(bus_name, NULL, bus));
	shmbus_channel_opts_t o = {.record_size = 8, .capacity = cap};
	shmbus_channel_t *ch;
	CHECK_OK(shmbus_channel_open(*bus, "Work", &o, &ch));
	return ch;
}

/* Per sequence: how many times handled, and by whom first. */
struct ledger {
	_Atomic uint64_t unique;
	_Atomic uint64_t floor_violations;
	_Atomic uint32_t deaths;
	_Atomic uint32_t dead[4096]; /* incarnation ids that were killed */
	_Atomic uint8_t count[];     /* then first_taker[] after it */
};

struct member_ctx {
	struct ledger *lg;
	_Atomic uint32_t *first;
	uint64_t n;
	uint32_t id;	       /* incarnation */
	long die_mid_handler;  /* > 0: SIGKILL inside the N-th handler */
	_Atomic uint64_t *floor; /* the group's floor (row cursor) */
};

static int on_work(const shmbus_record_t *r, void *ctx)
{
	struct member_ctx *m = ctx;
	uint64_t v;
	memcpy(&v, r->data, 8);
	if (v != r->seq || r->seq >= m->n)
		return -1;
	/* the floor never passes a record that is being handled */
	if ((int64_t)(atomic_load(m->floor) - r->seq) > 0)
		atomic_fetch_add(&m->lg->floor_violations, 1);
	uint32_t zero = 0;
	atomic_compare_exchange_strong(&m->first[r->seq], &zero, m->id);
	if (atomic_fetch_add(&m->lg->count[r->seq], 1) == 0)
		atomic_fetch_add(&m->lg->unique, 1);
	if (m->die_mid_handler > 0 && --m->die_mid_handler == 0)
		raise(SIGKILL);
	return 0;
}

static _Atomic uint64_t *floor_of(shmbus_channel_t *ch, const char *group)
{
	for (uint32_t i = 0; i < ch->max_subs; i++)
		if (strcmp(ch->subs[i].name, group) == 0)
			return &ch->subs[i].cursor;
	return NULL;
}

static struct ledger *ledger_new(uint64_t n, _Atomic uint32_t **first)
{
	struct ledger *lg = shared_alloc(sizeof(*lg) + n + 4 * n + 8);
	*first = (_Atomic uint32_t *)((uint8_t *)lg + sizeof(*lg) +
				      ((n + 7) & ~7ull));
	return lg;
}

static pid_t spawn_producer(const char *name, uint64_t n)
{
	pid_t pid = test_fork();
	if (pid == 0) {
		shmbus_t *b;
		shmbus_channel_t *c = open_ch(name, &b, 256);
		shmbus_producer_opts_t po = {.wait = SHMBUS_WAIT_YIELD};
		shmbus_producer_t *p;
		CHECK_OK(shmbus_producer_open(c, &po, &p));
		for (uint64_t v = 0; v < n; v++)
			CHECK_OK(shmbus_publish(p, &v, 8, v % 7));
		_exit(0);
	}
	return pid;
}

/* A member process: joins, handles until every record was handled once. */
static pid_t spawn_member(const char *name, struct ledger *lg,
			  _Atomic uint32_t *first, uint64_t n, uint32_t id,
			  const char *failpoint, long mid_handler,
			  bool until_floor)
{
	pid_t pid = test_fork();
	if (pid == 0) {
		if (failpoint)
			failpoint_arm(failpoint);
		shmbus_t *b;
		shmbus_channel_t *c = open_ch(name, &b, 256);
		struct member_ctx m = {lg, first, n, id, mid_handler,
				       floor_of(c, "workers")};
		shmbus_sub_opts_t so = {.name = "workers",
					.wait = SHMBUS_WAIT_YIELD};
		shmbus_sub_t *s;
		CHECK_OK(shmbus_group_join(c, on_work, &m, &so, &s));
		if (m.floor == NULL)
			m.floor = floor_of(c, "workers");
		/* until every record was handled once, or (the last one
		 * standing) until the floor shows every record done */
		while (until_floor ? atomic_load(m.floor) != n
				   : atomic_load(&lg->unique) < n)
			if (shmbus_poll(s, 64) == 0)
				shmbus_sub_wait(s, 1000000);
		_exit(0);
	}
	return pid;
}

/* Publish n records (each its own sequence) while members a and b poll:
 * every record handled exactly once. */
static void share_work(shmbus_channel_t *ch, shmbus_sub_t *a, shmbus_sub_t *b,
		       struct ledger *lg, uint64_t n)
{
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	uint64_t v = 0;
	while (v < n || atomic_load(&lg->unique) < n) {
		while (v < n && shmbus_try_publish(p, &v, 8, 0) == 0)
			v++;
		shmbus_poll(a, 5);
		shmbus_poll(b, 7);
	}
	for (uint64_t i = 0; i < n; i++)
		cr_assert_eq(atomic_load(&lg->count[i]), 1, "seq %lu", i);
}

Test(group, single_process_members_share_the_work)
{
	const char *name = test_bus("g1");
	shmbus_t *bus;
	shmbus_channel_t *ch = open_ch(name, &bus, 64);
	const uint64_t n = 1000;
	_Atomic uint32_t *first;
	struct ledger *lg = ledger_new(n, &first);
	struct member_ctx ma = {lg, first, n, 1, 0, NULL};
	struct member_ctx mb = {lg, first, n, 2, 0, NULL};
	shmbus_sub_opts_t so = {.name = "workers"};
	shmbus_sub_t *a, *b;
	cr_assert_eq(shmbus_group_join(ch, on_work, &ma, &so, &a), 0, "%s",
		     shmbus_errmsg());
	cr_assert_eq(shmbus_group_join(ch, on_work, &mb, &so, &b), 0, "%s",
		     shmbus_errmsg());
	ma.floor = mb.floor = floor_of(ch, "workers");
	/* a broadcast subscriber may not take a group's name, nor back */
	shmbus_sub_t *x;
	cr_expect_eq(shmbus_subscribe(ch, on_work, &ma, &so, &x),
		     SHMBUS_EEXIST);
	shmbus_sub_opts_t bso = {.name = "watcher"};
	shmbus_sub_t *y;
	cr_assert_eq(shmbus_subscribe(ch, on_work, &ma, &bso, &x), 0);
	cr_expect_eq(shmbus_group_join(ch, on_work, &ma, &bso, &y),
		     SHMBUS_EEXIST);
	shmbus_sub_close(x, 0);
	cr_assert_eq(shmbus_unsubscribe(ch, "watcher"), 0);

	share_work(ch, a, b, lg, n);
	shmbus_sub_stats_t sa, sb;
	shmbus_sub_get_stats(a, &sa);
	shmbus_sub_get_stats(b, &sb);
	cr_expect_eq(sa.delivered + sb.delivered, n);
	cr_expect_gt(sa.delivered, 0);
	cr_expect_gt(sb.delivered, 0);
	cr_expect_eq(atomic_load(floor_of(ch, "workers")), n);
	cr_expect_eq(atomic_load(&lg->floor_violations), 0);
	/* the floor gates: with every member closed, the group holds on */
	cr_expect_eq(shmbus_unsubscribe(ch, "workers"), SHMBUS_EBUSY);
	shmbus_sub_close(a, 0);
	shmbus_sub_close(b, 0);
	cr_assert_eq(shmbus_unsubscribe(ch, "workers"), 0);
	shmbus_close(bus);
	shmbus_unlink(name);
}

Test(group, three_member_processes_exactly_once, .timeout = 300)
{
	const uint64_t n = scaled(1000000);
	const char *name = test_bus("g3");
	shmbus_t *bus;
	shmbus_channel_t *ch = open_ch(name, &bus, 256);
	_Atomic uint32_t *first;
	struct ledger *lg = ledger_new(n, &first);
	/* the group exists (and gates) before the producer starts */
	struct member_ctx m0 = {lg, first, n, 99, 0, NULL};
	shmbus_sub_opts_t so = {.name = "workers"};
	shmbus_sub_t *hold;
	cr_assert_eq(shmbus_group_join(ch, on_work, &m0, &so, &hold), 0);
	pid_t members[3];
	for (uint32_t i = 0; i < 3; i++)
		members[i] = spawn_member(name, lg, first, n, i + 1, NULL, 0,
					  false);
	shmbus_sub_close(hold, 0);
	pid_t prod = spawn_producer(name, n);
	cr_expect_eq(child_status(prod), 0);
	for (int i = 0; i < 3; i++)
		cr_expect_eq(child_status(members[i]), 0);
	uint64_t bad = 0;
	for (uint64_t i = 0; i < n; i++)
		bad += atomic_load(&lg->count[i]) != 1;
	cr_expect_eq(bad, 0, "%lu records not handled exactly once", bad);
	cr_expect_eq(atomic_load(&lg->floor_violations), 0);
	cr_expect_eq(atomic_load(floor_of(ch, "workers")), n);
	shmbus_close(bus);
	shmbus_unlink(name);
}

Test(group, members_killed_at_failpoints_lose_nothing, .timeout = 300)
{
	const uint64_t n = scaled(30000);
	const char *name = test_bus("gk");
	shmbus_t *bus;
	shmbus_channel_t *ch = open_ch(name, &bus, 256);
	_Atomic uint32_t *first;
	struct ledger *lg = ledger_new(n, &first);
	struct member_ctx m0 = {lg, first, n, 0, 0, NULL};
	shmbus_sub_opts_t so = {.name = "workers"};
	shmbus_sub_t *hold;
	cr_assert_eq(shmbus_group_join(ch, on_work, &m0, &so, &hold), 0);
	shmbus_sub_close(hold, 0);
	unsigned seed = (unsigned)time(NULL);
	cr_log_info("seed %u", seed);
	srand(seed);
	pid_t prod = spawn_producer(name, n);
	pid_t live[2] = {0, 0};
	uint32_t ids[2] = {0, 0}, next_id = 1, kills = 0;
	static const char *const points[] = {"group_after_take",
					     "group_before_done", NULL};
	uint64_t deadline = shmbus_now_ns() + 240ull * 1000000000;
	while (atomic_load(&lg->unique) < n && shmbus_now_ns() < deadline) {
		for (int i = 0; i < 2; i++) {
			if (live[i]) {
				int st;
				pid_t r = waitpid(live[i], &st, WNOHANG);
				if (r == 0)
					continue;
				if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL &&
				    kills < 4096) {
					lg->dead[kills++] = ids[i];
				}
				live[i] = 0;
			}
			/* every member dies: after taking a slot, before
			 * marking one done, or inside a handler */
			int kind = rand() % 3;
			char fp[64];
			const char *spec = NULL;
			long mid = 0;
			if (kind < 2) {
				/* the places are passed once a run of up to
				 * 16 records */
				snprintf(fp, sizeof(fp), "%s:%d", points[kind],
					 1 + rand() % 6);
				spec = fp;
			} else {
				mid = 1 + rand() % 50;
			}
			ids[i] = next_id++;
			live[i] = spawn_member(name, lg, first, n, ids[i], spec,
					       mid, false);
		}
		usleep(1000);
	}
	for (int i = 0; i < 2; i++)
		if (live[i]) {
			int st = child_status(live[i]);
			if (st == 128 + SIGKILL && kills < 4096)
				lg->dead[kills++] = ids[i];
		}
	cr_expect_eq(child_status(prod), 0);
	/* a last, healthy member finishes what the dead left taken */
	cr_expect_eq(child_status(spawn_member(name, lg, first, n, next_id,
					       NULL, 0, true)),
		     0);
	uint64_t lost = 0, unexplained = 0, dups = 0;
	for (uint64_t s = 0; s < n; s++) {
		uint8_t c = atomic_load(&lg->count[s]);
		lost += c == 0;
		if (c > 1) {
			dups++;
			bool dead = false;
			for (uint32_t k = 0; k < kills; k++)
				dead |= lg->dead[k] == atomic_load(&first[s]);
			unexplained += !dead;
		}
	}
	cr_log_info("%u kills, %lu duplicates", kills, dups);
	cr_expect_eq(lost, 0, "%lu records never handled", lost);
	cr_expect_eq(unexplained, 0,
		     "%lu duplicates not taken first by a killed member",
		     unexplained);
	cr_expect_geq(kills, scaled(200), "only %u kills", kills);
	cr_expect_eq(atomic_load(&lg->floor_violations), 0);
	cr_expect_eq(atomic_load(floor_of(ch, "workers")), n);
	shmbus_close(bus);
	shmbus_unlink(name);
}

/* Two members A and B of "workers" in this process, with a producer. */
struct pair {
	const char *name;
	shmbus_t *bus;
	shmbus_channel_t *ch;
	struct ledger *lg;
	struct member_ctx ma, mb;
	shmbus_sub_t *a, *b;
	shmbus_producer_t *p;
};

static void pair_open(struct pair *t, const char *tag, uint32_t cap,
		      uint64_t n)
{
	_Atomic uint32_t *first;
	t->name = test_bus(tag);
	t->ch = open_ch(t->name, &t->bus, cap);
	t->lg = ledger_new(n, &first);
	t->ma = (struct member_ctx){t->lg, first, n, 1, 0, NULL};
	t->mb = (struct member_ctx){t->lg, first, n, 2, 0, NULL};
	shmbus_sub_opts_t so = {.name = "workers"};
	cr_assert_eq(shmbus_group_join(t->ch, on_work, &t->ma, &so, &t->a), 0);
	cr_assert_eq(shmbus_group_join(t->ch, on_work, &t->mb, &so, &t->b), 0);
	t->ma.floor = t->mb.floor = floor_of(t->ch, "workers");
	cr_assert_eq(shmbus_producer_open(t->ch, NULL, &t->p), 0);
}

static void pair_close(struct pair *t)
{
	shmbus_close(t->bus);
	shmbus_unlink(t->name);
}

Test(group, a_chunk_taken_over_while_its_owner_was_away)
{
	/* A fetches a chunk but handles only part of it; B, idle, takes the
	 * rest over; the floor passes it and producers lap those slots. A
	 * must drop the stale remainder, not wait for it forever. */
	struct pair t;
	pair_open(&t, "gstale", 4, 64);
	shmbus_producer_t *p = t.p;
	shmbus_sub_t *a = t.a, *b = t.b;
	struct ledger *lg = t.lg;
	uint64_t v = 0;
	for (; v < 2; v++)
		cr_assert_eq(shmbus_publish(p, &v, 8, 0), 0);
	cr_expect_eq(shmbus_poll(a, 4), 2); /* chunk [0,4): 2 and 3 pending */
	for (; v < 4; v++)
		cr_assert_eq(shmbus_publish(p, &v, 8, 0), 0);
	cr_expect_eq(shmbus_poll(b, 4), 2); /* B takes 2 and 3 over */
	for (; v < 8; v++) /* the ring laps slots 2 and 3 */
		cr_assert_eq(shmbus_try_publish(p, &v, 8, 0), 0);
	int got = 0;
	for (int i = 0; i < 100 && atomic_load(&lg->unique) < 8; i++)
		got += shmbus_poll(a, 4);
	cr_expect_eq(got, 4, "A handled %d of the 4 new records", got);
	for (uint64_t i = 0; i < 8; i++)
		cr_expect_eq(atomic_load(&lg->count[i]), 1, "seq %lu", i);
	pair_close(&t);
}

Test(group, a_taken_run_is_skipped_whole)
{
	/* B has taken the run [0, 4) (one CAS of its head; the run's other
	 * words still hold an older lap's value, so they look free) and is
	 * in its handlers. A, idle, recovers below the take counter: it must
	 * skip the run whole and take only 4..7 (stepping one word at a time
	 * it would take 1, 2 and 3 out of B's hands). */
	const uint64_t n = 8;
	struct pair t;
	pair_open(&t, "grun", 16, n);
	shmbus_channel_t *ch = t.ch;
	struct ledger *lg = t.lg;
	for (uint64_t v = 0; v < n; v++)
		cr_assert_eq(shmbus_publish(t.p, &v, 8, 0), 0);
	struct ch_group *g = group_at(ch, 0);
	atomic_store(&g->word[0], gword_run(lap_of(ch, 0), GW_TAKEN,
					    1 /* B joined second */, 4));
	atomic_store(&g->next, n); /* fetched: what is left is orphaned */
	cr_expect_eq(shmbus_poll(t.a, 64), 4);
	for (uint64_t i = 0; i < n; i++)
		cr_expect_eq(atomic_load(&lg->count[i]), i >= 4,
			     "seq %lu handled %u times", i,
			     atomic_load(&lg->count[i]));
	cr_expect_eq(atomic_load(t.ma.floor), 0, "the floor waits for B's "
						 "run");
	pair_close(&t);
}

/* ------------------------------------------------------- keyed groups */

#define NKEYS 97

struct keyed_ledger {
	_Atomic uint64_t next[NKEYS]; /* next counter expected, per key */
	_Atomic uint64_t handled;
	_Atomic uint64_t order_errors;
	_Atomic uint64_t dups;
	_Atomic uint32_t in_handler[NKEYS]; /* members inside, per key */
	_Atomic uint64_t overlaps;
	_Atomic int stop;
};

struct keyed_member {
	struct keyed_ledger *kl;
	long die_after; /* > 0: SIGKILL inside the N-th handler */
};

static int on_keyed(const shmbus_record_t *r, void *ctx)
{
	struct keyed_member *km = ctx;
	struct keyed_ledger *kl = km->kl;
	uint64_t pl[2] = {r->key, 0}; /* key, per-key counter */
	memcpy(&pl[1], r->data, 8);
	uint64_t k = pl[0];
	if (k >= NKEYS)
		return -1;
	/* never two members in one key's handler at once */
	if (atomic_fetch_add(&kl->in_handler[k], 1) != 0)
		atomic_fetch_add(&kl->overlaps, 1);
	uint64_t want = atomic_load(&kl->next[k]);
	if (pl[1] == want) {
		atomic_store(&kl->next[k], want + 1);
		atomic_fetch_add(&kl->handled, 1);
	} else if (pl[1] < want && want - pl[1] <= GROUP_RUN_MAX) {
		/* redelivery after a kill: the dead member's run again, in
		 * order, so a key may step back as far as that run reached */
		atomic_fetch_add(&kl->dups, 1);
	} else {
		atomic_fetch_add(&kl->order_errors, 1);
	}
	atomic_fetch_sub(&kl->in_handler[k], 1);
	if (km->die_after > 0 && --km->die_after == 0)
		raise(SIGKILL); /* in the handler, before DONE */
	return 0;
}

static pid_t keyed_member(const char *name, struct keyed_ledger *kl,
			  uint64_t total, long die_after, long leave_after)
{
	pid_t pid = test_fork();
	if (pid == 0) {
		shmbus_t *b;
		shmbus_channel_t *c = open_ch(name, &b, 256);
		struct keyed_member km = {kl, die_after};
		shmbus_sub_opts_t so = {.name = "accounts",
					.wait = SHMBUS_WAIT_YIELD,
					.flags = SHMBUS_GROUP_KEYED};
		shmbus_sub_t *s;
		CHECK_OK(shmbus_group_join(c, on_keyed, &km, &so, &s));
		uint64_t mine = 0;
		while (atomic_load(&kl->handled) < total &&
		       !atomic_load(&kl->stop)) {
			int n = shmbus_poll(s, 32);
			if (n > 0)
				mine += (uint64_t)n;
			else
				shmbus_sub_wait(s, 1000000);
			if (leave_after > 0 && mine >= (uint64_t)leave_after)
				break; /* a graceful leave mid-stream */
		}
		shmbus_sub_close(s, 0);
		_exit(0);
	}
	return pid;
}

Test(group, keyed_members_keep_per_key_order_through_changes, .timeout = 120)
{
	const uint64_t total = scaled(200000);
	const char *name = test_bus("gkeyed");
	shmbus_t *bus;
	shmbus_channel_t *ch = open_ch(name, &bus, 256);
	struct keyed_ledger *kl = shared_alloc(sizeof(*kl));
	/* the group exists before the producer: it is owed every record */
	shmbus_sub_opts_t so = {.name = "accounts",
				.flags = SHMBUS_GROUP_KEYED};
	shmbus_sub_t *hold;
	struct keyed_member none = {kl, 0};
	cr_assert_eq(shmbus_group_join(ch, on_keyed, &none, &so, &hold), 0,
		     "%s", shmbus_errmsg());
	/* an unkeyed join of a keyed group is refused */
	shmbus_sub_opts_t plain = {.name = "accounts"};
	shmbus_sub_t *x;
	cr_expect_eq(shmbus_group_join(ch, on_keyed, &none, &plain, &x),
		     SHMBUS_EEXIST);
	pid_t a = keyed_member(name, kl, total, 0, 0);
	pid_t b = keyed_member(name, kl, total, 0, (long)(total / 4));
	shmbus_sub_close(hold, 0); /* its partitions go to the others */
	pid_t prod = test_fork();
	if (prod == 0) {
		shmbus_t *bb;
		shmbus_channel_t *c = open_ch(name, &bb, 256);
		shmbus_producer_opts_t po = {.wait = SHMBUS_WAIT_YIELD};
		shmbus_producer_t *p;
		CHECK_OK(shmbus_producer_open(c, &po, &p));
		uint64_t counters[NKEYS] = {0};
		for (uint64_t i = 0; i < total; i++) {
			uint64_t k = (i * 31 + i / 7) % NKEYS;
			uint64_t v = counters[k]++;
			CHECK_OK(shmbus_publish(p, &v, 8, k));
		}
		_exit(0);
	}
	/* membership changes while records flow: a member joins, one dies
	 * inside a handler */
	while (atomic_load(&kl->handled) < total / 3)
		usleep(1000);
	pid_t c = keyed_member(name, kl, total, 0, 0);
	pid_t d = keyed_member(name, kl, total, 500, 0);
	cr_expect_eq(child_status(d), 128 + SIGKILL);
	cr_expect_eq(child_status(prod), 0);
	cr_expect_eq(child_status(b), 0);
	uint64_t deadline = shmbus_now_ns() + 60ull * 1000000000;
	while (atomic_load(&kl->handled) < total && shmbus_now_ns() < deadline)
		usleep(1000);
	atomic_store(&kl->stop, 1);
	cr_expect_eq(child_status(a), 0);
	cr_expect_eq(child_status(c), 0);
	cr_log_info("handled %lu, redelivered %lu", atomic_load(&kl->handled),
		    atomic_load(&kl->dups));
	cr_expect_eq(atomic_load(&kl->handled), total,
		     "%lu of %lu handled in order", atomic_load(&kl->handled),
		     total);
	cr_expect_eq(atomic_load(&kl->order_errors), 0,
		     "%lu records out of per-key order",
		     atomic_load(&kl->order_errors));
	cr_expect_eq(atomic_load(&kl->overlaps), 0,
		     "%lu times two members held one key",
		     atomic_load(&kl->overlaps));
	/* one member died: at most its run is handled again */
	cr_expect_leq(atomic_load(&kl->dups), GROUP_RUN_MAX);
	shmbus_close(bus);
	shmbus_unlink(name);
}

/* ---------------------------------- a group's floor wakes its dependents */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct sleeper {
	shmbus_sub_t *s;
	_Atomic uint64_t handled_ns; /* when the dependent got the record */
};

static int note_time(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	atomic_store(&((struct sleeper *)ctx)->handled_ns, now_ns());
	return 0;
}

static void *sleep_then_poll(void *arg)
{
	struct sleeper *sl = arg;
	for (int i = 0; i < 50 && atomic_load(&sl->handled_ns) == 0; i++)
		if (shmbus_poll(sl->s, 1) == 0)
			shmbus_sub_wait(sl->s, 2000000000ull);
	return NULL;
}

static int ok_handler(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	(void)ctx;
	return 0;
}

/* A subscriber running after a group sleeps (block strategy) until the
 * group's floor passes a record: the member that moves the floor wakes
 * it, keyed or not, instead of leaving it to its sleep slice. */
static void floor_wakes_dependent(const char *tag, uint32_t flags)
{
	const char *name = test_bus(tag);
	shmbus_t *bus;
	shmbus_channel_t *ch = open_ch(name, &bus, 64);
	shmbus_sub_opts_t go = {.name = "workers", .flags = flags};
	shmbus_sub_t *member;
	cr_assert_eq(shmbus_group_join(ch, ok_handler, NULL, &go, &member), 0,
		     "%s", shmbus_errmsg());
	const char *after[] = {"workers"};
	struct sleeper sl = {0};
	shmbus_sub_opts_t so = {.name = "audit",
				.wait = SHMBUS_WAIT_BLOCK,
				.after = after,
				.n_after = 1};
	cr_assert_eq(shmbus_subscribe(ch, note_time, &sl, &so, &sl.s), 0,
		     "%s", shmbus_errmsg());
	pthread_t t;
	pthread_create(&t, NULL, sleep_then_poll, &sl);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	uint64_t v = 0;
	cr_assert_eq(shmbus_publish(p, &v, 8, 7), 0);
	/* the commit woke it; it found the floor short and sleeps again */
	struct timespec pause = {0, 20000000};
	nanosleep(&pause, NULL);
	/* the member's poll moves the floor, and bumps the event count
	 * the dependent sleeps on (nothing else can meanwhile) */
	uint32_t ec = ck_ec32_value(&ch->hdr->data_ec);
	uint64_t moved = now_ns();
	cr_assert_eq(shmbus_poll(member, 16), 1);
	cr_expect_neq(ck_ec32_value(&ch->hdr->data_ec), ec,
		      "moving the floor woke nobody");
	pthread_join(t, NULL);
	uint64_t got = atomic_load(&sl.handled_ns);
	cr_assert_neq(got, 0, "the dependent never got the record");
	cr_assert_geq(got, moved, "handled before the floor moved");
	cr_expect_lt(got - moved, 30000000ull,
		     "the dependent woke %.1f ms after the floor moved",
		     (double)(got - moved) / 1e6);
	shmbus_close(bus);
	shmbus_unlink(name);
}

Test(group, the_floor_wakes_a_sleeping_dependent)
{
	floor_wakes_dependent("gwake", 0);
}

Test(group, a_keyed_floor_wakes_a_sleeping_dependent)
{
	floor_wakes_dependent("gwakek", SHMBUS_GROUP_KEYED);
}

/* SHMBUS_CH_COMPACT: records carry no key, so a keyed group is refused
 * at join (leaving no row behind), and an unkeyed one shares the work. */
Test(group, a_compact_channel_refuses_keyed_groups)
{
	const char *name = test_bus("gcmp");
	shmbus_t *bus;
	shmbus_channel_t *ch = test_channel(name, &bus, "Work", 8, 64,
					    SHMBUS_CH_COMPACT);
	const uint64_t n = 1000;
	_Atomic uint32_t *first;
	struct ledger *lg = ledger_new(n, &first);
	struct member_ctx ma = {lg, first, n, 1, 0, NULL};
	struct member_ctx mb = {lg, first, n, 2, 0, NULL};
	shmbus_sub_opts_t ko = {.name = "workers",
				.flags = SHMBUS_GROUP_KEYED};
	shmbus_sub_t *a, *b;
	cr_expect_eq(shmbus_group_join(ch, on_work, &ma, &ko, &a),
		     SHMBUS_EINVAL);
	cr_expect_str_eq(shmbus_errmsg(),
			 "channel 'Work' is compact (SHMBUS_CH_COMPACT): its "
			 "records carry no key, so group 'workers' cannot be "
			 "keyed (SHMBUS_GROUP_KEYED)");
	shmbus_sub_info_t info[4];
	cr_expect_eq(shmbus_sub_list(ch, info, 4), 0, "a row was left");
	shmbus_sub_opts_t so = {.name = "workers"};
	cr_assert_eq(shmbus_group_join(ch, on_work, &ma, &so, &a), 0, "%s",
		     shmbus_errmsg());
	cr_assert_eq(shmbus_group_join(ch, on_work, &mb, &so, &b), 0, "%s",
		     shmbus_errmsg());
	ma.floor = mb.floor = floor_of(ch, "workers");
	share_work(ch, a, b, lg, n);
	cr_expect_eq(atomic_load(&lg->floor_violations), 0);
	shmbus_close(bus);
	shmbus_unlink(name);
}
