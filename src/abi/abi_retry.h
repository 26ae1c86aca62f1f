/* The shared-memory ABI (layout.h): retry segments' entries. */
#ifndef SHMBUS_ABI_RETRY_H
#define SHMBUS_ABI_RETRY_H

#include "abi_common.h"

/*
 * A retry segment entry (retry.c): a failed record waiting to be delivered
 * again to one subscriber (or any member of a group). The state word is
 * the only synchronisation: an entry is filled while FILLING(participant),
 * release-published READY, taken by CAS READY -> TAKEN(participant) and
 * released FREE (or READY again, with a later due time). FILLING and TAKEN
 * of a dead participant are undone by the watchdog, and by a broadcast
 * subscriber when it takes its name back.
 */
enum retry_state { RE_FREE = 0, RE_FILLING = 1, RE_READY = 2, RE_TAKEN = 3 };
static inline uint32_t re_word(uint32_t st, uint32_t part)
{
	return st | part << 8;
}
struct retry_entry {
	_Atomic uint32_t state; /* retry_state | participant << 8 */
	uint32_t attempts;	/* deliveries so far, all failed */
	uint64_t due_ns;	/* CLOCK_MONOTONIC */
	int32_t error;		/* last handler result */
	uint32_t len_flags;
	uint32_t producer;
	uint32_t reserved;
	uint64_t seq;
	uint64_t timestamp;
	uint64_t key;
	uint64_t origin; /* original sequence + 1 */
	/* payload follows */
};
_Static_assert(sizeof(struct retry_entry) == 64, "retry entry ABI");

#endif /* SHMBUS_ABI_RETRY_H */
