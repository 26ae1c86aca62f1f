/*
 * Producers: claim, write, commit (the Disruptor's sequencer).
 *
 * Claiming. Single-producer channels: the lease holder alone advances the
 * claim sequence, with a plain increment of its private copy and a store to
 * the shared `claim` line (read only by joiners and overwrite readers).
 * Multi-producer channels: fetch-add on `claim` (shmbus_claim), or CAS
 * (shmbus_try_claim, which must be able to refuse without leaving a hole).
 *
 * Gating. A producer may write sequence s only when every gating cursor is
 * above s - capacity. It caches the minimum cursor (`gate`) and rescans only
 * when a claim would pass gate + capacity; cursors only grow, so a stale
 * cache is conservative. Joining behind the cache is handled by the join
 * protocol (channel_min_gating, subscriber.c).
 *
 * Commit. Each slot's marker is release-stored as COMMITTED(lap, producer)
 * after its header and payload: readers acquire-load the marker, so
 * multi-producer commits that finish out of order are still read in order.
 *
 * Every claim: the claim store (or RMW), then a release fence, then the
 * slot writes. A reader that copies a slot and then
 * (after an acquire fence) finds claim > seq + capacity knows its copy may
 * be torn: the claim word is the seqlock (subscriber.c).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "copy.h"
#include "error.h"
#include "failpoint.h"
#include "follower.h"
#include "internal.h"
#include "wait.h"

static void producer_close_all(shmbus_channel_t *ch);

struct shmbus_producer {
	shmbus_channel_t *ch;
	shmbus_producer_t *next; /* in ch->producers */
	struct ch_header *hdr;
	uint64_t next_seq; /* single producer: next sequence to claim */
	uint64_t gate;	   /* cached minimum gating cursor */
	struct bus_clock clock;
	uint32_t capacity;
	uint32_t record_size;
	uint32_t part; /* participant id, in every marker we write */
	uint32_t wait;
	bool multi;
	bool overwrite;
	_Atomic uint64_t *intent; /* multi-producer: our claim-intent word */
	struct sb_participant *row; /* our counters live there */
	uint64_t published, waits;
	bool journal_sync; /* SHMBUS_CH_JOURNAL_SYNC (follower.c) */
	bool stamp;	   /* records carry their publish time */
	bool compact;	   /* SHMBUS_CH_COMPACT: no time, key, origin */
	int journal_row;   /* the journaler the last claim saw */
	uint32_t journal_gen; /* and its row's generation */
	uint64_t journal_timeout_ns;
	uint64_t space_timeout_ns; /* 0: a claim waits for room for ever */
};

static inline void slot_defaults(struct slot_header *h, uint32_t len,
				 uint64_t key, uint64_t origin, uint32_t flags,
				 bool compact)
{
	/* relaxed atomics: plain moves, but race-free against an overwrite
	 * reader's concurrent copy */
	__atomic_store_n(&h->len_flags, len | (flags << 24), __ATOMIC_RELAXED);
	if (compact) /* the payload starts where the key would be */
		return;
	__atomic_store_n(&h->key, key, __ATOMIC_RELAXED);
	__atomic_store_n(&h->origin, origin, __ATOMIC_RELAXED);
}

/* A key for a compact slot, which has none: refused, before any claim. */
static __attribute__((noinline, cold)) int
compact_key_refused(const shmbus_producer_t *p)
{
	return shmbus_seterr(SHMBUS_EINVAL,
			     "channel '%s' is compact (SHMBUS_CH_COMPACT): "
			     "its records carry no key; publish with key 0, "
			     "or use a channel without the flag",
			     p->ch->name);
}

/* Slow path: the claim [seq, end) would pass the cached gate. */
struct space_wait {
	shmbus_producer_t *p;
	uint64_t seq, end;
};

static bool space_ready(void *arg)
{
	struct space_wait *sw = arg;
	shmbus_producer_t *p = sw->p;
	p->gate = channel_min_gating(p->ch, sw->seq);
	return sw->end - p->gate <= p->capacity;
}

static void count_wait(shmbus_producer_t *p)
{
	/* relaxed: a statistic for tools, written by us alone */
	atomic_store_explicit(&p->row->waits, ++p->waits,
			      memory_order_relaxed);
}

/* No room in space_timeout_ns: say who holds the ring back. The one
 * hot-path failure with a message; it has waited anyway. */
