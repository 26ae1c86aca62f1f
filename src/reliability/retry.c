/*
 * Handler failures without head-of-line blocking.
 *
 * A failed record is copied, with its attempt count and due time, into the
 * subscriber's retry segment: an array of entries in the channel object,
 * one array per subscriber row, so retry state outlives the process. The
 * cursor moves on; poll delivers due entries before new records. After the
 * last attempt (or a SHMBUS_EPERMANENT failure) the record goes to the
 * channel's dead-letter queue (dlq.c).
 *
 * Entries are claimed by CAS of their state word (layout.h), so the same
 * code serves a broadcast subscriber (one process) and a group (any member
 * may redeliver a group's entry). Each row keeps a hint of the earliest due
 * time, lowered by CAS-min after every publication of a READY entry; a
 * poller exchanges it for UINT64_MAX before it scans, so an insert racing
 * with a scan is either seen by the scan or leaves its own due time behind.
 *
 * The ordered policy, and a full segment under SHMBUS_RETRY_FULL_HOLD, hold
 * the subscriber at the failed ring record instead: its cursor does not
 * move past it, so producers see back-pressure from it alone, and the hold
 * (attempts, due time) is kept in the row for a restarted process.
 */
#define _GNU_SOURCE
#include "retry.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dlq.h"
#include "error.h"
#include "failpoint.h"
#include "private_export.h"
#include "sub.h"

#define DEFAULT_MAX_ATTEMPTS 5u
#define DEFAULT_BASE_US 1000u
#define DEFAULT_CAP_US 1000000u

/* ------------------------------------------------------- failure notes */

static _Thread_local char note[72];

void shmbus_fail_note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(note, sizeof(note), fmt, ap);
	va_end(ap);
}

/* The note the handler left for this failure (consumed). */
static void take_note(char out[72])
{
	memcpy(out, note, sizeof(note));
	note[0] = '\0';
}

/* ------------------------------------------------------------- policy */

int retry_policy_init(struct retry_policy *rp, const shmbus_retry_opts_t *o,
		      const shmbus_channel_t *ch, bool group)
{
	if (o->policy > SHMBUS_RETRY_ORDERED ||
	    o->on_full > SHMBUS_RETRY_FULL_DLQ)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "unknown retry policy %u or on_full %u",
				     o->policy, o->on_full);
	bool overwrite = (ch->flags & SHMBUS_CH_OVERWRITE) != 0;
	if (o->policy == SHMBUS_RETRY_ORDERED && (group || overwrite))
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s': the ordered retry policy "
				     "is for broadcast subscribers of "
				     "back-pressure channels",
				     ch->name);
	rp->policy = o->policy;
	rp->on_full = o->on_full;
	rp->max_attempts = o->max_attempts ? o->max_attempts
					   : DEFAULT_MAX_ATTEMPTS;
	rp->base_ns = (uint64_t)(o->base_us ? o->base_us : DEFAULT_BASE_US) *
		      1000u;
	rp->cap_ns = (uint64_t)(o->cap_us ? o->cap_us : DEFAULT_CAP_US) *
		     1000u;
	if (rp->cap_ns < rp->base_ns)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "retry cap_us %u is below base_us %u",
				     o->cap_us, o->base_us);
	/* an overwrite reader cannot wait: the producer would lap it */
	rp->may_hold = !overwrite;
	return 0;
}

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Delay before delivery attempts+1: min(cap, base * 2^(attempts-1)),
 * uniformly jittered in [d/2, d] so that a burst of failures spreads out. */
static uint64_t backoff(shmbus_sub_t *s, uint32_t attempts)
{
	uint32_t sh = attempts > 1 ? attempts - 1 : 0;
	uint64_t d = s->rp.cap_ns;
	if (sh < 40 && (s->rp.base_ns << sh) < d)
		d = s->rp.base_ns << sh;
	uint64_t half = d / 2;
	return half + xorshift(&s->rng) % (d - half + 1);
}

