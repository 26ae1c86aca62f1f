/*
 * DLQ replays: an entry published again (shmbus_dlq_replay), or handed to
 * one subscriber's retry segment (shmbus_dlq_replay_to). Above the store
 * (dlq.c): they need producers, subscriber rows, retries and pollers,
 * which the store, called by retries, must not.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "dlq.h"
#include "error.h"
#include "retry.h"
#include "wait.h"

/* A copy of entry id (payload in a buffer the caller frees). */
static int fetch(shmbus_channel_t *ch, uint64_t id, shmbus_dlq_entry_t *e,
		 void **buf)
{
	*buf = malloc(ch->record_size);
	if (*buf == NULL)
		return shmbus_seterr(SHMBUS_ENOMEM, "DLQ record copy");
	int rc = shmbus_dlq_get(ch, id, e, *buf, ch->record_size);
	if (rc) {
		free(*buf);
		*buf = NULL;
	}
	return rc;
}

/* Replays are at-least-once: the record is published, then removed, so a
 * crash between the two (or two replays of one id at once) publishes it
 * twice; consumers de-duplicate on its origin, which replays keep. */
int shmbus_dlq_replay(shmbus_channel_t *ch, uint64_t id, shmbus_producer_t *p)
{
	if (ch == NULL || p == NULL)
		return shmbus_seterr(SHMBUS_EINVAL, "channel or producer NULL");
	shmbus_dlq_entry_t e;
	void *buf;
	int rc = fetch(ch, id, &e, &buf);
	if (rc)
		return rc;
	rc = shmbus_republish(p, &e.rec);
	free(buf);
	if (rc == SHMBUS_EINVAL) /* refused, its message says why */
		return shmbus_adderr(rc, "replaying DLQ entry %llu (kept)",
				     (unsigned long long)id);
	if (rc)
		return shmbus_seterr(rc, "replaying DLQ entry %llu: %s",
				     (unsigned long long)id,
				     shmbus_strerror(rc));
	dlq_remove(ch, id);
	return 0;
}

int shmbus_dlq_replay_to(shmbus_channel_t *ch, uint64_t id,
			 const char *subscriber)
{
	if (ch == NULL)
		return shmbus_seterr(SHMBUS_EINVAL, "channel is NULL");
	int rc = shm_name_check(subscriber, "subscriber name");
	if (rc)
		return rc;
	/* a participant of our own, so that a death mid-copy is seen */
	uint32_t part;
	rc = bus_participant_take(ch->bus, PART_TOOL, ch->id, subscriber,
				  &part);
	if (rc)
		return rc;
	shmbus_dlq_entry_t e;
	void *buf = NULL;
	rc = fetch(ch, id, &e, &buf);
	if (rc == 0)
		rc = bus_lock(ch->bus);
	if (rc == 0) {
		int row = sub_find_row(ch, subscriber);
		if (row < 0)
			rc = shmbus_seterr(SHMBUS_ENOENT,
					   "channel '%s' has no subscriber "
					   "'%s'",
					   ch->name, subscriber);
		else if ((rc = retry_insert(ch, (uint32_t)row, part, &e.rec,
					    0, e.error, shmbus_now_ns())))
			rc = shmbus_seterr(rc,
					   "subscriber '%s': its retry "
					   "segment is full; try later",
					   subscriber);
		bus_unlock(ch->bus);
	}
	free(buf);
	if (rc == 0) {
		dlq_remove(ch, id);
		/* the subscriber may sleep, or sit in a poller */
		waiter_wake(&ch->hdr->data_ec);
		/* relaxed: a hint; poller_notify fences */
		uint64_t mask = atomic_load_explicit(&ch->hdr->poller_mask,
						     memory_order_relaxed);
		if (mask)
			poller_notify(ch, mask);
	}
	bus_participant_release(ch->bus, part);
	return rc;
}
