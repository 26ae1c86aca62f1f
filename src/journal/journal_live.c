/*
 * Replay, then live: a durable subscriber that starts in the journal and
 * switches to the ring without a gap or a duplicate.
 *
 * The subscriber joins the ring first, by the ordinary join protocol
 * (subscriber.c): its row gates producers from X, the position it starts
 * at in the ring (the present, for a new name; its cursor, for a name that
 * resumes). Everything from X on therefore stays in the ring until it has
 * read it. Before X, it reads the journal: the records of [from, X), in
 * sequence order, with the same handler.
 *
 * The switch happens once the journal holds every record below X. The
 * journal's end cannot say so (tombstones are never journaled, so records
 * just below X may never come), the journaler's cursor can: it is stored
 * with release after the handlers that appended everything below it
 * returned. So: acquire-load the journaler's cursor; if it is at X or
 * past, every record below X is in the journal and visible to us, and an
 * iterator that then reports the end of [from, X) has delivered them all.
 * From there the ordinary poll goes on at X.
 *
 * A failed handler in the journal part goes to the retry segment or the
 * DLQ as in the ring; an ordered (holding) policy holds in this process
 * only, at the journal record: the row's cursor is X all along, so a
 * restart resumes at X and must replay the journal part again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "barrier.h"
#include "error.h"
#include "internal.h"
#include "journal_int.h"
#include "sub.h"

#define LIVE_IDLE_NS 100000ull /* a wait at the journal's end: 100 us */

struct journal_live {
	struct sub_source src; /* installed in the subscriber (sub.h) */
	shmbus_journal_t *j; /* our own read-only handle */
	shmbus_journal_iter_t *it;
	uint64_t switch_at; /* X */
	uint32_t jrow;	    /* the journaler's row on the channel */
	uint32_t jgen;	    /* that row's generation: the name's tenure */
	char jname[JNAME_BYTES];
	bool have; /* e holds the next record, not yet handled */
	shmbus_journal_entry_t e;
	int pending; /* an error met by a wait, for the next poll */
	bool over;   /* the journal part is read: switch at the next poll */
	bool held; /* an ordered policy holds at e until due */
	uint64_t due;
	uint32_t attempts;
	uint64_t skipped; /* the iterator's, counted into missed */
	uint64_t lost;	  /* the handle's stats.lost_seqs, counted too */
};

/* The journaler's name, from the control file's seqlock (journal_attach.c
 * writes it). */
static int journaler_name(const shmbus_journal_t *j, char out[JNAME_BYTES])
{
	const struct jctl *c = j->ctl;
	for (int tries = 0; tries < 10000; tries++) {
		/* acquire: pairs with the release that ends a write */
		uint32_t g1 = atomic_load_explicit(&c->journaler_gen,
						   memory_order_acquire);
		if (g1 & 1u) {
			sched_yield();
			continue;
		}
		/* relaxed: a torn copy is caught by the re-check below */
		for (int i = 0; i < JNAME_BYTES; i++)
			out[i] = __atomic_load_n(&c->journaler[i],
						 __ATOMIC_RELAXED);
		/* acquire: the name's loads before the re-check of gen */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&c->journaler_gen,
					 memory_order_relaxed) == g1) {
			out[JNAME_BYTES - 1] = '\0';
			if (out[0] == '\0')
				strcpy(out, "journal");
			return 0;
		}
	}
	return shmbus_seterr(SHMBUS_EBUSY,
			     "journal %s: the journaler's name is being "
			     "written, or its writer died while writing it "
			     "(attach the journaler again)",
			     j->dir);
}

/* The journal must be this channel's, in this bus epoch. */
static int check_journal(const shmbus_journal_t *j, shmbus_channel_t *ch)
{
	const struct jctl *c = j->ctl;
	/* acquire: pairs with claim_epoch's release of epoch_set */
	bool set = atomic_load_explicit(&c->epoch_set, memory_order_acquire);
	/* relaxed: ordered by the acquire above */
	uint64_t epoch = atomic_load_explicit(&c->bus_epoch,
					      memory_order_relaxed);
	if (!set || epoch != shmbus_epoch(ch->bus) ||
	    j->channel_id != ch->id)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "journal %s is not the journal of channel "
				     "'%s' on this bus (it holds channel %u "
				     "of bus epoch %016llx%s)",
				     j->dir, ch->name, j->channel_id,
				     (unsigned long long)epoch,
				     set ? "" : ", never attached");
	return 0;
}

