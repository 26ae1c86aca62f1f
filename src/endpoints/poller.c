/*
 * Pollers: one thread consuming many channels without reading every ring.
 *
 * A poller owns a row of the bus's poller table: a ck_ec event count to
 * sleep on and a bitmap with one bit per channel id. Adding a subscriber
 * sets the poller's bit in that channel's poller_mask; from then on every
 * commit on the channel sets the channel's bit in the poller's bitmap (a
 * load first, so an already-set bit costs no write) and, if the poller
 * sleeps, bumps its event count.
 *
 * Lost-wake-up freedom (a Dekker pair): the producer stores its markers,
 * then a seq_cst fence, then loads the bit; the poller clears the bit
 * (seq_cst RMW), then a seq_cst fence, then reads the markers. Whichever
 * comes second in the fences' total order sees the other's write: either the
 * producer sees the bit clear and sets it again, or the poller sees the
 * record.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "internal.h"
#include "retry.h"
#include "wait.h"

#define NOHANDLER_NS 10000000ull /* a channel without a handler: 10 ms */

struct shmbus_poller {
	shmbus_t *bus;
	struct sb_poller *row;
	uint32_t index;
	uint32_t wait;
	uint32_t nwords;
	shmbus_sub_t **subs; /* by channel id */
	/* channels whose subscriber has retries or a hold pending, and the
	 * earliest due time among them: marked ready again when it comes */
	uint64_t *pending;
	uint64_t next_due;
};

int shmbus_poller_open(shmbus_t *bus, uint32_t wait, shmbus_poller_t **out)
{
	if (bus == NULL || out == NULL || wait > SHMBUS_WAIT_BLOCK)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "bus, out and a known wait strategy are "
				     "required");
	*out = NULL;
	shmbus_poller_t *pl = calloc(1, sizeof(*pl));
	if (pl == NULL)
		return shmbus_seterr(SHMBUS_ENOMEM, "poller");
	pl->subs = calloc(bus->max_channels, sizeof(*pl->subs));
	pl->pending = calloc((bus->max_channels + 63) / 64, sizeof(uint64_t));
	pl->next_due = UINT64_MAX;
	if (pl->subs == NULL || pl->pending == NULL) {
		free(pl->subs);
		free(pl->pending);
		free(pl);
		return shmbus_seterr(SHMBUS_ENOMEM, "poller channel map");
	}
	pl->bus = bus;
	pl->wait = wait;
	pl->nwords = (bus->max_channels + 63) / 64;
	int rc = bus_lock(bus);
	if (rc)
		goto fail;
	rc = shmbus_seterr(SHMBUS_EFULL,
			   "bus '%s': all %u poller rows are held by live "
			   "processes",
			   bus->name, SHMBUS_MAX_POLLERS);
	for (uint32_t i = 0; i < SHMBUS_MAX_POLLERS; i++) {
		if ((bus->held_pollers >> i) & 1)
			continue;
		if (shm_lock_byte(bus->map.fd, POLLER_LOCK_BASE + (off_t)i))
			continue; /* a live poller's */
		bus->held_pollers |= 1ull << i;
		struct sb_poller *row = poller_row(bus, i);
		for (uint32_t w = 0; w < pl->nwords; w++)
			atomic_store_explicit(&row->ready[w], 0,
					      memory_order_relaxed);
		/* relaxed: nobody sleeps on a new row; the poller counts
		 * itself in it around each sleep (wait.h, "Sleepers") */
		atomic_store_explicit(&row->blocking, 0, memory_order_relaxed);
		atomic_store_explicit(&row->state, PART_LIVE,
				      memory_order_release);
		pl->row = row;
		pl->index = i;
		rc = 0;
		break;
	}
	bus_unlock(bus);
	if (rc)
		goto fail;
	*out = pl;
	return 0;
fail:
	free(pl->subs);
	free(pl->pending);
	free(pl);
	return rc;
}

int shmbus_poller_add(shmbus_poller_t *pl, shmbus_sub_t *s)
{
	if (pl == NULL || s == NULL)
		return shmbus_seterr(SHMBUS_EINVAL, "poller and sub required");
	shmbus_channel_t *ch = sub_channel(s);
	if (ch->bus != pl->bus)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "subscriber belongs to another bus handle");
	/* a poller sleeps on the channels' futexes: nothing wakes it for
	 * journal records */
	if (shmbus_sub_replaying(s))
		return shmbus_seterr(SHMBUS_EINVAL,
				     "subscriber still reads the journal part "
				     "(add it once shmbus_sub_replaying is 0)");
	if (pl->subs[ch->id])
		return shmbus_seterr(SHMBUS_EEXIST,
				     "poller already has a subscriber of "
				     "channel '%s'",
				     ch->name);
	if (sub_attach_poller(s, pl, poller_forget))
		return shmbus_seterr(SHMBUS_EBUSY,
				     "subscriber is in another poller");
	pl->subs[ch->id] = s;
	/* seq_cst: producers that load the mask after this notify us; the
	 * records before it are found by the ready bit set below */
	atomic_fetch_or_explicit(&ch->hdr->poller_mask, 1ull << pl->index,
				 memory_order_seq_cst);
	atomic_fetch_or_explicit(&pl->row->ready[ch->id >> 6],
				 1ull << (ch->id & 63), memory_order_seq_cst);
	return 0;
}

