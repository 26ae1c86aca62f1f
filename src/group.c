/*
 * Competing-consumer groups: each record to one member, crash-safe.
 *
 * State (layout.h, struct ch_group): a take counter `next`, member rows
 * (liveness = a kernel lock byte per member), and one ownership word per
 * slot. The group's name, floor and gating are a subscriber row whose cursor
 * is the floor, so producers gate on it like on any subscriber.
 *
 * Protocol, per member:
 *   1. fetch-add a chunk [a, b) of `next` (relaxed: it only divides the work;
 *      the words decide ownership);
 *   2. for each published s in the chunk: CAS word[s] from free-for-lap(s)
 *      to TAKEN(lap, me). Winning the CAS *is* recording the claim, so no
 *      record is lost if a member dies right after winning: the word names it;
 *   3. run the handler; release-store DONE(lap, me);
 *   4. advance the floor over contiguous DONE words (acquire loads, then a
 *      release CAS-max of the row's cursor): the floor never passes a record
 *      that is not done, and producers reuse a slot only after the floor
 *      passed it, i.e. after its handler returned.
 * Recovery, when a member finds nothing new (`next` not published):
 *   - free words below `next` were fetched by a member that died (or is
 *     slow) before taking them: take them by the same CAS (no duplicate);
 *   - the word at the floor TAKEN by a member whose kernel lock is gone:
 *     CAS it from TAKEN(lap, dead) to TAKEN(lap, me) and handle it again
 *     (at-least-once: the dead member may have run its handler);
 *   - TAKEN(lap, me) words are a previous holder of my member index, which
 *     was dead when I got the index: handle them again likewise.
 * Semantics: exactly once while no member dies; at-least-once across a
 * member's death, duplicates being records the dead member had taken.
 */
#define _GNU_SOURCE
#include "group.h"

#include <string.h>

#include "barrier.h"
#include "error.h"
#include "failpoint.h"
#include "sub.h"
#include "wait.h"

#define CHUNK 16u
#define LIVENESS_CHECK_NS 1000000u /* at most one lock probe per ms */

static inline uint32_t gw_state(uint64_t w)
{
	return (uint32_t)(w >> 8) & 0xff;
}
static inline uint32_t gw_member(uint64_t w)
{
	return (uint32_t)w & 0xff;
}
static inline bool gw_free_for(uint64_t w, uint64_t lap)
{
	return (w >> 16) < lap || gw_state(w) == GW_FREE;
}

static inline struct ch_subscriber *group_row(const shmbus_sub_t *s)
{
	return s->ent;
}

/* The marker of seq if it is published (COMMITTED or TOMBSTONE), else 0. */
static inline uint32_t published(const shmbus_channel_t *ch, uint64_t seq)
{
	/* acquire: pairs with the producer's release store at commit */
	uint32_t m = atomic_load_explicit(&slot_at(ch, seq)->marker,
					  memory_order_acquire);
	uint32_t tag = marker_tag(m);
	uint64_t lap = lap_of(ch, seq);
	if (tag == marker_tag_make(lap, SLOT_COMMITTED) ||
	    tag == marker_tag_make(lap, SLOT_TOMBSTONE))
		return m;
	return 0;
}

/* We own seq's word (TAKEN by us): run the handler (delivery number
 * `attempt`), then mark it DONE -- unless the handler failed and the member
 * must hold it (retry.h): the word stays TAKEN by us, so the floor waits
 * and no other member takes it while we live. */
static void run_taken(shmbus_sub_t *s, uint64_t seq, uint32_t m,
		      uint32_t attempt)
{
	shmbus_channel_t *ch = s->ch;
	uint64_t lap = lap_of(ch, seq);
	FAILPOINT(FP_GROUP_AFTER_TAKE);
	if (marker_tag(m) == marker_tag_make(lap, SLOT_COMMITTED)) {
		struct slot_header *h = slot_at(ch, seq);
		shmbus_record_t r;
		fill_record(s, &r, seq, m, h->len_flags, h->timestamp, h->key,
			    h->origin, h + 1);
		r.attempt = attempt;
		if (s->lat)
			lat_sample(s, r.timestamp);
		if (dispatch(s, &r) != RETRY_CONSUMED)
			return;
	} else {
		s->stats.tombstones++;
	}
	FAILPOINT(FP_GROUP_BEFORE_DONE);
	/* release: the handler's effects before DONE; pairs with the acquire
	 * in advance_floor */
	atomic_store_explicit(&s->gm.grp->word[seq & ch->mask],
			      gword(lap, GW_DONE, s->gm.member),
			      memory_order_release);
}

