/*
 * Dependency barriers: a subscriber that runs after others (the Disruptor's
 * sequence barrier). It reads sequence s only when every upstream's cursor
 * is above s; since upstream cursors are release-stored after their
 * handlers returned, the acquire loads here order the upstream's work
 * before ours. The graph lives in the subscriber rows (row indices, set
 * under the bus lock); a declaration that would close a cycle is refused.
 */
#define _GNU_SOURCE
#include "barrier.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "private_export.h"

/* Is `target` reachable from row `from` along after-edges? */
static bool reaches(const shmbus_channel_t *ch, uint32_t from, uint32_t target,
		    uint8_t *seen)
{
	if (from == target)
		return true;
	if (bit_get(seen, from) ||
	    atomic_load_explicit(&ch->subs[from].state,
				 memory_order_relaxed) == SUB_FREE)
		return false;
	bit_set(seen, from, true);
	const struct ch_subscriber *e = &ch->subs[from];
	uint32_t n = e->n_after;
	if (n > SHMBUS_MAX_AFTER) /* bound a corrupt row */
		n = SHMBUS_MAX_AFTER;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t up = e->after[i];
		if (up < ch->max_subs && reaches(ch, up, target, seen))
			return true;
	}
	return false;
}

int barrier_declare(shmbus_channel_t *ch, uint32_t self,
		    const char *const *names, uint32_t n, uint16_t *rows,
		    bool refuse_evicted)
{
	if (n > SHMBUS_MAX_AFTER || (n && names == NULL))
		return shmbus_seterr(SHMBUS_EINVAL,
				     "at most %u upstream subscribers",
				     SHMBUS_MAX_AFTER);
	uint8_t *seen = calloc((ch->max_subs + 7) / 8, 1);
	if (seen == NULL)
		return shmbus_seterr(SHMBUS_ENOMEM, "barrier check");
	int rc = 0;
	for (uint32_t k = 0; k < n && rc == 0; k++) {
		int row = -1;
		for (uint32_t i = 0; i < ch->max_subs && names[k]; i++) {
			const struct ch_subscriber *e = &ch->subs[i];
			/* acquire: pairs with the release of the row's state
			 * (its name is written before) */
			if (atomic_load_explicit(&e->state,
						 memory_order_acquire) !=
				    SUB_FREE &&
			    strncmp(e->name, names[k], sizeof(e->name)) == 0)
				row = (int)i;
		}
		if (row < 0) {
			rc = shmbus_seterr(SHMBUS_ENOENT,
					   "channel '%s': upstream subscriber "
					   "'%s' does not exist (subscribe it "
					   "first)",
					   ch->name, names[k] ? names[k] : "");
			break;
		}
		/* relaxed: under the bus lock, which every change of a
		 * row's state to or from EVICTED takes */
		if (refuse_evicted &&
		    atomic_load_explicit(&ch->subs[row].state,
					 memory_order_relaxed) == SUB_EVICTED) {
			rc = shmbus_seterr(SHMBUS_EAGAIN,
					   "channel '%s': upstream subscriber "
					   "'%s' was evicted and has not come "
					   "back; a group, or a subscriber of a "
					   "spill channel, cannot run after it "
					   "until it has (or is unsubscribed)",
					   ch->name, names[k]);
			break;
		}
		memset(seen, 0, (ch->max_subs + 7) / 8);
		if (reaches(ch, (uint32_t)row, self, seen))
			rc = shmbus_seterr(SHMBUS_EINVAL,
					   "channel '%s': running '%s' after "
					   "'%s' closes a cycle",
					   ch->name, ch->subs[self].name,
					   names[k]);
		rows[k] = (uint16_t)row;
	}
	free(seen);
	return rc;
}

bool barrier_has_dependents(const shmbus_channel_t *ch, uint32_t row)
{
	for (uint32_t i = 0; i < ch->max_subs; i++) {
		const struct ch_subscriber *e = &ch->subs[i];
		if (i == row || atomic_load_explicit(&e->state,
						     memory_order_relaxed) ==
					SUB_FREE)
			continue;
		uint32_t n = e->n_after;
		for (uint32_t k = 0; k < n && k < SHMBUS_MAX_AFTER; k++)
			if (e->after[k] == row)
				return true;
	}
	return false;
}

uint32_t barrier_dependents(const shmbus_channel_t *ch, uint32_t row,
			    uint8_t *set)
{
	uint32_t found = 0;
	/* to a fixed point: each round adds the rows that run after a row
	 * already found (the graph has no cycles, and rounds <= its depth) */
	for (bool grew = true; grew;) {
		grew = false;
		for (uint32_t i = 0; i < ch->max_subs; i++) {
			const struct ch_subscriber *e = &ch->subs[i];
			/* relaxed: under the bus lock, as every change of
			 * the graph */
			if (i == row || bit_get(set, i) ||
			    atomic_load_explicit(&e->state,
						 memory_order_relaxed) ==
				    SUB_FREE)
				continue;
			uint32_t n = e->n_after;
			for (uint32_t k = 0; k < n && k < SHMBUS_MAX_AFTER;
			     k++) {
				uint32_t up = e->after[k];
				if (up == row ||
				    (up < ch->max_subs && bit_get(set, up))) {
					bit_set(set, i, true);
					found++;
					grew = true;
					break;
				}
			}
		}
	}
	return found;
}

uint64_t barrier_min(const shmbus_channel_t *ch, const uint16_t *rows,
		     uint32_t n, uint64_t upto)
{
	uint64_t min = upto;
	for (uint32_t i = 0; i < n; i++) {
		const struct ch_subscriber *e = &ch->subs[rows[i]];
		if (atomic_load_explicit(&e->state, memory_order_relaxed) ==
		    SUB_FREE)
			continue; /* unsubscribed: no longer a constraint */
		/* acquire: pairs with the upstream's release store of its
		 * cursor after its handlers returned */
		uint64_t c = atomic_load_explicit(&e->cursor,
						  memory_order_acquire);
		if ((int64_t)(c - min) < 0)
			min = c;
	}
	return min;
}
SHMBUS_PRIVATE_EXPORT(barrier_min);
