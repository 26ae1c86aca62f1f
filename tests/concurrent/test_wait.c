/*
 * Wait strategies (wait.c), below the subscriber: each strategy wakes on
 * a flag set by another process, block sleeps counted and the others
 * never writing the sleepers' word, time-outs and due times kept, and
 * signals: a producer's wait goes on through one, a spinning wait sees
 * one only at its time-out. (Subscribers' time-outs: test_ring.c; a
 * signal ending a subscriber's or poller's wait, and block wake-ups:
 * test_multiproc.c.)
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>

#include "helpers.h"
#include "wait.h"

/* What a waiter and the other process share. */
struct shared {
	struct ck_ec32 ec;
	_Atomic uint32_t sleepers;
	_Atomic uint64_t set_ns;   /* when the flag was set; 0: not yet */
	uint32_t sleepers_seen;    /* the count when the flag was set */
};

static const uint32_t strategies[] = {SHMBUS_WAIT_SPIN, SHMBUS_WAIT_YIELD,
				      SHMBUS_WAIT_BACKOFF, SHMBUS_WAIT_BLOCK};
#define N_STRATEGIES (sizeof(strategies) / sizeof(strategies[0]))

static bool flag_set(void *arg)
{
	struct shared *sh = arg;
	/* acquire: pairs with the setter's release store */
	return atomic_load_explicit(&sh->set_ns, memory_order_acquire) != 0;
}

static bool never(void *arg)
{
	(void)arg;
	return false;
}

static struct shared *shared_new(void)
{
	struct shared *sh = shared_alloc(sizeof(*sh));
	cr_assert_not_null(sh);
	ck_ec32_init(&sh->ec, 0);
	return sh;
}

/* A child that sets the flag after ms milliseconds and wakes the
 * sleepers, as a committing producer does. */
static pid_t set_later(struct shared *sh, unsigned ms)
{
	pid_t pid = test_fork();
	if (pid == 0) {
		usleep(ms * 1000);
		sh->sleepers_seen = atomic_load(&sh->sleepers);
		/* release: the flag's store, then the wake (wait.h) */
		atomic_store_explicit(&sh->set_ns, shmbus_now_ns(),
				      memory_order_release);
		wake_sleepers(&sh->ec, &sh->sleepers);
		_exit(0);
	}
	return pid;
}

/* A lost wake costs a sleep slice (WAIT_SLICE_NS, 100 ms): with the flag
 * set 130 ms in, a block wait would wake 70 ms late every time. The best
 * of three rounds counts, as a loaded machine may delay one. */
Test(wait, each_strategy_wakes_on_a_flag_set_in_another_process,
     .timeout = 60)
{
	struct shared *sh = shared_new();
	int counted = 0;
	for (size_t i = 0; i < N_STRATEGIES; i++) {
		uint64_t best = UINT64_MAX;
		for (int round = 0; round < 3; round++) {
			atomic_store(&sh->set_ns, 0);
			uint64_t t0 = shmbus_now_ns();
			pid_t pid = set_later(sh, 130);
			int rc = wait_until(strategies[i], &sh->ec,
					    &sh->sleepers, 5000000000ull,
					    flag_set, sh);
			uint64_t woke = shmbus_now_ns();
			cr_assert_eq(child_status(pid), 0);
			cr_expect_eq(rc, 0, "strategy %u: %d", strategies[i],
				     rc);
			uint64_t set = atomic_load(&sh->set_ns);
			cr_expect_geq(woke, set, "strategy %u woke before the "
					       "flag was set",
				      strategies[i]);
			cr_expect_geq(set - t0, 120000000ull);
			if (woke - set < best)
				best = woke - set;
			/* block sleeps counted (but for the instant between
			 * two slices); the others never write the count */
			if (strategies[i] == SHMBUS_WAIT_BLOCK)
				counted += sh->sleepers_seen == 1;
			else
				cr_expect_eq(sh->sleepers_seen, 0,
					     "strategy %u", strategies[i]);
			cr_expect_eq(atomic_load(&sh->sleepers), 0);
		}
		cr_expect_lt(best, 50000000ull,
			     "strategy %u woke %.1f ms after the flag at best",
			     strategies[i], (double)best / 1e6);
	}
	cr_expect_geq(counted, 2, "block counted itself asleep in %d of 3",
		      counted);
}

static uint32_t timed_strategy;

static int wait_never(void *h, uint64_t ns)
{
	return wait_until(timed_strategy, &((struct shared *)h)->ec,
			  &((struct shared *)h)->sleepers, ns, never, NULL);
}

/* Spin included (test_ring.c checks the others through subscribers). */
Test(wait, every_strategy_times_out_on_time, .timeout = 60)
{
	struct shared *sh = shared_new();
	for (size_t i = 0; i < N_STRATEGIES; i++) {
		char why[128];
		timed_strategy = strategies[i];
		cr_expect(waits_on_time(wait_never, sh, why, sizeof(why)),
			  "strategy %u: %s", strategies[i], why);
	}
}

/* wait_until_due, strategy s, that must return want: how long it took
 * (never less than at_least), the least of three runs. */
