/*
 * Durable broadcast subscribers: cursors, join, poll and dispatch.
 *
 * Each subscriber owns one row of the channel's subscriber table, found by
 * name. Its cursor is the next sequence it will consume; it is stored (with
 * release) once per batch, after the batch's handlers returned, so delivery
 * is at-least-once across a crash and producers never reuse a slot that is
 * still being read.
 *
 * Join protocol (a new name), against producers' cached gating minimum:
 *   1. cursor = C0 = claim (provisional)          relaxed
 *   2. sub_hwm covers the row; state = JOINING      seq_cst
 *   3. C1 = claim                                  seq_cst
 *   4. cursor = C1; state = ACTIVE; start at C1     release
 * A producer's gating scan is fenced seq_cst after its claim. Either it sees
 * the row (and gates on C0 <= C1), or its claim precedes step 3 in the single
 * total order, so C1 is past everything it claimed and its cached minimum is
 * at most C1: it cannot write sequence C1 + capacity or beyond before it
 * rescans, and the rescan sees the row.
 *
 * Reading. Back-pressure channels: acquire-load the slot marker; if it is
 * COMMITTED in the expected lap, the record is read in place (zero-copy).
 * Overwrite channels: the producer may lap the reader, so the record is
 * copied out and then validated against the claim sequence (a seqlock);
 * a lapped reader skips to the oldest intact record and counts the loss.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "barrier.h"
#include "copy.h"
#include "error.h"
#include "evict.h"
#include "failpoint.h"
#include "follower.h"
#include "group.h"
#include "internal.h"
#include "private_export.h"
#include "registry.h"
#include "sub.h"
#include "wait.h"

#define DEFAULT_BATCH 256u

static int rejoin(shmbus_sub_t *s, uint64_t from);
static bool evicted(shmbus_sub_t *s);
static void publish_counters(shmbus_sub_t *s);
static void sub_close_all(shmbus_channel_t *ch);

/* Store the cursor after the handlers of [.., seq) returned, and wake
 * whoever waits for it. */
static void advance(shmbus_sub_t *s, uint64_t seq)
{
	/* release: our reads of these slots happen-before a producer
	 * reuses them; pairs with the acquire in channel_min_gating */
	atomic_store_explicit(&s->ent->cursor, seq, memory_order_release);
	s->next_seq = seq;
	cursor_moved(s->hdr);
}

/* What the handlers took is where it must be (the journaler's flush). */
static inline bool ready_to_advance(shmbus_sub_t *s)
{
	return __builtin_expect(s->before_advance == NULL, 1) ||
	       s->before_advance(s->ctx) == 0;
}

/*
 * Evict channels: an evicted subscriber's slots are rewritten while it may
 * be reading them, so a record is copied out of its slot (relaxed words,
 * as producers write them) and handed over only if the row was not
 * evicted by the time the copy was done (evicted()). Returns false if the
 * copy may be torn: the subscriber rejoins, and the record is missed.
 */
static inline bool copy_intact(shmbus_sub_t *s, const struct slot_header *h,
			       uint64_t seq, uint32_t m, shmbus_record_t *r)
{
	struct slot_snapshot sn;
	slot_snapshot(s->ch, h, &sn);
	copy_out_relaxed(s->copy, slot_payload(s->ch, h), sn.len);
	if (evicted(s))
		return false;
	fill_record(s, r, seq, m, sn.len_flags, sn.timestamp, sn.key,
		    sn.origin, s->copy);
	return true;
}

enum held { HELD_WAITING = 0, HELD_CONSUMED = 1, HELD_LAPPED = 2 };

/* Held at the ring record next_seq (retry.h): deliver it again once due.
 * HELD_LAPPED: evicted meanwhile, the slot may hold a later lap. */
static enum held poll_held(shmbus_sub_t *s)
{
	if (shmbus_now_ns() < s->hold.due)
		return HELD_WAITING;
	uint64_t seq = s->next_seq;
	struct slot_header *h = slot_at(s->ch, seq);
	/* acquire: pairs with the producer's release at commit (the slot
	 * cannot have changed since, unless we were evicted: our cursor
	 * gates it) */
	uint32_t m = atomic_load_explicit(&h->marker, memory_order_acquire);
	shmbus_record_t r;
	if (s->evictable) {
		if (!copy_intact(s, h, seq, m, &r))
			return HELD_LAPPED;
	} else {
		record_constants(s, &r);
		record_fill_slot(&r, s->ch->record_size, seq, m, h,
				 s->ch->compact);
	}
	r.attempt = s->hold.attempts + 1;
	s->hold.active = false;
	s->stats.retried++;
	if (dispatch(s, &r) != RETRY_CONSUMED || !ready_to_advance(s))
		return HELD_WAITING;
	s->ent->holding = 0;
	advance(s, seq + 1);
	return HELD_CONSUMED;
}

/*
 * Back-pressure channels. The record is read in place (zero-copy): our
 * cursor keeps producers off its slot until the handler returned. On evict
 * channels (`evictable`, a constant in each of the copies the compiler
 * makes) eviction lifts that, so each record is copied out and checked
 * first (copy_intact). `compact` (SHMBUS_CH_COMPACT, 8-byte slot headers)
 * is a constant too: a plain channel's loop is the one it always was.
 */
