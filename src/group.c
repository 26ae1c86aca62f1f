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

/* We own seq's word (TAKEN by us): run the handler, then mark it DONE. */
static void run_taken(shmbus_sub_t *s, uint64_t seq, uint32_t m)
{
	shmbus_channel_t *ch = s->ch;
	uint64_t lap = lap_of(ch, seq);
	FAILPOINT(FP_GROUP_AFTER_TAKE);
	if (marker_tag(m) == marker_tag_make(lap, SLOT_COMMITTED)) {
		struct slot_header *h = slot_at(ch, seq);
		shmbus_record_t r;
		fill_record(s, &r, seq, m, h->len_flags, h->timestamp, h->key,
			    h->origin, h + 1);
		dispatch(s, &r);
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
	run_taken(s, seq, m);
	return 1;
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
}

static bool member_dead(shmbus_sub_t *s, uint32_t member)
{
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

int group_poll(shmbus_sub_t *s, uint32_t max)
{
	struct group_member *gm = &s->gm;
	uint32_t done = 0;
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
	}
	if (done == 0)
		done = (uint32_t)recover(s, max);
	advance_floor(s);
	if (done) {
		if (atomic_load_explicit(&s->hdr->space_sleepers,
					 memory_order_relaxed))
			waiter_wake(&s->hdr->space_ec);
		if (atomic_load_explicit(&s->hdr->data_sleepers,
					 memory_order_relaxed))
			waiter_wake(&s->hdr->data_ec);
	}
	return (int)done;
}

bool group_available(shmbus_sub_t *s)
{
	struct group_member *gm = &s->gm;
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

int group_attach(shmbus_sub_t *s, bool fresh_row)
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
		return 0;
	}
	return shmbus_seterr(SHMBUS_EFULL,
			     "group '%s' on channel '%s' has %u live members",
			     row->name, ch->name, SHMBUS_MAX_MEMBERS);
}

void group_detach(shmbus_sub_t *s)
{
	struct group_member *gm = &s->gm;
	if (gm->grp == NULL)
		return;
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
