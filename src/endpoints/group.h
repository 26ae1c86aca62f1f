/*
 * Competing-consumer groups: members share a channel's records, each record
 * to one member, surviving a member's death (protocol in group.c).
 */
#ifndef SHMBUS_GROUP_H
#define SHMBUS_GROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "shmbus/shmbus.h"

struct ch_group;

/* A member's process-local state, inside its shmbus_sub_t. */
struct group_member {
	struct ch_group *grp; /* NULL: not a group member */
	uint32_t index;	      /* group index in the channel */
	uint32_t member;      /* member index in the group */
	uint64_t cnext, cend; /* the chunk of sequences fetched */
	uint64_t stuck_floor; /* floor at the last liveness check */
	uint64_t stuck_since;
	uint64_t redelivered; /* records taken over from dead members */
	/* keyed groups */
	uint64_t owned;	 /* partitions this member owns (bit per partition) */
	uint32_t kepoch; /* group epoch when `owned` was read */
	uint64_t kscan;	 /* next sequence to look at */
};

int group_poll(shmbus_sub_t *s, uint32_t max);
bool group_available(shmbus_sub_t *s);
/* Under the bus lock: find or create the group named in s's row, take a
 * member index. */
int group_attach(shmbus_sub_t *s, bool fresh_row, bool keyed);
void group_detach(shmbus_sub_t *s);
/* Under the bus lock: free the group of subscriber row `row`, or
 * SHMBUS_EBUSY while it has live members. */
int group_remove(shmbus_channel_t *ch, uint32_t row);

#endif /* SHMBUS_GROUP_H */
