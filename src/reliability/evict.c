/*
 * Eviction (stall policy EVICT): a broadcast subscriber that holds
 * producers back -- a full ring behind -- without moving for a grace time
 * is detached: its row's state becomes EVICTED (release), and producers'
 * next gating scan no longer waits for it. Groups are not evicted.
 *
 * The subscriber finds out on its own: its poll checks its row state
 * before each poll, and copies each record out of its slot and checks the
 * state again before the handler sees the copy (subscriber.c): the
 * producers of an evict channel issue a release fence after their claim,
 * so a copy that read a rewrite is always found out. It then rejoins at
 * the present (the join protocol) and counts exactly the records it
 * skipped.
 *
 * Dependency barriers. A dependent never handles a record its upstreams
 * have not, and its cursor never passes theirs: it is a full ring behind
 * whenever one of them is. An upstream that rejoins at the present skips
 * records its dependents would otherwise handle unchecked. So:
 *   - evicting a subscriber evicts everything that runs after it, directly
 *     or not, in the same pass; if one of them cannot be evicted (a group,
 *     or the journaler) neither is it: that dependent gates producers at
 *     or below its cursor anyway, so evicting it would free nothing;
 *   - a subscriber that rejoins evicts its dependents that are active
 *     again (evict_dependents): back first, at a present it had not
 *     reached, they would handle what it skipped;
 *   - on a spill channel, a subscriber with dependents is not evicted:
 *     they could neither lose what it skipped (spill loses nothing) nor
 *     read it from the journal before it has. Leaves are.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "barrier.h"
#include "error.h"
#include "evict.h"
#include "follower.h"
#include "internal.h"

/* The journaler of a spill or synchronous channel: the others resume
 * from its journal, or wait for its cursor, which must therefore never
 * jump over records (an evicted row rejoins at the present). */
static bool never_evicted(const shmbus_channel_t *ch, uint32_t row)
{
	return follower_row(ch) == (int)row;
}

/* Under the bus lock. */
static void detach(shmbus_channel_t *ch, uint32_t row)
{
	struct ch_subscriber *e = &ch->subs[row];
	/* release: producers' gating scans that see EVICTED stop waiting
	 * for it; a dependent that acquires a cursor stored after this
	 * (its upstream's rejoin) sees it too */
	atomic_store_explicit(&e->state, SUB_EVICTED, memory_order_release);
	e->stall_since_ns = 0;
}

static bool active(const shmbus_channel_t *ch, uint32_t row)
{
	/* relaxed: under the bus lock, which every change of a row's state
	 * to or from EVICTED takes */
	return atomic_load_explicit(&ch->subs[row].state,
				    memory_order_relaxed) == SUB_ACTIVE;
}

/* Under the bus lock: evict `row` and every row that runs after it, or
 * none of them (the rules at the top). Returns how many went. */
static int evict_with_dependents(shmbus_channel_t *ch, uint32_t row,
				 uint8_t *deps)
{
	memset(deps, 0, (ch->max_subs + 7) / 8);
	if (barrier_dependents(ch, row, deps) &&
	    ch->stall_policy == SHMBUS_STALL_SPILL)
		return 0;
	for (uint32_t i = 0; i < ch->max_subs; i++)
		if (bit_get(deps, i) &&
		    (ch->subs[i].group != 0 || never_evicted(ch, i)))
			return 0;
	int n = 1;
	detach(ch, row);
	for (uint32_t i = 0; i < ch->max_subs; i++)
		if (bit_get(deps, i) && active(ch, i)) {
			detach(ch, i);
			n++;
		}
	return n;
}

int evict_dependents(shmbus_channel_t *ch, uint32_t row)
{
	uint8_t *deps = calloc((ch->max_subs + 7) / 8, 1);
	if (deps == NULL)
		return shmbus_seterr(SHMBUS_ENOMEM, "channel '%s': eviction",
				     ch->name);
	barrier_dependents(ch, row, deps);
	for (uint32_t i = 0; i < ch->max_subs; i++)
		if (bit_get(deps, i) && active(ch, i))
			detach(ch, i);
	free(deps);
	return 0;
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
	uint8_t *deps = calloc((ch->max_subs + 7) / 8, 1);
	if (deps == NULL)
		return shmbus_seterr(SHMBUS_ENOMEM, "channel '%s': eviction",
				     ch->name);
	int rc = bus_lock(ch->bus);
	if (rc) {
		free(deps);
		return rc;
	}
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
		if (now - e->stall_since_ns >= grace)
			n += evict_with_dependents(ch, i, deps);
	}
	bus_unlock(ch->bus);
	free(deps);
	return n;
}

int shmbus_channel_evict_sub(shmbus_channel_t *ch, const char *name)
{
	if (ch == NULL || name == NULL)
		return shmbus_seterr(SHMBUS_EINVAL, "channel or name is NULL");
	if (ch->stall_policy == SHMBUS_STALL_BLOCK)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s' has the block policy: its "
				     "subscribers read records in place and do "
				     "not look for eviction, so producers may "
				     "not pass '%s' while a process holds it "
				     "(stop that process, then unsubscribe)",
				     ch->name, name);
	int rc = bus_lock(ch->bus);
	if (rc)
		return rc;
	int row = sub_find_row(ch, name);
	struct ch_subscriber *e = row >= 0 ? &ch->subs[row] : NULL;
	/* acquire: pairs with the release of the row's state (join) */
	uint32_t st = e ? atomic_load_explicit(&e->state, memory_order_acquire)
			: SUB_FREE;
	if (e == NULL)
		rc = shmbus_seterr(SHMBUS_ENOENT,
				   "channel '%s' has no subscriber '%s'",
				   ch->name, name);
	else if (e->group != 0 || never_evicted(ch, (uint32_t)row))
		rc = shmbus_seterr(SHMBUS_EINVAL,
				   "'%s' on channel '%s' is a group or the "
				   "channel's journaler: never evicted",
				   name, ch->name);
	else if (st == SUB_ACTIVE) {
		/* release: as in shmbus_channel_evict */
		atomic_store_explicit(&e->state, SUB_EVICTED,
				      memory_order_release);
		e->stall_since_ns = 0;
	}
	bus_unlock(ch->bus);
	return rc;
}
