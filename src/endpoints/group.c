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
 *   2. take the published prefix of what is left of the chunk as one run:
 *      CAS the word of its first record (the run's head) from free-for-lap
 *      to TAKEN(lap, me, length). Winning the CAS *is* recording the claim,
 *      so no record is lost if a member dies right after winning: the head
 *      names it. One CAS a run, not a record: a locked instruction orders
 *      every load around it, and far apart that is a miss per record;
 *   3. run the handlers; store DONE into the run's other words, then (release)
 *      into its head. Whoever meets a TAKEN head skips its whole run (the
 *      other words keep older laps' values until then, so they look free);
 *   4. advance the floor over contiguous DONE words (acquire loads, then a
 *      release CAS-max of the row's cursor): the floor never passes a record
 *      that is not done, and producers reuse a slot only after the floor
 *      passed it, i.e. after its handler returned.
 * Recovery, when a member finds nothing new (`next` not published), walks
 * from the floor, skipping TAKEN runs by their length:
 *   - free words below `next` were fetched by a member that died (or is
 *     slow) before taking them: take them as runs of one (the CAS decides,
 *     no duplicate; a run of one never covers the head of a run a slow
 *     member is about to take, a longer one could);
 *   - the run at the floor TAKEN by a member whose kernel lock is gone:
 *     CAS its head from TAKEN(lap, dead, n) to TAKEN(lap, me, n) and handle
 *     the run again (at-least-once: the dead member may have run handlers);
 *   - runs TAKEN naming my member index are a previous holder of my index,
 *     which was dead when I got the index: handle them again likewise.
 * Walkers stand only on a run's head or a word of no run: the floor, the
 * end of a run skipped or handled, or the next word after a DONE one (a
 * DONE run's words are all DONE). Semantics: exactly once while no member
 * dies; at-least-once across a member's death, the duplicates being the
 * records of the run the dead member had taken (at most GROUP_RUN_MAX).
 */
#define _GNU_SOURCE
#include "group.h"

#include <string.h>

#include "barrier.h"
#include "error.h"
#include "failpoint.h"
#include "sub.h"
#include "wait.h"

#define CHUNK GROUP_RUN_MAX
#define LIVENESS_CHECK_NS 1000000u /* at most one lock probe per ms */

static inline uint32_t gw_state(uint64_t w)
{
	return (uint32_t)(w >> 8) & 3;
}
static inline uint32_t gw_member(uint64_t w)
{
	return (uint32_t)w & 0xff;
}
static inline bool gw_free_for(uint64_t w, uint64_t lap)
{
	return (w >> 16) < lap || gw_state(w) == GW_FREE;
}
/* How many records a word read at seq covers: its run's length if it is a
 * TAKEN head of seq's lap (a corrupt length clamped), else 1. */
static inline uint32_t gw_span(uint64_t w, uint64_t lap)
{
	uint32_t n = (uint32_t)(w >> 10) & 63;
	if (gw_state(w) != GW_TAKEN || (w >> 16) != lap || n == 0)
		return 1;
	return n < CHUNK ? n : CHUNK;
}

static inline struct ch_subscriber *group_row(const shmbus_sub_t *s)
{
	return s->ent;
}

static inline _Atomic uint64_t *word_at(const shmbus_sub_t *s, uint64_t seq)
{
	return &s->gm.grp->word[seq & s->ch->mask];
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

/* How far a barrier lets this member go (no limit without one). */
static inline bool barrier_allows(shmbus_sub_t *s, uint64_t seq)
{
	if (s->n_after == 0)
		return true;
	if ((int64_t)(s->barrier - seq) <= 0)
		s->barrier = barrier_min(s->ch, s->after, s->n_after,
					 seq + s->ch->capacity);
	return (int64_t)(s->barrier - seq) > 0;
}


/* Keyed groups: the partition of a record's key (0..KEY_PARTITIONS-1). */
static inline uint32_t key_partition(uint64_t key)
{
	return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 58);
}

/* The records from seq on, at most n, that can join one run: published,
 * let through by the barrier, their words free for their laps (a word of
 * this lap is another run's, or DONE already: a keyed member's rescan
 * meets those), and, for a keyed member, of partitions it owns. Their
 * markers into marks[]. The first is the caller's to check. */
static uint32_t run_extent(shmbus_sub_t *s, uint64_t seq, uint32_t n,
			   uint32_t *marks)
{
	const shmbus_channel_t *ch = s->ch;
	_Atomic uint64_t *words = s->gm.grp->word;
	const bool keyed = s->gm.grp->keyed;
	uint32_t k = 1;
	for (; k < n; k++) {
		uint64_t q = seq + k;
		if ((marks[k] = published(ch, q)) == 0 || !barrier_allows(s, q))
			break;
		/* relaxed: our take's CAS decides; this only ends a run */
		uint64_t w = atomic_load_explicit(&words[q & ch->mask],
						  memory_order_relaxed);
		if (!gw_free_for(w, lap_of(ch, q)))
			break;
		/* the key was written before the marker (acquire above) */
		if (keyed && !((s->gm.owned >> key_partition(
					 slot_at(ch, q)->key)) & 1))
			break;
	}
	return k;
}

/* Our run [head, head + k) is handled: DONE into its other words, then its
 * head; if its record head + k is held (retry.h), that one becomes a
 * TAKEN run of one of ours, so the floor waits and nobody else takes it,
 * and the records after it are nobody's again (their words never left an
 * older lap). */
static void run_done(shmbus_sub_t *s, uint64_t head, uint32_t k)
{
	shmbus_channel_t *ch = s->ch;
	uint32_t me = s->gm.member;
	if (s->hold.active) {
		uint64_t h = head + k;
		/* relaxed: published by the head's release below; with k == 0
		 * it shortens our own run, and a walker that read the old
		 * length only finds the records after it later */
		atomic_store_explicit(word_at(s, h),
				      gword_run(lap_of(ch, h), GW_TAKEN, me, 1),
				      memory_order_relaxed);
	}
	if (k == 0)
		return;
	_Atomic uint64_t *words = s->gm.grp->word;
	for (uint32_t i = 1; i < k; i++)
		/* relaxed: published by the head's release below */
		atomic_store_explicit(&words[(head + i) & ch->mask],
				      gword(lap_of(ch, head + i), GW_DONE, me),
				      memory_order_relaxed);
	/* release: the handlers' effects and the words above before DONE;
	 * pairs with the acquire in advance_floor */
	atomic_store_explicit(&words[head & ch->mask],
			      gword(lap_of(ch, head), GW_DONE, me),
			      memory_order_release);
}

/* We own the run [head, head + n) (its head TAKEN by us; marks[] its
 * markers): run the handlers (delivery number `attempt`), then mark it
 * done. A handler that must hold its record ends the run there. Returns
 * how many records were handled, the held one included. */
static uint32_t run_taken(shmbus_sub_t *s, uint64_t head, uint32_t n,
			  const uint32_t *marks, uint32_t attempt)
{
	shmbus_channel_t *ch = s->ch;
	FAILPOINT(FP_GROUP_AFTER_TAKE);
	shmbus_record_t r;
	record_constants(s, &r);
	r.attempt = attempt;
	uint32_t record_size = ch->record_size, k;
	for (k = 0; k < n; k++) {
		uint64_t seq = head + k;
		if (marker_tag(marks[k]) !=
		    marker_tag_make(lap_of(ch, seq), SLOT_COMMITTED)) {
			s->stats.tombstones++;
			continue;
		}
		record_fill_slot(&r, record_size, seq, marks[k],
				 slot_at(ch, seq), ch->compact);
		if (s->lat)
			lat_sample(s, r.timestamp);
		if (dispatch(s, &r) != RETRY_CONSUMED)
			break;
	}
	FAILPOINT(FP_GROUP_BEFORE_DONE);
	run_done(s, head, k);
	return k + (k < n); /* k < n: held */
}

/* Take the run of up to n records at head, its head word now `from` (a
 * free word, or a run we take over), and handle it. Returns records
 * handled, 0 if someone else won the head (*seen: its word then), or -1
 * if head cannot join a run (not published, or held back). */
static int take_run(shmbus_sub_t *s, uint64_t head, uint32_t n,
		    uint64_t from, uint64_t *seen)
{
	uint32_t marks[CHUNK];
	uint64_t lap = lap_of(s->ch, head);
	if ((marks[0] = published(s->ch, head)) == 0 ||
	    !barrier_allows(s, head))
		return -1;
	n = run_extent(s, head, n < CHUNK ? n : CHUNK, marks);
	*seen = from;
	/* acq_rel: winning orders our reads of the records after the previous
	 * owner's DONE (or the producer's commit); failing, *seen is the
	 * winner's word, whose run the caller skips */
	if (!atomic_compare_exchange_strong_explicit(
		    word_at(s, head), seen,
		    gword_run(lap, GW_TAKEN, s->gm.member, n),
		    memory_order_acq_rel, memory_order_acquire))
		return 0;
	return (int)run_taken(s, head, n, marks, 1);
}

/* Take the run at head if its word is free for its lap. */
static int take_free(shmbus_sub_t *s, uint64_t head, uint32_t n,
		     uint64_t *seen)
{
	/* acquire: pairs with the release of DONE by the previous lap's
	 * member (the CAS in take_run re-checks the value) */
	*seen = atomic_load_explicit(word_at(s, head), memory_order_acquire);
	if (!gw_free_for(*seen, lap_of(s->ch, head)))
		return 0;
	return take_run(s, head, n, *seen, seen);
}

/* Held at a record (retry.h): deliver it again once due. Returns 1 if it
 * was consumed, 0 if the hold goes on. */
static int poll_held(shmbus_sub_t *s)
{
	if (shmbus_now_ns() < s->hold.due)
		return 0;
	s->hold.active = false;
	s->stats.retried++;
	uint32_t m = published(s->ch, s->hold.seq);
	run_taken(s, s->hold.seq, 1, &m, s->hold.attempts + 1);
	return !s->hold.active;
}

static void advance_floor(shmbus_sub_t *s)
{
	shmbus_channel_t *ch = s->ch;
	struct ch_subscriber *row = group_row(s);
	/* acquire: pairs with the release CAS of the floor below */
	uint64_t f0 = atomic_load_explicit(&row->cursor, memory_order_acquire);
	uint64_t f = f0, lim = f0 + ch->capacity;
	/* a DONE word of f's lap, whoever's: the member and run bits aside */
	const uint64_t mask = ~0xfcffull;
	uint64_t done = gword(lap_of(ch, f), GW_DONE, 0);
	_Atomic uint64_t *words = s->gm.grp->word;
	while (f != lim) {
		/* acquire: pairs with the member's release of DONE */
		uint64_t w = atomic_load_explicit(&words[f & ch->mask],
						  memory_order_acquire);
		if ((w & mask) != done)
			break;
		if ((++f & ch->mask) == 0)
			done = gword(lap_of(ch, f), GW_DONE, 0);
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

/* Whether the floor has stood at `floor` for LIVENESS_CHECK_NS since the
 * last time this said so: a lock probe is a system call, at most one a
 * LIVENESS_CHECK_NS. */
static bool floor_stuck(shmbus_sub_t *s, uint64_t floor)
{
	uint64_t now = mono_ns();
	if (s->gm.stuck_floor != floor) {
		s->gm.stuck_floor = floor;
		s->gm.stuck_since = now;
		return false;
	}
	if (now - s->gm.stuck_since < LIVENESS_CHECK_NS)
		return false;
	s->gm.stuck_since = now;
	return true;
}

/* A TAKEN run of a dead member, or of an earlier holder of our index, at
 * head (its word w): take it over and handle all of it again. */
static int take_over(shmbus_sub_t *s, uint64_t head, uint64_t w)
{
	uint64_t seen;
	int r = take_run(s, head, gw_span(w, lap_of(s->ch, head)), w, &seen);
	if (r > 0)
		s->gm.redelivered += (uint64_t)r;
	return r;
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
	uint64_t seq = floor;
	while (seq != next && done < max) {
		if ((int64_t)(next - seq) <= 0 || seq - floor >= ch->capacity)
			break;
		uint64_t lap = lap_of(ch, seq), w;
		/* runs of one: see the protocol above */
		int r = take_free(s, seq, 1, &w);
		if (r == 0 && gw_state(w) == GW_TAKEN && (w >> 16) == lap) {
			uint32_t owner = gw_member(w);
			if (owner == s->gm.member ||
			    (seq == floor && floor_stuck(s, floor) &&
			     member_dead(s, owner)))
				r = take_over(s, seq, w);
		}
		if (r < 0)
			break;
		done += (uint32_t)r;
		seq += r > 0 ? (uint64_t)r : gw_span(w, lap);
		if (s->hold.active)
			break;
	}
	return (int)done;
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
		uint64_t left = gm->cend - gm->cnext, w;
		uint32_t n = left < max - done ? (uint32_t)left : max - done;
		int r = take_free(s, gm->cnext, n, &w);
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
		/* taken by a recovering member: skip what it took */
		uint64_t step = r > 0 ? (uint64_t)r
				      : gw_span(w, lap_of(s->ch, gm->cnext));
		gm->cnext = step < left ? gm->cnext + step : gm->cend;
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
	if (published(s->ch, floor) == 0 || !floor_stuck(s, floor))
		return;
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
		if (!((gm->owned >> q) & 1)) {
			seq++;
			continue;
		}
		uint64_t w;
		int r = take_free(s, seq, max - done, &w);
		if (r == 0 && gw_state(w) == GW_TAKEN &&
		    (w >> 16) == lap_of(ch, seq) &&
		    (gw_member(w) == gm->member ||
		     !member_alive(s, gw_member(w))))
			/* ours, yet taken: by a dead former owner, or by an
			 * earlier holder of our member index */
			r = take_over(s, seq, w);
		if (r < 0)
			break;
		done += (uint32_t)r;
		seq += r > 0 ? (uint64_t)r : gw_span(w, lap_of(ch, seq));
		if (s->hold.active)
			break; /* poll_held has it; scan on past it later */
	}
	gm->kscan = seq;
	if (done == 0 && !s->hold.active)
		keyed_takeover(s, floor);
	advance_floor(s);
	return (int)done;
}
