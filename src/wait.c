#define _GNU_SOURCE
#include "wait.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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
	.busy_loop_iter = 100,
	.initial_wait_ns = 0,
};

const struct ck_ec_mode shmbus_ec_mode = {
	.ops = &shared_ops,
	.single_producer = false,
};

struct waiter {
	uint32_t strategy; /* shmbus_wait */
	uint32_t iter;
	uint64_t deadline_ns; /* 0 = none */
};

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000u),
			      (long)(ns % 1000000000u)};
	nanosleep(&ts, NULL);
}

static int waiter_idle(struct waiter *w, struct ck_ec32 *ec, uint32_t snap)
{
	uint32_t it = w->iter++;
	/* Reading the clock costs ~20 ns; spinners look at it 1 time in 64. */
	if (w->deadline_ns && ((it & 63) == 0 || w->strategy >= 1)) {
		if (shmbus_now_ns() >= w->deadline_ns)
			return SHMBUS_EAGAIN;
	}
	switch (w->strategy) {
	case SHMBUS_WAIT_SPIN:
		cpu_relax();
		break;
	case SHMBUS_WAIT_YIELD:
		sched_yield();
		break;
	case SHMBUS_WAIT_BACKOFF:
		if (it < 256)
			cpu_relax();
		else if (it < 320)
			sched_yield();
		else
			sleep_ns(it < 400 ? 10000 : 200000);
		break;
	case SHMBUS_WAIT_BLOCK: {
		uint64_t now = shmbus_now_ns();
		uint64_t until = now + WAIT_SLICE_NS;
		if (w->deadline_ns && w->deadline_ns < until)
			until = w->deadline_ns;
		struct timespec dl = {(time_t)(until / 1000000000u),
				      (long)(until % 1000000000u)};
		ck_ec32_wait(ec, &shmbus_ec_mode, snap, &dl);
		break;
	}
	default:
		cpu_relax();
	}
	return 0;
}

int wait_until(uint32_t strategy, struct ck_ec32 *ec, uint64_t timeout_ns,
	       bool (*ready)(void *arg), void *arg)
{
	struct waiter w = {strategy, 0,
			   timeout_ns ? shmbus_now_ns() + timeout_ns : 0};
	for (;;) {
		/* block: snapshot the count before testing, so a bump after
		 * the test ends the sleep (ck_ec's protocol) */
		uint32_t snap =
			strategy == SHMBUS_WAIT_BLOCK ? ck_ec32_value(ec) : 0;
		if (ready(arg))
			return 0;
		if (waiter_idle(&w, ec, snap))
			return SHMBUS_EAGAIN;
	}
}

void waiter_wake(struct ck_ec32 *ec)
{
	ck_ec32_inc(ec, &shmbus_ec_mode);
}

int wait_until_due(uint32_t strategy, struct ck_ec32 *ec, uint64_t timeout_ns,
		   uint64_t due, bool (*ready)(void *arg), void *arg)
{
	if (due == UINT64_MAX)
		return wait_until(strategy, ec, timeout_ns, ready, arg);
	uint64_t now = shmbus_now_ns();
	if (due <= now)
		return 0;
	if (timeout_ns && timeout_ns < due - now)
		return wait_until(strategy, ec, timeout_ns, ready, arg);
	int rc = wait_until(strategy, ec, due - now, ready, arg);
	return rc == SHMBUS_EAGAIN ? 0 : rc;
}
