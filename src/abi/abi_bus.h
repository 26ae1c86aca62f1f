/*
 * The shared-memory ABI (layout.h): the bus object: superblock, channel
 * table, participants, pollers.
 */
#ifndef SHMBUS_ABI_BUS_H
#define SHMBUS_ABI_BUS_H

#include "abi_common.h"

/* ------------------------------------------------------------ the bus */

enum chent_state { CHENT_FREE = 0, CHENT_READY = 1 };

/* One row of the bus's channel table (for tools, and for channel ids). */
struct sb_channel_entry {
	_Atomic uint32_t state; /* chent_state; release-published */
	uint32_t id;		/* index in the table */
	uint32_t record_size;
	uint32_t capacity;
	uint32_t flags;
	uint32_t stall_policy;
	uint64_t layout_hash;
	char name[SHMBUS_NAME_BYTES];
	uint8_t reserved[48];
};
_Static_assert(sizeof(struct sb_channel_entry) == 128, "channel entry ABI");

enum part_state { PART_FREE = 0, PART_LIVE = 1 };
enum part_kind { PART_PRODUCER = 1, PART_SUBSCRIBER = 2, PART_TOOL = 3 };

/*
 * One participant (a producer or subscriber handle). Its id is the index;
 * the owner holds an open-file-description lock on byte `id` of the bus
 * object, so the kernel tells whether it is alive (released at death).
 */
struct sb_participant {
	_Atomic uint32_t state; /* part_state */
	uint32_t kind;		/* part_kind */
	int32_t pid;		/* hint only: pids are reused, namespaced */
	uint32_t channel_id;
	uint64_t since_ns; /* CLOCK_MONOTONIC when taken */
	_Atomic uint64_t heartbeat_ns;
	char name[SHMBUS_NAME_BYTES]; /* subscriber name, or "" */
	/* multi-producer: 1 from before a claim's fetch-add until its range
	 * is published below (watchdog.c) */
	_Atomic uint64_t claim_intent;
	/* a producer's counters, written by it alone (relaxed, for tools) */
	_Atomic uint64_t published; /* records committed */
	_Atomic uint64_t waits;	    /* claims that waited for space */
	/* multi-producer: the range of its last claim, published (then the
	 * intent lowered, release) right after the fetch-add (watchdog.c) */
	_Atomic uint64_t claim_lo, claim_hi;
	uint8_t reserved[8];
};
_Static_assert(sizeof(struct sb_participant) == 128, "participant ABI");

/* Largest participant id that fits a slot marker (14 bits). */
#define SHMBUS_MAX_PARTICIPANTS 16383u

struct sb_superblock {
	uint64_t magic;
	uint32_t abi_version;
	_Atomic uint32_t state; /* obj_state; release store, last */
	uint32_t superblock_size;
	uint32_t channel_entry_size;
	uint32_t participant_size;
	uint32_t cacheline;
	uint64_t epoch;		 /* random at creation; never reused */
	uint64_t created_realtime_ns;
	uint32_t clock_kind; /* bus_clock_kind (clock.h) */
	uint32_t creator_uid;
	uint32_t max_channels;
	uint32_t max_participants;
	uint64_t channel_table_off;
	uint64_t participant_table_off;
	uint64_t total_size;
	uint32_t max_pollers; /* SHMBUS_MAX_POLLERS */
	uint32_t poller_size;
	uint64_t poller_table_off;
	uint64_t clock_mult; /* TSC clock: ns per tick << 32 */
	uint64_t clock_tsc_base;
	uint64_t clock_ns_base;
	/* line 2: control-path lock (robust, process-shared): channel table and
	 * participant table changes. Never taken on the hot path. */
	alignas(SHMBUS_CACHELINE) pthread_mutex_t lock;
	uint8_t reserved1[SHMBUS_CACHELINE - sizeof(pthread_mutex_t)];
	/* line 3: the watchdog's counters, totals over every watchdog the
	 * bus had (one at a time: the lease); relaxed, for tools */
	alignas(SHMBUS_CACHELINE) struct sb_watchdog_counters {
		_Atomic uint64_t passes;
		_Atomic uint64_t last_pass_ns; /* CLOCK_MONOTONIC */
		_Atomic uint64_t tombstones;
		_Atomic uint64_t evicted;
		_Atomic uint64_t expired;
		_Atomic uint64_t reaped;
		_Atomic uint64_t released; /* retry entries of the dead */
		_Atomic uint64_t stalled;  /* rows stalled at the last pass */
	} wd;
};
_Static_assert(sizeof(pthread_mutex_t) <= SHMBUS_CACHELINE, "mutex fits");
_Static_assert(sizeof(struct sb_superblock) == 256, "superblock ABI");
_Static_assert(offsetof(struct sb_superblock, epoch) == 32, "superblock ABI");
_Static_assert(offsetof(struct sb_superblock, total_size) == 80, "sb ABI");
_Static_assert(offsetof(struct sb_superblock, lock) == 128, "superblock ABI");
_Static_assert(offsetof(struct sb_superblock, wd) == 192, "superblock ABI");

/*
 * A poller: one subscriber process's wait word and ready bitmap for many
 * channels. Producers on a channel whose poller_mask names this poller set
 * the channel's bit (only if clear) after each commit, and bump the event
 * count if the poller sleeps; the poller clears a bit, then drains that
 * channel. A poll reads the bitmap and the active channels, not every ring.
 */
#define SHMBUS_MAX_POLLERS 64u /* bits of a channel's poller_mask */
#define POLLER_LOCK_BASE 65536 /* + index: liveness byte in the bus object */

struct sb_poller {
	_Atomic uint32_t state;	   /* part_state */
	_Atomic uint32_t blocking; /* threads asleep on ec (wait.h) */
	struct ck_ec32 ec;
	uint32_t reserved0;
	char name[SHMBUS_NAME_BYTES];
	/* ready bitmap: one bit per channel id, from offset 64 */
	alignas(SHMBUS_CACHELINE) _Atomic uint64_t ready[];
};
_Static_assert(offsetof(struct sb_poller, ready) == SHMBUS_CACHELINE,
	       "poller ABI");

#endif /* SHMBUS_ABI_BUS_H */
