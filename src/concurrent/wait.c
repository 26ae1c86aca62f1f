#define _GNU_SOURCE
#include "wait.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "private_export.h"
#include "shmbus/shmbus.h"

static int ec_gettime(const struct ck_ec_ops *ops, struct timespec *out)
{
	(void)ops;
	return clock_gettime(CLOCK_MONOTONIC, out);
}

/* Shared (not private) futexes: the sleepers live in other processes. The
 * deadline ck_ec passes is absolute CLOCK_MONOTONIC, as FUTEX_WAIT_BITSET
 * expects. */
static void ec_wait32(const struct ck_ec_wait_state *st, const uint32_t *addr,
		      uint32_t expected, const struct timespec *deadline)
{
	(void)st;
	syscall(SYS_futex, addr, FUTEX_WAIT_BITSET, expected, deadline, NULL,
		FUTEX_BITSET_MATCH_ANY);
}

static void ec_wake32(const struct ck_ec_ops *ops, const uint32_t *addr)
{
	(void)ops;
	syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static void ec_wait64(const struct ck_ec_wait_state *st, const uint64_t *addr,
		      uint64_t expected, const struct timespec *deadline)
{
	ec_wait32(st, (const uint32_t *)addr, (uint32_t)expected, deadline);
}

static void ec_wake64(const struct ck_ec_ops *ops, const uint64_t *addr)
{
	ec_wake32(ops, (const uint32_t *)addr);
}

static const struct ck_ec_ops shared_ops = {
	.gettime = ec_gettime,
	.wait32 = ec_wait32,
	.wait64 = ec_wait64,
	.wake32 = ec_wake32,
	.wake64 = ec_wake64,
	.busy_loop_iter = 0, /* we spin ourselves, looking (BLOCK_SPIN) */
	/* ck_ec's back-off (2, 16, 128 ms by default) guards against the
	 * single-producer increment overwriting a sleeper's flag; our
	 * increments are atomic (multi-producer mode), so one sleep per
	 * slice is enough: fewer wake-ups of an idle sleeper */
	.initial_wait_ns = WAIT_SLICE_NS,
};

const struct ck_ec_mode shmbus_ec_mode = {
	.ops = &shared_ops,
	.single_producer = false,
};

/* Block waits spin this many turns, looking, before they sleep. */
#define BLOCK_SPIN 128u

/* ck_ec calls this before each of its sleeps: never past our deadline
 * (its steps grow from the start of its wait, not towards our time-out);
 * and, before the first, the sleeper counts itself and looks once more
 * (non-zero: ready, ck_ec returns it). */
struct sleep_plan {
	struct timespec deadline;
	_Atomic uint32_t *sleepers; /* NULL: nobody counts */
	bool (*ready)(void *arg);
	void *arg;
	bool counted;
};

static int sleep_pred(const struct ck_ec_wait_state *st,
		      struct timespec *partial)
{
	struct sleep_plan *sp = st->data;
	const struct timespec *dl = &sp->deadline;
	if (partial->tv_sec > dl->tv_sec ||
	    (partial->tv_sec == dl->tv_sec && partial->tv_nsec > dl->tv_nsec))
		*partial = *dl;
	if (sp->sleepers == NULL || sp->counted)
		return 0;
	sp->counted = true;
	atomic_fetch_add_explicit(sp->sleepers, 1, memory_order_seq_cst);
	/* seq_cst: our count visible before our last look (the waker's side
	 * and its race: wait.h, "Sleepers") */
	atomic_thread_fence(memory_order_seq_cst);
	return sp->ready(sp->arg) ? 1 : 0;
}

static struct timespec ns_to_ts(uint64_t ns)
{
	return (struct timespec){(time_t)(ns / 1000000000u),
				 (long)(ns % 1000000000u)};
}

/*
 * Signals, for the waits that a signal ends. A handler that runs between
 * two sleeps leaves no trace a wait could see, and a futex has no signal
 * mask to swap atomically (as ppoll has): so while such a wait goes on,
 * its thread holds asynchronous signals off, and lets them through where
 * it can tell that one came: in ppoll (backoff), or after each sleep
 * slice (block) or each 64 yields, when one is pending. None is lost: a
 * signal still pending at the end is delivered before the wait returns.
 */
struct sigguard {
	bool on;
	sigset_t old; /* the thread's own mask */
};

static void guard_block(sigset_t *old)
{
	sigset_t all;
	sigfillset(&all);
	/* faults are synchronous: they must act at once */
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGTRAP);
	sigdelset(&all, SIGSYS);
	pthread_sigmask(SIG_BLOCK, &all, old);
}

