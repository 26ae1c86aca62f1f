/*
 * The channel's dead-letter queue (dlq.c): where records go after their
 * last failed delivery, with why. The public calls are in shmbus.h.
 */
#ifndef SHMBUS_DLQ_H
#define SHMBUS_DLQ_H

#include <stdbool.h>
#include <stdint.h>

#include "internal.h"

/*
 * Append a failed record. 0, or SHMBUS_EFULL when the DLQ is full under
 * the refuse policy (counted in refused). force: never refused; the oldest
 * entry gives way (counted in dropped) -- for callers that cannot keep the
 * record anywhere else.
 */
int dlq_put(shmbus_channel_t *ch, const shmbus_record_t *r,
	    uint32_t attempts, int32_t error, const char *text,
	    const char *subscriber, uint32_t row, bool force);

/* Remove entry id if still held; returns 1 if it was. */
int dlq_remove(shmbus_channel_t *ch, uint64_t id);

#endif /* SHMBUS_DLQ_H */
