/*
 * The chaos test. Producers, durable broadcast subscribers and the members
 * of a competing group run as processes (block wait strategy: on two cores,
 * spinning children would starve the watchdog) on one multi-producer
 * channel. This driver, never killed itself, runs the watchdog on a library
 * thread, SIGKILLs random children and restarts them; some restarts arm a
 * failpoint, so that the child kills itself at a place random kills almost
 * never reach (between claim and commit, after a group take, inside a
 * handler, after a publish returned but before the producer noted it).
 *
 * Children record what they do in a shared mapping (a memfd they inherit
 * across exec): each producer its progress (every counter below it was
 * accepted: its publish returned), each consumer how often it was handed
 * each sequence and each (producer, counter). At the end, the driver checks:
 *   - every accepted record reached each subscriber and the group at least
 *     once, and each subscriber's first deliveries of a producer's records
 *     came in counter order (checked online by the handlers);
 *   - every sequence below the claim reached every consumer or none; the
 *     ones that reached none are exactly the watchdog's tombstones, at
 *     least one per death at a claim-to-commit failpoint, and with the
 *     records republished by restarted producers no more than those
 *     producers had in flight when they died;
 *   - every duplicate is explained by a kill: a subscriber's lie within one
 *     batch of a cursor it resumed at, a group's number at most one per
 *     member death.
 *
 * Usage: chaos [SEED] [--seed N] [--duration S] [--kills N] [--rate R]
 *              [--capacity C] [--grace MS] [--arm PCT] [--policy evict|block]
 *              [--keyed] [--try-claims]
 * (also SHMBUS_CHAOS_SEED, SHMBUS_CHAOS_DURATION, SHMBUS_CHAOS_KILLS, and
 * SHMBUS_CHAOS_ARGS="--policy block ..." for ctest). The seed is printed
 * first; the same seed replays the same kill schedule, failpoints and
 * producer choices (the timing of the processes still varies).
 * --try-claims: producers claim only without waiting (shmbus_try_claim,
 * shmbus_try_publish), which never leaves a claim waiting for space.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmbus/shmbus.h>

#include "failpoint.h"
#include "internal.h"

extern char **environ;

/* ------------------------------------------------------------ the cast */

#define NPROD 2
#define NSUB 2
#define NMEMB 2
#define NCHILD (NPROD + NSUB + NMEMB) /* slots: producers, subs, members */
#define NCONS (NSUB + 1)	      /* accounting: each sub, the group */
#define GROUP_K NSUB
#define MAX_CLAIM 8	     /* most records a producer claims at once */
#define MAX_STARTS 65536     /* resume cursors kept per subscriber */
#define POLL_MAX 512
#define CHANNEL "Chaos"
#define GROUP "workers"

enum role { R_PROD = 1, R_SUB = 2, R_GROUP = 4 };

static int role_of(int slot)
{
	return slot < NPROD ? R_PROD : slot < NPROD + NSUB ? R_SUB : R_GROUP;
}

static const char *slot_name(int slot)
{
	static const char *const n[NCHILD] = {"prod0", "prod1", "sub0",
					      "sub1",  "member0", "member1"};
	return n[slot];
}

/* The subscribers' batches differ, so that both a short and the default
 * batch are redelivered after kills. */
static const uint32_t sub_batch[NSUB] = {32, 256};

/*
 * Failpoints: where a restarted child may be told to kill itself, at the
 * N-th pass (N random in [1, max_n]). Library ones (src/util/failpoint.c) are
 * armed through SHMBUS_FAILPOINT at exec; names this build of the library
 * does not know are skipped with a note. The test's own are in its
 * handlers and producer loop. To add one, add a line.
 */
static struct failpoint {
	const char *name;
	int roles;
	bool library;
	bool hole; /* a death here leaves at least one tombstone */
	long max_n;
	bool enabled;
} failpoints[] = {
	{"before_commit", R_PROD, true, true, 3000, false},
	{"mp_after_claim", R_PROD, true, true, 3000, false},
	{"group_after_take", R_GROUP, true, false, 3000, false},
	{"group_before_done", R_GROUP, true, false, 3000, false},
	{"sub_before_cursor", R_SUB, true, false, 300, false},
	{"retry_mid_copy", R_SUB | R_GROUP, true, false, 100, false},
	/* killed in the handler, before or after it counted the record */
	{"handler_before", R_SUB | R_GROUP, false, false, 3000, true},
	{"handler_after", R_SUB | R_GROUP, false, false, 3000, true},
	/* a publish returned, the producer had not noted it: republished */
	{"after_publish", R_PROD, false, false, 3000, true},
};
#define NFP (int)(sizeof(failpoints) / sizeof(failpoints[0]))

/* ------------------------------------------------------------- records */

struct rec {
	uint64_t producer, counter, check, pad;
};

static uint64_t rec_check(uint64_t p, uint64_t c)
{
	return ((p << 56) ^ c) * 0x9e3779b97f4a7c15ull ^ 0xc3a5c85c97cb3127ull;
}

/* --------------------------------------------------- the shared mapping */

struct shared {
	/* written by the driver before any child starts */
	uint64_t cmax; /* counters per producer the arrays hold */
	uint64_t smax; /* sequences the arrays hold */
	uint32_t rate; /* records per second per producer */
	uint32_t ordered_group; /* keyed group: per-producer order checked */
	uint32_t try_only;	/* producers never wait inside a claim */
	uint64_t off_seq_pc, off_cnt_seq, off_cnt_pc, size;
	_Atomic uint32_t stop_producers, stop_consumers;
	/* producers: all counters below progress were accepted; inflight is
	 * how many the publish under way holds (0 between publishes) */
	_Atomic uint64_t progress[NPROD];
	_Atomic uint64_t inflight[NPROD];
	_Atomic uint32_t capped[NPROD];
	/* consumers: tombstones skipped (re-reads after a kill included) */
	_Atomic uint64_t skips[NCONS];
	_Atomic uint64_t failed[NCONS];	 /* first deliveries failed */
	_Atomic uint64_t retried[NCONS]; /* redeliveries handled */
	_Atomic uint32_t n_starts[NSUB];
	uint64_t starts[NSUB][MAX_STARTS]; /* resume cursor + 1, 0 unknown */
	/* violations the children saw */
	_Atomic uint64_t errors;
	_Atomic uint32_t error_taken, error_ready;
	char error[512];
};

static struct shared *sh;
static uint32_t *seq_pc; /* (counter + 1) << 1 | producer, 0 = none */
static uint8_t *cnt_seq; /* [k][seq]: deliveries to consumer k */
static uint8_t *cnt_pc;	 /* [k][p][c] */

static inline uint8_t *seq_count(int k, uint64_t seq)
{
	return &cnt_seq[(size_t)k * sh->smax + seq];
}
static inline uint8_t *pc_count(int k, uint64_t p, uint64_t c)
{
	return &cnt_pc[((size_t)k * NPROD + p) * sh->cmax + c];
}

static void map_shared(int fd, size_t size)
{
	void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		perror("chaos: mmap");
		_exit(2);
	}
	sh = m;
	seq_pc = (uint32_t *)((uint8_t *)m + sh->off_seq_pc);
	cnt_seq = (uint8_t *)m + sh->off_cnt_seq;
	cnt_pc = (uint8_t *)m + sh->off_cnt_pc;
}