static void guard_off(struct sigguard *g)
{
	if (g->on)
		pthread_sigmask(SIG_SETMASK, &g->old, NULL);
	g->on = false;
}

/* Let through the signals that came meanwhile (those the thread's own mask
 * allows): true if one of them had a handler, which has run now. Signals
 * whose action is to be ignored end nothing. */
static bool guard_deliver(struct sigguard *g)
{
	sigset_t pending;
	if (sigpending(&pending) != 0)
		return false;
	bool any = false, handled = false;
	for (int sig = 1; sig < NSIG; sig++) {
		if (sigismember(&pending, sig) != 1 ||
		    sigismember(&g->old, sig) == 1)
			continue;
		struct sigaction sa;
		any = true;
		if (sigaction(sig, NULL, &sa) == 0 &&
		    sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN)
			handled = true;
	}
	if (any) { /* the handlers (or default actions) run here */
		pthread_sigmask(SIG_SETMASK, &g->old, NULL);
		guard_block(NULL);
	}
	return handled;
}

struct waiter {
	uint32_t strategy; /* shmbus_wait */
	uint32_t iter;
	uint64_t timeout_ns;  /* 0 = none */
	uint64_t deadline_ns; /* from the first look at the clock; 0 = none
			       * yet (a spinner's entry reads no clock) */
	struct sigguard g;    /* on: a signal ends the wait */
	_Atomic uint32_t *sleepers;
	bool (*ready)(void *arg);
	void *arg;
	bool slept;
};

/* Back-off's sleep, never past the deadline: 0, or SHMBUS_EINTR if a
 * signal handler ran in it (ppoll lets the thread's own mask through for
 * the sleep only; a signal without a handler restarts it). */
static int sleep_ns(const struct waiter *w, uint64_t ns)
{
	if (w->deadline_ns) {
		uint64_t now = shmbus_now_ns();
		if (w->deadline_ns > now && w->deadline_ns - now < ns)
			ns = w->deadline_ns - now;
	}
	struct timespec ts = ns_to_ts(ns);
	if (!w->g.on) {
		nanosleep(&ts, NULL);
		return 0;
	}
	return ppoll(NULL, 0, &ts, &w->g.old) != 0 && errno == EINTR
		       ? SHMBUS_EINTR
		       : 0;
}

/* One idle step: 0, SHMBUS_EAGAIN past the deadline, or SHMBUS_EINTR when
 * a signal handler ran (guarded waits only). */
static int waiter_idle(struct waiter *w, struct ck_ec32 *ec, uint32_t snap)
{
	uint32_t it = w->iter++;
	/* Reading the clock costs 20-40 ns: while spinning (the spin
	 * strategy, and the first turns of back-off and block) look at it 1
	 * time in 64, so that a spinner sees its record promptly */
	bool spinning = w->strategy == SHMBUS_WAIT_SPIN ||
			(w->strategy == SHMBUS_WAIT_BACKOFF && it < 256) ||
			(w->strategy == SHMBUS_WAIT_BLOCK && it < BLOCK_SPIN);
	if (w->timeout_ns && ((it & 63) == 63 || !spinning)) {
		uint64_t now = shmbus_now_ns();
		if (w->deadline_ns == 0) /* at most 63 spins late */
			w->deadline_ns = now + w->timeout_ns;
		else if (now >= w->deadline_ns)
			return SHMBUS_EAGAIN;
	}
	switch (w->strategy) {
	case SHMBUS_WAIT_SPIN:
		cpu_relax();
		break;
	case SHMBUS_WAIT_YIELD:
		sched_yield();
		if (w->g.on && (it & 63) == 63 && guard_deliver(&w->g))
			return SHMBUS_EINTR;
		break;
	case SHMBUS_WAIT_BACKOFF:
		if (it < 256)
			cpu_relax();
		else if (it < 320)
			sched_yield();
		else
			return sleep_ns(w, it < 400 ? 10000 : 200000);
		break;
	case SHMBUS_WAIT_BLOCK: {
		if (it < BLOCK_SPIN) { /* nobody bumps ec while we are awake */
			cpu_relax();
			break;
		}
		uint64_t slice = w->g.on ? WAIT_SIGNAL_SLICE_NS : WAIT_SLICE_NS;
		if (!w->slept) /* see "Sleepers" in wait.h */
			slice = RACE_SLICE_NS;
		w->slept = true;
		uint64_t until = shmbus_now_ns() + slice;
		if (w->deadline_ns && w->deadline_ns < until)
			until = w->deadline_ns;
		struct sleep_plan sp = {ns_to_ts(until), w->sleepers, w->ready,
					w->arg, false};
		ck_ec32_wait_pred(ec, &shmbus_ec_mode, snap, sleep_pred, &sp,
				  &sp.deadline);
		if (sp.counted) /* relaxed: a waker that still sees us
				 * bumps the count once more, harmlessly */
			atomic_fetch_sub_explicit(w->sleepers, 1,
						  memory_order_relaxed);
		if (w->g.on && guard_deliver(&w->g))
			return SHMBUS_EINTR;
		break;
	}
	default:
		cpu_relax();
	}
	return 0;
}

