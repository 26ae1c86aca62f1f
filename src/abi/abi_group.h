/*
 * The shared-memory ABI (layout.h): competing-consumer groups: the ownership
 * words, members, key partitions.
 */
#ifndef SHMBUS_ABI_GROUP_H
#define SHMBUS_ABI_GROUP_H

#include "abi_common.h"

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

#endif /* SHMBUS_ABI_GROUP_H */
