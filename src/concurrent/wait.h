/*
 * Wait strategies. The hot path never sleeps; these run only once a claim
 * finds the ring full or a poll finds it empty.
 *
 * Block uses Concurrency Kit's event counts (ck_ec) on a word in shared
 * memory, with futex operations WITHOUT FUTEX_PRIVATE_FLAG, since sleepers
 * and wakers are different processes. Event counts bumped by more than one
 * process use ck_ec's multi-producer mode (the single-producer increment can
 * clear a waiter's flag).
 *
 * Sleepers. Beside each event count is the count of threads asleep on it,
 * or about to be. A waker reads it after publishing (a marker, a cursor)
 * and bumps the event count only if it is not 0: while every reader is
 * awake, a commit writes no line another process writes, and pays no
 * fence. The sleeper raises the count (seq_cst), fences, looks once more
 * at what it waits for, and only then sleeps. The waker does not fence,
 * so its load of the count may be served before its publication has left
 * its store buffer, and a sleeper that raised the count in between misses
 * the wake. A store waits to drain for microseconds at most (an interrupt
 * or a VM exit drains it), so a sleeper's first sleep lasts RACE_SLICE_NS
 * and it then looks again: a wake lost to that race costs 50 us, never a
 * hang, and sleeps are bounded anyway (WAIT_SLICE_NS).
 *
 * Measured alternatives (bench/RESULTS.md): a full Dekker pair costs the
 * waker a fence at every commit and cursor move (about 8 ns each, two on
 * a round trip's path: block round trips 1.2x spin instead of 1.1x);
 * membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) moves that fence to the
 * sleeper, as liburcu's urcu-memb does for its readers, but each sleep
 * then interrupts every CPU running a bus process (tens of microseconds
 * of jitter for spinning threads in a VM), which a trading system cannot
 * take.
 *
 * Time-outs are kept: no sleep goes past the caller's deadline (ck_ec's
 * own sleep steps are clamped to it). Subscriber and poller waits end when
 * a signal handler runs in their thread (SHMBUS_EINTR; wait.c says how
 * none goes unseen); producers' waits go on.
 */
#ifndef SHMBUS_WAIT_H
#define SHMBUS_WAIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <ck_ec.h>

#define WAIT_SLICE_NS 100000000ull /* longest single sleep: 100 ms */
/* a sleep's first slice: a wake lost to the sleepers' race costs this */
#define RACE_SLICE_NS 50000ull /* 50 us */
/* a wait that a signal ends looks for signals at least this often */
#define WAIT_SIGNAL_SLICE_NS 20000000ull /* 20 ms */

extern const struct ck_ec_mode shmbus_ec_mode;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

/*
 * Wait by strategy until ready(arg) is true: 0, or SHMBUS_EAGAIN once
 * timeout_ns (0 = none) has passed, never earlier and within a timer's
 * slack after it. ec is the event count that wakers bump after making
 * ready() true, sleepers the count of threads asleep on it (both used by
 * the block strategy). A signal handler that runs while it sleeps does not
 * end it (producers: a claim, once waited for, must not fail for a
 * signal).
 */
int wait_until(uint32_t strategy, struct ck_ec32 *ec,
	       _Atomic uint32_t *sleepers, uint64_t timeout_ns,
	       bool (*ready)(void *arg), void *arg);
/* wait_until, but return 0 at `due` (CLOCK_MONOTONIC ns; UINT64_MAX:
 * none) at the latest: a retry falls due then; and SHMBUS_EINTR once a
 * signal handler has run in the waiting thread (yield, backoff and block;
 * a spinning wait sees signals only through its time-out). */
int wait_until_due(uint32_t strategy, struct ck_ec32 *ec,
		   _Atomic uint32_t *sleepers, uint64_t timeout_ns,
		   uint64_t due, bool (*ready)(void *arg), void *arg);
/* Bump ec, waking its sleepers (a system call only if one is flagged). */
void waiter_wake(struct ck_ec32 *ec);

/* After publishing what sleepers on ec wait for: wake them, if any
 * sleeps. No write to shared memory, and no fence, while none does. */
static inline void wake_sleepers(struct ck_ec32 *ec,
				 _Atomic uint32_t *sleepers)
{
	/* the compiler keeps the load after the publication; the CPU may
	 * not, within a store's drain (the race above, RACE_SLICE_NS) */
	atomic_signal_fence(memory_order_seq_cst);
	/* relaxed: see "Sleepers" above */
	if (atomic_load_explicit(sleepers, memory_order_relaxed))
		waiter_wake(ec);
}

#endif /* SHMBUS_WAIT_H */
