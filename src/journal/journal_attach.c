/*
 * The journaler: a durable subscriber of a channel whose handler appends
 * each record to a journal, with the record's bus sequence.
 *
 * It gates producers like any durable subscriber, so a record is still in
 * the ring until it is in the journal's file: appends are buffered
 * (SHMBUS_JOURNAL_BUFFERED) and flushed at the end of each batch, before
 * the cursor moves (before_advance). Across a crash the bus delivers the
 * unconfirmed part of the last batch again: those records are already in
 * the journal (sequence below its end) and are acknowledged without a
 * second append, so each sequence is journaled exactly once. Tombstones
 * never reach a handler, so they leave gaps, as overwrite losses do.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dlq.h"
#include "error.h"
#include "follower.h"
#include "internal.h"
#include "journal_int.h"

static void journaler_close(shmbus_journal_t *j);
#include "sub.h"

#define STOP_SLICE_NS 10000000ull /* a stop request is seen within it */
#define POLL_MAX 4096u		  /* records between two ticks */

struct journaler {
	shmbus_sub_t *sub;
	pthread_t thread;
	bool running;
	atomic_bool stop;
	/* the channel's dead letters, journaled in DIR/dlq by DLQ id */
	shmbus_journal_t *dlq;
	uint64_t dlq_next; /* the next DLQ id to journal */
	uint8_t *dlq_buf;  /* header + one record */
	/* SHMBUS_CH_NO_TIMESTAMP or SHMBUS_CH_COMPACT: records are stamped
	 * with the time their batch is journaled (0: not read yet in this
	 * batch) */
	bool stamp;
	uint64_t batch_ns;
	const struct bus_clock *clock;
};

static int on_record(const shmbus_record_t *r, void *ctx)
{
	shmbus_journal_t *j = ctx;
	if (j->failed) /* a failed flush: hold the ring, with back-off */
		return j->failed;
	/* delivered again after a crash, or a failed flush, before the
	 * cursor moved */
	if (j->end_seq != 0 && r->seq < j->end_seq)
		return 0;
	struct journaler *jr = j->jr;
	if (__builtin_expect(jr->stamp && r->timestamp == 0, 0)) {
		if (jr->batch_ns == 0) /* one clock read per batch */
			jr->batch_ns = bus_clock_now(jr->clock);
		shmbus_record_t stamped = *r;
		stamped.timestamp = jr->batch_ns;
		return shmbus_journal_append_record(j, &stamped, j->channel_id);
	}
	return shmbus_journal_append_record(j, r, j->channel_id);
}

/* The end of a batch, before the cursor moves: the batch into the file,
 * where readers, and producers of a sync channel, wait for it; under
 * EVERY_N, on the disk too (group commit: one sync for the batch, where
 * each append synced in turn; a producer's commit still returns only
 * once its record is synced, as it waits for this cursor). */
static int flush_batch(void *ctx)
{
	shmbus_journal_t *j = ctx;
	j->jr->batch_ns = 0;
	return jbatch_end(j);
}

/* The journal's sequences are one bus epoch's: claim it for this bus, or
 * refuse a journal that holds another epoch's records, or whose end is
 * past every sequence this bus has claimed (a control file's end, taken
 * after a lost newest segment, that is not true: the journaler would
 * drop every record below it as journaled). */
static int claim_epoch(shmbus_journal_t *j, shmbus_channel_t *ch)
{
	uint64_t epoch = shmbus_epoch(ch->bus);
	struct jctl *c = j->ctl;
	/* acquire: pairs with the release store of epoch_set below, made by
	 * an earlier journaler of this directory */
	bool set = atomic_load_explicit(&c->epoch_set, memory_order_acquire);
	/* relaxed: ordered by the acquire above */
	uint64_t had = atomic_load_explicit(&c->bus_epoch,
					    memory_order_relaxed);
	if (set && had != epoch && j->end_seq != 0)
		return shmbus_seterr(SHMBUS_EEXIST,
				     "journal %s holds sequences of another "
				     "bus epoch (%016llx, this bus is "
				     "%016llx): journal this bus elsewhere",
				     j->dir, (unsigned long long)had,
				     (unsigned long long)epoch);
	/* relaxed: producers' claims only grow; one claimed after this load
	 * is above every record journaled before it */
	uint64_t claim = atomic_load_explicit(&ch->hdr->claim,
					      memory_order_relaxed);
	if (set && had == epoch && j->end_seq > claim)
		return shmbus_seterr(SHMBUS_ECORRUPT,
				     "journal %s: its end, %llu, is past every "
				     "sequence channel '%s' has claimed (%llu) "
				     "on the bus it journals: journal.ctl's end "
				     "is damaged; move the journal aside and "
				     "journal the channel into a new directory",
				     j->dir, (unsigned long long)j->end_seq,
				     ch->name, (unsigned long long)claim);
	/* relaxed: published by the release below */
	atomic_store_explicit(&c->bus_epoch, epoch, memory_order_relaxed);
	/* release: the epoch before the flag that says it is meaningful */
	atomic_store_explicit(&c->epoch_set, 1, memory_order_release);
	return 0;
}