static inline __attribute__((always_inline)) int
poll_ring(shmbus_sub_t *s, uint32_t max, const bool evictable,
	  const bool compact)
{
	shmbus_channel_t *ch = s->ch;
	/* acquire: pairs with the evictor's release of EVICTED */
	if (evictable &&
	    atomic_load_explicit(&s->ent->state, memory_order_acquire) ==
		    SUB_EVICTED)
		return rejoin(s, s->next_seq);
	/* relaxed: a hint, as in retry_poll, which the call spares a
	 * subscriber with nothing to retry */
	uint32_t done =
		__builtin_expect(atomic_load_explicit(&s->ent->retry_due,
						      memory_order_relaxed) ==
					 UINT64_MAX,
				 1)
			? 0
			: (uint32_t)retry_poll(s, max);
	if (__builtin_expect(s->hold.active, 0)) {
		if (done < max) {
			enum held h = poll_held(s);
			if (h == HELD_LAPPED)
				return rejoin(s, s->next_seq);
			done += h == HELD_CONSUMED;
		}
		if (s->hold.active)
			return (int)done;
	}
	uint64_t seq = s->next_seq;
	const uint32_t record_size = ch->record_size, slot_size = ch->slot_size;
	shmbus_record_t r; /* refilled per record, the rest set once */
	record_constants(s, &r);
	while (done < max) {
		uint32_t lim = max - done < s->batch ? max - done : s->batch;
		if (s->n_after) {
			if ((int64_t)(s->barrier - seq) <= 0)
				s->barrier = barrier_min(ch, s->after,
							 s->n_after,
							 seq + ch->capacity);
			/* an upstream may even be behind our start */
			if ((int64_t)(s->barrier - seq) <= 0)
				break;
			uint64_t avail = s->barrier - seq;
			if (avail < lim)
				lim = (uint32_t)avail;
		}
		/* walk the slots with a pointer, and the expected marker tag
		 * with it: a multiply and a shift less per record */
		uint8_t *slot = (uint8_t *)slot_at(ch, seq);
		uint8_t *end = ch->slots_end;
		uint64_t lap = lap_of(ch, seq);
		uint32_t want = marker_tag_make(lap, SLOT_COMMITTED);
		uint32_t n = 0;
		for (; n < lim; n++, seq++) {
			struct slot_header *h = (struct slot_header *)slot;
			/* acquire: pairs with the producer's release store of
			 * the marker in commit; header and payload are then
			 * visible */
			uint32_t m = atomic_load_explicit(&h->marker,
							  memory_order_acquire);
			uint32_t tag = marker_tag(m);
			if (__builtin_expect(tag == want, 1)) {
				if (!evictable)
					record_fill_slot(&r, record_size, seq,
							 m, h, compact);
				else if (!copy_intact(s, h, seq, m, &r))
					return rejoin(s, seq);
				if (n == 0 && s->lat)
					lat_sample(s, r.timestamp);
				if (__builtin_expect(dispatch(s, &r) !=
							     RETRY_CONSUMED,
						     0))
					break; /* held at seq */
			} else if (tag == (want ^ SLOT_COMMITTED ^
					   SLOT_TOMBSTONE)) {
				s->stats.tombstones++;
			} else {
				break;
			}
			slot += slot_size;
			if (slot == end) {
				slot = ch->slots;
				want = marker_tag_make(++lap, SLOT_COMMITTED);
			}
		}
		/* a slot of a later lap stopped the batch, or one may next
		 * time: tell the loss now (what was handed over was whole) */
		if (evictable && evicted(s))
			return rejoin(s, seq);
		if (n == 0)
			break;
		if (!ready_to_advance(s))
			break; /* the batch is delivered again */
		FAILPOINT(FP_SUB_BEFORE_CURSOR);
		advance(s, seq);
		done += n;
		if (n < lim)
			break;
	}
	return (int)done;
}

/* Evict channels' loops (which copy each record out anyway), out of
 * line: the other two stay inlined in shmbus_poll, where four were too
 * many for the compiler to inline (a call and its register saves cost 20
 * instructions of a one-record poll). */
static __attribute__((noinline)) int poll_evictable(shmbus_sub_t *s,
						    uint32_t max)
{
	return s->ch->compact ? poll_ring(s, max, true, true)
			      : poll_ring(s, max, true, false);
}

static inline __attribute__((always_inline)) int
poll_inplace(shmbus_sub_t *s, uint32_t max)
{
	if (__builtin_expect(s->evictable, 0))
		return poll_evictable(s, max);
	return s->ch->compact ? poll_ring(s, max, false, true)
			      : poll_ring(s, max, false, false);
}

/* Lapped at seq by a producer whose claim is c: skip to the oldest record
 * that cannot have been overwritten, and count what was skipped. */
static uint64_t skip_lapped(shmbus_sub_t *s, uint64_t seq, uint64_t c)
{
	uint64_t to = c - s->ch->capacity;
	s->stats.lost += to - seq;
	/* the row keeps the name's total across handles */
	atomic_store_explicit(&s->ent->lost, s->lost_base + s->stats.lost,
			      memory_order_relaxed);
	return to;
}

