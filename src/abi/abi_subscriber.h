/*
 * The shared-memory ABI (layout.h): a channel's subscriber rows, and the
 * kernel lock bytes of its object.
 */
#ifndef SHMBUS_ABI_SUBSCRIBER_H
#define SHMBUS_ABI_SUBSCRIBER_H

#include "abi_common.h"

/*
 * One durable subscriber of a channel. Line A is written only by the
 * subscriber (cursor once per batch, its counters); lines B-D are cold
 * (identity; room for retry, group and statistics state).
 * The live holder keeps an OFD lock on byte (SUBLOCK_BASE + index) of the
 * channel object.
 */
struct ch_subscriber {
	/* line A: hot, written by the subscriber */
	_Atomic uint64_t cursor; /* next sequence to consume */
	_Atomic uint64_t lost;	 /* overwrite: records lapped, total */
	/* counters of the name, all handles (broadcast rows; stored once
	 * per batch with the cursor, relaxed: for tools) */
	_Atomic uint64_t delivered;	/* handler calls, retries included */
	_Atomic uint64_t failed;	/* handler returned < 0 */
	_Atomic uint64_t retried;	/* redeliveries (segment or hold) */
	_Atomic uint64_t dead_lettered; /* records sent to the DLQ */
	uint8_t reserved_a[SHMBUS_CACHELINE - 48];
	/* line B: cold */
	_Atomic uint32_t state; /* sub_state */
	uint32_t participant;	/* last holder's participant id */
	uint32_t wait;		/* shmbus_wait of the last holder */
	uint32_t group;		/* 0: broadcast; g + 1: competing group g */
	uint64_t created_ns;
	char name[SHMBUS_NAME_BYTES];
	uint64_t ttl_ns; /* 0: never expires */
	_Atomic uint64_t abandoned_ns; /* when last seen without a holder */
	/* dependency barrier: rows this one runs after (bus lock) */
	uint16_t after[SHMBUS_MAX_AFTER];
	uint32_t n_after;
	/* bumped (release, bus lock) each time a new name takes the row: who
	 * waits for a cursor (sync commits) knows whose it is reading */
	_Atomic uint32_t gen;
	/* eviction (bus lock): the cursor it was stalled at, since when */
	uint64_t stall_cursor;
	uint64_t stall_since_ns;
	/* retries (retry.c): earliest due time in the row's retry segment
	 * (UINT64_MAX: none; a hint, lowered by CAS-min after an insert) */
	_Atomic uint64_t retry_due;
	/* hold: the subscriber waits at the ring record hold_seq, already
	 * failed hold_attempts times, until hold_due (written by the holder,
	 * read when the name resumes) */
	uint64_t hold_seq;
	uint64_t hold_due;
	uint32_t hold_attempts;
	uint32_t holding;
	uint32_t retry_policy; /* of the last holder, for tools */
	uint32_t max_attempts;
	uint8_t reserved_b1[256 - SHMBUS_CACHELINE - 168];
};
_Static_assert(offsetof(struct ch_subscriber, stall_since_ns) ==
		       SHMBUS_CACHELINE + 120,
	       "subscriber ABI");
_Static_assert(offsetof(struct ch_subscriber, retry_due) ==
		       SHMBUS_CACHELINE + 128,
	       "subscriber ABI");
_Static_assert(sizeof(struct ch_subscriber) == 4 * SHMBUS_CACHELINE,
	       "subscriber ABI");

#define LEASE_LOCK_BYTE 0	/* single-producer lease */
#define SUBLOCK_BASE 1		/* + subscriber index */
#define MEMBERLOCK_BASE 8192	/* + group * SHMBUS_MAX_MEMBERS + member */

#endif /* SHMBUS_ABI_SUBSCRIBER_H */