/* ------------------------------------------------------------ segments */

/* Lower the row's due hint to at most v. */
static void due_min(struct ch_subscriber *row, uint64_t v)
{
	/* relaxed: the CAS re-checks */
	uint64_t cur = atomic_load_explicit(&row->retry_due,
					    memory_order_relaxed);
	/* release: our READY store before the hint; pairs with the
	 * acquire exchange in retry_poll */
	while (v < cur &&
	       !atomic_compare_exchange_weak_explicit(&row->retry_due, &cur, v,
						      memory_order_release,
						      memory_order_relaxed))
		;
}

int retry_insert(shmbus_channel_t *ch, uint32_t row, uint32_t part,
		 const shmbus_record_t *r, uint32_t attempts, int32_t error,
		 uint64_t due_ns)
{
	uint32_t len = r->len <= ch->record_size ? r->len : ch->record_size;
	for (uint32_t i = 0; i < ch->retry_capacity; i++) {
		struct retry_entry *e = retry_at(ch, row, i);
		uint32_t w = re_word(RE_FREE, 0);
		/* acquire: pairs with the release of FREE by the entry's
		 * last owner, whose reads come before our writes */
		if (!atomic_compare_exchange_strong_explicit(
			    &e->state, &w, re_word(RE_FILLING, part),
			    memory_order_acquire, memory_order_relaxed))
			continue;
		/* relaxed atomics: a poller of another member may read the
		 * due time of a READY-looking entry while we own it; the
		 * state word (release below) publishes the values */
		__atomic_store_n(&e->attempts, attempts, __ATOMIC_RELAXED);
		__atomic_store_n(&e->due_ns, due_ns, __ATOMIC_RELAXED);
		e->error = error;
		e->len_flags = len | r->flags << 24;
		e->producer = r->producer;
		e->seq = r->seq;
		e->timestamp = r->timestamp;
		e->key = r->key;
		e->origin = r->origin + 1;
		memcpy(e + 1, r->data, len);
		FAILPOINT(FP_RETRY_MID_COPY);
		/* release: the entry before READY; pairs with the acquire
		 * load of the state in retry_poll */
		atomic_store_explicit(&e->state, re_word(RE_READY, 0),
				      memory_order_release);
		due_min(&ch->subs[row], due_ns);
		return 0;
	}
	return SHMBUS_EFULL;
}

static void entry_ready(struct ch_subscriber *row, struct retry_entry *e,
			uint32_t attempts, int32_t error, uint64_t due)
{
	/* relaxed: as in retry_insert; the release of READY publishes them */
	__atomic_store_n(&e->attempts, attempts, __ATOMIC_RELAXED);
	__atomic_store_n(&e->due_ns, due, __ATOMIC_RELAXED);
	e->error = error;
	/* release: pairs with the acquire of the state by the next taker */
	atomic_store_explicit(&e->state, re_word(RE_READY, 0),
			      memory_order_release);
	due_min(row, due);
}

static void entry_free(struct retry_entry *e)
{
	/* release: our reads of the entry before anyone refills it */
	atomic_store_explicit(&e->state, re_word(RE_FREE, 0),
			      memory_order_release);
}

static void entry_record(const shmbus_channel_t *ch,
			 const struct retry_entry *e, shmbus_record_t *r)
{
	uint32_t len = e->len_flags & SLOT_LEN_MASK;
	r->data = e + 1;
	r->len = len <= ch->record_size ? len : ch->record_size;
	r->flags = e->len_flags >> 24;
	r->seq = e->seq;
	r->timestamp = e->timestamp;
	r->key = e->key;
	r->origin = e->origin ? e->origin - 1 : e->seq;
	r->channel_id = ch->id;
	r->producer = e->producer;
	r->attempt = __atomic_load_n(&e->attempts, __ATOMIC_RELAXED) + 1;
	r->reserved = 0;
}