/* The row named name on ch and its generation, or -1. */
static int row_find(shmbus_channel_t *ch, const char *name, uint32_t *gen)
{
	if (bus_lock(ch->bus))
		return -1;
	int row = sub_find_row(ch, name);
	if (row >= 0) /* relaxed: rows change generation under the lock */
		*gen = atomic_load_explicit(&ch->subs[row].gen,
					    memory_order_relaxed);
	bus_unlock(ch->bus);
	return row;
}

/* Has the journaler handled everything below X? */
static bool journal_covers(struct journal_live *lv, shmbus_channel_t *ch)
{
	struct ch_subscriber *e = &ch->subs[lv->jrow];
	/* acquire: pairs with the journaler's release of its cursor after
	 * its appends returned: they are visible to our reads from here */
	uint64_t c = atomic_load_explicit(&e->cursor, memory_order_acquire);
	/* relaxed: after the acquire above. The row is still the same
	 * name's: one that took it since (even under the journaler's name,
	 * joining at the present) stored a new generation before any
	 * cursor of its own, and its cursor says nothing of the journal */
	return (int64_t)(c - lv->switch_at) >= 0 &&
	       atomic_load_explicit(&e->gen, memory_order_relaxed) == lv->jgen;
}

/* The next journal record below X into lv->e: 1; 0 (none now); 2 (the
 * journal is past X: the journal part is over); or an error. */
static int fetch(shmbus_sub_t *s, struct journal_live *lv)
{
	int rc = shmbus_journal_iter_next(lv->it, &lv->e);
	/* reported, never delivered: a corrupt record, or the sequences
	 * wanted of a range that cannot be read (entry offset 0) */
	if (rc == SHMBUS_ECORRUPT && lv->e.offset != 0)
		s->stats.missed++;
	if (lv->j->st.lost_seqs != lv->lost) {
		s->stats.missed += lv->j->st.lost_seqs - lv->lost;
		lv->lost = lv->j->st.lost_seqs;
	}
	/* retention removed a segment before we read it: missed, counted */
	uint64_t sk = shmbus_journal_iter_skipped(lv->it);
	if (sk != lv->skipped) {
		s->stats.missed += sk - lv->skipped;
		lv->skipped = sk;
	}
	if (rc == 1 && (int64_t)(lv->e.rec.seq - lv->switch_at) >= 0)
		rc = 2;
	lv->have = rc == 1;
	return rc;
}

static void live_release(struct journal_live *lv)
{
	if (lv == NULL)
		return;
	if (lv->it)
		shmbus_journal_iter_close(lv->it);
	if (lv->j)
		shmbus_journal_close(lv->j);
	free(lv);
}

static void live_release_source(struct sub_source *src)
{
	live_release((struct journal_live *)src);
}

/* Drop the journal part: the ordinary poll takes over at X. */
static void go_live(shmbus_sub_t *s)
{
	sub_source_set(s, NULL);
}

/* Hand the record in lv->e to the handler; false: held. */
static bool deliver(shmbus_sub_t *s, struct journal_live *lv)
{
	shmbus_record_t r = lv->e.rec;
	r.channel_id = s->ch->id;
	if (r.len > s->ch->record_size) /* as the ring's readers clamp */
		r.len = s->ch->record_size;
	r.attempt = lv->held ? lv->attempts + 1 : 1;
	if (lv->held)
		s->stats.retried++;
	lv->held = false;
	/* a hold at X the name resumed with belongs to the ring part: a
	 * failure here must not take its place, nor its attempt count */
	struct retry_hold ring = s->hold;
	if (dispatch(s, &r) == RETRY_CONSUMED)
		return true;
	/* an ordered policy holds: here, not in the row (the row's cursor
	 * is X, past this record) */
	lv->held = true;
	lv->due = s->hold.due;
	lv->attempts = s->hold.attempts;
	s->hold = ring;
	if (ring.active) { /* the row keeps it for a restarted holder */
		s->ent->hold_seq = ring.seq;
		s->ent->hold_due = ring.due;
		s->ent->hold_attempts = ring.attempts;
	}
	s->ent->holding = ring.active;
	return false;
}

/* The next record below X into lv->e (lv->have), or: 0 none yet (the
 * journaler is behind), 2 the journal part is over, < 0 an error (the
 * next call goes on after it). */
static int next_record(shmbus_sub_t *s, struct journal_live *lv)
{
	if (lv->have)
		return 1;
	if (lv->over)
		return 2;
	if (lv->pending) { /* an error met while waiting, for poll */
		int rc = lv->pending;
		lv->pending = 0;
		return rc;
	}
	int rc = fetch(s, lv);
	if (rc == 0) {
		if (!journal_covers(lv, s->ch))
			return 0;
		/* covered: what the iterator returns now is the last of
		 * [from, X) */
		rc = fetch(s, lv);
	}
	if (rc == 0 || rc == 2)
		lv->over = true;
	return lv->over ? 2 : rc;
}