/* Take seq if its word is free (or `from` names it), and handle it.
 * Returns 1 if handled, 0 if someone else owns it, -1 if unpublished. */
static int take(shmbus_sub_t *s, uint64_t seq, uint64_t from)
{
	shmbus_channel_t *ch = s->ch;
	uint32_t m = published(ch, seq);
	if (m == 0)
		return -1;
	uint64_t lap = lap_of(ch, seq);
	_Atomic uint64_t *w = &s->gm.grp->word[seq & ch->mask];
	/* acquire: pairs with the release of DONE by the previous lap's
	 * member (the CAS below re-checks the value) */
	uint64_t cur = atomic_load_explicit(w, memory_order_acquire);
	if (from == 0 ? !gw_free_for(cur, lap) : cur != from)
		return 0;
	/* acq_rel: winning orders our reads of the record after the previous
	 * owner's DONE (or the producer's commit) */
	if (!atomic_compare_exchange_strong_explicit(
		    w, &cur, gword(lap, GW_TAKEN, s->gm.member),
		    memory_order_acq_rel, memory_order_relaxed))
		return 0;
	run_taken(s, seq, m, 1);
	return 1;
}

/* Held at a record (retry.h): deliver it again once due. Returns 1 if it
 * was consumed, 0 if the hold goes on. */
static int poll_held(shmbus_sub_t *s)
{
	if (shmbus_now_ns() < s->hold.due)
		return 0;
	s->hold.active = false;
	s->stats.retried++;
	run_taken(s, s->hold.seq, published(s->ch, s->hold.seq),
		  s->hold.attempts + 1);
	return !s->hold.active;
}

static void advance_floor(shmbus_sub_t *s)
{
	shmbus_channel_t *ch = s->ch;
	struct ch_subscriber *row = group_row(s);
	/* acquire: pairs with the release CAS of the floor below */
	uint64_t f0 = atomic_load_explicit(&row->cursor, memory_order_acquire);
	uint64_t f = f0, lim = f0 + ch->capacity;
	while (f != lim) {
		/* acquire: pairs with the member's release of DONE */
		uint64_t w = atomic_load_explicit(
			&s->gm.grp->word[f & ch->mask], memory_order_acquire);
		if (gw_state(w) != GW_DONE || (w >> 16) != lap_of(ch, f))
			break;
		f++;
	}
	uint64_t cur = f0;
	/* release: every DONE we saw before producers may reuse the slots;
	 * pairs with the acquire in channel_min_gating. A CAS-max: members
	 * advance the floor concurrently, and it never moves back. */
	while ((int64_t)(f - cur) > 0 &&
	       !atomic_compare_exchange_weak_explicit(&row->cursor, &cur, f,
						      memory_order_release,
						      memory_order_relaxed))
		;
	/* whoever moves the floor wakes who waits for it: producers for
	 * space, dependents for their barrier */
	if ((int64_t)(f - cur) > 0)
		cursor_moved(s->hdr);
}

static bool member_dead(shmbus_sub_t *s, uint32_t member)
{
	if (member >= SHMBUS_MAX_MEMBERS) /* a corrupt word: never steal */
		return false;
	/* Locks held through our own open file description do not show in
	 * F_OFD_GETLK: members of this process are checked locally. relaxed:
	 * a member leaving concurrently is a dead one soon anyway. */
	uint64_t ours = atomic_load_explicit(&s->ch->held_members[s->gm.index],
					     memory_order_relaxed);
	if ((ours >> member) & 1)
		return false;
	off_t byte = MEMBERLOCK_BASE +
		     (off_t)s->gm.index * SHMBUS_MAX_MEMBERS + member;
	return !shm_byte_held(s->ch->map.fd, byte);
}