/* A child saw something wrong: the first message is kept for the driver. */
static void violation(const char *fmt, ...)
{
	atomic_fetch_add(&sh->errors, 1);
	if (atomic_exchange(&sh->error_taken, 1) != 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sh->error, sizeof(sh->error), fmt, ap);
	va_end(ap);
	atomic_store(&sh->error_ready, 1);
}

#define CHILD_FAILED 3

#define CHILD_OK(expr)                                                         \
	do {                                                                   \
		int rc_ = (expr);                                              \
		if (rc_ != 0) {                                                \
			violation("%s: %s = %d (%s)", me, #expr, rc_,          \
				  shmbus_errmsg());                            \
			_exit(CHILD_FAILED);                                   \
		}                                                              \
	} while (0)

/* ------------------------------------------------------------- helpers */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000u),
			      (long)(ns % 1000000000u)};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* splitmix64: small, seedable, good enough to pick victims */
static uint64_t rnd64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd(uint64_t *s, uint64_t n)
{
	return rnd64(s) % n;
}

/* ============================================================ children */

static const char *me = "driver";

struct consumer {
	int k;		  /* accounting index */
	bool ordered;	  /* first deliveries per producer must be in order */
	bool broadcast;	  /* sequence order within one handle */
	uint64_t last_seq;
	bool have_last;
	uint64_t handled; /* handler calls in this process */
	uint64_t die_before, die_after; /* test failpoints, 0 = none */
};

/* Records whose first delivery fails (retried from the retry segment):
 * one counter in FAIL_EVERY. Their order is not a first delivery's, and a
 * consumer killed while redelivering one gets it again. */
#define FAIL_EVERY 101u
static bool fails_first(uint64_t counter)
{
	return counter % FAIL_EVERY == 7;
}

static int on_record(const shmbus_record_t *r, void *ctx)
{
	struct consumer *cs = ctx;
	if (++cs->handled == cs->die_before)
		raise(SIGKILL);
	struct rec v;
	if (r->len == sizeof(v)) {
		memcpy(&v, r->data, sizeof(v));
		if (r->attempt == 1 && fails_first(v.counter)) {
			atomic_fetch_add(&sh->failed[cs->k], 1);
			return -1; /* nothing counted: not handled */
		}
	}
	if (r->len != sizeof(v)) {
		violation("%s: seq %" PRIu64 " has length %u", me, r->seq,
			  r->len);
		return 0;
	}
	memcpy(&v, r->data, sizeof(v));
	if (v.producer >= NPROD || v.counter >= sh->cmax ||
	    v.check != rec_check(v.producer, v.counter) ||
	    r->seq >= sh->smax || (r->flags & SHMBUS_REC_TOMBSTONE)) {
		violation("%s: seq %" PRIu64 " is not a record of this test "
			  "(producer %" PRIu64 " counter %" PRIu64
			  " check %s flags 0x%x)",
			  me, r->seq, v.producer, v.counter,
			  v.check == rec_check(v.producer, v.counter) ? "ok"
								     : "BAD",
			  r->flags);
		return 0;
	}
	if (r->attempt > 1)
		atomic_fetch_add(&sh->retried[cs->k], 1);
	if (cs->broadcast && r->attempt == 1) {
		if (cs->have_last && r->seq <= cs->last_seq)
			violation("%s: seq %" PRIu64 " after seq %" PRIu64, me,
				  r->seq, cs->last_seq);
		cs->last_seq = r->seq;
		cs->have_last = true;
	}
	/* every consumer must see the same record at a sequence */
	uint32_t want = (uint32_t)((v.counter + 1) << 1 | v.producer), have = 0;
	if (!__atomic_compare_exchange_n(&seq_pc[r->seq], &have, want, false,
					 __ATOMIC_RELAXED, __ATOMIC_RELAXED) &&
	    have != want)
		violation("%s: seq %" PRIu64 " is (%" PRIu64 ", %" PRIu64
			  ") here but (%u, %u) for another consumer",
			  me, r->seq, v.producer, v.counter, have & 1,
			  (have >> 1) - 1);
	uint8_t *pc = pc_count(cs->k, v.producer, v.counter);
	/* A first delivery of counter c comes after one of c - 1: the
	 * producer published c only once c - 1's publish had returned. The
	 * check and the count below are one pass of the handler, so a kill
	 * between them only repeats both. */
	if (cs->ordered && v.counter > 0 && r->attempt == 1 &&
	    !fails_first(v.counter - 1) &&
	    __atomic_load_n(pc, __ATOMIC_RELAXED) == 0 &&
	    __atomic_load_n(pc - 1, __ATOMIC_RELAXED) == 0)
		violation("%s: first delivery of (%" PRIu64 ", %" PRIu64
			  ") at seq %" PRIu64 " before any of counter %" PRIu64,
			  me, v.producer, v.counter, r->seq, v.counter - 1);
	if (__atomic_fetch_add(pc, 1, __ATOMIC_RELAXED) == UINT8_MAX)
		violation("%s: (%" PRIu64 ", %" PRIu64 ") delivered 256 times",
			  me, v.producer, v.counter);
	if (__atomic_fetch_add(seq_count(cs->k, r->seq), 1,
			       __ATOMIC_RELAXED) == UINT8_MAX)
		violation("%s: seq %" PRIu64 " delivered 256 times", me,
			  r->seq);
	if (cs->handled == cs->die_after)
		raise(SIGKILL);
	return 0;
}

static shmbus_channel_t *child_channel(const char *bus_name, shmbus_t **bus)
{
	shmbus_channel_t *ch;
	CHILD_OK(shmbus_open(bus_name, NULL, bus));
	CHILD_OK(shmbus_channel_open(*bus, CHANNEL, NULL, &ch));
	return ch;
}

static void run_consumer(int slot, uint32_t incarnation, const char *bus_name,
			 const char *fp, long fp_n)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = child_channel(bus_name, &bus);
	bool group = role_of(slot) == R_GROUP;
	struct consumer cs = {.k = group ? GROUP_K : slot - NPROD};
	cs.broadcast = !group;
	cs.ordered = !group || sh->ordered_group;
	if (strcmp(fp, "handler_before") == 0)
		cs.die_before = (uint64_t)fp_n;
	if (strcmp(fp, "handler_after") == 0)
		cs.die_after = (uint64_t)fp_n;
	shmbus_sub_opts_t so = {.name = group ? GROUP : slot_name(slot),
				.wait = SHMBUS_WAIT_BLOCK,
				.retry = {.max_attempts = 50,
					  .base_us = 500,
					  .cap_us = 5000}};
	shmbus_sub_t *s;
	if (group) {
		so.flags = sh->ordered_group ? SHMBUS_GROUP_KEYED : 0;
		CHILD_OK(shmbus_group_join(ch, on_record, &cs, &so, &s));
	} else {
		so.batch = sub_batch[cs.k];
		CHILD_OK(shmbus_subscribe(ch, on_record, &cs, &so, &s));
		/* where this incarnation resumes: a kill redelivers at most
		 * one batch from here (the first one joined at 0) */
		shmbus_sub_stats_t st;
		shmbus_sub_get_stats(s, &st);
		uint32_t i = atomic_fetch_add(&sh->n_starts[cs.k], 1);
		if (incarnation > 0 && i < MAX_STARTS)
			__atomic_store_n(&sh->starts[cs.k][i], st.cursor + 1,
					 __ATOMIC_RELAXED);
	}
	uint64_t skipped = 0;
	while (!atomic_load_explicit(&sh->stop_consumers,
				     memory_order_relaxed)) {
		int n = shmbus_poll(s, POLL_MAX);
		if (n < 0) {
			shmbus_sub_stats_t st;
			shmbus_sub_get_stats(s, &st);
			violation("%s: poll = %d (%s), missed %" PRIu64
				  " records",
				  me, n, shmbus_strerror(n), st.missed);
			_exit(CHILD_FAILED);
		}
		shmbus_sub_stats_t st;
		shmbus_sub_get_stats(s, &st);
		atomic_fetch_add_explicit(&sh->skips[cs.k],
					  st.tombstones - skipped,
					  memory_order_relaxed);
		skipped = st.tombstones;
		if (n == 0)
			shmbus_sub_wait(s, 20 * 1000000ull);
	}
	CHILD_OK(shmbus_sub_close(s, 0));
	shmbus_close(bus);
	_exit(0);
}

