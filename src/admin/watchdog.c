/*
 * The watchdog: what no single subscriber or producer can do for itself.
 *
 * One watchdog acts on a bus at a time: it holds a kernel lock on a byte of
 * the bus object (a lease), so the library thread and the `shmbus watchdog`
 * daemon never race. Each pass, for every channel of the bus:
 *   - forgets abandoned subscriber names whose ttl has passed;
 *   - on evict-policy channels, detaches subscribers stalled longer than
 *     the grace time;
 *   - on multi-producer channels, repairs holes: a slot still CLAIMED by a
 *     participant whose kernel lock is gone (the producer died between claim
 *     and commit) is turned into a TOMBSTONE by compare-and-swap from exactly
 *     "claimed by that participant in this lap", so that a living producer
 *     can never be overwritten; subscribers skip it and count it.
 * Which producer owns a hole? A multi-producer participant raises a claim
 * intent word before its fetch-add, publishes the range it got in its row
 * right after (claim_lo, claim_hi), and lowers the intent with release: the
 * window in which a claimed slot is known to nobody is a few instructions,
 * never a wait. A slot that names nobody (not yet CLAIMED for its lap) is
 * repaired only when no live producer of the channel has its intent up and
 * none has it in its published range: then its claimant died before naming
 * it. A producer waiting for space has published its range, so it never
 * holds repairs off (a hole in front of it would otherwise stall it for
 * good).
 * Repairs look only at [lowest cursor, lowest cursor + capacity): slots
 * beyond belong to claims still waiting for space, and hold the previous
 * lap's records, unread.
 * Then the rows of dead producers are freed ("reaped"), once every slot of
 * their last range is below every cursor: a row is reused only after
 * nothing in the ring can name it.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "internal.h"
#include "retry.h"
#include "wait.h"

#define WATCHDOG_LOCK_BYTE (1 << 20) /* in the bus object */

/* Progress of one subscriber row, as the last passes saw it. */
struct row_seen {
	uint64_t cursor;
	uint64_t since_ns;
};

struct shmbus_watchdog {
	shmbus_t *bus;
	shmbus_watchdog_opts_t opts;
	shmbus_channel_t **channels; /* by channel id, opened lazily */
	struct row_seen **seen;	     /* by channel id, then row */
	/* this pass: each multi-producer channel's lowest cursor, below which
	 * a dead producer's range can hold no hole */
	uint64_t *floor;
	bool *floor_known;
	uint8_t *dead; /* participants dead when the pass began */
	shmbus_watchdog_stats_t stats;
	pthread_t thread;
	atomic_bool stop;
	bool running;
};

/* The live producers of a channel, as a repair pass sees them. */
struct claimants {
	bool intent; /* one is between its fetch-add and its range */
	uint32_t n;
	struct range {
		uint64_t lo, hi;
	} r[64];
	bool overflow; /* more than 64: hold nameless repairs off */
};

/* Read after the claim (acquire): every fetch-add that claim includes
 * published its intent before it, and its range before lowering it. */
static void read_claimants(shmbus_channel_t *ch, struct claimants *c)
{
	shmbus_t *bus = ch->bus;
	memset(c, 0, sizeof(*c));
	for (uint32_t id = 1; id < bus->max_participants; id++) {
		struct sb_participant *p = &bus->parts[id];
		/* acquire: pairs with the release in bus_participant_take */
		if (atomic_load_explicit(&p->state, memory_order_acquire) !=
			    PART_LIVE ||
		    p->kind != PART_PRODUCER || p->channel_id != ch->id ||
		    bus_participant_dead(bus, id))
			continue;
		/* acquire: pairs with the producer's release of 0 after it
		 * published its range */
		if (atomic_load_explicit(&p->claim_intent,
					 memory_order_acquire)) {
			c->intent = true;
			continue;
		}
		if (c->n == 64) {
			c->overflow = true;
			continue;
		}
		/* relaxed: ordered by the acquire of the intent above */
		c->r[c->n].lo = atomic_load_explicit(&p->claim_lo,
						     memory_order_relaxed);
		c->r[c->n++].hi = atomic_load_explicit(&p->claim_hi,
						       memory_order_relaxed);
	}
}

/* May a live producer still name seq? */
static bool claimed_by_live(const struct claimants *c, uint64_t seq)
{
	if (c->intent || c->overflow)
		return true;
	for (uint32_t i = 0; i < c->n; i++)
		if ((int64_t)(seq - c->r[i].lo) >= 0 &&
		    (int64_t)(c->r[i].hi - seq) > 0)
			return true;
	return false;
}