/* A dependency barrier holds in the journal part too: has an upstream
 * subscriber not yet passed seq? */
static bool upstream_behind(shmbus_sub_t *s, uint64_t seq)
{
	return s->n_after &&
	       (int64_t)(barrier_min(s->ch, s->after, s->n_after, seq + 1) -
			 seq) <= 0;
}

static int live_poll(shmbus_sub_t *s, uint32_t max)
{
	struct journal_live *lv = (struct journal_live *)s->source;
	int done = retry_poll(s, max);
	while ((uint32_t)done < max) {
		if (lv->held && shmbus_now_ns() < lv->due)
			return done;
		int rc = next_record(s, lv);
		if (rc == 0)
			return done;
		if (rc < 0) {
			if (done == 0)
				return rc;
			lv->pending = rc; /* after what was delivered */
			return done;
		}
		if (rc == 2) {
			go_live(s);
			return done;
		}
		if (upstream_behind(s, lv->e.rec.seq))
			return done;
		if (!deliver(s, lv))
			return done;
		lv->have = false;
		done++;
	}
	return done;
}

static int live_wait(shmbus_sub_t *s, uint64_t timeout_ns)
{
	struct journal_live *lv = (struct journal_live *)s->source;
	uint64_t now = shmbus_now_ns();
	uint64_t until = timeout_ns ? now + timeout_ns : UINT64_MAX;
	for (;;) {
		if (lv->held ? now >= lv->due
			     : lv->pending || lv->over ||
				       (lv->have &&
					!upstream_behind(s, lv->e.rec.seq)))
			return 0;
		if (!lv->held && !lv->have) {
			int rc = next_record(s, lv);
			if (rc < 0)
				lv->pending = rc; /* for poll to return */
			if (rc != 0)
				return 0; /* a record, the switch, an error */
		}
		if (now >= until)
			return SHMBUS_EAGAIN;
		/* the journal has no futex: look again in a while, or when
		 * the held record is due */
		uint64_t ns = lv->held ? lv->due - now : LIVE_IDLE_NS;
		if (ns > LIVE_IDLE_NS)
			ns = LIVE_IDLE_NS;
		if (until - now < ns)
			ns = until - now;
		struct timespec ts = {0, (long)ns};
		if (nanosleep(&ts, NULL) != 0 && errno == EINTR)
			return SHMBUS_EINTR; /* a signal handler ran */
		now = shmbus_now_ns();
	}
}

/* Open our handle and iterator, and find the journaler's row. */
static int live_open(struct journal_live *lv, shmbus_channel_t *ch,
		     const char *dir, const shmbus_journal_query_t *q,
		     uint64_t *first)
{
	shmbus_journal_opts_t jo = {.flags = SHMBUS_JOURNAL_READONLY};
	int rc = shmbus_journal_open(dir, &jo, &lv->j);
	if (rc == 0)
		rc = check_journal(lv->j, ch);
	if (rc == 0)
		rc = journaler_name(lv->j, lv->jname);
	int row = rc == 0 ? row_find(ch, lv->jname, &lv->jgen) : -1;
	if (rc == 0 && row < 0)
		rc = shmbus_seterr(SHMBUS_ENOENT,
				   "channel '%s' has no subscriber '%s', the "
				   "journaler of %s: without it the journal "
				   "does not follow the ring (attach one with "
				   "shmbus_journal_attach)",
				   ch->name, lv->jname, dir);
	lv->jrow = (uint32_t)row;
	if (rc == 0) {
		shmbus_journal_stats_t st;
		shmbus_journal_get_stats(lv->j, &st);
		*first = st.first_seq;
		rc = shmbus_journal_iter_open(lv->j, q, &lv->it);
	}
	return rc;
}

/* s reads [q's start, X = s->next_seq) from the journal before the ring;
 * first: the journal's oldest record. */