/* One publish of n records from counter c, in one of three ways; returns
 * n. inflight is raised before the claim and lowered after progress.
 * Refused non-blocking claims sleep rather than spin. */
static uint32_t publish_some(shmbus_producer_t *pr, uint64_t p, uint64_t c,
			     uint64_t *rng)
{
	uint64_t how = rnd(rng, 100);
	if (sh->try_only && how >= 15)
		how = 15 + how % 15;
	if (how < 15 && c + MAX_CLAIM <= sh->cmax) {
		/* zero-copy batch: claim, fill, commit */
		uint32_t n = 2 + (uint32_t)rnd(rng, MAX_CLAIM - 1);
		atomic_store(&sh->inflight[p], n);
		shmbus_claim_t cl;
		if (sh->try_only) {
			int rc;
			while ((rc = shmbus_try_claim(pr, n, &cl)) ==
			       SHMBUS_EAGAIN)
				sleep_ns(50000);
			CHILD_OK(rc);
		} else {
			CHILD_OK(shmbus_claim(pr, n, &cl));
		}
		for (uint32_t i = 0; i < n; i++) {
			struct rec v = {p, c + i, rec_check(p, c + i), 0};
			memcpy(shmbus_claim_at(&cl, i), &v, sizeof(v));
			CHILD_OK(shmbus_claim_set(pr, &cl, i, sizeof(v), p));
		}
		CHILD_OK(shmbus_commit(pr, &cl));
		return n;
	}
	struct rec v = {p, c, rec_check(p, c), 0};
	atomic_store(&sh->inflight[p], 1);
	if (how < 30) {
		/* by CAS: a refusal leaves no hole */
		int rc;
		while ((rc = shmbus_try_publish(pr, &v, sizeof(v), p)) ==
		       SHMBUS_EAGAIN)
			sleep_ns(50000);
		CHILD_OK(rc);
	} else {
		CHILD_OK(shmbus_publish(pr, &v, sizeof(v), p));
	}
	return 1;
}

static void run_producer(int p, const char *bus_name, const char *fp, long fp_n,
			 uint64_t rng)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = child_channel(bus_name, &bus);
	shmbus_producer_opts_t po = {.wait = SHMBUS_WAIT_BLOCK};
	shmbus_producer_t *pr;
	CHILD_OK(shmbus_producer_open(ch, &po, &pr));
	uint64_t die_after = strcmp(fp, "after_publish") == 0 ? (uint64_t)fp_n
							      : 0;
	uint64_t c = atomic_load(&sh->progress[p]);
	/* The previous incarnation may have committed records it did not
	 * note: publish that many again before honouring a stop, so that
	 * every committed counter ends up below progress. */
	uint64_t owed = c + atomic_load(&sh->inflight[p]);
	uint64_t interval = 1000000000ull / sh->rate, publishes = 0;
	uint64_t t_next = now_ns();
	while (c < owed || !atomic_load_explicit(&sh->stop_producers,
						 memory_order_relaxed)) {
		if (c + MAX_CLAIM > sh->cmax) { /* the arrays are full */
			atomic_store(&sh->capped[p], 1);
			if (atomic_load(&sh->stop_producers))
				break;
			sleep_ns(1000000);
			continue;
		}
		uint64_t burst = 1 + rnd(&rng, 64), done = 0;
		while (done < burst && c + MAX_CLAIM <= sh->cmax) {
			uint32_t n = publish_some(pr, (uint64_t)p, c, &rng);
			if (++publishes == die_after)
				raise(SIGKILL);
			/* read by the driver and our next incarnation,
			 * after our death */
			atomic_store(&sh->progress[p], c + n);
			atomic_store(&sh->inflight[p], 0);
			c += n;
			done += n;
		}
		/* pace to the rate; after a long wait for space, no burst to
		 * catch up */
		t_next += done * interval;
		uint64_t t = now_ns();
		if (t_next > t)
			sleep_ns(t_next - t);
		else if (t - t_next > 50000000ull)
			t_next = t;
	}
	shmbus_close(bus);
	_exit(0);
}

/* chaos --child SLOT INCARNATION MEMFD MEMSIZE BUS FP FP_N RNG */
static int child_main(int argc, char **argv)
{
	if (argc != 10)
		return 2;
	int slot = atoi(argv[2]);
	uint32_t incarnation = (uint32_t)strtoul(argv[3], NULL, 10);
	int fd = atoi(argv[4]);
	size_t size = (size_t)strtoull(argv[5], NULL, 10);
	const char *bus_name = argv[6], *fp = argv[7];
	long fp_n = strtol(argv[8], NULL, 10);
	uint64_t rng = strtoull(argv[9], NULL, 10);
	if (slot < 0 || slot >= NCHILD)
		return 2;
	me = slot_name(slot);
	map_shared(fd, size);
	close(fd);
	if (role_of(slot) == R_PROD)
		run_producer(slot, bus_name, fp, fp_n, rng);
	else
		run_consumer(slot, incarnation, bus_name, fp, fp_n);
	return 0;
}

/* ============================================================== driver */

struct opts {
	uint64_t seed;
	double duration_s;
	uint32_t min_deaths;
	uint32_t rate;
	uint32_t capacity;
	uint32_t grace_ms;
	uint32_t arm_pct;
	uint32_t kill_min_ms, kill_max_ms;
	uint32_t stall_s;
	bool keyed;
	bool block_policy;
	bool try_only;
};

struct child {
	pid_t pid; /* 0: not running */
	uint32_t incarnation;
	int fp;	   /* armed failpoint, or -1 */
	long fp_n;
	bool killed; /* the driver sent this incarnation SIGKILL */
	bool done;   /* exited cleanly after its stop */
};

static struct driver {
	struct opts o;
	const char *bus_name;
	char exe[PATH_MAX];
	int memfd;
	uint64_t rng;
	shmbus_t *bus;
	shmbus_channel_t *ch;
	shmbus_watchdog_t *wd;
	int rows[NCONS]; /* subscriber rows: sub0, sub1, the group */
	struct child kids[NCHILD];
	bool final; /* no more failpoints on restart */
	/* what happened */
	uint64_t random_kills[NCHILD];
	uint64_t fp_deaths[NFP];
	uint64_t deaths[NCHILD];
	uint64_t hole_deaths;	   /* deaths at claim-to-commit failpoints */
	uint64_t inflight_budget;  /* records in flight at producer deaths */
	uint64_t t0;
} D;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static uint64_t total_deaths(void)
{
	uint64_t n = 0;
	for (int i = 0; i < NCHILD; i++)
		n += D.deaths[i];
	return n;
}

