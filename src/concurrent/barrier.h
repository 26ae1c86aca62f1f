#ifndef SHMBUS_BARRIER_H
#define SHMBUS_BARRIER_H

#include "internal.h"

/* Under the bus lock: resolve upstream names to rows of ch, refusing a
 * missing name (ENOENT), a cycle through row self (EINVAL), and with
 * refuse_evicted an upstream that was evicted and has not rejoined
 * (EAGAIN: its rejoin would have to evict row self too). */
int barrier_declare(shmbus_channel_t *ch, uint32_t self,
		    const char *const *names, uint32_t n, uint16_t *rows,
		    bool refuse_evicted);
/* Under the bus lock: does a live row run after `row`? (Such a row may not
 * be freed: its dependents would lose their upstream.) */
bool barrier_has_dependents(const shmbus_channel_t *ch, uint32_t row);
/* Under the bus lock: set in `set` (max_subs bits, zeroed by the caller)
 * every row that runs after `row`, directly or through others; returns
 * how many. */
uint32_t barrier_dependents(const shmbus_channel_t *ch, uint32_t row,
			    uint8_t *set);
/* The lowest upstream cursor, or upto if none is lower. */
uint64_t barrier_min(const shmbus_channel_t *ch, const uint16_t *rows,
		     uint32_t n, uint64_t upto);

#endif