/* The loop of both waits; intr: a signal handler ends it (SHMBUS_EINTR). */
static int wait_loop(uint32_t strategy, struct ck_ec32 *ec,
		     _Atomic uint32_t *sleepers, uint64_t timeout_ns,
		     bool intr, bool (*ready)(void *arg), void *arg)
{
	struct waiter w = {.strategy = strategy,
			   .timeout_ns = timeout_ns,
			   .sleepers = sleepers,
			   .ready = ready,
			   .arg = arg};
	int rc = 0;
	for (;;) {
		/* block: snapshot the count before testing, so a bump after
		 * the test ends the sleep (ck_ec's protocol) */
		uint32_t snap =
			strategy == SHMBUS_WAIT_BLOCK ? ck_ec32_value(ec) : 0;
		if (ready(arg))
			break;
		if (intr && !w.g.on && strategy != SHMBUS_WAIT_SPIN &&
		    (strategy != SHMBUS_WAIT_BACKOFF || w.iter >= 256) &&
		    (strategy != SHMBUS_WAIT_BLOCK || w.iter >= BLOCK_SPIN)) {
			/* about to give the cpu up (back-off and block spin
			 * first, without the two system calls): from here no
			 * signal goes unseen */
			guard_block(&w.g.old);
			w.g.on = true;
			continue; /* and look once more */
		}
		rc = waiter_idle(&w, ec, snap);
		if (rc == SHMBUS_EAGAIN || (rc == SHMBUS_EINTR && intr))
			break;
		rc = 0;
	}
	guard_off(&w.g);
	return rc;
}

int wait_until(uint32_t strategy, struct ck_ec32 *ec,
	       _Atomic uint32_t *sleepers, uint64_t timeout_ns,
	       bool (*ready)(void *arg), void *arg)
{
	return wait_loop(strategy, ec, sleepers, timeout_ns, false, ready,
			 arg);
}
SHMBUS_PRIVATE_EXPORT(wait_until);

void waiter_wake(struct ck_ec32 *ec)
{
	ck_ec32_inc(ec, &shmbus_ec_mode);
}

int wait_until_due(uint32_t strategy, struct ck_ec32 *ec,
		   _Atomic uint32_t *sleepers, uint64_t timeout_ns,
		   uint64_t due, bool (*ready)(void *arg), void *arg)
{
	if (due == UINT64_MAX)
		return wait_loop(strategy, ec, sleepers, timeout_ns, true,
				 ready, arg);
	uint64_t now = shmbus_now_ns();
	if (due <= now)
		return 0;
	if (timeout_ns && timeout_ns < due - now)
		return wait_loop(strategy, ec, sleepers, timeout_ns, true,
				 ready, arg);
	int rc = wait_loop(strategy, ec, sleepers, due - now, true, ready,
			   arg);
	return rc == SHMBUS_EAGAIN ? 0 : rc;
}
