/*
 * The dead-letter queue: a ring of entries in the channel object, numbered
 * by a 64-bit id, [tail, head) held. Every change happens under the DLQ's
 * robust mutex, and an entry is written completely before head moves past
 * it, so a process that dies under the lock leaves nothing half-visible
 * (shm_mutex_lock recovers the lock). Only failing handlers and tools come
 * here: never the producers' path, and a full DLQ never blocks the ring
 * (its policy drops the oldest entry or refuses, both counted).
 */
#define _GNU_SOURCE
#include "dlq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "wait.h"

static int dlq_lock(shmbus_channel_t *ch)
{
	int err = shm_mutex_lock(&ch->dlq->lock);
	if (err)
		return shmbus_seterr_sys(SHMBUS_ESYS, err,
					 "channel '%s': DLQ lock", ch->name);
	return 0;
}

static void dlq_unlock(shmbus_channel_t *ch)
{
	pthread_mutex_unlock(&ch->dlq->lock);
}

/* relaxed: every writer holds the lock; lock-free readers (stats) only
 * need each word whole */
static uint64_t ld(const _Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}
static void st(_Atomic uint64_t *v, uint64_t x)
{
	atomic_store_explicit(v, x, memory_order_relaxed);
}

/* Under the lock: [tail, head) if it is a range of at most capacity
 * entries, else SHMBUS_ECORRUPT (another process damaged it: every walk
 * over it is bounded by this check). `shmbus dlq ... purge all` resets. */
static int range(shmbus_channel_t *ch, uint64_t *tail, uint64_t *head)
{
	*tail = ld(&ch->dlq->tail);
	*head = ld(&ch->dlq->head);
	if (*head - *tail <= ch->dlq_capacity)
		return 0;
	return shmbus_seterr(SHMBUS_ECORRUPT,
			     "channel '%s': its DLQ is corrupt (tail %llu, "
			     "head %llu); `shmbus dlq BUS %s purge all` resets "
			     "it",
			     ch->name, (unsigned long long)*tail,
			     (unsigned long long)*head, ch->name);
}

/* Under the lock, on a valid range: move tail past entries not held. */
static void compact(shmbus_channel_t *ch)
{
	uint64_t tail = ld(&ch->dlq->tail), head = ld(&ch->dlq->head);
	while (tail != head && dlq_at(ch, tail)->state != DLQ_VALID)
		tail++;
	st(&ch->dlq->tail, tail);
}