void poller_forget(shmbus_poller_t *pl, shmbus_sub_t *s)
{
	shmbus_channel_t *ch = sub_channel(s);
	if (pl->subs[ch->id] != s)
		return;
	pl->subs[ch->id] = NULL;
	atomic_fetch_and_explicit(&ch->hdr->poller_mask,
				  ~(1ull << pl->index), memory_order_relaxed);
}

/* Retries fell due: mark their channels ready (our own bitmap). */
static void wake_pending(shmbus_poller_t *pl)
{
	pl->next_due = UINT64_MAX;
	for (uint32_t w = 0; w < pl->nwords; w++)
		if (pl->pending[w]) {
			/* relaxed: our own bitmap, read by this thread */
			atomic_fetch_or_explicit(&pl->row->ready[w],
						 pl->pending[w],
						 memory_order_relaxed);
			pl->pending[w] = 0;
		}
}

int shmbus_poller_poll(shmbus_poller_t *pl, uint32_t max)
{
	uint32_t total = 0;
	if (pl->next_due != UINT64_MAX && shmbus_now_ns() >= pl->next_due)
		wake_pending(pl);
	for (uint32_t w = 0; w < pl->nwords && total < max; w++) {
		_Atomic uint64_t *word = &pl->row->ready[w];
		uint64_t bits = atomic_load_explicit(word, memory_order_relaxed);
		while (bits && total < max) {
			uint32_t b = (uint32_t)__builtin_ctzll(bits);
			bits &= bits - 1;
			uint64_t bit = 1ull << b;
			atomic_fetch_and_explicit(word, ~bit,
						  memory_order_seq_cst);
			/* seq_cst: the clear before the marker loads; pairs
			 * with the fence in poller_notify */
			atomic_thread_fence(memory_order_seq_cst);
			/* a bit past the last channel is corrupt: ignore */
			if (w * 64 + b >= pl->bus->max_channels)
				continue;
			shmbus_sub_t *s = pl->subs[w * 64 + b];
			if (s == NULL)
				continue; /* a former poller's channel */
			uint32_t want = max - total;
			int n = shmbus_poll(s, want);
			/* no handler: its records wait; look again in a while
			 * (nothing else marks the channel ready for them) */
			uint64_t due = n == SHMBUS_ENOHANDLER
					       ? shmbus_now_ns() + NOHANDLER_NS
					       : retry_next_due(s);
			if (due != UINT64_MAX) {
				pl->pending[w] |= bit;
				if (due < pl->next_due)
					pl->next_due = due;
			}
			if (n < 0)
				return n;
			total += (uint32_t)n;
			if ((uint32_t)n == want) /* maybe more: look again */
				atomic_fetch_or_explicit(word, bit,
							 memory_order_relaxed);
		}
	}
	return (int)total;
}

static bool any_ready(void *arg)
{
	const shmbus_poller_t *pl = arg;
	for (uint32_t w = 0; w < pl->nwords; w++)
		/* acquire: pairs with the release fetch_or in notify */
		if (atomic_load_explicit(&pl->row->ready[w],
					 memory_order_acquire))
			return true;
	return false;
}

int shmbus_poller_wait(shmbus_poller_t *pl, uint64_t timeout_ns)
{
	return wait_until_due(pl->wait, &pl->row->ec, &pl->row->blocking,
			      timeout_ns, pl->next_due,
			      any_ready, pl);
}

void shmbus_poller_close(shmbus_poller_t *pl)
{
	if (pl == NULL)
		return;
	shmbus_t *bus = pl->bus;
	for (uint32_t id = 0; id < bus->max_channels; id++)
		if (pl->subs[id]) {
			shmbus_sub_t *s = pl->subs[id];
			poller_forget(pl, s);
			sub_attach_poller(s, NULL, NULL);
		}
	int locked = bus_lock(bus) == 0;
	atomic_store_explicit(&pl->row->blocking, 0, memory_order_relaxed);
	/* release: pairs with readers of the row's state (tools) */
	atomic_store_explicit(&pl->row->state, PART_FREE,
			      memory_order_release);
	shm_unlock_byte(bus->map.fd, POLLER_LOCK_BASE + (off_t)pl->index);
	bus->held_pollers &= ~(1ull << pl->index);
	if (locked)
		bus_unlock(bus);
	free(pl->subs);
	free(pl->pending);
	free(pl);
}
