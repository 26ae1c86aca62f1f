/*
 * The shared-memory ABI (layout.h): the channel header, and the flags this
 * ABI knows.
 */
#ifndef SHMBUS_ABI_CHANNEL_H
#define SHMBUS_ABI_CHANNEL_H

#include "abi_common.h"
#include "abi_slot.h"
#include "abi_subscriber.h"
#include "abi_group.h"
#include "abi_retry.h"
#include "abi_dlq.h"
#include "abi_stats.h"
#include "abi_schema.h"

/* every channel flag this ABI knows (shmbus_channel_flags) */
#define CHANNEL_FLAGS                                                          \
	(SHMBUS_CH_MULTI_PRODUCER | SHMBUS_CH_OVERWRITE |                      \
	 SHMBUS_CH_JOURNAL_SYNC | SHMBUS_CH_NO_TIMESTAMP | SHMBUS_CH_COMPACT)
/* channels whose records carry no publish time */
#define CHANNEL_UNSTAMPED (SHMBUS_CH_NO_TIMESTAMP | SHMBUS_CH_COMPACT)

struct ch_header {
	/* line 0-3: identity, written once by the creator */
	uint64_t magic;
	uint32_t abi_version;
	_Atomic uint32_t state; /* obj_state; release store, last */
	uint32_t header_size;
	uint32_t subscriber_size;
	uint32_t slot_header_size; /* 32, or 8 (SHMBUS_CH_COMPACT) */
	uint32_t cacheline;
	uint64_t bus_epoch;
	uint32_t channel_id;
	uint32_t record_size;
	uint32_t slot_size; /* header + record_size, rounded up to 8 */
	uint32_t capacity;
	uint32_t capacity_log2;
	uint32_t flags;
	uint32_t stall_policy;
	uint32_t max_subscribers;
	uint64_t layout_hash;
	uint64_t subscribers_off;
	uint64_t slots_off;
	uint64_t total_size;
	char name[SHMBUS_NAME_BYTES];
	uint32_t max_groups;
	uint32_t group_size;
	uint64_t groups_off;
	/* retry segments (one per subscriber row) and the dead-letter queue */
	uint64_t retry_off;
	uint64_t dlq_off;
	uint32_t retry_capacity;   /* entries per subscriber row */
	uint32_t retry_entry_size; /* bytes, header + record_size rounded */
	uint32_t dlq_capacity;	   /* entries, a power of two */
	uint32_t dlq_entry_size;
	uint64_t stats_off; /* one struct ch_sub_stats per subscriber row */
	uint64_t schema_off; /* struct ch_schema */
	uint8_t reserved0[256 - 216];

	/* line 4: the claim sequence. Multi-producer: fetch-add / CAS.
	 * Single producer: the lease holder's release store per claim, so that
	 * joiners and overwrite readers see how far it has claimed. */
	alignas(SHMBUS_CACHELINE) _Atomic uint64_t claim;
	uint8_t reserved1[SHMBUS_CACHELINE - 8];

	/* line 5: who to wake after a commit, read by every commit (one line,
	 * written only around sleeps and at poller changes): consumers asleep
	 * for data (block strategy), pollers watching */
	alignas(SHMBUS_CACHELINE) struct ck_ec32 data_ec;
	_Atomic uint32_t data_sleepers; /* threads asleep on data_ec now */
	_Atomic uint64_t poller_mask;	/* pollers to mark ready */
	uint8_t reserved2[SHMBUS_CACHELINE - 16];

	/* line 6: producers sleeping for space (block strategy) */
	alignas(SHMBUS_CACHELINE) struct ck_ec32 space_ec;
	_Atomic uint32_t space_sleepers; /* threads asleep on space_ec now */
	uint8_t reserved3[SHMBUS_CACHELINE - 8];

	/* line 7: subscriber rows in use (gating scan bound); holes repaired
	 * with tombstones (fetch-add by the watchdog or a new lease holder:
	 * rare, never on the hot path); the journaler's row + 1 of a
	 * SHMBUS_CH_JOURNAL_SYNC or SHMBUS_STALL_SPILL channel, 0 while
	 * none is attached */
	alignas(SHMBUS_CACHELINE) _Atomic uint32_t sub_hwm;
	_Atomic uint32_t follower_row;
	_Atomic uint64_t tombstones;
	uint8_t reserved4[SHMBUS_CACHELINE - 16];
};
_Static_assert(sizeof(struct ch_header) == 512, "channel header ABI");
_Static_assert(offsetof(struct ch_header, name) == 104, "ch ABI");
_Static_assert(offsetof(struct ch_header, claim) == 256, "ch ABI");
_Static_assert(offsetof(struct ch_header, data_ec) == 320, "ch ABI");
_Static_assert(offsetof(struct ch_header, space_ec) == 384, "ch ABI");
_Static_assert(sizeof(struct ck_ec32) == 4, "ck_ec32 is one word");

#endif /* SHMBUS_ABI_CHANNEL_H */