/* Our subscriber name, for readers that switch from the journal to the
 * ring (journal_live.c): a seqlock in the control file, odd while the
 * bytes change. We hold the writer lock: no other writer. */
static void publish_journaler(shmbus_journal_t *j, const char *name)
{
	struct jctl *c = j->ctl;
	/* relaxed: we are its only writer */
	uint32_t odd = (atomic_load_explicit(&c->journaler_gen,
					     memory_order_relaxed) +
			1u) | 1u;
	atomic_store_explicit(&c->journaler_gen, odd, memory_order_relaxed);
	/* release: the odd generation before the bytes; pairs with the
	 * reader's acquire fence before its re-check */
	atomic_thread_fence(memory_order_release);
	size_t n = strlen(name);
	/* relaxed: ordered between the two generation stores */
	for (size_t i = 0; i < JNAME_BYTES; i++)
		__atomic_store_n(&c->journaler[i], i < n ? name[i] : '\0',
				 __ATOMIC_RELAXED);
	/* release: the bytes before the even generation that readers
	 * acquire */
	atomic_store_explicit(&c->journaler_gen, odd + 1,
			      memory_order_release);
}

static int subscribe(shmbus_journal_t *j, shmbus_channel_t *ch,
		     const shmbus_journal_attach_opts_t *o)
{
	shmbus_sub_opts_t so = {
		.name = o && o->name ? o->name : "journal",
		.wait = o ? o->wait : SHMBUS_WAIT_SPIN,
		.batch = o ? o->batch : 0,
		/* a failed append (a full disk) holds the ring at that
		 * record until it succeeds: back-pressure, not loss */
		.retry = {.policy = SHMBUS_RETRY_ORDERED,
			  .max_attempts = UINT32_MAX,
			  .base_us = 1000,
			  .cap_us = 100000},
		/* a spill channel asks every subscriber for its journal;
		 * the journaler itself is never evicted (evict.c) */
		.journal = j->dir,
	};
	if (ch->flags & SHMBUS_CH_OVERWRITE) /* cannot hold: to the DLQ */
		so.retry = (shmbus_retry_opts_t){.max_attempts = 1};
	/* a sync or spill channel has one journaler: refused before its
	 * name would be made (follower_attach checks again, locked) */
	int had = follower_row(ch);
	if (had >= 0 && strncmp(ch->subs[had].name, so.name, JNAME_BYTES))
		return shmbus_seterr(SHMBUS_EBUSY,
				     "channel '%s' already has a journaler, "
				     "'%.*s' (unsubscribe that name to "
				     "replace it)",
				     ch->name, JNAME_BYTES, ch->subs[had].name);
	j->jr->stamp = (ch->flags & CHANNEL_UNSTAMPED) != 0;
	j->jr->clock = &ch->bus->clock;
	int rc = shmbus_subscribe(ch, on_record, j, &so, &j->jr->sub);
	if (rc == 0) {
		j->jr->sub->before_advance = flush_batch;
		rc = follower_attach(ch, j->jr->sub->index);
	}
	if (rc == 0)
		publish_journaler(j, so.name);
	return rc;
}

/* The dead-letter journal DIR/dlq: same options, its own sequences (DLQ
 * ids, never reused). It goes on from its end: ids below it are there. */
static int open_dlq(shmbus_journal_t *j, shmbus_channel_t *ch,
		    const shmbus_journal_opts_t *jo)
{
	char path[JPATH_MAX];
	if (snprintf(path, sizeof(path), "%s/dlq", j->dir) >=
	    (int)sizeof(path))
		return shmbus_seterr(SHMBUS_EINVAL, "journal %s: path too long",
				     j->dir);
	struct journaler *jr = j->jr;
	jr->dlq_buf = malloc(sizeof(shmbus_journal_dead_letter_t) +
			     ch->record_size);
	if (jr->dlq_buf == NULL)
		return shmbus_seterr(SHMBUS_ENOMEM, "journal: out of memory");
	int rc = shmbus_journal_open(path, jo, &jr->dlq);
	if (rc == 0)
		jr->dlq_next = shmbus_journal_end(jr->dlq);
	return rc;
}

