/*
 * Handler failures: retry segments, holds and the hand-off to the
 * dead-letter queue (retry.c, dlq.c). Only the failure path and a
 * subscriber's poll of its own due records run here; a poll with nothing
 * to retry costs one load of a word in its own row.
 */
#ifndef SHMBUS_RETRY_H
#define SHMBUS_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "internal.h"

/* A subscription's retry policy, resolved from shmbus_retry_opts_t. */
struct retry_policy {
	uint32_t policy;       /* shmbus_retry_policy */
	uint32_t max_attempts; /* >= 1 */
	uint32_t on_full;      /* shmbus_retry_full */
	uint64_t base_ns, cap_ns;
	bool may_hold; /* back-pressure channel: the subscriber can wait */
};

/* A subscriber held at a failed ring record (ordered policy, or a full
 * retry segment): it is delivered again at `due`, as attempt attempts+1. */
struct retry_hold {
	bool active;
	uint64_t seq;
	uint64_t due;
	uint32_t attempts;
	uint32_t marker; /* groups: the slot marker of the held record */
};

enum { RETRY_CONSUMED = 0, RETRY_HOLD = 1 };

int retry_policy_init(struct retry_policy *rp, const shmbus_retry_opts_t *o,
		      const shmbus_channel_t *ch, bool group);

/*
 * The handler returned rc < 0 for r (delivery number r->attempt, from the
 * ring). Sends r to the retry segment or the DLQ and returns
 * RETRY_CONSUMED, or sets s->hold and returns RETRY_HOLD: the caller must
 * not move past r.
 */
int retry_failed(shmbus_sub_t *s, const shmbus_record_t *r, int rc);

/* Deliver due records of s's retry segment (up to max); returns how many. */
int retry_poll(shmbus_sub_t *s, uint32_t max);

/* The earliest time s has something to retry (segment or hold), or
 * UINT64_MAX. */
uint64_t retry_next_due(const shmbus_sub_t *s);

/* Put a record into subscriber row `row`'s segment on behalf of
 * participant `part`: 0, or SHMBUS_EFULL. */
int retry_insert(shmbus_channel_t *ch, uint32_t row, uint32_t part,
		 const shmbus_record_t *r, uint32_t attempts, int32_t error,
		 uint64_t due_ns);

/* Entries of row left FILLING or TAKEN by dead participants: back to FREE
 * (the record is still before its owner's cursor) or READY. Returns how
 * many were released. */
uint32_t retry_release_dead(shmbus_channel_t *ch, uint32_t row);

/* Under the bus lock, before a subscriber row is forgotten: its pending
 * retries go to the DLQ (never silently dropped). */
void retry_evacuate(shmbus_channel_t *ch, uint32_t row, const char *why);

/* Restore the hold a previous holder of s's row left (broadcast rows). */
void retry_resume(shmbus_sub_t *s);

#endif /* SHMBUS_RETRY_H */