/* Repair the holes of dead producers in the window; returns how many. */
static uint64_t repair_holes(shmbus_channel_t *ch, uint64_t lo, uint64_t end)
{
	struct claimants live;
	read_claimants(ch, &live);
	uint64_t n = 0;
	for (uint64_t seq = lo; seq != end; seq++) {
		struct slot_header *h = slot_at(ch, seq);
		/* acquire: pairs with the producer's stores of its marker */
		uint32_t m = atomic_load_explicit(&h->marker,
						  memory_order_acquire);
		uint64_t lap = lap_of(ch, seq);
		uint32_t tag = marker_tag(m), part = 0;
		if (tag == marker_tag_make(lap, SLOT_COMMITTED) ||
		    tag == marker_tag_make(lap, SLOT_TOMBSTONE))
			continue;
		/* A later lap's marker: the slot moved on while this pass ran
		 * (its window was read at the start, and the readers may
		 * have gone past seq since). It is a newer record, or a newer
		 * claim, never our hole: a CAS here would destroy it. */
		uint32_t ahead = ((m >> 16) - (uint32_t)lap) & 0xffffu;
		if (ahead != 0 && ahead < 0x8000u)
			continue;
		if (tag == marker_tag_make(lap, SLOT_CLAIMED)) {
			part = m & MARKER_PART_MASK;
			if (!bus_participant_dead(ch->bus, part))
				continue;
		} else if (claimed_by_live(&live, seq)) {
			continue; /* names nobody yet: a live one may */
		}
		/* release: subscribers acquire the marker and skip it. CAS
		 * from exactly what we saw: "claimed by that dead participant
		 * in this lap", or a previous lap's record nobody will name */
		if (atomic_compare_exchange_strong_explicit(
			    &h->marker, &m,
			    marker_make(lap, SLOT_TOMBSTONE, part),
			    memory_order_release, memory_order_relaxed))
			n++;
	}
	/* relaxed: a statistic */
	if (n)
		atomic_fetch_add_explicit(&ch->hdr->tombstones, n,
					  memory_order_relaxed);
	if (n)
		wake_sleepers(&ch->hdr->data_ec, &ch->hdr->data_sleepers);
	return n;
}

/* Multi-producer channel: repair the window, and note below which
 * sequence dead producers' rows may be freed (ch_floor[id]). */
static void repair_channel(shmbus_watchdog_t *w, shmbus_channel_t *ch)
{
	/* acquire: pairs with producers' claim RMW, which publishes their
	 * intent: read the claim first, the intents after */
	uint64_t claim = atomic_load_explicit(&ch->hdr->claim,
					      memory_order_acquire);
	uint64_t lo = channel_min_gating(ch, claim);
	if ((int64_t)(claim - lo) < 0) /* a corrupt cursor */
		lo = claim;
	uint64_t end = claim - lo > ch->capacity ? lo + ch->capacity : claim;
	w->stats.tombstones += repair_holes(ch, lo, end);
	w->floor[ch->id] = lo;
	w->floor_known[ch->id] = true;
}

/* Per row: hand back retry entries of dead processes; count rows that have
 * records available but have not moved for stall_ms (no heartbeat: a
 * process asleep in a futex, or stopped, cannot beat; its cursor tells). */
static void check_rows(shmbus_watchdog_t *w, shmbus_channel_t *ch,
		       uint64_t now, uint64_t *stalled)
{
	struct row_seen *seen = w->seen[ch->id];
	/* acquire: pairs with the producers' claim RMW / release store */
	uint64_t claim = atomic_load_explicit(&ch->hdr->claim,
					      memory_order_acquire);
	for (uint32_t i = 0; i < ch->max_subs; i++) {
		struct ch_subscriber *e = &ch->subs[i];
		/* acquire: pairs with the release of the row's state */
		uint32_t st = atomic_load_explicit(&e->state,
						   memory_order_acquire);
		if (st == SUB_FREE)
			continue;
		w->stats.released += retry_release_dead(ch, i);
		if (st != SUB_ACTIVE || seen == NULL)
			continue;
		/* acquire: pairs with the subscriber's release of it */
		uint64_t cur = atomic_load_explicit(&e->cursor,
						    memory_order_acquire);
		if (cur != seen[i].cursor || cur == claim) {
			seen[i].cursor = cur;
			seen[i].since_ns = now;
		} else if (now - seen[i].since_ns >=
			   w->opts.stall_ms * 1000000ull) {
			(*stalled)++;
		}
	}
}