static int poll_copy(shmbus_sub_t *s, uint32_t max)
{
	shmbus_channel_t *ch = s->ch;
	struct ch_header *hdr = s->hdr;
	uint32_t done = (uint32_t)retry_poll(s, max);
	uint64_t seq = s->next_seq;
	while (done < max) {
		struct slot_header *h = slot_at(ch, seq);
		/* acquire: pairs with the producer's release store of the
		 * marker in commit */
		uint32_t m = atomic_load_explicit(&h->marker,
						  memory_order_acquire);
		uint32_t tag = marker_tag(m);
		uint64_t lap = lap_of(ch, seq);
		uint64_t c;
		if (tag != marker_tag_make(lap, SLOT_COMMITTED) &&
		    tag != marker_tag_make(lap, SLOT_TOMBSTONE)) {
			c = atomic_load_explicit(&hdr->claim,
						 memory_order_relaxed);
			if (c - seq > ch->capacity) {
				seq = skip_lapped(s, seq, c);
				continue;
			}
			break; /* not yet published */
		}
		struct slot_snapshot sn;
		slot_snapshot(ch, h, &sn);
		copy_out_relaxed(s->copy, slot_payload(ch, h), sn.len);
		/* acquire: pairs with the producer's release fence after its
		 * claim store; if any word we copied was written for a later
		 * lap, the claim load below sees that lap's claim */
		atomic_thread_fence(memory_order_acquire);
		c = atomic_load_explicit(&hdr->claim, memory_order_relaxed);
		if (c - seq > ch->capacity) {
			seq = skip_lapped(s, seq, c); /* copy may be torn */
			continue;
		}
		if (tag == marker_tag_make(lap, SLOT_COMMITTED)) {
			shmbus_record_t r;
			fill_record(s, &r, seq, m, sn.len_flags, sn.timestamp,
				    sn.key, sn.origin, s->copy);
			if (done == 0 && s->lat)
				lat_sample(s, sn.timestamp);
			/* never held: an overwrite reader's failures go to
			 * its segment or the DLQ (may_hold is false) */
			dispatch(s, &r);
		} else {
			s->stats.tombstones++;
		}
		seq++;
		done++;
	}
	if (seq != s->next_seq && ready_to_advance(s)) {
		/* release: for readers of the row (tools); nobody gates on an
		 * overwrite reader */
		atomic_store_explicit(&s->ent->cursor, seq,
				      memory_order_release);
		s->next_seq = seq;
	}
	return (int)done;
}

int shmbus_poll(shmbus_sub_t *s, uint32_t max)
{
	if (s == NULL)
		return SHMBUS_EINVAL;
	if (max > INT32_MAX) /* the count is returned as an int */
		max = INT32_MAX;
	if (s->registry) {
		registry_read_lock();
		/* one handler set for the whole poll; none: no record may
		 * pass (the cursor stays where no handler saw a record) */
		s->ctx = registry_handlers(s->reg_node);
		if (s->ctx == NULL) {
			registry_read_unlock();
			return SHMBUS_ENOHANDLER;
		}
	}
	int n = s->gm.grp		    ? group_poll(s, max)
		: __builtin_expect(s->source != NULL, 0) ? s->source->poll(s, max)
		: s->overwrite			    ? poll_copy(s, max)
						    : poll_inplace(s, max);
	if (s->registry)
		registry_read_unlock();
	if (n > 0)
		publish_counters(s);
	return n;
}

static bool available(void *arg)
{
	shmbus_sub_t *s = arg;
	if (s->registry && registry_count(s->reg_node) == 0)
		return false; /* nothing can be delivered: sleep on */
	uint64_t due = retry_next_due(s);
	if (due != UINT64_MAX && due <= shmbus_now_ns())
		return true;
	if (s->hold.active) /* nothing new before the held record */
		return false;
	if (s->gm.grp)
		return group_available(s);
	shmbus_channel_t *ch = s->ch;
	uint64_t seq = s->next_seq;
	if (s->n_after && (int64_t)(barrier_min(ch, s->after, s->n_after,
						seq + ch->capacity) -
				    seq) <= 0)
		return false; /* upstream has not passed it yet */
	/* acquire: pairs with the producer's release store in commit */
	uint32_t tag = marker_tag(atomic_load_explicit(
		&slot_at(ch, seq)->marker, memory_order_acquire));
	uint64_t lap = lap_of(ch, seq);
	if (tag == marker_tag_make(lap, SLOT_COMMITTED) ||
	    tag == marker_tag_make(lap, SLOT_TOMBSTONE))
		return true;
	if (s->overwrite) /* lapped: poll has a loss to count */
		return atomic_load_explicit(&s->hdr->claim,
					    memory_order_relaxed) -
			       seq >
		       ch->capacity;
	return false;
}

int shmbus_sub_wait(shmbus_sub_t *s, uint64_t timeout_ns)
{
	if (s == NULL)
		return SHMBUS_EINVAL;
	if (s->source)
		return s->source->wait(s, timeout_ns);
	return wait_until_due(s->wait, &s->hdr->data_ec, &s->hdr->data_sleepers,
			      timeout_ns,
			      retry_next_due(s), available, s);
}

shmbus_channel_t *sub_channel(const shmbus_sub_t *s)
{
	return s->ch;
}

int sub_attach_poller(shmbus_sub_t *s, shmbus_poller_t *pl,
		      void (*forget)(shmbus_poller_t *, shmbus_sub_t *))
{
	if (pl && s->poller)
		return -1;
	s->poller = pl;
	s->poller_forget = forget;
	return 0;
}

#define DISPATCH_WAIT_NS 10000000ull /* re-check the stop flag: 10 ms */

static void *dispatcher(void *arg)
{
	shmbus_sub_t *s = arg;
	/* relaxed: a flag; the join in shmbus_sub_stop orders the rest */
	while (!atomic_load_explicit(&s->stop, memory_order_relaxed))
		if (shmbus_poll(s, s->batch) <= 0) /* no handler: wait too */
			shmbus_sub_wait(s, DISPATCH_WAIT_NS);
	return NULL;
}

