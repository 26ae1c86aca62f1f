/*
 * Eviction (stall policy EVICT): a broadcast subscriber that holds
 * producers back -- a full ring behind -- without moving for a grace time
 * is detached: its row's state becomes EVICTED (release), and producers'
 * next gating scan no longer waits for it. Groups are not evicted.
 *
 * The subscriber finds out on its own: its poll checks its row state
 * before each poll, and after each batch checks the claim sequence as a
 * seqlock (the producers of an evict channel issue a release fence after
 * their claim, as overwrite producers do), so that a batch read while it
 * was being overwritten is reported, never silently delivered twice wrong.
 * It then rejoins at the present (the join protocol) and counts exactly the
 * records it skipped.
 */
#define _GNU_SOURCE
#include "error.h"
#include "internal.h"
#include "journal_sync.h"

/* The journaler of a spill or synchronous channel: the others resume
 * from its journal, or wait for its cursor, which must therefore never
 * jump over records (an evicted row rejoins at the present). */
static bool never_evicted(const shmbus_channel_t *ch, uint32_t row)
{
	return journal_sync_row(ch) == (int)row;
}

int shmbus_channel_evict(shmbus_channel_t *ch, uint64_t grace_ms)
{
	if (ch == NULL)
		return shmbus_seterr(SHMBUS_EINVAL, "channel is NULL");
	if (ch->stall_policy == SHMBUS_STALL_BLOCK)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s' has the block policy: "
				     "nobody is evicted from it",
				     ch->name);
	int rc = bus_lock(ch->bus);
	if (rc)
		return rc;
	uint64_t now = mono_ns(), grace = grace_ms * 1000000ull;
	uint64_t claim = atomic_load_explicit(&ch->hdr->claim,
					      memory_order_acquire);
	int n = 0;
	for (uint32_t i = 0; i < ch->max_subs; i++) {
		struct ch_subscriber *e = &ch->subs[i];
		/* acquire: pairs with the release of the row's state (join) */
		if (atomic_load_explicit(&e->state, memory_order_acquire) !=
			    SUB_ACTIVE ||
		    e->group != 0 || never_evicted(ch, i))
			continue;
		/* acquire: pairs with the subscriber's release of its cursor */
		uint64_t c = atomic_load_explicit(&e->cursor,
						  memory_order_acquire);
		bool stalled = claim - c >= ch->capacity;
		if (!stalled || c != e->stall_cursor || e->stall_since_ns == 0) {
			/* moving, or newly stalled: (re)start its clock */
			e->stall_cursor = c;
			e->stall_since_ns = stalled ? now : 0;
			continue;
		}
		if (now - e->stall_since_ns < grace)
			continue;
		/* release: producers' gating scans that see EVICTED stop
		 * waiting for it; its reads were done before it stalled */
		atomic_store_explicit(&e->state, SUB_EVICTED,
				      memory_order_release);
		e->stall_since_ns = 0;
		n++;
	}
	bus_unlock(ch->bus);
	return n;
}