static int space_timed_out(shmbus_producer_t *p, uint32_t n)
{
	char who[384];
	channel_gate_describe(p->ch, who, sizeof(who));
	return shmbus_seterr(SHMBUS_ETIMEDOUT,
			     "channel '%s': no room for %u record%s in %llu "
			     "ms (space_timeout_ms), nothing claimed: %s",
			     p->ch->name, n, n == 1 ? "" : "s",
			     (unsigned long long)(p->space_timeout_ns /
						  1000000),
			     who);
}

static int wait_space(shmbus_producer_t *p, uint64_t seq, uint64_t end,
		      bool try_only)
{
	struct space_wait sw = {p, seq, end};
	if (space_ready(&sw))
		return 0; /* the cached gate was only stale */
	if (try_only)
		return SHMBUS_EAGAIN;
	count_wait(p);
	/* a fetch-add claim cannot be undone: it waits for ever (a
	 * multi-producer time-out claims by CAS: claim_multi_timed) */
	uint64_t timeout = p->multi ? 0 : p->space_timeout_ns;
	int rc = wait_until(p->wait, &p->hdr->space_ec, &p->hdr->space_sleepers,
			    timeout, space_ready,
			    &sw);
	return rc == SHMBUS_EAGAIN ? space_timed_out(p, (uint32_t)(end - seq))
				   : rc;
}

static inline void claim_fill(const shmbus_channel_t *ch, shmbus_claim_t *c)
{
	c->slot_size = ch->slot_size;
	c->slots = ch->claim_base; /* shmbus_claim_at adds the header */
	c->mask = ch->mask;
}

static inline __attribute__((always_inline)) int
claim_single(shmbus_producer_t *p, uint32_t n, shmbus_claim_t *c,
			bool try_only)
{
	uint64_t seq = p->next_seq, end = seq + n;
	if (!p->overwrite && end - p->gate > p->capacity) {
		int rc = wait_space(p, seq, end, try_only);
		if (rc)
			return rc;
	}
	p->next_seq = end;
	atomic_store_explicit(&p->hdr->claim, end, memory_order_relaxed);
	/* release: the claim store before this lap's slot writes; pairs
	 * with the acquire fence of every reader that validates a copy by
	 * the claim (overwrite copies, evictable batches, spies). Free on
	 * x86; one store barrier per claim elsewhere. */
	atomic_thread_fence(memory_order_release);
	c->seq = seq;
	c->n = n;
	claim_fill(p->ch, c);
	return 0;
}

static int claim_multi(shmbus_producer_t *p, uint32_t n, shmbus_claim_t *c,
		       bool try_only)
{
	struct ch_header *h = p->hdr;
	uint64_t seq, end;
	/* relaxed: ordered before the claim by the seq_cst RMW below; the
	 * watchdog acquire-loads the claim, then this word */
	atomic_store_explicit(p->intent, 1, memory_order_relaxed);
	if (try_only) {
		seq = atomic_load_explicit(&h->claim, memory_order_relaxed);
		for (;;) {
			end = seq + n;
			if (end - p->gate > p->capacity) {
				p->gate = channel_min_gating(p->ch, seq);
				if (end - p->gate > p->capacity) {
					atomic_store_explicit(
						p->intent, 0,
						memory_order_relaxed);
					return SHMBUS_EAGAIN;
				}
			}
			/* seq_cst: the claim is ordered before any later
			 * gating scan (join protocol) */
			if (atomic_compare_exchange_weak_explicit(
				    &h->claim, &seq, end, memory_order_seq_cst,
				    memory_order_relaxed))
				break;
		}
	} else {
		/* seq_cst: as above; a fetch-add cannot be undone */
		seq = atomic_fetch_add_explicit(&h->claim, n,
						memory_order_seq_cst);
		end = seq + n;
	}
	FAILPOINT(FP_MP_AFTER_CLAIM);
	/* Publish the range, then lower the intent (watchdog.c): from here a
	 * hole we leave by dying is known to be ours, also while we wait for
	 * space. relaxed: the release of the intent publishes them */
	atomic_store_explicit(&p->row->claim_lo, seq, memory_order_relaxed);
	atomic_store_explicit(&p->row->claim_hi, end, memory_order_relaxed);
	/* release: pairs with the watchdog's acquire load of the intent */
	atomic_store_explicit(p->intent, 0, memory_order_release);
	if (!try_only && end - p->gate > p->capacity)
		wait_space(p, seq, end, false);
	/* Name ourselves as claimant, so that a hole we leave by dying can be
	 * repaired by CAS from exactly this state (watchdog). relaxed: the
	 * fence below orders them before the slot writes */
	for (uint64_t s = seq; s != end; s++)
		atomic_store_explicit(
			&slot_at(p->ch, s)->marker,
			marker_make(lap_of(p->ch, s), SLOT_CLAIMED, p->part),
			memory_order_relaxed);
	/* release: as in claim_single, and the CLAIMED markers too, so that
	 * a spy that copied a word of ours sees the marker change (spy.c) */
	atomic_thread_fence(memory_order_release);
	c->seq = seq;
	c->n = n;
	claim_fill(p->ch, c);
	return 0;
}