int shmbus_sub_start(shmbus_sub_t *s, int cpu)
{
	if (s == NULL || s->running)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "no subscriber, or already started");
	atomic_store(&s->stop, false);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	if (cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		if (cpu >= CPU_SETSIZE) {
			pthread_attr_destroy(&attr);
			return shmbus_seterr(SHMBUS_EINVAL, "cpu %d", cpu);
		}
		CPU_SET(cpu, &set);
		pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	}
	int err = pthread_create(&s->thread, &attr, dispatcher, s);
	pthread_attr_destroy(&attr);
	if (err)
		return shmbus_seterr_sys(SHMBUS_ESYS, err,
					 "dispatcher thread (cpu %d)", cpu);
	s->running = true;
	return 0;
}

int shmbus_sub_stop(shmbus_sub_t *s)
{
	if (s == NULL || !s->running)
		return shmbus_seterr(SHMBUS_EINVAL, "no dispatcher running");
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	s->running = false;
	return 0;
}

/* A group's members share its row: each adds what it did since it last
 * added (one fetch-add per counter per poll that handled records). */
static void add_group_counters(shmbus_sub_t *s)
{
	struct ch_subscriber *e = s->ent;
	shmbus_sub_stats_t *b = &s->base; /* here: what was added so far */
	/* relaxed: statistics for tools. The failure counters are added
	 * only when they moved: a fetch-add on a line the members share is
	 * not free, and they rarely move */
	atomic_fetch_add_explicit(&e->delivered,
				  s->stats.delivered - b->delivered,
				  memory_order_relaxed);
	if (s->stats.failed != b->failed || s->stats.retried != b->retried ||
	    s->stats.dead_lettered != b->dead_lettered) {
		atomic_fetch_add_explicit(&e->failed,
					  s->stats.failed - b->failed,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&e->retried,
					  s->stats.retried - b->retried,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&e->dead_lettered,
					  s->stats.dead_lettered -
						  b->dead_lettered,
					  memory_order_relaxed);
	}
	*b = s->stats;
}

/* The name's counters in its row: the totals of every handle it had. */
static void publish_counters(shmbus_sub_t *s)
{
	struct ch_subscriber *e = s->ent;
	if (s->gm.grp) {
		add_group_counters(s);
		return;
	}
	/* relaxed: statistics for tools, written by the row's one holder */
	atomic_store_explicit(&e->delivered,
			      s->base.delivered + s->stats.delivered,
			      memory_order_relaxed);
	/* the failure counters rarely move: stored when they did */
	uint64_t fails = s->stats.failed + s->stats.retried +
			 s->stats.dead_lettered;
	if (__builtin_expect(fails == s->fails_stored, 1))
		return;
	s->fails_stored = fails;
	atomic_store_explicit(&e->failed, s->base.failed + s->stats.failed,
			      memory_order_relaxed);
	atomic_store_explicit(&e->retried, s->base.retried + s->stats.retried,
			      memory_order_relaxed);
	atomic_store_explicit(&e->dead_lettered,
			      s->base.dead_lettered + s->stats.dead_lettered,
			      memory_order_relaxed);
}

void shmbus_sub_get_stats(const shmbus_sub_t *s, shmbus_sub_stats_t *st)
{
	*st = s->stats;
	st->cursor = s->next_seq;
}

static int hold_row(shmbus_channel_t *ch, uint32_t i, const char *name)
{
	int rc = bit_get(ch->held_subs, i)
			 ? SHMBUS_EBUSY
			 : shm_lock_byte(ch->map.fd, SUBLOCK_BASE + (off_t)i);
	if (rc == SHMBUS_EBUSY)
		return shmbus_seterr(SHMBUS_EBUSY,
				     "subscriber '%s' on channel '%s' is held "
				     "by a live process",
				     name, ch->name);
	if (rc == 0)
		bit_set(ch->held_subs, i, true);
	return rc;
}

static void drop_row(shmbus_channel_t *ch, uint32_t i)
{
	shm_unlock_byte(ch->map.fd, SUBLOCK_BASE + (off_t)i);
	bit_set(ch->held_subs, i, false);
}

/* Under the bus lock: release rows abandoned longer than their ttl. */
static int expire_rows(shmbus_channel_t *ch)
{
	int n = 0;
	uint64_t now = shmbus_now_ns();
	for (uint32_t i = 0; i < ch->max_subs; i++) {
		struct ch_subscriber *e = &ch->subs[i];
		uint64_t ttl = e->ttl_ns;
		/* acquire: pairs with the release of the row's state */
		if (ttl == 0 || e->group != 0 || bit_get(ch->held_subs, i) ||
		    atomic_load_explicit(&e->state, memory_order_acquire) !=
			    SUB_ACTIVE ||
		    shm_byte_held(ch->map.fd, SUBLOCK_BASE + (off_t)i) ||
		    barrier_has_dependents(ch, i))
			continue;
		uint64_t since = atomic_load_explicit(&e->abandoned_ns,
						      memory_order_relaxed);
		if (since == 0) { /* died without closing: start the clock */
			atomic_store_explicit(&e->abandoned_ns, now,
					      memory_order_relaxed);
		} else if (now - since >= ttl) {
			retry_evacuate(ch, i, "subscriber expired");
			/* release: producers stop gating on it */
			atomic_store_explicit(&e->state, SUB_FREE,
					      memory_order_release);
			memset(e->name, 0, sizeof(e->name));
			n++;
		}
	}
	return n;
}