/* Nothing new to take: look below `next` for orphans. */
static int recover(shmbus_sub_t *s, uint32_t max)
{
	shmbus_channel_t *ch = s->ch;
	struct ch_group *g = s->gm.grp;
	/* acquire: pairs with the release CAS in advance_floor */
	uint64_t floor = atomic_load_explicit(&group_row(s)->cursor,
					      memory_order_acquire);
	uint64_t next = atomic_load_explicit(&g->next, memory_order_relaxed);
	uint32_t done = 0;
	for (uint64_t seq = floor; seq != next && done < max; seq++) {
		if ((int64_t)(next - seq) <= 0 || seq - floor >= ch->capacity)
			break;
		/* acquire: pairs with the release of DONE (take re-checks) */
		uint64_t w = atomic_load_explicit(&g->word[seq & ch->mask],
						  memory_order_acquire);
		uint64_t lap = lap_of(ch, seq);
		int r = 0;
		if (gw_free_for(w, lap)) {
			r = take(s, seq, 0);
		} else if (gw_state(w) == GW_TAKEN && (w >> 16) == lap) {
			uint32_t owner = gw_member(w);
			bool stale = owner == s->gm.member;
			if (!stale && seq == floor) {
				/* the floor is blocked: is its owner alive?
				 * A lock probe is a system call: rate-limit */
				uint64_t now = mono_ns();
				if (s->gm.stuck_floor != floor) {
					s->gm.stuck_floor = floor;
					s->gm.stuck_since = now;
				} else if (now - s->gm.stuck_since >=
					   LIVENESS_CHECK_NS) {
					s->gm.stuck_since = now;
					stale = member_dead(s, owner);
				}
			}
			if (stale && (r = take(s, seq, w)) > 0)
				s->gm.redelivered++;
		}
		if (r < 0)
			break;
		done += (uint32_t)(r > 0);
		if (s->hold.active)
			break;
	}
	return (int)done;
}

/* How far a barrier lets this member go (no limit without one). */
static bool barrier_allows(shmbus_sub_t *s, uint64_t seq)
{
	if (s->n_after == 0)
		return true;
	if ((int64_t)(s->barrier - seq) <= 0)
		s->barrier = barrier_min(s->ch, s->after, s->n_after,
					 seq + s->ch->capacity);
	return (int64_t)(s->barrier - seq) > 0;
}

static int keyed_poll(shmbus_sub_t *s, uint32_t max);

int group_poll(shmbus_sub_t *s, uint32_t max)
{
	struct group_member *gm = &s->gm;
	uint32_t done = (uint32_t)retry_poll(s, max);
	if (__builtin_expect(s->hold.active, 0)) {
		/* no new work while one record is held: back-pressure on
		 * this member only */
		if (done < max)
			done += (uint32_t)poll_held(s);
		if (s->hold.active || done >= max) {
			advance_floor(s);
			return (int)done;
		}
	}
	if (gm->grp->keyed)
		return (int)done + keyed_poll(s, max - done);
	while (done < max) {
		if (gm->cnext == gm->cend) {
			uint64_t nx = atomic_load_explicit(
				&gm->grp->next, memory_order_relaxed);
			if (!published(s->ch, nx) || !barrier_allows(s, nx))
				break;
			uint32_t k = max - done < CHUNK ? max - done : CHUNK;
			/* relaxed: divides the work; the words own it */
			gm->cnext = atomic_fetch_add_explicit(
				&gm->grp->next, k, memory_order_relaxed);
			gm->cend = gm->cnext + k;
		}
		if (!barrier_allows(s, gm->cnext))
			break;
		int r = take(s, gm->cnext, 0);
		if (r < 0) {
			/* Not published yet: keep the chunk. Or the rest of
			 * the chunk was taken over by idle members and the
			 * floor has passed it (its slots may already carry a
			 * later lap): drop what lies below the floor. */
			uint64_t floor = atomic_load_explicit(
				&group_row(s)->cursor, memory_order_acquire);
			if ((int64_t)(floor - gm->cnext) <= 0)
				break;
			gm->cnext = (int64_t)(floor - gm->cend) < 0 ? floor
								  : gm->cend;
			continue;
		}
		gm->cnext++;
		done += (uint32_t)r;
		if (s->hold.active)
			break;
	}
	/* recovery would take our held record for an orphan: not now */
	if (done == 0 && !s->hold.active)
		done = (uint32_t)recover(s, max);
	advance_floor(s);
	return (int)done;
}

