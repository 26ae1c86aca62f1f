/* The channel's follower row: synchronous commits wait for it, eviction
 * spares it; the journaler registers as one (follower.c). */
#ifndef SHMBUS_FOLLOWER_H
#define SHMBUS_FOLLOWER_H

#include <stdbool.h>
#include <stdint.h>

#include "internal.h"

/* How long a journaler that leaves a sync channel cleanly goes on
 * journaling what producers claimed before it left. */
#define FOLLOWER_LEAVE_DRAIN_NS 1000000000ull

/* The journaler's row of a sync or spill channel, or -1. */
int follower_row(const shmbus_channel_t *ch);
/* Is a journaler attached (SHMBUS_CH_JOURNAL_SYNC channels)? */
bool follower_attached(const shmbus_channel_t *ch);
/* Before a claim: 0 and the journaler's row and the row's generation if
 * one is attached, else SHMBUS_ENOENT. */
int follower_check(const shmbus_channel_t *ch, int *row, uint32_t *gen);
/* After a commit: wait until the journaler (row and gen: as the claim saw
 * it; it may leave meanwhile, draining what was committed) has passed end
 * (exclusive); 0, or SHMBUS_ETIMEDOUT (timeout_ns 0: forever). A row
 * another name took since confirms nothing. */
int follower_wait(shmbus_channel_t *ch, int row, uint32_t gen,
		      uint32_t strategy, uint64_t end, uint64_t timeout_ns);
/* The journaler in row `row` attaches to a sync or spill channel (0, or
 * SHMBUS_EBUSY: it has another one), or leaves it; a freed row is
 * forgotten (under the bus lock). */
int follower_attach(shmbus_channel_t *ch, uint32_t row);
void follower_detach(shmbus_channel_t *ch, uint32_t row);
void follower_forget(shmbus_channel_t *ch, uint32_t row);

#endif
