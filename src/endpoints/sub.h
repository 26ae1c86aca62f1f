/*
 * The subscriber handle, shared by the broadcast (subscriber.c) and group
 * (group.c) read paths, and the record hand-off both use.
 */
#ifndef SHMBUS_SUB_H
#define SHMBUS_SUB_H

#include <pthread.h>
#include <stdatomic.h>

#include "group.h"
#include "internal.h"
#include "retry.h"
#include "wait.h"

struct shmbus_sub {
	shmbus_channel_t *ch;
	shmbus_sub_t *next; /* in ch->subscribers */
	struct ch_header *hdr;
	struct ch_subscriber *ent;
	shmbus_handler_fn fn;
	void *ctx;
	/* the journaler's flush (journal_attach.c): what the handler took
	 * reaches its journal before the cursor moves past it; non-zero
	 * keeps the cursor, and the records are delivered again */
	int (*before_advance)(void *ctx);
	uint64_t next_seq;
	uint32_t index; /* row in the subscriber table */
	uint32_t batch;
	uint32_t wait;
	uint32_t part;
	bool overwrite;
	bool evictable; /* stall policy EVICT: check after each batch */
	bool registry; /* fn is registry_dispatch: polls are RCU sections */
	struct registry_node *reg_node; /* its channel's handlers */
	shmbus_sub_stats_t stats;
	shmbus_sub_stats_t base; /* the row's counters when this handle began */
	uint64_t fails_stored;	 /* failed + retried + dead-lettered, as
				  * last stored in the row */
	struct retry_policy rp;
	struct retry_hold hold;
	uint64_t rng; /* back-off jitter */
	struct ch_sub_stats *lat; /* the row's histogram; NULL: not sampled */
	uint32_t lat_left;	  /* batches until the next sample */
	const struct bus_clock *clock;
	uint64_t lost_base; /* the row's lost total when this handle began */
	uint8_t *copy; /* overwrite: private copy of one payload */
	shmbus_poller_t *poller; /* the poller it belongs to, if any */
	void (*poller_forget)(shmbus_poller_t *, shmbus_sub_t *);
	uint32_t n_after;	 /* dependency barrier: upstream rows */
	uint16_t after[SHMBUS_MAX_AFTER];
	uint64_t barrier; /* lowest upstream cursor last seen */
	struct group_member gm; /* competing-group member state */
	/* records read before the ring (a journal's replay-then-live, or
	 * a spill after an eviction); NULL once it switched to the ring */
	struct sub_source *source;
	char *spill_dir;    /* SHMBUS_STALL_SPILL: the channel's journal */
	uint64_t away_from; /* evicted while away: its cursor then */
	pthread_t thread; /* shmbus_sub_start */
	bool running;
	atomic_bool stop;
};

/*
 * A source of records that a subscriber reads before the ring: the
 * records below its cursor, in sequence order, through its handler. A
 * module above the core installs one (the journal's replay-then-live,
 * journal_live.c); the core knows it by these calls only. poll and wait
 * are shmbus_poll's and shmbus_sub_wait's while it is installed; the
 * source uninstalls itself (sub_source_set(s, NULL)) when it is over.
 */
struct sub_source {
	int (*poll)(shmbus_sub_t *s, uint32_t max);
	int (*wait)(shmbus_sub_t *s, uint64_t timeout_ns);
	void (*release)(struct sub_source *src);
};
/* Install src (NULL: none), releasing the one installed before. */
void sub_source_set(shmbus_sub_t *s, struct sub_source *src);

/*
 * A spill channel's subscriber rejoining after an eviction reads what it
 * skipped, [from, s->next_seq), from the channel's journal in dir: the
 * opener installs a source for it (0) or says why not. The journal
 * library registers its opener when it is loaded; a process without it
 * cannot subscribe to a spill channel (said at subscribe).
 */
typedef int (*sub_spill_open_fn)(shmbus_sub_t *s, const char *dir,
				 uint64_t from);
void sub_spill_register(sub_spill_open_fn open);

/* The fields of a handed-over record that are the same for every record
 * of a poll: set once (the read loop keeps one record and refills the
 * rest, record_fill). */
static inline void record_constants(const shmbus_sub_t *s, shmbus_record_t *r)
{
	r->channel_id = s->ch->id;
	r->attempt = 1;
	r->reserved = 0;
}

static inline void record_fill(shmbus_record_t *r, uint32_t record_size,
			       uint64_t seq, uint32_t marker, uint32_t lf,
			       uint64_t ts, uint64_t key, uint64_t origin,
			       const void *data)
{
	uint32_t len = lf & SLOT_LEN_MASK;
	if (len > record_size) /* a corrupt length never overruns */
		len = record_size;
	r->data = data;
	r->len = len;
	r->flags = lf >> 24;
	r->seq = seq;
	r->timestamp = ts;
	r->key = key;
	r->origin = origin ? origin - 1 : seq;
	r->producer = marker & MARKER_PART_MASK;
}

/* A record read in place, its marker acquired: a compact slot (a
 * constant where the read loop is compiled per layout) has no time, key
 * or origin, and its payload follows the length. */
static inline void record_fill_slot(shmbus_record_t *r, uint32_t record_size,
				    uint64_t seq, uint32_t marker,
				    const struct slot_header *h,
				    const bool compact)
{
	if (compact)
		record_fill(r, record_size, seq, marker, h->len_flags, 0, 0, 0,
			    (const uint8_t *)h + SLOT_HEADER_COMPACT);
	else
		record_fill(r, record_size, seq, marker, h->len_flags,
			    h->timestamp, h->key, h->origin, h + 1);
}

static inline void fill_record(const shmbus_sub_t *s, shmbus_record_t *r,
			       uint64_t seq, uint32_t marker, uint32_t lf,
			       uint64_t ts, uint64_t key, uint64_t origin,
			       const void *data)
{
	record_constants(s, r);
	record_fill(r, s->ch->record_size, seq, marker, lf, ts, key, origin,
		    data);
}

/* Publish-to-now latency of a record about to be handled, into the row's
 * histogram: the first record of one batch in LAT_EVERY (a clock read
 * costs a tenth of a one-record round trip; a sample of the batches is as
 * good a histogram). */
#define LAT_EVERY 16u
static inline void lat_sample(shmbus_sub_t *s, uint64_t ts)
{
	if (--s->lat_left != 0)
		return;
	s->lat_left = LAT_EVERY;
	uint64_t now = bus_clock_now(s->clock);
	_Atomic uint64_t *b = &s->lat->lat[lat_bucket(now > ts ? now - ts : 0)];
	/* relaxed: a statistic for tools; one writer per row (a group's
	 * members may lose a count, never tear one) */
	atomic_store_explicit(b, atomic_load_explicit(b, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* A cursor (or a group's floor) moved: producers asleep for space, and
 * dependents asleep for their barrier (block strategy), may go on. While
 * nobody sleeps, loads of lines nobody writes (wait.h, "Sleepers"). */
static inline void cursor_moved(struct ch_header *h)
{
	wake_sleepers(&h->space_ec, &h->space_sleepers);
	wake_sleepers(&h->data_ec, &h->data_sleepers);
}

/* Run the handler: RETRY_CONSUMED, or RETRY_HOLD (the record failed and
 * the subscriber must not move past it; see retry.h). */
static inline int dispatch(shmbus_sub_t *s, const shmbus_record_t *r)
{
	s->stats.delivered++;
	int rc = s->fn(r, s->ctx);
	if (__builtin_expect(rc < 0, 0))
		return retry_failed(s, r, rc);
	return RETRY_CONSUMED;
}

#endif /* SHMBUS_SUB_H */