bool group_available(shmbus_sub_t *s)
{
	struct group_member *gm = &s->gm;
	if (gm->grp->keyed) {
		/* acquire: pairs with the release CAS in advance_floor */
		uint64_t floor = atomic_load_explicit(&group_row(s)->cursor,
						      memory_order_acquire);
		uint64_t at = (int64_t)(gm->kscan - floor) > 0 ? gm->kscan
							      : floor;
		return published(s->ch, at) || published(s->ch, floor);
	}
	if (gm->cnext != gm->cend && published(s->ch, gm->cnext))
		return true;
	if (published(s->ch, atomic_load_explicit(&gm->grp->next,
						  memory_order_relaxed)))
		return true;
	/* orphans, or a floor blocked by a member that may be dead */
	uint64_t floor = atomic_load_explicit(&group_row(s)->cursor,
					      memory_order_acquire);
	return floor != atomic_load_explicit(&gm->grp->next,
					     memory_order_relaxed) &&
	       published(s->ch, floor);
}

static void keyed_join(shmbus_sub_t *s);

int group_attach(shmbus_sub_t *s, bool fresh_row, bool keyed)
{
	shmbus_channel_t *ch = s->ch;
	struct ch_subscriber *row = s->ent;
	uint32_t gi;
	if (fresh_row) {
		/* acquire (here and below): pairs with the release of a
		 * group area's state; all under the bus lock as well */
		for (gi = 0; gi < ch->max_groups; gi++)
			if (atomic_load_explicit(&group_at(ch, gi)->state,
						 memory_order_acquire) ==
			    OBJ_BUILDING)
				break;
		if (gi == ch->max_groups)
			return shmbus_seterr(SHMBUS_EFULL,
					     "channel '%s': all %u group areas "
					     "are used (raise max_groups)",
					     ch->name, ch->max_groups);
		struct ch_group *g = group_at(ch, gi);
		g->row = s->index;
		/* the floor is the row's cursor, set by the join protocol */
		atomic_store_explicit(&g->next,
				      atomic_load_explicit(&row->cursor,
							   memory_order_relaxed),
				      memory_order_relaxed);
		for (uint32_t m = 0; m < SHMBUS_MAX_MEMBERS; m++)
			atomic_store_explicit(&g->members[m].state, PART_FREE,
					      memory_order_relaxed);
		g->keyed = keyed;
		for (uint32_t q = 0; q < KEY_PARTITIONS; q++)
			atomic_store_explicit(&g->part[q],
					      part_word(PART_NONE, PART_NONE),
					      memory_order_relaxed);
		/* release: the group before readers that acquire its state */
		atomic_store_explicit(&g->state, OBJ_READY,
				      memory_order_release);
		row->group = gi + 1;
	} else {
		gi = row->group - 1;
		if (row->group == 0 || gi >= ch->max_groups ||
		    atomic_load_explicit(&group_at(ch, gi)->state,
					 memory_order_acquire) != OBJ_READY ||
		    group_at(ch, gi)->row != s->index)
			return shmbus_seterr(SHMBUS_ECORRUPT,
					     "channel '%s': group row %u does "
					     "not match its group area",
					     ch->name, s->index);
		if (group_at(ch, gi)->keyed != keyed)
			return shmbus_seterr(SHMBUS_EEXIST,
					     "group '%s' on channel '%s' is %s",
					     row->name, ch->name,
					     keyed ? "not keyed" : "keyed");
	}
	struct ch_group *g = group_at(ch, gi);
	for (uint32_t m = 0; m < SHMBUS_MAX_MEMBERS; m++) {
		off_t byte = MEMBERLOCK_BASE +
			     (off_t)gi * SHMBUS_MAX_MEMBERS + m;
		/* A member index already held through this same open file
		 * description would "succeed" again: skip ours. */
		if ((atomic_load_explicit(&ch->held_members[gi],
					  memory_order_relaxed) >>
		     m) & 1)
			continue;
		if (shm_lock_byte(ch->map.fd, byte) != 0)
			continue; /* a live member */
		atomic_fetch_or_explicit(&ch->held_members[gi], 1ull << m,
					 memory_order_relaxed);
		g->members[m].participant = s->part;
		/* release: the member row before it reads as live (tools) */
		atomic_store_explicit(&g->members[m].state, PART_LIVE,
				      memory_order_release);
		s->gm.grp = g;
		s->gm.index = gi;
		s->gm.member = m;
		s->gm.cnext = s->gm.cend = 0;
		if (g->keyed)
			keyed_join(s);
		return 0;
	}
	return shmbus_seterr(SHMBUS_EFULL,
			     "group '%s' on channel '%s' has %u live members",
			     row->name, ch->name, SHMBUS_MAX_MEMBERS);
}