static const char *state_name(uint32_t st)
{
	static const char *const n[] = {"free", "joining", "active",
					"evicted"};
	return st < 4 ? n[st] : "?";
}

/* What is stuck, for a failure message: the claim, each consumer's
 * position, the slots at the lowest one, producers' claim intents. */
static void dump_state(void)
{
	shmbus_channel_t *ch = D.ch;
	uint64_t claim = atomic_load(&ch->hdr->claim), lo = claim;
	fprintf(stderr, "chaos: state: claim %" PRIu64 ", capacity %u\n",
		claim, ch->capacity);
	for (int k = 0; k < NCONS; k++) {
		struct ch_subscriber *e = &ch->subs[D.rows[k]];
		uint64_t cur = atomic_load(&e->cursor);
		fprintf(stderr, "  %-8s row %d %-7s cursor %" PRIu64
				" (%" PRIu64 " behind)",
			e->name, D.rows[k], state_name(atomic_load(&e->state)),
			cur, claim - cur);
		if (e->group) {
			struct ch_group *g = group_at(ch, e->group - 1);
			uint64_t w = atomic_load(&g->word[cur & ch->mask]);
			fprintf(stderr,
				", next %" PRIu64 ", word at floor: lap %" PRIu64
				" state %u member %u",
				atomic_load(&g->next), w >> 16,
				(unsigned)(w >> 8) & 0xff, (unsigned)w & 0xff);
		}
		fputc('\n', stderr);
		if ((int64_t)(cur - lo) < 0)
			lo = cur;
	}
	for (uint64_t s = lo; s != claim && s - lo < 4; s++) {
		uint32_t m = atomic_load(&slot_at(ch, s)->marker);
		static const char *const st[] = {"empty", "claimed",
						 "committed", "tombstone"};
		fprintf(stderr,
			"  slot of seq %" PRIu64 ": marker lap16 %u (expect %u)"
			" %s, participant %u\n",
			s, m >> 16, (unsigned)(lap_of(ch, s) & 0xffff),
			st[(m >> MARKER_PART_BITS) & 3], m & MARKER_PART_MASK);
	}
	shmbus_watchdog_stats_t ws = {0};
	if (D.wd) /* racy, but only for the message */
		shmbus_watchdog_get_stats(D.wd, &ws);
	fprintf(stderr,
		"  watchdog: %" PRIu64 " passes, %" PRIu64 " tombstones, %" PRIu64
		" evicted, %" PRIu64 " reaped; %.1f s into the run\n",
		ws.passes, ws.tombstones, ws.evicted, ws.reaped,
		(now_ns() - D.t0) / 1e9);
	shmbus_t *bus = D.bus;
	for (uint32_t id = 1; id < bus->max_participants; id++) {
		struct sb_participant *p = &bus->parts[id];
		uint64_t intent = atomic_load(&p->claim_intent);
		if (atomic_load(&p->state) == PART_FREE && intent == 0)
			continue;
		bool ours = false;
		for (int i = 0; i < NCHILD; i++)
			ours |= D.kids[i].pid == p->pid;
		fprintf(stderr,
			"  participant %u: %s, kind %u, pid %d (%s), name '%s',"
			" claim intent %" PRIu64 "\n",
			id, atomic_load(&p->state) == PART_LIVE ? "live" : "free",
			p->kind, p->pid,
			ours ? "a running child" : "not running", p->name,
			intent);
	}
	for (int i = 0; i < NCHILD; i++) {
		struct child *k = &D.kids[i];
		fprintf(stderr, "  %-8s pid %d, incarnation %u, failpoint %s",
			slot_name(i), k->pid, k->incarnation,
			k->fp >= 0 ? failpoints[k->fp].name : "none");
		if (k->fp >= 0)
			fprintf(stderr, ":%ld", k->fp_n);
		if (role_of(i) == R_PROD)
			fprintf(stderr, ", progress %" PRIu64 ", inflight %" PRIu64,
				atomic_load(&sh->progress[i]),
				atomic_load(&sh->inflight[i]));
		fputc('\n', stderr);
	}
}

static void kill_all(void)
{
	for (int i = 0; i < NCHILD; i++)
		if (D.kids[i].pid > 0)
			kill(D.kids[i].pid, SIGKILL);
	for (int i = 0; i < NCHILD; i++)
		if (D.kids[i].pid > 0)
			while (waitpid(D.kids[i].pid, NULL, 0) < 0 &&
			       errno == EINTR)
				;
}

static void cleanup(void)
{
	kill_all();
	if (D.wd)
		shmbus_watchdog_close(D.wd);
	if (D.bus)
		shmbus_close(D.bus);
	if (D.bus_name)
		shmbus_unlink(D.bus_name);
}

__attribute__((format(printf, 2, 3), noreturn)) static void
fail(bool dump, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "chaos: FAIL (seed %" PRIu64 "): ", D.o.seed);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (dump && D.ch)
		dump_state();
	cleanup();
	fprintf(stderr, "chaos: replay with: chaos --seed %" PRIu64
			" (or SHMBUS_CHAOS_SEED=%" PRIu64 " ctest -L chaos)\n",
		D.o.seed, D.o.seed);
	exit(1);
}

/* The children's first violation, if any. */
static void check_errors(void)
{
	if (atomic_load(&sh->errors) == 0)
		return;
	for (int i = 0; i < 100 && !atomic_load(&sh->error_ready); i++)
		sleep_ns(1000000);
	fail(true, "%" PRIu64 " violation(s) seen by children; the first: %s",
	     atomic_load(&sh->errors), sh->error);
}

/* The environment of a child: ours, with SHMBUS_FAILPOINT replaced. */
static char **child_env(const char *fp_spec)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof(*env));
	size_t j = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "SHMBUS_FAILPOINT=", 17) != 0)
			env[j++] = environ[i];
	if (fp_spec)
		env[j++] = (char *)fp_spec;
	env[j] = NULL;
	return env;
}