/* To the DLQ on s's behalf: 0, or SHMBUS_EFULL if refused (force: never
 * refused, the oldest entry gives way). */
static int to_dlq(shmbus_sub_t *s, const shmbus_record_t *r, int rc,
		  const char *text, bool force)
{
	int d = dlq_put(s->ch, r, r->attempt, rc, text, s->ent->name, s->index,
			force);
	if (d == 0)
		s->stats.dead_lettered++;
	return d;
}

/* A redelivery of the entry e, which we hold TAKEN. */
static void redeliver(shmbus_sub_t *s, struct retry_entry *e, uint64_t now)
{
	shmbus_record_t r;
	entry_record(s->ch, e, &r);
	s->stats.delivered++;
	s->stats.retried++;
	int rc = s->fn(&r, s->ctx);
	if (rc >= 0) {
		entry_free(e);
		return;
	}
	char text[72];
	take_note(text);
	s->stats.failed++;
	if (rc != SHMBUS_EPERMANENT && r.attempt < s->rp.max_attempts) {
		entry_ready(s->ent, e, r.attempt, rc,
			    now + backoff(s, r.attempt));
		return;
	}
	if (to_dlq(s, &r, rc, text, false) == 0)
		entry_free(e);
	else /* refused: keep it, and ask again at the cap */
		entry_ready(s->ent, e, r.attempt - 1, rc, now + s->rp.cap_ns);
}

int retry_poll(shmbus_sub_t *s, uint32_t max)
{
	struct ch_subscriber *row = s->ent;
	/* relaxed: a hint; the entries' states decide */
	uint64_t due = atomic_load_explicit(&row->retry_due,
					    memory_order_relaxed);
	if (__builtin_expect(due == UINT64_MAX, 1))
		return 0;
	uint64_t now = shmbus_now_ns();
	if (now < due)
		return 0;
	/* acquire: pairs with the release CAS-min of inserters, whose READY
	 * entries the scan below then sees */
	atomic_exchange_explicit(&row->retry_due, UINT64_MAX,
				 memory_order_acquire);
	uint32_t done = 0;
	for (uint32_t i = 0; i < s->ch->retry_capacity; i++) {
		struct retry_entry *e = retry_at(s->ch, s->index, i);
		/* acquire: pairs with the release of READY */
		uint32_t w = atomic_load_explicit(&e->state,
						  memory_order_acquire);
		if ((w & 0xff) != RE_READY)
			continue;
		uint64_t edue = __atomic_load_n(&e->due_ns, __ATOMIC_RELAXED);
		if (edue > now || done >= max) {
			due_min(row, edue);
			continue;
		}
		/* acquire: the entry's contents after its publisher's
		 * release (and after the last owner's) */
		if (!atomic_compare_exchange_strong_explicit(
			    &e->state, &w, re_word(RE_TAKEN, s->part),
			    memory_order_acquire, memory_order_relaxed))
			continue; /* another member took it */
		redeliver(s, e, now);
		done++;
	}
	return (int)done;
}
SHMBUS_PRIVATE_EXPORT(retry_poll);

uint64_t retry_next_due(const shmbus_sub_t *s)
{
	/* relaxed: a hint for how long to sleep */
	uint64_t due = atomic_load_explicit(&s->ent->retry_due,
					    memory_order_relaxed);
	if (s->hold.active && s->hold.due < due)
		due = s->hold.due;
	return due;
}