static void keyed_leave(shmbus_sub_t *s);

void group_detach(shmbus_sub_t *s)
{
	struct group_member *gm = &s->gm;
	if (gm->grp == NULL)
		return;
	if (gm->grp->keyed)
		keyed_leave(s);
	/* release: pairs with readers of the member row (tools) */
	atomic_store_explicit(&gm->grp->members[gm->member].state, PART_FREE,
			      memory_order_release);
	atomic_fetch_and_explicit(&s->ch->held_members[gm->index],
				  ~(1ull << gm->member), memory_order_relaxed);
	shm_unlock_byte(s->ch->map.fd, MEMBERLOCK_BASE +
					       (off_t)gm->index *
						       SHMBUS_MAX_MEMBERS +
					       gm->member);
	gm->grp = NULL;
}

int group_remove(shmbus_channel_t *ch, uint32_t row)
{
	uint32_t gi = ch->subs[row].group - 1;
	if (gi >= ch->max_groups)
		return shmbus_seterr(SHMBUS_ECORRUPT, "group index %u", gi);
	struct ch_group *g = group_at(ch, gi);
	if (atomic_load_explicit(&ch->held_members[gi], memory_order_relaxed))
		return shmbus_seterr(SHMBUS_EBUSY,
				     "group '%s' has a member in this process",
				     ch->subs[row].name);
	for (uint32_t m = 0; m < SHMBUS_MAX_MEMBERS; m++)
		if (shm_byte_held(ch->map.fd,
				  MEMBERLOCK_BASE +
					  (off_t)gi * SHMBUS_MAX_MEMBERS + m))
			return shmbus_seterr(SHMBUS_EBUSY,
					     "group '%s' has live members",
					     ch->subs[row].name);
	atomic_store_explicit(&g->state, OBJ_BUILDING, memory_order_release);
	return 0;
}

/* ------------------------------------------------------ keyed groups
 *
 * Records map to KEY_PARTITIONS partitions by a hash of their key; each
 * partition has one owner at a time, which takes that partition's records
 * in sequence order, so per-key order holds. Hand-over keeps it:
 *   - a joining member marks partitions of the busiest member as wanted;
 *     the owner hands each over at the start of its next poll, when it is
 *     in no handler, so all its records of the partition are done;
 *   - a leaving member hands its partitions to who wants them, or frees
 *     them; a free partition is taken by the next idle member;
 *   - a dead owner's partitions are taken over once the kernel says it is
 *     dead (its record in flight, if any, is handled again).
 * Every change bumps the group's epoch (release); members re-read the table
 * when the epoch moves (acquire), and rescan from the floor when they gain
 * a partition. All changes but the owner's own hand-over happen under the
 * bus lock; the hand-over is a CAS, so a concurrent want is not lost.
 */

static inline uint32_t key_partition(uint64_t key)
{
	return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 58); /* 0..63 */
}

/* Owner of a partition word read from shared memory: a value that names
 * no member slot is treated as "none". */
static inline uint32_t pw_owner(uint64_t w)
{
	uint32_t o = (uint32_t)w & 0xff;
	return o < SHMBUS_MAX_MEMBERS ? o : PART_NONE;
}
static inline uint32_t pw_wanted(uint64_t w)
{
	uint32_t m = (uint32_t)(w >> 8) & 0xff;
	return m < SHMBUS_MAX_MEMBERS ? m : PART_NONE;
}

static void bump_epoch(struct ch_group *g)
{
	/* release: the partition words before the epoch; pairs with the
	 * acquire in keyed_refresh */
	atomic_fetch_add_explicit(&g->epoch, 1, memory_order_release);
}