static void spawn(int slot)
{
	struct child *k = &D.kids[slot];
	int role = role_of(slot);
	k->fp = -1;
	k->fp_n = 0;
	k->killed = false;
	if (!D.final && rnd(&D.rng, 100) < D.o.arm_pct) {
		int cand[NFP], n = 0;
		for (int i = 0; i < NFP; i++)
			if (failpoints[i].enabled && (failpoints[i].roles & role))
				cand[n++] = i;
		if (n) {
			k->fp = cand[rnd(&D.rng, (uint64_t)n)];
			k->fp_n = 1 + (long)rnd(&D.rng,
						(uint64_t)failpoints[k->fp].max_n);
		}
	}
	char a_slot[16], a_inc[16], a_fd[16], a_size[32], a_n[32], a_rng[32];
	char spec[96];
	snprintf(a_slot, sizeof(a_slot), "%d", slot);
	snprintf(a_inc, sizeof(a_inc), "%u", k->incarnation);
	snprintf(a_fd, sizeof(a_fd), "%d", D.memfd);
	snprintf(a_size, sizeof(a_size), "%" PRIu64, sh->size);
	snprintf(a_n, sizeof(a_n), "%ld", k->fp_n);
	snprintf(a_rng, sizeof(a_rng), "%" PRIu64, rnd64(&D.rng));
	const char *fp = k->fp >= 0 ? failpoints[k->fp].name : "-";
	bool lib = k->fp >= 0 && failpoints[k->fp].library;
	if (lib)
		snprintf(spec, sizeof(spec), "SHMBUS_FAILPOINT=%s:%ld", fp,
			 k->fp_n);
	char *argv[] = {D.exe,	  "--child", a_slot,	     a_inc,
			a_fd,	  a_size,    (char *)D.bus_name, (char *)fp,
			a_n,	  a_rng,     NULL};
	char **env = child_env(lib ? spec : NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		fail(false, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* dies with the driver, whatever kills it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		execve(D.exe, argv, env);
		_exit(127);
	}
	free(env);
	k->pid = pid;
}

/* A child ended: count a death and restart it, or accept a clean exit
 * after a stop; anything else fails the run. */
static void reaped(int slot, int status)
{
	struct child *k = &D.kids[slot];
	pid_t pid = k->pid;
	k->pid = 0;
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
		if (atomic_load(&sh->stop_producers))
			fail(true, "%s (pid %d) died during the stop",
			     slot_name(slot), pid);
		if (k->killed) {
			D.random_kills[slot]++;
		} else if (k->fp >= 0) {
			D.fp_deaths[k->fp]++;
			D.hole_deaths += failpoints[k->fp].hole;
		} else {
			fail(true,
			     "%s (pid %d) died of a SIGKILL that neither the "
			     "driver nor a failpoint sent (the OOM killer?)",
			     slot_name(slot), pid);
		}
		D.deaths[slot]++;
		if (slot < NPROD)
			D.inflight_budget += atomic_load(&sh->inflight[slot]);
		k->incarnation++;
		spawn(slot);
		return;
	}
	bool stopped = slot < NPROD ? atomic_load(&sh->stop_producers)
				    : atomic_load(&sh->stop_consumers);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && stopped) {
		k->done = true;
		return;
	}
	check_errors();
	if (WIFEXITED(status))
		fail(true, "%s (pid %d) exited with status %d", slot_name(slot),
		     pid, WEXITSTATUS(status));
	fail(true, "%s (pid %d) died of signal %d (%s)", slot_name(slot), pid,
	     WTERMSIG(status), strsignal(WTERMSIG(status)));
}

static void reap(void)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < NCHILD; i++)
			if (D.kids[i].pid == pid) {
				reaped(i, status);
				break;
			}
	}
}

static void kill_child(int slot)
{
	struct child *k = &D.kids[slot];
	if (k->pid <= 0 || k->killed)
		return;
	k->killed = true;
	kill(k->pid, SIGKILL);
}

/* Progress watch: fail at once on an eviction (the grace is far longer
 * than a restart) and when work is pending but nothing moved for stall_s. */
static struct {
	uint64_t claim, pos[NCONS], since;
} watch;

static void watch_progress(void)
{
	uint64_t claim = atomic_load(&D.ch->hdr->claim), t = now_ns();
	bool moved = claim != watch.claim, pending = false;
	watch.claim = claim;
	for (int k = 0; k < NCONS; k++) {
		struct ch_subscriber *e = &D.ch->subs[D.rows[k]];
		if (atomic_load(&e->state) == SUB_EVICTED)
			fail(true,
			     "%s was evicted: a stall longer than the grace "
			     "time (%u ms)",
			     e->name, D.o.grace_ms);
		uint64_t cur = atomic_load(&e->cursor);
		moved |= cur != watch.pos[k];
		pending |= cur != claim;
		watch.pos[k] = cur;
	}
	if (moved || !pending || watch.since == 0)
		watch.since = t;
	else if (t - watch.since > D.o.stall_s * 1000000000ull)
		fail(true, "no consumer moved for %u s while records are pending",
		     D.o.stall_s);
}

static void tick(void)
{
	if (interrupted)
		fail(true, "interrupted");
	reap();
	check_errors();
	watch_progress();
}

/* Options from an argument vector (the command line, or the words of
 * SHMBUS_CHAOS_ARGS); 0, or -1 on a bad one. */
static int parse_args(int argc, char **argv, struct opts *o, bool *seeded)
{
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--keyed") == 0) {
			o->keyed = true;
			continue;
		}
		if (strcmp(a, "--try-claims") == 0) {
			o->try_only = true;
			continue;
		}
		if (a[0] != '-') {
			o->seed = strtoull(a, NULL, 0);
			*seeded = true;
			continue;
		}
		if (v == NULL)
			return -1;
		i++;
		if (strcmp(a, "--seed") == 0) {
			o->seed = strtoull(v, NULL, 0);
			*seeded = true;
		} else if (strcmp(a, "--duration") == 0) {
			o->duration_s = atof(v);
		} else if (strcmp(a, "--kills") == 0) {
			o->min_deaths = (uint32_t)strtoul(v, NULL, 10);
		} else if (strcmp(a, "--rate") == 0) {
			o->rate = (uint32_t)strtoul(v, NULL, 10);
		} else if (strcmp(a, "--capacity") == 0) {
			o->capacity = (uint32_t)strtoul(v, NULL, 10);
		} else if (strcmp(a, "--grace") == 0) {
			o->grace_ms = (uint32_t)strtoul(v, NULL, 10);
		} else if (strcmp(a, "--arm") == 0) {
			o->arm_pct = (uint32_t)strtoul(v, NULL, 10);
		} else if (strcmp(a, "--policy") == 0) {
			if (strcmp(v, "block") && strcmp(v, "evict"))
				return -1;
			o->block_policy = strcmp(v, "block") == 0;
		} else {
			return -1;
		}
	}
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){.duration_s = 60,
			   .min_deaths = 200,
			   .rate = 25000,
			   .capacity = 256,
			   .grace_ms = 4000,
			   .arm_pct = 40,
			   .kill_min_ms = 10,
			   .kill_max_ms = 330,
			   .stall_s = 20};
	const char *e;
	bool seeded = false;
	if ((e = getenv("SHMBUS_CHAOS_SEED")) && *e) {
		o->seed = strtoull(e, NULL, 0);
		seeded = true;
	}
	if ((e = getenv("SHMBUS_CHAOS_DURATION")) && *e)
		o->duration_s = atof(e);
	if ((e = getenv("SHMBUS_CHAOS_KILLS")) && *e)
		o->min_deaths = (uint32_t)strtoul(e, NULL, 10);
	if ((e = getenv("SHMBUS_CHAOS_ARGS")) && *e) {
		/* for ctest, which passes no arguments */
		char *words = strdup(e), *w[32], *save = NULL;
		int n = 0;
		for (char *t = strtok_r(words, " \t", &save); t && n < 32;
		     t = strtok_r(NULL, " \t", &save))
			w[n++] = t;
		int rc = parse_args(n, w, o, &seeded);
		free(words);
		if (rc)
			return -1;
	}
	if (parse_args(argc - 1, argv + 1, o, &seeded))
		return -1;
	if (!seeded) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		o->seed = (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec ^
			  (uint64_t)getpid() << 32;
	}
	if (o->rate == 0 || o->duration_s <= 0 || o->capacity < 16 ||
	    (o->capacity & (o->capacity - 1)) ||
	    o->kill_max_ms < o->kill_min_ms)
		return -1;
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: chaos [SEED] [--seed N] [--duration S] [--kills N] "
		"[--rate R]\n"
		"             [--capacity C] [--grace MS] [--arm PCT] "
		"[--policy evict|block] [--keyed]\n"
		"             [--try-claims]\n"
		"environment: SHMBUS_CHAOS_SEED, SHMBUS_CHAOS_DURATION, "
		"SHMBUS_CHAOS_KILLS,\n"
		"             SHMBUS_CHAOS_ARGS (options as above, for ctest)\n");
}

