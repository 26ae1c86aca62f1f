/*
 * The shared-memory ABI: every structure another process reads or writes.
 *
 * Two kinds of object live in /dev/shm:
 *
 *   /shmbus.BUS            the bus: superblock, channel table, participant
 *                          table (see struct sb_superblock)
 *   /shmbus.BUS.CHANNEL    one channel: header, hot sequence lines,
 *                          subscriber table, slots (struct ch_header)
 *
 * Shared memory holds offsets, never pointers. Every offset and size in a
 * header is validated against the object's real size before use; fields are
 * fixed-width, and reserved space is zero. Creators write everything, then
 * publish with a release store of `state` = SB_READY; openers acquire-load it
 * and tell "not ready yet" (wait, bounded) from "incompatible" (error).
 *
 * Cache lines: each field written by a different process sits on its own
 * 64-byte line (claim sequence, each subscriber cursor, wait words).
 */
#ifndef SHMBUS_LAYOUT_H
#define SHMBUS_LAYOUT_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <ck_ec.h>

#include "shmbus/shmbus.h"

#define SHMBUS_CACHELINE 64u
#define SB_MAGIC UINT64_C(0x3142535542484d53)	/* "SMHBUSB1" little-endian */
#define CH_MAGIC UINT64_C(0x3143535542484d53)	/* "SMHBUSC1" */

/* Object states, published last by the creator with a release store. */
enum obj_state { OBJ_BUILDING = 0, OBJ_READY = 1 };

#define SHMBUS_NAME_BYTES 48 /* SHMBUS_NAME_MAX + NUL */

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

/* ---------------------------------------------------------- a channel */

/*
 * Slot marker: the 32-bit word at the start of every slot, the record's
 * publication state. lap16 = (seq >> log2(capacity)) & 0xffff; state; and the
 * participant id of the claimant, so that a dead producer's hole can be
 * repaired by CAS from exactly "claimed by it in this lap" (watchdog issue).
 *
 *   31            16 15 14 13             0
 *   [   lap16      ][st ][  participant   ]
 *
 * A zero word is "never written". 16 lap bits are enough because readers
 * never rely on the lap alone across more than one lap: back-pressure
 * producers cannot lap a gating reader, and overwrite readers re-check the
 * claim sequence after copying (see subscriber.c).
 */
enum slot_state {
	SLOT_EMPTY = 0,
	SLOT_CLAIMED = 1,
	SLOT_COMMITTED = 2,
	SLOT_TOMBSTONE = 3,
};
#define MARKER_PART_BITS 14u
#define MARKER_PART_MASK ((1u << MARKER_PART_BITS) - 1u)

static inline uint32_t marker_make(uint64_t lap, uint32_t st, uint32_t part)
{
	return ((uint32_t)(lap & 0xffffu) << 16) | (st << MARKER_PART_BITS) |
	       (part & MARKER_PART_MASK);
}
/* lap16 and state together, for one compare on the read path */
static inline uint32_t marker_tag(uint32_t m)
{
	return m >> MARKER_PART_BITS;
}
static inline uint32_t marker_tag_make(uint64_t lap, uint32_t st)
{
	return ((uint32_t)(lap & 0xffffu) << 2) | st;
}

/*
 * The record header at the start of each slot; the payload follows. On a
 * SHMBUS_CH_COMPACT channel only marker and len_flags exist: the payload
 * starts at SLOT_HEADER_COMPACT, where timestamp would be, and nobody
 * reads or writes the other three fields there.
 */
struct slot_header {
	_Atomic uint32_t marker; /* see above; release-stored at commit */
	uint32_t len_flags;	 /* payload length (24 bits) | flags << 24 */
	uint64_t timestamp;	 /* publish time, CLOCK_MONOTONIC ns */
	uint64_t key;		 /* aggregate id */
	uint64_t origin;	 /* 0, or original sequence + 1 */
};
_Static_assert(sizeof(struct slot_header) == SHMBUS_RECORD_HEADER,
	       "record header ABI");
#define SLOT_HEADER_COMPACT 8u
_Static_assert(offsetof(struct slot_header, timestamp) == SLOT_HEADER_COMPACT,
	       "compact record header ABI");

/* Bytes in front of a slot's payload on a channel with these flags. */
static inline uint32_t slot_header_bytes(uint32_t flags)
{
	return (flags & SHMBUS_CH_COMPACT) ? SLOT_HEADER_COMPACT
					   : (uint32_t)sizeof(struct slot_header);
}
#define SLOT_LEN_MASK 0x00ffffffu
#define SLOT_MAX_RECORD SLOT_LEN_MASK

enum sub_state {
	SUB_FREE = 0,
	SUB_JOINING = 1, /* gating at a provisional cursor */
	SUB_ACTIVE = 2,	 /* gating; a process may hold its lock */
	SUB_EVICTED = 3, /* no longer gating (watchdog) */
};

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

/*
 * A competing-consumer group (group.c). Its name, floor and gating live in
 * a subscriber row (cursor = floor); this area holds the take counter, the
 * members and one ownership word per slot:
 *
 *   word = lap << 16 | run << 10 | state << 8 | member
 *
 * state: 0 free, TAKEN, DONE. A word whose lap is below the slot's current
 * lap (or whose state is 0) is free for that lap. A member takes a run of
 * published records, at most GROUP_RUN_MAX, by CAS of the run's first word
 * (its head) from free to TAKEN(lap, me, run length) -- winning and
 * recording are one atomic step; the run's other words keep older laps'
 * values meanwhile, so whoever meets a TAKEN head skips the whole run.
 * After its handlers the member stores DONE(lap, me) into the other words,
 * then, with release, into the head.
 */
