/*
 * The channel's follower: one subscriber row that the core pins for a
 * module above it (today the journaler, journal_attach.c, which registers
 * here; the core names no journal code). Synchronous commits
 * (SHMBUS_CH_JOURNAL_SYNC) wait for its cursor, and eviction spares it.
 *
 * Use: the synchronous journal, whose producer's commit returns once the
 * channel's journaler has appended its records.
 *
 * Rather than producers appending to the journal themselves (which would
 * need a cross-process lock around every append, and a takeover protocol
 * for a holder killed mid-append), they wait for the journaler, which is
 * the one writer and reads the ring in sequence order: the journal's
 * order is the bus's by construction. The journaler's cursor is stored
 * with release after the handlers that appended every record below it
 * returned (and, under SYNC_EVERY_N with sync_every = 1, synced them), so
 * a commit waits until that cursor passes its last record. A producer
 * that waits with the block strategy is already registered as a space
 * sleeper, and the journaler's cursor store wakes space sleepers.
 *
 * The channel header names the journaler's row (follower_row = row + 1),
 * set by shmbus_journal_attach and cleared by a clean close (not on a
 * spill channel) or when the name is unsubscribed, always under the bus
 * lock; a journaler killed leaves it set, and commits wait for its return
 * (or time out). One journaler per channel.
 */
#define _GNU_SOURCE
#include "error.h"
#include "follower.h"
#include "internal.h"
#include "private_export.h"
#include "wait.h"

int follower_row(const shmbus_channel_t *ch)
{
	/* acquire: pairs with the release in follower_attach; the row's
	 * cursor is then the journaler's */
	uint32_t r = atomic_load_explicit(&ch->hdr->follower_row,
					  memory_order_acquire);
	return r == 0 || r > ch->max_subs ? -1 : (int)(r - 1);
}
SHMBUS_PRIVATE_EXPORT(follower_row);

bool follower_attached(const shmbus_channel_t *ch)
{
	return follower_row(ch) >= 0;
}

int follower_check(const shmbus_channel_t *ch, int *row, uint32_t *gen)
{
	while ((*row = follower_row(ch)) >= 0) {
		/* acquire: pairs with the release of a new name's gen
		 * (join_row); if it is a later name's, the follower_row
		 * cleared before that name joined is seen below */
		*gen = atomic_load_explicit(&ch->subs[*row].gen,
					    memory_order_acquire);
		/* the same journaler still: (row, gen) name it */
		if (follower_row(ch) == *row)
			return 0;
	}
	return shmbus_seterr(SHMBUS_ENOENT,
			     "channel '%s' journals synchronously and no "
			     "journaler is attached: nothing was published "
			     "(attach one with shmbus_journal_attach)",
			     ch->name);
}

struct journaled {
	shmbus_channel_t *ch;
	uint64_t end;
	uint32_t row; /* the journaler the claim saw: it alone confirms */
	uint32_t gen; /* its row's generation then */
	bool gone;    /* it left, or its row was given up */
	uint64_t left_ns; /* when we first saw it detached, or 0 */
};

/* A journaler that leaves cleanly journals what was claimed before it
 * left, for up to FOLLOWER_LEAVE_DRAIN_NS (journal_attach.c); a commit
 * still unconfirmed this long after it saw the journaler leave will not
 * be journaled until one attaches again. */
#define LEFT_GIVE_UP_NS (2 * FOLLOWER_LEAVE_DRAIN_NS)

/* Has the claim's journaler passed end? (Another journaler attached
 * since joined at the present: its cursor says nothing of our records.
 * One that left cleanly drained what was committed before it left.) */