/* A run that has not seen min_deaths by its duration goes on for at most
 * this much longer. */
#define OVERTIME_S 120

/* The shared mapping, sized for the run: counters a producer can reach at
 * its rate over the longest run, sequences for both plus holes. */
static void make_shared(void)
{
	double longest = D.o.duration_s + OVERTIME_S + 60;
	uint64_t cmax = (uint64_t)(D.o.rate * longest) + 4096;
	if (cmax > (UINT32_MAX >> 1) - 1)
		cmax = (UINT32_MAX >> 1) - 1;
	uint64_t smax = NPROD * cmax + (1u << 20);
	uint64_t off = (sizeof(struct shared) + 4095) & ~4095ull;
	uint64_t off_seq_pc = off;
	off += (smax * 4 + 4095) & ~4095ull;
	uint64_t off_cnt_seq = off;
	off += (NCONS * smax + 4095) & ~4095ull;
	uint64_t off_cnt_pc = off;
	off += (NCONS * NPROD * cmax + 4095) & ~4095ull;
	D.memfd = memfd_create("shmbus-chaos", 0); /* inherited by exec */
	if (D.memfd < 0 || ftruncate(D.memfd, (off_t)off) != 0)
		fail(false, "memfd of %" PRIu64 " bytes: %s", off,
		     strerror(errno));
	struct shared *m = mmap(NULL, off, PROT_READ | PROT_WRITE, MAP_SHARED,
				D.memfd, 0);
	if (m == MAP_FAILED)
		fail(false, "mmap: %s", strerror(errno));
	m->cmax = cmax;
	m->smax = smax;
	m->rate = D.o.rate;
	m->ordered_group = D.o.keyed;
	m->try_only = D.o.try_only;
	m->off_seq_pc = off_seq_pc;
	m->off_cnt_seq = off_cnt_seq;
	m->off_cnt_pc = off_cnt_pc;
	m->size = off;
	munmap(m, off);
	map_shared(D.memfd, off);
}

static int noop(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	(void)ctx;
	return 0;
}

/* The bus, the channel, the durable names (made before any producer, so
 * that every record is owed to them), the watchdog. */
static void make_bus(void)
{
	static char name[48];
	snprintf(name, sizeof(name), "chaos%d", (int)getpid());
	shmbus_unlink(name);
	D.bus_name = name;
	shmbus_channel_opts_t co = {
		.record_size = sizeof(struct rec),
		.capacity = D.o.capacity,
		.layout_hash = 0xc4a05,
		.flags = SHMBUS_CH_MULTI_PRODUCER,
		.stall_policy = D.o.block_policy ? SHMBUS_STALL_BLOCK
						 : SHMBUS_STALL_EVICT};
	if (shmbus_open(name, NULL, &D.bus) ||
	    shmbus_channel_open(D.bus, CHANNEL, &co, &D.ch))
		fail(false, "bus: %s", shmbus_errmsg());
	for (int k = 0; k < NCONS; k++) {
		shmbus_sub_opts_t so = {.name = k < NSUB ? slot_name(NPROD + k)
							 : GROUP,
					.flags = k == GROUP_K && D.o.keyed
							 ? SHMBUS_GROUP_KEYED
							 : 0};
		shmbus_sub_t *s;
		int rc = k < NSUB ? shmbus_subscribe(D.ch, noop, NULL, &so, &s)
				  : shmbus_group_join(D.ch, noop, NULL, &so, &s);
		if (rc || shmbus_sub_close(s, 0))
			fail(false, "%s: %s", so.name, shmbus_errmsg());
		D.rows[k] = -1;
		for (uint32_t i = 0; i < D.ch->max_subs; i++)
			if (atomic_load(&D.ch->subs[i].state) != SUB_FREE &&
			    strcmp(D.ch->subs[i].name, so.name) == 0)
				D.rows[k] = (int)i;
		if (D.rows[k] < 0)
			fail(false, "no row for %s", so.name);
	}
	shmbus_watchdog_opts_t wo = {.period_ms = 5,
				     .evict_grace_ms = D.o.grace_ms};
	if (shmbus_watchdog_start(D.bus, &wo, &D.wd))
		fail(false, "watchdog: %s", shmbus_errmsg());
}

/* Library failpoints this build knows (the driver is the same binary as
 * its children, so arming here says what arming there will do). */
static void probe_failpoints(void)
{
	char spec[96];
	for (int i = 0; i < NFP; i++) {
		if (!failpoints[i].library)
			continue;
		snprintf(spec, sizeof(spec), "%s:1", failpoints[i].name);
		failpoint_arm(spec);
		failpoints[i].enabled = shmbus_failpoints_armed != 0;
		failpoint_arm(NULL);
		if (!failpoints[i].enabled)
			printf("chaos: note: this library has no failpoint "
			       "'%s'; skipped\n",
			       failpoints[i].name);
	}
}

static void chaos_phase(void)
{
	uint64_t end = D.t0 + (uint64_t)(D.o.duration_s * 1e9);
	uint64_t hard_end = end + OVERTIME_S * 1000000000ull;
	uint64_t span = D.o.kill_max_ms - D.o.kill_min_ms + 1;
	uint64_t next_kill = D.t0 + (D.o.kill_min_ms + rnd(&D.rng, span)) *
					    1000000ull;
	uint64_t next_report = D.t0 + 15000000000ull;
	for (;;) {
		tick();
		uint64_t t = now_ns();
		if (t >= end && total_deaths() >= D.o.min_deaths)
			break;
		if (t >= hard_end)
			fail(true, "only %" PRIu64 " deaths in %.0f s (want %u)",
			     total_deaths(), (t - D.t0) / 1e9, D.o.min_deaths);
		if (t >= next_kill) {
			/* mostly one victim; sometimes a few at once */
			int n = rnd(&D.rng, 100) < 5 ? 2 + (int)rnd(&D.rng, 2)
						     : 1;
			for (int i = 0; i < n; i++)
				kill_child((int)rnd(&D.rng, NCHILD));
			next_kill = t + (D.o.kill_min_ms + rnd(&D.rng, span)) *
						1000000ull;
		}
		if (t >= next_report) {
			printf("chaos: %3.0f s: %" PRIu64 " deaths, claim %" PRIu64
			       ", accepted %" PRIu64 " + %" PRIu64 "\n",
			       (t - D.t0) / 1e9, total_deaths(),
			       atomic_load(&D.ch->hdr->claim),
			       atomic_load(&sh->progress[0]),
			       atomic_load(&sh->progress[1]));
			fflush(stdout);
			next_report += 15000000000ull;
		}
		sleep_ns(1000000);
	}
}