int dlq_put(shmbus_channel_t *ch, const shmbus_record_t *r,
	    uint32_t attempts, int32_t error, const char *text,
	    const char *subscriber, uint32_t row, bool force)
{
	int rc = dlq_lock(ch);
	if (rc)
		return rc;
	struct ch_dlq *q = ch->dlq;
	uint64_t head, tail;
	if ((rc = range(ch, &tail, &head))) {
		dlq_unlock(ch);
		return rc;
	}
	if (head - tail >= ch->dlq_capacity) {
		if (ch->dlq_policy == SHMBUS_DLQ_REFUSE && !force) {
			st(&q->refused, ld(&q->refused) + 1);
			dlq_unlock(ch);
			return SHMBUS_EFULL;
		}
		st(&q->dropped, ld(&q->dropped) + 1);
		dlq_at(ch, tail)->state = DLQ_PURGED;
		st(&q->tail, tail + 1);
		compact(ch);
	}
	struct dlq_entry *e = dlq_at(ch, head);
	uint32_t len = r->len <= ch->record_size ? r->len : ch->record_size;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	memset(e, 0, sizeof(*e));
	e->id = head;
	e->error = error;
	e->attempts = attempts;
	e->len_flags = len | r->flags << 24;
	e->seq = r->seq;
	e->timestamp = r->timestamp;
	e->key = r->key;
	e->origin = r->origin + 1;
	e->failed_realtime_ns =
		(uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	e->producer = r->producer;
	e->subscriber_row = row;
	snprintf(e->subscriber, sizeof(e->subscriber), "%s",
		 subscriber ? subscriber : "");
	snprintf(e->text, sizeof(e->text), "%s", text ? text : "");
	memcpy(e + 1, r->data, len);
	e->state = DLQ_VALID;
	st(&q->head, head + 1); /* last: the entry is complete */
	dlq_unlock(ch);
	return 0;
}

/* Under the lock: the held entry `id`, or NULL. */
static struct dlq_entry *held(shmbus_channel_t *ch, uint64_t id)
{
	uint64_t head, tail;
	if (range(ch, &tail, &head) || id - tail >= head - tail)
		return NULL; /* corrupt, or outside [tail, head) */
	struct dlq_entry *e = dlq_at(ch, id);
	return e->id == id && e->state == DLQ_VALID ? e : NULL;
}

/* Under the lock: the public view of an entry (payload not copied). */
static void view(const shmbus_channel_t *ch, const struct dlq_entry *e,
		 shmbus_dlq_entry_t *out)
{
	memset(out, 0, sizeof(*out));
	out->id = e->id;
	out->error = e->error;
	out->attempts = e->attempts;
	out->failed_realtime_ns = e->failed_realtime_ns;
	memcpy(out->subscriber, e->subscriber, sizeof(out->subscriber) - 1);
	memcpy(out->text, e->text, sizeof(out->text) - 1);
	uint32_t len = e->len_flags & SLOT_LEN_MASK;
	out->rec.len = len <= ch->record_size ? len : ch->record_size;
	out->rec.flags = e->len_flags >> 24;
	out->rec.seq = e->seq;
	out->rec.timestamp = e->timestamp;
	out->rec.key = e->key;
	out->rec.origin = e->origin ? e->origin - 1 : e->seq;
	out->rec.channel_id = ch->id;
	out->rec.producer = e->producer;
	out->rec.attempt = e->attempts;
}

int shmbus_dlq_get_stats(shmbus_channel_t *ch, shmbus_dlq_stats_t *out)
{
	if (ch == NULL || out == NULL)
		return shmbus_seterr(SHMBUS_EINVAL, "channel or stats NULL");
	int rc = dlq_lock(ch);
	if (rc)
		return rc;
	struct ch_dlq *q = ch->dlq;
	memset(out, 0, sizeof(*out));
	uint64_t tail;
	if ((rc = range(ch, &tail, &out->head))) {
		dlq_unlock(ch);
		return rc;
	}
	for (uint64_t id = tail; id != out->head; id++)
		out->count += held(ch, id) != NULL;
	out->dropped = ld(&q->dropped);
	out->refused = ld(&q->refused);
	out->capacity = ch->dlq_capacity;
	out->policy = ch->dlq_policy;
	dlq_unlock(ch);
	return 0;
}

int shmbus_dlq_list(shmbus_channel_t *ch, uint64_t from_id,
		    shmbus_dlq_entry_t *out, uint32_t max)
{
	if (ch == NULL || (out == NULL && max))
		return shmbus_seterr(SHMBUS_EINVAL, "channel or out NULL");
	int rc = dlq_lock(ch);
	if (rc)
		return rc;
	uint64_t head, id;
	if ((rc = range(ch, &id, &head))) {
		dlq_unlock(ch);
		return rc;
	}
	if ((int64_t)(from_id - id) > 0)
		id = from_id;
	uint32_t n = 0;
	for (; n < max && (int64_t)(head - id) > 0; id++) {
		const struct dlq_entry *e = held(ch, id);
		if (e)
			view(ch, e, &out[n++]);
	}
	dlq_unlock(ch);
	return (int)n;
}

int shmbus_dlq_get(shmbus_channel_t *ch, uint64_t id, shmbus_dlq_entry_t *e,
		   void *buf, uint32_t buflen)
{
	if (ch == NULL || e == NULL || (buf == NULL && buflen))
		return shmbus_seterr(SHMBUS_EINVAL, "channel, entry or buf");
	int rc = dlq_lock(ch);
	if (rc)
		return rc;
	uint64_t tail, head;
	if ((rc = range(ch, &tail, &head))) {
		dlq_unlock(ch);
		return rc;
	}
	const struct dlq_entry *d = held(ch, id);
	if (d == NULL) {
		dlq_unlock(ch);
		return shmbus_seterr(SHMBUS_ENOENT,
				     "channel '%s': no DLQ entry %llu (purged, "
				     "replayed or overwritten)",
				     ch->name, (unsigned long long)id);
	}
	view(ch, d, e);
	if (buflen < e->rec.len) {
		dlq_unlock(ch);
		return shmbus_seterr(SHMBUS_EINVAL,
				     "DLQ entry %llu has %u bytes, buffer %u",
				     (unsigned long long)id, e->rec.len,
				     buflen);
	}
	memcpy(buf, d + 1, e->rec.len);
	e->rec.data = buf;
	dlq_unlock(ch);
	return 0;
}

int dlq_remove(shmbus_channel_t *ch, uint64_t id)
{
	if (dlq_lock(ch))
		return 0;
	struct dlq_entry *e = held(ch, id);
	if (e) { /* held() checked the range */
		e->state = DLQ_PURGED;
		compact(ch);
	}
	dlq_unlock(ch);
	return e != NULL;
}

int shmbus_dlq_purge(shmbus_channel_t *ch, uint64_t id)
{
	if (ch == NULL)
		return shmbus_seterr(SHMBUS_EINVAL, "channel is NULL");
	if (id != SHMBUS_DLQ_ALL)
		return dlq_remove(ch, id) ? 1
					  : shmbus_seterr(SHMBUS_ENOENT,
							  "channel '%s': no "
							  "DLQ entry %llu",
							  ch->name,
							  (unsigned long long)
								  id);
	int rc = dlq_lock(ch);
	if (rc)
		return rc;
	int n = 0;
	uint64_t tail, head;
	if (range(ch, &tail, &head))
		tail = head; /* corrupt: nothing in it can be trusted */
	for (uint64_t i = tail; i != head; i++) {
		struct dlq_entry *e = held(ch, i);
		if (e) {
			e->state = DLQ_PURGED;
			n++;
		}
	}
	st(&ch->dlq->tail, head);
	dlq_unlock(ch);
	return n;
}