int shmbus_channel_expire(shmbus_channel_t *ch)
{
	if (ch == NULL)
		return shmbus_seterr(SHMBUS_EINVAL, "channel is NULL");
	int rc = bus_lock(ch->bus);
	if (rc)
		return rc;
	int n = expire_rows(ch);
	bus_unlock(ch->bus);
	return n;
}

/* Under the bus lock: the row (re)joins at the present, by the protocol
 * at the top of the file; returns where it starts. */
static uint64_t enter_row(shmbus_channel_t *ch, uint32_t i)
{
	struct ch_header *h = ch->hdr;
	struct ch_subscriber *e = &ch->subs[i];
	/* steps 1-4 of the join protocol (top of this file); the seq_cst
	 * stores and load pair with the fence in channel_min_gating */
	uint64_t c0 = atomic_load_explicit(&h->claim, memory_order_relaxed);
	/* release: a dependent that acquires this cursor sees what the
	 * rejoin did before (evict_dependents) */
	atomic_store_explicit(&e->cursor, c0, memory_order_release);
	if (atomic_load_explicit(&h->sub_hwm, memory_order_relaxed) < i + 1)
		atomic_store_explicit(&h->sub_hwm, i + 1,
				      memory_order_seq_cst);
	atomic_store_explicit(&e->state, SUB_JOINING, memory_order_seq_cst);
	uint64_t c1 = atomic_load_explicit(&h->claim, memory_order_seq_cst);
	/* release: gating scanners that acquire the cursor */
	atomic_store_explicit(&e->cursor, c1, memory_order_release);
	atomic_store_explicit(&e->state, SUB_ACTIVE, memory_order_release);
	return c1;
}

/* Under the bus lock: a new name takes a free row. */
static uint64_t join_row(shmbus_channel_t *ch, uint32_t i, const char *name)
{
	struct ch_subscriber *e = &ch->subs[i];
	/* release: pairs with the acquire in follower_check; the row's
	 * cursor stores below (enter_row) publish it to cursor readers */
	atomic_store_explicit(&e->gen,
			      atomic_load_explicit(&e->gen,
						   memory_order_relaxed) +
				      1,
			      memory_order_release);
	memset(e->name, 0, sizeof(e->name));
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->created_ns = shmbus_now_ns();
	e->n_after = 0;
	e->stall_since_ns = 0;
	e->holding = 0;
	/* relaxed: nobody reads a fresh row's counters but tools */
	atomic_store_explicit(&e->lost, 0, memory_order_relaxed);
	atomic_store_explicit(&e->delivered, 0, memory_order_relaxed);
	atomic_store_explicit(&e->failed, 0, memory_order_relaxed);
	atomic_store_explicit(&e->retried, 0, memory_order_relaxed);
	atomic_store_explicit(&e->dead_lettered, 0, memory_order_relaxed);
	atomic_store_explicit(&e->retry_due, UINT64_MAX, memory_order_relaxed);
	for (uint32_t b = 0; b < SHMBUS_LAT_BUCKETS; b++)
		atomic_store_explicit(&ch->stats[i].lat[b], 0,
				      memory_order_relaxed);
	return enter_row(ch, i);
}

/* The journal library's spill opener (sub.h), once it is loaded. */
static _Atomic(sub_spill_open_fn) spill_opener;

void sub_spill_register(sub_spill_open_fn open)
{
	/* release: pairs with the acquire in spill_open */
	atomic_store_explicit(&spill_opener, open, memory_order_release);
}
SHMBUS_PRIVATE_EXPORT(sub_spill_register);

static sub_spill_open_fn spill_opener_get(void)
{
	/* acquire: pairs with the release in sub_spill_register */
	return atomic_load_explicit(&spill_opener, memory_order_acquire);
}

static int spill_open(shmbus_sub_t *s, const char *dir, uint64_t from)
{
	sub_spill_open_fn open = spill_opener_get();
	if (open == NULL) /* refused at subscribe; unloaded since */
		return shmbus_seterr(SHMBUS_ENOTSUP,
				     "channel '%s' spills to its journal, and "
				     "the journal library is not loaded",
				     s->ch->name);
	return open(s, dir, from);
}

void sub_source_set(shmbus_sub_t *s, struct sub_source *src)
{
	struct sub_source *old = s->source;
	s->source = src;
	if (old && old != src)
		old->release(old);
}
SHMBUS_PRIVATE_EXPORT(sub_source_set);

int shmbus_sub_replaying(const shmbus_sub_t *s)
{
	return s && s->source ? 1 : 0;
}

/* Rejoined at next_seq, having read up to `from`: on a spill channel what
 * it skipped comes from the journal (0); otherwise, or if the journal
 * cannot be read (said in shmbus_errmsg), it is counted as missed and
 * SHMBUS_ELAPPED returned once. */
static int skipped(shmbus_sub_t *s, uint64_t from)
{
	if (s->spill_dir && from != s->next_seq &&
	    spill_open(s, s->spill_dir, from) == 0)
		return 0;
	s->stats.missed += s->next_seq - from;
	return SHMBUS_ELAPPED;
}

/* Under the bus lock: an evicted row rejoins at the present; what runs
 * after it must too (evict.c). Returns where it starts, or 0 and an error
 * in *rc. */
static uint64_t reenter_row(shmbus_channel_t *ch, uint32_t i, int *rc)
{
	*rc = evict_dependents(ch, i);
	return *rc ? 0 : enter_row(ch, i);
}