/* The dead letters' journal format is this struct, as the public header
 * draws it: pinned here, as every on-disk layout is. */
_Static_assert(sizeof(shmbus_journal_dead_letter_t) == 168,
	       "dead-letter format");
_Static_assert(offsetof(shmbus_journal_dead_letter_t, subscriber) == 48,
	       "dead-letter format");
_Static_assert(offsetof(shmbus_journal_dead_letter_t, text) == 96,
	       "dead-letter format");

/* One dead letter into the DLQ journal: the header, then the payload. */
static int journal_dead_letter(struct journaler *jr, shmbus_channel_t *ch,
			       const shmbus_dlq_entry_t *e)
{
	shmbus_journal_dead_letter_t h = {
		.seq = e->rec.seq,
		.origin = e->rec.origin,
		.timestamp = e->rec.timestamp,
		.failed_realtime_ns = e->failed_realtime_ns,
		.error = e->error,
		.attempts = e->attempts,
		.len = e->rec.len,
		.flags = e->rec.flags,
	};
	memcpy(h.subscriber, e->subscriber, sizeof(h.subscriber));
	memcpy(h.text, e->text, sizeof(h.text));
	memcpy(jr->dlq_buf, &h, sizeof(h));
	return shmbus_journal_append(jr->dlq, e->id, shmbus_clock_ns(ch->bus),
				     ch->id, e->rec.key, jr->dlq_buf,
				     (uint32_t)sizeof(h) + e->rec.len);
}

/* New dead letters since the last look. Nothing to do costs one load of
 * the DLQ's head; the copies take the DLQ's lock (the slow path). An
 * entry purged or replayed before we looked is not a dead letter any
 * more; one overwritten (drop-oldest, a full DLQ) is counted there. */
static int journal_dlq_poll(struct journaler *jr, shmbus_channel_t *ch)
{
	/* relaxed: hints; shmbus_dlq_get takes the lock for each entry */
	uint64_t head = atomic_load_explicit(&ch->dlq->head,
					     memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&ch->dlq->tail,
					     memory_order_relaxed);
	if ((int64_t)(tail - jr->dlq_next) > 0 &&
	    (int64_t)(head - tail) >= 0)
		jr->dlq_next = tail; /* ids below it are gone from the DLQ */
	uint8_t *payload = jr->dlq_buf + sizeof(shmbus_journal_dead_letter_t);
	for (; (int64_t)(head - jr->dlq_next) > 0; jr->dlq_next++) {
		shmbus_dlq_entry_t e;
		int rc = shmbus_dlq_get(ch, jr->dlq_next, &e, payload,
					ch->record_size);
		if (rc == SHMBUS_ENOENT)
			continue;
		if (rc == 0)
			rc = journal_dead_letter(jr, ch, &e);
		if (rc)
			return rc; /* tried again at the next poll */
	}
	return 0;
}

int shmbus_journal_attach(shmbus_channel_t *ch, const char *dir,
			  const shmbus_journal_attach_opts_t *opts,
			  shmbus_journal_t **out)
{
	if (ch == NULL || out == NULL)
		return shmbus_seterr(SHMBUS_EINVAL, "journal attach: no "
						    "channel or no out");
	*out = NULL;
	shmbus_journal_opts_t jo = {0};
	if (opts && opts->journal)
		jo = *opts->journal;
	if (jo.flags & SHMBUS_JOURNAL_READONLY)
		return shmbus_seterr(SHMBUS_EINVAL, "journal attach: a "
						    "read-only journal");
	jo.channel = ch->name;
	jo.channel_id = ch->id;
	shmbus_journal_t *j;
	jo.flags |= SHMBUS_JOURNAL_BUFFERED; /* flushed per batch */
	int rc = shmbus_journal_open(dir, &jo, &j);
	jo.flags &= ~(uint32_t)SHMBUS_JOURNAL_BUFFERED; /* dead letters: few */
	if (rc)
		return rc;
	j->group = true; /* synced per batch, in flush_batch */
	j->jr = calloc(1, sizeof(*j->jr));
	j->journaler_close = journaler_close;
	if (j->jr == NULL)
		rc = shmbus_seterr(SHMBUS_ENOMEM, "journal: out of memory");
	if (rc == 0)
		rc = claim_epoch(j, ch);
	if (rc == 0)
		rc = open_dlq(j, ch, &jo);
	if (rc == 0)
		rc = subscribe(j, ch, opts);
	if (rc) {
		shmbus_journal_close(j);
		return rc;
	}
	*out = j;
	return 0;
}

shmbus_sub_t *shmbus_journal_sub(shmbus_journal_t *j)
{
	return j && j->jr ? j->jr->sub : NULL;
}