uint32_t retry_release_dead(shmbus_channel_t *ch, uint32_t row)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < ch->retry_capacity; i++) {
		struct retry_entry *e = retry_at(ch, row, i);
		/* acquire: pairs with the owner's release stores */
		uint32_t w = atomic_load_explicit(&e->state,
						  memory_order_acquire);
		uint32_t st = w & 0xff;
		if ((st != RE_FILLING && st != RE_TAKEN) ||
		    !bus_participant_dead(ch->bus, w >> 8))
			continue;
		/* A dead filler's record is still before its owner's cursor
		 * (or in its group word): it will come again. A dead taker's
		 * entry is ready again: at-least-once. */
		uint32_t to = st == RE_FILLING ? re_word(RE_FREE, 0)
					       : re_word(RE_READY, 0);
		/* acq_rel: against a concurrent release of the same entry;
		 * READY publishes the (complete) entry again */
		if (atomic_compare_exchange_strong_explicit(
			    &e->state, &w, to, memory_order_acq_rel,
			    memory_order_relaxed)) {
			if (st == RE_TAKEN)
				due_min(&ch->subs[row],
					__atomic_load_n(&e->due_ns,
							__ATOMIC_RELAXED));
			n++;
		}
	}
	return n;
}

void retry_evacuate(shmbus_channel_t *ch, uint32_t row, const char *why)
{
	struct ch_subscriber *sub = &ch->subs[row];
	for (uint32_t i = 0; i < ch->retry_capacity; i++) {
		struct retry_entry *e = retry_at(ch, row, i);
		/* acquire: pairs with the release of READY */
		uint32_t st = atomic_load_explicit(&e->state,
						   memory_order_acquire) &
			      0xff;
		if (st == RE_READY || st == RE_TAKEN) {
			shmbus_record_t r;
			entry_record(ch, e, &r);
			r.attempt--; /* deliveries made, not the next one */
			dlq_put(ch, &r, r.attempt, e->error, why, sub->name,
				row, true);
		}
		entry_free(e);
	}
	atomic_store_explicit(&sub->retry_due, UINT64_MAX,
			      memory_order_relaxed);
	sub->holding = 0;
}

/* ---------------------------------------------------------------- holds */

static int hold(shmbus_sub_t *s, const shmbus_record_t *r, uint32_t attempts,
		uint64_t due)
{
	s->hold.active = true;
	s->hold.seq = r->seq;
	s->hold.due = due;
	s->hold.attempts = attempts;
	if (s->gm.grp == NULL) { /* kept for a restarted holder of the name */
		s->ent->hold_seq = r->seq;
		s->ent->hold_due = due;
		s->ent->hold_attempts = attempts;
		s->ent->holding = 1;
	}
	return RETRY_HOLD;
}

void retry_resume(shmbus_sub_t *s)
{
	struct ch_subscriber *row = s->ent;
	s->hold.active = row->holding && row->hold_seq == s->next_seq;
	if (s->hold.active) {
		s->hold.seq = row->hold_seq;
		s->hold.due = row->hold_due;
		s->hold.attempts = row->hold_attempts;
	} else {
		row->holding = 0;
	}
}

int retry_failed(shmbus_sub_t *s, const shmbus_record_t *r, int rc)
{
	char text[72];
	take_note(text);
	s->stats.failed++;
	uint32_t a = r->attempt;
	uint64_t now = shmbus_now_ns();
	const struct retry_policy *rp = &s->rp;
	if (rc != SHMBUS_EPERMANENT && a < rp->max_attempts) {
		uint64_t due = now + backoff(s, a);
		if (rp->policy == SHMBUS_RETRY_ORDERED)
			return hold(s, r, a, due);
		if (retry_insert(s->ch, s->index, s->part, r, a, rc, due) == 0)
			return RETRY_CONSUMED;
		if (rp->on_full == SHMBUS_RETRY_FULL_HOLD && rp->may_hold)
			return hold(s, r, a, due);
	}
	if (to_dlq(s, r, rc, text, !rp->may_hold) == 0)
		return RETRY_CONSUMED;
	/* The DLQ refuses: keep the record and ask again at the cap. */
	if (rp->policy != SHMBUS_RETRY_ORDERED &&
	    retry_insert(s->ch, s->index, s->part, r, a - 1, rc,
			 now + rp->cap_ns) == 0)
		return RETRY_CONSUMED;
	return hold(s, r, a - 1, now + rp->cap_ns);
}
SHMBUS_PRIVATE_EXPORT(retry_failed);