/* Every child alive and disarmed: kill the armed ones, restart plain. */
static void disarm_all(void)
{
	D.final = true;
	for (int i = 0; i < NCHILD; i++)
		if (D.kids[i].fp >= 0)
			kill_child(i);
	uint64_t limit = now_ns() + 20000000000ull;
	for (;;) {
		tick();
		bool all = true;
		for (int i = 0; i < NCHILD; i++)
			all &= D.kids[i].pid > 0 && D.kids[i].fp < 0;
		if (all)
			return;
		if (now_ns() > limit)
			fail(true, "children did not come back disarmed");
		sleep_ns(1000000);
	}
}

static void wait_done(int from, int to, const char *what)
{
	uint64_t limit = now_ns() + 30000000000ull;
	for (;;) {
		tick();
		bool all = true;
		for (int i = from; i < to; i++)
			all &= D.kids[i].done;
		if (all)
			return;
		if (now_ns() > limit)
			fail(true, "%s did not stop within 30 s", what);
		sleep_ns(1000000);
	}
}

/* Stop producers, let every consumer reach the claim, stop consumers. */
static uint64_t drain(void)
{
	atomic_store(&sh->stop_producers, 1);
	wait_done(0, NPROD, "producers");
	uint64_t claim = atomic_load(&D.ch->hdr->claim);
	uint64_t limit = now_ns() + 60000000000ull;
	for (;;) {
		tick();
		bool all = true;
		for (int k = 0; k < NCONS; k++)
			all &= atomic_load(&D.ch->subs[D.rows[k]].cursor) ==
			       claim;
		/* and no failed record still waits for its redelivery: a
		 * cursor passes a record once it is in the retry segment */
		shmbus_sub_info_t in[NCONS + 4];
		int n = all ? shmbus_sub_list(D.ch, in, NCONS + 4) : 0;
		for (int i = 0; i < n; i++)
			all &= in[i].retry_pending == 0 && !in[i].holding;
		if (all)
			break;
		if (now_ns() > limit)
			fail(true,
			     "consumers did not reach the claim %" PRIu64
			     " within 60 s of the producers' stop",
			     claim);
		sleep_ns(2000000);
	}
	atomic_store(&sh->stop_consumers, 1);
	wait_done(NPROD, NCHILD, "consumers");
	return claim;
}

/* The watchdog's counters, once a whole pass has run after the drain (it
 * counts a repair after the pass that made it). */
static shmbus_watchdog_stats_t watchdog_stats(void)
{
	shmbus_watchdog_stats_t a, b;
	shmbus_watchdog_get_stats(D.wd, &a);
	uint64_t limit = now_ns() + 5000000000ull;
	do {
		sleep_ns(5000000);
		shmbus_watchdog_get_stats(D.wd, &b);
	} while (b.passes < a.passes + 2 && now_ns() < limit);
	return b;
}

#define MAX_REPORT 5