static bool member_alive(shmbus_sub_t *s, uint32_t m)
{
	return m != PART_NONE && (m == s->gm.member || !member_dead(s, m));
}

/* Under the bus lock: take free and dead members' partitions, then want
 * a fair share from the busiest members. */
static void keyed_join(shmbus_sub_t *s)
{
	struct ch_group *g = s->gm.grp;
	uint32_t me = s->gm.member, count[SHMBUS_MAX_MEMBERS] = {0};
	bool alive[SHMBUS_MAX_MEMBERS] = {0};
	uint32_t n_alive = 0;
	/* acquire (member states, partition words): pairs with their
	 * release stores and acq_rel CASes elsewhere in this file */
	for (uint32_t m = 0; m < SHMBUS_MAX_MEMBERS; m++)
		if ((alive[m] = member_alive(s, m) &&
				atomic_load_explicit(&g->members[m].state,
						     memory_order_acquire) ==
					PART_LIVE))
			n_alive++;
	for (uint32_t q = 0; q < KEY_PARTITIONS; q++) {
		uint64_t w = atomic_load_explicit(&g->part[q],
						  memory_order_acquire);
		uint32_t o = pw_owner(w);
		/* CAS: a member's refresh may be taking a free partition at
		 * this moment, outside the bus lock */
		if ((o == PART_NONE || !alive[o]) &&
		    atomic_compare_exchange_strong_explicit(
			    &g->part[q], &w, part_word(me, PART_NONE),
			    memory_order_acq_rel, memory_order_relaxed)) {
			count[me]++;
		} else {
			o = pw_owner(w);
			if (o != PART_NONE)
				count[o]++;
		}
	}
	uint32_t share = KEY_PARTITIONS / (n_alive ? n_alive : 1);
	for (uint32_t q = 0; q < KEY_PARTITIONS && count[me] < share; q++) {
		uint64_t w = atomic_load_explicit(&g->part[q],
						  memory_order_acquire);
		uint32_t o = pw_owner(w);
		if (o == me || o == PART_NONE || count[o] <= share ||
		    pw_wanted(w) != PART_NONE)
			continue;
		/* CAS: the owner may be handing something over right now */
		if (atomic_compare_exchange_strong_explicit(
			    &g->part[q], &w, part_word(o, me),
			    memory_order_acq_rel, memory_order_relaxed)) {
			count[o]--;
			count[me]++;
		}
	}
	bump_epoch(g);
	s->gm.kepoch = UINT32_MAX; /* read the table at the first poll */
	s->gm.owned = 0;
}

/* Under the bus lock: hand over or free what this member owns, drop what
 * it wanted. */
static void keyed_leave(shmbus_sub_t *s)
{
	struct ch_group *g = s->gm.grp;
	uint32_t me = s->gm.member;
	for (uint32_t q = 0; q < KEY_PARTITIONS; q++) {
		/* acquire / acq_rel: pairs with the other members' CASes */
		uint64_t w = atomic_load_explicit(&g->part[q],
						  memory_order_acquire);
		uint64_t to = w;
		if (pw_owner(w) == me)
			to = part_word(pw_wanted(w), PART_NONE);
		else if (pw_wanted(w) == me)
			to = part_word(pw_owner(w), PART_NONE);
		if (to != w)
			atomic_compare_exchange_strong_explicit(
				&g->part[q], &w, to, memory_order_acq_rel,
				memory_order_relaxed);
	}
	bump_epoch(g);
}

/* Start of a poll: hand over wanted partitions, take free ones, and read
 * what we own when the table changed. */