/* An evicted subscriber comes back: rejoin at the present and count what
 * it skipped from `from` on, the first record its handler did not get
 * (or read it from the journal). Returns SHMBUS_ELAPPED (once), 0
 * (spilled), or an error. */
static int rejoin(shmbus_sub_t *s, uint64_t from)
{
	int rc = bus_lock(s->ch->bus);
	if (rc)
		return rc;
	uint64_t c1 = reenter_row(s->ch, s->index, &rc);
	if (rc == 0) {
		/* a record we were held at is behind us now: missed, like
		 * the rest (or read again from the journal) */
		s->hold.active = false;
		s->ent->holding = 0;
	}
	bus_unlock(s->ch->bus);
	if (rc)
		return rc;
	s->next_seq = c1;
	s->barrier = c1;
	return skipped(s, from);
}

/*
 * Evict channels: were we evicted (before, or while copying a record)?
 * A producer rewrites a slot we are reading only after its gating scan saw
 * our row EVICTED; it fences (release) after its claim, before the slot
 * writes. If our copy read such a write, our acquire fence below
 * synchronizes with that fence, so the scan's load of EVICTED
 * happens-before our load of the state, which therefore reads EVICTED too
 * (read-read coherence; only we write ACTIVE back, by rejoining). The
 * claim itself proves nothing on a multi-producer channel: a producer
 * waiting for space has claimed past us without writing anything.
 */
static bool evicted(shmbus_sub_t *s)
{
	atomic_thread_fence(memory_order_acquire);
	/* relaxed: ordered by the fence above */
	return atomic_load_explicit(&s->ent->state, memory_order_relaxed) ==
	       SUB_EVICTED;
}

/* A broadcast name resumes: its totals go on from the last holder's (its
 * death or close -- the kernel's lock release, or the bus lock -- orders
 * them before us), and so does a hold it left. */
static void resume_counters(shmbus_sub_t *s)
{
	/* relaxed: statistics */
	s->base.delivered = atomic_load_explicit(&s->ent->delivered,
						 memory_order_relaxed);
	s->base.failed = atomic_load_explicit(&s->ent->failed,
					      memory_order_relaxed);
	s->base.retried = atomic_load_explicit(&s->ent->retried,
					       memory_order_relaxed);
	s->base.dead_lettered = atomic_load_explicit(&s->ent->dead_lettered,
						     memory_order_relaxed);
	retry_resume(s);
}

/* Under the bus lock: undo a fresh join (the row must not gate). */
static void unjoin_row(shmbus_channel_t *ch, uint32_t row)
{
	struct ch_subscriber *e = &ch->subs[row];
	retry_evacuate(ch, row, "subscriber removed");
	follower_forget(ch, row); /* a journaler's name removed */
	/* release: producers stop gating on it from their next scan */
	atomic_store_explicit(&e->state, SUB_FREE, memory_order_release);
	memset(e->name, 0, sizeof(e->name));
	e->group = 0;
}

/* Under the bus lock: find (resume) or create (join) s's row, declare its
 * barrier, and for a group member take a member index. */
static int bind_row(shmbus_sub_t *s, const shmbus_sub_opts_t *opts,
		    bool group)
{
	shmbus_channel_t *ch = s->ch;
	const char *kind = group ? "group" : "subscriber";
	expire_rows(ch);
	int free_row, rc = 0;
	int row = channel_find_row(ch, opts->name, &free_row);
	bool fresh = row < 0;
	if (row >= 0 && (ch->subs[row].group != 0) != group)
		return shmbus_seterr(SHMBUS_EEXIST,
				     "'%s' on channel '%s' is not a %s",
				     opts->name, ch->name, kind);
	if (fresh && free_row < 0)
		return shmbus_seterr(SHMBUS_EFULL,
				     "channel '%s': all %u subscriber rows are "
				     "used (unsubscribe old names, or raise "
				     "max_subscribers)",
				     ch->name, ch->max_subs);
	if (fresh)
		row = free_row;
	/* a broadcast name is held by one live process; a group's by none
	 * (its members hold member bytes) */
	if (!group && (rc = hold_row(ch, (uint32_t)row, opts->name)))
		return rc;
	s->index = (uint32_t)row;
	s->ent = &ch->subs[row];
	if (fresh) {
		s->next_seq = join_row(ch, (uint32_t)row, opts->name);
		s->ent->group = 0;
	} else if (/* acquire: pairs with the evictor's release */
		   atomic_load_explicit(&s->ent->state,
					memory_order_acquire) == SUB_EVICTED) {
		/* Evicted while away: rejoin now, count what was missed. */
		uint64_t cur = atomic_load_explicit(&s->ent->cursor,
						    memory_order_acquire);
		s->next_seq = reenter_row(ch, (uint32_t)row, &rc);
		s->away_from = cur; /* skipped() once the lock is released */
		s->ent->holding = 0;
		retry_release_dead(ch, (uint32_t)row);
	} else {
		/* Resume. The cursor was written by another process: check
		 * it before trusting it. */
		uint64_t cur = atomic_load_explicit(&s->ent->cursor,
						    memory_order_acquire);
		uint64_t claim = atomic_load_explicit(&ch->hdr->claim,
						      memory_order_acquire);
		/* a multi-producer claim may run ahead of the slowest cursor
		 * by a ring plus every waiting producer's claim */
		uint64_t ahead = (ch->flags & SHMBUS_CH_MULTI_PRODUCER)
					 ? (uint64_t)ch->capacity *
						   (ch->bus->max_participants + 1)
					 : ch->capacity;
		if ((int64_t)(claim - cur) < 0 ||
		    (!s->overwrite && claim - cur > ahead))
			rc = shmbus_seterr(SHMBUS_ECORRUPT,
					   "%s '%s' on channel '%s': cursor "
					   "%llu is not within a ring of the "
					   "claim sequence %llu",
					   kind, opts->name, ch->name,
					   (unsigned long long)cur,
					   (unsigned long long)claim);
		s->next_seq = cur;
		s->lost_base = atomic_load_explicit(&s->ent->lost,
						    memory_order_relaxed);
		/* retries a dead holder had in hand are ready again */
		retry_release_dead(ch, (uint32_t)row);
		if (!group)
			resume_counters(s);
	}
	if (rc == 0)
		rc = barrier_declare(ch, (uint32_t)row, opts->after,
				     opts->n_after, s->after,
				     group || s->spill_dir != NULL);
	if (rc == 0) {
		memcpy(s->ent->after, s->after, sizeof(s->ent->after));
		s->ent->n_after = opts->n_after;
		s->n_after = opts->n_after;
		s->barrier = s->next_seq;
	}
	if (rc == 0 && group)
		rc = group_attach(s, fresh,
				  (opts->flags & SHMBUS_GROUP_KEYED) != 0);
	if (rc) {
		if (fresh)
			unjoin_row(ch, (uint32_t)row);
		if (!group)
			drop_row(ch, (uint32_t)row);
		return rc;
	}
	s->ent->participant = s->part;
	s->ent->wait = s->wait;
	/* latency needs the records' publish time */
	if (!(opts->flags & SHMBUS_SUB_NO_LATENCY) &&
	    !(ch->flags & CHANNEL_UNSTAMPED))
		s->lat = &ch->stats[s->index];
	s->lat_left = 1; /* the first batch is sampled */
	s->clock = &ch->bus->clock;
	s->ent->retry_policy = s->rp.policy;
	s->ent->max_attempts = s->rp.max_attempts;
	s->ent->ttl_ns = group ? 0 : opts->ttl_ms * 1000000ull;
	atomic_store_explicit(&s->ent->abandoned_ns, 0, memory_order_relaxed);
	/* the bus lock also orders this process's threads */
	s->next = ch->subscribers;
	ch->subscribers = s;
	ch->close_subscribers = sub_close_all;
	return 0;
}

