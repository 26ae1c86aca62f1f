/*
 * The bus clock: the time base of every record's timestamp, one per bus.
 *
 * Where the kernel itself trusts the TSC (invariant, and the current
 * clocksource), the bus creator calibrates it against CLOCK_MONOTONIC and
 * stores the conversion in the superblock; every process converts with that
 * same (base, multiplier), so timestamps agree across processes, and a read
 * costs an rdtsc and a multiply instead of a vDSO clock_gettime (about half,
 * measured on the project's VMs). Elsewhere the bus clock is CLOCK_MONOTONIC.
 * SHMBUS_CLOCK=monotonic in the creator's environment forces the latter.
 */
#ifndef SHMBUS_CLOCK_H
#define SHMBUS_CLOCK_H

#include <stdint.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

enum bus_clock_kind { BUS_CLOCK_MONOTONIC = 1, BUS_CLOCK_TSC = 2 };

struct bus_clock {
	uint32_t kind;
	uint64_t mult;	   /* ns per tick << 32 */
	uint64_t tsc_base; /* tick at calibration */
	uint64_t ns_base;  /* CLOCK_MONOTONIC ns at tsc_base */
};

static inline uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t bus_clock_now(const struct bus_clock *c)
{
#if defined(__x86_64__) || defined(__i386__)
	if (c->kind == BUS_CLOCK_TSC) {
		uint64_t d = __rdtsc() - c->tsc_base;
		return c->ns_base +
		       (uint64_t)(((unsigned __int128)d * c->mult) >> 32);
	}
#endif
	return mono_ns();
}

/* Creator: pick and calibrate (takes about 20 ms when the TSC is used). */
void bus_clock_calibrate(struct bus_clock *c);
/* Attacher: 0 if a clock read from shared memory is usable here. */
int bus_clock_check(const struct bus_clock *c);

#endif /* SHMBUS_CLOCK_H */
