/*
 * The shared-memory ABI (layout.h): a channel's slots: the record header,
 * its commit marker, the compact layout.
 */
#ifndef SHMBUS_ABI_SLOT_H
#define SHMBUS_ABI_SLOT_H

#include "abi_common.h"

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

#endif /* SHMBUS_ABI_SLOT_H */