static void live_attach(shmbus_sub_t *s, struct journal_live *lv,
			const shmbus_journal_query_t *q, uint64_t first)
{
	lv->switch_at = s->next_seq;
	if (!(q->flags & SHMBUS_JOURNAL_BY_TIME) &&
	    (int64_t)(q->from_seq - lv->switch_at) >= 0) {
		live_release(lv); /* starts at or after X: the ring alone */
		return;
	}
	jiter_count_skips_below(lv->it, lv->switch_at);
	lv->src = (struct sub_source){live_poll, live_wait,
				      live_release_source};
	/* what retention removed after `from` is missed, and said so */
	if (!(q->flags & SHMBUS_JOURNAL_BY_TIME) && q->from_seq &&
	    q->from_seq < first)
		s->stats.missed +=
			(first < lv->switch_at ? first : lv->switch_at) -
			q->from_seq;
	sub_source_set(s, &lv->src);
}

int shmbus_journal_subscribe(shmbus_channel_t *ch, const char *dir,
			     const shmbus_journal_query_t *from,
			     shmbus_handler_fn fn, void *ctx,
			     const shmbus_sub_opts_t *opts, shmbus_sub_t **out)
{
	if (ch == NULL || dir == NULL || fn == NULL || opts == NULL ||
	    out == NULL)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "journal subscribe: channel, directory, "
				     "handler, opts and out are required");
	*out = NULL;
	shmbus_journal_query_t q = from ? *from : (shmbus_journal_query_t){0};
	if (q.to_seq != 0 ||
	    (q.flags & ~(uint32_t)(SHMBUS_JOURNAL_BY_TIME |
				   SHMBUS_JOURNAL_SKIP_CORRUPT)))
		return shmbus_seterr(SHMBUS_EINVAL,
				     "journal subscribe: a start (from_seq, or "
				     "from_time with BY_TIME) only: no to_seq, "
				     "no BY_KEY");
	if (ch->flags & SHMBUS_CH_OVERWRITE)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "journal subscribe: channel '%s' "
				     "overwrites: nothing would hold the ring "
				     "while the journal is read",
				     ch->name);
	struct journal_live *lv = calloc(1, sizeof(*lv));
	if (lv == NULL)
		return shmbus_seterr(SHMBUS_ENOMEM, "journal subscribe");
	uint64_t first = 0;
	int rc = live_open(lv, ch, dir, &q, &first);
	/* a name nobody holds journals nothing: the part would never end
	 * (a spill waits for it instead: producers wait for it too) */
	if (rc == 0 && !bit_get(ch->held_subs, lv->jrow) &&
	    shm_byte_held(ch->map.fd, SUBLOCK_BASE + (off_t)lv->jrow) != 1)
		rc = shmbus_seterr(SHMBUS_ENOENT,
				   "the journaler of %s, '%s' on channel '%s', "
				   "is not running: start it "
				   "(shmbus_journal_attach), then subscribe",
				   dir, lv->jname, ch->name);
	shmbus_sub_t *s = NULL;
	if (rc == 0)
		rc = shmbus_subscribe(ch, fn, ctx, opts, &s);
	if (rc) {
		live_release(lv);
		return rc;
	}
	/* a name evicted while away may have set up a spill from its
	 * cursor: ours starts at or before it and covers it */
	sub_source_set(s, NULL);
	/* ... or (evict policy) counted [its cursor, X) as missed: what the
	 * journal part delivers of that is not */
	if (s->away_from != UINT64_MAX && !(q.flags & SHMBUS_JOURNAL_BY_TIME)) {
		uint64_t start = q.from_seq > s->away_from ? q.from_seq
							   : s->away_from;
		uint64_t back = start < s->next_seq ? s->next_seq - start : 0;
		s->stats.missed -= back < s->stats.missed ? back
							  : s->stats.missed;
	}
	live_attach(s, lv, &q, first);
	*out = s;
	return 0;
}

/* Read [from, next_seq) from the journal in dir before the ring: the
 * spill opener (sub.h) that this library registers when it is loaded. */
static int live_spill(shmbus_sub_t *s, const char *dir, uint64_t from)
{
	struct journal_live *lv = calloc(1, sizeof(*lv));
	if (lv == NULL)
		return shmbus_seterr(SHMBUS_ENOMEM, "spill");
	shmbus_journal_query_t q = {.from_seq = from};
	uint64_t first = 0;
	int rc = live_open(lv, s->ch, dir, &q, &first);
	if (rc) {
		live_release(lv);
		return rc;
	}
	/* an unfinished one: the new one covers it */
	sub_source_set(s, NULL);
	live_attach(s, lv, &q, first);
	return 0;
}

__attribute__((constructor)) static void live_register_spill(void)
{
	sub_spill_register(live_spill);
}

/* unloaded (dlclose): the bus must not call into a library that is gone */
__attribute__((destructor)) static void live_unregister_spill(void)
{
	sub_spill_register(NULL);
}