/* Publish this watchdog's counts into the bus's totals. */
static void publish(shmbus_watchdog_t *w, const shmbus_watchdog_stats_t *was,
		    uint64_t now)
{
	struct sb_watchdog_counters *c = &w->bus->sb->wd;
	/* relaxed: statistics; one watchdog at a time (the lease) */
#define ADD(f)                                                                 \
	atomic_store_explicit(&c->f,                                           \
			      atomic_load_explicit(&c->f,                      \
						   memory_order_relaxed) +     \
				      (w->stats.f - was->f),                   \
			      memory_order_relaxed)
	ADD(passes);
	ADD(tombstones);
	ADD(evicted);
	ADD(expired);
	ADD(reaped);
	ADD(released);
#undef ADD
	atomic_store_explicit(&c->stalled, w->stats.stalled,
			      memory_order_relaxed);
	atomic_store_explicit(&c->last_pass_ns, now, memory_order_relaxed);
}

void shmbus_watchdog_counters(const shmbus_t *bus, shmbus_watchdog_stats_t *st)
{
	const struct sb_watchdog_counters *c = &bus->sb->wd;
	/* relaxed: statistics */
	st->passes = atomic_load_explicit(&c->passes, memory_order_relaxed);
	st->last_pass_ns =
		atomic_load_explicit(&c->last_pass_ns, memory_order_relaxed);
	st->tombstones =
		atomic_load_explicit(&c->tombstones, memory_order_relaxed);
	st->evicted = atomic_load_explicit(&c->evicted, memory_order_relaxed);
	st->expired = atomic_load_explicit(&c->expired, memory_order_relaxed);
	st->reaped = atomic_load_explicit(&c->reaped, memory_order_relaxed);
	st->released =
		atomic_load_explicit(&c->released, memory_order_relaxed);
	st->stalled = atomic_load_explicit(&c->stalled, memory_order_relaxed);
}

/* May a dead participant's row be freed? A multi-producer producer's only
 * once its last range lies below its channel's lowest cursor, so that no
 * hole can still name it when its id is reused. */
static bool reapable(const shmbus_watchdog_t *w, struct sb_participant *p)
{
	uint32_t c = p->channel_id;
	if (p->kind != PART_PRODUCER || c >= w->bus->max_channels ||
	    w->channels[c] == NULL ||
	    !(w->channels[c]->flags & SHMBUS_CH_MULTI_PRODUCER))
		return true;
	/* relaxed: the producer is dead; its last stores are visible (the
	 * kernel released its lock after them) */
	uint64_t hi = atomic_load_explicit(&p->claim_hi, memory_order_relaxed);
	return w->floor_known[c] && (int64_t)(w->floor[c] - hi) >= 0;
}

int shmbus_watchdog_pass(shmbus_watchdog_t *w)
{
	shmbus_t *bus = w->bus;
	shmbus_watchdog_stats_t was = w->stats;
	uint64_t now = shmbus_now_ns(), stalled = 0;
	/* Who is dead, decided before anything is read: a participant that
	 * dies during the pass may have claimed or taken after our reads, so
	 * its row waits for the next pass. */
	for (uint32_t id = 1; id < bus->max_participants; id++)
		/* acquire: pairs with the release in bus_participant_take */
		bit_set(w->dead, id,
			atomic_load_explicit(&bus->parts[id].state,
					     memory_order_acquire) ==
					PART_LIVE &&
				bus_participant_dead(bus, id));
	memset(w->floor_known, 0, bus->max_channels * sizeof(bool));
	for (uint32_t id = 0; id < bus->max_channels; id++) {
		/* acquire: pairs with the release in publish_row */
		if (atomic_load_explicit(&bus->chtab[id].state,
					 memory_order_acquire) != CHENT_READY)
			continue;
		if (w->channels[id] == NULL) {
			char name[SHMBUS_NAME_BYTES];
			memcpy(name, bus->chtab[id].name, sizeof(name));
			name[sizeof(name) - 1] = 0;
			if (shmbus_channel_open(bus, name, NULL,
						&w->channels[id]) != 0)
				continue; /* reported by whoever uses it */
			w->seen[id] = calloc(w->channels[id]->max_subs,
					     sizeof(struct row_seen));
		}
		shmbus_channel_t *ch = w->channels[id];
		check_rows(w, ch, now, &stalled);
		int n = shmbus_channel_expire(ch);
		if (n > 0)
			w->stats.expired += (uint64_t)n;
		if (ch->stall_policy != SHMBUS_STALL_BLOCK) {
			n = shmbus_channel_evict(ch, w->opts.evict_grace_ms);
			if (n > 0)
				w->stats.evicted += (uint64_t)n;
		}
		if (ch->flags & SHMBUS_CH_MULTI_PRODUCER)
			repair_channel(w, ch);
	}
	for (uint32_t id = 1; id < bus->max_participants; id++) {
		struct sb_participant *p = &bus->parts[id];
		if (!bit_get(w->dead, id) || !reapable(w, p))
			continue;
		if (bus_lock(bus))
			break;
		/* re-check under the lock: the allocator runs under it */
		if (bus_participant_dead(bus, id)) {
			atomic_store_explicit(&p->claim_intent, 0,
					      memory_order_relaxed);
			/* release: readers of the row (tools, allocator) */
			atomic_store_explicit(&p->state, PART_FREE,
					      memory_order_release);
			w->stats.reaped++;
		}
		bus_unlock(bus);
	}
	w->stats.passes++;
	w->stats.stalled = stalled;
	w->stats.last_pass_ns = now;
	publish(w, &was, now);
	return 0;
}