#define SHMBUS_MAX_MEMBERS 64u
#define GROUP_RUN_MAX 16u
enum group_word_state { GW_FREE = 0, GW_TAKEN = 1, GW_DONE = 2 };

static inline uint64_t gword_run(uint64_t lap, uint32_t st, uint32_t member,
				 uint32_t run)
{
	return lap << 16 | (uint64_t)(run & 63) << 10 | (uint64_t)st << 8 |
	       member;
}

static inline uint64_t gword(uint64_t lap, uint32_t st, uint32_t member)
{
	return gword_run(lap, st, member, 0);
}

struct ch_group_member {
	_Atomic uint32_t state; /* part_state; liveness = its lock byte */
	uint32_t participant;
};

/* Keyed groups: records map to KEY_PARTITIONS partitions by key; each
 * partition has one owning member at a time (group.c). */
#define KEY_PARTITIONS 64u
#define PART_NONE 0xffu
static inline uint64_t part_word(uint32_t owner, uint32_t wanted)
{
	return (uint64_t)owner | (uint64_t)wanted << 8;
}

struct ch_group {
	/* line 0: identity, changed under the bus lock */
	_Atomic uint32_t state; /* obj_state: READY when in use */
	uint32_t row;		/* its subscriber row */
	uint32_t keyed;		/* records go to members by key */
	_Atomic uint32_t epoch; /* bumped after every partition change */
	uint8_t reserved0[SHMBUS_CACHELINE - 16];
	/* line 1: the take counter (members fetch-add chunks of it) */
	alignas(SHMBUS_CACHELINE) _Atomic uint64_t next;
	uint8_t reserved1[SHMBUS_CACHELINE - 8];
	/* lines 2-9: members */
	struct ch_group_member members[SHMBUS_MAX_MEMBERS];
	/* keyed groups: owner | wanted-by << 8, per partition */
	_Atomic uint64_t part[KEY_PARTITIONS];
	/* then one word per slot */
	alignas(SHMBUS_CACHELINE) _Atomic uint64_t word[];
};
_Static_assert(offsetof(struct ch_group, next) == 64, "group ABI");
_Static_assert(offsetof(struct ch_group, part) == 640, "group ABI");
_Static_assert(offsetof(struct ch_group, word) == 1152, "group ABI");

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

/*
 * A subscriber row's latency histogram: publish time stamp to handler
 * start, sampled once per batch (its first record), in log-linear buckets
 * (lat_bucket below). Written by the row's holder with relaxed load+store
 * (one writer; a group's members share it and may lose a count), read by
 * tools.
 */
#define SHMBUS_LAT_BUCKETS 128u
struct ch_sub_stats {
	_Atomic uint64_t lat[SHMBUS_LAT_BUCKETS];
};
_Static_assert(sizeof(struct ch_sub_stats) == 1024, "stats ABI");

/* 4 buckets per power of two from 16 ns; below 16 ns, 4 ns wide; the last
 * bucket takes everything from about 12 s up. */
static inline uint32_t lat_bucket(uint64_t ns)
{
	if (ns < 16)
		return (uint32_t)ns >> 2;
	uint32_t msb = 63u - (uint32_t)__builtin_clzll(ns);
	uint32_t b = (msb - 3) * 4 + (uint32_t)((ns >> (msb - 2)) & 3);
	return b < SHMBUS_LAT_BUCKETS ? b : SHMBUS_LAT_BUCKETS - 1;
}

/* The smallest value of bucket b (the inverse of lat_bucket). */
static inline uint64_t lat_bucket_floor(uint32_t b)
{
	if (b < 4)
		return (uint64_t)b << 2;
	uint32_t msb = b / 4 + 3;
	return (1ull << msb) | (uint64_t)(b & 3) << (msb - 2);
}

/*
 * A channel's record schema (optional): the fields of its payload, for
 * tools to decode records by. Written by the channel's creator.
 */
#define SHMBUS_SCHEMA_MAX_FIELDS 64u
struct ch_schema_field {
	char name[32];
	uint32_t type; /* shmbus_field_type */
	uint32_t offset;
	uint32_t size;
	uint32_t count; /* enum: values in the enum table; else 0 */
	uint32_t enum_off; /* first value in the enum table */
	uint8_t reserved[12];
};
_Static_assert(sizeof(struct ch_schema_field) == 64, "schema ABI");
#define SHMBUS_SCHEMA_MAX_ENUMS 128u
struct ch_schema_enum {
	int64_t value;
	char name[24];
};
struct ch_schema {
	uint32_t n_fields; /* 0: no schema */
	uint32_t n_enums;
	char type_name[48];
	uint8_t reserved[8];
	struct ch_schema_field fields[SHMBUS_SCHEMA_MAX_FIELDS];
	struct ch_schema_enum enums[SHMBUS_SCHEMA_MAX_ENUMS];
};
_Static_assert(sizeof(struct ch_schema) == 64 + 64 * 64 + 128 * 32,
	       "schema ABI");

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

#endif /* SHMBUS_LAYOUT_H */