/* Room for n more records past the claim as it is now (multi-producer). */
struct mp_room {
	shmbus_producer_t *p;
	uint32_t n;
};

static bool mp_room_ready(void *arg)
{
	struct mp_room *r = arg;
	shmbus_producer_t *p = r->p;
	/* relaxed: a hint for when to try; the claim's CAS decides */
	uint64_t seq = atomic_load_explicit(&p->hdr->claim,
					    memory_order_relaxed);
	p->gate = channel_min_gating(p->ch, seq);
	return seq + r->n - p->gate <= p->capacity;
}

/*
 * A multi-producer claim that may give up (space_timeout_ms). Its
 * fetch-add could not be undone (the range would have to be filled), so
 * it claims by CAS, as try_claim does, and waits for room between tries:
 * at the deadline nothing is claimed, so there is no hole. Waiting
 * producers are not served in arrival order, as with the fetch-add.
 */
static int claim_multi_timed(shmbus_producer_t *p, uint32_t n,
			     shmbus_claim_t *c)
{
	int rc = claim_multi(p, n, c, true);
	if (rc != SHMBUS_EAGAIN)
		return rc; /* room: no clock read on the hot path */
	count_wait(p);
	uint64_t deadline = shmbus_now_ns() + p->space_timeout_ns;
	for (;;) {
		uint64_t now = shmbus_now_ns();
		if (now >= deadline)
			return space_timed_out(p, n);
		struct mp_room room = {p, n};
		wait_until(p->wait, &p->hdr->space_ec, &p->hdr->space_sleepers,
			   deadline - now,
			   mp_room_ready, &room);
		if ((rc = claim_multi(p, n, c, true)) != SHMBUS_EAGAIN)
			return rc;
	}
}

/* Walks the slots of a claim with a pointer: no multiply per slot. */
struct slot_walk {
	uint8_t *slot, *begin, *end;
	uint32_t size;
};

static inline struct slot_walk walk_from(const shmbus_channel_t *ch,
					 uint64_t seq)
{
	struct slot_walk w = {(uint8_t *)slot_at(ch, seq), ch->slots,
			      ch->slots_end,
			      ch->slot_size};
	return w;
}

static inline void walk_next(struct slot_walk *w)
{
	w->slot += w->size;
	if (w->slot == w->end)
		w->slot = w->begin;
}

/* The claim itself; a synchronous channel first needs a journaler, and
 * the commit will wait for the one the claim saw. */
static inline int claim_slots(shmbus_producer_t *p, uint32_t n,
			      shmbus_claim_t *c, bool try_only)
{
	if (__builtin_expect(p->journal_sync, 0)) {
		int rc = follower_check(p->ch, &p->journal_row,
					&p->journal_gen);
		if (rc)
			return rc;
	}
	if (!p->multi)
		return claim_single(p, n, c, try_only);
	return p->space_timeout_ns && !try_only ? claim_multi_timed(p, n, c)
						: claim_multi(p, n, c, try_only);
}

/* A claim's slots start as records of the full size, no key, no origin. */
static inline __attribute__((always_inline)) void
claim_defaults(shmbus_producer_t *p, const shmbus_claim_t *c,
	       const bool compact)
{
	struct slot_walk w = walk_from(p->ch, c->seq);
	for (uint32_t i = 0; i < c->n; i++, walk_next(&w))
		slot_defaults((struct slot_header *)w.slot, p->record_size, 0,
			      0, 0, compact);
}

static inline int do_claim(shmbus_producer_t *p, uint32_t n,
			   shmbus_claim_t *c, bool try_only)
{
	if (n == 0 || n > p->capacity)
		return SHMBUS_EINVAL;
	int rc = claim_slots(p, n, c, try_only);
	if (rc)
		return rc;
	if (p->compact) /* each loop with its layout a constant */
		claim_defaults(p, c, true);
	else
		claim_defaults(p, c, false);
	return 0;
}