int shmbus_journal_poll(shmbus_journal_t *j, uint32_t max)
{
	if (j == NULL || j->jr == NULL)
		return SHMBUS_EINVAL;
	int n = shmbus_poll(j->jr->sub, max);
	int rc = shmbus_journal_tick(j);
	int rd = journal_dlq_poll(j->jr, j->jr->sub->ch);
	if (rd == 0)
		rd = shmbus_journal_tick(j->jr->dlq);
	return n < 0 ? n : rc < 0 ? rc : rd < 0 ? rd : n;
}

int shmbus_journal_wait(shmbus_journal_t *j, uint64_t timeout_ns)
{
	if (j == NULL || j->jr == NULL)
		return SHMBUS_EINVAL;
	if (j->sync == SHMBUS_JOURNAL_SYNC_INTERVAL && j->unsynced) {
		/* wake for the sync that becomes due */
		uint64_t due = j->last_sync_ns + j->sync_interval_ns;
		uint64_t now = shmbus_now_ns();
		uint64_t left = due > now ? due - now : 1;
		if (timeout_ns == 0 || left < timeout_ns)
			timeout_ns = left;
	}
	return shmbus_sub_wait(j->jr->sub, timeout_ns);
}

static void *journaling(void *arg)
{
	shmbus_journal_t *j = arg;
	/* relaxed: a flag; the join in shmbus_journal_stop orders the rest */
	while (!atomic_load_explicit(&j->jr->stop, memory_order_relaxed))
		if (shmbus_journal_poll(j, POLL_MAX) <= 0)
			shmbus_journal_wait(j, STOP_SLICE_NS);
	return NULL;
}

int shmbus_journal_start(shmbus_journal_t *j, int cpu)
{
	if (j == NULL || j->jr == NULL || j->jr->running)
		return shmbus_seterr(SHMBUS_EINVAL, "journal: not a journaler, "
						    "or already started");
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	if (cpu >= 0 && cpu < CPU_SETSIZE) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	}
	/* seq_cst: before the thread exists, any order would do */
	atomic_store(&j->jr->stop, false);
	int err = pthread_create(&j->jr->thread, &attr, journaling, j);
	pthread_attr_destroy(&attr);
	if (err)
		return shmbus_seterr_sys(SHMBUS_ESYS, err,
					 "journal: thread (cpu %d)", cpu);
	j->jr->running = true;
	return 0;
}

int shmbus_journal_stop(shmbus_journal_t *j)
{
	if (j == NULL || j->jr == NULL || !j->jr->running)
		return shmbus_seterr(SHMBUS_EINVAL, "journal: not running");
	/* seq_cst: a flag the thread polls; the join orders the rest */
	atomic_store(&j->jr->stop, true);
	pthread_join(j->jr->thread, NULL);
	j->jr->running = false;
	return 0;
}

/* Leaving a sync channel: producers that passed the claim check before
 * the detach may still commit; journal up to the claim as it stands,
 * for a bounded time (a dead producer's hole would never fill). */
static void drain_claimed(shmbus_sub_t *sub, shmbus_channel_t *ch)
{
	uint64_t until = shmbus_now_ns() + FOLLOWER_LEAVE_DRAIN_NS;
	for (;;) {
		/* acquire: the claims made before our detach was seen */
		uint64_t claim = atomic_load_explicit(&ch->hdr->claim,
						      memory_order_acquire);
		if ((int64_t)(claim - sub->next_seq) <= 0 ||
		    shmbus_now_ns() >= until)
			return;
		if (shmbus_poll(sub, POLL_MAX) <= 0) {
			struct timespec ts = {0, 50000};
			nanosleep(&ts, NULL);
		}
	}
}

static void journaler_close(shmbus_journal_t *j)
{
	struct journaler *jr = j->jr;
	if (jr->running)
		shmbus_journal_stop(j);
	if (jr->sub) {
		shmbus_channel_t *ch = jr->sub->ch;
		/* producers of a sync channel stop claiming first: what they
		 * committed before is drained into the journal below */
		follower_detach(ch, jr->sub->index);
		if ((ch->flags & SHMBUS_CH_JOURNAL_SYNC) &&
		    ch->stall_policy != SHMBUS_STALL_SPILL)
			drain_claimed(jr->sub, ch);
		shmbus_sub_close(jr->sub, 1); /* journal what is there */
		if (jr->dlq)
			journal_dlq_poll(jr, ch); /* and the dead letters */
	}
	if (jr->dlq)
		shmbus_journal_close(jr->dlq);
	free(jr->dlq_buf);
	free(jr);
	j->jr = NULL;
}
