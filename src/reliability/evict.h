/* Eviction (evict.c): the rules that keep dependency barriers whole. */
#ifndef SHMBUS_EVICT_H
#define SHMBUS_EVICT_H

#include "internal.h"

/* Under the bus lock, before an evicted `row` rejoins at the present:
 * evict the rows that run after it and are active again, so that none
 * handles what it skipped. 0, or SHMBUS_ENOMEM. */
int evict_dependents(shmbus_channel_t *ch, uint32_t row);

#endif
