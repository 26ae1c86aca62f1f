/*
 * Wait strategies. The hot path never sleeps; these run only once a claim
 * finds the ring full or a poll finds it empty.
 *
 * Block uses Concurrency Kit's event counts (ck_ec) on a word in shared
 * memory, with futex operations WITHOUT FUTEX_PRIVATE_FLAG, since sleepers
 * and wakers are different processes. Event counts bumped by more than one
 * process use ck_ec's multi-producer mode (the single-producer increment can
 * clear a waiter's flag). A waker bumps the count only when the channel has
 * registered sleepers; sleeps are bounded (WAIT_SLICE_NS) so that a waker
 * that had not yet seen a new sleeper's registration costs latency, never a
 * hang.
 *
 * Time-outs are kept: no sleep goes past the caller's deadline (ck_ec's
 * own sleep steps are clamped to it). Subscriber and poller waits end when
 * a signal handler runs in their thread (SHMBUS_EINTR; wait.c says how
 * none goes unseen); producers' waits go on.
 */
#ifndef SHMBUS_WAIT_H
#define SHMBUS_WAIT_H

#include <stdbool.h>
#include <stdint.h>

#include <ck_ec.h>

#define WAIT_SLICE_NS 100000000ull /* longest single sleep: 100 ms */
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
 * ready() true (used by the block strategy). A signal handler that runs
 * while it sleeps does not end it (producers: a claim, once waited for,
 * must not fail for a signal).
 */
int wait_until(uint32_t strategy, struct ck_ec32 *ec, uint64_t timeout_ns,
	       bool (*ready)(void *arg), void *arg);
/* wait_until, but return 0 at `due` (CLOCK_MONOTONIC ns; UINT64_MAX:
 * none) at the latest: a retry falls due then; and SHMBUS_EINTR once a
 * signal handler has run in the waiting thread (yield, backoff and block;
 * a spinning wait sees signals only through its time-out). */
int wait_until_due(uint32_t strategy, struct ck_ec32 *ec, uint64_t timeout_ns,
		   uint64_t due, bool (*ready)(void *arg), void *arg);
/* Wake sleepers on ec (cheap when none are flagged). */
void waiter_wake(struct ck_ec32 *ec);

#endif /* SHMBUS_WAIT_H */