int shmbus_claim(shmbus_producer_t *p, uint32_t n, shmbus_claim_t *c)
{
	return do_claim(p, n, c, false);
}

int shmbus_try_claim(shmbus_producer_t *p, uint32_t n, shmbus_claim_t *c)
{
	return do_claim(p, n, c, true);
}

void *shmbus_claim_payload(shmbus_producer_t *p, const shmbus_claim_t *c,
			   uint32_t i)
{
	(void)p;
	return shmbus_claim_at(c, i);
}

int shmbus_claim_set(shmbus_producer_t *p, const shmbus_claim_t *c,
		     uint32_t i, uint32_t len, uint64_t key)
{
	if (len > p->record_size || i >= c->n)
		return SHMBUS_EINVAL;
	if (key && p->compact)
		return compact_key_refused(p);
	struct slot_header *h = slot_at(p->ch, c->seq + i);
	__atomic_store_n(&h->len_flags, len, __ATOMIC_RELAXED);
	if (!p->compact) /* a compact slot's payload is where the key was */
		__atomic_store_n(&h->key, key, __ATOMIC_RELAXED);
	return 0;
}

int shmbus_claim_write(shmbus_producer_t *p, const shmbus_claim_t *c,
		       uint32_t i, const void *data, uint32_t len,
		       uint64_t key)
{
	if (len > p->record_size || i >= c->n || (len && data == NULL))
		return SHMBUS_EINVAL;
	if (key && p->compact)
		return compact_key_refused(p);
	struct slot_header *h = slot_at(p->ch, c->seq + i);
	copy_in_relaxed(slot_payload(p->ch, h), data, len);
	__atomic_store_n(&h->len_flags, len, __ATOMIC_RELAXED);
	if (!p->compact)
		__atomic_store_n(&h->key, key, __ATOMIC_RELAXED);
	return 0;
}

/* After the markers of n records ending at end are stored: the counter,
 * then whoever waits for them. */
static inline int committed(shmbus_producer_t *p, uint64_t end, uint32_t n)
{
	p->published += n;
	/* relaxed: a statistic for tools, on our own participant row */
	atomic_store_explicit(&p->row->published, p->published,
			      memory_order_relaxed);
	/* subscribers asleep for data (block strategy): a load of a line
	 * nobody writes while they are awake (wait.h, "Sleepers") */
	wake_sleepers(&p->hdr->data_ec, &p->hdr->data_sleepers);
	/* relaxed: a poller added after this load finds the channel ready
	 * (poller_add sets its bit itself) */
	uint64_t pollers = atomic_load_explicit(&p->hdr->poller_mask,
						memory_order_relaxed);
	if (pollers)
		poller_notify(p->ch, pollers);
	if (__builtin_expect(p->journal_sync, 0))
		return follower_wait(p->ch, p->journal_row, p->journal_gen,
				     p->wait, end, p->journal_timeout_ns);
	return 0;
}

static inline __attribute__((always_inline)) int
commit_slots(shmbus_producer_t *p, const shmbus_claim_t *c, const bool compact)
{
	/* one clock read per batch, none on a SHMBUS_CH_NO_TIMESTAMP or
	 * SHMBUS_CH_COMPACT channel (whose slots have no time field) */
	uint64_t ts = p->stamp ? bus_clock_now(&p->clock) : 0;
	shmbus_channel_t *ch = p->ch;
	struct slot_walk w = walk_from(ch, c->seq);
	uint32_t marker = marker_make(lap_of(ch, c->seq), SLOT_COMMITTED,
				      p->part);
	for (uint32_t i = 0; i < c->n; i++) {
		struct slot_header *h = (struct slot_header *)w.slot;
		if (!compact)
			__atomic_store_n(&h->timestamp, ts, __ATOMIC_RELAXED);
		/* release: header and payload before the marker; pairs with
		 * the reader's acquire load of the marker */
		atomic_store_explicit(&h->marker, marker,
				      memory_order_release);
		walk_next(&w);
		if (w.slot == w.begin) /* the next lap */
			marker += 1u << 16;
	}
	return committed(p, c->seq + c->n, c->n);
}

int shmbus_commit(shmbus_producer_t *p, const shmbus_claim_t *c)
{
	/* each loop with its slot layout a constant */
	return p->compact ? commit_slots(p, c, true) : commit_slots(p, c, false);
}