static void keyed_refresh(shmbus_sub_t *s)
{
	struct group_member *gm = &s->gm;
	struct ch_group *g = gm->grp;
	/* acquire: pairs with bump_epoch's release */
	uint32_t e = atomic_load_explicit(&g->epoch, memory_order_acquire);
	if (e == gm->kepoch)
		return;
	uint32_t me = gm->member;
	uint64_t owned = 0;
	bool changed = false;
	for (uint32_t q = 0; q < KEY_PARTITIONS; q++) {
		_Atomic uint64_t *pq = &g->part[q];
		/* acquire: a hand-over to us (release CAS) before our scan */
		uint64_t w = atomic_load_explicit(pq, memory_order_acquire);
		if (pw_owner(w) == me && pw_wanted(w) != PART_NONE) {
			/* in no handler now: every record of q we took is
			 * done; release pairs with the new owner's acquire */
			if (atomic_compare_exchange_strong_explicit(
				    pq, &w, part_word(pw_wanted(w), PART_NONE),
				    memory_order_release, memory_order_relaxed))
				changed = true;
			continue;
		}
		if (pw_owner(w) == PART_NONE &&
		    atomic_compare_exchange_strong_explicit(
			    pq, &w, part_word(me, pw_wanted(w)),
			    memory_order_acq_rel, memory_order_relaxed)) {
			changed = true;
			w = part_word(me, PART_NONE);
		}
		if (pw_owner(w) == me)
			owned |= 1ull << q;
	}
	if (owned & ~gm->owned) /* gained: look again from the floor */
		gm->kscan = atomic_load_explicit(&group_row(s)->cursor,
						 memory_order_acquire);
	gm->owned = owned;
	gm->kepoch = e;
	if (changed)
		bump_epoch(g);
}

/* Idle with the floor blocked by a partition whose owner is dead: take
 * over every partition of that owner (under the bus lock). */
static void keyed_takeover(shmbus_sub_t *s, uint64_t floor)
{
	struct group_member *gm = &s->gm;
	uint32_t m = published(s->ch, floor);
	if (m == 0)
		return;
	uint64_t now = mono_ns();
	if (gm->stuck_floor != floor) {
		gm->stuck_floor = floor;
		gm->stuck_since = now;
		return;
	}
	if (now - gm->stuck_since < LIVENESS_CHECK_NS)
		return;
	gm->stuck_since = now;
	uint32_t q = key_partition(slot_at(s->ch, floor)->key);
	/* acquire here and below: pairs with the partition CASes */
	uint32_t owner = pw_owner(atomic_load_explicit(
		&gm->grp->part[q], memory_order_acquire));
	if (owner == gm->member || member_alive(s, owner))
		return;
	if (bus_lock(s->ch->bus))
		return;
	for (uint32_t k = 0; k < KEY_PARTITIONS; k++) {
		uint64_t w = atomic_load_explicit(&gm->grp->part[k],
						  memory_order_acquire);
		if (pw_owner(w) == owner)
			atomic_compare_exchange_strong_explicit(
				&gm->grp->part[k], &w,
				part_word(gm->member, PART_NONE),
				memory_order_acq_rel, memory_order_relaxed);
	}
	bump_epoch(gm->grp);
	bus_unlock(s->ch->bus);
}

static int keyed_poll(shmbus_sub_t *s, uint32_t max)
{
	struct group_member *gm = &s->gm;
	shmbus_channel_t *ch = s->ch;
	keyed_refresh(s);
	/* acquire: pairs with the release CAS in advance_floor */
	uint64_t floor = atomic_load_explicit(&group_row(s)->cursor,
					      memory_order_acquire);
	uint64_t seq = (int64_t)(gm->kscan - floor) > 0 ? gm->kscan : floor;
	uint32_t done = 0;
	while (done < max && barrier_allows(s, seq)) {
		uint32_t m = published(ch, seq);
		if (m == 0)
			break;
		/* the key was written before the marker (acquire above) */
		uint32_t q = key_partition(slot_at(ch, seq)->key);
		if ((gm->owned >> q) & 1) {
			int r = take(s, seq, 0);
			if (r == 0) {
				/* ours, yet taken: by a dead former owner, or
				 * by an earlier holder of our member index */
				uint64_t w = atomic_load_explicit(
					&gm->grp->word[seq & ch->mask],
					memory_order_acquire);
				uint32_t o = gw_member(w);
				if (gw_state(w) == GW_TAKEN &&
				    (w >> 16) == lap_of(ch, seq) &&
				    (o == gm->member || !member_alive(s, o)) &&
				    (r = take(s, seq, w)) > 0)
					gm->redelivered++;
			}
			if (r < 0)
				break;
			done += (uint32_t)(r > 0);
		}
		seq++;
		if (s->hold.active)
			break; /* poll_held has it; scan on past it later */
	}
	gm->kscan = seq;
	if (done == 0 && !s->hold.active)
		keyed_takeover(s, floor);
	advance_floor(s);
	return (int)done;
}