/* fn NULL: the registry's handlers of the channel, which must have one
 * (a misspelt SHMBUS_HANDLER would otherwise consume records unseen). */
static int registry_subscriber(shmbus_sub_t *s, const char *name, bool group)
{
	shmbus_channel_t *ch = s->ch;
	struct registry *r = ch->bus->registry;
	int rc = registry_node(r, ch->name, &s->reg_node);
	if (rc == 0 && registry_count(s->reg_node) == 0) {
		char names[256];
		registry_names(r, names, sizeof(names));
		return shmbus_seterr(
			SHMBUS_ENOENT,
			"%s '%s' on channel '%s' dispatches to the handler "
			"registry (fn NULL), which has no handler for channel "
			"'%s' (it has handlers for: %s): name the channel "
			"exactly in SHMBUS_HANDLER or shmbus_handler_add "
			"before subscribing, or pass a handler",
			group ? "group member" : "subscriber", name, ch->name,
			ch->name, names);
	}
	s->fn = registry_dispatch;
	s->registry = true;
	return rc;
}

static int subscribe(shmbus_channel_t *ch, shmbus_handler_fn fn, void *ctx,
		     const shmbus_sub_opts_t *opts, bool group,
		     shmbus_sub_t **out)
{
	if (ch == NULL || opts == NULL || out == NULL)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel, opts and out are required");
	*out = NULL;
	int rc = shm_name_check(opts->name, group ? "group name"
						  : "subscriber name");
	if (rc)
		return rc;
	if (opts->wait > SHMBUS_WAIT_BLOCK ||
	    (opts->flags & ~(uint32_t)(SHMBUS_SUB_NO_LATENCY |
				       (group ? SHMBUS_GROUP_KEYED : 0))))
		return shmbus_seterr(SHMBUS_EINVAL,
				     "unknown wait strategy %u or flags 0x%x",
				     opts->wait, opts->flags);
	if (group && (ch->flags & SHMBUS_CH_OVERWRITE))
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s': groups need a "
				     "back-pressure channel",
				     ch->name);
	if (group && ch->compact && (opts->flags & SHMBUS_GROUP_KEYED))
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s' is compact "
				     "(SHMBUS_CH_COMPACT): its records carry "
				     "no key, so group '%s' cannot be keyed "
				     "(SHMBUS_GROUP_KEYED)",
				     ch->name, opts->name);
	bool spill = ch->stall_policy == SHMBUS_STALL_SPILL && !group;
	if (spill && opts->journal == NULL)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s' spills to its journal: give "
				     "the journal's directory (opts.journal), "
				     "where this subscriber reads what it skips "
				     "if it is evicted",
				     ch->name);
	if (spill && spill_opener_get() == NULL)
		return shmbus_seterr(SHMBUS_ENOTSUP,
				     "channel '%s' spills to its journal, and "
				     "this process has not loaded the journal "
				     "library: link libshmbus_journal "
				     "(pkg-config shmbus-journal, CMake "
				     "shmbus::journal)",
				     ch->name);
	shmbus_sub_t *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return shmbus_seterr(SHMBUS_ENOMEM, "subscriber handle");
	s->ch = ch;
	s->hdr = ch->hdr;
	s->fn = fn;
	s->ctx = ctx;
	rc = retry_policy_init(&s->rp, &opts->retry, ch, group);
	if (rc) {
		free(s);
		return rc;
	}
	s->rng = shmbus_now_ns() ^ ((uint64_t)getpid() << 32) ^
		 (uint64_t)(uintptr_t)s;
	s->rng |= 1; /* xorshift state must not be 0 */
	if (fn == NULL) {
		rc = registry_subscriber(s, opts->name, group);
		if (rc) {
			free(s);
			return rc;
		}
	}
	s->wait = opts->wait;
	s->batch = opts->batch ? opts->batch : DEFAULT_BATCH;
	s->overwrite = (ch->flags & SHMBUS_CH_OVERWRITE) != 0;
	s->evictable = ch->stall_policy != SHMBUS_STALL_BLOCK && !s->overwrite;
	/* overwrite and evictable readers copy records out of their slots
	 * (8 bytes more: copies move whole words) */
	if (((s->overwrite || s->evictable) &&
	     (s->copy = malloc(ch->record_size + 8)) == NULL) ||
	    (spill && (s->spill_dir = strdup(opts->journal)) == NULL)) {
		free(s->copy);
		free(s);
		return shmbus_seterr(SHMBUS_ENOMEM, "subscriber buffers");
	}
	rc = bus_participant_take(ch->bus, PART_SUBSCRIBER, ch->id,
				  opts->name, &s->part);
	if (rc)
		goto fail;
	rc = bus_lock(ch->bus);
	if (rc)
		goto fail_part;
	s->away_from = UINT64_MAX;
	rc = bind_row(s, opts, group);
	bus_unlock(ch->bus);
	if (rc)
		goto fail_part;
	if (s->away_from != UINT64_MAX)
		skipped(s, s->away_from); /* evicted while away */
	*out = s;
	return 0;
