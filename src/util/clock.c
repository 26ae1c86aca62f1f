#define _GNU_SOURCE
#include "clock.h"

#include <shmbus/shmbus.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The kernel's own verdict: it uses the TSC only when it is invariant and
 * synchronised across CPUs. */
static int kernel_trusts_tsc(void)
{
#if defined(__x86_64__) || defined(__i386__)
	const char *env = getenv("SHMBUS_CLOCK");
	if (env && strcmp(env, "monotonic") == 0)
		return 0;
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/"
			"current_clocksource",
			"r");
	char buf[32] = {0};
	if (f == NULL)
		return 0;
	int ok = fgets(buf, sizeof(buf), f) && strncmp(buf, "tsc", 3) == 0;
	fclose(f);
	return ok;
#else
	return 0;
#endif
}

void bus_clock_calibrate(struct bus_clock *c)
{
	memset(c, 0, sizeof(*c));
	c->kind = BUS_CLOCK_MONOTONIC;
#if defined(__x86_64__) || defined(__i386__)
	if (!kernel_trusts_tsc())
		return;
	uint64_t t0 = __rdtsc(), n0 = mono_ns();
	struct timespec pause = {0, 20000000};
	nanosleep(&pause, NULL);
	uint64_t t1 = __rdtsc(), n1 = mono_ns();
	if (t1 <= t0 || n1 <= n0)
		return;
	c->mult = (uint64_t)(((unsigned __int128)(n1 - n0) << 32) / (t1 - t0));
	c->tsc_base = t1;
	c->ns_base = n1;
	if (bus_clock_check(c) == 0)
		c->kind = BUS_CLOCK_TSC;
#endif
}

int bus_clock_check(const struct bus_clock *c)
{
	if (c->kind == BUS_CLOCK_MONOTONIC)
		return 0;
	if (c->kind != BUS_CLOCK_TSC)
		return -1;
	/* between 100 MHz (10 ns/tick) and 20 GHz (0.05 ns/tick) */
	if (c->mult > (10ull << 32) || c->mult < (1ull << 32) / 20)
		return -1;
	return kernel_trusts_tsc() ? 0 : -1;
}

uint64_t shmbus_now_ns(void)
{
	return mono_ns();
}
