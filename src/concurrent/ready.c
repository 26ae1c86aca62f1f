/*
 * The ready bitmap: a commit marks its channel in the row of each poller
 * that has a subscriber on it, and wakes the poller if it sleeps. Below
 * producers, pollers and DLQ replays alike, so that a commit names no
 * module above it (poller.c has the other side of the Dekker pair).
 */
#define _GNU_SOURCE
#include "internal.h"
#include "wait.h"

void poller_notify(shmbus_channel_t *ch, uint64_t mask)
{
	/* seq_cst: the caller's marker stores before the bitmap loads;
	 * pairs with the fence in shmbus_poller_poll */
	atomic_thread_fence(memory_order_seq_cst);
	shmbus_t *bus = ch->bus;
	uint64_t bit = 1ull << (ch->id & 63);
	uint32_t word = ch->id >> 6;
	while (mask) {
		uint32_t i = (uint32_t)__builtin_ctzll(mask);
		mask &= mask - 1;
		struct sb_poller *pl = poller_row(bus, i);
		_Atomic uint64_t *w = &pl->ready[word];
		/* relaxed load: only saves the write; the RMW is a release
		 * for the acquire in any_ready (the poller's wait) */
		if (!(atomic_load_explicit(w, memory_order_relaxed) & bit))
			atomic_fetch_or_explicit(w, bit, memory_order_seq_cst);
		/* seq_cst: after the bit (or the fence above, if it was
		 * set); pairs with the poller's fence between its count and
		 * its last look at the bits (wait.h, "Sleepers") */
		if (atomic_load_explicit(&pl->blocking, memory_order_seq_cst))
			waiter_wake(&pl->ec);
	}
}