void shmbus_watchdog_get_stats(const shmbus_watchdog_t *w,
			       shmbus_watchdog_stats_t *st)
{
	*st = w->stats;
}

static void free_watchdog(shmbus_watchdog_t *w)
{
	free(w->channels);
	free(w->seen);
	free(w->floor);
	free(w->floor_known);
	free(w->dead);
	free(w);
}

int shmbus_watchdog_open(shmbus_t *bus, const shmbus_watchdog_opts_t *opts,
			 shmbus_watchdog_t **out)
{
	if (bus == NULL || out == NULL)
		return shmbus_seterr(SHMBUS_EINVAL, "bus and out required");
	*out = NULL;
	shmbus_watchdog_t *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return shmbus_seterr(SHMBUS_ENOMEM, "watchdog");
	w->channels = calloc(bus->max_channels, sizeof(*w->channels));
	w->seen = calloc(bus->max_channels, sizeof(*w->seen));
	w->floor = calloc(bus->max_channels, sizeof(*w->floor));
	w->floor_known = calloc(bus->max_channels, sizeof(*w->floor_known));
	w->dead = calloc(bus->max_participants / 8 + 1, 1);
	if (w->channels == NULL || w->seen == NULL || w->floor == NULL ||
	    w->floor_known == NULL || w->dead == NULL) {
		free_watchdog(w);
		return shmbus_seterr(SHMBUS_ENOMEM, "watchdog channels");
	}
	w->bus = bus;
	if (opts)
		w->opts = *opts;
	if (w->opts.period_ms == 0)
		w->opts.period_ms = 10;
	if (w->opts.evict_grace_ms == 0)
		w->opts.evict_grace_ms = 1000;
	if (w->opts.stall_ms == 0)
		w->opts.stall_ms = 1000;
	/* the lease: one watchdog per bus, held by the kernel for us */
	int rc = shm_lock_byte(bus->map.fd, WATCHDOG_LOCK_BYTE);
	if (rc) {
		free_watchdog(w);
		return rc == SHMBUS_EBUSY
			       ? shmbus_seterr(SHMBUS_EBUSY,
					       "bus '%s' already has a live "
					       "watchdog",
					       bus->name)
			       : rc;
	}
	*out = w;
	return 0;
}

static void *watchdog_thread(void *arg)
{
	shmbus_watchdog_t *w = arg;
	struct timespec ts = {(time_t)(w->opts.period_ms / 1000),
			      (long)(w->opts.period_ms % 1000) * 1000000L};
	/* relaxed: a flag; the join in shmbus_watchdog_close orders the rest */
	while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
		shmbus_watchdog_pass(w);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

int shmbus_watchdog_start(shmbus_t *bus, const shmbus_watchdog_opts_t *opts,
			  shmbus_watchdog_t **out)
{
	int rc = shmbus_watchdog_open(bus, opts, out);
	if (rc)
		return rc;
	int err = pthread_create(&(*out)->thread, NULL, watchdog_thread, *out);
	if (err) {
		shmbus_watchdog_close(*out);
		*out = NULL;
		return shmbus_seterr_sys(SHMBUS_ESYS, err, "watchdog thread");
	}
	(*out)->running = true;
	return 0;
}

void shmbus_watchdog_close(shmbus_watchdog_t *w)
{
	if (w == NULL)
		return;
	if (w->running) {
		atomic_store(&w->stop, true);
		pthread_join(w->thread, NULL);
	}
	for (uint32_t id = 0; id < w->bus->max_channels; id++) {
		if (w->channels[id])
			shmbus_channel_close(w->channels[id]);
		free(w->seen[id]);
	}
	shm_unlock_byte(w->bus->map.fd, WATCHDOG_LOCK_BYTE);
	free_watchdog(w);
}