static bool journaled_ready(void *arg)
{
	struct journaled *w = arg;
	struct ch_subscriber *e = &w->ch->subs[w->row];
	/* acquire: pairs with the journaler's release of its cursor after
	 * its appends returned */
	uint64_t c = atomic_load_explicit(&e->cursor, memory_order_acquire);
	/* relaxed: after the acquire above; a name that took the row since
	 * stored its gen before any cursor of its own */
	if (atomic_load_explicit(&e->gen, memory_order_relaxed) != w->gen) {
		w->gone = true; /* that cursor is another name's */
		return true;
	}
	if ((int64_t)(c - w->end) >= 0)
		return true;
	/* acquire: pairs with the release that frees a row */
	w->gone = atomic_load_explicit(&e->state, memory_order_acquire) ==
		  SUB_FREE;
	if (!w->gone && follower_row(w->ch) != (int)w->row) {
		uint64_t now = shmbus_now_ns();
		if (w->left_ns == 0)
			w->left_ns = now;
		w->gone = now - w->left_ns > LEFT_GIVE_UP_NS;
	}
	return w->gone;
}

int follower_wait(shmbus_channel_t *ch, int row, uint32_t gen,
		      uint32_t strategy, uint64_t end, uint64_t timeout_ns)
{
	struct journaled w = {ch, end, (uint32_t)row, gen, false, 0};
	if (journaled_ready(&w) && !w.gone)
		return 0;
	int rc = wait_until(strategy, &ch->hdr->space_ec,
			    &ch->hdr->space_sleepers, timeout_ns,
			    journaled_ready, &w);
	if (rc == 0 && !w.gone)
		return 0;
	return shmbus_seterr(SHMBUS_ETIMEDOUT,
			     "channel '%s': the journal has not confirmed "
			     "sequence %llu %s; the record is in the bus and "
			     "is journaled when a journaler resumes the name",
			     ch->name, (unsigned long long)(end - 1),
			     w.gone ? "(its journaler left)" : "in time");
}

int follower_attach(shmbus_channel_t *ch, uint32_t row)
{
	/* spill channels too: their journaler is never evicted (evict.c) */
	if (!(ch->flags & SHMBUS_CH_JOURNAL_SYNC) &&
	    ch->stall_policy != SHMBUS_STALL_SPILL)
		return 0;
	int rc = bus_lock(ch->bus);
	if (rc)
		return rc;
	int had = follower_row(ch);
	if (had >= 0 && had != (int)row)
		rc = shmbus_seterr(SHMBUS_EBUSY,
				   "channel '%s' already has a journaler, "
				   "'%.*s' (a synchronous or spill channel has "
				   "one; unsubscribe that name to replace it)",
				   ch->name, SHMBUS_NAME_BYTES,
				   ch->subs[had].name);
	else
		/* release: the row is ours before producers wait on its
		 * cursor */
		atomic_store_explicit(&ch->hdr->follower_row, row + 1,
				      memory_order_release);
	bus_unlock(ch->bus);
	return rc;
}
SHMBUS_PRIVATE_EXPORT(follower_attach);

void follower_detach(shmbus_channel_t *ch, uint32_t row)
{
	/* a spill channel's journaler stays immune to eviction while away:
	 * evicted, it would leave a gap that resuming readers cannot fill */
	if (ch->stall_policy == SHMBUS_STALL_SPILL)
		return;
	if (bus_lock(ch->bus))
		return;
	follower_forget(ch, row);
	bus_unlock(ch->bus);
	/* claims from here are refused; one that passed the check just
	 * before is journaled by the leaving journaler's bounded drain, or
	 * its commit gives up (LEFT_GIVE_UP_NS) */
}
SHMBUS_PRIVATE_EXPORT(follower_detach);

void follower_forget(shmbus_channel_t *ch, uint32_t row)
{
	uint32_t mine = row + 1;
	/* relaxed: under the bus lock, as every change of follower_row;
	 * producers read it with acquire, but nothing is published with
	 * the 0: it only stops new claims */
	atomic_compare_exchange_strong_explicit(&ch->hdr->follower_row, &mine,
						0, memory_order_relaxed,
						memory_order_relaxed);
}