static inline __attribute__((always_inline)) int
publish_slot(shmbus_producer_t *p, const void *data, uint32_t len,
	     uint64_t key, uint64_t origin, uint32_t flags, bool try_only,
	     const bool compact)
{
	if (len > p->record_size)
		return SHMBUS_EINVAL;
	if (compact && __builtin_expect(key != 0, 0))
		return compact_key_refused(p);
	shmbus_claim_t c;
	int rc = claim_slots(p, 1, &c, try_only);
	if (rc)
		return rc;
	/* one record: shmbus_commit's walk, written straight. The slot's
	 * first store comes first: its line's ownership (from the reader's
	 * core, far away perhaps) is fetched while the copy and the clock
	 * read run, not after them */
	struct slot_header *h = slot_at(p->ch, c.seq);
	slot_defaults(h, len, key, origin, flags, compact);
	/* relaxed words on every channel: spies, overwrite readers and
	 * evicted subscribers may copy the slot while we write it (copy.h) */
	copy_in_relaxed(compact ? (uint8_t *)h + SLOT_HEADER_COMPACT
				: (uint8_t *)(h + 1),
			data, len);
	FAILPOINT(FP_BEFORE_COMMIT);
	if (!compact) {
		uint64_t ts = p->stamp ? bus_clock_now(&p->clock) : 0;
		__atomic_store_n(&h->timestamp, ts, __ATOMIC_RELAXED);
	}
	/* release: header and payload before the marker; pairs with the
	 * reader's acquire load of the marker */
	atomic_store_explicit(&h->marker,
			      marker_make(lap_of(p->ch, c.seq), SLOT_COMMITTED,
					  p->part),
			      memory_order_release);
	return committed(p, c.seq + 1, 1);
}

/* One record, compiled per slot layout (`compact` a constant in each):
 * a plain channel's path has no branch and no offset load for it. */
static int publish_one(shmbus_producer_t *p, const void *data, uint32_t len,
		       uint64_t key, uint64_t origin, uint32_t flags,
		       bool try_only)
{
	return p->compact ? publish_slot(p, data, len, key, origin, flags,
					 try_only, true)
			  : publish_slot(p, data, len, key, origin, flags,
					 try_only, false);
}

int shmbus_publish(shmbus_producer_t *p, const void *data, uint32_t len,
		   uint64_t key)
{
	return publish_one(p, data, len, key, 0, 0, false);
}

int shmbus_try_publish(shmbus_producer_t *p, const void *data, uint32_t len,
		       uint64_t key)
{
	return publish_one(p, data, len, key, 0, 0, true);
}

int shmbus_republish(shmbus_producer_t *p, const shmbus_record_t *rec)
{
	if (p == NULL || rec == NULL)
		return shmbus_seterr(SHMBUS_EINVAL, "republish: producer or "
						    "record is NULL");
	/* The origin is the record's identity, on which consumers
	 * de-duplicate replays: a compact slot cannot carry it, and
	 * dropping it would make a replayed record look new. */
	if (p->compact)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s' is compact "
				     "(SHMBUS_CH_COMPACT): its records carry "
				     "no origin, so a re-published record "
				     "would lose its identity; nothing "
				     "published",
				     p->ch->name);
	if (rec->len > p->record_size)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s': a re-published record of "
				     "%u bytes exceeds its record_size %u",
				     p->ch->name, rec->len, p->record_size);
	return publish_one(p, rec->data, rec->len, rec->key, rec->origin + 1,
			   (rec->flags | SHMBUS_REC_REPUBLISHED) &
				   ~(uint32_t)SHMBUS_REC_TOMBSTONE,
			   false);
}

/*
 * A new lease holder of a single-producer channel: the previous holder is
 * dead (the kernel released its lease), so any slot it claimed but did not
 * commit will never be committed. Those form a suffix of [.., claim), since
 * a single producer commits in order; fill them with tombstones so that
 * readers move on and count them.
 */