static uint64_t due_wait(struct shared *sh, uint32_t s, uint64_t timeout_ns,
			 uint64_t due_in, int want, uint64_t at_least)
{
	uint64_t best = UINT64_MAX;
	for (int i = 0; i < 3; i++) {
		uint64_t t0 = shmbus_now_ns();
		int rc = wait_until_due(s, &sh->ec, &sh->sleepers, timeout_ns,
					t0 + due_in, never, NULL);
		uint64_t took = shmbus_now_ns() - t0;
		cr_expect_eq(rc, want, "strategy %u: %d", s, rc);
		cr_expect_geq(took, at_least, "strategy %u: %.1f ms", s,
			      (double)took / 1e6);
		if (took < best)
			best = took;
	}
	return best;
}

/* wait_until_due: 0 at the due time (a retry falls due), never before;
 * the time-out when it comes first; 0 at once for a due time past
 * (due_in -1: t0 - 1). The least of three runs is bounded. */
Test(wait, a_due_time_ends_the_wait_with_zero, .timeout = 60)
{
	struct shared *sh = shared_new();
	for (size_t i = 0; i < N_STRATEGIES; i++) {
		uint32_t s = strategies[i];
		uint64_t took = due_wait(sh, s, 1000000000ull, 30000000ull, 0,
					 30000000ull);
		cr_expect_lt(took, 45000000ull, "strategy %u: %.1f ms", s,
			     (double)took / 1e6);
		took = due_wait(sh, s, 20000000ull, 5000000000ull,
				SHMBUS_EAGAIN, 20000000ull);
		cr_expect_lt(took, 35000000ull, "strategy %u: %.1f ms", s,
			     (double)took / 1e6);
		took = due_wait(sh, s, 0, (uint64_t)-1, 0, 0);
		cr_expect_lt(took, 1000000ull);
	}
}

static volatile sig_atomic_t caught;

static void on_usr1(int sig)
{
	caught = sig;
}

/* A child that signals the parent after sig_ms, then sets the flag after
 * set_ms in all. */
static pid_t signal_then_set(struct shared *sh, unsigned sig_ms,
			     unsigned set_ms)
{
	pid_t parent = getpid(), pid = test_fork();
	if (pid == 0) {
		usleep(sig_ms * 1000);
		kill(parent, SIGUSR1);
		if (set_ms) {
			usleep((set_ms - sig_ms) * 1000);
			/* release: pairs with flag_set's acquire */
			atomic_store_explicit(&sh->set_ns, shmbus_now_ns(),
					      memory_order_release);
			wake_sleepers(&sh->ec, &sh->sleepers);
		}
		_exit(0);
	}
	return pid;
}

/* wait.h: a producer's wait (wait_until) goes on through a signal whose
 * handler ran: a claim, once waited for, must not fail for a signal. */
Test(wait, a_producers_wait_goes_on_through_a_signal, .timeout = 60)
{
	struct sigaction sa = {.sa_handler = on_usr1}; /* no SA_RESTART */
	cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	struct shared *sh = shared_new();
	for (size_t i = 1; i < N_STRATEGIES; i++) { /* the sleeping ones */
		caught = 0;
		atomic_store(&sh->set_ns, 0);
		pid_t pid = signal_then_set(sh, 50, 200);
		int rc = wait_until(strategies[i], &sh->ec, &sh->sleepers,
				    5000000000ull, flag_set, sh);
		uint64_t woke = shmbus_now_ns();
		cr_assert_eq(child_status(pid), 0);
		cr_expect_eq(rc, 0, "strategy %u: %d", strategies[i], rc);
		cr_expect_eq(caught, SIGUSR1, "strategy %u: no handler ran",
			     strategies[i]);
		uint64_t set = atomic_load(&sh->set_ns);
		cr_expect(set != 0 && woke >= set,
			  "strategy %u ended before the flag was set",
			  strategies[i]);
	}
	signal(SIGUSR1, SIG_DFL);
}

/* shmbus.h (shmbus_sub_wait): a spinning wait sees signals only at its
 * time-out -- the handler runs at once, the wait goes on to its end. */
Test(wait, a_spinning_wait_sees_a_signal_only_at_its_time_out,
     .timeout = 60)
{
	struct sigaction sa = {.sa_handler = on_usr1};
	cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	struct shared *sh = shared_new();
	caught = 0;
	uint64_t t0 = shmbus_now_ns();
	pid_t pid = signal_then_set(sh, 50, 0);
	int rc = wait_until_due(SHMBUS_WAIT_SPIN, &sh->ec, &sh->sleepers,
				300000000ull, UINT64_MAX, never, NULL);
	uint64_t took = shmbus_now_ns() - t0;
	cr_assert_eq(child_status(pid), 0);
	cr_expect_eq(caught, SIGUSR1);
	cr_expect_eq(rc, SHMBUS_EAGAIN, "%d", rc);
	cr_expect_geq(took, 300000000ull, "%.1f ms", (double)took / 1e6);
	/* and the others end at it, with SHMBUS_EINTR */
	caught = 0;
	t0 = shmbus_now_ns();
	pid = signal_then_set(sh, 50, 0);
	rc = wait_until_due(SHMBUS_WAIT_BLOCK, &sh->ec, &sh->sleepers,
			    2000000000ull, UINT64_MAX, never, NULL);
	took = shmbus_now_ns() - t0;
	cr_assert_eq(child_status(pid), 0);
	cr_expect_eq(caught, SIGUSR1);
	cr_expect_eq(rc, SHMBUS_EINTR, "%d", rc);
	cr_expect_lt(took, 1000000000ull, "%.1f ms", (double)took / 1e6);
	signal(SIGUSR1, SIG_DFL);
}