fail_part:
	bus_participant_release(ch->bus, s->part);
fail:
	free(s->spill_dir);
	free(s->copy);
	free(s);
	return rc;
}

int shmbus_subscribe(shmbus_channel_t *ch, shmbus_handler_fn fn, void *ctx,
		     const shmbus_sub_opts_t *opts, shmbus_sub_t **out)
{
	return subscribe(ch, fn, ctx, opts, false, out);
}

int shmbus_group_join(shmbus_channel_t *ch, shmbus_handler_fn fn, void *ctx,
		      const shmbus_sub_opts_t *opts, shmbus_sub_t **out)
{
	return subscribe(ch, fn, ctx, opts, true, out);
}

int shmbus_sub_close(shmbus_sub_t *s, int drain)
{
	if (s == NULL)
		return SHMBUS_EINVAL;
	shmbus_channel_t *ch = s->ch;
	if (s->running)
		shmbus_sub_stop(s);
	if (s->poller)
		s->poller_forget(s->poller, s);
	if (drain)
		while (shmbus_poll(s, UINT32_MAX) > 0)
			;
	sub_source_set(s, NULL);
	int locked = bus_lock(ch->bus) == 0;
	for (shmbus_sub_t **pp = &ch->subscribers; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	if (s->gm.grp) {
		group_detach(s);
	} else {
		atomic_store_explicit(&s->ent->abandoned_ns, shmbus_now_ns(),
				      memory_order_relaxed);
		drop_row(ch, s->index);
	}
	if (locked)
		bus_unlock(ch->bus);
	bus_participant_release(ch->bus, s->part);
	free(s->spill_dir);
	free(s->copy);
	free(s);
	return 0;
}

static void sub_close_all(shmbus_channel_t *ch)
{
	while (ch->subscribers)
		shmbus_sub_close(ch->subscribers, 0);
}

int shmbus_unsubscribe(shmbus_channel_t *ch, const char *name)
{
	if (ch == NULL)
		return shmbus_seterr(SHMBUS_EINVAL, "channel is NULL");
	int rc = shm_name_check(name, "subscriber name");
	if (rc)
		return rc;
	rc = bus_lock(ch->bus);
	if (rc)
		return rc;
	int free_row;
	int row = channel_find_row(ch, name, &free_row);
	if (row < 0) {
		rc = shmbus_seterr(SHMBUS_ENOENT,
				   "channel '%s' has no subscriber '%s'",
				   ch->name, name);
	} else if (barrier_has_dependents(ch, (uint32_t)row)) {
		rc = shmbus_seterr(SHMBUS_EBUSY,
				   "channel '%s': other subscribers run after "
				   "'%s'; unsubscribe them first",
				   ch->name, name);
	} else if (ch->subs[row].group != 0) {
		if ((rc = group_remove(ch, (uint32_t)row)) == 0)
			unjoin_row(ch, (uint32_t)row);
	} else if ((rc = hold_row(ch, (uint32_t)row, name)) == 0) {
		unjoin_row(ch, (uint32_t)row);
		drop_row(ch, (uint32_t)row);
	} else if (rc == SHMBUS_EBUSY) {
		char pid[32] = "";
		int32_t hint = sub_holder_pid(ch, (uint32_t)row);
		if (hint > 0)
			snprintf(pid, sizeof(pid), " (pid %d, a hint)",
				 (int)hint);
		rc = shmbus_seterr(SHMBUS_EBUSY,
				   "subscriber '%s' on channel '%s' is held by "
				   "a live process%s: it cannot be removed "
				   "while that process holds it",
				   name, ch->name, pid);
	}
	bus_unlock(ch->bus);
	return rc;
}