static void repair_single(shmbus_producer_t *p)
{
	shmbus_channel_t *ch = p->ch;
	/* acquire: the dead holder's last claim store; its markers are read
	 * with acquire below (the kernel's lock release orders both) */
	uint64_t claim = atomic_load_explicit(&p->hdr->claim,
					      memory_order_acquire);
	uint64_t s = claim;
	while (s != 0 && claim - s < ch->capacity) {
		struct slot_header *h = slot_at(ch, s - 1);
		/* acquire: pairs with the dead holder's release at commit */
		uint32_t m = atomic_load_explicit(&h->marker,
						  memory_order_acquire);
		if (marker_tag(m) ==
		    marker_tag_make(lap_of(ch, s - 1), SLOT_COMMITTED))
			break;
		s--;
	}
	/* relaxed: a statistic */
	if (s != claim)
		atomic_fetch_add_explicit(&ch->hdr->tombstones, claim - s,
					  memory_order_relaxed);
	for (; s != claim; s++) {
		struct slot_header *h = slot_at(ch, s);
		slot_defaults(h, 0, 0, 0, SHMBUS_REC_TOMBSTONE, p->compact);
		/* release: pairs with the reader's acquire of the marker */
		atomic_store_explicit(
			&h->marker,
			marker_make(lap_of(ch, s), SLOT_TOMBSTONE, p->part),
			memory_order_release);
	}
	p->next_seq = claim;
	p->gate = claim; /* forces a scan on the first claim */
	p->gate -= ch->capacity;
}

int shmbus_producer_open(shmbus_channel_t *ch,
			 const shmbus_producer_opts_t *opts,
			 shmbus_producer_t **out)
{
	if (ch == NULL || out == NULL)
		return shmbus_seterr(SHMBUS_EINVAL, "channel or out is NULL");
	*out = NULL;
	uint32_t wait = opts ? opts->wait : SHMBUS_WAIT_SPIN;
	if (wait > SHMBUS_WAIT_BLOCK)
		return shmbus_seterr(SHMBUS_EINVAL, "unknown wait strategy %u",
				     wait);
	shmbus_producer_t *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return shmbus_seterr(SHMBUS_ENOMEM, "producer handle");
	p->ch = ch;
	p->hdr = ch->hdr;
	p->capacity = ch->capacity;
	p->record_size = ch->record_size;
	p->wait = wait;
	p->clock = ch->bus->clock;
	p->multi = (ch->flags & SHMBUS_CH_MULTI_PRODUCER) != 0;
	p->overwrite = (ch->flags & SHMBUS_CH_OVERWRITE) != 0;
	p->journal_sync = (ch->flags & SHMBUS_CH_JOURNAL_SYNC) != 0;
	p->stamp = !(ch->flags & CHANNEL_UNSTAMPED);
	p->compact = ch->compact;
	p->journal_timeout_ns =
		opts ? opts->journal_timeout_ms * 1000000ull : 0;
	p->space_timeout_ns = opts ? opts->space_timeout_ms * 1000000ull : 0;

	int rc = bus_participant_take(ch->bus, PART_PRODUCER, ch->id, "",
				      &p->part);
	if (rc) {
		free(p);
		return rc;
	}
	p->row = &ch->bus->parts[p->part];
	p->intent = &p->row->claim_intent;
	/* The bus lock orders this process's threads on the lease flag and
	 * the handle list; the kernel lock orders processes. */
	rc = bus_lock(ch->bus);
	if (rc) {
		bus_participant_release(ch->bus, p->part);
		free(p);
		return rc;
	}
	if (!p->multi) {
		rc = ch->lease_held ? SHMBUS_EBUSY
				    : shm_lock_byte(ch->map.fd, LEASE_LOCK_BYTE);
		if (rc == SHMBUS_EBUSY)
			rc = shmbus_seterr(SHMBUS_EBUSY,
					   "channel '%s' is single-producer "
					   "and a live process holds its "
					   "producer lease",
					   ch->name);
		if (rc == 0) {
			ch->lease_held = true;
			repair_single(p);
		}
	} else {
		p->gate = atomic_load_explicit(&ch->hdr->claim,
					       memory_order_relaxed) -
			  ch->capacity;
	}
	if (rc == 0) {
		p->next = ch->producers;
		ch->producers = p;
		ch->close_producers = producer_close_all;
	}
	bus_unlock(ch->bus);
	if (rc) {
		bus_participant_release(ch->bus, p->part);
		free(p);
		return rc;
	}
	*out = p;
	return 0;
}

void shmbus_producer_close(shmbus_producer_t *p)
{
	if (p == NULL)
		return;
	shmbus_channel_t *ch = p->ch;
	int locked = bus_lock(ch->bus) == 0;
	for (shmbus_producer_t **pp = &ch->producers; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	if (!p->multi) {
		shm_unlock_byte(ch->map.fd, LEASE_LOCK_BYTE);
		ch->lease_held = false;
	}
	if (locked)
		bus_unlock(ch->bus);
	bus_participant_release(ch->bus, p->part);
	free(p);
}

static void producer_close_all(shmbus_channel_t *ch)
{
	while (ch->producers)
		shmbus_producer_close(ch->producers);
}
