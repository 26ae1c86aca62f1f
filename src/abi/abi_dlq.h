/*
 * The shared-memory ABI (layout.h): the dead-letter queue: its header and
 * entries.
 */
#ifndef SHMBUS_ABI_DLQ_H
#define SHMBUS_ABI_DLQ_H

#include "abi_common.h"

/*
 * The channel's dead-letter queue (dlq.c): a ring of entries numbered by a
 * 64-bit id, [tail, head) in use, changed under a robust process-shared
 * mutex (failures are the slow path). An entry is written completely
 * before head moves past it, so a writer that dies under the lock leaves
 * nothing half-visible.
 */
enum dlq_entry_state { DLQ_EMPTY = 0, DLQ_VALID = 1, DLQ_PURGED = 2 };
struct ch_dlq {
	pthread_mutex_t lock;
	uint8_t reserved0[SHMBUS_CACHELINE - sizeof(pthread_mutex_t)];
	/* relaxed under the lock; tools may read them without it */
	_Atomic uint64_t head;	  /* next id */
	_Atomic uint64_t tail;	  /* oldest id still held */
	_Atomic uint64_t dropped; /* oldest entries overwritten */
	_Atomic uint64_t refused; /* puts refused while full */
	uint32_t policy;	  /* shmbus_dlq_policy */
	uint32_t reserved1;
	uint8_t reserved2[SHMBUS_CACHELINE - 40];
};
_Static_assert(sizeof(struct ch_dlq) == 128, "dlq ABI");
struct dlq_entry {
	uint64_t id;
	uint32_t state; /* dlq_entry_state */
	int32_t error;	/* the handler's result */
	uint32_t attempts;
	uint32_t len_flags;
	uint64_t seq;
	uint64_t timestamp;
	uint64_t key;
	uint64_t origin; /* original sequence + 1 */
	uint64_t failed_realtime_ns;
	uint32_t producer;
	uint32_t subscriber_row;
	char subscriber[SHMBUS_NAME_BYTES];
	char text[72];
	/* payload follows */
};
_Static_assert(sizeof(struct dlq_entry) == 192, "dlq entry ABI");

#endif /* SHMBUS_ABI_DLQ_H */