static void check(uint64_t claim, const shmbus_watchdog_stats_t *ws)
{
	uint64_t acc[NPROD], accepted = 0;
	for (int p = 0; p < NPROD; p++) {
		acc[p] = atomic_load(&sh->progress[p]);
		accepted += acc[p];
		if (acc[p] == 0)
			fail(false, "producer %d published nothing", p);
	}
	if (claim > sh->smax)
		fail(false, "claim %" PRIu64 " beyond the arrays", claim);
	/* per sequence: all consumers or none; duplicates explained */
	uint8_t *copies = calloc(NPROD * sh->cmax, 1);
	/* losses: (consumer, accepted record) never delivered; partial:
	 * committed sequences that reached some consumers, not all */
	uint64_t tombstones = 0, losses = 0, partial = 0, phantoms = 0;
	uint64_t republished = 0;
	uint64_t dup[NCONS] = {0}, unexplained[NSUB] = {0};
	uint64_t *starts[NSUB];
	uint32_t nst[NSUB], lo[NSUB] = {0}, hi[NSUB] = {0};
	for (int k = 0; k < NSUB; k++) {
		uint32_t n = atomic_load(&sh->n_starts[k]);
		if (n > MAX_STARTS)
			fail(false, "more than %d restarts of %s", MAX_STARTS,
			     slot_name(NPROD + k));
		starts[k] = malloc((n + 1) * sizeof(uint64_t));
		nst[k] = 0;
		for (uint32_t i = 0; i < n; i++) /* cursors only grow */
			if (sh->starts[k][i])
				starts[k][nst[k]++] = sh->starts[k][i] - 1;
	}
	int reported = 0;
	for (uint64_t s = 0; s < claim; s++) {
		uint32_t v = seq_pc[s];
		int got = 0;
		for (int k = 0; k < NCONS; k++)
			got += *seq_count(k, s) > 0;
		if (v == 0 && got == 0) {
			tombstones++;
			continue;
		}
		uint64_t p = v & 1, c = (v >> 1) - 1;
		if (got < NCONS) {
			partial++;
			for (int k = 0; k < NCONS && reported < MAX_REPORT; k++)
				if (*seq_count(k, s) == 0) {
					fprintf(stderr,
						"chaos: seq %" PRIu64
						" (%" PRIu64 ", %" PRIu64
						") never reached %s\n",
						s, p, c,
						k < NSUB ? slot_name(NPROD + k)
							 : GROUP);
					reported++;
				}
		}
		if (c >= acc[p]) {
			phantoms++;
			if (reported++ < MAX_REPORT)
				fprintf(stderr,
					"chaos: seq %" PRIu64 " carries (%" PRIu64
					", %" PRIu64 "), never accepted (%" PRIu64
					" were)\n",
					s, p, c, acc[p]);
			continue;
		}
		if (copies[p * sh->cmax + c]++ > 0)
			republished++;
		for (int k = 0; k < NCONS; k++) {
			uint8_t n = *seq_count(k, s);
			if (n < 2)
				continue;
			dup[k] += n - 1u;
			/* a retried record comes again if its taker died */
			if (k >= NSUB || fails_first(c))
				continue;
			/* resumes at a cursor in (s - batch, s] */
			while (hi[k] < nst[k] && starts[k][hi[k]] <= s)
				hi[k]++;
			while (lo[k] < hi[k] &&
			       starts[k][lo[k]] + sub_batch[k] <= s)
				lo[k]++;
			if (n - 1u > hi[k] - lo[k]) {
				unexplained[k] += n - 1u - (hi[k] - lo[k]);
				if (reported++ < MAX_REPORT)
					fprintf(stderr,
						"chaos: %s got seq %" PRIu64
						" %u times, but resumed within "
						"a batch before it only %u "
						"times\n",
						slot_name(NPROD + k), s, n,
						hi[k] - lo[k]);
			}
		}
	}
	/* nothing beyond the claim */
	for (uint64_t s = claim; s < sh->smax && s < claim + D.o.capacity; s++)
		if (seq_pc[s])
			fail(false, "seq %" PRIu64 " beyond the claim %" PRIu64
				    " was delivered", s, claim);
	/* per accepted record */
	for (int p = 0; p < NPROD; p++)
		for (uint64_t c = 0; c < acc[p]; c++)
			for (int k = 0; k < NCONS; k++)
				if (*pc_count(k, (uint64_t)p, c) == 0) {
					losses++;
					if (reported++ < MAX_REPORT)
						fprintf(stderr,
							"chaos: accepted (%d, %" PRIu64
							") never reached %s\n",
							p, c,
							k < NSUB ? slot_name(
									   NPROD + k)
								 : GROUP);
				}
	free(copies);
	for (int k = 0; k < NSUB; k++)
		free(starts[k]);

	/* the report */
	uint64_t random = 0, fps = 0;
	for (int i = 0; i < NCHILD; i++)
		random += D.random_kills[i];
	for (int i = 0; i < NFP; i++)
		fps += D.fp_deaths[i];
	uint64_t by_role[3] = {0};
	for (int i = 0; i < NCHILD; i++)
		by_role[role_of(i) >> 1] += D.random_kills[i];
	char fpl[512] = "";
	size_t off = 0;
	for (int i = 0; i < NFP; i++)
		if (D.fp_deaths[i])
			off += (size_t)snprintf(fpl + off, sizeof(fpl) - off,
						"%s%s %" PRIu64, off ? ", " : "",
						failpoints[i].name,
						D.fp_deaths[i]);
	uint64_t sub_deaths[NSUB], group_deaths = 0;
	for (int k = 0; k < NSUB; k++)
		sub_deaths[k] = D.deaths[NPROD + k];
	for (int i = NPROD + NSUB; i < NCHILD; i++)
		group_deaths += D.deaths[i];
	printf("chaos: seed %" PRIu64 " | %.1f s | deaths %" PRIu64
	       ": random %" PRIu64 " (producers %" PRIu64 ", subscribers %" PRIu64
	       ", group %" PRIu64 "), failpoints %" PRIu64 " (%s)\n",
	       D.o.seed, (now_ns() - D.t0) / 1e9, total_deaths(), random,
	       by_role[0], by_role[1], by_role[2], fps, fpl);
	printf("chaos: records accepted %" PRIu64 " (sequences %" PRIu64
	       ") | duplicates: redelivered sub0 %" PRIu64 ", sub1 %" PRIu64
	       ", group %" PRIu64 "; republished %" PRIu64
	       " | tombstones %" PRIu64 " (watchdog %" PRIu64
	       ", skips seen %" PRIu64 "/%" PRIu64 "/%" PRIu64
	       ") | evicted %" PRIu64 " | losses %" PRIu64 "\n",
	       accepted, claim, dup[0], dup[1], dup[GROUP_K], republished,
	       tombstones, ws->tombstones, atomic_load(&sh->skips[0]),
	       atomic_load(&sh->skips[1]), atomic_load(&sh->skips[GROUP_K]),
	       ws->evicted, losses);
	printf("chaos: handler failures (first deliveries) %" PRIu64 "/%" PRIu64
	       "/%" PRIu64 ", redeliveries handled %" PRIu64 "/%" PRIu64
	       "/%" PRIu64 "\n",
	       atomic_load(&sh->failed[0]), atomic_load(&sh->failed[1]),
	       atomic_load(&sh->failed[GROUP_K]), atomic_load(&sh->retried[0]),
	       atomic_load(&sh->retried[1]),
	       atomic_load(&sh->retried[GROUP_K]));
	fflush(stdout);

	/* the verdict */
	if (losses || partial || phantoms)
		fail(false,
		     "%" PRIu64 " losses, %" PRIu64 " sequences delivered to "
		     "some consumers only, %" PRIu64 " phantom records",
		     losses, partial, phantoms);
	if (tombstones != ws->tombstones)
		fail(false,
		     "%" PRIu64 " sequences reached no consumer, but the "
		     "watchdog made %" PRIu64 " tombstones",
		     tombstones, ws->tombstones);
	if (tombstones < D.hole_deaths)
		fail(false,
		     "%" PRIu64 " deaths between claim and commit left only %" PRIu64
		     " tombstones",
		     D.hole_deaths, tombstones);
	/* each hole and each republished record was in flight when its
	 * producer died */
	if (tombstones + republished > D.inflight_budget)
		fail(false,
		     "%" PRIu64 " tombstones + %" PRIu64 " republished, but "
		     "producers had only %" PRIu64 " records in flight at their "
		     "deaths",
		     tombstones, republished, D.inflight_budget);
	for (int k = 0; k < NSUB; k++) {
		if (unexplained[k])
			fail(false,
			     "%s: %" PRIu64 " deliveries are not redeliveries "
			     "after a kill",
			     slot_name(NPROD + k), unexplained[k]);
		/* a belt to those braces: a batch per death at most */
		if (dup[k] > sub_deaths[k] * sub_batch[k])
			fail(false,
			     "%s: %" PRIu64 " duplicates after %" PRIu64
			     " deaths of batch %u",
			     slot_name(NPROD + k), dup[k], sub_deaths[k],
			     sub_batch[k]);
	}
	/* a dying member leaves at most the run it had taken */
	if (dup[GROUP_K] > group_deaths * GROUP_RUN_MAX)
		fail(false, "group: %" PRIu64 " duplicates after %" PRIu64
			    " member deaths",
		     dup[GROUP_K], group_deaths);
	if (ws->evicted)
		fail(false, "%" PRIu64 " evictions", ws->evicted);
	if (total_deaths() < D.o.min_deaths)
		fail(false, "only %" PRIu64 " deaths", total_deaths());
	for (int p = 0; p < NPROD; p++)
		if (atomic_load(&sh->capped[p]))
			printf("chaos: note: producer %d reached the arrays' "
			       "end and idled\n",
			       p);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--child") == 0)
		return child_main(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse_opts(argc, argv, &D.o) != 0) {
		usage();
		return 2;
	}
	/* the seed first, whatever happens next */
	printf("chaos: seed %" PRIu64 "\n", D.o.seed);
	failpoint_arm(NULL); /* the driver is never killed */
	D.rng = D.o.seed;
	ssize_t n = readlink("/proc/self/exe", D.exe, sizeof(D.exe) - 1);
	if (n <= 0)
		fail(false, "/proc/self/exe: %s", strerror(errno));
	D.exe[n] = 0;
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	probe_failpoints();
	make_shared();
	make_bus();
	printf("chaos: bus %s, capacity %u, %s policy (grace %u ms), %d "
	       "producers at %u/s%s, subscribers sub0 (batch %u) sub1 (batch "
	       "%u), %sgroup '%s' of %d; %.0f s, at least %u deaths\n",
	       D.bus_name, D.o.capacity, D.o.block_policy ? "block" : "evict",
	       D.o.grace_ms, NPROD, D.o.rate,
	       D.o.try_only ? " (non-blocking claims only)" : "", sub_batch[0],
	       sub_batch[1],
	       D.o.keyed ? "keyed " : "", GROUP, NMEMB, D.o.duration_s,
	       D.o.min_deaths);
	D.t0 = now_ns();
	/* consumers first: they hold nothing up, producers then find them */
	for (int i = NPROD; i < NCHILD; i++)
		spawn(i);
	for (int i = 0; i < NPROD; i++)
		spawn(i);
	chaos_phase();
	disarm_all();
	uint64_t claim = drain();
	shmbus_watchdog_stats_t ws = watchdog_stats();
	shmbus_watchdog_close(D.wd);
	D.wd = NULL;
	check(claim, &ws);
	cleanup();
	printf("chaos: PASS (seed %" PRIu64 ")\n", D.o.seed);
	return 0;
}
